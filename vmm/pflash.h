/* vmm/pflash.h - CFI parallel flash with the Intel/Sharp command set (as QEMU's pflash_cfi01
 * and crosvm's pflash model it), byte-wide, 4 KiB blocks: the two OVMF "units" at the top of
 * 4 GiB. The VARS unit is the VM's NVRAM file; every program and erase the firmware makes
 * is written through to that file in the order it was issued (see pflash.c for why that
 * is crash-safe). The CODE unit is read-only: the guest's writes to it are ignored.
 * Semantics: vmm-device-model.md section 5; OVMF's use: QemuFlashFvbServicesRuntimeDxe. */
#ifndef GENSHIFT_PFLASH_H
#define GENSHIFT_PFLASH_H

#include <stdbool.h>
#include <stdint.h>

#define PFLASH_BLOCK_BYTES 0x1000u
#define PFLASH_MAX_BYTES (16u << 20)

/* Commands (first bus cycle). */
#define PFLASH_CMD_READ_ARRAY 0xFF
#define PFLASH_CMD_READ_ID 0x90
#define PFLASH_CMD_CFI_QUERY 0x98
#define PFLASH_CMD_READ_STATUS 0x70
#define PFLASH_CMD_CLEAR_STATUS 0x50
#define PFLASH_CMD_PROGRAM 0x10
#define PFLASH_CMD_PROGRAM_ALT 0x40
#define PFLASH_CMD_BLOCK_ERASE 0x20
#define PFLASH_CMD_ERASE_CONFIRM 0xD0

/* Status register bits. */
#define PFLASH_SR_READY 0x80        /* write state machine ready */
#define PFLASH_SR_ERASE_ERROR 0x20
#define PFLASH_SR_PROGRAM_ERROR 0x10
#define PFLASH_SR_PROTECT_ERROR 0x02 /* program/erase of a read-only unit */

/* Read ID answers (CFI address 0 and 1): an Intel part, like QEMU's default. */
#define PFLASH_MANUFACTURER_ID 0x89
#define PFLASH_DEVICE_ID 0x18

enum pflash_mode {
	PFLASH_READ_ARRAY,
	PFLASH_READ_STATUS,
	PFLASH_READ_ID,
	PFLASH_CFI_QUERY,
	PFLASH_PROGRAM_SETUP, /* 0x10/0x40 seen: the next write is data */
	PFLASH_ERASE_SETUP,   /* 0x20 seen: the next write must be 0xD0 */
};

struct pflash_stats {
	uint64_t programs, erases, syncs;
	uint64_t set_bits;  /* programmed bytes that asked for a 0->1 change (AND kept them 0) */
	uint64_t refused;   /* writes to a read-only unit, bad sequences, unknown commands */
};

struct pflash {
	uint8_t *image;  /* the array contents; page-aligned mapping, owned */
	uint32_t bytes;  /* multiple of PFLASH_BLOCK_BYTES */
	bool read_only;  /* CODE: every write is ignored */
	int fd;          /* the backing file for write-through, -1 = none (CODE, tests) */
	char path[256];  /* for error messages */
	enum pflash_mode mode;
	uint8_t status;
	/* Programmed bytes not yet pwrite()n: one contiguous run [pend_off, pend_end). */
	uint32_t pend_off, pend_end;
	bool dirty;       /* pwrite()n since the last fdatasync */
	int write_error;  /* first -errno of the write-through; the unit then stops persisting */
	struct pflash_stats stats;
	/* Called when the unit enters (true) or leaves (false) read-array mode, so the machine
	 * can map the image straight into the guest while reads return array data. */
	void (*array_mode)(void *opaque, bool on);
	void *opaque;
};

/* A unit over a copy of bytes (no file): the CODE unit, and tests. read_only units ignore
 * writes. 0, -EINVAL (size not a whole number of blocks, or above PFLASH_MAX_BYTES), -ENOMEM. */
int pflash_new_mem(struct pflash *pf, const void *data, uint32_t bytes, bool read_only);
/* The VARS unit over an NVRAM file: opened read-write and flock()ed exclusively (a second
 * VMM on the same store fails with -EWOULDBLOCK), its size checked as for pflash_new_mem.
 * -errno with a message. */
int pflash_open(struct pflash *pf, const char *path);
/* Flush what is pending (pwrite + fdatasync), close the file, free the image. Returns the
 * first write-through error, else 0. Accepts a zeroed or already closed unit. */
int pflash_close(struct pflash *pf);
/* Power-on state: read-array mode, status ready. Contents are kept (that is the point). */
void pflash_reset(struct pflash *pf);

/* A guest access at off (bytes from the unit's start), len 1..8 bytes. Reads fill data;
 * writes take data (a command is its first byte; program data is all len bytes). An access
 * that does not lie wholly inside the unit reads all-ones / is refused. */
void pflash_read(struct pflash *pf, uint32_t off, uint8_t *data, unsigned len);
void pflash_write(struct pflash *pf, uint32_t off, const uint8_t *data, unsigned len);
/* Write pending programs through and fdatasync the file. 0 or the first -errno. */
int pflash_sync(struct pflash *pf);

#endif
