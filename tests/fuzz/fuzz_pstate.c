/*
 * fuzz_pstate.c - libFuzzer target for the producer-state engine
 * (kafka/pstate.h): its snapshot decoder, and programs of produce
 * (idempotent and transactional), replay, transaction markers, aborted-list
 * queries, listing, expiry, truncation and id allocation.
 *
 * Input: byte 0 chooses the mode.
 *   bit 0 set: the rest is a snapshot for pst_decode; bit 1 also recomputes
 *     its CRC (when it is long enough to have one) so the fuzzer gets past
 *     the checksum to the body's rules.  A snapshot that decodes must
 *     survive its own round trip: encode, decode, encode gives the same
 *     bytes.
 *   bit 0 clear: the rest is a program, one opcode byte and its arguments
 *     each, on one table with producer ids 0..7 (and -1), a partition end
 *     offset that only grows, and a wall clock that moves both ways.
 *
 * Besides "never crash, never leak", it checks what the engine promises:
 * a batch let through and appended is a DUPLICATE of itself at once, with
 * the offsets it was given; a retry of a cached batch with the entry's epoch
 * is always a DUPLICATE; a DUPLICATE reports a batch with the same
 * sequences; rejections carry only the four errors of the rules, and
 * INVALID_TXN_STATE only for plain data inside a transaction; the first
 * transactional batch opens the transaction at its offset; a marker ends
 * the transaction it reports (an abort lands in the list), a replayed one
 * changes nothing, and pst_check_marker refuses exactly the older epochs;
 * every entry keeps the table's invariants (pstate.c), the first unstable
 * offset is the smallest open transaction's start, the aborted list is in
 * first-offset order and a range query gives what filtering the whole list
 * gives; expiry and truncation keep open transactions and truncation drops
 * the aborted ones below the log start; a snapshot round-trips to the same
 * bytes and the same verdicts; the allocator never hands out an id twice or
 * one at or above the installed durable mark.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kafka/kerr.h"
#include "kafka/pstate.h"
#include "kernel/buf.h"
#include "kernel/crc32c.h"

#define NPID 8

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

struct prog {
	const uint8_t *p;
	size_t n, off;
};

static uint32_t take(struct prog *g, int bytes)
{
	uint32_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | (g->off < g->n ? g->p[g->off++] : 0);
	return v;
}

static void check_entry(const struct pst_entry *e)
{
	if (e->producer_id < 0 || e->nbatches < 0 || e->nbatches > PST_BATCHES)
		__builtin_trap();
	if (e->last_offset < -1 ||
	    (e->nbatches && e->last_offset < e->batch[e->nbatches - 1].last_offset) ||
	    e->txn_first_offset < -1 || e->txn_first_offset > e->last_offset)
		__builtin_trap();
	for (int k = 0; k < e->nbatches; k++) {
		const struct pst_meta *m = &e->batch[k];
		int64_t delta = m->last_offset - m->first_offset;
		if (m->first_seq < 0 || m->last_seq < 0 || m->first_offset < 0 || delta < 0 ||
		    delta >= INT32_MAX || pst_last_seq(m->first_seq, (int32_t)(delta + 1)) != m->last_seq)
			__builtin_trap();
		if (k && m->first_offset <= e->batch[k - 1].last_offset)
			__builtin_trap();
	}
}

/* The whole aborted list, by a query that takes everything. */
struct all {
	struct pst_txn *x;
	size_t n, cap;
};

static int add_txn(void *arg, const struct pst_txn *x)
{
	struct all *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		struct pst_txn *p = realloc(a->x, cap * sizeof(*p));
		if (!p)
			__builtin_trap();
		a->x = p;
		a->cap = cap;
	}
	a->x[a->n++] = *x;
	return 0;
}

/* The list in first-offset order, each well formed, as many as counted. */
static void check_aborted(const struct pst_table *t, struct all *a)
{
	a->n = 0;
	pst_aborted(t, INT64_MIN, INT64_MAX, add_txn, a);
	if (a->n != pst_aborted_count(t) || a->n > PST_MAX_ABORTED)
		__builtin_trap();
	for (size_t i = 0; i < a->n; i++)
		if (a->x[i].producer_id < 0 || a->x[i].first_offset < 0 ||
		    a->x[i].first_offset > a->x[i].last_offset ||
		    (i && a->x[i].first_offset < a->x[i - 1].first_offset))
			__builtin_trap();
}

struct walk {
	size_t n, open;
	int64_t min_open;
};

static int walk_one(void *arg, const struct pst_entry *e)
{
	struct walk *w = arg;

	check_entry(e);
	w->n++;
	if (e->txn_first_offset >= 0) {
		w->open++;
		if (e->txn_first_offset < w->min_open)
			w->min_open = e->txn_first_offset;
	}
	return 0;
}

/* Every entry through pst_foreach: invariants, the count, the first unstable offset. */
static struct walk check_walk(const struct pst_table *t)
{
	struct walk w = { 0, 0, INT64_MAX };

	pst_foreach(t, walk_one, &w);
	if (w.n != pst_count(t) || w.min_open != pst_first_unstable(t))
		__builtin_trap();
	return w;
}

static void check_table(const struct pst_table *t)
{
	size_t found = 0;
	struct all a = { NULL, 0, 0 };

	for (int64_t pid = -1; pid < NPID; pid++) {
		const struct pst_entry *e = pst_find(t, pid);
		if (e) {
			if (e->producer_id != pid)
				__builtin_trap();
			check_entry(e);
			found++;
		}
	}
	if (found != pst_count(t))
		__builtin_trap();
	check_walk(t);
	check_aborted(t, &a);
	free(a.x);
}

/* Encode, decode, encode: the same bytes.  Returns the decoded table. */
static struct pst_table *roundtrip(const struct pst_table *t)
{
	struct sl_wr w1, w2;
	struct sl_rd r;
	struct pst_table *u = NULL;

	wr_init(&w1, 0);
	wr_init(&w2, 0);
	if (pst_encode(t, &w1) != 0)
		goto out;	/* out of memory only */
	rd_init(&r, w1.p, w1.len);
	if (pst_decode(&r, &u) != 0 || rd_left(&r) != 0 || pst_count(u) != pst_count(t))
		__builtin_trap();
	if (pst_encode(u, &w2) != 0 || w1.len != w2.len || memcmp(w1.p, w2.p, w1.len) != 0)
		__builtin_trap();
	/* Every cut below an end decodes (the manifest's partition state). */
	for (int64_t end = 0; end < 64; end += 7) {
		struct pst_table *b = NULL;
		wr_free(&w2);
		wr_init(&w2, 0);
		if (pst_encode_below(t, end, &w2) != 0)
			continue;
		rd_init(&r, w2.p, w2.len);
		if (pst_decode(&r, &b) != 0 || rd_left(&r) != 0 || pst_count(b) > pst_count(t))
			__builtin_trap();
		pst_table_free(b);
	}
out:
	wr_free(&w1);
	wr_free(&w2);
	return u;
}

static void fuzz_snapshot(const uint8_t *d, size_t n, int fixcrc)
{
	struct pst_table *t = NULL, *u;
	struct sl_rd r;
	uint8_t *c = NULL;
	size_t save_off;

	if (fixcrc && n >= 9) {
		/* Make the length field and the CRC agree with the bytes given. */
		c = malloc(n);
		if (!c)
			return;
		memcpy(c, d, n);
		sl_store_be32(c + 1, (uint32_t)(n - 9));
		sl_store_be32(c + n - 4, crc32c(0, c, n - 4));
		d = c;
	}
	rd_init(&r, d, n);
	save_off = r.off;
	if (pst_decode(&r, &t) != 0) {
		if (t || r.off != save_off)
			__builtin_trap();
	} else {
		struct walk w = check_walk(t);
		struct all a = { NULL, 0, 0 };
		check_aborted(t, &a);
		u = roundtrip(t);
		pst_table_free(u);
		/* The table works after decoding: expire and truncate anything. */
		pst_expire(t, INT64_MAX, 0);
		if (pst_count(t) != w.open)
			__builtin_trap();
		pst_truncate_head(t, INT64_MAX);
		if (pst_count(t) != w.open || check_walk(t).open != w.open)
			__builtin_trap();
		check_aborted(t, &a);
		for (size_t i = 0; i < a.n; i++)
			if (a.x[i].last_offset != INT64_MAX)
				__builtin_trap();
		free(a.x);
	}
	pst_table_free(t);
	free(c);
}

/* One produce: check, and append when told to; then the promises. */
static void produce(struct pst_table *t, struct prog *g, int64_t *end, int64_t now)
{
	uint8_t pb = (uint8_t)take(g, 1), sel = (uint8_t)take(g, 1);
	int64_t pid = pb == 0xFF ? -1 : pb % NPID;
	int16_t epoch = (int16_t)((int8_t)take(g, 1) % 8);
	int32_t count = (int32_t)(take(g, 1) % 20) - 1;	/* -1..18 */
	const struct pst_entry *e = pst_find(t, pid);
	struct pst_batch b;
	struct pst_meta dup;
	int16_t err;
	int retry = 0, was_open = e && e->txn_first_offset >= 0;

	b.producer_id = pid;
	b.epoch = epoch;
	b.transactional = (sel & 0x80) != 0;
	b.count = count == 18 ? INT32_MAX - (int32_t)(take(g, 1) % 4) : count;
	switch (sel % 6) {
	case 0:		/* the next one expected */
		b.first_seq = e && e->nbatches ?
			pst_last_seq(e->batch[e->nbatches - 1].last_seq, 2) : 0;
		break;
	case 1:
		b.first_seq = 0;
		break;
	case 2:
		b.first_seq = (int32_t)take(g, 4);
		break;
	case 3:
		b.first_seq = INT32_MAX - (int32_t)(take(g, 1) % 20);
		break;
	case 4:		/* a retry of a cached batch */
		if (e && e->nbatches) {
			const struct pst_meta *m = &e->batch[take(g, 1) % e->nbatches];
			b.first_seq = m->first_seq;
			b.count = (int32_t)(m->last_offset - m->first_offset + 1);
			b.epoch = e->epoch;
			retry = 1;
		} else {
			b.first_seq = 0;
		}
		break;
	default:
		b.first_seq = (int32_t)(take(g, 1) % 40);
		break;
	}
	switch (pst_check(t, &b, &err, &dup)) {
	case PST_APPEND:
		if (err != KERR_NONE || retry)
			__builtin_trap();
		if (pid < 0 || b.count > 1000000)
			break;		/* huge batches are only checked: offsets stay small */
		if (pst_append(t, &b, *end, now, now) != 0)
			break;			/* out of memory */
		if (pst_check(t, &b, &err, &dup) != PST_DUPLICATE || dup.first_offset != *end ||
		    dup.last_offset != *end + b.count - 1 || dup.max_timestamp != now)
			__builtin_trap();
		e = pst_find(t, pid);
		if (!e || e->last_offset != *end + b.count - 1 ||
		    (b.transactional && !was_open && e->txn_first_offset != *end))
			__builtin_trap();
		*end += b.count;
		break;
	case PST_DUPLICATE:
		if (err != KERR_NONE || pid < 0 || dup.first_seq != b.first_seq ||
		    dup.last_seq != pst_last_seq(b.first_seq, b.count) ||
		    dup.last_offset - dup.first_offset != (int64_t)b.count - 1)
			__builtin_trap();
		break;
	case PST_REJECT:
		if (retry || (err != KERR_INVALID_RECORD && err != KERR_INVALID_PRODUCER_EPOCH &&
			      err != KERR_OUT_OF_ORDER_SEQUENCE_NUMBER && err != KERR_INVALID_TXN_STATE))
			__builtin_trap();
		if (err == KERR_INVALID_TXN_STATE && (!was_open || b.transactional))
			__builtin_trap();
		break;
	default:
		__builtin_trap();
	}
}

/* A marker for a producer at a new offset or at an old one; what it promises. */
static void marker(struct pst_table *t, struct prog *g, int64_t *end, int64_t now)
{
	int64_t pid = take(g, 1) % NPID;
	int16_t epoch = (int16_t)((int8_t)take(g, 1) % 8);
	uint8_t how = (uint8_t)take(g, 1);
	int commit = how & 1;
	int64_t off = (how & 2) ? *end : *end - (int64_t)(take(g, 1) % 64);
	const struct pst_entry *e = pst_find(t, pid);
	struct pst_entry before;
	struct pst_txn done = { -7, -7, -7 };
	size_t naborted = pst_aborted_count(t);
	int had = e != NULL, rc;

	if (e)
		before = *e;
	if (pst_check_marker(t, pid, epoch) !=
	    (e && epoch < e->epoch ? KERR_INVALID_PRODUCER_EPOCH : KERR_NONE))
		__builtin_trap();
	rc = pst_apply_marker(t, pid, epoch, commit, off, now, &done);
	e = pst_find(t, pid);
	if (off < 0) {
		if (rc != SL_E_INVALID)
			__builtin_trap();
		return;
	}
	if (rc < 0) {
		if (rc != SL_E_NOMEM && rc != SL_E_FULL)
			__builtin_trap();
		return;
	}
	if (had && off <= before.last_offset) {
		/* A replay: nothing moves. */
		if (rc != 0 || !e || e->epoch != before.epoch || e->nbatches != before.nbatches ||
		    e->last_offset != before.last_offset ||
		    e->txn_first_offset != before.txn_first_offset ||
		    e->last_append_ms != before.last_append_ms || pst_aborted_count(t) != naborted)
			__builtin_trap();
		return;
	}
	if (!e || e->epoch != epoch || e->txn_first_offset != -1 || e->last_offset != off ||
	    ((!had || epoch != before.epoch) && e->nbatches != 0) ||
	    (had && epoch == before.epoch && e->nbatches != before.nbatches))
		__builtin_trap();
	if (had && before.txn_first_offset >= 0) {
		if (rc != 1 || done.producer_id != pid || done.first_offset != before.txn_first_offset ||
		    done.last_offset != off || pst_aborted_count(t) != naborted + !commit)
			__builtin_trap();
	} else if (rc != 0 || done.producer_id != -7 || pst_aborted_count(t) != naborted) {
		__builtin_trap();
	}
	if (off >= *end)
		*end = off + 1;
}

/* A range query against filtering the whole list, sometimes stopped early. */
struct ranged {
	struct all got;
	size_t stop_after;
};

static int add_ranged(void *arg, const struct pst_txn *x)
{
	struct ranged *r = arg;

	add_txn(&r->got, x);
	return r->stop_after && r->got.n >= r->stop_after;
}

static void query(const struct pst_table *t, struct prog *g, int64_t end)
{
	int64_t from = end - (int64_t)take(g, 1), upto = from + (int64_t)take(g, 1) - 16;
	struct all a = { NULL, 0, 0 };
	struct ranged r = { { NULL, 0, 0 }, take(g, 1) % 4 };
	size_t k = 0;

	check_aborted(t, &a);
	pst_aborted(t, from, upto, add_ranged, &r);
	for (size_t i = 0; i < a.n; i++) {
		if (a.x[i].last_offset < from || a.x[i].first_offset >= upto)
			continue;
		if (r.stop_after && k == r.stop_after)
			break;
		if (k >= r.got.n || memcmp(&a.x[i], &r.got.x[k], sizeof(a.x[i])) != 0)
			__builtin_trap();
		k++;
	}
	if (k != r.got.n)
		__builtin_trap();
	free(a.x);
	free(r.got.x);
}

/* The producers with an open transaction survive expiry and truncation unchanged. */
static size_t open_txns(const struct pst_table *t, int64_t *first)
{
	size_t n = 0;

	for (int64_t pid = 0; pid < NPID; pid++) {
		const struct pst_entry *e = pst_find(t, pid);
		first[pid] = e ? e->txn_first_offset : -1;
		n += first[pid] >= 0;
	}
	return n;
}

static void same_open(const struct pst_table *t, const int64_t *first)
{
	for (int64_t pid = 0; pid < NPID; pid++)
		if (first[pid] >= 0 &&
		    (!pst_find(t, pid) || pst_find(t, pid)->txn_first_offset != first[pid]))
			__builtin_trap();
}

static int stop_at(void *arg, const struct pst_entry *e)
{
	(void)e;
	return --*(size_t *)arg == 0;
}

static void fuzz_program(const uint8_t *d, size_t n)
{
	struct prog g = { d, n, 0 };
	struct pst_table *t = pst_table_new(), *u;
	struct pst_alloc a;
	int64_t end = 0, now = 1000, last_id = -1, mark;
	int steps = 0;

	if (!t || pst_alloc_init(&a, 0, 1 + (int64_t)(take(&g, 1) % 5)) != 0)
		__builtin_trap();
	while (g.off < g.n && steps++ < 4096) {
		uint8_t op = (uint8_t)take(&g, 1);
		int64_t first[NPID];
		switch (op % 13) {
		case 0: case 1: case 2:
			produce(t, &g, &end, now);
			break;
		case 3: {	/* a replayed batch at any offset (below: nothing) */
			uint32_t pb = take(&g, 1);
			struct pst_batch b = { pb % NPID, (int16_t)(take(&g, 1) % 4),
					       (int32_t)(take(&g, 1) % 50), (int32_t)(take(&g, 1) % 9),
					       (pb & 0x80) != 0 };
			int64_t off = end - (int64_t)(take(&g, 1) % 64);
			if (pst_append(t, &b, off, 0, now) == 0 && off >= 0 && b.count > 0 &&
			    off + b.count > end)
				end = off + b.count;
			break;
		}
		case 4:		/* time moves, mostly forward */
			now += (int64_t)take(&g, 2) - 4096;
			break;
		case 5:
			open_txns(t, first);
			pst_expire(t, now, (int64_t)take(&g, 2) - 16);
			same_open(t, first);
			break;
		case 6: {
			int64_t log_start = end - (int64_t)(take(&g, 1) % 64);
			struct all a = { NULL, 0, 0 };
			open_txns(t, first);
			pst_truncate_head(t, log_start);
			same_open(t, first);
			check_aborted(t, &a);
			for (size_t i = 0; i < a.n; i++)
				if (a.x[i].last_offset < log_start)
					__builtin_trap();
			free(a.x);
			break;
		}
		case 7:
			if (take(&g, 1) & 1) {
				pst_remove(t, take(&g, 1) % NPID);
			} else {
				u = roundtrip(t);
				if (u) {
					pst_table_free(t);
					t = u;
				}
			}
			break;
		case 9: case 10:
			marker(t, &g, &end, now);
			break;
		case 11:
			query(t, &g, end);
			break;
		case 12: {	/* listing, stopped after k */
			size_t k = 1 + take(&g, 1) % 4, left = k;
			pst_foreach(t, stop_at, &left);
			if (left != (pst_count(t) >= k ? 0 : k - pst_count(t)))
				__builtin_trap();
			break;
		}
		case 8: {	/* producer ids */
			int64_t id;
			int rc = pst_alloc_next(&a, &id);
			if (rc == 0) {
				if (id <= last_id || id >= a.limit)
					__builtin_trap();
				last_id = id;
			} else if (rc != SL_E_AGAIN || a.next < a.limit) {
				__builtin_trap();
			} else if (pst_alloc_reserve(&a, &mark) == 0) {
				if (mark <= a.limit)
					__builtin_trap();
				pst_alloc_install(&a, (take(&g, 1) & 1) ? mark : a.limit);
			}
			break;
		}
		}
		check_table(t);
	}
	u = roundtrip(t);
	pst_table_free(u);
	pst_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n == 0)
		return 0;
	if (d[0] & 1)
		fuzz_snapshot(d + 1, n - 1, d[0] & 2);
	else
		fuzz_program(d + 1, n - 1);
	return 0;
}
