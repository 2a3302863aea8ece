/* tests/unit/bootfix_esp_test.c - esp_format() and bootfix_linux_esp(): FAT32 volumes formatted
 * into raw and 4Kn VHDX disks made here, read back with the small FAT32 reader below (written
 * from fatgen103, sharing nothing with esp.c), with guard patterns around the partition. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bootfix/bootfix.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

#define MIB (1024ull * 1024ull)
#define GUARD_BYTES (1024u * 1024u)
#define PART_LBA_512 2048u

static char dir[256];

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* ---- disks with guard patterns ---- */

struct disk {
	struct vdisk *d;
	const char *path;
	uint32_t ss;
	uint64_t first_lba, sectors; /* the partition */
};

/* A disk of the partition plus GUARD_BYTES on each side, guards filled with 0x5A. raw with
 * 512-byte sectors, or a dynamic VHDX with 4096-byte logical sectors. */
static struct disk disk_new(const char *name, uint32_t ss, uint64_t part_bytes)
{
	struct disk k = { .path = tmp_path(name), .ss = ss };
	struct vdisk_create_opts o = { .format = ss == 512 ? VDISK_FORMAT_RAW : VDISK_FORMAT_VHDX,
				       .subformat = ss == 512 ? VDISK_SUB_NONE : VDISK_SUB_DYNAMIC,
				       .size_bytes = part_bytes + 2 * GUARD_BYTES,
				       .logical_sector_bytes = ss == 512 ? 0 : ss };
	unlink(k.path);
	assert_int_equal(vdisk_create(k.path, &o, &k.d), 0);
	k.first_lba = GUARD_BYTES / ss;
	k.sectors = part_bytes / ss;
	uint8_t *g = malloc(GUARD_BYTES);
	assert_non_null(g);
	memset(g, 0x5A, GUARD_BYTES);
	assert_int_equal(vdisk_write(k.d, 0, g, GUARD_BYTES), 0);
	assert_int_equal(vdisk_write(k.d, GUARD_BYTES + part_bytes, g, GUARD_BYTES), 0);
	free(g);
	return k;
}

static void fill(struct disk *k, uint64_t off, uint64_t len, uint8_t byte)
{
	uint8_t *b = malloc(len);
	assert_non_null(b);
	memset(b, byte, len);
	assert_int_equal(vdisk_write(k->d, off, b, len), 0);
	free(b);
}

/* Bytes [off, off+len) all equal byte. */
static bool all_are(struct disk *k, uint64_t off, uint64_t len, uint8_t byte)
{
	uint8_t *b = malloc(len);
	bool ok = true;
	assert_non_null(b);
	assert_int_equal(vdisk_read(k->d, off, b, len), 0);
	for (uint64_t i = 0; i < len && ok; i++)
		ok = b[i] == byte;
	free(b);
	return ok;
}

static void guards_intact(struct disk *k)
{
	uint64_t end = (k->first_lba + k->sectors) * k->ss;
	assert_true(all_are(k, 0, GUARD_BYTES, 0x5A));
	assert_true(all_are(k, end, GUARD_BYTES, 0x5A));
}

static void disk_free(struct disk *k)
{
	assert_int_equal(vdisk_close(k->d), 0);
	unlink(k->path);
}

/* ---- an independent FAT32 reader (fatgen103) ---- */

struct rd {
	struct disk *k;
	uint64_t base;
	uint32_t ss, spc, cb, rsvd, fatsz, root, totsec, clusters;
	uint8_t bs[512];
};

static void rd_open(struct rd *r, struct disk *k)
{
	memset(r, 0, sizeof(*r));
	r->k = k;
	r->base = k->first_lba * k->ss;
	assert_int_equal(vdisk_read(k->d, r->base, r->bs, 512), 0);
	assert_int_equal(r->bs[510], 0x55);
	assert_int_equal(r->bs[511], 0xAA);
	r->ss = rd16(r->bs + 11);
	r->spc = r->bs[13];
	r->cb = r->ss * r->spc;
	r->rsvd = rd16(r->bs + 14);
	r->fatsz = rd32(r->bs + 36);
	r->root = rd32(r->bs + 44);
	r->totsec = rd32(r->bs + 32);
	assert_true(r->spc > 0 && r->fatsz > 0);
	r->clusters = (r->totsec - r->rsvd - 2 * r->fatsz) / r->spc;
}

static uint32_t rd_fat(struct rd *r, int copy, uint32_t cl)
{
	uint8_t e[4];
	uint64_t off = r->base + (uint64_t)(r->rsvd + copy * r->fatsz) * r->ss + 4ull * cl;
	assert_int_equal(vdisk_read(r->k->d, off, e, 4), 0);
	return rd32(e) & 0x0FFFFFFF;
}

/* The clusters of a chain, concatenated; asserts the chain is sane. */
static uint8_t *rd_chain(struct rd *r, uint32_t first, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	for (uint32_t cl = first, steps = 0;; steps++) {
		assert_true(cl >= 2 && cl < r->clusters + 2);
		assert_true(steps < r->clusters);
		buf = realloc(buf, (n + 1) * r->cb);
		assert_non_null(buf);
		uint64_t off = r->base + (uint64_t)(r->rsvd + 2 * r->fatsz) * r->ss +
			       (uint64_t)(cl - 2) * r->cb;
		assert_int_equal(vdisk_read(r->k->d, off, buf + n * r->cb, r->cb), 0);
		n++;
		uint32_t next = rd_fat(r, 0, cl);
		if (next >= 0x0FFFFFF8)
			break;
		cl = next;
	}
	*len = n * r->cb;
	return buf;
}

struct rd_ent {
	char name[256];      /* long name if any, else "BASE.EXT" */
	uint8_t short_name[11];
	uint8_t attr;
	uint32_t cluster, size;
	bool had_lfn;
};

static uint8_t sfn_sum(const uint8_t *n)
{
	uint8_t s = 0;
	for (int i = 0; i < 11; i++)
		s = (uint8_t)(((s & 1) << 7) + (s >> 1) + n[i]);
	return s;
}

static void short_to_text(const uint8_t *n, char *out)
{
	int o = 0;
	for (int i = 0; i < 8 && n[i] != ' '; i++)
		out[o++] = (char)n[i];
	if (n[8] != ' ')
		out[o++] = '.';
	for (int i = 8; i < 11 && n[i] != ' '; i++)
		out[o++] = (char)n[i];
	out[o] = '\0';
}

/* Every entry of a directory, LFN runs checked (order, checksum) and joined. */
static size_t rd_list(struct rd *r, uint32_t cluster, struct rd_ent *out, size_t max)
{
	static const int pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	size_t len, n = 0;
	uint8_t *buf = rd_chain(r, cluster, &len);
	uint16_t units[260];
	int expect = 0, n_lfn = 0;
	uint8_t sum = 0;
	bool pending = false; /* LFN entries seen since the last short entry */
	for (size_t off = 0; off < len && buf[off] != 0; off += 32) {
		const uint8_t *e = buf + off;
		assert_int_not_equal(e[0], 0xE5);
		if (e[11] == 0x0F) {
			if (e[0] & 0x40) {
				assert_int_equal(expect, 0);
				expect = n_lfn = e[0] & 0x3F;
				sum = e[13];
				pending = true;
				memset(units, 0xFF, sizeof(units));
			}
			assert_true(pending);
			assert_int_equal(e[0] & 0x3F, expect);
			assert_int_equal(e[13], sum);
			for (int u = 0; u < 13; u++)
				units[(expect - 1) * 13 + u] = rd16(e + pos[u]);
			expect--;
			continue;
		}
		assert_true(n < max);
		struct rd_ent *x = &out[n++];
		memset(x, 0, sizeof(*x));
		memcpy(x->short_name, e, 11);
		x->attr = e[11];
		x->cluster = (uint32_t)rd16(e + 20) << 16 | rd16(e + 26);
		x->size = rd32(e + 28);
		x->had_lfn = pending;
		if (x->had_lfn) {
			assert_int_equal(expect, 0);
			assert_int_equal(sfn_sum(e), sum);
			int i = 0;
			for (; i < 13 * n_lfn && units[i] != 0 && units[i] != 0xFFFF; i++) {
				assert_true(units[i] < 0x80);
				x->name[i] = (char)units[i];
			}
			x->name[i] = '\0';
			/* "FAT Long Directory Entries": one NUL after a name that does not fill its
			 * last entry, then 0xFFFF to the end of that entry. */
			assert_true(i > 13 * (n_lfn - 1));
			if (i < 13 * n_lfn)
				assert_int_equal(units[i++], 0x0000);
			for (; i < 13 * n_lfn; i++)
				assert_int_equal(units[i], 0xFFFF);
		} else {
			short_to_text(e, x->name);
		}
		pending = false;
	}
	assert_int_equal(expect, 0);
	free(buf);
	return n;
}

/* The entry at path (long names, exact), or fails the test. */
static struct rd_ent rd_find(struct rd *r, const char *path, uint32_t *parent_out)
{
	struct rd_ent ents[64], found = { .cluster = r->root, .attr = 0x10 };
	char copy[512];
	uint32_t parent = 0;
	snprintf(copy, sizeof(copy), "%s", path);
	for (char *save, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		assert_true(found.attr & 0x10);
		size_t n = rd_list(r, found.cluster, ents, 64);
		bool hit = false;
		parent = found.cluster;
		for (size_t i = 0; i < n && !hit; i++)
			if (!(ents[i].attr & 0x08) && strcmp(ents[i].name, c) == 0)
				found = ents[i], hit = true;
		if (!hit)
			fail_msg("%s: no \"%s\" in the directory", path, c);
	}
	if (parent_out)
		*parent_out = parent;
	return found;
}

static void rd_expect_file(struct rd *r, const char *path, const void *data, size_t bytes)
{
	struct rd_ent e = rd_find(r, path, NULL);
	assert_int_equal(e.attr & 0x18, 0);
	assert_int_equal(e.size, bytes);
	if (bytes == 0) {
		assert_int_equal(e.cluster, 0);
		return;
	}
	size_t len;
	uint8_t *got = rd_chain(r, e.cluster, &len);
	assert_int_equal(len, (bytes + r->cb - 1) / r->cb * r->cb);
	assert_memory_equal(got, data, bytes);
	for (size_t i = bytes; i < len; i++)
		assert_int_equal(got[i], 0);
	free(got);
}

/* "." and ".." of a subdirectory point at itself and its parent (0 for the root). */
static void rd_expect_dir(struct rd *r, const char *path)
{
	uint32_t parent;
	struct rd_ent e = rd_find(r, path, &parent), ents[64];
	assert_int_equal(e.attr & 0x10, 0x10);
	size_t n = rd_list(r, e.cluster, ents, 64);
	assert_true(n >= 2);
	assert_memory_equal(ents[0].short_name, ".          ", 11);
	assert_memory_equal(ents[1].short_name, "..         ", 11);
	assert_int_equal(ents[0].cluster, e.cluster);
	assert_int_equal(ents[1].cluster, parent == r->root ? 0 : parent);
}

/* BPB, backup, FSInfo (free count = the FAT's zero entries), FAT[0..1], equal FAT copies,
 * the FAT-type rule. Returns the free-cluster count. */
static uint32_t rd_check_volume(struct rd *r, uint32_t ss, uint32_t spc, uint32_t id,
				const char *label)
{
	const uint8_t *b = r->bs;
	assert_int_equal(r->ss, ss);
	assert_int_equal(r->spc, spc);
	assert_true(b[0] == 0xEB && b[2] == 0x90);
	assert_int_equal(b[16], 2);                 /* FATs */
	assert_int_equal(rd16(b + 17), 0);          /* root entries */
	assert_int_equal(rd16(b + 19), 0);          /* 16-bit total */
	assert_int_equal(b[21], 0xF8);
	assert_int_equal(rd16(b + 22), 0);          /* 16-bit FAT size */
	assert_int_equal(rd32(b + 28), r->k->first_lba);
	assert_int_equal(r->totsec, r->k->sectors);
	assert_int_equal(r->root, 2);
	assert_int_equal(rd16(b + 48), 1);
	assert_int_equal(rd16(b + 50), 6);
	assert_int_equal(b[66], 0x29);
	assert_int_equal(rd32(b + 67), id);
	assert_memory_equal(b + 71, label, 11);
	assert_memory_equal(b + 82, "FAT32   ", 8);
	assert_true(r->clusters >= 65525);
	assert_true((uint64_t)r->fatsz * r->ss / 4 >= r->clusters + 2ull);

	uint8_t *s = malloc(r->ss * 8);
	assert_non_null(s);
	assert_int_equal(vdisk_read(r->k->d, r->base, s, r->ss * 8), 0);
	assert_memory_equal(s, s + 6 * r->ss, r->ss);          /* backup boot sector */
	assert_memory_equal(s + r->ss, s + 7 * r->ss, r->ss);  /* backup FSInfo */
	const uint8_t *fsi = s + r->ss;
	assert_int_equal(rd32(fsi), 0x41615252);
	assert_int_equal(rd32(fsi + 484), 0x61417272);
	assert_int_equal(rd32(fsi + 508), 0xAA550000);

	assert_int_equal(rd_fat(r, 0, 0), 0x0FFFFFF8);
	assert_int_equal(rd_fat(r, 0, 1), 0x0FFFFFFF);
	uint32_t free_clusters = 0, first_free = 0;
	size_t fat_bytes = (size_t)r->fatsz * r->ss;
	uint8_t *f0 = malloc(fat_bytes), *f1 = malloc(fat_bytes);
	assert_non_null(f0);
	assert_non_null(f1);
	assert_int_equal(vdisk_read(r->k->d, r->base + (uint64_t)r->rsvd * r->ss, f0, fat_bytes), 0);
	assert_int_equal(vdisk_read(r->k->d, r->base + (uint64_t)(r->rsvd + r->fatsz) * r->ss, f1,
				    fat_bytes), 0);
	assert_memory_equal(f0, f1, fat_bytes);
	for (uint32_t cl = 2; cl < r->clusters + 2; cl++)
		if (rd32(f0 + 4 * (size_t)cl) == 0 && free_clusters++ == 0)
			first_free = cl;
	for (size_t i = 4 * ((size_t)r->clusters + 2); i < fat_bytes; i++)
		assert_int_equal(f0[i], 0);
	assert_int_equal(rd32(fsi + 488), free_clusters);
	assert_int_equal(rd32(fsi + 492), first_free);
	free(f0);
	free(f1);
	free(s);
	return free_clusters;
}

/* ---- fixtures ---- */

static uint8_t *pseudo_random(size_t n, uint32_t seed)
{
	uint8_t *b = malloc(n ? n : 1);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
	return b;
}

static const char CFG[] = "search --no-floppy --fs-uuid --set=root 1234\n";

/* The four files bootfix_linux_esp writes plus names that exercise the alias rules. */
static void format_and_check(uint32_t ss, uint64_t part_bytes, uint32_t expect_spc)
{
	struct disk k = disk_new("v.img", ss, part_bytes);
	/* An in-place conversion reuses sectors: the metadata area must really be cleared. */
	fill(&k, k.first_lba * ss, 4 * MIB, 0xA5);
	uint8_t *img = pseudo_random(300000, 1), *one = pseudo_random(ss * expect_spc, 2);
	const struct esp_file files[] = {
		{ "EFI/BOOT/BOOTX64.EFI", img, 300000 },
		{ "EFI/BOOT/grub.cfg", CFG, sizeof(CFG) - 1 },
		{ "EFI/debian/grubx64.efi", img, 300000 },
		{ "EFI/debian/grub.cfg", CFG, sizeof(CFG) - 1 },
		{ "EFI/debian/exactly-one-cluster.bin", one, ss * expect_spc },
		{ "empty", NULL, 0 },
		{ "a/b/c/d/A name that needs three LFN entries, 40 ch", CFG, 5 },
	};
	const struct esp_opts o = { .volume_id = 0x4745E5B0, .label = "esp" };
	uint32_t id = 0;
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, files, 7, &id), 0);
	assert_int_equal(id, 0x4745E5B0);
	guards_intact(&k);
	struct rd r;
	rd_open(&r, &k);
	uint32_t free_clusters = rd_check_volume(&r, ss, expect_spc, id, "ESP        ");
	assert_true(free_clusters < r.clusters);
	assert_int_equal(rd_fat(&r, 0, 2), 0x0FFFFFFF); /* the root: one cluster */
	for (size_t i = 0; i < 7; i++)
		rd_expect_file(&r, files[i].path, files[i].data, files[i].bytes);
	rd_expect_dir(&r, "EFI");
	rd_expect_dir(&r, "EFI/debian");
	rd_expect_dir(&r, "a/b/c/d");
	free(img);
	free(one);
	disk_free(&k);
}

static void test_100m_512(void **state)
{
	(void)state;
	format_and_check(512, 100 * MIB, 1);
}

static void test_260m_512(void **state)
{
	(void)state;
	format_and_check(512, 260 * MIB, 1);
}

/* 4 KiB clusters past 260 MiB, and a 2 GiB format writes megabytes, not gigabytes. */
static void test_2g_512(void **state)
{
	(void)state;
	format_and_check(512, 2048 * MIB, 8);
	struct disk k = disk_new("sparse.img", 512, 2048 * MIB);
	const struct esp_file f = { "EFI/BOOT/BOOTX64.EFI", CFG, sizeof(CFG) };
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, NULL, &f, 1, NULL), 0);
	struct stat st;
	assert_int_equal(stat(k.path, &st), 0);
	/* two guards + 2 x 2 MiB of FAT + reserved area + two clusters, give or take */
	assert_true((uint64_t)st.st_blocks * 512 < 8 * MIB);
	disk_free(&k);
}

static void test_260m_4kn_vhdx(void **state)
{
	(void)state;
	format_and_check(4096, 260 * MIB, 1);
}

/* Too small for 65525 clusters: -EINVAL, and nothing inside the partition is touched. */
static void test_too_small(void **state)
{
	(void)state;
	struct { uint32_t ss; uint64_t bytes; } cases[] = { { 512, 32 * MIB }, { 4096, 100 * MIB },
							    { 4096, 256 * MIB } };
	for (size_t i = 0; i < 3; i++) {
		struct disk k = disk_new("small.img", cases[i].ss, cases[i].bytes);
		fill(&k, k.first_lba * k.ss, 64 * 1024, 0xC3);
		int r = esp_format(k.d, k.first_lba, k.sectors, NULL, NULL, 0, NULL);
		if (r != -EINVAL || !strstr(vdisk_errmsg(), "too small for FAT32"))
			fail_msg("case %zu: got %d: %s", i, r, vdisk_errmsg());
		assert_true(all_are(&k, k.first_lba * k.ss, 64 * 1024, 0xC3));
		guards_intact(&k);
		disk_free(&k);
	}
}

/* Files that do not fit: -ENOSPC before any write. */
static void test_no_space(void **state)
{
	(void)state;
	struct disk k = disk_new("full.img", 512, 40 * MIB);
	fill(&k, k.first_lba * 512, 64 * 1024, 0xC3);
	uint8_t *big = pseudo_random(41 * MIB, 3);
	const struct esp_file f = { "big.bin", big, 41 * MIB };
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, NULL, &f, 1, NULL), -ENOSPC);
	assert_non_null(strstr(vdisk_errmsg(), "clusters"));
	assert_true(all_are(&k, k.first_lba * 512, 64 * 1024, 0xC3));
	free(big);
	disk_free(&k);
}

static void expect_path_error(struct disk *k, const char *p1, const char *p2, const char *msg)
{
	const struct esp_file f[2] = { { p1, CFG, 3 }, { p2, CFG, 3 } };
	int r = esp_format(k->d, k->first_lba, k->sectors, NULL, f, p2 ? 2 : 1, NULL);
	if (r != -EINVAL || !strstr(vdisk_errmsg(), msg))
		fail_msg("\"%s\", \"%s\": expected -EINVAL with \"%s\", got %d: %s", p1,
			 p2 ? p2 : "", msg, r, vdisk_errmsg());
}

static void test_bad_input(void **state)
{
	(void)state;
	struct disk k = disk_new("bad.img", 512, 40 * MIB);
	expect_path_error(&k, "", NULL, "empty component");
	expect_path_error(&k, "/EFI/x", NULL, "empty component");
	expect_path_error(&k, "EFI//x", NULL, "empty component");
	expect_path_error(&k, "EFI/", NULL, "empty component");
	expect_path_error(&k, "EFI/../x", NULL, "may not end in '.'");
	expect_path_error(&k, "a:b", NULL, "not allowed");
	expect_path_error(&k, "caf\xc3\xa9", NULL, "not allowed");
	expect_path_error(&k, "EFI/BOOT/x", "efi/boot/X", "given twice");
	expect_path_error(&k, "EFI", "EFI/x", "is a file");
	const struct esp_opts o = { .label = "TWELVE_CHARS" };
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, NULL, 0, NULL), -EINVAL);
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors + 1 + 2 * GUARD_BYTES / 512, NULL,
				    NULL, 0, NULL), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "past the end"));
	guards_intact(&k);
	disk_free(&k);
}

/* Caps: at most 8192 files and directories; a directory of more than 65536 entries (3200
 * names of 255 characters need 21 entries each) does not fit. */
static void test_limits(void **state)
{
	(void)state;
	struct disk k = disk_new("limits.img", 512, 40 * MIB);
	size_t n = 8193;
	struct esp_file *f = calloc(n, sizeof(*f));
	char (*names)[260] = calloc(n, sizeof(*names));
	assert_non_null(f);
	assert_non_null(names);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "F%zu", i);
		f[i].path = names[i];
	}
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, NULL, f, n, NULL), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "more than 8192"));
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, NULL, f, 8192, NULL), 0);
	for (size_t i = 0; i < 3200; i++) {
		memset(names[i], 'n', 255);
		snprintf(names[i], sizeof(names[i]), "%05zu", i);
		names[i][5] = 'n';
		names[i][255] = '\0';
	}
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, NULL, f, 3200, NULL), -ENOSPC);
	assert_non_null(strstr(vdisk_errmsg(), "entries"));
	free(names);
	free(f);
	disk_free(&k);
}

/* Aliases: upper-case 8.3 names stand alone; case-only changes keep the basis name; lossy
 * names get ~N, colliding ones the next N; the label entry leads the root. */
static void test_short_names(void **state)
{
	(void)state;
	struct disk k = disk_new("names.img", 512, 40 * MIB);
	const struct esp_file f[] = {
		{ "BOOTX64.EFI", CFG, 1 }, { "grubx64.efi", CFG, 1 }, { "longfilename1.txt", CFG, 1 },
		{ "longfilename2.txt", CFG, 1 }, { "two.dots.cfg", CFG, 1 }, { "debian", CFG, 1 },
		/* the alias ~3 is left to the name that spells it */
		{ "longfilename3.txt", CFG, 1 }, { "longfi~3.txt", CFG, 1 },
	};
	static const char *const want[] = { "BOOTX64 EFI", "GRUBX64 EFI", "LONGFI~1TXT",
					    "LONGFI~2TXT", "TWODOT~1CFG", "DEBIAN     ",
					    "LONGFI~4TXT", "LONGFI~3TXT" };
	static const bool lfn[] = { false, true, true, true, true, true, true, true };
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, NULL, f, 8, NULL), 0);
	struct rd r;
	rd_open(&r, &k);
	struct rd_ent ents[16];
	size_t n = rd_list(&r, r.root, ents, 16);
	assert_int_equal(n, 9);
	assert_int_equal(ents[0].attr, 0x08);
	assert_memory_equal(ents[0].short_name, "ESP        ", 11);
	for (size_t i = 0; i < 8; i++) {
		assert_memory_equal(ents[i + 1].short_name, want[i], 11);
		assert_int_equal(ents[i + 1].had_lfn, lfn[i]);
		assert_string_equal(ents[i + 1].name, f[i].path);
	}
	disk_free(&k);
}

/* Same input, same bytes; the caller's time lands in every entry. */
static void test_reproducible(void **state)
{
	(void)state;
	const struct esp_file f[] = { { "EFI/BOOT/grub.cfg", CFG, sizeof(CFG) } };
	const struct esp_opts o = { .volume_id = 0x12345678, .timestamp = 1700000000 };
	uint8_t *img[2];
	size_t meta = 0;
	for (int i = 0; i < 2; i++) {
		struct disk k = disk_new(i ? "r1.img" : "r0.img", 512, 40 * MIB);
		assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, f, 1, NULL), 0);
		struct rd r;
		rd_open(&r, &k);
		meta = (size_t)(r.rsvd + 2 * r.fatsz + 4) * 512;
		img[i] = malloc(meta);
		assert_non_null(img[i]);
		assert_int_equal(vdisk_read(k.d, r.base, img[i], meta), 0);
		rd_find(&r, "EFI/BOOT/grub.cfg", NULL);
		/* 2023-11-14 22:13:20 UTC: date (43 << 9 | 11 << 5 | 14), time (22 << 11 | 13 << 5 | 10) */
		uint8_t ent[32];
		struct rd_ent ents[8];
		size_t n = rd_list(&r, r.root, ents, 8);
		assert_int_equal(n, 2);
		uint64_t root_off = r.base + (uint64_t)(r.rsvd + 2 * r.fatsz) * 512;
		assert_int_equal(vdisk_read(k.d, root_off + 32, ent, 32), 0);
		assert_int_equal(rd16(ent + 24), 43 << 9 | 11 << 5 | 14);
		assert_int_equal(rd16(ent + 22), 22 << 11 | 13 << 5 | 10);
		assert_int_equal(rd16(ent + 16), 43 << 9 | 11 << 5 | 14);
		disk_free(&k);
	}
	assert_memory_equal(img[0], img[1], meta);
	free(img[0]);
	free(img[1]);
}

/* label "": no volume-label entry, "NO NAME" in the BPB; lower case is stored upper case. */
static void test_labels(void **state)
{
	(void)state;
	struct disk k = disk_new("label.img", 512, 40 * MIB);
	const struct esp_file f = { "x", CFG, 1 };
	struct esp_opts o = { .volume_id = 1, .label = "" };
	struct rd r;
	struct rd_ent ents[4];
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, &f, 1, NULL), 0);
	rd_open(&r, &k);
	rd_check_volume(&r, 512, 1, 1, "NO NAME    ");
	assert_int_equal(rd_list(&r, r.root, ents, 4), 1);
	assert_string_equal(ents[0].name, "x");
	o.label = "my Esp 1";
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, &f, 1, NULL), 0);
	rd_open(&r, &k);
	rd_check_volume(&r, 512, 1, 1, "MY ESP 1   ");
	assert_int_equal(rd_list(&r, r.root, ents, 4), 2);
	assert_memory_equal(ents[0].short_name, "MY ESP 1   ", 11);
	o.label = " lead";
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, &f, 1, NULL), -EINVAL);
	o.label = "a.b";
	assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, &f, 1, NULL), -EINVAL);
	disk_free(&k);
}

/* Times FAT cannot hold are clamped: before 1980 to 1980-01-01 00:00:00, after 2107 (even
 * past what gmtime can convert) to 2107-12-31 23:59:58. */
static void test_time_clamp(void **state)
{
	(void)state;
	static const struct { int64_t t; uint16_t date, time; } cases[] = {
		{ 0, 0 << 9 | 1 << 5 | 1, 0 },
		{ -86400 * 365, 0 << 9 | 1 << 5 | 1, 0 },
		{ 315532800, 0 << 9 | 1 << 5 | 1, 0 },                     /* 1980-01-01 */
		{ 4354819199, 127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29 }, /* 2107-12-31 23:59:59 */
		{ 4354819200, 127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29 },
		{ INT64_MAX, 127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29 },
	};
	struct disk k = disk_new("time.img", 512, 40 * MIB);
	const struct esp_file f = { "x", CFG, 1 };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct esp_opts o = { .volume_id = 1, .label = "", .timestamp = cases[i].t };
		uint8_t ent[32];
		struct rd r;
		assert_int_equal(esp_format(k.d, k.first_lba, k.sectors, &o, &f, 1, NULL), 0);
		rd_open(&r, &k);
		/* the root's first entries: one LFN entry for "x", then its short entry */
		uint64_t root_off = r.base + (uint64_t)(r.rsvd + 2 * r.fatsz) * 512;
		assert_int_equal(vdisk_read(k.d, root_off + 32, ent, 32), 0);
		assert_int_equal(rd16(ent + 24), cases[i].date);
		assert_int_equal(rd16(ent + 22), cases[i].time);
	}
	disk_free(&k);
}

/* ---- bootfix_linux_esp and the GRUB pieces ---- */

static struct part_table *table_with_esp(struct disk *k, const char *type)
{
	struct part_table *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->kind = PART_KIND_GPT;
	t->sector_bytes = k->ss;
	t->n_entries = 1;
	t->entries = calloc(1, sizeof(*t->entries));
	assert_non_null(t->entries);
	t->entries[0].number = 2;
	t->entries[0].first_lba = k->first_lba;
	t->entries[0].last_lba = k->first_lba + k->sectors - 1;
	assert_int_equal(part_guid_parse(type, t->entries[0].type_guid), 0);
	return t;
}

static void linux_esp_on(uint32_t ss, uint64_t part_bytes)
{
	struct disk k = disk_new("linux.img", ss, part_bytes);
	struct part_table *t = table_with_esp(&k, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
	const struct bootfix_linux_opts o = { .distro = "debian", .esp_volume_id = 0x47454E32,
		.boot_fs_uuid = "0c8e6a52-61e1-4f0a-9d3e-67656e320001", .grub_dir = "/boot/grub2" };
	uint32_t id;
	int r = bootfix_linux_esp(k.d, t, 2, &o, &id);
	if (r < 0)
		fail_msg("bootfix_linux_esp: %s", vdisk_errmsg());
	assert_int_equal(id, 0x47454E32);
	guards_intact(&k);
	struct rd rdr;
	rd_open(&rdr, &k);
	rd_check_volume(&rdr, ss, 1, id, "ESP        ");
	struct rd_ent a = rd_find(&rdr, "EFI/BOOT/BOOTX64.EFI", NULL);
	struct rd_ent b = rd_find(&rdr, "EFI/debian/grubx64.efi", NULL);
	assert_int_equal(a.size, b.size);
	assert_true(a.size > 100000);
	size_t la, lb, lc, ld;
	uint8_t *ia = rd_chain(&rdr, a.cluster, &la), *ib = rd_chain(&rdr, b.cluster, &lb);
	assert_memory_equal(ia, ib, a.size);
	assert_memory_equal(ia, "MZ", 2);
	char *c1 = (char *)rd_chain(&rdr, rd_find(&rdr, "EFI/BOOT/grub.cfg", NULL).cluster, &lc);
	char *c2 = (char *)rd_chain(&rdr, rd_find(&rdr, "EFI/debian/grub.cfg", NULL).cluster, &ld);
	assert_string_equal(c1, c2);
	assert_non_null(strstr(c1, "function linux16 { linux \"$@\"; }\n"));
	assert_non_null(strstr(c1, "function initrd16 { initrd \"$@\"; }\n"));
	assert_non_null(strstr(c1, "search --no-floppy --fs-uuid --set=root "
				   "0c8e6a52-61e1-4f0a-9d3e-67656e320001\n"));
	assert_non_null(strstr(c1, "set prefix=($root)/boot/grub2\nsource $prefix/grub.cfg\n"));
	free(ia), free(ib), free(c1), free(c2);
	/* Same options, same bytes: grub-mkimage's output and our layout are reproducible. */
	size_t used = (size_t)(rdr.rsvd + 2 * rdr.fatsz) * ss + 2 * (a.size + 4096) + 64 * 1024;
	uint8_t *first = malloc(used), *second = malloc(used);
	assert_non_null(first);
	assert_non_null(second);
	assert_int_equal(vdisk_read(k.d, rdr.base, first, used), 0);
	assert_int_equal(bootfix_linux_esp(k.d, t, 2, &o, NULL), 0);
	assert_int_equal(vdisk_read(k.d, rdr.base, second, used), 0);
	assert_memory_equal(first, second, used);
	free(first);
	free(second);
	part_table_free(t);
	disk_free(&k);
}

static void test_linux_esp(void **state)
{
	(void)state;
	linux_esp_on(512, 100 * MIB);
}

static void test_linux_esp_4kn(void **state)
{
	(void)state;
	linux_esp_on(4096, 260 * MIB);
}

/* Refusals: a distro that is not one safe name, a partition that is not an ESP or absent;
 * none of them writes. */
static void test_linux_esp_refusals(void **state)
{
	(void)state;
	struct disk k = disk_new("refuse.img", 512, 100 * MIB);
	fill(&k, k.first_lba * 512, 64 * 1024, 0xC3);
	struct part_table *esp = table_with_esp(&k, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
	struct part_table *linux_fs = table_with_esp(&k, "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
	struct bootfix_linux_opts o = { .boot_fs_uuid = "0c8e6a52", .grub_dir = "/boot/grub" };
	static const char *const bad[] = { "", ".", "..", "a/b", "a\\b", "boot", "BOOT", ".hidden",
					   "x y", "debian.", "\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.distro = bad[i];
		if (bootfix_linux_esp(k.d, esp, 2, &o, NULL) != -EINVAL)
			fail_msg("distro \"%s\" accepted", bad[i]);
		if (strcasecmp(bad[i], "boot") == 0)
			assert_non_null(strstr(vdisk_errmsg(), "removable-media"));
	}
	o.distro = "debian";
	assert_int_equal(bootfix_linux_esp(k.d, linux_fs, 2, &o, NULL), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "not an EFI system partition"));
	assert_int_equal(bootfix_linux_esp(k.d, esp, 3, &o, NULL), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "no partition 3"));
	o.boot_fs_uuid = "0c8e6a52; reboot";
	assert_int_equal(bootfix_linux_esp(k.d, esp, 2, &o, NULL), -EINVAL);
	o.boot_fs_uuid = "0c8e6a52";
	static const char *const bad_dirs[] = { "boot/grub", "/boot/grub/", "/", "/boot/../x",
						"/boot grub", "/boot/\"grub", "/boot/$x" };
	for (size_t i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++) {
		o.grub_dir = bad_dirs[i];
		if (bootfix_linux_esp(k.d, esp, 2, &o, NULL) != -EINVAL)
			fail_msg("grub_dir \"%s\" accepted", bad_dirs[i]);
	}
	o.grub_dir = "/boot/grub";
	o.grub_lib_dir = "/nonexistent/grub/x86_64-efi";
	assert_int_equal(bootfix_linux_esp(k.d, esp, 2, &o, NULL), -ENOENT);
	assert_non_null(strstr(vdisk_errmsg(), "grub-efi-amd64-bin"));
	assert_true(all_are(&k, k.first_lba * 512, 64 * 1024, 0xC3));
	part_table_free(esp);
	part_table_free(linux_fs);
	disk_free(&k);
}

/* No grub-mkimage in PATH: -ENOENT that says so, not a crash or a hang. */
static void test_grub_mkimage_missing(void **state)
{
	(void)state;
	char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	uint8_t *img = NULL;
	size_t n = 0;
	setenv("PATH", dir, 1);
	int r = grub_efi_image_new(NULL, "", &img, &n);
	setenv("PATH", old, 1);
	free(old);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(vdisk_errmsg(), "grub-mkimage is not in PATH"));
	assert_null(img);
}

/* grub-mkimage fails (empty module files): -EIO carrying its own message. */
static void test_grub_mkimage_fails(void **state)
{
	(void)state;
	char lib[300], path[400];
	snprintf(lib, sizeof(lib), "%s/fakelib", dir);
	assert_int_equal(mkdir(lib, 0700), 0);
	for (size_t i = 0; i < 2 || grub_efi_modules[i - 2]; i++) {
		if (i < 2)
			snprintf(path, sizeof(path), "%s/%s", lib, i ? "moddep.lst" : "kernel.img");
		else
			snprintf(path, sizeof(path), "%s/%s.mod", lib, grub_efi_modules[i - 2]);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	uint8_t *img = NULL;
	size_t n = 0;
	char *old_tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	setenv("TMPDIR", dir, 1);
	int r = grub_efi_image_new(lib, "", &img, &n);
	if (old_tmp)
		setenv("TMPDIR", old_tmp, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmp);
	/* the temporary output file is gone */
	DIR *dh = opendir(dir);
	assert_non_null(dh);
	for (struct dirent *de; (de = readdir(dh));)
		assert_null(strstr(de->d_name, "genshift-grub-"));
	closedir(dh);
	if (r != -EIO || !strstr(vdisk_errmsg(), "grub-mkimage failed with exit status 1: "
				 "grub-mkimage: error:"))
		fail_msg("expected -EIO with grub-mkimage's message, got %d: %s", r, vdisk_errmsg());
	assert_null(img);
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/bootfix_esp_test.XXXXXX", t ? t : "/tmp");
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
		cmocka_unit_test(test_100m_512),
		cmocka_unit_test(test_260m_512),
		cmocka_unit_test(test_2g_512),
		cmocka_unit_test(test_260m_4kn_vhdx),
		cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_no_space),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_short_names),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_time_clamp),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_linux_esp),
		cmocka_unit_test(test_linux_esp_4kn),
		cmocka_unit_test(test_linux_esp_refusals),
		cmocka_unit_test(test_grub_mkimage_missing),
		cmocka_unit_test(test_grub_mkimage_fails),
	};
	return cmocka_run_group_tests_name("bootfix_esp", tests, setup, teardown);
}
