/* vhdx/vhdx-create.c - new VHDX files in Hyper-V's layout (/work/shared/docs/vhdx-format.md
 * 1.10): identifier, headers at 64/128 KiB, region tables at 192/256 KiB, 1 MiB log at
 * 1 MiB, metadata at 2 MiB, BAT at 3 MiB, payload after the BAT. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdx-int.h"

#define LOG_OFFSET (1u * VHDX_MIB)
#define LOG_BYTES VHDX_MIB
#define META_OFFSET (2u * VHDX_MIB)
#define META_BYTES VHDX_MIB
#define BAT_OFFSET (3u * VHDX_MIB)
#define DEFAULT_BLOCK_BYTES (32u * VHDX_MIB)
#define DEFAULT_DIFF_BLOCK_BYTES (2u * VHDX_MIB) /* GUESS: Hyper-V's differencing default */
/* Hyper-V's metadata item order and offsets inside the region. */
#define ITEM_FP_OFF 0x10000u
#define ITEM_VDS_OFF 0x10008u
#define ITEM_LSS_OFF 0x10010u
#define ITEM_PSS_OFF 0x10014u
#define ITEM_VDID_OFF 0x10018u
#define ITEM_PL_OFF 0x10028u
#define META_REQUIRED VHDX_META_IS_REQUIRED
#define META_VD_REQUIRED (VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK)

struct layout {
	uint64_t size_bytes;
	uint32_t block_bytes, lss, pss;
	uint32_t chunk_ratio;
	uint64_t blocks, bat_entries, bat_bytes, data_off;
	bool fixed, diff;
	uint8_t disk_id[16], data_write_guid[16];
	/* differencing */
	uint8_t locator[4096];
	uint32_t locator_len;
};

/* UTF-8 (ASCII expected; other bytes are passed through as Latin-1) to UTF-16LE. */
static size_t put_utf16(uint8_t *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 2 <= cap; s++, n += 2)
		put_le16(out + n, (uint8_t)*s);
	return n;
}

static int check_opts(const struct vdisk_create_opts *o, const char *path, struct layout *l)
{
	l->lss = o->logical_sector_bytes ? o->logical_sector_bytes : 512;
	l->pss = o->physical_sector_bytes ? o->physical_sector_bytes : 4096;
	l->block_bytes = o->block_bytes ? o->block_bytes :
			 l->diff ? DEFAULT_DIFF_BLOCK_BYTES : DEFAULT_BLOCK_BYTES;
	if ((l->lss != 512 && l->lss != 4096) || (l->pss != 512 && l->pss != 4096))
		return vdisk_fail(EINVAL, "%s: sector sizes %u/%u: logical and physical must each "
				  "be 512 or 4096", path, l->lss, l->pss);
	if (l->lss == 4096 && l->pss == 512)
		return vdisk_fail(EINVAL, "%s: 4096-byte logical sectors need 4096-byte physical "
				  "sectors (Windows refuses 4096/512)", path);
	uint32_t bs = l->block_bytes;
	if (bs < VHDX_MIN_BLOCK_BYTES || bs > VHDX_MAX_BLOCK_BYTES || (bs & (bs - 1)))
		return vdisk_fail(EINVAL, "%s: block size %u is not a power of two between 1 MiB "
				  "and 256 MiB", path, bs);
	if (l->size_bytes == 0 || l->size_bytes % l->lss || l->size_bytes > VHDX_MAX_DISK_BYTES)
		return vdisk_fail(EINVAL, "%s: size %llu is not a positive multiple of %u up to "
				  "64 TiB", path, (unsigned long long)l->size_bytes, l->lss);
	return 0;
}

static void compute_layout(struct layout *l)
{
	l->chunk_ratio = (uint32_t)(VHDX_CHUNK_SECTORS * l->lss / l->block_bytes);
	l->blocks = (l->size_bytes + l->block_bytes - 1) / l->block_bytes;
	l->bat_entries = l->diff ? (l->blocks + l->chunk_ratio - 1) / l->chunk_ratio *
					   (l->chunk_ratio + 1) :
				   l->blocks + (l->blocks - 1) / l->chunk_ratio;
	l->bat_bytes = (l->bat_entries * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	l->data_off = BAT_OFFSET + l->bat_bytes;
}

/* ---- differencing: parent identity and locator ---- */

/* Path of target relative to the directory dir, Windows style (".\x" or "..\..\x"). */
static int relative_path(const char *dir, const char *target, char *out, size_t outlen)
{
	size_t common = 0, i = 0;

	while (dir[i] && dir[i] == target[i]) {
		i++;
		if (dir[i] == '/' || (dir[i] == 0 && target[i] == '/'))
			common = i;
	}
	if (dir[i] == 0 && target[i] == '/')
		common = i;
	size_t o = 0;
	out[0] = 0;
	for (const char *c = dir + common; *c; c++)
		if (*c == '/' && o + 4 < outlen) {
			memcpy(out + o, "..\\", 4);
			o += 3;
		}
	if (o == 0)
		o = (size_t)snprintf(out, outlen, ".\\");
	const char *rest = target + common + (target[common] == '/');
	if (o + strlen(rest) + 1 > outlen)
		return -ENAMETOOLONG;
	for (; *rest; rest++)
		out[o++] = *rest == '/' ? '\\' : *rest;
	out[o] = 0;
	return 0;
}

static void locator_add(struct layout *l, unsigned i, const char *key, const char *val,
			uint32_t *data_off)
{
	uint8_t *e = l->locator + 20 + 12 * i;
	size_t kl = put_utf16(l->locator + *data_off, sizeof(l->locator) - *data_off, key);
	put_le32(e, *data_off);
	put_le16(e + 8, (uint16_t)kl);
	*data_off += (uint32_t)kl;
	size_t vl = put_utf16(l->locator + *data_off, sizeof(l->locator) - *data_off, val);
	put_le32(e + 4, *data_off);
	put_le16(e + 10, (uint16_t)vl);
	*data_off += (uint32_t)vl;
}

static int build_locator(struct layout *l, const char *path, const char *parent,
			 const uint8_t parent_dwg[16])
{
	static const uint8_t type[16] = VHDX_GUID_LOCATOR_VHDX;
	char dir[PATH_MAX], rel[PATH_MAX], abs[PATH_MAX + 8], linkage[48], g[40];

	/* The child's directory, not the child itself: the file may be a memfd or a link. */
	snprintf(rel, sizeof(rel), "%s", path);
	char *slash = strrchr(rel, '/');
	if (slash)
		*(slash == rel ? slash + 1 : slash) = 0;
	if (!realpath(slash ? rel : ".", dir))
		return vdisk_fail(errno, "%s: cannot resolve the directory: %s", path,
				  strerror(errno));
	if (relative_path(dir, parent, rel, sizeof(rel)) < 0 ||
	    strlen(rel) > 1000 || strlen(parent) > 1000)
		return vdisk_fail(ENAMETOOLONG, "%s: parent path %s is too long for the locator",
				  path, parent);
	vdisk_guid_to_str(parent_dwg, g);
	snprintf(linkage, sizeof(linkage), "{%s}", g);
	/* No Windows drive exists here; keep the Linux path with Windows separators. */
	snprintf(abs, sizeof(abs), "%s", parent);
	for (char *c = abs; *c; c++)
		*c = *c == '/' ? '\\' : *c;
	memset(l->locator, 0, sizeof(l->locator));
	memcpy(l->locator, type, 16);
	put_le16(l->locator + 18, 3);
	uint32_t data_off = 20 + 3 * 12;
	locator_add(l, 0, "parent_linkage", linkage, &data_off);
	locator_add(l, 1, "relative_path", rel, &data_off);
	locator_add(l, 2, "absolute_win32_path", abs, &data_off);
	l->locator_len = data_off;
	return 0;
}

static int diff_from_parent(struct layout *l, const char *path, const char *parent_path)
{
	struct vdisk *p;
	int r = vdisk_open(parent_path, 0, &p);

	if (r < 0)
		return r;
	if (p->format != VDISK_FORMAT_VHDX) {
		r = vdisk_fail(ENOTSUP, "%s: parent %s is not a VHDX file", path, parent_path);
		goto close_parent;
	}
	const struct vhdx_disk *pv = (const struct vhdx_disk *)p;
	l->size_bytes = p->size_bytes;
	l->lss = p->logical_sector_bytes;
	l->pss = p->physical_sector_bytes;
	memcpy(l->disk_id, pv->disk_id, 16);
	r = build_locator(l, path, parent_path, pv->header + VHDX_HDR(data_write_guid));
close_parent:
	vdisk_close(p);
	return r;
}

/* ---- the structures ---- */

static void build_headers(uint8_t *h, const struct layout *l, const uint8_t fwg[16])
{
	for (int i = 0; i < 2; i++) {
		uint8_t *p = h + i * VHDX_HEADER_BYTES;
		memset(p, 0, VHDX_HEADER_BYTES);
		put_le32(p + VHDX_HDR(signature), VHDX_HEADER_SIGNATURE);
		put_le64(p + VHDX_HDR(sequence_number), (uint64_t)i + 1);
		memcpy(p + VHDX_HDR(file_write_guid), fwg, 16);
		memcpy(p + VHDX_HDR(data_write_guid), l->data_write_guid, 16);
		put_le16(p + VHDX_HDR(version), 1);
		put_le32(p + VHDX_HDR(log_length), LOG_BYTES);
		put_le64(p + VHDX_HDR(log_offset), LOG_OFFSET);
		put_le32(p + VHDX_HDR(checksum), vhdx_checksum(p, VHDX_HEADER_BYTES,
							       VHDX_HDR(checksum)));
	}
}

static void build_region_table(uint8_t *t, const struct layout *l)
{
	static const uint8_t bat[16] = VHDX_GUID_BAT, meta[16] = VHDX_GUID_METADATA;

	memset(t, 0, VHDX_REGION_TABLE_BYTES);
	put_le32(t + VHDX_RTH(signature), VHDX_REGION_SIGNATURE);
	put_le32(t + VHDX_RTH(entry_count), 2);
	uint8_t *e = t + 16;
	memcpy(e, bat, 16);
	put_le64(e + VHDX_RTE(file_offset), BAT_OFFSET);
	put_le32(e + VHDX_RTE(length), (uint32_t)l->bat_bytes);
	put_le32(e + VHDX_RTE(required), 1);
	e += 32;
	memcpy(e, meta, 16);
	put_le64(e + VHDX_RTE(file_offset), META_OFFSET);
	put_le32(e + VHDX_RTE(length), META_BYTES);
	put_le32(e + VHDX_RTE(required), 1);
	put_le32(t + VHDX_RTH(checksum), vhdx_checksum(t, VHDX_REGION_TABLE_BYTES,
						       VHDX_RTH(checksum)));
}

static void meta_item(uint8_t *m, unsigned i, const uint8_t guid[16], uint32_t off,
		      uint32_t len, uint32_t flags)
{
	uint8_t *e = m + 32 + 32 * i;
	memcpy(e, guid, 16);
	put_le32(e + VHDX_MTE(offset), off);
	put_le32(e + VHDX_MTE(length), len);
	put_le32(e + VHDX_MTE(flags), flags);
}

/* Table and items: 0x10000 + 0x28 bytes (+ the locator). */
static void build_metadata(uint8_t *m, const struct layout *l)
{
	static const uint8_t fp[16] = VHDX_GUID_FILE_PARAMETERS, vds[16] = VHDX_GUID_VIRTUAL_DISK_SIZE;
	static const uint8_t lss[16] = VHDX_GUID_LOGICAL_SECTOR, pss[16] = VHDX_GUID_PHYSICAL_SECTOR;
	static const uint8_t vdid[16] = VHDX_GUID_VIRTUAL_DISK_ID, pl[16] = VHDX_GUID_PARENT_LOCATOR;

	memcpy(m, VHDX_METADATA_SIGNATURE, 8);
	put_le16(m + 10, l->diff ? 6 : 5);
	meta_item(m, 0, fp, ITEM_FP_OFF, 8, META_REQUIRED);
	meta_item(m, 1, vds, ITEM_VDS_OFF, 8, META_VD_REQUIRED);
	meta_item(m, 2, lss, ITEM_LSS_OFF, 4, META_VD_REQUIRED);
	meta_item(m, 3, pss, ITEM_PSS_OFF, 4, META_VD_REQUIRED);
	meta_item(m, 4, vdid, ITEM_VDID_OFF, 16, META_VD_REQUIRED);
	put_le32(m + ITEM_FP_OFF, l->block_bytes);
	put_le32(m + ITEM_FP_OFF + 4, (l->fixed ? VHDX_FP_LEAVE_BLOCK_ALLOCATED : 0) |
					      (l->diff ? VHDX_FP_HAS_PARENT : 0));
	put_le64(m + ITEM_VDS_OFF, l->size_bytes);
	put_le32(m + ITEM_LSS_OFF, l->lss);
	put_le32(m + ITEM_PSS_OFF, l->pss);
	memcpy(m + ITEM_VDID_OFF, l->disk_id, 16);
	if (l->diff) {
		meta_item(m, 5, pl, ITEM_PL_OFF, l->locator_len, META_REQUIRED);
		memcpy(m + ITEM_PL_OFF, l->locator, l->locator_len);
	}
}

/* Fixed: every payload entry FULLY_PRESENT, blocks contiguous after the BAT. */
static int write_fixed_bat(int fd, const char *path, const struct layout *l)
{
	uint8_t *buf = malloc(VHDX_MIB);
	uint64_t block = 0;
	int r = 0;

	if (!buf)
		return vdisk_fail(ENOMEM, "out of memory");
	for (uint64_t i = 0; r == 0 && i < l->bat_entries; i += VHDX_MIB / 8) {
		uint64_t n = l->bat_entries - i < VHDX_MIB / 8 ? l->bat_entries - i : VHDX_MIB / 8;
		memset(buf, 0, VHDX_MIB);
		for (uint64_t k = 0; k < n; k++)
			if ((i + k) % (l->chunk_ratio + 1) != l->chunk_ratio)
				put_le64(buf + 8 * k, (l->data_off + block++ * l->block_bytes) |
							      VHDX_BLOCK_FULLY_PRESENT);
		r = vdisk_pwrite(fd, path, buf, (size_t)(8 * n), BAT_OFFSET + 8 * i);
	}
	free(buf);
	return r;
}

static int write_structures(int fd, const char *path, const struct layout *l)
{
	uint8_t *buf = calloc(1, META_BYTES);
	uint8_t fwg[16];
	int r;

	if (!buf)
		return vdisk_fail(ENOMEM, "out of memory");
	if ((r = vdisk_guid_random(fwg)) < 0)
		goto free_buf;
	memcpy(buf, VHDX_FILE_SIGNATURE, 8);
	put_utf16(buf + 8, 512, "genshift");
	build_headers(buf + VHDX_HEADER1_OFFSET, l, fwg);
	memcpy(buf + VHDX_HEADER2_OFFSET, buf + VHDX_HEADER1_OFFSET + VHDX_HEADER_BYTES,
	       VHDX_HEADER_BYTES);
	memset(buf + VHDX_HEADER1_OFFSET + VHDX_HEADER_BYTES, 0, VHDX_HEADER_BYTES);
	build_region_table(buf + VHDX_REGION1_OFFSET, l);
	memcpy(buf + VHDX_REGION2_OFFSET, buf + VHDX_REGION1_OFFSET, VHDX_REGION_TABLE_BYTES);
	if ((r = vdisk_pwrite(fd, path, buf, VHDX_REGION2_OFFSET + VHDX_REGION_TABLE_BYTES, 0)) < 0)
		goto free_buf;
	memset(buf, 0, META_BYTES);
	build_metadata(buf, l);
	if ((r = vdisk_pwrite(fd, path, buf, ITEM_PL_OFF + l->locator_len, META_OFFSET)) < 0)
		goto free_buf;
	if (l->fixed)
		r = write_fixed_bat(fd, path, l);
free_buf:
	free(buf);
	return r;
}

/* Fixed files are preallocated (fallocate where the file system can, else sparse zeros). */
static int size_file(int fd, const char *path, const struct layout *l)
{
	uint64_t end = l->data_off + (l->fixed ? l->blocks * l->block_bytes : 0);

	if (l->fixed && fallocate(fd, 0, (off_t)l->data_off, (off_t)(end - l->data_off)) == 0)
		return 0;
	if (ftruncate(fd, (off_t)end) < 0)
		return vdisk_fail(errno, "%s: cannot size the file to %llu bytes: %s", path,
				  (unsigned long long)end, strerror(errno));
	return 0;
}

int vhdx_create(int fd, const char *path, const struct vdisk_create_opts *opts)
{
	struct layout *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return vdisk_fail(ENOMEM, "out of memory");
	l->fixed = opts->subformat == VDISK_SUB_FIXED;
	l->diff = opts->subformat == VDISK_SUB_DIFFERENCING;
	l->size_bytes = opts->size_bytes;
	if ((r = vdisk_guid_random(l->data_write_guid)) < 0 ||
	    (r = vdisk_guid_random(l->disk_id)) < 0)
		goto free_layout;
	struct vdisk_create_opts o = *opts;
	if (l->diff) {
		if ((r = diff_from_parent(l, path, opts->parent_path)) < 0)
			goto free_layout;
		o.logical_sector_bytes = l->lss, o.physical_sector_bytes = l->pss;
	}
	if ((r = check_opts(&o, path, l)) < 0)
		goto free_layout;
	compute_layout(l);
	if ((r = write_structures(fd, path, l)) == 0)
		r = size_file(fd, path, l);
free_layout:
	free(l);
	return r;
}
