/* vhdx/crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8. */
#include <pthread.h>

#include "vhdx-int.h"

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	/* Table t gives the CRC of byte i followed by t zero bytes: eight bytes per step. */
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t vhdx_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	while (len >= 8) {
		uint32_t lo = crc ^ get_le32(p), hi = get_le32(p + 4);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

uint32_t vhdx_crc32c(const void *buf, size_t len)
{
	return ~vhdx_crc32c_update(0xFFFFFFFFu, buf, len);
}

uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t field_off)
{
	static const uint8_t zero[4];
	uint32_t crc = vhdx_crc32c_update(0xFFFFFFFFu, buf, field_off);

	crc = vhdx_crc32c_update(crc, zero, 4);
	crc = vhdx_crc32c_update(crc, buf + field_off + 4, len - field_off - 4);
	return ~crc;
}
