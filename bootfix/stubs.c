/* bootfix/stubs.c - TEMPORARY placeholders so the tree links while esp.c, grub.c, nvram.c and
 * guest.c are written in parallel. Each owner deletes their functions from this file in the
 * commit that adds the real ones; the file goes away when it is empty. Every placeholder
 * fails with -ENOSYS, so nothing can mistake it for the real thing. */
#include <errno.h>

#include "bootfix/bootfix.h"
#include "vhdx/vdisk.h"

/* ---- guest.c ---- */
int guest_inspect(const char *disk_path, const char *format, struct guest_info **out)
{
	(void)disk_path, (void)format, (void)out;
	return vdisk_fail(ENOSYS, "guest_inspect: not implemented yet");
}

void guest_info_free(struct guest_info *gi)
{
	(void)gi;
}

int guest_fix_linux(const char *disk_path, const char *format, const struct guest_fix_opts *o,
		    struct guest_fix_report **out)
{
	(void)disk_path, (void)format, (void)o, (void)out;
	return vdisk_fail(ENOSYS, "guest_fix_linux: not implemented yet");
}

void guest_fix_report_free(struct guest_fix_report *r)
{
	(void)r;
}
