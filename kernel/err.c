/*
 * err.c - names for the one error space, and the assertion failure path.
 *
 * Owns: the table of Sluice's own error names.  Invariant: the table has one
 * entry per code from SL_E_BASE up to SL_E_END, in enum order, so indexing by
 * (err - SL_E_BASE) is exact; the static assert below catches a code added to
 * err.h without a name here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"

static const char *const sl_err_names[] = {
	"input ended before a complete item",	/* SL_E_SHORT */
	"length or count exceeds its cap",	/* SL_E_TOOBIG */
	"malformed input",			/* SL_E_INVALID */
	"out of memory",			/* SL_E_NOMEM */
	"buffer or queue full",			/* SL_E_FULL */
	"closed",				/* SL_E_CLOSED */
	"configuration error",			/* SL_E_CONFIG */
	"already exists",			/* SL_E_EXISTS */
	"not found",				/* SL_E_NOTFOUND */
	"checksum or magic mismatch",		/* SL_E_CORRUPT */
	"timed out",				/* SL_E_TIMEOUT */
	"protocol violation by the peer",	/* SL_E_PROTO */
	"TLS failure",				/* SL_E_TLS */
	"remote service error",			/* SL_E_REMOTE */
	"not available yet",			/* SL_E_AGAIN */
};

_Static_assert(sizeof(sl_err_names) / sizeof(sl_err_names[0]) ==
	       (size_t)(SL_E_END - SL_E_BASE), "sl_err_names out of step with err.h");

const char *sl_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err >= SL_E_BASE && err < SL_E_END)
		return sl_err_names[err - SL_E_BASE];
	if (err < 0 && err >= -4095)
		return strerror(-err);
	return "unknown error";
}

void sl_assert_fail(const char *expr, const char *file, int line)
{
	/* stderr is unbuffered, but flush in case someone changed that. */
	fprintf(stderr, "assertion failed: %s at %s:%d\n", expr, file, line);
	fflush(stderr);
	abort();
}
