/* convert/cli.h - shared pieces of the genshift command line (subcommand entry points,
 * exit codes, output helpers). Only convert/ includes this. */
#ifndef GENSHIFT_CLI_H
#define GENSHIFT_CLI_H

#include <stdint.h>

#include <json-c/json.h>

/* Exit codes, documented in `genshift --help` and the README. */
enum gs_exit {
	GS_EXIT_OK = 0,        /* success; for compare: identical; for check: no errors */
	GS_EXIT_FAIL = 1,      /* the operation failed (error message on stderr) */
	GS_EXIT_USAGE = 2,     /* bad command line */
	GS_EXIT_DIFFERENT = 3, /* compare: images differ; check: errors found */
};

int cmd_disk(int argc, char **argv);
int cmd_boot(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_partition(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_verify_both(int argc, char **argv); /* verify --both, convert/cmd-verify-both.c */
int cmd_nvram(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

/* "10G", "512MiB", "4096" (bytes); binary units. 0 or -EINVAL. */
int gs_parse_size(const char *s, uint64_t *out);
/* "1.5 GiB"; returns buf. */
const char *gs_human_size(uint64_t bytes, char buf[32]);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
struct gs_progress {
	const char *label;
	int enabled, drawn;
	double start, last_draw;
};
void gs_progress_init(struct gs_progress *p, const char *label);
void gs_progress_cb(uint64_t done, uint64_t total, void *opaque); /* a vdisk_progress_fn */
void gs_progress_done(struct gs_progress *p);
double gs_progress_elapsed(const struct gs_progress *p);

/* Print a JSON document (pretty) to stdout. */
void gs_print_json(struct json_object *o);

#endif
