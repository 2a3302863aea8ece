#!/bin/sh
# tests/fuzz/gen-vhd-corpus.sh - regenerates the hand-made seeds in tests/fuzz/corpus/vhd/
# (small VHDs, each under 64 KB). The found-NN.vhd files there are the 20 smallest inputs
# of a libFuzzer -merge of a 20-minute run, kept as they are.
# Usage: tests/fuzz/gen-vhd-corpus.sh BUILD_DIR
set -eu
T=${1:-build}/tests/vhd_tool
out=tests/fuzz/corpus/vhd
W=$(mktemp -d "${TMPDIR:-/tmp}/vhd-corpus.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$out"
"$T" create dynamic "$W/dyn4k.vhd" 65536 4096
qemu-io -f vpc -c "write -q -P 0x5a 0 5000" -c "write -q -P 0xa5 40k 4k" "$W/dyn4k.vhd"
"$T" create dynamic "$W/dyn-empty.vhd" 1048576 4096
"$T" create fixed "$W/fixed.vhd" 16384
qemu-io -f vpc -c "write -q -P 0x33 512 1k" "$W/fixed.vhd"
"$T" create dynamic "$W/parent.vhd" 32768 4096
"$T" create diff "$W/diff.vhd" "$W/parent.vhd"
qemu-img create -q -f vpc "$W/qemu-empty.vhd" 1M
for f in dyn4k dyn-empty fixed diff qemu-empty; do cp "$W/$f.vhd" "$out/$f.vhd"; done
ls -l "$out"
