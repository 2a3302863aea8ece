/* bootfix/grub.c - the GRUB EFI loader for converted Linux guests: the image (grub-mkimage run
 * as a program), the stub grub.cfg that loads the guest's own configuration, and
 * bootfix_linux_esp() that puts both on a fresh FAT32 ESP (../shared/docs/bootfix.md 4.1).
 *
 * One image serves both loader paths. It is built with an empty prefix (-p ''): GRUB then
 * takes its prefix from the directory it was loaded from ((hd0,gpt2)/EFI/BOOT or
 * /EFI/debian, grub-core/kern/main.c grub_set_prefix_and_root), so each copy reads the
 * grub.cfg beside it and either boots on its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bootfix/bootfix.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

extern char **environ;

#define GRUB_DEFAULT_LIB_DIR "/usr/lib/grub/x86_64-efi"
#define GRUB_MAX_IMAGE_BYTES (64u << 20) /* the 4.1 image is ~1 MB */
#define GRUB_STDERR_BYTES 1024u
#define GRUB_MAX_DISTRO_BYTES 64u
#define GRUB_MAX_DIR_BYTES 256u
#define GRUB_MAX_UUID_BYTES 64u

/* bootfix.md 4.1: what a BIOS guest's grub.cfg needs (partition tables, the usual root file
 * systems, search, linux with gzio, video for the console) and deliberately neither linux16
 * nor memdisk, so that linux16 is not a known command and the stub's function stands in. */
const char *const grub_efi_modules[] = {
	"part_gpt", "part_msdos", "fat", "ext2", "xfs", "btrfs", "lvm", "mdraid09", "mdraid1x",
	"diskfilter", "search", "search_fs_uuid", "search_fs_file", "search_label", "normal",
	"configfile", "echo", "test", "linux", "gzio", "all_video", "efi_gop", "efi_uga", "font",
	"gfxterm", "gfxterm_background", "loadenv", "regexp", "minicmd", "cat", "sleep", "reboot",
	"halt", "true", "probe", "chain", NULL,
};
#define GRUB_N_MODULES (sizeof(grub_efi_modules) / sizeof(grub_efi_modules[0]) - 1)

/* ---- running grub-mkimage ---- */

/* Every module, kernel.img and moddep.lst must be there: grub-mkimage's own message for a
 * missing one is less clear about what to install. */
static int grub_check_lib_dir(const char *lib_dir)
{
	static const char *const base[] = { "kernel.img", "moddep.lst" };
	char path[4096];
	for (size_t i = 0; i < 2 + GRUB_N_MODULES; i++) {
		const char *name = i < 2 ? base[i] : grub_efi_modules[i - 2];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s%s", lib_dir, name, i < 2 ? "" : ".mod");
		if (stat(path, &st) < 0)
			return vdisk_fail(ENOENT, "GRUB EFI modules: %s is missing (%s; install Debian's "
					  "grub-efi-amd64-bin)", path, strerror(errno));
	}
	return 0;
}

/* Read what the child writes on stdout/stderr (kept: the first GRUB_STDERR_BYTES) until EOF. */
static void grub_drain(int fd, char *msg, size_t cap)
{
	size_t len = 0;
	char chunk[512];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
		memcpy(msg + len, chunk, take);
		len += take;
	}
	msg[len] = '\0';
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	/* one line, since it ends up inside a one-line error message */
	for (char *p = msg; (p = strchr(p, '\n'));)
		*p = ' ';
}

static int grub_wait(pid_t pid, const char *msg)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return vdisk_fail(errno, "grub-mkimage: waitpid failed: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return vdisk_fail(EIO, "grub-mkimage failed with exit status %d: %s",
				  WEXITSTATUS(status), msg[0] ? msg : "(no message)");
	return vdisk_fail(EIO, "grub-mkimage was killed by signal %d: %s",
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0, msg[0] ? msg : "(no message)");
}

/* Start argv[0] from PATH with stdin from /dev/null and stdout and stderr into out_fd. */
static int grub_spawn(const char *const *argv, int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int r = posix_spawn_file_actions_init(&fa);
	if (r != 0)
		return vdisk_fail(r, "cannot run %s: %s", argv[0], strerror(r));
	r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	if (r == 0)
		r = posix_spawnp(pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r == ENOENT)
		return vdisk_fail(ENOENT, "%s is not in PATH (install Debian's grub-common and "
				  "grub-efi-amd64-bin)", argv[0]);
	if (r != 0)
		return vdisk_fail(r, "cannot run %s: %s", argv[0], strerror(r));
	return 0;
}

/* grub-mkimage -O x86_64-efi -d LIB -p PREFIX -o OUT MODULES..., no shell; its stdout and
 * stderr become the error message. */
static int grub_run_mkimage(const char *lib_dir, const char *prefix, const char *out_path)
{
	const char *argv[12 + GRUB_N_MODULES] = { "grub-mkimage", "-O", "x86_64-efi", "-d", lib_dir,
						   "-p", prefix, "-o", out_path };
	memcpy(argv + 9, grub_efi_modules, sizeof(grub_efi_modules));
	char msg[GRUB_STDERR_BYTES];
	int pipefd[2];
	pid_t pid;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return vdisk_fail(errno, "grub-mkimage: pipe failed: %s", strerror(errno));
	int r = grub_spawn(argv, pipefd[1], &pid);
	close(pipefd[1]);
	if (r == 0) {
		grub_drain(pipefd[0], msg, sizeof(msg));
		r = grub_wait(pid, msg);
	}
	close(pipefd[0]);
	return r;
}

/* The whole of a file grub-mkimage wrote, checked to be a PE image ("MZ"). */
static int grub_read_image(const char *path, uint8_t **image_out, size_t *bytes_out)
{
	struct stat st;
	uint8_t *buf = NULL;
	int r, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "grub-mkimage output %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = vdisk_fail(errno, "grub-mkimage output %s: %s", path, strerror(errno));
		goto close_fd;
	}
	if (st.st_size < 64 || st.st_size > GRUB_MAX_IMAGE_BYTES) {
		r = vdisk_fail(EIO, "grub-mkimage output %s has %lld bytes (expected 64 .. %u)", path,
			       (long long)st.st_size, GRUB_MAX_IMAGE_BYTES);
		goto close_fd;
	}
	if (!(buf = malloc((size_t)st.st_size))) {
		r = vdisk_fail(ENOMEM, "out of memory for the GRUB image");
		goto close_fd;
	}
	if ((r = vdisk_pread(fd, path, buf, (size_t)st.st_size, 0)) < 0)
		goto free_buf;
	if (buf[0] != 'M' || buf[1] != 'Z') {
		r = vdisk_fail(EIO, "grub-mkimage output %s is not a PE image (no MZ at offset 0)", path);
		goto free_buf;
	}
	*image_out = buf;
	*bytes_out = (size_t)st.st_size;
	buf = NULL;
free_buf:
	free(buf);
close_fd:
	close(fd);
	return r;
}

int grub_efi_image_new(const char *lib_dir, const char *prefix, uint8_t **image_out,
		       size_t *bytes_out)
{
	const char *tmpdir = getenv("TMPDIR");
	char path[4096];
	if (!prefix)
		return vdisk_fail(EINVAL, "grub_efi_image_new: no prefix (\"\" for the loader's own "
				  "directory)");
	if (!lib_dir)
		lib_dir = GRUB_DEFAULT_LIB_DIR;
	int r = grub_check_lib_dir(lib_dir);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/genshift-grub-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "cannot create a temporary file %s: %s", path, strerror(errno));
	close(fd);
	r = grub_run_mkimage(lib_dir, prefix, path);
	if (r == 0)
		r = grub_read_image(path, image_out, bytes_out);
	unlink(path);
	return r;
}

/* ---- the stub grub.cfg ---- */

static bool grub_uuid_ok(const char *s)
{
	size_t len = strnlen(s, GRUB_MAX_UUID_BYTES + 1);
	if (len == 0 || len > GRUB_MAX_UUID_BYTES)
		return false;
	return strspn(s, "0123456789abcdefABCDEF-") == len;
}

/* An absolute directory without "." or ".." components, empty components or a trailing '/',
 * from characters that need no quoting in a GRUB script. */
static bool grub_dir_ok(const char *s)
{
	size_t len = strnlen(s, GRUB_MAX_DIR_BYTES + 1);
	if (len < 2 || len > GRUB_MAX_DIR_BYTES || s[0] != '/' || s[len - 1] == '/')
		return false;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+@/") != len)
		return false;
	return !strstr(s, "//") && !strstr(s, "/./") && !strstr(s, "/../") &&
	       strcmp(s + len - 2, "/.") != 0 && (len < 3 || strcmp(s + len - 3, "/..") != 0);
}

int grub_stub_cfg_new(const char *boot_fs_uuid, const char *grub_dir, char **cfg_out)
{
	if (!boot_fs_uuid || !grub_uuid_ok(boot_fs_uuid))
		return vdisk_fail(EINVAL, "GRUB stub: file system UUID \"%s\" is not 1-%u hex digits "
				  "and dashes", boot_fs_uuid ? boot_fs_uuid : "(null)",
				  GRUB_MAX_UUID_BYTES);
	if (!grub_dir || !grub_dir_ok(grub_dir))
		return vdisk_fail(EINVAL, "GRUB stub: grub directory \"%s\" is not an absolute path "
				  "like /boot/grub (letters, digits, ._-+@, no . or .. parts)",
				  grub_dir ? grub_dir : "(null)");
	char *cfg;
	int n = asprintf(&cfg,
		"# Written by genshift: finds the guest's boot file system and runs its own grub.cfg.\n"
		"# linux16/initrd16 are BIOS-only: this GRUB image has no linux16 module, so these\n"
		"# functions run in their place (GRUB looks up commands before functions).\n"
		"function linux16 { linux \"$@\"; }\n"
		"function initrd16 { initrd \"$@\"; }\n"
		"search --no-floppy --fs-uuid --set=root %s\n"
		"set prefix=($root)%s\n"
		"source $prefix/grub.cfg\n", boot_fs_uuid, grub_dir);
	if (n < 0)
		return vdisk_fail(ENOMEM, "out of memory for the GRUB stub");
	*cfg_out = cfg;
	return 0;
}

/* ---- the ESP ---- */

/* One path component for \EFI\<distro>: letters, digits, '.', '_', '-', starting and ending
 * with a letter or digit, and not BOOT, which is the removable-media directory. */
static int grub_check_distro(const char *s)
{
	size_t len = s ? strnlen(s, GRUB_MAX_DISTRO_BYTES + 1) : 0;
	const char *alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	if (len == 0 || len > GRUB_MAX_DISTRO_BYTES || strspn(s, "._-") > 0 ||
	    !strchr(alnum, s[len - 1]) || strspn(s, "abcdefghijklmnopqrstuvwxyz"
						 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
		return vdisk_fail(EINVAL, "bootfix_linux_esp: distro \"%s\" is not a safe directory "
				  "name (1-%u of A-Z a-z 0-9 . _ -, starting and ending with a letter "
				  "or digit)", s ? s : "(null)", GRUB_MAX_DISTRO_BYTES);
	if (strcasecmp(s, "BOOT") == 0)
		return vdisk_fail(EINVAL, "bootfix_linux_esp: distro \"%s\" would be \\EFI\\BOOT, the "
				  "removable-media directory", s);
	return 0;
}

/* The entry numbered esp_number, which must be an EFI system partition of d's sector size. */
static int grub_find_esp(struct vdisk *d, const struct part_table *t, uint32_t esp_number,
			 const struct part_entry **out)
{
	/* C12A7328-F81F-11D2-BA4B-00A0C93EC93B in the on-disk (mixed-endian) byte order. */
	static const uint8_t esp_guid[16] = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
					      0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };
	char name[32];
	if (t->sector_bytes != vdisk_logical_sector_bytes(d))
		return vdisk_fail(EINVAL, "bootfix_linux_esp: the table was read with %u-byte sectors, "
				  "%s has %u", t->sector_bytes, vdisk_path(d),
				  vdisk_logical_sector_bytes(d));
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (e->number != esp_number)
			continue;
		if (memcmp(e->type_guid, esp_guid, 16) != 0 && e->mbr_type != 0xEF)
			return vdisk_fail(EINVAL, "bootfix_linux_esp: partition %u is %s, not an EFI "
					  "system partition; refusing to format it", esp_number,
					  part_type_name(e, name));
		*out = e;
		return 0;
	}
	return vdisk_fail(EINVAL, "bootfix_linux_esp: %s has no partition %u", vdisk_path(d),
			  esp_number);
}

static int grub_format_esp(struct vdisk *d, const struct part_entry *e,
			   const struct bootfix_linux_opts *o, const uint8_t *image, size_t image_bytes,
			   const char *cfg, uint32_t *volume_id_out)
{
	char loader[GRUB_MAX_DISTRO_BYTES + 32], distro_cfg[GRUB_MAX_DISTRO_BYTES + 32];
	snprintf(loader, sizeof(loader), "EFI/%s/grubx64.efi", o->distro);
	snprintf(distro_cfg, sizeof(distro_cfg), "EFI/%s/grub.cfg", o->distro);
	const struct esp_file files[] = {
		{ "EFI/BOOT/BOOTX64.EFI", image, image_bytes },
		{ "EFI/BOOT/grub.cfg", cfg, strlen(cfg) },
		{ loader, image, image_bytes },
		{ distro_cfg, cfg, strlen(cfg) },
	};
	const struct esp_opts eo = { .volume_id = o->esp_volume_id };
	return esp_format(d, e->first_lba, e->last_lba - e->first_lba + 1, &eo, files, 4,
			  volume_id_out);
}

int bootfix_linux_esp(struct vdisk *d, const struct part_table *t, uint32_t esp_number,
		      const struct bootfix_linux_opts *o, uint32_t *volume_id_out)
{
	const struct part_entry *e = NULL;
	uint8_t *image = NULL;
	size_t image_bytes = 0;
	char *cfg = NULL;
	if (!o)
		return vdisk_fail(EINVAL, "bootfix_linux_esp: no options");
	int r = grub_check_distro(o->distro);
	if (r < 0)
		return r;
	if ((r = grub_find_esp(d, t, esp_number, &e)) < 0)
		return r;
	if ((r = grub_stub_cfg_new(o->boot_fs_uuid, o->grub_dir, &cfg)) < 0)
		return r;
	if ((r = grub_efi_image_new(o->grub_lib_dir, "", &image, &image_bytes)) < 0)
		goto free_cfg;
	r = grub_format_esp(d, e, o, image, image_bytes, cfg, volume_id_out);
	free(image);
free_cfg:
	free(cfg);
	return r;
}
