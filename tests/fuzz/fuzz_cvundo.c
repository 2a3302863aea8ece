/* tests/fuzz/fuzz_cvundo.c - libFuzzer target for NAME.undo-esp, the regions file of
 * `genshift convert --in-place` (convert/undo-regions-format.h): the input is the file (in
 * a memfd), restored into a 4 MiB raw scratch disk. Any crash, sanitizer report or hang is a
 * bug; refusals are expected. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convert/undo-regions.h"
#include "vhdx/vdisk.h"

#define DISK_BYTES (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One scratch disk for the whole run: an unlinked file, so nothing is left behind. */
static struct vdisk *scratch_disk(void)
{
	static struct vdisk *d;
	char path[] = "/tmp/fuzz_cvundo.XXXXXX";

	if (d)
		return d;
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, DISK_BYTES) < 0 ||
	    vdisk_open(path, VDISK_OPEN_RDWR | VDISK_OPEN_FORMAT_RAW | VDISK_OPEN_NOLOCK, &d) < 0)
		d = NULL;
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct vdisk *d = scratch_disk();
	int fd = memfd_create("cvundo", MFD_CLOEXEC);

	if (!d || fd < 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (size == 0 || write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		cv_regions_restore(path, d);
	}
	close(fd);
	return 0;
}
