/*
 * timds.h - a fake EC2 instance metadata service for unit tests: an HTTP
 * server on a loopback port that runs in the test's loop and behaves like
 * an instance that requires IMDSv2 (HttpTokens=required).
 *
 *   PUT /latest/api/token   needs X-aws-ec2-metadata-token-ttl-seconds (else
 *                           400); answers 200 with a new token "tok-<n>" and
 *                           the TTL it grants in the same header (fi.grant_ttl,
 *                           or what was asked); fi.token_status replaces 200.
 *   GET ...                 needs a token it issued that has not expired by
 *                           the real monotonic clock (else 401: a GET
 *                           without a token is refused, as on such an
 *                           instance); then, in this order, fi.always_401,
 *                           fi.fail_5xx (that many 500s), fi.stall (no
 *                           answer) apply; then by path:
 *     /latest/meta-data/iam/security-credentials/         fi.role, or 404 if ""
 *     /latest/meta-data/iam/security-credentials/<role>   fi.doc_status and fi.doc
 *     /latest/user-data                                   fi.user_data, or 404 if ""
 *     /big                                                100 KiB of 'x'
 *     /hold                                               no answer, ever
 *   anything else 404.
 *
 * Counters say what the client did; fi_revoke() forgets every token, as a
 * restarted service would.  Everything here is static: include it from one
 * test file.  The server trusts its client's framing (test code).
 */
#ifndef SL_TESTS_TIMDS_H
#define SL_TESTS_TIMDS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/loop.h"

#define FI_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

struct fi_conn {
	int fd;
	uint8_t *in;
	size_t len, cap;
	int closed;
	struct fi_conn *next;
};

struct fi_token {
	char tok[32];
	uint64_t expires_ms;
	int revoked;
};

struct fake_imds {
	struct loop *l;
	int lfd;
	uint16_t port;
	char endpoint[64];		/* "http://127.0.0.1:<port>" */
	struct fi_conn *conns;
	/* behaviour */
	int token_status;		/* 200 */
	const char *grant_ttl;		/* TTL header answered; NULL: the one asked */
	int always_401;
	int fail_5xx;
	int stall;
	char role[128];
	char doc[8192];
	int doc_status;			/* 200 */
	char user_data[256];
	/* what happened */
	struct fi_token toks[64];
	int ntoks;
	int puts, puts_without_ttl;
	int gets, gets_without_token, gets_bad_token;
	int role_gets, doc_gets, holds;
	char last_ttl[32];
	char last_path[256];
	char last_doc_path[256];
};

static struct fake_imds FI;

static uint64_t fi_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fi_send(struct fi_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* One send for head and body: two small writes would meet Nagle and delayed ACKs. */
static void fi_reply(struct fi_conn *c, int status, const char *extra, const char *body)
{
	size_t blen = strlen(body);
	char *msg = malloc(512 + blen);
	int n = snprintf(msg, 512, "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n",
			 status, extra ? extra : "", blen);

	memcpy(msg + n, body, blen);
	fi_send(c, msg, (size_t)n + blen);
	free(msg);
}

/* The value of header name (with its colon, lower case) in head, into out. */
static int fi_header(const char *head, const char *name, char *out, size_t n)
{
	char want[96];
	const char *p, *e;

	snprintf(want, sizeof(want), "\r\n%s", name);
	p = strcasestr(head, want);
	if (!p)
		return 0;
	p += strlen(want);
	while (*p == ' ')
		p++;
	e = strstr(p, "\r\n");
	if (!e)
		e = p + strlen(p);
	snprintf(out, n, "%.*s", (int)(e - p), p);
	return 1;
}

static __attribute__((unused)) void fi_revoke(void)
{
	int i;

	for (i = 0; i < FI.ntoks; i++)
		FI.toks[i].revoked = 1;
}

static int fi_token_valid(const char *tok)
{
	int i;

	for (i = 0; i < FI.ntoks; i++)
		if (strcmp(FI.toks[i].tok, tok) == 0)
			return !FI.toks[i].revoked && fi_now_ms() < FI.toks[i].expires_ms;
	return 0;
}

static void fi_put_token(struct fi_conn *c, const char *head)
{
	char ttl[32], extra[128];
	struct fi_token *t;
	const char *grant;

	FI.puts++;
	if (!fi_header(head, "x-aws-ec2-metadata-token-ttl-seconds:", ttl, sizeof(ttl))) {
		FI.puts_without_ttl++;
		fi_reply(c, 400, NULL, "");
		return;
	}
	snprintf(FI.last_ttl, sizeof(FI.last_ttl), "%s", ttl);
	if (FI.token_status != 200) {
		fi_reply(c, FI.token_status, NULL, "");
		return;
	}
	grant = FI.grant_ttl ? FI.grant_ttl : ttl;
	if (FI.ntoks == (int)(sizeof(FI.toks) / sizeof(FI.toks[0])))
		FI.ntoks = 0;
	t = &FI.toks[FI.ntoks++];
	snprintf(t->tok, sizeof(t->tok), "tok-%d", FI.puts);
	t->expires_ms = fi_now_ms() + (uint64_t)strtoul(grant, NULL, 10) * 1000;
	t->revoked = 0;
	snprintf(extra, sizeof(extra), "X-aws-ec2-metadata-token-ttl-seconds: %s\r\n", grant);
	fi_reply(c, 200, extra, t->tok);
}

static void fi_get(struct fi_conn *c, const char *head, const char *path)
{
	static char big[100 * 1024 + 1];
	char tok[64];

	FI.gets++;
	snprintf(FI.last_path, sizeof(FI.last_path), "%s", path);
	if (!fi_header(head, "x-aws-ec2-metadata-token:", tok, sizeof(tok))) {
		FI.gets_without_token++;
		fi_reply(c, 401, NULL, "");
		return;
	}
	if (!fi_token_valid(tok)) {
		FI.gets_bad_token++;
		fi_reply(c, 401, NULL, "");
		return;
	}
	if (FI.always_401) {
		fi_reply(c, 401, NULL, "");
		return;
	}
	if (FI.fail_5xx > 0) {
		FI.fail_5xx--;
		fi_reply(c, 500, NULL, "oops");
		return;
	}
	if (FI.stall)
		return;
	if (strcmp(path, FI_CREDS_PATH) == 0) {
		FI.role_gets++;
		if (FI.role[0])
			fi_reply(c, 200, NULL, FI.role);
		else
			fi_reply(c, 404, NULL, "");
	} else if (strncmp(path, FI_CREDS_PATH, strlen(FI_CREDS_PATH)) == 0) {
		FI.doc_gets++;
		snprintf(FI.last_doc_path, sizeof(FI.last_doc_path), "%s", path);
		fi_reply(c, FI.doc_status, NULL, FI.doc);
	} else if (strcmp(path, "/latest/user-data") == 0 && FI.user_data[0]) {
		fi_reply(c, 200, "Content-Type: application/octet-stream\r\n", FI.user_data);
	} else if (strcmp(path, "/hold") == 0) {
		FI.holds++;
	} else if (strcmp(path, "/big") == 0) {
		memset(big, 'x', sizeof(big) - 1);
		fi_reply(c, 200, NULL, big);
	} else {
		fi_reply(c, 404, NULL, "");
	}
}

static void fi_close(struct fi_conn *c)
{
	if (c->closed)
		return;
	loop_del(FI.l, c->fd);
	close(c->fd);
	c->closed = 1;
}

static void fi_process(struct fi_conn *c)
{
	for (;;) {
		uint8_t *end = c->len ? memmem(c->in, c->len, "\r\n\r\n", 4) : NULL;
		char method[16] = "", path[256] = "", cl[32];
		size_t head, blen = 0, total;

		if (!end)
			return;
		head = (size_t)(end - c->in) + 4;
		c->in[head - 1] = '\0';
		if (fi_header((char *)c->in, "content-length:", cl, sizeof(cl)))
			blen = strtoul(cl, NULL, 10);
		total = head + blen;
		if (c->len < total) {
			c->in[head - 1] = '\n';
			return;
		}
		sscanf((char *)c->in, "%15s %255s", method, path);
		if (strcmp(method, "PUT") == 0 && strcmp(path, "/latest/api/token") == 0)
			fi_put_token(c, (char *)c->in);
		else if (strcmp(method, "GET") == 0)
			fi_get(c, (char *)c->in, path);
		else
			fi_reply(c, 405, NULL, "");
		memmove(c->in, c->in + total, c->len - total);
		c->len -= total;
	}
}

static void fi_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct fi_conn *c = arg;
	ssize_t n;

	if (c->closed)
		return;
	if (c->cap - c->len < 4096) {
		c->cap = c->cap * 2 + 8192;
		c->in = realloc(c->in, c->cap);
	}
	n = recv(fd, c->in + c->len, c->cap - c->len - 1, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		fi_close(c);
		return;
	}
	if (n < 0)
		return;
	c->len += (size_t)n;
	fi_process(c);
}

static void fi_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct fi_conn *c;

	if (cfd == -1)
		return;
	c = calloc(1, sizeof(*c));
	c->fd = cfd;
	c->next = FI.conns;
	FI.conns = c;
	T_EQ(loop_add(l, cfd, LOOP_READ, fi_io, c), 0);
}

/* Start the service on l with an instance role named role and no document yet. */
static void fi_start(struct loop *l)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(&FI, 0, sizeof(FI));
	FI.l = l;
	FI.token_status = 200;
	FI.doc_status = 200;
	FI.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(FI.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(FI.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	T_EQ(listen(FI.lfd, 64), 0);
	getsockname(FI.lfd, (struct sockaddr *)&a, &alen);
	FI.port = ntohs(a.sin_port);
	snprintf(FI.endpoint, sizeof(FI.endpoint), "http://127.0.0.1:%u", (unsigned)FI.port);
	T_EQ(loop_add(l, FI.lfd, LOOP_READ, fi_accept, NULL), 0);
}

static void fi_stop(void)
{
	while (FI.conns) {
		struct fi_conn *c = FI.conns;

		FI.conns = c->next;
		fi_close(c);
		free(c->in);
		free(c);
	}
	loop_del(FI.l, FI.lfd);
	close(FI.lfd);
}

#endif
