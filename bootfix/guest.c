/* bootfix/guest.c - the guest's own files through libguestfs: what OS and bootloader a disk
 * holds (guest_inspect, read-only) and the edits a generation-2 boot needs
 * (guest_fix_linux: fstab, root=/resume= on kernel command lines, optionally the guest's own
 * grub-install). One appliance launch per call; text handling is in guest-edit.c.
 *
 * libguestfs runs a small Linux appliance under QEMU. It must use TCG when this host's
 * /dev/kvm cannot run Linux (include/hostkvm.h): libguestfs itself only checks that
 * /dev/kvm opens, and hangs on a kvm_pvm /dev/kvm. The appliance kernel comes from the
 * host's /boot and /lib/modules (supermin); scripts/deps.sh installs one. */
#include <errno.h>
#include <guestfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix/bootfix.h"
#include "bootfix/guest-int.h"
#include "include/hostkvm.h"
#include "vhdx/vdisk.h"

/* Where the guest's grub-efi modules live (Debian grub-efi-amd64-bin, RHEL
 * grub2-efi-x64-modules puts them under /usr/lib/grub too). */
#define GUEST_GRUB_EFI_MOD "/usr/lib/grub/x86_64-efi/normal.mod"

static void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int fail_g(guestfs_h *g, int err, const char *what)
{
	const char *msg = guestfs_last_error(g);
	return vdisk_fail(err, "guest: %s: %s", what, msg ? msg : "unknown libguestfs error");
}

/* A libguestfs handle with disk_path attached and the appliance running. Errors are
 * collected by the handle (guestfs_last_error), never printed. */
static int session_open(const char *disk_path, const char *format, bool readonly,
			guestfs_h **out)
{
	guestfs_h *g = guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT);
	int rc;
	if (!g)
		return vdisk_fail(errno ? errno : ENOMEM, "guest: cannot create a libguestfs handle");
	guestfs_set_error_handler(g, NULL, NULL);
	if (guestfs_parse_environment(g) < 0) {
		rc = fail_g(g, EINVAL, "LIBGUESTFS_* environment");
		goto close_g;
	}
	if (!hostkvm_usable() && guestfs_set_backend_setting(g, "force_tcg", "true") < 0) {
		rc = fail_g(g, EINVAL, "setting force_tcg");
		goto close_g;
	}
	if (guestfs_add_drive_opts(g, disk_path, GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly ? 1 : 0,
				   format ? GUESTFS_ADD_DRIVE_OPTS_FORMAT : -1, format, -1) < 0) {
		rc = fail_g(g, EINVAL, disk_path);
		goto close_g;
	}
	if (guestfs_launch(g) < 0) {
		rc = fail_g(g, EIO, "launching the appliance (does /boot hold a kernel? make deps)");
		goto close_g;
	}
	*out = g;
	return 0;

close_g:
	guestfs_close(g);
	return rc;
}

/* The file system holding /etc/fstab when inspection recognised no OS: the first one that
 * mounts read-only and has it. NULL when none does. */
static char *find_unrecognised_root(guestfs_h *g)
{
	char **fs = guestfs_list_filesystems(g);
	char *root = NULL;
	for (size_t i = 0; fs && fs[i] && fs[i + 1] && !root; i += 2) {
		const char *type = fs[i + 1];
		if (!strcmp(type, "swap") || !strcmp(type, "unknown") || !strcmp(type, "crypto_LUKS"))
			continue;
		if (guestfs_mount_ro(g, fs[i], "/") < 0)
			continue;
		if (guestfs_is_file_opts(g, "/etc/fstab", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) > 0)
			root = strdup(fs[i]);
		guestfs_umount_all(g);
	}
	free_strings(fs);
	return root;
}

/* The root device: the first inspection root, else find_unrecognised_root. *recognised
 * says which. NULL when neither finds one. */
static char *find_root(guestfs_h *g, bool *recognised)
{
	char **roots = guestfs_inspect_os(g);
	char *root = NULL;
	*recognised = roots && roots[0];
	if (*recognised)
		root = strdup(roots[0]);
	free_strings(roots);
	return *recognised ? root : find_unrecognised_root(g);
}

static int by_mountpoint_length(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? -1 : la > lb;
}

/* Mount the guest's file systems as its fstab does (inspection's view), / first. Only a
 * failure to mount / is an error; *boot_dev receives the device of a separate /boot
 * (malloc'd) or NULL. */
static int mount_guest(guestfs_h *g, const char *root, bool recognised, bool readonly,
		       char **boot_dev)
{
	char **mp = recognised ? guestfs_inspect_get_mountpoints(g, root) : NULL;
	size_t n = 0;
	int rc = 0;
	*boot_dev = NULL;
	if ((readonly ? guestfs_mount_ro(g, root, "/") : guestfs_mount(g, root, "/")) < 0) {
		rc = fail_g(g, EIO, "mounting the root file system");
		goto free_mp;
	}
	while (mp && mp[n] && mp[n + 1])
		n += 2;
	/* Pairs (mountpoint, device); sorting the pair starts keeps each pair together. */
	if (n > 0)
		qsort(mp, n / 2, 2 * sizeof(*mp), by_mountpoint_length);
	for (size_t i = 0; i < n; i += 2) {
		if (!strcmp(mp[i], "/"))
			continue;
		if (!strcmp(mp[i], "/boot") && !*boot_dev)
			*boot_dev = strdup(mp[i + 1]);
		if (readonly)
			guestfs_mount_ro(g, mp[i + 1], mp[i]);
		else
			guestfs_mount(g, mp[i + 1], mp[i]);
	}
free_mp:
	free_strings(mp);
	return rc;
}

static bool guest_is_file(guestfs_h *g, const char *path)
{
	return guestfs_is_file_opts(g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) > 0;
}

/* Read a regular file of at most max_bytes from the guest; -ENOENT if absent. */
static int read_guest_file(guestfs_h *g, const char *path, size_t max_bytes, char **out,
			   size_t *bytes)
{
	int64_t size;
	if (!guest_is_file(g, path))
		return -ENOENT;
	size = guestfs_filesize(g, path);
	if (size < 0)
		return fail_g(g, EIO, path);
	if ((uint64_t)size > max_bytes)
		return vdisk_fail(EINVAL, "guest: %s is %lld bytes, more than the %zu accepted", path,
				  (long long)size, max_bytes);
	*out = guestfs_read_file(g, path, bytes);
	return *out ? 0 : fail_g(g, EIO, path);
}

/* ---- guest_inspect ---- */

/* A string from libguestfs, or a copy of fallback when the call failed. */
static char *str_or(char *s, const char *fallback)
{
	return s ? s : strdup(fallback);
}

/* Partition number of dev on the disk, 0 for LVM, md and anything not a partition. */
static uint32_t part_number(guestfs_h *g, const char *dev)
{
	int n;
	if (!dev || strncmp(dev, "/dev/sd", 7) || guestfs_is_lv(g, dev) > 0)
		return 0;
	n = guestfs_part_to_partnum(g, dev);
	return n > 0 ? (uint32_t)n : 0;
}

static char *fs_uuid(guestfs_h *g, const char *dev)
{
	char *u = dev ? guestfs_vfs_uuid(g, dev) : NULL;
	if (u && !*u) {
		free(u);
		u = NULL;
	}
	return u;
}

/* Whether the disk or one of its partitions is LUKS: with no root found otherwise, the root
 * is in it. (list_filesystems leaves LUKS volumes out, so each device's type is asked.) */
static bool is_luks(guestfs_h *g, const char *dev)
{
	char *type = guestfs_vfs_type(g, dev);
	bool luks = type && !strcmp(type, "crypto_LUKS");
	free(type);
	return luks;
}

static bool has_luks(guestfs_h *g)
{
	char **parts = guestfs_list_partitions(g), **disks = guestfs_list_devices(g);
	bool found = false;
	for (size_t i = 0; parts && parts[i] && !found; i++)
		found = is_luks(g, parts[i]);
	for (size_t i = 0; disks && disks[i] && !found; i++)
		found = is_luks(g, disks[i]);
	free_strings(parts);
	free_strings(disks);
	return found;
}

static void inspect_os_facts(guestfs_h *g, const char *root, bool recognised,
			     struct guest_info *gi)
{
	gi->os_type = str_or(recognised ? guestfs_inspect_get_type(g, root) : NULL, "unknown");
	gi->distro = str_or(recognised ? guestfs_inspect_get_distro(g, root) : NULL, "unknown");
	gi->product_name = str_or(recognised ? guestfs_inspect_get_product_name(g, root) : NULL,
				  "unknown");
	gi->arch = str_or(recognised ? guestfs_inspect_get_arch(g, root) : NULL, "unknown");
	gi->major = recognised ? guestfs_inspect_get_major_version(g, root) : 0;
	gi->minor = recognised ? guestfs_inspect_get_minor_version(g, root) : 0;
	if (gi->major < 0)
		gi->major = 0;
	if (gi->minor < 0)
		gi->minor = 0;
}

static const char *const grub2_cfgs[] = { "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg" };
static const char *const grub_legacy_cfgs[] = { "/boot/grub/menu.lst", "/boot/grub/grub.conf" };
static const char *const syslinux_cfgs[] = {
	"/boot/syslinux/syslinux.cfg", "/boot/syslinux.cfg", "/boot/extlinux/extlinux.conf",
	"/boot/extlinux.conf", "/syslinux/syslinux.cfg", "/syslinux.cfg",
	"/extlinux/extlinux.conf", "/extlinux.conf",
};

static const char *first_file(guestfs_h *g, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (guest_is_file(g, paths[i]))
			return paths[i];
	return NULL;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* grub.cfg (and its BLS/linux16 facts) before menu.lst before SYSLINUX: a guest with
 * several is most likely booted by the newest. */
static int inspect_bootloader(guestfs_h *g, bool boot_separate, struct guest_info *gi)
{
	const char *cfg = first_file(g, grub2_cfgs, N_OF(grub2_cfgs));
	char *text = NULL;
	size_t bytes = 0;
	int rc;
	gi->bootloader = GUEST_BOOT_GRUB2;
	if (!cfg && (cfg = first_file(g, grub_legacy_cfgs, N_OF(grub_legacy_cfgs))))
		gi->bootloader = GUEST_BOOT_GRUB_LEGACY;
	if (!cfg && (cfg = first_file(g, syslinux_cfgs, N_OF(syslinux_cfgs))))
		gi->bootloader = GUEST_BOOT_SYSLINUX;
	if (!cfg) {
		gi->bootloader = GUEST_BOOT_UNKNOWN;
		return 0;
	}
	gi->loader_cfg = strdup(cfg);
	if (gi->bootloader != GUEST_BOOT_GRUB2)
		return gi->loader_cfg ? 0 : vdisk_fail(ENOMEM, "guest: out of memory");
	gi->grub_cfg = strdup(boot_separate ? cfg + strlen("/boot") : cfg);
	if (!gi->loader_cfg || !gi->grub_cfg)
		return vdisk_fail(ENOMEM, "guest: out of memory");
	rc = read_guest_file(g, cfg, GUEST_CFG_MAX_BYTES, &text, &bytes);
	if (rc < 0)
		return rc;
	if (memchr(text, '\0', bytes)) {
		free(text);
		return vdisk_fail(EINVAL, "guest: %s holds a NUL byte", cfg);
	}
	guest_grub_cfg_scan(text, bytes, &gi->grub_bls, &gi->grub_has_linux16);
	free(text);
	return 0;
}

static int inspect_fstab(guestfs_h *g, struct guest_info *gi)
{
	char *text = NULL;
	size_t bytes = 0;
	int rc = read_guest_file(g, "/etc/fstab", GUEST_FSTAB_MAX_BYTES, &text, &bytes);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = guest_fstab_parse(text, bytes, &gi->fstab, &gi->n_fstab);
	free(text);
	return rc;
}

/* Everything read from the mounted guest. */
static int inspect_mounted(guestfs_h *g, const char *root, const char *boot_dev,
			   struct guest_info *gi)
{
	int rc;
	gi->root_part = part_number(g, root);
	gi->boot_part = boot_dev ? part_number(g, boot_dev) : gi->root_part;
	gi->root_fs_uuid = fs_uuid(g, root);
	gi->boot_fs_uuid = boot_dev ? fs_uuid(g, boot_dev) : fs_uuid(g, root);
	gi->root_on_lvm = guestfs_is_lv(g, root) > 0;
	gi->has_grub_efi = guest_is_file(g, GUEST_GRUB_EFI_MOD);
	rc = inspect_bootloader(g, boot_dev != NULL, gi);
	if (rc == 0)
		rc = inspect_fstab(g, gi);
	return rc;
}

static int inspect_guest(guestfs_h *g, struct guest_info *gi)
{
	bool recognised;
	char *root = find_root(g, &recognised), *boot_dev = NULL;
	int rc = 0;
	inspect_os_facts(g, root, root && recognised, gi);
	if (!gi->os_type || !gi->distro || !gi->product_name || !gi->arch) {
		rc = vdisk_fail(ENOMEM, "guest: out of memory");
		goto free_root;
	}
	if (!root) {
		gi->root_encrypted = has_luks(g);
		goto free_root;
	}
	rc = mount_guest(g, root, recognised, true, &boot_dev);
	if (rc == 0)
		rc = inspect_mounted(g, root, boot_dev, gi);
	free(boot_dev);
free_root:
	free(root);
	return rc;
}

int guest_inspect(const char *disk_path, const char *format, struct guest_info **out)
{
	struct guest_info *gi = calloc(1, sizeof(*gi));
	guestfs_h *g = NULL;
	int rc;
	if (!gi)
		return vdisk_fail(ENOMEM, "guest: out of memory");
	rc = session_open(disk_path, format, true, &g);
	if (rc < 0)
		goto free_gi;
	rc = inspect_guest(g, gi);
	guestfs_close(g);
	if (rc < 0)
		goto free_gi;
	*out = gi;
	return 0;

free_gi:
	guest_info_free(gi);
	return rc;
}

const char *guest_bootloader_name(enum guest_bootloader b)
{
	switch (b) {
	case GUEST_BOOT_GRUB2: return "grub2";
	case GUEST_BOOT_GRUB_LEGACY: return "grub-legacy";
	case GUEST_BOOT_SYSLINUX: return "syslinux";
	case GUEST_BOOT_UNKNOWN: break;
	}
	return "unknown";
}

void guest_info_free(struct guest_info *gi)
{
	if (!gi)
		return;
	free(gi->os_type);
	free(gi->distro);
	free(gi->product_name);
	free(gi->arch);
	free(gi->root_fs_uuid);
	free(gi->boot_fs_uuid);
	free(gi->loader_cfg);
	free(gi->grub_cfg);
	guest_fstab_free(gi->fstab, gi->n_fstab);
	free(gi);
}

/* ---- guest_fix_linux ---- */

/* fs_uuid[N] for every partition of the disk (freed with free_remap). */
static int build_remap(guestfs_h *g, const struct guest_fix_opts *o, struct guest_remap *m)
{
	char **parts = guestfs_list_partitions(g);
	memset(m, 0, sizeof(*m));
	if (!parts)
		return fail_g(g, EIO, "listing partitions");
	for (size_t i = 0; parts[i]; i++) {
		int n = guestfs_part_to_partnum(g, parts[i]);
		if (n > 0 && n <= GUEST_MAX_PARTS && !m->fs_uuid[n])
			m->fs_uuid[n] = fs_uuid(g, parts[i]);
	}
	free_strings(parts);
	m->n_partuuids = o->n_partuuids;
	m->partuuid_old = o->partuuid_old;
	m->partuuid_new = o->partuuid_new;
	return 0;
}

static void free_remap(struct guest_remap *m)
{
	for (size_t i = 0; i <= GUEST_MAX_PARTS; i++)
		free((char *)m->fs_uuid[i]);
}

/* Give path the mode and owner of like (the file it replaces). */
static int copy_attrs(guestfs_h *g, const char *like, const char *path)
{
	struct guestfs_statns *st = guestfs_statns(g, like);
	int rc = 0;
	if (!st)
		return fail_g(g, EIO, like);
	if (guestfs_chmod(g, (int)(st->st_mode & 07777), path) < 0 ||
	    guestfs_chown(g, (int)st->st_uid, (int)st->st_gid, path) < 0)
		rc = fail_g(g, EIO, path);
	guestfs_free_statns(st);
	return rc;
}

/* Replace path's contents crash-safely: the original is kept as path.genshift-bak (an older
 * backup, from an earlier run, is the true original and stays), the new text goes to
 * path.genshift-new with the original's mode and owner, and a rename puts it in place, so
 * the guest sees either the old file or the new one. */
static int replace_guest_file(guestfs_h *g, const char *path, const char *text, size_t bytes)
{
	char bak[4096], tmp[4096];
	snprintf(bak, sizeof(bak), "%s.genshift-bak", path);
	snprintf(tmp, sizeof(tmp), "%s.genshift-new", path);
	if (guestfs_exists(g, bak) <= 0 && guestfs_cp_a(g, path, bak) < 0)
		return fail_g(g, EIO, bak);
	if (guestfs_write(g, tmp, text, bytes) < 0)
		return fail_g(g, EIO, tmp);
	if (copy_attrs(g, path, tmp) < 0)
		return -EIO;
	if (guestfs_rename(g, tmp, path) < 0)
		return fail_g(g, EIO, path);
	return 0;
}

enum edit_kind { EDIT_FSTAB, EDIT_CMDLINE };

/* Rewrite one guest file if it exists and anything in it changes. A symbolic link is left
 * alone (and reported): following it could lead out of the guest's tree. */
static int edit_guest_file(guestfs_h *g, const char *path, enum edit_kind kind,
			   const struct guest_remap *m, const char *esp_uuid,
			   struct guest_fix_report *r)
{
	char *text = NULL, *out = NULL;
	size_t bytes = 0, out_bytes = 0, before = r->n_changes;
	int rc;
	if (guestfs_is_symlink(g, path) > 0)
		return guest_report_add(r, "%s: left as is: a symbolic link", path);
	rc = read_guest_file(g, path, kind == EDIT_FSTAB ? GUEST_FSTAB_MAX_BYTES :
			     GUEST_CFG_MAX_BYTES, &text, &bytes);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (kind == EDIT_FSTAB)
		rc = guest_fstab_edit(path, text, bytes, m, esp_uuid, r, &out, &out_bytes);
	else
		rc = guest_cmdline_edit(path, text, bytes, m, r, &out, &out_bytes);
	if (rc == 0 && r->n_changes > before)
		rc = replace_guest_file(g, path, out, out_bytes);
	free(out);
	free(text);
	return rc;
}

static int edit_guest_files(guestfs_h *g, const struct guest_fix_opts *o,
			    struct guest_fix_report *r)
{
	static const char *const cmdline_files[] = {
		"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/etc/default/grub",
	};
	struct guest_remap m;
	char esp_uuid[16];
	int rc = build_remap(g, o, &m);
	if (rc < 0)
		return rc;
	snprintf(esp_uuid, sizeof(esp_uuid), "%04X-%04X", o->esp_volume_id >> 16,
		 o->esp_volume_id & 0xffff);
	rc = edit_guest_file(g, "/etc/fstab", EDIT_FSTAB, &m,
			     o->esp_volume_id ? esp_uuid : NULL, r);
	for (size_t i = 0; i < N_OF(cmdline_files) && rc == 0; i++)
		rc = edit_guest_file(g, cmdline_files[i], EDIT_CMDLINE, &m, NULL, r);
	free_remap(&m);
	return rc;
}

/* The vfat file system whose serial is volume_id (text "XXXX-XXXX"), or NULL. */
static char *find_esp(guestfs_h *g, uint32_t volume_id)
{
	char **fs = guestfs_list_filesystems(g), want[16], *dev = NULL;
	snprintf(want, sizeof(want), "%04X-%04X", volume_id >> 16, volume_id & 0xffff);
	for (size_t i = 0; fs && fs[i] && fs[i + 1] && !dev; i += 2) {
		char *u = strcmp(fs[i + 1], "vfat") ? NULL : fs_uuid(g, fs[i]);
		if (u && !strcasecmp(u, want))
			dev = strdup(fs[i]);
		free(u);
	}
	free_strings(fs);
	return dev;
}

/* The guest's own grub-install for EFI, run in the guest's tree with the ESP at /boot/efi.
 * --no-nvram: the appliance's firmware variables are not the VM's (nvram.c writes those);
 * not --removable: \EFI\BOOT\BOOTX64.EFI stays bootfix's loader, the fallback that works
 * whatever the NVRAM holds, and the guest's loader goes to \EFI\<id>\ where the Boot####
 * entry points and where the guest's later grub updates look for it. */
static int run_guest_grub(guestfs_h *g, const struct guest_fix_opts *o, const char *distro,
			  struct guest_fix_report *r)
{
	char id_opt[128], *esp, *output;
	char prog[] = "grub-install", target[] = "--target=x86_64-efi";
	char efi_dir[] = "--efi-directory=/boot/efi", no_nvram[] = "--no-nvram";
	int rc = 0;
	esp = find_esp(g, o->esp_volume_id);
	if (!esp)
		return vdisk_fail(ENOENT, "guest: --guest-grub: no vfat file system with serial "
				  "%04X-%04X (the ESP) on the disk", o->esp_volume_id >> 16,
				  o->esp_volume_id & 0xffff);
	if (guestfs_is_dir(g, "/boot/efi") <= 0) {
		if (guestfs_mkdir_p(g, "/boot/efi") < 0) {
			rc = fail_g(g, EIO, "mkdir /boot/efi");
			goto free_esp;
		}
		rc = guest_report_add(r, "/boot/efi: created (mount point of the ESP)");
	}
	if (rc == 0 && guestfs_mount(g, esp, "/boot/efi") < 0)
		rc = fail_g(g, EIO, "mounting the ESP at /boot/efi");
	if (rc < 0)
		goto free_esp;
	snprintf(id_opt, sizeof(id_opt), "--bootloader-id=%s", distro);
	{
		char *argv[] = { prog, target, efi_dir, id_opt, no_nvram, NULL };
		output = guestfs_command(g, argv);
	}
	if (!output) {
		rc = fail_g(g, EIO, "grub-install --target=x86_64-efi in the guest");
		goto free_esp;
	}
	free(output);
	rc = guest_report_add(r, "grub-install --target=x86_64-efi --efi-directory=/boot/efi %s "
			      "--no-nvram: ran in the guest", id_opt);
free_esp:
	free(esp);
	return rc;
}

static int fix_guest(guestfs_h *g, const struct guest_fix_opts *o, struct guest_fix_report *r)
{
	bool recognised;
	char *root = find_root(g, &recognised), *boot_dev = NULL, *type = NULL, *distro = NULL;
	int rc = 0;
	if (!root)
		return vdisk_fail(ENOENT, "guest: no root file system (none holds /etc/fstab)");
	type = recognised ? guestfs_inspect_get_type(g, root) : NULL;
	if (type && strcmp(type, "linux")) {
		rc = vdisk_fail(ENOTSUP, "guest: the OS on %s is %s, not Linux", root, type);
		goto free_root;
	}
	rc = mount_guest(g, root, recognised, false, &boot_dev);
	/* Refused before any edit, so a refusal leaves the guest as it was. */
	if (rc == 0 && o->run_guest_grub && !guest_is_file(g, GUEST_GRUB_EFI_MOD))
		rc = vdisk_fail(ENOTSUP, "guest: --guest-grub: the guest has no grub-efi modules "
				"(%s); install grub-efi-amd64-bin (Debian) or grub2-efi-x64-modules "
				"(RHEL) in it first, or convert without --guest-grub", GUEST_GRUB_EFI_MOD);
	if (rc == 0)
		rc = edit_guest_files(g, o, r);
	if (rc == 0 && o->run_guest_grub) {
		distro = recognised ? guestfs_inspect_get_distro(g, root) : NULL;
		rc = run_guest_grub(g, o, o->efi_distro ? o->efi_distro :
				    distro ? distro : "linux", r);
	}
free_root:
	free(distro);
	free(boot_dev);
	free(type);
	free(root);
	return rc;
}

/* After writes, unmounting and shutdown are where the guest kernel and qemu flush the disk:
 * their failure is a write error. Both run even after an earlier failure, so the edits that
 * did complete (each one whole, by rename) reach the disk consistently. */
static int finish_writes(guestfs_h *g)
{
	int u = guestfs_umount_all(g);
	int s = guestfs_shutdown(g);
	return u < 0 || s < 0 ? -EIO : 0;
}

int guest_fix_linux(const char *disk_path, const char *format, const struct guest_fix_opts *o,
		    struct guest_fix_report **out)
{
	struct guest_fix_report *r = calloc(1, sizeof(*r));
	guestfs_h *g = NULL;
	int rc;
	if (!r)
		return vdisk_fail(ENOMEM, "guest: out of memory");
	rc = session_open(disk_path, format, false, &g);
	if (rc < 0)
		goto free_report;
	rc = fix_guest(g, o, r);
	if (finish_writes(g) < 0 && rc == 0)
		rc = fail_g(g, EIO, "writing the guest's file systems back (umount/shutdown)");
	guestfs_close(g);
	if (rc < 0)
		goto free_report;
	*out = r;
	return 0;

free_report:
	guest_fix_report_free(r);
	return rc;
}

void guest_fix_report_free(struct guest_fix_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_changes; i++)
		free(r->changes[i]);
	free(r->changes);
	free(r);
}
