/* convert/analyze-json.c - `genshift analyze --json`: a struct gs_analysis as JSON. */
#include <json-c/json.h>

#include "convert/analyze.h"

static void add_str(struct json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, json_object_new_string(s ? s : ""));
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static struct json_object *fs_json(const struct gs_fs *fs)
{
	struct json_object *o = json_object_new_object();
	add_str(o, "type", fs->type);
	add_str(o, "uuid", fs->uuid);
	add_str(o, "label", fs->label);
	return o;
}

static struct json_object *part_json(const struct gs_part *p)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "number", json_object_new_int((int)p->entry.number));
	add_u64(o, "first_lba", p->entry.first_lba);
	add_u64(o, "last_lba", p->entry.last_lba);
	json_object_object_add(o, "mbr_type", json_object_new_int(p->entry.mbr_type));
	add_str(o, "type", p->type_name);
	json_object_object_add(o, "bootable", json_object_new_boolean(p->entry.bootable));
	json_object_object_add(o, "logical", json_object_new_boolean(p->entry.is_logical));
	add_str(o, "partuuid", p->partuuid);
	json_object_object_add(o, "filesystem", fs_json(&p->fs));
	return o;
}

static struct json_object *plan_json(const struct gs_plan_summary *s)
{
	struct json_object *o = json_object_new_object();
	struct json_object *notes = json_object_new_array();

	json_object_object_add(o, "esp_number", json_object_new_int((int)s->esp_number));
	add_u64(o, "esp_first_lba", s->esp_first_lba);
	add_u64(o, "esp_last_lba", s->esp_last_lba);
	json_object_object_add(o, "esp_created", json_object_new_boolean(s->esp_created));
	add_u64(o, "old_size_bytes", s->old_size_bytes);
	add_u64(o, "new_size_bytes", s->new_size_bytes);
	add_u64(o, "grow_bytes", s->new_size_bytes > s->old_size_bytes
			       ? s->new_size_bytes - s->old_size_bytes : 0);
	for (size_t i = 0; i < s->n_notes; i++)
		json_object_array_add(notes, json_object_new_string(s->notes[i]));
	json_object_object_add(o, "notes", notes);
	return o;
}


static struct json_object *guest_json(const struct gs_disk *d)
{
	const struct guest_info *gi = d->guest;
	struct json_object *o = json_object_new_object();
	struct json_object *fstab = json_object_new_array();

	add_str(o, "os_type", gi->os_type);
	add_str(o, "distro", gi->distro);
	add_str(o, "product_name", gi->product_name);
	json_object_object_add(o, "major", json_object_new_int(gi->major));
	json_object_object_add(o, "minor", json_object_new_int(gi->minor));
	add_str(o, "arch", gi->arch);
	add_str(o, "bootloader", guest_bootloader_name(gi->bootloader));
	add_str(o, "grub_cfg", gi->grub_cfg);
	json_object_object_add(o, "grub_bls", json_object_new_boolean(gi->grub_bls));
	json_object_object_add(o, "root_encrypted", json_object_new_boolean(gi->root_encrypted));
	json_object_object_add(o, "root_on_lvm", json_object_new_boolean(gi->root_on_lvm));
	for (size_t i = 0; i < gi->n_fstab; i++) {
		struct json_object *e = json_object_new_object();
		add_str(e, "spec", gi->fstab[i].spec);
		add_str(e, "mountpoint", gi->fstab[i].mountpoint);
		add_str(e, "fstype", gi->fstab[i].fstype);
		json_object_object_add(e, "partition", json_object_new_int((int)(gi->fstab[i].spec
			? gs_disk_fstab_partition(d, gi->fstab[i].spec) : 0)));
		json_object_array_add(fstab, e);
	}
	json_object_object_add(o, "fstab", fstab);
	return o;
}

static const char *role_name(enum gs_disk_role r)
{
	return r == GS_DISK_BOOT ? "boot" : r == GS_DISK_DATA ? "data" : "dvd";
}

static void disk_layout_json(struct json_object *o, const struct gs_disk *d)
{
	struct json_object *parts = json_object_new_array();

	add_str(o, "table", d->table_read ? part_kind_name(d->table) : "");
	add_str(o, "mbr_boot_code", d->mbr_boot_code);
	add_u64(o, "free_start_bytes", d->free_start_bytes);
	add_u64(o, "free_end_bytes", d->free_end_bytes);
	for (size_t i = 0; i < d->n_parts; i++)
		json_object_array_add(parts, part_json(&d->parts[i]));
	json_object_object_add(o, "partitions", parts);
	if (d->whole_disk_fs.type[0])
		json_object_object_add(o, "whole_disk_filesystem", fs_json(&d->whole_disk_fs));
	json_object_object_add(o, "root_partition", json_object_new_int((int)d->root_part));
	json_object_object_add(o, "boot_partition", json_object_new_int((int)d->boot_part));
	add_str(o, "root_source", d->root_from_guest ? "guest" : "guess");
}

static struct json_object *disk_json(const struct gs_disk *d)
{
	struct json_object *o = json_object_new_object();

	add_str(o, "path", d->path);
	add_str(o, "role", role_name(d->role));
	if (d->cfg_index >= 0)
		json_object_object_add(o, "config_index", json_object_new_int(d->cfg_index));
	if (d->opened) {
		add_str(o, "format", vdisk_format_name(d->format));
		add_str(o, "subformat", vdisk_subformat_name(d->subformat));
		add_u64(o, "virtual_size_bytes", d->size_bytes);
		add_u64(o, "file_bytes", d->file_bytes);
		json_object_object_add(o, "logical_sector_bytes",
				       json_object_new_int((int)d->logical_sector_bytes));
		json_object_object_add(o, "physical_sector_bytes",
				       json_object_new_int((int)d->physical_sector_bytes));
		disk_layout_json(o, d);
	}
	if (d->plan.valid)
		json_object_object_add(o, "plan", plan_json(&d->plan));
	if (d->guest)
		json_object_object_add(o, "guest", guest_json(d));
	if (d->deep_error)
		add_str(o, "guest_error", d->deep_error);
	return o;
}

struct json_object *gs_analysis_to_json(const struct gs_analysis *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *disks = json_object_new_array();
	struct json_object *findings = json_object_new_array();

	if (!o || !disks || !findings) {
		json_object_put(o);
		json_object_put(disks);
		json_object_put(findings);
		return NULL;
	}
	add_str(o, "path", a->path);
	add_str(o, "source", a->source == GS_SOURCE_CONFIG ? "config" : "image");
	if (a->vm_name)
		add_str(o, "name", a->vm_name);
	json_object_object_add(o, "generation", json_object_new_int((int)a->generation));
	json_object_object_add(o, "deep", json_object_new_boolean(a->deep));
	json_object_object_add(o, "convertible", json_object_new_boolean(gs_analysis_convertible(a)));
	json_object_object_add(o, "boot_disk", json_object_new_int(a->boot_disk));
	for (size_t i = 0; i < a->n_disks; i++)
		json_object_array_add(disks, disk_json(&a->disks[i]));
	json_object_object_add(o, "disks", disks);
	for (size_t i = 0; i < a->n_findings; i++) {
		struct json_object *f = json_object_new_object();
		add_str(f, "code", a->findings[i].code);
		add_str(f, "severity", gs_severity_name(a->findings[i].severity));
		json_object_object_add(f, "disk", json_object_new_int(a->findings[i].disk));
		add_str(f, "message", a->findings[i].message);
		json_object_array_add(findings, f);
	}
	json_object_object_add(o, "findings", findings);
	return o;
}
