#!/bin/sh
# convert-inplace: `genshift convert --in-place` then `genshift rollback` gives back the
# source byte for byte: the whole file for raw, the virtual disk (and a clean qemu-img check)
# for VHDX. Also after a crash in the middle of --in-place, and for a disk whose ESP lands in
# free space that held other bytes (the undo record keeps them: NAME.undo-esp).
. "$(dirname "$0")/convert-lib.sh"

inplace_roundtrip() { # IMAGE FMT LABEL [fault step]
	img=$1 fmt=$2 label=$3 fault=${4:-}
	file_before=$(sha256sum <"$img")
	size_before=$(stat -c %s "$img")
	virt_before=
	[ "$fmt" = raw ] || virt_before=$(vhash "$img") # raw: the file hash below says more
	rc=0
	GENSHIFT_FAULT_AFTER_STEP=$fault "$GENSHIFT" convert "$img" --in-place --out "$work/o" \
		--name g --no-guest >"$work/conv.log" 2>&1 || rc=$?
	if [ -n "$fault" ]; then
		[ "$rc" = 99 ] || fail "$label: fault after step $fault: exit $rc ($(tail -n 2 "$work/conv.log"))"
	else
		[ "$rc" = 0 ] || fail "$label: convert --in-place: $(tail -n 3 "$work/conv.log")"
		[ -e "$work/o/g.undo" ] || fail "$label: no undo manifest"
		# The converted source is what a copy would be: GPT + ESP, NVRAM entry.
		check_disk "$img" "$fmt"
		check_vars "$work/o/g_VARS.fd"
		grep -q "\"path\": \"$img\"" "$work/o/g.json" || fail "$label: g.json does not name $img"
	fi
	"$GENSHIFT" rollback "$work/o/g.undo" >"$work/rb.log" 2>&1 ||
		fail "$label: rollback: $(tail -n 3 "$work/rb.log")"
	if [ "$fmt" = raw ]; then
		[ "$(stat -c %s "$img")" = "$size_before" ] || fail "$label: size differs after rollback"
		[ "$(sha256sum <"$img")" = "$file_before" ] || fail "$label: file differs after rollback"
	else
		[ "$(vhash "$img")" = "$virt_before" ] || fail "$label: virtual disk differs after rollback"
		qemu-img check -f "$fmt" "$img" >/dev/null 2>&1 || fail "$label: qemu-img check after rollback"
	fi
	[ ! -e "$work/o/g.undo" ] && [ ! -e "$work/o/g.json" ] && [ ! -e "$work/o/g_VARS.fd" ] ||
		fail "$label: rollback left $(ls -A "$work/o")"
	rm -rf "$work/o"
	echo "$label: restored ($(sed -n 1p "$work/rb.log"))"
}

raw=$(fixture gen1-tiny.raw)
inplace_roundtrip "$raw" raw "raw"
inplace_roundtrip "$raw" raw "raw, crash after the undo record" 1
inplace_roundtrip "$raw" raw "raw, crash after the GPT" 3
inplace_roundtrip "$raw" raw "raw, crash after the ESP" 4

vhdx=$(fixture gen1-tiny.vhdx)
inplace_roundtrip "$vhdx" vhdx "vhdx"
inplace_roundtrip "$vhdx" vhdx "vhdx, crash after the ESP" 4

# Free space at the end of the disk that is not zero: the ESP goes there, and rollback must
# bring the old bytes back (they are in g.undo-esp, not in the partition undo file).
big=$work/free.raw
cp --sparse=always "$raw" "$big"
truncate -s 512M "$big"
# The ESP starts at 128 MiB, right after the last partition: its FAT goes over these bytes.
head -c 3M /dev/urandom | dd of="$big" bs=1M seek=128 conv=notrunc status=none
cp --sparse=always "$big" "$work/free.orig"
inplace_roundtrip "$big" raw "raw with non-zero free space"
# A damaged g.undo-esp is refused before anything is written (CRC, then record bounds).
"$GENSHIFT" convert "$big" --in-place --out "$work/o" --name g --no-guest >/dev/null 2>&1 ||
	fail "conversion for the damaged-undo case failed"
converted=$(sha256sum <"$big")
cp "$work/o/g.undo-esp" "$work/esp.good"
printf '\377' | dd of="$work/o/g.undo-esp" bs=1 seek=100 conv=notrunc status=none
if "$GENSHIFT" rollback "$work/o/g.undo" >"$work/bad-esp.log" 2>&1; then
	fail "rollback accepted a damaged g.undo-esp"
fi
grep -q 'CRC32' "$work/bad-esp.log" || fail "damaged g.undo-esp: $(cat "$work/bad-esp.log")"
[ "$(sha256sum <"$big")" = "$converted" ] || fail "a refused rollback wrote to the disk"
cp "$work/esp.good" "$work/o/g.undo-esp"
"$GENSHIFT" rollback "$work/o/g.undo" >/dev/null 2>&1 || fail "rollback after repairing g.undo-esp"
cmp -s "$big" "$work/free.orig" || fail "rollback after repairing g.undo-esp: bytes differ"
rm -rf "$work/o"
# Control: without g.undo-esp the same rollback cannot restore those bytes.
"$GENSHIFT" convert "$big" --in-place --out "$work/o" --name g --no-guest >/dev/null 2>&1 ||
	fail "control conversion failed"
[ -s "$work/o/g.undo-esp" ] || fail "g.undo-esp is empty although the ESP covers non-zero bytes"
rm "$work/o/g.undo-esp"
"$GENSHIFT" rollback "$work/o/g.undo" >/dev/null 2>&1 || fail "control rollback failed"
cmp -s "$big" "$work/free.orig" && fail "control: the source came back without g.undo-esp"
rm -rf "$work/o"

# A forged manifest cannot point rollback elsewhere.
mkdir -p "$work/o"
printf '{"format":"genshift-convert-undo","version":1,"source":"%s","partition_undo":"../x","outputs":[]}' \
	"$raw" >"$work/o/bad.undo"
if "$GENSHIFT" rollback "$work/o/bad.undo" >"$work/bad.log" 2>&1; then
	fail "rollback accepted a manifest naming ../x"
fi
grep -q 'must be a plain file name' "$work/bad.log" || fail "forged manifest: $(cat "$work/bad.log")"
echo "convert-inplace: every rollback restored the source exactly"
