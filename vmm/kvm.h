/* vmm/kvm.h - thin KVM layer: the VM (irqchip, PIT, memory slots), vCPUs with their CPUID,
 * and the KVM_RUN exit loop that hands port and MMIO accesses to the machine. */
#ifndef GENSHIFT_VMM_KVM_H
#define GENSHIFT_VMM_KVM_H

#include <stdbool.h>
#include <stdint.h>

struct kvm_run;
struct kvm_cpuid2;

struct vmm_kvm {
	int kvm_fd, vm_fd;
	int run_mmap_bytes;
	bool readonly_mem; /* KVM_CAP_READONLY_MEM */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, patched per vCPU */
};

struct vmm_vcpu {
	int fd;
	unsigned id;
	struct kvm_run *run;
	int run_mmap_bytes;
	void *owner; /* the machine, for the vCPU's thread */
};

/* What the exit loop calls. Handlers run on the vCPU's thread; the machine serialises. */
struct vmm_exit_ops {
	void (*pio)(void *m, uint16_t port, unsigned size, uint32_t *val, bool is_write);
	void (*mmio)(void *m, uint64_t gpa, uint8_t *data, unsigned len, bool is_write);
	/* KVM_EXIT_SHUTDOWN (triple fault) and fatal exits; the loop then returns. */
	void (*shutdown)(void *m);
	void (*fail)(void *m, const char *why);
	/* Counting hook, called once per exit with its KVM_EXIT_* reason. */
	void (*count)(void *m, unsigned exit_reason, uint16_t port);
	/* Polled after each exit and after an interrupted KVM_RUN: true = leave the loop. */
	bool (*stopping)(void *m);
};

/* Open /dev/kvm and read the supported CPUID (kept open across VM rebuilds, so a reset
 * needs no open() once the process is confined). */
int vmm_kvm_open(struct vmm_kvm *k);
/* Destroys any VM too. Accepts a zeroed/closed struct. */
void vmm_kvm_close(struct vmm_kvm *k);
/* Create a VM shaped as section 9.1 of vmm-device-model.md: TSS and identity map at
 * 0xFEFFD000/0xFEFFC000, in-kernel irqchip, PIT2 with the 0x61 speaker stub in-kernel. */
int vmm_kvm_create_vm(struct vmm_kvm *k);
void vmm_kvm_destroy_vm(struct vmm_kvm *k);
/* Map host memory at gpa (size multiple of 4 KiB) in slot. */
int vmm_kvm_map(struct vmm_kvm *k, unsigned slot, uint64_t gpa, uint64_t size, void *host,
		bool readonly);
int vmm_kvm_irq_line(struct vmm_kvm *k, unsigned gsi, int level);

/* vCPU id of ncpus, with CPUID set (APIC ID, logical count). */
int vmm_vcpu_open(struct vmm_kvm *k, unsigned id, unsigned ncpus, struct vmm_vcpu *out);
void vmm_vcpu_close(struct vmm_vcpu *v);
/* Make a KVM_RUN in progress return (from another thread: set the flag, then signal). */
void vmm_vcpu_request_exit(struct vmm_vcpu *v);
/* Run until ops->stopping() or a fatal exit. */
void vmm_vcpu_loop(struct vmm_vcpu *v, const struct vmm_exit_ops *ops, void *m);

#endif
