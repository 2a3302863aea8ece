/* convert/undo-regions.h - the undo record of `genshift convert --in-place` (internal to
 * convert/): a JSON manifest NAME.undo naming the source and the files that restore it,
 * the partition module's undo file NAME.undo-partition, and NAME.undo-esp
 * (undo-regions-format.h) with the original bytes of the ESP's range inside the old disk. */
#ifndef GENSHIFT_CONVERT_UNDO_REGIONS_H
#define GENSHIFT_CONVERT_UNDO_REGIONS_H

#include <stdint.h>
#include <stdio.h>

struct cv_run;
struct vdisk;

/* Write NAME.undo (temporary name, fsync, rename, fsync of the directory). */
int cv_undo_manifest_write(struct cv_run *run);
/* Save the ESP's range that lies inside the original disk into NAME.undo-esp, durably,
 * before anything is written to the source. */
int cv_undo_regions_save(struct cv_run *run);

/* ---- undo-regions-file.c: the regions file itself (no pipeline state) ---- */

/* Save bytes [from, to) of the disk at disk_path (clipped to its size) into path: written
 * under a temporary name, synced, linked into place (never replacing a file). */
int cv_regions_write(const char *disk_path, uint64_t from, uint64_t to, const char *path);
/* Validate the regions file at path (header, size, CRC32, every record inside the file and
 * inside d) and only then write its bytes back into d. */
int cv_regions_restore(const char *path, struct vdisk *d);
/* Link tmp (complete, synced) to path, remove tmp, sync path's directory. */
int cv_publish(const char *tmp, const char *path);
int cv_fsync_dir_of(const char *path);

#endif
