/*
 * tls.h - TLS client sessions over BearSSL for the S3 client, on
 * non-blocking sockets driven by the event loop.
 *
 * Two objects:
 *
 *   struct tls_ctx   shared by every connection: the trust anchors (those
 *                    compiled in from Debian's ca-certificates, plus the
 *                    CA certificates of sluice.s3.ca.file) and the insecure
 *                    switch.  Created once at start, freed after the last
 *                    session that uses it.
 *   struct tls_sess  one per TCP connection: a BearSSL client engine, its
 *                    record buffers (BR_SSL_BUFSIZE_BIDI, full records both
 *                    ways) and the socket it reads and writes.
 *
 * Protocol: TLS 1.2 only (BearSSL has no 1.3; every S3 endpoint speaks 1.2),
 * BearSSL's full client suite list, renegotiation refused.
 *
 * Verification: the server's chain must end on a trust anchor, every
 * certificate must be valid at the real clock (CLOCK_REALTIME), and the
 * end-entity certificate must name the server: a DNS name is sent as SNI and
 * matched against the certificate's dNSName entries (BearSSL's rules,
 * wildcards included); an IP literal is sent without SNI (RFC 6066 forbids
 * it) and matched against the certificate's iPAddress entries.  Insecure
 * mode skips all of that (chain, dates and name) and takes the server's key
 * from its first certificate; it exists for tests and logs a warning every
 * time a context is created with it.
 *
 * The transport functions (tls_read, tls_write, tls_events, tls_close) take
 * the session as void * so that they fit the HTTP client's transport table
 * directly.  None of them blocks: the handshake runs inside the first reads
 * and writes.
 *
 *   tls_read(t, buf, n)   > 0  plaintext bytes copied into buf (n > 0)
 *                         0    the server closed cleanly (close_notify)
 *                         -EAGAIN  wait for tls_events(t) on the socket
 *                         < 0  failure, sticky (every later call returns it):
 *                              SL_E_TLS   handshake or verification failed
 *                                         (the BearSSL code is logged and
 *                                         kept: tls_br_error())
 *                              SL_E_CLOSED the socket ended without a
 *                                         close_notify after the handshake
 *                                         (truncation, or an idle keep-alive
 *                                         connection dropped by the server)
 *                              -errno     the socket failed (-ECONNREFUSED,
 *                                         -ECONNRESET, ...)
 *   tls_write(t, buf, n)  > 0  bytes accepted (the engine encrypts them and
 *                              sends what the socket takes; each call ends a
 *                              record, so pass large chunks), or -EAGAIN or
 *                              an error as above.  n == 0 returns 0.
 *   tls_events(t)         EPOLLIN and/or EPOLLOUT: what the last -EAGAIN
 *                         waited for; 0 once the session is finished.
 *   tls_close(t)          sends a close_notify if the socket takes it at once,
 *                         then frees the session.  The socket stays the
 *                         caller's: it is neither closed nor unregistered.
 *
 * Both tls_read and tls_write move records both ways, so after a write that
 * left encrypted bytes unsent, the reads that follow push them out (and ask
 * for EPOLLOUT while they wait).  Application data the server sends while the
 * caller is only writing stays in the engine until read.
 */
#ifndef SL_NET_TLS_H
#define SL_NET_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <bearssl_x509.h>
#include "../kernel/err.h"

struct tls_ctx;
struct tls_sess;

/*
 * A context with the compiled-in anchors, plus every certificate of the PEM
 * file ca_file when it is neither NULL nor "" (sluice.s3.ca.file), and
 * insecure mode when insecure is non-zero.  A CA file that cannot be read,
 * holds no certificate, or holds one BearSSL cannot use gives SL_E_CONFIG
 * with a log line naming the file and the certificate.  The caller frees the
 * context with tls_ctx_free() after its last session is closed.
 */
SL_MUST_CHECK int tls_ctx_new(const char *ca_file, int insecure, struct tls_ctx **out);
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * The anchors a context trusts, compiled-in ones first; *count gets their
 * number.  Borrowed: valid until tls_ctx_free().
 */
const br_x509_trust_anchor *tls_ctx_anchors(const struct tls_ctx *ctx, size_t *count);

/* The compiled-in anchors alone (build/gen/trust_anchors.c). */
const br_x509_trust_anchor *tls_builtin_anchors(size_t *count);

/*
 * A session over fd (a non-blocking TCP socket, connected or still
 * connecting) to server_name (the host of the URL: a DNS name or an IP
 * literal, at most 255 bytes).  The handshake starts with the first
 * tls_read or tls_write.  ctx must outlive the session; fd must stay open
 * until tls_close.  Returns 0, SL_E_INVALID (empty or too long a name) or
 * SL_E_NOMEM.
 */
SL_MUST_CHECK int tls_open(struct tls_ctx *ctx, int fd, const char *server_name,
			   struct tls_sess **out);

ssize_t tls_read(void *t, void *buf, size_t n);
ssize_t tls_write(void *t, const void *buf, size_t n);
unsigned tls_events(void *t);
void tls_close(void *t);

/* 1 once the handshake has completed (the server is verified), else 0. */
int tls_established(const struct tls_sess *s);

/*
 * The BearSSL error code behind a session's SL_E_TLS (BR_ERR_* or
 * BR_ERR_X509_*; BR_ERR_RECV_FATAL_ALERT + alert when the server refused
 * us), or 0 when the session has not failed that way.
 */
int tls_br_error(const struct tls_sess *s);

/*
 * Names a BearSSL error code in buf (len bytes, TLS_ERRSTR_LEN is enough)
 * and returns buf: "certificate not trusted (BR_ERR_X509_NOT_TRUSTED)",
 * "server name mismatch (BR_ERR_X509_BAD_SERVER_NAME)", or for alerts
 * "server sent alert unknown_ca (BR_ERR_RECV_FATAL_ALERT+48)".
 */
#define TLS_ERRSTR_LEN 128
const char *tls_br_strerror(int br_err, char *buf, size_t len);

#endif
