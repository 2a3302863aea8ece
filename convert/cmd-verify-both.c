/* convert/cmd-verify-both.c - `genshift verify --both SRC OUT`: boots the source as
 * generation 1 and the conversion's result as generation 2, each through `genshift verify`
 * (so each gets the nested-KVM harness when there is no usable /dev/kvm), and reports both.
 * The source boots with its disks read-only: verifying must not change what it verifies. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convert/cli.h"
#include "vhdx/vdisk.h"
#include "vmm/vmm.h"

#define DEFAULT_EXPECT_GEN1 "GENSHIFT-BOOT-OK firmware=bios"
#define DEFAULT_EXPECT_GEN2 "GENSHIFT-BOOT-OK firmware=uefi"
#define CHILD_OUTPUT_MAX (1u << 20)

static const char both_usage[] =
	"usage: genshift verify --both SRC OUT [--json] [--timeout SECONDS] [--accel MODE]\n"
	"                       [--expect-gen1 REGEX] [--expect-gen2 REGEX]\n"
	"  Boots SRC (a generation 1 VM configuration or disk; its disks read-only) as\n"
	"  generation 1 and OUT (the generation 2 configuration `genshift convert` wrote, or\n"
	"  its output directory when that holds one) as generation 2, one after the other,\n"
	"  each like `genshift verify`, and reports both. Default patterns: \"" DEFAULT_EXPECT_GEN1
	"\"\n  and \"" DEFAULT_EXPECT_GEN2 "\" (genshift's test guests); timeout 300 s each.\n"
	"\n"
	"exit status: 0 both matched, 1 a VM could not be run, 2 usage error,\n"
	"             3 at least one did not match\n";

struct both_args {
	const char *src, *out, *accel, *expect[2];
	char timeout[32];
	bool json;
};

enum { OPT_BOTH = 256, OPT_JSON, OPT_TIMEOUT, OPT_ACCEL, OPT_EXPECT1, OPT_EXPECT2 };

static const struct option both_options[] = {
	{ "both", no_argument, NULL, OPT_BOTH },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "expect-gen1", required_argument, NULL, OPT_EXPECT1 },
	{ "expect-gen2", required_argument, NULL, OPT_EXPECT2 },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *msg)
{
	fprintf(stderr, "genshift verify --both: %s\n(see 'genshift verify --both --help')\n", msg);
	return GS_EXIT_USAGE;
}

/* -1: parsed; otherwise the exit code. */
static int parse_both(int argc, char **argv, struct both_args *a)
{
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	a->expect[0] = DEFAULT_EXPECT_GEN1;
	a->expect[1] = DEFAULT_EXPECT_GEN2;
	snprintf(a->timeout, sizeof(a->timeout), "300");
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", both_options, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(both_usage, stdout); return GS_EXIT_OK;
		case OPT_BOTH: break;
		case OPT_JSON: a->json = true; break;
		case OPT_ACCEL: a->accel = optarg; break;
		case OPT_EXPECT1: a->expect[0] = optarg; break;
		case OPT_EXPECT2: a->expect[1] = optarg; break;
		case OPT_TIMEOUT:
			if (strtod(optarg, &end) <= 0 || *end || strlen(optarg) >= sizeof(a->timeout))
				return usage_error("--timeout: a positive number of seconds");
			snprintf(a->timeout, sizeof(a->timeout), "%s", optarg);
			break;
		default: return usage_error("unknown option");
		}
	}
	if (argc - optind != 2)
		return usage_error("give SRC and OUT");
	a->src = argv[optind];
	a->out = argv[optind + 1];
	return -1;
}

/* ---- the two configurations ---- */

/* SRC as a generation 1 configuration with every disk read-only, in dir/gen1.json. */
static int write_gen1_config(const char *src, const char *dir, char *path)
{
	struct vmcfg *cfg = NULL;
	char buf[2];
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, 1) : -1;
	int r;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return vdisk_fail(errno, "%s: %s", src, strerror(errno));
	r = n == 1 && buf[0] == '{' ? vmcfg_load(src, &cfg) : vmcfg_new_simple(1, src, &cfg);
	if (r == 0 && cfg->generation != 1)
		r = vdisk_fail(EINVAL, "%s: generation %u; SRC must be generation 1", src,
			       cfg->generation);
	for (unsigned i = 0; r == 0 && i < cfg->n_disks; i++)
		cfg->disks[i].read_only = true;
	char *text = r == 0 ? vmcfg_to_json(cfg) : NULL;
	if (r == 0 && !text)
		r = vdisk_fail(ENOMEM, "out of memory");
	snprintf(path, PATH_MAX, "%.4000s/gen1.json", dir);
	if (r == 0 && (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		r = vdisk_fail(errno, "%s: %s", path, strerror(errno));
	if (r == 0) {
		r = vdisk_pwrite(fd, path, text, strlen(text), 0);
		close(fd);
	}
	free(text);
	vmcfg_free(cfg);
	return r;
}

/* OUT: a configuration file, or a directory holding exactly one NAME.json. */
static int find_gen2_config(const char *out, char *path)
{
	struct stat st;
	struct dirent *de;
	int found = 0;

	if (stat(out, &st) < 0)
		return vdisk_fail(errno, "%s: %s", out, strerror(errno));
	snprintf(path, PATH_MAX, "%s", out);
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(out);
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 5 && de->d_name[0] != '.' && !strcmp(de->d_name + n - 5, ".json")) {
			snprintf(path, PATH_MAX, "%.3000s/%s", out, de->d_name);
			found++;
		}
	}
	if (d)
		closedir(d);
	if (found != 1)
		return vdisk_fail(EINVAL, "%s: %d configuration files (*.json) in it; give one",
				  out, found);
	return 0;
}

/* ---- one boot, as a child `genshift verify ... --json` ---- */

struct boot_outcome {
	struct json_object *result; /* the child's JSON, or NULL */
	int status;                 /* its exit status */
	char error[512];            /* when it printed no JSON: its last stderr line */
};

static void last_line(const char *path, char *out, size_t n)
{
	char line[512];
	FILE *f = fopen(path, "re");

	out[0] = 0;
	while (f && fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(out, n, "%s", line);
	if (f)
		fclose(f);
	out[strcspn(out, "\n")] = 0;
}

static char *read_all(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2 && cap < CHILD_OUTPUT_MAX) {
			char *b = realloc(buf, cap * 2);
			if (!b)
				break;
			buf = b;
			cap *= 2;
		} else if (cap - len < 2) {
			break;
		}
	}
	if (buf)
		buf[len] = 0;
	return buf;
}

static void run_child(char **argv, const char *err_path, struct boot_outcome *o)
{
	int pfd[2], status = 0;

	memset(o, 0, sizeof(*o));
	o->status = GS_EXIT_FAIL;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(o->error, sizeof(o->error), "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(pfd[1], STDOUT_FILENO);
		if (efd >= 0)
			dup2(efd, STDERR_FILENO);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(pfd[1]);
	char *text = pid > 0 ? read_all(pfd[0]) : NULL;
	close(pfd[0]);
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		o->status = WEXITSTATUS(status);
	o->result = text && text[0] == '{' ? json_tokener_parse(text) : NULL;
	if (!o->result)
		last_line(err_path, o->error, sizeof(o->error));
	free(text);
}

static void boot_one(const struct both_args *a, int gen, const char *cfg, const char *dir,
		     struct boot_outcome *o)
{
	char serial[PATH_MAX], err[PATH_MAX];
	char *argv[16];
	int n = 0;

	snprintf(serial, sizeof(serial), "%.4000s/gen%d.serial", dir, gen);
	snprintf(err, sizeof(err), "%.4000s/gen%d.stderr", dir, gen);
	argv[n++] = (char *)"genshift";
	argv[n++] = (char *)"verify";
	argv[n++] = (char *)cfg;
	argv[n++] = (char *)"--expect";
	argv[n++] = (char *)a->expect[gen - 1];
	argv[n++] = (char *)"--timeout";
	argv[n++] = (char *)a->timeout;
	argv[n++] = (char *)"--json";
	argv[n++] = (char *)"--serial-log";
	argv[n++] = serial;
	if (a->accel) {
		argv[n++] = (char *)"--accel";
		argv[n++] = (char *)a->accel;
	}
	argv[n] = NULL;
	run_child(argv, err, o);
}

/* ---- report ---- */

static bool matched(const struct boot_outcome *o)
{
	struct json_object *v;
	return o->result && json_object_object_get_ex(o->result, "matched", &v) &&
	       json_object_get_boolean(v);
}

static const char *field(const struct boot_outcome *o, const char *key)
{
	struct json_object *v;
	if (!o->result || !json_object_object_get_ex(o->result, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static void print_one(int gen, const char *what, const struct boot_outcome *o)
{
	const char *err = field(o, "error");

	printf("generation %d (%s): ", gen, what);
	if (matched(o))
		printf("matched after %s s\n", field(o, "time_to_match_s"));
	else if (o->result)
		printf("NOT matched: %s after %s s%s%s\n  last serial line: %s\n",
		       field(o, "exit_reason"), field(o, "total_s"), err ? "; " : "", err ? err : "",
		       field(o, "last_serial_line") ? field(o, "last_serial_line") : "");
	else
		printf("FAILED (exit %d): %s\n", o->status, o->error);
}

static struct json_object *one_json(const char *cfg, const struct boot_outcome *o)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "config", json_object_new_string(cfg));
	json_object_object_add(j, "matched", json_object_new_boolean(matched(o)));
	json_object_object_add(j, "exit_status", json_object_new_int(o->status));
	if (o->result)
		json_object_object_add(j, "verify", json_object_get(o->result));
	else
		json_object_object_add(j, "error", json_object_new_string(o->error));
	return j;
}

static void report(const struct both_args *a, const char *cfg2, const struct boot_outcome o[2])
{
	if (!a->json) {
		print_one(1, a->src, &o[0]);
		print_one(2, cfg2, &o[1]);
		printf("both generations boot: %s\n", matched(&o[0]) && matched(&o[1]) ? "yes" : "NO");
		return;
	}
	struct json_object *j = json_object_new_object();
	json_object_object_add(j, "command", json_object_new_string("verify --both"));
	json_object_object_add(j, "gen1", one_json(a->src, &o[0]));
	json_object_object_add(j, "gen2", one_json(cfg2, &o[1]));
	json_object_object_add(j, "both_matched",
			       json_object_new_boolean(matched(&o[0]) && matched(&o[1])));
	gs_print_json(j);
	json_object_put(j);
}

static int both_status(const struct boot_outcome o[2])
{
	if (matched(&o[0]) && matched(&o[1]))
		return GS_EXIT_OK;
	if ((!o[0].result && o[0].status != GS_EXIT_DIFFERENT) ||
	    (!o[1].result && o[1].status != GS_EXIT_DIFFERENT))
		return GS_EXIT_FAIL;
	return GS_EXIT_DIFFERENT;
}

static void remove_scratch(const char *dir)
{
	const char *names[] = { "gen1.json", "gen1.serial", "gen1.stderr", "gen2.serial",
				"gen2.stderr" };
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int cmd_verify_both(int argc, char **argv)
{
	struct both_args a;
	struct boot_outcome o[2];
	char dir[PATH_MAX], cfg1[PATH_MAX], cfg2[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	int r = parse_both(argc, argv, &a);

	if (r >= 0)
		return r;
	snprintf(dir, sizeof(dir), "%s/genshift-verify-both.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "genshift verify --both: %s: %s\n", dir, strerror(errno));
		return GS_EXIT_FAIL;
	}
	if (write_gen1_config(a.src, dir, cfg1) < 0 || find_gen2_config(a.out, cfg2) < 0) {
		fprintf(stderr, "genshift verify --both: %s\n", vdisk_errmsg());
		remove_scratch(dir);
		return GS_EXIT_FAIL;
	}
	boot_one(&a, 1, cfg1, dir, &o[0]);
	boot_one(&a, 2, cfg2, dir, &o[1]);
	report(&a, cfg2, o);
	r = both_status(o);
	json_object_put(o[0].result);
	json_object_put(o[1].result);
	remove_scratch(dir);
	return r;
}
