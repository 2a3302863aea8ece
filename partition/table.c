/* partition/table.c - part_table_read(): which kind of table a disk holds, and the helpers
 * every reader shares (entry list, overlaps, free extents, findings). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition/mbr-format.h"
#include "partition/part-int.h"

int part_note_add(char ***list, size_t *n, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	if (*n >= PART_MAX_NOTES)
		return 0;
	char **grown = realloc(*list, (*n + 1) * sizeof(**list));
	if (!grown)
		return vdisk_fail(ENOMEM, "out of memory");
	*list = grown;
	va_start(ap, fmt);
	int len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len < 0)
		return vdisk_fail(ENOMEM, "out of memory");
	(*list)[(*n)++] = s;
	return 0;
}

void part_notes_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int part_table_add_entry(struct part_table *t, const struct part_entry *e)
{
	struct part_entry *grown = realloc(t->entries, (t->n_entries + 1) * sizeof(*grown));
	if (!grown)
		return vdisk_fail(ENOMEM, "out of memory");
	t->entries = grown;
	t->entries[t->n_entries++] = *e;
	return 0;
}

static int by_number(const void *a, const void *b)
{
	const struct part_entry *x = a, *y = b;
	return (x->number > y->number) - (x->number < y->number);
}

void part_table_sort(struct part_table *t)
{
	if (t->n_entries > 1)
		qsort(t->entries, t->n_entries, sizeof(*t->entries), by_number);
}

static int by_first_lba(const void *a, const void *b)
{
	const struct part_entry *x = *(struct part_entry *const *)a;
	const struct part_entry *y = *(struct part_entry *const *)b;
	return (x->first_lba > y->first_lba) - (x->first_lba < y->first_lba);
}

/* Pointers sorted by first LBA (caller frees); NULL on allocation failure. */
static const struct part_entry **sorted_by_lba(const struct part_table *t)
{
	const struct part_entry **v = calloc(t->n_entries + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < t->n_entries; i++)
		v[i] = &t->entries[i];
	qsort(v, t->n_entries, sizeof(*v), by_first_lba);
	return v;
}

int part_check_overlaps(const struct part_table *t)
{
	const struct part_entry **v = sorted_by_lba(t);
	int r = 0;

	if (!v)
		return vdisk_fail(ENOMEM, "out of memory");
	for (size_t i = 1; i < t->n_entries && r == 0; i++)
		if (v[i]->first_lba <= v[i - 1]->last_lba)
			r = vdisk_fail(EINVAL, "partitions %u (LBA %llu..%llu) and %u (LBA %llu..%llu) "
				       "overlap", v[i - 1]->number,
				       (unsigned long long)v[i - 1]->first_lba,
				       (unsigned long long)v[i - 1]->last_lba, v[i]->number,
				       (unsigned long long)v[i]->first_lba,
				       (unsigned long long)v[i]->last_lba);
	free(v);
	return r;
}

static int add_free(struct part_table *t, uint64_t first, uint64_t last)
{
	if (first > last)
		return 0;
	struct part_extent *grown = realloc(t->free, (t->n_free + 1) * sizeof(*grown));
	if (!grown)
		return vdisk_fail(ENOMEM, "out of memory");
	t->free = grown;
	t->free[t->n_free++] = (struct part_extent){ first, last };
	return 0;
}

static int by_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Add [first, last] minus the EBR sectors in it (each EBR is one used sector). ebrs is
 * sorted; there are at most PART_MAX_NUMBER of them, so a scan per run is cheap. */
static int add_free_minus_ebrs(struct part_table *t, uint64_t first, uint64_t last,
			       const uint64_t *ebrs, size_t n_ebrs)
{
	uint64_t run = first;
	int r = 0;

	for (size_t i = 0; i < n_ebrs && r == 0; i++) {
		if (ebrs[i] < run || ebrs[i] > last)
			continue;
		if (ebrs[i] > run)
			r = add_free(t, run, ebrs[i] - 1);
		run = ebrs[i] + 1;
	}
	if (r == 0 && run <= last && run != 0)
		r = add_free(t, run, last);
	return r;
}

int part_compute_free(struct part_table *t, uint64_t lo, uint64_t hi, bool with_ebrs)
{
	const struct part_entry **v = sorted_by_lba(t);
	size_t n_ebrs = with_ebrs ? t->n_ebrs : 0;
	uint64_t *ebrs = calloc(n_ebrs + 1, sizeof(*ebrs));
	uint64_t next = lo;
	int r = 0;

	if (!v || !ebrs) {
		r = vdisk_fail(ENOMEM, "out of memory");
		goto free_lists;
	}
	if (n_ebrs)
		memcpy(ebrs, t->ebr_lbas, n_ebrs * sizeof(*ebrs));
	qsort(ebrs, n_ebrs, sizeof(*ebrs), by_u64);
	free(t->free);
	t->free = NULL;
	t->n_free = 0;
	for (size_t i = 0; i < t->n_entries && r == 0 && next <= hi; i++) {
		if (v[i]->last_lba < next)
			continue;
		if (v[i]->first_lba > next)
			r = add_free_minus_ebrs(t, next, v[i]->first_lba - 1 < hi ?
						v[i]->first_lba - 1 : hi, ebrs, n_ebrs);
		next = v[i]->last_lba + 1;
	}
	if (r == 0 && next <= hi && next != 0)
		r = add_free_minus_ebrs(t, next, hi, ebrs, n_ebrs);
free_lists:
	free(ebrs);
	free(v);
	return r;
}

void part_table_free(struct part_table *t)
{
	if (!t)
		return;
	free(t->ebr_lbas);
	free(t->entries);
	free(t->free);
	free(t->gpt_array);
	part_notes_free(t->findings, t->n_findings);
	free(t);
}

const char *part_kind_name(enum part_kind k)
{
	switch (k) {
	case PART_KIND_MBR: return "mbr";
	case PART_KIND_GPT: return "gpt";
	case PART_KIND_HYBRID: return "hybrid";
	default: return "none";
	}
}

const struct part_entry *part_table_find_esp(const struct part_table *t)
{
	uint8_t esp[16];

	part_guid_parse(PART_GUID_ESP, esp);
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (e->mbr_type == MBR_TYPE_EFI_SYSTEM || (!e->mbr_type && !memcmp(e->type_guid, esp, 16)))
			return e;
	}
	return NULL;
}

static bool mbr_has_protective_entry(const uint8_t *mbr)
{
	for (int i = 0; i < 4; i++)
		if (mbr[MBR_PART_OFF(i) + offsetof(struct mbr_part_record, type)] ==
		    MBR_TYPE_GPT_PROTECTIVE)
			return true;
	return false;
}

/* A status byte other than 0x00/0x80 means LBA 0 is a boot sector (a FAT or NTFS volume
 * without partition table), not an MBR: Linux's msdos.c draws the same line. */
static int bad_status_slot(const uint8_t *mbr)
{
	for (int i = 0; i < 4; i++) {
		uint8_t status = mbr[MBR_PART_OFF(i) + offsetof(struct mbr_part_record, status)];
		if (status != 0 && status != MBR_STATUS_ACTIVE)
			return i + 1;
	}
	return 0;
}

/* Decide between MBR and GPT the way UEFI §5.2.3 and gdisk do: an 0xEE entry means GPT. */
static int read_by_kind(struct vdisk *d, struct part_table *t)
{
	bool sig = t->mbr[MBR_SIG_OFF] == 0x55 && t->mbr[MBR_SIG_OFF + 1] == 0xAA;
	int r, slot = bad_status_slot(t->mbr);

	if (sig && !mbr_has_protective_entry(t->mbr) && slot) {
		t->kind = PART_KIND_NONE;
		return part_note_add(&t->findings, &t->n_findings, "LBA 0 has the 0x55AA signature "
				     "but entry %d's status byte is 0x%02x (not 0x00 or 0x80): a "
				     "boot sector, not a partition table", slot,
				     t->mbr[MBR_PART_OFF(slot - 1)]);
	}
	if (sig && !mbr_has_protective_entry(t->mbr))
		return mbr_read(d, t);
	r = gpt_read(d, t);
	if (r == -ENODATA && sig)
		return vdisk_fail(EINVAL, "the MBR has a GPT-protective (0xEE) entry but neither LBA 1 "
				  "nor the last LBA %llu holds a GPT header (\"EFI PART\")",
				  (unsigned long long)(t->disk_sectors - 1));
	if (r == -ENODATA) {
		t->kind = PART_KIND_NONE;
		return 0;
	}
	if (r == 0 && !sig)
		r = part_note_add(&t->findings, &t->n_findings, "LBA 0 holds no MBR signature "
				  "(0x55AA at byte 510): the protective MBR is missing");
	return r;
}

int part_table_read(struct vdisk *d, struct part_table **out)
{
	struct part_table *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return vdisk_fail(ENOMEM, "out of memory");
	t->sector_bytes = vdisk_logical_sector_bytes(d);
	t->disk_sectors = vdisk_size_bytes(d) / t->sector_bytes;
	if (t->sector_bytes != 512 && t->sector_bytes != 4096) {
		r = vdisk_fail(ENOTSUP, "%s: %u-byte logical sectors: only 512 and 4096 are "
			       "supported", vdisk_path(d), t->sector_bytes);
		goto free_table;
	}
	if (t->disk_sectors < 3) {
		t->kind = PART_KIND_NONE; /* too small for any table */
		*out = t;
		return 0;
	}
	r = vdisk_read(d, 0, t->mbr, sizeof(t->mbr));
	if (r < 0)
		goto free_table;
	r = read_by_kind(d, t);
	if (r < 0)
		goto free_table;
	part_table_sort(t);
	if (t->kind == PART_KIND_MBR || t->kind == PART_KIND_NONE)
		r = part_compute_free(t, 1, t->disk_sectors - 1, true);
	else
		r = part_compute_free(t, t->first_usable_lba, t->last_usable_lba, false);
	if (r < 0)
		goto free_table;
	*out = t;
	return 0;

free_table:
	part_table_free(t);
	return r;
}
