/* vmm/pci.h - PCI configuration mechanism #1 (0xCF8/0xCFC), the i440FX host bridge and the
 * PIIX3 PCI-ISA bridge. IDs and register contents: vmm-device-model.md section 4. */
#ifndef GENSHIFT_PCI_H
#define GENSHIFT_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_CFG_BYTES 256
#define PCI_MAX_FUNCS 16
#define PCI_NUM_BARS 6

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0E
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2C
#define PCI_SUBSYS_ID 0x2E
#define PCI_INTERRUPT_LINE 0x3C
#define PCI_INTERRUPT_PIN 0x3D

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEM 0x2

struct pci_func;

struct pci_func_ops {
	/* Called after the guest changed config bytes [off, off + size) (optional). */
	void (*cfg_written)(struct pci_func *f, unsigned off, unsigned size);
	/* I/O port decode other than BARs (PIIX4's PM block): offset inside the window. */
	bool (*decode_io)(struct pci_func *f, uint16_t port, unsigned *bar, unsigned *off);
	/* Access to an I/O window of this function (BAR number, offset inside it). */
	void (*io)(struct pci_func *f, unsigned bar, unsigned off, unsigned size, uint32_t *val,
		   bool is_write);
};

/* One PCI function on bus 0. Devices embed it and set ops. */
struct pci_func {
	uint8_t dev, fn;
	uint8_t cfg[PCI_CFG_BYTES];
	uint8_t wmask[PCI_CFG_BYTES]; /* bits the guest may change */
	uint32_t bar_io_bytes[PCI_NUM_BARS]; /* size of each I/O BAR, 0 = none */
	const struct pci_func_ops *ops;
};

struct pci_bus {
	uint32_t config_address; /* 0xCF8 */
	struct pci_func *funcs[PCI_MAX_FUNCS];
	unsigned n_funcs;
};

/* Identity and the generic writable bits (command IO/MEM/MASTER/INTx-disable, interrupt
 * line). class_code is base << 16 | sub << 8 | prog. Subsystem 1af4:1100 as QEMU. */
void pci_func_init(struct pci_func *f, unsigned dev, unsigned fn, uint16_t vendor,
		   uint16_t device, uint8_t revision, uint32_t class_code, uint8_t header_type);
/* Give BAR bar an I/O window of size bytes (a power of two >= 4). */
void pci_func_set_bar_io(struct pci_func *f, unsigned bar, uint32_t size);
/* Current base of an I/O BAR, or 0 when unassigned or I/O decode is off. */
uint16_t pci_func_bar_io_base(const struct pci_func *f, unsigned bar);

void pci_bus_init(struct pci_bus *bus);
/* -EBUSY when dev.fn is taken, -ENOSPC when the bus is full. */
int pci_bus_add(struct pci_bus *bus, struct pci_func *f);
/* 0xCF8 (dword only) and 0xCFC-0xCFF, off relative to 0xCF8. A byte access at 0xCF9 is the
 * reset control register and is NOT handled here: returns false so the caller can. */
bool pci_bus_config_pio(struct pci_bus *bus, unsigned off, unsigned size, uint32_t *val,
			bool is_write);
/* Route a port access to the function whose I/O window decodes it. false = nobody. */
bool pci_bus_io(struct pci_bus *bus, uint16_t port, unsigned size, uint32_t *val,
		bool is_write);
/* Direct config access (tests, and firmware-independent reads by the machine). */
uint32_t pci_bus_cfg_read(struct pci_bus *bus, unsigned dev, unsigned fn, unsigned reg,
			  unsigned size);
void pci_bus_cfg_write(struct pci_bus *bus, unsigned dev, unsigned fn, unsigned reg,
		       unsigned size, uint32_t val);

/* 00:00.0 i440FX PMC 8086:1237: PAM (0x59-0x5F) and SMRAM (0x72) store what is written. */
void pci_i440fx_init(struct pci_func *f);
/* 00:01.0 PIIX3 8086:7000, multifunction: PIRQ route registers 0x60-0x63. */
void pci_piix3_init(struct pci_func *f);
/* The ISA IRQ the PIIX3 routes INTx of slot dev, pin 1..4 (INTA..INTD) to, following the
 * i440FX swizzle (link = (pin - 1 + dev - 1) & 3); -1 when that PIRQ is disabled. */
int pci_piix3_route(const struct pci_func *piix3, unsigned dev, unsigned pin);

#endif
