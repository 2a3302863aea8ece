/* partition/part-int.h - internals shared by the partition module's files; not public. */
#ifndef GENSHIFT_PART_INT_H
#define GENSHIFT_PART_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "partition/gpt-format.h"
#include "partition/partition.h"
#include "include/byteorder.h"
#include "vhdx/vdisk.h"

/* Findings and notes are capped: a hostile table must not grow them without bound. */
#define PART_MAX_NOTES 64u
/* Bytes of GPT entry array genshift writes: 128 entries x 128 bytes (UEFI's 16 KiB minimum). */
#define PART_GPT_ARRAY_BYTES (GPT_DEFAULT_ENTRIES * GPT_ENTRY_BYTES)

uint32_t part_crc32(const void *buf, size_t len);

/* Append a printf-formatted line to a list (silently dropped past PART_MAX_NOTES). */
int part_note_add(char ***list, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void part_notes_free(char **list, size_t n);

int part_table_add_entry(struct part_table *t, const struct part_entry *e);
void part_table_sort(struct part_table *t);
/* Reject overlapping data partitions with a message naming both. */
int part_check_overlaps(const struct part_table *t);
/* Recompute t->free: runs of [lo, hi] covered by no entry (and, if with_ebrs, no EBR). */
int part_compute_free(struct part_table *t, uint64_t lo, uint64_t hi, bool with_ebrs);

/* MBR and EBR chain (t->mbr already holds LBA 0). */
int mbr_read(struct vdisk *d, struct part_table *t);
/* A protective MBR (UEFI §5.2.3) in sector (sector_bytes long): orig's boot code is kept,
 * one 0xEE entry covers LBA 1 to the end (capped at 0xFFFFFFFF sectors). */
void mbr_build_protective(uint8_t *sector, uint32_t sector_bytes, const uint8_t orig[512],
			  uint64_t disk_sectors);

/* GPT: -ENODATA when neither LBA 1 nor the last LBA holds a GPT signature. */
int gpt_read(struct vdisk *d, struct part_table *t);
/* Does LBA 1 start with "EFI PART"? (for the "stale GPT behind an MBR" finding) */
bool gpt_signature_at_lba1(struct vdisk *d, uint32_t sector_bytes);
/* Build the GPT of t (kind GPT, PART_MAX_NUMBER-entry array): the array
 * (array_sectors long) and the primary and backup header sectors. Caller frees. */
int gpt_build(const struct part_table *t, uint8_t **array, uint8_t **primary_hdr,
	      uint8_t **backup_hdr);
uint64_t gpt_array_sectors(uint32_t sector_bytes);

/* Type table. */
struct part_type_info {
	uint8_t mbr_type;      /* 0 for GPT-only types */
	const char *guid;      /* text form */
	const char *name;      /* also the partition name given on conversion (as gdisk does) */
	uint64_t attributes;   /* set on conversion */
};
const struct part_type_info *part_type_by_mbr(uint8_t mbr_type);
const struct part_type_info *part_type_by_guid(const uint8_t guid[16]);
bool part_mbr_type_is_extended(uint8_t mbr_type);
extern const char PART_GUID_ESP[], PART_GUID_MSR[];

#endif
