/* tests/tools/part_prop.c - random valid MBR layouts for the partition property test.
 *
 *   part_prop gen SEED IMAGE     write a raw image with a random MBR layout (primaries,
 *                                extended + logicals, gaps, maybe a partition to the last
 *                                sector), seeded bytes at both ends of every partition;
 *                                print the layout: "disk SECTORS" then "N FIRST LAST TYPE"
 *   part_prop hash IMAGE LAYOUT  print "N HASH" per partition of LAYOUT (FNV-1a over the
 *                                partition's non-zero 4 KiB blocks and their offsets)
 *   part_prop sum IMAGE          print the file size and the same hash of the whole file
 *                                (sparse-aware, so fast on multi-GiB sparse images)
 * With -4 first, sectors are 4096 bytes (4Kn): LBAs in the MBR and the layout count 4 KiB.
 *
 * Deliberately independent of libpartition: plain file I/O and its own MBR writer, so the
 * test judges the library instead of agreeing with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Logical sector size: 512, or 4096 for 4Kn layouts (part_prop -4 ...). */
static unsigned SS = 512;
#define MIB_SECTORS (1048576u / SS)
#define MAX_PARTS 40

struct part {
	unsigned number;
	uint64_t first, last;
	unsigned type;
};

static uint64_t rng;

static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rand_range(uint64_t lo, uint64_t hi) /* inclusive */
{
	return lo + next_rand() % (hi - lo + 1);
}

static void die(const char *what)
{
	fprintf(stderr, "part_prop: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* Write record i of the MBR/EBR at lba (read-modify-write of that sector). */
static void write_rec(int fd, uint64_t lba, int i, unsigned type, uint64_t start, uint64_t n,
		      int active)
{
	uint8_t s[512];

	if (pread(fd, s, 512, (off_t)(lba * SS)) != 512)
		die("read sector");
	uint8_t *p = s + 446 + 16 * i;
	p[0] = active ? 0x80 : 0;
	p[4] = (uint8_t)type;
	put32(p + 8, (uint32_t)start);
	put32(p + 12, (uint32_t)n);
	s[510] = 0x55;
	s[511] = 0xAA;
	if (pwrite(fd, s, 512, (off_t)(lba * SS)) != 512)
		die("write sector");
}

static void fill_random(int fd, uint64_t lba, unsigned sectors)
{
	uint8_t buf[4096];

	for (unsigned s = 0; s < sectors; s++) {
		for (unsigned i = 0; i < SS; i += 8) {
			uint64_t v = next_rand();
			memcpy(buf + i, &v, 8);
		}
		if (pwrite(fd, buf, SS, (off_t)((lba + s) * SS)) != SS)
			die("write data");
	}
}

static const unsigned types[] = { 0x07, 0x0B, 0x0C, 0x83, 0x83, 0x83, 0x82, 0x8E, 0xFD,
				  0x27, 0x06, 0x0E, 0x01, 0x1C };

static unsigned rand_type(void)
{
	return types[rand_range(0, sizeof(types) / sizeof(types[0]) - 1)];
}

/* Gaps: none, odd-sized, a few MiB, or now and then one large enough for an ESP. */
static uint64_t rand_gap(void)
{
	switch (rand_range(0, 7)) {
	case 0: case 1: return 0;
	case 2: case 3: return rand_range(1, 100);
	case 4: return rand_range(100, 140) * MIB_SECTORS;
	default: return rand_range(1, 3) * MIB_SECTORS;
	}
}

/* Logicals inside [ext_first, ...): returns the last LBA used. */
static uint64_t gen_logicals(uint64_t ext_first, unsigned count, struct part *parts,
			     int *np, uint64_t *ebrs, int *nebr)
{
	uint64_t ebr = ext_first, end = ext_first;

	for (unsigned i = 0; i < count; i++) {
		uint64_t off = rand_range(0, 1) ? 63 : MIB_SECTORS;
		uint64_t size = rand_range(1, 6) * MIB_SECTORS - (rand_range(0, 1) ? 0 : 7);
		struct part *p = &parts[(*np)++];
		*p = (struct part){ 5 + i, ebr + off, ebr + off + size - 1, rand_type() };
		ebrs[(*nebr)++] = ebr;
		end = p->last;
		ebr = p->last + 1 + rand_gap();
	}
	return end;
}

static void link_logicals(int fd, uint64_t ext_first, const struct part *parts, int first,
			  int n, const uint64_t *ebrs)
{
	for (int i = 0; i < n; i++) {
		const struct part *p = &parts[first + i];
		write_rec(fd, ebrs[i], 0, p->type, p->first - ebrs[i], p->last - p->first + 1, 0);
		if (i + 1 < n)
			write_rec(fd, ebrs[i], 1, 0x05, ebrs[i + 1] - ext_first,
				  parts[first + i + 1].last + 1 - ebrs[i + 1], 0);
	}
}

struct layout {
	struct part parts[MAX_PARTS];
	uint64_t ebrs[MAX_PARTS];
	int np, nebr;
	int ext_slot, lfirst, nlog; /* ext_slot 0: no extended partition */
	uint64_t ext_first, ext_last, disk;
};

/* Items (primaries, maybe one extended) one after another with random gaps; primaries
 * take shuffled slots, so slot order and disk order differ. */
static void place_items(struct layout *l)
{
	unsigned slots[4] = { 1, 2, 3, 4 };

	for (int i = 3; i > 0; i--) {
		int j = (int)rand_range(0, (uint64_t)i);
		unsigned t = slots[i];
		slots[i] = slots[j];
		slots[j] = t;
	}
	unsigned items = (unsigned)rand_range(1, 4);
	int ext_item = rand_range(0, 2) ? (int)rand_range(0, items - 1) : -1;
	int to_end = (int)rand_range(0, 1);
	uint64_t pos = rand_range(0, 3) ? MIB_SECTORS : 63;
	for (unsigned i = 0; i < items; i++) {
		if (i)
			pos += rand_gap();
		if ((int)i == ext_item) {
			l->ext_first = pos;
			l->ext_slot = (int)slots[i];
			l->lfirst = l->np;
			l->nlog = (int)rand_range(1, 5);
			l->ext_last = gen_logicals(pos, (unsigned)l->nlog, l->parts, &l->np,
						   l->ebrs, &l->nebr);
			pos = l->ext_last + 1;
			continue;
		}
		uint64_t size = rand_range(1, 8) * MIB_SECTORS - (rand_range(0, 2) ? 0 : 5);
		l->parts[l->np++] = (struct part){ slots[i], pos, pos + size - 1, rand_type() };
		pos += size;
	}
	l->disk = pos + (to_end ? 0 : rand_range(0, 1) ? rand_range(1, 2047) :
			 rand_range(1, 150) * MIB_SECTORS);
	/* "A partition running to the disk's last sector": stretch the last one (for the
	 * extended partition, its last logical). */
	if (to_end) {
		l->parts[l->np - 1].last = l->disk - 1;
		if (ext_item == (int)items - 1)
			l->ext_last = l->disk - 1;
	}
}

static void write_tables(int fd, const struct layout *l)
{
	uint8_t s[512];

	for (int i = 0; i < l->np; i++) {
		const struct part *p = &l->parts[i];
		if (p->number <= 4)
			write_rec(fd, 0, (int)p->number - 1, p->type, p->first,
				  p->last - p->first + 1, i == 0);
	}
	if (l->ext_slot) {
		write_rec(fd, 0, l->ext_slot - 1, 0x0F, l->ext_first,
			  l->ext_last - l->ext_first + 1, 0);
		link_logicals(fd, l->ext_first, l->parts, l->lfirst, l->nlog, l->ebrs);
	}
	/* Disk signature and boot code bytes, as a real MBR has. */
	if (pread(fd, s, 512, 0) != 512)
		die("read MBR");
	for (int i = 0; i < 444; i++)
		s[i] = (uint8_t)next_rand();
	if (pwrite(fd, s, 512, 0) != 512)
		die("write MBR");
}

static int gen(uint64_t seed, const char *path)
{
	struct layout l = { .np = 0 };

	rng = seed;
	place_items(&l);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path);
	if (ftruncate(fd, (off_t)(l.disk * SS)) < 0)
		die("truncate");
	write_tables(fd, &l);
	printf("disk %llu\n", (unsigned long long)l.disk);
	for (int i = 0; i < l.np; i++) {
		const struct part *p = &l.parts[i];
		uint64_t n = p->last - p->first + 1;
		fill_random(fd, p->first, n < 4 ? (unsigned)n : 4);
		fill_random(fd, p->last - (n < 4 ? n : 4) + 1, n < 4 ? (unsigned)n : 4);
		fill_random(fd, p->first + n / 2, 1);
		printf("%u %llu %llu %02x\n", p->number, (unsigned long long)p->first,
		       (unsigned long long)p->last, p->type);
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		die("close");
	return 0;
}

static uint64_t hash_part(int fd, uint64_t first, uint64_t last)
{
	uint64_t h = 0xcbf29ce484222325ull, start = first * SS, end = (last + 1) * SS;
	uint8_t buf[4096];

	for (uint64_t off = start; off < end; off += sizeof(buf)) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA);
		if (data < 0 || (uint64_t)data >= end)
			break;
		if ((uint64_t)data > off)
			off = start + ((uint64_t)data - start) / sizeof(buf) * sizeof(buf);
		size_t n = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
			die("read partition");
		size_t k = 0;
		while (k < n && !buf[k])
			k++;
		if (k == n)
			continue;
		for (int b = 0; b < 8; b++)
			h = (h ^ (uint8_t)((off - start) >> 8 * b)) * 0x100000001b3ull;
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	}
	return h;
}

static int hash(const char *image, const char *layout)
{
	FILE *f = fopen(layout, "r");
	int fd = open(image, O_RDONLY);
	unsigned number, type;
	unsigned long long first, last;
	char line[256];

	if (!f || fd < 0)
		die("open");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %llu %llu %x", &number, &first, &last, &type) == 4)
			printf("%u %016llx\n", number,
			       (unsigned long long)hash_part(fd, first, last));
	fclose(f);
	close(fd);
	return 0;
}

static int sum(const char *image)
{
	int fd = open(image, O_RDONLY);
	off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);

	if (size < 0)
		die(image);
	printf("%lld %016llx\n", (long long)size,
	       (unsigned long long)(size >= SS ? hash_part(fd, 0, (uint64_t)size / SS - 1) : 0));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-4")) {
		SS = 4096;
		argc--;
		argv++;
	}
	if (argc == 3 && !strcmp(argv[1], "sum"))
		return sum(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "gen"))
		return gen(strtoull(argv[2], NULL, 0), argv[3]);
	if (argc == 4 && !strcmp(argv[1], "hash"))
		return hash(argv[2], argv[3]);
	fputs("usage: part_prop gen SEED IMAGE | hash IMAGE LAYOUT | sum IMAGE\n", stderr);
	return 2;
}
