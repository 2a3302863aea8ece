#!/bin/sh
# tests/bench/run.sh - `make bench`: genshift against its peers, measured in the same run.
# Prints one line per case: our time, the peer's time, their ratio (ours / peer; goal <= 1.0)
# and our peak RSS. Each command runs REPEAT times (default 3), alternating ours and the peer's,
# and the best time of each is kept, so page-cache warmth treats both alike.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
gs=$top/$BUILD/genshift
REPEAT=${REPEAT:-3}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/genshift-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# best_of OUTFILE CMD...: runs CMD REPEAT times (removing OUTFILE before each run), prints
# "seconds peak_rss_kib" of the fastest run.
best_of() {
	out=$1
	shift
	best=
	rss=0
	i=0
	while [ $i -lt "$REPEAT" ]; do
		rm -f "$out"
		/usr/bin/time -f '%e %M' -o time.txt "$@" >/dev/null
		read -r t m <time.txt
		if [ -z "$best" ] || [ "$(echo "$t < $best" | awk '{print ($1 < $3)}')" = 1 ]; then
			best=$t
		fi
		[ "$m" -gt "$rss" ] && rss=$m
		i=$((i + 1))
	done
	echo "$best $rss"
}

# compare_case NAME OURS_OUT OURS_CMD... -- PEER_OUT PEER_CMD...
# qemu-img convert does not flush its output by default (cache=unsafe) while genshift
# fdatasyncs before it reports success, so the peer runs twice: as it comes, and with
# -t writeback (which flushes at the end, like us). Both ratios are printed.
report() { # name ours peer peer_flushing rss
	awk -v n="$1" -v a="$2" -v b="$3" -v c="$4" -v m="$5" 'BEGIN {
		printf "%-42s genshift %6.2fs  qemu-img %6.2fs (ratio %4.2f)  qemu-img -t writeback %6.2fs (ratio %4.2f)  peak RSS %5.1f MiB\n", n, a, b, (b > 0) ? a / b : 0, c, (c > 0) ? a / c : 0, m / 1024 }'
}

# bench_case NAME SRC SRC_FORMAT: genshift disk convert SRC -> VHDX against qemu-img.
bench_case() {
	set -- "$1" "$2" "$3" $(best_of a.vhdx "$gs" disk convert "$2" a.vhdx)
	name=$1 src=$2 fmt=$3 ours=$4 rss=$5
	set -- $(best_of b.vhdx qemu-img convert -f "$fmt" -O vhdx -o subformat=dynamic "$src" b.vhdx)
	peer=$1
	set -- $(best_of b.vhdx qemu-img convert -t writeback -f "$fmt" -O vhdx -o subformat=dynamic "$src" b.vhdx)
	report "$name" "$ours" "$peer" "$1" "$rss"
	qemu-img compare -q -f "$fmt" -F vhdx "$src" a.vhdx || { echo "bench: $name: result differs"; exit 1; }
}

# Scattered data: 1 MiB extents of random bytes at pseudo-random offsets.
make_scattered() { # file size_gib data_mib
	truncate -s "$2G" "$1"
	head -c 1048576 /dev/urandom >chunk.bin
	n=0
	seed=1
	while [ $n -lt "$3" ]; do
		seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
		off=$(( seed % ($2 * 1024 - 1) ))
		dd if=chunk.bin of="$1" bs=1M seek="$off" conv=notrunc status=none
		n=$((n + 1))
	done
}

echo "genshift bench ($(nproc) cores, best of $REPEAT; ratio = genshift time / peer time)"

make_scattered data4g.raw 4 1024
bench_case "raw 4 GiB (1 GiB data) -> dynamic VHDX" data4g.raw raw
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on data4g.raw src.vhd
bench_case "VHD 4 GiB (1 GiB data) -> dynamic VHDX" src.vhd vpc
rm -f data4g.raw src.vhd
make_scattered data64g.raw 64 100
bench_case "raw 64 GiB (100 MiB data) -> dynamic VHDX" data64g.raw raw
rm -f data64g.raw a.vhdx b.vhdx

# ---- vmm (issue 5): time to the gen1-tiny marker, genshift's VMM against QEMU ----
# Both boot the same raw fixture with the same SeaBIOS on the same KVM in one harness run
# (tests/harness/with-kvm: native /dev/kvm when usable, else nested). Scratch goes under
# $BUILD because the harness puts a fresh tmpfs on /tmp and /var/tmp inside its L1.
vmm_fixture=$top/$BUILD/fixtures/gen1-tiny.raw
[ -f "$vmm_fixture" ] || BUILD=$BUILD "$top/tests/fixtures/build.sh" >/dev/null
vmm_work=$(mkdir -p "$top/$BUILD/vmm-bench" && mktemp -d "$top/$BUILD/vmm-bench/run.XXXXXX")
BUILD=$BUILD "$top/tests/harness/with-kvm" --rw "$vmm_work" "$top/tests/bench/vmm-boot.sh" \
	"$gs" "$vmm_fixture" "$vmm_work" "${VMM_BENCH_REPEAT:-1}" ||
	{ rm -rf "$vmm_work"; echo "bench: vmm boot comparison failed"; exit 1; }
rm -rf "$vmm_work"

# ---- vmm generation 2 (issue 6): time to the gen2-tiny marker under OVMF, ours vs QEMU ----
# Same shape as the gen 1 block: one harness run, both VMMs on the same nested KVM, each
# boot on a fresh copy of OVMF_VARS_4M.fd.
gen2_fixture=$top/$BUILD/fixtures/gen2-tiny.raw
[ -f "$gen2_fixture" ] || BUILD=$BUILD "$top/tests/fixtures/build.sh" >/dev/null
gen2_work=$(mkdir -p "$top/$BUILD/vmm-bench" && mktemp -d "$top/$BUILD/vmm-bench/gen2.XXXXXX")
BUILD=$BUILD "$top/tests/harness/with-kvm" --rw "$gen2_work" "$top/tests/bench/vmm-gen2-boot.sh" \
	"$gs" "$gen2_fixture" "$gen2_work" "${VMM_BENCH_REPEAT:-1}" ||
	{ rm -rf "$gen2_work"; echo "bench: vmm gen 2 boot comparison failed"; exit 1; }
rm -rf "$gen2_work"
