/*
 * h_topics.c - CreateTopics and DeleteTopics.
 *
 * Validation follows Kafka's order and error codes: name rules
 * (INVALID_TOPIC_EXCEPTION), a name given twice in one request
 * (INVALID_REQUEST), existing topics (TOPIC_ALREADY_EXISTS), partition counts
 * (INVALID_PARTITIONS), replica assignments naming other brokers
 * (INVALID_REPLICA_ASSIGNMENT), unknown or bad configs (INVALID_CONFIG).
 * validate_only runs every check and creates nothing.
 *
 * Both answer only once the topic change is durable in the metadata journal
 * (kafka_journal); a change the journal refuses is undone and reported as
 * KAFKA_STORAGE_ERROR.
 *
 * Replication factor: Sluice's durability comes from its WAL and the object
 * store, not from copies on other brokers, so any factor from 1 to 32767 is
 * accepted (tooling often asks for 3) and the topic is reported as it is:
 * one replica, this broker.
 */
#include <stdio.h>
#include "kreq.h"
#include "../kernel/log.h"

static void set_error(struct kreq *kr, struct create_topics_resp_creatable_topic_result *res,
		      int16_t code, const char *msg)
{
	res->error_code = code;
	if (kr->ver >= 1 && msg) {
		char *m = arena_strndup(&kr->a, msg, strlen(msg));
		res->error_message = m ? kstr(m) : KC_NULL_STR;
	}
}

/* Check one topic of the request; 0 when it can be created, with npart set. */
static int check_topic(struct kreq *kr, struct create_topics_req_creatable_topic *ct,
		       struct create_topics_resp_creatable_topic_result *res, int32_t *npart,
		       struct topic_config **cfgs)
{
	struct kafka *k = kr->k;
	const char *why;
	char msg[640];

	if (topic_name_check(ct->name.p, ct->name.len > 0 ? (size_t)ct->name.len : 0, &why) != 0) {
		set_error(kr, res, KERR_INVALID_TOPIC_EXCEPTION, why);
		return -1;
	}
	if (topic_find(k->reg, ct->name.p, (size_t)ct->name.len)) {
		snprintf(msg, sizeof(msg), "Topic '%.*s' already exists.", (int)ct->name.len, ct->name.p);
		set_error(kr, res, KERR_TOPIC_ALREADY_EXISTS, msg);
		return -1;
	}
	struct topic *other = topic_collides(k->reg, ct->name.p, (size_t)ct->name.len);
	if (other) {
		snprintf(msg, sizeof(msg), "Topic '%.*s' collides with existing topic '%s' ('.' and '_' are equivalent).",
			 (int)ct->name.len, ct->name.p, other->name);
		set_error(kr, res, KERR_INVALID_TOPIC_EXCEPTION, msg);
		return -1;
	}
	if (ct->assignments_n > 0) {
		if (ct->num_partitions != -1 || ct->replication_factor != -1) {
			set_error(kr, res, KERR_INVALID_REQUEST,
				  "Both numPartitions or replicationFactor and replicasAssignments were set.");
			return -1;
		}
		*npart = ct->assignments_n;
		for (int32_t i = 0; i < ct->assignments_n; i++) {
			struct create_topics_req_creatable_replica_assignment *as = &ct->assignments[i];
			int ok = as->partition_index >= 0 && as->partition_index < ct->assignments_n &&
				 as->broker_ids_n > 0;
			for (int32_t j = 0; j < i && ok; j++)
				ok = ct->assignments[j].partition_index != as->partition_index;
			for (int32_t j = 0; j < as->broker_ids_n && ok; j++)
				ok = as->broker_ids[j] == k->cfg->node_id;
			if (!ok) {
				set_error(kr, res, KERR_INVALID_REPLICA_ASSIGNMENT,
					  "Replica assignments must cover partitions 0..n-1 once each, on this broker.");
				return -1;
			}
		}
	} else {
		*npart = ct->num_partitions == -1 ? k->cfg->num_partitions : ct->num_partitions;
		int16_t rf = ct->replication_factor;
		if (rf == -1)
			rf = (int16_t)k->cfg->default_replication_factor;
		if (rf <= 0) {
			set_error(kr, res, KERR_INVALID_REPLICATION_FACTOR,
				  "Replication factor must be larger than 0, or -1 to use the default.");
			return -1;
		}
	}
	if (*npart <= 0 || *npart > TOPIC_PARTITIONS_MAX) {
		snprintf(msg, sizeof(msg), "Number of partitions must be between 1 and %d, or -1 to use the default.",
			 TOPIC_PARTITIONS_MAX);
		set_error(kr, res, KERR_INVALID_PARTITIONS, msg);
		return -1;
	}
	*cfgs = NULL;
	if (ct->configs_n > 0) {
		*cfgs = arena_calloc(&kr->a, (size_t)ct->configs_n, sizeof(**cfgs));
		if (!*cfgs) {
			set_error(kr, res, KERR_UNKNOWN_SERVER_ERROR, "out of memory");
			return -1;
		}
	}
	for (int32_t i = 0; i < ct->configs_n; i++) {
		char *key = kreq_str(kr, ct->configs[i].name);
		char *val = ct->configs[i].value.len < 0 ? NULL : kreq_str(kr, ct->configs[i].value);
		int rc = topic_config_check(key, val, &why);
		if (rc != 0) {
			snprintf(msg, sizeof(msg), rc == SL_E_NOTFOUND ? "Unknown topic config name: %s"
								      : "Invalid value for topic config %s: %s",
				 key, why);
			set_error(kr, res, KERR_INVALID_CONFIG, msg);
			return -1;
		}
		(*cfgs)[i].key = key;
		(*cfgs)[i].value = val;
	}
	return 0;
}

/* v5+: echo the topic's explicit configs back. */
static void describe_configs(struct kreq *kr, struct create_topics_resp_creatable_topic_result *res,
			     const struct topic_config *cfgs, int32_t n)
{
	res->configs_n = 0;
	if (n == 0)
		return;
	res->configs = KR_NEW(kr, create_topics_resp_creatable_topic_configs, n);
	if (!res->configs)
		return;
	res->configs_n = n;
	for (int32_t i = 0; i < n; i++) {
		res->configs[i].name = kstr(cfgs[i].key);
		res->configs[i].value = kstr(cfgs[i].value);
		res->configs[i].read_only = 0;
		res->configs[i].config_source = 1;	/* DYNAMIC_TOPIC_CONFIG */
		res->configs[i].is_sensitive = 0;
	}
}

/* One topic change waiting for the journal. */
struct tj {
	struct kjournal j;		/* first: the callback gets &tj->j */
	struct kreq *kr;
	int16_t *error_code;
};

struct tstate {
	int pending;			/* journal records not yet durable, +1 while building */
};

static void change_journaled(struct kjournal *j, int err)
{
	struct tj *t = (struct tj *)j;
	struct tstate *ts = t->kr->state;

	if (err) {
		log_error("kafka", "journaling a topic change failed: %s", sl_strerror(err));
		*t->error_code = KERR_KAFKA_STORAGE_ERROR;
	}
	if (--ts->pending == 0)
		kreq_reply(t->kr);
}

/* Journal the record in w for the answer at *error_code; 0 or an sl_err. */
static int journal(struct kreq *kr, struct sl_wr *w, int16_t *error_code)
{
	struct tstate *ts = kr->state;
	struct tj *t = arena_alloc(&kr->a, sizeof(*t));
	int rc;

	if (!t)
		rc = SL_E_NOMEM;
	else {
		t->kr = kr;
		t->error_code = error_code;
		t->j.done = change_journaled;
		rc = kafka_journal(kr->k, w, &t->j);
	}
	wr_free(w);
	if (rc == 0)
		ts->pending++;
	return rc;
}

static int start_changes(struct kreq *kr)
{
	struct tstate *ts = arena_alloc(&kr->a, sizeof(*ts));

	if (!ts)
		return -1;
	ts->pending = 1;
	kr->state = ts;
	return 0;
}

static void finish_changes(struct kreq *kr)
{
	struct tstate *ts = kr->state;

	if (--ts->pending == 0)
		kreq_reply(kr);
}

void h_create_topics(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct create_topics_req *rq = kr->body;
	struct create_topics_resp *rs = kr->resp;
	int32_t n = rq->topics_n > 0 ? rq->topics_n : 0;

	rs->topics_n = n;
	if (n == 0) {
		kreq_reply(kr);
		return;
	}
	rs->topics = KR_NEW(kr, create_topics_resp_creatable_topic_result, n);
	if (!rs->topics || start_changes(kr) != 0) {
		kreq_fail(kr, "CreateTopics response exceeds the request's memory cap");
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct create_topics_req_creatable_topic *ct = &rq->topics[i];
		struct create_topics_resp_creatable_topic_result *res = &rs->topics[i];
		struct topic_config *cfgs;
		int32_t npart = 0;
		int dup = 0;

		res->name = ct->name;
		for (int32_t j = 0; j < n && !dup; j++)
			dup = j != i && ct->name.len == rq->topics[j].name.len &&
			      memcmp(ct->name.p, rq->topics[j].name.p, (size_t)(ct->name.len > 0 ? ct->name.len : 0)) == 0;
		if (dup) {
			set_error(kr, res, KERR_INVALID_REQUEST, "Duplicate topic name in the request.");
			continue;
		}
		if (check_topic(kr, ct, res, &npart, &cfgs) != 0)
			continue;
		res->num_partitions = npart;
		res->replication_factor = 1;
		describe_configs(kr, res, cfgs, ct->configs_n);
		if (rq->validate_only)
			continue;
		struct topic *t;
		int rc = topic_create(k->reg, ct->name.p, (size_t)ct->name.len, npart, cfgs,
				      ct->configs_n, k->cfg->message_max_bytes, NULL, &t);
		if (rc != 0) {
			set_error(kr, res, KERR_UNKNOWN_SERVER_ERROR, sl_strerror(rc));
			continue;
		}
		struct sl_wr w;
		wr_init(&w, 0);
		(void)topic_journal_create(t, &w);
		rc = journal(kr, &w, &res->error_code);
		if (rc != 0) {
			topic_delete(k->reg, t);
			set_error(kr, res, KERR_KAFKA_STORAGE_ERROR, "the metadata journal refused the topic");
			log_warn("kafka", "cannot journal topic creation: %s", sl_strerror(rc));
			continue;
		}
		memcpy(res->topic_id.b, t->id, 16);
		log_info("kafka", "created topic %s with %d partitions", t->name, npart);
	}
	finish_changes(kr);
}

void h_delete_topics(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct delete_topics_req *rq = kr->body;
	struct delete_topics_resp *rs = kr->resp;
	int by_state = kr->ver >= 6;
	int32_t n = by_state ? rq->topics_n : rq->topic_names_n;

	if (n < 0)
		n = 0;
	rs->responses_n = n;
	if (n == 0) {
		kreq_reply(kr);
		return;
	}
	rs->responses = KR_NEW(kr, delete_topics_resp_deletable_topic_result, n);
	if (!rs->responses || start_changes(kr) != 0) {
		kreq_fail(kr, "DeleteTopics response exceeds the request's memory cap");
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct delete_topics_resp_deletable_topic_result *res = &rs->responses[i];
		struct kc_str name = by_state ? rq->topics[i].name : rq->topic_names[i];
		struct topic *t = NULL;

		res->name = name;
		if (by_state && name.len < 0) {
			res->topic_id = rq->topics[i].topic_id;
			t = topic_find_id(k->reg, rq->topics[i].topic_id.b);
			if (!t) {
				res->error_code = KERR_UNKNOWN_TOPIC_ID;
				continue;
			}
			res->name = kstr(kreq_str(kr, kstr(t->name)));
		} else {
			t = name.len > 0 ? topic_find(k->reg, name.p, (size_t)name.len) : NULL;
			if (!t) {
				res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
		}
		memcpy(res->topic_id.b, t->id, 16);
		struct sl_wr w;
		wr_init(&w, 0);
		(void)topic_journal_delete(t, &w);
		int rc = journal(kr, &w, &res->error_code);
		if (rc != 0) {
			res->error_code = KERR_KAFKA_STORAGE_ERROR;
			log_warn("kafka", "cannot journal deletion of %s: %s", t->name, sl_strerror(rc));
			continue;
		}
		log_info("kafka", "deleting topic %s", t->name);
		grp_offsets_drop_topic(k->gc, t->name);
		topic_delete(k->reg, t);
	}
	finish_changes(kr);
}
