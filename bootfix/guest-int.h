/* bootfix/guest-int.h - the text side of guest.c: parsing and rewriting the guest's fstab and
 * kernel command lines, kept apart from libguestfs so unit tests can feed it hostile bytes.
 * Internal to bootfix/. */
#ifndef GENSHIFT_BOOTFIX_GUEST_INT_H
#define GENSHIFT_BOOTFIX_GUEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bootfix/bootfix.h"

/* Caps on what is read from the guest: a file larger than this is refused, not truncated. */
#define GUEST_FSTAB_MAX_BYTES (1u << 20)
#define GUEST_FSTAB_MAX_ENTRIES 4096
#define GUEST_CFG_MAX_BYTES (8u << 20)  /* grub.cfg, /etc/default/grub */
/* Partition numbers we map /dev/sdaN to; GPT's usual 128 entries. */
#define GUEST_MAX_PARTS 128

/* What the conversion changed, for rewriting references to the boot disk. */
struct guest_remap {
	/* fs_uuid[N]: UUID of the file system (or swap) on partition N, NULL when none. */
	const char *fs_uuid[GUEST_MAX_PARTS + 1];
	size_t n_partuuids;
	const char *const *partuuid_old, *const *partuuid_new;
};

/* Parse fstab text (bytes long, need not be NUL-terminated): one entry per line that is not
 * blank or a comment, fields split on spaces and tabs, kept as written. A line with only a
 * spec gets mountpoint "" and fstype "". -EINVAL past GUEST_FSTAB_MAX_BYTES or
 * GUEST_FSTAB_MAX_ENTRIES or on a NUL byte. *out is freed with guest_fstab_free. */
int guest_fstab_parse(const char *text, size_t bytes, struct guest_fstab_entry **out,
		      size_t *n_out);
void guest_fstab_free(struct guest_fstab_entry *e, size_t n);

/* The replacement for one reference to a block device (spec_bytes long): "/dev/sdaN",
 * "/dev/hdaN", "/dev/vdaN", "/dev/xvdaN" -> "UUID=<fs uuid of N>"; "PARTUUID=<old>" and
 * "/dev/disk/by-partuuid/<old>" -> the same form with the new PARTUUID. Returns 1 with a
 * malloc'd *out, 0 when the spec stays (not a reference to this disk, or partition N has
 * no UUID), -ENOMEM. Only disk "a" is rewritten: the guest's other disks are not ours. */
int guest_remap_spec(const struct guest_remap *m, const char *spec, size_t spec_bytes,
		     char **out);

/* Rewrite fstab text: each entry's spec through guest_remap_spec, and, when esp_uuid is not
 * NULL and no entry mounts /boot/efi, a line "UUID=<esp_uuid> /boot/efi vfat
 * umask=0077,nofail 0 1" appended. Everything else (comments, spacing) is kept byte for
 * byte. Each change is added to r as "<file>: <old> -> <new>". *out (malloc'd,
 * NUL-terminated, *out_bytes long) is written on success even when nothing changed. */
int guest_fstab_edit(const char *file, const char *text, size_t bytes,
		     const struct guest_remap *m, const char *esp_uuid, struct guest_fix_report *r,
		     char **out, size_t *out_bytes);

/* Rewrite root= and resume= kernel parameters (a word starting the text or a line, or after
 * a space, tab or quote) whose value is a device reference guest_remap_spec changes. Used on
 * grub.cfg and /etc/default/grub. Same contract as guest_fstab_edit. */
int guest_cmdline_edit(const char *file, const char *text, size_t bytes,
		       const struct guest_remap *m, struct guest_fix_report *r, char **out,
		       size_t *out_bytes);

/* Facts of a grub.cfg: a non-comment line using blscfg, linux16/initrd16 commands. */
void guest_grub_cfg_scan(const char *text, size_t bytes, bool *bls, bool *linux16);

/* Append one printf-formatted line to r (an identical line already there is not repeated). */
int guest_report_add(struct guest_fix_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
