/*
 * h_produce.c - Produce: validate batches, assign offsets, append, and answer
 * once every batch is durable.
 *
 * Per partition the record set may hold several batches.  All of them are
 * validated before any is appended, so a partition's answer is all or
 * nothing: one bad batch fails the partition and none of it is written.
 *
 * Offsets are assigned here, by writing the stream's next offset into each
 * batch's baseOffset (and leader epoch 0) in the request frame, which net
 * keeps writable for us, then handing the bytes to storage, which copies
 * them.  For topics with message.timestamp.type=LogAppendTime the batch's
 * max timestamp is set to now and the CRC recomputed.
 *
 * The reply waits for the last append's durability callback (acks=1 and
 * acks=all are the same on one node).  acks=0 releases the connection's reply
 * slot at once; the request state then lives on until the appends complete,
 * because storage holds pointers into it.
 *
 * When the WAL has no room for a partition's batches, that partition waits
 * (a space waiter and a request.timeout.ms timer) and is retried whole when
 * space frees; at the timeout it fails with REQUEST_TIMED_OUT, which clients
 * retry.  Other partitions of the request carry on meanwhile.
 *
 * Idempotent producers (a producer id in the batch): each batch is checked
 * against the partition's producer state (kafka/pstate.h) before anything is
 * appended, and recorded there as it is appended, so a retry arriving later
 * is known.  A duplicate is not written again: it is answered with the
 * offsets the original got, once the original is durable (before that, with
 * REQUEST_TIMED_OUT, which the client retries).  A batch that follows an
 * earlier one of the same request and producer is checked against that
 * batch.  An append that fails after it was recorded removes the producer
 * from the table: its offsets never became durable and must not be handed to
 * a retry as a duplicate (the producer's next batch is then accepted as
 * from a producer the partition does not know, as Kafka does).
 *
 * Not yet served: transactional batches; they are refused per partition.
 */
#include <inttypes.h>
#include <stdio.h>
#include "batch.h"
#include "kreq.h"
#include "../kernel/log.h"

struct pop {
	struct stream_op op;
	struct kreq *kr;
	struct produce_resp_partition_produce_response *res;
	struct pst_table *producers;	/* set for an idempotent batch */
	int64_t producer_id;
};

/* One batch's idempotence verdict, between the passes. */
struct verdict {
	struct pst_batch pb;
	int dup;			/* written before: answer with meta */
	struct pst_meta meta;
};

struct blocked {
	int32_t t, p;		/* indexes into the request's topics and partitions */
	int waiting;
};

struct pstate {
	int pending;		/* appends not yet completed, +1 while partitions wait */
	struct blocked *blocked;
	int32_t nblocked, nwaiting;
	struct wal_space_waiter space;
	struct loop_timer timer;
};

static void finish(struct kreq *kr)
{
	struct pstate *ps = kr->state;

	if (--ps->pending == 0)
		kreq_reply(kr);
}

static void set_err(struct kreq *kr, struct produce_resp_partition_produce_response *res,
		    int16_t code, const char *msg)
{
	res->error_code = code;
	res->base_offset = -1;
	if (kr->ver >= 8 && msg) {
		char *m = arena_strndup(&kr->a, msg, strlen(msg));
		res->error_message = m ? kstr(m) : KC_NULL_STR;
	}
}

static void append_done(void *arg, int err, int64_t base)
{
	struct pop *po = arg;
	struct kreq *kr = po->kr;

	if (err != 0 && po->producers && err != SL_E_CLOSED)
		pst_remove(po->producers, po->producer_id);
	if (err != 0 && po->res->error_code == 0)
		set_err(kr, po->res, err == SL_E_CLOSED ? KERR_UNKNOWN_TOPIC_OR_PARTITION
							: KERR_KAFKA_STORAGE_ERROR, sl_strerror(err));
	finish(kr);
}

static int same_seq_run(const struct pst_batch *prev, const struct pst_batch *b)
{
	return b->epoch == prev->epoch &&
	       b->first_seq == (pst_last_seq(prev->first_seq, prev->count) == INT32_MAX
					? 0 : pst_last_seq(prev->first_seq, prev->count) + 1);
}

/*
 * The idempotence verdict of each of the nb batches of pd (already
 * validated): the number of duplicates, or -1 when the partition was
 * answered with an error (nothing is appended then).
 */
static int check_producers(struct kreq *kr, struct topic *t,
			   struct produce_req_partition_produce_data *pd,
			   struct produce_resp_partition_produce_response *res, struct pst_table *pt,
			   struct verdict *v, int nb)
{
	const uint8_t *p = pd->records.p;
	size_t n = (size_t)pd->records.len, off = 0;
	int32_t part = pd->index;
	struct batch_info bi;
	const char *why;
	char msg[200];
	int ndup = 0;

	struct stream *s = t->parts[part];
	for (int i = 0; i < nb; i++) {
		if (batch_header(p + off, n - off, &bi, &why) != 0)
			SL_ASSERT(!"batch changed between passes");
		off += bi.len;
		struct pst_batch *b = &v[i].pb;
		*b = (struct pst_batch){ bi.producer_id, bi.producer_epoch, bi.base_sequence, bi.count,
					 (bi.attributes & BATCH_ATTR_TRANSACTIONAL) != 0 };
		if (b->producer_id < 0)
			continue;
		/* An earlier batch of this request from the same producer goes first: follow it. */
		const struct pst_batch *prev = NULL;
		for (int j = i - 1; j >= 0 && !prev; j--)
			if (v[j].pb.producer_id == b->producer_id && !v[j].dup)
				prev = &v[j].pb;
		int16_t err = KERR_NONE;
		if (prev) {
			if (!same_seq_run(prev, b))
				err = b->epoch != prev->epoch ? KERR_INVALID_PRODUCER_EPOCH
							      : KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
		} else if (pst_check(pt, b, &err, &v[i].meta) == PST_DUPLICATE) {
			if (v[i].meta.last_offset >= stream_hw(s)) {
				set_err(kr, res, KERR_REQUEST_TIMED_OUT,
					"the original of this retried batch is not durable yet");
				return -1;
			}
			v[i].dup = 1;
			ndup++;
			continue;
		}
		if (err != KERR_NONE) {
			const struct pst_entry *e = pst_find(pt, b->producer_id);
			snprintf(msg, sizeof(msg), "producer %" PRId64 " epoch %d sequence %d: %s "
				 "(the partition has epoch %d, last sequence %d)", b->producer_id,
				 b->epoch, b->first_seq, kerr_name(err), e ? e->epoch : -1,
				 e && e->nbatches ? e->batch[e->nbatches - 1].last_seq : -1);
			log_warn("kafka", "produce to %s-%d from %s refused: %s", t->name, part,
				 kr->req ? conn_peer(kr->req->c) : "?", msg);
			set_err(kr, res, err, msg);
			return -1;
		}
	}
	return ndup;
}

/*
 * Validate and append one partition's record set.  Returns the number of
 * appends started (their callbacks will answer), 0 if the partition was
 * answered with an error, -1 if the WAL has no room for it now.
 */
static int produce_partition(struct kreq *kr, struct topic *t,
			     struct produce_req_partition_produce_data *pd,
			     struct produce_resp_partition_produce_response *res)
{
	struct batch_info bi;
	const char *why;
	char msg[160];
	int nb = 0, idem = 0;

	if (pd->index < 0 || pd->index >= t->npart) {
		set_err(kr, res, KERR_UNKNOWN_TOPIC_OR_PARTITION, "partition does not exist");
		return 0;
	}
	if (pd->records.len <= 0) {
		set_err(kr, res, KERR_CORRUPT_MESSAGE, "empty record set");
		return 0;
	}
	/* Pass 1: validate every batch. */
	uint8_t *p = (uint8_t *)pd->records.p;
	size_t n = (size_t)pd->records.len, off = 0;
	while (off < n) {
		int code = batch_parse(p + off, n - off, &bi, &why);
		if (code == 0 && bi.len > (size_t)t->max_message_bytes) {
			snprintf(msg, sizeof(msg), "batch of %zu bytes exceeds max.message.bytes (%d)",
				 bi.len, t->max_message_bytes);
			why = msg;
			code = KERR_MESSAGE_TOO_LARGE;
		}
		if (code == 0 && (bi.attributes & BATCH_ATTR_TRANSACTIONAL)) {
			why = "transactional producers are not supported yet";
			code = KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
		}
		if (code == 0 && (bi.attributes & BATCH_ATTR_CONTROL)) {
			why = "control batches cannot be produced";
			code = KERR_INVALID_RECORD;
		}
		if (code != 0) {
			log_warn("kafka", "produce to %s-%d from %s refused: %s", t->name, pd->index,
				 kr->req ? conn_peer(kr->req->c) : "?", why);
			set_err(kr, res, (int16_t)code, why);
			return 0;
		}
		off += bi.len;
		nb++;
		idem += bi.producer_id >= 0;
	}
	struct stream *s = t->parts[pd->index];
	struct pst_table *pt = NULL;
	struct verdict *v = NULL;
	int ndup = 0;
	if (idem) {
		pt = topic_producers(t, pd->index, 1);
		v = arena_calloc(&kr->a, (size_t)nb, sizeof(*v));
		if (!pt || !v) {
			set_err(kr, res, KERR_UNKNOWN_SERVER_ERROR, "out of memory");
			return 0;
		}
		int code = check_producers(kr, t, pd, res, pt, v, nb);
		if (code < 0)
			return 0;
		ndup = code;
	}
	if (ndup == nb) {
		/* Every batch was written before: answer with the original offsets. */
		res->base_offset = v[0].meta.first_offset;
		res->log_append_time_ms = t->log_append_time ? v[0].meta.max_timestamp : -1;
		res->log_start_offset = stream_start(s);
		return 0;
	}
	/* All of a partition's batches go in, or none: ask for room for all of them first. */
	if (!store_has_room(kr->k->st, n, nb - ndup))
		return -1;
	struct pop *pops = arena_calloc(&kr->a, (size_t)nb, sizeof(*pops));
	if (!pops) {
		set_err(kr, res, KERR_UNKNOWN_SERVER_ERROR, "out of memory");
		return 0;
	}
	/* Pass 2: assign offsets and append. */
	int64_t now = loop_wall_ms();
	int started = 0;
	off = 0;
	for (int i = 0; i < nb; i++) {
		if (batch_header(p + off, n - off, &bi, &why) != 0)
			SL_ASSERT(!"batch changed between passes");
		if (v && v[i].dup) {
			if (i == 0) {
				res->base_offset = v[i].meta.first_offset;
				res->log_append_time_ms = t->log_append_time ? v[i].meta.max_timestamp : -1;
			}
			off += bi.len;
			continue;
		}
		int64_t base = stream_next(s);
		batch_set_base(p + off, base, 0);
		int64_t max_ts = bi.max_ts;
		if (t->log_append_time) {
			batch_set_log_append_time(p + off, bi.len, now);
			max_ts = now;
		}
		pops[i].kr = kr;
		pops[i].res = res;
		pops[i].op.fn = append_done;
		pops[i].op.arg = &pops[i];
		int64_t got = stream_append(s, p + off, bi.len, (uint32_t)bi.count, max_ts, &pops[i].op);
		if (got < 0) {
			/* Earlier batches of this set are appended; their callbacks still come. */
			set_err(kr, res, KERR_KAFKA_STORAGE_ERROR, sl_strerror((int)got));
			return started;
		}
		started++;
		if (v && v[i].pb.producer_id >= 0) {
			pops[i].producers = pt;
			pops[i].producer_id = v[i].pb.producer_id;
			int rc = pst_append(pt, &v[i].pb, got, max_ts, now);
			if (rc != 0)
				log_error("kafka", "cannot record producer %" PRId64 " in %s-%d: %s; a retry "
					  "of this batch would be written again", v[i].pb.producer_id,
					  t->name, pd->index, sl_strerror(rc));
		}
		if (i == 0) {
			res->base_offset = got;
			res->log_append_time_ms = t->log_append_time ? now : -1;
		}
		off += bi.len;
	}
	res->log_start_offset = stream_start(s);
	return started;
}

static void retry_blocked(struct loop *l, void *arg);
static void blocked_timeout(struct loop *l, void *arg);

/* Try partition (ti, pi) of the request; 1 if it must wait for space. */
static int try_partition(struct kreq *kr, int32_t ti, int32_t pi)
{
	struct produce_req *rq = kr->body;
	struct produce_resp *rs = kr->resp;
	struct pstate *ps = kr->state;
	struct produce_req_topic_produce_data *td = &rq->topic_data[ti];
	struct produce_resp_partition_produce_response *res = &rs->responses[ti].partition_responses[pi];
	struct topic *t = td->name.len > 0 ? topic_find(kr->k->reg, td->name.p, (size_t)td->name.len) : NULL;

	if (!t) {
		set_err(kr, res, KERR_UNKNOWN_TOPIC_OR_PARTITION, "unknown topic");
		return 0;
	}
	int started = produce_partition(kr, t, &td->partition_data[pi], res);
	if (started < 0)
		return 1;
	ps->pending += started;
	return 0;
}

static void wait_for_space(struct kreq *kr)
{
	struct pstate *ps = kr->state;

	store_space_wait(kr->k->st, &ps->space);
}

static void retry_blocked(struct loop *l, void *arg)
{
	struct kreq *kr = arg;
	struct pstate *ps = kr->state;

	for (int32_t i = 0; i < ps->nblocked; i++) {
		struct blocked *b = &ps->blocked[i];
		if (b->waiting && !try_partition(kr, b->t, b->p)) {
			b->waiting = 0;
			ps->nwaiting--;
		}
	}
	if (ps->nwaiting > 0) {
		wait_for_space(kr);
		return;
	}
	loop_timer_cancel(kr->k->l, &ps->timer);
	kr->cancel = NULL;
	finish(kr);	/* the hold taken while partitions waited */
}

static void blocked_timeout(struct loop *l, void *arg)
{
	struct kreq *kr = arg;
	struct pstate *ps = kr->state;
	struct produce_resp *rs = kr->resp;

	store_space_cancel(kr->k->st, &ps->space);
	for (int32_t i = 0; i < ps->nblocked; i++) {
		struct blocked *b = &ps->blocked[i];
		if (b->waiting)
			set_err(kr, &rs->responses[b->t].partition_responses[b->p], KERR_REQUEST_TIMED_OUT,
				"no room in the write-ahead log within request.timeout.ms");
		b->waiting = 0;
	}
	ps->nwaiting = 0;
	kr->cancel = NULL;
	finish(kr);
}

/* The connection closed while partitions waited: stop waiting; appends in flight still finish. */
static void produce_cancel(struct kreq *kr)
{
	struct pstate *ps = kr->state;

	store_space_cancel(kr->k->st, &ps->space);
	loop_timer_cancel(kr->k->l, &ps->timer);
	ps->nwaiting = 0;
	kr->cancel = NULL;
	finish(kr);
}

void h_produce(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct produce_req *rq = kr->body;
	struct produce_resp *rs = kr->resp;
	struct pstate *ps = arena_alloc(&kr->a, sizeof(*ps));
	int16_t topic_err = 0;

	if (!ps) {
		kreq_fail(kr, "out of memory");
		return;
	}
	kr->state = ps;
	if (kr->ver < 3)
		topic_err = KERR_UNSUPPORTED_VERSION;
	else if (rq->acks != 0 && rq->acks != 1 && rq->acks != -1)
		topic_err = KERR_INVALID_REQUIRED_ACKS;
	else if (rq->transactional_id.len >= 0)
		topic_err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;

	int32_t nt = rq->topic_data_n > 0 ? rq->topic_data_n : 0;
	rs->responses_n = nt;
	if (nt > 0 && !(rs->responses = KR_NEW(kr, produce_resp_topic_produce_response, nt)))
		goto nomem;
	/* Count one extra pending so callbacks during the loop cannot reply early. */
	ps->pending = 1;
	int32_t nparts = 0;
	for (int32_t i = 0; i < nt; i++)
		nparts += rq->topic_data[i].partition_data_n > 0 ? rq->topic_data[i].partition_data_n : 0;
	if (nparts > 0 && !(ps->blocked = arena_calloc(&kr->a, (size_t)nparts, sizeof(*ps->blocked))))
		goto nomem;
	for (int32_t i = 0; i < nt; i++) {
		struct produce_req_topic_produce_data *td = &rq->topic_data[i];
		struct produce_resp_topic_produce_response *tr = &rs->responses[i];
		int32_t np = td->partition_data_n > 0 ? td->partition_data_n : 0;

		tr->name = td->name;
		tr->partition_responses_n = np;
		if (np > 0 && !(tr->partition_responses =
				KR_NEW(kr, produce_resp_partition_produce_response, np)))
			goto nomem;
		for (int32_t j = 0; j < np; j++) {
			struct produce_resp_partition_produce_response *res = &tr->partition_responses[j];
			res->index = td->partition_data[j].index;
			if (topic_err) {
				set_err(kr, res, topic_err, NULL);
			} else if (try_partition(kr, i, j)) {
				struct blocked *b = &ps->blocked[ps->nblocked++];
				b->t = i;
				b->p = j;
				b->waiting = 1;
				ps->nwaiting++;
			}
		}
	}
	if (ps->nwaiting > 0) {
		/* Keep the hold for the waiting partitions; the retry or the timer releases it. */
		ps->pending++;
		wal_space_waiter_init(&ps->space, retry_blocked, kr);
		loop_timer_init(&ps->timer, blocked_timeout, kr);
		loop_timer_set(k->l, &ps->timer, (uint64_t)k->cfg->request_timeout_ms);
		kr->cancel = produce_cancel;
		wait_for_space(kr);
		log_debug("kafka", "produce from %s waits for WAL space (%d partitions)",
			  kr->req ? conn_peer(kr->req->c) : "?", ps->nwaiting);
	}
	if (rq->acks == 0 && kr->req) {
		/* No answer: free the reply slot now, keep the state for the callbacks. */
		kr->req->cancel = NULL;
		conn_req_drop(kr->req);
		kr->req = NULL;
	}
	finish(kr);
	return;
nomem:
	if (ps->pending <= 1) {
		kreq_fail(kr, "Produce response exceeds the request's memory cap");
		return;
	}
	/* Appends already started hold kr: close the connection, let them finish. */
	if (kr->req) {
		kr->req->cancel = NULL;
		conn_close(kr->req->c, "Produce response exceeds the request's memory cap");
		kr->req = NULL;
	}
	if (--ps->pending == 0)
		kreq_reply(kr);
}
