/*
 * cr8-shim: LD_PRELOAD library for the harness's outer QEMU (TCG) that survives the one
 * known false assertion of nested SVM with OVMF.
 *
 * OVMF's interrupt return path writes CR8 on every interrupt. With an L2 virtual interrupt
 * pending, QEMU's SVM emulation of that write (helper_write_crN, case 8) calls
 * cpu_interrupt() without the big QEMU lock, and tcg_handle_interrupt asserts
 * bql_locked(): `ERROR:accel/tcg/tcg-accel-ops.c:95:tcg_handle_interrupt: assertion
 * failed: (bql_locked())`. In QEMU 10.0.2 the code after the failed g_assert is the
 * normal path, so returning from glib's assertion handler lets emulation continue
 * correctly. This shim overrides g_assertion_message_expr(), returns for exactly that
 * assertion (function tcg_handle_interrupt, expression mentioning bql_locked) and hands
 * every other assertion to glib. The number of suppressed assertions is printed to
 * stderr once, at exit, so every run records how often the workaround fired.
 * See tests/harness/README.md and shared docs nested-kvm.md.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*assert_fn)(const char *domain, const char *file, int line,
			  const char *func, const char *expr);

/* glib's prototype (gtestutils.h), declared here so the shim needs no glib headers. */
void g_assertion_message_expr(const char *domain, const char *file, int line,
			      const char *func, const char *expr);

static atomic_ulong suppressed;
static atomic_int reported_at_exit;

static void report_suppressed(void)
{
	unsigned long n = atomic_load(&suppressed);

	if (n > 0)
		fprintf(stderr, "cr8-shim: suppressed %lu tcg_handle_interrupt bql_locked assertions\n", n);
}

static int is_cr8_bql_assertion(const char *func, const char *expr)
{
	return func != NULL && expr != NULL && strcmp(func, "tcg_handle_interrupt") == 0 &&
	       strstr(expr, "bql_locked") != NULL;
}

void g_assertion_message_expr(const char *domain, const char *file, int line,
			      const char *func, const char *expr)
{
	assert_fn real;

	if (is_cr8_bql_assertion(func, expr)) {
		if (atomic_fetch_add(&suppressed, 1) == 0 &&
		    atomic_exchange(&reported_at_exit, 1) == 0)
			atexit(report_suppressed);
		return;
	}
	real = (assert_fn)dlsym(RTLD_NEXT, "g_assertion_message_expr");
	if (real != NULL)
		real(domain, file, line, func, expr);
	/* glib's handler does not return; neither may this one for a real assertion. */
	fprintf(stderr, "cr8-shim: assertion failed: %s:%d: %s: (%s)\n",
		file ? file : "?", line, func ? func : "?", expr ? expr : "?");
	abort();
}
