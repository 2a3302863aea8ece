#!/bin/sh
# tests/diff/nvram-virt-fw-vars.test.sh - our OVMF variable store reader and writer against
# python3-virt-firmware's (virt-fw-vars), an independent parser of the same edk2 format:
# - `genshift nvram add-boot` on copies of Debian's OVMF_VARS_4M.fd, OVMF_VARS_4M.ms.fd
#   (deleted and replaced entries, Secure Boot keys) and the 2M OVMF_VARS.fd: virt-fw-vars
#   reads the result, its Boot#### / BootOrder bytes equal the load option built here in
#   Python from the UEFI spec, its -p shows Partition(nr=N)/FilePath(\EFI\...), and every
#   other variable is as before;
# - `genshift nvram show --json` lists exactly virt-fw-vars' variables (name, GUID,
#   attributes, data) for each of those files, before and after;
# - a second add-boot of the same target changes no byte; damaged stores are refused with
#   exit 1 and left alone, so is a store a running (paused) QEMU holds locked; the same
#   disk as VHDX or VHD gives the same bytes.
set -eu
: "${BUILD:=build}" "${TMPDIR:=/tmp}"
GENSHIFT=${GENSHIFT:-$BUILD/genshift}
for tool in virt-fw-vars sgdisk qemu-img qemu-system-x86_64 python3 "$GENSHIFT"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
work=$(mktemp -d "$TMPDIR/nvram-vfv.XXXXXX")
trap 'rm -rf "$work"' EXIT
case=setup
fail() { echo "FAIL ($case): $*"; exit 1; }

# A small GPT disk: partition 3 is the ESP whose HD() node we expect.
guid=6E1A1A57-0D4C-4F1B-9D7E-1A2B3C4D5E6F
truncate -s 64M "$work/disk.raw"
sgdisk -n 1:2048:+8M -n 3:20480:+32M -t 3:EF00 -u "3:$guid" "$work/disk.raw" >/dev/null ||
	fail "sgdisk cannot make the disk"
start=20480
sectors=$((32 * 2048))
loader='\EFI\debian\grubx64.efi'

# Our listing and virt-fw-vars' listing of $1 agree variable by variable.
same_listing() {
	"$GENSHIFT" nvram show "$1" --json >"$work/ours.json" || fail "nvram show: exit $?"
	virt-fw-vars -i "$1" --output-json "$work/vfv.json" >/dev/null 2>&1 ||
		fail "virt-fw-vars cannot read $1"
	python3 - "$work/ours.json" "$work/vfv.json" <<'PY' || fail "listings differ"
import json, sys
ours = json.load(open(sys.argv[1]))["variables"]
theirs = json.load(open(sys.argv[2]))["variables"]
key = lambda v: (v["name"], v["guid"].lower(), int(v["attr"]), v["data"].lower())
a, b = sorted(map(key, ours)), sorted(map(key, theirs))
if a != b:
    for x in sorted(set(a) ^ set(b)):
        print("only in", "ours  " if x in a else "theirs", x[:3], x[3][:64])
    sys.exit(1)
print("  %d variables agree" % len(a))
PY
}

# $1 the file written, $2 the pristine template, $3 the Boot#### number we expect.
check_written() {
	virt-fw-vars -i "$1" --output-json "$work/after.json" >/dev/null 2>&1 ||
		fail "virt-fw-vars cannot read what we wrote"
	virt-fw-vars -i "$2" --output-json "$work/before.json" >/dev/null 2>&1 ||
		fail "virt-fw-vars cannot read $2"
	python3 - "$work/after.json" "$work/before.json" "$3" "$guid" "$start" "$sectors" "$loader" <<'PY' ||
import json, struct, sys, uuid
after, before = (json.load(open(p))["variables"] for p in sys.argv[1:3])
num, guid, start, sectors, loader = int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
# EFI_LOAD_OPTION per UEFI 2.10 3.1.3, device path nodes per 10.3.5.1 / 10.3.5.4.
hd = bytes([4, 1, 42, 0]) + struct.pack("<IQQ", 3, start, sectors) + uuid.UUID(guid).bytes_le + bytes([2, 2])
fp = (loader + "\0").encode("utf-16-le")
dp = hd + bytes([4, 4]) + struct.pack("<H", 4 + len(fp)) + fp + bytes([0x7F, 0xFF, 4, 0])
want = struct.pack("<IH", 1, len(dp)) + "debian\0".encode("utf-16-le") + dp
old_order = [v for v in before if v["name"] == "BootOrder" and v["guid"] == GLOBAL]
order = [num] + [n for n in struct.unpack("<%dH" % (len(old_order[0]["data"]) // 4), bytes.fromhex(old_order[0]["data"])) if n != num] if old_order else [num]
expect = {("Boot%04X" % num, GLOBAL): (7, want.hex()),
          ("BootOrder", GLOBAL): (7, struct.pack("<%dH" % len(order), *order).hex())}
got = {(v["name"], v["guid"]): (int(v["attr"]), v["data"].lower()) for v in after}
for k, (attr, data) in expect.items():
    if got.get(k) != (attr, data):
        print("%s: got %s, want attr %d data %s" % (k[0], got.get(k), attr, data)); sys.exit(1)
rest_after = {k: v for k, v in got.items() if k not in expect}
rest_before = {(v["name"], v["guid"]): (int(v["attr"]), v["data"].lower()) for v in before if (v["name"], v["guid"]) not in expect}
if rest_after != rest_before:
    print("other variables changed:", sorted(set(rest_after.items()) ^ set(rest_before.items()))[:4]); sys.exit(1)
print("  Boot%04X and BootOrder %s as intended, %d other variables unchanged" % (num, order, len(rest_after)))
PY
	fail "Boot####/BootOrder bytes"
	line=$(virt-fw-vars -i "$1" -p 2>/dev/null | grep "^Boot$(printf %04X "$3") ") || fail "no Boot entry in -p"
	case "$line" in
	*'title="debian" devpath=Partition(nr=3)/FilePath(\EFI\debian\grubx64.efi)'*) ;;
	*) fail "virt-fw-vars -p shows: $line" ;;
	esac
}

for spec in OVMF_VARS_4M.fd:1 OVMF_VARS_4M.ms.fd:3 OVMF_VARS.fd:1; do
	tmpl=/usr/share/OVMF/${spec%%:*}
	num=${spec#*:}
	case=${spec%%:*}
	[ -f "$tmpl" ] || fail "missing $tmpl (install ovmf)"
	cp "$tmpl" "$work/in.fd"
	same_listing "$work/in.fd"
	"$GENSHIFT" nvram add-boot "$work/in.fd" --disk "$work/disk.raw" --partition 3 \
		--loader "$loader" --out "$work/out.fd" >"$work/add.log" 2>&1 ||
		fail "add-boot: $(cat "$work/add.log")"
	cmp -s "$work/in.fd" "$tmpl" || fail "--out changed the input file"
	grep -q "^Boot000$num \"debian\"" "$work/add.log" || fail "add-boot said: $(cat "$work/add.log")"
	check_written "$work/out.fd" "$tmpl" "$num"
	same_listing "$work/out.fd"
	# The FV header and the FTW areas stay byte-identical; only the store changed.
	python3 - "$work/out.fd" "$tmpl" <<'PY' || fail "bytes outside the variable area changed"
import sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
store_end = 0x40000 if len(a) == 0x84000 else 0xE000
assert len(a) == len(b) and a[:0x64] == b[:0x64] and a[store_end:] == b[store_end:]
PY
	# Again, in place and with '/' separators: nothing changes.
	cp "$work/out.fd" "$work/again.fd"
	"$GENSHIFT" nvram add-boot "$work/again.fd" --disk "$work/disk.raw" --partition 3 \
		--loader /EFI/debian/grubx64.efi >/dev/null 2>&1 || fail "second add-boot failed"
	cmp -s "$work/again.fd" "$work/out.fd" || fail "a second add-boot of the same target changed bytes"
done

# The other Debian templates (Secure Boot keys, deleted entries, both layouts): read alike.
for t in OVMF_VARS.ms.fd OVMF_VARS_4M.snakeoil.fd; do
	case=$t
	[ -f "/usr/share/OVMF/$t" ] || fail "missing /usr/share/OVMF/$t (install ovmf)"
	same_listing "/usr/share/OVMF/$t"
done

# The partition is read through vdisk: the same disk as VHDX and VHD gives the same bytes.
case=vhdx-vhd
for fmt in vhdx vpc; do
	qemu-img convert -q -f raw -O "$fmt" "$work/disk.raw" "$work/disk.$fmt" || fail "qemu-img -O $fmt"
	cp /usr/share/OVMF/OVMF_VARS.fd "$work/$fmt.fd"
	"$GENSHIFT" nvram add-boot "$work/$fmt.fd" --disk "$work/disk.$fmt" --partition 3 \
		--loader "$loader" >/dev/null 2>&1 || fail "add-boot from $fmt"
	cmp -s "$work/$fmt.fd" "$work/out.fd" || fail "add-boot from the $fmt disk wrote other bytes"
done

# Damaged stores: exit 1 with the reason, file untouched.
case=damaged
refused() { # file expected-message
	cp "$1" "$work/before.fd"
	rc=0
	"$GENSHIFT" nvram add-boot "$1" --disk "$work/disk.raw" --partition 3 --loader "$loader" \
		>"$work/err.log" 2>&1 || rc=$?
	[ "$rc" = 1 ] || fail "exit $rc, expected 1: $(cat "$work/err.log")"
	grep -q "$2" "$work/err.log" || fail "message: $(cat "$work/err.log"), expected '$2'"
	cmp -s "$1" "$work/before.fd" || fail "a refused store was modified"
}
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/bad.fd"
printf '\001' | dd of="$work/bad.fd" bs=1 seek=$((0x2C)) conv=notrunc 2>/dev/null
refused "$work/bad.fd" "checksum"
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/busy.fd"
# An allocated, incomplete fault-tolerant write at the head of the queue (0x41020): header
# state 0xFC (Complete not yet cleared), NumberOfWrites 1, one record with the spare written
# and the destination not: what a VM killed in the middle of a reclaim leaves.
python3 - "$work/busy.fd" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0x41020)
f.write(bytes([0xFC, 0, 0, 0]) + bytes(range(16)) + bytes(4) + struct.pack("<QQ", 1, 0)
        + bytes([0xFD]) + bytes(7) + struct.pack("<QQQq", 0, 0, 0x1000, 0))
PY
refused "$work/busy.fd" "fault-tolerant write was interrupted"
# A store a running VM has open: QEMU (paused, -S) holds its image locks on the VARS file.
case=in-use
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/used.fd"
qemu-system-x86_64 -machine q35 -accel tcg -nodefaults -display none -S \
	-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
	-drive "if=pflash,format=raw,unit=1,file=$work/used.fd" >"$work/qemu.log" 2>&1 &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null; rm -rf "$work"' EXIT
i=0
until python3 -c 'import fcntl, struct, sys
fd = open(sys.argv[1], "rb")
fl = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
sys.exit(struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_OFD_GETLK, fl))[0] == fcntl.F_UNLCK)' "$work/used.fd"; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU did not lock the VARS file: $(cat "$work/qemu.log")"
	sleep 0.1
done
refused "$work/used.fd" "locked by another process"
kill "$qemu_pid"
wait "$qemu_pid" 2>/dev/null || true
trap 'rm -rf "$work"' EXIT
"$GENSHIFT" nvram add-boot "$work/used.fd" --disk "$work/disk.raw" --partition 3 --loader "$loader" \
	>"$work/err.log" 2>&1 || fail "add-boot after the VM stopped: $(cat "$work/err.log")"

case=damaged
rc=0
"$GENSHIFT" nvram add-boot "$work/in.fd" --disk "$work/disk.raw" --partition 2 --loader "$loader" \
	>"$work/err.log" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "no GPT partition 2" "$work/err.log" || fail "partition 2: $(cat "$work/err.log")"
echo "ok: 3 templates written and read back by virt-fw-vars, listings agree, damage refused"
