/*
 * s3.c - the S3 client (see s3.h).
 *
 * Owns: the HTTP client and TLS context of one bucket's endpoint, the SigV4
 * signer and a copy of the credentials it was set up with, the operations
 * in flight, and the queue of payloads waiting to be hashed.
 *
 * Two layers.  A request (struct s3_req) is one S3 call with its retries:
 *
 *   req_start --hash (inline, or queued: one step per loop turn)--> req_go
 *     --timer 0--> ATTEMPT --no credentials--> WAIT_CREDS --arrived--> ATTEMPT
 *                     |                            `--deadline--> done(SL_E_TIMEOUT)
 *                     |--httpc_send--> IN_FLIGHT --final answer or error--> done
 *                     |                    `--retriable--> BACKOFF --timer--> ATTEMPT
 *                     `--send failed: as an answer of the attempt
 *
 * and hands its final outcome to the done function of the operation that
 * owns it.  An operation (struct s3_op) strings requests together: one for
 * PUT, GET, HEAD, DELETE; pages for a listing; batches for DeleteObjects;
 * and for a multipart upload
 *
 *   CREATE --> PARTS (parts_in_flight slots) --all done--> COMPLETE --> callback
 *     |           |--a part fails for good: cancel the rest--> ABORT --> callback
 *     |           `-- cancel: ABORT in the background, no callback
 *     `--fails--> callback
 *   COMPLETE --fails--> ABORT --> callback
 *   COMPLETE --404 NoSuchUpload after a retry--> HEAD (the first attempt may
 *              have completed it) --size matches--> callback (success)
 *
 * Invariants:
 *   1. A request is busy from req_start until its done function is called
 *      or req_clear() cancels it; while busy it is in exactly one of: the
 *      hash queue, a pending timer (first attempt, backoff, credential
 *      deadline), an httpc request (r->h), waiting on the provider (then the
 *      timer is its deadline too).
 *   2. A done function is the last thing its caller does with the request:
 *      it may finish and free the operation that holds the request.
 *   3. Callbacks and done functions run only from loop callbacks (timers,
 *      httpc callbacks): the first attempt of every request waits for a
 *      timer, so nothing reaches a caller from inside an s3_* call.
 *   4. An operation is on s3->ops from creation until op_free; after its
 *      callback starts (op->finishing) nothing of it is in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <bearssl_hash.h>
#include "s3.h"
#include "s3xml.h"
#include "sigv4.h"
#include "../kernel/log.h"
#include "../net/httpc.h"
#include "../net/tls.h"

#define TAG "s3"

#define DEF_REQUEST_MS	30000
#define DEF_CONNECT_MS	10000
#define DEF_TOTAL_MS	120000
#define DEF_ATTEMPTS	10
#define DEF_BASE_MS	100
#define DEF_CAP_MS	5000
#define DEF_PART	(8u << 20)
#define DEF_THRESHOLD	(8u << 20)
#define DEF_IN_FLIGHT	4
#define DEF_CONNS	16
#define DEF_GET_MAX	((size_t)256 << 20)
#define DEF_LIST_MAX	10000000u

#define HASH_INLINE	(64 * 1024)	/* bodies up to this are hashed at once */
#define HASH_STEP	(256 * 1024)	/* bytes hashed per loop turn */
#define SMALL_BODY_MAX	(1u << 20)	/* answers we only read for errors or small XML */
#define MAX_QUERY	6
#define MAX_HDRS	4
#define LABEL_MAX	112

enum { OP_PUT, OP_MPU, OP_GET, OP_HEAD, OP_DELETE, OP_DELETE_MANY, OP_LIST };

struct s3_req;
typedef void (*req_done_fn)(struct s3_req *r, int err, struct http_response *resp);

struct hash_job {
	struct hash_job *next;
	struct s3_req *r;
	size_t off;
	int queued;
	br_sha256_context ctx;
};

struct s3_req {
	struct s3 *s3;
	struct s3_op *op;
	int slot;			/* part slot, -1 otherwise */
	int busy;
	char label[LABEL_MAX];
	const char *method;		/* a literal */
	struct sl_wr path;		/* encoded, NUL-terminated */
	struct sl_wr target;		/* path?query, NUL-terminated */
	struct sigv4_kv query[MAX_QUERY];
	size_t nquery;
	struct http_header hdrs[MAX_HDRS];
	size_t nhdrs;
	const uint8_t *body;		/* borrowed */
	size_t body_len;
	char hash[SIGV4_HEX_LEN + 1];
	int hashed;
	struct hash_job hj;
	size_t max_body;
	int check_200;			/* a 200 may carry an <Error> document */
	int create_only;		/* If-None-Match: *: 409 ConditionalRequestConflict is retried */
	int attempts;
	uint64_t deadline_ms;
	uint64_t start_ms;
	struct httpc_req *h;
	struct loop_timer timer;
	struct s3cred_waiter waiter;
	int cred_waiting;
	int cred_err;
	req_done_fn done;
};

struct s3_part {
	struct s3_req req;
	uint32_t number;		/* 0: the slot is free */
};

struct strnode {
	struct strnode *next;
	char s[];
};

struct s3_op {
	struct s3 *s3;
	struct s3_op *prev, *next;
	int kind;
	int detached;			/* a background abort: no callback */
	int finishing;
	s3_fn fn;
	void *arg;
	struct s3_result res;
	char code[S3_CODE_MAX];
	char message[S3_MESSAGE_MAX];
	char etag[S3_ETAG_MAX];
	struct strnode *strs;		/* strings results point at */
	char *key;			/* relative */
	struct s3_req req;		/* the single request, or create/complete/abort/head */
	struct sl_wr xml;		/* a request body we wrote */
	/* put, multipart */
	const uint8_t *buf;
	size_t len;
	char *upload_id;
	size_t part_size;
	uint32_t nparts, next_part, parts_done;
	char **etags;
	struct s3_part *slots;
	int nslots;
	int failed, aborting;
	/* get */
	struct s3_range range;
	int ranged;
	/* list */
	char *lprefix, *ldelim;
	const char *token;		/* into the last page, or ltoken */
	char *ltoken;
	uint32_t page_keys;
	int one_page;
	size_t max_objects;
	struct s3xml_list *pages;
	size_t npages, cappages;
	struct s3_object *objs;
	size_t nobjs, capobjs;
	const char **pfx;
	size_t npfx, cappfx;
	/* delete_many */
	char **keys;			/* full keys */
	size_t nkeys, next_key, batch_n;
	struct s3_key_error *kerr;
	size_t nkerr, capkerr;
};

struct s3 {
	struct loop *l;
	struct s3url u;
	struct s3_options o;
	char *ca_file;
	struct httpc *http;
	struct tls_ctx *tls;
	void *cred;
	const struct s3_cred_ops *cops;
	struct sigv4_signer signer;
	int signer_ok;
	char *cur_ak, *cur_sk, *cur_tok;
	char hostval[S3URL_HOST_MAX + 16];
	size_t plen;			/* bytes of "PREFIX/" before every key */
	struct s3_op *ops;
	struct hash_job *hq_head, *hq_tail;
	struct loop_timer hash_timer;
	uint64_t rng;
	int closing;
	struct s3_stats st;
};

static const struct s3xml_limits err_lim = { 64 * 1024, 16, 1000 };

/* ---- small helpers ---- */

static int is2xx(int status)
{
	return status >= 200 && status <= 299;
}

static uint64_t rng_next(struct s3 *s)
{
	/* xorshift64*: jitter only, nothing secret. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1DULL;
}

/* Copy a peer's string for display: cut to fit, control bytes as '?'. */
static void copy_clean(char *dst, size_t cap, const char *src)
{
	size_t i;

	if (!src)
		src = "";
	for (i = 0; i + 1 < cap && src[i]; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void base64(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, k = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[k++] = a[v >> 18];
		out[k++] = a[(v >> 12) & 63];
		out[k++] = a[(v >> 6) & 63];
		out[k++] = a[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		out[k++] = a[v >> 18];
		out[k++] = a[(v >> 12) & 63];
		out[k++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
		out[k++] = '=';
	}
	out[k] = '\0';
}

/*
 * Decimal digits from r up to the first other byte (left unread); at least
 * one, no overflow.  Header values are peer bytes: read with the cursor.
 */
static int rd_decimal(struct sl_rd *r, uint64_t *out)
{
	uint64_t v = 0;
	int digits = 0;
	uint8_t c;

	while (rd_left(r) && r->p[r->off] >= '0' && r->p[r->off] <= '9') {
		if (rd_u8(r, &c) != 0 || v > (UINT64_MAX - 9) / 10)
			return SL_E_INVALID;
		v = v * 10 + (uint64_t)(c - '0');
		digits++;
	}
	if (!digits)
		return SL_E_INVALID;
	*out = v;
	return 0;
}

/* Content-Length and friends: digits only. */
static int parse_u64(const char *s, uint64_t *out)
{
	struct sl_rd r;

	if (!s)
		return SL_E_INVALID;
	rd_init(&r, s, strlen(s));
	if (rd_decimal(&r, out) != 0 || rd_left(&r))
		return SL_E_INVALID;
	return 0;
}

/* A key relative to the URL's prefix (full keys outside it stay whole). */
static const char *rel_key(const struct s3 *s, const char *full)
{
	if (s->plen && strncmp(full, s->u.prefix, s->plen - 1) == 0 && full[s->plen - 1] == '/')
		return full + s->plen;
	return full;
}

static const char *op_strdup(struct s3_op *op, const char *str)
{
	size_t n = strlen(str);
	struct strnode *b = malloc(sizeof(*b) + n + 1);

	if (!b)
		return NULL;
	memcpy(b->s, str, n + 1);
	b->next = op->strs;
	op->strs = b;
	return b->s;
}

/* "HTTP 503 SlowDown" or the error's name, for log lines. */
static void describe(char *buf, size_t cap, int err, const struct http_response *resp)
{
	struct s3xml_error e;
	char code[S3_CODE_MAX];

	if (err || !resp) {
		snprintf(buf, cap, "%s", sl_strerror(err));
		return;
	}
	code[0] = '\0';
	if (resp->body_len && s3xml_parse_error(resp->body, resp->body_len, &err_lim, &e) == 0) {
		copy_clean(code, sizeof(code), e.code);
		s3xml_error_free(&e);
	}
	snprintf(buf, cap, "HTTP %d%s%s", resp->status, code[0] ? " " : "", code);
}

/* ---- credentials ---- */

static const struct s3_creds *def_get(void *p, int64_t now)
{
	return s3cred_get(p, now);
}

static void def_wait(void *p, struct s3cred_waiter *w)
{
	s3cred_wait(p, w);
}

static void def_unwait(void *p, struct s3cred_waiter *w)
{
	s3cred_unwait(p, w);
}

static const struct s3_cred_ops def_cred_ops = { def_get, def_wait, def_unwait };

static void free_secret(char **p)
{
	if (*p) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static int same(const char *a, const char *b)
{
	if (!a || !*a)
		return !b || !*b;
	return b && strcmp(a, b) == 0;
}

/* Make the signer hold cr (re-initialised only when the credentials changed). */
static int signer_use(struct s3 *s, const struct s3_creds *cr)
{
	int err;

	if (!cr->access_key || !cr->secret_key)
		return SL_E_INVALID;
	if (s->signer_ok && same(s->cur_ak, cr->access_key) && same(s->cur_sk, cr->secret_key) &&
	    same(s->cur_tok, cr->token))
		return 0;
	if (s->signer_ok)
		sigv4_signer_free(&s->signer);
	s->signer_ok = 0;
	free_secret(&s->cur_ak);
	free_secret(&s->cur_sk);
	free_secret(&s->cur_tok);
	err = sigv4_signer_init(&s->signer, cr->access_key, cr->secret_key, cr->token);
	if (err)
		return err;
	s->cur_ak = strdup(cr->access_key);
	s->cur_sk = strdup(cr->secret_key);
	s->cur_tok = cr->token ? strdup(cr->token) : NULL;
	if (!s->cur_ak || !s->cur_sk || (cr->token && !s->cur_tok)) {
		sigv4_signer_free(&s->signer);
		free_secret(&s->cur_ak);
		free_secret(&s->cur_sk);
		free_secret(&s->cur_tok);
		return SL_E_NOMEM;
	}
	s->signer_ok = 1;
	return 0;
}

/* ---- hashing in steps ---- */

static void req_go(struct s3_req *r);

static void hash_dequeue(struct s3 *s, struct hash_job *j)
{
	struct hash_job **pp;

	for (pp = &s->hq_head; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	s->hq_tail = NULL;
	for (struct hash_job *t = s->hq_head; t; t = t->next)
		s->hq_tail = t;
	j->next = NULL;
	j->queued = 0;
}

static void hash_step(struct loop *l, void *arg)
{
	struct s3 *s = arg;
	size_t budget = HASH_STEP;

	while (budget && s->hq_head) {
		struct hash_job *j = s->hq_head;
		struct s3_req *r = j->r;
		size_t n = r->body_len - j->off;
		uint8_t sum[32];

		if (n > budget)
			n = budget;
		br_sha256_update(&j->ctx, r->body + j->off, n);
		j->off += n;
		budget -= n;
		s->st.hashed_bytes += n;
		if (j->off < r->body_len)
			continue;
		s->hq_head = j->next;
		if (!s->hq_head)
			s->hq_tail = NULL;
		j->next = NULL;
		j->queued = 0;
		br_sha256_out(&j->ctx, sum);
		hex(sum, sizeof(sum), r->hash);
		r->hashed = 1;
		req_go(r);
	}
	if (s->hq_head)
		loop_timer_set(l, &s->hash_timer, 0);
}

static void hash_enqueue(struct s3 *s, struct s3_req *r)
{
	struct hash_job *j = &r->hj;

	j->r = r;
	j->off = 0;
	j->next = NULL;
	j->queued = 1;
	br_sha256_init(&j->ctx);
	if (s->hq_tail)
		s->hq_tail->next = j;
	else
		s->hq_head = j;
	s->hq_tail = j;
	if (!loop_timer_armed(&s->hash_timer))
		loop_timer_set(s->l, &s->hash_timer, 0);
}

/* ---- requests ---- */

static void req_timer(struct loop *l, void *arg);
static void on_creds(struct s3cred_waiter *w, int err);

static void req_init(struct s3_req *r, struct s3_op *op, int slot)
{
	memset(r, 0, sizeof(*r));
	r->s3 = op->s3;
	r->op = op;
	r->slot = slot;
	wr_init(&r->path, 0);
	wr_init(&r->target, 0);
	loop_timer_init(&r->timer, req_timer, r);
	r->waiter.fn = on_creds;
	r->waiter.arg = r;
}

/* Stop whatever r is doing; no done call follows. */
static void req_cancel(struct s3_req *r)
{
	struct s3 *s = r->s3;

	if (r->h) {
		httpc_cancel(s->http, r->h);
		r->h = NULL;
	}
	loop_timer_cancel(s->l, &r->timer);
	if (r->cred_waiting) {
		s->cops->unwait(s->cred, &r->waiter);
		r->cred_waiting = 0;
	}
	if (r->hj.queued)
		hash_dequeue(s, &r->hj);
	r->busy = 0;
	r->cred_err = 0;
}

/* Cancel and free what r holds; it may be set up again. */
static void req_clear(struct s3_req *r)
{
	size_t i;

	req_cancel(r);
	wr_free(&r->path);
	wr_free(&r->target);
	for (i = 0; i < r->nquery; i++) {
		free((char *)r->query[i].name);
		free((char *)r->query[i].value);
	}
	for (i = 0; i < r->nhdrs; i++) {
		free((char *)r->hdrs[i].name);
		free((char *)r->hdrs[i].value);
	}
	r->nquery = r->nhdrs = 0;
	r->body = NULL;
	r->body_len = 0;
	r->hashed = 0;
	r->check_200 = 0;
	r->create_only = 0;
}

/*
 * Describe a request: key NULL means the bucket (list, DeleteObjects).
 * Query values are raw; NULL values are sent as "name=".
 */
static int req_setup(struct s3_req *r, const char *method, const char *what, const char *key,
		     const struct sigv4_kv *q, size_t nq, const struct http_header *h, size_t nh,
		     const void *body, size_t blen, size_t max_body, req_done_fn done)
{
	struct s3 *s = r->s3;
	size_t i;
	int err;

	req_clear(r);
	if (nq > MAX_QUERY || nh > MAX_HDRS)
		return SL_E_INVALID;
	r->method = method;
	snprintf(r->label, sizeof(r->label), "%s%s%.80s", what, key ? " " : "", key ? key : "");
	err = key ? s3url_object_path(&s->u, key, &r->path) : s3url_bucket_path(&s->u, &r->path);
	if (err)
		return err;
	for (i = 0; i < nq; i++) {
		r->query[i].name = strdup(q[i].name);
		r->query[i].value = strdup(q[i].value ? q[i].value : "");
		r->nquery = i + 1;
		if (!r->query[i].name || !r->query[i].value)
			return SL_E_NOMEM;
	}
	for (i = 0; i < nh; i++) {
		r->hdrs[i].name = strdup(h[i].name);
		r->hdrs[i].value = strdup(h[i].value);
		r->nhdrs = i + 1;
		if (!r->hdrs[i].name || !r->hdrs[i].value)
			return SL_E_NOMEM;
	}
	wr_bytes(&r->target, r->path.p, r->path.len);
	if (nq) {
		wr_u8(&r->target, '?');
		err = sigv4_canonical_query(r->query, r->nquery, &r->target);
		if (err)
			return err;
	}
	wr_u8(&r->target, 0);
	wr_u8(&r->path, 0);
	if (r->target.err || r->path.err)
		return r->target.err ? r->target.err : r->path.err;
	r->body = body;
	r->body_len = blen;
	r->max_body = max_body;
	r->done = done;
	return 0;
}

static void req_start(struct s3_req *r)
{
	r->busy = 1;
	r->attempts = 0;
	if (!r->hashed && r->body_len == 0) {
		memcpy(r->hash, SIGV4_EMPTY_SHA256, sizeof(SIGV4_EMPTY_SHA256));
		r->hashed = 1;
	} else if (!r->hashed && r->body_len <= HASH_INLINE) {
		sigv4_payload_hash(r->body, r->body_len, r->hash);
		r->hashed = 1;
	}
	if (r->hashed)
		req_go(r);
	else
		hash_enqueue(r->s3, r);
}

static void req_go(struct s3_req *r)
{
	struct s3 *s = r->s3;

	r->start_ms = loop_now_ms(s->l);
	r->deadline_ms = r->start_ms + s->o.max_total_ms;
	loop_timer_set(s->l, &r->timer, 0);
}

static void req_done(struct s3_req *r, int err, struct http_response *resp)
{
	r->busy = 0;
	r->done(r, err, resp);
}

static int err_retriable(int err)
{
	return err == SL_E_TIMEOUT || err == SL_E_CLOSED || err == SL_E_FULL ||
	       err == -ECONNRESET || err == -EPIPE || err == -ECONNABORTED ||
	       err == -ECONNREFUSED || err == -EAGAIN;
}

/* The code of an <Error> body, when the body is one. */
static int error_code_is(const struct http_response *resp, const char *a, const char *b)
{
	struct s3xml_error e;
	int hit;

	if (!resp->body_len || s3xml_parse_error(resp->body, resp->body_len, &err_lim, &e) != 0)
		return 0;
	hit = strcmp(e.code, a) == 0 || (b && strcmp(e.code, b) == 0);
	s3xml_error_free(&e);
	return hit;
}

static int status_retriable(const struct s3_req *r, const struct http_response *resp)
{
	switch (resp->status) {
	case 500:
	case 502:
	case 503:
	case 504:
		return 1;
	case 400:
		/* "Your socket connection ... was not read from or written to within the timeout period" */
		return error_code_is(resp, "RequestTimeout", NULL);
	case 200:
		return r->check_200 && error_code_is(resp, "InternalError", "SlowDown");
	case 409:
		/* A create-only PUT raced another write of the key: S3 says retry. */
		return r->create_only && error_code_is(resp, "ConditionalRequestConflict", NULL);
	default:
		return 0;
	}
}

static void giveup(struct s3_req *r, int err, struct http_response *resp, const char *why)
{
	struct s3 *s = r->s3;
	char d[128];

	describe(d, sizeof(d), err, resp);
	s->st.giveups++;
	log_warn(TAG, "%s: giving up after %d attempt%s in %" PRIu64 " ms: %s (%s)", r->label,
		 r->attempts, r->attempts == 1 ? "" : "s", loop_now_ms(s->l) - r->start_ms, d, why);
	req_done(r, err, resp);
}

static void req_retry(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3 *s = r->s3;
	uint64_t now = loop_now_ms(s->l), window, delay;
	int shift = r->attempts - 1;
	char d[128];

	if (r->attempts >= s->o.max_attempts) {
		giveup(r, err, resp, "no attempts left");
		return;
	}
	if (shift > 30)
		shift = 30;
	window = s->o.backoff_base_ms << shift;
	if (window > s->o.backoff_cap_ms || window < s->o.backoff_base_ms)
		window = s->o.backoff_cap_ms;
	delay = rng_next(s) % (window + 1);
	if (now + delay >= r->deadline_ms) {
		giveup(r, err, resp, "no time left within max_total_ms");
		return;
	}
	describe(d, sizeof(d), err, resp);
	log_debug(TAG, "%s: attempt %d failed (%s); retrying in %" PRIu64 " ms", r->label,
		  r->attempts, d, delay);
	s->st.retries++;
	loop_timer_set(s->l, &r->timer, delay);
}

static void on_http(void *arg, int err, struct http_response *resp)
{
	struct s3_req *r = arg;

	r->h = NULL;
	if (err == 0 && !status_retriable(r, resp)) {
		req_done(r, 0, resp);
		return;
	}
	if (err != 0 && !err_retriable(err)) {
		req_done(r, err, NULL);
		return;
	}
	req_retry(r, err, resp);
}

static void req_attempt(struct s3_req *r)
{
	struct s3 *s = r->s3;
	uint64_t now = loop_now_ms(s->l), left;
	const struct s3_creds *cr;
	struct sigv4_kv sh[MAX_HDRS + 1];
	struct http_header hh[MAX_HDRS + 4];
	struct sigv4_request sr;
	struct sigv4_signed sig;
	struct httpc_request hr;
	size_t i, n = 0;
	int err;

	if (now >= r->deadline_ms) {
		giveup(r, SL_E_TIMEOUT, NULL, "no time left within max_total_ms");
		return;
	}
	left = r->deadline_ms - now;
	cr = s->cops->get(s->cred, loop_wall_ms());
	if (!cr) {
		/* The deadline first: the provider may call back at once. */
		r->cred_waiting = 1;
		loop_timer_set(s->l, &r->timer, left);
		log_debug(TAG, "%s: waiting for credentials", r->label);
		s->cops->wait(s->cred, &r->waiter);
		return;
	}
	err = signer_use(s, cr);
	if (err) {
		log_warn(TAG, "%s: cannot use the credentials from %s: %s", r->label,
			 cr->source ? cr->source : "the provider", sl_strerror(err));
		req_done(r, err, NULL);
		return;
	}
	sh[0].name = "host";
	sh[0].value = s->hostval;
	for (i = 0; i < r->nhdrs; i++) {
		sh[i + 1].name = r->hdrs[i].name;
		sh[i + 1].value = r->hdrs[i].value;
	}
	memset(&sr, 0, sizeof(sr));
	sr.method = r->method;
	sr.path = (const char *)r->path.p;
	sr.query = r->query;
	sr.nquery = r->nquery;
	sr.headers = sh;
	sr.nheaders = r->nhdrs + 1;
	sr.payload_hash = r->hash;
	sr.region = s->u.region;
	sr.service = "s3";
	sr.now = loop_wall_ms() / 1000;
	err = sigv4_sign(&s->signer, &sr, &sig);
	if (err) {
		log_warn(TAG, "%s: cannot sign the request: %s", r->label, sl_strerror(err));
		req_done(r, err, NULL);
		return;
	}
	for (i = 0; i < r->nhdrs; i++)
		hh[n++] = r->hdrs[i];
	hh[n].name = "x-amz-date";
	hh[n++].value = sig.amz_date;
	hh[n].name = "x-amz-content-sha256";
	hh[n++].value = r->hash;
	if (sig.security_token) {
		hh[n].name = "x-amz-security-token";
		hh[n++].value = sig.security_token;
	}
	hh[n].name = "Authorization";
	hh[n++].value = sig.authorization;

	memset(&hr, 0, sizeof(hr));
	hr.tls = s->u.tls;
	hr.host = s->u.host;
	hr.port = s->u.port;
	hr.method = r->method;
	hr.target = (const char *)r->target.p;
	hr.headers = hh;
	hr.nheaders = n;
	hr.body = r->body;
	hr.body_len = r->body_len;
	hr.max_body = r->max_body;
	hr.timeout_ms = left < s->o.request_timeout_ms ? left : s->o.request_timeout_ms;
	r->attempts++;
	s->st.attempts++;
	err = httpc_send(s->http, &hr, on_http, r, &r->h);
	explicit_bzero(&sig, sizeof(sig));
	if (err) {
		r->h = NULL;
		if (err_retriable(err))
			req_retry(r, err, NULL);
		else
			req_done(r, err, NULL);
	}
}

static void req_timer(struct loop *l, void *arg)
{
	struct s3_req *r = arg;
	struct s3 *s = r->s3;

	if (r->cred_waiting) {
		s->cops->unwait(s->cred, &r->waiter);
		r->cred_waiting = 0;
		giveup(r, SL_E_TIMEOUT, NULL, "no credentials arrived within max_total_ms");
		return;
	}
	if (r->cred_err) {
		int err = r->cred_err;

		r->cred_err = 0;
		log_warn(TAG, "%s: no credentials: %s", r->label, sl_strerror(err));
		req_done(r, err, NULL);
		return;
	}
	req_attempt(r);
}

/* From the provider: go on from the loop, not from inside its notification. */
static void on_creds(struct s3cred_waiter *w, int err)
{
	struct s3_req *r = w->arg;
	struct s3 *s = r->s3;

	if (!r->cred_waiting)
		return;
	r->cred_waiting = 0;
	r->cred_err = err < 0 ? err : (err > 0 ? SL_E_INVALID : 0);
	loop_timer_set(s->l, &r->timer, 0);
}

/* ---- operations ---- */

static struct s3_op *op_new(struct s3 *s, int kind, s3_fn fn, void *arg)
{
	struct s3_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->s3 = s;
	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	wr_init(&op->xml, 0);
	req_init(&op->req, op, -1);
	op->res.code = op->code;
	op->res.message = op->message;
	op->res.etag = op->etag;
	return op;
}

static void op_link(struct s3_op *op)
{
	struct s3 *s = op->s3;

	op->next = s->ops;
	if (s->ops)
		s->ops->prev = op;
	s->ops = op;
	s->st.ops++;
	s->st.running++;
}

static void op_cancel_reqs(struct s3_op *op)
{
	int i;

	req_cancel(&op->req);
	for (i = 0; i < op->nslots; i++)
		req_cancel(&op->slots[i].req);
}

/* Unlink (if linked) and free everything op holds. */
static void op_free(struct s3_op *op, int linked)
{
	struct s3 *s = op->s3;
	size_t i;

	if (linked) {
		if (op->prev)
			op->prev->next = op->next;
		else
			s->ops = op->next;
		if (op->next)
			op->next->prev = op->prev;
		s->st.running--;
	}
	req_clear(&op->req);
	for (i = 0; i < (size_t)op->nslots; i++)
		req_clear(&op->slots[i].req);
	free(op->slots);
	if (op->etags)
		for (i = 0; i < op->nparts; i++)
			free(op->etags[i]);
	free(op->etags);
	free(op->upload_id);
	free(op->key);
	wr_free(&op->xml);
	free(op->res.body);
	free(op->lprefix);
	free(op->ldelim);
	free(op->ltoken);
	for (i = 0; i < op->npages; i++)
		s3xml_list_free(&op->pages[i]);
	free(op->pages);
	free(op->objs);
	free(op->pfx);
	if (op->keys)
		for (i = 0; i < op->nkeys; i++)
			free(op->keys[i]);
	free(op->keys);
	free(op->kerr);
	while (op->strs) {
		struct strnode *b = op->strs;

		op->strs = b->next;
		free(b);
	}
	free(op);
}

/* The end: the callback (unless detached), then free. */
static void op_finish(struct s3_op *op)
{
	op_cancel_reqs(op);
	if (!op->detached && op->fn) {
		op->finishing = 1;
		op->res.objects = op->objs;
		op->res.nobjects = op->nobjs;
		op->res.prefixes = op->pfx;
		op->res.nprefixes = op->npfx;
		op->res.key_errors = op->kerr;
		op->res.nkey_errors = op->nkerr;
		op->fn(op->arg, &op->res);
	}
	op_free(op, 1);
}

/* S3 answered with an error (an error status, or an <Error> in a 200). */
static void op_remote(struct s3_op *op, const struct s3_req *r, const struct http_response *resp)
{
	struct s3xml_error e;

	op->res.err = SL_E_REMOTE;
	op->res.status = resp->status;
	op->res.attempts = r->attempts;
	op->code[0] = op->message[0] = '\0';
	if (resp->body_len && s3xml_parse_error(resp->body, resp->body_len, &err_lim, &e) == 0) {
		copy_clean(op->code, sizeof(op->code), e.code);
		copy_clean(op->message, sizeof(op->message), e.message);
		s3xml_error_free(&e);
	}
}

/* A request's final outcome that is not a success. */
static void op_fail(struct s3_op *op, const struct s3_req *r, int err,
		    const struct http_response *resp)
{
	if (err || !resp) {
		op->res.err = err ? err : SL_E_PROTO;
		op->res.attempts = r->attempts;
		return;
	}
	op_remote(op, r, resp);
}

static void op_ok(struct s3_op *op, const struct s3_req *r, const struct http_response *resp)
{
	op->res.err = 0;
	op->res.status = resp->status;
	op->res.attempts = r->attempts;
	op->code[0] = op->message[0] = '\0';
}

static void take_etag(struct s3_op *op, const struct http_response *resp)
{
	copy_clean(op->etag, sizeof(op->etag), http_response_header(resp, "etag"));
}

/* ---- put ---- */

static void put_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;

	if (err == 0 && is2xx(resp->status)) {
		op_ok(op, r, resp);
		op->res.size = op->len;
		take_etag(op, resp);
	} else {
		op_fail(op, r, err, resp);
		if (err == 0 && resp->status == 412 && r->create_only)
			op->res.err = SL_E_EXISTS;
	}
	op_finish(op);
}

static void mpu_pump(struct s3_op *op);
static void mpu_abort(struct s3_op *op);

static void mpu_aborted(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	struct s3 *s = op->s3;
	char d[128];

	/* 404 NoSuchUpload: gone already, which is what an abort wants. */
	if (err == 0 && (is2xx(resp->status) || resp->status == 404)) {
		s->st.aborts++;
		log_info(TAG, "aborted the multipart upload of %.80s", op->key);
	} else {
		describe(d, sizeof(d), err, resp);
		log_warn(TAG, "could not abort the multipart upload of %.80s (%s): its parts stay "
			 "until the bucket's AbortIncompleteMultipartUpload rule removes them",
			 op->key, d);
	}
	op_finish(op);
}

static void mpu_abort(struct s3_op *op)
{
	struct sigv4_kv q[1] = { { "uploadId", op->upload_id } };
	int err;

	op->failed = 1;
	op->aborting = 1;
	op_cancel_reqs(op);
	if (!op->upload_id) {
		op_finish(op);
		return;
	}
	err = req_setup(&op->req, "DELETE", "AbortMultipartUpload", op->key, q, 1, NULL, 0, NULL, 0,
			SMALL_BODY_MAX, mpu_aborted);
	if (err) {
		log_warn(TAG, "cannot abort the multipart upload of %.80s: %s", op->key,
			 sl_strerror(err));
		op_finish(op);
		return;
	}
	req_start(&op->req);
}

static void mpu_verified(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	uint64_t size;

	if (err == 0 && resp->status == 200 &&
	    parse_u64(http_response_header(resp, "content-length"), &size) == 0 && size == op->len) {
		log_info(TAG, "%.80s: CompleteMultipartUpload was retried and the upload was gone; "
			 "the object has the expected size, so an earlier attempt completed it",
			 op->key);
		op_ok(op, r, resp);
		op->res.size = op->len;
		take_etag(op, resp);
	}
	/* Otherwise the 404 NoSuchUpload recorded before stands. */
	op_finish(op);
}

static void mpu_completed(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	char *etag = NULL;
	int rc;

	if (err == 0 && is2xx(resp->status)) {
		rc = s3xml_parse_complete(resp->body, resp->body_len, NULL, &etag);
		if (rc == 0) {
			op_ok(op, r, resp);
			op->res.size = op->len;
			copy_clean(op->etag, sizeof(op->etag), etag);
			free(etag);
			op_finish(op);
			return;
		}
		if (rc == SL_E_REMOTE)
			op_remote(op, r, resp);
		else
			op_fail(op, r, rc, NULL);
		mpu_abort(op);
		return;
	}
	op_fail(op, r, err, resp);
	if (err == 0 && resp->status == 404 && r->attempts > 1 &&
	    strcmp(op->code, "NoSuchUpload") == 0) {
		/* A lost answer to an attempt that did complete the upload? */
		if (req_setup(&op->req, "HEAD", "HEAD", op->key, NULL, 0, NULL, 0, NULL, 0,
			      SMALL_BODY_MAX, mpu_verified) == 0) {
			req_start(&op->req);
			return;
		}
		op_finish(op);
		return;
	}
	mpu_abort(op);
}

static void mpu_complete(struct s3_op *op)
{
	struct sigv4_kv q[1] = { { "uploadId", op->upload_id } };
	struct s3xml_part *parts = calloc(op->nparts, sizeof(*parts));
	uint32_t i;
	int err;

	if (!parts) {
		op->res.err = SL_E_NOMEM;
		mpu_abort(op);
		return;
	}
	for (i = 0; i < op->nparts; i++) {
		parts[i].number = i + 1;
		parts[i].etag = op->etags[i];
	}
	wr_free(&op->xml);
	wr_init(&op->xml, 0);
	err = s3xml_write_complete(&op->xml, parts, op->nparts);
	free(parts);
	if (!err)
		err = req_setup(&op->req, "POST", "CompleteMultipartUpload", op->key, q, 1, NULL, 0,
				op->xml.p, op->xml.len, SMALL_BODY_MAX, mpu_completed);
	if (err) {
		op->res.err = err;
		mpu_abort(op);
		return;
	}
	op->req.check_200 = 1;
	req_start(&op->req);
}

static void part_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	struct s3_part *p = &op->slots[r->slot];
	const char *etag = resp ? http_response_header(resp, "etag") : NULL;
	uint32_t n = p->number;

	p->number = 0;
	if (err == 0 && is2xx(resp->status) && etag && etag[0]) {
		op->etags[n - 1] = strdup(etag);
		if (!op->etags[n - 1]) {
			op->res.err = SL_E_NOMEM;
			mpu_abort(op);
			return;
		}
		op->parts_done++;
		if (op->parts_done == op->nparts)
			mpu_complete(op);
		else
			mpu_pump(op);
		return;
	}
	if (err == 0 && is2xx(resp->status)) {
		log_warn(TAG, "%s: the answer has no ETag", r->label);
		op_fail(op, r, SL_E_PROTO, NULL);
	} else {
		op_fail(op, r, err, resp);
	}
	log_warn(TAG, "%s failed (%s); aborting the upload", r->label,
		 op->res.err == SL_E_REMOTE ? (op->code[0] ? op->code : "S3 error") :
					      sl_strerror(op->res.err));
	mpu_abort(op);
}

static int part_start(struct s3_op *op, struct s3_part *p, uint32_t n)
{
	char num[16], what[48];
	struct sigv4_kv q[2] = { { "partNumber", num }, { "uploadId", op->upload_id } };
	size_t off = (size_t)(n - 1) * op->part_size;
	size_t len = op->len - off < op->part_size ? op->len - off : op->part_size;
	int err;

	snprintf(num, sizeof(num), "%u", n);
	snprintf(what, sizeof(what), "UploadPart %u/%u", n, op->nparts);
	err = req_setup(&p->req, "PUT", what, op->key, q, 2, NULL, 0, op->buf + off, len,
			SMALL_BODY_MAX, part_done);
	if (err)
		return err;
	p->number = n;
	req_start(&p->req);
	return 0;
}

static void mpu_pump(struct s3_op *op)
{
	int i, err;

	for (i = 0; i < op->nslots && !op->failed && op->next_part < op->nparts; i++) {
		if (op->slots[i].number)
			continue;
		err = part_start(op, &op->slots[i], op->next_part + 1);
		if (err) {
			op->res.err = err;
			mpu_abort(op);
			return;
		}
		op->next_part++;
	}
}

static void mpu_created(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	int rc;

	if (err || !is2xx(resp->status)) {
		op_fail(op, r, err, resp);
		op_finish(op);
		return;
	}
	rc = s3xml_parse_initiate(resp->body, resp->body_len, NULL, &op->upload_id);
	if (rc) {
		if (rc == SL_E_REMOTE)
			op_remote(op, r, resp);
		else
			op_fail(op, r, rc, NULL);
		op_finish(op);
		return;
	}
	log_debug(TAG, "%.80s: multipart upload of %zu bytes in %u parts", op->key, op->len,
		  op->nparts);
	mpu_pump(op);
}

static int put_start(struct s3 *s, const char *key, const void *buf, size_t len, int create_only,
		     s3_fn fn, void *arg, struct s3_op **handle)
{
	static const struct http_header inm[1] = { { "If-None-Match", "*" } };
	struct sigv4_kv q[1] = { { "uploads", NULL } };
	struct s3_op *op;
	int err, i;

	if (s->closing)
		return SL_E_CLOSED;
	if (!fn || !key || (len && !buf) || (create_only && len > S3_MAX_PUT))
		return SL_E_INVALID;
	op = op_new(s, len > s->o.multipart_threshold && !create_only ? OP_MPU : OP_PUT, fn, arg);
	if (!op)
		return SL_E_NOMEM;
	op->buf = buf;
	op->len = len;
	op->key = strdup(key);
	if (!op->key) {
		err = SL_E_NOMEM;
		goto fail;
	}
	if (op->kind == OP_PUT) {
		err = req_setup(&op->req, "PUT", create_only ? "PUT If-None-Match" : "PUT", key, NULL,
				0, create_only ? inm : NULL, create_only ? 1 : 0, buf, len,
				SMALL_BODY_MAX, put_done);
		if (err)
			goto fail;
		op->req.create_only = create_only;
	} else {
		size_t part = s->o.part_size;

		/* S3 takes at most 10000 parts: larger objects get larger parts (whole MiB). */
		if ((len + part - 1) / part > S3XML_MAX_PARTS)
			part = ((len + S3XML_MAX_PARTS - 1) / S3XML_MAX_PARTS + (1u << 20) - 1) &
			       ~(size_t)((1u << 20) - 1);
		op->part_size = part;
		op->nparts = (uint32_t)((len + part - 1) / part);
		op->res.parts = (int)op->nparts;
		op->nslots = s->o.parts_in_flight;
		op->etags = calloc(op->nparts, sizeof(*op->etags));
		op->slots = calloc((size_t)op->nslots, sizeof(*op->slots));
		if (!op->etags || !op->slots) {
			op->nslots = 0;
			err = SL_E_NOMEM;
			goto fail;
		}
		for (i = 0; i < op->nslots; i++)
			req_init(&op->slots[i].req, op, i);
		err = req_setup(&op->req, "POST", "CreateMultipartUpload", key, q, 1, NULL, 0, NULL,
				0, SMALL_BODY_MAX, mpu_created);
		if (err)
			goto fail;
		op->req.check_200 = 1;
	}
	op_link(op);
	req_start(&op->req);
	if (handle)
		*handle = op;
	return 0;
fail:
	op_free(op, 0);
	return err;
}

int s3_put(struct s3 *s, const char *key, const void *buf, size_t len, s3_fn fn, void *arg,
	   struct s3_op **handle)
{
	return put_start(s, key, buf, len, 0, fn, arg, handle);
}

int s3_put_if_absent(struct s3 *s, const char *key, const void *buf, size_t len, s3_fn fn,
		     void *arg, struct s3_op **handle)
{
	return put_start(s, key, buf, len, 1, fn, arg, handle);
}

/* ---- get, head, delete ---- */

/* The first byte position of "bytes FIRST-LAST/TOTAL" (TOTAL may be "*"). */
static int content_range_first(const char *v, uint64_t *first)
{
	struct sl_rd r;
	const uint8_t *p;
	uint8_t dash;

	if (!v)
		return SL_E_INVALID;
	rd_init(&r, v, strlen(v));
	if (rd_bytes(&r, 6, &p) != 0 || memcmp(p, "bytes ", 6) != 0 ||
	    rd_decimal(&r, first) != 0 || rd_u8(&r, &dash) != 0 || dash != '-')
		return SL_E_INVALID;
	return 0;
}

static void get_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	size_t len = 0;
	uint8_t *body;

	if (err || (resp->status != 200 && resp->status != 206)) {
		op_fail(op, r, err, resp);
		op_finish(op);
		return;
	}
	body = http_response_take_body(resp, &len);
	if (op->ranged) {
		/*
		 * Where the body starts in the object: 0 for a 200 (the range was
		 * ignored), else Content-Range's first byte.  Servers may send
		 * more than was asked (s3rver answers "bytes=0-0" with the whole
		 * object and says so in Content-Range): keep only the range.
		 */
		uint64_t at = 0, skip, want = op->range.last - op->range.first + 1;

		if (resp->status == 206 &&
		    content_range_first(http_response_header(resp, "content-range"), &at) != 0)
			at = op->range.first;
		if (at > op->range.first) {
			log_warn(TAG, "%s: the answer starts at byte %" PRIu64 ", not %" PRIu64,
				 r->label, at, op->range.first);
			free(body);
			op_fail(op, r, SL_E_PROTO, NULL);
			op_finish(op);
			return;
		}
		skip = op->range.first - at;
		if (skip >= len) {
			len = 0;
		} else {
			if (len - skip < want)
				want = len - skip;
			if (skip)
				memmove(body, body + skip, (size_t)want);
			len = (size_t)want;
		}
	}
	if (len == 0) {
		free(body);
		body = NULL;
	}
	op_ok(op, r, resp);
	op->res.body = body;
	op->res.body_len = len;
	op->res.size = len;
	take_etag(op, resp);
	op_finish(op);
}

static void head_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	uint64_t size;

	if (err || resp->status != 200) {
		op_fail(op, r, err, resp);
	} else if (parse_u64(http_response_header(resp, "content-length"), &size) != 0) {
		log_warn(TAG, "%s: the answer has no valid Content-Length", r->label);
		op_fail(op, r, SL_E_PROTO, NULL);
	} else {
		op_ok(op, r, resp);
		op->res.size = size;
		take_etag(op, resp);
	}
	op_finish(op);
}

static void delete_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;

	if (err == 0 && is2xx(resp->status))
		op_ok(op, r, resp);
	else
		op_fail(op, r, err, resp);
	op_finish(op);
}

static int simple_op(struct s3 *s, int kind, const char *method, const char *key,
		     const struct http_header *h, size_t nh, size_t max_body, req_done_fn done,
		     s3_fn fn, void *arg, struct s3_op **handle, struct s3_op **made)
{
	struct s3_op *op;
	int err;

	if (s->closing)
		return SL_E_CLOSED;
	if (!fn || !key)
		return SL_E_INVALID;
	op = op_new(s, kind, fn, arg);
	if (!op)
		return SL_E_NOMEM;
	op->key = strdup(key);
	err = op->key ? req_setup(&op->req, method, method, key, NULL, 0, h, nh, NULL, 0, max_body,
				  done) : SL_E_NOMEM;
	if (err) {
		op_free(op, 0);
		return err;
	}
	if (made)
		*made = op;
	op_link(op);
	req_start(&op->req);
	if (handle)
		*handle = op;
	return 0;
}

int s3_get(struct s3 *s, const char *key, const struct s3_range *range, s3_fn fn, void *arg,
	   struct s3_op **handle)
{
	struct http_header h[1] = { { NULL, NULL } };
	char rv[64];
	size_t max = s->o.max_get_bytes;
	struct s3_op *op = NULL;
	int err;

	if (range) {
		if (range->last < range->first)
			return SL_E_INVALID;
		snprintf(rv, sizeof(rv), "bytes=%" PRIu64 "-%" PRIu64, range->first, range->last);
		h[0].name = "Range";
		h[0].value = rv;
		/*
		 * The cap stays max_get_bytes: a server may ignore the range and
		 * send the whole object (s3rver does for "bytes=0-0"), which
		 * get_done then cuts to the range.
		 */
	}
	err = simple_op(s, OP_GET, "GET", key, h, range ? 1 : 0, max, get_done, fn, arg, handle, &op);
	if (err == 0 && range) {
		op->ranged = 1;
		op->range = *range;
	}
	return err;
}

int s3_head(struct s3 *s, const char *key, s3_fn fn, void *arg, struct s3_op **handle)
{
	return simple_op(s, OP_HEAD, "HEAD", key, NULL, 0, SMALL_BODY_MAX, head_done, fn, arg,
			 handle, NULL);
}

int s3_delete(struct s3 *s, const char *key, s3_fn fn, void *arg, struct s3_op **handle)
{
	return simple_op(s, OP_DELETE, "DELETE", key, NULL, 0, SMALL_BODY_MAX, delete_done, fn, arg,
			 handle, NULL);
}

/* ---- delete_many ---- */

static int dm_batch(struct s3_op *op);

static int add_key_error(struct s3_op *op, const char *key, const char *code, const char *msg)
{
	struct s3_key_error *e;
	char c[S3_CODE_MAX], m[S3_MESSAGE_MAX];

	if (op->nkerr == op->capkerr) {
		size_t cap = op->capkerr ? op->capkerr * 2 : 16;
		struct s3_key_error *n = realloc(op->kerr, cap * sizeof(*n));

		if (!n)
			return SL_E_NOMEM;
		op->kerr = n;
		op->capkerr = cap;
	}
	copy_clean(c, sizeof(c), code);
	copy_clean(m, sizeof(m), msg);
	e = &op->kerr[op->nkerr];
	e->key = op_strdup(op, rel_key(op->s3, key));
	e->code = op_strdup(op, c);
	e->message = op_strdup(op, m);
	if (!e->key || !e->code || !e->message)
		return SL_E_NOMEM;
	op->nkerr++;
	return 0;
}

static void dm_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	struct s3xml_delete_result d;
	size_t i, bad = 0;
	int rc;

	if (err || !is2xx(resp->status)) {
		op_fail(op, r, err, resp);
		op_finish(op);
		return;
	}
	rc = s3xml_parse_delete(resp->body, resp->body_len, NULL, &d);
	if (rc) {
		if (rc == SL_E_REMOTE)
			op_remote(op, r, resp);
		else
			op_fail(op, r, rc, NULL);
		op_finish(op);
		return;
	}
	for (i = 0; i < d.nerrors && rc == 0; i++, bad++)
		rc = add_key_error(op, d.errors[i].key, d.errors[i].code, d.errors[i].message);
	s3xml_delete_result_free(&d);
	op_ok(op, r, resp);
	op->res.ndeleted += bad < op->batch_n ? op->batch_n - bad : 0;
	op->next_key += op->batch_n;
	if (rc == 0 && op->next_key < op->nkeys)
		rc = dm_batch(op);
	else if (rc == 0)
		op_finish(op);
	if (rc) {
		op->res.err = rc;
		op_finish(op);
	}
}

static int dm_batch(struct s3_op *op)
{
	struct sigv4_kv q[1] = { { "delete", NULL } };
	struct http_header h[1];
	br_md5_context md5;
	uint8_t sum[16];
	char b64[32], what[48];
	size_t n = op->nkeys - op->next_key;
	int err;

	if (n > S3XML_MAX_DELETE)
		n = S3XML_MAX_DELETE;
	op->batch_n = n;
	wr_free(&op->xml);
	wr_init(&op->xml, 0);
	err = s3xml_write_delete(&op->xml, (const char *const *)op->keys + op->next_key, n, 1);
	if (err)
		return err;
	br_md5_init(&md5);
	br_md5_update(&md5, op->xml.p, op->xml.len);
	br_md5_out(&md5, sum);
	base64(sum, sizeof(sum), b64);
	h[0].name = "Content-MD5";
	h[0].value = b64;
	snprintf(what, sizeof(what), "DeleteObjects (%zu keys from #%zu)", n, op->next_key + 1);
	err = req_setup(&op->req, "POST", what, NULL, q, 1, h, 1, op->xml.p, op->xml.len,
			S3XML_MAX_BYTES, dm_done);
	if (err)
		return err;
	op->req.check_200 = 1;
	req_start(&op->req);
	return 0;
}

int s3_delete_many(struct s3 *s, const char *const *keys, size_t n, s3_fn fn, void *arg,
		   struct s3_op **handle)
{
	struct s3_op *op;
	struct sl_wr w;
	size_t i, len;
	int err = 0;

	if (s->closing)
		return SL_E_CLOSED;
	if (!fn || !keys || n == 0)
		return SL_E_INVALID;
	op = op_new(s, OP_DELETE_MANY, fn, arg);
	if (!op)
		return SL_E_NOMEM;
	op->keys = calloc(n, sizeof(*op->keys));
	if (!op->keys) {
		op_free(op, 0);
		return SL_E_NOMEM;
	}
	op->nkeys = n;
	for (i = 0; i < n && err == 0; i++) {
		if (!keys[i] || !keys[i][0]) {
			err = SL_E_INVALID;
			break;
		}
		wr_init(&w, S3URL_KEY_MAX + 1);
		err = s3url_full_key(&s->u, keys[i], &w);
		if (err == 0)
			err = wr_u8(&w, 0);
		if (err == 0)
			op->keys[i] = (char *)wr_take(&w, &len);
		wr_free(&w);
		if (err == 0 && !op->keys[i])
			err = SL_E_NOMEM;
	}
	if (err == 0)
		err = dm_batch(op);
	if (err) {
		op_free(op, 0);
		return err;
	}
	op_link(op);
	if (handle)
		*handle = op;
	return 0;
}

/* ---- list ---- */

static int list_page(struct s3_op *op);

static int list_add(struct s3_op *op, const struct s3xml_list *pg)
{
	struct s3 *s = op->s3;
	size_t i;

	if (op->nobjs + pg->nobjects > op->max_objects)
		return SL_E_TOOBIG;
	if (op->nobjs + pg->nobjects > op->capobjs) {
		size_t cap = op->capobjs ? op->capobjs : 1024;
		struct s3_object *n;

		while (cap < op->nobjs + pg->nobjects)
			cap *= 2;
		n = realloc(op->objs, cap * sizeof(*n));
		if (!n)
			return SL_E_NOMEM;
		op->objs = n;
		op->capobjs = cap;
	}
	for (i = 0; i < pg->nobjects; i++) {
		struct s3_object *o = &op->objs[op->nobjs++];

		o->key = rel_key(s, pg->objects[i].key);
		o->size = pg->objects[i].size;
		o->etag = pg->objects[i].etag;
		o->last_modified_ms = pg->objects[i].last_modified_ms;
	}
	if (op->npfx + pg->nprefixes > op->max_objects)
		return SL_E_TOOBIG;
	if (op->npfx + pg->nprefixes > op->cappfx) {
		size_t cap = op->cappfx ? op->cappfx : 64;
		const char **n;

		while (cap < op->npfx + pg->nprefixes)
			cap *= 2;
		n = realloc(op->pfx, cap * sizeof(*n));
		if (!n)
			return SL_E_NOMEM;
		op->pfx = n;
		op->cappfx = cap;
	}
	for (i = 0; i < pg->nprefixes; i++)
		op->pfx[op->npfx++] = rel_key(s, pg->prefixes[i]);
	return 0;
}

static void list_done(struct s3_req *r, int err, struct http_response *resp)
{
	struct s3_op *op = r->op;
	struct s3xml_list *pg;
	int rc;

	if (err || resp->status != 200) {
		op_fail(op, r, err, resp);
		op_finish(op);
		return;
	}
	if (op->npages == op->cappages) {
		size_t cap = op->cappages ? op->cappages * 2 : 4;
		struct s3xml_list *n = realloc(op->pages, cap * sizeof(*n));

		if (!n) {
			op_fail(op, r, SL_E_NOMEM, NULL);
			op_finish(op);
			return;
		}
		op->pages = n;
		op->cappages = cap;
	}
	pg = &op->pages[op->npages];
	rc = s3xml_parse_list(resp->body, resp->body_len, NULL, pg);
	if (rc) {
		if (rc == SL_E_REMOTE)
			op_remote(op, r, resp);
		else
			op_fail(op, r, rc, NULL);
		op_finish(op);
		return;
	}
	op->npages++;
	op->res.pages++;
	rc = list_add(op, pg);
	if (rc == 0 && pg->is_truncated && !op->one_page) {
		/* A truncated page must move on, or paging would never end. */
		if ((pg->nobjects == 0 && pg->nprefixes == 0) ||
		    (op->token && strcmp(op->token, pg->next_token) == 0)) {
			log_warn(TAG, "%s: a truncated page that does not move on", r->label);
			rc = SL_E_PROTO;
		} else {
			op->token = pg->next_token;
			rc = list_page(op);
			if (rc == 0)
				return;
		}
	}
	if (rc) {
		op_fail(op, r, rc, NULL);
	} else {
		op_ok(op, r, resp);
		op->res.pages = (int)op->npages;
		op->res.truncated = pg->is_truncated;
		op->res.next_token = pg->is_truncated ? pg->next_token : NULL;
	}
	op_finish(op);
}

static int list_page(struct s3_op *op)
{
	struct sigv4_kv q[5];
	char mk[16];
	size_t n = 0;
	int err;

	q[n].name = "list-type";
	q[n++].value = "2";
	q[n].name = "prefix";
	q[n++].value = op->lprefix;
	if (op->ldelim) {
		q[n].name = "delimiter";
		q[n++].value = op->ldelim;
	}
	if (op->page_keys) {
		snprintf(mk, sizeof(mk), "%u", op->page_keys);
		q[n].name = "max-keys";
		q[n++].value = mk;
	}
	if (op->token) {
		q[n].name = "continuation-token";
		q[n++].value = op->token;
	}
	err = req_setup(&op->req, "GET", "ListObjectsV2", NULL, q, n, NULL, 0, NULL, 0,
			S3XML_MAX_BYTES, list_done);
	if (err)
		return err;
	req_start(&op->req);
	return 0;
}

int s3_list(struct s3 *s, const struct s3_list_args *a, s3_fn fn, void *arg,
	    struct s3_op **handle)
{
	struct s3_op *op;
	struct sl_wr w;
	size_t len;
	int err;

	if (s->closing)
		return SL_E_CLOSED;
	if (!fn || !a || a->page_keys > 1000 || (a->delimiter && !a->delimiter[0]) ||
	    (a->token && !a->token[0]))
		return SL_E_INVALID;
	op = op_new(s, OP_LIST, fn, arg);
	if (!op)
		return SL_E_NOMEM;
	wr_init(&w, S3URL_KEY_MAX + 1);
	err = s3url_full_key(&s->u, a->prefix ? a->prefix : "", &w);
	if (err == 0)
		err = wr_u8(&w, 0);
	if (err == 0)
		op->lprefix = (char *)wr_take(&w, &len);
	wr_free(&w);
	if (err == 0 && !op->lprefix)
		err = SL_E_NOMEM;
	if (err == 0 && a->delimiter && !(op->ldelim = strdup(a->delimiter)))
		err = SL_E_NOMEM;
	if (err == 0 && a->token && !(op->ltoken = strdup(a->token)))
		err = SL_E_NOMEM;
	op->key = strdup(op->lprefix ? op->lprefix : "");
	if (err == 0 && !op->key)
		err = SL_E_NOMEM;
	if (err) {
		op_free(op, 0);
		return err;
	}
	op->token = op->ltoken;
	op->page_keys = a->page_keys;
	op->one_page = a->one_page;
	op->max_objects = a->max_objects ? a->max_objects : DEF_LIST_MAX;
	err = list_page(op);
	if (err) {
		op_free(op, 0);
		return err;
	}
	op_link(op);
	if (handle)
		*handle = op;
	return 0;
}

/* ---- the client ---- */

static void *tls_open_hook(void *ctx, int fd, const char *server_name,
			   const struct http_transport_ops **ops)
{
	static const struct http_transport_ops tls_ops = {
		.read = tls_read,
		.write = tls_write,
		.events = tls_events,
		.close = tls_close,
	};
	struct tls_sess *sess = NULL;

	if (tls_open(ctx, fd, server_name, &sess) != 0)
		return NULL;
	*ops = &tls_ops;
	return sess;
}

int s3_new(struct loop *l, const struct s3url *u, struct s3cred *cred,
	   const struct s3_options *o, struct s3 **out)
{
	struct httpc_config hc;
	struct s3 *s;
	uint64_t seed = 0;
	int err;

	*out = NULL;
	if (!l || !u || u->kind != S3URL_S3)
		return SL_E_INVALID;
	s = calloc(1, sizeof(*s));
	if (!s)
		return SL_E_NOMEM;
	s->l = l;
	s->u = *u;
	if (o)
		s->o = *o;
	s->o.ca_file = NULL;
	s->cred = cred;
	s->cops = o && o->cred_ops ? o->cred_ops : &def_cred_ops;
	if (!s->o.request_timeout_ms)
		s->o.request_timeout_ms = DEF_REQUEST_MS;
	if (!s->o.connect_timeout_ms)
		s->o.connect_timeout_ms = DEF_CONNECT_MS;
	if (!s->o.max_total_ms)
		s->o.max_total_ms = DEF_TOTAL_MS;
	if (s->o.max_attempts <= 0)
		s->o.max_attempts = DEF_ATTEMPTS;
	if (!s->o.backoff_base_ms)
		s->o.backoff_base_ms = DEF_BASE_MS;
	if (!s->o.backoff_cap_ms)
		s->o.backoff_cap_ms = DEF_CAP_MS;
	if (!s->o.part_size)
		s->o.part_size = DEF_PART;
	if (!s->o.multipart_threshold)
		s->o.multipart_threshold = DEF_THRESHOLD;
	if (s->o.parts_in_flight <= 0)
		s->o.parts_in_flight = DEF_IN_FLIGHT;
	if (s->o.max_conns <= 0)
		s->o.max_conns = DEF_CONNS;
	if (!s->o.max_get_bytes)
		s->o.max_get_bytes = DEF_GET_MAX;
	s->plen = u->prefix[0] ? strlen(u->prefix) + 1 : 0;
	loop_timer_init(&s->hash_timer, hash_step, s);
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)loop_wall_ms() ^ (uint64_t)(uintptr_t)s;
	s->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;

	err = httpc_host_value(s->hostval, sizeof(s->hostval), u->tls, u->host, u->port);
	if (err)
		goto fail;
	if (o && o->ca_file && o->ca_file[0]) {
		s->ca_file = strdup(o->ca_file);
		if (!s->ca_file) {
			err = SL_E_NOMEM;
			goto fail;
		}
	}
	if (u->tls) {
		err = tls_ctx_new(s->ca_file, s->o.insecure, &s->tls);
		if (err)
			goto fail;
	} else if (s->o.insecure) {
		log_warn(TAG, "sluice.s3.tls.insecure=true has no effect on %s (plain HTTP)",
			 s->hostval);
	}
	memset(&hc, 0, sizeof(hc));
	hc.max_conns_per_endpoint = s->o.max_conns < s->o.parts_in_flight ? s->o.parts_in_flight
									   : s->o.max_conns;
	hc.connect_timeout_ms = s->o.connect_timeout_ms;
	hc.request_timeout_ms = s->o.request_timeout_ms;
	hc.tls_open = s->tls ? tls_open_hook : NULL;
	hc.tls_ctx = s->tls;
	hc.resolver = s->o.resolver;
	s->http = httpc_new(l, &hc);
	if (!s->http) {
		err = SL_E_NOMEM;
		goto fail;
	}
	log_info(TAG, "bucket %s at %s://%s (%s, region %s)%s%s", u->bucket, u->tls ? "https" : "http",
		 s->hostval, u->path_style ? "path-style" : "virtual-hosted", u->region,
		 u->prefix[0] ? ", prefix " : "", u->prefix);
	*out = s;
	return 0;
fail:
	if (s->tls)
		tls_ctx_free(s->tls);
	free(s->ca_file);
	free(s);
	return err;
}

void s3_free(struct s3 *s)
{
	if (!s)
		return;
	s->closing = 1;
	while (s->ops) {
		struct s3_op *op = s->ops;

		op_cancel_reqs(op);
		if (op->detached) {
			log_warn(TAG, "closing: the multipart upload of %.80s is left to the bucket's "
				 "lifecycle rule", op->key);
		} else {
			op->res.err = SL_E_CLOSED;
		}
		op_finish(op);
	}
	loop_timer_cancel(s->l, &s->hash_timer);
	httpc_free(s->http);
	if (s->tls)
		tls_ctx_free(s->tls);
	if (s->signer_ok)
		sigv4_signer_free(&s->signer);
	free_secret(&s->cur_ak);
	free_secret(&s->cur_sk);
	free_secret(&s->cur_tok);
	free(s->ca_file);
	free(s);
}

void s3_cancel(struct s3 *s, struct s3_op *op)
{
	if (!op || op->finishing || op->detached)
		return;
	if (op->kind == OP_MPU && op->upload_id) {
		/* The parts stored so far cost money: abort in the background. */
		op->detached = 1;
		if (op->aborting)
			return;		/* the abort under way goes on, without a callback */
		mpu_abort(op);
		return;
	}
	op_free(op, 1);
}

uint8_t *s3_result_take_body(struct s3_result *r, size_t *len)
{
	uint8_t *b = r->body;

	if (len)
		*len = r->body_len;
	r->body = NULL;
	r->body_len = 0;
	return b;
}

void s3_get_stats(const struct s3 *s, struct s3_stats *out)
{
	*out = s->st;
}
