/* vmm/pci.c - PCI configuration mechanism #1 on one bus, generic config-space rules (BAR
 * sizing, write masks, all-ones for absent functions), i440FX and PIIX3. */
#include <errno.h>
#include <string.h>

#include "vmm/pci.h"
#include "vmm/vmm-int.h"

#define CONFIG_ADDRESS_ENABLE 0x80000000u
#define CONFIG_ADDRESS_MASK 0x80FFFFFCu /* enable, bus, dev, fn, dword register */
#define PORT_DATA 4                     /* 0xCFC relative to 0xCF8 */

void pci_func_init(struct pci_func *f, unsigned dev, unsigned fn, uint16_t vendor,
		   uint16_t device, uint8_t revision, uint32_t class_code, uint8_t header_type)
{
	memset(f, 0, sizeof(*f));
	f->dev = (uint8_t)dev;
	f->fn = (uint8_t)fn;
	put_le16(f->cfg + PCI_VENDOR_ID, vendor);
	put_le16(f->cfg + PCI_DEVICE_ID, device);
	f->cfg[PCI_REVISION] = revision;
	f->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	f->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	f->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	f->cfg[PCI_HEADER_TYPE] = header_type;
	put_le16(f->cfg + PCI_SUBSYS_VENDOR, 0x1AF4);
	put_le16(f->cfg + PCI_SUBSYS_ID, 0x1100);
	/* Command: IO, MEM, MASTER (bits 0-2) and INTx disable (bit 10). */
	f->wmask[PCI_COMMAND] = 0x07;
	f->wmask[PCI_COMMAND + 1] = 0x04;
	f->wmask[PCI_INTERRUPT_LINE] = 0xFF;
}

void pci_func_set_bar_io(struct pci_func *f, unsigned bar, uint32_t size)
{
	unsigned reg = PCI_BAR0 + 4 * bar;
	uint32_t mask = ~(size - 1) & 0xFFFFFFFCu;
	f->bar_io_bytes[bar] = size;
	put_le32(f->cfg + reg, 0x1); /* bit 0: I/O space indicator, read-only */
	put_le32(f->wmask + reg, mask);
}

uint16_t pci_func_bar_io_base(const struct pci_func *f, unsigned bar)
{
	if (!(f->cfg[PCI_COMMAND] & PCI_COMMAND_IO) || !f->bar_io_bytes[bar])
		return 0;
	uint32_t v = get_le32(f->cfg + PCI_BAR0 + 4 * bar) & 0xFFFFFFFCu;
	/* An unassigned or sizing-pattern BAR (beyond the 64 KiB port space) decodes nothing. */
	return v > 0xFFFF ? 0 : (uint16_t)v;
}

void pci_bus_init(struct pci_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

int pci_bus_add(struct pci_bus *bus, struct pci_func *f)
{
	for (unsigned i = 0; i < bus->n_funcs; i++)
		if (bus->funcs[i]->dev == f->dev && bus->funcs[i]->fn == f->fn)
			return vdisk_fail(EBUSY, "PCI 00:%02x.%u is already taken", f->dev, f->fn);
	if (bus->n_funcs == PCI_MAX_FUNCS)
		return vdisk_fail(ENOSPC, "PCI bus full (%d functions)", PCI_MAX_FUNCS);
	bus->funcs[bus->n_funcs++] = f;
	return 0;
}

static struct pci_func *lookup(struct pci_bus *bus, unsigned busnr, unsigned dev, unsigned fn)
{
	if (busnr != 0)
		return NULL;
	for (unsigned i = 0; i < bus->n_funcs; i++)
		if (bus->funcs[i]->dev == dev && bus->funcs[i]->fn == fn)
			return bus->funcs[i];
	return NULL;
}

static uint32_t cfg_read(struct pci_func *f, unsigned reg, unsigned size)
{
	if (!f)
		return 0xFFFFFFFFu; /* master abort: vendor 0xFFFF = no device */
	uint32_t v = 0;
	for (unsigned i = 0; i < size && reg + i < PCI_CFG_BYTES; i++)
		v |= (uint32_t)f->cfg[reg + i] << (8 * i);
	return v;
}

static void cfg_write(struct pci_func *f, unsigned reg, unsigned size, uint32_t val)
{
	if (!f)
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < size && reg + i < PCI_CFG_BYTES; i++, n++) {
		uint8_t m = f->wmask[reg + i];
		uint8_t b = (uint8_t)(val >> (8 * i));
		f->cfg[reg + i] = (uint8_t)((f->cfg[reg + i] & ~m) | (b & m));
	}
	if (n && f->ops && f->ops->cfg_written)
		f->ops->cfg_written(f, reg, n);
}

uint32_t pci_bus_cfg_read(struct pci_bus *bus, unsigned dev, unsigned fn, unsigned reg,
			  unsigned size)
{
	return cfg_read(lookup(bus, 0, dev, fn), reg, size);
}

void pci_bus_cfg_write(struct pci_bus *bus, unsigned dev, unsigned fn, unsigned reg,
		       unsigned size, uint32_t val)
{
	cfg_write(lookup(bus, 0, dev, fn), reg, size, val);
}

bool pci_bus_config_pio(struct pci_bus *bus, unsigned off, unsigned size, uint32_t *val,
			bool is_write)
{
	if (off == 0 && size == 4) {
		if (is_write)
			bus->config_address = *val & CONFIG_ADDRESS_MASK;
		else
			*val = bus->config_address;
		return true;
	}
	if (off < PORT_DATA)
		return false; /* 0xCF9 byte = reset control; other 0xCF8-0xCFB accesses: unassigned */
	uint32_t a = bus->config_address;
	unsigned reg = (a & 0xFC) + (off - PORT_DATA);
	struct pci_func *f = NULL;
	if (a & CONFIG_ADDRESS_ENABLE)
		f = lookup(bus, (a >> 16) & 0xFF, (a >> 11) & 0x1F, (a >> 8) & 0x7);
	if (is_write) {
		if (f)
			cfg_write(f, reg, size, *val);
	} else {
		*val = f ? cfg_read(f, reg, size) : 0xFFFFFFFFu;
	}
	return true;
}

static bool decode_bars(struct pci_func *f, uint16_t port, unsigned *bar, unsigned *off)
{
	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		uint16_t base = pci_func_bar_io_base(f, b);
		if (base && port >= base && (uint32_t)(port - base) < f->bar_io_bytes[b]) {
			*bar = b;
			*off = port - base;
			return true;
		}
	}
	return false;
}

bool pci_bus_io(struct pci_bus *bus, uint16_t port, unsigned size, uint32_t *val,
		bool is_write)
{
	for (unsigned i = 0; i < bus->n_funcs; i++) {
		struct pci_func *f = bus->funcs[i];
		unsigned bar, off;
		if (!f->ops || !f->ops->io)
			continue;
		bool hit = f->ops->decode_io ? f->ops->decode_io(f, port, &bar, &off)
					     : decode_bars(f, port, &bar, &off);
		if (hit) {
			f->ops->io(f, bar, off, size, val, is_write);
			return true;
		}
	}
	return false;
}

void pci_i440fx_init(struct pci_func *f)
{
	pci_func_init(f, 0, 0, 0x8086, 0x1237, 0x02, 0x060000, 0x00);
	/* PAM and SMRAM: stored without effect, 0xC0000-0xFFFFF stays plain RAM (section 4.4). */
	memset(f->wmask + 0x59, 0xFF, 7);
	f->wmask[0x72] = 0xFF;
}

void pci_piix3_init(struct pci_func *f)
{
	pci_func_init(f, 1, 0, 0x8086, 0x7000, 0x00, 0x060100, 0x80);
	/* PIRQA-D route control, reset value 0x80 (disabled) as on real PIIX3. */
	memset(f->cfg + 0x60, 0x80, 4);
	memset(f->wmask + 0x60, 0x8F, 4);
}

int pci_piix3_route(const struct pci_func *piix3, unsigned dev, unsigned pin)
{
	if (pin < 1 || pin > 4 || dev < 1)
		return -1;
	uint8_t r = piix3->cfg[0x60 + ((pin - 1 + dev - 1) & 3)];
	if ((r & 0x80) || (r & 0x0F) < 3)
		return -1;
	return r & 0x0F;
}
