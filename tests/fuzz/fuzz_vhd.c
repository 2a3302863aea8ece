/* tests/fuzz/fuzz_vhd.c - libFuzzer target for the VHD backend: the input is a VHD file
 * (in a memfd), opened read-only through the generic layer, read in a few places, mapped
 * and checked; then opened read-write, written, grown and flushed (the hostile file is a
 * private copy). Any crash, sanitizer report or hang is a bug; errors are expected. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhdx/vdisk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore_finding(enum vdisk_check_severity sev, const char *msg, void *opaque)
{
	(void)sev, (void)msg, (void)opaque;
}

static void exercise(struct vdisk *d)
{
	static uint8_t buf[65536];
	uint64_t size = vdisk_size_bytes(d), run, off = 0;
	unsigned state;
	const uint64_t offs[] = { 0, size / 3, size / 2 + 513, size > 4096 ? size - 4096 : 0 };

	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint64_t len = size - offs[i] < sizeof(buf) ? size - offs[i] : sizeof(buf);
		vdisk_read(d, offs[i], buf, (size_t)len);
	}
	for (int i = 0; i < 64 && off < size; i++, off += run)
		if (vdisk_map(d, off, size - off, &run, &state) < 0)
			break;
	struct vdisk_info info;
	vdisk_get_info(d, &info);
}

/* Allocation, bitmap updates and BAT growth on whatever the input's metadata says. */
static void exercise_writes(const char *path)
{
	static uint8_t buf[5000];
	struct vdisk *d;

	if (vdisk_open(path, VDISK_OPEN_NOLOCK | VDISK_OPEN_RDWR, &d) < 0)
		return;
	uint64_t size = vdisk_size_bytes(d);
	memset(buf, 0x5a, sizeof(buf));
	vdisk_write(d, size / 2, buf, size - size / 2 < sizeof(buf) ? size - size / 2 : sizeof(buf));
	vdisk_write(d, 100, buf, size > 1100 ? 1000 : 0);
	if (size < (64u << 20))
		vdisk_resize(d, size + (1u << 20));
	vdisk_close(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct vdisk *d;

	int fd = memfd_create("fuzz.vhd", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (vdisk_open(path, VDISK_OPEN_NOLOCK, &d) == 0) {
			exercise(d);
			vdisk_close(d);
		}
		vdisk_check(path, 0, ignore_finding, NULL);
		exercise_writes(path);
	}
	close(fd);
	return 0;
}
