/*
 * httpc.c - the HTTP/1.1 client on the loop (see httpc.h).
 *
 * Owns: endpoints (one pool each), their connections and sockets, the
 * requests from httpc_send() until their callbacks return, and a resolver
 * unless the caller lent one.  Parsing and serialising are net/http.c's;
 * this file moves the bytes and keeps the books.
 *
 * A connection:
 *
 *   RESOLVING --addrs--> CONNECTING --connected(+tls_open)--> IDLE <--+
 *       |                   |  (next address on failure)        |      |
 *       |                   |                            assign |      | keep-alive
 *       |                   |                                   v      | response
 *       +---fail/timeout----+----> CLOSED <--error/timeout--- ACTIVE --+
 *                                    ^                              |
 *                                    +---idle timeout, peer close---+ (from IDLE)
 *
 * A request: QUEUED (on its endpoint's queue) -> ACTIVE (on a connection)
 * -> DONE (on the client's done list) -> CALLING -> freed.  Cancel frees it
 * from QUEUED, ACTIVE (closing the connection) or DONE.
 *
 * Nothing reaches a caller synchronously: finished requests go to the done
 * list and their callbacks run from a deferred task; pools are re-balanced
 * by a deferred per-endpoint "kick".  So no state change below ever runs
 * with a caller's code on the stack, and callbacks may do anything.
 *
 * Invariants:
 *   1. req->conn == k exactly when k->req == req, and then both are ACTIVE.
 *   2. ep->nconns counts ep's connections not CLOSED; ep->nsetup those of
 *      them RESOLVING or CONNECTING; ep->nqueued the requests on ep's queue.
 *   3. A connection's fd is registered with the loop while it is open; a
 *      CLOSED connection has no fd, no timer, no task and no resolver query,
 *      and waits on the client's dead list, freed by a deferred task after
 *      every callback that could hold it has returned.
 *   4. A request's timer is armed from httpc_send() until it is DONE.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "httpc.h"
#include "../kernel/log.h"

#define DEF_MAX_CONNS 8
#define DEF_MAX_QUEUED 4096
#define DEF_IDLE_MS 10000
#define DEF_CONNECT_MS 10000
#define DEF_REQUEST_MS 30000
#define DEF_MAX_BODY (16u * 1024 * 1024)
#define COALESCE_BODY 8192	/* bodies this small travel in the head's buffer */
#define READS_PER_PUMP 64
#define DIRECT_READ_MAX ((size_t)256 << 10)	/* a read into a body: a pump moves 16 MiB at most */
#define HOSTVAL_MAX (RESOLVE_MAX_NAME + 16)

enum { C_RESOLVING, C_CONNECTING, C_IDLE, C_ACTIVE, C_CLOSED };
enum { R_QUEUED, R_ACTIVE, R_DONE, R_CALLING };

struct hc_tcp {
	int fd;
	int want_write;
};

struct hc_conn {
	struct hc_endpoint *ep;
	struct hc_conn *prev, *next;	/* ep->conns */
	struct hc_conn *next_dead;
	int state;
	int fd;
	int registered;
	unsigned events;		/* loop interest while registered */
	void *t;
	const struct http_transport_ops *ops;
	struct hc_tcp tcp;
	struct httpc_req *req;
	uint64_t nresp;			/* complete responses on this connection */
	struct loop_timer timer;	/* connect deadline, then idle timeout */
	struct loop_task pump;		/* start sending a request just assigned */
	struct loop_timer more;		/* more to read than one pump took: next turn */
	struct resolve_query rq;
	struct resolve_addrs addrs;
	size_t next_addr;
	int last_err;
};

struct hc_endpoint {
	struct httpc *c;
	struct hc_endpoint *next;
	int tls;
	uint16_t port;
	char host[RESOLVE_MAX_NAME + 3];	/* as given, brackets and all */
	char sni[RESOLVE_MAX_NAME + 1];		/* without brackets */
	char hostval[HOSTVAL_MAX];
	struct hc_conn *conns;
	int nconns, nsetup;
	struct httpc_req *qhead, *qtail;
	int nqueued;
	struct loop_task kick;
};

struct httpc_req {
	struct httpc *c;
	struct hc_endpoint *ep;
	struct hc_conn *conn;
	struct httpc_req *prev, *next;	/* ep queue or done list */
	int state;
	struct sl_wr head;		/* request head (and a small body) */
	const uint8_t *body;		/* borrowed */
	size_t body_len;
	size_t sent;			/* of head.len + body_len */
	struct http_parser parser;
	struct http_response resp;
	int err;
	httpc_fn fn;
	void *arg;
	struct loop_timer timer;
	uint64_t timeout_ms;
	int idempotent, retried;
	char method[16];		/* for log lines */
};

struct httpc {
	struct loop *l;
	struct httpc_config cfg;
	struct resolver *res;
	int own_res;
	int closing;
	struct hc_endpoint *eps;
	struct httpc_req *done_head, *done_tail;
	struct loop_task complete;
	struct hc_conn *dead;
	struct loop_task reap;
	struct httpc_stats stats;
	uint8_t rbuf[16384];
};

/* ---- the plain TCP transport ---- */

static ssize_t tcp_read(void *t, void *buf, size_t n)
{
	struct hc_tcp *s = t;

	for (;;) {
		ssize_t r = recv(s->fd, buf, n, 0);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static ssize_t tcp_write(void *t, const void *buf, size_t n)
{
	struct hc_tcp *s = t;

	for (;;) {
		ssize_t r = send(s->fd, buf, n, MSG_NOSIGNAL);

		if (r >= 0) {
			s->want_write = 0;
			return r;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->want_write = 1;
			return -EAGAIN;
		}
		return -errno;
	}
}

static unsigned tcp_events(void *t)
{
	struct hc_tcp *s = t;

	return LOOP_READ | (s->want_write ? LOOP_WRITE : 0);
}

static void tcp_close(void *t)
{
}

static const struct http_transport_ops tcp_ops = {
	.read = tcp_read,
	.write = tcp_write,
	.events = tcp_events,
	.close = tcp_close,
};

/* ---- small helpers ---- */

int httpc_host_value(char *buf, size_t n, int tls, const char *host, uint16_t port)
{
	int bracket = strchr(host, ':') != NULL && host[0] != '[';
	uint16_t def = tls ? 443 : 80;
	int w;

	if (port == 0 || port == def)
		w = snprintf(buf, n, "%s%s%s", bracket ? "[" : "", host, bracket ? "]" : "");
	else
		w = snprintf(buf, n, "%s%s%s:%u", bracket ? "[" : "", host, bracket ? "]" : "",
			     (unsigned)port);
	return w < 0 || (size_t)w >= n ? SL_E_TOOBIG : 0;
}

/* Names, IPv4 and IPv6 literals: nothing that could bend the Host field. */
static int host_ok(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > RESOLVE_MAX_NAME + 2)
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      strchr("-._:[]%", *h)))
			return 0;
	return 1;
}

static int is_idempotent(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PUT") == 0 ||
	       strcmp(m, "DELETE") == 0 || strcmp(m, "OPTIONS") == 0;
}

static const char *req_phase(const struct httpc_req *q)
{
	if (q->state == R_QUEUED)
		return "waiting for a connection";
	if (q->sent < q->head.len + q->body_len)
		return "sending the request";
	if (!http_parser_started(&q->parser))
		return "waiting for the response";
	return "reading the response";
}

static void ep_kick(struct hc_endpoint *ep)
{
	if (!ep->c->closing)
		loop_defer(ep->c->l, &ep->kick);
}

static void queue_unlink(struct httpc_req **head, struct httpc_req **tail, struct httpc_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		*head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		*tail = q->prev;
	q->prev = q->next = NULL;
}

static void queue_push(struct httpc_req **head, struct httpc_req **tail, struct httpc_req *q, int front)
{
	if (front) {
		q->prev = NULL;
		q->next = *head;
		if (*head)
			(*head)->prev = q;
		else
			*tail = q;
		*head = q;
	} else {
		q->next = NULL;
		q->prev = *tail;
		if (*tail)
			(*tail)->next = q;
		else
			*head = q;
		*tail = q;
	}
}

/* ---- requests ---- */

static void req_free(struct httpc_req *q)
{
	free(q->resp.body);
	http_parser_free(&q->parser);
	wr_free(&q->head);
	free(q);
}

/* Finish q with err (0: the parser holds a whole response); its callback follows. */
static void req_complete(struct httpc_req *q, int err)
{
	struct httpc *c = q->c;
	int rc;

	loop_timer_cancel(c->l, &q->timer);
	if (q->state == R_QUEUED) {
		queue_unlink(&q->ep->qhead, &q->ep->qtail, q);
		q->ep->nqueued--;
	}
	if (q->conn) {
		q->conn->req = NULL;
		q->conn = NULL;
	}
	if (err == 0) {
		rc = http_parser_response(&q->parser, &q->resp);
		if (rc != 0)
			err = rc;
	}
	q->err = err;
	if (err == 0)
		c->stats.responses++;
	else
		c->stats.failures++;
	q->state = R_DONE;
	queue_push(&c->done_head, &c->done_tail, q, 0);
	loop_defer(c->l, &c->complete);
}

static void run_callbacks(struct httpc *c)
{
	struct httpc_req *q;

	while ((q = c->done_head) != NULL) {
		queue_unlink(&c->done_head, &c->done_tail, q);
		q->state = R_CALLING;
		q->fn(q->arg, q->err, q->err ? NULL : &q->resp);
		req_free(q);
	}
}

static void complete_task(struct loop *l, void *arg)
{
	run_callbacks(arg);
}

/* ---- connections ---- */

static void conn_io(struct loop *l, int fd, unsigned events, void *arg);
static void pump_task(struct loop *l, void *arg);
static void more_timer(struct loop *l, void *arg);
static void conn_connect(struct hc_conn *k);

static void reap_task(struct loop *l, void *arg)
{
	struct httpc *c = arg;

	while (c->dead) {
		struct hc_conn *k = c->dead;

		c->dead = k->next_dead;
		free(k);
	}
}

static void conn_close(struct hc_conn *k)
{
	struct hc_endpoint *ep = k->ep;
	struct httpc *c = ep->c;

	if (k->state == C_CLOSED)
		return;
	SL_ASSERT(k->req == NULL);
	if (k->state == C_RESOLVING)
		resolve_cancel(c->res, &k->rq);
	if (k->state == C_RESOLVING || k->state == C_CONNECTING)
		ep->nsetup--;
	k->state = C_CLOSED;
	loop_timer_cancel(c->l, &k->timer);
	loop_task_cancel(c->l, &k->pump);
	loop_timer_cancel(c->l, &k->more);
	if (k->fd != -1) {
		if (k->registered)
			loop_del(c->l, k->fd);
		if (k->t && k->ops)
			k->ops->close(k->t);
		close(k->fd);
	}
	k->fd = -1;
	k->registered = 0;
	k->t = NULL;
	if (k->prev)
		k->prev->next = k->next;
	else
		ep->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	ep->nconns--;
	k->next_dead = c->dead;
	c->dead = k;
	if (!c->closing)
		loop_defer(c->l, &c->reap);
	ep_kick(ep);
}

static int retryable(const struct hc_conn *k, const struct httpc_req *q, int err)
{
	return k->nresp > 0 && q->idempotent && !q->retried && !http_parser_started(&q->parser) &&
	       (err == SL_E_CLOSED || err == -ECONNRESET || err == -EPIPE);
}

/*
 * The connection failed with err: its request (or, during setup, the request
 * at the head of the queue) learns why, and the connection closes.
 */
static void conn_error(struct hc_conn *k, int err)
{
	struct hc_endpoint *ep = k->ep;
	struct httpc *c = ep->c;
	struct httpc_req *q = k->req;

	if (q) {
		k->req = NULL;
		q->conn = NULL;
		if (retryable(k, q, err)) {
			/* The server closed a kept-alive connection as we reused it. */
			q->retried = 1;
			q->sent = 0;
			http_parser_reset(&q->parser);
			q->state = R_QUEUED;
			queue_push(&ep->qhead, &ep->qtail, q, 1);
			ep->nqueued++;
			c->stats.retries++;
		} else {
			log_warn("http", "%s to %s:%u failed %s: %s", q->method, ep->host,
				 (unsigned)ep->port, req_phase(q), sl_strerror(err));
			req_complete(q, err);
		}
	} else if (k->state == C_RESOLVING || k->state == C_CONNECTING) {
		log_warn("http", "cannot connect to %s:%u: %s", ep->host, (unsigned)ep->port,
			 sl_strerror(err));
		if (ep->qhead)
			req_complete(ep->qhead, err);
	}
	conn_close(k);
}

static int conn_set_interest(struct hc_conn *k)
{
	unsigned raw = k->ops->events(k->t), want = raw & (LOOP_READ | LOOP_WRITE);
	int rc;

	/* A transport may speak epoll's names: EPOLLIN is LOOP_READ already. */
	if (raw & EPOLLOUT)
		want |= LOOP_WRITE;

	if (!want)
		want = LOOP_READ;
	if (want == k->events)
		return 0;
	rc = loop_mod(k->ep->c->l, k->fd, want);
	if (rc == 0)
		k->events = want;
	return rc;
}

static void conn_idle(struct hc_conn *k)
{
	struct httpc *c = k->ep->c;

	k->state = C_IDLE;
	loop_timer_set(c->l, &k->timer, c->cfg.idle_timeout_ms);
	ep_kick(k->ep);
}

/* Connected: put the transport in place and offer the connection to the queue. */
static void conn_ready(struct hc_conn *k)
{
	struct hc_endpoint *ep = k->ep;
	struct httpc *c = ep->c;
	int rc;

	if (ep->tls) {
		const struct http_transport_ops *ops = NULL;

		k->t = c->cfg.tls_open ? c->cfg.tls_open(c->cfg.tls_ctx, k->fd, ep->sni, &ops) : NULL;
		if (!k->t || !ops) {
			k->t = NULL;
			conn_error(k, SL_E_TLS);
			return;
		}
		k->ops = ops;
	} else {
		k->tcp.fd = k->fd;
		k->tcp.want_write = 0;
		k->t = &k->tcp;
		k->ops = &tcp_ops;
	}
	if (!k->registered) {
		rc = loop_add(c->l, k->fd, LOOP_READ, conn_io, k);
		if (rc != 0) {
			conn_error(k, rc);
			return;
		}
		k->registered = 1;
		k->events = LOOP_READ;
	}
	rc = conn_set_interest(k);
	if (rc != 0) {
		conn_error(k, rc);
		return;
	}
	loop_timer_cancel(c->l, &k->timer);
	ep->nsetup--;
	c->stats.connects++;
	conn_idle(k);
}

static void on_resolved(void *arg, int err, const struct resolve_addrs *addrs)
{
	struct hc_conn *k = arg;

	if (err != 0) {
		conn_error(k, err);
		return;
	}
	k->addrs = *addrs;
	k->next_addr = 0;
	conn_connect(k);
}

/* Try the addresses from next_addr on; the last failure fails the connection. */
static void conn_connect(struct hc_conn *k)
{
	struct httpc *c = k->ep->c;
	int one = 1, rc;

	k->state = C_CONNECTING;
	while (k->next_addr < k->addrs.n) {
		size_t i = k->next_addr++;
		const struct sockaddr *sa = (const struct sockaddr *)&k->addrs.addr[i];
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd == -1) {
			k->last_err = -errno;
			continue;
		}
		/* Head and body leave in separate writes: Nagle would hold the second. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, sa, k->addrs.len[i]) == 0) {
			k->fd = fd;
			conn_ready(k);
			return;
		}
		if (errno != EINPROGRESS) {
			k->last_err = -errno;
			close(fd);
			continue;
		}
		rc = loop_add(c->l, fd, LOOP_WRITE, conn_io, k);
		if (rc != 0) {
			k->last_err = rc;
			close(fd);
			continue;
		}
		k->fd = fd;
		k->registered = 1;
		k->events = LOOP_WRITE;
		return;
	}
	conn_error(k, k->last_err ? k->last_err : SL_E_NOTFOUND);
}

static void conn_connected(struct hc_conn *k)
{
	struct httpc *c = k->ep->c;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	if (soerr == 0) {
		conn_ready(k);
		return;
	}
	loop_del(c->l, k->fd);
	close(k->fd);
	k->fd = -1;
	k->registered = 0;
	k->last_err = -soerr;
	conn_connect(k);
}

static void conn_timer(struct loop *l, void *arg)
{
	struct hc_conn *k = arg;

	if (k->state == C_IDLE) {
		k->ep->c->stats.idle_closes++;
		conn_close(k);
	} else if (k->state == C_RESOLVING || k->state == C_CONNECTING) {
		conn_error(k, SL_E_TIMEOUT);
	}
}

static int conn_open(struct hc_endpoint *ep)
{
	struct httpc *c = ep->c;
	struct hc_conn *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return SL_E_NOMEM;
	k->ep = ep;
	k->fd = -1;
	k->state = C_RESOLVING;
	loop_timer_init(&k->timer, conn_timer, k);
	loop_task_init(&k->pump, pump_task, k);
	loop_timer_init(&k->more, more_timer, k);
	k->next = ep->conns;
	if (ep->conns)
		ep->conns->prev = k;
	ep->conns = k;
	ep->nconns++;
	ep->nsetup++;
	loop_timer_set(c->l, &k->timer, c->cfg.connect_timeout_ms);
	rc = resolve_start(c->res, &k->rq, ep->host, ep->port, on_resolved, k, &k->addrs);
	if (rc == 1)
		conn_connect(k);
	else if (rc < 0)
		conn_error(k, rc);
	return 0;
}

/* ---- moving bytes ---- */

static int conn_send(struct hc_conn *k)
{
	struct httpc_req *q = k->req;
	size_t total = q->head.len + q->body_len;

	while (q->sent < total) {
		const uint8_t *p;
		size_t n;
		ssize_t w;

		if (q->sent < q->head.len) {
			p = q->head.p + q->sent;
			n = q->head.len - q->sent;
		} else {
			p = q->body + (q->sent - q->head.len);
			n = total - q->sent;
		}
		w = k->ops->write(k->t, p, n);
		if (w == -EAGAIN)
			return 0;
		if (w < 0)
			return (int)w;
		if (w == 0 || (size_t)w > n)
			return -EIO;
		q->sent += (size_t)w;
	}
	return 0;
}

/* A whole response for k's request; leftover: bytes followed it. */
static void conn_response(struct hc_conn *k, int leftover)
{
	struct httpc_req *q = k->req;
	int keep = q->parser.keep_alive && !leftover && q->sent == q->head.len + q->body_len;

	k->nresp++;
	req_complete(q, 0);
	if (keep)
		conn_idle(k);
	else
		conn_close(k);
}

/*
 * Read until -EAGAIN (or READS_PER_PUMP reads, then carry on later).
 * Returns 0 or an error for conn_error; may finish the request and leave k
 * IDLE or CLOSED.
 */
static int conn_recv(struct hc_conn *k)
{
	struct httpc *c = k->ep->c;
	int i, rc;

	for (i = 0; i < READS_PER_PUMP; i++) {
		/*
		 * The rest of a large body is read straight into the body's
		 * buffer, in reads as large as it needs: the body is copied
		 * once, by the kernel, not again out of rbuf.
		 */
		size_t room = 0;
		uint8_t *dst = k->state == C_ACTIVE ? http_parser_body_room(&k->req->parser, &room) : NULL;
		int direct = dst && room >= sizeof(c->rbuf);
		size_t want = !direct ? sizeof(c->rbuf) : room < DIRECT_READ_MAX ? room : DIRECT_READ_MAX;
		ssize_t n = k->ops->read(k->t, direct ? dst : c->rbuf, want);
		size_t used;

		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		if ((size_t)n > want)
			return -EIO;
		if (k->state != C_ACTIVE)
			return n == 0 ? SL_E_CLOSED : SL_E_PROTO;	/* idle: closed, or unasked bytes */
		if (n == 0) {
			rc = http_parser_eof(&k->req->parser);
			if (rc != HTTP_DONE)
				return rc;
			conn_response(k, 0);
			return 0;
		}
		if (direct) {
			rc = http_parser_fed_body(&k->req->parser, (size_t)n);
			if (rc < 0)
				return rc;
			if (rc == HTTP_DONE) {
				conn_response(k, 0);
				return 0;
			}
			continue;
		}
		rc = http_parser_feed(&k->req->parser, c->rbuf, (size_t)n, &used);
		if (rc < 0)
			return rc;
		if (rc == HTTP_DONE) {
			conn_response(k, used < (size_t)n);
			return 0;
		}
	}
	/*
	 * Plain sockets are level-triggered: epoll reports the rest next turn.
	 * Another transport may hold decrypted bytes epoll cannot see: come
	 * back next turn by a timer, not a deferred task (those run within
	 * this turn, so a fast TLS download would keep the loop to itself).
	 */
	if (k->ops != &tcp_ops)
		loop_timer_set(c->l, &k->more, 0);
	return 0;
}

static void conn_pump(struct hc_conn *k)
{
	int send_rc = 0, rc;

	if (k->state == C_ACTIVE)
		send_rc = conn_send(k);
	/* Read even when sending failed: the server may have answered first. */
	rc = conn_recv(k);
	if (rc == 0 && k->state == C_ACTIVE)
		rc = send_rc;
	if (rc != 0 && k->state != C_CLOSED) {
		if (k->state == C_IDLE && (rc == SL_E_CLOSED || rc == -ECONNRESET))
			conn_close(k);	/* the server let an idle connection go */
		else
			conn_error(k, rc);
		return;
	}
	if (k->state == C_IDLE || k->state == C_ACTIVE) {
		rc = conn_set_interest(k);
		if (rc != 0)
			conn_error(k, rc);
	}
}

static void more_timer(struct loop *l, void *arg)
{
	struct hc_conn *k = arg;

	if (k->state == C_IDLE || k->state == C_ACTIVE)
		conn_pump(k);
}

static void pump_task(struct loop *l, void *arg)
{
	struct hc_conn *k = arg;

	if (k->state == C_IDLE || k->state == C_ACTIVE)
		conn_pump(k);
}

static void conn_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct hc_conn *k = arg;

	if (k->state == C_CONNECTING)
		conn_connected(k);
	else if (k->state == C_IDLE || k->state == C_ACTIVE)
		conn_pump(k);
}

/* ---- endpoints ---- */

static void conn_assign(struct hc_conn *k, struct httpc_req *q)
{
	struct httpc *c = k->ep->c;

	queue_unlink(&k->ep->qhead, &k->ep->qtail, q);
	k->ep->nqueued--;
	if (k->nresp > 0)
		c->stats.reuses++;
	loop_timer_cancel(c->l, &k->timer);
	k->state = C_ACTIVE;
	k->req = q;
	q->conn = k;
	q->state = R_ACTIVE;
	loop_defer(c->l, &k->pump);
}

/* Give queued requests to idle connections; open connections for the rest. */
static void ep_dispatch(struct loop *l, void *arg)
{
	struct hc_endpoint *ep = arg;
	struct httpc *c = ep->c;

	while (ep->qhead && !c->closing) {
		struct hc_conn *k;

		for (k = ep->conns; k && k->state != C_IDLE; k = k->next)
			;
		if (k) {
			conn_assign(k, ep->qhead);
			continue;
		}
		if (ep->nconns >= c->cfg.max_conns_per_endpoint || ep->nsetup >= ep->nqueued)
			break;
		if (conn_open(ep) != 0) {
			req_complete(ep->qhead, SL_E_NOMEM);
			continue;
		}
	}
}

static struct hc_endpoint *ep_get(struct httpc *c, int tls, const char *host, uint16_t port)
{
	struct hc_endpoint *ep;
	size_t n = strlen(host);

	for (ep = c->eps; ep; ep = ep->next)
		if (ep->tls == tls && ep->port == port && strcasecmp(ep->host, host) == 0)
			return ep;
	if (n == 0 || n >= sizeof(ep->host))
		return NULL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->c = c;
	ep->tls = tls;
	ep->port = port;
	memcpy(ep->host, host, n + 1);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(ep->sni, host + 1, n - 2);
		ep->sni[n - 2] = '\0';
	} else {
		memcpy(ep->sni, host, n + 1);
	}
	if (httpc_host_value(ep->hostval, sizeof(ep->hostval), tls, ep->sni, port) != 0) {
		free(ep);
		return NULL;
	}
	loop_task_init(&ep->kick, ep_dispatch, ep);
	ep->next = c->eps;
	c->eps = ep;
	return ep;
}

/* ---- the public face ---- */

static void req_timeout(struct loop *l, void *arg)
{
	struct httpc_req *q = arg;
	struct hc_endpoint *ep = q->ep;
	struct hc_conn *k = q->conn;

	q->c->stats.timeouts++;
	log_warn("http", "%s to %s:%u timed out after %llu ms %s", q->method, ep->host,
		 (unsigned)ep->port, (unsigned long long)q->timeout_ms, req_phase(q));
	req_complete(q, SL_E_TIMEOUT);
	if (k)
		conn_close(k);
}

struct httpc *httpc_new(struct loop *l, const struct httpc_config *cfg)
{
	struct httpc *c = calloc(1, sizeof(*c));

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	if (cfg)
		c->cfg = *cfg;
	if (c->cfg.max_conns_per_endpoint <= 0)
		c->cfg.max_conns_per_endpoint = DEF_MAX_CONNS;
	if (c->cfg.max_queued_per_endpoint <= 0)
		c->cfg.max_queued_per_endpoint = DEF_MAX_QUEUED;
	if (!c->cfg.idle_timeout_ms)
		c->cfg.idle_timeout_ms = DEF_IDLE_MS;
	if (!c->cfg.connect_timeout_ms)
		c->cfg.connect_timeout_ms = DEF_CONNECT_MS;
	if (!c->cfg.request_timeout_ms)
		c->cfg.request_timeout_ms = DEF_REQUEST_MS;
	if (!c->cfg.max_header_bytes)
		c->cfg.max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
	if (!c->cfg.max_headers)
		c->cfg.max_headers = HTTP_DEFAULT_MAX_HEADERS;
	if (!c->cfg.max_body)
		c->cfg.max_body = DEF_MAX_BODY;
	c->l = l;
	c->res = c->cfg.resolver;
	if (!c->res) {
		c->res = resolver_new(l, NULL);
		if (!c->res) {
			free(c);
			errno = ENOMEM;
			return NULL;
		}
		c->own_res = 1;
	}
	loop_task_init(&c->complete, complete_task, c);
	loop_task_init(&c->reap, reap_task, c);
	return c;
}

void httpc_free(struct httpc *c)
{
	struct hc_endpoint *ep;

	if (!c)
		return;
	c->closing = 1;
	for (ep = c->eps; ep; ep = ep->next) {
		while (ep->conns) {
			struct hc_conn *k = ep->conns;

			if (k->req)
				req_complete(k->req, SL_E_CLOSED);
			conn_close(k);
		}
		while (ep->qhead)
			req_complete(ep->qhead, SL_E_CLOSED);
		loop_task_cancel(c->l, &ep->kick);
	}
	run_callbacks(c);
	loop_task_cancel(c->l, &c->complete);
	loop_task_cancel(c->l, &c->reap);
	reap_task(c->l, c);
	while (c->eps) {
		ep = c->eps;
		c->eps = ep->next;
		free(ep);
	}
	if (c->own_res)
		resolver_free(c->res);
	free(c);
}

int httpc_send(struct httpc *c, const struct httpc_request *req, httpc_fn fn, void *arg,
	       struct httpc_req **handle)
{
	struct http_limits lim;
	struct http_request hr;
	struct hc_endpoint *ep;
	struct httpc_req *q;
	uint16_t port;
	int rc;

	if (c->closing)
		return SL_E_CLOSED;
	if (!fn || !req->host || !req->method || (req->body_len && !req->body) || !host_ok(req->host))
		return SL_E_INVALID;
	if (req->tls && !c->cfg.tls_open)
		return SL_E_TLS;
	port = req->port ? req->port : (req->tls ? 443 : 80);
	ep = ep_get(c, req->tls ? 1 : 0, req->host, port);
	if (!ep)
		return SL_E_NOMEM;
	if (ep->nqueued >= c->cfg.max_queued_per_endpoint)
		return SL_E_FULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return SL_E_NOMEM;
	wr_init(&q->head, 0);
	memset(&hr, 0, sizeof(hr));
	hr.method = req->method;
	hr.target = req->target;
	hr.host = ep->hostval;
	hr.headers = req->headers;
	hr.nheaders = req->nheaders;
	hr.body_len = req->body_len;
	rc = http_write_head(&q->head, &hr);
	if (rc == 0 && req->body_len > 0 && req->body_len <= COALESCE_BODY)
		rc = wr_bytes(&q->head, req->body, req->body_len);
	else if (rc == 0 && req->body_len > 0) {
		q->body = req->body;
		q->body_len = req->body_len;
	}
	if (rc != 0) {
		wr_free(&q->head);
		free(q);
		return rc;
	}
	lim.max_header_bytes = c->cfg.max_header_bytes;
	lim.max_headers = c->cfg.max_headers;
	lim.max_body = req->max_body ? req->max_body : c->cfg.max_body;
	http_parser_init(&q->parser, &lim, strcmp(req->method, "HEAD") == 0);
	q->c = c;
	q->ep = ep;
	q->fn = fn;
	q->arg = arg;
	q->idempotent = is_idempotent(req->method);
	snprintf(q->method, sizeof(q->method), "%s", req->method);
	q->timeout_ms = req->timeout_ms ? req->timeout_ms : c->cfg.request_timeout_ms;
	loop_timer_init(&q->timer, req_timeout, q);
	loop_timer_set(c->l, &q->timer, q->timeout_ms);
	q->state = R_QUEUED;
	queue_push(&ep->qhead, &ep->qtail, q, 0);
	ep->nqueued++;
	c->stats.requests++;
	ep_kick(ep);
	if (handle)
		*handle = q;
	return 0;
}

void httpc_cancel(struct httpc *c, struct httpc_req *q)
{
	struct hc_conn *k;

	if (!q)
		return;
	switch (q->state) {
	case R_QUEUED:
		queue_unlink(&q->ep->qhead, &q->ep->qtail, q);
		q->ep->nqueued--;
		break;
	case R_ACTIVE:
		k = q->conn;
		k->req = NULL;
		q->conn = NULL;
		conn_close(k);
		break;
	case R_DONE:
		queue_unlink(&c->done_head, &c->done_tail, q);
		break;
	default:
		return;		/* inside its own callback */
	}
	loop_timer_cancel(c->l, &q->timer);
	c->stats.cancels++;
	req_free(q);
}

void httpc_get_stats(const struct httpc *c, struct httpc_stats *out)
{
	const struct hc_endpoint *ep;
	const struct hc_conn *k;

	*out = c->stats;
	out->conns = out->idle = out->queued = 0;
	for (ep = c->eps; ep; ep = ep->next) {
		out->conns += ep->nconns;
		out->queued += ep->nqueued;
		for (k = ep->conns; k; k = k->next)
			out->idle += k->state == C_IDLE;
	}
}
