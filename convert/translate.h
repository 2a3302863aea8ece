/* convert/translate.h - the generation 1 -> generation 2 VM configuration (vmcfg) translation:
 * what Hyper-V's Convert-VMGeneration does to the VM's settings, for genshift's vmcfg
 * (docs/vmcfg.md; rules in docs/analyze.md "Configuration translation").
 */
#ifndef GENSHIFT_TRANSLATE_H
#define GENSHIFT_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/vmm.h"

/* Lines a person must read: what was dropped or changed in a way the guest may notice. */
struct gs_notes {
	size_t n;
	char **lines;
};
void gs_notes_free(struct gs_notes *n); /* frees the lines, leaves n empty; accepts NULL */

struct gs_translate_opts {
	const char *nvram_path;    /* required: the generation 2 VM's UEFI variable store */
	const char *firmware_path; /* NULL = generation 2's default firmware (OVMF) */
	int boot_disk;             /* index in gen1->disks of the disk being converted;
				    * -1 = the first disk in boot_order, else the first disk */
	const char *disk_path;     /* the converted disk's new path; NULL = unchanged */
	bool secure_boot;          /* the caller asks for Secure Boot: kept off, with a warning,
				    * because genshift's GRUB EFI loader is unsigned */
};

/* Translate gen1 (a generation 1 configuration) into a new generation 2 one:
 * - firmware UEFI with o->nvram_path, Secure Boot off;
 * - IDE and SCSI disks and DVDs on SCSI controller 0: the boot disk at 0:0, the others
 *   after it in their original order (virtio disks stay virtio); disks[] keeps its order,
 *   so indices (and boot_order entries) keep meaning the same device;
 * - legacy NICs become synthetic with the same MAC; virtio and synthetic NICs stay;
 * - boot order: the converted disk first, the other entries after it in their order;
 * - memory (dynamic too), processors, name, notes and VM id unchanged.
 * Warnings (dropped firmware path or Secure Boot template, dynamic MACs, serial log, VHD
 * boot disk, ...) are appended to *warnings (which the caller frees with gs_notes_free).
 * -EINVAL with a message when gen1 is not generation 1 or has no disk to boot; *gen2 is
 * written only on success (free with vmcfg_free). */
int gs_translate_gen2(const struct vmcfg *gen1, const struct gs_translate_opts *o,
		      struct vmcfg **gen2, struct gs_notes *warnings);

#endif
