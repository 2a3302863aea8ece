#!/bin/sh
# gen1-tiny boots under SeaBIOS (QEMU TCG) from each of its three containers: raw (on
# IDE, as a Hyper-V generation 1 disk sits), VHD (QEMU's vpc driver) and VHDX (both on
# virtio-blk, the VMM's disk), to "GENSHIFT-BOOT-OK firmware=bios fixture=gen1-tiny".
. "$(dirname "$0")/lib.sh"
need_fixtures
for f in raw:raw:ide vhd:vpc:virtio vhdx:vhdx:virtio; do
	ext=${f%%:*}
	fmt=${f#*:}
	out=$(tests/boot/qemu-boot.sh --if "${fmt#*:}" bios "$fixtures/gen1-tiny.$ext" "${fmt%:*}" gen1-tiny) ||
		fail "$(echo "$out" | head -n 1)$(echo; echo "$out" | tail -n +2)"
	echo "$out"
done
echo "ok $test_name ($(elapsed)s)"
