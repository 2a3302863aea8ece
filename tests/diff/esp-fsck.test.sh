#!/bin/sh
# tests/diff/esp-fsck.test.sh - FAT32 ESPs written by esp_format() (through tests/tools/esp_tool),
# judged by independent implementations: fsck.fat -n -v finds nothing to fix and reports the
# cluster size mkfs.fat picks for the same size; mtools (mdir, mcopy, mtype) read every file
# back byte-identical under its long name; blkid -p sees TYPE=vfat with our serial and label;
# file -s sees a FAT32 boot sector with our serial. Cases: 100 MiB, 2 GiB (raw, 512-byte
# sectors), 260 MiB on a VHDX with 4096-byte logical sectors, 60 long names colliding in
# 8.3, names of exactly 13 and 26 characters (no terminator in the last LFN entry), dots
# and characters only long names may hold; the bytes around the partition are unchanged.
set -eu
: "${BUILD:=build}" "${TMPDIR:=/tmp}"
TOOL=$BUILD/tests/esp_tool
VHDX=$BUILD/tests/vhdx_tool
case=setup
fail() { echo "FAIL ($case): $*"; exit 1; }
for tool in fsck.fat mkfs.fat mdir mcopy mtype blkid file cmp od "$TOOL" "$VHDX"; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (make deps; make BUILD=$BUILD $BUILD/tests/esp_tool $BUILD/tests/vhdx_tool)"
done
work=$(mktemp -d "$TMPDIR/esp-fsck.XXXXXX")
trap 'rm -rf "$work"' EXIT
MIB=1048576

# ---- host files and the ESP paths they go to ----
head -c 1048577 /dev/urandom >"$work/bin"
head -c 4096 /dev/urandom >"$work/4k"
printf 'search --no-floppy --fs-uuid --set=root X\nsource $prefix/grub.cfg\n' >"$work/cfg"
: >"$work/empty"
specs="$work/specs"
cat >"$specs" <<EOF
EFI/BOOT/BOOTX64.EFI=$work/bin
EFI/BOOT/grub.cfg=$work/cfg
EFI/debian/grubx64.efi=$work/bin
EFI/debian/grub.cfg=$work/cfg
EFI/Microsoft/Boot/en-US/bootmgr.efi.mui=$work/4k
Long Name With Spaces.txt=$work/cfg
empty=$work/empty
x/exact4k.bin=$work/4k
x/abcdefghijklm=$work/cfg
x/abcdefghijklmnopqrstuvwxyz=$work/cfg
x/.hidden=$work/cfg
x/a.b.c.d=$work/cfg
x/plus+comma,semi;[br]=$work/cfg
x/readme.txt=$work/cfg
y/ReadMe.TXT=$work/cfg
y/README.txt2=$work/cfg
EOF
i=0
while [ $i -lt 60 ]; do
	echo "EFI/many/longfilename-$i.txt=$work/cfg" >>"$specs"
	i=$((i + 1))
done

# format IMAGE FIRST_LBA SECTORS ID: esp_tool with every spec as one argument each.
format() {
	img=$1 first=$2 sectors=$3 id=$4
	set --
	while IFS= read -r line; do set -- "$@" "$line"; done <"$specs"
	"$TOOL" format --id "$id" --label esp "$img" "$first" "$sectors" "$@" >"$work/tool.out" 2>&1 ||
		fail "esp_tool: $(cat "$work/tool.out")"
}

# BPB sectors-per-cluster x bytes-per-sector of a FAT image.
cluster_bytes() {
	ss=$(od -An -tu2 -j11 -N2 "$1" | tr -d ' ')
	spc=$(od -An -tu1 -j13 -N1 "$1" | tr -d ' ')
	echo $((ss * spc))
}

# What mkfs.fat -F 32 picks for a volume of MIB_SIZE MiB with SS-byte sectors.
mkfs_cluster_bytes() {
	rm -f "$work/mkfs.img"
	mkfs.fat -F 32 -S "$2" -C "$work/mkfs.img" $(($1 * 1024)) >/dev/null 2>&1 ||
		fail "mkfs.fat -F 32 -S $2 of $1 MiB failed"
	cluster_bytes "$work/mkfs.img"
	rm -f "$work/mkfs.img"
}

# judge FAT_IMAGE SS ID: every independent reader agrees with what we wrote.
judge() {
	fat=$1 ss=$2 id=$3
	fsck.fat -n -v "$fat" >"$work/fsck.txt" 2>&1 || fail "fsck.fat found problems: $(grep -v '^ ' "$work/fsck.txt" | tail -n 8)"
	grep -q "^ *$ss bytes per logical sector" "$work/fsck.txt" || fail "fsck.fat: sector size is not $ss"
	cb=$(cluster_bytes "$fat")
	grep -q "^ *$cb bytes per cluster" "$work/fsck.txt" || fail "fsck.fat disagrees about the cluster size $cb"
	while IFS= read -r line; do
		path=${line%%=*} host=${line#*=}
		rm -f "$work/out"
		# mtools reads [ ] as a wildcard class: escape them.
		mpath=$(printf '%s' "$path" | sed 's/[][]/\\&/g')
		mcopy -n -i "$fat" "::/$mpath" "$work/out" 2>"$work/mtools.err" ||
			fail "mcopy ::/$path: $(cat "$work/mtools.err")"
		cmp -s "$work/out" "$host" || fail "mcopy ::/$path differs from $host"
	done <"$specs"
	if grep -q '^EFI/debian/grub.cfg=' "$specs"; then
		mtype -i "$fat" "::/EFI/debian/grub.cfg" | cmp -s - "$work/cfg" || fail "mtype of grub.cfg differs"
	fi
	mdir -/ -b -i "$fat" :: >"$work/mdir.txt" 2>&1 || fail "mdir: $(cat "$work/mdir.txt")"
	files=$(grep -c -v '/$' "$work/mdir.txt" || true)
	[ "$files" = "$(wc -l <"$specs" | tr -d ' ')" ] || fail "mdir lists $files files, expected $(wc -l <"$specs")"
	uuid=$(echo "$id" | tr a-f A-F | sed 's/^\(....\)/\1-/')
	blkid -p -o export "$fat" >"$work/blkid.txt" 2>&1 || fail "blkid -p found nothing"
	for kv in TYPE=vfat VERSION=FAT32 UUID="$uuid" LABEL=ESP; do
		grep -qx "$kv" "$work/blkid.txt" || fail "blkid -p: no $kv in $(tr '\n' ' ' <"$work/blkid.txt")"
	done
	desc=$(file -s "$fat")
	case "$desc" in
	*"FAT (32 bit)"*"serial number 0x$(echo "$id" | tr A-F a-f | sed 's/^0*//')"*) ;;
	*) fail "file -s: $desc" ;;
	esac
}

# guards IMAGE FIRST_LBA SECTORS SS: write 1 MiB of 0x5A before and after the partition.
put_guards() {
	head -c $MIB /dev/zero | tr '\0' 'Z' >"$work/guard"
	dd if="$work/guard" of="$1" bs=$MIB conv=notrunc status=none
	dd if="$work/guard" of="$1" bs=$MIB seek=$(( ($2 + $3) * $4 / MIB )) conv=notrunc status=none
}
check_guards() { # RAW FIRST_LBA SECTORS SS
	dd if="$1" bs=$MIB count=1 status=none | cmp -s - "$work/guard" || fail "bytes before the partition changed"
	dd if="$1" bs=$MIB skip=$(( ($2 + $3) * $4 / MIB )) count=1 status=none | cmp -s - "$work/guard" ||
		fail "bytes after the partition changed"
}

# raw_case MIB_SIZE ID: a raw disk of 1 MiB + partition + 1 MiB, 512-byte sectors.
raw_case() {
	case="raw $1 MiB"
	img=$work/d.raw
	sectors=$(($1 * 2048))
	rm -f "$img"
	truncate -s $(( ($1 + 2) * MIB )) "$img"
	put_guards "$img" 2048 "$sectors" 512
	format "$img" 2048 "$sectors" "$2"
	check_guards "$img" 2048 "$sectors" 512
	dd if="$img" of="$work/p.fat" bs=$MIB skip=1 count="$1" conv=sparse status=none
	judge_raw "$work/p.fat" "$1" "$2"
	rm -f "$img" "$work/p.fat"
}

judge_raw() { # FAT_IMAGE MIB_SIZE ID
	judge "$1" 512 "$3"
	[ "$(cluster_bytes "$1")" = "$(mkfs_cluster_bytes "$2" 512)" ] ||
		fail "cluster size $(cluster_bytes "$1"), mkfs.fat picks $(mkfs_cluster_bytes "$2" 512)"
	echo "ok $case: $(tail -n 1 "$work/fsck.txt")"
}

raw_case 100 4745E5B1
# 2 GiB (4 KiB clusters): the partition is the whole image, since copying 2 GiB out of a
# disk image costs more than the rest of this test; the guards are checked above.
case="raw 2048 MiB"
truncate -s $((2048 * MIB)) "$work/p.fat"
format "$work/p.fat" 0 $((2048 * 2048)) 0000ABCD
judge_raw "$work/p.fat" 2048 0000ABCD
rm -f "$work/p.fat"

# ---- 4Kn: 260 MiB partition at LBA 256 of a VHDX with 4096-byte logical sectors ----
case="vhdx 4Kn 260 MiB"
sectors=$((260 * 256))
"$VHDX" create dynamic "$work/d.vhdx" $((262 * MIB)) $((32 * MIB)) 4096 >/dev/null ||
	fail "vhdx_tool create"
"$VHDX" pattern "$work/d.vhdx" "$work/mirror" 0 $MIB 0x5A >/dev/null || fail "vhdx_tool pattern"
"$VHDX" pattern "$work/d.vhdx" "$work/mirror" $((261 * MIB)) $MIB 0x5A >/dev/null ||
	fail "vhdx_tool pattern"
rm -f "$work/mirror"
format "$work/d.vhdx" 256 "$sectors" 0BADF00D
"$VHDX" cat "$work/d.vhdx" >"$work/d.raw" || fail "vhdx_tool cat"
check_guards "$work/d.raw" 256 "$sectors" 4096
dd if="$work/d.raw" of="$work/p.fat" bs=$MIB skip=1 count=260 conv=sparse status=none
judge "$work/p.fat" 4096 0BADF00D
[ "$(cluster_bytes "$work/p.fat")" = "$(mkfs_cluster_bytes 260 4096)" ] || fail "cluster size differs from mkfs.fat -S 4096"
echo "ok $case: $(tail -n 1 "$work/fsck.txt")"
rm -f "$work/d.raw" "$work/d.vhdx" "$work/p.fat"

# ---- seeded random trees: names from every character a long name may hold ----
command -v python3 >/dev/null 2>&1 || fail "python3 not found"
for seed in 1 2 3; do
	case="random tree, seed $seed"
	python3 - "$seed" "$work" >"$specs" <<'PY' || fail "generator failed"
import random, sys
rnd, work = random.Random(int(sys.argv[1])), sys.argv[2]
# '=' separates spec fields here; "*/:<>?\| and controls are refused by esp_format
alphabet = "abcXYZ019 .+,;[]_-~!'(){}^#&$%@`"
taken, dirs, n = set(), [""], 0  # taken: lower-case paths of files and directories
while n < 40:
    name = "".join(rnd.choice(alphabet) for _ in range(rnd.choice([1, 3, 8, 12, 13, 14, 26, 40])))
    if name[0] == " " or name[-1] in ". ":
        continue
    parent = rnd.choice(dirs)
    path = parent + name
    if path.lower() in taken:
        continue
    taken.add(path.lower())
    if rnd.random() < 0.25 and parent.count("/") < 3:
        dirs.append(path + "/")
        continue
    host = "%s/r%d" % (work, n)
    with open(host, "wb") as f:
        f.write(bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 511, 512, 513, 4096, 20000]))))
    print("%s=%s" % (path, host))
    n += 1
PY
	rm -f "$work/p.fat"
	truncate -s $((40 * MIB)) "$work/p.fat"
	format "$work/p.fat" 0 $((40 * 2048)) "0000000$seed"
	judge "$work/p.fat" 512 "0000000$seed"
	echo "ok $case: $(tail -n 1 "$work/fsck.txt")"
done
rm -f "$work/p.fat" "$work"/r*

# ---- cluster sizes against mkfs.fat at the thresholds (empty volumes) ----
for c in 260:512 261:512 600:512 8192:512 8193:512 1024:4096; do
	size=${c%%:*} ss=${c#*:}
	case="cluster size at $size MiB, $ss-byte sectors"
	rm -f "$work/e.raw"
	truncate -s $((size * MIB)) "$work/e.raw"
	"$TOOL" format "$work/e.raw" 0 $((size * MIB / 512)) >"$work/tool.out" 2>&1 ||
		fail "esp_tool: $(cat "$work/tool.out")"
	if [ "$ss" = 512 ]; then
		ours=$(cluster_bytes "$work/e.raw")
		fsck.fat -n "$work/e.raw" >"$work/fsck.txt" 2>&1 || fail "fsck.fat: $(tail -n 3 "$work/fsck.txt")"
	else
		"$VHDX" create dynamic "$work/e.vhdx" $((size * MIB)) $((32 * MIB)) 4096 >/dev/null
		"$TOOL" format "$work/e.vhdx" 0 $((size * 256)) >"$work/tool.out" 2>&1 ||
			fail "esp_tool: $(cat "$work/tool.out")"
		"$VHDX" cat "$work/e.vhdx" | head -c 4096 >"$work/bs"
		ours=$(cluster_bytes "$work/bs")
		rm -f "$work/e.vhdx"
	fi
	theirs=$(mkfs_cluster_bytes "$size" "$ss")
	[ "$ours" = "$theirs" ] || fail "ours $ours bytes, mkfs.fat $theirs"
	echo "ok $case: $ours-byte clusters like mkfs.fat"
	rm -f "$work/e.raw"
done
echo "ok esp-fsck"
