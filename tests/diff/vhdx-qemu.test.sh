#!/bin/sh
# tests/diff/vhdx-qemu.test.sh - differential tests against qemu-img/qemu-io 10 and libvhdi:
# images qemu creates and writes (dynamic/fixed, block sizes 1-256 MiB, block_state_zero
# on/off, data past the 4 GiB chunk boundary) read byte-identical to qemu's view; images we
# create and write at random (mirrored into raw files) pass qemu-img check, compare
# identical in qemu, and open in vhdiinfo; 4 KiB logical sectors round-trip through us.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhdx_tool
[ -x "$T" ] || fail "$T is not built"
for tool in qemu-img qemu-io vhdiinfo; do
	command -v $tool >/dev/null || fail "$tool is not installed"
done
W=$(mktemp -d "${TMPDIR:-/tmp}/vhdx-qemu.XXXXXX")
trap 'rm -rf "$W"' EXIT

# ---- qemu writes, we read ----
n=0
for sub in dynamic fixed; do
	for bs in 1M 2M 8M 32M 256M; do
		for bsz in on off; do
			img=$W/q.vhdx
			rm -f "$img" "$W/q.raw"
			qemu-img create -q -f vhdx -o subformat=$sub,block_size=$bs,block_state_zero=$bsz "$img" 4160M
			qemu-io -f vhdx -c "write -P 0x11 0 64k" -c "write -P 0x22 1000448 3M" \
				-c "write -P 0x33 4294963200 12k" -c "write -P 0x44 4301287936 100k" \
				-c "write -P 0x55 4362072064 4096" "$img" >/dev/null ||
				fail "qemu-io cannot write $sub $bs $bsz"
			qemu-img convert -f vhdx -O raw "$img" "$W/q.raw"
			"$T" compare "$img" "$W/q.raw" >"$W/out" ||
				fail "qemu-made $sub block $bs block_state_zero=$bsz: we read differently ($(cat "$W/out"))"
			"$T" check "$img" >"$W/out" || fail "qemu-made $sub $bs $bsz: our check reports $(grep error "$W/out" | head -1)"
			n=$((n + 1))
		done
	done
done
echo "ok $n qemu-made images (dynamic/fixed x 1,2,8,32,256 MiB x block_state_zero on/off) read identically"

# qemu-img convert -O vhdx from a raw file with data on both sides of 4 GiB.
truncate -s 5G "$W/src.raw"
printf 'genshift-vhdx' | dd of="$W/src.raw" bs=1 seek=512 conv=notrunc status=none
head -c 3000000 /dev/urandom | dd of="$W/src.raw" bs=1M seek=4095 conv=notrunc status=none
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=32M "$W/src.raw" "$W/conv.vhdx"
"$T" compare "$W/conv.vhdx" "$W/src.raw" >"$W/out" || fail "qemu-img convert -O vhdx: we read differently ($(cat "$W/out"))"
echo "ok qemu-img convert -O vhdx output reads identically"

# ---- we write, qemu and libvhdi read ----
ours() { # subformat size block lss seed count
	img=$W/o.vhdx
	rm -f "$img" "$W/o.raw"
	"$T" create "$1" "$img" "$2" "$3" "$4" || fail "create $1 $2 $3 $4"
	"$T" write "$img" "$W/o.raw" "$5" "$6" 1M || fail "random writes to our $1 image"
	"$T" compare "$img" "$W/o.raw" >"$W/out" || fail "our $1 block $3: reopen differs from the mirror ($(cat "$W/out"))"
	"$T" check "$img" >"$W/out" || fail "our $1 block $3: our check reports $(grep error "$W/out" | head -1)"
	[ "$(sed -n 's/^creator=//p' <<-X
	$("$T" info "$img")
	X
	)" = genshift ] || fail "creator string not genshift"
}
for spec in "dynamic 5G 1M" "dynamic 5G 32M" "fixed 4608M 32M" "dynamic 3G 256M" "fixed 1G 1M"; do
	set -- $spec
	ours "$1" "$2" "$3" 512 42 40
	qemu-img check -f vhdx "$img" >"$W/out" 2>&1 || fail "qemu-img check on our $spec: $(cat "$W/out")"
	grep -q "No errors were found" "$W/out" || fail "qemu-img check on our $spec: $(cat "$W/out")"
	qemu-img compare -f raw -F vhdx "$W/o.raw" "$img" >"$W/out" 2>&1 ||
		fail "qemu-img compare on our $spec: $(cat "$W/out")"
	vhdiinfo "$img" >"$W/out" 2>&1 || fail "vhdiinfo cannot read our $spec: $(cat "$W/out")"
	sz=$(sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p' "$W/out")
	[ "$sz" = "$(stat -c %s "$W/o.raw")" ] || fail "vhdiinfo reports size $sz for our $spec"
	echo "ok our $spec image: qemu-img check clean, qemu-img compare identical, vhdiinfo reads it"
done

# 4096-byte logical sectors: qemu refuses them, so round-trip and structure through us.
ours dynamic 2G 2M 4096 7 30
[ "$("$T" info "$img" | sed -n 's/^lss=//p')" = 4096 ] || fail "logical sector size not 4096"
"$T" create dynamic "$W/bad.vhdx" 1G 32M 4096 512 2>"$W/out" && fail "LSS 4096 with PSS 512 accepted"
grep -q "4096-byte logical sectors need" "$W/out" || fail "LSS 4096/PSS 512 refusal message: $(cat "$W/out")"
echo "ok 4096-byte logical sectors round-trip; 4096/512 refused"
