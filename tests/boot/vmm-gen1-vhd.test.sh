#!/bin/sh
# tests/boot/vmm-gen1-vhd.test.sh - gen1-tiny.vhd boots in genshift's VMM (SeaBIOS, virtio-blk
# backed by the vdisk vhd backend) to its marker with its root filesystem found and
# mounted. Runs through the nested-KVM harness when /dev/kvm is missing (genshift verify
# does that by itself and says so).
. "$(dirname "$0")/vmm-lib.sh"
img=$(fixture gen1-tiny.vhd)
boot_fixture "$img" gen1-vhd
