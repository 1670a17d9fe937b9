/*
 * objstore.c - the object store's front (see objstore.h): key rules,
 * argument checks, and dispatch to a backend.
 *
 * Owns nothing but the checks.  Every public call is validated here once,
 * then handed to the backend as a struct objstore_call, so the two backends
 * see the same inputs and refuse the same things.  A backend's start()
 * either returns an error (no callback) or takes the call and answers it
 * from the loop exactly once.
 */
#include <stdio.h>
#include <string.h>
#include "objstore.h"

static int key_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '=' || c == '+';
}

/*
 * The rules of objstore.h.  partial: a listing prefix, which may be empty,
 * end with '/', or stop inside a segment.
 */
static int check(const char *s, int partial)
{
	size_t i, n, seg = 0;	/* bytes in the current segment */

	if (!s)
		return partial ? 0 : SL_E_INVALID;
	n = strnlen(s, OBJSTORE_KEY_MAX + 1);
	if (n > OBJSTORE_KEY_MAX || (n == 0 && !partial))
		return SL_E_INVALID;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/') {
			if (seg == 0)
				return SL_E_INVALID;	/* leading '/' or "//" */
			seg = 0;
			continue;
		}
		if (!key_byte(c) || (seg == 0 && c == '.'))
			return SL_E_INVALID;
		seg++;
	}
	if (seg == 0 && n > 0 && !partial)
		return SL_E_INVALID;		/* a trailing '/' */
	return 0;
}

int objstore_key_check(const char *key)
{
	return check(key, 0);
}

int objstore_prefix_check(const char *prefix)
{
	return check(prefix, 1);
}

int objstore_new(struct loop *l, const struct s3url *u, const struct objstore_options *o,
		 struct objstore **out, char *errbuf, size_t errlen)
{
	struct objstore_options def;

	*out = NULL;
	if (errlen)
		errbuf[0] = '\0';
	if (!l || !u)
		return SL_E_INVALID;
	if (!o) {
		memset(&def, 0, sizeof(def));
		o = &def;
	}
	switch (u->kind) {
	case S3URL_FILE:
		return objstore_file_new(l, u, o, out, errbuf, errlen);
	case S3URL_S3:
		return objstore_s3_new(l, u, o, out, errbuf, errlen);
	}
	return SL_E_INVALID;
}

int objstore_open(struct loop *l, const char *url, const struct objstore_options *o,
		  struct objstore **out, char *errbuf, size_t errlen)
{
	struct s3url u;
	int err;

	*out = NULL;
	if (!url)
		return SL_E_INVALID;
	err = s3url_parse(url, &u, errbuf, errlen);
	if (err)
		return err;
	return objstore_new(l, &u, o, out, errbuf, errlen);
}

void objstore_free(struct objstore *os)
{
	if (!os)
		return;
	os->closing = 1;
	os->be->free(os);
}

enum objstore_kind objstore_kind(const struct objstore *os)
{
	return os->kind;
}

const char *objstore_name(const struct objstore *os)
{
	return os->name;
}

static int start(struct objstore *os, const struct objstore_call *c, struct objstore_op **op)
{
	struct objstore_op *dummy;

	if (!os || !c->fn)
		return SL_E_INVALID;
	if (os->closing)
		return SL_E_CLOSED;
	return os->be->start(os, c, op ? op : &dummy);
}

static int put(struct objstore *os, enum objstore_opkind kind, const char *key, const void *buf,
	       size_t len, objstore_fn fn, void *arg, struct objstore_op **op)
{
	struct objstore_call c;

	if (objstore_key_check(key) != 0 || (len && !buf))
		return SL_E_INVALID;
	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.key = key;
	c.buf = buf;
	c.len = len;
	c.fn = fn;
	c.arg = arg;
	return start(os, &c, op);
}

int objstore_put(struct objstore *os, const char *key, const void *buf, size_t len,
		 objstore_fn fn, void *arg, struct objstore_op **op)
{
	return put(os, OBJSTORE_OP_PUT, key, buf, len, fn, arg, op);
}

int objstore_put_if_absent(struct objstore *os, const char *key, const void *buf, size_t len,
			   objstore_fn fn, void *arg, struct objstore_op **op)
{
	return put(os, OBJSTORE_OP_PUT_IF_ABSENT, key, buf, len, fn, arg, op);
}

static int keyed(struct objstore *os, enum objstore_opkind kind, const char *key,
		 const struct objstore_range *range, objstore_fn fn, void *arg,
		 struct objstore_op **op)
{
	struct objstore_call c;

	if (objstore_key_check(key) != 0)
		return SL_E_INVALID;
	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.key = key;
	c.range = range;
	c.fn = fn;
	c.arg = arg;
	return start(os, &c, op);
}

int objstore_get(struct objstore *os, const char *key, const struct objstore_range *range,
		 objstore_fn fn, void *arg, struct objstore_op **op)
{
	if (range && range->last < range->first)
		return SL_E_INVALID;
	return keyed(os, OBJSTORE_OP_GET, key, range, fn, arg, op);
}

int objstore_head(struct objstore *os, const char *key, objstore_fn fn, void *arg,
		  struct objstore_op **op)
{
	return keyed(os, OBJSTORE_OP_HEAD, key, NULL, fn, arg, op);
}

int objstore_delete(struct objstore *os, const char *key, objstore_fn fn, void *arg,
		    struct objstore_op **op)
{
	return keyed(os, OBJSTORE_OP_DELETE, key, NULL, fn, arg, op);
}

int objstore_delete_many(struct objstore *os, const char *const *keys, size_t n, objstore_fn fn,
			 void *arg, struct objstore_op **op)
{
	struct objstore_call c;
	size_t i;

	if (!keys || n == 0)
		return SL_E_INVALID;
	for (i = 0; i < n; i++)
		if (objstore_key_check(keys[i]) != 0)
			return SL_E_INVALID;
	memset(&c, 0, sizeof(c));
	c.kind = OBJSTORE_OP_DELETE_MANY;
	c.keys = keys;
	c.nkeys = n;
	c.fn = fn;
	c.arg = arg;
	return start(os, &c, op);
}

int objstore_list(struct objstore *os, const char *prefix, objstore_fn fn, void *arg,
		  struct objstore_op **op)
{
	struct objstore_call c;

	if (objstore_prefix_check(prefix) != 0)
		return SL_E_INVALID;
	memset(&c, 0, sizeof(c));
	c.kind = OBJSTORE_OP_LIST;
	c.key = prefix ? prefix : "";
	c.fn = fn;
	c.arg = arg;
	return start(os, &c, op);
}

void objstore_cancel(struct objstore *os, struct objstore_op *op)
{
	if (os && op)
		os->be->cancel(os, op);
}

uint8_t *objstore_result_take_body(struct objstore_result *r, size_t *len)
{
	uint8_t *b = r->body;

	if (len)
		*len = r->body_len;
	r->body = NULL;
	r->body_len = 0;
	return b;
}
