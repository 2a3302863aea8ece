/* vmm/vmcfg.c - the VM configuration file (docs/vmcfg.md): JSON parsed with json-c, every
 * field checked (type, range, known key) with an error naming its JSON path, and the
 * canonical JSON written back. The document is untrusted input: size, nesting and every
 * count are capped. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vmm-int.h"
#include "vmm/vmm.h"

#define VMCFG_FORMAT "genshift-vmcfg"
#define MAX_DOC_BYTES (1u << 20)
#define MAX_DEPTH 8
#define MAX_STRING_BYTES 4095
#define MIB (1ull << 20)

static const char *const bus_names[] = { "virtio", "ide", "scsi" };
static const char *const media_names[] = { "disk", "dvd" };
static const char *const nic_names[] = { "synthetic", "legacy", "virtio" };
static const char *const fw_names[] = { "bios", "uefi" };
static const char *const boot_names[] = { "disk", "dvd", "nic" };
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *vmcfg_bus_name(enum vmcfg_bus b)
{
	return (unsigned)b < COUNT(bus_names) ? bus_names[b] : "?";
}

int vmcfg_boot_disk(const struct vmcfg *cfg)
{
	for (unsigned i = 0; i < cfg->n_boot; i++)
		if (cfg->boot_order[i].kind == VMCFG_BOOT_DISK)
			return (int)cfg->boot_order[i].index;
	for (unsigned i = 0; i < cfg->n_disks; i++)
		if (cfg->disks[i].media == VMCFG_MEDIA_DISK)
			return (int)i;
	return -1;
}

void vmcfg_free(struct vmcfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->name);
	free(cfg->firmware_path);
	free(cfg->nvram_path);
	free(cfg->secure_boot_template);
	for (unsigned i = 0; i < cfg->n_disks; i++)
		free(cfg->disks[i].path);
	for (unsigned i = 0; i < cfg->n_nics; i++)
		free(cfg->nics[i].switch_name);
	free(cfg->serial_log);
	free(cfg->notes);
	free(cfg->vm_id);
	free(cfg);
}

static struct vmcfg *new_default(unsigned generation)
{
	struct vmcfg *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return NULL;
	cfg->generation = generation;
	cfg->firmware = generation == 2 ? VMCFG_FW_UEFI : VMCFG_FW_BIOS;
	cfg->memory_bytes = 512 * MIB;
	cfg->cpus = 1;
	return cfg;
}

int vmcfg_new_simple(unsigned generation, const char *disk_path, struct vmcfg **out)
{
	if (generation != 1 && generation != 2)
		return vdisk_fail(EINVAL, "generation %u: expected 1 or 2", generation);
	struct vmcfg *cfg = new_default(generation);
	if (!cfg || !(cfg->name = strdup("genshift")) ||
	    !(cfg->disks[0].path = strdup(disk_path))) {
		vmcfg_free(cfg);
		return vdisk_fail(ENOMEM, "out of memory for the VM configuration");
	}
	cfg->n_disks = 1;
	cfg->boot_order[0] = (struct vmcfg_boot){ VMCFG_BOOT_DISK, 0 };
	cfg->n_boot = 1;
	*out = cfg;
	return 0;
}

/* ---- typed field readers; `where` is the JSON path used in messages ---- */

static int want_type(struct json_object *v, enum json_type t, const char *where,
		     const char *what)
{
	if (!json_object_is_type(v, t))
		return vdisk_fail(EINVAL, "vmcfg: %s must be %s", where, what);
	return 0;
}

static int get_string(struct json_object *v, const char *where, char **out)
{
	int r = want_type(v, json_type_string, where, "a string");
	if (r < 0)
		return r;
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len > MAX_STRING_BYTES || strlen(s) != len)
		return vdisk_fail(EINVAL, "vmcfg: %s must be 1..%d characters without NUL", where,
				  MAX_STRING_BYTES);
	char *copy = strdup(s);
	if (!copy)
		return vdisk_fail(ENOMEM, "vmcfg: out of memory");
	free(*out);
	*out = copy;
	return 0;
}

static int get_uint(struct json_object *v, const char *where, uint64_t lo, uint64_t hi,
		    uint64_t *out)
{
	int r = want_type(v, json_type_int, where, "an integer");
	if (r < 0)
		return r;
	int64_t x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
		return vdisk_fail(EINVAL, "vmcfg: %s is %lld; expected %llu..%llu", where,
				  (long long)x, (unsigned long long)lo, (unsigned long long)hi);
	*out = (uint64_t)x;
	return 0;
}

static int get_bool(struct json_object *v, const char *where, bool *out)
{
	int r = want_type(v, json_type_boolean, where, "true or false");
	if (r == 0)
		*out = json_object_get_boolean(v);
	return r;
}

static int get_enum(struct json_object *v, const char *where, const char *const *names,
		    unsigned n, unsigned *out)
{
	int r = want_type(v, json_type_string, where, "a string");
	if (r < 0)
		return r;
	const char *s = json_object_get_string(v);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	char list[128] = "";
	for (unsigned i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	return vdisk_fail(EINVAL, "vmcfg: %s is \"%.40s\"; expected one of: %s", where, s, list);
}

/* Refuse keys outside `known` (a NULL-terminated list): a typo must not be ignored. */
static int only_keys(struct json_object *obj, const char *where, const char *const *known)
{
	json_object_object_foreach(obj, key, val) {
		(void)val;
		bool ok = false;
		for (unsigned i = 0; known[i]; i++)
			ok |= !strcmp(key, known[i]);
		if (!ok)
			return vdisk_fail(EINVAL, "vmcfg: %s has unknown key \"%.60s\"", where, key);
	}
	return 0;
}

static int resolve_path(const char *base_dir, char **path)
{
	if (!base_dir || (*path)[0] == '/')
		return 0;
	size_t n = strlen(base_dir) + 1 + strlen(*path) + 1;
	if (n - 1 > MAX_STRING_BYTES)
		return vdisk_fail(ENAMETOOLONG, "vmcfg: path %.40s... is over %d characters once "
				  "joined to its directory", *path, MAX_STRING_BYTES);
	char *joined = malloc(n);
	if (!joined)
		return vdisk_fail(ENOMEM, "vmcfg: out of memory");
	size_t dl = strlen(base_dir);
	memcpy(joined, base_dir, dl);
	joined[dl] = '/';
	memcpy(joined + dl + 1, *path, n - dl - 1); /* includes the NUL */
	free(*path);
	*path = joined;
	return 0;
}

/* ---- sections ---- */

static int parse_firmware(struct json_object *o, struct vmcfg *cfg, const char *base_dir)
{
	static const char *const keys[] = { "type", "path", "nvram", "secure_boot",
					    "secure_boot_template", NULL };
	struct json_object *v;
	unsigned t;
	int r = want_type(o, json_type_object, "firmware", "an object");
	if (r == 0)
		r = only_keys(o, "firmware", keys);
	if (r == 0 && json_object_object_get_ex(o, "type", &v) &&
	    (r = get_enum(v, "firmware.type", fw_names, COUNT(fw_names), &t)) == 0)
		cfg->firmware = (enum vmcfg_firmware)t;
	if (r == 0 && json_object_object_get_ex(o, "path", &v) &&
	    (r = get_string(v, "firmware.path", &cfg->firmware_path)) == 0)
		r = resolve_path(base_dir, &cfg->firmware_path);
	if (r == 0 && json_object_object_get_ex(o, "nvram", &v) &&
	    (r = get_string(v, "firmware.nvram", &cfg->nvram_path)) == 0)
		r = resolve_path(base_dir, &cfg->nvram_path);
	if (r == 0 && json_object_object_get_ex(o, "secure_boot", &v))
		r = get_bool(v, "firmware.secure_boot", &cfg->secure_boot);
	if (r == 0 && json_object_object_get_ex(o, "secure_boot_template", &v))
		r = get_string(v, "firmware.secure_boot_template", &cfg->secure_boot_template);
	return r;
}

static int parse_memory(struct json_object *o, struct vmcfg *cfg)
{
	static const char *const keys[] = { "size_mib", "dynamic", "minimum_mib", "maximum_mib",
					    NULL };
	const uint64_t lo = VMCFG_MIN_MEMORY_BYTES / MIB, hi = VMCFG_MAX_MEMORY_BYTES / MIB;
	struct json_object *v;
	uint64_t mib;
	int r = want_type(o, json_type_object, "memory", "an object");
	if (r == 0)
		r = only_keys(o, "memory", keys);
	if (r == 0 && json_object_object_get_ex(o, "size_mib", &v) &&
	    (r = get_uint(v, "memory.size_mib", lo, hi, &mib)) == 0)
		cfg->memory_bytes = mib * MIB;
	if (r == 0 && json_object_object_get_ex(o, "dynamic", &v))
		r = get_bool(v, "memory.dynamic", &cfg->dynamic_memory);
	if (r == 0 && json_object_object_get_ex(o, "minimum_mib", &v) &&
	    (r = get_uint(v, "memory.minimum_mib", lo, hi, &mib)) == 0)
		cfg->memory_min_bytes = mib * MIB;
	if (r == 0 && json_object_object_get_ex(o, "maximum_mib", &v) &&
	    (r = get_uint(v, "memory.maximum_mib", lo, hi, &mib)) == 0)
		cfg->memory_max_bytes = mib * MIB;
	return r;
}

static int parse_processors(struct json_object *o, struct vmcfg *cfg)
{
	static const char *const keys[] = { "count", NULL };
	struct json_object *v;
	uint64_t n;
	int r = want_type(o, json_type_object, "processors", "an object");
	if (r == 0)
		r = only_keys(o, "processors", keys);
	if (r == 0 && json_object_object_get_ex(o, "count", &v) &&
	    (r = get_uint(v, "processors.count", 1, VMCFG_MAX_CPUS, &n)) == 0)
		cfg->cpus = (unsigned)n;
	return r;
}

static int parse_disk(struct json_object *o, const char *where, struct vmcfg_disk *d,
		      const char *base_dir)
{
	static const char *const keys[] = { "path", "media", "bus", "controller", "location",
					    "read_only", NULL };
	char at[64];
	struct json_object *v;
	unsigned e;
	uint64_t n;
	int r = want_type(o, json_type_object, where, "an object");
	if (r == 0)
		r = only_keys(o, where, keys);
	snprintf(at, sizeof(at), "%s.path", where);
	if (r == 0 && !json_object_object_get_ex(o, "path", &v))
		r = vdisk_fail(EINVAL, "vmcfg: %s is missing", at);
	if (r == 0 && (r = get_string(v, at, &d->path)) == 0)
		r = resolve_path(base_dir, &d->path);
	snprintf(at, sizeof(at), "%s.media", where);
	if (r == 0 && json_object_object_get_ex(o, "media", &v) &&
	    (r = get_enum(v, at, media_names, COUNT(media_names), &e)) == 0)
		d->media = (enum vmcfg_media)e;
	snprintf(at, sizeof(at), "%s.bus", where);
	if (r == 0 && json_object_object_get_ex(o, "bus", &v) &&
	    (r = get_enum(v, at, bus_names, COUNT(bus_names), &e)) == 0)
		d->bus = (enum vmcfg_bus)e;
	snprintf(at, sizeof(at), "%s.controller", where);
	if (r == 0 && json_object_object_get_ex(o, "controller", &v) &&
	    (r = get_uint(v, at, 0, 3, &n)) == 0)
		d->controller = (unsigned)n;
	snprintf(at, sizeof(at), "%s.location", where);
	if (r == 0 && json_object_object_get_ex(o, "location", &v) &&
	    (r = get_uint(v, at, 0, 63, &n)) == 0)
		d->location = (unsigned)n;
	snprintf(at, sizeof(at), "%s.read_only", where);
	if (r == 0 && json_object_object_get_ex(o, "read_only", &v))
		r = get_bool(v, at, &d->read_only);
	return r;
}

/* "00:15:5d:01:02:03" or "00-15-5D-01-02-03" (Hyper-V's spelling), stored lower-case
 * with colons. */
static int parse_mac(const char *s, const char *where, char out[18])
{
	if (strlen(s) != 17)
		return vdisk_fail(EINVAL, "vmcfg: %s \"%.40s\" is not a MAC address", where, s);
	for (unsigned i = 0; i < 17; i++) {
		char c = s[i];
		bool sep = i % 3 == 2;
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		if (sep ? (c != ':' && c != '-') : !hex)
			return vdisk_fail(EINVAL, "vmcfg: %s \"%.40s\" is not a MAC address", where, s);
		out[i] = sep ? ':' : (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	out[17] = '\0';
	return 0;
}

static int parse_nic(struct json_object *o, const char *where, struct vmcfg_nic *nic)
{
	static const char *const keys[] = { "mac", "switch", "model", "connected", NULL };
	char at[64];
	struct json_object *v;
	unsigned e;
	nic->connected = true;
	int r = want_type(o, json_type_object, where, "an object");
	if (r == 0)
		r = only_keys(o, where, keys);
	snprintf(at, sizeof(at), "%s.mac", where);
	if (r == 0 && json_object_object_get_ex(o, "mac", &v) &&
	    (r = want_type(v, json_type_string, at, "a string")) == 0)
		r = parse_mac(json_object_get_string(v), at, nic->mac);
	snprintf(at, sizeof(at), "%s.switch", where);
	if (r == 0 && json_object_object_get_ex(o, "switch", &v))
		r = get_string(v, at, &nic->switch_name);
	snprintf(at, sizeof(at), "%s.model", where);
	if (r == 0 && json_object_object_get_ex(o, "model", &v) &&
	    (r = get_enum(v, at, nic_names, COUNT(nic_names), &e)) == 0)
		nic->model = (enum vmcfg_nic_model)e;
	snprintf(at, sizeof(at), "%s.connected", where);
	if (r == 0 && json_object_object_get_ex(o, "connected", &v))
		r = get_bool(v, at, &nic->connected);
	return r;
}

static int parse_array(struct json_object *a, const char *name, unsigned max, unsigned *n_out)
{
	int r = want_type(a, json_type_array, name, "an array");
	if (r < 0)
		return r;
	size_t n = json_object_array_length(a);
	if (n > max)
		return vdisk_fail(EINVAL, "vmcfg: %s has %zu entries; at most %u", name, n, max);
	*n_out = (unsigned)n;
	return 0;
}

static int parse_disks(struct json_object *a, struct vmcfg *cfg, const char *base_dir)
{
	unsigned n;
	int r = parse_array(a, "disks", VMCFG_MAX_DISKS, &n);
	for (unsigned i = 0; r == 0 && i < n; i++) {
		char where[32];
		snprintf(where, sizeof(where), "disks[%u]", i);
		cfg->n_disks = i + 1; /* so vmcfg_free releases a partly parsed entry */
		r = parse_disk(json_object_array_get_idx(a, i), where, &cfg->disks[i], base_dir);
	}
	return r;
}

static int parse_nics(struct json_object *a, struct vmcfg *cfg)
{
	unsigned n;
	int r = parse_array(a, "nics", VMCFG_MAX_NICS, &n);
	for (unsigned i = 0; r == 0 && i < n; i++) {
		char where[32];
		snprintf(where, sizeof(where), "nics[%u]", i);
		cfg->n_nics = i + 1;
		r = parse_nic(json_object_array_get_idx(a, i), where, &cfg->nics[i]);
	}
	return r;
}

/* "disk:0", "dvd:1", "nic:0": the index counts entries of disks[] (disk and dvd) or nics[]. */
static int parse_boot_entry(struct json_object *v, const char *where, const struct vmcfg *cfg,
			    struct vmcfg_boot *b)
{
	int r = want_type(v, json_type_string, where, "a string like \"disk:0\"");
	if (r < 0)
		return r;
	const char *s = json_object_get_string(v);
	char kind[8];
	unsigned idx;
	int used = 0;
	if (sscanf(s, "%7[a-z]:%u%n", kind, &idx, &used) != 2 || s[used] != '\0')
		return vdisk_fail(EINVAL, "vmcfg: %s \"%.40s\" is not KIND:INDEX", where, s);
	unsigned k;
	for (k = 0; k < COUNT(boot_names) && strcmp(kind, boot_names[k]); k++)
		;
	bool ok = k < COUNT(boot_names);
	if (ok && k == VMCFG_BOOT_NIC)
		ok = idx < cfg->n_nics;
	else if (ok)
		ok = idx < cfg->n_disks &&
		     cfg->disks[idx].media == (k == VMCFG_BOOT_DVD ? VMCFG_MEDIA_DVD : VMCFG_MEDIA_DISK);
	if (!ok)
		return vdisk_fail(EINVAL, "vmcfg: %s \"%.40s\" names no such %s", where, s,
				  k < COUNT(boot_names) ? boot_names[k] : "device kind");
	*b = (struct vmcfg_boot){ (enum vmcfg_boot_kind)k, idx };
	return 0;
}

static int parse_boot_order(struct json_object *a, struct vmcfg *cfg)
{
	unsigned n;
	int r = parse_array(a, "boot_order", VMCFG_MAX_BOOT, &n);
	for (unsigned i = 0; r == 0 && i < n; i++) {
		char where[32];
		snprintf(where, sizeof(where), "boot_order[%u]", i);
		r = parse_boot_entry(json_object_array_get_idx(a, i), where, cfg,
				     &cfg->boot_order[i]);
		cfg->n_boot = r == 0 ? i + 1 : cfg->n_boot;
	}
	return r;
}

static int parse_header(struct json_object *root, struct vmcfg *cfg)
{
	struct json_object *v;
	char *format = NULL;
	uint64_t n;
	int r = 0;
	if (!json_object_object_get_ex(root, "format", &v))
		r = vdisk_fail(EINVAL, "vmcfg: \"format\": \"" VMCFG_FORMAT "\" is missing");
	if (r == 0 && (r = get_string(v, "format", &format)) == 0 && strcmp(format, VMCFG_FORMAT))
		r = vdisk_fail(EINVAL, "vmcfg: format is \"%.40s\"; expected \"" VMCFG_FORMAT "\"",
			       format);
	free(format);
	if (r == 0 && !json_object_object_get_ex(root, "version", &v))
		r = vdisk_fail(EINVAL, "vmcfg: \"version\" is missing");
	if (r == 0)
		r = get_uint(v, "version", VMCFG_VERSION, VMCFG_VERSION, &n);
	if (r == 0 && !json_object_object_get_ex(root, "generation", &v))
		r = vdisk_fail(EINVAL, "vmcfg: \"generation\" is missing");
	if (r == 0 && (r = get_uint(v, "generation", 1, 2, &n)) == 0)
		cfg->generation = (unsigned)n;
	return r;
}

static int parse_strings(struct json_object *root, struct vmcfg *cfg, const char *base_dir)
{
	struct json_object *v;
	int r = 0;
	if (json_object_object_get_ex(root, "name", &v))
		r = get_string(v, "name", &cfg->name);
	if (r == 0 && json_object_object_get_ex(root, "vm_id", &v))
		r = get_string(v, "vm_id", &cfg->vm_id);
	if (r == 0 && json_object_object_get_ex(root, "notes", &v))
		r = get_string(v, "notes", &cfg->notes);
	if (r == 0 && json_object_object_get_ex(root, "serial_log", &v) &&
	    (r = get_string(v, "serial_log", &cfg->serial_log)) == 0)
		r = resolve_path(base_dir, &cfg->serial_log);
	return r;
}

static int parse_sections(struct json_object *root, struct vmcfg *cfg, const char *base_dir)
{
	struct json_object *v;
	int r = 0;
	if (json_object_object_get_ex(root, "firmware", &v))
		r = parse_firmware(v, cfg, base_dir);
	if (r == 0 && json_object_object_get_ex(root, "memory", &v))
		r = parse_memory(v, cfg);
	if (r == 0 && json_object_object_get_ex(root, "processors", &v))
		r = parse_processors(v, cfg);
	if (r == 0 && json_object_object_get_ex(root, "disks", &v))
		r = parse_disks(v, cfg, base_dir);
	if (r == 0 && json_object_object_get_ex(root, "nics", &v))
		r = parse_nics(v, cfg);
	if (r == 0 && json_object_object_get_ex(root, "boot_order", &v))
		r = parse_boot_order(v, cfg);
	return r;
}

/* Rules across fields, checked after every field is individually valid. */
static int check_consistency(struct vmcfg *cfg)
{
	enum vmcfg_firmware want = cfg->generation == 2 ? VMCFG_FW_UEFI : VMCFG_FW_BIOS;
	if (cfg->firmware != want)
		return vdisk_fail(EINVAL, "vmcfg: generation %u needs firmware.type \"%s\"",
				  cfg->generation, fw_names[want]);
	if (cfg->generation == 1 && (cfg->secure_boot || cfg->nvram_path))
		return vdisk_fail(EINVAL, "vmcfg: firmware.secure_boot and firmware.nvram are "
				  "generation 2 settings");
	if (cfg->dynamic_memory && (cfg->memory_min_bytes > cfg->memory_bytes ||
				    (cfg->memory_max_bytes && cfg->memory_max_bytes < cfg->memory_bytes)))
		return vdisk_fail(EINVAL, "vmcfg: memory needs minimum_mib <= size_mib <= maximum_mib");
	if (!cfg->dynamic_memory && (cfg->memory_min_bytes || cfg->memory_max_bytes))
		return vdisk_fail(EINVAL, "vmcfg: memory.minimum_mib/maximum_mib need "
				  "\"dynamic\": true");
	if (cfg->n_boot == 0 && cfg->n_disks && cfg->disks[0].media == VMCFG_MEDIA_DISK) {
		cfg->boot_order[0] = (struct vmcfg_boot){ VMCFG_BOOT_DISK, 0 };
		cfg->n_boot = 1;
	}
	return 0;
}

static int parse_root(struct json_object *root, struct vmcfg *cfg, const char *base_dir)
{
	static const char *const keys[] = { "format", "version", "name", "vm_id", "notes",
					    "generation", "firmware", "memory", "processors",
					    "disks", "nics", "boot_order", "serial_log", NULL };
	int r = want_type(root, json_type_object, "the document", "a JSON object");
	if (r == 0)
		r = only_keys(root, "the document", keys);
	if (r == 0)
		r = parse_header(root, cfg);
	if (r == 0)
		cfg->firmware = cfg->generation == 2 ? VMCFG_FW_UEFI : VMCFG_FW_BIOS;
	if (r == 0)
		r = parse_strings(root, cfg, base_dir);
	if (r == 0)
		r = parse_sections(root, cfg, base_dir);
	if (r == 0)
		r = check_consistency(cfg);
	return r;
}

static int tokenize(const char *text, size_t len, struct json_object **out)
{
	if (len > MAX_DOC_BYTES)
		return vdisk_fail(EFBIG, "vmcfg: %zu bytes; at most %u", len, MAX_DOC_BYTES);
	struct json_tokener *tok = json_tokener_new_ex(MAX_DEPTH);
	if (!tok)
		return vdisk_fail(ENOMEM, "vmcfg: out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	int r = 0;
	if (!root || e != json_tokener_success)
		r = vdisk_fail(EINVAL, "vmcfg: JSON error at byte %zu: %s", end,
			       e == json_tokener_continue ? "unexpected end of document"
							  : json_tokener_error_desc(e));
	for (size_t i = end; r == 0 && i < len; i++)
		if (!strchr(" \t\r\n", text[i]))
			r = vdisk_fail(EINVAL, "vmcfg: trailing data at byte %zu", i);
	json_tokener_free(tok);
	if (r < 0)
		json_object_put(root);
	else
		*out = root;
	return r;
}

int vmcfg_parse(const char *text, size_t len, const char *base_dir, struct vmcfg **out)
{
	struct json_object *root = NULL;
	int r = tokenize(text, len, &root);
	if (r < 0)
		return r;
	struct vmcfg *cfg = new_default(1);
	if (!cfg)
		r = vdisk_fail(ENOMEM, "vmcfg: out of memory");
	if (r == 0)
		r = parse_root(root, cfg, base_dir);
	json_object_put(root);
	if (r < 0) {
		vmcfg_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

int vmcfg_load(const char *path, struct vmcfg **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "%s: %s", path, strerror(errno));
	struct stat sb;
	char *text = NULL;
	int r = 0;
	if (fstat(fd, &sb) < 0)
		r = vdisk_fail(errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(sb.st_mode) || sb.st_size > MAX_DOC_BYTES)
		r = vdisk_fail(EFBIG, "%s: not a regular file of at most %u bytes", path,
			       MAX_DOC_BYTES);
	if (r == 0 && !(text = malloc((size_t)sb.st_size + 1)))
		r = vdisk_fail(ENOMEM, "%s: out of memory", path);
	if (r == 0)
		r = vdisk_pread(fd, path, text, (size_t)sb.st_size, 0);
	close(fd);
	char *dir = r == 0 ? strdup(path) : NULL;
	if (r == 0 && !dir)
		r = vdisk_fail(ENOMEM, "%s: out of memory", path);
	if (r == 0) {
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		r = vmcfg_parse(text, (size_t)sb.st_size, slash ? dir : NULL, out);
	}
	free(dir);
	free(text);
	return r;
}

/* ---- writing ---- */

static void add_str(struct json_object *o, const char *key, const char *s)
{
	if (s)
		json_object_object_add(o, key, json_object_new_string(s));
}

static struct json_object *firmware_json(const struct vmcfg *cfg)
{
	struct json_object *fw = json_object_new_object();
	add_str(fw, "type", fw_names[cfg->firmware]);
	add_str(fw, "path", cfg->firmware_path);
	add_str(fw, "nvram", cfg->nvram_path);
	if (cfg->generation == 2)
		json_object_object_add(fw, "secure_boot", json_object_new_boolean(cfg->secure_boot));
	add_str(fw, "secure_boot_template", cfg->secure_boot_template);
	return fw;
}

static struct json_object *memory_json(const struct vmcfg *cfg)
{
	struct json_object *mem = json_object_new_object();
	json_object_object_add(mem, "size_mib",
			       json_object_new_int64((int64_t)(cfg->memory_bytes / MIB)));
	json_object_object_add(mem, "dynamic", json_object_new_boolean(cfg->dynamic_memory));
	if (cfg->memory_min_bytes)
		json_object_object_add(mem, "minimum_mib",
				       json_object_new_int64((int64_t)(cfg->memory_min_bytes / MIB)));
	if (cfg->memory_max_bytes)
		json_object_object_add(mem, "maximum_mib",
				       json_object_new_int64((int64_t)(cfg->memory_max_bytes / MIB)));
	return mem;
}

static struct json_object *disk_json(const struct vmcfg_disk *d)
{
	struct json_object *o = json_object_new_object();
	add_str(o, "path", d->path);
	add_str(o, "media", media_names[d->media]);
	add_str(o, "bus", bus_names[d->bus]);
	json_object_object_add(o, "controller", json_object_new_int((int)d->controller));
	json_object_object_add(o, "location", json_object_new_int((int)d->location));
	json_object_object_add(o, "read_only", json_object_new_boolean(d->read_only));
	return o;
}

static struct json_object *nic_json(const struct vmcfg_nic *n)
{
	struct json_object *o = json_object_new_object();
	if (n->mac[0])
		add_str(o, "mac", n->mac);
	add_str(o, "switch", n->switch_name);
	add_str(o, "model", nic_names[n->model]);
	json_object_object_add(o, "connected", json_object_new_boolean(n->connected));
	return o;
}

static struct json_object *devices_json(const struct vmcfg *cfg, struct json_object *root)
{
	struct json_object *disks = json_object_new_array();
	for (unsigned i = 0; i < cfg->n_disks; i++)
		json_object_array_add(disks, disk_json(&cfg->disks[i]));
	json_object_object_add(root, "disks", disks);
	struct json_object *nics = json_object_new_array();
	for (unsigned i = 0; i < cfg->n_nics; i++)
		json_object_array_add(nics, nic_json(&cfg->nics[i]));
	json_object_object_add(root, "nics", nics);
	struct json_object *boot = json_object_new_array();
	for (unsigned i = 0; i < cfg->n_boot; i++) {
		char s[24];
		snprintf(s, sizeof(s), "%s:%u", boot_names[cfg->boot_order[i].kind],
			 cfg->boot_order[i].index);
		json_object_array_add(boot, json_object_new_string(s));
	}
	json_object_object_add(root, "boot_order", boot);
	return root;
}

char *vmcfg_to_json(const struct vmcfg *cfg)
{
	struct json_object *root = json_object_new_object();
	if (!root)
		return NULL;
	add_str(root, "format", VMCFG_FORMAT);
	json_object_object_add(root, "version", json_object_new_int(VMCFG_VERSION));
	add_str(root, "name", cfg->name);
	add_str(root, "vm_id", cfg->vm_id);
	add_str(root, "notes", cfg->notes);
	json_object_object_add(root, "generation", json_object_new_int((int)cfg->generation));
	json_object_object_add(root, "firmware", firmware_json(cfg));
	json_object_object_add(root, "memory", memory_json(cfg));
	struct json_object *cpu = json_object_new_object();
	json_object_object_add(cpu, "count", json_object_new_int((int)cfg->cpus));
	json_object_object_add(root, "processors", cpu);
	devices_json(cfg, root);
	add_str(root, "serial_log", cfg->serial_log);
	const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = s ? strdup(s) : NULL;
	json_object_put(root);
	return copy;
}
