#!/bin/sh
# tests/boot/vmm-linux-persist.test.sh - a Linux guest writes a file on one boot and reads
# it back on the next, through ext4 -> virtio-blk (flushes counted) -> our VHDX backend.
# gen1-tiny's initramfs only reads, so this test appends a second cpio archive to its
# initrd (Linux unpacks concatenated archives in order, the later /init wins) whose /init
# mounts the root read-write, increments /genshift-persist, syncs, unmounts and prints
# GENSHIFT-PERSIST=<n>. The edited disk becomes a VHDX through qemu-img; after two boots
# qemu-img check must find the VHDX consistent and e2fsprogs (both independent of
# genshift) must read 2 from the image and find the ext4 clean.
. "$(dirname "$0")/vmm-lib.sh"
need sfdisk debugfs e2fsck cpio qemu-img

img=$(fixture gen1-tiny.raw)
set -- $(sfdisk -d "$img" | sed -n 's/.*1 : start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
[ $# -eq 2 ] || fail "cannot find partition 1 of gen1-tiny"
p1_start=$1 p1_sectors=$2
extract_p1() { # disk-image partition-file
	dd if="$1" of="$2" bs=512 skip="$p1_start" count="$p1_sectors" conv=sparse status=none
}
extract_p1 "$img" "$work/p1.img"
initrd=$(debugfs -R "ls /boot" "$work/p1.img" 2>/dev/null | tr ' ' '\n' | grep '^initrd.img-' | head -n 1)
[ -n "$initrd" ] || fail "no initrd in gen1-tiny's /boot"
debugfs -R "dump /boot/$initrd $work/initrd.old" "$work/p1.img" 2>/dev/null
[ -s "$work/initrd.old" ] || fail "cannot read /boot/$initrd"

mkdir -p "$work/overlay"
cat >"$work/overlay/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "/$ko" 2>/dev/null; done </modules.order
for arg in $(cat /proc/cmdline); do case "$arg" in root=*) rootspec=${arg#root=} ;; esac; done
i=0
while [ $i -lt 50 ] && ! dev=$(findfs "$rootspec" 2>/dev/null); do sleep 0.1; i=$((i + 1)); done
echo 1 >/proc/sys/kernel/printk
n=fail
if [ -n "$dev" ] && mount -t ext4 -o rw "$dev" /root; then
	n=$(( $(cat /root/genshift-persist 2>/dev/null || echo 0) + 1 ))
	echo "$n" >/root/genshift-persist
	sync
	umount /root || n=fail
fi
echo "GENSHIFT-PERSIST=$n"
poweroff -f
INIT
chmod 755 "$work/overlay/init"
(cd "$work/overlay" && echo init | cpio -o -H newc --quiet -R 0:0) >"$work/overlay.cpio"
cat "$work/initrd.old" "$work/overlay.cpio" >"$work/initrd.new"
debugfs -w -R "rm /boot/$initrd" "$work/p1.img" >/dev/null 2>&1
debugfs -w -R "write $work/initrd.new /boot/$initrd" "$work/p1.img" >/dev/null 2>&1
dd if="$work/p1.img" of="$img" bs=512 seek="$p1_start" conv=notrunc,sparse status=none
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$img" "$work/disk.vhdx" ||
	fail "qemu-img convert to VHDX"
rm -f "$img" "$work/p1.img" "$work/initrd.old" "$work/initrd.new"

for n in 1 2; do
	"$GENSHIFT" verify --disk "$work/disk.vhdx" --expect "^GENSHIFT-PERSIST=$n\$" \
		--timeout "$BOOT_TIMEOUT" --json --serial-log "$work/boot$n-serial.log" \
		--accel "${VMM_ACCEL:-auto}" >"$work/boot$n.json" 2>"$work/boot$n-stderr.log" ||
		fail "boot $n: no GENSHIFT-PERSIST=$n: $(grep -a 'GENSHIFT-PERSIST' "$work/boot$n-serial.log")"
	flushes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exits"]["virtio_flushes"])' "$work/boot$n.json")
	[ "$flushes" -gt 0 ] || fail "boot $n: the guest's sync sent no flush to the VMM"
	echo "boot $n: GENSHIFT-PERSIST=$n after $(json_field "$work/boot$n.json" time_to_match_s) s, $flushes flushes"
done

qemu-img check -f vhdx "$work/disk.vhdx" >"$work/check.log" 2>&1 ||
	fail "qemu-img check finds the VHDX damaged after our writes: $(cat "$work/check.log")"
qemu-img convert -f vhdx -O raw "$work/disk.vhdx" "$work/back.raw" || fail "qemu-img read-back"
extract_p1 "$work/back.raw" "$work/p1.img"
e2fsck -fn "$work/p1.img" >"$work/e2fsck.log" 2>&1 || fail "e2fsck finds the ext4 damaged"
got=$(debugfs -R "cat /genshift-persist" "$work/p1.img" 2>/dev/null)
[ "$got" = 2 ] || fail "e2fsprogs reads '$got' from /genshift-persist, expected 2"
echo "qemu-img check: clean; e2fsprogs reads 2 from /genshift-persist; e2fsck: clean"
