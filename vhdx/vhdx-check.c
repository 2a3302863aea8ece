/* vhdx/vhdx-check.c - structural verification of a VHDX file, one finding per message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "vhdx-int.h"

struct checker {
	struct vhdx_disk *v;
	struct vdisk_checker out;
};

/* Each finding goes to the caller through the shared checker (vdisk-int.h). */
#define say(c, ...) vdisk_check_say(&(c)->out, __VA_ARGS__)

static void bat_finding(const char *msg, void *opaque)
{
	say((struct checker *)opaque, VDISK_CHECK_ERROR, "%s", msg);
}

static void report_log(struct checker *c, bool repair)
{
	const struct vhdx_log_result *l = &c->v->log;

	if (!l->needed) {
		say(c, VDISK_CHECK_INFO, "log: clean (header LogGuid is zero)");
		return;
	}
	say(c, repair ? VDISK_CHECK_INFO : VDISK_CHECK_WARN, "log: %s %u entries (%u descriptors, "
	    "head sequence %llu)%s; %u entries of other sessions ignored",
	    repair ? "replayed into the file" : "needs replay (replayed in memory for this check):",
	    l->entries, l->descriptors, (unsigned long long)l->head_sequence,
	    l->stale_tail ? "; no sequence satisfied the spec's tail rule, so the highest "
			    "contiguous run was used (Windows stale-tail fallback)" : "",
	    l->other_guid);
}

static void report_regions(struct checker *c)
{
	struct vhdx_disk *v = c->v;

	if (v->region_copy == 2) {
		say(c, VDISK_CHECK_ERROR, "region table copy 1 is damaged (%s); copy 2 is used",
		    v->region_note);
	} else if (vhdx_check_region_copy(v, 2) < 0) {
		say(c, VDISK_CHECK_ERROR, "region table copy 2: %s", vdisk_errmsg());
	}
	say(c, VDISK_CHECK_INFO, "regions: log [%llu, +%u), metadata [%llu, +%llu), BAT [%llu, "
	    "+%llu)", (unsigned long long)v->log_offset, v->log_length,
	    (unsigned long long)v->meta_offset, (unsigned long long)v->meta_length,
	    (unsigned long long)v->bat_offset, (unsigned long long)v->bat_length);
}

static void report_summary(struct checker *c)
{
	struct vhdx_disk *v = c->v;
	char id[40];

	vdisk_guid_to_str(v->disk_id, id);
	say(c, VDISK_CHECK_INFO, "%s, virtual size %llu, block size %u, logical/physical "
	    "sectors %u/%u, %llu BAT entries, %llu bytes allocated, creator \"%s\", disk id %s",
	    v->has_parent ? "differencing" : v->leave_allocated ? "fixed" : "dynamic",
	    (unsigned long long)v->base.size_bytes, v->block_bytes,
	    v->base.logical_sector_bytes, v->base.physical_sector_bytes,
	    (unsigned long long)v->bat_entries, (unsigned long long)v->allocated_bytes,
	    v->creator, id);
}

/* Each step either reports its fatal error (after which later steps cannot run) or
 * reports what it found and lets the next run. */
static int run_checks(struct checker *c, unsigned flags)
{
	struct vhdx_disk *v = c->v;
	bool repair = flags & VDISK_CHECK_REPAIR;
	int r;

	if ((r = vhdx_parse_file_id(v)) < 0 || (r = vhdx_parse_headers(v)) < 0)
		goto fatal;
	say(c, VDISK_CHECK_INFO, "headers: %s", v->header_note);
	if ((r = vhdx_log_replay(v, repair)) < 0)
		goto fatal;
	report_log(c, repair);
	if ((r = vhdx_parse_regions(v)) < 0)
		goto fatal;
	report_regions(c);
	if ((r = vhdx_parse_metadata(v)) < 0 || (r = vhdx_parse_geometry(v)) < 0)
		goto fatal;
	v->slots = calloc(VHDX_BAT_CACHE_SLOTS, sizeof(*v->slots));
	if (!v->slots)
		return vdisk_fail(ENOMEM, "out of memory");
	if ((r = vhdx_bat_scan(v, bat_finding, c)) < 0)
		goto fatal;
	report_summary(c);
	if (v->has_parent) {
		if (vhdx_open_parent(v) < 0)
			say(c, VDISK_CHECK_ERROR, "parent: %s", vdisk_errmsg());
		else
			say(c, VDISK_CHECK_INFO, "parent: %s (DataWriteGuid matches %s)",
			    v->base.parent->path, v->parent_linkage);
	}
	return 0;
fatal:
	say(c, VDISK_CHECK_ERROR, "%s", vdisk_errmsg());
	return r;
}

int vhdx_check(int fd, const char *path, unsigned flags, vdisk_check_fn report, void *opaque)
{
	struct vhdx_disk *v = calloc(1, sizeof(*v));
	struct checker c = { .v = v, .out = { report, opaque, 0 } };
	struct stat st;

	if (!v)
		return vdisk_fail(ENOMEM, "out of memory");
	v->base.fd = fd;
	v->base.path = (char *)(uintptr_t)path;
	v->base.format = VDISK_FORMAT_VHDX;
	v->base.flags = (flags & VDISK_CHECK_REPAIR) ? VDISK_OPEN_RDWR : 0;
	if (fstat(fd, &st) < 0) {
		vhdx_free(v);
		return vdisk_fail(errno, "%s: stat failed: %s", path, strerror(errno));
	}
	v->host_bytes = v->file_bytes = (uint64_t)st.st_size;
	int r = run_checks(&c, flags);
	if (v->base.parent)
		vdisk_close(v->base.parent);
	vhdx_free(v);
	return r == -ENOMEM ? r : c.out.errors;
}
