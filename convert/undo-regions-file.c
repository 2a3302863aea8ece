/* convert/undo-regions-file.c - NAME.undo-esp (undo-regions-format.h): saving the original
 * bytes of a disk range before an --in-place conversion writes there, and putting them back
 * (the file is validated as hostile input first: header, size, CRC, then each record). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/undo-regions-format.h"
#include "convert/undo-regions.h"
#include "include/byteorder.h"
#include "vhdx/vdisk.h"

/* ---- CRC32 (IEEE 802.3, reflected, as zlib) ---- */

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	static uint32_t table[256];

	if (!table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* CRC of bytes [0, len) of an open file, read in 1 MiB pieces. */
static int file_crc(int fd, const char *path, uint64_t len, uint8_t *buf, uint32_t *crc)
{
	*crc = 0;
	for (uint64_t off = 0; off < len;) {
		size_t n = len - off < CVUNDO_MAX_RECORD_BYTES ? (size_t)(len - off)
							       : CVUNDO_MAX_RECORD_BYTES;
		int r = vdisk_pread(fd, path, buf, n, off);
		if (r < 0)
			return r;
		*crc = crc32_update(*crc, buf, n);
		off += n;
	}
	return 0;
}

int cv_fsync_dir_of(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "%s: %s", tmp, strerror(errno));
	int r = fsync(fd) < 0 ? vdisk_fail(errno, "%s: fsync: %s", tmp, strerror(errno)) : 0;
	close(fd);
	return r;
}

/* Make tmp (complete and synced) appear as path; never replaces an existing file. */
int cv_publish(const char *tmp, const char *path)
{
	int r = 0;

	if (link(tmp, path) < 0)
		r = vdisk_fail(errno, "%s: %s", path, strerror(errno));
	unlink(tmp);
	return r == 0 ? cv_fsync_dir_of(path) : r;
}

/* ---- NAME.undo-esp ---- */

struct region_writer {
	int fd;
	const char *path;
	uint64_t off;
	uint32_t count;
};

static int put_record(struct region_writer *w, uint64_t disk_off, const uint8_t *data,
		      uint32_t bytes)
{
	uint8_t rec[sizeof(struct cvundo_record)] = { 0 };
	bool zeros = vdisk_buf_is_zero(data, bytes);

	put_le64(rec + CVUNDO_REC(offset_bytes), disk_off);
	put_le32(rec + CVUNDO_REC(bytes), bytes);
	put_le32(rec + CVUNDO_REC(flags), zeros ? CVUNDO_ZEROS : 0);
	int r = vdisk_pwrite(w->fd, w->path, rec, sizeof(rec), w->off);
	w->off += sizeof(rec);
	if (r == 0 && !zeros) {
		r = vdisk_pwrite(w->fd, w->path, data, bytes, w->off);
		w->off += bytes;
	}
	w->count++;
	return r;
}

static int write_records(struct region_writer *w, struct vdisk *d, uint64_t from, uint64_t to,
			 uint8_t *buf)
{
	for (uint64_t off = from; off < to;) {
		uint32_t n = to - off < CVUNDO_MAX_RECORD_BYTES ? (uint32_t)(to - off)
							      : CVUNDO_MAX_RECORD_BYTES;
		int r = vdisk_read(d, off, buf, n);
		if (r == 0)
			r = put_record(w, off, buf, n);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

static int finish_regions(struct region_writer *w, uint64_t disk_size, uint8_t *buf)
{
	uint8_t hdr[sizeof(struct cvundo_header)] = { 0 };
	uint8_t crc_le[4];
	uint32_t crc;

	memcpy(hdr + CVUNDO_HDR(magic), CVUNDO_MAGIC, 8);
	put_le32(hdr + CVUNDO_HDR(version), CVUNDO_VERSION);
	put_le32(hdr + CVUNDO_HDR(record_count), w->count);
	put_le64(hdr + CVUNDO_HDR(disk_size_bytes), disk_size);
	put_le64(hdr + CVUNDO_HDR(file_bytes), w->off + 4);
	int r = vdisk_pwrite(w->fd, w->path, hdr, sizeof(hdr), 0);
	if (r == 0)
		r = file_crc(w->fd, w->path, w->off, buf, &crc);
	put_le32(crc_le, crc);
	if (r == 0)
		r = vdisk_pwrite(w->fd, w->path, crc_le, 4, w->off);
	if (r == 0 && fsync(w->fd) < 0)
		r = vdisk_fail(errno, "%s: fsync: %s", w->path, strerror(errno));
	return r;
}

int cv_regions_write(const char *disk_path, uint64_t from, uint64_t to, const char *path)
{
	char tmp[PATH_MAX];
	struct region_writer w = { .fd = -1, .path = tmp, .off = sizeof(struct cvundo_header) };
	struct vdisk *d = NULL;
	uint8_t *buf = malloc(CVUNDO_MAX_RECORD_BYTES);
	int r = buf ? 0 : vdisk_fail(ENOMEM, "cannot allocate the undo buffer");

	snprintf(tmp, sizeof(tmp), "%.4000s.tmp.%d", path, (int)getpid());
	if (r == 0 && (w.fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		r = vdisk_fail(errno, "%s: %s", tmp, strerror(errno));
	if (r == 0)
		r = vdisk_open(disk_path, 0, &d);
	if (r == 0 && to > vdisk_size_bytes(d))
		to = vdisk_size_bytes(d);
	if (r == 0 && from < to)
		r = write_records(&w, d, from, to, buf);
	if (r == 0)
		r = finish_regions(&w, vdisk_size_bytes(d), buf);
	vdisk_close(d);
	if (w.fd >= 0)
		close(w.fd);
	if (r == 0)
		r = cv_publish(tmp, path);
	else
		unlink(tmp);
	free(buf);
	return r;
}

static int check_regions_header(const char *path, const uint8_t *hdr, uint64_t file_bytes,
				uint32_t *count)
{
	if (memcmp(hdr + CVUNDO_HDR(magic), CVUNDO_MAGIC, 8))
		return vdisk_fail(EINVAL, "%s: magic at offset 0 is not \"" CVUNDO_MAGIC "\"", path);
	if (get_le32(hdr + CVUNDO_HDR(version)) != CVUNDO_VERSION)
		return vdisk_fail(ENOTSUP, "%s: version %u at offset 8; expected %u", path,
				  get_le32(hdr + CVUNDO_HDR(version)), CVUNDO_VERSION);
	if (get_le64(hdr + CVUNDO_HDR(file_bytes)) != file_bytes)
		return vdisk_fail(EINVAL, "%s: file_bytes (offset 0x18) says %llu, the file has "
				  "%llu", path,
				  (unsigned long long)get_le64(hdr + CVUNDO_HDR(file_bytes)),
				  (unsigned long long)file_bytes);
	*count = get_le32(hdr + CVUNDO_HDR(record_count));
	if (*count > CVUNDO_MAX_RECORDS)
		return vdisk_fail(EINVAL, "%s: record_count %u (offset 0x0C) exceeds %u", path,
				  *count, CVUNDO_MAX_RECORDS);
	return 0;
}

static int check_crc(int fd, const char *path, uint64_t file_bytes, uint8_t *buf)
{
	uint8_t le[4];
	uint32_t crc;
	int r = file_crc(fd, path, file_bytes - 4, buf, &crc);

	if (r == 0)
		r = vdisk_pread(fd, path, le, 4, file_bytes - 4);
	if (r == 0 && get_le32(le) != crc)
		r = vdisk_fail(EINVAL, "%s: CRC32 0x%08x at offset %llu; the contents give 0x%08x",
			       path, get_le32(le), (unsigned long long)(file_bytes - 4), crc);
	return r;
}

/* Every record inside the file, inside the disk, capped; with write false only checked
 * (the first pass), so a bad record is found before anything is written. */
static int restore_records(int fd, const char *path, uint64_t file_bytes, uint32_t count,
			   struct vdisk *d, bool write, uint8_t *buf)
{
	uint64_t pos = sizeof(struct cvundo_header);
	int r = 0;

	for (uint32_t i = 0; r == 0 && i < count; i++) {
		uint8_t rec[sizeof(struct cvundo_record)];
		if (pos + sizeof(rec) > file_bytes - 4)
			return vdisk_fail(EINVAL, "%s: record %u at offset %llu runs past the end",
					  path, i, (unsigned long long)pos);
		if ((r = vdisk_pread(fd, path, rec, sizeof(rec), pos)) < 0)
			return r;
		pos += sizeof(rec);
		uint64_t off = get_le64(rec + CVUNDO_REC(offset_bytes));
		uint32_t n = get_le32(rec + CVUNDO_REC(bytes));
		uint32_t flags = get_le32(rec + CVUNDO_REC(flags));
		bool zeros = flags & CVUNDO_ZEROS;
		if (n == 0 || n > CVUNDO_MAX_RECORD_BYTES || (flags & ~CVUNDO_ZEROS) ||
		    off > vdisk_size_bytes(d) || n > vdisk_size_bytes(d) - off ||
		    (!zeros && pos + n > file_bytes - 4))
			return vdisk_fail(EINVAL, "%s: record %u (offset %llu): %u bytes at disk "
					  "offset %llu, flags 0x%x: out of range", path, i,
					  (unsigned long long)(pos - sizeof(rec)), n,
					  (unsigned long long)off, flags);
		if (write && zeros)
			memset(buf, 0, n);
		else if (write && (r = vdisk_pread(fd, path, buf, n, pos)) < 0)
			return r;
		pos += zeros ? 0 : n;
		if (write)
			r = vdisk_write(d, off, buf, n);
	}
	return r;
}

int cv_regions_restore(const char *path, struct vdisk *d)
{
	uint8_t hdr[sizeof(struct cvundo_header)];
	uint8_t *buf = malloc(CVUNDO_MAX_RECORD_BYTES);
	uint32_t count = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = fd < 0 ? vdisk_fail(errno, "%s: %s", path, strerror(errno)) :
		!buf ? vdisk_fail(ENOMEM, "cannot allocate the undo buffer") : 0;

	if (r == 0 && fstat(fd, &st) < 0)
		r = vdisk_fail(errno, "%s: %s", path, strerror(errno));
	if (r == 0 && (uint64_t)st.st_size < sizeof(hdr) + 4)
		r = vdisk_fail(EINVAL, "%s: %lld bytes, shorter than a header", path,
			       (long long)st.st_size);
	if (r == 0)
		r = vdisk_pread(fd, path, hdr, sizeof(hdr), 0);
	if (r == 0)
		r = check_regions_header(path, hdr, (uint64_t)st.st_size, &count);
	if (r == 0)
		r = check_crc(fd, path, (uint64_t)st.st_size, buf);
	if (r == 0)
		r = restore_records(fd, path, (uint64_t)st.st_size, count, d, false, buf);
	if (r == 0)
		r = restore_records(fd, path, (uint64_t)st.st_size, count, d, true, buf);
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

