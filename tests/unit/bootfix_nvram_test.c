/* tests/unit/bootfix_nvram_test.c - the OVMF variable store (bootfix/nvram.c): stores built
 * here as byte arrays from the edk2 layout (offsets written out, not taken from
 * nvram-format.h), one corruption per case; set/replace/delete, liveness, compaction, and
 * Boot#### / BootOrder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bootfix/bootfix.h"
#include "vhdx/vdisk.h"

/* The 2M layout (OVMF_VARS.fd): FV 0x20000, store 0x48..0xE000, event log 0xE000,
 * FTW working block 0xF000, spare 0x10000. */
#define SZ_2M 0x20000u
#define SZ_4M 0x84000u
#define VARS 0x64u        /* first variable header */
#define HDR 0x3Cu         /* AUTHENTICATED_VARIABLE_HEADER */
#define FTW_2M 0xF000u

static const uint8_t fv_guid[16] = { 0x8D, 0x2B, 0xF1, 0xFF, 0x96, 0x76, 0x8B, 0x4C,
				     0xA9, 0x85, 0x27, 0x47, 0x07, 0x5B, 0x4F, 0x50 };
static const uint8_t auth_guid[16] = { 0x78, 0x2C, 0xF3, 0xAA, 0x7B, 0x94, 0x9A, 0x43,
				       0xA1, 0x80, 0x2E, 0x14, 0x4E, 0xC3, 0x77, 0x92 };
static const uint8_t old_var_guid[16] = { 0x16, 0x36, 0xCF, 0xDD, 0x75, 0x32, 0x64, 0x41,
					  0x98, 0xB6, 0xFE, 0x85, 0x70, 0x7F, 0xFE, 0x7D };
/* The FTW working block header of Debian's OVMF_VARS*.fd, byte for byte. */
static const uint8_t ftw_header[32] = {
	0x2b, 0x29, 0x58, 0x9e, 0x68, 0x7c, 0x7d, 0x49, 0xa0, 0xce, 0x65, 0x00, 0xfd, 0x9f, 0x1b, 0x95,
	0x2c, 0xaf, 0x2c, 0x64, 0xfe, 0xff, 0xff, 0xff, 0xe0, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t global_guid[16] = { 0x61, 0xDF, 0xE4, 0x8B, 0xCA, 0x93, 0xD2, 0x11,
					 0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C };
static const uint8_t vendor_guid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void fv_checksum(uint8_t *b)
{
	uint16_t sum = 0;

	put16(b + 0x32, 0);
	for (unsigned i = 0; i < get16(b + 0x30); i += 2)
		sum = (uint16_t)(sum + get16(b + i));
	put16(b + 0x32, (uint16_t)(0x10000 - sum));
}

/* An empty store of `bytes` (0x20000 or 0x84000) as OVMF's build writes it. */
static uint8_t *store_new(uint32_t bytes)
{
	uint8_t *b = malloc(bytes);
	uint32_t store = bytes == SZ_4M ? 0x40000 : 0xE000;

	assert_non_null(b);
	memset(b, 0xFF, bytes);
	memset(b, 0, 0x48);
	memcpy(b + 0x10, fv_guid, 16);
	put64(b + 0x20, bytes);
	memcpy(b + 0x28, "_FVH", 4);
	put32(b + 0x2C, 0x0004FEFF);
	put16(b + 0x30, 0x48);
	b[0x37] = 2;
	put32(b + 0x38, bytes / 0x1000);
	put32(b + 0x3C, 0x1000);
	fv_checksum(b);
	memcpy(b + 0x48, auth_guid, 16);
	put32(b + 0x58, store - 0x48);
	b[0x5C] = 0x5A;
	b[0x5D] = 0xFE;
	memset(b + 0x5E, 0, 6);
	memcpy(b + store + 0x1000, ftw_header, sizeof(ftw_header));
	return b;
}

/* A variable header + ASCII name + data at off; returns the next header's offset. */
static uint32_t var_put(uint8_t *b, uint32_t off, uint8_t state, const char *name,
			const uint8_t guid[16], uint32_t attr, const void *data, uint32_t len)
{
	uint32_t ns = 2 * ((uint32_t)strlen(name) + 1);

	memset(b + off, 0, HDR);
	put16(b + off, 0x55AA);
	b[off + 2] = state;
	put32(b + off + 4, attr);
	put32(b + off + 0x24, ns);
	put32(b + off + 0x28, len);
	memcpy(b + off + 0x2C, guid, 16);
	for (size_t i = 0; i <= strlen(name); i++)
		put16(b + off + HDR + 2 * i, (uint8_t)name[i]);
	memcpy(b + off + HDR + ns, data, len);
	return (off + HDR + ns + len + 3) & ~3u;
}

static int parse(const uint8_t *b, uint32_t bytes, struct nvram **nv)
{
	*nv = NULL;
	return nvram_parse(b, bytes, nv);
}

/* Parsing b fails with -err and a message containing what. */
static void expect_fail(uint8_t *b, uint32_t bytes, int err, const char *what)
{
	struct nvram *nv;
	int r = parse(b, bytes, &nv);

	if (r != -err || !strstr(vdisk_errmsg(), what))
		print_error("got %d \"%s\", expected %d with \"%s\"\n", r, vdisk_errmsg(), -err, what);
	assert_int_equal(r, -err);
	assert_non_null(strstr(vdisk_errmsg(), what));
	assert_null(nv);
	free(b);
}

/* ---------------- parsing: valid stores ---------------- */

static void test_empty_2m_and_4m(void **state)
{
	(void)state;
	const uint32_t sizes[] = { SZ_2M, SZ_4M };
	for (int i = 0; i < 2; i++) {
		uint8_t *b = store_new(sizes[i]);
		struct nvram *nv;
		const struct nvram_var *v;
		size_t n;
		assert_int_equal(parse(b, sizes[i], &nv), 0);
		assert_int_equal(nvram_vars(nv, &v), 0);
		const uint8_t *img = nvram_image(nv, &n);
		assert_int_equal(n, sizes[i]);
		assert_memory_equal(img, b, n);
		nvram_free(nv);
		free(b);
	}
}

static void test_states_and_liveness(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	uint32_t off = VARS;
	struct nvram *nv;
	const struct nvram_var *v;

	off = var_put(b, off, 0x3C, "A", vendor_guid, 7, "old", 3);       /* replaced */
	off = var_put(b, off, 0x3F, "A", vendor_guid, 7, "new", 3);
	off = var_put(b, off, 0x3D, "B", vendor_guid, 7, "gone", 4);      /* deleted */
	off = var_put(b, off, 0x3E, "C", vendor_guid, 7, "only", 4);      /* live: no 0x3F copy */
	off = var_put(b, off, 0x3E, "D", vendor_guid, 7, "stale", 5);     /* has a 0x3F copy */
	off = var_put(b, off, 0x7F, "E", vendor_guid, 7, "half", 4);      /* header only */
	off = var_put(b, off, 0x3F, "D", vendor_guid, 7, "fresh", 5);
	var_put(b, off, 0x3F, "A", global_guid, 7, "other guid", 10);
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	size_t n = nvram_vars(nv, &v);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].name, "A");
	assert_memory_equal(v[0].data, "new", 3);
	assert_string_equal(v[1].name, "C");
	assert_string_equal(v[2].name, "D");
	assert_memory_equal(v[2].data, "fresh", 5);
	assert_memory_equal(v[3].guid, global_guid, 16);
	assert_null(nvram_get(nv, "B", vendor_guid));
	assert_null(nvram_get(nv, "E", vendor_guid));
	assert_non_null(nvram_get(nv, "C", vendor_guid));
	assert_int_equal(nvram_get(nv, "A", vendor_guid)->attributes, 7);
	nvram_free(nv);
	free(b);
}

static void test_two_live_copies(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	uint32_t off = var_put(b, VARS, 0x3F, "A", vendor_guid, 7, "x", 1);
	var_put(b, off, 0x3F, "A", vendor_guid, 7, "y", 1);
	expect_fail(b, SZ_2M, EINVAL, "second live copy");
}

/* ---------------- parsing: one corruption per case ---------------- */

static void test_too_small(void **state)
{
	(void)state;
	expect_fail(store_new(SZ_2M), 0x40, EINVAL, "too small");
}

static void test_fv_signature(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[0x28] = 'X';
	expect_fail(b, SZ_2M, EINVAL, "_FVH");
}

static void test_fv_guid(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[0x10] ^= 1;
	fv_checksum(b);
	expect_fail(b, SZ_2M, EINVAL, "FileSystemGuid");
}

static void test_fv_length(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	put64(b + 0x20, SZ_4M);
	fv_checksum(b);
	expect_fail(b, SZ_2M, EINVAL, "FvLength");
}

static void test_header_length(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	put16(b + 0x30, 0x47);
	expect_fail(b, SZ_2M, EINVAL, "HeaderLength");
}

/* A small file whose FvLength agrees but whose HeaderLength reaches past it. */
static void test_header_length_past_file(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	put64(b + 0x20, 0x60);
	put16(b + 0x30, 0x400);
	expect_fail(b, 0x60, EINVAL, "HeaderLength 0x400");
}

static void test_checksum(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[0x2C] ^= 0x10;  /* Attributes changed, checksum not */
	expect_fail(b, SZ_2M, EINVAL, "checksum");
}

static void test_block_map(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	put32(b + 0x38, 0x1F);
	fv_checksum(b);
	expect_fail(b, SZ_2M, EINVAL, "BlockMap");
}

static void test_store_guid_old_format(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	memcpy(b + 0x48, old_var_guid, 16);
	expect_fail(b, SZ_2M, ENOTSUP, "non-authenticated");
}

static void test_store_guid_garbage(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[0x50] ^= 0x40;
	expect_fail(b, SZ_2M, EINVAL, "gEfiAuthenticatedVariableGuid");
}

static void test_store_size_past_fv(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	put32(b + 0x58, SZ_2M);
	expect_fail(b, SZ_2M, EINVAL, "Size 0x20000");
}

static void test_store_format_state(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[0x5D] = 0xFF;  /* not VARIABLE_STORE_HEALTHY */
	expect_fail(b, SZ_2M, EINVAL, "State 0xff");
}

static void test_var_state(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	var_put(b, VARS, 0x55, "A", vendor_guid, 7, "x", 1);
	expect_fail(b, SZ_2M, EINVAL, "State 0x55");
}

static void test_name_size_zero(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	var_put(b, VARS, 0x3F, "A", vendor_guid, 7, "x", 1);
	put32(b + VARS + 0x24, 0);
	expect_fail(b, SZ_2M, EINVAL, "NameSize 0");
}

static void test_name_size_odd(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	var_put(b, VARS, 0x3F, "A", vendor_guid, 7, "x", 1);
	put32(b + VARS + 0x24, 3);
	expect_fail(b, SZ_2M, EINVAL, "NameSize 3");
}

static void test_name_size_past_end(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	var_put(b, VARS, 0x3F, "A", vendor_guid, 7, "x", 1);
	put32(b + VARS + 0x24, 0xFFFFFFF0u);
	expect_fail(b, SZ_2M, EINVAL, "past the store end");
}

static void test_data_size_past_end(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	var_put(b, VARS, 0x3F, "A", vendor_guid, 7, "x", 1);
	put32(b + VARS + 0x28, 0xE000);
	expect_fail(b, SZ_2M, EINVAL, "past the store end");
}

static void test_var_too_big(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	static uint8_t big[0x3000];
	var_put(b, VARS, 0x3F, "A", vendor_guid, 7, big, sizeof(big));
	expect_fail(b, SZ_2M, EINVAL, "PcdMaxVariableSize");
}

static void test_name_not_terminated(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	var_put(b, VARS, 0x3F, "AB", vendor_guid, 7, "x", 1);
	put16(b + VARS + HDR + 4, 'C');  /* the NUL */
	expect_fail(b, SZ_2M, EINVAL, "NUL-terminated");
}

static void test_garbage_in_free_area(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	uint32_t off = var_put(b, VARS, 0x3F, "A", vendor_guid, 7, "x", 1);
	b[off + 0x123] = 0x00;
	char where[32];
	snprintf(where, sizeof(where), "at 0x%x", off + 0x123);
	expect_fail(b, SZ_2M, EINVAL, where);
}

/* A write header (HeaderAllocated, WritesAllocated cleared) with one record. */
static void ftw_write(uint8_t *b, uint8_t header_state, uint8_t record_state)
{
	uint8_t *q = b + FTW_2M + 0x20;

	memset(q, 0, 0x28 + 0x28);
	q[0] = header_state;
	memcpy(q + 4, vendor_guid, 16);
	put64(q + 0x18, 1);        /* NumberOfWrites */
	put64(q + 0x20, 0);        /* PrivateDataSize */
	q[0x28] = record_state;
	put64(q + 0x28 + 8, 3);    /* Lba */
}

static void test_ftw_pending(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	/* Allocated, writes allocated, Complete still set; record: spare done, dest not. */
	ftw_write(b, 0xFC, 0xFD);
	expect_fail(b, SZ_2M, EBUSY, "interrupted");
}

static void test_ftw_completed_is_fine(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	ftw_write(b, 0xF8, 0xF8);
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	nvram_free(nv);
	free(b);
}

static void test_ftw_crc(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[FTW_2M + 0x19] = 0x0E;  /* WriteQueueSize 0xEE0 without a new CRC */
	expect_fail(b, SZ_2M, EINVAL, "CRC");
}

static void test_ftw_signature(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[FTW_2M + 3] ^= 0x80;
	expect_fail(b, SZ_2M, EINVAL, "gEdkiiWorkingBlockSignatureGuid");
}

/* WorkingBlockInvalid cleared: the firmware was moving the working block to its spare. */
static void test_ftw_working_block_invalid(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	b[FTW_2M + 0x14] = 0xFC;  /* the state byte is outside the CRC */
	expect_fail(b, SZ_2M, EBUSY, "not valid");
}

/* Never formatted (all 0xFF): the firmware formats it at boot, nothing can be pending. */
static void test_ftw_erased_is_fine(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	memset(b + FTW_2M, 0xFF, 0x1000);
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	nvram_free(nv);
	free(b);
}

static void test_ftw_queue_overrun(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	ftw_write(b, 0xF8, 0xF8);
	put64(b + FTW_2M + 0x20 + 0x18, 1000);  /* 1000 records cannot fit */
	expect_fail(b, SZ_2M, EINVAL, "does not fit the queue");
}

/* ---------------- changes ---------------- */

static void test_set_replace_delete(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	size_t n;
	const uint8_t *img;

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_set(nv, "Foo", vendor_guid, 7, "one", 3), 0);
	img = nvram_image(nv, &n);
	assert_int_equal(get16(img + VARS), 0x55AA);
	assert_int_equal(img[VARS + 2], 0x3F);
	assert_int_equal(get32(img + VARS + 0x24), 8);   /* "Foo\0" in UCS-2 */
	assert_int_equal(get32(img + VARS + 0x28), 3);
	assert_int_equal(get16(img + VARS + HDR), 'F');
	assert_memory_equal(img + VARS + HDR + 8, "one", 3);
	assert_int_equal(img[VARS + HDR + 11], 0xFF);     /* pad stays erased */
	uint32_t second = VARS + ((HDR + 8 + 3 + 3) & ~3u);

	assert_int_equal(nvram_set(nv, "Foo", vendor_guid, 7, "two!", 4), 0);
	img = nvram_image(nv, &n);
	assert_int_equal(img[VARS + 2], 0x3C);            /* old copy marked, not erased */
	assert_int_equal(img[second + 2], 0x3F);
	assert_memory_equal(nvram_get(nv, "Foo", vendor_guid)->data, "two!", 4);

	/* The same bytes again change nothing. */
	uint8_t *before = malloc(n);
	memcpy(before, img, n);
	assert_int_equal(nvram_set(nv, "Foo", vendor_guid, 7, "two!", 4), 0);
	assert_memory_equal(nvram_image(nv, &n), before, n);
	free(before);

	assert_int_equal(nvram_delete(nv, "Foo", vendor_guid), 0);
	img = nvram_image(nv, &n);
	assert_int_equal(img[second + 2], 0x3D);
	assert_null(nvram_get(nv, "Foo", vendor_guid));
	assert_int_equal(nvram_delete(nv, "Foo", vendor_guid), -ENOENT);

	/* What we wrote parses again the same. */
	struct nvram *again;
	assert_int_equal(nvram_set(nv, "Bar", vendor_guid, 3, "b", 1), 0);
	img = nvram_image(nv, &n);
	assert_int_equal(parse(img, (uint32_t)n, &again), 0);
	assert_non_null(nvram_get(again, "Bar", vendor_guid));
	assert_null(nvram_get(again, "Foo", vendor_guid));
	nvram_free(again);
	nvram_free(nv);
	free(b);
}

static void test_replace_in_deleted_transition(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	size_t n;

	var_put(b, VARS, 0x3E, "C", vendor_guid, 7, "only", 4);
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_set(nv, "C", vendor_guid, 7, "next", 4), 0);
	assert_int_equal(nvram_image(nv, &n)[VARS + 2], 0x3C);
	assert_memory_equal(nvram_get(nv, "C", vendor_guid)->data, "next", 4);
	nvram_free(nv);
	free(b);
}

static void test_set_refuses(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	static uint8_t big[0x2000];

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_set(nv, "", vendor_guid, 7, "x", 1), -EINVAL);
	assert_int_equal(nvram_set(nv, "A", vendor_guid, 7, "x", 0), -EINVAL);
	assert_int_equal(nvram_set(nv, "A", vendor_guid, 6, "x", 1), -ENOTSUP);   /* volatile */
	assert_int_equal(nvram_set(nv, "A", vendor_guid, 0x27, "x", 1), -ENOTSUP); /* auth */
	assert_int_equal(nvram_set(nv, "A", vendor_guid, 7, big, sizeof(big)), -EINVAL);
	nvram_free(nv);
	free(b);
}

/* Rewriting one 4 KiB variable fills the 0xDF9C-byte area after 13 copies; the next write
 * must compact (one live copy left) instead of failing. */
static void test_compaction_when_full(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	static uint8_t data[0x1000];
	size_t n;

	uint32_t off = var_put(b, VARS, 0x3F, "Keep", global_guid, 7, "k", 1);
	var_put(b, off, 0x3D, "Dead", global_guid, 7, "d", 1);
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	for (int i = 0; i < 40; i++) {
		memset(data, i, sizeof(data));
		assert_int_equal(nvram_set(nv, "Big", vendor_guid, 7, data, sizeof(data)), 0);
		const struct nvram_var *v = nvram_get(nv, "Big", vendor_guid);
		assert_non_null(v);
		assert_memory_equal(v->data, data, sizeof(data));
	}
	const uint8_t *img = nvram_image(nv, &n);
	/* After the last compaction, live variables come first, states all 0x3F, and the
	 * deleted "Dead" is gone. */
	assert_int_equal(img[VARS + 2], 0x3F);
	assert_int_equal(get32(img + VARS + 0x24), 10);  /* "Keep" */
	assert_non_null(nvram_get(nv, "Keep", global_guid));
	struct nvram *again;
	assert_int_equal(parse(img, (uint32_t)n, &again), 0);
	const struct nvram_var *v;
	assert_int_equal(nvram_vars(again, &v), 2);
	nvram_free(again);
	for (off = VARS; get16(img + off) == 0x55AA;
	     off = (off + HDR + get32(img + off + 0x24) + get32(img + off + 0x28) + 3) & ~3u)
		assert_true(img[off + 2] == 0x3F || img[off + 2] == 0x3C);
	nvram_free(nv);
	free(b);
}

static void test_enospc_leaves_store_alone(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	static uint8_t data[0x1F00];
	size_t n;
	char name[8];

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	for (int i = 0; i < 7; i++) {  /* 7 x 0x1F44 bytes of live data: 0xDADC of 0xDF9C */
		snprintf(name, sizeof(name), "V%d", i);
		assert_int_equal(nvram_set(nv, name, vendor_guid, 7, data, sizeof(data)), 0);
	}
	uint8_t *before = malloc(SZ_2M);
	memcpy(before, nvram_image(nv, &n), SZ_2M);
	assert_int_equal(nvram_set(nv, "V7", vendor_guid, 7, data, sizeof(data)), -ENOSPC);
	assert_non_null(strstr(vdisk_errmsg(), "no room"));
	assert_memory_equal(nvram_image(nv, &n), before, SZ_2M);
	assert_null(nvram_get(nv, "V7", vendor_guid));
	free(before);
	nvram_free(nv);
	free(b);
}

/* ---------------- Boot#### and BootOrder ---------------- */

static const struct nvram_boot_target target = {
	.description = "debian",
	.part_number = 2,
	.first_lba = 0x30800,
	.sectors = 0x20000,
	.part_guid = { 0xBF, 0xD1, 0xCF, 0x24, 0x91, 0xB2, 0xAF, 0x44,
		       0xA8, 0xCC, 0x66, 0xC8, 0x65, 0xC3, 0x97, 0x93 },
	.loader = "/EFI/debian/grubx64.efi",
};

static uint16_t boot_order_at(const struct nvram *nv, size_t i)
{
	const struct nvram_var *o = nvram_get(nv, "BootOrder", global_guid);
	assert_non_null(o);
	assert_true(2 * i + 1 < o->bytes);
	return get16(o->data + 2 * i);
}

/* The EFI_LOAD_OPTION bytes, checked field by field against UEFI 2.10 §3.1.3 / §10.3.5. */
static void test_boot_entry_bytes(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	unsigned num = 0;

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_add_boot(nv, &target, &num), 0);
	assert_int_equal(num, 1);
	const struct nvram_var *v = nvram_get(nv, "Boot0001", global_guid);
	assert_non_null(v);
	assert_int_equal(v->attributes, 7);
	const uint8_t *p = v->data;
	const char *path = "\\EFI\\debian\\grubx64.efi";
	size_t file_node = 4 + 2 * (strlen(path) + 1);
	assert_int_equal(get32(p), 1);                          /* LOAD_OPTION_ACTIVE */
	assert_int_equal(get16(p + 4), 42 + file_node + 4);     /* FilePathListLength */
	for (int i = 0; i < 7; i++)
		assert_int_equal(get16(p + 6 + 2 * i), "debian"[i]);
	const uint8_t *hd = p + 6 + 14;
	assert_int_equal(hd[0], 4);                              /* MEDIA_DEVICE_PATH */
	assert_int_equal(hd[1], 1);                              /* MEDIA_HARDDRIVE_DP */
	assert_int_equal(get16(hd + 2), 42);
	assert_int_equal(get32(hd + 4), 2);
	assert_int_equal(get32(hd + 8), 0x30800);
	assert_int_equal(get32(hd + 16), 0x20000);
	assert_memory_equal(hd + 24, target.part_guid, 16);
	assert_int_equal(hd[40], 2);                             /* GPT */
	assert_int_equal(hd[41], 2);                             /* GUID signature */
	const uint8_t *f = hd + 42;
	assert_int_equal(f[0], 4);
	assert_int_equal(f[1], 4);                               /* MEDIA_FILEPATH_DP */
	assert_int_equal(get16(f + 2), file_node);
	for (size_t i = 0; i <= strlen(path); i++)
		assert_int_equal(get16(f + 4 + 2 * i), (uint8_t)path[i]);
	const uint8_t end[4] = { 0x7F, 0xFF, 0x04, 0x00 };
	assert_memory_equal(f + file_node, end, 4);
	assert_int_equal(v->bytes, 6 + 14 + 42 + file_node + 4);
	assert_int_equal(boot_order_at(nv, 0), 1);
	assert_int_equal(nvram_get(nv, "BootOrder", global_guid)->bytes, 2);
	nvram_free(nv);
	free(b);
}

static void test_boot_reuse_and_order(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	unsigned num = 0;
	size_t n;
	const uint16_t order[] = { 5, 1, 5, 0 };  /* a duplicate, as a hostile store may have */
	uint8_t ob[8];

	for (int i = 0; i < 4; i++)
		put16(ob + 2 * i, order[i]);
	uint32_t off = var_put(b, VARS, 0x3F, "Boot0001", global_guid, 7, "\1\0\0\0\4\0\0\0\x7f\xff\4\0", 12);
	off = var_put(b, off, 0x3F, "Boot000a", global_guid, 7, "x", 1);  /* not a real Boot#### */
	var_put(b, off, 0x3F, "BootOrder", global_guid, 7, ob, sizeof(ob));
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_add_boot(nv, &target, &num), 0);
	assert_int_equal(num, 2);                               /* 1 is taken */
	assert_non_null(nvram_get(nv, "Boot0002", global_guid));
	assert_int_equal(nvram_get(nv, "BootOrder", global_guid)->bytes, 8);
	assert_int_equal(boot_order_at(nv, 0), 2);
	assert_int_equal(boot_order_at(nv, 1), 5);
	assert_int_equal(boot_order_at(nv, 2), 1);
	assert_int_equal(boot_order_at(nv, 3), 0);

	/* The same target again: the same entry, nothing rewritten. */
	uint8_t *before = malloc(SZ_2M);
	memcpy(before, nvram_image(nv, &n), SZ_2M);
	assert_int_equal(nvram_add_boot(nv, &target, &num), 0);
	assert_int_equal(num, 2);
	assert_memory_equal(nvram_image(nv, &n), before, SZ_2M);

	/* Another loader: Boot0003, first; Boot0002 moves second. */
	struct nvram_boot_target other = target;
	other.loader = "\\EFI\\BOOT\\BOOTX64.EFI";
	assert_int_equal(nvram_add_boot(nv, &other, &num), 0);
	assert_int_equal(num, 3);
	assert_int_equal(boot_order_at(nv, 0), 3);
	assert_int_equal(boot_order_at(nv, 1), 2);
	/* And the first one again: back to the front, reusing 2. */
	assert_int_equal(nvram_add_boot(nv, &target, &num), 0);
	assert_int_equal(num, 2);
	assert_int_equal(boot_order_at(nv, 0), 2);
	assert_int_equal(boot_order_at(nv, 1), 3);
	assert_int_equal(nvram_get(nv, "BootOrder", global_guid)->bytes, 10);
	free(before);
	nvram_free(nv);
	free(b);
}

/* Boot0001..Boot0009 taken: the next is Boot000A, upper case as edk2's BDS looks it up. */
static void test_boot_number_upper_case(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	uint32_t off = VARS;
	unsigned num = 0;
	char name[16];

	for (int i = 1; i <= 9; i++) {
		snprintf(name, sizeof(name), "Boot%04X", i);
		off = var_put(b, off, 0x3F, name, global_guid, 7, "\1\0\0\0\4\0\0\0\x7f\xff\4\0", 12);
	}
	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_add_boot(nv, &target, &num), 0);
	assert_int_equal(num, 10);
	assert_non_null(nvram_get(nv, "Boot000A", global_guid));
	assert_null(nvram_get(nv, "Boot000a", global_guid));
	nvram_free(nv);
	free(b);
}

static void test_boot_bad_target(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	size_t n;
	struct nvram_boot_target t = target;

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	t.loader = "";
	assert_int_equal(nvram_add_boot(nv, &t, NULL), -EINVAL);
	t.loader = target.loader;
	t.description = NULL;
	assert_int_equal(nvram_add_boot(nv, &t, NULL), -EINVAL);
	assert_memory_equal(nvram_image(nv, &n), b, SZ_2M);
	nvram_free(nv);
	free(b);
}

/* A store nearly full of live data: Boot#### fits, BootOrder does not; nothing is kept. */
static void test_boot_failure_is_atomic(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	static uint8_t data[0x1F00];
	size_t n;
	char name[8];

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "V%d", i);
		assert_int_equal(nvram_set(nv, name, vendor_guid, 7, data, sizeof(data)), 0);
	}
	/* 0x4C0 bytes left; "Pad" takes 0x3C0 of them. The 0x100 after it hold Boot0001
	 * (0xC4 bytes) but then not BootOrder (0x54). */
	static uint8_t pad[0x37C];
	assert_int_equal(nvram_set(nv, "Pad", vendor_guid, 7, pad, sizeof(pad)), 0);
	uint8_t *before = malloc(SZ_2M);
	memcpy(before, nvram_image(nv, &n), SZ_2M);
	int r = nvram_add_boot(nv, &target, NULL);
	assert_int_equal(r, -ENOSPC);
	assert_memory_equal(nvram_image(nv, &n), before, SZ_2M);
	assert_null(nvram_get(nv, "Boot0001", global_guid));
	free(before);
	nvram_free(nv);
	free(b);
}

static void describe(const uint8_t *data, size_t bytes, int want, const char *want_path)
{
	struct nvram_var v = { .name = "Boot0009", .data = data, .bytes = bytes };
	char desc[64], path[256];

	int r = nvram_boot_describe(&v, desc, sizeof(desc), path, sizeof(path));
	assert_int_equal(r, want);
	if (want == 0)
		assert_string_equal(path, want_path);
}

static void test_boot_describe(void **state)
{
	(void)state;
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv;
	char desc[64], path[256];

	assert_int_equal(parse(b, SZ_2M, &nv), 0);
	assert_int_equal(nvram_add_boot(nv, &target, NULL), 0);
	const struct nvram_var *v = nvram_get(nv, "Boot0001", global_guid);
	assert_int_equal(nvram_boot_describe(v, desc, sizeof(desc), path, sizeof(path)), 0);
	assert_string_equal(desc, "debian");
	assert_string_equal(path, "HD(2,GPT,24cfd1bf-b291-44af-a8cc-66c865c39793,0x30800,0x20000)"
			    "/File(\\EFI\\debian\\grubx64.efi)");
	assert_int_equal(nvram_boot_describe(v, desc, 4, path, sizeof(path)), -EINVAL);
	nvram_free(nv);
	free(b);

	/* attrs, FilePathListLength, "A\0", then the path. */
	const uint8_t end_only[] = { 1, 0, 0, 0, 4, 0, 'A', 0, 0, 0, 0x7F, 0xFF, 4, 0 };
	describe(end_only, sizeof(end_only), 0, "");
	const uint8_t no_nul[] = { 1, 0, 0, 0, 4, 0, 'A', 0, 'B', 0 };
	describe(no_nul, sizeof(no_nul), -EINVAL, NULL);
	const uint8_t len_past_end[] = { 1, 0, 0, 0, 8, 0, 'A', 0, 0, 0, 0x7F, 0xFF, 4, 0 };
	describe(len_past_end, sizeof(len_past_end), -EINVAL, NULL);
	const uint8_t zero_node[] = { 1, 0, 0, 0, 8, 0, 0, 0, 4, 4, 0, 0, 0x7F, 0xFF, 4, 0 };
	describe(zero_node, sizeof(zero_node), -EINVAL, NULL);
	const uint8_t no_end[] = { 1, 0, 0, 0, 4, 0, 0, 0, 4, 4, 4, 0 };
	describe(no_end, sizeof(no_end), -EINVAL, NULL);
	const uint8_t bad_type[] = { 1, 0, 0, 0, 8, 0, 0, 0, 9, 1, 4, 0, 0x7F, 0xFF, 4, 0 };
	describe(bad_type, sizeof(bad_type), -EINVAL, NULL);
	describe(end_only, 5, -EINVAL, NULL);
}

/* ---------------- files ---------------- */

static void test_save_and_open(void **state)
{
	(void)state;
	char dir[256], path[300];
	uint8_t *b = store_new(SZ_2M);
	struct nvram *nv, *again;
	struct stat st;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/nvram-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/VARS.fd", dir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, SZ_2M, f), SZ_2M);
	fclose(f);
	chmod(path, 0640);
	/* Owned by someone else, as libvirt's NVRAM files are (needs root to set up). */
	int foreign = chown(path, 12345, 23456) == 0;
	assert_int_equal(nvram_open(path, &nv), 0);
	assert_int_equal(nvram_add_boot(nv, &target, NULL), 0);
	/* Saved through a symlink: the file is replaced, the link stays a link. */
	char link[320];
	snprintf(link, sizeof(link), "%s/link.fd", dir);
	assert_int_equal(symlink("VARS.fd", link), 0);
	assert_int_equal(nvram_save(nv, link), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	unlink(link);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, SZ_2M);
	assert_int_equal(st.st_mode & 0777, 0640);
	if (foreign) {
		assert_int_equal(st.st_uid, 12345);
		assert_int_equal(st.st_gid, 23456);
	}
	assert_int_equal(nvram_open(path, &again), 0);
	assert_memory_equal(nvram_image(again, &n), nvram_image(nv, &n), SZ_2M);
	assert_non_null(nvram_get(again, "Boot0001", global_guid));
	nvram_free(again);
	nvram_free(nv);
	/* Nothing but the file is left in the directory (no temporary). */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) = 1", dir);
	assert_int_equal(system(cmd), 0);
	unlink(path);
	rmdir(dir);
	assert_int_equal(nvram_open(path, &again), -ENOENT);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_2m_and_4m),
		cmocka_unit_test(test_states_and_liveness),
		cmocka_unit_test(test_two_live_copies),
		cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_fv_signature),
		cmocka_unit_test(test_fv_guid),
		cmocka_unit_test(test_fv_length),
		cmocka_unit_test(test_header_length),
		cmocka_unit_test(test_header_length_past_file),
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_block_map),
		cmocka_unit_test(test_store_guid_old_format),
		cmocka_unit_test(test_store_guid_garbage),
		cmocka_unit_test(test_store_size_past_fv),
		cmocka_unit_test(test_store_format_state),
		cmocka_unit_test(test_var_state),
		cmocka_unit_test(test_name_size_zero),
		cmocka_unit_test(test_name_size_odd),
		cmocka_unit_test(test_name_size_past_end),
		cmocka_unit_test(test_data_size_past_end),
		cmocka_unit_test(test_var_too_big),
		cmocka_unit_test(test_name_not_terminated),
		cmocka_unit_test(test_garbage_in_free_area),
		cmocka_unit_test(test_ftw_pending),
		cmocka_unit_test(test_ftw_completed_is_fine),
		cmocka_unit_test(test_ftw_crc),
		cmocka_unit_test(test_ftw_queue_overrun),
		cmocka_unit_test(test_ftw_signature),
		cmocka_unit_test(test_ftw_working_block_invalid),
		cmocka_unit_test(test_ftw_erased_is_fine),
		cmocka_unit_test(test_set_replace_delete),
		cmocka_unit_test(test_replace_in_deleted_transition),
		cmocka_unit_test(test_set_refuses),
		cmocka_unit_test(test_compaction_when_full),
		cmocka_unit_test(test_enospc_leaves_store_alone),
		cmocka_unit_test(test_boot_entry_bytes),
		cmocka_unit_test(test_boot_reuse_and_order),
		cmocka_unit_test(test_boot_number_upper_case),
		cmocka_unit_test(test_boot_bad_target),
		cmocka_unit_test(test_boot_failure_is_atomic),
		cmocka_unit_test(test_boot_describe),
		cmocka_unit_test(test_save_and_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
