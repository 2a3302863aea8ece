#!/bin/sh
# The nested-KVM harness gives a command a working /dev/kvm: `with-kvm ls -l /dev/kvm`
# shows the device, the project's kvm-smoke (a real-mode guest that writes to a port and
# halts, driven by raw KVM ioctls) passes, and the command's exit status comes back.
# Runs in nested mode (TCG L1) even where /dev/kvm exists, unless WITH_KVM_MODE says so.
. "$(dirname "$0")/lib.sh"
smoke="$build/harness/kvm-smoke"
need_file "$smoke" "make harness"
out=$(WITH_KVM_TIMEOUT=${WITH_KVM_TIMEOUT:-180} "$harness" sh -c "ls -l /dev/kvm && '$smoke' && exit 3" 2>&1) && rc=0 || rc=$?
echo "$out"
[ "$rc" = 3 ] || fail "expected exit status 3 back through the harness, got $rc"
echo "$out" | grep -q '^c.* /dev/kvm$' || fail "ls -l /dev/kvm printed no character device"
echo "$out" | grep -q '^kvm-smoke: ok' || fail "kvm-smoke did not pass under the harness"
echo "ok $test_name (mode $WITH_KVM_MODE, $(elapsed)s)"
