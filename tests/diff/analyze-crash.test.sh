#!/bin/sh
# tests/diff/analyze-crash.test.sh - `genshift analyze` on hostile input: every file of the
# VHD, VHDX and partition fuzz corpora (truncated headers, bad checksums, EBR loops, ...)
# and of the vmcfg corpus is analyzed. Images must give a verdict (exit 0 or 3, every
# problem a finding), never a crash or sanitizer report (with `make SAN=1` builds the
# sanitizers exit 86/87); configurations may also fail to parse (exit 1). The --json
# document must hold one entry per file.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
GENSHIFT=${GENSHIFT:-$top/$BUILD/genshift}
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed"; exit 1; }
[ -x "$GENSHIFT" ] || { echo "FAIL: $GENSHIFT not built"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/analyze-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=exitcode=86 UBSAN_OPTIONS=halt_on_error=1:exitcode=87
fail=0

# Copies, so that nothing can write into the corpus (analyze never writes; if it did, the
# comparison below would see it).
mkdir "$work/img" "$work/cfg"
for d in vhd vhdx partition; do
	for f in "$top/tests/fuzz/corpus/$d"/*; do cp "$f" "$work/img/$d-$(basename "$f")"; done
done
cp "$top/tests/fuzz/corpus/vmcfg"/* "$work/cfg/"
n_img=$(ls "$work/img" | wc -l)
[ "$n_img" -ge 50 ] || { echo "FAIL: only $n_img corpus images"; exit 1; }
(cd "$work/img" && sha256sum -- * >"$work/img.sum")

"$GENSHIFT" analyze --json "$work/img"/* >"$work/img.json" 2>"$work/img.err"
rc=$?
case $rc in
0 | 3) ;;
*) echo "FAIL images: exit $rc"; tail -20 "$work/img.err"; fail=1 ;;
esac
grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$work/img.err" && fail=1
(cd "$work/img" && sha256sum -c --quiet "$work/img.sum") || { echo "FAIL: an image changed"; fail=1; }
python3 - "$work/img.json" "$n_img" <<'EOF' || fail=1
import json, sys
doc = json.load(open(sys.argv[1]))
assert len(doc) == int(sys.argv[2]), (len(doc), sys.argv[2])
refused = sum(1 for vm in doc if not vm["convertible"])
for vm in doc:
    assert "error" not in vm, vm
    for f in vm["findings"]:
        assert f["code"] and f["message"] and f["severity"] in ("blocker", "warning"), f
print("images: %d analyzed, %d refused, codes %s" % (len(doc), refused,
      sorted({f["code"] for vm in doc for f in vm["findings"]})))
EOF

"$GENSHIFT" analyze "$work/cfg"/* >"$work/cfg.out" 2>"$work/cfg.err"
rc=$?
case $rc in
0 | 1 | 3) ;;
*) echo "FAIL configs: exit $rc"; tail -20 "$work/cfg.err"; fail=1 ;;
esac
grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$work/cfg.err" && fail=1
[ $fail -eq 0 ] && echo "analyze crash: $n_img images and $(ls "$work/cfg" | wc -l) configurations, no crash"
exit $fail
