#!/bin/sh
# tests/diff/vhdx-resize-diff.test.sh - VHDX resize (grow in place, grow with BAT relocation,
# fixed grow, shrink allowed and refused) judged by qemu-img check/compare against a raw
# mirror; differencing chains (our parent, our child) against a raw mirror, and a parent
# whose DataWriteGuid changed refused with both GUIDs named.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhdx_tool
[ -x "$T" ] || fail "$T is not built"
command -v qemu-img >/dev/null || fail "qemu-img is not installed"
W=$(mktemp -d "${TMPDIR:-/tmp}/vhdx-resize.XXXXXX")
trap 'rm -rf "$W"' EXIT

qcheck() { # img raw what
	qemu-img check -f vhdx "$1" >"$W/out" 2>&1 || fail "$3: qemu-img check: $(cat "$W/out")"
	qemu-img compare -f raw -F vhdx "$2" "$1" >"$W/out" 2>&1 || fail "$3: qemu-img compare: $(cat "$W/out")"
	"$T" compare "$1" "$2" >"$W/out" || fail "$3: our reader: $(cat "$W/out")"
	"$T" check "$1" >"$W/out" || fail "$3: our check: $(grep error "$W/out" | head -1)"
}
size_of() { "$T" info "$1" | sed -n 's/^size=//p'; }

# Dynamic, 1 MiB blocks: the 1 MiB BAT holds 128 GiB worth of entries; 200 GiB relocates it.
img=$W/d.vhdx raw=$W/d.raw
"$T" create dynamic "$img" 1G 1M
"$T" write "$img" "$raw" 1 30 1M
"$T" resize "$img" 3G || fail "grow 1G -> 3G"
truncate -s 3G "$raw"
"$T" write "$img" "$raw" 2 20 1M
qcheck "$img" "$raw" "dynamic grow in place"
echo "ok dynamic grow 1 GiB -> 3 GiB in place"
"$T" resize "$img" 200G || fail "grow 3G -> 200G"
truncate -s 200G "$raw"
# qemu cannot compare 200 GiB quickly (no block status for VHDX): compare the first 3 GiB
# and check patterns written past the old end with qemu-io.
"$T" pattern "$img" "$raw" 161061273600 3M 0xa7
"$T" pattern "$img" "$raw" 214748360704 4096 0x5c
qemu-img check -f vhdx "$img" >"$W/out" 2>&1 || fail "relocated BAT: qemu-img check: $(cat "$W/out")"
qemu-img dd -f vhdx -O raw if="$img" of="$W/head.raw" bs=1M count=3072 2>"$W/out" || fail "qemu-img dd: $(cat "$W/out")"
head -c 3G "$raw" | cmp - "$W/head.raw" >/dev/null || fail "relocated BAT: qemu reads the first 3 GiB differently"
rm -f "$W/head.raw"
qemu-io -r -f vhdx -c "read -P 0xa7 161061273600 3M" -c "read -P 0x5c 214748360704 4096" \
	-c "read -P 0 107374182400 1M" "$img" >"$W/out" 2>&1 || fail "relocated BAT: qemu-io: $(cat "$W/out")"
grep -q "Pattern verification failed" "$W/out" && fail "relocated BAT: qemu reads wrong patterns"
"$T" compare "$img" "$raw" >"$W/out" || fail "relocated BAT: our reader: $(cat "$W/out")"
"$T" check "$img" >"$W/out" || fail "relocated BAT: our check: $(grep error "$W/out" | head -1)"
echo "ok dynamic grow 3 GiB -> 200 GiB with BAT relocation"

# Shrink: refused while data lies past the new end, allowed once it does not.
"$T" resize "$img" 1G 2>"$W/err" && fail "shrink over allocated data accepted"
grep -q "cannot shrink" "$W/err" || fail "shrink refusal message: $(cat "$W/err")"
echo "ok shrink over data refused: $(cat "$W/err")"
img2=$W/s.vhdx raw2=$W/s.raw
"$T" create dynamic "$img2" 1G 32M
"$T" write "$img2" "$raw2" 4 10 1M
truncate -s 1536M "$raw2"; "$T" resize "$img2" 1536M
"$T" resize "$img2" 1G || fail "shrink 1.5G -> 1G with nothing past 1G"
truncate -s 1G "$raw2"
[ "$(size_of "$img2")" = 1073741824 ] || fail "size after shrink"
qcheck "$img2" "$raw2" "dynamic shrink"
echo "ok dynamic grow 1 -> 1.5 GiB then shrink back to 1 GiB"
# Allocated blocks past the new end that read as zeros are dropped (partition undo zeroes
# what a conversion added, then shrinks back); qemu must agree on the result.
"$T" resize "$img2" 1536M
qemu-io -f vhdx -c "write -q -P 0x3c 1100M 64M" "$img2" >/dev/null
"$T" resize "$img2" 1G 2>"$W/err" && fail "shrink over non-zero blocks accepted"
qemu-io -f vhdx -c "write -q -P 0 1100M 64M" "$img2" >/dev/null
"$T" resize "$img2" 1G || fail "shrink over allocated zero blocks refused"
[ "$(size_of "$img2")" = 1073741824 ] || fail "size after zero-block shrink"
qcheck "$img2" "$raw2" "shrink over zeroed allocated blocks"
"$T" resize "$img2" 1536M
truncate -s 1536M "$raw2"
qcheck "$img2" "$raw2" "regrow after dropping zero blocks (reads zeros)"
echo "ok allocated zero blocks past the end dropped; regrown disk reads zeros there"

# Fixed grow: new blocks allocated, zero-reading.
img3=$W/f.vhdx raw3=$W/f.raw
"$T" create fixed "$img3" 256M 32M
"$T" write "$img3" "$raw3" 5 10 1M
"$T" resize "$img3" 400M || fail "fixed grow"
truncate -s 400M "$raw3"
"$T" write "$img3" "$raw3" 6 10 1M
qcheck "$img3" "$raw3" "fixed grow"
[ "$("$T" info "$img3" | sed -n 's/^subformat=//p')" = fixed ] || fail "fixed disk no longer fixed"
echo "ok fixed grow 256 MiB -> 400 MiB (partial last block)"

# ---- differencing ----
p=$W/parent.vhdx c=$W/child.vhdx
"$T" create dynamic "$p" 300M 2M
"$T" write "$p" "$W/p.raw" 7 30 1M
cp --sparse=always "$W/p.raw" "$W/c.raw"
"$T" create diff "$c" "$p" || fail "create differencing child"
[ "$("$T" info "$c" | sed -n 's/^subformat=//p')" = differencing ] || fail "child not differencing"
[ "$("$T" info "$c" | sed -n 's/^disk_id=//p')" = "$("$T" info "$p" | sed -n 's/^disk_id=//p')" ] ||
	fail "child VirtualDiskId differs from the parent's"
"$T" compare "$c" "$W/p.raw" >"$W/out" || fail "fresh child differs from its parent: $(cat "$W/out")"
# libvhdi (independent reader) sees a differencing disk linked to the parent's DataWriteGuid.
if command -v vhdiinfo >/dev/null; then
	vhdiinfo "$c" >"$W/out" 2>&1 || fail "vhdiinfo cannot read our child: $(cat "$W/out")"
	grep -q "Disk type.*Differential" "$W/out" || fail "vhdiinfo: child not differential: $(cat "$W/out")"
	pid_=$(sed -n 's/.*Parent identifier[^:]*: //p' "$W/out")
	[ "$pid_" = "$("$T" info "$p" | sed -n 's/^data_write_guid=//p')" ] ||
		fail "vhdiinfo: parent identifier $pid_ is not the parent's DataWriteGuid"
else
	fail "vhdiinfo is not installed"
fi
"$T" write "$c" "$W/c.raw" 8 40 1M
"$T" compare "$c" "$W/c.raw" >"$W/out" || fail "child reads wrong after writes: $(cat "$W/out")"
"$T" compare "$p" "$W/p.raw" >"$W/out" || fail "parent changed by child writes: $(cat "$W/out")"
"$T" check "$c" >"$W/out" || fail "our check on the child: $(grep error "$W/out" | head -1)"
"$T" resize "$c" 400M 2>"$W/err" && fail "differencing resize accepted"
grep -q "cannot be resized" "$W/err" || fail "differencing resize message: $(cat "$W/err")"
echo "ok differencing child over our parent reads like its raw mirror; parent untouched"

# Moved files: the relative locator still finds the parent.
mkdir "$W/moved"
mv "$p" "$c" "$W/moved/"
"$T" compare "$W/moved/child.vhdx" "$W/c.raw" >"$W/out" || fail "moved chain: $(cat "$W/out")"
echo "ok chain moved to another directory opens through relative_path"

# Parent in another directory (relative_path "..\\par\\parent.vhdx"); then both files moved
# into a third directory: relative and absolute paths are stale, the basename next to the
# child is the last resort.
mkdir "$W/par" "$W/kid" "$W/both"
"$T" create dynamic "$W/par/parent.vhdx" 64M 2M
"$T" write "$W/par/parent.vhdx" "$W/p2.raw" 11 5 1M
"$T" create diff "$W/kid/child.vhdx" "$W/par/parent.vhdx"
"$T" compare "$W/kid/child.vhdx" "$W/p2.raw" >"$W/out" || fail "child in a sibling directory: $(cat "$W/out")"
mv "$W/par/parent.vhdx" "$W/kid/child.vhdx" "$W/both/"
"$T" compare "$W/both/child.vhdx" "$W/p2.raw" >"$W/out" || fail "basename fallback: $(cat "$W/out")"
rm "$W/both/parent.vhdx"
"$T" info "$W/both/child.vhdx" >/dev/null 2>"$W/err" && fail "child opened without its parent"
grep -q "not found (tried relative_path" "$W/err" || fail "missing-parent message: $(cat "$W/err")"
echo "ok parent found through a sibling-directory relative path, then by basename; missing parent named"

# Writing to the parent changes its DataWriteGuid: the child must be refused.
"$T" write "$W/moved/parent.vhdx" "$W/p.raw" 9 1 4096
"$T" info "$W/moved/child.vhdx" >/dev/null 2>"$W/err" && fail "child opened over a modified parent"
grep -q "DataWriteGuid .* parent_linkage is {" "$W/err" || fail "linkage message: $(cat "$W/err")"
echo "ok modified parent refused: $(cat "$W/err")"
