/* convert/pipeline.c - `genshift convert`, step 0: load the generation 1 source (a vmcfg or
 * a bare disk), analyze it read-only and plan the partition conversion. The steps that
 * write are in convert/pipeline-run.c. */
#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "convert/analyze.h"
#include "convert/pipeline.h"

#define PROBE_BYTES (1u << 20) /* every superblock libblkid knows lies in the first MiB */

/* A file starting with '{' is a configuration; anything else is taken for a disk image. */
static int source_is_config(const char *path, bool *is_config)
{
	char c = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return vdisk_fail(errno, "%s: %s", path, strerror(errno));
	ssize_t n;
	do
		n = read(fd, &c, 1);
	while (n == 1 && isspace((unsigned char)c));
	close(fd);
	*is_config = n == 1 && c == '{';
	return 0;
}

/* The disk the VM boots from: the first disk in boot_order, else the first disk. */
static int find_boot_disk(const struct vmcfg *cfg, const char *path, unsigned *out)
{
	for (unsigned i = 0; i < cfg->n_boot; i++)
		if (cfg->boot_order[i].kind == VMCFG_BOOT_DISK) {
			*out = cfg->boot_order[i].index;
			return 0;
		}
	for (unsigned i = 0; i < cfg->n_disks; i++)
		if (cfg->disks[i].media == VMCFG_MEDIA_DISK) {
			*out = i;
			return 0;
		}
	return vdisk_fail(EINVAL, "%s: the configuration has no disk to convert", path);
}

static int load_source(struct cv_run *run)
{
	const char *src = run->o->src;
	bool is_config = false;
	int r = source_is_config(src, &is_config);

	if (r == 0)
		r = is_config ? vmcfg_load(src, &run->gen1) : vmcfg_new_simple(1, src, &run->gen1);
	if (r < 0)
		return r;
	if (run->gen1->generation != 1)
		return vdisk_fail(EINVAL, "%s: the VM already is generation %u; nothing to convert",
				  src, run->gen1->generation);
	if (is_config && (r = find_boot_disk(run->gen1, src, &run->boot_disk)) < 0)
		return r;
	const char *disk = run->gen1->disks[run->boot_disk].path;
	if (!realpath(disk, run->src_disk))
		return vdisk_fail(errno, "%s: disk %s: %s", src, disk, strerror(errno));
	return 0;
}

/* NAME: --name, else the source's file name up to its last dot. */
static int pick_name(struct cv_run *run)
{
	char tmp[PATH_MAX];

	if (run->o->name) {
		if (!run->o->name[0] || strchr(run->o->name, '/') || run->o->name[0] == '.')
			return vdisk_fail(EINVAL, "--name %s: a plain file name, not starting with "
					  "'.'", run->o->name);
		snprintf(run->name, sizeof(run->name), "%s", run->o->name);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s", run->o->src);
	snprintf(run->name, sizeof(run->name), "%s", basename(tmp));
	char *dot = strrchr(run->name, '.');
	if (dot && dot != run->name)
		*dot = '\0';
	return 0;
}

/* The Linux root: the active partition of a Linux type, else the first Linux partition.
 * (grub-pc installs keep /boot/grub there unless /boot is separate; deep inspection
 * corrects this when it runs.) */
static const struct part_entry *guess_root(const struct part_table *t)
{
	const struct part_entry *first = NULL;

	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (e->mbr_type != 0x83)
			continue;
		if (e->bootable)
			return e;
		if (!first)
			first = e;
	}
	return first;
}

static int blkid_lookup(int fd, uint64_t bytes, struct cv_run *run)
{
	const char *v;
	blkid_probe pr = blkid_new_probe();
	int r = -ENOMEM;

	if (!pr)
		return vdisk_fail(ENOMEM, "libblkid: cannot allocate a probe");
	if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t)bytes) == 0) {
		blkid_probe_enable_superblocks(pr, 1);
		blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE);
		r = blkid_do_safeprobe(pr) == 0 ? 0 : -ENODATA;
	}
	if (r == 0 && blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0)
		snprintf(run->fs_uuid, sizeof(run->fs_uuid), "%s", v);
	if (r == 0 && blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0)
		snprintf(run->fs_type, sizeof(run->fs_type), "%s", v);
	blkid_free_probe(pr);
	return r;
}

/* libblkid reads a file descriptor, the partition lies inside a VHD/VHDX: its first MiB is
 * copied into a sparse memory file of the partition's size, which is all libblkid needs. */
static int probe_root_fs(struct vdisk *d, struct cv_run *run)
{
	const struct part_entry *e = run->root;
	uint32_t sb = vdisk_logical_sector_bytes(d);
	uint64_t bytes = (e->last_lba - e->first_lba + 1) * sb;
	size_t head = bytes < PROBE_BYTES ? (size_t)bytes : PROBE_BYTES;
	uint8_t *buf = malloc(head);
	int fd = memfd_create("genshift-probe", MFD_CLOEXEC);
	int r = buf && fd >= 0 ? 0 : vdisk_fail(ENOMEM, "cannot allocate the probe buffer");

	if (r == 0 && ftruncate(fd, (off_t)bytes) < 0)
		r = vdisk_fail(errno, "memfd: %s", strerror(errno));
	if (r == 0)
		r = vdisk_read(d, e->first_lba * sb, buf, head);
	if (r == 0)
		r = vdisk_pwrite(fd, "memfd", buf, head, 0);
	if (r == 0 && blkid_lookup(fd, bytes, run) < 0)
		r = vdisk_fail(ENODATA, "%s: partition %u: libblkid finds no file system in its "
			       "first MiB", run->src_disk, e->number);
	if (r == 0 && !run->fs_uuid[0])
		r = vdisk_fail(ENODATA, "%s: partition %u: the %s file system has no UUID",
			       run->src_disk, e->number, run->fs_type);
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

void cv_add_warning(struct cv_run *run, const char *msg)
{
	if (run->n_warnings < sizeof(run->warnings) / sizeof(run->warnings[0]))
		snprintf(run->warnings[run->n_warnings++], sizeof(run->warnings[0]), "%s", msg);
}

/* What only libguestfs can tell: the real /boot file system, grub.cfg's directory and the
 * distribution (whether the guest is convertible at all, gs_analyze has judged). */
static void use_guest_facts(struct cv_run *run, const struct guest_info *gi)
{
	if (gi->boot_fs_uuid && gi->boot_fs_uuid[0])
		snprintf(run->fs_uuid, sizeof(run->fs_uuid), "%s", gi->boot_fs_uuid);
	if (gi->grub_cfg && gi->grub_cfg[0]) {
		char tmp[256];
		snprintf(tmp, sizeof(tmp), "%s", gi->grub_cfg);
		snprintf(run->grub_dir, sizeof(run->grub_dir), "%s", dirname(tmp));
	}
	if (gi->distro && gi->distro[0] && strcmp(gi->distro, "unknown"))
		snprintf(run->distro, sizeof(run->distro), "%s", gi->distro);
}

/* gs_analyze (convert/analyze.c) is the judge: any blocker refuses the conversion with
 * every blocker's code and message; warnings are carried into the report. With deep
 * inspection, its guest facts are taken over (one libguestfs launch, not two). */
static int judge(struct cv_run *run, struct gs_analysis *a)
{
	char msg[1024] = "";
	size_t len = 0;

	for (size_t i = 0; i < a->n_findings; i++) {
		const struct gs_finding *f = &a->findings[i];
		char line[512];
		snprintf(line, sizeof(line), "%s: %.400s", f->code, f->message);
		if (f->severity == GS_SEV_WARNING)
			cv_add_warning(run, line);
		else if (len < sizeof(msg))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s", len ? "; " : "",
						line);
	}
	if (!gs_analysis_convertible(a))
		return vdisk_fail(ENOTSUP, "%s: not convertible: %s", run->o->src, msg);
	return 0;
}

static int analyze_source(struct cv_run *run)
{
	struct gs_analyze_opts ao = { .deep = !run->o->no_guest,
				      .allow_grow = run->o->plan.allow_grow,
				      .esp_bytes = run->o->plan.esp_bytes };
	struct gs_analysis *a;
	int r = gs_analyze(run->o->src, &ao, &a);

	if (r < 0)
		return r;
	r = judge(run, a);
	if (r == 0 && a->boot_disk >= 0) {
		struct gs_disk *d = &a->disks[a->boot_disk];
		run->guest = d->guest; /* taken over: freed with the run */
		d->guest = NULL;
		run->root_number = d->boot_part ? d->boot_part : d->root_part;
		if (d->deep_error)
			cv_add_warning(run, d->deep_error);
	}
	gs_analysis_free(a);
	return r;
}

static int analyze_disk(struct cv_run *run, struct vdisk *d)
{
	int r = part_table_read(d, &run->before);

	if (r == 0)
		r = part_plan_new(d, run->before, &run->o->plan, &run->plan);
	if (r == -EEXIST)
		return vdisk_fail(EEXIST, "%s: already GPT with an EFI system partition; nothing "
				  "to convert", run->src_disk);
	if (r < 0)
		return r;
	if (run->o->differencing && run->plan->new_size_bytes > run->plan->old_size_bytes)
		return vdisk_fail(ENOSPC, "%s: the GPT and the ESP need the disk to grow from %llu "
				  "to %llu bytes, and a differencing child keeps its parent's size; "
				  "convert without --differencing (a full copy may grow)",
				  run->src_disk, (unsigned long long)run->plan->old_size_bytes,
				  (unsigned long long)run->plan->new_size_bytes);
	for (size_t i = 0; i < run->before->n_entries && run->root_number; i++)
		if (run->before->entries[i].number == run->root_number)
			run->root = &run->before->entries[i];
	if (!run->root)
		run->root = guess_root(run->before);
	if (!run->root)
		return vdisk_fail(ENOTSUP, "%s: no Linux partition (MBR type 0x83): genshift "
				  "converts Linux guests", run->src_disk);
	return probe_root_fs(d, run);
}

int cv_prepare(struct cv_run *run, const struct cv_opts *o)
{
	struct vdisk *d = NULL;
	int r;

	memset(run, 0, sizeof(*run));
	run->o = o;
	run->lock_fd = -1;
	snprintf(run->distro, sizeof(run->distro), "debian");
	snprintf(run->grub_dir, sizeof(run->grub_dir), "/boot/grub");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = load_source(run)) < 0 || (r = pick_name(run)) < 0 ||
	    (r = analyze_source(run)) < 0)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	run->analyze_seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	r = vdisk_open(run->src_disk, 0, &d);
	if (r < 0)
		return r;
	run->src_format = vdisk_format(d);
	run->src_size_bytes = vdisk_size_bytes(d);
	if (o->differencing && run->src_format != VDISK_FORMAT_VHDX)
		r = vdisk_fail(ENOTSUP, "%s: --differencing needs a VHDX source (a VHDX child "
			       "cannot have a %s parent)", run->src_disk,
			       vdisk_format_name(run->src_format));
	if (r == 0)
		r = analyze_disk(run, d);
	vdisk_close(d);
	if (r == 0 && run->guest)
		use_guest_facts(run, run->guest); /* over the structural probe's UUID */
	return r;
}

const struct part_entry *cv_esp_entry(const struct cv_run *run)
{
	const struct part_table *a = run->plan->after;

	for (size_t i = 0; i < a->n_entries; i++)
		if (a->entries[i].number == run->plan->esp_number)
			return &a->entries[i];
	return NULL; /* part_plan_new always makes or keeps one */
}

void cv_run_free(struct cv_run *run)
{
	if (run->log)
		fclose(run->log);
	if (run->lock_fd >= 0)
		close(run->lock_fd);
	guest_info_free(run->guest);
	part_plan_free(run->plan);
	part_table_free(run->before);
	vmcfg_free(run->gen1);
	vmcfg_free(run->gen2);
	memset(run, 0, sizeof(*run));
	run->lock_fd = -1;
}
