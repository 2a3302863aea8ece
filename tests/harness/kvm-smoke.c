/*
 * kvm-smoke: the smallest proof that /dev/kvm runs guests.
 *
 * Creates a VM with one page of memory, puts a real-mode program at 0x1000 that writes
 * the bytes "KVM-OK\n" to I/O port 0xE9 (Bochs/QEMU debug port convention) one `out` at
 * a time, runs a loop of LOOP_OUTS writes to port 0xEA (timing), then halts. The host
 * side collects the port 0xE9 bytes and checks the exit sequence: PIO exits only, then
 * KVM_EXIT_HLT. Prints "kvm-smoke: ok ..." and exits 0, or one line saying what
 * was wrong and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_MEM_BYTES 0x10000
#define CODE_GPA 0x1000
#define PORT_TEXT 0xE9
#define PORT_LOOP 0xEA
#define LOOP_OUTS 1000
#define MAX_EXITS (LOOP_OUTS + 64)

/*
 * Real-mode code, assembled by hand:
 *   mov si, msg       ; BE lo hi
 *   mov dx, 0xE9      ; BA E9 00
 * next:
 *   lodsb             ; AC
 *   test al, al       ; 84 C0
 *   jz loop           ; 74 03
 *   out dx, al        ; EE
 *   jmp next          ; EB F8
 * loop:
 *   mov cx, LOOP_OUTS ; B9 lo hi
 *   mov dx, 0xEA      ; BA EA 00
 * again:
 *   out dx, al        ; EE
 *   loop again        ; E2 FD
 *   hlt               ; F4
 * msg: "KVM-OK\n\0"
 */
static const uint8_t guest_code[] = {
	0xBE, 0x00, 0x00, /* patched: offset of msg */
	0xBA, PORT_TEXT, 0x00,
	0xAC,
	0x84, 0xC0,
	0x74, 0x03,
	0xEE,
	0xEB, 0xF8,
	0xB9, LOOP_OUTS & 0xFF, LOOP_OUTS >> 8,
	0xBA, PORT_LOOP, 0x00,
	0xEE,
	0xE2, 0xFD,
	0xF4,
	'K', 'V', 'M', '-', 'O', 'K', '\n', 0,
};
#define MSG_OFFSET 24

struct smoke {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_bytes;
};

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "kvm-smoke: %s: %s\n", what, strerror(errno));
	return -1;
}

static int smoke_open(struct smoke *s)
{
	struct kvm_userspace_memory_region region;
	int api;

	s->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (s->kvm_fd < 0)
		return fail("open /dev/kvm");
	api = ioctl(s->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "kvm-smoke: KVM API version %d, expected %d\n", api, KVM_API_VERSION);
		return -1;
	}
	s->vm_fd = ioctl(s->kvm_fd, KVM_CREATE_VM, 0);
	if (s->vm_fd < 0)
		return fail("KVM_CREATE_VM");
	s->mem = mmap(NULL, GUEST_MEM_BYTES, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->mem == MAP_FAILED)
		return fail("mmap guest memory");
	memset(&region, 0, sizeof(region));
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM_BYTES;
	region.userspace_addr = (uintptr_t)s->mem;
	if (ioctl(s->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	s->vcpu_fd = ioctl(s->vm_fd, KVM_CREATE_VCPU, 0);
	if (s->vcpu_fd < 0)
		return fail("KVM_CREATE_VCPU");
	s->run_bytes = (size_t)ioctl(s->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	s->run = mmap(NULL, s->run_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->vcpu_fd, 0);
	if (s->run == MAP_FAILED)
		return fail("mmap kvm_run");
	return 0;
}

static void smoke_close(struct smoke *s)
{
	if (s->run != NULL && s->run != MAP_FAILED)
		munmap(s->run, s->run_bytes);
	if (s->mem != NULL && s->mem != MAP_FAILED)
		munmap(s->mem, GUEST_MEM_BYTES);
	if (s->vcpu_fd >= 0)
		close(s->vcpu_fd);
	if (s->vm_fd >= 0)
		close(s->vm_fd);
	if (s->kvm_fd >= 0)
		close(s->kvm_fd);
}

/* Loads the program at CODE_GPA and points CS:IP at it in real mode. */
static int smoke_load(struct smoke *s)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint8_t *code = s->mem + CODE_GPA;

	memcpy(code, guest_code, sizeof(guest_code));
	code[1] = (CODE_GPA + MSG_OFFSET) & 0xFF;
	code[2] = (CODE_GPA + MSG_OFFSET) >> 8;
	if (ioctl(s->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return fail("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(s->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return fail("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rflags = 0x2; /* bit 1 is reserved and must be set */
	if (ioctl(s->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");
	return 0;
}

/*
 * Runs until HLT. Returns 0 when the text and loop exits were exactly as programmed.
 */
static int smoke_run(struct smoke *s, char *text, size_t text_bytes, unsigned *loop_outs)
{
	size_t n = 0;
	int exits;

	for (exits = 0; exits < MAX_EXITS; exits++) {
		if (ioctl(s->vcpu_fd, KVM_RUN, 0) < 0)
			return fail("KVM_RUN");
		if (s->run->exit_reason == KVM_EXIT_HLT) {
			text[n] = '\0';
			return 0;
		}
		if (s->run->exit_reason != KVM_EXIT_IO ||
		    s->run->io.direction != KVM_EXIT_IO_OUT || s->run->io.size != 1) {
			fprintf(stderr, "kvm-smoke: unexpected exit reason %u after %d exits\n",
				s->run->exit_reason, exits);
			return -1;
		}
		if (s->run->io.port == PORT_LOOP) {
			(*loop_outs)++;
		} else if (s->run->io.port == PORT_TEXT && n + 1 < text_bytes) {
			text[n++] = *((char *)s->run + s->run->io.data_offset);
		} else {
			fprintf(stderr, "kvm-smoke: write to unexpected port 0x%x\n", s->run->io.port);
			return -1;
		}
	}
	fprintf(stderr, "kvm-smoke: no HLT after %d exits\n", MAX_EXITS);
	return -1;
}

int main(void)
{
	struct smoke s = { .kvm_fd = -1, .vm_fd = -1, .vcpu_fd = -1 };
	unsigned loop_outs = 0;
	char text[32];
	double t0, t1;
	int rc = 1;

	if (smoke_open(&s) < 0 || smoke_load(&s) < 0)
		goto out_close;
	t0 = now_seconds();
	if (smoke_run(&s, text, sizeof(text), &loop_outs) < 0)
		goto out_close;
	t1 = now_seconds();
	if (strcmp(text, "KVM-OK\n") != 0 || loop_outs != LOOP_OUTS) {
		fprintf(stderr, "kvm-smoke: guest wrote \"%s\" and %u loop outs, expected \"KVM-OK\" and %d\n",
			text, loop_outs, LOOP_OUTS);
		goto out_close;
	}
	printf("kvm-smoke: ok: real-mode guest wrote \"KVM-OK\", %d port exits, then HLT; %.1f us per exit\n",
	       LOOP_OUTS, (t1 - t0) * 1e6 / (LOOP_OUTS + 7));
	rc = 0;
out_close:
	smoke_close(&s);
	return rc;
}
