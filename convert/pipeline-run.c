/* convert/pipeline-run.c - `genshift convert`, steps 1-7: the disk (copy, differencing child
 * or the source itself), GPT, ESP, guest edits, NVRAM, gen 2 configuration, and the commit
 * that makes the output appear whole (the rule is in pipeline.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "convert/pipeline.h"
#include "convert/undo-regions.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void logf_(struct cv_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct cv_run *run, const char *fmt, ...)
{
	va_list ap;

	if (!run->log)
		return;
	va_start(ap, fmt);
	vfprintf(run->log, fmt, ap);
	va_end(ap);
	fflush(run->log);
}

/* One step: run fn, log its time and outcome, then (test hook) crash here if told to. */
static int step(struct cv_run *run, const char *name, int (*fn)(struct cv_run *))
{
	struct cv_step *s = &run->steps[run->n_steps < CV_MAX_STEPS ? run->n_steps : 0];
	double t0 = now_s();

	memset(s, 0, sizeof(*s));
	s->name = name;
	logf_(run, "step %u: %s ...\n", run->step_no + 1, name);
	int r = fn(run);
	s->seconds = now_s() - t0;
	if (r < 0) {
		logf_(run, "step %u: %s FAILED after %.2f s: %s\n", run->step_no + 1, name,
		      s->seconds, vdisk_errmsg());
		return r;
	}
	if (run->n_steps < CV_MAX_STEPS)
		run->n_steps++;
	run->step_no++;
	logf_(run, "step %u: %s done in %.2f s%s%s\n", run->step_no, name, s->seconds,
	      s->detail[0] ? ": " : "", s->detail);
	if (run->fault_step == run->step_no) {
		fprintf(stderr, "genshift: fault injected after step %u (%s)\n", run->step_no, name);
		_exit(99);
	}
	return 0;
}

/* What the current step did, for the log and the report. */
static void detail(struct cv_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail(struct cv_run *run, const char *fmt, ...)
{
	va_list ap;

	if (run->n_steps >= CV_MAX_STEPS)
		return;
	va_start(ap, fmt);
	vsnprintf(run->steps[run->n_steps].detail, sizeof(run->steps[0].detail), fmt, ap);
	va_end(ap);
}

static int fsync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return vdisk_fail(errno, "%s: cannot open to sync: %s", path, strerror(errno));
	if (fsync(fd) < 0)
		r = vdisk_fail(errno, "%s: fsync failed: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* ---- paths, the run's lock, leftovers of interrupted runs ---- */

static int join(char *out, const char *dir, const char *a, const char *b)
{
	if (snprintf(out, PATH_MAX, "%s/%s%s", dir, a, b) >= PATH_MAX)
		return vdisk_fail(ENAMETOOLONG, "%s/%s%s: path too long", dir, a, b);
	return 0;
}

static int set_paths(struct cv_run *run)
{
	const char *n = run->name;
	int r = 0;

	r |= join(run->out_disk, run->dir, n, ".vhdx");
	r |= join(run->out_vars, run->dir, n, "_VARS.fd");
	r |= join(run->out_cfg, run->dir, n, ".json");
	r |= join(run->out_log, run->dir, n, ".log");
	r |= join(run->undo, run->dir, n, ".undo");
	r |= join(run->undo_part, run->dir, n, ".undo" CV_UNDO_PART_SUFFIX);
	r |= join(run->undo_esp, run->dir, n, ".undo" CV_UNDO_ESP_SUFFIX);
	return r ? -ENAMETOOLONG : 0;
}

/* Remove the files of an interrupted run with this NAME: every .NAME.tmp-* entry, and the
 * final names it may have renamed before dying. A marker still locked is a live run. */
static int clean_leftovers(struct cv_run *run)
{
	char prefix[300], path[PATH_MAX];
	DIR *dir = opendir(run->dir);
	struct dirent *de;
	bool stale = false;
	int r = 0;

	if (!dir)
		return vdisk_fail(errno, "%s: %s", run->dir, strerror(errno));
	snprintf(prefix, sizeof(prefix), ".%s.tmp-", run->name);
	while (r == 0 && (de = readdir(dir))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) || join(path, run->dir, de->d_name, ""))
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
			r = vdisk_fail(EBUSY, "%s: another genshift convert is writing %s in %s",
				       path, run->name, run->dir);
		if (fd >= 0)
			close(fd);
		if (r == 0 && unlink(path) == 0)
			stale = true;
	}
	closedir(dir);
	if (r == 0 && stale) {
		/* The config is renamed last: without a lock-free finish the rest is partial. */
		const char *finals[] = { run->out_cfg, run->out_disk, run->out_vars, run->out_log };
		for (size_t i = 0; i < 4; i++)
			unlink(finals[i]);
		fprintf(stderr, "genshift: removed the partial output of an interrupted conversion "
			"of %s in %s\n", run->name, run->dir);
	}
	return r;
}

static int refuse_existing(struct cv_run *run)
{
	const char *finals[] = { run->out_cfg, run->out_disk, run->out_vars, run->out_log,
				 run->o->in_place ? run->undo : NULL };
	for (size_t i = 0; i < 5; i++)
		if (finals[i] && access(finals[i], F_OK) == 0)
			return vdisk_fail(EEXIST, "%s exists: choose another --out or --name (a "
					  "conversion never replaces files)", finals[i]);
	return 0;
}

/* The lock marker names the run: .NAME.tmp-XXXXXX.lock; the other temporary files share its
 * prefix. */
static int take_lock(struct cv_run *run)
{
	char tmpl[PATH_MAX];
	int r = join(tmpl, run->dir, ".", run->name);

	if (r == 0 && strlen(tmpl) + 20 >= PATH_MAX)
		r = vdisk_fail(ENAMETOOLONG, "%s: path too long", tmpl);
	if (r < 0)
		return r;
	strcat(tmpl, ".tmp-XXXXXX.lock");
	run->lock_fd = mkstemps(tmpl, 5);
	if (run->lock_fd < 0)
		return vdisk_fail(errno, "%s: cannot create: %s", tmpl, strerror(errno));
	if (flock(run->lock_fd, LOCK_EX) < 0)
		return vdisk_fail(errno, "%s: cannot lock: %s", tmpl, strerror(errno));
	snprintf(run->lock_path, sizeof(run->lock_path), "%s", tmpl);
	snprintf(run->tmp_base, sizeof(run->tmp_base), "%.*s", (int)(strlen(tmpl) - 5), tmpl);
	snprintf(run->tmp_disk, PATH_MAX, "%.4080s.vhdx", run->tmp_base);
	snprintf(run->tmp_vars, PATH_MAX, "%.4080s_VARS.fd", run->tmp_base);
	snprintf(run->tmp_cfg, PATH_MAX, "%.4080s.json", run->tmp_base);
	snprintf(run->tmp_log, PATH_MAX, "%.4080s.log", run->tmp_base);
	return fsync_path(run->dir, true);
}

static int open_output_dir(struct cv_run *run)
{
	if (mkdir(run->o->out_dir, 0755) < 0 && errno != EEXIST)
		return vdisk_fail(errno, "%s: cannot create: %s", run->o->out_dir, strerror(errno));
	if (!realpath(run->o->out_dir, run->dir))
		return vdisk_fail(errno, "%s: %s", run->o->out_dir, strerror(errno));
	int r = set_paths(run);
	if (r == 0)
		r = clean_leftovers(run);
	if (r == 0)
		r = refuse_existing(run);
	if (r == 0)
		r = take_lock(run);
	if (r == 0 && !(run->log = fopen(run->tmp_log, "we")))
		r = vdisk_fail(errno, "%s: %s", run->tmp_log, strerror(errno));
	return r;
}

/* ---- step 1: the disk ---- */

static int disk_copy(struct cv_run *run)
{
	struct vdisk *src, *dst = NULL;
	struct vdisk_create_opts c = { .format = VDISK_FORMAT_VHDX };
	int r = vdisk_open(run->src_disk, 0, &src);

	if (r < 0)
		return r;
	c.size_bytes = vdisk_size_bytes(src);
	c.logical_sector_bytes = vdisk_logical_sector_bytes(src);
	if (run->o->differencing) {
		c.subformat = VDISK_SUB_DIFFERENCING;
		c.parent_path = run->src_disk;
	} else {
		c.subformat = VDISK_SUB_DYNAMIC;
	}
	r = vdisk_create(run->tmp_disk, &c, &dst);
	if (r == 0 && !run->o->differencing)
		r = vdisk_copy(src, dst, NULL, NULL);
	if (r == 0)
		r = vdisk_close(dst);
	else
		vdisk_close(dst);
	vdisk_close(src);
	if (r == 0)
		detail(run, "%s %s -> %s", run->o->differencing ? "differencing child of" :
		       "sparse copy of", run->src_disk, run->out_disk);
	return r;
}

static int disk_in_place(struct cv_run *run)
{
	snprintf(run->tmp_disk, sizeof(run->tmp_disk), "%s", run->src_disk);
	snprintf(run->out_disk, sizeof(run->out_disk), "%s", run->src_disk);
	detail(run, "in place: %s (undo record %s)", run->src_disk, run->undo);
	return 0;
}

/* ---- step 2: MBR -> GPT ---- */

static int partition_apply(struct cv_run *run)
{
	char undo[PATH_MAX];
	struct vdisk *d;
	int r = vdisk_open(run->tmp_disk, VDISK_OPEN_RDWR, &d);

	if (r < 0)
		return r;
	/* A copy needs no undo file, but part_plan_apply always writes one: a temporary. */
	snprintf(undo, sizeof(undo), "%.4000s%s", run->o->in_place ? run->undo_part : run->tmp_base,
		 run->o->in_place ? "" : ".undo-partition");
	r = part_plan_apply(d, run->plan, undo, NULL);
	int c = vdisk_close(d);
	if (!run->o->in_place)
		unlink(undo);
	if (r == 0 && c < 0)
		r = c;
	if (r == 0)
		detail(run, "GPT written, ESP = partition %u (LBA %llu..%llu)%s",
		       run->plan->esp_number, (unsigned long long)cv_esp_entry(run)->first_lba,
		       (unsigned long long)cv_esp_entry(run)->last_lba,
		       run->plan->new_size_bytes > run->plan->old_size_bytes ? ", disk grown" : "");
	return r;
}

/* ---- step 3: the ESP ---- */

static int esp_write(struct cv_run *run)
{
	struct bootfix_linux_opts b = {
		.distro = run->distro, .boot_fs_uuid = run->fs_uuid, .grub_dir = run->grub_dir,
		/* seeded runs (tests) must give the same bytes every time; 0 = random */
		.esp_volume_id = run->o->plan.seeded ? (uint32_t)(run->o->plan.seed * 2654435761u) | 1 : 0,
	};
	struct vdisk *d;
	int r = vdisk_open(run->tmp_disk, VDISK_OPEN_RDWR, &d);

	if (r < 0)
		return r;
	r = bootfix_linux_esp(d, run->plan->after, run->plan->esp_number, &b, &run->esp_volume_id);
	int c = vdisk_close(d);
	if (r == 0 && c < 0)
		r = c;
	if (r == 0)
		detail(run, "FAT32 %04X-%04X: \\EFI\\BOOT\\BOOTX64.EFI, \\EFI\\%s\\grubx64.efi, "
		       "grub.cfg -> UUID %s %s/grub.cfg", run->esp_volume_id >> 16,
		       run->esp_volume_id & 0xFFFF, run->distro, run->fs_uuid, run->grub_dir);
	return r;
}

/* ---- step 4: the guest's own files ---- */

/* Linux sees an MBR partition as PARTUUID <disk signature>-<number, 2 hex digits>; the GPT
 * gives every partition a GUID instead. */
static void partuuid_maps(const struct cv_run *run, char old[][16], char new_[][40],
			  const char **po, const char **pn, size_t *n)
{
	const struct part_table *a = run->plan->after;

	*n = 0;
	for (size_t i = 0; i < a->n_entries && *n < PART_MAX_NUMBER; i++) {
		if (a->entries[i].number == run->plan->esp_number)
			continue;
		snprintf(old[*n], 16, "%08x-%02x", run->before->mbr_disk_signature,
			 a->entries[i].number);
		part_guid_to_str(a->entries[i].guid, new_[*n]);
		for (char *c = new_[*n]; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		po[*n] = old[*n];
		pn[*n] = new_[*n];
		(*n)++;
	}
}

static int guest_fix(struct cv_run *run)
{
	static char old[PART_MAX_NUMBER][16], new_[PART_MAX_NUMBER][40];
	const char *po[PART_MAX_NUMBER], *pn[PART_MAX_NUMBER];
	struct guest_fix_opts g = { .esp_volume_id = run->esp_volume_id,
				    .run_guest_grub = run->o->guest_grub };
	struct guest_fix_report *rep = NULL;

	if (!run->guest) {
		detail(run, "skipped: %s", run->o->no_guest ? "--no-guest" :
		       run->o->in_place ? "in place (edits inside file systems could not be "
		       "rolled back byte for byte)" : "no deep inspection");
		return 0;
	}
	partuuid_maps(run, old, new_, po, pn, &g.n_partuuids);
	g.partuuid_old = po;
	g.partuuid_new = pn;
	int r = guest_fix_linux(run->tmp_disk, "vhdx", &g, &rep);
	if (r < 0)
		return r;
	for (size_t i = 0; i < rep->n_changes; i++)
		logf_(run, "  guest: %s\n", rep->changes[i]);
	detail(run, "%zu change%s in the guest", rep->n_changes, rep->n_changes == 1 ? "" : "s");
	guest_fix_report_free(rep);
	return 0;
}

/* ---- step 5: NVRAM ---- */

static int nvram_write(struct cv_run *run)
{
	const char *tmpl = run->o->nvram_template ? run->o->nvram_template :
			   CV_DEFAULT_NVRAM_TEMPLATE;
	const struct part_entry *esp = cv_esp_entry(run);
	char loader[128];
	struct nvram *nv;
	struct nvram_boot_target t = {
		.description = run->distro, .part_number = esp->number,
		.first_lba = esp->first_lba, .sectors = esp->last_lba - esp->first_lba + 1,
		.loader = loader,
	};
	memcpy(t.part_guid, esp->guid, 16);
	snprintf(loader, sizeof(loader), "\\EFI\\%s\\grubx64.efi", run->distro);
	int r = nvram_open(tmpl, &nv);
	if (r < 0)
		return r;
	r = nvram_add_boot(nv, &t, &run->boot_number);
	if (r == 0)
		r = nvram_save(nv, run->tmp_vars);
	nvram_free(nv);
	if (r == 0)
		detail(run, "Boot%04X \"%s\" HD(%u,GPT)/%s first in BootOrder (template %s)",
		       run->boot_number, run->distro, esp->number, loader, tmpl);
	return r;
}

/* ---- step 6: generation 2 configuration ---- */

static int config_write(struct cv_run *run)
{
	char *text = cv_gen2_json(run);
	int fd = -1, r = text ? 0 : vdisk_fail(ENOMEM, "cannot build the generation 2 config");

	if (r == 0 && (fd = open(run->tmp_cfg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				 0644)) < 0)
		r = vdisk_fail(errno, "%s: %s", run->tmp_cfg, strerror(errno));
	if (r == 0)
		r = vdisk_pwrite(fd, run->tmp_cfg, text, strlen(text), 0);
	if (fd >= 0)
		close(fd);
	free(text);
	if (r == 0)
		detail(run, "generation 2, UEFI, NVRAM %s_VARS.fd, disk %s%s", run->name,
		       run->o->in_place ? run->src_disk : run->name,
		       run->o->in_place ? "" : ".vhdx");
	return r;
}

/* ---- step 7: commit ---- */

static int commit(struct cv_run *run)
{
	const char *from[] = { run->o->in_place ? NULL : run->tmp_disk, run->tmp_vars,
			       run->tmp_log, run->tmp_cfg };
	const char *to[] = { run->out_disk, run->out_vars, run->out_log, run->out_cfg };
	int r = 0;

	logf_(run, "step %u: commit: renaming into %s, %s.json last\n", run->step_no + 1,
	      run->dir, run->name);
	for (size_t i = 0; r == 0 && i < 4; i++)
		if (from[i])
			r = fsync_path(from[i], false);
	if (r == 0)
		r = fsync_path(run->dir, true);
	for (size_t i = 0; r == 0 && i < 4; i++) {
		if (from[i] && rename(from[i], to[i]) < 0)
			r = vdisk_fail(errno, "rename %s -> %s: %s", from[i], to[i], strerror(errno));
		if (r == 0 && run->fault_step == 100 + i) /* crash between renames (tests) */
			_exit(99);
	}
	if (r == 0)
		r = fsync_path(run->dir, true);
	if (r == 0 && unlink(run->lock_path) < 0)
		r = vdisk_fail(errno, "%s: %s", run->lock_path, strerror(errno));
	if (r == 0)
		r = fsync_path(run->dir, true);
	return r;
}

/* On failure: the run's temporary files go; final names were never written before commit,
 * and a failure during commit leaves the marker, so the next run removes the rest. */
static void discard(struct cv_run *run)
{
	const char *tmp[] = { run->o->in_place ? NULL : run->tmp_disk, run->tmp_vars,
			      run->tmp_log, run->tmp_cfg };
	for (size_t i = 0; i < 4; i++)
		if (tmp[i] && tmp[i][0])
			unlink(tmp[i]);
	if (run->lock_path[0] && access(run->out_cfg, F_OK) != 0)
		unlink(run->lock_path);
}

static int in_place_prepare(struct cv_run *run)
{
	int r = cv_undo_manifest_write(run);

	if (r == 0)
		r = cv_undo_regions_save(run);
	if (r == 0)
		detail(run, "undo record %s written before any change to %s", run->undo,
		       run->src_disk);
	return r;
}

int cv_execute(struct cv_run *run)
{
	const char *env = getenv("GENSHIFT_FAULT_AFTER_STEP");
	int r;

	run->fault_step = env ? (unsigned)strtoul(env, NULL, 10) : 0;
	if (run->o->in_place && run->guest) {
		guest_info_free(run->guest); /* see guest_fix: no edits in place */
		run->guest = NULL;
	}
	r = open_output_dir(run);
	if (r == 0)
		logf_(run, "genshift convert %s -> %s (%s)\nstep 0: analysis (%s) done in %.2f s: "
		      "boot file system UUID %s on partition %u, grub.cfg in %s%s\n", run->o->src,
		      run->dir, run->name, run->guest ? "deep" : "structural", run->analyze_seconds,
		      run->fs_uuid, run->root->number, run->grub_dir,
		      run->n_warnings ? "; warnings:" : "");
	for (size_t i = 0; r == 0 && i < run->n_warnings; i++)
		logf_(run, "  warning: %s\n", run->warnings[i]);
	if (r == 0 && run->o->in_place)
		r = step(run, "undo record", in_place_prepare);
	if (r == 0)
		r = step(run, "disk", run->o->in_place ? disk_in_place : disk_copy);
	if (r == 0)
		r = step(run, "partition table", partition_apply);
	if (r == 0)
		r = step(run, "EFI system partition", esp_write);
	if (r == 0)
		r = step(run, "guest files", guest_fix);
	if (r == 0)
		r = step(run, "NVRAM", nvram_write);
	if (r == 0)
		r = step(run, "generation 2 configuration", config_write);
	if (r == 0)
		r = commit(run);
	if (r < 0 && run->dir[0])
		discard(run);
	return r;
}
