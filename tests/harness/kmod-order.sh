#!/bin/sh
# kmod-order.sh: prints the kernel modules needed to load the named modules, in load order.
#
# usage: kmod-order.sh MODDIR NAME...
#   MODDIR is a lib/modules/<version> directory with a modules.dep (depmod -b writes it).
#   Each line of output is a path relative to MODDIR, dependencies before their users, each
#   module once. Built-in modules (modules.builtin) print nothing. An unknown name is an
#   error. This is what modprobe would insmod, computed at build time so that an initramfs
#   needs only busybox insmod.
set -eu
[ $# -ge 2 ] || { echo "usage: kmod-order.sh MODDIR NAME..." >&2; exit 2; }
moddir=$1
shift
[ -f "$moddir/modules.dep" ] || { echo "kmod-order: no $moddir/modules.dep" >&2; exit 1; }
awk -v want="$*" '
function base(p,  b) { b = p; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); gsub(/-/, "_", b); return b }
function visit(p,   n, i, d) {
	if (p in done) return
	done[p] = 1
	n = split(deps[p], d, " ")
	for (i = n; i >= 1; i--) visit(d[i])
	print p
}
FNR == NR { bi[base($0)] = 1; next }
{
	p = $1; sub(/:$/, "", p)
	deps[p] = ""
	for (i = 2; i <= NF; i++) deps[p] = deps[p] " " $i
	path[base(p)] = p
}
END {
	n = split(want, w, " ")
	for (i = 1; i <= n; i++) {
		m = w[i]; gsub(/-/, "_", m)
		if (m in path) visit(path[m])
		else if (!(m in bi)) { print "kmod-order: no module " w[i] > "/dev/stderr"; bad = 1 }
	}
	exit bad
}' "$moddir/modules.builtin" "$moddir/modules.dep"
