/* convert/undo-regions-format.h - layout of NAME.undo-esp, the original bytes of the disk
 * ranges an --in-place conversion writes outside the partition module's own undo file (the
 * ESP when it lands in free space inside the original disk). genshift's own format,
 * version 1; all integers little-endian.
 *
 *   header | record_count x (record + data, unless the record says "zeros") | CRC32
 *
 * The CRC32 (IEEE 802.3, the zlib/GPT one) covers every byte before it.
 */
#ifndef GENSHIFT_UNDO_REGIONS_FORMAT_H
#define GENSHIFT_UNDO_REGIONS_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

struct cvundo_header {
	uint8_t magic[8];           /* 0x00: "GSCVREGN" */
	uint8_t version[4];         /* 0x08: 1 */
	uint8_t record_count[4];    /* 0x0C */
	uint8_t disk_size_bytes[8]; /* 0x10: virtual size of the disk when saved */
	uint8_t file_bytes[8];      /* 0x18: size of the whole file, CRC included */
};
static_assert(sizeof(struct cvundo_header) == 32, "regions header is 32 bytes");

struct cvundo_record {
	uint8_t offset_bytes[8]; /* 0x00: where the bytes go back */
	uint8_t bytes[4];        /* 0x08: length */
	uint8_t flags[4];        /* 0x0C: CVUNDO_ZEROS: no data follows, the range read as 0 */
};
static_assert(sizeof(struct cvundo_record) == 16, "regions record is 16 bytes");

#define CVUNDO_MAGIC "GSCVREGN"
#define CVUNDO_VERSION 1u
#define CVUNDO_ZEROS 0x1u
#define CVUNDO_HDR(field) offsetof(struct cvundo_header, field)
#define CVUNDO_REC(field) offsetof(struct cvundo_record, field)
/* An ESP is at most a few GiB: 1 MiB records, capped well above that. */
#define CVUNDO_MAX_RECORD_BYTES (1u << 20)
#define CVUNDO_MAX_RECORDS 65536u

#endif
