/* partition/apply.c - carrying out a conversion plan (undo file first, then the writes in
 * crash-safe order) and undoing it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "partition/part-int.h"
#include "partition/undo-format.h"

static int fsync_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int n = slash ? (int)(slash - path) : 1;

	snprintf(dir, sizeof(dir), "%.*s", n ? n : 1, slash ? path : ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "%s: cannot open directory to sync it: %s", dir,
				  strerror(errno));
	int r = fsync(fd) < 0 ? vdisk_fail(errno, "%s: fsync failed: %s", dir, strerror(errno)) : 0;
	close(fd);
	return r;
}

/* The whole undo file in memory: it is a few MiB at most. */
static int undo_build(struct vdisk *d, const struct part_plan *p, uint8_t **out, size_t *len)
{
	size_t total = sizeof(struct undo_header) + 4;
	int r = 0;

	for (size_t i = 0; i < p->n_saves; i++)
		total += sizeof(struct undo_record) + p->saves[i].bytes;
	uint8_t *buf = calloc(1, total);
	if (!buf)
		return vdisk_fail(ENOMEM, "out of memory for a %zu-byte undo file", total);
	memcpy(buf + UNDO_HDR(magic), UNDO_MAGIC, 8);
	put_le32(buf + UNDO_HDR(version), UNDO_VERSION);
	put_le32(buf + UNDO_HDR(sector_bytes), p->sector_bytes);
	put_le64(buf + UNDO_HDR(orig_size_bytes), p->old_size_bytes);
	put_le64(buf + UNDO_HDR(new_size_bytes), p->new_size_bytes);
	put_le32(buf + UNDO_HDR(record_count), (uint32_t)p->n_saves);
	put_le64(buf + UNDO_HDR(file_bytes), total);
	size_t at = sizeof(struct undo_header);
	for (size_t i = 0; i < p->n_saves && r == 0; i++) {
		put_le64(buf + at + UNDO_REC(offset_bytes), p->saves[i].offset_bytes);
		put_le32(buf + at + UNDO_REC(bytes), (uint32_t)p->saves[i].bytes);
		at += sizeof(struct undo_record);
		r = vdisk_read(d, p->saves[i].offset_bytes, buf + at, p->saves[i].bytes);
		at += p->saves[i].bytes;
	}
	put_le32(buf + at, part_crc32(buf, at));
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*len = total;
	return 0;
}

/* Written under a temporary name, synced, then linked to undo_path: the undo file either
 * exists complete or not at all, and an existing one is never replaced. */
static int undo_write(struct vdisk *d, const struct part_plan *p, const char *undo_path)
{
	char tmp[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = undo_build(d, p, &buf, &len);

	if (r < 0)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", undo_path, (int)getpid()) >= (int)sizeof(tmp)) {
		r = vdisk_fail(ENAMETOOLONG, "%s: undo file path too long", undo_path);
		goto free_buf;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = vdisk_fail(errno, "%s: cannot create: %s", tmp, strerror(errno));
		goto free_buf;
	}
	r = vdisk_pwrite(fd, tmp, buf, len, 0);
	if (r == 0 && fsync(fd) < 0)
		r = vdisk_fail(errno, "%s: fsync failed: %s", tmp, strerror(errno));
	close(fd);
	if (r == 0 && link(tmp, undo_path) < 0)
		r = vdisk_fail(errno, "%s: cannot create the undo file: %s%s", undo_path,
			       strerror(errno), errno == EEXIST ? " (an earlier conversion's undo "
			       "file? it is kept; name another)" : "");
	unlink(tmp);
	if (r == 0)
		r = fsync_parent_dir(undo_path);
free_buf:
	free(buf);
	return r;
}

static int check_unchanged(struct vdisk *d, const struct part_plan *p)
{
	uint8_t mbr[512];
	int r;

	if (vdisk_size_bytes(d) != p->old_size_bytes ||
	    vdisk_logical_sector_bytes(d) != p->sector_bytes)
		return vdisk_fail(ESTALE, "%s: disk size or sector size changed since the plan was "
				  "made", vdisk_path(d));
	r = vdisk_read(d, 0, mbr, sizeof(mbr));
	if (r == 0 && memcmp(mbr, p->orig_mbr, sizeof(mbr)))
		r = vdisk_fail(ESTALE, "%s: LBA 0 changed since the plan was made", vdisk_path(d));
	return r;
}

static void step_done(const struct part_apply_opts *o, unsigned *step, const char *what)
{
	++*step;
	if (o && o->after_step)
		o->after_step(*step, what, o->opaque);
}

/* Crash-safe order (each step durable before the next):
 *   1. the undo file (and its directory entry);
 *   2. growing the disk, if the plan says so (new space reads as zeros);
 *   3. backup entry array + backup header at the (new) end;
 *   4. primary entry array + primary header at LBA 1;
 *   5. the protective MBR at LBA 0.
 * Until step 5, LBA 0 still holds the original MBR, which describes every partition, and
 * the GPT areas written so far lie outside all of them: an interrupted run leaves a disk
 * that reads as the old MBR (with a not-yet-active GPT beside it). After step 5 both GPT
 * copies are complete, so the disk reads as a valid GPT. */
int part_plan_apply(struct vdisk *d, const struct part_plan *p, const char *undo_path,
		    const struct part_apply_opts *o)
{
	unsigned step = 0;
	int r = check_unchanged(d, p);

	if (r == 0)
		r = undo_write(d, p, undo_path);
	if (r < 0)
		return r;
	step_done(o, &step, "undo file written");
	if (p->new_size_bytes > p->old_size_bytes) {
		r = vdisk_resize(d, p->new_size_bytes);
		if (r == 0)
			r = vdisk_flush(d);
		if (r < 0)
			return r;
		step_done(o, &step, "disk grown");
	}
	for (size_t i = 0; i < p->n_writes; i++) {
		const struct part_write *w = &p->writes[i];
		r = vdisk_write(d, w->lba * p->sector_bytes, w->data,
				(size_t)w->sectors * p->sector_bytes);
		if (r == 0 && w->flush_after)
			r = vdisk_flush(d);
		if (r < 0)
			return r;
		if (w->flush_after)
			step_done(o, &step, w->what);
	}
	return 0;
}

/* ---- undo ---- */

struct undo_file {
	uint8_t *buf;
	size_t len;
	uint32_t sector_bytes, count;
	uint64_t orig_size, new_size;
};

static int undo_load(const char *path, struct undo_file *u)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return vdisk_fail(errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		r = vdisk_fail(errno, "%s: stat failed: %s", path, strerror(errno));
	else if (st.st_size < (off_t)sizeof(struct undo_header) + 4 ||
		 st.st_size > UNDO_MAX_FILE_BYTES)
		r = vdisk_fail(EINVAL, "%s: %lld bytes is not the size of an undo file (%zu..%u)",
			       path, (long long)st.st_size, sizeof(struct undo_header) + 4,
			       UNDO_MAX_FILE_BYTES);
	if (r == 0) {
		u->len = (size_t)st.st_size;
		u->buf = malloc(u->len);
		r = u->buf ? vdisk_pread(fd, path, u->buf, u->len, 0) :
			vdisk_fail(ENOMEM, "out of memory");
	}
	close(fd);
	return r;
}

/* Signature, sizes, checksum, then the header's values. */
static int undo_check_header(const char *path, struct undo_file *u)
{
	const uint8_t *h = u->buf;

	if (memcmp(h + UNDO_HDR(magic), UNDO_MAGIC, 8))
		return vdisk_fail(EINVAL, "%s: not a genshift undo file (no \"%s\" at offset 0)",
				  path, UNDO_MAGIC);
	if (get_le32(h + UNDO_HDR(version)) != UNDO_VERSION)
		return vdisk_fail(ENOTSUP, "%s: undo file version %u (offset 0x%zx); this genshift "
				  "reads version %u", path, get_le32(h + UNDO_HDR(version)),
				  UNDO_HDR(version), UNDO_VERSION);
	if (get_le64(h + UNDO_HDR(file_bytes)) != u->len)
		return vdisk_fail(EINVAL, "%s: header says %llu bytes (offset 0x%zx), file has %zu "
				  "(truncated?)", path,
				  (unsigned long long)get_le64(h + UNDO_HDR(file_bytes)),
				  UNDO_HDR(file_bytes), u->len);
	uint32_t crc = part_crc32(u->buf, u->len - 4), stored = get_le32(u->buf + u->len - 4);
	if (crc != stored)
		return vdisk_fail(EINVAL, "%s: CRC32 0x%08x at offset %zu does not match the "
				  "computed 0x%08x", path, stored, u->len - 4, crc);
	u->sector_bytes = get_le32(h + UNDO_HDR(sector_bytes));
	u->orig_size = get_le64(h + UNDO_HDR(orig_size_bytes));
	u->new_size = get_le64(h + UNDO_HDR(new_size_bytes));
	u->count = get_le32(h + UNDO_HDR(record_count));
	if ((u->sector_bytes != 512 && u->sector_bytes != 4096) || u->orig_size == 0 ||
	    u->orig_size % u->sector_bytes || u->new_size < u->orig_size ||
	    u->new_size % u->sector_bytes || u->count > UNDO_MAX_RECORDS)
		return vdisk_fail(EINVAL, "%s: implausible header (sector size %u, sizes %llu -> "
				  "%llu, %u records; at most %u)", path, u->sector_bytes,
				  (unsigned long long)u->orig_size, (unsigned long long)u->new_size,
				  u->count, UNDO_MAX_RECORDS);
	return 0;
}

/* Walk the records; with d == NULL only validate, else write each one back. */
static int undo_records(const char *path, const struct undo_file *u, struct vdisk *d)
{
	size_t at = sizeof(struct undo_header), end = u->len - 4;
	int r = 0;

	for (uint32_t i = 0; i < u->count && r == 0; i++) {
		if (end - at < sizeof(struct undo_record))
			return vdisk_fail(EINVAL, "%s: record %u header at offset %zu runs past the "
					  "data", path, i, at);
		uint64_t off = get_le64(u->buf + at + UNDO_REC(offset_bytes));
		uint32_t len = get_le32(u->buf + at + UNDO_REC(bytes));
		at += sizeof(struct undo_record);
		if (len > UNDO_MAX_RECORD_BYTES || len > end - at || off > u->orig_size ||
		    len > u->orig_size - off)
			return vdisk_fail(EINVAL, "%s: record %u (offset %zu): %u bytes for disk "
					  "offset %llu do not fit the file or the %llu-byte disk",
					  path, i, at - sizeof(struct undo_record), len,
					  (unsigned long long)off, (unsigned long long)u->orig_size);
		if (d)
			r = vdisk_write(d, off, u->buf + at, len);
		at += len;
	}
	if (r == 0 && at != end)
		r = vdisk_fail(EINVAL, "%s: %zu bytes of unexplained data after the last record",
			       path, end - at);
	return r;
}

/* Make [from, end) read as zeros so the disk may shrink (backends refuse to drop data). */
static int zero_tail(struct vdisk *d, uint64_t from)
{
	uint8_t buf[65536];
	uint64_t size = vdisk_size_bytes(d), run;
	unsigned state;
	int r = 0;

	for (uint64_t off = from; off < size && r == 0; off += run) {
		r = vdisk_map(d, off, size - off, &run, &state);
		if (r < 0 || state == VDISK_EXTENT_ZERO)
			continue;
		run = run < sizeof(buf) ? run : sizeof(buf);
		r = vdisk_read(d, off, buf, run);
		if (r == 0 && !vdisk_buf_is_zero(buf, run)) {
			memset(buf, 0, run);
			r = vdisk_write(d, off, buf, run);
		}
	}
	return r;
}

/* Keep the backend's reason, and say what did happen. */
static int note_not_shrunk(struct vdisk *d, uint64_t orig_size, int err)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", vdisk_errmsg()); /* the message buffer is reused */
	return vdisk_fail(-err, "%s: the original bytes are restored, but the disk could not "
			  "shrink back to %llu bytes: %s", vdisk_path(d),
			  (unsigned long long)orig_size, why);
}

int part_undo(struct vdisk *d, const char *undo_path)
{
	struct undo_file u = { 0 };
	uint64_t size = vdisk_size_bytes(d);
	int r = undo_load(undo_path, &u);

	if (r == 0)
		r = undo_check_header(undo_path, &u);
	if (r == 0)
		r = undo_records(undo_path, &u, NULL);
	if (r == 0 && (u.sector_bytes != vdisk_logical_sector_bytes(d) ||
		       (size != u.orig_size && size != u.new_size)))
		r = vdisk_fail(ESTALE, "%s: the undo file is for a disk of %llu (converted: %llu) "
			       "bytes with %u-byte sectors; %s is %llu bytes with %u-byte sectors",
			       undo_path, (unsigned long long)u.orig_size,
			       (unsigned long long)u.new_size, u.sector_bytes, vdisk_path(d),
			       (unsigned long long)size, vdisk_logical_sector_bytes(d));
	if (r == 0)
		r = undo_records(undo_path, &u, d);
	if (r == 0)
		r = vdisk_flush(d);
	if (r == 0 && size > u.orig_size)
		r = zero_tail(d, u.orig_size);
	if (r == 0 && size > u.orig_size) {
		r = vdisk_resize(d, u.orig_size);
		if (r < 0)
			r = note_not_shrunk(d, u.orig_size, r);
	}
	if (r == 0)
		r = vdisk_flush(d);
	free(u.buf);
	return r;
}
