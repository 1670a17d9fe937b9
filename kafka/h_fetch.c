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
 * Fetch sessions (KIP-227) are declined: every response carries session id 0,
 * which tells the client to keep sending full fetch requests.
 */
#include "kreq.h"
#include "../kernel/log.h"

#define MAX_SPANS 1024

struct fstate {
	struct loop_timer timer;
	struct stream_waiter *waiters;
	int32_t nwaiters;
	int timed_out;
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
				continue;
			}
			size_t left = total < budget ? budget - total : 0;
			size_t limit = fp->partition_max_bytes > 0 ? (size_t)fp->partition_max_bytes : 0;
			if (limit > left)
				limit = left;
			size_t bytes = 0;
			int n = stream_read(s, fp->fetch_offset, limit, !got_data, spans, MAX_SPANS, &bytes);
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

static void build_and_reply(struct kreq *kr)
{
	struct fetch_req *rq = kr->body;
	struct fetch_resp *rs = kr->resp;
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
	if (walk(kr, rs, &errors) == (size_t)-1)
		goto nomem;
	kreq_reply(kr);
	return;
nomem:
	kreq_fail(kr, "Fetch response exceeds the request's memory cap");
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

	if (kr->req == NULL)
		return;
	if (enough(kr)) {
		unwait_all(kr);
		build_and_reply(kr);
		return;
	}
	arm(kr);
}

static void on_timeout(struct loop *l, void *arg)
{
	struct kreq *kr = arg;

	unwait_all(kr);
	build_and_reply(kr);
}

static void on_cancel(struct kreq *kr)
{
	unwait_all(kr);
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
	if (rq->max_wait_ms <= 0 || enough(kr)) {
		build_and_reply(kr);
		return;
	}
	struct fstate *fs = arena_alloc(&kr->a, sizeof(*fs));
	int32_t np = 0;
	for (int32_t i = 0; i < rq->topics_n; i++)
		np += rq->topics[i].partitions_n > 0 ? rq->topics[i].partitions_n : 0;
	if (!fs || (np > 0 && !(fs->waiters = arena_calloc(&kr->a, (size_t)np, sizeof(*fs->waiters))))) {
		kreq_fail(kr, "out of memory");
		return;
	}
	fs->nwaiters = np;
	for (int32_t i = 0; i < np; i++)
		stream_waiter_init(&fs->waiters[i], on_wake, kr);
	loop_timer_init(&fs->timer, on_timeout, kr);
	kr->state = fs;
	kr->cancel = on_cancel;
	arm(kr);
	loop_timer_set(kr->k->l, &fs->timer, (uint64_t)rq->max_wait_ms);
}
