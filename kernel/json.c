/*
 * json.c - a strict, bounded JSON reader for flat documents (see json.h).
 *
 * Owns: the recursive-descent reader and the doc it fills.
 *
 * One pass over the input with the struct sl_rd cursor; peek() is the only
 * place that looks at a byte without consuming it, bounded by rd_left().
 * Top-level names and string or number values are appended, each followed
 * by a NUL, to one writer whose room is reserved up front; members record
 * offsets into it and become pointers only once the whole document has been
 * read.
 *
 *   doc:    ws object ws <end of input>
 *   object: '{' ws ( string ws ':' value ( ',' ws string ws ':' value )* )? '}'
 *   array:  '[' ws ( value ( ',' value )* )? ']'
 *   value:  ws ( string | number | object | array | true | false | null ) ws
 *
 * Invariants:
 *   1. Decoded output never outgrows its input: a string literal takes at
 *      least its decoded bytes plus two quotes (the NUL fits in one of
 *      them), a number at least its text plus the delimiter after it.  So
 *      the writer reserved at n + 1 bytes never reallocates, and no copy of
 *      a secret is left behind in freed memory by a move.
 *   2. Recursion is bounded by max_depth, itself at most JSON_DEPTH_HARD.
 *   3. Every decoded string is valid UTF-8 without NUL.
 */
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "json.h"

const struct json_limits json_default_limits = {
	JSON_MAX_BYTES, JSON_MAX_MEMBERS, JSON_MAX_DEPTH,
};

struct jm {
	size_t name_off;
	size_t value_off;	/* (size_t)-1: no stored value */
	size_t value_len;
	enum json_kind kind;
};

struct jp {
	struct sl_rd r;
	unsigned max_depth;
	size_t max_members;
	struct sl_wr s;		/* decoded names and values, NUL after each */
	struct jm *m;
	size_t n, cap;
};

#define NO_VALUE ((size_t)-1)

static int peek(const struct jp *j, uint8_t *c)
{
	if (rd_left(&j->r) == 0)
		return SL_E_PROTO;
	*c = j->r.p[j->r.off];
	return 0;
}

static int get(struct jp *j, uint8_t *c)
{
	return rd_u8(&j->r, c) == 0 ? 0 : SL_E_PROTO;
}

static void skip_ws(struct jp *j)
{
	uint8_t c;

	while (peek(j, &c) == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
		int err = rd_skip(&j->r, 1);

		SL_ASSERT(err == 0);
	}
}

/* Consume the byte c, or fail without consuming. */
static int expect(struct jp *j, uint8_t want)
{
	uint8_t c;

	if (peek(j, &c) != 0 || c != want)
		return SL_E_PROTO;
	return get(j, &c);
}

/* The literal word (after its first byte was seen). */
static int word(struct jp *j, const char *w)
{
	uint8_t c;

	for (; *w; w++)
		if (get(j, &c) != 0 || c != (uint8_t)*w)
			return SL_E_PROTO;
	return 0;
}

static void put(struct jp *j, int store, const void *p, size_t n)
{
	if (store)
		wr_bytes(&j->s, p, n);
}

static void put_utf8(struct jp *j, int store, uint32_t c)
{
	uint8_t b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = (uint8_t)c, n = 1;
	} else if (c < 0x800) {
		b[0] = (uint8_t)(0xC0 | c >> 6), b[1] = (uint8_t)(0x80 | (c & 0x3F)), n = 2;
	} else if (c < 0x10000) {
		b[0] = (uint8_t)(0xE0 | c >> 12), b[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
		b[2] = (uint8_t)(0x80 | (c & 0x3F)), n = 3;
	} else {
		b[0] = (uint8_t)(0xF0 | c >> 18), b[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
		b[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F)), b[3] = (uint8_t)(0x80 | (c & 0x3F));
		n = 4;
	}
	put(j, store, b, n);
}

static int hex4(struct jp *j, uint32_t *v)
{
	uint8_t c;
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		if (get(j, &c) != 0)
			return SL_E_PROTO;
		if (c >= '0' && c <= '9')
			*v = *v << 4 | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v = *v << 4 | (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v = *v << 4 | (uint32_t)(c - 'A' + 10);
		else
			return SL_E_PROTO;
	}
	return 0;
}

/* After a backslash: one escape, decoded. */
static int escape(struct jp *j, int store)
{
	uint32_t hi, lo;
	uint8_t c;

	if (get(j, &c) != 0)
		return SL_E_PROTO;
	switch (c) {
	case '"': case '\\': case '/':
		put(j, store, &c, 1);
		return 0;
	case 'b': c = '\b'; break;
	case 'f': c = '\f'; break;
	case 'n': c = '\n'; break;
	case 'r': c = '\r'; break;
	case 't': c = '\t'; break;
	case 'u':
		if (hex4(j, &hi) != 0 || hi == 0)
			return SL_E_PROTO;
		if (hi >= 0xDC00 && hi <= 0xDFFF)
			return SL_E_PROTO;	/* a low surrogate first */
		if (hi >= 0xD800 && hi <= 0xDBFF) {
			if (get(j, &c) != 0 || c != '\\' || get(j, &c) != 0 || c != 'u' ||
			    hex4(j, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
				return SL_E_PROTO;
			hi = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
		}
		put_utf8(j, store, hi);
		return 0;
	default:
		return SL_E_PROTO;
	}
	put(j, store, &c, 1);
	return 0;
}

/* A raw UTF-8 sequence whose lead byte b (>= 0x80) was just read. */
static int utf8_tail(struct jp *j, int store, uint8_t b)
{
	uint32_t c, min;
	size_t n, i;
	uint8_t t;

	if (b >= 0xC2 && b <= 0xDF)
		n = 2, c = b & 0x1F, min = 0x80;
	else if (b >= 0xE0 && b <= 0xEF)
		n = 3, c = b & 0x0F, min = 0x800;
	else if (b >= 0xF0 && b <= 0xF4)
		n = 4, c = b & 0x07, min = 0x10000;
	else
		return SL_E_PROTO;
	for (i = 1; i < n; i++) {
		if (get(j, &t) != 0 || (t & 0xC0) != 0x80)
			return SL_E_PROTO;
		c = c << 6 | (t & 0x3F);
	}
	if (c < min || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
		return SL_E_PROTO;
	put_utf8(j, store, c);
	return 0;
}

/*
 * A string at the cursor (starting with its quote).  With store, its
 * decoded bytes and a NUL go to the writer: *off and *len say where.
 */
static int string(struct jp *j, int store, size_t *off, size_t *len)
{
	uint8_t c;
	int err;

	if (expect(j, '"') != 0)
		return SL_E_PROTO;
	if (store)
		*off = j->s.len;
	for (;;) {
		if (get(j, &c) != 0)
			return SL_E_PROTO;
		if (c == '"')
			break;
		if (c < 0x20)
			return SL_E_PROTO;
		if (c == '\\')
			err = escape(j, store);
		else if (c >= 0x80)
			err = utf8_tail(j, store, c);
		else
			err = (put(j, store, &c, 1), 0);
		if (err)
			return err;
	}
	if (store) {
		*len = j->s.len - *off;
		wr_u8(&j->s, 0);
	}
	return j->s.err;
}

static int is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Digits: at least one. */
static int digits(struct jp *j)
{
	uint8_t c;

	if (peek(j, &c) != 0 || !is_digit(c))
		return SL_E_PROTO;
	while (peek(j, &c) == 0 && is_digit(c))
		if (get(j, &c) != 0)
			return SL_E_PROTO;
	return 0;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? ; with store, its text goes to the writer. */
static int number(struct jp *j, int store, size_t *off, size_t *len)
{
	size_t start = j->r.off;
	const uint8_t *text;
	uint8_t c;

	if (peek(j, &c) == 0 && c == '-' && get(j, &c) != 0)
		return SL_E_PROTO;
	if (peek(j, &c) != 0 || !is_digit(c))
		return SL_E_PROTO;
	if (c == '0') {
		if (get(j, &c) != 0)
			return SL_E_PROTO;
		if (peek(j, &c) == 0 && is_digit(c))
			return SL_E_PROTO;	/* leading zero */
	} else if (digits(j) != 0) {
		return SL_E_PROTO;
	}
	if (peek(j, &c) == 0 && c == '.') {
		if (get(j, &c) != 0 || digits(j) != 0)
			return SL_E_PROTO;
	}
	if (peek(j, &c) == 0 && (c == 'e' || c == 'E')) {
		if (get(j, &c) != 0)
			return SL_E_PROTO;
		if (peek(j, &c) == 0 && (c == '+' || c == '-') && get(j, &c) != 0)
			return SL_E_PROTO;
		if (digits(j) != 0)
			return SL_E_PROTO;
	}
	if (!store)
		return 0;
	/* Re-read the text just checked, through the cursor. */
	{
		struct sl_rd t;

		rd_init(&t, j->r.p, j->r.off);
		if (rd_skip(&t, start) != 0 || rd_bytes(&t, j->r.off - start, &text) != 0)
			return SL_E_PROTO;
	}
	*off = j->s.len;
	*len = j->r.off - start;
	wr_bytes(&j->s, text, *len);
	wr_u8(&j->s, 0);
	return j->s.err;
}

static int object(struct jp *j, unsigned depth);
static int array(struct jp *j, unsigned depth);

/*
 * One value at depth (that of the container holding it).  m, when not
 * NULL, is the top-level member it belongs to: its kind and stored value.
 */
static int value(struct jp *j, unsigned depth, struct jm *m)
{
	size_t off = NO_VALUE, len = 0;
	enum json_kind kind;
	uint8_t c;
	int err;

	skip_ws(j);
	if (peek(j, &c) != 0)
		return SL_E_PROTO;
	switch (c) {
	case '"':
		kind = JSON_STRING;
		err = string(j, m != NULL, &off, &len);
		break;
	case '{':
		kind = JSON_OBJECT;
		err = object(j, depth + 1);
		break;
	case '[':
		kind = JSON_ARRAY;
		err = array(j, depth + 1);
		break;
	case 't':
		kind = JSON_TRUE;
		err = word(j, "true");
		break;
	case 'f':
		kind = JSON_FALSE;
		err = word(j, "false");
		break;
	case 'n':
		kind = JSON_NULL;
		err = word(j, "null");
		break;
	default:
		kind = JSON_NUMBER;
		err = number(j, m != NULL, &off, &len);
		break;
	}
	if (err)
		return err;
	if (m) {
		m->kind = kind;
		m->value_off = off;
		m->value_len = len;
	}
	skip_ws(j);
	return 0;
}

static int array(struct jp *j, unsigned depth)
{
	uint8_t c;
	int err;

	if (depth > j->max_depth)
		return SL_E_TOOBIG;
	if (expect(j, '[') != 0)
		return SL_E_PROTO;
	skip_ws(j);
	if (expect(j, ']') == 0)
		return 0;
	for (;;) {
		if ((err = value(j, depth, NULL)) != 0)
			return err;
		if (get(j, &c) != 0)
			return SL_E_PROTO;
		if (c == ']')
			return 0;
		if (c != ',')
			return SL_E_PROTO;
	}
}

/* A new top-level member named by the string at offset off; duplicates refused. */
static int add_member(struct jp *j, size_t off, struct jm **out)
{
	const char *name = (const char *)j->s.p + off;
	size_t i;

	for (i = 0; i < j->n; i++)
		if (strcmp((const char *)j->s.p + j->m[i].name_off, name) == 0)
			return SL_E_PROTO;
	if (j->n == j->max_members)
		return SL_E_TOOBIG;
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 8;
		struct jm *m;

		if (cap > j->max_members)
			cap = j->max_members;
		m = realloc(j->m, cap * sizeof(*m));
		if (!m)
			return SL_E_NOMEM;
		j->m = m;
		j->cap = cap;
	}
	*out = &j->m[j->n++];
	(*out)->name_off = off;
	(*out)->value_off = NO_VALUE;
	(*out)->value_len = 0;
	return 0;
}

static int object(struct jp *j, unsigned depth)
{
	int top = depth == 1;
	size_t off = 0, len = 0;
	struct jm *m = NULL;
	uint8_t c;
	int err;

	if (depth > j->max_depth)
		return SL_E_TOOBIG;
	if (expect(j, '{') != 0)
		return SL_E_PROTO;
	skip_ws(j);
	if (expect(j, '}') == 0)
		return 0;
	for (;;) {
		skip_ws(j);
		if ((err = string(j, top, &off, &len)) != 0)
			return err;
		if (top && (err = add_member(j, off, &m)) != 0)
			return err;
		skip_ws(j);
		if (expect(j, ':') != 0)
			return SL_E_PROTO;
		if ((err = value(j, depth, top ? m : NULL)) != 0)
			return err;
		if (get(j, &c) != 0)
			return SL_E_PROTO;
		if (c == '}')
			return 0;
		if (c != ',')
			return SL_E_PROTO;
	}
}

static void wipe_free(struct sl_wr *w)
{
	if (w->p)
		explicit_bzero(w->p, w->cap);
	wr_free(w);
}

int json_parse(struct json_doc *doc, const void *text, size_t len, const struct json_limits *lim)
{
	struct jp j;
	size_t i;
	int err;

	memset(doc, 0, sizeof(*doc));
	if (!lim)
		lim = &json_default_limits;
	if (len > lim->max_bytes)
		return SL_E_TOOBIG;
	memset(&j, 0, sizeof(j));
	rd_init(&j.r, text, len);
	j.max_depth = lim->max_depth < JSON_DEPTH_HARD ? lim->max_depth : JSON_DEPTH_HARD;
	j.max_members = lim->max_members;
	wr_init(&j.s, len + 1);
	if (wr_ensure(&j.s, len + 1) != 0) {
		err = SL_E_NOMEM;
		goto fail;
	}
	skip_ws(&j);
	if ((err = object(&j, 1)) != 0)
		goto fail;
	skip_ws(&j);
	if (rd_left(&j.r) != 0) {
		err = SL_E_PROTO;
		goto fail;
	}
	if (j.s.err) {
		err = j.s.err;
		goto fail;
	}
	SL_ASSERT(j.s.len <= len + 1);
	if (j.n) {
		doc->members = calloc(j.n, sizeof(*doc->members));
		if (!doc->members) {
			err = SL_E_NOMEM;
			goto fail;
		}
	}
	doc->strings_len = j.s.cap;
	doc->strings = (char *)wr_take(&j.s, &i);
	for (i = 0; i < j.n; i++) {
		doc->members[i].name = doc->strings + j.m[i].name_off;
		doc->members[i].kind = j.m[i].kind;
		doc->members[i].value = j.m[i].value_off == NO_VALUE ? NULL :
					doc->strings + j.m[i].value_off;
		doc->members[i].value_len = j.m[i].value_len;
	}
	doc->n = j.n;
	free(j.m);
	return 0;
fail:
	free(j.m);
	wipe_free(&j.s);
	memset(doc, 0, sizeof(*doc));
	doc->err_off = j.r.off;
	return err;
}

void json_free(struct json_doc *doc)
{
	if (doc->strings)
		explicit_bzero(doc->strings, doc->strings_len);
	free(doc->strings);
	free(doc->members);
	memset(doc, 0, sizeof(*doc));
}

const struct json_member *json_get(const struct json_doc *doc, const char *name)
{
	size_t i;

	for (i = 0; i < doc->n; i++)
		if (strcmp(doc->members[i].name, name) == 0)
			return &doc->members[i];
	return NULL;
}

const char *json_get_string(const struct json_doc *doc, const char *name)
{
	const struct json_member *m = json_get(doc, name);

	return m && m->kind == JSON_STRING ? m->value : NULL;
}
