/* partition/partition.h - genshift's partition-table library: MBR, EBR chains and GPT,
 * and the in-place MBR-to-GPT conversion with room for an EFI system partition.
 *
 * All disk I/O goes through a struct vdisk (vhdx/vdisk.h), so raw, VHD and VHDX images work
 * alike, with 512- or 4096-byte logical sectors. Conventions are the vdisk library's: 0 or
 * -errno, never print or exit; after a failure vdisk_errmsg() says what was wrong and where.
 * Corrupt tables are -EINVAL, a conversion that does not fit is -ENOSPC, something valid that
 * genshift will not handle is -ENOTSUP.
 *
 * Typical use:
 *   part_table_read(d, &t);                     what is on the disk
 *   part_plan_new(d, t, &opts, &plan);          what a conversion would write (no I/O writes)
 *   part_plan_apply(d, plan, undo_path, NULL);  write it, saving the original bytes first
 *   part_undo(d, undo_path);                    put the original bytes (and size) back
 */
#ifndef GENSHIFT_PARTITION_H
#define GENSHIFT_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhdx/vdisk.h"

struct json_object;

enum part_kind {
	PART_KIND_NONE = 0, /* neither an MBR signature nor a GPT: unpartitioned */
	PART_KIND_MBR,      /* MBR, possibly with an extended partition and logicals */
	PART_KIND_GPT,      /* GPT behind a protective MBR */
	PART_KIND_HYBRID,   /* GPT whose MBR has other entries beside the 0xEE one */
};

/* Partition numbers are 1..PART_MAX_NUMBER: MBR primaries 1-4, logicals 5 and up in chain
 * order (the Linux /dev/sdaN numbering), GPT entries their array slot + 1. The converted
 * GPT has PART_MAX_NUMBER entries, so numbers survive conversion unchanged. */
#define PART_MAX_NUMBER 128u
/* Most GPT entries read: 4096 x 128 bytes = 512 KiB of array. Tools write 128; a count far
 * beyond this is a corrupt or hostile header, not a real disk. */
#define PART_GPT_MAX_ENTRIES 4096u
#define PART_NAME_BYTES 112 /* a 36-unit UTF-16 GPT name as UTF-8, NUL-terminated */

struct part_entry {
	uint32_t number;
	uint64_t first_lba, last_lba; /* inclusive, in logical sectors */
	uint8_t mbr_type;             /* MBR entries; 0 for GPT entries */
	bool bootable;                /* MBR active flag (0x80) */
	bool is_logical;              /* MBR: inside the extended partition */
	uint8_t chs_first[3], chs_last[3]; /* MBR: the raw CHS bytes (informative only) */
	uint8_t type_guid[16];        /* GPT entries: on-disk (mixed-endian) byte order */
	uint8_t guid[16];             /* GPT unique partition GUID */
	uint64_t attributes;          /* GPT attribute bits */
	char name[PART_NAME_BYTES];   /* GPT name as UTF-8 ("" for MBR entries) */
};

struct part_extent {
	uint64_t first_lba, last_lba; /* inclusive */
};

/* What part_table_read() found. Everything is owned by the table. */
struct part_table {
	enum part_kind kind;
	uint32_t sector_bytes;
	uint64_t disk_sectors;
	uint8_t mbr[512];            /* first 512 bytes of LBA 0 as read */
	uint32_t mbr_disk_signature;
	bool mbr_has_boot_code;      /* bytes 0..439 of LBA 0 are not all zero */
	/* MBR only: the extended container (ext_number 0 = none) and every EBR, chain order. */
	uint32_t ext_number;
	uint64_t ext_first_lba, ext_last_lba;
	size_t n_ebrs;
	uint64_t *ebr_lbas;
	/* GPT and hybrid only. */
	uint8_t disk_guid[16];
	uint64_t first_usable_lba, last_usable_lba;
	uint32_t gpt_entry_count;
	bool gpt_primary_valid, gpt_backup_valid;
	uint64_t gpt_backup_lba;     /* where the backup header is (or belongs) */
	uint8_t *gpt_array;          /* entry array of the copy read, gpt_entry_count x 128 */
	/* Data partitions (never the extended container), sorted by number. */
	size_t n_entries;
	struct part_entry *entries;
	/* Unpartitioned runs: for GPT inside the usable range; for MBR from LBA 1 to the end,
	 * where EBR sectors count as used. */
	size_t n_free;
	struct part_extent *free;
	/* Non-fatal observations ("primary GPT header damaged (...); using the backup"). */
	size_t n_findings;
	char **findings;
};

/* Read and validate the partition table. Validation is strict: EBR loops, links outside the
 * extended partition, partitions past the disk end, overlaps, GPT headers with bad CRCs,
 * self-LBAs, usable ranges, entry sizes other than 128 or more than PART_GPT_MAX_ENTRIES
 * entries are -EINVAL with a message. A GPT whose primary or backup copy is damaged is read
 * from the good copy and the damage recorded in findings. *out is written only on success;
 * free it with part_table_free(). */
int part_table_read(struct vdisk *d, struct part_table **out);
void part_table_free(struct part_table *t);

const char *part_kind_name(enum part_kind k); /* "none", "mbr", "gpt", "hybrid" */
/* A human name for the entry's type ("Linux filesystem", "EFI system", "0x9f"); the returned
 * string is static or lives in buf. */
const char *part_type_name(const struct part_entry *e, char buf[32]);
/* The EFI system partition of a table (MBR type 0xEF or the ESP GUID), or NULL. Borrowed. */
const struct part_entry *part_table_find_esp(const struct part_table *t);

/* GUIDs as text: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" (upper case, as gdisk and sfdisk
 * print them) <-> on-disk mixed-endian bytes. part_guid_parse returns 0 or -EINVAL. */
void part_guid_to_str(const uint8_t guid[16], char out[37]);
int part_guid_parse(const char *s, uint8_t out[16]);

/* Rebuild the damaged copy of a GPT (t read from d, one copy valid) from the valid one: the
 * entry array byte for byte, the header with its own location fields. Writes the array,
 * then the header, then flushes. Returns 1 if a copy was rewritten, 0 if both were valid,
 * -EINVAL if t is no GPT or the damaged copy's place overlaps the usable range. */
int part_gpt_repair(struct vdisk *d, const struct part_table *t);

/* ---- conversion ---- */

#define PART_ESP_DEFAULT_BYTES (260ull << 20)
#define PART_ESP_MIN_BYTES_512 (100ull << 20) /* FAT32 minimum, 512-byte sectors */
#define PART_ESP_MIN_BYTES_4K (260ull << 20)  /* FAT32 minimum, 4096-byte sectors */
#define PART_MSR_BYTES (16ull << 20)
#define PART_ALIGN_BYTES (1ull << 20)

/* An extra MBR type -> GPT type mapping (overrides the built-in table). */
struct part_type_map {
	uint8_t mbr_type;
	uint8_t type_guid[16];
};

struct part_plan_opts {
	uint64_t esp_bytes;  /* 0 = PART_ESP_DEFAULT_BYTES; rounded up to PART_ALIGN_BYTES */
	bool add_msr;        /* also create a 16 MiB Microsoft reserved partition */
	bool allow_grow;     /* grow the virtual disk when the GPT or the ESP needs room */
	bool seeded;         /* derive GUIDs from seed (reproducible) instead of getrandom */
	uint64_t seed;
	const struct part_type_map *maps;
	size_t n_maps;
};

/* One write of whole sectors, in the order part_plan_apply performs them. */
struct part_write {
	uint64_t lba;
	uint32_t sectors;
	bool flush_after;  /* make everything so far durable before the next write */
	const char *what;  /* "backup GPT entries", ... (static string) */
	uint8_t *data;     /* sectors * sector_bytes bytes */
};

/* A byte range of the original disk that the undo file preserves. */
struct part_region {
	uint64_t offset_bytes, bytes;
};

/* Exactly what a conversion does: grow to new_size_bytes (if larger than old_size_bytes),
 * then perform writes[] in order. Nothing else is written. */
struct part_plan {
	uint32_t sector_bytes;
	uint64_t old_size_bytes, new_size_bytes;
	struct part_table *after;   /* the GPT as part_table_read will see it after apply */
	uint32_t esp_number;        /* the ESP's number in `after` (0: none) */
	bool esp_created;           /* false when an MBR 0xEF partition became the ESP */
	uint32_t msr_number;        /* 0: no MSR */
	size_t n_writes;
	struct part_write *writes;
	size_t n_saves;
	struct part_region *saves;  /* saved to the undo file before any write */
	size_t n_notes;
	char **notes;               /* things a person must know ("BIOS boot ... lost") */
	uint8_t orig_mbr[512];      /* apply refuses if LBA 0 changed since planning */
};

/* Plan the conversion of an MBR table t (read from d) to GPT. Reads d (to look for boot code
 * in the post-MBR gap) but never writes. -EEXIST if t already is GPT with an ESP, -ENOTSUP
 * for other GPT/hybrid or empty disks, -EINVAL for an unmapped MBR type, -ENOSPC when the
 * GPT or the ESP does not fit (the message says how many sectors are missing).
 * *out is written only on success; free with part_plan_free(). */
int part_plan_new(struct vdisk *d, const struct part_table *t, const struct part_plan_opts *o,
		  struct part_plan **out);
void part_plan_free(struct part_plan *p);

/* JSON descriptions for `--json` (NULL on allocation failure). The caller owns the result
 * (json_object_put). */
struct json_object *part_table_to_json(const struct part_table *t);
struct json_object *part_plan_to_json(const struct part_plan *p);

struct part_apply_opts {
	/* Called after each durable step (1 = undo file written, then the grow if any, then
	 * each flushed group of writes). Lets the CLI inject crashes in tests; may be NULL. */
	void (*after_step)(unsigned step, const char *what, void *opaque);
	void *opaque;
};

/* Carry out a plan on d (opened read-write; the same disk, unchanged since planning, else
 * -ESTALE). First writes the undo file at undo_path (must not exist: -EEXIST) and syncs it
 * and its directory, then grows the disk and writes in the plan's crash-safe order.
 * o may be NULL. */
int part_plan_apply(struct vdisk *d, const struct part_plan *p, const char *undo_path,
		    const struct part_apply_opts *o);

/* Restore the bytes saved in undo_path and the original disk size (data the conversion put
 * past the original end is discarded). The undo file is validated as hostile input; d must
 * be the disk it was made for (its size is the original or the converted one). */
int part_undo(struct vdisk *d, const char *undo_path);

#endif
