/* vmm/acpi.h - ACPI tables for the i440FX/PIIX4 board, handed to the firmware through
 * QEMU's fw_cfg linker/loader (`etc/table-loader`, vmm-device-model.md section 2.3).
 *
 * acpi_build() returns the three fw_cfg files QEMU uses: `etc/acpi/tables` (FACS, DSDT,
 * FADT, MADT, RSDT, XSDT, in that order: FACS first keeps it 64-byte aligned),
 * `etc/acpi/rsdp` (RSDP revision 2) and `etc/table-loader` (ALLOCATE, ADD_POINTER and
 * ADD_CHECKSUM commands, in the order QEMU's acpi-build.c emits them). Every pointer in
 * the blobs holds the target's offset inside its file and every checksum field holds 0:
 * the firmware adds the allocation addresses and computes the checksums (OVMF's
 * QemuFwCfgAcpi.c stores -sum into the field, so a precomputed value would come out wrong).
 * Table layouts: ACPI 6.4 chapter 5.2; AML: chapter 20; resource descriptors: 6.4.
 */
#ifndef GENSHIFT_VMM_ACPI_H
#define GENSHIFT_VMM_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/fw_cfg.h"

#define ACPI_MAX_CPUS 255 /* xAPIC IDs are 8 bits and 0xFF is the broadcast ID */
#define ACPI_FILE_RSDP "etc/acpi/rsdp"
#define ACPI_FILE_TABLES "etc/acpi/tables"
#define ACPI_FILE_LOADER "etc/table-loader"

/* What the tables describe. acpi_machine_pc() fills in this board's constants. */
struct acpi_machine {
	unsigned cpus;           /* 1..ACPI_MAX_CPUS; CPU i has APIC ID i and ACPI UID i */
	uint64_t low_ram_bytes;  /* RAM from address 0; the PCI hole may not overlap it */
	uint32_t pci_hole_start; /* 32-bit PCI MMIO window, first and last byte */
	uint32_t pci_hole_end;
	uint16_t pm_base;        /* PMBA as the firmware programs it: PM1a_EVT +0, CNT +4, TMR +8 */
	uint16_t gpe0_port;      /* GPE0_BLK (QEMU's 0xAFE0), 0 = none */
	uint8_t gpe0_bytes;
	uint8_t sci_irq;         /* PIIX4 SCI, ISA IRQ (9) */
	uint32_t ioapic_addr;
	uint8_t ioapic_pins;     /* GSIs served by the IOAPIC, from 0 */
	uint8_t com1_irq;
	uint32_t pci_slots;      /* bit n: a function on slot n raises INTx (slot 0 never does) */
	/* ISA IRQ behind PIRQA..D: what SeaBIOS and OVMF write into PIIX3 0x60-0x63 and what
	 * pci_piix3_route() then asserts. The _PRT names these GSIs directly. */
	uint8_t pirq_irqs[4];
	/* MADT override IRQ0 -> GSI2 (QEMU's own KVM routing). false for KVM's default routing,
	 * where the PIT's IRQ0 arrives on IOAPIC pin 0 (section 9.2). */
	bool irq0_to_gsi2;
};

struct acpi_blob {
	const char *name; /* one of ACPI_FILE_* */
	uint8_t *data;    /* owned, freed by acpi_blobs_free() */
	uint32_t len;
};

enum { ACPI_BLOB_RSDP, ACPI_BLOB_TABLES, ACPI_BLOB_LOADER, ACPI_N_BLOBS };

struct acpi_blobs {
	struct acpi_blob file[ACPI_N_BLOBS];
};

/* This board (machine.c): IOAPIC 0xFEC00000 with 24 pins, SCI 9, COM1 IRQ 4, GPE0 at
 * 0xAFE0, PIRQs 10/10/11/11, PCI hole from the end of low RAM to 0xFEBFFFFF, KVM's default
 * IRQ0 routing; slot 1 (PIIX4 PM's SCI pin) and virtio slots 2 .. 2 + n_virtio - 1. */
void acpi_machine_pc(struct acpi_machine *am, unsigned cpus, uint64_t low_ram_bytes,
		     uint16_t pm_base, unsigned n_virtio);
/* Build the three files for m. -EINVAL (with vdisk_errmsg() naming the field) when m is
 * out of range, -ENOMEM. *out is written only on success. */
int acpi_build(const struct acpi_machine *m, struct acpi_blobs *out);
/* Frees the data of every file; b may be NULL or zeroed. */
void acpi_blobs_free(struct acpi_blobs *b);
/* acpi_build() and fw_cfg_add_file() of the three files: the one call a board makes. */
int acpi_fw_cfg_add(struct fw_cfg *fw, const struct acpi_machine *m);

#endif
