/*
 * test_codec.c - the Kafka codec against itself and against bytes written
 * out by hand from the JSON message definitions.
 *
 *  - Round trips: every API, every version, request and response, filled
 *    with non-default values (and again with nulls, and with defaults only),
 *    encode -> decode -> encode gives the same bytes, and every strict prefix
 *    of the encoding fails to decode.
 *  - Hand vectors: requests decode to the expected fields, responses encode
 *    to the expected bytes.
 *  - Headers, and hostile input: bad counts, lengths, varints, tags, nulls.
 *
 * Run as `test_codec --corpus DIR` it instead writes the seed frames for
 * tests/fuzz/fuzz_request.c into DIR.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kafka/codec.h"
#include "kafka/msgs.h"
#include "kafka/kerr.h"

static struct arena A;

static int present(const struct kc_field *f, int ver)
{
	return ver >= f->vmin && ver <= f->vmax;
}

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %s (%zu):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

/* ---- filling structs with values that differ from every default ---- */

static const char *const pool[] = { "alpha", "b", "topic-name", "x.y" };
static const uint8_t blob[] = "RECORDS!";

static void fill(const struct kc_struct *s, int ver, int flex, int nulls, void *out, int seed)
{
	uint8_t *base = out;

	kc_defaults(s, out);
	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];
		void *m = base + f->off;
		int nul = nulls && ver >= f->null_from;
		int64_t v = f->dflt + 3 + seed + (int64_t)i;
		const char *str = pool[(seed + i) % 4];
		size_t esz;
		uint8_t *e;

		if (!present(f, ver) || (f->tag != KV_NOTAG && !flex))
			continue;
		switch (f->type) {
		case KC_BOOL:    *(int8_t *)m = !f->dflt; break;
		case KC_INT8:    *(int8_t *)m = (int8_t)v; break;
		case KC_INT16:   *(int16_t *)m = (int16_t)v; break;
		case KC_UINT16:  *(uint16_t *)m = (uint16_t)v; break;
		case KC_INT32:   *(int32_t *)m = (int32_t)(uint32_t)v; break;
		case KC_INT64:   *(int64_t *)m = v; break;
		case KC_FLOAT64: *(double *)m = (double)v + 0.5; break;
		case KC_UUID:    memset(m, seed + (int)i + 1, 16); break;
		case KC_STRING:
			*(struct kc_str *)m = nul ? KC_NULL_STR : kc_str_of(str, (int32_t)strlen(str));
			break;
		case KC_BYTES:
			((struct kc_bytes *)m)->p = nul ? NULL : blob;
			((struct kc_bytes *)m)->len = nul ? -1 : 8;
			break;
		case KC_RECORDS:
			((struct kc_records *)m)->p = nul ? NULL : blob;
			((struct kc_records *)m)->len = nul ? -1 : 8;
			break;
		case KC_STRUCT:
			fill(f->sub, ver, flex, nulls, m, seed + 1);
			break;
		default:
			if (nul) {
				*(int32_t *)(base + f->n_off) = -1;
				break;
			}
			esz = f->type == KC_ARRAY ? f->sub->size :
			      f->type == KC_ARRAY_INT32 ? 4 :
			      f->type == KC_ARRAY_INT64 ? 8 : sizeof(struct kc_str);
			e = arena_calloc(&A, 2, esz);
			SL_ASSERT(e);
			*(void **)m = e;
			*(int32_t *)(base + f->n_off) = 2;
			for (int k = 0; k < 2; k++) {
				void *x = e + k * esz;

				if (f->type == KC_ARRAY)
					fill(f->sub, ver, flex, nulls, x, seed + k + 1);
				else if (f->type == KC_ARRAY_INT32)
					*(int32_t *)x = seed * 10 + k + 1;
				else if (f->type == KC_ARRAY_INT64)
					*(int64_t *)x = -(seed * 10 + k + 1);
				else
					*(struct kc_str *)x = kc_str_of(pool[k], (int32_t)strlen(pool[k]));
			}
			break;
		}
	}
}

/*
 * encode -> decode -> encode, byte for byte; then every strict prefix of the
 * encoding must fail to decode.
 */
static void roundtrip(const struct kc_api *api, const struct kc_struct *s, int ver, int mode)
{
	int flex = ver >= api->flex_min;
	void *in = arena_alloc(&A, s->size), *out = arena_alloc(&A, s->size);
	struct sl_wr w1, w2;
	struct sl_rd r;
	int rc;

	SL_ASSERT(in && out);
	if (mode == 2)
		kc_defaults(s, in);
	else
		fill(s, ver, flex, mode, in, 0);
	wr_init(&w1, 0);
	wr_init(&w2, 0);
	T_EQ(kc_encode(s, ver, flex, in, &w1), 0);
	rd_init(&r, w1.p, w1.len);
	rc = kc_decode(s, ver, flex, &r, &A, out);
	T_EQ(rc, 0);
	T_EQ(rd_left(&r), 0);
	T_EQ(kc_encode(s, ver, flex, out, &w2), 0);
	if (w1.len != w2.len || (w1.len && memcmp(w1.p, w2.p, w1.len) != 0)) {
		t_failed_checks++;
		fprintf(stderr, "  %s v%d mode %d: re-encoding differs\n", s->name, ver, mode);
		hexdump("first", w1.p, w1.len);
		hexdump("second", w2.p, w2.len);
	}
	for (size_t cut = 0; cut < w1.len; cut++) {
		rd_init(&r, w1.p, cut);
		rc = kc_decode(s, ver, flex, &r, &A, out);
		if (rc == 0) {
			t_failed_checks++;
			fprintf(stderr, "  %s v%d mode %d: prefix of %zu bytes decoded\n",
				s->name, ver, mode, cut);
			break;
		}
	}
	wr_free(&w1);
	wr_free(&w2);
}

static void test_roundtrip_all(void)
{
	arena_init(&A, 0);
	for (size_t i = 0; i < kc_napis; i++) {
		const struct kc_api *api = &kc_apis[i];

		for (int v = api->vmin; v <= api->vmax; v++)
			for (int mode = 0; mode < 3; mode++) {
				roundtrip(api, api->req, v, mode);
				roundtrip(api, api->resp, v, mode);
			}
	}
	arena_free(&A);
}

/* Descriptor sanity: tags ascending, subs where needed, ranges ordered. */
static void check_struct(const struct kc_struct *s)
{
	int last = -1;

	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];

		T_CHECK(f->vmin <= f->vmax);
		T_CHECK(f->off < s->size);
		if (f->tag != KV_NOTAG) {
			T_CHECK(f->tag > last);
			last = f->tag;
		}
		if (f->type == KC_STRUCT || f->type == KC_ARRAY) {
			T_CHECK(f->sub != NULL);
			if (f->sub)
				check_struct(f->sub);
		} else {
			T_CHECK(f->sub == NULL);
		}
	}
}

/*
 * The fewest bytes s can take on the wire.  The decoder's count check assumes
 * every array element takes at least one.
 */
static size_t min_wire(const struct kc_struct *s, int ver, int flex)
{
	size_t n = flex;

	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];

		if (!present(f, ver) || f->tag != KV_NOTAG)
			continue;
		switch (f->type) {
		case KC_BOOL: case KC_INT8: n += 1; break;
		case KC_INT16: case KC_UINT16: n += 2; break;
		case KC_INT32: n += 4; break;
		case KC_INT64: case KC_FLOAT64: n += 8; break;
		case KC_UUID: n += 16; break;
		case KC_STRUCT: n += min_wire(f->sub, ver, flex); break;
		case KC_STRING: n += flex ? 1 : 2; break;
		default: n += flex ? 1 : 4; break;
		}
	}
	return n;
}

static void check_elements(const struct kc_struct *s, int ver, int flex)
{
	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];

		if (present(f, ver) && (f->type == KC_ARRAY || f->type == KC_STRUCT)) {
			if (f->type == KC_ARRAY)
				T_CHECK(min_wire(f->sub, ver, flex) >= 1);
			check_elements(f->sub, ver, flex);
		}
	}
}

static void test_descriptors(void)
{
	for (size_t i = 0; i < kc_napis; i++)
		for (int v = kc_apis[i].vmin; v <= kc_apis[i].vmax; v++) {
			check_elements(kc_apis[i].req, v, v >= kc_apis[i].flex_min);
			check_elements(kc_apis[i].resp, v, v >= kc_apis[i].flex_min);
		}
	for (size_t i = 0; i < kc_napis; i++) {
		check_struct(kc_apis[i].req);
		check_struct(kc_apis[i].resp);
		T_CHECK(kc_api_find(kc_apis[i].key) == &kc_apis[i]);
	}
	T_CHECK(kc_api_find(99) == NULL);
	T_CHECK(strcmp(kc_api_name(1), "Fetch") == 0);
	T_CHECK(strcmp(kc_api_name(-5), "Unknown") == 0);
	T_EQ(KERR_UNSUPPORTED_VERSION, 35);
	T_EQ(KERR_INCONSISTENT_TOPIC_ID, 103);
	T_EQ(KERR_KAFKA_STORAGE_ERROR, 56);
	T_CHECK(strcmp(kerr_name(3), "UNKNOWN_TOPIC_OR_PARTITION") == 0);
	T_CHECK(strcmp(kerr_name(-1), "UNKNOWN_SERVER_ERROR") == 0);
	T_CHECK(strcmp(kerr_name(30000), "UNKNOWN") == 0);
	T_EQ(sizeof(struct kc_uuid), 16);
}

/* ---- hand vectors ---- */

/* Decode a body; checks that it is consumed exactly when rc is 0. */
static int dec(const struct kc_struct *s, int ver, int flex, const uint8_t *p, size_t n, void *out)
{
	struct sl_rd r;
	int rc;

	rd_init(&r, p, n);
	rc = kc_decode(s, ver, flex, &r, &A, out);
	if (rc == 0)
		T_EQ(rd_left(&r), 0);
	return rc;
}

static void enc_eq(const struct kc_struct *s, int ver, int flex, const void *in,
		   const uint8_t *want, size_t n)
{
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(kc_encode(s, ver, flex, in, &w), 0);
	if (w.len != n || (n && memcmp(w.p, want, n) != 0)) {
		t_failed_checks++;
		fprintf(stderr, "  %s v%d encoding differs\n", s->name, ver);
		hexdump("got", w.p, w.len);
		hexdump("want", want, n);
	}
	wr_free(&w);
}

#define STR_EQ(k, s) T_CHECK(kc_str_eq((k), (s)))

/* ApiVersions v3 request, whole frame: header v2, then the body. */
static const uint8_t f_av3[] = {
	0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07,		/* key 18, v3, corr 7 */
	0x00, 0x07, 'r', 'd', 'k', 'a', 'f', 'k', 'a',		/* client_id, int16 len */
	0x00,							/* header tags */
	0x0b, 'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a',	/* compact "librdkafka" */
	0x06, '2', '.', '0', '.', '2',				/* compact "2.0.2" */
	0x01, 0x05, 0x02, 0xab, 0xcd,				/* unknown tag 5, 2 bytes */
};

static void test_api_versions(void)
{
	struct api_versions_req rq;
	struct api_versions_resp rs;
	struct api_versions_resp_api_version keys[2] = { { 0, 0, 9 }, { 18, 0, 3 } };
	struct api_versions_resp_supported_feature_key feat = { kc_str_of("f", 1), 1, 2 };
	struct kc_req_hdr h;
	const struct kc_api *api;
	struct sl_rd r;
	static const uint8_t rs0[] = {
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x02,			/* api_keys: 2 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x09,
		0x00, 0x12, 0x00, 0x00, 0x00, 0x03,
	};
	static const uint8_t rs3[] = {
		0x00, 0x00,				/* error_code */
		0x03,					/* api_keys: 2, compact */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00,
		0x00, 0x12, 0x00, 0x00, 0x00, 0x03, 0x00,
		0x00, 0x00, 0x00, 0x00,			/* throttle_time_ms */
		0x02,					/* two tagged fields */
		0x00, 0x08,				/* tag 0 supported_features, 8 bytes */
		0x02, 0x02, 'f', 0x00, 0x01, 0x00, 0x02, 0x00,
		0x01, 0x08,				/* tag 1 finalized_features_epoch */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	};
	static const uint8_t rs3_plain[] = {
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	};

	arena_init(&A, 0);
	/* v0 request: an empty body. */
	T_EQ(dec(&kc_api_versions_req, 0, 0, (const uint8_t *)"", 0, &rq), 0);
	T_EQ(rq.client_software_name.len, -1);

	/* v3 request through the header. */
	rd_init(&r, f_av3, sizeof(f_av3));
	T_EQ(kc_decode_request_header(&r, &h, &api), 0);
	T_CHECK(api == kc_api_find(18));
	T_EQ(h.api_key, 18);
	T_EQ(h.api_version, 3);
	T_EQ(h.correlation_id, 7);
	STR_EQ(h.client_id, "rdkafka");
	T_EQ(r.off, 18);
	T_EQ(kc_decode(&kc_api_versions_req, 3, 1, &r, &A, &rq), 0);
	T_EQ(rd_left(&r), 0);
	STR_EQ(rq.client_software_name, "librdkafka");
	STR_EQ(rq.client_software_version, "2.0.2");

	/* v0 response. */
	kc_defaults(&kc_api_versions_resp, &rs);
	rs.api_keys = keys;
	rs.api_keys_n = 2;
	enc_eq(&kc_api_versions_resp, 0, 0, &rs, rs0, sizeof(rs0));

	/* v3 response: defaulted tags stay off the wire, set ones go on. */
	rs.api_keys_n = 0;
	enc_eq(&kc_api_versions_resp, 3, 1, &rs, rs3_plain, sizeof(rs3_plain));
	rs.api_keys_n = 2;
	rs.supported_features = &feat;
	rs.supported_features_n = 1;
	rs.finalized_features_epoch = 5;
	enc_eq(&kc_api_versions_resp, 3, 1, &rs, rs3, sizeof(rs3));

	/* and those bytes decode back */
	memset(&rs, 0x55, sizeof(rs));
	T_EQ(dec(&kc_api_versions_resp, 3, 1, rs3, sizeof(rs3), &rs), 0);
	T_EQ(rs.api_keys_n, 2);
	T_EQ(rs.api_keys[1].api_key, 18);
	T_EQ(rs.api_keys[1].max_version, 3);
	T_EQ(rs.supported_features_n, 1);
	STR_EQ(rs.supported_features[0].name, "f");
	T_EQ(rs.supported_features[0].max_version, 2);
	T_EQ(rs.finalized_features_epoch, 5);
	T_EQ(rs.finalized_features_n, 0);
	T_EQ(rs.zk_migration_ready, 0);
	T_EQ(dec(&kc_api_versions_resp, 3, 1, rs3_plain, sizeof(rs3_plain), &rs), 0);
	T_EQ(rs.finalized_features_epoch, -1);
	arena_free(&A);
}

static void test_metadata(void)
{
	struct metadata_req m;
	static const uint8_t v0[] = { 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't' };
	static const uint8_t v0_all[] = { 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t v1_null[] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t v9[] = {
		0x02,				/* topics: 1 */
		0x02, 't', 0x00,		/* name, tags */
		0x01, 0x00, 0x01,		/* auto create, cluster ops, topic ops */
		0x00,
	};
	static const uint8_t v9_null_name[] = { 0x02, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00 };
	static const uint8_t v10_null_name[] = {
		0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x00,
		0x01, 0x00, 0x01, 0x00,
	};

	arena_init(&A, 0);
	T_EQ(dec(&kc_metadata_req, 0, 0, v0, sizeof(v0), &m), 0);
	T_EQ(m.topics_n, 1);
	STR_EQ(m.topics[0].name, "t");
	T_EQ(m.allow_auto_topic_creation, 1);		/* JSON default, absent in v0 */
	T_EQ(dec(&kc_metadata_req, 0, 0, v0_all, sizeof(v0_all), &m), 0);
	T_EQ(m.topics_n, 0);
	T_EQ(dec(&kc_metadata_req, 1, 0, v1_null, sizeof(v1_null), &m), 0);
	T_EQ(m.topics_n, -1);
	/* v0 topics are not nullable */
	T_EQ(dec(&kc_metadata_req, 0, 0, v1_null, sizeof(v1_null), &m), SL_E_INVALID);

	T_EQ(dec(&kc_metadata_req, 9, 1, v9, sizeof(v9), &m), 0);
	T_EQ(m.topics_n, 1);
	STR_EQ(m.topics[0].name, "t");
	T_EQ(m.allow_auto_topic_creation, 1);
	T_EQ(m.include_cluster_authorized_operations, 0);
	T_EQ(m.include_topic_authorized_operations, 1);
	/* names become nullable in v10 */
	T_EQ(dec(&kc_metadata_req, 9, 1, v9_null_name, sizeof(v9_null_name), &m), SL_E_INVALID);
	T_EQ(dec(&kc_metadata_req, 10, 1, v10_null_name, sizeof(v10_null_name), &m), 0);
	T_EQ(m.topics[0].name.len, -1);
	T_EQ(m.topics[0].topic_id.b[15], 1);
	arena_free(&A);
}

static void test_metadata_response(void)
{
	struct metadata_resp m;
	struct metadata_resp_metadata_response_broker b;
	struct metadata_resp_metadata_response_topic t;
	struct metadata_resp_metadata_response_partition p;
	int32_t reps[1] = { 0 };
	static const uint8_t v1[] = {
		0x00, 0x00, 0x00, 0x01,			/* brokers: 1 */
		0x00, 0x00, 0x00, 0x00,			/* node_id 0 */
		0x00, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't',
		0x00, 0x00, 0x23, 0x84,			/* port 9092 */
		0xff, 0xff,				/* rack null */
		0x00, 0x00, 0x00, 0x00,			/* controller_id 0 */
		0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
		0x00, 0x00,				/* error_code */
		0x00, 0x01, 't',
		0x00,					/* is_internal */
		0x00, 0x00, 0x00, 0x01,			/* partitions: 1 */
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x00,			/* partition_index */
		0x00, 0x00, 0x00, 0x00,			/* leader_id */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,	/* replicas [0] */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,	/* isr [0] */
	};

	kc_defaults(&kc_metadata_resp, &m);
	kc_defaults(&kc_metadata_resp_metadata_response_broker, &b);
	kc_defaults(&kc_metadata_resp_metadata_response_topic, &t);
	kc_defaults(&kc_metadata_resp_metadata_response_partition, &p);
	b.host = kc_str_of("localhost", 9);
	b.port = 9092;
	t.name = kc_str_of("t", 1);
	p.replica_nodes = p.isr_nodes = reps;
	p.replica_nodes_n = p.isr_nodes_n = 1;
	t.partitions = &p;
	t.partitions_n = 1;
	m.brokers = &b;
	m.brokers_n = 1;
	m.topics = &t;
	m.topics_n = 1;
	m.controller_id = 0;
	m.cluster_id = kc_str_of("abc", 3);	/* absent in v1: not written */
	enc_eq(&kc_metadata_resp, 1, 0, &m, v1, sizeof(v1));
}

static void test_produce(void)
{
	struct produce_req p;
	struct produce_resp rs;
	struct produce_resp_topic_produce_response tr;
	struct produce_resp_partition_produce_response pr;
	static const uint8_t v3[] = {
		0xff, 0xff,				/* transactional_id null */
		0xff, 0xff,				/* acks -1 */
		0x00, 0x00, 0x75, 0x30,			/* timeout 30000 */
		0x00, 0x00, 0x00, 0x01,			/* topic_data: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,			/* partition_data: 1 */
		0x00, 0x00, 0x00, 0x00,			/* index 0 */
		0x00, 0x00, 0x00, 0x04, 'R', 'E', 'C', 'S',
	};
	static const uint8_t v9[] = {
		0x03, 't', 'x',				/* transactional_id "tx" */
		0x00, 0x01,				/* acks 1 */
		0x00, 0x00, 0x13, 0x88,			/* timeout 5000 */
		0x02,					/* topic_data: 1 */
		0x02, 't',
		0x02,					/* partition_data: 1 */
		0x00, 0x00, 0x00, 0x02,			/* index 2 */
		0x05, 'R', 'E', 'C', 'S',		/* compact records */
		0x00, 0x00, 0x00,			/* tags: partition, topic, body */
	};
	static const uint8_t rs9[] = {
		0x02,					/* responses: 1 */
		0x02, 't',
		0x02,					/* partition_responses: 1 */
		0x00, 0x00, 0x00, 0x00,			/* index */
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,	/* base_offset 42 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* log_append_time -1 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* log_start_offset 0 */
		0x01,					/* record_errors: empty */
		0x00,					/* error_message null */
		0x00, 0x00,				/* tags: partition, topic */
		0x00, 0x00, 0x00, 0x00,			/* throttle_time_ms */
		0x00,
	};

	arena_init(&A, 0);
	T_EQ(dec(&kc_produce_req, 3, 0, v3, sizeof(v3), &p), 0);
	T_EQ(p.transactional_id.len, -1);
	T_EQ(p.acks, -1);
	T_EQ(p.timeout_ms, 30000);
	T_EQ(p.topic_data_n, 1);
	STR_EQ(p.topic_data[0].name, "t");
	T_EQ(p.topic_data[0].partition_data_n, 1);
	T_EQ(p.topic_data[0].partition_data[0].index, 0);
	T_EQ(p.topic_data[0].partition_data[0].records.len, 4);
	T_MEMEQ(p.topic_data[0].partition_data[0].records.p, "RECS", 4);
	T_CHECK(p.topic_data[0].partition_data[0].records.p == v3 + 27);	/* borrowed */

	T_EQ(dec(&kc_produce_req, 9, 1, v9, sizeof(v9), &p), 0);
	STR_EQ(p.transactional_id, "tx");
	T_EQ(p.acks, 1);
	T_EQ(p.timeout_ms, 5000);
	T_EQ(p.topic_data[0].partition_data[0].index, 2);
	T_EQ(p.topic_data[0].partition_data[0].records.len, 4);
	/* the same bytes re-encode exactly */
	enc_eq(&kc_produce_req, 9, 1, &p, v9, sizeof(v9));

	kc_defaults(&kc_produce_resp, &rs);
	kc_defaults(&kc_produce_resp_topic_produce_response, &tr);
	kc_defaults(&kc_produce_resp_partition_produce_response, &pr);
	pr.base_offset = 42;
	pr.log_start_offset = 0;
	tr.name = kc_str_of("t", 1);
	tr.partition_responses = &pr;
	tr.partition_responses_n = 1;
	rs.responses = &tr;
	rs.responses_n = 1;
	enc_eq(&kc_produce_resp, 9, 1, &rs, rs9, sizeof(rs9));
	arena_free(&A);
}

static void test_fetch(void)
{
	struct fetch_req f;
	struct fetch_resp rs;
	struct fetch_resp_fetchable_topic_response tr;
	struct fetch_resp_partition_data pd;
	struct span iov[2] = { { (const uint8_t *)"abc", 3 }, { (const uint8_t *)"def", 3 } };
	static const uint8_t v4[] = {
		0xff, 0xff, 0xff, 0xff,			/* replica_id -1 */
		0x00, 0x00, 0x01, 0xf4,			/* max_wait_ms 500 */
		0x00, 0x00, 0x00, 0x01,			/* min_bytes 1 */
		0x03, 0x20, 0x00, 0x00,			/* max_bytes 52428800 */
		0x01,					/* isolation_level */
		0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,			/* partitions: 1 */
		0x00, 0x00, 0x00, 0x00,			/* partition 0 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,	/* fetch_offset 10 */
		0x00, 0x10, 0x00, 0x00,			/* partition_max_bytes 1 MiB */
	};
	static const uint8_t v12[] = {
		0xff, 0xff, 0xff, 0xff,			/* replica_id -1 */
		0x00, 0x00, 0x01, 0xf4,			/* max_wait_ms 500 */
		0x00, 0x00, 0x00, 0x01,			/* min_bytes */
		0x7f, 0xff, 0xff, 0xff,			/* max_bytes */
		0x00,					/* isolation_level */
		0x00, 0x00, 0x00, 0x00,			/* session_id */
		0xff, 0xff, 0xff, 0xff,			/* session_epoch -1 */
		0x02,					/* topics: 1 */
		0x02, 't',
		0x02,					/* partitions: 1 */
		0x00, 0x00, 0x00, 0x00,			/* partition */
		0x00, 0x00, 0x00, 0x05,			/* current_leader_epoch 5 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64,	/* fetch_offset 100 */
		0xff, 0xff, 0xff, 0xff,			/* last_fetched_epoch -1 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* log_start_offset -1 */
		0x00, 0x10, 0x00, 0x00,			/* partition_max_bytes */
		0x00, 0x00,				/* tags: partition, topic */
		0x01,					/* forgotten_topics_data: empty */
		0x01,					/* rack_id "" */
		0x01, 0x00, 0x04, 0x04, 'a', 'b', 'c',	/* tag 0 cluster_id "abc" */
	};
	static const uint8_t rs12[] = {
		0x00, 0x00, 0x00, 0x00,			/* throttle_time_ms */
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x00,			/* session_id */
		0x02,					/* responses: 1 */
		0x02, 't',
		0x02,					/* partitions: 1 */
		0x00, 0x00, 0x00, 0x00,			/* partition_index */
		0x00, 0x00,				/* error_code */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,	/* high_watermark */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,	/* last_stable_offset */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* log_start_offset */
		0x00,					/* aborted_transactions null */
		0xff, 0xff, 0xff, 0xff,			/* preferred_read_replica -1 */
		0x07, 'a', 'b', 'c', 'd', 'e', 'f',	/* records, from two spans */
		0x01, 0x01, 0x09,			/* tag 1 current_leader, 9 bytes */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00,
		0x00, 0x00,				/* tags: topic, body */
	};

	arena_init(&A, 0);
	T_EQ(dec(&kc_fetch_req, 4, 0, v4, sizeof(v4), &f), 0);
	T_EQ(f.replica_id, -1);
	T_EQ(f.max_wait_ms, 500);
	T_EQ(f.min_bytes, 1);
	T_EQ(f.max_bytes, 52428800);
	T_EQ(f.isolation_level, 1);
	T_EQ(f.session_epoch, -1);		/* absent: JSON default */
	T_EQ(f.forgotten_topics_data_n, 0);
	T_EQ(f.rack_id.len, -1);
	T_EQ(f.topics_n, 1);
	STR_EQ(f.topics[0].topic, "t");
	T_EQ(f.topics[0].partitions[0].fetch_offset, 10);
	T_EQ(f.topics[0].partitions[0].partition_max_bytes, 1 << 20);
	T_EQ(f.topics[0].partitions[0].log_start_offset, -1);
	T_EQ(f.topics[0].partitions[0].current_leader_epoch, -1);

	T_EQ(dec(&kc_fetch_req, 12, 1, v12, sizeof(v12), &f), 0);
	STR_EQ(f.cluster_id, "abc");
	T_EQ(f.max_bytes, 0x7fffffff);
	T_EQ(f.session_epoch, -1);
	T_EQ(f.topics[0].partitions[0].current_leader_epoch, 5);
	T_EQ(f.topics[0].partitions[0].fetch_offset, 100);
	T_EQ(f.topics[0].partitions[0].last_fetched_epoch, -1);
	T_EQ(f.forgotten_topics_data_n, 0);
	T_EQ(f.rack_id.len, 0);
	enc_eq(&kc_fetch_req, 12, 1, &f, v12, sizeof(v12));

	kc_defaults(&kc_fetch_resp, &rs);
	kc_defaults(&kc_fetch_resp_fetchable_topic_response, &tr);
	kc_defaults(&kc_fetch_resp_partition_data, &pd);
	pd.high_watermark = pd.last_stable_offset = 10;
	pd.log_start_offset = 0;
	pd.aborted_transactions_n = -1;
	pd.current_leader.leader_id = 1;
	pd.current_leader.leader_epoch = 5;
	pd.records.len = 6;
	pd.records.iov = iov;
	pd.records.iovn = 2;
	tr.topic = kc_str_of("t", 1);
	tr.partitions = &pd;
	tr.partitions_n = 1;
	rs.responses = &tr;
	rs.responses_n = 1;
	enc_eq(&kc_fetch_resp, 12, 1, &rs, rs12, sizeof(rs12));
	memset(&rs, 0, sizeof(rs));
	T_EQ(dec(&kc_fetch_resp, 12, 1, rs12, sizeof(rs12), &rs), 0);
	T_EQ(rs.responses[0].partitions[0].current_leader.leader_epoch, 5);
	T_EQ(rs.responses[0].partitions[0].diverging_epoch.epoch, -1);
	T_EQ(rs.responses[0].partitions[0].snapshot_id.end_offset, -1);
	T_EQ(rs.responses[0].partitions[0].aborted_transactions_n, -1);
	T_EQ(rs.responses[0].partitions[0].records.len, 6);
	T_MEMEQ(rs.responses[0].partitions[0].records.p, "abcdef", 6);
	arena_free(&A);
}

static void test_list_offsets_create_delete(void)
{
	struct list_offsets_req lo;
	struct create_topics_req ct;
	struct delete_topics_req dt;
	static const uint8_t lo1[] = {
		0xff, 0xff, 0xff, 0xff,			/* replica_id -1 */
		0x00, 0x00, 0x00, 0x01,			/* topics: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x00, 0x01,			/* partitions: 1 */
		0x00, 0x00, 0x00, 0x03,			/* partition_index 3 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,	/* timestamp -2: earliest */
	};
	static const uint8_t ct5[] = {
		0x02,					/* topics: 1 */
		0x02, 't',
		0x00, 0x00, 0x00, 0x03,			/* num_partitions 3 */
		0x00, 0x01,				/* replication_factor 1 */
		0x01,					/* assignments: empty */
		0x02,					/* configs: 1 */
		0x0d, 'r', 'e', 't', 'e', 'n', 't', 'i', 'o', 'n', '.', 'm', 's',
		0x05, '1', '0', '0', '0',
		0x00, 0x00,				/* tags: config, topic */
		0x00, 0x00, 0x75, 0x30,			/* timeout_ms 30000 */
		0x01,					/* validate_only */
		0x00,
	};
	static const uint8_t dt1[] = {
		0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 'a', 0x00, 0x02, 'b', 'c',
		0x00, 0x00, 0x03, 0xe8,			/* timeout_ms 1000 */
	};
	static const uint8_t dt_null_elem[] = {
		0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x03, 0xe8,
	};

	arena_init(&A, 0);
	T_EQ(dec(&kc_list_offsets_req, 1, 0, lo1, sizeof(lo1), &lo), 0);
	T_EQ(lo.replica_id, -1);
	T_EQ(lo.isolation_level, 0);
	STR_EQ(lo.topics[0].name, "t");
	T_EQ(lo.topics[0].partitions[0].partition_index, 3);
	T_EQ(lo.topics[0].partitions[0].timestamp, -2);
	T_EQ(lo.topics[0].partitions[0].max_num_offsets, 1);
	T_EQ(lo.topics[0].partitions[0].current_leader_epoch, -1);

	T_EQ(dec(&kc_create_topics_req, 5, 1, ct5, sizeof(ct5), &ct), 0);
	T_EQ(ct.topics_n, 1);
	STR_EQ(ct.topics[0].name, "t");
	T_EQ(ct.topics[0].num_partitions, 3);
	T_EQ(ct.topics[0].replication_factor, 1);
	T_EQ(ct.topics[0].assignments_n, 0);
	T_EQ(ct.topics[0].configs_n, 1);
	STR_EQ(ct.topics[0].configs[0].name, "retention.ms");
	STR_EQ(ct.topics[0].configs[0].value, "1000");
	T_EQ(ct.timeout_ms, 30000);
	T_EQ(ct.validate_only, 1);

	T_EQ(dec(&kc_delete_topics_req, 1, 0, dt1, sizeof(dt1), &dt), 0);
	T_EQ(dt.topic_names_n, 2);
	STR_EQ(dt.topic_names[1], "bc");
	T_EQ(dt.topics_n, 0);
	T_EQ(dt.timeout_ms, 1000);
	T_EQ(dec(&kc_delete_topics_req, 1, 0, dt_null_elem, sizeof(dt_null_elem), &dt), SL_E_INVALID);
	arena_free(&A);
}

/* ---- headers ---- */

static void test_headers(void)
{
	struct kc_req_hdr h;
	const struct kc_api *api;
	struct sl_rd r;
	struct sl_wr w;
	static const uint8_t h1[] = {
		0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x03, 'c', 'l', 'i', 0xee,
	};
	static const uint8_t h2[] = {
		0x00, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x2b, 0xff, 0xff,
		0x01, 0x03, 0x01, 0xaa,			/* a tag the header skips */
		0xee,
	};
	static const uint8_t unknown[] = { 0x00, 0x63, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00 };
	static const uint8_t too_new[] = { 0x00, 0x12, 0x00, 0x04, 0x00, 0x00, 0x00, 0x06 };
	static const uint8_t negative[] = { 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x08 };
	static const uint8_t bad_id[] = { 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xfe };

	rd_init(&r, h1, sizeof(h1));
	T_EQ(kc_decode_request_header(&r, &h, &api), 0);
	T_CHECK(api == kc_api_find(3));
	T_EQ(h.api_version, 1);
	T_EQ(h.correlation_id, 42);
	STR_EQ(h.client_id, "cli");
	T_EQ(r.off, 13);

	rd_init(&r, h2, sizeof(h2));
	T_EQ(kc_decode_request_header(&r, &h, &api), 0);
	T_EQ(h.api_version, 9);
	T_EQ(h.correlation_id, 43);
	T_EQ(h.client_id.len, -1);
	T_EQ(r.off, 14);

	rd_init(&r, unknown, sizeof(unknown));
	T_EQ(kc_decode_request_header(&r, &h, &api), SL_E_NOTFOUND);
	T_CHECK(api == NULL);
	T_EQ(h.api_key, 99);
	T_EQ(h.correlation_id, 5);

	rd_init(&r, too_new, sizeof(too_new));
	T_EQ(kc_decode_request_header(&r, &h, &api), SL_E_NOTFOUND);
	T_CHECK(api == kc_api_find(18));
	T_EQ(h.api_version, 4);
	T_EQ(h.correlation_id, 6);

	rd_init(&r, negative, sizeof(negative));
	T_EQ(kc_decode_request_header(&r, &h, &api), SL_E_NOTFOUND);
	T_EQ(h.correlation_id, 8);

	rd_init(&r, bad_id, sizeof(bad_id));
	T_EQ(kc_decode_request_header(&r, &h, &api), SL_E_INVALID);
	for (size_t cut = 0; cut < 13; cut++) {
		rd_init(&r, h1, cut);
		T_CHECK(kc_decode_request_header(&r, &h, &api) == SL_E_SHORT);
	}
	for (size_t cut = 0; cut < 14; cut++) {
		rd_init(&r, h2, cut);
		T_CHECK(kc_decode_request_header(&r, &h, &api) == SL_E_SHORT);
	}

	/* ApiVersions keeps header v0 even when its body is flexible. */
	wr_init(&w, 0);
	T_EQ(kc_encode_response_header(&w, kc_api_find(18), 3, 0x01020304), 0);
	T_EQ(w.len, 4);
	T_EQ(w.p[3], 0x04);
	T_EQ(kc_encode_response_header(&w, kc_api_find(3), 9, 1), 0);
	T_EQ(w.len, 9);
	T_EQ(w.p[8], 0x00);
	T_EQ(kc_encode_response_header(&w, kc_api_find(3), 8, 1), 0);
	T_EQ(w.len, 13);
	wr_free(&w);
}

/* ---- hostile input ---- */

static void test_malformed(void)
{
	struct metadata_req m;
	struct produce_req p;
	struct api_versions_req av;
	struct api_versions_resp avr;
	static const uint8_t neg_count[] = { 0xff, 0xff, 0xff, 0xfe };
	static const uint8_t big_count[] = { 0x00, 0x00, 0x10, 0x00, 0x00, 0x01, 't' };
	static const uint8_t max_count[] = { 0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, 't' };
	static const uint8_t min_count[] = { 0x80, 0x00, 0x00, 0x00 };
	static const uint8_t compact_huge[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x00, 0x00, 0x00 };
	static const uint8_t compact_big[] = { 0x80, 0x80, 0x01, 0x02, 't', 0x00, 0x01, 0x00, 0x00, 0x00 };
	static const uint8_t varint6[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01, 0x00, 0x00, 0x00 };
	static const uint8_t neg_str[] = { 0x00, 0x00, 0x00, 0x01, 0xff, 0xfe };
	static const uint8_t long_str[] = { 0x00, 0x00, 0x00, 0x01, 0x00, 0x05, 't' };
	static const uint8_t p_null_name[] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x75, 0x30,
		0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	};
	static const uint8_t p_neg_records[] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x75, 0x30,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xfe,
	};
	static const uint8_t p_null_records[] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x75, 0x30,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
	};
	static const uint8_t tag_overrun[] = { 0x01, 0x01, 0x01, 0x00, 0x10, 0xaa, 0xbb };
	static const uint8_t tag_unknown[] = {
		0x01, 0x01, 0x03, 0x00, 0x02, 0xaa, 0xbb, 0x07, 0x00, 0x09, 0x01, 0xff,
	};
	static const uint8_t tag_order[] = { 0x01, 0x01, 0x02, 0x05, 0x00, 0x03, 0x00 };
	static const uint8_t tag_dup[] = { 0x01, 0x01, 0x02, 0x05, 0x00, 0x05, 0x00 };
	static const uint8_t tag_count[] = { 0x01, 0x01, 0x05, 0x05, 0x00 };
	/* ApiVersions v3 response whose int64 tag claims 2 bytes */
	static const uint8_t tag_short_known[] = {
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x05,
	};
	/* ... and one whose tag carries more than the field: extra bytes skipped */
	static const uint8_t tag_long_known[] = {
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x09,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xee,
	};
	struct arena small;
	struct sl_rd r;

	arena_init(&A, 0);
	T_EQ(dec(&kc_metadata_req, 1, 0, neg_count, sizeof(neg_count), &m), SL_E_INVALID);
	T_EQ(dec(&kc_metadata_req, 1, 0, big_count, sizeof(big_count), &m), SL_E_SHORT);
	T_EQ(dec(&kc_metadata_req, 1, 0, max_count, sizeof(max_count), &m), SL_E_SHORT);
	T_EQ(dec(&kc_metadata_req, 1, 0, min_count, sizeof(min_count), &m), SL_E_INVALID);
	T_EQ(dec(&kc_metadata_req, 9, 1, compact_huge, sizeof(compact_huge), &m), SL_E_INVALID);
	T_EQ(dec(&kc_metadata_req, 9, 1, compact_big, sizeof(compact_big), &m), SL_E_SHORT);
	T_EQ(dec(&kc_metadata_req, 9, 1, varint6, sizeof(varint6), &m), SL_E_INVALID);
	T_EQ(dec(&kc_metadata_req, 1, 0, neg_str, sizeof(neg_str), &m), SL_E_INVALID);
	T_EQ(dec(&kc_metadata_req, 1, 0, long_str, sizeof(long_str), &m), SL_E_SHORT);
	T_EQ(dec(&kc_produce_req, 3, 0, p_null_name, sizeof(p_null_name), &p), SL_E_INVALID);
	T_EQ(dec(&kc_produce_req, 3, 0, p_neg_records, sizeof(p_neg_records), &p), SL_E_INVALID);
	T_EQ(dec(&kc_produce_req, 3, 0, p_null_records, sizeof(p_null_records), &p), 0);
	T_EQ(p.topic_data[0].partition_data[0].records.len, -1);

	T_EQ(dec(&kc_api_versions_req, 3, 1, tag_overrun, sizeof(tag_overrun), &av), SL_E_SHORT);
	T_EQ(dec(&kc_api_versions_req, 3, 1, tag_unknown, sizeof(tag_unknown), &av), 0);
	T_EQ(av.client_software_name.len, 0);
	T_EQ(dec(&kc_api_versions_req, 3, 1, tag_order, sizeof(tag_order), &av), SL_E_INVALID);
	T_EQ(dec(&kc_api_versions_req, 3, 1, tag_dup, sizeof(tag_dup), &av), SL_E_INVALID);
	T_EQ(dec(&kc_api_versions_req, 3, 1, tag_count, sizeof(tag_count), &av), SL_E_SHORT);
	T_EQ(dec(&kc_api_versions_resp, 3, 1, tag_short_known, sizeof(tag_short_known), &avr), SL_E_SHORT);
	T_EQ(dec(&kc_api_versions_resp, 3, 1, tag_long_known, sizeof(tag_long_known), &avr), 0);
	T_EQ(avr.finalized_features_epoch, 7);
	arena_free(&A);

	/* the arena's cap refuses what the frame's size allowed */
	arena_init(&small, 64);
	{
		uint8_t big[4 + 1000 * 3];
		size_t n = 0;

		big[n++] = 0x00; big[n++] = 0x00; big[n++] = 0x03; big[n++] = 0xe8;
		for (int i = 0; i < 1000; i++) {
			big[n++] = 0x00; big[n++] = 0x01; big[n++] = 't';
		}
		rd_init(&r, big, n);
		T_EQ(kc_decode(&kc_metadata_req, 1, 0, &r, &small, &m), SL_E_NOMEM);
		arena_free(&small);
		arena_init(&small, 0);
		rd_init(&r, big, n);
		T_EQ(kc_decode(&kc_metadata_req, 1, 0, &r, &small, &m), 0);
		T_EQ(m.topics_n, 1000);
		arena_free(&small);
	}
}

/* Whole request frames (header and body) truncated at every byte. */
static void test_truncated_frames(void)
{
	struct kc_req_hdr h;
	const struct kc_api *api;
	struct sl_rd r;
	uint8_t body[256];

	arena_init(&A, 0);
	for (size_t cut = 0; cut < sizeof(f_av3); cut++) {
		int rc;

		rd_init(&r, f_av3, cut);
		rc = kc_decode_request_header(&r, &h, &api);
		if (rc == 0)
			rc = kc_decode(api->req, h.api_version, 1, &r, &A, body);
		T_CHECK(rc == SL_E_SHORT);
	}
	arena_free(&A);
}

/* ---- seed corpus for the fuzzer ---- */

static int write_frame(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")))
		return -1;
	fwrite(p, 1, n, f);
	return fclose(f);
}

/* One frame per API at its lowest and highest version, filled, plus the hand-written one. */
static int write_corpus(const char *dir)
{
	int rc = write_frame(dir, "api_versions-v3-hand", f_av3, sizeof(f_av3));

	arena_init(&A, 0);
	for (size_t i = 0; i < kc_napis; i++) {
		const struct kc_api *api = &kc_apis[i];
		int vs[2] = { api->vmin, api->vmax };

		for (int k = 0; k < 2; k++) {
			int v = vs[k], flex = v >= api->flex_min;
			void *in = arena_alloc(&A, api->req->size);
			struct sl_wr w;
			char name[64];

			fill(api->req, v, flex, 0, in, 0);
			wr_init(&w, 0);
			wr_i16(&w, api->key);
			wr_i16(&w, (int16_t)v);
			wr_i32(&w, 1000 + v);
			wr_i16(&w, 4);
			wr_bytes(&w, "seed", 4);
			if (flex)
				wr_u8(&w, 0);
			rc |= kc_encode(api->req, v, flex, in, &w);
			snprintf(name, sizeof(name), "%s-v%d", api->req->name, v);
			rc |= write_frame(dir, name, w.p, w.len);
			wr_free(&w);
		}
	}
	arena_free(&A);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--corpus") == 0)
		return write_corpus(argv[2]);
	T_RUN(test_descriptors);
	T_RUN(test_roundtrip_all);
	T_RUN(test_api_versions);
	T_RUN(test_metadata);
	T_RUN(test_metadata_response);
	T_RUN(test_produce);
	T_RUN(test_fetch);
	T_RUN(test_list_offsets_create_delete);
	T_RUN(test_headers);
	T_RUN(test_malformed);
	T_RUN(test_truncated_frames);
	return t_done();
}
