/* vmm/piix4_pm.h - PIIX4 ACPI power management function (PCI 00:01.3, 8086:7113): the PM
 * I/O block at PMBA (PM1 status/enable/control, 24-bit PM timer) and APM 0xB2/0xB3.
 * Register semantics: vmm-device-model.md section 4.3. */
#ifndef GENSHIFT_PIIX4_PM_H
#define GENSHIFT_PIIX4_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/pci.h"

#define PIIX4_PM_IO_BYTES 64
#define PIIX4_APM_PORTS 2 /* 0xB2 control, 0xB3 status */
/* QEMU's PIIX4 ACPI extensions, which the ACPI tables SeaBIOS builds for itself use
 * (fixed ports, not PMBA-relative): */
#define PIIX4_GPE0_PORT 0xAFE0 /* GPE0_BLK: 2 bytes status (W1C), 2 bytes enable */
#define PIIX4_GPE0_BYTES 4
#define PIIX4_PCIHP_PORT 0xAE00 /* PCI hotplug: up, down, eject, removable, select, index */
#define PIIX4_PCIHP_BYTES 0x18
#define PIIX4_CPUHP_PORT 0xAF00 /* legacy CPU hotplug: bitmap of present CPUs */
#define PIIX4_CPUHP_BYTES 32
#define PIIX4_PM_TIMER_HZ 3579545ull

struct piix4_pm {
	struct pci_func pci; /* first: the bus hands us back this pointer */
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint8_t gpe0[PIIX4_GPE0_BYTES];
	uint8_t apm_status;
	unsigned cpus; /* for the CPU hotplug bitmap */
	/* Monotonic nanoseconds for the PM timer; replaceable for tests. */
	uint64_t (*clock_ns)(void);
	/* Called when the guest asks for soft-off (SLP_EN with SLP_TYP 0). */
	void (*poweroff)(void *opaque);
	void *opaque;
};

/* Power-on state. clock_ns NULL means CLOCK_MONOTONIC. */
void piix4_pm_init(struct piix4_pm *pm, uint64_t (*clock_ns)(void),
		   void (*poweroff)(void *opaque), void *opaque);
/* The PM block's base port while decode is enabled (PMREGMISC bit 0), else 0. */
uint16_t piix4_pm_io_base(const struct piix4_pm *pm);
/* APM control/status at 0xB2/0xB3 (off 0/1). */
void piix4_pm_apm_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);
/* GPE0 block: no event source is emulated, so status stays 0 (what the guest enables is
 * kept). Reading all-ones here made Linux run the PCI/CPU hotplug handlers at random
 * times and "eject" every PCI slot, including the boot disk. */
void piix4_pm_gpe_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);
/* PCI hotplug: nothing inserted, removed or removable; writes (ejects) ignored. */
void piix4_pm_pcihp_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);
/* Legacy CPU hotplug bitmap: bit n set for each of the pm->cpus CPUs. OVMF (generation 2)
 * probes 0xAF00 for QEMU's modern CPU hotplug interface; a non-zero read here tells it there
 * is none, as all-ones would (traced: vmm/README.md). */
void piix4_pm_cpuhp_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);

#endif
