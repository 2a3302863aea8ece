#!/bin/sh
# tests/diff/analyze-refusals.test.sh - `genshift analyze`: every refusal code with its exact
# message and exit status 3, on images built for it (sfdisk, sgdisk, mkfs, cryptsetup on
# sparse files, a process holding a lock), and the positive cases: gen1-tiny as raw, VHD and
# VHDX is convertible with the root partition and the plan expected, its file systems as
# blkid -p sees them, and a VM configuration whose boot disk is named by boot_order.
# Guest facts only libguestfs gives (32-bit, BLS, LVM, ...) are judged in
# tests/unit/convert_analyze_test.c; --deep here is two appliance launches (gen1-tiny and
# gen1-syslinux).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
GENSHIFT=${GENSHIFT:-$top/$BUILD/genshift}
fx=$top/$BUILD/fixtures
for tool in sfdisk sgdisk mkfs.ext4 cryptsetup qemu-io flock blkid python3; do
	command -v $tool >/dev/null || { echo "FAIL: $tool is not installed"; exit 1; }
done
[ -x "$GENSHIFT" ] || { echo "FAIL: $GENSHIFT not built"; exit 1; }
[ -f "$fx/gen1-tiny.raw" ] || BUILD=$BUILD "$top/tests/fixtures/build.sh" >/dev/null ||
	{ echo "FAIL: fixtures could not be built"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/analyze.XXXXXX")
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
fail=0
bad() { echo "FAIL $*"; fail=1; }

# check NAME WANT_RC "WANT LINE" ARGS...: analyze ARGS, compare the exit status and look
# for the exact line in the human output.
check() {
	name=$1 want_rc=$2 want=$3
	shift 3
	"$GENSHIFT" analyze "$@" >"$name.out" 2>&1
	rc=$?
	[ $rc -eq "$want_rc" ] || { bad "$name: exit $rc, expected $want_rc"; sed 's/^/    /' "$name.out"; return; }
	grep -Fxq -- "$want" "$name.out" ||
		{ bad "$name: no line: $want"; sed 's/^/    /' "$name.out"; return; }
	echo "ok   $name"
}

mbr() { # FILE SIZE_MIB SFDISK-SCRIPT
	truncate -s "$2M" "$1" && printf '%b' "$3" | sfdisk -q "$1" >/dev/null ||
		{ echo "FAIL: sfdisk could not build $1"; exit 1; }
}
fs_into() { # IMAGE START_LBA FS-IMAGE: copy a file system image into a partition
	dd if="$3" of="$1" bs=512 seek="$2" conv=notrunc,sparse status=none
}

# ---- positive: gen1-tiny in every format ----
for f in raw vhd vhdx; do
	check "gen1-tiny.$f" 0 "    root: partition 1, /boot: partition 1 (structural guess)" "$fx/gen1-tiny.$f"
	grep -Fxq "    plan: MBR -> GPT in place; ESP = partition 2, LBA 262144..794623 (260.0 MiB, new); the disk grows by 261.0 MiB" \
		"gen1-tiny.$f.out" || bad "gen1-tiny.$f: plan line missing"
	grep -q "BLOCKER" "gen1-tiny.$f.out" && bad "gen1-tiny.$f: a blocker on a convertible disk"
done

# The file systems and the partition layout as the independent tools see them.
"$GENSHIFT" analyze --json "$fx/gen1-tiny.vhdx" >tiny.json || bad "gen1-tiny.vhdx --json: exit $?"
python3 - "$fx/gen1-tiny.raw" tiny.json <<'EOF' || bad "gen1-tiny: analyze disagrees with sfdisk/blkid"
import json, subprocess, sys
raw, doc = sys.argv[1], json.load(open(sys.argv[2]))
vm = doc[0]
assert vm["convertible"] and vm["boot_disk"] == 0, vm
disk = vm["disks"][0]
assert disk["format"] == "vhdx" and disk["table"] == "mbr", disk
assert disk["mbr_boot_code"] == "grub" and disk["free_end_bytes"] == 0, disk
assert disk["free_start_bytes"] == 2047 * 512, disk
assert disk["root_partition"] == 1 and disk["plan"]["esp_number"] == 2, disk
sf = json.loads(subprocess.run(["sfdisk", "--json", raw], capture_output=True, check=True).stdout)
parts = {int(p["node"][len(raw):]): p for p in sf["partitiontable"]["partitions"]}
label_id = int(sf["partitiontable"]["id"], 16)
for p in disk["partitions"]:
    s = parts[p["number"]]
    assert p["first_lba"] == s["start"] and p["last_lba"] == s["start"] + s["size"] - 1, (p, s)
    assert p["partuuid"] == "%08x-%02x" % (label_id, p["number"]), p
    out = subprocess.run(["blkid", "-p", "-o", "export", "-O", str(s["start"] * 512),
                          "-S", str(s["size"] * 512), raw], capture_output=True, text=True).stdout
    kv = dict(l.split("=", 1) for l in out.split("\n") if "=" in l)
    fs = p["filesystem"]
    assert fs["type"] == kv.get("TYPE", "") and fs["uuid"] == kv.get("UUID", ""), (fs, kv)
    assert fs["label"] == kv.get("LABEL", ""), (fs, kv)
print("json agrees with sfdisk and blkid for", len(disk["partitions"]), "partitions")
EOF

# ---- refusals, one image each ----
check already-gen2 3 "  BLOCKER ALREADY_GEN2 (disk 0): the disk already has a GPT with an EFI system partition: it is a generation 2 disk" \
	"$fx/gen2-tiny.raw"
check bios-only 3 "  BLOCKER BIOS_ONLY_BOOTLOADER (disk 0): the MBR holds SYSLINUX boot code: genshift can provide a UEFI path only for GRUB 2 guests" \
	"$fx/gen1-syslinux.raw"

mbr full.raw 64 '2048,,83\n'
check no-room 3 "  BLOCKER NO_ROOM_FOR_ESP (disk 0): there is no room for the EFI system partition without growing the disk, which --no-grow forbids: no free run of 532480 sectors (260 MiB, 1 MiB aligned) for the EFI system partition, and growing the disk is not allowed" \
	--no-grow full.raw
check no-os-structural 0 "  warning NO_OS_FOUND (disk 0): no partition holds a Linux file system, a LUKS container or an LVM physical volume" \
	full.raw
check esp-too-small 3 "  BLOCKER ESP_TOO_SMALL (disk 0): an EFI system partition of 50 MiB is below the FAT32 minimum of 100 MiB for 512-byte sectors" \
	--esp-size 50MiB full.raw

mbr unknown.raw 64 '2048,20480,83\n,,9f\n'
check unknown-type 3 "  BLOCKER UNKNOWN_PARTITION_TYPE (disk 0): a partition type has no GPT equivalent: partition 2 has MBR type 0x9f, which has no GPT type in genshift's table; give a mapping for it" \
	unknown.raw

mbr early.raw 64 '16,,83\n'
check no-room-gpt 3 "  BLOCKER NO_ROOM_FOR_GPT (disk 0): the GPT does not fit, even if the disk grew: partition 1 starts at LBA 16, but the primary GPT needs LBA 1..33 (first usable LBA 34); move or shrink the partition first" \
	early.raw

# An LVM physical volume as the largest partition: a warning, not a refusal. pvcreate
# will not label a regular file, so the label is written here the way libblkid checks it.
mbr lvm.raw 64 '2048,40960,83\n,,8e\n'
python3 - lvm.raw $((43008 * 512)) <<'EOF'
import struct, sys, zlib
# LABELONE in sector 1: id, type, and LVM's CRC (CRC-32 without the final inversion, seeded
# 0xf597a6cf) over the label from offset_xl on.
path, off = sys.argv[1], int(sys.argv[2])
label = bytearray(512)
label[0:8] = b"LABELONE"
struct.pack_into("<QII", label, 8, 1, 0, 32)
label[24:32] = b"LVM2 001"
label[32:64] = b"Gs7pVt0kQnR2a9XbWc4dEf6hJm8LpNq1"
crc = ~zlib.crc32(bytes(label[20:]), ~0xf597a6cf & 0xffffffff) & 0xffffffff
struct.pack_into("<I", label, 16, crc)
with open(path, "r+b") as f:
    f.seek(off + 512)
    f.write(label)
EOF
check lvm-root 0 "  warning LVM_ROOT (disk 0): the root file system is on LVM (partition 2 is a physical volume); the conversion keeps it where it is and GRUB reads LVM, but it is less tested than a plain partition" \
	lvm.raw

mbr luks.raw 96 '2048,40960,83\n,,83\n'
mkfs.ext4 -q -F -L boot boot.ext4 20M >/dev/null && fs_into luks.raw 2048 boot.ext4
truncate -s 4M luks.img
printf pw | cryptsetup luksFormat --type luks1 --batch-mode --pbkdf-force-iterations 1000 \
	--key-file=- luks.img || bad "cryptsetup luksFormat failed"
fs_into luks.raw 43008 luks.img
check encrypted-root 3 "  BLOCKER ENCRYPTED_ROOT (disk 0): the root file system is inside a LUKS container (partition 2); genshift cannot open it to fix fstab and grub.cfg" \
	luks.raw

truncate -s 32M whole.raw && mkfs.ext4 -q -F whole.raw >/dev/null
check no-table-fs 3 "  BLOCKER NO_PARTITION_TABLE (disk 0): the disk has no partition table (the whole disk is one ext4 file system), so there is nowhere to put an EFI system partition" \
	whole.raw
truncate -s 32M empty.raw
check no-table 3 "  BLOCKER NO_PARTITION_TABLE (disk 0): the disk has no partition table (no MBR signature, no GPT)" \
	empty.raw

truncate -s 64M gpt.raw && { sgdisk -n1:2048:0 -t1:8300 gpt.raw >/dev/null 2>&1 || bad "sgdisk gpt.raw"; }
check gpt-no-esp 3 "  BLOCKER GPT_WITHOUT_ESP (disk 0): the disk already has a GPT but no EFI system partition; genshift converts MBR disks and does not add an ESP to a GPT disk" \
	gpt.raw
truncate -s 64M hybrid.raw && { sgdisk -n1:2048:+10M -t1:8300 hybrid.raw >/dev/null 2>&1 &&
	sgdisk -h 1 hybrid.raw >/dev/null 2>&1 || bad "sgdisk hybrid.raw"; }
check hybrid 3 "  BLOCKER HYBRID_MBR (disk 0): the disk has a hybrid MBR (a GPT whose MBR also lists partitions); genshift converts plain MBR disks only" \
	hybrid.raw

# A VHDX whose both headers are destroyed, and an MBR partition past the disk end.
cp --sparse=always "$fx/gen1-tiny.vhdx" corrupt.vhdx
dd if=/dev/zero of=corrupt.vhdx bs=64K seek=1 count=2 conv=notrunc status=none
check corrupt-vhdx 3 "  BLOCKER UNREADABLE_DISK (disk 0): the image cannot be read: corrupt.vhdx: no valid header: header 1 (offset 65536): signature is not \"head\"; header 2 (offset 131072): signature is not \"head\"" \
	corrupt.vhdx
mbr past-end.raw 8 '2048,,83\n'
truncate -s 4M past-end.raw
check corrupt-table 3 "  BLOCKER UNREADABLE_DISK (disk 0): the partition table is corrupt: MBR partition 1 (LBA 2048..16383) ends past the disk end (last LBA 8191)" \
	past-end.raw

# A 4Kn VHDX (MBR in 4096-byte sectors): blkid reads through it, and the FAT32 minimum
# for 4096-byte sectors applies.
truncate -s 64M k4.raw
python3 - k4.raw <<'EOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(440); f.write(struct.pack("<I", 0x4b4e3431))
    f.seek(446); f.write(struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", 256, 16128))
    f.seek(510); f.write(b"\x55\xaa")
EOF
mkfs.ext4 -q -F -b 4096 -U 0c8e6a52-61e1-4f0a-9d3e-34b4e3431001 k4.ext4 16M >/dev/null &&
	dd if=k4.ext4 of=k4.raw bs=4096 seek=256 conv=notrunc,sparse status=none
"$GENSHIFT" disk convert k4.raw k4.vhdx --format vhdx --logical-sector 4096 >/dev/null ||
	bad "4kn: disk convert failed"
check 4kn 0 "       1          256        16383   63.0 MiB  Linux filesystem       ext4         UUID=0c8e6a52-61e1-4f0a-9d3e-34b4e3431001 PARTUUID=4b4e3431-01" \
	k4.vhdx
grep -Fxq "    plan: MBR -> GPT in place; ESP = partition 2, LBA 16384..82943 (260.0 MiB, new); the disk grows by 261.0 MiB" 4kn.out ||
	bad "4kn: plan line missing"
check 4kn-esp-too-small 3 "  BLOCKER ESP_TOO_SMALL (disk 0): an EFI system partition of 100 MiB is below the FAT32 minimum of 260 MiB for 4096-byte sectors" \
	--esp-size 100MiB k4.vhdx

# ---- the image is in use: our flock, and QEMU's OFD byte-range locks ----
cp --sparse=always "$fx/gen1-tiny.raw" busy.raw
# sh execs sleep under the same pid, so killing it releases the lock flock(1) passed on.
flock busy.raw sh -c 'echo $$ >holder.pid; exec sleep 60' &
n=0
until [ -s holder.pid ] || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
holder=$(cat holder.pid)
check in-use-flock 3 "  BLOCKER DISK_IN_USE (disk 0): another process holds a lock on the image (flock); stop the VM or the tool using it first" \
	busy.raw
kill "$holder"; wait; holder=
mkfifo qemu.in
qemu-io -f raw busy.raw <qemu.in >/dev/null 2>&1 &
holder=$!
exec 3>qemu.in
n=0
inode=$(stat -c %i busy.raw)
until grep -q "OFDLCK.*:$inode " /proc/locks || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
check in-use-qemu 3 "  BLOCKER DISK_IN_USE (disk 0): a QEMU process has the image open (its lock on byte 100); shut the VM down first" \
	busy.raw
exec 3>&-
wait "$holder"; holder=
check after-qemu 0 "  verdict: convertible" busy.raw

# ---- VM configurations ----
cp --sparse=always "$fx/gen1-tiny.vhdx" boot.vhdx
mbr data.raw 16 '2048,,83\n'
cat >vm1.json <<EOF
{ "format": "genshift-vmcfg", "version": 1, "name": "vm1", "generation": 1,
  "disks": [ { "path": "none.iso", "media": "dvd", "bus": "ide", "controller": 1 },
             { "path": "data.raw", "bus": "ide", "location": 1 },
             { "path": "boot.vhdx", "bus": "ide" } ],
  "boot_order": [ "dvd:0", "disk:2" ] }
EOF
check config-gen1 0 "  disk 2 (boot disk): boot.vhdx" vm1.json
grep -Fxq "  disk 1 (data disk): data.raw" config-gen1.out || bad "config-gen1: data disk line"
cat >vm2.json <<EOF
{ "format": "genshift-vmcfg", "version": 1, "name": "vm2", "generation": 2,
  "disks": [ { "path": "$fx/gen2-tiny.raw", "bus": "scsi" } ] }
EOF
check config-gen2 3 "  BLOCKER ALREADY_GEN2: the VM already is generation 2 (UEFI firmware)" vm2.json
cat >vm4.json <<EOF
{ "format": "genshift-vmcfg", "version": 1, "name": "vm4", "generation": 1,
  "disks": [ { "path": "$fx/gen2-tiny.vhdx", "bus": "ide" } ] }
EOF
check config-gpt-disk 3 "  BLOCKER ALREADY_GEN2 (disk 0): the disk already has a GPT with an EFI system partition: it is a generation 2 disk" vm4.json
grep -Fxq 'vm4.json: VM configuration "vm4", generation 1' config-gpt-disk.out ||
	bad "config-gpt-disk: the configuration's own generation is not reported"
cat >vm3.json <<EOF
{ "format": "genshift-vmcfg", "version": 1, "name": "vm3", "generation": 1,
  "disks": [ { "path": "none.iso", "media": "dvd", "bus": "ide" } ] }
EOF
check no-boot-disk 3 "  BLOCKER NO_BOOT_DISK: the VM has no hard disk to convert" vm3.json

# Several VMs at once: 3 if any is refused; 1 if any analysis failed.
check several 3 "  verdict: NOT convertible" "$fx/gen1-tiny.raw" empty.raw
"$GENSHIFT" analyze "$fx/gen1-tiny.raw" missing.raw >missing.out 2>&1
[ $? -eq 1 ] || bad "missing file: expected exit 1"
"$GENSHIFT" analyze --bogus x >/dev/null 2>&1
[ $? -eq 2 ] || bad "bad option: expected exit 2"

# ---- deep mode: guest_inspect through libguestfs (~15 s a launch; minutes on a busy host) ----
"$GENSHIFT" analyze --deep --json "$fx/gen1-tiny.raw" >deep.json 2>deep.err
rc=$?
python3 - deep.json $rc <<'EOF' || bad "deep gen1-tiny: $(cat deep.err)"
import json, sys
vm = json.load(open(sys.argv[1]))[0]
rc = int(sys.argv[2])
disk = vm["disks"][0]
codes = [f["code"] for f in vm["findings"]]
if "guest_error" in disk:
    # Only bootfix's -ENOSYS placeholder may stand in for an inspection; an appliance that
    # fails to start is a failure of this test.
    assert "not implemented" in disk["guest_error"], disk["guest_error"]
    assert "GUEST_NOT_INSPECTED" in codes and rc == 0, (codes, rc)
    print("deep: guest_inspect is still the placeholder:", disk["guest_error"])
else:
    g = disk["guest"]
    assert g["os_type"] == "linux" and g["arch"] == "x86_64", g
    assert g["bootloader"] == "grub2" and g["grub_cfg"] == "/boot/grub/grub.cfg", g
    assert disk["root_partition"] == 1 and disk["root_source"] == "guest", disk
    root_uuid = disk["partitions"][0]["filesystem"]["uuid"]
    assert {"spec": "UUID=" + root_uuid, "mountpoint": "/", "fstype": "ext4",
            "partition": 1} in g["fstab"], g
    assert all(e["partition"] for e in g["fstab"] if e["spec"].startswith("UUID=")), g
    assert rc == 0 and "GUEST_NOT_INSPECTED" not in codes, (rc, codes)
    print("deep: guest", g["distro"], g["arch"], g["grub_cfg"], codes)
EOF

# The SYSLINUX fixture in deep mode (the second and last launch): libguestfs must see
# syslinux as the bootloader, and the refusal stays the one BIOS_ONLY_BOOTLOADER.
if ! grep -q '"guest_error"' deep.json; then
	"$GENSHIFT" analyze --deep --json "$fx/gen1-syslinux.raw" >deep-sys.json 2>deep-sys.err
	rc=$?
	python3 - deep-sys.json $rc <<'EOF' || bad "deep gen1-syslinux: $(cat deep-sys.err)"
import json, sys
vm = json.load(open(sys.argv[1]))[0]
disk = vm["disks"][0]
assert int(sys.argv[2]) == 3 and not vm["convertible"], vm
assert disk["guest"]["bootloader"] == "syslinux", disk.get("guest", disk.get("guest_error"))
codes = [f["code"] for f in vm["findings"] if f["severity"] == "blocker"]
assert codes == ["BIOS_ONLY_BOOTLOADER"], codes
print("deep: syslinux guest refused:", codes)
EOF
fi

[ $fail -eq 0 ] && echo "analyze refusals: all cases pass"
exit $fail
