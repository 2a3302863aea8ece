#!/bin/sh
# tests/diff/disk-cli.test.sh - the `genshift disk` command line, judged by qemu-img:
# conversions between every pair of formats keep every byte, sizes and JSON agree with
# qemu-img info, exit codes are the documented ones, failures leave no partial output.
set -eu
: "${GENSHIFT:?}" "${TMPDIR:?}"
gs=$GENSHIFT
cd "$TMPDIR"
mkdir -p disk-cli && cd disk-cli
fail() { echo "FAIL: $*"; exit 1; }
expect_rc() { # rc command...
	want=$1
	shift
	set +e
	"$@" >out.txt 2>err.txt
	got=$?
	set -e
	[ "$got" = "$want" ] || fail "'$*' exited $got, expected $want: $(cat err.txt out.txt)"
}
qsize() { qemu-img info --output=json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
gsize() { "$gs" disk info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["virtual_size"])'; }

# A raw source with data at the start, across a 32 MiB block edge, and in the last sector.
truncate -s 300M src.raw
head -c 70000 /dev/urandom | dd of=src.raw conv=notrunc status=none
head -c 9000 /dev/urandom | dd of=src.raw bs=1 seek=$((32 * 1048576 - 4000)) conv=notrunc status=none
head -c 512 /dev/urandom | dd of=src.raw bs=512 seek=$((300 * 2048 - 1)) conv=notrunc status=none

# raw -> vhdx -> vhd -> vhdx(fixed) -> raw, each result judged by qemu-img against src.raw.
"$gs" disk convert src.raw a.vhdx
qemu-img check -q a.vhdx || fail "qemu-img check a.vhdx"
qemu-img compare -q -f raw -F vhdx src.raw a.vhdx || fail "a.vhdx differs from src.raw"
"$gs" disk convert a.vhdx b.vhd
qemu-img compare -q -f raw -F vpc src.raw b.vhd || fail "b.vhd differs from src.raw"
"$gs" disk convert b.vhd c.vhdx --type fixed
qemu-img check -q c.vhdx || fail "qemu-img check c.vhdx"
qemu-img compare -q -f raw -F vhdx src.raw c.vhdx || fail "c.vhdx differs"
"$gs" disk convert c.vhdx d.raw
cmp src.raw d.raw || fail "round trip through every format changed bytes"
expect_rc 0 "$gs" disk compare src.raw b.vhd
grep -q identical out.txt || fail "compare did not say identical"

# Sizes: ours and qemu-img's agree.
for f in a.vhdx c.vhdx b.vhd d.raw; do
	[ "$(gsize $f)" = 314572800 ] || fail "$f: genshift size $(gsize $f)"
done
[ "$(qsize a.vhdx)" = 314572800 ] || fail "qemu size of a.vhdx"
[ "$(qsize -f vpc b.vhd)" = 314572800 ] || fail "qemu size of b.vhd (exact size, no CHS rounding)"

# Sparse output: only the ~80 KiB of data (plus metadata) is allocated.
alloc=$(du -k a.vhdx | cut -f1)
[ "$alloc" -lt 80000 ] || fail "a.vhdx allocates $alloc KiB for 80 KiB of data"

# Exit codes.
printf x | dd of=d.raw bs=1 seek=1000 conv=notrunc status=none
expect_rc 3 "$gs" disk compare src.raw d.raw
grep -q "offset 1000" out.txt || fail "compare did not name offset 1000: $(cat out.txt)"
expect_rc 2 "$gs" disk frobnicate x
expect_rc 2 "$gs" disk create x.vhdx
expect_rc 1 "$gs" disk info does-not-exist.vhdx
grep -q "does-not-exist.vhdx" err.txt || fail "error does not name the file"
expect_rc 1 "$gs" disk convert src.raw a.vhdx
grep -q "already exists" err.txt || fail "convert overwrote or misreported an existing file"

# A failed convert leaves neither the destination nor a partial file.
expect_rc 1 "$gs" disk convert src.raw bad.vhdx --block-size 3M
[ ! -e bad.vhdx ] && [ ! -e bad.vhdx.genshift-partial ] || fail "failed convert left files behind"

# Resize through the CLI, judged by qemu-img.
"$gs" disk resize a.vhdx +100M
[ "$(qsize a.vhdx)" = 419430400 ] || fail "qemu-img sees $(qsize a.vhdx) after resize"
qemu-img check -q a.vhdx || fail "qemu-img check after resize"
truncate -s 400M src.raw
qemu-img compare -q -f raw -F vhdx src.raw a.vhdx || fail "resize changed data"

# check: clean image, JSON form parses.
expect_rc 0 "$gs" disk check a.vhdx
"$gs" disk check --json a.vhdx | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["errors"] == 0'
echo "disk-cli: all checks passed"
