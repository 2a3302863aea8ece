/* tests/tools/translate_golden.c - runs gs_translate_gen2 on one configuration file for the
 * golden-file test (tests/diff/translate-golden.test.sh).
 *
 * usage: translate_golden GEN1.json [--nvram PATH] [--firmware PATH] [--disk PATH]
 *                         [--boot-disk N] [--secure-boot]
 * Prints the canonical generation 2 JSON on stdout and one warning per line on stderr;
 * on failure prints "error: MESSAGE" on stderr and exits 1. The file is parsed without a
 * base directory, so relative paths stay as written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/translate.h"
#include "vhdx/vdisk.h"

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t n = 0;

	if (f && buf)
		n = fread(buf, 1, 1 << 20, f);
	if (f)
		fclose(f);
	if (!f || !buf) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int parse_opts(int argc, char **argv, struct gs_translate_opts *o)
{
	for (int i = 2; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--secure-boot"))
			o->secure_boot = true;
		else if (next && !strcmp(argv[i], "--nvram"))
			o->nvram_path = argv[++i];
		else if (next && !strcmp(argv[i], "--firmware"))
			o->firmware_path = argv[++i];
		else if (next && !strcmp(argv[i], "--disk"))
			o->disk_path = argv[++i];
		else if (next && !strcmp(argv[i], "--boot-disk"))
			o->boot_disk = atoi(argv[++i]);
		else
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct gs_translate_opts o = { .boot_disk = -1 };
	struct gs_notes warnings = { 0 };
	struct vmcfg *gen1 = NULL, *gen2 = NULL;
	size_t len;
	char *text;

	if (argc < 2 || parse_opts(argc, argv, &o) < 0) {
		fputs("usage: translate_golden GEN1.json [--nvram PATH] [--firmware PATH] "
		      "[--disk PATH] [--boot-disk N] [--secure-boot]\n", stderr);
		return 2;
	}
	if (!(text = read_all(argv[1], &len))) {
		fprintf(stderr, "error: cannot read %s\n", argv[1]);
		return 1;
	}
	int r = vmcfg_parse(text, len, NULL, &gen1);
	free(text);
	if (r == 0)
		r = gs_translate_gen2(gen1, &o, &gen2, &warnings);
	for (size_t i = 0; i < warnings.n; i++)
		fprintf(stderr, "%s\n", warnings.lines[i]);
	char *out = r == 0 ? vmcfg_to_json(gen2) : NULL;
	if (out)
		printf("%s\n", out);
	else
		fprintf(stderr, "error: %s\n", vdisk_errmsg());
	free(out);
	gs_notes_free(&warnings);
	vmcfg_free(gen1);
	vmcfg_free(gen2);
	return r == 0 ? 0 : 1;
}
