/* vmm/virtio_blk.c - legacy virtio-blk: register file, split-ring processing, requests
 * against a vdisk. The ring and every buffer are guest memory, so every index is checked
 * against the queue size, every chain is bounded by the queue size (no loops), and every
 * address + length must lie inside guest RAM (vmm_mem_ptr) before it is touched. */
#include <errno.h>
#include <string.h>

#include "vhdx/vdisk.h"
#include "vmm/virtio_blk.h"

/* Legacy register file (BAR0, little-endian). */
#define REG_HOST_FEATURES 0x00
#define REG_GUEST_FEATURES 0x04
#define REG_QUEUE_PFN 0x08
#define REG_QUEUE_NUM 0x0C
#define REG_QUEUE_SEL 0x0E
#define REG_QUEUE_NOTIFY 0x10
#define REG_STATUS 0x12
#define REG_ISR 0x13
#define REG_CONFIG 0x14 /* struct virtio_blk_config, no MSI-X */

#define F_SEG_MAX (1u << 2)
#define F_RO (1u << 5)
#define F_FLUSH (1u << 9)

#define STATUS_NEEDS_RESET 0x40

/* Split ring (virtio 1.x section 2.6, legacy layout with 4096-byte alignment). */
#define DESC_BYTES 16
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_INDIRECT 4
#define AVAIL_F_NO_INTERRUPT 1

/* Requests (virtio 1.x section 5.2.6). */
#define REQ_HEADER_BYTES 16
#define REQ_IN 0
#define REQ_OUT 1
#define REQ_FLUSH 4
#define REQ_GET_ID 8
#define REQ_ID_BYTES 20
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define SECTOR 512u

#define QN VIRTIO_BLK_QUEUE_SIZE
#define AVAIL_OFF (QN * DESC_BYTES)
#define USED_OFF ((AVAIL_OFF + 4 + 2 * QN + 2 + VIRTIO_PAGE - 1) & ~(VIRTIO_PAGE - 1))
#define RING_BYTES (USED_OFF + 4 + 8 * QN + 2)

static const struct pci_func_ops virtio_blk_ops;

struct seg {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

struct request {
	struct seg segs[QN];
	unsigned n;
	uint8_t *status;  /* last byte of the last segment */
	uint32_t written; /* bytes the device wrote into guest buffers */
};

void virtio_blk_init(struct virtio_blk *vb, unsigned dev, struct vdisk *disk, bool read_only,
		     const struct vmm_mem *mem, const struct vmm_irq *irq,
		     const struct pci_func *piix3)
{
	memset(vb, 0, sizeof(*vb));
	struct pci_func *f = &vb->pci;
	pci_func_init(f, dev, 0, 0x1AF4, 0x1001, 0x00, 0x010000, 0x00);
	put_le16(f->cfg + PCI_SUBSYS_ID, 0x0002); /* virtio device type: block */
	f->cfg[PCI_INTERRUPT_PIN] = 1;
	pci_func_set_bar_io(f, 0, VIRTIO_BLK_IO_BYTES);
	f->ops = &virtio_blk_ops;
	vb->disk = disk;
	vb->read_only = read_only;
	vb->mem = mem;
	if (irq)
		vb->irq = *irq;
	vb->piix3 = piix3;
	vb->irq_gsi = -1;
}

static uint32_t host_features(const struct virtio_blk *vb)
{
	return F_SEG_MAX | F_FLUSH | (vb->read_only ? F_RO : 0);
}

static void set_irq(struct virtio_blk *vb, bool level)
{
	if (!level) {
		if (vb->irq_gsi >= 0)
			vmm_irq_set(&vb->irq, (unsigned)vb->irq_gsi, 0);
		vb->irq_gsi = -1;
		return;
	}
	int gsi = vb->piix3 ? pci_piix3_route(vb->piix3, vb->pci.dev, 1) : -1;
	if (gsi < 0 && vb->pci.cfg[PCI_INTERRUPT_LINE] >= 3 && vb->pci.cfg[PCI_INTERRUPT_LINE] < 16)
		gsi = vb->pci.cfg[PCI_INTERRUPT_LINE];
	if (gsi < 0 || gsi == vb->irq_gsi)
		return;
	set_irq(vb, false);
	vb->irq_gsi = gsi;
	vmm_irq_set(&vb->irq, (unsigned)gsi, 1);
}

static void reset(struct virtio_blk *vb)
{
	set_irq(vb, false);
	vb->guest_features = 0;
	vb->queue_pfn = 0;
	vb->queue_sel = 0;
	vb->last_avail = 0;
	vb->status = 0;
	vb->isr = 0;
	vb->broken = false;
}

/* Walk the chain starting at head into r->segs. Refuses indices past the queue, chains
 * longer than the queue (which is what a loop looks like) and indirect descriptors (not
 * offered, so a guest using them is broken). */
static int collect_chain(const uint8_t *desc, uint16_t head, struct request *r)
{
	uint16_t i = head;
	r->n = 0;
	for (;;) {
		if (i >= QN)
			return vdisk_fail(EINVAL, "virtio-blk: descriptor index %u past queue size %u",
					  i, QN);
		if (r->n == QN)
			return vdisk_fail(EINVAL, "virtio-blk: descriptor chain from %u loops "
					  "(longer than the %u-entry queue)", head, QN);
		const uint8_t *d = desc + (size_t)i * DESC_BYTES;
		uint16_t flags = get_le16(d + 12);
		if (flags & DESC_F_INDIRECT)
			return vdisk_fail(EINVAL, "virtio-blk: indirect descriptor %u (not offered)", i);
		r->segs[r->n++] = (struct seg){ get_le64(d), get_le32(d + 8),
						(flags & DESC_F_WRITE) != 0 };
		if (!(flags & DESC_F_NEXT))
			break;
		i = get_le16(d + 14);
	}
	return 0;
}

/* Data segments are segs[1 .. n-2]: check direction, guest RAM and the disk range for all
 * of them before any I/O, so a request is either done whole or not at all. */
static int check_data(struct virtio_blk *vb, const struct request *r, uint64_t sector,
		      bool device_writes)
{
	uint64_t cap = vdisk_size_bytes(vb->disk);
	if (sector > cap / SECTOR)
		return vdisk_fail(EINVAL, "virtio-blk: sector %llu past the %llu-byte disk",
				  (unsigned long long)sector, (unsigned long long)cap);
	uint64_t off = sector * SECTOR;
	for (unsigned k = 1; k + 1 < r->n; k++) {
		const struct seg *s = &r->segs[k];
		if (s->device_writes != device_writes)
			return vdisk_fail(EINVAL, "virtio-blk: data descriptor %u has the wrong "
					  "direction", k);
		if (s->len && !vmm_mem_ptr(vb->mem, s->addr, s->len))
			return vdisk_fail(EFAULT, "virtio-blk: buffer 0x%llx+%u is outside guest RAM",
					  (unsigned long long)s->addr, s->len);
		if (s->len > cap - off)
			return vdisk_fail(EINVAL, "virtio-blk: request at byte %llu runs past the "
					  "%llu-byte disk", (unsigned long long)off,
					  (unsigned long long)cap);
		off += s->len;
	}
	return 0;
}

static int do_rw(struct virtio_blk *vb, struct request *r, uint64_t sector, bool is_read)
{
	if (!is_read && vb->read_only)
		return vdisk_fail(EROFS, "virtio-blk: write to a read-only disk");
	int err = check_data(vb, r, sector, is_read);
	uint64_t off = sector * SECTOR;
	for (unsigned k = 1; err == 0 && k + 1 < r->n; k++) {
		const struct seg *s = &r->segs[k];
		if (!s->len)
			continue;
		void *p = vmm_mem_ptr(vb->mem, s->addr, s->len);
		err = is_read ? vdisk_read(vb->disk, off, p, s->len)
			      : vdisk_write(vb->disk, off, p, s->len);
		off += s->len;
		if (is_read && err == 0)
			r->written += s->len;
	}
	uint64_t bytes = off - sector * SECTOR;
	if (is_read) {
		vb->stats.reads++;
		vb->stats.read_bytes += err == 0 ? bytes : 0;
	} else {
		vb->stats.writes++;
		vb->stats.written_bytes += err == 0 ? bytes : 0;
	}
	return err;
}

static int do_get_id(struct virtio_blk *vb, struct request *r)
{
	static const char id[REQ_ID_BYTES] = "genshift-vdisk";
	if (r->n != 3 || !r->segs[1].device_writes)
		return vdisk_fail(EINVAL, "virtio-blk: GET_ID needs one writable buffer");
	uint32_t n = r->segs[1].len < REQ_ID_BYTES ? r->segs[1].len : REQ_ID_BYTES;
	uint8_t *p = n ? vmm_mem_ptr(vb->mem, r->segs[1].addr, n) : NULL;
	if (!p)
		return vdisk_fail(EFAULT, "virtio-blk: GET_ID buffer outside guest RAM");
	memcpy(p, id, n);
	r->written += n;
	return 0;
}

/* Run one request whose chain is in r; returns the virtio status byte. */
static uint8_t execute(struct virtio_blk *vb, struct request *r, const uint8_t *hdr)
{
	uint32_t type = get_le32(hdr);
	uint64_t sector = get_le64(hdr + 8);
	int err;
	switch (type) {
	case REQ_IN:
		err = do_rw(vb, r, sector, true);
		break;
	case REQ_OUT:
		err = do_rw(vb, r, sector, false);
		break;
	case REQ_FLUSH:
		vb->stats.flushes++;
		err = vb->read_only ? 0 : vdisk_flush(vb->disk);
		break;
	case REQ_GET_ID:
		err = do_get_id(vb, r);
		break;
	default:
		vb->stats.unsupported++;
		return S_UNSUPP;
	}
	if (err < 0)
		vb->stats.io_errors++;
	return err < 0 ? S_IOERR : S_OK;
}

/* Handle the chain at head; returns the used-ring length (0 for a chain we could not even
 * answer: the guest gets the buffer back with nothing written). */
static uint32_t handle_chain(struct virtio_blk *vb, const uint8_t *desc, uint16_t head,
			     struct request *r)
{
	r->written = 0;
	r->status = NULL;
	if (collect_chain(desc, head, r) < 0 || r->n < 2)
		goto bad_chain;
	const struct seg *h = &r->segs[0], *st = &r->segs[r->n - 1];
	const uint8_t *hdr = h->len >= REQ_HEADER_BYTES && !h->device_writes
			     ? vmm_mem_ptr(vb->mem, h->addr, REQ_HEADER_BYTES) : NULL;
	if (st->len && st->device_writes)
		r->status = vmm_mem_ptr(vb->mem, st->addr + st->len - 1, 1);
	if (!hdr || !r->status)
		goto bad_chain;
	*r->status = execute(vb, r, hdr);
	return r->written + 1;

bad_chain:
	vb->stats.bad_chains++;
	return 0;
}

static int ring_error(struct virtio_blk *vb, int err)
{
	vb->broken = true;
	vb->status |= STATUS_NEEDS_RESET;
	return err;
}

int virtio_blk_notify(struct virtio_blk *vb)
{
	if (vb->broken || !vb->queue_pfn)
		return vb->broken ? -EINVAL : 0;
	uint64_t base = (uint64_t)vb->queue_pfn * VIRTIO_PAGE;
	uint8_t *ring = vmm_mem_ptr(vb->mem, base, RING_BYTES);
	if (!ring)
		return ring_error(vb, vdisk_fail(EFAULT, "virtio-blk: queue at 0x%llx (%u bytes) "
						 "is outside guest RAM",
						 (unsigned long long)base, RING_BYTES));
	uint8_t *avail = ring + AVAIL_OFF, *used = ring + USED_OFF;
	uint16_t avail_idx = get_le16(avail + 2);
	vmm_barrier(); /* read the index before the ring entries it covers */
	uint16_t pending = (uint16_t)(avail_idx - vb->last_avail);
	if (pending > QN)
		return ring_error(vb, vdisk_fail(EINVAL, "virtio-blk: avail index %u is %u entries "
						 "ahead of %u (queue size %u)", avail_idx,
						 pending, vb->last_avail, QN));
	struct request r; /* 4 KiB: fine on a vCPU thread's stack */
	for (; pending; pending--, vb->last_avail++) {
		uint16_t head = get_le16(avail + 4 + 2 * (vb->last_avail % QN));
		uint32_t len = handle_chain(vb, ring, head, &r);
		uint16_t used_idx = get_le16(used + 2);
		uint8_t *e = used + 4 + 8 * (used_idx % QN);
		put_le32(e, head);
		put_le32(e + 4, len);
		vmm_barrier(); /* the element before the index that publishes it */
		put_le16(used + 2, (uint16_t)(used_idx + 1));
		vb->isr |= 1;
	}
	vmm_barrier();
	if ((vb->isr & 1) && !(get_le16(avail) & AVAIL_F_NO_INTERRUPT))
		set_irq(vb, true);
	return 0;
}

static void config_bytes(const struct virtio_blk *vb, uint8_t regs[VIRTIO_BLK_IO_BYTES])
{
	uint64_t cap = vdisk_size_bytes(vb->disk);
	memset(regs, 0, VIRTIO_BLK_IO_BYTES);
	put_le32(regs + REG_HOST_FEATURES, host_features(vb));
	put_le32(regs + REG_GUEST_FEATURES, vb->guest_features);
	put_le32(regs + REG_QUEUE_PFN, vb->queue_sel == 0 ? vb->queue_pfn : 0);
	put_le16(regs + REG_QUEUE_NUM, vb->queue_sel == 0 ? QN : 0);
	put_le16(regs + REG_QUEUE_SEL, vb->queue_sel);
	regs[REG_STATUS] = vb->status;
	regs[REG_ISR] = vb->isr;
	put_le64(regs + REG_CONFIG, cap / SECTOR);        /* capacity in 512-byte sectors */
	put_le32(regs + REG_CONFIG + 12, QN - 2);         /* seg_max: header + status reserved */
	put_le32(regs + REG_CONFIG + 20, SECTOR);         /* blk_size (not offered, informative) */
}

static void reg_write(struct virtio_blk *vb, unsigned off, uint32_t v)
{
	switch (off) {
	case REG_GUEST_FEATURES:
		vb->guest_features = v & host_features(vb);
		break;
	case REG_QUEUE_PFN:
		if (vb->queue_sel == 0) {
			vb->queue_pfn = v;
			vb->last_avail = 0;
		}
		break;
	case REG_QUEUE_SEL:
		vb->queue_sel = (uint16_t)v;
		break;
	case REG_QUEUE_NOTIFY:
		if ((uint16_t)v == 0)
			(void)virtio_blk_notify(vb); /* errors are kept in stats and the status */
		break;
	case REG_STATUS:
		if ((v & 0xFF) == 0)
			reset(vb);
		else
			vb->status = (uint8_t)v;
		break;
	default:
		break;
	}
}

static void virtio_io(struct pci_func *f, unsigned bar, unsigned off, unsigned size,
		      uint32_t *val, bool is_write)
{
	struct virtio_blk *vb = (struct virtio_blk *)f;
	(void)bar;
	if (is_write) {
		reg_write(vb, off, *val);
		return;
	}
	uint8_t regs[VIRTIO_BLK_IO_BYTES];
	config_bytes(vb, regs);
	uint32_t v = 0;
	for (unsigned i = 0; i < size && off + i < VIRTIO_BLK_IO_BYTES; i++)
		v |= (uint32_t)regs[off + i] << (8 * i);
	*val = v;
	/* Reading ISR acknowledges the interrupt. */
	if (off <= REG_ISR && off + size > REG_ISR) {
		vb->isr = 0;
		set_irq(vb, false);
	}
}

static const struct pci_func_ops virtio_blk_ops = {
	.io = virtio_io,
};
