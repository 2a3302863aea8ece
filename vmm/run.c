/* vmm/run.c - vmm_run(): open the disks and firmware once, then build, run and tear down
 * the board until the guest stops for good (power-off, match, timeout, error), rebuilding
 * it on every reset. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx/vdisk.h"
#include "vmm/machine.h"
#include "vmm/sandbox.h"

#define DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin"
#define DEFAULT_OVMF "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define DEFAULT_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
/* Firmware and NVRAM must stay above the TSS/identity map at 0xFEFFC000 (kvm.c). */
#define FLASH_LOWEST_GPA 0xFF000000ull
#define FIRMWARE_MAX_BYTES (16u << 20) /* what the TSS/identity-map placement allows */
#define DEFAULT_MAX_RESETS 100

const char *vmm_default_firmware(unsigned generation)
{
	return generation == 2 ? DEFAULT_OVMF : DEFAULT_BIOS;
}

const char *vmm_default_nvram_template(void)
{
	return DEFAULT_OVMF_VARS;
}

const char *vmm_exit_reason_name(enum vmm_exit_reason r)
{
	switch (r) {
	case VMM_EXIT_POWEROFF: return "poweroff";
	case VMM_EXIT_MATCHED: return "matched";
	case VMM_EXIT_TIMEOUT: return "timeout";
	case VMM_EXIT_TRIPLE_FAULT: return "triple-fault";
	case VMM_EXIT_DEBUG_EXIT: return "debug-exit";
	case VMM_EXIT_INTERRUPTED: return "interrupted";
	default: return "vmm-error";
	}
}

/* The BIOS must be a whole number of 64 KiB pieces (it is mapped to end at 4 GiB) and at
 * least the 128 KiB copied below 1 MiB; OVMF's CODE a whole number of 4 KiB flash blocks. */
static int load_firmware(struct machine *m, const char *path)
{
	unsigned unit = m->uefi ? PFLASH_BLOCK_BYTES : 0x10000;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdisk_fail(errno, "firmware %s: %s", path, strerror(errno));
	struct stat sb;
	int r = 0;
	if (fstat(fd, &sb) < 0)
		r = vdisk_fail(errno, "firmware %s: %s", path, strerror(errno));
	else if (sb.st_size < 0x20000 || sb.st_size > FIRMWARE_MAX_BYTES || sb.st_size % unit)
		r = vdisk_fail(EINVAL, "firmware %s: %lld bytes; expected a multiple of %u KiB "
			       "between 128 KiB and 16 MiB", path, (long long)sb.st_size,
			       unit / 1024);
	if (r == 0 && !(m->firmware = malloc((size_t)sb.st_size)))
		r = vdisk_fail(ENOMEM, "firmware %s: out of memory", path);
	if (r == 0)
		r = vdisk_pread(fd, path, m->firmware, (size_t)sb.st_size, 0);
	if (r == 0)
		m->firmware_bytes = (size_t)sb.st_size;
	close(fd);
	return r;
}

/* Disks in configuration order become virtio-blk 00:02.0, 00:03.0, ...: the boot disk
 * (first in boot_order) goes first, since SeaBIOS tries drives in PCI order. */
static int open_disks(struct machine *m)
{
	const struct vmcfg *cfg = m->opts->cfg;
	int order[VMCFG_MAX_DISKS], n = 0;
	if (cfg->n_boot && cfg->boot_order[0].kind == VMCFG_BOOT_DISK)
		order[n++] = (int)cfg->boot_order[0].index;
	for (unsigned i = 0; i < cfg->n_disks; i++)
		if (n == 0 || (int)i != order[0])
			order[n++] = (int)i;
	for (int k = 0; k < n; k++) {
		const struct vmcfg_disk *d = &cfg->disks[order[k]];
		if (d->media != VMCFG_MEDIA_DISK)
			continue; /* DVDs are carried in the config but not emulated yet */
		unsigned flags = d->read_only ? 0 : VDISK_OPEN_RDWR;
		int r = vdisk_open(d->path, flags, &m->disks[m->n_disks]);
		if (r < 0)
			return r;
		m->disk_ro[m->n_disks++] = d->read_only;
	}
	return 0;
}

/* Generation 2: VARS is the VM's NVRAM file (locked, written through), CODE a read-only
 * unit over the firmware; VARS sits directly below CODE, which ends at 4 GiB, as QEMU maps
 * pflash units 1 and 0. Both need read-only memory slots. */
static int open_uefi_flash(struct machine *m)
{
	const struct vmcfg *cfg = m->opts->cfg;
	if (!m->kvm.readonly_mem)
		return vdisk_fail(ENOTSUP, "KVM lacks KVM_CAP_READONLY_MEM, which OVMF's flash "
				  "mapping needs");
	int r = pflash_open(&m->vars, cfg->nvram_path);
	if (r == 0)
		r = pflash_new_mem(&m->code, m->firmware, (uint32_t)m->firmware_bytes, true);
	if (r < 0)
		return r;
	m->code_gpa = VMM_4GIB - m->firmware_bytes;
	m->vars_gpa = m->code_gpa - m->vars.bytes;
	if (m->vars_gpa < FLASH_LOWEST_GPA)
		return vdisk_fail(EINVAL, "firmware and NVRAM file: %zu + %u bytes; at most 16 MiB "
				  "together", m->firmware_bytes, m->vars.bytes);
	return 0;
}

static void on_kick(int sig)
{
	(void)sig; /* only there to make KVM_RUN return EINTR */
}

static int prepare(struct machine *m)
{
	const struct vmm_opts *o = m->opts;
	struct sigaction sa = { .sa_handler = on_kick }; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return vdisk_fail(errno, "sigaction: %s", strerror(errno));
	if (o->expect) {
		int e = regcomp(&m->expect, o->expect, REG_EXTENDED | REG_NOSUB);
		if (e) {
			char msg[160];
			regerror(e, &m->expect, msg, sizeof(msg));
			return vdisk_fail(EINVAL, "--expect '%s': %s", o->expect, msg);
		}
		m->have_expect = true;
	}
	if (o->debugcon_path && !(m->debugcon = fopen(o->debugcon_path, "we")))
		return vdisk_fail(errno, "debug log %s: %s", o->debugcon_path, strerror(errno));
	if (m->debugcon)
		setvbuf(m->debugcon, NULL, _IOLBF, 0); /* a crash keeps the log up to its last line */
	if (o->trace_path && !(m->trace = fopen(o->trace_path, "we")))
		return vdisk_fail(errno, "trace %s: %s", o->trace_path, strerror(errno));
	const char *fw = o->cfg->firmware_path ? o->cfg->firmware_path
					       : vmm_default_firmware(o->cfg->generation);
	int r = load_firmware(m, fw);
	if (r == 0)
		r = open_disks(m);
	if (r == 0)
		r = vmm_kvm_open(&m->kvm);
	if (r == 0 && m->uefi)
		r = open_uefi_flash(m);
	if (r == 0)
		r = machine_input_start(m);
	return r;
}

int vmm_check_cfg(const struct vmcfg *cfg)
{
	enum vmcfg_firmware want = cfg->generation == 2 ? VMCFG_FW_UEFI : VMCFG_FW_BIOS;
	if ((cfg->generation != 1 && cfg->generation != 2) || cfg->firmware != want)
		return vdisk_fail(EINVAL, "generation %u with %s firmware: expected generation 1 "
				  "with BIOS or 2 with UEFI", cfg->generation,
				  cfg->firmware == VMCFG_FW_BIOS ? "BIOS" : "UEFI");
	if (cfg->generation == 2 && cfg->secure_boot)
		return vdisk_fail(ENOTSUP, "Secure Boot is not supported yet: it needs OVMF's "
				  "secboot build, which requires SMM and the Q35 machine, and this "
				  "VMM emulates an i440FX PC without SMM (set firmware.secure_boot "
				  "to false)");
	if (cfg->cpus < 1 || cfg->cpus > VMCFG_MAX_CPUS)
		return vdisk_fail(EINVAL, "%u vCPUs: expected 1..%d", cfg->cpus, VMCFG_MAX_CPUS);
	if (cfg->memory_bytes < VMCFG_MIN_MEMORY_BYTES || cfg->memory_bytes % 4096)
		return vdisk_fail(EINVAL, "memory of %llu bytes: expected at least 16 MiB, in pages",
				  (unsigned long long)cfg->memory_bytes);
	return 0;
}

static bool interrupted(const struct machine *m)
{
	return m->opts->interrupted && *m->opts->interrupted;
}

/* Wait until a vCPU or device stops the board, the deadline passes or the caller's
 * interrupt flag is raised (checked every 200 ms). */
static enum machine_stop wait_stop(struct machine *m, double deadline)
{
	enum machine_stop late = STOP_NONE;
	pthread_mutex_lock(&m->stop_lock);
	while (m->stop == STOP_NONE) {
		double left = deadline > 0 ? deadline - machine_now() : 0.2;
		if (deadline > 0 && left <= 0) {
			late = STOP_TIMEOUT;
			break;
		}
		if (interrupted(m)) {
			late = STOP_INTERRUPTED;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		double t = (double)ts.tv_sec + ts.tv_nsec / 1e9 + (left < 0.2 ? left : 0.2);
		ts.tv_sec = (time_t)t;
		ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&m->stop_cond, &m->stop_lock, &ts);
	}
	enum machine_stop why = m->stop;
	pthread_mutex_unlock(&m->stop_lock);
	if (why == STOP_NONE) {
		machine_request_stop(m, late, late == STOP_TIMEOUT ? "timeout" : "interrupted");
		why = late;
	}
	return why;
}

static enum vmm_exit_reason reason_of(enum machine_stop s)
{
	switch (s) {
	case STOP_POWEROFF: return VMM_EXIT_POWEROFF;
	case STOP_MATCHED: return VMM_EXIT_MATCHED;
	case STOP_TIMEOUT: return VMM_EXIT_TIMEOUT;
	case STOP_TRIPLE_FAULT: return VMM_EXIT_TRIPLE_FAULT;
	case STOP_DEBUG_EXIT: return VMM_EXIT_DEBUG_EXIT;
	case STOP_INTERRUPTED: return VMM_EXIT_INTERRUPTED;
	default: return VMM_EXIT_ERROR;
	}
}

/* Build/run/teardown until a stop that is not a reset. */
static void run_boards(struct machine *m)
{
	const struct vmm_opts *o = m->opts;
	struct vmm_result *res = m->res;
	unsigned max_resets = o->max_resets ? o->max_resets : DEFAULT_MAX_RESETS;
	double deadline = o->timeout_s > 0 ? m->t0 + o->timeout_s : 0;
	for (;;) {
		int r = machine_build(m);
		if (r == 0 && o->seccomp && !res->seccomp_active) {
			r = vmm_sandbox_enter();
			res->seccomp_active = r == 0;
			if (r == -ENOTSUP)
				r = 0; /* sanitizer builds: run unconfined, the result says so */
		}
		enum machine_stop why = r < 0 ? STOP_ERROR : wait_stop(m, deadline);
		if (r < 0)
			snprintf(res->error, sizeof(res->error), "%s", vdisk_errmsg());
		else if (why == STOP_ERROR)
			snprintf(res->error, sizeof(res->error), "%s", m->stop_msg);
		machine_teardown(m);
		if (why == STOP_RESET && res->resets < max_resets) {
			res->resets++;
			continue;
		}
		if (why == STOP_RESET)
			snprintf(res->error, sizeof(res->error), "more than %u resets", max_resets);
		res->reason = why == STOP_RESET ? VMM_EXIT_ERROR : reason_of(why);
		return;
	}
}

/* The NVRAM counters, and a write-through failure turned into the run's error: the
 * guest's variables did not all reach the file. */
static void close_flash(struct machine *m)
{
	struct vmm_result *res = m->res;
	struct vmm_exit_stats *st = &res->exits;
	st->nvram_programs = m->vars.stats.programs;
	st->nvram_erases = m->vars.stats.erases;
	st->nvram_syncs = m->vars.stats.syncs;
	st->nvram_refused = m->vars.stats.refused + m->code.stats.refused;
	st->nvram_set_bits = m->vars.stats.set_bits;
	int r = pflash_close(&m->vars);
	pflash_close(&m->code);
	/* The failed pwrite ran on a vCPU thread, whose vdisk_errmsg() this thread cannot
	 * see: say it here. */
	if (r < 0 && res->reason != VMM_EXIT_ERROR) {
		res->reason = VMM_EXIT_ERROR;
		snprintf(res->error, sizeof(res->error), "NVRAM file %s: writing the firmware's "
			 "variables failed (%s); the file holds the store as it was before the "
			 "failed write", m->opts->cfg->nvram_path, strerror(-r));
	}
}

static void release(struct machine *m)
{
	machine_input_stop(m);
	close_flash(m);
	vmm_kvm_close(&m->kvm);
	for (unsigned i = 0; i < m->n_disks; i++)
		(void)vdisk_close(m->disks[i]);
	if (m->debugcon)
		fclose(m->debugcon);
	if (m->trace)
		fclose(m->trace);
	if (m->have_expect)
		regfree(&m->expect);
	free(m->firmware);
	pthread_cond_destroy(&m->stop_cond);
	pthread_mutex_destroy(&m->stop_lock);
	pthread_mutex_destroy(&m->dev_lock);
	free(m);
}

int vmm_run(const struct vmm_opts *opts, struct vmm_result *res)
{
	memset(res, 0, sizeof(*res));
	res->first_output_s = res->match_s = -1;
	res->reason = VMM_EXIT_ERROR;
	struct machine *m = calloc(1, sizeof(*m));
	if (!m)
		return vdisk_fail(ENOMEM, "out of memory for the machine");
	m->opts = opts;
	m->res = res;
	m->kvm.kvm_fd = m->kvm.vm_fd = -1;
	m->vars.fd = m->code.fd = -1;
	m->uefi = opts->cfg->generation == 2;
	pthread_mutex_init(&m->dev_lock, NULL);
	pthread_mutex_init(&m->stop_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	m->t0 = machine_now();

	int r = vmm_check_cfg(opts->cfg);
	if (r == 0 && opts->cfg->generation == 2 && !opts->cfg->nvram_path)
		r = vdisk_fail(EINVAL, "generation 2 needs an NVRAM file (firmware.nvram), a "
			       "copy of %s", DEFAULT_OVMF_VARS);
	if (r == 0)
		r = prepare(m);
	if (r == 0)
		run_boards(m);
	else
		snprintf(res->error, sizeof(res->error), "%s", vdisk_errmsg());
	res->total_s = machine_now() - m->t0;
	release(m);
	return r;
}
