/*
 * h_offsets.c - ListOffsets: earliest, latest, max timestamp, and by time.
 *
 * Special timestamps: -2 earliest (the log start offset), -1 latest (the
 * high watermark; with no transactions the last stable offset is the same),
 * -3 the record with the largest timestamp (v7).  v0 answers in its old
 * form, a list holding one offset.
 *
 * By time (timestamp >= 0), as Kafka answers (UnifiedLog's
 * fetchOffsetByTimestamp, FileRecords.searchForTimestamp): from the log
 * start, the first batch whose max timestamp is at least ts, and in it the
 * first record at or after the log start whose timestamp is at least ts;
 * its offset and timestamp.  A log start inside a batch never gives an
 * offset below it: a batch whose only such records lie below the start
 * passes the search on to the next batch.  None found is offset -1.
 * Largest (-3): the batch with the largest max timestamp (the first of
 * equals), then its first record with that timestamp.  With the log start
 * inside a batch, that batch's max timestamp may be a record's below the
 * start: its best record at or after the start is then kept aside, and
 * the search goes on after the batch, the larger of the two answering
 * (the kept one on a tie, being first).
 *
 * Where: a partition's offsets below stream_mem_start() live only in data
 * objects (storage/tier.h).  They are searched first, through the block
 * cache (tier_find_time, tier_find_max_time), then memory from where the
 * objects end.  A partition whose search must read objects makes the
 * request wait, as Fetch does for cold reads; its lookup holds the batch
 * found pinned until the answer is taken from it:
 *
 *   h_list_offsets --every partition answered from memory--> reply
 *      \--n partitions need objects: pending n + 1--> WAIT
 *   WAIT --a lookup's callback: answer (or search again), unpin, pending - 1--> last: reply
 *      \--connection closed--> cancel: end every lookup (no callback after), free
 *
 * A callback finds its partition again by stream id: a topic deleted
 * meanwhile answers UNKNOWN_TOPIC_OR_PARTITION.  Memory may have shrunk
 * from below meanwhile (uploaded batches evicted): what left it is then in
 * the objects, and the search goes on there before memory.  A read that
 * fails answers KAFKA_STORAGE_ERROR (retriable) for its partition.
 */
#include "batch.h"
#include "kreq.h"
#include "../kernel/log.h"

enum { TS_LATEST = -1, TS_EARLIEST = -2, TS_MAX = -3 };

/* A partition searched by time or for the largest time; in the request's arena. */
struct part {
	struct kreq *kr;
	struct list_offsets_resp_list_offsets_partition_response *rp;
	struct stream_id id;
	int64_t ts;			/* >= 0, or TS_MAX */
	int64_t from;			/* nothing below is searched (the log start, or past what was) */
	int64_t limit;			/* memory's start when the lookup in objects began */
	int64_t start;			/* the log start then */
	int64_t kept_off, kept_ts;	/* -3: the best record of a batch the start is inside, or -1 */
	struct tier_time *h;		/* the lookup under way, or holding its batch */
	struct part *next;		/* ostate.waiting */
};

struct ostate {
	int32_t pending;		/* lookups under way, + 1 while building */
	int nomem;
	struct part *waiting;		/* partitions that went to the objects */
};

/* The answer: offset and timestamp (-1 for none). */
static void answer(struct part *p, int64_t off, int64_t ts)
{
	struct kreq *kr = p->kr;
	struct list_offsets_resp_list_offsets_partition_response *rp = p->rp;

	rp->error_code = 0;
	rp->offset = off;
	rp->timestamp = off >= 0 ? ts : -1;
	rp->leader_epoch = 0;
	if (kr->ver == 0) {
		int64_t *old = arena_alloc(&kr->a, sizeof(int64_t));
		if (!old) {
			((struct ostate *)kr->state)->nomem = 1;
			return;
		}
		*old = off;
		rp->old_style_offsets = old;
		rp->old_style_offsets_n = off >= 0 ? 1 : 0;
	}
}

static void fail(struct part *p, int16_t code)
{
	p->rp->error_code = code;
	p->rp->offset = -1;
	p->rp->timestamp = -1;
}

/* ---- memory ---- */

struct first_seek {
	int64_t from, ts;
	int64_t off, found_ts;
};

static int first_in_batch(void *arg, const struct stream_batch *b)
{
	struct first_seek *f = arg;

	return b->max_ts >= f->ts &&
	       batch_find_ts_from(b->bytes.p, b->bytes.len, b->base, f->from, f->ts, &f->off,
				  &f->found_ts) == 0;
}

/* By time in memory, from p->from. */
static void memory_first(struct part *p, struct stream *s)
{
	struct first_seek f = { p->from, p->ts, -1, -1 };

	stream_foreach(s, p->from, first_in_batch, &f);
	answer(p, f.off, f.found_ts);
}

struct max_seek {
	int64_t best;			/* -1: none (batches without a timestamp never count) */
	struct stream_batch b;
};

static int max_batch(void *arg, const struct stream_batch *b)
{
	struct max_seek *m = arg;

	if (b->max_ts > m->best) {
		m->best = b->max_ts;
		m->b = *b;
	}
	return 0;
}

/*
 * -3: answer from the best of the record kept aside, the objects' batch b
 * (or none) and memory's best batch from p->from; on equal timestamps the
 * first in offset order.  1 when the best is a batch the log start is
 * inside whose max timestamp is a record's below the start: its best
 * record at or after the start is kept aside and the search must go on
 * after it.
 */
static int answer_max(struct part *p, struct stream *s, const struct tier_batch *b)
{
	struct max_seek m = { -1, { 0 } };
	int64_t best = p->kept_ts, base, count, off, ts;
	const struct span *bytes = NULL;

	stream_foreach(s, p->from, max_batch, &m);
	if (b && b->max_ts > best) {
		best = b->max_ts;
		bytes = &b->bytes;
		base = b->base;
		count = b->count;
	}
	if (m.best > best) {
		best = m.best;
		bytes = &m.b.bytes;
		base = m.b.base;
		count = m.b.count;
	}
	if (!bytes) {
		answer(p, p->kept_off, p->kept_ts);
		return 0;
	}
	if (batch_find_max_ts_from(bytes->p, bytes->len, base, p->from, &off, &ts) != 0)
		off = ts = -1;
	if (base < p->from && ts < best) {
		p->kept_off = off;
		p->kept_ts = off >= 0 ? ts : -1;
		p->from = base + count;
		return 1;
	}
	answer(p, off, ts);
	return 0;
}

/* ---- the search ---- */

static void on_found(void *arg, int err, const struct tier_batch *b);

/*
 * Search s for p from p->from: answer it (0), or start a lookup in the
 * objects whose callback answers (1).
 */
static int search(struct part *p, struct stream *s)
{
	struct tier *t = p->kr->k->tier;
	int rc;

	do {
		rc = SL_E_NOTFOUND;
		p->start = stream_start(s);
		if (p->from < p->start)
			p->from = p->start;
		p->limit = stream_mem_start(s);
		if (p->ts == TS_MAX) {
			struct max_seek m = { p->kept_ts, { 0 } };
			stream_foreach(s, p->from, max_batch, &m);
			if (t && p->from < p->limit)
				rc = tier_find_max_time(t, s, p->from, m.best, on_found, p, &p->h);
		} else if (t && p->from < p->limit) {
			rc = tier_find_time(t, s, p->from, p->ts, on_found, p, &p->h);
		}
		if (rc == 0)
			return 1;
		if (rc != SL_E_NOTFOUND) {
			p->h = NULL;
			log_warn("kafka", "list offsets: reading older records from the object store "
				 "failed: %s", sl_strerror(rc));
			fail(p, KERR_KAFKA_STORAGE_ERROR);
			return 0;
		}
		if (p->ts != TS_MAX) {
			memory_first(p, s);
			return 0;
		}
	} while (answer_max(p, s, NULL));
	return 0;
}

static void reply(struct kreq *kr)
{
	if (((struct ostate *)kr->state)->nomem)
		kreq_fail(kr, "ListOffsets response exceeds the request's memory cap");
	else
		kreq_reply(kr);
}

static void part_done(struct kreq *kr)
{
	struct ostate *st = kr->state;

	if (--st->pending == 0)
		reply(kr);
}

/* A lookup in the objects ended: answer from b, or search on. */
static void on_found(void *arg, int err, const struct tier_batch *b)
{
	struct part *p = arg;
	struct kreq *kr = p->kr;
	struct stream *s = store_stream(kr->k->st, &p->id, 0);
	int again = 0;

	if (err) {
		log_warn("kafka", "list offsets: reading older records from the object store failed: %s",
			 sl_strerror(err));
		fail(p, KERR_KAFKA_STORAGE_ERROR);
	} else if (!s) {
		fail(p, KERR_UNKNOWN_TOPIC_OR_PARTITION);
	} else if (p->ts == TS_MAX) {
		if (stream_start(s) != p->start) {
			/* Records were deleted meanwhile: anew from the new log start. */
			p->kept_off = p->kept_ts = -1;
			p->from = stream_start(s);
			again = 1;
		} else if (stream_mem_start(s) > p->limit) {
			/* Memory lost batches from below (evicted): look again, they are in objects. */
			again = 1;
		} else {
			again = answer_max(p, s, b);
		}
	} else if (b) {
		int64_t off, ts;
		if (p->from < stream_start(s))
			p->from = stream_start(s);
		if (batch_find_ts_from(b->bytes.p, b->bytes.len, b->base, p->from, p->ts, &off, &ts) == 0) {
			answer(p, off, ts);
		} else {
			/* Its records at or after ts lie below the log start: on from the next batch. */
			p->from = b->base + (int64_t)b->count;
			again = 1;
		}
	} else if (stream_mem_start(s) > p->limit) {
		/* The objects hold nothing in [from, limit); what left memory since is in them now. */
		if (p->from < p->limit)
			p->from = p->limit;
		again = 1;
	} else {
		memory_first(p, s);
	}
	tier_find_time_done(kr->k->tier, p->h);
	p->h = NULL;
	if (again && search(p, s) == 1)
		return;
	part_done(kr);
}

static void on_cancel(struct kreq *kr)
{
	struct ostate *st = kr->state;

	for (struct part *p = st->waiting; p; p = p->next) {
		tier_find_time_done(kr->k->tier, p->h);
		p->h = NULL;
	}
	/* The connection is gone: nothing to answer, nothing else holds kr. */
	kreq_reply(kr);
}

/* The special timestamps, answered at once; 1 when p->ts needs a search. */
static int special(struct part *p, struct stream *s, int16_t ver)
{
	switch (p->ts) {
	case TS_EARLIEST:
		answer(p, stream_start(s), -1);
		return 0;
	case TS_LATEST:
		answer(p, stream_hw(s), -1);
		return 0;
	case TS_MAX:
		if (ver < 7) {
			p->rp->error_code = KERR_UNSUPPORTED_VERSION;
			return 0;
		}
		return 1;
	default:
		if (p->ts < 0) {
			p->rp->error_code = KERR_INVALID_REQUEST;
			return 0;
		}
		return 1;
	}
}

void h_list_offsets(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct list_offsets_req *rq = kr->body;
	struct list_offsets_resp *rs = kr->resp;
	int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;
	struct ostate *st = arena_calloc(&kr->a, 1, sizeof(*st));

	if (!st)
		goto nomem;
	st->pending = 1;
	kr->state = st;
	kr->cancel = on_cancel;
	rs->topics_n = nt;
	if (nt > 0 && !(rs->topics = KR_NEW(kr, list_offsets_resp_list_offsets_topic_response, nt)))
		goto nomem;
	for (int32_t i = 0; i < nt; i++) {
		struct list_offsets_req_list_offsets_topic *qt = &rq->topics[i];
		struct list_offsets_resp_list_offsets_topic_response *rt = &rs->topics[i];
		int32_t np = qt->partitions_n > 0 ? qt->partitions_n : 0;
		struct topic *t = qt->name.len > 0 ? topic_find(k->reg, qt->name.p, (size_t)qt->name.len) : NULL;

		rt->name = qt->name;
		rt->partitions_n = np;
		if (np > 0 && !(rt->partitions = KR_NEW(kr, list_offsets_resp_list_offsets_partition_response, np)))
			goto nomem;
		for (int32_t j = 0; j < np; j++) {
			struct list_offsets_req_list_offsets_partition *qp = &qt->partitions[j];
			struct list_offsets_resp_list_offsets_partition_response *rp = &rt->partitions[j];

			rp->partition_index = qp->partition_index;
			if (!t || qp->partition_index < 0 || qp->partition_index >= t->npart) {
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			struct stream *s = t->parts[qp->partition_index];
			struct part *p = arena_calloc(&kr->a, 1, sizeof(*p));
			if (!p)
				goto nomem;
			p->kr = kr;
			p->rp = rp;
			p->id = *stream_id_of(s);
			p->ts = qp->timestamp;
			p->kept_off = p->kept_ts = -1;
			if (special(p, s, kr->ver) && search(p, s) == 1) {
				p->next = st->waiting;
				st->waiting = p;
				st->pending++;
			}
		}
	}
	part_done(kr);
	return;
nomem:
	if (st) {
		for (struct part *p = st->waiting; p; p = p->next)
			tier_find_time_done(k->tier, p->h);
	}
	kreq_fail(kr, "ListOffsets response exceeds the request's memory cap");
}
