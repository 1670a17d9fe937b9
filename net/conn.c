/*
 * conn.c - listener, connections, framing, in-order replies, backpressure.
 *
 * Each connection keeps a FIFO of requests.  A request is PENDING from the
 * moment its frame is complete until the upper layer calls done or drop;
 * then it is DONE (a reply to send) or DROPPED (nothing to send).  The
 * flusher walks the FIFO from the head, writes the replies of DONE requests
 * with writev, frees them, and stops at the first PENDING one: that is what
 * keeps replies in request order.
 *
 * Reading: the server owns one staging buffer (one thread, one loop), read()
 * fills it, and the bytes are carved into the current frame's header or body
 * at once, so nothing is left in the staging buffer between events.  The
 * frame size is checked before the body is allocated.  When most of a large
 * frame is still to come, read() goes straight into the frame instead, and
 * frame buffers come from the pool of large blocks (kernel/pool.h).  Limits are checked
 * before each read(), so one read's worth of small frames (at most the
 * staging size) may pass max_inflight: the overshoot is bounded.
 *
 * Lifetimes: a closing connection is unhooked from the loop and its socket
 * closed at once, its pending requests cancelled and freed; the struct conn
 * itself is freed from a deferred task, after every callback that might still
 * hold it has returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "conn.h"
#include "../kernel/log.h"
#include "../kernel/pool.h"

enum { REQ_PENDING, REQ_DONE, REQ_DROPPED };

#define STAGE_SIZE (64 * 1024)
#define MAX_IOV 64

struct conn {
	int fd;
	struct server *srv;
	struct conn *prev, *next;	/* server's list */
	struct conn_req *head, *tail;	/* in request order */
	int ninflight;			/* requests not yet freed */
	size_t unsent;			/* reply bytes of DONE requests not yet written */
	size_t head_off;		/* bytes of head's reply already written */
	uint8_t hdr[4];
	size_t hdr_got;
	struct conn_req *cur;		/* frame being read, not yet queued */
	size_t cur_got;
	unsigned events;		/* current loop interest */
	int write_blocked;
	int closing;
	struct loop_task flush;
	struct loop_task reap;
	char peer[64];
};

struct server {
	struct loop *l;
	int fd;
	uint16_t port;
	struct net_limits lim;
	struct net_ops ops;
	void *arg;
	struct conn *conns;
	int nconns;
	int accepting;
	struct loop_timer retry_accept;
	uint8_t stage[STAGE_SIZE];
};

static void conn_io(struct loop *l, int fd, unsigned events, void *arg);
static void conn_flush_task(struct loop *l, void *arg);

static void req_free(struct conn_req *req)
{
	pool_put(req->frame, req->frame_cap);
	req->frame = NULL;
	wr_free(&req->out);
	free(req);
}

static void conn_reap(struct loop *l, void *arg)
{
	free(arg);
}

const char *conn_peer(const struct conn *c)
{
	return c->peer;
}


static void update_events(struct conn *c)
{
	const struct net_limits *lim = &c->srv->lim;
	unsigned want = 0;

	if (c->closing)
		return;
	if (c->ninflight < lim->max_inflight && c->unsent <= lim->max_unsent)
		want |= LOOP_READ;
	if (c->write_blocked)
		want |= LOOP_WRITE;
	if (want != c->events) {
		if (loop_mod(c->srv->l, c->fd, want) == 0)
			c->events = want;
		else
			conn_close(c, "cannot change poll interest");
	}
}

void conn_close(struct conn *c, const char *why)
{
	struct server *srv = c->srv;
	struct conn_req *req, *nx;

	if (c->closing)
		return;
	c->closing = 1;
	if (why)
		log_warn("net", "closing connection from %s: %s", c->peer, why);
	else
		log_debug("net", "connection from %s closed", c->peer);
	loop_del(srv->l, c->fd);
	close(c->fd);
	c->fd = -1;
	loop_task_cancel(srv->l, &c->flush);
	/*
	 * Unhook the whole queue before cancelling: a cancel callback may end
	 * other work of the upper layer but must find nothing of ours to touch.
	 */
	req = c->head;
	c->head = c->tail = NULL;
	for (; req; req = nx) {
		nx = req->next;
		if (req->state == REQ_PENDING && req->cancel)
			req->cancel(req);
		req_free(req);
	}
	if (c->cur)
		req_free(c->cur);
	c->cur = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	loop_task_init(&c->reap, conn_reap, c);
	loop_defer(srv->l, &c->reap);
}

static void finish(struct conn_req *req, int state)
{
	struct conn *c = req->c;

	SL_ASSERT(req->state == REQ_PENDING);
	req->state = state;
	if (state == REQ_DONE) {
		if (req->out.err) {
			conn_close(c, "reply could not be built");
			return;
		}
		wr_patch_u32(&req->out, 0, (uint32_t)(req->out.len - 4));
		c->unsent += req->out.len;
	}
	loop_defer(c->srv->l, &c->flush);
}

void conn_req_done(struct conn_req *req)
{
	finish(req, REQ_DONE);
}

void conn_req_drop(struct conn_req *req)
{
	finish(req, REQ_DROPPED);
}

/* Write finished replies from the head; stop at a pending request or EAGAIN. */
static void conn_flush(struct conn *c)
{
	while (c->head && c->head->state != REQ_PENDING && !c->closing) {
		struct iovec iov[MAX_IOV];
		int n = 0;
		size_t off = c->head_off;

		for (struct conn_req *r = c->head; r && r->state != REQ_PENDING && n < MAX_IOV; r = r->next) {
			if (r->state == REQ_DONE && r->out.len > off) {
				iov[n].iov_base = r->out.p + off;
				iov[n].iov_len = r->out.len - off;
				n++;
			}
			off = 0;
		}
		size_t wrote = 0;
		if (n > 0) {
			ssize_t w = writev(c->fd, iov, n);
			if (w == -1) {
				if (errno == EAGAIN || errno == EINTR) {
					c->write_blocked = 1;
					break;
				}
				char why[96];
				snprintf(why, sizeof(why), "write failed: %s", strerror(errno));
				conn_close(c, errno == EPIPE || errno == ECONNRESET ? NULL : why);
				return;
			}
			wrote = (size_t)w;
		}
		/* Retire everything the write covered, plus dropped requests. */
		while (c->head && c->head->state != REQ_PENDING) {
			struct conn_req *r = c->head;
			size_t left = r->state == REQ_DONE ? r->out.len - c->head_off : 0;
			if (wrote < left) {
				c->head_off += wrote;
				wrote = 0;
				break;
			}
			wrote -= left;
			if (r->state == REQ_DONE)
				c->unsent -= r->out.len;
			c->head_off = 0;
			c->head = r->next;
			if (!c->head)
				c->tail = NULL;
			c->ninflight--;
			req_free(r);
		}
		if (n > 0 && c->head && c->head->state == REQ_DONE && c->head_off > 0) {
			c->write_blocked = 1;	/* a short write: wait for POLLOUT */
			break;
		}
		c->write_blocked = 0;
	}
	update_events(c);
}

static void conn_flush_task(struct loop *l, void *arg)
{
	conn_flush(arg);
}

static void dispatch(struct conn *c)
{
	struct conn_req *req = c->cur;

	c->cur = NULL;
	c->hdr_got = 0;
	c->cur_got = 0;
	req->state = REQ_PENDING;
	if (c->tail)
		c->tail->next = req;
	else
		c->head = req;
	c->tail = req;
	c->ninflight++;
	c->srv->ops.on_request(req, c->srv->arg);
}

/* The current frame is whole: hand it up.  -1 once the connection closed. */
static int frame_complete(struct conn *c)
{
	size_t at;

	if (wr_reserve(&c->cur->out, 4, &at) != 0) {
		conn_close(c, "out of memory for a reply");
		return -1;
	}
	dispatch(c);
	return c->closing ? -1 : 0;
}

/* Carve n staged bytes into frames; returns -1 once the connection closed. */
static int consume(struct conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (c->hdr_got < 4) {
			size_t k = 4 - c->hdr_got < n ? 4 - c->hdr_got : n;
			memcpy(c->hdr + c->hdr_got, p, k);
			c->hdr_got += k;
			p += k;
			n -= k;
			if (c->hdr_got < 4)
				return 0;
			int32_t size = (int32_t)sl_load_be32(c->hdr);
			char why[96];
			if (size < 0) {
				snprintf(why, sizeof(why), "negative frame size %d", size);
				conn_close(c, why);
				return -1;
			}
			if ((size_t)size > c->srv->lim.max_frame) {
				snprintf(why, sizeof(why),
					 "frame of %d bytes exceeds socket.request.max.bytes (%zu)",
					 size, c->srv->lim.max_frame);
				conn_close(c, why);
				return -1;
			}
			struct conn_req *req = calloc(1, sizeof(*req));
			if (req)
				req->frame = pool_get(size ? (size_t)size : 1, &req->frame_cap);
			if (!req || !req->frame) {
				free(req);
				conn_close(c, "out of memory for a request");
				return -1;
			}
			req->c = c;
			req->len = (size_t)size;
			wr_init(&req->out, 0);
			c->cur = req;
			c->cur_got = 0;
		}
		size_t want = c->cur->len - c->cur_got;
		size_t k = want < n ? want : n;
		memcpy(c->cur->frame + c->cur_got, p, k);
		c->cur_got += k;
		p += k;
		n -= k;
		if (c->cur_got == c->cur->len && frame_complete(c) == -1)
			return -1;
	}
	return 0;
}

static void conn_read(struct conn *c)
{
	struct server *srv = c->srv;
	const struct net_limits *lim = &srv->lim;

	/* A bounded number of reads per event keeps one client from starving others. */
	for (int i = 0; i < 16 && !c->closing; i++) {
		if (c->ninflight >= lim->max_inflight || c->unsent > lim->max_unsent)
			break;
		/*
		 * The rest of a large frame goes straight into it: staging it
		 * first would copy every produced byte once more.
		 */
		int direct = c->cur && c->cur->len - c->cur_got >= sizeof(srv->stage) / 2;
		uint8_t *dst = direct ? c->cur->frame + c->cur_got : srv->stage;
		size_t room = direct ? c->cur->len - c->cur_got : sizeof(srv->stage);
		ssize_t n = read(c->fd, dst, room);
		if (n == 0) {
			conn_close(c, c->hdr_got || c->cur ? "peer closed in the middle of a frame" : NULL);
			return;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			char why[96];
			snprintf(why, sizeof(why), "read failed: %s", strerror(errno));
			conn_close(c, errno == ECONNRESET ? NULL : why);
			return;
		}
		if (direct) {
			c->cur_got += (size_t)n;
			if (c->cur_got == c->cur->len && frame_complete(c) == -1)
				return;
		} else if (consume(c, srv->stage, (size_t)n) == -1) {
			return;
		}
		if ((size_t)n < room)
			break;
	}
	update_events(c);
}

static void conn_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct conn *c = arg;

	if (c->closing)
		return;
	if ((events & LOOP_ERROR) && !(c->events & LOOP_READ)) {
		/*
		 * Hang-up or socket error while reading is paused by backpressure:
		 * nothing more can be exchanged, and a level-triggered error would
		 * otherwise fire forever.  When reading is on, the read below sees
		 * the end (after any bytes the peer sent before it) and closes.
		 */
		conn_close(c, NULL);
		return;
	}
	if (events & LOOP_WRITE) {
		c->write_blocked = 0;
		conn_flush(c);
	}
	if (!c->closing && (events & (LOOP_READ | LOOP_ERROR)))
		conn_read(c);
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	}
	snprintf(out, n, "%s:%u", host, port);
}

static void server_accept(struct loop *l, int fd, unsigned events, void *arg);

static void retry_accept(struct loop *l, void *arg)
{
	struct server *srv = arg;

	if (srv->accepting && loop_add(l, srv->fd, LOOP_READ, server_accept, srv) != 0)
		log_error("net", "cannot resume accepting connections");
}

static void server_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	struct server *srv = arg;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* Out of descriptors: pause accepting rather than spin on a ready listener. */
			log_error("net", "accept failed: %s; pausing accepts for 100 ms", strerror(errno));
			loop_del(l, fd);
			loop_timer_set(l, &srv->retry_accept, 100);
			return;
		}
		char peer[64];
		format_peer(&ss, peer, sizeof(peer));
		if (srv->nconns >= srv->lim.max_connections) {
			log_warn("net", "refusing connection from %s: max.connections (%d) reached",
				 peer, srv->lim.max_connections);
			close(cfd);
			continue;
		}
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			log_error("net", "out of memory accepting %s", peer);
			close(cfd);
			continue;
		}
		c->fd = cfd;
		c->srv = srv;
		memcpy(c->peer, peer, sizeof(c->peer));
		loop_task_init(&c->flush, conn_flush_task, c);
		if (loop_add(l, cfd, LOOP_READ, conn_io, c) != 0) {
			log_error("net", "cannot watch connection from %s", peer);
			close(cfd);
			free(c);
			continue;
		}
		c->events = LOOP_READ;
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		log_debug("net", "connection from %s", peer);
	}
}

struct server *server_listen(struct loop *l, const char *host, uint16_t port,
			     const struct net_limits *lim, const struct net_ops *ops, void *arg)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	char portstr[8];
	struct server *srv = NULL;
	int fd = -1, one = 1;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	int rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &ai);
	if (rc != 0) {
		log_error("net", "cannot resolve listener host '%s': %s", host, gai_strerror(rc));
		goto fail;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_error("net", "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		log_error("net", "cannot listen on %s:%u: %s", host, port, strerror(errno));
		goto fail;
	}
	if (listen(fd, 1024) == -1) {
		log_error("net", "listen: %s", strerror(errno));
		goto fail;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		goto fail;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		goto fail;
	srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						  : ((struct sockaddr_in *)&ss)->sin_port);
	srv->l = l;
	srv->fd = fd;
	srv->lim = *lim;
	srv->ops = *ops;
	srv->arg = arg;
	srv->accepting = 1;
	loop_timer_init(&srv->retry_accept, retry_accept, srv);
	if (loop_add(l, fd, LOOP_READ, server_accept, srv) != 0)
		goto fail;
	freeaddrinfo(ai);
	return srv;
fail:
	if (ai)
		freeaddrinfo(ai);
	if (fd != -1)
		close(fd);
	free(srv);
	return NULL;
}

uint16_t server_port(const struct server *srv)
{
	return srv->port;
}

int server_connections(const struct server *srv)
{
	return srv->nconns;
}

void server_stop_accepting(struct server *srv)
{
	if (!srv->accepting)
		return;
	srv->accepting = 0;
	loop_timer_cancel(srv->l, &srv->retry_accept);
	loop_del(srv->l, srv->fd);
	close(srv->fd);
	srv->fd = -1;
}

void server_destroy(struct server *srv)
{
	if (!srv)
		return;
	server_stop_accepting(srv);
	while (srv->conns)
		conn_close(srv->conns, NULL);
	free(srv);
}
