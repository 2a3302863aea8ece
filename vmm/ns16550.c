/* vmm/ns16550.c - 16550A UART model: the registers SeaBIOS, GRUB, OVMF and Linux probe.
 * Register semantics: vmm-device-model.md section 7 (QEMU hw/char/serial.c behaviour). */
#include <errno.h>
#include <string.h>

#include "vmm/ns16550.h"

#define UART_RBR_THR 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDA 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_FIFO_ON 0xC0
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE_TEMT 0x60 /* TX never backs up: both always set (OVMF waits for both) */
#define MSR_IDLE 0xB0      /* DCD, DSR, CTS */

void ns16550_init(struct ns16550 *u, void (*tx)(void *opaque, uint8_t byte), void *tx_opaque,
		  const struct vmm_irq *irq, unsigned gsi)
{
	memset(u, 0, sizeof(*u));
	u->tx = tx;
	u->tx_opaque = tx_opaque;
	if (irq)
		u->irq = *irq;
	u->gsi = gsi;
}

static uint8_t iir(const struct ns16550 *u)
{
	uint8_t fifo = (u->fcr & 1) ? IIR_FIFO_ON : 0;
	if ((u->ier & IER_RDA) && u->rx_count)
		return fifo | IIR_RDA;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return fifo | IIR_THRE;
	return fifo | IIR_NONE;
}

/* ISA interrupts are edge-triggered at the PIC: drive the line to the current condition
 * after every access so each new condition is a fresh 0->1 transition. */
static void update_irq(struct ns16550 *u)
{
	int level = (iir(u) & IIR_NONE) ? 0 : 1;
	if (level != u->irq_level) {
		u->irq_level = level;
		vmm_irq_set(&u->irq, u->gsi, level);
	}
}

static uint8_t msr(const struct ns16550 *u)
{
	if (!(u->mcr & MCR_LOOP))
		return MSR_IDLE;
	/* Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD (Linux's UART test). */
	return (uint8_t)(((u->mcr & 0x02) << 3) | ((u->mcr & 0x01) << 5) |
			 ((u->mcr & 0x04) << 4) | ((u->mcr & 0x08) << 4));
}

static uint8_t rx_pop(struct ns16550 *u)
{
	if (!u->rx_count)
		return 0;
	uint8_t b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % NS16550_RX_FIFO;
	u->rx_count--;
	return b;
}

int ns16550_rx_push(struct ns16550 *u, uint8_t byte)
{
	if (u->rx_count == NS16550_RX_FIFO)
		return -EAGAIN;
	u->rx[(u->rx_head + u->rx_count) % NS16550_RX_FIFO] = byte;
	u->rx_count++;
	update_irq(u);
	return 0;
}

static uint8_t read_reg(struct ns16550 *u, unsigned off)
{
	uint8_t v;
	switch (off) {
	case UART_RBR_THR:
		return (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u);
	case UART_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case UART_IIR_FCR:
		v = iir(u);
		/* Reading IIR while it reports THRE acknowledges that condition. */
		if ((v & 0x0F) == IIR_THRE)
			u->thre_pending = false;
		return v;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		return (uint8_t)(LSR_THRE_TEMT | (u->rx_count ? LSR_DR : 0));
	case UART_MSR:
		return msr(u);
	default:
		return u->scr;
	}
}

uint8_t ns16550_read(struct ns16550 *u, unsigned off)
{
	uint8_t v = read_reg(u, off & 7);
	update_irq(u);
	return v;
}

static void transmit(struct ns16550 *u, uint8_t val)
{
	if (u->mcr & MCR_LOOP)
		(void)ns16550_rx_push(u, val);
	else if (u->tx)
		u->tx(u->tx_opaque, val);
	/* The byte left at once, so THR is empty again. */
	u->thre_pending = true;
}

static void write_reg(struct ns16550 *u, unsigned off, uint8_t val)
{
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB)
			u->dll = val;
		else
			transmit(u, val);
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = val;
			break;
		}
		/* Enabling THRI with THR empty raises THRE at once (SeaBIOS detect_serial). */
		if ((val & IER_THRI) && !(u->ier & IER_THRI))
			u->thre_pending = true;
		u->ier = val & 0x0F;
		break;
	case UART_IIR_FCR:
		u->fcr = val & 0xC9;
		if (val & 0x02)
			u->rx_count = 0;
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		u->mcr = val & 0x1F;
		break;
	case UART_SCR:
		u->scr = val;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

void ns16550_write(struct ns16550 *u, unsigned off, uint8_t val)
{
	write_reg(u, off & 7, val);
	update_irq(u);
}

void ns16550_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	(void)size;
	if (is_write)
		ns16550_write(dev, off, (uint8_t)*val);
	else
		*val = ns16550_read(dev, off);
}
