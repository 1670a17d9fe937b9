/*
 * pstate.c - idempotent producers' state and the producer id allocator.  The
 * contract, the rules of pst_check and the entry's state diagram are in
 * pstate.h; this comment holds what the code keeps true between calls.
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
 *      new epoch empties the cache before its batch is pushed).
 * pst_decode checks 2 and 3 on the bytes it reads, so a table decoded from
 * a bad snapshot cannot break them either.
 *
 * Costs: check and append are a hash lookup plus up to five comparisons and
 * allocate only for a producer new to the partition (and when the bucket
 * array doubles); expiry and head truncation scan the table, which Kafka
 * also does, every producer.id.expiration.check.interval.ms.
 */
#include <stdlib.h>
#include <string.h>
#include "pstate.h"
#include "kerr.h"
#include "../kernel/crc32c.h"
#include "../kernel/err.h"

#define SNAP_VERSION 1
/* Encoded sizes: an entry without batches, and one batch. */
#define ENTRY_BYTES (8 + 2 + 8 + 1)
#define META_BYTES (4 + 4 + 8 + 8 + 8)
#define MIN_BUCKETS 16

struct pst_table {
	struct pst_entry **tab;
	size_t size;		/* buckets, a power of two */
	size_t n;		/* entries */
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
				free(e);
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
	if (epoch == -1)
		return PST_APPEND;
	if (b->epoch != epoch) {
		if (b->first_seq != 0) {
			*err = KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
			return PST_REJECT;
		}
		return PST_APPEND;
	}
	/* With no batch cached (only after a snapshot said so) -1 + 1 = 0 is expected. */
	if (!in_sequence(e->nbatches ? e->batch[e->nbatches - 1].last_seq : -1, b->first_seq)) {
		*err = KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
		return PST_REJECT;
	}
	return PST_APPEND;
}

int pst_append(struct pst_table *t, const struct pst_batch *b, int64_t first_offset,
	       int64_t max_timestamp, int64_t now)
{
	struct pst_entry *e;
	struct pst_meta *m;

	if (b->producer_id < 0)
		return 0;
	if (b->first_seq < 0 || b->count < 1 || first_offset < 0 ||
	    first_offset > INT64_MAX - (b->count - 1))
		return SL_E_INVALID;
	e = (struct pst_entry *)pst_find(t, b->producer_id);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return SL_E_NOMEM;
		e->producer_id = b->producer_id;
		e->epoch = b->epoch;
		e->last_append_ms = now;
		insert(t, e);
	} else if (e->nbatches && first_offset <= e->batch[e->nbatches - 1].last_offset) {
		return 0;	/* replayed over a snapshot that holds it */
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
	if (now > e->last_append_ms)
		e->last_append_ms = now;
	return 0;
}

void pst_remove(struct pst_table *t, int64_t producer_id)
{
	struct pst_entry **pp = &t->tab[hash_pid(producer_id, t->size)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->producer_id == producer_id) {
			struct pst_entry *e = *pp;
			*pp = e->next;
			free(e);
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
	return x->now >= e->last_append_ms &&
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
	/* An entry without batches has nothing in the log to keep it. */
	return !e->nbatches || e->batch[e->nbatches - 1].last_offset < *(const int64_t *)arg;
}

size_t pst_truncate_head(struct pst_table *t, int64_t log_start)
{
	return remove_if(t, is_below, &log_start);
}

/* ---- snapshots ---- */

static int cmp_entry(const void *a, const void *b)
{
	int64_t x = (*(const struct pst_entry *const *)a)->producer_id;
	int64_t y = (*(const struct pst_entry *const *)b)->producer_id;

	return (x > y) - (x < y);
}

int pst_encode(const struct pst_table *t, struct sl_wr *w)
{
	const struct pst_entry **v = NULL;
	size_t start = w->len, at, n = 0;
	int rc;

	if (t->n) {
		v = malloc(t->n * sizeof(*v));
		if (!v)
			return SL_E_NOMEM;
		for (size_t i = 0; i < t->size; i++)
			for (const struct pst_entry *e = t->tab[i]; e; e = e->next)
				v[n++] = e;
		qsort(v, n, sizeof(*v), cmp_entry);
	}
	wr_u8(w, SNAP_VERSION);
	wr_reserve(w, 4, &at);
	wr_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct pst_entry *e = v[i];
		wr_i64(w, e->producer_id);
		wr_i16(w, e->epoch);
		wr_i64(w, e->last_append_ms);
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
	if (w->err)
		return w->err;
	if (w->len - at - 4 > UINT32_MAX)
		return SL_E_TOOBIG;
	wr_patch_u32(w, at, (uint32_t)(w->len - at - 4));
	rc = wr_u32(w, crc32c(0, w->p + start, w->len - start));
	return rc;
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
		    rd_i64(r, &e->last_append_ms) || rd_u8(r, &nb)) {
			free(e);
			return SL_E_INVALID;
		}
		rc = e->producer_id <= prev_pid || nb > PST_BATCHES ? SL_E_INVALID : 0;
		for (int k = 0; !rc && k < nb; k++)
			rc = read_meta(r, &e->batch[k], k ? &e->batch[k - 1] : NULL);
		if (rc) {
			free(e);
			return rc == SL_E_SHORT ? SL_E_INVALID : rc;
		}
		e->nbatches = nb;
		prev_pid = e->producer_id;
		insert(t, e);
	}
	return rd_left(r) ? SL_E_INVALID : 0;
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
	if ((rc = read_entries(&body, t)) != 0)
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
