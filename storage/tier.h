/*
 * tier.h - shared storage: the object store becomes the durable home of
 * every stream, the WAL only a buffer in front of it.
 *
 * The tier owns the manifest (storage/manifest.h) and the upload pipeline:
 *
 *   produce --> WAL record --> stream memory (hot tail)
 *                                   |
 *        every sluice.upload.interval.ms, or once sluice.upload.bytes wait:
 *                                   v
 *          cut: the durable batches of every stream not yet taken, packed
 *          into one data object (streams in id order; storage/object.h)
 *                                   |
 *          PUT data/<node>/<epoch>/<seq>-<nonce>.obj       (retried while S3 fails)
 *                                   |
 *          manifest edits: OBJECT, APPEND per stream range; with them the
 *          topic and group-offset edits made since the last commit
 *                                   |
 *          commit manifest version N+1 (put-if-absent)     (retried while S3 fails)
 *                                   |
 *          trim the WAL below the oldest record not yet in a committed
 *          version; uploaded batches may now leave memory (sluice.tail.bytes)
 *
 * So a crash at any point leaves the WAL holding everything a committed
 * version does not, and a restart replays the WAL over the manifest:
 * batches the manifest already holds (their offsets are below the
 * partition's end) are skipped, topic and group records are applied again
 * (each sets a value, so applying a suffix of the log again is harmless).
 *
 * Reads below a stream's memory tail go to the objects through the block
 * cache (storage/rcache.h): tier_read() is synchronous from the cache,
 * tier_fetch() brings what a read needs into it.
 *
 * The layer above (kafka/) stays the owner of topics and groups and tells
 * the tier of each durable change through the tier_topic_* and
 * tier_offset_* calls below, live and during WAL replay alike.  Every one
 * accepts t == NULL (no object store: the WAL is then never trimmed) and
 * does nothing.
 *
 * Compaction: every sluice.compaction.interval.ms the oldest run of small
 * objects (under half of sluice.upload.bytes, consecutive in creation
 * order, at least 2, together at most sluice.upload.bytes) is read, merged
 * into one object on the worker, PUT, and swapped in with REPLACE edits,
 * one per partition, when every range it replaces is still there; the old
 * objects retire and the collector deletes them after the grace period,
 * so storage holds at most the merged copy twice, for that long.  The next
 * compaction waits (bytes read + written) / sluice.compaction.bytes.per.sec.
 *
 * S3 outages: uploads and commits are retried with backoff, forever, while
 * produce continues into the WAL; when the WAL fills, appends fail with
 * SL_E_FULL and the produce path waits for space (store_space_wait).
 * Nothing here exits the process: the load at start retries until the
 * store answers.
 */
#ifndef SL_TIER_H
#define SL_TIER_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "../kernel/loop.h"
#include "manifest.h"
#include "object.h"
#include "objstore.h"
#include "stream.h"
#include "wal.h"

struct tier;
struct tier_fetch;

struct tier_options {
	int32_t node;			/* node.id */
	const char *cluster;		/* the WAL's cluster id: a bucket of another is refused */
	uint64_t upload_bytes;		/* sluice.upload.bytes */
	uint64_t upload_interval_ms;	/* sluice.upload.interval.ms */
	enum obj_comp comp;		/* sluice.objects.compression */
	size_t cache_bytes;		/* sluice.cache.bytes */
	size_t tail_bytes;		/* sluice.tail.bytes: uploaded batches kept in memory */
	int64_t gc_grace_ms;		/* sluice.objects.gc.grace.ms */
	int64_t gc_interval_ms;		/* sluice.objects.gc.interval.ms */
	int64_t compaction_interval_ms;	/* sluice.compaction.interval.ms; 0: no compaction */
	uint64_t compaction_rate;	/* sluice.compaction.bytes.per.sec */
	int64_t trim_interval_ms;	/* trims while under a quarter of the WAL is in use
					   come at most this often; 0: 10000 (tests: 1) */
};

/* The store, WAL and object store are borrowed and must outlive the tier. */
struct tier *tier_new(struct loop *l, struct store *st, struct wal *w, struct objstore *os,
		      const struct tier_options *o);
/* Stops timers and cancels what is under way (an upload in flight may still land: it is garbage). */
void tier_free(struct tier *t);

/*
 * Read the manifest from the object store, retrying with backoff (and a log
 * line per failure) until it loads; then fn(arg, err): 0, or SL_E_INVALID
 * when the bucket belongs to another cluster (logged; retrying cannot help).
 */
typedef void (*tier_ready_fn)(void *arg, int err);
SL_MUST_CHECK int tier_load(struct tier *t, tier_ready_fn fn, void *arg);
/* The state loaded (and, later, as edited): topics, partitions, offsets.  NULL before the load. */
const struct manifest *tier_manifest(const struct tier *t);
/*
 * Start writing, after the streams were restored from the manifest
 * (stream_restore) and the WAL replayed: claim the manifest with a new
 * epoch, then upload and commit on the timers.
 */
void tier_start(struct tier *t);

/* ---- edits from the layer above (t may be NULL) ---- */

void tier_topic_put(struct tier *t, const uint8_t id[16], const char *name, int32_t npartitions,
		    const struct mf_config *configs, uint32_t nconfigs);
void tier_topic_delete(struct tier *t, const uint8_t id[16]);
/* The partition's log start moved up (DeleteRecords, retention). */
void tier_log_start(struct tier *t, const uint8_t id[16], int32_t partition, int64_t offset);
void tier_offset_commit(struct tier *t, const struct mf_offset *o);
/* partition -1: every partition of the topic. */
void tier_offset_delete(struct tier *t, const char *group, const char *topic, int32_t partition);
void tier_group_delete(struct tier *t, const char *group);

/*
 * ---- the layer above's state ----
 *
 * The manifest carries two kinds of opaque bytes for the layer above
 * (kafka/: producer state), taken by hooks so that they agree with what the
 * WAL keeps:
 *
 *   partition(arg, id, end, w): at a cut, for each stream range taken,
 *     while its batches are taken (the same loop turn): the stream's state
 *     as of offset end (everything below end applied, nothing at or above).
 *     The bytes are kept with the range (a PUT retried keeps them) and set
 *     with manifest_partition_state() right after the range's APPEND, so a
 *     committed version describes exactly the offsets it holds, and the WAL
 *     keeps every batch above them until a later version holds those too.
 *     Nothing written: no state.  Unchanged bytes add nothing to the version.
 *   global(arg, w, version): when tier_global_dirty() was called, at the
 *     start of the next version's first commit attempt, where the WAL
 *     position the trim may reach is fixed: every metadata record below that
 *     position had been applied by the layer above, so the bytes reflect
 *     them all.  A dirty flag alone makes the tier commit a version.
 *
 * A hook's error (or its writer's) fails the edit as other failed edits do:
 * logged, and the WAL is never trimmed again, so a restart replays it all.
 * Compaction keeps the partition state; a topic's deletion drops it.
 */
struct tier_state_hooks {
	int (*partition)(void *arg, const struct stream_id *id, int64_t end, struct sl_wr *w);
	int (*global)(void *arg, struct sl_wr *w, uint16_t *version);
	void *arg;
};
/* t may be NULL (nothing then). */
void tier_set_state_hooks(struct tier *t, const struct tier_state_hooks *h);
void tier_global_dirty(struct tier *t);

/* ---- reads below the memory tail ---- */

/*
 * Batches of s from offset (stream_start(s) <= offset < stream_mem_start(s))
 * out of the block cache, as stream_read() returns them; SL_E_AGAIN when
 * they are not cached (start tier_fetch, then read again), SL_E_NOTFOUND
 * when no object holds offset (t NULL, or offset outside the objects).
 */
int tier_read(struct tier *t, struct stream *s, int64_t offset, size_t max_bytes, int min_one,
	      struct span *spans, int maxspans, size_t *total);

/*
 * Bring what tier_read(s, offset, want_bytes) needs into the cache and pin
 * it; fn(arg, err) runs once from the loop.  Release with tier_fetch_done()
 * (which also cancels one still under way: no callback after it).
 */
typedef void (*tier_fetch_fn)(void *arg, int err);
SL_MUST_CHECK int tier_fetch(struct tier *t, struct stream *s, int64_t offset, size_t want_bytes,
			     tier_fetch_fn fn, void *arg, struct tier_fetch **h);
void tier_fetch_done(struct tier *t, struct tier_fetch *h);

/*
 * Lookups by time below the memory tail (ListOffsets; storage/tier_time.c).
 * They look at the batches of s in objects from offset from (from the log
 * start when from is below it) up to limit, stream_mem_start(s) at the
 * call: memory holds the rest, search it afterwards (a batch at or above
 * limit may be found too, when an object's block reaches past it; memory
 * holds the same batch):
 *   tier_find_time      the first batch whose max timestamp is >= ts;
 *   tier_find_max_time  the batch with the largest max timestamp, when it
 *                       is >= ts (ts >= 0), the first of equals.
 * Returns 0 and *h: fn(arg, err, b) runs once, from the loop, never inside
 * the call, with b the batch, or NULL when the objects hold none (err 0) or
 * a load failed (err: the store's error, SL_E_CORRUPT, SL_E_NOTFOUND for a
 * missing object).  Or at once, with no callback: SL_E_NOTFOUND when no
 * object range can hold one (t NULL, nothing below limit, every range's
 * max timestamp below ts), SL_E_NOMEM.  b's bytes are pinned in the block
 * cache until tier_find_time_done(), which also cancels a lookup still
 * under way (no callback after it).  s is only read during the call.
 */
struct tier_time;
struct tier_batch {
	int64_t base;
	uint32_t count;
	int64_t max_ts;
	struct span bytes;
};
typedef void (*tier_time_fn)(void *arg, int err, const struct tier_batch *b);
SL_MUST_CHECK int tier_find_time(struct tier *t, struct stream *s, int64_t from, int64_t ts,
				 tier_time_fn fn, void *arg, struct tier_time **h);
SL_MUST_CHECK int tier_find_max_time(struct tier *t, struct stream *s, int64_t from, int64_t ts,
				     tier_time_fn fn, void *arg, struct tier_time **h);
void tier_find_time_done(struct tier *t, struct tier_time *h);

/* ---- what a partition holds, for retention ---- */

/* A run of a partition's offsets [first, last] and its bytes: an object range or a batch in memory. */
struct tier_chunk {
	int64_t first, last;
	int64_t max_ts;		/* largest timestamp, -1 unknown */
	uint64_t bytes;
};
/*
 * Call fn for each chunk of s from its log start up, oldest first: the
 * object ranges of the manifest (t non-NULL), then the batches in memory
 * above them, up to the high watermark.  Stops early when fn returns
 * nonzero.  The first chunk may begin below the log start (a range or
 * batch the start falls inside).
 */
typedef int (*tier_chunk_fn)(void *arg, const struct tier_chunk *c);
void tier_chunks(struct tier *t, struct stream *s, tier_chunk_fn fn, void *arg);

/* The block cache behind tier_read (for reads that need more than batches: ListOffsets by time). */
struct rcache *tier_rcache(struct tier *t);

struct tier_stats {
	uint64_t objects, object_bytes;		/* data objects uploaded and their bytes */
	uint64_t puts, put_failures;		/* data object PUTs */
	uint64_t commits, commit_failures;	/* manifest versions */
	uint64_t trimmed;			/* WAL position trimmed to */
	uint64_t gc_deleted;			/* keys the collector deleted */
	uint64_t compactions, compacted_objects;	/* merges committed to the manifest, objects merged */
	uint64_t compaction_aborts;		/* merges dropped (the state moved on, a failure) */
	int fenced;				/* another writer took the manifest */
};
void tier_stats(const struct tier *t, struct tier_stats *st);

#endif
