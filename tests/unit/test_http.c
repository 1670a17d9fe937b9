/*
 * test_http.c - the HTTP engine without sockets: request heads byte for byte
 * and refusing injection; the response parser on Content-Length, chunked
 * (extensions, trailers), read-until-close, HEAD/204/304 and 1xx; every
 * response fed whole, a byte at a time and split in two at every offset
 * must parse to the same result; pipelined responses; caps on head bytes,
 * field count and body; garbage; truncation; sticky errors.
 */
#include <stdlib.h>
#include "t.h"
#include "../../net/http.h"

static const struct http_limits LIM = { 4096, 32, 1 << 20 };

/* The parse of one response as a string: "status ka=N name=value;...|body". */
struct result {
	int rc;			/* HTTP_DONE or the error */
	size_t used;		/* bytes consumed in total */
	char text[8192];
};

static void describe(struct http_parser *p, struct result *res)
{
	struct http_response r;
	size_t i, n;

	if (http_parser_response(p, &r) != 0) {
		snprintf(res->text, sizeof(res->text), "no response");
		return;
	}
	n = (size_t)snprintf(res->text, sizeof(res->text), "%d 1.%d ka=%d ", r.status, r.minor,
			     p->keep_alive);
	for (i = 0; i < r.nheaders && n < sizeof(res->text); i++)
		n += (size_t)snprintf(res->text + n, sizeof(res->text) - n, "%s=%s;",
				      r.headers[i].name, r.headers[i].value);
	if (n < sizeof(res->text))
		n += (size_t)snprintf(res->text + n, sizeof(res->text) - n, "|%.*s",
				      (int)r.body_len, r.body ? (const char *)r.body : "");
	free(r.body);
}

/*
 * Feed msg in pieces: first `first` bytes (0 = none), then pieces of `step`
 * bytes (0 = the rest at once).  eof: end the stream after the bytes.
 */
static void parse_split(const char *msg, size_t len, const struct http_limits *lim, int head,
			size_t first, size_t step, int eof, struct result *res)
{
	struct http_parser p;
	size_t off = 0;
	int rc = 0;

	http_parser_init(&p, lim, head);
	res->text[0] = '\0';
	while (off < len) {
		size_t n = off == 0 && first ? first : (step ? step : len - off), used;

		if (n > len - off)
			n = len - off;
		rc = http_parser_feed(&p, msg + off, n, &used);
		off += used;
		if (rc != 0)
			break;
		if (used != n) {
			rc = -9999;	/* consumed less without saying DONE */
			break;
		}
	}
	if (rc == 0 && eof)
		rc = http_parser_eof(&p);
	res->rc = rc;
	res->used = off;
	if (rc == HTTP_DONE)
		describe(&p, res);
	http_parser_free(&p);
}

static void parse(const char *msg, const struct http_limits *lim, int head, int eof, struct result *res)
{
	parse_split(msg, strlen(msg), lim, head, 0, 0, eof, res);
}

#define T_STREQ(a, b) do { if (strcmp((a), (b)) != 0) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, (a), (b)); } } while (0)

/* ---- requests ---- */

static void test_head_get(void)
{
	struct http_header h[] = { { "x-amz-date", "20240101T000000Z" }, { "Range", "bytes=0-9" } };
	struct http_request req = { "GET", "/bucket/key?x=1", "s3.example:9000", h, 2, 0 };
	struct sl_wr w;
	const char *want = "GET /bucket/key?x=1 HTTP/1.1\r\nHost: s3.example:9000\r\n"
			   "x-amz-date: 20240101T000000Z\r\nRange: bytes=0-9\r\n\r\n";

	wr_init(&w, 0);
	T_EQ(http_write_head(&w, &req), 0);
	T_EQ(w.len, strlen(want));
	T_MEMEQ(w.p, want, strlen(want));
	wr_free(&w);
}

static void test_head_put_length(void)
{
	struct http_request req = { "PUT", "/b/k", "h", NULL, 0, 12345 };
	struct http_request empty = { "PUT", "/b/k", "h", NULL, 0, 0 };
	struct http_request del = { "DELETE", "/b/k", "h", NULL, 0, 0 };
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(http_write_head(&w, &req), 0);
	T_CHECK(w.len > 0 && memmem(w.p, w.len, "\r\nContent-Length: 12345\r\n\r\n", 27) != NULL);
	wr_free(&w);
	T_EQ(http_write_head(&w, &empty), 0);
	T_CHECK(memmem(w.p, w.len, "Content-Length: 0\r\n", 19) != NULL);
	wr_free(&w);
	T_EQ(http_write_head(&w, &del), 0);
	T_CHECK(memmem(w.p, w.len, "Content-Length", 14) == NULL);
	wr_free(&w);
}

static void test_head_refuses_injection(void)
{
	struct http_header crlf[] = { { "x-a", "v\r\nx-evil: 1" } };
	struct http_header lf[] = { { "x-a", "v\nx" } };
	struct http_header ctl[] = { { "x-a", "v\001" } };
	struct http_header name[] = { { "x a", "v" } };
	struct http_header colon[] = { { "x:a", "v" } };
	struct http_header framing[] = { { "content-length", "5" } };
	struct http_header host[] = { { "HOST", "evil" } };
	struct http_header te[] = { { "Transfer-Encoding", "chunked" } };
	const struct http_header *bad[] = { crlf, lf, ctl, name, colon, framing, host, te };
	struct sl_wr w;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_request req = { "GET", "/", "h", bad[i], 1, 0 };

		wr_init(&w, 0);
		T_EQ(http_write_head(&w, &req), SL_E_INVALID);
		wr_free(&w);
	}
	{
		struct http_request sp = { "GET", "/a b", "h", NULL, 0, 0 };
		struct http_request rel = { "GET", "a", "h", NULL, 0, 0 };
		struct http_request meth = { "GE T", "/", "h", NULL, 0, 0 };
		struct http_request hostcr = { "GET", "/", "h\r\nx: y", NULL, 0, 0 };
		struct http_request nohost = { "GET", "/", "", NULL, 0, 0 };

		T_EQ(http_write_head(&w, &sp), SL_E_INVALID);
		T_EQ(http_write_head(&w, &rel), SL_E_INVALID);
		T_EQ(http_write_head(&w, &meth), SL_E_INVALID);
		T_EQ(http_write_head(&w, &hostcr), SL_E_INVALID);
		T_EQ(http_write_head(&w, &nohost), SL_E_INVALID);
		wr_free(&w);
	}
}

/* ---- responses that parse ---- */

static void test_content_length(void)
{
	const char *m = "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 5\r\n"
			"X-Amz-Request-Id:   R1  \r\n\r\nhello";
	struct result r;

	parse(m, &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_EQ(r.used, strlen(m));
	T_STREQ(r.text, "200 1.1 ka=1 etag=\"abc\";content-length=5;x-amz-request-id=R1;|hello");
}

static void test_header_lookup(void)
{
	const char *m = "HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n"
			"Content-Length: 0\r\n\r\n";
	struct http_parser p;
	struct http_response r;
	size_t used;

	http_parser_init(&p, &LIM, 0);
	T_EQ(http_parser_feed(&p, m, strlen(m), &used), HTTP_DONE);
	T_EQ(http_parser_response(&p, &r), 0);
	T_EQ(r.status, 404);
	T_CHECK(r.body == NULL && r.body_len == 0);
	T_CHECK(http_response_header(&r, "CONTENT-TYPE") != NULL);
	T_STREQ(http_response_header(&r, "content-type"), "application/xml");
	T_CHECK(http_response_header(&r, "etag") == NULL);
	http_parser_free(&p);
}

static void test_chunked(void)
{
	const char *m = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
			"5;name=value;flag\r\nhello\r\n"
			"1 ; spaced=\"q;x\"\r\n \r\n"
			"00000000000006\r\nworld!\r\n"
			"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
	struct result r;

	parse(m, &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_EQ(r.used, strlen(m));
	/* Trailers are not merged into the fields. */
	T_STREQ(r.text, "200 1.1 ka=1 transfer-encoding=Chunked;|hello world!");
}

static void test_until_close(void)
{
	const char *m = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of it";
	struct result r;

	parse(m, &LIM, 0, 1, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "200 1.1 ka=0 server=x;|all of it");
	parse(m, &LIM, 0, 0, &r);
	T_EQ(r.rc, 0);		/* not done until the close */
}

static void test_no_body(void)
{
	struct result r;

	/* HEAD: Content-Length names the object, no body follows. */
	parse("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", &LIM, 1, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "200 1.1 ka=1 content-length=1000;|");
	parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &LIM, 1, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	parse("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "204 1.1 ka=1 content-length=7;|");
	parse("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "200 1.1 ka=1 content-length=0;|");
	/* No reason phrase at all, and an empty one. */
	parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	parse("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
}

static void test_interim_skipped(void)
{
	struct result r;

	parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
	      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "201 1.1 ka=1 content-length=2;|ok");
	parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, SL_E_PROTO);
}

static void test_keep_alive_rules(void)
{
	struct result r;

	parse("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_STREQ(r.text, "200 1.1 ka=0 connection=keep-alive, Close;content-length=0;|");
	parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_STREQ(r.text, "200 1.0 ka=0 content-length=0;|");
	parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_STREQ(r.text, "200 1.0 ka=1 connection=Keep-Alive;content-length=0;|");
	/* "closed" is not "close". */
	parse("HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_STREQ(r.text, "200 1.1 ka=1 connection=closed;content-length=0;|");
}

static void test_folded_and_repeated(void)
{
	struct result r;

	parse("HTTP/1.1 200 OK\r\nX-Long: first\r\n   second \r\n\tthird\r\n"
	      "Content-Length: 2\r\ncontent-length: 2\r\n\r\nhi", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "200 1.1 ka=1 x-long=first second third;content-length=2;content-length=2;|hi");
	/* obs-text in a value passes through. */
	parse("HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	T_STREQ(r.text, "200 1.1 ka=1 x-name=caf\xc3\xa9;content-length=0;|");
}

/* Every split gives the same parse as the whole. */
static void check_splits(const char *m, int head, int eof)
{
	struct result whole, part;
	size_t len = strlen(m), i;
	int bad = 0;

	parse_split(m, len, &LIM, head, 0, 0, eof, &whole);
	T_EQ(whole.rc, HTTP_DONE);
	parse_split(m, len, &LIM, head, 0, 1, eof, &part);
	T_EQ(part.rc, HTTP_DONE);
	T_STREQ(part.text, whole.text);
	for (i = 1; i < len; i++) {
		parse_split(m, len, &LIM, head, i, 0, eof, &part);
		if (part.rc != whole.rc || strcmp(part.text, whole.text) != 0 || part.used != whole.used) {
			if (!bad++)
				fprintf(stderr, "  split at %zu: rc %d \"%s\"\n", i, part.rc, part.text);
		}
		parse_split(m, len, &LIM, head, i, 3, eof, &part);
		if (part.rc != whole.rc || strcmp(part.text, whole.text) != 0) {
			if (!bad++)
				fprintf(stderr, "  split at %zu then 3s: rc %d \"%s\"\n", i, part.rc, part.text);
		}
	}
	T_EQ(bad, 0);
}

static void test_split_everywhere(void)
{
	check_splits("HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 11\r\n\r\nhello world", 0, 0);
	check_splits("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n", 0, 0);
	check_splits("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Error\r\n"
		     "X-A: a\r\n  folded\r\nContent-Length: 3\r\n\r\nerr", 0, 0);
	check_splits("HTTP/1.0 200 OK\r\nX: y\r\n\r\nbody until the end", 0, 1);
	check_splits("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 1, 0);
}

static void test_pipelined(void)
{
	const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
			"HTTP/1.1 503 Slow Down\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
			"HTTP/1.1 204 No Content\r\n\r\n";
	struct http_parser p;
	struct result r;
	size_t len = strlen(m), off = 0, used;
	const char *want[] = {
		"200 1.1 ka=1 content-length=3;|one",
		"503 1.1 ka=1 transfer-encoding=chunked;|two",
		"204 1.1 ka=1 |",
	};
	int i;

	http_parser_init(&p, &LIM, 0);
	for (i = 0; i < 3; i++) {
		T_EQ(http_parser_feed(&p, m + off, len - off, &used), HTTP_DONE);
		off += used;
		describe(&p, &r);
		T_STREQ(r.text, want[i]);
		/* Feeding after DONE consumes nothing. */
		T_EQ(http_parser_feed(&p, m + off, len - off, &used), HTTP_DONE);
		T_EQ(used, 0);
		http_parser_reset(&p);
	}
	T_EQ(off, len);
	http_parser_free(&p);
}

/* ---- caps ---- */

static void test_oversized_head(void)
{
	struct http_limits small = { 64, 4, 100 };
	char big[200];
	struct result r;

	/* A line that never ends is caught at the cap, without its LF. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	big[sizeof(big) - 1] = '\0';
	parse(big, &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	T_CHECK(r.used <= 64);
	parse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	parse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &small, 0, 1, &r);
	T_EQ(r.rc, HTTP_DONE);
	/* Trailers count against the same caps. */
	parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n"
	      "C: 3\r\nD: 4\r\n\r\n", &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	/* So do interim responses: a flood of 100s ends at the cap. */
	parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
	      &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
}

static void test_body_caps(void)
{
	struct http_limits small = { 4096, 32, 10 };
	struct result r;

	parse("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", &small, 0, 0, &r);
	T_EQ(r.rc, HTTP_DONE);
	parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n", &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", &LIM, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	parse("HTTP/1.1 200 OK\r\n\r\n0123456789X", &small, 0, 0, &r);
	T_EQ(r.rc, SL_E_TOOBIG);
	{
		char line[HTTP_MAX_CHUNK_LINE + 64];
		int n = snprintf(line, sizeof(line), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");

		memset(line + n, 'x', sizeof(line) - (size_t)n - 1);
		line[sizeof(line) - 1] = '\0';
		parse(line, &LIM, 0, 0, &r);
		T_EQ(r.rc, SL_E_TOOBIG);
	}
}

/* ---- garbage and truncation ---- */

static void test_garbage(void)
{
	const char *proto[] = {
		"<html>hello</html>\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 20x OK\r\n\r\n",
		"HTTP/1.1 600 Odd\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1 200 OK\n\r\n",
		"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSpace : before colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\001b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n\n",
		"HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rX",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
	};
	struct result r;
	size_t i;

	for (i = 0; i < sizeof(proto) / sizeof(proto[0]); i++) {
		parse(proto[i], &LIM, 0, 0, &r);
		if (r.rc != SL_E_PROTO)
			fprintf(stderr, "  input %zu: %d\n", i, r.rc);
		T_EQ(r.rc, SL_E_PROTO);
	}
	/* A peer not speaking HTTP is refused on its first bytes. */
	parse("SSH-2.0", &LIM, 0, 0, &r);
	T_EQ(r.rc, SL_E_PROTO);
	parse("\x15\x03\x01\x00\x02\x02\x28", &LIM, 0, 0, &r);
	T_EQ(r.rc, SL_E_PROTO);
}

static void test_truncated(void)
{
	const char *cut[] = {
		"",
		"HTTP/1.1 200 O",
		"HTTP/1.1 200 OK\r\nContent-Le",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
	};
	struct result r;
	size_t i;

	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		parse(cut[i], &LIM, 0, 1, &r);
		T_EQ(r.rc, SL_E_CLOSED);
	}
}

static void test_sticky_error(void)
{
	struct http_parser p;
	size_t used;

	http_parser_init(&p, &LIM, 0);
	T_CHECK(!http_parser_started(&p));
	T_EQ(http_parser_feed(&p, "HTTP/1.1 200 OK\r\nbad\r\n", 23, &used), SL_E_PROTO);
	T_CHECK(http_parser_started(&p));
	T_EQ(http_parser_feed(&p, "\r\n", 2, &used), SL_E_PROTO);
	T_EQ(used, 0);
	T_EQ(http_parser_eof(&p), SL_E_PROTO);
	{
		struct http_response r;

		T_EQ(http_parser_response(&p, &r), SL_E_INVALID);
	}
	http_parser_reset(&p);
	T_EQ(http_parser_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38, &used), HTTP_DONE);
	http_parser_free(&p);
}

/* A Content-Length body read straight into the parser's buffer, as httpc does for large ones. */
static void test_body_room(void)
{
	static const char head[] = "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n012";
	struct http_parser p;
	struct http_response r;
	size_t used, room;
	uint8_t *dst;

	http_parser_init(&p, &LIM, 0);
	T_CHECK(http_parser_body_room(&p, &room) == NULL && room == 0);	/* no head yet */
	T_EQ(http_parser_feed(&p, head, strlen(head), &used), 0);
	T_EQ(used, strlen(head));
	dst = http_parser_body_room(&p, &room);
	T_CHECK(dst != NULL);
	T_EQ(room, 7);			/* what the body still needs, never more */
	memcpy(dst, "3456", 4);
	T_EQ(http_parser_fed_body(&p, 4), 0);
	dst = http_parser_body_room(&p, &room);
	T_EQ(room, 3);
	memcpy(dst, "789", 3);
	T_EQ(http_parser_fed_body(&p, 3), HTTP_DONE);
	T_CHECK(http_parser_body_room(&p, &room) == NULL && room == 0);
	T_EQ(http_parser_response(&p, &r), 0);
	T_EQ(r.status, 206);
	T_EQ(r.body_len, 10);
	T_CHECK(memcmp(r.body, "0123456789", 10) == 0);
	free(r.body);
	http_parser_free(&p);

	/* Claiming more than the room is an error, and sticks. */
	http_parser_init(&p, &LIM, 0);
	T_EQ(http_parser_feed(&p, head, strlen(head), &used), 0);
	T_CHECK(http_parser_fed_body(&p, 8) < 0);
	T_CHECK(http_parser_feed(&p, "x", 1, &used) < 0);
	http_parser_free(&p);

	/* A chunked body is never offered: its framing is inside the bytes. */
	http_parser_init(&p, &LIM, 0);
	T_EQ(http_parser_feed(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 52, &used), 0);
	T_CHECK(http_parser_body_room(&p, &room) == NULL && room == 0);
	http_parser_free(&p);
}

static void test_take_body(void)
{
	const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
	struct http_parser p;
	struct http_response r;
	uint8_t *b;
	size_t used, len;

	http_parser_init(&p, &LIM, 0);
	T_EQ(http_parser_feed(&p, m, strlen(m), &used), HTTP_DONE);
	T_EQ(http_parser_response(&p, &r), 0);
	b = http_response_take_body(&r, &len);
	T_EQ(len, 4);
	T_CHECK(b && memcmp(b, "body", 4) == 0);
	T_CHECK(r.body == NULL && r.body_len == 0);
	http_parser_free(&p);
	free(b);	/* the caller's now, and still valid after the parser is gone */
}

int main(void)
{
	T_RUN(test_head_get);
	T_RUN(test_head_put_length);
	T_RUN(test_head_refuses_injection);
	T_RUN(test_content_length);
	T_RUN(test_header_lookup);
	T_RUN(test_chunked);
	T_RUN(test_until_close);
	T_RUN(test_no_body);
	T_RUN(test_interim_skipped);
	T_RUN(test_keep_alive_rules);
	T_RUN(test_folded_and_repeated);
	T_RUN(test_split_everywhere);
	T_RUN(test_pipelined);
	T_RUN(test_oversized_head);
	T_RUN(test_body_caps);
	T_RUN(test_garbage);
	T_RUN(test_truncated);
	T_RUN(test_sticky_error);
	T_RUN(test_take_body);
	T_RUN(test_body_room);
	return t_done();
}
