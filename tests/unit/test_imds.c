/*
 * test_imds.c - the IMDSv2 client against a fake metadata service on
 * loopback (timds.h) that refuses GETs without a token, as an instance with
 * HttpTokens=required does.  AWS_EC2_METADATA_SERVICE_ENDPOINT points at it.
 *
 * Covered: the token PUT comes first and carries the TTL, one token for
 * many requests, the TTL the service grants is honoured and the token
 * renewed before it lapses, a 401 on a stale token fetches a fresh one
 * once, retries with backoff for 5xx, timeouts and refused connections,
 * final answers for 404, a refused token and oversized bodies, the
 * endpoint's forms and sources, cancellation, and imds_free with requests
 * out and from inside a callback.  No GET ever goes out without a token.
 *
 * Every test runs the loop under a 10 s guard timer; nothing asserts how
 * long anything took.
 */
#include <errno.h>
#include "timds.h"
#include "../../kernel/log.h"
#include "../../net/httpc.h"
#include "../../net/imds.h"

#define ENV "AWS_EC2_METADATA_SERVICE_ENDPOINT"

static struct loop *L;
static struct httpc *H;
static struct imds *M;
static struct loop_timer guard;
static int guard_fired;
static int outstanding;

struct got {
	int done;
	int err;
	int status;
	char body[256];
	size_t len;
	void (*then)(struct got *g);
};

static void on_guard(struct loop *l, void *arg)
{
	guard_fired = 1;
	loop_stop(l);
}

static void on_got(void *arg, int err, int status, const uint8_t *body, size_t len)
{
	struct got *g = arg;

	g->done++;
	g->err = err;
	g->status = status;
	g->len = len;
	snprintf(g->body, sizeof(g->body), "%.*s", (int)len, body ? (const char *)body : "");
	if (err)
		T_CHECK(body == NULL && len == 0);
	if (g->then)
		g->then(g);
	if (--outstanding == 0)
		loop_stop(L);
}

static void setup(const struct imds_config *cfg)
{
	L = loop_new();
	fi_start(L);
	snprintf(FI.role, sizeof(FI.role), "sluice-role\n");
	setenv(ENV, FI.endpoint, 1);
	H = httpc_new(L, NULL);
	T_CHECK(H != NULL);
	T_EQ(imds_new(L, H, cfg, &M), 0);
	outstanding = 0;
	guard_fired = 0;
	loop_timer_init(&guard, on_guard, NULL);
	loop_timer_set(L, &guard, 10000);
}

static void teardown(void)
{
	/* Whatever happened, no GET ever went out without a token. */
	T_EQ(FI.gets_without_token, 0);
	imds_free(M);
	M = NULL;
	httpc_free(H);
	H = NULL;
	fi_stop();
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
	unsetenv(ENV);
}

static void get(const char *path, struct got *g)
{
	T_EQ(imds_get(M, path, 0, on_got, g, NULL), 0);
	outstanding++;
}

static void run(void)
{
	if (outstanding > 0)
		T_EQ(loop_run(L), 0);
	T_EQ(guard_fired, 0);
}

/* ---- tests ---- */

static void test_token_first(void)
{
	struct got a = { 0 }, b = { 0 }, c = { 0 };
	struct imds_stats st;

	setup(NULL);
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.done, 1);
	T_EQ(a.err, 0);
	T_EQ(a.status, 200);
	T_STR_EQ(a.body, "sluice-role\n");
	T_EQ(FI.puts, 1);
	T_EQ(FI.puts_without_ttl, 0);
	T_STR_EQ(FI.last_ttl, "21600");
	T_EQ(FI.gets, 1);
	/* The token is kept: later requests go straight out with it. */
	get(FI_CREDS_PATH, &b);
	get("/latest/user-data", &c);
	run();
	T_EQ(b.err, 0);
	T_EQ(c.err, SL_E_NOTFOUND);
	T_EQ(c.status, 404);
	T_EQ(FI.puts, 1);
	T_EQ(FI.gets, 3);
	T_EQ(FI.gets_bad_token, 0);
	imds_get_stats(M, &st);
	T_EQ(st.token_fetches, 1);
	T_EQ(st.tokens, 1);
	T_EQ(st.gets, 3);
	T_EQ(st.retries, 0);
	T_STR_EQ(imds_endpoint(M), FI.endpoint);
	teardown();
}

static void test_one_token_for_many(void)
{
	struct got g[5];
	int i;

	setup(NULL);
	memset(g, 0, sizeof(g));
	snprintf(FI.user_data, sizeof(FI.user_data), "node.id=3\n");
	for (i = 0; i < 5; i++)
		get("/latest/user-data", &g[i]);
	run();
	for (i = 0; i < 5; i++) {
		T_EQ(g[i].done, 1);
		T_EQ(g[i].err, 0);
		T_STR_EQ(g[i].body, "node.id=3\n");
	}
	T_EQ(FI.puts, 1);
	T_EQ(FI.gets, 5);
	teardown();
}

static void test_ttl_asked(void)
{
	struct imds_config cfg = { .token_ttl_s = 600 };
	struct imds *bad;
	struct got a = { 0 };

	setup(&cfg);
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.err, 0);
	T_STR_EQ(FI.last_ttl, "600");
	cfg.token_ttl_s = IMDS_MAX_TOKEN_TTL_S + 1;
	T_EQ(imds_new(L, H, &cfg, &bad), SL_E_INVALID);
	T_EQ(imds_new(L, NULL, NULL, &bad), SL_E_INVALID);
	teardown();
}

/* The service grants 1 s whatever is asked; the second GET waits 850 ms. */
static struct got ttl_second;
static struct loop_timer ttl_later;

static void ttl_send_second(struct loop *l, void *arg)
{
	get(FI_CREDS_PATH, &ttl_second);
	outstanding--;		/* the count first_then held passes to the GET */
}

static void ttl_first_then(struct got *g)
{
	loop_timer_init(&ttl_later, ttl_send_second, NULL);
	loop_timer_set(L, &ttl_later, 850);
	outstanding++;
}

static void test_ttl_honoured_and_renewed(void)
{
	struct got first = { .then = ttl_first_then };

	setup(NULL);
	FI.grant_ttl = "1";
	memset(&ttl_second, 0, sizeof(ttl_second));
	get(FI_CREDS_PATH, &first);
	run();
	T_EQ(first.err, 0);
	T_EQ(ttl_second.done, 1);
	T_EQ(ttl_second.err, 0);
	T_STR_EQ(FI.last_ttl, "21600");	/* asked for the maximum ... */
	T_EQ(FI.puts, 2);		/* ... held the 1 s granted, renewed in its last quarter */
	T_EQ(FI.gets_bad_token, 0);	/* never sent a lapsed token */
	T_EQ(FI.gets, 2);
	teardown();
}

static void test_stale_token_refreshed_once(void)
{
	struct got a = { 0 }, b = { 0 }, c = { 0 };
	struct imds_stats st;

	setup(NULL);
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.err, 0);
	fi_revoke();		/* the service restarted: our token means nothing now */
	get(FI_CREDS_PATH, &b);
	run();
	T_EQ(b.done, 1);
	T_EQ(b.err, 0);
	T_STR_EQ(b.body, "sluice-role\n");
	T_EQ(FI.puts, 2);
	T_EQ(FI.gets_bad_token, 1);
	T_EQ(FI.gets, 3);
	imds_get_stats(M, &st);
	T_EQ(st.stale_tokens, 1);
	/* A 401 that survives a fresh token is the answer, after one refresh. */
	FI.always_401 = 1;
	get(FI_CREDS_PATH, &c);
	run();
	T_EQ(c.done, 1);
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 401);
	T_EQ(FI.puts, 3);
	T_EQ(FI.gets, 5);
	teardown();
}

static void test_retries(void)
{
	struct imds_config cfg = { .backoff_ms = 5, .max_attempts = 3 };
	struct got a = { 0 }, b = { 0 };
	struct imds_stats st;

	setup(&cfg);
	FI.fail_5xx = 2;
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.done, 1);
	T_EQ(a.err, 0);
	T_EQ(FI.gets, 3);
	imds_get_stats(M, &st);
	T_EQ(st.retries, 2);
	FI.fail_5xx = 10;
	get(FI_CREDS_PATH, &b);
	run();
	T_EQ(b.done, 1);
	T_EQ(b.err, SL_E_REMOTE);
	T_EQ(b.status, 500);
	T_EQ(FI.gets, 6);	/* three attempts, no more */
	T_EQ(FI.puts, 1);
	teardown();
}

static void test_timeout_retried(void)
{
	struct imds_config cfg = { .request_timeout_ms = 100, .backoff_ms = 5, .max_attempts = 2 };
	struct got a = { 0 };

	setup(&cfg);
	FI.stall = 1;
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.done, 1);
	T_EQ(a.err, SL_E_TIMEOUT);
	T_EQ(a.status, 0);
	T_EQ(FI.gets, 2);
	teardown();
}

static void test_final_answers(void)
{
	struct imds_config cfg = { .backoff_ms = 5 };
	struct got nf = { 0 }, norole = { 0 }, big = { 0 }, big_ok = { 0 };

	setup(&cfg);
	FI.role[0] = '\0';
	get("/latest/meta-data/nothing", &nf);
	get(FI_CREDS_PATH, &norole);
	T_EQ(imds_get(M, "/big", 1000, on_got, &big, NULL), 0);
	outstanding++;
	T_EQ(imds_get(M, "/big", 200 * 1024, on_got, &big_ok, NULL), 0);
	outstanding++;
	run();
	T_EQ(nf.err, SL_E_NOTFOUND);
	T_EQ(nf.status, 404);
	T_EQ(norole.err, SL_E_NOTFOUND);
	T_EQ(big.err, SL_E_TOOBIG);
	T_EQ(big_ok.err, 0);
	T_EQ(big_ok.len, 100 * 1024);
	T_EQ(FI.gets, 4);	/* none of them retried */
	/* Paths the client refuses to send. */
	T_EQ(imds_get(M, "latest/user-data", 0, on_got, &nf, NULL), SL_E_INVALID);
	T_EQ(imds_get(M, "/a b", 0, on_got, &nf, NULL), SL_E_INVALID);
	T_EQ(imds_get(M, "/a\r\nX: y", 0, on_got, &nf, NULL), SL_E_INVALID);
	T_EQ(imds_get(M, "/a", 0, NULL, &nf, NULL), SL_E_INVALID);
	teardown();
}

static void test_token_refused(void)
{
	struct imds_config cfg = { .backoff_ms = 5 };
	struct got a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	setup(&cfg);
	FI.token_status = 403;	/* IMDS disabled, or the hop limit */
	get(FI_CREDS_PATH, &a);
	get("/latest/user-data", &b);
	run();
	T_EQ(a.done, 1);
	T_EQ(a.err, SL_E_REMOTE);
	T_EQ(a.status, 403);
	T_EQ(b.done, 1);
	T_EQ(b.err, SL_E_REMOTE);
	T_EQ(FI.puts, 1);	/* a 4xx is final */
	T_EQ(FI.gets, 0);	/* and nothing fell back to IMDSv1 */
	/* A 5xx to the PUT is retried like any other. */
	FI.token_status = 503;
	get(FI_CREDS_PATH, &c);
	run();
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 503);
	T_EQ(FI.puts, 4);
	T_EQ(FI.gets, 0);
	/* The next request tries again. */
	FI.token_status = 200;
	get(FI_CREDS_PATH, &d);
	run();
	T_EQ(d.err, 0);
	T_EQ(FI.puts, 5);
	teardown();
}

static void test_refused_connection(void)
{
	struct imds_config cfg = { .backoff_ms = 5 };
	struct imds_stats st;
	struct got a = { 0 };
	char ep[64];

	setup(NULL);
	/* A port nobody listens on: bind one, note it, close it. */
	{
		struct sockaddr_in sa;
		socklen_t alen = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		T_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		getsockname(fd, (struct sockaddr *)&sa, &alen);
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%u/", (unsigned)ntohs(sa.sin_port));
		close(fd);
	}
	imds_free(M);
	cfg.endpoint = ep;	/* the configuration beats the environment */
	T_EQ(imds_new(L, H, &cfg, &M), 0);
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.done, 1);
	T_EQ(a.err, -ECONNREFUSED);
	imds_get_stats(M, &st);
	T_EQ(st.token_fetches, 3);
	T_EQ(st.gets, 0);
	T_EQ(FI.puts, 0);
	teardown();
}

static void test_endpoints(void)
{
	static const char *const bad[] = {
		"169.254.169.254", "ftp://169.254.169.254", "http://", "http:///", "http://:80",
		"http://h:", "http://h:0", "http://h:65536", "http://h:8x", "http://h/latest",
		"http://h?x", "http://user@h", "http://[::1", "http://[]", "http://[::1]x",
		"http://::1", "http://h h", "http://h\r\n",
	};
	struct imds_config cfg = { 0 };
	struct imds *m;
	size_t i;

	L = loop_new();
	H = httpc_new(L, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.endpoint = bad[i];
		m = (struct imds *)1;
		T_EQ(imds_new(L, H, &cfg, &m), SL_E_CONFIG);
		T_CHECK(m == NULL);
	}
	/* From the environment, as AWS's SDKs read it. */
	setenv(ENV, "http://[fd00:ec2::254]/", 1);
	T_EQ(imds_new(L, H, NULL, &m), 0);
	T_STR_EQ(imds_endpoint(m), "http://[fd00:ec2::254]:80");
	imds_free(m);
	setenv(ENV, "https://imds.example:8443", 1);
	T_EQ(imds_new(L, H, NULL, &m), 0);
	T_STR_EQ(imds_endpoint(m), "https://imds.example:8443");
	imds_free(m);
	setenv(ENV, "nonsense", 1);
	T_EQ(imds_new(L, H, NULL, &m), SL_E_CONFIG);
	unsetenv(ENV);
	T_EQ(imds_new(L, H, NULL, &m), 0);
	T_STR_EQ(imds_endpoint(m), "http://169.254.169.254:80");
	imds_free(m);
	httpc_free(H);
	H = NULL;
	loop_destroy(L);
	L = NULL;
}

static struct imds_req *to_cancel;

static void cancel_other(struct got *g)
{
	imds_cancel(M, to_cancel);
	outstanding--;
}

static void test_cancel(void)
{
	struct got a = { 0 }, b = { .then = cancel_other }, c = { 0 }, d = { 0 };
	struct imds_req *h;

	setup(NULL);
	/* Cancelled while waiting for the token: never called. */
	T_EQ(imds_get(M, FI_CREDS_PATH, 0, on_got, &a, &h), 0);
	T_CHECK(h != NULL);
	imds_cancel(M, h);
	/* Cancelled from another request's callback while on the wire. */
	T_EQ(imds_get(M, "/hold", 0, on_got, &c, &to_cancel), 0);
	outstanding++;
	get(FI_CREDS_PATH, &b);
	run();
	T_EQ(a.done, 0);
	T_EQ(b.done, 1);
	T_EQ(c.done, 0);
	T_EQ(FI.holds, 1);
	/* It stays silent, and the client goes on working. */
	get(FI_CREDS_PATH, &d);
	run();
	T_EQ(d.err, 0);
	T_EQ(c.done, 0);
	T_EQ(FI.puts, 1);
	teardown();
}

static void free_from_callback(struct got *g)
{
	imds_free(M);
	M = NULL;
	outstanding = 1;	/* the others will never answer; stop after this one */
}

static void test_free_with_requests_out(void)
{
	struct got a = { .then = free_from_callback }, b = { 0 }, c = { 0 };

	setup(NULL);
	FI.stall = 0;
	get(FI_CREDS_PATH, &a);
	run();
	T_EQ(a.done, 1);
	T_CHECK(M == NULL);
	/* Freed with one request stalled on the wire and one waiting for a token. */
	T_EQ(imds_new(L, H, NULL, &M), 0);
	FI.stall = 1;
	get(FI_CREDS_PATH, &b);
	{
		struct loop_timer t;

		loop_timer_init(&t, on_guard, NULL);
		loop_timer_set(L, &t, 100);
		T_EQ(loop_run(L), 0);
		guard_fired = 0;
	}
	get(FI_CREDS_PATH, &c);
	imds_free(M);
	M = NULL;
	T_EQ(b.done, 0);
	T_EQ(c.done, 0);
	/* From inside a callback, with others outstanding. */
	T_EQ(imds_new(L, H, NULL, &M), 0);
	FI.stall = 0;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.then = b.then = c.then = free_from_callback;
	outstanding = 0;
	get(FI_CREDS_PATH, &a);
	get(FI_CREDS_PATH, &b);
	get(FI_CREDS_PATH, &c);
	run();
	T_EQ(a.done + b.done + c.done, 1);
	teardown();
}

int main(void)
{
	log_set_level(LOG_ERROR);
	T_RUN(test_token_first);
	T_RUN(test_one_token_for_many);
	T_RUN(test_ttl_asked);
	T_RUN(test_ttl_honoured_and_renewed);
	T_RUN(test_stale_token_refreshed_once);
	T_RUN(test_retries);
	T_RUN(test_timeout_retried);
	T_RUN(test_final_answers);
	T_RUN(test_token_refused);
	T_RUN(test_refused_connection);
	T_RUN(test_endpoints);
	T_RUN(test_cancel);
	T_RUN(test_free_with_requests_out);
	return t_done();
}
