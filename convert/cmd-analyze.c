/* convert/cmd-analyze.c - `genshift analyze`: the pre-flight of a generation 1 -> 2
 * conversion, for people (tables) and for programs (--json). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "convert/analyze.h"
#include "convert/cli.h"

static const char analyze_usage[] =
	"usage: genshift analyze IMAGE|VMCONFIG... [--json] [--deep|--no-deep] [--no-grow]\n"
	"                        [--esp-size SIZE]\n"
	"\n"
	"Says, for each VM (a disk image or a genshift VM configuration), whether it can be\n"
	"converted from generation 1 (BIOS, MBR) to generation 2 (UEFI, GPT), what the\n"
	"conversion would do, and every reason it cannot. Nothing is written.\n"
	"\n"
	"  --no-deep    (default) structural analysis only: image format, partition table,\n"
	"               free space, file systems (libblkid), locks held by other processes and\n"
	"               the partition plan; a few milliseconds per image\n"
	"  --deep       also inspect the guest with libguestfs (distro, architecture,\n"
	"               bootloader, grub.cfg, fstab); starts an appliance: ~15 s per VM on\n"
	"               an idle host, minutes on a busy one\n"
	"  --no-grow    the disk may not grow to make room for the GPT and the ESP\n"
	"  --esp-size SIZE   the EFI system partition to plan for (default 260MiB)\n"
	"  --json       one JSON document: an array with one object per VM\n"
	"\n"
	"Finding codes and what to do about each: docs/analyze.md.\n"
	"\n"
	"exit status: 0 every VM is convertible, 3 at least one is not (its blocker findings\n"
	"             say why), 1 an analysis failed (message on stderr), 2 usage error\n";

enum { OPT_JSON = 256, OPT_DEEP, OPT_NO_DEEP, OPT_GROW, OPT_NO_GROW, OPT_ESP_SIZE };

static const struct option analyze_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "deep", no_argument, NULL, OPT_DEEP },
	{ "no-deep", no_argument, NULL, OPT_NO_DEEP },
	{ "grow", no_argument, NULL, OPT_GROW },
	{ "no-grow", no_argument, NULL, OPT_NO_GROW },
	{ "esp-size", required_argument, NULL, OPT_ESP_SIZE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *msg)
{
	fprintf(stderr, "genshift analyze: %s\n(see 'genshift analyze --help')\n", msg);
	return GS_EXIT_USAGE;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct gs_analyze_opts *o, int *json)
{
	int c;

	o->allow_grow = true; /* as `genshift partition convert`: growing loses nothing */
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", analyze_options, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(analyze_usage, stdout); return GS_EXIT_OK;
		case OPT_JSON: *json = 1; break;
		case OPT_DEEP: o->deep = true; break;
		case OPT_NO_DEEP: o->deep = false; break;
		case OPT_GROW: o->allow_grow = true; break;
		case OPT_NO_GROW: o->allow_grow = false; break;
		case OPT_ESP_SIZE:
			if (gs_parse_size(optarg, &o->esp_bytes) < 0 || o->esp_bytes == 0)
				return usage_error("bad --esp-size");
			break;
		default: return usage_error("unknown option");
		}
	}
	if (optind >= argc)
		return usage_error("no IMAGE or VMCONFIG given");
	return -1;
}

/* ---- human output ---- */

static void print_disk_head(size_t i, const struct gs_disk *d)
{
	static const char *const roles[] = { "boot disk", "data disk", "DVD" };
	char a[32], b[32];

	printf("  disk %zu (%s): %s\n", i, roles[d->role], d->path);
	if (!d->opened)
		return;
	printf("    %s%s%s, %s virtual, %s file, %u/%u-byte sectors (logical/physical)\n",
	       vdisk_format_name(d->format), d->subformat ? " " : "",
	       vdisk_subformat_name(d->subformat), gs_human_size(d->size_bytes, a),
	       gs_human_size(d->file_bytes, b), d->logical_sector_bytes, d->physical_sector_bytes);
}

static void print_parts(const struct gs_disk *d)
{
	char a[32], b[32], size[32];

	if (!d->table_read)
		return;
	printf("    table %s%s%s; free: %s at the start, %s at the end\n", part_kind_name(d->table),
	       d->mbr_boot_code[0] ? ", boot code " : "", d->mbr_boot_code,
	       gs_human_size(d->free_start_bytes, a), gs_human_size(d->free_end_bytes, b));
	if (d->whole_disk_fs.type[0])
		printf("    whole disk: %s UUID=%s\n", d->whole_disk_fs.type, d->whole_disk_fs.uuid);
	if (d->n_parts)
		printf("    %4s %12s %12s %10s  %-22s %-12s %s\n", "No", "Start", "End", "Size",
		       "Type", "FS", "UUID / LABEL / PARTUUID");
	for (size_t i = 0; i < d->n_parts; i++) {
		const struct gs_part *p = &d->parts[i];
		uint64_t bytes = (p->entry.last_lba - p->entry.first_lba + 1) *
				 d->logical_sector_bytes;
		printf("    %4u %12llu %12llu %10s  %-22s %-12s %s%s%s%s PARTUUID=%s\n",
		       p->entry.number, (unsigned long long)p->entry.first_lba,
		       (unsigned long long)p->entry.last_lba, gs_human_size(bytes, size),
		       p->type_name, p->fs.type[0] ? p->fs.type : "-",
		       p->fs.uuid[0] ? "UUID=" : "", p->fs.uuid, p->fs.label[0] ? " LABEL=" : "",
		       p->fs.label, p->partuuid);
	}
	if (d->role == GS_DISK_BOOT && d->root_part)
		printf("    root: partition %u, /boot: partition %u (%s)\n", d->root_part,
		       d->boot_part, d->root_from_guest ? "from the guest" : "structural guess");
}

static void print_plan(const struct gs_disk *d)
{
	const struct gs_plan_summary *s = &d->plan;
	char a[32], b[32];

	if (!s->valid)
		return;
	printf("    plan: MBR -> GPT in place; ESP = partition %u, LBA %llu..%llu (%s, %s)",
	       s->esp_number, (unsigned long long)s->esp_first_lba,
	       (unsigned long long)s->esp_last_lba,
	       gs_human_size((s->esp_last_lba - s->esp_first_lba + 1) * d->logical_sector_bytes, a),
	       s->esp_created ? "new" : "the existing 0xEF partition");
	if (s->new_size_bytes > s->old_size_bytes)
		printf("; the disk grows by %s", gs_human_size(s->new_size_bytes - s->old_size_bytes, b));
	putchar('\n');
	for (size_t i = 0; i < s->n_notes; i++)
		printf("      note: %s\n", s->notes[i]);
}

static void print_guest(const struct gs_disk *d)
{
	const struct guest_info *g = d->guest;

	if (d->deep_error)
		printf("    guest: not inspected (%s)\n", d->deep_error);
	if (!g)
		return;
	printf("    guest: %s %s %d.%d (%s), %s\n", g->os_type ? g->os_type : "?",
	       g->distro ? g->distro : "?", g->major, g->minor,
	       g->product_name ? g->product_name : "", g->arch ? g->arch : "?");
	printf("    grub.cfg: %s%s\n", g->grub_cfg ? g->grub_cfg : "(none)",
	       g->grub_bls ? " (blscfg)" : "");
	for (size_t i = 0; i < g->n_fstab; i++) {
		const struct guest_fstab_entry *e = &g->fstab[i];
		uint32_t part = e->spec ? gs_disk_fstab_partition(d, e->spec) : 0;
		printf("    fstab: %s %s %s", e->spec ? e->spec : "",
		       e->mountpoint ? e->mountpoint : "", e->fstype ? e->fstype : "");
		if (part)
			printf(" (partition %u)", part);
		putchar('\n');
	}
}

static void print_analysis(const struct gs_analysis *a)
{
	if (a->source == GS_SOURCE_CONFIG)
		printf("%s: VM configuration \"%s\", generation %u\n", a->path,
		       a->vm_name ? a->vm_name : "", a->generation);
	else
		printf("%s: disk image\n", a->path);
	for (size_t i = 0; i < a->n_disks; i++) {
		print_disk_head(i, &a->disks[i]);
		print_parts(&a->disks[i]);
		print_plan(&a->disks[i]);
		print_guest(&a->disks[i]);
	}
	for (size_t i = 0; i < a->n_findings; i++) {
		const struct gs_finding *f = &a->findings[i];
		char where[32] = "";
		if (f->disk >= 0)
			snprintf(where, sizeof(where), " (disk %d)", f->disk);
		printf("  %s %s%s: %s\n", f->severity == GS_SEV_BLOCKER ? "BLOCKER" : "warning",
		       f->code, where, f->message);
	}
	printf("  verdict: %s\n\n", gs_analysis_convertible(a) ? "convertible"
							       : "NOT convertible");
}

/* ---- the command ---- */

static int analyze_one(const char *path, const struct gs_analyze_opts *o, int json,
		       struct json_object *array)
{
	struct gs_analysis *a = NULL;
	int r = gs_analyze(path, o, &a);

	if (r < 0) {
		fprintf(stderr, "genshift analyze: %s: %s\n", path, vdisk_errmsg());
		if (json) {
			struct json_object *e = json_object_new_object();
			json_object_object_add(e, "path", json_object_new_string(path));
			json_object_object_add(e, "error", json_object_new_string(vdisk_errmsg()));
			json_object_array_add(array, e);
		}
		return GS_EXIT_FAIL;
	}
	if (json)
		json_object_array_add(array, gs_analysis_to_json(a));
	else
		print_analysis(a);
	r = gs_analysis_convertible(a) ? GS_EXIT_OK : GS_EXIT_DIFFERENT;
	gs_analysis_free(a);
	return r;
}

int cmd_analyze(int argc, char **argv)
{
	struct gs_analyze_opts o = { 0 };
	int json = 0, failed = 0, refused = 0;
	int r = parse_args(argc, argv, &o, &json);

	if (r >= 0)
		return r;
	struct json_object *array = json ? json_object_new_array() : NULL;
	for (int i = optind; i < argc; i++) {
		r = analyze_one(argv[i], &o, json, array);
		failed |= r == GS_EXIT_FAIL;
		refused |= r == GS_EXIT_DIFFERENT;
	}
	if (json) {
		gs_print_json(array);
		json_object_put(array);
	}
	if (failed)
		return GS_EXIT_FAIL;
	return refused ? GS_EXIT_DIFFERENT : GS_EXIT_OK;
}
