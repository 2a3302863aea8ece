/* bootfix/bootfix.h - making a GPT disk boot under UEFI: the FAT32 ESP, the GRUB EFI loader
 * on it, the guest's own configuration (fstab, grub.cfg) and the OVMF variable store with
 * its Boot#### entries. The facts behind every choice are in ../shared/docs/bootfix.md.
 *
 * Four parts, each in its own file and owned by one prefix:
 * - esp_*:    a FAT32 file system written in one pass into a partition of a vdisk (esp.c).
 * - grub_*:   the GRUB EFI image and the stub grub.cfg that loads the guest's own config
 *             (grub.c); bootfix_linux_esp() puts both on a fresh ESP.
 * - nvram_*:  the OVMF variable store file (OVMF_VARS_4M.fd layout) and EFI load options
 *             built with libefivar/libefiboot (nvram.c).
 * - guest_*:  inspection and edits of the guest's file systems through libguestfs (guest.c).
 *
 * Like the rest of genshift: functions return 0 or -errno and leave a precise message for
 * vdisk_errmsg(); nothing here prints or exits. Objects returned through `**out` are written
 * only on success and freed with the matching _free() (which accepts NULL).
 */
#ifndef GENSHIFT_BOOTFIX_H
#define GENSHIFT_BOOTFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vdisk;
struct part_table;

/* ======================= esp_*: the FAT32 EFI system partition ======================= */

struct esp_file {
	const char *path;  /* '/'-separated, relative to the root: "EFI/BOOT/BOOTX64.EFI" */
	const void *data;
	size_t bytes;
};

struct esp_opts {
	uint32_t volume_id;  /* the FAT serial: fstab's UUID=XXXX-XXXX; 0 = random */
	const char *label;   /* up to 11 characters (A-Z 0-9 $%'-_@~`!(){}^#&, inner spaces;
			      * lower case is stored upper case); NULL = "ESP", "" = none */
	int64_t timestamp;   /* every entry's time, seconds since 1970 UTC; 0 (or anything
			      * before 1980) = 1980-01-01 00:00:00, so equal input gives equal bytes */
};

/* Format sectors [first_lba, first_lba + sectors) of d (logical sectors of d's size: 512 or
 * 4096) as FAT32 holding files[] (directories are created as needed) and nothing else. Writes
 * only inside that range, the boot sector last. The cluster size is mkfs.fat's for the size
 * (512 bytes up to 260 MiB, 4 KiB to 8 GiB, ...; at least one sector). Names are printable
 * ASCII; one that is not an upper-case 8.3 name gets long-name entries and an 8.3 alias
 * ("grubx64.efi" -> GRUBX64.EFI, "Long name.txt" -> LONGNA~1.TXT). Paths compare without
 * case, as FAT does. -ENOSPC if the files do not fit, -EINVAL for a range too small for FAT32
 * (fewer than 65525 clusters) or a bad path, a duplicate or a bad label, -EFBIG for a file
 * of 4 GiB or more. *volume_id_out (may be NULL) receives the serial used. */
int esp_format(struct vdisk *d, uint64_t first_lba, uint64_t sectors, const struct esp_opts *o,
	       const struct esp_file *files, size_t n_files, uint32_t *volume_id_out);

/* ======================= grub_*: the GRUB EFI loader for Linux guests ======================= */

struct bootfix_linux_opts {
	const char *distro;        /* directory under \EFI: "debian" -> \EFI\debian\grubx64.efi */
	const char *boot_fs_uuid;  /* UUID of the file system holding the guest's grub.cfg */
	const char *grub_dir;      /* grub.cfg's directory inside that file system: "/boot/grub",
				    * "/grub" (separate /boot) or "/boot/grub2" */
	uint32_t esp_volume_id;    /* 0 = random */
	const char *grub_lib_dir;  /* NULL = /usr/lib/grub/x86_64-efi */
};

/* Make the ESP (partition esp_number of table t, read from d after the GPT was written) a
 * FAT32 file system with the GRUB EFI image at \EFI\BOOT\BOOTX64.EFI and
 * \EFI\<distro>\grubx64.efi, each beside a stub grub.cfg that finds boot_fs_uuid and loads
 * the guest's grub.cfg with linux16/initrd16 handled (bootfix.md 4.1). Either loader boots
 * on its own. *volume_id_out (may be NULL) receives the ESP's FAT serial. */
int bootfix_linux_esp(struct vdisk *d, const struct part_table *t, uint32_t esp_number,
		      const struct bootfix_linux_opts *o, uint32_t *volume_id_out);

/* The pieces bootfix_linux_esp() puts on the ESP, for callers that assemble their own. */

/* bootfix.md 4.1's module list, NULL-terminated: no linux16 and no memdisk, so that a guest
 * grub.cfg's linux16/initrd16 reach the stub's functions. */
extern const char *const grub_efi_modules[];

/* Run grub-mkimage -O x86_64-efi -d lib_dir (NULL = /usr/lib/grub/x86_64-efi) -p prefix with
 * grub_efi_modules into a temporary file under $TMPDIR and return its bytes in *image_out
 * (malloc'd; free()). prefix "" makes GRUB use the directory it was loaded from (what
 * bootfix_linux_esp does, so one image serves \EFI\BOOT and \EFI\<distro>). -ENOENT when
 * grub-mkimage or a module file is missing; -EIO with grub-mkimage's stderr when it fails. */
int grub_efi_image_new(const char *lib_dir, const char *prefix, uint8_t **image_out,
		       size_t *bytes_out);

/* The stub grub.cfg (malloc'd text; free()): linux16/initrd16 as functions calling
 * linux/initrd, `search --no-floppy --fs-uuid --set=root UUID`, prefix ($root)GRUB_DIR, and
 * `source $prefix/grub.cfg`. -EINVAL unless the UUID is hex digits and dashes and grub_dir an
 * absolute path of plain characters. */
int grub_stub_cfg_new(const char *boot_fs_uuid, const char *grub_dir, char **cfg_out);

/* ======================= nvram_*: the OVMF variable store ======================= */

struct nvram;

/* EFI_GLOBAL_VARIABLE (8BE4DF61-93CA-11D2-AA0D-00E098032B8C), the vendor GUID of Boot####
 * and BootOrder, in on-disk byte order. */
extern const uint8_t nvram_global_guid[16];

/* A variable as stored; name is UTF-8 (stored as UCS-2), guid in on-disk byte order. */
struct nvram_var {
	char name[128];
	uint8_t guid[16];
	uint32_t attributes;
	const uint8_t *data;  /* borrowed from the store; valid until the next change */
	size_t bytes;
};

/* Parse a variable store image (the whole file: 4M layout 540672 bytes or 2M layout 131072
 * bytes) as hostile input: FV header and checksum, variable store header, every variable
 * header, free space all 0xFF, the fault-tolerant-write queue (-EBUSY when a write was
 * interrupted: the firmware would discard edits). The store keeps its own copy of buf. */
int nvram_parse(const void *buf, size_t bytes, struct nvram **out);
int nvram_open(const char *path, struct nvram **out);
void nvram_free(struct nvram *nv);

/* Live variables (state ADDED, or IN_DELETED_TRANSITION without an ADDED copy), in store
 * order. Returns the count; *vars borrowed from nv. */
size_t nvram_vars(const struct nvram *nv, const struct nvram_var **vars);
/* The live variable (name, guid), or NULL. Borrowed. */
const struct nvram_var *nvram_get(const struct nvram *nv, const char *name, const uint8_t guid[16]);
/* Add or replace a variable the way the firmware does (append, then mark the old copy
 * deleted; compact when the store is full). -ENOSPC if it cannot fit even compacted. */
int nvram_set(struct nvram *nv, const char *name, const uint8_t guid[16], uint32_t attributes,
	      const void *data, size_t bytes);
int nvram_delete(struct nvram *nv, const char *name, const uint8_t guid[16]);
/* The whole image as it would be written (borrowed, *bytes set). */
const uint8_t *nvram_image(const struct nvram *nv, size_t *bytes);
/* Write the image to path crash-safely: a temporary file beside it, fsync, rename, fsync of
 * the directory. The replaced file's mode and owner are kept; a symlink is followed (the
 * file it names is replaced). -EBUSY when another process holds a lock on path (QEMU
 * locks the VARS file of a running VM). */
int nvram_save(const struct nvram *nv, const char *path);

/* A Boot#### entry pointing at a file on a GPT partition (short-form HD() device path). */
struct nvram_boot_target {
	const char *description;   /* "debian" */
	uint32_t part_number;      /* 1-based GPT entry number */
	uint64_t first_lba, sectors;
	uint8_t part_guid[16];     /* unique partition GUID, on-disk byte order */
	const char *loader;        /* "\\EFI\\debian\\grubx64.efi" ('/' accepted) */
};

/* Write Boot#### for t (the lowest free number from 1, or the existing entry with the same
 * device path and loader) and put it first in BootOrder, keeping the other entries after it.
 * *number_out (may be NULL) receives the option number. On failure nv is unchanged. */
int nvram_add_boot(struct nvram *nv, const struct nvram_boot_target *t, unsigned *number_out);

/* Decode a load option (a Boot#### variable's data): its description as UTF-8 and its
 * device path as libefivar prints it ("HD(2,GPT,...)/File(\EFI\debian\grubx64.efi)").
 * The option is hostile input: -EINVAL with a message when it is malformed or desc_bytes
 * is too small; path is truncated to path_bytes. */
int nvram_boot_describe(const struct nvram_var *v, char *desc, size_t desc_bytes, char *path,
			size_t path_bytes);

/* ======================= guest_*: the guest's files, through libguestfs ======================= */

enum guest_bootloader {
	GUEST_BOOT_UNKNOWN,
	GUEST_BOOT_GRUB2,       /* grub-pc / grub2: a grub.cfg was found */
	GUEST_BOOT_GRUB_LEGACY, /* menu.lst / grub.conf only */
	GUEST_BOOT_SYSLINUX,    /* syslinux.cfg / extlinux.conf */
};

struct guest_fstab_entry {
	char *spec;        /* as written: "UUID=...", "/dev/sda1", "LABEL=...", "PARTUUID=..." */
	char *mountpoint;
	char *fstype;
};

struct guest_info {
	char *os_type;         /* libguestfs inspect: "linux", "windows", ... ("unknown") */
	char *distro;          /* "debian", "rhel", "ubuntu", ... ("unknown") */
	char *product_name;
	int major, minor;
	char *arch;            /* "x86_64", "i386", ... from the guest's binaries ("unknown") */
	uint32_t root_part;    /* partition number of the root file system (0: not a partition,
				* e.g. LVM, md, or no root found) */
	uint32_t boot_part;    /* partition holding /boot (== root_part when not separate) */
	char *root_fs_uuid, *boot_fs_uuid;  /* NULL when unknown */
	bool root_encrypted, root_on_lvm;
	enum guest_bootloader bootloader;
	char *grub_cfg;        /* path inside the boot file system: "/boot/grub/grub.cfg" */
	bool grub_bls;         /* grub.cfg uses blscfg (RHEL/Fedora BLS) */
	bool grub_has_linux16; /* linux16/initrd16 lines that must not run on UEFI */
	bool has_grub_efi;     /* the guest has grub-efi modules (grub-install --target=x86_64-efi) */
	size_t n_fstab;
	struct guest_fstab_entry *fstab;
	/* Added by guest.c: the bootloader configuration found, as a path in the guest's
	 * mounted tree ("/boot/grub/grub.cfg", "/boot/syslinux.cfg"); NULL with
	 * GUEST_BOOT_UNKNOWN. */
	char *loader_cfg;
};

/* Inspect the guest on disk_path (any format qemu reads; format "raw", "vpc" or "vhdx", NULL
 * = probe) read-only, in one libguestfs appliance launch (~15 s under TCG).
 *
 * The root is libguestfs's first inspection root (inspect_os); its file systems are mounted
 * read-only as its fstab says. When inspection recognises no OS, the first file system
 * holding /etc/fstab is taken as the root and os_type, distro, product_name and arch are
 * "unknown", major/minor 0; fstab and bootloader facts are still filled. When no root is
 * found at all, the call still succeeds: os_type "unknown", root_part 0, no fstab, and
 * root_encrypted is true if the disk holds a LUKS volume (the root is presumably inside:
 * genshift never asks for keys). Bootloader: grub.cfg (/boot/grub, /boot/grub2, or /grub on
 * a separate /boot) wins over menu.lst/grub.conf, which wins over syslinux/extlinux configs.
 * Fails only when the appliance cannot run or a file read is bad (oversized, NUL bytes). */
int guest_inspect(const char *disk_path, const char *format, struct guest_info **out);
void guest_info_free(struct guest_info *gi);
/* "grub2", "grub-legacy", "syslinux" or "unknown" (static strings). */
const char *guest_bootloader_name(enum guest_bootloader b);

struct guest_fix_opts {
	uint32_t esp_volume_id;    /* fstab gains UUID=XXXX-XXXX /boot/efi vfat umask=0077,nofail */
	/* PARTUUIDs that changed with the conversion: old "<disksig>-NN" -> new GPT GUID text. */
	size_t n_partuuids;
	const char *const *partuuid_old, *const *partuuid_new;
	bool run_guest_grub;       /* --guest-grub: grub-install --target=x86_64-efi in the guest */
	/* Added by guest.c: grub-install's --bootloader-id (\EFI\<id>\), the same directory
	 * bootfix_linux_esp and the Boot#### entry use; NULL = the inspected distro. */
	const char *efi_distro;
};

struct guest_fix_report {
	size_t n_changes;
	char **changes;            /* one line per edit: "/etc/fstab: /dev/sda1 -> UUID=..." */
};

/* Edit the converted guest on disk_path (opened read-write through libguestfs, one appliance
 * launch), its file systems mounted as its fstab says:
 * - /etc/fstab: a spec /dev/{sd,hd,vd,xvd}aN becomes UUID=<UUID of the file system or swap
 *   on partition N> (the conversion keeps partition numbers; other disks' names and
 *   partitions without a UUID stay); PARTUUID=<old> and /dev/disk/by-partuuid/<old> get the
 *   new PARTUUID from o; unless some entry mounts /boot/efi, a line
 *   "UUID=XXXX-XXXX /boot/efi vfat umask=0077,nofail 0 1" is appended (esp_volume_id != 0).
 * - root= and resume= parameters with such values in /boot/grub/grub.cfg,
 *   /boot/grub2/grub.cfg and /etc/default/grub are rewritten the same way.
 * - run_guest_grub: the guest's grub-install --target=x86_64-efi --efi-directory=/boot/efi
 *   --bootloader-id=<id> --no-nvram, with the ESP (found by its serial) mounted at /boot/efi;
 *   -ENOTSUP with a message when the guest has no /usr/lib/grub/x86_64-efi modules.
 * Each edited file is replaced by rename, its original kept as <file>.genshift-bak (an
 * existing backup is kept: it is the older original); symbolic links are not followed.
 * -ENOENT when no root file system is found, -ENOTSUP for a non-Linux OS. A failed
 * unmount/shutdown (where writes reach the disk) is -EIO. *out lists one line per change. */
int guest_fix_linux(const char *disk_path, const char *format, const struct guest_fix_opts *o,
		    struct guest_fix_report **out);
void guest_fix_report_free(struct guest_fix_report *r);

#endif
