#!/bin/sh
# tests/fuzz/gen-partition-corpus.sh - regenerates the seed corpus in
# tests/fuzz/corpus/partition/: tiny raw disks (32-48 KiB) with tables written by sfdisk and
# sgdisk (MBR, EBR chain, GPT, hybrid, damaged primary GPT) and one genshift undo file.
# Files named fuzz-* are small inputs a libFuzzer run found to widen coverage; this script
# leaves them alone.
# Usage: tests/fuzz/gen-partition-corpus.sh GENSHIFT_BINARY
set -eu
G=${1:-build/genshift}
out=tests/fuzz/corpus/partition
W=$(mktemp -d "${TMPDIR:-/tmp}/part-corpus.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$out"
mk() { rm -f "$W/$1"; truncate -s "$2" "$W/$1"; }

mk mbr.img 32K
printf 'label: dos\nstart=1,size=20,type=83,bootable\nstart=21,size=30,type=7\n' |
	sfdisk -q "$W/mbr.img"
mk ebr.img 32K
printf 'label: dos\nstart=2,size=8,type=83\nstart=10,size=54,type=5\nstart=12,size=10,type=82\nstart=24,size=10,type=83\nstart=36,size=28,type=c\n' |
	sfdisk -q "$W/ebr.img"
mk gpt.img 48K
sgdisk -n 1:34:40 -t 1:8300 -n 2:41:60 -t 2:ef00 "$W/gpt.img" >/dev/null
cp "$W/gpt.img" "$W/gpt-bad-primary.img"
printf '\377' | dd of="$W/gpt-bad-primary.img" bs=1 seek=600 conv=notrunc status=none
cp "$W/gpt.img" "$W/hybrid.img"
sgdisk -h 1 "$W/hybrid.img" >/dev/null
# An MBR disk the converter will grow: its ESP and backup GPT go past the end.
mk conv.img 32K
printf 'label: dos\nstart=40,size=24,type=83\n' | sfdisk -q "$W/conv.img"
cp "$W/conv.img" "$W/conv2.img"
"$G" partition convert "$W/conv2.img" --seed 1 --esp-size 100M --undo-file "$W/conv.undo" \
	>/dev/null
for f in mbr ebr gpt gpt-bad-primary hybrid conv; do cp "$W/$f.img" "$out/$f.img"; done
cp "$W/conv.undo" "$out/conv.undo"
ls -l "$out"
