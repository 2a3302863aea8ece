/* partition/gpt.c - reading the GUID Partition Table (both copies, UEFI 2.10 §5.3.2 checks)
 * and building one for a conversion. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition/gpt-format.h"
#include "partition/mbr-format.h"
#include "partition/part-int.h"

/* One copy (primary or backup) as found on disk. */
struct gpt_copy {
	const char *label; /* "primary" / "backup" */
	uint64_t lba;      /* where its header was looked for */
	bool has_signature, valid;
	char why[256];     /* why it is not valid */
	uint64_t alternate_lba, first_usable, last_usable, entries_lba;
	uint32_t entry_count, entries_crc;
	uint8_t disk_guid[16];
	uint8_t *array;    /* entry_count * 128 bytes once valid */
};

uint64_t gpt_array_sectors(uint32_t sector_bytes)
{
	return (PART_GPT_ARRAY_BYTES + sector_bytes - 1) / sector_bytes;
}

bool gpt_signature_at_lba1(struct vdisk *d, uint32_t sector_bytes)
{
	uint8_t sig[8];

	return vdisk_size_bytes(d) >= 2ull * sector_bytes &&
	       vdisk_read(d, sector_bytes, sig, sizeof(sig)) == 0 &&
	       !memcmp(sig, GPT_SIGNATURE, sizeof(sig));
}

static bool invalid(struct gpt_copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool invalid(struct gpt_copy *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	return false;
}

/* Signature, header size, header CRC, self-location: is this a header at all? */
static bool check_header_integrity(struct gpt_copy *c, uint8_t *h, uint32_t ss)
{
	if (memcmp(h + GPT_HDR(signature), GPT_SIGNATURE, 8))
		return invalid(c, "no \"EFI PART\" signature");
	c->has_signature = true;
	uint32_t hsize = get_le32(h + GPT_HDR(header_bytes));
	if (hsize < GPT_HEADER_BYTES || hsize > ss)
		return invalid(c, "header size %u (offset 0x%zx) is outside %u..%u", hsize,
			       GPT_HDR(header_bytes), GPT_HEADER_BYTES, ss);
	uint32_t stored = get_le32(h + GPT_HDR(header_crc32));
	put_le32(h + GPT_HDR(header_crc32), 0);
	uint32_t crc = part_crc32(h, hsize);
	put_le32(h + GPT_HDR(header_crc32), stored);
	if (crc != stored)
		return invalid(c, "header CRC32 0x%08x (offset 0x%zx) does not match the computed "
			       "0x%08x", stored, GPT_HDR(header_crc32), crc);
	uint64_t my = get_le64(h + GPT_HDR(my_lba));
	if (my != c->lba)
		return invalid(c, "my_lba %llu (offset 0x%zx) should be %llu, where it was found",
			       (unsigned long long)my, GPT_HDR(my_lba), (unsigned long long)c->lba);
	return true;
}

static bool ranges_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 <= b1 && b0 <= a1;
}

/* Alternate LBA, usable range, entry size and count, array location. */
static bool check_header_ranges(struct gpt_copy *c, const uint8_t *h, uint64_t disk_sectors,
				uint32_t ss)
{
	c->alternate_lba = get_le64(h + GPT_HDR(alternate_lba));
	c->first_usable = get_le64(h + GPT_HDR(first_usable_lba));
	c->last_usable = get_le64(h + GPT_HDR(last_usable_lba));
	c->entries_lba = get_le64(h + GPT_HDR(entries_lba));
	c->entry_count = get_le32(h + GPT_HDR(entry_count));
	c->entries_crc = get_le32(h + GPT_HDR(entries_crc32));
	memcpy(c->disk_guid, h + GPT_HDR(disk_guid), 16);
	uint32_t esize = get_le32(h + GPT_HDR(entry_bytes));
	if (c->alternate_lba >= disk_sectors || c->alternate_lba == c->lba || c->alternate_lba == 0)
		return invalid(c, "alternate_lba %llu is not another LBA of the disk (1..%llu)",
			       (unsigned long long)c->alternate_lba,
			       (unsigned long long)disk_sectors - 1);
	if (c->first_usable > c->last_usable || c->last_usable >= disk_sectors ||
	    c->first_usable < 1 || ranges_overlap(c->first_usable, c->last_usable, c->lba, c->lba))
		return invalid(c, "usable range LBA %llu..%llu is empty, outside the disk (last LBA "
			       "%llu) or covers the header", (unsigned long long)c->first_usable,
			       (unsigned long long)c->last_usable,
			       (unsigned long long)disk_sectors - 1);
	if (esize != GPT_ENTRY_BYTES)
		return invalid(c, "entry size %u (offset 0x%zx): only %u is supported", esize,
			       GPT_HDR(entry_bytes), GPT_ENTRY_BYTES);
	if (c->entry_count == 0 || c->entry_count > PART_GPT_MAX_ENTRIES)
		return invalid(c, "entry count %u (offset 0x%zx) is outside 1..%u", c->entry_count,
			       GPT_HDR(entry_count), PART_GPT_MAX_ENTRIES);
	uint64_t n = ((uint64_t)c->entry_count * GPT_ENTRY_BYTES + ss - 1) / ss;
	uint64_t last = c->entries_lba + n - 1;
	if (c->entries_lba == 0 || c->entries_lba >= disk_sectors || last >= disk_sectors ||
	    ranges_overlap(c->entries_lba, last, c->lba, c->lba) ||
	    ranges_overlap(c->entries_lba, last, c->first_usable, c->last_usable))
		return invalid(c, "entry array LBA %llu..%llu overlaps the header, the usable range "
			       "(LBA %llu..%llu) or lies outside the disk",
			       (unsigned long long)c->entries_lba, (unsigned long long)last,
			       (unsigned long long)c->first_usable,
			       (unsigned long long)c->last_usable);
	return true;
}

static bool check_array(struct gpt_copy *c, struct vdisk *d, uint32_t ss)
{
	size_t bytes = (size_t)c->entry_count * GPT_ENTRY_BYTES;

	c->array = malloc(bytes);
	if (!c->array)
		return invalid(c, "out of memory for a %zu-byte entry array", bytes);
	if (vdisk_read(d, c->entries_lba * ss, c->array, bytes) < 0)
		return invalid(c, "entry array unreadable: %s", vdisk_errmsg());
	uint32_t crc = part_crc32(c->array, bytes);
	if (crc != c->entries_crc)
		return invalid(c, "entry array CRC32 0x%08x (header offset 0x%zx) does not match "
			       "the computed 0x%08x", c->entries_crc, GPT_HDR(entries_crc32), crc);
	return true;
}

static void read_copy(struct vdisk *d, struct gpt_copy *c, uint64_t disk_sectors, uint32_t ss)
{
	uint8_t *h = malloc(ss);

	if (!h) {
		invalid(c, "out of memory");
		return;
	}
	if (vdisk_read(d, c->lba * ss, h, ss) < 0)
		invalid(c, "unreadable: %s", vdisk_errmsg());
	else
		c->valid = check_header_integrity(c, h, ss) &&
			   check_header_ranges(c, h, disk_sectors, ss) && check_array(c, d, ss);
	free(h);
}

static void utf16_name_to_utf8(const uint8_t *name, char *out, size_t outlen)
{
	size_t o = 0;

	for (unsigned i = 0; i < GPT_NAME_UNITS; i++) {
		uint32_t u = get_le16(name + 2 * i);
		if (u == 0)
			break;
		if (u >= 0xD800 && u <= 0xDFFF) /* surrogates: not worth decoding for a label */
			u = '?';
		char enc[3];
		size_t n = 0;
		if (u < 0x80) {
			enc[n++] = (char)u;
		} else if (u < 0x800) {
			enc[n++] = (char)(0xC0 | u >> 6);
			enc[n++] = (char)(0x80 | (u & 0x3F));
		} else {
			enc[n++] = (char)(0xE0 | u >> 12);
			enc[n++] = (char)(0x80 | ((u >> 6) & 0x3F));
			enc[n++] = (char)(0x80 | (u & 0x3F));
		}
		if (o + n >= outlen)
			break;
		memcpy(out + o, enc, n);
		o += n;
	}
	out[o] = 0;
}

static int parse_entries(struct part_table *t, const struct gpt_copy *c)
{
	int r = 0;

	for (uint32_t i = 0; i < c->entry_count && r == 0; i++) {
		const uint8_t *p = c->array + (size_t)i * GPT_ENTRY_BYTES;
		if (vdisk_buf_is_zero(p + GPT_ENT(type_guid), 16))
			continue;
		struct part_entry e = { .number = i + 1 };
		memcpy(e.type_guid, p + GPT_ENT(type_guid), 16);
		memcpy(e.guid, p + GPT_ENT(unique_guid), 16);
		e.first_lba = get_le64(p + GPT_ENT(first_lba));
		e.last_lba = get_le64(p + GPT_ENT(last_lba));
		e.attributes = get_le64(p + GPT_ENT(attributes));
		utf16_name_to_utf8(p + GPT_ENT(name), e.name, sizeof(e.name));
		if (e.first_lba > e.last_lba || e.first_lba < c->first_usable ||
		    e.last_lba > c->last_usable)
			return vdisk_fail(EINVAL, "GPT entry %u (%s array, byte %zu): LBA %llu..%llu "
					  "is not inside the usable range LBA %llu..%llu", e.number,
					  c->label, (size_t)i * GPT_ENTRY_BYTES,
					  (unsigned long long)e.first_lba,
					  (unsigned long long)e.last_lba,
					  (unsigned long long)c->first_usable,
					  (unsigned long long)c->last_usable);
		r = part_table_add_entry(t, &e);
	}
	return r ? r : part_check_overlaps(t);
}

/* Both copies valid: note where they disagree (the primary wins, as in gdisk). */
static int compare_copies(struct part_table *t, const struct gpt_copy *p, const struct gpt_copy *b)
{
	if (p->alternate_lba == b->lba && b->alternate_lba == p->lba &&
	    p->first_usable == b->first_usable && p->last_usable == b->last_usable &&
	    p->entry_count == b->entry_count && p->entries_crc == b->entries_crc &&
	    !memcmp(p->disk_guid, b->disk_guid, 16))
		return 0;
	return part_note_add(&t->findings, &t->n_findings, "primary (LBA 1) and backup (LBA %llu) "
			     "GPT headers disagree (alternate LBA, usable range, disk GUID or "
			     "entries); using the primary", (unsigned long long)b->lba);
}

static int note_damage(struct part_table *t, const struct gpt_copy *bad,
		       const struct gpt_copy *good)
{
	return part_note_add(&t->findings, &t->n_findings, "%s GPT (header at LBA %llu) is damaged "
			     "(%s); the table was read from the %s at LBA %llu and the %s can be "
			     "rebuilt from it", bad->label, (unsigned long long)bad->lba, bad->why,
			     good->label, (unsigned long long)good->lba, bad->label);
}

/* Hybrid: the MBR holds entries besides the 0xEE one. */
static int classify_mbr(struct part_table *t)
{
	int others = 0;

	t->kind = PART_KIND_GPT;
	if (t->mbr[MBR_SIG_OFF] != 0x55 || t->mbr[MBR_SIG_OFF + 1] != 0xAA)
		return 0;
	for (int i = 0; i < 4; i++) {
		uint8_t type = t->mbr[MBR_PART_OFF(i) + offsetof(struct mbr_part_record, type)];
		if (type != MBR_TYPE_EMPTY && type != MBR_TYPE_GPT_PROTECTIVE)
			others++;
	}
	if (!others)
		return 0;
	t->kind = PART_KIND_HYBRID;
	return part_note_add(&t->findings, &t->n_findings, "hybrid MBR: %d MBR entries besides "
			     "the 0xEE one mirror GPT partitions and can go out of sync", others);
}

static int use_copy(struct part_table *t, struct gpt_copy *c)
{
	int r = classify_mbr(t);

	memcpy(t->disk_guid, c->disk_guid, 16);
	t->first_usable_lba = c->first_usable;
	t->last_usable_lba = c->last_usable;
	t->gpt_entry_count = c->entry_count;
	if (r == 0 && c->lba == 1 && c->alternate_lba != t->disk_sectors - 1)
		r = part_note_add(&t->findings, &t->n_findings, "the backup GPT header is at LBA %llu, "
				  "not at the last LBA %llu (was the disk resized?)",
				  (unsigned long long)c->alternate_lba,
				  (unsigned long long)t->disk_sectors - 1);
	r = r ? r : parse_entries(t, c);
	t->gpt_array = c->array; /* kept for part_gpt_repair */
	c->array = NULL;
	return r;
}

static int choose_copy(struct part_table *t, struct gpt_copy *p, struct gpt_copy *b)
{
	int r;

	t->gpt_primary_valid = p->valid;
	t->gpt_backup_valid = b->valid;
	t->gpt_backup_lba = b->lba;
	if (!p->has_signature && !b->has_signature)
		return -ENODATA;
	if (!p->valid && !b->valid)
		return vdisk_fail(EINVAL, "no valid GPT: primary header at LBA 1: %s; backup header "
				  "at LBA %llu: %s", p->why, (unsigned long long)b->lba, b->why);
	if (p->valid && b->valid)
		r = compare_copies(t, p, b);
	else
		r = p->valid ? note_damage(t, b, p) : note_damage(t, p, b);
	return r ? r : use_copy(t, p->valid ? p : b);
}

int gpt_read(struct vdisk *d, struct part_table *t)
{
	uint32_t ss = t->sector_bytes;
	struct gpt_copy p = { .label = "primary", .lba = 1 };
	struct gpt_copy b = { .label = "backup", .lba = t->disk_sectors - 1 };

	read_copy(d, &p, t->disk_sectors, ss);
	if (p.valid)
		b.lba = p.alternate_lba;
	read_copy(d, &b, t->disk_sectors, ss);
	int r = choose_copy(t, &p, &b);
	free(p.array);
	free(b.array);
	return r;
}

/* ---- building ---- */

static void put_name(uint8_t *p, const char *name)
{
	/* Names genshift writes are ASCII (type names); anything else becomes '?'. */
	for (unsigned i = 0; i < GPT_NAME_UNITS && name[i]; i++)
		put_le16(p + 2 * i, (uint8_t)name[i] < 0x80 ? (uint8_t)name[i] : '?');
}

static void build_array(const struct part_table *t, uint8_t *array)
{
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		uint8_t *p = array + (size_t)(e->number - 1) * GPT_ENTRY_BYTES;
		memcpy(p + GPT_ENT(type_guid), e->type_guid, 16);
		memcpy(p + GPT_ENT(unique_guid), e->guid, 16);
		put_le64(p + GPT_ENT(first_lba), e->first_lba);
		put_le64(p + GPT_ENT(last_lba), e->last_lba);
		put_le64(p + GPT_ENT(attributes), e->attributes);
		put_name(p + GPT_ENT(name), e->name);
	}
}

static void build_header(const struct part_table *t, uint8_t *h, uint64_t my, uint64_t alt,
			 uint64_t entries_lba, uint32_t entries_crc)
{
	memcpy(h + GPT_HDR(signature), GPT_SIGNATURE, 8);
	put_le32(h + GPT_HDR(revision), GPT_REVISION_1_0);
	put_le32(h + GPT_HDR(header_bytes), GPT_HEADER_BYTES);
	put_le64(h + GPT_HDR(my_lba), my);
	put_le64(h + GPT_HDR(alternate_lba), alt);
	put_le64(h + GPT_HDR(first_usable_lba), t->first_usable_lba);
	put_le64(h + GPT_HDR(last_usable_lba), t->last_usable_lba);
	memcpy(h + GPT_HDR(disk_guid), t->disk_guid, 16);
	put_le64(h + GPT_HDR(entries_lba), entries_lba);
	put_le32(h + GPT_HDR(entry_count), t->gpt_entry_count);
	put_le32(h + GPT_HDR(entry_bytes), GPT_ENTRY_BYTES);
	put_le32(h + GPT_HDR(entries_crc32), entries_crc);
	put_le32(h + GPT_HDR(header_crc32), part_crc32(h, GPT_HEADER_BYTES));
}

int gpt_build(const struct part_table *t, uint8_t **array, uint8_t **primary_hdr,
	      uint8_t **backup_hdr)
{
	uint32_t ss = t->sector_bytes;
	uint64_t n = gpt_array_sectors(ss), last = t->disk_sectors - 1;

	for (size_t i = 0; i < t->n_entries; i++)
		if (t->entries[i].number < 1 || t->entries[i].number > GPT_DEFAULT_ENTRIES)
			return vdisk_fail(EINVAL, "partition number %u does not fit a %u-entry GPT",
					  t->entries[i].number, GPT_DEFAULT_ENTRIES);
	uint8_t *a = calloc(n, ss), *ph = calloc(1, ss), *bh = calloc(1, ss);
	if (!a || !ph || !bh) {
		free(a);
		free(ph);
		free(bh);
		return vdisk_fail(ENOMEM, "out of memory");
	}
	build_array(t, a);
	uint32_t crc = part_crc32(a, PART_GPT_ARRAY_BYTES);
	build_header(t, ph, 1, last, 2, crc);
	build_header(t, bh, last, 1, last - n, crc);
	*array = a;
	*primary_hdr = ph;
	*backup_hdr = bh;
	return 0;
}

/* ---- repair ---- */

static int write_copy(struct vdisk *d, const struct part_table *t, uint64_t hdr_lba,
		      uint64_t alt_lba, uint64_t array_lba)
{
	uint32_t ss = t->sector_bytes;
	size_t bytes = (size_t)t->gpt_entry_count * GPT_ENTRY_BYTES;
	size_t sectors = (bytes + ss - 1) / ss;
	uint8_t *array = calloc(sectors, ss), *h = calloc(1, ss);
	int r = array && h ? 0 : vdisk_fail(ENOMEM, "out of memory");

	if (r == 0) {
		memcpy(array, t->gpt_array, bytes);
		build_header(t, h, hdr_lba, alt_lba, array_lba, part_crc32(array, bytes));
		r = vdisk_write(d, array_lba * ss, array, sectors * ss);
	}
	if (r == 0)
		r = vdisk_flush(d);
	if (r == 0) /* header last: until it is written the copy stays recognisably bad */
		r = vdisk_write(d, hdr_lba * ss, h, ss);
	if (r == 0)
		r = vdisk_flush(d);
	free(array);
	free(h);
	return r;
}

int part_gpt_repair(struct vdisk *d, const struct part_table *t)
{
	uint64_t n = ((uint64_t)t->gpt_entry_count * GPT_ENTRY_BYTES + t->sector_bytes - 1) /
		     t->sector_bytes;
	int r;

	if ((t->kind != PART_KIND_GPT && t->kind != PART_KIND_HYBRID) || !t->gpt_array)
		return vdisk_fail(EINVAL, "%s: no GPT to repair", vdisk_path(d));
	if (t->gpt_primary_valid && t->gpt_backup_valid)
		return 0;
	if (vdisk_size_bytes(d) != t->disk_sectors * t->sector_bytes)
		return vdisk_fail(ESTALE, "%s: the disk is not the one the table was read from",
				  vdisk_path(d));
	if (!t->gpt_primary_valid) {
		if (2 + n > t->first_usable_lba)
			return vdisk_fail(EINVAL, "primary entry array (LBA 2..%llu) would overlap "
					  "the first usable LBA %llu", (unsigned long long)(1 + n),
					  (unsigned long long)t->first_usable_lba);
		r = write_copy(d, t, 1, t->gpt_backup_lba, 2);
	} else {
		if (t->gpt_backup_lba < n + 1 || t->gpt_backup_lba - n <= t->last_usable_lba)
			return vdisk_fail(EINVAL, "backup entry array before LBA %llu would overlap "
					  "the last usable LBA %llu",
					  (unsigned long long)t->gpt_backup_lba,
					  (unsigned long long)t->last_usable_lba);
		r = write_copy(d, t, t->gpt_backup_lba, 1, t->gpt_backup_lba - n);
	}
	return r < 0 ? r : 1;
}
