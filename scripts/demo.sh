#!/bin/sh
# scripts/demo.sh - `make demo`: genshift's disk library on a built-in example.
# Builds a small VHDX, writes a recognisable pattern into it, converts it to VHD and raw,
# shows that all three hold the same bytes (ours and qemu-img's view), then, if the shared
# samples are present, reads a Hyper-V VHDX whose log must be replayed, without modifying it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
gs=$top/$BUILD/genshift
work=$(mktemp -d "${TMPDIR:-/tmp}/genshift-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cd "$work"
step "$gs" disk create example.vhdx --size 4G
# A guest-like pattern: a boot sector and data scattered across the disk.
printf 'genshift demo boot sector' | dd of=seed.raw bs=1 conv=notrunc status=none
truncate -s 4G seed.raw
for off in 0 100 2000 3500; do
	printf 'data block at %s MiB' "$off" | dd of=seed.raw bs=1M seek="$off" conv=notrunc status=none
done
rm example.vhdx
step "$gs" disk convert seed.raw example.vhdx
step "$gs" disk info example.vhdx
step "$gs" disk convert example.vhdx example.vhd --type dynamic
step "$gs" disk convert example.vhd example.raw
step "$gs" disk compare seed.raw example.vhdx
step "$gs" disk compare example.vhdx example.vhd
step "$gs" disk check example.vhdx
step qemu-img compare -f raw -F vhdx seed.raw example.vhdx
step ls -ls seed.raw example.vhdx example.vhd example.raw

dirty=$top/../shared/samples/iotest-dirtylog-10G-4M.vhdx.bz2
if [ -f "$dirty" ]; then
	bzip2 -dc "$dirty" | dd of=dirty.vhdx conv=sparse status=none
	before=$(sha256sum dirty.vhdx | cut -c1-16)
	step "$gs" disk info dirty.vhdx
	step "$gs" disk check dirty.vhdx
	echo "file hash before and after the read-only open: $before $(sha256sum dirty.vhdx | cut -c1-16)"
fi
printf '\ndemo finished\n'
