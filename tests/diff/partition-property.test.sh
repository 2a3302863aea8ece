#!/bin/sh
# tests/diff/partition-property.test.sh - MBR->GPT conversion over many random valid MBR
# layouts (tests/tools/part_prop.c: primaries in shuffled slots, extended + logicals, gaps,
# 63- and 2048-sector starts, a partition to the last sector). For each layout:
#   - every partition's bytes are unchanged (hash before/after);
#   - `sgdisk -v` finds no problems;
#   - sfdisk (libfdisk) lists the same partitions (number, start, size, type) as our reader,
#     and the original numbers and LBAs survive;
#   - the ESP is where the plan said, 1 MiB aligned, inside the usable range, overlapping
#     nothing;
#   - where `sgdisk -g` can convert the same input, it yields the same boundaries and types;
#   - undo restores a byte-identical image; with --no-grow an occupied end is refused and
#     the image is left untouched.
# PART_PROP_ITERATIONS (default 40) and PART_PROP_SEED (default 1) pick the layouts.
set -eu
: "${BUILD:=build}" "${TMPDIR:=/tmp}"
GENSHIFT=${GENSHIFT:-$BUILD/genshift}
PROP=$BUILD/tests/part_prop
n=${PART_PROP_ITERATIONS:-40}
seed0=${PART_PROP_SEED:-1}
for tool in sgdisk sfdisk python3 "$PROP" "$GENSHIFT"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
work=$(mktemp -d "$TMPDIR/part-prop.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL (seed $seed): $*"; exit 1; }

compare_py='
import json, sys
layout_path, ours_path, sfd_path, plan_path, sg_path = sys.argv[1:6]
MAP = {0x83: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", 0x82: "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
       0x8e: "E6D6D379-F507-44C2-A23C-238F2A3DF928", 0xfd: "A19D880F-05FC-4D3B-A006-743F0F84911E",
       0x27: "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", 0xef: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"}
BASIC = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
layout = {}
for line in open(layout_path):
    f = line.split()
    if f[0] != "disk":
        layout[int(f[0])] = (int(f[1]), int(f[2]), MAP.get(int(f[3], 16), BASIC))
ours = json.load(open(ours_path))
plan = json.load(open(plan_path))["plan"]
sfd = json.load(open(sfd_path))["partitiontable"]
def err(msg):
    print(msg); sys.exit(1)
if ours["kind"] != "gpt" or ours["findings"]:
    err("our reader: kind %s, findings %s" % (ours["kind"], ours["findings"]))
mine = {p["number"]: (p["start"], p["end"], p["type"]) for p in ours["partitions"]}
theirs = {int(p["node"].rsplit("img", 1)[1]): (p["start"], p["start"] + p["size"] - 1, p["type"])
          for p in sfd["partitions"]}
if mine != theirs:
    err("ours %s != sfdisk %s" % (mine, theirs))
for num, want in layout.items():
    if mine.get(num) != want:
        err("partition %d: %s after conversion, %s before" % (num, mine.get(num), want))
esp = plan["esp_number"]
if esp not in layout:
    e = mine[esp]
    pe = [p for p in plan["after"]["partitions"] if p["number"] == esp][0]
    if (pe["start"], pe["end"]) != e[:2] or e[2] != MAP[0xef]:
        err("ESP %s is not where the plan said (%s)" % (e, pe))
    if e[0] % 2048 or e[1] - e[0] + 1 != 100 * 2048:
        err("ESP %s not 1 MiB aligned or not 100 MiB" % (e,))
    if e[0] < ours["first_usable_lba"] or e[1] > ours["last_usable_lba"]:
        err("ESP outside the usable range")
    for num, (s, t, _) in mine.items():
        if num != esp and s <= e[1] and e[0] <= t:
            err("ESP overlaps partition %d" % num)
    if e[1] < max(t for (_, t, _) in layout.values()):
        print("esp-in-gap")
extra = set(mine) - set(layout) - {esp, plan["msr_number"]}
if extra:
    err("unexpected partitions %s" % extra)
if sg_path != "-":
    sg = json.load(open(sg_path))["partitiontable"]
    sgp = {int(p["node"].rsplit("img", 1)[1]): (p["start"], p["start"] + p["size"] - 1, p["type"])
           for p in sg["partitions"]}
    ourp = {k: v for k, v in mine.items() if k in layout}
    if sgp != ourp:
        err("sgdisk -g %s != ours %s" % (sgp, ourp))
    print("sgdisk-agree")
'

agree=0 converted=0 refused=0 ingap=0
i=0
while [ "$i" -lt "$n" ]; do
	seed=$((seed0 + i))
	i=$((i + 1))
	img=$work/d.img
	rm -f "$work"/*
	"$PROP" gen "$seed" "$img" >"$work/layout"
	"$PROP" hash "$img" "$work/layout" >"$work/before"
	sum0=$("$PROP" sum "$img")
	cp --sparse=always "$img" "$work/sg.img"
	opts="--seed $seed --esp-size 100M"
	[ $((seed % 4)) -eq 0 ] && opts="$opts --msr"
	if [ $((seed % 5)) -eq 0 ]; then
		# --no-grow: either it fits or it is refused with the shortfall; never a change.
		if ! "$GENSHIFT" partition convert "$img" $opts --no-grow --json >"$work/plan.json" \
			2>"$work/err"; then
			grep -q "missing\|no free run" "$work/err" || fail "no-grow error: $(cat "$work/err")"
			[ "$("$PROP" sum "$img")" = "$sum0" ] || fail "refused convert changed the image"
			[ ! -e "$img.genshift-undo" ] || fail "refused convert left an undo file"
			refused=$((refused + 1))
			continue
		fi
	else
		"$GENSHIFT" partition convert "$img" $opts --json >"$work/plan.json" 2>"$work/err" ||
			fail "convert: $(cat "$work/err")"
	fi
	converted=$((converted + 1))
	"$PROP" hash "$img" "$work/layout" >"$work/after"
	cmp -s "$work/before" "$work/after" || fail "partition contents changed"
	sgdisk -v "$img" >"$work/v" 2>&1 || fail "sgdisk -v failed: $(cat "$work/v")"
	grep -q "No problems found" "$work/v" || fail "sgdisk -v: $(cat "$work/v")"
	"$GENSHIFT" partition show "$img" --json >"$work/ours.json" || fail "show failed"
	sfdisk --json "$img" >"$work/sfd.json" 2>/dev/null || fail "sfdisk cannot read the result"
	sgjson=-
	# sgdisk sleeps a second after writing: compare with it on every third layout only.
	if [ $((seed % 3)) -eq 0 ] && sgdisk -g "$work/sg.img" >/dev/null 2>&1 &&
		sfdisk --json "$work/sg.img" >"$work/sg.json" 2>/dev/null; then
		sgjson=$work/sg.json
	fi
	python3 -c "$compare_py" "$work/layout" "$work/ours.json" "$work/sfd.json" \
		"$work/plan.json" "$sgjson" >"$work/cmp" || fail "$(cat "$work/cmp")"
	grep -q sgdisk-agree "$work/cmp" && agree=$((agree + 1))
	grep -q esp-in-gap "$work/cmp" && ingap=$((ingap + 1))
	"$GENSHIFT" partition undo "$img" "$img.genshift-undo" >/dev/null || fail "undo failed"
	[ "$("$PROP" sum "$img")" = "$sum0" ] || fail "undo did not restore the image"
done
echo "property: $n layouts, $converted converted (sgdisk -v clean, sfdisk agrees, undo exact),"
echo "  $agree also converted by sgdisk -g with identical boundaries and types, $refused refused with --no-grow,"
echo "  $ingap with the ESP placed in a gap between partitions"
[ "$converted" -gt $((n / 2)) ] || { echo "FAIL: too few conversions"; exit 1; }
[ "$agree" -gt 0 ] || { echo "FAIL: no layout was comparable with sgdisk -g"; exit 1; }
[ "$ingap" -gt 0 ] || { echo "FAIL: no layout put the ESP into a gap"; exit 1; }
