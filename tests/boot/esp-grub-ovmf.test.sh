#!/bin/sh
# esp-grub-ovmf: the ESP that bootfix_linux_esp() writes boots Linux under OVMF (QEMU TCG, q35,
# OVMF_CODE_4M.fd + a copy of OVMF_VARS_4M.fd, virtio-blk). A copy of gen2-tiny has its ESP
# (partition 2) re-made through tests/tools/esp_tool, so the fixture's own ESP is gone, then:
#   1. gen2-tiny.vhdx (written through genshift's VHDX backend, read by QEMU's), fresh
#      NVRAM: the firmware's removable-media option runs \EFI\BOOT\BOOTX64.EFI;
#   2. \EFI\BOOT\BOOTX64.EFI and \EFI\BOOT\grub.cfg deleted (mtools), NVRAM with a Boot####
#      for \EFI\debian\grubx64.efi (virt-fw-vars): the distro loader boots alone, from its
#      own grub.cfg, so the prefix really is the directory it was loaded from;
#   3. the guest's /boot/grub/grub.cfg rewritten (debugfs) to use linux16/initrd16, as
#      RHEL 7 / CentOS 7 BIOS configs do: the stub's functions stand in for them.
# Each must reach "GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok" and power off.
. "$(dirname "$0")/lib.sh"
need_fixtures
TOOL=$build/tests/esp_tool
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars_template=/usr/share/OVMF/OVMF_VARS_4M.fd
for t in qemu-system-x86_64 qemu-img virt-fw-vars debugfs mdir mdel sgdisk timeout "$TOOL"; do
	command -v "$t" >/dev/null 2>&1 || fail "missing $t (make deps; make BUILD=... $TOOL)"
done
need_file "$code" "install ovmf: make deps"
need_file "$vars_template" "install ovmf: make deps"
need_file "$fixtures/gen2-tiny.raw" "make fixtures"
root_uuid=$(sed -n 's/^GEN2_ROOT_UUID=//p' tests/fixtures/build.sh)
[ -n "$root_uuid" ] || fail "no GEN2_ROOT_UUID in tests/fixtures/build.sh"
ESP_ID=600DB007
work=$(mktemp -d "${TMPDIR:-/tmp}/esp-grub-ovmf.XXXXXX")
trap 'rm -rf "$work"' EXIT

# new_disk NAME FORMAT: a copy of gen2-tiny.raw or .vhdx; sets disk, format, first (ESP LBA).
new_disk() {
	disk=$work/$1.$2 format=$2
	cp --sparse=always "$fixtures/gen2-tiny.$2" "$disk"
	first=$(sgdisk -i 2 "$fixtures/gen2-tiny.raw" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
	[ -n "$first" ] || fail "gen2-tiny has no partition 2"
}

make_esp() {
	out=$("$TOOL" linux --id "$ESP_ID" "$disk" 2 debian "$root_uuid" /boot/grub 2>&1) ||
		fail "esp_tool linux: $out"
	# mtools reads the ESP at its offset in a raw image: a raw export of a VHDX (by qemu-img,
	# so QEMU's VHDX reader sees what our writer wrote).
	raw=$disk
	if [ "$format" = vhdx ]; then
		raw=$work/export.raw
		qemu-img check -f vhdx "$disk" >"$work/check.txt" 2>&1 || fail "qemu-img check: $(tail -n 3 "$work/check.txt")"
		qemu-img convert -f vhdx -O raw "$disk" "$raw" || fail "qemu-img convert of $disk"
	fi
	esp="$raw@@$((first * 512))"
	# The fixture's ESP (serial 4745-4E32, mtools-made) must be gone: ours has our serial.
	mdir -i "$esp" ::/EFI/debian >"$work/mdir.txt" 2>&1 || fail "mdir: $(cat "$work/mdir.txt")"
	grep -q "Serial Number is 600D-B007" "$work/mdir.txt" || fail "the ESP is not ours: $(head -n 2 "$work/mdir.txt")"
	rm -f "$work/export.raw"
}

# boot NAME VARS_FILE: QEMU TCG q35 until the guest powers off; checks the marker.
boot() {
	log=$work/$1.serial
	start=$(date +%s)
	rc=0
	timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 512 -nodefaults -display none \
		-no-reboot -serial "file:$log" \
		-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
		-drive "if=pflash,format=raw,unit=1,file=$2" \
		-drive "file=$disk,format=$format,if=virtio,snapshot=on" >"$work/qemu.log" 2>&1 || rc=$?
	[ "$rc" != 124 ] || { tail -n 15 "$log" | tr -d '\r'; fail "$1: no power-off within 300 s"; }
	[ "$rc" = 0 ] || fail "$1: QEMU exited with $rc: $(tail -n 1 "$work/qemu.log")"
	marker=$(tr -d '\r' <"$log" | grep -a '^GENSHIFT-BOOT-OK ' | head -n 1 || true)
	case "$marker" in
	"GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok "*) ;;
	*) tail -n 15 "$log" | tr -d '\r'; fail "$1: no good marker (got '${marker:-nothing}')" ;;
	esac
	echo "ok $1 in $(($(date +%s) - start)) s: $marker"
}

# 1. VHDX, both loaders on the ESP, pristine NVRAM: the removable-media path.
new_disk fallback vhdx
make_esp
cp "$vars_template" "$work/vars1.fd"
boot fallback "$work/vars1.fd"
rm -f "$disk"

# 2. Only \EFI\debian\ left, reached through a Boot#### entry.
new_disk distro raw
make_esp
mdel -i "$esp" ::/EFI/BOOT/BOOTX64.EFI ::/EFI/BOOT/grub.cfg || fail "mdel failed"
virt-fw-vars -i "$vars_template" -o "$work/vars2.fd" \
	--append-boot-filepath '\EFI\debian\grubx64.efi' >"$work/virt-fw-vars.log" 2>&1 ||
	fail "virt-fw-vars: $(tail -n 3 "$work/virt-fw-vars.log")"
boot distro "$work/vars2.fd"
tr -d '\r' <"$work/distro.serial" | grep -aq 'BdsDxe: starting Boot[0-9A-F]* .* from \\EFI\\debian\\grubx64.efi' ||
	fail "distro: OVMF did not start \\EFI\\debian\\grubx64.efi"
rm -f "$disk"

# 3. A guest grub.cfg with linux16/initrd16.
new_disk linux16 raw
root_fs="$disk?offset=$((2048 * 512))"
debugfs -R "cat /boot/grub/grub.cfg" "$root_fs" 2>/dev/null >"$work/grub.cfg"
grep -q '^	linux /boot/vmlinuz' "$work/grub.cfg" || fail "unexpected guest grub.cfg in gen2-tiny"
sed -e 's/^\tlinux /\tlinux16 /' -e 's/^\tinitrd /\tinitrd16 /' "$work/grub.cfg" >"$work/grub16.cfg"
printf 'cd /boot/grub\nrm grub.cfg\nwrite %s grub.cfg\n' "$work/grub16.cfg" >"$work/debugfs.cmd"
debugfs -w -f "$work/debugfs.cmd" "$root_fs" >"$work/debugfs.log" 2>&1 || fail "debugfs: $(tail -n 3 "$work/debugfs.log")"
debugfs -R "cat /boot/grub/grub.cfg" "$root_fs" 2>/dev/null | grep -q '^	linux16 /boot/vmlinuz' ||
	fail "the guest grub.cfg was not rewritten to linux16"
make_esp
cp "$vars_template" "$work/vars3.fd"
boot linux16 "$work/vars3.fd"
echo "ok $test_name ($(elapsed)s)"
