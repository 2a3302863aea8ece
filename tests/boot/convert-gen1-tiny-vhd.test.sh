#!/bin/sh
# convert-gen1-tiny-vhd: the gen1-tiny VHD converts (into a VHDX: generation 2 needs one;
# the source VHD keeps its bytes) and `genshift verify --both` boots the source as
# generation 1 (SeaBIOS, disks read-only) and the result as generation 2 (OVMF with our
# NVRAM) in genshift's own VMM, through the nested-KVM harness when there is no usable
# /dev/kvm; both must reach their marker. QEMU + OVMF boots the result too.
. "$(dirname "$0")/../diff/convert-lib.sh"

src=$(fixture gen1-tiny.vhd)
before=$(sha256sum <"$src")
"$GENSHIFT" convert "$src" --out "$work/out" --no-guest >"$work/convert.log" 2>&1 ||
	fail "convert: $(tail -n 3 "$work/convert.log")"
[ "$(sha256sum <"$src")" = "$before" ] || fail "the source changed"
check_output "$work/out" gen1-tiny quick

rc=0
"$GENSHIFT" verify --both "$src" "$work/out/gen1-tiny.json" --json --timeout "${BOOT_TIMEOUT:-300}" \
	--accel "${VMM_ACCEL:-auto}" >"$work/both.json" 2>"$work/both.err" || rc=$?
cat "$work/both.json"
[ "$(sha256sum <"$src")" = "$before" ] || fail "booting the source changed it"
python3 - "$work/both.json" <<'PY' || fail "verify --both (exit $rc): $(tail -n 3 "$work/both.err")"
import json, sys
r = json.load(open(sys.argv[1]))
for g, fw in (("gen1", "bios"), ("gen2", "uefi")):
    v = r[g].get("verify") or {}
    print(f"{g}: matched={r[g]['matched']} after {v.get('time_to_match_s')} s, "
          f"reason {v.get('exit_reason')}, error {v.get('error') or r[g].get('error')}")
    assert r[g]["matched"], g
    assert v["generation"] == int(g[-1]), v
assert r["both_matched"] is True
PY
[ "$rc" = 0 ] || fail "verify --both exit $rc"
# The peer: the same output in QEMU + OVMF, on the NVRAM file the conversion wrote.
qemu_uefi_boot "$work/out/gen1-tiny.vhdx" vhdx "$work/out/gen1-tiny_VARS.fd" "vhd -> vhdx"
echo "convert-gen1-tiny-vhd: gen 1 and gen 2 boot in genshift's VMM, gen 2 in QEMU + OVMF"
