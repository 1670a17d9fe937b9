/*
 * test_s3cred.c - the credentials provider: the chain's order, the
 * instance role through a fake IMDSv2 service on loopback (timds.h, found
 * through AWS_EC2_METADATA_SERVICE_ENDPOINT), refresh ahead of expiration,
 * failures, waiters, and what reaches the log.
 *
 * Time: s3cred_get() takes the caller's wall clock, so the tests ask "what
 * would you give me at E - 3 min" without waiting for it; documents expire
 * an hour from the real clock, so the provider's own timers stay far away.
 * The only real waits are the provider's minimum interval between fetches
 * (3 s) where a test needs a second fetch soon after the first.
 *
 * Covered: configuration beats environment beats role; half an environment
 * pair is ignored (aws-sdk-go-v2's behaviour) and half a configuration pair
 * fails; AWS_EC2_METADATA_DISABLED; role discovery (first line); the
 * credential document (fields, ISO 8601 Expiration); refresh while the old
 * credentials keep serving; a failed refresh keeps them until they expire
 * and is retried; clear errors for 404s, malformed JSON, Code other than
 * Success, missing fields, bad or past expirations; waiters run once,
 * unwait, re-wait and free from a waiter; free mid-fetch; no secret in the
 * log.  Under ASan, no leaks.
 */
#include <fcntl.h>
#include "timds.h"
#include "../../kernel/config.h"
#include "../../kernel/log.h"
#include "../../net/httpc.h"
#include "../../storage/s3cred.h"

#define ENDPOINT_ENV "AWS_EC2_METADATA_SERVICE_ENDPOINT"
#define ROLE "sluice-role"

static struct loop *L;
static struct httpc *H;
static struct config CFG;
static struct s3cred *P;
static struct loop_timer guard;
static int guard_fired;

/* ---- documents ---- */

static void iso(char *b, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(b, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void set_doc(const char *ak, const char *sk, const char *tok, int64_t expires_ms)
{
	char e[32];

	iso(e, sizeof(e), expires_ms);
	snprintf(FI.doc, sizeof(FI.doc),
		 "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-01-01T00:00:00Z\",\n"
		 "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"%s\",\n"
		 "  \"SecretAccessKey\" : \"%s\",\n  \"Token\" : \"%s\",\n"
		 "  \"Expiration\" : \"%s\"\n}\n", ak, sk, tok, e);
}

/* An hour from now, in whole seconds as IMDS writes it. */
static int64_t hour_from_now(void)
{
	return (loop_wall_ms() / 1000 + 3600) * 1000;
}

/* ---- the harness ---- */

static void on_guard(struct loop *l, void *arg)
{
	guard_fired = 1;
	loop_stop(l);
}

static void clear_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	unsetenv(ENDPOINT_ENV);
}

/* Loop, server and client; the provider comes with provider(). */
static void setup(const char *cfg_text)
{
	char err[256];

	L = loop_new();
	fi_start(L);
	snprintf(FI.role, sizeof(FI.role), ROLE "\n");
	set_doc("ASIAEXAMPLEAK1", "SECRET-ONE", "TOKEN-ONE", hour_from_now());
	setenv(ENDPOINT_ENV, FI.endpoint, 1);
	H = httpc_new(L, NULL);
	T_CHECK(H != NULL);
	T_EQ(config_init(&CFG), 0);
	if (cfg_text)
		T_EQ(config_parse(&CFG, cfg_text, strlen(cfg_text), "test", err, sizeof(err)), 0);
	guard_fired = 0;
	loop_timer_init(&guard, on_guard, NULL);
	loop_timer_set(L, &guard, 20000);
}

static void provider(void)
{
	P = s3cred_new(L, &CFG, H);
	T_CHECK(P != NULL);
}

static void teardown(void)
{
	T_EQ(FI.gets_without_token, 0);	/* never IMDSv1 */
	T_EQ(guard_fired, 0);
	s3cred_free(P);
	P = NULL;
	httpc_free(H);
	H = NULL;
	config_free(&CFG);
	fi_stop();
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
	clear_env();
}

struct wt {
	struct s3cred_waiter w;	/* first: the callback gets &w */
	int calls;
	int err;
	int stop;		/* stop the loop when called */
	void (*then)(struct wt *t);
};

static void on_wait(struct s3cred_waiter *w, int err)
{
	struct wt *t = (struct wt *)(void *)w;

	t->calls++;
	t->err = err;
	if (t->then)
		t->then(t);
	if (t->stop)
		loop_stop(L);
}

static void wait_for(struct wt *t)
{
	t->w.fn = on_wait;
	t->stop = 1;
	s3cred_wait(P, &t->w);
	T_EQ(loop_run(L), 0);
	T_EQ(guard_fired, 0);
}

/* Run the loop for ms (other things may happen meanwhile). */
static void run_for(uint64_t ms)
{
	struct loop_timer t;

	loop_timer_init(&t, on_guard, NULL);
	loop_timer_set(L, &t, ms);
	T_EQ(loop_run(L), 0);
	guard_fired = 0;
}

/* Poll every 5 ms until cond() holds, then let one more turn pass. */
static int (*until_cond)(void);
static int until_seen;
static struct loop_timer until_t;

static void until_tick(struct loop *l, void *arg)
{
	if (until_seen) {
		loop_stop(l);
		return;
	}
	until_seen = until_cond();
	loop_timer_set(l, &until_t, 5);
}

static void run_until(int (*cond)(void))
{
	until_cond = cond;
	until_seen = 0;
	loop_timer_init(&until_t, until_tick, NULL);
	loop_timer_set(L, &until_t, 5);
	T_EQ(loop_run(L), 0);
	loop_timer_cancel(L, &until_t);
	T_EQ(guard_fired, 0);
}

/* The client has nothing in flight. */
static int settled(void)
{
	struct httpc_stats st;

	httpc_get_stats(H, &st);
	return st.requests == st.responses + st.failures + st.cancels;
}

/* ---- the log ---- */

static int saved_fd = -1;
static char logpath[64];

static void capture_start(void)
{
	int fd;

	snprintf(logpath, sizeof(logpath), "/tmp/test_s3cred.XXXXXX");
	fd = mkstemp(logpath);
	T_CHECK(fd != -1);
	saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
}

static void capture_end(char *buf, size_t n)
{
	int fd;
	ssize_t got;

	dup2(saved_fd, 2);
	close(saved_fd);
	saved_fd = -1;
	fd = open(logpath, O_RDONLY);
	got = fd == -1 ? -1 : read(fd, buf, n - 1);
	buf[got > 0 ? got : 0] = '\0';
	if (fd != -1)
		close(fd);
	unlink(logpath);
	fputs(buf, stderr);	/* keep it in the test's own log */
}

/* ---- the chain ---- */

static void test_config_beats_env(void)
{
	const struct s3_creds *c;
	struct wt w = { 0 };

	setup("sluice.s3.access.key=AKIDCONFIG\nsluice.s3.secret.key=secret-config\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	setenv("AWS_SESSION_TOKEN", "token-env", 1);
	provider();
	c = s3cred_get(P, loop_wall_ms());
	T_CHECK(c != NULL);
	if (c) {
		T_STR_EQ(c->source, "configuration");
		T_STR_EQ(c->access_key, "AKIDCONFIG");
		T_STR_EQ(c->secret_key, "secret-config");
		T_CHECK(c->token == NULL);
		T_EQ(c->expires_ms, -1);
	}
	/* Static credentials never expire. */
	T_CHECK(s3cred_get(P, INT64_MAX / 2) != NULL);
	wait_for(&w);
	T_EQ(w.calls, 1);
	T_EQ(w.err, 0);
	run_for(30);
	T_EQ(FI.puts + FI.gets, 0);	/* the metadata service was never asked */
	teardown();
}

static void test_env_beats_role(void)
{
	const struct s3_creds *c;

	setup(NULL);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	setenv("AWS_SESSION_TOKEN", "token-env", 1);
	provider();
	c = s3cred_get(P, loop_wall_ms());
	T_CHECK(c != NULL);
	if (c) {
		T_STR_EQ(c->source, "environment");
		T_STR_EQ(c->access_key, "AKIDENV");
		T_STR_EQ(c->secret_key, "secret-env");
		T_STR_EQ(c->token ? c->token : "(null)", "token-env");
		T_EQ(c->expires_ms, -1);
	}
	run_for(30);
	T_EQ(FI.puts + FI.gets, 0);
	teardown();

	/* Without AWS_SESSION_TOKEN (or with it empty): no token. */
	setup(NULL);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	setenv("AWS_SESSION_TOKEN", "", 1);
	provider();
	c = s3cred_get(P, loop_wall_ms());
	T_CHECK(c != NULL && c->token == NULL);
	teardown();
}

/* Half an environment pair is ignored and the chain goes on to the role. */
static void test_env_half_pair_ignored(void)
{
	static const char *const halves[][2] = {
		{ "AWS_ACCESS_KEY_ID", "AKIDENV" },
		{ "AWS_SECRET_ACCESS_KEY", "secret-env" },
	};
	char log[8192];
	int i;

	for (i = 0; i < 3; i++) {
		const struct s3_creds *c;
		struct wt w = { 0 };

		setup(NULL);
		if (i < 2) {
			setenv(halves[i][0], halves[i][1], 1);
		} else {
			setenv("AWS_ACCESS_KEY_ID", "", 1);	/* empty counts as unset */
			setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
		}
		capture_start();
		provider();
		wait_for(&w);
		capture_end(log, sizeof(log));
		T_EQ(w.calls, 1);
		T_EQ(w.err, 0);
		c = s3cred_get(P, loop_wall_ms());
		T_CHECK(c != NULL);
		if (c) {
			T_STR_EQ(c->source, "instance role");
			T_STR_EQ(c->access_key, "ASIAEXAMPLEAK1");
		}
		T_CHECK(strstr(log, "WARN") != NULL);
		T_CHECK(strstr(log, "is set without") != NULL);
		T_CHECK(strstr(log, "secret-env") == NULL);
		T_EQ(FI.role_gets, 1);
		teardown();
	}
}

static void test_config_half_pair_fails(void)
{
	struct wt w = { 0 };

	/* config_validate refuses this; a provider given it anyway falls through to nothing. */
	setup("sluice.s3.access.key=AKIDCONFIG\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	provider();
	T_CHECK(s3cred_get(P, loop_wall_ms()) == NULL);
	wait_for(&w);
	T_EQ(w.calls, 1);
	T_EQ(w.err, SL_E_CONFIG);
	T_EQ(FI.puts + FI.gets, 0);
	teardown();
}

static void test_metadata_disabled(void)
{
	struct wt w = { 0 };

	setup(NULL);
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	provider();
	wait_for(&w);
	T_EQ(w.err, SL_E_NOTFOUND);
	run_for(30);
	T_EQ(FI.puts + FI.gets, 0);
	teardown();
}

/* ---- the instance role ---- */

static struct wt *to_unwait;

static void unwait_other(struct wt *t)
{
	s3cred_unwait(P, &to_unwait->w);
}

static void test_role(void)
{
	struct wt a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	const struct s3_creds *cr;

	setup(NULL);
	/* Several roles listed: the first line names ours. */
	snprintf(FI.role, sizeof(FI.role), ROLE "\r\nsome-other-role\n");
	snprintf(FI.doc, sizeof(FI.doc),
		 "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAEXAMPLEAK1\","
		 "\"SecretAccessKey\":\"wJalrXUtnFEMI\\/K7MDENG\",\"Token\":\"IQoJb3JpZ2luX2Vj\\u002B\","
		 "\"Expiration\":\"2096-02-29T23:59:59Z\",\"LastUpdated\":\"2026-01-01T00:00:00Z\"}");
	provider();
	T_CHECK(s3cred_get(P, loop_wall_ms()) == NULL);	/* nothing yet */
	/* Parked before the fetch ends: each runs once; an unwaited one never. */
	a.w.fn = b.w.fn = c.w.fn = d.w.fn = on_wait;
	a.then = unwait_other;
	to_unwait = &c;
	s3cred_wait(P, &a.w);
	s3cred_wait(P, &b.w);
	s3cred_wait(P, &c.w);
	s3cred_wait(P, &d.w);
	s3cred_unwait(P, &d.w);
	b.stop = 1;
	T_EQ(loop_run(L), 0);
	run_for(50);
	T_EQ(a.calls, 1);
	T_EQ(a.err, 0);
	T_EQ(b.calls, 1);
	T_EQ(b.err, 0);
	T_EQ(c.calls, 0);	/* unwaited by a, which ran first */
	T_EQ(d.calls, 0);
	cr = s3cred_get(P, loop_wall_ms());
	T_CHECK(cr != NULL);
	if (cr) {
		T_STR_EQ(cr->source, "instance role");
		T_STR_EQ(cr->access_key, "ASIAEXAMPLEAK1");
		T_STR_EQ(cr->secret_key, "wJalrXUtnFEMI/K7MDENG");
		T_STR_EQ(cr->token ? cr->token : "(null)", "IQoJb3JpZ2luX2Vj+");
		T_EQ(cr->expires_ms, 3981398399000LL);	/* 2096-02-29T23:59:59Z */
	}
	T_STR_EQ(FI.last_doc_path, FI_CREDS_PATH ROLE);
	T_EQ(FI.puts, 1);	/* the token first ... */
	T_EQ(FI.role_gets, 1);	/* ... then the role ... */
	T_EQ(FI.doc_gets, 1);	/* ... then its document, once */
	/* With credentials held a waiter runs at the end of the turn, with 0. */
	memset(&a, 0, sizeof(a));
	wait_for(&a);
	T_EQ(a.calls, 1);
	T_EQ(a.err, 0);
	T_EQ(FI.doc_gets, 1);
	teardown();
}

static const char *AK(int64_t at)
{
	const struct s3_creds *c = s3cred_get(P, at);

	return c ? c->access_key : "(none)";
}

static int64_t E1;
static int served_none;

static int refreshed(void)
{
	const char *ak = AK(E1 - 3 * 60000);

	if (strcmp(ak, "(none)") == 0)
		served_none = 1;
	return strcmp(ak, "ASIAEXAMPLEAK2") == 0;
}

static void test_refresh_ahead(void)
{
	struct wt w = { 0 };
	const struct s3_creds *c;
	char log[8192];

	setup(NULL);
	E1 = hour_from_now();
	set_doc("ASIAEXAMPLEAK1", "SECRET-ONE", "TOKEN-ONE", E1);
	capture_start();
	provider();
	wait_for(&w);
	T_EQ(w.err, 0);
	T_STR_EQ(AK(E1 - 60 * 60000), "ASIAEXAMPLEAK1");
	/* Six minutes before: not due yet (refresh comes 5 to 4 minutes before). */
	T_STR_EQ(AK(E1 - 6 * 60000), "ASIAEXAMPLEAK1");
	run_for(30);
	T_EQ(FI.doc_gets, 1);
	/* Three minutes before: due.  The old ones serve while the new ones come. */
	set_doc("ASIAEXAMPLEAK2", "SECRET-TWO", "TOKEN-TWO", E1 + 3600 * 1000);
	T_STR_EQ(AK(E1 - 3 * 60000), "ASIAEXAMPLEAK1");
	T_STR_EQ(AK(E1 - 3 * 60000), "ASIAEXAMPLEAK1");
	served_none = 0;
	run_until(refreshed);
	T_EQ(served_none, 0);
	T_EQ(FI.doc_gets, 2);	/* one refresh, however often it was asked for */
	c = s3cred_get(P, E1 - 3 * 60000);
	T_CHECK(c != NULL);
	if (c) {
		T_STR_EQ(c->secret_key, "SECRET-TWO");
		T_STR_EQ(c->token, "TOKEN-TWO");
		T_EQ(c->expires_ms, E1 + 3600 * 1000);
	}
	/* Past the first set's expiry the new set serves. */
	T_STR_EQ(AK(E1 + 60000), "ASIAEXAMPLEAK2");
	T_EQ(FI.puts, 1);	/* the session token was reused */
	capture_end(log, sizeof(log));
	T_CHECK(strstr(log, "SECRET-") == NULL);
	T_CHECK(strstr(log, "TOKEN-") == NULL);
	T_CHECK(strstr(log, "ASIAEXAMPLEAK") == NULL);	/* the key id is masked too */
	T_CHECK(strstr(log, "instance role 'sluice-role'") != NULL);
	teardown();
}

static int after_failure(void)
{
	return FI.doc_gets >= 2 && settled();
}

static void test_failed_refresh_keeps_old(void)
{
	struct wt w = { 0 };
	char log[8192];

	setup(NULL);
	E1 = hour_from_now();
	set_doc("ASIAEXAMPLEAK1", "SECRET-ONE", "TOKEN-ONE", E1);
	provider();
	wait_for(&w);
	T_EQ(w.err, 0);
	/* The refresh gets a broken document (that holds a secret-looking string). */
	snprintf(FI.doc, sizeof(FI.doc), "{\"Code\":\"Success\",\"SecretAccessKey\":\"SECRET-X\",");
	capture_start();
	T_STR_EQ(AK(E1 - 3 * 60000), "ASIAEXAMPLEAK1");
	run_until(after_failure);
	capture_end(log, sizeof(log));
	T_EQ(FI.doc_gets, 2);
	T_CHECK(strstr(log, "WARN") != NULL);
	T_CHECK(strstr(log, "not valid JSON") != NULL);
	T_CHECK(strstr(log, "the current ones serve until") != NULL);
	T_CHECK(strstr(log, "SECRET-") == NULL);
	T_CHECK(strstr(log, "TOKEN-") == NULL);
	/* The old ones serve until they expire (less the margin) ... */
	T_STR_EQ(AK(E1 - 3 * 60000), "ASIAEXAMPLEAK1");
	T_STR_EQ(AK(E1 - 60000), "ASIAEXAMPLEAK1");
	T_STR_EQ(AK(E1 - 11000), "ASIAEXAMPLEAK1");
	T_STR_EQ(AK(E1 - 5000), "(none)");
	T_STR_EQ(AK(E1 + 1), "(none)");
	/* ... asking does not hurry the retry: the backoff decides ... */
	run_for(30);
	T_EQ(FI.doc_gets, 2);
	/* ... and the retry, a few seconds on, succeeds. */
	set_doc("ASIAEXAMPLEAK2", "SECRET-TWO", "TOKEN-TWO", E1 + 3600 * 1000);
	run_until(refreshed);
	T_EQ(FI.doc_gets, 3);
	T_STR_EQ(AK(E1 + 1), "ASIAEXAMPLEAK2");
	teardown();
}

/* One provider per case: what the waiter gets and what the log says. */
static void error_case(const char *role, int doc_status, const char *doc, int want_err,
		       const char *want_log)
{
	struct wt w = { 0 };
	char log[8192];

	setup(NULL);
	snprintf(FI.role, sizeof(FI.role), "%s", role);
	FI.doc_status = doc_status;
	if (doc)
		snprintf(FI.doc, sizeof(FI.doc), "%s", doc);
	capture_start();
	provider();
	wait_for(&w);
	capture_end(log, sizeof(log));
	T_EQ(w.calls, 1);
	T_EQ(w.err, want_err);
	if (!strstr(log, want_log))
		fprintf(stderr, "  wanted in the log: %s\n", want_log);
	T_CHECK(strstr(log, want_log) != NULL);
	T_CHECK(strstr(log, "no S3 credentials until a fetch succeeds") != NULL);
	T_CHECK(strstr(log, "SECRET") == NULL);
	T_CHECK(s3cred_get(P, loop_wall_ms()) == NULL);
	teardown();
}

static void test_errors(void)
{
	char doc[512], past[32];

	error_case("", 200, NULL, SL_E_NOTFOUND, "no IAM role is attached to this instance");
	error_case("bad role!\n", 200, NULL, SL_E_PROTO, "does not start with a role name");
	error_case(ROLE, 404, "", SL_E_NOTFOUND, "role 'sluice-role' has no credentials");
	error_case(ROLE, 200, "{\"Code\":\"Success\",", SL_E_PROTO,
		   "the document for role 'sluice-role' is not valid JSON");
	error_case(ROLE, 200, "<Error>no</Error>", SL_E_PROTO, "is not valid JSON (stopped at byte 0");
	error_case(ROLE, 200,
		   "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot assume the role\"}",
		   SL_E_REMOTE, "answered Code 'AssumeRoleUnauthorizedAccess'");
	error_case(ROLE, 200,
		   "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRET\","
		   "\"Expiration\":\"2096-01-01T00:00:00Z\"}",
		   SL_E_PROTO, "lacks Token");
	error_case(ROLE, 200,
		   "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRET\","
		   "\"Token\":\"T\",\"Expiration\":\"tomorrow\"}",
		   SL_E_PROTO, "Expiration 'tomorrow' is not an ISO 8601 UTC time");
	error_case(ROLE, 200,
		   "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRET\","
		   "\"Token\":\"T\",\"Expiration\":\"2095-02-29T00:00:00Z\"}",
		   SL_E_PROTO, "is not an ISO 8601 UTC time");
	error_case(ROLE, 200,
		   "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRET WITH SPACE\","
		   "\"Token\":\"T\",\"Expiration\":\"2096-01-01T00:00:00Z\"}",
		   SL_E_PROTO, "bytes that cannot be sent");
	iso(past, sizeof(past), loop_wall_ms() - 60000);
	snprintf(doc, sizeof(doc),
		 "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRET\","
		 "\"Token\":\"T\",\"Expiration\":\"%s\"}", past);
	error_case(ROLE, 200, doc, SL_E_REMOTE, "the credentials handed out expired at");
	/* Fractions of a second are accepted. */
	{
		struct wt w = { 0 };
		const struct s3_creds *c;

		setup(NULL);
		snprintf(FI.doc, sizeof(FI.doc),
			 "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\","
			 "\"Token\":\"T\",\"Expiration\":\"2096-02-29T23:59:59.25Z\"}");
		provider();
		wait_for(&w);
		c = s3cred_get(P, loop_wall_ms());
		T_CHECK(c != NULL);
		if (c)
			T_EQ(c->expires_ms, 3981398399250LL);
		teardown();
	}
}

/* A fetch that failed for good answers its waiters; a later wait tries again. */
static void test_retry_after_failure(void)
{
	struct wt a = { 0 }, b = { 0 };

	setup(NULL);
	FI.role[0] = '\0';
	provider();
	wait_for(&a);
	T_EQ(a.calls, 1);
	T_EQ(a.err, SL_E_NOTFOUND);
	T_EQ(FI.role_gets, 1);
	snprintf(FI.role, sizeof(FI.role), ROLE "\n");
	wait_for(&b);
	T_EQ(b.calls, 1);
	T_EQ(b.err, 0);
	T_EQ(a.calls, 1);
	T_EQ(FI.role_gets, 2);
	T_CHECK(s3cred_get(P, loop_wall_ms()) != NULL);
	teardown();
}

static void rewait(struct wt *t)
{
	if (t->calls == 1)
		s3cred_wait(P, &t->w);	/* once more: runs at the end of a later turn */
}

static void free_provider(struct wt *t)
{
	s3cred_free(P);
	P = NULL;
}

static void test_waiter_reentry(void)
{
	struct wt a = { .then = rewait }, b = { 0 }, c = { 0 };

	setup(NULL);
	provider();
	wait_for(&a);
	run_for(50);
	T_EQ(a.calls, 2);
	T_EQ(a.err, 0);
	teardown();

	/* Freed by a waiter mid-answer: the waiters after it are not called. */
	setup(NULL);
	provider();
	b.w.fn = c.w.fn = on_wait;
	b.then = free_provider;
	b.stop = 1;
	s3cred_wait(P, &b.w);
	s3cred_wait(P, &c.w);
	T_EQ(loop_run(L), 0);
	run_for(30);
	T_EQ(b.calls, 1);
	T_EQ(c.calls, 0);
	T_CHECK(P == NULL);
	teardown();
}

static void test_free_mid_fetch(void)
{
	struct wt w = { 0 };

	/* Before the first fetch starts. */
	setup(NULL);
	provider();
	s3cred_free(P);
	P = NULL;
	run_for(30);
	T_EQ(FI.puts + FI.gets, 0);
	teardown();

	/* With the role request on the wire and a waiter parked. */
	setup(NULL);
	FI.stall = 1;
	provider();
	w.w.fn = on_wait;
	s3cred_wait(P, &w.w);
	run_for(100);
	T_EQ(FI.gets, 1);
	s3cred_free(P);
	P = NULL;
	run_for(30);
	T_EQ(w.calls, 0);
	teardown();
}

int main(void)
{
	clear_env();
	T_RUN(test_config_beats_env);
	T_RUN(test_env_beats_role);
	T_RUN(test_env_half_pair_ignored);
	T_RUN(test_config_half_pair_fails);
	T_RUN(test_metadata_disabled);
	T_RUN(test_role);
	T_RUN(test_refresh_ahead);
	T_RUN(test_failed_refresh_keeps_old);
	T_RUN(test_errors);
	T_RUN(test_retry_after_failure);
	T_RUN(test_waiter_reentry);
	T_RUN(test_free_mid_fetch);
	return t_done();
}
