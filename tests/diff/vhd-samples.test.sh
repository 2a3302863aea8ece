#!/bin/sh
# tests/diff/vhd-samples.test.sh - the real VHD samples (shared/samples) read as their README
# says: content sha256 and size, both size readings of the Virtual PC disk against qemu-img
# and vhdiinfo, and refusal of the sample with a bad footer checksum.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhd_tool
S=${SAMPLES:-../shared/samples}
[ -x "$T" ] || fail "$T is not built"
for tool in qemu-img vhdiinfo sha256sum bzip2 gzip; do
	command -v $tool >/dev/null || fail "$tool is not installed"
done
W=$(mktemp -d "${TMPDIR:-/tmp}/vhd-samples.XXXXXX")
trap 'rm -rf "$W"' EXIT

unpack() {
	if [ -f "$S/$1.bz2" ]; then bzip2 -dc "$S/$1.bz2"; elif [ -f "$S/$1.gz" ]; then
		gzip -dc "$S/$1.gz"; else fail "sample $1 missing in $S"; fi |
		cp --sparse=always /dev/stdin "$W/$1"
}
field() { "$T" info ${3:-} "$W/$1" | sed -n "s/^$2=//p"; }

expect_sample() { # name size sha256
	unpack "$1"
	[ "$(field "$1" size)" = "$2" ] || fail "$1: size $(field "$1" size), expected $2"
	sum=$("$T" cat "$W/$1" | sha256sum | cut -d' ' -f1)
	[ "$sum" = "$3" ] || fail "$1: sha256 $sum, expected $3"
	"$T" check "$W/$1" >"$W/check.out" || fail "$1: check reports errors: $(grep ERROR "$W/check.out" | head -1)"
	echo "ok $1 size $2 sha256 $sum"
}

expect_sample d2v-zerofilled.vhd 263454720 1ba076be94a8a64541c25aae8d5a5f8b0da758c3797af597e03acb431ff8d143
expect_sample ext2.vhd 4212736 870be7ae16c1fa8faab05c6eb9205dc9a7ae35c5f552c5cf8a267c0bc6a5cb99
[ "$(field d2v-zerofilled.vhd map_data)" = 263454720 ] || fail "d2v: all 126 blocks should map as data"

# Virtual PC: our rule reads CHS for creator "vpc " (qemu >= 10 agrees); the footer's
# current_size (what libvhdi reports) is in info; --chs gives the CHS size too.
v=virtualpc-dynamic.vhd
unpack $v
chs=136363130880 cur=136365211648
[ "$(field $v size)" = $chs ] || fail "$v: default size $(field $v size), expected CHS $chs"
[ "$(field $v size --chs)" = $chs ] || fail "$v: --chs size, expected $chs"
[ "$(field $v current_size)" = $cur ] || fail "$v: current_size, expected $cur"
[ "$(field $v map_zero)" = $chs ] || fail "$v: should map entirely as zeros"
q=$(qemu-img info --output=json "$W/$v" | sed -n "s/.*\"virtual-size\": \([0-9]*\).*/\1/p" | tail -n 1)
[ "$q" = $chs ] || fail "$v: qemu-img says $q, we say $chs"
l=$(vhdiinfo "$W/$v" | sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p')
[ "$l" = "$(field $v current_size)" ] || fail "$v: vhdiinfo says $l, our current_size differs"
echo "ok $v: default and CHS $chs (= qemu-img), current_size $cur (= vhdiinfo)"

# Bad footer checksum: refused, and the message names the field.
unpack bad-footer-checksum.vhd
if "$T" info "$W/bad-footer-checksum.vhd" >/dev/null 2>"$W/err"; then
	fail "bad-footer-checksum.vhd opened"
fi
grep -q "footer checksum" "$W/err" || fail "bad-footer-checksum.vhd: message does not name the field: $(cat "$W/err")"
"$T" check "$W/bad-footer-checksum.vhd" >"$W/check.out" && fail "check accepts bad-footer-checksum.vhd"
grep -q "ERROR.*footer checksum" "$W/check.out" || fail "check does not name the footer checksum"
echo "ok bad-footer-checksum.vhd refused: $(cat "$W/err")"
