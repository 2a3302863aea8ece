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
# The same five writes go into every image (three of them at or past the 4 GiB chunk boundary)
# and into a sparse raw file. Each image: qemu-io confirms qemu reads the patterns back, our
# reader must equal the raw file everywhere; two images also get qemu-img convert -O raw,
# qemu's whole view, compared with ours (full conversions of 4 GiB are slow, so not all).
# 4352 MiB is a multiple of every block size (qemu cannot open its own fixed image when the
# last block is partial). 2 and 8 MiB blocks use 1 GiB disks and the first two writes only.
all_writes="0x11 0 65536|0x22 1000448 3145728|0x33 4294963200 12288|0x44 4301287936 102400|0x55 4563398656 4096"
small_writes="0x11 0 65536|0x22 1000448 3145728"
make_expect() { # raw size writes
	truncate -s "$2" "$1"
	echo "$3" | tr '|' '\n' | while read -r pat off len; do
		perl -e "print chr($pat) x $len" | dd of="$1" bs=4096 seek="$off" oflag=seek_bytes conv=notrunc status=none
	done
}
make_expect "$W/big.raw" 4352M "$all_writes"
make_expect "$W/small.raw" 1G "$small_writes"
qemu_writes() { echo "$writes" | tr '|' '\n' | while read -r pat off len; do printf -- '-c\nwrite -P %s %s %s\n' $pat $off $len; done; }
qemu_reads() { echo "$writes" | tr '|' '\n' | while read -r pat off len; do printf -- '-c\nread -P %s %s %s\n' $pat $off $len; done; }
n=0
for sub in dynamic fixed; do
	for bs in 1M 2M 8M 32M 256M; do
		# Fully allocated 4 GiB images are slow to read whole: one fixed size crosses
		# the chunk boundary, the others stay at 1 GiB.
		case $sub$bs in
		*2M|*8M|fixed1M|fixed256M) size=1G writes=$small_writes expect=$W/small.raw ;;
		*) size=4352M writes=$all_writes expect=$W/big.raw ;;
		esac
		for bsz in on off; do
			img=$W/q.vhdx
			rm -f "$img" "$W/q.raw"
			qemu-img create -q -f vhdx -o subformat=$sub,block_size=$bs,block_state_zero=$bsz "$img" $size
			qemu_writes | tr '\n' '\0' | xargs -0 qemu-io -f vhdx "$img" >"$W/out" 2>&1 ||
				fail "qemu-io cannot write $sub $bs $bsz: $(cat "$W/out")"
			qemu_reads | tr '\n' '\0' | xargs -0 qemu-io -r -f vhdx "$img" >"$W/out" 2>&1 ||
				fail "qemu-io cannot read $sub $bs $bsz back"
			grep -q "Pattern verification failed" "$W/out" && fail "qemu reads its own $sub $bs $bsz image wrong"
			"$T" compare "$img" "$expect" >"$W/out" ||
				fail "qemu-made $sub block $bs block_state_zero=$bsz: we read differently ($(cat "$W/out"))"
			if [ "$sub$bs$bsz" = dynamic1Mon ] || [ "$sub$bs$bsz" = fixed1Moff ]; then
				qemu-img convert -f vhdx -O raw "$img" "$W/q.raw"
				"$T" compare "$img" "$W/q.raw" >"$W/out" ||
					fail "qemu-made $sub $bs $bsz: qemu's whole view differs from ours ($(cat "$W/out"))"
			fi
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
for spec in "dynamic 4352M 1M" "dynamic 1G 32M" "fixed 2G 32M" "dynamic 1G 256M" "fixed 1G 1M"; do
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
