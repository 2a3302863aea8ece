/* vmm/pflash.c - CFI flash (Intel/Sharp command set) for OVMF's CODE and VARS units, with
 * the VARS unit written through to the VM's NVRAM file.
 *
 * Crash safety of the NVRAM file. Each program and each block erase the firmware completes
 * is pwrite()n to the file in the order the firmware issued it, exactly the bytes it
 * changed (consecutive programmed bytes are gathered into one pwrite, which never moves an
 * operation ahead of another), and the file is fdatasync()ed whenever the firmware
 * returns the unit to read-array mode (the end of each QemuFlashWrite burst) and on close.
 * So whenever the VMM dies, the file is the flash as it was after some prefix of the
 * firmware's operations. That is exactly what the UEFI variable store is built to recover
 * from, since it must survive a power cut between any two flash operations on real
 * hardware (variable state bytes, the fault-tolerant-write spare block and its reclaim).
 * Rewriting the whole file at exit would instead lose every variable written since boot
 * if the VMM crashed, and a partial whole-file write could tear the store anywhere. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/pflash.h"
#include "vmm/vmm-int.h"

/* CFI query table (JESD68-01; byte-wide part, so query offset n is byte address n). */
#define CFI_TABLE_BYTES 0x40
#define CFI_PRI_OFFSET 0x31 /* where the Intel primary extended table starts */

static void set_mode(struct pflash *pf, enum pflash_mode mode);

static int check_size(uint64_t bytes, const char *what)
{
	if (bytes == 0 || bytes % PFLASH_BLOCK_BYTES || bytes > PFLASH_MAX_BYTES)
		return vdisk_fail(EINVAL, "%s: %llu bytes; expected a whole number of 4 KiB flash "
				  "blocks, at most %u MiB", what, (unsigned long long)bytes,
				  PFLASH_MAX_BYTES >> 20);
	return 0;
}

static int map_image(struct pflash *pf, uint32_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return vdisk_fail(ENOMEM, "flash: cannot map %u bytes", bytes);
	pf->image = p;
	pf->bytes = bytes;
	return 0;
}

static void init_state(struct pflash *pf)
{
	memset(pf, 0, sizeof(*pf));
	pf->fd = -1;
	pf->mode = PFLASH_READ_ARRAY;
	pf->status = PFLASH_SR_READY;
}

int pflash_new_mem(struct pflash *pf, const void *data, uint32_t bytes, bool read_only)
{
	init_state(pf);
	int r = check_size(bytes, "flash image");
	if (r == 0)
		r = map_image(pf, bytes);
	if (r < 0)
		return r;
	memcpy(pf->image, data, bytes);
	pf->read_only = read_only;
	return 0;
}

static int open_locked(const char *path, int *out)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "NVRAM file %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return vdisk_fail(e, "NVRAM file %s is in use by another VM (flock: %s)", path,
				  strerror(e));
	}
	*out = fd;
	return 0;
}

int pflash_open(struct pflash *pf, const char *path)
{
	init_state(pf);
	snprintf(pf->path, sizeof(pf->path), "%s", path);
	int fd = -1, r = open_locked(path, &fd);
	if (r < 0)
		return r;
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		r = vdisk_fail(errno, "NVRAM file %s: %s", path, strerror(errno));
	if (r == 0)
		r = check_size((uint64_t)sb.st_size, path);
	if (r == 0)
		r = map_image(pf, (uint32_t)sb.st_size);
	if (r == 0)
		r = vdisk_pread(fd, path, pf->image, pf->bytes, 0);
	if (r < 0)
		goto undo_open;
	pf->fd = fd;
	return 0;
undo_open:
	if (pf->image)
		munmap(pf->image, pf->bytes);
	pf->image = NULL;
	close(fd);
	return r;
}

/* ---- write-through ---- */

static void persist(struct pflash *pf, uint32_t off, uint32_t len)
{
	if (pf->fd < 0 || pf->write_error || len == 0)
		return;
	int r = vdisk_pwrite(pf->fd, pf->path, pf->image + off, len, off);
	if (r < 0)
		pf->write_error = r; /* later operations must not land after a hole */
	else
		pf->dirty = true;
}

static void flush_pending(struct pflash *pf)
{
	persist(pf, pf->pend_off, pf->pend_end - pf->pend_off);
	pf->pend_off = pf->pend_end = 0;
}

int pflash_sync(struct pflash *pf)
{
	flush_pending(pf);
	if (pf->fd >= 0 && pf->dirty && !pf->write_error) {
		if (fdatasync(pf->fd) < 0)
			pf->write_error = vdisk_fail(errno, "NVRAM file %s: fdatasync: %s", pf->path,
						     strerror(errno));
		pf->dirty = false;
		pf->stats.syncs++;
	}
	return pf->write_error;
}

int pflash_close(struct pflash *pf)
{
	int r = pf->image ? pflash_sync(pf) : 0;
	if (pf->fd >= 0)
		close(pf->fd);
	if (pf->image)
		munmap(pf->image, pf->bytes);
	pf->fd = -1;
	pf->image = NULL;
	return r;
}

void pflash_reset(struct pflash *pf)
{
	flush_pending(pf);
	pf->status = PFLASH_SR_READY;
	set_mode(pf, PFLASH_READ_ARRAY);
}

/* ---- reads ---- */

static uint32_t ceil_log2(uint32_t v)
{
	uint32_t n = 0;
	while ((1ull << n) < v)
		n++;
	return n;
}

/* The query table a CFI driver walks: "QRY", the Intel/Sharp command set (0x0001), typical
 * and maximum timings, the size, x8 interface, one erase region of N 4 KiB blocks, then
 * the primary extended table "PRI" 1.0 with no optional features. */
static uint8_t cfi_byte(const struct pflash *pf, uint32_t q)
{
	uint32_t blocks = pf->bytes / PFLASH_BLOCK_BYTES;
	static const uint8_t fixed[CFI_TABLE_BYTES] = {
		[0x10] = 'Q', [0x11] = 'R', [0x12] = 'Y',
		[0x13] = 0x01, [0x15] = CFI_PRI_OFFSET,
		[0x1B] = 0x45, [0x1C] = 0x55,      /* Vcc 4.5-5.5 V, no Vpp */
		[0x1F] = 0x07, [0x21] = 0x0A,      /* typical: 2^7 us per byte, 2^10 ms per block */
		[0x23] = 0x04, [0x25] = 0x04,      /* maximum: 2^4 times typical */
		[0x2C] = 1,                        /* one erase-block region */
		[CFI_PRI_OFFSET] = 'P', [0x32] = 'R', [0x33] = 'I', [0x34] = '1', [0x35] = '0',
	};
	switch (q) {
	case 0x27: return (uint8_t)ceil_log2(pf->bytes);
	case 0x2D: return (uint8_t)(blocks - 1);
	case 0x2E: return (uint8_t)((blocks - 1) >> 8);
	case 0x2F: return (uint8_t)(PFLASH_BLOCK_BYTES / 256);
	case 0x30: return (uint8_t)(PFLASH_BLOCK_BYTES / 256 >> 8);
	default: return q < CFI_TABLE_BYTES ? fixed[q] : 0;
	}
}

static uint8_t read_byte(const struct pflash *pf, uint32_t off)
{
	switch (pf->mode) {
	case PFLASH_READ_ARRAY:
		return pf->image[off];
	case PFLASH_READ_ID: /* 0 manufacturer, 1 device, 2 block lock (unlocked) */
		return (off & 0xFF) == 0 ? PFLASH_MANUFACTURER_ID
		     : (off & 0xFF) == 1 ? PFLASH_DEVICE_ID : 0;
	case PFLASH_CFI_QUERY:
		return cfi_byte(pf, off & 0xFF);
	default: /* status, also while a program or erase is being set up */
		return pf->status;
	}
}

void pflash_read(struct pflash *pf, uint32_t off, uint8_t *data, unsigned len)
{
	if (!pf->image || len == 0 || len > 8 || off >= pf->bytes || len > pf->bytes - off) {
		memset(data, 0xFF, len);
		return;
	}
	for (unsigned i = 0; i < len; i++)
		data[i] = read_byte(pf, off + i);
}

/* ---- writes ---- */

static void set_mode(struct pflash *pf, enum pflash_mode mode)
{
	bool was_array = pf->mode == PFLASH_READ_ARRAY;
	pf->mode = mode;
	if (mode == PFLASH_READ_ARRAY)
		(void)pflash_sync(pf); /* the end of a burst: make it durable */
	if (pf->array_mode && was_array != (mode == PFLASH_READ_ARRAY))
		pf->array_mode(pf->opaque, mode == PFLASH_READ_ARRAY);
}

/* Flash programming can only clear bits: the result is old AND new, as on the real part. */
static void program(struct pflash *pf, uint32_t off, const uint8_t *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		uint8_t old = pf->image[off + i];
		if (data[i] & ~old)
			pf->stats.set_bits++;
		pf->image[off + i] = old & data[i];
	}
	if (pf->pend_end != pf->pend_off && pf->pend_end != off)
		flush_pending(pf);
	if (pf->pend_end == pf->pend_off)
		pf->pend_off = off;
	pf->pend_end = off + len;
	pf->stats.programs++;
	pf->status |= PFLASH_SR_READY;
	set_mode(pf, PFLASH_READ_STATUS);
}

/* The block is the one the confirm cycle addresses (any address inside it). Anything but
 * 0xD0 after 0x20 is an improper command sequence: both error bits, nothing erased. */
static void erase_confirm(struct pflash *pf, uint32_t off, uint8_t cmd)
{
	if (cmd != PFLASH_CMD_ERASE_CONFIRM) {
		pf->stats.refused++;
		pf->status |= PFLASH_SR_READY | PFLASH_SR_ERASE_ERROR | PFLASH_SR_PROGRAM_ERROR;
		set_mode(pf, PFLASH_READ_STATUS);
		return;
	}
	uint32_t block = off & ~(PFLASH_BLOCK_BYTES - 1);
	flush_pending(pf);
	memset(pf->image + block, 0xFF, PFLASH_BLOCK_BYTES);
	persist(pf, block, PFLASH_BLOCK_BYTES);
	pf->stats.erases++;
	pf->status |= PFLASH_SR_READY;
	set_mode(pf, PFLASH_READ_STATUS);
}

static void command(struct pflash *pf, uint8_t cmd)
{
	switch (cmd) {
	case PFLASH_CMD_READ_ARRAY:
	case 0xF0: /* AMD-style reset, accepted as read array like QEMU */
	case 0x00:
		set_mode(pf, PFLASH_READ_ARRAY);
		break;
	case PFLASH_CMD_CLEAR_STATUS:
		/* QEMU clears the whole register, ready bit included; OVMF's flash detection
		 * depends on it (0x50 then 0x70 must read 0x00). */
		pf->status = 0;
		set_mode(pf, PFLASH_READ_ARRAY);
		break;
	case PFLASH_CMD_READ_STATUS: set_mode(pf, PFLASH_READ_STATUS); break;
	case PFLASH_CMD_READ_ID: set_mode(pf, PFLASH_READ_ID); break;
	case PFLASH_CMD_CFI_QUERY: set_mode(pf, PFLASH_CFI_QUERY); break;
	case PFLASH_CMD_PROGRAM:
	case PFLASH_CMD_PROGRAM_ALT: set_mode(pf, PFLASH_PROGRAM_SETUP); break;
	case PFLASH_CMD_BLOCK_ERASE: set_mode(pf, PFLASH_ERASE_SETUP); break;
	default: /* unknown, or a cycle (0xD0, data) out of sequence */
		pf->stats.refused++;
		set_mode(pf, PFLASH_READ_ARRAY);
		break;
	}
}

void pflash_write(struct pflash *pf, uint32_t off, const uint8_t *data, unsigned len)
{
	if (!pf->image || pf->read_only) {
		pf->stats.refused++; /* CODE: ignored, as QEMU's read-only pflash does */
		return;
	}
	if (len == 0 || len > 8 || off >= pf->bytes || len > pf->bytes - off) {
		pf->stats.refused++;
		if (pf->mode == PFLASH_PROGRAM_SETUP || pf->mode == PFLASH_ERASE_SETUP) {
			pf->status |= PFLASH_SR_READY | PFLASH_SR_PROGRAM_ERROR;
			set_mode(pf, PFLASH_READ_STATUS);
		}
		return;
	}
	if (pf->mode == PFLASH_PROGRAM_SETUP)
		program(pf, off, data, len);
	else if (pf->mode == PFLASH_ERASE_SETUP)
		erase_confirm(pf, off, data[0]);
	else
		command(pf, data[0]);
}
