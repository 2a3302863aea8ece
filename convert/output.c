/* convert/output.c - command-line helpers shared by the subcommands: sizes, progress, JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convert/cli.h"

int gs_parse_size(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && !strcmp(end, "iB"))
		end += 2;
	else if (!strcmp(end, "B"))
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *gs_human_size(uint64_t bytes, char buf[32])
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void gs_progress_init(struct gs_progress *p, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->enabled = isatty(STDERR_FILENO);
	p->start = now_seconds();
}

/* vdisk_progress_fn: redraws at most ten times a second, only on a terminal. */
void gs_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
	struct gs_progress *p = opaque;
	double t = now_seconds();
	char a[32], b[32];

	if (!p->enabled || (t - p->last_draw < 0.1 && done < total))
		return;
	p->last_draw = t;
	p->drawn = 1;
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	char bar[31];
	for (unsigned i = 0; i < 30; i++)
		bar[i] = i < pct * 30 / 100 ? '#' : '.';
	bar[30] = 0;
	fprintf(stderr, "\r%s [%s] %3u%% %s / %s", p->label, bar, pct, gs_human_size(done, a),
		gs_human_size(total, b));
	fflush(stderr);
}

void gs_progress_done(struct gs_progress *p)
{
	if (p->drawn)
		fputc('\n', stderr);
}

double gs_progress_elapsed(const struct gs_progress *p)
{
	return now_seconds() - p->start;
}

void gs_print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
}
