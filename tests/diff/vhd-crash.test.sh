#!/bin/sh
# tests/diff/vhd-crash.test.sh - kill -9 during dynamic and differencing VHD writes: after
# each kill the file still opens and checks clean, every write acknowledged by a flush is
# intact and every byte of an unacknowledged write is old or new (vhd_tool crash-verify).
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhd_tool
[ -x "$T" ] || fail "$T is not built"
W=$(mktemp -d "${TMPDIR:-/tmp}/vhd-crash.XXXXXX")
writer=
trap '[ -n "$writer" ] && kill -9 $writer 2>/dev/null; rm -rf "$W"' EXIT

one_run() { # image seed delay
	"$T" crash-writer "$1" "$2" >"$W/acks" 2>"$W/writer.err" &
	writer=$!
	sleep "$3"
	kill -9 $writer 2>/dev/null || fail "writer died early: $(cat "$W/writer.err")"
	wait $writer 2>/dev/null || true
	writer=
	acked=$(sed -n 's/^ack //p' "$W/acks" | tail -n 1)
	"$T" check "$1" >"$W/check.out" ||
		fail "seed $2: check after kill: $(grep ERROR "$W/check.out" | head -1)"
	"$T" crash-verify "$1" "$2" "${acked:-0}" >"$W/verify.out" ||
		fail "seed $2 after ${acked:-0} acknowledged writes: $(head -1 "$W/verify.out")"
	echo "ok seed $2: killed after ${acked:-0} acknowledged writes, image consistent"
}

for seed in 1 2 3 4 5 6; do
	rm -f "$W/d.vhd"
	# Small blocks make most writes allocate; 2 MiB blocks exercise in-place writes.
	block=$([ $((seed % 2)) = 0 ] && echo 65536 || echo 2097152)
	"$T" create dynamic "$W/d.vhd" 33554432 $block
	one_run "$W/d.vhd" $seed "0.$((seed * 13 % 9 + 1))"
done
# Differencing over an all-zero parent: bitmaps are metadata too.
for seed in 7 8 9; do
	rm -f "$W/p.vhd" "$W/c.vhd"
	"$T" create dynamic "$W/p.vhd" 33554432 65536
	"$T" create diff "$W/c.vhd" "$W/p.vhd"
	one_run "$W/c.vhd" $seed "0.$((seed * 7 % 9 + 1))"
done
