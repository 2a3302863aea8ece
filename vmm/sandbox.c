/* vmm/sandbox.c - a raw seccomp-BPF allowlist (no libseccomp dependency). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/sandbox.h"
#include "vmm/vmm-int.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
/* Everything the running VMM calls, grouped by why. */
static const unsigned allowed[] = {
	/* KVM and file I/O on descriptors opened before confinement */
	SYS_ioctl, SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev,
	SYS_preadv, SYS_pwritev, SYS_lseek, SYS_fsync, SYS_fdatasync, SYS_ftruncate,
	SYS_fallocate, SYS_fstat, SYS_newfstatat, SYS_close, SYS_fcntl, SYS_flock,
	/* memory: guest RAM and firmware are remapped on every reset */
	SYS_mmap, SYS_munmap, SYS_mprotect, SYS_madvise, SYS_mremap, SYS_brk,
	/* vCPU threads */
	SYS_clone, SYS_clone3, SYS_set_robust_list, SYS_rseq, SYS_futex, SYS_sched_yield,
	SYS_gettid, SYS_getpid, SYS_tgkill, SYS_tkill,
	/* signals (the vCPU kick) and time */
	SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_restart_syscall,
	SYS_clock_gettime, SYS_clock_nanosleep, SYS_nanosleep, SYS_getrandom,
	SYS_poll, SYS_ppoll, /* serial input */
	SYS_exit, SYS_exit_group,
};
#endif

int vmm_sandbox_enter(void)
{
#ifdef UNDER_ASAN
	return vdisk_fail(ENOTSUP, "seccomp sandbox disabled under AddressSanitizer");
#else
	enum { N = sizeof(allowed) / sizeof(allowed[0]) };
	struct sock_filter f[N + 6];
	unsigned k = 0;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	/* One test per allowed number: on match jump to ALLOW (the last instruction). */
	for (unsigned i = 0; i < N; i++)
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, allowed[i],
						      (uint8_t)(N - i), 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return vdisk_fail(errno, "prctl(NO_NEW_PRIVS): %s", strerror(errno));
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
		return vdisk_fail(errno, "seccomp: %s", strerror(errno));
	return 0;
#endif
}
