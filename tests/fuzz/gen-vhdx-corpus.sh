#!/bin/sh
# tests/fuzz/gen-vhdx-corpus.sh - regenerates tests/fuzz/corpus/vhdx/: seed inputs for
# fuzz_vhdx (flags byte, then u32 offset / u8 length / bytes patches over the template;
# see the comment at the top of tests/fuzz/fuzz_vhdx.c). The fuzz-* files next to them are
# not generated: they are the coverage-minimized corpus (libFuzzer -merge=1) of about 440k
# executions, kept so that `make check` replays what the fuzzer reached.
set -eu
out=$(dirname "$0")/corpus/vhdx
mkdir -p "$out"
python3 - "$out" <<'PY'
import struct, sys, os
out = sys.argv[1]
def patch(off, data):
    return struct.pack('<IB', off, len(data)) + data
MIB = 1 << 20
seeds = {
    'clean': b'\x00',
    'log-pending': b'\x01',
    'header1-bad-crc': b'\x00' + patch(65536 + 100, b'\xff'),
    'header-seq-refixed': b'\x02' + patch(65536 + 8, struct.pack('<Q', 1 << 40)),
    'both-headers-equal-seq': b'\x02' + patch(65536 + 8, struct.pack('<Q', 9)) + patch(131072 + 8, struct.pack('<Q', 9)),
    'region1-bad-crc': b'\x00' + patch(196608 + 1000, b'\x01'),
    'region-count': b'\x04' + patch(196608 + 8, struct.pack('<I', 5000)),
    'region-bat-moved': b'\x04' + patch(196608 + 16 + 16, struct.pack('<Q', 5 * MIB)),
    'bat-past-eof': b'\x00' + patch(3 * MIB + 16, struct.pack('<Q', (1024 << 20) | 6)),
    'bat-partial': b'\x00' + patch(3 * MIB, b'\x07'),
    'bat-sb-present': b'\x00' + patch(3 * MIB + 8 * 4096, struct.pack('<Q', (6 << 20) | 6)),
    'block-size-3m': b'\x00' + patch(2 * MIB + 0x10000, struct.pack('<I', 3 * MIB)),
    'virtual-size-huge': b'\x00' + patch(2 * MIB + 0x10008, struct.pack('<Q', 65 << 40)),
    'has-parent-flag': b'\x00' + patch(2 * MIB + 0x10004, struct.pack('<I', 2)),
    'lss-4096': b'\x00' + patch(2 * MIB + 0x10010, struct.pack('<I', 4096)),
    'meta-count': b'\x00' + patch(2 * MIB + 10, struct.pack('<H', 2047)),
    'log-desc-zero': b'\x09' + patch(MIB + 64, b'zero') + patch(MIB + 72, struct.pack('<QQ', 8192, 5 * MIB)),
    'log-tail-elsewhere': b'\x09' + patch(MIB + 12, struct.pack('<I', 0x3000)),
    'log-bad-length': b'\x09' + patch(MIB + 8, struct.pack('<I', 4096 * 300)),
    'diff-child': b'\x20',
    'diff-child-bitmap': b'\x20' + patch(6 * MIB + 256, b'\xff\x00\x55'),
    'diff-child-no-locator-key': b'\x20' + patch(2 * MIB + 0x10028 + 18, struct.pack('<H', 0)),
    'diff-child-sb-not-present': b'\x20' + patch(3 * MIB + 8 * 4096, struct.pack('<Q', 0)),
    'truncated-3m': b'\x10' + struct.pack('<I', 3 * MIB),
    'truncated-log': b'\x11' + struct.pack('<I', MIB + 6000),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
PY
