/* vhdx/vhd-format.h - on-disk layout of legacy VHD files, and helpers shared by vhd*.c.
 *
 * Source: Microsoft "Virtual Hard Disk Image Format Specification" 1.0 (Oct 2006), and the
 * project notes in shared/docs/vhdx-format.md section 2. Every multi-byte field is
 * BIG-endian; read and write them with get_be32()/put_be32() etc. at the offsets below.
 * The structs only document the layout (byte arrays, no padding); never cast a buffer to
 * them.
 */
#ifndef GENSHIFT_VHD_FORMAT_H
#define GENSHIFT_VHD_FORMAT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdisk-int.h"

#define VHD_SECTOR_BYTES 512u

/* ---- Hard disk footer (spec "Hard Disk Footer Format"), 512 bytes ----
 * Fixed disks: at the end of the file only. Dynamic/differencing: at the end and a copy
 * at offset 0. */
struct vhd_footer_layout {
	uint8_t cookie[8];            /*   0 "conectix" */
	uint8_t features[4];          /*   8 bit 1 reserved, always set; bit 0 temporary */
	uint8_t version[4];           /*  12 0x00010000 */
	uint8_t data_offset[8];       /*  16 dynamic header offset; fixed: all ones */
	uint8_t timestamp[4];         /*  24 seconds since 2000-01-01 00:00:00 UTC */
	uint8_t creator_app[4];       /*  28 "vpc ", "win ", "qemu", "d2v\0", ... */
	uint8_t creator_version[4];   /*  32 major << 16 | minor */
	uint8_t creator_os[4];        /*  36 "Wi2k" or "Mac " */
	uint8_t original_size[8];     /*  40 bytes at creation */
	uint8_t current_size[8];      /*  48 bytes now (the virtual size for Hyper-V) */
	uint8_t geometry[4];          /*  56 cylinders u16, heads u8, sectors/track u8 */
	uint8_t disk_type[4];         /*  60 2 fixed, 3 dynamic, 4 differencing */
	uint8_t checksum[4];          /*  64 one's complement of the byte sum, field zeroed */
	uint8_t unique_id[16];        /*  68 UUID in RFC (big-endian) byte order */
	uint8_t saved_state;          /*  84 */
	uint8_t reserved[427];        /*  85 zeros */
};
static_assert(sizeof(struct vhd_footer_layout) == 512, "VHD footer is 512 bytes");
#define VHD_FOOTER_BYTES 512u
#define VHD_FTR(field) offsetof(struct vhd_footer_layout, field)

#define VHD_COOKIE "conectix"
#define VHD_FEATURES_RESERVED 0x00000002u
#define VHD_VERSION_1_0 0x00010000u
#define VHD_DISK_FIXED 2u
#define VHD_DISK_DYNAMIC 3u
#define VHD_DISK_DIFFERENCING 4u
#define VHD_FIXED_DATA_OFFSET UINT64_MAX /* qemu and Windows write all 64 bits set */
#define VHD_OS_WINDOWS 0x5769326bu       /* "Wi2k" */
/* Our creator code. Deliberately neither "vpc " nor "qemu", so that qemu >= 10 (and
 * Hyper-V, libvhdi) size our files by current_size, not by CHS. */
#define VHD_CREATOR_APP "gnsh"
#define VHD_CREATOR_VERSION 0x00010000u
/* Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH_UNIX 946684800u

/* ---- Dynamic disk header (spec "Dynamic Disk Header Format"), 1024 bytes ---- */
struct vhd_locator_layout {
	uint8_t platform_code[4];     /*   0 "W2ku", "W2ru", "MacX", ... ; 0 = unused */
	uint8_t data_space[4];        /*   4 bytes reserved in the file (Windows; see §2.6) */
	uint8_t data_length[4];       /*   8 bytes of locator text */
	uint8_t reserved[4];          /*  12 */
	uint8_t data_offset[8];       /*  16 file offset of the locator text */
};
static_assert(sizeof(struct vhd_locator_layout) == 24, "VHD parent locator is 24 bytes");

struct vhd_dyn_header_layout {
	uint8_t cookie[8];            /*    0 "cxsparse" */
	uint8_t data_offset[8];       /*    8 unused, all ones */
	uint8_t table_offset[8];      /*   16 file offset of the BAT */
	uint8_t header_version[4];    /*   24 0x00010000 */
	uint8_t max_table_entries[4]; /*   28 BAT entries */
	uint8_t block_size[4];        /*   32 bytes of data per block (2 MiB default) */
	uint8_t checksum[4];          /*   36 as the footer's, over 1024 bytes */
	uint8_t parent_unique_id[16]; /*   40 the parent footer's unique_id */
	uint8_t parent_timestamp[4];  /*   56 parent modification time, VHD epoch */
	uint8_t reserved1[4];         /*   60 */
	uint8_t parent_name[512];     /*   64 UTF-16BE */
	struct vhd_locator_layout locators[8]; /* 576 */
	uint8_t reserved2[256];       /*  768 */
};
static_assert(sizeof(struct vhd_dyn_header_layout) == 1024, "VHD dynamic header is 1 KiB");
#define VHD_DYN_HEADER_BYTES 1024u
#define VHD_DYN(field) offsetof(struct vhd_dyn_header_layout, field)
#define VHD_DYN_LOCATOR(i) (VHD_DYN(locators) + (size_t)(i) * sizeof(struct vhd_locator_layout))
#define VHD_LOC(field) offsetof(struct vhd_locator_layout, field)
#define VHD_LOCATOR_COUNT 8u

#define VHD_DYN_COOKIE "cxsparse"
#define VHD_PLATFORM_W2KU 0x57326b75u /* "W2ku": absolute Windows path, UTF-16LE */
#define VHD_PLATFORM_W2RU 0x57327275u /* "W2ru": relative Windows path, UTF-16LE */
#define VHD_PLATFORM_MACX 0x4d616358u /* "MacX": file URL, UTF-8 */

/* BAT: u32 big-endian sector numbers of each block's sector bitmap. */
#define VHD_BAT_UNUSED 0xffffffffu

/* ---- limits (our decisions; see vhd.c for the reasons) ---- */
/* qemu c23fb11bbb: 0xFF000000 sectors = 2040 GiB, the most a VHD can address safely. */
#define VHD_MAX_SIZE_BYTES (0xff000000ull * VHD_SECTOR_BYTES)
#define VHD_MIN_BLOCK_BYTES 4096u
#define VHD_MAX_BLOCK_BYTES (256u << 20)
#define VHD_DEFAULT_BLOCK_BYTES (2u << 20)
/* Caps the in-memory BAT at 64 MiB (2 MiB blocks: 32 TiB, far past the 2040 GiB limit). */
#define VHD_MAX_TABLE_ENTRIES (1u << 24)
/* The largest CHS product (65535 * 16 * 255 sectors, about 127 GiB). */
#define VHD_CHS_MAX_SECTORS (65535ull * 16 * 255)

/* ---- parsed forms (host byte order) and helpers shared by vhd.c, vhd-create.c and
 * vhd-check.c ---- */
struct vhd_footer {
	uint32_t features, version;
	uint64_t data_offset;
	uint32_t timestamp;
	uint8_t creator_app[4];
	uint32_t creator_version, creator_os;
	uint64_t original_size, current_size;
	uint16_t cylinders;
	uint8_t heads, sectors_per_track;
	uint32_t disk_type, checksum;
	uint8_t unique_id[16];
	uint8_t saved_state;
};

struct vhd_locator {
	uint32_t code, data_space, data_length;
	uint64_t data_offset;
};

struct vhd_dyn_header {
	uint64_t table_offset;
	uint32_t header_version, max_table_entries, block_bytes, checksum;
	uint8_t parent_unique_id[16];
	uint32_t parent_timestamp;
	uint8_t parent_name[512]; /* raw UTF-16BE */
	struct vhd_locator locators[VHD_LOCATOR_COUNT];
};

/* One's complement of the byte sum of buf with the 4-byte checksum field at csum_off
 * counted as zero (spec: footer and dynamic header use the same algorithm). */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* Parse and validate a footer (cookie, checksum, version, disk type, data offset). `where`
 * names the copy in messages ("footer at offset N"). Returns 0 or -EINVAL/-ENOTSUP. */
int vhd_footer_parse(const uint8_t buf[VHD_FOOTER_BYTES], const char *path, uint64_t where,
		     struct vhd_footer *out);
void vhd_footer_build(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_BYTES]);

/* Parse and validate a dynamic header's own fields (cookie, checksum, version, block size,
 * table entry count bounds). Table placement is checked by the caller against the file. */
int vhd_dyn_header_parse(const uint8_t buf[VHD_DYN_HEADER_BYTES], const char *path,
			 uint64_t where, struct vhd_dyn_header *out);
void vhd_dyn_header_build(const struct vhd_dyn_header *h, uint8_t buf[VHD_DYN_HEADER_BYTES]);

/* CHS geometry for a size, by the spec algorithm (rounds down; maximum 65535/16/255). */
void vhd_chs_from_bytes(uint64_t size_bytes, uint16_t *cyl, uint8_t *heads, uint8_t *spt);
uint64_t vhd_chs_bytes(const struct vhd_footer *f);
/* The virtual size by our rule (see vhd.c): current_size, or CHS when asked or when the
 * creator is Virtual PC / old qemu and the geometry is not the maximum. */
uint64_t vhd_virtual_size(const struct vhd_footer *f, unsigned open_flags);

/* Bytes of a block's sector bitmap: one bit per sector, padded to whole sectors. */
uint32_t vhd_bitmap_bytes(uint32_t block_bytes);

/* The unique id as an RFC 4122 string (VHD stores it in RFC byte order). */
void vhd_uuid_to_str(const uint8_t uuid[16], char out[40]);
int vhd_uuid_random(uint8_t uuid[16]);

/* Differencing helpers for vhd-create.c: the unique id of an open VHD (-EINVAL if d is not
 * a VHD) and its footer timestamp. */
int vhd_disk_identity(const struct vdisk *d, uint8_t uuid[16], uint32_t *timestamp);

#endif
