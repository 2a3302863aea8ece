/* vmm/acpi.c - the board's ACPI tables (RSDP, RSDT, XSDT, FADT, FACS, MADT, DSDT) and the
 * fw_cfg linker/loader script that makes the firmware place, link and checksum them.
 * Layouts: ACPI 6.4 chapter 5.2 (cited per table); the DSDT is AML generated here with a
 * handful of encoders (chapter 20) because its contents depend on the machine (CPUs, slots,
 * the PCI hole), which a precompiled .asl could not follow. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/vmm-int.h"

/* ---- a growing byte buffer; the first failure sticks and is reported at the end ---- */

struct acpi_buf {
	uint8_t *data;
	size_t len, cap;
	bool oom;
};

static uint8_t *buf_grow(struct acpi_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->data, cap);
		if (!p) {
			b->oom = true;
			return NULL;
		}
		memset(p + b->cap, 0, cap - b->cap);
		b->data = p;
		b->cap = cap;
	}
	uint8_t *at = b->data + b->len;
	b->len += n;
	return at;
}

static void buf_bytes(struct acpi_buf *b, const void *src, size_t n)
{
	uint8_t *p = n ? buf_grow(b, n) : NULL; /* n 0: src may be an empty buffer's NULL */
	if (p)
		memcpy(p, src, n);
}

static void buf_u8(struct acpi_buf *b, uint8_t v)
{
	buf_bytes(b, &v, 1);
}

static void buf_le(struct acpi_buf *b, uint64_t v, unsigned bytes)
{
	uint8_t *p = buf_grow(b, bytes);
	for (unsigned i = 0; p && i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Space for a fixed-layout table, zero-filled; returns its offset. */
static size_t buf_zeros(struct acpi_buf *b, size_t n)
{
	size_t at = b->len;
	buf_grow(b, n);
	return at;
}

/* The bytes at off, or a scratch area once allocation failed (the result is discarded). */
static uint8_t *buf_at(struct acpi_buf *b, size_t off)
{
	static uint8_t scratch[256];
	return b->oom ? scratch : b->data + off;
}

/* ---- AML (ACPI 6.4 chapter 20) ---- */

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0A
#define AML_WORD 0x0B
#define AML_DWORD 0x0C
#define AML_STRING 0x0D
#define AML_QWORD 0x0E
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT 0x5B
#define AML_DEVICE 0x82 /* after AML_EXT */
#define AML_ROOT '\\'

/* A PkgLength (20.2.4) counts its own bytes: 1 byte up to 63, else a lead byte holding
 * the count of following bytes and the low nibble, then 8 bits per byte. */
static unsigned pkg_length_bytes(size_t body)
{
	if (body + 1 < 0x40)
		return 1;
	if (body + 2 < 0x1000)
		return 2;
	return body + 3 < 0x100000 ? 3 : 4;
}

/* Opening a package: remember where its PkgLength goes; it is inserted on close, when the
 * body's length is known. */
static size_t aml_open(struct acpi_buf *b)
{
	return b->len;
}

static void aml_close(struct acpi_buf *b, size_t mark)
{
	size_t body = b->len - mark;
	unsigned n = pkg_length_bytes(body);
	size_t total = body + n;
	if (!buf_grow(b, n))
		return;
	memmove(b->data + mark + n, b->data + mark, body);
	uint8_t *p = b->data + mark;
	if (n == 1) {
		p[0] = (uint8_t)total;
		return;
	}
	p[0] = (uint8_t)((n - 1) << 6 | (total & 0x0F));
	for (unsigned i = 1; i < n; i++)
		p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

/* A NameSeg is exactly four characters (20.2.2); a leading '\' makes it absolute. */
static void aml_name_string(struct acpi_buf *b, const char *name)
{
	if (name[0] == AML_ROOT)
		buf_u8(b, (uint8_t)*name++);
	buf_bytes(b, name, 4);
}

/* The shortest integer encoding (20.2.3: ZeroOp, OneOp, Byte/Word/DWord/QWordConst). */
static void aml_int(struct acpi_buf *b, uint64_t v)
{
	if (v <= 1) {
		buf_u8(b, v ? AML_ONE : AML_ZERO);
	} else if (v <= 0xFF) {
		buf_u8(b, AML_BYTE);
		buf_u8(b, (uint8_t)v);
	} else if (v <= 0xFFFF) {
		buf_u8(b, AML_WORD);
		buf_le(b, v, 2);
	} else if (v <= 0xFFFFFFFFu) {
		buf_u8(b, AML_DWORD);
		buf_le(b, v, 4);
	} else {
		buf_u8(b, AML_QWORD);
		buf_le(b, v, 8);
	}
}

static void aml_string(struct acpi_buf *b, const char *s)
{
	buf_u8(b, AML_STRING);
	buf_bytes(b, s, strlen(s) + 1);
}

/* EisaId("PNP0A03") (19.6.35): three letters of 5 bits each, then four hex digits, stored
 * as a DWord whose bytes read in that order. */
static void aml_eisaid(struct acpi_buf *b, const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	uint32_t v = (uint32_t)(id[0] - 0x40) << 26 | (uint32_t)(id[1] - 0x40) << 21 |
		     (uint32_t)(id[2] - 0x40) << 16;
	for (unsigned i = 0; i < 4; i++)
		v |= (uint32_t)(strchr(hex, id[3 + i]) - hex) << (12 - 4 * i);
	buf_u8(b, AML_DWORD);
	buf_le(b, __builtin_bswap32(v), 4);
}

/* Name(seg, ...): the caller appends the value. */
static void aml_name(struct acpi_buf *b, const char *seg)
{
	buf_u8(b, AML_NAME);
	aml_name_string(b, seg);
}

static void aml_name_int(struct acpi_buf *b, const char *seg, uint64_t v)
{
	aml_name(b, seg);
	aml_int(b, v);
}

static size_t aml_scope_open(struct acpi_buf *b, const char *name)
{
	buf_u8(b, AML_SCOPE);
	size_t mark = aml_open(b);
	aml_name_string(b, name);
	return mark;
}

static size_t aml_device_open(struct acpi_buf *b, const char *name)
{
	buf_u8(b, AML_EXT);
	buf_u8(b, AML_DEVICE);
	size_t mark = aml_open(b);
	aml_name_string(b, name);
	return mark;
}

static size_t aml_package_open(struct acpi_buf *b, unsigned elements)
{
	buf_u8(b, AML_PACKAGE);
	size_t mark = aml_open(b);
	buf_u8(b, (uint8_t)elements);
	return mark;
}

/* Buffer(){bytes}: the size is a TermArg in front of the bytes. */
static void aml_buffer(struct acpi_buf *b, const struct acpi_buf *bytes)
{
	buf_u8(b, AML_BUFFER);
	size_t mark = aml_open(b);
	aml_int(b, bytes->len);
	buf_bytes(b, bytes->data, bytes->len);
	aml_close(b, mark);
}

/* ---- resource descriptors for _CRS (ACPI 6.4 section 6.4) ---- */

#define RES_IRQ_NOFLAGS 0x22 /* 6.4.2.1, 2 data bytes */
#define RES_IO 0x47          /* 6.4.2.5, 7 data bytes */
#define RES_END 0x79         /* 6.4.2.9 */
#define RES_DWORD_SPACE 0x87 /* 6.4.3.5.2 */
#define RES_WORD_SPACE 0x88  /* 6.4.3.5.3 */
#define RES_TYPE_MEMORY 0
#define RES_TYPE_IO 1
#define RES_TYPE_BUS 2
#define RES_PRODUCER_FIXED 0x0C /* _MIF | _MAF, producer, positive decode */
#define RES_IO_ENTIRE_RANGE 0x03
#define RES_MEM_CACHEABLE_RW 0x03

static void res_io(struct acpi_buf *r, uint16_t port, uint8_t align, uint8_t len)
{
	buf_u8(r, RES_IO);
	buf_u8(r, 0x01); /* 16-bit decode */
	buf_le(r, port, 2);
	buf_le(r, port, 2);
	buf_u8(r, align);
	buf_u8(r, len);
}

static void res_irq(struct acpi_buf *r, unsigned irq)
{
	buf_u8(r, RES_IRQ_NOFLAGS);
	buf_le(r, 1u << irq, 2);
}

/* Word Address Space (bus numbers, I/O ranges), no translation. */
static void res_word(struct acpi_buf *r, uint8_t type, uint8_t type_flags, uint16_t min,
		     uint16_t max)
{
	buf_u8(r, RES_WORD_SPACE);
	buf_le(r, 13, 2);
	buf_u8(r, type);
	buf_u8(r, RES_PRODUCER_FIXED);
	buf_u8(r, type_flags);
	buf_le(r, 0, 2); /* granularity */
	buf_le(r, min, 2);
	buf_le(r, max, 2);
	buf_le(r, 0, 2); /* translation */
	buf_le(r, (uint32_t)max - min + 1, 2);
}

static void res_dword_mem(struct acpi_buf *r, uint32_t min, uint32_t max)
{
	buf_u8(r, RES_DWORD_SPACE);
	buf_le(r, 23, 2);
	buf_u8(r, RES_TYPE_MEMORY);
	buf_u8(r, RES_PRODUCER_FIXED);
	buf_u8(r, RES_MEM_CACHEABLE_RW);
	buf_le(r, 0, 4);
	buf_le(r, min, 4);
	buf_le(r, max, 4);
	buf_le(r, 0, 4);
	buf_le(r, max - min + 1, 4);
}

/* Name(_CRS, ResourceTemplate(){...}) from a finished descriptor list; frees it. */
static void aml_name_crs(struct acpi_buf *b, struct acpi_buf *res)
{
	buf_u8(res, RES_END);
	buf_u8(res, 0); /* checksum 0: "treat as correct" */
	b->oom |= res->oom;
	aml_name(b, "_CRS");
	aml_buffer(b, res);
	free(res->data);
}

/* ---- the loader script (QEMU hw/acpi/bios-linker-loader.c; section 2.3) ---- */

#define LOADER_CMD_BYTES 128
#define LOADER_ALLOCATE 1
#define LOADER_ADD_POINTER 2
#define LOADER_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH 1
#define LOADER_ZONE_FSEG 2

static uint8_t *loader_cmd(struct acpi_buf *l, uint32_t command)
{
	uint8_t *c = buf_at(l, buf_zeros(l, LOADER_CMD_BYTES));
	put_le32(c, command);
	return c;
}

/* File names are NUL-padded 56-byte fields; ours are short constants. */
static void loader_name(uint8_t *field, const char *name)
{
	memcpy(field, name, strlen(name));
}

static void loader_allocate(struct acpi_buf *l, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *c = loader_cmd(l, LOADER_ALLOCATE);
	loader_name(c + 4, file);
	put_le32(c + 60, align);
	c[64] = zone;
}

static void loader_add_pointer(struct acpi_buf *l, const char *dest, uint32_t offset,
			       uint8_t size, const char *src)
{
	uint8_t *c = loader_cmd(l, LOADER_ADD_POINTER);
	loader_name(c + 4, dest);
	loader_name(c + 60, src);
	put_le32(c + 116, offset);
	c[120] = size;
}

static void loader_add_checksum(struct acpi_buf *l, const char *file, uint32_t result,
				uint32_t start, uint32_t len)
{
	uint8_t *c = loader_cmd(l, LOADER_ADD_CHECKSUM);
	loader_name(c + 4, file);
	put_le32(c + 60, result);
	put_le32(c + 64, start);
	put_le32(c + 68, len);
}

/* ---- tables (ACPI 6.4 section 5.2) ---- */

#define HDR_BYTES 36 /* 5.2.6 System Description Table Header */
#define HDR_LENGTH 4
#define HDR_CHECKSUM 9
#define OEM_ID "GENSFT"
#define OEM_TABLE_ID "GENSHIFT"

struct builder {
	const struct acpi_machine *m;
	struct acpi_buf t; /* etc/acpi/tables */
	struct acpi_buf r; /* etc/acpi/rsdp */
	struct acpi_buf l; /* etc/table-loader */
	size_t facs, dsdt, fadt, madt, rsdt, xsdt;
};

static size_t table_begin(struct acpi_buf *t, const char *sig, uint8_t rev)
{
	size_t at = buf_zeros(t, HDR_BYTES);
	uint8_t *h = buf_at(t, at);
	memcpy(h, sig, 4);
	h[8] = rev;
	memcpy(h + 10, OEM_ID, 6);
	memcpy(h + 16, OEM_TABLE_ID, 8);
	put_le32(h + 24, 1);
	memcpy(h + 28, "GSFT", 4);
	put_le32(h + 32, 1);
	return at;
}

/* Length now; checksum by the firmware, after the pointers inside are patched. */
static void table_end(struct builder *b, size_t at)
{
	uint32_t len = (uint32_t)(b->t.len - at);
	put_le32(buf_at(&b->t, at) + HDR_LENGTH, len);
	loader_add_checksum(&b->l, ACPI_FILE_TABLES, (uint32_t)at + HDR_CHECKSUM, (uint32_t)at,
			    len);
}

/* A pointer field in the tables blob to another table in it: holds the target's offset
 * until the firmware adds the blob's address. */
static void table_pointer(struct builder *b, size_t field, unsigned size, size_t target)
{
	uint8_t *p = buf_at(&b->t, field);
	if (size == 4)
		put_le32(p, (uint32_t)target);
	else
		put_le64(p, target);
	loader_add_pointer(&b->l, ACPI_FILE_TABLES, (uint32_t)field, (uint8_t)size,
			   ACPI_FILE_TABLES);
}

/* 5.2.10 FACS: 64 bytes, 64-byte aligned, no checksum. Version 2 (ACPI 2.0+ layout). */
static void build_facs(struct builder *b)
{
	b->facs = buf_zeros(&b->t, 64);
	uint8_t *f = buf_at(&b->t, b->facs);
	memcpy(f, "FACS", 4);
	put_le32(f + 4, 64);
	f[32] = 2;
}

#define GAS_ACCESS_ANY 0 /* blocks the OS splits into registers itself (PM1_EVT, GPE0) */
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2
#define GAS_ACCESS_DWORD 3

/* A Generic Address Structure (5.2.3.2) in system I/O space. */
static void put_gas_io(uint8_t *g, uint16_t port, uint8_t bytes, uint8_t access)
{
	g[0] = 1; /* SystemIO */
	g[1] = (uint8_t)(8 * bytes);
	g[2] = 0;
	g[3] = access;
	put_le64(g + 4, port);
}

#define FADT_BYTES 244 /* revision 3 layout (ACPI 2.0 FADT, still valid in 6.4 5.2.9) */
#define FADT_F_WBINVD (1u << 0)
#define FADT_F_PROC_C1 (1u << 2)
#define FADT_F_SLP_BUTTON (1u << 5)
#define FADT_F_RTC_S4 (1u << 7)
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_BOOT_LEGACY_DEVICES 0x0001 /* COM1 and the RTC are ISA devices; no 8042 */
#define CMOS_CENTURY 0x32
#define PIIX_RESET_PORT 0xCF9
#define PIIX_RESET_VALUE 0x06 /* hard reset, as QEMU's FADT and SeaBIOS */
#define APM_CNT_PORT 0xB2
#define APM_ACPI_ENABLE 0xF1
#define APM_ACPI_DISABLE 0xF0

static void fadt_pm_blocks(uint8_t *f, const struct acpi_machine *m)
{
	put_le32(f + 56, m->pm_base);       /* PM1a_EVT_BLK */
	put_le32(f + 64, m->pm_base + 4u);  /* PM1a_CNT_BLK */
	put_le32(f + 76, m->pm_base + 8u);  /* PM_TMR_BLK */
	put_le32(f + 80, m->gpe0_port);     /* GPE0_BLK */
	f[88] = 4;                          /* PM1_EVT_LEN */
	f[89] = 2;                          /* PM1_CNT_LEN */
	f[91] = 4;                          /* PM_TMR_LEN (24-bit timer: TMR_VAL_EXT clear) */
	f[92] = m->gpe0_port ? m->gpe0_bytes : 0;
	put_gas_io(f + 148, m->pm_base, 4, GAS_ACCESS_ANY);          /* X_PM1a_EVT_BLK */
	put_gas_io(f + 172, m->pm_base + 4u, 2, GAS_ACCESS_WORD);    /* X_PM1a_CNT_BLK */
	put_gas_io(f + 208, m->pm_base + 8u, 4, GAS_ACCESS_DWORD);   /* X_PM_TMR_BLK */
	if (m->gpe0_port)                                            /* X_GPE0_BLK */
		put_gas_io(f + 220, m->gpe0_port, m->gpe0_bytes, GAS_ACCESS_ANY);
}

/* 5.2.9 FADT for a PIIX4: SCI, APM enable/disable through 0xB2, PM1a/PM timer/GPE0 blocks,
 * reset through 0xCF9, C2/C3 unsupported, the RTC century byte. */
static void build_fadt(struct builder *b)
{
	const struct acpi_machine *m = b->m;
	b->fadt = table_begin(&b->t, "FACP", 3);
	buf_zeros(&b->t, FADT_BYTES - HDR_BYTES);
	uint8_t *f = buf_at(&b->t, b->fadt);
	put_le16(f + 46, m->sci_irq);
	put_le32(f + 48, APM_CNT_PORT); /* SMI_CMD */
	f[52] = APM_ACPI_ENABLE;
	f[53] = APM_ACPI_DISABLE;
	fadt_pm_blocks(f, m);
	put_le16(f + 96, 0x0FFF);  /* P_LVL2_LAT > 100: no C2 */
	put_le16(f + 98, 0x0FFF);  /* P_LVL3_LAT > 1000: no C3 */
	f[108] = CMOS_CENTURY;
	put_le16(f + 109, FADT_BOOT_LEGACY_DEVICES);
	put_le32(f + 112, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RTC_S4 |
				  FADT_F_RESET_REG_SUP);
	put_gas_io(f + 116, PIIX_RESET_PORT, 1, GAS_ACCESS_BYTE); /* RESET_REG */
	f[128] = PIIX_RESET_VALUE;
	/* FIRMWARE_CTRL and DSDT (32-bit) plus X_DSDT, as QEMU: X_FIRMWARE_CTRL stays 0, since
	 * a non-zero one must win over FIRMWARE_CTRL and two copies only invite mismatches. */
	table_pointer(b, b->fadt + 36, 4, b->facs);
	table_pointer(b, b->fadt + 40, 4, b->dsdt);
	table_pointer(b, b->fadt + 140, 8, b->dsdt);
	table_end(b, b->fadt);
}

#define MADT_LOCAL_APIC 0
#define MADT_IO_APIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_PCAT_COMPAT 1
#define MADT_ISO_LEVEL_HIGH 0x000D /* trigger level (3 << 2), polarity active-high (1) */
#define LAPIC_ADDR 0xFEE00000u

static void madt_iso(struct acpi_buf *t, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	buf_u8(t, MADT_ISO);
	buf_u8(t, 10);
	buf_u8(t, 0); /* bus: ISA */
	buf_u8(t, irq);
	buf_le(t, gsi, 4);
	buf_le(t, flags, 2);
}

/* The SCI and the PCI INTx lines are level-triggered; the KVM IOAPIC ignores polarity, so
 * active-high (QEMU's choice) is as good as the PCI-standard active-low. */
static bool is_level_irq(const struct acpi_machine *m, unsigned irq)
{
	if (irq == m->sci_irq)
		return true;
	for (unsigned i = 0; i < 4; i++)
		if (irq == m->pirq_irqs[i])
			return true;
	return false;
}

/* 5.2.12 MADT: one enabled local APIC per CPU, the IOAPIC, the interrupt source overrides
 * (IRQ0 when routed to GSI2, every level-triggered ISA IRQ), LINT1 = NMI on all CPUs. */
static void build_madt(struct builder *b)
{
	const struct acpi_machine *m = b->m;
	struct acpi_buf *t = &b->t;
	b->madt = table_begin(t, "APIC", 3);
	buf_le(t, LAPIC_ADDR, 4);
	buf_le(t, MADT_PCAT_COMPAT, 4);
	for (unsigned i = 0; i < m->cpus; i++) {
		buf_u8(t, MADT_LOCAL_APIC);
		buf_u8(t, 8);
		buf_u8(t, (uint8_t)i); /* ACPI processor UID */
		buf_u8(t, (uint8_t)i); /* APIC ID */
		buf_le(t, 1, 4);       /* enabled */
	}
	buf_u8(t, MADT_IO_APIC);
	buf_u8(t, 12);
	buf_u8(t, 0); /* IOAPIC ID */
	buf_u8(t, 0);
	buf_le(t, m->ioapic_addr, 4);
	buf_le(t, 0, 4); /* GSI base */
	if (m->irq0_to_gsi2)
		madt_iso(t, 0, 2, 0);
	for (unsigned irq = 1; irq < 16; irq++)
		if (is_level_irq(m, irq))
			madt_iso(t, (uint8_t)irq, irq, MADT_ISO_LEVEL_HIGH);
	buf_u8(t, MADT_LAPIC_NMI);
	buf_u8(t, 6);
	buf_u8(t, 0xFF); /* all processors */
	buf_le(t, 0, 2);
	buf_u8(t, 1);    /* LINT1 */
	table_end(b, b->madt);
}

/* ---- DSDT contents ---- */

/* The GSI a slot's INTx pin (0 = INTA) reaches: the i440FX swizzle onto PIRQA-D, except
 * slot 1's INTA, the PIIX4 PM function, whose SCI is wired to IRQ 9 (QEMU's LNKS). */
static unsigned prt_gsi(const struct acpi_machine *m, unsigned slot, unsigned pin)
{
	if (slot == 1 && pin == 0)
		return m->sci_irq;
	return m->pirq_irqs[(pin + slot - 1) & 3];
}

/* _PRT (6.2.13) with fixed GSIs (Source = 0): the firmware programs the PIIX3 PIRQ
 * registers with pirq_irqs and no OS reprograms them under ACPI, so link devices would
 * only add methods that read back constants. */
static void dsdt_prt(struct acpi_buf *d, const struct acpi_machine *m)
{
	unsigned n = 0;
	for (unsigned slot = 1; slot < 32; slot++)
		n += (m->pci_slots >> slot & 1) * 4;
	aml_name(d, "_PRT");
	size_t prt = aml_package_open(d, n);
	for (unsigned slot = 1; slot < 32; slot++) {
		if (!(m->pci_slots >> slot & 1))
			continue;
		for (unsigned pin = 0; pin < 4; pin++) {
			size_t e = aml_package_open(d, 4);
			aml_int(d, (uint64_t)slot << 16 | 0xFFFF); /* any function of the slot */
			aml_int(d, pin);
			aml_int(d, 0);
			aml_int(d, prt_gsi(m, slot, pin));
			aml_close(d, e);
		}
	}
	aml_close(d, prt);
}

/* PCI0's _CRS: bus 0-255, config ports, I/O below and above them, VGA window, PCI hole. */
static void dsdt_pci_crs(struct acpi_buf *d, const struct acpi_machine *m)
{
	struct acpi_buf r = { 0 };
	res_word(&r, RES_TYPE_BUS, 0, 0x00, 0xFF);
	res_io(&r, 0xCF8, 1, 8);
	res_word(&r, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, 0x0000, 0x0CF7);
	res_word(&r, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, 0x0D00, 0xFFFF);
	res_dword_mem(&r, 0x000A0000, 0x000BFFFF);
	res_dword_mem(&r, m->pci_hole_start, m->pci_hole_end);
	aml_name_crs(d, &r);
}

static void dsdt_isa(struct acpi_buf *d, const struct acpi_machine *m)
{
	size_t isa = aml_device_open(d, "ISA_");
	aml_name_int(d, "_ADR", 0x00010000); /* 00:01.0, the PIIX3 */

	size_t rtc = aml_device_open(d, "RTC_");
	aml_name(d, "_HID");
	aml_eisaid(d, "PNP0B00");
	struct acpi_buf r = { 0 };
	res_io(&r, 0x70, 1, 2);
	res_irq(&r, 8);
	aml_name_crs(d, &r);
	aml_close(d, rtc);

	size_t com = aml_device_open(d, "COM1");
	aml_name(d, "_HID");
	aml_eisaid(d, "PNP0501");
	aml_name_int(d, "_UID", 1);
	struct acpi_buf c = { 0 };
	res_io(&c, 0x3F8, 1, 8);
	res_irq(&c, m->com1_irq);
	aml_name_crs(d, &c);
	aml_close(d, com);

	aml_close(d, isa);
}

/* Processor devices (ACPI0007, 8.4) whose _UID matches the MADT's processor UIDs. */
static void dsdt_cpus(struct acpi_buf *d, const struct acpi_machine *m)
{
	static const char hex[] = "0123456789ABCDEF";
	for (unsigned i = 0; i < m->cpus; i++) {
		char name[5] = { 'C', hex[i >> 8 & 0xF], hex[i >> 4 & 0xF], hex[i & 0xF], 0 };
		size_t dev = aml_device_open(d, name);
		aml_name(d, "_HID");
		aml_string(d, "ACPI0007");
		aml_name_int(d, "_UID", i);
		aml_close(d, dev);
	}
}

/* 5.2.11.1 DSDT: \_SB.PCI0 (PNP0A03) with _CRS, _PRT and the ISA devices, the CPUs, and
 * \_S5 = SLP_TYP 0, which a PIIX4 (QEMU, our piix4_pm.c) takes as soft-off. */
static void build_dsdt(struct builder *b)
{
	struct acpi_buf *d = &b->t;
	b->dsdt = table_begin(d, "DSDT", 2); /* 2: 64-bit AML integers */
	size_t sb = aml_scope_open(d, "\\_SB_");
	size_t pci = aml_device_open(d, "PCI0");
	aml_name(d, "_HID");
	aml_eisaid(d, "PNP0A03");
	aml_name_int(d, "_UID", 0);
	aml_name_int(d, "_BBN", 0); /* no _ADR: a root bridge is named by _HID alone (6.1) */
	dsdt_pci_crs(d, b->m);
	dsdt_prt(d, b->m);
	dsdt_isa(d, b->m);
	aml_close(d, pci);
	dsdt_cpus(d, b->m);
	aml_close(d, sb);
	aml_name(d, "\\_S5_");
	size_t s5 = aml_package_open(d, 4);
	for (unsigned i = 0; i < 4; i++)
		aml_int(d, 0);
	aml_close(d, s5);
	table_end(b, b->dsdt);
}

/* 5.2.7 RSDT / 5.2.8 XSDT: FADT and MADT, 4- or 8-byte entries. */
static size_t build_sdt(struct builder *b, const char *sig, unsigned entry_bytes)
{
	const size_t entries[] = { b->fadt, b->madt };
	size_t at = table_begin(&b->t, sig, 1);
	for (unsigned i = 0; i < 2; i++) {
		size_t field = buf_zeros(&b->t, entry_bytes);
		table_pointer(b, field, entry_bytes, entries[i]);
	}
	table_end(b, at);
	return at;
}

/* 5.2.5.3 RSDP revision 2, in its own FSEG allocation (SeaBIOS scans only the F segment
 * for it); the first 20 bytes have their own checksum, the whole 36 the extended one. */
static void build_rsdp(struct builder *b)
{
	struct acpi_buf *r = &b->r;
	loader_allocate(&b->l, ACPI_FILE_RSDP, 16, LOADER_ZONE_FSEG);
	uint8_t *p = buf_at(r, buf_zeros(r, 36));
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, OEM_ID, 6);
	p[15] = 2;
	put_le32(p + 16, (uint32_t)b->rsdt);
	put_le32(p + 20, 36);
	put_le64(p + 24, b->xsdt);
	loader_add_pointer(&b->l, ACPI_FILE_RSDP, 16, 4, ACPI_FILE_TABLES);
	loader_add_pointer(&b->l, ACPI_FILE_RSDP, 24, 8, ACPI_FILE_TABLES);
	loader_add_checksum(&b->l, ACPI_FILE_RSDP, 8, 0, 20);
	loader_add_checksum(&b->l, ACPI_FILE_RSDP, 32, 0, 36);
}

/* ---- validation and the public calls ---- */

static int check_irq(const char *field, unsigned irq)
{
	if (irq < 1 || irq > 15 || irq == 2)
		return vdisk_fail(EINVAL, "acpi: %s is IRQ %u, expected an ISA IRQ 1-15 other than 2",
				  field, irq);
	return 0;
}

static int check_layout(const struct acpi_machine *m)
{
	if (m->cpus < 1 || m->cpus > ACPI_MAX_CPUS)
		return vdisk_fail(EINVAL, "acpi: %u CPUs, expected 1-%d", m->cpus, ACPI_MAX_CPUS);
	if (m->pm_base == 0 || m->pm_base % 64)
		return vdisk_fail(EINVAL, "acpi: PM base 0x%x is not a non-zero multiple of 64",
				  m->pm_base);
	if (m->gpe0_port && (m->gpe0_bytes == 0 || m->gpe0_bytes % 2 || m->gpe0_bytes > 32))
		return vdisk_fail(EINVAL, "acpi: GPE0 block of %u bytes, expected 2-32, even",
				  m->gpe0_bytes);
	if (m->pci_hole_start < m->low_ram_bytes || m->pci_hole_start >= m->pci_hole_end ||
	    m->pci_hole_end >= m->ioapic_addr)
		return vdisk_fail(EINVAL, "acpi: PCI hole 0x%x-0x%x must lie between low RAM "
				  "(0x%llx bytes) and the IOAPIC at 0x%x", m->pci_hole_start,
				  m->pci_hole_end, (unsigned long long)m->low_ram_bytes,
				  m->ioapic_addr);
	if (m->ioapic_pins < 16 || m->ioapic_pins > 120)
		return vdisk_fail(EINVAL, "acpi: IOAPIC with %u pins, expected 16-120",
				  m->ioapic_pins);
	if (m->pci_slots & 1)
		return vdisk_fail(EINVAL, "acpi: slot 0 (the host bridge) cannot have INTx");
	return 0;
}

static int check_machine(const struct acpi_machine *m)
{
	int r = check_layout(m);
	if (r == 0)
		r = check_irq("the SCI", m->sci_irq);
	if (r == 0)
		r = check_irq("COM1's IRQ", m->com1_irq);
	for (unsigned i = 0; r == 0 && i < 4; i++)
		r = check_irq("a PIRQ", m->pirq_irqs[i]);
	return r;
}

static void builder_free(struct builder *b)
{
	free(b->t.data);
	free(b->r.data);
	free(b->l.data);
}

int acpi_build(const struct acpi_machine *m, struct acpi_blobs *out)
{
	struct builder b = { .m = m };
	int r = check_machine(m);
	if (r < 0)
		return r;
	loader_allocate(&b.l, ACPI_FILE_TABLES, 64, LOADER_ZONE_HIGH);
	build_facs(&b);
	build_dsdt(&b);
	build_fadt(&b);
	build_madt(&b);
	b.rsdt = build_sdt(&b, "RSDT", 4);
	b.xsdt = build_sdt(&b, "XSDT", 8);
	build_rsdp(&b);
	if (b.t.oom || b.r.oom || b.l.oom) {
		r = vdisk_fail(ENOMEM, "acpi: out of memory building the tables");
		goto free_builder;
	}
	out->file[ACPI_BLOB_RSDP] = (struct acpi_blob){ ACPI_FILE_RSDP, b.r.data, (uint32_t)b.r.len };
	out->file[ACPI_BLOB_TABLES] =
		(struct acpi_blob){ ACPI_FILE_TABLES, b.t.data, (uint32_t)b.t.len };
	out->file[ACPI_BLOB_LOADER] =
		(struct acpi_blob){ ACPI_FILE_LOADER, b.l.data, (uint32_t)b.l.len };
	return 0;

free_builder:
	builder_free(&b);
	return r;
}

void acpi_blobs_free(struct acpi_blobs *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < ACPI_N_BLOBS; i++) {
		free(b->file[i].data);
		b->file[i].data = NULL;
		b->file[i].len = 0;
	}
}

void acpi_machine_pc(struct acpi_machine *am, unsigned cpus, uint64_t low_ram_bytes,
		     uint16_t pm_base, unsigned n_virtio)
{
	memset(am, 0, sizeof(*am));
	am->cpus = cpus;
	am->low_ram_bytes = low_ram_bytes;
	am->pci_hole_start = low_ram_bytes < 0xFEC00000u ? (uint32_t)low_ram_bytes : 0xFEC00000u;
	am->pci_hole_end = 0xFEBFFFFFu;
	am->pm_base = pm_base;
	am->gpe0_port = 0xAFE0;
	am->gpe0_bytes = 4;
	am->sci_irq = 9;
	am->ioapic_addr = 0xFEC00000u;
	am->ioapic_pins = 24;
	am->com1_irq = 4;
	am->pci_slots = 1u << 1;
	for (unsigned i = 0; i < n_virtio && 2 + i < 32; i++)
		am->pci_slots |= 1u << (2 + i);
	memcpy(am->pirq_irqs, (const uint8_t[4]){ 10, 10, 11, 11 }, 4);
	am->irq0_to_gsi2 = false;
}

int acpi_fw_cfg_add(struct fw_cfg *fw, const struct acpi_machine *m)
{
	struct acpi_blobs b = { 0 };
	int r = acpi_build(m, &b);
	for (unsigned i = 0; r == 0 && i < ACPI_N_BLOBS; i++)
		r = fw_cfg_add_file(fw, b.file[i].name, b.file[i].data, b.file[i].len);
	acpi_blobs_free(&b);
	return r;
}
