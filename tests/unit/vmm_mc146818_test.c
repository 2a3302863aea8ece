/* tests/unit/vmm_mc146818_test.c - CMOS/RTC: BCD time from a pinned clock, 12/24 h and
 * binary modes, register A/C/D rules (OVMF needs VRT), NMI bit in the index, and the PC
 * memory/CPU bytes SeaBIOS falls back on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmm/mc146818.h"

/* 2026-11-27 15:04:05 UTC, a Friday. */
static time_t fixed_clock(void)
{
	return 1795791845;
}

static uint8_t rd(struct mc146818 *rtc, uint8_t reg)
{
	mc146818_write(rtc, 0, reg);
	return mc146818_read(rtc, 1);
}

static void wr(struct mc146818 *rtc, uint8_t reg, uint8_t v)
{
	mc146818_write(rtc, 0, reg);
	mc146818_write(rtc, 1, v);
}

static void test_bcd_time(void **state)
{
	(void)state;
	struct mc146818 rtc;
	mc146818_init(&rtc, fixed_clock);
	assert_int_equal(rd(&rtc, 0x00), 0x05);
	assert_int_equal(rd(&rtc, 0x02), 0x04);
	assert_int_equal(rd(&rtc, 0x04), 0x15);
	assert_int_equal(rd(&rtc, 0x06), 0x06); /* Friday = 6 (Sunday = 1) */
	assert_int_equal(rd(&rtc, 0x07), 0x27);
	assert_int_equal(rd(&rtc, 0x08), 0x11);
	assert_int_equal(rd(&rtc, 0x09), 0x26);
	assert_int_equal(rd(&rtc, 0x32), 0x20);
}

static void test_modes(void **state)
{
	(void)state;
	struct mc146818 rtc;
	mc146818_init(&rtc, fixed_clock);
	wr(&rtc, 0x0B, 0x00); /* 12 h, BCD */
	assert_int_equal(rd(&rtc, 0x04), 0x83); /* 3 PM */
	wr(&rtc, 0x0B, 0x06); /* 24 h, binary */
	assert_int_equal(rd(&rtc, 0x04), 15);
	assert_int_equal(rd(&rtc, 0x09), 26);
	assert_int_equal(rd(&rtc, 0x0B), 0x06);
}

static void test_status_registers(void **state)
{
	(void)state;
	struct mc146818 rtc;
	mc146818_init(&rtc, fixed_clock);
	assert_int_equal(rd(&rtc, 0x0A) & 0x80, 0); /* UIP never set */
	wr(&rtc, 0x0D, 0x00); /* OVMF writes 0, then requires VRT */
	assert_int_equal(rd(&rtc, 0x0D), 0x80);
	assert_int_equal(rd(&rtc, 0x0C), 0x00);
	wr(&rtc, 0x00, 0x59); /* time writes are dropped: the host clock rules */
	assert_int_equal(rd(&rtc, 0x00), 0x05);
	/* NMI-disable bit 7 does not change the index; the index port reads 0xFF. */
	mc146818_write(&rtc, 0, 0x80 | 0x09);
	assert_int_equal(mc146818_read(&rtc, 1), 0x26);
	assert_int_equal(mc146818_read(&rtc, 0), 0xFF);
	wr(&rtc, 0x7F, 0xA5);
	assert_int_equal(rd(&rtc, 0x7F), 0xA5);
}

static void test_pc_config(void **state)
{
	(void)state;
	struct mc146818 rtc;
	mc146818_init(&rtc, fixed_clock);
	/* 3 GiB: 2 GiB low, 1 GiB above 4 GiB, 4 CPUs. */
	mc146818_set_pc_config(&rtc, 2ull << 30, 1ull << 30, 4);
	assert_int_equal(rd(&rtc, 0x15) | rd(&rtc, 0x16) << 8, 640);
	assert_int_equal(rd(&rtc, 0x17) | rd(&rtc, 0x18) << 8, 0xFFFF);
	assert_int_equal(rd(&rtc, 0x34) | rd(&rtc, 0x35) << 8, ((2u << 30) - (16u << 20)) >> 16);
	assert_int_equal(rd(&rtc, 0x5B) | rd(&rtc, 0x5C) << 8 | rd(&rtc, 0x5D) << 16,
			 (1u << 30) >> 16);
	assert_int_equal(rd(&rtc, 0x5F), 3);
	assert_int_equal(rd(&rtc, 0x3D), 0x02);
	/* 64 MiB: small enough for the 16-bit extended-memory field. */
	mc146818_set_pc_config(&rtc, 64u << 20, 0, 1);
	assert_int_equal(rd(&rtc, 0x30) | rd(&rtc, 0x31) << 8, 63 * 1024);
	assert_int_equal(rd(&rtc, 0x5F), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bcd_time),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_status_registers),
		cmocka_unit_test(test_pc_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
