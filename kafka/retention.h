/*
 * retention.h - where a partition's log starts: the log-start record that
 * journals a move (DeleteRecords and retention both use it), and time and
 * size retention (kafka/retention.c).
 */
#ifndef SL_KAFKA_RETENTION_H
#define SL_KAFKA_RETENTION_H

#include <stdint.h>
#include "kreq.h"

/* ---- the log-start record (docs/FORMAT.md, "Type 2, kind 3") ---- */

#define KLS_KIND 3
#define KLS_LEN 29	/* kind u8 | topic id [16] | partition i32 | offset i64 */

/*
 * One move of a partition's log start, journaled: fill id, partition,
 * offset and done, then kls_submit().  Once the record is durable the move
 * is applied (stream_set_start, tier_log_start; never backwards) and
 * done(ls, 0) runs with before and after set: the log start before and
 * after, after -1 when the topic or partition is gone.  done(ls, err) with
 * err != 0 means the journal failed (or the store closed): nothing was
 * applied and done must not touch the struct kafka, which may be gone.
 * The caller owns ls; it must stay valid until done runs.
 */
struct kls {
	struct kjournal j;
	struct kafka *k;
	uint8_t id[16];
	int32_t partition;
	int64_t offset;
	int64_t before, after;
	void (*done)(struct kls *ls, int err);
	void *arg;
};
/* 0 (done will run) or an sl_err (it will not). */
int kls_submit(struct kafka *k, struct kls *ls);
/* Apply one log-start record from the journal (recovery); logs and skips a bad one. */
void kls_replay(struct kafka *k, const uint8_t *p, size_t n);

/* ---- the retention engine: no clock, no I/O ---- */

/* A partition's limits: -1 means unlimited. */
struct ret_policy {
	int64_t ms;		/* retention.ms */
	int64_t bytes;		/* retention.bytes */
};

enum { RET_TIME = 1, RET_SIZE = 2 };

/*
 * One walk over a partition's chunks, oldest first (tier_chunks order).
 * Kafka's rules, per chunk, for the longest prefix: expired by time when
 * max_ts < now - ms (max_ts -1: never by time); by size while the bytes
 * left after dropping it stay >= bytes.  total is the sum of every chunk's
 * bytes (needed only when bytes >= 0).  ret_step returns 1 once the walk is
 * over; start then holds the new log start (never above hw, never below
 * where it began) and why the RET_* reasons that moved it.
 */
struct ret_walk {
	struct ret_policy p;
	int64_t now, hw;
	uint64_t left;		/* bytes of the chunks not yet dropped */
	int64_t start;
	int why;
	int done;
};
void ret_begin(struct ret_walk *w, const struct ret_policy *p, int64_t now, int64_t start,
	       int64_t hw, uint64_t total);
int ret_step(struct ret_walk *w, const struct tier_chunk *c);

/* The same over an array: the new log start, and the reasons in *why (may be NULL). */
int64_t ret_new_start(const struct tier_chunk *c, size_t n, const struct ret_policy *p,
		      int64_t now, int64_t start, int64_t hw, int *why);

/* ---- the glue: policies from the configuration, a timer ---- */

/* The limits of topic t: its retention.ms/retention.bytes, else the broker's. */
void kretention_policy(const struct kafka *k, const struct topic *t, struct ret_policy *p);
/* Whether t's cleanup.policy includes delete (compacted-only topics keep everything). */
int kretention_deletes(const struct topic *t);

/* Start the check timer (log.retention.check.interval.ms); 0 or SL_E_NOMEM. */
int kretention_init(struct kafka *k);
/* Stop it; log-start records still in flight complete without touching k. */
void kretention_destroy(struct kafka *k);
/*
 * Check every partition now (wall clock ms, the timestamps' clock) and
 * journal the moves; the moves apply once durable.  Returns how many
 * partitions it journaled a move for.
 */
int kretention_run(struct kafka *k, int64_t wall_now);

#endif
