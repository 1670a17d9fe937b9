/*
 * retention.c - where a partition's log starts, and how it moves up:
 * DeleteRecords (kafka/h_records.c) and time and size retention (here).
 *
 * Owns: the log-start record, the retention engine, and the timer that runs
 * it every log.retention.check.interval.ms.
 *
 * Every move goes the same way:
 *
 *   decide (DeleteRecords: the client's offset; retention: the engine)
 *      --> log-start record into the WAL (kafka_journal)
 *      --> durable: stream_set_start(s, offset); tier_log_start(...)
 *      --> answer the client / log the move
 *
 * so a start is never visible before it is durable, and a restart replays
 * the record (kls_replay) to the same place.  Invariants:
 *   1. the log start only moves up: a record whose offset is at or below
 *      the current start changes nothing (two moves may be in flight at
 *      once: a DeleteRecords and a retention check);
 *   2. it never passes the high watermark: the offset is at most hw when
 *      decided, and hw only grows; replay clamps to hw rather than trust
 *      a record that says otherwise;
 *   3. a record names the topic by id, so a move that lands after its topic
 *      was deleted (or deleted and re-created under the same name) finds
 *      nothing and changes nothing.
 *
 * The record (docs/FORMAT.md, "Type 2, kind 3"), 29 bytes, big-endian:
 *   kind u8 = 3 | topic id [16] | partition i32 | offset i64
 *
 * Retention follows Kafka's rules (UnifiedLog.deleteOldSegments) over the
 * partition's chunks (tier_chunks: object ranges, then batches in memory),
 * where Kafka uses segments: the new start is after the longest prefix of
 * chunks that are expired, a chunk being expired by time when its largest
 * timestamp is older than retention.ms, and by size while the partition
 * keeps at least retention.bytes without it.  Topics whose cleanup.policy
 * lacks "delete" are never trimmed.  The engine (ret_begin/ret_step) sees
 * chunks and a `now`, nothing else, so unit tests drive it without a clock.
 *
 * The check timer: each tick walks every partition (twice when a size limit
 * applies: once to total its bytes) and journals the moves.  While moves of
 * the previous check are still in flight a tick does nothing, so a short
 * interval never journals the same move twice.  Moves in flight are listed;
 * kretention_destroy() detaches them so their completions, which may come
 * from store_destroy() after the broker is gone, touch nothing of it.
 */
#include <stdlib.h>
#include <string.h>
#include "retention.h"
#include "../kernel/log.h"

/* ---- the log-start record ---- */

/*
 * Move the start of (id, partition) up to offset, clamped to hw.  Returns
 * the start after, or -1 when the topic or partition is gone; *before gets
 * the start before.
 */
static int64_t apply(struct kafka *k, const uint8_t id[16], int32_t partition, int64_t offset,
		     int64_t *before)
{
	struct topic *t = topic_find_id(k->reg, id);

	*before = -1;
	if (!t || partition < 0 || partition >= t->npart)
		return -1;
	struct stream *s = t->parts[partition];
	*before = stream_start(s);
	if (offset > stream_hw(s))
		offset = stream_hw(s);
	if (offset > *before && stream_set_start(s, offset) == 0) {
		tier_log_start(k->tier, id, partition, offset);
		/* Producers whose batches all went are forgotten there, as in Kafka. */
		struct pst_table *pt = topic_producers(t, partition, 0);
		if (pt)
			pst_truncate_head(pt, stream_start(s));
	}
	return stream_start(s);
}

static void kls_journaled(struct kjournal *j, int err)
{
	struct kls *ls = j->arg;

	ls->before = ls->after = -1;
	if (err == 0)
		ls->after = apply(ls->k, ls->id, ls->partition, ls->offset, &ls->before);
	ls->done(ls, err);
}

int kls_submit(struct kafka *k, struct kls *ls)
{
	struct sl_wr w;

	wr_init(&w, 0);
	wr_u8(&w, KLS_KIND);
	wr_bytes(&w, ls->id, 16);
	wr_i32(&w, ls->partition);
	wr_i64(&w, ls->offset);
	ls->k = k;
	ls->j.done = kls_journaled;
	ls->j.arg = ls;
	int rc = kafka_journal(k, &w, &ls->j);
	wr_free(&w);
	return rc;
}

void kls_replay(struct kafka *k, const uint8_t *p, size_t n)
{
	struct sl_rd r;
	uint8_t kind, id[16];
	int32_t partition;
	int64_t offset, before;

	rd_init(&r, p, n);
	if (n != KLS_LEN || rd_u8(&r, &kind) || kind != KLS_KIND || rd_copy(&r, id, 16) ||
	    rd_i32(&r, &partition) || rd_i64(&r, &offset) || offset < 0) {
		log_error("kafka", "malformed log-start record in the journal (%zu bytes); skipped", n);
		return;
	}
	struct topic *t = topic_find_id(k->reg, id);
	if (!t || partition < 0 || partition >= t->npart) {
		log_warn("kafka", "log-start record for an unknown topic or partition %d; skipped", partition);
		return;
	}
	int64_t hw = stream_hw(t->parts[partition]);
	if (offset > hw)
		log_warn("kafka", "log-start record moves topic %s partition %d to %lld, past its high "
			 "watermark %lld; moved to the high watermark", t->name, partition,
			 (long long)offset, (long long)hw);
	(void)apply(k, id, partition, offset, &before);
}

/* ---- the engine ---- */

void ret_begin(struct ret_walk *w, const struct ret_policy *p, int64_t now, int64_t start,
	       int64_t hw, uint64_t total)
{
	w->p = *p;
	w->now = now;
	w->hw = hw;
	w->left = total;
	w->start = start;
	w->why = 0;
	w->done = start >= hw || (p->ms < 0 && p->bytes < 0);
}

int ret_step(struct ret_walk *w, const struct tier_chunk *c)
{
	int why = 0;

	if (w->done)
		return 1;
	if (w->p.ms >= 0 && c->max_ts != -1) {
		/* now - ms without overflow: ms >= 0, so only a very negative now can. */
		int64_t cutoff = w->now >= INT64_MIN + w->p.ms ? w->now - w->p.ms : INT64_MIN;
		if (c->max_ts < cutoff)
			why |= RET_TIME;
	}
	if (w->p.bytes >= 0 && w->left >= c->bytes && w->left - c->bytes >= (uint64_t)w->p.bytes)
		why |= RET_SIZE;
	if (!why) {
		w->done = 1;
		return 1;
	}
	w->left = w->left >= c->bytes ? w->left - c->bytes : 0;
	int64_t end = c->last < INT64_MAX ? c->last + 1 : INT64_MAX;
	if (end > w->hw)
		end = w->hw;
	if (end > w->start) {
		w->start = end;
		w->why |= why;
	}
	if (w->start >= w->hw)
		w->done = 1;
	return w->done;
}

int64_t ret_new_start(const struct tier_chunk *c, size_t n, const struct ret_policy *p,
		      int64_t now, int64_t start, int64_t hw, int *why)
{
	struct ret_walk w;
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += c[i].bytes;
	ret_begin(&w, p, now, start, hw, total);
	for (size_t i = 0; i < n && !ret_step(&w, &c[i]); i++)
		;
	if (why)
		*why = w.why;
	return w.start;
}

/* ---- the glue ---- */

static const char *topic_config(const struct topic *t, const char *key)
{
	for (int32_t i = 0; i < t->nconfigs; i++)
		if (strcmp(t->configs[i].key, key) == 0)
			return t->configs[i].value;
	return NULL;
}

/* The topic's override of key when it is a valid limit (>= -1), else dflt. */
static int64_t limit(const struct topic *t, const char *key, int64_t dflt)
{
	const char *v = topic_config(t, key);
	char *end;

	if (!v || !*v)
		return dflt;
	long long n = strtoll(v, &end, 10);
	return *end || n < -1 ? dflt : (int64_t)n;
}

void kretention_policy(const struct kafka *k, const struct topic *t, struct ret_policy *p)
{
	p->ms = limit(t, "retention.ms", k->cfg->log_retention_ms);
	p->bytes = limit(t, "retention.bytes", k->cfg->log_retention_bytes);
}

int kretention_deletes(const struct topic *t)
{
	const char *v = topic_config(t, "cleanup.policy");

	return !v || strstr(v, "delete") != NULL;
}

struct rmove;

struct kretention {
	struct kafka *k;
	struct loop_timer timer;
	struct rmove *inflight;		/* moves journaled, not yet durable */
};

struct rmove {
	struct kls ls;
	struct kretention *r;		/* NULL once the broker is gone */
	struct rmove *prev, *next;
	int why;
};

static const char *why_name(int why)
{
	return why == (RET_TIME | RET_SIZE) ? "time and size" : why == RET_TIME ? "time" : "size";
}

static void moved(struct kls *ls, int err)
{
	struct rmove *m = ls->arg;
	struct kretention *r = m->r;

	if (r) {
		if (m->prev)
			m->prev->next = m->next;
		else
			r->inflight = m->next;
		if (m->next)
			m->next->prev = m->prev;
		if (err) {
			log_warn("kafka", "retention: journaling a log start for partition %d failed: %s; "
				 "the next check tries again", ls->partition, sl_strerror(err));
		} else if (ls->after > ls->before) {
			struct topic *t = topic_find_id(r->k->reg, ls->id);
			log_info("kafka", "retention: topic %s partition %d log start %lld -> %lld (%s)",
				 t ? t->name : "?", ls->partition, (long long)ls->before,
				 (long long)ls->after, why_name(m->why));
		}
	}
	free(m);
}

static int add_bytes(void *arg, const struct tier_chunk *c)
{
	*(uint64_t *)arg += c->bytes;
	return 0;
}

static int step(void *arg, const struct tier_chunk *c)
{
	return ret_step(arg, c);
}

/* Journal a move of t's partition i if the engine finds one; 1 if journaled. */
static int check_partition(struct kretention *r, struct topic *t, int32_t i,
			   const struct ret_policy *p, int64_t now)
{
	struct kafka *k = r->k;
	struct stream *s = t->parts[i];
	int64_t start = stream_start(s), hw = stream_hw(s);
	uint64_t total = 0;
	struct ret_walk w;

	if (start >= hw)
		return 0;
	if (p->bytes >= 0)
		tier_chunks(k->tier, s, add_bytes, &total);
	ret_begin(&w, p, now, start, hw, total);
	tier_chunks(k->tier, s, step, &w);
	if (w.start <= start)
		return 0;
	struct rmove *m = calloc(1, sizeof(*m));
	if (!m) {
		log_warn("kafka", "retention: out of memory moving topic %s partition %d", t->name, i);
		return 0;
	}
	memcpy(m->ls.id, t->id, 16);
	m->ls.partition = i;
	m->ls.offset = w.start;
	m->ls.done = moved;
	m->ls.arg = m;
	m->why = w.why;
	int rc = kls_submit(k, &m->ls);
	if (rc != 0) {
		log_warn("kafka", "retention: cannot journal a log start for topic %s partition %d: %s",
			 t->name, i, sl_strerror(rc));
		free(m);
		return 0;
	}
	m->r = r;
	m->next = r->inflight;
	if (m->next)
		m->next->prev = m;
	r->inflight = m;
	return 1;
}

int kretention_run(struct kafka *k, int64_t wall_now)
{
	struct kretention *r = k->ret;
	int n = 0;

	if (!r || r->inflight)
		return 0;
	for (struct topic *t = topic_first(k->reg); t; t = t->next) {
		struct ret_policy p;

		if (!kretention_deletes(t))
			continue;
		kretention_policy(k, t, &p);
		if (p.ms < 0 && p.bytes < 0)
			continue;
		for (int32_t i = 0; i < t->npart; i++)
			n += check_partition(r, t, i, &p, wall_now);
	}
	return n;
}

static void tick(struct loop *l, void *arg)
{
	struct kretention *r = arg;

	kretention_run(r->k, loop_wall_ms());
	loop_timer_set(l, &r->timer, (uint64_t)r->k->cfg->log_retention_check_ms);
}

int kretention_init(struct kafka *k)
{
	struct kretention *r = calloc(1, sizeof(*r));

	if (!r)
		return SL_E_NOMEM;
	r->k = k;
	loop_timer_init(&r->timer, tick, r);
	loop_timer_set(k->l, &r->timer, (uint64_t)k->cfg->log_retention_check_ms);
	k->ret = r;
	return 0;
}

void kretention_destroy(struct kafka *k)
{
	struct kretention *r = k->ret;

	if (!r)
		return;
	loop_timer_cancel(k->l, &r->timer);
	for (struct rmove *m = r->inflight; m; m = m->next)
		m->r = NULL;
	free(r);
	k->ret = NULL;
}
