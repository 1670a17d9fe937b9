/*
 * test_rcache.c - the block cache of the cold read path (storage/rcache.h),
 * over the file object store in a temporary directory.
 *
 * Objects are written with obj_writer from a model (struct tobj): several
 * streams per object, small blocks (a 4 KiB target, so an object has many),
 * zstd and no compression.  A batch's bytes are made from its seed, half
 * text-like (zstd shrinks them) and half random (the block stays raw), so
 * expected reads are computed from the model and compared byte for byte.
 * The "uniform" object has one stream of equal batches, four to a block,
 * stored raw: every block is exactly 4096 bytes, so GET counts, byte counts
 * and the cache's charges are predictable.
 *
 * Covered: reads before and after a load at batch starts, inside batches,
 * in gaps, before the first offset, past the end, for a stream the object
 * lacks; max_bytes, min_one and maxspans; the index in the tail GET or in a
 * second GET; read-ahead runs (one GET for several blocks, runs that skip
 * cached blocks and stop before present ones); coalescing of index and
 * block loads; LRU order, pins that outlive the cap, cap 0; unpinning
 * before completion (no callback; the GET cancelled unless someone else
 * waits); prefetch; a missing object, damaged blocks, index and footer, and
 * a wrong size (errors, nothing cached, a later load after repair works);
 * freeing the cache with loads under way and pins held.
 *
 * No callback may run inside the call that started the load; every test
 * runs the loop under a 20 s guard timer.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/log.h"
#include "../../storage/object.h"
#include "../../storage/objstore.h"
#include "../../storage/rcache.h"

static struct loop *L;
static struct objstore *OS;
static struct rcache *C;
static char dirpath[256];
static int in_call, called_inside, guard_fired, waiting;
static struct loop_timer guard;

/* ---- the model ---- */

struct tb {
	int s;			/* stream number (ids from sid()) */
	int64_t base;
	uint32_t count;
	size_t len;
	uint64_t seed;
};

struct tobj {
	struct tb *b;		/* by stream, then offset */
	int n, cap;
	uint8_t *bytes;
	size_t size;
	char key[OBJ_KEY_LEN + 1];
	struct obj_footer f;
	struct obj_index ix;
};

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static struct stream_id sid(int k)
{
	struct stream_id id;

	memset(&id, 0, sizeof(id));
	memset(id.ns, 0x5a, sizeof(id.ns));
	id.ns[15] = (uint8_t)(k / 4);
	id.index = k % 4;
	return id;
}

static void fill(const struct tb *b, uint8_t *p)
{
	static const char words[] = "cold read block cache object stream offset ";
	uint64_t x = b->seed;
	size_t i;

	for (i = 0; i < b->len; i++) {
		if (b->seed & 1) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			p[i] = (uint8_t)(x >> 56);
		} else {
			p[i] = (uint8_t)words[(i + b->seed) % (sizeof(words) - 1)];
		}
	}
}

static void push(struct tobj *o, int s, int64_t base, uint32_t count, size_t len)
{
	struct tb *b;

	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->b = realloc(o->b, (size_t)o->cap * sizeof(*o->b));
		if (!o->b)
			abort();
	}
	b = &o->b[o->n++];
	b->s = s;
	b->base = base;
	b->count = count;
	b->len = len;
	b->seed = rnd(1ull << 40);
}

/* A stream of nb random batches, sometimes with gaps, starting at first. */
static void gen_stream(struct tobj *o, int s, int nb, int64_t first)
{
	int64_t off = first;
	int i;

	for (i = 0; i < nb; i++) {
		uint32_t count = 1 + (uint32_t)rnd(5);
		size_t len = 100 + rnd(1400);

		push(o, s, off, count, len);
		off += count;
		if (rnd(6) == 0)
			off += 1 + (int64_t)rnd(7);
	}
}

/* One stream (k) of nb batches of one offset and 1000 bytes: four to a 4 KiB block. */
static void gen_uniform(struct tobj *o, int s, int nb)
{
	int i;

	for (i = 0; i < nb; i++)
		push(o, s, i, 1, 1000);
}

static struct call_put {
	int done, err;
} put_call;

static void on_put(void *arg, struct objstore_result *r)
{
	struct call_put *c = arg;

	c->done = 1;
	c->err = r->err;
	loop_stop(L);
}

/* Write the model's object (streams must be pushed in id order) and store it. */
static void build(struct tobj *o, enum obj_comp comp, uint64_t seq)
{
	struct obj_writer_opts wo = { comp, 0, 4096 };
	struct obj_meta meta = { 7, 1, seq, 0x1234567ull * (seq + 1), 1700000000000 };
	struct obj_writer w;
	int i;

	T_EQ(obj_writer_init(&w, &wo), 0);
	for (i = 0; i < o->n; i++) {
		uint8_t *p = malloc(o->b[i].len);
		struct stream_id id = sid(o->b[i].s);

		if (!p)
			abort();
		fill(&o->b[i], p);
		T_EQ(obj_writer_add(&w, &id, o->b[i].base, o->b[i].count, 1700000000000 + i, p,
				    o->b[i].len), 0);
		free(p);
	}
	T_EQ(obj_writer_finish(&w, &meta, &o->bytes, &o->size), 0);
	obj_writer_free(&w);
	T_EQ(obj_parse(o->bytes, o->size, &o->f, &o->ix), 0);
	T_CHECK(obj_key(o->key, sizeof(o->key), &meta) > 0);
	put_call.done = 0;
	T_EQ(objstore_put(OS, o->key, o->bytes, o->size, on_put, &put_call, NULL), 0);
	T_EQ(loop_run(L), 0);
	T_EQ(put_call.done, 1);
	T_EQ(put_call.err, 0);
}

static void tobj_free(struct tobj *o)
{
	free(o->b);
	free(o->bytes);
	obj_index_free(&o->ix);
	memset(o, 0, sizeof(*o));
}

/* The mixed object: streams 0, 1 and 5 of random batches (2 and 9 are not in it). */
static void build_mixed(struct tobj *o, enum obj_comp comp, uint64_t seq)
{
	memset(o, 0, sizeof(*o));
	gen_stream(o, 0, 60, 0);
	gen_stream(o, 1, 45, 1000);
	gen_stream(o, 5, 70, 123456789);
	build(o, comp, seq);
}

/* The uniform object: stream 3 of nb 1000-byte batches (offset i each), stored raw. */
static void build_uniform(struct tobj *o, int nb, uint64_t seq)
{
	memset(o, 0, sizeof(*o));
	gen_uniform(o, 3, nb);
	build(o, OBJ_COMP_NONE, seq);
}

static struct rcache_where where(const struct tobj *o, int s, int64_t off)
{
	struct rcache_where w;

	memset(&w, 0, sizeof(w));
	w.key = o->key;
	w.size = o->size;
	w.id = sid(s);
	w.offset = off;
	return w;
}

/* The stream's position in the object's index (it must be there). */
static const struct obj_stream *ostream(const struct tobj *o, int s)
{
	struct stream_id id = sid(s);
	int i = obj_find_stream(&o->ix, &id);

	T_CHECK(i >= 0);
	return &o->ix.streams[i < 0 ? 0 : i];
}

/* ---- the harness ---- */

struct ld {
	int done, err;
	struct rcache_pin *pin;
	int unpin_in_cb;
};

static void on_load(void *arg, int err)
{
	struct ld *d = arg;

	if (in_call)
		called_inside++;
	d->done++;
	d->err = err;
	if (d->unpin_in_cb) {
		rcache_unpin(C, d->pin);
		d->pin = NULL;
	}
	if (waiting > 0 && --waiting == 0)
		loop_stop(L);
}

static void on_guard(struct loop *l, void *arg)
{
	guard_fired = 1;
	loop_stop(l);
}

static void run(void)
{
	if (waiting > 0)
		T_EQ(loop_run(L), 0);
	T_EQ(waiting, 0);
	T_EQ(guard_fired, 0);
	T_EQ(called_inside, 0);
}

static void on_stop(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* One turn of the loop (deferred work runs). */
static void spin(void)
{
	struct loop_timer t;

	loop_timer_init(&t, on_stop, NULL);
	loop_timer_set(L, &t, 0);
	T_EQ(loop_run(L), 0);
	loop_timer_cancel(L, &t);
}

static int barrier_done;

static void on_barrier(void *arg, struct objstore_result *r)
{
	barrier_done = 1;
	loop_stop(L);
}

/* The store runs operations in order: when a GET started now answers, every earlier one has. */
static void barrier(void)
{
	barrier_done = 0;
	T_EQ(objstore_get(OS, "barrier/none", NULL, on_barrier, NULL, NULL), 0);
	while (!barrier_done && !guard_fired)
		T_EQ(loop_run(L), 0);
}

/* Until no more GETs are started by the answers to earlier ones (prefetch has no callback). */
static void drain(void)
{
	struct rcache_stats st;
	uint64_t g0;
	int i;

	for (i = 0; i < 50; i++) {
		rcache_stats(C, &st);
		g0 = st.gets;
		barrier();
		rcache_stats(C, &st);
		if (st.gets == g0)
			return;
	}
	T_CHECK(0);
}

static void setup(size_t cap, size_t readahead, size_t tail_guess)
{
	struct rcache_options o = { cap, readahead, tail_guess };
	char url[300], errbuf[256];

	snprintf(dirpath, sizeof(dirpath), "/tmp/sluice-rcache-XXXXXX");
	T_CHECK(mkdtemp(dirpath) != NULL);
	L = loop_new();
	snprintf(url, sizeof(url), "file://%s", dirpath);
	T_EQ(objstore_open(L, url, NULL, &OS, errbuf, sizeof(errbuf)), 0);
	C = rcache_new(L, OS, &o);
	T_CHECK(C != NULL);
	waiting = 0;
	guard_fired = 0;
	called_inside = 0;
	in_call = 0;
	loop_timer_init(&guard, on_guard, NULL);
	loop_timer_set(L, &guard, 20000);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void teardown(void)
{
	rcache_free(C);
	C = NULL;
	objstore_free(OS);
	OS = NULL;
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
	nftw(dirpath, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Start a load; expects the start to succeed. */
static void load(const struct tobj *o, int s, int64_t off, size_t want, struct ld *d)
{
	struct rcache_where w = where(o, s, off);
	int err;

	d->done = 0;
	d->err = 1;
	d->pin = NULL;
	in_call = 1;
	err = rcache_load(C, &w, want, on_load, d, &d->pin);
	in_call = 0;
	T_EQ(err, 0);
	T_CHECK(d->pin != NULL);
	waiting++;
}

/* Load, wait, and check it succeeded; the pin stays in d. */
static void load_sync(const struct tobj *o, int s, int64_t off, size_t want, struct ld *d)
{
	load(o, s, off, want, d);
	run();
	T_EQ(d->done, 1);
	T_EQ(d->err, 0);
}

static void unpin(struct ld *d)
{
	rcache_unpin(C, d->pin);
	d->pin = NULL;
}

static struct rcache_stats stats(void)
{
	struct rcache_stats st;

	rcache_stats(C, &st);
	return st;
}

/* Flip the byte at pos of o's file; flip it again to repair. */
static void flip(const struct tobj *o, uint64_t pos)
{
	char path[600];
	uint8_t x;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dirpath, o->key);
	fd = open(path, O_RDWR);
	T_CHECK(fd >= 0);
	T_EQ(pread(fd, &x, 1, (off_t)pos), 1);
	x ^= 0x40;
	T_EQ(pwrite(fd, &x, 1, (off_t)pos), 1);
	close(fd);
}

/* ---- reads checked against the model ---- */

#define MAXSP 512

static int rd(const struct tobj *o, int s, int64_t off, size_t max, int min_one, int maxspans,
	      struct span *sp, size_t *total, int64_t *next)
{
	struct rcache_where w = where(o, s, off);

	return rcache_read(C, &w, max, min_one, sp, maxspans, total, next);
}

/*
 * What a read of stream s from off should give when all its blocks are
 * cached: the model position of the first batch in *first, the count.
 */
static int expect(const struct tobj *o, int s, int64_t off, size_t max, int min_one,
		  int maxspans, int *first, size_t *total, int64_t *next)
{
	int i, n = 0;

	*first = -1;
	*total = 0;
	*next = off;
	for (i = 0; i < o->n; i++) {
		const struct tb *b = &o->b[i];

		if (b->s != s || b->base + (int64_t)b->count - 1 < off)
			continue;
		if (*first < 0)
			*first = i;
		else if (o->b[i - 1].s != s)
			break;
		if (n == maxspans || (*total + b->len > max && !(n == 0 && min_one)))
			break;
		*total += b->len;
		*next = b->base + b->count;
		n++;
	}
	return n;
}

/* The spans are the model's batches from position first on. */
static void check_spans(const struct tobj *o, int first, const struct span *sp, int n)
{
	uint8_t *want = malloc(1500 + 1);
	int i;

	if (!want)
		abort();
	for (i = 0; i < n; i++) {
		const struct tb *b = &o->b[first + i];

		T_EQ(sp[i].len, b->len);
		if (sp[i].len != b->len)
			break;
		fill(b, want);
		T_MEMEQ(sp[i].p, want, b->len);
	}
	free(want);
}

/* A read of a fully cached stream equals the model's answer. */
static void check_read(const struct tobj *o, int s, int64_t off, size_t max, int min_one,
		       int maxspans)
{
	static struct span sp[MAXSP];
	size_t total = 7, etotal;
	int64_t next = -7, enext;
	int first, en = expect(o, s, off, max, min_one, maxspans, &first, &etotal, &enext);
	int n = rd(o, s, off, max, min_one, maxspans, sp, &total, &next);

	T_EQ(n, en);
	T_EQ(total, etotal);
	T_EQ(next, enext);
	if (n == en && n > 0)
		check_spans(o, first, sp, n);
	if (n != en)
		fprintf(stderr, "  read of stream %d at %lld\n", s, (long long)off);
}

/* Every interesting offset of stream s: batch starts, insides, gaps, before, past the end. */
static void check_stream(const struct tobj *o, int s)
{
	const struct obj_stream *st = ostream(o, s);
	int i;

	check_read(o, s, 0, SIZE_MAX, 1, MAXSP);
	check_read(o, s, st->first, SIZE_MAX, 1, MAXSP);
	check_read(o, s, st->last, SIZE_MAX, 1, MAXSP);
	check_read(o, s, st->last + 1, SIZE_MAX, 1, MAXSP);
	check_read(o, s, INT64_MAX, SIZE_MAX, 1, MAXSP);
	for (i = 0; i < o->n; i++) {
		const struct tb *b = &o->b[i];

		if (b->s != s)
			continue;
		check_read(o, s, b->base, SIZE_MAX, 1, MAXSP);
		check_read(o, s, b->base + b->count - 1, 5000, 1, MAXSP);
		if (b->count > 2)
			check_read(o, s, b->base + 1, 3000, 0, 3);
		/* the offset after the batch: the next batch, or a gap before it */
		check_read(o, s, b->base + b->count, 2500, 1, 4);
	}
}

/* ---- tests ---- */

static void test_invalid(void)
{
	struct tobj o;
	struct rcache_where w;
	struct rcache_pin *pin = NULL;
	struct span sp[4];
	size_t total;
	int64_t next;
	struct ld d = { 0 };

	setup(1 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 1);
	w = where(&o, 0, 0);
	w.key = "../x";
	T_EQ(rcache_load(C, &w, 1, on_load, &d, &pin), SL_E_INVALID);
	w = where(&o, 0, 0);
	w.size = 79;
	T_EQ(rcache_load(C, &w, 1, on_load, &d, &pin), SL_E_INVALID);
	w = where(&o, 0, -1);
	T_EQ(rcache_load(C, &w, 1, on_load, &d, &pin), SL_E_INVALID);
	w = where(&o, 0, 0);
	T_EQ(rcache_load(C, &w, 1, NULL, &d, &pin), SL_E_INVALID);
	T_EQ(rcache_read(C, &w, 100, 1, sp, 0, &total, &next), SL_E_INVALID);
	T_CHECK(pin == NULL);
	spin();
	T_EQ(d.done, 0);
	T_EQ(stats().gets, 0);
	/* Nothing cached yet: a miss. */
	T_EQ(rcache_read(C, &w, 100, 1, sp, 4, &total, &next), SL_E_AGAIN);
	T_EQ(total, 0);
	T_EQ(next, 0);
	T_EQ(stats().misses, 1);
	T_EQ(stats().hits, 0);
	tobj_free(&o);
	teardown();
}

/* Miss, load, then every kind of offset of every stream, for one compression. */
static void basic(enum obj_comp comp)
{
	struct tobj o;
	struct ld d[3] = { { 0 } };
	struct span sp[4];
	size_t total;
	int64_t next;
	struct rcache_stats st;

	setup(64 << 20, 0, 1 << 20);
	build_mixed(&o, comp, 2);
	T_CHECK(o.ix.nblocks > 20);
	if (comp == OBJ_COMP_ZSTD) {
		uint32_t i, z = 0;

		for (i = 0; i < o.ix.nblocks; i++)
			z += o.ix.blocks[i].comp == OBJ_COMP_ZSTD;
		T_CHECK(z > 0 && z < o.ix.nblocks);	/* both forms are read */
	}

	T_EQ(rd(&o, 0, 0, SIZE_MAX, 1, 4, sp, &total, &next), SL_E_AGAIN);
	load_sync(&o, 0, 0, 1, &d[0]);
	st = stats();
	/* The tail GET held all of the object; the stream fits one read-ahead run. */
	T_CHECK(o.size < 1 << 20);
	T_EQ(st.gets, 2);
	T_EQ(st.errors, 0);
	T_CHECK(st.pinned_bytes > 0);
	T_EQ(st.pinned_bytes, st.bytes);
	T_EQ(st.entries, 1 + ostream(&o, 0)->nblocks);
	check_stream(&o, 0);
	T_CHECK(stats().hits > 0);

	/* Another stream: blocks not cached yet, the index is. */
	T_EQ(rd(&o, 5, 123456789, SIZE_MAX, 1, 4, sp, &total, &next), SL_E_AGAIN);
	load_sync(&o, 5, 123456789, 1, &d[1]);
	load_sync(&o, 1, 0, 1, &d[2]);
	T_EQ(stats().gets, 4);
	check_stream(&o, 5);
	check_stream(&o, 1);

	/* Streams the object does not hold: the load finds nothing to do, the read says so. */
	{
		struct ld n1 = { 0 };

		load_sync(&o, 2, 0, 1, &n1);
		T_EQ(rd(&o, 2, 0, SIZE_MAX, 1, 4, sp, &total, &next), SL_E_NOTFOUND);
		T_EQ(rd(&o, 9, 5, SIZE_MAX, 1, 4, sp, &total, &next), SL_E_NOTFOUND);
		unpin(&n1);
	}
	T_EQ(stats().gets, 4);
	unpin(&d[0]);
	unpin(&d[1]);
	unpin(&d[2]);
	st = stats();
	T_EQ(st.pinned_bytes, 0);
	T_EQ(st.entries, 1 + o.ix.nblocks);
	/* Unpinned and under the cap: still readable. */
	check_read(&o, 1, 1000, SIZE_MAX, 1, MAXSP);
	tobj_free(&o);
	teardown();
}

static void test_basic_zstd(void)
{
	basic(OBJ_COMP_ZSTD);
}

static void test_basic_none(void)
{
	basic(OBJ_COMP_NONE);
}

static void test_limits(void)
{
	struct tobj o;
	struct ld d = { 0 };
	struct span sp[8];
	size_t total;
	int64_t next;
	int i, first = -1;

	setup(64 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 3);
	load_sync(&o, 0, 0, SIZE_MAX, &d);
	for (i = 0; i < o.n && first < 0; i++)
		if (o.b[i].s == 0)
			first = i;
	/* max_bytes below the first batch: min_one gives it whole, else nothing. */
	T_EQ(rd(&o, 0, 0, 10, 1, 8, sp, &total, &next), 1);
	T_EQ(total, o.b[first].len);
	T_EQ(next, o.b[first].base + o.b[first].count);
	T_EQ(rd(&o, 0, 0, 10, 0, 8, sp, &total, &next), 0);
	T_EQ(total, 0);
	T_EQ(next, 0);
	/* Exactly three batches' bytes: three. */
	T_EQ(rd(&o, 0, 0, o.b[first].len + o.b[first + 1].len + o.b[first + 2].len, 0, 8, sp,
		&total, &next), 3);
	T_EQ(next, o.b[first + 2].base + o.b[first + 2].count);
	/* One byte less: two. */
	T_EQ(rd(&o, 0, 0, o.b[first].len + o.b[first + 1].len + o.b[first + 2].len - 1, 0, 8, sp,
		&total, &next), 2);
	/* maxspans bounds it. */
	T_EQ(rd(&o, 0, 0, SIZE_MAX, 0, 2, sp, &total, &next), 2);
	T_EQ(next, o.b[first + 1].base + o.b[first + 1].count);
	check_read(&o, 0, 0, SIZE_MAX, 1, 5);
	check_read(&o, 0, 0, 7000, 0, MAXSP);
	check_read(&o, 0, o.b[first + 3].base, 20000, 1, MAXSP);
	unpin(&d);
	tobj_free(&o);
	teardown();
}

/* The tail GET too short for the index: a second GET for it. */
static void test_index_second_get(void)
{
	struct tobj o;
	struct ld d = { 0 };
	struct rcache_stats st;
	const struct obj_stream *s;
	uint64_t run;

	setup(64 << 20, 0, 64);
	build_mixed(&o, OBJ_COMP_ZSTD, 4);
	load_sync(&o, 1, 1000, 1, &d);
	s = ostream(&o, 1);
	run = o.ix.blocks[s->block0 + s->nblocks - 1].pos +
	      o.ix.blocks[s->block0 + s->nblocks - 1].stored - o.ix.blocks[s->block0].pos;
	st = stats();
	T_EQ(st.gets, 3);
	T_EQ(st.get_bytes, 64 + o.f.index_len + run);
	check_stream(&o, 1);
	unpin(&d);
	tobj_free(&o);
	teardown();
}

/* Read-ahead runs of three blocks: from the first absent block, stopping before a present one. */
static void test_readahead(void)
{
	struct tobj o;
	struct ld d[4] = { { 0 } };
	struct span sp[64];
	size_t total;
	int64_t next;
	uint64_t g, gb;

	setup(64 << 20, 3 * 4096, 0);
	build_uniform(&o, 40, 5);
	T_EQ(o.ix.nblocks, 10);
	T_EQ(o.ix.blocks[0].stored, 4096);

	load_sync(&o, 3, 0, 1, &d[0]);
	T_EQ(stats().gets, 2);
	g = stats().gets;
	gb = stats().get_bytes;
	/* Three blocks, twelve batches: the read stops before the first block not cached. */
	T_EQ(rd(&o, 3, 0, SIZE_MAX, 1, 64, sp, &total, &next), 12);
	T_EQ(next, 12);
	T_EQ(rd(&o, 3, 12, SIZE_MAX, 1, 64, sp, &total, &next), SL_E_AGAIN);
	check_read(&o, 3, 5, 3000, 1, 64);
	load_sync(&o, 3, 12, 1, &d[1]);
	T_EQ(stats().gets, g + 1);
	T_EQ(stats().get_bytes, gb + 3 * 4096);
	T_EQ(rd(&o, 3, 0, SIZE_MAX, 1, 64, sp, &total, &next), 24);
	/* want_bytes past the read-ahead: blocks 0-5 are cached, one GET for 6-9. */
	load_sync(&o, 3, 0, SIZE_MAX, &d[2]);
	T_EQ(stats().gets, g + 2);
	T_EQ(stats().get_bytes, gb + 7 * 4096);
	check_stream(&o, 3);
	unpin(&d[0]);
	unpin(&d[1]);
	unpin(&d[2]);
	teardown();

	/* A present block in the middle cuts the run: 0-5 in one GET, 9 in another. */
	setup(64 << 20, 3 * 4096, 0);
	put_call.done = 0;
	T_EQ(objstore_put(OS, o.key, o.bytes, o.size, on_put, &put_call, NULL), 0);
	T_EQ(loop_run(L), 0);
	load_sync(&o, 3, 24, 1, &d[0]);	/* blocks 6-8 */
	g = stats().gets;
	gb = stats().get_bytes;
	T_EQ(rd(&o, 3, 23, SIZE_MAX, 1, 64, sp, &total, &next), SL_E_AGAIN);
	T_EQ(rd(&o, 3, 24, SIZE_MAX, 1, 64, sp, &total, &next), 12);
	load_sync(&o, 3, 0, 10 * 4096, &d[1]);
	T_EQ(stats().gets, g + 2);
	T_EQ(stats().get_bytes, gb + 7 * 4096);
	check_stream(&o, 3);
	unpin(&d[0]);
	unpin(&d[1]);
	tobj_free(&o);
	teardown();
}

static void test_coalesce(void)
{
	struct tobj o, o2;
	struct ld d[6] = { { 0 } };
	struct rcache_stats st;

	setup(64 << 20, 3 * 4096, 0);
	build_uniform(&o, 40, 6);
	build_mixed(&o2, OBJ_COMP_ZSTD, 7);
	/* Two loads of one block in one turn: one index GET, one block GET. */
	load(&o, 3, 0, 1, &d[0]);
	load(&o, 3, 1, 1, &d[1]);
	run();
	T_EQ(d[0].done, 1);
	T_EQ(d[0].err, 0);
	T_EQ(d[1].done, 1);
	T_EQ(d[1].err, 0);
	T_EQ(stats().gets, 2);
	/* Index cached: two loads in block 3, one in block 4 (inside the first's run): one GET. */
	load(&o, 3, 12, 1, &d[2]);
	load(&o, 3, 13, 1, &d[3]);
	load(&o, 3, 17, 1, &d[4]);
	run();
	T_EQ(d[2].err, 0);
	T_EQ(d[3].err, 0);
	T_EQ(d[4].err, 0);
	st = stats();
	T_EQ(st.gets, 3);
	T_EQ(st.get_bytes, o.size + 6 * 4096);
	check_read(&o, 3, 0, SIZE_MAX, 1, 24);
	/* Two streams of one object at once: one index GET, a block GET each. */
	load(&o2, 0, 0, SIZE_MAX, &d[5]);
	{
		struct ld e = { 0 };

		load(&o2, 5, 0, SIZE_MAX, &e);
		run();
		T_EQ(e.err, 0);
		unpin(&e);
	}
	T_EQ(d[5].err, 0);
	T_EQ(stats().gets, 6);
	check_stream(&o2, 0);
	check_stream(&o2, 5);
	for (int i = 0; i < 6; i++)
		unpin(&d[i]);
	tobj_free(&o);
	tobj_free(&o2);
	teardown();
}

/* The charge of one uniform block and of the index, measured in a cache that keeps everything. */
static void measure(size_t *blk, size_t *idx)
{
	struct tobj o;
	struct ld d = { 0 };

	setup(64 << 20, 1, 0);
	build_uniform(&o, 40, 8);
	load_sync(&o, 3, 0, 1, &d);
	*blk = stats().bytes;
	unpin(&d);
	load_sync(&o, 3, 4, 1, &d);
	unpin(&d);
	*blk = stats().bytes - *blk;
	*idx = stats().bytes - 2 * *blk;
	T_EQ(stats().entries, 3);
	T_CHECK(*blk >= 4096);
	tobj_free(&o);
	teardown();
}

static int cached(const struct tobj *o, int64_t off)
{
	struct span sp[8];
	size_t total;
	int64_t next;
	int n = rd(o, 3, off, 4000, 1, 8, sp, &total, &next);

	T_CHECK(n == SL_E_AGAIN || n >= 1);
	return n >= 1;
}

/* Load block b of the uniform stream (readahead 1: that block alone), then unpin. */
static void load_blk(const struct tobj *o, int b)
{
	struct ld d = { 0 };

	load_sync(o, 3, 4 * b, 1, &d);
	unpin(&d);
}

static void test_lru(void)
{
	struct tobj o;
	struct ld p = { 0 };
	size_t blk, idx;
	int b;

	measure(&blk, &idx);
	/* Room for the index and two blocks. */
	setup(idx + 2 * blk, 1, 0);
	build_uniform(&o, 40, 9);
	load_blk(&o, 1);
	load_blk(&o, 2);
	T_EQ(stats().bytes, idx + 2 * blk);
	T_CHECK(cached(&o, 4) && cached(&o, 8));
	T_CHECK(cached(&o, 4));		/* block 1 is now the more recent */
	load_blk(&o, 3);
	T_EQ(stats().bytes, idx + 2 * blk);
	T_CHECK(cached(&o, 4));
	T_CHECK(!cached(&o, 8));
	T_CHECK(cached(&o, 12));

	/* A pinned block survives loads that pass the cap. */
	{
		struct ld d = { 0 };

		load_sync(&o, 3, 0, 1, &d);
		p = d;
	}
	for (b = 4; b < 10; b++) {
		load_blk(&o, b);
		T_CHECK(cached(&o, 0));
		T_CHECK(stats().bytes <= idx + 3 * blk);
		T_EQ(stats().pinned_bytes, idx + blk);
	}
	T_CHECK(cached(&o, 36));
	T_CHECK(!cached(&o, 4));
	/* Unpinned, it may go: two more loads push it out. */
	unpin(&p);
	T_EQ(stats().pinned_bytes, 0);
	load_blk(&o, 1);
	load_blk(&o, 2);
	T_CHECK(!cached(&o, 0));
	T_EQ(stats().bytes, idx + 2 * blk);
	T_EQ(stats().entries, 3);
	tobj_free(&o);
	teardown();
}

/* cap 0: only pins hold anything; after the last unpin everything goes, index too. */
static void test_cap_zero(void)
{
	struct tobj o;
	struct ld d[2] = { { 0 } };

	setup(0, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 10);
	load_sync(&o, 0, 0, SIZE_MAX, &d[0]);
	load_sync(&o, 1, 1000, SIZE_MAX, &d[1]);
	check_stream(&o, 0);
	check_stream(&o, 1);
	T_EQ(stats().pinned_bytes, stats().bytes);
	unpin(&d[0]);
	spin();
	check_stream(&o, 1);
	{
		struct span sp[4];
		size_t total;
		int64_t next;

		T_EQ(rd(&o, 0, 0, SIZE_MAX, 1, 4, sp, &total, &next), SL_E_AGAIN);
	}
	unpin(&d[1]);
	spin();
	T_EQ(stats().bytes, 0);
	T_EQ(stats().entries, 0);
	/* Prefetch is pointless without room: ignored. */
	{
		struct rcache_where w = where(&o, 0, 0);
		uint64_t g = stats().gets;

		rcache_prefetch(C, &w, 1);
		drain();
		T_EQ(stats().gets, g);
	}
	tobj_free(&o);
	teardown();
}

static void test_unpin_early(void)
{
	struct tobj o;
	struct ld d[4] = { { 0 } };
	struct rcache_stats st;

	setup(64 << 20, 3 * 4096, 0);
	build_uniform(&o, 40, 11);
	/* Unpinned while its index GET runs: no callback, the GET cancelled, nothing kept. */
	load(&o, 3, 0, 1, &d[0]);
	unpin(&d[0]);
	waiting--;
	drain();
	T_EQ(d[0].done, 0);
	st = stats();
	T_EQ(st.gets, 1);
	T_EQ(st.entries, 0);
	T_EQ(st.bytes, 0);

	/* Two waiting, one leaves: the other is answered, one GET each step. */
	load(&o, 3, 0, 1, &d[0]);
	load(&o, 3, 0, 1, &d[1]);
	unpin(&d[0]);
	waiting--;
	run();
	T_EQ(d[0].done, 0);
	T_EQ(d[1].done, 1);
	T_EQ(d[1].err, 0);
	T_EQ(stats().gets, 3);
	T_CHECK(cached(&o, 0));

	/* Index cached: unpinned while its block GET runs; nothing cached from it. */
	load(&o, 3, 20, 1, &d[2]);
	unpin(&d[2]);
	waiting--;
	drain();
	T_EQ(d[2].done, 0);
	T_EQ(stats().gets, 4);
	T_EQ(stats().entries, 4);
	T_CHECK(!cached(&o, 20));

	/* Everything cached: the callback is still later; unpinning first stops it. */
	load(&o, 3, 1, 1, &d[3]);
	unpin(&d[3]);
	waiting--;
	spin();
	spin();
	T_EQ(d[3].done, 0);

	/* Unpinning from inside the callback. */
	d[3].unpin_in_cb = 1;
	load(&o, 3, 1, 1, &d[3]);
	run();
	T_EQ(d[3].done, 1);
	T_CHECK(d[3].pin == NULL);
	unpin(&d[1]);
	T_EQ(stats().pinned_bytes, 0);
	tobj_free(&o);
	teardown();
}

static void test_prefetch(void)
{
	struct tobj o;
	struct rcache_where w;
	struct rcache_stats st;
	struct ld d = { 0 };

	setup(64 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 12);
	w = where(&o, 5, 0);
	rcache_prefetch(C, &w, 1);
	rcache_prefetch(C, &w, 1);	/* the index is on its way: ignored */
	drain();
	st = stats();
	T_EQ(st.gets, 2);
	T_EQ(st.pinned_bytes, 0);
	T_EQ(st.entries, 1 + ostream(&o, 5)->nblocks);
	check_stream(&o, 5);
	/* Cached already: nothing to do. */
	rcache_prefetch(C, &w, 1);
	drain();
	T_EQ(stats().gets, 2);
	/* A load of what a prefetch is fetching waits for it. */
	w = where(&o, 1, 1000);
	rcache_prefetch(C, &w, 1);
	load(&o, 1, 1000, 1, &d);
	run();
	T_EQ(d.err, 0);
	T_EQ(stats().gets, 3);
	check_stream(&o, 1);
	unpin(&d);
	tobj_free(&o);
	teardown();
}

static void test_missing(void)
{
	struct tobj o;
	struct ld d = { 0 };

	setup(64 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 13);
	/* another nonce: never written */
	o.key[strlen(o.key) - 5] = o.key[strlen(o.key) - 5] == '0' ? '1' : '0';
	load(&o, 0, 0, 1, &d);
	run();
	T_EQ(d.done, 1);
	T_EQ(d.err, SL_E_NOTFOUND);
	T_EQ(stats().errors, 1);
	T_EQ(stats().entries, 0);
	unpin(&d);
	T_EQ(stats().bytes, 0);
	tobj_free(&o);
	teardown();
}

/* Damage at pos: the load fails with SL_E_CORRUPT; repaired, a new load works. */
static void damaged(const struct tobj *o, uint64_t pos, int s, int64_t off, size_t entries_after)
{
	struct ld d = { 0 };
	uint64_t errors = stats().errors;
	struct span sp[4];
	size_t total;
	int64_t next;

	flip(o, pos);
	load(o, s, off, 1, &d);
	run();
	T_EQ(d.done, 1);
	T_EQ(d.err, SL_E_CORRUPT);
	T_EQ(stats().errors, errors + 1);
	T_EQ(stats().entries, entries_after);
	T_EQ(stats().pinned_bytes, 0);
	T_EQ(rd(o, s, off, SIZE_MAX, 1, 4, sp, &total, &next), SL_E_AGAIN);
	unpin(&d);
	flip(o, pos);
	load_sync(o, s, 0, SIZE_MAX, &d);
	check_stream(o, s);
	unpin(&d);
}

static void test_corrupt(void)
{
	struct tobj o;
	const struct obj_stream *s;
	const struct obj_block *b;

	setup(64 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 14);
	/* The footer: nothing cached. */
	damaged(&o, o.size - 20, 0, 0, 0);
	teardown();

	setup(64 << 20, 0, 64);
	put_call.done = 0;
	T_EQ(objstore_put(OS, o.key, o.bytes, o.size, on_put, &put_call, NULL), 0);
	T_EQ(loop_run(L), 0);
	/* The index (its CRC), read by a second GET. */
	damaged(&o, o.f.index_off + 30, 1, 1000, 0);
	teardown();

	setup(64 << 20, 0, 0);
	put_call.done = 0;
	T_EQ(objstore_put(OS, o.key, o.bytes, o.size, on_put, &put_call, NULL), 0);
	T_EQ(loop_run(L), 0);
	/* A block of stream 5 in the middle of a run: the index stays, no block does. */
	s = ostream(&o, 5);
	b = &o.ix.blocks[s->block0 + 3];
	damaged(&o, b->pos + b->stored / 2, 5, b->first, 1);
	tobj_free(&o);
	teardown();

	/* Blocks stored raw (no compression). */
	setup(64 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_NONE, 15);
	s = ostream(&o, 0);
	b = &o.ix.blocks[s->block0 + 1];
	damaged(&o, b->pos + 5, 0, b->first, 1);
	tobj_free(&o);
	teardown();
}

/* A size from the manifest that is not the object's: the range misses the footer. */
static void test_wrong_size(void)
{
	struct tobj o;
	struct ld d = { 0 };

	setup(64 << 20, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 16);
	o.size += 1;
	load(&o, 0, 0, 1, &d);
	run();
	T_EQ(d.err, SL_E_CORRUPT);
	unpin(&d);
	o.size -= 2;
	load(&o, 0, 0, 1, &d);
	run();
	T_EQ(d.err, SL_E_CORRUPT);
	unpin(&d);
	/* A range that starts past the end. */
	o.size += 1 + 100000;
	load(&o, 0, 0, 1, &d);
	run();
	T_EQ(d.err, SL_E_CORRUPT);
	unpin(&d);
	o.size -= 100000;
	T_EQ(stats().errors, 3);
	T_EQ(stats().entries, 0);
	load_sync(&o, 0, 0, 1, &d);
	check_stream(&o, 0);
	unpin(&d);
	tobj_free(&o);
	teardown();
}

/*
 * Flip one byte at a time (every stride-th) and load stream s whole with
 * nothing cached (cap 0): damage to the stream's blocks, the index or the
 * footer must fail with SL_E_CORRUPT; damage to the header (a ranged reader
 * never reads it) or to other streams' blocks must not matter, and the
 * batches read must be the model's.
 */
static void sweep(const struct tobj *o, int s, uint64_t stride)
{
	uint64_t pos;

	for (pos = 0; pos < o->size; pos += stride) {
		struct ld d = { 0 };
		int want = 0;

		if (pos >= o->f.index_off) {
			want = SL_E_CORRUPT;
		} else if (pos >= OBJ_HEADER_LEN) {
			uint32_t b = 0;

			while (o->ix.blocks[b].pos + o->ix.blocks[b].stored <= pos)
				b++;
			if (o->ix.blocks[b].stream == (uint32_t)(ostream(o, s) - o->ix.streams))
				want = SL_E_CORRUPT;
		}
		flip(o, pos);
		load(o, s, 0, SIZE_MAX, &d);
		run();
		T_EQ(d.err, want);
		if (d.err == 0)
			check_stream(o, s);
		unpin(&d);
		spin();
		flip(o, pos);
		T_EQ(stats().entries, 0);
		if (d.err != want) {
			fprintf(stderr, "  damage at %llu\n", (unsigned long long)pos);
			break;
		}
	}
}

static void test_damage_sweep(void)
{
	struct tobj o;

	setup(0, 0, 0);
	build_uniform(&o, 10, 19);
	sweep(&o, 3, 7);
	tobj_free(&o);
	teardown();

	setup(0, 0, 64);	/* the index in a second GET */
	build_mixed(&o, OBJ_COMP_ZSTD, 20);
	sweep(&o, 1, 101);
	tobj_free(&o);
	teardown();
}

static void on_load_free(void *arg, int err)
{
	struct ld *d = arg;

	d->done++;
	d->err = err;
	rcache_free(C);
	C = NULL;
	loop_stop(L);
}

/* Freed with loads in every state and pins held: no callbacks, no leaks (ASan). */
static void test_free_busy(void)
{
	struct tobj o, o2;
	struct ld d[5] = { { 0 } };
	struct rcache_where w;

	setup(1 << 20, 4096, 0);
	build_uniform(&o, 40, 17);
	build_mixed(&o2, OBJ_COMP_ZSTD, 18);
	load_sync(&o, 3, 0, 1, &d[0]);		/* held */
	load(&o, 3, 8, 1, &d[1]);		/* block GET under way */
	load(&o2, 0, 0, 1, &d[2]);		/* index GET under way */
	load(&o2, 1, 1000, 1, &d[3]);		/* waiting on it */
	load(&o, 3, 0, 1, &d[4]);		/* answered from the cache, later */
	w = where(&o, 3, 20);
	rcache_prefetch(C, &w, 1);
	rcache_free(C);
	C = NULL;
	waiting = 0;
	barrier();
	barrier();
	spin();
	T_EQ(d[0].done, 1);
	T_EQ(d[1].done, 0);
	T_EQ(d[2].done, 0);
	T_EQ(d[3].done, 0);
	T_EQ(d[4].done, 0);

	/* Freed from inside a callback, with another load still under way. */
	C = rcache_new(L, OS, NULL);
	T_CHECK(C != NULL);
	{
		struct rcache_where w1 = where(&o, 3, 0), w2 = where(&o2, 5, 0);

		memset(d, 0, sizeof(d));
		T_EQ(rcache_load(C, &w1, 1, on_load_free, &d[0], &d[0].pin), 0);
		T_EQ(rcache_load(C, &w2, 1, on_load, &d[1], &d[1].pin), 0);
		T_EQ(loop_run(L), 0);
		T_EQ(d[0].done, 1);
		T_EQ(d[0].err, 0);
		T_CHECK(C == NULL);
		barrier();
		barrier();
		T_EQ(d[1].done, 0);
	}
	tobj_free(&o);
	tobj_free(&o2);
	teardown();
}

/*
 * The accessors for lookups by time: a load past the stream's end pins the
 * index alone; rcache_index and rcache_block give what pins hold (the
 * model's blocks and batches), and nothing once cap 0 lets them go.
 */
static void test_accessors(void)
{
	struct tobj o;
	struct ld ix = { 0 }, bl = { 0 };
	struct obj_block_data d;
	const struct obj_index *ci;
	const struct obj_stream *st;
	struct obj_batch bt;
	struct sl_rd it;
	uint8_t want[1500];
	uint32_t b, k;
	int i, r, first = -1;

	setup(0, 0, 0);
	build_mixed(&o, OBJ_COMP_ZSTD, 11);
	st = ostream(&o, 1);
	T_CHECK(st->nblocks > 2);
	T_CHECK(rcache_index(C, o.key) == NULL);
	T_EQ(rcache_block(C, o.key, st->block0, &d), SL_E_AGAIN);

	load_sync(&o, 1, INT64_MAX, 0, &ix);
	T_EQ(stats().gets, 1);			/* the tail, holding the index; no block */
	ci = rcache_index(C, o.key);
	T_CHECK(ci != NULL);
	if (!ci)
		goto out;
	T_EQ(ci->nblocks, o.ix.nblocks);
	T_EQ(ci->nstreams, o.ix.nstreams);
	for (b = 0; b < ci->nblocks && b < o.ix.nblocks; b++) {
		T_EQ(ci->blocks[b].first, o.ix.blocks[b].first);
		T_EQ(ci->blocks[b].max_ts, o.ix.blocks[b].max_ts);
		T_EQ(rcache_block(C, o.key, b, &d), SL_E_AGAIN);
	}
	T_EQ(rcache_block(C, o.key, ci->nblocks, &d), SL_E_INVALID);

	/* The stream's second block: its batches are the model's, with their times. */
	b = st->block0 + 1;
	load_sync(&o, 1, o.ix.blocks[b].first, 1, &bl);
	T_EQ(rcache_block(C, o.key, b, &d), 0);
	T_EQ(d.len, o.ix.blocks[b].raw);
	T_CHECK(d.owned == NULL);
	for (i = 0; i < o.n && first < 0; i++)
		if (o.b[i].s == 1 && o.b[i].base == o.ix.blocks[b].first)
			first = i;
	T_CHECK(first >= 0);
	obj_batch_iter(&it, &d);
	for (k = 0; first >= 0 && (r = obj_batch_next(&it, &bt)) == 1; k++) {
		const struct tb *m = &o.b[first + (int)k];

		T_EQ(bt.base, m->base);
		T_EQ(bt.count, m->count);
		T_EQ(bt.max_ts, 1700000000000 + first + (int)k);
		T_EQ(bt.bytes.len, m->len);
		if (bt.bytes.len == m->len) {
			fill(m, want);
			T_MEMEQ(bt.bytes.p, want, m->len);
		}
	}
	T_EQ(k, o.ix.blocks[b].batches);
	/* Still pinned: kept, whatever the cap. */
	spin();
	T_EQ(rcache_block(C, o.key, b, &d), 0);
	unpin(&bl);
	unpin(&ix);
	spin();
	T_CHECK(rcache_index(C, o.key) == NULL);
	T_EQ(rcache_block(C, o.key, b, &d), SL_E_AGAIN);
out:
	tobj_free(&o);
	teardown();
}

int main(void)
{
	log_set_level(getenv("RCACHE_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	T_RUN(test_invalid);
	T_RUN(test_basic_zstd);
	T_RUN(test_basic_none);
	T_RUN(test_limits);
	T_RUN(test_index_second_get);
	T_RUN(test_readahead);
	T_RUN(test_coalesce);
	T_RUN(test_lru);
	T_RUN(test_cap_zero);
	T_RUN(test_unpin_early);
	T_RUN(test_prefetch);
	T_RUN(test_missing);
	T_RUN(test_corrupt);
	T_RUN(test_wrong_size);
	T_RUN(test_damage_sweep);
	T_RUN(test_free_busy);
	T_RUN(test_accessors);
	return t_done();
}
