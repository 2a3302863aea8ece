# tests/boot/vmm-lib.sh - shared by the vmm-*.test.sh boot tests (sourced, not run).
# Sets: top, GENSHIFT, FIXTURES, work (scratch directory under $TMPDIR, removed on exit),
# and helpers. When genshift goes through the nested-KVM harness it shares the directories
# of its disks and logs with the L1 (--rw), so scratch files under /tmp work there too.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) bdir=$BUILD ;; *) bdir=$top/$BUILD ;; esac
GENSHIFT=${GENSHIFT:-$bdir/genshift}
FIXTURES=${FIXTURES:-$bdir/fixtures}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
# VMM_ACCEL (default auto) is passed as --accel: auto uses /dev/kvm when the CPU also shows
# vmx/svm and the nested-KVM harness otherwise (CI); nested forces the harness.
work=$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$0" .test.sh).XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$work"/*.log; do
		[ -f "$f" ] || continue
		echo "--- last lines of $(basename "$f"):" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}

need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || fail "missing tool: $t"
	done
}

# fixture NAME: copies $FIXTURES/NAME into $work (sparse; the VMM writes to it) and prints
# the copy's path. Builds the fixtures if they are missing.
fixture() {
	if [ ! -f "$FIXTURES/$1" ]; then
		BUILD=$BUILD tests/fixtures/build.sh >&2 || fail "cannot build fixtures"
	fi
	[ -f "$FIXTURES/$1" ] || fail "fixture $1 missing in $FIXTURES"
	cp --sparse=always "$FIXTURES/$1" "$work/$1"
	echo "$work/$1"
}

# boot_sector NAME: assembles the 16-bit boot sector $work/NAME.S (linked at 0x7c00, entry
# _start) into $work/mbr.bin, which must come out exactly 512 bytes.
boot_sector() {
	need as ld objcopy
	as --32 -o "$work/$1.o" "$work/$1.S" || fail "assembling the boot sector"
	ld -m elf_i386 -Ttext 0x7c00 -e _start -o "$work/$1.elf" "$work/$1.o" || fail "linking"
	objcopy -O binary "$work/$1.elf" "$work/mbr.bin" || fail "objcopy"
	[ "$(stat -c %s "$work/mbr.bin")" = 512 ] || fail "boot sector is not 512 bytes"
}

# json_field FILE KEY: a top-level scalar of genshift's --json output.
json_field() {
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

# boot_fixture IMAGE NAME [verify options...]: verify gen1-tiny's marker with root=ok.
boot_fixture() {
	img=$1
	name=$2
	shift 2
	rc=0
	"$GENSHIFT" verify --disk "$img" \
		--expect "GENSHIFT-BOOT-OK firmware=bios fixture=gen1-tiny root=ok" \
		--timeout "$BOOT_TIMEOUT" --json --serial-log "$work/$name-serial.log" \
		--accel "${VMM_ACCEL:-auto}" "$@" \
		>"$work/$name.json" 2>"$work/$name-stderr.log" || rc=$?
	cat "$work/$name.json"
	[ "$rc" -eq 0 ] || fail "$name: verify exit $rc ($(cat "$work/$name-stderr.log" | tail -n 3))"
	[ "$(json_field "$work/$name.json" matched)" = true ] || fail "$name: not matched"
	[ "$(json_field "$work/$name.json" exit_reason)" = matched ] || fail "$name: exit reason"
	grep -q 'GENSHIFT-BOOT-OK firmware=bios fixture=gen1-tiny root=ok disk=vda1' \
		"$work/$name-serial.log" || fail "$name: marker not in the serial log"
	echo "$name: matched after $(json_field "$work/$name.json" time_to_match_s) s"
}

# boot_gen2 IMAGE NAME [verify options...]: generation 2 (OVMF): verify gen2-tiny's marker
# with root=ok. The NVRAM file is $work/NAME_VARS.fd unless the options give --nvram.
boot_gen2() {
	img=$1
	name=$2
	shift 2
	rc=0
	"$GENSHIFT" verify --gen 2 --disk "$img" \
		--expect "GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok" \
		--timeout "$BOOT_TIMEOUT" --json --serial-log "$work/$name-serial.log" \
		--accel "${VMM_ACCEL:-auto}" "$@" \
		>"$work/$name.json" 2>"$work/$name-stderr.log" || rc=$?
	cat "$work/$name.json"
	[ "$rc" -eq 0 ] || fail "$name: verify exit $rc ($(tail -n 3 "$work/$name-stderr.log"))"
	[ "$(json_field "$work/$name.json" matched)" = true ] || fail "$name: not matched"
	grep -q 'GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok disk=vda1' \
		"$work/$name-serial.log" || fail "$name: marker not in the serial log"
	echo "$name: matched after $(json_field "$work/$name.json" time_to_match_s) s"
}
