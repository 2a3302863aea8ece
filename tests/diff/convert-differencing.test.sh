#!/bin/sh
# convert-differencing: `genshift convert --differencing` of a VHDX source writes a VHDX
# child holding only the changes: near-instant, a small file, linked to the source (libvhdi's
# vhdiinfo sees a differential disk whose parent identifier is the source's), and its
# virtual content equals that of the full-copy conversion (same --seed, so same GUIDs and
# FAT serial). QEMU 10.0 cannot open differencing VHDX files at all ("Operation not
# supported"), so `qemu-img info --backing-chain` cannot be the judge: libvhdi is.
. "$(dirname "$0")/convert-lib.sh"
need vhdiinfo bc

# gen1-tiny has no free space: the ESP needs the disk to grow, which a child cannot. The
# refusal says so; a 512 MiB variant with free space at the end converts.
tiny=$(fixture gen1-tiny.vhdx)
if "$GENSHIFT" convert "$tiny" --out "$work/no" --differencing --no-guest >"$work/no.log" 2>&1; then
	fail "--differencing of a disk that must grow succeeded"
fi
grep -q 'a differencing child keeps its parent' "$work/no.log" || fail "refusal: $(cat "$work/no.log")"
no_output "$work/no" gen1-tiny

raw=$(fixture gen1-tiny.raw)
truncate -s 512M "$raw"
mkdir "$work/src"
"$GENSHIFT" disk convert "$raw" "$work/src/vm.vhdx" >/dev/null || fail "making the VHDX source"
src=$work/src/vm.vhdx
before=$(sha256sum <"$src")

t0=$(date +%s.%N)
"$GENSHIFT" convert "$src" --out "$work/diff" --differencing --no-guest --seed 7 >"$work/d.log" 2>&1 ||
	fail "--differencing: $(tail -n 3 "$work/d.log")"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
"$GENSHIFT" convert "$src" --out "$work/full" --no-guest --seed 7 --json >"$work/f.json" 2>"$work/f.log" ||
	fail "full copy: $(tail -n 3 "$work/f.log")"
# The --json report of a real run: converted, every step timed, the files it names exist.
python3 - "$work/f.json" <<'PY' || fail "convert --json report"
import json, os, sys
r = json.load(open(sys.argv[1]))
assert r["converted"] is True and r["dry_run"] is False and r["mode"] == "copy", r
assert [s["name"] for s in r["steps"]] == ["disk", "partition table", "EFI system partition",
    "guest files", "NVRAM", "generation 2 configuration"], r["steps"]
assert all(s["seconds"] >= 0 for s in r["steps"])
assert r["boot_entry"] == 1 and r["plan"]["esp_number"] == 2
for k in ("disk", "nvram", "config", "log"):
    assert os.path.exists(r[k]), r[k]
PY
[ "$(sha256sum <"$src")" = "$before" ] || fail "the source changed"
echo "differencing conversion: ${secs} s; child $(du -k "$work/diff/vm.vhdx" | cut -f1) KiB on disk, full copy $(du -k "$work/full/vm.vhdx" | cut -f1) KiB"
[ "$(echo "$secs < 5" | bc)" = 1 ] || fail "--differencing took ${secs} s"

vhdiinfo "$work/diff/vm.vhdx" >"$work/vhdi.txt" 2>&1 || fail "vhdiinfo: $(tail -n 3 "$work/vhdi.txt")"
grep -q 'Disk type.*: Differential' "$work/vhdi.txt" || fail "vhdiinfo: not differential: $(cat "$work/vhdi.txt")"
parent_id=$(vhdiinfo "$src" | awk -F': ' '/Identifier/ { print $2; exit }')
grep -q "Parent identifier.*: $parent_id" "$work/vhdi.txt" ||
	fail "vhdiinfo: parent identifier is not the source's $parent_id: $(grep Parent "$work/vhdi.txt")"
grep -q 'Parent filename.*vm.vhdx' "$work/vhdi.txt" || fail "vhdiinfo: parent filename: $(grep Parent "$work/vhdi.txt")"

# The same bytes: our reading of the child against QEMU's reading of the full copy.
"$GENSHIFT" disk convert "$work/diff/vm.vhdx" "$work/diff.raw" >/dev/null || fail "exporting the child"
qemu-img compare -f raw -F vhdx "$work/diff.raw" "$work/full/vm.vhdx" >"$work/cmp.log" 2>&1 ||
	fail "child and full copy differ: $(cat "$work/cmp.log")"
"$GENSHIFT" disk compare "$work/diff/vm.vhdx" "$work/full/vm.vhdx" >/dev/null || fail "genshift disk compare"
# ... and it is a converted disk (GPT, ESP, loaders), the NVRAM entry is there.
sgdisk -v "$work/diff.raw" | grep -q 'No problems found' || fail "sgdisk -v of the child's content"
check_vars "$work/diff/vm_VARS.fd"
grep -q '"path": "vm.vhdx"' "$work/diff/vm.json" || fail "vm.json does not name vm.vhdx"
echo "convert-differencing: child linked to its parent, same content as the full copy"
