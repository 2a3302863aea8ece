/* tests/fuzz/fuzz_vmcfg.c - libFuzzer entry for the VM configuration parser: any input
 * must parse or fail cleanly; what parses must serialize and parse back identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmcfg *cfg, *again;
	if (vmcfg_parse((const char *)data, size, "/base", &cfg) < 0)
		return 0;
	char *json = vmcfg_to_json(cfg);
	if (!json)
		abort();
	/* Paths are already absolute now, so no base directory for the second parse. */
	if (vmcfg_parse(json, strlen(json), NULL, &again) < 0)
		abort();
	char *json2 = vmcfg_to_json(again);
	if (!json2 || strcmp(json, json2))
		abort();
	free(json2);
	free(json);
	vmcfg_free(again);
	vmcfg_free(cfg);
	return 0;
}
