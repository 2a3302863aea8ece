/* tests/unit/vmm_vmcfg_test.c - the VM configuration parser against the golden files in
 * tests/vmcfg/: NAME.json must give exactly NAME.expected, which is either the canonical
 * JSON (and that canonical text must parse back to itself: the format round-trips) or
 * "error: <message>". Plus the size/nesting caps and vmcfg_new_simple. Run from the
 * repository root (tests/run-all.sh does). Set VMCFG_UPDATE=1 to rewrite .expected files. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vhdx/vdisk.h"
#include "vmm/vmm.h"

#define GOLDEN_DIR "tests/vmcfg"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* What a golden file's parse produces, as text. */
static char *outcome(const char *text, size_t len)
{
	struct vmcfg *cfg;
	char *out;
	if (vmcfg_parse(text, len, NULL, &cfg) < 0) {
		size_t n = strlen(vdisk_errmsg()) + 16;
		out = malloc(n);
		snprintf(out, n, "error: %s\n", vdisk_errmsg());
		return out;
	}
	char *json = vmcfg_to_json(cfg);
	vmcfg_free(cfg);
	assert_non_null(json);
	size_t n = strlen(json) + 2;
	out = malloc(n);
	snprintf(out, n, "%s\n", json);
	free(json);
	return out;
}

static void check_golden(const char *name)
{
	char path[512], exp_path[512];
	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	snprintf(exp_path, sizeof(exp_path), "%s/%.*s.expected", GOLDEN_DIR,
		 (int)(strlen(name) - 5), name);
	size_t len;
	char *text = slurp(path, &len);
	assert_non_null(text);
	char *got = outcome(text, len);
	if (getenv("VMCFG_UPDATE")) {
		FILE *f = fopen(exp_path, "w");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	char *want = slurp(exp_path, NULL);
	if (!want)
		fail_msg("%s: no %s", name, exp_path);
	if (strcmp(got, want))
		fail_msg("%s:\n--- expected\n%s--- got\n%s", name, want, got);
	/* Canonical output parses back to the same canonical output. */
	if (strncmp(got, "error: ", 7)) {
		char *again = outcome(got, strlen(got));
		assert_string_equal(again, got);
		free(again);
	}
	free(want);
	free(got);
	free(text);
}

static void test_golden_files(void **state)
{
	(void)state;
	DIR *d = opendir(GOLDEN_DIR);
	if (!d)
		fail_msg("cannot open %s (run from the repository root)", GOLDEN_DIR);
	unsigned n = 0, errors = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".json"))
			continue;
		check_golden(e->d_name);
		n++;
		errors += !strncmp(e->d_name, "err-", 4);
	}
	closedir(d);
	assert_true(n >= 10);
	assert_true(errors >= 8);
}

static void test_caps(void **state)
{
	(void)state;
	struct vmcfg *cfg;
	/* Nesting past the tokenizer's depth cap. */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_int_equal(vmcfg_parse(deep, sizeof(deep), NULL, &cfg), -EINVAL);
	/* 17 disks: one more than the cap. */
	char big[4096] = "{\"format\":\"genshift-vmcfg\",\"version\":1,\"generation\":1,\"disks\":[";
	for (int i = 0; i < VMCFG_MAX_DISKS + 1; i++)
		strcat(big, i ? ",{\"path\":\"d\"}" : "{\"path\":\"d\"}");
	strcat(big, "]}");
	assert_int_equal(vmcfg_parse(big, strlen(big), NULL, &cfg), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "at most 16"));
	/* Embedded NUL in a string. */
	const char nul[] = "{\"format\":\"genshift-vmcfg\",\"version\":1,\"generation\":1,"
			   "\"name\":\"a\\u0000b\"}";
	assert_int_equal(vmcfg_parse(nul, strlen(nul), NULL, &cfg), -EINVAL);
	/* Too large a document. */
	assert_int_equal(vmcfg_parse(big, (2u << 20), NULL, &cfg), -EFBIG);
	assert_int_equal(vmcfg_parse("", 0, NULL, &cfg), -EINVAL);
}

static void test_relative_paths_and_simple(void **state)
{
	(void)state;
	struct vmcfg *cfg;
	const char doc[] = "{\"format\":\"genshift-vmcfg\",\"version\":1,\"generation\":1,"
			   "\"disks\":[{\"path\":\"a.vhdx\"},{\"path\":\"/abs.raw\"}]}";
	assert_int_equal(vmcfg_parse(doc, strlen(doc), "/vms/x", &cfg), 0);
	assert_string_equal(cfg->disks[0].path, "/vms/x/a.vhdx");
	assert_string_equal(cfg->disks[1].path, "/abs.raw");
	assert_int_equal(cfg->n_boot, 1); /* defaults to the first disk */
	assert_int_equal(cfg->memory_bytes, 512u << 20);
	vmcfg_free(cfg);
	assert_int_equal(vmcfg_new_simple(1, "d.raw", &cfg), 0);
	assert_int_equal(cfg->firmware, VMCFG_FW_BIOS);
	assert_int_equal(cfg->cpus, 1);
	vmcfg_free(cfg);
	assert_int_equal(vmcfg_new_simple(3, "d.raw", &cfg), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_files),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_relative_paths_and_simple),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
