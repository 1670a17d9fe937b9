/*
 * pstate.h - idempotent producers' state: per partition, what each producer
 * id last appended, so that a retried batch is recognised and a batch out of
 * order is refused; and the allocator of producer ids.  An engine without
 * I/O: no clock, no WAL, no manifest.  Every call that needs the time takes
 * `now`, wall-clock milliseconds (it is stored in snapshots and compared
 * across restarts, so it cannot be the monotonic clock).
 *
 * The semantics are Kafka 3.x's (ProducerStateManager, ProducerAppendInfo,
 * ProducerStateEntry) for data batches of idempotent producers; transactions
 * (control batches, coordinator epochs) are not handled here.
 *
 * One producer's entry in one partition's table:
 *
 *               pst_append (any epoch e)
 *   (absent) ───────────────────────────▶ epoch e, batches [b1]
 *      ▲                                     │  pst_append, epoch e: push the batch,
 *      │                                     │  the oldest goes when there are 5
 *      │                                     │  pst_append, epoch e' != e: epoch e',
 *      │                                     ▼  batches [b] (a new epoch forgets the old)
 *      └─── pst_expire (idle >= expiration) ─┘
 *           pst_truncate_head (all below the log start), pst_remove
 *
 * An absent producer behaves as an entry with no epoch (-1) and no batches:
 * it accepts any sequence (Kafka since KIP-360: its state may have gone
 * with retention, DeleteRecords or expiry, and the producer cannot tell).
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
 *   7. otherwise APPEND.
 * Sequences wrap: a batch of `count` records starting at f ends at
 * l = (f + count - 1) mod 2^31, as Kafka's DefaultRecordBatch computes it.
 *
 * How the broker uses it (the later wiring):
 *   Produce:  pst_check; on APPEND write the batch to the WAL, and in the
 *             same turn of the loop pst_append with the offsets it got and
 *             the batch's max timestamp as stored (the broker's time for
 *             LogAppendTime), so a retry arriving while the original waits
 *             for durability is seen as a DUPLICATE.  A DUPLICATE is answered
 *             NONE with base offset dup.first_offset and log_append_time
 *             dup.max_timestamp, as Kafka's UnifiedLog does, but only once
 *             the original is durable (its own answer waits for the same
 *             thing).  If the WAL write fails after pst_append, pst_remove
 *             the producer: the offsets never became durable and must not be
 *             handed to a retry as a duplicate.
 *   Snapshot: pst_encode into the manifest; on start pst_decode, then replay
 *             the WAL's batches above it through pst_append (a batch at or
 *             below the newest offsets already in an entry changes nothing,
 *             so an overlap between snapshot and replay is harmless).
 *   InitProducerId without a transactional id: a fresh id from the
 *             allocator and epoch 0 (Kafka ignores the id and epoch the
 *             client sends then).
 *
 * Ownership: a table owns its entries; a const struct pst_entry pointer from
 * pst_find is valid until the next call that changes that table.  Nothing
 * else is kept from the caller's arguments.  Tables are not thread-safe.
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

/* A batch as its v2 header describes it. */
struct pst_batch {
	int64_t producer_id;	/* producerId @43; < 0: not idempotent */
	int16_t epoch;		/* producerEpoch @51 */
	int32_t first_seq;	/* baseSequence @53 */
	int32_t count;		/* records: lastOffsetDelta @23 + 1 */
};

/* What is remembered of one appended batch. */
struct pst_meta {
	int32_t first_seq, last_seq;
	int64_t first_offset, last_offset;
	int64_t max_timestamp;
};

struct pst_entry {
	int64_t producer_id;
	int16_t epoch;			/* -1: none (only from an epoch -1 batch) */
	int nbatches;			/* 0..PST_BATCHES */
	struct pst_meta batch[PST_BATCHES];	/* oldest first */
	int64_t last_append_ms;		/* wall clock of the latest pst_append */
	struct pst_entry *next;		/* the table's hash chain */
};

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
 * Decide about batch b (the rules above).  *err is KERR_NONE unless
 * PST_REJECT; *dup is filled only for PST_DUPLICATE.  Changes nothing.
 */
enum pst_verdict pst_check(const struct pst_table *t, const struct pst_batch *b, int16_t *err,
			   struct pst_meta *dup);

/*
 * Record batch b, written at offsets first_offset .. first_offset + count - 1
 * with the batch's max timestamp: a new epoch forgets the cached batches,
 * the oldest of PST_BATCHES is dropped, and the entry's last append time
 * becomes now (never earlier than it was).  Call it for batches pst_check
 * let through, and for each batch replayed from the WAL; it does not check
 * sequences.  A batch whose first offset is at or below the newest cached
 * batch's last offset was applied already and changes nothing.  pid < 0:
 * nothing.  0; SL_E_INVALID for a batch or offsets that cannot be (f < 0,
 * count < 1, first_offset < 0, the last offset past INT64_MAX); SL_E_NOMEM
 * for a new producer without memory (the table is then unchanged).
 */
SL_MUST_CHECK int pst_append(struct pst_table *t, const struct pst_batch *b, int64_t first_offset,
			     int64_t max_timestamp, int64_t now);

/* Forget one producer (nothing if absent). */
void pst_remove(struct pst_table *t, int64_t producer_id);

/*
 * Remove every producer idle for expiration_ms or more: now -
 * last_append_ms >= expiration_ms (Kafka's test; producer.id.expiration.ms).
 * A last append after now (the clock went back) is not idle.  Returns how
 * many went; none when expiration_ms < 0.
 */
size_t pst_expire(struct pst_table *t, int64_t now, int64_t expiration_ms);

/*
 * The log start moved up to log_start (retention, DeleteRecords): remove the
 * producers whose newest batch lies wholly below it, as Kafka does.  Their
 * next batch is then accepted with any sequence.  Returns how many went.
 */
size_t pst_truncate_head(struct pst_table *t, int64_t log_start);

/*
 * Snapshot of one table, appended to w (big-endian):
 *   u8  version (1)
 *   u32 body length (what follows up to the CRC)
 *   u32 producers, then for each, in increasing producer id:
 *       i64 producer id (>= 0), i16 epoch, i64 last append ms,
 *       u8 batches (0..5), then for each, oldest first:
 *       i32 first seq, i32 last seq, i64 first offset, i64 last offset,
 *       i64 max timestamp
 *   u32 CRC-32C of every byte before it
 * The same table always gives the same bytes.  0 or the writer's error.
 */
SL_MUST_CHECK int pst_encode(const struct pst_table *t, struct sl_wr *w);

/*
 * Read one snapshot from r into a new table (*out, which the caller frees
 * with pst_table_free).  r is advanced past it only on success.  0, or:
 * SL_E_SHORT (the bytes end early), SL_E_CORRUPT (CRC), SL_E_TOOBIG (more
 * than PST_MAX_PRODUCERS), SL_E_INVALID (unknown version, a body length
 * that disagrees with its producers, a producer id negative or out of
 * order, more than 5 batches, a batch whose sequences and offsets disagree
 * or whose offsets do not increase), SL_E_NOMEM.  *out is NULL on error.
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
