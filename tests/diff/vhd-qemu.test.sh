#!/bin/sh
# tests/diff/vhd-qemu.test.sh - VHD read/write/create/resize judged by qemu-img/qemu-io 10
# and libvhdi's vhdiinfo: qemu-made images read byte-identical to qemu's own view; images we
# create and write randomly compare identical to a raw mirror in qemu; differencing disks
# (which qemu cannot judge) against the mirror and vhdiinfo's parent identifier.
# `qemu-img check` has no vpc support ("This image format does not support checks"), so
# qemu-img compare, vhdiinfo and our own check stand in for it.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhd_tool
[ -x "$T" ] || fail "$T is not built"
for tool in qemu-img qemu-io vhdiinfo sha256sum; do
	command -v $tool >/dev/null || fail "$tool is not installed"
done
W=$(mktemp -d "${TMPDIR:-/tmp}/vhd-qemu.XXXXXX")
trap 'rm -rf "$W"' EXIT
field() { "$T" info "$1" | sed -n "s/^$2=//p"; }
mirror() { rm -f "$W/m.raw" && truncate -s "$1" "$W/m.raw"; } # a fresh all-zero raw mirror
qsize() { qemu-img info -f vpc --output=json "$1" | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p'; }

# 1. qemu writes, we read. Our reader must see what qemu sees.
qemu_made() { # name create-options
	img=$W/$1.vhd
	qemu-img create -q -f vpc -o "$2" "$img" 50M
	for p in "0x11 0 64k" "0x22 1M 3M" "0x33 7000k 512" "0x44 49M 1M" "0x55 2047k 2k"; do
		set -- $p
		qemu-io -f vpc -c "write -q -P $1 $2 $3" "$img" || fail "qemu-io write $p"
	done
	qemu-img convert -f vpc -O raw "$img" "$W/q.raw"
	[ "$(field "$img" size)" = "$(stat -c %s "$W/q.raw")" ] ||
		fail "$img: size $(field "$img" size), qemu $(stat -c %s "$W/q.raw")"
	"$T" compare "$img" "$W/q.raw" || fail "$img ($2) reads differently from qemu"
	"$T" check "$img" >/dev/null || fail "$img: our check reports errors"
}
qemu_made dyn subformat=dynamic
qemu_made dynforce subformat=dynamic,force_size=on
qemu_made fixed subformat=fixed
qemu_made fixedforce subformat=fixed,force_size=on
head -c 3000000 /dev/urandom >"$W/src.raw"
truncate -s 8M "$W/src.raw"
qemu-img convert -f raw -O vpc "$W/src.raw" "$W/conv.vhd"
qemu-img convert -f vpc -O raw "$W/conv.vhd" "$W/conv.raw"
"$T" compare "$W/conv.vhd" "$W/conv.raw" || fail "qemu-img convert -O vpc output reads differently"
echo "ok qemu-made dynamic/fixed (CHS-rounded and force_size) and convert output read as qemu reads them"

# 2. We create and write, qemu and libvhdi read.
ours() { # type size block seed
	img=$W/our-$1.vhd
	rm -f "$img"
	"$T" create "$1" "$img" "$2" ${3:-} || fail "create $1"
	mirror "$2"
	"$T" write "$img" "$W/m.raw" "$4" 120 || fail "write $1"
	[ "$(qsize "$img")" = "$2" ] || fail "$img: qemu-img size $(qsize "$img"), expected $2"
	qemu-img compare -q -f raw -F vpc "$W/m.raw" "$img" || fail "$img differs from the mirror in qemu"
	"$T" compare "$img" "$W/m.raw" || fail "$img differs from the mirror on reopen"
	vhdiinfo "$img" | grep -q "Media size.*($2 bytes)" || fail "$img: vhdiinfo size"
	"$T" check "$img" >"$W/check.out" || fail "$img: check: $(grep ERROR "$W/check.out" | head -1)"
	grep -q "0 with data not 4 KiB aligned" "$W/check.out" || [ "$1" = fixed ] ||
		fail "$img: blocks without 4 KiB aligned data"
}
ours fixed 67108864 "" 1
ours dynamic 67108864 "" 2
ours dynamic 20971520 65536 3
ours dynamic 1000001536 "" 4
echo "ok our fixed/dynamic images, random writes: qemu-img compare identical, vhdiinfo sizes agree"

# Creator and size: exact size by default (creator gnsh), qemu-style CHS rounding on request.
"$T" create dynamic "$W/chs.vhd" 1073741824 0 chs
[ "$(qsize "$W/chs.vhd")" = 1073995776 ] || fail "CHS-rounded 1 GiB should be 1073995776 (qemu)"
qemu-img create -q -f vpc "$W/qchs.vhd" 1G
[ "$(field "$W/qchs.vhd" size)" = 1073995776 ] || fail "qemu's CHS-rounded 1 GiB read wrongly"
[ "$(field "$W/our-fixed.vhd" creator)" = "gnsh 1.0" ] || fail "creator"
echo "ok sizes: exact by default, CHS rounding matches qemu"

# 3. Differencing: parent + child in another directory, random writes through both.
mkdir -p "$W/base" "$W/child"
"$T" create dynamic "$W/base/p.vhd" 33554432
mirror 32M
"$T" write "$W/base/p.vhd" "$W/m.raw" 7 60
cp "$W/m.raw" "$W/p.raw"
"$T" create diff "$W/child/c.vhd" "$W/base/p.vhd"
"$T" write "$W/child/c.vhd" "$W/m.raw" 8 120
"$T" compare "$W/child/c.vhd" "$W/m.raw" || fail "differencing child differs from the mirror"
"$T" compare "$W/base/p.vhd" "$W/p.raw" || fail "parent modified through the child"
pid=$(field "$W/base/p.vhd" disk_id)
vhdiinfo "$W/child/c.vhd" >"$W/vi.out"
grep -q "Disk type.*Differential" "$W/vi.out" || fail "vhdiinfo: not differential"
grep -q "Parent identifier.*$pid" "$W/vi.out" || fail "vhdiinfo: parent id is not $pid"
"$T" check "$W/child/c.vhd" >"$W/check.out" || fail "check of the child: $(grep ERROR "$W/check.out")"
grep -q "unique id matches" "$W/check.out" || fail "check did not verify the parent link"
# A second level: grandchild over child over parent.
cp "$W/m.raw" "$W/c.raw"
"$T" create diff "$W/child/g.vhd" "$W/child/c.vhd"
"$T" write "$W/child/g.vhd" "$W/m.raw" 12 60
"$T" compare "$W/child/g.vhd" "$W/m.raw" || fail "two-level chain differs from the mirror"
"$T" compare "$W/child/c.vhd" "$W/c.raw" || fail "grandchild writes leaked into the child"
rm "$W/child/g.vhd"
mv "$W/c.raw" "$W/m.raw"
# The relative locator still finds the parent after the pair moves.
mkdir -p "$W/moved" && mv "$W/base" "$W/child" "$W/moved/"
"$T" compare "$W/moved/child/c.vhd" "$W/m.raw" || fail "child does not find its moved parent"
# A different file with the parent's name is refused, naming both ids.
rm "$W/moved/base/p.vhd"
"$T" create dynamic "$W/moved/base/p.vhd" 33554432
if "$T" info "$W/moved/child/c.vhd" 2>"$W/err" >/dev/null; then fail "wrong parent accepted"; fi
grep -q "unique id" "$W/err" || fail "wrong parent: $(cat "$W/err")"
echo "ok differencing: child = mirror, parent untouched, vhdiinfo parent id $pid, relative locator, wrong parent refused"

# 4. Resize: grow (the BAT grows over the first blocks, which move) and shrink.
rm -f "$W/r.vhd"
"$T" create dynamic "$W/r.vhd" 16777216
mirror 16M
"$T" write "$W/r.vhd" "$W/m.raw" 9 40
"$T" resize "$W/r.vhd" 2147483648 || fail "grow dynamic"
truncate -s 2G "$W/m.raw"
[ "$(qsize "$W/r.vhd")" = 2147483648 ] || fail "qemu-img size after grow"
qemu-img compare -q -f raw -F vpc "$W/m.raw" "$W/r.vhd" || fail "grown dynamic differs in qemu"
"$T" write "$W/r.vhd" "$W/m.raw" 10 40
qemu-img compare -q -f raw -F vpc "$W/m.raw" "$W/r.vhd" || fail "grown dynamic after writes differs"
"$T" check "$W/r.vhd" >"$W/check.out" || fail "grown dynamic: $(grep ERROR "$W/check.out")"
"$T" resize "$W/r.vhd" 1048576 2>/dev/null && fail "shrink over allocated blocks accepted"
# Allocated blocks that read as zeros may be dropped (a partition undo zeroes, then shrinks).
qemu-io -f vpc -c "write -q -P 0 16M 2032M" "$W/r.vhd"
"$T" resize "$W/r.vhd" 16777216 || fail "shrink over zeroed allocated blocks refused"
truncate -s 16M "$W/m.raw"
qemu-img compare -q -f raw -F vpc "$W/m.raw" "$W/r.vhd" || fail "shrunk dynamic differs in qemu"
"$T" check "$W/r.vhd" >"$W/check.out" || fail "shrunk dynamic: $(grep ERROR "$W/check.out")"
"$T" create fixed "$W/rf.vhd" 8388608
mirror 8M
"$T" write "$W/rf.vhd" "$W/m.raw" 11 20
"$T" resize "$W/rf.vhd" 20971520 && truncate -s 20M "$W/m.raw"
qemu-img compare -q -f raw -F vpc "$W/m.raw" "$W/rf.vhd" || fail "grown fixed differs in qemu"
"$T" create dynamic "$W/rs.vhd" 104857600
mirror 100M
qemu-io -f vpc -c "write -q -P 0x66 1M 1M" "$W/rs.vhd"
qemu-io -f raw -c "write -q -P 0x66 1M 1M" "$W/m.raw"
"$T" resize "$W/rs.vhd" 52428800 && truncate -s 50M "$W/m.raw"
qemu-img compare -q -f raw -F vpc "$W/m.raw" "$W/rs.vhd" || fail "shrunk dynamic differs in qemu"
# Fixed shrink: allowed over zeros only.
"$T" create fixed "$W/fs.vhd" 16777216
mirror 16M
qemu-io -f vpc -c "write -q -P 0x77 1M 1M" "$W/fs.vhd"
qemu-io -f raw -c "write -q -P 0x77 1M 1M" "$W/m.raw"
"$T" resize "$W/fs.vhd" 8388608 && truncate -s 8M "$W/m.raw"
qemu-img compare -q -f raw -F vpc "$W/m.raw" "$W/fs.vhd" || fail "shrunk fixed differs in qemu"
[ "$(stat -c %s "$W/fs.vhd")" = 8389120 ] || fail "shrunk fixed file is not 8 MiB + 512"
"$T" resize "$W/fs.vhd" 1048576 2>/dev/null && fail "fixed shrink over data accepted"
# Differencing grow (no oracle but the mirror): the part past the parent reads zeros.
"$T" create dynamic "$W/rp.vhd" 8388608
mirror 8M
"$T" write "$W/rp.vhd" "$W/m.raw" 13 20
"$T" create diff "$W/rc.vhd" "$W/rp.vhd"
"$T" write "$W/rc.vhd" "$W/m.raw" 14 20
"$T" resize "$W/rc.vhd" 67108864 && truncate -s 64M "$W/m.raw"
"$T" write "$W/rc.vhd" "$W/m.raw" 15 40
"$T" compare "$W/rc.vhd" "$W/m.raw" || fail "grown differencing child differs from the mirror"
"$T" check "$W/rc.vhd" >"$W/check.out" || fail "grown child: $(grep ERROR "$W/check.out")"
echo "ok resize: dynamic grow with BAT growth, fixed grow and shrink, dynamic shrink (qemu agrees); differencing grow"
