/* convert/analyze.c - the pre-flight analysis of a generation 1 VM or disk image: what the
 * conversion would do and every reason it cannot (codes in docs/analyze.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <blkid/blkid.h>

#include "convert/analyze.h"
#include "vmm/vmm.h"

#define MIB (1ull << 20)
/* libblkid needs only the first and last bytes of a partition: every superblock it knows
 * lies in the first 1 MiB (ext*, xfs, btrfs at 64 KiB, LUKS, LVM, swap, FAT, ISO 9660) or
 * in the last (md 0.90/1.0, ZFS's trailing labels). */
#define PROBE_WINDOW_BYTES MIB
/* A /boot partition is small: anything larger is taken for a data or root file system. */
#define BOOT_PART_MAX_BYTES (2ull << 30)

const char *gs_severity_name(enum gs_severity s)
{
	return s == GS_SEV_BLOCKER ? "blocker" : "warning";
}

int gs_analysis_add(struct gs_analysis *a, const char *code, enum gs_severity sev, int disk,
		    const char *fmt, ...)
{
	struct gs_finding *v = realloc(a->findings, (a->n_findings + 1) * sizeof(*v));
	va_list ap;
	char *msg;

	if (!v)
		return -ENOMEM;
	a->findings = v;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	v[a->n_findings++] = (struct gs_finding){ code, sev, disk, msg };
	return 0;
}

bool gs_analysis_convertible(const struct gs_analysis *a)
{
	for (size_t i = 0; i < a->n_findings; i++)
		if (a->findings[i].severity == GS_SEV_BLOCKER)
			return false;
	return true;
}

static bool has_finding(const struct gs_analysis *a, int disk, const char *code)
{
	for (size_t i = 0; i < a->n_findings; i++)
		if (a->findings[i].disk == disk && !strcmp(a->findings[i].code, code))
			return true;
	return false;
}

static void free_disk(struct gs_disk *d)
{
	free(d->path);
	free(d->parts);
	for (size_t i = 0; i < d->plan.n_notes; i++)
		free(d->plan.notes[i]);
	free(d->plan.notes);
	guest_info_free(d->guest);
	free(d->deep_error);
}

void gs_analysis_free(struct gs_analysis *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_disks; i++)
		free_disk(&a->disks[i]);
	free(a->disks);
	for (size_t i = 0; i < a->n_findings; i++)
		free(a->findings[i].message);
	free(a->findings);
	free(a->path);
	free(a->vm_name);
	free(a);
}

/* ---- is another process using the image? ---- */

/* QEMU (block/file-posix.c) takes OFD byte-range locks on its images: one byte at
 * 100 + bit for each permission it holds and at 200 + bit for each it refuses to share.
 * Any lock in 100..299 means a QEMU process has the image open. */
#define QEMU_LOCK_FIRST_BYTE 100
#define QEMU_LOCK_BYTES 200

static int check_in_use(struct gs_analysis *a, int idx)
{
	const char *path = a->disks[idx].path;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return 0; /* vdisk_open reports it as UNREADABLE_DISK */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			r = gs_analysis_add(a, "DISK_IN_USE", GS_SEV_BLOCKER, idx,
					    "another process holds a lock on the image (flock); "
					    "stop the VM or the tool using it first");
		goto out_close;
	}
	flock(fd, LOCK_UN);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = QEMU_LOCK_FIRST_BYTE, .l_len = QEMU_LOCK_BYTES };
	if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		r = gs_analysis_add(a, "DISK_IN_USE", GS_SEV_BLOCKER, idx,
				    "a QEMU process has the image open (its lock on byte %lld); "
				    "shut the VM down first", (long long)fl.l_start);
out_close:
	close(fd);
	return r;
}

/* ---- file systems, through libblkid on a sparse copy of the partition's ends ---- */

/* Copy [off, off + len) of the disk to the same place of fd, skipping runs that read as
 * zeros (the memfd stays sparse). */
static int copy_window(struct vdisk *d, int fd, uint64_t disk_off, uint64_t fd_off,
		       uint64_t len, uint8_t *buf)
{
	while (len) {
		uint64_t run;
		unsigned state;
		int r = vdisk_map(d, disk_off, len, &run, &state);
		if (r < 0)
			return r;
		if (run > len)
			run = len;
		if (state == VDISK_EXTENT_DATA) {
			for (uint64_t done = 0; done < run;) {
				size_t n = run - done > PROBE_WINDOW_BYTES ? PROBE_WINDOW_BYTES
									  : (size_t)(run - done);
				if ((r = vdisk_read(d, disk_off + done, buf, n)) < 0)
					return r;
				if (pwrite(fd, buf, n, (off_t)(fd_off + done)) != (ssize_t)n)
					return vdisk_fail(EIO, "probe copy: short write");
				done += n;
			}
		}
		disk_off += run;
		fd_off += run;
		len -= run;
	}
	return 0;
}

static void copy_value(blkid_probe pr, const char *name, char *out, size_t n)
{
	const char *v;

	if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0)
		snprintf(out, n, "%s", v);
}

static int run_blkid(int fd, uint64_t len, struct gs_fs *fs)
{
	blkid_probe pr = blkid_new_probe();
	int r = 0;

	if (!pr)
		return vdisk_fail(ENOMEM, "libblkid: out of memory");
	if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t)len) < 0) {
		r = vdisk_fail(EIO, "libblkid: cannot probe a %llu-byte range",
			       (unsigned long long)len);
		goto out_free;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID |
					  BLKID_SUBLKS_LABEL);
	if (blkid_do_safeprobe(pr) == 0) {
		copy_value(pr, "TYPE", fs->type, sizeof(fs->type));
		copy_value(pr, "UUID", fs->uuid, sizeof(fs->uuid));
		copy_value(pr, "LABEL", fs->label, sizeof(fs->label));
	}
out_free:
	blkid_free_probe(pr);
	return r;
}

/* What is at [off, off + len) of d: both ends go into a sparse memfd of the range's size,
 * which libblkid probes like a block device. */
static int probe_fs(struct vdisk *d, uint64_t off, uint64_t len, uint8_t *buf,
		    struct gs_fs *fs)
{
	uint64_t w = len < PROBE_WINDOW_BYTES ? len : PROBE_WINDOW_BYTES;
	int fd = memfd_create("genshift-probe", MFD_CLOEXEC);
	int r;

	memset(fs, 0, sizeof(*fs));
	if (fd < 0)
		return vdisk_fail(errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)len) < 0) {
		r = vdisk_fail(errno, "memfd of %llu bytes: %s", (unsigned long long)len,
			       strerror(errno));
		goto out_close;
	}
	r = copy_window(d, fd, off, 0, w, buf);
	if (r == 0 && len > w)
		r = copy_window(d, fd, off + len - w, len - w, w, buf);
	if (r == 0)
		r = run_blkid(fd, len, fs);
out_close:
	close(fd);
	return r;
}

/* ---- structure of one disk ---- */

/* Which loader the MBR's boot code belongs to, by the strings each one prints. GRUB 2's
 * boot.img and GRUB legacy's stage1 print the same ones, so "grub" is either. */
static const char *identify_boot_code(const uint8_t mbr[512], bool has_code)
{
	static const struct { const char *needle, *name; } known[] = {
		{ "GRUB", "grub" },
		{ "Missing operating system", "syslinux" },
		{ "Invalid partition table", "windows" },
	};
	if (!has_code)
		return "";
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (memmem(mbr, 440, known[i].needle, strlen(known[i].needle)))
			return known[i].name;
	return "unknown";
}

static void fill_free_space(struct gs_disk *gd, const struct part_table *t)
{
	for (size_t i = 0; i < t->n_free; i++) {
		const struct part_extent *f = &t->free[i];
		uint64_t bytes = (f->last_lba - f->first_lba + 1) * t->sector_bytes;
		bool first = t->kind == PART_KIND_MBR ? f->first_lba == 1
						      : f->first_lba == t->first_usable_lba;
		bool last = t->kind == PART_KIND_MBR ? f->last_lba == t->disk_sectors - 1
						     : f->last_lba == t->last_usable_lba;
		if (first && (t->n_entries || !last))
			gd->free_start_bytes = bytes;
		if (last)
			gd->free_end_bytes = bytes;
	}
}

static void fill_partuuid(const struct part_table *t, struct gs_part *p)
{
	if (t->kind == PART_KIND_MBR) {
		snprintf(p->partuuid, sizeof(p->partuuid), "%08x-%02x", t->mbr_disk_signature,
			 p->entry.number);
		return;
	}
	char g[37];
	part_guid_to_str(p->entry.guid, g);
	for (char *c = g; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	snprintf(p->partuuid, sizeof(p->partuuid), "%s", g);
}

static int read_parts(struct gs_disk *gd, struct vdisk *d, const struct part_table *t)
{
	uint8_t *buf = malloc(PROBE_WINDOW_BYTES);
	int r = 0;

	gd->parts = calloc(t->n_entries + 1, sizeof(*gd->parts));
	if (!buf || !gd->parts) {
		r = vdisk_fail(ENOMEM, "out of memory");
		goto out_free;
	}
	if (t->kind == PART_KIND_NONE) {
		r = probe_fs(d, 0, vdisk_size_bytes(d), buf, &gd->whole_disk_fs);
		goto out_free;
	}
	for (size_t i = 0; i < t->n_entries && r == 0; i++) {
		struct gs_part *p = &gd->parts[i];
		p->entry = t->entries[i];
		char tn[32];
		snprintf(p->type_name, sizeof(p->type_name), "%s", part_type_name(&p->entry, tn));
		fill_partuuid(t, p);
		r = probe_fs(d, p->entry.first_lba * t->sector_bytes,
			     (p->entry.last_lba - p->entry.first_lba + 1) * t->sector_bytes, buf,
			     &p->fs);
		gd->n_parts = i + 1;
	}
out_free:
	free(buf);
	return r;
}

static void fill_table_facts(struct gs_disk *gd, const struct part_table *t)
{
	gd->table_read = true;
	gd->table = t->kind;
	gd->mbr_disk_signature = t->mbr_disk_signature;
	gd->mbr_has_boot_code = t->mbr_has_boot_code;
	gd->mbr_boot_code = identify_boot_code(t->mbr, t->mbr_has_boot_code);
	fill_free_space(gd, t);
}

static bool is_linux_fs(const char *type)
{
	static const char *const fs[] = { "ext2", "ext3", "ext4", "xfs", "btrfs", "jfs",
					  "reiserfs", NULL };
	for (size_t i = 0; fs[i]; i++)
		if (!strcmp(type, fs[i]))
			return true;
	return false;
}

static uint64_t part_bytes(const struct gs_disk *gd, const struct gs_part *p)
{
	return (p->entry.last_lba - p->entry.first_lba + 1) * gd->logical_sector_bytes;
}

/* The structural guess: root is the largest partition that can hold a Linux root (a Linux
 * file system, a LUKS container or an LVM physical volume); /boot is a small plain Linux
 * file system beside it, else root itself. Guest inspection replaces the guess. */
static void guess_root(struct gs_disk *gd)
{
	const struct gs_part *root = NULL, *boot = NULL;

	for (size_t i = 0; i < gd->n_parts; i++) {
		const struct gs_part *p = &gd->parts[i];
		bool candidate = is_linux_fs(p->fs.type) || !strcmp(p->fs.type, "crypto_LUKS") ||
				 !strcmp(p->fs.type, "LVM2_member");
		if (candidate && (!root || part_bytes(gd, p) > part_bytes(gd, root)))
			root = p;
	}
	for (size_t i = 0; root && i < gd->n_parts; i++) {
		const struct gs_part *p = &gd->parts[i];
		if (p != root && is_linux_fs(p->fs.type) && part_bytes(gd, p) <= BOOT_PART_MAX_BYTES &&
		    (!boot || p->entry.bootable))
			boot = p;
	}
	gd->root_part = root ? root->entry.number : 0;
	gd->boot_part = boot ? boot->entry.number : gd->root_part;
}

static const struct gs_part *find_part(const struct gs_disk *gd, uint32_t number)
{
	for (size_t i = 0; i < gd->n_parts; i++)
		if (gd->parts[i].entry.number == number)
			return &gd->parts[i];
	return NULL;
}

/* ---- the plan, and the refusals the partition library's answers stand for ---- */

static int copy_plan(struct gs_plan_summary *s, const struct part_plan *p)
{
	s->valid = true;
	s->esp_number = p->esp_number;
	s->esp_created = p->esp_created;
	s->old_size_bytes = p->old_size_bytes;
	s->new_size_bytes = p->new_size_bytes;
	for (size_t i = 0; i < p->after->n_entries; i++)
		if (p->after->entries[i].number == p->esp_number) {
			s->esp_first_lba = p->after->entries[i].first_lba;
			s->esp_last_lba = p->after->entries[i].last_lba;
		}
	s->notes = calloc(p->n_notes + 1, sizeof(*s->notes));
	if (!s->notes)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_notes; i++) {
		if (!(s->notes[i] = strdup(p->notes[i])))
			return -ENOMEM;
		s->n_notes = i + 1;
	}
	return 0;
}

static uint64_t esp_min_bytes(uint32_t sector_bytes)
{
	return sector_bytes >= 4096 ? PART_ESP_MIN_BYTES_4K : PART_ESP_MIN_BYTES_512;
}

/* Why part_plan_new refused. A -ENOSPC under --no-grow is planned again with growing
 * allowed: if that works, growing is the missing piece (NO_ROOM_FOR_ESP); if not, no size
 * helps (a partition sits where the primary GPT goes). */
static int judge_plan_error(struct gs_analysis *a, int idx, int err, bool grow_would_fit)
{
	if (err == -ENOSPC && grow_would_fit)
		return gs_analysis_add(a, "NO_ROOM_FOR_ESP", GS_SEV_BLOCKER, idx,
				       "there is no room for the EFI system partition without "
				       "growing the disk, which --no-grow forbids: %s",
				       vdisk_errmsg());
	if (err == -ENOSPC)
		return gs_analysis_add(a, "NO_ROOM_FOR_GPT", GS_SEV_BLOCKER, idx,
				       "the GPT does not fit, even if the disk grew: %s",
				       vdisk_errmsg());
	if (err == -EINVAL)
		return gs_analysis_add(a, "UNKNOWN_PARTITION_TYPE", GS_SEV_BLOCKER, idx,
				       "a partition type has no GPT equivalent: %s",
				       vdisk_errmsg());
	if (err == -ENOMEM)
		return err;
	return gs_analysis_add(a, "UNREADABLE_DISK", GS_SEV_BLOCKER, idx,
			       "the conversion could not be planned: %s", vdisk_errmsg());
}

static bool plan_fits_grown(struct vdisk *d, const struct part_table *t,
			    const struct part_plan_opts *po)
{
	struct part_plan_opts grow = *po;
	struct part_plan *plan = NULL;

	grow.allow_grow = true;
	if (part_plan_new(d, t, &grow, &plan) < 0)
		return false;
	part_plan_free(plan);
	return true;
}

static int plan_disk(struct gs_analysis *a, int idx, struct vdisk *d, const struct part_table *t,
		     const struct gs_analyze_opts *o)
{
	struct part_plan_opts po = { .esp_bytes = o->esp_bytes, .allow_grow = o->allow_grow,
				     .seeded = true, .seed = 1 };
	struct part_plan *plan = NULL;
	uint64_t esp = o->esp_bytes ? o->esp_bytes : PART_ESP_DEFAULT_BYTES;

	if (esp < esp_min_bytes(t->sector_bytes))
		return gs_analysis_add(a, "ESP_TOO_SMALL", GS_SEV_BLOCKER, idx,
				       "an EFI system partition of %llu MiB is below the FAT32 "
				       "minimum of %llu MiB for %u-byte sectors",
				       (unsigned long long)(esp / MIB),
				       (unsigned long long)(esp_min_bytes(t->sector_bytes) / MIB),
				       t->sector_bytes);
	int r = part_plan_new(d, t, &po, &plan);
	if (r == -ENOSPC && !po.allow_grow) {
		char why[512];
		snprintf(why, sizeof(why), "%s", vdisk_errmsg());
		bool fits = plan_fits_grown(d, t, &po);
		vdisk_fail(ENOSPC, "%s", why);
		return judge_plan_error(a, idx, r, fits);
	}
	if (r < 0)
		return judge_plan_error(a, idx, r, false);
	r = copy_plan(&a->disks[idx].plan, plan);
	part_plan_free(plan);
	return r;
}

/* The table kinds the conversion refuses before any plan is made. */
static int judge_table(struct gs_analysis *a, int idx, const struct part_table *t)
{
	struct gs_disk *gd = &a->disks[idx];

	switch (t->kind) {
	case PART_KIND_NONE:
		if (gd->whole_disk_fs.type[0])
			return gs_analysis_add(a, "NO_PARTITION_TABLE", GS_SEV_BLOCKER, idx,
					       "the disk has no partition table (the whole disk is "
					       "one %s file system), so there is nowhere to put an "
					       "EFI system partition", gd->whole_disk_fs.type);
		return gs_analysis_add(a, "NO_PARTITION_TABLE", GS_SEV_BLOCKER, idx,
				       "the disk has no partition table (no MBR signature, no GPT)");
	case PART_KIND_HYBRID:
		return gs_analysis_add(a, "HYBRID_MBR", GS_SEV_BLOCKER, idx,
				       "the disk has a hybrid MBR (a GPT whose MBR also lists "
				       "partitions); genshift converts plain MBR disks only");
	case PART_KIND_GPT:
		if (part_table_find_esp(t)) {
			if (a->source == GS_SOURCE_IMAGE)
				a->generation = 2; /* a configuration says its own generation */
			return gs_analysis_add(a, "ALREADY_GEN2", GS_SEV_BLOCKER, idx,
					       "the disk already has a GPT with an EFI system "
					       "partition: it is a generation 2 disk");
		}
		return gs_analysis_add(a, "GPT_WITHOUT_ESP", GS_SEV_BLOCKER, idx,
				       "the disk already has a GPT but no EFI system partition; "
				       "genshift converts MBR disks and does not add an ESP to a "
				       "GPT disk");
	case PART_KIND_MBR:
		break;
	}
	return 0;
}

/* What the partitions alone say about the guest (deep inspection says more). */
static int judge_structure(struct gs_analysis *a, int idx)
{
	struct gs_disk *gd = &a->disks[idx];
	const struct gs_part *root = find_part(gd, gd->root_part);

	if (!root && !a->deep)
		return gs_analysis_add(a, "NO_OS_FOUND", GS_SEV_WARNING, idx,
				       "no partition holds a Linux file system, a LUKS container "
				       "or an LVM physical volume");
	if (!root)
		return 0;
	if (!strcmp(root->fs.type, "crypto_LUKS"))
		return gs_analysis_add(a, "ENCRYPTED_ROOT", GS_SEV_BLOCKER, idx,
				       "the root file system is inside a LUKS container "
				       "(partition %u); genshift cannot open it to fix fstab and "
				       "grub.cfg", root->entry.number);
	if (!strcmp(root->fs.type, "LVM2_member"))
		return gs_analysis_add(a, "LVM_ROOT", GS_SEV_WARNING, idx,
				       "the root file system is on LVM (partition %u is a physical "
				       "volume); the conversion keeps it where it is and GRUB reads "
				       "LVM, but it is less tested than a plain partition",
				       root->entry.number);
	if (!strcmp(gd->mbr_boot_code, "syslinux"))
		return gs_analysis_add(a, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER, idx,
				       "the MBR holds SYSLINUX boot code: genshift can provide a "
				       "UEFI path only for GRUB 2 guests");
	return 0;
}

/* ---- one disk ---- */

static int fill_disk_info(struct gs_disk *gd, struct vdisk *d)
{
	struct vdisk_info info;
	int r = vdisk_get_info(d, &info);
	if (r < 0)
		return r;
	gd->opened = true;
	gd->format = info.format;
	gd->subformat = info.subformat;
	gd->size_bytes = info.size_bytes;
	gd->file_bytes = info.file_bytes;
	gd->logical_sector_bytes = info.logical_sector_bytes;
	gd->physical_sector_bytes = info.physical_sector_bytes;
	return 0;
}

static int open_disk(struct gs_analysis *a, int idx, struct vdisk **d)
{
	int r = vdisk_open(a->disks[idx].path, 0, d);
	if (r == -EBUSY) {
		if (has_finding(a, idx, "DISK_IN_USE"))
			return 1;
		return gs_analysis_add(a, "DISK_IN_USE", GS_SEV_BLOCKER, idx,
				       "another process holds the image: %s", vdisk_errmsg()) ?: 1;
	}
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return gs_analysis_add(a, "UNREADABLE_DISK", GS_SEV_BLOCKER, idx,
				       "the image cannot be read: %s", vdisk_errmsg()) ?: 1;
	r = fill_disk_info(&a->disks[idx], *d);
	if (r < 0) {
		vdisk_close(*d);
		return gs_analysis_add(a, "UNREADABLE_DISK", GS_SEV_BLOCKER, idx,
				       "the image cannot be read: %s", vdisk_errmsg()) ?: 1;
	}
	return 0;
}

static int analyze_table(struct gs_analysis *a, int idx, struct vdisk *d,
			 const struct gs_analyze_opts *o)
{
	struct gs_disk *gd = &a->disks[idx];
	struct part_table *t = NULL;
	int r = part_table_read(d, &t);

	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return gs_analysis_add(a, "UNREADABLE_DISK", GS_SEV_BLOCKER, idx,
				       "the partition table is corrupt: %s", vdisk_errmsg());
	fill_table_facts(gd, t);
	r = read_parts(gd, d, t);
	if (r == 0 && gd->role == GS_DISK_BOOT && a->generation == 1) {
		guess_root(gd);
		r = judge_table(a, idx, t);
		if (r == 0 && t->kind == PART_KIND_MBR && !has_finding(a, idx, "DISK_IN_USE"))
			r = plan_disk(a, idx, d, t, o);
		if (r == 0 && t->kind == PART_KIND_MBR)
			r = judge_structure(a, idx);
	}
	part_table_free(t);
	return r;
}

static const char *qemu_format_name(enum vdisk_format f)
{
	return f == VDISK_FORMAT_VHD ? "vpc" : f == VDISK_FORMAT_VHDX ? "vhdx" : "raw";
}

static int inspect_guest(struct gs_analysis *a, int idx)
{
	struct gs_disk *gd = &a->disks[idx];
	struct guest_info *gi = NULL;
	int r = guest_inspect(gd->path, qemu_format_name(gd->format), &gi);

	if (r < 0) {
		if (!(gd->deep_error = strdup(vdisk_errmsg())))
			return -ENOMEM;
		return gs_analysis_add(a, "GUEST_NOT_INSPECTED", GS_SEV_WARNING, idx,
				       "guest inspection failed (%s); only the disk structure "
				       "was checked", gd->deep_error);
	}
	gd->guest = gi;
	return gs_analysis_judge_guest(a, idx, gi);
}

static int analyze_disk(struct gs_analysis *a, int idx, const struct gs_analyze_opts *o)
{
	struct gs_disk *gd = &a->disks[idx];
	struct vdisk *d = NULL;
	int r;

	if (gd->role == GS_DISK_DVD)
		return 0;
	if ((r = check_in_use(a, idx)) < 0)
		return r;
	r = open_disk(a, idx, &d);
	if (r != 0)
		return r < 0 ? r : 0;
	r = analyze_table(a, idx, d, o);
	vdisk_close(d);
	if (r < 0 || gd->role != GS_DISK_BOOT || a->generation != 1 || !gd->table_read ||
	    gd->table != PART_KIND_MBR)
		return r;
	if (!o->deep)
		return gs_analysis_add(a, "GUEST_NOT_INSPECTED", GS_SEV_WARNING, idx,
				       "the guest was not inspected (structural analysis only); "
				       "--deep looks for the OS, its bootloader and fstab");
	if (has_finding(a, idx, "DISK_IN_USE") || has_finding(a, idx, "ENCRYPTED_ROOT"))
		return 0;
	return inspect_guest(a, idx);
}

/* ---- guest facts ---- */

static bool fstab_uses(const struct guest_info *gi, const char *prefix)
{
	for (size_t i = 0; i < gi->n_fstab; i++)
		if (gi->fstab[i].spec && !strncmp(gi->fstab[i].spec, prefix, strlen(prefix)))
			return true;
	return false;
}

static bool is_32bit(const char *arch)
{
	return arch && (!strcmp(arch, "i386") || !strcmp(arch, "i486") || !strcmp(arch, "i586") ||
			!strcmp(arch, "i686"));
}

static bool os_unknown(const struct guest_info *gi)
{
	return !gi->os_type || !strcmp(gi->os_type, "unknown");
}

/* guest_inspect succeeds even when it finds no OS: os_type "unknown" with a root found
 * through /etc/fstab (a distro libguestfs does not recognise), or no root at all. */
static int judge_os(struct gs_analysis *a, int idx, const struct guest_info *gi)
{
	if (gi->root_encrypted)
		return gs_analysis_add(a, "ENCRYPTED_ROOT", GS_SEV_BLOCKER, idx,
				       "the root file system is encrypted; genshift cannot open it "
				       "to fix fstab and grub.cfg");
	if (os_unknown(gi) && !gi->root_part && !gi->root_on_lvm && !gi->n_fstab)
		return gs_analysis_add(a, "NO_OS_FOUND", GS_SEV_BLOCKER, idx,
				       "guest inspection found no operating system and no root "
				       "file system on the disk");
	if (!os_unknown(gi) && strcmp(gi->os_type, "linux"))
		return gs_analysis_add(a, "UNSUPPORTED_OS", GS_SEV_BLOCKER, idx,
				       "the guest runs %s; genshift converts Linux guests only",
				       gi->os_type);
	if (is_32bit(gi->arch))
		return gs_analysis_add(a, "GUEST_32BIT", GS_SEV_BLOCKER, idx,
				       "the guest is 32-bit (%s); generation 2 firmware is 64-bit "
				       "UEFI, which boots only 64-bit kernels", gi->arch);
	if (os_unknown(gi))
		return gs_analysis_add(a, "OS_NOT_RECOGNIZED", GS_SEV_WARNING, idx,
				       "libguestfs did not recognise the distribution; the root "
				       "file system was found through its /etc/fstab");
	return 0;
}

static int judge_bootloader(struct gs_analysis *a, int idx, const struct guest_info *gi)
{
	if (has_finding(a, idx, "BIOS_ONLY_BOOTLOADER"))
		return 0;
	switch (gi->bootloader) {
	case GUEST_BOOT_SYSLINUX:
		return gs_analysis_add(a, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER, idx,
				       "the guest boots with SYSLINUX/EXTLINUX: genshift can "
				       "provide a UEFI path only for GRUB 2 guests");
	case GUEST_BOOT_GRUB_LEGACY:
		return gs_analysis_add(a, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER, idx,
				       "the guest boots with GRUB legacy (menu.lst): genshift can "
				       "provide a UEFI path only for GRUB 2 guests");
	case GUEST_BOOT_UNKNOWN:
		return gs_analysis_add(a, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER, idx,
				       "no GRUB 2 configuration was found in the guest: genshift "
				       "can provide a UEFI path only for GRUB 2 guests");
	case GUEST_BOOT_GRUB2:
		break;
	}
	if (gi->grub_bls)
		return gs_analysis_add(a, "BLS_CONFIG", GS_SEV_BLOCKER, idx,
				       "grub.cfg uses blscfg (Boot Loader Specification entries, "
				       "RHEL/Fedora); the GRUB EFI image genshift installs has no "
				       "blscfg module, so it could not read the boot entries");
	return 0;
}

/* "/dev/sda5", "/dev/hda5", "/dev/vda5", "/dev/xvda5": partition 5 of the first disk. */
static uint32_t dev_name_partition(const char *spec)
{
	static const char *const prefixes[] = { "/dev/sda", "/dev/hda", "/dev/vda", "/dev/xvda" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(spec, prefixes[i], n) || spec[n] < '1' || spec[n] > '9')
			continue;
		char *end;
		unsigned long v = strtoul(spec + n, &end, 10);
		return *end || v > PART_MAX_NUMBER ? 0 : (uint32_t)v;
	}
	return 0;
}

static bool spec_is(const char *spec, const char *key, const char *value, bool nocase)
{
	size_t n = strlen(key);
	if (!value[0] || strncmp(spec, key, n))
		return false;
	return nocase ? !strcasecmp(spec + n, value) : !strcmp(spec + n, value);
}

uint32_t gs_disk_fstab_partition(const struct gs_disk *d, const char *spec)
{
	uint32_t number = dev_name_partition(spec);

	for (size_t i = 0; i < d->n_parts; i++) {
		const struct gs_part *p = &d->parts[i];
		if (p->entry.number == number || spec_is(spec, "UUID=", p->fs.uuid, true) ||
		    spec_is(spec, "LABEL=", p->fs.label, false) ||
		    spec_is(spec, "PARTUUID=", p->partuuid, true))
			return p->entry.number;
	}
	return 0;
}

static bool names_a_partition(const char *spec)
{
	return !strncmp(spec, "UUID=", 5) || !strncmp(spec, "LABEL=", 6) ||
	       !strncmp(spec, "PARTUUID=", 9) || !strncmp(spec, "/dev/", 5);
}

/* An fstab entry naming no partition of the boot disk lives on another disk (or nowhere):
 * the conversion leaves it alone, and a person should know which ones those are. */
static int judge_fstab(struct gs_analysis *a, int idx, const struct guest_info *gi)
{
	int r = 0;

	for (size_t i = 0; i < gi->n_fstab && r == 0; i++) {
		const struct guest_fstab_entry *e = &gi->fstab[i];
		if (!e->spec || !names_a_partition(e->spec) ||
		    gs_disk_fstab_partition(&a->disks[idx], e->spec))
			continue;
		r = gs_analysis_add(a, "FSTAB_UNRESOLVED", GS_SEV_WARNING, idx,
				    "fstab entry %s (%s) names no partition of this disk: it must "
				    "be on another disk of the VM, which the conversion leaves as "
				    "it is", e->spec, e->mountpoint ? e->mountpoint : "");
	}
	return r;
}

static int judge_references(struct gs_analysis *a, int idx, const struct guest_info *gi)
{
	int r = judge_fstab(a, idx, gi);

	if (r == 0 && gi->root_on_lvm && !has_finding(a, idx, "LVM_ROOT"))
		r = gs_analysis_add(a, "LVM_ROOT", GS_SEV_WARNING, idx,
				    "the root file system is on LVM; the conversion keeps it "
				    "where it is and GRUB reads LVM, but it is less tested than a "
				    "plain partition");
	if (r == 0 && fstab_uses(gi, "PARTUUID="))
		r = gs_analysis_add(a, "PARTUUID_REFERENCES", GS_SEV_WARNING, idx,
				    "fstab names partitions by PARTUUID, which changes with the "
				    "GPT; the conversion rewrites those entries");
	if (r == 0 && fstab_uses(gi, "/dev/"))
		r = gs_analysis_add(a, "DEVICE_NAME_REFERENCES", GS_SEV_WARNING, idx,
				    "fstab names devices by /dev path, which a new bus may change; "
				    "the conversion rewrites them to UUID=");
	return r;
}

int gs_analysis_judge_guest(struct gs_analysis *a, int disk, const struct guest_info *gi)
{
	struct gs_disk *gd = &a->disks[disk];
	int r = judge_os(a, disk, gi);

	if (r == 0 && !has_finding(a, disk, "NO_OS_FOUND") &&
	    !has_finding(a, disk, "UNSUPPORTED_OS") && !has_finding(a, disk, "ENCRYPTED_ROOT")) {
		if (gi->root_part) {
			gd->root_part = gi->root_part;
			gd->boot_part = gi->boot_part ? gi->boot_part : gi->root_part;
			gd->root_from_guest = true;
		}
		r = judge_bootloader(a, disk, gi);
		if (r == 0)
			r = judge_references(a, disk, gi);
	}
	return r;
}

/* ---- images and configurations ---- */

static int add_disk(struct gs_analysis *a, const char *path, enum gs_disk_role role,
		    int cfg_index)
{
	struct gs_disk *v = realloc(a->disks, (a->n_disks + 1) * sizeof(*v));
	if (!v)
		return vdisk_fail(ENOMEM, "out of memory");
	a->disks = v;
	memset(&v[a->n_disks], 0, sizeof(v[0]));
	v[a->n_disks].role = role;
	v[a->n_disks].cfg_index = cfg_index;
	if (!(v[a->n_disks].path = strdup(path)))
		return vdisk_fail(ENOMEM, "out of memory");
	a->n_disks++;
	return 0;
}


static int load_config(struct gs_analysis *a)
{
	struct vmcfg *cfg = NULL;
	int r = vmcfg_load(a->path, &cfg);
	if (r < 0)
		return r;
	int boot = vmcfg_boot_disk(cfg);
	a->generation = cfg->generation;
	if (cfg->name && !(a->vm_name = strdup(cfg->name)))
		r = vdisk_fail(ENOMEM, "out of memory");
	for (unsigned i = 0; r == 0 && i < cfg->n_disks; i++) {
		enum gs_disk_role role = cfg->disks[i].media == VMCFG_MEDIA_DVD ? GS_DISK_DVD
					 : (int)i == boot ? GS_DISK_BOOT : GS_DISK_DATA;
		r = add_disk(a, cfg->disks[i].path, role, (int)i);
		if (role == GS_DISK_BOOT)
			a->boot_disk = (int)a->n_disks - 1;
	}
	if (r == 0 && cfg->generation == 2)
		r = gs_analysis_add(a, "ALREADY_GEN2", GS_SEV_BLOCKER, -1,
				    "the VM already is generation 2 (UEFI firmware)");
	if (r == 0 && a->boot_disk < 0 && cfg->generation == 1)
		r = gs_analysis_add(a, "NO_BOOT_DISK", GS_SEV_BLOCKER, -1,
				    "the VM has no hard disk to convert");
	vmcfg_free(cfg);
	return r;
}

/* After the '{' of a JSON object: blanks, then '"' (a key) or '}'. */
static bool object_opens(const char *buf, size_t n)
{
	size_t i = 0;

	while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	return i < n && (buf[i] == '"' || buf[i] == '}');
}

/* A configuration is JSON text: its first non-blank byte is '{' opening an object, and its
 * first 64 KiB hold no control byte but whitespace. No disk format starts so; a damaged image that happens to
 * begin with '{' still has binary bytes after it, and is analyzed as an image. */
#define CONFIG_SNIFF_BYTES 65536

static bool is_text(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
			return false;
	}
	return true;
}

static int is_config(const char *path, bool *yes)
{
	char *buf = malloc(CONFIG_SNIFF_BYTES);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;
	int r = 0;

	if (fd >= 0 && buf)
		n = read(fd, buf, CONFIG_SNIFF_BYTES);
	if (n < 0) {
		r = vdisk_fail(buf ? errno : ENOMEM, "%s: %s", path,
			       strerror(buf ? errno : ENOMEM));
		goto out;
	}
	*yes = false;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r')
			continue;
		*yes = buf[i] == '{' && is_text(buf + i, (size_t)(n - i)) &&
		       object_opens(buf + i + 1, (size_t)(n - i - 1));
		break;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

static int analyze_all(struct gs_analysis *a, const struct gs_analyze_opts *o)
{
	bool config;
	int r = is_config(a->path, &config);

	if (r < 0)
		return r;
	if (config) {
		a->source = GS_SOURCE_CONFIG;
		r = load_config(a);
	} else {
		a->source = GS_SOURCE_IMAGE;
		r = add_disk(a, a->path, GS_DISK_BOOT, -1);
		a->boot_disk = 0;
	}
	for (size_t i = 0; r == 0 && i < a->n_disks; i++)
		r = analyze_disk(a, (int)i, o);
	if (r == -ENOMEM)
		r = vdisk_fail(ENOMEM, "out of memory");
	return r;
}

int gs_analyze(const char *path, const struct gs_analyze_opts *o, struct gs_analysis **out)
{
	struct gs_analysis *a = calloc(1, sizeof(*a));
	int r;

	if (!a || !(a->path = strdup(path))) {
		free(a);
		return vdisk_fail(ENOMEM, "out of memory");
	}
	a->generation = 1;
	a->boot_disk = -1;
	a->deep = o->deep;
	r = analyze_all(a, o);
	if (r < 0) {
		gs_analysis_free(a);
		return r;
	}
	*out = a;
	return 0;
}
