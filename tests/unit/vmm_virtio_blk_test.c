/* tests/unit/vmm_virtio_blk_test.c - legacy virtio-blk over a raw vdisk: the register file
 * through its I/O BAR, reads/writes/flush landing in the image, and hostile rings
 * (addresses outside RAM, descriptor loops, oversized lengths, indices past the queue,
 * runaway avail index, indirect and wrongly-directed descriptors): each gives a clean
 * error status or a device reset request, never a crash or a partial write. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx/vdisk.h"
#include "vmm/virtio_blk.h"

#define RAM_BYTES (1u << 20)
#define DISK_BYTES (64u * 1024)
#define IOBASE 0xC000
#define RING_GPA 0x10000u /* PFN 0x10 */
#define QN VIRTIO_BLK_QUEUE_SIZE
#define AVAIL (RING_GPA + QN * 16)
#define USED (RING_GPA + 0x2000) /* 4096-aligned after desc (4096) + avail (518) */

static uint8_t *ram;
static struct vmm_mem mem;

struct ctx {
	char path[256];
	struct vdisk *disk;
	struct pci_bus bus;
	struct pci_func piix3;
	struct virtio_blk vb;
	int irq_level, irq_gsi;
	uint16_t avail_idx;
};

static void on_irq(void *opaque, unsigned gsi, int level)
{
	struct ctx *c = opaque;
	c->irq_gsi = (int)gsi;
	c->irq_level = level;
}

static uint32_t reg_rd(struct ctx *c, unsigned off, unsigned size)
{
	uint32_t v = 0;
	assert_true(pci_bus_io(&c->bus, (uint16_t)(IOBASE + off), size, &v, false));
	return v;
}

static void reg_wr(struct ctx *c, unsigned off, unsigned size, uint32_t v)
{
	assert_true(pci_bus_io(&c->bus, (uint16_t)(IOBASE + off), size, &v, true));
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	ram = calloc(1, RAM_BYTES);
	if (!c || !ram)
		return -1;
	mem = (struct vmm_mem){ ram, RAM_BYTES, NULL, 0 };
	const char *t = getenv("TMPDIR");
	snprintf(c->path, sizeof(c->path), "%s/vmm_virtio_blk_test.%d.raw", t ? t : "/tmp",
		 (int)getpid());
	unlink(c->path);
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_RAW, .size_bytes = DISK_BYTES };
	if (vdisk_create(c->path, &o, &c->disk) < 0)
		return -1;
	uint8_t sector[512];
	for (unsigned s = 0; s < DISK_BYTES / 512; s++) {
		memset(sector, (int)(s & 0xFF), sizeof(sector));
		if (vdisk_write(c->disk, s * 512ull, sector, sizeof(sector)) < 0)
			return -1;
	}
	pci_bus_init(&c->bus);
	pci_piix3_init(&c->piix3);
	c->piix3.cfg[0x61] = 10; /* PIRQB -> IRQ 10, as SeaBIOS programs it */
	struct vmm_irq irq = { on_irq, c };
	virtio_blk_init(&c->vb, 2, c->disk, false, &mem, &irq, &c->piix3);
	pci_bus_add(&c->bus, &c->piix3);
	pci_bus_add(&c->bus, &c->vb.pci);
	pci_bus_cfg_write(&c->bus, 2, 0, 0x10, 4, IOBASE);
	pci_bus_cfg_write(&c->bus, 2, 0, 0x04, 2, 0x0005);
	reg_wr(c, 0x12, 1, 0x07); /* ACKNOWLEDGE | DRIVER | DRIVER_OK */
	reg_wr(c, 0x08, 4, RING_GPA >> 12);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	vdisk_close(c->disk);
	unlink(c->path);
	free(c);
	free(ram);
	return 0;
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = ram + RING_GPA + 16 * i;
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

static void header(uint32_t gpa, uint32_t type, uint64_t sector)
{
	put_le32(ram + gpa, type);
	put_le32(ram + gpa + 4, 0);
	put_le64(ram + gpa + 8, sector);
}

/* Publish head and notify; returns the used element's length. */
static uint32_t submit(struct ctx *c, uint16_t head)
{
	put_le16(ram + AVAIL + 4 + 2 * (c->avail_idx % QN), head);
	c->avail_idx++;
	put_le16(ram + AVAIL + 2, c->avail_idx);
	uint16_t before = get_le16(ram + USED + 2);
	reg_wr(c, 0x10, 2, 0);
	assert_int_equal(get_le16(ram + USED + 2), (uint16_t)(before + 1));
	uint8_t *e = ram + USED + 4 + 8 * (before % QN);
	assert_int_equal(get_le32(e), head);
	return get_le32(e + 4);
}

/* header at 0x1000, data at 0x2000 (len), status at 0x3000 */
static void three_desc_request(uint32_t type, uint64_t sector, uint64_t data_gpa,
			       uint32_t len, bool data_device_writes)
{
	header(0x1000, type, sector);
	desc(0, 0x1000, 16, 1, 1);
	desc(1, data_gpa, len, (uint16_t)(1 | (data_device_writes ? 2 : 0)), 2);
	desc(2, 0x3000, 1, 2, 0);
	ram[0x3000] = 0xAA;
}

static void test_registers(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(pci_bus_cfg_read(&c->bus, 2, 0, 0, 4), 0x10011AF4);
	assert_int_equal(pci_bus_cfg_read(&c->bus, 2, 0, 0x2E, 2), 2); /* subsystem: block */
	assert_int_equal(reg_rd(c, 0x0C, 2), QN);
	assert_int_equal(reg_rd(c, 0x08, 4), RING_GPA >> 12);
	assert_int_equal(reg_rd(c, 0x14, 4), DISK_BYTES / 512); /* capacity, low half */
	assert_int_equal(reg_rd(c, 0x18, 4), 0);
	assert_int_equal(reg_rd(c, 0x00, 4) & (1u << 9), 1u << 9); /* FLUSH offered */
	reg_wr(c, 0x0E, 2, 1); /* queue 1 does not exist */
	assert_int_equal(reg_rd(c, 0x0C, 2), 0);
	reg_wr(c, 0x0E, 2, 0);
}

static void test_read_irq(void **state)
{
	struct ctx *c = *state;
	three_desc_request(0, 3, 0x2000, 1024, true);
	assert_int_equal(submit(c, 0), 1025);
	assert_int_equal(ram[0x3000], 0);
	assert_int_equal(ram[0x2000], 3);
	assert_int_equal(ram[0x2000 + 1023], 4);
	assert_int_equal(c->irq_gsi, 10);
	assert_int_equal(c->irq_level, 1);
	assert_int_equal(reg_rd(c, 0x13, 1), 1); /* ISR read acknowledges */
	assert_int_equal(c->irq_level, 0);
	assert_int_equal(reg_rd(c, 0x13, 1), 0);
	assert_int_equal(c->vb.stats.reads, 1);
}

static void test_write_flush(void **state)
{
	struct ctx *c = *state;
	memset(ram + 0x2000, 0x77, 512);
	three_desc_request(1, 5, 0x2000, 512, false);
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 0);
	header(0x1000, 4, 0);
	desc(0, 0x1000, 16, 1, 2);
	ram[0x3000] = 0xAA;
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 0);
	uint8_t b[512];
	assert_int_equal(vdisk_read(c->disk, 5 * 512, b, sizeof(b)), 0);
	assert_int_equal(b[0], 0x77);
	assert_int_equal(b[511], 0x77);
	assert_int_equal(c->vb.stats.flushes, 1);
}

static void test_buffer_outside_ram(void **state)
{
	struct ctx *c = *state;
	/* Write request whose second data buffer lies past RAM: nothing is written at all. */
	memset(ram + 0x2000, 0x99, 512);
	header(0x1000, 1, 1);
	desc(0, 0x1000, 16, 1, 1);
	desc(1, 0x2000, 512, 1, 3);
	desc(3, RAM_BYTES - 256, 512, 1, 2);
	desc(2, 0x3000, 1, 2, 0);
	ram[0x3000] = 0xAA;
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 1); /* IOERR */
	uint8_t b[1];
	assert_int_equal(vdisk_read(c->disk, 512, b, 1), 0);
	assert_int_equal(b[0], 1); /* sector 1 unchanged */
	/* Read into a buffer at a 64-bit address far above RAM. */
	three_desc_request(0, 0, 0xFFFFFFFFFFFFF000ull, 512, true);
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 1);
	/* Header outside RAM: the chain cannot be answered, the buffer comes back empty. */
	desc(0, 0x7FFFFFFF000ull, 16, 1, 1);
	assert_int_equal(submit(c, 0), 0);
	assert_int_equal(c->vb.stats.bad_chains, 1);
}

static void test_oversized(void **state)
{
	struct ctx *c = *state;
	three_desc_request(0, 0, 0x2000, 0xFFFFFFFF, true); /* 4 GiB into 1 MiB of RAM */
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 1);
	three_desc_request(0, DISK_BYTES / 512 - 1, 0x2000, 1024, true); /* past the disk */
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 1);
	three_desc_request(1, 0x7FFFFFFFFFFFFFFFull, 0x2000, 512, false); /* sector overflow */
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 1);
	assert_int_equal(c->vb.stats.io_errors, 3);
	three_desc_request(0x1234, 0, 0x2000, 512, true); /* unknown type */
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 2); /* UNSUPP */
}

static void test_chain_loops_and_indices(void **state)
{
	struct ctx *c = *state;
	three_desc_request(0, 0, 0x2000, 512, true);
	desc(2, 0x3000, 1, 2 | 1, 1); /* status points back to data: a loop */
	assert_int_equal(submit(c, 0), 0);
	assert_int_equal(ram[0x3000], 0xAA);
	desc(2, 0x3000, 1, 2 | 1, 2); /* self-loop */
	assert_int_equal(submit(c, 2), 0);
	desc(2, 0x3000, 1, 2 | 1, 999); /* next past the queue */
	assert_int_equal(submit(c, 0), 0);
	assert_int_equal(submit(c, 4000), 0); /* head past the queue */
	desc(2, 0x3000, 1, 4, 0); /* indirect: not offered */
	assert_int_equal(submit(c, 0), 0);
	three_desc_request(0, 0, 0x2000, 512, true);
	desc(2, 0x3000, 1, 0, 0); /* status not device-writable */
	assert_int_equal(submit(c, 0), 0);
	three_desc_request(0, 0, 0x2000, 512, false); /* read into a device-readable buffer */
	assert_int_equal(submit(c, 0), 1);
	assert_int_equal(ram[0x3000], 1);
	assert_int_equal(c->vb.stats.bad_chains, 6);
	three_desc_request(0, 2, 0x2000, 512, true); /* and the device still works */
	assert_int_equal(submit(c, 0), 513);
	assert_int_equal(ram[0x2000], 2);
}

static void test_broken_ring(void **state)
{
	struct ctx *c = *state;
	/* avail.idx claims 1000 new entries in a 256-entry queue. */
	put_le16(ram + AVAIL + 2, 1000);
	reg_wr(c, 0x10, 2, 0);
	assert_int_equal(get_le16(ram + USED + 2), 0);
	assert_int_equal(reg_rd(c, 0x12, 1) & 0x40, 0x40); /* DEVICE_NEEDS_RESET */
	assert_int_equal(virtio_blk_notify(&c->vb), -EINVAL);
	/* Reset and reprogram: works again. */
	reg_wr(c, 0x12, 1, 0);
	assert_int_equal(reg_rd(c, 0x08, 4), 0);
	reg_wr(c, 0x12, 1, 7);
	put_le16(ram + AVAIL + 2, 0);
	c->avail_idx = 0;
	reg_wr(c, 0x08, 4, RING_GPA >> 12);
	three_desc_request(0, 1, 0x2000, 512, true);
	assert_int_equal(submit(c, 0), 513);
	/* A ring placed where it does not fit in RAM. */
	reg_wr(c, 0x08, 4, (RAM_BYTES >> 12) - 1);
	assert_int_equal(virtio_blk_notify(&c->vb), -EFAULT);
	reg_wr(c, 0x08, 4, 0xFFFFFFFF);
	reg_wr(c, 0x12, 1, 0);
	reg_wr(c, 0x08, 4, 0xFFFFFFFF);
	assert_int_equal(virtio_blk_notify(&c->vb), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_loops_and_indices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
