/* convert/cmd-nvram.c - `genshift nvram show|add-boot`: the OVMF variable store of a
 * generation 2 VM, its Boot#### entries and BootOrder. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bootfix/bootfix.h"
#include "convert/cli.h"
#include "include/byteorder.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

static const char nvram_usage[] =
	"usage: genshift nvram COMMAND FILE [OPTIONS]\n"
	"\n"
	"  show FILE [--json]\n"
	"        the live variables of an OVMF variable store (OVMF_VARS*.fd), Boot####\n"
	"        entries decoded, BootOrder\n"
	"  add-boot FILE --disk IMAGE --partition N --loader PATH [--description TEXT]\n"
	"           [--out NEWFILE]\n"
	"        write Boot#### \"TEXT\" -> HD(N,GPT,...)/File(PATH) for GPT partition N of\n"
	"        IMAGE (raw, VHD or VHDX) and put it first in BootOrder. The number is the\n"
	"        lowest free one from 1, or that of an entry with the same path. TEXT\n"
	"        defaults to the directory under \\EFI (\\EFI\\debian\\grubx64.efi: debian).\n"
	"        FILE is replaced atomically, or left alone and NEWFILE written instead.\n"
	"\n"
	"exit status: 0 success, 1 failure (bad or busy store, no such partition), 2 usage\n";

enum { OPT_JSON = 256, OPT_DISK, OPT_PARTITION, OPT_LOADER, OPT_DESCRIPTION, OPT_OUT };

static const struct option nvram_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "partition", required_argument, NULL, OPT_PARTITION },
	{ "loader", required_argument, NULL, OPT_LOADER },
	{ "description", required_argument, NULL, OPT_DESCRIPTION },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct nvram_args {
	int json;
	const char *disk, *loader, *description, *out, *file;
	unsigned long partition;
};

static int fail(void)
{
	fprintf(stderr, "genshift: %s\n", vdisk_errmsg());
	return GS_EXIT_FAIL;
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "genshift nvram: %s\n(see 'genshift nvram --help')\n", msg);
	return GS_EXIT_USAGE;
}

/* Returns -1 on success, else the exit code to return. */
static int parse_nvram_args(int argc, char **argv, struct nvram_args *a)
{
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", nvram_options, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(nvram_usage, stdout); return GS_EXIT_OK;
		case OPT_JSON: a->json = 1; break;
		case OPT_DISK: a->disk = optarg; break;
		case OPT_LOADER: a->loader = optarg; break;
		case OPT_DESCRIPTION: a->description = optarg; break;
		case OPT_OUT: a->out = optarg; break;
		case OPT_PARTITION:
			errno = 0;
			a->partition = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || a->partition == 0 ||
			    a->partition > PART_MAX_NUMBER)
				return usage_error("bad --partition (1 to 128)");
			break;
		default:
			return usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return usage_error("expected exactly one variable store FILE");
	a->file = argv[optind];
	return -1;
}

/* ---- show ---- */

static void guid_text(const uint8_t guid[16], char out[37])
{
	/* efivar's lower-case spelling, as virt-fw-vars and efibootmgr print GUIDs. */
	part_guid_to_str(guid, out);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
}

static int is_boot_entry(const struct nvram_var *v)
{
	return !memcmp(v->guid, nvram_global_guid, 16) && strlen(v->name) == 8 &&
	       !strncmp(v->name, "Boot", 4) && strspn(v->name + 4, "0123456789ABCDEF") == 4;
}

static char *hex_of(const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

static struct json_object *var_json(const struct nvram_var *v)
{
	struct json_object *o = json_object_new_object();
	char g[37], desc[512], path[2048], *hex = hex_of(v->data, v->bytes);

	guid_text(v->guid, g);
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "guid", json_object_new_string(g));
	json_object_object_add(o, "attr", json_object_new_int64(v->attributes));
	json_object_object_add(o, "data", json_object_new_string(hex ? hex : ""));
	free(hex);
	if (is_boot_entry(v) && nvram_boot_describe(v, desc, sizeof(desc), path, sizeof(path)) == 0) {
		json_object_object_add(o, "description", json_object_new_string(desc));
		json_object_object_add(o, "device_path", json_object_new_string(path));
	}
	return o;
}

static void print_var(const struct nvram_var *v)
{
	char g[37], desc[512], path[2048];

	guid_text(v->guid, g);
	printf("  %-24s %s attr 0x%02x %6zu bytes", v->name, g, v->attributes, v->bytes);
	if (is_boot_entry(v)) {
		if (nvram_boot_describe(v, desc, sizeof(desc), path, sizeof(path)) == 0)
			printf("  \"%s\" %s", desc, path);
		else
			printf("  (%s)", vdisk_errmsg());
	}
	putchar('\n');
}

static void print_boot_order(const struct nvram *nv, struct json_object *doc)
{
	const struct nvram_var *o = nvram_get(nv, "BootOrder", nvram_global_guid);
	struct json_object *arr = json_object_new_array();

	if (!doc)
		printf("BootOrder:%s", o ? "" : " (none)");
	for (size_t i = 0; o && i + 1 < o->bytes; i += 2) {
		if (doc)
			json_object_array_add(arr, json_object_new_int(get_le16(o->data + i)));
		else
			printf(" %04X", get_le16(o->data + i));
	}
	if (doc)
		json_object_object_add(doc, "boot_order", arr);
	else {
		putchar('\n');
		json_object_put(arr);
	}
}

static int do_show(const struct nvram_args *a)
{
	struct nvram *nv;
	const struct nvram_var *vars;

	if (nvram_open(a->file, &nv) < 0)
		return fail();
	size_t n = nvram_vars(nv, &vars);
	if (a->json) {
		struct json_object *doc = json_object_new_object(), *arr = json_object_new_array();
		json_object_object_add(doc, "file", json_object_new_string(a->file));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, var_json(&vars[i]));
		json_object_object_add(doc, "variables", arr);
		print_boot_order(nv, doc);
		gs_print_json(doc);
		json_object_put(doc);
	} else {
		printf("%s: %zu live variables\n", a->file, n);
		for (size_t i = 0; i < n; i++)
			print_var(&vars[i]);
		print_boot_order(nv, NULL);
	}
	nvram_free(nv);
	return GS_EXIT_OK;
}

/* ---- add-boot ---- */

/* The GPT partition a->partition of a->disk as a boot target. */
static int read_target(const struct nvram_args *a, struct nvram_boot_target *t)
{
	struct vdisk *d;
	struct part_table *pt;
	int r;

	if ((r = vdisk_open(a->disk, 0, &d)) < 0)
		return r;
	if ((r = part_table_read(d, &pt)) < 0)
		goto close_disk;
	r = vdisk_fail(ENOENT, "%s: no GPT partition %lu (the table is %s)", a->disk,
		       a->partition, part_kind_name(pt->kind));
	for (size_t i = 0; pt->kind == PART_KIND_GPT && i < pt->n_entries; i++) {
		const struct part_entry *e = &pt->entries[i];
		if (e->number != a->partition)
			continue;
		t->part_number = e->number;
		t->first_lba = e->first_lba;
		t->sectors = e->last_lba - e->first_lba + 1;
		memcpy(t->part_guid, e->guid, 16);
		r = 0;
	}
	part_table_free(pt);
close_disk:
	vdisk_close(d);
	return r;
}

/* "\EFI\debian\grubx64.efi" -> "debian"; anything else -> "genshift". */
static void default_description(const char *loader, char *out, size_t size)
{
	const char *p = loader;
	size_t n;

	while (*p == '\\' || *p == '/')
		p++;
	snprintf(out, size, "genshift");
	if (strncasecmp(p, "EFI", 3) || (p[3] != '\\' && p[3] != '/'))
		return;
	n = strcspn(p + 4, "\\/");
	if (n > 0 && p[4 + n])
		snprintf(out, size, "%.*s", (int)n, p + 4);
}

static int do_add_boot(const struct nvram_args *a)
{
	struct nvram_boot_target t = { 0 };
	struct nvram *nv;
	char desc[256];
	unsigned number;
	int rc = GS_EXIT_FAIL;

	if (!a->disk || !a->partition || !a->loader)
		return usage_error("add-boot needs --disk, --partition and --loader");
	if (strlen(a->loader) < 5)
		return usage_error("--loader must be a path like \\EFI\\debian\\grubx64.efi");
	default_description(a->loader, desc, sizeof(desc));
	t.description = a->description ? a->description : desc;
	t.loader = a->loader;
	if (read_target(a, &t) < 0)
		return fail();
	if (nvram_open(a->file, &nv) < 0)
		return fail();
	if (nvram_add_boot(nv, &t, &number) < 0 || nvram_save(nv, a->out ? a->out : a->file) < 0) {
		fail();
		goto free_nv;
	}
	printf("Boot%04X \"%s\" -> partition %u of %s, %s; first in BootOrder; written to %s\n",
	       number, t.description, t.part_number, a->disk, t.loader, a->out ? a->out : a->file);
	rc = GS_EXIT_OK;
free_nv:
	nvram_free(nv);
	return rc;
}

int cmd_nvram(int argc, char **argv)
{
	struct nvram_args a;

	if (argc < 2)
		return usage_error("missing command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(nvram_usage, stdout);
		return GS_EXIT_OK;
	}
	int r = parse_nvram_args(argc - 1, argv + 1, &a);
	if (r >= 0)
		return r;
	if (!strcmp(argv[1], "show"))
		return do_show(&a);
	if (!strcmp(argv[1], "add-boot"))
		return do_add_boot(&a);
	return usage_error("unknown command");
}
