/* vhdx/vhd-create.c - lays out new fixed, dynamic and differencing VHD files.
 *
 * Layouts (spec 1.0; shared/docs/vhdx-format.md section 2):
 *   fixed:        data (size bytes) | footer
 *   dynamic:      footer copy @0 | dynamic header @512 | BAT @1536 (padded to 512 with
 *                 0xFF) | footer
 *   differencing: footer copy @0 | dynamic header @512 | W2ku text @1536 | W2ru text |
 *                 BAT | footer
 * Blocks are appended later by vhd.c. max_table_entries = ceil(size / block) exactly (Azure
 * requires it). The creator is our own "gnsh" so that qemu >= 10, Hyper-V and libvhdi all
 * size the disk by current_size; CHS is the spec's rounded-down geometry.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vhd-format.h"

static uint32_t vhd_now(void)
{
	time_t t = time(NULL);
	return t > (time_t)VHD_EPOCH_UNIX ? (uint32_t)(t - VHD_EPOCH_UNIX) : 0;
}

/* qemu's rounding (vpc_create): the smallest CHS-representable size >= size. Sizes past
 * the CHS range are kept as they are. */
static uint64_t chs_round_up(uint64_t size)
{
	uint64_t total = size / VHD_SECTOR_BYTES;
	uint16_t c;
	uint8_t h, s;

	if (total > VHD_CHS_MAX_SECTORS)
		return size;
	for (uint64_t i = 0;; i++) {
		vhd_chs_from_bytes((total + i) * VHD_SECTOR_BYTES, &c, &h, &s);
		uint64_t chs = (uint64_t)c * h * s;
		if (chs >= total)
			return chs * VHD_SECTOR_BYTES;
	}
}

static int check_new_size(const char *path, uint64_t size)
{
	if (size == 0 || size % VHD_SECTOR_BYTES || size > VHD_MAX_SIZE_BYTES)
		return vdisk_fail(EINVAL, "%s: VHD size %llu is not a positive multiple of 512 "
				  "up to 2040 GiB (%llu bytes)", path, (unsigned long long)size,
				  VHD_MAX_SIZE_BYTES);
	return 0;
}

static int new_footer(uint64_t size, uint32_t type, struct vhd_footer *f)
{
	memset(f, 0, sizeof(*f));
	f->features = VHD_FEATURES_RESERVED;
	f->version = VHD_VERSION_1_0;
	f->data_offset = type == VHD_DISK_FIXED ? VHD_FIXED_DATA_OFFSET : VHD_FOOTER_BYTES;
	f->timestamp = vhd_now();
	memcpy(f->creator_app, VHD_CREATOR_APP, 4);
	f->creator_version = VHD_CREATOR_VERSION;
	f->creator_os = VHD_OS_WINDOWS;
	f->original_size = f->current_size = size;
	vhd_chs_from_bytes(size, &f->cylinders, &f->heads, &f->sectors_per_track);
	f->disk_type = type;
	return vhd_uuid_random(f->unique_id);
}

static int create_fixed(int fd, const char *path, uint64_t size)
{
	struct vhd_footer f;
	uint8_t buf[VHD_FOOTER_BYTES];

	int r = new_footer(size, VHD_DISK_FIXED, &f);
	if (r < 0)
		return r;
	vhd_footer_build(&f, buf);
	return vdisk_pwrite(fd, path, buf, sizeof(buf), size);
}

/* UTF-8 to UTF-16 (little- or big-endian) units in out (at most outlen bytes, no NUL).
 * Returns the byte count or -EINVAL for text that is not UTF-8. */
static int utf8_to_utf16(const char *in, uint8_t *out, size_t outlen, bool big_endian)
{
	const uint8_t *p = (const uint8_t *)in;
	size_t o = 0;

	while (*p) {
		uint32_t c = *p++;
		int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (c >= 0x80 && extra == 0)
			return -EINVAL;
		c &= extra ? 0x3fu >> extra : 0x7fu;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return -EINVAL;
			c = c << 6 | (*p & 0x3f);
		}
		uint16_t units[2] = { (uint16_t)c, 0 };
		int n = 1;
		if (c >= 0x10000) {
			units[0] = (uint16_t)(0xd800 + ((c - 0x10000) >> 10));
			units[1] = (uint16_t)(0xdc00 + ((c - 0x10000) & 0x3ff));
			n = 2;
		}
		for (int i = 0; i < n; i++, o += 2) {
			if (o + 2 > outlen)
				return -EINVAL;
			if (big_endian)
				put_be16(out + o, units[i]);
			else
				put_le16(out + o, units[i]);
		}
	}
	return (int)o;
}

/* Relative path from the child's directory to the parent, Windows style (".\\a.vhd",
 * "..\\dir\\a.vhd"). Both inputs are absolute and canonical. */
static int relative_path(const char *child_dir, const char *parent, char *out, size_t outlen)
{
	char dir[PATH_MAX];
	size_t common = 0, o, ups = 0;

	if (snprintf(dir, sizeof(dir), "%s/", strcmp(child_dir, "/") ? child_dir : "") >=
	    (int)sizeof(dir))
		return -ENAMETOOLONG;
	for (size_t i = 0; dir[i] && dir[i] == parent[i]; i++)
		if (dir[i] == '/')
			common = i + 1;
	for (size_t i = common; dir[i]; i++)
		ups += dir[i] == '/';
	o = (size_t)snprintf(out, outlen, "%s", ups ? "" : ".\\");
	for (size_t i = 0; i < ups && o < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "..\\");
	if (o < outlen)
		o += (size_t)snprintf(out + o, outlen - o, "%s", parent + common);
	if (o >= outlen)
		return -ENAMETOOLONG;
	for (char *c = out; *c; c++)
		*c = *c == '/' ? '\\' : *c;
	return 0;
}

struct vhd_new_dynamic {
	uint64_t size;
	uint32_t block_bytes;
	uint32_t type;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	const char *parent_abs;  /* differencing only */
	char parent_rel[PATH_MAX];
};

/* Locator texts (W2ku, W2ru) written at `off`; fills h->locators and returns the offset
 * after them. */
static int write_locators(int fd, const char *path, const struct vhd_new_dynamic *n,
			  struct vhd_dyn_header *h, uint64_t *off)
{
	const char *texts[2] = { n->parent_abs, n->parent_rel };
	const uint32_t codes[2] = { VHD_PLATFORM_W2KU, VHD_PLATFORM_W2RU };
	uint8_t buf[2 * PATH_MAX];

	for (int i = 0; i < 2; i++) {
		int len = utf8_to_utf16(texts[i], buf, sizeof(buf), false);
		if (len <= 0)
			return vdisk_fail(EINVAL, "%s: parent path %s is not usable as a locator",
					  path, texts[i]);
		uint32_t space = (uint32_t)(((unsigned)len + 511) / 512 * 512);
		memset(buf + len, 0, space - (unsigned)len);
		int r = vdisk_pwrite(fd, path, buf, space, *off);
		if (r < 0)
			return r;
		h->locators[i] = (struct vhd_locator){ .code = codes[i], .data_space = space,
						       .data_length = (uint32_t)len,
						       .data_offset = *off };
		*off += space;
	}
	return 0;
}

static int write_bat(int fd, const char *path, uint64_t off, uint32_t entries, uint64_t *end)
{
	size_t bytes = ((size_t)entries * 4 + 511) / 512 * 512;
	uint8_t *bat = malloc(bytes);

	if (!bat)
		return vdisk_fail(ENOMEM, "out of memory");
	memset(bat, 0xff, bytes); /* unused entries, and the padding as Windows writes it */
	int r = vdisk_pwrite(fd, path, bat, bytes, off);
	free(bat);
	*end = off + bytes;
	return r;
}

static int create_dynamic(int fd, const char *path, const struct vhd_new_dynamic *n)
{
	struct vhd_footer f;
	struct vhd_dyn_header h;
	uint8_t fbuf[VHD_FOOTER_BYTES], hbuf[VHD_DYN_HEADER_BYTES];
	uint64_t off = VHD_FOOTER_BYTES + VHD_DYN_HEADER_BYTES, end = 0;
	uint64_t entries = (n->size + n->block_bytes - 1) / n->block_bytes;
	int r;

	if (entries > VHD_MAX_TABLE_ENTRIES)
		return vdisk_fail(EINVAL, "%s: %llu blocks of %u bytes are more than the %u BAT "
				  "entries we support; use larger blocks", path,
				  (unsigned long long)entries, n->block_bytes,
				  VHD_MAX_TABLE_ENTRIES);
	memset(&h, 0, sizeof(h));
	h.header_version = VHD_VERSION_1_0;
	h.max_table_entries = (uint32_t)entries;
	h.block_bytes = n->block_bytes;
	if (n->type == VHD_DISK_DIFFERENCING) {
		memcpy(h.parent_unique_id, n->parent_uuid, 16);
		h.parent_timestamp = n->parent_timestamp;
		utf8_to_utf16(n->parent_abs, h.parent_name, sizeof(h.parent_name), true);
		r = write_locators(fd, path, n, &h, &off);
		if (r < 0)
			return r;
	}
	h.table_offset = off;
	r = write_bat(fd, path, off, (uint32_t)entries, &end);
	if (r == 0)
		r = new_footer(n->size, n->type, &f);
	if (r < 0)
		return r;
	vhd_dyn_header_build(&h, hbuf);
	vhd_footer_build(&f, fbuf);
	r = vdisk_pwrite(fd, path, hbuf, sizeof(hbuf), VHD_FOOTER_BYTES);
	if (r == 0)
		r = vdisk_pwrite(fd, path, fbuf, sizeof(fbuf), 0);
	if (r == 0)
		r = vdisk_pwrite(fd, path, fbuf, sizeof(fbuf), end);
	return r;
}

/* Parent facts for a differencing child: size, identity, modification time, paths. */
static int describe_parent(const char *path, const char *parent_path, struct vhd_new_dynamic *n)
{
	struct vdisk *p;
	struct stat st;
	char child_dir[PATH_MAX], tmp[PATH_MAX];
	uint32_t footer_ts;

	int r = vdisk_open(parent_path, 0, &p);
	if (r < 0)
		return r;
	r = vhd_disk_identity(p, n->parent_uuid, &footer_ts);
	n->size = vdisk_size_bytes(p);
	vdisk_close(p);
	if (r < 0)
		return r;
	/* The spec asks for the parent's modification time (Windows writes 0; nobody checks). */
	n->parent_timestamp = stat(parent_path, &st) == 0 && st.st_mtime > (time_t)VHD_EPOCH_UNIX ?
		(uint32_t)(st.st_mtime - VHD_EPOCH_UNIX) : 0;
	snprintf(tmp, sizeof(tmp), "%s", path);
	char *slash = strrchr(tmp, '/');
	if (slash)
		*slash = 0;
	if (!realpath(slash ? (tmp[0] ? tmp : "/") : ".", child_dir))
		return vdisk_fail(errno, "%s: cannot resolve its directory: %s", path,
				  strerror(errno));
	n->parent_abs = parent_path;
	if (relative_path(child_dir, parent_path, n->parent_rel, sizeof(n->parent_rel)) < 0)
		return vdisk_fail(ENAMETOOLONG, "%s: relative parent path too long", path);
	return 0;
}

int vhd_create(int fd, const char *path, const struct vdisk_create_opts *opts)
{
	struct vhd_new_dynamic n = { .size = opts->size_bytes };
	int r = 0;

	n.block_bytes = opts->block_bytes ? opts->block_bytes : VHD_DEFAULT_BLOCK_BYTES;
	n.type = opts->subformat == VDISK_SUB_FIXED ? VHD_DISK_FIXED :
		opts->subformat == VDISK_SUB_DIFFERENCING ? VHD_DISK_DIFFERENCING :
		VHD_DISK_DYNAMIC;
	uint32_t bs = n.block_bytes;
	if (bs < VHD_MIN_BLOCK_BYTES || bs > VHD_MAX_BLOCK_BYTES || (bs & (bs - 1)))
		return vdisk_fail(EINVAL, "%s: block size %u is not a power of two from %u to %u",
				  path, bs, VHD_MIN_BLOCK_BYTES, VHD_MAX_BLOCK_BYTES);
	if (n.type == VHD_DISK_DIFFERENCING)
		r = describe_parent(path, opts->parent_path, &n);
	else if (opts->vhd_chs_round && check_new_size(path, n.size) == 0)
		n.size = chs_round_up(n.size);
	if (r == 0)
		r = check_new_size(path, n.size);
	if (r < 0)
		return r;
	if (n.type == VHD_DISK_FIXED)
		return create_fixed(fd, path, n.size);
	return create_dynamic(fd, path, &n);
}
