/* include/hostkvm.h - whether this host's /dev/kvm is hardware-assisted KVM that can run a
 * Linux guest. Header-only, shared by every user of KVM (the genshift boot command, the
 * libguestfs appliance in bootfix/guest.c); tests/harness/with-kvm applies the same rule.
 *
 * Some sandboxes offer a /dev/kvm without VT-x/AMD-V behind it (the kvm_pvm module): it
 * opens, runs a real-mode test guest, but Linux hangs in early boot and OVMF never
 * finishes. So usable means: /dev/kvm opens read-write, the CPU flags show vmx or svm, and
 * kvm_pvm is not loaded. Anything else must fall back to TCG. */
#ifndef GENSHIFT_HOSTKVM_H
#define GENSHIFT_HOSTKVM_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A whole word of a /proc/cpuinfo "flags" line, so that "svm" does not match "svm_lock". */
static inline bool hostkvm_flags_have(const char *line, const char *word)
{
	size_t n = strlen(word);
	const char *p = line;
	while ((p = strstr(p, word)) != NULL) {
		bool starts = p == line || p[-1] == ' ' || p[-1] == '\t';
		bool ends = p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == '\n';
		if (starts && ends)
			return true;
		p += n;
	}
	return false;
}

static inline bool hostkvm_cpu_has_vmx_or_svm(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[8192];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "flags", 5) &&
			(hostkvm_flags_have(line, "vmx") || hostkvm_flags_have(line, "svm"));
	if (f)
		fclose(f);
	return found;
}

static inline bool hostkvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return hostkvm_cpu_has_vmx_or_svm() && access("/sys/module/kvm_pvm", F_OK) != 0;
}

#endif
