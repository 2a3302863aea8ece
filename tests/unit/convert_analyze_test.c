/* tests/unit/convert_analyze_test.c - the guest-facts half of `genshift analyze`: each fact
 * guest_inspect can report, synthesized, gives exactly the finding (code, severity,
 * message) docs/analyze.md promises, and nothing else; fstab specs resolve to the
 * partitions libblkid found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "convert/analyze.h"

static char linux_os[] = "linux", windows_os[] = "windows", unknown[] = "unknown";
static char debian[] = "debian", x86_64[] = "x86_64", i686[] = "i686";
static char grub_cfg[] = "/boot/grub/grub.cfg";
static char spec_uuid[] = "UUID=0c8e6a52-61e1-4f0a-9d3e-67656e310001";
static char spec_partuuid[] = "PARTUUID=67656e31-01", spec_dev[] = "/dev/sda1";
static char root_mnt[] = "/", ext4[] = "ext4";

/* A healthy Debian guest: root and /boot on partition 1, GRUB 2, fstab by UUID. */
static struct guest_fstab_entry fstab_uuid[] = { { spec_uuid, root_mnt, ext4 } };

static struct guest_info healthy(void)
{
	return (struct guest_info){
		.os_type = linux_os, .distro = debian, .major = 12, .arch = x86_64,
		.root_part = 1, .boot_part = 1, .bootloader = GUEST_BOOT_GRUB2,
		.grub_cfg = grub_cfg, .n_fstab = 1, .fstab = fstab_uuid,
	};
}

static struct gs_analysis *new_analysis(void)
{
	struct gs_analysis *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->disks = calloc(1, sizeof(*a->disks));
	assert_non_null(a->disks);
	a->n_disks = 1;
	a->deep = true;
	a->generation = 1;
	a->disks[0].role = GS_DISK_BOOT;
	a->disks[0].root_part = 2; /* the structural guess, which the guest facts replace */
	a->disks[0].boot_part = 2;
	/* What libblkid found: partition 1 holds the root file system fstab_uuid names. */
	a->disks[0].parts = calloc(1, sizeof(*a->disks[0].parts));
	assert_non_null(a->disks[0].parts);
	a->disks[0].n_parts = 1;
	a->disks[0].parts[0].entry.number = 1;
	strcpy(a->disks[0].parts[0].fs.type, "ext4");
	strcpy(a->disks[0].parts[0].fs.uuid, spec_uuid + 5);
	strcpy(a->disks[0].parts[0].fs.label, "root");
	strcpy(a->disks[0].parts[0].partuuid, "67656e31-01");
	return a;
}

/* Judge gi and expect exactly one finding (code, severity, message), or none (code NULL). */
static void expect_one(const struct guest_info *gi, const char *code, enum gs_severity sev,
		       const char *message)
{
	struct gs_analysis *a = new_analysis();

	assert_int_equal(gs_analysis_judge_guest(a, 0, gi), 0);
	if (!code) {
		assert_int_equal(a->n_findings, 0);
		assert_true(gs_analysis_convertible(a));
	} else {
		assert_int_equal(a->n_findings, 1);
		assert_string_equal(a->findings[0].code, code);
		assert_int_equal(a->findings[0].severity, sev);
		assert_int_equal(a->findings[0].disk, 0);
		assert_string_equal(a->findings[0].message, message);
		assert_int_equal(gs_analysis_convertible(a), sev == GS_SEV_WARNING);
	}
	gs_analysis_free(a);
}

static void test_healthy_guest(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	struct gs_analysis *a = new_analysis();

	assert_int_equal(gs_analysis_judge_guest(a, 0, &gi), 0);
	assert_int_equal(a->n_findings, 0);
	assert_int_equal(a->disks[0].root_part, 1);
	assert_int_equal(a->disks[0].boot_part, 1);
	assert_true(a->disks[0].root_from_guest);
	gs_analysis_free(a);
}

static void test_32bit(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.arch = i686;
	expect_one(&gi, "GUEST_32BIT", GS_SEV_BLOCKER,
		   "the guest is 32-bit (i686); generation 2 firmware is 64-bit UEFI, which boots "
		   "only 64-bit kernels");
}

static void test_syslinux(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.bootloader = GUEST_BOOT_SYSLINUX;
	expect_one(&gi, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER,
		   "the guest boots with SYSLINUX/EXTLINUX: genshift can provide a UEFI path only "
		   "for GRUB 2 guests");
}

static void test_grub_legacy(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.bootloader = GUEST_BOOT_GRUB_LEGACY;
	expect_one(&gi, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER,
		   "the guest boots with GRUB legacy (menu.lst): genshift can provide a UEFI path "
		   "only for GRUB 2 guests");
}

static void test_no_bootloader(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.bootloader = GUEST_BOOT_UNKNOWN;
	expect_one(&gi, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER,
		   "no GRUB 2 configuration was found in the guest: genshift can provide a UEFI "
		   "path only for GRUB 2 guests");
}

static void test_bls(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.grub_bls = true;
	expect_one(&gi, "BLS_CONFIG", GS_SEV_BLOCKER,
		   "grub.cfg uses blscfg (Boot Loader Specification entries, RHEL/Fedora); the "
		   "GRUB EFI image genshift installs has no blscfg module, so it could not read "
		   "the boot entries");
}

static void test_encrypted(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.root_encrypted = true;
	gi.root_part = 0;
	expect_one(&gi, "ENCRYPTED_ROOT", GS_SEV_BLOCKER,
		   "the root file system is encrypted; genshift cannot open it to fix fstab and "
		   "grub.cfg");
}

static void test_no_os(void **state)
{
	(void)state;
	struct guest_info gi = { .os_type = unknown, .arch = unknown };
	expect_one(&gi, "NO_OS_FOUND", GS_SEV_BLOCKER,
		   "guest inspection found no operating system and no root file system on the "
		   "disk");
}

static void test_unrecognised_distro(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.os_type = unknown;
	gi.distro = unknown;
	gi.arch = unknown;
	expect_one(&gi, "OS_NOT_RECOGNIZED", GS_SEV_WARNING,
		   "libguestfs did not recognise the distribution; the root file system was found "
		   "through its /etc/fstab");
}

static void test_windows(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.os_type = windows_os;
	expect_one(&gi, "UNSUPPORTED_OS", GS_SEV_BLOCKER,
		   "the guest runs windows; genshift converts Linux guests only");
}

static void test_lvm_root(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	gi.root_on_lvm = true;
	gi.root_part = 0;
	expect_one(&gi, "LVM_ROOT", GS_SEV_WARNING,
		   "the root file system is on LVM; the conversion keeps it where it is and GRUB "
		   "reads LVM, but it is less tested than a plain partition");
}

static void test_partuuid_fstab(void **state)
{
	(void)state;
	struct guest_fstab_entry e[] = { { spec_partuuid, root_mnt, ext4 } };
	struct guest_info gi = healthy();
	gi.fstab = e;
	expect_one(&gi, "PARTUUID_REFERENCES", GS_SEV_WARNING,
		   "fstab names partitions by PARTUUID, which changes with the GPT; the conversion "
		   "rewrites those entries");
}

static void test_device_fstab(void **state)
{
	(void)state;
	struct guest_fstab_entry e[] = { { spec_dev, root_mnt, ext4 } };
	struct guest_info gi = healthy();
	gi.fstab = e;
	expect_one(&gi, "DEVICE_NAME_REFERENCES", GS_SEV_WARNING,
		   "fstab names devices by /dev path, which a new bus may change; the conversion "
		   "rewrites them to UUID=");
}

static void test_fstab_other_disk(void **state)
{
	(void)state;
	static char spec[] = "UUID=7a1d5e0c-0000-4000-8000-000000000002", home[] = "/home";
	struct guest_fstab_entry e[] = { fstab_uuid[0], { spec, home, ext4 } };
	struct guest_info gi = healthy();
	gi.fstab = e;
	gi.n_fstab = 2;
	expect_one(&gi, "FSTAB_UNRESOLVED", GS_SEV_WARNING,
		   "fstab entry UUID=7a1d5e0c-0000-4000-8000-000000000002 (/home) names no "
		   "partition of this disk: it must be on another disk of the VM, which the "
		   "conversion leaves as it is");
}

static void test_fstab_resolution(void **state)
{
	(void)state;
	struct gs_analysis *a = new_analysis();
	const struct gs_disk *d = &a->disks[0];

	assert_int_equal(gs_disk_fstab_partition(d, "UUID=0C8E6A52-61E1-4F0A-9D3E-67656E310001"), 1);
	assert_int_equal(gs_disk_fstab_partition(d, "LABEL=root"), 1);
	assert_int_equal(gs_disk_fstab_partition(d, "LABEL=ROOT"), 0); /* labels keep case */
	assert_int_equal(gs_disk_fstab_partition(d, "PARTUUID=67656e31-01"), 1);
	assert_int_equal(gs_disk_fstab_partition(d, "/dev/vda1"), 1);
	assert_int_equal(gs_disk_fstab_partition(d, "/dev/xvda1"), 1);
	assert_int_equal(gs_disk_fstab_partition(d, "/dev/sdb1"), 0);  /* another disk */
	assert_int_equal(gs_disk_fstab_partition(d, "/dev/sda10"), 0); /* not partition 1 */
	assert_int_equal(gs_disk_fstab_partition(d, "/dev/sda1x"), 0);
	assert_int_equal(gs_disk_fstab_partition(d, "UUID="), 0);
	assert_int_equal(gs_disk_fstab_partition(d, "tmpfs"), 0);
	gs_analysis_free(a);
}

/* The structural pass already refused SYSLINUX by its MBR code: no second finding. */
static void test_no_duplicate(void **state)
{
	(void)state;
	struct guest_info gi = healthy();
	struct gs_analysis *a = new_analysis();

	gi.bootloader = GUEST_BOOT_SYSLINUX;
	assert_int_equal(gs_analysis_add(a, "BIOS_ONLY_BOOTLOADER", GS_SEV_BLOCKER, 0, "mbr"), 0);
	assert_int_equal(gs_analysis_judge_guest(a, 0, &gi), 0);
	assert_int_equal(a->n_findings, 1);
	assert_false(gs_analysis_convertible(a));
	gs_analysis_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy_guest),
		cmocka_unit_test(test_32bit),
		cmocka_unit_test(test_syslinux),
		cmocka_unit_test(test_grub_legacy),
		cmocka_unit_test(test_no_bootloader),
		cmocka_unit_test(test_bls),
		cmocka_unit_test(test_encrypted),
		cmocka_unit_test(test_no_os),
		cmocka_unit_test(test_unrecognised_distro),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_lvm_root),
		cmocka_unit_test(test_partuuid_fstab),
		cmocka_unit_test(test_device_fstab),
		cmocka_unit_test(test_fstab_other_disk),
		cmocka_unit_test(test_fstab_resolution),
		cmocka_unit_test(test_no_duplicate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
