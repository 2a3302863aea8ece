/* convert/cmd-disk.c - `genshift disk info|create|convert|resize|check|compare`. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/cli.h"
#include "vhdx/vdisk.h"

static const char disk_usage[] =
	"usage: genshift disk COMMAND [OPTIONS] IMAGE...\n"
	"\n"
	"  info IMAGE... [--json] [--chs]\n"
	"        format, sizes, allocation, identity, parent, log state\n"
	"  create IMAGE --size SIZE [--format vhdx|vhd|raw] [--type fixed|dynamic]\n"
	"         [--block-size SIZE] [--logical-sector 512|4096] [--physical-sector 512|4096]\n"
	"         [--chs-round]\n"
	"  create IMAGE --parent PARENT          a differencing child of PARENT\n"
	"        format defaults to the file extension (.vhdx, .vhd, else raw)\n"
	"  convert SRC DST [--format F] [--type T] [--block-size SIZE] [--logical-sector N]\n"
	"         [--json]\n"
	"        copies only allocated, non-zero data; DST is written under a temporary\n"
	"        name and renamed when complete, so it never exists half-written\n"
	"  resize IMAGE SIZE|+SIZE               grow, or shrink if nothing is allocated past SIZE\n"
	"  check IMAGE [--repair] [--json]       structural verification; --repair replays a\n"
	"                                        pending VHDX log into the file\n"
	"  compare IMAGE1 IMAGE2 [--json]        byte-for-byte comparison of the virtual disks\n"
	"\n"
	"SIZE accepts K, M, G, T suffixes (binary: 1G = 1073741824 bytes).\n"
	"Images are opened read-only except by create, convert (destination only), resize and\n"
	"check --repair. VHDX logs are replayed in memory on read-only opens.\n"
	"\n"
	"exit status: 0 success (compare: identical; check: no errors), 1 failure,\n"
	"             2 usage error, 3 compare: images differ / check: errors found\n";

enum { OPT_JSON = 256, OPT_CHS, OPT_SIZE, OPT_FORMAT, OPT_TYPE, OPT_BLOCK, OPT_LSS, OPT_PSS,
       OPT_PARENT, OPT_CHS_ROUND, OPT_REPAIR };

static const struct option disk_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "chs", no_argument, NULL, OPT_CHS },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "block-size", required_argument, NULL, OPT_BLOCK },
	{ "logical-sector", required_argument, NULL, OPT_LSS },
	{ "physical-sector", required_argument, NULL, OPT_PSS },
	{ "parent", required_argument, NULL, OPT_PARENT },
	{ "chs-round", no_argument, NULL, OPT_CHS_ROUND },
	{ "repair", no_argument, NULL, OPT_REPAIR },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct disk_args {
	int json, chs, repair;
	struct vdisk_create_opts create;
	int have_size;
	char **pos; /* positional arguments */
	int npos;
};

/* Library messages already name the file, the field and the offset. */
static int fail(void)
{
	fprintf(stderr, "genshift: %s\n", vdisk_errmsg());
	return GS_EXIT_FAIL;
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "genshift disk: %s\n(see 'genshift disk --help')\n", msg);
	return GS_EXIT_USAGE;
}

static int parse_format(const char *s, enum vdisk_format *f)
{
	if (!strcmp(s, "vhdx"))
		*f = VDISK_FORMAT_VHDX;
	else if (!strcmp(s, "vhd") || !strcmp(s, "vpc"))
		*f = VDISK_FORMAT_VHD;
	else if (!strcmp(s, "raw") || !strcmp(s, "img"))
		*f = VDISK_FORMAT_RAW;
	else
		return -EINVAL;
	return 0;
}

static enum vdisk_format format_from_name(const char *path)
{
	const char *dot = strrchr(path, '.');
	enum vdisk_format f = VDISK_FORMAT_RAW;

	if (dot && !strcasecmp(dot, ".vhdx"))
		f = VDISK_FORMAT_VHDX;
	else if (dot && (!strcasecmp(dot, ".vhd") || !strcasecmp(dot, ".vpc")))
		f = VDISK_FORMAT_VHD;
	return f;
}

static int parse_sector(const char *s, uint32_t *out)
{
	if (strcmp(s, "512") && strcmp(s, "4096"))
		return -EINVAL;
	*out = (uint32_t)atoi(s);
	return 0;
}

/* Returns -1 on success, else the exit code to return. */
static int parse_disk_args(int argc, char **argv, struct disk_args *a)
{
	uint64_t v;
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", disk_options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: a->json = 1; break;
		case OPT_CHS: a->chs = 1; break;
		case OPT_REPAIR: a->repair = 1; break;
		case OPT_CHS_ROUND: a->create.vhd_chs_round = true; break;
		case OPT_PARENT: a->create.parent_path = optarg; break;
		case OPT_SIZE:
			if (gs_parse_size(optarg, &a->create.size_bytes) < 0)
				return usage_error("bad --size");
			a->have_size = 1;
			break;
		case OPT_BLOCK:
			if (gs_parse_size(optarg, &v) < 0 || v > UINT32_MAX)
				return usage_error("bad --block-size");
			a->create.block_bytes = (uint32_t)v;
			break;
		case OPT_LSS:
			if (parse_sector(optarg, &a->create.logical_sector_bytes) < 0)
				return usage_error("--logical-sector must be 512 or 4096");
			break;
		case OPT_PSS:
			if (parse_sector(optarg, &a->create.physical_sector_bytes) < 0)
				return usage_error("--physical-sector must be 512 or 4096");
			break;
		case OPT_FORMAT:
			if (parse_format(optarg, &a->create.format) < 0)
				return usage_error("--format must be vhdx, vhd or raw");
			break;
		case OPT_TYPE:
			if (!strcmp(optarg, "fixed"))
				a->create.subformat = VDISK_SUB_FIXED;
			else if (!strcmp(optarg, "dynamic"))
				a->create.subformat = VDISK_SUB_DYNAMIC;
			else
				return usage_error("--type must be fixed or dynamic");
			break;
		case 'h':
			fputs(disk_usage, stdout);
			return GS_EXIT_OK;
		default:
			return usage_error("unknown option");
		}
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	return -1;
}

/* ---- info ---- */

static struct json_object *info_json(const struct vdisk_info *i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "format", json_object_new_string(vdisk_format_name(i->format)));
	json_object_object_add(o, "subformat",
			       json_object_new_string(vdisk_subformat_name(i->subformat)));
	json_object_object_add(o, "virtual_size", json_object_new_uint64(i->size_bytes));
	json_object_object_add(o, "file_size", json_object_new_uint64(i->file_bytes));
	json_object_object_add(o, "allocated_bytes", json_object_new_uint64(i->allocated_bytes));
	json_object_object_add(o, "logical_sector_size",
			       json_object_new_int64(i->logical_sector_bytes));
	json_object_object_add(o, "physical_sector_size",
			       json_object_new_int64(i->physical_sector_bytes));
	if (i->block_bytes)
		json_object_object_add(o, "block_size", json_object_new_int64(i->block_bytes));
	if (i->creator[0])
		json_object_object_add(o, "creator", json_object_new_string(i->creator));
	if (i->disk_id[0])
		json_object_object_add(o, "disk_id", json_object_new_string(i->disk_id));
	if (i->data_write_guid[0])
		json_object_object_add(o, "data_write_guid",
				       json_object_new_string(i->data_write_guid));
	if (i->parent_path[0])
		json_object_object_add(o, "parent", json_object_new_string(i->parent_path));
	static const char *const log_names[] = { "clean", "replayed-in-memory",
						 "replayed-into-file" };
	if (i->format == VDISK_FORMAT_VHDX)
		json_object_object_add(o, "log", json_object_new_string(log_names[i->log_state]));
	if (i->format == VDISK_FORMAT_VHD) {
		struct json_object *g = json_object_new_object();
		json_object_object_add(g, "cylinders", json_object_new_int64(i->chs_cylinders));
		json_object_object_add(g, "heads", json_object_new_int64(i->chs_heads));
		json_object_object_add(g, "sectors", json_object_new_int64(i->chs_sectors));
		json_object_object_add(o, "chs", g);
		json_object_object_add(o, "current_size",
				       json_object_new_uint64(i->vhd_current_size_bytes));
		json_object_object_add(o, "chs_size", json_object_new_uint64(i->vhd_chs_size_bytes));
	}
	return o;
}

static void info_text(const char *path, const struct vdisk_info *i)
{
	char a[32], b[32];
	static const char *const log_names[] = {
		"clean", "replayed in memory (file not modified)", "replayed into the file"
	};

	printf("%s:\n", path);
	printf("  format:            %s%s%s\n", vdisk_format_name(i->format),
	       i->subformat ? " " : "", vdisk_subformat_name(i->subformat));
	printf("  virtual size:      %s (%llu bytes)\n", gs_human_size(i->size_bytes, a),
	       (unsigned long long)i->size_bytes);
	printf("  file size:         %s, %s allocated\n", gs_human_size(i->file_bytes, a),
	       gs_human_size(i->allocated_bytes, b));
	printf("  sectors:           %u logical, %u physical\n", i->logical_sector_bytes,
	       i->physical_sector_bytes);
	if (i->block_bytes)
		printf("  block size:        %s\n", gs_human_size(i->block_bytes, a));
	if (i->creator[0])
		printf("  creator:           %s\n", i->creator);
	if (i->disk_id[0])
		printf("  disk id:           %s\n", i->disk_id);
	if (i->data_write_guid[0])
		printf("  data write guid:   %s\n", i->data_write_guid);
	if (i->parent_path[0])
		printf("  parent:            %s\n", i->parent_path);
	if (i->format == VDISK_FORMAT_VHDX)
		printf("  log:               %s\n", log_names[i->log_state]);
	if (i->format == VDISK_FORMAT_VHD)
		printf("  geometry:          %u/%u/%u (CHS size %llu, footer size %llu)\n",
		       i->chs_cylinders, i->chs_heads, i->chs_sectors,
		       (unsigned long long)i->vhd_chs_size_bytes,
		       (unsigned long long)i->vhd_current_size_bytes);
}

static int disk_info(struct disk_args *a)
{
	struct json_object *arr = a->json ? json_object_new_array() : NULL;
	int rc = GS_EXIT_OK;

	if (a->npos < 1)
		return usage_error("info needs at least one IMAGE");
	for (int k = 0; k < a->npos; k++) {
		struct vdisk *d;
		struct vdisk_info info;
		if (vdisk_open(a->pos[k], a->chs ? VDISK_OPEN_VHD_CHS : 0, &d) < 0) {
			rc = fail();
			continue;
		}
		if (vdisk_get_info(d, &info) < 0) {
			rc = fail();
		} else if (arr) {
			struct json_object *o = info_json(&info);
			json_object_object_add(o, "path", json_object_new_string(a->pos[k]));
			json_object_array_add(arr, o);
		} else {
			info_text(a->pos[k], &info);
		}
		vdisk_close(d);
	}
	if (arr) {
		gs_print_json(arr);
		json_object_put(arr);
	}
	return rc;
}

/* ---- create ---- */

static int disk_create(struct disk_args *a)
{
	struct vdisk *d;

	if (a->npos != 1)
		return usage_error("create needs exactly one IMAGE");
	if (!a->create.format)
		a->create.format = format_from_name(a->pos[0]);
	if (a->create.parent_path) {
		a->create.subformat = VDISK_SUB_DIFFERENCING;
	} else {
		if (!a->have_size)
			return usage_error("create needs --size (or --parent)");
		if (!a->create.subformat && a->create.format != VDISK_FORMAT_RAW)
			a->create.subformat = VDISK_SUB_DYNAMIC;
	}
	if (vdisk_create(a->pos[0], &a->create, &d) < 0)
		return fail();
	if (vdisk_close(d) < 0)
		return fail();
	return GS_EXIT_OK;
}

/* ---- convert ---- */

/* The destination's creation options: the user's, completed from the source and the name. */
static struct vdisk_create_opts convert_opts(const struct disk_args *a, struct vdisk *src,
					     const char *dpath)
{
	struct vdisk_create_opts o = a->create;

	if (!o.format)
		o.format = format_from_name(dpath);
	if (!o.subformat && o.format != VDISK_FORMAT_RAW)
		o.subformat = VDISK_SUB_DYNAMIC;
	o.size_bytes = vdisk_size_bytes(src);
	if (!o.logical_sector_bytes && o.format == VDISK_FORMAT_VHDX)
		o.logical_sector_bytes = vdisk_logical_sector_bytes(src);
	return o;
}

static void convert_json(const char *src, const char *dst, const struct vdisk_create_opts *o,
			 double seconds)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "source", json_object_new_string(src));
	json_object_object_add(j, "destination", json_object_new_string(dst));
	json_object_object_add(j, "format", json_object_new_string(vdisk_format_name(o->format)));
	json_object_object_add(j, "virtual_size", json_object_new_uint64(o->size_bytes));
	json_object_object_add(j, "seconds", json_object_new_double(seconds));
	gs_print_json(j);
	json_object_put(j);
}

/* Copy src into a new image at tmp; the caller renames it into place on success. */
static int convert_into(struct vdisk *src, const char *tmp, const struct vdisk_create_opts *o,
			struct gs_progress *prog)
{
	struct vdisk *dst;

	unlink(tmp); /* a leftover from an interrupted run of ours */
	if (vdisk_create(tmp, o, &dst) < 0)
		return fail();
	gs_progress_init(prog, "converting");
	int r = vdisk_copy(src, dst, gs_progress_cb, prog);
	gs_progress_done(prog);
	if (r < 0) {
		fail();
		vdisk_close(dst);
		return GS_EXIT_FAIL;
	}
	return vdisk_close(dst) < 0 ? fail() : GS_EXIT_OK;
}

static int disk_convert(struct disk_args *a)
{
	struct vdisk *src;
	char tmp[PATH_MAX];
	struct gs_progress prog;

	if (a->npos != 2)
		return usage_error("convert needs SRC and DST");
	const char *dpath = a->pos[1];
	if (access(dpath, F_OK) == 0) {
		fprintf(stderr, "genshift: %s already exists; refusing to overwrite it\n", dpath);
		return GS_EXIT_FAIL;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.genshift-partial", dpath) >= (int)sizeof(tmp))
		return usage_error("destination path too long");
	if (vdisk_open(a->pos[0], 0, &src) < 0)
		return fail();
	struct vdisk_create_opts o = convert_opts(a, src, dpath);
	int rc = convert_into(src, tmp, &o, &prog);
	if (rc == GS_EXIT_OK && rename(tmp, dpath) < 0) {
		fprintf(stderr, "genshift: rename %s -> %s: %s\n", tmp, dpath, strerror(errno));
		rc = GS_EXIT_FAIL;
	}
	if (rc != GS_EXIT_OK)
		unlink(tmp);
	else if (a->json)
		convert_json(a->pos[0], dpath, &o, gs_progress_elapsed(&prog));
	vdisk_close(src);
	return rc;
}

/* ---- resize ---- */

static int disk_resize(struct disk_args *a)
{
	struct vdisk *d;
	uint64_t size;

	if (a->npos != 2)
		return usage_error("resize needs IMAGE and SIZE");
	const char *s = a->pos[1];
	int relative = s[0] == '+';
	if (gs_parse_size(s + relative, &size) < 0)
		return usage_error("bad SIZE");
	if (vdisk_open(a->pos[0], VDISK_OPEN_RDWR, &d) < 0)
		return fail();
	if (relative)
		size += vdisk_size_bytes(d);
	int r = vdisk_resize(d, size);
	int rc = r < 0 ? fail() : GS_EXIT_OK;
	if (vdisk_close(d) < 0 && rc == GS_EXIT_OK)
		rc = fail();
	return rc;
}

/* ---- check ---- */

struct check_ctx {
	struct json_object *findings;
};

static void check_report(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	struct check_ctx *c = opaque;
	static const char *const names[] = { "info", "warning", "error" };

	if (c->findings) {
		struct json_object *f = json_object_new_object();
		json_object_object_add(f, "severity", json_object_new_string(names[sev]));
		json_object_object_add(f, "message", json_object_new_string(msg));
		json_object_array_add(c->findings, f);
	} else {
		printf("%-7s %s\n", names[sev], msg);
	}
}

static int disk_check(struct disk_args *a)
{
	struct check_ctx c = { a->json ? json_object_new_array() : NULL };

	if (a->npos != 1)
		return usage_error("check needs exactly one IMAGE");
	int r = vdisk_check(a->pos[0], a->repair ? VDISK_CHECK_REPAIR : 0, check_report, &c);
	if (r < 0) {
		json_object_put(c.findings);
		return fail();
	}
	if (c.findings) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(a->pos[0]));
		json_object_object_add(o, "errors", json_object_new_int(r));
		json_object_object_add(o, "findings", c.findings);
		gs_print_json(o);
		json_object_put(o);
	} else {
		printf("%s: %d error%s\n", a->pos[0], r, r == 1 ? "" : "s");
	}
	return r ? GS_EXIT_DIFFERENT : GS_EXIT_OK;
}

/* ---- compare ---- */

static int disk_compare(struct disk_args *a)
{
	struct vdisk *x = NULL, *y = NULL;
	uint64_t diff = 0;
	struct gs_progress prog;
	int rc = GS_EXIT_FAIL;

	if (a->npos != 2)
		return usage_error("compare needs two images");
	if (vdisk_open(a->pos[0], 0, &x) < 0)
		return fail();
	if (vdisk_open(a->pos[1], 0, &y) < 0) {
		fail();
		goto out;
	}
	gs_progress_init(&prog, "comparing");
	int r = vdisk_compare(x, y, &diff, gs_progress_cb, &prog);
	gs_progress_done(&prog);
	if (r < 0) {
		fail();
		goto out;
	}
	int sizes_differ = vdisk_size_bytes(x) != vdisk_size_bytes(y);
	if (a->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "identical", json_object_new_boolean(r == 0));
		if (r)
			json_object_object_add(o, "first_difference", json_object_new_uint64(diff));
		json_object_object_add(o, "sizes_differ", json_object_new_boolean(sizes_differ));
		gs_print_json(o);
		json_object_put(o);
	} else if (r == 0) {
		puts("Images are identical.");
	} else if (sizes_differ && diff == (vdisk_size_bytes(x) < vdisk_size_bytes(y) ?
					    vdisk_size_bytes(x) : vdisk_size_bytes(y))) {
		printf("Images differ in size (%llu vs %llu bytes); contents agree up to the "
		       "smaller size.\n", (unsigned long long)vdisk_size_bytes(x),
		       (unsigned long long)vdisk_size_bytes(y));
	} else {
		printf("Content mismatch at offset %llu (sector %llu)!\n",
		       (unsigned long long)diff, (unsigned long long)(diff / 512));
	}
	rc = r == 0 ? GS_EXIT_OK : GS_EXIT_DIFFERENT;
out:
	vdisk_close(y);
	vdisk_close(x);
	return rc;
}

int cmd_disk(int argc, char **argv)
{
	struct disk_args a;
	static const struct {
		const char *name;
		int (*fn)(struct disk_args *);
	} cmds[] = {
		{ "info", disk_info },       { "create", disk_create }, { "convert", disk_convert },
		{ "resize", disk_resize },   { "check", disk_check },   { "compare", disk_compare },
	};

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(disk_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? GS_EXIT_USAGE : GS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		int r = parse_disk_args(argc - 1, argv + 1, &a);
		return r >= 0 ? r : cmds[i].fn(&a);
	}
	return usage_error("unknown disk command");
}
