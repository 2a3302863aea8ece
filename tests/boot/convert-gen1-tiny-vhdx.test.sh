#!/bin/sh
# convert-gen1-tiny-vhdx: the gen1-tiny VHDX converts (source unchanged, output judged by
# qemu-img, sgdisk, fsck.fat and virt-fw-vars), and QEMU + OVMF boots it through the
# Boot0001 entry we wrote in NAME_VARS.fd even with \EFI\BOOT\BOOTX64.EFI deleted from the
# ESP: the NVRAM entry, not the removable-media fallback, is what boots. genshift's VMM
# then boots the output too.
. "$(dirname "$0")/../diff/convert-lib.sh"
need mdel

src=$(fixture gen1-tiny.vhdx)
before=$(sha256sum <"$src")
"$GENSHIFT" convert "$src" --out "$work/out" --no-guest >"$work/convert.log" 2>&1 ||
	fail "convert: $(tail -n 3 "$work/convert.log")"
[ "$(sha256sum <"$src")" = "$before" ] || fail "the source changed"
check_output "$work/out" gen1-tiny

# check_output left the raw export in $work/check.raw: delete the fallback loader there.
esp_lba=$(sgdisk -p "$work/check.raw" | awk '$6 == "EF00" { print $2 }')
mdel -i "$work/check.raw@@$((esp_lba * 512))" ::/EFI/BOOT/BOOTX64.EFI || fail "mdel"
if mtype -i "$work/check.raw@@$((esp_lba * 512))" ::/EFI/BOOT/BOOTX64.EFI >/dev/null 2>&1; then
	fail "BOOTX64.EFI still there"
fi
qemu_uefi_boot "$work/check.raw" raw "$work/out/gen1-tiny_VARS.fd" "vhdx, no BOOTX64.EFI"

# Our VMM boots the untouched output with its NVRAM file (QEMU above used copies).
vmm_uefi_boot "$work/out/gen1-tiny.json" "vhdx"
echo "convert-gen1-tiny-vhdx: boots as generation 2 in QEMU + OVMF (Boot0001 only) and in genshift's VMM"
