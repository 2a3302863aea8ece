/* tests/fuzz/fuzz_guest_text.c - libFuzzer target for bootfix/guest-edit.c, the parsers and
 * rewriters of the guest's fstab, grub.cfg and /etc/default/grub. The input is the file's
 * text. Besides crashes and sanitizer reports it checks what the rewriters promise: with no
 * change reported, the output is the input byte for byte; every reported change leaves the
 * output different from the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix/guest-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const old_partuuids[] = { "67656e31-01", "67656e31-05" };
static const char *const new_partuuids[] = { "6e1a1a57-0d4c-4f1b-9d7e-1a2b3c4d5e6f",
					     "0c8e6a52-61e1-4f0a-9d3e-67656e310005" };

static void report_clear(struct guest_fix_report *r)
{
	for (size_t i = 0; i < r->n_changes; i++)
		free(r->changes[i]);
	free(r->changes);
	memset(r, 0, sizeof(*r));
}

/* An edit's promise: unchanged text when nothing was reported. */
static void check_edit(int rc, const char *in, size_t in_bytes, char *out, size_t out_bytes,
		       struct guest_fix_report *r)
{
	if (rc < 0) {
		report_clear(r);
		return;
	}
	if (r->n_changes == 0 && (out_bytes != in_bytes || memcmp(out, in, in_bytes)))
		abort();
	if (r->n_changes > 0 && out_bytes == in_bytes && !memcmp(out, in, in_bytes))
		abort();
	if (strlen(out) != out_bytes)
		abort();
	free(out);
	report_clear(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct guest_remap m = { .n_partuuids = 2, .partuuid_old = old_partuuids,
				 .partuuid_new = new_partuuids };
	struct guest_fix_report r = { 0 };
	struct guest_fstab_entry *e;
	char *out = NULL;
	size_t n, out_bytes = 0;
	bool bls, l16;
	int rc;
	m.fs_uuid[1] = "0c8e6a52-61e1-4f0a-9d3e-67656e310001";
	m.fs_uuid[5] = "0c8e6a52-61e1-4f0a-9d3e-67656e310005";
	m.fs_uuid[128] = "4745-4E31";
	if (guest_fstab_parse(text, size, &e, &n) == 0)
		guest_fstab_free(e, n);
	rc = guest_fstab_edit("/etc/fstab", text, size, &m, NULL, &r, &out, &out_bytes);
	check_edit(rc, text, size, out, out_bytes, &r);
	rc = guest_fstab_edit("/etc/fstab", text, size, &m, "4745-4E31", &r, &out, &out_bytes);
	if (rc == 0) {
		free(out);
		report_clear(&r);
	}
	rc = guest_cmdline_edit("grub.cfg", text, size, &m, &r, &out, &out_bytes);
	check_edit(rc, text, size, out, out_bytes, &r);
	guest_grub_cfg_scan(text, size, &bls, &l16);
	report_clear(&r);
	return 0;
}
