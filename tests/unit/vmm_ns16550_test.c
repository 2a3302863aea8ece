/* tests/unit/vmm_ns16550_test.c - the 16550A UART model against what its probers check:
 * SeaBIOS detect_serial (IER readback, THRE in IIR), OVMF/GRUB scratch register, Linux
 * loopback test and FIFO detection, LSR, DLAB, RX FIFO and the interrupt line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/ns16550.h"

enum { THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct rec {
	uint8_t tx[64];
	unsigned n_tx;
	int level;
	unsigned edges;
};

static void on_tx(void *opaque, uint8_t b)
{
	struct rec *r = opaque;
	if (r->n_tx < sizeof(r->tx))
		r->tx[r->n_tx++] = b;
}

static void on_irq(void *opaque, unsigned gsi, int level)
{
	struct rec *r = opaque;
	assert_int_equal(gsi, 4);
	if (level && !r->level)
		r->edges++;
	r->level = level;
}

static void setup_uart(struct ns16550 *u, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	struct vmm_irq irq = { on_irq, r };
	ns16550_init(u, on_tx, r, &irq, 4);
}

static void test_seabios_detect(void **state)
{
	(void)state;
	struct ns16550 u;
	struct rec r;
	setup_uart(&u, &r);
	/* src/hw/serialio.c detect_serial: IER=0x02 must read back, IIR & 0x3F == 0x02. */
	ns16550_write(&u, IER, 0x02);
	assert_int_equal(ns16550_read(&u, IER), 0x02);
	assert_int_equal(ns16550_read(&u, IIR) & 0x3F, 0x02);
	assert_int_equal(r.level, 0); /* that IIR read acknowledged THRE */
	assert_int_equal(r.edges, 1);
	assert_int_equal(ns16550_read(&u, IIR) & 0x0F, 0x01); /* nothing pending now */
	ns16550_write(&u, IER, 0x00);
	assert_int_equal(ns16550_read(&u, IER), 0x00);
}

static void test_scratch_and_lsr(void **state)
{
	(void)state;
	struct ns16550 u;
	struct rec r;
	setup_uart(&u, &r);
	ns16550_write(&u, SCR, 0xAA);
	assert_int_equal(ns16550_read(&u, SCR), 0xAA);
	ns16550_write(&u, SCR, 0x55);
	assert_int_equal(ns16550_read(&u, SCR), 0x55);
	assert_int_equal(ns16550_read(&u, LSR), 0x60); /* THRE|TEMT, no data */
	assert_int_equal(ns16550_read(&u, MSR), 0xB0);
}

static void test_transmit_and_thre_irq(void **state)
{
	(void)state;
	struct ns16550 u;
	struct rec r;
	setup_uart(&u, &r);
	ns16550_write(&u, THR, 'h');
	ns16550_write(&u, THR, 'i');
	assert_int_equal(r.n_tx, 2);
	assert_memory_equal(r.tx, "hi", 2);
	assert_int_equal(r.level, 0); /* THRI not enabled: no interrupt */
	ns16550_write(&u, IER, 0x02);
	assert_int_equal(r.level, 1);
	assert_int_equal(ns16550_read(&u, IIR) & 0x0F, 0x02);
	assert_int_equal(r.level, 0);
	ns16550_write(&u, THR, '!'); /* next byte: THR empty again -> new edge */
	assert_int_equal(r.level, 1);
	assert_int_equal(r.edges, 2);
}

static void test_dlab(void **state)
{
	(void)state;
	struct ns16550 u;
	struct rec r;
	setup_uart(&u, &r);
	ns16550_write(&u, LCR, 0x83);
	ns16550_write(&u, 0, 0x01); /* divisor 115200 */
	ns16550_write(&u, 1, 0x00);
	assert_int_equal(ns16550_read(&u, 0), 0x01);
	assert_int_equal(ns16550_read(&u, 1), 0x00);
	assert_int_equal(r.n_tx, 0); /* divisor writes are not data */
	ns16550_write(&u, LCR, 0x03);
	assert_int_equal(ns16550_read(&u, LCR), 0x03);
	assert_int_equal(ns16550_read(&u, IER), 0x00);
}

static void test_loopback(void **state)
{
	(void)state;
	struct ns16550 u;
	struct rec r;
	setup_uart(&u, &r);
	/* Linux 8250 autoconfig: MCR = LOOP|OUT2|RTS must give MSR & 0xF0 == 0x90. */
	ns16550_write(&u, MCR, 0x1A);
	assert_int_equal(ns16550_read(&u, MSR) & 0xF0, 0x90);
	ns16550_write(&u, THR, 'x');
	assert_int_equal(r.n_tx, 0); /* looped back, not sent */
	assert_int_equal(ns16550_read(&u, LSR) & 1, 1);
	assert_int_equal(ns16550_read(&u, THR), 'x');
	assert_int_equal(ns16550_read(&u, LSR) & 1, 0);
}

static void test_fifo_and_rx(void **state)
{
	(void)state;
	struct ns16550 u;
	struct rec r;
	setup_uart(&u, &r);
	ns16550_write(&u, FCR, 0x07);
	assert_int_equal(ns16550_read(&u, IIR) & 0xC0, 0xC0); /* 16550A with FIFO */
	ns16550_write(&u, IER, 0x01);
	for (unsigned i = 0; i < NS16550_RX_FIFO; i++)
		assert_int_equal(ns16550_rx_push(&u, (uint8_t)('a' + i)), 0);
	assert_int_equal(ns16550_rx_push(&u, 'z'), -EAGAIN);
	assert_int_equal(r.level, 1);
	assert_int_equal(ns16550_read(&u, IIR) & 0x0F, 0x04);
	for (unsigned i = 0; i < NS16550_RX_FIFO; i++)
		assert_int_equal(ns16550_read(&u, THR), 'a' + i);
	assert_int_equal(r.level, 0);
	assert_int_equal(ns16550_read(&u, THR), 0); /* empty FIFO reads 0 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seabios_detect),
		cmocka_unit_test(test_scratch_and_lsr),
		cmocka_unit_test(test_transmit_and_thre_irq),
		cmocka_unit_test(test_dlab),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_fifo_and_rx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
