/*
 * s3xml.c - a strict, bounded XML reader and S3's documents (see s3xml.h).
 *
 * Owns: the tokenizer and tree builder, the S3 response parsers built on the
 * tree, and the request-body writers.
 *
 * The reader makes one pass over the input with the struct sl_rd cursor.
 * Open elements sit on a fixed stack (depth capped at S3XML_DEPTH_HARD);
 * every name and decoded text goes into one string writer; nodes go into a
 * growing array whose length is checked against max_elements before it
 * grows.  Only when the whole document has been read do offsets become
 * pointers (the writer may move while it grows).  peek() and lit() are the
 * only places that look at input bytes without consuming them through the
 * cursor, and both are bounded by rd_left().
 *
 *   prolog:  BOM? XMLDecl? (comment | PI | space)*
 *   root:    <name attr*> (text | cdata | comment | element)* </name>
 *   epilog:  (comment | PI | space)*  then the end of input
 *
 * Invariants:
 *   1. Text of an element is appended at the end of the string writer and
 *      nothing else is appended while the element has no child, so when its
 *      first child opens, the (whitespace-only) text can be dropped by
 *      cutting the writer back to where the text began.
 *   2. Every byte copied into a string has been checked as part of a valid
 *      UTF-8 sequence naming an XML character; a reference is decoded only
 *      when it names one.  So every string is valid UTF-8 without NUL.
 *   3. An end tag closes only the element on top of the stack, compared byte
 *      for byte with its start tag's qualified name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s3xml.h"

#define NAME_MAX_BYTES	256
#define S3_XMLNS	"http://s3.amazonaws.com/doc/2006-03-01/"
#define NO_TEXT		((size_t)-1)

const struct s3xml_limits s3xml_default_limits = {
	S3XML_MAX_BYTES, S3XML_MAX_DEPTH, S3XML_MAX_ELEMENTS,
};

/* ---- characters ---- */

static int is_xml_char(uint32_t c)
{
	return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
	       (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

static int is_space(uint32_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * One UTF-8 sequence naming an XML character: *cp gets it, *raw and *len the
 * bytes.  Overlong forms, surrogates and values past U+10FFFF are refused.
 * Consumes nothing on error.
 */
static int utf8_get(struct sl_rd *r, uint32_t *cp, const uint8_t **raw, size_t *len)
{
	size_t save = r->off, n, i;
	const uint8_t *p;
	uint32_t c, min;
	uint8_t b;

	if (rd_u8(r, &b) != 0)
		return SL_E_PROTO;
	if (b < 0x80) {
		n = 1, c = b, min = 0;
	} else if (b >= 0xC2 && b <= 0xDF) {
		n = 2, c = b & 0x1F, min = 0x80;
	} else if (b >= 0xE0 && b <= 0xEF) {
		n = 3, c = b & 0x0F, min = 0x800;
	} else if (b >= 0xF0 && b <= 0xF4) {
		n = 4, c = b & 0x07, min = 0x10000;
	} else {
		r->off = save;
		return SL_E_PROTO;
	}
	for (i = 1; i < n; i++) {
		if (rd_u8(r, &b) != 0 || (b & 0xC0) != 0x80) {
			r->off = save;
			return SL_E_PROTO;
		}
		c = c << 6 | (b & 0x3F);
	}
	if (c < min || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF || !is_xml_char(c)) {
		r->off = save;
		return SL_E_PROTO;
	}
	r->off = save;
	if (rd_bytes(r, n, &p) != 0)
		return SL_E_PROTO;
	*cp = c;
	*raw = p;
	*len = n;
	return 0;
}

static void put_utf8(struct sl_wr *w, uint32_t c)
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
	wr_bytes(w, b, n);
}

/* ---- the parser ---- */

struct pnode {
	size_t name_off;
	size_t text_off;		/* NO_TEXT for an element with children */
	size_t text_len;
	int32_t first_child, next_sibling, last_child;
	uint32_t depth;
};

struct open_el {
	int32_t node;
	const uint8_t *qname;		/* borrowed from the input */
	size_t qlen;
	size_t text_off;		/* where this element's text starts */
	int has_child;
	int text_nonws;			/* its text so far is not all whitespace */
};

struct xp {
	struct sl_rd r;
	const struct s3xml_limits *lim;
	struct sl_wr s;			/* names and texts */
	struct pnode *nodes;
	size_t nnodes, cap;
	struct open_el stack[S3XML_DEPTH_HARD];
	unsigned depth;
};

/* The byte i positions ahead, if there is one. */
static int peek(const struct xp *x, size_t i, uint8_t *c)
{
	if (i >= rd_left(&x->r))
		return SL_E_PROTO;
	*c = x->r.p[x->r.off + i];
	return 0;
}

/* Whether the input continues with the string s (nothing consumed). */
static int lit(const struct xp *x, const char *s)
{
	size_t n = strlen(s);

	return rd_left(&x->r) >= n && memcmp(x->r.p + x->r.off, s, n) == 0;
}

/* Step over n bytes the caller has already seen with peek() or lit(). */
static void adv(struct xp *x, size_t n)
{
	int err = rd_skip(&x->r, n);

	SL_ASSERT(err == 0);
}

static int skip(struct xp *x, size_t n)
{
	return rd_skip(&x->r, n) == 0 ? 0 : SL_E_PROTO;
}

/* Skip XML whitespace; returns how many bytes were skipped. */
static size_t skip_ws(struct xp *x)
{
	size_t n = 0;
	uint8_t c;

	while (peek(x, 0, &c) == 0 && is_space(c)) {
		adv(x, 1);
		n++;
	}
	return n;
}

static int name_start(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static int name_char(uint8_t c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/*
 * A name: *q and *qlen get the qualified name (borrowed), *local the offset
 * of its local part within it.  Non-ASCII bytes must form valid UTF-8.
 */
static int read_name(struct xp *x, const uint8_t **q, size_t *qlen, size_t *local)
{
	size_t start = x->r.off, n = 0, loc = 0;
	const uint8_t *raw;
	uint32_t cp;
	size_t len;
	uint8_t c;

	if (peek(x, 0, &c) != 0 || !name_start(c))
		return SL_E_PROTO;
	while (peek(x, 0, &c) == 0 && name_char(c)) {
		if (c >= 0x80) {
			if (utf8_get(&x->r, &cp, &raw, &len) != 0)
				return SL_E_PROTO;
		} else {
			adv(x, 1);
			len = 1;
			if (c == ':')
				loc = n + 1;
		}
		n += len;
		if (n > NAME_MAX_BYTES)
			return SL_E_TOOBIG;
	}
	if (loc == n)		/* "a:" has no local part */
		return SL_E_PROTO;
	x->r.off = start;
	if (rd_bytes(&x->r, n, q) != 0)
		return SL_E_PROTO;
	*qlen = n;
	*local = loc;
	return 0;
}

/*
 * A reference after its '&': *cp gets the character it names.  Only the
 * five predefined entities and numeric references to XML characters.
 */
static int read_ref(struct xp *x, uint32_t *cp)
{
	static const struct { const char *name; uint32_t c; } ents[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	uint32_t v = 0;
	unsigned base = 10, digits = 0, d;
	size_t i;
	uint8_t c;

	for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		if (lit(x, ents[i].name)) {
			*cp = ents[i].c;
			return skip(x, strlen(ents[i].name));
		}
	}
	if (!lit(x, "#"))
		return SL_E_PROTO;
	adv(x, 1);
	if (lit(x, "x")) {
		base = 16;
		adv(x, 1);
	}
	for (;;) {
		if (rd_u8(&x->r, &c) != 0)
			return SL_E_PROTO;
		if (c == ';')
			break;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return SL_E_PROTO;
		v = v * base + d;
		/* Past U+10FFFF is wrong whatever follows; stop before overflow. */
		if (v > 0x10FFFF || ++digits > 16)
			return SL_E_PROTO;
	}
	if (!digits || !is_xml_char(v))
		return SL_E_PROTO;
	*cp = v;
	return 0;
}

/*
 * Character data up to '<' (text) or up to the terminator (CDATA, when term
 * is not NULL), appended to the string writer when keep.  *nonws is set when
 * a character other than whitespace is seen.
 */
static int read_chars(struct xp *x, int keep, const char *term, int *nonws)
{
	const uint8_t *raw;
	uint32_t cp;
	size_t len;
	uint8_t c;
	int err;

	for (;;) {
		if (term) {
			if (lit(x, term))
				return skip(x, strlen(term));
			if (peek(x, 0, &c) != 0)
				return SL_E_PROTO;
		} else if (peek(x, 0, &c) != 0 || c == '<') {
			return 0;	/* the caller sees the end of input */
		}
		if (c == '&' && !term) {
			adv(x, 1);
			if ((err = read_ref(x, &cp)) != 0)
				return err;
			if (keep)
				put_utf8(&x->s, cp);
		} else if (c == '\r') {
			/* CR LF and a lone CR both read as LF. */
			adv(x, 1);
			if (peek(x, 0, &c) == 0 && c == '\n')
				adv(x, 1);
			cp = '\n';
			if (keep)
				wr_u8(&x->s, '\n');
		} else {
			if (utf8_get(&x->r, &cp, &raw, &len) != 0)
				return SL_E_PROTO;
			if (keep)
				wr_bytes(&x->s, raw, len);
		}
		if (!is_space(cp))
			*nonws = 1;
		if (x->s.err)
			return x->s.err;
	}
}

/* Skip past term, checking that what is skipped is characters. */
static int skip_until(struct xp *x, const char *term)
{
	const uint8_t *raw;
	uint32_t cp;
	size_t len;

	while (!lit(x, term))
		if (utf8_get(&x->r, &cp, &raw, &len) != 0)
			return SL_E_PROTO;
	return skip(x, strlen(term));
}

/* "<!--" ... "-->"; "--" may not occur inside. */
static int read_comment(struct xp *x)
{
	const uint8_t *raw;
	uint32_t cp;
	size_t len;

	if (skip(x, 4) != 0)
		return SL_E_PROTO;
	while (!lit(x, "--"))
		if (utf8_get(&x->r, &cp, &raw, &len) != 0)
			return SL_E_PROTO;
	return lit(x, "-->") ? skip(x, 3) : SL_E_PROTO;
}

/* Whether the input continues with an XML declaration ("<?xml-x" is a PI). */
static int is_decl(const struct xp *x)
{
	uint8_t c;

	return lit(x, "<?xml") && peek(x, 5, &c) == 0 && (is_space(c) || c == '?');
}

/* Comments, processing instructions and whitespace outside the root. */
static int read_misc(struct xp *x)
{
	int err;

	for (;;) {
		skip_ws(x);
		if (lit(x, "<!--")) {
			if ((err = read_comment(x)) != 0)
				return err;
		} else if (lit(x, "<?")) {
			/* The declaration only at the very start (parse_body). */
			if (is_decl(x))
				return SL_E_PROTO;
			if ((err = skip_until(x, "?>")) != 0)
				return err;
		} else {
			return 0;
		}
	}
}

/* An attribute value after its opening quote: checked, then dropped. */
static int read_attr_value(struct xp *x, uint8_t quote)
{
	const uint8_t *raw;
	uint32_t cp;
	size_t len;
	uint8_t c;
	int err;

	for (;;) {
		if (peek(x, 0, &c) != 0 || c == '<')
			return SL_E_PROTO;
		if (c == quote)
			return skip(x, 1);
		if (c == '&') {
			adv(x, 1);
			if ((err = read_ref(x, &cp)) != 0)
				return err;
		} else if (utf8_get(&x->r, &cp, &raw, &len) != 0) {
			return SL_E_PROTO;
		}
	}
}

static int new_node(struct xp *x, int32_t *idx)
{
	struct pnode *np;
	size_t ncap;

	if (x->nnodes >= x->lim->max_elements || x->nnodes >= INT32_MAX)
		return SL_E_TOOBIG;
	if (x->nnodes == x->cap) {
		ncap = x->cap ? x->cap * 2 : 64;
		if (ncap > x->lim->max_elements)
			ncap = x->lim->max_elements;
		np = realloc(x->nodes, ncap * sizeof(*np));
		if (!np)
			return SL_E_NOMEM;
		x->nodes = np;
		x->cap = ncap;
	}
	*idx = (int32_t)x->nnodes++;
	return 0;
}

/* Close the element on top of the stack. */
static int close_el(struct xp *x)
{
	struct open_el *e = &x->stack[--x->depth];
	struct pnode *n = &x->nodes[e->node];

	if (e->has_child) {
		n->text_off = NO_TEXT;
		n->text_len = 0;
	} else {
		n->text_off = e->text_off;
		n->text_len = x->s.len - e->text_off;
		wr_u8(&x->s, '\0');
	}
	return x->s.err;
}

/* A start tag after its '<'. */
static int read_start(struct xp *x)
{
	const uint8_t *q;
	size_t qlen, local;
	struct open_el *parent = x->depth ? &x->stack[x->depth - 1] : NULL;
	struct pnode *n;
	int32_t idx;
	uint8_t c;
	int err;

	if ((err = read_name(x, &q, &qlen, &local)) != 0)
		return err;
	if (x->depth + 1 > x->lim->max_depth || x->depth + 1 > S3XML_DEPTH_HARD)
		return SL_E_TOOBIG;
	if (parent && !parent->has_child) {
		/* Invariant 1: drop the parent's whitespace, refuse mixed content. */
		if (parent->text_nonws)
			return SL_E_PROTO;
		x->s.len = parent->text_off;
		parent->has_child = 1;
	}
	if ((err = new_node(x, &idx)) != 0)
		return err;
	n = &x->nodes[idx];
	n->name_off = x->s.len;
	n->text_off = NO_TEXT;
	n->text_len = 0;
	n->first_child = n->next_sibling = n->last_child = -1;
	n->depth = x->depth + 1;
	wr_bytes(&x->s, q + local, qlen - local);
	wr_u8(&x->s, '\0');
	if (x->s.err)
		return x->s.err;
	if (parent) {
		struct pnode *p = &x->nodes[parent->node];

		if (p->last_child < 0)
			p->first_child = idx;
		else
			x->nodes[p->last_child].next_sibling = idx;
		p->last_child = idx;
	}
	x->stack[x->depth].node = idx;
	x->stack[x->depth].qname = q;
	x->stack[x->depth].qlen = qlen;
	x->stack[x->depth].text_off = x->s.len;
	x->stack[x->depth].has_child = 0;
	x->stack[x->depth].text_nonws = 0;
	x->depth++;

	for (;;) {
		size_t ws = skip_ws(x);
		const uint8_t *an;
		size_t alen, aloc;

		if (lit(x, "/>")) {
			adv(x, 2);
			return close_el(x);
		}
		if (lit(x, ">"))
			return skip(x, 1);
		if (!ws)
			return SL_E_PROTO;
		if ((err = read_name(x, &an, &alen, &aloc)) != 0)
			return err;
		skip_ws(x);
		if (!lit(x, "="))
			return SL_E_PROTO;
		adv(x, 1);
		skip_ws(x);
		if (peek(x, 0, &c) != 0 || (c != '"' && c != '\''))
			return SL_E_PROTO;
		adv(x, 1);
		if ((err = read_attr_value(x, c)) != 0)
			return err;
	}
}

/* An end tag after its "</": must close the element on top (invariant 3). */
static int read_end(struct xp *x)
{
	struct open_el *e = &x->stack[x->depth - 1];
	const uint8_t *q;
	size_t qlen, local;
	int err;

	if ((err = read_name(x, &q, &qlen, &local)) != 0)
		return err;
	if (qlen != e->qlen || memcmp(q, e->qname, qlen) != 0)
		return SL_E_PROTO;
	skip_ws(x);
	if (!lit(x, ">"))
		return SL_E_PROTO;
	adv(x, 1);
	return close_el(x);
}

static int parse_body(struct xp *x)
{
	struct open_el *e;
	int err;

	if (lit(x, "\xEF\xBB\xBF"))
		adv(x, 3);
	if (is_decl(x) && (err = skip_until(x, "?>")) != 0)
		return err;
	if ((err = read_misc(x)) != 0)
		return err;
	if (lit(x, "<!"))		/* DOCTYPE above all: no DTDs */
		return SL_E_PROTO;
	if (!lit(x, "<") || lit(x, "</"))
		return SL_E_PROTO;
	adv(x, 1);
	if ((err = read_start(x)) != 0)
		return err;
	while (x->depth > 0) {
		e = &x->stack[x->depth - 1];
		if (lit(x, "</")) {
			adv(x, 2);
			err = read_end(x);
		} else if (lit(x, "<!--")) {
			err = read_comment(x);
		} else if (lit(x, "<![CDATA[")) {
			adv(x, 9);
			err = read_chars(x, !e->has_child, "]]>", &e->text_nonws);
			if (!err && e->has_child && e->text_nonws)
				err = SL_E_PROTO;	/* text beside children */
		} else if (lit(x, "<?") || lit(x, "<!")) {
			err = SL_E_PROTO;
		} else if (lit(x, "<")) {
			adv(x, 1);
			err = read_start(x);
		} else if (rd_left(&x->r) == 0) {
			err = SL_E_PROTO;	/* cut short */
		} else {
			err = read_chars(x, !e->has_child, NULL, &e->text_nonws);
			if (!err && e->has_child && e->text_nonws)
				err = SL_E_PROTO;	/* text beside children */
		}
		if (err)
			return err;
	}
	if ((err = read_misc(x)) != 0)
		return err;
	return rd_left(&x->r) == 0 ? 0 : SL_E_PROTO;
}

void s3xml_doc_free(struct s3xml_doc *doc)
{
	free(doc->nodes);
	free(doc->strings);
	doc->nodes = NULL;
	doc->strings = NULL;
	doc->nnodes = 0;
}

int s3xml_parse(const void *p, size_t n, const struct s3xml_limits *lim, struct s3xml_doc *doc)
{
	struct xp x;
	size_t i, slen;
	int err;

	memset(doc, 0, sizeof(*doc));
	if (!lim)
		lim = &s3xml_default_limits;
	if (n > lim->max_bytes)
		return SL_E_TOOBIG;
	memset(&x, 0, sizeof(x));
	rd_init(&x.r, p, n);
	x.lim = lim;
	/* Decoded text never outgrows its source; names and NULs add at most
	 * one byte per input byte. */
	wr_init(&x.s, 2 * n + 1);
	if ((err = parse_body(&x)) != 0)
		goto fail;
	doc->nodes = calloc(x.nnodes, sizeof(*doc->nodes));
	if (!doc->nodes) {
		err = SL_E_NOMEM;
		goto fail;
	}
	doc->strings = (char *)wr_take(&x.s, &slen);
	for (i = 0; i < x.nnodes; i++) {
		doc->nodes[i].name = doc->strings + x.nodes[i].name_off;
		doc->nodes[i].text = x.nodes[i].text_off == NO_TEXT ? "" :
				     doc->strings + x.nodes[i].text_off;
		doc->nodes[i].text_len = x.nodes[i].text_len;
		doc->nodes[i].first_child = x.nodes[i].first_child;
		doc->nodes[i].next_sibling = x.nodes[i].next_sibling;
		doc->nodes[i].depth = x.nodes[i].depth;
	}
	doc->nnodes = x.nnodes;
	free(x.nodes);
	return 0;
fail:
	free(x.nodes);
	wr_free(&x.s);
	s3xml_doc_free(doc);
	return err;
}

static const struct s3xml_node *find(const struct s3xml_doc *d, int32_t i, const char *name)
{
	while (i >= 0 && (size_t)i < d->nnodes) {
		if (!name || strcmp(d->nodes[i].name, name) == 0)
			return &d->nodes[i];
		i = d->nodes[i].next_sibling;
	}
	return NULL;
}

const struct s3xml_node *s3xml_child(const struct s3xml_doc *d, const struct s3xml_node *parent,
				     const char *name)
{
	return parent ? find(d, parent->first_child, name) : NULL;
}

const struct s3xml_node *s3xml_next(const struct s3xml_doc *d, const struct s3xml_node *node,
				    const char *name)
{
	return node ? find(d, node->next_sibling, name) : NULL;
}

/* ---- S3 documents ---- */

/* Parse and check the root's name; SL_E_REMOTE when it is an <Error>. */
static int open_doc(const void *p, size_t n, const struct s3xml_limits *lim, const char *root,
		    struct s3xml_doc *d)
{
	int err = s3xml_parse(p, n, lim, d);

	if (err)
		return err;
	if (strcmp(d->nodes[0].name, root) != 0) {
		err = strcmp(d->nodes[0].name, "Error") == 0 ? SL_E_REMOTE : SL_E_PROTO;
		s3xml_doc_free(d);
	}
	return err;
}

/*
 * The text of the only child of parent named name: *out NULL when there is
 * none.  Several, or one with child elements, is a protocol error.
 */
static int field(const struct s3xml_doc *d, const struct s3xml_node *parent, const char *name,
		 const char **out)
{
	const struct s3xml_node *c = s3xml_child(d, parent, name);

	*out = NULL;
	if (!c)
		return 0;
	if (c->first_child >= 0 || s3xml_next(d, c, name))
		return SL_E_PROTO;
	*out = c->text;
	return 0;
}

/* As field(), but absent or empty is a protocol error. */
static int need(const struct s3xml_doc *d, const struct s3xml_node *parent, const char *name,
		const char **out)
{
	int err = field(d, parent, name, out);

	if (!err && (!*out || !**out))
		err = SL_E_PROTO;
	return err;
}

static int parse_u64(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (!s || !s[0])
		return SL_E_PROTO;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return SL_E_PROTO;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

static int parse_bool(const char *s, int *v)
{
	if (s && strcmp(s, "true") == 0)
		*v = 1;
	else if (s && strcmp(s, "false") == 0)
		*v = 0;
	else
		return SL_E_PROTO;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n decimal digits at s into *v. */
static int digits(const char *s, unsigned n, unsigned *v)
{
	unsigned i, x = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	*v = x;
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z", as S3 writes LastModified, to ms. */
static int parse_time(const char *s, int64_t *ms)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec, frac = 0, scale = 100, i;
	size_t n = strlen(s);

	if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || s[10] != 'T' || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
		return SL_E_PROTO;
	i = 19;
	if (s[i] == '.') {
		for (i++; s[i] >= '0' && s[i] <= '9' && i < 29; i++) {
			frac += (unsigned)(s[i] - '0') * scale;
			scale /= 10;
		}
		if (s[i - 1] == '.')
			return SL_E_PROTO;
	}
	if (s[i] != 'Z' || s[i + 1] != '\0')
		return SL_E_PROTO;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 59)
		return SL_E_PROTO;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return SL_E_PROTO;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
	return 0;
}

/* Count children of parent named name. */
static size_t count(const struct s3xml_doc *d, const struct s3xml_node *parent, const char *name)
{
	const struct s3xml_node *c;
	size_t n = 0;

	for (c = s3xml_child(d, parent, name); c; c = s3xml_next(d, c, name))
		n++;
	return n;
}

void s3xml_error_free(struct s3xml_error *e)
{
	free(e->mem_);
	memset(e, 0, sizeof(*e));
}

int s3xml_parse_error(const void *p, size_t n, const struct s3xml_limits *lim,
		      struct s3xml_error *out)
{
	struct s3xml_doc d;
	const struct s3xml_node *root;
	const char *code, *msg, *rid, *res;
	int err;

	memset(out, 0, sizeof(*out));
	if ((err = open_doc(p, n, lim, "Error", &d)) != 0)
		return err == SL_E_REMOTE ? SL_E_PROTO : err;
	root = &d.nodes[0];
	if ((err = need(&d, root, "Code", &code)) != 0 ||
	    (err = field(&d, root, "Message", &msg)) != 0 ||
	    (err = field(&d, root, "RequestId", &rid)) != 0 ||
	    (err = field(&d, root, "Resource", &res)) != 0) {
		s3xml_doc_free(&d);
		return err;
	}
	/* The strings live in d.strings, which the result takes over. */
	out->code = (char *)code;
	out->message = (char *)msg;
	out->request_id = (char *)rid;
	out->resource = (char *)res;
	out->mem_ = d.strings;
	d.strings = NULL;
	s3xml_doc_free(&d);
	return 0;
}

void s3xml_list_free(struct s3xml_list *l)
{
	free(l->objects);
	free(l->prefixes);
	free(l->mem_);
	memset(l, 0, sizeof(*l));
}

static int list_object(const struct s3xml_doc *d, const struct s3xml_node *c,
		       struct s3xml_object *o)
{
	const char *size, *lm;
	int err;

	if ((err = need(d, c, "Key", &o->key)) != 0 || (err = need(d, c, "Size", &size)) != 0 ||
	    (err = field(d, c, "ETag", &o->etag)) != 0 ||
	    (err = field(d, c, "LastModified", &lm)) != 0)
		return err;
	if ((err = parse_u64(size, &o->size)) != 0)
		return err;
	o->last_modified_ms = -1;
	if (lm && (err = parse_time(lm, &o->last_modified_ms)) != 0)
		return err;
	return 0;
}

int s3xml_parse_list(const void *p, size_t n, const struct s3xml_limits *lim,
		     struct s3xml_list *out)
{
	struct s3xml_doc d;
	const struct s3xml_node *root, *c;
	const char *trunc, *kc, *enc;
	uint64_t v;
	size_t i;
	int err;

	memset(out, 0, sizeof(*out));
	if ((err = open_doc(p, n, lim, "ListBucketResult", &d)) != 0)
		return err;
	root = &d.nodes[0];
	out->key_count = -1;
	if ((err = need(&d, root, "IsTruncated", &trunc)) != 0 ||
	    (err = parse_bool(trunc, &out->is_truncated)) != 0 ||
	    (err = field(&d, root, "NextContinuationToken", &out->next_token)) != 0 ||
	    (err = field(&d, root, "KeyCount", &kc)) != 0 ||
	    (err = field(&d, root, "EncodingType", &enc)) != 0)
		goto fail;
	/* Keys would arrive URL-encoded; Sluice never asks for that. */
	if (enc) {
		err = SL_E_PROTO;
		goto fail;
	}
	if (out->next_token && !out->next_token[0])
		out->next_token = NULL;
	if (out->is_truncated && !out->next_token) {
		err = SL_E_PROTO;
		goto fail;
	}
	if (kc) {
		if ((err = parse_u64(kc, &v)) != 0 || v > INT64_MAX) {
			err = SL_E_PROTO;
			goto fail;
		}
		out->key_count = (int64_t)v;
	}
	out->nobjects = count(&d, root, "Contents");
	out->nprefixes = count(&d, root, "CommonPrefixes");
	if ((out->nobjects && !(out->objects = calloc(out->nobjects, sizeof(*out->objects)))) ||
	    (out->nprefixes && !(out->prefixes = calloc(out->nprefixes, sizeof(*out->prefixes))))) {
		err = SL_E_NOMEM;
		goto fail;
	}
	for (i = 0, c = s3xml_child(&d, root, "Contents"); c; c = s3xml_next(&d, c, "Contents"))
		if ((err = list_object(&d, c, &out->objects[i++])) != 0)
			goto fail;
	for (i = 0, c = s3xml_child(&d, root, "CommonPrefixes"); c;
	     c = s3xml_next(&d, c, "CommonPrefixes"))
		if ((err = need(&d, c, "Prefix", &out->prefixes[i++])) != 0)
			goto fail;
	out->mem_ = d.strings;
	d.strings = NULL;
	s3xml_doc_free(&d);
	return 0;
fail:
	s3xml_doc_free(&d);
	s3xml_list_free(out);
	return err;
}

/* The text of root/name of a document rooted at root, as a malloc'd copy. */
static int one_string(const void *p, size_t n, const struct s3xml_limits *lim, const char *root,
		      const char *name, char **out)
{
	struct s3xml_doc d;
	const char *s;
	int err;

	*out = NULL;
	if ((err = open_doc(p, n, lim, root, &d)) != 0)
		return err;
	if ((err = need(&d, &d.nodes[0], name, &s)) == 0 && !(*out = strdup(s)))
		err = SL_E_NOMEM;
	s3xml_doc_free(&d);
	return err;
}

int s3xml_parse_initiate(const void *p, size_t n, const struct s3xml_limits *lim,
			 char **upload_id)
{
	return one_string(p, n, lim, "InitiateMultipartUploadResult", "UploadId", upload_id);
}

int s3xml_parse_complete(const void *p, size_t n, const struct s3xml_limits *lim, char **etag)
{
	return one_string(p, n, lim, "CompleteMultipartUploadResult", "ETag", etag);
}

void s3xml_delete_result_free(struct s3xml_delete_result *r)
{
	free(r->deleted);
	free(r->errors);
	free(r->mem_);
	memset(r, 0, sizeof(*r));
}

int s3xml_parse_delete(const void *p, size_t n, const struct s3xml_limits *lim,
		       struct s3xml_delete_result *out)
{
	struct s3xml_doc d;
	const struct s3xml_node *root, *c;
	struct s3xml_delete_error *e;
	size_t i;
	int err;

	memset(out, 0, sizeof(*out));
	if ((err = open_doc(p, n, lim, "DeleteResult", &d)) != 0)
		return err;
	root = &d.nodes[0];
	out->ndeleted = count(&d, root, "Deleted");
	out->nerrors = count(&d, root, "Error");
	if ((out->ndeleted && !(out->deleted = calloc(out->ndeleted, sizeof(*out->deleted)))) ||
	    (out->nerrors && !(out->errors = calloc(out->nerrors, sizeof(*out->errors))))) {
		err = SL_E_NOMEM;
		goto fail;
	}
	for (i = 0, c = s3xml_child(&d, root, "Deleted"); c; c = s3xml_next(&d, c, "Deleted"))
		if ((err = need(&d, c, "Key", &out->deleted[i++])) != 0)
			goto fail;
	for (i = 0, c = s3xml_child(&d, root, "Error"); c; c = s3xml_next(&d, c, "Error")) {
		e = &out->errors[i++];
		if ((err = need(&d, c, "Key", &e->key)) != 0 ||
		    (err = need(&d, c, "Code", &e->code)) != 0 ||
		    (err = field(&d, c, "Message", &e->message)) != 0)
			goto fail;
	}
	out->mem_ = d.strings;
	d.strings = NULL;
	s3xml_doc_free(&d);
	return 0;
fail:
	s3xml_doc_free(&d);
	s3xml_delete_result_free(out);
	return err;
}

/* ---- writers ---- */

/* Whether s[0..n) is UTF-8 naming only XML characters. */
static int check_text(const char *s, size_t n)
{
	struct sl_rd r;
	const uint8_t *raw;
	uint32_t cp;
	size_t len;

	rd_init(&r, s, n);
	while (rd_left(&r))
		if (utf8_get(&r, &cp, &raw, &len) != 0)
			return SL_E_INVALID;
	return 0;
}

int s3xml_escape(struct sl_wr *w, const char *s, size_t n)
{
	struct sl_rd r;
	uint8_t c;

	if (check_text(s, n) != 0)
		return SL_E_INVALID;
	rd_init(&r, s, n);
	while (rd_u8(&r, &c) == 0) {
		switch (c) {
		case '&': wr_bytes(w, "&amp;", 5); break;
		case '<': wr_bytes(w, "&lt;", 4); break;
		case '>': wr_bytes(w, "&gt;", 4); break;
		case '"': wr_bytes(w, "&quot;", 6); break;
		case '\'': wr_bytes(w, "&apos;", 6); break;
		case '\t': wr_bytes(w, "&#9;", 4); break;
		case '\n': wr_bytes(w, "&#10;", 5); break;
		case '\r': wr_bytes(w, "&#13;", 5); break;
		default: wr_u8(w, c); break;
		}
	}
	return w->err;
}

static void put_str(struct sl_wr *w, const char *s)
{
	wr_bytes(w, s, strlen(s));
}

int s3xml_write_complete(struct sl_wr *w, const struct s3xml_part *parts, size_t n)
{
	char num[16];
	size_t i;
	int err;

	if (n < 1 || n > S3XML_MAX_PARTS || !parts)
		return SL_E_INVALID;
	for (i = 0; i < n; i++) {
		if (parts[i].number < 1 || parts[i].number > S3XML_MAX_PARTS ||
		    (i && parts[i].number <= parts[i - 1].number) || !parts[i].etag ||
		    !parts[i].etag[0] || strlen(parts[i].etag) > S3XML_KEY_MAX ||
		    check_text(parts[i].etag, strlen(parts[i].etag)) != 0)
			return SL_E_INVALID;
	}
	put_str(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<CompleteMultipartUpload xmlns=\"" S3_XMLNS "\">");
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%u", (unsigned)parts[i].number);
		put_str(w, "<Part><PartNumber>");
		put_str(w, num);
		put_str(w, "</PartNumber><ETag>");
		if ((err = s3xml_escape(w, parts[i].etag, strlen(parts[i].etag))) != 0)
			return err;
		put_str(w, "</ETag></Part>");
	}
	put_str(w, "</CompleteMultipartUpload>");
	return w->err;
}

int s3xml_write_delete(struct sl_wr *w, const char *const *keys, size_t n, int quiet)
{
	size_t i, len;
	int err;

	if (n < 1 || n > S3XML_MAX_DELETE || !keys)
		return SL_E_INVALID;
	for (i = 0; i < n; i++) {
		if (!keys[i])
			return SL_E_INVALID;
		len = strlen(keys[i]);
		if (len < 1 || len > S3XML_KEY_MAX || check_text(keys[i], len) != 0)
			return SL_E_INVALID;
	}
	put_str(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<Delete xmlns=\"" S3_XMLNS "\">");
	if (quiet)
		put_str(w, "<Quiet>true</Quiet>");
	for (i = 0; i < n; i++) {
		put_str(w, "<Object><Key>");
		if ((err = s3xml_escape(w, keys[i], strlen(keys[i]))) != 0)
			return err;
		put_str(w, "</Key></Object>");
	}
	put_str(w, "</Delete>");
	return w->err;
}
