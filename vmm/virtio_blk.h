/* vmm/virtio_blk.h - legacy (virtio 0.9.5) virtio-blk PCI device, 1af4:1001, backed
 * directly by a struct vdisk: guest writes land in the raw/VHD/VHDX file through the vdisk
 * library, guest flushes become vdisk_flush(). Register file and ring layout:
 * vmm-device-model.md section 6.2 and the virtio 1.x spec section 4.1.4.8 (legacy). */
#ifndef GENSHIFT_VIRTIO_BLK_H
#define GENSHIFT_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/pci.h"
#include "vmm/vmm-int.h"

struct vdisk;

#define VIRTIO_BLK_IO_BYTES 0x40
#define VIRTIO_BLK_QUEUE_SIZE 256 /* SeaBIOS refuses more than 256 */
#define VIRTIO_PAGE 4096u

/* Request counters, for the exit statistics and for tests. */
struct virtio_blk_stats {
	uint64_t reads, writes, flushes, read_bytes, written_bytes;
	uint64_t io_errors;  /* requests completed with VIRTIO_BLK_S_IOERR */
	uint64_t unsupported; /* VIRTIO_BLK_S_UNSUPP */
	uint64_t bad_chains; /* malformed descriptor chains (hostile or buggy guest) */
};

struct virtio_blk {
	struct pci_func pci; /* first: the bus hands us back this pointer */
	struct vdisk *disk;  /* borrowed */
	bool read_only;
	const struct vmm_mem *mem;
	struct vmm_irq irq;
	const struct pci_func *piix3; /* INTx routing (PIRQ registers); NULL = use cfg 0x3C */
	uint32_t guest_features;
	uint32_t queue_pfn;
	uint16_t queue_sel;
	uint16_t last_avail; /* next avail ring slot we will consume */
	uint8_t status, isr;
	bool broken; /* set on a fatal ring error; cleared by a device reset */
	int irq_gsi; /* line currently asserted, -1 = none */
	struct virtio_blk_stats stats;
};

/* PCI function 00:dev.0 over disk. mem/irq borrowed; piix3 may be NULL. */
void virtio_blk_init(struct virtio_blk *vb, unsigned dev, struct vdisk *disk, bool read_only,
		     const struct vmm_mem *mem, const struct vmm_irq *irq,
		     const struct pci_func *piix3);
/* Process every request the guest made available (what a QUEUE_NOTIFY write does).
 * Returns 0, or -EINVAL/-EFAULT when the ring itself is unusable (index past the queue,
 * ring outside RAM); the device then sets DEVICE_NEEDS_RESET and ignores the queue until
 * the guest resets it. Malformed single requests fail only that request. */
int virtio_blk_notify(struct virtio_blk *vb);

#endif
