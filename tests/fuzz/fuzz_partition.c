/* tests/fuzz/fuzz_partition.c - libFuzzer target for the partition module. The input is a
 * raw disk (padded with zeros to whole 512-byte sectors, in a memfd): its table is read,
 * described as JSON and planned for conversion. An input starting with the undo-file magic
 * is instead fed to part_undo against a small scratch disk. Errors are expected; any crash,
 * sanitizer report or hang is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "partition/partition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd_with(const char *name, const uint8_t *data, size_t size, size_t padded)
{
	int fd = memfd_create(name, 0);
	if (fd < 0)
		return -1;
	if ((size && write(fd, data, size) != (ssize_t)size) || ftruncate(fd, (off_t)padded) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void exercise_table(struct vdisk *d)
{
	struct part_plan_opts o = { .allow_grow = true, .seeded = true, .seed = 1,
				    .esp_bytes = 100u << 20, .add_msr = true };
	struct part_table *t;
	struct part_plan *p;

	if (part_table_read(d, &t) < 0)
		return;
	json_object_put(part_table_to_json(t));
	if (part_plan_new(d, t, &o, &p) == 0) {
		json_object_put(part_plan_to_json(p));
		part_plan_free(p);
	}
	part_table_free(t);
}

static void exercise_undo(const uint8_t *data, size_t size)
{
	char disk_path[64], undo_path[64];
	struct vdisk *d;
	int undo = memfd_with("fuzz.undo", data, size, size);
	int disk = memfd_with("fuzz.disk", NULL, 0, 32768);

	if (undo >= 0 && disk >= 0) {
		snprintf(disk_path, sizeof(disk_path), "/proc/self/fd/%d", disk);
		snprintf(undo_path, sizeof(undo_path), "/proc/self/fd/%d", undo);
		if (vdisk_open(disk_path, VDISK_OPEN_RDWR | VDISK_OPEN_NOLOCK |
			       VDISK_OPEN_FORMAT_RAW, &d) == 0) {
			part_undo(d, undo_path);
			vdisk_close(d);
		}
	}
	if (undo >= 0)
		close(undo);
	if (disk >= 0)
		close(disk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct vdisk *d;

	if (size >= 8 && !memcmp(data, "GSPTUNDO", 8)) {
		exercise_undo(data, size);
		return 0;
	}
	int fd = memfd_with("fuzz.img", data, size, (size + 511) / 512 * 512);
	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (vdisk_open(path, VDISK_OPEN_NOLOCK | VDISK_OPEN_FORMAT_RAW, &d) == 0) {
		exercise_table(d);
		vdisk_close(d);
	}
	close(fd);
	return 0;
}
