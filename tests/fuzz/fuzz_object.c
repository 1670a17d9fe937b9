/*
 * fuzz_object.c - libFuzzer target for the data object reader
 * (storage/object.h): footer, index and block decoding on hostile bytes.
 *
 * Input: byte 0 is flags, the rest depends on BLOCK.
 *
 *   Whole objects (BLOCK clear): the rest is an object.  With REPAIR, the
 *   header magic, every block CRC the index names (where its range fits),
 *   the index CRC, the footer magic and the footer CRC are recomputed
 *   first, so mutations get past the checksums to the consistency checks.
 *   The object is parsed; if that succeeds, every lookup is tried on every
 *   stream and every block is decoded (raw size capped at 4 MiB a block and
 *   16 MiB in all).  If all
 *   blocks decode, the batches are written again with the writer (target
 *   and compression from flag bits 4-7) and the new object must parse to
 *   the same streams and batches: whatever the reader accepts, the writer
 *   can make.
 *
 *   One block (BLOCK set): the rest is a 33-byte entry (first 8, last 8,
 *   max timestamp 8, raw length 4, batch count 4, compression 1) and the
 *   stored bytes, whose CRC is always made right.  With FIXRAW the raw
 *   length is taken from the bytes (their length, or the zstd frame's
 *   stated size); with DERIVE, first, last, batch count and max timestamp
 *   are taken from a loose scan of the (raw) entries, so the fuzzer reaches
 *   the ordering checks.
 *
 * Besides "never crash", only the documented errors may come back, and a
 * decoded block's batches must lie within its entry's numbers.  Inputs are
 * copied to buffers of exactly their size, so AddressSanitizer catches a
 * read one byte past them.
 *
 * Built with -DFUZZ_OBJECT_MAKE_SEEDS it is instead a program that writes
 * seeds made by the writer into a directory:
 *   clang -DFUZZ_OBJECT_MAKE_SEEDS -I. -Ibuild/deps/include -o /tmp/mkseeds \
 *     tests/fuzz/fuzz_object.c storage/object.c kernel/buf.c kernel/crc32c.c \
 *     kernel/err.c build/deps/lib/libzstd.a
 *   /tmp/mkseeds tests/fuzz/corpus/fuzz_object
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "storage/object.h"
#include "kernel/buf.h"
#include "kernel/crc32c.h"

enum { REPAIR = 1, BLOCK = 2, FIXRAW = 4, DERIVE = 8 };

#define RAW_CAP (4u << 20)
#define RAW_TOTAL (16u << 20)
#define BLOCK_HDR 33

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Loose repairs, with plain loads on bytes this function bounds itself. */
static void repair(uint8_t *p, size_t n)
{
	uint8_t *ft, *ix;
	uint64_t off, s, b, i, npos, stored;
	uint32_t len;

	if (n >= OBJ_HEADER_LEN)
		memcpy(p, "SLUICOBJ", OBJ_HEADER_LEN);
	if (n < OBJ_HEADER_LEN + OBJ_FOOTER_LEN)
		return;
	ft = p + n - OBJ_FOOTER_LEN;
	off = sl_load_be64(ft);
	len = sl_load_be32(ft + 8);
	if (off <= n - OBJ_FOOTER_LEN && len <= n - OBJ_FOOTER_LEN - off && len >= OBJ_INDEX_HDR_LEN) {
		ix = p + off;
		s = sl_load_be32(ix);
		b = sl_load_be32(ix + 4);
		if (OBJ_INDEX_HDR_LEN + (s + b) * OBJ_BLOCK_ENTRY_LEN <= len) {
			for (i = 0; i < b; i++) {
				uint8_t *e = ix + OBJ_INDEX_HDR_LEN + s * OBJ_STREAM_ENTRY_LEN +
					     i * OBJ_BLOCK_ENTRY_LEN;

				npos = sl_load_be64(e + 24);
				stored = sl_load_be32(e + 32);
				if (npos <= n && stored <= n - npos)
					sl_store_be32(e + 44, crc32c(0, p + npos, stored));
			}
		}
		sl_store_be32(ft + 12, crc32c(0, ix, len));
	}
	sl_store_be32(ft + 60, 0x534C4F46u);
	sl_store_be32(ft + 56, crc32c(0, ft, 56));
}

static void check_batches(const struct obj_block *b, const struct obj_block_data *d)
{
	struct sl_rd it;
	struct obj_batch x;
	uint32_t k = 0;
	int rc;

	obj_batch_iter(&it, d);
	while ((rc = obj_batch_next(&it, &x)) == 1) {
		if (x.count == 0 || x.base < b->first || x.base > b->last ||
		    (int64_t)(x.count - 1) > b->last - x.base || x.max_ts > b->max_ts)
			abort();
		k++;
	}
	if (rc != 0 || k != b->batches)
		abort();
}

struct rewrite {
	struct obj_writer w;
	int ok;
};

/*
 * Decode every block of a parsed object; feed the batches to rw.  Returns 1
 * if all decoded; 0 if one did not, or the raw bytes would pass RAW_TOTAL
 * (a few KB of zstd can claim many MB: not worth the fuzzer's time).
 */
static int decode_all(const uint8_t *p, const struct obj_index *ix, struct rewrite *rw)
{
	uint64_t total = 0;
	uint32_t b;
	int all = 1;

	for (b = 0; b < ix->nblocks; b++)
		total += ix->blocks[b].raw;
	if (total > RAW_TOTAL)
		return 0;
	for (b = 0; b < ix->nblocks; b++) {
		const struct obj_block *bl = &ix->blocks[b];
		struct obj_block_data d;
		struct obj_batch x;
		struct sl_rd it;
		int rc = obj_block_decode(bl, p + bl->pos, bl->stored, RAW_CAP, &d);

		if (rc != 0) {
			if (rc != SL_E_CORRUPT && rc != SL_E_TOOBIG)
				abort();
			all = 0;
			continue;
		}
		if (d.len != bl->raw)
			abort();
		check_batches(bl, &d);
		obj_batch_iter(&it, &d);
		while (rw->ok && obj_batch_next(&it, &x) == 1)
			if (obj_writer_add(&rw->w, &ix->streams[bl->stream].id, x.base, x.count, x.max_ts,
					   x.bytes.p, x.bytes.len) != 0)
				abort();	/* the writer must take what the reader accepted */
		obj_block_data_free(&d);
	}
	return all;
}

static void lookups(const struct obj_index *ix)
{
	uint32_t s;

	for (s = 0; s < ix->nstreams; s++) {
		const struct obj_stream *st = &ix->streams[s];
		int b;

		if (obj_find_stream(ix, &st->id) != (int)s)
			abort();
		b = obj_find_block(ix, s, st->first);
		if (b != (int)st->block0)
			abort();
		b = obj_find_block(ix, s, st->last);
		if (b != (int)(st->block0 + st->nblocks - 1))
			abort();
		if (obj_find_block(ix, s, st->last + 1) != SL_E_NOTFOUND)
			abort();
		b = obj_find_block(ix, s, st->first + (st->last - st->first) / 2);
		if (b < (int)st->block0 || b >= (int)(st->block0 + st->nblocks))
			abort();
		b = obj_find_time(ix, s, st->max_ts);
		if (b < (int)st->block0 || ix->blocks[b].max_ts != st->max_ts)
			abort();
		{
			uint64_t pos, len;
			uint32_t k = obj_range(ix, st->block0, UINT64_MAX, &pos, &len);

			if (k != st->nblocks || pos != ix->blocks[st->block0].pos)
				abort();
		}
	}
}

/* Two parsed objects hold the same streams and block-independent numbers. */
static void same_streams(const struct obj_index *a, const struct obj_index *b)
{
	uint32_t s;

	if (a->nstreams != b->nstreams)
		abort();
	for (s = 0; s < a->nstreams; s++) {
		const struct obj_stream *x = &a->streams[s], *y = &b->streams[s];

		if (memcmp(&x->id, &y->id, sizeof(x->id)) != 0 || x->first != y->first ||
		    x->last != y->last || x->max_ts != y->max_ts || x->batches != y->batches)
			abort();
	}
}

static void whole(uint8_t flags, uint8_t *p, size_t n)
{
	static const uint32_t targets[] = { 1, 64, 1024, OBJ_TARGET_DEFAULT };
	struct obj_writer_opts o = { (flags >> 4) & 1 ? OBJ_COMP_ZSTD : OBJ_COMP_NONE, 1,
				     targets[(flags >> 5) & 3] };
	struct obj_footer f, f2;
	struct obj_index ix, ix2;
	struct rewrite rw;
	uint8_t *out;
	size_t len;
	int rc;

	if (flags & REPAIR)
		repair(p, n);
	rc = obj_parse(p, n, &f, &ix);
	/* The footer alone, from the shortest tail, agrees. */
	if (n >= OBJ_FOOTER_LEN) {
		int rf = obj_footer_parse(p + n - OBJ_FOOTER_LEN, OBJ_FOOTER_LEN, n, &f2);

		if (rf != 0 && rf != rc)
			abort();
	}
	if (rc != 0) {
		if (rc != SL_E_CORRUPT && rc != SL_E_SHORT && rc != SL_E_INVALID && rc != SL_E_NOMEM)
			abort();
		return;
	}
	lookups(&ix);
	if (obj_writer_init(&rw.w, &o) != 0)
		abort();
	rw.ok = 1;
	if (!decode_all(p, &ix, &rw)) {
		obj_writer_free(&rw.w);
		obj_index_free(&ix);
		return;
	}
	if (obj_writer_finish(&rw.w, &f.meta, &out, &len) != 0)
		abort();
	obj_writer_free(&rw.w);
	if (obj_parse(out, len, &f2, &ix2) != 0)
		abort();
	if (memcmp(&f.meta, &f2.meta, sizeof(f.meta)) != 0)
		abort();
	same_streams(&ix, &ix2);
	lookups(&ix2);
	rw.ok = 0;
	if (!decode_all(out, &ix2, &rw))
		abort();
	obj_index_free(&ix2);
	obj_index_free(&ix);
	free(out);
}

/* First, last, count and max timestamp of the entries, read loosely. */
static void derive(struct obj_block *b, const uint8_t *p, size_t n)
{
	struct sl_rd r;
	int64_t base, ts;
	uint32_t count, len;
	int first = 1;

	rd_init(&r, p, n);
	b->batches = 0;
	while (rd_i64(&r, &base) == 0 && rd_u32(&r, &count) == 0 && rd_i64(&r, &ts) == 0 &&
	       rd_u32(&r, &len) == 0 && rd_skip(&r, len) == 0) {
		if (first || ts > b->max_ts)
			b->max_ts = ts;
		if (first)
			b->first = base;
		b->last = count ? (int64_t)((uint64_t)base + count - 1) : base;
		b->batches++;
		first = 0;
	}
}

static void one_block(uint8_t flags, const uint8_t *in, size_t n)
{
	struct obj_block b;
	struct obj_block_data d;
	struct sl_rd r;
	const uint8_t *stored;
	uint8_t *p;
	size_t sn;
	int rc;

	if (n < BLOCK_HDR)
		return;
	memset(&b, 0, sizeof(b));
	rd_init(&r, in, n);
	if (rd_i64(&r, &b.first) || rd_i64(&r, &b.last) || rd_i64(&r, &b.max_ts) ||
	    rd_u32(&r, &b.raw) || rd_u32(&r, &b.batches) || rd_u8(&r, &b.comp))
		return;
	sn = rd_left(&r);
	if (rd_bytes(&r, sn, &stored))
		return;
	if (!(p = malloc(sn ? sn : 1)))
		abort();
	memcpy(p, stored, sn);
	b.stored = (uint32_t)sn;
	b.crc = crc32c(0, p, sn);
	if (flags & FIXRAW) {
		if (b.comp == OBJ_COMP_NONE) {
			b.raw = (uint32_t)sn;
		} else {
			unsigned long long cs = ZSTD_getFrameContentSize(p, sn);

			if (cs != ZSTD_CONTENTSIZE_ERROR && cs != ZSTD_CONTENTSIZE_UNKNOWN && cs <= RAW_CAP)
				b.raw = (uint32_t)cs;
		}
	}
	if ((flags & DERIVE) && b.comp == OBJ_COMP_NONE)
		derive(&b, p, sn);
	rc = obj_block_decode(&b, p, sn, RAW_CAP, &d);
	if (rc == 0) {
		if (d.len != b.raw)
			abort();
		check_batches(&b, &d);
		obj_block_data_free(&d);
	} else if (rc != SL_E_CORRUPT && rc != SL_E_TOOBIG && rc != SL_E_NOMEM) {
		abort();
	}
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	if (data[0] & BLOCK) {
		one_block(data[0], data + 1, n);
		return 0;
	}
	if (!(p = malloc(n ? n : 1)))
		abort();
	memcpy(p, data + 1, n);
	whole(data[0], p, n);
	free(p);
	return 0;
}

#ifdef FUZZ_OBJECT_MAKE_SEEDS
static void put(const char *dir, const char *name, uint8_t flags, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")))
		abort();
	fputc(flags, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

static uint8_t *make(enum obj_comp comp, uint32_t target, int streams, int batches, size_t blen,
		     size_t *len)
{
	struct obj_writer_opts o = { comp, 0, target };
	struct obj_meta meta = { 3, 2, 1, 0xabcdef, 1700000000000 };
	struct obj_writer w;
	uint8_t buf[512];
	uint8_t *out;
	int s, i;
	size_t k;

	for (k = 0; k < sizeof(buf); k++)
		buf[k] = (uint8_t)("fuzz batch "[k % 11] + (k / 97));
	if (obj_writer_init(&w, &o))
		abort();
	for (s = 0; s < streams; s++) {
		struct stream_id id;
		int64_t base = s * 7;

		memset(&id, 0, sizeof(id));
		id.ns[0] = (uint8_t)(s / 3);
		id.index = s % 3;
		for (i = 0; i < batches; i++) {
			uint32_t count = 1 + (uint32_t)(i % 4);

			if (obj_writer_add(&w, &id, base, count, 1700000000000 + (i * 37) % 11, buf,
					   blen + (size_t)i % 5))
				abort();
			base += count + (i % 3 == 2);
		}
	}
	if (obj_writer_finish(&w, &meta, &out, len))
		abort();
	obj_writer_free(&w);
	return out;
}

/* The first block of an object as a BLOCK-mode input. */
static void put_block(const char *dir, const char *name, uint8_t flags, const uint8_t *obj, size_t len)
{
	struct obj_footer f;
	struct obj_index ix;
	struct sl_wr w;
	const struct obj_block *b;

	if (obj_parse(obj, len, &f, &ix) || ix.nblocks == 0)
		abort();
	b = &ix.blocks[0];
	wr_init(&w, 0);
	wr_i64(&w, b->first);
	wr_i64(&w, b->last);
	wr_i64(&w, b->max_ts);
	wr_u32(&w, b->raw);
	wr_u32(&w, b->batches);
	wr_u8(&w, b->comp);
	wr_bytes(&w, obj + b->pos, b->stored);
	if (w.err)
		abort();
	put(dir, name, flags, w.p, w.len);
	wr_free(&w);
	obj_index_free(&ix);
}

int main(int argc, char **argv)
{
	uint8_t *o;
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	o = make(OBJ_COMP_NONE, 0, 0, 0, 0, &n);
	put(argv[1], "empty", 0, o, n);
	free(o);
	o = make(OBJ_COMP_NONE, 200, 4, 6, 40, &n);
	put(argv[1], "raw-small-blocks", REPAIR, o, n);
	put(argv[1], "raw-small-blocks-exact", 0, o, n);
	put_block(argv[1], "block-raw", BLOCK | FIXRAW | DERIVE, o, n);
	free(o);
	o = make(OBJ_COMP_ZSTD, 1000, 7, 10, 120, &n);
	put(argv[1], "zstd-rewrite-zstd", REPAIR | 0x10, o, n);
	put(argv[1], "zstd-rewrite-raw-t1", REPAIR | 0x00, o, n);
	put_block(argv[1], "block-zstd", BLOCK | FIXRAW, o, n);
	free(o);
	o = make(OBJ_COMP_ZSTD, 0, 2, 40, 300, &n);
	put(argv[1], "zstd-one-block-each", REPAIR | 0x70, o, n);
	free(o);
	o = make(OBJ_COMP_NONE, 64, 1, 3, 0, &n);
	put(argv[1], "raw-empty-batches", REPAIR | 0x20, o, n);
	free(o);
	return 0;
}
#endif
