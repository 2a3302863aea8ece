/* tests/tools/acpi_dump.c - runs vmm/acpi.c's table-loader script the way a firmware does
 * and writes every table it reaches to OUTDIR/<SIG>.dat, for an independent parser
 * (`iasl -d`, tests/diff/acpi-iasl.test.sh).
 *
 *   acpi_dump [--cpus N] [--low-mib M] [--pm-base PORT] [--virtio N] OUTDIR
 *
 * The files are placed at made-up guest addresses (RSDP in the F segment, the tables high),
 * pointers are patched and checksums computed as OVMF's QemuFwCfgAcpi.c does (the result
 * byte becomes minus the sum of the range, itself included). Then the tables are found only
 * by following the patched pointers: RSDP -> XSDT (and RSDT) -> FACP, APIC; FACP -> DSDT,
 * FACS. Exit 0, or 1 with one line on stderr saying what was wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/acpi.h"

#define CMD_BYTES 128
#define FSEG_ADDR 0x000F5A00u
#define HIGH_ADDR 0x7FFE0000u

struct placed {
	struct acpi_blob *blob;
	uint64_t addr; /* 0 = not allocated yet */
};

static struct placed placed[ACPI_N_BLOBS];

__attribute__((format(printf, 1, 2))) static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "acpi_dump: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static struct placed *find(const uint8_t *name56)
{
	char name[57];
	memcpy(name, name56, 56);
	name[56] = '\0';
	for (unsigned i = 0; i < ACPI_N_BLOBS; i++)
		if (strcmp(placed[i].blob->name, name) == 0)
			return &placed[i];
	return NULL;
}

static int allocate(const uint8_t *c)
{
	struct placed *p = find(c + 4);
	uint32_t align = get_le32(c + 60);
	if (!p || p->addr)
		return die("ALLOCATE of %.56s: unknown file or allocated twice", (const char *)c + 4);
	if (align == 0 || (align & (align - 1)))
		return die("ALLOCATE of %.56s: alignment %u", (const char *)c + 4, align);
	uint64_t base = c[64] == 2 ? FSEG_ADDR : c[64] == 1 ? HIGH_ADDR : 0;
	if (!base)
		return die("ALLOCATE of %.56s: zone %u", (const char *)c + 4, c[64]);
	p->addr = (base + align - 1) & ~(uint64_t)(align - 1);
	return 0;
}

static int add_pointer(const uint8_t *c)
{
	struct placed *d = find(c + 4), *s = find(c + 60);
	uint32_t off = get_le32(c + 116);
	unsigned size = c[120];
	if (!d || !s || !d->addr || !s->addr)
		return die("ADD_POINTER into %.56s: a file is unknown or not allocated",
			   (const char *)c + 4);
	if ((size != 1 && size != 2 && size != 4 && size != 8) || off > d->blob->len ||
	    size > d->blob->len - off)
		return die("ADD_POINTER into %.56s: %u-byte field at %u out of the file",
			   (const char *)c + 4, size, off);
	uint8_t *f = d->blob->data + off;
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)f[i] << (8 * i);
	if (v >= s->blob->len)
		return die("ADD_POINTER into %.56s at %u: offset %llu beyond the source file",
			   (const char *)c + 4, off, (unsigned long long)v);
	v += s->addr;
	for (unsigned i = 0; i < size; i++)
		f[i] = (uint8_t)(v >> (8 * i));
	return 0;
}

static int add_checksum(const uint8_t *c)
{
	struct placed *p = find(c + 4);
	uint32_t res = get_le32(c + 60), start = get_le32(c + 64), len = get_le32(c + 68);
	if (!p || !p->addr || start > p->blob->len || len > p->blob->len - start ||
	    res >= p->blob->len)
		return die("ADD_CHECKSUM in %.56s: range %u+%u or result %u outside the file", (const char *)c + 4, start, len, res);
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p->blob->data[start + i]);
	p->blob->data[res] = (uint8_t)-sum;
	return 0;
}

static int run_loader(const struct acpi_blob *loader)
{
	if (loader->len % CMD_BYTES)
		return die("%s: length %u is not a multiple of 128", loader->name, loader->len);
	for (uint32_t at = 0; at < loader->len; at += CMD_BYTES) {
		const uint8_t *c = loader->data + at;
		uint32_t cmd = get_le32(c);
		int r = cmd == 1 ? allocate(c) : cmd == 2 ? add_pointer(c)
				     : cmd == 3 ? add_checksum(c) : die("loader command %u at %u unknown", cmd, at);
		if (r)
			return r;
	}
	return 0;
}

/* The patched bytes at guest address addr, length len, or NULL if no file holds them. */
static uint8_t *guest(uint64_t addr, uint64_t len)
{
	for (unsigned i = 0; i < ACPI_N_BLOBS; i++) {
		struct placed *p = &placed[i];
		if (p->addr && addr >= p->addr && addr - p->addr <= p->blob->len &&
		    len <= p->blob->len - (addr - p->addr))
			return p->blob->data + (addr - p->addr);
	}
	return NULL;
}

static int write_table(const char *dir, const char *sig, const uint8_t *t, uint32_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%.4s.dat", dir, sig);
	FILE *f = fopen(path, "wb");
	if (!f)
		return die("cannot create %s: %s", path, strerror(errno));
	size_t n = fwrite(t, 1, len, f);
	if (fclose(f) != 0 || n != len)
		return die("cannot write %s", path);
	return 0;
}

/* A table with a header at addr: its length comes from the header and must fit. */
static int dump_at(const char *dir, uint64_t addr, uint8_t **out)
{
	uint8_t *h = guest(addr, 36);
	if (!h)
		return die("no table at 0x%llx", (unsigned long long)addr);
	uint32_t len = memcmp(h, "FACS", 4) == 0 ? 64 : get_le32(h + 4);
	if (len < 36 || !guest(addr, len))
		return die("table %.4s at 0x%llx: length %u out of its file", (const char *)h, (unsigned long long)addr, len);
	if (out)
		*out = h;
	return write_table(dir, (const char *)h, h, len);
}

static int dump_sdt(const char *dir, uint64_t addr, unsigned entry_bytes)
{
	uint8_t *t;
	int r = dump_at(dir, addr, &t);
	uint32_t len = r ? 0 : get_le32(t + 4);
	for (uint32_t off = 36; r == 0 && off + entry_bytes <= len; off += entry_bytes) {
		uint64_t e = entry_bytes == 8 ? get_le64(t + off) : get_le32(t + off);
		uint8_t *sub;
		r = dump_at(dir, e, &sub);
		if (r == 0 && memcmp(sub, "FACP", 4) == 0) {
			r = dump_at(dir, get_le32(sub + 40), NULL);
			if (r == 0)
				r = dump_at(dir, get_le32(sub + 36), NULL);
		}
	}
	return r;
}

static int dump_all(const char *dir)
{
	uint8_t *rsdp = guest(placed[ACPI_BLOB_RSDP].addr, 36);
	if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) != 0)
		return die("%s: no RSDP signature", ACPI_FILE_RSDP);
	int r = write_table(dir, "RSDP", rsdp, 36);
	if (r == 0)
		r = dump_sdt(dir, get_le32(rsdp + 16), 4);
	if (r == 0)
		r = dump_sdt(dir, get_le64(rsdp + 24), 8);
	return r;
}

static int usage(void)
{
	fprintf(stderr, "usage: acpi_dump [--cpus N] [--low-mib M] [--pm-base PORT] "
			"[--virtio N] OUTDIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned cpus = 1, low_mib = 512, virtio = 1, pm_base = 0xB000;
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		unsigned v = (unsigned)strtoul(argv[i + 1], NULL, 0);
		if (strcmp(argv[i], "--cpus") == 0)
			cpus = v;
		else if (strcmp(argv[i], "--low-mib") == 0)
			low_mib = v;
		else if (strcmp(argv[i], "--pm-base") == 0)
			pm_base = v;
		else if (strcmp(argv[i], "--virtio") == 0)
			virtio = v;
		else
			return usage();
	}
	if (i + 1 != argc)
		return usage();
	struct acpi_machine am;
	struct acpi_blobs b = { 0 };
	acpi_machine_pc(&am, cpus, (uint64_t)low_mib << 20, (uint16_t)pm_base, virtio);
	int r = acpi_build(&am, &b);
	if (r < 0) {
		fprintf(stderr, "acpi_dump: acpi_build: %s\n", vdisk_errmsg());
		return 1;
	}
	for (unsigned k = 0; k < ACPI_N_BLOBS; k++)
		placed[k].blob = &b.file[k];
	int rc = run_loader(&b.file[ACPI_BLOB_LOADER]);
	if (rc == 0)
		rc = dump_all(argv[i]);
	acpi_blobs_free(&b);
	return rc;
}
