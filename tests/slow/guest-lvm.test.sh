#!/bin/sh
# tests/slow/guest-lvm.test.sh: guest_inspect on a RHEL-like layout: ext4 /boot on partition 1,
# the root on an LVM logical volume (vg0/root on partition 2), a BLS grub.cfg. Expected:
# root_part 0 (not a partition), root_on_lvm 1, boot_part 1, grub.cfg named inside the boot
# file system (/grub/grub.cfg), grub_bls 1, the UUIDs of both file systems (boot judged by
# blkid; the LV's read by guestfish when it is made, since the host has no device-mapper).
# Two appliance launches (one to build the disk with guestfish, one to inspect), so it
# lives in the slow suite rather than in make check.
. "$(dirname "$0")/../boot/lib.sh"
tool=$build/tests/guest_tool
need_file "$tool" "make $build/tests/guest_tool"
for t in guestfish blkid; do
	command -v "$t" >/dev/null || fail "missing $t (make deps)"
done
work=$(mktemp -d "${TMPDIR:-/tmp}/guest-lvm.XXXXXX")
trap 'rm -rf "$work"' EXIT

disk=$work/lvm.raw
truncate -s 64M "$disk"
cat >"$work/make.fish" <<'EOF'
run
part-init /dev/sda mbr
part-add /dev/sda p 2048 34815
part-add /dev/sda p 34816 -2048
mkfs ext4 /dev/sda1
pvcreate /dev/sda2
vgcreate vg0 /dev/sda2
lvcreate root vg0 20
mkfs ext4 /dev/vg0/root
mount /dev/vg0/root /
mkdir-p /etc
mkdir-p /boot
mkdir-p /usr/bin
ln-s usr/bin /bin
upload /bin/busybox /usr/bin/sh
write /etc/os-release "ID=rhel\nVERSION_ID=9.4\nNAME=\"Red Hat Enterprise Linux\"\n"
write /etc/redhat-release "Red Hat Enterprise Linux release 9.4 (Plow)\n"
write /etc/fstab "/dev/mapper/vg0-root / ext4 defaults 0 1\n/dev/sda1 /boot ext4 defaults 0 2\n"
mount /dev/sda1 /boot
mkdir-p /boot/grub2
write /boot/grub2/grub.cfg "set default=0\ninsmod blscfg\nblscfg\n"
echo LVUUID
vfs-uuid /dev/vg0/root
EOF
LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish -a "$disk" -f "$work/make.fish" >"$work/make.out" 2>&1 ||
	fail "guestfish could not build the LVM disk: $(tail -3 "$work/make.out")"
lv_uuid=$(sed -n '/^LVUUID$/{n;p;}' "$work/make.out")
boot_uuid=$(blkid -p -o value -s UUID --offset $((2048 * 512)) "$disk")
[ -n "$lv_uuid" ] && [ -n "$boot_uuid" ] || fail "no UUIDs (LV '$lv_uuid', boot '$boot_uuid')"

"$tool" inspect "$disk" raw >"$work/insp" 2>"$work/insp.err" || fail "inspect: $(cat "$work/insp.err")"
cat "$work/insp"
for kv in os_type=linux distro=rhel major=9 root_part=0 root_on_lvm=1 boot_part=1 \
	root_fs_uuid="$lv_uuid" boot_fs_uuid="$boot_uuid" bootloader=grub2 \
	loader_cfg=/boot/grub2/grub.cfg grub_cfg=/grub2/grub.cfg grub_bls=1; do
	grep -qxF "$kv" "$work/insp" || fail "expected $kv"
done
echo "PASS $test_name: LVM root (root_part 0), separate /boot, BLS grub.cfg reported"
