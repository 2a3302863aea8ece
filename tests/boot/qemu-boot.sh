#!/bin/sh
# qemu-boot.sh: boots one fixture disk in QEMU and checks its serial marker.
#
# usage: qemu-boot.sh [--kvm] [--if virtio|ide] [--timeout SECONDS] bios|uefi DISK FORMAT FIXTURE
#   The machine is QEMU's "pc" (i440FX + PIIX), the platform genshift's VMM emulates
#   (vmm-device-model.md), with the disk on virtio-blk (default) or IDE.
#   bios: SeaBIOS. uefi: OVMF_CODE_4M.fd + a fresh copy of OVMF_VARS_4M.fd.
#   FORMAT is QEMU's: raw, vpc (VHD) or vhdx. The disk is opened with snapshot=on, so
#   it is never written and may sit on a read-only filesystem.
#   --kvm uses -accel kvm (needs /dev/kvm: run it through tests/harness/with-kvm),
#   otherwise TCG.
# Passes (exit 0, one line "boot ok: ...") when the first serial port shows
#   GENSHIFT-BOOT-OK firmware=<bios|uefi> fixture=FIXTURE root=ok
# and QEMU then exits by itself (the guest powers off). Otherwise prints one line saying
# why, then the last serial lines, and exits 1.
set -eu

accel=tcg
limit=300
diskif=virtio
while [ $# -gt 0 ]; do
	case "$1" in
	--kvm) accel=kvm; shift ;;
	--timeout) limit=$2; shift 2 ;;
	--if) diskif=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -eq 4 ] || { echo "usage: qemu-boot.sh [--kvm] [--if virtio|ide] [--timeout S] bios|uefi DISK FORMAT FIXTURE" >&2; exit 2; }
fw=$1 disk=$2 format=$3 fixture=$4

fail() {
	echo "FAIL: $fixture ($format, $diskif, $fw, $accel): $*"
	if [ -s "${tmp:-/nonexistent}/serial.log" ]; then
		tail -n 15 "$tmp/serial.log" | tr -d '\r' | sed 's/^/  serial: /'
	fi
	exit 1
}

[ -f "$disk" ] || fail "no disk $disk (make fixtures)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qemu-boot.XXXXXX") || fail "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT

case "$diskif" in virtio|ide) ;; *) fail "--if must be virtio or ide" ;; esac
case "$fw" in
bios)
	set -- -machine pc -drive "file=$disk,format=$format,if=$diskif,snapshot=on" ;;
uefi)
	code=/usr/share/OVMF/OVMF_CODE_4M.fd
	vars=/usr/share/OVMF/OVMF_VARS_4M.fd
	[ -f "$code" ] && [ -f "$vars" ] || fail "no $code / $vars (install ovmf: make deps)"
	cp "$vars" "$tmp/vars.fd"
	set -- -machine pc \
		-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
		-drive "if=pflash,format=raw,unit=1,file=$tmp/vars.fd" \
		-drive "file=$disk,format=$format,if=$diskif,snapshot=on" ;;
*) fail "firmware must be bios or uefi" ;;
esac
[ "$accel" = tcg ] || [ -c /dev/kvm ] || fail "--kvm but no /dev/kvm here"

start=$(date +%s.%N)
rc=0
timeout "$limit" qemu-system-x86_64 -accel "$accel" -m 512 -nodefaults -display none \
	-no-reboot -serial "file:$tmp/serial.log" "$@" >"$tmp/qemu.log" 2>&1 || rc=$?
secs=$(echo "$(date +%s.%N) $start" | awk '{printf "%.1f", $1 - $2}')

[ "$rc" != 124 ] || fail "no power-off within ${limit}s"
[ "$rc" = 0 ] || fail "QEMU exited with $rc after ${secs}s: $(tail -n 1 "$tmp/qemu.log")"
marker=$(tr -d '\r' <"$tmp/serial.log" | grep -a '^GENSHIFT-BOOT-OK ' | head -n 1 || true)
[ -n "$marker" ] || fail "no GENSHIFT-BOOT-OK line on the serial port (${secs}s)"
case "$marker" in
"GENSHIFT-BOOT-OK firmware=$fw fixture=$fixture root=ok "*) ;;
*) fail "wrong marker: $marker" ;;
esac
echo "boot ok: $fixture ($format, $diskif, $fw, $accel) in ${secs}s: $marker"
