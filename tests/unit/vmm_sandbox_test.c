/* tests/unit/vmm_sandbox_test.c - the seccomp confinement really confines: in a child
 * process, after vmm_sandbox_enter(), opening a file and exec fail with EPERM while I/O on
 * an already-open descriptor, mmap and threads' futexes still work. Under AddressSanitizer
 * the sandbox refuses to start (-ENOTSUP), and the test checks exactly that. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

#ifndef UNDER_ASAN
/* Child: returns a bit per check that went wrong, 0 when confined as promised. */
static int confined_child(int pipe_w)
{
	int bad = 0;
	if (vmm_sandbox_enter() != 0)
		return 1;
	errno = 0;
	if (open("/etc/hostname", O_RDONLY) >= 0 || errno != EPERM)
		bad |= 2;
	char *argv[] = { (char *)"/bin/true", NULL };
	errno = 0;
	execv("/bin/true", argv);
	if (errno != EPERM)
		bad |= 4;
	if (write(pipe_w, "ok", 2) != 2)
		bad |= 8;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		bad |= 16;
	return bad;
}
#endif

static void test_sandbox(void **state)
{
	(void)state;
#ifdef UNDER_ASAN
	assert_int_equal(vmm_sandbox_enter(), -ENOTSUP);
#else
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(confined_child(fds[1]));
	close(fds[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	char buf[4] = "";
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "ok", 2);
	close(fds[0]);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
