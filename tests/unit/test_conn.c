/*
 * test_conn.c - connections: replies leave in request order even when the
 * upper layer finishes them out of order; dropped requests (no reply) keep
 * their place; an oversized or negative frame size closes only that
 * connection; max.connections refuses the extra one; reading pauses at the
 * in-flight limit and resumes as replies drain.
 *
 * The "upper layer" here answers frame i after a timer of (3 - i % 3) * 5 ms,
 * so later requests finish first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/log.h"
#include "../../net/conn.h"

struct pending {
	struct loop_timer t;
	struct conn_req *req;
	struct loop *l;
};

static int nreq;		/* requests seen by the upper layer */
static int hold;		/* keep requests unanswered until the test says */
static struct pending *held[16];
static int nheld;
static int live;		/* requests not yet answered */
static struct loop *L;

static void answer(struct loop *l, void *arg)
{
	struct pending *p = arg;

	live--;
	/* Frames whose first byte is 'D' get no reply, like acks=0. */
	if (p->req->len > 0 && p->req->frame[0] == 'D') {
		conn_req_drop(p->req);
	} else {
		(void)wr_bytes(&p->req->out, p->req->frame, p->req->len);	/* echo */
		conn_req_done(p->req);
	}
	free(p);
}

static void cancel(struct conn_req *req)
{
	struct pending *p = req->ctx;
	loop_timer_cancel(L, &p->t);
	live--;
	free(p);
}

static void on_request(struct conn_req *req, void *arg)
{
	struct pending *p = calloc(1, sizeof(*p));

	p->req = req;
	req->ctx = p;
	req->cancel = cancel;
	loop_timer_init(&p->t, answer, p);
	if (hold && nheld < 16)
		held[nheld++] = p;
	else
		loop_timer_set(L, &p->t, (uint64_t)(3 - nreq % 3) * 5);
	nreq++;
	live++;
}

static void stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

static int client(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_frame(int fd, const char *body, size_t n)
{
	uint8_t hdr[4];
	sl_store_be32(hdr, (uint32_t)n);
	T_EQ(write(fd, hdr, 4), 4);
	T_EQ(write(fd, body, n), (ssize_t)n);
}

/* Run the loop until fd is readable, at most ms. */
static void pump(int fd, int ms)
{
	for (int i = 0; i < ms; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 0) == 1)
			return;
		struct loop_timer t;
		loop_timer_init(&t, stop_loop, NULL);
		loop_timer_set(L, &t, 1);
		(void)loop_run(L);
		loop_timer_cancel(L, &t);
	}
}

/* Read exactly n bytes, pumping the loop between attempts. */
static int read_n(int fd, uint8_t *buf, size_t n, int ms)
{
	size_t got = 0;
	for (int i = 0; i < ms && got < n; i++) {
		pump(fd, 1);
		ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r == 0)
			return -1;
		if (r > 0)
			got += (size_t)r;
	}
	return got == n ? 0 : -1;
}

/* 1 if the server closed fd within ms. */
static int closed_within(int fd, int ms)
{
	uint8_t b;
	for (int i = 0; i < ms; i++) {
		pump(fd, 1);
		ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);
		if (r == 0 || (r == -1 && errno == ECONNRESET))
			return 1;
	}
	return 0;
}

static struct server *start(struct net_limits *lim)
{
	struct net_ops ops = { .on_request = on_request };
	return server_listen(L, "127.0.0.1", 0, lim, &ops, NULL);
}

static void test_in_order(void)
{
	struct net_limits lim = { 1 << 20, 10, 100, 1 << 20 };
	struct server *srv = start(&lim);
	int fd = client(server_port(srv));
	const char *bodies[] = { "r0", "r1", "D2", "r3", "r4", "D5", "r6" };

	for (int i = 0; i < 7; i++)
		send_frame(fd, bodies[i], 2);
	for (int i = 0; i < 7; i++) {
		if (bodies[i][0] == 'D')
			continue;
		uint8_t buf[6];
		T_EQ(read_n(fd, buf, 6, 2000), 0);
		T_EQ(sl_load_be32(buf), 2);
		T_MEMEQ(buf + 4, bodies[i], 2);
	}
	close(fd);
	server_destroy(srv);
}

static void test_bad_sizes_close_only_that_connection(void)
{
	struct net_limits lim = { 1000, 10, 100, 1 << 20 };
	struct server *srv = start(&lim);
	int good = client(server_port(srv));
	int big = client(server_port(srv));
	int neg = client(server_port(srv));
	uint8_t hdr[4];

	pump(good, 20);
	sl_store_be32(hdr, 1001);
	T_EQ(write(big, hdr, 4), 4);
	sl_store_be32(hdr, 0x80000000u);
	T_EQ(write(neg, hdr, 4), 4);
	T_CHECK(closed_within(big, 2000));
	T_CHECK(closed_within(neg, 2000));
	send_frame(good, "ok", 2);
	uint8_t buf[6];
	T_EQ(read_n(good, buf, 6, 2000), 0);
	T_MEMEQ(buf + 4, "ok", 2);
	T_EQ(server_connections(srv), 1);
	close(good);
	close(big);
	close(neg);
	server_destroy(srv);
}

static void test_max_connections(void)
{
	struct net_limits lim = { 1000, 2, 100, 1 << 20 };
	struct server *srv = start(&lim);
	int a = client(server_port(srv)), b = client(server_port(srv));
	pump(a, 20);
	int c = client(server_port(srv));
	T_CHECK(closed_within(c, 2000));
	T_EQ(server_connections(srv), 2);
	close(a);
	close(b);
	close(c);
	server_destroy(srv);
}

static void test_backpressure(void)
{
	struct net_limits lim = { 1000, 10, 4, 1 << 20 };
	struct server *srv = start(&lim);
	int fd = client(server_port(srv));
	uint8_t frames[4 * 5];

	for (int i = 0; i < 4; i++) {
		sl_store_be32(frames + i * 5, 1);
		frames[i * 5 + 4] = 'r';
	}
	hold = 1;
	nheld = 0;
	nreq = 0;
	T_EQ(write(fd, frames, sizeof(frames)), (ssize_t)sizeof(frames));
	for (int i = 0; i < 200 && nreq < 4; i++)
		pump(fd, 1);
	T_EQ(nreq, 4);
	/* At the in-flight limit: the next frames stay in the socket. */
	T_EQ(write(fd, frames, sizeof(frames)), (ssize_t)sizeof(frames));
	for (int i = 0; i < 50; i++)
		pump(fd, 1);
	T_EQ(nreq, 4);
	/* Replies drain, reading resumes, every request is answered. */
	hold = 0;
	for (int i = 0; i < nheld; i++)
		answer(L, held[i]);
	uint8_t buf[8 * 5];
	T_EQ(read_n(fd, buf, sizeof(buf), 5000), 0);
	T_EQ(nreq, 8);
	close(fd);
	server_destroy(srv);
}

static void test_close_cancels_pending(void)
{
	struct net_limits lim = { 1000, 10, 100, 1 << 20 };
	struct server *srv = start(&lim);
	int fd = client(server_port(srv));

	live = 0;
	send_frame(fd, "r0", 2);
	send_frame(fd, "r1", 2);
	for (int i = 0; i < 50 && live < 2; i++) {
		struct loop_timer t;
		loop_timer_init(&t, stop_loop, NULL);
		loop_timer_set(L, &t, 0);
		(void)loop_run(L);
	}
	T_EQ(live, 2);
	close(fd);
	/* The close is seen, both pending requests are cancelled, nothing answers later. */
	for (int i = 0; i < 50 && live > 0; i++) {
		struct loop_timer t;
		loop_timer_init(&t, stop_loop, NULL);
		loop_timer_set(L, &t, 1);
		(void)loop_run(L);
	}
	T_EQ(live, 0);
	T_EQ(server_connections(srv), 0);
	server_destroy(srv);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	L = loop_new();
	T_RUN(test_in_order);
	T_RUN(test_bad_sizes_close_only_that_connection);
	T_RUN(test_max_connections);
	T_RUN(test_backpressure);
	T_RUN(test_close_cancels_pending);
	loop_destroy(L);
	return t_done();
}
