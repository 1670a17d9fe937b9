/*
 * fuzz_http.c - libFuzzer target for the HTTP response parser (net/http.c).
 *
 * The input is a byte stream from a "server", cut into pieces as a network
 * would cut it.  Responses are parsed one after another (pipelined), each
 * complete one turned into a struct http_response whose every field and
 * body byte is read, so the sanitizers see any bad offset.  When the stream
 * ends the parser is told so (a body read until close completes there).
 *
 * Input:
 *   byte 0   bit 0: the request was HEAD; bit 1: small caps (256 head bytes,
 *            8 fields, 64 body bytes), else the client's defaults and a
 *            1 MiB body cap
 *   byte 1   piece size (0: everything at once)
 *   the rest the server's bytes
 *
 * Checked beyond memory safety: the parser never consumes more than it was
 * given; a response never exceeds its caps; and the same stream fed whole
 * gives the same sequence of results (status and body length, or error) as
 * fed in pieces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "net/http.h"

#define MAX_RESPONSES 16

/* Keeps the reads of every header and body byte from being optimised away. */
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

/* Parse the stream; write one summary number per response or error into out. */
static size_t run(const uint8_t *d, size_t n, const struct http_limits *lim, int head, size_t piece,
		  long *out, size_t nout)
{
	struct http_parser p;
	size_t off = 0, k = 0;
	int rc = 0;

	http_parser_init(&p, lim, head);
	while (k < nout) {
		size_t len = n - off, used = 0;

		if (piece && len > piece)
			len = piece;
		if (len == 0) {
			rc = http_parser_eof(&p);
			if (rc != HTTP_DONE && !http_parser_started(&p) && rc == SL_E_CLOSED)
				break;	/* the stream ended between responses */
		} else {
			rc = http_parser_feed(&p, d + off, len, &used);
			if (used > len)
				abort();
			off += used;
			if (rc == 0 && used != len)
				abort();
		}
		if (rc < 0) {
			out[k++] = rc;
			break;
		}
		if (rc == HTTP_DONE) {
			struct http_response r;
			size_t i, sum = 0;

			if (http_parser_response(&p, &r) != 0) {
				out[k++] = -1;
				break;
			}
			if (r.nheaders > lim->max_headers || r.body_len > lim->max_body ||
			    (head && r.body_len) || r.status < 200 || r.status > 599)
				abort();
			for (i = 0; i < r.nheaders; i++)
				sum += strlen(r.headers[i].name) + strlen(r.headers[i].value);
			for (i = 0; i < r.body_len; i++)
				sum += r.body[i];
			sink += sum;
			(void)http_response_header(&r, "content-length");
			free(r.body);
			out[k++] = r.status * 100000L + (long)(r.body_len % 100000);
			if (!p.keep_alive || off == n)
				break;
			http_parser_reset(&p);
		}
	}
	http_parser_free(&p);
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const struct http_limits small = { 256, 8, 64 };
	static const struct http_limits big = { HTTP_DEFAULT_MAX_HEADER_BYTES, HTTP_DEFAULT_MAX_HEADERS, 1 << 20 };
	long whole[MAX_RESPONSES], cut[MAX_RESPONSES];
	const struct http_limits *lim;
	size_t nw, nc;
	int head;

	if (n < 2)
		return 0;
	head = d[0] & 1;
	lim = (d[0] & 2) ? &small : &big;
	nw = run(d + 2, n - 2, lim, head, 0, whole, MAX_RESPONSES);
	nc = run(d + 2, n - 2, lim, head, d[1], cut, MAX_RESPONSES);
	/* Where the stream is cut must not change what it means. */
	if (nw != nc || memcmp(whole, cut, nw * sizeof(whole[0])) != 0)
		abort();
	return 0;
}
