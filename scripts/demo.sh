#!/bin/sh
# scripts/demo.sh - `make demo`: genshift's whole job on its smallest real guest.
# gen1-tiny (Debian kernel, GRUB i386-pc, MBR with a logical swap up to the last sector;
# built from Debian packages by `make fixtures`) as a VHDX:
#   1. analyze  - can it become generation 2, and what would change;
#   2. convert  - into a new directory (the source is only read): GPT + ESP, GRUB EFI loader,
#                 NVRAM with a Boot0001 entry, generation 2 configuration;
#   3. verify --both - boots the source as generation 1 (SeaBIOS) and the result as
#                 generation 2 (OVMF) in genshift's own VMM, through the nested-KVM harness
#                 when this machine has no hardware KVM;
#   4. a short report: what changed, how long each part took, where the files are.
# DEMO_CONVERT_OPTS adds convert options (default none: the whole pipeline, libguestfs
# inspection and guest edits included, which costs two appliance starts, ~15 s each on an
# idle host; `DEMO_CONVERT_OPTS=--no-guest make demo` leaves the guest's files alone).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) bdir=$BUILD ;; *) bdir=$top/$BUILD ;; esac
gs=$bdir/genshift
work=$(mktemp -d "${TMPDIR:-/tmp}/genshift-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
opts=${DEMO_CONVERT_OPTS-}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }

[ -f "$bdir/fixtures/gen1-tiny.vhdx" ] || BUILD=$BUILD "$top/tests/fixtures/build.sh"
cp --sparse=always "$bdir/fixtures/gen1-tiny.vhdx" "$work/gen1-tiny.vhdx"
src=$work/gen1-tiny.vhdx
hash_before=$(sha256sum <"$src" | cut -c1-16)

t=$(now)
step "$gs" analyze "$src"
t_analyze=$(since "$t")

t=$(now)
# shellcheck disable=SC2086 # opts is a list of options
step "$gs" convert "$src" --out "$work/gen2" $opts
t_convert=$(since "$t")
step ls -ls "$work/gen2"
step "$gs" partition show "$work/gen2/gen1-tiny.vhdx"
step "$gs" nvram show "$work/gen2/gen1-tiny_VARS.fd"

t=$(now)
rc=0
step "$gs" verify --both "$src" "$work/gen2/gen1-tiny.json" --timeout 600 || rc=$?
t_verify=$(since "$t")
hash_after=$(sha256sum <"$src" | cut -c1-16)

cat <<EOF

==== genshift demo report ====
source      $src (VHDX, MBR, GRUB i386-pc; sha256 $hash_before.. before, $hash_after.. after)
converted   $work/gen2/ (removed when the demo ends):
            gen1-tiny.vhdx      GPT with the same partition numbers and LBAs, new FAT32 ESP
                                (partition 2) holding GRUB for UEFI; the disk grew to make room
            gen1-tiny_VARS.fd   OVMF variables: Boot0001 -> \\EFI\\debian\\grubx64.efi first
            gen1-tiny.json      generation 2, UEFI firmware, that NVRAM, that disk
            gen1-tiny.log       every step with its time
times       analyze ${t_analyze} s, convert ${t_convert} s, verify both generations ${t_verify} s
EOF
grep -v ' \.\.\.$' "$work/gen2/gen1-tiny.log" | sed 's/^/            /'
[ "$hash_before" = "$hash_after" ] || { echo "the source changed!"; exit 1; }
if [ "$rc" = 0 ]; then
	echo "result      generation 1 and generation 2 both boot to the guest's marker"
else
	echo "result      verify --both exit $rc: see above which generation did not boot"
fi
exit "$rc"
