/* bootfix/fat-format.h - on-disk layout of FAT32, as esp.c writes it for the EFI system partition.
 *
 * Source: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103.doc, version 1.03,
 * 2000), sections "Boot Sector and BPB" (the common BPB and the FAT32 extension), "FAT Data
 * Structure" (FAT[0], FAT[1], end-of-chain), "FAT Type Determination" (the 65525-cluster
 * rule), "FAT32 FSInfo Sector Structure and Backup Boot Sector", "FAT Directory Structure"
 * (the 32-byte entry, dates and times) and "FAT Long Directory Entries" (LFN entries and
 * their checksum). All integers are little-endian. The structs only document offsets: code
 * accesses fields through FAT_BS()/FAT_FSI()/FAT_DIR()/FAT_LFN() offsets and the
 * get_le/put_le helpers, never by casting a buffer.
 */
#ifndef GENSHIFT_FAT_FORMAT_H
#define GENSHIFT_FAT_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* Sector 0 of the volume (and its copy at BkBootSec): "Boot Sector and BPB". Bytes past 512
 * of a larger sector are zero. */
struct fat_boot_sector {
	uint8_t jump[3];            /* 0x000: EB xx 90 (short jump over the BPB) */
	uint8_t oem_name[8];        /* 0x003: informative; fatgen103 recommends "MSWIN4.1" */
	uint8_t bytes_per_sector[2];   /* 0x00B: 512, 1024, 2048 or 4096 */
	uint8_t sectors_per_cluster;   /* 0x00D: power of two, cluster <= 32 KiB */
	uint8_t reserved_sectors[2];   /* 0x00E: sectors before FAT 1 (32 on FAT32) */
	uint8_t num_fats;              /* 0x010: 2 */
	uint8_t root_entries[2];       /* 0x011: 0 on FAT32 */
	uint8_t total_sectors16[2];    /* 0x013: 0 on FAT32 */
	uint8_t media;                 /* 0x015: 0xF8 fixed disk, also in FAT[0] */
	uint8_t fat_size16[2];         /* 0x016: 0 on FAT32 */
	uint8_t sectors_per_track[2];  /* 0x018: INT 13h geometry, informative */
	uint8_t num_heads[2];          /* 0x01A */
	uint8_t hidden_sectors[4];     /* 0x01C: sectors before the volume (the partition's LBA) */
	uint8_t total_sectors32[4];    /* 0x020 */
	/* FAT32 extension */
	uint8_t fat_size32[4];         /* 0x024: sectors per FAT */
	uint8_t ext_flags[2];          /* 0x028: 0 = FATs mirrored at runtime */
	uint8_t fs_version[2];         /* 0x02A: 0.0 */
	uint8_t root_cluster[4];       /* 0x02C: first cluster of the root directory, usually 2 */
	uint8_t fsinfo_sector[2];      /* 0x030: 1 */
	uint8_t backup_boot_sector[2]; /* 0x032: 6 */
	uint8_t reserved[12];          /* 0x034: zero */
	uint8_t drive_number;          /* 0x040: 0x80 */
	uint8_t reserved1;             /* 0x041: zero */
	uint8_t boot_signature;        /* 0x042: 0x29: the next three fields are present */
	uint8_t volume_id[4];          /* 0x043: the serial ("UUID=XXXX-XXXX" on Linux) */
	uint8_t volume_label[11];      /* 0x047: space padded, "NO NAME    " when none */
	uint8_t fs_type[8];            /* 0x052: "FAT32   ", informative only */
	uint8_t boot_code[420];        /* 0x05A */
	uint8_t signature[2];          /* 0x1FE: 55 AA */
};
static_assert(sizeof(struct fat_boot_sector) == 512, "FAT32 boot sector is 512 bytes");

/* Sector FSInfo (1) and its copy (BkBootSec + 1): "FAT32 FSInfo Sector Structure". Only hints:
 * a driver may recompute both, but fsck.fat and Windows report a wrong free count. */
struct fat_fsinfo {
	uint8_t lead_signature[4];   /* 0x000: 0x41615252 "RRaA" */
	uint8_t reserved1[480];      /* 0x004: zero */
	uint8_t struct_signature[4]; /* 0x1E4: 0x61417272 "rrAa" */
	uint8_t free_count[4];       /* 0x1E8: free clusters, 0xFFFFFFFF = unknown */
	uint8_t next_free[4];        /* 0x1EC: where to start looking, 0xFFFFFFFF = unknown */
	uint8_t reserved2[12];       /* 0x1F0: zero */
	uint8_t trail_signature[4];  /* 0x1FC: 0xAA550000 (bytes 00 00 55 AA) */
};
static_assert(sizeof(struct fat_fsinfo) == 512, "FSInfo structure is 512 bytes");

/* "FAT Directory Structure": one short (8.3) entry. */
struct fat_dir_entry {
	uint8_t name[11];          /* 0x00: base (8) + extension (3), space padded, upper case */
	uint8_t attributes;        /* 0x0B: FAT_ATTR_* */
	uint8_t nt_reserved;       /* 0x0C: zero (Windows NT lower-case flags, not used here) */
	uint8_t create_time_tenth; /* 0x0D: 0-199, tenths of a second */
	uint8_t create_time[2];    /* 0x0E: FAT time */
	uint8_t create_date[2];    /* 0x10: FAT date */
	uint8_t access_date[2];    /* 0x12 */
	uint8_t first_cluster_hi[2]; /* 0x14 */
	uint8_t write_time[2];     /* 0x16 */
	uint8_t write_date[2];     /* 0x18 */
	uint8_t first_cluster_lo[2]; /* 0x1A */
	uint8_t file_size[4];      /* 0x1C: bytes; 0 for directories */
};
static_assert(sizeof(struct fat_dir_entry) == 32, "FAT directory entry is 32 bytes");

/* "FAT Long Directory Entries": 13 UTF-16 units of the long name each, stored before their
 * short entry in reverse order (the entry with FAT_LFN_LAST holds the end of the name). */
struct fat_lfn_entry {
	uint8_t order;          /* 0x00: 1-based sequence number, | FAT_LFN_LAST on the last */
	uint8_t name1[10];      /* 0x01: units 1-5 */
	uint8_t attributes;     /* 0x0B: FAT_ATTR_LFN */
	uint8_t type;           /* 0x0C: zero */
	uint8_t checksum;       /* 0x0D: fat_short_name_checksum() of the short entry's name */
	uint8_t name2[12];      /* 0x0E: units 6-11 */
	uint8_t first_cluster_lo[2]; /* 0x1A: zero */
	uint8_t name3[4];       /* 0x1C: units 12-13 */
};
static_assert(sizeof(struct fat_lfn_entry) == 32, "FAT long-name entry is 32 bytes");

#define FAT_BS(field) offsetof(struct fat_boot_sector, field)
#define FAT_FSI(field) offsetof(struct fat_fsinfo, field)
#define FAT_DIR(field) offsetof(struct fat_dir_entry, field)
#define FAT_LFN(field) offsetof(struct fat_lfn_entry, field)

#define FAT_BOOT_SIGNATURE_OFFSET 510u /* 55 AA, whatever the sector size */
#define FAT_EXT_BOOT_SIGNATURE 0x29u
#define FAT_MEDIA_FIXED 0xF8u
#define FAT_DRIVE_HARD_DISK 0x80u

#define FAT_FSINFO_LEAD_SIG 0x41615252u
#define FAT_FSINFO_STRUCT_SIG 0x61417272u
#define FAT_FSINFO_TRAIL_SIG 0xAA550000u
#define FAT_FSINFO_UNKNOWN 0xFFFFFFFFu

/* FAT32 entries are 28 bits; the top 4 are reserved and written as zero except in FAT[0..1]. */
#define FAT32_ENTRY_MASK 0x0FFFFFFFu
#define FAT32_EOC 0x0FFFFFFFu      /* end of chain (any value >= 0x0FFFFFF8) */
#define FAT32_FAT1 0x0FFFFFFFu     /* FAT[1]: clean-shutdown and no-hard-error bits set */
/* "FAT Type Determination": a volume with fewer clusters is FAT16 (or FAT12), whatever its BPB
 * says; every driver decides the type from this count alone. */
#define FAT32_MIN_CLUSTERS 65525u
#define FAT32_MAX_CLUSTERS 0x0FFFFFF5u /* cluster numbers 2..0x0FFFFFF6 */
#define FAT_FIRST_CLUSTER 2u

#define FAT_DIR_ENTRY_BYTES 32u
/* A directory holds at most 65536 entries (2 MiB): the limit every FAT driver enforces. */
#define FAT_DIR_MAX_ENTRIES 65536u
#define FAT_FILE_MAX_BYTES 0xFFFFFFFFull

#define FAT_ATTR_READ_ONLY 0x01u
#define FAT_ATTR_HIDDEN 0x02u
#define FAT_ATTR_SYSTEM 0x04u
#define FAT_ATTR_VOLUME_ID 0x08u
#define FAT_ATTR_DIRECTORY 0x10u
#define FAT_ATTR_ARCHIVE 0x20u
#define FAT_ATTR_LFN 0x0Fu /* READ_ONLY | HIDDEN | SYSTEM | VOLUME_ID */

#define FAT_LFN_LAST 0x40u
#define FAT_LFN_UNITS 13u      /* UTF-16 units per LFN entry */
#define FAT_LFN_MAX_UNITS 255u /* longest long name */

/* FAT dates count from 1980: bits 15-9 year-1980, 8-5 month, 4-0 day; times bits 15-11 hour,
 * 10-5 minute, 4-0 seconds/2. */
#define FAT_EPOCH_YEAR 1980
#define FAT_LAST_YEAR 2107

/* "FAT Long Directory Entries": the checksum of the 11-byte short name that ties each LFN
 * entry to its short entry (an unsigned-char rotate-right-and-add). */
static inline uint8_t fat_short_name_checksum(const uint8_t name[11])
{
	uint8_t sum = 0;
	for (int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) ? 0x80 : 0) + (sum >> 1) + name[i]);
	return sum;
}

#endif
