/* convert/pipeline.h - the steps of `genshift convert` (internal to convert/): a generation 1
 * VM (config or bare disk) becomes a generation 2 one in an output directory, or in place.
 *
 * Crash rule for the output directory (docs/convert.md): every file of a run is first
 * written as DIR/.NAME.tmp-XXXXXX<suffix>, beside a marker DIR/.NAME.tmp-XXXXXX.lock that the
 * run holds locked. Once all are fsynced they are renamed to their final names, NAME.json
 * last, the directory is fsynced, and only then the marker goes. So DIR holds a complete
 * output for NAME exactly when NAME.json exists and no .NAME.tmp-* entry does; the next run
 * removes the leftovers of an interrupted one (never those of a run still holding its lock).
 */
#ifndef GENSHIFT_CONVERT_PIPELINE_H
#define GENSHIFT_CONVERT_PIPELINE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "bootfix/bootfix.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"
#include "vmm/vmm.h"

#define CV_DEFAULT_NVRAM_TEMPLATE "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define CV_MAX_STEPS 16

struct cv_opts {
	const char *src;            /* gen 1 vmcfg JSON or a bare disk image */
	const char *out_dir;
	const char *name;           /* NULL: the source's file name without extension */
	const char *nvram_template; /* NULL: CV_DEFAULT_NVRAM_TEMPLATE */
	bool differencing, in_place, dry_run, json;
	bool no_guest;              /* no libguestfs: structural facts only, no guest edits */
	bool guest_grub;            /* guest_fix_opts.run_guest_grub */
	bool no_esp_fallback;       /* test hook: leave \EFI\BOOT\BOOTX64.EFI out */
	struct part_plan_opts plan;
};

struct cv_step {
	const char *name;
	double seconds;
	char detail[512];
};

/* One conversion: the inputs as found, the plan, and what each step did. */
struct cv_run {
	const struct cv_opts *o;
	char name[256];
	struct vmcfg *gen1;         /* the source config (made with vmcfg_new_simple for an image) */
	unsigned boot_disk;         /* index of the converted disk in gen1->disks */
	char src_disk[PATH_MAX];    /* its path */
	enum vdisk_format src_format;
	uint64_t src_size_bytes;
	struct part_table *before;
	struct part_plan *plan;
	const struct part_entry *root; /* the partition holding /boot/grub */
	uint32_t root_number;       /* that partition as gs_analyze saw it (0: unknown) */
	char fs_uuid[64], fs_type[32], distro[64], grub_dir[64];
	struct guest_info *guest;   /* NULL without deep inspection */
	uint32_t esp_volume_id;
	unsigned boot_number;       /* Boot#### written */
	struct vmcfg *gen2;
	/* Paths: final ones in DIR, and the temporary ones of this run. */
	char dir[PATH_MAX], tmp_base[PATH_MAX], lock_path[PATH_MAX];
	char out_disk[PATH_MAX], out_vars[PATH_MAX], out_cfg[PATH_MAX], out_log[PATH_MAX];
	char tmp_disk[PATH_MAX], tmp_vars[PATH_MAX], tmp_cfg[PATH_MAX], tmp_log[PATH_MAX];
	char undo[PATH_MAX], undo_part[PATH_MAX], undo_esp[PATH_MAX];
	int lock_fd;
	FILE *log;
	unsigned fault_step, step_no;
	double analyze_seconds;     /* step 0, for the log */
	size_t n_steps;
	struct cv_step steps[CV_MAX_STEPS];
	size_t n_warnings;
	char warnings[8][512];
};

/* Load the source, analyze it and plan the partition conversion (step 0; reads only).
 * Refuses (-errno with a message) what cannot be converted. */
int cv_prepare(struct cv_run *run, const struct cv_opts *o);
/* Carry out the plan (steps 1-7). On failure nothing is left under the final names. */
int cv_execute(struct cv_run *run);
void cv_run_free(struct cv_run *run);

/* A line for the report's warnings (at most 8 are kept). */
void cv_add_warning(struct cv_run *run, const char *msg);

/* The ESP of the planned GPT (plan->after, entry plan->esp_number). */
const struct part_entry *cv_esp_entry(const struct cv_run *run);

/* The gen 2 configuration text the run writes (malloc'ed; NULL on -ENOMEM). */
char *cv_gen2_json(struct cv_run *run);
/* The report of a run (also of a dry run) as JSON; the caller owns it. */
struct json_object *cv_report_json(const struct cv_run *run, bool done);

/* `genshift rollback`: undo an --in-place conversion from its undo manifest. */
int cv_rollback(const char *undo_path, FILE *msgs);

/* Files of the undo record beside the manifest (NAME.undo): */
#define CV_UNDO_PART_SUFFIX "-partition"
#define CV_UNDO_ESP_SUFFIX "-esp"

#endif
