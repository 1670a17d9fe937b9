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
 * With a WAL, each append is also one WAL record, and its op completes from
 * the WAL's durability callback, which arrives in log order; the store-wide
 * FIFO of pending ops is then only checked against it.  Without a WAL,
 * "durable" is "copied into memory" and a deferred loop task completes the
 * FIFO, so callers still see the asynchronous path.
 *
 * WAL records written here (type byte, then payload; big-endian):
 *   STORE_REC_DATA  stream ns[16] | index i32 | base i64 | count u32 |
 *                   max_ts i64 | the batch bytes
 *   STORE_REC_META  opaque bytes of the layer above
 * Replay re-appends DATA records to their streams (which the META records
 * before them re-created) and hands META records to the meta handler.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "stream.h"
#include "../kernel/buf.h"
#include "../kernel/log.h"

enum { STORE_REC_DATA = 1, STORE_REC_META = 2 };
#define DATA_HDR 40

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
	uint64_t wal_pos;	/* where its WAL record starts; NO_POS without a WAL */
};

#define NO_POS UINT64_MAX

struct stream {
	struct stream_id id;
	struct store *st;
	struct stream *hnext;		/* hash chain */
	struct entry *e;
	size_t first, n, cap;
	int64_t start, hw, next;
	int64_t cut, up;		/* taken by an upload / in a committed manifest (tier.h) */
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
	struct wal *wal;
	store_meta_fn meta_fn;
	void *meta_arg;
	uint64_t replay_skipped, replay_uploaded;
	uint64_t done_pos;		/* end of the last WAL record whose op completed */
	uint64_t uncut;			/* durable batch bytes not yet taken by an upload */
	uint64_t upload_threshold;
	struct loop_task *upload_hook;
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

/* Complete the oldest pending op: move hw over it (if it succeeded), tell its owner. */
static void complete_head(struct store *st)
{
	struct stream_op *op = st->pend_head;

	st->pend_head = op->next;
	if (!st->pend_head)
		st->pend_tail = NULL;
	op->next = NULL;
	struct stream *s = op->s;
	int err = op->err;
	if (st->wal && op->wop.end > st->done_pos)
		st->done_pos = op->wop.end;
	if (s && err == 0) {
		SL_ASSERT(op->end > s->hw);
		s->hw = op->end;
		st->uncut += op->len;
		if (st->upload_hook && st->uncut >= st->upload_threshold)
			loop_defer(st->l, st->upload_hook);
	}
	/* op belongs to the caller, who may free it in the callback: nothing of it is read after. */
	op->fn(op->arg, err, err ? -1 : op->base);
	if (s && err == 0)
		wake_all(s);
}

static void complete_pending(struct loop *l, void *arg)
{
	struct store *st = arg;

	while (st->pend_head)
		complete_head(st);
}

/* The WAL made op's record durable, or failed it; callbacks arrive in log order. */
static void wal_done(void *arg, int err)
{
	struct stream_op *op = arg;
	struct store *st = op->st;

	SL_ASSERT(st->pend_head == op);
	if (err && !op->err)
		op->err = err;
	complete_head(st);
}

static void enqueue(struct store *st, struct stream_op *op)
{
	op->st = st;
	op->next = NULL;
	if (st->pend_tail)
		st->pend_tail->next = op;
	else
		st->pend_head = op;
	st->pend_tail = op;
	if (!st->wal)
		loop_defer(st->l, &st->complete);
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
			if (!op->err)
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

/* Room for one more entry and len more bytes in memory; nothing is used yet. */
static int reserve_memory(struct stream *s, size_t len)
{
	struct seg *g = s->seg_new;

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
	if (!g || g->cap - g->used < len)
		if (!seg_add(s, len))
			return SL_E_NOMEM;
	return 0;
}

/* Store a batch in memory; reserve_memory() must have succeeded just before. */
static struct entry *keep_in_memory(struct stream *s, int64_t base, const uint8_t *batch,
				    size_t len, uint32_t count, int64_t max_ts, uint64_t wal_pos)
{
	struct seg *g = s->seg_new;
	uint8_t *copy = g->mem + g->used;

	memcpy(copy, batch, len);
	g->used += len;
	g->live++;
	struct entry *e = &s->e[s->n++];
	e->base = base;
	e->count = count;
	e->max_ts = max_ts;
	e->len = (uint32_t)len;
	e->data = copy;
	e->seg = g;
	e->wal_pos = wal_pos;
	s->next = base + count;
	s->st->bytes += len;
	return e;
}

static void data_header(uint8_t h[DATA_HDR], const struct stream *s, int64_t base,
			uint32_t count, int64_t max_ts)
{
	memcpy(h, s->id.ns, 16);
	sl_store_be32(h + 16, (uint32_t)s->id.index);
	sl_store_be64(h + 20, (uint64_t)base);
	sl_store_be32(h + 28, count);
	sl_store_be64(h + 32, (uint64_t)max_ts);
}

int64_t stream_append(struct stream *s, const uint8_t *batch, size_t len,
		      uint32_t count, int64_t max_ts, struct stream_op *op)
{
	struct store *st = s->st;
	int rc;

	if (count == 0 || len == 0 || len > UINT32_MAX)
		return SL_E_INVALID;
	/*
	 * Order matters: memory is reserved first (it can fail), then the WAL
	 * record is appended (it can refuse), and only then is anything
	 * changed, so a refusal leaves the stream exactly as it was.
	 */
	rc = reserve_memory(s, len);
	if (rc != 0)
		return rc;
	if (st->wal) {
		uint8_t h[DATA_HDR];
		struct wal_span parts[2] = { { h, DATA_HDR }, { batch, len } };
		data_header(h, s, s->next, count, max_ts);
		op->wop.fn = wal_done;
		op->wop.arg = op;
		rc = wal_append(st->wal, STORE_REC_DATA, parts, 2, &op->wop);
		if (rc != 0)
			return rc;
	}
	uint64_t pos = st->wal ? op->wop.end - wal_record_end(0, DATA_HDR + len) : NO_POS;
	struct entry *e = keep_in_memory(s, s->next, batch, len, count, max_ts, pos);
	op->s = s;
	op->len = len;
	op->base = e->base;
	op->end = s->next;
	op->err = 0;
	op->meta = 0;
	enqueue(st, op);
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
	if (offset < stream_mem_start(s))
		return SL_E_AGAIN;
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

/* Free the batches wholly below offset; returns their bytes. */
static size_t drop_below(struct stream *s, int64_t offset)
{
	size_t freed = 0;

	while (s->first < s->n && s->e[s->first].base + s->e[s->first].count <= offset) {
		struct entry *e = &s->e[s->first];
		s->st->bytes -= e->len;
		freed += e->len;
		e->seg->live--;
		e->data = NULL;
		s->first++;
	}
	seg_trim(s);
	return freed;
}

int stream_set_start(struct stream *s, int64_t start)
{
	if (start < s->start || start > s->hw)
		return SL_E_INVALID;
	s->start = start;
	drop_below(s, start);
	return 0;
}

int64_t stream_mem_start(const struct stream *s)
{
	if (s->first == s->n)
		return s->next;
	return s->e[s->first].base > s->start ? s->e[s->first].base : s->start;
}

int stream_restore(struct stream *s, int64_t start, int64_t end)
{
	if (s->first != s->n || s->next != 0 || start < 0 || start > end)
		return SL_E_INVALID;
	s->start = start;
	s->hw = s->next = end;
	s->cut = s->up = end;
	return 0;
}

const struct stream_id *stream_id_of(const struct stream *s) { return &s->id; }
int64_t stream_cut(const struct stream *s) { return s->cut; }
int64_t stream_up(const struct stream *s) { return s->up; }

void stream_set_cut(struct stream *s, int64_t cut)
{
	SL_ASSERT(cut >= s->cut && cut <= s->hw);
	s->cut = cut;
}

void stream_set_up(struct stream *s, int64_t up)
{
	SL_ASSERT(up >= s->up && up <= s->cut);
	s->up = up;
}

uint64_t stream_wal_pos(const struct stream *s, int64_t offset)
{
	if (s->first == s->n || offset >= s->next)
		return NO_POS;
	size_t i = offset > s->e[s->first].base ? find_entry(s, offset) : s->first;
	if (s->e[i].base < offset)
		i++;
	return i < s->n ? s->e[i].wal_pos : NO_POS;
}

size_t stream_evict(struct stream *s, int64_t upto)
{
	return drop_below(s, upto < s->up ? upto : s->up);
}

void store_foreach_stream(struct store *st, int (*fn)(void *arg, struct stream *s), void *arg)
{
	for (size_t b = 0; b < st->nbuckets; b++)
		for (struct stream *s = st->buckets[b], *nx; s; s = nx) {
			nx = s->hnext;
			if (fn(arg, s))
				return;
		}
}

uint64_t store_uncut(const struct store *st) { return st->uncut; }
void store_set_uncut(struct store *st, uint64_t bytes) { st->uncut = bytes; }
uint64_t store_done_pos(const struct store *st) { return st->done_pos; }

void store_set_upload_hook(struct store *st, uint64_t threshold, struct loop_task *t)
{
	st->upload_threshold = threshold;
	st->upload_hook = t;
}

void stream_foreach(struct stream *s, int64_t from, stream_batch_fn fn, void *arg)
{
	if (s->first == s->n)
		return;
	size_t i = from > s->e[s->first].base ? find_entry(s, from) : s->first;
	for (; i < s->n && s->e[i].base < s->hw; i++) {
		const struct entry *e = &s->e[i];
		if (e->base + e->count <= from)
			continue;
		struct stream_batch b = { e->base, e->count, e->max_ts, { e->data, e->len } };
		if (fn(arg, &b))
			return;
	}
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

void store_set_wal(struct store *st, struct wal *w)
{
	st->wal = w;
}

void store_set_meta_handler(struct store *st, store_meta_fn fn, void *arg)
{
	st->meta_fn = fn;
	st->meta_arg = arg;
}

int store_append_meta(struct store *st, const uint8_t *p, size_t n, struct stream_op *op)
{
	op->s = NULL;
	op->base = 0;
	op->end = 0;
	op->len = 0;
	op->err = 0;
	op->meta = 1;
	if (st->wal) {
		struct wal_span part = { p, n };
		op->wop.fn = wal_done;
		op->wop.arg = op;
		int rc = wal_append(st->wal, STORE_REC_META, &part, 1, &op->wop);
		if (rc != 0)
			return rc;
	}
	enqueue(st, op);
	return 0;
}

/* One DATA record back into its stream. */
static void replay_data(struct store *st, uint64_t pos, const uint8_t *p, size_t n)
{
	struct stream_id id;
	struct stream *s;

	if (n <= DATA_HDR) {
		log_error("store", "WAL record at %llu is too short for a batch; skipped",
			  (unsigned long long)pos);
		st->replay_skipped++;
		return;
	}
	memcpy(id.ns, p, 16);
	id.index = (int32_t)sl_load_be32(p + 16);
	int64_t base = (int64_t)sl_load_be64(p + 20);
	uint32_t count = sl_load_be32(p + 28);
	int64_t max_ts = (int64_t)sl_load_be64(p + 32);
	s = store_stream(st, &id, 0);
	if (s && count > 0 && base + (int64_t)count <= s->up) {
		/* Already in a committed manifest version: the WAL was not trimmed yet. */
		st->replay_uploaded++;
		return;
	}
	if (!s || count == 0 || base != s->next) {
		/*
		 * No stream: its topic's creation was never journaled, which
		 * the log order rules out, so the record is foreign.  A base
		 * that is not the next offset would break density.  Either way
		 * serving it would be wrong; say so and leave it out.
		 */
		log_error("store", "WAL record at %llu: batch at offset %lld for %s stream; skipped",
			  (unsigned long long)pos, (long long)base,
			  !s ? "an unknown" : "a non-contiguous position in its");
		st->replay_skipped++;
		return;
	}
	if (reserve_memory(s, n - DATA_HDR) != 0) {
		log_error("store", "out of memory replaying the WAL at %llu", (unsigned long long)pos);
		st->replay_skipped++;
		return;
	}
	keep_in_memory(s, base, p + DATA_HDR, n - DATA_HDR, count, max_ts, pos);
	s->hw = s->next;
	st->uncut += n - DATA_HDR;
}

static void replay(void *arg, uint8_t type, uint64_t pos, const uint8_t *p, size_t n)
{
	struct store *st = arg;

	if (type == STORE_REC_DATA) {
		replay_data(st, pos, p, n);
	} else if (type == STORE_REC_META) {
		if (st->meta_fn)
			st->meta_fn(st->meta_arg, p, n);
	} else {
		log_error("store", "WAL record at %llu has unknown type %u; skipped",
			  (unsigned long long)pos, type);
		st->replay_skipped++;
	}
}

int store_recover(struct store *st, struct wal_recovery *rec)
{
	if (!st->wal)
		return 0;
	int rc = wal_recover(st->wal, replay, st, rec);
	if (rc == 0)
		st->done_pos = rec->to;
	if (rc == 0 && st->replay_uploaded)
		log_info("store", "%llu WAL records were already in objects; not replayed",
			 (unsigned long long)st->replay_uploaded);
	if (rc == 0 && st->replay_skipped)
		log_warn("store", "%llu WAL records could not be replayed (see above)",
			 (unsigned long long)st->replay_skipped);
	return rc;
}

int store_has_room(struct store *st, size_t total, int n)
{
	struct wal_stats ws;

	if (!st->wal)
		return 1;
	wal_stats(st->wal, &ws);
	/*
	 * Per record: data header, WAL record header and alignment.  Per
	 * commit: up to a block of padding and terminator, and the WAL seals a
	 * commit every 8 MiB, so large appends span several.
	 */
	uint64_t need = total + (uint64_t)n * (DATA_HDR + 64) +
			(total / ((uint64_t)8 << 20) + 2) * WAL_BLOCK;
	uint64_t used = ws.head - ws.trim;
	return used <= ws.capacity && ws.capacity - used >= need;
}

void store_space_wait(struct store *st, struct wal_space_waiter *sw)
{
	if (st->wal)
		wal_space_wait(st->wal, sw);
}

void store_space_cancel(struct store *st, struct wal_space_waiter *sw)
{
	if (st->wal)
		wal_space_cancel(st->wal, sw);
}
