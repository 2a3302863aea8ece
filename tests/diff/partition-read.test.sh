#!/bin/sh
# tests/diff/partition-read.test.sh - our partition-table reader against sfdisk (libfdisk) on
# tables written by sgdisk and sfdisk; GPT damage found and repaired byte-identically to
# what sgdisk wrote; conversions refused with clean errors where they must be.
set -eu
: "${BUILD:=build}" "${TMPDIR:=/tmp}"
GENSHIFT=${GENSHIFT:-$BUILD/genshift}
for tool in sgdisk sfdisk python3 "$GENSHIFT"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
work=$(mktemp -d "$TMPDIR/part-read.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($case): $*"; exit 1; }
compared=0

# Same partitions (number, start, size, type; for GPT also GUID and name) as sfdisk --json.
same_as_sfdisk() {
	"$GENSHIFT" partition show "$1" --json >"$work/ours.json" || fail "show: exit $?"
	sfdisk --json "$1" >"$work/sfd.json" 2>/dev/null || fail "sfdisk cannot read it"
	python3 - "$work/ours.json" "$work/sfd.json" <<'PY' || fail "differs from sfdisk"
import json, sys
ours, sfd = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["partitiontable"]
def norm_type(t):  # GUIDs upper case; MBR types as a number ("0x07" ours, "7" sfdisk)
    return t.upper() if len(t) > 4 else int(t, 16)
mine = {p["number"]: (p["start"], p["sectors"], norm_type(p["type"]),
                      p.get("guid"), p.get("name")) for p in ours["partitions"]}
theirs = {}
for p in sfd["partitions"]:
    if p["type"] in ("5", "f", "85"):
        continue  # the extended container: not a data partition
    theirs[int(p["node"].rsplit("img", 1)[1])] = (p["start"], p["size"], norm_type(p["type"]),
                                                  p.get("uuid"), p.get("name", ""))
if ours["kind"] == "mbr":
    theirs = {k: v[:3] + (None, None) for k, v in theirs.items()}
    mine = {k: v[:3] + (None, None) for k, v in mine.items()}
if mine != theirs:
    print("ours  ", mine); print("sfdisk", theirs); sys.exit(1)
PY
	compared=$((compared + 1))
}

img=$work/d.img
new() { rm -f "$img"*; truncate -s "$1" "$img"; }

case="MBR primaries"
new 64M
printf 'label: dos\nstart=63,size=20000,type=7,bootable\nstart=20480,size=40960,type=83\nstart=61440,size=8192,type=82\nstart=69632,type=fd\n' | sfdisk -q "$img"
same_as_sfdisk "$img"

case="MBR logicals"
new 64M
printf 'label: dos\nstart=2048,size=8192,type=c\nstart=10240,type=f\nstart=12288,size=4096,type=83\nstart=18432,size=8192,type=8e\nstart=28672,size=2048,type=27\nstart=40960,type=83\n' | sfdisk -q "$img"
same_as_sfdisk "$img"
"$GENSHIFT" partition show "$img" | grep -q "extended partition 2: LBA 10240..131071, 4 EBRs" ||
	fail "extended partition summary"

case="GPT from sgdisk"
new 64M
sgdisk -n 1:2048:+1M -t 1:ef02 -n 3:0:+10M -t 3:8300 -c 3:"root fs" -n 2:0:+100K -t 2:ef00 \
	-n 128:0:0 -t 128:0700 -c 128:data -A 3:set:2 "$img" >/dev/null
same_as_sfdisk "$img"
cp "$img" "$work/good.img"

for dmg in "primary header:530" "primary entries:1200" "backup header:$((64 * 1048576 - 512 + 60))" \
	"backup entries:$((64 * 1048576 - 33 * 512 + 300))"; do
	case="GPT damaged ${dmg%%:*}"
	cp "$work/good.img" "$img"
	printf '\377' | dd of="$img" bs=1 seek="${dmg#*:}" conv=notrunc status=none
	"$GENSHIFT" partition show "$img" >"$work/show" || fail "show refused a half-damaged GPT"
	grep -q "finding: ${dmg%% *} GPT (header at LBA [0-9]*) is damaged" "$work/show" ||
		fail "damage not reported: $(cat "$work/show")"
	same_as_sfdisk "$img"
	"$GENSHIFT" partition repair "$img" >/dev/null || fail "repair failed"
	cmp -s "$img" "$work/good.img" || fail "repair is not byte-identical to sgdisk's table"
	sgdisk -v "$img" | grep -q "No problems found" || fail "sgdisk -v after repair"
done

case="GPT both copies damaged"
cp "$work/good.img" "$img"
printf '\377' | dd of="$img" bs=1 seek=1200 conv=notrunc status=none
printf '\377' | dd of="$img" bs=1 seek=$((64 * 1048576 - 33 * 512 + 300)) conv=notrunc status=none
if "$GENSHIFT" partition show "$img" 2>"$work/err"; then fail "accepted"; fi
grep -q "no valid GPT: primary header at LBA 1: entry array CRC32" "$work/err" ||
	fail "message: $(cat "$work/err")"

case="convert a GPT with an ESP"
cp "$work/good.img" "$img"
"$GENSHIFT" partition convert "$img" >"$work/out" || fail "exit $?"
grep -q "already has a GPT with an EFI system partition (partition 2)" "$work/out" || fail "$(cat "$work/out")"
cmp -s "$img" "$work/good.img" || fail "image changed"
[ ! -e "$img.genshift-undo" ] || fail "undo file written"

case="convert a GPT without an ESP"
new 16M
sgdisk -n 1:2048:0 -t 1:8300 "$img" >/dev/null
if "$GENSHIFT" partition convert "$img" 2>"$work/err"; then fail "accepted"; fi
grep -q "without an EFI system partition" "$work/err" || fail "$(cat "$work/err")"

case="convert --no-grow with the last sector in use"
new 200M
printf 'label: dos\nstart=2048,size=204800,type=ef\nstart=206848,type=83\n' | sfdisk -q "$img"
cp --sparse=always "$img" "$work/orig.img"
if "$GENSHIFT" partition convert "$img" --no-grow 2>"$work/err"; then fail "accepted"; fi
grep -q "33 sectors (16896 bytes) are missing at the end of the disk" "$work/err" ||
	fail "$(cat "$work/err")"
cmp -s "$img" "$work/orig.img" || fail "image changed"

case="convert: partition inside the primary GPT area"
new 16M
printf 'label: dos\nstart=16,size=1000,type=83\n' | sfdisk -q "$img" 2>/dev/null
if "$GENSHIFT" partition convert "$img" 2>"$work/err"; then fail "accepted"; fi
grep -q "partition 1 starts at LBA 16, but the primary GPT needs LBA 1..33" "$work/err" ||
	fail "$(cat "$work/err")"

case="convert: unknown MBR type, then mapped"
new 16M
printf 'label: dos\nstart=2048,size=4096,type=a5\n' | sfdisk -q "$img"
if "$GENSHIFT" partition convert "$img" --dry-run 2>"$work/err"; then fail "accepted"; fi
grep -q "MBR type 0xa5" "$work/err" || fail "$(cat "$work/err")"
"$GENSHIFT" partition convert "$img" --map 0xa5=516E7CB4-6ECF-11D6-8FF8-00022D09712B \
	--esp-size 100M >/dev/null || fail "mapped convert"
sfdisk --json "$img" | grep -q '"type": "516E7CB4-6ECF-11D6-8FF8-00022D09712B"' || fail "mapping not applied"
sgdisk -v "$img" | grep -q "No problems found" || fail "sgdisk -v"

echo "read: $compared tables identical to sfdisk's reading; damage found and repaired exactly"
