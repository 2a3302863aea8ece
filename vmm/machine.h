/* vmm/machine.h - the i440FX-shaped PC that vmm_run() builds: its state and life cycle.
 * Internal to vmm/. One struct machine lives for a whole vmm_run(); the "board" part
 * (KVM VM, RAM, devices, vCPU threads) is rebuilt from scratch on every reset. */
#ifndef GENSHIFT_VMM_MACHINE_H
#define GENSHIFT_VMM_MACHINE_H

#include <pthread.h>
#include <regex.h>
#include <stdio.h>

#include "vmm/fw_cfg.h"
#include "vmm/kvm.h"
#include "vmm/mc146818.h"
#include "vmm/ns16550.h"
#include "vmm/pci.h"
#include "vmm/pflash.h"
#include "vmm/piix4_pm.h"
#include "vmm/virtio_blk.h"
#include "vmm/vmm.h"

#define MACHINE_MAX_PIO 24
#define MACHINE_LINE_BYTES 4096

enum machine_stop {
	STOP_NONE,
	STOP_POWEROFF,
	STOP_RESET,
	STOP_MATCHED,
	STOP_TRIPLE_FAULT,
	STOP_DEBUG_EXIT,
	STOP_TIMEOUT,
	STOP_INTERRUPTED,
	STOP_ERROR,
};

struct machine_pio_range {
	uint16_t base, len;
	struct vmm_pio_handler h;
	uint64_t *counter; /* exit statistics bucket */
};

struct machine {
	const struct vmm_opts *opts;
	struct vmm_result *res;
	/* Lives across resets. */
	struct vdisk *disks[VMCFG_MAX_DISKS];
	bool disk_ro[VMCFG_MAX_DISKS];
	unsigned n_disks;
	uint8_t *firmware;
	size_t firmware_bytes;
	/* Generation 2: OVMF's two flash units, VARS (the NVRAM file) directly below CODE
	 * (the firmware file), ending at 4 GiB. Their contents live across resets. */
	bool uefi;
	struct pflash vars, code;
	uint64_t vars_gpa, code_gpa;
	struct vmm_kvm kvm;
	FILE *debugcon;
	FILE *trace;
	regex_t expect;
	bool have_expect;
	double t0;
	char line[MACHINE_LINE_BYTES];
	size_t line_len;
	bool seen_output;

	/* The board, rebuilt on reset. */
	uint8_t *ram;
	uint64_t ram_bytes;
	uint8_t *rom; /* writable copy of the firmware mapped below 4 GiB */
	struct vmm_mem mem;
	struct ns16550 uart;
	struct mc146818 rtc;
	struct fw_cfg fw_cfg;
	struct pci_bus pci;
	struct pci_func i440fx, piix3;
	struct piix4_pm pm;
	struct virtio_blk vblk[VMCFG_MAX_DISKS];
	unsigned n_vblk;
	uint8_t port92, reset_control;
	struct machine_pio_range pio[MACHINE_MAX_PIO];
	unsigned n_pio;
	struct vmm_vcpu vcpus[VMCFG_MAX_CPUS];
	pthread_t threads[VMCFG_MAX_CPUS];
	unsigned n_vcpus, n_threads;

	bool board_up;              /* devices exist (under dev_lock): host input may go in */
	pthread_t input_thread;
	bool have_input_thread;
	volatile bool input_done;

	pthread_mutex_t dev_lock;   /* serialises every device access */
	pthread_mutex_t stop_lock;  /* guards stop/stop_msg, signals stop_cond */
	pthread_cond_t stop_cond;
	enum machine_stop stop;
	char stop_msg[256];
};

/* Board life cycle (machine.c). */
int machine_build(struct machine *m);
void machine_teardown(struct machine *m);
/* Host input for COM1 (opts->serial_in_fd), fed to whichever board is up; lives across
 * resets. */
int machine_input_start(struct machine *m);
void machine_input_stop(struct machine *m);
/* Record the first stop reason (later ones are ignored) and kick every vCPU out of KVM_RUN.
 * Safe from any thread, including a vCPU thread holding dev_lock. */
void machine_request_stop(struct machine *m, enum machine_stop why, const char *msg);
double machine_now(void);

#endif
