/* tests/unit/vmm_acpi_test.c - vmm/acpi.c: the table-loader script run as a firmware runs
 * it (allocate at made-up addresses, patch pointers, compute checksums the OVMF way), then
 * every table reached only through the patched pointers and checked against the ACPI 6.4
 * layouts written out here independently (offsets as in the spec, not from acpi.c): RSDP
 * checksums, RSDT/XSDT entries, FADT -> DSDT/FACS and its PM blocks, MADT entries per CPU,
 * the DSDT's top-level AML framing, _PRT = the GSIs pci_piix3_route() asserts; and
 * out-of-range machines refused with -EINVAL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/acpi.h"
#include "vmm/pci.h"

#define CMD_BYTES 128
#define FSEG_ADDR 0x000F0010u /* deliberately unaligned: ALLOCATE must round up */
#define HIGH_ADDR 0x3FFF0001u

struct fw {
	struct acpi_blobs b;
	uint64_t addr[ACPI_N_BLOBS];
	unsigned allocates, pointers, checksums;
};

static int blob_index(const struct fw *fw, const uint8_t *name56)
{
	for (int i = 0; i < ACPI_N_BLOBS; i++)
		if (strncmp((const char *)name56, fw->b.file[i].name, 56) == 0)
			return i;
	fail_msg("loader names an unknown file %.56s", (const char *)name56);
	return -1;
}

static void run_allocate(struct fw *fw, const uint8_t *c)
{
	int i = blob_index(fw, c + 4);
	uint32_t align = get_le32(c + 60);
	assert_int_equal(fw->addr[i], 0); /* once */
	assert_true(align && !(align & (align - 1)));
	assert_true(c[64] == 1 || c[64] == 2);
	uint64_t base = c[64] == 2 ? FSEG_ADDR : HIGH_ADDR;
	fw->addr[i] = (base + align - 1) & ~(uint64_t)(align - 1);
	fw->allocates++;
}

static void run_add_pointer(struct fw *fw, const uint8_t *c)
{
	int d = blob_index(fw, c + 4), s = blob_index(fw, c + 60);
	uint32_t off = get_le32(c + 116);
	unsigned size = c[120];
	assert_true(fw->addr[d] && fw->addr[s]); /* allocated before use */
	assert_true(size == 4 || size == 8);
	assert_true(off + size <= fw->b.file[d].len);
	uint8_t *f = fw->b.file[d].data + off;
	uint64_t v = size == 8 ? get_le64(f) : get_le32(f);
	assert_true(v < fw->b.file[s].len); /* an offset inside the source file */
	if (size == 8)
		put_le64(f, v + fw->addr[s]);
	else
		put_le32(f, (uint32_t)(v + fw->addr[s]));
	fw->pointers++;
}

/* OVMF (QemuFwCfgAcpi.c) writes CalculateCheckSum8 of the range, the result byte included:
 * correct only when acpi.c left that byte 0. */
static void run_add_checksum(struct fw *fw, const uint8_t *c)
{
	int i = blob_index(fw, c + 4);
	uint32_t res = get_le32(c + 60), start = get_le32(c + 64), len = get_le32(c + 68);
	uint8_t *d = fw->b.file[i].data;
	assert_true(fw->addr[i]);
	assert_true(start + len <= fw->b.file[i].len && res >= start && res < start + len);
	assert_int_equal(d[res], 0);
	uint8_t sum = 0;
	for (uint32_t k = start; k < start + len; k++)
		sum = (uint8_t)(sum + d[k]);
	d[res] = (uint8_t)-sum;
	fw->checksums++;
}

static void firmware_load(struct fw *fw)
{
	const struct acpi_blob *l = &fw->b.file[ACPI_BLOB_LOADER];
	assert_int_equal(l->len % CMD_BYTES, 0);
	for (uint32_t at = 0; at < l->len; at += CMD_BYTES) {
		const uint8_t *c = l->data + at;
		switch (get_le32(c)) {
		case 1: run_allocate(fw, c); break;
		case 2: run_add_pointer(fw, c); break;
		case 3: run_add_checksum(fw, c); break;
		default: fail_msg("loader command %u at %u", get_le32(c), at);
		}
	}
	assert_int_equal(fw->allocates, ACPI_N_BLOBS - 1);
}

/* Patched memory at a guest address, as the OS would read it. */
static uint8_t *guest(struct fw *fw, uint64_t addr, uint32_t len)
{
	for (int i = 0; i < ACPI_N_BLOBS; i++) {
		uint64_t a = fw->addr[i];
		if (a && addr >= a && addr - a + len <= fw->b.file[i].len)
			return fw->b.file[i].data + (addr - a);
	}
	fail_msg("nothing at guest address 0x%llx", (unsigned long long)addr);
	return NULL;
}

static uint8_t sum8(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* A table with a valid header (ACPI 6.4 5.2.6) at addr: signature, length, checksum. */
static uint8_t *table(struct fw *fw, uint64_t addr, const char *sig)
{
	uint8_t *h = guest(fw, addr, 36);
	assert_memory_equal(h, sig, 4);
	uint32_t len = get_le32(h + 4);
	assert_true(len >= 36);
	guest(fw, addr, len);
	assert_int_equal(sum8(h, len), 0);
	return h;
}

static void build_and_load(struct fw *fw, unsigned cpus)
{
	struct acpi_machine m;
	memset(fw, 0, sizeof(*fw));
	acpi_machine_pc(&m, cpus, 512ull << 20, 0xB000, 2);
	assert_int_equal(acpi_build(&m, &fw->b), 0);
	firmware_load(fw);
}

static uint8_t *rsdp(struct fw *fw)
{
	uint8_t *p = guest(fw, fw->addr[ACPI_BLOB_RSDP], 36);
	assert_memory_equal(p, "RSD PTR ", 8);
	assert_int_equal(fw->addr[ACPI_BLOB_RSDP] % 16, 0); /* SeaBIOS scans 16-byte steps */
	assert_true(fw->addr[ACPI_BLOB_RSDP] < 0x100000);
	assert_int_equal(p[15], 2);
	assert_int_equal(get_le32(p + 20), 36);
	assert_int_equal(sum8(p, 20), 0);
	assert_int_equal(sum8(p, 36), 0);
	return p;
}

static void test_rsdp_xsdt_rsdt(void **state)
{
	struct fw fw;
	(void)state;
	build_and_load(&fw, 1);
	uint8_t *p = rsdp(&fw);
	uint8_t *x = table(&fw, get_le64(p + 24), "XSDT");
	uint8_t *r = table(&fw, get_le32(p + 16), "RSDT");
	assert_int_equal(get_le32(x + 4), 36 + 2 * 8);
	assert_int_equal(get_le32(r + 4), 36 + 2 * 4);
	table(&fw, get_le64(x + 36), "FACP");
	table(&fw, get_le64(x + 44), "APIC");
	assert_int_equal(get_le32(r + 36), get_le64(x + 36));
	assert_int_equal(get_le32(r + 40), get_le64(x + 44));
	/* 7 checksummed: DSDT, FACP, APIC, RSDT, XSDT, RSDP's two. */
	assert_int_equal(fw.checksums, 7);
	acpi_blobs_free(&fw.b);
}

static uint8_t *fadt(struct fw *fw)
{
	uint8_t *x = table(fw, get_le64(rsdp(fw) + 24), "XSDT");
	return table(fw, get_le64(x + 36), "FACP");
}

static void test_fadt(void **state)
{
	struct fw fw;
	(void)state;
	build_and_load(&fw, 2);
	uint8_t *f = fadt(&fw);
	assert_int_equal(get_le32(f + 4), 244);
	uint8_t *facs = guest(&fw, get_le32(f + 36), 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(get_le32(facs + 4), 64);
	assert_int_equal(get_le32(f + 36) % 64, 0);
	table(&fw, get_le32(f + 40), "DSDT");
	assert_int_equal(get_le64(f + 140), get_le32(f + 40)); /* X_DSDT = DSDT */
	assert_int_equal(get_le64(f + 132), 0);                 /* X_FIRMWARE_CTRL unused */
	assert_int_equal(get_le16(f + 46), 9);                  /* SCI_INT */
	assert_int_equal(get_le32(f + 48), 0xB2);               /* SMI_CMD */
	assert_int_equal(get_le32(f + 56), 0xB000);             /* PM1a_EVT_BLK */
	assert_int_equal(get_le32(f + 64), 0xB004);             /* PM1a_CNT_BLK */
	assert_int_equal(get_le32(f + 76), 0xB008);             /* PM_TMR_BLK */
	assert_int_equal(get_le32(f + 80), 0xAFE0);             /* GPE0_BLK */
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[92], 4);
	assert_int_equal(get_le32(f + 112) & (1u << 8), 0);     /* TMR_VAL_EXT: 24-bit timer */
	assert_int_equal(get_le32(f + 112) & (1u << 10), 1u << 10); /* RESET_REG_SUP */
	assert_int_equal(f[116], 1);                            /* RESET_REG in SystemIO */
	assert_int_equal(get_le64(f + 120), 0xCF9);
	assert_int_equal(f[128], 6);
	assert_int_equal(get_le64(f + 172 + 4), 0xB004);        /* X_PM1a_CNT_BLK */
	assert_int_equal(get_le64(f + 208 + 4), 0xB008);        /* X_PM_TMR_BLK */
	acpi_blobs_free(&fw.b);
}

static void check_madt(unsigned cpus)
{
	struct fw fw;
	build_and_load(&fw, cpus);
	uint8_t *x = table(&fw, get_le64(rsdp(&fw) + 24), "XSDT");
	uint8_t *a = table(&fw, get_le64(x + 44), "APIC");
	uint32_t len = get_le32(a + 4), off = 44;
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0, other = 0;
	assert_int_equal(get_le32(a + 36), 0xFEE00000u);
	while (off < len) {
		uint8_t type = a[off], elen = a[off + 1];
		assert_true(elen >= 2 && off + elen <= len);
		if (type == 0) {
			assert_int_equal(a[off + 2], lapics); /* UID */
			assert_int_equal(a[off + 3], lapics); /* APIC ID */
			assert_int_equal(get_le32(a + off + 4), 1);
			lapics++;
		} else if (type == 1) {
			assert_int_equal(get_le32(a + off + 4), 0xFEC00000u);
			ioapics++;
		} else if (type == 2) {
			uint8_t irq = a[off + 3];
			assert_true(irq == 9 || irq == 10 || irq == 11);
			assert_int_equal(get_le32(a + off + 4), irq); /* identity: KVM routing */
			assert_int_equal(get_le16(a + off + 8), 0x000D);
			isos++;
		} else if (type == 4) {
			nmis++;
		} else {
			other++;
		}
		off += elen;
	}
	assert_int_equal(off, len);
	assert_int_equal(lapics, cpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 3);
	assert_int_equal(nmis, 1);
	assert_int_equal(other, 0);
	assert_int_equal(len, 44 + 8 * cpus + 12 + 3 * 10 + 6);
	acpi_blobs_free(&fw.b);
}

static void test_madt(void **state)
{
	(void)state;
	check_madt(1);
	check_madt(4);
	check_madt(ACPI_MAX_CPUS);
}

/* PkgLength (20.2.4), decoded independently: its byte count and the length it encodes. */
static uint32_t pkg_length(const uint8_t *p, unsigned *bytes)
{
	unsigned n = (p[0] >> 6) + 1;
	uint32_t v = n == 1 ? p[0] & 0x3F : p[0] & 0x0F;
	for (unsigned i = 1; i < n; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	*bytes = n;
	return v;
}

static const uint8_t s5_name[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12 };

/* The DSDT is Scope(\_SB){...} then Name(\_S5_, Package(4){0,0,0,0}) ending the table: so
 * the scope's PkgLength must land exactly on the _S5 name, for 1- to 3-byte encodings. */
static void check_dsdt(unsigned cpus)
{
	struct fw fw;
	build_and_load(&fw, cpus);
	uint8_t *d = table(&fw, get_le32(fadt(&fw) + 40), "DSDT");
	uint32_t len = get_le32(d + 4);
	unsigned n;
	assert_int_equal(d[36], 0x10); /* ScopeOp */
	uint32_t scope = pkg_length(d + 37, &n);
	assert_memory_equal(d + 37 + n, "\\_SB_", 5);
	assert_true(37 + scope + sizeof(s5_name) <= len);
	assert_memory_equal(d + 37 + scope, s5_name, sizeof(s5_name));
	uint32_t pkg = pkg_length(d + 37 + scope + sizeof(s5_name), &n);
	assert_int_equal(37 + scope + sizeof(s5_name) + pkg, len);
	assert_int_equal(n, 1);
	assert_int_equal(pkg, 6); /* PkgLength, NumElements 4, four ZeroOps */
	/* EisaId("PNP0A03") as AML encodes it: DWordPrefix 41 D0 0A 03. */
	assert_non_null(memmem(d, len, "\x0c\x41\xd0\x0a\x03", 5));
	assert_non_null(memmem(d, len, "_PRT", 4));
	acpi_blobs_free(&fw.b);
}

static void test_dsdt_framing(void **state)
{
	(void)state;
	check_dsdt(1);   /* DSDT < 4 KiB: 2-byte scope length */
	check_dsdt(200); /* > 4 KiB of processor devices: 3-byte scope length */
}

/* An AML integer (20.2.3) at *p: ZeroOp, OneOp, Byte/Word/DWordConst; advances *p. */
static uint32_t aml_integer(const uint8_t **p)
{
	const uint8_t *q = *p;
	switch (q[0]) {
	case 0x00: *p += 1; return 0;
	case 0x01: *p += 1; return 1;
	case 0x0A: *p += 2; return q[1];
	case 0x0B: *p += 3; return get_le16(q + 1);
	case 0x0C: *p += 5; return get_le32(q + 1);
	default: fail_msg("AML integer expected, opcode 0x%02x", q[0]);
	}
	return 0;
}

/* Every _PRT entry must name the GSI that virtio_blk.c will assert: what
 * pci_piix3_route() reads from the PIIX3 once the firmware has programmed PIRQA-D as both
 * SeaBIOS and OVMF do (10, 10, 11, 11). Slot 1's INTA is the SCI (IRQ 9). */
static void test_prt_matches_piix3_routing(void **state)
{
	struct fw fw;
	struct pci_func piix3;
	struct pci_bus bus;
	(void)state;
	build_and_load(&fw, 1); /* virtio slots 2 and 3 */
	pci_bus_init(&bus);
	pci_piix3_init(&piix3);
	assert_int_equal(pci_bus_add(&bus, &piix3), 0);
	for (unsigned i = 0; i < 4; i++) /* config writes as the firmware does them */
		pci_bus_cfg_write(&bus, 1, 0, 0x60 + i, 1, i < 2 ? 10 : 11);
	uint8_t *d = table(&fw, get_le32(fadt(&fw) + 40), "DSDT");
	const uint8_t *p = memmem(d, get_le32(d + 4), "\x08_PRT\x12", 6);
	assert_non_null(p);
	unsigned n, entries, seen = 0;
	p += 6;
	pkg_length(p, &n);
	p += n;
	entries = *p++;
	assert_int_equal(entries, 3 * 4); /* slots 1, 2, 3, four pins each */
	for (unsigned e = 0; e < entries; e++) {
		assert_int_equal(*p++, 0x12); /* PackageOp */
		pkg_length(p, &n);
		p += n;
		assert_int_equal(*p++, 4);
		uint32_t addr = aml_integer(&p), pin = aml_integer(&p);
		uint32_t source = aml_integer(&p), gsi = aml_integer(&p);
		unsigned slot = addr >> 16;
		assert_int_equal(addr & 0xFFFF, 0xFFFF);
		assert_int_equal(source, 0);
		assert_true(pin < 4);
		if (slot == 1 && pin == 0)
			assert_int_equal(gsi, 9);
		else
			assert_int_equal(gsi, pci_piix3_route(&piix3, slot, pin + 1));
		seen |= 1u << (slot * 4 + pin);
	}
	assert_int_equal(seen, 0xFFFu << 4); /* every pin of slots 1-3, once */
	acpi_blobs_free(&fw.b);
}

/* The raw blobs carry 0 in every checksum field the loader fills in, and pointers are
 * offsets: a firmware that ran nothing would see invalid tables, not wrong-but-valid ones. */
static void test_raw_blobs(void **state)
{
	struct acpi_machine m;
	struct acpi_blobs b = { 0 };
	(void)state;
	acpi_machine_pc(&m, 1, 256ull << 20, 0x600, 1);
	assert_int_equal(acpi_build(&m, &b), 0);
	assert_string_equal(b.file[ACPI_BLOB_RSDP].name, "etc/acpi/rsdp");
	assert_string_equal(b.file[ACPI_BLOB_TABLES].name, "etc/acpi/tables");
	assert_string_equal(b.file[ACPI_BLOB_LOADER].name, "etc/table-loader");
	assert_int_equal(b.file[ACPI_BLOB_RSDP].len, 36);
	assert_int_equal(b.file[ACPI_BLOB_RSDP].data[8], 0);
	assert_int_equal(b.file[ACPI_BLOB_RSDP].data[32], 0);
	/* First command: ALLOCATE etc/acpi/tables, align 64, HIGH (QEMU's order). */
	const uint8_t *c = b.file[ACPI_BLOB_LOADER].data;
	assert_int_equal(get_le32(c), 1);
	assert_string_equal((const char *)c + 4, "etc/acpi/tables");
	assert_int_equal(get_le32(c + 60), 64);
	assert_int_equal(c[64], 1);
	assert_memory_equal(b.file[ACPI_BLOB_TABLES].data, "FACS", 4); /* at 0: 64-aligned */
	acpi_blobs_free(&b);
	acpi_blobs_free(&b); /* idempotent */
	acpi_blobs_free(NULL);
}

static void expect_einval(const struct acpi_machine *m, const char *words)
{
	struct acpi_blobs b;
	memset(&b, 0xA5, sizeof(b));
	assert_int_equal(acpi_build(m, &b), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), words));
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(((uint8_t *)&b)[i], 0xA5); /* *out untouched */
}

static void test_bad_machines(void **state)
{
	struct acpi_machine good, m;
	(void)state;
	acpi_machine_pc(&good, 2, 1ull << 30, 0xB000, 1);
	m = good, m.cpus = 0;
	expect_einval(&m, "0 CPUs");
	m = good, m.cpus = ACPI_MAX_CPUS + 1;
	expect_einval(&m, "256 CPUs");
	m = good, m.pm_base = 0;
	expect_einval(&m, "PM base");
	m = good, m.pm_base = 0xB004;
	expect_einval(&m, "PM base 0xb004");
	m = good, m.pci_hole_start = (1u << 30) - 4096;
	expect_einval(&m, "PCI hole");
	m = good, m.pci_hole_end = 0xFEC00000u;
	expect_einval(&m, "PCI hole");
	m = good, m.sci_irq = 2;
	expect_einval(&m, "SCI");
	m = good, m.com1_irq = 16;
	expect_einval(&m, "COM1");
	m = good, m.pirq_irqs[3] = 0;
	expect_einval(&m, "PIRQ");
	m = good, m.pci_slots |= 1;
	expect_einval(&m, "slot 0");
	m = good, m.gpe0_bytes = 3;
	expect_einval(&m, "GPE0");
	m = good, m.ioapic_pins = 8;
	expect_einval(&m, "IOAPIC");
}

static void test_fw_cfg_files(void **state)
{
	static uint8_t ram[4096];
	const struct vmm_mem mem = { ram, sizeof(ram), NULL, 0 };
	struct fw_cfg *fw = calloc(1, sizeof(*fw));
	struct acpi_machine m;
	(void)state;
	assert_non_null(fw);
	assert_int_equal(fw_cfg_init(fw, &mem), 0);
	acpi_machine_pc(&m, 1, 512ull << 20, 0xB000, 1);
	assert_int_equal(acpi_fw_cfg_add(fw, &m), 0);
	assert_int_equal(fw->n_files, 3);
	assert_int_equal(acpi_fw_cfg_add(fw, &m), -EEXIST); /* names are unique */
	m.cpus = 0;
	assert_int_equal(acpi_fw_cfg_add(fw, &m), -EINVAL);
	fw_cfg_free(fw);
	free(fw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_xsdt_rsdt),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_dsdt_framing),
		cmocka_unit_test(test_prt_matches_piix3_routing),
		cmocka_unit_test(test_raw_blobs),
		cmocka_unit_test(test_bad_machines),
		cmocka_unit_test(test_fw_cfg_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
