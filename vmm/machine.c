/* vmm/machine.c - the board: guest memory and firmware, the port map, fw_cfg contents,
 * vCPU threads. machine_wire() is the one place that says which device sits where. */
#include <ctype.h>
#include <errno.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/acpi.h"
#include "vmm/machine.h"

#define LOWMEM_MAX_BYTES 0x80000000ull /* PCI hole from 2 GiB: both firmwares agree */
#define BIOS_LOW_COPY_BYTES 0x20000u   /* last 128 KiB of the BIOS also at 0xE0000 */
#define KVM_RESERVED_GPA 0xFEFFC000ull /* identity map + TSS (kvm.c) */
#define KVM_RESERVED_BYTES 0x4000u
#define E820_RAM 1
#define E820_RESERVED 2
#define VIRTIO_FIRST_SLOT 2
#define COM1_GSI 4
#define OVMF_PMBA 0xB000 /* OVMF programs PIIX4's PMBA here, and its reset library assumes it */

enum { SLOT_LOW_RAM, SLOT_FIRMWARE, SLOT_HIGH_RAM, SLOT_VARS };

double machine_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- stopping ---- */

void machine_request_stop(struct machine *m, enum machine_stop why, const char *msg)
{
	pthread_mutex_lock(&m->stop_lock);
	if (m->stop == STOP_NONE) {
		m->stop = why;
		snprintf(m->stop_msg, sizeof(m->stop_msg), "%s", msg ? msg : "");
		pthread_cond_broadcast(&m->stop_cond);
	}
	pthread_mutex_unlock(&m->stop_lock);
	/* immediate_exit first, then the signal: a vCPU about to enter KVM_RUN returns at once,
	 * one already inside is interrupted. */
	for (unsigned i = 0; i < m->n_vcpus; i++)
		vmm_vcpu_request_exit(&m->vcpus[i]);
	for (unsigned i = 0; i < m->n_threads; i++)
		pthread_kill(m->threads[i], SIGUSR1);
}

static bool stopping(void *mv)
{
	struct machine *m = mv;
	return __atomic_load_n(&m->stop, __ATOMIC_SEQ_CST) != STOP_NONE;
}

static void poweroff(void *mv)
{
	machine_request_stop(mv, STOP_POWEROFF, "guest powered off");
}

static void reset(struct machine *m, const char *how)
{
	machine_request_stop(m, STOP_RESET, how);
}

/* ---- small chipset registers that need no file of their own ---- */

/* Port 0x92 (fast A20/reset): a real register, OVMF read-modify-writes it; bit 0 0->1
 * resets. */
static void port92_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct machine *m = dev;
	(void)off, (void)size;
	if (!is_write) {
		*val = m->port92;
		return;
	}
	bool pulse = (*val & 1) && !(m->port92 & 1);
	m->port92 = (uint8_t)(*val & 0x02);
	if (pulse)
		reset(m, "reset through port 0x92");
}

/* 0xCF8-0xCFF: config mechanism #1, except a byte at 0xCF9 = PIIX reset control. */
static void pci_config_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct machine *m = dev;
	if (pci_bus_config_pio(&m->pci, off, size, val, is_write))
		return;
	if (off != 1 || size != 1) {
		if (!is_write)
			*val = 0xFFFFFFFFu;
		return;
	}
	if (!is_write) {
		*val = m->reset_control;
		return;
	}
	m->reset_control = (uint8_t)(*val & 0x02);
	if (*val & 0x04)
		reset(m, "reset through port 0xCF9");
}

/* 0x64: no i8042 (status reads 0xFF so probes give up quickly), but the 0xFE pulse-reset
 * command still resets, as firmware and Linux use it. */
static void i8042_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	(void)off, (void)size;
	if (!is_write)
		*val = 0xFFFFFFFFu;
	else if ((*val & 0xFF) == 0xFE)
		reset(dev, "reset through the keyboard controller (0x64 <- 0xFE)");
}

/* 0x402: QEMU debugcon. Reading 0xE9 tells SeaBIOS to log there. */
static void debugcon_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct machine *m = dev;
	(void)off, (void)size;
	if (!is_write)
		*val = m->debugcon ? 0xE9 : 0xFF;
	else if (m->debugcon)
		fputc((int)(*val & 0xFF), m->debugcon);
}

/* 0xF4: isa-debug-exit; the guest's byte v becomes exit code (v << 1) | 1 like QEMU. */
static void debug_exit_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	struct machine *m = dev;
	(void)off, (void)size;
	if (!is_write) {
		*val = 0xFFFFFFFFu;
		return;
	}
	m->res->debug_exit_code = (int)((*val & 0xFF) << 1 | 1);
	machine_request_stop(m, STOP_DEBUG_EXIT, "guest wrote the debug-exit port 0xF4");
}

/* ---- the serial console ---- */

/* Keep the line, minus terminal escape sequences, for the result. */
static void keep_last_line(struct machine *m)
{
	char *out = m->res->last_serial_line;
	size_t n = 0, cap = sizeof(m->res->last_serial_line) - 1;
	for (size_t i = 0; i < m->line_len && n < cap; i++) {
		unsigned char c = (unsigned char)m->line[i];
		if (c == 0x1B) { /* an ANSI sequence: ESC, parameters, a final letter */
			while (++i < m->line_len && !isalpha((unsigned char)m->line[i]))
				;
			continue;
		}
		if (c >= 0x20 && c < 0x7F)
			out[n++] = (char)c;
	}
	if (n)
		out[n] = '\0';
}

static void check_line(struct machine *m)
{
	m->line[m->line_len] = '\0';
	keep_last_line(m);
	if (m->have_expect && m->res->match_s < 0 && regexec(&m->expect, m->line, 0, NULL, 0) == 0) {
		m->res->match_s = machine_now() - m->t0;
		machine_request_stop(m, STOP_MATCHED, "serial output matched");
	}
	m->line_len = 0;
}

static void serial_tx(void *mv, uint8_t byte)
{
	struct machine *m = mv;
	if (!m->seen_output) {
		m->seen_output = true;
		m->res->first_output_s = machine_now() - m->t0;
	}
	/* A closed terminal must not stop the guest: the write's result is ignored. */
	if (m->opts->serial_fd >= 0)
		(void)!write(m->opts->serial_fd, &byte, 1);
	if (byte == '\r')
		return;
	if (byte == '\n' || m->line_len == MACHINE_LINE_BYTES - 1) {
		check_line(m);
		if (byte == '\n')
			return;
	}
	m->line[m->line_len++] = (char)byte;
}

/* ---- the port map ---- */

static int add_pio(struct machine *m, uint16_t base, uint16_t len,
		   void (*fn)(void *, unsigned, unsigned, uint32_t *, bool), void *dev,
		   uint64_t *counter)
{
	if (m->n_pio == MACHINE_MAX_PIO)
		return vdisk_fail(ENOSPC, "machine: more than %d port ranges", MACHINE_MAX_PIO);
	m->pio[m->n_pio++] = (struct machine_pio_range){ base, len, { fn, dev }, counter };
	return 0;
}

static void irq_line(void *mv, unsigned gsi, int level)
{
	struct machine *m = mv;
	(void)vmm_kvm_irq_line(&m->kvm, gsi, level);
}

/* The whole machine, in bring-up order. Ports not listed here and not claimed by a PCI
 * I/O window read as all-ones; MMIO outside RAM/ROM reads as all-ones. */
static int machine_wire(struct machine *m)
{
	struct vmm_exit_stats *st = &m->res->exits;
	struct vmm_irq irq = { irq_line, m };
	int r = 0;

	ns16550_init(&m->uart, serial_tx, m, &irq, COM1_GSI);
	mc146818_init(&m->rtc, NULL);
	mc146818_set_pc_config(&m->rtc, m->mem.low_bytes, m->mem.high_bytes, m->n_vcpus);
	piix4_pm_init(&m->pm, NULL, poweroff, m);
	m->pm.cpus = m->n_vcpus;

	/*   port    len  handler            device     exit-statistics bucket */
	r |= add_pio(m, 0x0070, 2, mc146818_pio, &m->rtc, &st->io_rtc);
	r |= add_pio(m, 0x0064, 1, i8042_pio, m, &st->io_misc);
	r |= add_pio(m, 0x0092, 1, port92_pio, m, &st->io_misc);
	r |= add_pio(m, 0x00B2, 2, piix4_pm_apm_pio, &m->pm, &st->io_pm);
	r |= add_pio(m, 0x00F4, 1, debug_exit_pio, m, &st->io_misc);
	r |= add_pio(m, 0x03F8, 8, ns16550_pio, &m->uart, &st->io_serial);
	r |= add_pio(m, 0x0402, 1, debugcon_pio, m, &st->io_debugcon);
	r |= add_pio(m, 0x0510, FW_CFG_PORTS, fw_cfg_pio, &m->fw_cfg, &st->io_fw_cfg);
	r |= add_pio(m, 0x0CF8, 8, pci_config_pio, m, &st->io_pci_config);
	/* QEMU's PIIX4 extensions, for SeaBIOS's DSDT; OVMF's CPU-hotplug probe reads the
	 * 0xAF00 bitmap as "no modern interface", as it would all-ones (README.md). */
	r |= add_pio(m, 0xAE00, 0x18, piix4_pm_pcihp_pio, &m->pm, &st->io_pm);
	r |= add_pio(m, 0xAF00, 0x20, piix4_pm_cpuhp_pio, &m->pm, &st->io_pm);
	r |= add_pio(m, 0xAFE0, 4, piix4_pm_gpe_pio, &m->pm, &st->io_pm);
	if (r)
		return -ENOSPC;

	/*   PCI 00:00.0 host bridge, 00:01.0 ISA bridge, 00:01.3 ACPI PM, 00:02.0+ virtio-blk */
	pci_bus_init(&m->pci);
	pci_i440fx_init(&m->i440fx);
	pci_piix3_init(&m->piix3);
	r = pci_bus_add(&m->pci, &m->i440fx);
	if (r == 0)
		r = pci_bus_add(&m->pci, &m->piix3);
	if (r == 0)
		r = pci_bus_add(&m->pci, &m->pm.pci);
	for (unsigned i = 0; r == 0 && i < m->n_disks; i++) {
		virtio_blk_init(&m->vblk[i], VIRTIO_FIRST_SLOT + i, m->disks[i], m->disk_ro[i],
				&m->mem, &irq, &m->piix3);
		m->n_vblk = i + 1;
		r = pci_bus_add(&m->pci, &m->vblk[i].pci);
	}
	return r;
}

/* ---- fw_cfg contents ---- */

static void e820_entry(uint8_t *e, uint64_t addr, uint64_t len, uint32_t type)
{
	put_le64(e, addr);
	put_le64(e + 8, len);
	put_le32(e + 16, type);
}

static int fill_fw_cfg(struct machine *m)
{
	uint8_t e820[3 * 20];
	unsigned n = 0;
	e820_entry(e820 + 20 * n++, 0, m->mem.low_bytes, E820_RAM);
	if (m->mem.high_bytes)
		e820_entry(e820 + 20 * n++, VMM_4GIB, m->mem.high_bytes, E820_RAM);
	e820_entry(e820 + 20 * n++, KVM_RESERVED_GPA, KVM_RESERVED_BYTES, E820_RESERVED);

	int r = fw_cfg_init(&m->fw_cfg, &m->mem);
	/* NOGRAPHIC: there is no VGA, so SeaBIOS puts its int 10h text on COM1 (sercon). */
	if (r == 0)
		r = fw_cfg_add_u16(&m->fw_cfg, FW_CFG_NOGRAPHIC, 1);
	if (r == 0)
		r = fw_cfg_add_u16(&m->fw_cfg, FW_CFG_NB_CPUS, (uint16_t)m->n_vcpus);
	if (r == 0)
		r = fw_cfg_add_u16(&m->fw_cfg, FW_CFG_MAX_CPUS, (uint16_t)m->n_vcpus);
	if (r == 0)
		r = fw_cfg_add_u16(&m->fw_cfg, FW_CFG_BOOT_MENU, 0); /* no 2.5 s ESC prompt */
	if (r == 0)
		r = fw_cfg_add_u32(&m->fw_cfg, FW_CFG_IRQ0_OVERRIDE, 0); /* KVM default routing */
	if (r == 0)
		r = fw_cfg_add_file(&m->fw_cfg, "etc/e820", e820, 20 * n);
	/* OVMF 2022.11 has no ACPI tables of its own: they come through the table-loader.
	 * SeaBIOS (gen 1) builds its own, which work, so gen 1 is left as it was. No
	 * `bootorder` file either way: it would make OVMF prune the VM's own boot entries. */
	if (r == 0 && m->uefi) {
		struct acpi_machine am;
		acpi_machine_pc(&am, m->n_vcpus, m->mem.low_bytes, OVMF_PMBA, m->n_vblk);
		r = acpi_fw_cfg_add(&m->fw_cfg, &am);
	}
	return r;
}

/* ---- memory ---- */

static int map_memory(struct machine *m)
{
	const struct vmcfg *cfg = m->opts->cfg;
	m->ram_bytes = cfg->memory_bytes;
	m->ram = mmap(NULL, m->ram_bytes, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->ram == MAP_FAILED) {
		m->ram = NULL;
		return vdisk_fail(errno, "cannot map %llu bytes of guest RAM: %s",
				  (unsigned long long)m->ram_bytes, strerror(errno));
	}
	m->mem.low = m->ram;
	m->mem.low_bytes = m->ram_bytes < LOWMEM_MAX_BYTES ? m->ram_bytes : LOWMEM_MAX_BYTES;
	m->mem.high_bytes = m->ram_bytes - m->mem.low_bytes;
	m->mem.high = m->mem.high_bytes ? m->ram + m->mem.low_bytes : NULL;
	int r = vmm_kvm_map(&m->kvm, SLOT_LOW_RAM, 0, m->mem.low_bytes, m->mem.low, false);
	if (r == 0 && m->mem.high)
		r = vmm_kvm_map(&m->kvm, SLOT_HIGH_RAM, VMM_4GIB, m->mem.high_bytes, m->mem.high,
				false);
	return r;
}

/* OVMF's VARS unit behaves like QEMU's "romd" flash (section 5.3): in read-array mode it
 * is a read-only slot over the flash image, so the firmware's many reads of its variable
 * store run at memory speed and only writes exit; any other mode (status, program/erase
 * set-up) drops the slot so that reads exit too and see the status register. pflash calls
 * this under dev_lock whenever the mode crosses that line. */
static void vars_array_mode(void *mv, bool on)
{
	struct machine *m = mv;
	int r = vmm_kvm_map(&m->kvm, SLOT_VARS, m->vars_gpa, on ? m->vars.bytes : 0,
			    m->vars.image, true);
	if (r < 0)
		machine_request_stop(m, STOP_ERROR, vdisk_errmsg());
}

/* Generation 2: CODE is a read-only slot ending at 4 GiB (executed in place), VARS the
 * flash device right below it, back in read-array mode after a reset. */
static int map_uefi_flash(struct machine *m)
{
	struct pflash *v = &m->vars;
	v->array_mode = NULL;
	pflash_reset(v);
	int r = vmm_kvm_map(&m->kvm, SLOT_FIRMWARE, m->code_gpa, m->firmware_bytes, m->rom, true);
	if (r == 0)
		r = vmm_kvm_map(&m->kvm, SLOT_VARS, m->vars_gpa, v->bytes, v->image, true);
	v->array_mode = vars_array_mode;
	v->opaque = m;
	return r;
}

/* The BIOS image ends at 4 GiB (reset vector) and its last 128 KiB is also plain RAM at
 * 0xE0000 (what QEMU's isa-bios alias gives SeaBIOS, section 1.1). A fresh copy per build,
 * so a reset starts from a pristine image. OVMF needs no low copy. */
static int map_firmware(struct machine *m)
{
	size_t n = m->firmware_bytes;
	m->rom = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->rom == MAP_FAILED) {
		m->rom = NULL;
		return vdisk_fail(errno, "cannot map the firmware: %s", strerror(errno));
	}
	memcpy(m->rom, m->firmware, n);
	if (m->uefi)
		return map_uefi_flash(m);
	size_t low = n < BIOS_LOW_COPY_BYTES ? n : BIOS_LOW_COPY_BYTES;
	memcpy(m->ram + 0x100000 - low, m->firmware + n - low, low);
	return vmm_kvm_map(&m->kvm, SLOT_FIRMWARE, VMM_4GIB - n, n, m->rom, true);
}

/* ---- exits ---- */

static struct machine_pio_range *find_pio(struct machine *m, uint16_t port)
{
	for (unsigned i = 0; i < m->n_pio; i++) {
		struct machine_pio_range *p = &m->pio[i];
		if (port >= p->base && port - p->base < p->len)
			return p;
	}
	return NULL;
}

static void machine_pio(void *mv, uint16_t port, unsigned size, uint32_t *val, bool is_write)
{
	struct machine *m = mv;
	struct vmm_exit_stats *st = &m->res->exits;
	pthread_mutex_lock(&m->dev_lock);
	struct machine_pio_range *p = find_pio(m, port);
	if (p) {
		p->h.fn(p->h.dev, port - p->base, size, val, is_write);
		(*p->counter)++;
	} else if (pci_bus_io(&m->pci, port, size, val, is_write)) {
		uint16_t pm = piix4_pm_io_base(&m->pm);
		if (pm && port >= pm && port - pm < PIIX4_PM_IO_BYTES)
			st->io_pm++;
		else
			st->io_virtio++;
	} else {
		if (!is_write)
			*val = 0xFFFFFFFFu; /* unassigned: like an empty ISA bus */
		st->io_unassigned++;
	}
	if (!is_write && size < 4)
		*val &= (1u << (8 * size)) - 1;
	if (m->trace)
		fprintf(m->trace, "%.6f io %s %04x/%u %08x\n", machine_now() - m->t0,
			is_write ? "out" : "in", port, size, *val);
	pthread_mutex_unlock(&m->dev_lock);
}

/* The flash unit at gpa, if any (generation 2). CODE only ever exits for writes (it is a
 * read-only slot); the unit ignores them. */
static struct pflash *find_flash(struct machine *m, uint64_t gpa, uint32_t *off)
{
	if (!m->uefi)
		return NULL;
	if (gpa >= m->vars_gpa && gpa - m->vars_gpa < m->vars.bytes) {
		*off = (uint32_t)(gpa - m->vars_gpa);
		return &m->vars;
	}
	if (gpa >= m->code_gpa && gpa < VMM_4GIB) {
		*off = (uint32_t)(gpa - m->code_gpa);
		return &m->code;
	}
	return NULL;
}

/* Apart from OVMF's flash nothing of ours lives in MMIO: reads float high (the TPM/HPET
 * probes rely on 0xFF), writes vanish (including writes to the read-only firmware slot). */
static void machine_mmio(void *mv, uint64_t gpa, uint8_t *data, unsigned len, bool is_write)
{
	struct machine *m = mv;
	uint32_t off = 0;
	pthread_mutex_lock(&m->dev_lock);
	struct pflash *f = find_flash(m, gpa, &off);
	if (f && is_write)
		pflash_write(f, off, data, len);
	else if (f)
		pflash_read(f, off, data, len);
	else if (!is_write)
		memset(data, 0xFF, len);
	if (f)
		m->res->exits.mmio_pflash++;
	if (m->trace)
		fprintf(m->trace, "%.6f mmio %s %llx/%u %02x\n", machine_now() - m->t0,
			is_write ? "write" : "read", (unsigned long long)gpa, len, data[0]);
	pthread_mutex_unlock(&m->dev_lock);
}

static void machine_shutdown(void *mv)
{
	struct machine *m = mv;
	if (m->opts->triple_fault_resets)
		reset(m, "triple fault (KVM_EXIT_SHUTDOWN)");
	else
		machine_request_stop(m, STOP_TRIPLE_FAULT, "triple fault (KVM_EXIT_SHUTDOWN)");
}

static void machine_fail(void *mv, const char *why)
{
	machine_request_stop(mv, STOP_ERROR, why);
}

static void machine_count(void *mv, unsigned reason, uint16_t port)
{
	struct vmm_exit_stats *st = &((struct machine *)mv)->res->exits;
	uint64_t *c;
	(void)port;
	switch (reason) {
	case KVM_EXIT_IO: c = &st->io; break;
	case KVM_EXIT_MMIO: c = &st->mmio; break;
	case KVM_EXIT_SHUTDOWN: c = &st->shutdown; break;
	case KVM_EXIT_INTR: c = &st->intr; break;
	case KVM_EXIT_HLT: c = &st->hlt; break;
	default: c = &st->other; break;
	}
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&st->total, 1, __ATOMIC_RELAXED);
}

static const struct vmm_exit_ops machine_exit_ops = {
	.pio = machine_pio,
	.mmio = machine_mmio,
	.shutdown = machine_shutdown,
	.fail = machine_fail,
	.count = machine_count,
	.stopping = stopping,
};

static void *vcpu_thread(void *arg)
{
	struct vmm_vcpu *v = arg;
	vmm_vcpu_loop(v, &machine_exit_ops, v->owner);
	return NULL;
}

/* ---- build and teardown ---- */

static int start_vcpus(struct machine *m)
{
	unsigned n = m->opts->cfg->cpus;
	for (unsigned i = 0; i < n; i++) {
		m->vcpus[i].fd = -1;
		int r = vmm_vcpu_open(&m->kvm, i, n, &m->vcpus[i]);
		if (r < 0)
			return r;
		m->vcpus[i].owner = m;
		m->n_vcpus = i + 1;
	}
	/* Every AP runs from the start: with the in-kernel LAPIC it waits for INIT-SIPI. */
	for (unsigned i = 0; i < n; i++) {
		int e = pthread_create(&m->threads[i], NULL, vcpu_thread, &m->vcpus[i]);
		if (e)
			return vdisk_fail(e, "cannot start vCPU thread %u: %s", i, strerror(e));
		m->n_threads = i + 1;
	}
	return 0;
}

int machine_build(struct machine *m)
{
	m->stop = STOP_NONE;
	m->n_pio = m->n_vblk = m->n_vcpus = m->n_threads = 0;
	m->port92 = m->reset_control = 0;
	m->n_vcpus = m->opts->cfg->cpus; /* CMOS and fw_cfg need the count before the vCPUs */
	int r = vmm_kvm_create_vm(&m->kvm);
	if (r == 0)
		r = map_memory(m);
	if (r == 0)
		r = map_firmware(m);
	if (r == 0)
		r = machine_wire(m);
	if (r == 0)
		r = fill_fw_cfg(m);
	m->n_vcpus = 0;
	if (r == 0)
		r = start_vcpus(m);
	pthread_mutex_lock(&m->dev_lock);
	m->board_up = r == 0;
	pthread_mutex_unlock(&m->dev_lock);
	return r;
}

static void collect_stats(struct machine *m)
{
	struct vmm_exit_stats *st = &m->res->exits;
	for (unsigned i = 0; i < m->n_vblk; i++) {
		const struct virtio_blk_stats *s = &m->vblk[i].stats;
		st->virtio_reads += s->reads;
		st->virtio_writes += s->writes;
		st->virtio_flushes += s->flushes;
		st->virtio_errors += s->io_errors + s->unsupported + s->bad_chains;
	}
}

void machine_teardown(struct machine *m)
{
	pthread_mutex_lock(&m->dev_lock);
	m->board_up = false;
	pthread_mutex_unlock(&m->dev_lock);
	machine_request_stop(m, STOP_ERROR, "teardown");
	for (unsigned i = 0; i < m->n_threads; i++)
		pthread_join(m->threads[i], NULL);
	m->n_threads = 0;
	for (unsigned i = 0; i < m->n_vcpus; i++)
		vmm_vcpu_close(&m->vcpus[i]);
	m->n_vcpus = 0;
	collect_stats(m);
	m->n_vblk = 0;
	fw_cfg_free(&m->fw_cfg);
	vmm_kvm_destroy_vm(&m->kvm);
	if (m->rom)
		munmap(m->rom, m->firmware_bytes);
	if (m->ram)
		munmap(m->ram, m->ram_bytes);
	m->rom = m->ram = NULL;
	memset(&m->mem, 0, sizeof(m->mem));
}

/* ---- host input for COM1 ---- */

/* Hand one byte to the UART of the current board; false while there is no board or its
 * receive FIFO is full (the byte is retried: the guest reads at its own pace). */
static bool feed_byte(struct machine *m, uint8_t b)
{
	pthread_mutex_lock(&m->dev_lock);
	bool ok = m->board_up && ns16550_rx_push(&m->uart, b) == 0;
	pthread_mutex_unlock(&m->dev_lock);
	return ok;
}

static void *input_thread(void *arg)
{
	struct machine *m = arg;
	int fd = m->opts->serial_in_fd;
	uint8_t buf[64];
	ssize_t n = 0, i = 0;
	while (!m->input_done) {
		if (i < n) {
			uint8_t b = buf[i] == '\n' && m->opts->serial_in_tty ? '\r' : buf[i];
			if (feed_byte(m, b))
				i++;
			else
				poll(NULL, 0, 10);
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		i = 0;
		if (n <= 0)
			break; /* end of input: the guest just sees no more bytes */
	}
	return NULL;
}

int machine_input_start(struct machine *m)
{
	if (m->opts->serial_in_fd < 0)
		return 0;
	int e = pthread_create(&m->input_thread, NULL, input_thread, m);
	if (e)
		return vdisk_fail(e, "cannot start the serial input thread: %s", strerror(e));
	m->have_input_thread = true;
	return 0;
}

void machine_input_stop(struct machine *m)
{
	if (!m->have_input_thread)
		return;
	m->input_done = true;
	pthread_join(m->input_thread, NULL);
	m->have_input_thread = false;
}
