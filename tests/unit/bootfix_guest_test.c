/* tests/unit/bootfix_guest_test.c - the text half of bootfix/guest.c (guest-edit.c): fstab
 * parsing as hostile input, reference remapping, fstab and kernel command line rewriting,
 * grub.cfg facts. One case per rule or corruption; no libguestfs launch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bootfix/guest-int.h"
#include "include/hostkvm.h"

#define ROOT_UUID "0c8e6a52-61e1-4f0a-9d3e-67656e310001"
#define SWAP_UUID "0c8e6a52-61e1-4f0a-9d3e-67656e310005"
#define NEW_PARTUUID "6e1a1a57-0d4c-4f1b-9d7e-1a2b3c4d5e6f"

static const char *const old_partuuids[] = { "67656e31-01" };
static const char *const new_partuuids[] = { NEW_PARTUUID };

static void remap_init(struct guest_remap *m)
{
	memset(m, 0, sizeof(*m));
	m->fs_uuid[1] = ROOT_UUID;
	m->fs_uuid[5] = SWAP_UUID;
	m->n_partuuids = 1;
	m->partuuid_old = old_partuuids;
	m->partuuid_new = new_partuuids;
}

static void report_free(struct guest_fix_report *r)
{
	for (size_t i = 0; i < r->n_changes; i++)
		free(r->changes[i]);
	free(r->changes);
}

/* ---- guest_fstab_parse ---- */

static void test_parse_fields_comments_tabs(void **state)
{
	const char *t = "# /etc/fstab\n\n  \t\nUUID=abc\t/\text4 defaults 0 1\n"
			"   # indented comment\n/dev/sda5 none   swap sw 0 0\r\nLABEL=x";
	struct guest_fstab_entry *e;
	size_t n;
	(void)state;
	assert_int_equal(guest_fstab_parse(t, strlen(t), &e, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(e[0].spec, "UUID=abc");
	assert_string_equal(e[0].mountpoint, "/");
	assert_string_equal(e[0].fstype, "ext4");
	assert_string_equal(e[1].spec, "/dev/sda5");
	assert_string_equal(e[1].fstype, "swap");
	assert_string_equal(e[2].spec, "LABEL=x");  /* missing fields: "" */
	assert_string_equal(e[2].mountpoint, "");
	assert_string_equal(e[2].fstype, "");
	guest_fstab_free(e, n);
}

static void test_parse_rejects_nul(void **state)
{
	const char t[] = "UUID=a / ext4\n\0/dev/sda1 /x ext4\n";
	struct guest_fstab_entry *e = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(guest_fstab_parse(t, sizeof(t) - 1, &e, &n), -EINVAL);
	assert_null(e);
}

static void test_parse_caps_entries(void **state)
{
	size_t lines = GUEST_FSTAB_MAX_ENTRIES + 1, n = 0;
	char *t = malloc(lines * 4 + 1), *p = t;
	struct guest_fstab_entry *e = NULL;
	(void)state;
	for (size_t i = 0; i < lines; i++, p += 4)
		memcpy(p, "a b\n", 4);
	assert_int_equal(guest_fstab_parse(t, lines * 4, &e, &n), -EINVAL);
	assert_int_equal(guest_fstab_parse(t, (lines - 1) * 4, &e, &n), 0);
	assert_int_equal(n, GUEST_FSTAB_MAX_ENTRIES);
	guest_fstab_free(e, n);
	free(t);
}

static void test_parse_caps_size(void **state)
{
	struct guest_fstab_entry *e = NULL;
	size_t n = 0;
	char *t = calloc(1, GUEST_FSTAB_MAX_BYTES + 1);
	(void)state;
	memset(t, '#', GUEST_FSTAB_MAX_BYTES + 1);
	assert_int_equal(guest_fstab_parse(t, GUEST_FSTAB_MAX_BYTES + 1, &e, &n), -EINVAL);
	assert_int_equal(guest_fstab_parse(t, GUEST_FSTAB_MAX_BYTES, &e, &n), 0);
	assert_int_equal(n, 0);
	free(e);
	free(t);
}

/* ---- guest_remap_spec ---- */

static void expect_remap(const char *spec, const char *want)
{
	struct guest_remap m;
	char *out = NULL;
	remap_init(&m);
	assert_int_equal(guest_remap_spec(&m, spec, strlen(spec), &out), want ? 1 : 0);
	if (want)
		assert_string_equal(out, want);
	free(out);
}

static void test_remap_device_names(void **state)
{
	(void)state;
	expect_remap("/dev/sda1", "UUID=" ROOT_UUID);
	expect_remap("/dev/hda1", "UUID=" ROOT_UUID);
	expect_remap("/dev/vda5", "UUID=" SWAP_UUID);
	expect_remap("/dev/xvda5", "UUID=" SWAP_UUID);
}

static void test_remap_leaves_others(void **state)
{
	(void)state;
	expect_remap("/dev/sdb1", NULL);    /* another disk */
	expect_remap("/dev/sda2", NULL);    /* no file system UUID known */
	expect_remap("/dev/sda", NULL);     /* the whole disk */
	expect_remap("/dev/sda01", NULL);   /* not a kernel name */
	expect_remap("/dev/sda1x", NULL);
	expect_remap("/dev/sda129", NULL);  /* past GUEST_MAX_PARTS */
	expect_remap("/dev/sda99999999999", NULL);
	expect_remap("UUID=" ROOT_UUID, NULL);
	expect_remap("LABEL=root", NULL);
	expect_remap("PARTUUID=67656e31-02", NULL);
	expect_remap("/dev/mapper/vg-root", NULL);
}

static void test_remap_partuuid(void **state)
{
	(void)state;
	expect_remap("PARTUUID=67656e31-01", "PARTUUID=" NEW_PARTUUID);
	expect_remap("PARTUUID=67656E31-01", "PARTUUID=" NEW_PARTUUID);
	expect_remap("/dev/disk/by-partuuid/67656e31-01", "/dev/disk/by-partuuid/" NEW_PARTUUID);
	expect_remap("PARTUUID=", NULL);
}

/* ---- guest_fstab_edit ---- */

static void expect_fstab(const char *in, const char *esp, const char *want, size_t changes)
{
	struct guest_remap m;
	struct guest_fix_report r = { 0 };
	char *out = NULL;
	size_t bytes = 0;
	remap_init(&m);
	assert_int_equal(guest_fstab_edit("/etc/fstab", in, strlen(in), &m, esp, &r, &out, &bytes),
			 0);
	assert_string_equal(out, want);
	assert_int_equal(bytes, strlen(want));
	assert_int_equal(r.n_changes, changes);
	free(out);
	report_free(&r);
}

static void test_fstab_rewrites_and_adds_esp(void **state)
{
	(void)state;
	expect_fstab("# comment /dev/sda1\n/dev/sda1\t/  ext4 errors=remount-ro 0 1\n"
		     "  /dev/sda5 none swap sw 0 0\nPARTUUID=67656e31-01 /srv ext4 noauto 0 0\n",
		     "4745-4E31",
		     "# comment /dev/sda1\nUUID=" ROOT_UUID "\t/  ext4 errors=remount-ro 0 1\n"
		     "  UUID=" SWAP_UUID " none swap sw 0 0\nPARTUUID=" NEW_PARTUUID
		     " /srv ext4 noauto 0 0\nUUID=4745-4E31 /boot/efi vfat umask=0077,nofail 0 1\n",
		     4);
}

static void test_fstab_keeps_existing_esp_line(void **state)
{
	(void)state;
	expect_fstab("UUID=a / ext4 defaults 0 1\nUUID=1234-5678 /boot/efi/ vfat defaults 0 1",
		     "4745-4E31",
		     "UUID=a / ext4 defaults 0 1\nUUID=1234-5678 /boot/efi/ vfat defaults 0 1", 0);
}

static void test_fstab_no_newline_at_end(void **state)
{
	(void)state;
	expect_fstab("/dev/sdb1 /data ext4 defaults 0 2", "ABCD-0123",
		     "/dev/sdb1 /data ext4 defaults 0 2\n"
		     "UUID=ABCD-0123 /boot/efi vfat umask=0077,nofail 0 1\n", 1);
}

static void test_fstab_report_lines(void **state)
{
	const char *in = "/dev/sda1 / ext4 defaults 0 1\n";
	struct guest_remap m;
	struct guest_fix_report r = { 0 };
	char *out = NULL;
	size_t bytes;
	(void)state;
	remap_init(&m);
	assert_int_equal(guest_fstab_edit("/etc/fstab", in, strlen(in), &m, "4745-4E31", &r, &out,
					  &bytes), 0);
	assert_int_equal(r.n_changes, 2);
	assert_string_equal(r.changes[0], "/etc/fstab: /dev/sda1 -> UUID=" ROOT_UUID);
	assert_string_equal(r.changes[1],
			    "/etc/fstab: added UUID=4745-4E31 /boot/efi vfat umask=0077,nofail 0 1");
	free(out);
	report_free(&r);
}

/* ---- guest_cmdline_edit ---- */

static void expect_cmdline(const char *in, const char *want, size_t changes)
{
	struct guest_remap m;
	struct guest_fix_report r = { 0 };
	char *out = NULL;
	size_t bytes = 0;
	remap_init(&m);
	assert_int_equal(guest_cmdline_edit("grub.cfg", in, strlen(in), &m, &r, &out, &bytes), 0);
	assert_string_equal(out, want);
	assert_int_equal(r.n_changes, changes);
	free(out);
	report_free(&r);
}

static void test_cmdline_root_resume(void **state)
{
	(void)state;
	expect_cmdline("\tlinux /vmlinuz root=/dev/sda1 ro resume=/dev/sda5\n"
		       "\tlinux /vmlinuz root=/dev/sda1 ro single\n",
		       "\tlinux /vmlinuz root=UUID=" ROOT_UUID " ro resume=UUID=" SWAP_UUID "\n"
		       "\tlinux /vmlinuz root=UUID=" ROOT_UUID " ro single\n",
		       2 /* the repeated root= is one report line */);
}

static void test_cmdline_quoted_and_partuuid(void **state)
{
	(void)state;
	expect_cmdline("GRUB_CMDLINE_LINUX=\"root=PARTUUID=67656e31-01 quiet\"\n",
		       "GRUB_CMDLINE_LINUX=\"root=PARTUUID=" NEW_PARTUUID " quiet\"\n", 1);
}

static void test_cmdline_leaves_grub_variables(void **state)
{
	const char *t = "set root='hd0,msdos1'\nsearch --set=root x\nreal_root=/dev/sda1\n"
			"linux /v root=/dev/sdb1 myroot=/dev/sda1\nroot=\n";
	(void)state;
	expect_cmdline(t, t, 0);
}

/* ---- guest_grub_cfg_scan ---- */

static void expect_scan(const char *t, bool bls, bool l16)
{
	bool b = !bls, l = !l16;
	guest_grub_cfg_scan(t, strlen(t), &b, &l);
	assert_int_equal(b, bls);
	assert_int_equal(l, l16);
}

static void test_grub_scan(void **state)
{
	(void)state;
	expect_scan("insmod blscfg\nblscfg\n", true, false);
	expect_scan("# blscfg is not used here\n\tlinux /v root=x\n", false, false);
	expect_scan("menuentry x {\n\tlinux16 /v\n\tinitrd16 /i\n}\n", false, true);
	expect_scan("\t# linux16 /v\necho linux16\n", false, false);
	expect_scan("  initrd16 /i", false, true);
}

/* ---- include/hostkvm.h: whole words of the cpuinfo flags line ---- */

static void test_hostkvm_flags(void **state)
{
	(void)state;
	assert_true(hostkvm_flags_have("flags\t\t: fpu vme svm lahf_lm\n", "svm"));
	assert_true(hostkvm_flags_have("flags\t\t: fpu vmx\n", "vmx"));
	assert_false(hostkvm_flags_have("flags\t\t: fpu svm_lock nrip_save\n", "svm"));
	assert_false(hostkvm_flags_have("flags\t\t: fpu vmx_ept\n", "vmx"));
	assert_false(hostkvm_flags_have("flags\t\t: fpu xsvm\n", "svm"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields_comments_tabs),
		cmocka_unit_test(test_parse_rejects_nul),
		cmocka_unit_test(test_parse_caps_entries),
		cmocka_unit_test(test_parse_caps_size),
		cmocka_unit_test(test_remap_device_names),
		cmocka_unit_test(test_remap_leaves_others),
		cmocka_unit_test(test_remap_partuuid),
		cmocka_unit_test(test_fstab_rewrites_and_adds_esp),
		cmocka_unit_test(test_fstab_keeps_existing_esp_line),
		cmocka_unit_test(test_fstab_no_newline_at_end),
		cmocka_unit_test(test_fstab_report_lines),
		cmocka_unit_test(test_cmdline_root_resume),
		cmocka_unit_test(test_cmdline_quoted_and_partuuid),
		cmocka_unit_test(test_cmdline_leaves_grub_variables),
		cmocka_unit_test(test_grub_scan),
		cmocka_unit_test(test_hostkvm_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
