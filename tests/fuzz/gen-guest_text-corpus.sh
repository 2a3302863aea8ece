#!/bin/sh
# tests/fuzz/gen-guest_text-corpus.sh - writes the seed corpus of fuzz_guest_text: the kinds
# of fstab, grub.cfg and /etc/default/grub text guest_fix_linux rewrites (device names,
# PARTUUIDs, root=/resume=, an ESP line, comments, tabs, CRLF, missing fields).
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/guest_text
mkdir -p "$out"
printf '# /etc/fstab\n/dev/sda1\t/\text4 errors=remount-ro 0 1\n/dev/sda5 none swap sw 0 0\n' >"$out/fstab-sda"
printf 'UUID=0c8e6a52-61e1-4f0a-9d3e-67656e310001 / ext4 defaults 0 1\nPARTUUID=67656e31-01 /srv ext4 noauto 0 0\n/dev/disk/by-partuuid/67656e31-05 none swap sw 0 0\nUUID=1234-5678 /boot/efi/ vfat umask=0077 0 1\n' >"$out/fstab-uuid-esp"
printf '  /dev/hda1 / ext3 defaults\r\n/dev/xvda128\n#\n\t\n/dev/vdb1 /data xfs\nLABEL=x' >"$out/fstab-odd"
printf 'set root='"'"'hd0,msdos1'"'"'\nsearch --set=root x\nmenuentry x {\n\tlinux16 /vmlinuz root=/dev/sda1 ro resume=/dev/sda5\n\tinitrd16 /initrd\n}\ninsmod blscfg\nblscfg\n' >"$out/grub-cfg"
printf 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="root=PARTUUID=67656E31-01 resume=/dev/vda5 quiet"\nGRUB_CMDLINE_LINUX_DEFAULT='"'"'root=/dev/sdb1'"'"'\n' >"$out/default-grub"
