#!/bin/sh
# QEMU with -accel kvm inside the harness boots gen1-tiny under SeaBIOS to its marker:
# nested KVM carries the BIOS path our VMM will rely on.
. "$(dirname "$0")/lib.sh"
need_fixtures
out=$("$harness" tests/boot/qemu-boot.sh --kvm --timeout 600 bios \
	"$fixtures/gen1-tiny.raw" raw gen1-tiny 2>&1) || fail "$out"
echo "$out"
echo "ok $test_name (mode $WITH_KVM_MODE, $(elapsed)s)"
