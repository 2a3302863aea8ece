/* partition/plan.c - planning an in-place MBR-to-GPT conversion: type mapping, numbering,
 * room for the GPT at both ends, ESP (and MSR) placement, growth, and the exact sectors to
 * write. Planning reads the disk but never writes it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition/mbr-format.h"
#include "partition/part-int.h"

struct plan_ctx {
	struct vdisk *d;
	const struct part_table *t;
	const struct part_plan_opts *o;
	struct part_plan *p;
	struct part_table *after;
	uint64_t rng;                  /* splitmix64 state when seeded */
	uint64_t array_sectors;        /* GPT entry array */
	uint64_t first_usable;         /* 2 + array_sectors */
	uint64_t align_sectors;        /* 1 MiB */
	uint64_t disk_sectors;         /* after growing */
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator for seeded GUIDs. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int new_guid(struct plan_ctx *c, uint8_t g[16])
{
	if (!c->o->seeded)
		return vdisk_guid_random(g);
	put_le64(g, splitmix64(&c->rng));
	put_le64(g + 8, splitmix64(&c->rng));
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40); /* version 4, as random GUIDs are */
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
	return 0;
}

static int check_source(const struct part_table *t)
{
	const struct part_entry *esp = part_table_find_esp(t);

	if ((t->kind == PART_KIND_GPT || t->kind == PART_KIND_HYBRID) && esp)
		return vdisk_fail(EEXIST, "the disk already has a GPT with an EFI system partition "
				  "(partition %u): nothing to convert", esp->number);
	if (t->kind == PART_KIND_GPT || t->kind == PART_KIND_HYBRID)
		return vdisk_fail(ENOTSUP, "the disk already has a GPT, without an EFI system "
				  "partition; adding one to an existing GPT is not supported");
	if (t->kind != PART_KIND_MBR)
		return vdisk_fail(ENOTSUP, "the disk has no partition table to convert");
	return 0;
}

static int map_type(const struct plan_ctx *c, const struct part_entry *src,
		    struct part_entry *dst)
{
	for (size_t i = 0; i < c->o->n_maps; i++)
		if (c->o->maps[i].mbr_type == src->mbr_type) {
			memcpy(dst->type_guid, c->o->maps[i].type_guid, 16);
			const struct part_type_info *named = part_type_by_guid(dst->type_guid);
			snprintf(dst->name, sizeof(dst->name), "%s",
				 named ? named->name : "Mapped partition");
			return 0;
		}
	const struct part_type_info *ti = part_type_by_mbr(src->mbr_type);
	if (!ti)
		return vdisk_fail(EINVAL, "partition %u has MBR type 0x%02x, which has no GPT type "
				  "in genshift's table; give a mapping for it", src->number,
				  src->mbr_type);
	part_guid_parse(ti->guid, dst->type_guid);
	dst->attributes = ti->attributes;
	snprintf(dst->name, sizeof(dst->name), "%s", ti->name);
	return 0;
}

/* Same numbers, same LBAs; types mapped; fresh GUIDs. */
static int convert_entries(struct plan_ctx *c)
{
	int r = new_guid(c, c->after->disk_guid);

	for (size_t i = 0; i < c->t->n_entries && r == 0; i++) {
		const struct part_entry *src = &c->t->entries[i];
		struct part_entry e = { .number = src->number, .first_lba = src->first_lba,
					.last_lba = src->last_lba };
		if (src->first_lba < c->first_usable)
			return vdisk_fail(ENOSPC, "partition %u starts at LBA %llu, but the primary "
					  "GPT needs LBA 1..%llu (first usable LBA %llu); move or "
					  "shrink the partition first", src->number,
					  (unsigned long long)src->first_lba,
					  (unsigned long long)c->first_usable - 1,
					  (unsigned long long)c->first_usable);
		r = map_type(c, src, &e);
		if (r == 0)
			r = new_guid(c, e.guid);
		if (r == 0)
			r = part_table_add_entry(c->after, &e);
	}
	return r;
}

static uint32_t lowest_free_number(const struct part_table *t)
{
	for (uint32_t n = 1; n <= PART_MAX_NUMBER; n++) {
		bool used = false;
		for (size_t i = 0; i < t->n_entries && !used; i++)
			used = t->entries[i].number == n;
		if (!used)
			return n;
	}
	return 0;
}

static uint64_t max_last_lba(const struct part_table *t)
{
	uint64_t m = 0;

	for (size_t i = 0; i < t->n_entries; i++)
		if (t->entries[i].last_lba > m)
			m = t->entries[i].last_lba;
	return m;
}

/* First 1 MiB-aligned run of `sectors` in the free space of the current disk, or the end of
 * the partitions (the disk then grows). */
static int place(struct plan_ctx *c, uint64_t sectors, const char *what, uint64_t *start)
{
	uint64_t last_usable = c->disk_sectors - 2 - c->array_sectors;
	int r = 0;

	if (c->disk_sectors > c->first_usable + c->array_sectors + 2)
		r = part_compute_free(c->after, c->first_usable, last_usable, false);
	for (size_t i = 0; i < c->after->n_free && r == 0; i++) {
		uint64_t s = align_up(c->after->free[i].first_lba, c->align_sectors);
		if (s + sectors - 1 <= c->after->free[i].last_lba) {
			*start = s;
			return 0;
		}
	}
	if (r == 0 && !c->o->allow_grow)
		r = vdisk_fail(ENOSPC, "no free run of %llu sectors (%llu MiB, 1 MiB aligned) for "
			       "the %s, and growing the disk is not allowed",
			       (unsigned long long)sectors,
			       (unsigned long long)(sectors * c->after->sector_bytes >> 20), what);
	uint64_t after_last = max_last_lba(c->after) + 1;
	*start = align_up(after_last > c->first_usable ? after_last : c->first_usable,
			  c->align_sectors);
	return r;
}

static int add_new_partition(struct plan_ctx *c, uint64_t bytes, const char *type_guid,
			     const char *name, uint32_t *number)
{
	uint64_t sectors = bytes / c->after->sector_bytes, start;
	struct part_entry e = { .number = lowest_free_number(c->after) };

	if (e.number == 0)
		return vdisk_fail(ENOSPC, "all %u GPT entries are in use; no room for the %s",
				  PART_MAX_NUMBER, name);
	int r = place(c, sectors, name, &start);
	if (r == 0)
		r = new_guid(c, e.guid);
	if (r < 0)
		return r;
	e.first_lba = start;
	e.last_lba = start + sectors - 1;
	part_guid_parse(type_guid, e.type_guid);
	snprintf(e.name, sizeof(e.name), "%s", name);
	*number = e.number;
	return part_table_add_entry(c->after, &e);
}

static int esp_bytes(const struct plan_ctx *c, uint64_t *bytes)
{
	uint64_t min = c->after->sector_bytes == 4096 ? PART_ESP_MIN_BYTES_4K :
		       PART_ESP_MIN_BYTES_512;

	*bytes = align_up(c->o->esp_bytes ? c->o->esp_bytes : PART_ESP_DEFAULT_BYTES,
			  PART_ALIGN_BYTES);
	if (*bytes < min)
		return vdisk_fail(EINVAL, "ESP size %llu MiB is below the FAT32 minimum of %llu MiB "
				  "for %u-byte sectors", (unsigned long long)(*bytes >> 20),
				  (unsigned long long)(min >> 20), c->after->sector_bytes);
	return 0;
}

/* An MBR 0xEF partition already is the ESP; otherwise create one. */
static int plan_esp_msr(struct plan_ctx *c)
{
	const struct part_entry *old = part_table_find_esp(c->t);
	uint64_t bytes;
	int r = 0;

	if (old) {
		c->p->esp_number = old->number;
	} else {
		r = esp_bytes(c, &bytes);
		if (r == 0)
			r = add_new_partition(c, bytes, PART_GUID_ESP, "EFI system partition",
					      &c->p->esp_number);
		c->p->esp_created = r == 0;
	}
	if (r == 0 && c->o->add_msr)
		r = add_new_partition(c, PART_MSR_BYTES, PART_GUID_MSR,
				      "Microsoft reserved partition", &c->p->msr_number);
	return r;
}

/* The backup GPT needs array_sectors + 1 sectors after the last partition. */
static int plan_size(struct plan_ctx *c)
{
	uint64_t need = max_last_lba(c->after) + c->array_sectors + 2;

	if (need > c->disk_sectors && !c->o->allow_grow)
		return vdisk_fail(ENOSPC, "partition space ends at LBA %llu, but the backup GPT needs "
				  "%llu sectors after it: %llu sectors (%llu bytes) are missing at "
				  "the end of the disk, and growing it is not allowed",
				  (unsigned long long)max_last_lba(c->after),
				  (unsigned long long)c->array_sectors + 1,
				  (unsigned long long)(need - c->disk_sectors),
				  (unsigned long long)(need - c->disk_sectors) * c->after->sector_bytes);
	if (need > c->disk_sectors)
		c->disk_sectors = align_up(need, c->align_sectors);
	c->p->new_size_bytes = c->disk_sectors * c->after->sector_bytes;
	c->after->disk_sectors = c->disk_sectors;
	c->after->first_usable_lba = c->first_usable;
	c->after->last_usable_lba = c->disk_sectors - 2 - c->array_sectors;
	c->after->gpt_entry_count = PART_MAX_NUMBER;
	c->after->gpt_primary_valid = c->after->gpt_backup_valid = true;
	part_table_sort(c->after);
	return part_compute_free(c->after, c->after->first_usable_lba, c->after->last_usable_lba,
				 false);
}

static int note(struct plan_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int note(struct plan_ctx *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return part_note_add(&c->p->notes, &c->p->n_notes, "%s", buf);
}

/* The notes a person must read before saying yes. */
static int plan_notes(struct plan_ctx *c)
{
	uint32_t ss = c->t->sector_bytes;
	size_t gap_bytes = (size_t)(c->first_usable - 1) * ss;
	uint8_t *gap = malloc(gap_bytes);
	int r;

	if (!gap)
		return vdisk_fail(ENOMEM, "out of memory");
	r = vdisk_read(c->d, ss, gap, gap_bytes);
	if (r == 0 && !vdisk_buf_is_zero(gap, gap_bytes))
		r = note(c, "BIOS boot code or data in the post-MBR gap (LBA 1..%llu) will be "
			 "overwritten by the primary GPT: BIOS boot will no longer work",
			 (unsigned long long)c->first_usable - 1);
	else if (r == 0 && c->t->mbr_has_boot_code)
		r = note(c, "the MBR boot code is kept in the protective MBR, but with the MBR "
			 "partition table gone BIOS boot will no longer work");
	free(gap);
	if (r == 0 && c->t->ext_number)
		r = note(c, "extended partition %u disappears; logical partitions keep their "
			 "numbers (5 and up); its EBR sectors (%zu) stay on disk unused and are "
			 "saved in the undo file", c->t->ext_number, c->t->n_ebrs);
	if (r == 0 && c->p->new_size_bytes > c->p->old_size_bytes)
		r = note(c, "the virtual disk grows from %llu to %llu bytes to make room for the "
			 "backup GPT%s", (unsigned long long)c->p->old_size_bytes,
			 (unsigned long long)c->p->new_size_bytes,
			 c->p->esp_created ? " and the new partitions" : "");
	return r;
}

static int note_partitions(struct plan_ctx *c)
{
	int r = 0;

	for (size_t i = 0; i < c->after->n_entries && r == 0; i++) {
		const struct part_entry *e = &c->after->entries[i];
		if (e->number == c->p->esp_number && c->p->esp_created)
			r = note(c, "new EFI system partition %u at LBA %llu..%llu, not formatted "
				 "(bootfix creates its FAT32 file system)", e->number,
				 (unsigned long long)e->first_lba, (unsigned long long)e->last_lba);
		else if (e->number == c->p->esp_number)
			r = note(c, "MBR partition %u (type 0xEF) becomes the EFI system partition",
				 e->number);
		else if (e->number == c->p->msr_number)
			r = note(c, "new Microsoft reserved partition %u at LBA %llu..%llu",
				 e->number, (unsigned long long)e->first_lba,
				 (unsigned long long)e->last_lba);
	}
	return r;
}

static int add_write(struct part_plan *p, uint64_t lba, uint32_t sectors, bool flush,
		     const char *what, uint8_t *data)
{
	struct part_write *grown = realloc(p->writes, (p->n_writes + 1) * sizeof(*grown));
	if (!grown) {
		free(data);
		return vdisk_fail(ENOMEM, "out of memory");
	}
	p->writes = grown;
	p->writes[p->n_writes++] = (struct part_write){ lba, sectors, flush, what, data };
	return 0;
}

/* In the order part_plan_apply performs them: backup copy, primary copy, protective MBR. */
static int plan_writes(struct plan_ctx *c)
{
	uint32_t ss = c->after->sector_bytes;
	uint32_t n = (uint32_t)c->array_sectors;
	uint64_t last = c->disk_sectors - 1;
	uint8_t *array = NULL, *ph = NULL, *bh = NULL;
	uint8_t *mbr = calloc(1, ss), *array2 = malloc((size_t)n * ss);

	int r = mbr && array2 ? gpt_build(c->after, &array, &ph, &bh) :
		vdisk_fail(ENOMEM, "out of memory");
	if (r == 0) {
		memcpy(array2, array, (size_t)n * ss);
		mbr_build_protective(mbr, ss, c->t->mbr, c->disk_sectors);
		memcpy(c->after->mbr, mbr, sizeof(c->after->mbr));
		c->after->mbr_has_boot_code = c->t->mbr_has_boot_code;
	}
	struct part_write w[] = {
		{ last - n, n, false, "backup GPT entries", array2 },
		{ last, 1, true, "backup GPT header", bh },
		{ 2, n, false, "primary GPT entries", array },
		{ 1, 1, true, "primary GPT header", ph },
		{ 0, 1, true, "protective MBR", mbr },
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		if (r == 0)
			r = add_write(c->p, w[i].lba, w[i].sectors, w[i].flush_after, w[i].what,
				      w[i].data);
		else
			free(w[i].data);
	}
	return r;
}

static int add_save(struct part_plan *p, uint64_t off, uint64_t bytes)
{
	for (size_t i = 0; i < p->n_saves; i++)
		if (off >= p->saves[i].offset_bytes &&
		    off + bytes <= p->saves[i].offset_bytes + p->saves[i].bytes)
			return 0; /* already inside a saved region */
	struct part_region *grown = realloc(p->saves, (p->n_saves + 1) * sizeof(*grown));
	if (!grown)
		return vdisk_fail(ENOMEM, "out of memory");
	p->saves = grown;
	p->saves[p->n_saves++] = (struct part_region){ off, bytes };
	return 0;
}

/* The first and last MiB of the original disk, and every EBR sector. */
static int plan_saves(struct plan_ctx *c)
{
	uint64_t size = c->p->old_size_bytes, mib = PART_ALIGN_BYTES;
	uint64_t head = size < mib ? size : mib;
	int r = add_save(c->p, 0, head);

	uint64_t tail = size - head > mib ? size - mib : head;
	if (r == 0 && size > tail)
		r = add_save(c->p, tail, size - tail);
	for (size_t i = 0; i < c->t->n_ebrs && r == 0; i++)
		r = add_save(c->p, c->t->ebr_lbas[i] * c->t->sector_bytes, c->t->sector_bytes);
	return r;
}

static int plan_build(struct plan_ctx *c)
{
	int r = convert_entries(c);

	if (r == 0)
		r = plan_esp_msr(c);
	if (r == 0)
		r = plan_size(c);
	if (r == 0)
		r = plan_writes(c);
	if (r == 0)
		r = plan_saves(c);
	if (r == 0)
		r = plan_notes(c);
	if (r == 0)
		r = note_partitions(c);
	return r;
}

int part_plan_new(struct vdisk *d, const struct part_table *t, const struct part_plan_opts *o,
		  struct part_plan **out)
{
	struct plan_ctx c = { .d = d, .t = t, .o = o, .rng = o->seed };
	int r = check_source(t);

	if (r < 0)
		return r;
	if (vdisk_size_bytes(d) != t->disk_sectors * t->sector_bytes)
		return vdisk_fail(ESTALE, "%s: the disk is not the one the table was read from",
				  vdisk_path(d));
	c.p = calloc(1, sizeof(*c.p));
	c.after = calloc(1, sizeof(*c.after));
	if (!c.p || !c.after) {
		free(c.p);
		free(c.after);
		return vdisk_fail(ENOMEM, "out of memory");
	}
	c.p->after = c.after;
	c.p->sector_bytes = t->sector_bytes;
	c.p->old_size_bytes = c.p->new_size_bytes = vdisk_size_bytes(d);
	memcpy(c.p->orig_mbr, t->mbr, sizeof(c.p->orig_mbr));
	c.after->kind = PART_KIND_GPT;
	c.after->sector_bytes = t->sector_bytes;
	c.array_sectors = gpt_array_sectors(t->sector_bytes);
	c.first_usable = 2 + c.array_sectors;
	c.align_sectors = PART_ALIGN_BYTES / t->sector_bytes;
	c.disk_sectors = t->disk_sectors;
	r = plan_build(&c);
	if (r < 0) {
		part_plan_free(c.p);
		return r;
	}
	*out = c.p;
	return 0;
}

void part_plan_free(struct part_plan *p)
{
	if (!p)
		return;
	part_table_free(p->after);
	for (size_t i = 0; i < p->n_writes; i++)
		free(p->writes[i].data);
	free(p->writes);
	free(p->saves);
	part_notes_free(p->notes, p->n_notes);
	free(p);
}
