/* convert/undo-regions.c - the undo record of `genshift convert --in-place` and
 * `genshift rollback`, which puts the source back byte for byte from it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/pipeline.h"
#include "convert/undo-regions-format.h"
#include "convert/undo-regions.h"
#include "include/byteorder.h"

#define MANIFEST_FORMAT "genshift-convert-undo"
#define MANIFEST_MAX_BYTES (64u << 10)

/* The ESP's range inside the original disk (what lies past the old end goes with the
 * shrink of part_undo). */
int cv_undo_regions_save(struct cv_run *run)
{
	const struct part_entry *esp = cv_esp_entry(run);
	uint32_t sb = run->plan->sector_bytes;
	uint64_t to = (esp->last_lba + 1) * sb;

	return cv_regions_write(run->src_disk, esp->first_lba * sb,
				to < run->src_size_bytes ? to : run->src_size_bytes, run->undo_esp);
}

/* ---- the manifest ---- */

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int cv_undo_manifest_write(struct cv_run *run)
{
	char tmp[PATH_MAX];
	struct json_object *o = json_object_new_object(), *outs = json_object_new_array();
	const char *outputs[] = { run->out_vars, run->out_cfg, run->out_log };

	json_object_object_add(o, "format", json_object_new_string(MANIFEST_FORMAT));
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "source", json_object_new_string(run->src_disk));
	json_object_object_add(o, "source_size_bytes",
			       json_object_new_int64((int64_t)run->src_size_bytes));
	json_object_object_add(o, "partition_undo", json_object_new_string(base_of(run->undo_part)));
	json_object_object_add(o, "esp_undo", json_object_new_string(base_of(run->undo_esp)));
	for (size_t i = 0; i < 3; i++)
		json_object_array_add(outs, json_object_new_string(base_of(outputs[i])));
	json_object_object_add(o, "outputs", outs);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(tmp, sizeof(tmp), "%.4000s.tmp.%d", run->undo, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = fd < 0 ? vdisk_fail(errno, "%s: %s", tmp, strerror(errno)) : 0;
	if (r == 0)
		r = vdisk_pwrite(fd, tmp, text, strlen(text), 0);
	if (r == 0 && fsync(fd) < 0)
		r = vdisk_fail(errno, "%s: fsync: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	if (r == 0)
		return cv_publish(tmp, run->undo);
	unlink(tmp);
	return r;
}

struct manifest {
	char source[PATH_MAX], part_undo[PATH_MAX], esp_undo[PATH_MAX];
	size_t n_outputs;
	char outputs[3][PATH_MAX];
};

/* A file name from the manifest, resolved beside it; names with '/' are refused (a forged
 * manifest must not make rollback delete or read files elsewhere). */
static int manifest_name(const char *undo_path, struct json_object *v, const char *key,
			 char *out)
{
	char tmp[PATH_MAX];
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

	if (!s || !s[0] || strchr(s, '/') || !strcmp(s, "..") || !strcmp(s, "."))
		return vdisk_fail(EINVAL, "%s: \"%s\" must be a plain file name", undo_path, key);
	snprintf(tmp, sizeof(tmp), "%s", undo_path);
	if (snprintf(out, PATH_MAX, "%s/%s", dirname(tmp), s) >= PATH_MAX)
		return vdisk_fail(ENAMETOOLONG, "%s: \"%s\" too long", undo_path, key);
	return 0;
}

static int manifest_fields(const char *path, struct json_object *o, struct manifest *m)
{
	struct json_object *v, *outs = NULL;
	int r = 0;

	if (!json_object_object_get_ex(o, "format", &v) ||
	    strcmp(json_object_get_string(v) ? json_object_get_string(v) : "", MANIFEST_FORMAT))
		return vdisk_fail(EINVAL, "%s: \"format\" is not \"" MANIFEST_FORMAT "\"", path);
	if (!json_object_object_get_ex(o, "version", &v) || json_object_get_int(v) != 1)
		return vdisk_fail(ENOTSUP, "%s: \"version\": expected 1", path);
	if (!json_object_object_get_ex(o, "source", &v) || !json_object_is_type(v, json_type_string))
		return vdisk_fail(EINVAL, "%s: \"source\": expected a path", path);
	snprintf(m->source, sizeof(m->source), "%s", json_object_get_string(v));
	if (!json_object_object_get_ex(o, "partition_undo", &v))
		return vdisk_fail(EINVAL, "%s: \"partition_undo\" is missing", path);
	r = manifest_name(path, v, "partition_undo", m->part_undo);
	if (r == 0 && json_object_object_get_ex(o, "esp_undo", &v))
		r = manifest_name(path, v, "esp_undo", m->esp_undo);
	if (r == 0 && (!json_object_object_get_ex(o, "outputs", &outs) ||
		       !json_object_is_type(outs, json_type_array) ||
		       json_object_array_length(outs) > 3))
		r = vdisk_fail(EINVAL, "%s: \"outputs\": expected at most 3 file names", path);
	for (size_t i = 0; r == 0 && i < json_object_array_length(outs); i++)
		r = manifest_name(path, json_object_array_get_idx(outs, i), "outputs",
				  m->outputs[m->n_outputs++]);
	return r;
}

static int manifest_load(const char *path, struct manifest *m)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	if (stat(path, &st) < 0)
		return vdisk_fail(errno, "%s: %s", path, strerror(errno));
	if (st.st_size > MANIFEST_MAX_BYTES)
		return vdisk_fail(EINVAL, "%s: %lld bytes; an undo manifest is at most %u", path,
				  (long long)st.st_size, MANIFEST_MAX_BYTES);
	struct json_object *o = json_object_from_file(path);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return vdisk_fail(EINVAL, "%s: not a JSON object", path);
	}
	int r = manifest_fields(path, o, m);
	json_object_put(o);
	return r;
}

/* The source comes back first; only then do the outputs and the undo files go. */
static int restore_source(const struct manifest *m, FILE *msgs)
{
	struct vdisk *d;
	int r;

	if (access(m->part_undo, F_OK) != 0) {
		fprintf(msgs, "%s: never modified (the conversion stopped before its partition "
			"step)\n", m->source);
		return 0;
	}
	if ((r = vdisk_open(m->source, VDISK_OPEN_RDWR, &d)) < 0)
		return r;
	if (m->esp_undo[0] && access(m->esp_undo, F_OK) == 0)
		r = cv_regions_restore(m->esp_undo, d);
	if (r == 0)
		r = vdisk_flush(d);
	if (r == 0)
		r = part_undo(d, m->part_undo);
	int c = vdisk_close(d);
	if (r == 0 && c < 0)
		r = c;
	if (r == 0)
		fprintf(msgs, "%s: restored from %s\n", m->source, m->part_undo);
	return r;
}

int cv_rollback(const char *undo_path, FILE *msgs)
{
	struct manifest m;
	int r = manifest_load(undo_path, &m);

	if (r == 0)
		r = restore_source(&m, msgs);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m.n_outputs; i++)
		if (unlink(m.outputs[i]) == 0)
			fprintf(msgs, "removed %s\n", m.outputs[i]);
	unlink(m.esp_undo);
	unlink(m.part_undo);
	unlink(undo_path);
	return cv_fsync_dir_of(undo_path);
}
