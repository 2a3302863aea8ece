/* vhdx/vhdx-int.h - internals of the VHDX backend shared by vhdx*.c; not public.
 *
 * Design in brief (the why of each choice is next to its code):
 * - Open validates in spec order: identifier, headers, log (replayed before anything else:
 *   into an in-memory overlay of 4 KiB pages for read-only opens, into the file for
 *   read-write ones), region tables (copy 2 if copy 1 is damaged), metadata, BAT geometry,
 *   then every BAT entry of the current size (offsets, overlap, EOF), then the parent.
 * - The BAT is never held whole: a 64-slot LRU of 4 KiB pages (256 KiB), so RSS stays
 *   bounded for any disk size.
 * - Writes: a new block is appended at the MiB-aligned end of the file, the payload is
 *   written, and the BAT entry changes only in the cached page. Dirty pages are committed
 *   together - fdatasync (payload durable), one log entry, fdatasync, pages in place,
 *   fdatasync - at flush, at close, or when 32 pages are dirty. Payload never goes
 *   through the log. Each entry is a complete sequence (Tail = itself).
 * - Differencing writes never produce PARTIALLY_PRESENT: a new block gets the parent's
 *   bytes around the write, and a PARTIALLY_PRESENT block (Windows-made) is turned into a
 *   FULLY_PRESENT one by copying the parent's sectors into it first. No sector bitmap is
 *   ever written.
 * - Log search follows spec 2.3.3; when it finds nothing but GUID-valid contiguous entries
 *   exist (a crash early in a new Windows session), the highest run is replayed and
 *   reported (vhdx_log_result.stale_tail, and by check).
 */
#ifndef GENSHIFT_VHDX_INT_H
#define GENSHIFT_VHDX_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "vdisk-int.h"
#include "vhdx-format.h"

/* Largest log we read into memory for replay (Hyper-V and qemu use 1 MiB). */
#define VHDX_MAX_LOG_BYTES (64u * VHDX_MIB)
/* BAT pages kept in memory: bounded RSS whatever the disk size (64 x 4 KiB). */
#define VHDX_BAT_CACHE_SLOTS 64u
#define VHDX_BAT_ENTRIES_PER_PAGE (VHDX_PAGE_BYTES / 8u)
/* Dirty BAT pages that force a log commit before more blocks are allocated. Kept below the
 * cache size so a commit never has to evict a dirty page, and small enough that one log
 * entry (1 descriptor sector + one data sector per page) fits a 1 MiB log. */
#define VHDX_MAX_DIRTY_PAGES 32u
/* Largest file we accept: 64 TiB of payload plus room for sector bitmaps and metadata. */
#define VHDX_MAX_FILE_BYTES (VHDX_MAX_DISK_BYTES + (1ull << 40))

/* A 4 KiB page (or a zeroed range) replayed in memory for a read-only open. Later entries
 * win over earlier ones. */
struct vhdx_overlay {
	uint64_t off;
	uint64_t len;  /* 4096 with data, any multiple of 4096 without */
	uint8_t *data; /* NULL: the range reads as zeros */
};

struct vhdx_bat_slot {
	uint64_t page; /* index of the 4 KiB page inside the BAT region */
	uint64_t last_use;
	bool valid;
	bool dirty; /* changed in memory, not yet committed through the log */
	uint8_t data[VHDX_PAGE_BYTES];
};

/* One 4 KiB metadata update for the log writer. */
struct vhdx_page {
	uint64_t off;
	const uint8_t *data;
};

/* What the log scan found (for info and check). */
struct vhdx_log_result {
	bool needed;           /* header LogGuid was non-zero */
	bool stale_tail;       /* replayed the highest contiguous run despite its Tail */
	unsigned entries;      /* entries replayed */
	unsigned descriptors;  /* descriptors applied */
	unsigned other_guid;   /* well-formed entries of other (stale) sessions ignored */
	uint64_t head_sequence;
};

struct vhdx_disk {
	struct vdisk base; /* must be first */

	uint64_t host_bytes;      /* size of the file on the host */
	uint64_t file_bytes;      /* logical file size (grows with in-memory replay) */
	uint8_t header[VHDX_HEADER_BYTES]; /* the current header */
	int current_header;       /* 0: copy at 64 KiB, 1: copy at 128 KiB */
	char header_note[256];    /* why that copy is current (for check) */
	char creator[64];

	uint64_t log_offset;
	uint32_t log_length;
	int region_copy;          /* 1 or 2: which region table copy was used */
	char region_note[256];    /* why copy 1 was not used */
	uint64_t bat_offset, bat_length;
	uint64_t meta_offset, meta_length;

	uint32_t block_bytes;
	bool leave_allocated, has_parent;
	uint32_t chunk_ratio;     /* payload blocks per sector bitmap block */
	uint64_t payload_blocks;
	uint64_t bat_entries;     /* entries the current size needs */
	uint64_t vds_item_off;    /* file offset of the VirtualDiskSize item */
	uint8_t disk_id[16];

	/* parent locator values (UTF-8), "" when absent */
	char parent_linkage[64], parent_linkage2[64];
	char parent_relative[1024], parent_absolute[1024], parent_volume[1024];

	struct vhdx_overlay *overlay;
	size_t overlay_count;
	enum vdisk_log_state log_state;
	struct vhdx_log_result log;

	struct vhdx_bat_slot *slots;
	unsigned last_slot;       /* slot of the most recent lookup */
	uint64_t clock;
	unsigned dirty_pages;

	uint64_t alloc_end;       /* MiB-aligned file offset where the next block goes */
	uint64_t allocated_bytes; /* FULLY/PARTIALLY_PRESENT payload bytes */

	/* write session: started by the first modification after open */
	bool session;
	bool data_unsynced;       /* payload written since the last fdatasync */
	uint8_t file_write_guid[16];
	uint8_t log_guid[16];
	uint64_t log_seq;
	uint32_t log_head;        /* offset inside the log of the next entry */
	uint8_t *block_buf;       /* VHDX_MIB scratch for differencing block copies */
};

/* crc32c.c: CRC-32C (Castagnoli). vhdx_crc32c_update takes and returns the raw register
 * (start with 0xFFFFFFFF, finish with ~). vhdx_checksum computes a VHDX checksum over buf
 * with the 4-byte field at field_off taken as zero. */
uint32_t vhdx_crc32c_update(uint32_t crc, const void *buf, size_t len);
uint32_t vhdx_crc32c(const void *buf, size_t len);
uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t field_off);

/* vhdx.c: file access through the replay overlay. vhdx_io_read fails on any byte past the
 * logical file end; vhdx_io_read_data reads such bytes as zeros (a short last block). */
int vhdx_io_read(struct vhdx_disk *v, uint64_t off, void *buf, size_t len);
int vhdx_io_read_data(struct vhdx_disk *v, uint64_t off, void *buf, size_t len);
int vhdx_sync(struct vhdx_disk *v);
int vhdx_header_update(struct vhdx_disk *v, const uint8_t log_guid[16]);
int vhdx_session_begin(struct vhdx_disk *v);
void vhdx_free(struct vhdx_disk *v);
int vhdx_open_parent(struct vhdx_disk *v);
/* Parse steps shared by open and check, in validation order. */
int vhdx_parse_file_id(struct vhdx_disk *v);
int vhdx_parse_headers(struct vhdx_disk *v);
int vhdx_parse_regions(struct vhdx_disk *v);
int vhdx_check_region_copy(struct vhdx_disk *v, int copy);
int vhdx_parse_metadata(struct vhdx_disk *v);
int vhdx_parse_geometry(struct vhdx_disk *v);
uint64_t vhdx_bat_entries_for(const struct vhdx_disk *v, uint64_t size_bytes);
bool vhdx_guid_is_zero(const uint8_t g[16]);

/* vhdx-log.c */
int vhdx_log_replay(struct vhdx_disk *v, bool into_file);
int vhdx_log_commit(struct vhdx_disk *v, const struct vhdx_page *pages, unsigned n);

/* vhdx-bat.c: BAT entries through a small page cache. bat_set marks the page dirty; dirty
 * pages reach the file only through vhdx_bat_commit (one log entry). */
uint64_t vhdx_bat_index(const struct vhdx_disk *v, uint64_t block);
int vhdx_bat_get(struct vhdx_disk *v, uint64_t index, uint64_t *entry);
int vhdx_bat_set(struct vhdx_disk *v, uint64_t index, uint64_t entry);
int vhdx_bat_commit(struct vhdx_disk *v);
/* Validate every BAT entry of the current size. report is called for each bad entry with
 * a message (check mode); without report the first bad entry fails with -EINVAL. Fills
 * v->allocated_bytes and v->alloc_end. Returns the number of bad entries or -errno. */
typedef void (*vhdx_bat_report_fn)(const char *msg, void *opaque);
int vhdx_bat_scan(struct vhdx_disk *v, vhdx_bat_report_fn report, void *opaque);

/* vhdx-write.c */
int vhdx_write(struct vdisk *d, uint64_t off, const void *buf, size_t len);
int vhdx_flush(struct vdisk *d);
int vhdx_resize(struct vdisk *d, uint64_t new_size);

#endif
