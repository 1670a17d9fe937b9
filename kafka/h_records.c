/*
 * h_records.c - DeleteRecords: move partitions' log start up.
 *
 * Per partition, Kafka's answers (Partition.deleteRecordsOnLeader,
 * UnifiedLog.maybeIncrementLogStartOffset):
 *   unknown topic or partition          UNKNOWN_TOPIC_OR_PARTITION
 *   cleanup.policy without "delete"     POLICY_VIOLATION
 *   offset -1                           means the high watermark
 *   offset < -1 or > high watermark     OFFSET_OUT_OF_RANGE
 *   offset <= the log start             success at once, low_watermark the
 *                                       log start; nothing is journaled
 *   otherwise                           a log-start record (kafka/retention.c),
 *                                       answered once durable with
 *                                       low_watermark the new log start
 * A failed partition reports low_watermark -1.  The request is answered
 * when every partition's record is durable; a topic deleted meanwhile
 * answers UNKNOWN_TOPIC_OR_PARTITION for its partitions.  timeout_ms is not
 * needed: with one broker there are no replicas to wait for.
 *
 *   h_delete_records --no records--> reply
 *      \--records journaled: pending = n--> each durable: apply, fill --> last: reply
 *
 * A connection that closes meanwhile changes nothing: the records are
 * durable and applied all the same; the reply is then only freed.
 */
#include "retention.h"
#include "../kernel/log.h"

/* One partition's record, in the request's arena. */
struct rpart {
	struct kls ls;
	struct kreq *kr;
	struct delete_records_resp_delete_records_partition_result *res;
};

struct rstate {
	int pending;			/* records not yet durable, +1 while building */
};

static void finish(struct kreq *kr)
{
	struct rstate *rs = kr->state;

	if (--rs->pending == 0)
		kreq_reply(kr);
}

static void part_done(struct kls *ls, int err)
{
	struct rpart *rp = ls->arg;

	if (err) {
		rp->res->error_code = KERR_KAFKA_STORAGE_ERROR;
		rp->res->low_watermark = -1;
	} else if (ls->after < 0) {
		rp->res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		rp->res->low_watermark = -1;
	} else {
		rp->res->low_watermark = ls->after;
		if (ls->after > ls->before) {
			struct topic *t = topic_find_id(rp->kr->k->reg, ls->id);
			log_info("kafka", "DeleteRecords: topic %s partition %d log start %lld -> %lld",
				 t ? t->name : "?", ls->partition, (long long)ls->before, (long long)ls->after);
		}
	}
	finish(rp->kr);
}

/* Decide one partition: an answer now (0), or its record journaled in rp (1). */
static int one(struct kreq *kr, struct topic *t, const struct delete_records_req_delete_records_partition *p,
	       struct delete_records_resp_delete_records_partition_result *res, struct rpart *rp)
{
	res->partition_index = p->partition_index;
	res->low_watermark = -1;
	if (!t || p->partition_index < 0 || p->partition_index >= t->npart) {
		res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return 0;
	}
	if (!kretention_deletes(t)) {
		res->error_code = KERR_POLICY_VIOLATION;
		return 0;
	}
	struct stream *s = t->parts[p->partition_index];
	int64_t hw = stream_hw(s), start = stream_start(s);
	int64_t off = p->offset == -1 ? hw : p->offset;
	if (off < 0 || off > hw) {
		res->error_code = KERR_OFFSET_OUT_OF_RANGE;
		return 0;
	}
	if (off <= start) {
		res->low_watermark = start;
		return 0;
	}
	rp->kr = kr;
	rp->res = res;
	memcpy(rp->ls.id, t->id, 16);
	rp->ls.partition = p->partition_index;
	rp->ls.offset = off;
	rp->ls.done = part_done;
	rp->ls.arg = rp;
	int rc = kls_submit(kr->k, &rp->ls);
	if (rc != 0) {
		log_warn("kafka", "cannot journal a log start for topic %s partition %d: %s", t->name,
			 p->partition_index, sl_strerror(rc));
		res->error_code = KERR_KAFKA_STORAGE_ERROR;
		return 0;
	}
	return 1;
}

void h_delete_records(struct kreq *kr)
{
	struct delete_records_req *rq = kr->body;
	struct delete_records_resp *rs = kr->resp;
	int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;
	struct rstate *st = arena_calloc(&kr->a, 1, sizeof(*st));
	struct rpart *rps = NULL;
	size_t total = 0, at = 0;

	/* Everything is allocated before the first record goes out: a record in flight holds kr. */
	if (!st || (nt > 0 && !(rs->topics = KR_NEW(kr, delete_records_resp_delete_records_topic_result, nt))))
		goto nomem;
	rs->topics_n = nt;
	for (int32_t i = 0; i < nt; i++) {
		int32_t np = rq->topics[i].partitions_n > 0 ? rq->topics[i].partitions_n : 0;

		rs->topics[i].name = rq->topics[i].name;
		rs->topics[i].partitions_n = np;
		if (np > 0 && !(rs->topics[i].partitions =
				KR_NEW(kr, delete_records_resp_delete_records_partition_result, np)))
			goto nomem;
		total += (size_t)np;
	}
	if (total > 0 && !(rps = arena_calloc(&kr->a, total, sizeof(*rps))))
		goto nomem;
	st->pending = 1;
	kr->state = st;
	for (int32_t i = 0; i < nt; i++) {
		const struct delete_records_req_delete_records_topic *qt = &rq->topics[i];
		struct topic *t = qt->name.len > 0 ? topic_find(kr->k->reg, qt->name.p, (size_t)qt->name.len) : NULL;

		for (int32_t j = 0; j < rs->topics[i].partitions_n; j++, at++)
			st->pending += one(kr, t, &qt->partitions[j], &rs->topics[i].partitions[j], &rps[at]);
	}
	finish(kr);
	return;
nomem:
	kreq_fail(kr, "DeleteRecords request exceeds its memory cap");
}
