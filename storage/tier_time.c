/*
 * tier_time.c - lookups by time below the memory tail: which batch of a
 * partition's data objects holds the first record at or after a time, or
 * the largest time (ListOffsets; contract in tier.h).
 *
 * Owns one struct tier_time per lookup: the key of the object it is in (a
 * copy: manifest pointers go stale at the next edit), the pins it holds in
 * the block cache, and the batch found.  Tier, manifest and cache are
 * borrowed through tier.h's accessors; the stream only during the call (its
 * id is kept, and the partition is found again in the manifest at each
 * step, so a deleted topic just ends the walk).
 *
 * What narrows the search, coarse to fine, each level read only when the
 * one above says it may hold the answer:
 *   manifest ranges     max_ts per range (-1 unknown: look inside), no GET;
 *   the object's index  max_ts per block: one GET of the object's end,
 *                       loaded alone (a load past the stream's end pins
 *                       the index and no block; rcache.h);
 *   a block             max_ts per batch (obj_batch_next), one ranged GET
 *                       (with the cache's read-ahead: a consumer seeking
 *                       there will read on).
 *
 * By time (tier_find_time): ranges, blocks and batches in offset order from
 * `from`, the first whose max_ts >= ts.  A level that holds none moves
 * `from` past itself and the walk goes on at the next one.  Timestamps need
 * not grow with offsets, so this is a scan, not a bisection; the index and
 * range max_ts let it skip what cannot match without reading it.
 *
 * Largest time (tier_find_max_time): at each level the best candidate by
 * (max_ts descending, offset ascending), so the first of equals wins.  A
 * level's max_ts is exact except for the range and the block that `from`
 * (the log start) falls inside: theirs may come from records below it.
 * So when a batch is found, and a candidate not looked into yet has a
 * larger max_ts than the batch, the walk goes on with ts above the batch's
 * (only exact candidates can pass it now, and the best of them holds its
 * max_ts), else the batch is the answer.  When a candidate holds nothing
 * at or after `from`, the next best of its level is tried: `tried`
 * remembers the last one looked into, and the order is total, so each is
 * looked into once.  Ranges of unknown max_ts are not looked into: every
 * range the tier writes records its max_ts, -1 only when no batch in it
 * has a timestamp, which the largest-time answer never counts (as in
 * memory).
 *
 *   start --no range can hold it--> SL_E_NOTFOUND at once (no callback)
 *     \--> INDEX (the range's object, index pinned)
 *            --a block may hold it--> BLOCK (that block pinned)
 *            |                          --a batch holds it--> FOUND: fn(batch); pins kept until done
 *            |                          --(largest) a candidate left is larger--> raise ts, as below
 *            |                          \--none: next block of the range--> BLOCK, or as below
 *            \--no block left: unpin, next range--> INDEX, or fn(NULL): not found
 *   a load fails --> fn(err), nothing held
 *
 * Callbacks: fn runs from the cache's callbacks (never inside a call of
 * ours), and is the last thing done with the lookup: it may end it.
 */
#include <stdlib.h>
#include <string.h>
#include "tier.h"
#include "rcache.h"

/* A candidate of the largest-time walk, ordered by (max_ts descending, offset ascending). */
struct cand {
	int64_t ts, first;
	int set;
};

struct tier_time {
	struct tier *t;
	struct rcache *rc;
	struct stream_id id;
	int64_t from;		/* batches ending below are not looked at */
	int64_t limit;		/* nor those beginning at or above: memory holds them */
	int64_t ts;
	int max;		/* the largest max_ts, not the first >= ts */
	tier_time_fn fn;
	void *arg;

	/* the range looked into */
	char *key;
	uint64_t size;
	struct cand range;	/* its max_ts and first offset */
	int64_t r_last;
	struct rcache_pin *ix_pin;

	/* the block looked into */
	uint32_t blk;
	struct cand block;
	int64_t b_last;
	struct rcache_pin *blk_pin;

	struct cand r_tried, b_tried;	/* largest time: the candidates looked into last */
	struct tier_batch found;
};

static int better(const struct cand *a, const struct cand *b)
{
	return a->ts > b->ts || (a->ts == b->ts && a->first < b->first);
}

/* Not looked into yet: comes after the last one tried in the order. */
static int untried(const struct cand *tried, const struct cand *c)
{
	return !tried->set || better(tried, c);
}

/* The partition, found again; from moves up to its log start. */
static const struct mf_partition *partition(struct tier_time *q)
{
	const struct manifest *m = tier_manifest(q->t);
	const struct mf_partition *p = m ? manifest_partition(m, q->id.ns, q->id.index) : NULL;

	if (p && q->from < p->log_start)
		q->from = p->log_start;
	return p;
}

/*
 * The range of p to look into next: by time, the first that may hold a
 * match; largest, the best not tried yet.  NULL when none is left.
 */
static const struct mf_range *pick_range(struct tier_time *q, const struct mf_partition *p)
{
	const struct mf_range *best = NULL;
	struct cand bc = { 0, 0, 0 };

	for (size_t i = manifest_range_index(p, q->from); i < p->nranges && p->ranges[i].first < q->limit; i++) {
		const struct mf_range *r = &p->ranges[i];
		struct cand c = { r->max_ts, r->first, 1 };

		if (!q->max) {
			if (r->max_ts >= q->ts || r->max_ts == -1)
				return r;
		} else if (r->max_ts >= q->ts && untried(&q->r_tried, &c) && (!best || better(&c, &bc))) {
			best = r;
			bc = c;
		}
	}
	return best;
}

/* The blocks of the current range from `from` on: [*b, *end) of ix; 0, or as next_range. */
static int range_blocks(struct tier_time *q, const struct obj_index *ix, uint32_t *b, uint32_t *end)
{
	int s, fb;

	if (!ix)
		return SL_E_AGAIN;	/* cannot be: the index is pinned */
	if ((s = obj_find_stream(ix, &q->id)) < 0)
		return SL_E_CORRUPT;	/* the manifest names a range the object lacks */
	if ((fb = obj_find_block(ix, (uint32_t)s, q->from)) < 0)
		return SL_E_NOTFOUND;
	*b = (uint32_t)fb;
	*end = ix->streams[s].block0 + ix->streams[s].nblocks;
	while (*end > *b && (ix->blocks[*end - 1].first > q->r_last ||
			     ix->blocks[*end - 1].first >= q->limit))
		(*end)--;
	return 0;
}

static void on_index(void *arg, int err);
static void on_block(void *arg, int err);

/* Look into the next range: 0 (a load is under way), SL_E_NOTFOUND (none is left) or an error. */
static int next_range(struct tier_time *q)
{
	const struct mf_partition *p = partition(q);
	const struct mf_range *r;
	const struct mf_object *o;
	char *key;

	if (!p || q->from >= q->limit || !(r = pick_range(q, p)))
		return SL_E_NOTFOUND;
	if (!(o = manifest_object(tier_manifest(q->t), r->object)))
		return SL_E_CORRUPT;
	if (!(key = strdup(o->key)))
		return SL_E_NOMEM;
	free(q->key);
	q->key = key;
	q->size = o->size;
	q->range = (struct cand){ r->max_ts, r->first, 1 };
	q->r_last = r->last;
	q->b_tried.set = 0;

	struct rcache_where w = { q->key, q->size, q->id, INT64_MAX };
	return rcache_load(q->rc, &w, 0, on_index, q, &q->ix_pin);
}

/* Look into the next block of the range: as next_range. */
static int next_block(struct tier_time *q)
{
	const struct obj_index *ix = rcache_index(q->rc, q->key);
	uint32_t b, end;
	int pick = -1, err;
	struct cand bc = { 0, 0, 0 };

	if ((err = range_blocks(q, ix, &b, &end)))
		return err;
	for (; b < end; b++) {
		const struct obj_block *ob = &ix->blocks[b];
		struct cand c = { ob->max_ts, ob->first, 1 };

		if (ob->max_ts < q->ts)
			continue;
		if (!q->max) {
			pick = (int)b;
			break;
		}
		if (untried(&q->b_tried, &c) && (pick < 0 || better(&c, &bc))) {
			pick = (int)b;
			bc = c;
		}
	}
	if (pick < 0)
		return SL_E_NOTFOUND;
	const struct obj_block *ob = &ix->blocks[pick];
	q->blk = (uint32_t)pick;
	q->block = (struct cand){ ob->max_ts, ob->first, 1 };
	q->b_last = ob->last;

	struct rcache_where w = { q->key, q->size, q->id, ob->first > q->from ? ob->first : q->from };
	return rcache_load(q->rc, &w, 1, on_block, q, &q->blk_pin);
}

/*
 * Largest time: could a candidate not looked into yet beat the batch
 * found?  Those come after the current one in the order (the blocks of
 * this range after the current block, the ranges after this one); one
 * with a larger max_ts could.
 */
static int beatable(struct tier_time *q)
{
	const struct obj_index *ix = rcache_index(q->rc, q->key);
	const struct mf_partition *p = partition(q);
	int64_t ts = q->found.max_ts;
	uint32_t b, end;

	if (range_blocks(q, ix, &b, &end) == 0) {
		for (; b < end; b++) {
			struct cand c = { ix->blocks[b].max_ts, ix->blocks[b].first, 1 };

			if (c.ts > ts && better(&q->block, &c))
				return 1;
		}
	}
	for (size_t i = p ? manifest_range_index(p, q->from) : 0; p && i < p->nranges &&
	     p->ranges[i].first < q->limit; i++) {
		struct cand c = { p->ranges[i].max_ts, p->ranges[i].first, 1 };

		if (c.ts > ts && better(&q->range, &c))
			return 1;
	}
	return 0;
}

static void release(struct tier_time *q)
{
	rcache_unpin(q->rc, q->blk_pin);
	q->blk_pin = NULL;
	rcache_unpin(q->rc, q->ix_pin);
	q->ix_pin = NULL;
}

/* Not found (err 0) or failed: nothing stays held; fn is the last touch of q. */
static void finish(struct tier_time *q, int err)
{
	release(q);
	q->fn(q->arg, err, NULL);
}

/* The current range holds nothing more: on to the next. */
static int leave_range(struct tier_time *q)
{
	rcache_unpin(q->rc, q->ix_pin);
	q->ix_pin = NULL;
	if (q->max)
		q->r_tried = q->range;
	else if (q->r_last + 1 > q->from)
		q->from = q->r_last + 1;
	return next_range(q);
}

/* After a level held nothing: the walk goes on, or ends with err or not found. */
static void go_on(struct tier_time *q, int err)
{
	if (err == SL_E_NOTFOUND)
		err = leave_range(q);
	if (err == SL_E_NOTFOUND)
		finish(q, 0);
	else if (err)
		finish(q, err);
}

static void on_index(void *arg, int err)
{
	struct tier_time *q = arg;

	if (err) {
		finish(q, err);
		return;
	}
	go_on(q, next_block(q));
}

static void on_block(void *arg, int err)
{
	struct tier_time *q = arg;
	struct obj_block_data d;
	struct obj_batch bt;
	struct sl_rd it;
	int r = 0, got = 0;

	if (err || (err = rcache_block(q->rc, q->key, q->blk, &d))) {
		finish(q, err);
		return;
	}
	obj_batch_iter(&it, &d);
	while ((r = obj_batch_next(&it, &bt)) == 1) {
		if (bt.base + (int64_t)bt.count - 1 < q->from || bt.max_ts < q->ts)
			continue;
		if (got && bt.max_ts <= q->found.max_ts)
			continue;
		q->found = (struct tier_batch){ bt.base, bt.count, bt.max_ts, bt.bytes };
		got = 1;
		if (!q->max)
			break;
	}
	if (!got && r < 0) {
		finish(q, SL_E_CORRUPT);
		return;
	}
	if (got && q->max && beatable(q)) {
		q->ts = q->found.max_ts + 1;
		got = 0;
	}
	if (got) {
		q->fn(q->arg, 0, &q->found);
		return;
	}
	rcache_unpin(q->rc, q->blk_pin);
	q->blk_pin = NULL;
	if (q->max)
		q->b_tried = q->block;
	else if (q->b_last + 1 > q->from)
		q->from = q->b_last + 1;
	go_on(q, next_block(q));
}

static int start(struct tier *t, struct stream *s, int64_t from, int64_t ts, int max,
		 tier_time_fn fn, void *arg, struct tier_time **h)
{
	struct rcache *rc = tier_rcache(t);
	struct tier_time *q;
	int err;

	if (!t || !rc || !tier_manifest(t))
		return SL_E_NOTFOUND;
	if (!(q = calloc(1, sizeof(*q))))
		return SL_E_NOMEM;
	q->t = t;
	q->rc = rc;
	q->id = *stream_id_of(s);
	q->from = from > stream_start(s) ? from : stream_start(s);
	q->limit = stream_mem_start(s);
	q->ts = ts;
	q->max = max;
	q->fn = fn;
	q->arg = arg;
	if ((err = next_range(q))) {
		tier_find_time_done(t, q);
		return err;
	}
	*h = q;
	return 0;
}

int tier_find_time(struct tier *t, struct stream *s, int64_t from, int64_t ts,
		   tier_time_fn fn, void *arg, struct tier_time **h)
{
	return start(t, s, from, ts, 0, fn, arg, h);
}

int tier_find_max_time(struct tier *t, struct stream *s, int64_t from, int64_t ts,
		       tier_time_fn fn, void *arg, struct tier_time **h)
{
	return start(t, s, from, ts > 0 ? ts : 0, 1, fn, arg, h);
}

void tier_find_time_done(struct tier *t, struct tier_time *h)
{
	if (!h)
		return;
	release(h);
	free(h->key);
	free(h);
}
