# lib.sh: shared by tests/boot/*.test.sh (sourced). Sets repo, build, fixtures, harness
# and provides need_fixtures / need_file / fail.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
export BUILD="$build"
fixtures="$build/fixtures"
harness="$repo/tests/harness/with-kvm"
test_name=$(basename "$0" .test.sh)

# The boot tests prove the nested path unless told otherwise, even on a host with
# /dev/kvm: that path is what CI (no /dev/kvm) depends on.
export WITH_KVM_MODE="${WITH_KVM_MODE:-nested}"

fail() {
	echo "FAIL $test_name: $*"
	exit 1
}

# Builds the fixtures if needed (a cached no-op otherwise); a failure is the test's.
need_fixtures() {
	mkdir -p "$build"
	_log=$(mktemp "$build/.fixtures-build.XXXXXX")
	if ! "$repo/tests/fixtures/build.sh" >"$_log" 2>&1; then
		tail -n 20 "$_log"
		rm -f "$_log"
		fail "cannot build the fixtures (tests/fixtures/build.sh)"
	fi
	rm -f "$_log"
}

need_file() {
	[ -e "$1" ] || fail "missing $1 ($2)"
}

# t0 / elapsed: wall time of the test so far, in seconds with one decimal.
t0=$(date +%s.%N)
elapsed() {
	echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}'
}
