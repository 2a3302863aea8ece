#!/bin/sh
# tests/bench/vmm-boot.sh - time-to-marker of genshift's VMM against QEMU with the same
# firmware (generation 1: Debian SeaBIOS bios-256k.bin; generation 2: stock OVMF_CODE_4M.fd,
# each run on a fresh copy of OVMF_VARS_4M.fd, so both do a first boot, which writes the
# most variables), same disk, same KVM, same run. Called by tests/bench/run.sh through
# tests/harness/with-kvm (so both VMMs see the same nested KVM), or directly where /dev/kvm
# works.
# usage: vmm-boot.sh 1|2 GENSHIFT FIXTURE WORKDIR [REPEAT]
# Both VMMs are timed the same way: wall clock from process start until the marker line
# appears in the serial log file (polled every 50 ms), best of REPEAT, alternating.
# Prints the two times, their ratio (ours / QEMU; goal <= 1.0), our VM exits by kind and,
# for generation 2, what the firmware did to the NVRAM.
set -eu
gen=$1 gs=$2 fixture=$3 work=$4 repeat=${5:-1}
code=/usr/share/OVMF/OVMF_CODE_4M.fd
template=/usr/share/OVMF/OVMF_VARS_4M.fd
case "$gen" in
1)	marker='GENSHIFT-BOOT-OK firmware=bios' limit=300
	label="gen1-tiny raw boot to marker (SeaBIOS, virtio-blk)"
	ours_fw=""
	qemu_fw="-bios /usr/share/seabios/bios-256k.bin" ;;
2)	marker='GENSHIFT-BOOT-OK firmware=uefi' limit=400
	label="gen2-tiny raw boot to marker (OVMF, virtio-blk)"
	ours_fw="--gen 2 --nvram $work/ours-vars.fd"
	qemu_fw="-drive if=pflash,format=raw,unit=0,readonly=on,file=$code
		-drive if=pflash,format=raw,unit=1,file=$work/qemu-vars.fd" ;;
*)	echo "usage: vmm-boot.sh 1|2 GENSHIFT FIXTURE WORKDIR [REPEAT]" >&2; exit 2 ;;
esac

now() { date +%s.%N; }

# wait_marker LOG PID START: prints seconds to marker, or fails when PID ends first.
wait_marker() {
	while :; do
		if grep -q "$marker" "$1" 2>/dev/null; then
			awk -v a="$3" -v b="$(now)" 'BEGIN { printf "%.2f\n", b - a }'
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		[ "$(awk -v a="$3" -v b="$(now)" -v l=$limit 'BEGIN { print (b - a > l) }')" = 0 ] ||
			return 1
		sleep 0.05
	done
}

run_ours() {
	cp --sparse=always "$fixture" "$work/ours.raw"
	cp "$template" "$work/ours-vars.fd"
	: >"$work/ours.log"
	t0=$(now)
	# shellcheck disable=SC2086 # ours_fw is a list of options
	"$gs" verify $ours_fw --disk "$work/ours.raw" --expect "$marker" --timeout $limit --json \
		--serial-log "$work/ours.log" --accel kvm >"$work/ours.json" 2>"$work/ours.err" &
	pid=$!
	t=$(wait_marker "$work/ours.log" $pid "$t0") ||
		{ echo "bench: genshift did not boot gen $gen" >&2; cat "$work/ours.err" >&2; exit 1; }
	wait $pid || true
	echo "$t"
}

run_qemu() {
	cp --sparse=always "$fixture" "$work/qemu.raw"
	cp "$template" "$work/qemu-vars.fd"
	: >"$work/qemu.log"
	t0=$(now)
	# shellcheck disable=SC2086 # qemu_fw is a list of options
	qemu-system-x86_64 -machine pc,accel=kvm -cpu host -m 512 -smp 1 -nodefaults \
		-display none -no-reboot $qemu_fw \
		-serial "file:$work/qemu.log" -drive "file=$work/qemu.raw,if=virtio,format=raw" \
		</dev/null >"$work/qemu.err" 2>&1 &
	pid=$!
	t=$(wait_marker "$work/qemu.log" $pid "$t0") ||
		{ echo "bench: QEMU did not boot gen $gen" >&2; cat "$work/qemu.err" >&2; kill $pid 2>/dev/null; exit 1; }
	kill $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	echo "$t"
}

best_ours= best_qemu=
i=0
while [ $i -lt "$repeat" ]; do
	t=$(run_ours)
	[ -z "$best_ours" ] || [ "$(awk -v a="$t" -v b="$best_ours" 'BEGIN { print (a < b) }')" = 1 ] && best_ours=$t
	cp "$work/ours.json" "$work/best-ours.json"
	t=$(run_qemu)
	[ -z "$best_qemu" ] || [ "$(awk -v a="$t" -v b="$best_qemu" 'BEGIN { print (a < b) }')" = 1 ] && best_qemu=$t
	i=$((i + 1))
done
awk -v n="$label" -v a="$best_ours" -v b="$best_qemu" 'BEGIN {
	printf "%-44s genshift %7.2fs  QEMU %7.2fs  ratio %5.2f\n", n, a, b, a / b }'
python3 - "$work/best-ours.json" "$gen" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["exits"]
kinds = ["io", "mmio", "shutdown", "intr", "hlt", "other"]
dev = ["io_serial", "io_fw_cfg", "io_pci_config", "io_virtio", "io_pm", "io_rtc",
       "io_debugcon", "io_unassigned", "io_misc"]
print("  genshift VM exits: total %d; " % e["total"] + ", ".join("%s %d" % (k, e[k]) for k in kinds))
print("  I/O exits by device: " + ", ".join("%s %d" % (k[3:], e[k]) for k in dev))
print("  virtio-blk requests: %d reads, %d writes, %d flushes" %
      (e["virtio_reads"], e["virtio_writes"], e["virtio_flushes"]))
if sys.argv[2] == "2":
    print("  flash: %d MMIO exits; NVRAM: %d bytes programmed, %d blocks erased, %d fdatasyncs, %d writes refused" %
          (e["mmio_pflash"], e["nvram_programs"], e["nvram_erases"], e["nvram_syncs"], e["nvram_refused"]))
PY
