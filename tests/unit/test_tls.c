/*
 * test_tls.c - TLS sessions against real servers on loopback.
 *
 * The compiled-in anchor table: plausible size, ISRG Root X1 among them,
 * and equal, anchor by anchor, to what BearSSL's own decoders make of the
 * same bundle when it is loaded as a CA file (two independent readings of
 * ca-certificates.crt: mk/gen-ta.py and br_x509_decoder).
 *
 * Sessions: the openssl command line makes, in a temporary directory, a test
 * CA, a server certificate for localhost and 127.0.0.1, one for a wrong name
 * and one from an unknown CA, and runs `openssl s_server -www` with each.
 * Through a session on a non-blocking socket, driven by a poll loop with a
 * deadline (so a hang fails instead of blocking the run): the exchange works
 * with the CA file, by name and by IP; the compiled-in anchors alone refuse
 * the test CA; the wrong name and the unknown CA are refused with their
 * BearSSL errors; insecure mode connects anyway.  In-process servers close
 * mid-handshake, answer in plaintext HTTP, or are not there at all.
 *
 * Only the openssl-driven cases are skipped, visibly, when openssl is
 * missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bearssl.h>
#include "t.h"
#include "../../kernel/err.h"
#include "../../kernel/log.h"
#include "../../net/tls.h"

#define BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define DEADLINE_MS 10000

static char dir[64];		/* the temporary directory */
static int have_openssl;

/* ---- helpers */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static int write_file(const char *name, const char *text)
{
	char p[128];
	FILE *f;

	path(p, sizeof(p), name);
	f = fopen(p, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* A non-blocking socket connecting to 127.0.0.1:port. */
static int connect_nb(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A listening socket on 127.0.0.1 (any port, written to *port). */
static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(fd, 4) == -1 || getsockname(fd, (struct sockaddr *)&a, &alen) == -1) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/*
 * The loop the HTTP client will run, in small: call op until it stops
 * saying -EAGAIN, polling for what tls_events() asks.  SL_E_TIMEOUT after
 * DEADLINE_MS; SL_E_INVALID if -EAGAIN came with nothing to wait for.
 */
static ssize_t drive(struct tls_sess *s, int fd, int writing, void *buf, size_t n)
{
	int64_t end = now_ms() + DEADLINE_MS;

	for (;;) {
		ssize_t r = writing ? tls_write(s, buf, n) : tls_read(s, buf, n);
		unsigned ev;
		struct pollfd p;

		if (r != -EAGAIN)
			return r;
		ev = tls_events(s);
		if (ev == 0)
			return SL_E_INVALID;
		p.fd = fd;
		p.events = (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0));
		p.revents = 0;
		if (now_ms() >= end)
			return SL_E_TIMEOUT;
		if (poll(&p, 1, (int)(end - now_ms())) == -1 && errno != EINTR)
			return -errno;
	}
}

struct result {
	int err;		/* 0: the exchange worked and ended cleanly */
	int br_err;		/* tls_br_error() */
	int established;
	char resp[256];		/* the first bytes of the answer */
	size_t resp_len;
};

/* Connect, send an HTTP/1.0 GET, read the answer to its end. */
static void exchange(struct tls_ctx *ctx, uint16_t port, const char *name, struct result *res)
{
	static const char req[] = "GET / HTTP/1.0\r\nHost: sluice-test\r\n\r\n";
	struct tls_sess *s = NULL;
	char buf[4096];
	size_t off = 0;
	ssize_t r;
	int fd = connect_nb(port);

	memset(res, 0, sizeof(*res));
	T_CHECK(fd != -1);
	res->err = tls_open(ctx, fd, name, &s);
	if (res->err != 0)
		goto out;
	while (off < sizeof(req) - 1) {
		r = drive(s, fd, 1, (void *)(req + off), sizeof(req) - 1 - off);
		if (r <= 0) {
			res->err = r == 0 ? SL_E_INVALID : (int)r;
			goto out;
		}
		off += (size_t)r;
	}
	for (;;) {
		r = drive(s, fd, 0, buf, sizeof(buf));
		if (r <= 0) {
			res->err = (int)r;
			break;
		}
		if (res->resp_len < sizeof(res->resp) - 1) {
			size_t k = sizeof(res->resp) - 1 - res->resp_len;

			if (k > (size_t)r)
				k = (size_t)r;
			memcpy(res->resp + res->resp_len, buf, k);
			res->resp_len += k;
		}
	}
	/* A finished session stays finished. */
	if (res->err != SL_E_TIMEOUT && res->err != SL_E_INVALID) {
		T_EQ(tls_read(s, buf, sizeof(buf)), res->err);
		T_EQ(tls_events(s), 0);
	}
out:
	if (s != NULL) {
		res->br_err = tls_br_error(s);
		res->established = tls_established(s);
		tls_close(s);
	}
	if (fd != -1)
		close(fd);
}

/* ---- openssl: certificates and servers */

static int make_certs(void)
{
	char cmd[2048];

	if (write_file("good.ext",
		       "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
		       "basicConstraints=critical,CA:FALSE\n"
		       "keyUsage=critical,digitalSignature,keyEncipherment\n"
		       "extendedKeyUsage=serverAuth\n") != 0 ||
	    write_file("wrong.ext",
		       "subjectAltName=DNS:wrong.example,IP:192.0.2.1\n"
		       "basicConstraints=critical,CA:FALSE\n"
		       "keyUsage=critical,digitalSignature\n"
		       "extendedKeyUsage=serverAuth\n"))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "(set -e; cd %s\n"
		 "ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
		 " -keyout $1.key -out $1.crt -days 2 -subj \"/CN=$2\""
		 " -addext basicConstraints=critical,CA:TRUE"
		 " -addext keyUsage=critical,keyCertSign,cRLSign; }\n"
		 "leaf() { openssl req -new -newkey $2 -nodes -keyout $1.key -out $1.csr"
		 " -subj \"/CN=$1 server\"\n"
		 " openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -CAcreateserial"
		 " -days 2 -extfile $4 -out $1.crt; }\n"
		 "ca ca 'Sluice Test CA'\n"
		 "ca other 'Unknown Test CA'\n"
		 "leaf good rsa:2048 ca good.ext\n"
		 "leaf wrong 'ec -pkeyopt ec_paramgen_curve:P-256' ca wrong.ext\n"
		 "leaf unknown 'ec -pkeyopt ec_paramgen_curve:P-256' other good.ext\n"
		 "cat good.crt ca.crt > chain.crt) >%s/gen.log 2>&1\n",
		 dir, dir);
	return system(cmd);
}

struct server {
	pid_t pid;
	uint16_t port;
};

/*
 * openssl s_server with name.crt/name.key in mode "-www" (an HTTP status
 * page) or "-rev" (each line back reversed); waits until it listens.
 */
static int server_start(struct server *sv, const char *name, const char *mode)
{
	char crt[128], key[128], log[128], file[16], text[512];
	int64_t end = now_ms() + DEADLINE_MS;

	snprintf(file, sizeof(file), "%s.crt", name);
	path(crt, sizeof(crt), file);
	snprintf(file, sizeof(file), "%s.key", name);
	path(key, sizeof(key), file);
	snprintf(file, sizeof(file), "%s.log", name);
	path(log, sizeof(log), file);
	sv->port = 0;
	unlink(log);		/* a previous server's port must not be read */
	sv->pid = fork();
	if (sv->pid == -1)
		return -1;
	if (sv->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd == -1)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", crt,
		       "-key", key, mode, (char *)NULL);
		_exit(127);
	}
	/* It prints "ACCEPT 127.0.0.1:PORT" once listening. */
	while (now_ms() < end) {
		FILE *f = fopen(log, "r");
		const char *a;

		if (f != NULL) {
			size_t n = fread(text, 1, sizeof(text) - 1, f);

			fclose(f);
			text[n] = '\0';
			a = strstr(text, "ACCEPT 127.0.0.1:");
			if (a != NULL && strchr(a, '\n') != NULL) {
				sv->port = (uint16_t)atoi(a + strlen("ACCEPT 127.0.0.1:"));
				return sv->port != 0 ? 0 : -1;
			}
		}
		if (waitpid(sv->pid, NULL, WNOHANG) == sv->pid) {
			sv->pid = -1;
			return -1;
		}
		sleep_ms(10);
	}
	return -1;
}

static void server_stop(struct server *sv)
{
	if (sv->pid > 0) {
		kill(sv->pid, SIGTERM);
		waitpid(sv->pid, NULL, 0);
		sv->pid = -1;
	}
}

static struct tls_ctx *ctx_with(const char *ca, int insecure)
{
	struct tls_ctx *ctx = NULL;
	char p[128];

	if (ca != NULL)
		path(p, sizeof(p), ca);
	T_EQ(tls_ctx_new(ca != NULL ? p : NULL, insecure, &ctx), 0);
	return ctx;
}

/* One case: server with cert `name`, a context, a server name to ask for. */
static void run_case(const char *name, struct tls_ctx *ctx, const char *server_name,
		     struct result *res)
{
	struct server sv;

	memset(res, 0, sizeof(*res));
	res->err = SL_E_INVALID;
	T_EQ(server_start(&sv, name, "-www"), 0);
	if (sv.port != 0 && ctx != NULL)
		exchange(ctx, sv.port, server_name, res);
	server_stop(&sv);
}

/* The openssl-driven tests run only with openssl, and say so otherwise. */
#define T_RUN_OPENSSL(fn) do { if (have_openssl) T_RUN(fn); else { t_passed++; \
	printf("ok %s %s skipped: no openssl command\n", __FILE__, #fn); } } while (0)

static int is_http_ok(const struct result *r)
{
	return r->resp_len >= 12 && memcmp(r->resp, "HTTP/1.0 200", 12) == 0;
}

/* ---- the compiled-in table */

static void test_builtin_table(void)
{
	/* ISRG Root X1's subject: C=US, O=Internet Security Research Group, CN=ISRG Root X1. */
	static const unsigned char isrg_x1[] = {
		0x30, 0x4F,
		0x31, 0x0B, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 'U', 'S',
		0x31, 0x29, 0x30, 0x27, 0x06, 0x03, 0x55, 0x04, 0x0A, 0x13, 0x20,
		'I', 'n', 't', 'e', 'r', 'n', 'e', 't', ' ', 'S', 'e', 'c', 'u', 'r', 'i', 't',
		'y', ' ', 'R', 'e', 's', 'e', 'a', 'r', 'c', 'h', ' ', 'G', 'r', 'o', 'u', 'p',
		0x31, 0x15, 0x30, 0x13, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x0C,
		'I', 'S', 'R', 'G', ' ', 'R', 'o', 'o', 't', ' ', 'X', '1',
	};
	size_t n, i, found = 0, ca = 0;
	const br_x509_trust_anchor *ta = tls_builtin_anchors(&n);

	T_CHECK(n > 100);
	for (i = 0; i < n; i++) {
		T_CHECK(ta[i].dn.len > 0 && ta[i].dn.data[0] == 0x30);
		T_CHECK(ta[i].pkey.key_type == BR_KEYTYPE_RSA || ta[i].pkey.key_type == BR_KEYTYPE_EC);
		if (ta[i].pkey.key_type == BR_KEYTYPE_RSA) {
			T_CHECK(ta[i].pkey.key.rsa.nlen >= 256 && ta[i].pkey.key.rsa.n[0] != 0);
			T_CHECK(ta[i].pkey.key.rsa.elen > 0 && ta[i].pkey.key.rsa.e[0] != 0);
		} else {
			T_CHECK(ta[i].pkey.key.ec.qlen >= 65 && ta[i].pkey.key.ec.q[0] == 0x04);
		}
		if (ta[i].flags & BR_X509_TA_CA)
			ca++;
		if (ta[i].dn.len == sizeof(isrg_x1) && memcmp(ta[i].dn.data, isrg_x1, sizeof(isrg_x1)) == 0) {
			found++;
			T_EQ(ta[i].pkey.key_type, BR_KEYTYPE_RSA);
			T_EQ(ta[i].pkey.key.rsa.nlen, 512);	/* RSA 4096 */
			T_CHECK(ta[i].flags & BR_X509_TA_CA);
		}
	}
	T_EQ(found, 1);
	T_CHECK(ca > n / 2);	/* roots say cA=TRUE; a generator that lost the flag fails */
}

/* The generator and BearSSL's decoder read the bundle the same way. */
static void test_builtin_matches_bearssl(void)
{
	struct tls_ctx *ctx = NULL;
	size_t nb, nc, i;
	const br_x509_trust_anchor *b = tls_builtin_anchors(&nb), *c;

	T_EQ(tls_ctx_new(BUNDLE, 0, &ctx), 0);
	if (ctx == NULL)
		return;
	c = tls_ctx_anchors(ctx, &nc);
	T_EQ(nc, 2 * nb);
	for (i = 0; i < nb && nc == 2 * nb; i++) {
		const br_x509_trust_anchor *x = &b[i], *y = &c[nb + i];
		int same = x->dn.len == y->dn.len && memcmp(x->dn.data, y->dn.data, x->dn.len) == 0 &&
			   x->flags == y->flags && x->pkey.key_type == y->pkey.key_type;

		if (same && x->pkey.key_type == BR_KEYTYPE_RSA)
			same = x->pkey.key.rsa.nlen == y->pkey.key.rsa.nlen &&
			       x->pkey.key.rsa.elen == y->pkey.key.rsa.elen &&
			       memcmp(x->pkey.key.rsa.n, y->pkey.key.rsa.n, x->pkey.key.rsa.nlen) == 0 &&
			       memcmp(x->pkey.key.rsa.e, y->pkey.key.rsa.e, x->pkey.key.rsa.elen) == 0;
		else if (same)
			same = x->pkey.key.ec.curve == y->pkey.key.ec.curve &&
			       x->pkey.key.ec.qlen == y->pkey.key.ec.qlen &&
			       memcmp(x->pkey.key.ec.q, y->pkey.key.ec.q, x->pkey.key.ec.qlen) == 0;
		if (!same)
			fprintf(stderr, "  anchor %zu differs from BearSSL's decoding\n", i);
		T_CHECK(same);
		T_CHECK(c[i].dn.data == b[i].dn.data);	/* built-ins are shared, not copied */
	}
	tls_ctx_free(ctx);
}

static void test_ca_file_errors(void)
{
	static const char *const bad[] = {
		"",								/* empty */
		"just some text\nno PEM here\n",				/* no object */
		"-----BEGIN CERTIFICATE-----\nMIIB\n",				/* no END */
		"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",	/* bad base64 */
		"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",	/* not a cert */
		"-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n",	/* no cert */
	};
	struct tls_ctx *ctx = (struct tls_ctx *)1;
	char p[128];
	size_t i;

	T_EQ(tls_ctx_new("/nonexistent/ca.pem", 0, &ctx), SL_E_CONFIG);
	T_CHECK(ctx == NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ(write_file("bad.pem", bad[i]), 0);
		path(p, sizeof(p), "bad.pem");
		ctx = NULL;
		T_EQ(tls_ctx_new(p, 0, &ctx), SL_E_CONFIG);
		T_CHECK(ctx == NULL);
	}
	/* "" means no CA file, like NULL. */
	T_EQ(tls_ctx_new("", 0, &ctx), 0);
	tls_ctx_free(ctx);
}

static void test_error_names(void)
{
	char b[TLS_ERRSTR_LEN];

	T_CHECK(strcmp(tls_br_strerror(BR_ERR_X509_NOT_TRUSTED, b, sizeof(b)),
		       "certificate not trusted (BR_ERR_X509_NOT_TRUSTED)") == 0);
	T_CHECK(strcmp(tls_br_strerror(BR_ERR_X509_BAD_SERVER_NAME, b, sizeof(b)),
		       "server name mismatch (BR_ERR_X509_BAD_SERVER_NAME)") == 0);
	T_CHECK(strcmp(tls_br_strerror(BR_ERR_X509_EXPIRED, b, sizeof(b)),
		       "certificate expired or not yet valid (BR_ERR_X509_EXPIRED)") == 0);
	T_CHECK(strcmp(tls_br_strerror(BR_ERR_RECV_FATAL_ALERT + 48, b, sizeof(b)),
		       "server sent alert unknown_ca (BR_ERR_RECV_FATAL_ALERT+48)") == 0);
	T_CHECK(strcmp(tls_br_strerror(BR_ERR_SEND_FATAL_ALERT + 40, b, sizeof(b)),
		       "sent alert handshake_failure (BR_ERR_SEND_FATAL_ALERT+40)") == 0);
	T_CHECK(strcmp(tls_br_strerror(9999, b, sizeof(b)), "unknown BearSSL error 9999") == 0);
}

static void test_open_rejects_bad_names(void)
{
	struct tls_ctx *ctx = ctx_with(NULL, 0);
	struct tls_sess *s = (struct tls_sess *)1;
	char longname[300];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	T_EQ(tls_open(ctx, -1, "", &s), SL_E_INVALID);
	T_CHECK(s == NULL);
	T_EQ(tls_open(ctx, -1, longname, &s), SL_E_INVALID);
	tls_ctx_free(ctx);
}

/* ---- against openssl s_server */

static void test_trusted_by_ca_file(void)
{
	struct tls_ctx *ctx;
	struct result r;

	ctx = ctx_with("ca.crt", 0);
	run_case("good", ctx, "localhost", &r);
	T_EQ(r.err, 0);		/* s_server -www ends with close_notify */
	T_EQ(r.br_err, 0);
	T_CHECK(r.established);
	T_CHECK(is_http_ok(&r));
	/* By address: no SNI, the iPAddress entry is what matches. */
	run_case("good", ctx, "127.0.0.1", &r);
	T_EQ(r.err, 0);
	T_CHECK(is_http_ok(&r));
	tls_ctx_free(ctx);
}

static void test_builtin_anchors_refuse_test_ca(void)
{
	struct tls_ctx *ctx;
	struct result r;

	ctx = ctx_with(NULL, 0);
	run_case("good", ctx, "localhost", &r);
	T_EQ(r.err, SL_E_TLS);
	T_EQ(r.br_err, BR_ERR_X509_NOT_TRUSTED);
	T_CHECK(!r.established);
	T_EQ(r.resp_len, 0);
	tls_ctx_free(ctx);
}

static void test_wrong_name_refused(void)
{
	struct tls_ctx *ctx;
	struct result r;

	ctx = ctx_with("ca.crt", 0);
	run_case("wrong", ctx, "localhost", &r);
	T_EQ(r.err, SL_E_TLS);
	T_EQ(r.br_err, BR_ERR_X509_BAD_SERVER_NAME);
	run_case("wrong", ctx, "127.0.0.1", &r);
	T_EQ(r.err, SL_E_TLS);
	T_EQ(r.br_err, BR_ERR_X509_BAD_SERVER_NAME);
	/* The good certificate does not name example.com either. */
	run_case("good", ctx, "example.com", &r);
	T_EQ(r.err, SL_E_TLS);
	T_EQ(r.br_err, BR_ERR_X509_BAD_SERVER_NAME);
	/* Nor 127.0.0.2, although it has an IP entry. */
	run_case("good", ctx, "127.0.0.2", &r);
	T_EQ(r.err, SL_E_TLS);
	T_EQ(r.br_err, BR_ERR_X509_BAD_SERVER_NAME);
	tls_ctx_free(ctx);
}

static void test_unknown_ca_refused(void)
{
	struct tls_ctx *ctx;
	struct result r;

	ctx = ctx_with("ca.crt", 0);
	run_case("unknown", ctx, "localhost", &r);
	T_EQ(r.err, SL_E_TLS);
	T_EQ(r.br_err, BR_ERR_X509_NOT_TRUSTED);
	T_EQ(r.resp_len, 0);
	tls_ctx_free(ctx);
}

static void test_insecure_connects(void)
{
	struct tls_ctx *ctx;
	struct result r;

	ctx = ctx_with(NULL, 1);
	run_case("unknown", ctx, "localhost", &r);
	T_EQ(r.err, 0);
	T_CHECK(is_http_ok(&r));
	run_case("wrong", ctx, "localhost", &r);
	T_EQ(r.err, 0);
	T_CHECK(is_http_ok(&r));
	tls_ctx_free(ctx);
}

/* A CA file with several certificates (server first, then its CA). */
static void test_ca_file_with_chain(void)
{
	struct tls_ctx *ctx;
	struct result r;
	size_t n, nb;

	ctx = ctx_with("chain.crt", 0);
	(void)tls_builtin_anchors(&nb);
	(void)tls_ctx_anchors(ctx, &n);
	T_EQ(n, nb + 2);
	run_case("good", ctx, "localhost", &r);
	T_EQ(r.err, 0);
	tls_ctx_free(ctx);
}

/*
 * Full duplex through small socket buffers: 4000 lines (400 kB) go to an
 * echo server that sends each back reversed, while its answers come in, so
 * writes meet a full socket (-EAGAIN, EPOLLOUT) many times.  The writes and
 * reads are interleaved as a loop would run them; the answer must be every
 * line, reversed, in order.  (64 kB buffers: smaller ones make s_server's
 * 100-byte records wait on delayed ACKs, which only slows the run.)
 */
static void test_large_duplex(void)
{
	enum { LINES = 4000, LINE = 100 };
	struct tls_ctx *ctx = ctx_with("ca.crt", 0);
	struct tls_sess *s = NULL;
	struct server sv;
	char *out = malloc(LINES * LINE), *want = malloc(LINES * LINE), *got = malloc(LINES * LINE);
	size_t sent = 0, recvd = 0, i, j;
	int64_t end = now_ms() + 3 * DEADLINE_MS;
	int fd = -1, small = 65536;

	T_CHECK(out != NULL && want != NULL && got != NULL);
	if (out == NULL || want == NULL || got == NULL)
		goto out;
	for (i = 0; i < LINES; i++) {
		char *l = out + i * LINE, *w = want + i * LINE;

		for (j = 0; j < LINE - 1; j++)
			l[j] = (char)('a' + (i * 7 + j * 3) % 26);
		l[LINE - 1] = '\n';
		for (j = 0; j < LINE - 1; j++)
			w[j] = l[LINE - 2 - j];
		w[LINE - 1] = '\n';
	}
	T_EQ(server_start(&sv, "good", "-rev"), 0);
	if (sv.port == 0)
		goto stop;
	fd = connect_nb(sv.port);
	T_CHECK(fd != -1);
	T_EQ(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	T_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	T_EQ(tls_open(ctx, fd, "localhost", &s), 0);
	while (s != NULL && recvd < LINES * LINE && now_ms() < end) {
		ssize_t w = -EAGAIN, r;
		struct pollfd p = { .fd = fd };
		unsigned ev;

		if (sent < LINES * LINE) {
			w = tls_write(s, out + sent, LINES * LINE - sent);
			if (w > 0)
				sent += (size_t)w;
			else if (w != -EAGAIN)
				break;
		}
		ev = tls_events(s);
		r = tls_read(s, got + recvd, LINES * LINE - recvd);
		if (r > 0)
			recvd += (size_t)r;
		else if (r != -EAGAIN)
			break;
		if (w > 0 || r > 0)
			continue;
		ev |= tls_events(s);
		p.events = (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0));
		T_CHECK(p.events != 0);
		if (p.events == 0 || poll(&p, 1, 1000) == -1)
			break;
	}
	T_EQ(sent, LINES * LINE);
	T_EQ(recvd, LINES * LINE);
	if (recvd == LINES * LINE)
		T_MEMEQ(got, want, LINES * LINE);
stop:
	tls_close(s);
	server_stop(&sv);
out:
	if (fd != -1)
		close(fd);
	free(out);
	free(want);
	free(got);
	tls_ctx_free(ctx);
}

/* ---- in-process servers */

/* Accept one connection on lfd, waiting at most DEADLINE_MS. */
static int accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, DEADLINE_MS) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/*
 * The server reads the ClientHello, then says `reply` (may be NULL) and
 * closes.  Returns what the client's read came to.
 */
static int handshake_against(const char *reply, int reset, int *br_err)
{
	struct tls_ctx *ctx = ctx_with(NULL, 0);
	struct tls_sess *s = NULL;
	uint16_t port;
	int lfd = listen_any(&port), fd = -1, afd = -1, r = SL_E_INVALID;
	unsigned char hello[512];
	char buf[64];
	struct pollfd p;

	T_CHECK(lfd != -1);
	fd = connect_nb(port);
	afd = accept_one(lfd);
	T_CHECK(fd != -1 && afd != -1);
	if (fd == -1 || afd == -1)
		goto out;
	T_EQ(tls_open(ctx, fd, "localhost", &s), 0);
	if (s == NULL)
		goto out;
	/* The ClientHello leaves and the session waits for the server. */
	T_EQ(tls_read(s, buf, sizeof(buf)), -EAGAIN);
	T_EQ(tls_events(s), EPOLLIN);
	p.fd = afd;
	p.events = POLLIN;
	T_EQ(poll(&p, 1, DEADLINE_MS), 1);
	T_CHECK(read(afd, hello, sizeof(hello)) > 5);
	T_EQ(hello[0], 0x16);		/* a handshake record */
	T_EQ(hello[5], 0x01);		/* holding a ClientHello */
	if (reply != NULL)
		T_EQ(write(afd, reply, strlen(reply)), (ssize_t)strlen(reply));
	if (reset) {
		struct linger lg = { 1, 0 };

		T_EQ(setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	}
	close(afd);
	afd = -1;
	r = (int)drive(s, fd, 0, buf, sizeof(buf));
	*br_err = tls_br_error(s);
	T_CHECK(!tls_established(s));
out:
	tls_close(s);
	if (afd != -1)
		close(afd);
	if (fd != -1)
		close(fd);
	if (lfd != -1)
		close(lfd);
	tls_ctx_free(ctx);
	return r;
}

static void test_server_closes_mid_handshake(void)
{
	int br = -1;

	T_EQ(handshake_against(NULL, 0, &br), SL_E_TLS);
	T_EQ(br, 0);		/* no BearSSL error: the socket ended */
	T_EQ(handshake_against(NULL, 1, &br), -ECONNRESET);
}

static void test_plaintext_server(void)
{
	int br = 0;

	/* An HTTP server on the TLS port answers in clear and hangs up. */
	T_EQ(handshake_against("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", 0, &br),
	     SL_E_TLS);
	T_CHECK(br != 0);
}

static void test_connection_refused(void)
{
	struct tls_ctx *ctx = ctx_with(NULL, 0);
	struct tls_sess *s = NULL;
	uint16_t port;
	int lfd = listen_any(&port), fd;
	char buf[16];

	close(lfd);		/* nothing listens on port now */
	fd = connect_nb(port);
	T_CHECK(fd != -1);
	T_EQ(tls_open(ctx, fd, "localhost", &s), 0);
	T_EQ(drive(s, fd, 1, "x", 1), -ECONNREFUSED);
	T_EQ(tls_events(s), 0);
	T_EQ(tls_write(s, "x", 1), -ECONNREFUSED);	/* sticky */
	T_EQ(tls_read(s, buf, sizeof(buf)), -ECONNREFUSED);
	tls_close(s);
	close(fd);
	tls_ctx_free(ctx);
}

int main(void)
{
	char cmd[128];

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_WARN);
	snprintf(dir, sizeof(dir), "/tmp/sluice-tls-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	have_openssl = system("openssl version >/dev/null 2>&1") == 0;
	if (have_openssl && make_certs() != 0) {
		fprintf(stderr, "openssl could not make the test certificates; see %s/gen.log\n", dir);
		printf("FAIL %s make_certs\n", __FILE__);
		return 1;
	}

	T_RUN(test_builtin_table);
	T_RUN(test_builtin_matches_bearssl);
	T_RUN(test_ca_file_errors);
	T_RUN(test_error_names);
	T_RUN(test_open_rejects_bad_names);
	T_RUN_OPENSSL(test_trusted_by_ca_file);
	T_RUN_OPENSSL(test_builtin_anchors_refuse_test_ca);
	T_RUN_OPENSSL(test_wrong_name_refused);
	T_RUN_OPENSSL(test_unknown_ca_refused);
	T_RUN_OPENSSL(test_insecure_connects);
	T_RUN_OPENSSL(test_ca_file_with_chain);
	T_RUN_OPENSSL(test_large_duplex);
	T_RUN(test_server_closes_mid_handshake);
	T_RUN(test_plaintext_server);
	T_RUN(test_connection_refused);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (t_failed == 0 && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done();
}
