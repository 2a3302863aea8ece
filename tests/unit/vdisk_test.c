/* tests/unit/vdisk_test.c - the generic vdisk layer, exercised through the raw backend:
 * bounds, read-only enforcement, locking, allocation map, resize, copy and compare. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx/vdisk.h"

#define MIB (1024u * 1024u)

static char dir[256];

static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vdisk_test.XXXXXX", t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct vdisk *new_raw(const char *name, uint64_t size)
{
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_RAW, .size_bytes = size };
	struct vdisk *d = NULL;
	unlink(tmp_path(name));
	assert_int_equal(vdisk_create(tmp_path(name), &o, &d), 0);
	return d;
}

static void test_create_refuses_existing(void **state)
{
	(void)state;
	struct vdisk *d = new_raw("exists.img", MIB);
	struct vdisk_create_opts o = { .format = VDISK_FORMAT_RAW, .size_bytes = MIB };
	struct vdisk *e = NULL;
	assert_int_equal(vdisk_create(tmp_path("exists.img"), &o, &e), -EEXIST);
	assert_null(e);
	assert_non_null(strstr(vdisk_errmsg(), "cannot create"));
	/* The failed create must not have removed the existing image. */
	assert_int_equal(access(tmp_path("exists.img"), F_OK), 0);
	assert_int_equal(vdisk_close(d), 0);
}

static void test_bounds(void **state)
{
	(void)state;
	struct vdisk *d = new_raw("bounds.img", MIB);
	uint8_t buf[1024] = { 0 };
	assert_int_equal(vdisk_size_bytes(d), MIB);
	assert_int_equal(vdisk_read(d, MIB - 512, buf, 512), 0);
	assert_int_equal(vdisk_read(d, MIB - 512, buf, 1024), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "outside the 1048576-byte disk"));
	assert_int_equal(vdisk_write(d, UINT64_MAX - 10, buf, 100), -EINVAL);
	assert_int_equal(vdisk_read(d, MIB, buf, 0), 0);
	/* Unaligned I/O is allowed. */
	memset(buf, 0xab, 7);
	assert_int_equal(vdisk_write(d, 3, buf, 7), 0);
	uint8_t back[16];
	assert_int_equal(vdisk_read(d, 0, back, 16), 0);
	assert_int_equal(back[2], 0);
	assert_int_equal(back[3], 0xab);
	assert_int_equal(back[9], 0xab);
	assert_int_equal(back[10], 0);
	assert_int_equal(vdisk_close(d), 0);
}

static void test_readonly_and_lock(void **state)
{
	(void)state;
	vdisk_close(new_raw("ro.img", MIB));
	struct vdisk *ro = NULL, *rw = NULL, *ro2 = NULL;
	uint8_t b[512] = { 1 };
	assert_int_equal(vdisk_open(tmp_path("ro.img"), 0, &ro), 0);
	assert_int_equal(vdisk_write(ro, 0, b, 512), -EBADF);
	assert_int_equal(vdisk_resize(ro, 2 * MIB), -EBADF);
	/* A writer is refused while a reader holds the image; a second reader is fine. */
	assert_int_equal(vdisk_open(tmp_path("ro.img"), VDISK_OPEN_RDWR, &rw), -EBUSY);
	assert_null(rw);
	assert_non_null(strstr(vdisk_errmsg(), "in use"));
	assert_int_equal(vdisk_open(tmp_path("ro.img"), 0, &ro2), 0);
	vdisk_close(ro2);
	vdisk_close(ro);
	assert_int_equal(vdisk_open(tmp_path("ro.img"), VDISK_OPEN_RDWR, &rw), 0);
	vdisk_close(rw);
}

static void test_map_holes(void **state)
{
	(void)state;
	struct vdisk *d = new_raw("map.img", 16 * MIB);
	uint8_t b[4096];
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(vdisk_write(d, 8 * MIB, b, sizeof(b)), 0);
	assert_int_equal(vdisk_flush(d), 0);
	uint64_t run;
	unsigned st;
	assert_int_equal(vdisk_map(d, 0, 16 * MIB, &run, &st), 0);
	assert_int_equal(st, VDISK_EXTENT_ZERO);
	assert_int_equal(run, 8 * MIB);
	assert_int_equal(vdisk_map(d, 8 * MIB, 16 * MIB, &run, &st), 0);
	assert_int_equal(st, VDISK_EXTENT_DATA);
	assert_true(run >= 4096 && run <= 8 * MIB);
	assert_int_equal(vdisk_map(d, 16 * MIB, 1, &run, &st), -EINVAL);
	vdisk_close(d);
}

static void test_resize(void **state)
{
	(void)state;
	struct vdisk *d = new_raw("resize.img", 4 * MIB);
	uint8_t b[512];
	memset(b, 0x11, sizeof(b));
	assert_int_equal(vdisk_write(d, 3 * MIB, b, sizeof(b)), 0);
	assert_int_equal(vdisk_resize(d, 4 * MIB + 100), -EINVAL);
	assert_int_equal(vdisk_resize(d, 8 * MIB), 0);
	assert_int_equal(vdisk_size_bytes(d), 8 * MIB);
	assert_int_equal(vdisk_resize(d, 2 * MIB), -ENOSPC);
	assert_non_null(strstr(vdisk_errmsg(), "data is allocated at offset"));
	assert_int_equal(vdisk_size_bytes(d), 8 * MIB);
	assert_int_equal(vdisk_resize(d, 3 * MIB + 512), 0);
	uint8_t back[512];
	assert_int_equal(vdisk_read(d, 3 * MIB, back, sizeof(back)), 0);
	assert_memory_equal(back, b, sizeof(b));
	vdisk_close(d);
}

/* Copy keeps every byte, writes nothing for zeros (the destination stays sparse). */
static void test_copy_sparse_and_compare(void **state)
{
	(void)state;
	struct vdisk *s = new_raw("src.img", 64 * MIB);
	uint8_t b[8192];
	srand(7);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)rand();
	assert_int_equal(vdisk_write(s, 5, b, 100), 0);
	assert_int_equal(vdisk_write(s, 33 * MIB - 4000, b, sizeof(b)), 0);
	/* An allocated but all-zero megabyte must not be copied as data. */
	uint8_t *z = calloc(1, MIB);
	assert_int_equal(vdisk_write(s, 40 * MIB, z, MIB), 0);
	free(z);
	assert_int_equal(vdisk_write(s, 64 * MIB - 1, b, 1), 0);
	struct vdisk *t = new_raw("dst.img", 64 * MIB);
	assert_int_equal(vdisk_copy(s, t, NULL, NULL), 0);
	uint64_t diff = 42;
	assert_int_equal(vdisk_compare(s, t, &diff, NULL, NULL), 0);
	struct stat st;
	assert_int_equal(stat(tmp_path("dst.img"), &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= 64 * 1024);
	/* One changed byte is found at its exact offset. */
	uint8_t x = (uint8_t)(b[0] ^ 0xff);
	assert_int_equal(vdisk_write(t, 33 * MIB - 4000, &x, 1), 0);
	assert_int_equal(vdisk_compare(s, t, &diff, NULL, NULL), 1);
	assert_int_equal(diff, 33 * MIB - 4000);
	/* Sizes differ: reported at the smaller size. */
	assert_int_equal(vdisk_write(t, 33 * MIB - 4000, b, 1), 0);
	assert_int_equal(vdisk_resize(t, 65 * MIB), 0);
	assert_int_equal(vdisk_compare(s, t, &diff, NULL, NULL), 1);
	assert_int_equal(diff, 64 * MIB);
	vdisk_close(t);
	vdisk_close(s);
}

static void test_copy_size_mismatch(void **state)
{
	(void)state;
	struct vdisk *s = new_raw("a.img", MIB), *t = new_raw("b.img", 2 * MIB);
	assert_int_equal(vdisk_copy(s, t, NULL, NULL), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "sizes differ"));
	vdisk_close(s);
	vdisk_close(t);
}

static void test_open_errors(void **state)
{
	(void)state;
	struct vdisk *d = NULL;
	assert_int_equal(vdisk_open(tmp_path("missing.img"), 0, &d), -ENOENT);
	assert_non_null(strstr(vdisk_errmsg(), "missing.img"));
	/* Raw images must be whole sectors. */
	int fd = open(tmp_path("odd.img"), O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(vdisk_open(tmp_path("odd.img"), 0, &d), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "not a multiple of 512"));
	assert_null(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_refuses_existing),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_readonly_and_lock),
		cmocka_unit_test(test_map_holes),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_copy_sparse_and_compare),
		cmocka_unit_test(test_copy_size_mismatch),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests_name("vdisk", tests, setup, teardown);
}
