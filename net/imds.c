/*
 * imds.c - the IMDSv2 client (see imds.h).
 *
 * Owns: the endpoint, the session token and its one fetch in flight, and
 * the requests between imds_get() and their callbacks.
 *
 * Token states (one per client):
 *
 *   IDLE --a request needs a token--> SENT --200, good token--> IDLE (token held)
 *    ^                                 |  \--timeout, error, 5xx--> BACKOFF --delay--> SENT
 *    `--4xx, bad token, attempts spent-'      (waiting requests fail with the error)
 *
 * Invariants:
 *   1. A GET goes out only with the token current when it is sent (r->gen
 *      names it), so no request is ever an IMDSv1 request.
 *   2. Every request is in m->reqs from imds_get() until its callback
 *      starts or it is cancelled; a request is in exactly one state:
 *      WAIT_TOKEN (needs the token), SENT (r->h is httpc's handle), BACKOFF
 *      (r->timer armed), or CALLING (unlinked, its callback running).
 *   3. While a WAIT_TOKEN request exists, the token is being fetched (SENT
 *      or BACKOFF): whoever puts a request in WAIT_TOKEN starts the fetch
 *      or fails the request, and a fetch that ends either sends or fails
 *      every waiting request.
 *   4. User callbacks run between enter() and leave(): imds_free() from a
 *      callback drops every request and marks the client dead, and the
 *      outermost leave() frees it; code after a callback checks leave()'s
 *      answer before touching the client again.
 *   5. The token is never logged, and is wiped when dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "imds.h"
#include "httpc.h"
#include "../kernel/buf.h"
#include "../kernel/log.h"

#define TOKEN_PATH	"/latest/api/token"
#define TTL_HEADER	"X-aws-ec2-metadata-token-ttl-seconds"
#define TOKEN_HEADER	"X-aws-ec2-metadata-token"
#define TOKEN_MAX	4096		/* bytes of a token we accept */
#define RENEW_MAX_MS	60000		/* renew at most this long before the token lapses */
#define ENDPOINT_ENV	"AWS_EC2_METADATA_SERVICE_ENDPOINT"

enum { TK_IDLE, TK_SENT, TK_BACKOFF };
enum { R_WAIT_TOKEN, R_SENT, R_BACKOFF, R_CALLING };

struct imds_req {
	struct imds *m;
	char *path;
	size_t max_body;
	imds_fn fn;
	void *arg;
	int state;
	int attempts;			/* GETs sent */
	int token_retried;		/* a 401 already fetched a fresh token */
	uint64_t gen;			/* the token it was sent with */
	int last_err, last_status;	/* what the last attempt got, for the final answer */
	struct httpc_req *h;
	struct loop_timer timer;
	struct imds_req *prev, *next;
};

struct imds {
	struct loop *l;
	struct httpc *http;		/* borrowed */
	struct imds_config cfg;
	int tls;
	char host[RESOLVE_MAX_NAME + 3];
	uint16_t port;
	char endpoint[RESOLVE_MAX_NAME + 24];
	char ttl_value[12];		/* the TTL header's value, as sent */

	char *token;			/* NULL: none held */
	size_t token_len;
	uint64_t token_gen;		/* bumped for every token received */
	uint64_t token_expires;		/* monotonic ms */
	uint64_t token_renew;		/* monotonic ms: fetch a new one from here on */
	int tk_state;
	int tk_attempts;
	uint64_t tk_sent_at;
	struct httpc_req *tk_h;
	struct loop_timer tk_timer;

	struct imds_req *reqs;		/* every request not yet answered */
	unsigned depth;			/* user callbacks running (nested) */
	int dead;			/* imds_free() was called from a callback */
	uint64_t rng;
	struct imds_stats stats;
};

/* ---- small helpers ---- */

static uint64_t next_rand(struct imds *m)
{
	/* xorshift64*: jitter only, no secrecy needed. */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 2685821657736338717ULL;
}

/* Backoff before attempt n+1 (n >= 1 attempts made): half to all of base * 2^(n-1). */
static uint64_t backoff(struct imds *m, int n)
{
	uint64_t d = m->cfg.backoff_ms;
	int i;

	for (i = 1; i < n && d < 60000; i++)
		d *= 2;
	if (d < 2)
		return d;
	return d / 2 + next_rand(m) % (d / 2 + 1);
}

static int retryable_err(int err)
{
	/* Transport failures: the service may answer the next time. */
	return err == SL_E_TIMEOUT || err == SL_E_CLOSED || err == SL_E_PROTO ||
	       (err < 0 && err > -4096 && err != -ENOMEM && err != -EAGAIN);
}

static void drop_token(struct imds *m)
{
	if (m->token) {
		explicit_bzero(m->token, m->token_len);
		free(m->token);
	}
	m->token = NULL;
	m->token_len = 0;
}

static int token_usable(struct imds *m)
{
	return m->token && loop_now_ms(m->l) < m->token_renew;
}

static void enter(struct imds *m)
{
	m->depth++;
}

static void destroy(struct imds *m)
{
	drop_token(m);
	free(m);
}

/* Returns 1 when the client was freed meanwhile: touch nothing of it then. */
static int leave(struct imds *m)
{
	if (--m->depth > 0)
		return m->dead;
	if (m->dead) {
		destroy(m);
		return 1;
	}
	return 0;
}

static void req_link(struct imds *m, struct imds_req *r)
{
	r->prev = NULL;
	r->next = m->reqs;
	if (m->reqs)
		m->reqs->prev = r;
	m->reqs = r;
}

static void req_unlink(struct imds *m, struct imds_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		m->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void req_free(struct imds_req *r)
{
	free(r->path);
	free(r);
}

/*
 * Answer r: its callback runs now.  Returns 1 if the client was freed from
 * inside it.
 */
static int finish(struct imds_req *r, int err, int status, const uint8_t *body, size_t len)
{
	struct imds *m = r->m;
	int gone;

	req_unlink(m, r);
	loop_timer_cancel(m->l, &r->timer);
	r->state = R_CALLING;
	enter(m);
	r->fn(r->arg, err, status, err ? NULL : body, err ? 0 : len);
	gone = leave(m);
	req_free(r);
	return gone;
}

/* ---- the token ---- */

static void on_token(void *arg, int err, struct http_response *resp);
static int tk_send(struct imds *m);
static int req_send(struct imds_req *r, int fresh);

static void tk_timer(struct loop *l, void *arg)
{
	struct imds *m = arg;
	int err;

	m->stats.retries++;
	if ((err = tk_send(m)) != 0)
		on_token(m, err, NULL);
}

static int tk_send(struct imds *m)
{
	struct http_header h[1] = { { TTL_HEADER, m->ttl_value } };
	struct httpc_request q;
	int err;

	memset(&q, 0, sizeof(q));
	q.tls = m->tls;
	q.host = m->host;
	q.port = m->port;
	q.method = "PUT";
	q.target = TOKEN_PATH;
	q.headers = h;
	q.nheaders = 1;
	q.max_body = TOKEN_MAX;
	q.timeout_ms = m->cfg.request_timeout_ms;
	m->tk_attempts++;
	m->tk_sent_at = loop_now_ms(m->l);
	err = httpc_send(m->http, &q, on_token, m, &m->tk_h);
	if (err == 0) {
		m->tk_state = TK_SENT;
		m->stats.token_fetches++;
	} else {
		m->tk_h = NULL;
	}
	return err;
}

/* Make sure a token is on its way.  0, or why none can be fetched now. */
static int tk_need(struct imds *m)
{
	int err;

	if (m->tk_state != TK_IDLE)
		return 0;
	m->tk_attempts = 0;
	err = tk_send(m);
	if (err)
		m->tk_state = TK_IDLE;
	return err;
}

/* The token's body: visible ASCII only, since it goes back in a header. */
static int token_ok(const uint8_t *p, size_t n)
{
	struct sl_rd r;
	uint8_t c;

	if (n == 0 || n > TOKEN_MAX)
		return 0;
	rd_init(&r, p, n);
	while (rd_u8(&r, &c) == 0)
		if (c < 0x21 || c > 0x7E)
			return 0;
	return 1;
}

/* The TTL the service granted: its header when valid, else what was asked. */
static uint64_t granted_ttl_ms(struct imds *m, const struct http_response *resp)
{
	const char *v = http_response_header(resp, TTL_HEADER);
	uint64_t ttl = 0;

	if (v && *v) {
		for (; *v >= '0' && *v <= '9' && ttl <= IMDS_MAX_TOKEN_TTL_S; v++)
			ttl = ttl * 10 + (uint64_t)(*v - '0');
		if (*v || ttl == 0 || ttl > IMDS_MAX_TOKEN_TTL_S)
			ttl = 0;
	}
	if (ttl == 0)
		ttl = m->cfg.token_ttl_s;
	return ttl * 1000;
}

/* Fail every request waiting for the token. */
static void fail_waiting(struct imds *m, int err, int status)
{
	struct imds_req *r;

	for (;;) {
		for (r = m->reqs; r && r->state != R_WAIT_TOKEN; r = r->next)
			;
		if (!r)
			return;
		if (finish(r, err, status, NULL, 0))
			return;
	}
}

/*
 * Send every request waiting for the token just received.  They go with it
 * whatever its age (fresh), so none goes back to waiting and the loop ends.
 */
static void send_waiting(struct imds *m)
{
	struct imds_req *r;
	int err;

	for (;;) {
		for (r = m->reqs; r && r->state != R_WAIT_TOKEN; r = r->next)
			;
		if (!r)
			return;
		if ((err = req_send(r, 1)) != 0 && finish(r, err, 0, NULL, 0))
			return;
	}
}

static void on_token(void *arg, int err, struct http_response *resp)
{
	struct imds *m = arg;
	int status = resp ? resp->status : 0;
	uint64_t ttl;

	m->tk_h = NULL;
	m->tk_state = TK_IDLE;
	if (err == 0 && status == 200) {
		if (!token_ok(resp->body, resp->body_len)) {
			log_warn("imds", "%s: the token service answered with something that is not a token",
				 m->endpoint);
			err = SL_E_PROTO;
			goto fail;
		}
		drop_token(m);
		m->token = malloc(resp->body_len + 1);
		if (!m->token) {
			err = SL_E_NOMEM;
			goto fail;
		}
		memcpy(m->token, resp->body, resp->body_len);
		m->token[resp->body_len] = '\0';
		m->token_len = resp->body_len;
		m->token_gen++;
		ttl = granted_ttl_ms(m, resp);
		m->token_expires = m->tk_sent_at + ttl;
		m->token_renew = m->token_expires - (ttl / 4 < RENEW_MAX_MS ? ttl / 4 : RENEW_MAX_MS);
		m->stats.tokens++;
		log_debug("imds", "%s: session token for %llu s", m->endpoint,
			  (unsigned long long)(ttl / 1000));
		enter(m);
		send_waiting(m);
		leave(m);
		return;
	}
	if (err == 0 && status >= 500 && status <= 599)
		err = SL_E_REMOTE;
	if ((err == SL_E_REMOTE || (err && retryable_err(err))) &&
	    m->tk_attempts < m->cfg.max_attempts) {
		uint64_t d = backoff(m, m->tk_attempts);

		log_debug("imds", "%s: token request failed (%s%s%.0d), again in %llu ms", m->endpoint,
			  sl_strerror(err), status ? ", status " : "", status, (unsigned long long)d);
		m->tk_state = TK_BACKOFF;
		loop_timer_set(m->l, &m->tk_timer, d);
		return;
	}
	if (err == 0) {
		err = SL_E_REMOTE;
		log_warn("imds", "%s: PUT %s answered %d%s", m->endpoint, TOKEN_PATH, status,
			 status == 403 ? " (IMDS disabled, or the PUT response hop limit too low)" :
			 status == 404 || status == 405 ? " (no IMDSv2 here)" : "");
	}
fail:
	enter(m);
	fail_waiting(m, err, status);
	leave(m);
}

/* ---- requests ---- */

static void on_get(void *arg, int err, struct http_response *resp);

/*
 * Send r with the token held, or make it wait for one.  fresh: the token
 * was just received, use it whatever its age.
 */
static int req_send(struct imds_req *r, int fresh)
{
	struct imds *m = r->m;
	struct http_header h[1];
	struct httpc_request q;
	int err;

	if (!(fresh ? m->token != NULL : token_usable(m))) {
		r->state = R_WAIT_TOKEN;
		return tk_need(m);
	}
	h[0].name = TOKEN_HEADER;
	h[0].value = m->token;
	memset(&q, 0, sizeof(q));
	q.tls = m->tls;
	q.host = m->host;
	q.port = m->port;
	q.method = "GET";
	q.target = r->path;
	q.headers = h;
	q.nheaders = 1;
	q.max_body = r->max_body;
	q.timeout_ms = m->cfg.request_timeout_ms;
	err = httpc_send(m->http, &q, on_get, r, &r->h);
	if (err) {
		r->h = NULL;
		return err;
	}
	r->state = R_SENT;
	r->gen = m->token_gen;
	r->attempts++;
	m->stats.gets++;
	return 0;
}

static void req_timer(struct loop *l, void *arg)
{
	struct imds_req *r = arg;
	struct imds *m = r->m;
	int err;

	m->stats.retries++;
	if ((err = req_send(r, 0)) != 0) {
		enter(m);
		finish(r, err, 0, NULL, 0);
		leave(m);
	}
}

static void on_get(void *arg, int err, struct http_response *resp)
{
	struct imds_req *r = arg;
	struct imds *m = r->m;
	int status = resp ? resp->status : 0;

	r->h = NULL;
	enter(m);
	if (err == 0 && status == 200) {
		finish(r, 0, 200, resp->body, resp->body_len);
	} else if (err == 0 && status == 401 && !r->token_retried) {
		/* The service forgot our token: a fresh one, then once more. */
		r->token_retried = 1;
		m->stats.stale_tokens++;
		if (r->gen == m->token_gen)
			drop_token(m);
		log_debug("imds", "%s: GET %s: 401, renewing the session token", m->endpoint, r->path);
		if ((err = req_send(r, 0)) != 0)
			finish(r, err, 0, NULL, 0);
	} else if (err == 0 && status == 404) {
		finish(r, SL_E_NOTFOUND, 404, NULL, 0);
	} else if ((err == 0 && status >= 500 && status <= 599) || (err && retryable_err(err))) {
		r->last_err = err ? err : SL_E_REMOTE;
		r->last_status = status;
		if (r->attempts < m->cfg.max_attempts) {
			uint64_t d = backoff(m, r->attempts);

			log_debug("imds", "%s: GET %s failed (%s%s%.0d), again in %llu ms", m->endpoint,
				  r->path, sl_strerror(r->last_err), status ? ", status " : "", status,
				  (unsigned long long)d);
			r->state = R_BACKOFF;
			loop_timer_set(m->l, &r->timer, d);
		} else {
			finish(r, r->last_err, status, NULL, 0);
		}
	} else {
		finish(r, err ? err : SL_E_REMOTE, status, NULL, 0);
	}
	leave(m);
}

/* ---- the endpoint ---- */

static int host_char(char c, int bracketed)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	    c == '.' || c == ':')
		return 1;
	if (bracketed)
		return c == '%';
	return (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '-' || c == '_';
}

/* http[s]://HOST[:PORT][/] */
static int parse_endpoint(struct imds *m, const char *s)
{
	const char *p, *h;
	size_t hlen;
	unsigned long port = 0;

	if (strncmp(s, "http://", 7) == 0) {
		m->tls = 0;
		p = s + 7;
	} else if (strncmp(s, "https://", 8) == 0) {
		m->tls = 1;
		p = s + 8;
	} else {
		return SL_E_INVALID;
	}
	h = p;
	if (*p == '[') {
		for (p++; *p && *p != ']'; p++)
			if (!host_char(*p, 1))
				return SL_E_INVALID;
		if (*p != ']' || p == h + 1)
			return SL_E_INVALID;
		p++;
	} else {
		for (; *p && *p != ':' && *p != '/'; p++)
			if (!host_char(*p, 0) || *p == ':')
				return SL_E_INVALID;
		if (p == h)
			return SL_E_INVALID;
	}
	hlen = (size_t)(p - h);
	if (hlen >= sizeof(m->host))
		return SL_E_INVALID;
	if (*p == ':') {
		for (p++; *p >= '0' && *p <= '9' && port <= 65535; p++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (port == 0 || port > 65535 || (p[-1] < '0' || p[-1] > '9'))
			return SL_E_INVALID;
	}
	if (*p == '/')
		p++;
	if (*p)
		return SL_E_INVALID;	/* no path, query or user info */
	memcpy(m->host, h, hlen);
	m->host[hlen] = '\0';
	m->port = port ? (uint16_t)port : (m->tls ? 443 : 80);
	snprintf(m->endpoint, sizeof(m->endpoint), "%s://%s:%u", m->tls ? "https" : "http",
		 m->host, (unsigned)m->port);
	return 0;
}

/* ---- the API ---- */

int imds_new(struct loop *l, struct httpc *http, const struct imds_config *cfg, struct imds **out)
{
	const char *ep, *from;
	struct imds *m;

	*out = NULL;
	if (!l || !http)
		return SL_E_INVALID;
	if (cfg && (cfg->token_ttl_s > IMDS_MAX_TOKEN_TTL_S || cfg->max_attempts < 0))
		return SL_E_INVALID;
	m = calloc(1, sizeof(*m));
	if (!m)
		return SL_E_NOMEM;
	if (cfg)
		m->cfg = *cfg;
	if (!m->cfg.token_ttl_s)
		m->cfg.token_ttl_s = IMDS_MAX_TOKEN_TTL_S;
	if (!m->cfg.request_timeout_ms)
		m->cfg.request_timeout_ms = 2000;
	if (!m->cfg.max_attempts)
		m->cfg.max_attempts = 3;
	if (!m->cfg.backoff_ms)
		m->cfg.backoff_ms = 100;
	if (!m->cfg.max_body)
		m->cfg.max_body = 65536;
	snprintf(m->ttl_value, sizeof(m->ttl_value), "%u", (unsigned)m->cfg.token_ttl_s);
	ep = m->cfg.endpoint;
	from = "the configuration";
	if (!ep || !*ep) {
		ep = getenv(ENDPOINT_ENV);
		from = ENDPOINT_ENV;
	}
	if (!ep || !*ep) {
		ep = IMDS_DEFAULT_ENDPOINT;
		from = "the default";
	}
	if (parse_endpoint(m, ep) != 0) {
		char shown[128];
		size_t i;

		for (i = 0; ep[i] && i < sizeof(shown) - 1; i++)
			shown[i] = ep[i] >= 0x20 && ep[i] < 0x7F ? ep[i] : '?';
		shown[i] = '\0';
		log_error("imds", "endpoint from %s: '%s' is not http://HOST[:PORT]", from, shown);
		free(m);
		return SL_E_CONFIG;
	}
	m->cfg.endpoint = NULL;	/* not kept: the caller's string */
	m->l = l;
	m->http = http;
	loop_timer_init(&m->tk_timer, tk_timer, m);
	if (getrandom(&m->rng, sizeof(m->rng), GRND_NONBLOCK) != (ssize_t)sizeof(m->rng) || !m->rng)
		m->rng = (uint64_t)(uintptr_t)m ^ (uint64_t)loop_wall_ms() ^ 0x9E3779B97F4A7C15ULL;
	*out = m;
	return 0;
}

static void req_drop(struct imds *m, struct imds_req *r)
{
	if (r->state == R_SENT && r->h)
		httpc_cancel(m->http, r->h);
	loop_timer_cancel(m->l, &r->timer);
	req_unlink(m, r);
	req_free(r);
}

void imds_free(struct imds *m)
{
	if (!m || m->dead)
		return;
	while (m->reqs)
		req_drop(m, m->reqs);
	if (m->tk_h)
		httpc_cancel(m->http, m->tk_h);
	m->tk_h = NULL;
	loop_timer_cancel(m->l, &m->tk_timer);
	m->tk_state = TK_IDLE;
	if (m->depth > 0) {
		m->dead = 1;	/* the outermost leave() frees it */
		return;
	}
	destroy(m);
}

static int path_ok(const char *p)
{
	if (*p != '/')
		return 0;
	for (; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7E || *p == '#')
			return 0;
	return 1;
}

int imds_get(struct imds *m, const char *path, size_t max_body, imds_fn fn, void *arg,
	     struct imds_req **handle)
{
	struct imds_req *r;
	int err;

	if (handle)
		*handle = NULL;
	if (!fn || !path || !path_ok(path) || m->dead)
		return SL_E_INVALID;
	r = calloc(1, sizeof(*r));
	if (!r)
		return SL_E_NOMEM;
	r->path = strdup(path);
	if (!r->path) {
		free(r);
		return SL_E_NOMEM;
	}
	r->m = m;
	r->max_body = max_body ? max_body : m->cfg.max_body;
	r->fn = fn;
	r->arg = arg;
	loop_timer_init(&r->timer, req_timer, r);
	req_link(m, r);
	if ((err = req_send(r, 0)) != 0) {
		req_unlink(m, r);
		req_free(r);
		return err;
	}
	if (handle)
		*handle = r;
	return 0;
}

void imds_cancel(struct imds *m, struct imds_req *r)
{
	if (!r || r->state == R_CALLING)
		return;
	req_drop(m, r);
}

const char *imds_endpoint(const struct imds *m)
{
	return m->endpoint;
}

void imds_get_stats(const struct imds *m, struct imds_stats *out)
{
	*out = m->stats;
}
