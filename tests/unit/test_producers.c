/*
 * test_producers.c - idempotent producers through the broker in one process
 * (tbroker.h): InitProducerId at every version, Produce with producer ids
 * (duplicates answered with the original offsets and not written again,
 * gaps and stale epochs refused, several batches in one record set), and
 * all of it again after a stop and a start on the same WAL: the producer
 * state rebuilt from the replayed batches, and producer ids never handed
 * out twice; DescribeProducers lists what a partition remembers.  With an object store, the same after a start on a blank WAL
 * (the state from the manifest alone) and on the old one (the manifest's
 * state, then the batches the WAL still holds).
 */
#include "tbroker.h"
#include "../../kafka/kreq.h"

#define WAL "build/test-producers-wal"
#define OBJDIR "build/test-producers-objs"

static const char *const tier_base[] = {
	"sluice.upload.interval.ms=20",
	"sluice.tail.bytes=0",
	NULL,
};

/* InitProducerId at ver; the error code (-100: no answer), id and epoch. */
static int16_t init_pid(int fd, int16_t ver, const char *txid, int64_t *pid, int16_t *epoch)
{
	struct arena a;
	struct init_producer_id_req rq;
	struct init_producer_id_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_init_producer_id_req, &rq);
	rq.transactional_id = txid ? kstr(txid) : KC_NULL_STR;
	rq.transaction_timeout_ms = 60000;
	if (roundtrip(fd, 22, ver, &rq, &rs, &a) == 0) {
		err = rs.error_code;
		*pid = rs.producer_id;
		*epoch = rs.producer_epoch;
	}
	arena_free(&a);
	return err;
}

/* Produce one record from (pid, epoch, seq) to t-0: the base offset, or -100 - error code. */
static int64_t idem(int fd, const char *t, int64_t pid, int16_t epoch, int32_t seq)
{
	size_t len;
	int64_t base = -1;
	char v[32];

	snprintf(v, sizeof(v), "p%lld-e%d-s%d", (long long)pid, epoch, seq);
	uint8_t *b = batch_from(v, 1700000000000, pid, epoch, seq, 0, &len);
	int16_t err = produce_bytes(fd, t, 0, b, len, &base);
	free(b);
	return err ? -100 - err : base;
}

static void t_init_producer_id_versions(void)
{
	struct tbroker b;
	int64_t ids[5];
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	for (int16_t v = 0; v <= 4; v++) {
		T_EQ(init_pid(b.fd, v, NULL, &ids[v], &epoch), 0);
		T_EQ(epoch, 0);
		T_CHECK(ids[v] >= 0);
		for (int j = 0; j < v; j++)
			T_CHECK(ids[j] != ids[v]);
	}
	tb_stop(&b);
}

static void t_duplicates_and_gaps(void)
{
	struct tbroker b;
	int64_t pid;
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	T_EQ(create_topic(b.fd, "idem"), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &pid, &epoch), 0);
	T_EQ(idem(b.fd, "idem", pid, 0, 0), 0);
	T_EQ(idem(b.fd, "idem", pid, 0, 1), 1);
	/* Retries: the original offsets, nothing written. */
	T_EQ(idem(b.fd, "idem", pid, 0, 0), 0);
	T_EQ(idem(b.fd, "idem", pid, 0, 1), 1);
	T_EQ(high_watermark(b.fd, "idem"), 2);
	/* A gap. */
	T_EQ(idem(b.fd, "idem", pid, 0, 3), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(high_watermark(b.fd, "idem"), 2);
	/* A new epoch starts at 0; the old one is fenced from then on. */
	T_EQ(idem(b.fd, "idem", pid, 1, 5), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(idem(b.fd, "idem", pid, 1, 0), 2);
	T_EQ(idem(b.fd, "idem", pid, 0, 2), -100 - KERR_INVALID_PRODUCER_EPOCH);
	/* Another producer has its own sequences; plain batches are untouched. */
	int64_t pid2;
	T_EQ(init_pid(b.fd, 1, NULL, &pid2, &epoch), 0);
	T_EQ(idem(b.fd, "idem", pid2, 0, 0), 3);
	int64_t base;
	T_EQ(produce(b.fd, "idem", "plain", &base), 0);
	T_EQ(base, 4);
	/* A sequence the partition never saw from an unknown producer is accepted (KIP-360). */
	T_EQ(idem(b.fd, "idem", pid2 + 1000, 0, 17), 5);
	T_EQ(high_watermark(b.fd, "idem"), 6);
	tb_stop(&b);
}

/* One record set of two batches of pid: sequences s0 and s1. */
static int64_t two_batches(int fd, const char *t, int64_t pid, int32_t s0, int32_t s1)
{
	size_t l0, l1;
	int64_t base = -1;
	uint8_t *b0 = batch_from("a", 1700000000000, pid, 0, s0, 0, &l0);
	uint8_t *b1 = batch_from("b", 1700000000000, pid, 0, s1, 0, &l1);
	uint8_t *set = malloc(l0 + l1);

	memcpy(set, b0, l0);
	memcpy(set + l0, b1, l1);
	int16_t err = produce_bytes(fd, t, 0, set, l0 + l1, &base);
	free(b0);
	free(b1);
	free(set);
	return err ? -100 - err : base;
}

static void t_record_set_of_batches(void)
{
	struct tbroker b;
	int64_t pid;
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	T_EQ(create_topic(b.fd, "sets"), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &pid, &epoch), 0);
	T_EQ(two_batches(b.fd, "sets", pid, 0, 1), 0);
	T_EQ(high_watermark(b.fd, "sets"), 2);
	/* The same set again: both duplicates. */
	T_EQ(two_batches(b.fd, "sets", pid, 0, 1), 0);
	T_EQ(high_watermark(b.fd, "sets"), 2);
	/* The second batch does not follow the first: nothing of the set is written. */
	T_EQ(two_batches(b.fd, "sets", pid, 2, 4), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(high_watermark(b.fd, "sets"), 2);
	/* A retried batch followed by a new one: the new one is written once. */
	T_EQ(two_batches(b.fd, "sets", pid, 1, 2), 1);
	T_EQ(high_watermark(b.fd, "sets"), 3);
	tb_stop(&b);
}

static void t_restart_keeps_state(void)
{
	struct tbroker b;
	int64_t pid, later;
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	T_EQ(create_topic(b.fd, "keep"), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &pid, &epoch), 0);
	for (int32_t s = 0; s < 8; s++)
		T_EQ(idem(b.fd, "keep", pid, 0, s), s);
	tb_stop(&b);

	T_EQ(tb_start(&b, WAL, 0, NULL), 0);
	/* The last five batches are known after the restart: retries of them are duplicates. */
	for (int32_t s = 3; s < 8; s++)
		T_EQ(idem(b.fd, "keep", pid, 0, s), s);
	T_EQ(high_watermark(b.fd, "keep"), 8);
	T_EQ(idem(b.fd, "keep", pid, 0, 9), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(idem(b.fd, "keep", pid, 0, 8), 8);
	/* Ids handed out before the restart are never handed out again. */
	T_EQ(init_pid(b.fd, 4, NULL, &later, &epoch), 0);
	T_CHECK(later > pid);
	tb_stop(&b);
}

static void t_ids_across_blocks_and_restarts(void)
{
	struct tbroker b;
	int64_t id, prev = -1;
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	/* More than one block of ids: each new, increasing. */
	for (int i = 0; i < 2100; i++) {
		T_EQ(init_pid(b.fd, 2, NULL, &id, &epoch), 0);
		T_CHECK(id > prev);
		prev = id;
	}
	tb_stop(&b);
	for (int r = 0; r < 3; r++) {
		T_EQ(tb_start(&b, WAL, 0, NULL), 0);
		T_EQ(init_pid(b.fd, 3, NULL, &id, &epoch), 0);
		T_CHECK(id > prev);
		prev = id;
		tb_stop(&b);
	}
}

/* An idle producer is forgotten after producer.id.expiration.ms; one writing is not. */
static void t_idle_producers_expire(void)
{
	static const char *const sets[] = {
		"producer.id.expiration.ms=300",
		"producer.id.expiration.check.interval.ms=20",
		NULL,
	};
	struct tbroker b;
	int64_t idle, busy;
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, sets), 0);
	T_EQ(create_topic(b.fd, "exp"), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &idle, &epoch), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &busy, &epoch), 0);
	T_EQ(idem(b.fd, "exp", idle, 0, 0), 0);
	T_EQ(idem(b.fd, "exp", busy, 0, 0), 1);
	/* Known: a gap is refused. */
	T_EQ(idem(b.fd, "exp", idle, 0, 5), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* The busy one writes every 50 ms for 1 s; the idle one does nothing. */
	int64_t next = 2;
	for (int32_t s = 1; s <= 20; s++, next++) {
		pump(-1, 50);
		T_EQ(idem(b.fd, "exp", busy, 0, s), next);
	}
	/* Forgotten: any sequence is accepted (KIP-360), and the busy one is still known. */
	T_EQ(idem(b.fd, "exp", idle, 0, 5), next);
	T_EQ(idem(b.fd, "exp", busy, 0, 20), next - 1);
	T_EQ(idem(b.fd, "exp", busy, 0, 23), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	tb_stop(&b);
}

/* DescribeProducers for t-0 and t-7 (which does not exist); the partition-0 answer in *out. */
static int describe(int fd, const char *t, struct arena *a, struct describe_producers_resp *rs)
{
	struct describe_producers_req rq;
	struct describe_producers_req_topic_request qt;
	int32_t parts[2] = { 0, 7 };

	kc_defaults(&kc_describe_producers_req, &rq);
	kc_defaults(&kc_describe_producers_req_topic_request, &qt);
	qt.name = kstr(t);
	qt.partition_indexes = parts;
	qt.partition_indexes_n = 2;
	rq.topics = &qt;
	rq.topics_n = 1;
	return roundtrip(fd, 61, 0, &rq, rs, a);
}

static void t_describe_producers(void)
{
	struct tbroker b;
	struct arena a;
	struct describe_producers_resp rs;
	int64_t p1, p2;
	int16_t epoch;

	T_EQ(tb_start(&b, WAL, 1, NULL), 0);
	T_EQ(create_topic(b.fd, "desc"), 0);
	arena_init(&a, 0);
	T_EQ(describe(b.fd, "desc", &a, &rs), 0);
	T_CHECK(rs.topics_n == 1 && rs.topics[0].partitions_n == 2);
	if (rs.topics_n == 1 && rs.topics[0].partitions_n == 2) {
		T_EQ(rs.topics[0].partitions[0].error_code, 0);
		T_EQ(rs.topics[0].partitions[0].active_producers_n, 0);
		T_EQ(rs.topics[0].partitions[1].partition_index, 7);
		T_EQ(rs.topics[0].partitions[1].error_code, KERR_UNKNOWN_TOPIC_OR_PARTITION);
	}
	arena_free(&a);
	T_EQ(init_pid(b.fd, 4, NULL, &p1, &epoch), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &p2, &epoch), 0);
	for (int32_t s = 0; s < 3; s++)
		T_EQ(idem(b.fd, "desc", p1, 0, s), s);
	T_EQ(idem(b.fd, "desc", p2, 2, 0), 3);
	arena_init(&a, 0);
	T_EQ(describe(b.fd, "desc", &a, &rs), 0);
	T_CHECK(rs.topics_n == 1 && rs.topics[0].partitions_n == 2 &&
		rs.topics[0].partitions[0].active_producers_n == 2);
	if (rs.topics_n == 1 && rs.topics[0].partitions_n == 2 &&
	    rs.topics[0].partitions[0].active_producers_n == 2) {
		struct describe_producers_resp_producer_state *x = rs.topics[0].partitions[0].active_producers;
		if (x[0].producer_id != p1) {
			struct describe_producers_resp_producer_state tmp = x[0];
			x[0] = x[1];
			x[1] = tmp;
		}
		T_EQ(x[0].producer_id, p1);
		T_EQ(x[0].producer_epoch, 0);
		T_EQ(x[0].last_sequence, 2);
		T_EQ(x[0].last_timestamp, 1700000000000);
		T_EQ(x[0].current_txn_start_offset, -1);
		T_EQ(x[1].producer_id, p2);
		T_EQ(x[1].producer_epoch, 2);
		T_EQ(x[1].last_sequence, 0);
	}
	arena_free(&a);
	tb_stop(&b);
}

/* Pump until a committed manifest's partition 0 of topic ends at end (or 5 s pass). */
static int wait_uploaded(struct tbroker *b, const char *topic, int64_t end)
{
	for (int i = 0; i < 5000; i++) {
		const struct manifest *m = tier_manifest(b->tier);
		const struct mf_topic *t = m ? manifest_topic_by_name(m, topic) : NULL;
		if (t && t->parts[0].end >= end && manifest_pending(m) == 0 && !m->w.obj)
			return 1;
		pump(-1, 1);
	}
	return 0;
}

static void t_state_in_the_manifest(void)
{
	struct tbroker b;
	int64_t pid, later;
	int16_t epoch;

	rm_rf(OBJDIR);
	T_EQ(tb_start(&b, WAL, 1, tb_file_tier_sets(OBJDIR, tier_base)), 0);
	T_EQ(create_topic(b.fd, "man"), 0);
	T_EQ(init_pid(b.fd, 4, NULL, &pid, &epoch), 0);
	for (int32_t s = 0; s < 8; s++)
		T_EQ(idem(b.fd, "man", pid, 0, s), s);
	T_CHECK(wait_uploaded(&b, "man", 8));
	{
		const struct mf_topic *t = manifest_topic_by_name(tier_manifest(b.tier), "man");
		T_CHECK(t && t->parts[0].state_len > 0);
	}
	tb_stop(&b);

	/* A blank WAL: everything comes from the manifest. */
	T_EQ(tb_start(&b, WAL, 1, tb_file_tier_sets(OBJDIR, tier_base)), 0);
	T_EQ(high_watermark(b.fd, "man"), 8);
	for (int32_t s = 3; s < 8; s++)
		T_EQ(idem(b.fd, "man", pid, 0, s), s);
	T_EQ(high_watermark(b.fd, "man"), 8);
	T_EQ(idem(b.fd, "man", pid, 0, 9), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(idem(b.fd, "man", pid, 0, 2), -100 - KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(init_pid(b.fd, 4, NULL, &later, &epoch), 0);
	T_CHECK(later > pid);
	/* Part in the manifest, part only in the WAL. */
	T_EQ(idem(b.fd, "man", pid, 0, 8), 8);
	T_CHECK(wait_uploaded(&b, "man", 9));
	T_EQ(idem(b.fd, "man", pid, 0, 9), 9);
	T_EQ(idem(b.fd, "man", pid, 0, 10), 10);
	tb_stop(&b);
	T_EQ(tb_start(&b, WAL, 0, tb_file_tier_sets(OBJDIR, tier_base)), 0);
	for (int32_t s = 6; s < 11; s++)
		T_EQ(idem(b.fd, "man", pid, 0, s), s);
	T_EQ(high_watermark(b.fd, "man"), 11);
	T_EQ(idem(b.fd, "man", pid, 0, 11), 11);
	tb_stop(&b);
	rm_rf(OBJDIR);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	L = loop_new();
	T_RUN(t_init_producer_id_versions);
	T_RUN(t_duplicates_and_gaps);
	T_RUN(t_record_set_of_batches);
	T_RUN(t_restart_keeps_state);
	T_RUN(t_ids_across_blocks_and_restarts);
	T_RUN(t_state_in_the_manifest);
	T_RUN(t_idle_producers_expire);
	T_RUN(t_describe_producers);
	unlink(WAL);
	loop_destroy(L);
	return t_done();
}
