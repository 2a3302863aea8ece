#!/bin/sh
# debkernel.sh: fetches a Debian kernel package into a cache and unpacks it, once.
#
# usage: debkernel.sh METAPACKAGE CACHEDIR
#   METAPACKAGE is e.g. linux-image-amd64 or linux-image-cloud-amd64. The concrete package
#   it depends on (linux-image-6.1.0-N-amd64) is fetched with `apt-get download` into
#   CACHEDIR (nothing is installed on the host), unpacked with `dpkg-deb -x` and given a
#   modules.dep by `depmod -b`. Prints the unpacked tree: it holds boot/vmlinuz-VERSION
#   and lib/modules/VERSION. A .deb already in CACHEDIR is reused without asking apt,
#   so a warm cache builds offline. Concurrent callers serialise on CACHEDIR/.lock.
set -eu
[ $# -eq 2 ] || { echo "usage: debkernel.sh METAPACKAGE CACHEDIR" >&2; exit 2; }
meta=$1
cache=$2
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
flavour=${meta#linux-image-}

exec 9>"$cache/.lock"
flock 9

# Reuse a cached .deb of this flavour (e.g. linux-image-6.1.0-56-cloud-amd64_*.deb).
deb=$(ls "$cache"/linux-image-[0-9]*-"$flavour"_*.deb 2>/dev/null |
	grep -E "/linux-image-[0-9][0-9.]*-[0-9]+-$flavour"'_' | sort -V | tail -n 1 || true)
if [ -z "$deb" ]; then
	pkg=$(apt-cache depends "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
	[ -n "$pkg" ] || { echo "debkernel: cannot resolve $meta (apt-get update?)" >&2; exit 1; }
	echo "debkernel: downloading $pkg" >&2
	(cd "$cache" && apt-get download -q=2 "$pkg" >&2 2>/dev/null) ||
		(cd "$cache" && apt-get download "$pkg" >&2)
	deb=$(ls "$cache/$pkg"_*.deb | tail -n 1)
fi

tree=${deb%.deb}
if [ ! -f "$tree/.done" ]; then
	rm -rf "$tree"
	dpkg-deb -x "$deb" "$tree"
	ver=$(ls "$tree/lib/modules")
	depmod -b "$tree" "$ver"
	: >"$tree/.done"
fi
echo "$tree"
