/* vmm/mc146818.c - CMOS RTC model: time from the host clock (UTC), NVRAM bytes as stored.
 * Register behaviour: vmm-device-model.md section 3; layout of the PC bytes: QEMU pc.c. */
#include <string.h>

#include "vmm/mc146818.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
#define RTC_CENTURY 0x32

#define REG_B_24H 0x02
#define REG_B_BINARY 0x04
#define REG_D_VRT 0x80 /* "valid RAM and time": OVMF's PcRtc refuses an RTC without it */

void mc146818_init(struct mc146818 *rtc, time_t (*clock)(void))
{
	memset(rtc, 0, sizeof(*rtc));
	rtc->clock = clock;
	rtc->nvram[RTC_REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate */
	rtc->nvram[RTC_REG_B] = REG_B_24H;
}

static void put_le16_at(struct mc146818 *rtc, unsigned off, uint64_t v)
{
	rtc->nvram[off] = (uint8_t)v;
	rtc->nvram[off + 1] = (uint8_t)(v >> 8);
}

void mc146818_set_pc_config(struct mc146818 *rtc, uint64_t low_ram_bytes,
			    uint64_t high_ram_bytes, unsigned cpus)
{
	uint64_t ext_kib = low_ram_bytes > (1u << 20) ? (low_ram_bytes - (1u << 20)) / 1024 : 0;
	uint64_t above16m = low_ram_bytes > (16u << 20) ? (low_ram_bytes - (16u << 20)) >> 16 : 0;
	uint64_t above4g = high_ram_bytes >> 16;

	rtc->nvram[0x14] = 0x06; /* equipment: FPU + PS/2 mouse, as QEMU */
	put_le16_at(rtc, 0x15, 640);
	put_le16_at(rtc, 0x17, ext_kib > 0xFFFF ? 0xFFFF : ext_kib);
	put_le16_at(rtc, 0x30, ext_kib > 0xFFFF ? 0xFFFF : ext_kib);
	put_le16_at(rtc, 0x34, above16m > 0xFFFF ? 0xFFFF : above16m);
	rtc->nvram[0x38] = 0x01; /* skip the floppy boot-signature check */
	rtc->nvram[0x3D] = 0x02; /* boot from the hard disk first */
	rtc->nvram[0x5B] = (uint8_t)above4g;
	rtc->nvram[0x5C] = (uint8_t)(above4g >> 8);
	rtc->nvram[0x5D] = (uint8_t)(above4g >> 16);
	/* SeaBIOS waits in smp_scan until max(fw_cfg NB_CPUS, this + 1) CPUs check in. */
	rtc->nvram[0x5F] = (uint8_t)(cpus ? cpus - 1 : 0);
}

static uint8_t to_bcd(const struct mc146818 *rtc, int v)
{
	if (rtc->nvram[RTC_REG_B] & REG_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t hours(const struct mc146818 *rtc, int h)
{
	if (rtc->nvram[RTC_REG_B] & REG_B_24H)
		return to_bcd(rtc, h);
	/* 12-hour mode: 12, 1..11 with bit 7 = PM. */
	int h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(to_bcd(rtc, h12) | (h >= 12 ? 0x80 : 0));
}

static uint8_t read_time(const struct mc146818 *rtc, unsigned reg)
{
	time_t now = rtc->clock ? rtc->clock() : time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	switch (reg) {
	case RTC_SECONDS: return to_bcd(rtc, tm.tm_sec);
	case RTC_MINUTES: return to_bcd(rtc, tm.tm_min);
	case RTC_HOURS: return hours(rtc, tm.tm_hour);
	case RTC_DAY_OF_WEEK: return to_bcd(rtc, tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH: return to_bcd(rtc, tm.tm_mday);
	case RTC_MONTH: return to_bcd(rtc, tm.tm_mon + 1);
	case RTC_YEAR: return to_bcd(rtc, tm.tm_year % 100);
	default: return to_bcd(rtc, 19 + tm.tm_year / 100); /* century */
	}
}

static bool is_time_reg(unsigned reg)
{
	return (reg <= RTC_YEAR && reg != 1 && reg != 3 && reg != 5) || reg == RTC_CENTURY;
}

uint8_t mc146818_read(struct mc146818 *rtc, unsigned off)
{
	if ((off & 1) == 0)
		return 0xFF; /* the index port is write-only */
	unsigned reg = rtc->index;
	if (is_time_reg(reg))
		return read_time(rtc, reg);
	switch (reg) {
	case RTC_REG_A:
		return rtc->nvram[reg] & 0x7F; /* UIP never set: updates are instantaneous */
	case RTC_REG_C: {
		uint8_t v = rtc->nvram[reg]; /* interrupt flags clear on read */
		rtc->nvram[reg] = 0;
		return v;
	}
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return rtc->nvram[reg];
	}
}

void mc146818_write(struct mc146818 *rtc, unsigned off, uint8_t val)
{
	if ((off & 1) == 0) {
		rtc->index = val & 0x7F; /* bit 7 is the NMI mask, not part of the index */
		return;
	}
	unsigned reg = rtc->index;
	/* The clock follows the host: guest time writes and writes to C/D are dropped. */
	if (is_time_reg(reg) || reg == RTC_REG_C || reg == RTC_REG_D)
		return;
	rtc->nvram[reg] = val;
}

void mc146818_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	(void)size;
	if (is_write)
		mc146818_write(dev, off, (uint8_t)*val);
	else
		*val = mc146818_read(dev, off);
}
