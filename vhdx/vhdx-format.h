/* vhdx/vhdx-format.h - VHDX on-disk structures ([MS-VHDX] v8.0, sections cited per struct).
 *
 * The structs document the layout and give field offsets through offsetof(); code never
 * casts a buffer to them. Every integer is little-endian; GUIDs are in Microsoft binary
 * form (Data1..Data3 little-endian, Data4 as bytes), see /work/shared/docs/vhdx-format.md.
 */
#ifndef GENSHIFT_VHDX_FORMAT_H
#define GENSHIFT_VHDX_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define VHDX_KIB 1024u
#define VHDX_MIB (1024u * 1024u)
#define VHDX_PAGE_BYTES 4096u /* log and metadata update granularity */

/* ---- 2.1 header section: the first MiB ---- */
#define VHDX_FILE_ID_OFFSET 0
#define VHDX_HEADER1_OFFSET (64u * VHDX_KIB)
#define VHDX_HEADER2_OFFSET (128u * VHDX_KIB)
#define VHDX_REGION1_OFFSET (192u * VHDX_KIB)
#define VHDX_REGION2_OFFSET (256u * VHDX_KIB)
#define VHDX_HEADER_SECTION_BYTES VHDX_MIB

/* 2.2.1 File Type Identifier (64 KiB slot). */
struct vhdx_file_identifier {
	char signature[8];      /* 0: "vhdxfile" */
	uint16_t creator[256];  /* 8: UTF-16LE, diagnostic only */
	uint8_t reserved[65016]; /* 520 */
};
static_assert(sizeof(struct vhdx_file_identifier) == 65536, "file identifier is 64 KiB");
#define VHDX_FILE_SIGNATURE "vhdxfile"

/* 2.2.2 Header (4 KiB used of a 64 KiB slot; CRC-32C over the 4 KiB). */
struct vhdx_header {
	uint32_t signature;          /* 0: "head" */
	uint32_t checksum;           /* 4 */
	uint64_t sequence_number;    /* 8 */
	uint8_t file_write_guid[16]; /* 16 */
	uint8_t data_write_guid[16]; /* 32 */
	uint8_t log_guid[16];        /* 48: zero = no log to replay */
	uint16_t log_version;        /* 64: must be 0 */
	uint16_t version;            /* 66: must be 1 */
	uint32_t log_length;         /* 68: multiple of 1 MiB */
	uint64_t log_offset;         /* 72: multiple of 1 MiB, >= 1 MiB */
	uint8_t reserved[4016];      /* 80 */
};
static_assert(sizeof(struct vhdx_header) == 4096, "header is 4 KiB");
#define VHDX_HEADER_BYTES 4096u
#define VHDX_HEADER_SIGNATURE 0x64616568u /* "head" */
#define VHDX_HDR(f) offsetof(struct vhdx_header, f)

/* 2.2.3 Region table (64 KiB; CRC-32C over the 64 KiB). */
struct vhdx_region_table_header {
	uint32_t signature;   /* 0: "regi" */
	uint32_t checksum;    /* 4 */
	uint32_t entry_count; /* 8: <= 2047 */
	uint32_t reserved;    /* 12 */
};
static_assert(sizeof(struct vhdx_region_table_header) == 16, "region table header");
struct vhdx_region_table_entry {
	uint8_t guid[16];     /* 0 */
	uint64_t file_offset; /* 16: multiple of 1 MiB */
	uint32_t length;      /* 24: multiple of 1 MiB */
	uint32_t required;    /* 28: bit 0 */
};
static_assert(sizeof(struct vhdx_region_table_entry) == 32, "region table entry");
#define VHDX_REGION_TABLE_BYTES (64u * VHDX_KIB)
#define VHDX_REGION_SIGNATURE 0x69676572u /* "regi" */
#define VHDX_REGION_MAX_ENTRIES 2047u
#define VHDX_RTH(f) offsetof(struct vhdx_region_table_header, f)
#define VHDX_RTE(f) offsetof(struct vhdx_region_table_entry, f)

/* 2.3.1.1 Log entry header (first 64 bytes of the first descriptor sector). */
struct vhdx_log_entry_header {
	uint32_t signature;           /* 0: "loge" */
	uint32_t checksum;            /* 4: CRC-32C over the whole entry */
	uint32_t entry_length;        /* 8: multiple of 4 KiB */
	uint32_t tail;                /* 12: offset of the sequence's first entry */
	uint64_t sequence_number;     /* 16 */
	uint32_t descriptor_count;    /* 24 */
	uint32_t reserved;            /* 28 */
	uint8_t log_guid[16];         /* 32 */
	uint64_t flushed_file_offset; /* 48 */
	uint64_t last_file_offset;    /* 56 */
};
static_assert(sizeof(struct vhdx_log_entry_header) == 64, "log entry header");
#define VHDX_LOG_ENTRY_SIGNATURE 0x65676f6cu /* "loge" */
#define VHDX_LEH(f) offsetof(struct vhdx_log_entry_header, f)

/* 2.3.1.2 / 2.3.1.3 Zero and data descriptors (32 bytes, same field positions). */
struct vhdx_log_descriptor {
	uint32_t signature;       /* 0: "zero" or "desc" */
	uint32_t trailing_bytes;  /* 4: desc: update bytes 4092..4095; zero: reserved */
	uint64_t leading_or_len;  /* 8: desc: update bytes 0..7; zero: ZeroLength */
	uint64_t file_offset;     /* 16: multiple of 4 KiB */
	uint64_t sequence_number; /* 24 */
};
static_assert(sizeof(struct vhdx_log_descriptor) == 32, "log descriptor");
#define VHDX_LOG_ZERO_SIGNATURE 0x6f72657au /* "zero" */
#define VHDX_LOG_DESC_SIGNATURE 0x63736564u /* "desc" */
#define VHDX_LD(f) offsetof(struct vhdx_log_descriptor, f)
#define VHDX_LOG_DESCRIPTORS_PER_SECTOR 128u /* the first holds the header + 126 */

/* 2.3.1.4 Data sector: carries bytes 8..4091 of one 4 KiB update. */
struct vhdx_log_data_sector {
	uint32_t signature;     /* 0: "data" */
	uint32_t sequence_high; /* 4 */
	uint8_t data[4084];     /* 8 */
	uint32_t sequence_low;  /* 4092 */
};
static_assert(sizeof(struct vhdx_log_data_sector) == 4096, "log data sector");
#define VHDX_LOG_DATA_SIGNATURE 0x61746164u /* "data" */
#define VHDX_LDS(f) offsetof(struct vhdx_log_data_sector, f)

/* 2.5 BAT entry: bits 0-2 state, 3-19 reserved, 20-63 FileOffsetMB. */
#define VHDX_BAT_STATE_MASK 0x7ull
#define VHDX_BAT_RESERVED_MASK 0xffff8ull
#define VHDX_BAT_OFFSET_MASK (~0xfffffull)
/* 2.5.1.1 payload block states (4 is reserved; 5 was UNMAPPED in the 0.95 draft). */
#define VHDX_BLOCK_NOT_PRESENT 0u
#define VHDX_BLOCK_UNDEFINED 1u
#define VHDX_BLOCK_ZERO 2u
#define VHDX_BLOCK_UNMAPPED 3u
#define VHDX_BLOCK_UNMAPPED_V095 5u
#define VHDX_BLOCK_FULLY_PRESENT 6u
#define VHDX_BLOCK_PARTIALLY_PRESENT 7u
/* 2.5.1.2 sector bitmap block states. */
#define VHDX_SB_NOT_PRESENT 0u
#define VHDX_SB_PRESENT 6u
#define VHDX_SB_BLOCK_BYTES VHDX_MIB
#define VHDX_CHUNK_SECTORS (1ull << 23) /* sectors covered by one sector bitmap block */

/* 2.6.1 Metadata table (first 64 KiB of the metadata region; no checksum). */
struct vhdx_metadata_table_header {
	char signature[8];    /* 0: "metadata" */
	uint16_t reserved;    /* 8 */
	uint16_t entry_count; /* 10: <= 2047 */
	uint8_t reserved2[20]; /* 12 */
};
static_assert(sizeof(struct vhdx_metadata_table_header) == 32, "metadata table header");
struct vhdx_metadata_table_entry {
	uint8_t item_id[16]; /* 0 */
	uint32_t offset;     /* 16: from region start, >= 64 KiB */
	uint32_t length;     /* 20: <= 1 MiB */
	uint32_t flags;      /* 24: bit0 IsUser, bit1 IsVirtualDisk, bit2 IsRequired */
	uint32_t reserved2;  /* 28 */
};
static_assert(sizeof(struct vhdx_metadata_table_entry) == 32, "metadata table entry");
#define VHDX_METADATA_SIGNATURE "metadata"
#define VHDX_METADATA_TABLE_BYTES (64u * VHDX_KIB)
#define VHDX_METADATA_MAX_ENTRIES 2047u
#define VHDX_MTE(f) offsetof(struct vhdx_metadata_table_entry, f)
#define VHDX_META_IS_USER 0x1u
#define VHDX_META_IS_VIRTUAL_DISK 0x2u
#define VHDX_META_IS_REQUIRED 0x4u

/* 2.6.2.1 File parameters item (8 bytes). */
#define VHDX_FP_LEAVE_BLOCK_ALLOCATED 0x1u
#define VHDX_FP_HAS_PARENT 0x2u

/* 2.6.2.6 Parent locator item. */
struct vhdx_parent_locator_header {
	uint8_t locator_type[16];  /* 0 */
	uint16_t reserved;         /* 16 */
	uint16_t key_value_count;  /* 18 */
};
static_assert(sizeof(struct vhdx_parent_locator_header) == 20, "parent locator header");
struct vhdx_parent_locator_entry {
	uint32_t key_offset;   /* 0: from the start of the item */
	uint32_t value_offset; /* 4 */
	uint16_t key_length;   /* 8: bytes of UTF-16LE, no terminator */
	uint16_t value_length; /* 10 */
};
static_assert(sizeof(struct vhdx_parent_locator_entry) == 12, "parent locator entry");

/* Limits from 2.6.2.1 (block size), 2.6.2.2 (virtual size). */
#define VHDX_MIN_BLOCK_BYTES (1u << 20)
#define VHDX_MAX_BLOCK_BYTES (256u << 20)
#define VHDX_MAX_DISK_BYTES (64ull << 40)

/* GUIDs in binary form, from their text form Data1-Data2-Data3-Data4. */
#define VHDX_GUID(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7)                              \
	{ (uint8_t)(d1), (uint8_t)((d1) >> 8), (uint8_t)((d1) >> 16), (uint8_t)((d1) >> 24), \
	  (uint8_t)(d2), (uint8_t)((d2) >> 8), (uint8_t)(d3), (uint8_t)((d3) >> 8),         \
	  b0, b1, b2, b3, b4, b5, b6, b7 }
/* 2.2.3.1 regions */
#define VHDX_GUID_BAT VHDX_GUID(0x2DC27766, 0xF623, 0x4200, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08)
#define VHDX_GUID_METADATA VHDX_GUID(0x8B7CA206, 0x4790, 0x4B9A, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E)
/* 2.6.2 metadata items */
#define VHDX_GUID_FILE_PARAMETERS VHDX_GUID(0xCAA16737, 0xFA36, 0x4D43, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B)
#define VHDX_GUID_VIRTUAL_DISK_SIZE VHDX_GUID(0x2FA54224, 0xCD1B, 0x4876, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8)
#define VHDX_GUID_VIRTUAL_DISK_ID VHDX_GUID(0xBECA12AB, 0xB2E6, 0x4523, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46)
#define VHDX_GUID_LOGICAL_SECTOR VHDX_GUID(0x8141BF1D, 0xA96F, 0x4709, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F)
#define VHDX_GUID_PHYSICAL_SECTOR VHDX_GUID(0xCDA348C7, 0x445D, 0x4471, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56)
#define VHDX_GUID_PARENT_LOCATOR VHDX_GUID(0xA8D35F2D, 0xB30B, 0x454D, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C)
/* 2.6.2.6.1 VHDX parent locator type */
#define VHDX_GUID_LOCATOR_VHDX VHDX_GUID(0xB04AEFB7, 0xD19E, 0x4A81, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13)

#endif
