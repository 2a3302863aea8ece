/* convert/cmd-partition.c - `genshift partition show|convert|undo`: partition tables and
 * the in-place MBR-to-GPT conversion. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/cli.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

static const char partition_usage[] =
	"usage: genshift partition COMMAND [OPTIONS] IMAGE\n"
	"\n"
	"  show IMAGE [--json]\n"
	"        the partition table (MBR, EBR chain, GPT), free space and findings\n"
	"  convert IMAGE [--dry-run] [--json] [--esp-size SIZE] [--msr] [--no-grow]\n"
	"          [--seed N] [--map 0xNN=TYPE-GUID]... [--undo-file PATH]\n"
	"        MBR -> GPT in place: every partition keeps its LBAs and its number\n"
	"        (primaries 1-4, logicals 5+), types are mapped, an EFI system partition\n"
	"        (default 260 MiB, unformatted) is placed in free space or at the end, and the\n"
	"        disk grows when the GPT or the ESP needs room (--no-grow refuses instead).\n"
	"        The original first and last MiB and every EBR are saved first to the undo\n"
	"        file (default IMAGE.genshift-undo). --dry-run shows the plan and writes\n"
	"        nothing. --seed makes GUIDs reproducible. --msr adds a 16 MiB Microsoft\n"
	"        reserved partition.\n"
	"  undo IMAGE UNDOFILE\n"
	"        restores the saved bytes and the original disk size\n"
	"  repair IMAGE\n"
	"        rebuilds a damaged primary GPT from the backup, or the backup from the primary\n"
	"\n"
	"exit status: 0 success (convert: also when the disk already is GPT with an ESP),\n"
	"             1 failure, 2 usage error\n";

enum { OPT_JSON = 256, OPT_DRY_RUN, OPT_ESP_SIZE, OPT_MSR, OPT_GROW, OPT_NO_GROW, OPT_SEED,
       OPT_MAP, OPT_UNDO_FILE };

static const struct option partition_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "esp-size", required_argument, NULL, OPT_ESP_SIZE },
	{ "msr", no_argument, NULL, OPT_MSR },
	{ "grow", no_argument, NULL, OPT_GROW },
	{ "no-grow", no_argument, NULL, OPT_NO_GROW },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "map", required_argument, NULL, OPT_MAP },
	{ "undo-file", required_argument, NULL, OPT_UNDO_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define MAX_MAPS 32

struct partition_args {
	int json, dry_run;
	struct part_plan_opts plan;
	struct part_type_map maps[MAX_MAPS];
	const char *undo_file;
	char **pos;
	int npos;
};

static int fail(void)
{
	fprintf(stderr, "genshift: %s\n", vdisk_errmsg());
	return GS_EXIT_FAIL;
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "genshift partition: %s\n(see 'genshift partition --help')\n", msg);
	return GS_EXIT_USAGE;
}

/* "0x83=0FC63DAF-8483-4772-8E79-3D69D8477DE4" (the type also in decimal, as MBR2GPT). */
static int parse_map(const char *s, struct part_type_map *m)
{
	char *end;
	unsigned long type = strtoul(s, &end, 0);

	if (end == s || *end != '=' || type == 0 || type > 0xFF)
		return -EINVAL;
	m->mbr_type = (uint8_t)type;
	return part_guid_parse(end + 1, m->type_guid);
}

static int parse_one(int c, struct partition_args *a)
{
	char *end;

	switch (c) {
	case OPT_JSON: a->json = 1; break;
	case OPT_DRY_RUN: a->dry_run = 1; break;
	case OPT_MSR: a->plan.add_msr = true; break;
	case OPT_GROW: a->plan.allow_grow = true; break;
	case OPT_NO_GROW: a->plan.allow_grow = false; break;
	case OPT_UNDO_FILE: a->undo_file = optarg; break;
	case OPT_ESP_SIZE:
		if (gs_parse_size(optarg, &a->plan.esp_bytes) < 0 || a->plan.esp_bytes == 0)
			return usage_error("bad --esp-size");
		break;
	case OPT_SEED:
		errno = 0;
		a->plan.seed = strtoull(optarg, &end, 0);
		if (errno || end == optarg || *end)
			return usage_error("bad --seed (a number)");
		a->plan.seeded = true;
		break;
	case OPT_MAP:
		if (a->plan.n_maps >= MAX_MAPS || parse_map(optarg, &a->maps[a->plan.n_maps]) < 0)
			return usage_error("bad --map (want 0xNN=GUID, at most 32)");
		a->plan.n_maps++;
		break;
	default:
		return usage_error("unknown option");
	}
	return -1;
}

/* Returns -1 on success, else the exit code to return. */
static int parse_partition_args(int argc, char **argv, struct partition_args *a)
{
	int c, r;

	memset(a, 0, sizeof(*a));
	a->plan.allow_grow = true; /* growing a virtual disk loses nothing */
	a->plan.maps = a->maps;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", partition_options, NULL)) != -1) {
		if (c == 'h') {
			fputs(partition_usage, stdout);
			return GS_EXIT_OK;
		}
		r = parse_one(c, a);
		if (r >= 0)
			return r;
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	return -1;
}

/* ---- human output ---- */

static void print_header(const char *path, const struct part_table *t)
{
	char size[32], g[37];

	printf("%s: %s, %u-byte sectors, %llu sectors (%s)", path, part_kind_name(t->kind),
	       t->sector_bytes, (unsigned long long)t->disk_sectors,
	       gs_human_size(t->disk_sectors * t->sector_bytes, size));
	if (t->kind == PART_KIND_MBR)
		printf(", disk signature 0x%08x%s", t->mbr_disk_signature,
		       t->mbr_has_boot_code ? ", boot code present" : "");
	if (t->kind == PART_KIND_GPT || t->kind == PART_KIND_HYBRID) {
		part_guid_to_str(t->disk_guid, g);
		printf(", disk GUID %s, usable LBA %llu..%llu", g,
		       (unsigned long long)t->first_usable_lba,
		       (unsigned long long)t->last_usable_lba);
	}
	putchar('\n');
}

static void print_entry(const struct part_table *t, const struct part_entry *e)
{
	char size[32], tn[32], type[64], flags[PART_NAME_BYTES + 32];

	if (e->mbr_type) {
		snprintf(type, sizeof(type), "0x%02x %s", e->mbr_type, part_type_name(e, tn));
		snprintf(flags, sizeof(flags), "%s%s%s", e->bootable ? "active" : "",
			 e->bootable && e->is_logical ? " " : "", e->is_logical ? "logical" : "");
	} else {
		snprintf(type, sizeof(type), "%s", part_type_name(e, tn));
		snprintf(flags, sizeof(flags), "\"%s\"%s", e->name,
			 e->attributes ? " (attributes set)" : "");
	}
	printf("  %4u %12llu %12llu %11s  ", e->number, (unsigned long long)e->first_lba,
	       (unsigned long long)e->last_lba,
	       gs_human_size((e->last_lba - e->first_lba + 1) * t->sector_bytes, size));
	if (flags[0])
		printf("%-28s %s\n", type, flags);
	else
		printf("%s\n", type);
}

/* Free runs shorter than the 1 MiB alignment unit are alignment gaps, not worth a row. */
static void print_free_before(const struct part_table *t, uint64_t lba, size_t *next_free)
{
	char size[32];

	for (; *next_free < t->n_free && t->free[*next_free].first_lba < lba; (*next_free)++) {
		const struct part_extent *f = &t->free[*next_free];
		uint64_t n = f->last_lba - f->first_lba + 1;
		if (n * t->sector_bytes >= PART_ALIGN_BYTES)
			printf("     - %12llu %12llu %11s  (free)\n", (unsigned long long)f->first_lba,
			       (unsigned long long)f->last_lba,
			       gs_human_size(n * t->sector_bytes, size));
	}
}

static int by_start(const void *a, const void *b)
{
	const struct part_entry *x = *(const struct part_entry *const *)a;
	const struct part_entry *y = *(const struct part_entry *const *)b;
	return (x->first_lba > y->first_lba) - (x->first_lba < y->first_lba);
}

static void print_table(const char *path, const struct part_table *t)
{
	const struct part_entry **v = calloc(t->n_entries + 1, sizeof(*v));
	size_t next_free = 0;

	print_header(path, t);
	if (!v)
		return;
	for (size_t i = 0; i < t->n_entries; i++)
		v[i] = &t->entries[i];
	qsort(v, t->n_entries, sizeof(*v), by_start);
	printf("  %4s %12s %12s %11s  %-28s %s\n", "No", "Start", "End", "Size", "Type",
	       t->kind == PART_KIND_MBR ? "Flags" : "Name");
	for (size_t i = 0; i < t->n_entries; i++) {
		print_free_before(t, v[i]->first_lba, &next_free);
		print_entry(t, v[i]);
	}
	print_free_before(t, UINT64_MAX, &next_free);
	free(v);
	if (t->ext_number)
		printf("  extended partition %u: LBA %llu..%llu, %zu EBR%s\n", t->ext_number,
		       (unsigned long long)t->ext_first_lba, (unsigned long long)t->ext_last_lba,
		       t->n_ebrs, t->n_ebrs == 1 ? "" : "s");
	for (size_t i = 0; i < t->n_findings; i++)
		printf("  finding: %s\n", t->findings[i]);
}

static void print_plan(const char *path, const struct part_table *before,
		       const struct part_plan *p)
{
	puts("Before:");
	print_table(path, before);
	puts("\nAfter:");
	print_table(path, p->after);
	puts("\nWrites, in this order:");
	if (p->new_size_bytes > p->old_size_bytes)
		printf("  grow the disk from %llu to %llu bytes\n",
		       (unsigned long long)p->old_size_bytes, (unsigned long long)p->new_size_bytes);
	for (size_t i = 0; i < p->n_writes; i++)
		printf("  LBA %llu..%llu  %s%s\n", (unsigned long long)p->writes[i].lba,
		       (unsigned long long)(p->writes[i].lba + p->writes[i].sectors - 1),
		       p->writes[i].what, p->writes[i].flush_after ? ", then flush" : "");
	if (p->n_notes)
		puts("\nNotes:");
	for (size_t i = 0; i < p->n_notes; i++)
		printf("  - %s\n", p->notes[i]);
}

/* ---- subcommands ---- */

static int do_show(struct partition_args *a)
{
	struct vdisk *d;
	struct part_table *t;

	if (a->npos != 1)
		return usage_error("show takes one IMAGE");
	if (vdisk_open(a->pos[0], 0, &d) < 0)
		return fail();
	int r = part_table_read(d, &t);
	vdisk_close(d);
	if (r < 0)
		return fail();
	if (a->json) {
		struct json_object *o = part_table_to_json(t);
		if (o)
			gs_print_json(o);
		json_object_put(o);
	} else {
		print_table(a->pos[0], t);
	}
	part_table_free(t);
	return GS_EXIT_OK;
}

/* Test hook: GENSHIFT_FAULT_AFTER_STEP=N ends the process right after durable step N, as a
 * crash would (the crash-safety test kills convert at every step this way). */
static void fault_hook(unsigned step, const char *what, void *opaque)
{
	unsigned n = *(unsigned *)opaque;

	if (step == n) {
		fprintf(stderr, "genshift: fault injected after step %u (%s)\n", step, what);
		_exit(99);
	}
}

static void print_convert_json(const struct part_table *before, const struct part_plan *p,
			       const char *undo_file)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "before", part_table_to_json(before));
	json_object_object_add(o, "plan", part_plan_to_json(p));
	json_object_object_add(o, "applied", json_object_new_boolean(undo_file != NULL));
	if (undo_file)
		json_object_object_add(o, "undo_file", json_object_new_string(undo_file));
	gs_print_json(o);
	json_object_put(o);
}

static int apply_plan(struct vdisk *d, const struct part_plan *p, const char *undo)
{
	const char *env = getenv("GENSHIFT_FAULT_AFTER_STEP");
	unsigned fault_step = env ? (unsigned)strtoul(env, NULL, 10) : 0;
	struct part_apply_opts o = { .after_step = env ? fault_hook : NULL,
				     .opaque = &fault_step };

	return part_plan_apply(d, p, undo, &o);
}

/* Already GPT with an ESP: reported, and not a failure. */
static int report_nothing_to_do(const struct partition_args *a, const struct part_table *t)
{
	if (!a->json) {
		printf("%s: %s\n", a->pos[0], vdisk_errmsg());
		return GS_EXIT_OK;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "before", part_table_to_json(t));
	json_object_object_add(o, "applied", json_object_new_boolean(false));
	json_object_object_add(o, "nothing_to_do", json_object_new_string(vdisk_errmsg()));
	gs_print_json(o);
	json_object_put(o);
	return GS_EXIT_OK;
}

static int convert_planned(struct partition_args *a, struct vdisk *d, struct part_table *t,
			   const char *undo)
{
	struct part_plan *p;
	int r = part_plan_new(d, t, &a->plan, &p);

	if (r == -EEXIST)
		return report_nothing_to_do(a, t);
	if (r < 0)
		return fail();
	if (!a->dry_run)
		r = apply_plan(d, p, undo);
	if (r == 0 && a->json)
		print_convert_json(t, p, a->dry_run ? NULL : undo);
	else if (r == 0)
		print_plan(a->pos[0], t, p);
	if (r == 0 && !a->dry_run && !a->json)
		printf("\nConverted. Undo with: genshift partition undo %s %s\n", a->pos[0], undo);
	part_plan_free(p);
	return r < 0 ? fail() : GS_EXIT_OK;
}

static int do_convert(struct partition_args *a)
{
	char undo[4096];
	struct vdisk *d;
	struct part_table *t = NULL;

	if (a->npos != 1)
		return usage_error("convert takes one IMAGE");
	if (snprintf(undo, sizeof(undo), "%s%s", a->undo_file ? a->undo_file : a->pos[0],
		     a->undo_file ? "" : ".genshift-undo") >= (int)sizeof(undo))
		return usage_error("undo file path too long");
	if (vdisk_open(a->pos[0], a->dry_run ? 0 : VDISK_OPEN_RDWR, &d) < 0)
		return fail();
	int rc = part_table_read(d, &t) < 0 ? fail() : convert_planned(a, d, t, undo);
	part_table_free(t);
	if (vdisk_close(d) < 0 && rc == GS_EXIT_OK)
		rc = fail();
	return rc;
}

static int do_undo(struct partition_args *a)
{
	struct vdisk *d;

	if (a->npos != 2)
		return usage_error("undo takes IMAGE and UNDOFILE");
	if (vdisk_open(a->pos[0], VDISK_OPEN_RDWR, &d) < 0)
		return fail();
	int r = part_undo(d, a->pos[1]);
	int c = vdisk_close(d);
	if (r < 0 || c < 0)
		return fail();
	printf("%s: restored from %s\n", a->pos[0], a->pos[1]);
	return GS_EXIT_OK;
}

static int do_repair(struct partition_args *a)
{
	struct vdisk *d;
	struct part_table *t = NULL;

	if (a->npos != 1)
		return usage_error("repair takes one IMAGE");
	if (vdisk_open(a->pos[0], VDISK_OPEN_RDWR, &d) < 0)
		return fail();
	int r = part_table_read(d, &t);
	if (r == 0)
		r = part_gpt_repair(d, t);
	if (r == 0)
		printf("%s: both GPT copies are valid; nothing to repair\n", a->pos[0]);
	else if (r > 0)
		printf("%s: rebuilt the %s GPT from the %s\n", a->pos[0],
		       t->gpt_primary_valid ? "backup" : "primary",
		       t->gpt_primary_valid ? "primary" : "backup");
	part_table_free(t);
	int c = vdisk_close(d);
	return r < 0 || c < 0 ? fail() : GS_EXIT_OK;
}

int cmd_partition(int argc, char **argv)
{
	struct partition_args a;

	if (argc < 2)
		return usage_error("missing command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(partition_usage, stdout);
		return GS_EXIT_OK;
	}
	int r = parse_partition_args(argc - 1, argv + 1, &a);
	if (r >= 0)
		return r;
	if (!strcmp(argv[1], "show"))
		return do_show(&a);
	if (!strcmp(argv[1], "convert"))
		return do_convert(&a);
	if (!strcmp(argv[1], "undo"))
		return do_undo(&a);
	if (!strcmp(argv[1], "repair"))
		return do_repair(&a);
	return usage_error("unknown command");
}
