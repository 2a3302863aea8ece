/* convert/undo-regions.h - the undo record of `genshift convert --in-place` (internal to
 * convert/): a JSON manifest NAME.undo naming the source and the files that restore it,
 * the partition module's undo file NAME.undo-partition, and NAME.undo-esp
 * (undo-regions-format.h) with the original bytes of the ESP's range inside the old disk. */
#ifndef GENSHIFT_CONVERT_UNDO_REGIONS_H
#define GENSHIFT_CONVERT_UNDO_REGIONS_H

#include <stdio.h>

struct cv_run;

/* Write NAME.undo (temporary name, fsync, rename, fsync of the directory). */
int cv_undo_manifest_write(struct cv_run *run);
/* Save the ESP's range that lies inside the original disk into NAME.undo-esp, durably,
 * before anything is written to the source. */
int cv_undo_regions_save(struct cv_run *run);

#endif
