#!/bin/sh
# tests/slow/debian12-convert.test.sh: `genshift convert` turns the debian12 fixture (gen 1:
# MBR, GRUB i386-pc, swap in a logical partition up to the disk's last sector, fstab by
# UUID) into a generation 2 VM, and that VM boots to systemd userspace with root and swap
# found by UUID:
#   1. the converted disk, read by sgdisk: a valid GPT with an EFI System partition, and
#      root (1) and swap (5) at the sectors they had (the disk grew to make room);
#   2. genshift's VMM runs the generated gen 2 configuration (OVMF + its NVRAM, booting
#      through the Boot0001 entry the conversion wrote: virt-fw-vars checks it first);
#   3. QEMU + OVMF (a fresh variable store: the removable-media path \EFI\BOOT\BOOTX64.EFI)
#      under nested KVM boots the converted VHDX.
# The source VHDX must come out unchanged. Fails (never skips) while the converter is
# missing.
. "$(dirname "$0")/../boot/lib.sh"
GENSHIFT=${GENSHIFT:-$build/genshift}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
want="GENSHIFT-BOOT-OK firmware=uefi fixture=debian12 root=ok userspace=systemd kernel=[^ ]+ swap=ok"

need_file "$GENSHIFT" "make"
for tool in sgdisk qemu-img sha256sum python3; do
	command -v "$tool" >/dev/null || fail "missing $tool (make deps)"
done
"$GENSHIFT" convert --help >/dev/null 2>&1 ||
	fail "'genshift convert' is not in $GENSHIFT yet (issue 7's converter): cannot convert debian12 to generation 2"

work=$(mktemp -d "${TMPDIR:-/tmp}/debian12-convert.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$repo/tests/fixtures/debian12.sh" >"$work/fixture.log" 2>&1 || {
	tail -n 20 "$work/fixture.log"
	fail "cannot build the debian12 fixture (tests/fixtures/debian12.sh)"
}
src="$work/debian12.vhdx"
cp --sparse=always "$fixtures/debian12.vhdx" "$src"
src_sum=$(sha256sum <"$src")

# ---- convert ----
t=$(elapsed)
rc=0
"$GENSHIFT" convert "$src" --out "$work/out" --name debian12 >"$work/convert.log" 2>&1 || rc=$?
cat "$work/convert.log"
[ "$rc" = 0 ] || fail "genshift convert debian12.vhdx: exit $rc: $(tail -n 1 "$work/convert.log")"
echo "convert: $(echo "$(elapsed) $t" | awk '{printf "%.1f", $1 - $2}') s"
[ "$(sha256sum <"$src")" = "$src_sum" ] || fail "convert changed its source debian12.vhdx"
for f in debian12.vhdx debian12_VARS.fd debian12.json; do
	need_file "$work/out/$f" "genshift convert's output"
done
qemu-img check -q -f vhdx "$work/out/debian12.vhdx" || fail "qemu-img check: converted VHDX"
# Deep inspection recognised Debian and edited its fstab (not the structural fallback).
grep -q 'step 0: analysis (deep)' "$work/out/debian12.log" || fail "the conversion did not inspect the guest"
grep -q 'guest: /etc/fstab: added UUID=.* /boot/efi vfat' "$work/out/debian12.log" ||
	fail "no /boot/efi line added to the guest's fstab: $(grep 'step 4' "$work/out/debian12.log")"
# The NVRAM as virt-fw-vars reads it: our Boot0001 first.
command -v virt-fw-vars >/dev/null || fail "missing virt-fw-vars (make deps)"
virt-fw-vars -i "$work/out/debian12_VARS.fd" -p >"$work/vars.txt" 2>&1 || fail "virt-fw-vars -p: $(tail -n 2 "$work/vars.txt")"
grep -q 'Boot0001 .*title="debian" devpath=Partition(nr=2)/FilePath(\\EFI\\debian\\grubx64.efi)' "$work/vars.txt" ||
	fail "NVRAM: no Boot0001 -> \\EFI\\debian\\grubx64.efi: $(grep Boot "$work/vars.txt")"
grep -q 'BootOrder *: boot order: 0001' "$work/vars.txt" || fail "NVRAM: Boot0001 is not first"

# ---- the converted disk as sgdisk reads it ----
sectors() { # sectors PARTNUM FILE: "start end" from sgdisk -i
	sgdisk -i "$1" "$2" | awk '/^First sector:/ {f = $3} /^Last sector:/ {l = $3} END {print f, l}'
}
qemu-img convert -f vhdx -O raw "$work/out/debian12.vhdx" "$work/gen2.raw"
sgdisk -v "$work/gen2.raw" >"$work/sgdisk-v.log" 2>&1 || fail "sgdisk -v: $(tail -n 2 "$work/sgdisk-v.log")"
grep -q 'No problems found' "$work/sgdisk-v.log" || fail "sgdisk -v: $(head -n 3 "$work/sgdisk-v.log")"
sgdisk -p "$work/gen2.raw" >"$work/sgdisk-p.log"
grep -q -E ' EF00 ' "$work/sgdisk-p.log" || fail "no EFI System partition (EF00) in the converted GPT"
[ "$(sectors 1 "$work/gen2.raw")" = "2048 3672063" ] || fail "root partition 1 moved: $(sectors 1 "$work/gen2.raw")"
[ "$(sectors 5 "$work/gen2.raw")" = "3674112 4194303" ] || fail "swap partition 5 moved: $(sectors 5 "$work/gen2.raw")"
rm -f "$work/gen2.raw"

# ---- gen 2 in genshift's VMM, from the generated configuration ----
t=$(elapsed)
rc=0
"$GENSHIFT" verify "$work/out/debian12.json" --expect "$want" --timeout "$BOOT_TIMEOUT" \
	--json --serial-log "$work/vmm-serial.log" >"$work/vmm.json" 2>"$work/vmm-stderr.log" || rc=$?
cat "$work/vmm.json"
if [ "$rc" != 0 ]; then
	tail -n 15 "$work/vmm-serial.log" 2>/dev/null | tr -d '\r' | sed 's/^/  serial: /'
	fail "genshift verify (gen 2) debian12.json: exit $rc: $(tail -n 2 "$work/vmm-stderr.log")"
fi
grep -a -q -E "$want" "$work/vmm-serial.log" || fail "VMM gen 2: the marker is not in the serial log"
grep -a -q 'BdsDxe: starting Boot0001 "debian" from HD(2,GPT' "$work/vmm-serial.log" ||
	fail "VMM gen 2: OVMF did not boot through our Boot0001: $(grep -a BdsDxe "$work/vmm-serial.log" | tr -d '\r' | tail -n 2)"
echo "vmm gen 2: matched, $(echo "$(elapsed) $t" | awk '{printf "%.1f", $1 - $2}') s"

# ---- gen 2 in QEMU + OVMF under nested KVM ----
t=$(elapsed)
rc=0
WITH_KVM_TIMEOUT=$((BOOT_TIMEOUT + 300)) "$harness" --rw "$work/out" "$repo/tests/boot/qemu-boot.sh" --kvm \
	--timeout "$BOOT_TIMEOUT" uefi "$work/out/debian12.vhdx" vhdx debian12 \
	>"$work/qemu.out" 2>&1 || rc=$?
cat "$work/qemu.out"
[ "$rc" = 0 ] || fail "QEMU/OVMF under nested KVM: exit $rc: $(grep -m1 FAIL "$work/qemu.out")"
grep -q -E "^boot ok: .*: $want\$" "$work/qemu.out" ||
	fail "QEMU/OVMF: the marker lacks 'userspace=systemd ... swap=ok'"
echo "qemu gen 2: passed, harness run $(echo "$(elapsed) $t" | awk '{printf "%.1f", $1 - $2}') s"
