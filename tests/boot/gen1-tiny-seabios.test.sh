#!/bin/sh
# gen1-tiny boots under SeaBIOS (QEMU TCG) from each of its three containers: raw, VHD
# (QEMU's vpc driver) and VHDX, to "GENSHIFT-BOOT-OK firmware=bios fixture=gen1-tiny".
. "$(dirname "$0")/lib.sh"
need_fixtures
for f in raw:raw vhd:vpc vhdx:vhdx; do
	ext=${f%%:*}
	out=$(tests/boot/qemu-boot.sh bios "$fixtures/gen1-tiny.$ext" "${f#*:}" gen1-tiny) ||
		fail "$(echo "$out" | head -n 1)$(echo; echo "$out" | tail -n +2)"
	echo "$out"
done
echo "ok $test_name ($(elapsed)s)"
