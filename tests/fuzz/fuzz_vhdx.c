/* tests/fuzz/fuzz_vhdx.c - libFuzzer target for the VHDX backend.
 *
 * A VHDX is at least 4 MiB, too big for a corpus, so the input is a compact list of patches
 * over a valid template image built in memory by vhdx_create (dynamic, 8 MiB, 1 MiB blocks,
 * two blocks written) - the fuzzer reaches every table with inputs of a few bytes:
 *   byte 0: flags  bit0 template with a pending log entry (LogGuid set)
 *                  bit1 recompute both header checksums after patching
 *                  bit2 recompute both region table checksums
 *                  bit3 recompute the checksum of the log entry at the log start
 *                  bit4 then truncate the file to (u32 at bytes 1..4) mod its length
 *                  bit5 template = a differencing child (parent kept in another memfd,
 *                       found through absolute_win32_path), block 2 PARTIALLY_PRESENT
 *   then patches: u32 offset (LE, taken mod the image length), u8 length, bytes.
 * The result goes to a memfd, is opened read-only through /proc/self/fd (no lock), read in
 * a few ranges, mapped, described, closed, and checked with vdisk_check.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhdx/vhdx-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MIB (1024u * 1024u)
#define TEMPLATE_VIRTUAL (8u * MIB)
#define LOG_AT MIB
#define BAT_AT (3u * MIB)

#define TEMPLATES 3
static uint8_t *templates[TEMPLATES];
static size_t template_lens[TEMPLATES];
/* Pages to write into the memfd: the template's non-zero pages plus the patched ones (the
 * rest is a hole and reads as zeros), which keeps an execution cheap. */
static uint8_t *page_used[TEMPLATES], *page_dirty;
#define PAGE 4096u

static int memfd_path(const uint8_t *data, size_t len, const uint8_t *pages, char path[64])
{
	int fd = memfd_create("fuzz_vhdx", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) < 0)
		goto fail;
	for (size_t pg = 0; data && pg * PAGE < len; pg++) {
		size_t n = len - pg * PAGE < PAGE ? len - pg * PAGE : PAGE;
		if (pages[pg] && pwrite(fd, data + pg * PAGE, n, (off_t)(pg * PAGE)) != (ssize_t)n)
			goto fail;
	}
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
fail:
	close(fd);
	return -1;
}

/* A logged BAT page that moves block 0's data to block 2, under a matching LogGuid. */
static void add_log(uint8_t *p)
{
	static const uint8_t guid[16] = { 0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	uint8_t page[4096], *e = p + LOG_AT;

	memcpy(page, p + BAT_AT, sizeof(page));
	put_le64(page + 16, get_le64(page));
	put_le64(page, 0);
	for (size_t h = VHDX_HEADER1_OFFSET; h <= VHDX_HEADER2_OFFSET; h += 64 * 1024) {
		memcpy(p + h + 48, guid, 16);
		put_le32(p + h + 4, vhdx_checksum(p + h, VHDX_HEADER_BYTES, 4));
	}
	memset(e, 0, 8192);
	put_le32(e, VHDX_LOG_ENTRY_SIGNATURE);
	put_le32(e + 8, 8192);
	put_le64(e + 16, 3);
	put_le32(e + 24, 1);
	memcpy(e + 32, guid, 16);
	put_le64(e + 48, 4 * MIB);
	put_le64(e + 56, 4 * MIB);
	put_le32(e + 64, VHDX_LOG_DESC_SIGNATURE);
	memcpy(e + 68, page + 4092, 4);
	memcpy(e + 72, page, 8);
	put_le64(e + 80, BAT_AT);
	put_le64(e + 88, 3);
	put_le32(e + 4096, VHDX_LOG_DATA_SIGNATURE);
	memcpy(e + 4096 + 8, page + 8, 4084);
	put_le32(e + 4096 + 4092, 3);
	put_le32(e + 4, vhdx_checksum(e, 8192, 4));
}

static int read_template(int fd, int i, size_t extra)
{
	template_lens[i] = (size_t)lseek(fd, 0, SEEK_END);
	templates[i] = calloc(1, template_lens[i] + extra);
	if (!templates[i] ||
	    pread(fd, templates[i], template_lens[i], 0) != (ssize_t)template_lens[i])
		return -1;
	template_lens[i] += extra;
	return 0;
}

/* The parent stays open for the process; the child's locator names /proc/self/fd/N. */
static int build_child(const uint8_t *parent, size_t parent_len)
{
	static int parent_fd = -1;
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX,
				       .subformat = VDISK_SUB_DIFFERENCING, .block_bytes = MIB };
	char ppath[64], cpath[64];
	uint8_t buf[4096];
	struct vdisk *d;

	parent_fd = memfd_path(parent, parent_len, page_used[0], ppath);
	int fd = memfd_path(NULL, 0, NULL, cpath);
	o.parent_path = ppath;
	if (parent_fd < 0 || fd < 0 || vhdx_create(fd, cpath, &o) < 0 ||
	    vdisk_open(cpath, VDISK_OPEN_RDWR | VDISK_OPEN_NOLOCK, &d) < 0)
		return -1;
	memset(buf, 0x66, sizeof(buf));
	if (vdisk_write(d, 1024, buf, 512) < 0 || vdisk_write(d, 2 * MIB + 512, buf, 4096) < 0 ||
	    vdisk_close(d) < 0 || read_template(fd, 2, MIB) < 0)
		return -1;
	close(fd);
	/* Block 2 becomes PARTIALLY_PRESENT; chunk 0's bitmap goes in the appended MiB. */
	uint8_t *c = templates[2];
	size_t sb = template_lens[2] - MIB;
	uint64_t e = get_le64(c + BAT_AT + 16);
	put_le64(c + BAT_AT + 16, (e & VHDX_BAT_OFFSET_MASK) | VHDX_BLOCK_PARTIALLY_PRESENT);
	put_le64(c + BAT_AT + 8 * 4096, (uint64_t)sb | VHDX_SB_PRESENT);
	c[sb + 2 * 2048 / 8] = 0x0e;
	return 0;
}

static void mark_pages(int i)
{
	size_t pages = (template_lens[i] + PAGE - 1) / PAGE;
	for (size_t pg = 0; pg < pages; pg++) {
		size_t n = template_lens[i] - pg * PAGE < PAGE ? template_lens[i] - pg * PAGE : PAGE;
		page_used[i][pg] = !vdisk_buf_is_zero(templates[i] + pg * PAGE, n);
	}
}

static int build_templates(void)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX, .subformat = VDISK_SUB_DYNAMIC,
				       .size_bytes = TEMPLATE_VIRTUAL, .block_bytes = MIB };
	char path[64];
	uint8_t buf[4096];
	struct vdisk *d;
	int fd = memfd_path(NULL, 0, NULL, path);

	if (fd < 0 || vhdx_create(fd, path, &o) < 0 ||
	    vdisk_open(path, VDISK_OPEN_RDWR | VDISK_OPEN_NOLOCK, &d) < 0)
		return -1;
	memset(buf, 0x5a, sizeof(buf));
	if (vdisk_write(d, 0, buf, sizeof(buf)) < 0 || vdisk_write(d, 5 * MIB - 100, buf, 200) < 0 ||
	    vdisk_close(d) < 0 || read_template(fd, 0, 0) < 0 || read_template(fd, 1, 0) < 0)
		return -1;
	close(fd);
	add_log(templates[1]);
	size_t most = 0;
	for (int i = 0; i < TEMPLATES; i++) {
		if (i == 2 && build_child(templates[0], template_lens[0]) < 0)
			return -1;
		page_used[i] = calloc(1, template_lens[i] / PAGE + 1);
		if (!page_used[i])
			return -1;
		mark_pages(i);
		most = template_lens[i] > most ? template_lens[i] : most;
	}
	page_dirty = malloc(most / PAGE + 1);
	return page_dirty ? 0 : -1;
}

static void fix_checksums(uint8_t *p, size_t len, unsigned flags)
{
	for (size_t h = VHDX_HEADER1_OFFSET; (flags & 2) && h <= VHDX_HEADER2_OFFSET; h += 64 * 1024)
		put_le32(p + h + 4, vhdx_checksum(p + h, VHDX_HEADER_BYTES, 4));
	for (size_t t = VHDX_REGION1_OFFSET; (flags & 4) && t <= VHDX_REGION2_OFFSET; t += 64 * 1024)
		put_le32(p + t + 4, vhdx_checksum(p + t, VHDX_REGION_TABLE_BYTES, 4));
	uint32_t elen = get_le32(p + LOG_AT + 8);
	if ((flags & 8) && elen >= 64 && elen <= MIB && LOG_AT + (size_t)elen <= len)
		put_le32(p + LOG_AT + 4, vhdx_checksum(p + LOG_AT, elen, 4));
}

static size_t apply_input(uint8_t *p, const uint8_t *data, size_t size)
{
	unsigned flags = size ? data[0] : 0;
	int t = (flags & 32) ? 2 : (flags & 1);
	size_t i = 1, len = template_lens[t];

	memcpy(p, templates[t], len);
	memcpy(page_dirty, page_used[t], len / PAGE + 1);
	uint32_t cut = size >= 5 ? get_le32(data + 1) : 0;
	if (flags & 16)
		i = 5;
	while (i + 5 <= size) {
		size_t off = get_le32(data + i) % len, n = data[i + 4];
		i += 5;
		if (n > size - i)
			n = size - i;
		if (n > len - off)
			n = len - off;
		memcpy(p + off, data + i, n);
		for (size_t pg = off / PAGE; pg * PAGE < off + n; pg++)
			page_dirty[pg] = 1;
		i += n;
	}
	fix_checksums(p, len, flags);
	if (flags & 16)
		len = cut % len;
	return len;
}

static void ignore_finding(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	(void)sev, (void)msg, (void)opaque;
}

static void exercise(const char *path)
{
	static uint8_t buf[3 * MIB];
	struct vdisk *d;
	struct vdisk_info info;

	if (vdisk_open(path, VDISK_OPEN_NOLOCK, &d) == 0) {
		uint64_t size = vdisk_size_bytes(d), run;
		unsigned st;
		vdisk_read(d, 0, buf, size < 65536 ? size : 65536);
		if (size > 3 * MIB)
			vdisk_read(d, MIB - 4096, buf, MIB + 8192);
		vdisk_read(d, size - 1000, buf, 1000);
		for (uint64_t off = 0, n = 0; off < size && n < 4096; off += run, n++)
			if (vdisk_map(d, off, size - off, &run, &st) < 0)
				break;
		vdisk_get_info(d, &info);
		vdisk_close(d);
	}
	vdisk_check(path, 0, ignore_finding, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *image;
	char path[64];

	if (!templates[0]) {
		if (build_templates() < 0)
			{ fprintf(stderr, "fuzz_vhdx: template: %s\n", vdisk_errmsg()); abort(); }
		size_t most = 0;
		for (int i = 0; i < TEMPLATES; i++)
			most = template_lens[i] > most ? template_lens[i] : most;
		image = malloc(most);
		if (!image)
			abort();
	}
	size_t len = apply_input(image, data, size);
	int fd = memfd_path(image, len, page_dirty, path);
	if (fd < 0)
		return 0;
	exercise(path);
	close(fd);
	return 0;
}
