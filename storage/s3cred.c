/*
 * s3cred.c - the S3 credentials provider (see s3cred.h).
 *
 * Owns: the chain's decision (made once, in s3cred_new), the credentials in
 * use, the instance role fetch and its schedule, and the parked waiters.
 *
 * The chain, first found wins:
 *   1. sluice.s3.access.key and sluice.s3.secret.key, both set.  Exactly one
 *      set is a configuration error (config_validate refuses it; should a
 *      caller skip that, the provider fails every waiter with SL_E_CONFIG
 *      rather than fall through to other credentials).
 *   2. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, both set and non-empty,
 *      with AWS_SESSION_TOKEN when set.  Only one of the pair set is
 *      ignored with a warning and the chain goes on, as aws-sdk-go-v2 does
 *      (its EnvConfig keeps environment credentials only when both keys are
 *      present); botocore raises PartialCredentialsError instead.
 *   3. The instance role over IMDSv2 (net/imds.h), unless
 *      AWS_EC2_METADATA_DISABLED is "true" (as AWS's SDKs read it).
 * Static credentials (1, 2) never expire.
 *
 * A role fetch is two GETs: the listing /latest/meta-data/iam/security-
 * credentials/ (its first line names the role; it is asked every time, so a
 * role swapped on the instance is followed), then that role's JSON document,
 * read with kernel/json.h: Code must be "Success"; AccessKeyId,
 * SecretAccessKey, Token and Expiration ("2026-11-22T12:00:00Z") must be
 * there.
 *
 * Schedule (wall clock for expirations, the loop's timer for waiting):
 *
 *   fetch --ok--> HOLDING --refresh_at: E - 5 min + jitter(0..60 s)--> fetch
 *     |             (the old credentials serve while the refresh runs)
 *     `--failed--> retry after backoff: 3 s, 6 s, ... 60 s (plus up to a
 *                  quarter), logged as a warning; old credentials, if any,
 *                  serve until they expire
 *
 *   Credentials count as expired EXPIRY_MARGIN_MS before their Expiration,
 *   so a request signed with them still arrives in time.  A fetch never
 *   starts within MIN_INTERVAL_MS of the previous one.  A refresh also
 *   starts when s3cred_get() is called at or past refresh_at (with the
 *   caller's clock), unless a failure's backoff is running.  Fresh
 *   credentials that would need refreshing sooner than MIN_INTERVAL_MS (the
 *   service handed out ones close to their end) are used, and the next
 *   fetch follows the failure backoff.
 *
 * Waiters: s3cred_wait() parks a waiter.  While valid credentials exist it
 * runs at the end of the turn with err 0; otherwise a fetch is started (or
 * awaited) and every parked waiter runs when it ends: err 0 on success, the
 * fetch's error on failure.  A later s3cred_wait() starts another attempt.
 * Static credentials answer every waiter with 0, a failed chain with its
 * error.  Waiters run from the loop, never inside s3cred_wait().
 *
 * Invariants:
 *   1. p->cur holds either nothing (access_key NULL) or a complete set.
 *   2. At most one fetch is in flight (p->fetching), with at most one IMDS
 *      request (p->req).
 *   3. Fetches start only from p->timer's callback, so a failure found at
 *      once is still reported from the loop.
 *   4. Waiters run between enter() and leave(); s3cred_free() from a
 *      waiter marks the provider dead and the outermost leave() frees it.
 *   5. Secrets (secret key, session token, the document's bytes) are never
 *      logged, and are wiped when freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include "s3cred.h"
#include "../kernel/buf.h"
#include "../kernel/config.h"
#include "../kernel/json.h"
#include "../kernel/log.h"
#include "../net/imds.h"

#define TAG			"s3cred"
#define CREDS_PATH		"/latest/meta-data/iam/security-credentials/"
#define REFRESH_LEAD_MS		(5 * 60 * 1000)	/* refresh at the earliest this long before E */
#define REFRESH_JITTER_MS	(60 * 1000)	/* ... and at the latest this much later */
#define EXPIRY_MARGIN_MS	(10 * 1000)
#define MIN_INTERVAL_MS		3000
#define MAX_BACKOFF_MS		(60 * 1000)
#define ROLE_MAX		64		/* IAM's limit on role names */
#define LIST_MAX_BODY		1024
#define DOC_MAX_BODY		(16 * 1024)
#define KEY_MAX			256
#define TOKEN_MAX		8192

enum { M_STATIC, M_ROLE, M_FAILED };

struct s3cred {
	struct loop *l;
	const struct config *cfg;
	struct httpc *http;
	int mode;
	int fail_err;			/* M_FAILED: what waiters get */
	struct s3_creds cur;

	struct imds *imds;		/* M_ROLE */
	struct imds_req *req;		/* in flight, or NULL */
	int fetching;
	int started;			/* a fetch has started at least once */
	uint64_t last_start;		/* monotonic ms */
	int failures;			/* consecutive failed or short-lived fetches */
	int64_t refresh_at;		/* wall ms */
	char role[ROLE_MAX + 1];
	int announced;			/* the first credentials were logged */
	struct loop_timer timer;

	struct s3cred_waiter *parked, *parked_tail;
	struct s3cred_waiter *running;	/* being answered now */
	struct loop_task notify;
	unsigned depth;
	int dead;
	uint64_t rng;
};

/* ---- small helpers ---- */

static uint64_t next_rand(struct s3cred *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 2685821657736338717ULL;
}

static void wipe_str(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
	}
	*s = NULL;
}

static void creds_clear(struct s3_creds *c)
{
	wipe_str(&c->access_key);
	wipe_str(&c->secret_key);
	wipe_str(&c->token);
	c->expires_ms = 0;
}

static int creds_valid(const struct s3cred *p, int64_t wall_now)
{
	if (p->mode == M_FAILED || !p->cur.access_key)
		return 0;
	return p->cur.expires_ms == -1 || wall_now < p->cur.expires_ms - EXPIRY_MARGIN_MS;
}

/* An access key id for logs, as `aws configure list` shows one: "****WXYZ". */
static const char *masked(char *out, size_t n, const char *ak)
{
	size_t len = strlen(ak);

	snprintf(out, n, "****%s", len > 4 ? ak + len - 4 : "");
	return out;
}

/* "2026-11-22T12:00:00Z" for logs; expirations are not secret. */
static void fmt_time(char *b, size_t n, int64_t ms)
{
	int64_t s = ms / 1000, days = s / 86400, sod = s % 86400;
	int64_t z, era, doe, yoe, doy, mp, d, m, y;

	/* The inverse of days_from_civil() below. */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	/* The moduli only tell the compiler the field widths; the values fit. */
	snprintf(b, n, "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)(y % 10000), (unsigned)(m % 100),
		 (unsigned)(d % 100), (unsigned)(sod / 3600 % 100), (unsigned)(sod / 60 % 60),
		 (unsigned)(sod % 60));
}

static void enter(struct s3cred *p)
{
	p->depth++;
}

static void destroy(struct s3cred *p)
{
	creds_clear(&p->cur);
	free(p);
}

/* Returns 1 when the provider was freed meanwhile: touch nothing of it then. */
static int leave(struct s3cred *p)
{
	if (--p->depth > 0)
		return p->dead;
	if (p->dead) {
		destroy(p);
		return 1;
	}
	return 0;
}

/*
 * Answer every parked waiter: 0 when valid credentials exist now, else err.
 * Returns 1 if the provider was freed by one of them.
 */
static int run_waiters(struct s3cred *p, int err)
{
	struct s3cred_waiter *w;

	if (creds_valid(p, loop_wall_ms()))
		err = 0;
	/* Waiters parked from inside a callback wait for the next answer. */
	if (p->parked) {
		struct s3cred_waiter **end = &p->running;

		while (*end)
			end = &(*end)->next;
		*end = p->parked;
		p->parked = p->parked_tail = NULL;
	}
	while ((w = p->running) != NULL) {
		p->running = w->next;
		w->next = NULL;
		enter(p);
		w->fn(w, err);
		if (leave(p))
			return 1;
	}
	return 0;
}

/* ---- ISO 8601 ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int rd_digits(struct sl_rd *r, int n, int *v)
{
	uint8_t c;

	*v = 0;
	while (n-- > 0) {
		if (rd_u8(r, &c) != 0 || c < '0' || c > '9')
			return SL_E_PROTO;
		*v = *v * 10 + (c - '0');
	}
	return 0;
}

static int rd_lit(struct sl_rd *r, uint8_t want)
{
	uint8_t c;

	return rd_u8(r, &c) == 0 && c == want ? 0 : SL_E_PROTO;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (UTC, as IMDS writes it) to wall ms. */
static int parse_iso8601(const char *s, int64_t *ms)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, frac = 0, scale = 100, leap;
	struct sl_rd r;
	uint8_t c;

	rd_init(&r, s, strlen(s));
	if (rd_digits(&r, 4, &y) || rd_lit(&r, '-') || rd_digits(&r, 2, &mo) || rd_lit(&r, '-') ||
	    rd_digits(&r, 2, &d) || rd_lit(&r, 'T') || rd_digits(&r, 2, &h) || rd_lit(&r, ':') ||
	    rd_digits(&r, 2, &mi) || rd_lit(&r, ':') || rd_digits(&r, 2, &sec))
		return SL_E_PROTO;
	if (rd_u8(&r, &c) != 0)
		return SL_E_PROTO;
	if (c == '.') {
		int any = 0;

		while (rd_u8(&r, &c) == 0 && c >= '0' && c <= '9') {
			frac += scale * (c - '0');
			scale /= 10;
			any = 1;
		}
		if (!any)
			return SL_E_PROTO;
	}
	if (c != 'Z' || rd_left(&r) != 0)
		return SL_E_PROTO;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
		return SL_E_PROTO;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
	return 0;
}

/* ---- the role fetch ---- */

static void start_fetch(struct s3cred *p);

static void on_timer(struct loop *l, void *arg)
{
	struct s3cred *p = arg;

	if (!p->fetching)
		start_fetch(p);
}

/* Start a fetch from the loop, as soon as the minimum interval allows. */
static void fetch_soon(struct s3cred *p)
{
	uint64_t now = loop_now_ms(p->l), delay = 0;

	if (p->fetching)
		return;
	if (p->started && now - p->last_start < MIN_INTERVAL_MS)
		delay = MIN_INTERVAL_MS - (now - p->last_start);
	if (loop_timer_armed(&p->timer) && p->timer.when_ms <= now + delay)
		return;
	loop_timer_set(p->l, &p->timer, delay);
}

/* The failure backoff for the n-th consecutive failure, never below MIN_INTERVAL_MS. */
static uint64_t backoff(struct s3cred *p, int n)
{
	uint64_t d = MIN_INTERVAL_MS;
	int i;

	for (i = 1; i < n && d < MAX_BACKOFF_MS; i++)
		d *= 2;
	if (d > MAX_BACKOFF_MS)
		d = MAX_BACKOFF_MS;
	return d + next_rand(p) % (d / 4 + 1);
}

/*
 * The fetch ended: err 0 with p->cur fresh, or a failure described by
 * what (no secrets in it).  Waiters learn the outcome.
 */
static void fetch_done(struct s3cred *p, int err, const char *what)
{
	int64_t wall = loop_wall_ms();
	uint64_t delay;
	char when[32];

	p->fetching = 0;
	p->req = NULL;
	if (err == 0) {
		int64_t lead = REFRESH_LEAD_MS - (int64_t)(next_rand(p) % (REFRESH_JITTER_MS + 1));

		fmt_time(when, sizeof(when), p->cur.expires_ms);
		p->refresh_at = p->cur.expires_ms - lead;
		if (p->refresh_at - wall >= MIN_INTERVAL_MS) {
			p->failures = 0;
			delay = (uint64_t)(p->refresh_at - wall);
		} else {
			/* Close to their end already: use them, look again soon. */
			p->failures++;
			delay = backoff(p, p->failures);
			p->refresh_at = wall + (int64_t)delay;
			log_debug(TAG, "instance role '%s': credentials expire at %s, looking again in %llu ms",
				  p->role, when, (unsigned long long)delay);
		}
		if (!p->announced) {
			char m[16];

			log_info(TAG, "S3 credentials from instance role '%s' (access key %s, expire %s)",
				 p->role, masked(m, sizeof(m), p->cur.access_key), when);
			p->announced = 1;
		} else {
			log_debug(TAG, "instance role '%s': credentials refreshed, expire %s", p->role, when);
		}
	} else {
		p->failures++;
		delay = backoff(p, p->failures);
		if (creds_valid(p, wall)) {
			fmt_time(when, sizeof(when), p->cur.expires_ms);
			log_warn(TAG, "instance role credentials: %s (%s); the current ones serve until %s; "
				 "trying again in %llu s", what, sl_strerror(err), when,
				 (unsigned long long)(delay + 999) / 1000);
		} else {
			log_warn(TAG, "instance role credentials: %s (%s); no S3 credentials until a fetch "
				 "succeeds; trying again in %llu s", what, sl_strerror(err),
				 (unsigned long long)(delay + 999) / 1000);
		}
	}
	loop_timer_set(p->l, &p->timer, delay);
	enter(p);
	run_waiters(p, err);
	leave(p);
}

/* Visible ASCII only (the values go into HTTP header fields), 1..max bytes. */
static int value_ok(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E)
			return 0;
	return 1;
}

/* Copy a short, non-secret string from the service for a log line. */
static void shown(char *out, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < n; i++)
		out[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7F ? s[i] : '?';
	out[i] = '\0';
}

static void on_doc(void *arg, int err, int status, const uint8_t *body, size_t len)
{
	struct s3cred *p = arg;
	const char *code, *ak, *sk, *tok, *exp;
	struct s3_creds n = { 0 };
	struct json_doc doc;
	char what[320], b[64];
	int64_t expires;

	p->req = NULL;
	if (err) {
		if (err == SL_E_NOTFOUND)
			snprintf(what, sizeof(what), "role '%s' has no credentials (404 from %s%s)",
				 p->role, CREDS_PATH, p->role);
		else if (status)
			snprintf(what, sizeof(what), "GET %s%s answered %d", CREDS_PATH, p->role, status);
		else
			snprintf(what, sizeof(what), "GET %s%s failed", CREDS_PATH, p->role);
		fetch_done(p, err, what);
		return;
	}
	if ((err = json_parse(&doc, body, len, NULL)) != 0) {
		snprintf(what, sizeof(what), "the document for role '%s' is not valid JSON "
			 "(stopped at byte %zu of %zu)", p->role, doc.err_off, len);
		fetch_done(p, err, what);
		return;
	}
	code = json_get_string(&doc, "Code");
	ak = json_get_string(&doc, "AccessKeyId");
	sk = json_get_string(&doc, "SecretAccessKey");
	tok = json_get_string(&doc, "Token");
	exp = json_get_string(&doc, "Expiration");
	if (!code || strcmp(code, "Success") != 0) {
		shown(b, sizeof(b), code ? code : "(none)");
		snprintf(what, sizeof(what), "role '%s': the service answered Code '%s'", p->role, b);
		err = SL_E_REMOTE;
	} else if (!ak || !sk || !tok || !exp) {
		snprintf(what, sizeof(what), "the document for role '%s' lacks %s", p->role,
			 !ak ? "AccessKeyId" : !sk ? "SecretAccessKey" : !tok ? "Token" : "Expiration");
		err = SL_E_PROTO;
	} else if (!value_ok(ak, KEY_MAX) || !value_ok(sk, KEY_MAX) || !value_ok(tok, TOKEN_MAX)) {
		snprintf(what, sizeof(what), "the document for role '%s' holds a key or token with "
			 "bytes that cannot be sent", p->role);
		err = SL_E_PROTO;
	} else if (parse_iso8601(exp, &expires) != 0) {
		shown(b, sizeof(b), exp);
		snprintf(what, sizeof(what), "role '%s': Expiration '%s' is not an ISO 8601 UTC time",
			 p->role, b);
		err = SL_E_PROTO;
	} else if (expires - EXPIRY_MARGIN_MS <= loop_wall_ms()) {
		shown(b, sizeof(b), exp);
		snprintf(what, sizeof(what), "role '%s': the credentials handed out expired at %s",
			 p->role, b);
		err = SL_E_REMOTE;
	}
	if (err) {
		json_free(&doc);
		fetch_done(p, err, what);
		return;
	}
	n.access_key = strdup(ak);
	n.secret_key = strdup(sk);
	n.token = strdup(tok);
	json_free(&doc);
	if (!n.access_key || !n.secret_key || !n.token) {
		creds_clear(&n);
		fetch_done(p, SL_E_NOMEM, "out of memory");
		return;
	}
	n.expires_ms = expires;
	n.source = "instance role";
	creds_clear(&p->cur);
	p->cur = n;
	fetch_done(p, 0, NULL);
}

/* The role listing's first line: an IAM role name ([A-Za-z0-9+=,.@_-], 1 to 64). */
static int parse_role(const uint8_t *body, size_t len, char *role)
{
	struct sl_rd r;
	size_t n = 0;
	uint8_t c;

	rd_init(&r, body, len);
	while (rd_u8(&r, &c) == 0 && c != '\n') {
		if (c == '\r' && (rd_left(&r) == 0 || (rd_u8(&r, &c) == 0 && c == '\n')))
			break;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("+=,.@_-", c)) || c == '\0' || n == ROLE_MAX)
			return SL_E_PROTO;
		role[n++] = (char)c;
	}
	role[n] = '\0';
	return n ? 0 : SL_E_PROTO;
}

static void on_role(void *arg, int err, int status, const uint8_t *body, size_t len)
{
	struct s3cred *p = arg;
	char path[sizeof(CREDS_PATH) + ROLE_MAX], what[320];

	p->req = NULL;
	if (err) {
		if (err == SL_E_NOTFOUND)
			snprintf(what, sizeof(what), "no IAM role is attached to this instance "
				 "(404 from %s%s)", imds_endpoint(p->imds), CREDS_PATH);
		else if (status)
			snprintf(what, sizeof(what), "GET %s%s answered %d", imds_endpoint(p->imds),
				 CREDS_PATH, status);
		else
			snprintf(what, sizeof(what), "cannot reach the instance metadata service at %s",
				 imds_endpoint(p->imds));
		fetch_done(p, err, what);
		return;
	}
	if (parse_role(body, len, p->role) != 0) {
		p->role[0] = '\0';
		fetch_done(p, SL_E_PROTO, "the role listing does not start with a role name");
		return;
	}
	snprintf(path, sizeof(path), "%s%s", CREDS_PATH, p->role);
	err = imds_get(p->imds, path, DOC_MAX_BODY, on_doc, p, &p->req);
	if (err)
		fetch_done(p, err, "cannot ask for the role's credentials");
}

static void start_fetch(struct s3cred *p)
{
	int err;

	p->fetching = 1;
	p->started = 1;
	p->last_start = loop_now_ms(p->l);
	err = imds_get(p->imds, CREDS_PATH, LIST_MAX_BODY, on_role, p, &p->req);
	if (err)
		fetch_done(p, err, "cannot ask the instance metadata service");
}

/* ---- waiters ---- */

static void on_notify(struct loop *l, void *arg)
{
	struct s3cred *p = arg;

	if (p->mode == M_ROLE && !creds_valid(p, loop_wall_ms())) {
		fetch_soon(p);	/* they expired meanwhile: the fetch answers */
		return;
	}
	enter(p);
	run_waiters(p, p->mode == M_FAILED ? p->fail_err : 0);
	leave(p);
}

void s3cred_wait(struct s3cred *p, struct s3cred_waiter *w)
{
	w->next = NULL;
	if (p->parked_tail)
		p->parked_tail->next = w;
	else
		p->parked = w;
	p->parked_tail = w;
	if (p->mode != M_ROLE || creds_valid(p, loop_wall_ms()))
		loop_defer(p->l, &p->notify);
	else
		fetch_soon(p);
}

static int unlink_from(struct s3cred_waiter **head, struct s3cred_waiter **tail,
		       struct s3cred_waiter *w)
{
	struct s3cred_waiter **pp, *prev = NULL;

	for (pp = head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			if (tail && *tail == w)
				*tail = prev;
			w->next = NULL;
			return 1;
		}
	}
	return 0;
}

void s3cred_unwait(struct s3cred *p, struct s3cred_waiter *w)
{
	if (!unlink_from(&p->parked, &p->parked_tail, w))
		unlink_from(&p->running, NULL, w);
}

/* ---- the chain ---- */

static int set_static(struct s3cred *p, const char *ak, const char *sk, const char *tok,
		      const char *source)
{
	char m[16];

	p->mode = M_STATIC;
	p->cur.access_key = strdup(ak);
	p->cur.secret_key = strdup(sk);
	p->cur.token = tok && *tok ? strdup(tok) : NULL;
	p->cur.expires_ms = -1;
	p->cur.source = source;
	if (!p->cur.access_key || !p->cur.secret_key || (tok && *tok && !p->cur.token))
		return SL_E_NOMEM;
	log_info(TAG, "S3 credentials from the %s (access key %s%s)", source,
		 masked(m, sizeof(m), ak), p->cur.token ? ", with a session token" : "");
	return 0;
}

static void set_failed(struct s3cred *p, int err)
{
	p->mode = M_FAILED;
	p->fail_err = err;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

struct s3cred *s3cred_new(struct loop *l, const struct config *cfg, struct httpc *http)
{
	const char *cak = cfg && cfg->s3_access_key ? cfg->s3_access_key : "";
	const char *csk = cfg && cfg->s3_secret_key ? cfg->s3_secret_key : "";
	const char *eak = env("AWS_ACCESS_KEY_ID"), *esk = env("AWS_SECRET_ACCESS_KEY");
	const char *off = env("AWS_EC2_METADATA_DISABLED");
	struct s3cred *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return NULL;
	p->l = l;
	p->cfg = cfg;
	p->http = http;
	loop_timer_init(&p->timer, on_timer, p);
	loop_task_init(&p->notify, on_notify, p);
	if (getrandom(&p->rng, sizeof(p->rng), GRND_NONBLOCK) != (ssize_t)sizeof(p->rng) || !p->rng)
		p->rng = (uint64_t)(uintptr_t)p ^ (uint64_t)loop_wall_ms() ^ 0x9E3779B97F4A7C15ULL;

	if (*cak || *csk) {
		if (!*cak || !*csk) {
			log_error(TAG, "sluice.s3.%s.key is set without sluice.s3.%s.key: set both or "
				  "neither", *cak ? "access" : "secret", *cak ? "secret" : "access");
			set_failed(p, SL_E_CONFIG);
			return p;
		}
		if (set_static(p, cak, csk, NULL, "configuration") != 0)
			goto nomem;
		return p;
	}
	if (eak && esk) {
		if (set_static(p, eak, esk, env("AWS_SESSION_TOKEN"), "environment") != 0)
			goto nomem;
		return p;
	}
	if (eak || esk)
		log_warn(TAG, "%s is set without %s: ignored, as AWS's SDKs do; trying the instance role",
			 eak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			 eak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	if (off && strcasecmp(off, "true") == 0) {
		log_error(TAG, "no S3 credentials: none in the configuration or the environment, and "
			  "AWS_EC2_METADATA_DISABLED=true rules out the instance role");
		set_failed(p, SL_E_NOTFOUND);
		return p;
	}
	p->mode = M_ROLE;
	err = imds_new(l, http, NULL, &p->imds);
	if (err == SL_E_NOMEM)
		goto nomem;
	if (err) {
		log_error(TAG, "no S3 credentials: none in the configuration or the environment, and "
			  "the instance metadata service cannot be used (%s)", sl_strerror(err));
		set_failed(p, err);
		return p;
	}
	p->cur.source = "instance role";
	p->refresh_at = INT64_MAX;
	fetch_soon(p);		/* have them before the first request needs them */
	return p;
nomem:
	s3cred_free(p);
	return NULL;
}

void s3cred_free(struct s3cred *p)
{
	if (!p || p->dead)
		return;
	loop_timer_cancel(p->l, &p->timer);
	loop_task_cancel(p->l, &p->notify);
	if (p->imds)
		imds_free(p->imds);	/* drops p->req without a callback */
	p->imds = NULL;
	p->req = NULL;
	p->fetching = 0;
	p->parked = p->parked_tail = p->running = NULL;
	if (p->depth > 0) {
		p->dead = 1;
		return;
	}
	destroy(p);
}

const struct s3_creds *s3cred_get(struct s3cred *p, int64_t wall_now)
{
	if (!creds_valid(p, wall_now))
		return NULL;
	/* Due: refresh while these keep serving (after a failure, the backoff decides). */
	if (p->mode == M_ROLE && wall_now >= p->refresh_at && p->failures == 0)
		fetch_soon(p);
	return &p->cur;
}
