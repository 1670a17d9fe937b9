/*
 * s3.h - the S3 client: object operations on one bucket, asynchronous, on
 * the event loop, with retries.
 *
 * A struct s3 talks to the bucket of one parsed sluice.objects.url
 * (storage/s3url.h): AWS S3 or an S3-compatible server, virtual-hosted or
 * path-style, HTTP or HTTPS.  It owns an HTTP client (net/httpc.h) with a
 * pool of keep-alive connections to the endpoint and a TLS context
 * (net/tls.h); it borrows a credentials provider (storage/s3cred.h) and the
 * loop.  Every request is signed with SigV4 (storage/sigv4.h), with the
 * payload's SHA-256 in x-amz-content-sha256, and the session token when
 * the credentials have one.
 *
 * Operations (keys are relative to the URL's prefix, raw, not encoded):
 *
 *   s3_put          PUT of a whole buffer; above multipart_threshold bytes a
 *                   multipart upload: CreateMultipartUpload, the parts
 *                   (parts_in_flight at a time), CompleteMultipartUpload;
 *                   when a part fails for good the upload is aborted
 *                   (AbortMultipartUpload) before the callback.
 *   s3_put_if_absent  PUT with If-None-Match: * (S3's conditional write):
 *                   the object is created only if the key does not exist.
 *                   Always one PUT, never multipart (at most S3_MAX_PUT
 *                   bytes).  412 PreconditionFailed ends it with
 *                   err SL_E_EXISTS (status and Code kept); 409
 *                   ConditionalRequestConflict (another write of the key
 *                   was under way) is retried like a 503.  Servers that
 *                   ignore the header (s3rver, older MinIO) overwrite.
 *                   A request sent twice (a retry here, or net/httpc's
 *                   resend on a closed keep-alive connection, which
 *                   attempts does not count) may meet the object its own
 *                   first copy created: SL_E_EXISTS means "exists, maybe
 *                   ours"; read it back and compare to know.
 *   s3_get          GET, optionally of a byte range; the body comes back as
 *                   a buffer the callback may keep.
 *   s3_head         HEAD: size and ETag.
 *   s3_delete       DELETE of one key (S3 answers 204 for a key that does
 *                   not exist, too).
 *   s3_delete_many  DeleteObjects in batches of at most 1000 keys, one batch
 *                   after another, with Content-MD5; keys S3 could not
 *                   delete are listed with their Code and Message.
 *   s3_list         ListObjectsV2 under a prefix, following continuation
 *                   tokens to the end (one callback), or one page per call.
 *
 * Each returns 0 and calls its callback exactly once later, or returns a
 * negative error at once (SL_E_INVALID for a bad key or argument,
 * SL_E_NOMEM, SL_E_CLOSED while the client is being freed) and never calls
 * it.  Callbacks run from the loop, never from inside an s3_* call; they
 * may start and cancel other operations, but must not call s3_free().
 *
 * Results (struct s3_result): err is 0, or
 *   SL_E_REMOTE   S3 answered with an error status (status set), or with an
 *                 <Error> document inside a 200 (CompleteMultipartUpload,
 *                 DeleteObjects); code and message are S3's (both "" when
 *                 the answer had no XML error body, as with HEAD);
 *   SL_E_EXISTS   s3_put_if_absent only: 412, the key exists (status, code set);
 *   SL_E_TIMEOUT  a deadline passed (an attempt's request_timeout_ms, the
 *                 total max_total_ms, or waiting for credentials);
 *   SL_E_CLOSED, -ECONNRESET, -ECONNREFUSED, ...  the connection failed;
 *   SL_E_PROTO, SL_E_TOOBIG  the server broke HTTP, sent an oversized head
 *                 or body, or a document that is not what S3 sends;
 *   SL_E_TLS      the TLS handshake or the certificate check failed (the
 *                 reason is logged by net/tls.c);
 *   other errors from the layers below (net/httpc.h lists them).
 *
 * Retries.  Every request S3 operations send here is safe to repeat:
 * GET, HEAD, PUT of an object or a part, DELETE, DeleteObjects, ListObjects,
 * CompleteMultipartUpload and AbortMultipartUpload are idempotent.
 * CreateMultipartUpload (a POST) is not, strictly: a lost answer and a
 * repeat leave an empty upload behind.  It is retried anyway, because that
 * upload holds no data, is never visible as an object, and is removed by the
 * bucket's AbortIncompleteMultipartUpload lifecycle rule; failing the whole
 * put instead would lose more than it saves.  A request is retried when
 *   - the answer was 500, 502, 503 (SlowDown) or 504, a 400 with Code
 *     RequestTimeout, or a 200 whose <Error> document says InternalError or
 *     SlowDown;
 *   - the answer was 409 ConditionalRequestConflict to s3_put_if_absent;
 *   - or the attempt failed with SL_E_TIMEOUT, SL_E_CLOSED, -ECONNRESET,
 *     -EPIPE, -ECONNABORTED, -ECONNREFUSED or SL_E_FULL (the connection
 *     pool's queue);
 * after a delay drawn uniformly from [0, min(backoff_cap_ms,
 * backoff_base_ms * 2^(attempt-1))] ("full jitter"), waited on a loop timer.
 * A request makes at most max_attempts attempts and never runs past
 * max_total_ms from its start: each attempt's deadline is cut to what is
 * left, and no retry starts when its delay would pass the end.  Each retry
 * is logged at debug, each give-up at warn with the reason.  4xx answers
 * (but RequestTimeout), TLS, protocol and size errors are not retried.
 *
 * Credentials are asked for at every attempt (s3cred_get with the wall
 * clock), and each attempt is signed afresh with the time and the
 * credentials of that moment.  When the provider has none yet the request
 * waits for them (s3cred_wait), within its max_total_ms.
 *
 * Hashing.  x-amz-content-sha256 of a large body (a part is 8 MiB) costs
 * tens of milliseconds, so bodies above 64 KiB are hashed on the loop in
 * steps of 256 KiB, one step per loop turn: other work runs in between.
 * The hash is kept across retries.
 *
 * Ownership:
 *   - s3_new copies the URL and the options' strings; the loop, the
 *     credentials provider and a lent resolver must outlive the client.
 *   - Keys and arguments are copied by the call.  s3_put's buffer is
 *     borrowed: it must stay valid and unchanged until the callback starts or
 *     s3_cancel() returns.
 *   - A struct s3_result and everything it points to belong to the client
 *     and are valid until the callback returns; the callback may keep a
 *     GET's body with s3_result_take_body() (then it free()s it).
 *   - An operation's handle is valid from the call until its callback starts
 *     or s3_cancel() returns.
 *
 * Cancellation: s3_cancel() stops an operation at once: its requests are
 * cancelled (a request on the wire closes its connection), no callback is
 * called, the put buffer is no longer touched.  A multipart upload that was
 * created is then aborted in the background (logged, no callback).
 * s3_free() ends every operation still running with SL_E_CLOSED (callbacks
 * run before it returns) and drops background aborts.
 */
#ifndef SL_STORAGE_S3_H
#define SL_STORAGE_S3_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/err.h"
#include "../kernel/loop.h"
#include "s3cred.h"
#include "s3url.h"

struct resolver;
struct s3;
struct s3_op;

#define S3_CODE_MAX	64	/* S3's Code, cut to fit */
#define S3_MESSAGE_MAX	256	/* S3's Message, cut to fit */
#define S3_ETAG_MAX	128
#define S3_MIN_PART	(5u << 20)	/* S3's smallest part but the last */
#define S3_MAX_PUT	((size_t)5 << 30)	/* S3's largest single PUT */

/*
 * How the client asks for credentials.  By default (NULL in the options)
 * it calls s3cred_get/s3cred_wait/s3cred_unwait on the provider given to
 * s3_new; a test or a tool may lend functions of its own instead, with p
 * passed back as their first argument.
 */
struct s3_cred_ops {
	const struct s3_creds *(*get)(void *p, int64_t wall_now_ms);
	void (*wait)(void *p, struct s3cred_waiter *w);
	void (*unwait)(void *p, struct s3cred_waiter *w);
};

/* Zero fields take the defaults named. */
struct s3_options {
	uint64_t request_timeout_ms;	/* 30000: one attempt, queueing to last byte */
	uint64_t connect_timeout_ms;	/* 10000: lookup and TCP connect */
	uint64_t max_total_ms;		/* 120000: a request, every attempt and delay */
	int max_attempts;		/* 10 */
	uint64_t backoff_base_ms;	/* 100 */
	uint64_t backoff_cap_ms;	/* 5000 */
	size_t part_size;		/* 8 MiB; S3 wants >= S3_MIN_PART (tests use less);
					   raised when the object would need > 10000 parts */
	size_t multipart_threshold;	/* 8 MiB: larger puts go multipart */
	int parts_in_flight;		/* 4 */
	int max_conns;			/* 16: connections to the endpoint */
	size_t max_get_bytes;		/* 256 MiB: a GET's body cap (with a range too: a
					   server may ignore it and send everything) */
	const char *ca_file;		/* extra trusted CAs (PEM), "" or NULL: none */
	int insecure;			/* 1: no certificate checks (tests only; logged) */
	struct resolver *resolver;	/* borrowed; NULL: the HTTP client's own */
	const struct s3_cred_ops *cred_ops;	/* NULL: s3cred.h's functions */
};

/* One object of a listing. */
struct s3_object {
	const char *key;		/* relative to the URL's prefix */
	uint64_t size;
	const char *etag;		/* quotes included; NULL if absent */
	int64_t last_modified_ms;	/* -1 if absent */
};

/* A key DeleteObjects did not delete. */
struct s3_key_error {
	const char *key;		/* relative to the URL's prefix */
	const char *code;
	const char *message;		/* "" if absent */
};

struct s3_result {
	int err;			/* see the top of this file */
	int status;			/* the last HTTP status seen; 0 if none */
	const char *code;		/* S3's Code, or "" */
	const char *message;		/* S3's Message, or "" */
	int attempts;			/* attempts of the request that ended the op */
	/* s3_get: the body (NULL when empty); size also for s3_head */
	uint8_t *body;
	size_t body_len;
	uint64_t size;			/* head: Content-Length; put: bytes stored */
	const char *etag;		/* head and put (quotes kept); "" if none */
	/* s3_list */
	const struct s3_object *objects;
	size_t nobjects;
	const char *const *prefixes;	/* common prefixes (with a delimiter), relative */
	size_t nprefixes;
	int truncated;			/* one_page: more pages follow */
	const char *next_token;		/* one_page and truncated: pass it on; else NULL */
	int pages;			/* pages fetched */
	/* s3_delete_many */
	size_t ndeleted;		/* keys of finished batches not listed in key_errors */
	const struct s3_key_error *key_errors;
	size_t nkey_errors;
	/* s3_put */
	int parts;			/* 0 for a single PUT */
};

typedef void (*s3_fn)(void *arg, struct s3_result *r);

/* An inclusive byte range, as HTTP's "Range: bytes=first-last". */
struct s3_range {
	uint64_t first;
	uint64_t last;			/* >= first */
};

struct s3_list_args {
	const char *prefix;		/* relative; NULL or "": everything under the URL */
	const char *delimiter;		/* NULL: none */
	const char *token;		/* a previous page's next_token; NULL: the start */
	uint32_t page_keys;		/* max-keys, 1..1000; 0: 1000 */
	int one_page;			/* 1: one page per call; 0: every page, one answer */
	size_t max_objects;		/* all pages: SL_E_TOOBIG past it; 0: 10 million */
};

struct s3_stats {
	uint64_t ops;			/* operations started */
	uint64_t attempts;		/* HTTP requests sent */
	uint64_t retries;
	uint64_t giveups;		/* requests that ran out of attempts or time */
	uint64_t aborts;		/* multipart uploads aborted */
	uint64_t hashed_bytes;		/* payload bytes hashed in loop steps */
	int running;			/* operations not finished, background aborts included */
};

/*
 * A client for u's bucket (kind S3URL_S3).  cred is passed to the
 * credential functions (o->cred_ops, or s3cred.h's).  Returns 0 and *out,
 * SL_E_INVALID (not an s3:// URL, no credentials source), SL_E_CONFIG (the
 * CA file, logged by net/tls.c) or SL_E_NOMEM.  With o->insecure, a warning
 * is logged.
 */
SL_MUST_CHECK int s3_new(struct loop *l, const struct s3url *u, struct s3cred *cred,
			 const struct s3_options *o, struct s3 **out);
void s3_free(struct s3 *s);

SL_MUST_CHECK int s3_put(struct s3 *s, const char *key, const void *buf, size_t len,
			 s3_fn fn, void *arg, struct s3_op **op);
/* Create-only: as s3_put, one PUT with If-None-Match: *; SL_E_EXISTS on 412. */
SL_MUST_CHECK int s3_put_if_absent(struct s3 *s, const char *key, const void *buf, size_t len,
				   s3_fn fn, void *arg, struct s3_op **op);
/* range NULL: the whole object. */
SL_MUST_CHECK int s3_get(struct s3 *s, const char *key, const struct s3_range *range,
			 s3_fn fn, void *arg, struct s3_op **op);
SL_MUST_CHECK int s3_head(struct s3 *s, const char *key, s3_fn fn, void *arg, struct s3_op **op);
SL_MUST_CHECK int s3_delete(struct s3 *s, const char *key, s3_fn fn, void *arg, struct s3_op **op);
/* n >= 1 keys, each as for s3_delete; duplicates are sent as given. */
SL_MUST_CHECK int s3_delete_many(struct s3 *s, const char *const *keys, size_t n,
				 s3_fn fn, void *arg, struct s3_op **op);
SL_MUST_CHECK int s3_list(struct s3 *s, const struct s3_list_args *a, s3_fn fn, void *arg,
			  struct s3_op **op);

/* Stop op: no callback after this returns (a no-op from inside its own callback). */
void s3_cancel(struct s3 *s, struct s3_op *op);

/* Take a GET's body from r: returns it (NULL when empty); the caller free()s it. */
uint8_t *s3_result_take_body(struct s3_result *r, size_t *len);

void s3_get_stats(const struct s3 *s, struct s3_stats *out);

#endif
