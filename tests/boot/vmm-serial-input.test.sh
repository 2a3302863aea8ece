#!/bin/sh
# tests/boot/vmm-serial-input.test.sh - host input reaches the guest through COM1: a boot
# sector waits for a key with BIOS int 16h (SeaBIOS's sercon turns COM1 input into
# keystrokes), then prints GENSHIFT-KEY=<key>. The key comes from --serial-input FILE.
. "$(dirname "$0")/vmm-lib.sh"

cat >"$work/key.S" <<'ASM'
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %ss
	mov $0x7c00, %sp
	sti
	mov $ready, %si
	call puts
	xor %ah, %ah              # int 16h: wait for a key, ASCII in AL
	int $0x16
	mov %al, key
	mov $msg, %si
	call puts
hang:
	hlt
	jmp hang
puts:
	lodsb
	test %al, %al
	jz 1f
	mov $0x0e, %ah
	mov $0x0007, %bx
	int $0x10
	jmp puts
1:	ret
ready:	.asciz "GENSHIFT-READY\r\n"
msg:	.ascii "GENSHIFT-KEY="
key:	.asciz "?\r\n"
	.org 446
	.byte 0x80, 0, 2, 0, 0x0c, 0, 0, 0
	.long 1, 2047
	.org 510
	.word 0xaa55
ASM
boot_sector key
truncate -s 1M "$work/disk.raw"
dd if="$work/mbr.bin" of="$work/disk.raw" conv=notrunc status=none
printf 'k' >"$work/input"

"$GENSHIFT" verify --disk "$work/disk.raw" --serial-input "$work/input" \
	--expect 'GENSHIFT-KEY=k' --timeout 120 --json --serial-log "$work/serial.log" \
	--accel "${VMM_ACCEL:-auto}" >"$work/key.json" 2>"$work/key-stderr.log" ||
	fail "no GENSHIFT-KEY=k: $(cat "$work/key.json")"
echo "the guest read 'k' from COM1 after $(json_field "$work/key.json" time_to_match_s) s"
