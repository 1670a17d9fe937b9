/*
 * objstore_s3.c - the s3 backend of the object store (see objstore.h): each
 * call is the storage/s3.h operation of the same name.
 *
 * Owns the S3 client and a small wrapper per operation that turns the
 * client's result into the store's: 404 NoSuchKey (or a HEAD's bare 404)
 * into SL_E_NOTFOUND, 416 into SL_E_INVALID, the listing into entries.
 *
 * put_if_absent after a lost answer.  s3_put_if_absent retries like any
 * PUT, and net/httpc resends a request once when a kept-alive connection
 * turns out closed; when the first copy created the object but its answer
 * was lost, the second meets 412.  Neither the 412 nor the attempt count
 * tells the two cases apart (httpc's resend is not counted), so every 412
 * is checked by reading the object back:
 *
 *   PUT If-None-Match --ok--> callback(0)
 *        `--412--> GET --the put's bytes--> callback(0)
 *                       `--other bytes, or the GET failed--> callback(SL_E_EXISTS)
 *
 * A 412 is rare (it is a writer being fenced), so the GET costs little.
 * The manifest puts its writer's node, epoch and commit time into every
 * version, so another writer's version never has the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "objstore.h"
#include "../kernel/log.h"

#define TAG "objstore"

struct s3store {
	struct objstore base;
	struct s3 *s3;
};

struct sop {
	struct s3store *st;
	struct s3_op *h;		/* the s3 operation under way */
	enum objstore_opkind kind;
	objstore_fn fn;
	void *arg;
	char *key;
	const void *buf;		/* put_if_absent: for the comparison */
	size_t len;
	int put_attempts;
};

static void sop_free(struct sop *op)
{
	free(op->key);
	free(op);
}

/* The store's error for an S3 result of kind. */
static int map_err(enum objstore_opkind kind, const struct s3_result *r)
{
	if (r->err != SL_E_REMOTE)
		return r->err;
	if (r->status == 404 && kind == OBJSTORE_OP_HEAD)
		return SL_E_NOTFOUND;
	if (r->status == 404 && kind == OBJSTORE_OP_GET && strcmp(r->code, "NoSuchKey") == 0)
		return SL_E_NOTFOUND;
	if (r->status == 416)
		return SL_E_INVALID;
	return SL_E_REMOTE;
}

static void deliver(struct sop *op, struct s3_result *r, int err)
{
	struct objstore_entry *ents = NULL;
	struct objstore_key_error *kerr = NULL;
	struct objstore_result res;
	size_t i;

	memset(&res, 0, sizeof(res));
	res.err = err;
	res.status = r->status;
	res.code = r->code ? r->code : "";
	res.message = r->message ? r->message : "";
	res.attempts = r->attempts;
	res.mtime_ms = -1;
	if (err == 0) {
		switch (op->kind) {
		case OBJSTORE_OP_GET:
			res.body = s3_result_take_body(r, &res.body_len);
			res.size = res.body_len;
			break;
		case OBJSTORE_OP_HEAD:
		case OBJSTORE_OP_PUT:
		case OBJSTORE_OP_PUT_IF_ABSENT:
			res.size = r->size;
			break;
		case OBJSTORE_OP_DELETE:
			res.ndeleted = 1;
			break;
		case OBJSTORE_OP_DELETE_MANY:
			res.ndeleted = r->ndeleted;
			break;
		case OBJSTORE_OP_LIST:
			if (r->nobjects) {
				ents = calloc(r->nobjects, sizeof(*ents));
				if (!ents) {
					res.err = SL_E_NOMEM;
					break;
				}
			}
			for (i = 0; i < r->nobjects; i++) {
				ents[i].key = r->objects[i].key;
				ents[i].size = r->objects[i].size;
				ents[i].mtime_ms = r->objects[i].last_modified_ms;
			}
			res.entries = ents;
			res.nentries = r->nobjects;
			break;
		}
	}
	if (op->kind == OBJSTORE_OP_DELETE_MANY) {
		/* Also on failure: the batches that finished are reported. */
		res.ndeleted = r->ndeleted;
		if (r->nkey_errors) {
			kerr = calloc(r->nkey_errors, sizeof(*kerr));
			if (!kerr && res.err == 0)
				res.err = SL_E_NOMEM;
		}
		for (i = 0; kerr && i < r->nkey_errors; i++) {
			kerr[i].key = r->key_errors[i].key;
			kerr[i].code = r->key_errors[i].code;
			kerr[i].message = r->key_errors[i].message;
		}
		res.key_errors = kerr;
		res.nkey_errors = kerr ? r->nkey_errors : 0;
	}
	op->fn(op->arg, &res);
	free(res.body);
	free(ents);
	free(kerr);
}

static void on_verify(void *arg, struct s3_result *r)
{
	struct sop *op = arg;
	struct s3_result put;
	int same = r->err == 0 && r->body_len == op->len &&
		   (op->len == 0 || memcmp(r->body, op->buf, op->len) == 0);

	op->h = NULL;
	/* Report the put, not the GET that checked it. */
	memset(&put, 0, sizeof(put));
	put.attempts = op->put_attempts;
	if (same) {
		log_info(TAG, "%s %s: a retried create-only PUT met 412, and the object holds "
			 "this put's bytes: an earlier attempt created it", op->st->base.name,
			 op->key);
		put.status = 200;
		put.size = op->len;
		put.code = put.message = "";
		deliver(op, &put, 0);
	} else {
		put.status = 412;
		put.code = "PreconditionFailed";
		put.message = r->err == 0 ? "the object exists with other bytes"
					  : "the object exists; reading it back failed";
		deliver(op, &put, r->err == SL_E_CLOSED ? SL_E_CLOSED : SL_E_EXISTS);
	}
	sop_free(op);
}

static void on_done(void *arg, struct s3_result *r)
{
	struct sop *op = arg;
	int err = map_err(op->kind, r);

	op->h = NULL;
	if (op->kind == OBJSTORE_OP_PUT_IF_ABSENT && err == SL_E_EXISTS && !op->st->base.closing) {
		op->put_attempts = r->attempts;
		if (s3_get(op->st->s3, op->key, NULL, on_verify, op, &op->h) == 0)
			return;
		op->h = NULL;
	}
	deliver(op, r, err);
	sop_free(op);
}

static int s_start(struct objstore *os, const struct objstore_call *c, struct objstore_op **handle)
{
	struct s3store *st = (struct s3store *)os;
	struct s3_list_args la;
	struct s3_range rg;
	struct sop *op = calloc(1, sizeof(*op));
	int err = SL_E_INVALID;

	if (!op)
		return SL_E_NOMEM;
	op->st = st;
	op->kind = c->kind;
	op->fn = c->fn;
	op->arg = c->arg;
	op->buf = c->buf;
	op->len = c->len;
	if (c->key && !(op->key = strdup(c->key))) {
		sop_free(op);
		return SL_E_NOMEM;
	}
	switch (c->kind) {
	case OBJSTORE_OP_PUT:
		err = s3_put(st->s3, c->key, c->buf, c->len, on_done, op, &op->h);
		break;
	case OBJSTORE_OP_PUT_IF_ABSENT:
		err = s3_put_if_absent(st->s3, c->key, c->buf, c->len, on_done, op, &op->h);
		break;
	case OBJSTORE_OP_GET:
		if (c->range) {
			rg.first = c->range->first;
			rg.last = c->range->last;
		}
		err = s3_get(st->s3, c->key, c->range ? &rg : NULL, on_done, op, &op->h);
		break;
	case OBJSTORE_OP_HEAD:
		err = s3_head(st->s3, c->key, on_done, op, &op->h);
		break;
	case OBJSTORE_OP_DELETE:
		err = s3_delete(st->s3, c->key, on_done, op, &op->h);
		break;
	case OBJSTORE_OP_DELETE_MANY:
		err = s3_delete_many(st->s3, c->keys, c->nkeys, on_done, op, &op->h);
		break;
	case OBJSTORE_OP_LIST:
		memset(&la, 0, sizeof(la));
		la.prefix = c->key;
		la.max_objects = st->base.max_list;	/* SL_E_TOOBIG past it */
		err = s3_list(st->s3, &la, on_done, op, &op->h);
		break;
	}
	if (err) {
		sop_free(op);
		return err;
	}
	*handle = (struct objstore_op *)op;
	return 0;
}

static void s_cancel(struct objstore *os, struct objstore_op *h)
{
	struct s3store *st = (struct s3store *)os;
	struct sop *op = (struct sop *)h;

	if (op->h)
		s3_cancel(st->s3, op->h);
	sop_free(op);
}

static void s_free(struct objstore *os)
{
	struct s3store *st = (struct s3store *)os;

	/* Ends every operation with SL_E_CLOSED, through on_done and on_verify. */
	s3_free(st->s3);
	free(st);
}

static const struct objstore_backend s3_backend = { s_start, s_cancel, s_free };

int objstore_s3_new(struct loop *l, const struct s3url *u, const struct objstore_options *o,
		    struct objstore **out, char *errbuf, size_t errlen)
{
	struct s3store *st;
	int err;

	if (u->kind != S3URL_S3)
		return SL_E_INVALID;
	st = calloc(1, sizeof(*st));
	if (!st)
		return SL_E_NOMEM;
	err = s3_new(l, u, o->cred, o->s3, &st->s3);
	if (err) {
		snprintf(errbuf, errlen, "cannot set up the S3 client: %s", sl_strerror(err));
		free(st);
		return err;
	}
	st->base.be = &s3_backend;
	st->base.l = l;
	st->base.kind = OBJSTORE_S3;
	st->base.max_list = o->max_list ? o->max_list : OBJSTORE_LIST_MAX;
	snprintf(st->base.name, sizeof(st->base.name), "s3://%s%s%s", u->bucket,
		 u->prefix[0] ? "/" : "", u->prefix);
	*out = &st->base;
	return 0;
}
