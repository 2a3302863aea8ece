#!/bin/sh
# tests/boot/vmm-gen1-vhdx.test.sh - gen1-tiny.vhdx boots in genshift's VMM (SeaBIOS, virtio-blk
# backed by the vdisk vhdx backend) to its marker with its root filesystem found and
# mounted. Runs through the nested-KVM harness when /dev/kvm is missing (genshift verify
# does that by itself and says so).
. "$(dirname "$0")/vmm-lib.sh"
img=$(fixture gen1-tiny.vhdx)
boot_fixture "$img" gen1-vhdx
