/* vhdx/vhd.c - the VHD backend: open/validate, read, write, map, resize, info, close.
 *
 * Decisions (see shared/docs/vhdx-format.md section 2 for the facts behind them):
 * - Virtual size: the footer's current_size (Hyper-V, Disk2VHD, Azure, libvhdi), except
 *   when the creator is "vpc " or "qemu" and the geometry is not the maximum 65535/16/255:
 *   then C*H*S*512, because Virtual PC and old qemu sized the disk from CHS (qemu >= 10
 *   does the same). VDISK_OPEN_VHD_CHS forces the CHS reading. Both readings are in info.
 * - Block size: a power of two from 4 KiB to 256 MiB. Smaller blocks would make absurd
 *   BATs; qemu caps at 256 MiB too. BAT entries are capped at 2^24 (64 MiB in memory).
 * - The dynamic header and the BAT must sit on sector boundaries (every known writer puts
 *   them there); blocks must lie after both, inside the file and apart from each other.
 * - Dynamic blocks we allocate get an all-ones sector bitmap (like qemu and Disk2VHD): the
 *   whole block is present and its unwritten parts read as zeros. Differencing blocks get
 *   bits for written sectors; unwritten sectors keep reading the parent. Bits are set a
 *   whole bitmap byte (8 sectors, 4 KiB) at a time, the byte's other sectors copied in from
 *   the parent, because libvhdi misreads partly set bytes. Reads of dynamic disks ignore
 *   the bitmap (as qemu and libvhdi do), but writes into a dynamic block someone else left
 *   with a partial bitmap set bits the same way, so a reader that honours the bitmap
 *   (Windows) sees the data.
 * - New blocks go where the EOF footer was; the bitmap is placed so that the block's data
 *   starts on a 4 KiB boundary (as Windows does, section 2.6).
 * - Crash safety: see vhd_alloc_block() and vhd_flush(). Metadata (BAT entries, bitmaps of
 *   differencing blocks) reaches the file only after the data it points to is durable.
 * - Resize: fixed disks move the footer (shrinking only over zeros); dynamic and
 *   differencing disks grow the BAT, moving blocks out of its way (not parent locator text:
 *   -ENOTSUP), and shrink only when everything past the new end reads as zeros. The creator
 *   "vpc "/"qemu" is replaced by ours, so the new size is read as current_size.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd-format.h"

/* Differencing bitmaps modified since the last flush; a full cache forces a flush. */
#define VHD_BITMAP_CACHE_SLOTS 32u
/* Longest parent locator text we read (a UTF-16 PATH_MAX). */
#define VHD_MAX_LOCATOR_BYTES (2u * PATH_MAX)

struct vhd_bitmap_slot {
	bool used;
	uint32_t block;
	uint8_t *bits;
};

struct vhd_disk {
	struct vdisk base;
	struct vhd_footer footer;
	bool eof_footer_ok;      /* false: recovered from the copy at 0; rewrite on flush */
	bool copy_footer_dirty;  /* footer copy at offset 0 must be rewritten on flush */
	uint64_t footer_pos;     /* where the EOF footer is (or goes): end of used space */
	uint64_t file_bytes;
	/* dynamic and differencing only */
	struct vhd_dyn_header dyn;
	uint64_t dyn_offset;
	uint32_t *bat;
	uint32_t bat_entries;
	uint8_t *bat_dirty; /* one flag per 128-entry (512-byte) piece of the BAT */
	uint8_t *full;      /* dynamic: bit per block whose sector bitmap is all ones */
	uint32_t block_bytes, bitmap_bytes;
	uint8_t *scratch;   /* bitmap_bytes, for bitmaps read on the fly */
	bool data_dirty;
	bool meta_dirty;
	struct vhd_bitmap_slot cache[VHD_BITMAP_CACHE_SLOTS];
};

static int vhd_resize(struct vdisk *d, uint64_t new_size);
static int open_parent(struct vhd_disk *v);

static struct vhd_disk *to_vhd(struct vdisk *d)
{
	return (struct vhd_disk *)d;
}

static uint64_t round_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) / align * align;
}

/* ---- footer and header parsing (shared with vhd-check.c and vhd-create.c) ---- */

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += buf[i];
	return ~sum;
}

static void footer_decode(const uint8_t *b, struct vhd_footer *f)
{
	f->features = get_be32(b + VHD_FTR(features));
	f->version = get_be32(b + VHD_FTR(version));
	f->data_offset = get_be64(b + VHD_FTR(data_offset));
	f->timestamp = get_be32(b + VHD_FTR(timestamp));
	memcpy(f->creator_app, b + VHD_FTR(creator_app), 4);
	f->creator_version = get_be32(b + VHD_FTR(creator_version));
	f->creator_os = get_be32(b + VHD_FTR(creator_os));
	f->original_size = get_be64(b + VHD_FTR(original_size));
	f->current_size = get_be64(b + VHD_FTR(current_size));
	f->cylinders = get_be16(b + VHD_FTR(geometry));
	f->heads = b[VHD_FTR(geometry) + 2];
	f->sectors_per_track = b[VHD_FTR(geometry) + 3];
	f->disk_type = get_be32(b + VHD_FTR(disk_type));
	f->checksum = get_be32(b + VHD_FTR(checksum));
	memcpy(f->unique_id, b + VHD_FTR(unique_id), 16);
	f->saved_state = b[VHD_FTR(saved_state)];
}

int vhd_footer_parse(const uint8_t b[VHD_FOOTER_BYTES], const char *path, uint64_t where,
		     struct vhd_footer *f)
{
	if (memcmp(b, VHD_COOKIE, 8))
		return vdisk_fail(EINVAL, "%s: footer at offset %llu: cookie is not \"conectix\"",
				  path, (unsigned long long)where);
	footer_decode(b, f);
	uint32_t computed = vhd_checksum(b, VHD_FOOTER_BYTES, VHD_FTR(checksum));
	if (computed != f->checksum)
		return vdisk_fail(EINVAL, "%s: footer at offset %llu: footer checksum is 0x%08x, "
				  "computed 0x%08x", path, (unsigned long long)where,
				  f->checksum, computed);
	if (f->version >> 16 != 1)
		return vdisk_fail(ENOTSUP, "%s: footer at offset %llu: file format version "
				  "0x%08x, expected 0x00010000", path,
				  (unsigned long long)where, f->version);
	if (f->disk_type < VHD_DISK_FIXED || f->disk_type > VHD_DISK_DIFFERENCING)
		return vdisk_fail(ENOTSUP, "%s: footer at offset %llu: disk type %u, expected 2 "
				  "(fixed), 3 (dynamic) or 4 (differencing)", path,
				  (unsigned long long)where, f->disk_type);
	bool fixed = f->disk_type == VHD_DISK_FIXED;
	if (fixed && f->data_offset != VHD_FIXED_DATA_OFFSET && f->data_offset != 0xffffffffu)
		return vdisk_fail(EINVAL, "%s: footer at offset %llu: fixed disk has data offset "
				  "0x%llx, expected all ones", path, (unsigned long long)where,
				  (unsigned long long)f->data_offset);
	if (!fixed && (f->data_offset < VHD_FOOTER_BYTES || f->data_offset % VHD_SECTOR_BYTES))
		return vdisk_fail(EINVAL, "%s: footer at offset %llu: dynamic header offset %llu "
				  "is not a sector past the footer copy", path,
				  (unsigned long long)where, (unsigned long long)f->data_offset);
	return 0;
}

void vhd_footer_build(const struct vhd_footer *f, uint8_t b[VHD_FOOTER_BYTES])
{
	memset(b, 0, VHD_FOOTER_BYTES);
	memcpy(b, VHD_COOKIE, 8);
	put_be32(b + VHD_FTR(features), f->features);
	put_be32(b + VHD_FTR(version), f->version);
	put_be64(b + VHD_FTR(data_offset), f->data_offset);
	put_be32(b + VHD_FTR(timestamp), f->timestamp);
	memcpy(b + VHD_FTR(creator_app), f->creator_app, 4);
	put_be32(b + VHD_FTR(creator_version), f->creator_version);
	put_be32(b + VHD_FTR(creator_os), f->creator_os);
	put_be64(b + VHD_FTR(original_size), f->original_size);
	put_be64(b + VHD_FTR(current_size), f->current_size);
	put_be16(b + VHD_FTR(geometry), f->cylinders);
	b[VHD_FTR(geometry) + 2] = f->heads;
	b[VHD_FTR(geometry) + 3] = f->sectors_per_track;
	put_be32(b + VHD_FTR(disk_type), f->disk_type);
	memcpy(b + VHD_FTR(unique_id), f->unique_id, 16);
	b[VHD_FTR(saved_state)] = f->saved_state;
	put_be32(b + VHD_FTR(checksum), vhd_checksum(b, VHD_FOOTER_BYTES, VHD_FTR(checksum)));
}

static void dyn_decode(const uint8_t *b, struct vhd_dyn_header *h)
{
	h->table_offset = get_be64(b + VHD_DYN(table_offset));
	h->header_version = get_be32(b + VHD_DYN(header_version));
	h->max_table_entries = get_be32(b + VHD_DYN(max_table_entries));
	h->block_bytes = get_be32(b + VHD_DYN(block_size));
	h->checksum = get_be32(b + VHD_DYN(checksum));
	memcpy(h->parent_unique_id, b + VHD_DYN(parent_unique_id), 16);
	h->parent_timestamp = get_be32(b + VHD_DYN(parent_timestamp));
	memcpy(h->parent_name, b + VHD_DYN(parent_name), sizeof(h->parent_name));
	for (unsigned i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const uint8_t *l = b + VHD_DYN_LOCATOR(i);
		h->locators[i].code = get_be32(l + VHD_LOC(platform_code));
		h->locators[i].data_space = get_be32(l + VHD_LOC(data_space));
		h->locators[i].data_length = get_be32(l + VHD_LOC(data_length));
		h->locators[i].data_offset = get_be64(l + VHD_LOC(data_offset));
	}
}

int vhd_dyn_header_parse(const uint8_t b[VHD_DYN_HEADER_BYTES], const char *path,
			 uint64_t where, struct vhd_dyn_header *h)
{
	unsigned long long w = (unsigned long long)where;

	if (memcmp(b, VHD_DYN_COOKIE, 8))
		return vdisk_fail(EINVAL, "%s: dynamic header at offset %llu: cookie is not "
				  "\"cxsparse\"", path, w);
	dyn_decode(b, h);
	uint32_t computed = vhd_checksum(b, VHD_DYN_HEADER_BYTES, VHD_DYN(checksum));
	if (computed != h->checksum)
		return vdisk_fail(EINVAL, "%s: dynamic header at offset %llu: dynamic header "
				  "checksum is 0x%08x, computed 0x%08x", path, w, h->checksum,
				  computed);
	if (h->header_version >> 16 != 1)
		return vdisk_fail(ENOTSUP, "%s: dynamic header at offset %llu: header version "
				  "0x%08x, expected 0x00010000", path, w, h->header_version);
	uint32_t bs = h->block_bytes;
	if (bs < VHD_MIN_BLOCK_BYTES || bs > VHD_MAX_BLOCK_BYTES || (bs & (bs - 1)))
		return vdisk_fail(EINVAL, "%s: dynamic header at offset %llu: block size %u is "
				  "not a power of two from %u to %u", path, w, bs,
				  VHD_MIN_BLOCK_BYTES, VHD_MAX_BLOCK_BYTES);
	if (h->max_table_entries == 0 || h->max_table_entries > VHD_MAX_TABLE_ENTRIES)
		return vdisk_fail(EINVAL, "%s: dynamic header at offset %llu: max table entries "
				  "%u, expected 1 to %u", path, w, h->max_table_entries,
				  VHD_MAX_TABLE_ENTRIES);
	if (h->table_offset % VHD_SECTOR_BYTES || h->table_offset < VHD_FOOTER_BYTES)
		return vdisk_fail(EINVAL, "%s: dynamic header at offset %llu: table offset %llu "
				  "is not a sector offset past the footer copy", path, w,
				  (unsigned long long)h->table_offset);
	return 0;
}

void vhd_dyn_header_build(const struct vhd_dyn_header *h, uint8_t b[VHD_DYN_HEADER_BYTES])
{
	memset(b, 0, VHD_DYN_HEADER_BYTES);
	memcpy(b, VHD_DYN_COOKIE, 8);
	put_be64(b + VHD_DYN(data_offset), UINT64_MAX);
	put_be64(b + VHD_DYN(table_offset), h->table_offset);
	put_be32(b + VHD_DYN(header_version), h->header_version);
	put_be32(b + VHD_DYN(max_table_entries), h->max_table_entries);
	put_be32(b + VHD_DYN(block_size), h->block_bytes);
	memcpy(b + VHD_DYN(parent_unique_id), h->parent_unique_id, 16);
	put_be32(b + VHD_DYN(parent_timestamp), h->parent_timestamp);
	memcpy(b + VHD_DYN(parent_name), h->parent_name, sizeof(h->parent_name));
	for (unsigned i = 0; i < VHD_LOCATOR_COUNT; i++) {
		uint8_t *l = b + VHD_DYN_LOCATOR(i);
		put_be32(l + VHD_LOC(platform_code), h->locators[i].code);
		put_be32(l + VHD_LOC(data_space), h->locators[i].data_space);
		put_be32(l + VHD_LOC(data_length), h->locators[i].data_length);
		put_be64(l + VHD_LOC(data_offset), h->locators[i].data_offset);
	}
	put_be32(b + VHD_DYN(checksum), vhd_checksum(b, VHD_DYN_HEADER_BYTES, VHD_DYN(checksum)));
}

/* Spec appendix "CHS Calculation"; rounds down, so C*H*S*512 <= size. */
void vhd_chs_from_bytes(uint64_t size_bytes, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
	uint64_t ts = size_bytes / VHD_SECTOR_BYTES, cth;
	uint32_t s, h;

	if (ts > VHD_CHS_MAX_SECTORS)
		ts = VHD_CHS_MAX_SECTORS;
	if (ts >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = ts / s;
	} else {
		s = 17;
		cth = ts / s;
		h = (uint32_t)((cth + 1023) / 1024);
		if (h < 4)
			h = 4;
		if (cth >= h * 1024ull || h > 16) {
			s = 31;
			h = 16;
			cth = ts / s;
		}
		if (cth >= h * 1024ull) {
			s = 63;
			h = 16;
			cth = ts / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}

uint64_t vhd_chs_bytes(const struct vhd_footer *f)
{
	return (uint64_t)f->cylinders * f->heads * f->sectors_per_track * VHD_SECTOR_BYTES;
}

uint64_t vhd_virtual_size(const struct vhd_footer *f, unsigned open_flags)
{
	bool max_chs = f->cylinders == 65535 && f->heads == 16 && f->sectors_per_track == 255;
	bool chs_creator = !memcmp(f->creator_app, "vpc ", 4) || !memcmp(f->creator_app, "qemu", 4);

	if ((open_flags & VDISK_OPEN_VHD_CHS) || (chs_creator && !max_chs))
		return vhd_chs_bytes(f);
	return f->current_size;
}

uint32_t vhd_bitmap_bytes(uint32_t block_bytes)
{
	return (uint32_t)round_up(block_bytes / VHD_SECTOR_BYTES / 8, VHD_SECTOR_BYTES);
}

void vhd_uuid_to_str(const uint8_t u[16], char out[40])
{
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

int vhd_uuid_random(uint8_t u[16])
{
	int r = vdisk_guid_random(u);
	if (r == 0)
		u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 in RFC byte order */
	return r;
}

/* ---- metadata I/O ---- */

static int write_footer_at(struct vhd_disk *v, uint64_t off)
{
	uint8_t buf[VHD_FOOTER_BYTES];

	vhd_footer_build(&v->footer, buf);
	return vdisk_pwrite(v->base.fd, v->base.path, buf, sizeof(buf), off);
}

static int write_dyn_header(struct vhd_disk *v)
{
	uint8_t buf[VHD_DYN_HEADER_BYTES];

	vhd_dyn_header_build(&v->dyn, buf);
	return vdisk_pwrite(v->base.fd, v->base.path, buf, sizeof(buf), v->dyn_offset);
}

static int sync_file(struct vhd_disk *v)
{
	if (fdatasync(v->base.fd) < 0)
		return vdisk_fail(errno, "%s: fdatasync failed: %s", v->base.path, strerror(errno));
	return 0;
}

/* Write BAT entries [first, first + count) to the file. */
static int write_bat_range(struct vhd_disk *v, uint32_t first, uint32_t count)
{
	uint8_t buf[VHD_SECTOR_BYTES];

	while (count > 0) {
		uint32_t n = count < 128 ? count : 128;
		for (uint32_t i = 0; i < n; i++)
			put_be32(buf + 4 * i, v->bat[first + i]);
		int r = vdisk_pwrite(v->base.fd, v->base.path, buf, 4 * n,
				     v->dyn.table_offset + 4ull * first);
		if (r < 0)
			return r;
		first += n;
		count -= n;
	}
	return 0;
}

static uint64_t block_bitmap_offset(const struct vhd_disk *v, uint32_t blk)
{
	return (uint64_t)v->bat[blk] * VHD_SECTOR_BYTES;
}

static uint64_t block_data_offset(const struct vhd_disk *v, uint32_t blk)
{
	return block_bitmap_offset(v, blk) + v->bitmap_bytes;
}

/* Write the dirty BAT pieces and differencing bitmaps (the caller has made the data they
 * point to durable), and repair the EOF footer if it was recovered from the copy. */
static int write_metadata(struct vhd_disk *v)
{
	int r = 0;

	for (unsigned i = 0; i < VHD_BITMAP_CACHE_SLOTS && r == 0; i++) {
		struct vhd_bitmap_slot *s = &v->cache[i];
		if (!s->used)
			continue;
		r = vdisk_pwrite(v->base.fd, v->base.path, s->bits, v->bitmap_bytes,
				 block_bitmap_offset(v, s->block));
		s->used = false;
	}
	for (uint32_t p = 0; r == 0 && p < (v->bat_entries + 127) / 128; p++) {
		if (!v->bat_dirty[p])
			continue;
		uint32_t first = p * 128, left = v->bat_entries - first;
		r = write_bat_range(v, first, left < 128 ? left : 128);
		v->bat_dirty[p] = 0;
	}
	if (r == 0 && !v->eof_footer_ok) {
		r = write_footer_at(v, v->footer_pos);
		v->eof_footer_ok = r == 0;
	}
	if (r == 0 && v->copy_footer_dirty) {
		r = write_footer_at(v, 0);
		v->copy_footer_dirty = r != 0;
	}
	return r;
}

/* Order: data (and newly allocated blocks and their EOF footer) durable first, then the
 * metadata that makes them reachable, then durable again so the flush is complete. */
static int vhd_flush(struct vdisk *d)
{
	struct vhd_disk *v = to_vhd(d);
	int r;

	if (!v->data_dirty && !v->meta_dirty)
		return 0;
	r = sync_file(v);
	if (r == 0 && v->meta_dirty) {
		r = write_metadata(v);
		if (r == 0)
			r = sync_file(v);
	}
	if (r == 0)
		v->data_dirty = v->meta_dirty = false;
	return r;
}

/* ---- differencing bitmaps ---- */

static bool bit_is_set(const uint8_t *bits, uint32_t sector)
{
	return bits[sector / 8] & (0x80u >> (sector % 8)); /* MSB first */
}

static struct vhd_bitmap_slot *cached_bitmap(struct vhd_disk *v, uint32_t blk)
{
	for (unsigned i = 0; i < VHD_BITMAP_CACHE_SLOTS; i++)
		if (v->cache[i].used && v->cache[i].block == blk)
			return &v->cache[i];
	return NULL;
}

/* The bitmap of allocated block blk, from the cache or read into v->scratch. */
static int get_bitmap(struct vhd_disk *v, uint32_t blk, const uint8_t **bits)
{
	struct vhd_bitmap_slot *s = cached_bitmap(v, blk);
	if (s) {
		*bits = s->bits;
		return 0;
	}
	*bits = v->scratch;
	return vdisk_pread(v->base.fd, v->base.path, v->scratch, v->bitmap_bytes,
			   block_bitmap_offset(v, blk));
}

/* A cache slot holding blk's bitmap, to be modified; fresh = the block is new (zeros). */
static int slot_for_update(struct vhd_disk *v, uint32_t blk, bool fresh,
			   struct vhd_bitmap_slot **out)
{
	struct vhd_bitmap_slot *s = cached_bitmap(v, blk);
	int r = 0;

	if (!s) {
		unsigned i = 0;
		while (i < VHD_BITMAP_CACHE_SLOTS && v->cache[i].used)
			i++;
		if (i == VHD_BITMAP_CACHE_SLOTS) {
			r = vhd_flush(&v->base);
			i = 0;
		}
		s = &v->cache[i];
		if (r == 0 && fresh)
			memset(s->bits, 0, v->bitmap_bytes);
		else if (r == 0)
			r = vdisk_pread(v->base.fd, v->base.path, s->bits, v->bitmap_bytes,
					block_bitmap_offset(v, blk));
		if (r < 0)
			return r;
		s->used = true;
		s->block = blk;
	}
	*out = s;
	return 0;
}

/* ---- reading ---- */

static int read_parent(struct vhd_disk *v, uint64_t off, uint8_t *buf, size_t len)
{
	struct vdisk *p = v->base.parent;
	uint64_t psize = p ? p->size_bytes : 0;
	size_t from_parent = off >= psize ? 0 : (size_t)(psize - off < len ? psize - off : len);

	memset(buf + from_parent, 0, len - from_parent);
	return from_parent ? vdisk_read(p, off, buf, from_parent) : 0;
}

/* Part of one allocated differencing block: runs of sectors go to the file or the parent
 * according to the sector bitmap. */
static int read_diff_piece(struct vhd_disk *v, uint32_t blk, uint32_t in_blk, uint8_t *buf,
			   size_t len)
{
	const uint8_t *bits;
	int r = get_bitmap(v, blk, &bits);
	uint64_t blk_off = (uint64_t)blk * v->block_bytes;

	while (r == 0 && len > 0) {
		uint32_t sector = in_blk / VHD_SECTOR_BYTES;
		bool mine = bit_is_set(bits, sector);
		size_t n = 0;
		while (n < len && bit_is_set(bits, (uint32_t)((in_blk + n) / VHD_SECTOR_BYTES)) == mine) {
			size_t step = VHD_SECTOR_BYTES - (in_blk + n) % VHD_SECTOR_BYTES;
			n += step < len - n ? step : len - n;
		}
		if (mine)
			r = vdisk_pread(v->base.fd, v->base.path, buf, n,
					block_data_offset(v, blk) + in_blk);
		else
			r = read_parent(v, blk_off + in_blk, buf, n);
		buf += n;
		in_blk += (uint32_t)n;
		len -= n;
	}
	return r;
}

static int vhd_read(struct vdisk *d, uint64_t off, void *buf, size_t len)
{
	struct vhd_disk *v = to_vhd(d);
	uint8_t *p = buf;
	int r = 0;

	if (d->subformat == VDISK_SUB_FIXED)
		return vdisk_pread(d->fd, d->path, buf, len, off);
	while (r == 0 && len > 0) {
		uint32_t blk = (uint32_t)(off / v->block_bytes);
		uint32_t in_blk = (uint32_t)(off % v->block_bytes);
		size_t n = v->block_bytes - in_blk < len ? v->block_bytes - in_blk : len;
		bool diff = d->subformat == VDISK_SUB_DIFFERENCING;
		if (v->bat[blk] == VHD_BAT_UNUSED && diff)
			r = read_parent(v, off, p, n);
		else if (v->bat[blk] == VHD_BAT_UNUSED)
			memset(p, 0, n);
		else if (diff)
			r = read_diff_piece(v, blk, in_blk, p, n);
		else
			r = vdisk_pread(d->fd, d->path, p, n, block_data_offset(v, blk) + in_blk);
		p += n;
		off += n;
		len -= n;
	}
	return r;
}

/* ---- writing ---- */

static bool block_known_full(const struct vhd_disk *v, uint32_t blk)
{
	return v->full[blk / 8] & (1u << (blk % 8));
}

static void mark_block_full(struct vhd_disk *v, uint32_t blk)
{
	v->full[blk / 8] |= (uint8_t)(1u << (blk % 8));
}

/* Append a block where the EOF footer is. Crash-safe order (every step leaves a file that
 * opens and reads the data acknowledged by the last flush):
 *   1. write the footer at the new end: the file is again ended by a valid footer;
 *   2. write the block's initial bitmap (dynamic: all ones; differencing: zeros), which
 *      also overwrites the old footer, or zero the gap left for 4 KiB alignment;
 *   3. point the BAT entry at the block in memory only; the entry reaches the file in
 *      vhd_flush() after an fdatasync has made the block's data durable.
 * The data area between is left as a hole, which reads as zeros. */
static int vhd_alloc_block(struct vhd_disk *v, uint32_t blk)
{
	uint64_t old = v->footer_pos;
	uint64_t data = round_up(old + v->bitmap_bytes, 4096);
	uint64_t bitmap = data - v->bitmap_bytes, end = data + v->block_bytes;
	int r;

	if (bitmap / VHD_SECTOR_BYTES >= VHD_BAT_UNUSED)
		return vdisk_fail(ENOSPC, "%s: file would grow past what a BAT entry can address",
				  v->base.path);
	size_t head = (size_t)(bitmap - old) + v->bitmap_bytes; /* gap + bitmap */
	uint8_t *b = calloc(1, head);
	if (!b)
		return vdisk_fail(ENOMEM, "out of memory");
	if (v->base.subformat == VDISK_SUB_DYNAMIC)
		memset(b + (bitmap - old), 0xff, v->bitmap_bytes);
	r = write_footer_at(v, end);
	if (r == 0)
		r = vdisk_pwrite(v->base.fd, v->base.path, b, head, old);
	free(b);
	if (r < 0)
		return r;
	v->footer_pos = end;
	v->eof_footer_ok = true;
	v->bat[blk] = (uint32_t)(bitmap / VHD_SECTOR_BYTES);
	v->bat_dirty[blk / 128] = 1;
	if (v->base.subformat == VDISK_SUB_DYNAMIC)
		mark_block_full(v, blk);
	v->data_dirty = v->meta_dirty = true;
	return 0;
}

/* Sectors per bitmap byte: bits are set a whole byte (4 KiB) at a time. libvhdi 20210425
 * misreads a byte that is only partly set after a 0xff byte (it takes the clear sectors
 * from the child), and Windows writes whole 4 KiB pages anyway. */
#define VHD_BITMAP_GROUP_SECTORS 8u

/* Before a write of block bytes [in_blk, end) marks the bitmap group of `sector` present,
 * copy in from the parent (zeros for dynamic disks) every sector of the group whose bit is
 * clear and which the write does not cover completely. */
static int fill_group_from_parent(struct vhd_disk *v, uint32_t blk, uint32_t sector,
				  const uint8_t *bits, uint32_t in_blk, uint32_t end)
{
	uint8_t buf[VHD_BITMAP_GROUP_SECTORS * VHD_SECTOR_BYTES];
	uint32_t first = sector - sector % VHD_BITMAP_GROUP_SECTORS;
	bool have = false;
	int r = 0;

	for (uint32_t s = first; r == 0 && s < first + VHD_BITMAP_GROUP_SECTORS; s++) {
		uint32_t lo = s * VHD_SECTOR_BYTES, hi = lo + VHD_SECTOR_BYTES;
		if (bit_is_set(bits, s) || (in_blk <= lo && hi <= end))
			continue;
		if (!have) {
			uint64_t voff = (uint64_t)blk * v->block_bytes +
				(uint64_t)first * VHD_SECTOR_BYTES;
			r = read_parent(v, voff, buf, sizeof(buf));
			have = true;
		}
		if (r == 0)
			r = vdisk_pwrite(v->base.fd, v->base.path,
					 buf + (s - first) * VHD_SECTOR_BYTES, VHD_SECTOR_BYTES,
					 block_data_offset(v, blk) + lo);
	}
	return r;
}

/* Write into an allocated block and mark its sectors as present in the bitmap
 * (differencing blocks, and dynamic blocks whose bitmap is not all ones). */
static int write_bitmap_piece(struct vhd_disk *v, uint32_t blk, uint32_t in_blk,
			      const uint8_t *buf, size_t len, bool fresh)
{
	struct vhd_bitmap_slot *s;
	uint32_t end = in_blk + (uint32_t)len;
	uint32_t g0 = in_blk / VHD_SECTOR_BYTES / VHD_BITMAP_GROUP_SECTORS;
	uint32_t g1 = (end - 1) / VHD_SECTOR_BYTES / VHD_BITMAP_GROUP_SECTORS;
	int r = slot_for_update(v, blk, fresh, &s);

	if (r == 0)
		r = fill_group_from_parent(v, blk, g0 * VHD_BITMAP_GROUP_SECTORS, s->bits,
					   in_blk, end);
	if (r == 0 && g1 != g0)
		r = fill_group_from_parent(v, blk, g1 * VHD_BITMAP_GROUP_SECTORS, s->bits,
					   in_blk, end);
	if (r == 0)
		r = vdisk_pwrite(v->base.fd, v->base.path, buf, len,
				 block_data_offset(v, blk) + in_blk);
	if (r < 0)
		return r;
	memset(s->bits + g0, 0xff, g1 - g0 + 1);
	v->meta_dirty = true;
	return 0;
}

/* A dynamic block: straight to the data area when its bitmap is all ones (always so for
 * blocks we allocated), else through the bitmap. */
static int write_dynamic_piece(struct vhd_disk *v, uint32_t blk, uint32_t in_blk,
			       const uint8_t *buf, size_t len)
{
	const uint8_t *bits;
	int r = 0;

	if (!block_known_full(v, blk)) {
		uint32_t bytes = v->block_bytes / VHD_SECTOR_BYTES / 8;
		r = get_bitmap(v, blk, &bits);
		if (r < 0)
			return r;
		bool full = true;
		for (uint32_t i = 0; i < bytes && full; i++)
			full = bits[i] == 0xff;
		if (!full)
			return write_bitmap_piece(v, blk, in_blk, buf, len, false);
		mark_block_full(v, blk);
	}
	return vdisk_pwrite(v->base.fd, v->base.path, buf, len, block_data_offset(v, blk) + in_blk);
}

static int vhd_write(struct vdisk *d, uint64_t off, const void *buf, size_t len)
{
	struct vhd_disk *v = to_vhd(d);
	const uint8_t *p = buf;
	int r = 0;

	v->data_dirty = true;
	if (d->subformat == VDISK_SUB_FIXED)
		return vdisk_pwrite(d->fd, d->path, buf, len, off);
	while (r == 0 && len > 0) {
		uint32_t blk = (uint32_t)(off / v->block_bytes);
		uint32_t in_blk = (uint32_t)(off % v->block_bytes);
		size_t n = v->block_bytes - in_blk < len ? v->block_bytes - in_blk : len;
		bool fresh = v->bat[blk] == VHD_BAT_UNUSED;
		if (fresh)
			r = vhd_alloc_block(v, blk);
		if (r == 0 && d->subformat == VDISK_SUB_DIFFERENCING)
			r = write_bitmap_piece(v, blk, in_blk, p, n, fresh);
		else if (r == 0)
			r = write_dynamic_piece(v, blk, in_blk, p, n);
		p += n;
		off += n;
		len -= n;
	}
	return r;
}

/* ---- map ---- */

static int map_fixed(struct vdisk *d, uint64_t off, uint64_t max_len, uint64_t *run,
		     unsigned *state)
{
	/* Holes in the data area read as zeros, as for raw files. */
	off_t data = lseek(d->fd, (off_t)off, SEEK_DATA);
	uint64_t end = off + max_len;

	*state = VDISK_EXTENT_DATA;
	if (data < 0 && errno == ENXIO) {
		*state = VDISK_EXTENT_ZERO;
	} else if (data >= 0 && (uint64_t)data > off) {
		*state = VDISK_EXTENT_ZERO;
		end = (uint64_t)data;
	} else if (data >= 0) {
		off_t hole = lseek(d->fd, (off_t)off, SEEK_HOLE);
		end = hole < 0 ? end : (uint64_t)hole;
	}
	*run = end - off < max_len ? end - off : max_len;
	return 0;
}

static int vhd_map(struct vdisk *d, uint64_t off, uint64_t max_len, uint64_t *run,
		   unsigned *state)
{
	struct vhd_disk *v = to_vhd(d);

	if (d->subformat == VDISK_SUB_FIXED)
		return map_fixed(d, off, max_len, run, state);
	uint32_t blk = (uint32_t)(off / v->block_bytes);
	bool allocated = v->bat[blk] != VHD_BAT_UNUSED;
	uint64_t end = (uint64_t)(blk + 1) * v->block_bytes;
	if (!allocated && d->subformat == VDISK_SUB_DIFFERENCING) {
		struct vdisk *p = d->parent;
		uint64_t lim = end - off < max_len ? end - off : max_len;
		if (p && off < p->size_bytes)
			return vdisk_map(p, off, lim, run, state);
		*state = VDISK_EXTENT_ZERO;
		*run = lim;
		return 0;
	}
	/* Merge neighbours in the same state (only DATA, or ZERO on a dynamic disk). */
	while (end - off < max_len && blk + 1 < v->bat_entries &&
	       (v->bat[blk + 1] != VHD_BAT_UNUSED) == allocated &&
	       (allocated || d->subformat == VDISK_SUB_DYNAMIC)) {
		blk++;
		end += v->block_bytes;
	}
	*state = allocated ? VDISK_EXTENT_DATA : VDISK_EXTENT_ZERO;
	*run = end - off < max_len ? end - off : max_len;
	return 0;
}

/* ---- info and close ---- */

static int vhd_info(struct vdisk *d, struct vdisk_info *out)
{
	struct vhd_disk *v = to_vhd(d);
	const struct vhd_footer *f = &v->footer;
	char app[5];
	uint64_t blocks = 0;

	memcpy(app, f->creator_app, 4);
	app[4] = 0;
	for (int i = 0; i < 4; i++)
		if (app[i] && (app[i] < 0x20 || app[i] > 0x7e))
			app[i] = '?';
	snprintf(out->creator, sizeof(out->creator), "%s %u.%u", app, f->creator_version >> 16,
		 f->creator_version & 0xffff);
	vhd_uuid_to_str(f->unique_id, out->disk_id);
	out->block_bytes = v->block_bytes;
	for (uint32_t i = 0; v->bat && i < v->bat_entries; i++)
		blocks += v->bat[i] != VHD_BAT_UNUSED;
	if (v->bat)
		out->allocated_bytes = blocks * v->block_bytes;
	out->chs_cylinders = f->cylinders;
	out->chs_heads = f->heads;
	out->chs_sectors = f->sectors_per_track;
	out->vhd_current_size_bytes = f->current_size;
	out->vhd_chs_size_bytes = vhd_chs_bytes(f);
	return 0;
}

static void vhd_close(struct vdisk *d)
{
	struct vhd_disk *v = to_vhd(d);

	if (!v)
		return;
	for (unsigned i = 0; i < VHD_BITMAP_CACHE_SLOTS; i++)
		free(v->cache[i].bits);
	free(v->bat);
	free(v->bat_dirty);
	free(v->full);
	free(v->scratch);
	free(v);
}

static const struct vdisk_ops vhd_ops = {
	.name = "vhd",
	.read = vhd_read,
	.write = vhd_write,
	.flush = vhd_flush,
	.map = vhd_map,
	.resize = vhd_resize,
	.info = vhd_info,
	.close = vhd_close,
};

int vhd_disk_identity(const struct vdisk *d, uint8_t uuid[16], uint32_t *timestamp)
{
	if (d->ops != &vhd_ops)
		return vdisk_fail(EINVAL, "%s: parent of a differencing VHD must be a VHD, not %s",
				  d->path, d->ops->name);
	const struct vhd_disk *v = (const struct vhd_disk *)d;
	memcpy(uuid, v->footer.unique_id, 16);
	*timestamp = v->footer.timestamp;
	return 0;
}

/* ---- opening ---- */

/* A footer copy at 0 that differs from the EOF footer (damaged, or an update interrupted
 * between the two) is rewritten at the first flush of a read-write open. */
static int compare_footer_copy(struct vhd_disk *v, const uint8_t eof[VHD_FOOTER_BYTES])
{
	uint8_t copy[VHD_FOOTER_BYTES];
	int r = vdisk_pread(v->base.fd, v->base.path, copy, sizeof(copy), 0);

	if (r == 0)
		v->copy_footer_dirty = memcmp(copy, eof, sizeof(copy)) != 0;
	return r;
}

/* The EOF footer, or for dynamic/differencing disks the copy at 0 when the EOF one is
 * damaged (the error about the EOF footer is the one reported if both fail). */
static int load_footer(struct vhd_disk *v)
{
	uint8_t buf[VHD_FOOTER_BYTES];
	char first_error[1024];
	const char *path = v->base.path;
	uint64_t eof = v->file_bytes - VHD_FOOTER_BYTES;
	struct vhd_footer copy;

	int r = vdisk_pread(v->base.fd, path, buf, sizeof(buf), eof);
	if (r == 0)
		r = vhd_footer_parse(buf, path, eof, &v->footer);
	if (r == 0) {
		v->eof_footer_ok = true;
		v->footer_pos = eof;
		return v->footer.disk_type == VHD_DISK_FIXED ? 0 : compare_footer_copy(v, buf);
	}
	snprintf(first_error, sizeof(first_error), "%s", vdisk_errmsg());
	int r0 = vdisk_pread(v->base.fd, path, buf, sizeof(buf), 0);
	if (r0 == 0)
		r0 = vhd_footer_parse(buf, path, 0, &copy);
	if (r0 < 0 || copy.disk_type == VHD_DISK_FIXED)
		return vdisk_fail(r, "%s", first_error);
	v->footer = copy;
	v->eof_footer_ok = false;
	v->footer_pos = round_up(v->file_bytes, VHD_SECTOR_BYTES);
	return 0;
}

static int check_size(struct vhd_disk *v)
{
	uint64_t size = vhd_virtual_size(&v->footer, v->base.flags);
	const char *path = v->base.path;

	if (size == 0 || size % VHD_SECTOR_BYTES || size > VHD_MAX_SIZE_BYTES)
		return vdisk_fail(EINVAL, "%s: footer: virtual size %llu (current size %llu, CHS "
				  "%u/%u/%u) is not a positive multiple of 512 up to 2040 GiB",
				  path, (unsigned long long)size,
				  (unsigned long long)v->footer.current_size, v->footer.cylinders,
				  v->footer.heads, v->footer.sectors_per_track);
	if (v->footer.disk_type == VHD_DISK_FIXED && size > v->footer_pos)
		return vdisk_fail(EINVAL, "%s: fixed disk of %llu bytes but only %llu bytes of "
				  "data before the footer (truncated?)", path,
				  (unsigned long long)size, (unsigned long long)v->footer_pos);
	v->base.size_bytes = size;
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int load_dyn_header(struct vhd_disk *v)
{
	uint8_t buf[VHD_DYN_HEADER_BYTES];
	const char *path = v->base.path;
	uint64_t off = v->footer.data_offset;

	if (off + VHD_DYN_HEADER_BYTES > v->footer_pos)
		return vdisk_fail(EINVAL, "%s: footer: dynamic header offset %llu is past the end "
				  "of the data (%llu)", path, (unsigned long long)off,
				  (unsigned long long)v->footer_pos);
	int r = vdisk_pread(v->base.fd, path, buf, sizeof(buf), off);
	if (r == 0)
		r = vhd_dyn_header_parse(buf, path, off, &v->dyn);
	if (r < 0)
		return r;
	v->dyn_offset = off;
	v->block_bytes = v->dyn.block_bytes;
	v->bitmap_bytes = vhd_bitmap_bytes(v->block_bytes);
	uint64_t table = v->dyn.table_offset, table_bytes = 4ull * v->dyn.max_table_entries;
	if (table + table_bytes > v->footer_pos)
		return vdisk_fail(EINVAL, "%s: dynamic header: BAT at offset %llu with %u entries "
				  "runs past the end of the data (%llu)", path,
				  (unsigned long long)table, v->dyn.max_table_entries,
				  (unsigned long long)v->footer_pos);
	if (ranges_overlap(table, table_bytes, off, VHD_DYN_HEADER_BYTES))
		return vdisk_fail(EINVAL, "%s: dynamic header: BAT at offset %llu overlaps the "
				  "dynamic header at %llu", path, (unsigned long long)table,
				  (unsigned long long)off);
	uint64_t needed = (v->base.size_bytes + v->block_bytes - 1) / v->block_bytes;
	if (v->dyn.max_table_entries < needed)
		return vdisk_fail(EINVAL, "%s: dynamic header: max table entries %u cannot cover "
				  "the %llu-byte disk (%llu blocks of %u bytes needed)", path,
				  v->dyn.max_table_entries, (unsigned long long)v->base.size_bytes,
				  (unsigned long long)needed, v->block_bytes);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Every allocated block lies after the headers and BAT, inside the file, and apart from
 * every other block. */
static int validate_bat(struct vhd_disk *v)
{
	uint64_t span = (uint64_t)v->bitmap_bytes + v->block_bytes;
	uint64_t meta_end = v->dyn.table_offset + 4ull * v->bat_entries;
	uint32_t n = 0, i;
	int r = 0;

	if (v->dyn_offset + VHD_DYN_HEADER_BYTES > meta_end)
		meta_end = v->dyn_offset + VHD_DYN_HEADER_BYTES;
	uint32_t *sorted = malloc(sizeof(uint32_t) * v->bat_entries);
	if (!sorted)
		return vdisk_fail(ENOMEM, "out of memory");
	for (i = 0; i < v->bat_entries && r == 0; i++) {
		uint64_t off = (uint64_t)v->bat[i] * VHD_SECTOR_BYTES;
		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		if (off < meta_end || off + span > v->footer_pos)
			r = vdisk_fail(EINVAL, "%s: BAT entry %u: block at offset %llu (%llu bytes) "
				       "is not between the end of the headers and BAT (%llu) and "
				       "the footer (%llu)", v->base.path, i,
				       (unsigned long long)off, (unsigned long long)span,
				       (unsigned long long)meta_end,
				       (unsigned long long)v->footer_pos);
		sorted[n++] = v->bat[i];
	}
	if (r == 0)
		qsort(sorted, n, sizeof(uint32_t), cmp_u32);
	for (i = 1; r == 0 && i < n; i++)
		if ((uint64_t)(sorted[i] - sorted[i - 1]) * VHD_SECTOR_BYTES < span)
			r = vdisk_fail(EINVAL, "%s: BAT: blocks at offsets %llu and %llu overlap "
				       "(each spans %llu bytes)", v->base.path,
				       (unsigned long long)sorted[i - 1] * VHD_SECTOR_BYTES,
				       (unsigned long long)sorted[i] * VHD_SECTOR_BYTES,
				       (unsigned long long)span);
	free(sorted);
	return r;
}

static int load_bat(struct vhd_disk *v)
{
	uint32_t n = v->dyn.max_table_entries;
	size_t bytes = 4u * (size_t)n;
	uint8_t *raw = malloc(bytes);
	int r;

	v->bat_entries = n;
	v->bat = malloc(sizeof(uint32_t) * n);
	v->bat_dirty = calloc((n + 127) / 128, 1);
	v->full = calloc((n + 7) / 8, 1);
	v->scratch = malloc(v->bitmap_bytes);
	if (!raw || !v->bat || !v->bat_dirty || !v->full || !v->scratch) {
		r = vdisk_fail(ENOMEM, "out of memory for a BAT of %u entries", n);
		goto free_raw;
	}
	for (unsigned i = 0; i < VHD_BITMAP_CACHE_SLOTS; i++) {
		v->cache[i].bits = malloc(v->bitmap_bytes);
		if (!v->cache[i].bits) {
			r = vdisk_fail(ENOMEM, "out of memory");
			goto free_raw;
		}
	}
	r = vdisk_pread(v->base.fd, v->base.path, raw, bytes, v->dyn.table_offset);
	if (r < 0)
		goto free_raw;
	for (uint32_t i = 0; i < n; i++)
		v->bat[i] = get_be32(raw + 4 * (size_t)i);
	r = validate_bat(v);
free_raw:
	free(raw);
	return r;
}

static int setup_subformat(struct vhd_disk *v)
{
	switch (v->footer.disk_type) {
	case VHD_DISK_FIXED:
		v->base.subformat = VDISK_SUB_FIXED;
		return 0;
	case VHD_DISK_DYNAMIC:
		v->base.subformat = VDISK_SUB_DYNAMIC;
		break;
	default:
		v->base.subformat = VDISK_SUB_DIFFERENCING;
		break;
	}
	int r = load_dyn_header(v);
	if (r == 0)
		r = load_bat(v);
	if (r == 0 && v->base.subformat == VDISK_SUB_DIFFERENCING)
		r = open_parent(v);
	return r;
}

int vhd_open(const struct vdisk *base, struct vdisk **out)
{
	struct stat st;
	int r;

	if (fstat(base->fd, &st) < 0)
		return vdisk_fail(errno, "%s: stat failed: %s", base->path, strerror(errno));
	if (st.st_size < (off_t)VHD_FOOTER_BYTES)
		return vdisk_fail(EINVAL, "%s: file of %lld bytes is too small for a VHD footer",
				  base->path, (long long)st.st_size);
	struct vhd_disk *v = calloc(1, sizeof(*v));
	if (!v)
		return vdisk_fail(ENOMEM, "out of memory");
	v->base = *base;
	v->base.ops = &vhd_ops;
	v->base.format = VDISK_FORMAT_VHD;
	v->base.logical_sector_bytes = VHD_SECTOR_BYTES;
	v->base.physical_sector_bytes = VHD_SECTOR_BYTES;
	v->file_bytes = (uint64_t)st.st_size;
	r = load_footer(v);
	if (r == 0)
		r = check_size(v);
	if (r == 0)
		r = setup_subformat(v);
	if (r < 0)
		goto free_disk;
	/* A read-write open repairs a recovered EOF footer or a stale copy at the first flush. */
	v->meta_dirty = (!v->eof_footer_ok || v->copy_footer_dirty) &&
		(base->flags & VDISK_OPEN_RDWR);
	*out = &v->base;
	return 0;

free_disk:
	if (v->base.parent)
		vdisk_close(v->base.parent);
	vhd_close(&v->base);
	return r;
}

/* ---- differencing parents ---- */

static size_t put_utf8(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* UTF-16LE (W2ku/W2ru locators) to UTF-8, up to a NUL; -1 on bad surrogates or overflow. */
static int utf16le_to_utf8(const uint8_t *in, size_t in_bytes, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i + 1 < in_bytes; i += 2) {
		uint32_t c = get_le16(in + i);
		if (c == 0)
			break;
		if (c >= 0xdc00 && c < 0xe000)
			return -1;
		if (c >= 0xd800 && c < 0xdc00) {
			uint32_t lo = i + 3 < in_bytes ? get_le16(in + i + 2) : 0;
			if (lo < 0xdc00 || lo >= 0xe000)
				return -1;
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		if (o + 5 > outlen)
			return -1;
		o += put_utf8(out + o, c);
	}
	out[o] = 0;
	return 0;
}

/* The text of one locator as a UTF-8 path (MacX: the "file://" prefix removed). */
static int read_locator(struct vhd_disk *v, const struct vhd_locator *l, char *out,
			size_t outlen)
{
	const char *path = v->base.path;

	if (l->data_length == 0 || l->data_length > VHD_MAX_LOCATOR_BYTES ||
	    l->data_offset > v->footer_pos || l->data_length > v->footer_pos - l->data_offset)
		return vdisk_fail(EINVAL, "%s: parent locator %08x: %u bytes at offset %llu are "
				  "empty, longer than %u or outside the file", path, l->code,
				  l->data_length, (unsigned long long)l->data_offset,
				  VHD_MAX_LOCATOR_BYTES);
	uint8_t *buf = malloc(l->data_length + 1);
	if (!buf)
		return vdisk_fail(ENOMEM, "out of memory");
	int r = vdisk_pread(v->base.fd, path, buf, l->data_length, l->data_offset);
	if (r == 0 && l->code == VHD_PLATFORM_MACX) {
		buf[l->data_length] = 0;
		const char *s = (const char *)buf;
		if (!strncmp(s, "file://", 7))
			s += 7;
		snprintf(out, outlen, "%s", s);
	} else if (r == 0 && utf16le_to_utf8(buf, l->data_length, out, outlen) < 0) {
		r = vdisk_fail(EINVAL, "%s: parent locator %08x at offset %llu is not valid "
			       "UTF-16LE", path, l->code, (unsigned long long)l->data_offset);
	}
	free(buf);
	return r;
}

/* Open candidate as the parent. Returns 0 when it is the parent, 1 when it does not
 * exist, 2 when it is another disk (the reason is kept in *why), or -errno. */
static int try_parent(struct vhd_disk *v, const char *candidate, char *why, size_t whylen)
{
	struct stat st;
	struct vdisk *p;
	uint8_t uuid[16];
	uint32_t ts;
	char want[40], got[40];

	if (stat(candidate, &st) < 0) {
		if (!strstr(why, "unique id")) /* a wrong parent is the better explanation */
			snprintf(why, whylen, "%s: parent not found (tried %s)", v->base.path,
				 candidate);
		return 1;
	}
	int r = vdisk_open_parent(&v->base, candidate, &p);
	if (r < 0)
		return r;
	r = vhd_disk_identity(p, uuid, &ts);
	if (r == 0 && memcmp(uuid, v->dyn.parent_unique_id, 16)) {
		vhd_uuid_to_str(v->dyn.parent_unique_id, want);
		vhd_uuid_to_str(uuid, got);
		snprintf(why, whylen, "%s: parent %s has unique id %s but the dynamic header's "
			 "parent unique id is %s", v->base.path, candidate, got, want);
		r = 2;
	}
	if (r != 0) {
		vdisk_close(p);
		return r;
	}
	v->base.parent = p;
	return 0;
}

/* Candidate path for locator text in a pass: 0 relative (W2ru), 1 absolute (W2ku, MacX),
 * 2 the absolute path's file name in the child's directory. Returns false if the locator
 * gives nothing for this pass. */
static bool locator_candidate(struct vhd_disk *v, uint32_t code, const char *text,
			      unsigned pass, char *out, size_t outlen)
{
	bool relative = code == VHD_PLATFORM_W2RU;
	bool absolute = code == VHD_PLATFORM_W2KU || code == VHD_PLATFORM_MACX;

	if (pass == 0 && relative)
		return vdisk_resolve_relative(v->base.path, text, out, outlen) == 0;
	if (pass == 1 && absolute && (text[0] == '/' || text[0] == '\\')) {
		snprintf(out, outlen, "%s", text);
		for (char *c = out; *c; c++)
			*c = *c == '\\' ? '/' : *c;
		return true;
	}
	if (pass == 2 && absolute) {
		const char *base = text;
		for (const char *c = text; *c; c++)
			if (*c == '/' || *c == '\\')
				base = c + 1;
		return *base && vdisk_resolve_relative(v->base.path, base, out, outlen) == 0;
	}
	return false;
}

/* Find the parent through the locators: relative first, then absolute, then the absolute
 * path's file name next to the child (Windows paths with drive letters land there). */
static int open_parent(struct vhd_disk *v)
{
	char text[PATH_MAX], cand[PATH_MAX], why[PATH_MAX + 1024];
	int r = 1;

	snprintf(why, sizeof(why), "%s: differencing disk has no usable parent locator",
		 v->base.path);
	for (unsigned pass = 0; pass < 3 && r == 1; pass++) {
		for (unsigned i = 0; i < VHD_LOCATOR_COUNT && r == 1; i++) {
			const struct vhd_locator *l = &v->dyn.locators[i];
			if (l->code != VHD_PLATFORM_W2RU && l->code != VHD_PLATFORM_W2KU &&
			    l->code != VHD_PLATFORM_MACX)
				continue;
			r = read_locator(v, l, text, sizeof(text));
			if (r < 0)
				return r;
			r = 1;
			if (locator_candidate(v, l->code, text, pass, cand, sizeof(cand)))
				r = try_parent(v, cand, why, sizeof(why));
			if (r == 2)
				r = 1;
		}
	}
	if (r == 1)
		return vdisk_fail(strstr(why, "unique id") ? EINVAL : ENOENT, "%s", why);
	return r;
}

/* ---- resize ---- */

/* New size in the footer: current_size and the spec CHS. A creator whose files are sized
 * by CHS is replaced by ours, so the size we set is the size every reader sees. */
static void set_footer_size(struct vhd_disk *v, uint64_t new_size)
{
	struct vhd_footer *f = &v->footer;

	if (!memcmp(f->creator_app, "vpc ", 4) || !memcmp(f->creator_app, "qemu", 4)) {
		memcpy(f->creator_app, VHD_CREATOR_APP, 4);
		f->creator_version = VHD_CREATOR_VERSION;
	}
	f->current_size = new_size;
	vhd_chs_from_bytes(new_size, &f->cylinders, &f->heads, &f->sectors_per_track);
}

/* -ENOSPC unless [from, to) of the virtual disk reads as zeros. */
static int require_zero(struct vhd_disk *v, uint64_t from, uint64_t to, uint64_t new_size)
{
	uint8_t *buf = malloc(1u << 20);
	int r = buf ? 0 : vdisk_fail(ENOMEM, "out of memory");

	while (r == 0 && from < to) {
		uint64_t run;
		unsigned state;
		r = vhd_map(&v->base, from, to - from, &run, &state);
		if (r < 0 || state == VDISK_EXTENT_ZERO) {
			from += r < 0 ? 0 : run;
			continue;
		}
		size_t n = run < (1u << 20) ? (size_t)run : (1u << 20);
		r = vhd_read(&v->base, from, buf, n);
		for (size_t i = 0; r == 0 && i < n; i++)
			if (buf[i])
				r = vdisk_fail(ENOSPC, "%s: cannot shrink to %llu bytes: non-zero "
					       "data at offset %llu", v->base.path,
					       (unsigned long long)new_size,
					       (unsigned long long)(from + i));
		from += n;
	}
	free(buf);
	return r;
}

/* Fixed: the footer moves to the new end. Growing writes the new footer before zeroing
 * the old one (now data), so the file always ends with a valid footer; shrinking writes
 * the footer at the new end before truncating. */
static int resize_fixed(struct vhd_disk *v, uint64_t new_size)
{
	uint64_t old_end = v->footer_pos;
	int r = 0;

	if (new_size < v->base.size_bytes)
		r = require_zero(v, new_size, v->base.size_bytes, new_size);
	set_footer_size(v, new_size);
	if (r == 0)
		r = write_footer_at(v, new_size);
	if (r == 0 && new_size > old_end) {
		uint8_t zero[VHD_FOOTER_BYTES] = { 0 };
		r = vdisk_pwrite(v->base.fd, v->base.path, zero, sizeof(zero), old_end);
	}
	if (r == 0 && new_size < old_end && ftruncate(v->base.fd, (off_t)(new_size +
								      VHD_FOOTER_BYTES)) < 0)
		r = vdisk_fail(errno, "%s: truncate failed: %s", v->base.path, strerror(errno));
	if (r == 0)
		r = sync_file(v);
	if (r == 0)
		v->footer_pos = new_size;
	return r;
}

/* Copy block blk to the end of the file (to make room for a longer BAT), then point its
 * BAT entry there; the old place is free once the entry is durable. */
static int move_block(struct vhd_disk *v, uint32_t blk)
{
	uint64_t from = block_bitmap_offset(v, blk), span = v->bitmap_bytes + (uint64_t)v->block_bytes;
	uint64_t to = round_up(v->footer_pos + v->bitmap_bytes, 4096) - v->bitmap_bytes;
	uint8_t *buf = malloc(1u << 20);
	int r = buf ? write_footer_at(v, to + span) : vdisk_fail(ENOMEM, "out of memory");

	for (uint64_t done = 0; r == 0 && done < span;) {
		size_t n = span - done < (1u << 20) ? (size_t)(span - done) : (1u << 20);
		r = vdisk_pread(v->base.fd, v->base.path, buf, n, from + done);
		if (r == 0 && !vdisk_buf_is_zero(buf, n))
			r = vdisk_pwrite(v->base.fd, v->base.path, buf, n, to + done);
		done += n;
	}
	free(buf);
	if (r == 0)
		r = sync_file(v);
	if (r < 0)
		return r;
	v->footer_pos = to + span;
	v->bat[blk] = (uint32_t)(to / VHD_SECTOR_BYTES);
	r = write_bat_range(v, blk, 1);
	return r == 0 ? sync_file(v) : r;
}

/* Room for `entries` BAT entries: move every block that starts inside the new table. */
static int make_bat_room(struct vhd_disk *v, uint32_t entries)
{
	uint64_t table_end = round_up(v->dyn.table_offset + 4ull * entries, VHD_SECTOR_BYTES);
	int r = 0;

	if (v->dyn_offset >= v->dyn.table_offset && v->dyn_offset < table_end)
		return vdisk_fail(ENOTSUP, "%s: cannot grow the BAT: the dynamic header follows it",
				  v->base.path);
	for (unsigned i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &v->dyn.locators[i];
		if (l->code && l->data_offset >= v->dyn.table_offset && l->data_offset < table_end)
			return vdisk_fail(ENOTSUP, "%s: cannot grow the BAT: parent locator data "
					  "at offset %llu follows it", v->base.path,
					  (unsigned long long)l->data_offset);
	}
	for (uint32_t i = 0; r == 0 && i < v->bat_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED && block_bitmap_offset(v, i) < table_end)
			r = move_block(v, i);
	if (r == 0 && v->footer_pos < table_end) {
		r = write_footer_at(v, table_end);
		v->footer_pos = table_end;
	}
	return r;
}

static int grow_bat(struct vhd_disk *v, uint32_t entries)
{
	uint32_t *bat = realloc(v->bat, sizeof(uint32_t) * entries);
	if (!bat)
		return vdisk_fail(ENOMEM, "out of memory");
	v->bat = bat;
	uint8_t *dirty = calloc((entries + 127) / 128, 1);
	uint8_t *full = calloc((entries + 7) / 8, 1);
	if (!dirty || !full) {
		free(dirty);
		free(full);
		return vdisk_fail(ENOMEM, "out of memory");
	}
	free(v->bat_dirty);
	v->bat_dirty = dirty;
	memcpy(full, v->full, (v->bat_entries + 7) / 8);
	free(v->full);
	v->full = full;
	uint32_t old = v->bat_entries;
	int r = make_bat_room(v, entries);
	for (uint32_t i = old; i < entries; i++)
		v->bat[i] = VHD_BAT_UNUSED;
	v->bat_entries = entries;
	if (r == 0)
		r = write_bat_range(v, old, entries - old);
	return r == 0 ? sync_file(v) : r;
}

/* Dynamic and differencing. Growing: new BAT entries (unallocated) are durable before the
 * dynamic header counts them, and the header before the footers announce the new size.
 * Shrinking: footers first, then the header, so the entries always cover the size. */
static int resize_dynamic(struct vhd_disk *v, uint64_t new_size)
{
	uint64_t needed = (new_size + v->block_bytes - 1) / v->block_bytes;
	bool grow = new_size > v->base.size_bytes;
	int r = 0;

	if (needed > VHD_MAX_TABLE_ENTRIES)
		return vdisk_fail(EINVAL, "%s: %llu BAT entries needed for %llu bytes, at most %u",
				  v->base.path, (unsigned long long)needed,
				  (unsigned long long)new_size, VHD_MAX_TABLE_ENTRIES);
	/* Blocks past the new end may be dropped only if they read as zeros: a partition undo
	 * zeroes what a conversion added past the original end, then shrinks back. Dropped
	 * blocks leave unreferenced space in the file; the BAT no longer counts them. */
	if (!grow)
		r = require_zero(v, new_size, v->base.size_bytes, new_size);
	if (r == 0 && grow && needed > v->bat_entries)
		r = grow_bat(v, (uint32_t)needed);
	if (r == 0 && grow && needed == v->bat_entries) {
		v->dyn.max_table_entries = (uint32_t)needed;
		r = write_dyn_header(v);
		r = r == 0 ? sync_file(v) : r;
	}
	set_footer_size(v, new_size);
	if (r == 0)
		r = write_footer_at(v, v->footer_pos);
	if (r == 0)
		r = write_footer_at(v, 0);
	if (r == 0)
		r = sync_file(v);
	if (r == 0 && !grow) {
		v->dyn.max_table_entries = (uint32_t)needed;
		v->bat_entries = (uint32_t)needed;
		r = write_dyn_header(v);
		r = r == 0 ? sync_file(v) : r;
	}
	return r;
}

static int vhd_resize(struct vdisk *d, uint64_t new_size)
{
	struct vhd_disk *v = to_vhd(d);

	if (new_size > VHD_MAX_SIZE_BYTES)
		return vdisk_fail(EINVAL, "%s: %llu bytes is past the VHD limit of 2040 GiB "
				  "(%llu bytes)", d->path, (unsigned long long)new_size,
				  VHD_MAX_SIZE_BYTES);
	int r = vhd_flush(d);
	if (r == 0)
		r = d->subformat == VDISK_SUB_FIXED ? resize_fixed(v, new_size) :
			resize_dynamic(v, new_size);
	if (r == 0)
		d->size_bytes = new_size;
	return r;
}
