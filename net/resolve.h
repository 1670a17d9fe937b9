/*
 * resolve.h - host names to addresses without blocking the event loop.
 *
 * getaddrinfo() blocks (musl's resolver waits on UDP for seconds when a DNS
 * server is slow or gone), so it never runs on the loop thread.  A resolver
 * owns one worker thread, started at the first name that needs it, which
 * runs the lookups one at a time and wakes the loop through an eventfd.
 *
 *   resolve_start(host)
 *     numeric ("10.0.0.1", "::1", "[::1]")  -> answered at once, no thread
 *     cached and fresh                      -> answered at once
 *     cached, expired, within stale_ms      -> answered at once with the old
 *                                              addresses; one refresh is
 *                                              started in the background
 *     failed recently (within neg_ttl_ms)   -> that error at once
 *     otherwise                             -> queued; fn called later from
 *                                              the loop, once per query
 *
 * So a slow or dead DNS server stalls only the first lookup of a name (and
 * one whose cache entry has been stale for more than stale_ms); it never
 * stalls the loop.  Lookups of one name are shared: many queries, one
 * getaddrinfo.  Names are looked up one after another on the single worker.
 *
 * Errors: SL_E_NOTFOUND (no such name or no address), -EAGAIN (temporary
 * DNS failure), -ENOMEM, SL_E_INVALID (an empty or over-long name), SL_E_FULL
 * (the cache holds RESOLVE_MAX_NAMES names, all in use).  A lookup failure
 * is logged once per lookup, since an operator needs to see DNS failing.
 *
 * Ownership: struct resolve_query is embedded in the caller's object and must
 * stay valid until its callback has been called or resolve_cancel() has
 * returned.  The callback is never called from inside resolve_start(); the
 * addresses it receives are lent for the duration of the call.
 * resolver_free() drops queries still waiting (no callbacks) and returns at
 * once even if the worker is inside getaddrinfo; the worker then cleans up
 * after itself.
 */
#ifndef SL_NET_RESOLVE_H
#define SL_NET_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>
#include "../kernel/err.h"
#include "../kernel/loop.h"

#define RESOLVE_MAX_ADDRS 8
#define RESOLVE_MAX_NAMES 64
#define RESOLVE_MAX_NAME 253

struct resolve_addrs {
	size_t n;
	struct sockaddr_storage addr[RESOLVE_MAX_ADDRS];
	socklen_t len[RESOLVE_MAX_ADDRS];
};

/*
 * The lookup run on the worker thread: fill out (ports are set later) and
 * return 0 or an error as above.  Replaceable so tests can make a resolver
 * slow or failing; NULL means getaddrinfo().
 */
typedef int (*resolve_lookup_fn)(const char *host, struct resolve_addrs *out, void *arg);

struct resolve_config {
	uint64_t ttl_ms;	/* a good answer is fresh this long (default 30 s) */
	uint64_t stale_ms;	/* then served while refreshing, this long (default 300 s) */
	uint64_t neg_ttl_ms;	/* a failure is remembered this long (default 2 s) */
	resolve_lookup_fn lookup;
	void *lookup_arg;
};

/* err is 0 and addrs set (with the query's port), or err < 0 and addrs NULL. */
typedef void (*resolve_fn)(void *arg, int err, const struct resolve_addrs *addrs);

struct resolver;
struct rs_entry;

/* Embedded in the caller's object; fields private to resolve.c. */
struct resolve_query {
	resolve_fn fn;
	void *arg;
	uint16_t port;
	struct rs_entry *entry;		/* non-NULL while waiting */
	struct resolve_query *prev, *next;
};

/* cfg NULL or zero fields: defaults.  NULL and errno set on failure. */
struct resolver *resolver_new(struct loop *l, const struct resolve_config *cfg);
void resolver_free(struct resolver *r);

/*
 * Resolve host for port.  Returns 1 with *out filled when the answer is known
 * now, 0 when fn(arg, ...) will be called later from the loop, or a negative
 * error (now, no callback).
 */
SL_MUST_CHECK int resolve_start(struct resolver *r, struct resolve_query *q, const char *host,
				uint16_t port, resolve_fn fn, void *arg, struct resolve_addrs *out);
/* Forget a waiting query: its callback will not be called.  Idle queries: no-op. */
void resolve_cancel(struct resolver *r, struct resolve_query *q);

/*
 * A numeric IPv4 or IPv6 address (IPv6 optionally in brackets) to *out with
 * port: 1 if host was numeric, 0 if it is a name.
 */
int resolve_numeric(const char *host, uint16_t port, struct resolve_addrs *out);

#endif
