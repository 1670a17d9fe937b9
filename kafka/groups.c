/*
 * groups.c - the group coordinator wired to the loop and the WAL.
 *
 * Owns: the broker's one struct grp_coord (kafka/group.h), the loop timer
 * that drives its deadlines, the periodic expiry of committed offsets, and
 * the journal records that make committed offsets durable.
 *
 * Timers: after every call into the engine, kgroups_kick() re-arms one loop
 * timer at grp_next_deadline(); when it fires, grp_tick() runs and the timer
 * is armed again.  Offset expiry runs every offsets.retention.check.interval.ms.
 *
 * Durability: committed offsets are metadata records in the WAL (the store's
 * meta journal, in log order with the data), the equivalent of Kafka's
 * __consumer_offsets.  A record is one of (docs/FORMAT.md, "Type 2, kind 2"):
 *
 *   kind u8 = 2 | op u8 | group: len u16, bytes | count i32 | count entries
 *   op 1, commit:  topic: len u16, bytes | partition i32 | offset i64 |
 *                  leader epoch i32 | commit ms i64 | expire ms i64 |
 *                  metadata: len i32, bytes
 *   op 2, delete:  topic: len u16, bytes | partition i32 (-1: every partition)
 *   op 3, delete the group (count is 0)
 *
 * Topic records share the journal; their first byte is their version, 1,
 * which is how replay tells the two kinds apart.  Offsets are applied to the
 * engine only once their record is durable, so OffsetFetch never returns an
 * offset a crash could take back.  Group membership is not journaled: after a
 * restart every group is Empty and members rejoin, as the issue allows.  A
 * recovered group counts as Empty from the moment of recovery, so expiry
 * never comes sooner than it would have without the restart.
 */
#include <stdlib.h>
#include <string.h>
#include "kreq.h"
#include "../kernel/log.h"

#define GJ_KIND 2

static void tick(struct loop *l, void *arg);
static void expire_tick(struct loop *l, void *arg);

int kgroups_init(struct kafka *k)
{
	struct grp_config gc = {
		.min_session_ms = k->cfg->group_min_session_ms,
		.max_session_ms = k->cfg->group_max_session_ms,
		.initial_delay_ms = k->cfg->group_initial_delay_ms,
		.max_size = k->cfg->group_max_size,
		.wall_ms = loop_wall_ms,
	};

	k->gc = grp_coord_new(&gc);
	if (!k->gc)
		return SL_E_NOMEM;
	loop_timer_init(&k->gtimer, tick, k);
	loop_timer_init(&k->etimer, expire_tick, k);
	loop_timer_set(k->l, &k->etimer, (uint64_t)k->cfg->offsets_retention_check_ms);
	return 0;
}

void kgroups_destroy(struct kafka *k)
{
	if (!k->gc)
		return;
	loop_timer_cancel(k->l, &k->gtimer);
	loop_timer_cancel(k->l, &k->etimer);
	grp_coord_destroy(k->gc);
	k->gc = NULL;
}

int64_t kgroups_now(struct kafka *k)
{
	return (int64_t)loop_now_ms(k->l);
}

void kgroups_kick(struct kafka *k)
{
	int64_t d = grp_next_deadline(k->gc);

	if (d == INT64_MAX) {
		loop_timer_cancel(k->l, &k->gtimer);
		return;
	}
	int64_t now = kgroups_now(k);
	loop_timer_set(k->l, &k->gtimer, d > now ? (uint64_t)(d - now) : 0);
}

static void tick(struct loop *l, void *arg)
{
	struct kafka *k = arg;

	grp_tick(k->gc, kgroups_now(k));
	kgroups_kick(k);
}

/* ---- journal records ---- */

void gj_begin(struct gjournal *j, uint8_t op, const char *group)
{
	size_t len = strlen(group);

	wr_init(&j->w, 0);
	j->n = 0;
	wr_u8(&j->w, GJ_KIND);
	wr_u8(&j->w, op);
	wr_u16(&j->w, (uint16_t)len);
	wr_bytes(&j->w, group, len);
	if (wr_reserve(&j->w, 4, &j->count_at) != 0)
		j->count_at = 0;
}

void gj_commit(struct gjournal *j, const struct grp_offset *o)
{
	size_t tl = strlen(o->topic), ml = strlen(o->metadata);

	wr_u16(&j->w, (uint16_t)tl);
	wr_bytes(&j->w, o->topic, tl);
	wr_i32(&j->w, o->partition);
	wr_i64(&j->w, o->offset);
	wr_i32(&j->w, o->leader_epoch);
	wr_i64(&j->w, o->commit_ms);
	wr_i64(&j->w, o->expire_ms);
	wr_i32(&j->w, (int32_t)ml);
	wr_bytes(&j->w, o->metadata, ml);
	j->n++;
}

void gj_delete(struct gjournal *j, const char *topic, int32_t partition)
{
	size_t tl = strlen(topic);

	wr_u16(&j->w, (uint16_t)tl);
	wr_bytes(&j->w, topic, tl);
	wr_i32(&j->w, partition);
	j->n++;
}

int gj_submit(struct kafka *k, struct gjournal *j, struct kjournal *kj)
{
	if (j->w.err == 0)
		wr_patch_i32(&j->w, j->count_at, j->n);
	int rc = kafka_journal(k, &j->w, kj);
	wr_free(&j->w);
	return rc;
}

void gj_abandon(struct gjournal *j)
{
	wr_free(&j->w);
}

/* Topic names in the journal obey the topic rules; cap them likewise. */
static int rd_name(struct sl_rd *r, char *out, size_t cap)
{
	uint16_t len;
	const uint8_t *p;

	if (rd_u16(r, &len) || len >= cap || rd_bytes(r, len, &p))
		return SL_E_INVALID;
	memcpy(out, p, len);
	out[len] = 0;
	return 0;
}

/*
 * One group record, applied to the engine (replay) or told to the tier as
 * manifest edits (to_tier); the same parse either way.
 */
static void apply(struct kafka *k, const uint8_t *p, size_t n, int to_tier)
{
	struct sl_rd r;
	uint8_t kind, op;
	int32_t count;
	char group[GJ_GROUP_ID_MAX + 1], topic[TOPIC_NAME_MAX + 1];
	const char *why = "truncated";

	rd_init(&r, p, n);
	if (rd_u8(&r, &kind) || rd_u8(&r, &op) || rd_name(&r, group, sizeof(group)) ||
	    rd_i32(&r, &count))
		goto bad;
	if (count < 0 || (size_t)count > rd_left(&r) / 6) {
		why = "bad count";
		goto bad;
	}
	if (op == 3 && to_tier) {
		tier_group_delete(k->tier, group);
		return;
	}
	if (op == 3) {
		if (grp_delete(k->gc, group) == KERR_NON_EMPTY_GROUP)
			log_warn("groups", "journal deletes group %s, which has members", group);
		return;
	}
	if (op != 1 && op != 2) {
		why = "unknown operation";
		goto bad;
	}
	for (int32_t i = 0; i < count; i++) {
		struct grp_offset o = { 0 };
		int32_t ml;
		const uint8_t *mp;

		if (rd_name(&r, topic, sizeof(topic)) || rd_i32(&r, &o.partition))
			goto bad;
		if (op == 2) {
			if (to_tier)
				tier_offset_delete(k->tier, group, topic, o.partition);
			else
				grp_offset_del(k->gc, group, topic, o.partition);
			continue;
		}
		if (rd_i64(&r, &o.offset) || rd_i32(&r, &o.leader_epoch) ||
		    rd_i64(&r, &o.commit_ms) || rd_i64(&r, &o.expire_ms) || rd_i32(&r, &ml) ||
		    ml < 0 || rd_bytes(&r, (size_t)ml, &mp))
			goto bad;
		char *meta = malloc((size_t)ml + 1);
		if (!meta) {
			why = "out of memory";
			goto bad;
		}
		memcpy(meta, mp, (size_t)ml);
		meta[ml] = 0;
		o.topic = topic;
		o.metadata = meta;
		int rc = 0;
		if (to_tier) {
			struct mf_offset mo = { group, topic, o.partition, o.offset, o.leader_epoch,
						meta, o.commit_ms, o.expire_ms };
			tier_offset_commit(k->tier, &mo);
		} else {
			rc = grp_offset_put(k->gc, group, &o);
		}
		free(meta);
		if (rc != 0) {
			why = "out of memory";
			goto bad;
		}
	}
	return;
bad:
	if (!to_tier)
		log_error("groups", "malformed group record in the journal (%zu bytes): %s; skipped",
			  n, why);
}

void kgroups_replay(struct kafka *k, const uint8_t *p, size_t n)
{
	apply(k, p, n, 0);
}

void kgroups_to_tier(struct kafka *k, const uint8_t *p, size_t n)
{
	apply(k, p, n, 1);
}

/* ---- expiry ---- */

struct expiry {
	struct kafka *k;
	const struct group *g;	/* the group being collected */
	struct gjournal j;
	int open;
	int64_t total;
};

static void expired_journaled(struct kjournal *kj, int err)
{
	if (err)
		log_warn("groups", "journaling expired offsets failed: %s; they may reappear after a restart",
			 sl_strerror(err));
	free(kj);
}

static void expiry_flush(struct expiry *e)
{
	if (!e->open)
		return;
	e->open = 0;
	struct kjournal *kj = calloc(1, sizeof(*kj));
	if (!kj) {
		gj_abandon(&e->j);
		return;
	}
	kj->done = expired_journaled;
	if (gj_submit(e->k, &e->j, kj) != 0) {
		log_warn("groups", "cannot journal expired offsets; they may reappear after a restart");
		free(kj);
	}
}

static void on_expired(void *arg, const struct group *g, const struct grp_offset *o)
{
	struct expiry *e = arg;

	if (e->open && e->g != g)
		expiry_flush(e);
	if (!e->open) {
		gj_begin(&e->j, 2, g->id);
		e->g = g;
		e->open = 1;
	}
	gj_delete(&e->j, o->topic, o->partition);
	e->total++;
}

void kgroups_expire(struct kafka *k, int64_t wall_now)
{
	struct expiry e = { .k = k };

	grp_expire_offsets(k->gc, wall_now, (int64_t)k->cfg->offsets_retention_minutes * 60000,
			   on_expired, &e);
	expiry_flush(&e);
	if (e.total)
		log_info("groups", "expired %lld committed offsets", (long long)e.total);
	kgroups_kick(k);
}

static void expire_tick(struct loop *l, void *arg)
{
	struct kafka *k = arg;

	kgroups_expire(k, loop_wall_ms());
	loop_timer_set(k->l, &k->etimer, (uint64_t)k->cfg->offsets_retention_check_ms);
}
