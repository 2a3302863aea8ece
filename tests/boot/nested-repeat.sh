#!/bin/sh
# nested-repeat.sh: measures how reliably nested KVM boots both firmwares.
#
# usage: tests/boot/nested-repeat.sh [N]     (default 10)
# Boots gen1-tiny under SeaBIOS and gen2-tiny under OVMF, N times each, every time in a
# fresh harness L1 (tests/harness/with-kvm, nested mode unless WITH_KVM_MODE says
# otherwise) running QEMU with -accel kvm. Prints one line per boot (result, wall time of
# the whole with-kvm run, L2 boot time as qemu-boot.sh measured it inside the L1, how
# many CR8 assertions the shim suppressed) and a summary per firmware: pass rate and
# min/median/max times. The output of every failed run is kept in
# $BUILD/harness/repeat/ for diagnosis. Exit status 0 only if every boot passed.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
n=${1:-10}
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
export BUILD="$build"
export WITH_KVM_MODE="${WITH_KVM_MODE:-nested}"
out="$build/harness/repeat"
mkdir -p "$out"
tests/fixtures/build.sh 2>/dev/null || { echo "nested-repeat: cannot build the fixtures"; exit 1; }

results="$out/results.txt"
: >"$results"
echo "nested-repeat: $n boots per firmware, mode $WITH_KVM_MODE, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for case in "bios gen1-tiny" "uefi gen2-tiny"; do
	set -- $case
	fw=$1 fixture=$2
	i=1
	while [ "$i" -le "$n" ]; do
		log="$out/$fixture-$i.log"
		t0=$(date +%s.%N)
		rc=0
		WITH_KVM_TIMEOUT=960 tests/harness/with-kvm tests/boot/qemu-boot.sh --kvm --timeout 900 "$fw" \
			"$build/fixtures/$fixture.raw" raw "$fixture" >"$log" 2>&1 || rc=$?
		wall=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
		l2=$(sed -n 's/^boot ok: .* in \([0-9.]*\)s: .*/\1/p' "$log")
		shim=$(sed -n 's/^cr8-shim: suppressed \([0-9]*\) .*/\1/p' "$log")
		if [ "$rc" = 0 ]; then
			res=pass
			rm -f "$log"
		else
			res="FAIL(rc=$rc)"
		fi
		echo "$fw $res ${wall} ${l2:--} ${shim:-0}" >>"$results"
		printf '%s %s #%d: %s, with-kvm %ss, L2 boot %ss, cr8 assertions suppressed %s\n' \
			"$fw" "$fixture" "$i" "$res" "$wall" "${l2:--}" "${shim:-0}"
		[ "$rc" = 0 ] || sed 's/^/    /' "$log" | tail -n 20
		i=$((i + 1))
	done
done

summary() { # summary FW COLUMN LABEL
	awk -v fw="$1" -v col="$2" '$1 == fw && $2 == "pass" && $col != "-" {print $col}' "$results" |
		sort -n | awk -v label="$3" '{v[NR] = $1} END {
			if (NR == 0) { printf "%s -", label; exit }
			printf "%s min %.1f median %.1f max %.1f", label, v[1], v[int((NR + 1) / 2)], v[NR] }'
}
fails=0
for fw in bios uefi; do
	total=$(awk -v fw="$fw" '$1 == fw' "$results" | wc -l)
	pass=$(awk -v fw="$fw" '$1 == fw && $2 == "pass"' "$results" | wc -l)
	fails=$((fails + total - pass))
	shims=$(awk -v fw="$fw" '$1 == fw {s += $5} END {print s + 0}' "$results")
	echo "summary $fw: $pass/$total passed; $(summary "$fw" 3 "with-kvm s:"); $(summary "$fw" 4 "L2 boot s:"); cr8 assertions suppressed in total: $shims"
done
[ "$fails" = 0 ]
