/* tests/tools/vhdx_tool.c - test driver for the VHDX backend, used by tests/diff/vhdx-*.test.sh.
 *
 *   vhdx_tool cat [--rw] IMG                virtual disk bytes to stdout (--rw: open read-write)
 *   vhdx_tool info IMG                      key=value facts
 *   vhdx_tool create fixed|dynamic IMG SIZE [BLOCK [LSS [PSS]]]
 *   vhdx_tool create diff IMG PARENT [BLOCK]
 *   vhdx_tool write IMG MIRROR SEED COUNT [MAXLEN]  seeded random writes to IMG and raw MIRROR
 *   vhdx_tool pattern IMG RAW OFF LEN BYTE   write LEN bytes of BYTE at OFF to IMG and raw RAW
 *   vhdx_tool resize IMG SIZE
 *   vhdx_tool check [--repair] IMG          findings on stdout; exit status = error count
 *   vhdx_tool compare IMG RAW               exit 0 if the virtual disk equals the raw file
 *   vhdx_tool crash-writer IMG SEED         writes (and grows) forever; "ack N" after each flush
 *   vhdx_tool crash-verify IMG SEED ACKED   ops < ACKED intact; op ACKED old or new per sector
 * Crash-test operations are a pure function of (seed, index), so the verifier replays them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx/vdisk.h"

#define CHUNK (1u << 20)
#define CRASH_BASE_SIZE (256ull << 20)
#define CRASH_GROW_EVERY 40u
#define CRASH_GROW_BYTES (32ull << 20)

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int fail(const char *what)
{
	fprintf(stderr, "vhdx_tool: %s: %s\n", what, vdisk_errmsg());
	return 1;
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);
	switch (*end) {
	case 'K': v <<= 10; break;
	case 'M': v <<= 20; break;
	case 'G': v <<= 30; break;
	case 'T': v <<= 40; break;
	default: break;
	}
	return v;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w, n -= (size_t)w;
	}
	return 0;
}

static int cmd_cat(int argc, char **argv)
{
	unsigned flags = argc > 2 && !strcmp(argv[1], "--rw") ? VDISK_OPEN_RDWR : 0;
	const char *path = argv[argc - 1];
	struct vdisk *d;
	static uint8_t buf[CHUNK], zero[CHUNK];

	if (vdisk_open(path, flags, &d) < 0)
		return fail(path);
	uint64_t size = vdisk_size_bytes(d);
	for (uint64_t off = 0; off < size;) {
		uint64_t run;
		unsigned st;
		if (vdisk_map(d, off, size - off, &run, &st) < 0)
			return fail("map");
		for (uint64_t end = off + run; off < end;) {
			size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
			if (st == VDISK_EXTENT_DATA && vdisk_read(d, off, buf, n) < 0)
				return fail("read");
			if (write_all(1, st == VDISK_EXTENT_DATA ? buf : zero, n) < 0)
				return 1;
			off += n;
		}
	}
	return vdisk_close(d) < 0 ? fail("close") : 0;
}

static int cmd_info(const char *path)
{
	static const char *const log_states[] = { "clean", "replayed-memory", "replayed-file" };
	struct vdisk_info i;
	struct vdisk *d;

	if (vdisk_open(path, 0, &d) < 0 || vdisk_get_info(d, &i) < 0)
		return fail(path);
	printf("format=%s\nsubformat=%s\nsize=%" PRIu64 "\nblock=%u\nlss=%u\npss=%u\n"
	       "allocated=%" PRIu64 "\ncreator=%s\ndisk_id=%s\ndata_write_guid=%s\n"
	       "log_state=%s\nparent=%s\n", vdisk_format_name(i.format),
	       vdisk_subformat_name(i.subformat), i.size_bytes, i.block_bytes,
	       i.logical_sector_bytes, i.physical_sector_bytes, i.allocated_bytes, i.creator,
	       i.disk_id, i.data_write_guid, log_states[i.log_state], i.parent_path);
	return vdisk_close(d) < 0 ? fail("close") : 0;
}

static int cmd_create(int argc, char **argv)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_VHDX };
	struct vdisk *d;

	if (argc < 4)
		return 2;
	if (!strcmp(argv[1], "diff")) {
		o.subformat = VDISK_SUB_DIFFERENCING;
		o.parent_path = argv[3];
		o.block_bytes = argc > 4 ? (uint32_t)parse_u64(argv[4]) : 0;
	} else {
		o.subformat = !strcmp(argv[1], "fixed") ? VDISK_SUB_FIXED : VDISK_SUB_DYNAMIC;
		o.size_bytes = parse_u64(argv[3]);
		o.block_bytes = argc > 4 ? (uint32_t)parse_u64(argv[4]) : 0;
		o.logical_sector_bytes = argc > 5 ? (uint32_t)parse_u64(argv[5]) : 0;
		o.physical_sector_bytes = argc > 6 ? (uint32_t)parse_u64(argv[6]) : 0;
	}
	if (vdisk_create(argv[2], &o, &d) < 0)
		return fail(argv[2]);
	return vdisk_close(d) < 0 ? fail("close") : 0;
}

/* Random writes of 1..maxlen bytes (sector multiples half of the time), mirrored. */
static int cmd_write(int argc, char **argv)
{
	uint64_t seed = parse_u64(argv[3]), count = parse_u64(argv[4]);
	uint64_t maxlen = argc > 5 ? parse_u64(argv[5]) : (3u << 20);
	struct vdisk *d;

	if (vdisk_open(argv[1], VDISK_OPEN_RDWR, &d) < 0)
		return fail(argv[1]);
	int m = open(argv[2], O_RDWR | O_CREAT, 0644);
	uint8_t *buf = malloc(maxlen);
	uint64_t size = vdisk_size_bytes(d);
	if (m < 0 || !buf || ftruncate(m, (off_t)size) < 0)
		return 1;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t r = mix(seed * 7919 + i);
		uint64_t len = 1 + mix(r) % maxlen, off = mix(r + 1) % size;
		if (r & 1) {
			off &= ~511ull;
			len = (len + 511) & ~511ull;
		}
		if (len > size - off)
			len = size - off;
		for (uint64_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(mix(r + 2 + k / 64) >> (8 * (k % 8)));
		if (vdisk_write(d, off, buf, len) < 0)
			return fail("write");
		if (pwrite(m, buf, len, (off_t)off) != (ssize_t)len)
			return 1;
		if (i % 16 == 15 && vdisk_flush(d) < 0)
			return fail("flush");
	}
	free(buf);
	close(m);
	return vdisk_close(d) < 0 ? fail("close") : 0;
}

static int cmd_pattern(char **argv)
{
	uint64_t off = parse_u64(argv[3]), len = parse_u64(argv[4]);
	uint8_t *buf = malloc(len ? len : 1);
	struct vdisk *d;

	if (!buf || vdisk_open(argv[1], VDISK_OPEN_RDWR, &d) < 0)
		return fail(argv[1]);
	memset(buf, (int)parse_u64(argv[5]), len);
	int m = open(argv[2], O_RDWR | O_CREAT, 0644);
	if (m < 0 || pwrite(m, buf, len, (off_t)off) != (ssize_t)len)
		return 1;
	if (vdisk_write(d, off, buf, len) < 0)
		return fail("write");
	close(m);
	free(buf);
	return vdisk_close(d) < 0 ? fail("close") : 0;
}

static int cmd_resize(const char *path, const char *size)
{
	struct vdisk *d;

	if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
		return fail(path);
	if (vdisk_resize(d, parse_u64(size)) < 0) {
		fail("resize");
		vdisk_close(d);
		return 1;
	}
	return vdisk_close(d) < 0 ? fail("close") : 0;
}

static void print_finding(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	static const char *const names[] = { "info", "warning", "error" };
	(void)opaque;
	printf("%s: %s\n", names[sev], msg);
}

static int cmd_check(int argc, char **argv)
{
	bool repair = argc > 2 && !strcmp(argv[1], "--repair");
	int r = vdisk_check(argv[argc - 1], repair ? VDISK_CHECK_REPAIR : 0, print_finding, NULL);
	if (r < 0)
		return fail(argv[argc - 1]);
	return r > 100 ? 100 : r;
}

static int cmd_compare(const char *img, const char *raw)
{
	struct vdisk *a, *b;
	uint64_t diff = 0;

	if (vdisk_open(img, 0, &a) < 0)
		return fail(img);
	if (vdisk_open(raw, VDISK_OPEN_FORMAT_RAW, &b) < 0)
		return fail(raw);
	int r = vdisk_compare(a, b, &diff, NULL, NULL);
	if (r < 0)
		return fail("compare");
	if (r == 1)
		printf("differ at byte %" PRIu64 "\n", diff);
	vdisk_close(a);
	vdisk_close(b);
	return r;
}

/* ---- crash test ---- */

struct crash_op {
	bool grow;
	uint64_t size_after, off, len;
};

static struct crash_op crash_op(uint64_t seed, uint64_t i)
{
	struct crash_op op = { 0 };
	uint64_t size = CRASH_BASE_SIZE + CRASH_GROW_BYTES * ((i + 1) / CRASH_GROW_EVERY);
	uint64_t r = mix(seed * 1000003 + i);

	op.size_after = size;
	if ((i + 1) % CRASH_GROW_EVERY == 0) {
		op.grow = true;
		return op;
	}
	op.len = 512 * (1 + mix(r) % 512);
	op.off = (mix(r + 1) % (size / 512)) * 512;
	if (op.len > size - op.off)
		op.len = size - op.off;
	return op;
}

/* Each sector of op i carries a value unique to (i, sector) so old/new mixes are visible. */
static void crash_fill(uint8_t *buf, uint64_t i, uint64_t len)
{
	for (uint64_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(mix(i * 131 + k / 512) >> (8 * (k % 8)));
}

static int cmd_crash_writer(const char *path, uint64_t seed)
{
	static uint8_t buf[512 * 512];
	struct vdisk *d;

	if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
		return fail(path);
	for (uint64_t i = 0;; i++) {
		struct crash_op op = crash_op(seed, i);
		int r;
		if (op.grow) {
			r = vdisk_resize(d, op.size_after);
		} else {
			crash_fill(buf, i, op.len);
			r = vdisk_write(d, op.off, buf, op.len);
		}
		if (r < 0 || vdisk_flush(d) < 0)
			return fail("crash op");
		printf("ack %" PRIu64 "\n", i + 1);
		fflush(stdout);
	}
}

static int crash_compare(struct vdisk *d, int mirror, const struct crash_op *op, uint64_t i)
{
	static uint8_t got[CHUNK], want[CHUNK], inflight[512 * 512];
	uint64_t size = vdisk_size_bytes(d);

	if (op)
		crash_fill(inflight, i, op->len);
	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		if (vdisk_read(d, off, got, n) < 0)
			return fail("read");
		memset(want, 0, n);
		if (pread(mirror, want, n, (off_t)off) < 0)
			return 1;
		for (size_t s = 0; s < n; s += 512) {
			if (!memcmp(got + s, want + s, 512))
				continue;
			uint64_t at = off + s;
			if (op && at >= op->off && at < op->off + op->len &&
			    !memcmp(got + s, inflight + (at - op->off), 512))
				continue;
			printf("sector at %" PRIu64 " has neither the old nor the new content\n", at);
			return 1;
		}
	}
	return 0;
}

/* Rebuild the acknowledged state in a sparse raw mirror, then compare sector by sector. */
static int cmd_crash_verify(const char *path, uint64_t seed, uint64_t acked)
{
	static uint8_t buf[512 * 512];
	char mpath[] = "/tmp/vhdx-crash-mirror-XXXXXX";
	const char *tmp = getenv("TMPDIR");
	char mbuf[4096];
	snprintf(mbuf, sizeof(mbuf), "%s/vhdx-crash-mirror-XXXXXX", tmp ? tmp : "/tmp");
	int m = mkstemp(tmp ? mbuf : mpath);
	struct vdisk *d;

	if (m < 0)
		return 1;
	unlink(tmp ? mbuf : mpath);
	for (uint64_t i = 0; i < acked; i++) {
		struct crash_op op = crash_op(seed, i);
		if (op.grow)
			continue;
		crash_fill(buf, i, op.len);
		if (pwrite(m, buf, op.len, (off_t)op.off) != (ssize_t)op.len)
			return 1;
	}
	if (vdisk_open(path, VDISK_OPEN_RDWR, &d) < 0)
		return fail(path);
	struct crash_op next = crash_op(seed, acked);
	uint64_t size = vdisk_size_bytes(d), old_size = crash_op(seed, acked ? acked - 1 : 0).size_after;
	if (acked == 0)
		old_size = CRASH_BASE_SIZE;
	if (size != old_size && !(next.grow && size == next.size_after)) {
		printf("size %" PRIu64 " is neither %" PRIu64 " nor the in-flight resize's\n", size,
		       old_size);
		return 1;
	}
	int r = crash_compare(d, m, next.grow ? NULL : &next, acked);
	close(m);
	return vdisk_close(d) < 0 ? fail("close") : r;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of tests/tools/vhdx_tool.c\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "cat"))
		return cmd_cat(argc - 1, argv + 1);
	if (!strcmp(c, "info"))
		return cmd_info(argv[2]);
	if (!strcmp(c, "create"))
		return cmd_create(argc - 1, argv + 1);
	if (!strcmp(c, "write") && argc >= 6)
		return cmd_write(argc - 1, argv + 1);
	if (!strcmp(c, "pattern") && argc >= 7)
		return cmd_pattern(argv + 1);
	if (!strcmp(c, "resize") && argc >= 4)
		return cmd_resize(argv[2], argv[3]);
	if (!strcmp(c, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(c, "compare") && argc >= 4)
		return cmd_compare(argv[2], argv[3]);
	if (!strcmp(c, "crash-writer") && argc >= 4)
		return cmd_crash_writer(argv[2], parse_u64(argv[3]));
	if (!strcmp(c, "crash-verify") && argc >= 5)
		return cmd_crash_verify(argv[2], parse_u64(argv[3]), parse_u64(argv[4]));
	fprintf(stderr, "vhdx_tool: unknown command or missing arguments\n");
	return 2;
}
