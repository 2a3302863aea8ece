/* bootfix/esp.c - esp_format(): a complete FAT32 file system written in one pass into a
 * partition of a vdisk, holding the caller's files and nothing else (the EFI system partition).
 *
 * Everything is decided before the first write: the geometry (cluster size as mkfs.fat picks
 * it), a tree of directories made from the file paths with their 8.3 aliases and long names,
 * and one contiguous run of clusters per directory and file (root at cluster 2, then the other
 * directories, then the files in the caller's order). The writer then puts down the reserved
 * area, both FATs, every directory cluster and the file data, and the boot sector last.
 * Layouts and the spec sections are in fat-format.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include "bootfix/bootfix.h"
#include "bootfix/fat-format.h"
#include "include/byteorder.h"
#include "vhdx/vdisk.h"

#define MIB (1024ull * 1024ull)
/* Caps on what a caller may ask for; a real ESP holds tens to a few thousand files. */
#define ESP_MAX_NODES 8192u
#define ESP_MAX_PATH_BYTES 4096u
#define ESP_RESERVED_SECTORS 32u /* what mkfs.fat and Windows use on FAT32 */
#define ESP_FSINFO_SECTOR 1u
#define ESP_BACKUP_BOOT_SECTOR 6u
#define ESP_ZERO_CHUNK (1u << 20)

/* A directory or file of the volume; nodes[0] is the root. Names are borrowed from the
 * caller's paths for the duration of esp_format(). */
struct esp_node {
	const char *name;
	size_t name_len;
	size_t parent;                /* index of the containing directory */
	bool is_dir;
	const struct esp_file *file;  /* files only */
	uint8_t short_name[11];       /* "GRUBX64 EFI" */
	bool has_short;
	bool needs_lfn;               /* the name is not a valid upper-case 8.3 name */
	uint8_t basis[11];            /* fatgen103 basis name, for names that need an alias */
	bool lossy;                   /* the basis lost information: the alias needs ~N */
	uint32_t first_cluster;       /* 0 for an empty file */
	uint32_t clusters;
};

struct esp_geom {
	uint32_t sector_bytes;
	uint32_t sectors;             /* of the volume */
	uint32_t sectors_per_cluster;
	uint32_t cluster_bytes;
	uint32_t reserved_sectors;
	uint32_t fat_sectors;         /* per FAT; there are two */
	uint32_t clusters;            /* data clusters, numbered 2 .. clusters + 1 */
};

struct esp_ctx {
	struct vdisk *d;
	uint64_t part_offset;         /* bytes */
	uint64_t part_bytes;
	struct esp_geom g;
	struct esp_node *nodes;
	size_t n_nodes;
	uint32_t used_clusters;
	uint32_t volume_id;
	uint8_t label[11];
	bool has_label;
	uint8_t fat_time[2], fat_date[2];
};

/* ---- names ---- */

/* Characters a short (8.3) name may hold besides A-Z and 0-9 ("FAT Directory Structure"). */
static bool esp_short_char(char ch)
{
	if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("$%'-_@~`!(){}^#&", ch) != NULL;
}

/* Long names: printable ASCII without the characters Windows forbids; no trailing dot or
 * space, which Windows strips (so "." and ".." are refused too). */
static int esp_check_name(const char *path, const char *name, size_t len)
{
	if (len == 0)
		return vdisk_fail(EINVAL, "esp_format: path \"%s\" has an empty component "
				  "(expected relative 'DIR/NAME', no leading, double or trailing '/')", path);
	if (len > FAT_LFN_MAX_UNITS)
		return vdisk_fail(EINVAL, "esp_format: path \"%s\": a name of %zu characters (at most %u)",
				  path, len, FAT_LFN_MAX_UNITS);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch < 0x20 || ch >= 0x7F || strchr("\"*:<>?\\|", ch))
			return vdisk_fail(EINVAL, "esp_format: path \"%s\": character 0x%02x at byte %zu "
					  "is not allowed (printable ASCII except \"*:<>?\\| only)",
					  path, ch, (size_t)(name + i - path));
	}
	if (name[len - 1] == '.' || name[len - 1] == ' ')
		return vdisk_fail(EINVAL, "esp_format: path \"%s\": a name may not end in '.' or ' '",
				  path);
	return 0;
}

/* The name as an 11-byte short name if it already is a valid upper-case 8.3 name. */
static bool esp_exact_83(const char *name, size_t len, uint8_t out[11])
{
	const char *dot = memchr(name, '.', len);
	size_t base = dot ? (size_t)(dot - name) : len, ext = dot ? len - base - 1 : 0;
	if (base == 0 || base > 8 || ext > 3 || (dot && memchr(dot + 1, '.', ext)))
		return false;
	for (size_t i = 0; i < len; i++)
		if (name + i != dot && !esp_short_char(name[i]))
			return false;
	memset(out, ' ', 11);
	memcpy(out, name, base);
	if (dot)
		memcpy(out + 8, dot + 1, ext);
	return true;
}

/* fatgen103 "basis-name generation": upper case, drop spaces and leading dots, replace what
 * a short name cannot hold by '_', split at the last dot, truncate to 8 + 3. Returns whether
 * information was lost (then the alias needs a numeric tail). */
static bool esp_basis_name(const char *name, size_t len, uint8_t out[11])
{
	bool lossy = false;
	size_t start = 0;
	while (start < len && (name[start] == '.' || name[start] == ' '))
		start++;
	lossy = start > 0;
	const char *last_dot = NULL;
	for (size_t i = start; i < len; i++)
		if (name[i] == '.')
			last_dot = name + i;
	memset(out, ' ', 11);
	size_t n_base = 0, n_ext = 0;
	for (const char *p = name + start; p < name + len; p++) {
		bool in_ext = last_dot && p > last_dot;
		char ch = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
		if (p == last_dot)
			continue;
		if (ch == ' ' || ch == '.') {
			lossy = true;
			continue;
		}
		if (!esp_short_char(ch)) {
			ch = '_';
			lossy = true;
		}
		if (in_ext ? n_ext >= 3 : n_base >= 8) {
			lossy = true;
			continue;
		}
		if (in_ext)
			out[8 + n_ext++] = (uint8_t)ch;
		else
			out[n_base++] = (uint8_t)ch;
	}
	if (n_base == 0) {
		out[0] = '_';
		lossy = true;
	}
	return lossy;
}

/* Whether a short name is taken in directory dir: by a sibling's short name, or reserved for
 * a sibling not given one yet whose long name is that 8.3 name in other case (beside
 * "longfi~1.txt", which will be LONGFI~1.TXT, "longfilename.txt" must become LONGFI~2.TXT). */
static bool esp_short_taken(const struct esp_ctx *c, size_t dir, size_t self, const uint8_t sn[11])
{
	for (size_t i = 1; i < c->n_nodes; i++) {
		const struct esp_node *n = &c->nodes[i];
		if (i == self || n->parent != dir)
			continue;
		if (n->has_short && memcmp(n->short_name, sn, 11) == 0)
			return true;
		if (!n->has_short && !n->lossy && memcmp(n->basis, sn, 11) == 0)
			return true;
	}
	return false;
}

/* Where the ~N search of node idx starts: past the tails its earlier siblings with the same
 * basis took, so that a directory of many similar names costs a few tries per name, not one
 * per sibling. Every candidate is still checked; this only skips known-taken ones. */
static unsigned esp_first_tail(const struct esp_ctx *c, size_t idx)
{
	const struct esp_node *n = &c->nodes[idx];
	unsigned k = 1;
	for (size_t i = 1; i < idx; i++) {
		const struct esp_node *s = &c->nodes[i];
		if (s->parent == n->parent && s->lossy && s->needs_lfn &&
		    memcmp(s->basis, n->basis, 11) == 0)
			k++;
	}
	return k;
}

/* The alias of a name that is not a valid 8.3 name: the basis name, or "BASIS~N.EXT". */
static int esp_make_alias(struct esp_ctx *c, size_t idx)
{
	struct esp_node *n = &c->nodes[idx];
	uint8_t cand[11];
	const uint8_t *basis = n->basis;
	if (!n->lossy && !esp_short_taken(c, n->parent, idx, basis)) {
		memcpy(n->short_name, basis, 11);
		return 0;
	}
	size_t base_len = 8;
	while (base_len > 0 && basis[base_len - 1] == ' ')
		base_len--;
	for (unsigned k = esp_first_tail(c, idx); k <= 999999; k++) {
		char tail[8];
		int tl = snprintf(tail, sizeof(tail), "~%u", k);
		size_t keep = base_len < 8 - (size_t)tl ? base_len : 8 - (size_t)tl;
		memcpy(cand, basis, 11);
		memset(cand + keep, ' ', 8 - keep);
		memcpy(cand + keep, tail, (size_t)tl);
		if (!esp_short_taken(c, n->parent, idx, cand)) {
			memcpy(n->short_name, cand, 11);
			return 0;
		}
	}
	return vdisk_fail(ENOSPC, "esp_format: no free short name for \"%.*s\"",
			  (int)n->name_len, n->name);
}

/* Short names for every node: exact 8.3 names first, so that an alias never takes the short
 * name a sibling spells out itself. */
static int esp_assign_short_names(struct esp_ctx *c)
{
	for (size_t i = 1; i < c->n_nodes; i++) {
		struct esp_node *n = &c->nodes[i];
		n->needs_lfn = !esp_exact_83(n->name, n->name_len, n->short_name);
		n->has_short = !n->needs_lfn;
		if (n->needs_lfn)
			n->lossy = esp_basis_name(n->name, n->name_len, n->basis);
	}
	for (size_t i = 1; i < c->n_nodes; i++) {
		if (c->nodes[i].has_short)
			continue;
		int r = esp_make_alias(c, i);
		if (r < 0)
			return r;
		c->nodes[i].has_short = true;
	}
	return 0;
}

/* ---- the tree ---- */

static ssize_t esp_find_child(const struct esp_ctx *c, size_t dir, const char *name, size_t len)
{
	for (size_t i = 1; i < c->n_nodes; i++) {
		const struct esp_node *n = &c->nodes[i];
		/* FAT names compare case-insensitively: "EFI/boot" and "EFI/BOOT" are one directory. */
		if (n->parent == dir && n->name_len == len && strncasecmp(n->name, name, len) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static int esp_add_node(struct esp_ctx *c, size_t parent, const char *name, size_t len,
			const struct esp_file *file, size_t *idx)
{
	if (c->n_nodes > ESP_MAX_NODES) /* nodes[0], the root, is not counted */
		return vdisk_fail(EINVAL, "esp_format: more than %u files and directories",
				  ESP_MAX_NODES);
	struct esp_node *n = &c->nodes[c->n_nodes];
	memset(n, 0, sizeof(*n));
	n->name = name;
	n->name_len = len;
	n->parent = parent;
	n->is_dir = file == NULL;
	n->file = file;
	*idx = c->n_nodes++;
	return 0;
}

/* Walk f->path, creating the directories it names, and add the file itself. */
static int esp_add_path(struct esp_ctx *c, const struct esp_file *f)
{
	const char *path = f->path;
	if (!path || strnlen(path, ESP_MAX_PATH_BYTES) >= ESP_MAX_PATH_BYTES)
		return vdisk_fail(EINVAL, "esp_format: a file path is missing or longer than %u bytes",
				  ESP_MAX_PATH_BYTES - 1);
	if (f->bytes > FAT_FILE_MAX_BYTES)
		return vdisk_fail(EFBIG, "esp_format: \"%s\" has %zu bytes; FAT32 files hold at most "
				  "%llu", path, f->bytes, FAT_FILE_MAX_BYTES);
	if (f->bytes > 0 && !f->data)
		return vdisk_fail(EINVAL, "esp_format: \"%s\": %zu bytes but no data", path, f->bytes);
	size_t dir = 0;
	for (const char *p = path;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		int r = esp_check_name(path, p, len);
		if (r < 0)
			return r;
		ssize_t found = esp_find_child(c, dir, p, len);
		if (!slash) {
			if (found >= 0)
				return vdisk_fail(EINVAL, "esp_format: \"%s\" is given twice (FAT names "
						  "ignore case)", path);
			return esp_add_node(c, dir, p, len, f, &dir);
		}
		if (found >= 0 && !c->nodes[found].is_dir)
			return vdisk_fail(EINVAL, "esp_format: \"%s\": \"%.*s\" is a file, not a directory",
					  path, (int)len, p);
		if (found >= 0)
			dir = (size_t)found;
		else if ((r = esp_add_node(c, dir, p, len, NULL, &dir)) < 0)
			return r;
		p = slash + 1;
	}
}

static int esp_build_tree(struct esp_ctx *c, const struct esp_file *files, size_t n_files)
{
	c->nodes = calloc(ESP_MAX_NODES + 1, sizeof(*c->nodes));
	if (!c->nodes)
		return vdisk_fail(ENOMEM, "esp_format: out of memory for the directory tree");
	c->nodes[0].is_dir = true;
	c->n_nodes = 1;
	for (size_t i = 0; i < n_files; i++) {
		int r = esp_add_path(c, &files[i]);
		if (r < 0)
			return r;
	}
	return esp_assign_short_names(c);
}

/* Entries a directory needs: "." and ".." (not in the root), the volume label (root only),
 * and per child its LFN entries and its short entry. */
static uint32_t esp_dir_entries(const struct esp_ctx *c, size_t dir)
{
	uint32_t n = dir == 0 ? (c->has_label ? 1 : 0) : 2;
	for (size_t i = 1; i < c->n_nodes; i++) {
		const struct esp_node *ch = &c->nodes[i];
		if (ch->parent != dir)
			continue;
		n += 1 + (ch->needs_lfn ? (uint32_t)((ch->name_len + FAT_LFN_UNITS - 1) / FAT_LFN_UNITS)
					: 0);
	}
	return n;
}

/* ---- geometry ---- */

/* mkfs.fat's FAT32 cluster size, after Microsoft's table (fatgen103, "FAT Type
 * Determination"): 512 bytes up to 260 MiB, 4 KiB to 8 GiB, 8 KiB to 16 GiB, 16 KiB to
 * 32 GiB, 32 KiB beyond; never less than a sector. */
static uint32_t esp_cluster_bytes(uint64_t volume_bytes, uint32_t sector_bytes)
{
	uint64_t mib = (volume_bytes + MIB - 1) / MIB;
	uint32_t bytes = mib <= 260 ? 512 : mib <= 8192 ? 4096 : mib <= 16384 ? 8192 :
			 mib <= 32768 ? 16384 : 32768;
	return bytes < sector_bytes ? sector_bytes : bytes;
}

/* Reserved area, FAT size and cluster count for a volume of `sectors`. The FAT is sized for
 * the clusters there would be without it, which is enough; the reserved area then grows so
 * the data area starts on a cluster boundary (as Windows aligns it). */
static int esp_geometry(uint64_t sectors, uint32_t sector_bytes, struct esp_geom *g)
{
	memset(g, 0, sizeof(*g));
	g->sector_bytes = sector_bytes;
	if (sectors > UINT32_MAX)
		return vdisk_fail(EINVAL, "esp_format: %llu sectors is more than FAT32's 32-bit sector "
				  "count", (unsigned long long)sectors);
	g->sectors = (uint32_t)sectors;
	g->cluster_bytes = esp_cluster_bytes(sectors * sector_bytes, sector_bytes);
	g->sectors_per_cluster = g->cluster_bytes / sector_bytes;
	uint32_t spc = g->sectors_per_cluster, rsvd = ESP_RESERVED_SECTORS;
	if (g->sectors < rsvd + 2 + 2 * spc)
		goto too_small;
	uint64_t upper = (g->sectors - rsvd) / spc;
	g->fat_sectors = (uint32_t)(((upper + 2) * 4 + sector_bytes - 1) / sector_bytes);
	rsvd += (spc - (rsvd + 2 * g->fat_sectors) % spc) % spc;
	g->reserved_sectors = rsvd;
	if ((uint64_t)rsvd + 2ull * g->fat_sectors >= g->sectors)
		goto too_small;
	g->clusters = (g->sectors - rsvd - 2 * g->fat_sectors) / spc;
	if (g->clusters < FAT32_MIN_CLUSTERS)
		goto too_small;
	if (g->clusters > FAT32_MAX_CLUSTERS)
		return vdisk_fail(EINVAL, "esp_format: %u clusters of %u bytes is more than FAT32's "
				  "%u", g->clusters, g->cluster_bytes, FAT32_MAX_CLUSTERS);
	return 0;
too_small:
	return vdisk_fail(EINVAL, "esp_format: a partition of %llu sectors of %u bytes is too small "
			  "for FAT32: %u clusters of %u bytes, at least %u needed (about %llu MiB)",
			  (unsigned long long)sectors, sector_bytes, g->clusters, g->cluster_bytes,
			  FAT32_MIN_CLUSTERS,
			  (unsigned long long)(((uint64_t)FAT32_MIN_CLUSTERS * g->cluster_bytes) / MIB + 1));
}

/* One contiguous run per directory (root first, at cluster 2) and per non-empty file. */
static int esp_allocate(struct esp_ctx *c)
{
	uint64_t next = FAT_FIRST_CLUSTER, cb = c->g.cluster_bytes;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c->n_nodes; i++) {
			struct esp_node *n = &c->nodes[i];
			if (n->is_dir != (pass == 0))
				continue;
			if (n->is_dir) {
				uint32_t entries = esp_dir_entries(c, i);
				if (entries > FAT_DIR_MAX_ENTRIES)
					return vdisk_fail(ENOSPC, "esp_format: directory \"%.*s\" needs %u "
							  "entries, FAT allows %u", (int)n->name_len,
							  n->name, entries, FAT_DIR_MAX_ENTRIES);
				n->clusters = (uint32_t)((entries * (uint64_t)FAT_DIR_ENTRY_BYTES + cb - 1) / cb);
				if (n->clusters == 0)
					n->clusters = 1;
			} else {
				n->clusters = (uint32_t)((n->file->bytes + cb - 1) / cb);
			}
			n->first_cluster = n->clusters ? (uint32_t)next : 0;
			next += n->clusters;
		}
	}
	uint64_t used = next - FAT_FIRST_CLUSTER;
	if (used > c->g.clusters)
		return vdisk_fail(ENOSPC, "esp_format: the files and directories need %llu clusters of "
				  "%u bytes; the volume has %u", (unsigned long long)used,
				  c->g.cluster_bytes, c->g.clusters);
	c->used_clusters = (uint32_t)used;
	return 0;
}

/* ---- rendering ---- */

/* FAT dates and times ("FAT Directory Structure", Date and Time Formats), UTC, clamped to the
 * years FAT can hold: 0 or anything before 1980 becomes 1980-01-01 00:00:00. */
static void esp_set_time(struct esp_ctx *c, int64_t unix_seconds)
{
	struct tm tm;
	time_t t = (time_t)unix_seconds;
	/* gmtime_r fails only for years beyond int: past either end of FAT's range */
	int year = unix_seconds > 0 ? FAT_LAST_YEAR + 1 : 0;
	if (gmtime_r(&t, &tm))
		year = tm.tm_year + 1900;
	if (year < FAT_EPOCH_YEAR)
		tm = (struct tm){ .tm_year = FAT_EPOCH_YEAR - 1900, .tm_mon = 0, .tm_mday = 1 };
	else if (year > FAT_LAST_YEAR)
		tm = (struct tm){ .tm_year = FAT_LAST_YEAR - 1900, .tm_mon = 11, .tm_mday = 31,
				  .tm_hour = 23, .tm_min = 59, .tm_sec = 58 };
	put_le16(c->fat_date, (uint16_t)((tm.tm_year + 1900 - FAT_EPOCH_YEAR) << 9 |
					 (tm.tm_mon + 1) << 5 | tm.tm_mday));
	put_le16(c->fat_time, (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2));
}

static void esp_put_short(const struct esp_ctx *c, uint8_t *e, const uint8_t name[11],
			  uint8_t attributes, uint32_t cluster, uint32_t bytes)
{
	memcpy(e + FAT_DIR(name), name, 11);
	e[FAT_DIR(attributes)] = attributes;
	memcpy(e + FAT_DIR(create_time), c->fat_time, 2);
	memcpy(e + FAT_DIR(create_date), c->fat_date, 2);
	memcpy(e + FAT_DIR(access_date), c->fat_date, 2);
	memcpy(e + FAT_DIR(write_time), c->fat_time, 2);
	memcpy(e + FAT_DIR(write_date), c->fat_date, 2);
	put_le16(e + FAT_DIR(first_cluster_hi), (uint16_t)(cluster >> 16));
	put_le16(e + FAT_DIR(first_cluster_lo), (uint16_t)cluster);
	put_le32(e + FAT_DIR(file_size), bytes);
}

/* The long name of n as LFN entries, last part first; returns the bytes written. */
static size_t esp_put_lfn(const struct esp_node *n, uint8_t *e)
{
	/* Where the 13 UTF-16 units of one entry sit: name1, name2, name3. */
	static const uint8_t unit_off[FAT_LFN_UNITS] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	size_t count = (n->name_len + FAT_LFN_UNITS - 1) / FAT_LFN_UNITS;
	uint8_t sum = fat_short_name_checksum(n->short_name);
	for (size_t k = count; k >= 1; k--, e += FAT_DIR_ENTRY_BYTES) {
		e[FAT_LFN(order)] = (uint8_t)(k | (k == count ? FAT_LFN_LAST : 0));
		e[FAT_LFN(attributes)] = FAT_ATTR_LFN;
		e[FAT_LFN(checksum)] = sum;
		for (size_t u = 0; u < FAT_LFN_UNITS; u++) {
			size_t at = (k - 1) * FAT_LFN_UNITS + u;
			/* The name ends with one NUL unit unless it fills the entry; 0xFFFF pads. */
			uint16_t unit = at < n->name_len ? (uint8_t)n->name[at] :
					at == n->name_len ? 0x0000 : 0xFFFF;
			put_le16(e + unit_off[u], unit);
		}
	}
	return count * FAT_DIR_ENTRY_BYTES;
}

/* The clusters of directory dir, fully (unused entries zero: the end-of-directory mark). */
static void esp_render_dir(const struct esp_ctx *c, size_t dir, uint8_t *buf)
{
	static const uint8_t dot[11] = ".          ", dotdot[11] = "..         ";
	const struct esp_node *d = &c->nodes[dir];
	uint8_t *e = buf;
	if (dir == 0 && c->has_label) {
		esp_put_short(c, e, c->label, FAT_ATTR_VOLUME_ID, 0, 0);
		e += FAT_DIR_ENTRY_BYTES;
	}
	if (dir != 0) {
		/* ".." of a directory in the root points at cluster 0, not at the root's cluster. */
		uint32_t up = d->parent == 0 ? 0 : c->nodes[d->parent].first_cluster;
		esp_put_short(c, e, dot, FAT_ATTR_DIRECTORY, d->first_cluster, 0);
		esp_put_short(c, e + FAT_DIR_ENTRY_BYTES, dotdot, FAT_ATTR_DIRECTORY, up, 0);
		e += 2 * FAT_DIR_ENTRY_BYTES;
	}
	for (size_t i = 1; i < c->n_nodes; i++) {
		const struct esp_node *n = &c->nodes[i];
		if (n->parent != dir)
			continue;
		if (n->needs_lfn)
			e += esp_put_lfn(n, e);
		esp_put_short(c, e, n->short_name, n->is_dir ? FAT_ATTR_DIRECTORY : FAT_ATTR_ARCHIVE,
			      n->first_cluster, n->is_dir ? 0 : (uint32_t)n->file->bytes);
		e += FAT_DIR_ENTRY_BYTES;
	}
}

/* Sector 0 (and its backup): the BPB of fatgen103 "Boot Sector and BPB" with a boot program
 * that only hands control back to the BIOS (INT 18h): an ESP is not BIOS-bootable. */
static void esp_render_boot_sector(const struct esp_ctx *c, uint64_t first_lba, uint8_t *s)
{
	static const uint8_t no_boot[] = { 0xCD, 0x18, 0xF4, 0xEB, 0xFD }; /* int 18h; hlt; jmp $-1 */
	const struct esp_geom *g = &c->g;
	s[0] = 0xEB, s[1] = FAT_BS(boot_code) - 2, s[2] = 0x90;
	memcpy(s + FAT_BS(oem_name), "MSWIN4.1", 8);
	put_le16(s + FAT_BS(bytes_per_sector), (uint16_t)g->sector_bytes);
	s[FAT_BS(sectors_per_cluster)] = (uint8_t)g->sectors_per_cluster;
	put_le16(s + FAT_BS(reserved_sectors), (uint16_t)g->reserved_sectors);
	s[FAT_BS(num_fats)] = 2;
	s[FAT_BS(media)] = FAT_MEDIA_FIXED;
	put_le16(s + FAT_BS(sectors_per_track), 63);
	put_le16(s + FAT_BS(num_heads), 255);
	/* 32 bits only; UEFI's FAT driver ignores it, so a partition past 2^32 sectors gets 0. */
	put_le32(s + FAT_BS(hidden_sectors), first_lba <= UINT32_MAX ? (uint32_t)first_lba : 0);
	put_le32(s + FAT_BS(total_sectors32), g->sectors);
	put_le32(s + FAT_BS(fat_size32), g->fat_sectors);
	put_le32(s + FAT_BS(root_cluster), c->nodes[0].first_cluster);
	put_le16(s + FAT_BS(fsinfo_sector), ESP_FSINFO_SECTOR);
	put_le16(s + FAT_BS(backup_boot_sector), ESP_BACKUP_BOOT_SECTOR);
	s[FAT_BS(drive_number)] = FAT_DRIVE_HARD_DISK;
	s[FAT_BS(boot_signature)] = FAT_EXT_BOOT_SIGNATURE;
	put_le32(s + FAT_BS(volume_id), c->volume_id);
	memcpy(s + FAT_BS(volume_label), c->has_label ? c->label : (const uint8_t *)"NO NAME    ", 11);
	memcpy(s + FAT_BS(fs_type), "FAT32   ", 8);
	memcpy(s + FAT_BS(boot_code), no_boot, sizeof(no_boot));
	s[FAT_BOOT_SIGNATURE_OFFSET] = 0x55;
	s[FAT_BOOT_SIGNATURE_OFFSET + 1] = 0xAA;
}

static void esp_render_fsinfo(const struct esp_ctx *c, uint8_t *s)
{
	uint32_t free_clusters = c->g.clusters - c->used_clusters;
	put_le32(s + FAT_FSI(lead_signature), FAT_FSINFO_LEAD_SIG);
	put_le32(s + FAT_FSI(struct_signature), FAT_FSINFO_STRUCT_SIG);
	put_le32(s + FAT_FSI(free_count), free_clusters);
	put_le32(s + FAT_FSI(next_free), free_clusters ? FAT_FIRST_CLUSTER + c->used_clusters
						       : FAT_FSINFO_UNKNOWN);
	put_le32(s + FAT_FSI(trail_signature), FAT_FSINFO_TRAIL_SIG);
}

/* ---- writing ---- */

/* Every write of esp_format goes through here: the one place that keeps it inside the
 * partition. */
static int esp_put(struct esp_ctx *c, uint64_t vol_sector, const void *buf, uint64_t bytes)
{
	uint64_t off = vol_sector * c->g.sector_bytes;
	if (off > c->part_bytes || bytes > c->part_bytes - off)
		return vdisk_fail(EIO, "esp_format: internal error: %llu bytes at volume sector %llu "
				  "would leave the partition", (unsigned long long)bytes,
				  (unsigned long long)vol_sector);
	return vdisk_write(c->d, c->part_offset + off, buf, (size_t)bytes);
}

/* Zero `sectors` from vol_sector, skipping runs the disk already reports as zero: a fresh
 * VHDX or a sparse raw file stays sparse; a reused area is really cleared. */
static int esp_zero(struct esp_ctx *c, uint64_t vol_sector, uint64_t sectors)
{
	uint64_t off = vol_sector * c->g.sector_bytes, end = off + sectors * c->g.sector_bytes;
	uint8_t *zeros = calloc(1, ESP_ZERO_CHUNK);
	int r = 0;
	if (!zeros)
		return vdisk_fail(ENOMEM, "esp_format: out of memory");
	while (r == 0 && off < end) {
		uint64_t run;
		unsigned state;
		r = vdisk_map(c->d, c->part_offset + off, end - off, &run, &state);
		if (r < 0)
			break;
		if (state != VDISK_EXTENT_ZERO) {
			run = run < ESP_ZERO_CHUNK ? run : ESP_ZERO_CHUNK;
			r = esp_put(c, off / c->g.sector_bytes, zeros, run);
		}
		off += run;
	}
	free(zeros);
	return r;
}

/* Sectors 0..reserved-1: boot sector zeroed for now (written last), FSInfo, the backups. */
static int esp_write_reserved(struct esp_ctx *c, uint64_t first_lba)
{
	uint32_t ss = c->g.sector_bytes;
	uint8_t *buf = calloc(c->g.reserved_sectors, ss);
	if (!buf)
		return vdisk_fail(ENOMEM, "esp_format: out of memory");
	esp_render_fsinfo(c, buf + ESP_FSINFO_SECTOR * ss);
	esp_render_boot_sector(c, first_lba, buf + ESP_BACKUP_BOOT_SECTOR * ss);
	esp_render_fsinfo(c, buf + (ESP_BACKUP_BOOT_SECTOR + ESP_FSINFO_SECTOR) * ss);
	int r = esp_put(c, 0, buf, (uint64_t)c->g.reserved_sectors * ss);
	free(buf);
	return r;
}

/* Both FATs: the chains of the used clusters, then zeros (free) to the end of each copy. */
static int esp_write_fats(struct esp_ctx *c)
{
	uint32_t ss = c->g.sector_bytes;
	uint64_t entries = FAT_FIRST_CLUSTER + (uint64_t)c->used_clusters;
	uint32_t used_sectors = (uint32_t)((entries * 4 + ss - 1) / ss);
	uint8_t *fat = calloc(used_sectors, ss);
	if (!fat)
		return vdisk_fail(ENOMEM, "esp_format: out of memory for the FAT");
	put_le32(fat, 0x0FFFFF00u | FAT_MEDIA_FIXED);
	put_le32(fat + 4, FAT32_FAT1);
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct esp_node *n = &c->nodes[i];
		for (uint32_t k = 0; k < n->clusters; k++) {
			uint32_t cl = n->first_cluster + k;
			put_le32(fat + 4 * (size_t)cl, k + 1 == n->clusters ? FAT32_EOC : cl + 1);
		}
	}
	int r = 0;
	for (uint32_t copy = 0; copy < 2 && r == 0; copy++) {
		uint64_t start = c->g.reserved_sectors + (uint64_t)copy * c->g.fat_sectors;
		r = esp_put(c, start, fat, (uint64_t)used_sectors * ss);
		if (r == 0)
			r = esp_zero(c, start + used_sectors, c->g.fat_sectors - used_sectors);
	}
	free(fat);
	return r;
}

static uint64_t esp_cluster_sector(const struct esp_ctx *c, uint32_t cluster)
{
	return c->g.reserved_sectors + 2ull * c->g.fat_sectors +
	       (uint64_t)(cluster - FAT_FIRST_CLUSTER) * c->g.sectors_per_cluster;
}

static int esp_write_dirs(struct esp_ctx *c)
{
	int r = 0;
	for (size_t i = 0; i < c->n_nodes && r == 0; i++) {
		const struct esp_node *n = &c->nodes[i];
		if (!n->is_dir)
			continue;
		uint8_t *buf = calloc(n->clusters, c->g.cluster_bytes);
		if (!buf)
			return vdisk_fail(ENOMEM, "esp_format: out of memory for a directory");
		esp_render_dir(c, i, buf);
		r = esp_put(c, esp_cluster_sector(c, n->first_cluster), buf,
			    (uint64_t)n->clusters * c->g.cluster_bytes);
		free(buf);
	}
	return r;
}

/* File data, whole clusters: the slack after the last byte is written as zeros. */
static int esp_write_files(struct esp_ctx *c)
{
	uint32_t cb = c->g.cluster_bytes;
	uint8_t *tail = malloc(cb);
	int r = 0;
	if (!tail)
		return vdisk_fail(ENOMEM, "esp_format: out of memory");
	for (size_t i = 0; i < c->n_nodes && r == 0; i++) {
		const struct esp_node *n = &c->nodes[i];
		if (n->is_dir || n->clusters == 0)
			continue;
		uint64_t sector = esp_cluster_sector(c, n->first_cluster);
		size_t whole = n->file->bytes - n->file->bytes % cb;
		r = esp_put(c, sector, n->file->data, whole);
		if (r == 0 && whole < n->file->bytes) {
			memset(tail, 0, cb);
			memcpy(tail, (const uint8_t *)n->file->data + whole, n->file->bytes - whole);
			r = esp_put(c, sector + (whole / cb) * c->g.sectors_per_cluster, tail, cb);
		}
	}
	free(tail);
	return r;
}

/* Crash-safe order: the boot sector is zeroed first (with the reserved area) and written last,
 * after a flush of everything else, so an interrupted format leaves no volume that looks
 * valid, neither the old one nor a half-written new one. */
static int esp_write_all(struct esp_ctx *c, uint64_t first_lba)
{
	int r = esp_write_reserved(c, first_lba);
	if (r == 0)
		r = esp_write_fats(c);
	if (r == 0)
		r = esp_write_dirs(c);
	if (r == 0)
		r = esp_write_files(c);
	if (r == 0)
		r = vdisk_flush(c->d);
	if (r < 0)
		return r;
	uint8_t *boot = calloc(1, c->g.sector_bytes);
	if (!boot)
		return vdisk_fail(ENOMEM, "esp_format: out of memory");
	esp_render_boot_sector(c, first_lba, boot);
	r = esp_put(c, 0, boot, c->g.sector_bytes);
	free(boot);
	return r < 0 ? r : vdisk_flush(c->d);
}

/* ---- options and the entry point ---- */

/* Labels are stored upper case, space padded, from short-name characters and spaces. */
static int esp_set_label(struct esp_ctx *c, const char *label)
{
	size_t len = strlen(label);
	if (len > 11)
		return vdisk_fail(EINVAL, "esp_format: label \"%s\" has %zu characters, at most 11",
				  label, len);
	memset(c->label, ' ', 11);
	for (size_t i = 0; i < len; i++) {
		char ch = (label[i] >= 'a' && label[i] <= 'z') ? (char)(label[i] - 'a' + 'A') : label[i];
		if (!esp_short_char(ch) && !(ch == ' ' && i > 0))
			return vdisk_fail(EINVAL, "esp_format: label \"%s\": character %zu is not allowed "
					  "(A-Z, 0-9, $%%'-_@~`!(){}^#& and inner spaces)", label, i + 1);
		c->label[i] = (uint8_t)ch;
	}
	c->has_label = len > 0;
	return 0;
}

static int esp_set_opts(struct esp_ctx *c, const struct esp_opts *o)
{
	int r = esp_set_label(c, o && o->label ? o->label : "ESP");
	if (r < 0)
		return r;
	esp_set_time(c, o ? o->timestamp : 0);
	c->volume_id = o ? o->volume_id : 0;
	while (c->volume_id == 0) {
		uint8_t g[16];
		if ((r = vdisk_guid_random(g)) < 0)
			return r;
		c->volume_id = get_le32(g);
	}
	return 0;
}

static int esp_check_range(struct vdisk *d, uint64_t first_lba, uint64_t sectors)
{
	uint32_t ss = vdisk_logical_sector_bytes(d);
	uint64_t disk_sectors = vdisk_size_bytes(d) / ss;
	if (ss < 512 || ss > 4096 || (ss & (ss - 1)))
		return vdisk_fail(ENOTSUP, "esp_format: %s has %u-byte sectors; FAT32 here needs 512, "
				  "1024, 2048 or 4096", vdisk_path(d), ss);
	if (first_lba >= disk_sectors || sectors > disk_sectors - first_lba)
		return vdisk_fail(EINVAL, "esp_format: sectors %llu + %llu lie past the end of %s "
				  "(%llu sectors)", (unsigned long long)first_lba,
				  (unsigned long long)sectors, vdisk_path(d),
				  (unsigned long long)disk_sectors);
	return 0;
}

int esp_format(struct vdisk *d, uint64_t first_lba, uint64_t sectors, const struct esp_opts *o,
	       const struct esp_file *files, size_t n_files, uint32_t *volume_id_out)
{
	struct esp_ctx c = { .d = d };
	int r = esp_check_range(d, first_lba, sectors);
	if (r < 0)
		return r;
	if (n_files > 0 && !files)
		return vdisk_fail(EINVAL, "esp_format: %zu files but no array", n_files);
	c.part_offset = first_lba * vdisk_logical_sector_bytes(d);
	c.part_bytes = sectors * vdisk_logical_sector_bytes(d);
	if ((r = esp_geometry(sectors, vdisk_logical_sector_bytes(d), &c.g)) < 0)
		return r;
	if ((r = esp_set_opts(&c, o)) < 0)
		return r;
	if ((r = esp_build_tree(&c, files, n_files)) < 0)
		goto free_tree;
	if ((r = esp_allocate(&c)) < 0)
		goto free_tree;
	if ((r = esp_write_all(&c, first_lba)) < 0)
		goto free_tree;
	if (volume_id_out)
		*volume_id_out = c.volume_id;
free_tree:
	free(c.nodes);
	return r;
}
