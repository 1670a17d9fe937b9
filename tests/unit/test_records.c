/*
 * test_records.c - a partition's log start through the broker in one
 * process (tbroker.h): DeleteRecords at every version over real requests,
 * the log-start record's replay after a stop and a start on the same WAL,
 * Fetch and ListOffsets at and below the new start, and retention's glue:
 * which limits apply to a topic (its overrides, else the broker's; Kafka's
 * 7-day default), the check timer, compacted topics left alone.
 */
#include "tbroker.h"
#include "../../kafka/kreq.h"
#include "../../kafka/retention.h"
#include "../../kernel/crc32c.h"

#define WAL "build/test-records-wal"
#define DAY_MS 86400000LL

/* Produce one record to t-part at ts; the base offset, or -100 - error code (-100: no answer). */
static int64_t ts_produce(int fd, const char *t, int32_t part, const char *value, int64_t ts)
{
	int64_t base = -1;
	int16_t err = produce_to(fd, t, part, value, ts, &base);

	return err == -100 ? -100 : err ? -100 - err : base;
}

/* CreateTopics v4 with up to one config override (key NULL: none). */
static int16_t create(int fd, const char *name, int32_t nparts, const char *key, const char *value)
{
	struct arena a;
	struct create_topics_req_creatable_topic ct;
	struct create_topics_req_createable_topic_config cfg;
	struct create_topics_req rq;
	struct create_topics_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_create_topics_req, &rq);
	kc_defaults(&kc_create_topics_req_creatable_topic, &ct);
	ct.name = kstr(name);
	ct.num_partitions = nparts;
	ct.replication_factor = 1;
	if (key) {
		cfg.name = kstr(key);
		cfg.value = kstr(value);
		ct.configs = &cfg;
		ct.configs_n = 1;
	}
	rq.topics = &ct;
	rq.topics_n = 1;
	if (roundtrip(fd, 19, 4, &rq, &rs, &a) == 0 && rs.topics_n == 1)
		err = rs.topics[0].error_code;
	arena_free(&a);
	return err;
}

/* ListOffsets v1 at ts (-2 earliest, -1 latest) for t-part; -100 on failure. */
static int64_t list_offset(int fd, const char *t, int32_t part, int64_t ts)
{
	struct arena a;
	struct list_offsets_req_list_offsets_partition qp;
	struct list_offsets_req_list_offsets_topic qt = { 0 };
	struct list_offsets_req rq;
	struct list_offsets_resp rs;
	int64_t off = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_list_offsets_req, &rq);
	kc_defaults(&kc_list_offsets_req_list_offsets_partition, &qp);
	rq.replica_id = -1;
	qp.partition_index = part;
	qp.timestamp = ts;
	qt.name = kstr(t);
	qt.partitions = &qp;
	qt.partitions_n = 1;
	rq.topics = &qt;
	rq.topics_n = 1;
	if (roundtrip(fd, 2, 1, &rq, &rs, &a) == 0 && rs.topics_n == 1 && rs.topics[0].partitions_n == 1 &&
	    rs.topics[0].partitions[0].error_code == 0)
		off = rs.topics[0].partitions[0].offset;
	arena_free(&a);
	return off;
}

static int64_t earliest(int fd, const char *t, int32_t part)
{
	return list_offset(fd, t, part, -2);
}

/* Fetch v11 at off, no waiting: the error code (-100 on failure), log start and record bytes. */
static int16_t fetch(int fd, const char *t, int32_t part, int64_t off, int64_t *log_start, int32_t *bytes)
{
	struct arena a;
	struct fetch_req_fetch_partition fp;
	struct fetch_req_fetch_topic ft = { 0 };
	struct fetch_req rq;
	struct fetch_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_fetch_req, &rq);
	kc_defaults(&kc_fetch_req_fetch_partition, &fp);
	rq.max_wait_ms = 0;
	rq.min_bytes = 0;
	rq.rack_id = kstr("");
	fp.partition = part;
	fp.fetch_offset = off;
	fp.partition_max_bytes = 1 << 20;
	ft.topic = kstr(t);
	ft.partitions = &fp;
	ft.partitions_n = 1;
	rq.topics = &ft;
	rq.topics_n = 1;
	*log_start = -100;
	*bytes = -1;
	if (roundtrip(fd, 1, 11, &rq, &rs, &a) == 0 && rs.responses_n == 1 &&
	    rs.responses[0].partitions_n == 1) {
		err = rs.responses[0].partitions[0].error_code;
		*log_start = rs.responses[0].partitions[0].log_start_offset;
		*bytes = rs.responses[0].partitions[0].records.len;
	}
	arena_free(&a);
	return err;
}

static void restart(struct tbroker *b, const char *const *sets)
{
	tb_stop(b);
	T_EQ(tb_start(b, WAL, 0, sets), 0);
}

static void test_delete_records(void)
{
	static const char *const sets[] = { "num.partitions=2", NULL };
	int64_t now = loop_wall_ms(), low, ls;
	int32_t bytes;
	struct tbroker b;

	T_EQ(tb_start(&b, WAL, 1, sets), 0);
	T_EQ(create(b.fd, "t", 2, NULL, NULL), KERR_NONE);
	for (int i = 0; i < 6; i++)
		T_EQ(ts_produce(b.fd, "t", 0, "value", now), i);
	T_EQ(ts_produce(b.fd, "t", 1, "one", now), 0);
	T_EQ(ts_produce(b.fd, "t", 1, "two", now), 1);
	T_EQ(earliest(b.fd, "t", 0), 0);

	/* v0: to offset 2 */
	T_EQ(delete_records(b.fd, 0, "t", 0, 2, &low), KERR_NONE);
	T_EQ(low, 2);
	T_EQ(earliest(b.fd, "t", 0), 2);
	T_EQ(list_offset(b.fd, "t", 0, -1), 6);
	/* at or below the start: success, the start as it is */
	T_EQ(delete_records(b.fd, 1, "t", 0, 1, &low), KERR_NONE);
	T_EQ(low, 2);
	T_EQ(delete_records(b.fd, 2, "t", 0, 2, &low), KERR_NONE);
	T_EQ(low, 2);
	/* v1 into the middle, v2 with -1: the high watermark */
	T_EQ(delete_records(b.fd, 1, "t", 0, 3, &low), KERR_NONE);
	T_EQ(low, 3);
	/* out of range: past the high watermark, below -1 */
	T_EQ(delete_records(b.fd, 2, "t", 0, 7, &low), KERR_OFFSET_OUT_OF_RANGE);
	T_EQ(low, -1);
	T_EQ(delete_records(b.fd, 0, "t", 0, -2, &low), KERR_OFFSET_OUT_OF_RANGE);
	T_EQ(delete_records(b.fd, 0, "t", 1, INT64_MIN, &low), KERR_OFFSET_OUT_OF_RANGE);
	/* unknown topic or partition */
	T_EQ(delete_records(b.fd, 2, "t", 2, 0, &low), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	T_EQ(low, -1);
	T_EQ(delete_records(b.fd, 2, "t", -1, 0, &low), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	T_EQ(delete_records(b.fd, 0, "nope", 0, 0, &low), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	T_EQ(earliest(b.fd, "t", 0), 3);
	T_EQ(earliest(b.fd, "t", 1), 0);

	/* Fetch below the start is out of range and says where it is; at the start it reads. */
	T_EQ(fetch(b.fd, "t", 0, 2, &ls, &bytes), KERR_OFFSET_OUT_OF_RANGE);
	T_EQ(ls, 3);
	T_EQ(fetch(b.fd, "t", 0, 3, &ls, &bytes), KERR_NONE);
	T_EQ(ls, 3);
	T_CHECK(bytes > 0);

	restart(&b, sets);
	T_EQ(earliest(b.fd, "t", 0), 3);
	T_EQ(list_offset(b.fd, "t", 0, -1), 6);
	T_EQ(earliest(b.fd, "t", 1), 0);
	T_EQ(fetch(b.fd, "t", 0, 2, &ls, &bytes), KERR_OFFSET_OUT_OF_RANGE);
	T_EQ(ls, 3);

	/* Everything, with -1; new records go on from the same offset. */
	T_EQ(delete_records(b.fd, 2, "t", 0, -1, &low), KERR_NONE);
	T_EQ(low, 6);
	T_EQ(fetch(b.fd, "t", 0, 6, &ls, &bytes), KERR_NONE);
	T_EQ(bytes, 0);
	T_EQ(fetch(b.fd, "t", 0, 5, &ls, &bytes), KERR_OFFSET_OUT_OF_RANGE);
	T_EQ(ts_produce(b.fd, "t", 0, "after", now), 6);
	T_EQ(delete_records(b.fd, 0, "t", 1, 1, &low), KERR_NONE);
	T_EQ(low, 1);
	restart(&b, sets);
	T_EQ(earliest(b.fd, "t", 0), 6);
	T_EQ(list_offset(b.fd, "t", 0, -1), 7);
	T_EQ(earliest(b.fd, "t", 1), 1);
	T_EQ(fetch(b.fd, "t", 0, 6, &ls, &bytes), KERR_NONE);
	T_CHECK(bytes > 0);

	/* A compacted topic keeps its records (Kafka: POLICY_VIOLATION). */
	T_EQ(create(b.fd, "compacted", 1, "cleanup.policy", "compact"), KERR_NONE);
	T_EQ(ts_produce(b.fd, "compacted", 0, "k", now), 0);
	T_EQ(delete_records(b.fd, 1, "compacted", 0, 1, &low), KERR_POLICY_VIOLATION);
	T_EQ(earliest(b.fd, "compacted", 0), 0);
	T_EQ(create(b.fd, "both", 1, "cleanup.policy", "compact,delete"), KERR_NONE);
	T_EQ(ts_produce(b.fd, "both", 0, "k", now), 0);
	T_EQ(delete_records(b.fd, 1, "both", 0, 1, &low), KERR_NONE);
	T_EQ(low, 1);
	tb_stop(&b);
	unlink(WAL);
}

/* Several partitions and topics in one request, each with its own answer. */
static void test_delete_records_many(void)
{
	static const char *const sets[] = { "num.partitions=3", NULL };
	struct tbroker b;
	struct arena a;
	struct delete_records_req_delete_records_partition p1[3] = { { 0, 1 }, { 1, -1 }, { 2, 9 } };
	struct delete_records_req_delete_records_partition p2[1] = { { 0, 0 } };
	struct delete_records_req_delete_records_topic qt[2] = { { kstr("m"), p1, 3 }, { kstr("gone"), p2, 1 } };
	struct delete_records_req rq;
	struct delete_records_resp rs;
	int64_t now = loop_wall_ms();

	T_EQ(tb_start(&b, WAL, 1, sets), 0);
	T_EQ(create(b.fd, "m", 3, NULL, NULL), KERR_NONE);
	for (int32_t p = 0; p < 3; p++) {
		T_EQ(ts_produce(b.fd, "m", p, "a", now), 0);
		T_EQ(ts_produce(b.fd, "m", p, "b", now), 1);
	}
	arena_init(&a, 0);
	kc_defaults(&kc_delete_records_req, &rq);
	rq.topics = qt;
	rq.topics_n = 2;
	T_EQ(roundtrip(b.fd, 21, 2, &rq, &rs, &a), 0);
	T_EQ(rs.topics_n, 2);
	if (rs.topics_n == 2 && rs.topics[0].partitions_n == 3 && rs.topics[1].partitions_n == 1) {
		T_CHECK(kc_str_eq(rs.topics[0].name, "m"));
		T_EQ(rs.topics[0].partitions[0].partition_index, 0);
		T_EQ(rs.topics[0].partitions[0].error_code, KERR_NONE);
		T_EQ(rs.topics[0].partitions[0].low_watermark, 1);
		T_EQ(rs.topics[0].partitions[1].partition_index, 1);
		T_EQ(rs.topics[0].partitions[1].error_code, KERR_NONE);
		T_EQ(rs.topics[0].partitions[1].low_watermark, 2);
		T_EQ(rs.topics[0].partitions[2].partition_index, 2);
		T_EQ(rs.topics[0].partitions[2].error_code, KERR_OFFSET_OUT_OF_RANGE);
		T_EQ(rs.topics[0].partitions[2].low_watermark, -1);
		T_CHECK(kc_str_eq(rs.topics[1].name, "gone"));
		T_EQ(rs.topics[1].partitions[0].error_code, KERR_UNKNOWN_TOPIC_OR_PARTITION);
	} else {
		T_CHECK(0);
	}
	arena_free(&a);
	T_EQ(earliest(b.fd, "m", 0), 1);
	T_EQ(earliest(b.fd, "m", 1), 2);
	T_EQ(earliest(b.fd, "m", 2), 0);
	/* no topics at all: an empty answer */
	arena_init(&a, 0);
	rq.topics = NULL;
	rq.topics_n = 0;
	T_EQ(roundtrip(b.fd, 21, 0, &rq, &rs, &a), 0);
	T_EQ(rs.topics_n, 0);
	arena_free(&a);
	tb_stop(&b);
	unlink(WAL);
}

static void ls_done(struct kls *ls, int err)
{
	*(int *)ls->arg = err ? err : 1;
}

/*
 * The record itself: a move that lands after its topic went changes
 * nothing; replay skips what it cannot apply and clamps to the high
 * watermark, without stopping.
 */
static void test_log_start_record(void)
{
	struct tbroker b;
	int64_t now = loop_wall_ms();
	int flag = 0;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	T_EQ(create(b.fd, "x", 1, NULL, NULL), KERR_NONE);
	T_EQ(ts_produce(b.fd, "x", 0, "a", now), 0);
	T_EQ(ts_produce(b.fd, "x", 0, "b", now), 1);
	struct topic *t = topic_find(b.k->reg, "x", 1);
	T_CHECK(t != NULL);
	if (!t) {
		tb_stop(&b);
		return;
	}
	uint8_t id[16];
	memcpy(id, t->id, 16);

	/* A move and then, before it is durable, the topic goes. */
	struct kls ls = { .partition = 0, .offset = 1, .done = ls_done, .arg = &flag };
	memcpy(ls.id, id, 16);
	T_EQ(kls_submit(b.k, &ls), 0);
	T_EQ(flag, 0);				/* not before it is durable */
	topic_delete(b.k->reg, t);
	T_EQ(create(b.fd, "x", 1, NULL, NULL), KERR_NONE);	/* same name, another id */
	T_EQ(ts_produce(b.fd, "x", 0, "c", now), 0);
	T_EQ(ts_produce(b.fd, "x", 0, "d", now), 1);
	for (int i = 0; i < 1000 && !flag; i++)
		pump(-1, 1);
	T_EQ(flag, 1);
	T_EQ(ls.after, -1);
	T_EQ(earliest(b.fd, "x", 0), 0);

	/* Replay: malformed, unknown, past hw; none of them stops anything. */
	t = topic_find(b.k->reg, "x", 1);
	uint8_t rec[KLS_LEN + 1] = { KLS_KIND };
	memcpy(rec + 1, t->id, 16);
	sl_store_be32(rec + 17, 0);
	sl_store_be64(rec + 21, 1);
	kls_replay(b.k, rec, KLS_LEN - 1);		/* short */
	kls_replay(b.k, rec, KLS_LEN + 1);		/* long */
	T_EQ(earliest(b.fd, "x", 0), 0);
	sl_store_be64(rec + 21, (uint64_t)-5);
	kls_replay(b.k, rec, KLS_LEN);			/* negative offset */
	sl_store_be32(rec + 17, 7);
	sl_store_be64(rec + 21, 1);
	kls_replay(b.k, rec, KLS_LEN);			/* no partition 7 */
	memcpy(rec + 1, id, 16);
	sl_store_be32(rec + 17, 0);
	kls_replay(b.k, rec, KLS_LEN);			/* the deleted topic's id */
	T_EQ(earliest(b.fd, "x", 0), 0);
	memcpy(rec + 1, t->id, 16);
	kls_replay(b.k, rec, KLS_LEN);			/* applies */
	T_EQ(earliest(b.fd, "x", 0), 1);
	sl_store_be64(rec + 21, 0);
	kls_replay(b.k, rec, KLS_LEN);			/* never backwards */
	T_EQ(earliest(b.fd, "x", 0), 1);
	sl_store_be64(rec + 21, 1000);
	kls_replay(b.k, rec, KLS_LEN);			/* past hw: clamped */
	T_EQ(earliest(b.fd, "x", 0), 2);
	T_EQ(list_offset(b.fd, "x", 0, -1), 2);
	T_EQ(ts_produce(b.fd, "x", 0, "e", now), 2);
	tb_stop(&b);
	unlink(WAL);
}

/* Journaled moves of the last run, made durable. */
static void settle(void)
{
	pump(-1, 20);
}

static void test_retention_policies(void)
{
	static const char *const sets[] = { "log.retention.ms=3600000", NULL };
	struct tbroker b;
	int64_t now = loop_wall_ms();
	size_t blen;
	free(batch_at("0123456789", 0, &blen));

	T_EQ(tb_start(&b, WAL, 1, sets), 0);
	/* the broker's hour */
	T_EQ(create(b.fd, "hour", 1, NULL, NULL), KERR_NONE);
	T_EQ(ts_produce(b.fd, "hour", 0, "a", now - 3 * 3600000), 0);
	T_EQ(ts_produce(b.fd, "hour", 0, "b", now - 2 * 3600000), 1);
	T_EQ(ts_produce(b.fd, "hour", 0, "c", now - 60000), 2);
	T_EQ(ts_produce(b.fd, "hour", 0, "d", now - 2 * 3600000), 3);	/* old, but after a young one */
	/* overrides: longer, unlimited, by size */
	T_EQ(create(b.fd, "day", 1, "retention.ms", "86400000"), KERR_NONE);
	T_EQ(ts_produce(b.fd, "day", 0, "a", now - 2 * DAY_MS), 0);
	T_EQ(ts_produce(b.fd, "day", 0, "b", now - 3 * 3600000), 1);
	T_EQ(create(b.fd, "forever", 1, "retention.ms", "-1"), KERR_NONE);
	T_EQ(ts_produce(b.fd, "forever", 0, "a", 1), 0);
	char cap[32];
	snprintf(cap, sizeof(cap), "%zu", 2 * blen);
	T_EQ(create(b.fd, "size", 1, "retention.bytes", cap), KERR_NONE);
	for (int i = 0; i < 5; i++)
		T_EQ(ts_produce(b.fd, "size", 0, "0123456789", now), i);
	T_EQ(create(b.fd, "compact", 1, "cleanup.policy", "compact"), KERR_NONE);
	T_EQ(ts_produce(b.fd, "compact", 0, "a", 1), 0);
	/* unknown timestamps never expire by time */
	T_EQ(create(b.fd, "nots", 1, NULL, NULL), KERR_NONE);
	T_EQ(ts_produce(b.fd, "nots", 0, "a", -1), 0);

	struct topic *t = topic_find(b.k->reg, "forever", 7);
	struct ret_policy p;
	T_CHECK(t != NULL);
	if (t) {
		kretention_policy(b.k, t, &p);
		T_EQ(p.ms, -1);
		T_EQ(p.bytes, -1);
	}
	t = topic_find(b.k->reg, "hour", 4);
	if (t) {
		kretention_policy(b.k, t, &p);
		T_EQ(p.ms, 3600000);
		T_EQ(p.bytes, -1);
	}

	T_EQ(kretention_run(b.k, now), 3);		/* hour, day, size */
	T_EQ(kretention_run(b.k, now), 0);		/* while those are in flight: nothing */
	settle();
	T_EQ(earliest(b.fd, "hour", 0), 2);
	T_EQ(earliest(b.fd, "day", 0), 1);
	T_EQ(earliest(b.fd, "forever", 0), 0);
	T_EQ(earliest(b.fd, "size", 0), 3);		/* 5 batches, 2 kept */
	T_EQ(earliest(b.fd, "compact", 0), 0);
	T_EQ(earliest(b.fd, "nots", 0), 0);
	T_EQ(kretention_run(b.k, now), 0);		/* nothing more to do */

	/* An hour later "c" and "d" are both due. */
	T_EQ(kretention_run(b.k, now + 3600000), 1);
	settle();
	T_EQ(earliest(b.fd, "hour", 0), 4);
	T_EQ(list_offset(b.fd, "hour", 0, -1), 4);

	restart(&b, sets);
	T_EQ(earliest(b.fd, "hour", 0), 4);
	T_EQ(earliest(b.fd, "day", 0), 1);
	T_EQ(earliest(b.fd, "size", 0), 3);
	T_EQ(earliest(b.fd, "forever", 0), 0);
	T_EQ(ts_produce(b.fd, "hour", 0, "e", now), 4);
	tb_stop(&b);
	unlink(WAL);
}

/* No settings at all: Kafka's 7 days and no size limit. */
static void test_retention_default(void)
{
	struct tbroker b;
	int64_t now = loop_wall_ms();

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	T_EQ(b.cfg.log_retention_ms, 7 * DAY_MS);
	T_EQ(b.cfg.log_retention_bytes, -1);
	T_EQ(b.cfg.log_retention_check_ms, 300000);
	T_EQ(create(b.fd, "week", 1, NULL, NULL), KERR_NONE);
	T_EQ(ts_produce(b.fd, "week", 0, "a", now - 8 * DAY_MS), 0);
	T_EQ(ts_produce(b.fd, "week", 0, "b", now - 6 * DAY_MS), 1);
	T_EQ(kretention_run(b.k, now), 1);
	settle();
	T_EQ(earliest(b.fd, "week", 0), 1);
	tb_stop(&b);
	unlink(WAL);
}

/* The timer: a short check interval finds old records by itself. */
static void test_retention_timer(void)
{
	static const char *const sets[] = { "log.retention.check.interval.ms=5", NULL };
	struct tbroker b;
	int64_t now = loop_wall_ms();

	T_EQ(tb_start(&b, WAL, 1, sets), 0);
	T_EQ(create(b.fd, "tick", 1, "retention.ms", "1000"), KERR_NONE);
	T_EQ(ts_produce(b.fd, "tick", 0, "old", now - 60000), 0);
	T_EQ(ts_produce(b.fd, "tick", 0, "older", now - 120000), 1);
	T_EQ(ts_produce(b.fd, "tick", 0, "new", now + 3600000), 2);
	int64_t e = 0;
	for (int i = 0; i < 200 && e != 2; i++) {
		pump(-1, 10);
		e = earliest(b.fd, "tick", 0);
	}
	T_EQ(e, 2);
	tb_stop(&b);
	unlink(WAL);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	L = loop_new();
	T_RUN(test_delete_records);
	T_RUN(test_delete_records_many);
	T_RUN(test_log_start_record);
	T_RUN(test_retention_policies);
	T_RUN(test_retention_default);
	T_RUN(test_retention_timer);
	loop_destroy(L);
	return t_done();
}
