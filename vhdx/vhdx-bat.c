/* vhdx/vhdx-bat.c - VHDX block allocation table: page cache, log commits, validation (2.5). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vhdx-int.h"

/* Payload block b sits after floor(b / ChunkRatio) interleaved sector bitmap entries. */
uint64_t vhdx_bat_index(const struct vhdx_disk *v, uint64_t block)
{
	return block + block / v->chunk_ratio;
}

/* Sequential access hits the same page 512 times in a row: try the last one first. */
static struct vhdx_bat_slot *find_slot(struct vhdx_disk *v, uint64_t page)
{
	struct vhdx_bat_slot *last = &v->slots[v->last_slot];

	if (last->valid && last->page == page)
		return last;
	for (unsigned i = 0; i < VHDX_BAT_CACHE_SLOTS; i++)
		if (v->slots[i].valid && v->slots[i].page == page) {
			v->last_slot = i;
			return &v->slots[i];
		}
	return NULL;
}

/* Least recently used clean slot (dirty pages stay until committed). */
static struct vhdx_bat_slot *victim_slot(struct vhdx_disk *v)
{
	struct vhdx_bat_slot *best = NULL;

	for (unsigned i = 0; i < VHDX_BAT_CACHE_SLOTS; i++) {
		struct vhdx_bat_slot *s = &v->slots[i];
		if (!s->valid)
			return s;
		if (!s->dirty && (!best || s->last_use < best->last_use))
			best = s;
	}
	return best;
}

static int load_page(struct vhdx_disk *v, uint64_t page, struct vhdx_bat_slot **out)
{
	struct vhdx_bat_slot *s = find_slot(v, page);
	int r;

	if (!s) {
		s = victim_slot(v);
		if (!s && (r = vhdx_bat_commit(v)) < 0)
			return r;
		if (!s)
			s = victim_slot(v);
		s->valid = false;
		r = vhdx_io_read(v, v->bat_offset + page * VHDX_PAGE_BYTES, s->data,
				 VHDX_PAGE_BYTES);
		if (r < 0)
			return r;
		s->valid = true;
		s->dirty = false;
		s->page = page;
		v->last_slot = (unsigned)(s - v->slots);
	}
	s->last_use = ++v->clock;
	*out = s;
	return 0;
}

int vhdx_bat_get(struct vhdx_disk *v, uint64_t index, uint64_t *entry)
{
	struct vhdx_bat_slot *s;
	int r = load_page(v, index / VHDX_BAT_ENTRIES_PER_PAGE, &s);

	if (r == 0)
		*entry = get_le64(s->data + 8 * (index % VHDX_BAT_ENTRIES_PER_PAGE));
	return r;
}

int vhdx_bat_set(struct vhdx_disk *v, uint64_t index, uint64_t entry)
{
	struct vhdx_bat_slot *s;
	int r = load_page(v, index / VHDX_BAT_ENTRIES_PER_PAGE, &s);

	if (r < 0)
		return r;
	put_le64(s->data + 8 * (index % VHDX_BAT_ENTRIES_PER_PAGE), entry);
	if (!s->dirty)
		v->dirty_pages++;
	s->dirty = true;
	/* Bound the batch: one log entry must fit and clean slots must remain. */
	return v->dirty_pages >= VHDX_MAX_DIRTY_PAGES ? vhdx_bat_commit(v) : 0;
}

/* All dirty BAT pages go into one log entry; vhdx_log_commit makes the payload durable
 * first, so no BAT entry can ever point at unwritten data after a crash. */
int vhdx_bat_commit(struct vhdx_disk *v)
{
	struct vhdx_page pages[VHDX_BAT_CACHE_SLOTS];
	unsigned n = 0;

	if (v->dirty_pages == 0)
		return 0;
	for (unsigned i = 0; i < VHDX_BAT_CACHE_SLOTS; i++)
		if (v->slots[i].valid && v->slots[i].dirty) {
			pages[n].off = v->bat_offset + v->slots[i].page * VHDX_PAGE_BYTES;
			pages[n++].data = v->slots[i].data;
		}
	int r = vhdx_log_commit(v, pages, n);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < VHDX_BAT_CACHE_SLOTS; i++)
		v->slots[i].dirty = false;
	v->dirty_pages = 0;
	return 0;
}

/* ---- validation ---- */

#define SCAN_BUF_ENTRIES (VHDX_MIB / 8u)
#define SCAN_MAX_REPORTS 64u

struct scan {
	struct vhdx_disk *v;
	vhdx_bat_report_fn report;
	void *opaque;
	uint8_t *used;      /* one bit per MiB of the file: claimed by something */
	uint64_t used_mib;
	unsigned bad;
	bool chunk_partial; /* a PARTIALLY_PRESENT block in the current chunk */
};

static int scan_bad(struct scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int scan_bad(struct scan *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!s->report)
		return vdisk_fail(EINVAL, "%s: %s", s->v->base.path, msg);
	if (s->bad < SCAN_MAX_REPORTS)
		s->report(msg, s->opaque);
	else if (s->bad == SCAN_MAX_REPORTS)
		s->report("further BAT errors not listed", s->opaque);
	s->bad++;
	return 0;
}

/* Mark [off, off+len) as used; returns true if any MiB was already claimed. */
static bool claim(struct scan *s, uint64_t off, uint64_t len)
{
	bool overlap = false;

	for (uint64_t m = off / VHDX_MIB; m < (off + len + VHDX_MIB - 1) / VHDX_MIB; m++) {
		if (m >= s->used_mib)
			break;
		if (s->used[m / 8] & (1u << (m % 8)))
			overlap = true;
		s->used[m / 8] |= (uint8_t)(1u << (m % 8));
	}
	return overlap;
}

static int scan_extent(struct scan *s, uint64_t i, const char *what, uint64_t off, uint64_t len)
{
	struct vhdx_disk *v = s->v;

	if (off < VHDX_HEADER_SECTION_BYTES)
		return scan_bad(s, "BAT entry %llu: %s at file offset %llu lies in the header "
				"section", (unsigned long long)i, what, (unsigned long long)off);
	if (off >= v->file_bytes || off > VHDX_MAX_FILE_BYTES)
		return scan_bad(s, "BAT entry %llu: %s at file offset %llu is past the end of the "
				"%llu-byte file (truncated?)", (unsigned long long)i, what,
				(unsigned long long)off, (unsigned long long)v->file_bytes);
	if (claim(s, off, len))
		return scan_bad(s, "BAT entry %llu: %s at file offset %llu overlaps the log, BAT, "
				"metadata or another block", (unsigned long long)i, what,
				(unsigned long long)off);
	if (off + len > v->alloc_end)
		v->alloc_end = off + len;
	return 0;
}

static int scan_sb_entry(struct scan *s, uint64_t i, uint64_t e)
{
	unsigned st = e & VHDX_BAT_STATE_MASK;
	bool partial = s->chunk_partial;

	s->chunk_partial = false;
	if (st == VHDX_SB_NOT_PRESENT) {
		if (partial)
			return scan_bad(s, "BAT entry %llu: sector bitmap is not present but its "
					"chunk has PARTIALLY_PRESENT blocks", (unsigned long long)i);
		return 0;
	}
	if (st != VHDX_SB_PRESENT || !s->v->has_parent)
		return scan_bad(s, "BAT entry %llu: sector bitmap state %u is invalid in a %s file",
				(unsigned long long)i, st,
				s->v->has_parent ? "differencing" : "non-differencing");
	return scan_extent(s, i, "sector bitmap block", e & VHDX_BAT_OFFSET_MASK, VHDX_MIB);
}

static int scan_payload_entry(struct scan *s, uint64_t i, uint64_t e)
{
	struct vhdx_disk *v = s->v;
	unsigned st = e & VHDX_BAT_STATE_MASK;

	if (st == 4)
		return scan_bad(s, "BAT entry %llu: reserved payload block state 4",
				(unsigned long long)i);
	/* Reserved bits 3-19 are harmless to a reader: only check mode reports them. */
	if ((e & VHDX_BAT_RESERVED_MASK) && s->report)
		scan_bad(s, "BAT entry %llu: reserved bits 3-19 are set (0x%llx)",
			 (unsigned long long)i, (unsigned long long)(e & VHDX_BAT_RESERVED_MASK));
	if (st == VHDX_BLOCK_PARTIALLY_PRESENT && !v->has_parent)
		return scan_bad(s, "BAT entry %llu: PARTIALLY_PRESENT block in a non-differencing "
				"file", (unsigned long long)i);
	if (st != VHDX_BLOCK_FULLY_PRESENT && st != VHDX_BLOCK_PARTIALLY_PRESENT)
		return 0;
	s->chunk_partial |= st == VHDX_BLOCK_PARTIALLY_PRESENT;
	v->allocated_bytes += v->block_bytes;
	return scan_extent(s, i, "payload block", e & VHDX_BAT_OFFSET_MASK, v->block_bytes);
}

static int scan_entries(struct scan *s)
{
	struct vhdx_disk *v = s->v;
	uint64_t cap = v->bat_entries < SCAN_BUF_ENTRIES ? v->bat_entries : SCAN_BUF_ENTRIES;
	uint8_t *buf = malloc((size_t)(8 * cap));
	int r = 0;

	if (!buf)
		return vdisk_fail(ENOMEM, "out of memory");
	for (uint64_t i = 0; i < v->bat_entries && r == 0; i += SCAN_BUF_ENTRIES) {
		uint64_t n = v->bat_entries - i < SCAN_BUF_ENTRIES ? v->bat_entries - i :
								    SCAN_BUF_ENTRIES;
		r = vhdx_io_read(v, v->bat_offset + 8 * i, buf, (size_t)(8 * n));
		for (uint64_t k = 0; k < n && r == 0; k++) {
			uint64_t idx = i + k, e = get_le64(buf + 8 * k);
			if (idx % (v->chunk_ratio + 1) == v->chunk_ratio)
				r = scan_sb_entry(s, idx, e);
			else
				r = scan_payload_entry(s, idx, e);
		}
	}
	if (r == 0 && s->chunk_partial)
		r = scan_bad(s, "last chunk has PARTIALLY_PRESENT blocks but no sector bitmap");
	free(buf);
	return r;
}

int vhdx_bat_scan(struct vhdx_disk *v, vhdx_bat_report_fn report, void *opaque)
{
	struct scan s = { .v = v, .report = report, .opaque = opaque };
	uint64_t file_mib = (v->file_bytes + VHDX_MIB - 1) / VHDX_MIB;

	v->allocated_bytes = 0;
	s.used_mib = file_mib;
	s.used = calloc(1, (size_t)(file_mib / 8 + 1));
	if (!s.used)
		return vdisk_fail(ENOMEM, "out of memory");
	claim(&s, 0, VHDX_HEADER_SECTION_BYTES);
	claim(&s, v->log_offset, v->log_length);
	claim(&s, v->bat_offset, v->bat_length);
	claim(&s, v->meta_offset, v->meta_length);
	v->alloc_end = (v->file_bytes + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	uint64_t ends[3] = { v->log_offset + v->log_length, v->bat_offset + v->bat_length,
			     v->meta_offset + v->meta_length };
	for (int i = 0; i < 3; i++)
		if (ends[i] > v->alloc_end)
			v->alloc_end = ends[i];
	int r = scan_entries(&s);
	free(s.used);
	return r < 0 ? r : (int)s.bad;
}
