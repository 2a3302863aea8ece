#!/bin/sh
# convert-dry-run: `genshift convert --dry-run` prints the whole plan (partitions before
# and after, the files with their sizes, the configuration diff) and writes nothing: the
# output directory is not even created, the source keeps its bytes and its mtime.
. "$(dirname "$0")/convert-lib.sh"

mkdir "$work/src"
mv "$(fixture gen1-tiny.vhdx)" "$work/src/"
src=$work/src/gen1-tiny.vhdx
before=$(sha256sum <"$src")
mtime=$(stat -c %Y.%y "$src")
mkdir "$work/o"
listing=$(ls -la --time-style=full-iso "$work/o" "$(dirname "$src")" | grep -v ' \.\.$')

"$GENSHIFT" convert "$src" --out "$work/o/out" --dry-run --no-guest >"$work/plan.txt" 2>&1 ||
	fail "dry run failed: $(tail -n 3 "$work/plan.txt")"
[ ! -e "$work/o/out" ] || fail "--dry-run created $work/o/out"
[ "$(ls -la --time-style=full-iso "$work/o" "$(dirname "$src")" | grep -v ' \.\.$')" = "$listing" ] ||
	fail "--dry-run changed a directory listing"
[ "$(sha256sum <"$src")" = "$before" ] || fail "--dry-run changed the source's bytes"
[ "$(stat -c %Y.%y "$src")" = "$mtime" ] || fail "--dry-run changed the source's mtime"

# The plan names what will happen; sgdisk's numbers for the fixture are its own layout.
for want in 'Partitions before:' '     1       2048     198655' 'Partitions after:' \
	'EFI system partition' 'gen1-tiny.vhdx  VHDX sparse copy' 'gen1-tiny_VARS.fd  528.0 KiB' \
	'gen1-tiny.json' '\EFI\debian\grubx64.efi' '  -  "generation": 1,' \
	'  +  "generation": 2,' '  +    "nvram": "gen1-tiny_VARS.fd",'; do
	grep -qF -- "$want" "$work/plan.txt" || fail "the plan lacks '$want'"
done

# The JSON report of a dry run says nothing was converted and carries the plan.
"$GENSHIFT" convert "$src" --out "$work/o/out" --dry-run --no-guest --json >"$work/plan.json" ||
	fail "--dry-run --json failed"
python3 - "$work/plan.json" <<'PY' || fail "dry-run JSON report is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["dry_run"] is True and r["converted"] is False, r
assert r["plan"]["esp_number"] == 2, r["plan"]
assert r["boot"]["fs_uuid"] == "0c8e6a52-61e1-4f0a-9d3e-67656e310001", r["boot"]
PY
[ ! -e "$work/o/out" ] || fail "--dry-run --json created $work/o/out"
[ "$(sha256sum <"$src")" = "$before" ] || fail "--dry-run --json changed the source"

# Refusals write nothing either: a source that already is GPT with an ESP.
gen2=$(fixture gen2-tiny.raw)
if "$GENSHIFT" convert "$gen2" --out "$work/out2" --no-guest >"$work/refuse.txt" 2>&1; then
	fail "converting a generation 2 disk succeeded"
fi
grep -q 'not convertible: ALREADY_GEN2' "$work/refuse.txt" ||
	fail "refusal message: $(cat "$work/refuse.txt")"
[ -z "$(ls -A "$work/out2" 2>/dev/null)" ] || fail "a refused conversion wrote $(ls -A "$work/out2")"
# A VM configuration as SRC (Hyper-V shaped: IDE boot disk, a DVD) converts for real: the
# boot disk found through boot_order, IDE -> SCSI 0:0, the configuration's name kept.
mkdir "$work/vm"
cp --sparse=always "$src" "$work/vm/disk0.vhdx"
cat >"$work/vm/web1.json" <<'JSON'
{ "format": "genshift-vmcfg", "version": 1, "name": "web1", "generation": 1,
  "disks": [ { "path": "disk0.vhdx", "bus": "ide", "controller": 0, "location": 0 } ],
  "boot_order": [ "disk:0" ] }
JSON
"$GENSHIFT" convert "$work/vm/web1.json" --out "$work/vm/out" --no-guest >"$work/vm.log" 2>&1 ||
	fail "converting a VM configuration: $(tail -n 3 "$work/vm.log")"
python3 - "$work/vm/out/web1.json" <<'PY' || fail "web1.json: $(cat "$work/vm/out/web1.json")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["name"] == "web1" and c["generation"] == 2, c
d = c["disks"][0]
assert d["path"] == "web1.vhdx" and d["bus"] == "scsi" and (d["controller"], d["location"]) == (0, 0), d
assert c["firmware"] == {"type": "uefi", "nvram": "web1_VARS.fd", "secure_boot": False}, c["firmware"]
PY
[ -s "$work/vm/out/web1.vhdx" ] && [ -s "$work/vm/out/web1_VARS.fd" ] || fail "web1 output files"
echo "convert-dry-run: plan printed, nothing written, source unchanged; a VM configuration converts"
