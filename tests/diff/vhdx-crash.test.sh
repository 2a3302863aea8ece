#!/bin/sh
# tests/diff/vhdx-crash.test.sh - crash safety of VHDX writes and resizes: a writer acknowledges
# each flushed operation, gets kill -9 at a seeded random moment, and the reopened image
# (log replayed into the file) must hold every acknowledged write, old-or-new content for
# the one in flight, nothing else, and pass qemu-img check.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
T=$BUILD/tests/vhdx_tool
[ -x "$T" ] || fail "$T is not built"
command -v qemu-img >/dev/null || fail "qemu-img is not installed"
W=$(mktemp -d "${TMPDIR:-/tmp}/vhdx-crash.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$W"' EXIT
ITER=${VHDX_CRASH_ITERATIONS:-8}

total=0
for i in $(seq 1 "$ITER"); do
	img=$W/c.vhdx
	rm -f "$img"
	"$T" create dynamic "$img" 256M 1M || fail "create"
	seed=$((i * 7 + 3))
	# Kill after 0.2 .. 1.7 s, deterministic per iteration.
	delay=$(awk -v s=$seed 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 1.5 }')
	"$T" crash-writer "$img" $seed >"$W/acks" 2>"$W/err" &
	pid=$!
	sleep "$delay"
	kill -9 $pid 2>/dev/null || fail "writer exited early: $(cat "$W/err")"
	wait $pid 2>/dev/null || true
	pid=
	acked=$(tail -n 1 "$W/acks" | sed -n 's/^ack //p')
	acked=${acked:-0}
	[ "$acked" -gt 0 ] || fail "iteration $i: no operation acknowledged in ${delay}s"
	"$T" crash-verify "$img" $seed "$acked" >"$W/out" 2>&1 ||
		fail "iteration $i (seed $seed, $acked acknowledged): $(cat "$W/out")"
	qemu-img check -f vhdx "$img" >"$W/out" 2>&1 ||
		fail "iteration $i: qemu-img check after replay: $(cat "$W/out")"
	"$T" check "$img" >"$W/out" || fail "iteration $i: our check: $(grep error "$W/out" | head -1)"
	total=$((total + acked))
done
echo "ok $ITER kill -9 iterations ($total acknowledged operations incl. resizes): acknowledged data intact, in-flight old-or-new, qemu-img check clean"
