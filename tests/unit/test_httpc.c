/*
 * test_httpc.c - the client against a small HTTP server on loopback that
 * runs in the same loop.  The server answers by the request's path:
 *
 *   /ok            200, body "conn=<n> req=<m>" (which connection, which request on it)
 *   /echo          200, body = the request body's length and its first bytes
 *   /chunked       200, chunked body
 *   /close         200 with "Connection: close"
 *   /503           503 with an S3-style XML error body
 *   /stall         head promising 100 bytes, 10 bytes, then silence
 *   /early-close   head promising 100 bytes, 10 bytes, then close
 *   /garbage       a header line without a colon
 *   /bighead       100 KiB of header
 *   /hold          nothing until the test releases held requests
 *   /drop-reused   200 on a connection's first request; later ones: close, no answer
 *
 * Covered: keep-alive reuse, idle close, request timeout mid-body, early
 * close, 503 as a response, garbage and oversized heads, the body cap,
 * queueing at the pool's maximum, cancellation (queued and on the wire), the
 * keep-alive race retried once for GET and not for POST, large PUT bodies,
 * connect refused, a name through the resolver thread, TLS through the
 * transport hook (a pass-through fake), and httpc_free with requests out.
 *
 * Every test runs the loop under a 10 s guard timer; deadlines in tests are
 * short (100-300 ms) but nothing asserts how long anything took.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/log.h"
#include "../../net/httpc.h"

/* ---- the server ---- */

struct sconn {
	struct srv *s;
	int fd;
	int idx;		/* 1-based accept order */
	int nreq;
	uint8_t *in;
	size_t len, cap;
	int held;		/* a /hold request waits */
	int closed;
	struct sconn *next;
};

struct srv {
	struct loop *l;
	int lfd;
	uint16_t port;
	int accepted;
	int closed_by_peer;	/* connections the client closed */
	int requests;
	int nheld;
	char last_method[16];
	struct sconn *conns;
};

static struct srv S;

static void s_send(struct sconn *sc, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(sc->fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;	/* the client went away; fine for these tests */
		b += w;
		n -= (size_t)w;
	}
}

static void s_sendf(struct sconn *sc, const char *fmt, const char *body)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), fmt, strlen(body), body);

	s_send(sc, buf, (size_t)n);
}

static void s_close(struct sconn *sc)
{
	if (sc->closed)
		return;
	loop_del(S.l, sc->fd);
	close(sc->fd);
	sc->closed = 1;
}

static void respond(struct sconn *sc, const char *method, const char *path,
		    const uint8_t *body, size_t blen)
{
	char b[256];

	sc->nreq++;
	S.requests++;
	snprintf(S.last_method, sizeof(S.last_method), "%s", method);
	if (strcmp(path, "/ok") == 0) {
		snprintf(b, sizeof(b), "conn=%d req=%d", sc->idx, sc->nreq);
		s_sendf(sc, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", b);
	} else if (strcmp(path, "/echo") == 0) {
		snprintf(b, sizeof(b), "%zu:%.*s", blen, (int)(blen < 8 ? blen : 8), (const char *)body);
		s_sendf(sc, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", b);
	} else if (strcmp(path, "/chunked") == 0) {
		const char *m = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				"4;x=y\r\nchun\r\n3\r\nked\r\n0\r\nTrailer: t\r\n\r\n";
		s_send(sc, m, strlen(m));
	} else if (strcmp(path, "/close") == 0) {
		s_sendf(sc, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s", "bye");
		s_close(sc);
	} else if (strcmp(path, "/503") == 0) {
		s_sendf(sc, "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
			"Content-Length: %zu\r\n\r\n%s",
			"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>");
	} else if (strcmp(path, "/stall") == 0) {
		const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
		s_send(sc, m, strlen(m));
	} else if (strcmp(path, "/early-close") == 0) {
		const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
		s_send(sc, m, strlen(m));
		s_close(sc);
	} else if (strcmp(path, "/garbage") == 0) {
		const char *m = "HTTP/1.1 200 OK\r\nthis is not a header\r\nContent-Length: 0\r\n\r\n";
		s_send(sc, m, strlen(m));
	} else if (strcmp(path, "/bighead") == 0) {
		static char big[100 * 1024];
		size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Big: ");

		memset(big + n, 'x', sizeof(big) - n);
		s_send(sc, big, sizeof(big));
	} else if (strcmp(path, "/hold") == 0) {
		sc->held = 1;
		S.nheld++;
	} else if (strcmp(path, "/drop-reused") == 0) {
		if (sc->nreq == 1)
			s_sendf(sc, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", "first");
		else
			s_close(sc);
	} else {
		s_sendf(sc, "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n\r\n%s", "no");
	}
}

/* Answer every held request with 200. */
static void release_held(void)
{
	struct sconn *sc;

	for (sc = S.conns; sc; sc = sc->next) {
		if (!sc->held || sc->closed)
			continue;
		sc->held = 0;
		S.nheld--;
		s_sendf(sc, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", "released");
	}
}

/* Parse whole requests out of sc->in (test code: trusts its own client). */
static void s_process(struct sconn *sc)
{
	for (;;) {
		uint8_t *end = sc->len ? memmem(sc->in, sc->len, "\r\n\r\n", 4) : NULL;
		char method[16] = "", path[256] = "";
		size_t head, blen = 0, total;
		char *cl;

		if (!end || sc->held)
			return;
		head = (size_t)(end - sc->in) + 4;
		sc->in[head - 1] = '\0';	/* the last LF: headers become a string */
		cl = strcasestr((char *)sc->in, "\r\ncontent-length:");
		if (cl)
			blen = strtoul(cl + 17, NULL, 10);
		total = head + blen;
		if (sc->len < total) {
			sc->in[head - 1] = '\n';
			return;
		}
		sscanf((char *)sc->in, "%15s %255s", method, path);
		respond(sc, method, path, sc->in + head, blen);
		if (sc->closed)
			return;
		memmove(sc->in, sc->in + total, sc->len - total);
		sc->len -= total;
	}
}

static void s_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct sconn *sc = arg;

	if (sc->closed)
		return;
	if (sc->cap - sc->len < 65536) {
		sc->cap = sc->cap * 2 + 65536;
		sc->in = realloc(sc->in, sc->cap);
	}
	ssize_t n = recv(fd, sc->in + sc->len, sc->cap - sc->len - 1, 0);

	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		S.closed_by_peer++;
		s_close(sc);
		return;
	}
	if (n < 0)
		return;
	sc->len += (size_t)n;
	s_process(sc);
}

static void s_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct sconn *sc;

	if (cfd == -1)
		return;
	sc = calloc(1, sizeof(*sc));
	sc->s = &S;
	sc->fd = cfd;
	sc->idx = ++S.accepted;
	sc->next = S.conns;
	S.conns = sc;
	T_EQ(loop_add(l, cfd, LOOP_READ, s_io, sc), 0);
}

static void srv_start(struct loop *l)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(&S, 0, sizeof(S));
	S.l = l;
	S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(S.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	T_EQ(listen(S.lfd, 64), 0);
	getsockname(S.lfd, (struct sockaddr *)&a, &alen);
	S.port = ntohs(a.sin_port);
	T_EQ(loop_add(l, S.lfd, LOOP_READ, s_accept, NULL), 0);
}

static void srv_stop(void)
{
	while (S.conns) {
		struct sconn *sc = S.conns;

		S.conns = sc->next;
		s_close(sc);
		free(sc->in);
		free(sc);
	}
	loop_del(S.l, S.lfd);
	close(S.lfd);
}

/* ---- the harness ---- */

struct call {
	int done;		/* callbacks seen */
	int err;
	int status;
	char body[256];
	size_t body_len;
	char hdr[128];		/* a header the test asked for */
	const char *want_hdr;
	void (*then)(struct call *c);	/* run from the callback */
};

static struct loop *L;
static struct httpc *C;
static int outstanding;
static int guard_fired;
static struct loop_timer guard;

static void on_guard(struct loop *l, void *arg)
{
	guard_fired = 1;
	loop_stop(l);
}

static void on_resp(void *arg, int err, struct http_response *r)
{
	struct call *c = arg;

	c->done++;
	c->err = err;
	if (r) {
		c->status = r->status;
		c->body_len = r->body_len;
		snprintf(c->body, sizeof(c->body), "%.*s", (int)r->body_len,
			 r->body ? (const char *)r->body : "");
		if (c->want_hdr) {
			const char *v = http_response_header(r, c->want_hdr);

			snprintf(c->hdr, sizeof(c->hdr), "%s", v ? v : "(none)");
		}
	}
	if (c->then)
		c->then(c);
	if (--outstanding == 0)
		loop_stop(L);
}

static void setup(const struct httpc_config *cfg)
{
	L = loop_new();
	srv_start(L);
	C = httpc_new(L, cfg);
	T_CHECK(C != NULL);
	outstanding = 0;
	guard_fired = 0;
	loop_timer_init(&guard, on_guard, NULL);
	loop_timer_set(L, &guard, 10000);
}

static void teardown(void)
{
	httpc_free(C);
	C = NULL;
	srv_stop();
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
}

static struct httpc_req *send_req(const char *method, const char *path, struct call *c,
				  uint64_t timeout_ms, size_t max_body)
{
	struct httpc_request r;
	struct httpc_req *h = NULL;

	memset(&r, 0, sizeof(r));
	r.host = "127.0.0.1";
	r.port = S.port;
	r.method = method;
	r.target = path;
	r.timeout_ms = timeout_ms;
	r.max_body = max_body;
	T_EQ(httpc_send(C, &r, on_resp, c, &h), 0);
	outstanding++;
	return h;
}

static void run(void)
{
	if (outstanding > 0)
		T_EQ(loop_run(L), 0);
	T_EQ(guard_fired, 0);
}

#define T_STREQ(a, b) do { if (strcmp((a), (b)) != 0) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, (a), (b)); } } while (0)

/* ---- tests ---- */

static struct call seq[3];
static int seq_next;

static void send_next_ok(struct call *c)
{
	if (seq_next < 3)
		send_req("GET", "/ok", &seq[seq_next++], 0, 0);
}

static void test_keep_alive_reuse(void)
{
	struct httpc_stats st;
	int i;

	setup(NULL);
	memset(seq, 0, sizeof(seq));
	for (i = 0; i < 3; i++)
		seq[i].then = send_next_ok;
	seq_next = 1;
	send_req("GET", "/ok", &seq[0], 0, 0);
	run();
	for (i = 0; i < 3; i++) {
		char want[32];

		snprintf(want, sizeof(want), "conn=1 req=%d", i + 1);
		T_EQ(seq[i].done, 1);
		T_EQ(seq[i].err, 0);
		T_EQ(seq[i].status, 200);
		T_STREQ(seq[i].body, want);
	}
	T_EQ(S.accepted, 1);
	httpc_get_stats(C, &st);
	T_EQ(st.requests, 3);
	T_EQ(st.responses, 3);
	T_EQ(st.reuses, 2);
	T_EQ(st.connects, 1);
	T_EQ(st.conns, 1);
	T_EQ(st.idle, 1);
	teardown();
}

static struct call idle_second;
static struct loop_timer later;

static void send_idle_second(struct loop *l, void *arg)
{
	send_req("GET", "/ok", &idle_second, 0, 0);
	outstanding--;	/* it takes over the count after_first held */
}

static void after_first(struct call *c)
{
	/* Well past the 30 ms idle timeout. */
	loop_timer_init(&later, send_idle_second, NULL);
	loop_timer_set(L, &later, 300);
	outstanding++;	/* keep the loop running until the second answer */
}

static void test_idle_close(void)
{
	struct httpc_config cfg = { .idle_timeout_ms = 30 };
	struct call first = { .then = after_first };
	struct httpc_stats st;

	setup(&cfg);
	memset(&idle_second, 0, sizeof(idle_second));
	send_req("GET", "/ok", &first, 0, 0);
	run();
	T_EQ(first.err, 0);
	T_EQ(idle_second.done, 1);
	T_EQ(idle_second.err, 0);
	T_STREQ(idle_second.body, "conn=2 req=1");
	T_EQ(S.accepted, 2);
	T_EQ(S.closed_by_peer, 1);	/* the server saw the idle connection go */
	httpc_get_stats(C, &st);
	T_EQ(st.idle_closes, 1);
	T_EQ(st.reuses, 0);
	teardown();
}

static void test_timeout_mid_body(void)
{
	struct call stall = { 0 }, after = { 0 };
	struct httpc_stats st;

	setup(NULL);
	send_req("GET", "/stall", &stall, 150, 0);
	run();
	T_EQ(stall.done, 1);
	T_EQ(stall.err, SL_E_TIMEOUT);
	/* The stalled connection is gone; the next request gets a new one. */
	send_req("GET", "/ok", &after, 0, 0);
	run();
	T_EQ(after.err, 0);
	T_STREQ(after.body, "conn=2 req=1");
	T_EQ(S.closed_by_peer, 1);
	httpc_get_stats(C, &st);
	T_EQ(st.timeouts, 1);
	T_EQ(st.failures, 1);
	teardown();
}

static void test_faults(void)
{
	struct call early = { 0 }, garbage = { 0 }, big = { 0 }, capped = { 0 };
	struct call slow = { .want_hdr = "content-type" }, after = { 0 };

	setup(NULL);
	send_req("GET", "/early-close", &early, 0, 0);
	send_req("GET", "/garbage", &garbage, 0, 0);
	send_req("GET", "/bighead", &big, 0, 0);
	send_req("GET", "/ok", &capped, 0, 5);
	send_req("GET", "/503", &slow, 0, 0);
	run();
	T_EQ(early.done, 1);
	T_EQ(early.err, SL_E_CLOSED);
	T_EQ(garbage.err, SL_E_PROTO);
	T_EQ(big.err, SL_E_TOOBIG);
	T_EQ(capped.err, SL_E_TOOBIG);
	/* A 503 is a response: the caller reads its status and body. */
	T_EQ(slow.err, 0);
	T_EQ(slow.status, 503);
	T_CHECK(strstr(slow.body, "<Code>SlowDown</Code>") != NULL);
	T_STREQ(slow.hdr, "application/xml");
	/* Every failed connection was closed, the 503's kept. */
	send_req("GET", "/ok", &after, 0, 0);
	run();
	T_EQ(after.err, 0);
	T_EQ(S.accepted, 5);
	teardown();
}

static struct call held[5];
static struct loop_timer release_t;
static int queued_seen, conns_seen;

static void check_and_release(struct loop *l, void *arg)
{
	struct httpc_stats st;

	/* The first time, wait until both connections carry a held request. */
	if (S.nheld < (queued_seen == -1 ? 2 : 1)) {
		loop_timer_set(l, &release_t, 5);
		return;
	}
	if (queued_seen == -1) {
		httpc_get_stats(C, &st);
		queued_seen = st.queued;
		conns_seen = st.conns;
	}
	release_held();
}

static void release_rest(struct call *c)
{
	/* Later /hold requests on the same connections are held again. */
	if (!loop_timer_armed(&release_t))
		loop_timer_set(L, &release_t, 5);
}

static void test_queue_at_max(void)
{
	struct httpc_config cfg = { .max_conns_per_endpoint = 2 };
	struct httpc_stats st;
	int i;

	setup(&cfg);
	memset(held, 0, sizeof(held));
	loop_timer_init(&release_t, check_and_release, NULL);
	for (i = 0; i < 5; i++) {
		held[i].then = release_rest;
		send_req("GET", "/hold", &held[i], 0, 0);
	}
	loop_timer_set(L, &release_t, 5);
	queued_seen = conns_seen = -1;
	run();
	for (i = 0; i < 5; i++) {
		T_EQ(held[i].done, 1);
		T_EQ(held[i].err, 0);
		T_STREQ(held[i].body, "released");
	}
	T_EQ(queued_seen, 3);
	T_EQ(conns_seen, 2);
	T_EQ(S.accepted, 2);
	httpc_get_stats(C, &st);
	T_EQ(st.reuses, 3);
	loop_timer_cancel(L, &release_t);
	teardown();
}

static struct httpc_req *to_cancel[2];
static struct loop_timer cancel_t;

static void do_cancel(struct loop *l, void *arg)
{
	if (S.nheld < 1) {
		loop_timer_set(l, &cancel_t, 5);
		return;
	}
	httpc_cancel(C, to_cancel[0]);	/* on the wire */
	httpc_cancel(C, to_cancel[1]);	/* queued behind it */
	outstanding -= 2;
	/* Give the server a turn to see the close, then stop. */
	loop_timer_set(l, &later, 50);
}

static void stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

static void test_cancel(void)
{
	struct httpc_config cfg = { .max_conns_per_endpoint = 1 };
	struct call a = { 0 }, b = { 0 }, c = { 0 };
	struct httpc_stats st;

	setup(&cfg);
	to_cancel[0] = send_req("GET", "/hold", &a, 0, 0);
	to_cancel[1] = send_req("GET", "/ok", &b, 0, 0);
	loop_timer_init(&cancel_t, do_cancel, NULL);
	loop_timer_init(&later, stop_loop, NULL);
	loop_timer_set(L, &cancel_t, 5);
	run();
	T_EQ(a.done, 0);
	T_EQ(b.done, 0);
	T_EQ(S.closed_by_peer, 1);	/* the cancelled request's connection */
	httpc_get_stats(C, &st);
	T_EQ(st.cancels, 2);
	T_EQ(st.conns, 0);
	T_EQ(st.queued, 0);
	/* The pool recovers. */
	send_req("GET", "/ok", &c, 0, 0);
	run();
	T_EQ(c.err, 0);
	T_STREQ(c.body, "conn=2 req=1");
	teardown();
}

static struct call race[2];

static void send_second_race(struct call *c)
{
	send_req(c == &race[0] ? "GET" : "POST", "/drop-reused", &race[1], 0, 0);
}

static void test_keep_alive_race(void)
{
	struct httpc_stats st;

	/* GET: the closed reused connection is retried once on a new one. */
	setup(NULL);
	memset(race, 0, sizeof(race));
	race[0].then = send_second_race;
	send_req("GET", "/drop-reused", &race[0], 0, 0);
	run();
	T_EQ(race[0].err, 0);
	T_EQ(race[1].err, 0);
	T_STREQ(race[1].body, "first");
	T_EQ(S.accepted, 2);
	httpc_get_stats(C, &st);
	T_EQ(st.retries, 1);
	teardown();

	/* POST is not idempotent: the caller hears about it. */
	setup(NULL);
	memset(race, 0, sizeof(race));
	race[0].then = NULL;
	send_req("POST", "/drop-reused", &race[0], 0, 0);
	run();
	T_EQ(race[0].err, 0);
	send_req("POST", "/drop-reused", &race[1], 0, 0);
	run();
	T_EQ(race[1].done, 1);
	T_EQ(race[1].err, SL_E_CLOSED);
	httpc_get_stats(C, &st);
	T_EQ(st.retries, 0);
	T_EQ(S.accepted, 1);
	teardown();
}

static void test_bodies_and_framing(void)
{
	static uint8_t big[3 * 1024 * 1024];
	struct httpc_request r;
	struct call put = { 0 }, small = { 0 }, chunked = { .want_hdr = "transfer-encoding" };
	struct call closing = { 0 }, head = { 0 };
	struct http_header h[] = { { "x-amz-content-sha256", "UNSIGNED-PAYLOAD" } };

	setup(NULL);
	memset(big, 'B', sizeof(big));
	memcpy(big, "PAYLOAD!", 8);
	memset(&r, 0, sizeof(r));
	r.host = "127.0.0.1";
	r.port = S.port;
	r.method = "PUT";
	r.target = "/echo";
	r.headers = h;
	r.nheaders = 1;
	r.body = big;
	r.body_len = sizeof(big);
	T_EQ(httpc_send(C, &r, on_resp, &put, NULL), 0);
	outstanding++;
	r.body = "tiny";
	r.body_len = 4;
	T_EQ(httpc_send(C, &r, on_resp, &small, NULL), 0);
	outstanding++;
	send_req("GET", "/chunked", &chunked, 0, 0);
	send_req("HEAD", "/ok", &head, 0, 0);
	run();
	T_EQ(put.err, 0);
	T_STREQ(put.body, "3145728:PAYLOAD!");
	T_EQ(small.err, 0);
	T_STREQ(small.body, "4:tiny");
	T_EQ(chunked.err, 0);
	T_STREQ(chunked.body, "chunked");
	T_STREQ(chunked.hdr, "chunked");
	T_EQ(head.err, 0);
	T_EQ(head.status, 200);
	T_EQ(head.body_len, 0);

	/* Connection: close is honoured: that connection leaves the pool. */
	{
		struct httpc_stats st;
		int before;

		httpc_get_stats(C, &st);
		before = st.conns;
		T_CHECK(before > 0);
		send_req("GET", "/close", &closing, 0, 0);
		run();
		T_EQ(closing.err, 0);
		T_STREQ(closing.body, "bye");
		httpc_get_stats(C, &st);
		T_EQ(st.conns, before - 1);
	}
	teardown();
}

static void test_refused_and_invalid(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct httpc_request r;
	struct call refused = { 0 };
	int fd;

	setup(NULL);
	/* A port nobody listens on: bind one, note it, close it. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	close(fd);
	memset(&r, 0, sizeof(r));
	r.host = "127.0.0.1";
	r.port = ntohs(a.sin_port);
	r.method = "GET";
	r.target = "/";
	T_EQ(httpc_send(C, &r, on_resp, &refused, NULL), 0);
	outstanding++;
	run();
	T_EQ(refused.done, 1);
	T_EQ(refused.err, -ECONNREFUSED);

	/* Refused at once, no callback. */
	r.tls = 1;
	T_EQ(httpc_send(C, &r, on_resp, &refused, NULL), SL_E_TLS);
	r.tls = 0;
	r.host = "bad host";
	T_EQ(httpc_send(C, &r, on_resp, &refused, NULL), SL_E_INVALID);
	r.host = "127.0.0.1";
	r.target = "no-slash";
	T_EQ(httpc_send(C, &r, on_resp, &refused, NULL), SL_E_INVALID);
	{
		struct http_header h[] = { { "Connection", "close" } };

		r.target = "/";
		r.headers = h;
		r.nheaders = 1;
		T_EQ(httpc_send(C, &r, on_resp, &refused, NULL), SL_E_INVALID);
	}
	T_EQ(refused.done, 1);
	teardown();
}

static void test_host_value(void)
{
	char b[64];

	T_EQ(httpc_host_value(b, sizeof(b), 1, "s3.amazonaws.com", 443), 0);
	T_STREQ(b, "s3.amazonaws.com");
	T_EQ(httpc_host_value(b, sizeof(b), 0, "127.0.0.1", 9000), 0);
	T_STREQ(b, "127.0.0.1:9000");
	T_EQ(httpc_host_value(b, sizeof(b), 0, "::1", 80), 0);
	T_STREQ(b, "[::1]");
	T_EQ(httpc_host_value(b, sizeof(b), 1, "[::1]", 8443), 0);
	T_STREQ(b, "[::1]:8443");
	T_EQ(httpc_host_value(b, 8, 0, "example.com", 80), SL_E_TOOBIG);
}

static void test_name_through_resolver(void)
{
	struct httpc_request r;
	struct call c = { 0 };

	setup(NULL);
	memset(&r, 0, sizeof(r));
	/* localhost may give ::1 first: the server only listens on 127.0.0.1. */
	r.host = "localhost";
	r.port = S.port;
	r.method = "GET";
	r.target = "/ok";
	T_EQ(httpc_send(C, &r, on_resp, &c, NULL), 0);
	outstanding++;
	run();
	T_EQ(c.err, 0);
	T_STREQ(c.body, "conn=1 req=1");
	teardown();
}

/* A pass-through "TLS" transport that counts what the client does with it. */
struct fake_tls {
	int fd;
	int want_write;
};
static int tls_opens, tls_closes, tls_reads, tls_writes, tls_fail;
static char tls_name[64];

static ssize_t ft_read(void *t, void *buf, size_t n)
{
	struct fake_tls *f = t;
	ssize_t r = recv(f->fd, buf, n, 0);

	tls_reads++;
	if (r == -1)
		return errno == EAGAIN ? -EAGAIN : -errno;
	return r;
}

static ssize_t ft_write(void *t, const void *buf, size_t n)
{
	struct fake_tls *f = t;
	ssize_t r = send(f->fd, buf, n, MSG_NOSIGNAL);

	tls_writes++;
	f->want_write = r == -1 && errno == EAGAIN;
	if (r == -1)
		return errno == EAGAIN ? -EAGAIN : -errno;
	return r;
}

static unsigned ft_events(void *t)
{
	struct fake_tls *f = t;

	return LOOP_READ | (f->want_write ? LOOP_WRITE : 0);
}

static void ft_close(void *t)
{
	tls_closes++;
	free(t);
}

static const struct http_transport_ops ft_ops = { ft_read, ft_write, ft_events, ft_close };

static void *ft_open(void *ctx, int fd, const char *server_name, const struct http_transport_ops **ops)
{
	struct fake_tls *f;

	tls_opens++;
	snprintf(tls_name, sizeof(tls_name), "%s", server_name);
	if (tls_fail)
		return NULL;
	f = calloc(1, sizeof(*f));
	f->fd = fd;
	*ops = &ft_ops;
	return f;
}

static void test_tls_hook(void)
{
	struct httpc_config cfg = { .tls_open = ft_open };
	struct httpc_request r;
	struct call a = { 0 }, b = { 0 }, fail = { 0 };

	tls_opens = tls_closes = tls_reads = tls_writes = tls_fail = 0;
	setup(&cfg);
	memset(&r, 0, sizeof(r));
	r.tls = 1;
	r.host = "127.0.0.1";
	r.port = S.port;
	r.method = "GET";
	r.target = "/ok";
	T_EQ(httpc_send(C, &r, on_resp, &a, NULL), 0);
	T_EQ(httpc_send(C, &r, on_resp, &b, NULL), 0);
	outstanding += 2;
	run();
	T_EQ(a.err, 0);
	T_EQ(b.err, 0);
	T_EQ(tls_opens, S.accepted);
	T_CHECK(tls_reads > 0 && tls_writes > 0);
	T_STREQ(tls_name, "127.0.0.1");

	tls_fail = 1;
	T_EQ(httpc_send(C, &r, on_resp, &fail, NULL), 0);
	outstanding++;
	/* Both pooled connections are idle: fail needs a new one only if they are busy. */
	run();
	T_EQ(fail.err, 0);	/* it went out on a pooled connection */
	teardown();
	T_EQ(tls_closes, tls_opens);

	/* A new connection whose TLS setup fails. */
	tls_opens = tls_closes = 0;
	tls_fail = 1;
	setup(&cfg);
	memset(&fail, 0, sizeof(fail));
	r.port = S.port;
	T_EQ(httpc_send(C, &r, on_resp, &fail, NULL), 0);
	outstanding++;
	run();
	T_EQ(fail.err, SL_E_TLS);
	T_EQ(tls_opens, 1);
	T_EQ(tls_closes, 0);	/* nothing was opened, nothing to close */
	teardown();
}

static void test_free_with_requests_out(void)
{
	struct call a = { 0 }, b = { 0 };
	struct httpc_config cfg = { .max_conns_per_endpoint = 1 };
	struct loop_timer stop;

	setup(&cfg);
	send_req("GET", "/hold", &a, 0, 0);
	send_req("GET", "/ok", &b, 0, 0);
	loop_timer_init(&stop, stop_loop, NULL);
	loop_timer_set(L, &stop, 50);
	T_EQ(loop_run(L), 0);
	T_EQ(a.done, 0);
	T_EQ(b.done, 0);
	httpc_free(C);
	C = NULL;
	T_EQ(a.done, 1);
	T_EQ(a.err, SL_E_CLOSED);
	T_EQ(b.done, 1);
	T_EQ(b.err, SL_E_CLOSED);
	C = httpc_new(L, NULL);
	teardown();
}

int main(void)
{
	log_set_level(LOG_ERROR);
	T_RUN(test_keep_alive_reuse);
	T_RUN(test_idle_close);
	T_RUN(test_timeout_mid_body);
	T_RUN(test_faults);
	T_RUN(test_queue_at_max);
	T_RUN(test_cancel);
	T_RUN(test_keep_alive_race);
	T_RUN(test_bodies_and_framing);
	T_RUN(test_refused_and_invalid);
	T_RUN(test_host_value);
	T_RUN(test_name_through_resolver);
	T_RUN(test_tls_hook);
	T_RUN(test_free_with_requests_out);
	return t_done();
}
