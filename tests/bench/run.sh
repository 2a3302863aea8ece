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
	1 "$gs" "$vmm_fixture" "$vmm_work" "${VMM_BENCH_REPEAT:-1}" ||
	{ rm -rf "$vmm_work"; echo "bench: vmm boot comparison failed"; exit 1; }
rm -rf "$vmm_work"

# ---- analyze (issue 7): structural pre-flight over a few hundred small images ----
# 300 sparse images (100 raw, 100 VHD, 100 VHDX) in four MBR shapes with real ext4/swap file
# systems. Ours: `genshift analyze --no-deep` over all of them in one process (goal < 10 ms
# per image), and once per image (process start included). Peer, on the raw ones only (it
# reads no VHD/VHDX): `sfdisk --json` plus `blkid -p` on each partition, per image.
an=$work/analyze
mkdir -p "$an"
mkfs.ext4 -q -F "$an/fs.ext4" 40M >/dev/null 2>&1
truncate -s 8M "$an/fs.swap" && mkswap -q "$an/fs.swap" >/dev/null
shape() { # N: one of four MBR layouts, file systems copied into partitions
	f=$an/shape$1.raw
	truncate -s 96M "$f"
	case $1 in
	0) printf '2048,,83\n' ;;
	1) printf '2048,102400,83\n,,82\n' ;;
	2) printf '2048,102400,83\n,,5\n,16384,82\n,,83\n' ;;
	3) printf '2048,81920,83\n83968,16384,82\n,,83\n' ;;
	esac | sfdisk -q "$f" >/dev/null
	dd if="$an/fs.ext4" of="$f" bs=512 seek=2048 conv=notrunc,sparse status=none
	case $1 in
	1) dd if="$an/fs.swap" of="$f" bs=512 seek=104448 conv=notrunc,sparse status=none ;;
	3) dd if="$an/fs.swap" of="$f" bs=512 seek=83968 conv=notrunc,sparse status=none ;;
	esac
}
for s in 0 1 2 3; do
	shape $s
	qemu-img convert -f raw -O vpc -o subformat=dynamic "$an/shape$s.raw" "$an/shape$s.vhd"
	qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M "$an/shape$s.raw" "$an/shape$s.vhdx"
done
i=0
while [ $i -lt 100 ]; do
	for ext in raw vhd vhdx; do
		cp --sparse=always "$an/shape$((i % 4)).$ext" "$an/img$i.$ext"
	done
	i=$((i + 1))
done
an_ms() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.2f", t * 1000 / n }'; }
set +e # analyze exits 3 for a refused image; the time is what counts here
t_all=$(best_of none "$gs" analyze --no-deep "$an"/img*.raw "$an"/img*.vhd "$an"/img*.vhdx | cut -d' ' -f1)
t_raw=$(best_of none "$gs" analyze --no-deep "$an"/img*.raw | cut -d' ' -f1)
cat >"$an/per-image.sh" <<'EOS'
for f in "$@"; do "$GS" analyze --no-deep "$f" >/dev/null; done
EOS
cat >"$an/peer.sh" <<'EOS'
for f in "$@"; do
	sfdisk --json "$f" >/dev/null
	sfdisk -d "$f" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p' |
	while read -r start size; do
		blkid -p -o export -O $((start * 512)) -S $((size * 512)) "$f" >/dev/null || true
	done
done
EOS
t_ours1=$(GS=$gs best_of none sh "$an/per-image.sh" "$an"/img*.raw | cut -d' ' -f1)
t_peer=$(best_of none sh "$an/peer.sh" "$an"/img*.raw | cut -d' ' -f1)
set -e
# CPU time too: on a loaded 2-core host the wall clock mostly measures the other processes.
/usr/bin/time -f '%U %S' -o "$an/cpu.txt" "$gs" analyze --no-deep "$an"/img*.raw "$an"/img*.vhd \
	"$an"/img*.vhdx >/dev/null || true
cpu=$(awk '{ print $1 + $2 }' "$an/cpu.txt")
echo "analyze --no-deep, 300 images (raw+VHD+VHDX), one process: $(an_ms "$t_all" 300) ms/image (goal < 10), CPU $(an_ms "$cpu" 300) ms/image"
echo "analyze --no-deep, 100 raw images, one process:            $(an_ms "$t_raw" 100) ms/image"
echo "analyze --no-deep, 100 raw images, one process per image:  $(an_ms "$t_ours1" 100) ms/image"
echo "peer sfdisk --json + blkid -p per partition, 100 raw:      $(an_ms "$t_peer" 100) ms/image" \
	"(ratio ours per-process / peer $(awk -v a="$t_ours1" -v b="$t_peer" 'BEGIN { printf "%.2f", a / b }'))"
rm -rf "$an"

# ---- vmm generation 2 (issue 6): time to the gen2-tiny marker under OVMF, ours vs QEMU ----
# Same shape as the gen 1 block: one harness run, both VMMs on the same nested KVM, each
# boot on a fresh copy of OVMF_VARS_4M.fd.
gen2_fixture=$top/$BUILD/fixtures/gen2-tiny.raw
[ -f "$gen2_fixture" ] || BUILD=$BUILD "$top/tests/fixtures/build.sh" >/dev/null
gen2_work=$(mkdir -p "$top/$BUILD/vmm-bench" && mktemp -d "$top/$BUILD/vmm-bench/gen2.XXXXXX")
BUILD=$BUILD "$top/tests/harness/with-kvm" --rw "$gen2_work" "$top/tests/bench/vmm-boot.sh" \
	2 "$gs" "$gen2_fixture" "$gen2_work" "${VMM_BENCH_REPEAT:-1}" ||
	{ rm -rf "$gen2_work"; echo "bench: vmm gen 2 boot comparison failed"; exit 1; }
rm -rf "$gen2_work"
