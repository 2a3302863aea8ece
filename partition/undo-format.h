/* partition/undo-format.h - layout of the undo file `genshift partition convert` writes
 * before touching a disk (genshift's own format, version 1). All integers little-endian.
 *
 *   undo_header | record_count x (undo_record + `bytes` bytes of data) | CRC32 (4 bytes)
 *
 * The CRC32 (IEEE, as GPT uses) covers every byte before it. Records hold the original
 * bytes of the disk at `offset`; all of them lie inside the original size. Restoring means
 * writing every record back and setting the disk to orig_size_bytes again.
 */
#ifndef GENSHIFT_UNDO_FORMAT_H
#define GENSHIFT_UNDO_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

struct undo_header {
	uint8_t magic[8];           /* 0x00: "GSPTUNDO" */
	uint8_t version[4];         /* 0x08: 1 */
	uint8_t sector_bytes[4];    /* 0x0C: logical sector size of the disk */
	uint8_t orig_size_bytes[8]; /* 0x10: virtual size before the conversion */
	uint8_t new_size_bytes[8];  /* 0x18: virtual size after it (>= orig) */
	uint8_t record_count[4];    /* 0x20 */
	uint8_t reserved[4];        /* 0x24: zero */
	uint8_t file_bytes[8];      /* 0x28: size of the whole file, CRC included */
};
static_assert(sizeof(struct undo_header) == 48, "undo header is 48 bytes");

struct undo_record {
	uint8_t offset_bytes[8]; /* 0x00: where the data goes on the disk */
	uint8_t bytes[4];        /* 0x08: length of the data that follows */
	uint8_t reserved[4];     /* 0x0C: zero */
};
static_assert(sizeof(struct undo_record) == 16, "undo record header is 16 bytes");

#define UNDO_MAGIC "GSPTUNDO"
#define UNDO_VERSION 1u
#define UNDO_HDR(field) offsetof(struct undo_header, field)
#define UNDO_REC(field) offsetof(struct undo_record, field)
/* First MiB + last MiB + up to 128 EBR sectors of at most 4 KiB: well under these caps. */
#define UNDO_MAX_RECORDS 256u
#define UNDO_MAX_RECORD_BYTES (1u << 20)
#define UNDO_MAX_FILE_BYTES (8u << 20)

#endif
