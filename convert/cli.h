/* convert/cli.h - shared pieces of the genshift command line (subcommand entry points,
 * exit codes, output helpers). Only convert/ includes this. */
#ifndef GENSHIFT_CLI_H
#define GENSHIFT_CLI_H

/* Exit codes, documented in `genshift --help` and the README. */
enum gs_exit {
	GS_EXIT_OK = 0,        /* success; for compare: identical; for check: no errors */
	GS_EXIT_FAIL = 1,      /* the operation failed (error message on stderr) */
	GS_EXIT_USAGE = 2,     /* bad command line */
	GS_EXIT_DIFFERENT = 3, /* compare: images differ; check: errors found */
};

int cmd_disk(int argc, char **argv);

#endif
