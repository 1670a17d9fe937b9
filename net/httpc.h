/*
 * httpc.h - the HTTP/1.1 client on the event loop: keep-alive pools per
 * endpoint, deadlines, queueing, cancellation, and a transport hook for TLS.
 *
 * A request names its endpoint (tls, host, port), a method, a target, extra
 * header fields and a body.  It waits in its endpoint's queue until a
 * connection is free, goes out on it, and its callback gets the response.
 *
 *   httpc_send --> QUEUED --idle conn--> ACTIVE --response--> callback(0, resp)
 *                    |                      |--error/timeout--> callback(err, NULL)
 *                    |--timeout--> callback(SL_E_TIMEOUT, NULL)
 *                    `--httpc_cancel (any time before the callback)--> no callback
 *
 * Pools: one per endpoint (tls, host, port), at most max_conns_per_endpoint
 * connections, opening (resolving, connecting), idle or busy.  A connection
 * opens only when queued requests outnumber the ones already opening; one
 * that becomes ready takes the request at the head of the queue.  A
 * connection goes back to the pool only after a complete response that
 * allows keep-alive, with the whole request sent and no byte left over; it
 * is closed after idle_timeout_ms unused, when the server closes it or sends
 * anything while it is idle, and after any error, parse failure, timeout or
 * cancellation of the request on it.
 *
 * Deadlines: each request has one, timeout_ms from httpc_send(), covering
 * the wait in the queue, the lookup, connect, TLS handshake, sending and the
 * whole response.  A stalled server therefore costs a request its deadline,
 * never more, and never blocks the loop: every socket is non-blocking and
 * names are resolved off the loop (net/resolve.h).  Each connection attempt
 * also has connect_timeout_ms; a connection that cannot be made fails the
 * request at the head of the queue with the reason (resolve error, -errno
 * from connect, SL_E_TLS, SL_E_TIMEOUT).
 *
 * One retry: a request that is idempotent (GET, HEAD, PUT, DELETE, OPTIONS)
 * and went out on a reused connection which the server had already closed
 * (closed or reset before any byte of the response) goes back to the head of
 * the queue once.  That is the keep-alive race, not a server fault; anything
 * else is reported, and retrying it is the caller's decision.
 *
 * Results: err is 0 whenever a whole, well-formed response arrived,
 * whatever its status: a 500 or 503 is a response (resp->status), and the
 * caller (the S3 layer) decides what it means.  Otherwise err is one of
 *   SL_E_TIMEOUT  the request's deadline passed (the connection is closed)
 *   SL_E_PROTO    the server broke HTTP (bad status line, garbage fields,
 *                 bad chunk framing, conflicting lengths)
 *   SL_E_TOOBIG   the head passed max_header_bytes or max_headers, or the
 *                 body passed the request's max_body
 *   SL_E_CLOSED   the connection ended before the response did, or the
 *                 client was freed
 *   SL_E_TLS      https without a tls_open hook, or the TLS layer failed
 *   SL_E_NOTFOUND, -EAGAIN  the name could not be resolved
 *   -errno        from socket, connect, read or write (-ECONNREFUSED, ...)
 *   SL_E_NOMEM
 * and resp is NULL.
 *
 * Callbacks: called exactly once per accepted request unless it is
 * cancelled first; never from inside httpc_send() or httpc_cancel(); always
 * from the loop (a deferred task), so a callback may send new requests and
 * cancel others.  A request's handle is valid from httpc_send() until its
 * callback starts or httpc_cancel() returns; do not cancel a request from
 * inside its own callback (it is a no-op there).
 *
 * Ownership:
 *   - The request's strings (host, method, target, header names and values)
 *     are copied by httpc_send(): they may be freed when it returns.
 *   - The body is borrowed: it must stay valid and unchanged until the
 *     callback or httpc_cancel() (bodies up to 8 KiB are copied, but callers
 *     must not rely on that).
 *   - resp and everything it points to belong to the client and are valid
 *     until the callback returns; the callback may keep the body by taking
 *     it with http_response_take_body() (then it free()s it).
 *
 * TLS: the client never links a TLS library.  For tls endpoints it calls
 * cfg->tls_open once per new TCP connection, right after the non-blocking
 * connect completes, and from then on does all I/O on that connection
 * through the returned transport.  Plain TCP is the built-in transport.
 * Transport semantics (the TLS session in net/tls.c provides exactly these):
 *
 *   read(t, buf, n)   > 0: bytes of plaintext; 0: the peer closed cleanly;
 *                     -EAGAIN: nothing now, wait for events(t); any other
 *                     negative value: a fatal error for the connection
 *                     (SL_E_TLS for TLS failures, -errno for the socket).
 *   write(t, buf, n)  > 0: bytes accepted (may be fewer than n); -EAGAIN or
 *                     a negative error as for read.  Accepted bytes must go
 *                     out without waiting for more (the client writes a
 *                     request and then only waits for the answer): a TLS
 *                     session flushes its record at once, and what the
 *                     socket cannot take yet it sends later by itself,
 *                     naming LOOP_WRITE in events() until it has.  Must not
 *                     raise SIGPIPE (use send() with MSG_NOSIGNAL).
 *   events(t)         LOOP_READ and/or LOOP_WRITE (kernel/loop.h): what the
 *                     fd must become ready for before the transport can make
 *                     progress.  Asked after every burst of calls; the client
 *                     polls for exactly that (LOOP_READ if it returns 0).
 *                     epoll's EPOLLIN and EPOLLOUT are understood as well.
 *   close(t)          releases the transport (it may try one non-blocking
 *                     close_notify); it does not close the fd, the client
 *                     does that right after.
 *
 *   Either read or write may need to move records both ways (the handshake
 *   runs inside the first calls, and pending output must be pushed from
 *   read too: once the request is out the client only calls read); a
 *   transport must make progress on either call once the fd is ready for
 *   what events() named.  The client reads until -EAGAIN, and after a long
 *   burst (64 reads) comes back at the next loop turn, whatever the fd
 *   says, so a transport may keep decrypted bytes between calls; other
 *   work runs in between.
 *   tls_open returns NULL (and *ops untouched) on failure: the request fails
 *   with SL_E_TLS.  server_name is the endpoint's host (brackets removed),
 *   for SNI and certificate checks.
 */
#ifndef SL_NET_HTTPC_H
#define SL_NET_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "http.h"
#include "resolve.h"
#include "../kernel/loop.h"

struct http_transport_ops {
	ssize_t (*read)(void *t, void *buf, size_t n);
	ssize_t (*write)(void *t, const void *buf, size_t n);
	unsigned (*events)(void *t);
	void (*close)(void *t);
};

typedef void *(*httpc_tls_open_fn)(void *tls_ctx, int fd, const char *server_name,
				   const struct http_transport_ops **ops);

/* Zero fields take the defaults named. */
struct httpc_config {
	int max_conns_per_endpoint;	/* 8 */
	int max_queued_per_endpoint;	/* 4096; httpc_send gives SL_E_FULL past it */
	uint64_t idle_timeout_ms;	/* 10000 */
	uint64_t connect_timeout_ms;	/* 10000: lookup + TCP connect */
	uint64_t request_timeout_ms;	/* 30000: a request's deadline by default */
	size_t max_header_bytes;	/* HTTP_DEFAULT_MAX_HEADER_BYTES */
	size_t max_headers;		/* HTTP_DEFAULT_MAX_HEADERS */
	size_t max_body;		/* 16 MiB: a request's body cap by default */
	httpc_tls_open_fn tls_open;	/* NULL: https requests fail with SL_E_TLS */
	void *tls_ctx;			/* passed to tls_open */
	struct resolver *resolver;	/* borrowed; NULL: the client makes its own */
};

struct httpc_request {
	int tls;			/* 1 for https */
	const char *host;		/* a name, or a numeric address ("::1" or "[::1]") */
	uint16_t port;			/* 0: 443 with tls, else 80 */
	const char *method;		/* "GET", "PUT", "HEAD", "DELETE", "POST", ... */
	const char *target;		/* "/bucket/key?uploads", already encoded */
	const struct http_header *headers;	/* extra fields (not Host, Content-Length,
						   Transfer-Encoding, Connection) */
	size_t nheaders;
	const void *body;		/* borrowed until the callback or cancel */
	size_t body_len;
	size_t max_body;		/* response body cap; 0: the config's */
	uint64_t timeout_ms;		/* deadline; 0: the config's */
};

/* err 0 and resp set, or err < 0 and resp NULL; see the top of this file. */
typedef void (*httpc_fn)(void *arg, int err, struct http_response *resp);

struct httpc;
struct httpc_req;

struct httpc_stats {
	uint64_t requests;		/* accepted by httpc_send */
	uint64_t responses;		/* callbacks with err == 0 */
	uint64_t failures;		/* callbacks with err < 0 */
	uint64_t timeouts;		/* of which deadlines */
	uint64_t cancels;
	uint64_t connects;		/* connections established */
	uint64_t reuses;		/* requests sent on an already used connection */
	uint64_t retries;		/* keep-alive races retried */
	uint64_t idle_closes;		/* connections closed for idleness */
	int conns;			/* open or opening now, every endpoint */
	int idle;			/* of which idle */
	int queued;			/* requests waiting for a connection now */
};

/* NULL and errno set on failure.  cfg NULL: every default. */
struct httpc *httpc_new(struct loop *l, const struct httpc_config *cfg);
/*
 * Close every connection and free the client.  Requests still outstanding
 * get their callbacks, with SL_E_CLOSED, before this returns; httpc_send()
 * from those callbacks fails with SL_E_CLOSED.
 */
void httpc_free(struct httpc *c);

/*
 * Queue a request.  Returns 0 (the callback will come; *handle, if handle is
 * not NULL, names the request for httpc_cancel) or a negative error and no
 * callback: SL_E_INVALID (bad method, target, host or field; a framing field
 * among the headers), SL_E_TLS (tls without tls_open), SL_E_FULL (the
 * endpoint's queue is full), SL_E_NOMEM, SL_E_CLOSED (the client is being
 * freed).
 */
SL_MUST_CHECK int httpc_send(struct httpc *c, const struct httpc_request *req, httpc_fn fn,
			     void *arg, struct httpc_req **handle);
/*
 * Forget a request: its callback will not be called and its body is no
 * longer touched once this returns.  A request already on a connection
 * closes that connection (the rest of its response cannot be skipped
 * safely).
 */
void httpc_cancel(struct httpc *c, struct httpc_req *req);

/*
 * The Host field the client sends for an endpoint ("s3.amazonaws.com",
 * "127.0.0.1:9000", "[::1]:8080"; the port only when it is not the scheme's
 * default), for signers that must cover it.  0, or SL_E_TOOBIG if n is short.
 */
int httpc_host_value(char *buf, size_t n, int tls, const char *host, uint16_t port);

void httpc_get_stats(const struct httpc *c, struct httpc_stats *out);

#endif
