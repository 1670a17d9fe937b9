/*
 * test_object.c - data objects (storage/object.h): round trips of many
 * streams and batches with both compressions, block cutting at its exact
 * boundaries, the lookups by offset and time at every boundary, the byte
 * ranges to fetch, refused input to the writer, object names, and damage:
 * every truncation and every flipped bit of a whole object, every
 * truncation of a block, and indexes and blocks that are inconsistent but
 * carry correct checksums, which must all give SL_E_CORRUPT or SL_E_SHORT.
 *
 * Each batch of a test object is described by a struct mb; its bytes are
 * made from its seed, so expected contents are regenerated rather than
 * stored.  Half the batches are text-like (zstd shrinks them), half random
 * (zstd does not, and the block is kept raw).
 *
 * Run as `test_object --write DIR` it instead writes sample objects under
 * DIR, laid out as in a bucket (DIR/data/...), and DIR/expect.txt listing
 * what each holds, for tests/integration/test_object_reader.py to check
 * with the independent reader tests/s3/objreader.py.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "tests/unit/t.h"
#include "storage/object.h"
#include "kernel/config.h"
#include "kernel/crc32c.h"

/* ---- test data ---- */

struct mb {
	int s;			/* stream number (ids from sid()) */
	int64_t base;
	uint32_t count;
	int64_t max_ts;
	size_t len;
	uint64_t seed;
	int random;		/* random bytes, else text-like */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static uint64_t rnd(uint64_t n)
{
	return next(&rng) % n;
}

/* Stream number k: namespaces differ in their last byte, several indexes each. */
static struct stream_id sid(int k)
{
	struct stream_id id;

	memset(&id, 0, sizeof(id));
	memset(id.ns, 0xa5, sizeof(id.ns));
	id.ns[15] = (uint8_t)(k / 4);
	id.index = k % 4;
	return id;
}

/* splitmix64: unlike xorshift, streams from nearby seeds do not overlap. */
static uint64_t mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(const struct mb *b, uint8_t *p)
{
	static const char words[] = "kafka batch record offset stream sluice object ";
	uint64_t x = b->seed;
	size_t i;

	for (i = 0; i < b->len; i++)
		p[i] = b->random ? (uint8_t)mix(&x) : (uint8_t)words[(i + b->seed) % (sizeof(words) - 1)];
}

struct model {
	struct mb *b;
	int n, cap;
};

/* Append a batch of stream s after the previous one (gap extra offsets later). */
static void push(struct model *m, int s, uint32_t count, size_t len, int random, int64_t gap)
{
	struct mb *b;
	int64_t base = 0;
	int i;

	for (i = m->n - 1; i >= 0; i--)
		if (m->b[i].s == s) {
			base = m->b[i].base + m->b[i].count;
			break;
		}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->b = realloc(m->b, (size_t)m->cap * sizeof(*m->b));
		if (!m->b)
			abort();
	}
	b = &m->b[m->n++];
	b->s = s;
	b->base = base + gap;
	b->count = count;
	b->max_ts = 1700000000000 + (int64_t)rnd(100000) - 50000;
	b->len = len;
	b->seed = next(&rng);
	b->random = random;
}

static int add(struct obj_writer *w, const struct mb *b)
{
	uint8_t *p = malloc(b->len ? b->len : 1);
	struct stream_id id = sid(b->s);
	int err;

	if (!p)
		abort();
	fill(b, p);
	err = obj_writer_add(w, &id, b->base, b->count, b->max_ts, p, b->len);
	free(p);
	return err;
}

static uint8_t *build(const struct model *m, enum obj_comp comp, uint32_t target, size_t *len)
{
	struct obj_writer_opts o = { comp, 0, target };
	struct obj_meta meta = { 7, 3, 42, 0x0123456789abcdefull, 1700000000123 };
	struct obj_writer w;
	uint8_t *obj = NULL;
	int i;

	T_EQ(obj_writer_init(&w, &o), 0);
	for (i = 0; i < m->n; i++)
		T_EQ(add(&w, &m->b[i]), 0);
	T_EQ(obj_writer_batches(&w), m->n);
	if (comp == OBJ_COMP_NONE) {
		size_t est = obj_writer_bytes(&w);

		T_EQ(obj_writer_finish(&w, &meta, &obj, len), 0);
		T_EQ(*len, est);	/* exact when nothing is compressed */
	} else {
		size_t est = obj_writer_bytes(&w);

		T_EQ(obj_writer_finish(&w, &meta, &obj, len), 0);
		T_CHECK(*len <= est);
	}
	obj_writer_free(&w);
	return obj;
}

/* A model of nstreams streams with random batches; text and random mixed. */
static void random_model(struct model *m, int nstreams, int maxbatches, size_t maxlen)
{
	int s, i, n;

	for (s = 0; s < nstreams; s++) {
		n = 1 + (int)rnd((uint64_t)maxbatches);
		for (i = 0; i < n; i++) {
			/* One draw per statement: argument order would differ between compilers. */
			uint32_t count = 1 + (uint32_t)rnd(50);
			size_t len = rnd(maxlen + 1);
			int noise = (int)rnd(2);
			int64_t gap = rnd(5) == 0 ? (int64_t)rnd(10) : 0;

			push(m, s * 3 + (int)(s % 2), count, len, noise, gap);
		}
	}
}

/*
 * Check a parsed object against the model: streams, their summaries, every
 * block decoded, every batch's numbers and bytes, block cutting.
 */
static void check_object(const struct model *m, const uint8_t *obj, size_t len, uint32_t target,
			 enum obj_comp comp)
{
	struct obj_footer f;
	struct obj_index ix;
	int i = 0, s;
	uint32_t b;

	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_EQ(f.meta.node, 7);
	T_EQ(f.meta.epoch, 3);
	T_EQ(f.meta.seq, 42);
	T_CHECK(f.meta.nonce == 0x0123456789abcdefull);
	T_EQ(f.meta.created_ms, 1700000000123);
	for (s = 0; s < (int)ix.nstreams; s++) {
		const struct obj_stream *st = &ix.streams[s];
		struct stream_id id;
		int64_t mx = INT64_MIN;
		uint32_t nb = 0;
		int j;

		T_CHECK(i < m->n);
		if (i >= m->n)
			break;
		id = sid(m->b[i].s);
		T_MEMEQ(&st->id, &id, sizeof(id));
		T_EQ(obj_find_stream(&ix, &id), s);
		T_EQ(st->first, m->b[i].base);
		for (j = i; j < m->n && m->b[j].s == m->b[i].s; j++) {
			if (m->b[j].max_ts > mx)
				mx = m->b[j].max_ts;
			nb++;
		}
		T_EQ(st->last, m->b[j - 1].base + m->b[j - 1].count - 1);
		T_EQ(st->max_ts, mx);
		T_EQ(st->batches, nb);
		for (b = st->block0; b < st->block0 + st->nblocks; b++) {
			const struct obj_block *bl = &ix.blocks[b];
			struct obj_block_data d;
			struct obj_batch x;
			struct sl_rd it;
			int rc;

			T_EQ(bl->stream, s);
			T_CHECK(bl->raw <= target || bl->batches == 1);
			if (comp == OBJ_COMP_NONE)
				T_EQ(bl->comp, OBJ_COMP_NONE);
			if (bl->comp == OBJ_COMP_ZSTD)
				T_CHECK(bl->stored < bl->raw);
			T_EQ(obj_block_decode(bl, obj + bl->pos, bl->stored, bl->raw, &d), 0);
			obj_batch_iter(&it, &d);
			while ((rc = obj_batch_next(&it, &x)) == 1) {
				uint8_t *want;

				T_CHECK(i < m->n);
				if (i >= m->n)
					break;
				T_EQ(x.base, m->b[i].base);
				T_EQ(x.count, m->b[i].count);
				T_EQ(x.max_ts, m->b[i].max_ts);
				T_EQ(x.bytes.len, m->b[i].len);
				want = malloc(m->b[i].len + 1);
				fill(&m->b[i], want);
				if (x.bytes.len == m->b[i].len)
					T_MEMEQ(x.bytes.p, want, x.bytes.len);
				free(want);
				i++;
			}
			T_EQ(rc, 0);
			/* Greedy cutting: the next block's first batch would not have fit. */
			if (b + 1 < st->block0 + st->nblocks && i < m->n)
				T_CHECK(bl->raw + OBJ_BATCH_HDR_LEN + m->b[i].len > target);
			obj_block_data_free(&d);
		}
	}
	T_EQ(i, m->n);
	obj_index_free(&ix);
}

/* ---- round trips ---- */

static void test_empty(void)
{
	struct obj_meta meta = { 0, 0, 0, 0, 0 };
	struct obj_writer w;
	struct obj_footer f;
	struct obj_index ix;
	struct stream_id id = sid(0);
	uint8_t *obj;
	size_t len;

	T_EQ(obj_writer_init(&w, NULL), 0);
	T_EQ(obj_writer_finish(&w, &meta, &obj, &len), 0);
	obj_writer_free(&w);
	T_EQ(len, OBJ_HEADER_LEN + OBJ_INDEX_HDR_LEN + OBJ_FOOTER_LEN);
	T_MEMEQ(obj, "SLUICOBJ", 8);
	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_EQ(ix.nstreams, 0);
	T_EQ(ix.nblocks, 0);
	T_EQ(f.index_off, OBJ_HEADER_LEN);
	T_EQ(obj_find_stream(&ix, &id), SL_E_NOTFOUND);
	T_EQ(obj_find_block(&ix, 0, 0), SL_E_INVALID);
	obj_index_free(&ix);
	free(obj);
}

static void test_roundtrip(void)
{
	static const uint32_t targets[] = { 1, 300, 4096, OBJ_TARGET_DEFAULT };
	struct model m = { 0 };
	size_t k, len;
	int comp;

	random_model(&m, 60, 40, 2000);
	for (comp = OBJ_COMP_NONE; comp <= OBJ_COMP_ZSTD; comp++)
		for (k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
			uint8_t *obj = build(&m, (enum obj_comp)comp, targets[k], &len);

			check_object(&m, obj, len, targets[k], (enum obj_comp)comp);
			free(obj);
		}
	free(m.b);
}

/* zstd shrinks text and is skipped for random bytes; both read back. */
static void test_compression_choice(void)
{
	struct model m = { 0 };
	struct obj_footer f;
	struct obj_index ix;
	size_t len, rawlen;
	uint8_t *obj, *raw;
	int i;

	for (i = 0; i < 20; i++)
		push(&m, 0, 1, 3000, 0, 0);	/* text: one zstd block */
	for (i = 0; i < 20; i++)
		push(&m, 1, 1, 3000, 1, 0);	/* random: kept raw */
	obj = build(&m, OBJ_COMP_ZSTD, OBJ_TARGET_DEFAULT, &len);
	raw = build(&m, OBJ_COMP_NONE, OBJ_TARGET_DEFAULT, &rawlen);
	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_EQ(ix.nblocks, 2);
	if (ix.nblocks == 2) {
		T_EQ(ix.blocks[0].comp, OBJ_COMP_ZSTD);
		T_CHECK(ix.blocks[0].stored * 10 < ix.blocks[0].raw);
		T_EQ(ix.blocks[1].comp, OBJ_COMP_NONE);
		T_EQ(ix.blocks[1].stored, ix.blocks[1].raw);
	}
	T_CHECK(len < rawlen);
	obj_index_free(&ix);
	check_object(&m, obj, len, OBJ_TARGET_DEFAULT, OBJ_COMP_ZSTD);
	check_object(&m, raw, rawlen, OBJ_TARGET_DEFAULT, OBJ_COMP_NONE);
	free(obj);
	free(raw);
	free(m.b);
}

/* Blocks are cut exactly when the next batch would pass the target. */
static void test_block_cut(void)
{
	struct model m = { 0 };
	struct obj_footer f;
	struct obj_index ix;
	uint8_t *obj;
	size_t len;
	uint32_t t = 1000;

	/* Two entries of exactly t/2 bytes fill a block to the byte: one block. */
	push(&m, 0, 1, t / 2 - OBJ_BATCH_HDR_LEN, 0, 0);
	push(&m, 0, 1, t / 2 - OBJ_BATCH_HDR_LEN, 0, 0);
	/* One more byte than fits: a new block. */
	push(&m, 1, 1, t / 2 - OBJ_BATCH_HDR_LEN, 0, 0);
	push(&m, 1, 1, t / 2 - OBJ_BATCH_HDR_LEN + 1, 0, 0);
	/* A batch larger than the target: a block of its own, between others. */
	push(&m, 2, 1, 10, 0, 0);
	push(&m, 2, 1, 3 * t, 0, 0);
	push(&m, 2, 1, 10, 0, 0);
	/* A new stream always starts a new block, however small. */
	push(&m, 3, 1, 1, 0, 0);
	push(&m, 4, 1, 0, 0, 0);
	obj = build(&m, OBJ_COMP_NONE, t, &len);
	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_EQ(ix.nstreams, 5);
	T_EQ(ix.nblocks, 1 + 2 + 3 + 1 + 1);
	if (ix.nblocks == 8) {
		T_EQ(ix.blocks[0].raw, t);
		T_EQ(ix.blocks[0].batches, 2);
		T_EQ(ix.blocks[1].batches, 1);
		T_EQ(ix.blocks[2].batches, 1);
		T_EQ(ix.blocks[4].raw, 3 * t + OBJ_BATCH_HDR_LEN);
		T_EQ(ix.blocks[4].batches, 1);
		T_EQ(ix.blocks[7].raw, OBJ_BATCH_HDR_LEN);
		T_EQ(ix.streams[2].block0, 3);
		T_EQ(ix.streams[2].nblocks, 3);
	}
	obj_index_free(&ix);
	check_object(&m, obj, len, t, OBJ_COMP_NONE);
	free(obj);
	free(m.b);
}

/* ---- lookups ---- */

/* Every offset around every boundary of a stream with gaps finds the right block. */
static void test_lookup(void)
{
	struct model m = { 0 };
	struct obj_footer f;
	struct obj_index ix;
	struct stream_id other = sid(99);
	uint8_t *obj;
	size_t len;
	int s, i;
	int64_t o;

	push(&m, 0, 5, 100, 0, 0);
	push(&m, 1, 1, 100, 0, 1000);		/* stream 1 starts at 1000 */
	for (i = 0; i < 30; i++) {
		uint32_t count = 1 + (uint32_t)rnd(7);

		push(&m, 1, count, 200, 0, rnd(3) == 0 ? 1 + (int64_t)rnd(4) : 0);
	}
	push(&m, 2, 1, 100, 0, 0);
	m.b[5].max_ts = 5;			/* timestamps going backwards */
	m.b[9].max_ts = 1800000000000;
	obj = build(&m, OBJ_COMP_ZSTD, 600, &len);
	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_EQ(obj_find_stream(&ix, &other), SL_E_NOTFOUND);
	s = obj_find_stream(&ix, &(struct stream_id){ 0 });
	T_EQ(s, SL_E_NOTFOUND);
	s = obj_find_stream(&ix, &(struct stream_id){ .ns = { 0 }, .index = 1 });
	T_EQ(s, SL_E_NOTFOUND);
	{
		struct stream_id id1 = sid(1);

		s = obj_find_stream(&ix, &id1);
	}
	T_EQ(s, 1);
	if (s == 1) {
		const struct obj_stream *st = &ix.streams[1];
		uint32_t b;

		T_CHECK(st->nblocks > 3);
		T_EQ(st->first, 1000);
		for (o = st->first - 3; o <= st->last + 3; o++) {
			int want = SL_E_NOTFOUND;

			/* The block holding o, or the first after it: by linear scan. */
			for (b = st->block0; b < st->block0 + st->nblocks; b++)
				if (ix.blocks[b].last >= o) {
					want = (int)b;
					break;
				}
			T_EQ(obj_find_block(&ix, 1, o), want);
			if (o >= st->first && o <= st->last && want >= 0)
				T_CHECK(o <= ix.blocks[want].last &&
					(o >= ix.blocks[want].first ||
					 (want > (int)st->block0 && o > ix.blocks[want - 1].last)));
		}
		T_EQ(obj_find_block(&ix, 1, INT64_MIN), st->block0);
		T_EQ(obj_find_block(&ix, 1, INT64_MAX), SL_E_NOTFOUND);
		T_EQ(obj_find_block(&ix, 1, st->first), st->block0);
		T_EQ(obj_find_block(&ix, 1, st->last), st->block0 + st->nblocks - 1);
		/* The boundary between each pair of blocks. */
		for (b = st->block0; b + 1 < st->block0 + st->nblocks; b++) {
			T_EQ(obj_find_block(&ix, 1, ix.blocks[b].last), b);
			T_EQ(obj_find_block(&ix, 1, ix.blocks[b].last + 1), b + 1);
			T_EQ(obj_find_block(&ix, 1, ix.blocks[b + 1].first), b + 1);
		}
		/* By time: the first block whose max timestamp reaches ts. */
		T_EQ(obj_find_time(&ix, 1, INT64_MIN), st->block0);
		T_EQ(obj_find_time(&ix, 1, st->max_ts), obj_find_block(&ix, 1, m.b[9].base));
		T_EQ(obj_find_time(&ix, 1, st->max_ts + 1), SL_E_NOTFOUND);
		for (b = st->block0; b < st->block0 + st->nblocks; b++) {
			int r = obj_find_time(&ix, 1, ix.blocks[b].max_ts);

			T_CHECK(r >= (int)st->block0 && r <= (int)b);
			if (r >= 0)
				T_CHECK(ix.blocks[r].max_ts >= ix.blocks[b].max_ts);
		}
	}
	T_EQ(obj_find_block(&ix, 3, 0), SL_E_INVALID);
	T_EQ(obj_find_time(&ix, 3, 0), SL_E_INVALID);
	T_EQ(obj_find_block(&ix, 0, 4), 0);
	T_EQ(obj_find_block(&ix, 0, 5), SL_E_NOTFOUND);
	obj_index_free(&ix);
	free(obj);
	free(m.b);
}

/* The byte range for a read: adjacent blocks of one stream, within a budget. */
static void test_range(void)
{
	struct model m = { 0 };
	struct obj_footer f;
	struct obj_index ix;
	uint64_t pos, n;
	uint8_t *obj;
	size_t len;
	uint32_t k, b, s1;
	int i;

	for (i = 0; i < 4; i++)
		push(&m, 0, 1, 1000, 1, 0);
	for (i = 0; i < 4; i++)
		push(&m, 1, 1, 1000, 1, 0);
	obj = build(&m, OBJ_COMP_NONE, 1024, &len);	/* one batch per block */
	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_EQ(ix.nblocks, 8);
	if (ix.nblocks == 8) {
		uint32_t bs = ix.blocks[0].stored;

		T_EQ(obj_range(&ix, 0, 0, &pos, &n), 1);	/* always one */
		T_EQ(pos, OBJ_HEADER_LEN);
		T_EQ(n, bs);
		T_EQ(obj_range(&ix, 0, 2 * bs, &pos, &n), 2);
		T_EQ(n, 2 * bs);
		T_EQ(obj_range(&ix, 0, 2 * bs + 1, &pos, &n), 2);
		T_EQ(obj_range(&ix, 0, 3 * bs - 1, &pos, &n), 2);
		T_EQ(obj_range(&ix, 1, UINT64_MAX, &pos, &n), 3);	/* stops at the stream's end */
		T_EQ(pos, ix.blocks[1].pos);
		T_EQ(n, 3 * bs);
		T_EQ(obj_range(&ix, 3, UINT64_MAX, &pos, &n), 1);
		s1 = ix.streams[1].block0;
		k = obj_range(&ix, s1, UINT64_MAX, &pos, &n);
		T_EQ(k, 4);
		/* The range holds exactly the blocks' bytes. */
		for (b = s1; b < s1 + k; b++) {
			struct obj_block_data d;

			T_EQ(obj_block_decode(&ix.blocks[b], obj + pos + (ix.blocks[b].pos - pos),
					      ix.blocks[b].stored, SIZE_MAX, &d), 0);
			obj_block_data_free(&d);
		}
		T_EQ(pos + n, f.index_off);
	}
	obj_index_free(&ix);
	free(obj);
	free(m.b);
}

/* ---- the writer refuses ---- */

static void test_writer_refuses(void)
{
	struct obj_writer_opts bad[] = {
		{ 2, 0, 0 }, { OBJ_COMP_ZSTD, 0, OBJ_TARGET_MAX + 1 }, { OBJ_COMP_ZSTD, 1000, 0 },
	};
	struct obj_meta meta = { 1, 1, 1, 1, 1 }, badmeta = { -1, 1, 1, 1, 1 };
	struct obj_writer w, w2;
	struct stream_id a = sid(4), b = sid(5), c = sid(6), neg = sid(4);
	uint8_t x[8] = "batch!!", *o1, *o2;
	size_t l1, l2, k;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		T_EQ(obj_writer_init(&w, &bad[k]), SL_E_INVALID);
		T_EQ(obj_writer_add(&w, &a, 0, 1, 0, x, 1), SL_E_INVALID);
		obj_writer_free(&w);
	}
	neg.index = -1;
	T_EQ(obj_writer_init(&w, NULL), 0);
	T_EQ(obj_writer_init(&w2, NULL), 0);
	T_EQ(obj_writer_add(&w, &b, 10, 5, 0, x, 8), 0);			/* 10..14 */
	T_EQ(obj_writer_add(&w2, &b, 10, 5, 0, x, 8), 0);
	T_EQ(obj_writer_add(&w, &a, 0, 1, 0, x, 8), SL_E_INVALID);		/* a sorts before b */
	T_EQ(obj_writer_add(&w, &b, 14, 1, 0, x, 8), SL_E_INVALID);		/* overlaps */
	T_EQ(obj_writer_add(&w, &b, 9, 1, 0, x, 8), SL_E_INVALID);		/* goes back */
	T_EQ(obj_writer_add(&w, &b, 15, 0, 0, x, 8), SL_E_INVALID);		/* no offsets */
	T_EQ(obj_writer_add(&w, &c, -1, 1, 0, x, 8), SL_E_INVALID);		/* negative */
	T_EQ(obj_writer_add(&w, &c, INT64_MAX, 1, 0, x, 8), SL_E_INVALID);	/* last + 1 overflows */
	T_EQ(obj_writer_add(&w, &c, INT64_MAX - 10, 11, 0, x, 8), SL_E_INVALID);
	T_EQ(obj_writer_add(&w, &neg, 0, 1, 0, x, 8), SL_E_INVALID);
	T_EQ(obj_writer_add(&w, &c, 0, 1, 0, x, (size_t)OBJ_BATCH_MAX + 1), SL_E_TOOBIG);
	T_EQ(obj_writer_add(&w, &b, 15, 1, 0, x, 8), 0);			/* still usable */
	T_EQ(obj_writer_add(&w2, &b, 15, 1, 0, x, 8), 0);
	T_EQ(obj_writer_add(&w, &c, INT64_MAX - 10, 10, -5, x, 8), 0);	/* last = INT64_MAX - 1 */
	T_EQ(obj_writer_add(&w2, &c, INT64_MAX - 10, 10, -5, x, 8), 0);
	T_EQ(obj_writer_add(&w, &b, 16, 1, 0, x, 8), SL_E_INVALID);		/* b again after c */
	T_EQ(obj_writer_finish(&w, &badmeta, &o1, &l1), SL_E_INVALID);
	T_CHECK(o1 == NULL);
	T_EQ(obj_writer_finish(&w, &meta, &o1, &l1), SL_E_INVALID);		/* spent */
	obj_writer_free(&w);
	T_EQ(obj_writer_init(&w, NULL), 0);
	T_EQ(obj_writer_add(&w, &b, 10, 5, 0, x, 8), 0);
	T_EQ(obj_writer_add(&w, &b, 15, 1, 0, x, 8), 0);
	T_EQ(obj_writer_add(&w, &c, INT64_MAX - 10, 10, -5, x, 8), 0);
	T_EQ(obj_writer_finish(&w, &meta, &o1, &l1), 0);
	T_EQ(obj_writer_finish(&w, &meta, &o2, &l2), SL_E_CLOSED);
	T_EQ(obj_writer_add(&w, &c, 0, 1, 0, x, 8), SL_E_CLOSED);
	T_EQ(obj_writer_finish(&w2, &meta, &o2, &l2), 0);
	/* The refused batches left no trace. */
	T_EQ(l1, l2);
	if (l1 == l2)
		T_MEMEQ(o1, o2, l1);
	{
		struct obj_footer f;
		struct obj_index ix;

		T_EQ(obj_parse(o1, l1, &f, &ix), 0);
		T_EQ(ix.nstreams, 2);
		if (ix.nstreams == 2) {
			T_EQ(ix.streams[1].last, INT64_MAX - 1);
			T_EQ(ix.streams[1].max_ts, -5);
			T_EQ(ix.streams[0].first, 10);
			T_EQ(ix.streams[0].last, 15);
		}
		obj_index_free(&ix);
	}
	free(o1);
	free(o2);
	obj_writer_free(&w);
	obj_writer_free(&w2);
}

/* ---- damage ---- */

/* Parse and decode everything: 0 only if the whole object is sound. */
static int read_all(const uint8_t *obj, size_t len)
{
	struct obj_footer f;
	struct obj_index ix;
	uint32_t b;
	int err;

	if ((err = obj_parse(obj, len, &f, &ix)))
		return err;
	for (b = 0; b < ix.nblocks && !err; b++) {
		struct obj_block_data d;
		struct obj_batch x;
		struct sl_rd it;
		int rc;

		err = obj_block_decode(&ix.blocks[b], obj + ix.blocks[b].pos, ix.blocks[b].stored,
				       OBJ_BLOCK_MAX, &d);
		if (err)
			break;
		obj_batch_iter(&it, &d);
		while ((rc = obj_batch_next(&it, &x)) == 1)
			;
		if (rc != 0)
			err = -1;	/* a decoded block must always iterate */
		obj_block_data_free(&d);
	}
	obj_index_free(&ix);
	return err;
}

static uint8_t *small_object(enum obj_comp comp, size_t *len)
{
	struct model m = { 0 };
	uint8_t *obj;
	int i;

	for (i = 0; i < 12; i++) {
		uint32_t count = 1 + (uint32_t)rnd(3);

		push(&m, i / 4, count, 40 + rnd(60), i % 2, 0);
	}
	obj = build(&m, comp, 150, len);
	free(m.b);
	return obj;
}

/* Every truncation, and every flipped bit, of a whole object is caught. */
static void test_damage_object(void)
{
	int comp;

	for (comp = OBJ_COMP_NONE; comp <= OBJ_COMP_ZSTD; comp++) {
		size_t len, k, bad_trunc = 0, bad_flip = 0;
		uint8_t *obj = small_object((enum obj_comp)comp, &len), *cp;
		int bit, err;

		T_EQ(read_all(obj, len), 0);
		for (k = 0; k < len; k++) {
			cp = malloc(k ? k : 1);
			memcpy(cp, obj, k);
			err = read_all(cp, k);
			if (err != SL_E_CORRUPT && err != SL_E_SHORT)
				bad_trunc++;
			free(cp);
		}
		T_EQ(bad_trunc, 0);
		cp = malloc(len);
		for (k = 0; k < len; k++)
			for (bit = 0; bit < 8; bit++) {
				memcpy(cp, obj, len);
				cp[k] ^= (uint8_t)(1u << bit);
				err = read_all(cp, len);
				if (err != SL_E_CORRUPT) {
					if (!bad_flip)
						fprintf(stderr, "  byte %zu bit %d: %d\n", k, bit, err);
					bad_flip++;
				}
			}
		T_EQ(bad_flip, 0);
		/* Random bytes overwritten, a run at a time. */
		for (k = 0; k < 2000; k++) {
			size_t at = rnd(len), n = 1 + rnd(8), j;

			memcpy(cp, obj, len);
			for (j = at; j < at + n && j < len; j++)
				cp[j] = (uint8_t)rnd(256);
			err = read_all(cp, len);
			if (memcmp(cp, obj, len) != 0 && err != SL_E_CORRUPT)
				bad_flip++;
		}
		T_EQ(bad_flip, 0);
		free(cp);
		free(obj);
	}
}

/* The footer alone: short tails, every byte's damage, sizes that do not fit. */
static void test_damage_footer(void)
{
	struct obj_footer f;
	size_t len, k;
	uint8_t *obj = small_object(OBJ_COMP_ZSTD, &len), *t;
	struct span sp;

	T_EQ(obj_footer_parse(obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, len, &f), 0);
	T_EQ(obj_tail_index(&f, obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, &sp), 0);
	T_EQ(obj_tail_index(&f, obj, len, &sp), 1);
	T_CHECK(sp.p == obj + f.index_off && sp.len == f.index_len);
	T_EQ(obj_tail_index(&f, obj + f.index_off, len - f.index_off, &sp), 1);
	T_EQ(obj_tail_index(&f, obj + f.index_off + 1, len - f.index_off - 1, &sp), 0);
	for (k = 0; k < OBJ_FOOTER_LEN; k++)
		T_EQ(obj_footer_parse(obj + len - k, k, len, &f), SL_E_SHORT);
	T_EQ(obj_footer_parse(obj, len, len - 1, &f), SL_E_INVALID);	/* tail longer than the object */
	T_EQ(obj_footer_parse(obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, len + 1, &f), SL_E_CORRUPT);
	T_EQ(obj_footer_parse(obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, len - 1, &f), SL_E_CORRUPT);
	T_EQ(obj_footer_parse(obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, &f),
	     SL_E_CORRUPT);
	t = malloc(OBJ_FOOTER_LEN);
	for (k = 0; k < OBJ_FOOTER_LEN * 8; k++) {
		memcpy(t, obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN);
		t[k / 8] ^= (uint8_t)(1u << (k % 8));
		T_EQ(obj_footer_parse(t, OBJ_FOOTER_LEN, len, &f), SL_E_CORRUPT);
	}
	/* A whole footer of another version: refused as unknown, not as damage. */
	memcpy(t, obj + len - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN);
	sl_store_be32(t + 20, 2u << 16);
	sl_store_be32(t + 56, crc32c(0, t, 56));
	T_EQ(obj_footer_parse(t, OBJ_FOOTER_LEN, len, &f), SL_E_INVALID);
	sl_store_be32(t + 20, 1u << 16 | 1);	/* flags */
	sl_store_be32(t + 56, crc32c(0, t, 56));
	T_EQ(obj_footer_parse(t, OBJ_FOOTER_LEN, len, &f), SL_E_INVALID);
	sl_store_be32(t + 20, 1u << 16);
	sl_store_be32(t + 16, 0x80000000u);	/* negative node */
	sl_store_be32(t + 56, crc32c(0, t, 56));
	T_EQ(obj_footer_parse(t, OBJ_FOOTER_LEN, len, &f), SL_E_CORRUPT);
	free(t);
	free(obj);
}

/* Recompute the index CRC and the footer CRC after editing the index. */
static void reseal(uint8_t *obj, size_t len)
{
	uint8_t *ft = obj + len - OBJ_FOOTER_LEN;
	uint64_t off = sl_load_be64(ft);
	uint32_t n = sl_load_be32(ft + 8);

	sl_store_be32(ft + 12, crc32c(0, obj + off, n));
	sl_store_be32(ft + 56, crc32c(0, ft, 56));
}

/* Indexes with the right checksums but wrong contents. */
static void test_damage_index(void)
{
	struct model m = { 0 };
	struct obj_footer f;
	struct obj_index ix;
	size_t len, k;
	uint8_t *obj, *cp, *ib, *s0, *s1, *b0, *b1;
	int i, bad = 0;

	for (i = 0; i < 6; i++)
		push(&m, 0, 2, 300, 0, 0);
	for (i = 0; i < 6; i++)
		push(&m, 1, 2, 300, 1, 0);
	obj = build(&m, OBJ_COMP_ZSTD, 700, &len);
	cp = malloc(len);
	T_EQ(obj_parse(obj, len, &f, &ix), 0);
	T_CHECK(ix.nstreams == 2 && ix.streams[0].nblocks >= 2 && ix.streams[1].nblocks >= 2);
	obj_index_free(&ix);
	ib = cp + f.index_off;
	s0 = ib + OBJ_INDEX_HDR_LEN;
	s1 = s0 + OBJ_STREAM_ENTRY_LEN;
	b0 = s1 + OBJ_STREAM_ENTRY_LEN;
	b1 = b0 + OBJ_BLOCK_ENTRY_LEN;

#define EDIT(stmt) do { memcpy(cp, obj, len); stmt; reseal(cp, len); \
	T_EQ(obj_parse(cp, len, &f, &ix), SL_E_CORRUPT); obj_index_free(&ix); } while (0)
	EDIT(sl_store_be32(ib, 3));				/* stream count */
	EDIT(sl_store_be32(ib + 4, sl_load_be32(ib + 4) + 1));	/* block count */
	EDIT(sl_store_be32(ib, 0));
	EDIT({ uint8_t t[52]; memcpy(t, s0, 52); memcpy(s0, s1, 52); memcpy(s1, t, 52); });
	EDIT(memcpy(s1, s0, 20));				/* same id twice */
	EDIT(sl_store_be32(s0 + 16, 0xffffffffu));		/* negative index */
	EDIT(sl_store_be32(s0 + 20, 0));			/* no blocks */
	EDIT(sl_store_be32(s0 + 20, sl_load_be32(s0 + 20) + 1));
	EDIT(sl_store_be64(s0 + 24, sl_load_be64(s0 + 24) + 1));	/* first */
	EDIT(sl_store_be64(s0 + 24, (uint64_t)-1));
	EDIT(sl_store_be64(s0 + 32, sl_load_be64(s0 + 32) - 1));	/* last */
	EDIT(sl_store_be64(s1 + 32, (uint64_t)INT64_MAX));
	EDIT(sl_store_be64(s0 + 40, sl_load_be64(s0 + 40) + 1));	/* max ts */
	EDIT(sl_store_be32(s0 + 48, sl_load_be32(s0 + 48) + 1));	/* batches */
	EDIT(sl_store_be64(b0 + 0, sl_load_be64(b0 + 0) + 1));	/* block first */
	EDIT(sl_store_be64(b0 + 8, sl_load_be64(b1 + 0)));		/* overlaps the next */
	EDIT(sl_store_be64(b0 + 16, sl_load_be64(s0 + 40) + 1));	/* block max ts above the stream's */
	EDIT(sl_store_be64(b0 + 24, sl_load_be64(b0 + 24) + 1));	/* position */
	EDIT(sl_store_be32(b0 + 32, sl_load_be32(b0 + 32) + 1));	/* stored */
	EDIT(sl_store_be32(b0 + 36, 10));				/* raw below the headers */
	EDIT(sl_store_be32(b0 + 36, OBJ_BLOCK_MAX + 1));
	EDIT(sl_store_be32(b0 + 40, 0));				/* no batches */
	EDIT(sl_store_be32(b0 + 40, 1000));				/* more batches than offsets */
	EDIT(b0[48] = 2);						/* compression */
	EDIT(b0[49] = 1);						/* reserved */
	EDIT(b0[51] = 1);
	EDIT({ memcpy(b0, b1, 52); });				/* position no longer tiles */
#undef EDIT
	/* Resealing alone changes nothing. */
	memcpy(cp, obj, len);
	reseal(cp, len);
	T_EQ(obj_parse(cp, len, &f, &ix), 0);
	obj_index_free(&ix);

	/* Random edits of the index, resealed: never a crash; if accepted, consistent. */
	for (k = 0; k < 30000; k++) {
		size_t at = f.index_off + rnd(f.index_len), j, n = 1 + rnd(3);

		memcpy(cp, obj, len);
		for (j = 0; j < n; j++)
			cp[at + j < len - OBJ_FOOTER_LEN ? at + j : at] = (uint8_t)rnd(256);
		if (rnd(4) == 0)
			cp[at] = (uint8_t)(obj[at] + (rnd(2) ? 1 : -1));
		reseal(cp, len);
		i = obj_parse(cp, len, &f, &ix);
		if (i == 0) {
			uint32_t b;

			for (b = 0; b < ix.nblocks; b++) {
				struct obj_block_data d;
				int rc = obj_block_decode(&ix.blocks[b], cp + ix.blocks[b].pos,
							  ix.blocks[b].stored, OBJ_BLOCK_MAX, &d);

				if (rc != 0 && rc != SL_E_CORRUPT)
					bad++;
				obj_block_data_free(&d);
			}
			obj_index_free(&ix);
		} else if (i != SL_E_CORRUPT) {
			bad++;
		}
	}
	T_EQ(bad, 0);
	free(cp);
	free(obj);
	free(m.b);
}

/* Blocks: every truncation, flips, caps, and contents that disagree with the index. */
static void test_damage_block(void)
{
	struct model m = { 0 };
	struct obj_footer f;
	struct obj_index ix;
	struct obj_block_data d;
	struct obj_block b;
	size_t len, k;
	uint8_t *obj, *cp;
	int i, comp;

	for (comp = OBJ_COMP_NONE; comp <= OBJ_COMP_ZSTD; comp++) {
		m.n = 0;
		for (i = 0; i < 4; i++)
			push(&m, 0, 3, 200, 0, 0);
		obj = build(&m, (enum obj_comp)comp, OBJ_TARGET_DEFAULT, &len);
		T_EQ(obj_parse(obj, len, &f, &ix), 0);
		T_EQ(ix.nblocks, 1);
		b = ix.blocks[0];
		obj_index_free(&ix);
		T_EQ(b.comp, comp);
		cp = malloc(b.stored + 64);
		for (k = 0; k < b.stored; k++) {
			memcpy(cp, obj + b.pos, k);
			T_EQ(obj_block_decode(&b, cp, k, OBJ_BLOCK_MAX, &d), SL_E_SHORT);
		}
		memcpy(cp, obj + b.pos, b.stored);
		T_EQ(obj_block_decode(&b, cp, b.stored + 1, OBJ_BLOCK_MAX, &d), SL_E_INVALID);
		T_EQ(obj_block_decode(&b, cp, b.stored, b.raw - 1, &d), SL_E_TOOBIG);
		T_EQ(obj_block_decode(&b, cp, b.stored, b.raw, &d), 0);
		T_CHECK(comp == OBJ_COMP_NONE ? d.owned == NULL && d.p == cp : d.owned != NULL);
		obj_block_data_free(&d);
		for (k = 0; k < (size_t)b.stored * 8; k++) {
			memcpy(cp, obj + b.pos, b.stored);
			cp[k / 8] ^= (uint8_t)(1u << (k % 8));
			T_EQ(obj_block_decode(&b, cp, b.stored, OBJ_BLOCK_MAX, &d), SL_E_CORRUPT);
		}
		/* Right CRC, wrong numbers: each summary field of the entry. */
		memcpy(cp, obj + b.pos, b.stored);
#define TRY(stmt) do { struct obj_block e = b; stmt; \
	T_EQ(obj_block_decode(&e, cp, e.stored, OBJ_BLOCK_MAX, &d), SL_E_CORRUPT); } while (0)
		TRY(e.first++);
		TRY(e.first--);
		TRY(e.last++);
		TRY(e.max_ts++);
		TRY(e.batches++);
		TRY(e.batches--);
		TRY(e.comp = (uint8_t)(1 - comp));
		TRY(e.comp = 7);
		TRY(e.raw++);
		TRY(e.raw--);
#undef TRY
		free(cp);
		free(obj);
	}
	/* Raw blocks whose entries are malformed, each with a correct CRC. */
	{
		uint8_t raw[2 * OBJ_BATCH_HDR_LEN + 8];
		struct obj_block e;

#define BLOCK(b0, c0, l0, b1, c1, l1) do { \
	memset(raw, 0, sizeof(raw)); \
	sl_store_be64(raw, (uint64_t)(b0)); sl_store_be32(raw + 8, c0); sl_store_be32(raw + 20, l0); \
	sl_store_be64(raw + 28, (uint64_t)(b1)); sl_store_be32(raw + 36, c1); sl_store_be32(raw + 48, l1); \
	memset(&e, 0, sizeof(e)); e.first = 10; e.last = 12; e.batches = 2; e.max_ts = 0; \
	e.stored = e.raw = sizeof(raw); e.crc = crc32c(0, raw, sizeof(raw)); } while (0)
		BLOCK(10, 1, 4, 12, 1, 4);
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), 0);
		BLOCK(10, 1, 5, 12, 1, 4);		/* a length past the next header */
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
		BLOCK(10, 1, 4, 12, 1, 5);		/* past the end */
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
		BLOCK(10, 1, 4, 12, 1, 3);		/* short of the end */
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
		BLOCK(10, 3, 4, 12, 1, 4);		/* overlapping */
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
		BLOCK(10, 0, 4, 12, 1, 4);		/* no offsets */
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
		BLOCK(10, 1, 4, 12, 0xffffffffu, 4);	/* beyond the block's last */
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
		BLOCK(10, 1, 0xffffffffu, 12, 1, 4);
		T_EQ(obj_block_decode(&e, raw, sizeof(raw), sizeof(raw), &d), SL_E_CORRUPT);
#undef BLOCK
	}
	/* zstd: a second frame after the first, and a frame that states another size. */
	{
		uint8_t z[256], z2[256];
		size_t zn;
		struct obj_block e;
		struct obj_writer w;
		struct obj_meta meta = { 0, 0, 0, 0, 0 };
		struct stream_id id = sid(0);
		uint8_t *o;
		size_t ol;

		T_EQ(obj_writer_init(&w, NULL), 0);
		T_EQ(obj_writer_add(&w, &id, 0, 1, 0, (const uint8_t *)"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40), 0);
		T_EQ(obj_writer_finish(&w, &meta, &o, &ol), 0);
		obj_writer_free(&w);
		T_EQ(obj_parse(o, ol, &f, &ix), 0);
		e = ix.blocks[0];
		obj_index_free(&ix);
		T_EQ(e.comp, OBJ_COMP_ZSTD);
		zn = e.stored;
		T_CHECK(2 * zn <= sizeof(z2));
		memcpy(z, o + e.pos, zn);
		memcpy(z2, z, zn);
		memcpy(z2 + zn, z, zn);
		e.stored = (uint32_t)(2 * zn);
		e.crc = crc32c(0, z2, 2 * zn);
		T_EQ(obj_block_decode(&e, z2, 2 * zn, OBJ_BLOCK_MAX, &d), SL_E_CORRUPT);
		e.stored = (uint32_t)zn;
		e.crc = crc32c(0, z, zn);
		T_EQ(obj_block_decode(&e, z, zn, OBJ_BLOCK_MAX, &d), 0);
		obj_block_data_free(&d);
		e.raw++;	/* the frame states its size: one more is refused */
		T_EQ(obj_block_decode(&e, z, zn, OBJ_BLOCK_MAX, &d), SL_E_CORRUPT);
		free(o);
	}
	free(m.b);
}

/* ---- names and settings ---- */

static void test_key(void)
{
	struct obj_meta m = { 7, 3, 42, 0x0123456789abcdefull, 5 }, back;
	struct obj_meta big = { INT32_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, 0 };
	char k[OBJ_KEY_LEN + 1], k2[OBJ_KEY_LEN + 1], bad[OBJ_KEY_LEN + 1];
	size_t i;

	T_EQ(obj_key(k, sizeof(k), &m), OBJ_KEY_LEN);
	T_STR_EQ(k, "data/0000000007/00000000000000000003/00000000000000000042-0123456789abcdef.obj");
	T_EQ(obj_key_parse(k, strlen(k), &back), 0);
	T_EQ(back.node, 7);
	T_EQ(back.epoch, 3);
	T_EQ(back.seq, 42);
	T_CHECK(back.nonce == m.nonce);
	T_EQ(obj_key(k, sizeof(k), &big), OBJ_KEY_LEN);
	T_STR_EQ(k, "data/2147483647/18446744073709551615/18446744073709551615-ffffffffffffffff.obj");
	T_EQ(obj_key_parse(k, strlen(k), &back), 0);
	T_EQ(back.node, INT32_MAX);
	T_CHECK(back.epoch == UINT64_MAX && back.seq == UINT64_MAX && back.nonce == UINT64_MAX);
	T_EQ(obj_key(k, OBJ_KEY_LEN, &m), SL_E_TOOBIG);
	m.node = -1;
	T_EQ(obj_key(k, sizeof(k), &m), SL_E_INVALID);
	/* Keys sort as (node, epoch, sequence) do. */
	{
		struct obj_meta a = { 2, 9, 99, 0xffff, 0 }, b = { 2, 10, 0, 0, 0 }, c = { 10, 0, 0, 0, 0 };

		T_EQ(obj_key(k, sizeof(k), &a), OBJ_KEY_LEN);
		T_EQ(obj_key(k2, sizeof(k2), &b), OBJ_KEY_LEN);
		T_CHECK(strcmp(k, k2) < 0);
		a = b;
		a.seq = 1;
		T_EQ(obj_key(k, sizeof(k), &a), OBJ_KEY_LEN);
		T_CHECK(strcmp(k2, k) < 0);
		T_EQ(obj_key(k2, sizeof(k2), &c), OBJ_KEY_LEN);
		T_CHECK(strcmp(k, k2) < 0);
	}
	/* Refused: anything but exactly the form, values that overflow. */
	T_EQ(obj_key(k, sizeof(k), &(struct obj_meta){ 1, 2, 3, 4, 0 }), OBJ_KEY_LEN);
	for (i = 0; i < OBJ_KEY_LEN; i++) {
		memcpy(bad, k, sizeof(bad));
		bad[i] = k[i] == 'x' ? 'y' : 'x';
		T_EQ(obj_key_parse(bad, OBJ_KEY_LEN, &back), SL_E_INVALID);
		T_EQ(obj_key_parse(k, i, &back), SL_E_INVALID);
	}
	T_EQ(obj_key_parse("data/2147483648/00000000000000000003/00000000000000000042-0123456789abcdef.obj",
			   OBJ_KEY_LEN, &back), SL_E_INVALID);
	T_EQ(obj_key_parse("data/0000000007/18446744073709551616/00000000000000000042-0123456789abcdef.obj",
			   OBJ_KEY_LEN, &back), SL_E_INVALID);
	T_EQ(obj_key_parse("data/0000000007/00000000000000000003/99999999999999999999-0123456789abcdef.obj",
			   OBJ_KEY_LEN, &back), SL_E_INVALID);
	T_EQ(obj_key_parse("data/0000000007/00000000000000000003/00000000000000000042-0123456789ABCDEF.obj",
			   OBJ_KEY_LEN, &back), SL_E_INVALID);
	T_EQ(obj_key_parse("data/0000000007/00000000000000000003/00000000000000000042-0123456789abcdef.ob",
			   OBJ_KEY_LEN, &back), SL_E_INVALID);
}

/* sluice.objects.compression defaults to zstd, and its words are ours. */
static void test_config(void)
{
	struct config c;
	enum obj_comp comp = OBJ_COMP_NONE;
	char errbuf[256];

	T_EQ(config_init(&c), 0);
	T_STR_EQ(c.objects_compression, "zstd");
	T_EQ(obj_comp_parse(c.objects_compression, &comp), 0);
	T_EQ(comp, OBJ_COMP_ZSTD);
	T_EQ(config_set(&c, "sluice.objects.compression=none", "t", errbuf, sizeof(errbuf)), 0);
	T_EQ(obj_comp_parse(c.objects_compression, &comp), 0);
	T_EQ(comp, OBJ_COMP_NONE);
	T_EQ(config_set(&c, "sluice.objects.compression=lz4", "t", errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_STR_EQ(c.objects_compression, "none");
	T_EQ(obj_comp_parse("lz4", &comp), SL_E_INVALID);
	config_free(&c);
}

/* ---- sample objects for the independent reader ---- */

static int write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int mkdirs(char *path)
{
	char *s;

	for (s = path + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(path, 0755) == -1 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return 0;
}

static int sample(const char *dir, FILE *ex, const struct model *m, enum obj_comp comp,
		  uint32_t target, const struct obj_meta *meta)
{
	struct obj_writer_opts o = { comp, 0, target };
	struct obj_writer w;
	char key[OBJ_KEY_LEN + 1], path[1024];
	uint8_t *obj, *buf;
	size_t len;
	int i, err = obj_writer_init(&w, &o);

	for (i = 0; i < m->n && !err; i++)
		err = add(&w, &m->b[i]);
	if (!err)
		err = obj_writer_finish(&w, meta, &obj, &len);
	obj_writer_free(&w);
	if (err || obj_key(key, sizeof(key), meta) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (mkdirs(path) || write_file(path, obj, len)) {
		free(obj);
		return -1;
	}
	free(obj);
	fprintf(ex, "object %s %d %llu %llu %016llx %lld\n", key, meta->node,
		(unsigned long long)meta->epoch, (unsigned long long)meta->seq,
		(unsigned long long)meta->nonce, (long long)meta->created_ms);
	for (i = 0; i < m->n; i++) {
		const struct mb *b = &m->b[i];
		struct stream_id id = sid(b->s);
		int j;

		if (i == 0 || m->b[i - 1].s != b->s) {
			fprintf(ex, "stream ");
			for (j = 0; j < 16; j++)
				fprintf(ex, "%02x", id.ns[j]);
			fprintf(ex, " %d\n", id.index);
		}
		if (!(buf = malloc(b->len + 1)))
			return -1;
		fill(b, buf);
		fprintf(ex, "batch %lld %u %lld %zu %08x\n", (long long)b->base, b->count,
			(long long)b->max_ts, b->len, crc32c(0, buf, b->len));
		free(buf);
	}
	return 0;
}

static int write_samples(const char *dir)
{
	struct obj_meta meta = { 7, 3, 0, 0, 1700000000000 };
	struct model m = { 0 };
	char path[1024];
	FILE *ex;
	int err = 0, i;

	snprintf(path, sizeof(path), "%s/expect.txt", dir);
	if (mkdirs(path) || !(ex = fopen(path, "w"))) {
		fprintf(stderr, "cannot write %s\n", path);
		return 1;
	}
	/* Many streams, mixed contents, small blocks, gaps: zstd, then raw. */
	random_model(&m, 24, 30, 3000);
	m.b[3].max_ts = -1;
	meta.nonce = 0x1111111111111111ull;
	err |= sample(dir, ex, &m, OBJ_COMP_ZSTD, 16384, &meta);
	meta.seq++;
	meta.nonce = 0x2222222222222222ull;
	err |= sample(dir, ex, &m, OBJ_COMP_NONE, 16384, &meta);
	/* One stream, a batch larger than the target, default target. */
	m.n = 0;
	push(&m, 5, 10, 100, 0, 0);
	push(&m, 5, 1000, OBJ_TARGET_DEFAULT + 5000, 0, 0);
	push(&m, 5, 1, 1, 1, 0);
	push(&m, 5, 1, 0, 1, 3);
	meta.seq++;
	meta.nonce = 0x3333333333333333ull;
	err |= sample(dir, ex, &m, OBJ_COMP_ZSTD, 0, &meta);
	/* Empty, from another node and epoch. */
	m.n = 0;
	meta = (struct obj_meta){ 12, 99, 5, 0xfedcba9876543210ull, 1 };
	err |= sample(dir, ex, &m, OBJ_COMP_ZSTD, 0, &meta);
	/* Stream indexes 0..3 of many namespaces, one batch each. */
	for (i = 0; i < 40; i++)
		push(&m, i, 1, 64, i % 3 == 0, 0);
	meta.seq++;
	meta.nonce = 0x4444444444444444ull;
	err |= sample(dir, ex, &m, OBJ_COMP_NONE, 0, &meta);
	free(m.b);
	if (fclose(ex) != 0 || err) {
		fprintf(stderr, "writing samples under %s failed\n", dir);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_samples(argv[2]);
	T_RUN(test_empty);
	T_RUN(test_roundtrip);
	T_RUN(test_compression_choice);
	T_RUN(test_block_cut);
	T_RUN(test_lookup);
	T_RUN(test_range);
	T_RUN(test_writer_refuses);
	T_RUN(test_damage_object);
	T_RUN(test_damage_footer);
	T_RUN(test_damage_index);
	T_RUN(test_damage_block);
	T_RUN(test_key);
	T_RUN(test_config);
	return t_done();
}
