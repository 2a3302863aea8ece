#!/bin/sh
# tests/diff/partition-crash.test.sh - an interrupted `genshift partition convert` never
# leaves a disk that neither sgdisk nor sfdisk can read, never touches partition contents,
# and is always undoable to a byte-identical image.
#   1. Deterministic: GENSHIFT_FAULT_AFTER_STEP=N makes convert _exit() right after durable
#      step N (undo file, grow, backup GPT, primary GPT, protective MBR), for every N.
#   2. Random: convert is kill -9'ed after a varying delay, a dozen times.
# After each interruption: our reader sees the old MBR (or, after the last step, the GPT),
# every partition hashes as before, and undo (if the undo file exists) restores the image;
# without an undo file the image must be unchanged.
set -eu
: "${BUILD:=build}" "${TMPDIR:=/tmp}"
GENSHIFT=${GENSHIFT:-$BUILD/genshift}
PROP=$BUILD/tests/part_prop
for tool in sgdisk sfdisk "$PROP" "$GENSHIFT"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
work=$(mktemp -d "$TMPDIR/part-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($case): $*"; exit 1; }

# Readable by at least one independent tool, and by us as the expected kind.
check_state() { # image expected-kinds
	if ! sfdisk -d "$1" >/dev/null 2>&1 && ! sgdisk -v "$1" 2>&1 | grep -q "No problems found"; then
		fail "neither sfdisk nor sgdisk can read the disk"
	fi
	kind=$("$GENSHIFT" partition show "$1" --json | sed -n 's/.*"kind": *"\([a-z]*\)".*/\1/p')
	case " $2 " in *" $kind "*) ;; *) fail "our reader sees '$kind', expected one of: $2" ;; esac
	"$PROP" hash "$1" "$work/layout" | cmp -s - "$work/before" || fail "partition contents changed"
}

check_undo() { # image
	if [ -e "$1.genshift-undo" ]; then
		"$GENSHIFT" partition undo "$1" "$1.genshift-undo" >/dev/null || fail "undo failed"
		rm -f "$1.genshift-undo"
	fi
	[ "$("$PROP" sum "$1")" = "$sum0" ] || fail "image not restored (or changed without an undo file)"
}

steps=0 kills=0
for seed in 2 3 9; do
	"$PROP" gen "$seed" "$work/orig.img" >"$work/layout"
	"$PROP" hash "$work/orig.img" "$work/layout" >"$work/before"
	sum0=$("$PROP" sum "$work/orig.img")
	n=1
	while :; do
		case="seed $seed, fault after step $n"
		img=$work/d.img
		rm -f "$work"/d.img*
		cp --sparse=always "$work/orig.img" "$img"
		rc=0
		GENSHIFT_FAULT_AFTER_STEP=$n "$GENSHIFT" partition convert "$img" --seed "$seed" \
			--esp-size 100M >/dev/null 2>"$work/err" || rc=$?
		[ "$rc" = 0 ] || [ "$rc" = 99 ] || fail "convert exit $rc: $(cat "$work/err")"
		if [ "$rc" = 0 ]; then
			check_state "$img" gpt # past the last step: a normal run
		else
			check_state "$img" "mbr gpt"
			steps=$((steps + 1))
		fi
		check_undo "$img"
		[ "$rc" = 99 ] || break
		n=$((n + 1))
	done
	[ "$n" -ge 4 ] || fail "only $n steps seen"
	for k in 1 2 3 4; do
		case="seed $seed, kill -9 #$k"
		img=$work/d.img
		rm -f "$work"/d.img*
		cp --sparse=always "$work/orig.img" "$img"
		"$GENSHIFT" partition convert "$img" --seed "$seed" --esp-size 100M >/dev/null 2>&1 &
		pid=$!
		sleep "0.0$(( (seed * 7 + k * 13) % 9 ))$k"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		check_state "$img" "mbr gpt"
		check_undo "$img"
		kills=$((kills + 1))
	done
done
echo "crash: $steps injected faults and $kills kill -9 runs; every disk readable, contents intact, undo exact"
