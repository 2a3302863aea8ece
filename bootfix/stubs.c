/* bootfix/stubs.c - TEMPORARY placeholders so the tree links while esp.c, grub.c, nvram.c and
 * guest.c are written in parallel. Each owner deletes their functions from this file in the
 * commit that adds the real ones; the file goes away when it is empty. Every placeholder
 * fails with -ENOSYS, so nothing can mistake it for the real thing. */
#include <errno.h>

#include "bootfix/bootfix.h"
#include "vhdx/vdisk.h"

/* ---- esp.c ---- */
int esp_format(struct vdisk *d, uint64_t first_lba, uint64_t sectors, const struct esp_opts *o,
	       const struct esp_file *files, size_t n_files, uint32_t *volume_id_out)
{
	(void)d, (void)first_lba, (void)sectors, (void)o, (void)files, (void)n_files,
		(void)volume_id_out;
	return vdisk_fail(ENOSYS, "esp_format: not implemented yet");
}

/* ---- grub.c ---- */
int bootfix_linux_esp(struct vdisk *d, const struct part_table *t, uint32_t esp_number,
		      const struct bootfix_linux_opts *o, uint32_t *volume_id_out)
{
	(void)d, (void)t, (void)esp_number, (void)o, (void)volume_id_out;
	return vdisk_fail(ENOSYS, "bootfix_linux_esp: not implemented yet");
}

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
