/*
 * fuzz_group.c - libFuzzer target for the group coordinator engine.
 *
 * Each input is a program: a sequence of operations (join, sync, heartbeat,
 * leave, commit check, offset put and delete, expiry, delete, cancel, tick)
 * on a handful of groups, members and instance ids, with times that only move
 * forward.  Members talk as a client would, with the ids and generations the
 * engine handed them, and sometimes with stale or made-up ones.
 *
 * Besides "never crash, never leak", it checks what the engine promises:
 * every wait is answered at most once and never after its cancel; at the
 * end, destroying the coordinator answers nothing more; a group's state and
 * members agree with the invariants of group.c (leader iff members; a protocol
 * in CompletingRebalance and Stable, none while Empty).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kafka/group.h"
#include "kafka/kerr.h"

#define NSLOT 6

struct slot {
	struct grp_join_wait jw;
	struct grp_sync_wait sw;
	int jparked, sparked;
	char id[128];
	int32_t gen;
};

static struct slot slots[NSLOT];
static int64_t wall;

static int64_t fake_wall(void)
{
	return wall;
}

static void on_join(struct grp_join_wait *w, const struct grp_join_result *r)
{
	struct slot *s = w->arg;

	if (!s->jparked)
		abort();	/* answered twice, or after a cancel */
	s->jparked = 0;
	if (r->error == KERR_NONE || r->error == KERR_MEMBER_ID_REQUIRED)
		snprintf(s->id, sizeof(s->id), "%s", r->member_id ? r->member_id : "");
	if (r->error == KERR_NONE)
		s->gen = r->generation;
	for (int i = 0; i < r->nmembers; i++)
		if (!r->members[i] || !r->members[i]->id)
			abort();
}

static void on_sync(struct grp_sync_wait *w, const struct grp_sync_result *r)
{
	struct slot *s = w->arg;

	if (!s->sparked)
		abort();
	s->sparked = 0;
	if (r->len && !r->assignment)
		abort();
}

static void check(struct grp_coord *c)
{
	for (struct group *g = grp_first(c); g; g = g->lnext) {
		int n = 0;
		for (struct grp_member *m = g->members; m; m = m->next)
			n++;
		if (n != g->nmembers || (g->leader == NULL) != (g->nmembers == 0))
			abort();
		if ((g->state == GRP_COMPLETING || g->state == GRP_STABLE) && !g->protocol)
			abort();
		if (g->state == GRP_EMPTY && g->protocol)
			abort();
		if (g->state == GRP_DEAD)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const char *const groups[] = { "a", "b", "" };
	static const char *const insts[] = { NULL, "i1", "i2" };
	static const char *const ptypes[] = { "consumer", "connect" };
	static const char *const pnames[] = { "range", "roundrobin", "cooperative-sticky" };
	struct grp_config cfg = { 6, 60, 0, 4, fake_wall };
	int64_t now = 0;

	wall = 1000000;
	memset(slots, 0, sizeof(slots));
	cfg.initial_delay_ms = n > 0 ? d[0] % 3 * 5 : 0;
	struct grp_coord *c = grp_coord_new(&cfg);
	if (!c)
		return 0;
	for (size_t i = 1; i + 3 <= n; i += 3) {
		uint8_t op = d[i], a = d[i + 1], b = d[i + 2];
		struct slot *s = &slots[a % NSLOT];
		const char *gid = groups[(a >> 3) % 3];
		const char *iid = insts[b % 3];
		const char *mid = (b & 0x80) ? "bogus" : s->id;
		int32_t gen = (b & 0x40) ? s->gen - 1 : s->gen;

		switch (op % 12) {
		case 0: {	/* join */
			if (s->jparked)
				break;
			struct grp_protocol ps[2] = {
				{ (char *)pnames[b % 3], (uint8_t *)"m1", 2 },
				{ (char *)pnames[(b >> 2) % 3], (uint8_t *)"m2", 2 },
			};
			struct grp_join_args ja = {
				.group_id = gid, .member_id = (b & 0x20) ? "" : mid, .instance_id = iid,
				.protocol_type = ptypes[(b >> 4) & 1], .protocols = ps,
				.nprotocols = 1 + ((b >> 5) & 1), .session_ms = 6 + (a & 15),
				.rebalance_ms = (a & 1) ? -1 : 10 + (b & 31),
				.require_known_id = (a >> 6) & 1, .client_id = "fz", .client_host = "/h",
			};
			s->jw.fn = on_join;
			s->jw.arg = s;
			s->jparked = 1;
			grp_join(c, &ja, now, &s->jw);
			break;
		}
		case 1: {	/* sync, as leader or not */
			if (s->sparked)
				break;
			struct grp_assignment as[2] = {
				{ slots[0].id, (const uint8_t *)"x", 1 },
				{ s->id, (const uint8_t *)"yy", 2 },
			};
			struct grp_sync_args sa = {
				.group_id = gid, .member_id = mid, .instance_id = iid, .generation = gen,
				.protocol_type = (b & 1) ? ptypes[0] : NULL,
				.protocol = (b & 2) ? pnames[b % 3] : NULL,
				.assignments = as, .nassignments = (b & 4) ? 2 : 0,
			};
			s->sw.fn = on_sync;
			s->sw.arg = s;
			s->sparked = 1;
			grp_sync(c, &sa, now, &s->sw);
			break;
		}
		case 2:
			(void)grp_heartbeat(c, gid, mid, iid, gen, now);
			break;
		case 3:
			(void)grp_leave(c, gid, (b & 8) ? "" : mid, iid, now);
			break;
		case 4:
			(void)grp_commit_check(c, gid, (b & 8) ? "" : mid, iid, (b & 16) ? -1 : gen, now);
			break;
		case 5: {
			struct grp_offset o = { .topic = (char *)((b & 1) ? "t1" : "t2"),
						.partition = b % 4, .offset = a, .leader_epoch = -1,
						.metadata = (char *)"md", .commit_ms = wall,
						.expire_ms = (b & 2) ? wall + a : -1 };
			(void)grp_offset_put(c, gid, &o);
			break;
		}
		case 6:
			grp_offset_del(c, gid, (b & 1) ? "t1" : "t2", (b & 2) ? -1 : b % 4);
			break;
		case 7:
			wall += a * 10;
			grp_expire_offsets(c, wall, b, NULL, NULL);
			break;
		case 8:
			(void)grp_delete(c, gid);
			break;
		case 9:
			if (s->jparked && (b & 1)) {
				grp_join_cancel(c, &s->jw);
				s->jparked = 0;
			}
			if (s->sparked && (b & 2)) {
				grp_sync_cancel(c, &s->sw);
				s->sparked = 0;
			}
			break;
		case 10:
			grp_offsets_drop_topic(c, (b & 1) ? "t1" : "t2");
			break;
		default:	/* time passes */
			now += a % 40;
			grp_tick(c, now);
			break;
		}
		check(c);
		int64_t next = grp_next_deadline(c);
		if (next < INT64_MAX && next < 0)
			abort();
	}
	/* Let every deadline pass, then nothing may remain parked forever. */
	for (int k = 0; k < 64 && grp_next_deadline(c) != INT64_MAX; k++) {
		now = grp_next_deadline(c) > now ? grp_next_deadline(c) : now + 1;
		grp_tick(c, now);
		check(c);
	}
	int drained = grp_next_deadline(c) == INT64_MAX;
	for (int k = 0; k < NSLOT; k++) {
		if (drained && (slots[k].jparked || slots[k].sparked))
			abort();	/* parked with no deadline left to end the wait */
		if (slots[k].jparked)
			grp_join_cancel(c, &slots[k].jw);
		if (slots[k].sparked)
			grp_sync_cancel(c, &slots[k].sw);
		slots[k].jparked = slots[k].sparked = 0;
	}
	grp_coord_destroy(c);
	return 0;
}
