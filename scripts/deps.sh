#!/bin/sh
# Installs everything genshift builds, tests and demos with, on Debian 12 (bookworm), as root.
# Idempotent: packages already present are not asked for again, and apt is not touched when
# nothing is missing. bookworm-backports is enabled by copying the URIs of the machine's own
# Debian sources file, so no mirror host is named here.
set -eu

PKGS="build-essential pkg-config clang llvm libclang-rt-14-dev
libcmocka-dev libjson-c-dev libxml2-dev libfdisk-dev libblkid-dev
libefivar-dev libefiboot-dev libhivex-dev libguestfs-dev libguestfs-tools acpica-tools
qemu-utils libvhdi-utils gdisk fdisk util-linux
ovmf seabios busybox-static cpio zstd xz-utils
grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools e2fsprogs
syslinux syslinux-common extlinux debootstrap kmod
python3 time openssl file"
# libguestfs (bootfix/guest.c) boots an appliance that supermin assembles from the host's
# own kernel: /boot/vmlinuz-* and /lib/modules/*. Containers and CI images ship neither, so
# a kernel package is installed the way a user's machine has one (it is never booted here;
# ~21 s with its initramfs-tools dependencies). The cloud flavour is the smallest and has
# the virtio, ext4 and vfat drivers the appliance needs.
PKGS="$PKGS linux-image-cloud-amd64"
# The guest tests make a LUKS volume to check that an encrypted root is reported.
PKGS="$PKGS cryptsetup-bin"
# Packages that must come from bookworm-backports (QEMU >= 10 for the nested-KVM harness,
# virt-fw-vars for NVRAM cross-checks).
BPO_PKGS="qemu-system-x86 python3-virt-firmware"

missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

enable_backports() {
	dst=/etc/apt/sources.list.d/genshift-backports.sources
	[ -f "$dst" ] && return 1
	src=/etc/apt/sources.list.d/debian.sources
	if [ -f "$src" ]; then
		uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$src")
	else
		uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
	fi
	[ -n "$uri" ] || { echo "deps: cannot find the Debian mirror URI" >&2; exit 1; }
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" >"$dst"
	return 0
}

qemu_is_backports() {
	v=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
	case "$v" in *bpo*) return 0 ;; esac
	return 1
}

need=$(missing $PKGS)
bneed=$(missing $BPO_PKGS)
qemu_is_backports || bneed="$bneed qemu-system-x86"
updated=0
if enable_backports; then updated=1; fi
if [ -n "$need" ] || [ -n "$(echo $bneed)" ] || [ "$updated" = 1 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	[ -z "$need" ] || apt-get install -y -qq --no-install-recommends $need
	# shellcheck disable=SC2086
	[ -z "$(echo $bneed)" ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports $BPO_PKGS
fi
echo "deps: all build and test dependencies present"
