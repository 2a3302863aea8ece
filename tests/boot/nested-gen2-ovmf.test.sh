#!/bin/sh
# QEMU with -accel kvm inside the harness boots gen2-tiny under OVMF to its marker: nested
# KVM carries the UEFI path. With KVM's in-kernel irqchip this needs the harness's CR8
# shim (README.md); the shim's "suppressed N" line says how often it fired.
. "$(dirname "$0")/lib.sh"
need_fixtures
# A hung L1 (see tests/harness/README.md, "Known hang") must fail in bounded time.
out=$(WITH_KVM_TIMEOUT=${WITH_KVM_TIMEOUT:-600} "$harness" tests/boot/qemu-boot.sh --kvm --timeout 540 uefi \
	"$fixtures/gen2-tiny.raw" raw gen2-tiny 2>&1) || fail "$out"
echo "$out"
echo "ok $test_name (mode $WITH_KVM_MODE, $(elapsed)s)"
