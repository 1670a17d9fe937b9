/*
 * test_codec_txn.c - the transaction APIs in the Kafka codec, against Apache
 * Kafka's message definitions: AddPartitionsToTxn (24, versions 0-3, the
 * V3AndBelow fields), AddOffsetsToTxn (25, 0-3), EndTxn (26, 0-3),
 * TxnOffsetCommit (28, 0-3), DescribeTransactions (65, 0) and
 * ListTransactions (66, 0-1); flexible from 3, 3, 3, 3, 0 and 0.
 *
 *  - the API table rows;
 *  - request bodies written out byte by byte at the lowest version, the
 *    first flexible one and the highest, decoded and checked;
 *  - responses encoded and compared with bytes written out;
 *  - every strict prefix of every hand-written request fails with SL_E_SHORT.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kafka/codec.h"
#include "kafka/msgs.h"

static struct arena A;

#define S(s) kc_str_of((s), (int32_t)strlen(s))

/* Decode p at ver (flexible from flex_min); every strict prefix must be SL_E_SHORT. */
static int dec(const struct kc_struct *s, int ver, int flex_min, const uint8_t *p, size_t n, void *out)
{
	struct sl_rd r;
	void *scratch = arena_alloc(&A, s->size);
	int flex = ver >= flex_min;

	for (size_t cut = 0; cut < n; cut++) {
		rd_init(&r, p, cut);
		T_EQ(kc_decode(s, (int16_t)ver, flex, &r, &A, scratch), SL_E_SHORT);
	}
	rd_init(&r, p, n);
	int rc = kc_decode(s, (int16_t)ver, flex, &r, &A, out);
	if (rc == 0)
		T_EQ(rd_left(&r), 0);
	return rc;
}

static void enc_eq(const struct kc_struct *s, int ver, int flex_min, const void *in, const uint8_t *want,
		   size_t n)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(kc_encode(s, (int16_t)ver, ver >= flex_min, in, &w), 0);
	T_EQ(w.len, n);
	if (w.len != n || memcmp(w.p, want, n) != 0) {
		t_failed_checks++;
		fprintf(stderr, "  %s v%d: encoding differs\n", s->name, ver);
	}
	wr_free(&w);
}

static void test_api_rows(void)
{
	static const struct { int16_t key; const char *name; int16_t vmax, flex; } rows[] = {
		{ 24, "AddPartitionsToTxn", 3, 3 }, { 25, "AddOffsetsToTxn", 3, 3 },
		{ 26, "EndTxn", 3, 3 }, { 28, "TxnOffsetCommit", 3, 3 },
		{ 65, "DescribeTransactions", 0, 0 }, { 66, "ListTransactions", 1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct kc_api *a = kc_api_find(rows[i].key);
		T_CHECK(a != NULL);
		if (!a)
			continue;
		T_STR_EQ(a->name, rows[i].name);
		T_EQ(a->vmin, 0);
		T_EQ(a->vmax, rows[i].vmax);
		T_EQ(a->flex_min, rows[i].flex);
	}
}

static void test_add_partitions(void)
{
	/* v0: "tx", producer 7, epoch 1, topic "t" partitions 0 and 2. */
	static const uint8_t q0[] = {
		0x00, 0x02, 't', 'x', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 2,
	};
	/* v3 (compact, tags): the same. */
	static const uint8_t q3[] = {
		0x03, 't', 'x', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01,
		0x02, 0x02, 't', 0x03, 0, 0, 0, 0, 0, 0, 0, 2, 0x00,
		0x00,
	};
	struct add_partitions_to_txn_req rq;

	arena_init(&A, 0);
	for (int v = 0; v <= 3; v++) {
		const uint8_t *q = v < 3 ? q0 : q3;
		T_EQ(dec(&kc_add_partitions_to_txn_req, v, 3, q, v < 3 ? sizeof(q0) : sizeof(q3), &rq), 0);
		T_CHECK(kc_str_eq(rq.transactional_id, "tx"));
		T_EQ(rq.producer_id, 7);
		T_EQ(rq.producer_epoch, 1);
		T_EQ(rq.topics_n, 1);
		if (rq.topics_n == 1) {
			T_CHECK(kc_str_eq(rq.topics[0].name, "t"));
			T_EQ(rq.topics[0].partitions_n, 2);
			if (rq.topics[0].partitions_n == 2)
				T_EQ(rq.topics[0].partitions[1], 2);
		}
	}
	struct add_partitions_to_txn_resp_partition_result pr = { 2, 51 };
	struct add_partitions_to_txn_resp_topic_result tr = { S("t"), &pr, 1 };
	struct add_partitions_to_txn_resp rs;
	static const uint8_t r0[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x01, 't', 0, 0, 0, 1,
				      0, 0, 0, 2, 0x00, 0x33 };
	static const uint8_t r3[] = { 0, 0, 0, 0, 0x02, 0x02, 't', 0x02, 0, 0, 0, 2, 0x00, 0x33,
				      0x00, 0x00, 0x00 };
	kc_defaults(&kc_add_partitions_to_txn_resp, &rs);
	rs.results = &tr;
	rs.results_n = 1;
	enc_eq(&kc_add_partitions_to_txn_resp, 0, 3, &rs, r0, sizeof(r0));
	enc_eq(&kc_add_partitions_to_txn_resp, 2, 3, &rs, r0, sizeof(r0));
	enc_eq(&kc_add_partitions_to_txn_resp, 3, 3, &rs, r3, sizeof(r3));
	arena_free(&A);
}

static void test_add_offsets_and_end(void)
{
	static const uint8_t ao0[] = { 0x00, 0x02, 't', 'x', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01,
				       0x00, 0x01, 'g' };
	static const uint8_t ao3[] = { 0x03, 't', 'x', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01, 0x02, 'g', 0x00 };
	static const uint8_t et0[] = { 0x00, 0x02, 't', 'x', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01, 0x01 };
	static const uint8_t et3[] = { 0x03, 't', 'x', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01, 0x00, 0x00 };
	struct add_offsets_to_txn_req ao;
	struct end_txn_req et;

	arena_init(&A, 0);
	T_EQ(dec(&kc_add_offsets_to_txn_req, 0, 3, ao0, sizeof(ao0), &ao), 0);
	T_CHECK(kc_str_eq(ao.group_id, "g") && ao.producer_id == 7 && ao.producer_epoch == 1);
	T_EQ(dec(&kc_add_offsets_to_txn_req, 3, 3, ao3, sizeof(ao3), &ao), 0);
	T_CHECK(kc_str_eq(ao.transactional_id, "tx") && kc_str_eq(ao.group_id, "g"));
	T_EQ(dec(&kc_end_txn_req, 0, 3, et0, sizeof(et0), &et), 0);
	T_EQ(et.committed, 1);
	T_EQ(dec(&kc_end_txn_req, 3, 3, et3, sizeof(et3), &et), 0);
	T_EQ(et.committed, 0);
	T_EQ(et.producer_id, 7);

	struct end_txn_resp rs;
	static const uint8_t r1[] = { 0, 0, 0, 0, 0x00, 0x30 };
	static const uint8_t r3[] = { 0, 0, 0, 0, 0x00, 0x30, 0x00 };
	kc_defaults(&kc_end_txn_resp, &rs);
	rs.error_code = 48;
	enc_eq(&kc_end_txn_resp, 1, 3, &rs, r1, sizeof(r1));
	enc_eq(&kc_end_txn_resp, 3, 3, &rs, r3, sizeof(r3));
	enc_eq(&kc_add_offsets_to_txn_resp, 3, 3, &rs, r3, sizeof(r3));
	arena_free(&A);
}

static void test_txn_offset_commit(void)
{
	/* v0: "tx", group "g", producer 7 epoch 1, topic "t" partition 0 at 42 with null metadata. */
	static const uint8_t q0[] = {
		0x00, 0x02, 't', 'x', 0x00, 0x01, 'g', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 0x01,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42, 0xff, 0xff,
	};
	/* v2: adds the leader epoch (5) and metadata "m". */
	static const uint8_t q2[] = {
		0x00, 0x02, 't', 'x', 0x00, 0x01, 'g', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 0x01,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 5, 0x00, 0x01, 'm',
	};
	/* v3: generation 3, member "m1", null instance id, compact. */
	static const uint8_t q3[] = {
		0x03, 't', 'x', 0x02, 'g', 0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01,
		0, 0, 0, 3, 0x03, 'm', '1', 0x00,
		0x02, 0x02, 't', 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42, 0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x00, 0x00,
	};
	struct txn_offset_commit_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_txn_offset_commit_req, 0, 3, q0, sizeof(q0), &rq), 0);
	T_EQ(rq.generation_id, -1);
	T_EQ(rq.topics_n, 1);
	if (rq.topics_n == 1 && rq.topics[0].partitions_n == 1) {
		T_EQ(rq.topics[0].partitions[0].committed_offset, 42);
		T_EQ(rq.topics[0].partitions[0].committed_leader_epoch, -1);
		T_EQ(rq.topics[0].partitions[0].committed_metadata.len, -1);
	}
	T_EQ(dec(&kc_txn_offset_commit_req, 2, 3, q2, sizeof(q2), &rq), 0);
	if (rq.topics_n == 1 && rq.topics[0].partitions_n == 1) {
		T_EQ(rq.topics[0].partitions[0].committed_leader_epoch, 5);
		T_CHECK(kc_str_eq(rq.topics[0].partitions[0].committed_metadata, "m"));
	}
	T_EQ(dec(&kc_txn_offset_commit_req, 3, 3, q3, sizeof(q3), &rq), 0);
	T_EQ(rq.generation_id, 3);
	T_CHECK(kc_str_eq(rq.member_id, "m1"));
	T_EQ(rq.group_instance_id.len, -1);
	T_EQ(rq.topics_n, 1);
	if (rq.topics_n == 1 && rq.topics[0].partitions_n == 1) {
		T_EQ(rq.topics[0].partitions[0].committed_offset, 42);
		T_EQ(rq.topics[0].partitions[0].committed_leader_epoch, -1);
		T_EQ(rq.topics[0].partitions[0].committed_metadata.len, -1);
	}

	struct txn_offset_commit_resp_partition pp = { 0, 0 };
	struct txn_offset_commit_resp_topic tp = { S("t"), &pp, 1 };
	struct txn_offset_commit_resp rs;
	static const uint8_t r0[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x01, 't', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t r3[] = { 0, 0, 0, 0, 0x02, 0x02, 't', 0x02, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00 };
	kc_defaults(&kc_txn_offset_commit_resp, &rs);
	rs.topics = &tp;
	rs.topics_n = 1;
	enc_eq(&kc_txn_offset_commit_resp, 0, 3, &rs, r0, sizeof(r0));
	enc_eq(&kc_txn_offset_commit_resp, 3, 3, &rs, r3, sizeof(r3));
	arena_free(&A);
}

static void test_describe_and_list(void)
{
	static const uint8_t dq[] = { 0x03, 0x02, 'a', 0x03, 'b', 'c', 0x00 };
	static const uint8_t lq0[] = { 0x02, 0x08, 'O', 'n', 'g', 'o', 'i', 'n', 'g', 0x01, 0x00 };
	static const uint8_t lq1[] = { 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0x27, 0x10, 0x00 };
	struct describe_transactions_req d;
	struct list_transactions_req l;

	arena_init(&A, 0);
	T_EQ(dec(&kc_describe_transactions_req, 0, 0, dq, sizeof(dq), &d), 0);
	T_EQ(d.transactional_ids_n, 2);
	if (d.transactional_ids_n == 2)
		T_CHECK(kc_str_eq(d.transactional_ids[1], "bc"));
	T_EQ(dec(&kc_list_transactions_req, 0, 0, lq0, sizeof(lq0), &l), 0);
	T_EQ(l.state_filters_n, 1);
	T_EQ(l.producer_id_filters_n, 0);
	T_EQ(l.duration_filter, -1);
	T_EQ(dec(&kc_list_transactions_req, 1, 0, lq1, sizeof(lq1), &l), 0);
	T_EQ(l.state_filters_n, 0);
	T_EQ(l.producer_id_filters_n, 1);
	if (l.producer_id_filters_n == 1)
		T_EQ(l.producer_id_filters[0], 9);
	T_EQ(l.duration_filter, 10000);

	int32_t parts[1] = { 4 };
	struct describe_transactions_resp_topic_data td = { S("t"), parts, 1 };
	struct describe_transactions_resp_transaction_state ts = {
		0, S("a"), S("Ongoing"), 60000, 1700000000000, 7, 1, &td, 1,
	};
	struct describe_transactions_resp drs;
	static const uint8_t dr[] = {
		0, 0, 0, 0, 0x02, 0x00, 0x00, 0x02, 'a', 0x08, 'O', 'n', 'g', 'o', 'i', 'n', 'g',
		0x00, 0x00, 0xea, 0x60, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
		0, 0, 0, 0, 0, 0, 0, 7, 0x00, 0x01, 0x02, 0x02, 't', 0x02, 0, 0, 0, 4, 0x00, 0x00, 0x00,
	};
	kc_defaults(&kc_describe_transactions_resp, &drs);
	drs.transaction_states = &ts;
	drs.transaction_states_n = 1;
	enc_eq(&kc_describe_transactions_resp, 0, 0, &drs, dr, sizeof(dr));

	struct list_transactions_resp_transaction_state ls = { S("a"), 7, S("Empty") };
	struct kc_str unknown = S("Nope");
	struct list_transactions_resp lrs;
	static const uint8_t lr[] = {
		0, 0, 0, 0, 0x00, 0x00, 0x02, 0x05, 'N', 'o', 'p', 'e',
		0x02, 0x02, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0x06, 'E', 'm', 'p', 't', 'y', 0x00, 0x00,
	};
	kc_defaults(&kc_list_transactions_resp, &lrs);
	lrs.unknown_state_filters = &unknown;
	lrs.unknown_state_filters_n = 1;
	lrs.transaction_states = &ls;
	lrs.transaction_states_n = 1;
	enc_eq(&kc_list_transactions_resp, 0, 0, &lrs, lr, sizeof(lr));
	enc_eq(&kc_list_transactions_resp, 1, 0, &lrs, lr, sizeof(lr));
	arena_free(&A);
}

int main(void)
{
	T_RUN(test_api_rows);
	T_RUN(test_add_partitions);
	T_RUN(test_add_offsets_and_end);
	T_RUN(test_txn_offset_commit);
	T_RUN(test_describe_and_list);
	return t_done();
}
