#!/bin/sh
# tests/diff/guest-inspect.test.sh - bootfix/guest.c through libguestfs on the fixtures,
# judged by independent readers: blkid for UUIDs, debugfs for file contents, e2fsck for the
# file system after our edits. Four appliance launches (~15-30 s each under TCG):
#   1. guest_inspect on a copy of gen1-tiny whose fstab names /dev/sda1 and /dev/sda5 and
#      whose grub.cfg uses linux16 and root=/dev/sda1, as VHDX (qemu's vhdx driver);
#   2. guest_inspect on gen1-syslinux (SYSLINUX on a separate FAT /boot);
#   3. guest_fix_linux --guest-grub on the copy: refused (no grub-efi in the guest), nothing
#      edited;
#   4. guest_fix_linux on the copy: fstab, grub.cfg rewritten exactly as expected, backups
#      kept, mode kept, e2fsck clean.
# Env: BUILD (build dir with tests/guest_tool and fixtures/), TMPDIR.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
tool=$BUILD/tests/guest_tool
fx=$BUILD/fixtures

fail() {
	echo "guest-inspect: FAIL: $*"
	exit 1
}

for t in debugfs e2fsck sfdisk blkid qemu-img dd; do
	command -v "$t" >/dev/null || fail "missing $t (make deps)"
done
[ -x "$tool" ] || fail "no $tool (make $BUILD/tests/guest_tool)"
for f in gen1-tiny.raw gen1-syslinux.raw; do
	[ -f "$fx/$f" ] || fail "no $fx/$f (make fixtures BUILD=$BUILD)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/guest-inspect.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# part_geom DISK N: "START SECTORS" of partition N, from sfdisk.
part_geom() {
	sfdisk -d "$1" | sed -n "s|^$1$2 : start= *\([0-9]*\), size= *\([0-9]*\).*|\1 \2|p"
}
extract() { # extract DISK N OUT
	set -- "$1" "$2" "$3" $(part_geom "$1" "$2")
	[ $# -eq 5 ] || fail "cannot find partition $2 of $1"
	dd if="$1" of="$3" bs=512 skip="$4" count="$5" conv=sparse status=none
}
put_back() { # put_back IMAGE DISK N (not sparse: zeros in IMAGE must overwrite)
	set -- "$1" "$2" "$3" $(part_geom "$2" "$3")
	dd if="$1" of="$2" bs=512 seek="$4" conv=notrunc status=none
}
dcat() { # dcat IMAGE PATH
	debugfs -R "cat $2" "$1" 2>/dev/null
}
# expect FILE KEY VALUE: FILE (guest_tool output) has the line KEY=VALUE.
expect() {
	grep -qxF "$2=$3" "$1" || fail "$(basename "$1"): expected $2=$3, got: $(grep "^$2=" "$1" | tr '\n' ' ')"
}
# fstab_lines FSTAB: what guest_tool should print for it, by awk's own field splitting.
fstab_lines() {
	awk '$1 !~ /^#/ && NF { print "fstab=" $1 " " $2 " " $3 }' "$1"
}

# ---- the modified copy of gen1-tiny ----
mod=$work/mod.raw
cp --sparse=always "$fx/gen1-tiny.raw" "$mod"
extract "$mod" 1 "$work/p1.ext4"
extract "$mod" 5 "$work/p5.swap"
root_uuid=$(blkid -p -o value -s UUID "$work/p1.ext4")
swap_uuid=$(blkid -p -o value -s UUID "$work/p5.swap")
[ -n "$root_uuid" ] && [ -n "$swap_uuid" ] || fail "blkid found no UUIDs in gen1-tiny"
new_partuuid=6e1a1a57-0d4c-4f1b-9d7e-1a2b3c4d5e6f
printf '# /etc/fstab of a guest that names its disk\n/dev/sda1\t/\text4 errors=remount-ro 0 1\n%s\n%s\n%s\n' \
	'/dev/sda5 none swap sw 0 0' \
	'PARTUUID=67656e31-01  /srv/p1 ext4 noauto,nofail 0 0' \
	'/dev/sdb1 /data ext4 defaults,nofail 0 2' >"$work/fstab.sda"
dcat "$work/p1.ext4" /boot/grub/grub.cfg >"$work/grub.orig"
grep -q 'root=UUID=' "$work/grub.orig" || fail "gen1-tiny's grub.cfg has no root=UUID="
sed -e 's/^\tlinux /\tlinux16 /' -e 's/^\tinitrd /\tinitrd16 /' \
	-e 's|root=UUID=[^ ]*|root=/dev/sda1 resume=/dev/sda5|' "$work/grub.orig" >"$work/grub.sda"
cat >"$work/edit.cmds" <<EOF
cd /etc
rm fstab
write $work/fstab.sda fstab
sif fstab mode 0100640
cd /boot/grub
rm grub.cfg
write $work/grub.sda grub.cfg
EOF
debugfs -w -f "$work/edit.cmds" "$work/p1.ext4" >/dev/null 2>&1
[ "$(dcat "$work/p1.ext4" /etc/fstab)" = "$(cat "$work/fstab.sda")" ] || fail "debugfs write of fstab"
# Not the 0644 a new file would get: proves the edit keeps the file's mode.
mode_before=$(debugfs -R "stat /etc/fstab" "$work/p1.ext4" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p')
[ "$mode_before" = 0640 ] || fail "debugfs sif mode: $mode_before"
put_back "$work/p1.ext4" "$mod" 1
qemu-img convert -f raw -O vhdx "$mod" "$work/mod.vhdx"

# ---- 1. inspect the copy, as VHDX ----
"$tool" inspect "$work/mod.vhdx" vhdx >"$work/insp1" 2>"$work/insp1.err" ||
	fail "inspect mod.vhdx: $(cat "$work/insp1.err")"
expect "$work/insp1" os_type linux
expect "$work/insp1" distro debian
expect "$work/insp1" major 12
expect "$work/insp1" arch x86_64
expect "$work/insp1" root_part 1
expect "$work/insp1" boot_part 1
expect "$work/insp1" root_fs_uuid "$root_uuid"
expect "$work/insp1" root_encrypted 0
expect "$work/insp1" root_on_lvm 0
expect "$work/insp1" bootloader grub2
expect "$work/insp1" grub_cfg /boot/grub/grub.cfg
expect "$work/insp1" grub_bls 0
expect "$work/insp1" grub_has_linux16 1
expect "$work/insp1" has_grub_efi 0
[ "$(grep '^fstab=' "$work/insp1")" = "$(fstab_lines "$work/fstab.sda")" ] ||
	fail "inspect mod.vhdx: fstab entries differ from awk's: $(grep '^fstab=' "$work/insp1" | tr '\n' '|')"

# ---- 2. inspect gen1-syslinux ----
extract "$fx/gen1-syslinux.raw" 1 "$work/sysl-boot.fat"
extract "$fx/gen1-syslinux.raw" 2 "$work/sysl-root.ext4"
"$tool" inspect "$fx/gen1-syslinux.raw" raw >"$work/insp2" 2>"$work/insp2.err" ||
	fail "inspect gen1-syslinux: $(cat "$work/insp2.err")"
expect "$work/insp2" distro debian
expect "$work/insp2" root_part 2
expect "$work/insp2" boot_part 1
expect "$work/insp2" root_fs_uuid "$(blkid -p -o value -s UUID "$work/sysl-root.ext4")"
expect "$work/insp2" boot_fs_uuid "$(blkid -p -o value -s UUID "$work/sysl-boot.fat")"
expect "$work/insp2" bootloader syslinux
expect "$work/insp2" loader_cfg /boot/syslinux.cfg
expect "$work/insp2" grub_cfg "(none)"
dcat "$work/sysl-root.ext4" /etc/fstab >"$work/sysl-fstab"
[ "$(grep '^fstab=' "$work/insp2")" = "$(fstab_lines "$work/sysl-fstab")" ] ||
	fail "inspect gen1-syslinux: fstab entries differ from awk's"
rm -f "$work/sysl-boot.fat" "$work/sysl-root.ext4"

# ---- 3. --guest-grub without grub-efi in the guest: refused before any edit ----
rc=0
"$tool" fix "$mod" raw 4745A0B1 --guest-grub >"$work/fix1" 2>"$work/fix1.err" || rc=$?
[ "$rc" = 2 ] || fail "fix --guest-grub: exit $rc, expected 2 (-ENOTSUP): $(cat "$work/fix1.err")"
grep -q 'no grub-efi modules' "$work/fix1.err" || fail "fix --guest-grub: message: $(cat "$work/fix1.err")"
extract "$mod" 1 "$work/p1.ext4"
[ "$(dcat "$work/p1.ext4" /etc/fstab)" = "$(cat "$work/fstab.sda")" ] || fail "refused --guest-grub changed fstab"
debugfs -R "stat /etc/fstab.genshift-bak" "$work/p1.ext4" 2>&1 | grep -q 'not found' ||
	fail "refused --guest-grub left a backup"

# ---- 4. fix: the exact expected files ----
"$tool" fix "$mod" raw 4745A0B1 --partuuid "67656e31-01=$new_partuuid" >"$work/fix2" 2>"$work/fix2.err" ||
	fail "fix: $(cat "$work/fix2.err")"
extract "$mod" 1 "$work/p1.ext4"
printf '# /etc/fstab of a guest that names its disk\nUUID=%s\t/\text4 errors=remount-ro 0 1\n%s\n%s\n%s\n%s\n' \
	"$root_uuid" "UUID=$swap_uuid none swap sw 0 0" \
	"PARTUUID=$new_partuuid  /srv/p1 ext4 noauto,nofail 0 0" \
	'/dev/sdb1 /data ext4 defaults,nofail 0 2' \
	'UUID=4745-A0B1 /boot/efi vfat umask=0077,nofail 0 1' >"$work/fstab.want"
dcat "$work/p1.ext4" /etc/fstab >"$work/fstab.got"
cmp -s "$work/fstab.got" "$work/fstab.want" ||
	fail "fixed fstab differs: $(diff "$work/fstab.want" "$work/fstab.got" | tr '\n' '|')"
sed -e "s|root=/dev/sda1|root=UUID=$root_uuid|" -e "s|resume=/dev/sda5|resume=UUID=$swap_uuid|" \
	"$work/grub.sda" >"$work/grub.want"
dcat "$work/p1.ext4" /boot/grub/grub.cfg >"$work/grub.got"
cmp -s "$work/grub.got" "$work/grub.want" ||
	fail "fixed grub.cfg differs: $(diff "$work/grub.want" "$work/grub.got" | tr '\n' '|')"
dcat "$work/p1.ext4" /etc/fstab.genshift-bak | cmp -s - "$work/fstab.sda" || fail "fstab backup differs"
dcat "$work/p1.ext4" /boot/grub/grub.cfg.genshift-bak | cmp -s - "$work/grub.sda" ||
	fail "grub.cfg backup differs"
mode_after=$(debugfs -R "stat /etc/fstab" "$work/p1.ext4" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p')
[ "$mode_after" = "$mode_before" ] || fail "fstab mode $mode_after, was $mode_before"
debugfs -R "stat /etc/fstab.genshift-new" "$work/p1.ext4" 2>&1 | grep -q 'not found' ||
	fail "a temporary fstab.genshift-new was left"
grep -qxF "change=/etc/fstab: /dev/sda1 -> UUID=$root_uuid" "$work/fix2" || fail "fix: no report of /dev/sda1"
grep -qxF "change=/boot/grub/grub.cfg: resume=/dev/sda5 -> resume=UUID=$swap_uuid" "$work/fix2" ||
	fail "fix: no report of resume="
[ "$(grep -c '^change=' "$work/fix2")" = 6 ] || fail "fix: expected 6 changes: $(tr '\n' '|' <"$work/fix2")"
e2fsck -fn "$work/p1.ext4" >"$work/fsck.log" 2>&1 || fail "e2fsck -fn after fix: $(tail -3 "$work/fsck.log" | tr '\n' ' ')"
echo "guest-inspect: PASS (inspect vhdx + syslinux, --guest-grub refused, fix exact)"
