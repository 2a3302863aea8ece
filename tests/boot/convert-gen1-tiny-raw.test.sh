#!/bin/sh
# convert-gen1-tiny-raw: the gen1-tiny raw disk converts with the full pipeline (libguestfs
# inspection and guest edits included); the source keeps its bytes; the output passes
# qemu-img check, sgdisk -v, fsck.fat and virt-fw-vars; it boots to its UEFI marker in
# QEMU + OVMF (through our Boot0001) and in genshift's own VMM (`genshift verify` on the
# generation 2 configuration the conversion wrote).
. "$(dirname "$0")/../diff/convert-lib.sh"

src=$(fixture gen1-tiny.raw)
before=$(sha256sum <"$src")
"$GENSHIFT" convert "$src" --out "$work/out" >"$work/convert.log" 2>&1 ||
	fail "convert: $(tail -n 3 "$work/convert.log")"
cat "$work/out/gen1-tiny.log"
[ "$(sha256sum <"$src")" = "$before" ] || fail "the source changed"
check_output "$work/out" gen1-tiny
grep -q 'step 4: guest files done' "$work/out/gen1-tiny.log" || fail "no guest step in the log"
grep -q 'skipped' "$work/out/gen1-tiny.log" && fail "a step was skipped: $(grep skipped "$work/out/gen1-tiny.log")"

qemu_uefi_boot "$work/out/gen1-tiny.vhdx" vhdx "$work/out/gen1-tiny_VARS.fd" "raw -> vhdx"

vmm_uefi_boot "$work/out/gen1-tiny.json" "raw -> vhdx"
echo "convert-gen1-tiny-raw: boots as generation 2 in QEMU + OVMF and in genshift's VMM"
