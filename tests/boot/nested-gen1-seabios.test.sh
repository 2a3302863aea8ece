#!/bin/sh
# QEMU with -accel kvm inside the harness boots gen1-tiny under SeaBIOS to its marker:
# nested KVM carries the BIOS path our VMM will rely on.
. "$(dirname "$0")/lib.sh"
need_fixtures
# A hung L1 (see tests/harness/README.md, "Known hang") must fail in bounded time.
out=$(WITH_KVM_TIMEOUT=${WITH_KVM_TIMEOUT:-480} "$harness" tests/boot/qemu-boot.sh --kvm --timeout 420 bios \
	"$fixtures/gen1-tiny.raw" raw gen1-tiny 2>&1) || fail "$out"
echo "$out"
echo "ok $test_name (mode $WITH_KVM_MODE, $(elapsed)s)"
