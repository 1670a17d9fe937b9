/*
 * txn.h - the transaction coordinator's state machine: per transactional id,
 * its producer id and epoch, its state and what the open transaction
 * touches.  An engine without I/O, as kafka/pstate.h: no WAL, no clock
 * (`now` is wall-clock ms, stored and compared across restarts), no
 * partitions.  The semantics are Kafka 3.x's TransactionCoordinator and
 * TransactionMetadata, for clients' versions of the APIs (AddPartitionsToTxn
 * 0-3, EndTxn 0-3, InitProducerId 0-4).
 *
 *                 init            add partitions / offsets
 *   (new) ──────────────▶ EMPTY ──────────────────────────▶ ONGOING ◀─┐ add more
 *                          ▲  ▲                               │  │    │
 *                 init     │  │                    end commit │  └────┘
 *     (bumps the epoch)    │  │                               ▼
 *        COMPLETE_COMMIT ◀─┼──┼─── markers written ─── PREPARE_COMMIT
 *        COMPLETE_ABORT  ◀─┘  └─── markers written ─── PREPARE_ABORT ◀── end abort,
 *              │                                                        timeout (epoch bumped),
 *              └── add partitions / offsets ──▶ ONGOING                 init while ONGOING
 *                                                                       (epoch bumped)
 *
 * Durability is two-phase, as in Kafka (prepareTransitionTo, then
 * completeTransitionTo once the log append is durable): an operation that
 * changes an id's metadata returns the proposed metadata in its result and
 * marks the id pending; the caller journals txn_record() of it and, once
 * that is durable, calls txn_complete() (which installs it), or
 * txn_cancel() if the write failed (nothing changes).  While an id is
 * pending, other operations on it answer CONCURRENT_TRANSACTIONS.
 *
 * What the broker does on each arrow:
 *   InitProducerId (transactional): txn_init; answer the epoch once
 *     complete.  If the result says `fenced_abort`, the id was ONGOING: its
 *     proposed state is PREPARE_ABORT with the bumped epoch; the broker
 *     writes abort markers and answers CONCURRENT_TRANSACTIONS (the client
 *     retries, as with Kafka).
 *   AddPartitionsToTxn / AddOffsetsToTxn: txn_add_partitions / txn_add_group.
 *   EndTxn: txn_end; answered once PREPARE_* is durable; then the broker
 *     writes a marker to every partition of the transaction (and applies or
 *     drops the group offsets), then txn_markers_done proposes COMPLETE_*.
 *   Timer: txn_timed_out lists ONGOING ids past their timeout; for each,
 *     txn_abort_timed_out proposes PREPARE_ABORT with the epoch bumped (the
 *     producer is fenced; KIP-360 lets it re-initialise with its last epoch).
 *
 * Epochs: every InitProducerId bumps the epoch (a new producer id when it is
 * used up), which fences the instance before.  The epoch given up is kept as
 * the "last" one, which a KIP-360 InitProducerId (v3+, with its producer id
 * and epoch) may name to recover, only after a timeout's bump or a KIP-360
 * bump: after a new instance's plain InitProducerId the old epoch is fenced
 * for good, so a zombie cannot come back.
 *   Restart: txn_replay each journaled record in order over the snapshot
 *     from the manifest (txn_decode); ids left in PREPARE_* get their
 *     markers written again (txn_foreach).
 *
 * Record (one id's whole metadata; re-applying it sets the same value):
 *   u8 version (1) | u16 id length, id | u8 state (enum txn_state; DEAD
 *   removes the id) | i64 producer id | i64 last producer id | i16 epoch |
 *   i16 last epoch | i32 timeout ms | i64 start ms | i64 update ms |
 *   u32 partitions, each: u16 topic length, topic, i32 partition |
 *   u32 groups, each: u16 length, group
 * Snapshot: u8 version (1) | u32 ids | that many records, each u32
 * length + record | u32 CRC-32C of all before it.
 *
 * Ownership: the coordinator owns its entries; a const struct txn_meta
 * pointer is valid until the next call that changes the coordinator.
 */
#ifndef SL_KAFKA_TXN_H
#define SL_KAFKA_TXN_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"

#define TXN_ID_MAX 32767
#define TXN_MAX_PARTS 100000		/* partitions one transaction may touch */
#define TXN_MAX_IDS (1u << 20)		/* ids one snapshot may hold */

enum txn_state {
	TXN_EMPTY,
	TXN_ONGOING,
	TXN_PREPARE_COMMIT,
	TXN_PREPARE_ABORT,
	TXN_COMPLETE_COMMIT,
	TXN_COMPLETE_ABORT,
	TXN_DEAD,
	TXN_PREPARE_EPOCH_FENCE,
	TXN_NSTATES
};

/* Kafka's names ("Empty", "Ongoing", ...), for ListTransactions and DescribeTransactions. */
const char *txn_state_name(enum txn_state s);

struct txn_part {
	char *topic;
	int32_t partition;
};

struct txn_meta {
	char *id;
	int64_t producer_id, last_producer_id;	/* last: -1 none */
	int16_t epoch, last_epoch;		/* last: -1 none */
	int32_t timeout_ms;
	enum txn_state state;
	struct txn_part *parts;
	size_t nparts;
	char **groups;
	size_t ngroups;
	int64_t start_ms;			/* the open transaction's first add; -1 none */
	int64_t update_ms;
};

struct txn_coord;

/* Producer ids come from the broker's allocator: 0, or SL_E_AGAIN (try the request later). */
typedef int (*txn_alloc_fn)(void *arg, int64_t *producer_id);

struct txn_coord *txn_coord_new(txn_alloc_fn alloc, void *arg);
void txn_coord_free(struct txn_coord *c);

const struct txn_meta *txn_find(const struct txn_coord *c, const char *id);
/* 1 while a proposed change of id waits for txn_complete or txn_cancel. */
int txn_pending(const struct txn_coord *c, const char *id);
size_t txn_count(const struct txn_coord *c);
/* Every id, until fn returns nonzero (no order). */
void txn_foreach(const struct txn_coord *c, int (*fn)(void *arg, const struct txn_meta *m), void *arg);

/*
 * What an operation decided.  err is the client's answer (KERR_*).  When
 * proposed is set, the id is pending with that metadata (owned by the
 * coordinator; valid until txn_complete or txn_cancel): journal
 * txn_record(proposed) and complete.  fenced_abort: see txn_init.
 */
struct txn_result {
	int16_t err;
	const struct txn_meta *proposed;
	int fenced_abort;
	int64_t producer_id;		/* for InitProducerId's answer: proposed's, else the id's */
	int16_t epoch;
};

/*
 * InitProducerId with a transactional id.  req_pid/req_epoch are -1 below
 * v3 (or when the client has none).  SL_E_AGAIN when the allocator had no
 * id (nothing changed); else 0 and *r.
 */
SL_MUST_CHECK int txn_init(struct txn_coord *c, const char *id, int32_t timeout_ms, int64_t req_pid,
			   int16_t req_epoch, int32_t max_timeout_ms, int64_t now, struct txn_result *r);
/* AddPartitionsToTxn: n partitions; r->err applies to all of them. */
SL_MUST_CHECK int txn_add_partitions(struct txn_coord *c, const char *id, int64_t pid, int16_t epoch,
				     const struct txn_part *parts, size_t n, int64_t now,
				     struct txn_result *r);
/* AddOffsetsToTxn. */
SL_MUST_CHECK int txn_add_group(struct txn_coord *c, const char *id, int64_t pid, int16_t epoch,
				const char *group, int64_t now, struct txn_result *r);
/* EndTxn. */
SL_MUST_CHECK int txn_end(struct txn_coord *c, const char *id, int64_t pid, int16_t epoch, int commit,
			  int64_t now, struct txn_result *r);
/* The markers of a PREPARE_* id are written: propose COMPLETE_*. */
SL_MUST_CHECK int txn_markers_done(struct txn_coord *c, const char *id, int64_t now,
				   struct txn_result *r);
/* An ONGOING id past its timeout: propose PREPARE_ABORT with the epoch bumped. */
SL_MUST_CHECK int txn_abort_timed_out(struct txn_coord *c, const char *id, int64_t now,
				      struct txn_result *r);

/* Install the pending proposal of id (its record is durable). */
void txn_complete(struct txn_coord *c, const char *id);
/* Drop it (its record could not be written): id stays as it was. */
void txn_cancel(struct txn_coord *c, const char *id);

/*
 * ONGOING ids, not pending, open for timeout_ms or more at now: fn for
 * each (do not change the coordinator inside fn; collect, then abort).
 */
void txn_timed_out(const struct txn_coord *c, int64_t now, int (*fn)(void *arg, const char *id), void *arg);
/* The earliest start + timeout of an ONGOING id; INT64_MAX when none. */
int64_t txn_next_deadline(const struct txn_coord *c);

/* The record of m (see above); 0 or the writer's error. */
SL_MUST_CHECK int txn_record(const struct txn_meta *m, struct sl_wr *w);
/* Apply one record (replay): 0, SL_E_INVALID/SL_E_SHORT for bytes that do not decode, SL_E_NOMEM. */
SL_MUST_CHECK int txn_replay(struct txn_coord *c, const uint8_t *p, size_t n);
/* Snapshot of every id (pending proposals not included). */
SL_MUST_CHECK int txn_encode(const struct txn_coord *c, struct sl_wr *w);
/*
 * Read a snapshot into c (which should be empty); r advanced only on
 * success.  The frame and CRC are checked before anything is applied; a
 * record inside that still does not decode leaves c partly filled (free
 * it).  0, SL_E_SHORT, SL_E_CORRUPT (CRC), SL_E_INVALID, SL_E_NOMEM.
 */
SL_MUST_CHECK int txn_decode(struct txn_coord *c, struct sl_rd *r);

#endif
