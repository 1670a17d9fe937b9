/*
 * object.c - data objects (see object.h; the bytes are in docs/FORMAT.md,
 * "Data objects").
 *
 * Owns: the writer's buffers (the object so far, the open block's raw
 * bytes, the index entries, a compression scratch buffer and a zstd
 * context), and the arrays of a parsed index.  Borrows everything else:
 * batch bytes are copied in, stored block bytes are read in place.
 *
 * Writer invariants:
 *   1. out holds the header and every sealed block, back to back: block i
 *      starts at blocks[i].pos and blocks[i + 1].pos = blocks[i].pos +
 *      blocks[i].stored.  The open block (cur, its raw entries in blk)
 *      belongs to the last stream and is sealed before another stream starts
 *      and at finish.
 *   2. streams[] is strictly increasing by id; within a stream, batches
 *      (and so blocks) are strictly increasing and never overlap in offsets.
 *      Checked before anything changes, so a refused batch leaves the writer
 *      as it was.
 *   3. A block exceeds the target only when it holds a single batch; the
 *      batch cap keeps every block within OBJ_BLOCK_MAX.
 *   4. Once err is set (allocation failed, or finished) the writer takes
 *      nothing more.
 *
 * Reader invariants (what a parsed obj_index guarantees, so lookups and
 * obj_range need no further checks):
 *   1. Blocks tile [OBJ_HEADER_LEN, index_off) exactly, in index order.
 *   2. Streams are strictly increasing by id; stream s owns blocks
 *      [block0, block0 + nblocks), nblocks >= 1, and block0 is the sum of
 *      the earlier streams' nblocks.
 *   3. A stream's blocks are increasing and disjoint in offsets; the
 *      stream's first, last, max_ts and batches agree with its blocks'.
 *   4. Every block has 1 <= batches <= last - first + 1, raw >= batches *
 *      OBJ_BATCH_HDR_LEN, raw and stored <= OBJ_BLOCK_MAX, and stored == raw
 *      when stored raw.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "object.h"
#include "../kernel/crc32c.h"

#define OBJ_MAGIC "SLUICOBJ"
#define OBJ_FOOTER_MAGIC 0x534C4F46u	/* "SLOF" */
#define OBJ_FOOTER_BODY 56		/* bytes covered by the footer CRC */

int obj_comp_parse(const char *name, enum obj_comp *comp)
{
	if (strcmp(name, "none") == 0)
		*comp = OBJ_COMP_NONE;
	else if (strcmp(name, "zstd") == 0)
		*comp = OBJ_COMP_ZSTD;
	else
		return SL_E_INVALID;
	return 0;
}

static int id_cmp(const struct stream_id *a, const struct stream_id *b)
{
	int c = memcmp(a->ns, b->ns, sizeof(a->ns));

	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* base >= 0, count >= 1 and base + count - 1 < INT64_MAX (so last + 1 fits). */
static int range_ok(int64_t base, uint32_t count)
{
	return base >= 0 && count >= 1 && (int64_t)(count - 1) <= INT64_MAX - 1 - base;
}

/* ---- writer ---- */

int obj_writer_init(struct obj_writer *w, const struct obj_writer_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->o.comp = OBJ_COMP_ZSTD;
	if (o)
		w->o = *o;
	if (w->o.target == 0)
		w->o.target = OBJ_TARGET_DEFAULT;
	if (w->o.level == 0)
		w->o.level = ZSTD_CLEVEL_DEFAULT;
	wr_init(&w->out, 0);
	wr_init(&w->blk, 0);
	if ((w->o.comp != OBJ_COMP_NONE && w->o.comp != OBJ_COMP_ZSTD) ||
	    w->o.target > OBJ_TARGET_MAX || w->o.level < ZSTD_minCLevel() ||
	    w->o.level > ZSTD_maxCLevel()) {
		w->err = SL_E_INVALID;
		return SL_E_INVALID;
	}
	wr_bytes(&w->out, OBJ_MAGIC, OBJ_HEADER_LEN);
	if (w->out.err)
		w->err = SL_E_NOMEM;
	return w->err;
}

/* Grow an array of elements of size sz to hold one more; 0 or SL_E_NOMEM. */
static int grow(void **arr, uint32_t *cap, uint32_t n, size_t sz)
{
	uint32_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (!(p = realloc(*arr, (size_t)ncap * sz)))
		return SL_E_NOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Seal the open block into out (invariant 1). */
static int seal(struct obj_writer *w)
{
	struct obj_block *b = &w->cur;
	const uint8_t *src = w->blk.p;
	size_t stored = w->blk.len;

	if (b->batches == 0)
		return 0;
	SL_ASSERT(w->blk.len <= OBJ_BLOCK_MAX);
	b->raw = (uint32_t)w->blk.len;
	b->comp = OBJ_COMP_NONE;
	if (w->o.comp == OBJ_COMP_ZSTD) {
		size_t bound = ZSTD_compressBound(w->blk.len), c;

		if (!w->cctx && !(w->cctx = ZSTD_createCCtx()))
			return SL_E_NOMEM;
		if (bound > w->zcap) {
			free(w->zbuf);
			w->zcap = 0;
			if (!(w->zbuf = malloc(bound)))
				return SL_E_NOMEM;
			w->zcap = bound;
		}
		c = ZSTD_compressCCtx(w->cctx, w->zbuf, w->zcap, w->blk.p, w->blk.len, w->o.level);
		if (ZSTD_isError(c))
			return SL_E_NOMEM;	/* with a big enough buffer, only allocation fails */
		/* A block that does not shrink (already compressed batches) is kept raw. */
		if (c < w->blk.len) {
			src = w->zbuf;
			stored = c;
			b->comp = OBJ_COMP_ZSTD;
		}
	}
	if (grow((void **)&w->blocks, &w->capblocks, w->nblocks, sizeof(*w->blocks)))
		return SL_E_NOMEM;
	b->pos = w->out.len;
	b->stored = (uint32_t)stored;
	b->crc = crc32c(0, src, stored);
	b->stream = w->nstreams - 1;
	wr_bytes(&w->out, src, stored);
	if (w->out.err)
		return SL_E_NOMEM;
	w->blocks[w->nblocks++] = *b;
	w->streams[w->nstreams - 1].nblocks++;
	memset(b, 0, sizeof(*b));
	wr_free(&w->blk);
	wr_init(&w->blk, 0);
	return 0;
}

static int fail(struct obj_writer *w, int err)
{
	w->err = err;
	return err;
}

int obj_writer_add(struct obj_writer *w, const struct stream_id *id, int64_t base,
		   uint32_t count, int64_t max_ts, const uint8_t *p, size_t n)
{
	struct obj_stream *s = w->nstreams ? &w->streams[w->nstreams - 1] : NULL;
	int fresh, c = s ? id_cmp(id, &s->id) : 1;
	size_t entry = OBJ_BATCH_HDR_LEN + n;

	if (w->err)
		return w->err;
	/* Invariant 2: check everything before changing anything. */
	if (id->index < 0 || !range_ok(base, count) || c < 0 || (c == 0 && base <= s->last))
		return SL_E_INVALID;
	if (n > OBJ_BATCH_MAX || (c == 0 && s->batches == UINT32_MAX))
		return SL_E_TOOBIG;
	/* At most one more stream and two more blocks (the open one, a new one). */
	if (OBJ_INDEX_HDR_LEN + ((uint64_t)w->nstreams + 1) * OBJ_STREAM_ENTRY_LEN +
	    ((uint64_t)w->nblocks + 2) * OBJ_BLOCK_ENTRY_LEN > OBJ_INDEX_MAX)
		return SL_E_TOOBIG;
	fresh = c != 0;
	if (fresh) {
		int err = seal(w);

		if (err || grow((void **)&w->streams, &w->capstreams, w->nstreams, sizeof(*w->streams)))
			return fail(w, SL_E_NOMEM);
		s = &w->streams[w->nstreams++];
		memset(s, 0, sizeof(*s));
		s->id = *id;
		s->first = base;
		s->max_ts = max_ts;
		s->block0 = w->nblocks;
	} else if (w->cur.batches && w->blk.len + entry > w->o.target) {
		if (seal(w))
			return fail(w, SL_E_NOMEM);
	}
	wr_i64(&w->blk, base);
	wr_u32(&w->blk, count);
	wr_i64(&w->blk, max_ts);
	wr_u32(&w->blk, (uint32_t)n);
	wr_bytes(&w->blk, p, n);
	if (w->blk.err)
		return fail(w, SL_E_NOMEM);
	if (w->cur.batches == 0) {
		w->cur.first = base;
		w->cur.max_ts = max_ts;
	}
	w->cur.last = base + (int64_t)(count - 1);
	if (max_ts > w->cur.max_ts)
		w->cur.max_ts = max_ts;
	w->cur.batches++;
	s->last = w->cur.last;
	if (max_ts > s->max_ts)
		s->max_ts = max_ts;
	s->batches++;
	w->nbatches++;
	return 0;
}

size_t obj_writer_bytes(const struct obj_writer *w)
{
	return w->out.len + w->blk.len + OBJ_INDEX_HDR_LEN +
	       (size_t)w->nstreams * OBJ_STREAM_ENTRY_LEN +
	       ((size_t)w->nblocks + (w->cur.batches ? 1 : 0)) * OBJ_BLOCK_ENTRY_LEN + OBJ_FOOTER_LEN;
}

uint64_t obj_writer_batches(const struct obj_writer *w)
{
	return w->nbatches;
}

static void put_index(struct sl_wr *ix, const struct obj_writer *w)
{
	uint32_t i;

	wr_u32(ix, w->nstreams);
	wr_u32(ix, w->nblocks);
	for (i = 0; i < w->nstreams; i++) {
		const struct obj_stream *s = &w->streams[i];

		wr_bytes(ix, s->id.ns, sizeof(s->id.ns));
		wr_i32(ix, s->id.index);
		wr_u32(ix, s->nblocks);
		wr_i64(ix, s->first);
		wr_i64(ix, s->last);
		wr_i64(ix, s->max_ts);
		wr_u32(ix, s->batches);
	}
	for (i = 0; i < w->nblocks; i++) {
		const struct obj_block *b = &w->blocks[i];

		wr_i64(ix, b->first);
		wr_i64(ix, b->last);
		wr_i64(ix, b->max_ts);
		wr_u64(ix, b->pos);
		wr_u32(ix, b->stored);
		wr_u32(ix, b->raw);
		wr_u32(ix, b->batches);
		wr_u32(ix, b->crc);
		wr_u8(ix, b->comp);
		wr_zero(ix, 3);
	}
}

int obj_writer_finish(struct obj_writer *w, const struct obj_meta *meta, uint8_t **out, size_t *len)
{
	struct sl_wr ix;
	uint64_t index_off;
	size_t at;
	int err;

	*out = NULL;
	*len = 0;
	if (w->err)
		return w->err;
	if (meta->node < 0)
		return fail(w, SL_E_INVALID);
	if ((err = seal(w)))
		return fail(w, err);
	wr_init(&ix, 0);
	put_index(&ix, w);
	if (ix.err) {
		wr_free(&ix);
		return fail(w, SL_E_NOMEM);
	}
	SL_ASSERT(ix.len == OBJ_INDEX_HDR_LEN + (size_t)w->nstreams * OBJ_STREAM_ENTRY_LEN +
		  (size_t)w->nblocks * OBJ_BLOCK_ENTRY_LEN && ix.len <= OBJ_INDEX_MAX);
	index_off = w->out.len;
	wr_bytes(&w->out, ix.p, ix.len);
	at = w->out.len;
	wr_u64(&w->out, index_off);
	wr_u32(&w->out, (uint32_t)ix.len);
	wr_u32(&w->out, crc32c(0, ix.p, ix.len));
	wr_i32(&w->out, meta->node);
	wr_u16(&w->out, OBJ_VERSION);
	wr_u16(&w->out, 0);
	wr_u64(&w->out, meta->epoch);
	wr_u64(&w->out, meta->seq);
	wr_u64(&w->out, meta->nonce);
	wr_i64(&w->out, meta->created_ms);
	wr_free(&ix);
	if (w->out.err)
		return fail(w, SL_E_NOMEM);
	wr_u32(&w->out, crc32c(0, w->out.p + at, OBJ_FOOTER_BODY));
	wr_u32(&w->out, OBJ_FOOTER_MAGIC);
	if (w->out.err)
		return fail(w, SL_E_NOMEM);
	*out = wr_take(&w->out, len);
	w->err = SL_E_CLOSED;
	return 0;
}

void obj_writer_free(struct obj_writer *w)
{
	wr_free(&w->out);
	wr_free(&w->blk);
	free(w->streams);
	free(w->blocks);
	free(w->zbuf);
	ZSTD_freeCCtx(w->cctx);
	memset(w, 0, sizeof(*w));
	w->err = SL_E_CLOSED;
}

/* ---- footer ---- */

int obj_footer_parse(const uint8_t *tail, size_t n, uint64_t size, struct obj_footer *f)
{
	struct sl_rd r, b;
	const uint8_t *body;
	uint32_t crc, magic;
	uint16_t version, flags;

	memset(f, 0, sizeof(*f));
	if (n < OBJ_FOOTER_LEN)
		return SL_E_SHORT;
	if (n > size)
		return SL_E_INVALID;
	rd_init(&r, tail, n);
	if (rd_skip(&r, n - OBJ_FOOTER_LEN) || rd_bytes(&r, OBJ_FOOTER_BODY, &body) ||
	    rd_u32(&r, &crc) || rd_u32(&r, &magic))
		return SL_E_SHORT;	/* cannot happen: n >= OBJ_FOOTER_LEN */
	if (magic != OBJ_FOOTER_MAGIC || crc != crc32c(0, body, OBJ_FOOTER_BODY))
		return SL_E_CORRUPT;
	rd_init(&b, body, OBJ_FOOTER_BODY);
	if (rd_u64(&b, &f->index_off) || rd_u32(&b, &f->index_len) || rd_u32(&b, &f->index_crc) ||
	    rd_i32(&b, &f->meta.node) || rd_u16(&b, &version) || rd_u16(&b, &flags) ||
	    rd_u64(&b, &f->meta.epoch) || rd_u64(&b, &f->meta.seq) || rd_u64(&b, &f->meta.nonce) ||
	    rd_i64(&b, &f->meta.created_ms))
		return SL_E_SHORT;
	if (version != OBJ_VERSION || flags != 0)
		return SL_E_INVALID;
	f->size = size;
	/* size >= n >= OBJ_FOOTER_LEN, so size - OBJ_FOOTER_LEN cannot wrap. */
	if (f->meta.node < 0 || f->index_len < OBJ_INDEX_HDR_LEN || f->index_len > OBJ_INDEX_MAX ||
	    f->index_off < OBJ_HEADER_LEN || f->index_len > size - OBJ_FOOTER_LEN ||
	    f->index_off != size - OBJ_FOOTER_LEN - f->index_len)
		return SL_E_CORRUPT;
	return 0;
}

int obj_tail_index(const struct obj_footer *f, const uint8_t *tail, size_t n, struct span *ix)
{
	uint64_t start;
	struct sl_rd r;

	if (n > f->size)
		return 0;
	start = f->size - n;
	if (f->index_off < start)
		return 0;
	rd_init(&r, tail, n);
	if (rd_skip(&r, (size_t)(f->index_off - start)) || rd_bytes(&r, f->index_len, &ix->p))
		return 0;
	ix->len = f->index_len;
	return 1;
}

/* ---- index ---- */

static int read_stream(struct sl_rd *r, struct obj_stream *s)
{
	memset(s, 0, sizeof(*s));
	if (rd_copy(r, s->id.ns, sizeof(s->id.ns)) || rd_i32(r, &s->id.index) ||
	    rd_u32(r, &s->nblocks) || rd_i64(r, &s->first) || rd_i64(r, &s->last) ||
	    rd_i64(r, &s->max_ts) || rd_u32(r, &s->batches))
		return SL_E_CORRUPT;
	if (s->id.index < 0 || s->nblocks == 0 || s->batches < s->nblocks || s->first < 0 ||
	    s->last < s->first || s->last == INT64_MAX)
		return SL_E_CORRUPT;
	return 0;
}

static int read_block(struct sl_rd *r, struct obj_block *b)
{
	const uint8_t *z;

	memset(b, 0, sizeof(*b));
	if (rd_i64(r, &b->first) || rd_i64(r, &b->last) || rd_i64(r, &b->max_ts) ||
	    rd_u64(r, &b->pos) || rd_u32(r, &b->stored) || rd_u32(r, &b->raw) ||
	    rd_u32(r, &b->batches) || rd_u32(r, &b->crc) || rd_u8(r, &b->comp) || rd_bytes(r, 3, &z))
		return SL_E_CORRUPT;
	if (z[0] || z[1] || z[2] || b->comp > OBJ_COMP_ZSTD ||
	    (b->comp == OBJ_COMP_NONE && b->stored != b->raw) || b->stored == 0 ||
	    b->stored > OBJ_BLOCK_MAX || b->raw > OBJ_BLOCK_MAX || b->batches == 0 ||
	    (uint64_t)b->batches * OBJ_BATCH_HDR_LEN > b->raw || b->first < 0 || b->last < b->first ||
	    (uint64_t)(b->last - b->first) < (uint64_t)b->batches - 1)
		return SL_E_CORRUPT;
	return 0;
}

/* Reader invariant 3 for stream s. */
static int check_stream_blocks(const struct obj_stream *s, const struct obj_block *bl)
{
	uint64_t batches = 0;
	int64_t mx = bl[0].max_ts;
	uint32_t i;

	if (bl[0].first != s->first || bl[s->nblocks - 1].last != s->last)
		return SL_E_CORRUPT;
	for (i = 0; i < s->nblocks; i++) {
		if (i > 0 && bl[i].first <= bl[i - 1].last)
			return SL_E_CORRUPT;
		if (bl[i].max_ts > mx)
			mx = bl[i].max_ts;
		batches += bl[i].batches;
	}
	if (mx != s->max_ts || batches != s->batches)
		return SL_E_CORRUPT;
	return 0;
}

int obj_index_parse(const struct obj_footer *f, const uint8_t *p, size_t n, struct obj_index *ix)
{
	struct sl_rd r;
	uint32_t ns, nb, i, j;
	uint64_t sum = 0, pos = OBJ_HEADER_LEN;
	int err = SL_E_CORRUPT;

	memset(ix, 0, sizeof(*ix));
	if (n < f->index_len)
		return SL_E_SHORT;
	if (n > f->index_len)
		return SL_E_INVALID;
	if (crc32c(0, p, n) != f->index_crc)
		return SL_E_CORRUPT;
	rd_init(&r, p, n);
	if (rd_u32(&r, &ns) || rd_u32(&r, &nb))
		return SL_E_CORRUPT;
	/* The counts are capped by the bytes that hold them before anything is allocated. */
	if (OBJ_INDEX_HDR_LEN + (uint64_t)ns * OBJ_STREAM_ENTRY_LEN +
	    (uint64_t)nb * OBJ_BLOCK_ENTRY_LEN != n)
		return SL_E_CORRUPT;
	ix->streams = calloc(ns ? ns : 1, sizeof(*ix->streams));
	ix->blocks = calloc(nb ? nb : 1, sizeof(*ix->blocks));
	if (!ix->streams || !ix->blocks) {
		err = SL_E_NOMEM;
		goto fail;
	}
	for (i = 0; i < ns; i++) {
		struct obj_stream *s = &ix->streams[i];

		if (read_stream(&r, s) || (i > 0 && id_cmp(&ix->streams[i - 1].id, &s->id) >= 0))
			goto fail;
		s->block0 = (uint32_t)sum;
		sum += s->nblocks;
		if (sum > nb)
			goto fail;
	}
	if (sum != nb)
		goto fail;
	for (i = 0, j = 0; i < nb; i++) {
		struct obj_block *b = &ix->blocks[i];

		if (read_block(&r, b) || b->pos != pos)
			goto fail;
		pos += b->stored;
		while (i >= ix->streams[j].block0 + ix->streams[j].nblocks)
			j++;
		b->stream = j;
	}
	if (pos != f->index_off || rd_left(&r) != 0)
		goto fail;
	for (i = 0; i < ns; i++)
		if (check_stream_blocks(&ix->streams[i], &ix->blocks[ix->streams[i].block0]))
			goto fail;
	ix->nstreams = ns;
	ix->nblocks = nb;
	return 0;
fail:
	obj_index_free(ix);
	return err;
}

void obj_index_free(struct obj_index *ix)
{
	free(ix->streams);
	free(ix->blocks);
	memset(ix, 0, sizeof(*ix));
}

int obj_parse(const uint8_t *p, size_t n, struct obj_footer *f, struct obj_index *ix)
{
	struct sl_rd r;
	const uint8_t *h, *ib;
	int err;

	memset(ix, 0, sizeof(*ix));
	if ((err = obj_footer_parse(p, n, n, f)))
		return err;
	rd_init(&r, p, n);
	if (rd_bytes(&r, OBJ_HEADER_LEN, &h) || memcmp(h, OBJ_MAGIC, OBJ_HEADER_LEN) != 0)
		return SL_E_CORRUPT;
	rd_init(&r, p, n);
	if (rd_skip(&r, (size_t)f->index_off) || rd_bytes(&r, f->index_len, &ib))
		return SL_E_CORRUPT;	/* the footer check makes this impossible */
	return obj_index_parse(f, ib, f->index_len, ix);
}

/* ---- lookups ---- */

int obj_find_stream(const struct obj_index *ix, const struct stream_id *id)
{
	uint32_t lo = 0, hi = ix->nstreams;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = id_cmp(&ix->streams[mid].id, id);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SL_E_NOTFOUND;
}

int obj_find_block(const struct obj_index *ix, uint32_t s, int64_t offset)
{
	const struct obj_stream *st;
	uint32_t lo, hi;

	if (s >= ix->nstreams)
		return SL_E_INVALID;
	st = &ix->streams[s];
	if (offset > st->last)
		return SL_E_NOTFOUND;
	/* The first block whose last offset is >= offset; one exists (the stream's last). */
	lo = st->block0;
	hi = st->block0 + st->nblocks - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ix->blocks[mid].last < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int)lo;
}

int obj_find_time(const struct obj_index *ix, uint32_t s, int64_t ts)
{
	const struct obj_stream *st;
	uint32_t i;

	if (s >= ix->nstreams)
		return SL_E_INVALID;
	st = &ix->streams[s];
	/* Timestamps need not grow with offsets: look at every block. */
	for (i = st->block0; i < st->block0 + st->nblocks; i++)
		if (ix->blocks[i].max_ts >= ts)
			return (int)i;
	return SL_E_NOTFOUND;
}

uint32_t obj_range(const struct obj_index *ix, uint32_t b, uint64_t max_bytes,
		   uint64_t *pos, uint64_t *len)
{
	const struct obj_stream *st;
	uint32_t end, i;
	uint64_t total;

	SL_ASSERT(b < ix->nblocks);
	st = &ix->streams[ix->blocks[b].stream];
	end = st->block0 + st->nblocks;
	total = ix->blocks[b].stored;
	for (i = b + 1; i < end && total + ix->blocks[i].stored <= max_bytes; i++)
		total += ix->blocks[i].stored;
	*pos = ix->blocks[b].pos;
	*len = total;
	return i - b;
}

/* ---- blocks ---- */

/* One per thread, like the batch codecs': made on first use, kept. */
static _Thread_local ZSTD_DCtx *obj_dctx;

void obj_thread_cleanup(void)
{
	ZSTD_freeDCtx(obj_dctx);
	obj_dctx = NULL;
}

/* Decompress exactly one zstd frame of n bytes into raw bytes. */
static int unzstd(const uint8_t *p, size_t n, uint32_t raw, uint8_t **out)
{
	unsigned long long size = ZSTD_getFrameContentSize(p, n);
	size_t fsz = ZSTD_findFrameCompressedSize(p, n), r;
	uint8_t *buf;

	*out = NULL;
	if (size == ZSTD_CONTENTSIZE_ERROR || (size != ZSTD_CONTENTSIZE_UNKNOWN && size != raw) ||
	    ZSTD_isError(fsz) || fsz != n)
		return SL_E_CORRUPT;
	if (!obj_dctx && !(obj_dctx = ZSTD_createDCtx()))
		return SL_E_NOMEM;
	if (!(buf = malloc(raw ? raw : 1)))
		return SL_E_NOMEM;
	r = ZSTD_decompressDCtx(obj_dctx, buf, raw, p, n);
	if (ZSTD_isError(r) || r != raw) {
		free(buf);
		return SL_E_CORRUPT;
	}
	*out = buf;
	return 0;
}

/* Every entry well formed and agreeing with b. */
static int check_entries(const struct obj_block *b, const struct obj_block_data *d)
{
	struct sl_rd it;
	struct obj_batch x;
	uint32_t k = 0;
	int64_t last = 0, mx = 0;
	int rc;

	obj_batch_iter(&it, d);
	while ((rc = obj_batch_next(&it, &x)) == 1) {
		if (!range_ok(x.base, x.count) || (k == 0 ? x.base != b->first : x.base <= last))
			return SL_E_CORRUPT;
		if (k == 0 || x.max_ts > mx)
			mx = x.max_ts;
		last = x.base + (int64_t)(x.count - 1);
		k++;
	}
	if (rc != 0 || k != b->batches || last != b->last || mx != b->max_ts)
		return SL_E_CORRUPT;
	return 0;
}

int obj_block_decode(const struct obj_block *b, const uint8_t *p, size_t n,
		     size_t raw_cap, struct obj_block_data *d)
{
	int err;

	memset(d, 0, sizeof(*d));
	if (n < b->stored)
		return SL_E_SHORT;
	if (n > b->stored)
		return SL_E_INVALID;
	if (b->raw > raw_cap || b->raw > OBJ_BLOCK_MAX)
		return SL_E_TOOBIG;
	if (crc32c(0, p, n) != b->crc)
		return SL_E_CORRUPT;
	switch (b->comp) {
	case OBJ_COMP_NONE:
		if (n != b->raw)
			return SL_E_CORRUPT;
		d->p = p;
		break;
	case OBJ_COMP_ZSTD:
		if ((err = unzstd(p, n, b->raw, &d->owned)))
			return err;
		d->p = d->owned;
		break;
	default:
		return SL_E_CORRUPT;
	}
	d->len = b->raw;
	if ((err = check_entries(b, d))) {
		obj_block_data_free(d);
		return err;
	}
	return 0;
}

void obj_block_data_free(struct obj_block_data *d)
{
	free(d->owned);
	memset(d, 0, sizeof(*d));
}

int obj_batch_next(struct sl_rd *it, struct obj_batch *b)
{
	struct sl_rd r = *it;
	uint32_t len;

	if (rd_left(it) == 0)
		return 0;
	if (rd_i64(&r, &b->base) || rd_u32(&r, &b->count) || rd_i64(&r, &b->max_ts) ||
	    rd_u32(&r, &len) || rd_bytes(&r, len, &b->bytes.p))
		return SL_E_CORRUPT;
	b->bytes.len = len;
	*it = r;
	return 1;
}

/* ---- names ---- */

int obj_key(char *buf, size_t len, const struct obj_meta *m)
{
	int n;

	if (m->node < 0)
		return SL_E_INVALID;
	if (len < OBJ_KEY_LEN + 1)
		return SL_E_TOOBIG;
	n = snprintf(buf, len, "data/%010" PRId32 "/%020" PRIu64 "/%020" PRIu64 "-%016" PRIx64 ".obj",
		     m->node, m->epoch, m->seq, m->nonce);
	SL_ASSERT(n == OBJ_KEY_LEN);
	return n;
}

/* n decimal digits into *v; 0 or SL_E_INVALID (not digits, or above max). */
static int key_dec(struct sl_rd *r, size_t n, uint64_t max, uint64_t *v)
{
	const uint8_t *p;
	size_t i;

	*v = 0;
	if (rd_bytes(r, n, &p))
		return SL_E_INVALID;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || *v > (max - (uint64_t)(p[i] - '0')) / 10)
			return SL_E_INVALID;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return 0;
}

static int key_lit(struct sl_rd *r, const char *s)
{
	const uint8_t *p;
	size_t n = strlen(s);

	return rd_bytes(r, n, &p) || memcmp(p, s, n) != 0 ? SL_E_INVALID : 0;
}

int obj_key_parse(const char *key, size_t n, struct obj_meta *m)
{
	struct sl_rd r;
	const uint8_t *h;
	uint64_t node;
	int i;

	memset(m, 0, sizeof(*m));
	if (n != OBJ_KEY_LEN)
		return SL_E_INVALID;
	rd_init(&r, key, n);
	if (key_lit(&r, "data/") || key_dec(&r, 10, INT32_MAX, &node) || key_lit(&r, "/") ||
	    key_dec(&r, 20, UINT64_MAX, &m->epoch) || key_lit(&r, "/") ||
	    key_dec(&r, 20, UINT64_MAX, &m->seq) || key_lit(&r, "-") || rd_bytes(&r, 16, &h))
		return SL_E_INVALID;
	for (i = 0; i < 16; i++) {
		int c = h[i];

		if (c >= '0' && c <= '9')
			m->nonce = m->nonce << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			m->nonce = m->nonce << 4 | (uint64_t)(c - 'a' + 10);
		else
			return SL_E_INVALID;
	}
	if (key_lit(&r, ".obj") || rd_left(&r) != 0)
		return SL_E_INVALID;
	m->node = (int32_t)node;
	return 0;
}
