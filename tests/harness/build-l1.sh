#!/bin/sh
# build-l1.sh: builds the harness's L1 kernel + initramfs, cached by recipe hash.
#
# usage: build-l1.sh HARNESS_BUILD_DIR
#   Prints the directory holding vmlinuz and initrd.cpio. The directory is named after a
#   hash of this recipe (this file, l1-init, kmod-order.sh) and the kernel package, so a
#   changed recipe builds a new one and an unchanged one is reused as is.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Modules the L1 needs, in the words of nested-kvm.md: 9p over virtio for the host root,
# kvm-amd for /dev/kvm (TCG's -cpu max is an AMD-style CPU with SVM).
L1_MODULES="virtio_pci 9pnet_virtio 9p kvm-amd"

tree=$("$here/debkernel.sh" linux-image-amd64 "$out/debs")
ver=$(ls "$tree/lib/modules")
key=$( (cat "$here/build-l1.sh" "$here/l1-init" "$here/kmod-order.sh"; echo "$ver $L1_MODULES") |
	sha256sum | cut -c1-16)
dir="$out/l1-$key"

exec 8>"$out/.l1.lock"
flock 8
if [ ! -f "$dir/.done" ]; then
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp/root/bin"
	root="$dir.tmp/root"
	# The initramfs has no libc: busybox must be busybox-static's.
	if readelf -l /bin/busybox | grep -q 'program interpreter'; then
		echo "build-l1: /bin/busybox is dynamically linked; install busybox-static" >&2
		exit 1
	fi
	cp /bin/busybox "$root/bin/busybox"
	cp "$here/l1-init" "$root/init"
	chmod 755 "$root/init"
	moddir="$tree/lib/modules/$ver"
	"$here/kmod-order.sh" "$moddir" $L1_MODULES >"$root/modules.order"
	while read -r ko; do
		mkdir -p "$root/$(dirname "$ko")"
		cp "$moddir/$ko" "$root/$ko"
	done <"$root/modules.order"
	(cd "$root" && find . | sort | cpio -o -H newc --quiet) >"$dir.tmp/initrd.cpio"
	# Boot the uncompressed ELF through its PVH entry: QEMU loads it directly, which
	# saves the ~3.5 s that decompressing the xz bzImage takes under TCG.
	vmlinuz="$tree/boot/vmlinuz-$ver"
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1)
	if [ -n "$off" ] && tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream \
		>"$dir.tmp/kernel" 2>/dev/null && readelf -n "$dir.tmp/kernel" 2>/dev/null |
		grep -q 'Xen.*0x00000012\|Unknown note type: (0x00000012)'; then
		:
	else
		cp "$vmlinuz" "$dir.tmp/kernel"
	fi
	rm -rf "$root"
	: >"$dir.tmp/.done"
	mv "$dir.tmp" "$dir"
	# Older recipes' outputs are dead weight (~70 MB each).
	for old in "$out"/l1-*; do
		[ "$old" = "$dir" ] || rm -rf "$old"
	done
fi
echo "$dir"
