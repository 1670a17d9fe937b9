/*
 * h_fetch.c - Fetch, with long polling.
 *
 * A fetch is answered at once when it has min_bytes of data, when any
 * partition has an error, or when max_wait_ms is 0.  Otherwise it waits:
 * one stream waiter per requested partition and a timer for max_wait_ms.
 * Each wake counts what is now available without building anything; the
 * response is built once, when it is enough or when the timer fires.
 *
 *   h_fetch --enough/error--> build --> reply
 *      \--not enough--> WAIT --wake: count, still short--> WAIT
 *                         |--wake: enough / timer / topic gone--> build --> reply
 *                         \--connection closed--> cancel: detach, free
 *
 * Sizes, as Kafka does them: each partition gets at most partition_max_bytes
 * and the whole response at most max_bytes, except that the first batch of
 * the first partition with data is returned whole even when larger than
 * either limit, so a consumer can always make progress.  A fetch at an offset
 * inside a batch returns that whole batch; the client skips what it did not
 * ask for.
 *
 * Cold partitions: a fetch offset below a stream's memory tail is served
 * from data objects through the tier's block cache.  Before the response is
 * built, every such partition's blocks are loaded and pinned (tier_fetch),
 * hits included, so the build in the last load's callback finds them all
 * and nothing is evicted while spans point at it; the pins go after the
 * reply is encoded.  While counting (long polling), a cold partition counts
 * as having data.  A load that fails answers KAFKA_STORAGE_ERROR (retriable)
 * for its partition.
 *
 *   enough --> cold loads? --none--> build --> reply
 *                  \--some--> COLD --last load done--> build --> reply --> unpin
 *                               ^                   |
 *                               +-------------------+ ranges moved to other objects
 *                                  meanwhile (compaction, log start): unpin, load
 *                                  again, at most MAX_RELOADS times
 *
 * Fetch sessions (KIP-227) are declined: every response carries session id 0,
 * which tells the client to keep sending full fetch requests.
 */
#include <stdlib.h>
#include "kreq.h"
#include "../kernel/log.h"

#define MAX_SPANS 1024

/* Cold loads done before the ranges they pinned are given up on. */
#define MAX_RELOADS 3

/* A cold partition's load; one per requested partition. */
struct cold {
	struct kreq *kr;
	struct tier_fetch *h;
	int err;
	int loading;
};

struct fstate {
	struct loop_timer timer;
	struct stream_waiter *waiters;
	int32_t nwaiters;
	int timed_out;
	struct cold *cold;		/* nwaiters of them */
	int32_t cold_pending;
	int reloads;			/* cold loads started again after a manifest change */
	int building;			/* waiting for cold loads; timers and waiters are off */
};

/* The stream of a requested partition, or a Kafka error code. */
static int16_t lookup(struct kreq *kr, struct kc_str topic, int32_t part, struct stream **s)
{
	struct topic *t = topic.len > 0 ? topic_find(kr->k->reg, topic.p, (size_t)topic.len) : NULL;

	if (!t || part < 0 || part >= t->npart)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	*s = t->parts[part];
	return 0;
}

/*
 * Walk the request as a response would: with resp set, fill it; without,
 * only count.  Returns the bytes of record data; *errors counts partitions
 * with an error.
 */
static size_t walk(struct kreq *kr, struct fetch_resp *resp, int *errors)
{
	struct fetch_req *rq = kr->body;
	size_t total = 0, budget = rq->max_bytes > 0 ? (size_t)rq->max_bytes : 0;
	int got_data = 0;
	struct span spans[MAX_SPANS];	/* 16 KiB: read here, kept in the arena only as needed */
	struct fstate *fs = kr->state;
	int32_t slot = 0;		/* the partition's position in the request */

	*errors = 0;
	for (int32_t i = 0; i < rq->topics_n; i++) {
		struct fetch_req_fetch_topic *ft = &rq->topics[i];
		struct fetch_resp_fetchable_topic_response *tr = resp ? &resp->responses[i] : NULL;

		for (int32_t j = 0; j < ft->partitions_n; j++) {
			struct fetch_req_fetch_partition *fp = &ft->partitions[j];
			struct fetch_resp_partition_data *pd = tr ? &tr->partitions[j] : NULL;
			struct stream *s;
			int16_t err = kr->ver < 4 ? KERR_UNSUPPORTED_VERSION : lookup(kr, ft->topic, fp->partition, &s);

			if (pd)
				pd->partition_index = fp->partition;
			if (err == 0 && (fp->fetch_offset < stream_start(s) || fp->fetch_offset > stream_hw(s)))
				err = KERR_OFFSET_OUT_OF_RANGE;
			if (err != 0) {
				(*errors)++;
				if (pd) {
					pd->error_code = err;
					pd->high_watermark = err == KERR_OFFSET_OUT_OF_RANGE ? stream_hw(s) : -1;
					pd->last_stable_offset = pd->high_watermark;
					pd->log_start_offset = err == KERR_OFFSET_OUT_OF_RANGE ? stream_start(s) : -1;
					pd->records = (struct kc_records){ NULL, 0, NULL, 0 };
				}
				slot++;
				continue;
			}
			size_t left = total < budget ? budget - total : 0;
			size_t limit = fp->partition_max_bytes > 0 ? (size_t)fp->partition_max_bytes : 0;
			if (limit > left)
				limit = left;
			size_t bytes = 0;
			int n = stream_read(s, fp->fetch_offset, limit, !got_data, spans, MAX_SPANS, &bytes);
			if (n == SL_E_AGAIN) {
				struct cold *c = fs && fs->cold ? &fs->cold[slot] : NULL;
				if (c && c->err) {
					(*errors)++;
					if (pd) {
						pd->error_code = KERR_KAFKA_STORAGE_ERROR;
						pd->high_watermark = -1;
						pd->last_stable_offset = -1;
						pd->log_start_offset = -1;
						pd->records = (struct kc_records){ NULL, 0, NULL, 0 };
					}
					slot++;
					continue;
				}
				if (!pd) {
					/* Counting: data is there, in objects. */
					n = 0;
					bytes = limit ? limit : 1;
				} else {
					n = tier_read(kr->k->tier, s, fp->fetch_offset, limit, !got_data,
						      spans, MAX_SPANS, &bytes);
				}
			}
			slot++;
			if (n < 0)
				n = 0;
			struct span *sp = NULL;
			if (pd && n > 0) {
				sp = arena_calloc(&kr->a, (size_t)n, sizeof(*sp));
				if (!sp)
					return (size_t)-1;
				memcpy(sp, spans, (size_t)n * sizeof(*sp));
			}
			if (n > 0)
				got_data = 1;
			total += bytes;
			if (pd) {
				pd->error_code = 0;
				pd->high_watermark = stream_hw(s);
				pd->last_stable_offset = stream_hw(s);
				pd->log_start_offset = stream_start(s);
				pd->aborted_transactions_n = kr->ver >= 4 ? -1 : 0;
				pd->records.p = NULL;
				pd->records.len = (int32_t)bytes;
				pd->records.iov = sp;
				pd->records.iovn = n;
			}
		}
	}
	return total;
}

static void unwait_all(struct kreq *kr)
{
	struct fstate *fs = kr->state;

	for (int32_t i = 0; i < fs->nwaiters; i++)
		stream_unwait(&fs->waiters[i]);
	loop_timer_cancel(kr->k->l, &fs->timer);
}

/* The pins of the cold loads, moved out of the arena that kreq_reply frees. */
struct pins {
	struct tier *t;
	struct tier_fetch **h;
	int32_t n;
};

static void take_pins(struct kreq *kr, struct pins *p)
{
	struct fstate *fs = kr->state;

	p->t = kr->k->tier;
	p->h = NULL;
	p->n = 0;
	for (int32_t i = 0; i < fs->nwaiters; i++) {
		if (!fs->cold[i].h)
			continue;
		if (!p->h && !(p->h = calloc((size_t)fs->nwaiters, sizeof(*p->h)))) {
			/* Cannot keep them past the reply: drop them now (the build is done). */
			tier_fetch_done(p->t, fs->cold[i].h);
		} else {
			p->h[p->n++] = fs->cold[i].h;
		}
		fs->cold[i].h = NULL;
	}
}

static void drop_pins(struct pins *p)
{
	for (int32_t i = 0; i < p->n; i++)
		tier_fetch_done(p->t, p->h[i]);
	free(p->h);
}

static void build_and_reply(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	struct fetch_resp *rs = kr->resp;
	struct pins pins;
	int errors;

	rs->error_code = 0;
	rs->session_id = 0;
	rs->responses_n = rq->topics_n > 0 ? rq->topics_n : 0;
	if (rs->responses_n > 0) {
		rs->responses = KR_NEW(kr, fetch_resp_fetchable_topic_response, rs->responses_n);
		if (!rs->responses)
			goto nomem;
	}
	for (int32_t i = 0; i < rs->responses_n; i++) {
		struct fetch_resp_fetchable_topic_response *tr = &rs->responses[i];
		int32_t np = rq->topics[i].partitions_n > 0 ? rq->topics[i].partitions_n : 0;
		tr->topic = rq->topics[i].topic;
		tr->partitions_n = np;
		if (np > 0 && !(tr->partitions = KR_NEW(kr, fetch_resp_partition_data, np)))
			goto nomem;
	}
	size_t bytes = walk(kr, rs, &errors);
	if (bytes == (size_t)-1)
		goto nomem;
	kr->reply_bytes = bytes + 1024;	/* record data, and room for the fields around it */
	take_pins(kr, &pins);
	kreq_reply(kr);		/* encodes: the spans must stay valid until it returns */
	drop_pins(&pins);
	return;
nomem:
	take_pins(kr, &pins);
	kreq_fail(kr, "Fetch response exceeds the request's memory cap");
	drop_pins(&pins);
}

static int32_t cold_start(struct kreq *kr);
static int cold_all_cached(struct kreq *kr);

static int cold_failed(const struct fstate *fs)
{
	for (int32_t i = 0; i < fs->nwaiters; i++)
		if (fs->cold[i].err)
			return 1;
	return 0;
}

/* Give up every cold load's pins. */
static void cold_release(struct kreq *kr)
{
	struct fstate *fs = kr->state;

	for (int32_t i = 0; i < fs->nwaiters; i++) {
		if (fs->cold[i].h) {
			tier_fetch_done(kr->k->tier, fs->cold[i].h);
			fs->cold[i].h = NULL;
		}
	}
}

static void on_cold(void *arg, int err)
{
	struct cold *c = arg;
	struct kreq *kr = c->kr;
	struct fstate *fs = kr->state;

	c->loading = 0;
	if (err && err != SL_E_NOTFOUND) {
		c->err = err;
		log_warn("kafka", "fetch: reading older records from the object store failed: %s",
			 sl_strerror(err));
	}
	if (--fs->cold_pending > 0)
		return;
	/*
	 * A compaction or a log start move may have given the ranges to
	 * other objects while they loaded: then the pinned blocks are not
	 * the ones a read finds, so load what the manifest names now (a few
	 * times at most; after that, answer with what there is).
	 */
	if (fs->reloads < MAX_RELOADS && !cold_failed(fs) && !cold_all_cached(kr)) {
		fs->reloads++;
		cold_release(kr);
		if (cold_start(kr) > 0)
			return;
	}
	build_and_reply(kr);
}

/* The partition exists and the fetch offset is below its memory tail. */
static int is_cold(struct kreq *kr, struct fetch_req_fetch_topic *ft,
		   struct fetch_req_fetch_partition *fp, struct stream **s)
{
	return lookup(kr, ft->topic, fp->partition, s) == 0 && fp->fetch_offset >= stream_start(*s) &&
	       fp->fetch_offset < stream_mem_start(*s);
}

/*
 * Every cold partition's first batch is in the block cache: the response
 * can be built in this turn without pins (the cache evicts only when a
 * GET completes or after an unpin, never within a turn of reads).
 */
static int cold_all_cached(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	struct span sp[1];

	for (int32_t i = 0; i < rq->topics_n; i++) {
		struct fetch_req_fetch_topic *ft = &rq->topics[i];
		for (int32_t j = 0; j < ft->partitions_n; j++) {
			struct fetch_req_fetch_partition *fp = &ft->partitions[j];
			struct stream *s;
			size_t total;
			if (is_cold(kr, ft, fp, &s) &&
			    tier_read(kr->k->tier, s, fp->fetch_offset, 1, 1, sp, 1, &total) == SL_E_AGAIN)
				return 0;
		}
	}
	return 1;
}

/*
 * Start the loads of every cold partition the response would read, unless
 * all are cached; the number started.  The limits are the request's
 * per-partition ones.
 */
static int32_t cold_start(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	struct fstate *fs = kr->state;
	int32_t slot = 0, started = 0;

	if (!kr->k->tier || kr->ver < 4 || cold_all_cached(kr))
		return 0;
	for (int32_t i = 0; i < rq->topics_n; i++) {
		struct fetch_req_fetch_topic *ft = &rq->topics[i];
		for (int32_t j = 0; j < ft->partitions_n; j++, slot++) {
			struct fetch_req_fetch_partition *fp = &ft->partitions[j];
			struct cold *c = &fs->cold[slot];
			struct stream *s;
			if (!is_cold(kr, ft, fp, &s))
				continue;
			size_t want = fp->partition_max_bytes > 0 ? (size_t)fp->partition_max_bytes : 1;
			int rc = tier_fetch(kr->k->tier, s, fp->fetch_offset, want, on_cold, c, &c->h);
			if (rc == SL_E_NOTFOUND) {
				c->h = NULL;
				continue;
			}
			if (rc != 0) {
				c->h = NULL;
				c->err = rc;
				continue;
			}
			c->loading = 1;
			started++;
		}
	}
	fs->cold_pending = started;
	return started;
}

/* Enough waiting: load what lives only in objects, then answer. */
static void finish(struct kreq *kr)
{
	struct fstate *fs = kr->state;

	unwait_all(kr);
	if (cold_start(kr) == 0) {
		build_and_reply(kr);
		return;
	}
	fs->building = 1;
}

static int enough(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	int errors;
	size_t bytes = walk(kr, NULL, &errors);

	return errors > 0 || bytes >= (size_t)(rq->min_bytes > 0 ? rq->min_bytes : 0);
}

static void arm(struct kreq *kr);

static void on_wake(struct loop *l, void *arg)
{
	struct kreq *kr = arg;
	struct fstate *fs = kr->state;

	if (kr->req == NULL || fs->building)
		return;
	if (enough(kr)) {
		finish(kr);
		return;
	}
	arm(kr);
}

static void on_timeout(struct loop *l, void *arg)
{
	finish(arg);
}

static void on_cancel(struct kreq *kr)
{
	unwait_all(kr);
	cold_release(kr);
	/* The connection is gone: nothing to answer, nothing else holds kr. */
	kreq_reply(kr);
}

/* (Re)register a waiter on every requested partition that exists. */
static void arm(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	struct fstate *fs = kr->state;
	int32_t w = 0;

	for (int32_t i = 0; i < rq->topics_n; i++) {
		for (int32_t j = 0; j < rq->topics[i].partitions_n; j++) {
			struct stream *s;
			if (w < fs->nwaiters &&
			    lookup(kr, rq->topics[i].topic, rq->topics[i].partitions[j].partition, &s) == 0)
				stream_wait(s, &fs->waiters[w]);
			w++;
		}
	}
}

void h_fetch(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	struct fetch_resp *rs = kr->resp;

	if (kr->ver >= 7 && rq->session_id != 0) {
		rs->error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
		rs->session_id = 0;
		rs->responses_n = 0;
		kreq_reply(kr);
		return;
	}
	struct fstate *fs = arena_calloc(&kr->a, 1, sizeof(*fs));
	int32_t np = 0;
	for (int32_t i = 0; i < rq->topics_n; i++)
		np += rq->topics[i].partitions_n > 0 ? rq->topics[i].partitions_n : 0;
	if (!fs || (np > 0 && (!(fs->waiters = arena_calloc(&kr->a, (size_t)np, sizeof(*fs->waiters))) ||
			       !(fs->cold = arena_calloc(&kr->a, (size_t)np, sizeof(*fs->cold)))))) {
		kreq_fail(kr, "out of memory");
		return;
	}
	fs->nwaiters = np;
	for (int32_t i = 0; i < np; i++) {
		stream_waiter_init(&fs->waiters[i], on_wake, kr);
		fs->cold[i].kr = kr;
	}
	loop_timer_init(&fs->timer, on_timeout, kr);
	kr->state = fs;
	kr->cancel = on_cancel;
	if (rq->max_wait_ms <= 0 || enough(kr)) {
		finish(kr);
		return;
	}
	arm(kr);
	loop_timer_set(kr->k->l, &fs->timer, (uint64_t)rq->max_wait_ms);
}
