/* vhdx/vhd-check.c - structural check of a VHD file: footers, dynamic header, BAT, parent.
 *
 * Reads only. Each finding goes to the caller's report function with the field, offset and
 * expected value; the return value is the number of ERROR findings. The checks follow the
 * order vhd_open() validates in, but keep going after a failure where that is meaningful.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "vhd-format.h"

struct vhd_checker {
	int fd;
	const char *path;
	struct vdisk_checker out;
	uint64_t file_bytes;
	struct vhd_footer footer;
	bool have_footer;
	uint64_t data_end; /* where the EOF footer starts */
};

/* Each finding goes to the caller through the shared checker (vdisk-int.h). */
#define finding(c, ...) vdisk_check_say(&(c)->out, __VA_ARGS__)

/* EOF footer and, for dynamic/differencing disks, the copy at offset 0. */
static void check_footers(struct vhd_checker *c)
{
	uint8_t eof[VHD_FOOTER_BYTES], copy[VHD_FOOTER_BYTES];
	struct vhd_footer fc;
	uint64_t at = c->file_bytes - VHD_FOOTER_BYTES;

	bool eof_ok = vdisk_pread(c->fd, c->path, eof, sizeof(eof), at) == 0 &&
		vhd_footer_parse(eof, c->path, at, &c->footer) == 0;
	if (!eof_ok)
		finding(c, VDISK_CHECK_ERROR, "%s", vdisk_errmsg());
	c->have_footer = eof_ok;
	c->data_end = at;
	if (eof_ok && c->footer.disk_type == VHD_DISK_FIXED)
		return;
	bool copy_ok = vdisk_pread(c->fd, c->path, copy, sizeof(copy), 0) == 0 &&
		vhd_footer_parse(copy, c->path, 0, &fc) == 0;
	if (!copy_ok && eof_ok)
		finding(c, VDISK_CHECK_ERROR, "footer copy at offset 0: %s", vdisk_errmsg());
	if (copy_ok && !eof_ok && fc.disk_type != VHD_DISK_FIXED) {
		finding(c, VDISK_CHECK_WARN, "%s: the EOF footer is damaged; the footer copy at "
			"offset 0 is valid and is used instead (a read-write open rewrites the "
			"EOF footer)", c->path);
		c->footer = fc;
		c->have_footer = true;
		c->data_end = (c->file_bytes + VHD_SECTOR_BYTES - 1) / VHD_SECTOR_BYTES *
			VHD_SECTOR_BYTES;
	}
	if (copy_ok && eof_ok && memcmp(eof, copy, sizeof(eof)))
		finding(c, VDISK_CHECK_WARN, "%s: footer copy at offset 0 differs from the EOF "
			"footer at offset %llu (interrupted update?)", c->path,
			(unsigned long long)at);
}

static void check_footer_fields(struct vhd_checker *c)
{
	const struct vhd_footer *f = &c->footer;
	uint64_t chs = vhd_chs_bytes(f), size = vhd_virtual_size(f, 0);

	if (!(f->features & VHD_FEATURES_RESERVED))
		finding(c, VDISK_CHECK_WARN, "%s: footer features 0x%08x: reserved bit 1 (0x2) "
			"should be set", c->path, f->features);
	if (f->saved_state)
		finding(c, VDISK_CHECK_WARN, "%s: footer saved state is set (disk of a saved VM)",
			c->path);
	if (chs != f->current_size)
		finding(c, VDISK_CHECK_INFO, "%s: footer current size %llu differs from the CHS "
			"%u/%u/%u size %llu; read as %llu bytes (%s)", c->path,
			(unsigned long long)f->current_size, f->cylinders, f->heads,
			f->sectors_per_track, (unsigned long long)chs, (unsigned long long)size,
			size == chs ? "CHS: creator sizes by geometry" : "current size");
	if (size == 0 || size % VHD_SECTOR_BYTES || size > VHD_MAX_SIZE_BYTES)
		finding(c, VDISK_CHECK_ERROR, "%s: virtual size %llu is not a positive multiple "
			"of 512 up to 2040 GiB", c->path, (unsigned long long)size);
	if (f->disk_type == VHD_DISK_FIXED && size > c->data_end)
		finding(c, VDISK_CHECK_ERROR, "%s: fixed disk of %llu bytes has only %llu bytes "
			"of data before the footer", c->path, (unsigned long long)size,
			(unsigned long long)c->data_end);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Allocated blocks: inside [meta_end, data_end), apart, with 4 KiB aligned data (INFO). */
static void check_bat_entries(struct vhd_checker *c, const uint32_t *bat, uint32_t n,
			      uint32_t block_bytes, uint64_t meta_end)
{
	uint64_t span = (uint64_t)vhd_bitmap_bytes(block_bytes) + block_bytes;
	uint32_t *sorted = malloc(sizeof(uint32_t) * (n ? n : 1)), count = 0, unaligned = 0;

	if (!sorted) {
		finding(c, VDISK_CHECK_ERROR, "%s: out of memory for the BAT check", c->path);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = (uint64_t)bat[i] * VHD_SECTOR_BYTES;
		if (bat[i] == VHD_BAT_UNUSED)
			continue;
		if (off < meta_end || off + span > c->data_end)
			finding(c, VDISK_CHECK_ERROR, "%s: BAT entry %u: block at offset %llu "
				"(%llu bytes) is not between the headers/BAT end %llu and the "
				"footer at %llu", c->path, i, (unsigned long long)off,
				(unsigned long long)span, (unsigned long long)meta_end,
				(unsigned long long)c->data_end);
		unaligned += (off + span - block_bytes) % 4096 != 0;
		sorted[count++] = bat[i];
	}
	qsort(sorted, count, sizeof(uint32_t), cmp_u32);
	for (uint32_t i = 1; i < count; i++)
		if ((uint64_t)(sorted[i] - sorted[i - 1]) * VHD_SECTOR_BYTES < span)
			finding(c, VDISK_CHECK_ERROR, "%s: BAT: blocks at offsets %llu and %llu "
				"overlap (each spans %llu bytes)", c->path,
				(unsigned long long)sorted[i - 1] * VHD_SECTOR_BYTES,
				(unsigned long long)sorted[i] * VHD_SECTOR_BYTES,
				(unsigned long long)span);
	finding(c, VDISK_CHECK_INFO, "%s: %u of %u blocks allocated (%u bytes each), %u with "
		"data not 4 KiB aligned", c->path, count, n, block_bytes, unaligned);
	free(sorted);
}

static void check_bat(struct vhd_checker *c, const struct vhd_dyn_header *h)
{
	uint64_t size = vhd_virtual_size(&c->footer, 0);
	uint64_t needed = (size + h->block_bytes - 1) / h->block_bytes;
	uint64_t table_bytes = 4ull * h->max_table_entries;

	if (h->max_table_entries < needed)
		finding(c, VDISK_CHECK_ERROR, "%s: dynamic header: max table entries %u cannot "
			"cover %llu bytes (%llu needed)", c->path, h->max_table_entries,
			(unsigned long long)size, (unsigned long long)needed);
	else if (h->max_table_entries > needed)
		finding(c, VDISK_CHECK_INFO, "%s: dynamic header: max table entries %u, %llu "
			"needed (Azure requires exactly ceil(size / block))", c->path,
			h->max_table_entries, (unsigned long long)needed);
	if (h->table_offset + table_bytes > c->data_end) {
		finding(c, VDISK_CHECK_ERROR, "%s: dynamic header: BAT at offset %llu with %u "
			"entries runs past the data end %llu", c->path,
			(unsigned long long)h->table_offset, h->max_table_entries,
			(unsigned long long)c->data_end);
		return;
	}
	uint8_t *raw = malloc(table_bytes);
	uint32_t *bat = malloc(sizeof(uint32_t) * h->max_table_entries);
	if (raw && bat && vdisk_pread(c->fd, c->path, raw, table_bytes, h->table_offset) == 0) {
		for (uint32_t i = 0; i < h->max_table_entries; i++)
			bat[i] = get_be32(raw + 4ull * i);
		uint64_t meta_end = h->table_offset + table_bytes;
		if (c->footer.data_offset + VHD_DYN_HEADER_BYTES > meta_end)
			meta_end = c->footer.data_offset + VHD_DYN_HEADER_BYTES;
		check_bat_entries(c, bat, h->max_table_entries, h->block_bytes, meta_end);
	} else {
		finding(c, VDISK_CHECK_ERROR, "%s: cannot read the BAT: %s", c->path,
			raw && bat ? vdisk_errmsg() : "out of memory");
	}
	free(raw);
	free(bat);
}

/* Locator texts lie inside the file and clear of the headers and the BAT. */
static void check_locators(struct vhd_checker *c, const struct vhd_dyn_header *h)
{
	uint64_t table_end = h->table_offset + 4ull * h->max_table_entries;

	for (unsigned i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &h->locators[i];
		uint64_t off = l->data_offset, len = l->data_length;
		if (l->code == 0)
			continue;
		if (off > c->data_end || len > c->data_end - off || off < VHD_FOOTER_BYTES)
			finding(c, VDISK_CHECK_ERROR, "%s: parent locator %u (code %08x): %llu "
				"bytes at offset %llu are outside the data area (512 to %llu)",
				c->path, i, l->code, (unsigned long long)len,
				(unsigned long long)off, (unsigned long long)c->data_end);
		else if (off < table_end && h->table_offset < off + len)
			finding(c, VDISK_CHECK_ERROR, "%s: parent locator %u (code %08x) at offset "
				"%llu overlaps the BAT at %llu", c->path, i, l->code,
				(unsigned long long)off, (unsigned long long)h->table_offset);
		else if (off < c->footer.data_offset + VHD_DYN_HEADER_BYTES &&
			 c->footer.data_offset < off + len)
			finding(c, VDISK_CHECK_ERROR, "%s: parent locator %u (code %08x) at offset "
				"%llu overlaps the dynamic header", c->path, i, l->code,
				(unsigned long long)off);
	}
}

static void check_dynamic(struct vhd_checker *c)
{
	uint8_t buf[VHD_DYN_HEADER_BYTES];
	struct vhd_dyn_header h;
	uint64_t off = c->footer.data_offset;

	if (off + VHD_DYN_HEADER_BYTES > c->data_end) {
		finding(c, VDISK_CHECK_ERROR, "%s: footer: dynamic header offset %llu is past the "
			"data end %llu", c->path, (unsigned long long)off,
			(unsigned long long)c->data_end);
		return;
	}
	if (vdisk_pread(c->fd, c->path, buf, sizeof(buf), off) < 0 ||
	    vhd_dyn_header_parse(buf, c->path, off, &h) < 0) {
		finding(c, VDISK_CHECK_ERROR, "%s", vdisk_errmsg());
		return;
	}
	if (c->footer.disk_type == VHD_DISK_DIFFERENCING)
		check_locators(c, &h);
	check_bat(c, &h);
}

/* Parent linkage and everything else open validates, through the real open path. */
static void check_open(struct vhd_checker *c)
{
	struct vdisk *d;
	struct vdisk_info info;

	if (vdisk_open(c->path, VDISK_OPEN_NOLOCK, &d) < 0) {
		finding(c, VDISK_CHECK_ERROR, "%s", vdisk_errmsg());
		return;
	}
	if (vdisk_parent(d) && vdisk_get_info(d, &info) == 0)
		finding(c, VDISK_CHECK_INFO, "%s: parent %s (unique id matches)", c->path,
			info.parent_path);
	vdisk_close(d);
}

int vhd_check(int fd, const char *path, unsigned flags, vdisk_check_fn report, void *opaque)
{
	struct vhd_checker c = { .fd = fd, .path = path, .out = { report, opaque, 0 } };
	struct stat st;

	(void)flags; /* nothing to repair in a VHD */
	if (fstat(fd, &st) < 0)
		return vdisk_fail(errno, "%s: stat failed: %s", path, strerror(errno));
	c.file_bytes = (uint64_t)st.st_size;
	if (c.file_bytes < VHD_FOOTER_BYTES) {
		finding(&c, VDISK_CHECK_ERROR, "%s: file of %llu bytes is too small for a VHD "
			"footer", path, (unsigned long long)c.file_bytes);
		return c.out.errors;
	}
	check_footers(&c);
	if (!c.have_footer)
		return c.out.errors;
	check_footer_fields(&c);
	if (c.footer.disk_type != VHD_DISK_FIXED)
		check_dynamic(&c);
	if (c.out.errors == 0)
		check_open(&c);
	return c.out.errors;
}
