/*
 * h_meta.c - ApiVersions and Metadata: what a client asks before anything else.
 *
 * ApiVersions lists the rows of the API table in server.c, nothing more.  Its
 * v3 request carries the client's software name and version, which Kafka
 * validates against [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?; a mismatch is
 * INVALID_REQUEST, after which librdkafka retries with v0.
 *
 * Metadata describes this one broker as leader and only replica of every
 * partition, with leader epoch 0.  A request for topics that do not exist
 * creates them when auto.create.topics.enable is set and the request allows
 * it (always before v4, the allow_auto_topic_creation flag from v4).
 */
#include <limits.h>
#include "kreq.h"

static int software_ok(struct kc_str s)
{
	if (s.len <= 0)
		return s.len == 0 ? 0 : 1;	/* absent (null) is fine, empty is not */
	for (int32_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		int edge = i == 0 || i == s.len - 1;
		if (!alnum && (edge || (c != '-' && c != '.')))
			return 0;
	}
	return 1;
}

void api_versions_fill(struct kreq *kr)
{
	struct api_versions_resp *rs = kr->resp;

	rs->api_keys = KR_NEW(kr, api_versions_resp_api_version, (int32_t)nkapis);
	if (!rs->api_keys) {
		rs->error_code = KERR_UNKNOWN_SERVER_ERROR;
		return;
	}
	rs->api_keys_n = (int32_t)nkapis;
	for (size_t i = 0; i < nkapis; i++) {
		rs->api_keys[i].api_key = kapis[i].key;
		rs->api_keys[i].min_version = kapis[i].adv_min;
		rs->api_keys[i].max_version = kapis[i].adv_max;
	}
}

void h_api_versions(struct kreq *kr)
{
	struct api_versions_req *rq = kr->body;
	struct api_versions_resp *rs = kr->resp;

	api_versions_fill(kr);
	if (kr->ver >= 3 && (!software_ok(rq->client_software_name) ||
			     !software_ok(rq->client_software_version)))
		rs->error_code = KERR_INVALID_REQUEST;
	kreq_reply(kr);
}

/* Describe topic t in rt; 0 or -1 when the arena is exhausted. */
static int describe_topic(struct kreq *kr, struct metadata_resp_metadata_response_topic *rt,
			  const struct topic *t)
{
	int32_t node = kr->k->cfg->node_id;

	rt->error_code = 0;
	rt->name = kstr(t->name);
	memcpy(rt->topic_id.b, t->id, 16);
	rt->is_internal = 0;
	rt->partitions = KR_NEW(kr, metadata_resp_metadata_response_partition, t->npart);
	if (!rt->partitions)
		return -1;
	rt->partitions_n = t->npart;
	for (int32_t i = 0; i < t->npart; i++) {
		struct metadata_resp_metadata_response_partition *p = &rt->partitions[i];
		int32_t *nodes = arena_calloc(&kr->a, 2, sizeof(int32_t));
		if (!nodes)
			return -1;
		nodes[0] = nodes[1] = node;
		p->error_code = 0;
		p->partition_index = i;
		p->leader_id = node;
		p->leader_epoch = 0;
		p->replica_nodes = &nodes[0];
		p->replica_nodes_n = 1;
		p->isr_nodes = &nodes[1];
		p->isr_nodes_n = 1;
		p->offline_replicas_n = 0;
	}
	return 0;
}

void h_metadata(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct metadata_req *rq = kr->body;
	struct metadata_resp *rs = kr->resp;
	int all = kr->ver == 0 ? rq->topics_n == 0 : rq->topics_n == -1;
	int auto_ok = kr->ver < 4 || rq->allow_auto_topic_creation;

	rs->brokers = KR_NEW(kr, metadata_resp_metadata_response_broker, 1);
	if (!rs->brokers)
		goto nomem;
	rs->brokers_n = 1;
	rs->brokers[0].node_id = k->cfg->node_id;
	rs->brokers[0].host = kstr(k->adv_host);
	rs->brokers[0].port = k->adv_port;
	rs->brokers[0].rack = KC_NULL_STR;
	rs->cluster_id = kstr(k->cfg->cluster_id);
	rs->controller_id = k->cfg->node_id;

	int32_t n = all ? registry_count(k->reg) : (rq->topics_n > 0 ? rq->topics_n : 0);
	if (n > 0) {
		rs->topics = KR_NEW(kr, metadata_resp_metadata_response_topic, n);
		if (!rs->topics)
			goto nomem;
	}
	rs->topics_n = n;
	if (all) {
		int32_t i = 0;
		for (struct topic *t = topic_first(k->reg); t && i < n; t = t->next, i++)
			if (describe_topic(kr, &rs->topics[i], t) != 0)
				goto nomem;
		kreq_reply(kr);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct metadata_req_metadata_request_topic *want = &rq->topics[i];
		struct metadata_resp_metadata_response_topic *rt = &rs->topics[i];
		struct topic *t;
		int16_t err = 0;

		rt->name = want->name;
		rt->topic_id = want->topic_id;
		if (want->name.len < 0) {
			/* v10+: addressed by id only. */
			t = topic_find_id(k->reg, want->topic_id.b);
			if (!t) {
				rt->error_code = KERR_UNKNOWN_TOPIC_ID;
				continue;
			}
		} else {
			t = topic_find(k->reg, want->name.p, (size_t)want->name.len);
			if (!t && auto_ok) {
				t = kafka_auto_create(k, want->name.p, (size_t)want->name.len, &err);
			} else if (!t) {
				const char *why;
				err = topic_name_check(want->name.p, (size_t)want->name.len, &why) == 0
					      ? KERR_UNKNOWN_TOPIC_OR_PARTITION
					      : KERR_INVALID_TOPIC_EXCEPTION;
			}
			if (!t) {
				rt->error_code = err;
				continue;
			}
		}
		if (describe_topic(kr, rt, t) != 0)
			goto nomem;
	}
	kreq_reply(kr);
	return;
nomem:
	kreq_fail(kr, "Metadata response exceeds the request's memory cap");
}
