/* tests/unit/vhdx_test.c - the VHDX backend against hostile input, one corruption per case:
 * a small valid image is built with the library, loaded into memory, one field is broken
 * (checksums recomputed where the case is about something else), and the open or check
 * must fail cleanly with a message naming the problem. Also CRC-32C, log replay in memory
 * and in the file, a torn last log entry, and a parent loop. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx/vhdx-int.h"

#define MIB (1024u * 1024u)
#define META (2u * MIB) /* our layout: metadata at 2 MiB, BAT at 3 MiB, log at 1 MiB */
#define BAT (3u * MIB)
#define LOG (1u * MIB)

static char dir[256];
static uint8_t *image; /* the valid image */
static size_t image_len;

static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static uint8_t *load(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	uint8_t *p = malloc((size_t)st.st_size);
	assert_non_null(p);
	assert_int_equal(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void store(const char *path, const uint8_t *p, size_t len)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* 16 MiB dynamic, 1 MiB blocks, blocks 0, 1 and 5 written. */
static void make_image(const char *path)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX, .subformat = VDISK_SUB_DYNAMIC,
				       .size_bytes = 16 * MIB, .block_bytes = MIB };
	struct vdisk *d;
	uint8_t buf[4096];

	unlink(path);
	assert_int_equal(vdisk_create(path, &o, &d), 0);
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(vdisk_write(d, 0, buf, sizeof(buf)), 0);
	assert_int_equal(vdisk_write(d, MIB + 512, buf, sizeof(buf)), 0);
	assert_int_equal(vdisk_write(d, 5 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(vdisk_close(d), 0);
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vhdx_test.XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	make_image(tmp_path("base.vhdx"));
	image = load(tmp_path("base.vhdx"), &image_len);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	free(image);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static uint8_t *copy_image(void)
{
	uint8_t *p = malloc(image_len);
	assert_non_null(p);
	memcpy(p, image, image_len);
	return p;
}

/* Which header copy is current in our fresh image: the one with the larger sequence. */
static size_t current_header(const uint8_t *p)
{
	return get_le64(p + VHDX_HEADER2_OFFSET + 8) > get_le64(p + VHDX_HEADER1_OFFSET + 8) ?
		       VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET;
}

static void fix_header(uint8_t *p, size_t off)
{
	put_le32(p + off + 4, vhdx_checksum(p + off, VHDX_HEADER_BYTES, 4));
}

static void fix_regions(uint8_t *p)
{
	put_le32(p + VHDX_REGION1_OFFSET + 4, vhdx_checksum(p + VHDX_REGION1_OFFSET,
							    VHDX_REGION_TABLE_BYTES, 4));
	put_le32(p + VHDX_REGION2_OFFSET + 4, vhdx_checksum(p + VHDX_REGION2_OFFSET,
							    VHDX_REGION_TABLE_BYTES, 4));
}

/* Opens through the VHDX backend directly (a broken "vhdxfile" would be probed as raw). */
static int open_vhdx(const char *path, unsigned flags, struct vdisk **out)
{
	struct vdisk base = { .flags = flags | VDISK_OPEN_NOLOCK, .format = VDISK_FORMAT_VHDX };
	base.fd = open(path, (flags & VDISK_OPEN_RDWR) ? O_RDWR : O_RDONLY);
	base.path = strdup(path);
	assert_true(base.fd >= 0 && base.path);
	int r = vhdx_open(&base, out);
	if (r < 0) {
		close(base.fd);
		free(base.path);
	}
	return r;
}

static void expect_refused(uint8_t *p, size_t len, int err, const char *words)
{
	struct vdisk *d = NULL;
	store(tmp_path("t.vhdx"), p, len);
	int r = open_vhdx(tmp_path("t.vhdx"), 0, &d);
	if (r == 0)
		vdisk_close(d);
	assert_int_equal(r, -err);
	if (!strstr(vdisk_errmsg(), words))
		fail_msg("message \"%s\" lacks \"%s\"", vdisk_errmsg(), words);
	free(p);
}

static void expect_opens(uint8_t *p, size_t len)
{
	struct vdisk *d = NULL;
	uint8_t buf[4096];
	store(tmp_path("t.vhdx"), p, len);
	if (open_vhdx(tmp_path("t.vhdx"), 0, &d) < 0)
		fail_msg("open failed: %s", vdisk_errmsg());
	assert_int_equal(vdisk_read(d, MIB + 512, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[4095], 0xab);
	vdisk_close(d);
	free(p);
}

struct findings {
	int errors;
	char text[8192];
};

static void collect(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	struct findings *f = opaque;
	size_t n = strlen(f->text);
	snprintf(f->text + n, sizeof(f->text) - n, "%s: %s\n",
		 sev == VDISK_CHECK_ERROR ? "error" : "info", msg);
	f->errors += sev == VDISK_CHECK_ERROR;
}

static int check_file(const char *path, unsigned flags, struct findings *f)
{
	memset(f, 0, sizeof(*f));
	return vdisk_check(path, flags, collect, f);
}

/* ---- cases ---- */

static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(vhdx_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(vhdx_crc32c("", 0), 0);
}

static void test_valid_image(void **state)
{
	(void)state;
	struct findings f;
	expect_opens(copy_image(), image_len);
	assert_int_equal(check_file(tmp_path("base.vhdx"), 0, &f), 0);
	assert_non_null(strstr(f.text, "dynamic, virtual size 16777216"));
}

static void test_signature(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	p[7] = 'X';
	expect_refused(p, image_len, EINVAL, "is not \"vhdxfile\"");
}

static void test_truncated_header_section(void **state)
{
	(void)state;
	expect_refused(copy_image(), 200 * 1024, EINVAL, "shorter than the 1 MiB");
}

static void test_one_header_bad_crc(void **state)
{
	(void)state;
	struct findings f;
	uint8_t *p = copy_image();
	size_t cur = current_header(p);
	p[cur + 100] ^= 1; /* the current one: the other, older copy must be used */
	store(tmp_path("h.vhdx"), p, image_len);
	expect_opens(p, image_len);
	assert_int_equal(check_file(tmp_path("h.vhdx"), 0, &f), 0);
	assert_non_null(strstr(f.text, "checksum 0x"));
}

static void test_both_headers_bad_crc(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	p[VHDX_HEADER1_OFFSET + 100] ^= 1;
	p[VHDX_HEADER2_OFFSET + 100] ^= 1;
	expect_refused(p, image_len, EINVAL, "no valid header: header 1 (offset 65536): checksum");
}

static void test_equal_sequence_different(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + VHDX_HEADER1_OFFSET + 8, 7);
	put_le64(p + VHDX_HEADER2_OFFSET + 8, 7);
	p[VHDX_HEADER1_OFFSET + 16] ^= 1; /* FileWriteGuid differs */
	fix_header(p, VHDX_HEADER1_OFFSET);
	fix_header(p, VHDX_HEADER2_OFFSET);
	expect_refused(p, image_len, EINVAL, "both headers have sequence number 7 but different");
}

static void test_equal_sequence_identical(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	memcpy(p + VHDX_HEADER1_OFFSET, p + current_header(p), VHDX_HEADER_BYTES);
	memcpy(p + VHDX_HEADER2_OFFSET, p + VHDX_HEADER1_OFFSET, VHDX_HEADER_BYTES);
	expect_opens(p, image_len); /* Disk2VHD style */
}

static void test_region_copy1_bad(void **state)
{
	(void)state;
	struct findings f;
	uint8_t *p = copy_image();
	p[VHDX_REGION1_OFFSET + 1000] ^= 1;
	store(tmp_path("r.vhdx"), p, image_len);
	expect_opens(p, image_len);
	assert_int_equal(check_file(tmp_path("r.vhdx"), 0, &f), 1);
	assert_non_null(strstr(f.text, "region table copy 1 is damaged"));
}

static void test_region_both_bad(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	p[VHDX_REGION1_OFFSET + 1000] ^= 1;
	p[VHDX_REGION2_OFFSET + 1000] ^= 1;
	expect_refused(p, image_len, EINVAL, "both region tables are damaged");
}

static void test_region_count(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le32(p + VHDX_REGION1_OFFSET + 8, 5000);
	put_le32(p + VHDX_REGION2_OFFSET + 8, 5000);
	fix_regions(p);
	expect_refused(p, image_len, EINVAL, "entry count 5000 exceeds 2047");
}

static void test_unknown_required_region(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	for (size_t t = VHDX_REGION1_OFFSET; t <= VHDX_REGION2_OFFSET; t += VHDX_REGION_TABLE_BYTES) {
		put_le32(p + t + 8, 3);
		memset(p + t + 16 + 64, 0x5a, 16);
		put_le64(p + t + 16 + 64 + 16, 8 * MIB);
		put_le32(p + t + 16 + 64 + 24, MIB);
		put_le32(p + t + 16 + 64 + 28, 1);
	}
	fix_regions(p);
	expect_refused(p, image_len, ENOTSUP, "unknown required region");
}

static void test_unknown_required_metadata(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le16(p + META + 10, 6);
	uint8_t *e = p + META + 32 + 5 * 32;
	memset(e, 0x77, 16);
	put_le32(e + 16, 0x10100);
	put_le32(e + 20, 8);
	put_le32(e + 24, VHDX_META_IS_REQUIRED);
	expect_refused(p, image_len, ENOTSUP, "unknown required item");
}

static void test_block_size_3mib(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le32(p + META + 0x10000, 3 * MIB);
	expect_refused(p, image_len, EINVAL, "block size 3145728 is not a power of two");
}

static void test_virtual_size_65tib(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + META + 0x10008, 65ull << 40);
	expect_refused(p, image_len, EINVAL, "up to 64 TiB");
}

static void test_bat_region_too_small(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + META + 0x10008, 200ull << 30); /* 200 GiB of 1 MiB blocks */
	expect_refused(p, image_len, EINVAL, "BAT region of 1048576 bytes is too small");
}

static void test_missing_item(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le16(p + META + 10, 4); /* drops VirtualDiskId, the fifth entry */
	expect_refused(p, image_len, EINVAL, "required metadata item VirtualDiskId is missing");
}

static void test_bat_past_eof(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + BAT + 8 * 2, (1000ull * MIB) | VHDX_BLOCK_FULLY_PRESENT);
	expect_refused(p, image_len, EINVAL, "BAT entry 2: payload block at file offset "
					     "1048576000 is past the end");
}

static void test_bat_overlaps_metadata(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + BAT + 8 * 3, (uint64_t)META | VHDX_BLOCK_FULLY_PRESENT);
	expect_refused(p, image_len, EINVAL, "BAT entry 3: payload block at file offset 2097152 "
					     "overlaps");
}

static void test_bat_blocks_overlap(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + BAT + 8 * 7, get_le64(p + BAT)); /* block 7 := block 0's space */
	expect_refused(p, image_len, EINVAL, "BAT entry 7: payload block");
}

static void test_partially_present_in_dynamic(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	uint64_t e = get_le64(p + BAT);
	put_le64(p + BAT, (e & VHDX_BAT_OFFSET_MASK) | VHDX_BLOCK_PARTIALLY_PRESENT);
	expect_refused(p, image_len, EINVAL, "PARTIALLY_PRESENT block in a non-differencing file");
}

static void test_reserved_state(void **state)
{
	(void)state;
	uint8_t *p = copy_image();
	put_le64(p + BAT + 8 * 9, 4);
	expect_refused(p, image_len, EINVAL, "reserved payload block state 4");
}

static void test_check_reports_every_bad_entry(void **state)
{
	(void)state;
	struct findings f;
	uint8_t *p = copy_image();
	put_le64(p + BAT + 8 * 9, 4);
	put_le64(p + BAT + 8 * 10, 4);
	store(tmp_path("c.vhdx"), p, image_len);
	free(p);
	assert_int_equal(check_file(tmp_path("c.vhdx"), 0, &f), 2);
	assert_non_null(strstr(f.text, "BAT entry 9"));
	assert_non_null(strstr(f.text, "BAT entry 10"));
}

/* ---- log ---- */

static void set_log_guid(uint8_t *p, const uint8_t guid[16])
{
	for (size_t h = VHDX_HEADER1_OFFSET; h <= VHDX_HEADER2_OFFSET; h += 64 * 1024) {
		memcpy(p + h + 48, guid, 16);
		fix_header(p, h);
	}
}

/* One entry at log offset at (with the given Tail) writing `page` to file offset `target`. */
static void put_entry_at(uint8_t *p, uint32_t at, uint32_t tail, const uint8_t guid[16],
			 uint64_t seq, uint64_t target, const uint8_t *page, uint64_t flushed)
{
	uint8_t *e = p + LOG + at;
	memset(e, 0, 8192);
	put_le32(e, VHDX_LOG_ENTRY_SIGNATURE);
	put_le32(e + 8, 8192);
	put_le32(e + 12, tail);
	put_le64(e + 16, seq);
	put_le32(e + 24, 1);
	memcpy(e + 32, guid, 16);
	put_le64(e + 48, flushed);
	put_le64(e + 56, 8 * MIB);
	put_le32(e + 64, VHDX_LOG_DESC_SIGNATURE);
	memcpy(e + 64 + 4, page + 4092, 4);
	memcpy(e + 64 + 8, page, 8);
	put_le64(e + 64 + 16, target);
	put_le64(e + 64 + 24, seq);
	put_le32(e + 4096, VHDX_LOG_DATA_SIGNATURE);
	put_le32(e + 4096 + 4, (uint32_t)(seq >> 32));
	memcpy(e + 4096 + 8, page + 8, 4084);
	put_le32(e + 4096 + 4092, (uint32_t)seq);
	put_le32(e + 4, vhdx_checksum(e, 8192, 4));
}

static void put_entry(uint8_t *p, const uint8_t guid[16], uint64_t seq, uint64_t target,
		      const uint8_t *page, uint64_t flushed)
{
	put_entry_at(p, 0, 0, guid, seq, target, page, flushed);
}

static const uint8_t guid_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t guid_b[16] = { 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1 };

/* A logged BAT page that makes block 2 FULLY_PRESENT at block 0's data (only via log). */
static uint8_t *image_with_log(const uint8_t *entry_guid, uint64_t flushed)
{
	uint8_t *p = copy_image(), page[4096];
	memcpy(page, p + BAT, sizeof(page));
	put_le64(page + 8 * 2, get_le64(page));
	put_le64(page, 0); /* block 0 moves to block 2: the log is what makes it visible */
	set_log_guid(p, guid_a);
	put_entry(p, entry_guid, 5, BAT, page, flushed);
	return p;
}

static void test_log_replay_in_memory(void **state)
{
	(void)state;
	uint8_t *p = image_with_log(guid_a, 4 * MIB), buf[16];
	struct vdisk *d;
	struct vdisk_info info;
	store(tmp_path("l.vhdx"), p, image_len);
	assert_int_equal(open_vhdx(tmp_path("l.vhdx"), 0, &d), 0);
	assert_int_equal(vdisk_read(d, 2 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(vdisk_read(d, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(vdisk_get_info(d, &info), 0);
	assert_int_equal(info.log_state, VDISK_LOG_REPLAYED_MEMORY);
	vdisk_close(d);
	size_t len;
	uint8_t *after = load(tmp_path("l.vhdx"), &len);
	assert_int_equal(len, image_len);
	assert_memory_equal(after, p, len); /* the file was not touched */
	free(after);
	/* Read-write: replayed into the file, LogGuid cleared. */
	assert_int_equal(open_vhdx(tmp_path("l.vhdx"), VDISK_OPEN_RDWR, &d), 0);
	assert_int_equal(vdisk_get_info(d, &info), 0);
	assert_int_equal(info.log_state, VDISK_LOG_REPLAYED_FILE);
	vdisk_close(d);
	assert_int_equal(open_vhdx(tmp_path("l.vhdx"), 0, &d), 0);
	assert_int_equal(vdisk_get_info(d, &info), 0);
	assert_int_equal(info.log_state, VDISK_LOG_CLEAN);
	assert_int_equal(vdisk_read(d, 2 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xab);
	vdisk_close(d);
	free(p);
}

/* A zero descriptor (2.3.1.2) over block 1's payload: zeros in memory and in the file. */
static void test_log_zero_descriptor(void **state)
{
	(void)state;
	uint8_t *p = copy_image(), buf[4096];
	struct vdisk *d;
	uint64_t block1 = get_le64(p + BAT + 8) & VHDX_BAT_OFFSET_MASK;
	uint8_t *e = p + LOG;
	set_log_guid(p, guid_a);
	memset(e, 0, 4096);
	put_le32(e, VHDX_LOG_ENTRY_SIGNATURE);
	put_le32(e + 8, 4096);
	put_le64(e + 16, 9);
	put_le32(e + 24, 1);
	memcpy(e + 32, guid_a, 16);
	put_le64(e + 56, 8 * MIB);
	put_le32(e + 64, VHDX_LOG_ZERO_SIGNATURE);
	put_le64(e + 64 + 8, 8192); /* ZeroLength */
	put_le64(e + 64 + 16, block1);
	put_le64(e + 64 + 24, 9);
	put_le32(e + 4, vhdx_checksum(e, 4096, 4));
	store(tmp_path("z.vhdx"), p, image_len);
	free(p);
	for (int rw = 0; rw < 2; rw++) {
		assert_int_equal(open_vhdx(tmp_path("z.vhdx"), rw ? VDISK_OPEN_RDWR : 0, &d), 0);
		assert_int_equal(vdisk_read(d, MIB, buf, sizeof(buf)), 0);
		assert_true(vdisk_buf_is_zero(buf, sizeof(buf)));
		assert_int_equal(vdisk_read(d, 0, buf, 16), 0);
		assert_int_equal(buf[0], 0xab); /* block 0 untouched */
		vdisk_close(d);
	}
	assert_int_equal(open_vhdx(tmp_path("z.vhdx"), 0, &d), 0); /* after the in-file replay */
	assert_int_equal(vdisk_read(d, MIB + 512, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[4095], 0); /* 8 KiB zeroed: [MIB, MIB + 8192) */
	vdisk_close(d);
}

static void test_log_bad_checksum(void **state)
{
	(void)state;
	uint8_t *p = image_with_log(guid_a, 4 * MIB);
	p[LOG + 4096 + 100] ^= 1;
	expect_refused(p, image_len, EINVAL, "holds no valid entry sequence");
}

static void test_log_guid_mismatch(void **state)
{
	(void)state;
	expect_refused(image_with_log(guid_b, 4 * MIB), image_len, EINVAL,
		       "(1 entries of other sessions ignored)");
}

static void test_log_flushed_offset_past_eof(void **state)
{
	(void)state;
	expect_refused(image_with_log(guid_a, 1024 * MIB), image_len, EINVAL,
		       "says 1073741824 bytes were already flushed: truncated");
}

/* Windows hazard: the first entry of a new session names a Tail in the previous session.
 * The spec rule finds no sequence; we replay the highest contiguous run and say so. */
static void test_log_stale_tail_fallback(void **state)
{
	(void)state;
	uint8_t *p = copy_image(), page[4096], buf[16];
	struct vdisk *d;
	struct findings f;
	memcpy(page, p + BAT, sizeof(page));
	put_le64(page + 8 * 2, get_le64(page));
	put_le64(page, 0);
	set_log_guid(p, guid_a);
	put_entry_at(p, 0, 0, guid_b, 90, BAT, p + BAT, 4 * MIB);     /* old session */
	put_entry_at(p, 8192, 0, guid_a, 5, BAT, page, 4 * MIB);      /* tail -> old entry */
	store(tmp_path("st.vhdx"), p, image_len);
	free(p);
	assert_int_equal(open_vhdx(tmp_path("st.vhdx"), 0, &d), 0);
	assert_true(((struct vhdx_disk *)d)->log.stale_tail);
	assert_int_equal(vdisk_read(d, 2 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xab);
	vdisk_close(d);
	assert_int_equal(check_file(tmp_path("st.vhdx"), 0, &f), 0);
	assert_non_null(strstr(f.text, "stale-tail fallback"));
	assert_non_null(strstr(f.text, "needs replay"));
}

/* 128 logged allocations: the last entry wraps around the end of the 1 MiB ring. Undo its
 * BAT update in the file (a crash between log flush and apply): replay must redo it. */
static void test_log_wrapped_entry(void **state)
{
	(void)state;
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX, .subformat = VDISK_SUB_DYNAMIC,
				       .size_bytes = 256 * MIB, .block_bytes = MIB };
	const char *path = tmp_path("wrap.vhdx");
	struct vdisk *d;
	uint8_t buf[512];
	unlink(path);
	assert_int_equal(vdisk_create(path, &o, &d), 0);
	vdisk_close(d);
	pid_t pid = fork();
	if (pid == 0) {
		if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
			_exit(1);
		for (unsigned i = 0; i < 128; i++) {
			memset(buf, i + 1, sizeof(buf));
			if (vdisk_write(d, (uint64_t)i * MIB, buf, sizeof(buf)) < 0 || vdisk_flush(d) < 0)
				_exit(1);
		}
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	size_t len;
	uint8_t *p = load(path, &len);
	/* opener 4 KiB + 127 entries of 8 KiB end 4 KiB before the ring's end */
	assert_int_equal(get_le32(p + LOG + MIB - 4096), VHDX_LOG_ENTRY_SIGNATURE);
	assert_int_equal(get_le32(p + LOG + MIB - 4096 + 8), 8192);
	put_le64(p + BAT + 8 * 127, 0);
	store(path, p, len);
	free(p);
	assert_int_equal(vdisk_open(path, 0, &d), 0);
	assert_int_equal(vdisk_read(d, 127 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 128);
	assert_int_equal(vdisk_read(d, 5 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 6);
	vdisk_close(d);
}

/* A writer killed after a flush leaves LogGuid set; a torn (garbled) entry after the last
 * good one must be ignored and the good one replayed. */
static void test_torn_last_entry(void **state)
{
	(void)state;
	const char *path = tmp_path("torn.vhdx");
	uint8_t buf[4096];
	make_image(path);
	pid_t pid = fork();
	if (pid == 0) {
		struct vdisk *d;
		memset(buf, 0xcd, sizeof(buf));
		if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0 ||
		    vdisk_write(d, 9 * MIB, buf, sizeof(buf)) < 0 || vdisk_flush(d) < 0)
			_exit(1);
		_exit(0); /* no close: the log stays active */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	size_t len;
	uint8_t *p = load(path, &len);
	size_t cur = current_header(p);
	assert_false(vhdx_guid_is_zero(p + cur + 48));
	/* Find the end of the valid entries and put a torn copy of the last one there. */
	size_t at = LOG, last = 0;
	while (get_le32(p + at) == VHDX_LOG_ENTRY_SIGNATURE && memcmp(p + at + 32, p + cur + 48, 16) == 0) {
		last = at;
		at += get_le32(p + at + 8);
	}
	assert_true(last != 0 || at > LOG);
	uint32_t elen = get_le32(p + last + 8);
	memcpy(p + at, p + last, elen);
	put_le64(p + at + 16, get_le64(p + last + 16) + 1);
	memset(p + at + elen / 2, 0xee, elen / 2); /* the second half never reached the disk */
	store(path, p, len);
	free(p);
	struct vdisk *d;
	assert_int_equal(vdisk_open(path, VDISK_OPEN_RDWR, &d), 0);
	assert_int_equal(vdisk_read(d, 9 * MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xcd);
	assert_int_equal(buf[4095], 0xcd);
	assert_int_equal(vdisk_close(d), 0);
}

/* ---- differencing ---- */

static void test_parent_loop(void **state)
{
	(void)state;
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX,
				       .subformat = VDISK_SUB_DIFFERENCING };
	struct vdisk *d;
	make_image(tmp_path("p.vhdx"));
	o.parent_path = tmp_path("p.vhdx");
	unlink(tmp_path("c.vhdx"));
	assert_int_equal(vdisk_create(tmp_path("c.vhdx"), &o, &d), 0);
	char dwg[40];
	vdisk_guid_to_str(((struct vhdx_disk *)d)->header + 32, dwg);
	vdisk_close(d);
	/* Point the locator at the child itself, with the child's own DataWriteGuid. */
	size_t len;
	uint8_t *p = load(tmp_path("c.vhdx"), &len);
	uint8_t *pl = p + META + 0x10028;
	for (unsigned i = 0; i < get_le16(pl + 18); i++) {
		uint8_t *e = pl + 20 + 12 * i;
		uint8_t *val = pl + get_le32(e + 4);
		unsigned vl = get_le16(e + 10);
		if (get_le16(pl + get_le32(e)) == 'p' && get_le16(pl + get_le32(e) + 8) == 'n') {
			for (unsigned k = 0; k < 36; k++) /* parent_linkage: "{guid}" */
				put_le16(val + 2 + 2 * k, (uint8_t)dwg[k]);
		} else if (get_le16(pl + get_le32(e)) == 'r') {
			put_le16(val + vl - 12, 'c'); /* ".\p.vhdx" -> ".\c.vhdx" */
		}
	}
	store(tmp_path("c.vhdx"), p, len);
	free(p);
	int r = vdisk_open(tmp_path("c.vhdx"), VDISK_OPEN_NOLOCK, &d);
	if (r == 0)
		vdisk_close(d);
	assert_int_equal(r, -ELOOP);
	assert_non_null(strstr(vdisk_errmsg(), "loop"));
}

static void test_diff_partial_write_copies_parent(void **state)
{
	(void)state;
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX,
				       .subformat = VDISK_SUB_DIFFERENCING, .block_bytes = MIB };
	struct vdisk *d;
	uint8_t buf[8192];
	make_image(tmp_path("p2.vhdx"));
	o.parent_path = tmp_path("p2.vhdx");
	unlink(tmp_path("c2.vhdx"));
	assert_int_equal(vdisk_create(tmp_path("c2.vhdx"), &o, &d), 0);
	memset(buf, 0x11, 512);
	assert_int_equal(vdisk_write(d, MIB + 1024, buf, 512), 0); /* inside parent data */
	assert_int_equal(vdisk_close(d), 0);
	assert_int_equal(vdisk_open(tmp_path("c2.vhdx"), 0, &d), 0);
	assert_int_equal(vdisk_read(d, MIB, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0);       /* parent: zeros before its data at +512 */
	assert_int_equal(buf[512], 0xab);  /* parent data kept around the child's write */
	assert_int_equal(buf[1024], 0x11); /* child's write */
	assert_int_equal(buf[1536], 0xab);
	assert_int_equal(buf[4608], 0);
	vdisk_close(d);
}

/* PARTIALLY_PRESENT (written by Windows, never by us): the sector bitmap, LSB first, picks
 * the child's sectors; the others come from the parent. */
static void test_diff_partially_present_read(void **state)
{
	(void)state;
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX,
				       .subformat = VDISK_SUB_DIFFERENCING, .block_bytes = MIB };
	struct vdisk *d;
	uint8_t buf[4096];
	make_image(tmp_path("pp.vhdx"));
	o.parent_path = tmp_path("pp.vhdx");
	unlink(tmp_path("pc.vhdx"));
	assert_int_equal(vdisk_create(tmp_path("pc.vhdx"), &o, &d), 0);
	memset(buf, 0x22, sizeof(buf));
	assert_int_equal(vdisk_write(d, 0, buf, sizeof(buf)), 0); /* block 0 in the child */
	assert_int_equal(vdisk_close(d), 0);
	size_t len;
	uint8_t *p = load(tmp_path("pc.vhdx"), &len);
	assert_int_equal(len % MIB, 0);
	uint8_t *q = calloc(1, len + MIB);
	memcpy(q, p, len);
	free(p);
	uint64_t e = get_le64(q + BAT);
	assert_int_equal(e & 7, VHDX_BLOCK_FULLY_PRESENT);
	put_le64(q + BAT, (e & VHDX_BAT_OFFSET_MASK) | VHDX_BLOCK_PARTIALLY_PRESENT);
	put_le64(q + BAT + 8 * 4096, (uint64_t)len | VHDX_SB_PRESENT); /* chunk 0's bitmap */
	q[len] = 0x0c; /* sectors 2 and 3 of block 0 are the child's */
	store(tmp_path("pc.vhdx"), q, len + MIB);
	free(q);
	assert_int_equal(vdisk_open(tmp_path("pc.vhdx"), 0, &d), 0);
	assert_int_equal(vdisk_read(d, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xab);    /* sector 0: parent */
	assert_int_equal(buf[1023], 0xab); /* sector 1: parent */
	assert_int_equal(buf[1024], 0x22); /* sector 2: child */
	assert_int_equal(buf[2047], 0x22); /* sector 3: child */
	assert_int_equal(buf[2048], 0xab); /* sector 4: parent */
	uint64_t run;
	unsigned st;
	assert_int_equal(vdisk_map(d, 0, 16 * MIB, &run, &st), 0);
	assert_int_equal(st, VDISK_EXTENT_DATA);
	vdisk_close(d);
	/* Writing converts the block to FULLY_PRESENT with the parent's sectors copied in. */
	assert_int_equal(vdisk_open(tmp_path("pc.vhdx"), VDISK_OPEN_RDWR, &d), 0);
	memset(buf, 0x33, 512);
	assert_int_equal(vdisk_write(d, 3 * 512, buf, 512), 0);
	assert_int_equal(vdisk_close(d), 0);
	assert_int_equal(vdisk_open(tmp_path("pc.vhdx"), 0, &d), 0);
	assert_int_equal(vdisk_read(d, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[1024], 0x22);
	assert_int_equal(buf[1536], 0x33);
	assert_int_equal(buf[2048], 0xab);
	vdisk_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_valid_image),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_truncated_header_section),
		cmocka_unit_test(test_one_header_bad_crc),
		cmocka_unit_test(test_both_headers_bad_crc),
		cmocka_unit_test(test_equal_sequence_different),
		cmocka_unit_test(test_equal_sequence_identical),
		cmocka_unit_test(test_region_copy1_bad),
		cmocka_unit_test(test_region_both_bad),
		cmocka_unit_test(test_region_count),
		cmocka_unit_test(test_unknown_required_region),
		cmocka_unit_test(test_unknown_required_metadata),
		cmocka_unit_test(test_block_size_3mib),
		cmocka_unit_test(test_virtual_size_65tib),
		cmocka_unit_test(test_bat_region_too_small),
		cmocka_unit_test(test_missing_item),
		cmocka_unit_test(test_bat_past_eof),
		cmocka_unit_test(test_bat_overlaps_metadata),
		cmocka_unit_test(test_bat_blocks_overlap),
		cmocka_unit_test(test_partially_present_in_dynamic),
		cmocka_unit_test(test_reserved_state),
		cmocka_unit_test(test_check_reports_every_bad_entry),
		cmocka_unit_test(test_log_replay_in_memory),
		cmocka_unit_test(test_log_zero_descriptor),
		cmocka_unit_test(test_log_bad_checksum),
		cmocka_unit_test(test_log_guid_mismatch),
		cmocka_unit_test(test_log_flushed_offset_past_eof),
		cmocka_unit_test(test_torn_last_entry),
		cmocka_unit_test(test_log_stale_tail_fallback),
		cmocka_unit_test(test_log_wrapped_entry),
		cmocka_unit_test(test_diff_partially_present_read),
		cmocka_unit_test(test_parent_loop),
		cmocka_unit_test(test_diff_partial_write_copies_parent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
