/* convert/analyze.h - `genshift analyze`: the pre-flight of a generation 1 -> 2 conversion.
 *
 * gs_analyze() looks at one disk image or one VM configuration (vmcfg, docs/vmcfg.md) and
 * says, without writing anything, what the conversion would do and every reason it cannot.
 * Two depths, kept apart:
 * - structural (always): the image format, the partition table, free space, the file
 *   systems found by libblkid in each partition (read through the vdisk interface, so VHD
 *   and VHDX work like raw), locks held by other processes, and the partition plan of
 *   part_plan_new(). No libguestfs; a few milliseconds per image.
 * - deep (opt-in, gs_analyze_opts.deep): guest_inspect() of bootfix/ launches libguestfs
 *   (~13 s under TCG) for the distro, architecture, bootloader, grub.cfg and fstab.
 * Every problem is a finding with a stable code; docs/analyze.md lists them all.
 * Like the libraries, gs_analyze() returns 0 or -errno and never prints.
 */
#ifndef GENSHIFT_ANALYZE_H
#define GENSHIFT_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bootfix/bootfix.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

struct json_object;

enum gs_severity {
	GS_SEV_BLOCKER, /* the conversion is refused */
	GS_SEV_WARNING, /* the conversion goes ahead; a person should know */
};

struct gs_finding {
	const char *code;          /* stable: "NO_ROOM_FOR_ESP", ... (static string) */
	enum gs_severity severity;
	int disk;                  /* index into gs_analysis.disks, -1 for the whole VM */
	char *message;             /* one sentence for a person */
};

/* What libblkid says about the start of a partition (or of an unpartitioned disk);
 * empty strings when unknown. */
struct gs_fs {
	char type[32];     /* "ext4", "swap", "crypto_LUKS", "LVM2_member", "vfat", ... */
	char uuid[64];
	char label[64];
};

struct gs_part {
	struct part_entry entry;   /* as part_table_read found it */
	char type_name[32];        /* part_type_name() */
	char partuuid[40];         /* what the kernel and blkid call PARTUUID */
	struct gs_fs fs;
};

enum gs_disk_role { GS_DISK_BOOT, GS_DISK_DATA, GS_DISK_DVD };

/* The part of part_plan_new()'s answer a person needs. */
struct gs_plan_summary {
	bool valid;                /* a plan was made */
	uint32_t esp_number;
	uint64_t esp_first_lba, esp_last_lba;
	bool esp_created;          /* false: an MBR 0xEF partition becomes the ESP */
	uint64_t old_size_bytes, new_size_bytes; /* new > old: the disk grows */
	size_t n_notes;
	char **notes;              /* part_plan's notes, copied */
};

struct gs_disk {
	char *path;
	enum gs_disk_role role;
	int cfg_index;             /* index in the vmcfg's disks[], -1 for an IMAGE argument */
	bool opened;               /* false: the fields below stay zero */
	enum vdisk_format format;
	enum vdisk_subformat subformat;
	uint64_t size_bytes, file_bytes;
	uint32_t logical_sector_bytes, physical_sector_bytes;
	bool table_read;
	enum part_kind table;
	uint32_t mbr_disk_signature;
	bool mbr_has_boot_code;
	const char *mbr_boot_code;  /* "grub" (2 or legacy), "syslinux", "windows", "unknown",
				     * "" (no boot code) (static) */
	size_t n_parts;
	struct gs_part *parts;
	struct gs_fs whole_disk_fs; /* a file system on the unpartitioned disk */
	uint64_t free_start_bytes;  /* unpartitioned bytes after LBA 0, before the first partition */
	uint64_t free_end_bytes;    /* after the last partition (or EBR), up to the disk end */
	uint32_t root_part, boot_part; /* 0 = unknown */
	bool root_from_guest;       /* root/boot came from guest inspection, not a guess */
	struct gs_plan_summary plan;
	struct guest_info *guest;   /* deep mode, when guest_inspect worked; else NULL */
	char *deep_error;           /* deep mode, when it did not: why (else NULL) */
};

enum gs_source { GS_SOURCE_IMAGE, GS_SOURCE_CONFIG };

struct gs_analysis {
	enum gs_source source;
	char *path;
	char *vm_name;              /* config only; NULL for images */
	unsigned generation;        /* config: as written; image: 1 unless it already is gen 2 */
	bool deep;                  /* guest inspection was asked for */
	size_t n_disks;
	struct gs_disk *disks;
	int boot_disk;              /* index into disks, -1 when there is none */
	size_t n_findings;
	struct gs_finding *findings;
};

struct gs_analyze_opts {
	bool deep;          /* run guest_inspect (libguestfs) on the boot disk */
	bool allow_grow;    /* the plan may grow the disk (genshift's default) */
	uint64_t esp_bytes; /* 0 = PART_ESP_DEFAULT_BYTES */
};

/* Analyze path: a vmcfg document (its first non-blank byte is '{') or a disk image.
 * Problems with the VM are findings, not errors: 0 is returned for a corrupt image too
 * (finding UNREADABLE_DISK). -errno only when the analysis itself could not be done
 * (path missing or unreadable, out of memory, a config that does not parse), with
 * vdisk_errmsg() saying why. *out written only on success; free with gs_analysis_free. */
int gs_analyze(const char *path, const struct gs_analyze_opts *o, struct gs_analysis **out);
void gs_analysis_free(struct gs_analysis *a);

/* True when no finding is a blocker. */
bool gs_analysis_convertible(const struct gs_analysis *a);

/* The analysis as JSON (the caller owns it), NULL on allocation failure. */
struct json_object *gs_analysis_to_json(const struct gs_analysis *a);

const char *gs_severity_name(enum gs_severity s); /* "blocker", "warning" */

/* Judge the guest facts of disk index `disk` (what guest_inspect found, or facts built by
 * a test) and add the findings they call for: NO_OS_FOUND, UNSUPPORTED_OS, GUEST_32BIT,
 * ENCRYPTED_ROOT, LVM_ROOT, BIOS_ONLY_BOOTLOADER, BLS_CONFIG, ... Also takes root and /boot
 * from the facts. Pure: no I/O. Returns 0 or -ENOMEM. */
int gs_analysis_judge_guest(struct gs_analysis *a, int disk, const struct guest_info *gi);

/* The partition of d an fstab spec names (UUID=, LABEL=, PARTUUID= matched against what
 * libblkid found; /dev/sdaN, hdaN, vdaN, xvdaN by number), or 0 when it names none. */
uint32_t gs_disk_fstab_partition(const struct gs_disk *d, const char *spec);

/* Add a finding (printf-style message). Returns 0 or -ENOMEM. */
int gs_analysis_add(struct gs_analysis *a, const char *code, enum gs_severity sev, int disk,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
