#!/bin/sh
# tests/boot/vmm-gen2-vhdx.test.sh - gen2-tiny.vhdx boots in genshift's VMM as generation 2
# (OVMF, virtio-blk over the vdisk VHDX backend) to its marker with root=ok, with an NVRAM
# file named by --nvram (created from OVMF_VARS_4M.fd since it does not exist yet).
. "$(dirname "$0")/vmm-lib.sh"
img=$(fixture gen2-tiny.vhdx)
boot_gen2 "$img" gen2-vhdx --nvram "$work/vm-vars.fd"
[ -s "$work/vm-vars.fd" ] || fail "--nvram $work/vm-vars.fd was not created"
grep -q "created the VM's NVRAM file $work/vm-vars.fd" "$work/gen2-vhdx-stderr.log" ||
	fail "genshift did not say it created the --nvram file"
