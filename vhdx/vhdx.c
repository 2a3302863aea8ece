/* vhdx/vhdx.c - VHDX backend (placeholder until the VHD backend lands: refuses every file). */
#include <errno.h>

#include "vdisk-int.h"

int vhdx_open(const struct vdisk *base, struct vdisk **out)
{
	(void)out;
	return vdisk_fail(ENOTSUP, "%s: VHDX support is not built yet", base->path);
}

int vhdx_create(int fd, const char *path, const struct vdisk_create_opts *opts)
{
	(void)fd, (void)opts;
	return vdisk_fail(ENOTSUP, "%s: VHDX support is not built yet", path);
}

int vhdx_check(int fd, const char *path, unsigned flags, vdisk_check_fn report, void *opaque)
{
	(void)fd, (void)flags, (void)report, (void)opaque;
	return vdisk_fail(ENOTSUP, "%s: VHDX support is not built yet", path);
}
