/* convert/undo-regions.c - the undo record of `genshift convert --in-place` and
 * `genshift rollback`, which puts the source back byte for byte from it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/pipeline.h"
#include "convert/undo-regions-format.h"
#include "convert/undo-regions.h"
#include "include/byteorder.h"

#define MANIFEST_FORMAT "genshift-convert-undo"
#define MANIFEST_MAX_BYTES (64u << 10)

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

static int fsync_dir_of(const char *path)
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
static int publish(const char *tmp, const char *path)
{
	int r = 0;

	if (link(tmp, path) < 0)
		r = vdisk_fail(errno, "%s: %s", path, strerror(errno));
	unlink(tmp);
	return r == 0 ? fsync_dir_of(path) : r;
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

int cv_undo_regions_save(struct cv_run *run)
{
	const struct part_entry *esp = cv_esp_entry(run);
	uint32_t sb = run->plan->sector_bytes;
	uint64_t from = esp->first_lba * sb, to = (esp->last_lba + 1) * sb;
	char tmp[PATH_MAX];
	struct region_writer w = { .path = tmp, .off = sizeof(struct cvundo_header) };
	struct vdisk *d = NULL;
	uint8_t *buf = malloc(CVUNDO_MAX_RECORD_BYTES);
	int r = buf ? 0 : vdisk_fail(ENOMEM, "cannot allocate the undo buffer");

	if (to > run->src_size_bytes) /* what lies past the old end goes with the shrink */
		to = run->src_size_bytes;
	snprintf(tmp, sizeof(tmp), "%.4000s.tmp.%d", run->undo_esp, (int)getpid());
	if (r == 0 && (w.fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		r = vdisk_fail(errno, "%s: %s", tmp, strerror(errno));
	if (r == 0)
		r = vdisk_open(run->src_disk, 0, &d);
	if (r == 0 && from < to)
		r = write_records(&w, d, from, to, buf);
	if (r == 0)
		r = finish_regions(&w, run->src_size_bytes, buf);
	vdisk_close(d);
	if (w.fd > 0)
		close(w.fd);
	if (r == 0)
		r = publish(tmp, run->undo_esp);
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

/* Records are validated one by one before use: inside the file, inside the disk, capped. */
static int restore_records(int fd, const char *path, uint64_t file_bytes, uint32_t count,
			   struct vdisk *d, uint8_t *buf)
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
		if (zeros)
			memset(buf, 0, n);
		else if ((r = vdisk_pread(fd, path, buf, n, pos)) < 0)
			return r;
		pos += zeros ? 0 : n;
		r = vdisk_write(d, off, buf, n);
	}
	return r;
}

static int regions_restore(const char *path, struct vdisk *d)
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
		r = restore_records(fd, path, (uint64_t)st.st_size, count, d, buf);
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* ---- the manifest ---- */

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int cv_undo_manifest_write(struct cv_run *run)
{
	char tmp[PATH_MAX];
	struct json_object *o = json_object_new_object(), *outs = json_object_new_array();
	const char *outputs[] = { run->out_vars, run->out_cfg, run->out_log };

	json_object_object_add(o, "format", json_object_new_string(MANIFEST_FORMAT));
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "source", json_object_new_string(run->src_disk));
	json_object_object_add(o, "source_size_bytes",
			       json_object_new_int64((int64_t)run->src_size_bytes));
	json_object_object_add(o, "partition_undo", json_object_new_string(base_of(run->undo_part)));
	json_object_object_add(o, "esp_undo", json_object_new_string(base_of(run->undo_esp)));
	for (size_t i = 0; i < 3; i++)
		json_object_array_add(outs, json_object_new_string(base_of(outputs[i])));
	json_object_object_add(o, "outputs", outs);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(tmp, sizeof(tmp), "%.4000s.tmp.%d", run->undo, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = fd < 0 ? vdisk_fail(errno, "%s: %s", tmp, strerror(errno)) : 0;
	if (r == 0)
		r = vdisk_pwrite(fd, tmp, text, strlen(text), 0);
	if (r == 0 && fsync(fd) < 0)
		r = vdisk_fail(errno, "%s: fsync: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	if (r == 0)
		return publish(tmp, run->undo);
	unlink(tmp);
	return r;
}

struct manifest {
	char source[PATH_MAX], part_undo[PATH_MAX], esp_undo[PATH_MAX];
	size_t n_outputs;
	char outputs[3][PATH_MAX];
};

/* A file name from the manifest, resolved beside it; names with '/' are refused (a forged
 * manifest must not make rollback delete or read files elsewhere). */
static int manifest_name(const char *undo_path, struct json_object *v, const char *key,
			 char *out)
{
	char tmp[PATH_MAX];
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

	if (!s || !s[0] || strchr(s, '/') || !strcmp(s, "..") || !strcmp(s, "."))
		return vdisk_fail(EINVAL, "%s: \"%s\" must be a plain file name", undo_path, key);
	snprintf(tmp, sizeof(tmp), "%s", undo_path);
	if (snprintf(out, PATH_MAX, "%s/%s", dirname(tmp), s) >= PATH_MAX)
		return vdisk_fail(ENAMETOOLONG, "%s: \"%s\" too long", undo_path, key);
	return 0;
}

static int manifest_fields(const char *path, struct json_object *o, struct manifest *m)
{
	struct json_object *v, *outs = NULL;
	int r = 0;

	if (!json_object_object_get_ex(o, "format", &v) ||
	    strcmp(json_object_get_string(v) ? json_object_get_string(v) : "", MANIFEST_FORMAT))
		return vdisk_fail(EINVAL, "%s: \"format\" is not \"" MANIFEST_FORMAT "\"", path);
	if (!json_object_object_get_ex(o, "version", &v) || json_object_get_int(v) != 1)
		return vdisk_fail(ENOTSUP, "%s: \"version\": expected 1", path);
	if (!json_object_object_get_ex(o, "source", &v) || !json_object_is_type(v, json_type_string))
		return vdisk_fail(EINVAL, "%s: \"source\": expected a path", path);
	snprintf(m->source, sizeof(m->source), "%s", json_object_get_string(v));
	if (!json_object_object_get_ex(o, "partition_undo", &v))
		return vdisk_fail(EINVAL, "%s: \"partition_undo\" is missing", path);
	r = manifest_name(path, v, "partition_undo", m->part_undo);
	if (r == 0 && json_object_object_get_ex(o, "esp_undo", &v))
		r = manifest_name(path, v, "esp_undo", m->esp_undo);
	if (r == 0 && (!json_object_object_get_ex(o, "outputs", &outs) ||
		       !json_object_is_type(outs, json_type_array) ||
		       json_object_array_length(outs) > 3))
		r = vdisk_fail(EINVAL, "%s: \"outputs\": expected at most 3 file names", path);
	for (size_t i = 0; r == 0 && i < json_object_array_length(outs); i++)
		r = manifest_name(path, json_object_array_get_idx(outs, i), "outputs",
				  m->outputs[m->n_outputs++]);
	return r;
}

static int manifest_load(const char *path, struct manifest *m)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	if (stat(path, &st) < 0)
		return vdisk_fail(errno, "%s: %s", path, strerror(errno));
	if (st.st_size > MANIFEST_MAX_BYTES)
		return vdisk_fail(EINVAL, "%s: %lld bytes; an undo manifest is at most %u", path,
				  (long long)st.st_size, MANIFEST_MAX_BYTES);
	struct json_object *o = json_object_from_file(path);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return vdisk_fail(EINVAL, "%s: not a JSON object", path);
	}
	int r = manifest_fields(path, o, m);
	json_object_put(o);
	return r;
}

/* The source comes back first; only then do the outputs and the undo files go. */
static int restore_source(const struct manifest *m, FILE *msgs)
{
	struct vdisk *d;
	int r;

	if (access(m->part_undo, F_OK) != 0) {
		fprintf(msgs, "%s: never modified (the conversion stopped before its partition "
			"step)\n", m->source);
		return 0;
	}
	if ((r = vdisk_open(m->source, VDISK_OPEN_RDWR, &d)) < 0)
		return r;
	if (m->esp_undo[0] && access(m->esp_undo, F_OK) == 0)
		r = regions_restore(m->esp_undo, d);
	if (r == 0)
		r = vdisk_flush(d);
	if (r == 0)
		r = part_undo(d, m->part_undo);
	int c = vdisk_close(d);
	if (r == 0 && c < 0)
		r = c;
	if (r == 0)
		fprintf(msgs, "%s: restored from %s\n", m->source, m->part_undo);
	return r;
}

int cv_rollback(const char *undo_path, FILE *msgs)
{
	struct manifest m;
	int r = manifest_load(undo_path, &m);

	if (r == 0)
		r = restore_source(&m, msgs);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m.n_outputs; i++)
		if (unlink(m.outputs[i]) == 0)
			fprintf(msgs, "removed %s\n", m.outputs[i]);
	unlink(m.esp_undo);
	unlink(m.part_undo);
	unlink(undo_path);
	return fsync_dir_of(undo_path);
}
