/* bootfix/nvram-format.h - on-disk layout of an OVMF variable store file (OVMF_VARS*.fd).
 *
 * Sources (tianocore/edk2; facts checked against Debian's files in ../shared/docs/bootfix.md §1):
 * - MdePkg/Include/Pi/PiFirmwareVolume.h: EFI_FIRMWARE_VOLUME_HEADER, EFI_FV_BLOCK_MAP_ENTRY
 *   (PI 1.7 vol. 3 §3.2.1).
 * - MdeModulePkg/Include/Guid/VariableFormat.h: VARIABLE_STORE_HEADER,
 *   AUTHENTICATED_VARIABLE_HEADER, the VAR_* state values.
 * - MdeModulePkg/Include/Guid/SystemNvDataGuid.h: EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER,
 *   EFI_FAULT_TOLERANT_WRITE_HEADER, EFI_FAULT_TOLERANT_WRITE_RECORD, FTW_VALID_STATE.
 * - OvmfPkg/Include/Fdf/VarStore.fdf.inc: the regions of the file (variable store, event
 *   log, FTW working block, FTW spare) and their sizes in the 2M and 4M builds.
 * Everything is little-endian; GUIDs are in EFI_GUID (mixed-endian) byte order. The structs
 * only document offsets: code reads fields through NV_*() offsets and get_le32()/put_le32() etc.
 */
#ifndef GENSHIFT_NVRAM_FORMAT_H
#define GENSHIFT_NVRAM_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the firmware volume header at offset 0 (PiFirmwareVolume.h) ---- */
struct nv_fv_header {
	uint8_t zero_vector[16];     /* 0x00 */
	uint8_t file_system_guid[16];/* 0x10: gEfiSystemNvDataFvGuid */
	uint8_t fv_length[8];        /* 0x20: the whole volume = the whole file */
	uint8_t signature[4];        /* 0x28: "_FVH" */
	uint8_t attributes[4];       /* 0x2C */
	uint8_t header_length[2];    /* 0x30: 0x48 with one block-map entry + terminator */
	uint8_t checksum[2];         /* 0x32: 16-bit sum of the header_length bytes is 0 */
	uint8_t ext_header_offset[2];/* 0x34 */
	uint8_t reserved;            /* 0x36 */
	uint8_t revision;            /* 0x37: 2 */
	uint8_t block_map[8];        /* 0x38: {UINT32 NumBlocks, UINT32 Length}..., {0, 0} */
};
static_assert(sizeof(struct nv_fv_header) == 0x40, "FV header up to the block map");
#define NV_FV(field) offsetof(struct nv_fv_header, field)
#define NV_FV_SIGNATURE "_FVH"
#define NV_FV_BLOCK_MAP_ENTRY_BYTES 8u
/* A volume has a handful of block-map runs; more is a hostile header. */
#define NV_FV_MAX_BLOCK_MAP 16u

/* ---- VARIABLE_STORE_HEADER right after the FV header (VariableFormat.h) ---- */
struct nv_store_header {
	uint8_t signature[16];  /* 0x00: gEfiAuthenticatedVariableGuid */
	uint8_t size[4];        /* 0x10: this header + variables, without the FV header */
	uint8_t format;         /* 0x14: VARIABLE_STORE_FORMATTED 0x5A */
	uint8_t state;          /* 0x15: VARIABLE_STORE_HEALTHY 0xFE */
	uint8_t reserved[2];    /* 0x16 */
	uint8_t reserved1[4];   /* 0x18 */
};
static_assert(sizeof(struct nv_store_header) == 0x1C, "VARIABLE_STORE_HEADER is 28 bytes");
#define NV_STORE(field) offsetof(struct nv_store_header, field)
#define NV_STORE_FORMATTED 0x5Au
#define NV_STORE_HEALTHY 0xFEu

/* ---- AUTHENTICATED_VARIABLE_HEADER, packed (VariableFormat.h) ---- */
struct nv_var_header {
	uint8_t start_id[2];        /* 0x00: VARIABLE_DATA 0x55AA; anything else ends the list */
	uint8_t state;              /* 0x02: VAR_* below */
	uint8_t reserved;           /* 0x03 */
	uint8_t attributes[4];      /* 0x04: EFI_VARIABLE_* */
	uint8_t monotonic_count[8]; /* 0x08 */
	uint8_t timestamp[16];      /* 0x10: EFI_TIME, time-based authenticated variables */
	uint8_t pubkey_index[4];    /* 0x20 */
	uint8_t name_size[4];       /* 0x24: bytes of UCS-2 name including its NUL */
	uint8_t data_size[4];       /* 0x28 */
	uint8_t vendor_guid[16];    /* 0x2C */
	/* 0x3C: CHAR16 Name[name_size / 2], UINT8 Data[data_size], 0xFF up to a 4-byte boundary */
};
static_assert(sizeof(struct nv_var_header) == 0x3C, "AUTHENTICATED_VARIABLE_HEADER is 60 bytes");
#define NV_VAR(field) offsetof(struct nv_var_header, field)
#define NV_VAR_START_ID 0x55AAu
/* HEADER_ALIGNMENT on x64: the next header starts at the next multiple of 4. */
#define NV_VAR_ALIGN 4u

/* States: flash bits are only ever cleared, so a state is the AND of the transitions made. */
#define NV_VAR_HEADER_VALID_ONLY 0x7Fu
#define NV_VAR_ADDED 0x3Fu
#define NV_VAR_IN_DELETED_TRANSITION 0xFEu
#define NV_VAR_DELETED 0xFDu

/* Variable attributes (UEFI 2.10 §8.2 GetVariable). */
#define NV_ATTR_NON_VOLATILE 0x1u
#define NV_ATTR_BOOTSERVICE_ACCESS 0x2u
#define NV_ATTR_RUNTIME_ACCESS 0x4u

/* ---- the fault-tolerant-write working block (SystemNvDataGuid.h) ---- */
struct nv_ftw_working_header {
	uint8_t signature[16];       /* 0x00: gEdkiiWorkingBlockSignatureGuid (older builds:
				      * gEfiSystemNvDataFvGuid) */
	uint8_t crc[4];              /* 0x10: CRC32 of the header with crc = 0xFFFFFFFF and
				      * the state byte 0xFF */
	uint8_t state;               /* 0x14: bit 0 WorkingBlockValid, bit 1 WorkingBlockInvalid;
				      * a bit is "true" when cleared (FTW_VALID_STATE 0) */
	uint8_t reserved[3];         /* 0x15 */
	uint8_t write_queue_size[8]; /* 0x18: bytes of write queue after this header */
};
static_assert(sizeof(struct nv_ftw_working_header) == 0x20, "FTW working block header is 32 bytes");
#define NV_FTW(field) offsetof(struct nv_ftw_working_header, field)

/* EFI_FAULT_TOLERANT_WRITE_HEADER: natural x64 alignment (no #pragma pack in edk2). */
struct nv_ftw_write_header {
	uint8_t state;                 /* 0x00: bit 0 HeaderAllocated, 1 WritesAllocated,
					* 2 Complete; a bit is "true" when cleared */
	uint8_t pad[3];                /* 0x01: EFI_GUID is 4-byte aligned */
	uint8_t caller_id[16];         /* 0x04 */
	uint8_t pad2[4];               /* 0x14: UINT64 is 8-byte aligned */
	uint8_t number_of_writes[8];   /* 0x18 */
	uint8_t private_data_size[8];  /* 0x20 */
};
static_assert(sizeof(struct nv_ftw_write_header) == 0x28, "FTW write header is 40 bytes");
#define NV_FTW_WH(field) offsetof(struct nv_ftw_write_header, field)
#define NV_FTW_WH_STATE 0x00u
#define NV_FTW_WH_BYTES 0x28u
#define NV_FTW_WR_STATE 0x00u
#define NV_FTW_WR_LBA 0x08u
#define NV_FTW_WR_BYTES 0x28u
#define NV_FTW_HEADER_ALLOCATED 0x1u /* bit cleared = allocated */
#define NV_FTW_COMPLETE 0x4u         /* bit cleared = complete */
#define NV_FTW_SPARE_COMPLETE 0x2u
#define NV_FTW_DEST_COMPLETE 0x4u

/* ---- regions after the variable store (VarStore.fdf.inc) ---- */
#define NV_EVENT_LOG_BYTES 0x1000u
#define NV_FTW_WORKING_BYTES 0x1000u

/* PcdMaxVariableSize / PcdMaxAuthVariableSize: header + name + data of one variable.
 * OvmfPkgX64.dsc: 0x8400 in the 4M build (store 0x40000), 0x2000 / 0x2800 in the 2M build. */
#define NV_MAX_VAR_BYTES_4M 0x8400u
#define NV_MAX_VAR_BYTES_2M 0x2000u
#define NV_MAX_AUTH_VAR_BYTES_2M 0x2800u
#define NV_STORE_BYTES_4M 0x40000u

/* ---- GUIDs, in on-disk byte order ---- */
/* gEfiSystemNvDataFvGuid FFF12B8D-7696-4C8B-A985-2747075B4F50 (FV FileSystemGuid; also the
 * FTW working block signature of older builds) */
#define NV_GUID_SYSTEM_NV_DATA_FV { 0x8D, 0x2B, 0xF1, 0xFF, 0x96, 0x76, 0x8B, 0x4C, \
				    0xA9, 0x85, 0x27, 0x47, 0x07, 0x5B, 0x4F, 0x50 }
/* gEfiAuthenticatedVariableGuid AAF32C78-947B-439A-A180-2E144EC37792 */
#define NV_GUID_AUTH_VARIABLE { 0x78, 0x2C, 0xF3, 0xAA, 0x7B, 0x94, 0x9A, 0x43, \
				0xA1, 0x80, 0x2E, 0x14, 0x4E, 0xC3, 0x77, 0x92 }
/* gEfiVariableGuid DDCF3616-3275-4164-98B6-FE85707FFE7D: the old store with 32-byte headers */
#define NV_GUID_VARIABLE { 0x16, 0x36, 0xCF, 0xDD, 0x75, 0x32, 0x64, 0x41, \
			   0x98, 0xB6, 0xFE, 0x85, 0x70, 0x7F, 0xFE, 0x7D }
/* gEdkiiWorkingBlockSignatureGuid 9E58292B-7C68-497D-A0CE-6500FD9F1B95 */
#define NV_GUID_WORKING_BLOCK { 0x2B, 0x29, 0x58, 0x9E, 0x68, 0x7C, 0x7D, 0x49, \
				0xA0, 0xCE, 0x65, 0x00, 0xFD, 0x9F, 0x1B, 0x95 }
/* EFI_GLOBAL_VARIABLE 8BE4DF61-93CA-11D2-AA0D-00E098032B8C (Boot####, BootOrder) */
#define NV_GUID_GLOBAL_VARIABLE { 0x61, 0xDF, 0xE4, 0x8B, 0xCA, 0x93, 0xD2, 0x11, \
				  0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C }

#endif
