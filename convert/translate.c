/* convert/translate.c - generation 1 -> generation 2 VM configuration translation. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert/translate.h"
#include "vhdx/vdisk.h"

/* Hyper-V generation 2 boots from one synthetic SCSI controller; Convert-VMGeneration puts
 * every disk and DVD on controller 0, locations 0..63 (prior-art.md 1.3). */
#define SCSI_MAX_LOCATION 63

void gs_notes_free(struct gs_notes *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		free(n->lines[i]);
	free(n->lines);
	n->n = 0;
	n->lines = NULL;
}

static int note(struct gs_notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int note(struct gs_notes *n, const char *fmt, ...)
{
	char **v = realloc(n->lines, (n->n + 1) * sizeof(*v));
	va_list ap;

	if (!v)
		return vdisk_fail(ENOMEM, "out of memory");
	n->lines = v;
	va_start(ap, fmt);
	int r = vasprintf(&v[n->n], fmt, ap);
	va_end(ap);
	if (r < 0)
		return vdisk_fail(ENOMEM, "out of memory");
	n->n++;
	return 0;
}

static int replace_str(char **field, const char *value)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return vdisk_fail(ENOMEM, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

/* A deep copy through the canonical text, the one representation vmm/ promises to keep
 * complete. Paths are already resolved, so no base directory. */
static int copy_config(const struct vmcfg *cfg, struct vmcfg **out)
{
	char *text = vmcfg_to_json(cfg);
	if (!text)
		return vdisk_fail(ENOMEM, "out of memory");
	int r = vmcfg_parse(text, strlen(text), NULL, out);
	free(text);
	return r;
}

static int find_boot_disk(const struct vmcfg *cfg, int wanted)
{
	if (wanted >= 0) {
		if ((unsigned)wanted >= cfg->n_disks || cfg->disks[wanted].media != VMCFG_MEDIA_DISK)
			return vdisk_fail(EINVAL, "translate: disks[%d] is not a hard disk of the VM",
					  wanted);
		return wanted;
	}
	int boot = vmcfg_boot_disk(cfg);
	if (boot >= 0)
		return boot;
	return vdisk_fail(EINVAL, "translate: the VM \"%s\" has no hard disk to boot from",
			  cfg->name ? cfg->name : "");
}

static int translate_firmware(struct vmcfg *c, const struct gs_translate_opts *o,
			      struct gs_notes *w)
{
	int r = 0;

	c->generation = 2;
	c->firmware = VMCFG_FW_UEFI;
	if (c->firmware_path)
		r = note(w, "firmware.path \"%s\" is a BIOS image; dropped (generation 2 boots "
			 "UEFI firmware%s)", c->firmware_path, o->firmware_path ? "" : ", OVMF");
	if (r == 0)
		r = replace_str(&c->firmware_path, o->firmware_path);
	if (r == 0)
		r = replace_str(&c->nvram_path, o->nvram_path);
	c->secure_boot = false;
	if (r == 0 && o->secure_boot)
		r = note(w, "Secure Boot was requested but stays off: the GRUB EFI loader genshift "
			 "installs is not signed, so the firmware would refuse to start it");
	if (r == 0 && c->secure_boot_template)
		r = note(w, "firmware.secure_boot_template \"%s\" dropped: Secure Boot is off",
			 c->secure_boot_template);
	if (r == 0)
		r = replace_str(&c->secure_boot_template, NULL);
	return r;
}

static int place_disks(struct vmcfg *c, int boot, struct gs_notes *w)
{
	unsigned next = 1;
	int r = 0;

	for (unsigned i = 0; i < c->n_disks && r == 0; i++) {
		struct vmcfg_disk *d = &c->disks[i];
		if (d->bus == VMCFG_BUS_VIRTIO)
			continue; /* genshift's own bus: the same on both generations */
		d->bus = VMCFG_BUS_SCSI;
		d->controller = 0;
		d->location = (int)i == boot ? 0 : next++;
		if (d->location > SCSI_MAX_LOCATION)
			r = vdisk_fail(EINVAL, "translate: more than %d devices for SCSI controller 0",
				       SCSI_MAX_LOCATION + 1);
	}
	const char *path = c->disks[boot].path;
	size_t len = strlen(path);
	if (r == 0 && len >= 4 && !strcasecmp(path + len - 4, ".vhd"))
		r = note(w, "disks[%d] \"%s\" is a VHD: Hyper-V generation 2 boots only from VHDX "
			 "(genshift's VMM boots either)", boot, path);
	return r;
}

static int translate_nics(struct vmcfg *c, struct gs_notes *w)
{
	int r = 0;

	for (unsigned i = 0; i < c->n_nics && r == 0; i++) {
		struct vmcfg_nic *n = &c->nics[i];
		if (n->model != VMCFG_NIC_LEGACY)
			continue;
		n->model = VMCFG_NIC_SYNTHETIC;
		if (n->mac[0])
			r = note(w, "nics[%u]: the legacy adapter becomes a synthetic one with the same "
				 "MAC %s; the guest sees a new device (hv_netvsc instead of tulip)",
				 i, n->mac);
		else
			r = note(w, "nics[%u]: the legacy adapter becomes a synthetic one; its MAC was "
				 "dynamic, so the guest may see a new address", i);
	}
	return r;
}

/* The converted disk first, then every other entry in its original order. */
static void order_boot(struct vmcfg *c, int boot)
{
	struct vmcfg_boot old[VMCFG_MAX_BOOT];
	unsigned n_old = c->n_boot;

	memcpy(old, c->boot_order, sizeof(old));
	c->boot_order[0] = (struct vmcfg_boot){ VMCFG_BOOT_DISK, (unsigned)boot };
	c->n_boot = 1;
	for (unsigned i = 0; i < n_old && c->n_boot < VMCFG_MAX_BOOT; i++)
		if (old[i].kind != VMCFG_BOOT_DISK || old[i].index != (unsigned)boot)
			c->boot_order[c->n_boot++] = old[i];
}

static int translate(struct vmcfg *c, const struct gs_translate_opts *o, struct gs_notes *w)
{
	int boot = find_boot_disk(c, o->boot_disk);
	int r = boot < 0 ? boot : translate_firmware(c, o, w);

	if (r == 0 && o->disk_path)
		r = replace_str(&c->disks[boot].path, o->disk_path);
	if (r == 0)
		r = place_disks(c, boot, w);
	if (r == 0)
		r = translate_nics(c, w);
	if (r == 0) {
		order_boot(c, boot);
		if (c->serial_log)
			r = note(w, "serial_log \"%s\" kept for genshift's VMM; a Hyper-V generation 2 "
				 "VM has no COM port unless one is added (Set-VMComPort)",
				 c->serial_log);
	}
	return r;
}

int gs_translate_gen2(const struct vmcfg *gen1, const struct gs_translate_opts *o,
		      struct vmcfg **gen2, struct gs_notes *warnings)
{
	struct vmcfg *c = NULL, *check = NULL;
	int r;

	if (gen1->generation != 1)
		return vdisk_fail(EINVAL, "translate: the VM \"%s\" already is generation %u; "
				  "there is nothing to translate", gen1->name ? gen1->name : "",
				  gen1->generation);
	if (!o->nvram_path)
		return vdisk_fail(EINVAL, "translate: a generation 2 VM needs an NVRAM path");
	r = copy_config(gen1, &c);
	if (r == 0)
		r = translate(c, o, warnings);
	/* The result must be a configuration vmm/ accepts as it stands. */
	if (r == 0 && (r = copy_config(c, &check)) == 0)
		vmcfg_free(check);
	if (r < 0) {
		vmcfg_free(c);
		return r;
	}
	*gen2 = c;
	return 0;
}
