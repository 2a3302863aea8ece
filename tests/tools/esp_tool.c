/* tests/tools/esp_tool.c - test driver for bootfix's ESP writer, used by tests/diff/esp-*.test.sh
 * and tests/boot/esp-*.test.sh.
 *
 *   esp_tool format [OPTS] IMG FIRST_LBA SECTORS [ESP_PATH=HOST_FILE]...
 *       esp_format() into sectors [FIRST_LBA, FIRST_LBA + SECTORS) of IMG (raw, VHD or VHDX)
 *       holding each HOST_FILE at ESP_PATH ("EFI/BOOT/BOOTX64.EFI").
 *       OPTS: --id HEX (volume serial), --label TEXT, --time UNIX_SECONDS
 *   esp_tool linux [--id HEX] [--grub-lib DIR] IMG ESP_NUMBER DISTRO BOOT_FS_UUID GRUB_DIR
 *       bootfix_linux_esp() on partition ESP_NUMBER of IMG's partition table.
 * Both print "volume_id=XXXXXXXX" on success; on failure the library's message and exit 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix/bootfix.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

static int usage(void)
{
	fprintf(stderr, "usage: esp_tool format [--id HEX] [--label L] [--time S] IMG FIRST_LBA "
		"SECTORS [ESP_PATH=HOST_FILE]...\n"
		"       esp_tool linux [--id HEX] [--grub-lib DIR] IMG ESP_NUMBER DISTRO "
		"BOOT_FS_UUID GRUB_DIR\n");
	return 2;
}

static int fail(const char *what)
{
	fprintf(stderr, "esp_tool: %s: %s\n", what, vdisk_errmsg());
	return 1;
}

static void *slurp(const char *path, size_t *bytes)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	*bytes = len;
	return buf ? buf : malloc(1);
}

static int cmd_format(int argc, char **argv)
{
	struct esp_opts o = { 0 };
	int i = 0;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--id") == 0)
			o.volume_id = (uint32_t)strtoul(argv[i + 1], NULL, 16);
		else if (strcmp(argv[i], "--label") == 0)
			o.label = argv[i + 1];
		else if (strcmp(argv[i], "--time") == 0)
			o.timestamp = strtoll(argv[i + 1], NULL, 0);
		else
			return usage();
	}
	if (argc - i < 3)
		return usage();
	const char *img = argv[i];
	uint64_t first = strtoull(argv[i + 1], NULL, 0), sectors = strtoull(argv[i + 2], NULL, 0);
	size_t n = (size_t)(argc - i - 3);
	struct esp_file *files = calloc(n + 1, sizeof(*files));
	for (size_t k = 0; k < n; k++) {
		char *spec = argv[i + 3 + (int)k], *eq = strchr(spec, '=');
		if (!eq)
			return usage();
		*eq = '\0';
		files[k].path = spec;
		files[k].data = slurp(eq + 1, &files[k].bytes);
		if (!files[k].data) {
			fprintf(stderr, "esp_tool: cannot read %s: %s\n", eq + 1, strerror(errno));
			return 1;
		}
	}
	struct vdisk *d;
	if (vdisk_open(img, VDISK_OPEN_RDWR, &d) < 0)
		return fail(img);
	uint32_t id;
	int r = esp_format(d, first, sectors, &o, files, n, &id);
	if (r < 0) {
		fail("esp_format");
		vdisk_close(d);
		return 1;
	}
	if (vdisk_close(d) < 0)
		return fail("close");
	printf("volume_id=%08" PRIX32 "\n", id);
	for (size_t k = 0; k < n; k++)
		free((void *)files[k].data);
	free(files);
	return 0;
}

static int cmd_linux(int argc, char **argv)
{
	struct bootfix_linux_opts o = { 0 };
	int i = 0;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--id") == 0)
			o.esp_volume_id = (uint32_t)strtoul(argv[i + 1], NULL, 16);
		else if (strcmp(argv[i], "--grub-lib") == 0)
			o.grub_lib_dir = argv[i + 1];
		else
			return usage();
	}
	if (argc - i != 5)
		return usage();
	o.distro = argv[i + 2];
	o.boot_fs_uuid = argv[i + 3];
	o.grub_dir = argv[i + 4];
	struct vdisk *d;
	struct part_table *t;
	if (vdisk_open(argv[i], VDISK_OPEN_RDWR, &d) < 0)
		return fail(argv[i]);
	if (part_table_read(d, &t) < 0) {
		fail("partition table");
		vdisk_close(d);
		return 1;
	}
	uint32_t id;
	int r = bootfix_linux_esp(d, t, (uint32_t)strtoul(argv[i + 1], NULL, 0), &o, &id);
	part_table_free(t);
	if (r < 0) {
		fail("bootfix_linux_esp");
		vdisk_close(d);
		return 1;
	}
	if (vdisk_close(d) < 0)
		return fail("close");
	printf("volume_id=%08" PRIX32 "\n", id);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "format") == 0)
		return cmd_format(argc - 2, argv + 2);
	if (strcmp(argv[1], "linux") == 0)
		return cmd_linux(argc - 2, argv + 2);
	return usage();
}
