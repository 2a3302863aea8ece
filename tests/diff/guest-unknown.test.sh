#!/bin/sh
# tests/diff/guest-unknown.test.sh - guest_inspect on a root libguestfs's inspection does not
# recognise as any OS (an ext4 with /etc/fstab and /boot/grub/grub.cfg, no /bin, no release
# files): the call succeeds with os_type/distro/arch "unknown" and still reports the root
# partition, its UUID (judged by blkid), the fstab entries (judged by awk) and the GRUB facts
# (linux16). One appliance launch.
# Env: BUILD (build dir with tests/guest_tool), TMPDIR.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
tool=$BUILD/tests/guest_tool
PATH=$PATH:/usr/sbin:/sbin

fail() {
	echo "guest-unknown: FAIL: $*"
	exit 1
}

for t in mkfs.ext4 sfdisk blkid dd awk; do
	command -v "$t" >/dev/null || fail "missing $t (make deps)"
done
[ -x "$tool" ] || fail "no $tool (make $BUILD/tests/guest_tool)"

work=$(mktemp -d "${TMPDIR:-/tmp}/guest-unknown.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

mkdir -p "$work/root/etc" "$work/root/boot/grub"
printf '# no OS here\n/dev/sda1\t/ ext4 defaults 0 1\nLABEL=data /data\n' >"$work/root/etc/fstab"
printf 'menuentry x {\n  linux16 /vmlinuz root=/dev/sda1\n  initrd16 /initrd\n}\n' \
	>"$work/root/boot/grub/grub.cfg"
mkfs.ext4 -q -F -d "$work/root" "$work/root.ext4" 16M >/dev/null
uuid=$(blkid -p -o value -s UUID "$work/root.ext4")
[ -n "$uuid" ] || fail "blkid found no UUID"
disk=$work/unknown.raw
truncate -s 20M "$disk"
echo 'start=2048, type=83' | sfdisk -q --no-reread --no-tell-kernel "$disk" >/dev/null
dd if="$work/root.ext4" of="$disk" bs=512 seek=2048 conv=notrunc status=none

"$tool" inspect "$disk" raw >"$work/insp" 2>"$work/insp.err" || fail "inspect: $(cat "$work/insp.err")"
for kv in os_type=unknown distro=unknown arch=unknown root_part=1 boot_part=1 \
	root_fs_uuid="$uuid" root_encrypted=0 bootloader=grub2 grub_cfg=/boot/grub/grub.cfg \
	grub_has_linux16=1 grub_bls=0; do
	grep -qxF "$kv" "$work/insp" || fail "expected $kv, got: $(tr '\n' ' ' <"$work/insp")"
done
want=$(awk '$1 !~ /^#/ && NF { print "fstab=" $1 " " $2 " " $3 }' "$work/root/etc/fstab")
[ "$(grep '^fstab=' "$work/insp")" = "$want" ] ||
	fail "fstab entries: $(grep '^fstab=' "$work/insp" | tr '\n' '|'), awk: $(echo "$want" | tr '\n' '|')"
echo "guest-unknown: PASS (unrecognised root still reported: partition, UUID, fstab, GRUB facts)"
