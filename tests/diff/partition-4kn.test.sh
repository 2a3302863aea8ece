#!/bin/sh
# tests/diff/partition-4kn.test.sh - MBR->GPT on 4Kn disks: random MBR layouts written with
# 4096-byte sectors (part_prop -4), carried into VHDX images with 4096-byte logical sectors,
# converted there. libfdisk (`fdisk -b 4096 -l`, on a raw export) must read the same
# partitions before and after as our reader, the GPT must start its usable range at LBA 6
# (16 KiB of entries = 4 sectors), partition contents must be unchanged, and undo must put
# the original bytes back.
set -eu
: "${BUILD:=build}" "${TMPDIR:=/tmp}"
GENSHIFT=${GENSHIFT:-$BUILD/genshift}
PROP=$BUILD/tests/part_prop
for tool in fdisk python3 "$PROP" "$GENSHIFT"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
work=$(mktemp -d "$TMPDIR/part-4kn.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($case): $*"; exit 1; }

# Our reading of IMAGE equals fdisk's reading of RAW (4096-byte sectors).
same_as_fdisk() { # image raw
	"$GENSHIFT" partition show "$1" --json >"$work/ours.json" || fail "show failed"
	cols=Device,Start,End,Type-UUID
	grep -q '"kind":"mbr"' "$work/ours.json" && cols=Device,Start,End,Id
	fdisk -b 4096 -l -o "$cols" "$2" >"$work/fdisk.txt" 2>&1 ||
		fail "fdisk: $(cat "$work/fdisk.txt")"
	if grep -qi "corrupt\|invalid\|mismatch" "$work/fdisk.txt"; then
		fail "fdisk complains: $(cat "$work/fdisk.txt")"
	fi
	python3 - "$work/ours.json" "$work/fdisk.txt" <<'PY' || fail "differs from fdisk"
import json, re, sys
ours = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().split("\n")
theirs, on = {}, False
for l in lines:
    if l.startswith("Device"):
        on = True
        continue
    if on and not l.strip():
        break
    if on:
        f = l.split()
        num = int(re.search(r"(\d+)$", f[0]).group(1))
        typ = f[3] if len(f[3]) > 4 else int(f[3], 16)
        if typ in (5, 0xf, 0x85):
            continue
        theirs[num] = (int(f[1]), int(f[2]), typ)
def t(p):
    return p["type"] if len(p["type"]) > 4 else int(p["type"], 16)
mine = {p["number"]: (p["start"], p["end"], t(p)) for p in ours["partitions"]}
if ours["sector_size"] != 4096 or mine != theirs:
    print("ours ", ours["sector_size"], mine); print("fdisk", theirs); sys.exit(1)
PY
}

n=0
for seed in 11 12 13 14; do
	case="4Kn seed $seed"
	raw=$work/orig.raw img=$work/d.vhdx
	rm -f "$work"/*
	"$PROP" -4 gen "$seed" "$raw" >"$work/layout"
	"$PROP" -4 hash "$raw" "$work/layout" >"$work/before"
	size0=$(stat -c %s "$raw")
	"$GENSHIFT" disk convert "$raw" "$img" --format vhdx --logical-sector 4096 >/dev/null ||
		fail "disk convert to VHDX"
	same_as_fdisk "$img" "$raw"
	"$GENSHIFT" partition convert "$img" --seed "$seed" --json >"$work/plan.json" 2>"$work/err" ||
		fail "convert: $(cat "$work/err")"
	"$GENSHIFT" disk convert "$img" "$work/after.raw" --format raw >/dev/null || fail "export"
	same_as_fdisk "$img" "$work/after.raw"
	grep -q '"first_usable_lba":6' "$work/ours.json" || fail "first usable LBA is not 6"
	grep -q '"size_bytes":272629760' "$work/ours.json" || fail "no 260 MiB ESP"
	"$PROP" -4 hash "$work/after.raw" "$work/layout" | cmp -s - "$work/before" ||
		fail "partition contents changed"
	if ! "$GENSHIFT" partition undo "$img" "$img.genshift-undo" 2>"$work/err"; then
		# A VHDX backend that keeps zeroed blocks allocated cannot shrink: the bytes must
		# still be back, and the message must say so.
		grep -q "original bytes are restored, but the disk could not shrink" "$work/err" ||
			fail "undo: $(cat "$work/err")"
		echo "note ($case): $(cat "$work/err")"
	fi
	rm -f "$work/undone.raw"
	"$GENSHIFT" disk convert "$img" "$work/undone.raw" --format raw >/dev/null || fail "export"
	cmp -n "$size0" "$work/undone.raw" "$raw" || fail "undo did not restore the original bytes"
	n=$((n + 1))
done
echo "4kn: $n VHDX layouts with 4096-byte sectors converted; fdisk agrees before and after"
