/* convert/cmd-convert.c - `genshift convert` (generation 1 VM or disk -> generation 2 VM)
 * and `genshift rollback` (undo an --in-place conversion): options and reports. The steps
 * themselves are in pipeline.c / pipeline-run.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/cli.h"
#include "convert/pipeline.h"
#include "convert/translate.h"

static const char convert_usage[] =
	"usage: genshift convert SRC --out DIR [OPTIONS]\n"
	"  Converts a generation 1 VM (SRC: a genshift VM configuration, docs/vmcfg.md, or a\n"
	"  bare raw/VHD/VHDX disk) into a generation 2 one in DIR: NAME.vhdx (the disk, GPT +\n"
	"  FAT32 ESP with a GRUB EFI loader), NAME_VARS.fd (OVMF NVRAM with a Boot#### entry\n"
	"  for it), NAME.json (the generation 2 configuration) and NAME.log (each step, timed).\n"
	"  SRC is never opened for writing (unless --in-place). The files appear only when\n"
	"  complete: an interrupted run leaves .NAME.tmp-* files that the next run removes.\n"
	"\n"
	"options:\n"
	"  --out DIR             output directory (created if missing)\n"
	"  --name NAME           output file names (default: SRC's name without extension)\n"
	"  --differencing        NAME.vhdx is a differencing child of SRC (a VHDX) holding only\n"
	"                        the changes; SRC must then stay where it is, unmodified\n"
	"  --in-place            convert SRC's disk itself, after writing DIR/NAME.undo;\n"
	"                        `genshift rollback DIR/NAME.undo` restores it byte for byte\n"
	"  --dry-run             print the plan (partitions before/after, files, configuration\n"
	"                        changes) and write nothing\n"
	"  --esp-size SIZE       ESP size (default 260M)\n"
	"  --no-grow             refuse instead of growing the disk when the ESP needs room\n"
	"  --nvram-template FILE OVMF variable store to start from\n"
	"                        (default " CV_DEFAULT_NVRAM_TEMPLATE ")\n"
	"  --no-guest            no libguestfs: structural analysis only, guest files untouched\n"
	"  --guest-grub          also run grub-install --target=x86_64-efi inside the guest\n"
	"  --json                print the report as JSON\n"
	"  --seed N              reproducible GUIDs and FAT serial (for tests)\n"
	"\n"
	"exit status: 0 converted (or planned), 1 failed or refused (the reason on stderr;\n"
	"             nothing written), 2 usage error\n";

static const char rollback_usage[] =
	"usage: genshift rollback DIR/NAME.undo\n"
	"  Restores the source disk of `genshift convert --in-place` byte for byte (also after\n"
	"  an interrupted conversion) and removes that conversion's output files.\n"
	"\n"
	"exit status: 0 restored, 1 failed, 2 usage error\n";

enum { OPT_OUT = 256, OPT_NAME, OPT_DIFF, OPT_IN_PLACE, OPT_DRY_RUN, OPT_ESP_SIZE, OPT_NO_GROW,
       OPT_NVRAM, OPT_NO_GUEST, OPT_GUEST_GRUB, OPT_JSON, OPT_SEED };

static const struct option convert_options[] = {
	{ "out", required_argument, NULL, OPT_OUT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "differencing", no_argument, NULL, OPT_DIFF },
	{ "in-place", no_argument, NULL, OPT_IN_PLACE },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "esp-size", required_argument, NULL, OPT_ESP_SIZE },
	{ "no-grow", no_argument, NULL, OPT_NO_GROW },
	{ "nvram-template", required_argument, NULL, OPT_NVRAM },
	{ "no-guest", no_argument, NULL, OPT_NO_GUEST },
	{ "guest-grub", no_argument, NULL, OPT_GUEST_GRUB },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *msg)
{
	fprintf(stderr, "genshift convert: %s\n(see 'genshift convert --help')\n", msg);
	return GS_EXIT_USAGE;
}

static int parse_one(int c, struct cv_opts *o)
{
	char *end;

	switch (c) {
	case OPT_OUT: o->out_dir = optarg; break;
	case OPT_NAME: o->name = optarg; break;
	case OPT_DIFF: o->differencing = true; break;
	case OPT_IN_PLACE: o->in_place = true; break;
	case OPT_DRY_RUN: o->dry_run = true; break;
	case OPT_NO_GROW: o->plan.allow_grow = false; break;
	case OPT_NVRAM: o->nvram_template = optarg; break;
	case OPT_NO_GUEST: o->no_guest = true; break;
	case OPT_GUEST_GRUB: o->guest_grub = true; break;
	case OPT_JSON: o->json = true; break;
	case OPT_SEED:
		errno = 0;
		o->plan.seed = strtoull(optarg, &end, 0);
		if (errno || end == optarg || *end)
			return usage_error("bad --seed (a number)");
		o->plan.seeded = true;
		break;
	case OPT_ESP_SIZE:
		if (gs_parse_size(optarg, &o->plan.esp_bytes) < 0 || !o->plan.esp_bytes)
			return usage_error("bad --esp-size");
		break;
	default:
		return usage_error("unknown option");
	}
	return -1;
}

/* -1: parsed; otherwise the exit code. */
static int parse_convert_args(int argc, char **argv, struct cv_opts *o)
{
	int c, r;

	memset(o, 0, sizeof(*o));
	o->plan.allow_grow = true;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", convert_options, NULL)) != -1) {
		if (c == 'h') {
			fputs(convert_usage, stdout);
			return GS_EXIT_OK;
		}
		if ((r = parse_one(c, o)) >= 0)
			return r;
	}
	if (argc - optind != 1)
		return usage_error("give exactly one SRC");
	o->src = argv[optind];
	if (!o->out_dir)
		return usage_error("--out DIR is required");
	if (o->in_place && o->differencing)
		return usage_error("--in-place and --differencing exclude each other");
	return -1;
}

/* ---- the generation 2 configuration ---- */

/* gs_translate_gen2 (convert/translate.c) maps the settings; its warnings go into the
 * report once (this runs for the dry-run picture and for the real file). */
char *cv_gen2_json(struct cv_run *run)
{
	char vars[300], disk[300];
	struct gs_notes notes = { 0 };
	struct vmcfg *g = NULL;

	snprintf(vars, sizeof(vars), "%s_VARS.fd", run->name);
	snprintf(disk, sizeof(disk), "%s.vhdx", run->name);
	struct gs_translate_opts t = {
		.nvram_path = vars, .boot_disk = (int)run->boot_disk,
		.disk_path = run->o->in_place ? run->src_disk : disk,
	};
	if (gs_translate_gen2(run->gen1, &t, &g, &notes) < 0)
		return NULL;
	for (size_t i = 0; i < notes.n && !run->gen2; i++)
		cv_add_warning(run, notes.lines[i]);
	gs_notes_free(&notes);
	vmcfg_free(run->gen2);
	run->gen2 = g;
	return vmcfg_to_json(g);
}

/* ---- reports ---- */

static struct json_object *str_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

static struct json_object *steps_json(const struct cv_run *run)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < run->n_steps; i++) {
		struct json_object *s = json_object_new_object();
		json_object_object_add(s, "name", json_object_new_string(run->steps[i].name));
		json_object_object_add(s, "seconds", json_object_new_double(run->steps[i].seconds));
		json_object_object_add(s, "detail", json_object_new_string(run->steps[i].detail));
		json_object_array_add(a, s);
	}
	return a;
}

static struct json_object *boot_json(const struct cv_run *run)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "root_partition", json_object_new_int((int)run->root->number));
	json_object_object_add(o, "fs_type", str_or_null(run->fs_type));
	json_object_object_add(o, "fs_uuid", str_or_null(run->fs_uuid));
	json_object_object_add(o, "grub_dir", str_or_null(run->grub_dir));
	json_object_object_add(o, "efi_dir", str_or_null(run->distro));
	json_object_object_add(o, "deep_inspection", json_object_new_boolean(run->guest != NULL));
	return o;
}

struct json_object *cv_report_json(const struct cv_run *run, bool done)
{
	struct json_object *o = json_object_new_object(), *w = json_object_new_array();

	json_object_object_add(o, "command", json_object_new_string("convert"));
	json_object_object_add(o, "source", json_object_new_string(run->o->src));
	json_object_object_add(o, "source_disk", json_object_new_string(run->src_disk));
	json_object_object_add(o, "name", json_object_new_string(run->name));
	json_object_object_add(o, "mode", json_object_new_string(
		run->o->in_place ? "in-place" : run->o->differencing ? "differencing" : "copy"));
	json_object_object_add(o, "dry_run", json_object_new_boolean(run->o->dry_run));
	json_object_object_add(o, "converted", json_object_new_boolean(done));
	json_object_object_add(o, "before", part_table_to_json(run->before));
	json_object_object_add(o, "plan", part_plan_to_json(run->plan));
	json_object_object_add(o, "boot", boot_json(run));
	if (done) {
		json_object_object_add(o, "disk", json_object_new_string(run->out_disk));
		json_object_object_add(o, "nvram", json_object_new_string(run->out_vars));
		json_object_object_add(o, "config", json_object_new_string(run->out_cfg));
		json_object_object_add(o, "log", json_object_new_string(run->out_log));
		json_object_object_add(o, "boot_entry", json_object_new_int((int)run->boot_number));
		json_object_object_add(o, "esp_volume_id",
				       json_object_new_int64(run->esp_volume_id));
		if (run->o->in_place)
			json_object_object_add(o, "undo", json_object_new_string(run->undo));
		json_object_object_add(o, "steps", steps_json(run));
	}
	for (size_t i = 0; i < run->n_warnings; i++)
		json_object_array_add(w, json_object_new_string(run->warnings[i]));
	json_object_object_add(o, "warnings", w);
	return o;
}

static void print_table(const struct part_table *t)
{
	char size[32], tn[32];

	printf("  %s, %llu sectors of %u bytes (%s)\n", part_kind_name(t->kind),
	       (unsigned long long)t->disk_sectors, t->sector_bytes,
	       gs_human_size(t->disk_sectors * t->sector_bytes, size));
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		printf("  %4u %10llu %10llu %11s  %s\n", e->number, (unsigned long long)e->first_lba,
		       (unsigned long long)e->last_lba,
		       gs_human_size((e->last_lba - e->first_lba + 1) * t->sector_bytes, size),
		       part_type_name(e, tn));
	}
}

/* Lines of a and b as a diff: a small LCS table is enough for two configurations. */
static size_t split_lines(char *s, char **v, size_t max)
{
	size_t n = 0;
	for (char *p = strtok(s, "\n"); p && n < max; p = strtok(NULL, "\n"))
		v[n++] = p;
	return n;
}

#define DIFF_MAX_LINES 256

static void print_diff(char *a, char *b)
{
	static char *x[DIFF_MAX_LINES], *y[DIFF_MAX_LINES];
	static unsigned short lcs[DIFF_MAX_LINES + 1][DIFF_MAX_LINES + 1];
	size_t n = split_lines(a, x, DIFF_MAX_LINES), m = split_lines(b, y, DIFF_MAX_LINES);

	for (size_t i = n + 1; i-- > 0;)
		for (size_t j = m + 1; j-- > 0;)
			lcs[i][j] = i == n || j == m ? 0 : !strcmp(x[i], y[j]) ? lcs[i + 1][j + 1] + 1
				    : lcs[i + 1][j] > lcs[i][j + 1] ? lcs[i + 1][j] : lcs[i][j + 1];
	size_t i = 0, j = 0;
	while (i < n || j < m) {
		if (i < n && j < m && !strcmp(x[i], y[j])) {
			printf("   %s\n", x[i++]);
			j++;
		} else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
			printf("  -%s\n", x[i++]);
		} else {
			printf("  +%s\n", y[j++]);
		}
	}
}

static void print_files(struct cv_run *run, size_t cfg_bytes)
{
	char a[32], b[32];
	struct stat st;
	const char *tmpl = run->o->nvram_template ? run->o->nvram_template
						  : CV_DEFAULT_NVRAM_TEMPLATE;

	puts("\nFiles to write:");
	if (run->o->in_place)
		printf("  %s/%s.undo (+-partition, -esp)  the original bytes, written first\n"
		       "  %s  modified in place: GPT, ESP; size %s -> %s\n", run->o->out_dir,
		       run->name, run->src_disk, gs_human_size(run->plan->old_size_bytes, a),
		       gs_human_size(run->plan->new_size_bytes, b));
	else
		printf("  %s/%s.vhdx  VHDX %s, virtual size %s\n", run->o->out_dir, run->name,
		       run->o->differencing ? "differencing child of the source" : "sparse copy",
		       gs_human_size(run->plan->new_size_bytes, a));
	printf("  %s/%s_VARS.fd  %s (copy of %s + Boot#### \"%s\")\n", run->o->out_dir,
	       run->name, stat(tmpl, &st) == 0 ? gs_human_size((uint64_t)st.st_size, a) : "?",
	       tmpl, run->distro);
	printf("  %s/%s.json  %zu bytes, the generation 2 configuration\n", run->o->out_dir,
	       run->name, cfg_bytes);
	printf("  %s/%s.log  the steps and their times\n", run->o->out_dir, run->name);
	printf("  in the ESP: \\EFI\\BOOT\\BOOTX64.EFI, \\EFI\\%s\\grubx64.efi, a grub.cfg "
	       "beside each that loads UUID=%s %s/grub.cfg\n", run->distro, run->fs_uuid,
	       run->grub_dir);
}

static void print_plan(struct cv_run *run)
{
	char *before = vmcfg_to_json(run->gen1), *after = cv_gen2_json(run);

	printf("Convert %s (%s, disk %s)\n\nPartitions before:\n", run->o->src, run->name,
	       run->src_disk);
	print_table(run->before);
	puts("\nPartitions after:");
	print_table(run->plan->after);
	for (size_t i = 0; i < run->plan->n_notes; i++)
		printf("  note: %s\n", run->plan->notes[i]);
	print_files(run, after ? strlen(after) : 0);
	puts("\nConfiguration (generation 1 -> 2):");
	if (before && after)
		print_diff(before, after);
	free(before);
	free(after);
	for (size_t i = 0; i < run->n_warnings; i++)
		printf("\nwarning: %s\n", run->warnings[i]);
}

static void print_done(const struct cv_run *run)
{
	printf("Converted %s -> %s\n", run->o->src, run->out_cfg);
	for (size_t i = 0; i < run->n_steps; i++)
		printf("  %-28s %7.2f s  %s\n", run->steps[i].name, run->steps[i].seconds,
		       run->steps[i].detail);
	for (size_t i = 0; i < run->n_warnings; i++)
		printf("warning: %s\n", run->warnings[i]);
	printf("Files: %s, %s, %s, %s\n", run->out_disk, run->out_vars, run->out_cfg, run->out_log);
	if (run->o->in_place)
		printf("Undo with: genshift rollback %s\n", run->undo);
	printf("Boot both generations: genshift verify --both %s %s\n", run->o->src, run->out_cfg);
}

int cmd_convert(int argc, char **argv)
{
	struct cv_opts o;
	struct cv_run run;
	int r = parse_convert_args(argc, argv, &o);

	if (r >= 0)
		return r;
	r = cv_prepare(&run, &o);
	if (r == 0 && !o.dry_run)
		r = cv_execute(&run);
	if (r < 0) {
		fprintf(stderr, "genshift convert: %s\n", vdisk_errmsg());
		cv_run_free(&run);
		return GS_EXIT_FAIL;
	}
	if (o.json) {
		char *cfg = o.dry_run ? cv_gen2_json(&run) : NULL; /* fills run.gen2 */
		free(cfg);
		struct json_object *j = cv_report_json(&run, !o.dry_run);
		gs_print_json(j);
		json_object_put(j);
	} else if (o.dry_run) {
		print_plan(&run);
	} else {
		print_done(&run);
	}
	cv_run_free(&run);
	return GS_EXIT_OK;
}

int cmd_rollback(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(rollback_usage, stdout);
		return GS_EXIT_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fputs(rollback_usage, stderr);
		return GS_EXIT_USAGE;
	}
	if (cv_rollback(argv[1], stdout) < 0) {
		fprintf(stderr, "genshift rollback: %s\n", vdisk_errmsg());
		return GS_EXIT_FAIL;
	}
	return GS_EXIT_OK;
}
