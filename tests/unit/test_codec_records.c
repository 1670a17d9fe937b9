/*
 * test_codec_records.c - DeleteRecords (key 21) in the Kafka codec, against
 * Apache Kafka's DeleteRecordsRequest.json and DeleteRecordsResponse.json:
 * versions 0-2, flexible from 2; v1 is v0 on the wire (the response's
 * throttle comes first in every version).
 *
 *  - the API table row;
 *  - round trips at every version: encode, decode, compare field by field,
 *    re-encode to the same bytes; every strict prefix fails with SL_E_SHORT;
 *  - request bodies written out byte by byte at v0, v1 and v2 (one with an
 *    unknown tagged field, which is skipped), decoded and checked;
 *  - responses encoded and compared with bytes written out at v0, v1, v2;
 *  - every strict prefix of every hand-written request fails cleanly.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kafka/codec.h"
#include "kafka/msgs.h"

static struct arena A;

#define S(s) kc_str_of((s), (int32_t)strlen(s))
#define STR_EQ(k, s) T_CHECK(kc_str_eq((k), (s)))

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %s (%zu):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

static int flexible(int ver)
{
	return ver >= kc_api_find(21)->flex_min;
}

/* Encode, decode into the arena, re-encode; every prefix must be short. */
static void *rt(const struct kc_struct *s, int ver, const void *in)
{
	int flex = flexible(ver);
	void *out = arena_alloc(&A, s->size), *scratch = arena_alloc(&A, s->size);
	struct sl_wr w, w2;
	struct sl_rd r;
	uint8_t *bytes;

	SL_ASSERT(out && scratch);
	wr_init(&w, 0);
	wr_init(&w2, 0);
	T_EQ(kc_encode(s, (int16_t)ver, flex, in, &w), 0);
	bytes = arena_alloc(&A, w.len + 1);
	SL_ASSERT(bytes);
	memcpy(bytes, w.p, w.len);
	rd_init(&r, bytes, w.len);
	T_EQ(kc_decode(s, (int16_t)ver, flex, &r, &A, out), 0);
	T_EQ(rd_left(&r), 0);
	T_EQ(kc_encode(s, (int16_t)ver, flex, out, &w2), 0);
	if (w.len != w2.len || memcmp(w.p, w2.p, w.len) != 0) {
		t_failed_checks++;
		fprintf(stderr, "  %s v%d: re-encoding differs\n", s->name, ver);
	}
	for (size_t cut = 0; cut < w.len; cut++) {
		rd_init(&r, w.p, cut);
		int rc = kc_decode(s, (int16_t)ver, flex, &r, &A, scratch);
		if (rc != SL_E_SHORT) {
			t_failed_checks++;
			fprintf(stderr, "  %s v%d: prefix of %zu/%zu bytes gave %d\n", s->name, ver, cut,
				w.len, rc);
			break;
		}
	}
	wr_free(&w);
	wr_free(&w2);
	return out;
}

static int dec(int ver, const uint8_t *p, size_t n, struct delete_records_req *out)
{
	struct sl_rd r;

	rd_init(&r, p, n);
	int rc = kc_decode(&kc_delete_records_req, (int16_t)ver, flexible(ver), &r, &A, out);
	if (rc == 0)
		T_EQ(rd_left(&r), 0);
	return rc;
}

static void enc_eq(int ver, const struct delete_records_resp *in, const uint8_t *want, size_t n)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(kc_encode(&kc_delete_records_resp, (int16_t)ver, flexible(ver), in, &w), 0);
	if (w.len != n || memcmp(w.p, want, n) != 0) {
		t_failed_checks++;
		fprintf(stderr, "  DeleteRecords response v%d encoding differs\n", ver);
		hexdump("got", w.p, w.len);
		hexdump("want", want, n);
	}
	wr_free(&w);
}

static void test_api_row(void)
{
	const struct kc_api *a = kc_api_find(21);

	T_CHECK(a != NULL);
	if (!a)
		return;
	T_STR_EQ(a->name, "DeleteRecords");
	T_STR_EQ(kc_api_name(21), "DeleteRecords");
	T_EQ(a->vmin, 0);
	T_EQ(a->vmax, 2);
	T_EQ(a->flex_min, 2);
	T_CHECK(a->req == &kc_delete_records_req);
	T_CHECK(a->resp == &kc_delete_records_resp);
}

static void test_roundtrip(void)
{
	struct delete_records_req_delete_records_partition qp[2] = { { 0, 5 }, { 7, -1 } };
	struct delete_records_req_delete_records_topic qt[2] = {
		{ S("orders"), qp, 2 },
		{ S("x"), NULL, 0 },
	};
	struct delete_records_req rq;
	struct delete_records_resp_delete_records_partition_result sp[2] = {
		{ 0, 5, 0 },
		{ 7, -1, 1 },
	};
	struct delete_records_resp_delete_records_topic_result st[1] = { { S("orders"), sp, 2 } };
	struct delete_records_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_delete_records_req, &rq);
	kc_defaults(&kc_delete_records_resp, &rs);
	T_EQ(rq.topics_n, 0);
	T_EQ(rq.timeout_ms, 0);
	T_EQ(rs.throttle_time_ms, 0);
	rq.topics = qt;
	rq.topics_n = 2;
	rq.timeout_ms = 30000;
	rs.throttle_time_ms = 12;
	rs.topics = st;
	rs.topics_n = 1;
	for (int v = 0; v <= 2; v++) {
		struct delete_records_req *d = rt(&kc_delete_records_req, v, &rq);
		struct delete_records_resp *e = rt(&kc_delete_records_resp, v, &rs);

		T_EQ(d->topics_n, 2);
		STR_EQ(d->topics[0].name, "orders");
		T_EQ(d->topics[0].partitions_n, 2);
		T_EQ(d->topics[0].partitions[0].partition_index, 0);
		T_EQ(d->topics[0].partitions[0].offset, 5);
		T_EQ(d->topics[0].partitions[1].partition_index, 7);
		T_EQ(d->topics[0].partitions[1].offset, -1);
		STR_EQ(d->topics[1].name, "x");
		T_EQ(d->topics[1].partitions_n, 0);
		T_EQ(d->timeout_ms, 30000);
		T_EQ(e->throttle_time_ms, 12);		/* there from v0 */
		T_EQ(e->topics_n, 1);
		STR_EQ(e->topics[0].name, "orders");
		T_EQ(e->topics[0].partitions_n, 2);
		T_EQ(e->topics[0].partitions[0].low_watermark, 5);
		T_EQ(e->topics[0].partitions[1].partition_index, 7);
		T_EQ(e->topics[0].partitions[1].low_watermark, -1);
		T_EQ(e->topics[0].partitions[1].error_code, 1);
	}
	arena_free(&A);
}

/* v0 and v1: topics [ name, partitions [ partition, offset ] ], timeout_ms. */
static const uint8_t dr0[] = {
	0x00, 0x00, 0x00, 0x01,				/* topics: 1 */
	0x00, 0x01, 't',				/* name */
	0x00, 0x00, 0x00, 0x02,				/* partitions: 2 */
	0x00, 0x00, 0x00, 0x00,				/* partition_index 0 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,	/* offset 5 */
	0x00, 0x00, 0x00, 0x03,				/* partition_index 3 */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* offset -1: the high watermark */
	0x00, 0x00, 0x75, 0x30,				/* timeout_ms 30000 */
};

/* v2: the same in compact form, a tag section after each struct. */
static const uint8_t dr2[] = {
	0x02,						/* topics: 1 (n + 1) */
	0x02, 't',					/* name (len + 1) */
	0x03,						/* partitions: 2 */
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x00,						/* partition tags */
	0x00, 0x00, 0x00, 0x03,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x00,
	0x00,						/* topic tags */
	0x00, 0x00, 0x75, 0x30,				/* timeout_ms */
	0x00,						/* request tags */
};

/* v2 with an unknown tagged field (tag 5, two bytes) at the top level, and no topics. */
static const uint8_t dr2_tag[] = {
	0x01,						/* topics: 0 */
	0x00, 0x00, 0x03, 0xe8,				/* timeout_ms 1000 */
	0x01, 0x05, 0x02, 0xaa, 0xbb,			/* one tag: 5, length 2 */
};

static void check_dr(const struct delete_records_req *rq)
{
	T_EQ(rq->topics_n, 1);
	if (rq->topics_n != 1)
		return;
	STR_EQ(rq->topics[0].name, "t");
	T_EQ(rq->topics[0].partitions_n, 2);
	if (rq->topics[0].partitions_n != 2)
		return;
	T_EQ(rq->topics[0].partitions[0].partition_index, 0);
	T_EQ(rq->topics[0].partitions[0].offset, 5);
	T_EQ(rq->topics[0].partitions[1].partition_index, 3);
	T_EQ(rq->topics[0].partitions[1].offset, -1);
	T_EQ(rq->timeout_ms, 30000);
}

static void test_request_bytes(void)
{
	struct delete_records_req rq;

	arena_init(&A, 0);
	T_EQ(dec(0, dr0, sizeof(dr0), &rq), 0);
	check_dr(&rq);
	T_EQ(dec(1, dr0, sizeof(dr0), &rq), 0);
	check_dr(&rq);
	T_EQ(dec(2, dr2, sizeof(dr2), &rq), 0);
	check_dr(&rq);
	T_EQ(dec(2, dr2_tag, sizeof(dr2_tag), &rq), 0);
	T_EQ(rq.topics_n, 0);
	T_EQ(rq.timeout_ms, 1000);
	/* the classic form is not the compact one, nor the other way round */
	T_CHECK(dec(2, dr0, sizeof(dr0), &rq) != 0);
	T_CHECK(dec(0, dr2, sizeof(dr2), &rq) != 0);
	arena_free(&A);
}

static void test_response_bytes(void)
{
	struct delete_records_resp_delete_records_partition_result sp[2] = {
		{ 0, 5, 0 },
		{ 1, -1, 1 },				/* OFFSET_OUT_OF_RANGE */
	};
	struct delete_records_resp_delete_records_topic_result st = { S("t"), sp, 2 };
	struct delete_records_resp rs;
	static const uint8_t r0[] = {
		0x00, 0x00, 0x00, 0x00,				/* throttle_time_ms */
		0x00, 0x00, 0x00, 0x01,				/* topics: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x02,				/* partitions: 2 */
		0x00, 0x00, 0x00, 0x00,				/* partition_index */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,	/* low_watermark */
		0x00, 0x00,					/* error_code */
		0x00, 0x00, 0x00, 0x01,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x00, 0x01,
	};
	static const uint8_t r2[] = {
		0x00, 0x00, 0x00, 0x00,
		0x02,
		0x02, 't',
		0x03,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
		0x00, 0x00,
		0x00,						/* partition tags */
		0x00, 0x00, 0x00, 0x01,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x00, 0x01,
		0x00,
		0x00,						/* topic tags */
		0x00,						/* response tags */
	};

	kc_defaults(&kc_delete_records_resp, &rs);
	rs.topics = &st;
	rs.topics_n = 1;
	enc_eq(0, &rs, r0, sizeof(r0));
	enc_eq(1, &rs, r0, sizeof(r0));
	enc_eq(2, &rs, r2, sizeof(r2));
}

static void test_truncated(void)
{
	static const struct {
		int ver;
		const uint8_t *p;
		size_t n;
	} v[] = {
		{ 0, dr0, sizeof(dr0) },
		{ 1, dr0, sizeof(dr0) },
		{ 2, dr2, sizeof(dr2) },
		{ 2, dr2_tag, sizeof(dr2_tag) },
	};
	struct delete_records_req out;

	arena_init(&A, 0);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (size_t cut = 0; cut < v[i].n; cut++) {
			/* a copy of exactly cut bytes, so ASan sees any read past it */
			uint8_t *p = malloc(cut ? cut : 1);
			struct sl_rd r;

			SL_ASSERT(p);
			memcpy(p, v[i].p, cut);
			rd_init(&r, p, cut);
			int rc = kc_decode(&kc_delete_records_req, (int16_t)v[i].ver, flexible(v[i].ver),
					   &r, &A, &out);
			if (rc != SL_E_SHORT) {
				t_failed_checks++;
				fprintf(stderr, "  v%d: prefix of %zu/%zu bytes gave %d\n", v[i].ver, cut,
					v[i].n, rc);
			}
			free(p);
		}
	arena_free(&A);
}

int main(void)
{
	T_RUN(test_api_row);
	T_RUN(test_roundtrip);
	T_RUN(test_request_bytes);
	T_RUN(test_response_bytes);
	T_RUN(test_truncated);
	return t_done();
}
