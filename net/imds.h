/*
 * imds.h - the EC2 instance metadata service (IMDS), version 2 only, on the
 * event loop over net/httpc.h: instance role credentials today, user-data
 * at boot later.
 *
 * IMDSv2 (AWS, "How Instance Metadata Service Version 2 works"): a session
 * token first, PUT /latest/api/token with the header
 * X-aws-ec2-metadata-token-ttl-seconds (1 to 21600), then every GET carries
 * it in X-aws-ec2-metadata-token.  This client never sends a GET without a
 * token, so it works on instances that require IMDSv2 (HttpTokens=required,
 * where a GET without one gets 401) and never falls back to IMDSv1.
 *
 * The token: one per client, shared by every request.  It is fetched when a
 * request needs it and none is held (requests arriving meanwhile wait for
 * the same fetch), and kept for the TTL the service grants (its
 * X-aws-ec2-metadata-token-ttl-seconds answer when present, else the TTL
 * asked for), counted from when the PUT was sent.  It is renewed by the
 * first request made in the last quarter of that TTL (at most the last
 * minute), so a request never goes out with a token about to lapse.  A GET
 * answered 401 means the service no longer knows the token (it expired, or
 * the service restarted): the token is dropped and the GET goes again once
 * with a fresh one; a second 401 is the answer.
 *
 *   request --no token--> WAIT_TOKEN --token--> SENT --200--> callback(0)
 *      |                      ^                  |--401 (first)--> WAIT_TOKEN
 *      `--token held----------|----------------->|--404--> callback(SL_E_NOTFOUND)
 *                             |                  |--timeout, error, 5xx--> BACKOFF
 *                             |                  `--other status--> callback(SL_E_REMOTE)
 *                             `--token fetch failed for good--> callback(its error)
 *   BACKOFF --delay--> SENT (or, past max_attempts, callback(the last error))
 *
 * Retries: timeouts, connection errors and 5xx answers are tried again, for
 * GETs and for the token's PUT alike, up to max_attempts in all, after
 * backoff_ms, doubled for each further attempt, with jitter (half to all of
 * it).  Other answers are final: a 4xx to the PUT (403: IMDS is disabled or
 * the token hop limit is too low; 404 or 405: no IMDSv2) fails every request
 * waiting for the token with SL_E_REMOTE, and the next request tries again.
 *
 * Timeouts are short, as the service is local: each attempt has a deadline
 * of request_timeout_ms covering the wait for a connection, connect, send
 * and the whole answer.  The HTTP client is the caller's: its own
 * connect_timeout_ms applies under that deadline (a client made for IMDS
 * alone, as at boot for user-data, should use about 1000 ms).
 *
 * Endpoint: cfg->endpoint, else AWS_EC2_METADATA_SERVICE_ENDPOINT (as AWS's
 * SDKs read it), else http://169.254.169.254.  Accepted forms:
 * http://HOST[:PORT][/] and https://HOST[:PORT][/] (https needs a client
 * with a tls_open hook), HOST a name, an IPv4 address or a bracketed IPv6
 * address ("http://[fd00:ec2::254]").
 *
 * Results: the callback gets err 0 and the body (status 200), or
 *   SL_E_NOTFOUND  404: no such item (no user-data, no role attached)
 *   SL_E_REMOTE    another status (given in status), after the retries for
 *                  5xx, or a 401 that survived a fresh token; or the token
 *                  PUT was refused (status is the PUT's)
 *   SL_E_TOOBIG    the body passed max_body
 *   and httpc's errors (SL_E_TIMEOUT, -ECONNREFUSED, SL_E_PROTO, ...) once
 *   retries are spent; status is 0 when no answer came.
 * Callbacks run from the loop, never from inside imds_get(), exactly once
 * per accepted request unless it is cancelled first.  A callback may call
 * imds_get(), imds_cancel() on other requests, and imds_free().
 *
 * Ownership: path is copied by imds_get().  body belongs to the client and
 * is valid until the callback returns.  Neither the token nor any body is
 * ever logged.
 */
#ifndef SL_NET_IMDS_H
#define SL_NET_IMDS_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/err.h"
#include "../kernel/loop.h"

struct httpc;

/* Zero fields take the defaults named. */
struct imds_config {
	const char *endpoint;		/* NULL: as above */
	uint32_t token_ttl_s;		/* 21600 (the maximum); at most 21600 */
	uint64_t request_timeout_ms;	/* 2000: each attempt's deadline */
	int max_attempts;		/* 3: attempts per request, and per token fetch */
	uint64_t backoff_ms;		/* 100: before the second attempt, then doubled */
	size_t max_body;		/* 65536: body cap when imds_get gets 0 */
};

/* The endpoint used when neither cfg nor the environment names one. */
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_MAX_TOKEN_TTL_S 21600

struct imds;
struct imds_req;

/* err 0: status 200 and body; otherwise see "Results" above.  body is borrowed. */
typedef void (*imds_fn)(void *arg, int err, int status, const uint8_t *body, size_t len);

struct imds_stats {
	uint64_t token_fetches;		/* token PUTs sent (every attempt) */
	uint64_t tokens;		/* tokens received */
	uint64_t gets;			/* GETs sent (every attempt) */
	uint64_t retries;		/* attempts after a timeout, error or 5xx */
	uint64_t stale_tokens;		/* 401s that dropped the token */
};

/*
 * A client for the endpoint above, on l, sending through http (borrowed; it
 * must outlive the client).  Returns 0 and *out, SL_E_CONFIG for an endpoint it cannot use (logged,
 * naming where it came from), SL_E_INVALID for a bad cfg, or SL_E_NOMEM.
 */
SL_MUST_CHECK int imds_new(struct loop *l, struct httpc *http, const struct imds_config *cfg,
			   struct imds **out);
/*
 * Free the client.  Requests still outstanding are dropped: their callbacks
 * are not called.  Safe from inside a callback.
 */
void imds_free(struct imds *m);

/*
 * GET path (absolute, already encoded: "/latest/meta-data/iam/security-
 * credentials/"), its body capped at max_body (0: the config's).  Returns 0
 * (the callback will come; *handle, if not NULL, names the request for
 * imds_cancel until its callback starts), or a negative error and no
 * callback: SL_E_INVALID (path not absolute, or with bytes a target cannot
 * hold), SL_E_NOMEM, or an error of httpc_send().
 */
SL_MUST_CHECK int imds_get(struct imds *m, const char *path, size_t max_body, imds_fn fn,
			   void *arg, struct imds_req **handle);
/* Forget a request: no callback.  A no-op from inside its own callback. */
void imds_cancel(struct imds *m, struct imds_req *r);

/* The endpoint in use, as "http://host:port". */
const char *imds_endpoint(const struct imds *m);
void imds_get_stats(const struct imds *m, struct imds_stats *out);

#endif
