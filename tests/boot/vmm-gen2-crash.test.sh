#!/bin/sh
# tests/boot/vmm-gen2-crash.test.sh - a VMM killed with SIGKILL in the middle of boots that
# write UEFI variables leaves an NVRAM file the firmware can still use. Inside one harness
# run (so that kill -9 reaches the VMM process itself), KILLS boots (default 3) start on
# the same NVRAM file, the first from a fresh copy of OVMF_VARS_4M.fd (OVMF writes many
# variables on a first boot), and each is killed a random 0-8 s after the firmware's first
# write to the file in that boot (seed printed; CRASH_SEED reproduces the delays).
# The store as each kill left it must be readable by
# virt-fw-vars (an independent parser; snapshots are parsed on the host, where Python is
# fast), and at the end the same file must boot gen2-tiny to its marker, with variables
# changed from the template (the kills did land among writes).
. "$(dirname "$0")/vmm-lib.sh"
need virt-fw-vars
export BUILD
img=$(fixture gen2-tiny.raw)
vars=$work/vars.fd
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$vars"
seed=${CRASH_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
kills=${KILLS:-3}
echo "seed $seed, $kills kills"

cat >"$work/inner.sh" <<'INNER'
set -u
gs=$1 img=$2 vars=$3 work=$4 seed=$5 kills=$6 timeout=$7
# Each kill comes a random 0-8 s after the firmware's first write to the store in that
# boot (every OVMF boot writes at least its monotonic counter, MTC), so it lands among the
# writes of DXE and BDS however fast or slow the host is. (Fixed delays from the start did
# not: a quiet host finishes the whole boot in 23 s, a loaded one starts writing after 20.)
delays=$(awk -v s="$seed" -v n="$kills" 'BEGIN { srand(s); for (i = 0; i < n; i++)
	printf "%.2f ", rand() * 8 }')
i=0
for d in $delays; do
	i=$((i + 1))
	cp "$vars" "$work/before$i.fd"
	"$gs" boot --gen 2 --disk "$img" --nvram "$vars" --accel kvm --timeout "$timeout" \
		--serial-log "$work/kill$i-serial.log" >"$work/kill$i.out" 2>&1 </dev/null &
	pid=$!
	n=0
	while cmp -s "$vars" "$work/before$i.fd" && [ "$n" -lt 3000 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		n=$((n + 1))
	done
	echo "kill $i: first write seen after about $((n / 10)) s, killing $d s later"
	sleep "$d"
	kill -9 "$pid" 2>/dev/null || { echo "kill $i: the VMM had already ended"; exit 1; }
	wait "$pid" 2>/dev/null
	cp "$vars" "$work/kill$i.fd"
	echo "$d" >"$work/kill$i.delay"
done
"$gs" verify --gen 2 --disk "$img" --nvram "$vars" --accel kvm --timeout "$timeout" \
	--expect 'GENSHIFT-BOOT-OK firmware=uefi fixture=gen2-tiny root=ok' --json \
	--serial-log "$work/final-serial.log" >"$work/final.json" 2>"$work/final-stderr.log"
INNER

rc=0
WITH_KVM_TIMEOUT=${WITH_KVM_TIMEOUT:-900} tests/harness/with-kvm --rw "$work" sh "$work/inner.sh" \
	"$GENSHIFT" "$img" "$vars" "$work" "$seed" "$kills" "$BOOT_TIMEOUT" || rc=$?
i=1
written=0
while [ "$i" -le "$kills" ]; do
	[ -f "$work/kill$i.fd" ] || fail "seed $seed: kill $i did not happen ($(tail -n 2 "$work/kill$i.out"))"
	virt-fw-vars -i "$work/kill$i.fd" -p >"$work/kill$i-vars.txt" 2>&1 ||
		fail "seed $seed: after kill $i ($(cat "$work/kill$i.delay") s after a write) virt-fw-vars cannot parse the store: $(tail -n 1 "$work/kill$i-vars.txt")"
	echo "kill $i $(cat "$work/kill$i.delay") s after a write: the store parses, $(grep -c '^Boot0' "$work/kill$i-vars.txt") Boot#### entries"
	cmp -s "$work/kill$i.fd" /usr/share/OVMF/OVMF_VARS_4M.fd || written=$((written + 1))
	i=$((i + 1))
done
# A VMM that saved the store only at a clean exit would leave the template after every
# kill: the file must show the firmware's writes before any clean exit.
[ "$written" -gt 0 ] || fail "seed $seed: no killed run left a variable in the file (not written through?)"
[ "$rc" -eq 0 ] || fail "seed $seed: exit $rc ($(cat "$work/final.json" 2>/dev/null | tail -n 3))"
[ "$(json_field "$work/final.json" matched)" = true ] || fail "seed $seed: final boot not matched"
virt-fw-vars -i "$vars" -p >"$work/final-vars.txt" 2>/dev/null ||
	fail "seed $seed: virt-fw-vars cannot parse the store after the final boot"
cmp -s "$vars" /usr/share/OVMF/OVMF_VARS_4M.fd && fail "seed $seed: the store never changed"
grep -q '^Boot0' "$work/final-vars.txt" || fail "seed $seed: no Boot#### after the final boot"
echo "final boot on the same store: matched after $(json_field "$work/final.json" time_to_match_s) s"
