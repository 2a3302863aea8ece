#!/bin/sh
# gen1-syslinux (the second BIOS boot path: SYSLINUX on a FAT16 /boot) boots under
# SeaBIOS (QEMU TCG) to "GENSHIFT-BOOT-OK firmware=bios fixture=gen1-syslinux".
. "$(dirname "$0")/lib.sh"
need_fixtures
out=$(tests/boot/qemu-boot.sh bios "$fixtures/gen1-syslinux.raw" raw gen1-syslinux) ||
	fail "$out"
echo "$out"
echo "ok $test_name ($(elapsed)s)"
