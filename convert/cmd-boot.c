/* convert/cmd-boot.c - `genshift boot` (run a VM until it powers off) and `genshift verify`
 * (boot, watch the serial port for a pattern, report). Both run the VMM of vmm/ directly
 * when /dev/kvm is usable, and otherwise re-run themselves inside the nested-KVM harness
 * (tests/harness/with-kvm), saying so on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/cli.h"
#include "vhdx/vdisk.h"
#include "vmm/vmm.h"

#define MAX_ARGV 128
#define IN_HARNESS_ENV "GENSHIFT_IN_HARNESS"

static const char boot_usage[] =
	"usage: genshift boot VMCONFIG [OPTIONS]\n"
	"       genshift boot --gen 1|2 --disk IMAGE [--memory SIZE] [--cpus N] [OPTIONS]\n"
	"  Boots the VM on KVM (SeaBIOS for generation 1, OVMF for generation 2) with COM1 on\n"
	"  the terminal, until the guest powers off. VMCONFIG is a genshift VM configuration\n"
	"  (docs/vmcfg.md); --memory/--cpus override it.\n"
	"\n"
	"options:\n"
	"  --nvram FILE        generation 2: the VM's UEFI variable store (OVMF VARS file);\n"
	"                      every variable the firmware writes persists there. Default:\n"
	"                      the configuration's firmware.nvram, else NAME_VARS.fd beside\n"
	"                      the configuration (or the disk), created from\n"
	"                      /usr/share/OVMF/OVMF_VARS_4M.fd if it does not exist yet\n"
	"  --serial-log FILE   COM1 output to FILE instead of the terminal\n"
	"  --debugcon FILE     SeaBIOS debug log (port 0x402) to FILE\n"
	"  --trace-io FILE     log every port and MMIO exit (time, port, size, value) to FILE\n"
	"  --serial-input FILE bytes for COM1's receiver (default for boot: the terminal, when\n"
	"                      stdin is one; lines are sent as you press Enter)\n"
	"  --timeout SECONDS   stop the guest after SECONDS\n"
	"  --accel auto|kvm|nested\n"
	"                      auto (default): /dev/kvm when usable (and the CPU shows\n"
	"                      vmx/svm), else the nested-KVM harness (tests/harness/with-kvm);\n"
	"                      kvm: /dev/kvm or fail;\n"
	"                      nested: always the harness\n"
	"  --no-sandbox        do not confine the VMM with seccomp once the VM is built\n"
	"  --json              print the result as JSON on stdout (COM1 then goes to stderr\n"
	"                      unless --serial-log is given)\n"
	"\n"
	"exit status: 0 the guest powered off, 1 the VMM failed, 2 usage error,\n"
	"             3 the guest did not power off (timeout, debug-exit port, interrupted\n"
	"             by SIGINT/SIGTERM: the guest is stopped and its disks closed cleanly)\n";

static const char verify_usage[] =
	"usage: genshift verify (VMCONFIG | --gen 1|2 --disk IMAGE [--memory SIZE] [--cpus N])\n"
	"                       --expect REGEX --timeout SECONDS [--json] [OPTIONS]\n"
	"  Boots the VM, matches REGEX (POSIX extended) against each line of COM1 output and\n"
	"  stops the guest at the first match. Reports matched or not, the time to the first\n"
	"  firmware output, the time to the match, and why the run ended: matched, timeout,\n"
	"  poweroff, triple-fault (a triple fault ends a verify run), debug-exit or vmm-error.\n"
	"  Options as for `genshift boot`; COM1 output goes only to --serial-log FILE.\n"
	"\n"
	"exit status: 0 matched, 1 the VMM failed, 2 usage error, 3 not matched\n";

enum { OPT_GEN = 256, OPT_DISK, OPT_MEMORY, OPT_CPUS, OPT_SERIAL_LOG, OPT_DEBUGCON,
       OPT_TIMEOUT, OPT_ACCEL, OPT_NO_SANDBOX, OPT_JSON, OPT_EXPECT, OPT_TRACE, OPT_INPUT,
       OPT_NVRAM };

static const struct option boot_options[] = {
	{ "gen", required_argument, NULL, OPT_GEN },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "serial-log", required_argument, NULL, OPT_SERIAL_LOG },
	{ "debugcon", required_argument, NULL, OPT_DEBUGCON },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "no-sandbox", no_argument, NULL, OPT_NO_SANDBOX },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{ "trace-io", required_argument, NULL, OPT_TRACE },
	{ "serial-input", required_argument, NULL, OPT_INPUT },
	{ "nvram", required_argument, NULL, OPT_NVRAM },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct boot_args {
	bool verify, json, no_sandbox;
	const char *config, *disk, *serial_log, *debugcon, *expect, *accel, *trace, *input;
	const char *nvram;
	unsigned gen, cpus;
	uint64_t memory_bytes;
	double timeout_s;
};

static int usage_error(const struct boot_args *a, const char *msg)
{
	fprintf(stderr, "genshift %s: %s\n(see 'genshift %s --help')\n",
		a->verify ? "verify" : "boot", msg, a->verify ? "verify" : "boot");
	return GS_EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_option(struct boot_args *a, int c, const char *arg)
{
	char *end;
	switch (c) {
	case OPT_GEN: return parse_uint(arg, 1, 2, &a->gen) ? usage_error(a, "--gen: 1 or 2") : 0;
	case OPT_DISK: a->disk = arg; return 0;
	case OPT_MEMORY:
		return gs_parse_size(arg, &a->memory_bytes) ? usage_error(a, "--memory: bad size") : 0;
	case OPT_CPUS:
		return parse_uint(arg, 1, VMCFG_MAX_CPUS, &a->cpus)
		       ? usage_error(a, "--cpus: 1..64") : 0;
	case OPT_SERIAL_LOG: a->serial_log = arg; return 0;
	case OPT_DEBUGCON: a->debugcon = arg; return 0;
	case OPT_TIMEOUT:
		a->timeout_s = strtod(arg, &end);
		return (*end || end == arg || a->timeout_s <= 0)
		       ? usage_error(a, "--timeout: a positive number of seconds") : 0;
	case OPT_ACCEL:
		a->accel = arg;
		return (strcmp(arg, "auto") && strcmp(arg, "kvm") && strcmp(arg, "nested"))
		       ? usage_error(a, "--accel: auto, kvm or nested") : 0;
	case OPT_NO_SANDBOX: a->no_sandbox = true; return 0;
	case OPT_JSON: a->json = true; return 0;
	case OPT_EXPECT: a->expect = arg; return 0;
	case OPT_TRACE: a->trace = arg; return 0;
	case OPT_INPUT: a->input = arg; return 0;
	case OPT_NVRAM: a->nvram = arg; return 0;
	default: return usage_error(a, "unknown option");
	}
}

static int parse_args(int argc, char **argv, struct boot_args *a)
{
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "h", boot_options, NULL)) != -1) {
		if (c == 'h') {
			fputs(a->verify ? verify_usage : boot_usage, stdout);
			return -1;
		}
		int r = parse_option(a, c, optarg);
		if (r)
			return r;
	}
	if (optind < argc)
		a->config = argv[optind++];
	if (optind < argc)
		return usage_error(a, "too many arguments");
	if (!a->config == !a->disk)
		return usage_error(a, "give either VMCONFIG or --disk IMAGE");
	if (a->config && a->gen)
		return usage_error(a, "--gen goes with --disk; VMCONFIG says its generation");
	if (a->verify && (!a->expect || a->timeout_s <= 0))
		return usage_error(a, "verify needs --expect REGEX and --timeout SECONDS");
	if (!a->verify && a->expect)
		return usage_error(a, "--expect belongs to `genshift verify`");
	return 0;
}

/* ---- the NVRAM file of a generation 2 VM ---- */

/* Where a VM that names no NVRAM file keeps one: NAME_VARS.fd beside the configuration
 * (NAME = the file name without .json) or, for --disk, beside the disk (NAME = the disk's
 * file name without its extension). The same path every time, so variables persist. */
static int default_nvram_path(const struct boot_args *a, char **out)
{
	const char *from = a->config ? a->config : a->disk;
	char *tmp = strdup(from);
	if (!tmp)
		return -ENOMEM;
	char *base = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
	char *dot = strrchr(base, '.');
	if (dot && dot != base)
		*dot = '\0';
	int n = asprintf(out, "%.*s%s_VARS.fd", (int)(base - tmp), tmp, base);
	free(tmp);
	return n < 0 ? -ENOMEM : 0;
}

/* Copy the empty variable store to path, which must not exist yet (O_EXCL: an existing
 * store is never overwritten); a failed copy leaves no file behind. */
static int create_nvram(const char *path)
{
	const char *tmpl = vmm_default_nvram_template();
	int in = open(tmpl, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	if (in < 0)
		return vdisk_fail(errno, "NVRAM template %s: %s", tmpl, strerror(errno));
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		r = vdisk_fail(errno, "NVRAM file %s: %s", path, strerror(errno));
		goto close_in;
	}
	char buf[65536];
	uint64_t off = 0;
	ssize_t n;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0) {
		r = vdisk_pwrite(out, path, buf, (size_t)n, off);
		off += (uint64_t)n;
	}
	if (r == 0 && n < 0)
		r = vdisk_fail(errno, "NVRAM template %s: %s", tmpl, strerror(errno));
	if (r == 0 && fsync(out) < 0)
		r = vdisk_fail(errno, "NVRAM file %s: fsync: %s", path, strerror(errno));
	close(out);
	if (r < 0)
		unlink(path);
close_in:
	close(in);
	return r;
}

/* --nvram, else the configuration's firmware.nvram, else the default path; whichever it
 * is, a file that does not exist yet is created from the template (as libvirt does) and
 * the path said on stderr. */
static int choose_nvram(const struct boot_args *a, struct vmcfg *cfg)
{
	int r = 0;
	if (a->nvram) {
		free(cfg->nvram_path);
		cfg->nvram_path = strdup(a->nvram);
		r = cfg->nvram_path ? 0 : -ENOMEM;
	} else if (!cfg->nvram_path) {
		r = default_nvram_path(a, &cfg->nvram_path);
	}
	if (r < 0)
		return vdisk_fail(-r, "out of memory");
	if (access(cfg->nvram_path, F_OK) == 0)
		return 0;
	r = create_nvram(cfg->nvram_path);
	if (r == 0)
		fprintf(stderr, "genshift: created the VM's NVRAM file %s (from %s)\n",
			cfg->nvram_path, vmm_default_nvram_template());
	return r;
}

static int build_cfg(const struct boot_args *a, struct vmcfg **out)
{
	struct vmcfg *cfg;
	int r = a->config ? vmcfg_load(a->config, &cfg)
			  : vmcfg_new_simple(a->gen ? a->gen : 1, a->disk, &cfg);
	if (r < 0)
		return r;
	if (a->memory_bytes)
		cfg->memory_bytes = a->memory_bytes;
	if (a->cpus)
		cfg->cpus = a->cpus;
	/* Refuse what the VMM would refuse before creating files or starting the harness. */
	r = vmm_check_cfg(cfg);
	if (r == 0 && cfg->generation == 2)
		r = choose_nvram(a, cfg);
	else if (r == 0 && a->nvram)
		r = vdisk_fail(EINVAL, "--nvram: the VM is generation %u; an NVRAM file belongs "
			       "to generation 2", cfg->generation);
	if (r < 0) {
		vmcfg_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

/* ---- running through the nested-KVM harness ---- */

/* Hardware virtualisation in the CPU flags. A /dev/kvm without it (this project's sandbox
 * has one, backed by kvm_pvm) runs firmware but hangs Linux guests, so like
 * tests/harness/with-kvm we do not count it as usable. */
static bool cpu_has_vmx_or_svm(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm"));
	if (f)
		fclose(f);
	return found;
}

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return cpu_has_vmx_or_svm();
}

/* with-kvm sits at tests/harness/ of the tree this binary was built in (BUILD/genshift). */
static int find_harness(char *out, size_t n, char *self, size_t self_n)
{
	const char *env = getenv("GENSHIFT_WITH_KVM");
	ssize_t len = readlink("/proc/self/exe", self, self_n - 1);
	if (len <= 0)
		return -errno;
	self[len] = '\0';
	if (env) {
		snprintf(out, n, "%s", env);
	} else {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", self);
		snprintf(out, n, "%s/../tests/harness/with-kvm", dirname(tmp));
	}
	return access(out, X_OK) == 0 ? 0 : -errno;
}

/* Pass the directory of file to the harness as writable (--rw DIR), once. Shares are
 * mounted over the L1's tmpfs, so this also makes files under /tmp visible in there. */
static int add_rw_dir(char **argv, int *argc, char dirs[][PATH_MAX], int *ndirs,
		      const char *file)
{
	char tmp[PATH_MAX], abs[PATH_MAX];
	if (!file || *ndirs >= VMCFG_MAX_DISKS + 4)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s", file);
	if (!realpath(dirname(tmp), abs)) {
		fprintf(stderr, "genshift: %s: %s\n", file, strerror(errno));
		return -1;
	}
	for (int i = 0; i < *ndirs; i++)
		if (!strcmp(dirs[i], abs))
			return 0;
	snprintf(dirs[*ndirs], PATH_MAX, "%s", abs);
	argv[(*argc)++] = (char *)"--rw";
	argv[(*argc)++] = dirs[(*ndirs)++];
	return 0;
}

/* Re-run this very command line inside the harness with --accel kvm. The host root is
 * read-only there, so the directories of writable disks and output files are passed as
 * --rw. Returns only on failure. */
static int run_nested(int argc, char **argv, const struct boot_args *a, const struct vmcfg *cfg)
{
	static char dirs[VMCFG_MAX_DISKS + 4][PATH_MAX];
	char harness[PATH_MAX], self[PATH_MAX];
	char *nargv[MAX_ARGV];
	int n = 0, ndirs = 0;
	if (find_harness(harness, sizeof(harness), self, sizeof(self)) < 0) {
		fprintf(stderr, "genshift: no usable /dev/kvm and no nested-KVM harness at %s\n",
			harness);
		return GS_EXIT_FAIL;
	}
	nargv[n++] = harness;
	int r = 0;
	for (unsigned i = 0; i < cfg->n_disks; i++)
		r |= add_rw_dir(nargv, &n, dirs, &ndirs, cfg->disks[i].path);
	r |= add_rw_dir(nargv, &n, dirs, &ndirs, a->serial_log ? a->serial_log : cfg->serial_log);
	r |= add_rw_dir(nargv, &n, dirs, &ndirs, a->debugcon);
	r |= add_rw_dir(nargv, &n, dirs, &ndirs, a->trace);
	r |= add_rw_dir(nargv, &n, dirs, &ndirs, a->input);
	r |= add_rw_dir(nargv, &n, dirs, &ndirs, cfg->nvram_path);
	if (r)
		return GS_EXIT_FAIL;
	nargv[n++] = self;
	for (int i = 0; i < argc && n < MAX_ARGV - 4; i++)
		nargv[n++] = argv[i];
	nargv[n++] = (char *)"--accel";
	nargv[n++] = (char *)"kvm";
	nargv[n] = NULL;
	fprintf(stderr, "genshift: %s: running the VM through the nested-KVM harness (%s)\n",
		a->accel && !strcmp(a->accel, "nested") ? "--accel nested"
		: "no usable /dev/kvm (missing, or no vmx/svm)", harness);
	fflush(NULL);
	setenv(IN_HARNESS_ENV, "1", 1);
	if (a->accel && !strcmp(a->accel, "nested"))
		setenv("WITH_KVM_MODE", "nested", 1);
	execv(harness, nargv);
	fprintf(stderr, "genshift: cannot run %s: %s\n", harness, strerror(errno));
	return GS_EXIT_FAIL;
}

/* ---- results ---- */

static struct json_object *exits_json(const struct vmm_exit_stats *e)
{
	struct json_object *o = json_object_new_object();
	const struct { const char *k; uint64_t v; } f[] = {
		{ "total", e->total }, { "io", e->io }, { "mmio", e->mmio },
		{ "shutdown", e->shutdown }, { "intr", e->intr }, { "hlt", e->hlt },
		{ "other", e->other }, { "io_serial", e->io_serial }, { "io_fw_cfg", e->io_fw_cfg },
		{ "io_pci_config", e->io_pci_config }, { "io_virtio", e->io_virtio },
		{ "io_pm", e->io_pm }, { "io_rtc", e->io_rtc }, { "io_debugcon", e->io_debugcon },
		{ "io_unassigned", e->io_unassigned }, { "io_misc", e->io_misc },
		{ "virtio_reads", e->virtio_reads }, { "virtio_writes", e->virtio_writes },
		{ "virtio_flushes", e->virtio_flushes }, { "virtio_errors", e->virtio_errors },
		{ "mmio_pflash", e->mmio_pflash }, { "nvram_programs", e->nvram_programs },
		{ "nvram_erases", e->nvram_erases }, { "nvram_syncs", e->nvram_syncs },
		{ "nvram_refused", e->nvram_refused }, { "nvram_set_bits", e->nvram_set_bits },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		json_object_object_add(o, f[i].k, json_object_new_int64((int64_t)f[i].v));
	return o;
}

static struct json_object *seconds_or_null(double s)
{
	return s < 0 ? NULL : json_object_new_double(s);
}

static void print_json(const struct boot_args *a, const struct vmcfg *cfg,
		       const struct vmm_result *res)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "command", json_object_new_string(a->verify ? "verify" : "boot"));
	if (a->verify) {
		json_object_object_add(o, "matched",
				       json_object_new_boolean(res->reason == VMM_EXIT_MATCHED));
		json_object_object_add(o, "expect", json_object_new_string(a->expect));
	}
	json_object_object_add(o, "exit_reason",
			       json_object_new_string(vmm_exit_reason_name(res->reason)));
	json_object_object_add(o, "time_to_first_output_s", seconds_or_null(res->first_output_s));
	json_object_object_add(o, "time_to_match_s", seconds_or_null(res->match_s));
	json_object_object_add(o, "total_s", json_object_new_double(res->total_s));
	json_object_object_add(o, "accel", json_object_new_string(
		getenv(IN_HARNESS_ENV) ? "kvm (nested-KVM harness)" : "kvm"));
	json_object_object_add(o, "generation", json_object_new_int((int)cfg->generation));
	json_object_object_add(o, "cpus", json_object_new_int((int)cfg->cpus));
	if (cfg->nvram_path)
		json_object_object_add(o, "nvram", json_object_new_string(cfg->nvram_path));
	json_object_object_add(o, "resets", json_object_new_int((int)res->resets));
	json_object_object_add(o, "seccomp", json_object_new_boolean(res->seccomp_active));
	if (res->reason == VMM_EXIT_DEBUG_EXIT)
		json_object_object_add(o, "debug_exit_code", json_object_new_int(res->debug_exit_code));
	if (res->error[0])
		json_object_object_add(o, "error", json_object_new_string(res->error));
	json_object_object_add(o, "last_serial_line",
			       json_object_new_string(res->last_serial_line));
	json_object_object_add(o, "exits", exits_json(&res->exits));
	gs_print_json(o);
	json_object_put(o);
}

static void print_text(const struct boot_args *a, const struct vmm_result *res)
{
	FILE *f = a->verify ? stdout : stderr; /* boot: stdout is the guest's console */
	const struct vmm_exit_stats *e = &res->exits;
	if (a->verify && res->reason == VMM_EXIT_MATCHED)
		fprintf(f, "verify: matched /%s/ after %.2f s", a->expect, res->match_s);
	else if (a->verify)
		fprintf(f, "verify: NOT matched /%s/: %s after %.2f s", a->expect,
			vmm_exit_reason_name(res->reason), res->total_s);
	else
		fprintf(f, "genshift boot: %s after %.2f s", vmm_exit_reason_name(res->reason),
			res->total_s);
	if (res->first_output_s >= 0)
		fprintf(f, " (first firmware output at %.2f s)", res->first_output_s);
	fprintf(f, "\n  VM exits: %llu (io %llu, mmio %llu, shutdown %llu); resets %u%s\n",
		(unsigned long long)e->total, (unsigned long long)e->io,
		(unsigned long long)e->mmio, (unsigned long long)e->shutdown, res->resets,
		getenv(IN_HARNESS_ENV) ? "; under the nested-KVM harness" : "");
	if (res->error[0])
		fprintf(f, "  error: %s\n", res->error);
	if (a->verify && res->reason != VMM_EXIT_MATCHED && res->last_serial_line[0])
		fprintf(f, "  last serial line: %s\n", res->last_serial_line);
}

static int exit_status(const struct boot_args *a, const struct vmm_result *res)
{
	if (res->reason == VMM_EXIT_ERROR)
		return GS_EXIT_FAIL;
	if (a->verify)
		return res->reason == VMM_EXIT_MATCHED ? GS_EXIT_OK : GS_EXIT_DIFFERENT;
	return res->reason == VMM_EXIT_POWEROFF ? GS_EXIT_OK : GS_EXIT_DIFFERENT;
}

static volatile int interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1; /* vmm_run stops the guest and closes the disks cleanly */
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* COM1's input: --serial-input FILE, else the terminal for an interactive boot. */
static int open_input(const struct boot_args *a, bool *tty)
{
	*tty = false;
	if (a->input) {
		int fd = open(a->input, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fprintf(stderr, "genshift: %s: %s\n", a->input, strerror(errno));
		return fd < 0 ? -2 : fd;
	}
	*tty = !a->verify && isatty(STDIN_FILENO);
	return *tty ? STDIN_FILENO : -1;
}

static int run_here(const struct boot_args *a, const struct vmcfg *cfg)
{
	const char *log = a->serial_log ? a->serial_log : cfg->serial_log;
	/* boot: COM1 on the terminal (stderr when stdout carries the JSON result). */
	int fd = a->verify && !log ? -1 : a->json ? STDERR_FILENO : STDOUT_FILENO;
	if (log && (fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "genshift: %s: %s\n", log, strerror(errno));
		return GS_EXIT_FAIL;
	}
	bool tty;
	int in = open_input(a, &tty);
	if (in == -2) {
		if (fd > STDERR_FILENO)
			close(fd);
		return GS_EXIT_FAIL;
	}
	struct vmm_opts o = {
		.cfg = cfg, .serial_fd = fd, .debugcon_path = a->debugcon, .expect = a->expect,
		.trace_path = a->trace, .serial_in_fd = in, .serial_in_tty = tty,
		.timeout_s = a->timeout_s, .triple_fault_resets = !a->verify,
		.seccomp = !a->no_sandbox, .interrupted = &interrupted,
	};
	catch_signals();
	struct vmm_result res;
	int r = vmm_run(&o, &res);
	if (fd > STDERR_FILENO)
		close(fd);
	if (in > STDIN_FILENO)
		close(in);
	if (r < 0 && !a->json)
		fprintf(stderr, "genshift: %s\n", res.error);
	if (a->json)
		print_json(a, cfg, &res);
	else if (r == 0)
		print_text(a, &res);
	return exit_status(a, &res);
}

static int boot_or_verify(int argc, char **argv, bool verify)
{
	struct boot_args a = { .verify = verify };
	int r = parse_args(argc, argv, &a);
	if (r)
		return r < 0 ? GS_EXIT_OK : r;
	struct vmcfg *cfg;
	if (build_cfg(&a, &cfg) < 0) {
		fprintf(stderr, "genshift: %s\n", vdisk_errmsg());
		return GS_EXIT_FAIL;
	}
	bool want_nested = a.accel && !strcmp(a.accel, "nested");
	bool want_kvm = a.accel && !strcmp(a.accel, "kvm");
	if (!getenv(IN_HARNESS_ENV) && (want_nested || (!want_kvm && !kvm_usable())))
		r = run_nested(argc, argv, &a, cfg);
	else
		r = run_here(&a, cfg);
	vmcfg_free(cfg);
	return r;
}

int cmd_boot(int argc, char **argv)
{
	return boot_or_verify(argc, argv, false);
}

int cmd_verify(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--both"))
			return cmd_verify_both(argc, argv); /* convert/cmd-verify-both.c */
	return boot_or_verify(argc, argv, true);
}
