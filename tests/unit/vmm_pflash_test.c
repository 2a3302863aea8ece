/* tests/unit/vmm_pflash_test.c - the CFI flash model: OVMF's detection sequence, program
 * (AND semantics) and block erase, status register, read ID and the CFI query table,
 * write-through to an NVRAM file in issue order, the array-mode hook, and hostile sequences
 * (unknown commands, program past the end, writes to the read-only CODE unit, unaligned
 * erase addresses, interleaved commands). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx/vdisk.h"
#include "vmm/pflash.h"

#define BLOCKS 4u
#define BYTES (BLOCKS * PFLASH_BLOCK_BYTES)

static uint8_t pattern[BYTES];

static void fill_pattern(void)
{
	for (unsigned i = 0; i < BYTES; i++)
		pattern[i] = (uint8_t)(i * 7 + 3) | 0x01; /* never 0x00: not a status lookalike */
}

static void wr(struct pflash *pf, uint32_t off, uint8_t v)
{
	pflash_write(pf, off, &v, 1);
}

static uint8_t rd(struct pflash *pf, uint32_t off)
{
	uint8_t v;
	pflash_read(pf, off, &v, 1);
	return v;
}

static void program_byte(struct pflash *pf, uint32_t off, uint8_t v)
{
	wr(pf, off, PFLASH_CMD_PROGRAM);
	wr(pf, off, v);
}

static int setup(void **state)
{
	struct pflash *pf = calloc(1, sizeof(*pf));
	fill_pattern();
	assert_int_equal(pflash_new_mem(pf, pattern, BYTES, false), 0);
	*state = pf;
	return 0;
}

static int teardown(void **state)
{
	struct pflash *pf = *state;
	assert_int_equal(pflash_close(pf), 0);
	free(pf);
	return 0;
}

/* OVMF's QemuFlashDetected: 0x50 then read = array byte, 0x70 then read = 0x00 (FLASH). */
static void test_ovmf_detection(void **state)
{
	struct pflash *pf = *state;
	uint32_t at = 0x10;
	uint8_t orig = rd(pf, at);
	wr(pf, at, PFLASH_CMD_CLEAR_STATUS);
	assert_int_equal(rd(pf, at), orig);
	wr(pf, at, PFLASH_CMD_READ_STATUS);
	assert_int_equal(rd(pf, at), 0x00);
	wr(pf, at, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, at), orig);
	assert_memory_equal(pf->image, pattern, BYTES);
}

static void test_read_array_multibyte(void **state)
{
	struct pflash *pf = *state;
	uint8_t buf[8];
	pflash_read(pf, 0x123, buf, 8);
	assert_memory_equal(buf, pattern + 0x123, 8);
}

static void test_program_and_semantics(void **state)
{
	struct pflash *pf = *state;
	uint32_t at = 0x200;
	uint8_t old = pattern[at];
	program_byte(pf, at, 0x0F);
	/* reads return status (ready) until read array */
	assert_int_equal(rd(pf, at), PFLASH_SR_READY);
	assert_int_equal(rd(pf, at + 1), PFLASH_SR_READY);
	wr(pf, at, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, at), old & 0x0F);
	assert_int_equal(rd(pf, at + 1), pattern[at + 1]);
	/* 0->1 is impossible without an erase: programming 0xFF changes nothing */
	program_byte(pf, at, 0xFF);
	wr(pf, at, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, at), old & 0x0F);
	assert_true(pf->stats.set_bits >= 1);
	assert_int_equal(pf->stats.programs, 2);
}

static void test_program_alt_and_multibyte(void **state)
{
	struct pflash *pf = *state;
	uint8_t zeros[4] = { 0 };
	wr(pf, 0x300, PFLASH_CMD_PROGRAM_ALT);
	pflash_write(pf, 0x300, zeros, 4);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_memory_equal(pf->image + 0x300, zeros, 4);
	assert_int_equal(rd(pf, 0x304), pattern[0x304]);
}

static void test_erase(void **state)
{
	struct pflash *pf = *state;
	uint32_t block = 2 * PFLASH_BLOCK_BYTES;
	wr(pf, block, PFLASH_CMD_BLOCK_ERASE);
	assert_int_equal(rd(pf, block), PFLASH_SR_READY); /* setup: status */
	wr(pf, block, PFLASH_CMD_ERASE_CONFIRM);
	/* OVMF sends no 0xFF after an erase: reads stay in status mode */
	assert_int_equal(rd(pf, block + 5), PFLASH_SR_READY);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	for (uint32_t i = 0; i < PFLASH_BLOCK_BYTES; i++)
		assert_int_equal(pf->image[block + i], 0xFF);
	assert_memory_equal(pf->image, pattern, block);
	assert_memory_equal(pf->image + block + PFLASH_BLOCK_BYTES,
			    pattern + block + PFLASH_BLOCK_BYTES, PFLASH_BLOCK_BYTES);
	/* after an erase, programming works again on every bit */
	program_byte(pf, block + 9, 0xA5);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, block + 9), 0xA5);
}

/* The confirm cycle may address any byte of the block: that block is erased, no other. */
static void test_erase_unaligned(void **state)
{
	struct pflash *pf = *state;
	wr(pf, PFLASH_BLOCK_BYTES + 0x777, PFLASH_CMD_BLOCK_ERASE);
	wr(pf, PFLASH_BLOCK_BYTES + 0xABC, PFLASH_CMD_ERASE_CONFIRM);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, PFLASH_BLOCK_BYTES), 0xFF);
	assert_int_equal(rd(pf, 2 * PFLASH_BLOCK_BYTES - 1), 0xFF);
	assert_int_equal(rd(pf, PFLASH_BLOCK_BYTES - 1), pattern[PFLASH_BLOCK_BYTES - 1]);
	assert_int_equal(rd(pf, 2 * PFLASH_BLOCK_BYTES), pattern[2 * PFLASH_BLOCK_BYTES]);
}

static void test_status_register(void **state)
{
	struct pflash *pf = *state;
	wr(pf, 0, PFLASH_CMD_READ_STATUS);
	assert_int_equal(rd(pf, 0), PFLASH_SR_READY); /* power-on: ready */
	uint8_t w[4];
	pflash_read(pf, 0x40, w, 4);                   /* replicated to the access width */
	for (int i = 0; i < 4; i++)
		assert_int_equal(w[i], PFLASH_SR_READY);
	/* an improper erase sequence sets both error bits and erases nothing */
	wr(pf, 0, PFLASH_CMD_BLOCK_ERASE);
	wr(pf, 0, 0x42);
	assert_int_equal(rd(pf, 0), PFLASH_SR_READY | PFLASH_SR_ERASE_ERROR |
				    PFLASH_SR_PROGRAM_ERROR);
	wr(pf, 0, PFLASH_CMD_CLEAR_STATUS);
	wr(pf, 0, PFLASH_CMD_READ_STATUS);
	assert_int_equal(rd(pf, 0), 0);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_memory_equal(pf->image, pattern, BYTES);
}

static void test_read_id(void **state)
{
	struct pflash *pf = *state;
	wr(pf, 0x1000, PFLASH_CMD_READ_ID);
	assert_int_equal(rd(pf, 0), PFLASH_MANUFACTURER_ID);
	assert_int_equal(rd(pf, 1), PFLASH_DEVICE_ID);
	assert_int_equal(rd(pf, 2), 0); /* block unlocked */
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, 0), pattern[0]);
}

/* What a CFI driver checks: "QRY", the Intel/Sharp command set, one erase region whose
 * block count and size describe exactly this unit, then "PRI". */
static void test_cfi_query(void **state)
{
	struct pflash *pf = *state;
	wr(pf, 0x55, PFLASH_CMD_CFI_QUERY);
	assert_int_equal(rd(pf, 0x10), 'Q');
	assert_int_equal(rd(pf, 0x11), 'R');
	assert_int_equal(rd(pf, 0x12), 'Y');
	assert_int_equal(rd(pf, 0x13) | rd(pf, 0x14) << 8, 0x0001);
	uint32_t pri = rd(pf, 0x15) | rd(pf, 0x16) << 8;
	assert_int_equal(rd(pf, 0x28) | rd(pf, 0x29) << 8, 0); /* x8 */
	assert_int_equal(rd(pf, 0x2C), 1);
	uint32_t blocks = (rd(pf, 0x2D) | rd(pf, 0x2E) << 8) + 1u;
	uint32_t block_bytes = (rd(pf, 0x2F) | rd(pf, 0x30) << 8) * 256u;
	assert_int_equal(blocks * block_bytes, BYTES);
	assert_true((1u << rd(pf, 0x27)) >= BYTES);
	assert_int_equal(rd(pf, pri), 'P');
	assert_int_equal(rd(pf, pri + 1), 'R');
	assert_int_equal(rd(pf, pri + 2), 'I');
	/* the table repeats every 256 bytes of address, like a real part's low address lines */
	assert_int_equal(rd(pf, 0x1010), 'Q');
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, 0x10), pattern[0x10]);
}

static void test_unknown_command(void **state)
{
	struct pflash *pf = *state;
	wr(pf, 0, PFLASH_CMD_READ_STATUS);
	wr(pf, 0x20, 0xE8); /* buffered write: not implemented, OVMF never uses it */
	assert_int_equal(rd(pf, 0x20), pattern[0x20]);
	wr(pf, 0x20, PFLASH_CMD_ERASE_CONFIRM); /* confirm without setup */
	assert_int_equal(rd(pf, 0x20), pattern[0x20]);
	assert_int_equal(pf->stats.refused, 2);
	assert_int_equal(pf->stats.erases, 0);
	assert_memory_equal(pf->image, pattern, BYTES);
}

static void test_program_past_end(void **state)
{
	struct pflash *pf = *state;
	uint8_t z[8] = { 0 };
	wr(pf, BYTES - 2, PFLASH_CMD_PROGRAM);
	pflash_write(pf, BYTES - 2, z, 8); /* straddles the end: refused whole */
	assert_int_equal(rd(pf, 0), PFLASH_SR_READY | PFLASH_SR_PROGRAM_ERROR);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_memory_equal(pf->image, pattern, BYTES);
	wr(pf, BYTES, PFLASH_CMD_READ_STATUS); /* wholly outside: no mode change either */
	assert_int_equal(rd(pf, 0), pattern[0]);
	uint8_t buf[4];
	pflash_read(pf, BYTES - 1, buf, 4);
	assert_int_equal(buf[0], 0xFF);
	assert_int_equal(buf[3], 0xFF);
}

/* A command written while a program is set up is data, as on the real part; an erase
 * setup interrupted by another command is a sequence error. */
static void test_interleaved(void **state)
{
	struct pflash *pf = *state;
	wr(pf, 0x400, PFLASH_CMD_PROGRAM);
	wr(pf, 0x401, PFLASH_CMD_BLOCK_ERASE); /* data 0x20 at 0x401 */
	wr(pf, 0x401, PFLASH_CMD_ERASE_CONFIRM); /* status mode: an out-of-sequence confirm */
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(pf, 0x401), pattern[0x401] & 0x20);
	assert_int_equal(rd(pf, 0x400), pattern[0x400]);
	assert_int_equal(pf->stats.erases, 0);
	wr(pf, 0x800, PFLASH_CMD_BLOCK_ERASE);
	wr(pf, 0x800, PFLASH_CMD_PROGRAM);
	assert_true(rd(pf, 0) & PFLASH_SR_ERASE_ERROR);
	wr(pf, 0x800, 0x00); /* read array (0x00 is accepted as such) */
	assert_int_equal(rd(pf, 0x800), pattern[0x800]);
	assert_int_equal(pf->stats.erases, 0);
}

static void test_code_unit_read_only(void **state)
{
	(void)state;
	struct pflash code;
	assert_int_equal(pflash_new_mem(&code, pattern, BYTES, true), 0);
	wr(&code, 0, PFLASH_CMD_BLOCK_ERASE);
	wr(&code, 0, PFLASH_CMD_ERASE_CONFIRM);
	wr(&code, 0x10, PFLASH_CMD_PROGRAM);
	wr(&code, 0x10, 0x00);
	wr(&code, 0x10, PFLASH_CMD_READ_STATUS);
	assert_int_equal(rd(&code, 0x10), pattern[0x10]); /* still array mode */
	assert_memory_equal(code.image, pattern, BYTES);
	assert_int_equal(code.stats.refused, 5);
	assert_int_equal(pflash_close(&code), 0);
}

static void test_bad_sizes(void **state)
{
	(void)state;
	struct pflash p;
	assert_int_equal(pflash_new_mem(&p, pattern, 100, false), -EINVAL);
	assert_int_equal(pflash_new_mem(&p, pattern, 0, false), -EINVAL);
	assert_int_equal(pflash_new_mem(&p, pattern, PFLASH_MAX_BYTES + PFLASH_BLOCK_BYTES, false),
			 -EINVAL);
}

static unsigned array_on, array_off;

static void array_hook(void *opaque, bool on)
{
	(void)opaque;
	if (on)
		array_on++;
	else
		array_off++;
}

static void test_array_mode_hook(void **state)
{
	struct pflash *pf = *state;
	array_on = array_off = 0;
	pf->array_mode = array_hook;
	wr(pf, 0, PFLASH_CMD_CLEAR_STATUS); /* stays in array mode: no call */
	assert_int_equal(array_on + array_off, 0);
	wr(pf, 0, PFLASH_CMD_READ_STATUS);
	assert_int_equal(array_off, 1);
	wr(pf, 0, PFLASH_CMD_PROGRAM); /* status -> setup: still not array, no call */
	wr(pf, 0, 0x00);
	assert_int_equal(array_off, 1);
	wr(pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(array_on, 1);
	wr(pf, 0, PFLASH_CMD_READ_STATUS);
	pflash_reset(pf);
	assert_int_equal(array_on, 2);
	assert_int_equal(pf->mode, PFLASH_READ_ARRAY);
}

/* ---- the NVRAM file ---- */

static char *temp_file(const uint8_t *data, size_t n)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = malloc(strlen(dir) + 32);
	sprintf(path, "%s/pflash-test.XXXXXX", dir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	return path;
}

static void read_file(const char *path, uint8_t *out, size_t n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, out, n, 0), (ssize_t)n);
	close(fd);
}

/* Every completed operation is in the file at once (before any sync), in issue order; the
 * file always equals the flash image. */
static void test_write_through(void **state)
{
	(void)state;
	char *path = temp_file(pattern, BYTES);
	static uint8_t file[BYTES], expect[BYTES];
	struct pflash pf;
	assert_int_equal(pflash_open(&pf, path), 0);
	program_byte(&pf, 0x10, 0x00);
	program_byte(&pf, 0x11, 0x00);
	program_byte(&pf, 0x11, 0x00); /* same byte again, then elsewhere */
	program_byte(&pf, 0x2005, 0x11);
	wr(&pf, 0x3000, PFLASH_CMD_BLOCK_ERASE);
	wr(&pf, 0x3000, PFLASH_CMD_ERASE_CONFIRM);
	program_byte(&pf, 0x3001, 0x5A);
	/* the pending run is written before the erase and before any later run */
	memcpy(expect, pattern, BYTES);
	expect[0x10] = expect[0x11] = 0;
	expect[0x2005] &= 0x11;
	memset(expect + 0x3000, 0xFF, PFLASH_BLOCK_BYTES);
	read_file(path, file, BYTES);
	expect[0x3001] = 0xFF; /* not yet flushed: still the erased value */
	assert_memory_equal(file, expect, BYTES);
	wr(&pf, 0, PFLASH_CMD_READ_ARRAY); /* end of the burst: pwrite + fdatasync */
	expect[0x3001] = 0x5A;
	read_file(path, file, BYTES);
	assert_memory_equal(file, expect, BYTES);
	assert_memory_equal(pf.image, expect, BYTES);
	assert_true(pf.stats.syncs >= 1);
	assert_int_equal(pflash_close(&pf), 0);
	/* reopen: the store reads back as left */
	assert_int_equal(pflash_open(&pf, path), 0);
	assert_memory_equal(pf.image, expect, BYTES);
	assert_int_equal(pflash_close(&pf), 0);
	unlink(path);
	free(path);
}

static void test_close_flushes(void **state)
{
	(void)state;
	char *path = temp_file(pattern, BYTES);
	static uint8_t file[BYTES];
	struct pflash pf;
	assert_int_equal(pflash_open(&pf, path), 0);
	program_byte(&pf, 0x99, 0x00); /* left in status mode, as a killed guest would */
	assert_int_equal(pflash_close(&pf), 0);
	read_file(path, file, BYTES);
	assert_int_equal(file[0x99], 0);
	unlink(path);
	free(path);
}

/* A failed write-through stops persisting (nothing may land after a hole), the guest
 * still sees its flash, and close reports the error. */
static void test_write_error(void **state)
{
	(void)state;
	char *path = temp_file(pattern, BYTES);
	static uint8_t file[BYTES];
	struct pflash pf;
	assert_int_equal(pflash_open(&pf, path), 0);
	int rw = pf.fd, ro = open(path, O_RDONLY | O_CLOEXEC);
	pf.fd = ro; /* every pwrite now fails with EBADF */
	program_byte(&pf, 0x10, 0x00);
	wr(&pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(pf.write_error, -EBADF);
	pf.fd = rw; /* a working descriptor again: still nothing may be written */
	close(ro);
	program_byte(&pf, 0x20, 0x00);
	wr(&pf, 0, PFLASH_CMD_READ_ARRAY);
	assert_int_equal(rd(&pf, 0x10), 0);
	assert_int_equal(rd(&pf, 0x20), 0);
	read_file(path, file, BYTES);
	assert_memory_equal(file, pattern, BYTES);
	assert_int_equal(pflash_close(&pf), -EBADF);
	unlink(path);
	free(path);
}

static void test_open_errors(void **state)
{
	(void)state;
	struct pflash pf, other;
	assert_int_equal(pflash_open(&pf, "/nonexistent/vars.fd"), -ENOENT);
	char *path = temp_file(pattern, 100); /* not whole blocks */
	assert_int_equal(pflash_open(&pf, path), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "4 KiB"));
	unlink(path);
	free(path);
	path = temp_file(pattern, BYTES);
	assert_int_equal(pflash_open(&pf, path), 0);
	assert_int_equal(pflash_open(&other, path), -EWOULDBLOCK); /* one VM per store */
	assert_non_null(strstr(vdisk_errmsg(), "in use"));
	assert_int_equal(pflash_close(&pf), 0);
	assert_int_equal(pflash_open(&other, path), 0);
	assert_int_equal(pflash_close(&other), 0);
	assert_int_equal(pflash_close(&other), 0); /* idempotent */
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ovmf_detection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_array_multibyte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_and_semantics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_alt_and_multibyte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_erase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_erase_unaligned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfi_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_past_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_array_mode_hook, setup, teardown),
		cmocka_unit_test(test_code_unit_read_only),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_write_through),
		cmocka_unit_test(test_close_flushes),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
