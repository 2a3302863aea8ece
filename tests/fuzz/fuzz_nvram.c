/* tests/fuzz/fuzz_nvram.c - libFuzzer target for the OVMF variable store parser and writer
 * (bootfix/nvram.c). The input is laid into a 2M-layout image (128 KiB of 0xFF): its first
 * 8 KiB at offset 0 (FV header, store header, variables), the next 4 KiB over the FTW
 * working block at 0xF000, so small inputs reach every check. A store that parses is then
 * decoded (every variable as a load option) and changed (delete, Boot#### + BootOrder,
 * enough rewrites to compact), and
 * every image we produce must parse again: a failure there is a bug, not bad input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix/bootfix.h"
#include "vhdx/vdisk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IMAGE_BYTES 0x20000u
#define HEAD_BYTES 0x2000u
#define FTW_OFFSET 0xF000u
#define FTW_BYTES 0x1000u

static const uint8_t guid[16] = { 0xF0, 0x22, 0x5E, 0x11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };

/* What nvram.c wrote must be a store nvram.c accepts. */
static void must_reparse(const struct nvram *nv, const char *after)
{
	size_t n;
	const uint8_t *img = nvram_image(nv, &n);
	struct nvram *again;

	if (nvram_parse(img, n, &again) < 0) {
		fprintf(stderr, "fuzz_nvram: own image rejected after %s: %s\n", after, vdisk_errmsg());
		abort();
	}
	nvram_free(again);
}

static void change(struct nvram *nv)
{
	static uint8_t big[0x1000];
	const struct nvram_var *vars;
	size_t n = nvram_vars(nv, &vars);
	const struct nvram_boot_target t = {
		.description = "fuzz", .part_number = 1, .first_lba = 2048, .sectors = 4096,
		.part_guid = { 1, 2, 3 }, .loader = "/EFI/fuzz/grubx64.efi",
	};

	char desc[256], path[1024];

	if (n > 0 && nvram_get(nv, vars[0].name, vars[0].guid) != &vars[0])
		abort();  /* the first live variable must be the one nvram_get finds */
	for (size_t i = 0; i < n; i++)  /* any data as a load option: hostile device paths */
		nvram_boot_describe(&vars[i], desc, sizeof(desc), path, sizeof(path));
	if (n > 0 && nvram_delete(nv, vars[n - 1].name, vars[n - 1].guid) == 0)
		must_reparse(nv, "delete");
	if (nvram_add_boot(nv, &t, NULL) == 0)
		must_reparse(nv, "add_boot");
	for (int i = 0; i < 16; i++) {
		memset(big, i, sizeof(big));
		if (nvram_set(nv, "FuzzBig", guid, 7, big, sizeof(big)) < 0)
			break;
	}
	must_reparse(nv, "set");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t image[IMAGE_BYTES];
	struct nvram *nv;
	size_t head = size < HEAD_BYTES ? size : HEAD_BYTES;
	size_t ftw = size > HEAD_BYTES ? size - HEAD_BYTES : 0;

	if (ftw > FTW_BYTES)
		ftw = FTW_BYTES;
	memset(image, 0xFF, sizeof(image));
	if (head)
		memcpy(image, data, head);
	if (ftw)
		memcpy(image + FTW_OFFSET, data + HEAD_BYTES, ftw);
	if (nvram_parse(image, sizeof(image), &nv) == 0) {
		change(nv);
		nvram_free(nv);
	}
	/* The raw input as a whole file too: other sizes, other layouts. */
	if (nvram_parse(data, size, &nv) == 0) {
		change(nv);
		nvram_free(nv);
	}
	return 0;
}
