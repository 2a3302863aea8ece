/* vmm/ns16550.h - a 16550A UART (COM1 at 0x3F8, IRQ 4) as firmware and Linux probe it. */
#ifndef GENSHIFT_NS16550_H
#define GENSHIFT_NS16550_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vmm-int.h"

#define NS16550_PORTS 8
#define NS16550_RX_FIFO 16

struct ns16550 {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending; /* THR-empty interrupt condition, cleared by an IIR read */
	uint8_t rx[NS16550_RX_FIFO];
	unsigned rx_head, rx_count;
	int irq_level;
	/* Where transmitted bytes go (never blocks the guest) and the interrupt line. */
	void (*tx)(void *opaque, uint8_t byte);
	void *tx_opaque;
	struct vmm_irq irq;
	unsigned gsi;
};

/* Power-on state; tx may be NULL (bytes dropped). */
void ns16550_init(struct ns16550 *u, void (*tx)(void *opaque, uint8_t byte), void *tx_opaque,
		  const struct vmm_irq *irq, unsigned gsi);
uint8_t ns16550_read(struct ns16550 *u, unsigned off);
void ns16550_write(struct ns16550 *u, unsigned off, uint8_t val);
/* Host input: queue one byte for the guest. -EAGAIN when the FIFO is full. */
int ns16550_rx_push(struct ns16550 *u, uint8_t byte);
/* vmm_pio_handler shape; only the low byte of wider accesses is meaningful. */
void ns16550_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);

#endif
