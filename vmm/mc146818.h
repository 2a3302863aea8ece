/* vmm/mc146818.h - MC146818 CMOS RTC + NVRAM at 0x70/0x71, with the PC's CMOS layout. */
#ifndef GENSHIFT_MC146818_H
#define GENSHIFT_MC146818_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define MC146818_PORTS 2
#define MC146818_NVRAM_BYTES 128

struct mc146818 {
	uint8_t index;
	uint8_t nvram[MC146818_NVRAM_BYTES];
	/* Wall clock; replaceable so tests can pin the time. */
	time_t (*clock)(void);
};

/* Power-on state; clock NULL means time(NULL). */
void mc146818_init(struct mc146818 *rtc, time_t (*clock)(void));
/* Fill the CMOS memory-size, CPU-count and boot bytes firmware reads
 * (vmm-device-model.md section 3; QEMU pc_cmos_init). */
void mc146818_set_pc_config(struct mc146818 *rtc, uint64_t low_ram_bytes,
			    uint64_t high_ram_bytes, unsigned cpus);
uint8_t mc146818_read(struct mc146818 *rtc, unsigned off);
void mc146818_write(struct mc146818 *rtc, unsigned off, uint8_t val);
void mc146818_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);

#endif
