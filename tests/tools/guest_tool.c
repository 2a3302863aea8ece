/* tests/tools/guest_tool.c - runs bootfix's libguestfs functions for the shell tests.
 *
 *   guest_tool inspect DISK FORMAT
 *       guest_inspect; one "key=value" line per struct guest_info field, then one
 *       "fstab=SPEC MOUNTPOINT FSTYPE" line per fstab entry.
 *   guest_tool fix DISK FORMAT ESP_SERIAL_HEX [--guest-grub] [--partuuid OLD=NEW]...
 *       guest_fix_linux; one "change=LINE" per reported change.
 * FORMAT "-" lets qemu probe. Exit 0 on success, 2 for -ENOTSUP, 1 for other errors (the
 * message from vdisk_errmsg on stderr). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix/bootfix.h"
#include "vhdx/vdisk.h"

#define MAX_PARTUUIDS 16


static const char *or_none(const char *s)
{
	return s ? s : "(none)";
}

static void print_info(const struct guest_info *gi)
{
	printf("os_type=%s\ndistro=%s\nproduct_name=%s\nmajor=%d\nminor=%d\narch=%s\n",
	       gi->os_type, gi->distro, gi->product_name, gi->major, gi->minor, gi->arch);
	printf("root_part=%u\nboot_part=%u\nroot_fs_uuid=%s\nboot_fs_uuid=%s\n", gi->root_part,
	       gi->boot_part, or_none(gi->root_fs_uuid), or_none(gi->boot_fs_uuid));
	printf("root_encrypted=%d\nroot_on_lvm=%d\nbootloader=%s\nloader_cfg=%s\ngrub_cfg=%s\n",
	       gi->root_encrypted, gi->root_on_lvm, guest_bootloader_name(gi->bootloader),
	       or_none(gi->loader_cfg), or_none(gi->grub_cfg));
	printf("grub_bls=%d\ngrub_has_linux16=%d\nhas_grub_efi=%d\n", gi->grub_bls,
	       gi->grub_has_linux16, gi->has_grub_efi);
	for (size_t i = 0; i < gi->n_fstab; i++)
		printf("fstab=%s %s %s\n", gi->fstab[i].spec, gi->fstab[i].mountpoint,
		       gi->fstab[i].fstype);
}

static int fail(int rc)
{
	fprintf(stderr, "guest_tool: %s\n", vdisk_errmsg());
	return rc == -ENOTSUP ? 2 : 1;
}

static int cmd_inspect(const char *disk, const char *format)
{
	struct guest_info *gi;
	int rc = guest_inspect(disk, format, &gi);
	if (rc < 0)
		return fail(rc);
	print_info(gi);
	guest_info_free(gi);
	return 0;
}

static int cmd_fix(const char *disk, const char *format, int argc, char **argv)
{
	const char *old[MAX_PARTUUIDS], *new[MAX_PARTUUIDS];
	struct guest_fix_opts o = { .partuuid_old = old, .partuuid_new = new };
	struct guest_fix_report *r;
	int rc;
	o.esp_volume_id = (uint32_t)strtoul(argv[0], NULL, 16);
	for (int i = 1; i < argc; i++) {
		char *eq;
		if (!strcmp(argv[i], "--guest-grub")) {
			o.run_guest_grub = true;
		} else if (!strcmp(argv[i], "--partuuid") && i + 1 < argc &&
			   (eq = strchr(argv[i + 1], '=')) && o.n_partuuids < MAX_PARTUUIDS) {
			*eq = '\0';
			old[o.n_partuuids] = argv[++i];
			new[o.n_partuuids++] = eq + 1;
		} else {
			fprintf(stderr, "guest_tool: bad argument %s\n", argv[i]);
			return 1;
		}
	}
	rc = guest_fix_linux(disk, format, &o, &r);
	if (rc < 0)
		return fail(rc);
	for (size_t i = 0; i < r->n_changes; i++)
		printf("change=%s\n", r->changes[i]);
	guest_fix_report_free(r);
	return 0;
}

int main(int argc, char **argv)
{
	const char *format = argc > 3 && strcmp(argv[3], "-") ? argv[3] : NULL;
	if (argc == 4 && !strcmp(argv[1], "inspect"))
		return cmd_inspect(argv[2], format);
	if (argc >= 5 && !strcmp(argv[1], "fix"))
		return cmd_fix(argv[2], format, argc - 4, argv + 4);
	fprintf(stderr, "usage: guest_tool inspect DISK FORMAT\n"
		"       guest_tool fix DISK FORMAT ESP_SERIAL_HEX [--guest-grub] "
		"[--partuuid OLD=NEW]...\n");
	return 1;
}
