#!/bin/sh
# scripts/demo.sh - `make demo`: what genshift does today, on built-in examples.
# 1. Disks: builds a 4 GiB image with scattered data, converts it raw -> VHDX -> VHD -> raw,
#    shows every copy holds the same bytes (ours and qemu-img's view); if the shared samples
#    are present, reads a VHDX whose log must be replayed, without modifying it.
# 2. Partitions: takes the gen1-tiny guest (MBR, GRUB, logical swap to the last sector; built
#    from Debian packages by `make fixtures`), plans and applies MBR -> GPT + ESP on a copy of
#    its VHDX, judges the result with sgdisk, and undoes it byte for byte.
# 3. Boot: boots the restored gen1-tiny VHDX in genshift's own VMM (SeaBIOS), through the
#    nested-KVM harness when this machine has no hardware KVM, and waits for its marker.
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

fix=$top/$BUILD/fixtures
cp --sparse=always "$fix/gen1-tiny.vhdx" guest.vhdx
step "$gs" partition show guest.vhdx
step "$gs" partition convert --dry-run guest.vhdx
before=$("$gs" disk convert guest.vhdx before.raw >/dev/null && sha256sum before.raw | cut -c1-16)
step "$gs" partition convert guest.vhdx --undo-file guest.undo
step "$gs" partition show guest.vhdx
"$gs" disk convert guest.vhdx after.raw >/dev/null
step sgdisk -v after.raw
step "$gs" partition undo guest.vhdx guest.undo
rm -f before.raw
"$gs" disk convert guest.vhdx before.raw >/dev/null
echo "virtual disk hash before conversion and after undo: $before $(sha256sum before.raw | cut -c1-16)"

step "$gs" verify --disk guest.vhdx --expect 'GENSHIFT-BOOT-OK firmware=bios' \
	--timeout 600
printf '\ndemo finished\n'
