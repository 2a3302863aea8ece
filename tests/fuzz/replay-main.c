/* tests/fuzz/replay-main.c - runs a libFuzzer target over files, without libFuzzer.
 * `make check` uses this to replay each target's corpus with any compiler (and under
 * ASan/UBSan with SAN=1). Arguments are files or directories of files. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not fuzz inputs: refuse rather than allocate wildly. */
#define REPLAY_MAX_INPUT_BYTES (64u << 20)

static int replay_file(const char *path, unsigned *count)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		return -1;
	}
	uint8_t *buf = malloc(REPLAY_MAX_INPUT_BYTES);
	size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT_BYTES, f) : 0;
	int r = buf && !ferror(f) && feof(f) ? 0 : -1;
	fclose(f);
	if (r == 0) {
		LLVMFuzzerTestOneInput(buf, n);
		(*count)++;
	} else {
		fprintf(stderr, "replay: cannot read %s (or larger than %u bytes)\n", path,
			REPLAY_MAX_INPUT_BYTES);
	}
	free(buf);
	return r;
}

static int replay_path(const char *path, unsigned *count)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s does not exist\n", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	DIR *dir = opendir(path);
	if (!dir)
		return -1;
	int r = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		if (e->d_name[0] == '.')
			continue;
		char child[4096];
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		if (replay_path(child, count) < 0)
			r = -1;
	}
	closedir(dir);
	return r;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int r = 0;

	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) < 0)
			r = 1;
	printf("replayed %u inputs\n", count);
	return r || count == 0;
}
