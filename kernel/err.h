/*
 * err.h - the one error space of Sluice.
 *
 * Every function that can fail returns 0 on success or a negative code.
 * Codes from -1 to -4095 are negated errno values (-EIO, -ENOMEM, ...), so a
 * syscall failure travels up unchanged.  Codes at or below SL_E_BASE are
 * Sluice's own.  sl_strerror() names either kind.
 *
 * Kafka error codes are a separate, wire-level space (kafka/kerr.h); they are
 * never returned through this one.
 */
#ifndef SL_ERR_H
#define SL_ERR_H

enum sl_err {
	SL_OK = 0,
	SL_E_BASE = -10000,
	SL_E_SHORT = SL_E_BASE,	/* input ended before a complete item */
	SL_E_TOOBIG,		/* a length or count exceeds its cap */
	SL_E_INVALID,		/* malformed input: bad varint, negative length */
	SL_E_NOMEM,		/* an allocation or an arena cap was refused */
	SL_E_FULL,		/* a bounded buffer or queue is full */
	SL_E_CLOSED,		/* the peer or the object was closed */
	SL_E_CONFIG,		/* a configuration error (message logged) */
	SL_E_EXISTS,		/* the thing already exists */
	SL_E_NOTFOUND,		/* the thing does not exist */
	SL_E_CORRUPT,		/* a checksum or magic did not match */
	SL_E_TIMEOUT,		/* a deadline passed before the work finished */
	SL_E_PROTO,		/* the peer broke its protocol (bad HTTP, bad XML) */
	SL_E_TLS,		/* TLS handshake or certificate verification failed */
	SL_E_REMOTE,		/* a remote service answered with an error */
	SL_E_AGAIN,		/* not available now: start the work that makes it so, then retry */
	SL_E_END		/* one past the last code */
};

/* A static string naming err (our code or a negated errno); never NULL. */
const char *sl_strerror(int err);

/* Marks functions whose result must be checked. */
#define SL_MUST_CHECK __attribute__((warn_unused_result))

/*
 * Invariant checks (HAProxy's BUG_ON).  SL_ASSERT stays on in every build:
 * use it where a broken invariant would corrupt data.  SL_DEBUG_ASSERT is for
 * expensive checks and compiles away unless SL_DEBUG is defined.
 */
void sl_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn));
#define SL_ASSERT(e) ((e) ? (void)0 : sl_assert_fail(#e, __FILE__, __LINE__))
#ifdef SL_DEBUG
#define SL_DEBUG_ASSERT(e) SL_ASSERT(e)
#else
#define SL_DEBUG_ASSERT(e) ((void)0)
#endif

#endif
