/* vhdx/vhdx-write.c - VHDX writes: block allocation, flush, resize. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdx-int.h"

/* Grow the file so that [off, end) exists; new bytes read as zeros. */
static int extend_file(struct vhdx_disk *v, uint64_t end)
{
	if (end > VHDX_MAX_FILE_BYTES)
		return vdisk_fail(ENOSPC, "%s: file would grow past %llu bytes", v->base.path,
				  (unsigned long long)VHDX_MAX_FILE_BYTES);
	if (end <= v->host_bytes)
		return 0;
	if (ftruncate(v->base.fd, (off_t)end) < 0)
		return vdisk_fail(errno, "%s: cannot extend the file to %llu bytes: %s",
				  v->base.path, (unsigned long long)end, strerror(errno));
	v->host_bytes = end;
	if (end > v->file_bytes)
		v->file_bytes = end;
	return 0;
}

/* New space always comes from the MiB-aligned end of everything allocated (spec 2.5:
 * blocks are 1 MiB aligned and never overlap). */
static int alloc_space(struct vhdx_disk *v, uint64_t len, uint64_t *off)
{
	int r = extend_file(v, v->alloc_end + len);

	if (r < 0)
		return r;
	*off = v->alloc_end;
	v->alloc_end += len;
	return 0;
}

static int get_block_buf(struct vhdx_disk *v)
{
	if (!v->block_buf && !(v->block_buf = malloc(VHDX_MIB)))
		return vdisk_fail(ENOMEM, "out of memory");
	return 0;
}

/* Differencing: a new block holds the parent's bytes except [skip, skip+skip_len), which
 * the caller is about to write; zero pieces need no write (the new space reads zeros). */
static int fill_from_parent(struct vhdx_disk *v, uint64_t block, uint64_t file_off,
			    uint64_t skip, uint64_t skip_len)
{
	uint64_t vbase = block * v->block_bytes;
	int r = get_block_buf(v);

	for (uint64_t x = 0; r == 0 && x < v->block_bytes && vbase + x < v->base.size_bytes;) {
		uint64_t n = VHDX_MIB - x % VHDX_MIB;
		if (x < skip && x + n > skip)
			n = skip - x;
		if (x >= skip && x < skip + skip_len) {
			x = skip + skip_len;
			continue;
		}
		if (vbase + x + n > v->base.size_bytes)
			n = v->base.size_bytes - vbase - x;
		r = vdisk_read(v->base.parent, vbase + x, v->block_buf, (size_t)n);
		if (r == 0 && !vdisk_buf_is_zero(v->block_buf, (size_t)n))
			r = vdisk_pwrite(v->base.fd, v->base.path, v->block_buf, (size_t)n,
					 file_off + x);
		x += n;
	}
	return r;
}

/* PARTIALLY_PRESENT -> FULLY_PRESENT: copy the parent's sectors into the block's own space
 * (invisible until the BAT entry changes), so no sector bitmap ever needs writing. */
static int make_fully_present(struct vhdx_disk *v, uint64_t block, uint64_t file_off)
{
	uint64_t vbase = block * v->block_bytes;
	int r = get_block_buf(v);

	for (uint64_t x = 0; r == 0 && x < v->block_bytes && vbase + x < v->base.size_bytes;
	     x += VHDX_MIB) {
		uint64_t n = v->base.size_bytes - vbase - x < VHDX_MIB ?
				     v->base.size_bytes - vbase - x : VHDX_MIB;
		r = v->base.ops->read(&v->base, vbase + x, v->block_buf, (size_t)n);
		if (r == 0)
			r = vdisk_pwrite(v->base.fd, v->base.path, v->block_buf, (size_t)n,
					 file_off + x);
	}
	return r;
}

/* Payload first, BAT entry after: the entry is only committed (by the log, at flush or
 * when enough pages are dirty) after an fdatasync that covers this payload. */
static int write_block(struct vhdx_disk *v, uint64_t block, uint64_t in, const uint8_t *p,
		       size_t n)
{
	uint64_t idx = vhdx_bat_index(v, block), e, off;
	int r = vhdx_bat_get(v, idx, &e);
	if (r < 0)
		return r;
	unsigned st = e & VHDX_BAT_STATE_MASK;
	off = e & VHDX_BAT_OFFSET_MASK;
	if (st == VHDX_BLOCK_PARTIALLY_PRESENT) {
		if ((r = make_fully_present(v, block, off)) < 0)
			return r;
	} else if (st != VHDX_BLOCK_FULLY_PRESENT) {
		if ((r = alloc_space(v, v->block_bytes, &off)) < 0)
			return r;
		v->allocated_bytes += v->block_bytes;
		if (v->base.parent && st != VHDX_BLOCK_ZERO &&
		    (r = fill_from_parent(v, block, off, in, n)) < 0)
			return r;
	}
	r = vdisk_pwrite(v->base.fd, v->base.path, p, n, off + in);
	if (r < 0)
		return r;
	v->data_unsynced = true;
	if (st != VHDX_BLOCK_FULLY_PRESENT)
		r = vhdx_bat_set(v, idx, off | VHDX_BLOCK_FULLY_PRESENT);
	return r;
}

int vhdx_write(struct vdisk *d, uint64_t off, const void *buf, size_t len)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;
	const uint8_t *p = buf;
	int r = vhdx_session_begin(v);

	while (r == 0 && len > 0) {
		uint64_t block = off / v->block_bytes, in = off % v->block_bytes;
		size_t n = v->block_bytes - in < len ? (size_t)(v->block_bytes - in) : len;
		r = write_block(v, block, in, p, n);
		p += n, off += n, len -= n;
	}
	return r;
}

int vhdx_flush(struct vdisk *d)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;

	if (!v->session)
		return 0;
	if (v->dirty_pages)
		return vhdx_bat_commit(v);
	return v->data_unsynced ? vhdx_sync(v) : 0;
}

/* ---- resize (see /work/shared/docs/vhdx-format.md 1.11) ---- */

/* -ENOSPC unless virtual bytes [from, to) read as zeros. */
static int require_zero(struct vhdx_disk *v, uint64_t from, uint64_t to, uint64_t new_size)
{
	int r = get_block_buf(v);

	for (uint64_t x = from; r == 0 && x < to;) {
		size_t n = to - x < VHDX_MIB ? (size_t)(to - x) : VHDX_MIB;
		r = v->base.ops->read(&v->base, x, v->block_buf, n);
		if (r == 0 && !vdisk_buf_is_zero(v->block_buf, n))
			return vdisk_fail(ENOSPC, "%s: cannot shrink to %llu bytes: data in "
					  "[%llu, %llu) past the new end", v->base.path,
					  (unsigned long long)new_size, (unsigned long long)x,
					  (unsigned long long)(x + n));
		x += n;
	}
	return r;
}

/* Shrink rule: everything past the new end must read as zeros (a partition undo zeroes what
 * a conversion added, then shrinks back). Allocated blocks wholly past the new end are then
 * made NOT_PRESENT in one logged BAT commit before the size changes: their contents are
 * zeros, so a crash between the two commits changes no byte a reader sees. Their file
 * space is left unreferenced. Refusals are -ENOSPC. */
static int shrink_prepare(struct vhdx_disk *v, uint64_t new_size)
{
	uint64_t new_blocks = (new_size + v->block_bytes - 1) / v->block_bytes, e;
	uint64_t end = new_blocks * v->block_bytes < v->base.size_bytes ?
			       new_blocks * v->block_bytes : v->base.size_bytes;
	int r = require_zero(v, new_size, end, new_size);

	for (uint64_t b = new_blocks; r == 0 && b < v->payload_blocks; b++) {
		uint64_t idx = vhdx_bat_index(v, b);
		if ((r = vhdx_bat_get(v, idx, &e)) < 0)
			break;
		unsigned st = e & VHDX_BAT_STATE_MASK;
		if (st != VHDX_BLOCK_FULLY_PRESENT && st != VHDX_BLOCK_PARTIALLY_PRESENT)
			continue;
		uint64_t to = (b + 1) * v->block_bytes < v->base.size_bytes ?
				      (b + 1) * v->block_bytes : v->base.size_bytes;
		r = require_zero(v, b * v->block_bytes, to, new_size);
		if (r == 0)
			r = vhdx_bat_set(v, idx, VHDX_BLOCK_NOT_PRESENT);
	}
	return r == 0 ? vhdx_bat_commit(v) : r;
}

/* The value a new BAT entry gets when growing: dynamic blocks start NOT_PRESENT, fixed
 * ones (LeaveBlockAllocated) get a fresh zero-reading block. */
static int new_entry(struct vhdx_disk *v, uint64_t idx, uint64_t *e)
{
	uint64_t off;

	*e = 0;
	if (!v->leave_allocated || idx % (v->chunk_ratio + 1) == v->chunk_ratio)
		return 0;
	int r = alloc_space(v, v->block_bytes, &off);
	if (r == 0) {
		*e = off | VHDX_BLOCK_FULLY_PRESENT;
		v->allocated_bytes += v->block_bytes;
	}
	return r;
}

/* Writes BAT pages [first_page, ...) of the region at region_off directly: they hold only
 * entries no reader looks at until the size (and region table) change is committed. */
static int write_pages_direct(struct vhdx_disk *v, uint64_t region_off, uint64_t first_page,
			      uint64_t old_entries, uint64_t new_entries)
{
	uint8_t page[VHDX_PAGE_BYTES];
	uint64_t pages = (new_entries + VHDX_BAT_ENTRIES_PER_PAGE - 1) / VHDX_BAT_ENTRIES_PER_PAGE;
	int r = 0;

	for (uint64_t pg = first_page; r == 0 && pg < pages; pg++) {
		for (unsigned k = 0; r == 0 && k < VHDX_BAT_ENTRIES_PER_PAGE; k++) {
			uint64_t idx = pg * VHDX_BAT_ENTRIES_PER_PAGE + k, e = 0;
			if (idx < old_entries)
				r = vhdx_bat_get(v, idx, &e);
			else if (idx < new_entries)
				r = new_entry(v, idx, &e);
			put_le64(page + 8 * k, e);
		}
		if (r == 0)
			r = vdisk_pwrite(v->base.fd, v->base.path, page, sizeof(page),
					 region_off + pg * VHDX_PAGE_BYTES);
	}
	return r;
}

/* Growing in place: the page holding both old and new entries goes through the log (as a
 * dirty cache page); wholly new pages are written directly. */
static int grow_in_place(struct vhdx_disk *v, uint64_t new_entries)
{
	uint64_t old = v->bat_entries, e;
	uint64_t boundary_end = (old + VHDX_BAT_ENTRIES_PER_PAGE - 1) /
				VHDX_BAT_ENTRIES_PER_PAGE * VHDX_BAT_ENTRIES_PER_PAGE;
	int r = 0;

	for (uint64_t i = old; r == 0 && i < boundary_end && i < new_entries; i++) {
		if ((r = new_entry(v, i, &e)) == 0)
			r = vhdx_bat_set(v, i, e);
	}
	if (r == 0 && new_entries > boundary_end)
		r = write_pages_direct(v, v->bat_offset, boundary_end / VHDX_BAT_ENTRIES_PER_PAGE,
				       old, new_entries);
	/* Direct pages bypassed the cache: drop any stale copies of them. */
	for (unsigned i = 0; i < VHDX_BAT_CACHE_SLOTS; i++)
		if (v->slots[i].valid && !v->slots[i].dirty &&
		    v->slots[i].page * VHDX_BAT_ENTRIES_PER_PAGE >= boundary_end)
			v->slots[i].valid = false;
	return r;
}

/* Both region table copies with the BAT entry moved, as 32 log pages in *tables. */
static int build_region_tables(struct vhdx_disk *v, uint64_t bat_off, uint64_t bat_len,
			       uint8_t *tables)
{
	static const uint8_t guid_bat[16] = VHDX_GUID_BAT;
	uint8_t *t = tables;
	int r = vhdx_io_read(v, v->region_copy == 1 ? VHDX_REGION1_OFFSET : VHDX_REGION2_OFFSET,
			     t, VHDX_REGION_TABLE_BYTES);
	if (r < 0)
		return r;
	uint32_t count = get_le32(t + VHDX_RTH(entry_count));
	for (uint32_t i = 0; i < count && i < VHDX_REGION_MAX_ENTRIES; i++) {
		uint8_t *e = t + 16 + 32 * i;
		if (memcmp(e, guid_bat, 16))
			continue;
		put_le64(e + VHDX_RTE(file_offset), bat_off);
		put_le32(e + VHDX_RTE(length), (uint32_t)bat_len);
	}
	put_le32(t + VHDX_RTH(checksum), vhdx_checksum(t, VHDX_REGION_TABLE_BYTES,
						       VHDX_RTH(checksum)));
	memcpy(t + VHDX_REGION_TABLE_BYTES, t, VHDX_REGION_TABLE_BYTES);
	return 0;
}

static int relocate_bat(struct vhdx_disk *v, uint64_t new_entries, uint64_t *new_off,
			uint64_t *new_len)
{
	*new_len = (new_entries * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	if (*new_len > UINT32_MAX / VHDX_MIB * VHDX_MIB)
		return vdisk_fail(ENOSPC, "%s: a BAT of %llu entries exceeds the region length "
				  "limit", v->base.path, (unsigned long long)new_entries);
	int r = alloc_space(v, *new_len, new_off);
	if (r == 0)
		r = write_pages_direct(v, *new_off, 0, v->bat_entries, new_entries);
	return r;
}

/* One log entry carries the new VirtualDiskSize (and, after a relocation, both region
 * tables), so the size, BAT location and entries switch atomically. */
static int commit_size(struct vhdx_disk *v, uint64_t new_size, const uint8_t *tables)
{
	struct vhdx_page pages[2 + 2 * VHDX_REGION_TABLE_BYTES / VHDX_PAGE_BYTES];
	uint8_t meta[2 * VHDX_PAGE_BYTES];
	uint64_t page_off = v->vds_item_off / VHDX_PAGE_BYTES * VHDX_PAGE_BYTES;
	unsigned n = 0, in = (unsigned)(v->vds_item_off - page_off);
	unsigned meta_pages = in + 8 > VHDX_PAGE_BYTES ? 2 : 1;
	int r = vhdx_io_read(v, page_off, meta, meta_pages * VHDX_PAGE_BYTES);

	if (r < 0)
		return r;
	put_le64(meta + in, new_size);
	for (unsigned i = 0; i < meta_pages; i++)
		pages[n++] = (struct vhdx_page){ page_off + i * VHDX_PAGE_BYTES,
						 meta + i * VHDX_PAGE_BYTES };
	for (unsigned i = 0; tables && i < 2 * VHDX_REGION_TABLE_BYTES / VHDX_PAGE_BYTES; i++)
		pages[n++] = (struct vhdx_page){ VHDX_REGION1_OFFSET + i * VHDX_PAGE_BYTES,
						 tables + i * VHDX_PAGE_BYTES };
	return vhdx_log_commit(v, pages, n);
}

static int grow(struct vhdx_disk *v, uint64_t new_size, uint64_t new_entries)
{
	uint64_t last = v->payload_blocks - 1, e, bat_off = 0, bat_len = 0;
	uint64_t tail = v->base.size_bytes - last * v->block_bytes;
	int r = vhdx_bat_get(v, vhdx_bat_index(v, last), &e);

	/* The old last block's bytes past the old end become visible: make them zeros. */
	if (r == 0 && (e & VHDX_BAT_STATE_MASK) == VHDX_BLOCK_FULLY_PRESENT &&
	    tail < v->block_bytes) {
		r = get_block_buf(v);
		memset(v->block_buf, 0, VHDX_MIB);
		for (uint64_t x = tail; r == 0 && x < v->block_bytes;) {
			size_t n = v->block_bytes - x < VHDX_MIB ? (size_t)(v->block_bytes - x) :
								   VHDX_MIB;
			r = vdisk_pwrite(v->base.fd, v->base.path, v->block_buf, n,
					 (e & VHDX_BAT_OFFSET_MASK) + x);
			x += n;
		}
	}
	if (r < 0)
		return r;
	if (new_entries <= v->bat_length / 8) {
		if ((r = grow_in_place(v, new_entries)) < 0 || (r = vhdx_bat_commit(v)) < 0)
			return r;
		return commit_size(v, new_size, NULL);
	}
	uint8_t *tables = malloc(2 * VHDX_REGION_TABLE_BYTES);
	if (!tables)
		return vdisk_fail(ENOMEM, "out of memory");
	r = relocate_bat(v, new_entries, &bat_off, &bat_len);
	if (r == 0)
		r = build_region_tables(v, bat_off, bat_len, tables);
	if (r == 0)
		r = commit_size(v, new_size, tables);
	free(tables);
	if (r < 0)
		return r;
	v->bat_offset = bat_off, v->bat_length = bat_len;
	for (unsigned i = 0; i < VHDX_BAT_CACHE_SLOTS; i++)
		v->slots[i].valid = false;
	return 0;
}

int vhdx_resize(struct vdisk *d, uint64_t new_size)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;
	int r;

	if (v->has_parent)
		return vdisk_fail(ENOTSUP, "%s: differencing VHDX files cannot be resized (the "
				  "chain must keep the parent's size)", d->path);
	if (new_size > VHDX_MAX_DISK_BYTES)
		return vdisk_fail(EINVAL, "%s: new size %llu exceeds the VHDX limit of 64 TiB",
				  d->path, (unsigned long long)new_size);
	if ((r = vhdx_session_begin(v)) < 0 || (r = vhdx_bat_commit(v)) < 0)
		return r;
	uint64_t new_entries = vhdx_bat_entries_for(v, new_size);
	if (new_size < d->size_bytes) {
		if ((r = shrink_prepare(v, new_size)) < 0 ||
		    (r = commit_size(v, new_size, NULL)) < 0)
			return r;
	} else if ((r = grow(v, new_size, new_entries)) < 0) {
		return r;
	}
	d->size_bytes = new_size;
	v->payload_blocks = (new_size + v->block_bytes - 1) / v->block_bytes;
	v->bat_entries = new_entries;
	return 0;
}
