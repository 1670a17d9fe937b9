/*
 * h_commit.c - OffsetCommit, OffsetFetch and OffsetDelete: committed offsets
 * on the wire.
 *
 * OffsetCommit: the engine checks the member (grp_commit_check); each
 * partition is then checked on its own (the topic and partition exist, the
 * metadata string fits offset.metadata.max.bytes); the valid ones go into one
 * journal record, and only once that record is durable are they applied and
 * the commit answered.  A commit whose connection closed meanwhile is still
 * applied: it is durable, and the client may have seen nothing.
 *
 * OffsetFetch: v0-7 ask for one group, v8 for several; topics null (v2+)
 * means every committed offset of the group.  A partition with no commit
 * answers offset -1 and empty metadata with no error, as Kafka does.
 *
 * OffsetDelete: the group must exist; a group with members may only drop
 * offsets of topics none of its members subscribes to (consumer protocol),
 * else GROUP_SUBSCRIBED_TO_TOPIC; a non-consumer group with members answers
 * NON_EMPTY_GROUP.  Deletions are journaled and applied once durable.
 */
#include <stdlib.h>
#include <string.h>
#include "kreq.h"
#include "../kernel/log.h"

/* The topic's partition count, or -1 if it does not exist. */
static int32_t partitions_of(struct kreq *kr, struct kc_str name)
{
	struct topic *t = name.len > 0 ? topic_find(kr->k->reg, name.p, (size_t)name.len) : NULL;

	return t ? t->npart : -1;
}

/* ---- OffsetCommit ---- */

struct commit_state {
	struct kjournal j;
	struct kreq *kr;
	const char *group;
	struct grp_offset *offs;	/* the valid partitions, in the request's arena */
	int16_t **errs;			/* their error slots in the response */
	int n;
};

static void commit_done(struct kjournal *j, int err)
{
	struct commit_state *cs = j->arg;
	struct kreq *kr = cs->kr;

	if (err)
		log_warn("groups", "journaling a commit for group %s failed: %s", cs->group,
			 sl_strerror(err));
	for (int i = 0; i < cs->n; i++) {
		if (err)
			*cs->errs[i] = KERR_COORDINATOR_NOT_AVAILABLE;
		else if (grp_offset_put(kr->k->gc, cs->group, &cs->offs[i]) != 0)
			*cs->errs[i] = KERR_UNKNOWN_SERVER_ERROR;
	}
	kr->cancel = NULL;
	kreq_reply(kr);
}

static void commit_cancel(struct kreq *kr)
{
	(void)kr;	/* the journal record completes and commit_done frees kr */
}

void h_offset_commit(struct kreq *kr)
{
	struct offset_commit_req *rq = kr->body;
	struct offset_commit_resp *rs = kr->resp;
	struct kafka *k = kr->k;
	int64_t wall = loop_wall_ms();
	int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;
	int total = 0;

	for (int32_t i = 0; i < nt; i++)
		total += rq->topics[i].partitions_n > 0 ? rq->topics[i].partitions_n : 0;
	struct commit_state *cs = arena_calloc(&kr->a, 1, sizeof(*cs));
	if (!cs || (nt > 0 && !(rs->topics = KR_NEW(kr, offset_commit_resp_offset_commit_response_topic, nt))) ||
	    (total > 0 && (!(cs->offs = arena_calloc(&kr->a, (size_t)total, sizeof(*cs->offs))) ||
			   !(cs->errs = arena_calloc(&kr->a, (size_t)total, sizeof(*cs->errs)))))) {
		kreq_fail(kr, "OffsetCommit request exceeds its memory cap");
		return;
	}
	rs->topics_n = nt;
	cs->kr = kr;
	cs->group = kreq_str(kr, rq->group_id);

	int16_t gerr = rq->group_id.len > GJ_GROUP_ID_MAX ? KERR_INVALID_GROUP_ID :
		       grp_commit_check(k->gc, cs->group,
					kr->ver >= 1 ? kreq_str(kr, rq->member_id) : "",
					kr->ver >= 7 ? (rq->group_instance_id.len >= 0 && rq->group_instance_id.p
								? kreq_str(kr, rq->group_instance_id) : NULL)
						     : NULL,
					kr->ver >= 1 ? rq->generation_id_or_member_epoch : -1,
					kgroups_now(k));
	kgroups_kick(k);

	for (int32_t i = 0; i < nt; i++) {
		const struct offset_commit_req_offset_commit_request_topic *t = &rq->topics[i];
		struct offset_commit_resp_offset_commit_response_topic *o = &rs->topics[i];
		int32_t np = t->partitions_n > 0 ? t->partitions_n : 0;
		int32_t nparts = partitions_of(kr, t->name);

		o->name = t->name;
		if (np > 0 && !(o->partitions = KR_NEW(kr, offset_commit_resp_offset_commit_response_partition, np))) {
			kreq_fail(kr, "OffsetCommit response exceeds the request's memory cap");
			return;
		}
		o->partitions_n = np;
		for (int32_t j = 0; j < np; j++) {
			const struct offset_commit_req_offset_commit_request_partition *p = &t->partitions[j];
			struct offset_commit_resp_offset_commit_response_partition *op = &o->partitions[j];
			int32_t mlen = p->committed_metadata.len > 0 ? p->committed_metadata.len : 0;

			op->partition_index = p->partition_index;
			if (gerr != KERR_NONE) {
				op->error_code = gerr;
				continue;
			}
			if (p->partition_index < 0 || p->partition_index >= nparts) {
				op->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if (mlen > k->cfg->offset_metadata_max_bytes) {
				op->error_code = KERR_OFFSET_METADATA_TOO_LARGE;
				continue;
			}
			struct grp_offset *g = &cs->offs[cs->n];
			g->topic = kreq_str(kr, t->name);
			g->partition = p->partition_index;
			g->offset = p->committed_offset;
			g->leader_epoch = kr->ver >= 6 ? p->committed_leader_epoch : -1;
			g->metadata = kreq_str(kr, p->committed_metadata);
			g->commit_ms = wall;
			g->expire_ms = -1;
			/* v1 may name the commit time; v2-4 a retention of their own. */
			if (kr->ver == 1 && p->commit_timestamp != -1) {
				g->commit_ms = p->commit_timestamp;
				g->expire_ms = wall + (int64_t)k->cfg->offsets_retention_minutes * 60000;
			}
			if (kr->ver >= 2 && kr->ver <= 4 && rq->retention_time_ms != -1)
				g->expire_ms = wall + rq->retention_time_ms;
			cs->errs[cs->n++] = &op->error_code;
		}
	}
	if (cs->n == 0) {
		kreq_reply(kr);
		return;
	}
	struct gjournal gj;
	gj_begin(&gj, 1, cs->group);
	for (int i = 0; i < cs->n; i++)
		gj_commit(&gj, &cs->offs[i]);
	cs->j.done = commit_done;
	cs->j.arg = cs;
	kr->state = cs;
	kr->cancel = commit_cancel;
	int rc = gj_submit(k, &gj, &cs->j);
	if (rc != 0) {
		log_warn("groups", "cannot journal a commit for group %s: %s", cs->group, sl_strerror(rc));
		for (int i = 0; i < cs->n; i++)
			*cs->errs[i] = rc == SL_E_TOOBIG ? KERR_INVALID_COMMIT_OFFSET_SIZE
							 : KERR_COORDINATOR_NOT_AVAILABLE;
		kr->cancel = NULL;
		kreq_reply(kr);
	}
}

/* ---- OffsetFetch ---- */

/* One answered partition: its commit, or NULL for none. */
struct fetched {
	const char *topic;
	int32_t partition;
	const struct grp_offset *o;
};

static int cmp_offset(const void *a, const void *b)
{
	const struct grp_offset *x = *(const struct grp_offset *const *)a;
	const struct grp_offset *y = *(const struct grp_offset *const *)b;
	int c = strcmp(x->topic, y->topic);

	return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/*
 * What one group's fetch answers, flattened: every requested partition, or
 * (all) every committed one sorted by topic and partition.  Topics are runs of
 * equal names.  Returns the count, or -1 when the arena cap is reached.
 */
static int collect(struct kreq *kr, const char *gid, int all, const struct kc_str *names,
		   const int32_t *const *parts, const int32_t *nparts, int32_t ntopics,
		   struct fetched **out)
{
	struct group *g = grp_find(kr->k->gc, gid);
	int n = 0;

	if (all) {
		if (!g || g->noffsets == 0)
			return 0;
		const struct grp_offset **v = arena_calloc(&kr->a, (size_t)g->noffsets, sizeof(*v));
		*out = arena_calloc(&kr->a, (size_t)g->noffsets, sizeof(**out));
		if (!v || !*out)
			return -1;
		for (const struct grp_offset *o = g->offsets; o && n < g->noffsets; o = o->next)
			v[n++] = o;
		qsort(v, (size_t)n, sizeof(*v), cmp_offset);
		for (int i = 0; i < n; i++)
			(*out)[i] = (struct fetched){ v[i]->topic, v[i]->partition, v[i] };
		return n;
	}
	int total = 0;
	for (int32_t i = 0; i < ntopics; i++)
		total += nparts[i] > 0 ? nparts[i] : 0;
	if (total == 0)
		return 0;
	if (!(*out = arena_calloc(&kr->a, (size_t)total, sizeof(**out))))
		return -1;
	for (int32_t i = 0; i < ntopics; i++) {
		const char *topic = kreq_str(kr, names[i]);
		for (int32_t j = 0; j < nparts[i]; j++) {
			int32_t p = parts[i][j];
			(*out)[n++] = (struct fetched){ topic, p, g ? grp_offset_find(g, topic, p) : NULL };
		}
	}
	return n;
}

/* Number of topic runs in f[0..n). */
static int32_t topic_runs(const struct fetched *f, int n)
{
	int32_t runs = 0;

	for (int i = 0; i < n; i++)
		if (i == 0 || strcmp(f[i].topic, f[i - 1].topic) != 0)
			runs++;
	return runs;
}

/*
 * Encode f into the response types of v0-7 (TOPIC, PART) or v8; the two
 * differ only in their names, so one macro writes both.
 */
#define FILL_TOPICS(kr, f, n, TOPIC, PART, topics_out, topics_n_out)                          \
	do {                                                                                   \
		int32_t runs_ = topic_runs((f), (n));                                            \
		(topics_n_out) = runs_;                                                          \
		if (runs_ > 0 && !((topics_out) = KR_NEW((kr), TOPIC, runs_)))                  \
			goto nomem;                                                              \
		int t_ = -1;                                                                     \
		for (int i_ = 0; i_ < (n); i_++) {                                               \
			if (i_ == 0 || strcmp((f)[i_].topic, (f)[i_ - 1].topic) != 0) {                      \
				int c_ = 1;                                                      \
				while (i_ + c_ < (n) && strcmp((f)[i_ + c_].topic, (f)[i_].topic) == 0)     \
					c_++;                                                    \
				t_++;                                                            \
				(topics_out)[t_].name = kstr((f)[i_].topic);                     \
				(topics_out)[t_].partitions = KR_NEW((kr), PART, c_);            \
				if (!(topics_out)[t_].partitions)                                \
					goto nomem;                                              \
				(topics_out)[t_].partitions_n = 0;                               \
			}                                                                        \
			struct PART *p_ = &(topics_out)[t_].partitions[(topics_out)[t_].partitions_n++]; \
			const struct grp_offset *o_ = (f)[i_].o;                                 \
			p_->partition_index = (f)[i_].partition;                                 \
			p_->committed_offset = o_ ? o_->offset : -1;                             \
			p_->committed_leader_epoch = o_ ? o_->leader_epoch : -1;                 \
			p_->metadata = kstr(o_ ? kreq_str((kr), kstr(o_->metadata)) : "");      \
			p_->error_code = KERR_NONE;                                              \
		}                                                                                \
	} while (0)

void h_offset_fetch(struct kreq *kr)
{
	struct offset_fetch_req *rq = kr->body;
	struct offset_fetch_resp *rs = kr->resp;
	struct fetched *f = NULL;

	if (kr->ver < 8) {
		int all = kr->ver >= 2 && rq->topics_n < 0;
		int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;
		struct kc_str *names = nt ? arena_calloc(&kr->a, (size_t)nt, sizeof(*names)) : NULL;
		const int32_t **parts = nt ? arena_calloc(&kr->a, (size_t)nt, sizeof(*parts)) : NULL;
		int32_t *np = nt ? arena_calloc(&kr->a, (size_t)nt, sizeof(*np)) : NULL;

		if (nt && (!names || !parts || !np))
			goto nomem;
		for (int32_t i = 0; i < nt; i++) {
			names[i] = rq->topics[i].name;
			parts[i] = rq->topics[i].partition_indexes;
			np[i] = rq->topics[i].partition_indexes_n;
		}
		int n = collect(kr, kreq_str(kr, rq->group_id), all, names, parts, np, nt, &f);
		if (n < 0)
			goto nomem;
		FILL_TOPICS(kr, f, n, offset_fetch_resp_offset_fetch_response_topic,
			    offset_fetch_resp_offset_fetch_response_partition, rs->topics, rs->topics_n);
		rs->error_code = KERR_NONE;
		kreq_reply(kr);
		return;
	}
	int32_t ng = rq->groups_n > 0 ? rq->groups_n : 0;
	if (ng > 0 && !(rs->groups = KR_NEW(kr, offset_fetch_resp_offset_fetch_response_group, ng)))
		goto nomem;
	rs->groups_n = ng;
	for (int32_t g = 0; g < ng; g++) {
		const struct offset_fetch_req_offset_fetch_request_group *rg = &rq->groups[g];
		struct offset_fetch_resp_offset_fetch_response_group *og = &rs->groups[g];
		int all = rg->topics_n < 0;
		int32_t nt = rg->topics_n > 0 ? rg->topics_n : 0;
		struct kc_str *names = nt ? arena_calloc(&kr->a, (size_t)nt, sizeof(*names)) : NULL;
		const int32_t **parts = nt ? arena_calloc(&kr->a, (size_t)nt, sizeof(*parts)) : NULL;
		int32_t *np = nt ? arena_calloc(&kr->a, (size_t)nt, sizeof(*np)) : NULL;

		if (nt && (!names || !parts || !np))
			goto nomem;
		for (int32_t i = 0; i < nt; i++) {
			names[i] = rg->topics[i].name;
			parts[i] = rg->topics[i].partition_indexes;
			np[i] = rg->topics[i].partition_indexes_n;
		}
		og->group_id = rg->group_id;
		og->error_code = KERR_NONE;
		int n = collect(kr, kreq_str(kr, rg->group_id), all, names, parts, np, nt, &f);
		if (n < 0)
			goto nomem;
		FILL_TOPICS(kr, f, n, offset_fetch_resp_offset_fetch_response_topics,
			    offset_fetch_resp_offset_fetch_response_partitions, og->topics, og->topics_n);
	}
	kreq_reply(kr);
	return;
nomem:
	kreq_fail(kr, "OffsetFetch response exceeds the request's memory cap");
}

/* ---- OffsetDelete ---- */

/*
 * Does any member of a consumer group subscribe to topic?  A member's
 * metadata for the chosen protocol is a ConsumerProtocolSubscription:
 * version i16, then topics as an i32 count of i16-length strings (every
 * version starts so).  Unreadable metadata counts as subscribed: better to
 * refuse a deletion than to drop offsets a member is using.
 */
static int subscribed(const struct group *g, const char *topic)
{
	size_t tl = strlen(topic);

	for (const struct grp_member *m = g->members; m; m = m->next) {
		size_t len = 0;
		const uint8_t *meta = g->protocol ? grp_member_meta(m, g->protocol, &len) : NULL;
		struct sl_rd r;
		int16_t ver;
		int32_t n;

		if (!meta)
			return 1;
		rd_init(&r, meta, len);
		if (rd_i16(&r, &ver) || rd_i32(&r, &n) || n < 0)
			return 1;
		for (int32_t i = 0; i < n; i++) {
			int16_t sl;
			const uint8_t *s;
			if (rd_i16(&r, &sl) || sl < 0 || rd_bytes(&r, (size_t)sl, &s))
				return 1;
			if ((size_t)sl == tl && memcmp(s, topic, tl) == 0)
				return 1;
		}
	}
	return 0;
}

struct odel_state {
	struct kjournal j;
	struct kreq *kr;
	const char *group;
	const char **topics;
	int32_t *parts;
	int n;
};

static void odel_done(struct kjournal *j, int err)
{
	struct odel_state *os = j->arg;
	struct kreq *kr = os->kr;

	if (err) {
		((struct offset_delete_resp *)kr->resp)->error_code = KERR_KAFKA_STORAGE_ERROR;
		log_warn("groups", "journaling an offset deletion failed: %s", sl_strerror(err));
	} else {
		for (int i = 0; i < os->n; i++)
			grp_offset_del(kr->k->gc, os->group, os->topics[i], os->parts[i]);
	}
	kr->cancel = NULL;
	kreq_reply(kr);
}

void h_offset_delete(struct kreq *kr)
{
	struct offset_delete_req *rq = kr->body;
	struct offset_delete_resp *rs = kr->resp;
	const char *gid = kreq_str(kr, rq->group_id);
	struct group *g = grp_find(kr->k->gc, gid);
	int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;
	int total = 0;

	if (!g) {
		rs->error_code = KERR_GROUP_ID_NOT_FOUND;
		kreq_reply(kr);
		return;
	}
	int consumer = g->protocol_type && strcmp(g->protocol_type, "consumer") == 0;
	if (g->nmembers > 0 && !consumer) {
		rs->error_code = KERR_NON_EMPTY_GROUP;
		kreq_reply(kr);
		return;
	}
	for (int32_t i = 0; i < nt; i++)
		total += rq->topics[i].partitions_n > 0 ? rq->topics[i].partitions_n : 0;
	struct odel_state *os = arena_calloc(&kr->a, 1, sizeof(*os));
	if (!os || (nt > 0 && !(rs->topics = KR_NEW(kr, offset_delete_resp_offset_delete_response_topic, nt))) ||
	    (total > 0 && (!(os->topics = arena_calloc(&kr->a, (size_t)total, sizeof(*os->topics))) ||
			   !(os->parts = arena_calloc(&kr->a, (size_t)total, sizeof(*os->parts)))))) {
		kreq_fail(kr, "OffsetDelete request exceeds its memory cap");
		return;
	}
	rs->topics_n = nt;
	os->kr = kr;
	os->group = gid;
	for (int32_t i = 0; i < nt; i++) {
		const struct offset_delete_req_offset_delete_request_topic *t = &rq->topics[i];
		struct offset_delete_resp_offset_delete_response_topic *o = &rs->topics[i];
		int32_t np = t->partitions_n > 0 ? t->partitions_n : 0;
		int32_t nparts = partitions_of(kr, t->name);
		const char *topic = kreq_str(kr, t->name);
		int busy = g->nmembers > 0 && subscribed(g, topic);

		o->name = t->name;
		if (np > 0 && !(o->partitions = KR_NEW(kr, offset_delete_resp_offset_delete_response_partition, np))) {
			kreq_fail(kr, "OffsetDelete response exceeds the request's memory cap");
			return;
		}
		o->partitions_n = np;
		for (int32_t j = 0; j < np; j++) {
			int32_t p = t->partitions[j].partition_index;

			o->partitions[j].partition_index = p;
			if (p < 0 || p >= nparts)
				o->partitions[j].error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (busy)
				o->partitions[j].error_code = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
			else {
				os->topics[os->n] = topic;
				os->parts[os->n++] = p;
			}
		}
	}
	if (os->n == 0) {
		kreq_reply(kr);
		return;
	}
	struct gjournal gj;
	gj_begin(&gj, 2, gid);
	for (int i = 0; i < os->n; i++)
		gj_delete(&gj, os->topics[i], os->parts[i]);
	os->j.done = odel_done;
	os->j.arg = os;
	kr->state = os;
	kr->cancel = commit_cancel;
	if (gj_submit(kr->k, &gj, &os->j) != 0) {
		rs->error_code = KERR_KAFKA_STORAGE_ERROR;
		kr->cancel = NULL;
		kreq_reply(kr);
	}
}
