#!/bin/sh
# tests/boot/vmm-gen1-2cpu.test.sh - gen1-tiny (raw) with --cpus 2: SeaBIOS starts both
# vCPUs (fw_cfg/CMOS CPU count), Linux brings up both (its own log says so), and the
# marker appears.
. "$(dirname "$0")/vmm-lib.sh"
img=$(fixture gen1-tiny.raw)
boot_fixture "$img" gen1-2cpu --cpus 2
[ "$(json_field "$work/gen1-2cpu.json" cpus)" = 2 ] || fail "JSON does not say 2 cpus"
grep -q 'smp: Brought up 1 node, 2 CPUs' "$work/gen1-2cpu-serial.log" ||
	fail "Linux did not bring up 2 CPUs"
