#!/bin/sh
# tests/diff/vhdx-samples.test.sh - the real VHDX samples (shared/samples) read through our
# library with the content sha256 their README lists; the dirty-log sample is replayed in
# memory on a read-only open (file bytes unchanged) and into the file on a read-write open,
# after which qemu-img check is clean and qemu reads the same content.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhdx_tool
S=${SAMPLES:-../shared/samples}
[ -x "$T" ] || fail "$T is not built"
for tool in qemu-img sha256sum bzip2 gzip; do
	command -v $tool >/dev/null || fail "$tool is not installed"
done
W=$(mktemp -d "${TMPDIR:-/tmp}/vhdx-samples.XXXXXX")
trap 'rm -rf "$W"' EXIT

# openssl hashes 10 GiB streams several times faster than sha256sum; either is exact.
hash() { if command -v openssl >/dev/null; then openssl dgst -sha256 -r | cut -d' ' -f1;
	else sha256sum | cut -d' ' -f1; fi; }
unpack() {
	if [ -f "$S/$1.bz2" ]; then bzip2 -dc "$S/$1.bz2"; elif [ -f "$S/$1.gz" ]; then
		gzip -dc "$S/$1.gz"; else fail "sample $1 missing in $S"; fi |
		cp --sparse=always /dev/stdin "$W/$1"
}
field() { "$T" info "$1" | sed -n "s/^$2=//p"; }

expect_sample() { # name size sha256
	unpack "$1"
	[ "$(field "$W/$1" size)" = "$2" ] || fail "$1: size $(field "$W/$1" size), expected $2"
	sum=$("$T" cat "$W/$1" | hash)
	[ "$sum" = "$3" ] || fail "$1: sha256 $sum, expected $3"
	"$T" check "$W/$1" >"$W/check.out" || fail "$1: check reports errors: $(grep error "$W/check.out" | head -1)"
	echo "ok $1 size $2 sha256 $sum"
}

expect_sample iotest-dynamic-1G.vhdx 1073741824 d3d112d8dab7fd360609f7d5a7b769904b7a2a7d7b6b8c535f65a23293c05478
expect_sample test-disk2vhd.vhdx 268435456 96d964042be9b58dda1725567abfb0cf9fd8380e2118754afa979c2ad445938a
expect_sample btrfs.vhdx 1073741824 0b959f9cb4e18348ad8b646f152178282542c8304f02fddf765e3fd1a1de6864
expect_sample swap.vhdx 10737418240 60dd30b4c74361427d1089510cabb36e2eeda0cc4747f467ea43173acd358c49
expect_sample xfs.vhdx 10737418240 8ca2bd2d91f1c6ada47128fc2f8d38587e73954ede5a664fe2bb09c19606060e
[ "$(field "$W/test-disk2vhd.vhdx" creator)" = d2v ] || fail "disk2vhd creator not read"
[ "$(field "$W/iotest-dynamic-1G.vhdx" allocated)" = 100663296 ] || fail "iotest-dynamic-1G: 3 blocks should be allocated"

# Dirty log: read-only replay in memory, file untouched.
d=iotest-dirtylog-10G-4M.vhdx
after=179cefe8b0587f123393eedf2aa7aa8d25798591178e6bc3950a09762f38f96f
unpack $d
before_file=$(sha256sum "$W/$d" | cut -d' ' -f1)
[ "$(field "$W/$d" log_state)" = replayed-memory ] || fail "$d: read-only open did not replay in memory"
sum=$("$T" cat "$W/$d" | hash)
[ "$sum" = $after ] || fail "$d: in-memory replay gives $sum, expected $after"
[ "$(sha256sum "$W/$d" | cut -d' ' -f1)" = "$before_file" ] || fail "$d: read-only open modified the file"
"$T" check "$W/$d" >"$W/check.out" || true
grep -q "needs replay" "$W/check.out" || fail "$d: check does not report the pending log"
qemu-img check "$W/$d" >/dev/null 2>&1 && fail "$d: qemu-img check should see the dirty log before replay"
echo "ok $d: in-memory replay gives $sum, file unchanged"

# Read-write open (check --repair) replays into the file; afterwards qemu-img check is clean
# and qemu reads exactly what its own replay (check -r all on another copy) gives.
cp --sparse=always "$W/$d" "$W/qemu-$d"
"$T" check --repair "$W/$d" >"$W/check.out" || fail "$d: check --repair: $(grep error "$W/check.out" | head -1)"
[ "$(sha256sum "$W/$d" | cut -d' ' -f1)" != "$before_file" ] || fail "$d: repair did not replay into the file"
[ "$(field "$W/$d" log_state)" = clean ] || fail "$d: log still pending after read-write replay"
qemu-img check "$W/$d" >"$W/q.out" 2>&1 || fail "$d: qemu-img check after our replay: $(cat "$W/q.out")"
qemu-img check -r all "$W/qemu-$d" >/dev/null 2>&1 || fail "$d: qemu's own repair failed"
qemu-img compare -f vhdx -F vhdx "$W/$d" "$W/qemu-$d" >"$W/q.out" 2>&1 ||
	fail "$d: qemu reads our replayed file differently from its own replay: $(cat "$W/q.out")"
echo "ok $d: replayed into the file; qemu-img check clean, identical to qemu's own replay"

# Writing into Windows-made files (Hyper-V's ZERO blocks, Disk2VHD's metadata-first layout
# and odd file size, Windows 10's NOT_PRESENT mix): random writes mirrored into a raw copy
# of the original content, then qemu-img check and compare.
for f in test-disk2vhd.vhdx iotest-dynamic-1G.vhdx btrfs.vhdx; do
	"$T" cat "$W/$f" | cp --sparse=always /dev/stdin "$W/w.raw"
	"$T" write "$W/$f" "$W/w.raw" 5 30 2M || fail "$f: random writes failed"
	qemu-img check -f vhdx "$W/$f" >"$W/q.out" 2>&1 || fail "$f after our writes: qemu-img check: $(cat "$W/q.out")"
	qemu-img compare -f raw -F vhdx "$W/w.raw" "$W/$f" >"$W/q.out" 2>&1 ||
		fail "$f after our writes: qemu-img compare: $(cat "$W/q.out")"
	"$T" check "$W/$f" >"$W/check.out" || fail "$f after our writes: our check: $(grep error "$W/check.out" | head -1)"
	rm -f "$W/w.raw"
	echo "ok $f: 30 random writes, qemu-img check clean, qemu-img compare identical"
done
