/*
 * pstate.c - idempotent and transactional producers' state and the producer
 * id allocator.  The contract, the rules of pst_check and the state diagrams
 * are in pstate.h; this comment holds what the code keeps true between calls.
 *
 * Invariants of a table:
 *   1. t->size is a power of two; each entry is on the chain of bucket
 *      hash(producer_id) & (size - 1), and t->n counts the entries.
 *   2. producer ids are unique and >= 0 (batches with pid < 0 keep nothing).
 *   3. 0 <= e->nbatches <= PST_BATCHES; e->batch[0] is the oldest.  Each
 *      cached batch has first_seq, last_seq >= 0, first_offset >= 0, and
 *      last_seq = first_seq + (last_offset - first_offset) mod 2^31; the
 *      offsets of successive batches increase (last < next first).
 *   4. every cached batch was appended with the entry's current epoch (a
 *      new epoch, from a batch or a marker, empties the cache).
 *   5. e->last_offset >= -1 and >= the newest cached batch's last offset.
 *   6. e->txn_first_offset is -1 or in 0 .. e->last_offset.  The entries
 *      with an ongoing transaction (txn_first_offset >= 0) are exactly
 *      t->heap[0 .. nheap), each at t->heap[e->heap_at], a binary min-heap
 *      on (txn_first_offset, producer_id); so heap[0] holds the first
 *      unstable offset.
 *   7. the aborted list is t->ab[ab_lo .. ab_end), at most PST_MAX_ABORTED
 *      long: producer id >= 0, 0 <= first_offset <= last_offset, first
 *      offsets not decreasing; ab[i].max_last is the largest last_offset of
 *      ab[ab_lo .. i], so it does not decrease either.
 * pst_decode checks 2, 3, 5, 6 and 7 on the bytes it reads, so a table
 * decoded from a bad snapshot cannot break them either.
 *
 * Why the aborted list is kept in first-offset order and not in marker
 * order: a fetch must list the transactions in first-offset order, and
 * transactions interleave (A opens at 10, B at 12, B aborts at 20, A at 25),
 * so marker order would need a sort per fetch.  In first-offset order the
 * transactions with first < upto are a prefix, and the running maximum of
 * last offsets is sorted, so the ones wholly below `from` are a prefix too:
 * both ends by binary search, and the walk between them yields the answer
 * in order, skipping only transactions that started after the oldest one
 * still open at `from` and ended before it.  A new abort goes after every
 * transaction that started before it: at the end, unless others opened
 * after it and were aborted first (a memmove of those few).  Head truncation
 * drops the transactions with last < log_start, all among those with first <
 * log_start: it compacts that prefix towards its end and moves ab_lo up, so
 * the rest is not moved; no running maximum changes, since everything
 * dropped ends below log_start and everything kept at or above it.
 *
 * Costs: check and append are a hash lookup plus up to five comparisons and
 * allocate only for a producer new to the partition (and when the bucket
 * array or the heap doubles); a transaction's start and end are O(log n) in
 * the open transactions; pst_first_unstable is O(1); expiry and head
 * truncation scan the table, which Kafka also does, every
 * producer.id.expiration.check.interval.ms.
 */
#include <stdlib.h>
#include <string.h>
#include "pstate.h"
#include "kerr.h"
#include "../kernel/crc32c.h"
#include "../kernel/err.h"

#define SNAP_VERSION 1
/* Encoded sizes: an entry without batches, one batch, one aborted transaction. */
#define ENTRY_BYTES (8 + 2 + 8 + 8 + 8 + 1)
#define META_BYTES (4 + 4 + 8 + 8 + 8)
#define TXN_BYTES (8 + 8 + 8)
#define MIN_BUCKETS 16
#define MIN_ARRAY 16

struct aborted {
	struct pst_txn x;
	int64_t max_last;	/* the largest x.last_offset from ab_lo up to here */
};

struct pst_table {
	struct pst_entry **tab;
	size_t size;		/* buckets, a power of two */
	size_t n;		/* entries */
	struct pst_entry **heap;	/* ongoing transactions (invariant 6) */
	size_t nheap, heap_cap;
	struct aborted *ab;	/* aborted transactions (invariant 7) */
	size_t ab_lo, ab_end, ab_cap;
};

static size_t hash_pid(int64_t pid, size_t size)
{
	/* Fibonacci hashing: ids are handed out consecutively. */
	uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 32) & (size - 1);
}

struct pst_table *pst_table_new(void)
{
	struct pst_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->tab = calloc(MIN_BUCKETS, sizeof(*t->tab));
	if (!t->tab) {
		free(t);
		return NULL;
	}
	t->size = MIN_BUCKETS;
	return t;
}

void pst_table_free(struct pst_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->size; i++) {
		struct pst_entry *e = t->tab[i];
		while (e) {
			struct pst_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(t->tab);
	free(t->heap);
	free(t->ab);
	free(t);
}

size_t pst_count(const struct pst_table *t)
{
	return t->n;
}

const struct pst_entry *pst_find(const struct pst_table *t, int64_t producer_id)
{
	for (struct pst_entry *e = t->tab[hash_pid(producer_id, t->size)]; e; e = e->next)
		if (e->producer_id == producer_id)
			return e;
	return NULL;
}

/* Double the buckets; without memory the old array stays (longer chains). */
static void grow(struct pst_table *t)
{
	size_t n = t->size * 2;
	struct pst_entry **tab;

	if (n > SIZE_MAX / sizeof(*tab))
		return;
	tab = calloc(n, sizeof(*tab));
	if (!tab)
		return;
	for (size_t i = 0; i < t->size; i++) {
		struct pst_entry *e = t->tab[i];
		while (e) {
			struct pst_entry *next = e->next;
			size_t b = hash_pid(e->producer_id, n);
			e->next = tab[b];
			tab[b] = e;
			e = next;
		}
	}
	free(t->tab);
	t->tab = tab;
	t->size = n;
}

/* A new entry for producer_id, not yet in the table; NULL without memory. */
static struct pst_entry *new_entry(int64_t producer_id, int16_t epoch, int64_t now)
{
	struct pst_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->producer_id = producer_id;
	e->epoch = epoch;
	e->last_append_ms = now;
	e->last_offset = -1;
	e->txn_first_offset = -1;
	return e;
}

/* ---- the ongoing transactions' heap ---- */

static int heap_less(const struct pst_entry *a, const struct pst_entry *b)
{
	return a->txn_first_offset < b->txn_first_offset ||
	       (a->txn_first_offset == b->txn_first_offset && a->producer_id < b->producer_id);
}

static void heap_put(struct pst_table *t, size_t i, struct pst_entry *e)
{
	t->heap[i] = e;
	e->heap_at = i;
}

static void sift_up(struct pst_table *t, size_t i)
{
	struct pst_entry *e = t->heap[i];

	while (i > 0 && heap_less(e, t->heap[(i - 1) / 2])) {
		heap_put(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_put(t, i, e);
}

static void sift_down(struct pst_table *t, size_t i)
{
	struct pst_entry *e = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->nheap)
			break;
		if (c + 1 < t->nheap && heap_less(t->heap[c + 1], t->heap[c]))
			c++;
		if (!heap_less(t->heap[c], e))
			break;
		heap_put(t, i, t->heap[c]);
		i = c;
	}
	heap_put(t, i, e);
}

/* Room for one more ongoing transaction: 0 or SL_E_NOMEM (nothing changed). */
static int heap_reserve(struct pst_table *t)
{
	struct pst_entry **h;
	size_t cap;

	if (t->nheap < t->heap_cap)
		return 0;
	cap = t->heap_cap ? t->heap_cap * 2 : MIN_ARRAY;
	if (cap > SIZE_MAX / sizeof(*h))
		return SL_E_NOMEM;
	h = realloc(t->heap, cap * sizeof(*h));
	if (!h)
		return SL_E_NOMEM;
	t->heap = h;
	t->heap_cap = cap;
	return 0;
}

/* e opened a transaction (txn_first_offset set); room was reserved. */
static void heap_push(struct pst_table *t, struct pst_entry *e)
{
	heap_put(t, t->nheap++, e);
	sift_up(t, e->heap_at);
}

/* e's transaction ended (or e goes): out of the heap. */
static void heap_del(struct pst_table *t, struct pst_entry *e)
{
	size_t i = e->heap_at;
	struct pst_entry *last = t->heap[--t->nheap];

	if (last != e) {
		heap_put(t, i, last);
		sift_up(t, i);
		sift_down(t, last->heap_at);
	}
}

/* Free an entry already unlinked from its chain. */
static void drop_entry(struct pst_table *t, struct pst_entry *e)
{
	if (e->txn_first_offset >= 0)
		heap_del(t, e);
	free(e);
}

/* ---- the aborted list ---- */

/*
 * Room for one more aborted transaction at ab_end: 0, SL_E_FULL (the list
 * holds PST_MAX_ABORTED) or SL_E_NOMEM; the list's contents do not change.
 */
static int ab_reserve(struct pst_table *t)
{
	size_t len = t->ab_end - t->ab_lo, cap;
	struct aborted *a;

	if (len >= PST_MAX_ABORTED)
		return SL_E_FULL;
	if (t->ab_end < t->ab_cap)
		return 0;
	if (t->ab_lo > 0 && t->ab_lo >= len) {
		/* At least half the array is free below ab_lo: slide down. */
		memmove(t->ab, t->ab + t->ab_lo, len * sizeof(*t->ab));
		t->ab_lo = 0;
		t->ab_end = len;
		return 0;
	}
	cap = t->ab_cap ? t->ab_cap * 2 : MIN_ARRAY;
	if (cap > SIZE_MAX / sizeof(*a))
		return SL_E_NOMEM;
	a = realloc(t->ab, cap * sizeof(*a));
	if (!a)
		return SL_E_NOMEM;
	t->ab = a;
	t->ab_cap = cap;
	return 0;
}

/* Running maxima of ab[i .. ab_end), from the one before i. */
static void ab_fix_max(struct pst_table *t, size_t i, size_t end)
{
	for (; i < end; i++) {
		int64_t m = t->ab[i].x.last_offset;
		if (i > t->ab_lo && t->ab[i - 1].max_last > m)
			m = t->ab[i - 1].max_last;
		t->ab[i].max_last = m;
	}
}

/* The first index in [ab_lo, ab_end) whose first offset is >= off (or > off when after). */
static size_t ab_first_at(const struct pst_table *t, int64_t off, int after)
{
	size_t lo = t->ab_lo, hi = t->ab_end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t f = t->ab[mid].x.first_offset;
		if (f < off || (after && f == off))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Add x after every transaction that started at or before it; room was reserved. */
static void ab_insert(struct pst_table *t, const struct pst_txn *x)
{
	size_t at = ab_first_at(t, x->first_offset, 1);

	memmove(t->ab + at + 1, t->ab + at, (t->ab_end - at) * sizeof(*t->ab));
	t->ab[at].x = *x;
	t->ab_end++;
	ab_fix_max(t, at, t->ab_end);
}

/* Link a new entry (its producer id set, not yet in the table). */
static void insert(struct pst_table *t, struct pst_entry *e)
{
	size_t b;

	if (t->n >= t->size)
		grow(t);
	b = hash_pid(e->producer_id, t->size);
	e->next = t->tab[b];
	t->tab[b] = e;
	t->n++;
}

/* Unlink and free every entry fn says goes; how many went. */
static size_t remove_if(struct pst_table *t, int (*fn)(const struct pst_entry *e, const void *arg),
			const void *arg)
{
	size_t gone = 0;

	for (size_t i = 0; i < t->size; i++) {
		struct pst_entry **pp = &t->tab[i];
		while (*pp) {
			struct pst_entry *e = *pp;
			if (fn(e, arg)) {
				*pp = e->next;
				drop_entry(t, e);
				gone++;
			} else {
				pp = &e->next;
			}
		}
	}
	t->n -= gone;
	return gone;
}

int32_t pst_last_seq(int32_t first_seq, int32_t count)
{
	int64_t s = (int64_t)first_seq + count - 1;

	if (s > INT32_MAX)
		s -= (int64_t)INT32_MAX + 1;
	return (int32_t)s;
}

/* Kafka's inSequence: next follows last, INT32_MAX wrapping to 0. */
static int in_sequence(int32_t last, int32_t next)
{
	return (int64_t)next == (int64_t)last + 1 || (next == 0 && last == INT32_MAX);
}

enum pst_verdict pst_check(const struct pst_table *t, const struct pst_batch *b, int16_t *err,
			   struct pst_meta *dup)
{
	const struct pst_entry *e;
	int16_t epoch;
	int32_t last;

	*err = KERR_NONE;
	if (b->producer_id < 0)
		return PST_APPEND;
	if (b->first_seq < 0 || b->count < 1) {
		*err = KERR_INVALID_RECORD;
		return PST_REJECT;
	}
	last = pst_last_seq(b->first_seq, b->count);
	e = pst_find(t, b->producer_id);
	epoch = e ? e->epoch : -1;
	if (e && b->epoch == e->epoch)
		for (int i = 0; i < e->nbatches; i++)
			if (e->batch[i].first_seq == b->first_seq && e->batch[i].last_seq == last) {
				*dup = e->batch[i];
				return PST_DUPLICATE;
			}
	if (b->epoch < epoch) {
		*err = KERR_INVALID_PRODUCER_EPOCH;
		return PST_REJECT;
	}
	if (epoch != -1) {
		/*
		 * A new epoch starts at 0.  With no batch cached (after a snapshot
		 * or a marker said so) -1 + 1 = 0 is expected.
		 */
		if (b->epoch != epoch ? b->first_seq != 0 :
		    !in_sequence(pst_entry_last_seq(e), b->first_seq)) {
			*err = KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
			return PST_REJECT;
		}
	}
	if (e && e->txn_first_offset >= 0 && !b->transactional) {
		*err = KERR_INVALID_TXN_STATE;
		return PST_REJECT;
	}
	return PST_APPEND;
}

int pst_append(struct pst_table *t, const struct pst_batch *b, int64_t first_offset,
	       int64_t max_timestamp, int64_t now)
{
	struct pst_entry *e;
	struct pst_meta *m;
	int opens;

	if (b->producer_id < 0)
		return 0;
	if (b->first_seq < 0 || b->count < 1 || first_offset < 0 ||
	    first_offset > INT64_MAX - (b->count - 1))
		return SL_E_INVALID;
	e = (struct pst_entry *)pst_find(t, b->producer_id);
	if (e && first_offset <= e->last_offset)
		return 0;	/* replayed over a snapshot that holds it */
	opens = b->transactional && (!e || e->txn_first_offset < 0);
	if (opens && heap_reserve(t) != 0)
		return SL_E_NOMEM;
	if (!e) {
		e = new_entry(b->producer_id, b->epoch, now);
		if (!e)
			return SL_E_NOMEM;
		insert(t, e);
	}
	if (b->epoch != e->epoch) {
		e->epoch = b->epoch;
		e->nbatches = 0;
	}
	if (e->nbatches == PST_BATCHES) {
		memmove(&e->batch[0], &e->batch[1], (PST_BATCHES - 1) * sizeof(e->batch[0]));
		e->nbatches--;
	}
	m = &e->batch[e->nbatches++];
	m->first_seq = b->first_seq;
	m->last_seq = pst_last_seq(b->first_seq, b->count);
	m->first_offset = first_offset;
	m->last_offset = first_offset + (b->count - 1);
	m->max_timestamp = max_timestamp;
	e->last_offset = m->last_offset;
	if (opens) {
		e->txn_first_offset = first_offset;
		heap_push(t, e);
	}
	if (now > e->last_append_ms)
		e->last_append_ms = now;
	return 0;
}

int16_t pst_check_marker(const struct pst_table *t, int64_t producer_id, int16_t epoch)
{
	const struct pst_entry *e = pst_find(t, producer_id);

	return e && epoch < e->epoch ? KERR_INVALID_PRODUCER_EPOCH : KERR_NONE;
}

int pst_apply_marker(struct pst_table *t, int64_t producer_id, int16_t epoch, int commit,
		     int64_t marker_offset, int64_t now, struct pst_txn *done)
{
	struct pst_entry *e;
	struct pst_txn x;
	int rc;

	if (producer_id < 0 || marker_offset < 0)
		return SL_E_INVALID;
	e = (struct pst_entry *)pst_find(t, producer_id);
	if (e && marker_offset <= e->last_offset)
		return 0;	/* a replay: applied already */
	if (!e) {
		e = new_entry(producer_id, epoch, now);
		if (!e)
			return SL_E_NOMEM;
		insert(t, e);
	} else if (e->txn_first_offset >= 0 && !commit && (rc = ab_reserve(t)) != 0) {
		return rc;
	}
	if (epoch != e->epoch) {
		e->epoch = epoch;
		e->nbatches = 0;
	}
	e->last_offset = marker_offset;
	if (now > e->last_append_ms)
		e->last_append_ms = now;
	if (e->txn_first_offset < 0)
		return 0;
	x.producer_id = producer_id;
	x.first_offset = e->txn_first_offset;
	x.last_offset = marker_offset;
	heap_del(t, e);
	e->txn_first_offset = -1;
	if (!commit)
		ab_insert(t, &x);
	*done = x;
	return 1;
}

int64_t pst_first_unstable(const struct pst_table *t)
{
	return t->nheap ? t->heap[0]->txn_first_offset : INT64_MAX;
}

void pst_aborted(const struct pst_table *t, int64_t from, int64_t upto,
		 int (*fn)(void *arg, const struct pst_txn *x), void *arg)
{
	size_t lo = t->ab_lo, hi = t->ab_end, end;

	/* Skip the prefix that ended wholly below from: max_last is sorted. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->ab[mid].max_last < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	end = ab_first_at(t, upto, 0);
	for (size_t i = lo; i < end; i++)
		if (t->ab[i].x.last_offset >= from && fn(arg, &t->ab[i].x))
			return;
}

size_t pst_aborted_count(const struct pst_table *t)
{
	return t->ab_end - t->ab_lo;
}

void pst_foreach(const struct pst_table *t, int (*fn)(void *arg, const struct pst_entry *e),
		 void *arg)
{
	for (size_t i = 0; i < t->size; i++)
		for (const struct pst_entry *e = t->tab[i]; e; e = e->next)
			if (fn(arg, e))
				return;
}

void pst_remove(struct pst_table *t, int64_t producer_id)
{
	struct pst_entry **pp = &t->tab[hash_pid(producer_id, t->size)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->producer_id == producer_id) {
			struct pst_entry *e = *pp;
			*pp = e->next;
			drop_entry(t, e);
			t->n--;
			return;
		}
}

struct expiry {
	int64_t now, expiration_ms;
};

static int is_idle(const struct pst_entry *e, const void *arg)
{
	const struct expiry *x = arg;

	/* now - last >= expiration, without overflow; a last append after now is not idle. */
	return e->txn_first_offset < 0 && x->now >= e->last_append_ms &&
	       (uint64_t)x->now - (uint64_t)e->last_append_ms >= (uint64_t)x->expiration_ms;
}

size_t pst_expire(struct pst_table *t, int64_t now, int64_t expiration_ms)
{
	struct expiry x = { now, expiration_ms };

	if (expiration_ms < 0)
		return 0;
	return remove_if(t, is_idle, &x);
}

static int is_below(const struct pst_entry *e, const void *arg)
{
	/* An entry that has seen nothing (last_offset -1) has nothing in the log to keep it. */
	return e->txn_first_offset < 0 && e->last_offset < *(const int64_t *)arg;
}

size_t pst_truncate_head(struct pst_table *t, int64_t log_start)
{
	/*
	 * Every aborted transaction ending below log_start also starts below it.
	 * The running maxima of those kept stay right: what goes ends below
	 * log_start, below every transaction that stays.
	 */
	size_t end = ab_first_at(t, log_start, 0), at = end;

	for (size_t i = end; i-- > t->ab_lo;)
		if (t->ab[i].x.last_offset >= log_start)
			t->ab[--at] = t->ab[i];
	t->ab_lo = at;
	if (t->ab_lo == t->ab_end)
		t->ab_lo = t->ab_end = 0;
	return remove_if(t, is_below, &log_start);
}

/* ---- snapshots ---- */

static int cmp_entry_value(const void *a, const void *b)
{
	int64_t x = ((const struct pst_entry *)a)->producer_id;
	int64_t y = ((const struct pst_entry *)b)->producer_id;

	return (x > y) - (x < y);
}

/* end for everything: offsets may reach INT64_MAX itself. */
#define ALL_OFFSETS INT64_MAX

/*
 * e as it was before any offset at or above end: its cached batches below
 * end, its transaction if it began below end, its newest offset lowered to
 * what is left.  0 when nothing of it is below end (drop it).
 */
static int entry_below(const struct pst_entry *e, int64_t end, struct pst_entry *out)
{
	*out = *e;
	if (e->last_offset < end || end == ALL_OFFSETS)
		return 1;
	out->nbatches = 0;
	out->last_offset = -1;
	for (int k = 0; k < e->nbatches; k++)
		if (e->batch[k].last_offset < end) {
			out->batch[out->nbatches++] = e->batch[k];
			out->last_offset = e->batch[k].last_offset;
		}
	if (e->txn_first_offset >= end)
		out->txn_first_offset = -1;
	if (out->txn_first_offset > out->last_offset)
		out->last_offset = out->txn_first_offset;
	return out->nbatches > 0 || out->txn_first_offset >= 0;
}

/*
 * A transaction that began below end and was aborted by a marker at or
 * above it was still open at end: open it again in v (n entries, room for
 * every producer of t), so that replaying the marker aborts it once more.
 * (A commit needs nothing: its marker, replayed, finds no open transaction
 * and changes nothing, as the live table was left.)  Returns the new n.
 */
static size_t reopen_aborted(const struct pst_table *t, int64_t end, struct pst_entry *v, size_t n)
{
	if (end == ALL_OFFSETS)
		return n;
	for (size_t i = t->ab_lo; i < t->ab_end; i++) {
		const struct pst_txn *x = &t->ab[i].x;
		if (x->last_offset < end || x->first_offset >= end)
			continue;
		struct pst_entry *e = NULL;
		for (size_t j = 0; j < n && !e; j++)
			if (v[j].producer_id == x->producer_id)
				e = &v[j];
		if (!e) {
			const struct pst_entry *live = pst_find(t, x->producer_id);
			if (!live)
				continue;	/* expired since: nothing to reopen it for */
			e = &v[n++];
			*e = *live;
			e->nbatches = 0;
			e->last_offset = -1;
		}
		e->txn_first_offset = x->first_offset;
		if (e->last_offset < x->first_offset)
			e->last_offset = x->first_offset;
	}
	return n;
}

static int encode_below(const struct pst_table *t, int64_t end, struct sl_wr *w)
{
	struct pst_entry *v = NULL;
	size_t start = w->len, at, n = 0, nab = 0;
	int rc;

	if (t->n) {
		v = malloc(t->n * sizeof(*v));
		if (!v)
			return SL_E_NOMEM;
		for (size_t i = 0; i < t->size; i++)
			for (const struct pst_entry *e = t->tab[i]; e; e = e->next)
				n += (size_t)entry_below(e, end, &v[n]);
		n = reopen_aborted(t, end, v, n);
		qsort(v, n, sizeof(*v), cmp_entry_value);
	}
	wr_u8(w, SNAP_VERSION);
	wr_reserve(w, 4, &at);
	wr_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct pst_entry *e = &v[i];
		wr_i64(w, e->producer_id);
		wr_i16(w, e->epoch);
		wr_i64(w, e->last_append_ms);
		wr_i64(w, e->last_offset);
		wr_i64(w, e->txn_first_offset);
		wr_u8(w, (uint8_t)e->nbatches);
		for (int k = 0; k < e->nbatches; k++) {
			const struct pst_meta *m = &e->batch[k];
			wr_i32(w, m->first_seq);
			wr_i32(w, m->last_seq);
			wr_i64(w, m->first_offset);
			wr_i64(w, m->last_offset);
			wr_i64(w, m->max_timestamp);
		}
	}
	free(v);
	/* Aborted transactions whose marker is below end, in first-offset order. */
	for (size_t i = t->ab_lo; i < t->ab_end; i++)
		nab += t->ab[i].x.last_offset < end || end == ALL_OFFSETS;
	wr_u32(w, (uint32_t)nab);
	for (size_t i = t->ab_lo; i < t->ab_end; i++) {
		if (t->ab[i].x.last_offset >= end && end != ALL_OFFSETS)
			continue;
		wr_i64(w, t->ab[i].x.producer_id);
		wr_i64(w, t->ab[i].x.first_offset);
		wr_i64(w, t->ab[i].x.last_offset);
	}
	if (w->err)
		return w->err;
	if (w->len - at - 4 > UINT32_MAX)
		return SL_E_TOOBIG;
	wr_patch_u32(w, at, (uint32_t)(w->len - at - 4));
	rc = wr_u32(w, crc32c(0, w->p + start, w->len - start));
	return rc;
}

int pst_encode(const struct pst_table *t, struct sl_wr *w)
{
	return encode_below(t, ALL_OFFSETS, w);
}

int pst_encode_below(const struct pst_table *t, int64_t end, struct sl_wr *w)
{
	return encode_below(t, end, w);
}

/* One cached batch from r, checked against invariant 3 and the one before it. */
static int read_meta(struct sl_rd *r, struct pst_meta *m, const struct pst_meta *prev)
{
	int64_t delta;

	if (rd_i32(r, &m->first_seq) || rd_i32(r, &m->last_seq) || rd_i64(r, &m->first_offset) ||
	    rd_i64(r, &m->last_offset) || rd_i64(r, &m->max_timestamp))
		return SL_E_SHORT;
	if (m->first_seq < 0 || m->last_seq < 0 || m->first_offset < 0 ||
	    m->last_offset < m->first_offset)
		return SL_E_INVALID;
	delta = m->last_offset - m->first_offset;	/* no overflow: both >= 0 */
	if (delta >= INT32_MAX || pst_last_seq(m->first_seq, (int32_t)(delta + 1)) != m->last_seq)
		return SL_E_INVALID;
	if (prev && m->first_offset <= prev->last_offset)
		return SL_E_INVALID;
	return 0;
}

static int read_entries(struct sl_rd *r, struct pst_table *t)
{
	uint32_t n;
	int64_t prev_pid = -1;

	if (rd_u32(r, &n))
		return SL_E_INVALID;	/* the body is too short for its count */
	if (n > PST_MAX_PRODUCERS)
		return SL_E_TOOBIG;
	if ((size_t)n > rd_left(r) / ENTRY_BYTES)
		return SL_E_INVALID;	/* the body is too short for that many */
	for (uint32_t i = 0; i < n; i++) {
		struct pst_entry *e;
		uint8_t nb;
		int rc;

		e = calloc(1, sizeof(*e));
		if (!e)
			return SL_E_NOMEM;
		if (rd_i64(r, &e->producer_id) || rd_i16(r, &e->epoch) ||
		    rd_i64(r, &e->last_append_ms) || rd_i64(r, &e->last_offset) ||
		    rd_i64(r, &e->txn_first_offset) || rd_u8(r, &nb)) {
			free(e);
			return SL_E_INVALID;
		}
		rc = e->producer_id <= prev_pid || nb > PST_BATCHES ? SL_E_INVALID : 0;
		for (int k = 0; !rc && k < nb; k++)
			rc = read_meta(r, &e->batch[k], k ? &e->batch[k - 1] : NULL);
		/* Invariants 5 and 6. */
		if (!rc && (e->last_offset < -1 ||
			    (nb && e->last_offset < e->batch[nb - 1].last_offset) ||
			    e->txn_first_offset < -1 || e->txn_first_offset > e->last_offset))
			rc = SL_E_INVALID;
		if (!rc && e->txn_first_offset >= 0)
			rc = heap_reserve(t);
		if (rc) {
			free(e);
			return rc == SL_E_SHORT ? SL_E_INVALID : rc;
		}
		e->nbatches = nb;
		prev_pid = e->producer_id;
		insert(t, e);
		if (e->txn_first_offset >= 0)
			heap_push(t, e);
	}
	return 0;
}

/* The aborted list, checked against invariant 7. */
static int read_aborted(struct sl_rd *r, struct pst_table *t)
{
	uint32_t n;

	if (rd_u32(r, &n))
		return SL_E_INVALID;	/* the body is too short for its count */
	if (n > PST_MAX_ABORTED)
		return SL_E_TOOBIG;
	if ((size_t)n != rd_left(r) / TXN_BYTES || rd_left(r) % TXN_BYTES)
		return SL_E_INVALID;	/* the body does not hold exactly that many */
	if (n == 0)
		return 0;
	t->ab = malloc((size_t)n * sizeof(*t->ab));
	if (!t->ab)
		return SL_E_NOMEM;
	t->ab_cap = n;
	for (uint32_t i = 0; i < n; i++) {
		struct pst_txn *x = &t->ab[i].x;
		if (rd_i64(r, &x->producer_id) || rd_i64(r, &x->first_offset) ||
		    rd_i64(r, &x->last_offset))
			return SL_E_INVALID;	/* cannot be: the length was checked */
		if (x->producer_id < 0 || x->first_offset < 0 || x->last_offset < x->first_offset ||
		    (i && x->first_offset < t->ab[i - 1].x.first_offset))
			return SL_E_INVALID;
		t->ab_end = i + 1;
	}
	ab_fix_max(t, 0, n);
	return 0;
}

int pst_decode(struct sl_rd *r, struct pst_table **out)
{
	struct sl_rd body, save = *r;
	struct pst_table *t = NULL;
	const uint8_t *start, *p;
	uint8_t version;
	uint32_t len, crc;
	int rc;

	*out = NULL;
	if ((rc = rd_u8(r, &version)) != 0)
		goto fail;
	start = r->p + save.off;	/* r->p is not NULL: a byte was read */
	if (version != SNAP_VERSION) {
		rc = SL_E_INVALID;
		goto fail;
	}
	if ((rc = rd_u32(r, &len)) != 0 || (rc = rd_bytes(r, len, &p)) != 0 ||
	    (rc = rd_u32(r, &crc)) != 0)
		goto fail;
	if (crc32c(0, start, 1 + 4 + (size_t)len) != crc) {
		rc = SL_E_CORRUPT;
		goto fail;
	}
	t = pst_table_new();
	if (!t) {
		rc = SL_E_NOMEM;
		goto fail;
	}
	rd_init(&body, p, len);
	if ((rc = read_entries(&body, t)) != 0 || (rc = read_aborted(&body, t)) != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	pst_table_free(t);
	*r = save;
	return rc;
}

/* ---- producer ids ---- */

int pst_alloc_init(struct pst_alloc *a, int64_t durable_mark, int64_t block)
{
	if (durable_mark < 0 || block < 1)
		return SL_E_INVALID;
	a->next = a->limit = durable_mark;
	a->block = block;
	return 0;
}

int pst_alloc_next(struct pst_alloc *a, int64_t *id)
{
	if (a->next >= a->limit)
		return SL_E_AGAIN;
	*id = a->next++;
	return 0;
}

int pst_alloc_reserve(const struct pst_alloc *a, int64_t *mark)
{
	if (a->limit > INT64_MAX - a->block)
		return SL_E_FULL;
	*mark = a->limit + a->block;
	return 0;
}

void pst_alloc_install(struct pst_alloc *a, int64_t mark)
{
	if (mark > a->limit)
		a->limit = mark;
}
