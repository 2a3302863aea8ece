/* tests/unit/vhd_test.c - the VHD backend on hostile input: a tiny dynamic VHD built here
 * byte by byte (independent checksum code), one corruption per case, each refused with the
 * expected errno and a message naming the field; plus create/write/reopen and limits. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx/vdisk.h"

/* Fixture layout (4 KiB blocks, 16 KiB disk, 4 BAT entries, blocks 0 and 2 allocated):
 *   0 footer copy | 512 dynamic header | 1536 BAT | 2048 bitmap 0 | 2560 data 0 (0xab)
 *   6656 bitmap 2 | 7168 data 2 (0xcd) | 11264 footer | 11776 end */
#define FX_DISK 16384u
#define FX_BLOCK 4096u
#define FX_DYN 512u
#define FX_BAT 1536u
#define FX_B0 2048u
#define FX_B2 6656u
#define FX_FOOTER 11264u
#define FX_BYTES 11776u

struct fx {
	uint8_t b[FX_BYTES + 4096];
	size_t len;
	bool keep_footer_csum, keep_dyn_csum; /* leave a corrupted checksum alone */
};

static char dir[256];
static char path[300];

static void be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* Spec: one's complement of the byte sum with the checksum field as zero. */
static void seal(uint8_t *p, size_t len, size_t csum_off)
{
	uint32_t sum = 0;
	memset(p + csum_off, 0, 4);
	for (size_t i = 0; i < len; i++)
		sum += p[i];
	be32(p + csum_off, ~sum);
}

static void footer(uint8_t *f, uint32_t type)
{
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	be32(f + 8, 2);
	be32(f + 12, 0x00010000);
	be64(f + 16, type == 2 ? UINT64_MAX : FX_DYN);
	memcpy(f + 28, "test", 4);
	be32(f + 32, 0x00010000);
	memcpy(f + 36, "Wi2k", 4);
	be64(f + 40, FX_DISK);
	be64(f + 48, FX_DISK);
	be32(f + 56, 0x00010411); /* CHS 1/4/17: deliberately not the size, creator "test" */
	be32(f + 60, type);
	for (int i = 0; i < 16; i++)
		f[68 + i] = (uint8_t)(0x10 + i);
}

static void fx_init(struct fx *x)
{
	memset(x, 0, sizeof(*x));
	x->len = FX_BYTES;
	footer(x->b, 3);
	uint8_t *h = x->b + FX_DYN;
	memcpy(h, "cxsparse", 8);
	be64(h + 8, UINT64_MAX);
	be64(h + 16, FX_BAT);
	be32(h + 24, 0x00010000);
	be32(h + 28, 4);
	be32(h + 32, FX_BLOCK);
	memset(x->b + FX_BAT, 0xff, 512);
	be32(x->b + FX_BAT, FX_B0 / 512);
	be32(x->b + FX_BAT + 8, FX_B2 / 512);
	memset(x->b + FX_B0, 0xff, 512);
	memset(x->b + FX_B0 + 512, 0xab, FX_BLOCK);
	memset(x->b + FX_B2, 0xff, 512);
	memset(x->b + FX_B2 + 512, 0xcd, FX_BLOCK);
}

/* Recompute checksums and copy the footer to the end, then write the file. */
static void fx_write(struct fx *x)
{
	if (!x->keep_dyn_csum)
		seal(x->b + FX_DYN, 1024, 36);
	if (!x->keep_footer_csum)
		seal(x->b, 512, 64);
	if (x->len >= FX_FOOTER + 512 && !memcmp(x->b + x->len - 512, "\0\0\0\0\0\0\0\0", 8))
		memcpy(x->b + x->len - 512, x->b, 512);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, x->b, x->len), (ssize_t)x->len);
	close(fd);
}

static void expect_refused(struct fx *x, int err, const char *needle)
{
	struct vdisk *d = NULL;
	fx_write(x);
	int r = vdisk_open(path, 0, &d);
	if (r != -err || !strstr(vdisk_errmsg(), needle))
		print_error("got %d (%s), expected %d with \"%s\"\n", r, vdisk_errmsg(), -err,
			    needle);
	assert_int_equal(r, -err);
	assert_non_null(strstr(vdisk_errmsg(), needle));
	assert_null(d);
}

static void test_valid_fixture(void **state)
{
	struct fx x;
	struct vdisk *d;
	uint8_t buf[FX_DISK];
	uint64_t run;
	unsigned st;
	(void)state;

	fx_init(&x);
	fx_write(&x);
	assert_int_equal(vdisk_open(path, 0, &d), 0);
	assert_int_equal(vdisk_size_bytes(d), FX_DISK); /* creator "test": current_size */
	assert_int_equal(vdisk_subformat(d), VDISK_SUB_DYNAMIC);
	assert_int_equal(vdisk_read(d, 0, buf, FX_DISK), 0);
	for (unsigned i = 0; i < FX_DISK; i++) {
		uint8_t want = i < 4096 ? 0xab : i >= 8192 && i < 12288 ? 0xcd : 0;
		if (buf[i] != want)
			fail_msg("byte %u is 0x%02x, expected 0x%02x", i, buf[i], want);
	}
	assert_int_equal(vdisk_map(d, 4096, FX_DISK, &run, &st), 0);
	assert_int_equal(st, VDISK_EXTENT_ZERO);
	assert_int_equal(run, 4096);
	struct vdisk_info info;
	assert_int_equal(vdisk_get_info(d, &info), 0);
	assert_string_equal(info.disk_id, "10111213-1415-1617-1819-1a1b1c1d1e1f");
	assert_string_equal(info.creator, "test 1.0");
	assert_int_equal(info.vhd_chs_size_bytes, 4 * 17 * 512);
	vdisk_close(d);
	/* The CHS reading on request: 1/4/17 is 34816 bytes, more than the 4 entries cover. */
	assert_int_equal(vdisk_open(path, VDISK_OPEN_VHD_CHS, &d), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "cannot cover the 34816-byte disk"));
}

static void test_truncated(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	x.len = 300;
	expect_refused(&x, EINVAL, "too small");
}

static void test_truncated_mid_block(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	seal(x.b, 512, 64);
	memcpy(x.b + 7168, x.b, 512); /* footer right after bitmap 2: block 2 is cut off */
	x.len = 7680;
	expect_refused(&x, EINVAL, "BAT entry 2");
}

static void test_bad_cookie(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	seal(x.b, 512, 64);
	memcpy(x.b + FX_FOOTER, x.b, 512);
	x.b[FX_FOOTER] = 'C';
	x.b[64] ^= 0xff; /* the copy at 0 keeps its cookie (so this probes as VHD) but is bad */
	x.keep_footer_csum = true;
	expect_refused(&x, EINVAL, "cookie is not \"conectix\"");
}

static void test_bad_footer_checksum(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	seal(x.b, 512, 64);
	x.b[64 + 3] ^= 1;
	memcpy(x.b + FX_FOOTER, x.b, 512);
	x.keep_footer_csum = true;
	expect_refused(&x, EINVAL, "footer checksum");
}

static char first_error[1024];

static void report_count(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	int *counts = opaque;
	if (sev == VDISK_CHECK_ERROR && counts[sev] == 0)
		snprintf(first_error, sizeof(first_error), "%s", msg);
	counts[sev]++;
}

/* A damaged EOF footer with a good copy at 0: opens, check warns, rw open repairs it. */
static void test_eof_footer_recovered(void **state)
{
	struct fx x;
	struct vdisk *d;
	int counts[3] = { 0 };
	(void)state;

	fx_init(&x);
	seal(x.b + FX_DYN, 1024, 36);
	seal(x.b, 512, 64);
	memcpy(x.b + FX_FOOTER, x.b, 512);
	x.b[FX_FOOTER + 100] = 0x55; /* checksum now wrong */
	x.keep_footer_csum = x.keep_dyn_csum = true;
	fx_write(&x);
	assert_int_equal(vdisk_open(path, 0, &d), 0);
	vdisk_close(d);
	assert_int_equal(vdisk_check(path, 0, report_count, counts), 1); /* the EOF footer */
	assert_true(counts[VDISK_CHECK_WARN] >= 1);
	assert_int_equal(vdisk_open(path, VDISK_OPEN_RDWR, &d), 0);
	assert_int_equal(vdisk_close(d), 0);
	memset(counts, 0, sizeof(counts));
	assert_int_equal(vdisk_check(path, 0, report_count, counts), 0);
}

/* A damaged copy at 0 with a good EOF footer: opens, check errs, a rw open rewrites it. */
static void test_footer_copy_repaired(void **state)
{
	struct fx x;
	struct vdisk *d;
	int counts[3] = { 0 };
	(void)state;

	fx_init(&x);
	seal(x.b + FX_DYN, 1024, 36);
	seal(x.b, 512, 64);
	memcpy(x.b + FX_FOOTER, x.b, 512);
	x.b[200] = 0x55; /* the copy's checksum is now wrong */
	x.keep_footer_csum = x.keep_dyn_csum = true;
	fx_write(&x);
	assert_int_equal(vdisk_check(path, 0, report_count, counts), 1);
	assert_int_equal(vdisk_open(path, VDISK_OPEN_RDWR, &d), 0);
	assert_int_equal(vdisk_close(d), 0);
	memset(counts, 0, sizeof(counts));
	assert_int_equal(vdisk_check(path, 0, report_count, counts), 0);
	assert_int_equal(counts[VDISK_CHECK_WARN], 0);
}

static void test_unknown_disk_type(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + 60, 5);
	expect_refused(&x, ENOTSUP, "disk type 5");
}

static void test_footer_version(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + 12, 0x00020000);
	expect_refused(&x, ENOTSUP, "version");
}

static void test_size_not_sector_multiple(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be64(x.b + 48, FX_DISK - 100);
	expect_refused(&x, EINVAL, "virtual size");
}

static void test_size_too_large(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be64(x.b + 48, 0xff000001ull * 512);
	expect_refused(&x, EINVAL, "2040 GiB");
}

static void test_dyn_offset_past_eof(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be64(x.b + 16, 1u << 20);
	expect_refused(&x, EINVAL, "dynamic header offset");
}

static void test_dyn_cookie(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	memcpy(x.b + FX_DYN, "cxsparsX", 8);
	expect_refused(&x, EINVAL, "cxsparse");
}

static void test_dyn_checksum(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	seal(x.b + FX_DYN, 1024, 36);
	x.b[FX_DYN + 600] ^= 0x40;
	x.keep_dyn_csum = true;
	expect_refused(&x, EINVAL, "dynamic header checksum");
}

static void test_table_offset_past_eof(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be64(x.b + FX_DYN + 16, 1u << 30);
	expect_refused(&x, EINVAL, "BAT at offset");
}

static void test_table_overlaps_header(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be64(x.b + FX_DYN + 16, 1024);
	expect_refused(&x, EINVAL, "overlaps the dynamic header");
}

static void test_max_entries_absurd(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_DYN + 28, 0xffffffffu);
	expect_refused(&x, EINVAL, "max table entries");
}

static void test_max_entries_too_few(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_DYN + 28, 2);
	expect_refused(&x, EINVAL, "cannot cover");
}

static void test_block_size_zero(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_DYN + 32, 0);
	expect_refused(&x, EINVAL, "block size 0");
}

static void test_block_size_not_pow2(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_DYN + 32, 5000);
	expect_refused(&x, EINVAL, "block size 5000");
}

static void test_block_size_huge(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_DYN + 32, 1u << 31);
	expect_refused(&x, EINVAL, "block size");
}

static void test_bat_into_header(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_BAT, 1); /* block 0 at offset 512: the dynamic header */
	expect_refused(&x, EINVAL, "BAT entry 0");
}

static void test_bat_past_eof(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_BAT + 4, 0x00100000);
	expect_refused(&x, EINVAL, "BAT entry 1");
}

static void test_bat_overlap(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + FX_BAT + 8, FX_B0 / 512 + 1);
	expect_refused(&x, EINVAL, "overlap");
}

static void test_fixed_data_offset(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + 60, 2); /* fixed, but data offset still points at a header */
	expect_refused(&x, EINVAL, "data offset");
}

static void test_fixed_truncated(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	footer(x.b, 2);
	be64(x.b + 48, 1u << 20); /* 1 MiB disk in an 11 KiB file */
	seal(x.b, 512, 64);
	memcpy(x.b + FX_FOOTER, x.b, 512);
	memset(x.b, 0, 512); /* fixed disks have no copy at 0 */
	x.keep_footer_csum = true;
	expect_refused(&x, EINVAL, "truncated");
}

/* Differencing fixture: one locator's text at 11264 (after block 2), footer moved. W2ru
 * and W2ku texts are UTF-16LE (ASCII here), MacX UTF-8. */
static void make_differencing_with(struct fx *x, const char *code, const char *locator)
{
	fx_init(x);
	be32(x->b + 60, 4);
	size_t n = strlen(locator), unit = strcmp(code, "MacX") ? 2 : 1;
	for (size_t i = 0; i < n; i++)
		x->b[FX_FOOTER + unit * i] = (uint8_t)locator[i];
	uint8_t *l = x->b + FX_DYN + 576;
	memcpy(l, code, 4);
	be32(l + 4, 512);
	be32(l + 8, (uint32_t)(unit * n));
	be64(l + 16, FX_FOOTER);
	x->len = FX_BYTES + 512;
}

static void make_differencing(struct fx *x, const char *locator)
{
	make_differencing_with(x, "W2ru", locator);
}

/* A real parent p.vhd next to the child, block 1 (4-8 KiB) filled with 0x42; its unique id
 * goes into the fixture's dynamic header. */
static void make_parent(struct fx *x, char *parent_path, size_t len)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHD,
				       .subformat = VDISK_SUB_DYNAMIC,
				       .size_bytes = FX_DISK, .block_bytes = FX_BLOCK };
	struct vdisk *p;
	uint8_t fill[FX_BLOCK];

	snprintf(parent_path, len, "%s/p.vhd", dir);
	unlink(parent_path);
	assert_int_equal(vdisk_create(parent_path, &o, &p), 0);
	memset(fill, 0x42, sizeof(fill));
	assert_int_equal(vdisk_write(p, FX_BLOCK, fill, sizeof(fill)), 0);
	assert_int_equal(vdisk_close(p), 0);
	int fd = open(parent_path, O_RDONLY);
	assert_int_equal(pread(fd, x->b + FX_DYN + 40, 16, 68), 16);
	close(fd);
}

static void expect_chain_reads(struct fx *x)
{
	struct vdisk *d;
	uint8_t buf[FX_DISK];

	fx_write(x);
	assert_int_equal(vdisk_open(path, 0, &d), 0);
	assert_non_null(vdisk_parent(d));
	assert_int_equal(vdisk_read(d, 0, buf, FX_DISK), 0);
	assert_int_equal(buf[0], 0xab);      /* child block 0 */
	assert_int_equal(buf[FX_BLOCK], 0x42); /* unallocated in the child: the parent */
	assert_int_equal(buf[2 * FX_BLOCK], 0xcd);
	assert_int_equal(buf[3 * FX_BLOCK], 0);
	vdisk_close(d);
}

static void test_diff_relative_locator(void **state)
{
	struct fx x;
	char pp[300];
	(void)state;
	make_differencing(&x, ".\\p.vhd");
	make_parent(&x, pp, sizeof(pp));
	expect_chain_reads(&x);
}

/* W2ku with a drive letter cannot be used on Linux: the file name next to the child is. */
static void test_diff_drive_letter_locator(void **state)
{
	struct fx x;
	char pp[300];
	(void)state;
	make_differencing_with(&x, "W2ku", "C:\\Users\\someone\\VMs\\p.vhd");
	make_parent(&x, pp, sizeof(pp));
	expect_chain_reads(&x);
}

static void test_diff_macx_locator(void **state)
{
	struct fx x;
	char pp[300], url[320];
	(void)state;
	snprintf(url, sizeof(url), "file://%s/p.vhd", dir);
	make_differencing_with(&x, "MacX", url);
	make_parent(&x, pp, sizeof(pp));
	expect_chain_reads(&x);
}

static void test_diff_wrong_parent_id(void **state)
{
	struct fx x;
	char pp[300];
	(void)state;
	make_differencing(&x, ".\\p.vhd");
	make_parent(&x, pp, sizeof(pp));
	x.b[FX_DYN + 40] ^= 0xff;
	expect_refused(&x, EINVAL, "unique id");
}

static void test_check_locator_overlaps_bat(void **state)
{
	struct fx x;
	int counts[3] = { 0 };
	(void)state;
	make_differencing(&x, ".\\p.vhd");
	be64(x.b + FX_DYN + 576 + 16, FX_BAT);
	fx_write(&x);
	assert_int_equal(vdisk_check(path, 0, report_count, counts), 1);
	assert_non_null(strstr(first_error, "overlaps the BAT"));
}

static void test_diff_no_locator(void **state)
{
	struct fx x;
	(void)state;
	fx_init(&x);
	be32(x.b + 60, 4);
	expect_refused(&x, ENOENT, "no usable parent locator");
}

static void test_diff_locator_outside(void **state)
{
	struct fx x;
	(void)state;
	make_differencing(&x, "x.vhd");
	be64(x.b + FX_DYN + 576 + 16, 1u << 30);
	expect_refused(&x, EINVAL, "parent locator");
}

static void test_diff_parent_missing(void **state)
{
	struct fx x;
	(void)state;
	make_differencing(&x, ".\\missing-parent.vhd");
	expect_refused(&x, ENOENT, "missing-parent.vhd");
}

/* The child names itself as parent, with a matching id: the chain cap stops the loop. */
static void test_diff_parent_loop(void **state)
{
	struct fx x;
	(void)state;
	make_differencing(&x, strrchr(path, '/') + 1);
	memcpy(x.b + FX_DYN + 40, x.b + 68, 16);
	expect_refused(&x, ELOOP, "chain");
}

/* A dynamic block with a partial bitmap (as Windows may leave it): a write marks its whole
 * bitmap byte (8 sectors) present; the byte's sectors that were absent and not written
 * become zeros in the file, as they read under the bitmap. */
static void test_dynamic_partial_bitmap(void **state)
{
	struct fx x;
	struct vdisk *d;
	uint8_t buf[FX_BLOCK], bitmap;
	(void)state;

	fx_init(&x);
	x.b[FX_B0] = 0xf0; /* sectors 0-3 present, 4-7 not (their data area holds 0xab) */
	fx_write(&x);
	assert_int_equal(vdisk_open(path, VDISK_OPEN_RDWR, &d), 0);
	memset(buf, 0x77, 20);
	assert_int_equal(vdisk_write(d, 5 * 512 + 10, buf, 20), 0);
	assert_int_equal(vdisk_close(d), 0);
	int fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, &bitmap, 1, FX_B0), 1);
	close(fd);
	assert_int_equal(bitmap, 0xff);
	assert_int_equal(vdisk_open(path, 0, &d), 0);
	assert_int_equal(vdisk_read(d, 0, buf, FX_BLOCK), 0);
	for (unsigned i = 0; i < FX_BLOCK; i++) {
		uint8_t want = i < 2048 ? 0xab : i >= 2570 && i < 2590 ? 0x77 : 0;
		if (buf[i] != want)
			fail_msg("byte %u is 0x%02x, expected 0x%02x", i, buf[i], want);
	}
	vdisk_close(d);
}

static void test_create_write_reopen(void **state)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHD,
				       .subformat = VDISK_SUB_DYNAMIC,
				       .size_bytes = 5u << 20, .block_bytes = 1u << 20 };
	struct vdisk *d;
	uint8_t buf[3000], back[3000];
	(void)state;

	unlink(path);
	assert_int_equal(vdisk_create(path, &o, &d), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vdisk_write(d, (1u << 20) - 1000, buf, sizeof(buf)), 0);
	assert_int_equal(vdisk_resize(d, 0xff000001ull * 512), -EINVAL);
	assert_int_equal(vdisk_close(d), 0);
	assert_int_equal(vdisk_open(path, 0, &d), 0);
	assert_int_equal(vdisk_size_bytes(d), 5u << 20);
	assert_int_equal(vdisk_read(d, (1u << 20) - 1000, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(vdisk_read(d, 0, back, 100), 0);
	assert_true(back[0] == 0 && back[99] == 0);
	vdisk_close(d);
	int counts[3] = { 0 };
	assert_int_equal(vdisk_check(path, 0, report_count, counts), 0);
}

/* Geometry by the spec algorithm, against values observed in real files (docs section
 * 2.4): Hyper-V's 127 GiB and 1 GiB disks, qemu's ext2.vhd, and the maximum above it. */
static void test_chs_geometry(void **state)
{
	static const struct { uint64_t size; unsigned c, h, s; } cases[] = {
		{ 136365211648ull, 65278, 16, 255 },
		{ 1073741824ull, 2080, 16, 63 },
		{ 4212736ull, 121, 4, 17 },
		{ 2199023255552ull - (8ull << 30), 65535, 16, 255 },
	};
	(void)state;

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHD,
					       .subformat = VDISK_SUB_DYNAMIC,
					       .size_bytes = cases[i].size };
		struct vdisk *d;
		struct vdisk_info info;
		unlink(path);
		assert_int_equal(vdisk_create(path, &o, &d), 0);
		assert_int_equal(vdisk_get_info(d, &info), 0);
		assert_int_equal(info.size_bytes, cases[i].size); /* exact: creator gnsh */
		assert_int_equal(info.chs_cylinders, cases[i].c);
		assert_int_equal(info.chs_heads, cases[i].h);
		assert_int_equal(info.chs_sectors, cases[i].s);
		vdisk_close(d);
	}
}

static void test_create_bad_sizes(void **state)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHD, .subformat = VDISK_SUB_FIXED,
				       .size_bytes = 1000 };
	struct vdisk *d;
	(void)state;

	unlink(path);
	assert_int_equal(vdisk_create(path, &o, &d), -EINVAL);
	o.size_bytes = 0xff000001ull * 512;
	assert_int_equal(vdisk_create(path, &o, &d), -EINVAL);
	o.size_bytes = 1u << 20;
	o.subformat = VDISK_SUB_DYNAMIC;
	o.block_bytes = 3000;
	assert_int_equal(vdisk_create(path, &o, &d), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "block size"));
	assert_int_equal(access(path, F_OK), -1); /* nothing left behind */
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vhd_test.XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.vhd", dir);
	return 0;
}

static int teardown(void **state)
{
	char pp[300];
	(void)state;
	snprintf(pp, sizeof(pp), "%s/p.vhd", dir);
	unlink(pp);
	unlink(path);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_fixture),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_truncated_mid_block),
		cmocka_unit_test(test_bad_cookie),
		cmocka_unit_test(test_bad_footer_checksum),
		cmocka_unit_test(test_eof_footer_recovered),
		cmocka_unit_test(test_footer_copy_repaired),
		cmocka_unit_test(test_unknown_disk_type),
		cmocka_unit_test(test_footer_version),
		cmocka_unit_test(test_size_not_sector_multiple),
		cmocka_unit_test(test_size_too_large),
		cmocka_unit_test(test_dyn_offset_past_eof),
		cmocka_unit_test(test_dyn_cookie),
		cmocka_unit_test(test_dyn_checksum),
		cmocka_unit_test(test_table_offset_past_eof),
		cmocka_unit_test(test_table_overlaps_header),
		cmocka_unit_test(test_max_entries_absurd),
		cmocka_unit_test(test_max_entries_too_few),
		cmocka_unit_test(test_block_size_zero),
		cmocka_unit_test(test_block_size_not_pow2),
		cmocka_unit_test(test_block_size_huge),
		cmocka_unit_test(test_bat_into_header),
		cmocka_unit_test(test_bat_past_eof),
		cmocka_unit_test(test_bat_overlap),
		cmocka_unit_test(test_fixed_data_offset),
		cmocka_unit_test(test_fixed_truncated),
		cmocka_unit_test(test_diff_relative_locator),
		cmocka_unit_test(test_diff_drive_letter_locator),
		cmocka_unit_test(test_diff_macx_locator),
		cmocka_unit_test(test_diff_wrong_parent_id),
		cmocka_unit_test(test_check_locator_overlaps_bat),
		cmocka_unit_test(test_diff_no_locator),
		cmocka_unit_test(test_diff_locator_outside),
		cmocka_unit_test(test_diff_parent_missing),
		cmocka_unit_test(test_diff_parent_loop),
		cmocka_unit_test(test_dynamic_partial_bitmap),
		cmocka_unit_test(test_create_write_reopen),
		cmocka_unit_test(test_chs_geometry),
		cmocka_unit_test(test_create_bad_sizes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
