/* tests/tools/vhd_tool.c - test driver for the VHD backend, used by tests/diff/vhd-*.test.sh.
 *
 *   vhd_tool cat [--chs] IMG            virtual disk bytes to stdout
 *   vhd_tool info [--chs] IMG           key=value facts (size, creator, ids, map summary)
 *   vhd_tool create fixed|dynamic IMG SIZE [BLOCK] [chs]
 *   vhd_tool create diff IMG PARENT
 *   vhd_tool write IMG MIRROR SEED COUNT  seeded random writes to IMG and to raw MIRROR
 *   vhd_tool resize IMG SIZE
 *   vhd_tool check IMG                  findings on stdout; exit status = error count
 *   vhd_tool compare IMG RAW            0 if the virtual disk equals the raw file
 *   vhd_tool crash-writer IMG SEED      writes forever; "ack N" after each flush
 *   vhd_tool crash-verify IMG SEED ACKED  acknowledged writes intact, in-flight old or new
 * Crash-test writes are a pure function of (seed, index), so the verifier can replay them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx/vdisk.h"

#define CRASH_FLUSH_EVERY 8u
#define CRASH_MAX_WRITE 65536u

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			seed = mix(seed);
		buf[i] = (uint8_t)(seed >> (8 * (i % 8)));
	}
}

static int die(const char *what)
{
	fprintf(stderr, "vhd_tool: %s: %s\n", what, vdisk_errmsg());
	return 2;
}

static int cmd_cat(const char *path, unsigned flags)
{
	struct vdisk *d;
	if (vdisk_open(path, flags, &d) < 0)
		return die("open");
	uint64_t size = vdisk_size_bytes(d);
	uint8_t *buf = malloc(1 << 20);
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
		if (vdisk_read(d, off, buf, n) < 0)
			return die("read");
		if (fwrite(buf, 1, n, stdout) != n)
			return 2;
		off += n;
	}
	free(buf);
	vdisk_close(d);
	return 0;
}

static int cmd_info(const char *path, unsigned flags)
{
	struct vdisk *d;
	struct vdisk_info i;
	uint64_t zero = 0, data = 0, run;
	unsigned state;

	if (vdisk_open(path, flags, &d) < 0)
		return die("open");
	if (vdisk_get_info(d, &i) < 0)
		return die("info");
	for (uint64_t off = 0; off < i.size_bytes; off += run) {
		if (vdisk_map(d, off, i.size_bytes - off, &run, &state) < 0)
			return die("map");
		*(state == VDISK_EXTENT_ZERO ? &zero : &data) += run;
	}
	printf("size=%" PRIu64 "\nsubformat=%s\ncreator=%s\ndisk_id=%s\nblock=%u\n"
	       "allocated=%" PRIu64 "\nchs=%u/%u/%u\ncurrent_size=%" PRIu64 "\nchs_size=%" PRIu64
	       "\nparent=%s\nmap_zero=%" PRIu64 "\nmap_data=%" PRIu64 "\n",
	       i.size_bytes, vdisk_subformat_name(i.subformat), i.creator, i.disk_id,
	       i.block_bytes, i.allocated_bytes, i.chs_cylinders, i.chs_heads, i.chs_sectors,
	       i.vhd_current_size_bytes, i.vhd_chs_size_bytes, i.parent_path, zero, data);
	return vdisk_close(d) < 0 ? die("close") : 0;
}

static int cmd_create(int argc, char **argv)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHD };
	struct vdisk *d;

	if (argc < 3)
		return 2;
	if (!strcmp(argv[0], "diff")) {
		o.subformat = VDISK_SUB_DIFFERENCING;
		o.parent_path = argv[2];
	} else {
		o.subformat = !strcmp(argv[0], "fixed") ? VDISK_SUB_FIXED : VDISK_SUB_DYNAMIC;
		o.size_bytes = strtoull(argv[2], NULL, 0);
		o.block_bytes = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 0;
		o.vhd_chs_round = argc > 4 && !strcmp(argv[4], "chs");
	}
	if (vdisk_create(argv[1], &o, &d) < 0)
		return die("create");
	return vdisk_close(d) < 0 ? die("close") : 0;
}

/* A mix of large chunk-sized, 4 KiB-granular and unaligned writes. */
static void pick_write(uint64_t seed, uint64_t i, uint64_t size, uint64_t *off, size_t *len,
		       size_t max)
{
	uint64_t r = mix(seed * 1000003u + i);
	switch (r % 4) {
	case 0:
		*len = 1 + (size_t)(mix(r) % max);
		break;
	case 1:
		*len = 4096 * (1 + (size_t)(mix(r) % (max / 4096)));
		break;
	default:
		*len = 512 * (1 + (size_t)(mix(r) % (max / 512)));
		break;
	}
	if (*len > size)
		*len = (size_t)size;
	*off = mix(r + 1) % (size - *len + 1);
	if (r % 4 != 0)
		*off -= *off % (r % 4 == 1 ? 4096 : 512);
}

static int cmd_write(const char *path, const char *mirror, uint64_t seed, uint64_t count)
{
	struct vdisk *d, *m;
	const size_t max = 1u << 20;
	uint8_t *buf = malloc(max);

	if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
		return die("open");
	if (vdisk_open(mirror, VDISK_OPEN_RDWR | VDISK_OPEN_FORMAT_RAW, &m) < 0)
		return die("open mirror");
	for (uint64_t i = 0; i < count; i++) {
		uint64_t off;
		size_t len;
		pick_write(seed, i, vdisk_size_bytes(d), &off, &len, max);
		fill(buf, len, mix(seed) ^ i);
		if (vdisk_write(d, off, buf, len) < 0 || vdisk_write(m, off, buf, len) < 0)
			return die("write");
		if (i % 16 == 15 && vdisk_flush(d) < 0)
			return die("flush");
	}
	free(buf);
	if (vdisk_close(m) < 0 || vdisk_close(d) < 0)
		return die("close");
	return 0;
}

static int cmd_compare(const char *path, const char *raw)
{
	struct vdisk *a, *b;
	uint64_t diff = 0;

	if (vdisk_open(path, 0, &a) < 0 || vdisk_open(raw, VDISK_OPEN_FORMAT_RAW, &b) < 0)
		return die("open");
	int r = vdisk_compare(a, b, &diff, NULL, NULL);
	if (r < 0)
		return die("compare");
	if (r)
		printf("differ at offset %" PRIu64 "\n", diff);
	vdisk_close(a);
	vdisk_close(b);
	return r;
}

static void print_finding(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	static const char *const names[] = { "INFO", "WARN", "ERROR" };
	(void)opaque;
	printf("%s: %s\n", names[sev], msg);
}

static int cmd_check(const char *path)
{
	int r = vdisk_check(path, 0, print_finding, NULL);
	if (r < 0)
		return die("check");
	return r > 100 ? 100 : r;
}

static int cmd_resize(const char *path, uint64_t size)
{
	struct vdisk *d;
	if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
		return die("open");
	int r = vdisk_resize(d, size) < 0 ? die("resize") : 0;
	if (vdisk_close(d) < 0 && r == 0)
		r = die("close");
	return r;
}

static int cmd_crash_writer(const char *path, uint64_t seed)
{
	struct vdisk *d;
	uint8_t *buf = malloc(CRASH_MAX_WRITE);

	if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
		return die("open");
	for (uint64_t i = 0;; i++) {
		uint64_t off;
		size_t len;
		pick_write(seed, i, vdisk_size_bytes(d), &off, &len, CRASH_MAX_WRITE);
		fill(buf, len, mix(seed) ^ i);
		if (vdisk_write(d, off, buf, len) < 0)
			return die("write");
		if (i % CRASH_FLUSH_EVERY == CRASH_FLUSH_EVERY - 1) {
			if (vdisk_flush(d) < 0)
				return die("flush");
			printf("ack %" PRIu64 "\n", i + 1);
			fflush(stdout);
		}
	}
}

/* Sector s may hold its value after the acknowledged writes, or bytes from any write
 * issued after the last acknowledgement (at most one flush interval plus one). */
static int cmd_crash_verify(const char *path, uint64_t seed, uint64_t acked)
{
	struct vdisk *d;
	if (vdisk_open(path, 0, &d) < 0)
		return die("open after crash");
	uint64_t size = vdisk_size_bytes(d);
	uint8_t *model = calloc(1, size), *disk = malloc(size), *buf = malloc(CRASH_MAX_WRITE);
	uint8_t *ok = calloc(1, size);
	if (!model || !disk || !buf || !ok || vdisk_read(d, 0, disk, size) < 0)
		return die("read");
	for (uint64_t i = 0; i < acked + CRASH_FLUSH_EVERY; i++) {
		uint64_t off;
		size_t len;
		pick_write(seed, i, size, &off, &len, CRASH_MAX_WRITE);
		fill(buf, len, mix(seed) ^ i);
		if (i < acked) {
			memcpy(model + off, buf, len);
			continue;
		}
		for (size_t k = 0; k < len; k++)
			ok[off + k] |= disk[off + k] == buf[k];
	}
	int bad = 0;
	for (uint64_t k = 0; k < size && bad < 5; k++)
		if (disk[k] != model[k] && !ok[k]) {
			printf("byte %" PRIu64 " is 0x%02x, acknowledged value 0x%02x\n", k,
			       disk[k], model[k]);
			bad++;
		}
	free(model);
	free(disk);
	free(buf);
	free(ok);
	vdisk_close(d);
	return bad != 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see the first lines of tests/tools/vhd_tool.c\n");
		return 2;
	}
	const char *cmd = argv[1];
	bool chs = argc > 3 && !strcmp(argv[2], "--chs");
	const char *img = chs ? argv[3] : argv[2];
	unsigned flags = chs ? VDISK_OPEN_VHD_CHS : 0;

	if (!strcmp(cmd, "cat"))
		return cmd_cat(img, flags);
	if (!strcmp(cmd, "info"))
		return cmd_info(img, flags);
	if (!strcmp(cmd, "create"))
		return cmd_create(argc - 2, argv + 2);
	if (!strcmp(cmd, "write") && argc == 6)
		return cmd_write(argv[2], argv[3], strtoull(argv[4], NULL, 0),
				 strtoull(argv[5], NULL, 0));
	if (!strcmp(cmd, "compare") && argc == 4)
		return cmd_compare(argv[2], argv[3]);
	if (!strcmp(cmd, "check"))
		return cmd_check(img);
	if (!strcmp(cmd, "resize") && argc == 4)
		return cmd_resize(argv[2], strtoull(argv[3], NULL, 0));
	if (!strcmp(cmd, "crash-writer") && argc == 4)
		return cmd_crash_writer(argv[2], strtoull(argv[3], NULL, 0));
	if (!strcmp(cmd, "crash-verify") && argc == 5)
		return cmd_crash_verify(argv[2], strtoull(argv[3], NULL, 0),
					strtoull(argv[4], NULL, 0));
	fprintf(stderr, "vhd_tool: unknown command or wrong arguments: %s\n", cmd);
	return 2;
}
