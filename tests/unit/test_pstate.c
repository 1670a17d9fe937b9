/*
 * test_pstate.c - idempotent producers' state (kafka/pstate.h), driven with
 * a fake wall clock: sequence rules with the wrap at INT32_MAX, duplicates
 * of each of the last five batches and not of the sixth, epoch bumps and
 * fencing, unknown and epoch-less producers, bad batches, expiry, head
 * truncation, many producers, the id allocator across blocks and restarts,
 * and snapshots: round trips, every truncation and every corrupted byte, and
 * well-checksummed bodies that break the format's rules.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/pstate.h"
#include "../../kafka/kerr.h"
#include "../../kernel/crc32c.h"
#include "../../kernel/err.h"

static struct pst_batch B(int64_t pid, int16_t epoch, int32_t seq, int32_t count)
{
	struct pst_batch b = { pid, epoch, seq, count, 0 };
	return b;
}

static int16_t last_err;
static struct pst_meta last_dup;

/* pst_check's verdict; the error and duplicate land in last_err, last_dup. */
static enum pst_verdict chk(const struct pst_table *t, int64_t pid, int16_t epoch, int32_t seq,
			    int32_t count)
{
	struct pst_batch b = B(pid, epoch, seq, count);

	last_err = 12345;
	memset(&last_dup, 0xAB, sizeof(last_dup));
	return pst_check(t, &b, &last_err, &last_dup);
}

static int app(struct pst_table *t, int64_t pid, int16_t epoch, int32_t seq, int32_t count,
	       int64_t offset, int64_t ts, int64_t now)
{
	struct pst_batch b = B(pid, epoch, seq, count);
	return pst_append(t, &b, offset, ts, now);
}

/* Check, and append when the check says so, as Produce will. */
static enum pst_verdict produce(struct pst_table *t, int64_t pid, int16_t epoch, int32_t seq,
				int32_t count, int64_t offset, int64_t now)
{
	enum pst_verdict v = chk(t, pid, epoch, seq, count);

	if (v == PST_APPEND)
		T_EQ(app(t, pid, epoch, seq, count, offset, offset * 10, now), 0);
	return v;
}

static void test_last_seq(void)
{
	T_EQ(pst_last_seq(0, 1), 0);
	T_EQ(pst_last_seq(0, 10), 9);
	T_EQ(pst_last_seq(INT32_MAX, 1), INT32_MAX);
	T_EQ(pst_last_seq(INT32_MAX, 2), 0);
	T_EQ(pst_last_seq(INT32_MAX - 1, 4), 1);
	T_EQ(pst_last_seq(INT32_MAX, INT32_MAX), INT32_MAX - 2);
	T_EQ(pst_last_seq(1, INT32_MAX), INT32_MAX);
	T_EQ(pst_last_seq(2, INT32_MAX), 0);
}

static void test_not_idempotent(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(chk(t, -1, -1, -1, 3), PST_APPEND);
	T_EQ(last_err, KERR_NONE);
	T_EQ(chk(t, -7, 5, 99, 0), PST_APPEND);
	T_EQ(app(t, -1, -1, -1, 3, 0, 0, 0), 0);
	T_EQ(app(t, -1, -1, -1, 3, 3, 0, 0), 0);
	T_EQ(pst_count(t), 0);
	T_CHECK(pst_find(t, -1) == NULL);
	pst_table_free(t);
}

static void test_bad_batches(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(chk(t, 1, 0, -1, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_RECORD);
	T_EQ(chk(t, 1, 0, INT32_MIN, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_RECORD);
	T_EQ(chk(t, 1, 0, 0, 0), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_RECORD);
	T_EQ(chk(t, 1, 0, 0, -5), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_RECORD);

	T_EQ(app(t, 1, 0, -1, 1, 0, 0, 0), SL_E_INVALID);
	T_EQ(app(t, 1, 0, 0, 0, 0, 0, 0), SL_E_INVALID);
	T_EQ(app(t, 1, 0, 0, 1, -1, 0, 0), SL_E_INVALID);
	T_EQ(app(t, 1, 0, 0, 2, INT64_MAX, 0, 0), SL_E_INVALID);
	T_EQ(pst_count(t), 0);
	T_EQ(app(t, 1, 0, 0, 1, INT64_MAX, 0, 0), 0);		/* ends exactly at INT64_MAX */
	T_EQ(pst_find(t, 1)->batch[0].last_offset, INT64_MAX);
	pst_table_free(t);
}

static void test_unknown_producer(void)
{
	struct pst_table *t = pst_table_new();

	/* KIP-360: no state, any sequence and any epoch >= -1. */
	T_EQ(chk(t, 42, 3, 17, 5), PST_APPEND);
	T_EQ(last_err, KERR_NONE);
	T_EQ(chk(t, 42, 0, INT32_MAX, 1), PST_APPEND);
	T_EQ(chk(t, 42, INT16_MAX, 0, 1), PST_APPEND);
	T_EQ(chk(t, 42, -2, 0, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);

	T_EQ(app(t, 42, 3, 17, 5, 100, 555, 1000), 0);
	T_EQ(pst_count(t), 1);
	const struct pst_entry *e = pst_find(t, 42);
	T_CHECK(e != NULL);
	if (e) {
		T_EQ(e->epoch, 3);
		T_EQ(e->nbatches, 1);
		T_EQ(e->batch[0].first_seq, 17);
		T_EQ(e->batch[0].last_seq, 21);
		T_EQ(e->batch[0].first_offset, 100);
		T_EQ(e->batch[0].last_offset, 104);
		T_EQ(e->batch[0].max_timestamp, 555);
		T_EQ(e->last_append_ms, 1000);
	}
	/* Now known: the next batch must follow 21. */
	T_EQ(chk(t, 42, 3, 23, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(chk(t, 42, 3, 0, 1), PST_REJECT);
	T_EQ(chk(t, 42, 3, 22, 1), PST_APPEND);
	/* Other producers are still unknown. */
	T_EQ(chk(t, 43, 3, 23, 1), PST_APPEND);
	pst_table_free(t);
}

static void test_in_sequence(void)
{
	struct pst_table *t = pst_table_new();
	int64_t off = 0;

	for (int32_t seq = 0; seq < 100; seq += 10, off += 10)
		T_EQ(produce(t, 7, 0, seq, 10, off, 1), PST_APPEND);
	T_EQ(pst_find(t, 7)->nbatches, PST_BATCHES);
	/* A gap, a step back, an overlap with the newest: out of order. */
	T_EQ(chk(t, 7, 0, 101, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(chk(t, 7, 0, 99, 1), PST_REJECT);
	T_EQ(chk(t, 7, 0, 95, 10), PST_REJECT);
	T_EQ(chk(t, 7, 0, 0, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(chk(t, 7, 0, 100, 1), PST_APPEND);
	T_EQ(last_err, KERR_NONE);
	pst_table_free(t);
}

static void test_wrap(void)
{
	struct pst_table *t = pst_table_new();

	/* Starting anywhere (unknown producer), ending at INT32_MAX. */
	T_EQ(produce(t, 9, 2, INT32_MAX - 9, 10, 0, 1), PST_APPEND);
	T_EQ(pst_find(t, 9)->batch[0].last_seq, INT32_MAX);
	T_EQ(chk(t, 9, 2, INT32_MAX, 1), PST_REJECT);	/* INT32_MAX + 1 is not a sequence */
	T_EQ(chk(t, 9, 2, 1, 1), PST_REJECT);
	T_EQ(produce(t, 9, 2, 0, 3, 10, 1), PST_APPEND);	/* wraps to 0 */
	T_EQ(produce(t, 9, 2, 3, 1, 13, 1), PST_APPEND);
	/* A batch straddling the wrap: INT32_MAX-1 .. 1. */
	T_EQ(produce(t, 10, 0, INT32_MAX - 1, 4, 20, 1), PST_APPEND);
	T_EQ(pst_find(t, 10)->batch[0].last_seq, 1);
	T_EQ(chk(t, 10, 0, INT32_MAX - 1, 4), PST_DUPLICATE);
	T_EQ(last_dup.first_offset, 20);
	T_EQ(last_dup.last_offset, 23);
	T_EQ(chk(t, 10, 0, 0, 1), PST_REJECT);
	T_EQ(chk(t, 10, 0, 2, 1), PST_APPEND);
	pst_table_free(t);
}

static void test_duplicates(void)
{
	struct pst_table *t = pst_table_new();

	/* Six batches of 4 records: seqs 0-3, 4-7, ..., 20-23 at offsets 100+10i. */
	for (int i = 0; i < 6; i++) {
		T_EQ(chk(t, 5, 1, 4 * i, 4), PST_APPEND);
		T_EQ(app(t, 5, 1, 4 * i, 4, 100 + 10 * i, 7000 + i, 50 + i), 0);
	}
	const struct pst_entry *e = pst_find(t, 5);
	T_EQ(e->nbatches, 5);
	T_EQ(e->batch[0].first_seq, 4);		/* the first went */
	T_EQ(e->batch[4].first_seq, 20);
	T_EQ(e->last_append_ms, 55);
	for (int i = 1; i < 6; i++) {
		T_EQ(chk(t, 5, 1, 4 * i, 4), PST_DUPLICATE);
		T_EQ(last_err, KERR_NONE);
		T_EQ(last_dup.first_seq, 4 * i);
		T_EQ(last_dup.last_seq, 4 * i + 3);
		T_EQ(last_dup.first_offset, 100 + 10 * i);
		T_EQ(last_dup.last_offset, 100 + 10 * i + 3);
		T_EQ(last_dup.max_timestamp, 7000 + i);
	}
	/* The sixth-oldest is forgotten: out of order, not a duplicate. */
	T_EQ(chk(t, 5, 1, 0, 4), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* Same first sequence, another count: not a duplicate. */
	T_EQ(chk(t, 5, 1, 8, 3), PST_REJECT);
	T_EQ(chk(t, 5, 1, 8, 5), PST_REJECT);
	/* Same sequences, a newer epoch: a bumped producer starts at 0, so out of order. */
	T_EQ(chk(t, 5, 2, 8, 4), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* Same sequences, an older epoch: fenced. */
	T_EQ(chk(t, 5, 0, 8, 4), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	/* Another producer with the same sequences is not a duplicate. */
	T_EQ(chk(t, 6, 1, 8, 4), PST_APPEND);
	/* Checking changed nothing. */
	T_EQ(pst_find(t, 5)->nbatches, 5);
	T_EQ(pst_count(t), 1);
	pst_table_free(t);
}

static void test_epoch_bump(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(produce(t, 3, 0, 0, 10, 0, 1), PST_APPEND);
	T_EQ(produce(t, 3, 0, 10, 10, 10, 1), PST_APPEND);
	/* A bumped epoch must start at 0. */
	T_EQ(chk(t, 3, 1, 20, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(chk(t, 3, 5, 1, 1), PST_REJECT);
	/* seq 0 with the new epoch matches a cached range but is no duplicate. */
	T_EQ(chk(t, 3, 1, 0, 10), PST_APPEND);
	T_EQ(app(t, 3, 1, 0, 10, 20, 0, 2), 0);
	const struct pst_entry *e = pst_find(t, 3);
	T_EQ(e->epoch, 1);
	T_EQ(e->nbatches, 1);		/* the new epoch forgot the old batches */
	T_EQ(e->batch[0].first_offset, 20);
	/* The old epoch is fenced, retries of its batches included. */
	T_EQ(chk(t, 3, 0, 20, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(chk(t, 3, 0, 10, 10), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(chk(t, 3, 0, 0, 10), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	/* The new epoch's own retry is a duplicate, its next batch follows. */
	T_EQ(chk(t, 3, 1, 0, 10), PST_DUPLICATE);
	T_EQ(last_dup.first_offset, 20);
	T_EQ(chk(t, 3, 1, 10, 1), PST_APPEND);
	/* A jump of several epochs is a bump too. */
	T_EQ(chk(t, 3, 9, 0, 1), PST_APPEND);
	T_EQ(chk(t, 3, INT16_MAX, 0, 1), PST_APPEND);
	T_EQ(chk(t, 3, INT16_MAX, 3, 1), PST_REJECT);
	pst_table_free(t);
}

/* A batch with epoch -1 but a producer id: Kafka keeps it with no epoch. */
static void test_no_epoch(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(produce(t, 4, -1, 50, 1, 0, 1), PST_APPEND);
	T_EQ(pst_find(t, 4)->epoch, -1);
	T_EQ(chk(t, 4, -1, 50, 1), PST_DUPLICATE);	/* still deduplicated */
	T_EQ(chk(t, 4, -1, 7, 1), PST_APPEND);		/* but any sequence goes */
	T_EQ(chk(t, 4, 0, 7, 1), PST_APPEND);		/* and any first sequence of an epoch */
	T_EQ(chk(t, 4, -2, 0, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(produce(t, 4, 0, 7, 1, 1, 1), PST_APPEND);
	T_EQ(chk(t, 4, 0, 9, 1), PST_REJECT);		/* with an epoch, order counts */
	T_EQ(chk(t, 4, -1, 8, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	pst_table_free(t);
}

static void test_expiry(void)
{
	struct pst_table *t = pst_table_new();
	const int64_t X = PST_EXPIRATION_MS_DEFAULT;
	int64_t now = 1700000000000;

	T_EQ(produce(t, 1, 0, 0, 1, 0, now), PST_APPEND);
	T_EQ(produce(t, 2, 0, 0, 1, 1, now + 1000), PST_APPEND);
	T_EQ(pst_expire(t, now + X - 1, X), 0);
	T_EQ(pst_count(t), 2);
	T_EQ(pst_expire(t, now + X, X), 1);		/* idle exactly X: gone (>=) */
	T_CHECK(pst_find(t, 1) == NULL);
	T_CHECK(pst_find(t, 2) != NULL);
	/* Expired: unknown again, any sequence is accepted. */
	T_EQ(chk(t, 1, 0, 500, 1), PST_APPEND);
	/* An append renews; an append with an earlier clock does not move time back. */
	T_EQ(produce(t, 2, 0, 1, 1, 2, now + 5000), PST_APPEND);
	T_EQ(produce(t, 2, 0, 2, 1, 3, now + 10), PST_APPEND);
	T_EQ(pst_find(t, 2)->last_append_ms, now + 5000);
	T_EQ(pst_expire(t, now + 5000 + X - 1, X), 0);
	/* The clock went back: not idle. */
	T_EQ(pst_expire(t, 0, 0), 0);
	T_EQ(pst_expire(t, INT64_MIN, X), 0);
	T_EQ(pst_expire(t, INT64_MAX, -1), 0);
	T_EQ(pst_count(t), 1);
	T_EQ(pst_expire(t, INT64_MAX, X), 1);
	T_EQ(pst_count(t), 0);
	/* A last append far in the past, no overflow. */
	T_EQ(app(t, 8, 0, 0, 1, 0, 0, INT64_MIN), 0);
	T_EQ(pst_expire(t, INT64_MAX, INT64_MAX), 1);
	pst_table_free(t);
}

static void test_truncate_and_remove(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(produce(t, 1, 0, 0, 5, 0, 1), PST_APPEND);	/* offsets 0-4 */
	T_EQ(produce(t, 2, 0, 0, 5, 5, 1), PST_APPEND);	/* 5-9 */
	T_EQ(produce(t, 1, 0, 5, 5, 10, 1), PST_APPEND);	/* 10-14: 1's newest */
	T_EQ(pst_truncate_head(t, 9), 0);
	T_EQ(pst_truncate_head(t, 10), 1);		/* 2's last offset 9 < 10 */
	T_CHECK(pst_find(t, 2) == NULL);
	T_EQ(pst_truncate_head(t, 14), 0);
	T_EQ(pst_truncate_head(t, 15), 1);
	T_EQ(pst_count(t), 0);

	T_EQ(produce(t, 1, 0, 0, 1, 20, 1), PST_APPEND);
	T_EQ(produce(t, 2, 0, 0, 1, 21, 1), PST_APPEND);
	pst_remove(t, 3);
	pst_remove(t, 1);
	T_EQ(pst_count(t), 1);
	T_CHECK(pst_find(t, 1) == NULL);
	T_CHECK(pst_find(t, 2) != NULL);
	/* Removed after a failed WAL write: the retry is written again. */
	T_EQ(chk(t, 1, 0, 0, 1), PST_APPEND);
	pst_table_free(t);
}

/* WAL replay over a snapshot: batches the entry already holds change nothing. */
static void test_replay_overlap(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(app(t, 1, 0, 0, 5, 100, 1, 10), 0);
	T_EQ(app(t, 1, 0, 5, 5, 105, 2, 20), 0);
	T_EQ(app(t, 1, 0, 0, 5, 100, 1, 30), 0);		/* again */
	T_EQ(app(t, 1, 1, 0, 5, 104, 1, 30), 0);		/* overlapping the newest */
	const struct pst_entry *e = pst_find(t, 1);
	T_EQ(e->nbatches, 2);
	T_EQ(e->epoch, 0);
	T_EQ(e->last_append_ms, 20);
	T_EQ(app(t, 1, 0, 10, 5, 110, 3, 40), 0);
	T_EQ(e->nbatches, 3);
	T_EQ(e->last_append_ms, 40);
	pst_table_free(t);
}

static void test_many_producers(void)
{
	struct pst_table *t = pst_table_new();
	const int N = 20000;
	int bad = 0;

	for (int i = 0; i < N; i++)
		if (app(t, (int64_t)i * 3, (int16_t)(i % 7), i % 1000, 2, 2 * i, 0, i) != 0)
			bad++;
	T_EQ(bad, 0);
	T_EQ(pst_count(t), N);
	for (int i = 0; i < N; i++) {
		const struct pst_entry *e = pst_find(t, (int64_t)i * 3);
		if (!e || e->epoch != i % 7 || e->batch[0].first_offset != 2 * i)
			bad++;
		if (pst_find(t, (int64_t)i * 3 + 1))
			bad++;
	}
	T_EQ(bad, 0);
	for (int i = 0; i < N; i += 2)
		pst_remove(t, (int64_t)i * 3);
	T_EQ(pst_count(t), N / 2);
	for (int i = 0; i < N; i++)
		if ((pst_find(t, (int64_t)i * 3) != NULL) != (i % 2 == 1))
			bad++;
	T_EQ(bad, 0);
	/* Every remaining one appended at time i < N: all idle at N + 100 with 100. */
	T_EQ(pst_expire(t, N + 100, 100), N / 2);
	T_EQ(pst_count(t), 0);
	pst_table_free(t);
}

/* ---- transactions ---- */

static int tapp(struct pst_table *t, int64_t pid, int16_t epoch, int32_t seq, int32_t count,
		int64_t offset, int64_t now)
{
	struct pst_batch b = { pid, epoch, seq, count, 1 };
	return pst_append(t, &b, offset, offset * 10, now);
}

static enum pst_verdict tchk(const struct pst_table *t, int64_t pid, int16_t epoch, int32_t seq,
			     int32_t count)
{
	struct pst_batch b = { pid, epoch, seq, count, 1 };

	last_err = 12345;
	return pst_check(t, &b, &last_err, &last_dup);
}

static struct pst_txn last_done;

/* pst_apply_marker; what it completed lands in last_done (pid -7 when nothing). */
static int marker(struct pst_table *t, int64_t pid, int16_t epoch, int commit, int64_t offset,
		  int64_t now)
{
	last_done.producer_id = -7;
	last_done.first_offset = last_done.last_offset = -7;
	return pst_apply_marker(t, pid, epoch, commit, offset, now, &last_done);
}

/* Up to 64 aborted transactions a query gave, and how many it may give before stopping. */
struct got {
	struct pst_txn x[64];
	int n, stop_after;
};

static int collect(void *arg, const struct pst_txn *x)
{
	struct got *g = arg;

	if (g->n < 64)
		g->x[g->n] = *x;
	g->n++;
	return g->stop_after && g->n >= g->stop_after;
}

static struct got aborted(const struct pst_table *t, int64_t from, int64_t upto)
{
	struct got g;

	memset(&g, 0, sizeof(g));
	pst_aborted(t, from, upto, collect, &g);
	return g;
}

static void test_txn_start(void)
{
	struct pst_table *t = pst_table_new();
	const struct pst_entry *e;

	T_EQ(pst_first_unstable(t), INT64_MAX);
	T_EQ(tchk(t, 1, 0, 0, 3), PST_APPEND);
	T_EQ(tapp(t, 1, 0, 0, 3, 100, 1), 0);		/* 100-102 opens the transaction */
	e = pst_find(t, 1);
	T_EQ(e->txn_first_offset, 100);
	T_EQ(e->last_offset, 102);
	T_EQ(pst_first_unstable(t), 100);
	/* Later batches of the same transaction do not move it. */
	T_EQ(tchk(t, 1, 0, 3, 2), PST_APPEND);
	T_EQ(tapp(t, 1, 0, 3, 2, 110, 2), 0);
	T_EQ(tapp(t, 1, 0, 5, 1, 120, 3), 0);
	T_EQ(e->txn_first_offset, 100);
	T_EQ(e->last_offset, 120);
	T_EQ(e->nbatches, 3);
	T_EQ(pst_first_unstable(t), 100);
	/* Retries are still duplicates, whatever their transactional bit. */
	T_EQ(tchk(t, 1, 0, 3, 2), PST_DUPLICATE);
	T_EQ(last_dup.first_offset, 110);
	T_EQ(chk(t, 1, 0, 0, 3), PST_DUPLICATE);
	/* Data that is not transactional inside a transaction: Kafka's INVALID_TXN_STATE. */
	T_EQ(chk(t, 1, 0, 6, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_TXN_STATE);
	/* ... after the sequence and epoch rules, as Kafka orders them. */
	T_EQ(chk(t, 1, 0, 9, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(chk(t, 1, -1, 6, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(chk(t, 1, 1, 0, 1), PST_REJECT);		/* a bumped epoch too */
	T_EQ(last_err, KERR_INVALID_TXN_STATE);
	T_EQ(tchk(t, 1, 1, 0, 1), PST_APPEND);
	/* Other producers are not affected. */
	T_EQ(chk(t, 2, 0, 0, 1), PST_APPEND);
	/* Replayed, pst_append does not judge: the transaction stays open. */
	T_EQ(app(t, 1, 0, 6, 1, 130, 0, 4), 0);
	T_EQ(e->txn_first_offset, 100);
	T_EQ(e->last_offset, 130);
	/* A batch at or below the newest offset seen changes nothing. */
	T_EQ(tapp(t, 1, 0, 7, 1, 130, 5), 0);
	T_EQ(e->nbatches, 4);
	/* A new epoch inside a transaction forgets the batches, not the transaction. */
	T_EQ(tapp(t, 1, 1, 0, 1, 140, 6), 0);
	T_EQ(e->epoch, 1);
	T_EQ(e->nbatches, 1);
	T_EQ(e->txn_first_offset, 100);
	/* Plain idempotent producers open nothing. */
	T_EQ(app(t, 2, 0, 0, 1, 150, 0, 7), 0);
	T_EQ(pst_find(t, 2)->txn_first_offset, -1);
	T_EQ(pst_first_unstable(t), 100);
	pst_table_free(t);
}

static void test_txn_commit_abort(void)
{
	struct pst_table *t = pst_table_new();
	const struct pst_entry *e;

	T_EQ(tapp(t, 1, 0, 0, 2, 10, 1), 0);
	T_EQ(tapp(t, 1, 0, 2, 2, 20, 1), 0);
	T_EQ(pst_check_marker(t, 1, 0), KERR_NONE);
	T_EQ(marker(t, 1, 0, 1, 30, 5), 1);		/* COMMIT at 30 */
	T_EQ(last_done.producer_id, 1);
	T_EQ(last_done.first_offset, 10);
	T_EQ(last_done.last_offset, 30);
	e = pst_find(t, 1);
	T_EQ(e->txn_first_offset, -1);
	T_EQ(e->last_offset, 30);
	T_EQ(e->last_append_ms, 5);
	T_EQ(e->nbatches, 2);				/* the same epoch keeps them */
	T_EQ(pst_entry_last_seq(e), 3);
	T_EQ(pst_first_unstable(t), INT64_MAX);
	T_EQ(pst_aborted_count(t), 0);			/* a commit is not listed */
	T_EQ(aborted(t, 0, INT64_MAX).n, 0);
	/* Sequences go on across the marker; data is plain again. */
	T_EQ(chk(t, 1, 0, 4, 1), PST_APPEND);
	T_EQ(chk(t, 1, 0, 0, 2), PST_DUPLICATE);
	/* The next transaction opens at its own first batch, then aborts. */
	T_EQ(tapp(t, 1, 0, 4, 1, 40, 6), 0);
	T_EQ(pst_first_unstable(t), 40);
	T_EQ(marker(t, 1, 0, 0, 45, 7), 1);		/* ABORT at 45 */
	T_EQ(last_done.first_offset, 40);
	T_EQ(last_done.last_offset, 45);
	T_EQ(pst_first_unstable(t), INT64_MAX);
	T_EQ(pst_aborted_count(t), 1);
	struct got g = aborted(t, 0, INT64_MAX);
	T_EQ(g.n, 1);
	T_EQ(g.x[0].producer_id, 1);
	T_EQ(g.x[0].first_offset, 40);
	T_EQ(g.x[0].last_offset, 45);
	/* A marker with no transaction open: the epoch only, nothing returned. */
	T_EQ(marker(t, 1, 0, 0, 50, 8), 0);
	T_EQ(last_done.producer_id, -7);
	T_EQ(pst_aborted_count(t), 1);
	T_EQ(pst_find(t, 1)->last_offset, 50);
	/* A marker for a producer never seen: an entry with its epoch and no batches. */
	T_EQ(pst_check_marker(t, 9, 4), KERR_NONE);
	T_EQ(marker(t, 9, 4, 1, 60, 9), 0);
	e = pst_find(t, 9);
	T_CHECK(e != NULL);
	if (e) {
		T_EQ(e->epoch, 4);
		T_EQ(e->nbatches, 0);
		T_EQ(e->txn_first_offset, -1);
		T_EQ(e->last_offset, 60);
		T_EQ(e->last_append_ms, 9);
		T_EQ(pst_entry_last_seq(e), -1);
		T_EQ(pst_entry_last_timestamp(e), -1);
	}
	/* It now fences older epochs and expects sequence 0 of its own. */
	T_EQ(chk(t, 9, 3, 0, 1), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(chk(t, 9, 4, 5, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(chk(t, 9, 4, 0, 1), PST_APPEND);
	/* Bad arguments. */
	T_EQ(marker(t, -1, 0, 1, 70, 9), SL_E_INVALID);
	T_EQ(marker(t, 1, 0, 1, -1, 9), SL_E_INVALID);
	T_EQ(pst_count(t), 2);
	pst_table_free(t);
}

static void test_txn_marker_epoch(void)
{
	struct pst_table *t = pst_table_new();
	const struct pst_entry *e;

	T_EQ(tapp(t, 1, 3, 0, 2, 0, 1), 0);
	T_EQ(tapp(t, 1, 3, 2, 2, 2, 1), 0);
	T_EQ(pst_check_marker(t, 1, 2), KERR_INVALID_PRODUCER_EPOCH);	/* stale */
	T_EQ(pst_check_marker(t, 1, -1), KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(pst_check_marker(t, 1, 3), KERR_NONE);	/* the same: transaction versions 0, 1 */
	T_EQ(pst_check_marker(t, 1, 4), KERR_NONE);
	T_EQ(pst_check_marker(t, 2, 0), KERR_NONE);	/* unknown */
	e = pst_find(t, 1);
	T_EQ(e->txn_first_offset, 0);			/* checking changed nothing */
	T_EQ(e->nbatches, 2);
	/* The coordinator bumps the epoch and aborts: the batches go with the old epoch. */
	T_EQ(marker(t, 1, 4, 0, 10, 2), 1);
	T_EQ(e->epoch, 4);
	T_EQ(e->nbatches, 0);
	T_EQ(pst_entry_last_seq(e), -1);
	T_EQ(pst_check_marker(t, 1, 3), KERR_INVALID_PRODUCER_EPOCH);
	/* The old epoch's retries are fenced, not duplicates; the new one starts at 0. */
	T_EQ(tchk(t, 1, 3, 0, 2), PST_REJECT);
	T_EQ(last_err, KERR_INVALID_PRODUCER_EPOCH);
	T_EQ(tchk(t, 1, 4, 4, 1), PST_REJECT);
	T_EQ(last_err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	T_EQ(tchk(t, 1, 4, 0, 1), PST_APPEND);
	/* A marker with the same epoch keeps the batches. */
	T_EQ(tapp(t, 1, 4, 0, 1, 11, 3), 0);
	T_EQ(marker(t, 1, 4, 1, 12, 3), 1);
	T_EQ(e->nbatches, 1);
	T_EQ(tchk(t, 1, 4, 0, 1), PST_DUPLICATE);
	/* Replayed from the WAL, a lower epoch is applied as written (no check). */
	T_EQ(marker(t, 1, 2, 1, 13, 3), 0);
	T_EQ(e->epoch, 2);
	T_EQ(e->nbatches, 0);
	pst_table_free(t);
}

static void test_txn_marker_replay(void)
{
	struct pst_table *t = pst_table_new();
	const struct pst_entry *e;
	struct pst_entry before;

	T_EQ(tapp(t, 1, 0, 0, 2, 10, 1), 0);
	T_EQ(tapp(t, 2, 0, 0, 2, 12, 1), 0);
	T_EQ(marker(t, 1, 0, 0, 20, 2), 1);
	T_EQ(tapp(t, 1, 0, 2, 1, 21, 3), 0);		/* the next transaction */
	e = pst_find(t, 1);
	memcpy(&before, e, sizeof(before));
	/* The same marker again, and one below what the entry saw: nothing. */
	T_EQ(marker(t, 1, 0, 0, 20, 9), 0);
	T_EQ(marker(t, 1, 5, 1, 21, 9), 0);
	T_EQ(marker(t, 1, 5, 0, 3, 9), 0);
	T_EQ(last_done.producer_id, -7);
	T_MEMEQ(&before, e, sizeof(before));
	T_EQ(pst_aborted_count(t), 1);
	T_EQ(pst_first_unstable(t), 12);
	/* Data replayed below the marker changes nothing either. */
	T_EQ(tapp(t, 1, 0, 0, 2, 10, 9), 0);
	T_MEMEQ(&before, e, sizeof(before));
	/* A whole replay of the same log from the start gives the same state. */
	{
		struct pst_table *u = pst_table_new();
		for (int pass = 0; pass < 2; pass++) {
			T_EQ(tapp(u, 1, 0, 0, 2, 10, 1), 0);
			T_EQ(tapp(u, 2, 0, 0, 2, 12, 1), 0);
			T_EQ(marker(u, 1, 0, 0, 20, 2), pass ? 0 : 1);
			T_EQ(tapp(u, 1, 0, 2, 1, 21, 3), 0);
		}
		T_EQ(pst_aborted_count(u), 1);
		T_EQ(pst_first_unstable(u), 12);
		T_MEMEQ(&before, pst_find(u, 1), offsetof(struct pst_entry, heap_at));
		pst_table_free(u);
	}
	pst_table_free(t);
}

/* Several producers' transactions interleaved: the LSO is the oldest open one's start. */
static void test_txn_lso(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(tapp(t, 1, 0, 0, 1, 0, 1), 0);		/* 1 opens at 0 */
	T_EQ(tapp(t, 2, 0, 0, 1, 1, 1), 0);		/* 2 at 1 */
	T_EQ(app(t, 3, 0, 0, 1, 2, 0, 1), 0);		/* 3 is not transactional */
	T_EQ(tapp(t, 4, 0, 0, 1, 3, 1), 0);		/* 4 at 3 */
	T_EQ(tapp(t, 1, 0, 1, 1, 4, 1), 0);
	T_EQ(pst_first_unstable(t), 0);
	T_EQ(marker(t, 2, 0, 1, 5, 1), 1);		/* the middle one ends */
	T_EQ(pst_first_unstable(t), 0);
	T_EQ(marker(t, 1, 0, 0, 6, 1), 1);		/* the oldest ends */
	T_EQ(pst_first_unstable(t), 3);
	T_EQ(tapp(t, 2, 0, 1, 1, 7, 1), 0);		/* 2 opens again at 7 */
	T_EQ(pst_first_unstable(t), 3);
	T_EQ(marker(t, 4, 0, 1, 8, 1), 1);
	T_EQ(pst_first_unstable(t), 7);
	pst_remove(t, 2);				/* a failed append undone */
	T_EQ(pst_first_unstable(t), INT64_MAX);
	T_EQ(marker(t, 3, 0, 1, 9, 1), 0);		/* no transaction: nothing */
	T_EQ(pst_first_unstable(t), INT64_MAX);
	pst_table_free(t);
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32) % n;
}

/* What the model says a query gives: the aborted list filtered, in first-offset order. */
static int model_query(const struct pst_txn *ab, int nab, int64_t from, int64_t upto,
		       struct pst_txn *out)
{
	int n = 0;

	for (int i = 0; i < nab; i++)
		if (ab[i].last_offset >= from && ab[i].first_offset < upto)
			out[n++] = ab[i];
	/* Insertion sort by first offset, stable: ties keep marker order. */
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && out[k - 1].first_offset > out[k].first_offset; k--) {
			struct pst_txn x = out[k];
			out[k] = out[k - 1];
			out[k - 1] = x;
		}
	return n;
}

#define SIM_PIDS 24
#define SIM_MAX_AB 4000

struct sim {
	struct pst_table *t;
	int64_t end;			/* the next offset */
	int64_t open[SIM_PIDS];		/* each producer's open transaction, -1 none */
	int32_t seq[SIM_PIDS];
	struct pst_txn ab[SIM_MAX_AB];	/* the model's aborted list, in marker order */
	int nab;
	int bad;
};

static int64_t sim_min_open(const struct sim *s)
{
	int64_t m = INT64_MAX;

	for (int p = 0; p < SIM_PIDS; p++)
		if (s->open[p] >= 0 && s->open[p] < m)
			m = s->open[p];
	return m;
}

/* One step: a producer writes transactional data, or its transaction ends, or one goes. */
static void sim_step(struct sim *s)
{
	int p = (int)rnd(SIM_PIDS);
	int32_t count = 1 + (int32_t)rnd(3);

	if (s->open[p] < 0 || rnd(3) == 0) {
		if (s->open[p] < 0 && rnd(4) == 0) {
			if (marker(s->t, p, 0, (int)rnd(2), s->end, s->end) != 0)
				s->bad++;
			s->end++;
			return;
		}
		if (tapp(s->t, p, 0, s->seq[p], count, s->end, s->end) != 0)
			s->bad++;
		if (s->open[p] < 0)
			s->open[p] = s->end;
		s->seq[p] += count;
		s->end += count;
	} else if (rnd(50) == 0) {
		pst_remove(s->t, p);
		s->open[p] = -1;
		s->seq[p] = 0;
	} else {
		int commit = (int)rnd(2);
		if (marker(s->t, p, 0, commit, s->end, s->end) != 1 ||
		    last_done.first_offset != s->open[p] || last_done.last_offset != s->end)
			s->bad++;
		if (!commit && s->nab < SIM_MAX_AB)
			s->ab[s->nab++] = last_done;
		s->open[p] = -1;
		s->end++;
	}
}

/* Compare every query in a range of (from, upto) with the model, boundaries included. */
static void sim_queries(struct sim *s, int rounds)
{
	static struct pst_txn want[SIM_MAX_AB];

	for (int r = 0; r < rounds; r++) {
		int64_t from, upto;
		int n;
		if (r % 3 == 0 && s->nab) {
			/* On the edges of a listed transaction. */
			const struct pst_txn *x = &s->ab[rnd((uint32_t)s->nab)];
			switch (rnd(4)) {
			case 0: from = x->last_offset; upto = from + 1 + rnd(5); break;
			case 1: from = x->last_offset + 1; upto = from + rnd(50); break;
			case 2: upto = x->first_offset + 1; from = upto - 1 - rnd(50); break;
			default: upto = x->first_offset; from = upto - 1 - rnd(50); break;
			}
		} else {
			from = (int64_t)rnd((uint32_t)s->end + 10) - 5;
			upto = from + (int64_t)rnd(200) - 20;
		}
		n = model_query(s->ab, s->nab, from, upto, want);
		struct got g;
		memset(&g, 0, sizeof(g));
		g.stop_after = r % 7 == 0 ? 1 + (int)rnd(4) : 0;	/* sometimes stop early */
		pst_aborted(s->t, from, upto, collect, &g);
		int expect = g.stop_after && n > g.stop_after ? g.stop_after : n;
		if (g.n != expect) {
			if (s->bad++ < 5)
				fprintf(stderr, "  [%lld, %lld): %d, want %d\n", (long long)from,
					(long long)upto, g.n, expect);
			continue;
		}
		for (int i = 0; i < g.n && i < 64; i++)
			if (memcmp(&g.x[i], &want[i], sizeof(want[i])) != 0)
				s->bad++;
	}
	/* Everything. */
	struct got g = aborted(s->t, INT64_MIN, INT64_MAX);
	if ((size_t)g.n != pst_aborted_count(s->t) || g.n != s->nab)
		s->bad++;
}

static void test_txn_aborted_ranges(void)
{
	static struct sim s;

	memset(&s, 0, sizeof(s));
	rng_state = 0x9E3779B97F4A7C15ULL;
	s.t = pst_table_new();
	for (int p = 0; p < SIM_PIDS; p++)
		s.open[p] = -1;
	for (int i = 0; i < 6000 && s.nab < SIM_MAX_AB; i++) {
		sim_step(&s);
		if (pst_first_unstable(s.t) != sim_min_open(&s))
			s.bad++;
		if (i % 500 == 499)
			sim_queries(&s, 200);
	}
	T_EQ(s.bad, 0);
	T_CHECK(s.nab > 500);		/* the model was exercised */
	sim_queries(&s, 3000);
	T_EQ(s.bad, 0);

	/* The exact boundaries on one transaction (1, 100, 200) among others. */
	{
		struct pst_table *t = pst_table_new();
		T_EQ(tapp(t, 1, 0, 0, 1, 100, 1), 0);
		T_EQ(tapp(t, 2, 0, 0, 1, 150, 1), 0);
		T_EQ(marker(t, 2, 0, 0, 160, 1), 1);	/* (2, 150, 160) aborted first */
		T_EQ(marker(t, 1, 0, 0, 200, 1), 1);	/* (1, 100, 200) */
		struct got g = aborted(t, 0, INT64_MAX);
		T_EQ(g.n, 2);
		T_EQ(g.x[0].first_offset, 100);		/* first-offset order, not marker order */
		T_EQ(g.x[1].first_offset, 150);
		T_EQ(aborted(t, 200, 201).n, 1);	/* last == from: in */
		T_EQ(aborted(t, 201, 1000).n, 0);	/* last == from - 1: out */
		T_EQ(aborted(t, 0, 101).n, 1);		/* first == upto - 1: in */
		T_EQ(aborted(t, 0, 100).n, 0);		/* first == upto: out */
		T_EQ(aborted(t, 160, 151).n, 2);
		T_EQ(aborted(t, 161, 151).n, 1);
		T_EQ(aborted(t, 160, 150).n, 1);
		T_EQ(aborted(t, 300, 100).n, 0);
		T_EQ(aborted(t, 150, 150).n, 1);
		T_EQ(aborted(t, INT64_MIN, INT64_MIN).n, 0);
		T_EQ(aborted(t, INT64_MAX, INT64_MAX).n, 0);
		pst_table_free(t);
	}
	pst_table_free(s.t);
}

static int check_kept(const struct sim *s, int64_t log_start)
{
	int n = 0, bad = 0;

	for (int i = 0; i < s->nab; i++)
		n += s->ab[i].last_offset >= log_start;
	if ((size_t)n != pst_aborted_count(s->t))
		bad++;
	return bad;
}

static void test_txn_truncate(void)
{
	static struct sim s;
	struct pst_table *t = pst_table_new();

	/* 1 opens at 0 and stays open; 2 aborts 5-10; 3 writes plain data at 20. */
	T_EQ(tapp(t, 1, 0, 0, 1, 0, 1), 0);
	T_EQ(tapp(t, 2, 0, 0, 1, 5, 1), 0);
	T_EQ(marker(t, 2, 0, 0, 10, 1), 1);
	T_EQ(app(t, 3, 0, 0, 1, 20, 0, 1), 0);
	T_EQ(pst_truncate_head(t, 10), 0);
	T_EQ(pst_aborted_count(t), 1);			/* its marker at 10 is not below 10 */
	T_EQ(pst_truncate_head(t, 11), 1);		/* 2 goes, with its aborted entry */
	T_EQ(pst_aborted_count(t), 0);
	T_CHECK(pst_find(t, 2) == NULL);
	T_EQ(pst_truncate_head(t, 1000), 1);		/* 3 goes, 1 is open: kept */
	T_CHECK(pst_find(t, 1) != NULL);
	T_EQ(pst_first_unstable(t), 0);
	T_EQ(marker(t, 1, 0, 0, 1001, 1), 1);		/* still ends properly */
	T_EQ(last_done.first_offset, 0);
	T_EQ(pst_aborted_count(t), 1);
	T_EQ(pst_truncate_head(t, 1002), 1);
	T_EQ(pst_count(t), 0);
	T_EQ(pst_aborted_count(t), 0);
	/* An entry a marker made, with no batches, stays while the marker is in the log. */
	T_EQ(marker(t, 4, 0, 1, 2000, 1), 0);
	T_EQ(pst_truncate_head(t, 2000), 0);
	T_EQ(pst_truncate_head(t, 2001), 1);
	pst_table_free(t);

	/* Random histories cut at many points: the kept ones match the model, queries too. */
	memset(&s, 0, sizeof(s));
	rng_state = 12345;
	s.t = pst_table_new();
	for (int p = 0; p < SIM_PIDS; p++)
		s.open[p] = -1;
	int64_t log_start = 0;
	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < 200; i++)
			sim_step(&s);
		log_start += (int64_t)rnd((uint32_t)(s.end - log_start) + 1);
		pst_truncate_head(s.t, log_start);
		/* The model forgets the same ones (keeping marker order). */
		int k = 0;
		for (int i = 0; i < s.nab; i++)
			if (s.ab[i].last_offset >= log_start)
				s.ab[k++] = s.ab[i];
		s.nab = k;
		s.bad += check_kept(&s, log_start);
		for (int p = 0; p < SIM_PIDS; p++)
			if (s.open[p] >= 0 && (!pst_find(s.t, p) ||
					       pst_find(s.t, p)->txn_first_offset != s.open[p]))
				s.bad++;
		if (pst_first_unstable(s.t) != sim_min_open(&s))
			s.bad++;
		sim_queries(&s, 100);
	}
	T_EQ(s.bad, 0);
	pst_table_free(s.t);
}

static void test_txn_expire(void)
{
	struct pst_table *t = pst_table_new();
	const int64_t X = PST_EXPIRATION_MS_DEFAULT;

	T_EQ(tapp(t, 1, 0, 0, 1, 0, 1000), 0);		/* open */
	T_EQ(tapp(t, 2, 0, 0, 1, 1, 1000), 0);
	T_EQ(marker(t, 2, 0, 1, 2, 1000), 1);		/* committed */
	T_EQ(app(t, 3, 0, 0, 1, 3, 0, 1000), 0);	/* plain */
	T_EQ(pst_expire(t, 1000 + X, X), 2);		/* idle alike, but 1 is open */
	T_CHECK(pst_find(t, 1) != NULL);
	T_EQ(pst_count(t), 1);
	T_EQ(pst_expire(t, INT64_MAX, 0), 0);
	T_EQ(pst_first_unstable(t), 0);
	/* A marker is an append for expiry: it renews the time. */
	T_EQ(marker(t, 1, 0, 0, 4, 5000), 1);
	T_EQ(pst_find(t, 1)->last_append_ms, 5000);
	T_EQ(pst_expire(t, 5000 + X - 1, X), 0);
	T_EQ(pst_expire(t, 5000 + X, X), 1);
	T_EQ(pst_aborted_count(t), 1);			/* the list is the log's, not the producer's */
	pst_table_free(t);
}

struct seen {
	int n, stop_after;
	uint64_t pids;
};

static int see(void *arg, const struct pst_entry *e)
{
	struct seen *s = arg;

	s->n++;
	if (e->producer_id >= 0 && e->producer_id < 64)
		s->pids |= 1ull << e->producer_id;
	return s->stop_after && s->n >= s->stop_after;
}

static void test_foreach(void)
{
	struct pst_table *t = pst_table_new();
	struct seen s = { 0, 0, 0 };

	pst_foreach(t, see, &s);
	T_EQ(s.n, 0);
	for (int i = 0; i < 40; i++)
		T_EQ(app(t, i, 0, 0, 1 + i, 1000 * i, 7 * i, 1), 0);
	T_EQ(tapp(t, 50, 2, 5, 3, 50000, 1), 0);
	pst_foreach(t, see, &s);
	T_EQ(s.n, 41);
	T_EQ(s.pids, (((1ull << 40) - 1) | (1ull << 50)));
	s.n = 0;
	s.stop_after = 3;
	pst_foreach(t, see, &s);
	T_EQ(s.n, 3);
	/* What DescribeProducers reads. */
	const struct pst_entry *e = pst_find(t, 50);
	T_EQ(e->producer_id, 50);
	T_EQ(e->epoch, 2);
	T_EQ(pst_entry_last_seq(e), 7);
	T_EQ(pst_entry_last_timestamp(e), 500000);
	T_EQ(e->txn_first_offset, 50000);
	e = pst_find(t, 3);
	T_EQ(pst_entry_last_seq(e), 3);
	T_EQ(pst_entry_last_timestamp(e), 21);
	T_EQ(e->txn_first_offset, -1);
	pst_table_free(t);
}

/* ---- the allocator ---- */

static void test_alloc_blocks(void)
{
	struct pst_alloc a;
	int64_t id = -1, mark = -1;
	int bad = 0;

	T_EQ(pst_alloc_init(&a, -1, 1000), SL_E_INVALID);
	T_EQ(pst_alloc_init(&a, 0, 0), SL_E_INVALID);
	T_EQ(pst_alloc_init(&a, 0, 1000), 0);
	/* Nothing is durable yet. */
	T_EQ(pst_alloc_next(&a, &id), SL_E_AGAIN);
	T_EQ(id, -1);
	T_EQ(pst_alloc_reserve(&a, &mark), 0);
	T_EQ(mark, 1000);
	T_EQ(pst_alloc_reserve(&a, &mark), 0);		/* the same until installed */
	T_EQ(mark, 1000);
	T_EQ(pst_alloc_next(&a, &id), SL_E_AGAIN);
	pst_alloc_install(&a, mark);
	for (int64_t i = 0; i < 1000; i++)
		if (pst_alloc_next(&a, &id) != 0 || id != i)
			bad++;
	T_EQ(bad, 0);
	T_EQ(pst_alloc_next(&a, &id), SL_E_AGAIN);	/* block boundary */
	T_EQ(id, 999);
	T_EQ(pst_alloc_reserve(&a, &mark), 0);
	T_EQ(mark, 2000);
	pst_alloc_install(&a, 2000);
	pst_alloc_install(&a, 2000);			/* twice: nothing more */
	pst_alloc_install(&a, 1000);			/* stale: nothing */
	T_EQ(a.limit, 2000);
	T_EQ(pst_alloc_next(&a, &id), 0);
	T_EQ(id, 1000);
	/* Near the end of int64 the reservation refuses. */
	T_EQ(pst_alloc_init(&a, INT64_MAX - 5, 10), 0);
	T_EQ(pst_alloc_reserve(&a, &mark), SL_E_FULL);
	T_EQ(pst_alloc_init(&a, INT64_MAX - 10, 10), 0);
	T_EQ(pst_alloc_reserve(&a, &mark), 0);
	T_EQ(mark, INT64_MAX);
}

/*
 * Crashes at every point of a block: the ids handed out before and after a
 * restart from the durable mark never meet.
 */
static void test_alloc_restart(void)
{
	static unsigned char seen[4000];
	int64_t durable = 0, id, mark;
	int bad = 0, handed = 0;

	memset(seen, 0, sizeof(seen));
	for (int life = 0; life < 6; life++) {
		struct pst_alloc a;
		T_EQ(pst_alloc_init(&a, durable, 100), 0);
		/* Each life hands out a different number of ids, then dies. */
		for (int k = 0; k < 37 * life + 1; k++) {
			if (pst_alloc_next(&a, &id) == SL_E_AGAIN) {
				if (pst_alloc_reserve(&a, &mark) != 0)
					bad++;
				durable = mark;		/* written and synced */
				pst_alloc_install(&a, mark);
				if (pst_alloc_next(&a, &id) != 0)
					bad++;
			}
			if (id < 0 || id >= (int64_t)sizeof(seen) || seen[id]++)
				bad++;
			handed++;
		}
		/* A restart resumes at the durable mark, past anything handed out. */
		T_CHECK(durable >= a.next);
	}
	T_EQ(bad, 0);
	T_EQ(handed, 1 + 38 + 75 + 112 + 149 + 186);
	/* Each life wasted the rest of its last block, no more. */
	T_EQ(durable, 900);
}

/* ---- snapshots ---- */

static struct pst_table *sample_table(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(app(t, 900, 3, 0, 1, 0, 11, 1000), 0);
	for (int i = 0; i < 7; i++)	/* more than five: the oldest two go */
		T_EQ(app(t, 5, 0, 10 * i, 10, 1 + 10 * i, 100 + i, 2000 + i), 0);
	T_EQ(app(t, 77, -1, INT32_MAX - 1, 4, 100, -1, -5), 0);	/* wraps; odd times */
	T_EQ(app(t, 0, INT16_MAX, 12, 1, INT64_MAX, INT64_MIN, INT64_MAX), 0);
	return t;
}

static int encode(const struct pst_table *t, uint8_t **p, size_t *len)
{
	struct sl_wr w;
	int rc;

	wr_init(&w, 0);
	rc = pst_encode(t, &w);
	if (rc) {
		wr_free(&w);
		return rc;
	}
	*p = wr_take(&w, len);
	return 0;
}

static int decode(const uint8_t *p, size_t len, struct pst_table **out)
{
	struct sl_rd r;
	int rc;

	rd_init(&r, p, len);
	rc = pst_decode(&r, out);
	if (rc == 0 && rd_left(&r) != 0) {
		pst_table_free(*out);
		*out = NULL;
		return -1;
	}
	if (rc != 0 && r.off != 0)
		return -2;	/* a failed decode must not move the reader */
	return rc;
}

static void same_entries(const struct pst_table *a, const struct pst_table *b)
{
	const int64_t pids[] = { 0, 5, 77, 900 };

	T_EQ(pst_count(a), pst_count(b));
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		const struct pst_entry *x = pst_find(a, pids[i]), *y = pst_find(b, pids[i]);
		T_CHECK(x && y);
		if (!x || !y)
			continue;
		T_EQ(x->epoch, y->epoch);
		T_EQ(x->last_append_ms, y->last_append_ms);
		T_EQ(x->nbatches, y->nbatches);
		for (int k = 0; k < x->nbatches && k < y->nbatches; k++)
			T_MEMEQ(&x->batch[k], &y->batch[k], sizeof(x->batch[k]));
	}
}

static void test_snapshot_roundtrip(void)
{
	struct pst_table *t = sample_table(), *u = NULL, *e = pst_table_new();
	uint8_t *p = NULL, *q = NULL;
	size_t n = 0, m = 0;

	T_EQ(encode(t, &p, &n), 0);
	/* version, length, count, 4 entries, 5+1+1+1 batches, no aborted, CRC */
	T_EQ(n, 1 + 4 + 4 + 4 * (8 + 2 + 8 + 8 + 8 + 1) + 8 * (4 + 4 + 8 + 8 + 8) + 4 + 4);
	T_EQ(p[0], 1);
	T_EQ(sl_load_be32(p + 1), n - 9);
	T_EQ(sl_load_be32(p + 5), 4);
	T_EQ(sl_load_be64(p + 9), 0);			/* in increasing producer id */
	T_EQ(sl_load_be32(p + n - 4), crc32c(0, p, n - 4));
	T_EQ(decode(p, n, &u), 0);
	T_CHECK(u != NULL);
	if (u) {
		same_entries(t, u);
		T_EQ(pst_find(u, 5)->batch[0].first_seq, 20);
		/* The same bytes again, and the same behaviour. */
		T_EQ(encode(u, &q, &m), 0);
		T_EQ(m, n);
		if (m == n)
			T_MEMEQ(p, q, n);
		T_EQ(chk(u, 5, 0, 60, 10), PST_DUPLICATE);
		T_EQ(last_dup.first_offset, 61);
		T_EQ(last_dup.max_timestamp, 106);
		T_EQ(chk(u, 5, 0, 20, 10), PST_DUPLICATE);
		T_EQ(chk(u, 5, 0, 10, 10), PST_REJECT);
		T_EQ(chk(u, 5, 0, 70, 1), PST_APPEND);
		T_EQ(chk(u, 77, -1, INT32_MAX - 1, 4), PST_DUPLICATE);
		/* and it can be changed further */
		T_EQ(app(u, 5, 0, 70, 1, 200, 0, 3000), 0);
		T_EQ(app(u, 6, 0, 0, 1, 201, 0, 3000), 0);
		T_EQ(pst_count(u), 5);
	}
	free(q);
	q = NULL;

	/* An empty table, and two snapshots back to back in one buffer. */
	T_EQ(encode(e, &q, &m), 0);
	T_EQ(m, 1 + 4 + 4 + 4 + 4);
	{
		uint8_t *two = malloc(m + n);
		struct sl_rd r;
		struct pst_table *x = NULL, *y = NULL;
		memcpy(two, q, m);
		memcpy(two + m, p, n);
		rd_init(&r, two, m + n);
		T_EQ(pst_decode(&r, &x), 0);
		T_EQ(r.off, m);
		T_EQ(pst_decode(&r, &y), 0);
		T_EQ(rd_left(&r), 0);
		T_CHECK(x && pst_count(x) == 0);
		if (y)
			same_entries(t, y);
		pst_table_free(x);
		pst_table_free(y);
		free(two);
	}
	/* A writer with a cap too small: the writer's error. */
	{
		struct sl_wr w;
		wr_init(&w, 20);
		T_CHECK(pst_encode(t, &w) != 0);
		wr_free(&w);
	}
	free(p);
	free(q);
	pst_table_free(t);
	pst_table_free(u);
	pst_table_free(e);
}

/*
 * A table with transactions in every state: 1 open since 100; 2 aborted
 * 102-110 with an epoch bump, then open again at 120; 3 committed; 4
 * aborted twice; 5 known from a marker only; 6 plain; 7 aborted early and
 * gone with the log's head, so the aborted list starts past its array's
 * start.  The list in first-offset order, (2, 102, 110), (4, 105, 107),
 * (4, 112, 113), is not the markers' order.
 */
static struct pst_table *sample_txn_table(void)
{
	struct pst_table *t = pst_table_new();

	T_EQ(tapp(t, 7, 0, 0, 2, 0, 900), 0);
	T_EQ(marker(t, 7, 0, 0, 2, 901), 1);
	T_EQ(tapp(t, 1, 0, 0, 2, 100, 1000), 0);
	T_EQ(tapp(t, 2, 1, 0, 3, 102, 1001), 0);
	T_EQ(tapp(t, 4, 0, 0, 1, 105, 1002), 0);
	T_EQ(tapp(t, 3, 0, 0, 1, 106, 1003), 0);
	T_EQ(marker(t, 4, 0, 0, 107, 1004), 1);
	T_EQ(marker(t, 2, 2, 0, 110, 1005), 1);
	T_EQ(marker(t, 3, 0, 1, 111, 1006), 1);
	T_EQ(tapp(t, 4, 0, 1, 1, 112, 1007), 0);
	T_EQ(marker(t, 4, 0, 0, 113, 1008), 1);
	T_EQ(tapp(t, 2, 2, 0, 1, 120, 1009), 0);
	T_EQ(marker(t, 5, 7, 1, 121, 1010), 0);
	T_EQ(app(t, 6, 0, 0, 1, 122, 5, 1011), 0);
	T_EQ(pst_truncate_head(t, 50), 1);
	T_EQ(pst_count(t), 6);
	T_EQ(pst_aborted_count(t), 3);
	T_EQ(pst_first_unstable(t), 100);
	return t;
}

struct cmp {
	const struct pst_table *other;
	int bad;
};

static int cmp_one(void *arg, const struct pst_entry *x)
{
	struct cmp *c = arg;
	const struct pst_entry *y = pst_find(c->other, x->producer_id);

	if (!y || x->epoch != y->epoch || x->nbatches != y->nbatches ||
	    x->last_append_ms != y->last_append_ms || x->last_offset != y->last_offset ||
	    x->txn_first_offset != y->txn_first_offset) {
		c->bad++;
		return 0;
	}
	for (int k = 0; k < x->nbatches; k++)
		if (memcmp(&x->batch[k], &y->batch[k], sizeof(x->batch[k])) != 0)
			c->bad++;
	return 0;
}

/* The same producers, the same transactions open, the same aborted list. */
static void same_table(const struct pst_table *a, const struct pst_table *b)
{
	struct cmp c = { b, 0 };
	static struct got x, y;

	T_EQ(pst_count(a), pst_count(b));
	pst_foreach(a, cmp_one, &c);
	T_EQ(c.bad, 0);
	T_EQ(pst_first_unstable(a), pst_first_unstable(b));
	T_EQ(pst_aborted_count(a), pst_aborted_count(b));
	x = aborted(a, INT64_MIN, INT64_MAX);
	y = aborted(b, INT64_MIN, INT64_MAX);
	T_EQ(x.n, y.n);
	if (x.n == y.n && x.n <= 64)
		T_MEMEQ(x.x, y.x, (size_t)x.n * sizeof(x.x[0]));
}

static void test_snapshot_txn_roundtrip(void)
{
	struct pst_table *t = sample_txn_table(), *u = NULL;
	uint8_t *p = NULL, *q = NULL;
	size_t n = 0, m = 0;

	T_EQ(encode(t, &p, &n), 0);
	/* version, length, count, 6 entries, 6 batches, 3 aborted, CRC */
	T_EQ(n, 1 + 4 + 4 + 6 * (8 + 2 + 8 + 8 + 8 + 1) + 6 * (4 + 4 + 8 + 8 + 8) + 4 +
		3 * (8 + 8 + 8) + 4);
	/* The aborted list ends the body, in first-offset order. */
	T_EQ(sl_load_be32(p + n - 4 - 3 * 24 - 4), 3);
	T_EQ(sl_load_be64(p + n - 4 - 3 * 24), 2);
	T_EQ(sl_load_be64(p + n - 4 - 3 * 24 + 8), 102);
	T_EQ(sl_load_be64(p + n - 4 - 3 * 24 + 16), 110);
	T_EQ(sl_load_be64(p + n - 4 - 24 + 8), 112);
	/* Producer 1's entry: id, epoch, last append, last offset seen, its transaction. */
	T_EQ(sl_load_be64(p + 9), 1);
	T_EQ(sl_load_be64(p + 9 + 8 + 2 + 8), 101);
	T_EQ(sl_load_be64(p + 9 + 8 + 2 + 8 + 8), 100);
	T_EQ(decode(p, n, &u), 0);
	T_CHECK(u != NULL);
	if (u) {
		same_table(t, u);
		T_EQ(encode(u, &q, &m), 0);
		T_EQ(m, n);
		if (m == n)
			T_MEMEQ(p, q, n);
		/* It behaves as the original. */
		T_EQ(pst_find(u, 5)->epoch, 7);
		T_EQ(chk(u, 2, 2, 1, 1), PST_REJECT);		/* plain data inside a transaction */
		T_EQ(last_err, KERR_INVALID_TXN_STATE);
		T_EQ(tchk(u, 2, 2, 1, 1), PST_APPEND);
		T_EQ(marker(u, 2, 2, 0, 110, 1), 0);		/* a replay */
		T_EQ(marker(u, 1, 0, 0, 200, 2000), 1);		/* 1's transaction, aborted */
		T_EQ(last_done.first_offset, 100);
		T_EQ(pst_first_unstable(u), 120);
		T_EQ(aborted(u, 108, 130).n, 3);		/* (1, 100, 200) first */
		T_EQ(aborted(u, 108, 130).x[0].first_offset, 100);
		T_EQ(marker(u, 2, 2, 1, 201, 2000), 1);
		T_EQ(pst_first_unstable(u), INT64_MAX);
		T_EQ(pst_aborted_count(u), 4);
		T_EQ(pst_truncate_head(u, 202), 6);
		T_EQ(pst_aborted_count(u), 0);
	}
	free(p);
	free(q);
	pst_table_free(t);
	pst_table_free(u);
}

/* Every cut and every flipped bit of t's snapshot is refused. */
static void damage_sweep(const struct pst_table *t)
{
	struct pst_table *u;
	uint8_t *p = NULL, *c;
	size_t n = 0;
	int bad = 0;

	T_EQ(encode(t, &p, &n), 0);
	c = malloc(n);
	/* Every truncation, with the bytes copied so ASan sees reads past the end. */
	for (size_t k = 0; k < n; k++) {
		uint8_t *s = malloc(k ? k : 1);
		memcpy(s, p, k);
		u = (struct pst_table *)1;
		int rc = decode(s, k, &u);
		if (rc != SL_E_SHORT || u != NULL)
			bad++;
		free(s);
	}
	T_EQ(bad, 0);
	/* Every byte changed, each bit alone and the whole byte. */
	for (size_t k = 0; k < n; k++) {
		for (int bit = 0; bit <= 8; bit++) {
			memcpy(c, p, n);
			c[k] ^= bit < 8 ? (uint8_t)(1u << bit) : 0xFF;
			u = NULL;
			int rc = decode(c, n, &u);
			if (rc == 0 || u != NULL) {
				bad++;
				pst_table_free(u);
			}
		}
	}
	T_EQ(bad, 0);
	/* What kind of error: the version, the length, the checksum. */
	memcpy(c, p, n);
	c[0] = 2;
	T_EQ(decode(c, n, &u), SL_E_INVALID);
	memcpy(c, p, n);
	c[4] ^= 1;			/* body length one more: the CRC runs past the end */
	T_EQ(decode(c, n, &u), SL_E_SHORT);
	memcpy(c, p, n);
	c[20] ^= 0x10;
	T_EQ(decode(c, n, &u), SL_E_CORRUPT);
	free(c);
	free(p);
}

struct inv {
	int64_t min_open;
	int bad;
};

static int inv_one(void *arg, const struct pst_entry *e)
{
	struct inv *v = arg;

	if (e->last_offset < -1 || (e->nbatches && e->last_offset < e->batch[e->nbatches - 1].last_offset) ||
	    e->txn_first_offset < -1 || e->txn_first_offset > e->last_offset)
		v->bad++;
	if (e->txn_first_offset >= 0 && e->txn_first_offset < v->min_open)
		v->min_open = e->txn_first_offset;
	return 0;
}

/*
 * Every flipped bit of the body with the CRC made right again: either
 * refused, or a table that keeps the invariants and encodes to those very
 * bytes.
 */
static void body_sweep(const struct pst_table *t)
{
	uint8_t *p = NULL, *c, *q = NULL;
	size_t n = 0, m;
	int bad = 0, accepted = 0;

	T_EQ(encode(t, &p, &n), 0);
	c = malloc(n);
	for (size_t k = 5; k + 4 < n; k++)
		for (int bit = 0; bit < 8; bit++) {
			struct pst_table *u = (struct pst_table *)1;
			memcpy(c, p, n);
			c[k] ^= (uint8_t)(1u << bit);
			sl_store_be32(c + n - 4, crc32c(0, c, n - 4));
			int rc = decode(c, n, &u);
			if (rc != 0) {
				if (u != NULL || rc == SL_E_CORRUPT || rc == SL_E_SHORT)
					bad++;
				continue;
			}
			accepted++;
			struct inv v = { INT64_MAX, 0 };
			pst_foreach(u, inv_one, &v);
			if (v.bad || v.min_open != pst_first_unstable(u))
				bad++;
			struct got g = aborted(u, INT64_MIN, INT64_MAX);
			for (int i = 0; i < g.n && i < 64; i++)
				if (g.x[i].producer_id < 0 || g.x[i].first_offset < 0 ||
				    g.x[i].first_offset > g.x[i].last_offset ||
				    (i && g.x[i].first_offset < g.x[i - 1].first_offset))
					bad++;
			q = NULL;
			if (encode(u, &q, &m) != 0 || m != n || memcmp(q, c, n) != 0)
				bad++;
			free(q);
			pst_table_free(u);
		}
	T_EQ(bad, 0);
	T_CHECK(accepted > 0);	/* timestamps, epochs: some flips are legal */
	free(c);
	free(p);
}

static void test_snapshot_damage(void)
{
	struct pst_table *t = sample_table(), *x = sample_txn_table();

	damage_sweep(t);
	damage_sweep(x);
	body_sweep(t);
	body_sweep(x);
	pst_table_free(t);
	pst_table_free(x);
}

/* ---- bodies with a good CRC that break the rules ---- */

struct snap {
	struct sl_wr w;
	size_t len_at;
};

static void snap_begin(struct snap *s, uint32_t count)
{
	wr_init(&s->w, 0);
	wr_u8(&s->w, 1);
	wr_reserve(&s->w, 4, &s->len_at);
	wr_u32(&s->w, count);
}

/* An entry: last is the newest offset seen, txn the ongoing transaction's first. */
static void snap_entry(struct snap *s, int64_t pid, int16_t epoch, int64_t last, int64_t txn,
		       uint8_t nb)
{
	wr_i64(&s->w, pid);
	wr_i16(&s->w, epoch);
	wr_i64(&s->w, 0);
	wr_i64(&s->w, last);
	wr_i64(&s->w, txn);
	wr_u8(&s->w, nb);
}

/* The aborted list's count, then snap_txn for each. */
static void snap_aborted(struct snap *s, uint32_t count)
{
	wr_u32(&s->w, count);
}

static void snap_txn(struct snap *s, int64_t pid, int64_t first, int64_t last)
{
	wr_i64(&s->w, pid);
	wr_i64(&s->w, first);
	wr_i64(&s->w, last);
}

static void snap_meta(struct snap *s, int32_t f, int32_t l, int64_t fo, int64_t lo)
{
	wr_i32(&s->w, f);
	wr_i32(&s->w, l);
	wr_i64(&s->w, fo);
	wr_i64(&s->w, lo);
	wr_i64(&s->w, 0);
}

/* Close the body, add the CRC, decode: the result. */
static int snap_end(struct snap *s)
{
	struct pst_table *t = (struct pst_table *)1;
	int rc;

	wr_patch_u32(&s->w, s->len_at, (uint32_t)(s->w.len - s->len_at - 4));
	wr_u32(&s->w, crc32c(0, s->w.p, s->w.len));
	T_EQ(s->w.err, 0);
	rc = decode(s->w.p, s->w.len, &t);
	if (rc == 0)
		pst_table_free(t);
	else if (t != NULL)
		rc = -3;	/* *out must be NULL on error */
	wr_free(&s->w);
	return rc;
}

static void test_snapshot_rules(void)
{
	struct snap s;

	/* The well-formed baseline, then one rule broken at a time. */
	snap_begin(&s, 2);
	snap_entry(&s, 1, 0, 10, -1, 2);
	snap_meta(&s, 0, 9, 0, 9);
	snap_meta(&s, 10, 10, 10, 10);
	snap_entry(&s, 2, 0, -1, -1, 0);	/* no batches: allowed */
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), 0);

	snap_begin(&s, 1);
	snap_entry(&s, -1, 0, -1, -1, 0);	/* negative producer id */
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 2);
	snap_entry(&s, 2, 0, -1, -1, 0);
	snap_entry(&s, 1, 0, -1, -1, 0);	/* out of order */
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 2);
	snap_entry(&s, 2, 0, -1, -1, 0);
	snap_entry(&s, 2, 0, -1, -1, 0);	/* twice */
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 1);
	snap_entry(&s, 1, 0, 5, -1, 6);		/* six batches */
	for (int i = 0; i < 6; i++)
		snap_meta(&s, i, i, i, i);
	T_EQ(snap_end(&s), SL_E_INVALID);

	/* One entry with one batch: first seq, last seq, first offset, last offset. */
	static const struct {
		int32_t f, l;
		int64_t fo, lo;
		int rc;
		const char *what;
	} one[] = {
		{ 0, 8, 0, 9, SL_E_INVALID, "sequences and offsets disagree" },
		{ INT32_MAX, 0, 0, 1, 0, "across the wrap: fine" },
		{ -1, 0, 0, 1, SL_E_INVALID, "negative sequence" },
		{ 0, 0, -1, -1, SL_E_INVALID, "negative offset" },
		{ 5, 5, 9, 8, SL_E_INVALID, "last offset before first" },
		{ 0, INT32_MAX, 0, INT32_MAX, SL_E_INVALID, "2^31 records" },
		{ 0, 1, INT64_MAX - 1, INT64_MAX, 0, "the very end: fine" },
	};
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		snap_begin(&s, 1);
		snap_entry(&s, 1, 0, one[i].lo, -1, 1);
		snap_meta(&s, one[i].f, one[i].l, one[i].fo, one[i].lo);
		snap_aborted(&s, 0);
		int rc = snap_end(&s);
		if (rc != one[i].rc)
			fprintf(stderr, "  one batch, %s:\n", one[i].what);
		T_EQ(rc, one[i].rc);
	}

	snap_begin(&s, 1);
	snap_entry(&s, 1, 0, 5, -1, 2);
	snap_meta(&s, 0, 0, 5, 5);
	snap_meta(&s, 1, 1, 5, 5);		/* offsets do not increase */
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 1);
	snap_entry(&s, 1, 0, 5, -1, 2);
	snap_meta(&s, 0, 0, 5, 5);		/* the second batch is missing */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 2);
	snap_entry(&s, 1, 0, -1, -1, 0);	/* one entry of two */
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 1);
	snap_entry(&s, 1, 0, -1, -1, 0);
	snap_aborted(&s, 0);
	wr_u8(&s.w, 0);				/* a byte left in the body */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 1);
	snap_entry(&s, 1, 0, -1, -1, 0);	/* the aborted list's count is missing */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, PST_MAX_PRODUCERS + 1);	/* over the cap, before anything else */
	T_EQ(snap_end(&s), SL_E_TOOBIG);

	snap_begin(&s, UINT32_MAX);
	T_EQ(snap_end(&s), SL_E_TOOBIG);

	snap_begin(&s, 1000);			/* a count the body cannot hold */
	snap_entry(&s, 1, 0, -1, -1, 0);
	snap_aborted(&s, 0);
	T_EQ(snap_end(&s), SL_E_INVALID);

	/* An entry's newest offset seen and ongoing transaction, beside a batch 0-9. */
	static const struct {
		int64_t last, txn;
		uint8_t nb;
		int rc;
		const char *what;
	} ent[] = {
		{ 9, -1, 1, 0, "last seen = the batch's last" },
		{ 20, 5, 1, 0, "a marker seen after the batch, a transaction below" },
		{ 8, -1, 1, SL_E_INVALID, "last seen below the batch's last" },
		{ -1, -1, 0, 0, "nothing seen, nothing cached" },
		{ 7, -1, 0, 0, "a marker seen, nothing cached" },
		{ -2, -1, 0, SL_E_INVALID, "last seen below -1" },
		{ INT64_MIN, -1, 0, SL_E_INVALID, "last seen INT64_MIN" },
		{ -1, 0, 0, SL_E_INVALID, "a transaction with nothing seen" },
		{ 9, 0, 1, 0, "a transaction at 0" },
		{ 9, 9, 1, 0, "a transaction at the last offset seen" },
		{ 9, 10, 1, SL_E_INVALID, "a transaction past the last offset seen" },
		{ 9, -2, 1, SL_E_INVALID, "a transaction below -1" },
		{ INT64_MAX, INT64_MAX, 1, 0, "a transaction at INT64_MAX" },
	};
	for (size_t i = 0; i < sizeof(ent) / sizeof(ent[0]); i++) {
		snap_begin(&s, 2);
		snap_entry(&s, 1, 0, -1, -1, 0);
		snap_entry(&s, 3, 0, ent[i].last, ent[i].txn, ent[i].nb);
		if (ent[i].nb)
			snap_meta(&s, 0, 9, 0, 9);
		snap_aborted(&s, 0);
		int rc = snap_end(&s);
		if (rc != ent[i].rc)
			fprintf(stderr, "  entry, %s:\n", ent[i].what);
		T_EQ(rc, ent[i].rc);
	}

	/* Two aborted transactions, the first (1, 10, 20). */
	static const struct {
		int64_t pid, first, last;
		int rc;
		const char *what;
	} ab[] = {
		{ 2, 12, 30, 0, "the next one" },
		{ 2, 10, 15, 0, "the same first offset, an earlier marker" },
		{ 1, 10, 20, 0, "the same again (cannot be, but harmless)" },
		{ 2, 11, 11, 0, "first = last" },
		{ 0, 12, INT64_MAX, 0, "producer 0, the very end" },
		{ 2, 9, 30, SL_E_INVALID, "first offsets decrease" },
		{ -1, 12, 30, SL_E_INVALID, "a negative producer id" },
		{ 2, 12, 11, SL_E_INVALID, "last before first" },
	};
	for (size_t i = 0; i < sizeof(ab) / sizeof(ab[0]); i++) {
		snap_begin(&s, 0);
		snap_aborted(&s, 2);
		snap_txn(&s, 1, 10, 20);
		snap_txn(&s, ab[i].pid, ab[i].first, ab[i].last);
		int rc = snap_end(&s);
		if (rc != ab[i].rc)
			fprintf(stderr, "  aborted, %s:\n", ab[i].what);
		T_EQ(rc, ab[i].rc);
	}
	snap_begin(&s, 0);
	snap_aborted(&s, 1);
	snap_txn(&s, 1, -1, 5);			/* a negative first offset */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 0);
	snap_aborted(&s, 2);
	snap_txn(&s, 1, 1, 5);			/* one of two */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 0);
	snap_aborted(&s, 1);
	snap_txn(&s, 1, 1, 5);
	snap_txn(&s, 1, 6, 7);			/* one more than the count */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 0);
	snap_aborted(&s, 1);
	snap_txn(&s, 1, 1, 5);
	wr_u8(&s.w, 0);				/* a byte left */
	T_EQ(snap_end(&s), SL_E_INVALID);

	snap_begin(&s, 0);
	snap_aborted(&s, PST_MAX_ABORTED + 1);	/* over the cap, before anything else */
	T_EQ(snap_end(&s), SL_E_TOOBIG);

	snap_begin(&s, 0);
	snap_aborted(&s, UINT32_MAX);
	T_EQ(snap_end(&s), SL_E_TOOBIG);

	/* A body too short to hold its count. */
	{
		uint8_t z[9] = { 1, 0, 0, 0, 0 };
		struct pst_table *u = (struct pst_table *)1;
		sl_store_be32(z + 5, crc32c(0, z, 5));
		T_EQ(decode(z, sizeof(z), &u), SL_E_INVALID);
		T_CHECK(u == NULL);
	}

	/* An empty input, and a lone version byte. */
	struct pst_table *t = NULL;
	T_EQ(decode(NULL, 0, &t), SL_E_SHORT);
	T_EQ(decode((const uint8_t *)"\1", 1, &t), SL_E_SHORT);
	T_CHECK(t == NULL);
}

/* The table below end, through its bytes. */
static struct pst_table *below(const struct pst_table *t, int64_t end)
{
	struct pst_table *out = NULL;
	struct sl_wr w;

	wr_init(&w, 0);
	T_EQ(pst_encode_below(t, end, &w), 0);
	T_EQ(decode(w.p, w.len, &out), 0);
	wr_free(&w);
	return out;
}

/*
 * pst_encode_below: what the manifest holds for a partition whose objects
 * end at end; pst_append and pst_apply_marker of the batches from end on
 * (the WAL's replay) give back the whole table.
 */
static void test_snapshot_below(void)
{
	struct pst_table *t = pst_table_new(), *u;
	struct sl_wr a, b;

	/* A: offsets 0, 1, 2; B: a transaction from 3, aborted by the marker at 5; C: 6. */
	T_EQ(app(t, 1, 0, 0, 1, 0, 10, 100), 0);
	T_EQ(app(t, 1, 0, 1, 1, 1, 10, 100), 0);
	T_EQ(app(t, 1, 0, 2, 1, 2, 10, 100), 0);
	T_EQ(tapp(t, 2, 0, 0, 1, 3, 100), 0);
	T_EQ(tapp(t, 2, 0, 1, 1, 4, 100), 0);
	T_EQ(marker(t, 2, 0, 0, 5, 100), 1);
	T_EQ(app(t, 3, 0, 0, 1, 6, 10, 100), 0);

	/* Everything is below 7: the same bytes as pst_encode. */
	wr_init(&a, 0);
	wr_init(&b, 0);
	T_EQ(pst_encode(t, &a), 0);
	T_EQ(pst_encode_below(t, 7, &b), 0);
	T_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
	wr_free(&a);
	wr_free(&b);

	u = below(t, 6);
	T_CHECK(u && pst_count(u) == 2 && !pst_find(u, 3) && pst_aborted_count(u) == 1);
	pst_table_free(u);

	/* Below the marker: B's transaction is still open, nothing aborted yet. */
	u = below(t, 5);
	T_CHECK(u && pst_count(u) == 2 && pst_aborted_count(u) == 0);
	T_EQ(u ? pst_first_unstable(u) : -1, 3);
	if (u) {
		/* The replay of offsets 5 and 6 gives back the table. */
		T_EQ(marker(u, 2, 0, 0, 5, 100), 1);
		T_EQ(last_done.first_offset, 3);
		T_EQ(app(u, 3, 0, 0, 1, 6, 10, 100), 0);
		wr_init(&a, 0);
		wr_init(&b, 0);
		T_EQ(pst_encode(t, &a), 0);
		T_EQ(pst_encode(u, &b), 0);
		T_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
		wr_free(&a);
		wr_free(&b);
	}
	pst_table_free(u);

	/* Below 4: B's first batch is kept, its second is not. */
	u = below(t, 4);
	T_CHECK(u && pst_find(u, 2) && pst_find(u, 2)->nbatches == 1 && pst_find(u, 2)->last_offset == 3);
	pst_table_free(u);

	/* Below 2: only A's first two batches. */
	u = below(t, 2);
	T_CHECK(u && pst_count(u) == 1 && pst_find(u, 1) && pst_find(u, 1)->nbatches == 2);
	if (u) {
		T_EQ(chk(u, 1, 0, 1, 1), PST_DUPLICATE);
		T_EQ(chk(u, 1, 0, 2, 1), PST_APPEND);
		/* Replaying offset 1 again changes nothing; offset 2 is new. */
		T_EQ(app(u, 1, 0, 1, 1, 1, 10, 100), 0);
		T_EQ(pst_find(u, 1)->nbatches, 2);
		T_EQ(app(u, 1, 0, 2, 1, 2, 10, 100), 0);
		T_EQ(pst_find(u, 1)->nbatches, 3);
	}
	pst_table_free(u);
	u = below(t, 0);
	T_CHECK(u && pst_count(u) == 0);
	pst_table_free(u);
	pst_table_free(t);
}

int main(void)
{
	T_RUN(test_last_seq);
	T_RUN(test_snapshot_below);
	T_RUN(test_not_idempotent);
	T_RUN(test_bad_batches);
	T_RUN(test_unknown_producer);
	T_RUN(test_in_sequence);
	T_RUN(test_wrap);
	T_RUN(test_duplicates);
	T_RUN(test_epoch_bump);
	T_RUN(test_no_epoch);
	T_RUN(test_expiry);
	T_RUN(test_truncate_and_remove);
	T_RUN(test_replay_overlap);
	T_RUN(test_many_producers);
	T_RUN(test_txn_start);
	T_RUN(test_txn_commit_abort);
	T_RUN(test_txn_marker_epoch);
	T_RUN(test_txn_marker_replay);
	T_RUN(test_txn_lso);
	T_RUN(test_txn_aborted_ranges);
	T_RUN(test_txn_truncate);
	T_RUN(test_txn_expire);
	T_RUN(test_foreach);
	T_RUN(test_alloc_blocks);
	T_RUN(test_alloc_restart);
	T_RUN(test_snapshot_roundtrip);
	T_RUN(test_snapshot_txn_roundtrip);
	T_RUN(test_snapshot_damage);
	T_RUN(test_snapshot_rules);
	return t_done();
}
