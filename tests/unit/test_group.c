/*
 * test_group.c - the consumer group coordinator engine, driven by a fake
 * monotonic clock (the `now` arguments) and a fake wall clock: every state
 * transition, MEMBER_ID_REQUIRED, initial delays, protocol checks and votes,
 * SyncGroup, heartbeats, session, rebalance and pending-sync expiry, static
 * membership, commit checks, the offsets table and its expiry, DeleteGroups,
 * group.max.size, cancelled waits, and destroy with waits still parked.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/group.h"
#include "../../kafka/kerr.h"

static int64_t wall;
static int64_t fake_wall(void) { return wall; }

/* ---- waits that record their answers ---- */

#define MAXM 8

struct jw {
	struct grp_join_wait w;
	int calls;
	int16_t error;
	int32_t generation;
	char member_id[128], leader[128], protocol[32], type[32];
	int has_protocol;
	int nmembers;
	char mids[MAXM][128];
	char metas[MAXM][64];
};

static void on_join(struct grp_join_wait *w, const struct grp_join_result *r)
{
	struct jw *j = (struct jw *)w;

	j->calls++;
	j->error = r->error;
	j->generation = r->generation;
	snprintf(j->member_id, sizeof(j->member_id), "%s", r->member_id);
	snprintf(j->leader, sizeof(j->leader), "%s", r->leader);
	j->has_protocol = r->protocol != NULL;
	snprintf(j->protocol, sizeof(j->protocol), "%s", r->protocol ? r->protocol : "");
	snprintf(j->type, sizeof(j->type), "%s", r->protocol_type ? r->protocol_type : "");
	j->nmembers = r->nmembers;
	T_CHECK(r->nmembers <= MAXM);
	T_CHECK((r->members != NULL) == (r->nmembers > 0));
	for (int i = 0; i < r->nmembers && i < MAXM; i++) {
		size_t len;
		const uint8_t *m = grp_member_meta(r->members[i], r->protocol, &len);
		snprintf(j->mids[i], sizeof(j->mids[i]), "%s", r->members[i]->id);
		snprintf(j->metas[i], sizeof(j->metas[i]), "%.*s", (int)len, m ? (const char *)m : "");
	}
}

struct sw {
	struct grp_sync_wait w;
	int calls;
	int16_t error;
	char assignment[64];
	size_t len;
	int has_protocol;
};

static void on_sync(struct grp_sync_wait *w, const struct grp_sync_result *r)
{
	struct sw *s = (struct sw *)w;

	s->calls++;
	s->error = r->error;
	s->len = r->len;
	s->has_protocol = r->protocol != NULL;
	snprintf(s->assignment, sizeof(s->assignment), "%.*s", (int)r->len,
		 r->assignment ? (const char *)r->assignment : "");
}

static void jinit(struct jw *j)
{
	memset(j, 0, sizeof(*j));
	j->w.fn = on_join;
	j->error = 12345;
}

static void sinit(struct sw *s)
{
	memset(s, 0, sizeof(*s));
	s->w.fn = on_sync;
	s->error = 12345;
}

/* ---- requests with defaults ---- */

struct jopt {
	const char *gid, *mid, *iid, *type, *protos, *meta, *client;
	int require;
	int32_t session, rebalance;
};

/*
 * JoinGroup with defaults: group "g", type "consumer", protocols "range",
 * session 10 s, rebalance 30 s.  Each protocol's metadata is "META/NAME".
 */
static void join(struct grp_coord *c, struct jw *j, int64_t now, struct jopt o)
{
	struct grp_protocol p[4];
	char names[4][32], metas[4][64], mid[128];
	const char *s = o.protos ? o.protos : "range";
	int n = 0;

	while (*s && n < 4) {
		size_t k = strcspn(s, ",");
		snprintf(names[n], sizeof(names[n]), "%.*s", (int)k, s);
		snprintf(metas[n], sizeof(metas[n]), "%s/%s", o.meta ? o.meta : "m", names[n]);
		p[n].name = names[n];
		p[n].meta = (uint8_t *)metas[n];
		p[n].len = strlen(metas[n]);
		n++;
		s += k + (s[k] == ',');
	}
	/* o.mid may point into *j, which is cleared below. */
	snprintf(mid, sizeof(mid), "%s", o.mid ? o.mid : "");
	struct grp_join_args a = {
		.group_id = o.gid ? o.gid : "g", .member_id = mid,
		.instance_id = o.iid, .protocol_type = o.type ? o.type : "consumer",
		.protocols = p, .nprotocols = n,
		.session_ms = o.session ? o.session : 10000,
		.rebalance_ms = o.rebalance ? o.rebalance : 30000,
		.require_known_id = o.require, .client_id = o.client ? o.client : "client",
		.client_host = "/127.0.0.1",
	};
	jinit(j);
	grp_join(c, &a, now, &j->w);
}
#define JOIN(c, j, now, ...) join(c, j, now, (struct jopt){ __VA_ARGS__ })

/* SyncGroup; the leader passes "id=data" pairs. */
static void sync(struct grp_coord *c, struct sw *s, int64_t now, const char *mid, int32_t gen,
		 int n, const char *const *ids, const char *const *data)
{
	struct grp_assignment as[MAXM];
	struct grp_sync_args a = { .group_id = "g", .member_id = mid, .generation = gen,
				   .assignments = as, .nassignments = n };

	for (int i = 0; i < n; i++) {
		as[i].member_id = ids[i];
		as[i].data = (const uint8_t *)data[i];
		as[i].len = strlen(data[i]);
	}
	sinit(s);
	grp_sync(c, &a, now, &s->w);
}

static struct grp_coord *coord(int32_t delay, int32_t max_size)
{
	struct grp_config cfg = { .min_session_ms = 6000, .max_session_ms = 300000,
				  .initial_delay_ms = delay, .max_size = max_size,
				  .wall_ms = fake_wall };
	wall = 1000000;
	return grp_coord_new(&cfg);
}

static enum grp_state state(struct grp_coord *c)
{
	struct group *g = grp_find(c, "g");
	return g ? g->state : GRP_DEAD;
}

/*
 * Members that join at 0 during an initial delay of 100 ms: the delay ends at
 * 100, is extended once because more than one member came, and the
 * rebalance completes at FORMED.
 */
#define FORMED 200

static void delay_ends(struct grp_coord *c)
{
	grp_tick(c, 100);
	grp_tick(c, FORMED);
}

/*
 * A Stable group "g" of n members named A, B, C, ... (metadata "A/range"
 * ...), formed at 0 and synced at FORMED; A leads.  Each member's assignment
 * is "as-" and its name.  Returns the generation.
 */
struct fx {
	struct grp_coord *c;
	char id[MAXM][128];
	int n;
};

static int32_t form(struct fx *f, int n)
{
	struct jw j[MAXM];
	struct sw s[MAXM];
	const char *ids[MAXM], *data[MAXM];
	static char as[MAXM][16];
	static const char *names[] = { "A", "B", "C", "D", "E", "F", "G", "H" };

	f->c = coord(100, INT32_MAX);
	f->n = n;
	for (int i = 0; i < n; i++)
		JOIN(f->c, &j[i], 0, .meta = names[i], .client = names[i]);
	delay_ends(f->c);
	for (int i = 0; i < n; i++) {
		T_EQ(j[i].calls, 1);
		T_EQ(j[i].error, KERR_NONE);
		snprintf(f->id[i], sizeof(f->id[i]), "%s", j[i].member_id);
		ids[i] = f->id[i];
		snprintf(as[i], sizeof(as[i]), "as-%s", names[i]);
		data[i] = as[i];
	}
	T_CHECK(strcmp(j[0].leader, f->id[0]) == 0);
	sync(f->c, &s[0], FORMED, f->id[0], j[0].generation, n, ids, data);
	for (int i = 1; i < n; i++)
		sync(f->c, &s[i], FORMED, f->id[i], j[0].generation, 0, NULL, NULL);
	T_EQ(state(f->c), GRP_STABLE);
	return j[0].generation;
}

/* ---- tests ---- */

static void test_state_names(void)
{
	T_CHECK(strcmp(grp_state_name(GRP_PREPARING), "PreparingRebalance") == 0);
	T_CHECK(strcmp(grp_state_name(GRP_COMPLETING), "CompletingRebalance") == 0);
	T_EQ(grp_state_parse("stable"), GRP_STABLE);
	T_EQ(grp_state_parse("EMPTY"), GRP_EMPTY);
	T_EQ(grp_state_parse("Dead"), GRP_DEAD);
	T_EQ(grp_state_parse("nope"), -1);
}

/* Every edge of the diagram in group.h, in one group's life. */
static void test_transitions(void)
{
	struct grp_coord *c = coord(3000, INT32_MAX);
	struct grp_offset o = { .topic = "t", .partition = 0, .offset = 5, .leader_epoch = -1,
				.metadata = "", .commit_ms = 0, .expire_ms = -1 };
	struct jw a, b, a2;
	struct sw sa, sb;
	int64_t t = 0;

	/* Empty -> PreparingRebalance on the first join; the initial delay holds it there. */
	T_EQ(grp_offset_put(c, "g", &o), 0);
	T_EQ(state(c), GRP_EMPTY);
	JOIN(c, &a, t, .meta = "A");
	T_EQ(state(c), GRP_PREPARING);
	T_EQ(grp_next_deadline(c), 3000);
	grp_tick(c, 2999);
	T_EQ(a.calls, 0);
	/* PreparingRebalance -> Empty: the only member leaves; the delay ends with no one. */
	T_EQ(grp_leave(c, "g", grp_first(c)->members->id, NULL, 100), KERR_NONE);
	T_EQ(a.calls, 1);
	T_EQ(a.error, KERR_UNKNOWN_MEMBER_ID);
	T_EQ(state(c), GRP_PREPARING);
	grp_tick(c, 3000);
	T_EQ(state(c), GRP_EMPTY);
	T_EQ(grp_find(c, "g")->generation, 1);
	T_CHECK(grp_find(c, "g")->protocol == NULL);
	T_CHECK(strcmp(grp_find(c, "g")->protocol_type, "consumer") == 0);
	T_EQ(grp_find(c, "g")->empty_since_ms, wall);

	/* Empty -> Preparing -> CompletingRebalance when the delay ends. */
	t = 10000;
	JOIN(c, &a, t, .meta = "A");
	JOIN(c, &b, t + 10, .meta = "B");
	T_EQ(state(c), GRP_PREPARING);
	/* Only generation 0 extends the delay for newcomers (Kafka's newMemberAdded). */
	grp_tick(c, t + 3000);
	T_EQ(state(c), GRP_COMPLETING);
	T_EQ(a.generation, 2);
	T_EQ(b.generation, 2);
	/* CompletingRebalance -> PreparingRebalance: a member leaves. */
	T_EQ(grp_leave(c, "g", b.member_id, NULL, t + 6001), KERR_NONE);
	T_EQ(state(c), GRP_PREPARING);
	/* A is alone and has not rejoined: rejoining completes at once (no initial delay now). */
	JOIN(c, &a2, t + 6002, .mid = a.member_id, .meta = "A");
	T_EQ(a2.calls, 1);
	T_EQ(a2.generation, 3);
	T_EQ(state(c), GRP_COMPLETING);
	/* CompletingRebalance -> Stable: the leader's SyncGroup. */
	sync(c, &sa, t + 6003, a.member_id, 3, 0, NULL, NULL);
	T_EQ(sa.calls, 1);
	T_EQ(state(c), GRP_STABLE);
	/* Stable -> PreparingRebalance: a join of a new member. */
	JOIN(c, &b, t + 6004, .meta = "B");
	T_EQ(state(c), GRP_PREPARING);
	T_EQ(b.calls, 0);
	/* Preparing -> Completing: everyone rejoined. */
	JOIN(c, &a2, t + 6005, .mid = a.member_id, .meta = "A");
	T_EQ(state(c), GRP_COMPLETING);
	T_EQ(b.calls, 1);
	T_EQ(b.generation, 4);
	sync(c, &sa, t + 6006, a.member_id, 4, 0, NULL, NULL);
	sync(c, &sb, t + 6006, b.member_id, 4, 0, NULL, NULL);
	T_EQ(state(c), GRP_STABLE);
	/* Stable -> Preparing -> Empty: both leave; the offsets keep the group. */
	wall += 777;
	T_EQ(grp_leave(c, "g", a.member_id, NULL, t + 6007), KERR_NONE);
	T_EQ(state(c), GRP_PREPARING);
	T_EQ(grp_leave(c, "g", b.member_id, NULL, t + 6008), KERR_NONE);
	T_EQ(state(c), GRP_EMPTY);
	T_EQ(grp_find(c, "g")->generation, 5);
	T_EQ(grp_find(c, "g")->empty_since_ms, wall);
	T_CHECK(grp_find(c, "g")->leader == NULL);
	/* Empty -> Dead: the last offset goes, and so does the group. */
	grp_offset_del(c, "g", "t", 0);
	T_CHECK(grp_find(c, "g") == NULL);
	T_CHECK(grp_first(c) == NULL);
	T_EQ(grp_next_deadline(c), INT64_MAX);
	grp_coord_destroy(c);
}

static void test_join_checks(void)
{
	struct grp_coord *c = coord(0, INT32_MAX);
	struct jw j;

	JOIN(c, &j, 0, .gid = "");
	T_EQ(j.calls, 1);
	T_EQ(j.error, KERR_INVALID_GROUP_ID);
	T_EQ(j.generation, -1);
	T_CHECK(!j.has_protocol);
	JOIN(c, &j, 0, .session = 5999);
	T_EQ(j.error, KERR_INVALID_SESSION_TIMEOUT);
	JOIN(c, &j, 0, .session = 300001);
	T_EQ(j.error, KERR_INVALID_SESSION_TIMEOUT);
	JOIN(c, &j, 0, .mid = "someone");
	T_EQ(j.error, KERR_UNKNOWN_MEMBER_ID);
	T_CHECK(strcmp(j.member_id, "someone") == 0);
	T_CHECK(grp_find(c, "g") == NULL);
	/* A group made only to fail is not left behind. */
	JOIN(c, &j, 0, .type = "");
	T_EQ(j.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	T_CHECK(grp_find(c, "g") == NULL);
	JOIN(c, &j, 0, .protos = "");
	T_EQ(j.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	T_CHECK(grp_find(c, "g") == NULL);
	grp_coord_destroy(c);
}

static void test_member_id_required(void)
{
	struct grp_coord *c = coord(0, INT32_MAX);
	struct group *g;
	struct jw j, j2, k;

	JOIN(c, &j, 0, .require = 1, .client = "cons");
	T_EQ(j.calls, 1);
	T_EQ(j.error, KERR_MEMBER_ID_REQUIRED);
	T_EQ(j.generation, -1);
	T_CHECK(strncmp(j.member_id, "cons-", 5) == 0);
	T_EQ(strlen(j.member_id), 5 + 36);
	T_EQ(j.member_id[5 + 14], '4');	/* a version 4 UUID */
	g = grp_find(c, "g");
	T_CHECK(g != NULL);
	T_EQ(g->state, GRP_EMPTY);
	T_EQ(g->nmembers, 0);
	T_EQ(g->npending, 1);
	/* A second one gets a different id. */
	JOIN(c, &k, 0, .require = 1, .client = "cons");
	T_EQ(k.error, KERR_MEMBER_ID_REQUIRED);
	T_CHECK(strcmp(k.member_id, j.member_id) != 0);
	T_EQ(g->npending, 2);
	/* The first rejoins with its id: it is a member, and the pending second blocks completion. */
	JOIN(c, &j2, 5, .mid = j.member_id, .require = 1);
	T_EQ(j2.calls, 0);
	T_EQ(g->state, GRP_PREPARING);
	T_EQ(g->nmembers, 1);
	T_EQ(g->npending, 1);
	T_CHECK(grp_member_find(g, j.member_id) != NULL);
	/* The earliest deadline is the pending id's session (0 + 10 s). */
	T_EQ(grp_next_deadline(c), 10000);
	grp_tick(c, 9999);
	T_EQ(j2.calls, 0);
	/* It never comes back: its session ends and the rebalance completes without it. */
	grp_tick(c, 10000);
	T_EQ(g->npending, 0);
	T_EQ(j2.calls, 1);
	T_EQ(j2.error, KERR_NONE);
	T_EQ(j2.generation, 1);
	T_CHECK(strcmp(j2.leader, j.member_id) == 0);
	T_EQ(j2.nmembers, 1);
	T_EQ(g->state, GRP_COMPLETING);
	/* A pending id that rejoins in time joins the rebalance. */
	JOIN(c, &k, 20000, .require = 1);
	T_EQ(k.error, KERR_MEMBER_ID_REQUIRED);
	char kid[128];
	snprintf(kid, sizeof(kid), "%s", k.member_id);
	JOIN(c, &j2, 20001, .mid = j.member_id);	/* the leader, unchanged: answered at once */
	T_EQ(j2.calls, 1);
	T_EQ(j2.generation, 1);
	JOIN(c, &k, 20002, .mid = kid);
	T_EQ(g->state, GRP_PREPARING);
	JOIN(c, &j2, 20003, .mid = j.member_id);
	T_EQ(k.calls, 1);
	T_EQ(k.generation, 2);
	T_CHECK(strcmp(k.member_id, kid) == 0);
	T_EQ(j2.nmembers, 2);
	/* A pending id may leave. */
	JOIN(c, &k, 20004, .require = 1);
	T_EQ(g->npending, 1);
	T_EQ(grp_leave(c, "g", k.member_id, NULL, 20005), KERR_NONE);
	T_EQ(g->npending, 0);
	grp_coord_destroy(c);
}

/* A group made by MEMBER_ID_REQUIRED alone goes when the pending id expires. */
static void test_pending_only_group_goes(void)
{
	struct grp_coord *c = coord(0, INT32_MAX);
	struct jw j;

	JOIN(c, &j, 0, .require = 1);
	T_CHECK(grp_find(c, "g") != NULL);
	grp_tick(c, 10000);
	/* Empty with nothing in it: gone at the next cleanup pass, as in Kafka. */
	T_CHECK(grp_find(c, "g") != NULL && grp_find(c, "g")->state == GRP_EMPTY);
	grp_expire_offsets(c, 0, 1, NULL, NULL);
	T_CHECK(grp_find(c, "g") == NULL);
	grp_coord_destroy(c);
}

static void test_initial_delay_three_members(void)
{
	struct grp_coord *c = coord(3000, INT32_MAX);
	struct jw a, b, d;

	JOIN(c, &a, 0, .meta = "A");
	JOIN(c, &b, 1000, .meta = "B");
	JOIN(c, &d, 2000, .meta = "C");
	T_EQ(grp_next_deadline(c), 3000);
	grp_tick(c, 3000);
	/* Members came during the delay: another one. */
	T_EQ(state(c), GRP_PREPARING);
	T_EQ(grp_next_deadline(c), 6000);
	T_EQ(a.calls + b.calls + d.calls, 0);
	grp_tick(c, 6000);
	T_EQ(state(c), GRP_COMPLETING);
	T_EQ(a.calls, 1);
	T_EQ(b.calls, 1);
	T_EQ(d.calls, 1);
	T_EQ(a.generation, 1);
	T_EQ(b.generation, 1);
	T_EQ(d.generation, 1);
	T_CHECK(strcmp(a.leader, a.member_id) == 0);
	T_CHECK(strcmp(b.leader, a.member_id) == 0);
	T_CHECK(strcmp(d.leader, a.member_id) == 0);
	T_CHECK(strcmp(a.protocol, "range") == 0);
	T_CHECK(strcmp(b.type, "consumer") == 0);
	/* The leader gets every member with its metadata, the others none. */
	T_EQ(a.nmembers, 3);
	T_EQ(b.nmembers, 0);
	T_EQ(d.nmembers, 0);
	T_CHECK(strcmp(a.mids[0], a.member_id) == 0);
	T_CHECK(strcmp(a.mids[1], b.member_id) == 0);
	T_CHECK(strcmp(a.mids[2], d.member_id) == 0);
	T_CHECK(strcmp(a.metas[0], "A/range") == 0);
	T_CHECK(strcmp(a.metas[1], "B/range") == 0);
	T_CHECK(strcmp(a.metas[2], "C/range") == 0);
	grp_coord_destroy(c);
}

/* Extensions of the initial delay stop at the rebalance timeout. */
static void test_initial_delay_limit(void)
{
	struct grp_coord *c = coord(3000, INT32_MAX);
	struct jw a, b, d;

	JOIN(c, &a, 0, .rebalance = 4000);
	JOIN(c, &b, 1000, .rebalance = 4000);
	grp_tick(c, 3000);
	T_EQ(grp_next_deadline(c), 4000);
	JOIN(c, &d, 3500, .rebalance = 4000);
	grp_tick(c, 4000);
	T_EQ(state(c), GRP_COMPLETING);
	T_EQ(a.nmembers, 3);
	grp_coord_destroy(c);

	/* Without newcomers the delay ends once; 0 means no delay at all. */
	c = coord(3000, INT32_MAX);
	JOIN(c, &a, 0);
	grp_tick(c, 3000);
	T_EQ(a.calls, 1);
	T_EQ(state(c), GRP_COMPLETING);
	grp_coord_destroy(c);
	c = coord(0, INT32_MAX);
	JOIN(c, &a, 0);
	T_EQ(a.calls, 1);
	T_EQ(a.generation, 1);
	grp_coord_destroy(c);
}

static void test_sync(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct jw a, b, d;
	struct sw sa, sb, sd, bad;
	const char *ids[3], *data[2] = { "as-A", "as-B" };
	struct grp_sync_args args = { 0 };

	JOIN(c, &a, 0, .meta = "A");
	JOIN(c, &b, 0, .meta = "B");
	JOIN(c, &d, 0, .meta = "C");
	delay_ends(c);
	T_EQ(state(c), GRP_COMPLETING);
	/* Errors first. */
	sync(c, &bad, 201, "nobody", 1, 0, NULL, NULL);
	T_EQ(bad.error, KERR_UNKNOWN_MEMBER_ID);
	sync(c, &bad, 201, b.member_id, 7, 0, NULL, NULL);
	T_EQ(bad.error, KERR_ILLEGAL_GENERATION);
	args = (struct grp_sync_args){ .group_id = "g", .member_id = b.member_id, .generation = 1,
				       .protocol_type = "connect" };
	sinit(&bad);
	grp_sync(c, &args, 201, &bad.w);
	T_EQ(bad.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	args.protocol_type = "consumer";
	args.protocol = "roundrobin";
	sinit(&bad);
	grp_sync(c, &args, 201, &bad.w);
	T_EQ(bad.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	args.group_id = "";
	sinit(&bad);
	grp_sync(c, &args, 201, &bad.w);
	T_EQ(bad.error, KERR_INVALID_GROUP_ID);
	args.group_id = "other";
	sinit(&bad);
	grp_sync(c, &args, 201, &bad.w);
	T_EQ(bad.error, KERR_UNKNOWN_MEMBER_ID);
	/* A follower's SyncGroup (with matching protocol fields) parks until the leader's. */
	args = (struct grp_sync_args){ .group_id = "g", .member_id = b.member_id, .generation = 1,
				       .protocol_type = "consumer", .protocol = "range" };
	sinit(&sb);
	grp_sync(c, &args, 202, &sb.w);
	T_EQ(sb.calls, 0);
	T_EQ(state(c), GRP_COMPLETING);
	/* The leader leaves C out: C gets an empty assignment. */
	ids[0] = a.member_id;
	ids[1] = b.member_id;
	sync(c, &sa, 203, a.member_id, 1, 2, ids, data);
	T_EQ(state(c), GRP_STABLE);
	T_EQ(sa.calls, 1);
	T_EQ(sb.calls, 1);
	T_EQ(sa.error, KERR_NONE);
	T_EQ(sb.error, KERR_NONE);
	T_CHECK(strcmp(sa.assignment, "as-A") == 0);
	T_CHECK(strcmp(sb.assignment, "as-B") == 0);
	T_CHECK(sa.has_protocol);
	/* C syncs late, in Stable: answered at once. */
	sync(c, &sd, 204, d.member_id, 1, 0, NULL, NULL);
	T_EQ(sd.calls, 1);
	T_EQ(sd.error, KERR_NONE);
	T_EQ(sd.len, 0);
	/* B asks again in Stable: its own assignment, at once. */
	sync(c, &sb, 205, b.member_id, 1, 0, NULL, NULL);
	T_EQ(sb.calls, 1);
	T_CHECK(strcmp(sb.assignment, "as-B") == 0);
	/* In PreparingRebalance SyncGroup gets REBALANCE_IN_PROGRESS. */
	JOIN(c, &a, 206, .mid = a.member_id, .meta = "A");
	T_EQ(state(c), GRP_PREPARING);
	sync(c, &sb, 207, b.member_id, 1, 0, NULL, NULL);
	T_EQ(sb.error, KERR_REBALANCE_IN_PROGRESS);
	grp_coord_destroy(c);
}

static void test_heartbeat(void)
{
	struct fx f;
	int32_t gen = form(&f, 2);
	struct jw a;

	T_EQ(grp_heartbeat(f.c, "g", f.id[1], NULL, gen, 200), KERR_NONE);
	T_EQ(grp_heartbeat(f.c, "g", f.id[1], NULL, gen - 1, 200), KERR_ILLEGAL_GENERATION);
	T_EQ(grp_heartbeat(f.c, "g", "nobody", NULL, gen, 200), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_heartbeat(f.c, "other", f.id[1], NULL, gen, 200), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_heartbeat(f.c, "", f.id[1], NULL, gen, 200), KERR_INVALID_GROUP_ID);
	/* The leader rejoins: a rebalance. */
	JOIN(f.c, &a, 300, .mid = f.id[0], .meta = "A");
	T_EQ(grp_heartbeat(f.c, "g", f.id[1], NULL, gen, 400), KERR_REBALANCE_IN_PROGRESS);
	/* The heartbeat renewed B's session: it is due at 400 + 10 s. */
	T_EQ(grp_next_deadline(f.c), 400 + 10000);
	/* B rejoins; CompletingRebalance answers heartbeats of the new generation. */
	JOIN(f.c, &a, 500, .mid = f.id[1], .meta = "B");
	T_EQ(state(f.c), GRP_COMPLETING);
	T_EQ(grp_heartbeat(f.c, "g", f.id[1], NULL, gen + 1, 600), KERR_NONE);
	T_EQ(grp_heartbeat(f.c, "g", f.id[1], NULL, gen, 600), KERR_ILLEGAL_GENERATION);
	grp_coord_destroy(f.c);
}

static void test_session_expiry(void)
{
	struct fx f;
	int32_t gen = form(&f, 3);
	struct jw a, b;
	struct group *g = grp_find(f.c, "g");

	/* Sessions run from the syncs at FORMED. A and B heartbeat; C does not. */
	T_EQ(grp_heartbeat(f.c, "g", f.id[0], NULL, gen, 5000), KERR_NONE);
	T_EQ(grp_heartbeat(f.c, "g", f.id[1], NULL, gen, 5000), KERR_NONE);
	T_EQ(grp_next_deadline(f.c), FORMED + 10000);
	grp_tick(f.c, FORMED + 9999);
	T_EQ(g->nmembers, 3);
	grp_tick(f.c, FORMED + 10000);
	T_EQ(g->nmembers, 2);
	T_CHECK(grp_member_find(g, f.id[2]) == NULL);
	T_EQ(g->state, GRP_PREPARING);
	/* Parked members do not expire, however long the rebalance takes. */
	JOIN(f.c, &a, 10300, .mid = f.id[0], .meta = "A");
	grp_tick(f.c, 14000);
	T_EQ(g->nmembers, 2);
	T_EQ(a.calls, 0);
	/* The other survivor rejoins (its session, renewed at 5000, still runs). */
	JOIN(f.c, &b, 14001, .mid = f.id[1], .meta = "B");
	T_EQ(a.calls, 1);
	T_EQ(b.calls, 1);
	T_EQ(a.generation, gen + 1);
	T_EQ(a.nmembers, 2);
	T_EQ(g->state, GRP_COMPLETING);
	grp_coord_destroy(f.c);
}

static void test_rebalance_timeout(void)
{
	struct fx f;
	int32_t gen = form(&f, 3);
	struct jw a, b;
	struct group *g = grp_find(f.c, "g");

	/* B rejoins at 1000 (30 s rebalance timeout from A's join at 1000); C never does. */
	JOIN(f.c, &a, 1000, .mid = f.id[0], .meta = "A");
	JOIN(f.c, &b, 1000, .mid = f.id[1], .meta = "B");
	T_EQ(g->state, GRP_PREPARING);
	/* C keeps its session alive with heartbeats, but does not rejoin. */
	for (int64_t t = 5000; t < 31000; t += 5000) {
		T_EQ(grp_heartbeat(f.c, "g", f.id[2], NULL, gen, t), KERR_REBALANCE_IN_PROGRESS);
		grp_tick(f.c, t);
	}
	T_EQ(grp_next_deadline(f.c), 31000);
	T_EQ(a.calls, 0);
	grp_tick(f.c, 31000);
	T_EQ(a.calls, 1);
	T_EQ(b.calls, 1);
	T_EQ(a.nmembers, 2);
	T_EQ(g->nmembers, 2);
	T_CHECK(grp_member_find(g, f.id[2]) == NULL);
	T_EQ(grp_heartbeat(f.c, "g", f.id[2], NULL, gen, 31001), KERR_UNKNOWN_MEMBER_ID);
	grp_coord_destroy(f.c);
}

/* The leader does not rejoin in time: a member that did becomes leader. */
static void test_rebalance_timeout_new_leader(void)
{
	struct fx f;
	int32_t gen = form(&f, 2);
	struct jw b;
	struct group *g = grp_find(f.c, "g");

	JOIN(f.c, &b, 1000, .mid = f.id[1], .meta = "B", .protos = "range,roundrobin");
	T_EQ(g->state, GRP_PREPARING);
	for (int64_t t = 9000; t < 31000; t += 9000)
		T_EQ(grp_heartbeat(f.c, "g", f.id[0], NULL, gen, t), KERR_REBALANCE_IN_PROGRESS);
	grp_tick(f.c, 31000);
	T_EQ(b.calls, 1);
	T_CHECK(strcmp(b.leader, f.id[1]) == 0);
	T_EQ(b.nmembers, 1);
	grp_coord_destroy(f.c);
}

static void test_pending_sync_expiry(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct jw a, b, b2;
	struct sw sb;
	struct group *g;

	JOIN(c, &a, 0, .meta = "A");
	JOIN(c, &b, 0, .meta = "B");
	delay_ends(c);
	g = grp_find(c, "g");
	T_EQ(g->state, GRP_COMPLETING);
	/* B syncs and parks; the leader never syncs (its heartbeats keep its session). */
	sync(c, &sb, 300, b.member_id, 1, 0, NULL, NULL);
	T_EQ(sb.calls, 0);
	T_EQ(grp_heartbeat(c, "g", a.member_id, NULL, 1, 9000), KERR_NONE);
	T_EQ(grp_next_deadline(c), 9000 + 10000);
	T_EQ(grp_heartbeat(c, "g", a.member_id, NULL, 1, 18000), KERR_NONE);
	T_EQ(grp_heartbeat(c, "g", a.member_id, NULL, 1, 27000), KERR_NONE);
	/* Members must sync within the rebalance timeout from the join's end. */
	T_EQ(grp_next_deadline(c), FORMED + 30000);
	grp_tick(c, FORMED + 29999);
	T_EQ(sb.calls, 0);
	grp_tick(c, FORMED + 30000);
	/* A is gone; B's parked sync is told to rejoin. */
	T_CHECK(grp_member_find(g, a.member_id) == NULL);
	T_EQ(sb.calls, 1);
	T_EQ(sb.error, KERR_REBALANCE_IN_PROGRESS);
	T_EQ(g->state, GRP_PREPARING);
	T_CHECK(strcmp(g->leader, b.member_id) == 0);
	/* Answering B started its session again. */
	T_EQ(grp_next_deadline(c), FORMED + 30000 + 10000);
	JOIN(c, &b2, 30300, .mid = b.member_id, .meta = "B");
	T_EQ(b2.calls, 1);
	T_EQ(b2.generation, 2);
	T_CHECK(strcmp(b2.leader, b.member_id) == 0);

	/* In Stable too: the leader synced, a follower never does. */
	JOIN(c, &a, 30400, .meta = "A");
	JOIN(c, &b2, 30400, .mid = b.member_id, .meta = "B");
	T_EQ(g->state, GRP_COMPLETING);
	T_EQ(b2.generation, 3);
	sync(c, &sb, 30500, b.member_id, 3, 0, NULL, NULL);
	T_EQ(sb.calls, 1);
	T_EQ(g->state, GRP_STABLE);
	for (int64_t t = 40000; t < 60400; t += 9000) {
		T_EQ(grp_heartbeat(c, "g", a.member_id, NULL, 3, t), KERR_NONE);
		T_EQ(grp_heartbeat(c, "g", b.member_id, NULL, 3, t), KERR_NONE);
	}
	T_EQ(grp_next_deadline(c), 30400 + 30000);
	grp_tick(c, 30400 + 30000);
	T_CHECK(grp_member_find(g, a.member_id) == NULL);
	T_EQ(g->nmembers, 1);
	T_EQ(g->state, GRP_PREPARING);
	grp_coord_destroy(c);
}

static void test_leader_leaves(void)
{
	struct fx f;
	int32_t gen = form(&f, 3);
	struct jw b, d;
	struct group *g = grp_find(f.c, "g");

	T_EQ(grp_leave(f.c, "g", f.id[0], NULL, 1000), KERR_NONE);
	T_EQ(g->state, GRP_PREPARING);
	T_CHECK(strcmp(g->leader, f.id[1]) == 0);
	T_EQ(grp_leave(f.c, "g", f.id[0], NULL, 1000), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_leave(f.c, "nope", f.id[1], NULL, 1000), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_leave(f.c, "", f.id[1], NULL, 1000), KERR_INVALID_GROUP_ID);
	JOIN(f.c, &d, 1100, .mid = f.id[2], .meta = "C");
	JOIN(f.c, &b, 1200, .mid = f.id[1], .meta = "B");
	T_EQ(b.generation, gen + 1);
	T_CHECK(strcmp(b.leader, f.id[1]) == 0);
	T_CHECK(strcmp(d.leader, f.id[1]) == 0);
	T_EQ(b.nmembers, 2);
	T_EQ(d.nmembers, 0);
	/* The last ones leave: Empty, and with no offsets gone at the next cleanup pass. */
	T_EQ(grp_leave(f.c, "g", f.id[1], NULL, 1300), KERR_NONE);
	T_EQ(grp_leave(f.c, "g", f.id[2], NULL, 1300), KERR_NONE);
	T_CHECK(grp_find(f.c, "g") != NULL && grp_find(f.c, "g")->state == GRP_EMPTY);
	grp_expire_offsets(f.c, 0, 1, NULL, NULL);
	T_CHECK(grp_find(f.c, "g") == NULL);
	grp_coord_destroy(f.c);
}

/* A parked member that leaves (or is removed) hears UNKNOWN_MEMBER_ID. */
static void test_leave_while_parked(void)
{
	struct fx f;
	struct jw a, b;

	form(&f, 2);
	JOIN(f.c, &a, 1000, .mid = f.id[0], .meta = "A");
	T_EQ(a.calls, 0);
	T_EQ(grp_leave(f.c, "g", f.id[0], NULL, 1001), KERR_NONE);
	T_EQ(a.calls, 1);
	T_EQ(a.error, KERR_UNKNOWN_MEMBER_ID);
	/* B alone now: its rejoin completes. */
	JOIN(f.c, &b, 1002, .mid = f.id[1], .meta = "B");
	T_EQ(b.calls, 1);
	T_EQ(b.error, KERR_NONE);
	grp_coord_destroy(f.c);
}

static void test_protocol_checks(void)
{
	struct grp_coord *c = coord(0, INT32_MAX);
	struct jw a, b;

	JOIN(c, &a, 0, .protos = "range,sticky");
	T_EQ(a.error, KERR_NONE);
	JOIN(c, &b, 1, .type = "connect", .protos = "range");
	T_EQ(b.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	T_EQ(b.generation, -1);
	JOIN(c, &b, 1, .protos = "roundrobin");
	T_EQ(b.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	T_EQ(grp_find(c, "g")->nmembers, 1);
	/* One protocol in common is enough. */
	JOIN(c, &b, 1, .protos = "roundrobin,sticky");
	T_EQ(b.calls, 0);
	T_EQ(grp_find(c, "g")->nmembers, 2);
	/* A member that drops every protocol the others support is refused too. */
	JOIN(c, &a, 2, .mid = a.member_id, .protos = "roundrobin");
	T_EQ(a.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
	grp_coord_destroy(c);
}

static void test_protocol_votes(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct jw a, b, d;

	/* Two votes for roundrobin beat the leader's one for range. */
	JOIN(c, &a, 0, .protos = "range,roundrobin");
	JOIN(c, &b, 0, .protos = "roundrobin,range");
	JOIN(c, &d, 0, .protos = "roundrobin,range");
	delay_ends(c);
	T_CHECK(strcmp(a.protocol, "roundrobin") == 0);
	T_CHECK(strcmp(grp_find(c, "g")->protocol, "roundrobin") == 0);
	T_CHECK(strcmp(a.metas[0], "m/roundrobin") == 0);
	grp_coord_destroy(c);

	/* A tie goes to the leader's preference. */
	c = coord(100, INT32_MAX);
	JOIN(c, &a, 0, .protos = "range,roundrobin");
	JOIN(c, &b, 0, .protos = "roundrobin,range");
	delay_ends(c);
	T_CHECK(strcmp(b.protocol, "range") == 0);
	grp_coord_destroy(c);

	/* Votes go to each member's first protocol that everyone supports. */
	c = coord(100, INT32_MAX);
	JOIN(c, &a, 0, .protos = "x,sticky,range");
	JOIN(c, &b, 0, .protos = "y,sticky,range");
	JOIN(c, &d, 0, .protos = "range,sticky");
	delay_ends(c);
	T_CHECK(strcmp(a.protocol, "sticky") == 0);
	grp_coord_destroy(c);
}

static void test_rejoin_unchanged(void)
{
	struct fx f;
	int32_t gen = form(&f, 2);
	struct jw b, a;
	struct group *g = grp_find(f.c, "g");

	/* A follower rejoining unchanged in Stable: answered at once, no rebalance. */
	JOIN(f.c, &b, 1000, .mid = f.id[1], .meta = "B");
	T_EQ(b.calls, 1);
	T_EQ(b.error, KERR_NONE);
	T_EQ(b.generation, gen);
	T_CHECK(strcmp(b.leader, f.id[0]) == 0);
	T_EQ(b.nmembers, 0);
	T_EQ(g->state, GRP_STABLE);
	/* With new metadata it rebalances. */
	JOIN(f.c, &b, 1001, .mid = f.id[1], .meta = "B2");
	T_EQ(b.calls, 0);
	T_EQ(g->state, GRP_PREPARING);
	/* A second JoinGroup while the first is parked answers the first. */
	struct jw b2;
	JOIN(f.c, &b2, 1002, .mid = f.id[1], .meta = "B2");
	T_EQ(b.calls, 1);
	T_EQ(b.error, KERR_REBALANCE_IN_PROGRESS);
	T_EQ(b2.calls, 0);
	JOIN(f.c, &a, 1003, .mid = f.id[0], .meta = "A");
	T_EQ(b2.calls, 1);
	T_EQ(g->state, GRP_COMPLETING);
	T_CHECK(strcmp(a.metas[1], "B2/range") == 0);
	/* In CompletingRebalance an unchanged rejoin repeats the answer; the leader's has members. */
	JOIN(f.c, &a, 1004, .mid = f.id[0], .meta = "A");
	T_EQ(a.calls, 1);
	T_EQ(a.generation, gen + 1);
	T_EQ(a.nmembers, 2);
	T_EQ(g->state, GRP_COMPLETING);
	grp_coord_destroy(f.c);
}

static void test_static_members(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct jw d, s, s2, s3, d2;
	struct sw sd, ss, ss2;
	struct group *g;
	char old[128];
	const char *ids[2], *data[2] = { "as-D", "as-S" };
	int32_t gen;

	/* D (dynamic) leads; S is static with instance "i1".  Range is chosen (a tie). */
	JOIN(c, &d, 0, .meta = "D", .protos = "range,roundrobin");
	JOIN(c, &s, 0, .meta = "S", .iid = "i1", .client = "cl", .protos = "roundrobin,range");
	delay_ends(c);
	g = grp_find(c, "g");
	T_CHECK(strncmp(s.member_id, "i1-", 3) == 0);
	T_CHECK(strcmp(s.protocol, "range") == 0);
	ids[0] = d.member_id;
	ids[1] = s.member_id;
	sync(c, &sd, 300, d.member_id, 1, 2, ids, data);
	sync(c, &ss, 300, s.member_id, 1, 0, NULL, NULL);
	T_CHECK(strcmp(ss.assignment, "as-S") == 0);
	T_EQ(g->state, GRP_STABLE);

	/* Fencing: the instance under another member id. */
	T_EQ(grp_heartbeat(c, "g", "zombie", "i1", 1, 400), KERR_FENCED_INSTANCE_ID);
	T_EQ(grp_heartbeat(c, "g", s.member_id, "i1", 1, 400), KERR_NONE);
	T_EQ(grp_heartbeat(c, "g", s.member_id, "i9", 1, 400), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_commit_check(c, "g", "zombie", "i1", 1, 400), KERR_FENCED_INSTANCE_ID);
	T_EQ(grp_commit_check(c, "g", s.member_id, "i1", 1, 400), KERR_NONE);
	T_EQ(grp_leave(c, "g", "zombie", "i1", 400), KERR_FENCED_INSTANCE_ID);
	sync(c, &ss2, 400, "zombie", 1, 0, NULL, NULL);
	T_EQ(ss2.error, KERR_UNKNOWN_MEMBER_ID);
	{
		struct grp_sync_args a = { .group_id = "g", .member_id = "zombie",
					   .instance_id = "i1", .generation = 1 };
		sinit(&ss2);
		grp_sync(c, &a, 400, &ss2.w);
		T_EQ(ss2.error, KERR_FENCED_INSTANCE_ID);
	}
	JOIN(c, &s2, 400, .mid = "zombie", .iid = "i1", .meta = "S");
	T_EQ(s2.error, KERR_FENCED_INSTANCE_ID);
	T_EQ(g->state, GRP_STABLE);

	/*
	 * S restarts: it rejoins with "" and takes a new id, without a
	 * rebalance, though its metadata differs.
	 */
	snprintf(old, sizeof(old), "%s", s.member_id);
	JOIN(c, &s2, 500, .iid = "i1", .meta = "S-restarted", .client = "cl",
	     .protos = "roundrobin,range");
	T_EQ(s2.calls, 1);
	T_EQ(s2.error, KERR_NONE);
	T_EQ(s2.generation, 1);
	T_CHECK(strcmp(s2.member_id, old) != 0);
	T_CHECK(strncmp(s2.member_id, "i1-", 3) == 0);
	T_CHECK(strcmp(s2.leader, d.member_id) == 0);
	T_CHECK(strcmp(s2.protocol, "range") == 0);
	T_EQ(s2.nmembers, 0);
	T_EQ(g->state, GRP_STABLE);
	T_EQ(g->nmembers, 2);
	T_EQ(grp_heartbeat(c, "g", old, "i1", 1, 501), KERR_FENCED_INSTANCE_ID);
	T_EQ(grp_heartbeat(c, "g", old, NULL, 1, 501), KERR_UNKNOWN_MEMBER_ID);
	/* It keeps its assignment. */
	sync(c, &ss, 502, s2.member_id, 1, 0, NULL, NULL);
	T_EQ(ss.error, KERR_NONE);
	T_CHECK(strcmp(ss.assignment, "as-S") == 0);

	/* Protocols that change the group's choice (range is gone) rebalance. */
	JOIN(c, &s3, 600, .iid = "i1", .protos = "roundrobin");
	T_EQ(s3.calls, 0);
	T_EQ(g->state, GRP_PREPARING);
	JOIN(c, &d2, 601, .mid = d.member_id, .protos = "range,roundrobin", .meta = "D");
	T_EQ(d2.calls, 1);
	T_EQ(s3.calls, 1);
	T_CHECK(strcmp(s3.protocol, "roundrobin") == 0);
	T_EQ(g->state, GRP_COMPLETING);
	gen = s3.generation;
	T_EQ(gen, 2);

	/* A parked SyncGroup of the old id is fenced when the instance rejoins. */
	snprintf(old, sizeof(old), "%s", s3.member_id);
	sync(c, &ss, 700, old, gen, 0, NULL, NULL);
	T_EQ(ss.calls, 0);
	JOIN(c, &s, 701, .iid = "i1", .protos = "roundrobin");
	T_EQ(ss.calls, 1);
	T_EQ(ss.error, KERR_FENCED_INSTANCE_ID);
	/* In CompletingRebalance that rejoin starts a rebalance. */
	T_EQ(g->state, GRP_PREPARING);
	T_EQ(s.calls, 0);
	/* ... and a parked JoinGroup of the old id is fenced the same way. */
	snprintf(old, sizeof(old), "%s", g->members->next->id);
	JOIN(c, &s2, 702, .iid = "i1", .protos = "roundrobin");
	T_EQ(s.calls, 1);
	T_EQ(s.error, KERR_FENCED_INSTANCE_ID);
	T_CHECK(strcmp(s.member_id, old) == 0);
	JOIN(c, &d2, 703, .mid = d.member_id, .protos = "range,roundrobin", .meta = "D");
	T_EQ(s2.calls, 1);
	T_EQ(g->state, GRP_COMPLETING);
	gen = s2.generation;
	sync(c, &sd, 704, d.member_id, gen, 0, NULL, NULL);
	sync(c, &ss, 704, s2.member_id, gen, 0, NULL, NULL);
	T_EQ(g->state, GRP_STABLE);

	/* The static leader rejoining rebalances (S leads once D has left). */
	T_EQ(grp_leave(c, "g", d.member_id, NULL, 800), KERR_NONE);
	JOIN(c, &s3, 801, .mid = s2.member_id, .iid = "i1", .protos = "roundrobin");
	T_EQ(s3.calls, 1);
	T_CHECK(strcmp(s3.leader, s2.member_id) == 0);
	sync(c, &ss, 802, s2.member_id, s3.generation, 0, NULL, NULL);
	T_EQ(g->state, GRP_STABLE);
	JOIN(c, &s, 803, .iid = "i1", .protos = "roundrobin");
	T_EQ(s.calls, 1);		/* alone, the rebalance completes at once */
	T_EQ(s.generation, s3.generation + 1);
	T_CHECK(strcmp(s.leader, s.member_id) == 0);
	T_EQ(s.nmembers, 1);
	T_EQ(g->state, GRP_COMPLETING);

	/* Removal by instance id alone. */
	T_EQ(grp_leave(c, "g", "", "i9", 900), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_leave(c, "g", "", NULL, 900), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_leave(c, "g", "", "i1", 900), KERR_NONE);
	T_CHECK(grp_find(c, "g") != NULL && grp_find(c, "g")->nmembers == 0);
	grp_coord_destroy(c);
}

/* A static member that does not rejoin stays through the rebalance timeout. */
static void test_static_member_not_rejoining(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct jw d, s, d2;
	struct sw sd, ss;
	struct group *g;

	JOIN(c, &d, 0, .meta = "D");
	JOIN(c, &s, 0, .meta = "S", .iid = "i1");
	delay_ends(c);
	g = grp_find(c, "g");
	sync(c, &sd, 300, d.member_id, 1, 0, NULL, NULL);
	sync(c, &ss, 300, s.member_id, 1, 0, NULL, NULL);
	JOIN(c, &d2, 1000, .mid = d.member_id, .meta = "D");
	T_EQ(grp_heartbeat(c, "g", s.member_id, "i1", 1, 9000), KERR_REBALANCE_IN_PROGRESS);
	T_EQ(grp_heartbeat(c, "g", s.member_id, "i1", 1, 18000), KERR_REBALANCE_IN_PROGRESS);
	T_EQ(grp_heartbeat(c, "g", s.member_id, "i1", 1, 27000), KERR_REBALANCE_IN_PROGRESS);
	grp_tick(c, 31000);
	T_EQ(d2.calls, 1);
	T_EQ(d2.nmembers, 2);
	T_EQ(g->nmembers, 2);
	T_EQ(g->state, GRP_COMPLETING);
	grp_coord_destroy(c);
}

static void test_commit_checks(void)
{
	struct fx f;
	struct grp_offset o = { .topic = "t", .partition = 1, .offset = 9, .leader_epoch = 3,
				.metadata = NULL, .commit_ms = 5, .expire_ms = -1 };
	struct group *g;
	struct jw a;
	int32_t gen;

	f.c = coord(0, INT32_MAX);
	/* Standalone commits into an unknown group are allowed; member commits are not. */
	T_EQ(grp_commit_check(f.c, "solo", "", NULL, -1, 0), KERR_NONE);
	T_EQ(grp_commit_check(f.c, "solo", "", NULL, 3, 0), KERR_ILLEGAL_GENERATION);
	T_EQ(grp_commit_check(f.c, "solo", "m1", NULL, -1, 0), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_commit_check(f.c, "solo", "", "i1", -1, 0), KERR_UNKNOWN_MEMBER_ID);
	T_CHECK(grp_find(f.c, "solo") == NULL);
	/* The commit itself creates it: Empty, no protocol type. */
	T_EQ(grp_offset_put(f.c, "solo", &o), 0);
	g = grp_find(f.c, "solo");
	T_CHECK(g != NULL);
	T_EQ(g->state, GRP_EMPTY);
	T_CHECK(g->protocol_type == NULL);
	T_EQ(g->generation, 0);
	T_CHECK(strcmp(grp_offset_find(g, "t", 1)->metadata, "") == 0);
	T_EQ(grp_commit_check(f.c, "solo", "", NULL, -1, 0), KERR_NONE);
	T_EQ(grp_commit_check(f.c, "solo", "m1", NULL, 0, 0), KERR_UNKNOWN_MEMBER_ID);
	/* Group id "" is allowed for commits. */
	T_EQ(grp_commit_check(f.c, "", "", NULL, -1, 0), KERR_NONE);
	T_EQ(grp_offset_put(f.c, "", &o), 0);
	T_CHECK(grp_find(f.c, "") != NULL);
	grp_coord_destroy(f.c);

	/* Member commits in a live group. */
	gen = form(&f, 2);
	T_EQ(grp_commit_check(f.c, "g", f.id[1], NULL, gen, 500), KERR_NONE);
	T_EQ(grp_commit_check(f.c, "g", f.id[1], NULL, gen + 1, 500), KERR_ILLEGAL_GENERATION);
	T_EQ(grp_commit_check(f.c, "g", f.id[1], NULL, -1, 500), KERR_ILLEGAL_GENERATION);
	T_EQ(grp_commit_check(f.c, "g", "nobody", NULL, gen, 500), KERR_UNKNOWN_MEMBER_ID);
	T_EQ(grp_commit_check(f.c, "g", "", NULL, -1, 500), KERR_UNKNOWN_MEMBER_ID);
	/* A commit renews the session: A's (from 100) is now the earliest. */
	T_EQ(grp_commit_check(f.c, "g", f.id[0], NULL, gen, 600), KERR_NONE);
	T_EQ(grp_next_deadline(f.c), 500 + 10000);
	/* PreparingRebalance still takes commits of the old generation. */
	JOIN(f.c, &a, 700, .mid = f.id[0], .meta = "A");
	T_EQ(grp_commit_check(f.c, "g", f.id[1], NULL, gen, 701), KERR_NONE);
	/* CompletingRebalance does not. */
	struct jw b;
	JOIN(f.c, &b, 702, .mid = f.id[1], .meta = "B");
	T_EQ(state(f.c), GRP_COMPLETING);
	T_EQ(grp_commit_check(f.c, "g", f.id[1], NULL, gen + 1, 703), KERR_REBALANCE_IN_PROGRESS);
	T_EQ(grp_commit_check(f.c, "g", f.id[1], NULL, gen, 703), KERR_ILLEGAL_GENERATION);
	grp_coord_destroy(f.c);
}

static void test_offsets_table(void)
{
	struct grp_coord *c = coord(0, INT32_MAX);
	struct grp_offset o = { .topic = "t", .leader_epoch = -1, .metadata = "md",
				.expire_ms = -1 };
	struct group *g;
	int n = 0;

	for (int p = 0; p < 200; p++) {
		o.partition = p;
		o.offset = 1000 + p;
		T_EQ(grp_offset_put(c, "g", &o), 0);
	}
	o.topic = "u";
	for (int p = 0; p < 3; p++) {
		o.partition = p;
		o.offset = p;
		T_EQ(grp_offset_put(c, "g", &o), 0);
		T_EQ(grp_offset_put(c, "h", &o), 0);
	}
	g = grp_find(c, "g");
	T_EQ(g->noffsets, 203);
	for (int p = 0; p < 200; p++)
		T_EQ(grp_offset_find(g, "t", p)->offset, 1000 + p);
	T_CHECK(grp_offset_find(g, "t", 200) == NULL);
	T_CHECK(grp_offset_find(g, "x", 0) == NULL);
	/* An update keeps the place of the first commit. */
	o.topic = "t";
	o.partition = 0;
	o.offset = 7;
	o.metadata = "new";
	o.leader_epoch = 4;
	T_EQ(grp_offset_put(c, "g", &o), 0);
	T_EQ(g->noffsets, 203);
	T_CHECK(g->offsets == grp_offset_find(g, "t", 0));
	T_EQ(g->offsets->offset, 7);
	T_EQ(g->offsets->leader_epoch, 4);
	T_CHECK(strcmp(g->offsets->metadata, "new") == 0);
	/* One partition, then a whole topic. */
	grp_offset_del(c, "g", "t", 5);
	T_CHECK(grp_offset_find(g, "t", 5) == NULL);
	T_EQ(g->noffsets, 202);
	grp_offset_del(c, "g", "t", -1);
	T_EQ(g->noffsets, 3);
	for (struct grp_offset *x = g->offsets; x; x = x->next, n++)
		T_EQ(x->partition, n);
	T_EQ(n, 3);
	/* Appending after deletions keeps the list whole. */
	o.topic = "v";
	T_EQ(grp_offset_put(c, "g", &o), 0);
	T_CHECK(g->offsets->next->next->next == grp_offset_find(g, "v", 0));
	/* Topic "u" is deleted: h had nothing else and goes; g keeps "v". */
	grp_offsets_drop_topic(c, "u");
	T_CHECK(grp_find(c, "h") == NULL);
	T_EQ(g->noffsets, 1);
	grp_offset_del(c, "g", "v", 0);
	T_CHECK(grp_find(c, "g") == NULL);
	grp_offset_del(c, "nope", "v", 0);
	grp_coord_destroy(c);
}

struct expired { int n; char last[64]; };

static void on_expire(void *arg, const struct group *g, const struct grp_offset *o)
{
	struct expired *e = arg;

	e->n++;
	snprintf(e->last, sizeof(e->last), "%s/%s/%d", g->id, o->topic, (int)o->partition);
}

static void test_offset_expiry(void)
{
	struct fx f;
	struct grp_offset o = { .topic = "t", .leader_epoch = -1, .metadata = "",
				.expire_ms = -1 };
	struct expired e = { 0 };
	int32_t gen;

	gen = form(&f, 1);
	/* A standalone group, commit at wall 1000; the live group g has old commits too. */
	o.commit_ms = 1000;
	T_EQ(grp_offset_put(f.c, "solo", &o), 0);
	grp_find(f.c, "solo")->empty_since_ms = 500;
	o.commit_ms = 0;
	T_EQ(grp_offset_put(f.c, "g", &o), 0);
	grp_find(f.c, "g")->empty_since_ms = 0;	/* only its state protects it */
	/* Explicit expiry (OffsetCommit v1-4). */
	o.partition = 1;
	o.commit_ms = 1000;
	o.expire_ms = 3000;
	T_EQ(grp_offset_put(f.c, "solo", &o), 0);
	grp_expire_offsets(f.c, 2999, 5000, on_expire, &e);
	T_EQ(e.n, 0);
	grp_expire_offsets(f.c, 3000, 5000, on_expire, &e);
	T_EQ(e.n, 1);
	T_CHECK(strcmp(e.last, "solo/t/1") == 0);
	grp_expire_offsets(f.c, 5999, 5000, on_expire, &e);
	T_EQ(e.n, 1);
	/* The retention has passed for both; only the Empty group loses its offset, and goes. */
	grp_expire_offsets(f.c, 6000, 5000, on_expire, &e);
	T_EQ(e.n, 2);
	T_CHECK(strcmp(e.last, "solo/t/0") == 0);
	T_CHECK(grp_find(f.c, "solo") == NULL);
	T_EQ(grp_find(f.c, "g")->noffsets, 1);
	/* g empties at wall 100000: its retention runs from then, not from the commit. */
	wall = 100000;
	T_EQ(grp_leave(f.c, "g", f.id[0], NULL, 1000), KERR_NONE);
	T_EQ(state(f.c), GRP_EMPTY);
	T_EQ(grp_find(f.c, "g")->generation, gen + 1);
	grp_expire_offsets(f.c, 104999, 5000, on_expire, &e);
	T_EQ(e.n, 2);
	grp_expire_offsets(f.c, 105000, 5000, NULL, NULL);
	T_CHECK(grp_find(f.c, "g") == NULL);
	grp_coord_destroy(f.c);
}

static void test_delete(void)
{
	struct fx f;
	struct grp_offset o = { .topic = "t", .leader_epoch = -1, .metadata = "",
				.expire_ms = -1 };

	form(&f, 1);
	T_EQ(grp_delete(f.c, "nope"), KERR_GROUP_ID_NOT_FOUND);
	T_EQ(grp_delete(f.c, "g"), KERR_NON_EMPTY_GROUP);
	T_EQ(grp_offset_put(f.c, "g", &o), 0);
	T_EQ(grp_leave(f.c, "g", f.id[0], NULL, 1000), KERR_NONE);
	T_EQ(state(f.c), GRP_EMPTY);
	T_EQ(grp_delete(f.c, "g"), KERR_NONE);
	T_CHECK(grp_find(f.c, "g") == NULL);
	T_EQ(grp_delete(f.c, "g"), KERR_GROUP_ID_NOT_FOUND);
	/* A group in a rebalance is not Empty even when its members have all left. */
	struct jw j;
	struct grp_coord *c = coord(3000, INT32_MAX);
	JOIN(c, &j, 0);
	T_EQ(grp_leave(c, "g", j.w.m ? j.w.m->id : "", NULL, 1), KERR_NONE);
	T_EQ(grp_delete(c, "g"), KERR_NON_EMPTY_GROUP);
	grp_tick(c, 3000);
	T_EQ(grp_delete(c, "g"), KERR_NONE);
	T_CHECK(grp_find(c, "g") == NULL);
	grp_coord_destroy(c);
	grp_coord_destroy(f.c);
}

static void test_max_size(void)
{
	struct grp_coord *c = coord(100, 2);
	struct jw a, b, d, d2;
	struct sw sa, sb;
	struct group *g;

	JOIN(c, &a, 0);
	JOIN(c, &b, 0);
	/* PreparingRebalance counts members waiting in JoinGroup. */
	JOIN(c, &d, 0);
	T_EQ(d.error, KERR_GROUP_MAX_SIZE_REACHED);
	T_CHECK(strcmp(d.member_id, "") == 0);
	delay_ends(c);
	g = grp_find(c, "g");
	T_EQ(g->nmembers, 2);
	sync(c, &sa, 300, a.member_id, 1, 0, NULL, NULL);
	sync(c, &sb, 300, b.member_id, 1, 0, NULL, NULL);
	/* Stable counts members; known members still rejoin. */
	JOIN(c, &d, 400);
	T_EQ(d.error, KERR_GROUP_MAX_SIZE_REACHED);
	JOIN(c, &d, 400, .require = 1);
	T_EQ(d.error, KERR_GROUP_MAX_SIZE_REACHED);
	T_EQ(g->npending, 0);
	JOIN(c, &d2, 401, .mid = b.member_id);
	T_EQ(d2.error, KERR_NONE);
	T_EQ(g->state, GRP_STABLE);
	grp_coord_destroy(c);
}

static void test_cancel(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct jw a, b;
	struct sw sb, sa;
	struct group *g;

	JOIN(c, &a, 0, .meta = "A");
	JOIN(c, &b, 0, .meta = "B");
	g = grp_find(c, "g");
	grp_join_cancel(c, &b.w);
	T_CHECK(b.w.m == NULL);
	delay_ends(c);
	/* B's callback never runs, but B is still a member of the new generation. */
	T_EQ(b.calls, 0);
	T_EQ(a.calls, 1);
	T_EQ(a.nmembers, 2);
	T_EQ(g->nmembers, 2);
	const char *bid = a.mids[1];
	sync(c, &sb, 300, bid, 1, 0, NULL, NULL);
	T_EQ(sb.calls, 0);
	grp_sync_cancel(c, &sb.w);
	grp_sync_cancel(c, &sb.w);	/* twice is harmless */
	sync(c, &sa, 301, a.member_id, 1, 0, NULL, NULL);
	T_EQ(sa.calls, 1);
	T_EQ(sb.calls, 0);
	T_EQ(g->state, GRP_STABLE);
	/* Cancelling an answered wait changes nothing. */
	grp_join_cancel(c, &a.w);
	grp_sync_cancel(c, &sa.w);
	T_EQ(g->nmembers, 2);
	grp_coord_destroy(c);

	/*
	 * A member whose SyncGroup was cancelled has synced: like a parked one,
	 * its session waits for the leader's SyncGroup, which starts it again.
	 */
	c = coord(100, INT32_MAX);
	JOIN(c, &a, 0, .meta = "A");
	JOIN(c, &b, 0, .meta = "B");
	delay_ends(c);
	g = grp_find(c, "g");
	sync(c, &sb, 300, b.member_id, 1, 0, NULL, NULL);
	grp_sync_cancel(c, &sb.w);
	T_EQ(grp_heartbeat(c, "g", a.member_id, NULL, 1, 9000), KERR_NONE);
	grp_tick(c, FORMED + 10000);
	T_EQ(g->nmembers, 2);
	sync(c, &sa, 10300, a.member_id, 1, 0, NULL, NULL);
	T_EQ(g->state, GRP_STABLE);
	T_EQ(sb.calls, 0);
	grp_tick(c, 20000);
	T_EQ(g->nmembers, 2);
	T_EQ(grp_next_deadline(c), 10300 + 10000);
	grp_coord_destroy(c);
}

/* Destroy with joins and syncs parked, pending ids and offsets: ASan finds no leak. */
static void test_destroy_with_waits(void)
{
	struct grp_coord *c = coord(100, INT32_MAX);
	struct grp_offset o = { .topic = "t", .leader_epoch = -1, .metadata = "x",
				.expire_ms = -1 };
	struct jw a, b, p, x;
	struct sw sb;

	JOIN(c, &a, 0, .meta = "A", .protos = "range,roundrobin");
	JOIN(c, &b, 0, .meta = "B");
	delay_ends(c);
	sync(c, &sb, 300, b.member_id, 1, 0, NULL, NULL);
	JOIN(c, &p, 301, .require = 1);
	T_EQ(grp_offset_put(c, "g", &o), 0);
	JOIN(c, &x, 302, .gid = "other", .iid = "i", .meta = "X");
	T_EQ(x.calls, 0);
	T_EQ(grp_offset_put(c, "third", &o), 0);
	grp_coord_destroy(c);
	T_EQ(sb.calls, 0);
	T_EQ(x.calls, 0);
	grp_coord_destroy(NULL);
}

/* Many groups: the table grows and every group stays reachable, in creation order. */
static void test_many_groups(void)
{
	struct grp_coord *c = coord(0, INT32_MAX);
	struct grp_offset o = { .topic = "t", .leader_epoch = -1, .metadata = "",
				.expire_ms = -1 };
	char id[32];
	int n = 0;

	for (int i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "group-%d", i);
		T_EQ(grp_offset_put(c, id, &o), 0);
	}
	for (int i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "group-%d", i);
		T_CHECK(grp_find(c, id) != NULL);
	}
	for (struct group *g = grp_first(c); g; g = g->lnext, n++) {
		snprintf(id, sizeof(id), "group-%d", n);
		T_CHECK(strcmp(g->id, id) == 0);
	}
	T_EQ(n, 500);
	for (int i = 0; i < 500; i += 2) {
		snprintf(id, sizeof(id), "group-%d", i);
		T_EQ(grp_delete(c, id), KERR_NONE);
	}
	n = 0;
	for (struct group *g = grp_first(c); g; g = g->lnext)
		n++;
	T_EQ(n, 250);
	T_CHECK(grp_find(c, "group-1") != NULL);
	T_CHECK(grp_find(c, "group-2") == NULL);
	grp_offsets_drop_topic(c, "t");
	T_CHECK(grp_first(c) == NULL);
	grp_coord_destroy(c);
}

int main(void)
{
	T_RUN(test_state_names);
	T_RUN(test_transitions);
	T_RUN(test_join_checks);
	T_RUN(test_member_id_required);
	T_RUN(test_pending_only_group_goes);
	T_RUN(test_initial_delay_three_members);
	T_RUN(test_initial_delay_limit);
	T_RUN(test_sync);
	T_RUN(test_heartbeat);
	T_RUN(test_session_expiry);
	T_RUN(test_rebalance_timeout);
	T_RUN(test_rebalance_timeout_new_leader);
	T_RUN(test_pending_sync_expiry);
	T_RUN(test_leader_leaves);
	T_RUN(test_leave_while_parked);
	T_RUN(test_protocol_checks);
	T_RUN(test_protocol_votes);
	T_RUN(test_rejoin_unchanged);
	T_RUN(test_static_members);
	T_RUN(test_static_member_not_rejoining);
	T_RUN(test_commit_checks);
	T_RUN(test_offsets_table);
	T_RUN(test_offset_expiry);
	T_RUN(test_delete);
	T_RUN(test_max_size);
	T_RUN(test_cancel);
	T_RUN(test_destroy_with_waits);
	T_RUN(test_many_groups);
	return t_done();
}
