/* tests/unit/partition_test.c - the partition module: MBR/EBR/GPT reading with one
 * corruption per case, conversion planning, apply and undo, on raw images built here. */
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
#include <unistd.h>

#include <cmocka.h>

#include "partition/partition.h"

#define MIB (1024ull * 1024ull)
#define SS 512u

static char dir[256];

/* ---- fixture helpers: an image is a byte array, written sparse to a file ---- */

struct fx {
	uint8_t *img;
	uint64_t size;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Bitwise CRC-32 (IEEE), independent of the library's table version. */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static struct fx fx_new(uint64_t size)
{
	struct fx f = { calloc(1, size), size };
	assert_non_null(f.img);
	return f;
}

/* MBR/EBR record i of the sector at lba. */
static void mbr_rec(struct fx *f, uint64_t lba, int i, uint8_t status, uint8_t type,
		    uint32_t start, uint32_t sectors)
{
	uint8_t *s = f->img + lba * SS, *p = s + 446 + 16 * i;
	p[0] = status;
	p[4] = type;
	put32(p + 8, start);
	put32(p + 12, sectors);
	s[510] = 0x55;
	s[511] = 0xAA;
}

static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void fx_write(const struct fx *f, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)f->size), 0);
	for (uint64_t off = 0; off < f->size; off += 4096) {
		size_t n = f->size - off < 4096 ? (size_t)(f->size - off) : 4096;
		bool zero = true;
		for (size_t k = 0; k < n && zero; k++)
			zero = f->img[off + k] == 0;
		if (!zero)
			assert_int_equal(pwrite(fd, f->img + off, n, (off_t)off), (ssize_t)n);
	}
	close(fd);
}

static struct vdisk *fx_open(const struct fx *f, const char *name, unsigned flags)
{
	struct vdisk *d = NULL;
	fx_write(f, tmp_path(name));
	assert_int_equal(vdisk_open(tmp_path(name), flags | VDISK_OPEN_FORMAT_RAW, &d), 0);
	return d;
}

/* Read a fixture; returns the library's result, *out set on success. */
static int fx_read(const struct fx *f, struct part_table **out)
{
	struct vdisk *d = fx_open(f, "t.img", 0);
	int r = part_table_read(d, out);
	vdisk_close(d);
	return r;
}

static void expect_error(const struct fx *f, int err, const char *msg_part)
{
	struct part_table *t = NULL;
	int r = fx_read(f, &t);
	if (r != -err || !strstr(vdisk_errmsg(), msg_part))
		fail_msg("expected -%d with \"%s\", got %d: %s", err, msg_part, r, vdisk_errmsg());
	assert_null(t);
}

/* ---- a GPT writer independent of the library (UEFI §5.3.2 field offsets) ---- */

static const char *const LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
static const char *const ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

struct gpt_fx {
	uint32_t count, entry_bytes, header_bytes;
	uint64_t first_usable, last_usable;
};

static void gpt_entry(struct fx *f, const char *type, int slot, uint64_t first, uint64_t last)
{
	uint8_t g[16];
	assert_int_equal(part_guid_parse(type, g), 0);
	for (int copy = 0; copy < 2; copy++) {
		uint64_t arr = copy ? f->size / SS - 33 : 2;
		uint8_t *e = f->img + arr * SS + (size_t)slot * 128;
		memcpy(e, g, 16);
		memset(e + 16, 0x11 * (slot + 1), 16);
		put64(e + 32, first);
		put64(e + 40, last);
		put16(e + 56, 'p');
	}
}

static void gpt_header(struct fx *f, uint64_t lba, uint64_t alt, uint64_t entries,
		       const struct gpt_fx *g)
{
	uint8_t *h = f->img + lba * SS;
	memset(h, 0, SS);
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, g->header_bytes);
	put64(h + 24, lba);
	put64(h + 32, alt);
	put64(h + 40, g->first_usable);
	put64(h + 48, g->last_usable);
	memset(h + 56, 0xAB, 16);
	put64(h + 72, entries);
	put32(h + 80, g->count);
	put32(h + 84, g->entry_bytes);
	put32(h + 88, crc32_ref(f->img + entries * SS, (size_t)g->count * g->entry_bytes));
	put32(h + 16, crc32_ref(h, g->header_bytes > SS ? SS : g->header_bytes));
}

/* Protective MBR + both headers; entries must already be in place. */
static void gpt_finish(struct fx *f, const struct gpt_fx *g)
{
	uint64_t last = f->size / SS - 1;
	mbr_rec(f, 0, 0, 0, 0xEE, 1, (uint32_t)last);
	gpt_header(f, 1, last, 2, g);
	gpt_header(f, last, 1, last - 32, g);
}

static struct gpt_fx gpt_defaults(const struct fx *f)
{
	return (struct gpt_fx){ 128, 128, 92, 34, f->size / SS - 34 };
}

static struct fx gpt_fixture(void)
{
	struct fx f = fx_new(8 * MIB);
	struct gpt_fx g = gpt_defaults(&f);
	gpt_entry(&f, LINUX_FS, 0, 2048, 4095);
	gpt_entry(&f, LINUX_FS, 2, 4096, 8191);
	gpt_finish(&f, &g);
	return f;
}

/* Recompute a header's CRC after changing a field. */
static void gpt_rehash(struct fx *f, uint64_t lba)
{
	uint8_t *h = f->img + lba * SS;
	put32(h + 16, 0);
	put32(h + 16, crc32_ref(h, get32(h + 12) <= SS ? get32(h + 12) : SS));
}

/* ---- MBR reading ---- */

static void test_empty_disk(void **state)
{
	(void)state;
	struct fx f = fx_new(MIB);
	struct part_table *t;
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_NONE);
	assert_int_equal(t->n_entries, 0);
	part_table_free(t);
	free(f.img);
}

static void test_mbr_primaries(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_table *t;
	put32(f.img + 440, 0xCAFEBABE);
	mbr_rec(&f, 0, 0, 0x80, 0x07, 2048, 4096);
	mbr_rec(&f, 0, 2, 0x00, 0x83, 8192, 16384 - 8192);
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_MBR);
	assert_int_equal(t->mbr_disk_signature, 0xCAFEBABE);
	assert_int_equal(t->n_entries, 2);
	assert_int_equal(t->entries[0].number, 1);
	assert_true(t->entries[0].bootable);
	assert_int_equal(t->entries[1].number, 3);
	assert_int_equal(t->entries[1].first_lba, 8192);
	assert_int_equal(t->entries[1].last_lba, 16383);
	/* free: 1..2047, 6144..8191 */
	assert_int_equal(t->n_free, 2);
	assert_int_equal(t->free[0].first_lba, 1);
	assert_int_equal(t->free[0].last_lba, 2047);
	assert_int_equal(t->free[1].first_lba, 6144);
	assert_int_equal(t->free[1].last_lba, 8191);
	part_table_free(t);
	free(f.img);
}

/* Extended 2048..16383 with logicals at EBR 2048 (+63), EBR 6144 (+2048), EBR 12288. */
static struct fx mbr_with_logicals(void)
{
	struct fx f = fx_new(8 * MIB);
	mbr_rec(&f, 0, 0, 0, 0x0F, 2048, 16384 - 2048);
	mbr_rec(&f, 2048, 0, 0, 0x83, 63, 4096 - 63);
	mbr_rec(&f, 2048, 1, 0, 0x05, 6144 - 2048, 6144);
	mbr_rec(&f, 6144, 0, 0, 0x82, 2048, 2048);
	mbr_rec(&f, 6144, 1, 0, 0x05, 12288 - 2048, 4096);
	mbr_rec(&f, 12288, 0, 0, 0x07, 1, 4095);
	return f;
}

static void test_mbr_logicals(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	struct part_table *t;
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->ext_number, 1);
	assert_int_equal(t->n_ebrs, 3);
	assert_int_equal(t->n_entries, 3);
	assert_int_equal(t->entries[0].number, 5);
	assert_int_equal(t->entries[0].first_lba, 2111);
	assert_int_equal(t->entries[1].number, 6);
	assert_int_equal(t->entries[1].first_lba, 8192);
	assert_int_equal(t->entries[2].number, 7);
	assert_int_equal(t->entries[2].first_lba, 12289);
	assert_int_equal(t->entries[2].last_lba, 16383);
	assert_true(t->entries[2].is_logical);
	part_table_free(t);
	free(f.img);
}

static void test_ebr_loop(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	mbr_rec(&f, 12288, 1, 0, 0x05, 6144 - 2048, 10); /* back to the second EBR */
	expect_error(&f, EINVAL, "loops");
	free(f.img);
}

static void test_ebr_self_loop(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	mbr_rec(&f, 2048, 1, 0, 0x05, 0, 6144); /* the first EBR links to itself */
	expect_error(&f, EINVAL, "loops");
	free(f.img);
}

static void test_ebr_link_out_of_range(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	mbr_rec(&f, 6144, 1, 0, 0x05, 20000, 100);
	expect_error(&f, EINVAL, "outside the extended");
	free(f.img);
}

static void test_ebr_missing_signature(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	f.img[6144 * SS + 511] = 0;
	expect_error(&f, EINVAL, "0x55AA");
	free(f.img);
}

static void test_logical_outside_extended(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	mbr_rec(&f, 12288, 0, 0, 0x07, 1, 8000);
	expect_error(&f, EINVAL, "not inside the extended");
	free(f.img);
}

static void test_partition_past_end(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	mbr_rec(&f, 0, 0, 0, 0x83, 2048, 16384 - 2048 + 1);
	expect_error(&f, EINVAL, "past the disk end");
	free(f.img);
}

static void test_overlapping_primaries(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	mbr_rec(&f, 0, 0, 0, 0x83, 2048, 4096);
	mbr_rec(&f, 0, 1, 0, 0x83, 6000, 4096);
	expect_error(&f, EINVAL, "overlap");
	free(f.img);
}

static void test_two_extended(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	mbr_rec(&f, 0, 1, 0, 0x05, 1000, 100);
	expect_error(&f, EINVAL, "both extended");
	free(f.img);
}

/* ---- GPT reading ---- */

static void test_gpt_valid(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	struct part_table *t;
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_GPT);
	assert_int_equal(t->n_findings, 0);
	assert_int_equal(t->n_entries, 2);
	assert_int_equal(t->entries[0].number, 1);
	assert_int_equal(t->entries[1].number, 3);
	assert_int_equal(t->entries[1].last_lba, 8191);
	assert_string_equal(t->entries[0].name, "p");
	assert_int_equal(t->first_usable_lba, 34);
	assert_int_equal(t->last_usable_lba, 16384 - 34);
	part_table_free(t);
	free(f.img);
}

static void expect_finding(const struct fx *f, const char *part)
{
	struct part_table *t;
	assert_int_equal(fx_read(f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_GPT);
	assert_int_equal(t->n_entries, 2);
	bool found = false;
	for (size_t i = 0; i < t->n_findings; i++)
		found = found || strstr(t->findings[i], part);
	if (!found)
		fail_msg("no finding containing \"%s\"", part);
	part_table_free(t);
}

static void test_gpt_primary_header_crc(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	f.img[SS + 40] ^= 1; /* first_usable changes, CRC does not */
	expect_finding(&f, "primary GPT (header at LBA 1) is damaged (header CRC32");
	free(f.img);
}

static void test_gpt_backup_header_crc(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	f.img[f.size - SS + 60] ^= 1;
	expect_finding(&f, "backup GPT (header at LBA 16383) is damaged");
	free(f.img);
}

static void test_gpt_primary_array_crc(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	f.img[2 * SS + 40] ^= 1;
	expect_finding(&f, "entry array CRC32");
	free(f.img);
}

static void test_gpt_both_bad(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	f.img[2 * SS + 40] ^= 1;
	f.img[(f.size / SS - 33) * SS + 40] ^= 1;
	expect_error(&f, EINVAL, "no valid GPT");
	free(f.img);
}

/* Both copies carry the same corrupt (but checksummed) field. */
static void corrupt_both(struct fx *f, size_t off, uint32_t v)
{
	put32(f->img + SS + off, v);
	put32(f->img + f->size - SS + off, v);
	gpt_rehash(f, 1);
	gpt_rehash(f, f->size / SS - 1);
}

static void test_gpt_entry_size(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	corrupt_both(&f, 84, 256);
	expect_error(&f, EINVAL, "entry size 256");
	free(f.img);
}

static void test_gpt_absurd_count(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	corrupt_both(&f, 80, 0x10000000);
	expect_error(&f, EINVAL, "entry count 268435456");
	free(f.img);
}

static void test_gpt_header_size(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	corrupt_both(&f, 12, 91);
	expect_error(&f, EINVAL, "header size 91");
	free(f.img);
}

static void test_gpt_my_lba(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	put64(f.img + SS + 24, 7);
	gpt_rehash(&f, 1);
	expect_finding(&f, "my_lba 7");
	free(f.img);
}

static void test_gpt_usable_range(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	struct gpt_fx g = gpt_defaults(&f);
	g.last_usable = f.size / SS; /* past the disk */
	gpt_finish(&f, &g);
	expect_error(&f, EINVAL, "usable range");
	free(f.img);
}

static void test_gpt_entry_outside_usable(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct gpt_fx g = gpt_defaults(&f);
	gpt_entry(&f, LINUX_FS, 0, 20, 4095);
	gpt_finish(&f, &g);
	expect_error(&f, EINVAL, "not inside the usable range");
	free(f.img);
}

static void test_gpt_overlap(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct gpt_fx g = gpt_defaults(&f);
	gpt_entry(&f, LINUX_FS, 0, 2048, 4095);
	gpt_entry(&f, LINUX_FS, 1, 4000, 6000);
	gpt_finish(&f, &g);
	expect_error(&f, EINVAL, "overlap");
	free(f.img);
}

static void test_protective_without_gpt(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	mbr_rec(&f, 0, 0, 0, 0xEE, 1, 16383);
	expect_error(&f, EINVAL, "0xEE");
	free(f.img);
}

static void test_hybrid(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	mbr_rec(&f, 0, 1, 0x80, 0x83, 2048, 2048);
	struct part_table *t;
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_HYBRID);
	part_table_free(t);
	free(f.img);
}

/* ---- planning ---- */

static int plan_for(const struct fx *f, const struct part_plan_opts *o, struct part_plan **p)
{
	struct vdisk *d = fx_open(f, "plan.img", 0);
	struct part_table *t;
	assert_int_equal(part_table_read(d, &t), 0);
	int r = part_plan_new(d, t, o, p);
	part_table_free(t);
	vdisk_close(d);
	return r;
}

static void test_plan_gpt_with_esp(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct gpt_fx g = gpt_defaults(&f);
	struct part_plan *p = NULL;
	struct part_plan_opts o = { .allow_grow = true };
	gpt_entry(&f, ESP, 0, 2048, 4095);
	gpt_finish(&f, &g);
	assert_int_equal(plan_for(&f, &o, &p), -EEXIST);
	assert_non_null(strstr(vdisk_errmsg(), "already has a GPT with an EFI system partition"));
	free(f.img);
}

static void test_plan_front_too_small(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_plan *p = NULL;
	struct part_plan_opts o = { .allow_grow = true };
	mbr_rec(&f, 0, 0, 0, 0x83, 32, 4000);
	assert_int_equal(plan_for(&f, &o, &p), -ENOSPC);
	assert_non_null(strstr(vdisk_errmsg(), "starts at LBA 32"));
	free(f.img);
}

static void test_plan_end_no_grow(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_plan *p = NULL;
	struct part_plan_opts o = { .allow_grow = false, .esp_bytes = 100 * MIB };
	mbr_rec(&f, 0, 0, 0, 0xEF, 2048, 16384 - 2048); /* an ESP to the last sector */
	assert_int_equal(plan_for(&f, &o, &p), -ENOSPC);
	assert_non_null(strstr(vdisk_errmsg(), "33 sectors (16896 bytes) are missing"));
	free(f.img);
}

static void test_plan_unknown_type(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_plan *p = NULL;
	struct part_plan_opts o = { .allow_grow = true, .esp_bytes = 100 * MIB };
	mbr_rec(&f, 0, 0, 0, 0xA5, 2048, 4096);
	assert_int_equal(plan_for(&f, &o, &p), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "MBR type 0xa5"));
	struct part_type_map m = { .mbr_type = 0xA5 };
	assert_int_equal(part_guid_parse("516E7CB4-6ECF-11D6-8FF8-00022D09712B", m.type_guid), 0);
	o.maps = &m;
	o.n_maps = 1;
	assert_int_equal(plan_for(&f, &o, &p), 0);
	assert_memory_equal(p->after->entries[0].type_guid, m.type_guid, 16);
	part_plan_free(p);
	free(f.img);
}

static void test_plan_esp_in_gap_and_seed(void **state)
{
	(void)state;
	struct fx f = fx_new(300 * MIB);
	struct part_plan *p = NULL, *q = NULL;
	struct part_plan_opts o = { .allow_grow = false, .esp_bytes = 100 * MIB, .seeded = true,
				    .seed = 42, .add_msr = true };
	mbr_rec(&f, 0, 0, 0, 0x07, 2048, 2048);                      /* 1..2 MiB */
	mbr_rec(&f, 0, 1, 0, 0x83, 200 * 2048, 300 * 2048 - 200 * 2048); /* to the end */
	o.allow_grow = true;
	assert_int_equal(plan_for(&f, &o, &p), 0);
	assert_int_equal(p->esp_number, 3);
	assert_int_equal(p->msr_number, 4);
	const struct part_entry *esp = part_table_find_esp(p->after);
	assert_non_null(esp);
	assert_int_equal(esp->first_lba, 2 * 2048);   /* first aligned gap */
	assert_int_equal(esp->last_lba, 102 * 2048 - 1);
	assert_int_equal(p->new_size_bytes, 301 * MIB); /* backup GPT: next MiB */
	assert_int_equal(p->n_writes, 5);
	assert_int_equal(p->writes[4].lba, 0);
	assert_int_equal(plan_for(&f, &o, &q), 0);
	for (size_t i = 0; i < p->n_writes; i++)
		assert_memory_equal(p->writes[i].data, q->writes[i].data, p->writes[i].sectors * SS);
	part_plan_free(p);
	part_plan_free(q);
	free(f.img);
}

/* ---- apply and undo ---- */

static void read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	*buf = malloc(*len + 1);
	assert_int_equal(pread(fd, *buf, *len, 0), (ssize_t)*len);
	close(fd);
}

static void test_apply_and_undo(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	struct part_plan_opts o = { .allow_grow = true, .esp_bytes = 100 * MIB, .seeded = true };
	struct part_table *t, *after;
	struct part_plan *p;
	struct vdisk *d = fx_open(&f, "apply.img", VDISK_OPEN_RDWR);
	unlink(tmp_path("apply.undo"));
	assert_int_equal(part_table_read(d, &t), 0);
	assert_int_equal(part_plan_new(d, t, &o, &p), 0);
	assert_int_equal(part_plan_apply(d, p, tmp_path("apply.undo"), NULL), 0);
	assert_int_equal(part_plan_apply(d, p, tmp_path("apply.undo"), NULL), -ESTALE);
	assert_int_equal(part_table_read(d, &after), 0);
	assert_int_equal(after->kind, PART_KIND_GPT);
	assert_int_equal(after->n_findings, 0);
	assert_int_equal(after->n_entries, 4); /* 1 (ESP: lowest free), 5, 6, 7 */
	assert_int_equal(after->entries[0].number, 1);
	assert_int_equal(after->entries[1].number, 5);
	assert_int_equal(after->entries[1].first_lba, 2111);
	assert_int_equal(after->entries[3].last_lba, 16383);
	assert_int_equal(vdisk_size_bytes(d), p->new_size_bytes);
	assert_int_equal(part_undo(d, tmp_path("apply.undo")), 0);
	assert_int_equal(vdisk_size_bytes(d), 8 * MIB);
	vdisk_close(d);
	uint8_t *back;
	size_t len;
	read_file(tmp_path("apply.img"), &back, &len);
	assert_int_equal(len, f.size);
	assert_memory_equal(back, f.img, f.size);
	free(back);
	part_table_free(t);
	part_table_free(after);
	part_plan_free(p);
	free(f.img);
}

static void test_undo_corrupt(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	struct part_plan_opts o = { .allow_grow = true, .esp_bytes = 100 * MIB };
	struct part_table *t;
	struct part_plan *p;
	struct vdisk *d = fx_open(&f, "undo.img", VDISK_OPEN_RDWR);
	char undo[512];
	snprintf(undo, sizeof(undo), "%s", tmp_path("c.undo"));
	unlink(undo);
	assert_int_equal(part_table_read(d, &t), 0);
	assert_int_equal(part_plan_new(d, t, &o, &p), 0);
	assert_int_equal(part_plan_apply(d, p, undo, NULL), 0);
	uint8_t *buf;
	size_t len;
	read_file(undo, &buf, &len);
	buf[100] ^= 0x40;
	int fd = open(undo, O_WRONLY);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
	assert_int_equal(part_undo(d, undo), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "CRC32"));
	/* A truncated undo file is refused before the CRC. */
	assert_int_equal(truncate(undo, (off_t)len - 10), 0);
	assert_int_equal(part_undo(d, undo), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "truncated"));
	free(buf);
	vdisk_close(d);
	part_table_free(t);
	part_plan_free(p);
	free(f.img);
}

static bool has_finding(const struct part_table *t, const char *part)
{
	for (size_t i = 0; i < t->n_findings; i++)
		if (strstr(t->findings[i], part))
			return true;
	return false;
}

static void test_empty_extended(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_table *t;
	mbr_rec(&f, 0, 0, 0, 0x83, 2048, 2048);
	mbr_rec(&f, 0, 1, 0, 0x05, 4096, 4096); /* no EBR written at all */
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->n_entries, 1);
	assert_true(has_finding(t, "holds no logical partitions"));
	part_table_free(t);
	free(f.img);
}

static void test_status_byte(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_table *t;
	mbr_rec(&f, 0, 0, 0x00, 0x83, 2048, 2048);
	mbr_rec(&f, 0, 2, 0x7F, 0x83, 999999, 99999999); /* nonsense: a FAT boot sector's bytes */
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_NONE);
	assert_int_equal(t->n_entries, 0);
	assert_true(has_finding(t, "entry 3's status byte is 0x7f"));
	part_table_free(t);
	free(f.img);
}

/* 130 EBRs, each with a 2-sector logical: more than a 128-entry GPT could number. */
static void test_ebr_chain_too_long(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	mbr_rec(&f, 0, 0, 0, 0x0F, 2048, 130 * 4);
	for (uint32_t i = 0; i < 130; i++) {
		uint64_t ebr = 2048 + 4 * i;
		mbr_rec(&f, ebr, 0, 0, 0x83, 1, 2);
		if (i + 1 < 130)
			mbr_rec(&f, ebr, 1, 0, 0x05, 4 * (i + 1), 4);
	}
	expect_error(&f, EINVAL, "more than 124 logical partitions");
	free(f.img);
}

static void test_stale_gpt_behind_mbr(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	struct part_table *t;
	memset(f.img + 446, 0, 64); /* an interrupted conversion: MBR back, GPT still there */
	mbr_rec(&f, 0, 0, 0, 0x83, 2048, 2048);
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_MBR);
	assert_true(has_finding(t, "GPT is ignored"));
	part_table_free(t);
	free(f.img);
}

static void test_gpt_without_pmbr(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	struct part_table *t;
	memset(f.img, 0, SS);
	assert_int_equal(fx_read(&f, &t), 0);
	assert_int_equal(t->kind, PART_KIND_GPT);
	assert_true(has_finding(t, "protective MBR is missing"));
	part_table_free(t);
	free(f.img);
}

static void test_repair_primary(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	struct part_table *t, *again;
	f.img[2 * SS + 40] ^= 1; /* primary entry array */
	struct vdisk *d = fx_open(&f, "repair.img", VDISK_OPEN_RDWR);
	f.img[2 * SS + 40] ^= 1;
	assert_int_equal(part_table_read(d, &t), 0);
	assert_false(t->gpt_primary_valid);
	assert_int_equal(part_gpt_repair(d, t), 1);
	assert_int_equal(part_table_read(d, &again), 0);
	assert_true(again->gpt_primary_valid && again->gpt_backup_valid);
	assert_int_equal(part_gpt_repair(d, again), 0);
	vdisk_close(d);
	uint8_t *back;
	size_t len;
	read_file(tmp_path("repair.img"), &back, &len);
	assert_memory_equal(back, f.img, f.size); /* exactly the table the fixture wrote */
	free(back);
	part_table_free(t);
	part_table_free(again);
	free(f.img);
}

static void test_plan_reuses_mbr_esp(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct part_plan *p = NULL;
	struct part_plan_opts o = { .allow_grow = false };
	mbr_rec(&f, 0, 0, 0x80, 0xEF, 2048, 4096);
	mbr_rec(&f, 0, 1, 0, 0x83, 6144, 4096);
	assert_int_equal(plan_for(&f, &o, &p), 0);
	assert_int_equal(p->esp_number, 1);
	assert_false(p->esp_created);
	assert_int_equal(p->new_size_bytes, 8 * MIB);
	assert_int_equal(p->after->n_entries, 2);
	assert_string_equal(p->after->entries[0].name, "EFI system partition");
	part_plan_free(p);
	free(f.img);
}

static void test_apply_guards(void **state)
{
	(void)state;
	struct fx f = mbr_with_logicals();
	struct part_plan_opts o = { .allow_grow = true, .esp_bytes = 100 * MIB };
	struct part_table *t;
	struct part_plan *p;
	char undo[512];
	snprintf(undo, sizeof(undo), "%s", tmp_path("exists.undo")); /* tmp_path's buffers rotate */
	struct vdisk *d = fx_open(&f, "guard.img", VDISK_OPEN_RDWR);
	assert_int_equal(part_table_read(d, &t), 0);
	assert_int_equal(part_plan_new(d, t, &o, &p), 0);
	int fd = open(undo, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(part_plan_apply(d, p, undo, NULL), -EEXIST); /* never overwritten */
	assert_int_equal(vdisk_size_bytes(d), 8 * MIB);
	unlink(undo);
	struct part_table *same;
	assert_int_equal(part_table_read(d, &same), 0);
	assert_int_equal(same->kind, PART_KIND_MBR);
	/* An undo file for another disk is refused. */
	assert_int_equal(part_plan_apply(d, p, undo, NULL), 0);
	vdisk_close(d);
	struct fx other = fx_new(4 * MIB);
	struct vdisk *o2 = fx_open(&other, "other.img", VDISK_OPEN_RDWR);
	assert_int_equal(part_undo(o2, undo), -ESTALE);
	vdisk_close(o2);
	part_table_free(t);
	part_table_free(same);
	part_plan_free(p);
	free(f.img);
	free(other.img);
}

static void test_gpt_name_utf16(void **state)
{
	(void)state;
	struct fx f = fx_new(8 * MIB);
	struct gpt_fx g = gpt_defaults(&f);
	struct part_table *t;
	const uint16_t name[] = { 'a', 0xE9, 0x20AC, 0xD83D, 0xDE00, 'z', 0 };
	gpt_entry(&f, LINUX_FS, 0, 2048, 4095);
	for (int copy = 0; copy < 2; copy++) {
		uint8_t *e = f.img + (copy ? f.size / SS - 33 : 2) * SS;
		for (int i = 0; name[i]; i++)
			put16(e + 56 + 2 * i, name[i]);
	}
	gpt_finish(&f, &g);
	assert_int_equal(fx_read(&f, &t), 0);
	assert_string_equal(t->entries[0].name, "a\xc3\xa9\xe2\x82\xac??z");
	part_table_free(t);
	free(f.img);
}

static void test_gpt_copies_disagree(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	f.img[f.size - SS + 56] ^= 0xFF; /* backup's disk GUID */
	gpt_rehash(&f, f.size / SS - 1);
	expect_finding(&f, "GPT headers disagree");
	free(f.img);
}

static void test_gpt_array_overlaps_usable(void **state)
{
	(void)state;
	struct fx f = gpt_fixture();
	put64(f.img + SS + 72, 20); /* primary array at LBA 20..51, usable starts at 34 */
	gpt_rehash(&f, 1);
	expect_finding(&f, "entry array LBA 20..51 overlaps");
	free(f.img);
}

/* ---- undo files built by hand (undo-format.h layout), one defect each ---- */

struct undo_rec_fx {
	uint64_t off;
	uint32_t len, real_len; /* real_len bytes of data follow the record header */
};

/* n records are written; the header claims n + more_claimed. */
static void write_undo(const char *path, const char *magic, uint32_t ss, uint64_t orig,
		       const struct undo_rec_fx *recs, int n, int more_claimed, size_t extra)
{
	uint8_t buf[8192] = { 0 };
	size_t at = 48;
	memcpy(buf, magic, 8);
	put32(buf + 8, 1);
	put32(buf + 12, ss);
	put64(buf + 16, orig);
	put64(buf + 24, orig);
	put32(buf + 32, (uint32_t)(n + more_claimed));
	for (int i = 0; i < n; i++) {
		put64(buf + at, recs[i].off);
		put32(buf + at + 8, recs[i].len);
		at += 16;
		memset(buf + at, 0x5A, recs[i].real_len);
		at += recs[i].real_len;
	}
	at += extra;
	put64(buf + 40, at + 4);
	put32(buf + at, crc32_ref(buf, at));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, at + 4), (ssize_t)(at + 4));
	close(fd);
}

static void expect_undo_error(const char *magic, uint32_t ss, const struct undo_rec_fx *rec,
			      int more_claimed, size_t extra, int err, const char *part)
{
	char undo[512];
	struct fx f = fx_new(MIB);
	struct vdisk *d = fx_open(&f, "u.img", VDISK_OPEN_RDWR);
	snprintf(undo, sizeof(undo), "%s", tmp_path("hand.undo"));
	write_undo(undo, magic, ss, MIB, rec, 1, more_claimed, extra);
	int r = part_undo(d, undo);
	if (r != -err || (err && !strstr(vdisk_errmsg(), part)))
		fail_msg("expected -%d with \"%s\", got %d: %s", err, part, r, vdisk_errmsg());
	vdisk_close(d);
	free(f.img);
}

static void test_undo_hostile(void **state)
{
	(void)state;
	const struct undo_rec_fx ok = { 512, 512, 512 }, long_ = { 512, 4096, 512 },
				 past = { MIB - 256, 512, 512 };
	expect_undo_error("GSPTUNDO", 512, &ok, 0, 0, 0, ""); /* the valid one is accepted */
	expect_undo_error("XSPTUNDO", 512, &ok, 0, 0, EINVAL, "not a genshift undo file");
	expect_undo_error("GSPTUNDO", 1000, &ok, 0, 0, EINVAL, "implausible header");
	expect_undo_error("GSPTUNDO", 512, &long_, 0, 0, EINVAL, "do not fit");
	expect_undo_error("GSPTUNDO", 512, &past, 0, 0, EINVAL, "do not fit");
	expect_undo_error("GSPTUNDO", 512, &ok, 0, 16, EINVAL, "unexplained data");
	expect_undo_error("GSPTUNDO", 512, &ok, 1, 0, EINVAL, "runs past the data");
}

static void test_guid_text(void **state)
{
	(void)state;
	uint8_t g[16];
	char s[37];
	assert_int_equal(part_guid_parse(ESP, g), 0);
	assert_int_equal(g[0], 0x28); /* Data1 little-endian on disk */
	assert_int_equal(g[8], 0xBA);
	part_guid_to_str(g, s);
	assert_string_equal(s, ESP);
	assert_int_equal(part_guid_parse("C12A7328F81F-11D2-BA4B-00A0C93EC93B0", g), -EINVAL);
	assert_int_equal(part_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93", g), -EINVAL);
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/partition_test.XXXXXX", t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_disk),
		cmocka_unit_test(test_mbr_primaries),
		cmocka_unit_test(test_mbr_logicals),
		cmocka_unit_test(test_ebr_loop),
		cmocka_unit_test(test_ebr_self_loop),
		cmocka_unit_test(test_ebr_link_out_of_range),
		cmocka_unit_test(test_ebr_missing_signature),
		cmocka_unit_test(test_logical_outside_extended),
		cmocka_unit_test(test_partition_past_end),
		cmocka_unit_test(test_overlapping_primaries),
		cmocka_unit_test(test_two_extended),
		cmocka_unit_test(test_gpt_valid),
		cmocka_unit_test(test_gpt_primary_header_crc),
		cmocka_unit_test(test_gpt_backup_header_crc),
		cmocka_unit_test(test_gpt_primary_array_crc),
		cmocka_unit_test(test_gpt_both_bad),
		cmocka_unit_test(test_gpt_entry_size),
		cmocka_unit_test(test_gpt_absurd_count),
		cmocka_unit_test(test_gpt_header_size),
		cmocka_unit_test(test_gpt_my_lba),
		cmocka_unit_test(test_gpt_usable_range),
		cmocka_unit_test(test_gpt_entry_outside_usable),
		cmocka_unit_test(test_gpt_overlap),
		cmocka_unit_test(test_protective_without_gpt),
		cmocka_unit_test(test_hybrid),
		cmocka_unit_test(test_plan_gpt_with_esp),
		cmocka_unit_test(test_plan_front_too_small),
		cmocka_unit_test(test_plan_end_no_grow),
		cmocka_unit_test(test_plan_unknown_type),
		cmocka_unit_test(test_plan_esp_in_gap_and_seed),
		cmocka_unit_test(test_apply_and_undo),
		cmocka_unit_test(test_undo_corrupt),
		cmocka_unit_test(test_guid_text),
		cmocka_unit_test(test_empty_extended),
		cmocka_unit_test(test_status_byte),
		cmocka_unit_test(test_ebr_chain_too_long),
		cmocka_unit_test(test_stale_gpt_behind_mbr),
		cmocka_unit_test(test_gpt_without_pmbr),
		cmocka_unit_test(test_repair_primary),
		cmocka_unit_test(test_plan_reuses_mbr_esp),
		cmocka_unit_test(test_apply_guards),
		cmocka_unit_test(test_gpt_name_utf16),
		cmocka_unit_test(test_gpt_copies_disagree),
		cmocka_unit_test(test_gpt_array_overlaps_usable),
		cmocka_unit_test(test_undo_hostile),
	};
	return cmocka_run_group_tests_name("partition", tests, setup, teardown);
}
