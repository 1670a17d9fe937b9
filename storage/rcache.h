/*
 * rcache.h - reading data objects through a bounded cache: the cold read
 * path.
 *
 * The broker keeps the recent tail of every partition in memory; older
 * records live only in data objects (storage/object.h, docs/FORMAT.md).  A
 * fetch below the memory tail asks this cache, which reads just what it
 * needs with ranged GETs and keeps it for the next reader:
 *
 *   - an object's index: one GET of the object's last bytes (a range ending
 *     at size - 1; the size is known from the manifest), which usually holds
 *     footer and index together; otherwise a second GET of the index;
 *   - data blocks: the run of a stream's blocks from the one holding the
 *     offset, in one ranged GET (obj_range), decoded (CRC checked, zstd
 *     undone) and kept decoded.
 *
 * Two steps, so the fetch path stays synchronous where it can:
 *
 *   rcache_read()   synchronous: whole batches from cached blocks, or
 *                   SL_E_AGAIN when the block holding the offset is not in
 *                   the cache;
 *   rcache_load()   asynchronous: bring the index and the blocks a read
 *                   needs into the cache and pin them until rcache_unpin(),
 *                   so a fetch that waited for several loads finds all of
 *                   them when it is built, however small the cache.
 *
 * Read-ahead: a load for offset O of stream S in object K fetches the
 * blocks from O's block on for at least want_bytes of stored bytes, and
 * whole blocks up to the larger of want_bytes and the cache's read-ahead
 * size (rcache_options.readahead, default 4 MiB), never past S's last block
 * in K.  A consumer reading sequentially from the start of a topic thus
 * issues one GET per read-ahead run, not one per fetch.  rcache_prefetch()
 * starts such a load without a caller waiting (the layer above uses it for
 * the next object of a partition).
 *
 * Bounds: decoded blocks and parsed indexes count against cap bytes
 * (sluice.cache.bytes); the least recently used unpinned entries are
 * evicted when an insert would pass the cap.  Pinned entries are never
 * evicted, so the cache may exceed cap while loads hold pins; every pin is
 * released by its owner.  Loads of the same bytes are coalesced: a second
 * load of a block being fetched waits for the first GET.  cap 0 keeps
 * nothing beyond what pins hold.
 *
 * Trust: objects are parsed by object.c's checked parsers; damage
 * (SL_E_CORRUPT), a missing object (SL_E_NOTFOUND) and store errors come
 * back through the load's callback and a log line naming the key; never a
 * crash.  A failed load caches nothing, so the next read tries again.
 *
 * Ownership: keys are copied.  Spans from rcache_read() are borrowed:
 * valid until control returns to the loop (an eviction can only happen in
 * a later loop turn, or inside rcache_load/rcache_prefetch).  Callbacks run
 * from the loop, never inside the call that started the load.
 */
#ifndef SL_RCACHE_H
#define SL_RCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "../kernel/loop.h"
#include "objstore.h"
#include "stream.h"

struct rcache;
struct rcache_pin;
struct obj_index;
struct obj_block_data;

struct rcache_options {
	size_t cap;		/* bytes of decoded blocks and indexes kept unpinned */
	size_t readahead;	/* stored bytes per block GET; 0: 4 MiB */
	size_t tail_guess;	/* bytes of the first GET of an object's end; 0: 64 KiB */
};

struct rcache *rcache_new(struct loop *l, struct objstore *os, const struct rcache_options *o);
/* Cancels every load (no callbacks), releases everything; pins are void afterwards. */
void rcache_free(struct rcache *c);

/* Where to read: stream id's records from offset on, in object key of size bytes. */
struct rcache_where {
	const char *key;
	uint64_t size;		/* the object's size, from the manifest */
	struct stream_id id;
	int64_t offset;
};

typedef void (*rcache_fn)(void *arg, int err);

/*
 * Make the blocks of w->id from the one holding w->offset (or the first
 * after it) cached and pinned: at least want_bytes of stored bytes of them,
 * or up to the stream's last block in the object.  Returns 0 and *pin (fn
 * runs once, later, from the loop, with 0 or the error); or an error at
 * once and no callback (SL_E_INVALID, SL_E_NOMEM).  When everything is
 * already cached, fn still runs from the loop, in a later turn.  An offset
 * past the stream's last in the object (INT64_MAX) loads and pins the
 * index alone (for rcache_index).  The pin
 * holds what it loaded until rcache_unpin(); unpinning a load still under
 * way cancels it for this caller (no callback after unpin returns).
 */
SL_MUST_CHECK int rcache_load(struct rcache *c, const struct rcache_where *w, size_t want_bytes,
			      rcache_fn fn, void *arg, struct rcache_pin **pin);
void rcache_unpin(struct rcache *c, struct rcache_pin *pin);

/* A load nobody waits for (read-ahead).  Ignored when the cache is busy or full of pins. */
void rcache_prefetch(struct rcache *c, const struct rcache_where *w, size_t want_bytes);

/*
 * Whole batches of w->id from cached blocks of w->key, as stream_read()
 * gives them: the first is the batch holding w->offset (or the first batch
 * after it, when the offset falls in a gap), then the following batches
 * while the total stays within max_bytes (with min_one the first batch is
 * returned even when larger), across consecutive cached blocks, never past
 * the stream's last batch in the object.  Fills up to maxspans spans, their
 * total bytes in *total and in *next the offset after the last batch
 * returned.  Returns the number of spans; 0 when w->offset is past the
 * stream's last offset in the object (*next = w->offset); SL_E_AGAIN when
 * the index or the block holding the first batch is not cached (batches
 * from cached blocks are returned even when a later block is missing: the
 * read just ends there); SL_E_NOTFOUND when the stream is not in the
 * object.
 */
int rcache_read(struct rcache *c, const struct rcache_where *w, size_t max_bytes, int min_one,
		struct span *spans, int maxspans, size_t *total, int64_t *next);

/*
 * What a lookup that needs more than whole batches reads (ListOffsets by
 * time, storage/tier_time.c): the parsed index of key, and the decoded
 * batch entries of its block b (iterate them with obj_batch_iter and
 * obj_batch_next; d->owned stays NULL).  Both are borrowed like
 * rcache_read's spans, and stay valid while a pin holds them.
 * rcache_index: NULL when the index is not cached.  rcache_block: 0;
 * SL_E_AGAIN when the index or the block is not cached; SL_E_INVALID when
 * b is not a block of the index.
 */
const struct obj_index *rcache_index(struct rcache *c, const char *key);
int rcache_block(struct rcache *c, const char *key, uint32_t b, struct obj_block_data *d);

struct rcache_stats {
	uint64_t hits, misses;		/* rcache_read found / did not find the first block */
	uint64_t gets, get_bytes;	/* GETs issued to the store and bytes they returned */
	uint64_t errors;		/* failed loads */
	size_t bytes, pinned_bytes;	/* decoded bytes held now, of which pinned */
	size_t entries;
};
void rcache_stats(const struct rcache *c, struct rcache_stats *st);

#endif
