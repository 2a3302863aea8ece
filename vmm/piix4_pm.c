/* vmm/piix4_pm.c - PIIX4 PM: config registers, PM1 block, PM timer, soft power-off. */
#include <string.h>
#include <time.h>

#include "vmm/piix4_pm.h"
#include "vmm/vmm-int.h"

#define CFG_PMBA 0x40
#define CFG_DEVACTB 0x58
#define CFG_PMREGMISC 0x80
#define CFG_SMBBA 0x90
#define CFG_SMBHSTCFG 0xD2

#define PM1_STS 0x00
#define PM1_EN 0x02
#define PM1_CNT 0x04
#define PM_TMR 0x08

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_EN 0x2000
#define PM1_CNT_SLP_TYP(v) (((v) >> 10) & 7)

#define APM_ENABLE 0xF1
#define APM_DISABLE 0xF0

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint16_t piix4_pm_io_base(const struct piix4_pm *pm)
{
	if (!(pm->pci.cfg[CFG_PMREGMISC] & 1))
		return 0;
	return (uint16_t)(get_le32(pm->pci.cfg + CFG_PMBA) & 0xFFC0);
}

static bool decode_io(struct pci_func *f, uint16_t port, unsigned *bar, unsigned *off)
{
	uint16_t base = piix4_pm_io_base((struct piix4_pm *)f);
	if (!base || port < base || port - base >= PIIX4_PM_IO_BYTES)
		return false;
	*bar = 0;
	*off = port - base;
	return true;
}

/* 24 bits at 3.579545 MHz; firmware handles the wrap (TMR_VAL_EXT is 0). */
static uint32_t pm_timer(const struct piix4_pm *pm)
{
	uint64_t ns = pm->clock_ns();
	unsigned __int128 ticks = (unsigned __int128)ns * PIIX4_PM_TIMER_HZ / 1000000000u;
	return (uint32_t)ticks & 0xFFFFFF;
}

static void write_cnt(struct piix4_pm *pm, uint16_t v)
{
	pm->pm1_cnt = v & (uint16_t)~PM1_CNT_SLP_EN; /* SLP_EN is write-only */
	/* SLP_TYP 0 is soft-off on QEMU's PIIX4 (SeaBIOS DSDT _S5 and OVMF both use it);
	 * other sleep types (S3) are not supported and ignored. */
	if ((v & PM1_CNT_SLP_EN) && PM1_CNT_SLP_TYP(v) == 0 && pm->poweroff)
		pm->poweroff(pm->opaque);
}

static void pm_io(struct pci_func *f, unsigned bar, unsigned off, unsigned size,
		  uint32_t *val, bool is_write)
{
	struct piix4_pm *pm = (struct piix4_pm *)f;
	(void)bar;
	if (!is_write) {
		switch (off) {
		case PM1_STS: *val = pm->pm1_sts; break;
		case PM1_EN: *val = pm->pm1_en; break;
		case PM1_CNT: *val = pm->pm1_cnt; break;
		case PM_TMR: *val = pm_timer(pm); break;
		default: *val = 0; break;
		}
		if (size == 1)
			*val &= 0xFF;
		return;
	}
	switch (off) {
	case PM1_STS: pm->pm1_sts &= (uint16_t)~*val; break; /* write 1 to clear */
	case PM1_EN: pm->pm1_en = (uint16_t)*val; break;
	case PM1_CNT: write_cnt(pm, (uint16_t)*val); break;
	case PM1_CNT + 1: write_cnt(pm, (uint16_t)((pm->pm1_cnt & 0xFF) | (*val & 0xFF) << 8)); break;
	default: break;
	}
}

static const struct pci_func_ops piix4_pm_ops = {
	.decode_io = decode_io,
	.io = pm_io,
};

void piix4_pm_init(struct piix4_pm *pm, uint64_t (*clock_ns)(void),
		   void (*poweroff)(void *opaque), void *opaque)
{
	memset(pm, 0, sizeof(*pm));
	struct pci_func *f = &pm->pci;
	pci_func_init(f, 1, 3, 0x8086, 0x7113, 0x03, 0x068000, 0x00);
	f->ops = &piix4_pm_ops;
	put_le16(f->cfg + PCI_STATUS, 0x0280);
	f->cfg[PCI_INTERRUPT_PIN] = 0x01;
	f->cfg[PCI_INTERRUPT_LINE] = 9; /* SCI */
	put_le32(f->cfg + CFG_PMBA, 0x1);
	put_le32(f->wmask + CFG_PMBA, 0xFFC0);
	/* APMC_EN preset: SeaBIOS then skips its SMM setup, which would otherwise wait on 0xB3
	 * forever (we have no SMM). Read-only. */
	f->cfg[CFG_DEVACTB + 3] = 0x02;
	/* PMREGMISC stays 0 at reset so OVMF programs PMBA itself (section 4.3). */
	f->wmask[CFG_PMREGMISC] = 0x01;
	put_le32(f->wmask + CFG_SMBBA, 0xFFF0);
	f->wmask[CFG_SMBHSTCFG] = 0xFF;
	pm->clock_ns = clock_ns ? clock_ns : monotonic_ns;
	pm->poweroff = poweroff;
	pm->opaque = opaque;
}

void piix4_pm_apm_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct piix4_pm *pm = dev;
	(void)size;
	if (!is_write) {
		*val = off == 1 ? pm->apm_status : 0;
		return;
	}
	if (off == 1) {
		pm->apm_status = (uint8_t)*val;
	} else if ((*val & 0xFF) == APM_ENABLE) {
		pm->pm1_cnt |= PM1_CNT_SCI_EN;
	} else if ((*val & 0xFF) == APM_DISABLE) {
		pm->pm1_cnt &= (uint16_t)~PM1_CNT_SCI_EN;
	}
}

void piix4_pm_gpe_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct piix4_pm *pm = dev;
	uint32_t v = 0;
	for (unsigned i = 0; i < size && off + i < PIIX4_GPE0_BYTES; i++) {
		unsigned r = off + i;
		uint8_t b = (uint8_t)(*val >> (8 * i));
		if (!is_write)
			v |= (uint32_t)pm->gpe0[r] << (8 * i);
		else if (r < PIIX4_GPE0_BYTES / 2)
			pm->gpe0[r] &= (uint8_t)~b; /* status: write 1 to clear */
		else
			pm->gpe0[r] = b;
	}
	if (!is_write)
		*val = v;
}

void piix4_pm_pcihp_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	(void)dev, (void)off, (void)size;
	if (!is_write)
		*val = 0;
}

void piix4_pm_cpuhp_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct piix4_pm *pm = dev;
	if (is_write)
		return;
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		unsigned first = 8 * (off + i);
		unsigned n = pm->cpus > first ? pm->cpus - first : 0;
		uint8_t b = n >= 8 ? 0xFF : (uint8_t)((1u << n) - 1);
		v |= (uint32_t)b << (8 * i);
	}
	*val = v;
}
