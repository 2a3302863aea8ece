/* vmm/vmm-int.h - what the vmm/ device models share: guest memory access and IRQ lines. */
#ifndef GENSHIFT_VMM_INT_H
#define GENSHIFT_VMM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte-order helpers and vdisk_fail() (the project's one error-message channel). */
#include "include/byteorder.h"
#include "vhdx/vdisk.h"

#define VMM_GIB (1024ull * 1024 * 1024)
#define VMM_4GIB (4 * VMM_GIB)

/* Guest RAM as the VMM sees it: [0, low_bytes) at gpa 0 and [4 GiB, 4 GiB + high_bytes).
 * Every address a guest hands to a device goes through vmm_mem_ptr(), never straight into
 * a pointer: that is the one place where "inside guest RAM" is decided. */
struct vmm_mem {
	uint8_t *low;
	uint64_t low_bytes;
	uint8_t *high; /* NULL when all RAM is below 4 GiB */
	uint64_t high_bytes;
};

/* Host pointer to guest-physical [gpa, gpa + len) if that whole range is RAM inside one
 * region, else NULL. len 0 is refused (callers skip empty transfers themselves). */
static inline void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return NULL;
	if (gpa < m->low_bytes && len <= m->low_bytes - gpa)
		return m->low + gpa;
	if (m->high && gpa >= VMM_4GIB) {
		uint64_t off = gpa - VMM_4GIB;
		if (off < m->high_bytes && len <= m->high_bytes - off)
			return m->high + off;
	}
	return NULL;
}

/* An interrupt line into the machine's interrupt controllers (KVM_IRQ_LINE in the real
 * machine, a recorder in unit tests). level 1 = asserted. */
struct vmm_irq {
	void (*set)(void *opaque, unsigned gsi, int level);
	void *opaque;
};

static inline void vmm_irq_set(const struct vmm_irq *irq, unsigned gsi, int level)
{
	if (irq->set)
		irq->set(irq->opaque, gsi, level);
}

/* Port I/O handler shape shared by every device: off is relative to the device's first
 * port, size 1/2/4; reads store into *val (little-endian value), writes take *val. */
struct vmm_pio_handler {
	void (*fn)(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);
	void *dev;
};

/* Memory barriers for rings shared with running vCPUs. */
static inline void vmm_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif
