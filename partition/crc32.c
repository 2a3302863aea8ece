/* partition/crc32.c - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as the GPT
 * header and entry-array checksums use (UEFI 2.10 §5.3.2). */
#include "partition/part-int.h"

/* Four bits at a time: a 16-entry table is small enough to read and fast enough for
 * 16 KiB entry arrays and megabyte undo files. */
static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t part_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return crc ^ 0xffffffffu;
}
