#!/bin/sh
# nvram-boot0001: OVMF boots the Boot0001 entry `genshift nvram add-boot` writes, not the
# removable-media fallback. A copy of gen2-tiny gets its loader moved on the ESP from
# \EFI\BOOT\BOOTX64.EFI to \EFI\debian\grubx64.efi (BOOTX64.EFI deleted, so the firmware's
# auto-created "UEFI Misc Device" options find nothing), a copy of OVMF_VARS_4M.fd gets
# Boot0001 -> HD(2,GPT,...)/File(\EFI\debian\grubx64.efi) and BootOrder 0001, and QEMU (q35,
# TCG, no bootindex so OVMF keeps our BootOrder, bootfix.md §3) must reach
# "GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok". OVMF's console line
# "BdsDxe: loading Boot0001 "debian" from HD(2,GPT,...)" must show which option ran.
# Afterwards the store as OVMF rewrote it must still parse, list the same variables as
# virt-fw-vars, and take a second add-boot that reuses Boot0001.
# qemu-boot.sh always starts from a fresh VARS copy, so QEMU is run here with ours.
. "$(dirname "$0")/lib.sh"
need_fixtures
GENSHIFT=${GENSHIFT:-$build/genshift}
for tool in mcopy mdel mmd mdir sfdisk python3 virt-fw-vars qemu-system-x86_64 "$GENSHIFT"; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
done
code=/usr/share/OVMF/OVMF_CODE_4M.fd
need_file "$code" "install ovmf"
need_file /usr/share/OVMF/OVMF_VARS_4M.fd "install ovmf"
work=$(mktemp -d "${TMPDIR:-/tmp}/nvram-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT
disk=$work/disk.raw
cp --sparse=always "$fixtures/gen2-tiny.raw" "$disk"

# The ESP's byte offset, from sfdisk (independent of our partition reader).
esp_lba=$(sfdisk -J "$disk" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
print([p["start"] for p in t["partitions"] if p["node"].endswith("2")][0])') ||
	fail "sfdisk cannot read the fixture's GPT"
esp="$disk@@$((esp_lba * 512))"
mcopy -i "$esp" ::/EFI/BOOT/BOOTX64.EFI "$work/loader.efi" || fail "no \\EFI\\BOOT\\BOOTX64.EFI on the ESP"
mcopy -i "$esp" ::/EFI/BOOT/grub.cfg "$work/grub.cfg" || fail "no \\EFI\\BOOT\\grub.cfg on the ESP"
mmd -i "$esp" ::/EFI/debian
mcopy -i "$esp" "$work/loader.efi" ::/EFI/debian/grubx64.efi
# The image's GRUB prefix is /EFI/BOOT, whose grub.cfg stays; a copy beside the new loader
# is what a distribution's layout has (bootfix.md 4.1).
mcopy -i "$esp" "$work/grub.cfg" ::/EFI/debian/grub.cfg
mdel -i "$esp" ::/EFI/BOOT/BOOTX64.EFI
if mdir -b -i "$esp" ::/EFI/BOOT | grep -qi 'BOOTX64.EFI'; then
	fail "BOOTX64.EFI is still on the ESP"
fi

cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
"$GENSHIFT" nvram add-boot "$work/vars.fd" --disk "$disk" --partition 2 \
	--loader '\EFI\debian\grubx64.efi' >"$work/add.log" 2>&1 || fail "add-boot: $(cat "$work/add.log")"
grep -q '^Boot0001 "debian"' "$work/add.log" || fail "add-boot wrote: $(cat "$work/add.log")"

# QEMU in the background, so a firmware that gives up on our entry (and lands in its
# shell) fails the test at once instead of at the timeout.
timeout 400 qemu-system-x86_64 -machine q35 -accel tcg -m 512 -nodefaults -display none \
	-no-reboot -serial "file:$work/serial.log" \
	-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
	-drive "if=pflash,format=raw,unit=1,file=$work/vars.fd" \
	-drive "file=$disk,format=raw,if=virtio" >"$work/qemu.log" 2>&1 &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null; rm -rf "$work"' EXIT
while kill -0 "$qemu_pid" 2>/dev/null; do
	if grep -aq 'UEFI Interactive Shell' "$work/serial.log" 2>/dev/null; then
		kill "$qemu_pid"
		break
	fi
	sleep 1
done
rc=0
wait "$qemu_pid" || rc=$?
trap 'rm -rf "$work"' EXIT
tr -d '\r' <"$work/serial.log" | sed 's/\x1b\[[0-9;=?]*[A-Za-z]//g' >"$work/serial.txt"
show_tail() { grep -a 'BdsDxe' "$work/serial.txt" | sed 's/^/  firmware: /'; tail -n 8 "$work/serial.txt" | sed 's/^/  serial: /'; }
grep -aq 'UEFI Interactive Shell' "$work/serial.txt" && { show_tail; fail "OVMF fell through to its shell"; }
[ "$rc" != 124 ] || { show_tail; fail "no power-off within 400 s"; }
[ "$rc" = 0 ] || { show_tail; fail "QEMU exited with $rc: $(tail -n 1 "$work/qemu.log")"; }
marker=$(grep -a '^GENSHIFT-BOOT-OK ' "$work/serial.txt" | head -n 1 || true)
case "$marker" in
"GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok "*) ;;
*) show_tail; fail "no or wrong marker: '$marker'" ;;
esac
loading=$(grep -a 'BdsDxe: loading Boot' "$work/serial.txt" || true)
case "$loading" in
*'BdsDxe: loading Boot0001 "debian" from HD(2,GPT,'*'\EFI\debian\grubx64.efi'*) ;;
*) show_tail; fail "OVMF did not say it loaded Boot0001: '$loading'" ;;
esac
[ "$(printf '%s\n' "$loading" | wc -l)" = 1 ] || fail "OVMF tried other options first: $loading"
echo "$loading"
echo "$marker"

# The store as the firmware left it (its own variables appended, replaced copies marked):
# we still parse it, list what virt-fw-vars lists, and a second add-boot reuses Boot0001.
"$GENSHIFT" nvram show "$work/vars.fd" --json >"$work/ours.json" || fail "cannot read the store OVMF wrote"
virt-fw-vars -i "$work/vars.fd" --output-json "$work/vfv.json" >/dev/null 2>&1 ||
	fail "virt-fw-vars cannot read the store OVMF wrote"
python3 - "$work/ours.json" "$work/vfv.json" <<'PY' || fail "our listing of the firmware's store differs from virt-fw-vars'"
import json, sys
key = lambda v: (v["name"], v["guid"].lower(), int(v["attr"]), v["data"].lower())
ours, theirs = (sorted(map(key, json.load(open(p))["variables"])) for p in sys.argv[1:3])
if ours != theirs:
    print(sorted(set(ours) ^ set(theirs))[:4]); sys.exit(1)
print("firmware-written store: %d variables, both parsers agree" % len(ours))
PY
"$GENSHIFT" nvram add-boot "$work/vars.fd" --disk "$disk" --partition 2 \
	--loader '\EFI\debian\grubx64.efi' >"$work/add2.log" 2>&1 || fail "second add-boot: $(cat "$work/add2.log")"
grep -q '^Boot0001 "debian"' "$work/add2.log" || fail "second add-boot wrote: $(cat "$work/add2.log")"
echo "ok $test_name ($(elapsed)s)"
