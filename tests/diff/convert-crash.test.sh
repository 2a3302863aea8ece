#!/bin/sh
# convert-crash: a conversion killed at any point leaves the source untouched and the
# output directory either without NAME's files (only .NAME.tmp-* leftovers, which the next
# run removes) or with a complete, valid output. Crashes are injected after every step
# (GENSHIFT_FAULT_AFTER_STEP=N: 1 disk, 2 GPT, 3 ESP, 4 guest, 5 NVRAM, 6 config; 100-103
# between the renames of the commit) and by kill -9 at random moments.
. "$(dirname "$0")/convert-lib.sh"

src=$(fixture gen1-tiny.vhdx)
before=$(sha256sum <"$src")
out=$work/out

# Checks the directory after an interrupted run, then lets a clean run finish and judges it.
after_crash() { # label
	[ "$(sha256sum <"$src")" = "$before" ] || fail "$1: the source changed"
	if [ -e "$out/gen1-tiny.json" ] && [ "$(leftovers "$out" gen1-tiny)" = 0 ]; then
		check_output "$out" gen1-tiny quick
		echo "$1: complete output"
	else
		[ "$(leftovers "$out" gen1-tiny)" -gt 0 ] || [ ! -e "$out" ] ||
			[ -z "$(ls -A "$out")" ] || fail "$1: partial output without a temporary marker: $(ls -A "$out")"
		"$GENSHIFT" convert "$src" --out "$out" --no-guest >"$work/rerun.log" 2>&1 ||
			fail "$1: the run after the crash failed: $(tail -n 3 "$work/rerun.log")"
		check_output "$out" gen1-tiny quick
		echo "$1: leftovers removed by the next run, which completed"
	fi
	rm -rf "$out"
}

for step in 1 2 3 4 5 6 100 101 102 103; do
	rc=0
	GENSHIFT_FAULT_AFTER_STEP=$step "$GENSHIFT" convert "$src" --out "$out" --no-guest \
		>"$work/fault.log" 2>&1 || rc=$?
	[ "$rc" = 99 ] || fail "fault after step $step: exit $rc, not the injected 99 ($(tail -n 2 "$work/fault.log"))"
	if [ "$step" -lt 100 ]; then
		no_output "$out" gen1-tiny
		[ "$(leftovers "$out" gen1-tiny)" -gt 0 ] || fail "step $step: no temporary marker"
	fi
	after_crash "fault after step $step"
done

# kill -9 at random moments of a whole run (a run takes ~0.3 s here: spread over 0-0.4 s).
for i in 1 2 3 4 5 6; do
	"$GENSHIFT" convert "$src" --out "$out" --no-guest >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(shuf -i 0-40 -n 1 | xargs printf '%02d')"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	after_crash "kill -9 #$i"
done

# A second run beside a complete output refuses rather than replacing it.
"$GENSHIFT" convert "$src" --out "$out" --no-guest >/dev/null 2>&1 || fail "plain run failed"
if "$GENSHIFT" convert "$src" --out "$out" --no-guest >"$work/again.log" 2>&1; then
	fail "a second conversion into the same names succeeded"
fi
grep -q 'exists: choose another --out or --name' "$work/again.log" || fail "$(cat "$work/again.log")"
check_output "$out" gen1-tiny
echo "convert-crash: every interruption left the source intact and no partial output"
