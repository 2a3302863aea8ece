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

/* ---- nvram.c ---- */
int nvram_parse(const void *buf, size_t bytes, struct nvram **out)
{
	(void)buf, (void)bytes, (void)out;
	return vdisk_fail(ENOSYS, "nvram_parse: not implemented yet");
}

int nvram_open(const char *path, struct nvram **out)
{
	(void)path, (void)out;
	return vdisk_fail(ENOSYS, "nvram_open: not implemented yet");
}

void nvram_free(struct nvram *nv)
{
	(void)nv;
}

size_t nvram_vars(const struct nvram *nv, const struct nvram_var **vars)
{
	(void)nv;
	*vars = NULL;
	return 0;
}

const struct nvram_var *nvram_get(const struct nvram *nv, const char *name, const uint8_t guid[16])
{
	(void)nv, (void)name, (void)guid;
	return NULL;
}

int nvram_set(struct nvram *nv, const char *name, const uint8_t guid[16], uint32_t attributes,
	      const void *data, size_t bytes)
{
	(void)nv, (void)name, (void)guid, (void)attributes, (void)data, (void)bytes;
	return vdisk_fail(ENOSYS, "nvram_set: not implemented yet");
}

int nvram_delete(struct nvram *nv, const char *name, const uint8_t guid[16])
{
	(void)nv, (void)name, (void)guid;
	return vdisk_fail(ENOSYS, "nvram_delete: not implemented yet");
}

const uint8_t *nvram_image(const struct nvram *nv, size_t *bytes)
{
	(void)nv;
	*bytes = 0;
	return NULL;
}

int nvram_save(const struct nvram *nv, const char *path)
{
	(void)nv, (void)path;
	return vdisk_fail(ENOSYS, "nvram_save: not implemented yet");
}

int nvram_add_boot(struct nvram *nv, const struct nvram_boot_target *t, unsigned *number_out)
{
	(void)nv, (void)t, (void)number_out;
	return vdisk_fail(ENOSYS, "nvram_add_boot: not implemented yet");
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
