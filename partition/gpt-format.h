/* partition/gpt-format.h - on-disk layout of the GUID Partition Table.
 *
 * Source: UEFI 2.10 §5.3 "GUID Partition Table (GPT) Disk Layout": §5.3.2 GPT header
 * (Table 5-5), §5.3.3 GPT partition entry array (Table 5-6), attribute bits (Table 5-7).
 * All integers are little-endian; GUIDs are in the mixed-endian EFI_GUID byte order.
 * The structs only document offsets: code accesses fields through GPT_HDR()/GPT_ENT()
 * offsets and the get_le/put_le helpers, never by casting a buffer.
 */
#ifndef GENSHIFT_GPT_FORMAT_H
#define GENSHIFT_GPT_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

struct gpt_header {
	uint8_t signature[8];        /* 0x00: "EFI PART" */
	uint8_t revision[4];         /* 0x08: 0x00010000 */
	uint8_t header_bytes[4];     /* 0x0C: >= 92, <= logical block size */
	uint8_t header_crc32[4];     /* 0x10: CRC32 of header_bytes bytes with this field 0 */
	uint8_t reserved[4];         /* 0x14: must be zero */
	uint8_t my_lba[8];           /* 0x18: LBA holding this header */
	uint8_t alternate_lba[8];    /* 0x20: LBA of the other header */
	uint8_t first_usable_lba[8]; /* 0x28 */
	uint8_t last_usable_lba[8];  /* 0x30: inclusive */
	uint8_t disk_guid[16];       /* 0x38 */
	uint8_t entries_lba[8];      /* 0x48: start of this copy's entry array */
	uint8_t entry_count[4];      /* 0x50 */
	uint8_t entry_bytes[4];      /* 0x54: 128 * 2^n per spec; genshift accepts 128 only */
	uint8_t entries_crc32[4];    /* 0x58: CRC32 of entry_count * entry_bytes bytes */
};
static_assert(sizeof(struct gpt_header) == 92, "GPT header is 92 bytes (UEFI Table 5-5)");

struct gpt_entry {
	uint8_t type_guid[16];   /* 0x00: all zero = unused entry */
	uint8_t unique_guid[16]; /* 0x10 */
	uint8_t first_lba[8];    /* 0x20 */
	uint8_t last_lba[8];     /* 0x28: inclusive */
	uint8_t attributes[8];   /* 0x30: bit 0 platform required, 2 legacy BIOS bootable */
	uint8_t name[72];        /* 0x38: 36 UTF-16LE code units, NUL padded */
};
static_assert(sizeof(struct gpt_entry) == 128, "GPT entry is 128 bytes (UEFI Table 5-6)");

#define GPT_HDR(field) offsetof(struct gpt_header, field)
#define GPT_ENT(field) offsetof(struct gpt_entry, field)

#define GPT_SIGNATURE "EFI PART"
#define GPT_REVISION_1_0 0x00010000u
#define GPT_HEADER_BYTES 92u
#define GPT_ENTRY_BYTES 128u
#define GPT_NAME_UNITS 36u
/* What every tool writes, and what the UEFI spec's minimum array size (16 KiB) amounts to. */
#define GPT_DEFAULT_ENTRIES 128u

#endif
