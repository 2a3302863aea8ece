#!/bin/sh
# tests/diff/guest-luks.test.sh - guest_inspect on the usual encrypted-root layout: an
# unencrypted ext4 /boot (partition 1, with a grub.cfg) and a LUKS2 volume (partition 2)
# holding the root. genshift never asks for keys, so inspection must succeed and say
# root_encrypted=1, no root partition, no fstab: the facts analyze refuses on. blkid judges
# that the image really is what the test claims. One appliance launch.
# Env: BUILD (build dir with tests/guest_tool), TMPDIR.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
tool=$BUILD/tests/guest_tool

fail() {
	echo "guest-luks: FAIL: $*"
	exit 1
}

PATH=$PATH:/usr/sbin:/sbin
for t in cryptsetup mkfs.ext4 sfdisk blkid dd; do
	command -v "$t" >/dev/null || fail "missing $t (make deps)"
done
[ -x "$tool" ] || fail "no $tool (make $BUILD/tests/guest_tool)"

work=$(mktemp -d "${TMPDIR:-/tmp}/guest-luks.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# /boot: what an installer's separate /boot holds, minus the kernel.
mkdir -p "$work/boot/grub"
printf 'menuentry x {\n\tlinux /vmlinuz root=/dev/mapper/root ro\n}\n' >"$work/boot/grub/grub.cfg"
mkfs.ext4 -q -F -d "$work/boot" "$work/boot.ext4" 16M >/dev/null
printf 'genshift-test' >"$work/key"
truncate -s 40M "$work/root.luks"
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$work/key" "$work/root.luks" >/dev/null 2>&1 || fail "cryptsetup luksFormat"

disk=$work/luks.raw
truncate -s 64M "$disk"
sfdisk -q --no-reread --no-tell-kernel "$disk" >/dev/null <<EOF
label: dos
unit: sectors
start=2048, size=32768, type=83, bootable
start=34816, size=81920, type=83
EOF
dd if="$work/boot.ext4" of="$disk" bs=512 seek=2048 conv=notrunc,sparse status=none
dd if="$work/root.luks" of="$disk" bs=512 seek=34816 conv=notrunc,sparse status=none
[ "$(blkid -p -o value -s TYPE --offset $((34816 * 512)) "$disk")" = crypto_LUKS ] ||
	fail "blkid does not see LUKS in partition 2"

"$tool" inspect "$disk" raw >"$work/insp" 2>"$work/insp.err" || fail "inspect: $(cat "$work/insp.err")"
for kv in os_type=unknown root_part=0 root_encrypted=1 root_on_lvm=0 root_fs_uuid="(none)"; do
	grep -qxF "$kv" "$work/insp" || fail "expected $kv, got: $(tr '\n' ' ' <"$work/insp")"
done
! grep -q '^fstab=' "$work/insp" || fail "fstab entries reported without a root"
echo "guest-luks: PASS (LUKS root reported as root_encrypted=1, no root)"
