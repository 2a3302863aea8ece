#!/bin/sh
# tests/fuzz/gen-cvundo-corpus.sh - writes the seed corpus of fuzz_cvundo into
# tests/fuzz/corpus/cvundo/: small regions files (convert/undo-regions-format.h), valid ones
# and one corruption each (CRC, record past the disk, record past the file, count over the
# cap, unknown flag). Deterministic; run it again after a format change.
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/cvundo
mkdir -p "$out"
python3 - "$out" <<'PY'
import struct, sys, zlib
out = sys.argv[1]

def regions(records, disk=4 << 20, count=None, crc_fix=0):
    body = b""
    for off, data, flags in records:
        n = len(data) if isinstance(data, bytes) else data
        body += struct.pack("<QII", off, n, flags)
        if isinstance(data, bytes) and not flags & 1:
            body += data
    hdr_len = 32
    total = hdr_len + len(body) + 4
    hdr = b"GSCVREGN" + struct.pack("<IIQQ", 1, len(records) if count is None else count,
                                    disk, total)
    blob = hdr + body
    return blob + struct.pack("<I", (zlib.crc32(blob) + crc_fix) & 0xFFFFFFFF)

cases = {
    "empty.bin": regions([]),
    "data.bin": regions([(4096, b"genshift" * 64, 0)]),
    "zeros.bin": regions([(1 << 20, 65536, 1)]),
    "mixed.bin": regions([(0, b"\x55\xaa" * 256, 0), (8192, 4096, 1), (12288, b"x" * 100, 0)]),
    "bad-crc.bin": regions([(4096, b"abc", 0)], crc_fix=1),
    "past-disk.bin": regions([((4 << 20) - 10, b"0123456789ab", 0)]),
    "past-file.bin": regions([(0, b"short", 0)])[:-10] + b"\0" * 6,
    "count-cap.bin": regions([], count=1 << 20),
    "bad-flags.bin": regions([(0, 512, 3)]),
}
for name, blob in cases.items():
    with open(f"{out}/{name}", "wb") as f:
        f.write(blob)
PY
echo "wrote $(ls "$out" | wc -l) files to $out"
