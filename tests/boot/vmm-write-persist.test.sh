#!/bin/sh
# tests/boot/vmm-write-persist.test.sh - sectors the guest writes land in the image file,
# through the vdisk library, and survive to the next boot. The disk is made by qemu-img
# (an independent VHD writer) around a boot sector assembled here; on each boot the
# boot sector reads LBA 1 through BIOS int 13h (SeaBIOS -> our virtio-blk), increments a
# counter there, writes it back, and prints GENSHIFT-COUNT=<n> through int 10h (SeaBIOS's
# sercon puts it on COM1). Two boots must print 1 then 2; afterwards qemu-img (an
# independent reader) must find the counter at 2 and the boot sector unchanged.
. "$(dirname "$0")/vmm-lib.sh"
need qemu-img

cat >"$work/counter.S" <<'ASM'
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7c00, %sp
	sti
	mov %dl, drive
	mov $0x4200, %ax          # int 13h extended read of LBA 1 to 0x8000
	mov $dap, %si
	int $0x13
	jc fail
	cmpl $0x4e435347, 0x8000  # "GSCN": a counter sector already written by us?
	je have
	movl $0x4e435347, 0x8000
	movb $0, 0x8004
have:
	incb 0x8004
	mov $0x4300, %ax          # extended write, no verify
	mov $dap, %si
	mov drive, %dl
	int $0x13
	jc fail
	mov $msg, %si
	call puts
	mov 0x8004, %al
	add $'0', %al
	call putc
	mov $crlf, %si
	call puts
hang:
	hlt
	jmp hang
fail:
	mov $failmsg, %si
	call puts
	jmp hang
puts:
	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret
putc:                             # BIOS teletype: SeaBIOS's sercon puts it on COM1 in order
	push %bx
	mov $0x0e, %ah
	mov $0x0007, %bx
	int $0x10
	pop %bx
	ret
dap:	.byte 0x10, 0
	.word 1
	.word 0x8000, 0
	.quad 1
drive:	.byte 0x80
msg:	.asciz "GENSHIFT-COUNT="
crlf:	.asciz "\r\n"
failmsg: .asciz "GENSHIFT-DISK-ERROR\r\n"
	.org 446
	.byte 0x80, 0, 2, 0, 0x0c, 0, 0, 0   # one active partition entry, so it looks bootable
	.long 1, 2047
	.org 510
	.word 0xaa55
ASM
boot_sector counter
truncate -s 1M "$work/disk.raw"
dd if="$work/mbr.bin" of="$work/disk.raw" conv=notrunc status=none

count_boot() { # image expected-count name
	"$GENSHIFT" verify --disk "$1" --expect "GENSHIFT-COUNT=$2\$" --timeout 120 --json \
		--serial-log "$work/$3-serial.log" --accel "${VMM_ACCEL:-auto}" \
		>"$work/$3.json" 2>"$work/$3-stderr.log" ||
		fail "$3: no GENSHIFT-COUNT=$2 (exit $?): $(cat "$work/$3.json")"
	echo "$3: GENSHIFT-COUNT=$2 after $(json_field "$work/$3.json" time_to_match_s) s"
}

# VHD only: VHDX writes are proven by vmm-linux-persist.test.sh (a Linux guest, ext4).
for fmt in vpc; do
	img=$work/disk.$fmt
	qemu-img convert -f raw -O "$fmt" -o subformat=dynamic "$work/disk.raw" "$img" ||
		fail "qemu-img convert to $fmt"
	count_boot "$img" 1 "$fmt-boot1"
	count_boot "$img" 2 "$fmt-boot2"
	qemu-img convert -f "$fmt" -O raw "$img" "$work/back.raw"
	sig=$(dd if="$work/back.raw" bs=1 skip=512 count=5 status=none | od -An -tx1 | tr -d ' \n')
	[ "$sig" = 4753434e02 ] || fail "$fmt: qemu-img reads LBA 1 as $sig, expected 4753434e02"
	cmp -n 512 "$work/back.raw" "$work/disk.raw" || fail "$fmt: the boot sector changed"
	echo "$fmt: qemu-img reads the guest's counter (2) back from the image"
done
