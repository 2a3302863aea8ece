# tests/diff/convert-lib.sh - shared by the convert-*.test.sh tests (sourced, not run):
# paths, a scratch directory under $TMPDIR, and the checks every conversion output must pass,
# each judged by a tool that is not genshift (qemu-img, sgdisk, virt-fw-vars, fsck.fat).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) bdir=$BUILD ;; *) bdir=$top/$BUILD ;; esac
GENSHIFT=${GENSHIFT:-$bdir/genshift}
FIXTURES=${FIXTURES:-$bdir/fixtures}
work=$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$0" .test.sh).XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT

fail() {
	echo "FAIL $(basename "$0" .test.sh): $*"
	exit 1
}

need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || fail "missing tool: $t"
	done
}
need qemu-img sgdisk virt-fw-vars fsck.fat mtype sha256sum python3

# fixture NAME: a sparse copy of $FIXTURES/NAME in $work (building the fixtures if needed).
fixture() {
	if [ ! -f "$FIXTURES/$1" ]; then
		BUILD=$BUILD tests/fixtures/build.sh >&2 || fail "cannot build fixtures"
	fi
	[ -f "$FIXTURES/$1" ] || fail "fixture $1 missing in $FIXTURES"
	cp --sparse=always "$FIXTURES/$1" "$work/$1"
	echo "$work/$1"
}

# vhash IMAGE: sha256 of the virtual disk (qemu-img's reading, not ours).
vhash() {
	case "$1" in
	*.vhdx) f=vhdx ;;
	*.vhd) f=vpc ;;
	*) f=raw ;;
	esac
	qemu-img convert -f "$f" -O raw "$1" "$work/vhash.raw" || fail "qemu-img cannot read $1"
	sha256sum <"$work/vhash.raw" | cut -d' ' -f1
	rm -f "$work/vhash.raw"
}

# no_output DIR NAME: none of the final files of NAME in DIR.
no_output() {
	for s in .vhdx _VARS.fd .json .log; do
		[ ! -e "$1/$2$s" ] || fail "$1/$2$s exists after a failed or interrupted run"
	done
}

# leftovers DIR NAME: how many .NAME.tmp-* entries DIR holds.
leftovers() {
	find "$1" -maxdepth 1 -name ".$2.tmp-*" 2>/dev/null | wc -l
}

# check_disk DISK FMT: the converted disk is a sound image with a valid GPT, an ESP that
# fsck.fat accepts holding both loaders. Leaves the raw export in $work/check.raw.
check_disk() {
	[ "$2" = raw ] || qemu-img check -f "$2" "$1" >"$work/qemu-check.log" 2>&1 ||
		fail "qemu-img check $1: $(tail -n 2 "$work/qemu-check.log")"
	rm -f "$work/check.raw"
	qemu-img convert -f "$2" -O raw "$1" "$work/check.raw" || fail "qemu-img convert $1"
	sgdisk -v "$work/check.raw" >"$work/sgdisk.log" 2>&1 || fail "sgdisk -v: $(cat "$work/sgdisk.log")"
	grep -q 'No problems found' "$work/sgdisk.log" || fail "sgdisk -v: $(cat "$work/sgdisk.log")"
	esp=$(sgdisk -p "$work/check.raw" | awk '$6 == "EF00" { print $2, $3 }')
	[ -n "$esp" ] || fail "no EF00 partition in the converted GPT"
	set -- $esp
	dd if="$work/check.raw" of="$work/esp.img" bs=512 skip="$1" count=$(($2 - $1 + 1)) \
		status=none
	fsck.fat -n "$work/esp.img" >"$work/fsck.log" 2>&1 || fail "fsck.fat: $(cat "$work/fsck.log")"
	for f in ::/EFI/BOOT/BOOTX64.EFI ::/EFI/debian/grubx64.efi ::/EFI/BOOT/grub.cfg; do
		mtype -i "$work/esp.img" "$f" >/dev/null 2>&1 || fail "ESP lacks $f"
	done
	rm -f "$work/esp.img"
}

# check_vars FILE: virt-fw-vars reads the store and sees our Boot0001 first in BootOrder.
check_vars() {
	virt-fw-vars -i "$1" -p >"$work/vars.txt" 2>&1 || fail "virt-fw-vars -p: $(tail -n 3 "$work/vars.txt")"
	grep -q 'Boot0001 .*devpath=Partition(nr=2)/FilePath(\\EFI\\debian\\grubx64.efi)' \
		"$work/vars.txt" || fail "no Boot0001 -> \\EFI\\debian\\grubx64.efi: $(grep Boot "$work/vars.txt")"
	grep -q 'BootOrder *: boot order: 0001' "$work/vars.txt" ||
		fail "Boot0001 is not first in BootOrder: $(grep BootOrder "$work/vars.txt")"
}

# check_output DIR NAME [quick]: a complete output (the rule of convert/pipeline.h); quick
# skips the raw export (GPT, ESP) and keeps qemu-img check and the NVRAM check.
check_output() {
	[ "$(leftovers "$1" "$2")" = 0 ] || fail "temporary files left in $1: $(ls -a "$1")"
	for s in .vhdx _VARS.fd .json .log; do
		[ -s "$1/$2$s" ] || fail "$1/$2$s missing or empty"
	done
	python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert c["generation"]==2 and c["firmware"]["type"]=="uefi", c' \
		"$1/$2.json" || fail "$2.json is not a generation 2 configuration"
	if [ "${3:-}" = quick ]; then
		qemu-img check -f vhdx "$1/$2.vhdx" >/dev/null 2>&1 || fail "qemu-img check $1/$2.vhdx"
	else
		check_disk "$1/$2.vhdx" vhdx
	fi
	check_vars "$1/$2_VARS.fd"
}

# qemu_uefi_boot DISK FMT VARS LABEL: QEMU (TCG, the i440FX "pc" machine our VMM models) +
# OVMF with a copy of the conversion's NVRAM boots the disk; passes when OVMF starts our
# Boot0001 (not a fallback entry) and the guest prints gen1-tiny's UEFI marker.
qemu_uefi_boot() {
	need qemu-system-x86_64
	cp "$3" "$work/boot-vars.fd"
	rm -f "$work/boot-serial.log"
	rc=0
	t0=$(date +%s)
	timeout "${BOOT_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg -m 512 -nodefaults \
		-display none -no-reboot -serial "file:$work/boot-serial.log" -machine pc \
		-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
		-drive "if=pflash,format=raw,unit=1,file=$work/boot-vars.fd" \
		-drive "file=$1,format=$2,if=virtio,snapshot=on" >"$work/qemu.log" 2>&1 || rc=$?
	tr -d '\r' <"$work/boot-serial.log" >"$work/boot-serial.txt" 2>/dev/null || true
	[ "$rc" = 0 ] || fail "$4: QEMU exit $rc after $(($(date +%s) - t0)) s: $(tail -n 3 "$work/boot-serial.txt")"
	grep -aq 'BdsDxe: starting Boot0001 "debian" from HD(2,GPT,.*/\\EFI\\debian\\grubx64.efi' \
		"$work/boot-serial.txt" || fail "$4: OVMF did not start Boot0001: $(grep -a BdsDxe "$work/boot-serial.txt")"
	grep -aq '^GENSHIFT-BOOT-OK firmware=uefi fixture=gen1-tiny root=ok' "$work/boot-serial.txt" ||
		fail "$4: no UEFI marker: $(tail -n 3 "$work/boot-serial.txt")"
	echo "$4: QEMU + OVMF booted Boot0001 to the marker in $(($(date +%s) - t0)) s"
}

# vmm_uefi_boot CONFIG LABEL: genshift's own VMM boots the generation 2 configuration a
# conversion wrote (with its NVRAM file) to gen1-tiny's UEFI marker.
vmm_uefi_boot() {
	rc=0
	"$GENSHIFT" verify "$1" --json --timeout "${BOOT_TIMEOUT:-300}" \
		--expect 'GENSHIFT-BOOT-OK firmware=uefi fixture=gen1-tiny root=ok' \
		--serial-log "$work/vmm-serial.log" --accel "${VMM_ACCEL:-auto}" \
		>"$work/vmm.json" 2>"$work/vmm.err" || rc=$?
	cat "$work/vmm.json"
	[ "$rc" = 0 ] || fail "$2: our VMM, generation 2: exit $rc: $(tail -n 3 "$work/vmm.err")"
}
