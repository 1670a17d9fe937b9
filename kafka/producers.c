/*
 * producers.c - idempotent producers wired to the loop, the WAL and the
 * manifest: producer ids, each partition's producer state (kafka/pstate.h)
 * and InitProducerId.
 *
 * Producer ids.  pst_alloc hands them out from blocks of PID_BLOCK; before
 * the first id of a block is used, the block's end (the mark) is journaled
 * (docs/FORMAT.md, "Type 2, kind 4") and, once that record is durable,
 * installed.  The manifest's producer blob carries the newest durable mark
 * too, so a broker started on a blank WAL never hands out an id twice:
 *
 *   InitProducerId -> pst_alloc_next --ok--> answer (id, epoch 0)
 *                          | SL_E_AGAIN
 *                          v
 *                  journal mark M (pst_alloc_reserve) --durable--> install M, try again
 *                          | journal refused (WAL full) or failed
 *                          v
 *                  COORDINATOR_LOAD_IN_PROGRESS (retriable)
 *
 * Requests that ran out together journal the same mark; installing it twice
 * is harmless.
 *
 * Partition state.  Each partition's table lives with its topic
 * (topic_producers).  Produce checks and records batches in it (h_produce.c).
 * After a restart the table is rebuilt in two steps: the manifest's snapshot
 * of the partition (taken when its offsets were uploaded: kprod_restore),
 * then every batch replayed from the WAL into memory (kafka_recovered);
 * pst_append ignores what a snapshot already holds.  Without an object
 * store the WAL is never trimmed and replay alone rebuilds everything.
 *
 * Expiry: every producer.id.expiration.check.interval.ms, producers idle for
 * producer.id.expiration.ms leave their tables.
 *
 * DescribeProducers (for operators: kafka-transactions.sh describe-producers)
 * lists what a partition's table holds: each producer's id, epoch, last
 * sequence, last batch timestamp and open transaction's first offset;
 * coordinator epochs are not kept (-1).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "batch.h"
#include "kreq.h"
#include "pstate.h"
#include "../kernel/log.h"

#define KPID_KIND 4
#define KPID_OP_MARK 1
#define KPID_LEN 10	/* kind u8 | op u8 | mark i64 */
#define PID_BLOCK 1000

static void expire_tick(struct loop *l, void *arg);

/* The broker-wide producer state changed: the next manifest version must carry it. */
static void global_changed(struct kafka *k)
{
	tier_global_dirty(k->tier);
}

int kprod_init(struct kafka *k)
{
	int rc = pst_alloc_init(&k->palloc, 0, PID_BLOCK);

	if (rc != 0)
		return rc;
	loop_timer_init(&k->ptimer, expire_tick, k);
	loop_timer_set(k->l, &k->ptimer, (uint64_t)k->cfg->producer_id_expiration_check_ms);
	return 0;
}

void kprod_destroy(struct kafka *k)
{
	loop_timer_cancel(k->l, &k->ptimer);
}

static void expire_tick(struct loop *l, void *arg)
{
	struct kafka *k = arg;
	int64_t now = loop_wall_ms();
	size_t gone = 0;

	for (struct topic *t = topic_first(k->reg); t; t = t->next)
		for (int32_t p = 0; p < t->npart; p++) {
			struct pst_table *pt = topic_producers(t, p, 0);
			if (pt)
				gone += pst_expire(pt, now, k->cfg->producer_id_expiration_ms);
		}
	if (gone)
		log_info("kafka", "%zu idle producer states expired (producer.id.expiration.ms=%" PRId64 ")",
			 gone, k->cfg->producer_id_expiration_ms);
	loop_timer_set(l, &k->ptimer, (uint64_t)k->cfg->producer_id_expiration_check_ms);
}

/* ---- the producer-id mark ---- */

static void mark_durable(struct kafka *k, int64_t mark)
{
	if (mark > k->pid_mark) {
		k->pid_mark = mark;
		global_changed(k);
	}
	pst_alloc_install(&k->palloc, mark);
}

void kprod_replay(struct kafka *k, const uint8_t *p, size_t n)
{
	struct sl_rd r;
	uint8_t kind, op;
	int64_t mark;

	rd_init(&r, p, n);
	if (n != KPID_LEN || rd_u8(&r, &kind) != 0 || kind != KPID_KIND || rd_u8(&r, &op) != 0 ||
	    op != KPID_OP_MARK || rd_i64(&r, &mark) != 0 || mark < 0) {
		log_error("kafka", "skipping a malformed producer-id record in the WAL (%zu bytes)", n);
		return;
	}
	if (mark > k->pid_mark) {
		k->pid_mark = mark;
		global_changed(k);
	}
}

/* The global blob, version 1: i64 the durable producer-id mark. */
#define KPROD_BLOB_VERSION 1

int kprod_global_encode(struct kafka *k, struct sl_wr *w, uint16_t *version)
{
	*version = KPROD_BLOB_VERSION;
	wr_i64(w, k->pid_mark);
	return w->err;
}

/* The tier's partition hook: the partition's producer state below end. */
static int partition_state(void *arg, const struct stream_id *id, int64_t end, struct sl_wr *w)
{
	struct kafka *k = arg;
	struct topic *t = topic_find_id(k->reg, id->ns);
	struct pst_table *pt = t ? topic_producers(t, id->index, 0) : NULL;

	if (!pt || (pst_count(pt) == 0 && pst_aborted_count(pt) == 0))
		return 0;	/* no state: nothing written */
	return pst_encode_below(pt, end, w);
}

static int global_state(void *arg, struct sl_wr *w, uint16_t *version)
{
	return kprod_global_encode(arg, w, version);
}

void kprod_set_tier(struct kafka *k)
{
	struct tier_state_hooks h = { partition_state, global_state, k };

	tier_set_state_hooks(k->tier, &h);
}

/* Each partition's producer state as the manifest holds it (below its end). */
static int restore_partitions(struct kafka *k, const struct manifest *m)
{
	for (size_t i = 0; i < m->ntopics; i++) {
		const struct mf_topic *mt = &m->topics[i];
		struct topic *t = topic_find_id(k->reg, mt->id);
		for (int32_t p = 0; t && p < mt->npartitions && p < t->npart; p++) {
			const struct mf_partition *mp = &mt->parts[p];
			struct pst_table *pt = NULL;
			struct sl_rd r;
			if (!mp->state_len)
				continue;
			rd_init(&r, mp->state, mp->state_len);
			int rc = pst_decode(&r, &pt);
			if (rc != 0) {
				log_error("kafka", "the manifest's producer state of %s-%d (%zu bytes) does not "
					  "decode: %s", t->name, p, mp->state_len, sl_strerror(rc));
				return rc;
			}
			if (!t->producers && !topic_producers(t, p, 1)) {
				pst_table_free(pt);
				return SL_E_NOMEM;
			}
			pst_table_free(t->producers[p]);
			t->producers[p] = pt;
			pst_truncate_head(pt, stream_start(t->parts[p]));
		}
	}
	return 0;
}

int kprod_restore(struct kafka *k, const struct manifest *m)
{
	int rc = restore_partitions(k, m);

	if (rc != 0)
		return rc;
	if (m->producers_version == 0 && m->producers_len == 0)
		return 0;
	struct sl_rd r;
	int64_t mark;

	rd_init(&r, m->producers, m->producers_len);
	if (m->producers_version != KPROD_BLOB_VERSION || rd_i64(&r, &mark) != 0 || mark < 0) {
		log_error("kafka", "the manifest's producer state (version %u, %zu bytes) is not one this "
			  "broker reads", m->producers_version, m->producers_len);
		return SL_E_CORRUPT;
	}
	if (mark > k->pid_mark)
		k->pid_mark = mark;
	return 0;
}

/* ---- after recovery ---- */

struct rebuild {
	struct topic *t;
	int32_t p;
	int err;
	size_t batches;
};

static int rebuild_batch(void *arg, const struct stream_batch *b)
{
	struct rebuild *rb = arg;
	struct batch_info bi;
	const char *why;

	if (batch_header(b->bytes.p, b->bytes.len, &bi, &why) != 0 || bi.producer_id < 0)
		return 0;
	struct pst_table *pt = topic_producers(rb->t, rb->p, 1);
	int rc = SL_E_NOMEM;
	if (pt && (bi.attributes & BATCH_ATTR_CONTROL)) {
		int type = batch_marker_type(b->bytes.p, b->bytes.len);
		struct pst_txn done;
		if (type < 0)
			return 0;
		rc = pst_apply_marker(pt, bi.producer_id, bi.producer_epoch, type == BATCH_MARKER_COMMIT,
				      b->base, loop_wall_ms(), &done);
		rc = rc < 0 ? rc : 0;
	} else if (pt) {
		struct pst_batch pb = { bi.producer_id, bi.producer_epoch, bi.base_sequence, bi.count,
					(bi.attributes & BATCH_ATTR_TRANSACTIONAL) != 0 };
		rc = pst_append(pt, &pb, b->base, b->max_ts, loop_wall_ms());
	}
	if (rc == SL_E_NOMEM) {
		rb->err = rc;
		return 1;
	}
	rb->batches++;
	return 0;
}

int kafka_recovered(struct kafka *k)
{
	size_t batches = 0;

	for (struct topic *t = topic_first(k->reg); t; t = t->next)
		for (int32_t p = 0; p < t->npart; p++) {
			struct rebuild rb = { t, p, 0, 0 };
			stream_foreach(t->parts[p], stream_start(t->parts[p]), rebuild_batch, &rb);
			if (rb.err) {
				log_error("kafka", "cannot rebuild the producer state of %s-%d: %s",
					  t->name, p, sl_strerror(rb.err));
				return rb.err;
			}
			batches += rb.batches;
		}
	/* Ids below the newest durable mark may have been handed out. */
	int rc = pst_alloc_init(&k->palloc, k->pid_mark, PID_BLOCK);
	if (rc == 0 && batches)
		log_info("kafka", "producer state rebuilt from %zu idempotent batches in memory; "
			 "producer ids resume at %" PRId64, batches, k->pid_mark);
	return rc;
}

/* ---- InitProducerId ---- */

struct pid_wait {
	struct kjournal j;
	struct kreq *kr;
	int64_t mark;
};

static void answer_pid(struct kreq *kr);

static void mark_journaled(struct kjournal *j, int err)
{
	struct pid_wait *pw = j->arg;
	struct kreq *kr = pw->kr;
	struct init_producer_id_resp *rs = kr->resp;

	if (err != 0) {
		log_warn("kafka", "journaling producer-id mark %" PRId64 " failed: %s", pw->mark,
			 sl_strerror(err));
		rs->error_code = KERR_COORDINATOR_LOAD_IN_PROGRESS;
		kreq_reply(kr);
		return;
	}
	mark_durable(kr->k, pw->mark);
	answer_pid(kr);
}

/* Answer with a fresh id, journaling a new mark first when the block is used up. */
static void answer_pid(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct init_producer_id_resp *rs = kr->resp;
	int64_t id;

	if (pst_alloc_next(&k->palloc, &id) == 0) {
		rs->producer_id = id;
		rs->producer_epoch = 0;
		kreq_reply(kr);
		return;
	}
	struct pid_wait *pw = arena_calloc(&kr->a, 1, sizeof(*pw));
	struct sl_wr w;
	int rc = pw ? pst_alloc_reserve(&k->palloc, &pw->mark) : SL_E_NOMEM;
	if (rc == 0) {
		pw->kr = kr;
		pw->j.done = mark_journaled;
		pw->j.arg = pw;
		wr_init(&w, KPID_LEN);
		wr_u8(&w, KPID_KIND);
		wr_u8(&w, KPID_OP_MARK);
		wr_i64(&w, pw->mark);
		rc = kafka_journal(k, &w, &pw->j);
		wr_free(&w);
	}
	if (rc != 0) {
		log_warn("kafka", "cannot reserve producer ids: %s", sl_strerror(rc));
		rs->error_code = rc == SL_E_FULL ? KERR_COORDINATOR_LOAD_IN_PROGRESS
						 : KERR_UNKNOWN_SERVER_ERROR;
		kreq_reply(kr);
	}
}

void h_init_producer_id(struct kreq *kr)
{
	struct init_producer_id_req *rq = kr->body;
	struct init_producer_id_resp *rs = kr->resp;

	rs->producer_id = -1;
	rs->producer_epoch = -1;
	if (rq->transactional_id.len >= 0) {
		rs->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
		kreq_reply(kr);
		return;
	}
	/* Without a transactional id Kafka ignores the id and epoch sent: always a new id, epoch 0. */
	answer_pid(kr);
}

/* ---- DescribeProducers ---- */

struct describe {
	struct kreq *kr;
	struct describe_producers_resp_producer_state *out;
	int32_t n, cap;
};

static int describe_one(void *arg, const struct pst_entry *e)
{
	struct describe *d = arg;

	if (d->out && d->n < d->cap) {
		struct describe_producers_resp_producer_state *o = &d->out[d->n];
		o->producer_id = e->producer_id;
		o->producer_epoch = e->epoch;
		o->last_sequence = pst_entry_last_seq(e);
		o->last_timestamp = pst_entry_last_timestamp(e);
		o->coordinator_epoch = -1;
		o->current_txn_start_offset = e->txn_first_offset;
	}
	d->n++;
	return 0;
}

/* Every producer the partition remembers (pst_foreach's order). */
void h_describe_producers(struct kreq *kr)
{
	struct describe_producers_req *rq = kr->body;
	struct describe_producers_resp *rs = kr->resp;
	int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;

	rs->topics_n = nt;
	if (nt > 0 && !(rs->topics = KR_NEW(kr, describe_producers_resp_topic_response, nt)))
		goto nomem;
	for (int32_t i = 0; i < nt; i++) {
		struct describe_producers_req_topic_request *qt = &rq->topics[i];
		struct describe_producers_resp_topic_response *rt = &rs->topics[i];
		int32_t np = qt->partition_indexes_n > 0 ? qt->partition_indexes_n : 0;
		struct topic *t = qt->name.len > 0 ? topic_find(kr->k->reg, qt->name.p, (size_t)qt->name.len)
						   : NULL;

		rt->name = qt->name;
		rt->partitions_n = np;
		if (np > 0 && !(rt->partitions = KR_NEW(kr, describe_producers_resp_partition_response, np)))
			goto nomem;
		for (int32_t j = 0; j < np; j++) {
			struct describe_producers_resp_partition_response *rp = &rt->partitions[j];
			int32_t p = qt->partition_indexes[j];

			rp->partition_index = p;
			rp->active_producers_n = 0;
			if (!t || p < 0 || p >= t->npart) {
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			struct pst_table *pt = topic_producers(t, p, 0);
			struct describe d = { kr, NULL, 0, 0 };
			if (!pt || pst_count(pt) == 0)
				continue;
			d.cap = (int32_t)pst_count(pt);
			if (!(d.out = KR_NEW(kr, describe_producers_resp_producer_state, d.cap)))
				goto nomem;
			pst_foreach(pt, describe_one, &d);
			rp->active_producers = d.out;
			rp->active_producers_n = d.n < d.cap ? d.n : d.cap;
		}
	}
	kreq_reply(kr);
	return;
nomem:
	kreq_fail(kr, "DescribeProducers response exceeds the request's memory cap");
}
