/* vmm/kvm.c - KVM ioctls: VM creation, memory slots, vCPUs and CPUID, the exit loop. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/kvm.h"
#include "vmm/vmm-int.h"

#define KVM_TSS_GPA 0xFEFFD000u
#define KVM_IDENTITY_MAP_GPA 0xFEFFC000ull
#define MAX_CPUID_ENTRIES 256

static int ioctl_fail(const char *what)
{
	int e = errno;
	return vdisk_fail(e, "KVM %s failed: %s", what, strerror(e));
}

static int get_cpuid(struct vmm_kvm *k)
{
	size_t bytes = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	k->cpuid = calloc(1, bytes);
	if (!k->cpuid)
		return vdisk_fail(ENOMEM, "KVM: out of memory for CPUID");
	k->cpuid->nent = MAX_CPUID_ENTRIES;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) < 0)
		return ioctl_fail("KVM_GET_SUPPORTED_CPUID");
	return 0;
}

static int create_vm(struct vmm_kvm *k)
{
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		return ioctl_fail("KVM_CREATE_VM");
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_GPA) < 0)
		return ioctl_fail("KVM_SET_TSS_ADDR");
	uint64_t ident = KVM_IDENTITY_MAP_GPA;
	if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		return ioctl_fail("KVM_SET_IDENTITY_MAP_ADDR");
	/* The irqchip must exist before the first vCPU. */
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return ioctl_fail("KVM_CREATE_IRQCHIP");
	/* SPEAKER_DUMMY makes KVM itself answer port 0x61 (PIT channel 2 gate/output), which
	 * SeaBIOS and Linux use to calibrate the TSC. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return ioctl_fail("KVM_CREATE_PIT2");
	return 0;
}

int vmm_kvm_open(struct vmm_kvm *k)
{
	memset(k, 0, sizeof(*k));
	k->vm_fd = -1;
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0)
		return vdisk_fail(errno, "cannot open /dev/kvm: %s", strerror(errno));
	int r = 0;
	int api = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		r = vdisk_fail(ENOTSUP, "KVM API version %d, expected %d", api, KVM_API_VERSION);
	if (r == 0) {
		k->run_mmap_bytes = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
		if (k->run_mmap_bytes <= 0)
			r = ioctl_fail("KVM_GET_VCPU_MMAP_SIZE");
	}
	if (r == 0)
		k->readonly_mem = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
	if (r == 0)
		r = get_cpuid(k);
	if (r < 0)
		vmm_kvm_close(k);
	return r;
}

int vmm_kvm_create_vm(struct vmm_kvm *k)
{
	int r = create_vm(k);
	if (r < 0)
		vmm_kvm_destroy_vm(k);
	return r;
}

void vmm_kvm_destroy_vm(struct vmm_kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	k->vm_fd = -1;
}

void vmm_kvm_close(struct vmm_kvm *k)
{
	vmm_kvm_destroy_vm(k);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k->cpuid);
	k->cpuid = NULL;
	k->kvm_fd = -1;
}

int vmm_kvm_map(struct vmm_kvm *k, unsigned slot, uint64_t gpa, uint64_t size, void *host,
		bool readonly)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = readonly && k->readonly_mem ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return ioctl_fail("KVM_SET_USER_MEMORY_REGION");
	return 0;
}

int vmm_kvm_irq_line(struct vmm_kvm *k, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
	if (ioctl(k->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return ioctl_fail("KVM_IRQ_LINE");
	return 0;
}

/* The guest sees a fixed, modest CPU (x86-64-v2 level: SSE4.2, POPCNT, CX16, no AVX/XSAVE,
 * no leaf-7 extensions) whatever the host offers, like QEMU's default models, so that a
 * boot proof does not depend on the host that ran it. */
#define CPUID1_ECX_BASELINE (1u << 0 | 1u << 9 | 1u << 13 | 1u << 19 | 1u << 20 | \
			     1u << 21 | 1u << 23 | 1u << 31) /* SSE3 SSSE3 CX16 SSE4.1/2
							     * x2APIC POPCNT hypervisor */
#define CPUID_EXT1_ECX_BASELINE (1u << 0)                        /* LAHF/SAHF */
#define CPUID_EXT1_EDX_BASELINE (1u << 11 | 1u << 20 | 1u << 29) /* SYSCALL NX LM */

static void baseline(struct kvm_cpuid_entry2 *e)
{
	switch (e->function) {
	case 1:
		e->ecx &= CPUID1_ECX_BASELINE;
		break;
	case 7:
	case 0xD:
		e->eax = e->ebx = e->ecx = e->edx = 0;
		break;
	case 0x80000001:
		e->ecx &= CPUID_EXT1_ECX_BASELINE;
		/* Bits 0-9, 12-17, 23-24 mirror leaf 1 on AMD; keep them. */
		e->edx &= 0x0183F3FFu | CPUID_EXT1_EDX_BASELINE;
		break;
	default:
		break;
	}
}

/* Per-vCPU identity: leaf 1 EBX[31:24] initial APIC ID and [23:16] logical processor
 * count, leaves 0xB/0x1F EDX the x2APIC ID. SeaBIOS and Linux count CPUs from these. */
static int set_cpuid(struct vmm_kvm *k, struct vmm_vcpu *v, unsigned ncpus)
{
	struct kvm_cpuid2 *c = k->cpuid;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		baseline(e);
		if (e->function == 1) {
			e->ebx = (e->ebx & 0xFFFF) | v->id << 24 | (ncpus & 0xFF) << 16;
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: the count field is valid */
		} else if (e->function == 0xB || e->function == 0x1F) {
			e->edx = v->id;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		return ioctl_fail("KVM_SET_CPUID2");
	return 0;
}

int vmm_vcpu_open(struct vmm_kvm *k, unsigned id, unsigned ncpus, struct vmm_vcpu *out)
{
	struct vmm_vcpu v = { .id = id, .run_mmap_bytes = k->run_mmap_bytes };
	v.fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v.fd < 0)
		return ioctl_fail("KVM_CREATE_VCPU");
	void *run = mmap(NULL, (size_t)v.run_mmap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd, 0);
	int r = 0;
	if (run == MAP_FAILED)
		r = vdisk_fail(errno, "mmap of the vCPU %u run area failed: %s", id, strerror(errno));
	else
		v.run = run;
	if (r == 0)
		r = set_cpuid(k, &v, ncpus);
	if (r < 0) {
		vmm_vcpu_close(&v);
		return r;
	}
	*out = v;
	return 0;
}

void vmm_vcpu_close(struct vmm_vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->run_mmap_bytes);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

void vmm_vcpu_request_exit(struct vmm_vcpu *v)
{
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

/* String I/O (rep ins/outs) arrives as count items of size bytes in the run area. */
static void handle_io(struct vmm_vcpu *v, const struct vmm_exit_ops *ops, void *m)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		uint32_t val = 0;
		if (is_write)
			memcpy(&val, data, size);
		ops->pio(m, run->io.port, size, &val, is_write);
		if (!is_write)
			memcpy(data, &val, size);
	}
}

static bool handle_exit(struct vmm_vcpu *v, const struct vmm_exit_ops *ops, void *m)
{
	struct kvm_run *run = v->run;
	char why[128];
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		ops->count(m, KVM_EXIT_IO, run->io.port);
		handle_io(v, ops, m);
		return true;
	case KVM_EXIT_MMIO:
		ops->count(m, KVM_EXIT_MMIO, 0);
		ops->mmio(m, run->mmio.phys_addr, run->mmio.data,
			  run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
		return true;
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
		ops->count(m, run->exit_reason, 0);
		return true;
	case KVM_EXIT_SHUTDOWN:
		ops->count(m, KVM_EXIT_SHUTDOWN, 0);
		ops->shutdown(m);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(why, sizeof(why), "vCPU %u: KVM_EXIT_FAIL_ENTRY, hardware reason 0x%llx",
			 v->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(why, sizeof(why), "vCPU %u: KVM_EXIT_INTERNAL_ERROR, suberror %u "
			 "(often: executing outside RAM/ROM)", v->id, run->internal.suberror);
		break;
	default:
		snprintf(why, sizeof(why), "vCPU %u: unexpected KVM exit reason %u", v->id,
			 run->exit_reason);
		break;
	}
	ops->count(m, run->exit_reason, 0);
	ops->fail(m, why);
	return false;
}

void vmm_vcpu_loop(struct vmm_vcpu *v, const struct vmm_exit_ops *ops, void *m)
{
	while (!ops->stopping(m)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				ops->count(m, KVM_EXIT_INTR, 0);
				continue;
			}
			char why[96];
			snprintf(why, sizeof(why), "vCPU %u: KVM_RUN failed: %s", v->id, strerror(errno));
			ops->fail(m, why);
			return;
		}
		if (!handle_exit(v, ops, m))
			return;
	}
}
