/* vhdx/vhd.c - VHD backend (placeholder until the VHD backend lands: refuses every file). */
#include <errno.h>

#include "vdisk-int.h"

int vhd_open(const struct vdisk *base, struct vdisk **out)
{
	(void)out;
	return vdisk_fail(ENOTSUP, "%s: VHD support is not built yet", base->path);
}

int vhd_create(int fd, const char *path, const struct vdisk_create_opts *opts)
{
	(void)fd, (void)opts;
	return vdisk_fail(ENOTSUP, "%s: VHD support is not built yet", path);
}

int vhd_check(int fd, const char *path, unsigned flags, vdisk_check_fn report, void *opaque)
{
	(void)fd, (void)flags, (void)report, (void)opaque;
	return vdisk_fail(ENOTSUP, "%s: VHD support is not built yet", path);
}
