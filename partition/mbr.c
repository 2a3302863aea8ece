/* partition/mbr.c - reading the MBR and the EBR chain of an extended partition; building
 * the protective MBR that fronts a GPT. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "partition/mbr-format.h"
#include "partition/part-int.h"

#define REC(field) offsetof(struct mbr_part_record, field)

/* A record's fields, decoded. */
struct mbr_rec {
	uint8_t status, type;
	uint32_t start, sectors;
	const uint8_t *chs_first, *chs_last;
};

static struct mbr_rec rec_at(const uint8_t *sector, int i)
{
	const uint8_t *p = sector + MBR_PART_OFF(i);
	return (struct mbr_rec){ .status = p[REC(status)], .type = p[REC(type)],
				 .start = get_le32(p + REC(start_lba)),
				 .sectors = get_le32(p + REC(size_sectors)),
				 .chs_first = p + REC(chs_first), .chs_last = p + REC(chs_last) };
}

static bool has_signature(const uint8_t *sector)
{
	return sector[MBR_SIG_OFF] == 0x55 && sector[MBR_SIG_OFF + 1] == 0xAA;
}

static int add_primary(struct part_table *t, int i, const struct mbr_rec *rec)
{
	uint64_t first = rec->start, last = first + rec->sectors - 1;

	if (first == 0)
		return vdisk_fail(EINVAL, "MBR entry %d (byte %zu) starts at LBA 0, the MBR itself",
				  i + 1, MBR_PART_OFF(i));
	if (last >= t->disk_sectors)
		return vdisk_fail(EINVAL, "MBR partition %d (LBA %llu..%llu) ends past the disk end "
				  "(last LBA %llu)", i + 1, (unsigned long long)first,
				  (unsigned long long)last, (unsigned long long)(t->disk_sectors - 1));
	if (part_mbr_type_is_extended(rec->type)) {
		if (t->ext_number)
			return vdisk_fail(EINVAL, "MBR entries %u and %d are both extended "
					  "partitions; only one is allowed", t->ext_number, i + 1);
		t->ext_number = (uint32_t)i + 1;
		t->ext_first_lba = first;
		t->ext_last_lba = last;
		return 0;
	}
	struct part_entry e = { .number = (uint32_t)i + 1, .first_lba = first, .last_lba = last,
				.mbr_type = rec->type,
				.bootable = rec->status == MBR_STATUS_ACTIVE };
	memcpy(e.chs_first, rec->chs_first, 3);
	memcpy(e.chs_last, rec->chs_last, 3);
	return part_table_add_entry(t, &e);
}

static bool ebr_seen(const struct part_table *t, uint64_t lba)
{
	for (size_t i = 0; i < t->n_ebrs; i++)
		if (t->ebr_lbas[i] == lba)
			return true;
	return false;
}

static int add_ebr(struct part_table *t, uint64_t lba)
{
	uint64_t *grown = realloc(t->ebr_lbas, (t->n_ebrs + 1) * sizeof(*grown));
	if (!grown)
		return vdisk_fail(ENOMEM, "out of memory");
	t->ebr_lbas = grown;
	t->ebr_lbas[t->n_ebrs++] = lba;
	return 0;
}

/* parts[0] of an EBR: the logical partition, relative to the EBR itself. */
static int add_logical(struct part_table *t, uint64_t ebr, const struct mbr_rec *rec,
		       uint32_t *number)
{
	uint64_t first = ebr + rec->start, last = first + rec->sectors - 1;

	if (rec->type == MBR_TYPE_EMPTY || rec->sectors == 0)
		return 0;
	if (part_mbr_type_is_extended(rec->type))
		return vdisk_fail(EINVAL, "EBR at LBA %llu: first entry has extended type 0x%02x; "
				  "nested extended partitions are not allowed",
				  (unsigned long long)ebr, rec->type);
	if (rec->start == 0 || first < t->ext_first_lba || last > t->ext_last_lba)
		return vdisk_fail(EINVAL, "logical partition %u (LBA %llu..%llu, from the EBR at LBA "
				  "%llu) is not inside the extended partition (LBA %llu..%llu) "
				  "after its EBR", *number, (unsigned long long)first,
				  (unsigned long long)last, (unsigned long long)ebr,
				  (unsigned long long)t->ext_first_lba,
				  (unsigned long long)t->ext_last_lba);
	if (*number > PART_MAX_NUMBER)
		return vdisk_fail(EINVAL, "more than %u logical partitions (EBR at LBA %llu): a GPT "
				  "of %u entries could not hold them", PART_MAX_NUMBER - 4,
				  (unsigned long long)ebr, PART_MAX_NUMBER);
	struct part_entry e = { .number = (*number)++, .first_lba = first, .last_lba = last,
				.mbr_type = rec->type, .is_logical = true,
				.bootable = rec->status == MBR_STATUS_ACTIVE };
	memcpy(e.chs_first, rec->chs_first, 3);
	memcpy(e.chs_last, rec->chs_last, 3);
	return part_table_add_entry(t, &e);
}

/* parts[1] of an EBR: the next EBR, relative to the extended partition's start. 0 = end. */
static int next_ebr(const struct part_table *t, uint64_t ebr, const struct mbr_rec *link,
		    uint64_t *next)
{
	*next = 0;
	if (link->type == MBR_TYPE_EMPTY)
		return 0;
	if (!part_mbr_type_is_extended(link->type))
		return vdisk_fail(EINVAL, "EBR at LBA %llu: link entry (byte %zu) has type 0x%02x, "
				  "expected 0x05, 0x0F or 0x85", (unsigned long long)ebr,
				  MBR_PART_OFF(1), link->type);
	uint64_t lba = t->ext_first_lba + link->start;
	if (lba > t->ext_last_lba)
		return vdisk_fail(EINVAL, "EBR at LBA %llu links to LBA %llu, outside the extended "
				  "partition's EBR area (LBA %llu..%llu)", (unsigned long long)ebr,
				  (unsigned long long)lba, (unsigned long long)t->ext_first_lba + 1,
				  (unsigned long long)t->ext_last_lba);
	if (ebr_seen(t, lba))
		return vdisk_fail(EINVAL, "EBR chain loops: the EBR at LBA %llu links back to the "
				  "EBR at LBA %llu", (unsigned long long)ebr, (unsigned long long)lba);
	*next = lba;
	return 0;
}

static int walk_ebrs(struct vdisk *d, struct part_table *t)
{
	uint8_t sector[MBR_BYTES];
	uint32_t number = 5;
	uint64_t ebr = t->ext_first_lba;
	int r = 0;

	while (ebr && r == 0) {
		if (t->n_ebrs >= PART_MAX_NUMBER)
			return vdisk_fail(EINVAL, "EBR chain longer than %u links (at LBA %llu)",
					  PART_MAX_NUMBER, (unsigned long long)ebr);
		r = vdisk_read(d, ebr * t->sector_bytes, sector, sizeof(sector));
		if (r < 0)
			return r;
		if (!has_signature(sector)) {
			/* fdisk leaves an empty extended partition without any EBR. */
			if (t->n_ebrs == 0 && vdisk_buf_is_zero(sector, sizeof(sector)))
				return part_note_add(&t->findings, &t->n_findings, "extended "
						     "partition %u holds no logical partitions",
						     t->ext_number);
			return vdisk_fail(EINVAL, "EBR at LBA %llu: no 0x55AA signature at byte %zu",
					  (unsigned long long)ebr, MBR_SIG_OFF);
		}
		r = add_ebr(t, ebr);
		if (r == 0) {
			struct mbr_rec data = rec_at(sector, 0), link = rec_at(sector, 1);
			r = add_logical(t, ebr, &data, &number);
			if (r == 0)
				r = next_ebr(t, ebr, &link, &ebr);
		}
	}
	return r;
}

/* Data partitions must not overlap each other, the extended container or an EBR. */
static int check_mbr_layout(const struct part_table *t)
{
	int r = part_check_overlaps(t);

	for (size_t i = 0; i < t->n_entries && r == 0; i++) {
		const struct part_entry *e = &t->entries[i];
		if (t->ext_number && !e->is_logical && e->first_lba <= t->ext_last_lba &&
		    e->last_lba >= t->ext_first_lba)
			return vdisk_fail(EINVAL, "partition %u (LBA %llu..%llu) overlaps extended "
					  "partition %u (LBA %llu..%llu)", e->number,
					  (unsigned long long)e->first_lba,
					  (unsigned long long)e->last_lba, t->ext_number,
					  (unsigned long long)t->ext_first_lba,
					  (unsigned long long)t->ext_last_lba);
		for (size_t k = 0; k < t->n_ebrs; k++)
			if (t->ebr_lbas[k] >= e->first_lba && t->ebr_lbas[k] <= e->last_lba)
				return vdisk_fail(EINVAL, "the EBR at LBA %llu lies inside "
						  "partition %u (LBA %llu..%llu)",
						  (unsigned long long)t->ebr_lbas[k], e->number,
						  (unsigned long long)e->first_lba,
						  (unsigned long long)e->last_lba);
	}
	return r;
}

static int note_stale_gpt(struct vdisk *d, struct part_table *t)
{
	if (!gpt_signature_at_lba1(d, t->sector_bytes))
		return 0;
	return part_note_add(&t->findings, &t->n_findings, "LBA 1 holds a GPT header but the MBR "
			     "has no 0xEE entry: the GPT is ignored (left over, or an interrupted "
			     "conversion)");
}

int mbr_read(struct vdisk *d, struct part_table *t)
{
	int r = 0;

	t->kind = PART_KIND_MBR;
	t->mbr_disk_signature = get_le32(t->mbr + MBR_DISKSIG_OFF);
	t->mbr_has_boot_code = !vdisk_buf_is_zero(t->mbr, MBR_BOOTCODE_BYTES);
	for (int i = 0; i < 4 && r == 0; i++) {
		struct mbr_rec rec = rec_at(t->mbr, i);
		if (rec.type != MBR_TYPE_EMPTY && rec.sectors != 0)
			r = add_primary(t, i, &rec);
	}
	if (r == 0 && t->ext_number)
		r = walk_ebrs(d, t);
	if (r == 0)
		r = check_mbr_layout(t);
	if (r == 0)
		r = note_stale_gpt(d, t);
	return r;
}

void mbr_build_protective(uint8_t *sector, uint32_t sector_bytes, const uint8_t orig[512],
			  uint64_t disk_sectors)
{
	uint8_t *p = sector + MBR_PART_OFF(0);
	uint64_t size = disk_sectors - 1;

	memset(sector, 0, sector_bytes);
	/* Kept as gdisk does: UEFI ignores it and the undo file does not depend on it. */
	memcpy(sector, orig, MBR_BOOTCODE_BYTES);
	/* UEFI Table 5-4: starting CHS 0/0/2, ending CHS 0xFFFFFF, LBA 1, size capped. */
	p[REC(chs_first) + 1] = 0x02;
	p[REC(type)] = MBR_TYPE_GPT_PROTECTIVE;
	memset(p + REC(chs_last), 0xFF, 3);
	put_le32(p + REC(start_lba), 1);
	put_le32(p + REC(size_sectors), size > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)size);
	sector[MBR_SIG_OFF] = 0x55;
	sector[MBR_SIG_OFF + 1] = 0xAA;
}
