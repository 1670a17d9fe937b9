/*
 * batch.h - Kafka record batches (magic v2) as they arrive in Produce and
 * leave in Fetch.
 *
 * Layout (big-endian, byte offsets):
 *   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 |
 *   16 magic i8 | 17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 |
 *   27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 |
 *   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 |
 *   61 records...
 * batchLength counts from byte 12 to the end; the CRC-32C covers bytes 21 to
 * the end.  Compressed batches are stored and returned as they came; the
 * records section (bytes 61 to the end) is then compressed as a whole with
 * the codec in the low three bits of the attributes, and is decompressed
 * here only to validate it and to look up timestamps (kafka/decompress.h).
 */
#ifndef SL_KAFKA_BATCH_H
#define SL_KAFKA_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct sl_wr;

#define BATCH_HEADER 61
#define BATCH_ATTR_COMPRESSION 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

/*
 * The most a compressed records section may decompress to.  Kafka sets no
 * such limit, but a few KB of zstd can claim gigabytes; a batch over it is
 * refused with MESSAGE_TOO_LARGE, which makes Java producers split it.
 */
#define BATCH_MAX_INFLATED ((size_t)64 << 20)

struct batch_info {
	size_t len;		/* whole batch, 12 + batchLength */
	int16_t attributes;
	int32_t last_offset_delta;
	int32_t count;
	int64_t base_ts, max_ts;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
};

/*
 * Parse and validate the first batch of p (n bytes): length fits, magic 2,
 * CRC-32C matches, counts consistent, codec known; then the records, after
 * decompressing them (at most BATCH_MAX_INFLATED bytes) if the batch is
 * compressed: exactly recordsCount records, each well formed, offset deltas
 * 0, 1, 2..., nothing after the last.
 * Returns 0, or a Kafka error code with *why (a static string) naming the
 * cause: CORRUPT_MESSAGE (also for a compressed payload that does not
 * decode: "gzip payload is corrupt"), UNSUPPORTED_FOR_MESSAGE_FORMAT,
 * INVALID_RECORD, MESSAGE_TOO_LARGE (inflates beyond BATCH_MAX_INFLATED),
 * UNKNOWN_SERVER_ERROR (out of memory while decompressing).
 * Compressed batches are decoded into a per-thread scratch buffer that is
 * kept between calls (up to 4 MiB of it); nothing else is allocated.
 */
int batch_parse(const uint8_t *p, size_t n, struct batch_info *bi, const char **why);

/*
 * The header checks of batch_parse alone (everything but the records, so
 * nothing is decompressed): for a batch batch_parse already accepted, when
 * only its header fields are wanted again.  Same results and errors.
 */
int batch_header(const uint8_t *p, size_t n, struct batch_info *bi, const char **why);

/*
 * Transaction markers (control batches, as Kafka's EndTransactionMarker
 * writes them): attributes transactional | control, the producer's id and
 * epoch, base sequence -1, one record at offset delta 0 whose key is
 * (version i16 0, type i16: 0 abort, 1 commit) and whose value is
 * (version i16 0, coordinator epoch i32).  batch_marker writes one at base
 * offset 0 with timestamp ts into w (the caller sets the base offset later
 * with batch_set_base).  0 or the writer's error.
 */
#define BATCH_MARKER_ABORT 0
#define BATCH_MARKER_COMMIT 1
int batch_marker(struct sl_wr *w, int64_t producer_id, int16_t epoch, int type,
		 int32_t coordinator_epoch, int64_t ts);
/*
 * The type (BATCH_MARKER_ABORT or _COMMIT) of a control batch that
 * batch_header accepted: read from its first record's key.  -1 if the
 * batch is not a control batch or its record is not a marker Kafka writes
 * (another key version, another type, a compressed record set).
 */
int batch_marker_type(const uint8_t *p, size_t n);

/* Set the broker-owned fields: base offset, leader epoch. */
void batch_set_base(uint8_t *p, int64_t base, int32_t leader_epoch);
/* LogAppendTime: set the timestamp type, max timestamp, and recompute the CRC. */
void batch_set_log_append_time(uint8_t *p, size_t len, int64_t now_ms);

/*
 * The first record at or after ts in a batch whose first offset is base:
 * its offset and timestamp.  Records are searched one by one, compressed
 * batches after decompressing them.  With LogAppendTime every record has
 * the batch's max timestamp, so the first record, at base, answers (as in
 * Kafka).  0 if found, -1 if none or if the batch does not parse.
 * Uses the same scratch buffer as batch_parse.
 */
int batch_find_ts(const uint8_t *p, size_t n, int64_t base, int64_t ts,
		  int64_t *off, int64_t *found_ts);
/*
 * The first record with the batch's largest timestamp (same rules; for a
 * well-formed batch, the first whose timestamp is its max timestamp).
 */
int batch_find_max_ts(const uint8_t *p, size_t n, int64_t base, int64_t *off, int64_t *ts);
/*
 * The same, counting only the records at offset from and after (a log
 * start inside the batch: Kafka never answers below it).  from <= base
 * counts them all; from past the batch finds nothing.
 */
int batch_find_ts_from(const uint8_t *p, size_t n, int64_t base, int64_t from, int64_t ts,
		       int64_t *off, int64_t *found_ts);
int batch_find_max_ts_from(const uint8_t *p, size_t n, int64_t base, int64_t from,
			   int64_t *off, int64_t *ts);

#endif
