#!/bin/sh
# vmm-gen2-repeat.sh: measures how reliably genshift's VMM boots generation 2 under nested
# KVM (the counterpart of nested-repeat.sh, which measures QEMU).
#
# usage: tests/boot/vmm-gen2-repeat.sh [N]     (default 10)
# Boots gen2-tiny.raw N times with `genshift verify --gen 2 --accel nested`, each time in a
# fresh harness L1, on a fresh copy of the disk and a fresh NVRAM file (a first boot, the
# one that writes the most variables). Prints one line per boot (result, wall time of the
# whole run, time to the marker inside the L1, VM exits, NVRAM bytes programmed) and a
# summary: pass rate and min/median/max times. Failed runs' logs stay in
# $BUILD/harness/vmm-gen2-repeat/. Exit status 0 only if every boot passed.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
n=${1:-10}
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
export BUILD="$build"
gs=$build/genshift
out="$build/harness/vmm-gen2-repeat"
mkdir -p "$out"
tests/fixtures/build.sh >/dev/null 2>&1 || { echo "vmm-gen2-repeat: cannot build the fixtures"; exit 1; }
results="$out/results.txt"
: >"$results"
echo "vmm-gen2-repeat: $n boots, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$n" ]; do
	run="$out/run$i"
	rm -rf "$run"
	mkdir -p "$run"
	cp --sparse=always "$build/fixtures/gen2-tiny.raw" "$run/disk.raw"
	t0=$(date +%s.%N)
	rc=0
	"$gs" verify --gen 2 --disk "$run/disk.raw" --nvram "$run/vars.fd" --accel nested \
		--expect 'GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok' --timeout 400 \
		--json --serial-log "$run/serial.log" >"$run/result.json" 2>"$run/stderr.log" || rc=$?
	wall=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
	line=$(python3 -c 'import json,sys
try:
    j = json.load(open(sys.argv[1])); e = j["exits"]
    print("%.1f %d %d" % (j["time_to_match_s"] or -1, e["total"], e["nvram_programs"]))
except Exception:
    print("- - -")' "$run/result.json")
	set -- $line
	if [ "$rc" = 0 ]; then res=pass; rm -rf "$run"; else res="FAIL(rc=$rc)"; fi
	echo "$res $wall $1 $2 $3" >>"$results"
	printf 'gen2-tiny #%d: %s, wall %ss, marker at %ss, VM exits %s, NVRAM bytes programmed %s\n' \
		"$i" "$res" "$wall" "$1" "$2" "$3"
	[ "$rc" = 0 ] || tail -n 5 "$run/stderr.log" | sed 's/^/    /'
	i=$((i + 1))
done
pass=$(awk '$1 == "pass"' "$results" | wc -l)
stats() { # COLUMN LABEL
	awk -v c="$1" '$1 == "pass" {print $c}' "$results" | sort -n | awk -v l="$2" '
		{v[NR] = $1} END { if (NR == 0) { printf "%s -", l; exit }
		printf "%s min %.1f median %.1f max %.1f", l, v[1], v[int((NR + 1) / 2)], v[NR] }'
}
echo "summary gen2 (genshift VMM): $pass/$n passed; $(stats 2 "wall s:"); $(stats 3 "marker s:")"
[ "$pass" = "$n" ]
