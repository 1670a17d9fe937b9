/*
 * test_codec_producers.c - InitProducerId (key 22, versions 0-4, flexible
 * from 2) and DescribeProducers (key 61, version 0, flexible) in the Kafka
 * codec, against Apache Kafka's InitProducerId{Request,Response}.json and
 * DescribeProducers{Request,Response}.json:
 *
 *  - the API table rows;
 *  - request bodies written out byte by byte, decoded and checked (a null
 *    transactional id, a string one, the v3+ producer id and epoch);
 *  - responses encoded and compared with bytes written out (DescribeProducers'
 *    ProducerEpoch is an int32 there, unlike everywhere else);
 *  - every strict prefix of every hand-written request fails with SL_E_SHORT.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kafka/codec.h"
#include "kafka/msgs.h"

static struct arena A;

#define S(s) kc_str_of((s), (int32_t)strlen(s))

static int dec(const struct kc_struct *s, int ver, int flex, const uint8_t *p, size_t n, void *out)
{
	struct sl_rd r;

	rd_init(&r, p, n);
	int rc = kc_decode(s, (int16_t)ver, flex, &r, &A, out);
	if (rc == 0)
		T_EQ(rd_left(&r), 0);
	return rc;
}

/* Every strict prefix of a request that decodes fails with SL_E_SHORT. */
static void prefixes_short(const struct kc_struct *s, int ver, int flex, const uint8_t *p, size_t n)
{
	void *out = arena_alloc(&A, s->size);

	for (size_t cut = 0; cut < n; cut++)
		T_EQ(dec(s, ver, flex, p, cut, out), SL_E_SHORT);
}

static void enc_eq(const struct kc_struct *s, int ver, int flex, const void *in, const uint8_t *want,
		   size_t n)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(kc_encode(s, (int16_t)ver, flex, in, &w), 0);
	T_EQ(w.len, n);
	T_CHECK(w.len == n && memcmp(w.p, want, n) == 0);
	wr_free(&w);
}

static void test_api_rows(void)
{
	const struct kc_api *a = kc_api_find(22), *d = kc_api_find(61);

	T_CHECK(a && d);
	if (!a || !d)
		return;
	T_STR_EQ(a->name, "InitProducerId");
	T_EQ(a->vmin, 0);
	T_EQ(a->vmax, 4);
	T_EQ(a->flex_min, 2);
	T_STR_EQ(d->name, "DescribeProducers");
	T_EQ(d->vmin, 0);
	T_EQ(d->vmax, 0);
	T_EQ(d->flex_min, 0);
}

static void test_init_producer_id(void)
{
	/* v0: a null transactional id, timeout 60000. */
	static const uint8_t q0[] = { 0xff, 0xff, 0x00, 0x00, 0xea, 0x60 };
	/* v2 (compact): transactional id "tx", timeout 1000, no tags. */
	static const uint8_t q2[] = { 0x03, 't', 'x', 0x00, 0x00, 0x03, 0xe8, 0x00 };
	/* v4: null id, timeout 0, producer id 42, epoch 7, no tags. */
	static const uint8_t q4[] = { 0x00, 0x00, 0x00, 0x00, 0x00,
				      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
				      0x00, 0x07, 0x00 };
	struct init_producer_id_req rq;
	struct init_producer_id_resp rs;

	arena_init(&A, 0);
	T_EQ(dec(&kc_init_producer_id_req, 0, 0, q0, sizeof(q0), &rq), 0);
	T_EQ(rq.transactional_id.len, -1);
	T_EQ(rq.transaction_timeout_ms, 60000);
	T_EQ(rq.producer_id, -1);		/* absent below v3: the default */
	T_EQ(rq.producer_epoch, -1);
	T_EQ(dec(&kc_init_producer_id_req, 2, 1, q2, sizeof(q2), &rq), 0);
	T_CHECK(kc_str_eq(rq.transactional_id, "tx"));
	T_EQ(rq.transaction_timeout_ms, 1000);
	T_EQ(dec(&kc_init_producer_id_req, 4, 1, q4, sizeof(q4), &rq), 0);
	T_EQ(rq.transactional_id.len, -1);
	T_EQ(rq.producer_id, 42);
	T_EQ(rq.producer_epoch, 7);
	prefixes_short(&kc_init_producer_id_req, 0, 0, q0, sizeof(q0));
	prefixes_short(&kc_init_producer_id_req, 2, 1, q2, sizeof(q2));
	prefixes_short(&kc_init_producer_id_req, 4, 1, q4, sizeof(q4));

	static const uint8_t r1[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
				      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe9, 0x00, 0x00 };
	static const uint8_t r3[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x2f,
				      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
	kc_defaults(&kc_init_producer_id_resp, &rs);
	rs.producer_id = 1001;
	rs.producer_epoch = 0;
	enc_eq(&kc_init_producer_id_resp, 1, 0, &rs, r1, sizeof(r1));
	kc_defaults(&kc_init_producer_id_resp, &rs);
	rs.error_code = 47;
	rs.producer_epoch = -1;
	enc_eq(&kc_init_producer_id_resp, 3, 1, &rs, r3, sizeof(r3));
	arena_free(&A);
}

static void test_describe_producers(void)
{
	/* Topic "t", partitions 0 and 3, no tags. */
	static const uint8_t q[] = { 0x02, 0x02, 't', 0x03, 0x00, 0x00, 0x00, 0x00,
				     0x00, 0x00, 0x00, 0x03, 0x00, 0x00 };
	struct describe_producers_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_describe_producers_req, 0, 1, q, sizeof(q), &rq), 0);
	T_EQ(rq.topics_n, 1);
	if (rq.topics_n == 1) {
		T_CHECK(kc_str_eq(rq.topics[0].name, "t"));
		T_EQ(rq.topics[0].partition_indexes_n, 2);
		if (rq.topics[0].partition_indexes_n == 2)
			T_EQ(rq.topics[0].partition_indexes[1], 3);
	}
	prefixes_short(&kc_describe_producers_req, 0, 1, q, sizeof(q));

	struct describe_producers_resp_producer_state ps = { 5, 2, 9, 1700000000000, -1, -1 };
	struct describe_producers_resp_partition_response pr[2] = {
		{ 0, 0, KC_NULL_STR, &ps, 1 },
		{ 3, 3, S("gone"), NULL, 0 },
	};
	struct describe_producers_resp_topic_response tr = { S("t"), pr, 2 };
	struct describe_producers_resp rs;
	static const uint8_t r[] = {
		0x00, 0x00, 0x00, 0x00,				/* throttle */
		0x02, 0x02, 't', 0x03,				/* 1 topic "t", 2 partitions */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* index 0, error 0, null message */
		0x02,						/* 1 producer */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,	/* id */
		0x00, 0x00, 0x00, 0x02,				/* epoch: int32 */
		0x00, 0x00, 0x00, 0x09,				/* last sequence */
		0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,	/* last timestamp */
		0xff, 0xff, 0xff, 0xff,				/* coordinator epoch */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* txn start offset */
		0x00, 0x00,					/* producer, partition tags */
		0x00, 0x00, 0x00, 0x03, 0x00, 0x03, 0x05, 'g', 'o', 'n', 'e', 0x01, 0x00,
		0x00, 0x00,					/* topic, response tags */
	};
	kc_defaults(&kc_describe_producers_resp, &rs);
	rs.topics = &tr;
	rs.topics_n = 1;
	enc_eq(&kc_describe_producers_resp, 0, 1, &rs, r, sizeof(r));
	arena_free(&A);
}

int main(void)
{
	T_RUN(test_api_rows);
	T_RUN(test_init_producer_id);
	T_RUN(test_describe_producers);
	return t_done();
}
