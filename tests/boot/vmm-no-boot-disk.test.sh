#!/bin/sh
# tests/boot/vmm-no-boot-disk.test.sh - a disk without a bootable MBR gives a clear verify
# result rather than a hang: "not matched" (exit 3) on the timeout, the JSON says timeout,
# and SeaBIOS's own complaint is in the captured serial output.
. "$(dirname "$0")/vmm-lib.sh"
truncate -s 8M "$work/blank.raw"
rc=0
"$GENSHIFT" verify --disk "$work/blank.raw" --expect 'GENSHIFT-BOOT-OK' --timeout 15 --json \
	--serial-log "$work/blank-serial.log" --accel "${VMM_ACCEL:-auto}" \
	>"$work/blank.json" 2>"$work/blank-stderr.log" || rc=$?
cat "$work/blank.json"
[ "$rc" -eq 3 ] || fail "verify exit $rc, expected 3 (not matched)"
[ "$(json_field "$work/blank.json" matched)" = false ] || fail "matched a blank disk?"
[ "$(json_field "$work/blank.json" exit_reason)" = timeout ] || fail "exit reason"
grep -q 'No bootable device' "$work/blank-serial.log" ||
	fail "SeaBIOS's 'No bootable device' is not in the serial log"
echo "blank disk: timeout, SeaBIOS said: $(grep -o 'No bootable device[^.]*' "$work/blank-serial.log" | head -n 1)"
