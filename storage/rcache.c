/*
 * rcache.c - the block cache of the cold read path (contract in rcache.h).
 *
 * Owns: one entry per object whose index is loaded or loading (struct
 * rc_obj, found by key in a chained hash table), one entry per data block
 * loaded or loading (struct rc_blk, found through its object's array
 * blk[block index]), the GETs under way (struct rc_get) and the loads
 * (struct rcache_pin).  The loop and the object store are borrowed.
 *
 * An object entry:
 *
 *   rcache_load/prefetch        tail GET ok, index in it     index_ready: parsed index,
 *   (not cached) --> LOADING ------------------------------> READY       blk[] array, charged
 *                    idx_get    tail GET ok, index not in it      ^
 *                      |        --> second GET of the index ------+
 *                      | any failure, or nobody waits (unpin: cancelled)
 *                      v
 *                    freed: every waiter completes with the error, nothing kept
 *
 * A block entry exists only under a READY object:
 *
 *   absent --blocks_start--> LOADING (blk->get) --GET ok, decoded--> READY (charged)
 *                                |                                      |
 *                                | GET or decode failed, or cancelled   | evicted: LRU, unpinned
 *                                v                                      v
 *                              absent                                 absent
 *
 * A load (struct rcache_pin):
 *
 *   P_INDEX (waits on obj->idx_get) --> P_BLOCKS (waits on `pending` block GETs) --> P_DONE
 *   P_DONE arms the pin's timer (delay 0), whose firing calls fn: callbacks
 *   never run inside a call, nor inside our own bookkeeping (so a callback
 *   may unpin, load, or free the cache).  A failed load releases everything
 *   at once; a successful one holds its pins until rcache_unpin().
 *   A prefetch is a load with no callback and no pins, freed at P_DONE.
 *
 * A load pins the index and the blocks [pb0, pend) of its stream: from the
 * block holding the offset for at least want_bytes of stored bytes, and the
 * rest of the read-ahead runs it started.  Absent blocks of that span are
 * fetched in runs: from an absent block, obj_range() up to max(want_bytes,
 * readahead) stored bytes, cut before the first block already present, so
 * that no block is ever in two GETs.  A block present but still loading
 * makes the load wait on its GET (coalescing); an index loading makes it
 * wait on idx_get.
 *
 * Invariants:
 *   1. Every block of [p->pb0, p->pend) of p's object is present and pinned
 *      by p; a LOADING one's GET lists p among its waiters.  Pins on a
 *      LOADING block come only from its GET's waiters, so a GET with no
 *      waiters holds unpinned blocks and may be cancelled (unless it is a
 *      prefetch's, which runs to the end to fill the cache).
 *   2. obj->refs counts the loads attached to it and its GETs; obj->nblk its
 *      blocks present (LOADING or READY).  An object that is not READY is
 *      freed when refs drops to 0.  A READY object's index entry is evictable
 *      only when refs == 0 and nblk == 0: blocks are useless without it.
 *   3. The LRU list holds exactly the evictable entries: READY, unpinned
 *      (and, for an index, invariant 2).  c->st.bytes is the sum of READY
 *      entries' charges; pinned_bytes that of READY entries with pins.
 *   4. Evictions run only from the loop (a GET's completion, the deferred
 *      trim after an unpin), never inside rcache_read: spans stay valid
 *      until control returns to the loop.
 *
 * Charges: a block costs its decoded bytes plus its batch table (one
 * struct rc_batch per batch, so rcache_read finds the first batch by
 * binary search and walks the rest without parsing); an index its parsed
 * arrays plus its blk[] array.  A block stored raw is not copied out of
 * its GET's body: the blocks of one GET share the body (struct rc_body),
 * which is freed with the last of them, so an evicted block's bytes may
 * stay in memory, uncharged, until its GET's other blocks go too (at most
 * one GET, max(want_bytes, readahead), per run of blocks).
 *
 * The object store must outlive the cache, and rcache_free() must come
 * before objstore_free().
 */
#include <stdlib.h>
#include <string.h>
#include "rcache.h"
#include "object.h"
#include "../kernel/log.h"

#define TAG "rcache"
#define RC_READAHEAD_DEFAULT	((size_t)4 << 20)
#define RC_TAIL_DEFAULT		((size_t)64 << 10)
#define RC_PREFETCH_MAX		4	/* prefetch loads and GETs under way */
#define RC_TAB_MIN		64
/* The smallest object: header, an index with no entries, footer. */
#define RC_OBJ_MIN		(OBJ_HEADER_LEN + OBJ_INDEX_HDR_LEN + OBJ_FOOTER_LEN)

enum rc_kind { ENT_INDEX, ENT_BLOCK };

/* What the LRU list and the byte count see of an object's index or a block. */
struct rc_ent {
	struct rc_ent *prev, *next;	/* in the LRU list while evictable */
	size_t bytes;			/* charged while ready */
	uint32_t pins;
	uint8_t kind, ready, linked;
};

/* A block GET's body, kept while blocks stored raw point into it. */
struct rc_body {
	uint32_t refs;			/* blocks pointing into p */
	uint8_t *p;			/* owned */
};

/* One batch of a decoded block. */
struct rc_batch {
	int64_t last;			/* base + count - 1 */
	const uint8_t *p;		/* into the block's mem */
	size_t len;
};

struct rc_obj;
struct rc_get;

struct rc_blk {
	struct rc_ent e;		/* first: an ENT_BLOCK entry is a block */
	struct rc_obj *obj;
	uint32_t bi;			/* its index in obj->ix.blocks */
	struct rc_get *get;		/* while loading */
	uint8_t *mem;			/* decoded bytes, owned; NULL when in body */
	struct rc_body *body;		/* a block stored raw: its GET's body, shared */
	const uint8_t *data;		/* the decoded bytes: in mem or in body */
	struct rc_batch *tab;		/* owned */
	uint32_t nb;
};

struct rc_obj {
	struct rc_ent e;		/* first: an ENT_INDEX entry is an object */
	struct rc_obj *hnext;
	char *key;
	uint64_t size;
	uint32_t refs;			/* loads attached and GETs (invariant 2) */
	uint32_t nblk;			/* blocks present */
	struct rc_get *idx_get;		/* while loading */
	struct obj_index ix;		/* when ready */
	struct rc_blk **blk;		/* when ready: ix.nblocks slots */
};

enum get_kind { GET_TAIL, GET_INDEX, GET_BLOCKS };

struct rc_get {
	struct rcache *c;
	struct rc_obj *obj;
	struct objstore_op *op;
	struct rc_get *prev, *next;	/* c->gets */
	enum get_kind kind;
	int prefetch;			/* started by a prefetch: never cancelled */
	int done;			/* completing: waiters detached */
	uint64_t first, len;		/* the byte range asked for */
	uint32_t b0, n;			/* GET_BLOCKS: blocks [b0, b0 + n) */
	struct obj_footer f;		/* GET_INDEX: from the tail */
	struct rcache_pin **w;		/* waiting loads, in arrival order */
	uint32_t nw, capw;
};

enum pin_state { P_INDEX, P_BLOCKS, P_DONE };

struct rcache_pin {
	struct rcache *c;
	struct rcache_pin *prev, *next;	/* c->pins */
	struct rc_obj *obj;		/* NULL once released */
	struct stream_id id;
	int64_t offset;
	size_t want;
	rcache_fn fn;
	void *arg;
	int prefetch;
	enum pin_state state;
	int err;
	int ix_pinned;
	uint32_t pb0, pend;		/* blocks pinned: [pb0, pend) */
	uint32_t pending;		/* block GETs waited on */
	struct loop_timer t;
};

struct rcache {
	struct loop *l;
	struct objstore *os;
	size_t cap, readahead, tail_guess;
	struct rc_obj **tab;
	size_t tabcap, nobj;
	struct rc_ent lru;		/* sentinel: lru.next is the least recently used */
	struct rc_get *gets;
	struct rcache_pin *pins;
	uint32_t prefetching;
	struct loop_task trim_task;
	struct rcache_stats st;
};

/* ---- entries and the LRU list ---- */

static int evictable(const struct rc_ent *e)
{
	const struct rc_obj *o;

	if (!e->ready || e->pins)
		return 0;
	if (e->kind == ENT_BLOCK)
		return 1;
	o = (const struct rc_obj *)e;
	return o->refs == 0 && o->nblk == 0;
}

static void lru_unlink(struct rc_ent *e)
{
	if (!e->linked)
		return;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
	e->linked = 0;
}

static void lru_append(struct rcache *c, struct rc_ent *e)
{
	e->prev = c->lru.prev;
	e->next = &c->lru;
	c->lru.prev->next = e;
	c->lru.prev = e;
	e->linked = 1;
}

/* Put e in the list, or take it out, as invariant 3 says. */
static void relink(struct rcache *c, struct rc_ent *e)
{
	int ev = evictable(e);

	if (ev && !e->linked)
		lru_append(c, e);
	else if (!ev && e->linked)
		lru_unlink(e);
}

static void touch(struct rcache *c, struct rc_ent *e)
{
	if (!e->linked)
		return;
	lru_unlink(e);
	lru_append(c, e);
}

static void ent_pin(struct rcache *c, struct rc_ent *e)
{
	if (e->pins++ == 0 && e->ready)
		c->st.pinned_bytes += e->bytes;
	lru_unlink(e);
}

static void ent_unpin(struct rcache *c, struct rc_ent *e)
{
	SL_ASSERT(e->pins > 0);
	if (--e->pins == 0) {
		if (e->ready)
			c->st.pinned_bytes -= e->bytes;
		relink(c, e);
	}
}

static void ent_ready(struct rcache *c, struct rc_ent *e, size_t bytes)
{
	e->ready = 1;
	e->bytes = bytes;
	c->st.bytes += bytes;
	c->st.entries++;
	if (e->pins)
		c->st.pinned_bytes += bytes;
	relink(c, e);
}

/* ---- objects ---- */

static uint64_t key_hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 0x100000001b3ull;
	return h;
}

static struct rc_obj *obj_find(struct rcache *c, const char *key)
{
	struct rc_obj *o = c->tab[key_hash(key) & (c->tabcap - 1)];

	while (o && strcmp(o->key, key) != 0)
		o = o->hnext;
	return o;
}

/* Double the table when it is full; a failed allocation leaves longer chains. */
static void tab_grow(struct rcache *c)
{
	size_t n = c->tabcap * 2, i;
	struct rc_obj **t;

	if (c->nobj < c->tabcap || !(t = calloc(n, sizeof(*t))))
		return;
	for (i = 0; i < c->tabcap; i++) {
		struct rc_obj *o = c->tab[i], *nx;

		for (; o; o = nx) {
			size_t h = key_hash(o->key) & (n - 1);

			nx = o->hnext;
			o->hnext = t[h];
			t[h] = o;
		}
	}
	free(c->tab);
	c->tab = t;
	c->tabcap = n;
}

static struct rc_obj *obj_new(struct rcache *c, const char *key, uint64_t size)
{
	struct rc_obj *o = calloc(1, sizeof(*o));
	size_t h;

	if (!o || !(o->key = strdup(key))) {
		free(o);
		return NULL;
	}
	o->e.kind = ENT_INDEX;
	o->size = size;
	tab_grow(c);
	h = key_hash(key) & (c->tabcap - 1);
	o->hnext = c->tab[h];
	c->tab[h] = o;
	c->nobj++;
	return o;
}

static void body_drop(struct rc_body *y)
{
	if (y && --y->refs == 0) {
		free(y->p);
		free(y);
	}
}

static void blk_free(struct rc_blk *b)
{
	free(b->mem);
	body_drop(b->body);
	free(b->tab);
	free(b);
}

/* Unhash and free o and its blocks (their charges are the caller's business). */
static void obj_free(struct rcache *c, struct rc_obj *o)
{
	struct rc_obj **pp = &c->tab[key_hash(o->key) & (c->tabcap - 1)];
	uint32_t i;

	while (*pp != o)
		pp = &(*pp)->hnext;
	*pp = o->hnext;
	c->nobj--;
	if (o->blk)
		for (i = 0; i < o->ix.nblocks; i++)
			if (o->blk[i])
				blk_free(o->blk[i]);
	free(o->blk);
	obj_index_free(&o->ix);
	free(o->key);
	free(o);
}

/* After o's refs or blocks changed: free it if nothing holds it, else refresh its LRU place. */
static void obj_settle(struct rcache *c, struct rc_obj *o)
{
	if (!o->e.ready) {
		if (o->refs == 0)
			obj_free(c, o);
		return;
	}
	relink(c, &o->e);
}

/* A reference makes the index unevictable at once (invariant 3). */
static void obj_hold(struct rc_obj *o)
{
	o->refs++;
	lru_unlink(&o->e);
}

static void obj_drop(struct rcache *c, struct rc_obj *o)
{
	SL_ASSERT(o->refs > 0);
	o->refs--;
	obj_settle(c, o);
}

/* ---- eviction ---- */

static void evict(struct rcache *c, struct rc_ent *e)
{
	lru_unlink(e);
	c->st.bytes -= e->bytes;
	c->st.entries--;
	if (e->kind == ENT_BLOCK) {
		struct rc_blk *b = (struct rc_blk *)e;
		struct rc_obj *o = b->obj;

		o->blk[b->bi] = NULL;
		o->nblk--;
		blk_free(b);
		relink(c, &o->e);
	} else {
		obj_free(c, (struct rc_obj *)e);
	}
}

static void trim(struct rcache *c)
{
	while (c->st.bytes > c->cap && c->lru.next != &c->lru)
		evict(c, c->lru.next);
}

static void on_trim(struct loop *l, void *arg)
{
	trim(arg);
}

/* ---- GETs ---- */

static void on_get(void *arg, struct objstore_result *r);

static struct rc_get *get_new(struct rcache *c, struct rc_obj *o, enum get_kind kind)
{
	struct rc_get *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->c = c;
	g->obj = o;
	g->kind = kind;
	g->next = c->gets;
	if (c->gets)
		c->gets->prev = g;
	c->gets = g;
	obj_hold(o);
	return g;
}

/* Unlink and free g; drops its reference on the object without settling it. */
static void get_free(struct rcache *c, struct rc_get *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		c->gets = g->next;
	if (g->next)
		g->next->prev = g->prev;
	if (g->prefetch)
		c->prefetching--;
	SL_ASSERT(g->obj->refs > 0);
	g->obj->refs--;
	free(g->w);
	free(g);
}

static int get_issue(struct rcache *c, struct rc_get *g, uint64_t first, uint64_t len)
{
	struct objstore_range rg = { first, first + len - 1 };
	int err;

	g->first = first;
	g->len = len;
	err = objstore_get(c->os, g->obj->key, &rg, on_get, g, &g->op);
	if (err)
		return err;
	c->st.gets++;
	return 0;
}

/* 1 when p was added, 0 when it already waits (it was the last to come), or SL_E_NOMEM. */
static int add_waiter(struct rc_get *g, struct rcache_pin *p)
{
	if (g->nw && g->w[g->nw - 1] == p)
		return 0;
	if (g->nw == g->capw) {
		uint32_t n = g->capw ? g->capw * 2 : 4;
		struct rcache_pin **w = realloc(g->w, n * sizeof(*w));

		if (!w)
			return SL_E_NOMEM;
		g->w = w;
		g->capw = n;
	}
	g->w[g->nw++] = p;
	return 1;
}

static int del_waiter(struct rc_get *g, struct rcache_pin *p)
{
	uint32_t i;

	for (i = 0; i < g->nw; i++)
		if (g->w[i] == p) {
			memmove(&g->w[i], &g->w[i + 1], (g->nw - i - 1) * sizeof(*g->w));
			g->nw--;
			return 1;
		}
	return 0;
}

/* Stop g, which nobody waits for: its loading blocks go, the object is settled by the caller. */
static void get_cancel(struct rcache *c, struct rc_get *g)
{
	struct rc_obj *o = g->obj;
	uint32_t i;

	SL_ASSERT(g->nw == 0 && !g->done);
	if (g->op)
		objstore_cancel(c->os, g->op);
	if (g->kind == GET_BLOCKS) {
		for (i = g->b0; i < g->b0 + g->n; i++) {
			struct rc_blk *b = o->blk[i];

			SL_ASSERT(b && b->get == g && b->e.pins == 0 && !b->e.ready);
			o->blk[i] = NULL;
			o->nblk--;
			blk_free(b);
		}
	} else {
		o->idx_get = NULL;
	}
	get_free(c, g);
}

/* ---- loads ---- */

static void on_pin_timer(struct loop *l, void *arg)
{
	struct rcache_pin *p = arg;

	/* The last touch of p: fn may unpin it or free the cache. */
	p->fn(p->arg, p->err);
}

static void pin_unlink(struct rcache *c, struct rcache_pin *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->pins = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (p->prefetch)
		c->prefetching--;
}

/*
 * Release everything p holds: pins, its places among waiters (cancelling
 * the GETs it leaves with no waiter), its reference on the object.
 */
static void pin_release(struct rcache *c, struct rcache_pin *p)
{
	struct rc_obj *o = p->obj;
	uint32_t i;

	if (!o)
		return;
	for (i = p->pb0; i < p->pend; i++)
		ent_unpin(c, &o->blk[i]->e);
	/* A second pass: a cancel frees the blocks of its GET, later ones too. */
	for (i = p->pb0; i < p->pend; i++) {
		struct rc_blk *b = o->blk[i];
		struct rc_get *g = b ? b->get : NULL;

		if (g && !g->done && del_waiter(g, p) && g->nw == 0 && !g->prefetch)
			get_cancel(c, g);
	}
	if (p->state == P_INDEX && o->idx_get && !o->idx_get->done &&
	    del_waiter(o->idx_get, p) && o->idx_get->nw == 0)
		get_cancel(c, o->idx_get);
	if (p->ix_pinned)
		ent_unpin(c, &o->e);
	p->ix_pinned = 0;
	p->pb0 = p->pend = 0;
	p->pending = 0;
	p->obj = NULL;
	obj_drop(c, o);
}

static void pin_free(struct rcache *c, struct rcache_pin *p)
{
	loop_timer_cancel(c->l, &p->t);
	pin_release(c, p);
	pin_unlink(c, p);
	free(p);
}

/* p is finished: a failure releases all it holds; a prefetch goes; others are called back. */
static void load_done(struct rcache *c, struct rcache_pin *p, int err)
{
	p->state = P_DONE;
	p->err = err;
	if (err)
		pin_release(c, p);
	if (p->prefetch) {
		pin_free(c, p);
		return;
	}
	loop_timer_set(c->l, &p->t, 0);
}

static void load_fail_log(const struct rc_obj *o, const char *what, uint32_t b0, uint32_t n,
			  int err)
{
	if (n)
		log_warn(TAG, "%s %u..%u of %s: %s", what, b0, b0 + n - 1, o->key, sl_strerror(err));
	else
		log_warn(TAG, "%s of %s: %s", what, o->key, sl_strerror(err));
}

/*
 * Start a GET of blocks [b0, b0 + n) of o, all absent: they become LOADING,
 * pinned by p and p its first waiter (unless p is a prefetch, whose GET
 * has no waiter).  Returns 0, or an error with nothing changed.
 */
static int blocks_start(struct rcache *c, struct rc_obj *o, uint32_t b0, uint32_t n,
			struct rcache_pin *p)
{
	const struct obj_block *last = &o->ix.blocks[b0 + n - 1];
	struct rc_get *g = get_new(c, o, GET_BLOCKS);
	uint64_t first = o->ix.blocks[b0].pos;
	uint32_t i, made = 0;
	int err = SL_E_NOMEM;

	if (!g)
		return SL_E_NOMEM;
	g->b0 = b0;
	g->n = n;
	if (!p->prefetch && add_waiter(g, p) < 0)
		goto fail;
	for (; made < n; made++) {
		struct rc_blk *b = calloc(1, sizeof(*b));

		if (!b)
			goto fail;
		b->e.kind = ENT_BLOCK;
		b->e.pins = p->prefetch ? 0 : 1;
		b->obj = o;
		b->bi = b0 + made;
		b->get = g;
		o->blk[b0 + made] = b;
		o->nblk++;
	}
	if ((err = get_issue(c, g, first, last->pos + last->stored - first)))
		goto fail;
	if (p->prefetch) {
		g->prefetch = 1;
		c->prefetching++;
	}
	relink(c, &o->e);
	return 0;
fail:
	for (i = 0; i < made; i++) {
		blk_free(o->blk[b0 + i]);
		o->blk[b0 + i] = NULL;
		o->nblk--;
	}
	get_free(c, g);
	return err;
}

/*
 * p's object is ready: pin (or, for a prefetch, just fetch) the blocks of
 * p's stream from p->offset, starting GETs for those absent.  Returns 0
 * (p->pending says how many GETs p waits for), or an error from starting a
 * GET (what p holds is then released by the caller).
 */
static int load_blocks(struct rcache *c, struct rcache_pin *p)
{
	struct rc_obj *o = p->obj;
	const struct obj_index *ix = &o->ix;
	const struct obj_stream *st;
	uint64_t sum, budget = p->want > c->readahead ? p->want : c->readahead;
	uint32_t end, e, i;
	int s, b, r;

	if ((s = obj_find_stream(ix, &p->id)) < 0)
		return 0;	/* nothing to load: the read says SL_E_NOTFOUND */
	if ((b = obj_find_block(ix, (uint32_t)s, p->offset)) < 0)
		return 0;	/* past the stream's end: the read says 0 */
	st = &ix->streams[s];
	end = st->block0 + st->nblocks;
	e = (uint32_t)b;
	sum = ix->blocks[e].stored;
	while (sum < p->want && e + 1 < end)
		sum += ix->blocks[++e].stored;
	p->pb0 = p->pend = (uint32_t)b;
	for (i = (uint32_t)b; i <= e;) {
		struct rc_blk *blk = o->blk[i];
		uint64_t pos, len;
		uint32_t n, k;
		int err;

		if (blk) {
			if (!p->prefetch) {
				ent_pin(c, &blk->e);
				p->pend = i + 1;
				if (blk->e.ready) {
					touch(c, &blk->e);
				} else {
					if ((r = add_waiter(blk->get, p)) < 0)
						return r;
					p->pending += (uint32_t)r;
				}
			}
			i++;
			continue;
		}
		n = obj_range(ix, i, budget, &pos, &len);
		for (k = 1; k < n && !o->blk[i + k]; k++)
			;
		if ((err = blocks_start(c, o, i, k, p)))
			return err;
		if (!p->prefetch) {
			p->pend = i + k;
			p->pending++;
		}
		i += k;
	}
	return 0;
}

/* ---- the index ---- */

static int index_start(struct rcache *c, struct rc_obj *o)
{
	struct rc_get *g = get_new(c, o, GET_TAIL);
	uint64_t guess = c->tail_guess;
	int err;

	if (!g)
		return SL_E_NOMEM;
	if (guess > o->size)
		guess = o->size;
	if ((err = get_issue(c, g, o->size - guess, guess))) {
		get_free(c, g);
		return err;
	}
	o->idx_get = g;
	return 0;
}

/* The index of g's object parsed: cache it, and move its waiters on to their blocks. */
static void index_ready(struct rcache *c, struct rc_get *g)
{
	struct rc_obj *o = g->obj;
	struct rcache_pin **w = g->w;
	uint32_t nw = g->nw, i;
	size_t charge = (size_t)o->ix.nstreams * sizeof(struct obj_stream) +
			(size_t)o->ix.nblocks * (sizeof(struct obj_block) + sizeof(struct rc_blk *));

	obj_hold(o);		/* held across the waiters' work */
	g->done = 1;
	g->w = NULL;
	g->nw = 0;
	o->idx_get = NULL;
	get_free(c, g);
	ent_ready(c, &o->e, charge);
	for (i = 0; i < nw; i++) {
		struct rcache_pin *p = w[i];
		int err;

		p->state = P_BLOCKS;
		if (!p->prefetch) {
			ent_pin(c, &o->e);
			p->ix_pinned = 1;
		}
		if ((err = load_blocks(c, p))) {
			c->st.errors++;
			load_fail_log(o, "blocks", 0, 0, err);
			load_done(c, p, err);
		} else if (p->prefetch || p->pending == 0) {
			load_done(c, p, 0);
		}
	}
	free(w);
	trim(c);
	obj_drop(c, o);
}

/* The index GET failed: every waiter gets err, the object goes (nothing cached). */
static void index_fail(struct rcache *c, struct rc_get *g, int err)
{
	struct rc_obj *o = g->obj;
	struct rcache_pin **w = g->w;
	uint32_t nw = g->nw, i;

	c->st.errors++;
	load_fail_log(o, "index", 0, 0, err);
	obj_hold(o);
	g->done = 1;
	g->w = NULL;
	g->nw = 0;
	o->idx_get = NULL;
	get_free(c, g);
	obj_index_free(&o->ix);
	free(o->blk);
	o->blk = NULL;
	for (i = 0; i < nw; i++)
		load_done(c, w[i], err);
	free(w);
	obj_drop(c, o);
}

/* An object's index from its n bytes: parsed, checked, and blk[] made. */
static int index_parse(struct rc_obj *o, const struct obj_footer *f, const uint8_t *p, size_t n)
{
	int err = obj_index_parse(f, p, n, &o->ix);

	if (err)
		return err == SL_E_SHORT ? SL_E_CORRUPT : err;
	o->blk = calloc(o->ix.nblocks ? o->ix.nblocks : 1, sizeof(*o->blk));
	if (!o->blk) {
		obj_index_free(&o->ix);
		return SL_E_NOMEM;
	}
	return 0;
}

/*
 * A GET's result as an error.  A short body, or a range starting past the
 * end, means the object is not the size the manifest says: damage.
 */
static int get_err(const struct rc_get *g, const struct objstore_result *r)
{
	if (r->err == SL_E_INVALID)
		return SL_E_CORRUPT;
	if (r->err)
		return r->err;
	if (r->body_len != g->len || (g->len && !r->body))
		return SL_E_CORRUPT;
	return 0;
}

static void tail_done(struct rcache *c, struct rc_get *g, struct objstore_result *r)
{
	struct rc_obj *o = g->obj;
	struct span ix;
	int err = get_err(g, r);

	if (!err && (err = obj_footer_parse(r->body, r->body_len, o->size, &g->f)) == SL_E_SHORT)
		err = SL_E_CORRUPT;
	if (!err) {
		if (obj_tail_index(&g->f, r->body, r->body_len, &ix)) {
			if (!(err = index_parse(o, &g->f, ix.p, ix.len))) {
				index_ready(c, g);
				return;
			}
		} else {
			g->kind = GET_INDEX;
			if (!(err = get_issue(c, g, g->f.index_off, g->f.index_len)))
				return;
		}
	}
	index_fail(c, g, err);
}

static void index_done(struct rcache *c, struct rc_get *g, struct objstore_result *r)
{
	int err = get_err(g, r);

	if (!err && !(err = index_parse(g->obj, &g->f, r->body, r->body_len))) {
		index_ready(c, g);
		return;
	}
	index_fail(c, g, err);
}

/* ---- blocks ---- */

/*
 * Decode block b from its n stored bytes at p into a batch table, and into
 * owned memory unless it is stored raw and y holds p (then b shares y).
 */
static int blk_fill(struct rc_blk *b, const struct obj_block *ob, const uint8_t *p, size_t n,
		    struct rc_body *y, size_t *charge)
{
	struct obj_block_data d;
	struct obj_batch bt;
	struct sl_rd it;
	uint32_t k = 0;
	int err, r;

	if ((err = obj_block_decode(ob, p, n, OBJ_BLOCK_MAX, &d)))
		return err == SL_E_SHORT ? SL_E_CORRUPT : err;
	if (d.owned) {
		b->mem = d.owned;
		d.owned = NULL;
	} else if (y) {
		b->body = y;
		y->refs++;
	} else {
		if (!(b->mem = malloc(d.len ? d.len : 1)))
			return SL_E_NOMEM;
		memcpy(b->mem, d.p, d.len);
		d.p = b->mem;
	}
	b->data = d.p;
	if (!(b->tab = malloc((size_t)ob->batches * sizeof(*b->tab))))
		return SL_E_NOMEM;
	obj_batch_iter(&it, &d);
	while ((r = obj_batch_next(&it, &bt)) == 1) {
		if (k == ob->batches)
			return SL_E_CORRUPT;
		b->tab[k].last = bt.base + (int64_t)bt.count - 1;
		b->tab[k].p = bt.bytes.p;
		b->tab[k].len = bt.bytes.len;
		k++;
	}
	if (r < 0 || k != ob->batches)
		return SL_E_CORRUPT;
	b->nb = k;
	*charge = d.len + (size_t)k * sizeof(*b->tab);
	return 0;
}

static void blocks_done(struct rcache *c, struct rc_get *g, struct objstore_result *r)
{
	struct rc_obj *o = g->obj;
	struct rcache_pin **w = g->w;
	uint32_t nw = g->nw, i, b0 = g->b0, n = g->n;
	size_t *charge = calloc(n, sizeof(*charge));
	struct rc_body *y = NULL;
	const uint8_t *body = r->body;
	int err = get_err(g, r);

	obj_hold(o);
	g->done = 1;
	g->w = NULL;
	g->nw = 0;
	if (!err && !charge)
		err = SL_E_NOMEM;
	if (!err && body && (y = calloc(1, sizeof(*y)))) {
		size_t len;

		y->refs = 1;	/* ours until the loop below is done */
		y->p = objstore_result_take_body(r, &len);
	}
	for (i = 0; !err && i < n; i++) {
		const struct obj_block *ob = &o->ix.blocks[b0 + i];

		/* The index was checked: blocks of a run are adjacent from g->first. */
		err = blk_fill(o->blk[b0 + i], ob, body + (ob->pos - g->first), ob->stored, y,
			       &charge[i]);
	}
	if (err) {
		c->st.errors++;
		load_fail_log(o, "blocks", b0, n, err);
		for (i = 0; i < nw; i++)
			load_done(c, w[i], err);
		for (i = b0; i < b0 + n; i++) {
			struct rc_blk *b = o->blk[i];

			SL_ASSERT(b->e.pins == 0);
			blk_free(b);
			o->blk[i] = NULL;
			o->nblk--;
		}
		get_free(c, g);
	} else {
		for (i = 0; i < n; i++) {
			struct rc_blk *b = o->blk[b0 + i];

			b->get = NULL;
			ent_ready(c, &b->e, charge[i]);
		}
		get_free(c, g);
		for (i = 0; i < nw; i++) {
			struct rcache_pin *p = w[i];

			SL_ASSERT(p->pending > 0 && p->state == P_BLOCKS);
			if (--p->pending == 0)
				load_done(c, p, 0);
		}
		trim(c);
	}
	body_drop(y);
	free(charge);
	free(w);
	obj_drop(c, o);
}

static void on_get(void *arg, struct objstore_result *r)
{
	struct rc_get *g = arg;
	struct rcache *c = g->c;

	g->op = NULL;
	c->st.get_bytes += r->body_len;
	switch (g->kind) {
	case GET_TAIL:
		tail_done(c, g, r);
		break;
	case GET_INDEX:
		index_done(c, g, r);
		break;
	case GET_BLOCKS:
		blocks_done(c, g, r);
		break;
	}
}

/* ---- the interface ---- */

struct rcache *rcache_new(struct loop *l, struct objstore *os, const struct rcache_options *o)
{
	struct rcache *c;

	if (!l || !os || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->l = l;
	c->os = os;
	c->cap = o ? o->cap : 0;
	c->readahead = o && o->readahead ? o->readahead : RC_READAHEAD_DEFAULT;
	c->tail_guess = o && o->tail_guess ? o->tail_guess : RC_TAIL_DEFAULT;
	if (c->tail_guess < OBJ_FOOTER_LEN)
		c->tail_guess = OBJ_FOOTER_LEN;
	c->tabcap = RC_TAB_MIN;
	if (!(c->tab = calloc(c->tabcap, sizeof(*c->tab)))) {
		free(c);
		return NULL;
	}
	c->lru.prev = c->lru.next = &c->lru;
	loop_task_init(&c->trim_task, on_trim, c);
	return c;
}

void rcache_free(struct rcache *c)
{
	size_t i;

	if (!c)
		return;
	loop_task_cancel(c->l, &c->trim_task);
	while (c->gets) {
		struct rc_get *g = c->gets;

		if (g->op)
			objstore_cancel(c->os, g->op);
		c->gets = g->next;
		free(g->w);
		free(g);
	}
	while (c->pins) {
		struct rcache_pin *p = c->pins;

		loop_timer_cancel(c->l, &p->t);
		c->pins = p->next;
		free(p);
	}
	for (i = 0; i < c->tabcap; i++)
		while (c->tab[i])
			obj_free(c, c->tab[i]);
	free(c->tab);
	free(c);
}

static int where_ok(const struct rcache_where *w)
{
	return w && w->key && objstore_key_check(w->key) == 0 && w->size >= RC_OBJ_MIN &&
	       w->offset >= 0;
}

static struct rcache_pin *pin_new(struct rcache *c, const struct rcache_where *w, size_t want,
				  rcache_fn fn, void *arg)
{
	struct rcache_pin *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->c = c;
	p->id = w->id;
	p->offset = w->offset;
	p->want = want;
	p->fn = fn;
	p->arg = arg;
	p->prefetch = fn == NULL;
	loop_timer_init(&p->t, on_pin_timer, p);
	p->next = c->pins;
	if (c->pins)
		c->pins->prev = p;
	c->pins = p;
	if (p->prefetch)
		c->prefetching++;
	return p;
}

/* Attach p to the object of w (made, and its index GET started, when absent). */
static int pin_attach(struct rcache *c, struct rcache_pin *p, const struct rcache_where *w)
{
	struct rc_obj *o = obj_find(c, w->key);
	int err, r;

	if (!o && !(o = obj_new(c, w->key, w->size)))
		return SL_E_NOMEM;
	p->obj = o;
	obj_hold(o);
	if (o->e.ready) {
		p->state = P_BLOCKS;
		if (!p->prefetch) {
			ent_pin(c, &o->e);
			p->ix_pinned = 1;
		}
		touch(c, &o->e);
		if ((err = load_blocks(c, p)))
			return err;
		if (p->pending == 0)
			load_done(c, p, 0);
		return 0;
	}
	p->state = P_INDEX;
	if (!o->idx_get && (err = index_start(c, o)))
		return err;
	if ((r = add_waiter(o->idx_get, p)) < 0)
		return r;
	return 0;
}

int rcache_load(struct rcache *c, const struct rcache_where *w, size_t want_bytes,
		rcache_fn fn, void *arg, struct rcache_pin **pin)
{
	struct rcache_pin *p;
	int err;

	if (!c || !where_ok(w) || !fn || !pin)
		return SL_E_INVALID;
	if (!(p = pin_new(c, w, want_bytes, fn, arg)))
		return SL_E_NOMEM;
	if ((err = pin_attach(c, p, w))) {
		pin_free(c, p);
		return err;
	}
	*pin = p;
	return 0;
}

void rcache_unpin(struct rcache *c, struct rcache_pin *pin)
{
	if (!c || !pin)
		return;
	pin_free(c, pin);
	if (c->st.bytes > c->cap)
		loop_defer(c->l, &c->trim_task);
}

void rcache_prefetch(struct rcache *c, const struct rcache_where *w, size_t want_bytes)
{
	struct rc_obj *o;
	struct rcache_pin *p;

	if (!c || !where_ok(w) || c->cap == 0 || c->st.pinned_bytes >= c->cap ||
	    c->prefetching >= RC_PREFETCH_MAX)
		return;
	o = obj_find(c, w->key);
	if (o && !o->e.ready)
		return;		/* its index is on the way */
	if (!(p = pin_new(c, w, want_bytes, NULL, NULL)))
		return;
	if (pin_attach(c, p, w))
		pin_free(c, p);
}

/* The first batch of b whose last offset is >= offset. */
static uint32_t batch_find(const struct rc_blk *b, int64_t offset)
{
	uint32_t lo = 0, hi = b->nb;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (b->tab[mid].last < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int rcache_read(struct rcache *c, const struct rcache_where *w, size_t max_bytes, int min_one,
		struct span *spans, int maxspans, size_t *total, int64_t *next)
{
	struct rc_obj *o;
	const struct obj_stream *st;
	struct rc_blk *b;
	uint32_t bi, end, k;
	int s, fb, n = 0;

	if (total)
		*total = 0;
	if (next && w)
		*next = w->offset;
	if (!c || !w || !w->key || w->offset < 0 || !spans || maxspans < 1 || !total || !next)
		return SL_E_INVALID;
	o = obj_find(c, w->key);
	if (!o || !o->e.ready) {
		c->st.misses++;
		return SL_E_AGAIN;
	}
	touch(c, &o->e);
	if ((s = obj_find_stream(&o->ix, &w->id)) < 0)
		return SL_E_NOTFOUND;
	if ((fb = obj_find_block(&o->ix, (uint32_t)s, w->offset)) < 0)
		return 0;
	b = o->blk[fb];
	if (!b || !b->e.ready) {
		c->st.misses++;
		return SL_E_AGAIN;
	}
	c->st.hits++;
	st = &o->ix.streams[s];
	end = st->block0 + st->nblocks;
	touch(c, &b->e);
	k = batch_find(b, w->offset);
	for (bi = (uint32_t)fb; bi < end; bi++, k = 0) {
		b = o->blk[bi];
		if (!b || !b->e.ready)
			break;
		for (; k < b->nb; k++) {
			const struct rc_batch *bt = &b->tab[k];

			if (n == maxspans || (*total + bt->len > max_bytes && !(n == 0 && min_one)))
				return n;
			if (k == 0)
				touch(c, &b->e);	/* used: a batch of it is returned */
			spans[n].p = bt->p;
			spans[n].len = bt->len;
			*total += bt->len;
			*next = bt->last + 1;
			n++;
		}
	}
	return n;
}

const struct obj_index *rcache_index(struct rcache *c, const char *key)
{
	struct rc_obj *o = c && key ? obj_find(c, key) : NULL;

	if (!o || !o->e.ready)
		return NULL;
	touch(c, &o->e);
	return &o->ix;
}

int rcache_block(struct rcache *c, const char *key, uint32_t b, struct obj_block_data *d)
{
	struct rc_obj *o = c && key ? obj_find(c, key) : NULL;
	struct rc_blk *blk;

	memset(d, 0, sizeof(*d));
	if (!o || !o->e.ready)
		return SL_E_AGAIN;
	if (b >= o->ix.nblocks)
		return SL_E_INVALID;
	blk = o->blk[b];
	if (!blk || !blk->e.ready)
		return SL_E_AGAIN;
	touch(c, &blk->e);
	/* blk_fill kept the decoded bytes whole: obj_block_decode made them raw bytes long. */
	d->p = blk->data;
	d->len = o->ix.blocks[b].raw;
	return 0;
}

void rcache_stats(const struct rcache *c, struct rcache_stats *st)
{
	*st = c->st;
}
