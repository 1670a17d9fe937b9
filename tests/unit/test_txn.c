/*
 * test_txn.c - the transaction coordinator's state machine (kafka/txn.h)
 * with a fake clock and a fake producer-id allocator: every proposal is
 * completed (or cancelled) as the broker would once its record is durable,
 * and every completed record is also replayed into a second coordinator,
 * which must end up with the same snapshot bytes.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/kerr.h"
#include "../../kafka/txn.h"

static int64_t next_pid = 1000;
static int alloc_again;

static int fake_alloc(void *arg, int64_t *pid)
{
	(void)arg;
	if (alloc_again)
		return SL_E_AGAIN;
	*pid = next_pid++;
	return 0;
}

static struct txn_coord *C, *R;	/* the coordinator, and its replica from records */

/* Complete the proposal in r, replaying its record into R. */
static void done(const char *id, const struct txn_result *r)
{
	struct sl_wr w;

	T_CHECK(r->proposed != NULL);
	if (!r->proposed)
		return;
	wr_init(&w, 0);
	T_EQ(txn_record(r->proposed, &w), 0);
	T_EQ(txn_replay(R, w.p, w.len), 0);
	wr_free(&w);
	txn_complete(C, id);
}

static int same_snapshots(const struct txn_coord *a, const struct txn_coord *b)
{
	struct sl_wr x, y;
	int same;

	wr_init(&x, 0);
	wr_init(&y, 0);
	T_EQ(txn_encode(a, &x), 0);
	T_EQ(txn_encode(b, &y), 0);
	same = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
	wr_free(&x);
	wr_free(&y);
	return same;
}

static void fresh(void)
{
	txn_coord_free(C);
	txn_coord_free(R);
	C = txn_coord_new(fake_alloc, NULL);
	R = txn_coord_new(fake_alloc, NULL);
	alloc_again = 0;
}

/* A transactional id initialised and completed: its producer id. */
static int64_t init_done(const char *id, int64_t now)
{
	struct txn_result r;

	T_EQ(txn_init(C, id, id[0] == 's' ? 1000 : 60000, -1, -1, 900000, now, &r), 0);
	T_EQ(r.err, KERR_NONE);
	done(id, &r);
	return r.producer_id;
}

static const struct txn_part P[3] = { { "orders", 0 }, { "orders", 1 }, { "audit", 0 } };

static void test_init_new_id(void)
{
	struct txn_result r;

	fresh();
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 5, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed && r.proposed->epoch == 0 && r.proposed->state == TXN_EMPTY);
	/* Not there until durable; a second init meanwhile is concurrent. */
	T_CHECK(txn_find(C, "a") == NULL);
	T_EQ(txn_pending(C, "a"), 1);
	struct txn_result r2;
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 5, &r2), 0);
	T_EQ(r2.err, KERR_CONCURRENT_TRANSACTIONS);
	/* A failed write forgets it. */
	txn_cancel(C, "a");
	T_CHECK(txn_find(C, "a") == NULL);
	T_EQ(txn_pending(C, "a"), 0);
	T_EQ(txn_count(C), 0);
	/* The allocator waiting: nothing changes. */
	alloc_again = 1;
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 5, &r), SL_E_AGAIN);
	T_EQ(txn_pending(C, "a"), 0);
	alloc_again = 0;
	/* Bad timeouts. */
	T_EQ(txn_init(C, "a", 0, -1, -1, 900000, 5, &r), 0);
	T_EQ(r.err, KERR_INVALID_TRANSACTION_TIMEOUT);
	T_EQ(txn_init(C, "a", 900001, -1, -1, 900000, 5, &r), 0);
	T_EQ(r.err, KERR_INVALID_TRANSACTION_TIMEOUT);
	int64_t pid = init_done("a", 5);
	const struct txn_meta *m = txn_find(C, "a");
	T_CHECK(m && m->producer_id == pid && m->epoch == 0 && m->state == TXN_EMPTY && m->timeout_ms == 60000);
	/* Init again: the same id, the next epoch, nothing else kept. */
	T_EQ(txn_init(C, "a", 30000, -1, -1, 900000, 6, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_EQ(r.producer_id, pid);
	T_EQ(r.epoch, 1);
	done("a", &r);
	T_EQ(txn_find(C, "a")->timeout_ms, 30000);
	T_CHECK(same_snapshots(C, R));
}

static void test_commit_cycle(void)
{
	struct txn_result r;

	fresh();
	int64_t pid = init_done("a", 0);
	T_EQ(txn_add_partitions(C, "a", pid, 0, P, 2, 100, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed && r.proposed->state == TXN_ONGOING && r.proposed->nparts == 2 &&
		r.proposed->start_ms == 100);
	/* While pending, everything else waits. */
	struct txn_result r2;
	T_EQ(txn_add_partitions(C, "a", pid, 0, P + 2, 1, 101, &r2), 0);
	T_EQ(r2.err, KERR_CONCURRENT_TRANSACTIONS);
	T_EQ(txn_end(C, "a", pid, 0, 1, 101, &r2), 0);
	T_EQ(r2.err, KERR_CONCURRENT_TRANSACTIONS);
	done("a", &r);
	/* The same partitions again: nothing to write. */
	T_EQ(txn_add_partitions(C, "a", pid, 0, P, 2, 200, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed == NULL);
	/* One more and a group: the start time stays. */
	T_EQ(txn_add_partitions(C, "a", pid, 0, P + 1, 2, 300, &r), 0);
	T_CHECK(r.proposed && r.proposed->nparts == 3 && r.proposed->start_ms == 100);
	done("a", &r);
	T_EQ(txn_add_group(C, "a", pid, 0, "g1", 350, &r), 0);
	T_CHECK(r.proposed && r.proposed->ngroups == 1);
	done("a", &r);
	T_EQ(txn_add_group(C, "a", pid, 0, "g1", 360, &r), 0);
	T_CHECK(r.err == KERR_NONE && r.proposed == NULL);
	/* End: prepare, then markers, then complete. */
	T_EQ(txn_end(C, "a", pid, 0, 1, 400, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed && r.proposed->state == TXN_PREPARE_COMMIT && r.proposed->nparts == 3);
	done("a", &r);
	T_EQ(txn_end(C, "a", pid, 0, 1, 401, &r), 0);
	T_EQ(r.err, KERR_CONCURRENT_TRANSACTIONS);
	T_EQ(txn_end(C, "a", pid, 0, 0, 401, &r), 0);
	T_EQ(r.err, KERR_INVALID_TXN_STATE);
	T_EQ(txn_add_partitions(C, "a", pid, 0, P, 1, 401, &r), 0);
	T_EQ(r.err, KERR_CONCURRENT_TRANSACTIONS);
	T_EQ(txn_markers_done(C, "a", 500, &r), 0);
	T_CHECK(r.proposed && r.proposed->state == TXN_COMPLETE_COMMIT && r.proposed->nparts == 0 &&
		r.proposed->ngroups == 0 && r.proposed->start_ms == -1);
	done("a", &r);
	/* A retried EndTxn(commit) is answered as it was; an abort is not. */
	T_EQ(txn_end(C, "a", pid, 0, 1, 600, &r), 0);
	T_CHECK(r.err == KERR_NONE && r.proposed == NULL);
	T_EQ(txn_end(C, "a", pid, 0, 0, 600, &r), 0);
	T_EQ(r.err, KERR_INVALID_TXN_STATE);
	T_EQ(txn_markers_done(C, "a", 600, &r), SL_E_INVALID);
	/* The next transaction starts from COMPLETE_COMMIT. */
	T_EQ(txn_add_partitions(C, "a", pid, 0, P + 2, 1, 700, &r), 0);
	T_CHECK(r.proposed && r.proposed->state == TXN_ONGOING && r.proposed->start_ms == 700);
	done("a", &r);
	T_EQ(txn_end(C, "a", pid, 0, 0, 800, &r), 0);
	T_CHECK(r.proposed && r.proposed->state == TXN_PREPARE_ABORT);
	done("a", &r);
	T_EQ(txn_markers_done(C, "a", 900, &r), 0);
	T_CHECK(r.proposed && r.proposed->state == TXN_COMPLETE_ABORT);
	done("a", &r);
	/* Nothing to end from EMPTY. */
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 1000, &r), 0);
	done("a", &r);
	T_EQ(txn_end(C, "a", pid, 1, 1, 1100, &r), 0);
	T_EQ(r.err, KERR_INVALID_TXN_STATE);
	T_CHECK(same_snapshots(C, R));
}

static void test_fencing(void)
{
	struct txn_result r;

	fresh();
	int64_t pid = init_done("a", 0);
	T_EQ(txn_add_partitions(C, "a", pid + 1, 0, P, 1, 1, &r), 0);
	T_EQ(r.err, KERR_INVALID_PRODUCER_ID_MAPPING);
	T_EQ(txn_add_partitions(C, "b", pid, 0, P, 1, 1, &r), 0);
	T_EQ(r.err, KERR_INVALID_PRODUCER_ID_MAPPING);
	T_EQ(txn_add_partitions(C, "a", pid, 0, P, 1, 1, &r), 0);
	done("a", &r);
	/* A new instance with the same transactional id: the open transaction is aborted, epoch bumped. */
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 2, &r), 0);
	T_EQ(r.err, KERR_CONCURRENT_TRANSACTIONS);
	T_EQ(r.fenced_abort, 1);
	T_CHECK(r.proposed && r.proposed->state == TXN_PREPARE_ABORT && r.proposed->epoch == 1 &&
		r.proposed->nparts == 1);
	done("a", &r);
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 3, &r), 0);
	T_EQ(r.err, KERR_CONCURRENT_TRANSACTIONS);
	T_CHECK(r.proposed == NULL);
	T_EQ(txn_markers_done(C, "a", 4, &r), 0);
	done("a", &r);
	T_EQ(txn_init(C, "a", 60000, -1, -1, 900000, 5, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_EQ(r.epoch, 2);
	done("a", &r);
	/* The zombie (epoch 0) is fenced everywhere, KIP-360 included. */
	T_EQ(txn_add_partitions(C, "a", pid, 0, P, 1, 6, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	T_EQ(txn_add_group(C, "a", pid, 0, "g", 6, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	T_EQ(txn_end(C, "a", pid, 0, 1, 6, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	T_EQ(txn_init(C, "a", 60000, pid, 0, 900000, 6, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	T_EQ(txn_init(C, "a", 60000, pid, 1, 900000, 6, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	/* The live one re-initialises with KIP-360: the next epoch. */
	T_EQ(txn_init(C, "a", 60000, pid, 2, 900000, 7, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_EQ(r.epoch, 3);
	done("a", &r);
	/* Its retry of that (the answer was lost) gets the same epoch, no new bump. */
	T_EQ(txn_init(C, "a", 60000, pid, 2, 900000, 8, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed == NULL && r.epoch == 3);
	T_CHECK(same_snapshots(C, R));
}

struct ids {
	const char *id[8];
	int n;
};

static int collect(void *arg, const char *id)
{
	struct ids *x = arg;

	if (x->n < 8)
		x->id[x->n++] = id;
	return 0;
}

static void test_timeouts(void)
{
	struct txn_result r;
	struct ids x;

	fresh();
	int64_t pid = init_done("slow", 0);	/* timeout 1000 */
	int64_t other = init_done("a", 0);	/* timeout 60000 */
	T_EQ(txn_next_deadline(C), INT64_MAX);
	T_EQ(txn_add_partitions(C, "slow", pid, 0, P, 1, 5000, &r), 0);
	done("slow", &r);
	T_EQ(txn_add_partitions(C, "a", other, 0, P + 1, 1, 5500, &r), 0);
	done("a", &r);
	T_EQ(txn_next_deadline(C), 6000);
	x.n = 0;
	txn_timed_out(C, 5999, collect, &x);
	T_EQ(x.n, 0);
	txn_timed_out(C, 6000, collect, &x);
	T_EQ(x.n, 1);
	T_CHECK(x.n == 1 && strcmp(x.id[0], "slow") == 0);
	T_EQ(txn_abort_timed_out(C, "slow", 6000, &r), 0);
	T_CHECK(r.proposed && r.proposed->state == TXN_PREPARE_ABORT && r.proposed->epoch == 1 &&
		r.proposed->last_epoch == 0);
	/* Pending: not listed again, and other changes wait. */
	x.n = 0;
	txn_timed_out(C, 7000, collect, &x);
	T_EQ(x.n, 0);
	done("slow", &r);
	T_EQ(txn_abort_timed_out(C, "slow", 7000, &r), SL_E_INVALID);
	T_EQ(txn_markers_done(C, "slow", 7000, &r), 0);
	done("slow", &r);
	T_EQ(txn_next_deadline(C), 65500);
	/* The producer is fenced; with KIP-360 and its old epoch it may come back. */
	T_EQ(txn_end(C, "slow", pid, 0, 1, 7100, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	T_EQ(txn_init(C, "slow", 1000, pid, 0, 900000, 7200, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed == NULL && r.epoch == 1);
	T_EQ(txn_add_partitions(C, "slow", pid, 1, P, 1, 7300, &r), 0);
	T_EQ(r.err, KERR_NONE);
	done("slow", &r);
	T_CHECK(same_snapshots(C, R));
}

static void test_epoch_exhausted(void)
{
	struct txn_result r;
	struct sl_wr w;
	struct txn_meta m = { (char *)"x", 77, -1, INT16_MAX - 1, -1, 60000, TXN_EMPTY,
			      NULL, 0, NULL, 0, -1, 0 };

	fresh();
	wr_init(&w, 0);
	T_EQ(txn_record(&m, &w), 0);
	T_EQ(txn_replay(C, w.p, w.len), 0);
	wr_free(&w);
	T_EQ(txn_init(C, "x", 60000, -1, -1, 900000, 1, &r), 0);
	T_EQ(r.err, KERR_NONE);
	T_CHECK(r.proposed && r.proposed->producer_id != 77 && r.proposed->epoch == 0);
	txn_complete(C, "x");
	T_EQ(txn_find(C, "x")->epoch, 0);

	/* At the last epoch a client may hold, a fence still bumps (to INT16_MAX) and fences it. */
	struct txn_part tp = { (char *)"t", 0 };
	struct txn_meta o = { (char *)"y", 88, -1, INT16_MAX - 1, -1, 60000, TXN_ONGOING,
			      &tp, 1, NULL, 0, 10, 10 };
	wr_init(&w, 0);
	T_EQ(txn_record(&o, &w), 0);
	T_EQ(txn_replay(C, w.p, w.len), 0);
	wr_free(&w);
	T_EQ(txn_init(C, "y", 60000, -1, -1, 900000, 20, &r), 0);
	T_EQ(r.fenced_abort, 1);
	T_CHECK(r.proposed && r.proposed->epoch == INT16_MAX);
	txn_complete(C, "y");
	T_EQ(txn_markers_done(C, "y", 21, &r), 0);
	txn_complete(C, "y");
	T_EQ(txn_add_partitions(C, "y", 88, INT16_MAX - 1, &tp, 1, 22, &r), 0);
	T_EQ(r.err, KERR_PRODUCER_FENCED);
	/* And the next init moves to a new producer id. */
	T_EQ(txn_init(C, "y", 60000, -1, -1, 900000, 23, &r), 0);
	T_CHECK(r.proposed && r.proposed->producer_id != 88 && r.proposed->epoch == 0);
	txn_complete(C, "y");
}

/* Records this coordinator never writes are refused; a pending id has no deadline. */
static void test_refused_records(void)
{
	struct txn_part tp = { (char *)"t", 0 };
	const struct txn_meta bad[] = {
		{ (char *)"a", 1, -1, 0, -1, 1000, TXN_PREPARE_EPOCH_FENCE, NULL, 0, NULL, 0, 5, 5 },
		{ (char *)"a", 1, -1, 0, -1, 1000, TXN_EMPTY, &tp, 1, NULL, 0, -1, 5 },
		{ (char *)"a", 1, -1, 0, -1, 1000, TXN_ONGOING, &tp, 1, NULL, 0, -1, 5 },
		{ (char *)"a", 1, -1, 0, -1, 1000, TXN_COMPLETE_COMMIT, NULL, 0, NULL, 0, 7, 5 },
		{ (char *)"a", 1, -7, 0, -1, 1000, TXN_EMPTY, NULL, 0, NULL, 0, -1, 5 },
		{ (char *)"a", 1, -1, 0, -1, 0, TXN_EMPTY, NULL, 0, NULL, 0, -1, 5 },
	};
	struct sl_wr w;
	struct sl_rd rd;
	struct txn_result r;

	fresh();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wr_init(&w, 0);
		T_EQ(txn_record(&bad[i], &w), 0);
		T_EQ(txn_replay(C, w.p, w.len), SL_E_INVALID);
		wr_free(&w);
	}
	T_EQ(txn_count(C), 0);
	rd_init(&rd, NULL, 0);
	T_EQ(txn_decode(C, &rd), SL_E_SHORT);
	/* An open transaction whose abort is being written has no deadline meanwhile. */
	int64_t pid = init_done("slow", 0);
	T_EQ(txn_add_partitions(C, "slow", pid, 0, P, 1, 100, &r), 0);
	done("slow", &r);
	T_EQ(txn_next_deadline(C), 1100);
	T_EQ(txn_abort_timed_out(C, "slow", 1100, &r), 0);
	T_EQ(txn_next_deadline(C), INT64_MAX);
	txn_cancel(C, "slow");
	T_EQ(txn_next_deadline(C), 1100);
}

static void test_bytes(void)
{
	struct txn_result r;
	struct sl_wr w;

	fresh();
	int64_t a = init_done("a", 0);
	(void)init_done("b", 0);
	T_EQ(txn_add_partitions(C, "a", a, 0, P, 3, 10, &r), 0);
	done("a", &r);
	T_EQ(txn_add_group(C, "a", a, 0, "g", 11, &r), 0);
	done("a", &r);
	wr_init(&w, 0);
	T_EQ(txn_encode(C, &w), 0);
	/* Round trip. */
	struct txn_coord *d = txn_coord_new(fake_alloc, NULL);
	struct sl_rd rd;
	rd_init(&rd, w.p, w.len);
	T_EQ(txn_decode(d, &rd), 0);
	T_EQ(rd_left(&rd), 0);
	T_CHECK(same_snapshots(C, d));
	T_EQ(txn_count(d), 2);
	txn_coord_free(d);
	/* Every cut and every flipped bit: an error, never a crash; no half-applied snapshot. */
	for (size_t cut = 0; cut < w.len; cut++) {
		d = txn_coord_new(fake_alloc, NULL);
		rd_init(&rd, w.p, cut);
		T_CHECK(txn_decode(d, &rd) != 0);
		T_EQ(txn_count(d), 0);
		txn_coord_free(d);
	}
	uint8_t *b = malloc(w.len);
	for (size_t i = 0; i < w.len * 8; i++) {
		memcpy(b, w.p, w.len);
		b[i / 8] ^= (uint8_t)(1u << (i % 8));
		d = txn_coord_new(fake_alloc, NULL);
		rd_init(&rd, b, w.len);
		T_CHECK(txn_decode(d, &rd) != 0);
		txn_coord_free(d);
	}
	free(b);
	/* A record cut anywhere does not replay. */
	struct sl_wr rec;
	wr_init(&rec, 0);
	T_EQ(txn_record(txn_find(C, "a"), &rec), 0);
	for (size_t cut = 0; cut < rec.len; cut++) {
		d = txn_coord_new(fake_alloc, NULL);
		T_CHECK(txn_replay(d, rec.p, cut) != 0);
		T_EQ(txn_count(d), 0);
		txn_coord_free(d);
	}
	wr_free(&rec);
	wr_free(&w);
}

int main(void)
{
	T_RUN(test_init_new_id);
	T_RUN(test_commit_cycle);
	T_RUN(test_fencing);
	T_RUN(test_timeouts);
	T_RUN(test_epoch_exhausted);
	T_RUN(test_bytes);
	T_RUN(test_refused_records);
	txn_coord_free(C);
	txn_coord_free(R);
	return t_done();
}
