/* vhdx/vhdx-log.c - VHDX log: replay (into memory or into the file) and the writer (2.3). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx-int.h"

/* What validation learned about the entry starting at one 4 KiB offset of the log. */
struct entry_info {
	bool checked, valid;
	uint32_t len, tail;
	uint64_t seq, flushed, last;
};

struct log_scan {
	struct vhdx_disk *v;
	const uint8_t *buf;  /* the log twice in a row, so a wrapped entry is contiguous */
	uint32_t len;
	const uint8_t *guid;
	struct entry_info *info; /* one per 4 KiB */
};

/* A contiguous run of valid entries with consecutive sequence numbers. */
struct log_run {
	uint32_t start, head, bytes, count;
	uint64_t head_seq;
};

static bool target_ok(const struct vhdx_disk *v, uint64_t off, uint64_t len)
{
	/* Replay may rewrite region tables and everything after the first MiB, never the
	 * identifier, the headers or the log itself. */
	return off >= VHDX_REGION1_OFFSET && len <= VHDX_MAX_FILE_BYTES &&
	       off <= VHDX_MAX_FILE_BYTES - len &&
	       !(off < v->log_offset + v->log_length && v->log_offset < off + len);
}

static bool descriptors_ok(const struct log_scan *ls, const uint8_t *p, uint64_t seq,
			   uint32_t count, uint32_t desc_sectors, uint32_t len)
{
	uint32_t data = 0;

	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = p + 64 + 32 * (size_t)i;
		uint32_t sig = get_le32(d);
		uint64_t off = get_le64(d + VHDX_LD(file_offset));
		uint64_t n = sig == VHDX_LOG_ZERO_SIGNATURE ? get_le64(d + VHDX_LD(leading_or_len)) :
							      VHDX_PAGE_BYTES;
		if ((sig != VHDX_LOG_ZERO_SIGNATURE && sig != VHDX_LOG_DESC_SIGNATURE) ||
		    get_le64(d + VHDX_LD(sequence_number)) != seq || off % VHDX_PAGE_BYTES ||
		    n % VHDX_PAGE_BYTES || n == 0 || !target_ok(ls->v, off, n))
			return false;
		if (sig == VHDX_LOG_ZERO_SIGNATURE)
			continue;
		uint64_t at = ((uint64_t)desc_sectors + data++) * VHDX_PAGE_BYTES;
		if (at >= len)
			return false;
		const uint8_t *s = p + at;
		if (get_le32(s) != VHDX_LOG_DATA_SIGNATURE ||
		    get_le32(s + VHDX_LDS(sequence_high)) != (uint32_t)(seq >> 32) ||
		    get_le32(s + VHDX_LDS(sequence_low)) != (uint32_t)seq)
			return false;
	}
	return true;
}

/* Spec 2.3.1: signature, length, sequence, GUID, descriptors and data sectors, checksum. */
static bool check_entry(struct log_scan *ls, uint32_t off, struct entry_info *e)
{
	const uint8_t *p = ls->buf + off;

	if (get_le32(p) != VHDX_LOG_ENTRY_SIGNATURE)
		return false;
	e->len = get_le32(p + VHDX_LEH(entry_length));
	e->tail = get_le32(p + VHDX_LEH(tail));
	e->seq = get_le64(p + VHDX_LEH(sequence_number));
	e->flushed = get_le64(p + VHDX_LEH(flushed_file_offset));
	e->last = get_le64(p + VHDX_LEH(last_file_offset));
	uint32_t count = get_le32(p + VHDX_LEH(descriptor_count));
	if (e->len == 0 || e->len % VHDX_PAGE_BYTES || e->len > ls->len || e->seq == 0 ||
	    e->tail % VHDX_PAGE_BYTES || e->tail >= ls->len)
		return false;
	if (memcmp(p + VHDX_LEH(log_guid), ls->guid, 16)) {
		ls->v->log.other_guid++;
		return false;
	}
	uint64_t desc_sectors = ((uint64_t)count + 2 + 127) / 128;
	if (desc_sectors * VHDX_PAGE_BYTES > e->len)
		return false;
	if (!descriptors_ok(ls, p, e->seq, count, (uint32_t)desc_sectors, e->len))
		return false;
	return get_le32(p + VHDX_LEH(checksum)) == vhdx_checksum(p, e->len, VHDX_LEH(checksum));
}

static const struct entry_info *entry_at(struct log_scan *ls, uint32_t off)
{
	struct entry_info *e = &ls->info[off / VHDX_PAGE_BYTES];

	if (!e->checked) {
		e->valid = check_entry(ls, off, e);
		e->checked = true;
	}
	return e->valid ? e : NULL;
}

static struct log_run walk_run(struct log_scan *ls, uint32_t start)
{
	struct log_run run = { .start = start, .head = start };
	uint32_t at = start;
	uint64_t last = 0;

	for (;;) {
		const struct entry_info *e = entry_at(ls, at);
		if (!e || (run.count && e->seq != last + 1) || run.bytes + e->len > ls->len)
			break;
		run.head = at;
		run.head_seq = last = e->seq;
		run.bytes += e->len;
		run.count++;
		at = (uint32_t)(((uint64_t)at + e->len) % ls->len);
	}
	return run;
}

/* Is off the start of one of the run's entries? (the spec's "tail inside the sequence") */
static bool run_has_entry(struct log_scan *ls, const struct log_run *run, uint32_t off)
{
	uint32_t at = run->start;

	for (uint32_t i = 0; i < run->count; i++) {
		if (at == off)
			return true;
		at = (uint32_t)(((uint64_t)at + ls->info[at / VHDX_PAGE_BYTES].len) % ls->len);
	}
	return false;
}

/* Spec 2.3.3 search. Returns the sequence to replay (start = the head's Tail) in *best; if
 * the strict rule finds none, the highest-numbered contiguous run (qemu's behaviour, and
 * what a crash early in a new Windows session needs) with *stale set. */
static bool find_sequence(struct log_scan *ls, struct log_run *best, bool *stale)
{
	struct log_run any = { 0 };
	bool have_best = false;
	uint32_t tail = 0;

	*stale = false;
	for (;;) {
		struct log_run run = walk_run(ls, tail);
		bool valid = run.count &&
			     run_has_entry(ls, &run, ls->info[run.head / VHDX_PAGE_BYTES].tail);
		if (valid && (!have_best || run.head_seq > best->head_seq)) {
			*best = run;
			best->start = ls->info[run.head / VHDX_PAGE_BYTES].tail;
			have_best = true;
		}
		if (run.count && (!any.count || run.head_seq > any.head_seq ||
				  (run.head_seq == any.head_seq && run.count > any.count)))
			any = run;
		uint64_t next = valid ? (uint64_t)run.start + run.bytes : (uint64_t)tail + 4096;
		next %= ls->len;
		if (next <= tail)
			break;
		tail = (uint32_t)next;
	}
	if (!have_best && any.count) {
		*best = any;
		*stale = true;
		return true;
	}
	return have_best;
}

/* ---- applying ---- */

static int overlay_add(struct vhdx_disk *v, uint64_t off, uint64_t len, const uint8_t *page)
{
	size_t n = v->overlay_count;
	if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) { /* capacity: 16, then doubling */
		size_t cap = n ? 2 * n : 16;
		struct vhdx_overlay *o = realloc(v->overlay, cap * sizeof(*o));
		if (!o)
			return vdisk_fail(ENOMEM, "out of memory");
		v->overlay = o;
	}
	uint8_t *data = NULL;
	if (page) {
		data = malloc(VHDX_PAGE_BYTES);
		if (!data)
			return vdisk_fail(ENOMEM, "out of memory");
		memcpy(data, page, VHDX_PAGE_BYTES);
	}
	v->overlay[v->overlay_count++] = (struct vhdx_overlay){ off, len, data };
	if (off + len > v->file_bytes)
		v->file_bytes = off + len;
	return 0;
}

static int zero_in_file(struct vhdx_disk *v, uint64_t off, uint64_t len)
{
	static const uint8_t zero[VHDX_PAGE_BYTES];
	int r = 0;

	/* Past the end, extending the file is enough: new bytes read as zeros. */
	if (off + len > v->host_bytes && ftruncate(v->base.fd, (off_t)(off + len)) < 0)
		return vdisk_fail(errno, "%s: log replay: cannot extend the file to %llu bytes: %s",
				  v->base.path, (unsigned long long)(off + len), strerror(errno));
	uint64_t end = off + len < v->host_bytes ? off + len : v->host_bytes;
	if (off < end && fallocate(v->base.fd, FALLOC_FL_ZERO_RANGE, (off_t)off,
				   (off_t)(end - off)) == 0)
		off = end;
	for (; off < end && r == 0; off += VHDX_PAGE_BYTES)
		r = vdisk_pwrite(v->base.fd, v->base.path, zero, VHDX_PAGE_BYTES, off);
	return r;
}

static int apply_descriptor(struct vhdx_disk *v, const uint8_t *entry, uint32_t i,
			    const uint8_t *data_sector, bool into_file)
{
	const uint8_t *d = entry + 64 + 32 * (size_t)i;
	uint64_t off = get_le64(d + VHDX_LD(file_offset));

	if (get_le32(d) == VHDX_LOG_ZERO_SIGNATURE) {
		uint64_t len = get_le64(d + VHDX_LD(leading_or_len));
		return into_file ? zero_in_file(v, off, len) : overlay_add(v, off, len, NULL);
	}
	/* Reassemble: LeadingBytes, data sector bytes 8..4091, TrailingBytes. */
	uint8_t page[VHDX_PAGE_BYTES];
	memcpy(page, d + VHDX_LD(leading_or_len), 8);
	memcpy(page + 8, data_sector + 8, 4084);
	memcpy(page + 4092, d + VHDX_LD(trailing_bytes), 4);
	if (into_file)
		return vdisk_pwrite(v->base.fd, v->base.path, page, VHDX_PAGE_BYTES, off);
	return overlay_add(v, off, VHDX_PAGE_BYTES, page);
}

static int apply_entry(struct vhdx_disk *v, const uint8_t *p, bool into_file)
{
	uint32_t count = get_le32(p + VHDX_LEH(descriptor_count));
	uint32_t desc_sectors = (count + 2 + 127) / 128, data = 0;
	int r = 0;

	for (uint32_t i = 0; i < count && r == 0; i++) {
		const uint8_t *d = p + 64 + 32 * (size_t)i;
		const uint8_t *sector = NULL;
		if (get_le32(d) == VHDX_LOG_DESC_SIGNATURE)
			sector = p + ((size_t)desc_sectors + data++) * VHDX_PAGE_BYTES;
		r = apply_descriptor(v, p, i, sector, into_file);
		v->log.descriptors++;
	}
	return r;
}

static int refresh_host_size(struct vhdx_disk *v)
{
	struct stat st;

	if (fstat(v->base.fd, &st) < 0)
		return vdisk_fail(errno, "%s: stat failed: %s", v->base.path, strerror(errno));
	v->host_bytes = (uint64_t)st.st_size;
	if (v->host_bytes > v->file_bytes)
		v->file_bytes = v->host_bytes;
	return 0;
}

/* Replay from the sequence's first entry through its head, then grow the file to the
 * head's LastFileOffset. In the file: flush, then clear LogGuid (new FileWriteGuid, the
 * same DataWriteGuid: replay changes nothing a reader of the clean file would see). */
static int apply_sequence(struct vhdx_disk *v, struct log_scan *ls, const struct log_run *run,
			  bool into_file)
{
	static const uint8_t zero_guid[16];
	const struct entry_info *head = &ls->info[run->head / VHDX_PAGE_BYTES];
	uint32_t at = run->start;
	int r = 0;

	for (;;) {
		const struct entry_info *e = &ls->info[at / VHDX_PAGE_BYTES];
		if ((r = apply_entry(v, ls->buf + at, into_file)) < 0)
			return r;
		v->log.entries++;
		if (at == run->head)
			break;
		at = (uint32_t)(((uint64_t)at + e->len) % ls->len);
	}
	uint64_t last = head->last <= VHDX_MAX_FILE_BYTES ? head->last : 0;
	if (!into_file) {
		if (last > v->file_bytes)
			v->file_bytes = last;
		v->log_state = VDISK_LOG_REPLAYED_MEMORY;
		return 0;
	}
	if ((r = refresh_host_size(v)) < 0)
		return r;
	if (last > v->host_bytes && ftruncate(v->base.fd, (off_t)last) < 0)
		return vdisk_fail(errno, "%s: log replay: cannot extend the file to %llu bytes: %s",
				  v->base.path, (unsigned long long)last, strerror(errno));
	if ((r = refresh_host_size(v)) < 0 || (r = vhdx_sync(v)) < 0 ||
	    (r = vhdx_header_update(v, zero_guid)) < 0)
		return r;
	v->log_state = VDISK_LOG_REPLAYED_FILE;
	return 0;
}

static int replay_found(struct vhdx_disk *v, struct log_scan *ls, bool into_file)
{
	struct log_run run;
	bool stale;

	if (!find_sequence(ls, &run, &stale))
		return vdisk_fail(EINVAL, "%s: the header's LogGuid is set but the log at offset "
				  "%llu holds no valid entry sequence for it (%u entries of other "
				  "sessions ignored): corrupt log", v->base.path,
				  (unsigned long long)v->log_offset, v->log.other_guid);
	const struct entry_info *head = &ls->info[run.head / VHDX_PAGE_BYTES];
	v->log.stale_tail = stale;
	v->log.head_sequence = head->seq;
	if (v->host_bytes < head->flushed)
		return vdisk_fail(EINVAL, "%s: file is %llu bytes but log entry %llu says %llu "
				  "bytes were already flushed: truncated file", v->base.path,
				  (unsigned long long)v->host_bytes, (unsigned long long)head->seq,
				  (unsigned long long)head->flushed);
	return apply_sequence(v, ls, &run, into_file);
}

int vhdx_log_replay(struct vhdx_disk *v, bool into_file)
{
	struct log_scan ls = { .v = v, .len = v->log_length,
			       .guid = v->header + VHDX_HDR(log_guid) };
	int r;

	memset(&v->log, 0, sizeof(v->log));
	v->log_state = VDISK_LOG_CLEAN;
	if (vhdx_guid_is_zero(ls.guid))
		return 0;
	v->log.needed = true;
	if (v->log_length > VHDX_MAX_LOG_BYTES)
		return vdisk_fail(ENOTSUP, "%s: log of %u bytes needs replay but exceeds the %u "
				  "bytes we replay", v->base.path, v->log_length,
				  VHDX_MAX_LOG_BYTES);
	uint8_t *buf = malloc(2 * (size_t)v->log_length);
	ls.info = calloc(v->log_length / VHDX_PAGE_BYTES, sizeof(*ls.info));
	if (!buf || !ls.info) {
		r = vdisk_fail(ENOMEM, "out of memory");
		goto free_bufs;
	}
	r = vhdx_io_read(v, v->log_offset, buf, v->log_length);
	if (r < 0)
		goto free_bufs;
	memcpy(buf + v->log_length, buf, v->log_length);
	ls.buf = buf;
	r = replay_found(v, &ls, into_file);
free_bufs:
	free(ls.info);
	free(buf);
	return r;
}

/* ---- writer ---- */

static void build_entry(struct vhdx_disk *v, uint8_t *p, uint32_t len, uint32_t desc_sectors,
			const struct vhdx_page *pages, unsigned n)
{
	uint64_t seq = v->log_seq;

	memset(p, 0, len);
	put_le32(p + VHDX_LEH(signature), VHDX_LOG_ENTRY_SIGNATURE);
	put_le32(p + VHDX_LEH(entry_length), len);
	put_le32(p + VHDX_LEH(tail), v->log_head); /* each entry is a complete sequence */
	put_le64(p + VHDX_LEH(sequence_number), seq);
	put_le32(p + VHDX_LEH(descriptor_count), n);
	memcpy(p + VHDX_LEH(log_guid), v->log_guid, 16);
	put_le64(p + VHDX_LEH(flushed_file_offset), v->host_bytes / VHDX_MIB * VHDX_MIB);
	put_le64(p + VHDX_LEH(last_file_offset),
		 (v->host_bytes + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = p + 64 + 32 * (size_t)i;
		uint8_t *s = p + ((size_t)desc_sectors + i) * VHDX_PAGE_BYTES;
		put_le32(d, VHDX_LOG_DESC_SIGNATURE);
		memcpy(d + VHDX_LD(trailing_bytes), pages[i].data + 4092, 4);
		memcpy(d + VHDX_LD(leading_or_len), pages[i].data, 8);
		put_le64(d + VHDX_LD(file_offset), pages[i].off);
		put_le64(d + VHDX_LD(sequence_number), seq);
		put_le32(s, VHDX_LOG_DATA_SIGNATURE);
		put_le32(s + VHDX_LDS(sequence_high), (uint32_t)(seq >> 32));
		memcpy(s + 8, pages[i].data + 8, 4084);
		put_le32(s + VHDX_LDS(sequence_low), (uint32_t)seq);
	}
	put_le32(p + VHDX_LEH(checksum), vhdx_checksum(p, len, VHDX_LEH(checksum)));
}

static int write_entry(struct vhdx_disk *v, const uint8_t *p, uint32_t len)
{
	uint32_t first = v->log_length - v->log_head < len ? v->log_length - v->log_head : len;
	int r = vdisk_pwrite(v->base.fd, v->base.path, p, first, v->log_offset + v->log_head);

	if (r == 0 && first < len) /* wraps around the end of the ring */
		r = vdisk_pwrite(v->base.fd, v->base.path, p + first, len - first, v->log_offset);
	if (r == 0)
		r = vhdx_sync(v);
	if (r == 0) {
		v->log_head = (uint32_t)(((uint64_t)v->log_head + len) % v->log_length);
		v->log_seq++;
	}
	return r;
}

/* Crash-safe order (spec 2.3): payload already written is made durable, then the entry is
 * written and flushed, then the pages go to their places and are flushed. A crash before
 * the entry is complete leaves the old state (the torn entry fails its checksum); after it,
 * replay finishes the job. Entries are at most half the log, so writing one never
 * overwrites the previous, still-replayable entry. */
int vhdx_log_commit(struct vhdx_disk *v, const struct vhdx_page *pages, unsigned n)
{
	uint32_t desc_sectors = (n + 2 + 127) / 128;
	uint64_t len = ((uint64_t)desc_sectors + n) * VHDX_PAGE_BYTES;
	int r;

	if (2 * len > v->log_length)
		return vdisk_fail(ENOSPC, "%s: a log entry of %llu bytes does not fit the %u-byte "
				  "log", v->base.path, (unsigned long long)len, v->log_length);
	if ((r = refresh_host_size(v)) < 0 || (r = vhdx_sync(v)) < 0)
		return r;
	uint8_t *p = malloc(len);
	if (!p)
		return vdisk_fail(ENOMEM, "out of memory");
	build_entry(v, p, (uint32_t)len, desc_sectors, pages, n);
	r = write_entry(v, p, (uint32_t)len);
	free(p);
	for (unsigned i = 0; i < n && r == 0; i++)
		r = vdisk_pwrite(v->base.fd, v->base.path, pages[i].data, VHDX_PAGE_BYTES,
				 pages[i].off);
	return r < 0 ? r : vhdx_sync(v);
}
