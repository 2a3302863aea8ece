#!/bin/sh
# tests/run-all.sh - runs every genshift test and prints one summary line.
# Called by `make check` with BUILD, UNIT_BINS and FUZZ_TARGETS set. Runs, in order:
#   1. cmocka unit tests ($BUILD/tests/<name>), their own summaries shown;
#   2. fuzz corpus replays ($BUILD/tests/fuzz_<x>-replay over tests/fuzz/corpus/<x>/);
#   3. shell-level tests: tests/diff/*.test.sh, then tests/boot/*.test.sh (TEST_DIRS="DIR..."
#      names other directories instead: `make check-slow` runs tests/slow).
# Each test's output goes to $BUILD/test-logs/<name>.log; a failing test's log tail is shown.
# A test that cannot run (missing tool, missing sample) fails: nothing is skipped silently.
# TESTS=pattern runs only tests whose name contains pattern.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
export BUILD
GENSHIFT=${GENSHIFT:-$top/$BUILD/genshift}
SAMPLES=${SAMPLES:-$top/../shared/samples}
export GENSHIFT SAMPLES
logs=$BUILD/test-logs
mkdir -p "$logs"
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/genshift-test.XXXXXX")
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT INT TERM

passed=0
failed=0
failures=""

run() { # name command...
	name=$1
	shift
	case "$name" in *"${TESTS:-}"*) ;; *) return 0 ;; esac
	start=$(date +%s.%N)
	mkdir -p "$(dirname "$logs/$name.log")"
	"$@" >"$logs/$name.log" 2>&1
	rc=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-40s %6ss\n' "$name" "$secs"
		# Show cmocka's own summary lines so CI sees them.
		grep -E '^\[ *(PASSED|FAILED|==========) *\]' "$logs/$name.log" | sed 's/^/      /'
	else
		failed=$((failed + 1))
		failures="$failures $name"
		printf 'FAIL  %-40s %6ss (exit %d)\n' "$name" "$secs" "$rc"
		tail -n 25 "$logs/$name.log" | sed 's/^/      | /'
	fi
}

for bin in ${UNIT_BINS:-}; do
	run "unit/$(basename "$bin")" "$bin"
done

for t in ${FUZZ_TARGETS:-}; do
	short=${t#fuzz_}
	corpus=tests/fuzz/corpus/$short
	[ -d "$corpus" ] || corpus=tests/fuzz/corpus/$t
	run "fuzz-replay/$short" "$BUILD/tests/$t-replay" "$corpus"
done

# Unquoted on purpose: each word of TEST_DIRS becomes a DIR/*.test.sh pattern, expanded here.
for script in $(printf '%s/*.test.sh ' ${TEST_DIRS:-tests/diff tests/boot}); do
	[ -e "$script" ] || continue
	name=$(basename "$(dirname "$script")")/$(basename "$script" .test.sh)
	run "$name" "$script"
done

echo
[ -z "$failures" ] || echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
