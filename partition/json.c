/* partition/json.c - JSON descriptions of tables and plans (json-c), for `--json` output.
 * Sizes are in sectors and bytes; GUIDs in upper-case text; MBR types as "0x83". */
#include <stdio.h>

#include <json-c/json.h>

#include "partition/part-int.h"

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_guid(struct json_object *o, const char *k, const uint8_t g[16])
{
	char s[37];

	part_guid_to_str(g, s);
	add_str(o, k, s);
}

/* [cylinder, head, sector] from the packed MBR bytes: head; sector | cylinder bits 9-8 << 6;
 * cylinder bits 7-0. Firmware of the BIOS era used these; LBA is what counts today. */
static struct json_object *chs_json(const uint8_t chs[3])
{
	struct json_object *a = json_object_new_array();

	json_object_array_add(a, json_object_new_int((chs[1] & 0xC0) << 2 | chs[2]));
	json_object_array_add(a, json_object_new_int(chs[0]));
	json_object_array_add(a, json_object_new_int(chs[1] & 0x3F));
	return a;
}

static struct json_object *entry_json(const struct part_table *t, const struct part_entry *e)
{
	struct json_object *o = json_object_new_object();
	char buf[32];

	add_u64(o, "number", e->number);
	add_u64(o, "start", e->first_lba);
	add_u64(o, "end", e->last_lba);
	add_u64(o, "sectors", e->last_lba - e->first_lba + 1);
	add_u64(o, "size_bytes", (e->last_lba - e->first_lba + 1) * t->sector_bytes);
	if (e->mbr_type) {
		snprintf(buf, sizeof(buf), "0x%02x", e->mbr_type);
		add_str(o, "type", buf);
		json_object_object_add(o, "bootable", json_object_new_boolean(e->bootable));
		json_object_object_add(o, "logical", json_object_new_boolean(e->is_logical));
		json_object_object_add(o, "chs_start", chs_json(e->chs_first));
		json_object_object_add(o, "chs_end", chs_json(e->chs_last));
	} else {
		add_guid(o, "type", e->type_guid);
		add_guid(o, "guid", e->guid);
		add_str(o, "name", e->name);
		snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long)e->attributes);
		add_str(o, "attributes", buf);
	}
	add_str(o, "type_name", part_type_name(e, buf));
	return o;
}

static struct json_object *strings_json(char **list, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(list[i]));
	return a;
}

static void add_mbr_fields(struct json_object *o, const struct part_table *t)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "0x%08x", t->mbr_disk_signature);
	add_str(o, "disk_signature", buf);
	json_object_object_add(o, "boot_code", json_object_new_boolean(t->mbr_has_boot_code));
	if (!t->ext_number)
		return;
	struct json_object *x = json_object_new_object(), *ebrs = json_object_new_array();
	add_u64(x, "number", t->ext_number);
	add_u64(x, "start", t->ext_first_lba);
	add_u64(x, "end", t->ext_last_lba);
	for (size_t i = 0; i < t->n_ebrs; i++)
		json_object_array_add(ebrs, json_object_new_uint64(t->ebr_lbas[i]));
	json_object_object_add(x, "ebrs", ebrs);
	json_object_object_add(o, "extended", x);
}

static void add_gpt_fields(struct json_object *o, const struct part_table *t)
{
	add_guid(o, "disk_guid", t->disk_guid);
	add_u64(o, "first_usable_lba", t->first_usable_lba);
	add_u64(o, "last_usable_lba", t->last_usable_lba);
	add_u64(o, "entry_count", t->gpt_entry_count);
	json_object_object_add(o, "primary_valid", json_object_new_boolean(t->gpt_primary_valid));
	json_object_object_add(o, "backup_valid", json_object_new_boolean(t->gpt_backup_valid));
}

struct json_object *part_table_to_json(const struct part_table *t)
{
	struct json_object *o = json_object_new_object();
	struct json_object *parts = json_object_new_array(), *free_ = json_object_new_array();

	if (!o || !parts || !free_) {
		json_object_put(o);
		json_object_put(parts);
		json_object_put(free_);
		return NULL;
	}
	add_str(o, "kind", part_kind_name(t->kind));
	add_u64(o, "sector_size", t->sector_bytes);
	add_u64(o, "disk_sectors", t->disk_sectors);
	if (t->kind == PART_KIND_MBR)
		add_mbr_fields(o, t);
	else if (t->kind != PART_KIND_NONE)
		add_gpt_fields(o, t);
	for (size_t i = 0; i < t->n_entries; i++)
		json_object_array_add(parts, entry_json(t, &t->entries[i]));
	json_object_object_add(o, "partitions", parts);
	for (size_t i = 0; i < t->n_free; i++) {
		struct json_object *f = json_object_new_object();
		add_u64(f, "start", t->free[i].first_lba);
		add_u64(f, "end", t->free[i].last_lba);
		add_u64(f, "sectors", t->free[i].last_lba - t->free[i].first_lba + 1);
		json_object_array_add(free_, f);
	}
	json_object_object_add(o, "free", free_);
	json_object_object_add(o, "findings", strings_json(t->findings, t->n_findings));
	return o;
}

static struct json_object *writes_json(const struct part_plan *p)
{
	struct json_object *a = json_object_new_array();
	char buf[16];

	for (size_t i = 0; i < p->n_writes; i++) {
		const struct part_write *w = &p->writes[i];
		struct json_object *o = json_object_new_object();
		add_u64(o, "lba", w->lba);
		add_u64(o, "sectors", w->sectors);
		add_str(o, "what", w->what);
		snprintf(buf, sizeof(buf), "0x%08x",
			 part_crc32(w->data, (size_t)w->sectors * p->sector_bytes));
		add_str(o, "crc32", buf);
		json_object_object_add(o, "flush_after", json_object_new_boolean(w->flush_after));
		json_object_array_add(a, o);
	}
	return a;
}

struct json_object *part_plan_to_json(const struct part_plan *p)
{
	struct json_object *o = json_object_new_object(), *saves = json_object_new_array();
	struct json_object *after = part_table_to_json(p->after);

	if (!o || !saves || !after) {
		json_object_put(o);
		json_object_put(saves);
		json_object_put(after);
		return NULL;
	}
	add_u64(o, "sector_size", p->sector_bytes);
	add_u64(o, "old_size_bytes", p->old_size_bytes);
	add_u64(o, "new_size_bytes", p->new_size_bytes);
	add_u64(o, "esp_number", p->esp_number);
	json_object_object_add(o, "esp_created", json_object_new_boolean(p->esp_created));
	/* The next stage (bootfix) formats the ESP: give it the entry directly. */
	const struct part_entry *esp = part_table_find_esp(p->after);
	if (esp)
		json_object_object_add(o, "esp", entry_json(p->after, esp));
	add_u64(o, "msr_number", p->msr_number);
	json_object_object_add(o, "after", after);
	json_object_object_add(o, "writes", writes_json(p));
	for (size_t i = 0; i < p->n_saves; i++) {
		struct json_object *s = json_object_new_object();
		add_u64(s, "offset", p->saves[i].offset_bytes);
		add_u64(s, "bytes", p->saves[i].bytes);
		json_object_array_add(saves, s);
	}
	json_object_object_add(o, "undo_saves", saves);
	json_object_object_add(o, "notes", strings_json(p->notes, p->n_notes));
	return o;
}
