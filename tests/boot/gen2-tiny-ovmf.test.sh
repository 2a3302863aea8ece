#!/bin/sh
# gen2-tiny (GPT + FAT32 ESP, \EFI\BOOT\BOOTX64.EFI), raw and VHDX, boots under OVMF
# (QEMU TCG, pc machine, virtio-blk) to "GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny":
# the known-good gen 2 reference.
. "$(dirname "$0")/lib.sh"
need_fixtures
for f in raw:raw vhdx:vhdx; do
	out=$(tests/boot/qemu-boot.sh uefi "$fixtures/gen2-tiny.${f%%:*}" "${f#*:}" gen2-tiny) ||
		fail "$out"
	echo "$out"
done
echo "ok $test_name ($(elapsed)s)"
