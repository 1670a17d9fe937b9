/*
 * stream.c - in-memory streams behind the asynchronous append interface.
 *
 * A store maps stream ids to streams through a chained hash table.  Each
 * stream keeps its batches in one growable array of entries ordered by base
 * offset; entries [first, n) are live, those below first have been released
 * by stream_set_start() and the array is compacted when the dead prefix
 * grows past half.
 *
 * Invariants (checked with SL_ASSERT where a violation would corrupt data):
 *   1. entries are dense: e[i+1].base == e[i].base + e[i].count;
 *   2. start <= hw <= next, and next == last entry's base + count;
 *   3. hw only moves forward, and only over entries whose append completed;
 *   4. ops complete in append order, store-wide (one FIFO).
 *
 * "Durable" here is "copied into memory"; the completion is still delivered
 * from a deferred loop task so callers are exercised on the asynchronous path
 * the WAL will take.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "stream.h"

#define SEG_FIRST ((size_t)64 << 10)
#define SEG_MAX ((size_t)8 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

/*
 * Batches are packed into segments: few allocations, and from 2 MiB up the
 * segment is its own mapping advised to use huge pages, so storing a byte
 * costs a page fault per 2 MiB rather than per 4 KiB.  A segment is freed
 * when the start offset has passed every batch in it.
 */
struct seg {
	uint8_t *mem;
	size_t cap, used;
	uint32_t live;		/* entries still pointing here */
	int mapped;		/* mmap (1) or malloc (0) */
	struct seg *next;	/* newer */
};

struct entry {
	int64_t base;
	int64_t max_ts;
	uint32_t count;
	uint32_t len;
	uint8_t *data;
	struct seg *seg;
};

struct stream {
	struct stream_id id;
	struct store *st;
	struct stream *hnext;		/* hash chain */
	struct entry *e;
	size_t first, n, cap;
	int64_t start, hw, next;
	struct seg *seg_old, *seg_new;	/* oldest and newest segment */
	size_t seg_size;		/* size of the next segment */
	struct stream_waiter waiters;	/* list head (circular) */
};

struct store {
	struct loop *l;
	struct stream **buckets;
	size_t nbuckets, nstreams;
	size_t bytes;
	struct stream_op *pend_head, *pend_tail;
	struct loop_task complete;
};

static uint64_t id_hash(const struct stream_id *id)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	for (int i = 0; i < 16; i++)
		h = (h ^ id->ns[i]) * 1099511628211ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)(id->index >> (8 * i))) * 1099511628211ULL;
	return h;
}

static void complete_pending(struct loop *l, void *arg);

struct store *store_new(struct loop *l)
{
	struct store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->l = l;
	st->nbuckets = 256;
	st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
	if (!st->buckets) {
		free(st);
		return NULL;
	}
	loop_task_init(&st->complete, complete_pending, st);
	return st;
}

static void seg_release(struct seg *g)
{
	if (g->mapped)
		munmap(g->mem, g->cap);
	else
		free(g->mem);
	free(g);
}

/* A new segment of at least need bytes, appended as the newest; NULL if out of memory. */
static struct seg *seg_add(struct stream *s, size_t need)
{
	size_t cap = s->seg_size ? s->seg_size : SEG_FIRST;
	struct seg *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	while (cap < need)
		cap *= 2;
	if (cap >= HUGE_PAGE) {
		cap = (cap + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
		/* Over-map by one huge page and trim, so the segment is 2 MiB aligned. */
		uint8_t *raw = mmap(NULL, cap + HUGE_PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (raw != MAP_FAILED) {
			uintptr_t a = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
			size_t head = a - (uintptr_t)raw;
			if (head)
				munmap(raw, head);
			munmap((uint8_t *)a + cap, HUGE_PAGE - head);
			g->mem = (uint8_t *)a;
			g->mapped = 1;
			(void)madvise(g->mem, cap, MADV_HUGEPAGE);	/* a hint; fine if refused */
		}
	} else {
		g->mem = malloc(cap);
	}
	if (!g->mem) {
		free(g);
		return NULL;
	}
	g->cap = cap;
	if (s->seg_new)
		s->seg_new->next = g;
	else
		s->seg_old = g;
	s->seg_new = g;
	if (s->seg_size < SEG_MAX)
		s->seg_size = cap < SEG_MAX ? cap * 2 : SEG_MAX;
	return g;
}

/* Free segments from the oldest while no entry points into them. */
static void seg_trim(struct stream *s)
{
	while (s->seg_old && s->seg_old->live == 0 && s->seg_old != s->seg_new) {
		struct seg *g = s->seg_old;
		s->seg_old = g->next;
		seg_release(g);
	}
}

static void stream_free(struct stream *s)
{
	struct seg *g = s->seg_old, *nx;

	for (; g; g = nx) {
		nx = g->next;
		seg_release(g);
	}
	free(s->e);
	free(s);
}

static void wake_all(struct stream *s)
{
	struct stream_waiter local, *w;
	struct loop *l = s->st->l;

	/*
	 * Move the waiters to a local list first: a callback may re-arm on this
	 * stream (it then waits for the next change, not this one) or unwait
	 * other waiters of its own, which unlinks them from the local list.
	 */
	if (s->waiters.next == &s->waiters)
		return;
	local.next = s->waiters.next;
	local.prev = s->waiters.prev;
	local.next->prev = &local;
	local.prev->next = &local;
	s->waiters.next = s->waiters.prev = &s->waiters;
	while ((w = local.next) != &local) {
		stream_unwait(w);
		w->fn(l, w->arg);
	}
}

static void complete_pending(struct loop *l, void *arg)
{
	struct store *st = arg;
	struct stream_op *op;

	while ((op = st->pend_head) != NULL) {
		st->pend_head = op->next;
		if (!st->pend_head)
			st->pend_tail = NULL;
		op->next = NULL;
		struct stream *s = op->s;
		if (s) {
			SL_ASSERT(op->end > s->hw);
			s->hw = op->end;
		}
		op->fn(op->arg, op->err, op->err ? -1 : op->base);
		if (s)
			wake_all(s);
	}
}

void store_destroy(struct store *st)
{
	if (!st)
		return;
	for (struct stream_op *op = st->pend_head; op; op = op->next) {
		op->s = NULL;
		op->err = SL_E_CLOSED;
	}
	complete_pending(st->l, st);
	loop_task_cancel(st->l, &st->complete);
	for (size_t b = 0; b < st->nbuckets; b++) {
		struct stream *s = st->buckets[b], *nx;
		for (; s; s = nx) {
			nx = s->hnext;
			wake_all(s);
			stream_free(s);
		}
	}
	free(st->buckets);
	free(st);
}

static int grow_buckets(struct store *st)
{
	size_t nb = st->nbuckets * 2;
	struct stream **b = calloc(nb, sizeof(*b));

	if (!b)
		return SL_E_NOMEM;
	for (size_t i = 0; i < st->nbuckets; i++) {
		struct stream *s = st->buckets[i], *nx;
		for (; s; s = nx) {
			nx = s->hnext;
			size_t h = id_hash(&s->id) & (nb - 1);
			s->hnext = b[h];
			b[h] = s;
		}
	}
	free(st->buckets);
	st->buckets = b;
	st->nbuckets = nb;
	return 0;
}

struct stream *store_stream(struct store *st, const struct stream_id *id, int create)
{
	size_t h = id_hash(id) & (st->nbuckets - 1);

	for (struct stream *s = st->buckets[h]; s; s = s->hnext)
		if (memcmp(s->id.ns, id->ns, 16) == 0 && s->id.index == id->index)
			return s;
	if (!create)
		return NULL;
	if (st->nstreams >= st->nbuckets && grow_buckets(st) == 0)
		h = id_hash(id) & (st->nbuckets - 1);
	struct stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = *id;
	s->st = st;
	s->waiters.next = s->waiters.prev = &s->waiters;
	s->hnext = st->buckets[h];
	st->buckets[h] = s;
	st->nstreams++;
	return s;
}

void stream_delete(struct stream *s)
{
	struct store *st = s->st;
	struct stream **pp = &st->buckets[id_hash(&s->id) & (st->nbuckets - 1)];

	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	st->nstreams--;
	for (struct stream_op *op = st->pend_head; op; op = op->next) {
		if (op->s == s) {
			op->s = NULL;
			op->err = SL_E_CLOSED;
		}
	}
	for (size_t i = s->first; i < s->n; i++)
		st->bytes -= s->e[i].len;
	wake_all(s);
	stream_free(s);
}

int64_t stream_start(const struct stream *s) { return s->start; }
int64_t stream_hw(const struct stream *s) { return s->hw; }
int64_t stream_next(const struct stream *s) { return s->next; }

int64_t stream_append(struct stream *s, const uint8_t *batch, size_t len,
		      uint32_t count, int64_t max_ts, struct stream_op *op)
{
	struct store *st = s->st;

	if (count == 0 || len == 0 || len > UINT32_MAX)
		return SL_E_INVALID;
	if (s->n == s->cap) {
		if (s->first > s->n / 2) {
			memmove(s->e, s->e + s->first, (s->n - s->first) * sizeof(*s->e));
			s->n -= s->first;
			s->first = 0;
		} else {
			size_t nc = s->cap ? s->cap * 2 : 16;
			struct entry *ne = realloc(s->e, nc * sizeof(*ne));
			if (!ne)
				return SL_E_NOMEM;
			s->e = ne;
			s->cap = nc;
		}
	}
	struct seg *g = s->seg_new;
	if (!g || g->cap - g->used < len) {
		g = seg_add(s, len);
		if (!g)
			return SL_E_NOMEM;
	}
	uint8_t *copy = g->mem + g->used;
	memcpy(copy, batch, len);
	g->used += len;
	g->live++;
	struct entry *e = &s->e[s->n++];
	e->base = s->next;
	e->count = count;
	e->max_ts = max_ts;
	e->len = (uint32_t)len;
	e->data = copy;
	e->seg = g;
	s->next += count;
	st->bytes += len;

	op->s = s;
	op->base = e->base;
	op->end = s->next;
	op->err = 0;
	op->next = NULL;
	if (st->pend_tail)
		st->pend_tail->next = op;
	else
		st->pend_head = op;
	st->pend_tail = op;
	loop_defer(st->l, &st->complete);
	return e->base;
}

/* Index of the live entry containing offset; offset must be in [start, next). */
static size_t find_entry(const struct stream *s, int64_t offset)
{
	size_t lo = s->first, hi = s->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->e[mid].base <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int stream_read(struct stream *s, int64_t offset, size_t max_bytes, int min_one,
		struct span *spans, int maxspans, size_t *total)
{
	int n = 0;

	*total = 0;
	if (offset < s->start || offset > s->hw)
		return SL_E_NOTFOUND;
	if (offset == s->hw || s->first == s->n)
		return 0;
	for (size_t i = find_entry(s, offset); i < s->n && n < maxspans; i++) {
		const struct entry *e = &s->e[i];
		if (e->base >= s->hw)
			break;
		if (*total + e->len > max_bytes && !(n == 0 && min_one))
			break;
		spans[n].p = e->data;
		spans[n].len = e->len;
		*total += e->len;
		n++;
	}
	return n;
}

int stream_find_time(struct stream *s, int64_t ts, struct span *batch,
		     int64_t *base, uint32_t *count)
{
	for (size_t i = s->first; i < s->n && s->e[i].base < s->hw; i++) {
		const struct entry *e = &s->e[i];
		if (e->base + e->count <= s->start)
			continue;
		if (e->max_ts >= ts) {
			batch->p = e->data;
			batch->len = e->len;
			*base = e->base;
			*count = e->count;
			return 0;
		}
	}
	return SL_E_NOTFOUND;
}

int64_t stream_max_time(struct stream *s, int64_t *base)
{
	int64_t best = -1;

	*base = -1;
	for (size_t i = s->first; i < s->n && s->e[i].base < s->hw; i++) {
		if (s->e[i].max_ts > best) {
			best = s->e[i].max_ts;
			*base = s->e[i].base;
		}
	}
	return best;
}

int stream_set_start(struct stream *s, int64_t start)
{
	if (start < s->start || start > s->hw)
		return SL_E_INVALID;
	s->start = start;
	while (s->first < s->n && s->e[s->first].base + s->e[s->first].count <= start) {
		struct entry *e = &s->e[s->first];
		s->st->bytes -= e->len;
		e->seg->live--;
		e->data = NULL;
		s->first++;
	}
	seg_trim(s);
	return 0;
}

void stream_wait(struct stream *s, struct stream_waiter *w)
{
	if (w->s)
		stream_unwait(w);
	w->s = s;
	w->prev = s->waiters.prev;
	w->next = &s->waiters;
	s->waiters.prev->next = w;
	s->waiters.prev = w;
}

void stream_unwait(struct stream_waiter *w)
{
	if (!w->s)
		return;
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->s = NULL;
}

size_t store_bytes(const struct store *st)
{
	return st->bytes;
}
