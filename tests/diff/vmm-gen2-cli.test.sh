#!/bin/sh
# tests/diff/vmm-gen2-cli.test.sh - `genshift boot/verify` refuse generation 2 requests the
# VMM cannot honour before doing any work (no VM, no nested harness, no NVRAM file
# written), with messages that say why:
#   - Secure Boot on: ENOTSUP, naming the secboot build's needs (SMM, Q35);
#   - --nvram on a generation 1 VM;
#   - a bad --memory on a generation 2 VM is refused before the NVRAM file is chosen:
#     an existing one is left byte for byte as it was and nothing says "created".
# (That an existing NVRAM file is reused rather than replaced is proven by boots:
# tests/boot/vmm-gen2-nvram.test.sh.)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) bdir=$BUILD ;; *) bdir=$top/$BUILD ;; esac
GENSHIFT=${GENSHIFT:-$bdir/genshift}
work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-gen2-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL vmm-gen2-cli: $*"; exit 1; }
[ -x "$GENSHIFT" ] || fail "no $GENSHIFT (make)"
truncate -s 1M "$work/disk.raw"

# expect_refusal NAME PATTERN ARGS...: genshift exits 1 within a few seconds (so it did
# not boot anything), without going to the harness, and stderr matches PATTERN.
expect_refusal() {
	name=$1 pattern=$2
	shift 2
	rc=0
	timeout 20 "$GENSHIFT" "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null || rc=$?
	[ "$rc" = 1 ] || fail "$name: exit $rc, expected 1 ($(head -c 300 "$work/$name.err"))"
	grep -q 'nested-KVM harness' "$work/$name.err" && fail "$name: went to the harness"
	grep -Eq "$pattern" "$work/$name.err" || fail "$name: message: $(cat "$work/$name.err")"
	echo "$name: $(head -n 1 "$work/$name.err")"
}

cat >"$work/sb.json" <<'JSON'
{ "format": "genshift-vmcfg", "version": 1, "name": "sb", "generation": 2,
  "firmware": { "type": "uefi", "secure_boot": true },
  "disks": [ { "path": "disk.raw" } ] }
JSON
expect_refusal secure-boot 'Secure Boot.*SMM.*Q35' verify "$work/sb.json" --expect x --timeout 5
[ ! -e "$work/sb_VARS.fd" ] || fail "secure-boot: an NVRAM file was created for a refused VM"

expect_refusal nvram-gen1 'NVRAM file belongs to generation 2' \
	boot --gen 1 --disk "$work/disk.raw" --nvram "$work/gen1.fd"
[ ! -e "$work/gen1.fd" ] || fail "nvram-gen1: --nvram file created for a generation 1 VM"

printf 'not a variable store, and the VM'"'"'s own\n' >"$work/disk_VARS.fd"
cp "$work/disk_VARS.fd" "$work/before.fd"
expect_refusal bad-memory 'memory of' boot --gen 2 --disk "$work/disk.raw" --memory 1M
cmp -s "$work/disk_VARS.fd" "$work/before.fd" || fail "bad-memory: the existing NVRAM file changed"
grep -q 'created' "$work/bad-memory.err" && fail "bad-memory: genshift says it created a file"
echo "ok vmm-gen2-cli"
