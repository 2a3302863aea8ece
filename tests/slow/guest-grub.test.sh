#!/bin/sh
# tests/slow/guest-grub.test.sh: guest_fix_linux --guest-grub on a real Debian 12 guest (the
# debian12 fixture): the guest's own grub-install --target=x86_64-efi runs through libguestfs
# and puts its loader on the ESP. The fixture has grub-pc only, so the test first gives a
# copy of it what installing grub-efi-amd64-bin would (the host's /usr/lib/grub/x86_64-efi,
# same GRUB version, copied in with guestfish) and an ESP (FAT32 in a new partition 3 of
# type 0xEF after the disk is grown by 64 MiB). Judged by mtools and fsck.fat (the ESP),
# debugfs (fstab, /boot/grub/x86_64-efi in the guest) and e2fsck. Two appliance launches.
# Builds the fixture first (cached); a build failure is this test's failure.
. "$(dirname "$0")/../boot/lib.sh"
tool=$build/tests/guest_tool
need_file "$tool" "make $build/tests/guest_tool"
for t in guestfish mdir fsck.fat mkfs.fat sfdisk debugfs e2fsck; do
	command -v "$t" >/dev/null || fail "missing $t (make deps)"
done
host_grub=$(dpkg-query -W -f='${Version}' grub-efi-amd64-bin 2>/dev/null) ||
	fail "no grub-efi-amd64-bin on the host (make deps)"
work=$(mktemp -d "${TMPDIR:-/tmp}/guest-grub.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$repo/tests/fixtures/debian12.sh" >"$work/fixture.log" 2>&1 || {
	tail -n 20 "$work/fixture.log"
	fail "cannot build the debian12 fixture (tests/fixtures/debian12.sh)"
}
guest_grub=$(awk '$1 == "grub-common" { print $2 }' "$fixtures/debian12.packages")
[ "$guest_grub" = "$host_grub" ] ||
	fail "host grub-efi-amd64-bin $host_grub differs from the guest's GRUB $guest_grub: modules would not match"

disk=$work/d12.raw
esp_lba=$(($(stat -c %s "$fixtures/debian12.raw") / 512))
cp --sparse=always "$fixtures/debian12.raw" "$disk"
truncate -s +64M "$disk"
echo "start=$esp_lba, size=131072, type=ef" |
	sfdisk -q --append --no-reread --no-tell-kernel "$disk" || fail "sfdisk --append"
truncate -s 64M "$work/esp.img"
mkfs.fat -F 32 -i 4745D12E -n ESP "$work/esp.img" >/dev/null
dd if="$work/esp.img" of="$disk" bs=512 seek="$esp_lba" conv=notrunc status=none
LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish -a "$disk" -m /dev/sda1 \
	copy-in /usr/lib/grub/x86_64-efi /usr/lib/grub/ || fail "guestfish copy-in of the grub-efi modules"

"$tool" fix "$disk" raw 4745D12E --guest-grub >"$work/fix" 2>"$work/fix.err" ||
	fail "fix --guest-grub: $(cat "$work/fix.err")"
cat "$work/fix"
grep -q '^change=grub-install --target=x86_64-efi .*--bootloader-id=debian --no-nvram: ran in the guest$' "$work/fix" ||
	fail "no grub-install reported"

dd if="$disk" of="$work/esp.out" bs=512 skip="$esp_lba" count=131072 status=none
mdir -i "$work/esp.out" -b ::/EFI/debian >"$work/esp.ls" 2>&1 || fail "mdir: $(cat "$work/esp.ls")"
grep -qx '::/EFI/debian/grubx64.efi' "$work/esp.ls" || fail "no \\EFI\\debian\\grubx64.efi: $(tr '\n' ' ' <"$work/esp.ls")"
fsck.fat -n "$work/esp.out" >"$work/fsck.fat.log" 2>&1 || fail "fsck.fat: $(tail -2 "$work/fsck.fat.log")"

set -- $(sfdisk -d "$disk" | sed -n "s|^${disk}1 : start= *\([0-9]*\), size= *\([0-9]*\).*|\1 \2|p")
dd if="$disk" of="$work/root.ext4" bs=512 skip="$1" count="$2" conv=sparse status=none
debugfs -R "cat /etc/fstab" "$work/root.ext4" 2>/dev/null >"$work/fstab"
[ "$(grep -c '^UUID=4745-D12E /boot/efi vfat umask=0077,nofail 0 1$' "$work/fstab")" = 1 ] ||
	fail "fstab has no ESP line: $(tr '\n' '|' <"$work/fstab")"
debugfs -R "stat /boot/grub/x86_64-efi/normal.mod" "$work/root.ext4" 2>&1 | grep -q 'Type: regular' ||
	fail "grub-install did not put its modules in the guest's /boot/grub/x86_64-efi"
e2fsck -fn "$work/root.ext4" >"$work/e2fsck.log" 2>&1 || fail "e2fsck -fn: $(tail -3 "$work/e2fsck.log" | tr '\n' ' ')"
echo "PASS $test_name: the guest's grub-install wrote \\EFI\\debian\\grubx64.efi; fstab has the ESP; e2fsck clean"
