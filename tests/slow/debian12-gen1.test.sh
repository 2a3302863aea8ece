#!/bin/sh
# tests/slow/debian12-gen1.test.sh: the debian12 fixture (debootstrapped Debian 12, GRUB
# i386-pc from its own grub-install, swap in a logical partition at the disk's end) boots
# as generation 1 to systemd userspace with root and swap found by UUID:
#   1. QEMU, SeaBIOS, -accel kvm inside the nested-KVM harness, from debian12.raw;
#   2. genshift's VMM (`genshift verify --gen 1`, which goes through the harness itself
#      without hardware KVM), from a copy of debian12.vhdx.
# First (step 0) the disk as sfdisk, blkid and qemu-img read it. Builds the fixture first
# (cached); a build failure is this test's failure.
. "$(dirname "$0")/../boot/lib.sh"
GENSHIFT=${GENSHIFT:-$build/genshift}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
want="GENSHIFT-BOOT-OK firmware=bios fixture=debian12 root=ok userspace=systemd kernel=[^ ]+ swap=ok"

need_file "$GENSHIFT" "make"
work=$(mktemp -d "${TMPDIR:-/tmp}/debian12-gen1.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$repo/tests/fixtures/debian12.sh" >"$work/fixture.log" 2>&1 || {
	tail -n 20 "$work/fixture.log"
	fail "cannot build the debian12 fixture (tests/fixtures/debian12.sh)"
}
cat "$work/fixture.log"

# 0. The disk as independent tools read it: the layout a converter must cope with (no free
# space: the extended partition and the logical swap both end at the last sector), the
# filesystems' fixed UUIDs, GRUB's boot.img in the MBR, and the same disk in all formats.
raw="$fixtures/debian12.raw"
sfdisk -J "$raw" >"$work/sfdisk.json" || fail "sfdisk -J cannot read debian12.raw"
python3 - "$work/sfdisk.json" "$(($(stat -c %s "$raw") / 512))" <<'EOF' || fail "unexpected layout (sfdisk -J above)"
import json, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
last = int(sys.argv[2]) - 1
p = {e["node"][-1]: e for e in t["partitions"]}
end = lambda e: e["start"] + e["size"] - 1
ok = (t["label"] == "dos" and sorted(p) == ["1", "2", "5"]
      and p["1"]["start"] == 2048 and p["1"]["type"] == "83" and p["1"].get("bootable")
      and p["2"]["type"] == "5" and p["5"]["type"] == "82"
      and end(p["2"]) == last and end(p["5"]) == last)
if not ok:
    print(json.dumps(t, indent=1))
sys.exit(0 if ok else 1)
EOF
fs() { # fs LBA: "TYPE UUID" of the filesystem at sector LBA, as blkid probes it
	blkid -p -O $(($1 * 512)) -o export "$raw" |
		awk -F= '$1 == "TYPE" {t = $2} $1 == "UUID" {u = $2} END {print t, u}'
}
[ "$(fs 2048)" = "ext4 0c8e6a52-61e1-4f0a-9d3e-646562310001" ] || fail "root p1: $(fs 2048)"
[ "$(fs 3674112)" = "swap 0c8e6a52-61e1-4f0a-9d3e-646562310005" ] || fail "swap p5: $(fs 3674112)"
head -c 440 "$raw" | grep -a -q 'GRUB ' || fail "no GRUB boot.img in the MBR"
qemu-img compare -q -f raw -F vpc "$raw" "$fixtures/debian12.vhd" || fail "debian12.vhd differs from the raw disk"
qemu-img compare -q -f raw -F vhdx "$raw" "$fixtures/debian12.vhdx" || fail "debian12.vhdx differs from the raw disk"
echo "layout: ok ($(elapsed) s)"

# 1. QEMU + SeaBIOS under nested KVM. qemu-boot.sh checks the marker's prefix and that
# QEMU exits by itself (the guest powered off); the rest of the line is checked here.
t=$(elapsed)
rc=0
WITH_KVM_TIMEOUT=$((BOOT_TIMEOUT + 300)) "$harness" "$repo/tests/boot/qemu-boot.sh" --kvm \
	--timeout "$BOOT_TIMEOUT" bios "$fixtures/debian12.raw" raw debian12 \
	>"$work/qemu.out" 2>&1 || rc=$?
cat "$work/qemu.out"
[ "$rc" = 0 ] || fail "QEMU/SeaBIOS under nested KVM: exit $rc: $(grep -m1 FAIL "$work/qemu.out")"
grep -q -E "^boot ok: .*: $want\$" "$work/qemu.out" ||
	fail "QEMU/SeaBIOS: the marker lacks 'userspace=systemd ... swap=ok'"
echo "qemu: passed, harness run $(echo "$(elapsed) $t" | awk '{printf "%.1f", $1 - $2}') s"

# 2. genshift's VMM on the VHDX (it writes to the disk: a sparse copy).
t=$(elapsed)
cp --sparse=always "$fixtures/debian12.vhdx" "$work/debian12.vhdx"
rc=0
"$GENSHIFT" verify --gen 1 --disk "$work/debian12.vhdx" --memory 512M --expect "$want" \
	--timeout "$BOOT_TIMEOUT" --json --serial-log "$work/vmm-serial.log" \
	>"$work/vmm.json" 2>"$work/vmm-stderr.log" || rc=$?
cat "$work/vmm.json"
if [ "$rc" != 0 ]; then
	tail -n 15 "$work/vmm-serial.log" 2>/dev/null | tr -d '\r' | sed 's/^/  serial: /'
	fail "genshift verify --gen 1 debian12.vhdx: exit $rc: $(tail -n 2 "$work/vmm-stderr.log")"
fi
grep -q '"exit_reason": *"matched"' "$work/vmm.json" || fail "VMM: exit reason is not 'matched'"
grep -a -q -E "$want" "$work/vmm-serial.log" || fail "VMM: the marker is not in the serial log"
"$GENSHIFT" disk check "$work/debian12.vhdx" >"$work/check.log" 2>&1 ||
	fail "VMM: debian12.vhdx fails genshift disk check after the boot: $(tail -n 2 "$work/check.log")"
qemu-img check -q -f vhdx "$work/debian12.vhdx" ||
	fail "VMM: debian12.vhdx fails qemu-img check after the boot"
echo "vmm: passed, $(elapsed) s since start, this boot $(echo "$(elapsed) $t" | awk '{printf "%.1f", $1 - $2}') s"
