/*
 * h_group.c - JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups,
 * DescribeGroups and DeleteGroups: the wire side of the group coordinator.
 *
 * Each handler turns its request into the engine's argument struct
 * (kafka/group.h), calls the engine and encodes what comes back.  JoinGroup
 * and SyncGroup may wait (until the rebalance completes, until the leader
 * assigns): their state holds the engine's wait, and a connection that closes
 * meanwhile cancels the wait and frees the request.  Strings handed to the
 * engine live in the request's arena; the engine copies what it keeps, and
 * its results are copied into the response before the callback returns.
 *
 * Group ids: JoinGroup, SyncGroup, Heartbeat and LeaveGroup refuse "" with
 * INVALID_GROUP_ID; DescribeGroups and DeleteGroups accept it as Kafka does
 * (it names no group, so it is Dead or not found).
 */
#include <stdlib.h>
#include <string.h>
#include "kreq.h"
#include "../kernel/log.h"

/* NULL for a null or absent wire string, else a NUL-terminated copy. */
static const char *opt_str(struct kreq *kr, struct kc_str s)
{
	return s.len < 0 || !s.p ? NULL : kreq_str(kr, s);
}

/* A NUL-terminated copy into the response's arena, as a wire string. */
static struct kc_str out_str(struct kreq *kr, const char *s)
{
	return s ? kstr(kreq_str(kr, kstr(s))) : KC_NULL_STR;
}

/* Bytes copied into the request's arena (the engine's may not outlive the callback). */
static struct kc_bytes out_bytes(struct kreq *kr, const uint8_t *p, size_t n)
{
	struct kc_bytes b = { NULL, 0 };

	if (n == 0) {
		b.p = (const uint8_t *)"";
		return b;
	}
	uint8_t *q = arena_alloc(&kr->a, n);
	if (q) {
		memcpy(q, p, n);
		b.p = q;
		b.len = (int32_t)n;
	}
	return b;
}

/* ---- JoinGroup ---- */

struct join_state {
	struct grp_join_wait w;
	struct kreq *kr;
};

static void join_done(struct grp_join_wait *w, const struct grp_join_result *r)
{
	struct join_state *js = w->arg;
	struct kreq *kr = js->kr;
	struct join_group_resp *rs = kr->resp;

	kr->cancel = NULL;
	rs->error_code = r->error;
	rs->generation_id = r->generation;
	rs->protocol_type = out_str(kr, r->protocol_type);
	/* Before v7 the protocol name is not nullable. */
	rs->protocol_name = out_str(kr, r->protocol ? r->protocol : (kr->ver < 7 ? "" : NULL));
	rs->leader = out_str(kr, r->leader ? r->leader : "");
	rs->member_id = out_str(kr, r->member_id ? r->member_id : "");
	if (r->nmembers > 0) {
		rs->members = KR_NEW(kr, join_group_resp_join_group_response_member, r->nmembers);
		if (!rs->members) {
			kreq_fail(kr, "JoinGroup response exceeds the request's memory cap");
			return;
		}
		rs->members_n = r->nmembers;
		for (int i = 0; i < r->nmembers; i++) {
			const struct grp_member *m = r->members[i];
			struct join_group_resp_join_group_response_member *o = &rs->members[i];
			size_t len = 0;
			const uint8_t *meta = grp_member_meta(m, r->protocol, &len);

			o->member_id = out_str(kr, m->id);
			o->group_instance_id = out_str(kr, m->instance_id);
			o->metadata = out_bytes(kr, meta, len);
		}
	}
	kreq_reply(kr);
}

static void join_cancel(struct kreq *kr)
{
	struct join_state *js = kr->state;

	grp_join_cancel(kr->k->gc, &js->w);
	kreq_reply(kr);		/* the connection is gone: this only frees */
}

void h_join_group(struct kreq *kr)
{
	struct join_group_req *rq = kr->body;
	struct kafka *k = kr->k;
	struct grp_join_args a = { 0 };

	a.group_id = kreq_str(kr, rq->group_id);
	if (!a.group_id[0] || rq->group_id.len > GJ_GROUP_ID_MAX) {
		struct join_state js0 = { .kr = kr };
		struct grp_join_result r = { .error = KERR_INVALID_GROUP_ID, .generation = -1 };

		js0.w.arg = &js0;
		join_done(&js0.w, &r);
		return;
	}
	a.member_id = kreq_str(kr, rq->member_id);
	a.instance_id = opt_str(kr, rq->group_instance_id);
	a.protocol_type = kreq_str(kr, rq->protocol_type);
	a.session_ms = rq->session_timeout_ms;
	a.rebalance_ms = kr->ver >= 1 ? rq->rebalance_timeout_ms : rq->session_timeout_ms;
	a.require_known_id = kr->ver >= 4;
	a.client_id = kreq_str(kr, kr->hdr.client_id);
	a.client_host = kreq_client_host(kr);
	if (rq->protocols_n > 0) {
		struct grp_protocol *ps = arena_calloc(&kr->a, (size_t)rq->protocols_n, sizeof(*ps));
		if (!ps) {
			kreq_fail(kr, "JoinGroup request exceeds its memory cap");
			return;
		}
		for (int32_t i = 0; i < rq->protocols_n; i++) {
			ps[i].name = kreq_str(kr, rq->protocols[i].name);
			ps[i].meta = (uint8_t *)rq->protocols[i].metadata.p;
			ps[i].len = rq->protocols[i].metadata.len > 0 ? (size_t)rq->protocols[i].metadata.len : 0;
		}
		a.protocols = ps;
		a.nprotocols = rq->protocols_n;
	}
	struct join_state *js = arena_calloc(&kr->a, 1, sizeof(*js));
	if (!js) {
		kreq_fail(kr, "out of memory");
		return;
	}
	js->kr = kr;
	js->w.fn = join_done;
	js->w.arg = js;
	kr->state = js;
	kr->cancel = join_cancel;
	grp_join(k->gc, &a, kgroups_now(k), &js->w);
	/* kr may be gone now: only k is used below. */
	kgroups_kick(k);
}

/* ---- SyncGroup ---- */

struct sync_state {
	struct grp_sync_wait w;
	struct kreq *kr;
};

static void sync_done(struct grp_sync_wait *w, const struct grp_sync_result *r)
{
	struct sync_state *ss = w->arg;
	struct kreq *kr = ss->kr;
	struct sync_group_resp *rs = kr->resp;

	kr->cancel = NULL;
	rs->error_code = r->error;
	rs->protocol_type = out_str(kr, r->protocol_type);
	rs->protocol_name = out_str(kr, r->protocol);
	rs->assignment = out_bytes(kr, r->assignment, r->len);
	kreq_reply(kr);
}

static void sync_cancel(struct kreq *kr)
{
	struct sync_state *ss = kr->state;

	grp_sync_cancel(kr->k->gc, &ss->w);
	kreq_reply(kr);
}

void h_sync_group(struct kreq *kr)
{
	struct sync_group_req *rq = kr->body;
	struct sync_group_resp *rs = kr->resp;
	struct kafka *k = kr->k;
	struct grp_sync_args a = { 0 };

	a.group_id = kreq_str(kr, rq->group_id);
	if (!a.group_id[0]) {
		rs->error_code = KERR_INVALID_GROUP_ID;
		rs->assignment.p = (const uint8_t *)"";
		kreq_reply(kr);
		return;
	}
	a.member_id = kreq_str(kr, rq->member_id);
	a.instance_id = opt_str(kr, rq->group_instance_id);
	a.generation = rq->generation_id;
	a.protocol_type = kr->ver >= 5 ? opt_str(kr, rq->protocol_type) : NULL;
	a.protocol = kr->ver >= 5 ? opt_str(kr, rq->protocol_name) : NULL;
	if (rq->assignments_n > 0) {
		struct grp_assignment *as = arena_calloc(&kr->a, (size_t)rq->assignments_n, sizeof(*as));
		if (!as) {
			kreq_fail(kr, "SyncGroup request exceeds its memory cap");
			return;
		}
		for (int32_t i = 0; i < rq->assignments_n; i++) {
			as[i].member_id = kreq_str(kr, rq->assignments[i].member_id);
			as[i].data = rq->assignments[i].assignment.p;
			as[i].len = rq->assignments[i].assignment.len > 0
					    ? (size_t)rq->assignments[i].assignment.len : 0;
		}
		a.assignments = as;
		a.nassignments = rq->assignments_n;
	}
	struct sync_state *ss = arena_calloc(&kr->a, 1, sizeof(*ss));
	if (!ss) {
		kreq_fail(kr, "out of memory");
		return;
	}
	ss->kr = kr;
	ss->w.fn = sync_done;
	ss->w.arg = ss;
	kr->state = ss;
	kr->cancel = sync_cancel;
	grp_sync(k->gc, &a, kgroups_now(k), &ss->w);
	kgroups_kick(k);
}

/* ---- Heartbeat ---- */

void h_heartbeat(struct kreq *kr)
{
	struct heartbeat_req *rq = kr->body;
	struct heartbeat_resp *rs = kr->resp;
	const char *gid = kreq_str(kr, rq->group_id);

	if (!gid[0]) {
		rs->error_code = KERR_INVALID_GROUP_ID;
	} else {
		rs->error_code = grp_heartbeat(kr->k->gc, gid, kreq_str(kr, rq->member_id),
					       opt_str(kr, rq->group_instance_id), rq->generation_id,
					       kgroups_now(kr->k));
		kgroups_kick(kr->k);
	}
	kreq_reply(kr);
}

/* ---- LeaveGroup ---- */

void h_leave_group(struct kreq *kr)
{
	struct leave_group_req *rq = kr->body;
	struct leave_group_resp *rs = kr->resp;
	struct kafka *k = kr->k;
	const char *gid = kreq_str(kr, rq->group_id);
	int64_t now = kgroups_now(k);

	if (!gid[0]) {
		rs->error_code = KERR_INVALID_GROUP_ID;
		kreq_reply(kr);
		return;
	}
	if (kr->ver < 3) {
		rs->error_code = grp_leave(k->gc, gid, kreq_str(kr, rq->member_id), NULL, now);
		kgroups_kick(k);
		kreq_reply(kr);
		return;
	}
	int32_t n = rq->members_n > 0 ? rq->members_n : 0;
	if (n > 0 && !(rs->members = KR_NEW(kr, leave_group_resp_member_response, n))) {
		kreq_fail(kr, "LeaveGroup response exceeds the request's memory cap");
		return;
	}
	rs->members_n = n;
	for (int32_t i = 0; i < n; i++) {
		const struct leave_group_req_member_identity *mi = &rq->members[i];
		const char *mid = kreq_str(kr, mi->member_id);
		const char *iid = opt_str(kr, mi->group_instance_id);

		rs->members[i].member_id = kstr(mid);
		rs->members[i].group_instance_id = iid ? kstr(iid) : KC_NULL_STR;
		rs->members[i].error_code = grp_leave(k->gc, gid, mid, iid, now);
		if (mi->reason.len > 0)
			log_info("groups", "member %s leaves group %s: %.*s", mid, gid,
				 (int)mi->reason.len, mi->reason.p);
	}
	kgroups_kick(k);
	kreq_reply(kr);
}

/* ---- ListGroups ---- */

void h_list_groups(struct kreq *kr)
{
	struct list_groups_req *rq = kr->body;
	struct list_groups_resp *rs = kr->resp;
	int want[GRP_DEAD + 1] = { 0 };
	int filtered = kr->ver >= 4 && rq->states_filter_n > 0;
	int32_t n = 0;
	struct group *g;

	for (int32_t i = 0; filtered && i < rq->states_filter_n; i++) {
		int s = grp_state_parse(kreq_str(kr, rq->states_filter[i]));
		if (s >= 0)
			want[s] = 1;
	}
	for (g = grp_first(kr->k->gc); g; g = g->lnext)
		n++;
	if (n > 0 && !(rs->groups = KR_NEW(kr, list_groups_resp_listed_group, n))) {
		kreq_fail(kr, "ListGroups response exceeds the request's memory cap");
		return;
	}
	n = 0;
	for (g = grp_first(kr->k->gc); g; g = g->lnext) {
		if (g->state == GRP_DEAD || (filtered && !want[g->state]))
			continue;
		struct list_groups_resp_listed_group *o = &rs->groups[n++];
		o->group_id = out_str(kr, g->id);
		o->protocol_type = out_str(kr, g->protocol_type ? g->protocol_type : "");
		o->group_state = kstr(grp_state_name(g->state));
	}
	rs->groups_n = n;
	kreq_reply(kr);
}

/* ---- DescribeGroups ---- */

/* Kafka's GROUP operations bit set without an authorizer: READ, DELETE, DESCRIBE. */
#define GROUP_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

void h_describe_groups(struct kreq *kr)
{
	struct describe_groups_req *rq = kr->body;
	struct describe_groups_resp *rs = kr->resp;
	int32_t n = rq->groups_n > 0 ? rq->groups_n : 0;

	if (n > 0 && !(rs->groups = KR_NEW(kr, describe_groups_resp_described_group, n))) {
		kreq_fail(kr, "DescribeGroups response exceeds the request's memory cap");
		return;
	}
	rs->groups_n = n;
	for (int32_t i = 0; i < n; i++) {
		struct describe_groups_resp_described_group *o = &rs->groups[i];
		const char *gid = kreq_str(kr, rq->groups[i]);
		struct group *g = grp_find(kr->k->gc, gid);

		o->group_id = kstr(gid);
		o->error_code = KERR_NONE;
		if (kr->ver >= 3 && rq->include_authorized_operations)
			o->authorized_operations = GROUP_OPERATIONS;
		if (!g) {
			o->group_state = kstr(grp_state_name(GRP_DEAD));
			o->protocol_type = kstr("");
			o->protocol_data = kstr("");
			continue;
		}
		int stable = g->state == GRP_STABLE;
		o->group_state = kstr(grp_state_name(g->state));
		o->protocol_type = out_str(kr, g->protocol_type ? g->protocol_type : "");
		/* Like Kafka: the protocol and members' bytes only once the group is Stable. */
		o->protocol_data = out_str(kr, stable && g->protocol ? g->protocol : "");
		if (g->nmembers == 0)
			continue;
		o->members = KR_NEW(kr, describe_groups_resp_described_group_member, g->nmembers);
		if (!o->members) {
			kreq_fail(kr, "DescribeGroups response exceeds the request's memory cap");
			return;
		}
		int j = 0;
		for (struct grp_member *m = g->members; m && j < g->nmembers; m = m->next, j++) {
			struct describe_groups_resp_described_group_member *d = &o->members[j];
			size_t len = 0;
			const uint8_t *meta = stable ? grp_member_meta(m, g->protocol, &len) : NULL;

			d->member_id = out_str(kr, m->id);
			d->group_instance_id = out_str(kr, m->instance_id);
			d->client_id = out_str(kr, m->client_id ? m->client_id : "");
			d->client_host = out_str(kr, m->client_host ? m->client_host : "");
			d->member_metadata = out_bytes(kr, meta, meta ? len : 0);
			d->member_assignment = out_bytes(kr, stable ? m->assignment : NULL,
							 stable ? m->assignment_len : 0);
		}
		o->members_n = j;
	}
	kreq_reply(kr);
}

/* ---- DeleteGroups ---- */

/*
 * Each deletable group is removed at once and a tombstone journaled; the
 * answer waits until every tombstone is durable, so a group reported deleted
 * stays deleted across a crash.
 */
struct delete_state {
	struct kreq *kr;
	int pending;
	struct delete_one {
		struct kjournal j;
		struct delete_state *ds;
		int16_t *err;
	} *ones;
};

static void delete_release(struct delete_state *ds)
{
	if (--ds->pending == 0) {
		ds->kr->cancel = NULL;
		kreq_reply(ds->kr);
	}
}

static void delete_journaled(struct kjournal *j, int err)
{
	struct delete_one *one = j->arg;

	if (err) {
		*one->err = KERR_KAFKA_STORAGE_ERROR;
		log_warn("groups", "journaling a group deletion failed: %s", sl_strerror(err));
	}
	delete_release(one->ds);
}

static void delete_cancel(struct kreq *kr)
{
	/* Journal records in flight still complete; they answer nothing. */
	(void)kr;
}

void h_delete_groups(struct kreq *kr)
{
	struct delete_groups_req *rq = kr->body;
	struct delete_groups_resp *rs = kr->resp;
	int32_t n = rq->groups_names_n > 0 ? rq->groups_names_n : 0;
	struct delete_state *ds = arena_calloc(&kr->a, 1, sizeof(*ds));

	if (!ds || (n > 0 && (!(rs->results = KR_NEW(kr, delete_groups_resp_deletable_group_result, n)) ||
			      !(ds->ones = arena_calloc(&kr->a, (size_t)n, sizeof(*ds->ones)))))) {
		kreq_fail(kr, "DeleteGroups response exceeds the request's memory cap");
		return;
	}
	rs->results_n = n;
	ds->kr = kr;
	ds->pending = 1;	/* released after the loop */
	kr->state = ds;
	kr->cancel = delete_cancel;
	for (int32_t i = 0; i < n; i++) {
		const char *gid = kreq_str(kr, rq->groups_names[i]);
		struct delete_groups_resp_deletable_group_result *o = &rs->results[i];
		struct delete_one *one = &ds->ones[i];

		o->group_id = kstr(gid);
		o->error_code = grp_delete(kr->k->gc, gid);
		if (o->error_code != KERR_NONE)
			continue;
		struct gjournal gj;
		gj_begin(&gj, 3, gid);
		one->ds = ds;
		one->err = &o->error_code;
		one->j.done = delete_journaled;
		one->j.arg = one;
		if (gj_submit(kr->k, &gj, &one->j) != 0) {
			o->error_code = KERR_KAFKA_STORAGE_ERROR;
			log_warn("groups", "cannot journal the deletion of group %s", gid);
			continue;
		}
		log_info("groups", "deleted group %s", gid);
		ds->pending++;
	}
	kgroups_kick(kr->k);
	delete_release(ds);
}
