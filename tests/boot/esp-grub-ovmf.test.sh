#!/bin/sh
# esp-grub-ovmf: the ESP that bootfix_linux_esp() writes boots Linux under OVMF (QEMU TCG, q35,
# OVMF_CODE_4M.fd + a copy of OVMF_VARS_4M.fd, virtio-blk). Copies of gen2-tiny get a new
# ESP through tests/tools/esp_tool (the fixture's own ESP, serial 4745-4E32, is gone; ours
# has serial 600D-B007), then three boots must each reach
# "GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok" and power off:
#   1. 4Kn: gen2-tiny's root on a disk with 4096-byte sectors (GPT by fdisk -b 4096, a
#      260 MiB ESP), as a VHDX with 4096-byte logical sectors written through genshift's
#      VHDX backend, booted as raw with 4096-byte virtio blocks (QEMU does not open 4Kn
#      VHDX); pristine NVRAM: the firmware's removable-media option runs \EFI\BOOT\BOOTX64.EFI;
#   2. \EFI\BOOT\BOOTX64.EFI and \EFI\BOOT\grub.cfg deleted (mtools), NVRAM with a Boot####
#      for \EFI\debian\grubx64.efi (virt-fw-vars): the distro loader boots alone, from its
#      own grub.cfg, so the prefix really is the directory it was loaded from;
#   3. the guest's /boot/grub/grub.cfg rewritten (debugfs) to use linux16/initrd16, as
#      RHEL 7 / CentOS 7 BIOS configs do: the stub's functions stand in for them.
# Before the boots, gen2-tiny.vhdx (512-byte sectors) gets its ESP the same way, and
# qemu-img check and QEMU's VHDX reader (qemu-img convert, then mtools) must agree.
. "$(dirname "$0")/lib.sh"
need_fixtures
TOOL=$build/tests/esp_tool
VHDX=$build/tests/vhdx_tool
GENSHIFT=${GENSHIFT:-$build/genshift}
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars_template=/usr/share/OVMF/OVMF_VARS_4M.fd
for t in qemu-system-x86_64 qemu-img virt-fw-vars debugfs fdisk mdir mdel sgdisk timeout \
	"$TOOL" "$VHDX" "$GENSHIFT"; do
	command -v "$t" >/dev/null 2>&1 || fail "missing $t (make deps; make BUILD=... all $TOOL $VHDX)"
done
need_file "$code" "install ovmf: make deps"
need_file "$vars_template" "install ovmf: make deps"
need_file "$fixtures/gen2-tiny.raw" "make fixtures"
root_uuid=$(sed -n 's/^GEN2_ROOT_UUID=//p' tests/fixtures/build.sh)
[ -n "$root_uuid" ] || fail "no GEN2_ROOT_UUID in tests/fixtures/build.sh"
ESP_ID=600DB007
work=$(mktemp -d "${TMPDIR:-/tmp}/esp-grub-ovmf.XXXXXX")
trap 'rm -rf "$work"' EXIT

# new_disk NAME FORMAT: a copy of gen2-tiny.raw or .vhdx; sets disk, format, ss, first (the
# ESP's first sector).
new_disk() {
	disk=$work/$1.$2 format=$2 ss=512
	cp --sparse=always "$fixtures/gen2-tiny.$2" "$disk"
	first=$(sgdisk -i 2 "$fixtures/gen2-tiny.raw" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
	[ -n "$first" ] || fail "gen2-tiny has no partition 2"
}

# new_4kn_disk NAME: gen2-tiny's root file system (4 KiB blocks) at 1 MiB of a 400 MiB disk
# with 4096-byte sectors, ESP = partition 2, as a 4Kn VHDX.
new_4kn_disk() {
	raw=$work/$1-src.raw
	truncate -s 400M "$raw"
	printf 'g\nn\n1\n256\n24831\nn\n2\n24832\n91391\nt\n2\n1\nw\n' |
		fdisk -b 4096 "$raw" >"$work/fdisk.log" 2>&1 || fail "fdisk -b 4096: $(tail -n 3 "$work/fdisk.log")"
	dd if="$fixtures/gen2-tiny.raw" of="$raw" bs=1M skip=1 seek=1 count=96 conv=notrunc,sparse status=none
	disk=$work/$1.vhdx format=vhdx ss=4096 first=24832
	"$GENSHIFT" disk convert "$raw" "$disk" --format vhdx --logical-sector 4096 >"$work/convert.log" 2>&1 ||
		fail "genshift disk convert: $(tail -n 3 "$work/convert.log")"
	rm -f "$raw"
}

# make_esp: bootfix_linux_esp on partition 2, then our serial and \EFI\debian must be what
# mtools finds at the ESP's offset of a raw export; sets esp (mtools -i) for raw disks.
make_esp() {
	out=$("$TOOL" linux --id "$ESP_ID" "$disk" 2 debian "$root_uuid" /boot/grub 2>&1) ||
		fail "esp_tool linux: $out"
	raw=$disk
	if [ "$format" = vhdx ] && [ "$ss" = 512 ]; then
		raw=$work/export.raw
		qemu-img check -f vhdx "$disk" >"$work/check.txt" 2>&1 || fail "qemu-img check: $(tail -n 3 "$work/check.txt")"
		qemu-img convert -f vhdx -O raw "$disk" "$raw" || fail "qemu-img convert of $disk"
	elif [ "$format" = vhdx ]; then
		raw=$work/export.raw
		"$VHDX" cat "$disk" >"$raw" || fail "vhdx_tool cat $disk"
	fi
	esp="$raw@@$((first * ss))"
	mdir -i "$esp" ::/EFI/debian >"$work/mdir.txt" 2>&1 || fail "mdir: $(cat "$work/mdir.txt")"
	grep -q "Serial Number is 600D-B007" "$work/mdir.txt" || fail "the ESP is not ours: $(head -n 2 "$work/mdir.txt")"
}

# boot NAME VARS_FILE: QEMU TCG q35 until the guest powers off; checks the marker. Boots
# $raw (the disk itself, or its raw export) with $ss-byte virtio blocks.
boot() {
	log=$work/$1.serial
	start=$(date +%s)
	rc=0
	timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 512 -nodefaults -display none \
		-no-reboot -serial "file:$log" \
		-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
		-drive "if=pflash,format=raw,unit=1,file=$2" \
		-drive "file=$raw,format=raw,if=none,id=disk0,snapshot=on" \
		-device "virtio-blk-pci,drive=disk0,logical_block_size=$ss,physical_block_size=$ss" \
		>"$work/qemu.log" 2>&1 || rc=$?
	[ "$rc" != 124 ] || { tail -n 15 "$log" | tr -d '\r'; fail "$1: no power-off within 300 s"; }
	[ "$rc" = 0 ] || fail "$1: QEMU exited with $rc: $(tail -n 1 "$work/qemu.log")"
	marker=$(tr -d '\r' <"$log" | grep -a '^GENSHIFT-BOOT-OK ' | head -n 1 || true)
	case "$marker" in
	"GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok "*) ;;
	*) tail -n 15 "$log" | tr -d '\r'; fail "$1: no good marker (got '${marker:-nothing}')" ;;
	esac
	echo "ok $1 in $(($(date +%s) - start)) s: $marker"
}

# 0. gen2-tiny.vhdx: our VHDX writes, read back by qemu-img (no boot).
new_disk vhdx512 vhdx
make_esp
echo "ok vhdx512: qemu-img check clean, mtools finds the new ESP"
rm -f "$disk" "$work/export.raw"

# 1. 4Kn, both loaders on the ESP, pristine NVRAM: the removable-media path.
new_4kn_disk fallback4k
make_esp
cp "$vars_template" "$work/vars1.fd"
boot fallback4k "$work/vars1.fd"
tr -d '\r' <"$work/fallback4k.serial" | grep -aq '4096-byte logical blocks' ||
	fail "fallback4k: the guest did not see 4096-byte blocks"
rm -f "$disk" "$work/export.raw"

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
