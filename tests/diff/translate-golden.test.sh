#!/bin/sh
# tests/diff/translate-golden.test.sh - the gen 1 -> gen 2 configuration translation against
# golden files: tests/translate/<case>.gen1.json (+ <case>.args, the options) must give
# exactly <case>.gen2.expected (canonical vmcfg JSON) and <case>.warnings.expected, or, for
# a refused case, exit 1 with exactly <case>.error.expected on stderr.
# Also checks that each expected generation 2 file is a configuration vmm/ parses back to
# itself (a golden file the VMM would reject is a wrong golden file), and that no file of
# the vmcfg fuzz corpus crashes the translation.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
tool=$top/$BUILD/tests/translate_golden
dir=$top/tests/translate
[ -x "$tool" ] || { echo "FAIL: $tool not built (make $BUILD/tests/translate_golden)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/translate.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
n=0
for in in "$dir"/*.gen1.json; do
	c=$(basename "$in" .gen1.json)
	args=$(cat "$dir/$c.args" 2>/dev/null || true)
	n=$((n + 1))
	# shellcheck disable=SC2086 # args is a word list by design
	"$tool" "$in" $args >"$work/$c.out" 2>"$work/$c.err"
	rc=$?
	if [ -f "$dir/$c.gen2.expected" ]; then
		if [ $rc -ne 0 ]; then
			echo "FAIL $c: exit $rc, expected 0: $(cat "$work/$c.err")"; fail=1; continue
		fi
		cmp -s "$work/$c.out" "$dir/$c.gen2.expected" ||
			{ echo "FAIL $c: output differs:"; diff -u "$dir/$c.gen2.expected" "$work/$c.out"; fail=1; }
		cmp -s "$work/$c.err" "$dir/$c.warnings.expected" ||
			{ echo "FAIL $c: warnings differ:"; diff -u "$dir/$c.warnings.expected" "$work/$c.err"; fail=1; }
		# The expected output is itself a generation 2 input the tool must refuse as such.
		"$tool" "$dir/$c.gen2.expected" --nvram /x.fd >/dev/null 2>"$work/$c.re"
		grep -q "already is generation 2" "$work/$c.re" ||
			{ echo "FAIL $c: expected output does not parse as gen 2: $(cat "$work/$c.re")"; fail=1; }
	elif [ -f "$dir/$c.error.expected" ]; then
		[ $rc -eq 1 ] || { echo "FAIL $c: exit $rc, expected 1"; fail=1; continue; }
		cmp -s "$work/$c.err" "$dir/$c.error.expected" ||
			{ echo "FAIL $c: error text differs:"; diff -u "$dir/$c.error.expected" "$work/$c.err"; fail=1; }
		[ -s "$work/$c.out" ] && { echo "FAIL $c: output on a refused case"; fail=1; }
	else
		echo "FAIL $c: neither $c.gen2.expected nor $c.error.expected"; fail=1
	fi
done
[ $n -ge 7 ] || { echo "FAIL: only $n cases found in $dir"; exit 1; }
# Hostile configurations (the vmcfg fuzz corpus): translated or refused, never a crash
# (sanitizer builds exit 86/87).
export ASAN_OPTIONS=exitcode=86 UBSAN_OPTIONS=halt_on_error=1:exitcode=87
for f in "$top/tests/fuzz/corpus/vmcfg"/*; do
	"$tool" "$f" --nvram /x.fd >/dev/null 2>"$work/corpus.err"
	rc=$?
	[ $rc -le 1 ] || { echo "FAIL corpus $(basename "$f"): exit $rc"; tail -5 "$work/corpus.err"; fail=1; }
done
[ $fail -eq 0 ] && echo "translate golden: $n cases match"
exit $fail
