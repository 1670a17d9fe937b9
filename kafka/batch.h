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
 * the end.  Compressed batches are stored and returned as they came.
 */
#ifndef SL_KAFKA_BATCH_H
#define SL_KAFKA_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER 61
#define BATCH_ATTR_COMPRESSION 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

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
 * CRC-32C matches, counts consistent; for uncompressed batches every record
 * is walked and must parse and end exactly at the batch end.
 * Returns 0, or a Kafka error code (CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT,
 * INVALID_RECORD) with *why naming the cause.
 */
int batch_parse(const uint8_t *p, size_t n, struct batch_info *bi, const char **why);

/* Set the broker-owned fields: base offset, leader epoch. */
void batch_set_base(uint8_t *p, int64_t base, int32_t leader_epoch);
/* LogAppendTime: set the timestamp type, max timestamp, and recompute the CRC. */
void batch_set_log_append_time(uint8_t *p, size_t len, int64_t now_ms);

/*
 * The first record at or after ts in a batch: its offset and timestamp.
 * Uncompressed batches are searched record by record; for compressed ones
 * the batch base offset and max timestamp are answered (the consumer then
 * skips the few earlier records itself).  0 if found, -1 if none.
 */
int batch_find_ts(const uint8_t *p, size_t n, int64_t base, int64_t ts,
		  int64_t *off, int64_t *found_ts);
/* The offset of the record whose timestamp is max_ts (same compressed rule). */
int batch_find_max_ts(const uint8_t *p, size_t n, int64_t base, int64_t *off, int64_t *ts);

#endif
