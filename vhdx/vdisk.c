/* vhdx/vdisk.c - the generic vdisk layer: probing, bounds, locking, errors, copy, compare. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdisk-int.h"

/* Copy and compare work in units of this many bytes: bounded memory whatever the disk size. */
#define VDISK_COPY_CHUNK_BYTES (1u << 20)
/* Granularity at which copy looks for zeros to skip inside a data chunk. */
#define VDISK_ZERO_GRAIN_BYTES 4096u

static __thread char errmsg[1024];

int vdisk_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err > 0 ? -err : err;
}

const char *vdisk_errmsg(void)
{
	return errmsg[0] ? errmsg : "no error recorded";
}

int vdisk_pread(int fd, const char *path, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vdisk_fail(errno, "%s: read of %zu bytes at offset %llu failed: %s",
					  path, len, (unsigned long long)off, strerror(errno));
		if (n == 0)
			return vdisk_fail(EIO, "%s: file ends before offset %llu (short read, "
					  "%zu bytes missing; truncated file?)",
					  path, (unsigned long long)off, len);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int vdisk_pwrite(int fd, const char *path, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vdisk_fail(n < 0 ? errno : EIO,
					  "%s: write of %zu bytes at offset %llu failed: %s", path,
					  len, (unsigned long long)off,
					  n < 0 ? strerror(errno) : "short write");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

void vdisk_guid_to_str(const uint8_t g[16], char out[40])
{
	snprintf(out, 40, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", get_le32(g),
		 get_le16(g + 4), get_le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14],
		 g[15]);
}

int vdisk_guid_random(uint8_t g[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(g + got, 16 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vdisk_fail(errno, "getrandom failed: %s", strerror(errno));
		got += (size_t)n;
	}
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40); /* version 4 (Data3 is little-endian) */
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

bool vdisk_buf_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Word-at-a-time: the copy loop calls this on every megabyte. */
	while (len > 0 && ((uintptr_t)p & 7)) {
		if (*p++)
			return false;
		len--;
	}
	const uint64_t *w = (const uint64_t *)(const void *)p;
	for (; len >= 64; len -= 64, w += 8)
		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return false;
	p = (const uint8_t *)w;
	while (len-- > 0)
		if (*p++)
			return false;
	return true;
}

int vdisk_resolve_relative(const char *child_path, const char *rel, char *out, size_t outlen)
{
	char norm[PATH_MAX];
	size_t n = strlen(rel);

	if (n == 0 || n >= sizeof(norm))
		return vdisk_fail(EINVAL, "%s: parent path of %zu characters is unusable",
				  child_path, n);
	for (size_t i = 0; i <= n; i++)
		norm[i] = rel[i] == '\\' ? '/' : rel[i];
	const char *r = norm;
	while (r[0] == '.' && r[1] == '/')
		r += 2;
	if (r[0] == '/')
		return snprintf(out, outlen, "%s", r) < (int)outlen ? 0 :
			vdisk_fail(ENAMETOOLONG, "%s: parent path too long", child_path);
	const char *slash = strrchr(child_path, '/');
	int dirlen = slash ? (int)(slash - child_path) : 1;
	const char *dir = slash ? child_path : ".";
	if (snprintf(out, outlen, "%.*s/%s", dirlen, dir, r) >= (int)outlen)
		return vdisk_fail(ENAMETOOLONG, "%s: parent path too long", child_path);
	return 0;
}

/* ---- opening ---- */

static int probe_format(int fd, const char *path, enum vdisk_format *fmt)
{
	uint8_t buf[512];
	struct stat st;

	if (fstat(fd, &st) < 0)
		return vdisk_fail(errno, "%s: stat failed: %s", path, strerror(errno));
	*fmt = VDISK_FORMAT_RAW;
	if (st.st_size >= 8) {
		int r = vdisk_pread(fd, path, buf, 8, 0);
		if (r < 0)
			return r;
		if (!memcmp(buf, "vhdxfile", 8)) {
			*fmt = VDISK_FORMAT_VHDX;
			return 0;
		}
		if (!memcmp(buf, "conectix", 8)) {
			*fmt = VDISK_FORMAT_VHD;
			return 0;
		}
	}
	if (st.st_size >= 512) {
		int r = vdisk_pread(fd, path, buf, 512, (uint64_t)st.st_size - 512);
		if (r < 0)
			return r;
		if (!memcmp(buf, "conectix", 8))
			*fmt = VDISK_FORMAT_VHD;
	}
	return 0;
}

static int open_at_depth(const char *path, unsigned flags, unsigned depth, struct vdisk **out)
{
	struct vdisk base = { .flags = flags, .depth = depth, .fd = -1 };
	enum vdisk_format fmt = VDISK_FORMAT_RAW;
	struct vdisk *d = NULL;
	int r;

	if (depth > VDISK_MAX_CHAIN_DEPTH)
		return vdisk_fail(ELOOP, "%s: differencing chain deeper than %d (loop?)", path,
				  VDISK_MAX_CHAIN_DEPTH);
	base.path = strdup(path);
	if (!base.path)
		return vdisk_fail(ENOMEM, "out of memory");
	base.fd = open(path, ((flags & VDISK_OPEN_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (base.fd < 0) {
		r = vdisk_fail(errno, "%s: cannot open: %s", path, strerror(errno));
		goto free_path;
	}
	if (!(flags & VDISK_OPEN_NOLOCK) &&
	    flock(base.fd, ((flags & VDISK_OPEN_RDWR) ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ?
			vdisk_fail(EBUSY, "%s: in use (another process holds a lock on it)", path) :
			vdisk_fail(errno, "%s: flock failed: %s", path, strerror(errno));
		goto close_fd;
	}
	if (!(flags & VDISK_OPEN_FORMAT_RAW)) {
		r = probe_format(base.fd, path, &fmt);
		if (r < 0)
			goto close_fd;
	}
	base.format = fmt;
	switch (fmt) {
	case VDISK_FORMAT_VHDX:
		r = vhdx_open(&base, &d);
		break;
	case VDISK_FORMAT_VHD:
		r = vhd_open(&base, &d);
		break;
	default:
		r = raw_open(&base, &d);
		break;
	}
	if (r < 0)
		goto close_fd;
	*out = d;
	return 0;

close_fd:
	close(base.fd);
free_path:
	free(base.path);
	return r;
}

int vdisk_open(const char *path, unsigned flags, struct vdisk **out)
{
	return open_at_depth(path, flags, 0, out);
}

int vdisk_open_parent(const struct vdisk *child, const char *parent_path, struct vdisk **out)
{
	return open_at_depth(parent_path, child->flags & (VDISK_OPEN_NOLOCK | VDISK_OPEN_VHD_CHS),
			     child->depth + 1, out);
}

int vdisk_close(struct vdisk *d)
{
	if (!d)
		return 0;
	int r = 0;
	if (d->flags & VDISK_OPEN_RDWR)
		r = vdisk_flush(d);
	int fd = d->fd;
	char *path = d->path;
	struct vdisk *parent = d->parent;
	d->ops->close(d);
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = vdisk_fail(errno, "%s: close failed: %s", path, strerror(errno));
	free(path);
	vdisk_close(parent);
	return r;
}

/* ---- I/O with bounds ---- */

static int check_range(const struct vdisk *d, uint64_t off, uint64_t len, const char *what)
{
	if (off > d->size_bytes || len > d->size_bytes - off)
		return vdisk_fail(EINVAL, "%s: %s of %llu bytes at offset %llu is outside the "
				  "%llu-byte disk", d->path, what, (unsigned long long)len,
				  (unsigned long long)off, (unsigned long long)d->size_bytes);
	return 0;
}

int vdisk_read(struct vdisk *d, uint64_t off, void *buf, size_t len)
{
	int r = check_range(d, off, len, "read");
	if (r < 0 || len == 0)
		return r;
	return d->ops->read(d, off, buf, len);
}

int vdisk_write(struct vdisk *d, uint64_t off, const void *buf, size_t len)
{
	if (!(d->flags & VDISK_OPEN_RDWR))
		return vdisk_fail(EBADF, "%s: write to a disk opened read-only", d->path);
	int r = check_range(d, off, len, "write");
	if (r < 0 || len == 0)
		return r;
	return d->ops->write(d, off, buf, len);
}

int vdisk_flush(struct vdisk *d)
{
	if (!(d->flags & VDISK_OPEN_RDWR))
		return 0;
	return d->ops->flush(d);
}

int vdisk_map(struct vdisk *d, uint64_t off, uint64_t max_len, uint64_t *run_len,
	      unsigned *state)
{
	if (off >= d->size_bytes)
		return vdisk_fail(EINVAL, "%s: map at offset %llu is past the %llu-byte disk end",
				  d->path, (unsigned long long)off,
				  (unsigned long long)d->size_bytes);
	if (max_len > d->size_bytes - off)
		max_len = d->size_bytes - off;
	if (max_len == 0)
		return vdisk_fail(EINVAL, "%s: map of zero bytes", d->path);
	if (!d->ops->map) {
		*run_len = max_len;
		*state = VDISK_EXTENT_DATA;
		return 0;
	}
	int r = d->ops->map(d, off, max_len, run_len, state);
	if (r == 0 && (*run_len == 0 || *run_len > max_len))
		return vdisk_fail(EIO, "%s: internal error: map returned a run of %llu bytes",
				  d->path, (unsigned long long)*run_len);
	return r;
}

int vdisk_resize(struct vdisk *d, uint64_t new_size)
{
	if (!(d->flags & VDISK_OPEN_RDWR))
		return vdisk_fail(EBADF, "%s: resize of a disk opened read-only", d->path);
	if (new_size == 0 || new_size % d->logical_sector_bytes)
		return vdisk_fail(EINVAL, "%s: new size %llu is not a positive multiple of the "
				  "%u-byte logical sector", d->path, (unsigned long long)new_size,
				  d->logical_sector_bytes);
	if (!d->ops->resize)
		return vdisk_fail(ENOTSUP, "%s: %s images cannot be resized", d->path,
				  d->ops->name);
	if (new_size == d->size_bytes)
		return 0;
	return d->ops->resize(d, new_size);
}

uint64_t vdisk_size_bytes(const struct vdisk *d) { return d->size_bytes; }
uint32_t vdisk_logical_sector_bytes(const struct vdisk *d) { return d->logical_sector_bytes; }
uint32_t vdisk_physical_sector_bytes(const struct vdisk *d) { return d->physical_sector_bytes; }
enum vdisk_format vdisk_format(const struct vdisk *d) { return d->format; }
enum vdisk_subformat vdisk_subformat(const struct vdisk *d) { return d->subformat; }
const char *vdisk_path(const struct vdisk *d) { return d->path; }
struct vdisk *vdisk_parent(const struct vdisk *d) { return d->parent; }

const char *vdisk_format_name(enum vdisk_format f)
{
	switch (f) {
	case VDISK_FORMAT_RAW: return "raw";
	case VDISK_FORMAT_VHD: return "vhd";
	case VDISK_FORMAT_VHDX: return "vhdx";
	default: return "auto";
	}
}

const char *vdisk_subformat_name(enum vdisk_subformat s)
{
	switch (s) {
	case VDISK_SUB_FIXED: return "fixed";
	case VDISK_SUB_DYNAMIC: return "dynamic";
	case VDISK_SUB_DIFFERENCING: return "differencing";
	default: return "";
	}
}

int vdisk_get_info(struct vdisk *d, struct vdisk_info *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	out->format = d->format;
	out->subformat = d->subformat;
	out->size_bytes = d->size_bytes;
	out->logical_sector_bytes = d->logical_sector_bytes;
	out->physical_sector_bytes = d->physical_sector_bytes;
	if (fstat(d->fd, &st) < 0)
		return vdisk_fail(errno, "%s: stat failed: %s", d->path, strerror(errno));
	out->file_bytes = (uint64_t)st.st_size;
	out->allocated_bytes = (uint64_t)st.st_blocks * 512;
	if (d->parent)
		snprintf(out->parent_path, sizeof(out->parent_path), "%s", d->parent->path);
	return d->ops->info ? d->ops->info(d, out) : 0;
}

/* ---- creation ---- */

int vdisk_create(const char *path, const struct vdisk_create_opts *opts, struct vdisk **out)
{
	struct vdisk_create_opts o = *opts;
	char parent[PATH_MAX];
	int r;

	if (o.format == VDISK_FORMAT_AUTO)
		return vdisk_fail(EINVAL, "%s: no format given for the new image", path);
	if (o.subformat == VDISK_SUB_DIFFERENCING) {
		if (!o.parent_path)
			return vdisk_fail(EINVAL, "%s: differencing image needs a parent", path);
		if (!realpath(o.parent_path, parent))
			return vdisk_fail(errno, "%s: parent %s: %s", path, o.parent_path,
					  strerror(errno));
		o.parent_path = parent;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return vdisk_fail(errno, "%s: cannot create: %s", path, strerror(errno));
	switch (o.format) {
	case VDISK_FORMAT_VHDX:
		r = vhdx_create(fd, path, &o);
		break;
	case VDISK_FORMAT_VHD:
		r = vhd_create(fd, path, &o);
		break;
	default:
		r = raw_create(fd, &o);
		break;
	}
	if (r == 0 && fsync(fd) < 0)
		r = vdisk_fail(errno, "%s: fsync failed: %s", path, strerror(errno));
	close(fd);
	if (r == 0)
		r = vdisk_open(path, VDISK_OPEN_RDWR |
			       (o.format == VDISK_FORMAT_RAW ? VDISK_OPEN_FORMAT_RAW : 0), out);
	if (r < 0) {
		char keep[sizeof(errmsg)];
		memcpy(keep, errmsg, sizeof(keep));
		unlink(path);
		memcpy(errmsg, keep, sizeof(keep));
	}
	return r;
}

/* ---- copy and compare ---- */

/* Write the non-zero 4 KiB grains of buf (len bytes destined for dst at off). */
static int write_nonzero(struct vdisk *dst, uint64_t off, const uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t g = len - i < VDISK_ZERO_GRAIN_BYTES ? len - i : VDISK_ZERO_GRAIN_BYTES;
		if (vdisk_buf_is_zero(buf + i, g)) {
			i += g;
			continue;
		}
		size_t start = i;
		while (i < len) {
			g = len - i < VDISK_ZERO_GRAIN_BYTES ? len - i : VDISK_ZERO_GRAIN_BYTES;
			if (vdisk_buf_is_zero(buf + i, g))
				break;
			i += g;
		}
		int r = vdisk_write(dst, off + start, buf + start, i - start);
		if (r < 0)
			return r;
	}
	return 0;
}

int vdisk_copy(struct vdisk *src, struct vdisk *dst, vdisk_progress_fn progress, void *opaque)
{
	uint64_t size = src->size_bytes, off = 0;
	int r = 0;

	if (dst->size_bytes != size)
		return vdisk_fail(EINVAL, "copy %s -> %s: sizes differ (%llu vs %llu bytes)",
				  src->path, dst->path, (unsigned long long)size,
				  (unsigned long long)dst->size_bytes);
	uint8_t *buf = malloc(VDISK_COPY_CHUNK_BYTES);
	if (!buf)
		return vdisk_fail(ENOMEM, "out of memory");
	while (off < size) {
		uint64_t run;
		unsigned state;
		r = vdisk_map(src, off, size - off, &run, &state);
		if (r < 0)
			break;
		for (uint64_t end = off + run; off < end && state == VDISK_EXTENT_DATA;) {
			/* Chunks end on chunk-size boundaries so writes stay block aligned. */
			uint64_t lim = (off / VDISK_COPY_CHUNK_BYTES + 1) * VDISK_COPY_CHUNK_BYTES;
			size_t n = (size_t)((lim < end ? lim : end) - off);
			r = vdisk_read(src, off, buf, n);
			if (r == 0)
				r = write_nonzero(dst, off, buf, n);
			if (r < 0)
				goto out;
			off += n;
			if (progress)
				progress(off, size, opaque);
		}
		off += state == VDISK_EXTENT_DATA ? 0 : run;
		if (progress)
			progress(off, size, opaque);
	}
	if (r == 0)
		r = vdisk_flush(dst);
out:
	free(buf);
	return r;
}

int vdisk_compare(struct vdisk *a, struct vdisk *b, uint64_t *first_diff,
		  vdisk_progress_fn progress, void *opaque)
{
	uint64_t size = a->size_bytes < b->size_bytes ? a->size_bytes : b->size_bytes;
	uint64_t off = 0;
	int r = 0;

	uint8_t *ba = malloc(VDISK_COPY_CHUNK_BYTES), *bb = malloc(VDISK_COPY_CHUNK_BYTES);
	if (!ba || !bb) {
		r = vdisk_fail(ENOMEM, "out of memory");
		goto out;
	}
	while (off < size) {
		uint64_t ra, rb;
		unsigned sa, sb;
		if ((r = vdisk_map(a, off, size - off, &ra, &sa)) < 0 ||
		    (r = vdisk_map(b, off, size - off, &rb, &sb)) < 0)
			goto out;
		uint64_t run = ra < rb ? ra : rb;
		if (sa == VDISK_EXTENT_ZERO && sb == VDISK_EXTENT_ZERO) {
			off += run;
			continue;
		}
		if (run > VDISK_COPY_CHUNK_BYTES)
			run = VDISK_COPY_CHUNK_BYTES;
		if ((r = vdisk_read(a, off, ba, run)) < 0 || (r = vdisk_read(b, off, bb, run)) < 0)
			goto out;
		if (memcmp(ba, bb, run)) {
			uint64_t i = 0;
			while (ba[i] == bb[i])
				i++;
			*first_diff = off + i;
			r = 1;
			goto out;
		}
		off += run;
		if (progress)
			progress(off, size, opaque);
	}
	if (a->size_bytes != b->size_bytes) {
		*first_diff = size;
		r = 1;
	}
out:
	free(ba);
	free(bb);
	return r;
}

/* ---- check ---- */

void vdisk_check_say(struct vdisk_checker *c, enum vdisk_check_severity sev, const char *fmt,
		     ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sev == VDISK_CHECK_ERROR)
		c->errors++;
	c->report(sev, msg, c->opaque);
}

int vdisk_check(const char *path, unsigned flags, vdisk_check_fn report, void *opaque)
{
	enum vdisk_format fmt;
	int r;

	int fd = open(path, ((flags & VDISK_CHECK_REPAIR) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "%s: cannot open: %s", path, strerror(errno));
	if (flock(fd, ((flags & VDISK_CHECK_REPAIR) ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		r = vdisk_fail(EBUSY, "%s: in use (another process holds a lock on it)", path);
		goto out;
	}
	r = probe_format(fd, path, &fmt);
	if (r < 0)
		goto out;
	switch (fmt) {
	case VDISK_FORMAT_VHDX:
		r = vhdx_check(fd, path, flags, report, opaque);
		break;
	case VDISK_FORMAT_VHD:
		r = vhd_check(fd, path, flags, report, opaque);
		break;
	default:
		report(VDISK_CHECK_INFO, "raw image: no structure to check", opaque);
		r = 0;
		break;
	}
out:
	close(fd);
	return r;
}
