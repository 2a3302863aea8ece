/* vhdx/vhdx.c - VHDX backend: open and validation, read, map, info, close ([MS-VHDX] 2.x). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx-int.h"

static const uint8_t guid_bat[16] = VHDX_GUID_BAT;
static const uint8_t guid_metadata[16] = VHDX_GUID_METADATA;
static const uint8_t guid_fp[16] = VHDX_GUID_FILE_PARAMETERS;
static const uint8_t guid_vds[16] = VHDX_GUID_VIRTUAL_DISK_SIZE;
static const uint8_t guid_vdid[16] = VHDX_GUID_VIRTUAL_DISK_ID;
static const uint8_t guid_lss[16] = VHDX_GUID_LOGICAL_SECTOR;
static const uint8_t guid_pss[16] = VHDX_GUID_PHYSICAL_SECTOR;
static const uint8_t guid_pl[16] = VHDX_GUID_PARENT_LOCATOR;
static const uint8_t guid_locator_vhdx[16] = VHDX_GUID_LOCATOR_VHDX;

bool vhdx_guid_is_zero(const uint8_t g[16])
{
	return vdisk_buf_is_zero(g, 16);
}

/* ---- file access through the in-memory replay overlay ---- */

/* Bytes between the host file end and the logical end read as zeros (the log may extend
 * the file); replayed pages are laid over what the file holds. */
static int read_overlaid(struct vhdx_disk *v, uint64_t off, uint8_t *buf, size_t len)
{
	size_t n = 0;

	if (off < v->host_bytes)
		n = v->host_bytes - off < len ? (size_t)(v->host_bytes - off) : len;
	if (n > 0) {
		int r = vdisk_pread(v->base.fd, v->base.path, buf, n, off);
		if (r < 0)
			return r;
	}
	memset(buf + n, 0, len - n);
	for (size_t i = 0; i < v->overlay_count; i++) {
		const struct vhdx_overlay *o = &v->overlay[i];
		if (o->off >= off + len || o->off + o->len <= off)
			continue;
		uint64_t s = o->off > off ? o->off : off;
		uint64_t e = o->off + o->len < off + len ? o->off + o->len : off + len;
		if (o->data)
			memcpy(buf + (s - off), o->data + (s - o->off), e - s);
		else
			memset(buf + (s - off), 0, e - s);
	}
	return 0;
}

int vhdx_io_read(struct vhdx_disk *v, uint64_t off, void *buf, size_t len)
{
	if (off > v->file_bytes || len > v->file_bytes - off)
		return vdisk_fail(EINVAL, "%s: %zu bytes at offset %llu lie past the end of the "
				  "%llu-byte file (truncated?)", v->base.path, len,
				  (unsigned long long)off, (unsigned long long)v->file_bytes);
	return read_overlaid(v, off, buf, len);
}

int vhdx_io_read_data(struct vhdx_disk *v, uint64_t off, void *buf, size_t len)
{
	size_t n = 0;

	if (off < v->file_bytes)
		n = v->file_bytes - off < len ? (size_t)(v->file_bytes - off) : len;
	memset((uint8_t *)buf + n, 0, len - n);
	return n ? read_overlaid(v, off, buf, n) : 0;
}

int vhdx_sync(struct vhdx_disk *v)
{
	if (fdatasync(v->base.fd) < 0)
		return vdisk_fail(errno, "%s: fdatasync failed: %s", v->base.path, strerror(errno));
	v->data_unsynced = false;
	return 0;
}

/* ---- 2.2.1 file identifier ---- */

int vhdx_parse_file_id(struct vhdx_disk *v)
{
	uint8_t id[520];

	if (v->host_bytes < VHDX_HEADER_SECTION_BYTES)
		return vdisk_fail(EINVAL, "%s: file of %llu bytes is shorter than the 1 MiB VHDX "
				  "header section (truncated?)", v->base.path,
				  (unsigned long long)v->host_bytes);
	int r = vhdx_io_read(v, VHDX_FILE_ID_OFFSET, id, sizeof(id));
	if (r < 0)
		return r;
	if (memcmp(id, VHDX_FILE_SIGNATURE, 8))
		return vdisk_fail(EINVAL, "%s: file identifier at offset 0 is not \"vhdxfile\"",
				  v->base.path);
	/* The creator is diagnostic only: keep its printable ASCII. */
	size_t n = 0;
	for (size_t i = 8; i + 1 < sizeof(id) && n + 1 < sizeof(v->creator); i += 2) {
		uint16_t c = get_le16(id + i);
		if (c == 0)
			break;
		v->creator[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	v->creator[n] = 0;
	return 0;
}

/* ---- 2.2.2 headers ---- */

static bool header_valid(const uint8_t *h, char *why, size_t whylen)
{
	if (get_le32(h + VHDX_HDR(signature)) != VHDX_HEADER_SIGNATURE) {
		snprintf(why, whylen, "signature is not \"head\"");
		return false;
	}
	uint32_t want = vhdx_checksum(h, VHDX_HEADER_BYTES, VHDX_HDR(checksum));
	uint32_t have = get_le32(h + VHDX_HDR(checksum));
	if (want != have) {
		snprintf(why, whylen, "checksum 0x%08x, expected 0x%08x", have, want);
		return false;
	}
	if (get_le16(h + VHDX_HDR(version)) != 1) {
		snprintf(why, whylen, "version %u, expected 1", get_le16(h + VHDX_HDR(version)));
		return false;
	}
	snprintf(why, whylen, "valid, sequence number %llu",
		 (unsigned long long)get_le64(h + VHDX_HDR(sequence_number)));
	return true;
}

/* Spec 2.2.2.1: the current header is the only valid one or the valid one with the larger
 * sequence number. Disk2VHD writes two byte-identical headers with equal numbers; like
 * qemu we accept that case, and only that one. */
static int select_header(struct vhdx_disk *v, uint8_t h[2][VHDX_HEADER_BYTES])
{
	char why[2][128];
	bool ok[2];

	for (int i = 0; i < 2; i++)
		ok[i] = header_valid(h[i], why[i], sizeof(why[i]));
	if (!ok[0] && !ok[1])
		return vdisk_fail(EINVAL, "%s: no valid header: header 1 (offset %u): %s; header 2 "
				  "(offset %u): %s", v->base.path, VHDX_HEADER1_OFFSET, why[0],
				  VHDX_HEADER2_OFFSET, why[1]);
	uint64_t s0 = get_le64(h[0] + VHDX_HDR(sequence_number));
	uint64_t s1 = get_le64(h[1] + VHDX_HDR(sequence_number));
	int cur;
	if (ok[0] && ok[1] && s0 == s1) {
		if (memcmp(h[0], h[1], VHDX_HEADER_BYTES))
			return vdisk_fail(EINVAL, "%s: both headers have sequence number %llu but "
					  "different contents: cannot tell which is current",
					  v->base.path, (unsigned long long)s0);
		cur = 0;
		snprintf(v->header_note, sizeof(v->header_note), "headers 1 and 2 are identical "
			 "(sequence number %llu, Disk2VHD style)", (unsigned long long)s0);
	} else {
		cur = ok[0] && ok[1] ? (s1 > s0) : ok[1];
		snprintf(v->header_note, sizeof(v->header_note), "header %d is current (header 1: "
			 "%.100s; header 2: %.100s)", cur + 1, why[0], why[1]);
	}
	v->current_header = cur;
	memcpy(v->header, h[cur], VHDX_HEADER_BYTES);
	return 0;
}

static int check_log_fields(struct vhdx_disk *v)
{
	const uint8_t *h = v->header;

	v->log_offset = get_le64(h + VHDX_HDR(log_offset));
	v->log_length = get_le32(h + VHDX_HDR(log_length));
	if (!vhdx_guid_is_zero(h + VHDX_HDR(log_guid)) && get_le16(h + VHDX_HDR(log_version)))
		return vdisk_fail(ENOTSUP, "%s: header log version %u is not supported (expected 0)",
				  v->base.path, get_le16(h + VHDX_HDR(log_version)));
	if (v->log_offset % VHDX_MIB || v->log_length % VHDX_MIB ||
	    v->log_offset < VHDX_HEADER_SECTION_BYTES || v->log_length == 0 ||
	    v->log_offset > VHDX_MAX_FILE_BYTES)
		return vdisk_fail(EINVAL, "%s: header log region (offset %llu, length %u) must be "
				  "non-empty, 1 MiB aligned and after the first MiB", v->base.path,
				  (unsigned long long)v->log_offset, v->log_length);
	return 0;
}

int vhdx_parse_headers(struct vhdx_disk *v)
{
	uint8_t (*h)[VHDX_HEADER_BYTES] = malloc(2 * VHDX_HEADER_BYTES);
	int r;

	if (!h)
		return vdisk_fail(ENOMEM, "out of memory");
	r = vhdx_io_read(v, VHDX_HEADER1_OFFSET, h[0], VHDX_HEADER_BYTES);
	if (r == 0)
		r = vhdx_io_read(v, VHDX_HEADER2_OFFSET, h[1], VHDX_HEADER_BYTES);
	if (r == 0)
		r = select_header(v, h);
	if (r == 0)
		r = check_log_fields(v);
	free(h);
	return r;
}

/* Spec 2.2.2.1 update: write the next sequence number over the non-current copy, flush,
 * and do it twice so both copies are current. Headers never go through the log. */
int vhdx_header_update(struct vhdx_disk *v, const uint8_t log_guid[16])
{
	uint8_t h[VHDX_HEADER_BYTES];
	int r = 0;

	if (vhdx_guid_is_zero(v->file_write_guid) &&
	    (r = vdisk_guid_random(v->file_write_guid)) < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		memcpy(h, v->header, sizeof(h));
		put_le64(h + VHDX_HDR(sequence_number),
			 get_le64(h + VHDX_HDR(sequence_number)) + 1);
		memcpy(h + VHDX_HDR(file_write_guid), v->file_write_guid, 16);
		memcpy(h + VHDX_HDR(log_guid), log_guid, 16);
		put_le16(h + VHDX_HDR(log_version), 0);
		put_le32(h + VHDX_HDR(checksum), vhdx_checksum(h, sizeof(h), VHDX_HDR(checksum)));
		int target = v->current_header ^ 1;
		r = vdisk_pwrite(v->base.fd, v->base.path, h, sizeof(h),
				 target ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET);
		if (r == 0)
			r = vhdx_sync(v);
		if (r < 0)
			return r;
		memcpy(v->header, h, sizeof(h));
		v->current_header = target;
	}
	return 0;
}

/* The first modification of a session: new FileWriteGuid and DataWriteGuid (every change
 * we make is user-visible or accompanies one) and a new LogGuid. An empty opener entry
 * goes into the log first, so that a header naming the new LogGuid always finds a valid
 * entry (otherwise a crash right after the header update would leave a file that must
 * not be opened). Writing it before the header update is safe: the log is clean (the open
 * replayed it), so no header points at the log space we overwrite. */
int vhdx_session_begin(struct vhdx_disk *v)
{
	int r;

	if (v->session)
		return 0;
	if ((r = vdisk_guid_random(v->file_write_guid)) < 0 ||
	    (r = vdisk_guid_random(v->header + VHDX_HDR(data_write_guid))) < 0 ||
	    (r = vdisk_guid_random(v->log_guid)) < 0)
		return r;
	v->log_seq = 1;
	v->log_head = 0;
	if ((r = vhdx_log_commit(v, NULL, 0)) < 0 || (r = vhdx_header_update(v, v->log_guid)) < 0)
		return r;
	v->session = true;
	return 0;
}

/* ---- 2.2.3 region table ---- */

struct region_set {
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
	bool have_bat, have_meta;
};

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int region_entry(struct vhdx_disk *v, const uint8_t *e, unsigned i, uint64_t where,
			struct region_set *rs)
{
	uint64_t off = get_le64(e + VHDX_RTE(file_offset));
	uint32_t len = get_le32(e + VHDX_RTE(length));
	bool req = get_le32(e + VHDX_RTE(required)) & 1;
	bool is_bat = !memcmp(e, guid_bat, 16), is_meta = !memcmp(e, guid_metadata, 16);

	if (!is_bat && !is_meta) {
		char g[40];
		vdisk_guid_to_str(e, g);
		if (req)
			return vdisk_fail(ENOTSUP, "%s: region table at %llu, entry %u: unknown "
					  "required region {%s}", v->base.path,
					  (unsigned long long)where, i, g);
		return 0; /* unknown optional regions are left alone */
	}
	if ((is_bat && rs->have_bat) || (is_meta && rs->have_meta))
		return vdisk_fail(EINVAL, "%s: region table at %llu, entry %u: duplicate %s region",
				  v->base.path, (unsigned long long)where, i,
				  is_bat ? "BAT" : "metadata");
	if (off % VHDX_MIB || off < VHDX_HEADER_SECTION_BYTES || len == 0 || len % VHDX_MIB ||
	    off > VHDX_MAX_FILE_BYTES)
		return vdisk_fail(EINVAL, "%s: region table at %llu, entry %u: %s region at offset "
				  "%llu, length %u must be non-empty, 1 MiB aligned and after "
				  "the first MiB", v->base.path, (unsigned long long)where, i,
				  is_bat ? "BAT" : "metadata", (unsigned long long)off, len);
	if (is_bat) {
		rs->bat_off = off, rs->bat_len = len, rs->have_bat = true;
	} else {
		rs->meta_off = off, rs->meta_len = len, rs->have_meta = true;
	}
	return 0;
}

static int region_ranges(struct vhdx_disk *v, uint64_t where, const struct region_set *rs)
{
	if (!rs->have_bat || !rs->have_meta)
		return vdisk_fail(EINVAL, "%s: region table at %llu has no %s region", v->base.path,
				  (unsigned long long)where, rs->have_bat ? "metadata" : "BAT");
	if (ranges_overlap(rs->bat_off, rs->bat_len, rs->meta_off, rs->meta_len) ||
	    ranges_overlap(rs->bat_off, rs->bat_len, v->log_offset, v->log_length) ||
	    ranges_overlap(rs->meta_off, rs->meta_len, v->log_offset, v->log_length))
		return vdisk_fail(EINVAL, "%s: region table at %llu: BAT [%llu, +%u), metadata "
				  "[%llu, +%u) and log [%llu, +%u) overlap", v->base.path,
				  (unsigned long long)where, (unsigned long long)rs->bat_off,
				  rs->bat_len, (unsigned long long)rs->meta_off, rs->meta_len,
				  (unsigned long long)v->log_offset, v->log_length);
	return 0;
}

/* *intact tells whether signature and checksum held (only then is the copy authoritative). */
static int parse_region_copy(struct vhdx_disk *v, uint64_t where, uint8_t *t,
			     struct region_set *rs, bool *intact)
{
	*intact = false;
	memset(rs, 0, sizeof(*rs));
	int r = vhdx_io_read(v, where, t, VHDX_REGION_TABLE_BYTES);
	if (r < 0)
		return r;
	if (get_le32(t + VHDX_RTH(signature)) != VHDX_REGION_SIGNATURE)
		return vdisk_fail(EINVAL, "%s: region table at %llu: signature is not \"regi\"",
				  v->base.path, (unsigned long long)where);
	uint32_t count = get_le32(t + VHDX_RTH(entry_count));
	if (count > VHDX_REGION_MAX_ENTRIES)
		return vdisk_fail(EINVAL, "%s: region table at %llu: entry count %u exceeds %u",
				  v->base.path, (unsigned long long)where, count,
				  VHDX_REGION_MAX_ENTRIES);
	uint32_t want = vhdx_checksum(t, VHDX_REGION_TABLE_BYTES, VHDX_RTH(checksum));
	if (get_le32(t + VHDX_RTH(checksum)) != want)
		return vdisk_fail(EINVAL, "%s: region table at %llu: checksum 0x%08x, expected "
				  "0x%08x", v->base.path, (unsigned long long)where,
				  get_le32(t + VHDX_RTH(checksum)), want);
	*intact = true;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = t + sizeof(struct vhdx_region_table_header) +
				   i * sizeof(struct vhdx_region_table_entry);
		if ((r = region_entry(v, e, i, where, rs)) < 0)
			return r;
	}
	return region_ranges(v, where, rs);
}

int vhdx_check_region_copy(struct vhdx_disk *v, int copy)
{
	uint8_t *t = malloc(VHDX_REGION_TABLE_BYTES);
	struct region_set rs;
	bool intact;

	if (!t)
		return vdisk_fail(ENOMEM, "out of memory");
	int r = parse_region_copy(v, copy == 1 ? VHDX_REGION1_OFFSET : VHDX_REGION2_OFFSET, t,
				  &rs, &intact);
	free(t);
	return r;
}

/* Copy 1 is authoritative when intact; a damaged copy 1 falls back to copy 2 (both are
 * written through the log, so either is a complete table). */
int vhdx_parse_regions(struct vhdx_disk *v)
{
	uint8_t *t = malloc(VHDX_REGION_TABLE_BYTES);
	struct region_set rs;
	bool intact;
	int r;

	if (!t)
		return vdisk_fail(ENOMEM, "out of memory");
	v->region_copy = 1;
	v->region_note[0] = 0;
	r = parse_region_copy(v, VHDX_REGION1_OFFSET, t, &rs, &intact);
	if (r < 0 && !intact && r != -EIO) {
		snprintf(v->region_note, sizeof(v->region_note), "%s", vdisk_errmsg());
		v->region_copy = 2;
		r = parse_region_copy(v, VHDX_REGION2_OFFSET, t, &rs, &intact);
		if (r < 0 && !intact)
			r = vdisk_fail(EINVAL, "%s: both region tables are damaged: copy 1: %s; "
				       "copy 2: %s", v->base.path, v->region_note, vdisk_errmsg());
	}
	free(t);
	if (r < 0)
		return r;
	v->bat_offset = rs.bat_off, v->bat_length = rs.bat_len;
	v->meta_offset = rs.meta_off, v->meta_length = rs.meta_len;
	return 0;
}

/* ---- 2.6 metadata ---- */

enum { ITEM_FP, ITEM_VDS, ITEM_VDID, ITEM_LSS, ITEM_PSS, ITEM_PL, ITEM_COUNT };
static const uint8_t *const item_guids[ITEM_COUNT] = {
	guid_fp, guid_vds, guid_vdid, guid_lss, guid_pss, guid_pl,
};
static const char *const item_names[ITEM_COUNT] = {
	"FileParameters", "VirtualDiskSize", "VirtualDiskId", "LogicalSectorSize",
	"PhysicalSectorSize", "ParentLocator",
};
static const uint32_t item_lengths[ITEM_COUNT] = { 8, 8, 16, 4, 4, 0 };

struct meta_items {
	bool have[ITEM_COUNT];
	uint32_t off[ITEM_COUNT], len[ITEM_COUNT];
};

static int meta_entry(struct vhdx_disk *v, const uint8_t *e, unsigned i, struct meta_items *mi)
{
	uint32_t off = get_le32(e + VHDX_MTE(offset)), len = get_le32(e + VHDX_MTE(length));
	uint32_t flags = get_le32(e + VHDX_MTE(flags));

	if (len == 0 ? off != 0 : (off < VHDX_METADATA_TABLE_BYTES || len > VHDX_MIB ||
				   off > v->meta_length || len > v->meta_length - off))
		return vdisk_fail(EINVAL, "%s: metadata entry %u: item at offset %u, length %u is "
				  "outside the %llu-byte metadata region (or before its 64 KiB "
				  "table)", v->base.path, i, off, len,
				  (unsigned long long)v->meta_length);
	int k = -1;
	for (int j = 0; j < ITEM_COUNT && !(flags & VHDX_META_IS_USER); j++)
		if (!memcmp(e, item_guids[j], 16))
			k = j;
	if (k < 0) {
		char g[40];
		vdisk_guid_to_str(e, g);
		if (flags & VHDX_META_IS_REQUIRED)
			return vdisk_fail(ENOTSUP, "%s: metadata entry %u: unknown required item "
					  "{%s}", v->base.path, i, g);
		return 0;
	}
	if (mi->have[k])
		return vdisk_fail(EINVAL, "%s: metadata entry %u: duplicate %s item", v->base.path,
				  i, item_names[k]);
	if (item_lengths[k] && len != item_lengths[k])
		return vdisk_fail(EINVAL, "%s: metadata %s item has length %u, expected %u",
				  v->base.path, item_names[k], len, item_lengths[k]);
	mi->have[k] = true, mi->off[k] = off, mi->len[k] = len;
	return 0;
}

static int meta_table(struct vhdx_disk *v, struct meta_items *mi)
{
	uint8_t *t = malloc(VHDX_METADATA_TABLE_BYTES);
	int r;

	if (!t)
		return vdisk_fail(ENOMEM, "out of memory");
	memset(mi, 0, sizeof(*mi));
	r = vhdx_io_read(v, v->meta_offset, t, VHDX_METADATA_TABLE_BYTES);
	if (r < 0)
		goto free_table;
	if (memcmp(t, VHDX_METADATA_SIGNATURE, 8)) {
		r = vdisk_fail(EINVAL, "%s: metadata table at %llu: signature is not \"metadata\"",
			       v->base.path, (unsigned long long)v->meta_offset);
		goto free_table;
	}
	uint16_t count = get_le16(t + offsetof(struct vhdx_metadata_table_header, entry_count));
	if (count > VHDX_METADATA_MAX_ENTRIES) {
		r = vdisk_fail(EINVAL, "%s: metadata table at %llu: entry count %u exceeds %u",
			       v->base.path, (unsigned long long)v->meta_offset, count,
			       VHDX_METADATA_MAX_ENTRIES);
		goto free_table;
	}
	for (unsigned i = 0; i < count && r == 0; i++)
		r = meta_entry(v, t + 32 + 32 * i, i, mi);
free_table:
	free(t);
	return r;
}

static int meta_overlaps(struct vhdx_disk *v, const struct meta_items *mi)
{
	for (int a = 0; a < ITEM_COUNT; a++)
		for (int b = a + 1; b < ITEM_COUNT; b++)
			if (mi->have[a] && mi->have[b] && mi->len[a] && mi->len[b] &&
			    ranges_overlap(mi->off[a], mi->len[a], mi->off[b], mi->len[b]))
				return vdisk_fail(EINVAL, "%s: metadata items %s and %s overlap",
						  v->base.path, item_names[a], item_names[b]);
	return 0;
}

/* UTF-16LE to UTF-8 (surrogate pairs combined; unpaired ones become '?'). */
static void utf16_to_utf8(const uint8_t *s, size_t bytes, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i + 1 < bytes && o + 5 < outlen; i += 2) {
		uint32_t c = get_le16(s + i);
		if (c >= 0xD800 && c < 0xDC00 && i + 3 < bytes &&
		    get_le16(s + i + 2) >= 0xDC00 && get_le16(s + i + 2) < 0xE000) {
			c = 0x10000 + ((c - 0xD800) << 10) + (get_le16(s + i + 2) - 0xDC00);
			i += 2;
		} else if (c >= 0xD800 && c < 0xE000) {
			c = '?';
		}
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xC0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xE0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = 0;
}

static void locator_value(struct vhdx_disk *v, const char *key, const uint8_t *val, size_t n)
{
	static const struct { const char *key; size_t field; size_t len; } keys[] = {
		{ "parent_linkage", offsetof(struct vhdx_disk, parent_linkage), 64 },
		{ "parent_linkage2", offsetof(struct vhdx_disk, parent_linkage2), 64 },
		{ "relative_path", offsetof(struct vhdx_disk, parent_relative), 1024 },
		{ "absolute_win32_path", offsetof(struct vhdx_disk, parent_absolute), 1024 },
		{ "volume_path", offsetof(struct vhdx_disk, parent_volume), 1024 },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i].key))
			utf16_to_utf8(val, n, (char *)v + keys[i].field, keys[i].len);
}

/* 2.6.2.6: type GUID, count, then {key, value} offset/length pairs inside the item. */
static int parse_locator(struct vhdx_disk *v, const uint8_t *pl, uint32_t len)
{
	if (len < sizeof(struct vhdx_parent_locator_header))
		return vdisk_fail(EINVAL, "%s: parent locator of %u bytes is too short",
				  v->base.path, len);
	if (memcmp(pl, guid_locator_vhdx, 16))
		return vdisk_fail(ENOTSUP, "%s: parent locator type is not the VHDX locator",
				  v->base.path);
	unsigned count = get_le16(pl + offsetof(struct vhdx_parent_locator_header,
						 key_value_count));
	if (20 + (uint64_t)count * 12 > len)
		return vdisk_fail(EINVAL, "%s: parent locator: %u key/value entries do not fit in "
				  "%u bytes", v->base.path, count, len);
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *e = pl + 20 + 12 * i;
		uint32_t ko = get_le32(e), vo = get_le32(e + 4);
		uint16_t kl = get_le16(e + 8), vl = get_le16(e + 10);
		char key[64];
		if (ko == 0 || vo == 0 || ko > len || kl > len - ko || vo > len || vl > len - vo)
			return vdisk_fail(EINVAL, "%s: parent locator entry %u: key (%u, %u) or "
					  "value (%u, %u) outside the %u-byte item", v->base.path,
					  i, ko, kl, vo, vl, len);
		utf16_to_utf8(pl + ko, kl, key, sizeof(key));
		locator_value(v, key, pl + vo, vl);
	}
	if (!v->parent_linkage[0])
		return vdisk_fail(EINVAL, "%s: parent locator has no parent_linkage", v->base.path);
	return 0;
}

static int meta_values(struct vhdx_disk *v, const struct meta_items *mi, const uint8_t *fp,
		       const uint8_t *small)
{
	v->block_bytes = get_le32(fp);
	uint32_t flags = get_le32(fp + 4);
	v->leave_allocated = flags & VHDX_FP_LEAVE_BLOCK_ALLOCATED;
	v->has_parent = flags & VHDX_FP_HAS_PARENT;
	v->base.size_bytes = get_le64(small);
	memcpy(v->disk_id, small + 8, 16);
	v->base.logical_sector_bytes = get_le32(small + 24);
	v->base.physical_sector_bytes = get_le32(small + 28);
	v->vds_item_off = v->meta_offset + mi->off[ITEM_VDS];
	uint32_t bs = v->block_bytes, lss = v->base.logical_sector_bytes;
	if (bs < VHDX_MIN_BLOCK_BYTES || bs > VHDX_MAX_BLOCK_BYTES || (bs & (bs - 1)))
		return vdisk_fail(EINVAL, "%s: block size %u is not a power of two between 1 MiB "
				  "and 256 MiB", v->base.path, bs);
	if ((lss != 512 && lss != 4096) ||
	    (v->base.physical_sector_bytes != 512 && v->base.physical_sector_bytes != 4096))
		return vdisk_fail(EINVAL, "%s: logical/physical sector sizes %u/%u must be 512 or "
				  "4096", v->base.path, lss, v->base.physical_sector_bytes);
	if (v->base.size_bytes == 0 || v->base.size_bytes % lss ||
	    v->base.size_bytes > VHDX_MAX_DISK_BYTES)
		return vdisk_fail(EINVAL, "%s: virtual disk size %llu is not a positive multiple "
				  "of %u up to 64 TiB", v->base.path,
				  (unsigned long long)v->base.size_bytes, lss);
	if (v->has_parent && !mi->have[ITEM_PL])
		return vdisk_fail(EINVAL, "%s: HasParent is set but there is no parent locator",
				  v->base.path);
	return 0;
}

static int read_item(struct vhdx_disk *v, const struct meta_items *mi, int k, uint8_t *buf)
{
	return vhdx_io_read(v, v->meta_offset + mi->off[k], buf, mi->len[k]);
}

int vhdx_parse_metadata(struct vhdx_disk *v)
{
	struct meta_items mi;
	uint8_t fp[8], small[32];
	int r;

	if ((r = meta_table(v, &mi)) < 0 || (r = meta_overlaps(v, &mi)) < 0)
		return r;
	for (int k = 0; k < ITEM_PL; k++)
		if (!mi.have[k])
			return vdisk_fail(EINVAL, "%s: required metadata item %s is missing",
					  v->base.path, item_names[k]);
	if ((r = read_item(v, &mi, ITEM_FP, fp)) < 0 ||
	    (r = read_item(v, &mi, ITEM_VDS, small)) < 0 ||
	    (r = read_item(v, &mi, ITEM_VDID, small + 8)) < 0 ||
	    (r = read_item(v, &mi, ITEM_LSS, small + 24)) < 0 ||
	    (r = read_item(v, &mi, ITEM_PSS, small + 28)) < 0)
		return r;
	if ((r = meta_values(v, &mi, fp, small)) < 0 || !v->has_parent)
		return r;
	uint8_t *pl = malloc(mi.len[ITEM_PL] ? mi.len[ITEM_PL] : 1);
	if (!pl)
		return vdisk_fail(ENOMEM, "out of memory");
	r = read_item(v, &mi, ITEM_PL, pl);
	if (r == 0)
		r = parse_locator(v, pl, mi.len[ITEM_PL]);
	free(pl);
	return r;
}

/* ---- 2.5 BAT geometry ---- */

uint64_t vhdx_bat_entries_for(const struct vhdx_disk *v, uint64_t size_bytes)
{
	uint64_t n = (size_bytes + v->block_bytes - 1) / v->block_bytes;

	if (v->has_parent)
		return (n + v->chunk_ratio - 1) / v->chunk_ratio * (v->chunk_ratio + 1);
	return n + (n - 1) / v->chunk_ratio;
}

int vhdx_parse_geometry(struct vhdx_disk *v)
{
	v->chunk_ratio = (uint32_t)((VHDX_CHUNK_SECTORS * v->base.logical_sector_bytes) /
				    v->block_bytes);
	v->payload_blocks = (v->base.size_bytes + v->block_bytes - 1) / v->block_bytes;
	v->bat_entries = vhdx_bat_entries_for(v, v->base.size_bytes);
	if (v->bat_entries > v->bat_length / 8)
		return vdisk_fail(EINVAL, "%s: BAT region of %llu bytes is too small for %llu "
				  "entries (virtual size %llu, block size %u)", v->base.path,
				  (unsigned long long)v->bat_length,
				  (unsigned long long)v->bat_entries,
				  (unsigned long long)v->base.size_bytes, v->block_bytes);
	return 0;
}

/* ---- reading ---- */

/* PARTIALLY_PRESENT: the chunk's sector bitmap (LSB first) picks this file or the parent
 * for each logical sector. */
static int read_partial(struct vhdx_disk *v, uint64_t block, uint64_t file_off, uint64_t in,
			uint8_t *p, size_t n)
{
	uint64_t chunk = block / v->chunk_ratio, sb;
	uint32_t lss = v->base.logical_sector_bytes;
	int r = vhdx_bat_get(v, chunk * (v->chunk_ratio + 1) + v->chunk_ratio, &sb);
	if (r < 0)
		return r;
	uint64_t bit0 = (block % v->chunk_ratio) * (v->block_bytes / lss);
	uint64_t first = in / lss, last = (in + n - 1) / lss;
	size_t nbytes = (size_t)((bit0 + last) / 8 - (bit0 + first) / 8 + 1);
	uint8_t *bm = malloc(nbytes);
	if (!bm)
		return vdisk_fail(ENOMEM, "out of memory");
	r = vhdx_io_read(v, (sb & VHDX_BAT_OFFSET_MASK) + (bit0 + first) / 8, bm, nbytes);
	uint64_t pos = in, base_byte = (bit0 + first) / 8;
	while (r == 0 && pos < in + n) {
		uint64_t s = pos / lss, bit = bit0 + s;
		bool mine = bm[bit / 8 - base_byte] >> (bit % 8) & 1;
		uint64_t end = (s + 1) * lss < in + n ? (s + 1) * lss : in + n;
		uint8_t *dst = p + (pos - in);
		if (mine)
			r = vhdx_io_read_data(v, file_off + pos, dst, end - pos);
		else
			r = vdisk_read(v->base.parent, block * v->block_bytes + pos, dst, end - pos);
		pos = end;
	}
	free(bm);
	return r;
}

static int read_block(struct vhdx_disk *v, uint64_t block, uint64_t in, uint8_t *p, size_t n)
{
	uint64_t e;
	int r = vhdx_bat_get(v, vhdx_bat_index(v, block), &e);
	if (r < 0)
		return r;
	switch (e & VHDX_BAT_STATE_MASK) {
	case VHDX_BLOCK_FULLY_PRESENT:
		return vhdx_io_read_data(v, (e & VHDX_BAT_OFFSET_MASK) + in, p, n);
	case VHDX_BLOCK_PARTIALLY_PRESENT:
		return read_partial(v, block, e & VHDX_BAT_OFFSET_MASK, in, p, n);
	case VHDX_BLOCK_ZERO:
		memset(p, 0, n);
		return 0;
	default: /* NOT_PRESENT, UNDEFINED, UNMAPPED (3 and draft 5): parent or zeros */
		if (v->base.parent)
			return vdisk_read(v->base.parent, block * v->block_bytes + in, p, n);
		memset(p, 0, n);
		return 0;
	}
}

static int vhdx_read(struct vdisk *d, uint64_t off, void *buf, size_t len)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;
	uint8_t *p = buf;

	while (len > 0) {
		uint64_t block = off / v->block_bytes, in = off % v->block_bytes;
		size_t n = v->block_bytes - in < len ? (size_t)(v->block_bytes - in) : len;
		int r = read_block(v, block, in, p, n);
		if (r < 0)
			return r;
		p += n, off += n, len -= n;
	}
	return 0;
}

/* ---- map ---- */

static int map_block(struct vhdx_disk *v, uint64_t off, uint64_t max_len, uint64_t *run,
		     unsigned *state)
{
	uint64_t block = off / v->block_bytes, e;
	uint64_t left = v->block_bytes - off % v->block_bytes;
	int r = vhdx_bat_get(v, vhdx_bat_index(v, block), &e);
	if (r < 0)
		return r;
	*run = left < max_len ? left : max_len;
	unsigned s = e & VHDX_BAT_STATE_MASK;
	if (s == VHDX_BLOCK_FULLY_PRESENT || s == VHDX_BLOCK_PARTIALLY_PRESENT)
		*state = VDISK_EXTENT_DATA;
	else if (s == VHDX_BLOCK_ZERO || !v->base.parent)
		*state = VDISK_EXTENT_ZERO;
	else
		return vdisk_map(v->base.parent, off, *run, run, state);
	return 0;
}

static int vhdx_map(struct vdisk *d, uint64_t off, uint64_t max_len, uint64_t *run_len,
		    unsigned *state)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;
	uint64_t run, done;
	unsigned s;
	int r = map_block(v, off, max_len, &done, state);

	/* Merge following blocks of the same kind; stop at the first parent-clipped run. */
	while (r == 0 && done < max_len && (off + done) % v->block_bytes == 0) {
		r = map_block(v, off + done, max_len - done, &run, &s);
		if (r < 0 || s != *state)
			break;
		done += run;
	}
	*run_len = done;
	return r < 0 ? r : 0;
}

/* ---- info and close ---- */

static int vhdx_info(struct vdisk *d, struct vdisk_info *out)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;

	out->block_bytes = v->block_bytes;
	out->allocated_bytes = v->allocated_bytes;
	out->log_state = v->log_state;
	snprintf(out->creator, sizeof(out->creator), "%s", v->creator);
	vdisk_guid_to_str(v->disk_id, out->disk_id);
	vdisk_guid_to_str(v->header + VHDX_HDR(data_write_guid), out->data_write_guid);
	return 0;
}

void vhdx_free(struct vhdx_disk *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->overlay_count; i++)
		free(v->overlay[i].data);
	free(v->overlay);
	free(v->slots);
	free(v->block_buf);
	free(v);
}

/* A clean close clears LogGuid. If that fails the file keeps a valid, already applied log
 * whose replay is idempotent, so nothing is lost: the next open replays it again. */
static void vhdx_close(struct vdisk *d)
{
	struct vhdx_disk *v = (struct vhdx_disk *)d;
	static const uint8_t zero[16];

	if (v->session && v->dirty_pages == 0)
		vhdx_header_update(v, zero);
	vhdx_free(v);
}

static const struct vdisk_ops vhdx_ops = {
	.name = "vhdx",
	.read = vhdx_read,
	.write = vhdx_write,
	.flush = vhdx_flush,
	.map = vhdx_map,
	.resize = vhdx_resize,
	.info = vhdx_info,
	.close = vhdx_close,
};

/* ---- open ---- */

/* Windows paths: "\\?\d:\dir\f.vhdx" or "d:\dir\f.vhdx" mean nothing on Linux; we try the
 * path with the drive stripped as an absolute path, then its basename next to the child. */
static int try_parent(struct vhdx_disk *v, const char *path, struct vdisk **parent)
{
	if (access(path, R_OK) != 0)
		return -ENOENT;
	return vdisk_open_parent(&v->base, path, parent);
}

static int locate_parent(struct vhdx_disk *v, struct vdisk **parent, char *tried, size_t tlen)
{
	char path[4096];
	int r = -ENOENT;

	tried[0] = 0;
	if (v->parent_relative[0] &&
	    vdisk_resolve_relative(v->base.path, v->parent_relative, path, sizeof(path)) == 0) {
		snprintf(tried, tlen, "relative_path %.1000s", path);
		if ((r = try_parent(v, path, parent)) != -ENOENT)
			return r;
	}
	const char *abs = v->parent_absolute;
	if (!strncmp(abs, "\\\\?\\", 4))
		abs += 4;
	if (abs[0] && abs[1] == ':')
		abs += 2;
	if (abs[0]) {
		snprintf(path, sizeof(path), "%s", abs);
		for (char *c = path; *c; c++)
			*c = *c == '\\' ? '/' : *c;
		size_t t = strlen(tried);
		snprintf(tried + t, tlen - t, "%sabsolute_win32_path %.1000s", t ? ", " : "", path);
		if (path[0] == '/' && (r = try_parent(v, path, parent)) != -ENOENT)
			return r;
		/* Last resort: the parent's file name in the child's directory. */
		const char *base = strrchr(path, '/');
		char name[1024];
		snprintf(name, sizeof(name), "%.1000s", base ? base + 1 : path);
		if (name[0] && vdisk_resolve_relative(v->base.path, name, path, sizeof(path)) == 0) {
			t = strlen(tried);
			snprintf(tried + t, tlen - t, ", basename in the child's directory %.1000s", path);
			if ((r = try_parent(v, path, parent)) != -ENOENT)
				return r;
		}
	}
	return r;
}

static int check_parent(struct vhdx_disk *v, struct vdisk *p)
{
	char want[64];

	if (p->format != VDISK_FORMAT_VHDX)
		return vdisk_fail(ENOTSUP, "%s: parent %s is not a VHDX file", v->base.path,
				  p->path);
	struct vhdx_disk *pv = (struct vhdx_disk *)p;
	vdisk_guid_to_str(pv->header + VHDX_HDR(data_write_guid), want + 1);
	want[0] = '{';
	strcat(want, "}");
	if (strcasecmp(want, v->parent_linkage) &&
	    (!v->parent_linkage2[0] || strcasecmp(want, v->parent_linkage2)))
		return vdisk_fail(EINVAL, "%s: parent %s has DataWriteGuid %s but the child's "
				  "parent_linkage is %s: the parent changed since the child was "
				  "created", v->base.path, p->path, want, v->parent_linkage);
	if (p->logical_sector_bytes != v->base.logical_sector_bytes ||
	    p->size_bytes != v->base.size_bytes)
		return vdisk_fail(EINVAL, "%s: parent %s has %u-byte sectors and %llu bytes, the "
				  "child %u and %llu", v->base.path, p->path,
				  p->logical_sector_bytes, (unsigned long long)p->size_bytes,
				  v->base.logical_sector_bytes,
				  (unsigned long long)v->base.size_bytes);
	return 0;
}

int vhdx_open_parent(struct vhdx_disk *v)
{
	struct vdisk *p = NULL;
	char tried[3200];
	int r = locate_parent(v, &p, tried, sizeof(tried));

	if (r == -ENOENT)
		return vdisk_fail(ENOENT, "%s: parent %s not found (tried %s; volume_path is "
				  "Windows-only and skipped)", v->base.path, v->parent_linkage,
				  tried[0] ? tried : "no usable locator path");
	if (r < 0)
		return r;
	r = check_parent(v, p);
	if (r < 0) {
		vdisk_close(p);
		return r;
	}
	v->base.parent = p;
	return 0;
}

static int open_steps(struct vhdx_disk *v)
{
	int r;

	if ((r = vhdx_parse_file_id(v)) < 0 || (r = vhdx_parse_headers(v)) < 0 ||
	    (r = vhdx_log_replay(v, v->base.flags & VDISK_OPEN_RDWR)) < 0 ||
	    (r = vhdx_parse_regions(v)) < 0 || (r = vhdx_parse_metadata(v)) < 0 ||
	    (r = vhdx_parse_geometry(v)) < 0)
		return r;
	v->slots = calloc(VHDX_BAT_CACHE_SLOTS, sizeof(*v->slots));
	if (!v->slots)
		return vdisk_fail(ENOMEM, "out of memory");
	if ((r = vhdx_bat_scan(v, NULL, NULL)) < 0)
		return r;
	return v->has_parent ? vhdx_open_parent(v) : 0;
}

int vhdx_open(const struct vdisk *base, struct vdisk **out)
{
	struct stat st;
	struct vhdx_disk *v = calloc(1, sizeof(*v));

	if (!v)
		return vdisk_fail(ENOMEM, "out of memory");
	v->base = *base;
	v->base.ops = &vhdx_ops;
	v->base.format = VDISK_FORMAT_VHDX;
	v->base.parent = NULL;
	if (fstat(base->fd, &st) < 0) {
		int r = vdisk_fail(errno, "%s: stat failed: %s", base->path, strerror(errno));
		vhdx_free(v);
		return r;
	}
	v->host_bytes = v->file_bytes = (uint64_t)st.st_size;
	int r = open_steps(v);
	if (r < 0) {
		if (v->base.parent)
			vdisk_close(v->base.parent);
		vhdx_free(v);
		return r;
	}
	v->base.subformat = v->has_parent ? VDISK_SUB_DIFFERENCING :
			    v->leave_allocated ? VDISK_SUB_FIXED : VDISK_SUB_DYNAMIC;
	*out = &v->base;
	return 0;
}
