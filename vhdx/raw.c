/* vhdx/raw.c - the raw backend: the file is the disk, byte for byte; holes are zeros. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdisk-int.h"

struct raw_disk {
	struct vdisk base;
};

static int raw_read(struct vdisk *d, uint64_t off, void *buf, size_t len)
{
	return vdisk_pread(d->fd, d->path, buf, len, off);
}

static int raw_write(struct vdisk *d, uint64_t off, const void *buf, size_t len)
{
	return vdisk_pwrite(d->fd, d->path, buf, len, off);
}

static int raw_flush(struct vdisk *d)
{
	if (fdatasync(d->fd) < 0)
		return vdisk_fail(errno, "%s: fdatasync failed: %s", d->path, strerror(errno));
	return 0;
}

/* Holes in the host file are the raw format's unallocated extents (SEEK_DATA/SEEK_HOLE). */
static int raw_map(struct vdisk *d, uint64_t off, uint64_t max_len, uint64_t *run_len,
		   unsigned *state)
{
	off_t data = lseek(d->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) { /* only a hole up to EOF */
		*state = VDISK_EXTENT_ZERO;
		*run_len = max_len;
		return 0;
	}
	if (data < 0) { /* file system without SEEK_DATA: everything is data */
		*state = VDISK_EXTENT_DATA;
		*run_len = max_len;
		return 0;
	}
	uint64_t end;
	if ((uint64_t)data > off) {
		*state = VDISK_EXTENT_ZERO;
		end = (uint64_t)data;
	} else {
		off_t hole = lseek(d->fd, (off_t)off, SEEK_HOLE);
		*state = VDISK_EXTENT_DATA;
		end = hole < 0 ? off + max_len : (uint64_t)hole;
	}
	*run_len = end - off < max_len ? end - off : max_len;
	return 0;
}

/* Shrinking drops bytes: refuse unless everything past the new end reads as zeros. Holes are
 * skipped; allocated extents are read, since a file system block may hold zeros only. */
static int raw_check_tail_zero(struct vdisk *d, uint64_t new_size)
{
	uint8_t buf[65536];
	uint64_t run;
	unsigned state;

	for (uint64_t off = new_size; off < d->size_bytes; off += run) {
		int r = raw_map(d, off, d->size_bytes - off, &run, &state);
		if (r < 0)
			return r;
		if (state == VDISK_EXTENT_ZERO)
			continue;
		run = run < sizeof(buf) ? run : sizeof(buf);
		r = raw_read(d, off, buf, run);
		if (r < 0)
			return r;
		if (!vdisk_buf_is_zero(buf, run))
			return vdisk_fail(ENOSPC, "%s: cannot shrink to %llu bytes: data is "
					  "allocated at offset %llu", d->path,
					  (unsigned long long)new_size, (unsigned long long)off);
	}
	return 0;
}

static int raw_resize(struct vdisk *d, uint64_t new_size)
{
	if (new_size < d->size_bytes) {
		int r = raw_check_tail_zero(d, new_size);
		if (r < 0)
			return r;
	}
	if (ftruncate(d->fd, (off_t)new_size) < 0)
		return vdisk_fail(errno, "%s: truncate to %llu bytes failed: %s", d->path,
				  (unsigned long long)new_size, strerror(errno));
	d->size_bytes = new_size;
	return 0;
}

static void raw_close(struct vdisk *d)
{
	free(d);
}

static const struct vdisk_ops raw_ops = {
	.name = "raw",
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.map = raw_map,
	.resize = raw_resize,
	.close = raw_close,
};

int raw_open(const struct vdisk *base, struct vdisk **out)
{
	struct stat st;

	if (fstat(base->fd, &st) < 0)
		return vdisk_fail(errno, "%s: stat failed: %s", base->path, strerror(errno));
	/* A block device's size comes from lseek; a regular file's from st_size. */
	uint64_t size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(base->fd, 0, SEEK_END);
		if (end < 0)
			return vdisk_fail(errno, "%s: cannot size device: %s", base->path,
					  strerror(errno));
		size = (uint64_t)end;
	}
	if (size % 512)
		return vdisk_fail(EINVAL, "%s: raw image size %llu is not a multiple of 512 bytes",
				  base->path, (unsigned long long)size);
	struct raw_disk *r = calloc(1, sizeof(*r));
	if (!r)
		return vdisk_fail(ENOMEM, "out of memory");
	r->base = *base;
	r->base.ops = &raw_ops;
	r->base.format = VDISK_FORMAT_RAW;
	r->base.subformat = VDISK_SUB_NONE;
	r->base.size_bytes = size;
	r->base.logical_sector_bytes = 512;
	r->base.physical_sector_bytes = 512;
	*out = &r->base;
	return 0;
}

int raw_create(int fd, const struct vdisk_create_opts *opts)
{
	if (opts->subformat == VDISK_SUB_DIFFERENCING)
		return vdisk_fail(EINVAL, "raw images cannot be differencing");
	if (opts->size_bytes == 0 || opts->size_bytes % 512)
		return vdisk_fail(EINVAL, "raw image size %llu is not a positive multiple of 512",
				  (unsigned long long)opts->size_bytes);
	if (ftruncate(fd, (off_t)opts->size_bytes) < 0)
		return vdisk_fail(errno, "cannot size the raw image: %s", strerror(errno));
	return 0;
}
