/*
 * pstate.h - idempotent and transactional producers' state: per partition,
 * what each producer id last appended, so that a retried batch is recognised
 * and a batch out of order is refused; which transactions are open (the last
 * stable offset) and which were aborted (what read_committed fetches skip);
 * and the allocator of producer ids.  An engine without I/O: no clock, no
 * WAL, no manifest.  Every call that needs the time takes `now`, wall-clock
 * milliseconds (it is stored in snapshots and compared across restarts, so
 * it cannot be the monotonic clock).
 *
 * The semantics are Kafka 3.x's (ProducerStateManager, ProducerAppendInfo,
 * ProducerStateEntry) on the partition side: data batches of idempotent and
 * transactional producers, and the COMMIT/ABORT markers (control batches) the
 * transaction coordinator writes, with Kafka's marker epoch check for
 * transaction versions 0 and 1 (a marker's epoch may equal the producer's).
 * Not handled here: coordinator epochs (TRANSACTION_COORDINATOR_FENCED), the
 * stricter epoch rule of transaction version 2, and the coordinator itself.
 *
 * One producer's entry in one partition's table:
 *
 *               pst_append (any epoch e), pst_apply_marker (epoch e, no batches)
 *   (absent) ───────────────────────────▶ epoch e, batches [b1]
 *      ▲                                     │  pst_append, epoch e: push the batch,
 *      │                                     │  the oldest goes when there are 5
 *      │                                     │  pst_append or a marker, epoch e' != e:
 *      │                                     ▼  epoch e', batches forgotten
 *      └─── pst_expire (idle >= expiration) ─┘
 *           pst_truncate_head (nothing at or above the log start), pst_remove
 *           (expiry and truncation never remove a producer with an ongoing
 *           transaction; pst_remove does)
 *
 * and, independently of the batches, its transaction:
 *
 *                  pst_append of a transactional batch at offset f
 *   no transaction ───────────────────────────────────────────────▶ ongoing,
 *   (txn_first_offset -1)                                          txn_first_offset f
 *        ▲                                                              │
 *        │  pst_apply_marker at offset m: COMMIT, or ABORT, which adds  │
 *        └── (pid, f, m) to the table's aborted list; returns (pid, f, m)┘
 *
 * Later transactional batches of an ongoing transaction do not move f.  A
 * marker for a producer with no ongoing transaction (a partition it never
 * wrote to in that transaction) only updates the epoch and returns 0.
 * Markers do not touch sequences; a marker with a new epoch forgets the
 * cached batches as a data batch with a new epoch does (Kafka's
 * maybeUpdateProducerEpoch), so the next batch of that epoch starts at 0.
 *
 * An absent producer behaves as an entry with no epoch (-1), no batches and
 * no transaction: it accepts any sequence (Kafka since KIP-360: its state may
 * have gone with retention, DeleteRecords or expiry, and the producer cannot
 * tell).
 *
 * pst_check's decisions, in Kafka's order, for a batch (pid, epoch, first
 * sequence f, last sequence l) against the entry (E = its epoch, -1 when
 * absent):
 *   1. pid < 0: not idempotent, APPEND, no state.
 *   2. f < 0 or count < 1: REJECT INVALID_RECORD (Kafka's LogValidator).
 *   3. epoch == E and (f, l) equals one of the <= 5 cached batches:
 *      DUPLICATE, with that batch's offsets and max timestamp.
 *   4. epoch < E: REJECT INVALID_PRODUCER_EPOCH (the old epoch is fenced;
 *      Kafka >= 2.7 answers produce with this, not PRODUCER_FENCED).
 *   5. epoch != E (a bumped epoch): f must be 0 unless E is -1,
 *      else REJECT OUT_OF_ORDER_SEQUENCE_NUMBER.
 *   6. epoch == E != -1: f must follow the newest cached batch's last
 *      sequence (last + 1, INT32_MAX wraps to 0; with no cached batch f
 *      must be 0), else REJECT OUT_OF_ORDER_SEQUENCE_NUMBER.
 *   7. a batch that is not transactional from a producer with an ongoing
 *      transaction: REJECT INVALID_TXN_STATE (Kafka's appendDataBatch).
 *   8. otherwise APPEND.
 * Sequences wrap: a batch of `count` records starting at f ends at
 * l = (f + count - 1) mod 2^31, as Kafka's DefaultRecordBatch computes it.
 *
 * The last stable offset (LSO) is the smallest first offset of an ongoing
 * transaction, or the high watermark when that is lower:
 *     LSO = min(high watermark, pst_first_unstable(t)).
 * Kafka also holds the LSO at a completed transaction's first offset until
 * its marker is below the high watermark.  Here the transaction leaves the
 * LSO when pst_apply_marker runs, so a read_committed reader may get its
 * data (never its marker) before the marker is durable: the outcome is
 * already the coordinator's decision, which it writes again until it is
 * durable, and an ABORT is in the aborted list from pst_apply_marker on, so
 * the reader skips that data.  (After a crash before the marker is durable,
 * replay opens the transaction again and the LSO goes back to its start
 * until the coordinator's retry lands.)
 *
 * The aborted list holds (pid, first offset, marker offset) of every aborted
 * transaction, as Kafka's transaction index does, until head truncation
 * passes its marker.  Ordered by first offset, with the running maximum of
 * the marker offsets beside it, so a range query (pst_aborted) is two binary
 * searches and a walk over the transactions that started in the range.
 *
 * How the broker uses it (the later wiring):
 *   Produce:  pst_check; on APPEND write the batch to the WAL, and in the
 *             same turn of the loop pst_append with the offsets it got, the
 *             batch's max timestamp as stored (the broker's time for
 *             LogAppendTime) and its transactional bit, so a retry arriving
 *             while the original waits for durability is seen as a DUPLICATE
 *             and the first transactional batch opens the transaction (the
 *             LSO stops there at once).  A DUPLICATE is answered NONE with
 *             base offset dup.first_offset and log_append_time
 *             dup.max_timestamp, as Kafka's UnifiedLog does, but only once
 *             the original is durable (its own answer waits for the same
 *             thing).  If the WAL write fails after pst_append, pst_remove
 *             the producer: the offsets never became durable and must not be
 *             handed to a retry as a duplicate.
 *   WriteTxnMarkers (the coordinator): pst_check_marker; when it allows,
 *             write the control batch to the WAL and in the same turn
 *             pst_apply_marker with the offset it got.  A marker whose WAL
 *             write fails needs no undo: the coordinator retries it, and the
 *             retry, at a new offset or at the same one, ends nothing more
 *             (the transaction already ended, the epoch is already set).
 *   Fetch:    read_committed reads up to LSO = min(hw, pst_first_unstable)
 *             and answers the aborted transactions pst_aborted(fetch offset,
 *             LSO) gives (Kafka's collectAbortedTxns with the LSO as upper
 *             bound); read_uncommitted reads up to hw and gets no list.
 *   DescribeProducers: pst_foreach, with pst_entry_last_seq,
 *             pst_entry_last_timestamp and txn_first_offset of each entry.
 *   Snapshot: pst_encode into the manifest; on start pst_decode, then replay
 *             the WAL's batches above it in offset order: data batches
 *             through pst_append, control batches through pst_apply_marker
 *             (an offset at or below the newest one an entry has seen
 *             changes nothing, so an overlap between snapshot and replay is
 *             harmless).
 *   InitProducerId without a transactional id: a fresh id from the
 *             allocator and epoch 0 (Kafka ignores the id and epoch the
 *             client sends then).
 *
 * Ownership: a table owns its entries and its aborted list; a const struct
 * pst_entry pointer from pst_find or pst_foreach is valid until the next
 * call that changes that table.  Nothing else is kept from the caller's
 * arguments.  Tables are not thread-safe.
 */
#ifndef SL_KAFKA_PSTATE_H
#define SL_KAFKA_PSTATE_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"

/* Batches remembered per producer (Kafka's NUM_BATCHES_TO_RETAIN). */
#define PST_BATCHES 5
/* producer.id.expiration.ms, Kafka's default: one day. */
#define PST_EXPIRATION_MS_DEFAULT 86400000LL
/* A snapshot decodes to at most this many producers per partition. */
#define PST_MAX_PRODUCERS (1u << 20)
/* A table holds at most this many aborted transactions (a snapshot too). */
#define PST_MAX_ABORTED (1u << 22)

/* A batch as its v2 header describes it. */
struct pst_batch {
	int64_t producer_id;	/* producerId @43; < 0: not idempotent */
	int16_t epoch;		/* producerEpoch @51 */
	int32_t first_seq;	/* baseSequence @53 */
	int32_t count;		/* records: lastOffsetDelta @23 + 1 */
	int8_t transactional;	/* attributes @21 & 0x10 */
};

/* What is remembered of one appended batch. */
struct pst_meta {
	int32_t first_seq, last_seq;
	int64_t first_offset, last_offset;
	int64_t max_timestamp;
};

struct pst_entry {
	int64_t producer_id;
	int16_t epoch;			/* -1: none (only from an epoch -1 batch or marker) */
	int nbatches;			/* 0..PST_BATCHES */
	struct pst_meta batch[PST_BATCHES];	/* oldest first */
	int64_t last_append_ms;		/* wall clock of the latest append or marker */
	int64_t last_offset;		/* the newest offset seen: a batch's last or a
					   marker's; -1 none (only from a snapshot) */
	int64_t txn_first_offset;	/* the ongoing transaction's first offset; -1 none */
	size_t heap_at;			/* the table's: place among ongoing transactions */
	struct pst_entry *next;		/* the table's hash chain */
};

/* A completed transaction: first_offset its first batch's, last_offset its marker's. */
struct pst_txn {
	int64_t producer_id;
	int64_t first_offset, last_offset;
};

/* DescribeProducers' LastSequence: the newest cached batch's last sequence, -1 none. */
static inline int32_t pst_entry_last_seq(const struct pst_entry *e)
{
	return e->nbatches ? e->batch[e->nbatches - 1].last_seq : -1;
}

/*
 * DescribeProducers' LastTimestamp: the newest cached batch's max timestamp,
 * -1 none.  (Kafka reports a marker's timestamp after a marker; markers
 * carry none here.)
 */
static inline int64_t pst_entry_last_timestamp(const struct pst_entry *e)
{
	return e->nbatches ? e->batch[e->nbatches - 1].max_timestamp : -1;
}

struct pst_table;

/* An empty table, or NULL without memory. */
struct pst_table *pst_table_new(void);
void pst_table_free(struct pst_table *t);
/* Producers in the table. */
size_t pst_count(const struct pst_table *t);
/* The producer's entry, or NULL. */
const struct pst_entry *pst_find(const struct pst_table *t, int64_t producer_id);

/* (f + count - 1) mod 2^31: the last sequence of a batch (f >= 0, count >= 1). */
int32_t pst_last_seq(int32_t first_seq, int32_t count);

enum pst_verdict {
	PST_APPEND,		/* write the batch, then pst_append it */
	PST_DUPLICATE,		/* written before: do not write; *dup says where */
	PST_REJECT,		/* answer the partition with *err */
};

/*
 * Decide about data batch b (the rules above).  *err is KERR_NONE unless
 * PST_REJECT; *dup is filled only for PST_DUPLICATE.  Changes nothing.
 */
enum pst_verdict pst_check(const struct pst_table *t, const struct pst_batch *b, int16_t *err,
			   struct pst_meta *dup);

/*
 * Record data batch b, written at offsets first_offset .. first_offset +
 * count - 1 with the batch's max timestamp: a new epoch forgets the cached
 * batches, the oldest of PST_BATCHES is dropped, the entry's last append
 * time becomes now (never earlier than it was), and a transactional batch of
 * a producer with no ongoing transaction opens one at first_offset.  Call it
 * for batches pst_check let through, and for each data batch replayed from
 * the WAL; it does not check sequences or transaction state (a batch that is
 * not transactional leaves an ongoing transaction open).  A batch whose
 * first offset is at or below the newest offset the entry has seen was
 * applied already and changes nothing.  pid < 0: nothing.  0; SL_E_INVALID
 * for a batch or offsets that cannot be (f < 0, count < 1, first_offset < 0,
 * the last offset past INT64_MAX); SL_E_NOMEM for a new producer or a new
 * transaction without memory (the table is then unchanged).
 */
SL_MUST_CHECK int pst_append(struct pst_table *t, const struct pst_batch *b, int64_t first_offset,
			     int64_t max_timestamp, int64_t now);

/*
 * A COMMIT or ABORT marker for (pid, epoch) may be written unless epoch is
 * below the entry's: then KERR_INVALID_PRODUCER_EPOCH (Kafka's
 * checkProducerEpoch for transaction versions 0 and 1).  An absent producer
 * allows any epoch.  KERR_NONE otherwise.  Changes nothing.
 */
int16_t pst_check_marker(const struct pst_table *t, int64_t producer_id, int16_t epoch);

/*
 * Apply a marker (commit nonzero: COMMIT, else ABORT) written at
 * marker_offset, as Kafka's appendEndTxnMarker: the entry's epoch becomes
 * epoch (a different one forgets the cached batches), its last append time
 * becomes now (never earlier), and its ongoing transaction ends.  Returns 1
 * with *done = (pid, its first offset, marker_offset) when there was one,
 * and an ABORT then adds *done to the aborted list; 0 when there was none
 * (done untouched).  An absent producer gets an entry with the epoch and no
 * batches.  A marker_offset at or below the newest offset the entry has seen
 * is a replay: 0, nothing changes.  Sequences are not touched.  It does not
 * check the epoch (pst_check_marker does; WAL replay applies whatever was
 * written).  Errors, the table then unchanged: SL_E_INVALID (pid < 0,
 * marker_offset < 0), SL_E_NOMEM, SL_E_FULL (the aborted list holds
 * PST_MAX_ABORTED).
 */
SL_MUST_CHECK int pst_apply_marker(struct pst_table *t, int64_t producer_id, int16_t epoch,
				   int commit, int64_t marker_offset, int64_t now,
				   struct pst_txn *done);

/*
 * The smallest first offset of an ongoing transaction, INT64_MAX when there
 * is none; the LSO is its min with the high watermark.  O(1).
 */
int64_t pst_first_unstable(const struct pst_table *t);

/*
 * Call fn for every aborted transaction with last_offset >= from and
 * first_offset < upto, in increasing first offset (ties in the order their
 * markers were applied), until fn returns nonzero (Kafka's
 * collectAbortedTxns, with the LSO as upto).  O(log n) plus the transactions
 * that started before upto and after the oldest one still open at from.  fn
 * must not change the table.
 */
void pst_aborted(const struct pst_table *t, int64_t from, int64_t upto,
		 int (*fn)(void *arg, const struct pst_txn *x), void *arg);

/* Aborted transactions in the list. */
size_t pst_aborted_count(const struct pst_table *t);

/*
 * Call fn for every producer, in no particular order (the hash table's),
 * until fn returns nonzero.  fn must not change the table.
 */
void pst_foreach(const struct pst_table *t, int (*fn)(void *arg, const struct pst_entry *e),
		 void *arg);

/* Forget one producer and its ongoing transaction (nothing if absent). */
void pst_remove(struct pst_table *t, int64_t producer_id);

/*
 * Remove every producer idle for expiration_ms or more: now -
 * last_append_ms >= expiration_ms (Kafka's test; producer.id.expiration.ms),
 * except those with an ongoing transaction (Kafka keeps them).  A last
 * append after now (the clock went back) is not idle.  Returns how many
 * went; none when expiration_ms < 0.
 */
size_t pst_expire(struct pst_table *t, int64_t now, int64_t expiration_ms);

/*
 * The log start moved up to log_start (retention, DeleteRecords): remove the
 * producers whose newest offset seen (batch or marker) lies below it, except
 * those with an ongoing transaction, and the aborted transactions whose
 * marker lies below it.  A removed producer's next batch is then accepted
 * with any sequence.  Returns how many producers went.
 */
size_t pst_truncate_head(struct pst_table *t, int64_t log_start);

/*
 * Snapshot of one table, appended to w (big-endian):
 *   u8  version (1)
 *   u32 body length (what follows up to the CRC)
 *   u32 producers, then for each, in increasing producer id:
 *       i64 producer id (>= 0), i16 epoch, i64 last append ms,
 *       i64 last offset seen (-1 none), i64 ongoing txn first offset (-1 none),
 *       u8 batches (0..5), then for each, oldest first:
 *       i32 first seq, i32 last seq, i64 first offset, i64 last offset,
 *       i64 max timestamp
 *   u32 aborted transactions (<= PST_MAX_ABORTED), then for each, in the
 *       list's order (first offset not decreasing):
 *       i64 producer id, i64 first offset, i64 last (marker) offset
 *   u32 CRC-32C of every byte before it
 * The same table always gives the same bytes.  0 or the writer's error.
 */
SL_MUST_CHECK int pst_encode(const struct pst_table *t, struct sl_wr *w);
/*
 * The snapshot of the table as it stood before any offset at or above end
 * (what the manifest holds when its ranges end there; the WAL replays the
 * rest through pst_append and pst_apply_marker): cached batches, ongoing
 * transactions and aborted ones ending at or above end are left out, each
 * producer's newest offset is lowered to what is left, and a producer with
 * nothing left goes; a transaction begun below end and aborted at or above
 * it is open again, so that replaying its marker aborts it once more.  The
 * producers' epochs and last append times stay.  Replaying the batches and
 * markers from end on gives back the table.
 */
SL_MUST_CHECK int pst_encode_below(const struct pst_table *t, int64_t end, struct sl_wr *w);

/*
 * Read one snapshot from r into a new table (*out, which the caller frees
 * with pst_table_free).  r is advanced past it only on success.  0, or:
 * SL_E_SHORT (the bytes end early), SL_E_CORRUPT (CRC), SL_E_TOOBIG (more
 * than PST_MAX_PRODUCERS or PST_MAX_ABORTED), SL_E_INVALID (unknown
 * version, a body length that disagrees with its contents, a producer id
 * negative or out of order, more than 5 batches, a batch whose sequences
 * and offsets disagree or whose offsets do not increase, a last offset seen
 * below -1 or below the newest batch's, a txn first offset that is neither
 * -1 nor in 0..last offset seen, an aborted transaction with a negative
 * producer id or first offset, first > last, or out of first-offset order),
 * SL_E_NOMEM.  *out is NULL on error.
 */
SL_MUST_CHECK int pst_decode(struct sl_rd *r, struct pst_table **out);

/* ---- producer ids ---- */

/*
 * Ids are handed out from blocks whose end, the high mark, is made durable
 * (WAL, manifest) before any id of the block is used: every id below the
 * durable mark may have been handed out, none at or above it was.  After a
 * restart the allocator starts at the durable mark, so an id is never
 * handed out twice even if the broker died in the middle of a block.
 *
 *   pst_alloc_init(a, durable mark, block size)
 *   loop: pst_alloc_next -> 0: an id
 *                        -> SL_E_AGAIN: pst_alloc_reserve gives the mark to
 *                           write; once it is durable, pst_alloc_install it
 *                           and call pst_alloc_next again
 */
struct pst_alloc {
	int64_t next;		/* the next id to hand out */
	int64_t limit;		/* installed durable mark: ids below it are ours */
	int64_t block;		/* ids per reservation */
};

/* 0, or SL_E_INVALID for durable_mark < 0 or block < 1. */
SL_MUST_CHECK int pst_alloc_init(struct pst_alloc *a, int64_t durable_mark, int64_t block);
/* 0 and *id, or SL_E_AGAIN: the block is used up (nothing changed). */
SL_MUST_CHECK int pst_alloc_next(struct pst_alloc *a, int64_t *id);
/*
 * The mark that makes one more block ours: the installed mark + block.  The
 * same until something is installed, so callers that all ran out together
 * write the same mark.  0, or SL_E_FULL when ids would pass INT64_MAX.
 */
SL_MUST_CHECK int pst_alloc_reserve(const struct pst_alloc *a, int64_t *mark);
/*
 * mark is durable.  A mark at or below the installed one changes nothing
 * (a second install of the same reservation); 0 either way.
 */
void pst_alloc_install(struct pst_alloc *a, int64_t mark);

#endif
