#!/bin/sh
# tests/diff/acpi-iasl.test.sh - vmm/acpi.c's tables judged by ACPICA (iasl, acpiexec), an
# independent implementation: tests/tools/acpi_dump runs the fw_cfg table-loader script like
# a firmware and writes every table it reaches by the patched pointers; then for 1 and 5
# CPUs:
#   - `iasl -d` disassembles each table with no error, warning or bad checksum;
#   - the disassembly says what we meant (one "Processor Local APIC" per CPU, PNP0A03,
#     _S5_, the PM blocks at the PMBA, reset register 0xCF9);
#   - the disassembled DSDT recompiled by iasl (-oa: no optimisations) gives our AML
#     byte for byte, and iasl reports 0 errors and 0 warnings compiling it;
#   - acpiexec loads FACP+DSDT+APIC+FACS and evaluates \_S5 and \_SB.PCI0._PRT.
# The RSDP is checked by a few lines of Python (this iasl rejects an RSDP file: its
# signature "RSD PTR " is not a name segment).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) bdir=$BUILD ;; *) bdir=$top/$BUILD ;; esac
dump=$bdir/tests/acpi_dump
work=$(mktemp -d "${TMPDIR:-/tmp}/acpi-iasl.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

for t in iasl acpiexec python3; do
	command -v "$t" >/dev/null 2>&1 || fail "missing tool: $t (acpica-tools, python3)"
done
[ -x "$dump" ] || fail "missing $dump (make BUILD=$BUILD $dump)"

# expect FILE COUNT PATTERN: exactly COUNT lines of FILE match the fixed string PATTERN.
expect() {
	n=$(grep -cF -- "$3" "$1" || true)
	[ "$n" = "$2" ] || fail "$(basename "$1"): $n lines with '$3', expected $2"
}

check_rsdp() {
	python3 - "$1" <<'PY' || fail "RSDP checks failed"
import struct, sys
d = open(sys.argv[1], "rb").read()
assert len(d) == 36 and d[:8] == b"RSD PTR ", "signature/length"
assert sum(d[:20]) % 256 == 0, "checksum over 20 bytes"
assert sum(d) % 256 == 0, "extended checksum"
assert d[15] == 2 and struct.unpack_from("<I", d, 20)[0] == 36, "revision 2, length 36"
assert struct.unpack_from("<I", d, 16)[0] and struct.unpack_from("<Q", d, 24)[0], "RSDT/XSDT"
PY
}

check_cpus() {
	cpus=$1
	out=$work/cpus$cpus
	mkdir -p "$out"
	"$dump" --cpus "$cpus" --pm-base 0xB000 --virtio 2 "$out" || fail "acpi_dump --cpus $cpus"
	for sig in RSDP RSDT XSDT FACP FACS DSDT APIC; do
		[ -s "$out/$sig.dat" ] || fail "acpi_dump wrote no $sig.dat"
	done
	check_rsdp "$out/RSDP.dat"
	cd "$out"
	for sig in RSDT XSDT FACP FACS DSDT APIC; do
		iasl -d "$sig.dat" >"$sig.iasl.log" 2>&1 || fail "iasl -d $sig.dat: $(tail -n 3 "$sig.iasl.log")"
		[ -s "$sig.dsl" ] || fail "iasl wrote no $sig.dsl"
		if grep -inE 'error|warning|incorrect|invalid|terminates' "$sig.iasl.log" "$sig.dsl"; then
			fail "iasl complains about $sig (lines above)"
		fi
	done
	expect APIC.dsl "$cpus" "[Processor Local APIC]"
	expect APIC.dsl 1 "[I/O APIC]"
	expect APIC.dsl 3 "[Interrupt Source Override]"
	expect DSDT.dsl 1 'EisaId ("PNP0A03")'
	expect DSDT.dsl 1 'EisaId ("PNP0501")'
	expect DSDT.dsl 1 'Name (\_S5, Package (0x04)'
	expect DSDT.dsl "$cpus" '"ACPI0007"'
	expect DSDT.dsl 4 "0x0002FFFF"
	expect FACP.dsl 1 "PM1A Control Block Address : 0000B004"
	expect FACP.dsl 1 "PM Timer Block Address : 0000B008"
	expect FACP.dsl 1 "Reset Register Supported (V2) : 1"
	expect FACP.dsl 1 "Address : 0000000000000CF9"
	expect XSDT.dsl 2 "ACPI Table Address"

	iasl -oa -p "$out/again" DSDT.dsl >recompile.log 2>&1 || fail "iasl cannot compile its own DSDT disassembly: $(tail -n 3 recompile.log)"
	grep -q 'Compilation successful. *0 Errors, *0 Warnings' recompile.log ||
		fail "recompiling the DSDT: $(grep -E 'Errors|Warning' recompile.log | head -n 3)"
	cmp -s "$(tail -c +37 DSDT.dat >dsdt.body && echo dsdt.body)" \
		"$(tail -c +37 again.aml >again.body && echo again.body)" ||
		fail "iasl encodes the disassembled DSDT differently from acpi.c"

	acpiexec -b 'evaluate \_S5; evaluate \_SB.PCI0._PRT' FACP.dat DSDT.dat APIC.dat FACS.dat \
		>acpiexec.log 2>&1 || fail "acpiexec exit status $?"
	grep -q '1 ACPI AML tables successfully acquired and loaded' acpiexec.log ||
		fail "acpiexec did not load the DSDT"
	grep -q 'Evaluation of \\_S5 returned object' acpiexec.log || fail "acpiexec: no \\_S5"
	expect acpiexec.log 13 "[Package] Contains 4 Elements:" # _S5 + slots 1-3 x 4 pins
	if grep -E 'ACPI (Error|Exception|Warning)' acpiexec.log; then
		fail "acpiexec reports the lines above"
	fi
	cd "$top"
	echo "cpus=$cpus: $(ls "$out"/*.dat | wc -l) tables, iasl and acpiexec clean"
}

check_cpus 1
check_cpus 5
