/* tests/unit/vmm_fw_cfg_test.c - fw_cfg: signature/ID/items through the byte port, the file
 * directory layout, DMA select/read/skip with zero fill, and hostile DMA (descriptor or
 * buffer outside guest RAM, write requests) failing cleanly with the ERROR bit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/fw_cfg.h"

#define RAM_BYTES 0x10000u

static uint8_t ram[RAM_BYTES];
static const struct vmm_mem mem = { ram, RAM_BYTES, NULL, 0 };

static void sel(struct fw_cfg *fw, uint16_t key)
{
	uint32_t v = key;
	fw_cfg_pio(fw, 0, 2, &v, true);
}

static uint8_t data(struct fw_cfg *fw)
{
	uint32_t v = 0;
	fw_cfg_pio(fw, 1, 1, &v, false);
	return (uint8_t)v;
}

static void read_bytes(struct fw_cfg *fw, uint16_t key, uint8_t *out, unsigned n)
{
	sel(fw, key);
	for (unsigned i = 0; i < n; i++)
		out[i] = data(fw);
}

static void dma_write_addr(struct fw_cfg *fw, uint64_t gpa)
{
	/* The guest writes big-endian values: the port sees the byte-swapped number. */
	uint32_t hi = __builtin_bswap32((uint32_t)(gpa >> 32));
	uint32_t lo = __builtin_bswap32((uint32_t)gpa);
	fw_cfg_pio(fw, 4, 4, &hi, true);
	fw_cfg_pio(fw, 8, 4, &lo, true);
}

static void put_desc(uint32_t gpa, uint32_t control, uint32_t len, uint64_t addr)
{
	put_be32(ram + gpa, control);
	put_be32(ram + gpa + 4, len);
	put_be64(ram + gpa + 8, addr);
}

static int setup(void **state)
{
	struct fw_cfg *fw = calloc(1, sizeof(*fw));
	memset(ram, 0xEE, sizeof(ram));
	if (!fw || fw_cfg_init(fw, &mem) < 0)
		return -1;
	*state = fw;
	return 0;
}

static int teardown(void **state)
{
	fw_cfg_free(*state);
	free(*state);
	return 0;
}

static void test_signature_id(void **state)
{
	struct fw_cfg *fw = *state;
	uint8_t b[8];
	read_bytes(fw, FW_CFG_SIGNATURE, b, 5);
	assert_memory_equal(b, "QEMU\0", 5); /* past the end: zeros */
	read_bytes(fw, FW_CFG_ID, b, 4);
	assert_int_equal(get_le32(b), 3);
	read_bytes(fw, 0x1234, b, 4); /* unknown selector: zeros */
	assert_int_equal(get_le32(b), 0);
	/* The DMA register reads back "QEMU CFG". */
	uint32_t v;
	fw_cfg_pio(fw, 4, 4, &v, false);
	assert_int_equal(v, 0x51454D55);
	fw_cfg_pio(fw, 8, 4, &v, false);
	assert_int_equal(v, 0x20434647);
}

static void test_items_and_dir(void **state)
{
	struct fw_cfg *fw = *state;
	uint8_t b[4 + 3 * 64];
	assert_int_equal(fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, 2), 0);
	assert_int_equal(fw_cfg_add_file(fw, "etc/e820", "0123456789", 10), 0);
	assert_int_equal(fw_cfg_add_file(fw, "bootorder", "/pci@i0cf8/*@2\n", 15), 0);
	assert_int_equal(fw_cfg_add_file(fw, "bootorder", "x", 1), -EEXIST);
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[79] = 0;
	assert_int_equal(fw_cfg_add_file(fw, longname, "x", 1), -ENAMETOOLONG);
	read_bytes(fw, FW_CFG_NB_CPUS, b, 2);
	assert_int_equal(get_le16(b), 2);
	read_bytes(fw, FW_CFG_FILE_DIR, b, sizeof(b));
	assert_int_equal(get_be32(b), 2);
	assert_int_equal(get_be32(b + 4), 10);
	assert_int_equal(get_be16(b + 8), FW_CFG_FILE_FIRST);
	assert_string_equal((char *)b + 12, "etc/e820");
	assert_int_equal(get_be32(b + 68), 15);
	assert_int_equal(get_be16(b + 72), FW_CFG_FILE_FIRST + 1);
	assert_string_equal((char *)b + 76, "bootorder");
	read_bytes(fw, FW_CFG_FILE_FIRST + 1, b, 15);
	assert_memory_equal(b, "/pci@i0cf8/*@2\n", 15);
}

static void test_dma_read_skip(void **state)
{
	struct fw_cfg *fw = *state;
	assert_int_equal(fw_cfg_add_file(fw, "etc/test", "abcdefgh", 8), 0);
	/* SELECT + SKIP 2, then READ 10: "cdefgh" and 4 bytes of zero fill. */
	put_desc(0x100, (uint32_t)FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP,
		 2, 0);
	dma_write_addr(fw, 0x100);
	assert_int_equal(get_be32(ram + 0x100), 0);
	put_desc(0x100, FW_CFG_DMA_READ, 10, 0x2000);
	dma_write_addr(fw, 0x100);
	assert_int_equal(get_be32(ram + 0x100), 0);
	assert_memory_equal(ram + 0x2000, "cdefgh\0\0\0\0", 10);
	assert_int_equal(ram[0x200A], 0xEE); /* nothing past the length */
	/* SeaBIOS style: only the low register, high half 0. */
	put_desc(0x180, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, 0x3000);
	uint32_t lo = __builtin_bswap32(0x180);
	fw_cfg_pio(fw, 8, 4, &lo, true);
	assert_memory_equal(ram + 0x3000, "QEMU", 4);
	assert_int_equal(fw->dma_errors, 0);
}

static void test_dma_hostile(void **state)
{
	struct fw_cfg *fw = *state;
	/* Buffer past the end of RAM: refused, ERROR reported, RAM untouched. */
	put_desc(0x100, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 0x20,
		 RAM_BYTES - 0x10);
	dma_write_addr(fw, 0x100);
	assert_int_equal(get_be32(ram + 0x100), FW_CFG_DMA_ERROR);
	assert_int_equal(ram[RAM_BYTES - 0x10], 0xEE);
	/* Length wrapping the address space. */
	put_desc(0x100, FW_CFG_DMA_READ, 0xFFFFFFFF, 0x1000);
	assert_int_equal(fw_cfg_dma(fw, 0x100), -EFAULT);
	assert_int_equal(get_be32(ram + 0x100), FW_CFG_DMA_ERROR);
	/* 64-bit buffer address far above RAM. */
	put_desc(0x100, FW_CFG_DMA_READ, 4, 0xFFFFFFFFFFFFFFF0ull);
	assert_int_equal(fw_cfg_dma(fw, 0x100), -EFAULT);
	/* Descriptor itself outside RAM (and straddling its end): nothing written anywhere. */
	assert_int_equal(fw_cfg_dma(fw, RAM_BYTES - 8), -EFAULT);
	dma_write_addr(fw, 0x123400000000ull);
	/* Writes are refused. */
	put_desc(0x100, FW_CFG_DMA_WRITE, 4, 0x2000);
	assert_int_equal(fw_cfg_dma(fw, 0x100), -EINVAL);
	assert_int_equal(get_be32(ram + 0x100), FW_CFG_DMA_ERROR);
	assert_int_equal(fw->dma_errors, 6);
	/* The device still works afterwards. */
	put_desc(0x100, FW_CFG_ID << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, 0x2000);
	assert_int_equal(fw_cfg_dma(fw, 0x100), 0);
	assert_int_equal(get_le32(ram + 0x2000), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_items_and_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_read_skip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_hostile, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
