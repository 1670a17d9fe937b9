/*
 * conn.h - the listener and its connections: length-prefixed frames in,
 * replies out, strictly in request order.
 *
 * A frame is a 4-byte big-endian size followed by that many bytes.  The size
 * is checked against max_frame before anything is allocated; a negative or
 * oversized size closes the connection with a log line naming the peer and
 * the cause.
 *
 * Each frame becomes a struct conn_req handed to the upper layer's on_request.
 * The upper layer answers when it likes, by writing the reply body into
 * req->out (after the 4 bytes net reserved for the size) and calling
 * conn_req_done(), or conn_req_drop() for "no reply" (Kafka acks=0).
 * Replies leave in request order: a finished request waits behind an earlier
 * one that is still pending (a long poll, a produce awaiting durability).
 *
 *   frame read --> on_request --> ... --> done/drop --> sent in order --> freed
 *                        \--> connection closes first --> cancel() --> freed
 *
 * Backpressure: a connection stops being read while it has max_inflight
 * requests outstanding or more than max_unsent reply bytes waiting to leave;
 * reading resumes as replies drain.
 *
 * Ownership: net owns each conn_req and its frame.  The frame stays valid and
 * writable until the request is done, dropped or cancelled.  If the
 * connection closes while a request is pending, net calls req->cancel (when
 * set) exactly once; after it returns the request is freed, so the upper
 * layer must not touch it again.  conn_req_done/drop on a request must be
 * called at most once and never after cancel.
 */
#ifndef SL_NET_CONN_H
#define SL_NET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/loop.h"

struct conn;
struct conn_req;

struct conn_req {
	struct conn *c;
	uint8_t *frame;		/* the request bytes after the size; owned by net */
	size_t len;
	size_t frame_cap;	/* the pool block's capacity */
	struct sl_wr out;	/* reply: 4 size bytes reserved, then the body */
	void (*cancel)(struct conn_req *req);
	void *ctx;		/* the upper layer's state for this request */
	struct conn_req *next;
	uint8_t state;		/* private to net */
};

struct net_ops {
	/* A frame arrived; the upper layer now answers it in its own time. */
	void (*on_request)(struct conn_req *req, void *arg);
};

struct net_limits {
	size_t max_frame;		/* socket.request.max.bytes */
	int max_connections;		/* max.connections */
	int max_inflight;		/* requests outstanding per connection */
	size_t max_unsent;		/* reply bytes waiting per connection */
};

struct server;

/*
 * Listen on host:port ("" or "0.0.0.0" = every address; port 0 = any).
 * Returns NULL and logs the cause on failure.
 */
struct server *server_listen(struct loop *l, const char *host, uint16_t port,
			     const struct net_limits *lim, const struct net_ops *ops, void *arg);
/* The port actually bound (useful with port 0). */
uint16_t server_port(const struct server *srv);
/* Stop accepting; existing connections carry on. */
void server_stop_accepting(struct server *srv);
/* Close every connection (pending requests are cancelled) and free. */
void server_destroy(struct server *srv);
int server_connections(const struct server *srv);

void conn_req_done(struct conn_req *req);
void conn_req_drop(struct conn_req *req);
/* Close req's connection after logging why; pending requests are cancelled. */
void conn_close(struct conn *c, const char *why);
/* "127.0.0.1:53412" for logs; valid as long as the connection. */
const char *conn_peer(const struct conn *c);

#endif
