#!/bin/sh
# tests/boot/vmm-reset.test.sh - resets rebuild the VM and the disk survives them; the
# guest's power-off ends `genshift boot` cleanly. A boot sector counts its boots in LBA 1
# (int 13h -> virtio-blk -> vdisk) and prints GENSHIFT-COUNT=<n>; boot 1 resets through
# port 0xCF9, boot 2 triple-faults (KVM_EXIT_SHUTDOWN, a reset for `genshift boot`), boot 3
# powers off through APM (SeaBIOS -> PIIX4 PM1a_CNT SLP_EN). Expect exit 0, two resets in
# the JSON, and the three counts in order on COM1. The VM comes from a configuration file
# (docs/vmcfg.md) whose disk and serial log paths are relative to it.
. "$(dirname "$0")/vmm-lib.sh"

cat >"$work/reset.S" <<'ASM'
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
	mov $0x4200, %ax          # read LBA 1 to 0x8000
	mov $dap, %si
	int $0x13
	jc hang
	cmpl $0x4e435347, 0x8000  # "GSCN"
	je have
	movl $0x4e435347, 0x8000
	movb $0, 0x8004
have:
	incb 0x8004
	mov $0x4300, %ax          # write it back
	mov $dap, %si
	mov drive, %dl
	int $0x13
	jc hang
	mov $msg, %si
	call puts
	mov 0x8004, %al
	add $'0', %al
	call putc
	mov $crlf, %si
	call puts
	mov $6, %cx               # ~300 ms of timer ticks: sercon sends its lazy output
3:	hlt
	loop 3b
	cmpb $1, 0x8004
	je reset_cf9
	cmpb $2, 0x8004
	je triple_fault
	mov $0x5301, %ax          # APM: connect real-mode interface
	xor %bx, %bx
	int $0x15
	mov $0x5307, %ax          # APM: set power state of all devices to off
	mov $1, %bx
	mov $3, %cx
	int $0x15
	jmp hang
reset_cf9:
	mov $0x06, %al
	mov $0xcf9, %dx
	out %al, %dx
	jmp hang
triple_fault:
	cli
	lidt null_idt
	int $3
hang:
	hlt
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
null_idt: .word 0
	.long 0
dap:	.byte 0x10, 0
	.word 1
	.word 0x8000, 0
	.quad 1
drive:	.byte 0x80
msg:	.asciz "GENSHIFT-COUNT="
crlf:	.asciz "\r\n"
	.org 446
	.byte 0x80, 0, 2, 0, 0x0c, 0, 0, 0
	.long 1, 2047
	.org 510
	.word 0xaa55
ASM
boot_sector reset
truncate -s 1M "$work/disk.raw"
dd if="$work/mbr.bin" of="$work/disk.raw" conv=notrunc status=none

# Booted from a VM configuration file: the disk and the serial log are relative to it.
cat >"$work/reset-vm.json" <<'CFG'
{
  "format": "genshift-vmcfg",
  "version": 1,
  "name": "vmm-reset",
  "generation": 1,
  "memory": { "size_mib": 64 },
  "processors": { "count": 1 },
  "disks": [ { "path": "disk.raw", "bus": "ide" } ],
  "serial_log": "serial.log"
}
CFG
rc=0
"$GENSHIFT" boot "$work/reset-vm.json" --timeout 180 --json --accel "${VMM_ACCEL:-auto}" \
	>"$work/boot.json" 2>"$work/boot-stderr.log" || rc=$?
cat "$work/boot.json"
[ "$rc" -eq 0 ] || fail "genshift boot exit $rc, expected 0 (guest power-off)"
[ "$(json_field "$work/boot.json" exit_reason)" = poweroff ] || fail "exit reason"
[ "$(json_field "$work/boot.json" resets)" = 2 ] || fail "expected 2 resets"
counts=$(grep -o 'GENSHIFT-COUNT=[0-9]' "$work/serial.log" | tr '\n' ' ')
[ "$counts" = "GENSHIFT-COUNT=1 GENSHIFT-COUNT=2 GENSHIFT-COUNT=3 " ] ||
	fail "serial counts: '$counts'"
echo "reset via 0xCF9, reset via triple fault, APM power-off: $counts"
