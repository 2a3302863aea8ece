#!/bin/sh
# tests/boot/vmm-gen2-nvram.test.sh - gen2-tiny.raw boots in genshift's VMM as generation 2
# (stock OVMF_CODE_4M.fd, ACPI through the table-loader, GRUB EFI, Linux to its marker with
# root=ok), and the VM's NVRAM file is OVMF's persistent variable store, read back by an
# independent tool (virt-fw-vars) between boots:
# 1. The first boot names no NVRAM file: genshift creates gen2-tiny_VARS.fd beside the
#    disk from OVMF_VARS_4M.fd and says so; afterwards virt-fw-vars finds in it the
#    Boot#### entries and BootOrder that OVMF created.
# 2. On a copy of the disk the loader moves to a non-default path, \EFI\custom\grubx64.efi
#    (mtools at the ESP's byte offset), and \EFI\BOOT\BOOTX64.EFI is removed, so the
#    removable-media fallback can no longer boot anything. virt-fw-vars writes a Boot####
#    entry for that path into the file, as the only BootOrder entry. The next boot must
#    reach the marker: only that entry can have booted it.
# 3. The entry is still in the file afterwards (OVMF did not prune it).
. "$(dirname "$0")/vmm-lib.sh"
need virt-fw-vars mcopy mmd mdel sfdisk
vars=$work/gen2-tiny_VARS.fd
img=$(fixture gen2-tiny.raw)

boot_gen2 "$img" first
grep -q "created the VM's NVRAM file $vars" "$work/first-stderr.log" ||
	fail "genshift did not say it created $vars"
[ "$(json_field "$work/first.json" nvram)" = "$vars" ] || fail "JSON nvram is not $vars"
cmp -s "$vars" /usr/share/OVMF/OVMF_VARS_4M.fd && fail "the NVRAM file is still the template"
virt-fw-vars -i "$vars" -p >"$work/vars1.txt" 2>"$work/vfv1.log" ||
	fail "virt-fw-vars cannot parse the NVRAM file after the first boot"
grep -q '^Boot0' "$work/vars1.txt" || fail "no Boot#### entry after the first boot"
grep -q '^BootOrder' "$work/vars1.txt" || fail "no BootOrder after the first boot"
echo "after the first boot:"
grep '^Boot' "$work/vars1.txt"

# The ESP is partition 2 (type C12A7328-...): its start sector from sfdisk.
esp_lba=$(sfdisk -d "$img" | awk '/C12A7328-F81F-11D2-BA4B-00A0C93EC93B/ {
	sub(",", "", $4); print $4 }')
[ -n "$esp_lba" ] || fail "no ESP in $img"
esp="$img@@$((esp_lba * 512))"
mcopy -n -i "$esp" ::/EFI/BOOT/BOOTX64.EFI "$work/loader.efi" || fail "mcopy out of the ESP"
mcopy -n -i "$esp" ::/EFI/BOOT/grub.cfg "$work/grub.cfg" || fail "mcopy grub.cfg"
mmd -i "$esp" ::/EFI/custom || fail "mmd"
mcopy -i "$esp" "$work/loader.efi" ::/EFI/custom/grubx64.efi || fail "mcopy into the ESP"
mcopy -i "$esp" "$work/grub.cfg" ::/EFI/custom/grub.cfg || fail "mcopy grub.cfg"
mdel -i "$esp" ::/EFI/BOOT/BOOTX64.EFI || fail "mdel"
mdir -i "$esp" -/ ::/EFI >"$work/esp.txt" 2>&1
grep -q 'BOOTX64' "$work/esp.txt" && fail "BOOTX64.EFI is still on the ESP"

virt-fw-vars -i "$vars" -o "$work/vars2.fd" -d BootOrder \
	--append-boot-filepath '\EFI\custom\grubx64.efi' >"$work/vfv2.log" 2>&1 ||
	fail "virt-fw-vars cannot add the boot entry ($(tail -n 1 "$work/vfv2.log"))"
mv "$work/vars2.fd" "$vars"
virt-fw-vars -i "$vars" -p >"$work/vars2.txt" 2>/dev/null
entry=$(sed -n 's/^\(Boot[0-9A-F]\{4\}\) *: boot entry: .*FilePath(\\EFI\\custom\\grubx64.efi).*/\1/p' \
	"$work/vars2.txt" | head -n 1)
[ -n "$entry" ] || fail "virt-fw-vars did not write the EFI/custom/grubx64.efi entry"
printf 'written: %s\n' "$(grep "^$entry" "$work/vars2.txt")"

boot_gen2 "$img" second --nvram "$vars"
virt-fw-vars -i "$vars" -p >"$work/vars3.txt" 2>/dev/null ||
	fail "virt-fw-vars cannot parse the NVRAM file after the second boot"
grep -q "^$entry .*FilePath(\\\\EFI\\\\custom\\\\grubx64.efi)" "$work/vars3.txt" ||
	fail "$entry (EFI/custom/grubx64.efi) is gone from the NVRAM file"
echo "after the second boot:"
grep '^Boot' "$work/vars3.txt"
printf '%s\n' "the second boot came through $entry (\\EFI\\custom\\grubx64.efi): the fallback loader was removed"
