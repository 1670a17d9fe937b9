/*
 * http.c - the HTTP/1.1 client engine (see http.h): request heads out, an
 * incremental response parser in.  No I/O, no clock, no globals.
 *
 * Owns: the parser's head buffer (normalised fields), its field index, the
 * body being gathered, and the small chunk-size line buffer.
 *
 * How a line is gathered: the bytes of the status, header and trailer lines
 * are appended to the head buffer from line_start as they arrive (so a line
 * split across any number of feeds needs no special case) and the raw count
 * is charged to max_header_bytes before they are stored.  When the LF
 * arrives the whole line is checked and rewritten in place into
 * "name\0value\0" (the normal form is never longer than the raw line), or
 * dropped (status line, trailers, interim responses).  Chunk-size lines go
 * to the fixed cline[] instead, since they are not part of the head.
 *
 * Invariants:
 *   1. head.len == line_start + (bytes of the line being gathered); every
 *      field before line_start is complete and normalised.
 *   2. head_bytes <= lim.max_header_bytes, and head.len <= head_bytes, so
 *      field offsets fit the uint32_t of struct http_field (the cap is
 *      clamped below 4 GiB at init).
 *   3. body.len <= lim.max_body at every step: each length the server
 *      states is compared with what is left of the cap before any byte of
 *      it is stored.
 *   4. Once state is ERROR it stays so and err holds the first error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http.h"

/* ---- characters (RFC 9110 5.6.2, 5.5) ---- */

static int is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte allowed in a field value or reason phrase: VCHAR, SP, HTAB, obs-text. */
static int is_vbyte(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- requests ---- */

static int str_is_token(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!is_tchar((uint8_t)*s))
			return 0;
	return 1;
}

static int str_is_value(const char *s)
{
	if (!s)
		return 0;
	for (; *s; s++)
		if (!is_vbyte((uint8_t)*s))
			return 0;
	return 1;
}

/* Origin-form targets are visible ASCII without spaces. */
static int str_is_target(const char *s)
{
	if (!s || *s != '/')
		return 0;
	for (; *s; s++)
		if ((uint8_t)*s <= 0x20 || (uint8_t)*s >= 0x7f)
			return 0;
	return 1;
}

static int is_framing_field(const char *name)
{
	return strcasecmp(name, "host") == 0 || strcasecmp(name, "content-length") == 0 ||
	       strcasecmp(name, "transfer-encoding") == 0 || strcasecmp(name, "connection") == 0;
}

static void wr_str(struct sl_wr *w, const char *s)
{
	(void)wr_bytes(w, s, strlen(s));
}

int http_write_head(struct sl_wr *w, const struct http_request *req)
{
	size_t i;

	if (!str_is_token(req->method) || !str_is_target(req->target) ||
	    !req->host || !*req->host || !str_is_value(req->host))
		return SL_E_INVALID;
	for (i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (!str_is_token(h->name) || !str_is_value(h->value) || is_framing_field(h->name))
			return SL_E_INVALID;
	}
	wr_str(w, req->method);
	wr_str(w, " ");
	wr_str(w, req->target);
	wr_str(w, " HTTP/1.1\r\nHost: ");
	wr_str(w, req->host);
	wr_str(w, "\r\n");
	for (i = 0; i < req->nheaders; i++) {
		wr_str(w, req->headers[i].name);
		wr_str(w, ": ");
		wr_str(w, req->headers[i].value);
		wr_str(w, "\r\n");
	}
	if (req->body_len > 0 || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
		char cl[48];

		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", req->body_len);
		wr_str(w, cl);
	}
	wr_str(w, "\r\n");
	return w->err;
}

/* ---- the parser: setup ---- */

void http_parser_init(struct http_parser *p, const struct http_limits *lim, int head_request)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
	if (p->lim.max_header_bytes > UINT32_MAX - 1)
		p->lim.max_header_bytes = UINT32_MAX - 1;
	p->head_request = head_request;
	p->state = HTTP_S_STATUS;
	wr_init(&p->head, 0);
	wr_init(&p->body, 0);
}

void http_parser_free(struct http_parser *p)
{
	wr_free(&p->head);
	wr_free(&p->body);
	free(p->fields);
	p->fields = NULL;
	free(p->hdrs);
	p->hdrs = NULL;
	p->nfields = p->capfields = 0;
}

void http_parser_reset(struct http_parser *p)
{
	struct http_limits lim = p->lim;
	int head_request = p->head_request;

	http_parser_free(p);
	http_parser_init(p, &lim, head_request);
}

static int fail(struct http_parser *p, int err)
{
	if (p->state != HTTP_S_ERROR) {
		p->state = HTTP_S_ERROR;
		p->err = err;
	}
	return p->err;
}

/* ---- the parser: lines ---- */

/*
 * Move input up to and including the next LF into the head buffer.
 * 1: a line is complete; 0: the input ran out first; <0: error.
 */
static int take_line(struct http_parser *p, struct sl_rd *in)
{
	struct sl_rd peek = *in;
	size_t n = rd_left(in), k;
	const uint8_t *s, *lf;
	int rc;

	if (rd_bytes(&peek, n, &s) != 0)
		return SL_E_INVALID;
	lf = memchr(s, '\n', n);
	k = lf ? (size_t)(lf - s) + 1 : n;
	if (p->state == HTTP_S_STATUS) {
		/*
		 * Fail at once on a peer that is not speaking HTTP at all.  Checked
		 * before the cap so that the verdict does not depend on how the
		 * bytes were split.
		 */
		size_t got = p->head.len - p->line_start, i;

		for (i = 0; got + i < 5 && i < k; i++)
			if (s[i] != "HTTP/"[got + i])
				return SL_E_PROTO;
	}
	if (k > p->lim.max_header_bytes - p->head_bytes)
		return SL_E_TOOBIG;
	rc = wr_bytes(&p->head, s, k);
	if (rc != 0)
		return rc;
	if (rd_skip(in, k) != 0)
		return SL_E_INVALID;
	p->head_bytes += k;
	return lf != NULL;
}

/* The gathered line without its CRLF; SL_E_PROTO if it ends in a bare LF. */
static int line_body(struct http_parser *p, uint8_t **line, size_t *len)
{
	size_t n = p->head.len - p->line_start;
	uint8_t *l = p->head.p + p->line_start;

	if (n < 2 || l[n - 2] != '\r')
		return SL_E_PROTO;
	*line = l;
	*len = n - 2;
	return 0;
}

static int parse_status(struct http_parser *p)
{
	uint8_t *l;
	size_t n, i;
	int rc = line_body(p, &l, &n);

	if (rc != 0)
		return rc;
	/* "HTTP/1.x 200" then optionally " reason". */
	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
		return SL_E_PROTO;
	if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9')
		return SL_E_PROTO;
	if (n > 12 && l[12] != ' ')
		return SL_E_PROTO;
	for (i = 13; i < n; i++)
		if (!is_vbyte(l[i]))
			return SL_E_PROTO;
	p->minor = l[7] - '0';
	p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	p->head.len = p->line_start;
	p->state = HTTP_S_HEADERS;
	p->fold_ok = 0;
	return 0;
}

static int add_field(struct http_parser *p, size_t name_off, size_t value_off)
{
	if (p->nfields == p->capfields) {
		size_t n = p->capfields ? p->capfields * 2 : 16;
		struct http_field *nf;

		if (n > p->lim.max_headers)
			n = p->lim.max_headers;
		nf = realloc(p->fields, n * sizeof(*nf));
		if (!nf)
			return SL_E_NOMEM;
		p->fields = nf;
		p->capfields = n;
	}
	p->fields[p->nfields].name_off = (uint32_t)name_off;
	p->fields[p->nfields].value_off = (uint32_t)value_off;
	p->nfields++;
	return 0;
}

static int headers_done(struct http_parser *p);

/*
 * One header or trailer line.  Trailers (discard) are checked like header
 * fields and counted against the caps, then dropped.
 */
static int parse_field(struct http_parser *p, int discard)
{
	uint8_t *l;
	size_t n, i, j, e;
	int rc = line_body(p, &l, &n);

	if (rc != 0)
		return rc;
	if (n == 0) {
		p->head.len = p->line_start;
		if (discard) {
			p->state = HTTP_S_DONE;
			return 0;
		}
		return headers_done(p);
	}
	if (is_ws(l[0])) {
		/* obs-fold: joined to the previous value with one SP. */
		if (!p->fold_ok)
			return SL_E_PROTO;
		for (j = 0; j < n && is_ws(l[j]); j++)
			;
		for (e = n; e > j && is_ws(l[e - 1]); e--)
			;
		for (i = j; i < e; i++)
			if (!is_vbyte(l[i]))
				return SL_E_PROTO;
		if (discard || e == j) {
			p->head.len = p->line_start;
			return 0;
		}
		/* The previous value's NUL sits just before line_start. */
		p->head.p[p->line_start - 1] = ' ';
		memmove(l, l + j, e - j);
		l[e - j] = '\0';
		p->head.len = p->line_start + (e - j) + 1;
		p->line_start = p->head.len;
		return 0;
	}
	for (i = 0; i < n && is_tchar(l[i]); i++)
		;
	if (i == 0 || i == n || l[i] != ':')
		return SL_E_PROTO;
	if (++p->nfields_seen > p->lim.max_headers)
		return SL_E_TOOBIG;
	for (j = i + 1; j < n && is_ws(l[j]); j++)
		;
	for (e = n; e > j && is_ws(l[e - 1]); e--)
		;
	for (size_t k = j; k < e; k++)
		if (!is_vbyte(l[k]))
			return SL_E_PROTO;
	p->fold_ok = 1;
	if (discard) {
		p->head.len = p->line_start;
		return 0;
	}
	for (size_t k = 0; k < i; k++)
		if (l[k] >= 'A' && l[k] <= 'Z')
			l[k] = (uint8_t)(l[k] - 'A' + 'a');
	l[i] = '\0';
	memmove(l + i + 1, l + j, e - j);
	l[i + 1 + (e - j)] = '\0';
	rc = add_field(p, p->line_start, p->line_start + i + 1);
	if (rc != 0)
		return rc;
	p->head.len = p->line_start + i + 1 + (e - j) + 1;
	p->line_start = p->head.len;
	return 0;
}

static const char *field_name(const struct http_parser *p, size_t i)
{
	return (const char *)p->head.p + p->fields[i].name_off;
}

static const char *field_value(const struct http_parser *p, size_t i)
{
	return (const char *)p->head.p + p->fields[i].value_off;
}

/* Content-Length: 1*DIGIT, no sign, no list; values above 2^60 are TOOBIG. */
static int parse_length(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return SL_E_PROTO;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return SL_E_PROTO;
		if (x > ((uint64_t)1 << 60))
			return SL_E_TOOBIG;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return 0;
}

/* Note the "close" and "keep-alive" tokens of a Connection value. */
static void parse_connection(struct http_parser *p, const char *v)
{
	while (*v) {
		size_t n;

		while (*v == ',' || is_ws((uint8_t)*v))
			v++;
		for (n = 0; v[n] && v[n] != ',' && !is_ws((uint8_t)v[n]); n++)
			;
		if (n == 5 && strncasecmp(v, "close", 5) == 0)
			p->conn_close = 1;
		else if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
			p->conn_keep = 1;
		v += n;
	}
}

/* The blank line after the fields: decide how the body is framed. */
static int headers_done(struct http_parser *p)
{
	int have_cl = 0, have_te = 0, rc;
	uint64_t cl = 0;
	size_t i;

	if (p->status < 200) {
		/* Interim response: forget it, parse the next one (same caps). */
		if (p->status == 101)
			return SL_E_PROTO;
		p->nfields = 0;
		p->nfields_seen = 0;
		p->head.len = 0;
		p->line_start = 0;
		p->state = HTTP_S_STATUS;
		return 0;
	}
	for (i = 0; i < p->nfields; i++) {
		const char *name = field_name(p, i), *value = field_value(p, i);

		if (strcmp(name, "content-length") == 0) {
			uint64_t v;

			rc = parse_length(value, &v);
			if (rc != 0)
				return rc;
			if (have_cl && v != cl)
				return SL_E_PROTO;
			have_cl = 1;
			cl = v;
		} else if (strcmp(name, "transfer-encoding") == 0) {
			if (have_te || strcasecmp(value, "chunked") != 0)
				return SL_E_PROTO;
			have_te = 1;
		} else if (strcmp(name, "connection") == 0) {
			parse_connection(p, value);
		}
	}
	p->keep_alive = p->minor == 1 ? !p->conn_close : (p->conn_keep && !p->conn_close);
	if (p->head_request || p->status == 204 || p->status == 304) {
		p->state = HTTP_S_DONE;
		return 0;
	}
	if (have_te) {
		/* Both framings at once is how responses get split: refuse it. */
		if (have_cl || p->minor == 0)
			return SL_E_PROTO;
		p->chunked = 1;
		p->cline_len = 0;
		p->state = HTTP_S_CHUNK_SIZE;
		return 0;
	}
	if (have_cl) {
		if (cl > p->lim.max_body)
			return SL_E_TOOBIG;
		if (cl == 0) {
			p->state = HTTP_S_DONE;
			return 0;
		}
		p->body.max = (size_t)cl;
		rc = wr_prepare(&p->body, (size_t)cl);
		if (rc != 0)
			return rc;
		p->remaining = cl;
		p->state = HTTP_S_BODY_LEN;
		return 0;
	}
	p->keep_alive = 0;
	p->state = HTTP_S_BODY_CLOSE;
	return 0;
}

/* chunk = chunk-size [ chunk-ext ] CRLF, the line already in cline[]. */
static int parse_chunk_size(struct http_parser *p)
{
	const uint8_t *l = p->cline;
	size_t n = p->cline_len, i = 0, digits = 0;
	uint64_t v = 0;
	int d;

	if (n < 2 || l[n - 2] != '\r')
		return SL_E_PROTO;
	n -= 2;
	for (; i < n && (d = hexval(l[i])) >= 0; i++) {
		if (v != 0 || d != 0)
			digits++;
		if (digits > 15)
			return SL_E_TOOBIG;
		v = v * 16 + (uint64_t)d;
	}
	if (i == 0)
		return SL_E_PROTO;
	/* Extensions: BWS ";" ..., checked for stray controls, then ignored. */
	while (i < n && is_ws(l[i]))
		i++;
	if (i < n && l[i] != ';')
		return SL_E_PROTO;
	for (; i < n; i++)
		if (!is_vbyte(l[i]))
			return SL_E_PROTO;
	p->cline_len = 0;
	if (v > p->lim.max_body - p->body.len)
		return SL_E_TOOBIG;
	if (v == 0) {
		p->line_start = p->head.len;
		p->fold_ok = 0;
		p->state = HTTP_S_TRAILERS;
		return 0;
	}
	p->body.max = p->lim.max_body;
	p->remaining = v;
	p->state = HTTP_S_CHUNK_DATA;
	return 0;
}

static int take_chunk_line(struct http_parser *p, struct sl_rd *in)
{
	struct sl_rd peek = *in;
	size_t n = rd_left(in), k;
	const uint8_t *s, *lf;

	if (rd_bytes(&peek, n, &s) != 0)
		return SL_E_INVALID;
	lf = memchr(s, '\n', n);
	k = lf ? (size_t)(lf - s) + 1 : n;
	if (k > sizeof(p->cline) - p->cline_len)
		return SL_E_TOOBIG;
	if (rd_copy(in, p->cline + p->cline_len, k) != 0)
		return SL_E_INVALID;
	p->cline_len += k;
	return lf ? parse_chunk_size(p) : 0;
}

/* Move up to limit bytes of body from in. */
static int take_body(struct http_parser *p, struct sl_rd *in, uint64_t limit)
{
	size_t k = rd_left(in);
	const uint8_t *s;

	if (k > limit)
		k = (size_t)limit;
	if (rd_bytes(in, k, &s) != 0)
		return SL_E_INVALID;
	return wr_bytes(&p->body, s, k);
}

static int step(struct http_parser *p, struct sl_rd *in)
{
	int rc;
	uint8_t c;

	switch (p->state) {
	case HTTP_S_STATUS:
	case HTTP_S_HEADERS:
	case HTTP_S_TRAILERS:
		rc = take_line(p, in);
		if (rc <= 0)
			return rc;
		if (p->state == HTTP_S_STATUS)
			return parse_status(p);
		return parse_field(p, p->state == HTTP_S_TRAILERS);
	case HTTP_S_BODY_LEN: {
		size_t before = p->body.len;

		rc = take_body(p, in, p->remaining);
		if (rc != 0)
			return rc;
		p->remaining -= p->body.len - before;
		if (p->remaining == 0)
			p->state = HTTP_S_DONE;
		return 0;
	}
	case HTTP_S_BODY_CLOSE:
		if (rd_left(in) > p->lim.max_body - p->body.len)
			return SL_E_TOOBIG;
		return take_body(p, in, rd_left(in));
	case HTTP_S_CHUNK_SIZE:
		return take_chunk_line(p, in);
	case HTTP_S_CHUNK_DATA: {
		size_t before = p->body.len;

		rc = take_body(p, in, p->remaining);
		if (rc != 0)
			return rc;
		p->remaining -= p->body.len - before;
		if (p->remaining == 0) {
			p->crlf_got = 0;
			p->state = HTTP_S_CHUNK_CRLF;
		}
		return 0;
	}
	case HTTP_S_CHUNK_CRLF:
		if (rd_u8(in, &c) != 0)
			return SL_E_INVALID;
		if (c != (p->crlf_got == 0 ? '\r' : '\n'))
			return SL_E_PROTO;
		if (++p->crlf_got == 2)
			p->state = HTTP_S_CHUNK_SIZE;
		return 0;
	default:
		return SL_E_INVALID;
	}
}

int http_parser_feed(struct http_parser *p, const void *buf, size_t len, size_t *used)
{
	struct sl_rd in;
	int rc = 0;

	*used = 0;
	if (p->state == HTTP_S_ERROR)
		return p->err;
	if (p->state == HTTP_S_DONE)
		return HTTP_DONE;
	rd_init(&in, buf, len);
	while (rd_left(&in) > 0 && p->state != HTTP_S_DONE) {
		rc = step(p, &in);
		if (rc < 0)
			break;
	}
	*used = in.off;
	p->received += in.off;
	if (rc < 0)
		return fail(p, rc);
	return p->state == HTTP_S_DONE ? HTTP_DONE : 0;
}

uint8_t *http_parser_body_room(struct http_parser *p, size_t *room)
{
	size_t free_bytes = p->body.cap - p->body.len;

	*room = 0;
	if (p->state != HTTP_S_BODY_LEN || p->body.err || !p->body.p)
		return NULL;
	*room = p->remaining < free_bytes ? (size_t)p->remaining : free_bytes;
	return *room ? p->body.p + p->body.len : NULL;
}

int http_parser_fed_body(struct http_parser *p, size_t n)
{
	size_t room;

	if (!http_parser_body_room(p, &room) || n > room)
		return fail(p, SL_E_INVALID);
	p->body.len += n;
	p->remaining -= n;
	p->received += n;
	if (p->remaining == 0)
		p->state = HTTP_S_DONE;
	return p->state == HTTP_S_DONE ? HTTP_DONE : 0;
}

int http_parser_eof(struct http_parser *p)
{
	switch (p->state) {
	case HTTP_S_ERROR:
		return p->err;
	case HTTP_S_DONE:
		return HTTP_DONE;
	case HTTP_S_BODY_CLOSE:
		p->keep_alive = 0;
		p->state = HTTP_S_DONE;
		return HTTP_DONE;
	default:
		return fail(p, SL_E_CLOSED);
	}
}

/* ---- results ---- */

int http_parser_response(struct http_parser *p, struct http_response *r)
{
	size_t i;

	if (p->state != HTTP_S_DONE)
		return SL_E_INVALID;
	free(p->hdrs);
	p->hdrs = calloc(p->nfields ? p->nfields : 1, sizeof(*p->hdrs));
	if (!p->hdrs)
		return SL_E_NOMEM;
	for (i = 0; i < p->nfields; i++) {
		p->hdrs[i].name = field_name(p, i);
		p->hdrs[i].value = field_value(p, i);
	}
	r->status = p->status;
	r->minor = p->minor;
	r->headers = p->hdrs;
	r->nheaders = p->nfields;
	r->body = wr_take(&p->body, &r->body_len);
	if (r->body_len == 0) {
		free(r->body);
		r->body = NULL;
	}
	return 0;
}

const char *http_response_header(const struct http_response *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

uint8_t *http_response_take_body(struct http_response *r, size_t *len)
{
	uint8_t *b = r->body;

	*len = r->body_len;
	r->body = NULL;
	r->body_len = 0;
	return b;
}
