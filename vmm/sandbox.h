/* vmm/sandbox.h - confining the VMM process once the VM is built (seccomp-BPF allowlist). */
#ifndef GENSHIFT_VMM_SANDBOX_H
#define GENSHIFT_VMM_SANDBOX_H

/* Install a seccomp filter on the calling process (all threads, TSYNC) that allows only
 * what running and rebuilding the VM needs: KVM ioctls, I/O on already-open files (the
 * disks, the serial log, the terminal), memory mapping, threads, futexes, clocks, signals,
 * exit. Opening files, exec, sockets, ptrace and everything else fail with EPERM.
 * Sets no_new_privs first. 0, or -errno (-ENOTSUP under AddressSanitizer, whose runtime
 * needs /proc and ptrace at exit). */
int vmm_sandbox_enter(void);

#endif
