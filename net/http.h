/*
 * http.h - the HTTP/1.1 client engine: requests out, responses in, no I/O.
 *
 * Two halves, neither touching a descriptor or a clock:
 *
 *   http_write_head()   serialises a request line and header block into an
 *                       sl_wr.  The body is not copied: the caller sends it
 *                       after the head (the client does, from the caller's
 *                       own buffer).
 *   struct http_parser  an incremental response parser.  Bytes arrive in
 *                       whatever pieces the network delivers; the parser
 *                       consumes them up to the end of one response and says
 *                       how many it used, so bytes that follow (a pipelined
 *                       or unsolicited response) are left to the caller.
 *
 * Every length the server sends is hostile.  The parser enforces, per
 * response:
 *   - max_header_bytes: raw bytes of the status line, header lines, any
 *     interim 1xx responses and the trailer block, counted as they arrive
 *     (a header line without an end is caught when the cap is reached, not
 *     when the line ends);
 *   - max_headers: header plus trailer fields;
 *   - max_body: body bytes, chosen per request.  A Content-Length above it
 *     fails before anything is allocated; a chunk size is checked before its
 *     data is read.
 * Breaking a cap gives SL_E_TOOBIG; a server breaking HTTP gives SL_E_PROTO;
 * the connection ending before the response did gives SL_E_CLOSED.  The
 * first error sticks: later calls return it again.
 *
 * What is accepted (RFC 9112, read strictly where that is safe for a client):
 *   - "HTTP/1.0" or "HTTP/1.1", three status digits 100-599; lines end in
 *     CRLF (a bare LF or CR is SL_E_PROTO);
 *   - field names are tokens followed directly by ':'; values may hold
 *     visible characters, SP, HTAB and obs-text, never other controls; an
 *     obsolete folded line is joined to the previous value with one SP;
 *   - 1xx responses other than 101 are skipped; 101 is SL_E_PROTO;
 *   - no body for HEAD requests, 204 and 304 (whatever the headers say);
 *   - Transfer-Encoding must be exactly "chunked" (HTTP/1.1 only, never
 *     beside Content-Length); chunk extensions are validated and ignored;
 *     trailers are validated, counted against the caps and discarded;
 *   - Content-Length is digits only; repeated fields must agree;
 *   - neither: the body runs to the close of the connection
 *     (http_parser_eof() ends it) and the connection is not kept.
 *
 * Keep-alive: after a complete response, p->keep_alive says whether the
 * connection may carry another request (HTTP/1.1 without "Connection:
 * close", HTTP/1.0 with "Connection: keep-alive", and never for a body
 * read until close).
 *
 * States:
 *
 *   STATUS -> HEADERS -+-> DONE                      (no body, length 0)
 *     ^         |      +-> BODY_LEN --------> DONE
 *     +-- 1xx --+      +-> BODY_CLOSE --eof-> DONE
 *                      +-> CHUNK_SIZE <-> CHUNK_DATA -> CHUNK_CRLF
 *                               \-> (size 0) TRAILERS -> DONE
 *   any state --bad bytes, cap--> ERROR
 *
 * Ownership: the parser owns its buffers until http_parser_free().  The
 * response view filled by http_parser_response() borrows the header strings
 * from the parser (valid until http_parser_free() or http_parser_reset())
 * and takes the body: response->body is then the caller's, freed with free().
 */
#ifndef SL_NET_HTTP_H
#define SL_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"

/* One header field: NUL-terminated name and value. */
struct http_header {
	const char *name;
	const char *value;
};

/* ---- requests ---- */

struct http_request {
	const char *method;		/* a token: "GET", "PUT", "HEAD", ... */
	const char *target;		/* origin-form, already encoded: "/b/k?x=1" */
	const char *host;		/* the Host field's value */
	const struct http_header *headers;	/* extra fields, sent in order */
	size_t nheaders;
	size_t body_len;		/* bytes the caller sends after the head */
};

/*
 * Append the request line and header block (ending in the blank line) to w.
 * Host comes first; Content-Length is added when body_len > 0 or the method
 * is PUT or POST.  Framing belongs to this layer, so extra fields named
 * Host, Content-Length, Transfer-Encoding or Connection are refused, as is
 * any CR, LF, NUL or other control in a field, the method or the target
 * (SL_E_INVALID: no header injection).  Returns 0 or a negative error; on
 * error w may hold a partial head and should be discarded.
 */
SL_MUST_CHECK int http_write_head(struct sl_wr *w, const struct http_request *req);

/* ---- responses ---- */

struct http_limits {
	size_t max_header_bytes;	/* status line + fields + trailers, raw */
	size_t max_headers;		/* fields + trailer fields */
	size_t max_body;		/* body bytes */
};

/* Defaults for a client: 64 KiB of head, 128 fields. */
#define HTTP_DEFAULT_MAX_HEADER_BYTES (64 * 1024)
#define HTTP_DEFAULT_MAX_HEADERS 128
/* A chunk-size line (size and extensions) longer than this is SL_E_TOOBIG. */
#define HTTP_MAX_CHUNK_LINE 1024

/* A complete response, as handed to users of the engine and the client. */
struct http_response {
	int status;			/* 200, 404, 503, ... */
	int minor;			/* HTTP/1.<minor> */
	const struct http_header *headers;	/* names lower-cased, values trimmed */
	size_t nheaders;
	uint8_t *body;			/* malloc'd, or NULL when body_len is 0 */
	size_t body_len;
};

/* Result of http_parser_feed() when a whole response has been read. */
#define HTTP_DONE 1

struct http_field {
	uint32_t name_off;		/* into the head buffer */
	uint32_t value_off;
};

/* State numbers; private, but used by the inline helpers below. */
enum {
	HTTP_S_STATUS, HTTP_S_HEADERS, HTTP_S_BODY_LEN, HTTP_S_BODY_CLOSE,
	HTTP_S_CHUNK_SIZE, HTTP_S_CHUNK_DATA, HTTP_S_CHUNK_CRLF, HTTP_S_TRAILERS,
	HTTP_S_DONE, HTTP_S_ERROR
};

/* Fields are private to http.c; the struct is public so callers can embed it. */
struct http_parser {
	struct http_limits lim;
	int head_request;		/* the request was HEAD: no body */
	int state;
	int err;			/* sticky error once state is ERROR */
	int status;
	int minor;
	int keep_alive;			/* valid once DONE */
	int chunked;
	int fold_ok;			/* the last line was a field: a fold may follow */
	int conn_close, conn_keep;	/* Connection tokens seen */
	uint64_t remaining;		/* body or chunk bytes still to read */
	size_t head_bytes;		/* raw bytes counted against max_header_bytes */
	size_t nfields_seen;		/* fields and trailer fields counted */
	size_t received;		/* every byte fed, for http_parser_started() */
	size_t line_start;		/* where the line being gathered begins in head */
	struct sl_wr head;		/* normalised fields: "name\0value\0"... */
	struct http_field *fields;
	size_t nfields, capfields;
	struct http_header *hdrs;	/* built by http_parser_response() */
	struct sl_wr body;
	uint8_t cline[HTTP_MAX_CHUNK_LINE];	/* the chunk-size line being gathered */
	size_t cline_len;
	uint8_t crlf_got;		/* bytes of the CRLF after chunk data */
};

/* head_request: the request was HEAD, so the response has no body. */
void http_parser_init(struct http_parser *p, const struct http_limits *lim, int head_request);
/* Back to the state of a fresh init with the same limits; frees what it held. */
void http_parser_reset(struct http_parser *p);
void http_parser_free(struct http_parser *p);

/*
 * Feed len bytes.  *used gets how many were consumed.  Returns 0 when every
 * byte was consumed and more are needed, HTTP_DONE when a response is
 * complete (bytes past it are not consumed; feeding after DONE consumes
 * nothing and returns DONE again), or a negative error.
 */
SL_MUST_CHECK int http_parser_feed(struct http_parser *p, const void *buf, size_t len, size_t *used);
/*
 * While a Content-Length body is being read, where its next bytes may be
 * read straight into, sparing a copy: returns a pointer to *room free bytes
 * (no more than the body still needs), or NULL (*room 0) in any other
 * state.  Bytes read there are handed over with http_parser_fed_body().
 */
uint8_t *http_parser_body_room(struct http_parser *p, size_t *room);
/* n bytes were written at http_parser_body_room(); returns 0 or HTTP_DONE. */
SL_MUST_CHECK int http_parser_fed_body(struct http_parser *p, size_t n);
/*
 * The connection ended cleanly.  Returns HTTP_DONE when that completes a body
 * read until close (or the response was already complete), else SL_E_CLOSED
 * (or the sticky error).
 */
SL_MUST_CHECK int http_parser_eof(struct http_parser *p);
/* Whether any byte of a response arrived since init or reset. */
static inline int http_parser_started(const struct http_parser *p)
{
	return p->received > 0;
}
/* Whether a whole response has been read. */
static inline int http_parser_done(const struct http_parser *p)
{
	return p->state == HTTP_S_DONE;
}

/*
 * Once DONE: fill r.  Header strings stay the parser's; the body becomes the
 * caller's (free() it).  Returns 0, SL_E_NOMEM, or SL_E_INVALID if the
 * response is not complete.  Call at most once per response.
 */
SL_MUST_CHECK int http_parser_response(struct http_parser *p, struct http_response *r);

/* The first field named name (ASCII case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *r, const char *name);
/* Take the body: returns it (or NULL) and clears r->body. The caller free()s. */
uint8_t *http_response_take_body(struct http_response *r, size_t *len);

#endif
