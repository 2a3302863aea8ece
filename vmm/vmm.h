/* vmm/vmm.h - genshift's VMM: boots a VM configuration (vmcfg) on KVM with the i440FX-shaped
 * machine of docs/vmm-device-model.md, and reports how the boot went.
 *
 * Two halves:
 * - vmcfg_*: the VM configuration file (JSON, documented in docs/vmcfg.md), parsed with
 *   json-c, validated field by field, and written back out.
 * - vmm_run(): builds the machine (KVM VM, memory, firmware, devices, vCPU threads), runs it
 *   until the guest powers off, the serial output matches a pattern, a timeout, a triple
 *   fault or an error, and fills a struct vmm_result.
 * Like the rest of genshift, functions return 0 or -errno and leave a message for
 * vdisk_errmsg(); nothing here prints or exits.
 */
#ifndef GENSHIFT_VMM_H
#define GENSHIFT_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- VM configuration ---- */

#define VMCFG_VERSION 1
#define VMCFG_MAX_DISKS 16
#define VMCFG_MAX_NICS 8
#define VMCFG_MAX_BOOT 16
#define VMCFG_MAX_CPUS 64
#define VMCFG_MIN_MEMORY_BYTES (16ull << 20)
#define VMCFG_MAX_MEMORY_BYTES (1ull << 40)

enum vmcfg_firmware { VMCFG_FW_BIOS, VMCFG_FW_UEFI };
enum vmcfg_bus { VMCFG_BUS_VIRTIO, VMCFG_BUS_IDE, VMCFG_BUS_SCSI };
enum vmcfg_media { VMCFG_MEDIA_DISK, VMCFG_MEDIA_DVD };
enum vmcfg_nic_model { VMCFG_NIC_SYNTHETIC, VMCFG_NIC_LEGACY, VMCFG_NIC_VIRTIO };
enum vmcfg_boot_kind { VMCFG_BOOT_DISK, VMCFG_BOOT_DVD, VMCFG_BOOT_NIC };

struct vmcfg_disk {
	char *path; /* resolved against the config file's directory */
	enum vmcfg_media media;
	enum vmcfg_bus bus;
	unsigned controller, location; /* Hyper-V controller number and slot */
	bool read_only;
};

struct vmcfg_nic {
	char mac[18];    /* "00:15:5d:01:02:03" or "" (dynamic) */
	char *switch_name; /* may be NULL */
	enum vmcfg_nic_model model;
	bool connected;
};

struct vmcfg_boot {
	enum vmcfg_boot_kind kind;
	unsigned index; /* into disks (DISK and DVD) or nics */
};

struct vmcfg {
	char *name;
	unsigned generation; /* 1 or 2 */
	enum vmcfg_firmware firmware;
	char *firmware_path; /* NULL = the generation's default (Debian SeaBIOS / OVMF) */
	char *nvram_path;    /* UEFI variable store, gen 2 only; may be NULL */
	bool secure_boot;
	char *secure_boot_template; /* Hyper-V template name or GUID; may be NULL */
	uint64_t memory_bytes;
	bool dynamic_memory;
	uint64_t memory_min_bytes, memory_max_bytes; /* 0 when not dynamic */
	unsigned cpus;
	struct vmcfg_disk disks[VMCFG_MAX_DISKS];
	unsigned n_disks;
	struct vmcfg_nic nics[VMCFG_MAX_NICS];
	unsigned n_nics;
	struct vmcfg_boot boot_order[VMCFG_MAX_BOOT];
	unsigned n_boot;
	char *serial_log; /* COM1 output file; NULL = the caller decides */
	char *notes;      /* free text, kept for round trips (Hyper-V "notes") */
	char *vm_id;      /* Hyper-V VM GUID, may be NULL */
};

/* A default configuration for `genshift boot --gen N --disk IMG`: 512 MiB, 1 vCPU, the disk
 * on virtio, booting from it. *out written only on success; free with vmcfg_free. */
int vmcfg_new_simple(unsigned generation, const char *disk_path, struct vmcfg **out);
/* Parse a configuration document of len bytes. Relative paths are resolved against base_dir
 * (NULL = as given). Unknown keys, wrong types and out-of-range values are errors naming
 * the JSON path ("disks[1].bus"). *out written only on success. */
int vmcfg_parse(const char *text, size_t len, const char *base_dir, struct vmcfg **out);
/* Read and parse a file (at most 1 MiB). */
int vmcfg_load(const char *path, struct vmcfg **out);
/* The canonical JSON text of cfg (malloc'ed, caller frees), or NULL on -ENOMEM. */
char *vmcfg_to_json(const struct vmcfg *cfg);
void vmcfg_free(struct vmcfg *cfg);
const char *vmcfg_bus_name(enum vmcfg_bus b);
/* The index in cfg->disks of the disk the VM boots from: the first disk entry of boot_order,
 * else the first hard disk (not a DVD); -1 when the VM has no hard disk. */
int vmcfg_boot_disk(const struct vmcfg *cfg);

/* ---- running a VM ---- */

enum vmm_exit_reason {
	VMM_EXIT_POWEROFF,     /* the guest powered off (ACPI/APM) */
	VMM_EXIT_MATCHED,      /* the serial output matched opts.expect */
	VMM_EXIT_TIMEOUT,      /* opts.timeout_s passed */
	VMM_EXIT_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN with opts.triple_fault_resets false */
	VMM_EXIT_DEBUG_EXIT,   /* the guest wrote port 0xF4 (result.debug_exit_code) */
	VMM_EXIT_ERROR,        /* the VMM failed (result.error) */
	VMM_EXIT_INTERRUPTED,  /* *opts.interrupted became non-zero (SIGINT/SIGTERM) */
};

/* VM exits by kind, summed over all vCPUs and resets. */
struct vmm_exit_stats {
	uint64_t total;
	uint64_t io, mmio, shutdown, intr, hlt, other;
	/* I/O exits by device */
	uint64_t io_serial, io_fw_cfg, io_pci_config, io_virtio, io_pm, io_rtc, io_debugcon,
		io_unassigned, io_misc;
	uint64_t virtio_reads, virtio_writes, virtio_flushes, virtio_errors;
	/* generation 2: MMIO exits into the flash units, and what the firmware did to its
	 * NVRAM (programmed bytes, erased blocks, fdatasyncs of the file, writes refused,
	 * programmed bytes that asked to set a bit flash cannot set without an erase) */
	uint64_t mmio_pflash, nvram_programs, nvram_erases, nvram_syncs, nvram_refused,
		nvram_set_bits;
};

struct vmm_opts {
	const struct vmcfg *cfg;
	int serial_fd;          /* COM1 output also goes here; -1 = nowhere */
	int serial_in_fd;       /* bytes read here go to COM1's receiver; -1 = none */
	bool serial_in_tty;     /* serial_in_fd is a terminal in line mode: send '\n' as '\r' */
	const char *debugcon_path; /* SeaBIOS debug log (port 0x402); NULL = disabled */
	const char *trace_path; /* every port/MMIO exit, one line each; NULL = disabled */
	const char *expect;     /* POSIX extended regex matched per serial line; NULL = none */
	double timeout_s;       /* 0 = no timeout */
	bool triple_fault_resets; /* true: KVM_EXIT_SHUTDOWN resets the VM (like a PC) */
	bool seccomp;           /* confine the process once the VM is built */
	unsigned max_resets;    /* 0 = 100 */
	/* Polled several times a second; non-zero stops the guest and closes the disks
	 * cleanly (a signal handler sets it). NULL = never. */
	volatile int *interrupted;
};

struct vmm_result {
	enum vmm_exit_reason reason;
	int debug_exit_code;
	double first_output_s; /* first serial byte after start; < 0 = none */
	double match_s;        /* < 0 = no match */
	double total_s;
	unsigned resets;
	bool seccomp_active;
	struct vmm_exit_stats exits;
	char last_serial_line[160]; /* last non-empty COM1 line, to say where a boot stopped */
	char error[512];
};

/* What vmm_run() refuses before building anything (generation/firmware mismatch, Secure
 * Boot, vCPU count, memory size), so a caller can fail before doing any work. 0 or -errno
 * with a message. */
int vmm_check_cfg(const struct vmcfg *cfg);
/* Boot cfg. Returns 0 when the run itself worked (whatever the guest did: see
 * result->reason), -errno when the VM could not be built (result->reason is then
 * VMM_EXIT_ERROR and result->error says why). */
int vmm_run(const struct vmm_opts *opts, struct vmm_result *result);
const char *vmm_exit_reason_name(enum vmm_exit_reason r); /* "matched", "timeout", ... */
/* The firmware file a generation boots by default. */
const char *vmm_default_firmware(unsigned generation);
/* The empty UEFI variable store a new generation-2 NVRAM file is copied from (Debian's
 * OVMF_VARS_4M.fd, the match of the default firmware). */
const char *vmm_default_nvram_template(void);

#endif
