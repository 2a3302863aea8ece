#!/bin/sh
# tests/boot/vmm-gen1-raw.test.sh - gen1-tiny.raw boots in genshift's VMM (SeaBIOS, virtio-blk
# backed by the vdisk raw backend) to its marker with its root filesystem found and
# mounted. Runs through the nested-KVM harness when /dev/kvm is missing (genshift verify
# does that by itself and says so).
. "$(dirname "$0")/vmm-lib.sh"
img=$(fixture gen1-tiny.raw)
boot_fixture "$img" gen1-raw
