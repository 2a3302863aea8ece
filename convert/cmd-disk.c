/* convert/cmd-disk.c - `genshift disk ...` (placeholder, filled in next). */
#include <stdio.h>

#include "convert/cli.h"

int cmd_disk(int argc, char **argv)
{
	(void)argc, (void)argv;
	fputs("genshift disk: not built yet\n", stderr);
	return GS_EXIT_FAIL;
}
