/*
 * test_codec_groups.c - the consumer-group APIs of the Kafka codec
 * (OffsetCommit, OffsetFetch, JoinGroup, Heartbeat, LeaveGroup, SyncGroup,
 * DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) against their
 * Apache Kafka 3.7 JSON definitions.
 *
 *  - The API table: each key's version range and first flexible version.
 *  - Round trips at every version of each API (so at the first flexible,
 *    last non-flexible and highest ones): a struct filled with non-default
 *    values is encoded, decoded and compared field by field; the expected
 *    value of each field is written here from the JSON "versions" and
 *    "default", not read from the descriptors, so a wrong version range or
 *    default in msgs.h fails.  Every strict prefix of each encoding must
 *    fail to decode with SL_E_SHORT.
 *  - Hand vectors: request bodies written out byte by byte from the JSON
 *    field order and the wire rules, decoded and checked field by field;
 *    a few responses encoded and compared with bytes.
 *  - Truncation: every strict prefix of every hand-written request fails
 *    cleanly.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kafka/codec.h"
#include "kafka/msgs.h"

static struct arena A;

#define S(s) kc_str_of((s), (int32_t)strlen(s))
#define STR_EQ(k, s) T_CHECK(kc_str_eq((k), (s)))
#define STR_NULL(k) T_EQ((k).len, -1)
/* The string s when cond holds, else null (a field absent from the version). */
#define STR_IF(k, cond, s) do { if (cond) STR_EQ(k, s); else STR_NULL(k); } while (0)
#define BYTES_EQ(b, s, n) do { T_EQ((b).len, (n)); \
	if ((b).len == (n) && (n) > 0) T_MEMEQ((b).p, (s), (n)); } while (0)

static struct kc_bytes B(const char *p, int32_t n)
{
	struct kc_bytes b = { (const uint8_t *)p, n };
	return b;
}

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %s (%zu):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

static int flexible(int16_t key, int ver)
{
	return ver >= kc_api_find(key)->flex_min;
}

/*
 * Encode in as s at ver, decode it into a fresh struct from A and return
 * that.  The decoding must consume every byte, re-encode to the same bytes,
 * and every strict prefix of the bytes must fail with SL_E_SHORT.
 */
static void *rt(int16_t key, const struct kc_struct *s, int ver, const void *in)
{
	int flex = flexible(key, ver);
	void *out = arena_alloc(&A, s->size), *scratch = arena_alloc(&A, s->size);
	struct sl_wr w, w2;
	struct sl_rd r;
	uint8_t *bytes;

	SL_ASSERT(out && scratch);
	wr_init(&w, 0);
	wr_init(&w2, 0);
	T_EQ(kc_encode(s, (int16_t)ver, flex, in, &w), 0);
	/* the decoded strings borrow from the bytes: keep a copy in the arena */
	bytes = arena_alloc(&A, w.len + 1);
	SL_ASSERT(bytes);
	if (w.len)
		memcpy(bytes, w.p, w.len);
	rd_init(&r, bytes, w.len);
	T_EQ(kc_decode(s, (int16_t)ver, flex, &r, &A, out), 0);
	T_EQ(rd_left(&r), 0);
	T_EQ(kc_encode(s, (int16_t)ver, flex, out, &w2), 0);
	if (w.len != w2.len || (w.len && memcmp(w.p, w2.p, w.len) != 0)) {
		t_failed_checks++;
		fprintf(stderr, "  %s v%d: re-encoding differs\n", s->name, ver);
		hexdump("first", w.p, w.len);
		hexdump("second", w2.p, w2.len);
	}
	for (size_t cut = 0; cut < w.len; cut++) {
		int rc;

		rd_init(&r, w.p, cut);
		rc = kc_decode(s, (int16_t)ver, flex, &r, &A, scratch);
		if (rc != SL_E_SHORT) {
			t_failed_checks++;
			fprintf(stderr, "  %s v%d: prefix of %zu/%zu bytes gave %d\n",
				s->name, ver, cut, w.len, rc);
			break;
		}
	}
	wr_free(&w);
	wr_free(&w2);
	return out;
}

/* Decode a hand-written body; it must be consumed exactly when rc is 0. */
static int dec(const struct kc_struct *s, int ver, int flex, const uint8_t *p, size_t n, void *out)
{
	struct sl_rd r;
	int rc;

	rd_init(&r, p, n);
	rc = kc_decode(s, (int16_t)ver, flex, &r, &A, out);
	if (rc == 0)
		T_EQ(rd_left(&r), 0);
	return rc;
}

static void enc_eq(const struct kc_struct *s, int ver, int flex, const void *in,
		   const uint8_t *want, size_t n)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(kc_encode(s, (int16_t)ver, flex, in, &w), 0);
	if (w.len != n || (n && memcmp(w.p, want, n) != 0)) {
		t_failed_checks++;
		fprintf(stderr, "  %s v%d encoding differs\n", s->name, ver);
		hexdump("got", w.p, w.len);
		hexdump("want", want, n);
	}
	wr_free(&w);
}

/* ---- the API table ---- */

static void test_api_rows(void)
{
	static const struct { int16_t key; const char *name; int vmin, vmax, flex; } want[] = {
		{ 8,  "OffsetCommit",   0, 8, 8 },
		{ 9,  "OffsetFetch",    0, 8, 6 },
		{ 11, "JoinGroup",      0, 9, 6 },
		{ 12, "Heartbeat",      0, 4, 4 },
		{ 13, "LeaveGroup",     0, 5, 4 },
		{ 14, "SyncGroup",      0, 5, 4 },
		{ 15, "DescribeGroups", 0, 5, 5 },
		{ 16, "ListGroups",     0, 4, 3 },
		{ 42, "DeleteGroups",   0, 2, 2 },
		{ 47, "OffsetDelete",   0, 0, -1 },	/* never flexible */
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct kc_api *a = kc_api_find(want[i].key);

		T_CHECK(a != NULL);
		if (!a)
			continue;
		T_CHECK(strcmp(a->name, want[i].name) == 0);
		T_CHECK(strcmp(kc_api_name(want[i].key), want[i].name) == 0);
		T_EQ(a->vmin, want[i].vmin);
		T_EQ(a->vmax, want[i].vmax);
		if (want[i].flex < 0)
			T_CHECK(a->flex_min > a->vmax);
		else
			T_EQ(a->flex_min, want[i].flex);
	}
}

/* ---- round trips at every version ---- */

static void test_offset_commit_rt(void)
{
	struct offset_commit_req_offset_commit_request_partition rp[2];
	struct offset_commit_req_offset_commit_request_topic rt_[1];
	struct offset_commit_req rq;
	struct offset_commit_resp_offset_commit_response_partition sp[2];
	struct offset_commit_resp_offset_commit_response_topic st[1];
	struct offset_commit_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_offset_commit_req, &rq);
	rq.group_id = S("grp");
	rq.generation_id_or_member_epoch = 7;
	rq.member_id = S("mem");
	rq.group_instance_id = S("inst");
	rq.retention_time_ms = 86400000;
	rt_[0].name = S("t1");
	rt_[0].partitions = rp;
	rt_[0].partitions_n = 2;
	rp[0].partition_index = 0;
	rp[0].committed_offset = 100;
	rp[0].committed_leader_epoch = 4;
	rp[0].commit_timestamp = 1700000000000;
	rp[0].committed_metadata = S("meta");
	rp[1].partition_index = 3;
	rp[1].committed_offset = 7;
	rp[1].committed_leader_epoch = 5;
	rp[1].commit_timestamp = 2;
	rp[1].committed_metadata = KC_NULL_STR;	/* nullable in every version */
	rq.topics = rt_;
	rq.topics_n = 1;

	kc_defaults(&kc_offset_commit_resp, &rs);
	rs.throttle_time_ms = 250;
	st[0].name = S("t1");
	st[0].partitions = sp;
	st[0].partitions_n = 2;
	sp[0].partition_index = 0;
	sp[0].error_code = 0;
	sp[1].partition_index = 3;
	sp[1].error_code = 25;
	rs.topics = st;
	rs.topics_n = 1;

	for (int v = 0; v <= 8; v++) {
		struct offset_commit_req *d = rt(8, &kc_offset_commit_req, v, &rq);
		struct offset_commit_resp *e = rt(8, &kc_offset_commit_resp, v, &rs);

		STR_EQ(d->group_id, "grp");
		T_EQ(d->generation_id_or_member_epoch, v >= 1 ? 7 : -1);
		STR_IF(d->member_id, v >= 1, "mem");
		STR_IF(d->group_instance_id, v >= 7, "inst");
		T_EQ(d->retention_time_ms, v >= 2 && v <= 4 ? 86400000 : -1);
		T_EQ(d->topics_n, 1);
		STR_EQ(d->topics[0].name, "t1");
		T_EQ(d->topics[0].partitions_n, 2);
		T_EQ(d->topics[0].partitions[0].partition_index, 0);
		T_EQ(d->topics[0].partitions[0].committed_offset, 100);
		T_EQ(d->topics[0].partitions[0].committed_leader_epoch, v >= 6 ? 4 : -1);
		T_EQ(d->topics[0].partitions[0].commit_timestamp, v == 1 ? 1700000000000 : -1);
		STR_EQ(d->topics[0].partitions[0].committed_metadata, "meta");
		T_EQ(d->topics[0].partitions[1].partition_index, 3);
		T_EQ(d->topics[0].partitions[1].committed_offset, 7);
		STR_NULL(d->topics[0].partitions[1].committed_metadata);

		T_EQ(e->throttle_time_ms, v >= 3 ? 250 : 0);
		T_EQ(e->topics_n, 1);
		STR_EQ(e->topics[0].name, "t1");
		T_EQ(e->topics[0].partitions_n, 2);
		T_EQ(e->topics[0].partitions[1].partition_index, 3);
		T_EQ(e->topics[0].partitions[1].error_code, 25);
	}
	arena_free(&A);
}

static void test_offset_fetch_rt(void)
{
	int32_t idx[2] = { 0, 2 }, idx8[1] = { 1 };
	struct offset_fetch_req_offset_fetch_request_topic t7[1];
	struct offset_fetch_req_offset_fetch_request_topics t8[1];
	struct offset_fetch_req_offset_fetch_request_group g8[2];
	struct offset_fetch_req rq;
	struct offset_fetch_resp_offset_fetch_response_partition p7[1];
	struct offset_fetch_resp_offset_fetch_response_topic rt7[1];
	struct offset_fetch_resp_offset_fetch_response_partitions p8[1];
	struct offset_fetch_resp_offset_fetch_response_topics rt8[1];
	struct offset_fetch_resp_offset_fetch_response_group rg8[1];
	struct offset_fetch_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_offset_fetch_req, &rq);
	rq.group_id = S("grp");
	t7[0].name = S("t");
	t7[0].partition_indexes = idx;
	t7[0].partition_indexes_n = 2;
	rq.topics = t7;
	rq.topics_n = 1;
	t8[0].name = S("u");
	t8[0].partition_indexes = idx8;
	t8[0].partition_indexes_n = 1;
	g8[0].group_id = S("g1");
	g8[0].topics = t8;
	g8[0].topics_n = 1;
	g8[1].group_id = S("g2");
	g8[1].topics = NULL;
	g8[1].topics_n = -1;			/* all topics */
	rq.groups = g8;
	rq.groups_n = 2;
	rq.require_stable = 1;

	kc_defaults(&kc_offset_fetch_resp, &rs);
	rs.throttle_time_ms = 9;
	p7[0].partition_index = 2;
	p7[0].committed_offset = 55;
	p7[0].committed_leader_epoch = 6;
	p7[0].metadata = S("md");
	p7[0].error_code = 3;
	rt7[0].name = S("t");
	rt7[0].partitions = p7;
	rt7[0].partitions_n = 1;
	rs.topics = rt7;
	rs.topics_n = 1;
	rs.error_code = 16;
	p8[0].partition_index = 1;
	p8[0].committed_offset = 9;
	p8[0].committed_leader_epoch = 2;
	p8[0].metadata = KC_NULL_STR;
	p8[0].error_code = 0;
	rt8[0].name = S("u");
	rt8[0].partitions = p8;
	rt8[0].partitions_n = 1;
	rg8[0].group_id = S("g1");
	rg8[0].topics = rt8;
	rg8[0].topics_n = 1;
	rg8[0].error_code = 15;
	rs.groups = rg8;
	rs.groups_n = 1;

	for (int v = 0; v <= 8; v++) {
		struct offset_fetch_req *d = rt(9, &kc_offset_fetch_req, v, &rq);
		struct offset_fetch_resp *e = rt(9, &kc_offset_fetch_resp, v, &rs);

		T_EQ(d->require_stable, v >= 7);
		T_EQ(e->throttle_time_ms, v >= 3 ? 9 : 0);
		if (v <= 7) {
			STR_EQ(d->group_id, "grp");
			T_EQ(d->topics_n, 1);
			STR_EQ(d->topics[0].name, "t");
			T_EQ(d->topics[0].partition_indexes_n, 2);
			T_EQ(d->topics[0].partition_indexes[1], 2);
			T_EQ(d->groups_n, 0);

			T_EQ(e->topics_n, 1);
			STR_EQ(e->topics[0].name, "t");
			T_EQ(e->topics[0].partitions_n, 1);
			T_EQ(e->topics[0].partitions[0].partition_index, 2);
			T_EQ(e->topics[0].partitions[0].committed_offset, 55);
			T_EQ(e->topics[0].partitions[0].committed_leader_epoch, v >= 5 ? 6 : -1);
			STR_EQ(e->topics[0].partitions[0].metadata, "md");
			T_EQ(e->topics[0].partitions[0].error_code, 3);
			T_EQ(e->error_code, v >= 2 ? 16 : 0);
			T_EQ(e->groups_n, 0);
			continue;
		}
		STR_NULL(d->group_id);
		T_EQ(d->topics_n, 0);
		T_EQ(d->groups_n, 2);
		STR_EQ(d->groups[0].group_id, "g1");
		T_EQ(d->groups[0].topics_n, 1);
		STR_EQ(d->groups[0].topics[0].name, "u");
		T_EQ(d->groups[0].topics[0].partition_indexes_n, 1);
		T_EQ(d->groups[0].topics[0].partition_indexes[0], 1);
		STR_EQ(d->groups[1].group_id, "g2");
		T_EQ(d->groups[1].topics_n, -1);

		T_EQ(e->topics_n, 0);
		T_EQ(e->error_code, 0);
		T_EQ(e->groups_n, 1);
		STR_EQ(e->groups[0].group_id, "g1");
		T_EQ(e->groups[0].error_code, 15);
		T_EQ(e->groups[0].topics_n, 1);
		STR_EQ(e->groups[0].topics[0].name, "u");
		T_EQ(e->groups[0].topics[0].partitions[0].partition_index, 1);
		T_EQ(e->groups[0].topics[0].partitions[0].committed_offset, 9);
		T_EQ(e->groups[0].topics[0].partitions[0].committed_leader_epoch, 2);
		STR_NULL(e->groups[0].topics[0].partitions[0].metadata);
	}
	arena_free(&A);
}

static void test_join_group_rt(void)
{
	struct join_group_req_join_group_request_protocol pr[2];
	struct join_group_req rq;
	struct join_group_resp_join_group_response_member mb[2];
	struct join_group_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_join_group_req, &rq);
	rq.group_id = S("grp");
	rq.session_timeout_ms = 45000;
	rq.rebalance_timeout_ms = 300000;
	rq.member_id = S("m");
	rq.group_instance_id = S("i");
	rq.protocol_type = S("consumer");
	pr[0].name = S("range");
	pr[0].metadata = B("\x00\x01", 2);
	pr[1].name = S("roundrobin");
	pr[1].metadata = B("", 0);
	rq.protocols = pr;
	rq.protocols_n = 2;
	rq.reason = S("why");

	kc_defaults(&kc_join_group_resp, &rs);
	rs.throttle_time_ms = 11;
	rs.error_code = 79;
	rs.generation_id = 3;
	rs.protocol_type = S("consumer");
	rs.protocol_name = S("range");
	rs.leader = S("m");
	rs.skip_assignment = 1;
	rs.member_id = S("n");
	mb[0].member_id = S("m");
	mb[0].group_instance_id = S("i");
	mb[0].metadata = B("MD", 2);
	mb[1].member_id = S("n");
	mb[1].group_instance_id = KC_NULL_STR;
	mb[1].metadata = B("", 0);
	rs.members = mb;
	rs.members_n = 2;

	for (int v = 0; v <= 9; v++) {
		struct join_group_req *d = rt(11, &kc_join_group_req, v, &rq);
		struct join_group_resp *e = rt(11, &kc_join_group_resp, v, &rs);

		STR_EQ(d->group_id, "grp");
		T_EQ(d->session_timeout_ms, 45000);
		T_EQ(d->rebalance_timeout_ms, v >= 1 ? 300000 : -1);
		STR_EQ(d->member_id, "m");
		STR_IF(d->group_instance_id, v >= 5, "i");
		STR_EQ(d->protocol_type, "consumer");
		T_EQ(d->protocols_n, 2);
		STR_EQ(d->protocols[0].name, "range");
		BYTES_EQ(d->protocols[0].metadata, "\x00\x01", 2);
		STR_EQ(d->protocols[1].name, "roundrobin");
		BYTES_EQ(d->protocols[1].metadata, "", 0);
		STR_IF(d->reason, v >= 8, "why");

		T_EQ(e->throttle_time_ms, v >= 2 ? 11 : 0);
		T_EQ(e->error_code, 79);
		T_EQ(e->generation_id, 3);
		STR_IF(e->protocol_type, v >= 7, "consumer");
		STR_EQ(e->protocol_name, "range");
		STR_EQ(e->leader, "m");
		T_EQ(e->skip_assignment, v >= 9);
		STR_EQ(e->member_id, "n");
		T_EQ(e->members_n, 2);
		STR_EQ(e->members[0].member_id, "m");
		STR_IF(e->members[0].group_instance_id, v >= 5, "i");
		BYTES_EQ(e->members[0].metadata, "MD", 2);
		STR_EQ(e->members[1].member_id, "n");
		STR_NULL(e->members[1].group_instance_id);
		BYTES_EQ(e->members[1].metadata, "", 0);
	}
	arena_free(&A);
}

static void test_heartbeat_rt(void)
{
	struct heartbeat_req rq;
	struct heartbeat_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_heartbeat_req, &rq);
	rq.group_id = S("grp");
	rq.generation_id = 3;
	rq.member_id = S("m");
	rq.group_instance_id = S("i");
	kc_defaults(&kc_heartbeat_resp, &rs);
	rs.throttle_time_ms = 5;
	rs.error_code = 27;
	for (int v = 0; v <= 4; v++) {
		struct heartbeat_req *d = rt(12, &kc_heartbeat_req, v, &rq);
		struct heartbeat_resp *e = rt(12, &kc_heartbeat_resp, v, &rs);

		STR_EQ(d->group_id, "grp");
		T_EQ(d->generation_id, 3);
		STR_EQ(d->member_id, "m");
		STR_IF(d->group_instance_id, v >= 3, "i");
		T_EQ(e->throttle_time_ms, v >= 1 ? 5 : 0);
		T_EQ(e->error_code, 27);
	}
	arena_free(&A);
}

static void test_leave_group_rt(void)
{
	struct leave_group_req_member_identity mi[2];
	struct leave_group_req rq;
	struct leave_group_resp_member_response mr[2];
	struct leave_group_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_leave_group_req, &rq);
	rq.group_id = S("g");
	rq.member_id = S("m0");
	mi[0].member_id = S("m1");
	mi[0].group_instance_id = S("i1");
	mi[0].reason = S("r1");
	mi[1].member_id = S("m2");
	mi[1].group_instance_id = KC_NULL_STR;
	mi[1].reason = KC_NULL_STR;
	rq.members = mi;
	rq.members_n = 2;

	kc_defaults(&kc_leave_group_resp, &rs);
	rs.throttle_time_ms = 5;
	rs.error_code = 25;
	mr[0].member_id = S("m1");
	mr[0].group_instance_id = S("i1");
	mr[0].error_code = 0;
	mr[1].member_id = S("m2");
	mr[1].group_instance_id = KC_NULL_STR;
	mr[1].error_code = 25;
	rs.members = mr;
	rs.members_n = 2;

	for (int v = 0; v <= 5; v++) {
		struct leave_group_req *d = rt(13, &kc_leave_group_req, v, &rq);
		struct leave_group_resp *e = rt(13, &kc_leave_group_resp, v, &rs);

		STR_EQ(d->group_id, "g");
		STR_IF(d->member_id, v <= 2, "m0");
		T_EQ(d->members_n, v >= 3 ? 2 : 0);
		if (v >= 3) {
			STR_EQ(d->members[0].member_id, "m1");
			STR_EQ(d->members[0].group_instance_id, "i1");
			STR_IF(d->members[0].reason, v >= 5, "r1");
			STR_EQ(d->members[1].member_id, "m2");
			STR_NULL(d->members[1].group_instance_id);
			STR_NULL(d->members[1].reason);
		}

		T_EQ(e->throttle_time_ms, v >= 1 ? 5 : 0);
		T_EQ(e->error_code, 25);
		T_EQ(e->members_n, v >= 3 ? 2 : 0);
		if (v >= 3) {
			STR_EQ(e->members[0].member_id, "m1");
			STR_EQ(e->members[0].group_instance_id, "i1");
			T_EQ(e->members[0].error_code, 0);
			STR_EQ(e->members[1].member_id, "m2");
			STR_NULL(e->members[1].group_instance_id);
			T_EQ(e->members[1].error_code, 25);
		}
	}
	arena_free(&A);
}

static void test_sync_group_rt(void)
{
	struct sync_group_req_sync_group_request_assignment as[2];
	struct sync_group_req rq;
	struct sync_group_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_sync_group_req, &rq);
	rq.group_id = S("grp");
	rq.generation_id = 4;
	rq.member_id = S("m1");
	rq.group_instance_id = S("i");
	rq.protocol_type = S("consumer");
	rq.protocol_name = S("range");
	as[0].member_id = S("m1");
	as[0].assignment = B("\x00\x01\x02", 3);
	as[1].member_id = S("m2");
	as[1].assignment = B("", 0);
	rq.assignments = as;
	rq.assignments_n = 2;

	kc_defaults(&kc_sync_group_resp, &rs);
	rs.throttle_time_ms = 2;
	rs.error_code = 22;
	rs.protocol_type = S("consumer");
	rs.protocol_name = S("range");
	rs.assignment = B("ASSIGN", 6);

	for (int v = 0; v <= 5; v++) {
		struct sync_group_req *d = rt(14, &kc_sync_group_req, v, &rq);
		struct sync_group_resp *e = rt(14, &kc_sync_group_resp, v, &rs);

		STR_EQ(d->group_id, "grp");
		T_EQ(d->generation_id, 4);
		STR_EQ(d->member_id, "m1");
		STR_IF(d->group_instance_id, v >= 3, "i");
		STR_IF(d->protocol_type, v >= 5, "consumer");
		STR_IF(d->protocol_name, v >= 5, "range");
		T_EQ(d->assignments_n, 2);
		STR_EQ(d->assignments[0].member_id, "m1");
		BYTES_EQ(d->assignments[0].assignment, "\x00\x01\x02", 3);
		STR_EQ(d->assignments[1].member_id, "m2");
		BYTES_EQ(d->assignments[1].assignment, "", 0);

		T_EQ(e->throttle_time_ms, v >= 1 ? 2 : 0);
		T_EQ(e->error_code, 22);
		STR_IF(e->protocol_type, v >= 5, "consumer");
		STR_IF(e->protocol_name, v >= 5, "range");
		BYTES_EQ(e->assignment, "ASSIGN", 6);
	}
	arena_free(&A);
}

static void test_describe_groups_rt(void)
{
	struct kc_str names[2] = { S("a"), S("bc") };
	struct describe_groups_req rq;
	struct describe_groups_resp_described_group_member mb[1];
	struct describe_groups_resp_described_group gr[2];
	struct describe_groups_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_describe_groups_req, &rq);
	rq.groups = names;
	rq.groups_n = 2;
	rq.include_authorized_operations = 1;

	kc_defaults(&kc_describe_groups_resp, &rs);
	kc_defaults(&kc_describe_groups_resp_described_group, &gr[0]);
	kc_defaults(&kc_describe_groups_resp_described_group, &gr[1]);
	rs.throttle_time_ms = 4;
	mb[0].member_id = S("m");
	mb[0].group_instance_id = S("i");
	mb[0].client_id = S("c");
	mb[0].client_host = S("/1.2.3.4");
	mb[0].member_metadata = B("MM", 2);
	mb[0].member_assignment = B("AAA", 3);
	gr[0].error_code = 0;
	gr[0].group_id = S("a");
	gr[0].group_state = S("Stable");
	gr[0].protocol_type = S("consumer");
	gr[0].protocol_data = S("range");
	gr[0].members = mb;
	gr[0].members_n = 1;
	gr[0].authorized_operations = 0x55;
	gr[1].error_code = 69;
	gr[1].group_id = S("bc");
	gr[1].group_state = S("Dead");
	gr[1].protocol_type = S("");
	gr[1].protocol_data = S("");
	rs.groups = gr;
	rs.groups_n = 2;

	for (int v = 0; v <= 5; v++) {
		struct describe_groups_req *d = rt(15, &kc_describe_groups_req, v, &rq);
		struct describe_groups_resp *e = rt(15, &kc_describe_groups_resp, v, &rs);

		T_EQ(d->groups_n, 2);
		STR_EQ(d->groups[0], "a");
		STR_EQ(d->groups[1], "bc");
		T_EQ(d->include_authorized_operations, v >= 3);

		T_EQ(e->throttle_time_ms, v >= 1 ? 4 : 0);
		T_EQ(e->groups_n, 2);
		T_EQ(e->groups[0].error_code, 0);
		STR_EQ(e->groups[0].group_id, "a");
		STR_EQ(e->groups[0].group_state, "Stable");
		STR_EQ(e->groups[0].protocol_type, "consumer");
		STR_EQ(e->groups[0].protocol_data, "range");
		T_EQ(e->groups[0].members_n, 1);
		STR_EQ(e->groups[0].members[0].member_id, "m");
		STR_IF(e->groups[0].members[0].group_instance_id, v >= 4, "i");
		STR_EQ(e->groups[0].members[0].client_id, "c");
		STR_EQ(e->groups[0].members[0].client_host, "/1.2.3.4");
		BYTES_EQ(e->groups[0].members[0].member_metadata, "MM", 2);
		BYTES_EQ(e->groups[0].members[0].member_assignment, "AAA", 3);
		T_EQ(e->groups[0].authorized_operations, v >= 3 ? 0x55 : INT32_MIN);
		T_EQ(e->groups[1].error_code, 69);
		STR_EQ(e->groups[1].group_state, "Dead");
		STR_EQ(e->groups[1].protocol_type, "");
		T_EQ(e->groups[1].members_n, 0);
		T_EQ(e->groups[1].authorized_operations, INT32_MIN);
	}
	arena_free(&A);
}

static void test_list_groups_rt(void)
{
	struct kc_str states[2] = { S("Stable"), S("Empty") };
	struct list_groups_req rq;
	struct list_groups_resp_listed_group lg[2];
	struct list_groups_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_list_groups_req, &rq);
	rq.states_filter = states;
	rq.states_filter_n = 2;
	kc_defaults(&kc_list_groups_resp, &rs);
	rs.throttle_time_ms = 6;
	rs.error_code = 0;
	lg[0].group_id = S("g");
	lg[0].protocol_type = S("consumer");
	lg[0].group_state = S("Stable");
	lg[1].group_id = S("h");
	lg[1].protocol_type = S("");
	lg[1].group_state = S("Empty");
	rs.groups = lg;
	rs.groups_n = 2;

	for (int v = 0; v <= 4; v++) {
		struct list_groups_req *d = rt(16, &kc_list_groups_req, v, &rq);
		struct list_groups_resp *e = rt(16, &kc_list_groups_resp, v, &rs);

		T_EQ(d->states_filter_n, v >= 4 ? 2 : 0);
		if (v >= 4) {
			STR_EQ(d->states_filter[0], "Stable");
			STR_EQ(d->states_filter[1], "Empty");
		}
		T_EQ(e->throttle_time_ms, v >= 1 ? 6 : 0);
		T_EQ(e->error_code, 0);
		T_EQ(e->groups_n, 2);
		STR_EQ(e->groups[0].group_id, "g");
		STR_EQ(e->groups[0].protocol_type, "consumer");
		STR_IF(e->groups[0].group_state, v >= 4, "Stable");
		STR_EQ(e->groups[1].group_id, "h");
		STR_EQ(e->groups[1].protocol_type, "");
		STR_IF(e->groups[1].group_state, v >= 4, "Empty");
	}
	arena_free(&A);
}

static void test_delete_groups_rt(void)
{
	struct kc_str names[2] = { S("a"), S("b") };
	struct delete_groups_req rq;
	struct delete_groups_resp_deletable_group_result res[2];
	struct delete_groups_resp rs;

	arena_init(&A, 0);
	kc_defaults(&kc_delete_groups_req, &rq);
	rq.groups_names = names;
	rq.groups_names_n = 2;
	kc_defaults(&kc_delete_groups_resp, &rs);
	rs.throttle_time_ms = 8;
	res[0].group_id = S("a");
	res[0].error_code = 0;
	res[1].group_id = S("b");
	res[1].error_code = 69;
	rs.results = res;
	rs.results_n = 2;

	for (int v = 0; v <= 2; v++) {
		struct delete_groups_req *d = rt(42, &kc_delete_groups_req, v, &rq);
		struct delete_groups_resp *e = rt(42, &kc_delete_groups_resp, v, &rs);

		T_EQ(d->groups_names_n, 2);
		STR_EQ(d->groups_names[0], "a");
		STR_EQ(d->groups_names[1], "b");
		T_EQ(e->throttle_time_ms, 8);		/* there from v0 */
		T_EQ(e->results_n, 2);
		STR_EQ(e->results[1].group_id, "b");
		T_EQ(e->results[1].error_code, 69);
	}
	arena_free(&A);
}

static void test_offset_delete_rt(void)
{
	struct offset_delete_req_offset_delete_request_partition rp[2] = { { 0 }, { 1 } };
	struct offset_delete_req_offset_delete_request_topic rt_[1];
	struct offset_delete_req rq, *d;
	struct offset_delete_resp_offset_delete_response_partition sp[2] = { { 0, 0 }, { 1, 86 } };
	struct offset_delete_resp_offset_delete_response_topic st[1];
	struct offset_delete_resp rs, *e;

	arena_init(&A, 0);
	kc_defaults(&kc_offset_delete_req, &rq);
	rq.group_id = S("g");
	rt_[0].name = S("t");
	rt_[0].partitions = rp;
	rt_[0].partitions_n = 2;
	rq.topics = rt_;
	rq.topics_n = 1;
	kc_defaults(&kc_offset_delete_resp, &rs);
	rs.error_code = 0;
	rs.throttle_time_ms = 3;
	st[0].name = S("t");
	st[0].partitions = sp;
	st[0].partitions_n = 2;
	rs.topics = st;
	rs.topics_n = 1;

	d = rt(47, &kc_offset_delete_req, 0, &rq);
	e = rt(47, &kc_offset_delete_resp, 0, &rs);
	STR_EQ(d->group_id, "g");
	T_EQ(d->topics_n, 1);
	STR_EQ(d->topics[0].name, "t");
	T_EQ(d->topics[0].partitions_n, 2);
	T_EQ(d->topics[0].partitions[1].partition_index, 1);
	T_EQ(e->error_code, 0);
	T_EQ(e->throttle_time_ms, 3);
	T_EQ(e->topics[0].partitions_n, 2);
	T_EQ(e->topics[0].partitions[1].partition_index, 1);
	T_EQ(e->topics[0].partitions[1].error_code, 86);
	arena_free(&A);
}

/* ---- hand-written requests ---- */

/* OffsetCommit v1: generation, member, and the per-partition timestamp that only v1 has. */
static const uint8_t oc1[] = {
	0x00, 0x01, 'g',			/* group_id */
	0x00, 0x00, 0x00, 0x05,			/* generation_id_or_member_epoch 5 */
	0x00, 0x01, 'm',			/* member_id */
	0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
	0x00, 0x01, 't',
	0x00, 0x00, 0x00, 0x01,			/* partitions: 1 */
	0x00, 0x00, 0x00, 0x02,			/* partition_index 2 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,	/* committed_offset 42 */
	0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,	/* commit_timestamp 1700000000000 */
	0xff, 0xff,				/* committed_metadata null */
};

/* OffsetCommit v2: retention_time_ms replaces the timestamp. */
static const uint8_t oc2[] = {
	0x00, 0x01, 'g',
	0x00, 0x00, 0x00, 0x05,
	0x00, 0x01, 'm',
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* retention_time_ms -1 */
	0x00, 0x00, 0x00, 0x01,
	0x00, 0x01, 't',
	0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
	0x00, 0x02, 'm', 'd',			/* committed_metadata "md" */
};

/* OffsetCommit v8, the first flexible one. */
static const uint8_t oc8[] = {
	0x02, 'g',				/* group_id, compact */
	0x00, 0x00, 0x00, 0x07,			/* generation 7 */
	0x02, 'm',				/* member_id */
	0x00,					/* group_instance_id null */
	0x02,					/* topics: 1 */
	0x02, 't',
	0x02,					/* partitions: 1 */
	0x00, 0x00, 0x00, 0x01,			/* partition_index 1 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64,	/* committed_offset 100 */
	0x00, 0x00, 0x00, 0x03,			/* committed_leader_epoch 3 */
	0x03, 'm', 'd',				/* committed_metadata "md" */
	0x00, 0x00, 0x00,			/* tags: partition, topic, body */
};

static void test_offset_commit_bytes(void)
{
	struct offset_commit_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_offset_commit_req, 1, 0, oc1, sizeof(oc1), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.generation_id_or_member_epoch, 5);
	STR_EQ(rq.member_id, "m");
	STR_NULL(rq.group_instance_id);
	T_EQ(rq.retention_time_ms, -1);
	T_EQ(rq.topics_n, 1);
	STR_EQ(rq.topics[0].name, "t");
	T_EQ(rq.topics[0].partitions_n, 1);
	T_EQ(rq.topics[0].partitions[0].partition_index, 2);
	T_EQ(rq.topics[0].partitions[0].committed_offset, 42);
	T_EQ(rq.topics[0].partitions[0].commit_timestamp, 1700000000000);
	T_EQ(rq.topics[0].partitions[0].committed_leader_epoch, -1);
	STR_NULL(rq.topics[0].partitions[0].committed_metadata);

	T_EQ(dec(&kc_offset_commit_req, 2, 0, oc2, sizeof(oc2), &rq), 0);
	T_EQ(rq.generation_id_or_member_epoch, 5);
	T_EQ(rq.retention_time_ms, -1);
	T_EQ(rq.topics[0].partitions[0].commit_timestamp, -1);
	T_EQ(rq.topics[0].partitions[0].committed_offset, 42);
	STR_EQ(rq.topics[0].partitions[0].committed_metadata, "md");
	/* the v1 bytes are not a v2 body */
	T_CHECK(dec(&kc_offset_commit_req, 2, 0, oc1, sizeof(oc1), &rq) != 0);

	T_EQ(dec(&kc_offset_commit_req, 8, 1, oc8, sizeof(oc8), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.generation_id_or_member_epoch, 7);
	STR_EQ(rq.member_id, "m");
	STR_NULL(rq.group_instance_id);
	T_EQ(rq.retention_time_ms, -1);
	T_EQ(rq.topics[0].partitions[0].partition_index, 1);
	T_EQ(rq.topics[0].partitions[0].committed_offset, 100);
	T_EQ(rq.topics[0].partitions[0].committed_leader_epoch, 3);
	STR_EQ(rq.topics[0].partitions[0].committed_metadata, "md");
	enc_eq(&kc_offset_commit_req, 8, 1, &rq, oc8, sizeof(oc8));
	arena_free(&A);
}

static const uint8_t of1[] = {
	0x00, 0x01, 'g',			/* group_id */
	0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
	0x00, 0x01, 't',
	0x00, 0x00, 0x00, 0x02,			/* partition_indexes: 2 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
};
static const uint8_t of_all[] = { 0x00, 0x01, 'g', 0xff, 0xff, 0xff, 0xff };	/* topics null */

/* v7: flexible, with require_stable. */
static const uint8_t of7[] = {
	0x02, 'g',
	0x02,					/* topics: 1 */
	0x02, 't',
	0x02, 0x00, 0x00, 0x00, 0x04,		/* partition_indexes [4] */
	0x00,					/* topic tags */
	0x01,					/* require_stable */
	0x00,
};

/* v6: the first flexible version, all topics. */
static const uint8_t of6[] = { 0x02, 'g', 0x00, 0x00 };

/* v8: two groups, the second asking for all its topics. */
static const uint8_t of8[] = {
	0x03,					/* groups: 2 */
	0x03, 'g', '1',				/* group_id */
	0x02,					/* topics: 1 */
	0x02, 't',
	0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,	/* partition_indexes [0, 2] */
	0x00,					/* topic tags */
	0x00,					/* group tags */
	0x03, 'g', '2',
	0x00,					/* topics null: all */
	0x00,
	0x00,					/* require_stable false */
	0x00,
};

static void test_offset_fetch_bytes(void)
{
	struct offset_fetch_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_offset_fetch_req, 1, 0, of1, sizeof(of1), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.topics_n, 1);
	STR_EQ(rq.topics[0].name, "t");
	T_EQ(rq.topics[0].partition_indexes_n, 2);
	T_EQ(rq.topics[0].partition_indexes[0], 0);
	T_EQ(rq.topics[0].partition_indexes[1], 3);
	T_EQ(rq.groups_n, 0);
	T_EQ(rq.require_stable, 0);
	/* a null topics array means "all" from v2 on, and is malformed before */
	T_EQ(dec(&kc_offset_fetch_req, 1, 0, of_all, sizeof(of_all), &rq), SL_E_INVALID);
	T_EQ(dec(&kc_offset_fetch_req, 2, 0, of_all, sizeof(of_all), &rq), 0);
	T_EQ(rq.topics_n, -1);

	T_EQ(dec(&kc_offset_fetch_req, 7, 1, of7, sizeof(of7), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.topics_n, 1);
	T_EQ(rq.topics[0].partition_indexes_n, 1);
	T_EQ(rq.topics[0].partition_indexes[0], 4);
	T_EQ(rq.require_stable, 1);
	/* v6 has no require_stable: its byte would be read as the body's tag count */
	T_CHECK(dec(&kc_offset_fetch_req, 6, 1, of7, sizeof(of7), &rq) != 0);
	T_EQ(dec(&kc_offset_fetch_req, 6, 1, of6, sizeof(of6), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.topics_n, -1);
	T_EQ(rq.require_stable, 0);

	T_EQ(dec(&kc_offset_fetch_req, 8, 1, of8, sizeof(of8), &rq), 0);
	STR_NULL(rq.group_id);
	T_EQ(rq.topics_n, 0);
	T_EQ(rq.groups_n, 2);
	STR_EQ(rq.groups[0].group_id, "g1");
	T_EQ(rq.groups[0].topics_n, 1);
	STR_EQ(rq.groups[0].topics[0].name, "t");
	T_EQ(rq.groups[0].topics[0].partition_indexes_n, 2);
	T_EQ(rq.groups[0].topics[0].partition_indexes[0], 0);
	T_EQ(rq.groups[0].topics[0].partition_indexes[1], 2);
	STR_EQ(rq.groups[1].group_id, "g2");
	T_EQ(rq.groups[1].topics_n, -1);
	T_EQ(rq.require_stable, 0);
	enc_eq(&kc_offset_fetch_req, 8, 1, &rq, of8, sizeof(of8));
	arena_free(&A);
}

static const uint8_t jg5[] = {
	0x00, 0x01, 'g',			/* group_id */
	0x00, 0x00, 0x27, 0x10,			/* session_timeout_ms 10000 */
	0x00, 0x04, 0x93, 0xe0,			/* rebalance_timeout_ms 300000 */
	0x00, 0x00,				/* member_id "" */
	0xff, 0xff,				/* group_instance_id null */
	0x00, 0x08, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',
	0x00, 0x00, 0x00, 0x02,			/* protocols: 2 */
	0x00, 0x05, 'r', 'a', 'n', 'g', 'e',
	0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03,	/* metadata, 3 bytes */
	0x00, 0x0a, 'r', 'o', 'u', 'n', 'd', 'r', 'o', 'b', 'i', 'n',
	0x00, 0x00, 0x00, 0x00,			/* metadata, empty */
};

/* JoinGroup v6 as a whole frame: header v2, then the flexible body. */
static const uint8_t jg6_frame[] = {
	0x00, 0x0b, 0x00, 0x06, 0x00, 0x00, 0x00, 0x09,	/* key 11, v6, corr 9 */
	0x00, 0x01, 'c',			/* client_id, int16 len */
	0x00,					/* header tags */
	0x02, 'g',
	0x00, 0x00, 0x27, 0x10,
	0x00, 0x04, 0x93, 0xe0,
	0x04, 'm', '-', '1',			/* member_id "m-1" */
	0x02, 'i',				/* group_instance_id "i" */
	0x09, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',
	0x02,					/* protocols: 1 */
	0x06, 'r', 'a', 'n', 'g', 'e',
	0x03, 0xaa, 0xbb,			/* metadata, compact bytes */
	0x00,					/* protocol tags */
	0x00,					/* body tags */
};
#define JG6_BODY 12				/* offset of the body in jg6_frame */

/* v8 adds reason, nullable. */
static const uint8_t jg8[] = {
	0x02, 'g', 0x00, 0x00, 0x27, 0x10, 0x00, 0x04, 0x93, 0xe0,
	0x01,					/* member_id "" */
	0x00,					/* group_instance_id null */
	0x09, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',
	0x01,					/* protocols: empty */
	0x04, 'b', 'y', 'e',			/* reason "bye" */
	0x00,
};

static void test_join_group_bytes(void)
{
	struct join_group_req rq;
	struct kc_req_hdr h;
	const struct kc_api *api;
	struct sl_rd r;
	uint8_t bad[sizeof(jg5)];

	arena_init(&A, 0);
	T_EQ(dec(&kc_join_group_req, 5, 0, jg5, sizeof(jg5), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.session_timeout_ms, 10000);
	T_EQ(rq.rebalance_timeout_ms, 300000);
	STR_EQ(rq.member_id, "");
	STR_NULL(rq.group_instance_id);
	STR_EQ(rq.protocol_type, "consumer");
	T_EQ(rq.protocols_n, 2);
	STR_EQ(rq.protocols[0].name, "range");
	BYTES_EQ(rq.protocols[0].metadata, "\x01\x02\x03", 3);
	T_CHECK(rq.protocols[0].metadata.p == jg5 + 40);	/* borrowed from the frame */
	STR_EQ(rq.protocols[1].name, "roundrobin");
	BYTES_EQ(rq.protocols[1].metadata, "", 0);
	STR_NULL(rq.reason);
	/* v4 has no group_instance_id: the same bytes misparse */
	T_CHECK(dec(&kc_join_group_req, 4, 0, jg5, sizeof(jg5), &rq) != 0);
	/* a null member_id is malformed */
	memcpy(bad, jg5, sizeof(jg5));
	bad[11] = bad[12] = 0xff;
	T_EQ(dec(&kc_join_group_req, 5, 0, bad, sizeof(bad), &rq), SL_E_INVALID);

	rd_init(&r, jg6_frame, sizeof(jg6_frame));
	T_EQ(kc_decode_request_header(&r, &h, &api), 0);
	T_CHECK(api == kc_api_find(11));
	T_EQ(h.api_version, 6);
	T_EQ(h.correlation_id, 9);
	STR_EQ(h.client_id, "c");
	T_EQ(r.off, JG6_BODY);
	T_EQ(kc_decode(api->req, h.api_version, h.api_version >= api->flex_min, &r, &A, &rq), 0);
	T_EQ(rd_left(&r), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.session_timeout_ms, 10000);
	T_EQ(rq.rebalance_timeout_ms, 300000);
	STR_EQ(rq.member_id, "m-1");
	STR_EQ(rq.group_instance_id, "i");
	STR_EQ(rq.protocol_type, "consumer");
	T_EQ(rq.protocols_n, 1);
	STR_EQ(rq.protocols[0].name, "range");
	BYTES_EQ(rq.protocols[0].metadata, "\xaa\xbb", 2);
	STR_NULL(rq.reason);

	T_EQ(dec(&kc_join_group_req, 8, 1, jg8, sizeof(jg8), &rq), 0);
	STR_EQ(rq.member_id, "");
	STR_NULL(rq.group_instance_id);
	T_EQ(rq.protocols_n, 0);
	STR_EQ(rq.reason, "bye");
	T_EQ(dec(&kc_join_group_req, 9, 1, jg8, sizeof(jg8), &rq), 0);
	STR_EQ(rq.reason, "bye");
	arena_free(&A);
}

static const uint8_t hb3[] = {
	0x00, 0x01, 'g',
	0x00, 0x00, 0x00, 0x02,			/* generation_id 2 */
	0x00, 0x01, 'm',
	0x00, 0x01, 'i',			/* group_instance_id "i" */
};
static const uint8_t hb4[] = {
	0x02, 'g', 0xff, 0xff, 0xff, 0xff,	/* generation_id -1 */
	0x02, 'm',
	0x00,					/* group_instance_id null */
	0x00,
};

static void test_heartbeat_bytes(void)
{
	struct heartbeat_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_heartbeat_req, 3, 0, hb3, sizeof(hb3), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.generation_id, 2);
	STR_EQ(rq.member_id, "m");
	STR_EQ(rq.group_instance_id, "i");
	/* v2 ends after member_id */
	T_EQ(dec(&kc_heartbeat_req, 2, 0, hb3, sizeof(hb3) - 3, &rq), 0);
	STR_NULL(rq.group_instance_id);
	T_EQ(dec(&kc_heartbeat_req, 4, 1, hb4, sizeof(hb4), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.generation_id, -1);
	STR_EQ(rq.member_id, "m");
	STR_NULL(rq.group_instance_id);
	arena_free(&A);
}

static const uint8_t lg0[] = { 0x00, 0x01, 'g', 0x00, 0x02, 'm', '1' };
static const uint8_t lg3[] = {
	0x00, 0x01, 'g',			/* group_id */
	0x00, 0x00, 0x00, 0x02,			/* members: 2 */
	0x00, 0x02, 'm', '1', 0xff, 0xff,	/* "m1", no instance id */
	0x00, 0x00, 0x00, 0x02, 'i', '2',	/* "" (unknown), instance "i2" */
};
static const uint8_t lg5[] = {
	0x02, 'g',
	0x02,					/* members: 1 */
	0x03, 'm', '1',
	0x00,					/* group_instance_id null */
	0x04, 'b', 'y', 'e',			/* reason "bye" */
	0x00,					/* member tags */
	0x00,
};

static void test_leave_group_bytes(void)
{
	struct leave_group_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_leave_group_req, 0, 0, lg0, sizeof(lg0), &rq), 0);
	STR_EQ(rq.group_id, "g");
	STR_EQ(rq.member_id, "m1");
	T_EQ(rq.members_n, 0);

	T_EQ(dec(&kc_leave_group_req, 3, 0, lg3, sizeof(lg3), &rq), 0);
	STR_EQ(rq.group_id, "g");
	STR_NULL(rq.member_id);
	T_EQ(rq.members_n, 2);
	STR_EQ(rq.members[0].member_id, "m1");
	STR_NULL(rq.members[0].group_instance_id);
	STR_NULL(rq.members[0].reason);
	STR_EQ(rq.members[1].member_id, "");
	STR_EQ(rq.members[1].group_instance_id, "i2");
	STR_NULL(rq.members[1].reason);

	T_EQ(dec(&kc_leave_group_req, 5, 1, lg5, sizeof(lg5), &rq), 0);
	T_EQ(rq.members_n, 1);
	STR_EQ(rq.members[0].member_id, "m1");
	STR_NULL(rq.members[0].group_instance_id);
	STR_EQ(rq.members[0].reason, "bye");
	/* v4 has no reason: "bye" would be read as the member tags */
	T_CHECK(dec(&kc_leave_group_req, 4, 1, lg5, sizeof(lg5), &rq) != 0);
	arena_free(&A);
}

static const uint8_t sg3[] = {
	0x00, 0x01, 'g',
	0x00, 0x00, 0x00, 0x01,			/* generation_id 1 */
	0x00, 0x01, 'm',
	0xff, 0xff,				/* group_instance_id null */
	0x00, 0x00, 0x00, 0x01,			/* assignments: 1 */
	0x00, 0x01, 'm',
	0x00, 0x00, 0x00, 0x02, 0x01, 0x02,	/* assignment, 2 bytes */
};
static const uint8_t sg5[] = {
	0x02, 'g',
	0x00, 0x00, 0x00, 0x01,
	0x02, 'm',
	0x02, 'i',				/* group_instance_id "i" */
	0x09, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',	/* protocol_type */
	0x06, 'r', 'a', 'n', 'g', 'e',		/* protocol_name */
	0x01,					/* assignments: empty (a follower) */
	0x00,
};

static void test_sync_group_bytes(void)
{
	struct sync_group_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_sync_group_req, 3, 0, sg3, sizeof(sg3), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.generation_id, 1);
	STR_EQ(rq.member_id, "m");
	STR_NULL(rq.group_instance_id);
	STR_NULL(rq.protocol_type);
	STR_NULL(rq.protocol_name);
	T_EQ(rq.assignments_n, 1);
	STR_EQ(rq.assignments[0].member_id, "m");
	BYTES_EQ(rq.assignments[0].assignment, "\x01\x02", 2);

	T_EQ(dec(&kc_sync_group_req, 5, 1, sg5, sizeof(sg5), &rq), 0);
	STR_EQ(rq.group_instance_id, "i");
	STR_EQ(rq.protocol_type, "consumer");
	STR_EQ(rq.protocol_name, "range");
	T_EQ(rq.assignments_n, 0);
	arena_free(&A);
}

static const uint8_t dg0[] = {
	0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 'a', 0x00, 0x02, 'b', 'c',
};
static const uint8_t dg5[] = {
	0x02, 0x02, 'g',			/* groups ["g"] */
	0x01,					/* include_authorized_operations */
	0x00,
};

static void test_describe_groups_bytes(void)
{
	struct describe_groups_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_describe_groups_req, 0, 0, dg0, sizeof(dg0), &rq), 0);
	T_EQ(rq.groups_n, 2);
	STR_EQ(rq.groups[0], "a");
	STR_EQ(rq.groups[1], "bc");
	T_EQ(rq.include_authorized_operations, 0);
	T_EQ(dec(&kc_describe_groups_req, 5, 1, dg5, sizeof(dg5), &rq), 0);
	T_EQ(rq.groups_n, 1);
	STR_EQ(rq.groups[0], "g");
	T_EQ(rq.include_authorized_operations, 1);
	arena_free(&A);
}

static const uint8_t lsg3[] = { 0x00 };		/* only the tags */
static const uint8_t lsg4[] = {
	0x03, 0x07, 'S', 't', 'a', 'b', 'l', 'e', 0x06, 'E', 'm', 'p', 't', 'y',
	0x00,
};

static void test_list_groups_bytes(void)
{
	struct list_groups_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_list_groups_req, 0, 0, lsg3, 0, &rq), 0);	/* v0-2: empty body */
	T_EQ(rq.states_filter_n, 0);
	T_EQ(dec(&kc_list_groups_req, 3, 1, lsg3, sizeof(lsg3), &rq), 0);
	T_EQ(rq.states_filter_n, 0);
	T_EQ(dec(&kc_list_groups_req, 4, 1, lsg4, sizeof(lsg4), &rq), 0);
	T_EQ(rq.states_filter_n, 2);
	STR_EQ(rq.states_filter[0], "Stable");
	STR_EQ(rq.states_filter[1], "Empty");
	arena_free(&A);
}

static const uint8_t dlg1[] = { 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 'g' };
static const uint8_t dlg2[] = { 0x03, 0x02, 'a', 0x03, 'b', 'c', 0x00 };

static void test_delete_groups_bytes(void)
{
	struct delete_groups_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_delete_groups_req, 1, 0, dlg1, sizeof(dlg1), &rq), 0);
	T_EQ(rq.groups_names_n, 1);
	STR_EQ(rq.groups_names[0], "g");
	T_EQ(dec(&kc_delete_groups_req, 2, 1, dlg2, sizeof(dlg2), &rq), 0);
	T_EQ(rq.groups_names_n, 2);
	STR_EQ(rq.groups_names[0], "a");
	STR_EQ(rq.groups_names[1], "bc");
	arena_free(&A);
}

static const uint8_t od0[] = {
	0x00, 0x01, 'g',			/* group_id */
	0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
	0x00, 0x01, 't',
	0x00, 0x00, 0x00, 0x02,			/* partitions: 2 */
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x05,
};

static void test_offset_delete_bytes(void)
{
	struct offset_delete_req rq;

	arena_init(&A, 0);
	T_EQ(dec(&kc_offset_delete_req, 0, 0, od0, sizeof(od0), &rq), 0);
	STR_EQ(rq.group_id, "g");
	T_EQ(rq.topics_n, 1);
	STR_EQ(rq.topics[0].name, "t");
	T_EQ(rq.topics[0].partitions_n, 2);
	T_EQ(rq.topics[0].partitions[0].partition_index, 0);
	T_EQ(rq.topics[0].partitions[1].partition_index, 5);
	arena_free(&A);
}

/* ---- hand-written responses ---- */

static void test_response_bytes(void)
{
	struct join_group_resp jr;
	struct join_group_resp_join_group_response_member jm;
	struct offset_fetch_resp fr;
	struct offset_fetch_resp_offset_fetch_response_topic ft;
	struct offset_fetch_resp_offset_fetch_response_partition fp;
	struct offset_delete_resp dr;
	struct offset_delete_resp_offset_delete_response_topic dt;
	struct offset_delete_resp_offset_delete_response_partition dp = { 0, 86 };
	/* JoinGroup v5: throttle, error, generation, protocol_name, leader, member_id, members */
	static const uint8_t jr5[] = {
		0x00, 0x00, 0x00, 0x00,			/* throttle_time_ms */
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x01,			/* generation_id 1 */
		0x00, 0x05, 'r', 'a', 'n', 'g', 'e',	/* protocol_name */
		0x00, 0x01, 'm',			/* leader */
		0x00, 0x01, 'm',			/* member_id */
		0x00, 0x00, 0x00, 0x01,			/* members: 1 */
		0x00, 0x01, 'm',
		0xff, 0xff,				/* group_instance_id null */
		0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb,	/* metadata */
	};
	/* v6, an error answer: a null protocol_name goes out as "" below v7 */
	static const uint8_t jr6[] = {
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x4f,				/* MEMBER_ID_REQUIRED */
		0xff, 0xff, 0xff, 0xff,			/* generation_id -1 (default) */
		0x01,					/* protocol_name "" */
		0x01,					/* leader "" */
		0x04, 'm', '-', '1',			/* member_id */
		0x01,					/* members: empty */
		0x00,
	};
	/* v7: protocol_type appears before protocol_name, and both may be null */
	static const uint8_t jr7[] = {
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x4f,
		0xff, 0xff, 0xff, 0xff,
		0x00,					/* protocol_type null */
		0x00,					/* protocol_name null */
		0x01,
		0x04, 'm', '-', '1',
		0x01,
		0x00,
	};
	/* OffsetFetch v1: no throttle, no top-level error, no leader epoch */
	static const uint8_t fr1[] = {
		0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,			/* partitions: 1 */
		0x00, 0x00, 0x00, 0x00,			/* partition_index */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* committed_offset -1 */
		0x00, 0x00,				/* metadata "" */
		0x00, 0x00,				/* error_code */
	};
	/* OffsetDelete: error_code first, then throttle_time_ms */
	static const uint8_t dr0[] = {
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x03,			/* throttle_time_ms 3 */
		0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,			/* partitions: 1 */
		0x00, 0x00, 0x00, 0x00,			/* partition_index */
		0x00, 0x56,				/* GROUP_SUBSCRIBED_TO_TOPIC */
	};

	kc_defaults(&kc_join_group_resp, &jr);
	kc_defaults(&kc_join_group_resp_join_group_response_member, &jm);
	T_EQ(jr.generation_id, -1);
	jr.generation_id = 1;
	jr.protocol_type = S("consumer");	/* absent below v7 */
	jr.protocol_name = S("range");
	jr.leader = S("m");
	jr.member_id = S("m");
	jm.member_id = S("m");
	jm.metadata = B("\xaa\xbb", 2);
	jr.members = &jm;
	jr.members_n = 1;
	enc_eq(&kc_join_group_resp, 5, 0, &jr, jr5, sizeof(jr5));

	kc_defaults(&kc_join_group_resp, &jr);
	jr.error_code = 79;
	jr.leader = S("");
	jr.member_id = S("m-1");
	enc_eq(&kc_join_group_resp, 6, 1, &jr, jr6, sizeof(jr6));
	enc_eq(&kc_join_group_resp, 7, 1, &jr, jr7, sizeof(jr7));

	kc_defaults(&kc_offset_fetch_resp, &fr);
	kc_defaults(&kc_offset_fetch_resp_offset_fetch_response_topic, &ft);
	kc_defaults(&kc_offset_fetch_resp_offset_fetch_response_partition, &fp);
	T_EQ(fp.committed_leader_epoch, -1);
	fp.committed_offset = -1;
	fp.metadata = S("");
	ft.name = S("t");
	ft.partitions = &fp;
	ft.partitions_n = 1;
	fr.topics = &ft;
	fr.topics_n = 1;
	fr.error_code = 16;			/* absent in v1 */
	enc_eq(&kc_offset_fetch_resp, 1, 0, &fr, fr1, sizeof(fr1));

	kc_defaults(&kc_offset_delete_resp, &dr);
	dr.throttle_time_ms = 3;
	dt.name = S("t");
	dt.partitions = &dp;
	dt.partitions_n = 1;
	dr.topics = &dt;
	dr.topics_n = 1;
	enc_eq(&kc_offset_delete_resp, 0, 0, &dr, dr0, sizeof(dr0));
}

/* ---- truncation of every hand-written request ---- */

static void test_truncated(void)
{
	static const struct {
		int16_t key;
		int ver;
		const uint8_t *p;
		size_t n;
	} v[] = {
		{ 8, 1, oc1, sizeof(oc1) },
		{ 8, 2, oc2, sizeof(oc2) },
		{ 8, 8, oc8, sizeof(oc8) },
		{ 9, 1, of1, sizeof(of1) },
		{ 9, 2, of_all, sizeof(of_all) },
		{ 9, 6, of6, sizeof(of6) },
		{ 9, 7, of7, sizeof(of7) },
		{ 9, 8, of8, sizeof(of8) },
		{ 11, 5, jg5, sizeof(jg5) },
		{ 11, 6, jg6_frame + JG6_BODY, sizeof(jg6_frame) - JG6_BODY },
		{ 11, 8, jg8, sizeof(jg8) },
		{ 12, 3, hb3, sizeof(hb3) },
		{ 12, 4, hb4, sizeof(hb4) },
		{ 13, 0, lg0, sizeof(lg0) },
		{ 13, 3, lg3, sizeof(lg3) },
		{ 13, 5, lg5, sizeof(lg5) },
		{ 14, 3, sg3, sizeof(sg3) },
		{ 14, 5, sg5, sizeof(sg5) },
		{ 15, 0, dg0, sizeof(dg0) },
		{ 15, 5, dg5, sizeof(dg5) },
		{ 16, 3, lsg3, sizeof(lsg3) },
		{ 16, 4, lsg4, sizeof(lsg4) },
		{ 42, 1, dlg1, sizeof(dlg1) },
		{ 42, 2, dlg2, sizeof(dlg2) },
		{ 47, 0, od0, sizeof(od0) },
	};
	int seen[48] = { 0 };

	arena_init(&A, 0);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const struct kc_api *api = kc_api_find(v[i].key);
		int flex = v[i].ver >= api->flex_min;
		void *out = arena_alloc(&A, api->req->size);
		struct sl_rd r;

		SL_ASSERT(out);
		seen[v[i].key] = 1;
		/* whole, it decodes */
		rd_init(&r, v[i].p, v[i].n);
		T_EQ(kc_decode(api->req, (int16_t)v[i].ver, flex, &r, &A, out), 0);
		T_EQ(rd_left(&r), 0);
		for (size_t cut = 0; cut < v[i].n; cut++) {
			/* a copy of exactly cut bytes, so ASan sees any read past it */
			uint8_t *p = malloc(cut ? cut : 1);
			int rc;

			SL_ASSERT(p);
			if (cut)
				memcpy(p, v[i].p, cut);
			rd_init(&r, p, cut);
			rc = kc_decode(api->req, (int16_t)v[i].ver, flex, &r, &A, out);
			if (rc != SL_E_SHORT) {
				t_failed_checks++;
				fprintf(stderr, "  %s v%d: prefix of %zu/%zu bytes gave %d\n",
					api->name, v[i].ver, cut, v[i].n, rc);
			}
			free(p);
		}
	}
	/* one vector at least for every group API */
	T_CHECK(seen[8] && seen[9] && seen[11] && seen[12] && seen[13]);
	T_CHECK(seen[14] && seen[15] && seen[16] && seen[42] && seen[47]);
	arena_free(&A);
}

int main(void)
{
	T_RUN(test_api_rows);
	T_RUN(test_offset_commit_rt);
	T_RUN(test_offset_fetch_rt);
	T_RUN(test_join_group_rt);
	T_RUN(test_heartbeat_rt);
	T_RUN(test_leave_group_rt);
	T_RUN(test_sync_group_rt);
	T_RUN(test_describe_groups_rt);
	T_RUN(test_list_groups_rt);
	T_RUN(test_delete_groups_rt);
	T_RUN(test_offset_delete_rt);
	T_RUN(test_offset_commit_bytes);
	T_RUN(test_offset_fetch_bytes);
	T_RUN(test_join_group_bytes);
	T_RUN(test_heartbeat_bytes);
	T_RUN(test_leave_group_bytes);
	T_RUN(test_sync_group_bytes);
	T_RUN(test_describe_groups_bytes);
	T_RUN(test_list_groups_bytes);
	T_RUN(test_delete_groups_bytes);
	T_RUN(test_offset_delete_bytes);
	T_RUN(test_response_bytes);
	T_RUN(test_truncated);
	return t_done();
}
