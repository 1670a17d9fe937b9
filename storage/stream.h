/*
 * stream.h - streams: one append-only sequence of batches per partition.
 *
 * storage/ knows nothing of Kafka.  A stream holds opaque batches, each
 * covering a dense range of logical offsets [base, base + count) and carrying
 * the largest timestamp inside it.  The caller (kafka/) decides what a batch
 * is; the stream decides where it lives and when it is durable.
 *
 * Offsets, per stream:
 *
 *     start <= hw <= next
 *     start  first offset still readable (log start offset)
 *     hw     high watermark: everything below is durable and readable
 *     next   the offset the next append will get (log end offset)
 *
 * Appends are asynchronous.  stream_append() copies the batch, assigns its
 * base offset (returned at once) and later calls op->fn from the loop when
 * the batch is durable; only then does hw pass it, so readers never see data
 * that could be lost.  Completions arrive in append order, store-wide.
 *
 * With a WAL (store_set_wal), durable means the batch's WAL record is on
 * stable storage; store_recover() replays the WAL into the streams at start.
 * Without one (unit tests), durable means copied into memory, and the
 * callback runs at the end of the loop turn.  Batches also stay in memory,
 * where reads find them.
 *
 * The store also journals opaque metadata records for the layer above
 * (kafka/ writes topic changes): store_append_meta() makes one durable in
 * log order with the data, and recovery hands them back, in order, to the
 * handler set with store_set_meta_handler().
 *
 * Reads return borrowed spans of whole batches; they are valid until control
 * returns to the loop (a delete or retention may free them afterwards).
 */
#ifndef SL_STREAM_H
#define SL_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "../kernel/loop.h"
#include "wal.h"

struct store;
struct stream;

/* A stream is named by a 16-byte namespace (a topic id) and an index. */
struct stream_id {
	uint8_t ns[16];
	int32_t index;
};

typedef void (*stream_done_fn)(void *arg, int err, int64_t base);

/* One pending append; embedded in the caller's request state. */
struct stream_op {
	stream_done_fn fn;
	void *arg;
	struct stream_op *next;		/* owned by the stream while pending */
	struct stream *s;		/* NULL once the stream is deleted */
	struct store *st;
	int64_t base;
	int64_t end;			/* base + count */
	size_t len;			/* the batch's bytes (0 for metadata) */
	int err;
	int meta;			/* a metadata record, not a batch */
	struct wal_op wop;		/* the record's durability, with a WAL */
};

/* Woken once when hw moves or the stream is deleted; then disarmed. */
struct stream_waiter {
	loop_fn fn;
	void *arg;
	struct stream_waiter *prev, *next;	/* owned by the stream while armed */
	struct stream *s;
};

struct store *store_new(struct loop *l);
/* Make appends durable through w (owned by the caller, outliving the store). */
void store_set_wal(struct store *st, struct wal *w);

/* Metadata records: the handler gets each replayed payload, borrowed. */
typedef void (*store_meta_fn)(void *arg, const uint8_t *p, size_t n);
void store_set_meta_handler(struct store *st, store_meta_fn fn, void *arg);
/*
 * Journal one metadata record; op->fn(op->arg, err, 0) runs once it is
 * durable.  Returns 0, or SL_E_FULL / SL_E_CLOSED / SL_E_TOOBIG (op->fn then
 * not called).
 */
int store_append_meta(struct store *st, const uint8_t *p, size_t n, struct stream_op *op);
/* Replay the WAL into the streams and the meta handler; once, before serving. */
int store_recover(struct store *st, struct wal_recovery *rec);

/*
 * Would appends of total bytes in n batches fit in the WAL now?  Callers
 * that must append several batches all-or-nothing ask first; nothing else
 * runs between the question and the appends within one loop turn.
 */
int store_has_room(struct store *st, size_t total, int n);
/* Run sw->fn once when the WAL frees space. */
void store_space_wait(struct store *st, struct wal_space_waiter *sw);
void store_space_cancel(struct store *st, struct wal_space_waiter *sw);
/* Frees every stream; pending ops complete with SL_E_CLOSED first. */
void store_destroy(struct store *st);

/* The stream named id, created empty when create is set; NULL otherwise. */
struct stream *store_stream(struct store *st, const struct stream_id *id, int create);
/* Remove the stream: pending ops fail with SL_E_CLOSED, waiters are woken. */
void stream_delete(struct stream *s);

int64_t stream_start(const struct stream *s);
int64_t stream_hw(const struct stream *s);
int64_t stream_next(const struct stream *s);

/*
 * Append one batch of count offsets whose largest timestamp is max_ts.
 * The caller has already written stream_next(s) into the batch if its
 * format records the base offset.  Bytes are copied.  op->fn and op->arg
 * must be set; op is owned by the stream until op->fn runs.
 * Returns the base offset, or a negative error (op->fn is then not called).
 */
int64_t stream_append(struct stream *s, const uint8_t *batch, size_t len,
		      uint32_t count, int64_t max_ts, struct stream_op *op);

/*
 * Read batches at or after offset, stopping before max_bytes would be
 * exceeded; with min_one set the first batch is returned whole even when it
 * alone exceeds max_bytes.  The first span is the batch containing offset.
 * Fills up to maxspans spans and their total length; returns the number of
 * spans (0 when offset == hw), or SL_E_NOTFOUND when offset < start or
 * offset > hw.
 */
int stream_read(struct stream *s, int64_t offset, size_t max_bytes, int min_one,
		struct span *spans, int maxspans, size_t *total);

/*
 * The first batch whose max timestamp is >= ts: its span, base offset and
 * count.  Returns 0, or SL_E_NOTFOUND when there is none below hw.
 */
int stream_find_time(struct stream *s, int64_t ts, struct span *batch,
		     int64_t *base, uint32_t *count);
/* The largest max timestamp below hw and the base of its batch (-1 if empty). */
int64_t stream_max_time(struct stream *s, int64_t *base);

/*
 * Advance start (DeleteRecords, retention); whole batches below it are
 * freed.  start must not pass hw.
 */
int stream_set_start(struct stream *s, int64_t start);

/*
 * Shared storage (storage/tier.h): offsets [start, mem_start) live only in
 * data objects; [mem_start, next) in memory.  Without a tier mem_start is
 * start (or the first batch still held).
 */
int64_t stream_mem_start(const struct stream *s);
/*
 * A stream created empty whose offsets below end are in objects (the
 * manifest says so): start, hw, next and mem_start are set, nothing is in
 * memory.  SL_E_INVALID if the stream is not empty or start > end.
 */
int stream_restore(struct stream *s, int64_t start, int64_t end);

/* One batch held in memory, for stream_foreach. */
struct stream_batch {
	int64_t base;
	uint32_t count;
	int64_t max_ts;
	struct span bytes;
};
/*
 * Call fn for each batch in memory below hw whose offsets end above from,
 * in offset order, until fn returns nonzero.
 */
typedef int (*stream_batch_fn)(void *arg, const struct stream_batch *b);
void stream_foreach(struct stream *s, int64_t from, stream_batch_fn fn, void *arg);

static inline void stream_waiter_init(struct stream_waiter *w, loop_fn fn, void *arg)
{
	w->fn = fn;
	w->arg = arg;
	w->prev = w->next = NULL;
	w->s = NULL;
}
void stream_wait(struct stream *s, struct stream_waiter *w);
void stream_unwait(struct stream_waiter *w);

/* Totals for metrics and tests. */
size_t store_bytes(const struct store *st);

/*
 * ---- for the upload pipeline (storage/tier.c) ----
 *
 * Two more marks per stream, start <= up <= cut <= hw:
 *   cut  offsets below were taken into a data object (uploaded or on the way);
 *   up   offsets below are in a committed manifest version, so their
 *        batches may leave memory (stream_evict) and their WAL records
 *        may be trimmed.
 * stream_restore() sets both to the restored end.
 */
const struct stream_id *stream_id_of(const struct stream *s);
int64_t stream_cut(const struct stream *s);
int64_t stream_up(const struct stream *s);
void stream_set_cut(struct stream *s, int64_t cut);
void stream_set_up(struct stream *s, int64_t up);
/* Where the WAL record of the first batch at or above offset starts; UINT64_MAX if none in memory. */
uint64_t stream_wal_pos(const struct stream *s, int64_t offset);
/* Free the batches wholly below upto (at most up); returns the bytes freed. */
size_t stream_evict(struct stream *s, int64_t upto);
/* Call fn for every stream, until it returns nonzero. */
void store_foreach_stream(struct store *st, int (*fn)(void *arg, struct stream *s), void *arg);
/*
 * Durable batch bytes not yet taken by an upload (an estimate: deleted data
 * is counted until the next full cut sets it with store_set_uncut).  The
 * hook task is deferred whenever it reaches threshold.
 */
uint64_t store_uncut(const struct store *st);
void store_set_uncut(struct store *st, uint64_t bytes);
void store_set_upload_hook(struct store *st, uint64_t threshold, struct loop_task *t);
/* The end of the last WAL record whose append completed (after recovery: the head). */
uint64_t store_done_pos(const struct store *st);

#endif
