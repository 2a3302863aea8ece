/* vhdx/vdisk-int.h - internals shared by the vdisk backends (raw, VHD, VHDX); not public. */
#ifndef GENSHIFT_VDISK_INT_H
#define GENSHIFT_VDISK_INT_H

#include <stdint.h>
#include <string.h>

#include "include/byteorder.h"
#include "vdisk.h"

/* The backend contract. The generic layer (vdisk.c) has already checked that every
 * read/write/map range lies inside [0, size_bytes) and that writes/resizes happen only on
 * read-write opens, so backends need not repeat those checks. */
struct vdisk_ops {
	const char *name;
	int (*read)(struct vdisk *d, uint64_t off, void *buf, size_t len);
	int (*write)(struct vdisk *d, uint64_t off, const void *buf, size_t len);
	int (*flush)(struct vdisk *d);
	/* NULL means "everything is DATA". */
	int (*map)(struct vdisk *d, uint64_t off, uint64_t max_len, uint64_t *run_len,
		   unsigned *state);
	/* NULL means resize is not supported (-ENOTSUP). On success size_bytes is updated. */
	int (*resize)(struct vdisk *d, uint64_t new_size_bytes);
	/* Fill the format-specific parts of *out (generic fields are already filled). */
	int (*info)(struct vdisk *d, struct vdisk_info *out);
	/* Free the backend's state and the struct itself. Must not close base.fd or the parent:
	 * the generic layer does that afterwards. Called after a final flush. */
	void (*close)(struct vdisk *d);
};

/* Every backend struct embeds this first. */
struct vdisk {
	const struct vdisk_ops *ops;
	enum vdisk_format format;
	enum vdisk_subformat subformat;
	uint64_t size_bytes;
	uint32_t logical_sector_bytes;
	uint32_t physical_sector_bytes;
	unsigned flags;       /* VDISK_OPEN_* */
	int fd;               /* owned by the generic layer */
	char *path;           /* owned by the generic layer */
	struct vdisk *parent; /* owned by the generic layer once set by the backend */
	unsigned depth;       /* 0 for the disk the user opened, +1 per parent */
};

/* Backend entry points. `base` is pre-filled by the generic layer with fd, path, flags and
 * depth; the backend allocates its own struct (embedding struct vdisk first), copies *base
 * into it, fills the remaining fields and stores it in *out. On failure it must free what it
 * allocated but leave base->fd and base->path alone. */
int raw_open(const struct vdisk *base, struct vdisk **out);
int vhd_open(const struct vdisk *base, struct vdisk **out);
int vhdx_open(const struct vdisk *base, struct vdisk **out);

/* Creation: fd is a freshly created, empty, writable file (owned by the caller). The backend
 * lays out the image in it; the generic layer then opens it through *_open. For
 * differencing, opts->parent_path has been resolved to a usable path. */
int raw_create(int fd, const struct vdisk_create_opts *opts);
int vhd_create(int fd, const char *path, const struct vdisk_create_opts *opts);
int vhdx_create(int fd, const char *path, const struct vdisk_create_opts *opts);

/* A structural check in progress: each finding goes to report; errors are counted. */
struct vdisk_checker {
	vdisk_check_fn report;
	void *opaque;
	int errors;
};
void vdisk_check_say(struct vdisk_checker *c, enum vdisk_check_severity sev, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

/* Structural checks on an already opened fd (read-only unless VDISK_CHECK_REPAIR). */
int vhd_check(int fd, const char *path, unsigned flags, vdisk_check_fn report, void *opaque);
int vhdx_check(int fd, const char *path, unsigned flags, vdisk_check_fn report, void *opaque);

/* Open a differencing parent read-only at depth child->depth + 1 (refuses past
 * VDISK_MAX_CHAIN_DEPTH with -ELOOP). */
int vdisk_open_parent(const struct vdisk *child, const char *parent_path, struct vdisk **out);

/* Resolve a parent locator path relative to the child's directory. Accepts Windows
 * separators ('\\') and strips a leading ".\\". Writes at most outlen bytes. */
int vdisk_resolve_relative(const char *child_path, const char *rel, char *out, size_t outlen);

#endif
