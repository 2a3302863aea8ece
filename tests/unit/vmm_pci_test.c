/* tests/unit/vmm_pci_test.c - PCI config mechanism #1 through its ports: the 0xCF8 probe,
 * absent functions (all-ones), the chipset IDs firmware checks, read-only fields, I/O BAR
 * sizing and decode, PIIX3 INTx routing, and the PIIX4 PM function (0x5B quirk, PM block
 * decode only when enabled, 24-bit PM timer, SLP_EN power-off) and QEMU's PIIX4 ACPI
 * extensions that SeaBIOS's tables use (GPE0, PCI and CPU hotplug registers). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/piix4_pm.h"

struct board {
	struct pci_bus bus;
	struct pci_func host, isa, dev2;
	struct piix4_pm pm;
	unsigned io_calls, last_off, poweroffs;
};

static uint64_t fake_ns;
static uint64_t fake_clock(void)
{
	return fake_ns;
}

static void dev2_io(struct pci_func *f, unsigned bar, unsigned off, unsigned size,
		    uint32_t *val, bool is_write)
{
	struct board *b = (struct board *)((char *)f - offsetof(struct board, dev2));
	(void)bar, (void)size, (void)is_write;
	b->io_calls++;
	b->last_off = off;
	*val = 0x5A;
}

static const struct pci_func_ops dev2_ops = { .io = dev2_io };

static void on_poweroff(void *opaque)
{
	((struct board *)opaque)->poweroffs++;
}

static void setup_board(struct board *b)
{
	memset(b, 0, sizeof(*b));
	pci_bus_init(&b->bus);
	pci_i440fx_init(&b->host);
	pci_piix3_init(&b->isa);
	piix4_pm_init(&b->pm, fake_clock, on_poweroff, b);
	pci_func_init(&b->dev2, 2, 0, 0x1AF4, 0x1001, 0, 0x010000, 0);
	pci_func_set_bar_io(&b->dev2, 0, 0x40);
	b->dev2.ops = &dev2_ops;
	assert_int_equal(pci_bus_add(&b->bus, &b->host), 0);
	assert_int_equal(pci_bus_add(&b->bus, &b->isa), 0);
	assert_int_equal(pci_bus_add(&b->bus, &b->pm.pci), 0);
	assert_int_equal(pci_bus_add(&b->bus, &b->dev2), 0);
}

/* Config access the way firmware does it: address to 0xCF8, data at 0xCFC + (reg & 3). */
static uint32_t cfg_rd(struct board *b, unsigned dev, unsigned fn, unsigned reg, unsigned size)
{
	uint32_t a = 0x80000000u | dev << 11 | fn << 8 | (reg & 0xFC), v = 0;
	assert_true(pci_bus_config_pio(&b->bus, 0, 4, &a, true));
	assert_true(pci_bus_config_pio(&b->bus, 4 + (reg & 3), size, &v, false));
	return v;
}

static void cfg_wr(struct board *b, unsigned dev, unsigned fn, unsigned reg, unsigned size,
		   uint32_t v)
{
	uint32_t a = 0x80000000u | dev << 11 | fn << 8 | (reg & 0xFC);
	assert_true(pci_bus_config_pio(&b->bus, 0, 4, &a, true));
	assert_true(pci_bus_config_pio(&b->bus, 4 + (reg & 3), size, &v, true));
}

static void test_probe_and_ids(void **state)
{
	(void)state;
	struct board b;
	setup_board(&b);
	uint32_t v = 0x80000000u; /* SeaBIOS pci_probe_host */
	pci_bus_config_pio(&b.bus, 0, 4, &v, true);
	v = 0;
	pci_bus_config_pio(&b.bus, 0, 4, &v, false);
	assert_int_equal(v, 0x80000000u);
	assert_int_equal(cfg_rd(&b, 0, 0, 0, 4), 0x12378086);
	assert_int_equal(cfg_rd(&b, 1, 0, 0, 4), 0x70008086);
	assert_int_equal(cfg_rd(&b, 1, 0, 0x0E, 1), 0x80); /* multifunction */
	assert_int_equal(cfg_rd(&b, 1, 3, 0, 4), 0x71138086);
	assert_int_equal(cfg_rd(&b, 1, 3, 0x08, 4), 0x06800003);
	assert_int_equal(cfg_rd(&b, 1, 3, 0x5B, 1), 0x02); /* APMC_EN preset: no SMM wait */
	assert_int_equal(cfg_rd(&b, 0, 0, 0x2C, 4), 0x11001AF4);
	/* Absent device, function, bus: all-ones. */
	assert_int_equal(cfg_rd(&b, 5, 0, 0, 4), 0xFFFFFFFFu);
	assert_int_equal(cfg_rd(&b, 1, 1, 0, 2), 0xFFFFFFFFu);
	uint32_t a = 0x80010000u, d = 0;
	pci_bus_config_pio(&b.bus, 0, 4, &a, true);
	pci_bus_config_pio(&b.bus, 4, 4, &d, false);
	assert_int_equal(d, 0xFFFFFFFFu);
	/* 0xCF9 byte is not ours (reset control); the caller handles it. */
	assert_false(pci_bus_config_pio(&b.bus, 1, 1, &d, true));
	assert_int_equal(pci_bus_add(&b.bus, &b.dev2), -EBUSY);
}

static void test_read_only_fields(void **state)
{
	(void)state;
	struct board b;
	setup_board(&b);
	cfg_wr(&b, 0, 0, 0, 4, 0xDEADBEEF);
	assert_int_equal(cfg_rd(&b, 0, 0, 0, 4), 0x12378086);
	cfg_wr(&b, 1, 3, 0x58, 4, 0);
	assert_int_equal(cfg_rd(&b, 1, 3, 0x5B, 1), 0x02);
	cfg_wr(&b, 0, 0, 0x59, 1, 0x33); /* PAM: stored */
	assert_int_equal(cfg_rd(&b, 0, 0, 0x59, 1), 0x33);
	cfg_wr(&b, 2, 0, 0x3C, 1, 10); /* interrupt line RW, pin RO */
	cfg_wr(&b, 2, 0, 0x3D, 1, 4);
	assert_int_equal(cfg_rd(&b, 2, 0, 0x3C, 2), 10);
	cfg_wr(&b, 2, 0, 0x04, 2, 0xFFFF);
	assert_int_equal(cfg_rd(&b, 2, 0, 0x04, 2), 0x0407);
}

static void test_bar_sizing_and_decode(void **state)
{
	(void)state;
	struct board b;
	setup_board(&b);
	uint32_t v = 0;
	assert_int_equal(cfg_rd(&b, 2, 0, 0x10, 4), 0x1); /* I/O BAR, unassigned */
	cfg_wr(&b, 2, 0, 0x10, 4, 0xFFFFFFFFu);
	assert_int_equal(cfg_rd(&b, 2, 0, 0x10, 4), 0xFFFFFFC1u); /* 64 bytes of I/O */
	assert_int_equal(cfg_rd(&b, 2, 0, 0x14, 4), 0);          /* no BAR1 */
	cfg_wr(&b, 2, 0, 0x10, 4, 0xC040);
	assert_int_equal(cfg_rd(&b, 2, 0, 0x10, 4), 0xC041);
	assert_false(pci_bus_io(&b.bus, 0xC050, 1, &v, false)); /* IO decode still off */
	cfg_wr(&b, 2, 0, 0x04, 2, 0x0001);
	assert_true(pci_bus_io(&b.bus, 0xC050, 1, &v, false));
	assert_int_equal(b.last_off, 0x10);
	assert_int_equal(v, 0x5A);
	assert_false(pci_bus_io(&b.bus, 0xC080, 1, &v, false)); /* just past the window */
	assert_false(pci_bus_io(&b.bus, 0xC03F, 1, &v, false));
	assert_int_equal(b.io_calls, 1);
}

static void test_piix3_routing(void **state)
{
	(void)state;
	struct board b;
	setup_board(&b);
	assert_int_equal(pci_piix3_route(&b.isa, 2, 1), -1); /* reset: PIRQs disabled */
	cfg_wr(&b, 1, 0, 0x60, 4, 0x0B0B0A0A);              /* SeaBIOS: 10, 10, 11, 11 */
	assert_int_equal(pci_piix3_route(&b.isa, 2, 1), 10); /* slot 2 INTA -> PIRQB */
	assert_int_equal(pci_piix3_route(&b.isa, 3, 1), 11);
	assert_int_equal(pci_piix3_route(&b.isa, 5, 1), 10);
	assert_int_equal(pci_piix3_route(&b.isa, 2, 0), -1);
}

static void test_pm_block(void **state)
{
	(void)state;
	struct board b;
	setup_board(&b);
	uint32_t v = 0;
	cfg_wr(&b, 1, 3, 0x40, 4, 0xB001); /* PMBA; decode still off (PMREGMISC = 0) */
	assert_int_equal(cfg_rd(&b, 1, 3, 0x40, 4), 0xB001);
	assert_int_equal(piix4_pm_io_base(&b.pm), 0);
	assert_false(pci_bus_io(&b.bus, 0xB008, 4, &v, false));
	cfg_wr(&b, 1, 3, 0x80, 1, 0x01);
	assert_int_equal(piix4_pm_io_base(&b.pm), 0xB000);
	fake_ns = 1000000000ull; /* 1 s = 3579545 ticks */
	assert_true(pci_bus_io(&b.bus, 0xB008, 4, &v, false));
	assert_int_equal(v, 3579545u & 0xFFFFFF);
	fake_ns = 5000000000ull; /* wraps at 24 bits */
	assert_true(pci_bus_io(&b.bus, 0xB008, 4, &v, false));
	assert_int_equal(v, (5ull * 3579545u) & 0xFFFFFF);
	v = 0x0001; /* SCI_EN */
	assert_true(pci_bus_io(&b.bus, 0xB004, 2, &v, true));
	assert_true(pci_bus_io(&b.bus, 0xB004, 2, &v, false));
	assert_int_equal(v, 1);
	assert_int_equal(b.poweroffs, 0);
	v = 0x2000 | 1 << 10; /* SLP_TYP 1 (S3): not supported, ignored */
	pci_bus_io(&b.bus, 0xB004, 2, &v, true);
	assert_int_equal(b.poweroffs, 0);
	v = 0x2000; /* SeaBIOS apm_shutdown / Linux _S5 = 0 */
	pci_bus_io(&b.bus, 0xB004, 2, &v, true);
	assert_int_equal(b.poweroffs, 1);
	v = 0xF0; /* APM disable clears SCI_EN */
	piix4_pm_apm_pio(&b.pm, 0, 1, &v, true);
	pci_bus_io(&b.bus, 0xB004, 2, &v, false);
	assert_int_equal(v & 1, 0);
}

static void test_acpi_extensions(void **state)
{
	(void)state;
	struct board b;
	setup_board(&b);
	b.pm.cpus = 10;
	uint32_t v = 0xFFFFFFFF;
	/* GPE0: status reads 0 (no event sources), enable is kept, status is W1C. */
	piix4_pm_gpe_pio(&b.pm, 0, 4, &v, false);
	assert_int_equal(v, 0);
	v = 0xFFFF0000; /* enable all, write-1-to-clear all status */
	piix4_pm_gpe_pio(&b.pm, 0, 4, &v, true);
	piix4_pm_gpe_pio(&b.pm, 0, 4, &v, false);
	assert_int_equal(v, 0xFFFF0000);
	b.pm.gpe0[0] = 0x06;
	v = 0x02;
	piix4_pm_gpe_pio(&b.pm, 0, 1, &v, true);
	piix4_pm_gpe_pio(&b.pm, 0, 1, &v, false);
	assert_int_equal(v, 0x04);
	/* PCI hotplug: nothing up, down or removable, whatever the guest ejects. */
	for (unsigned off = 0; off < PIIX4_PCIHP_BYTES; off += 4) {
		v = 0xFFFFFFFF;
		piix4_pm_pcihp_pio(&b.pm, off, 4, &v, true);
		piix4_pm_pcihp_pio(&b.pm, off, 4, &v, false);
		assert_int_equal(v, 0);
	}
	/* CPU bitmap: exactly the configured CPUs. */
	piix4_pm_cpuhp_pio(&b.pm, 0, 4, &v, false);
	assert_int_equal(v, 0x3FF);
	piix4_pm_cpuhp_pio(&b.pm, 1, 1, &v, false);
	assert_int_equal(v, 0x03);
	piix4_pm_cpuhp_pio(&b.pm, 31, 1, &v, false);
	assert_int_equal(v, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_and_ids),
		cmocka_unit_test(test_read_only_fields),
		cmocka_unit_test(test_bar_sizing_and_decode),
		cmocka_unit_test(test_piix3_routing),
		cmocka_unit_test(test_pm_block),
		cmocka_unit_test(test_acpi_extensions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
