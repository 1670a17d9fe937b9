/*
 * object.h - data objects: many streams' batches packed into one immutable
 * object for S3 (or file://).  The bytes are described in docs/FORMAT.md,
 * "Data objects"; this is an engine without I/O: batches in, object bytes
 * out, and the reverse, so the upload pipeline, the read path and the tests
 * all drive it with plain buffers.
 *
 * An object:
 *
 *     0        8                                    index_off            size-64   size
 *     +--------+------------------------------------+--------------------+--------+
 *     | header | data blocks: stream A's, then B's, | index: streams,    | footer |
 *     |        | ... (streams in id order)          | then blocks        |        |
 *     +--------+------------------------------------+--------------------+--------+
 *
 * A data block holds whole batches of one stream, in offset order, cut at a
 * target size (1 MiB by default) so that a read fetches only the blocks it
 * needs with one ranged GET (a stream's blocks are adjacent, so a run of them
 * is one range too).  Each block is stored raw or as one zstd frame, with a
 * CRC-32C of the stored bytes kept in the index.
 *
 * Reading, as the read path will:
 *   1. GET the last OBJ_FOOTER_LEN bytes or more (a suffix range; the reply's
 *      Content-Range gives the object's size): obj_footer_parse().  If the
 *      tail was long enough it already holds the index (obj_tail_index()).
 *   2. Otherwise GET [index_off, index_off + index_len): obj_index_parse().
 *   3. obj_find_stream() and obj_find_block() (or obj_find_time()) say which
 *      blocks hold a stream from an offset; obj_range() turns a run of them
 *      into one byte range.
 *   4. GET that range; obj_block_decode() each block, then iterate its
 *      batches with obj_batch_next().
 *
 * Trust: nothing read from an object is believed.  Every parser goes
 * through the sl_rd cursor, every length and count is checked against the
 * bytes that hold it and against the caps below before anything is
 * allocated, and the index is checked whole (offsets, positions, sums) so
 * that the lookups can rely on it.  Damage gives SL_E_CORRUPT (a checksum,
 * magic or consistency check failed) or SL_E_SHORT (the caller passed fewer
 * bytes than the object says are there); never a crash.
 *
 * Writing: obj_writer_add() takes batches grouped by stream, streams in
 * increasing id order (namespace bytes, then index), each stream's batches
 * in increasing offset order and not overlapping (gaps are allowed).  The
 * object is built in memory (objects are up to sluice.upload.bytes);
 * obj_writer_bytes() says how big it would be now, so the caller knows when
 * to cut.  obj_writer_finish() hands over the bytes.
 *
 * Names: obj_key() builds the object's key from the writer's node id, epoch,
 * a sequence number and a random nonce (see there for why).
 */
#ifndef SL_OBJECT_H
#define SL_OBJECT_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "stream.h"

#define OBJ_VERSION		1
#define OBJ_HEADER_LEN		8		/* "SLUICOBJ" */
#define OBJ_FOOTER_LEN		64
#define OBJ_INDEX_HDR_LEN	8
#define OBJ_STREAM_ENTRY_LEN	52
#define OBJ_BLOCK_ENTRY_LEN	52
#define OBJ_BATCH_HDR_LEN	24		/* before each batch inside a block */

/* Caps, part of the format: a reader refuses anything larger. */
#define OBJ_INDEX_MAX		(64u << 20)	/* index bytes */
#define OBJ_BLOCK_MAX		(128u << 20)	/* a block's stored or raw bytes */
/* The writer's own limits, within the format's. */
#define OBJ_BATCH_MAX		(64u << 20)	/* one batch's bytes */
#define OBJ_TARGET_MAX		(64u << 20)	/* the largest block target */
#define OBJ_TARGET_DEFAULT	(1u << 20)

/* How a block is stored (the compression byte of its index entry). */
enum obj_comp {
	OBJ_COMP_NONE = 0,
	OBJ_COMP_ZSTD = 1,
};

/* "none" or "zstd" (sluice.objects.compression) to OBJ_COMP_*; SL_E_INVALID otherwise. */
SL_MUST_CHECK int obj_comp_parse(const char *name, enum obj_comp *comp);

/* Who wrote an object: in its footer, and (all but created_ms) in its key. */
struct obj_meta {
	int32_t node;		/* node.id, >= 0 */
	uint64_t epoch;		/* the writer's epoch: grows every time the node starts writing */
	uint64_t seq;		/* grows with every object written in one epoch */
	uint64_t nonce;		/* random, chosen per object */
	int64_t created_ms;	/* wall clock, ms since the Unix epoch, as passed in */
};

/* One stream's entry in the index. */
struct obj_stream {
	struct stream_id id;
	int64_t first;		/* base offset of its first batch */
	int64_t last;		/* last offset of its last batch (base + count - 1) */
	int64_t max_ts;		/* largest max timestamp of its batches */
	uint32_t batches;
	uint32_t block0;	/* its first block in obj_index.blocks */
	uint32_t nblocks;	/* >= 1 */
};

/* One data block's entry in the index. */
struct obj_block {
	int64_t first;		/* base offset of its first batch */
	int64_t last;		/* last offset of its last batch */
	int64_t max_ts;		/* largest max timestamp of its batches */
	uint64_t pos;		/* where its stored bytes start in the object */
	uint32_t stored;	/* stored bytes (after compression) */
	uint32_t raw;		/* bytes once decompressed: the batch entries */
	uint32_t batches;	/* >= 1 */
	uint32_t crc;		/* CRC-32C of the stored bytes */
	uint8_t comp;		/* enum obj_comp */
	uint32_t stream;	/* its stream's position in the index (not stored: implied) */
};

/* ---- writing ---- */

struct obj_writer_opts {
	enum obj_comp comp;
	int level;		/* zstd level; 0 = zstd's default (3) */
	uint32_t target;	/* block target in raw bytes, 1..OBJ_TARGET_MAX; 0 = 1 MiB */
};

/* Private to object.c; here so callers can embed a writer. */
struct obj_writer {
	struct obj_writer_opts o;
	struct sl_wr out;		/* header and sealed blocks */
	struct sl_wr blk;		/* the open block's raw bytes */
	struct obj_block cur;		/* the open block (batches == 0: none) */
	struct obj_stream *streams;
	uint32_t nstreams, capstreams;
	struct obj_block *blocks;
	uint32_t nblocks, capblocks;
	uint64_t nbatches;
	uint8_t *zbuf;			/* compression scratch */
	size_t zcap;
	void *cctx;			/* ZSTD_CCtx, made on the first compressed block */
	int err;			/* first failure: every later call returns it */
};

/* Start an object; o may be NULL (zstd, default level and target). 0 or SL_E_INVALID. */
SL_MUST_CHECK int obj_writer_init(struct obj_writer *w, const struct obj_writer_opts *o);
/*
 * Add one batch of count offsets [base, base + count) whose largest
 * timestamp is max_ts; the n bytes at p are copied.  Returns 0; or, with
 * nothing added and the writer still usable, SL_E_INVALID (out of order:
 * a stream after a larger one or again after another, a base not above the
 * stream's last offset; count 0; base < 0; base + count > INT64_MAX; a
 * negative stream index) or SL_E_TOOBIG (n > OBJ_BATCH_MAX, or the index
 * would pass OBJ_INDEX_MAX); or SL_E_NOMEM, after which the writer is
 * failed and every later call returns it.
 */
SL_MUST_CHECK int obj_writer_add(struct obj_writer *w, const struct stream_id *id, int64_t base,
				 uint32_t count, int64_t max_ts, const uint8_t *p, size_t n);
/* The object's size if it were finished now (the open block counted raw). */
size_t obj_writer_bytes(const struct obj_writer *w);
/* Batches added so far (0: an empty object would be written). */
uint64_t obj_writer_batches(const struct obj_writer *w);
/*
 * Seal the last block, write index and footer (meta->node >= 0, else
 * SL_E_INVALID) and hand over the object: *out is malloc'd, the caller
 * free()s it.  The writer is spent either way; obj_writer_free() it.
 */
SL_MUST_CHECK int obj_writer_finish(struct obj_writer *w, const struct obj_meta *meta,
				    uint8_t **out, size_t *len);
void obj_writer_free(struct obj_writer *w);

/* ---- reading ---- */

struct obj_footer {
	struct obj_meta meta;
	uint64_t size;		/* the object's size, as passed to obj_footer_parse */
	uint64_t index_off;
	uint32_t index_len;
	uint32_t index_crc;
};

/*
 * Parse the footer from tail, the last n bytes (n >= OBJ_FOOTER_LEN) of an
 * object of size bytes.  Returns 0; SL_E_SHORT when n < OBJ_FOOTER_LEN;
 * SL_E_INVALID when n > size or the footer is whole but names a version or
 * flags this reader does not know; SL_E_CORRUPT for a bad magic or CRC, or
 * an index that does not fit the object.
 */
SL_MUST_CHECK int obj_footer_parse(const uint8_t *tail, size_t n, uint64_t size, struct obj_footer *f);
/* If the tail obj_footer_parse() got holds the whole index, 1 and its bytes in *ix; else 0. */
int obj_tail_index(const struct obj_footer *f, const uint8_t *tail, size_t n, struct span *ix);

struct obj_index {
	struct obj_stream *streams;	/* owned; by id, ascending */
	uint32_t nstreams;
	struct obj_block *blocks;	/* owned; in object order */
	uint32_t nblocks;
};

/*
 * Parse and check the index: p holds the n bytes at f->index_off (n must
 * be f->index_len: fewer is SL_E_SHORT, more SL_E_INVALID).  Returns 0,
 * SL_E_CORRUPT (CRC, or any entry inconsistent with the others or with the
 * object), or SL_E_NOMEM.  On success ix owns its arrays
 * (obj_index_free()); the bytes at p are not kept.
 */
SL_MUST_CHECK int obj_index_parse(const struct obj_footer *f, const uint8_t *p, size_t n,
				  struct obj_index *ix);
void obj_index_free(struct obj_index *ix);

/*
 * A whole object in memory: check the header, parse footer and index.
 * Same results as the two calls above.
 */
SL_MUST_CHECK int obj_parse(const uint8_t *p, size_t n, struct obj_footer *f, struct obj_index *ix);

/* The position of stream id in ix->streams, or SL_E_NOTFOUND. */
int obj_find_stream(const struct obj_index *ix, const struct stream_id *id);
/*
 * The block (index into ix->blocks) of stream s (a position from
 * obj_find_stream) holding offset, or the first block after it when offset
 * falls in a gap or before the stream's first offset; SL_E_NOTFOUND when
 * offset > the stream's last offset.
 */
int obj_find_block(const struct obj_index *ix, uint32_t s, int64_t offset);
/* The first block of stream s with a max timestamp >= ts, or SL_E_NOTFOUND. */
int obj_find_time(const struct obj_index *ix, uint32_t s, int64_t ts);
/*
 * The run of blocks to GET for a read starting at block b: b and the blocks
 * of the same stream after it, while their stored bytes total at most
 * max_bytes (b always counts).  *pos and *len give the byte range; returns
 * the number of blocks (>= 1).  b must be a valid block index.
 */
uint32_t obj_range(const struct obj_index *ix, uint32_t b, uint64_t max_bytes,
		   uint64_t *pos, uint64_t *len);

/* A decoded block. */
struct obj_block_data {
	const uint8_t *p;	/* the batch entries: into owned, or into the caller's bytes */
	size_t len;
	uint8_t *owned;		/* NULL when the block was stored raw */
};

/*
 * Decode one block: p holds the n stored bytes of block b (n must be
 * b->stored: fewer is SL_E_SHORT, more SL_E_INVALID).  Checks the CRC,
 * decompresses (refusing SL_E_TOOBIG when b->raw exceeds raw_cap) and checks
 * every batch entry against b.  Returns 0, SL_E_CORRUPT, SL_E_TOOBIG or
 * SL_E_NOMEM.  d->p stays valid while d is not freed and, for a raw block
 * (d->owned NULL), while the caller's bytes are.
 */
SL_MUST_CHECK int obj_block_decode(const struct obj_block *b, const uint8_t *p, size_t n,
				   size_t raw_cap, struct obj_block_data *d);
void obj_block_data_free(struct obj_block_data *d);

/* One batch of a decoded block; bytes borrowed from the obj_block_data. */
struct obj_batch {
	int64_t base;
	uint32_t count;
	int64_t max_ts;
	struct span bytes;
};

static inline void obj_batch_iter(struct sl_rd *it, const struct obj_block_data *d)
{
	rd_init(it, d->p, d->len);
}
/* 1 and the next batch in *b; 0 at the end (SL_E_CORRUPT only on bytes obj_block_decode never passed). */
SL_MUST_CHECK int obj_batch_next(struct sl_rd *it, struct obj_batch *b);

/*
 * Decoding keeps one zstd context per thread; a thread other than the
 * loop's that decoded blocks calls this before it ends.
 */
void obj_thread_cleanup(void);

/* ---- names ---- */

/*
 * The key of an object, relative to the store's prefix:
 *
 *     data/NNNNNNNNNN/EEEEEEEEEEEEEEEEEEEE/SSSSSSSSSSSSSSSSSSSS-XXXXXXXXXXXXXXXX.obj
 *          node id    epoch                sequence             nonce (hex)
 *
 * Node, epoch and sequence are zero-padded decimal, so keys sort as the
 * numbers do: listing data/NODE/ returns one node's objects in the order it
 * wrote them, and data/NODE/EPOCH/ one run of it (what a restarted node
 * scans to find objects it uploaded but never recorded in the manifest).
 * The nonce makes a key never repeat even when (node, epoch, sequence) does,
 * as after a node restarts on a blank WAL device and its epoch starts again;
 * uploads also use If-None-Match: * so a collision fails instead of
 * overwriting.  The same values are in the object's footer.
 *
 * Writes the NUL-terminated key to buf (OBJ_KEY_LEN + 1 bytes suffice);
 * returns its length, or SL_E_INVALID for node < 0, SL_E_TOOBIG for a short
 * buffer.
 */
#define OBJ_KEY_LEN 78
int obj_key(char *buf, size_t len, const struct obj_meta *m);
/* Parse a key (exactly that form); fills node, epoch, seq, nonce. 0 or SL_E_INVALID. */
SL_MUST_CHECK int obj_key_parse(const char *key, size_t n, struct obj_meta *m);

#endif
