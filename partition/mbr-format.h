/* partition/mbr-format.h - on-disk layout of the MBR and of the EBRs of an extended partition.
 *
 * Sources: UEFI 2.10 §5.2.1 "Legacy Master Boot Record" (Tables 5-1 and 5-2) and §5.2.3
 * "Protective MBR" (Tables 5-3 and 5-4); the EBR chain follows the de-facto IBM/Microsoft
 * convention as implemented by Linux block/partitions/msdos.c and gdisk's basicmbr.cc.
 * The structs only document offsets: code reads and writes the bytes through offsetof() and
 * the get_le32/put_le32 helpers, never by casting a buffer.
 */
#ifndef GENSHIFT_MBR_FORMAT_H
#define GENSHIFT_MBR_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* One partition record (UEFI Table 5-2). LBA fields are little-endian. */
struct mbr_part_record {
	uint8_t status;          /* 0x00: 0x80 = active (BIOS boots it), 0x00 = inactive */
	uint8_t chs_first[3];    /* 0x01: head, sector | cyl high bits, cyl low bits */
	uint8_t type;            /* 0x04: OS type; 0 = unused entry */
	uint8_t chs_last[3];     /* 0x05 */
	uint8_t start_lba[4];    /* 0x08: first sector (EBR: relative, see below) */
	uint8_t size_sectors[4]; /* 0x0C: number of sectors */
};
static_assert(sizeof(struct mbr_part_record) == 16, "MBR partition record is 16 bytes");

/* The first 512 bytes of LBA 0 (also of every EBR). On 4Kn disks the rest of the sector is
 * not part of the MBR. UEFI Table 5-1 / 5-3. */
struct mbr_sector {
	uint8_t boot_code[440];               /* 0x000: BIOS boot code (unused by UEFI) */
	uint8_t disk_signature[4];            /* 0x1B8: "unique MBR disk signature" */
	uint8_t reserved[2];                  /* 0x1BC */
	struct mbr_part_record parts[4];      /* 0x1BE */
	uint8_t signature[2];                 /* 0x1FE: 0x55 0xAA */
};
static_assert(sizeof(struct mbr_sector) == 512, "MBR is 512 bytes");

#define MBR_BYTES 512u
#define MBR_PARTS_OFF offsetof(struct mbr_sector, parts)
#define MBR_PART_OFF(i) (MBR_PARTS_OFF + (size_t)(i) * sizeof(struct mbr_part_record))
#define MBR_SIG_OFF offsetof(struct mbr_sector, signature)
#define MBR_DISKSIG_OFF offsetof(struct mbr_sector, disk_signature)
#define MBR_BOOTCODE_BYTES sizeof(((struct mbr_sector *)0)->boot_code)

#define MBR_STATUS_ACTIVE 0x80u
#define MBR_TYPE_EMPTY 0x00u
#define MBR_TYPE_EXTENDED_CHS 0x05u
#define MBR_TYPE_EXTENDED_LBA 0x0Fu
#define MBR_TYPE_EXTENDED_LINUX 0x85u
#define MBR_TYPE_GPT_PROTECTIVE 0xEEu
#define MBR_TYPE_EFI_SYSTEM 0xEFu

/* EBR convention: in each EBR, parts[0] describes the logical partition with start_lba
 * relative to this EBR's own LBA; parts[1] links to the next EBR with start_lba relative to
 * the start of the primary extended partition (type 0 ends the chain); parts[2..3] are 0. */

#endif
