/* convert/main.c - the genshift command: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "convert/cli.h"

static void usage(FILE *f)
{
	fputs("usage: genshift COMMAND [ARGS...]\n"
	      "\n"
	      "commands:\n"
	      "  disk info|create|convert|resize|check|compare   virtual disk operations\n"
	      "  partition show|convert|undo|repair              MBR/GPT tables, MBR -> GPT\n"
	      "  boot VMCONFIG | --gen 1 --disk IMAGE            run a VM until it powers off\n"
	      "  verify ... --expect REGEX --timeout SECONDS     boot and wait for a serial marker\n"
	      "  nvram show|add-boot                             OVMF variable store, Boot####\n"
	      "  analyze IMAGE|VMCONFIG... [--json] [--deep]     can it convert to gen 2? (exit 3: no)\n"
	      "  convert SRC --out DIR [--in-place|--differencing|--dry-run]  gen 1 -> gen 2 VM\n"
	      "  rollback DIR/NAME.undo                          undo convert --in-place\n"
	      "  verify --both SRC OUT                           boot SRC as gen 1 and OUT as gen 2\n"
	      "  help                                            this text\n"
	      "\n"
	      "Run 'genshift COMMAND --help' for a command's options.\n"
	      "\n"
	      "exit status: 0 success, 1 the operation failed (message on stderr),\n"
	      "             2 bad command line, 3 a negative answer (compare: images differ;\n"
	      "             check: errors found)\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return GS_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "disk"))
		return cmd_disk(argc - 1, argv + 1);
	if (!strcmp(cmd, "partition"))
		return cmd_partition(argc - 1, argv + 1);
	if (!strcmp(cmd, "boot"))
		return cmd_boot(argc - 1, argv + 1);
	if (!strcmp(cmd, "analyze"))
		return cmd_analyze(argc - 1, argv + 1);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(cmd, "nvram")) return cmd_nvram(argc - 1, argv + 1);
	if (!strcmp(cmd, "convert"))
		return cmd_convert(argc - 1, argv + 1);
	if (!strcmp(cmd, "rollback"))
		return cmd_rollback(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return GS_EXIT_OK;
	}
	fprintf(stderr, "genshift: unknown command '%s'\n", cmd);
	usage(stderr);
	return GS_EXIT_USAGE;
}
