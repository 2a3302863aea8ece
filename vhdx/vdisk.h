/* vhdx/vdisk.h - genshift's virtual-disk library: one interface over raw, VHD and VHDX files.
 *
 * Everything in genshift that reads or writes a guest disk goes through a struct vdisk.
 * A vdisk is a flat array of bytes of vdisk_size_bytes(); the backend (raw, VHD fixed/
 * dynamic/differencing, VHDX fixed/dynamic/differencing) maps it onto the file.
 *
 * Conventions (see docs/ARCHITECTURE.md):
 * - Every function returns 0 (or a non-negative count) on success and -errno on failure.
 *   The library never prints and never exits. After a failure, vdisk_errmsg() returns a
 *   sentence saying what was wrong and where (file, field, offset, expected value). The
 *   message lives in thread-local storage until the next failing call on the same thread.
 * - Corrupt or hostile input is -EINVAL (bad structure), -ENOTSUP (valid but a feature we do
 *   not implement) or -EIO (short read/write); never a crash.
 * - Offsets and lengths are in bytes unless the name says otherwise. I/O must lie inside
 *   [0, vdisk_size_bytes()); it need not be sector aligned.
 */
#ifndef GENSHIFT_VDISK_H
#define GENSHIFT_VDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vdisk;

enum vdisk_format {
	VDISK_FORMAT_AUTO = 0, /* vdisk_open: probe the file's signatures */
	VDISK_FORMAT_RAW,
	VDISK_FORMAT_VHD,
	VDISK_FORMAT_VHDX,
};

enum vdisk_subformat {
	VDISK_SUB_NONE = 0, /* raw files */
	VDISK_SUB_FIXED,
	VDISK_SUB_DYNAMIC,
	VDISK_SUB_DIFFERENCING,
};

/* Flags for vdisk_open(). */
#define VDISK_OPEN_RDWR 0x1u       /* open for writing; without it the file is never modified */
#define VDISK_OPEN_NOLOCK 0x2u     /* skip the advisory flock (tests that open twice) */
#define VDISK_OPEN_VHD_CHS 0x4u    /* VHD: size from CHS geometry instead of current_size */
#define VDISK_OPEN_FORMAT_RAW 0x10u /* no probing: treat the file as raw */

/* Largest differencing chain we follow before declaring a loop or absurd depth. */
#define VDISK_MAX_CHAIN_DEPTH 32

/* Open an image. Probes the format (VHDX "vhdxfile" at 0, VHD "conectix" footer at the end
 * or at 0, otherwise raw). A read-only open never writes: a VHDX whose log needs replay is
 * replayed in memory (see vdisk_info.log_state); a read-write open replays it into the file.
 * Differencing parents are opened read-only, found through the child's locators, and their
 * identity checked (VHD unique id, VHDX DataWriteGuid). The file is flock()ed shared for
 * read-only and exclusive for read-write opens; a conflicting lock gives -EBUSY.
 * *out is written only on success. */
int vdisk_open(const char *path, unsigned flags, struct vdisk **out);

/* Flush (read-write opens), release everything. Returns the flush result; accepts NULL. */
int vdisk_close(struct vdisk *d);

int vdisk_read(struct vdisk *d, uint64_t offset, void *buf, size_t len);
int vdisk_write(struct vdisk *d, uint64_t offset, const void *buf, size_t len);
/* Make every completed write durable (fdatasync of data, then metadata in crash-safe order). */
int vdisk_flush(struct vdisk *d);

uint64_t vdisk_size_bytes(const struct vdisk *d);
uint32_t vdisk_logical_sector_bytes(const struct vdisk *d);
uint32_t vdisk_physical_sector_bytes(const struct vdisk *d);
enum vdisk_format vdisk_format(const struct vdisk *d);
enum vdisk_subformat vdisk_subformat(const struct vdisk *d);
const char *vdisk_path(const struct vdisk *d);
const char *vdisk_format_name(enum vdisk_format f);       /* "raw", "vhd", "vhdx" */
const char *vdisk_subformat_name(enum vdisk_subformat s); /* "", "fixed", ... */

/* Allocation query for sparse-aware copying. Describes the run starting at offset (at most
 * max_len bytes, clipped to the disk end): *run_len gets its length (> 0) and *state one of
 * VDISK_EXTENT_*. DATA may still contain zeros; ZERO is guaranteed to read as zeros.
 * For differencing disks the answer is for the whole chain (a block absent in the child but
 * present in the parent is DATA). */
#define VDISK_EXTENT_DATA 0u
#define VDISK_EXTENT_ZERO 1u
int vdisk_map(struct vdisk *d, uint64_t offset, uint64_t max_len, uint64_t *run_len,
	      unsigned *state);

/* Change the virtual size (read-write opens). Growing keeps all data; shrinking is refused
 * with -ENOSPC if any allocated data lies past the new end (the message says where).
 * new_size must be a multiple of the logical sector size. */
int vdisk_resize(struct vdisk *d, uint64_t new_size_bytes);

enum vdisk_log_state {
	VDISK_LOG_CLEAN = 0,     /* no log to replay (or not a VHDX) */
	VDISK_LOG_REPLAYED_MEMORY, /* read-only open: replayed in memory, file untouched */
	VDISK_LOG_REPLAYED_FILE, /* read-write open: replayed into the file */
};

/* Descriptive facts about an open disk; strings are NUL-terminated, "" when not applicable. */
struct vdisk_info {
	enum vdisk_format format;
	enum vdisk_subformat subformat;
	uint64_t size_bytes;
	uint64_t file_bytes; /* size of this file on the host */
	uint32_t logical_sector_bytes;
	uint32_t physical_sector_bytes;
	uint32_t block_bytes;     /* VHD/VHDX block size; 0 for raw */
	uint64_t allocated_bytes; /* bytes of this file's own allocated blocks (raw: file size) */
	char creator[64];         /* VHDX creator string / VHD creator app+version */
	char disk_id[40];         /* VHDX VirtualDiskId / VHD unique id, as a GUID string */
	char data_write_guid[40]; /* VHDX only */
	char parent_path[4096];   /* resolved parent file, differencing only */
	enum vdisk_log_state log_state;
	uint32_t chs_cylinders, chs_heads, chs_sectors; /* VHD only */
	uint64_t vhd_current_size_bytes, vhd_chs_size_bytes; /* VHD only: both size readings */
};
int vdisk_get_info(struct vdisk *d, struct vdisk_info *out);
/* The parent of a differencing disk (borrowed; lives as long as d), or NULL. */
struct vdisk *vdisk_parent(const struct vdisk *d);

/* ---- creation ---- */
struct vdisk_create_opts {
	enum vdisk_format format; /* RAW, VHD or VHDX */
	enum vdisk_subformat subformat;
	uint64_t size_bytes;     /* ignored for differencing (taken from the parent) */
	uint32_t block_bytes;    /* 0 = format default (VHDX 32 MiB, VHD 2 MiB) */
	uint32_t logical_sector_bytes;  /* VHDX: 512 or 4096; 0 = 512 */
	uint32_t physical_sector_bytes; /* VHDX: 512 or 4096; 0 = 4096 (Hyper-V default) */
	const char *parent_path; /* differencing only */
	bool vhd_chs_round;      /* VHD: round the size up to CHS geometry (qemu-style) */
};
/* Create a new image at path (which must not exist: -EEXIST) and open it read-write. */
int vdisk_create(const char *path, const struct vdisk_create_opts *opts, struct vdisk **out);

/* ---- whole-disk operations ---- */
typedef void (*vdisk_progress_fn)(uint64_t done_bytes, uint64_t total_bytes, void *opaque);

/* Copy every byte of src into dst (same size, dst freshly created or all-zero). Only
 * allocated, non-zero data is written, so dst stays sparse. Memory use is bounded (one
 * copy buffer). progress may be NULL. */
int vdisk_copy(struct vdisk *src, struct vdisk *dst, vdisk_progress_fn progress, void *opaque);

/* Compare contents. Returns 0 if identical, 1 if different (with *first_diff set to the
 * first differing byte offset, or to the smaller size if sizes differ), -errno on error. */
int vdisk_compare(struct vdisk *a, struct vdisk *b, uint64_t *first_diff, vdisk_progress_fn
		  progress, void *opaque);

/* ---- structural check ---- */
enum vdisk_check_severity { VDISK_CHECK_INFO, VDISK_CHECK_WARN, VDISK_CHECK_ERROR };
typedef void (*vdisk_check_fn)(enum vdisk_check_severity sev, const char *msg, void *opaque);
#define VDISK_CHECK_REPAIR 0x1u /* replay a pending VHDX log into the file */
/* Verify the file's structures (headers, checksums, tables, block placement and overlap,
 * parent linkage) and report each finding through report. Returns the number of ERROR
 * findings (0 = clean), or -errno if the file could not be examined at all. */
int vdisk_check(const char *path, unsigned flags, vdisk_check_fn report, void *opaque);

/* ---- helpers for the modules built on vdisk (partition/, vmm/) ----
 * One error facility serves the whole program: modules above vdisk record their failures
 * with vdisk_fail(), so the command line prints vdisk_errmsg() whichever module failed. */

/* Record a failure message (printf-style) for vdisk_errmsg() and return -err. */
int vdisk_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Full pread/pwrite on a host file: a short transfer is -EIO with a message naming path and
 * offset. */
int vdisk_pread(int fd, const char *path, void *buf, size_t len, uint64_t off);
int vdisk_pwrite(int fd, const char *path, const void *buf, size_t len, uint64_t off);

/* GUIDs in Microsoft binary form (Data1..3 little-endian) and as "xxxxxxxx-xxxx-..." text;
 * random ones are version 4. */
void vdisk_guid_to_str(const uint8_t guid[16], char out[40]);
int vdisk_guid_random(uint8_t guid[16]);
bool vdisk_buf_is_zero(const void *buf, size_t len);

/* Human-readable description of the last failure on this thread. */
const char *vdisk_errmsg(void);

#endif
