/*
 * batch.c - validation and broker-side edits of magic v2 record batches.
 *
 * Produce hands us bytes straight from the socket.  Everything here reads
 * them through the bounds-checked cursor; the only direct stores are to the
 * fixed header fields at known offsets of a batch whose length was checked.
 *
 * What is checked, and why:
 *   - batchLength: must cover at least the header and fit in the input, so a
 *     later reader trusting it never runs off the end;
 *   - magic 2: v0/v1 message sets are not accepted (KIP-724);
 *   - CRC-32C over bytes 21..end: a flipped bit is refused before it is
 *     acknowledged, never discovered by a consumer later;
 *   - recordsCount == lastOffsetDelta + 1 and > 0: the broker assigns offsets
 *     from these, so they must agree;
 *   - for uncompressed batches, each record parses and its offsetDelta is its
 *     index, so what a consumer decodes is what offsets were assigned to.
 */
#include <string.h>
#include "batch.h"
#include "kerr.h"
#include "../kernel/buf.h"
#include "../kernel/crc32c.h"

/* Walk one record; *ts_delta and *off_delta receive its deltas. */
static int record_parse(struct sl_rd *r, int64_t *ts_delta, int32_t *off_delta)
{
	int32_t len, klen, vlen, nh;
	int8_t attr;
	const uint8_t *body;

	if (rd_varint(r, &len) || len < 0 || rd_bytes(r, (size_t)len, &body))
		return -1;
	struct sl_rd rec;
	rd_init(&rec, body, (size_t)len);
	if (rd_i8(&rec, &attr) || rd_varlong(&rec, ts_delta) || rd_varint(&rec, off_delta))
		return -1;
	if (rd_varint(&rec, &klen) || klen < -1 || (klen > 0 && rd_skip(&rec, (size_t)klen)))
		return -1;
	if (rd_varint(&rec, &vlen) || vlen < -1 || (vlen > 0 && rd_skip(&rec, (size_t)vlen)))
		return -1;
	if (rd_varint(&rec, &nh) || nh < 0 || (size_t)nh > rd_left(&rec))
		return -1;
	for (int32_t i = 0; i < nh; i++) {
		int32_t hk, hv;
		if (rd_varint(&rec, &hk) || hk < 0 || rd_skip(&rec, (size_t)hk))
			return -1;
		if (rd_varint(&rec, &hv) || hv < -1 || (hv > 0 && rd_skip(&rec, (size_t)hv)))
			return -1;
	}
	return rd_left(&rec) == 0 ? 0 : -1;
}

int batch_parse(const uint8_t *p, size_t n, struct batch_info *bi, const char **why)
{
	struct sl_rd r;
	int64_t base;
	int32_t blen, epoch;
	int8_t magic;
	uint32_t crc;

	rd_init(&r, p, n);
	if (rd_i64(&r, &base) || rd_i32(&r, &blen) || rd_i32(&r, &epoch) || rd_i8(&r, &magic)) {
		*why = "truncated batch header";
		return KERR_CORRUPT_MESSAGE;
	}
	if (magic != 2) {
		*why = "record batch magic is not 2";
		return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
	}
	if (blen < BATCH_HEADER - 12 || (size_t)blen > n - 12) {
		*why = "batch length does not fit the records";
		return KERR_CORRUPT_MESSAGE;
	}
	bi->len = (size_t)blen + 12;
	if (rd_u32(&r, &crc) || rd_i16(&r, &bi->attributes) || rd_i32(&r, &bi->last_offset_delta) ||
	    rd_i64(&r, &bi->base_ts) || rd_i64(&r, &bi->max_ts) || rd_i64(&r, &bi->producer_id) ||
	    rd_i16(&r, &bi->producer_epoch) || rd_i32(&r, &bi->base_sequence) ||
	    rd_i32(&r, &bi->count)) {
		*why = "truncated batch header";
		return KERR_CORRUPT_MESSAGE;
	}
	if (crc32c(0, p + 21, bi->len - 21) != crc) {
		*why = "CRC-32C mismatch";
		return KERR_CORRUPT_MESSAGE;
	}
	if (bi->count <= 0 || bi->last_offset_delta != bi->count - 1) {
		*why = "record count does not match lastOffsetDelta";
		return KERR_INVALID_RECORD;
	}
	if ((bi->attributes & BATCH_ATTR_COMPRESSION) > 4) {
		*why = "unknown compression codec";
		return KERR_CORRUPT_MESSAGE;
	}
	if (bi->attributes & BATCH_ATTR_COMPRESSION)
		return 0;
	/* Uncompressed: the records must be exactly count well-formed records. */
	struct sl_rd recs;
	rd_init(&recs, p + BATCH_HEADER, bi->len - BATCH_HEADER);
	for (int32_t i = 0; i < bi->count; i++) {
		int64_t tsd;
		int32_t od;
		if (record_parse(&recs, &tsd, &od) != 0) {
			*why = "malformed record";
			return KERR_CORRUPT_MESSAGE;
		}
		if (od != i) {
			*why = "record offset deltas are not consecutive";
			return KERR_INVALID_RECORD;
		}
	}
	if (rd_left(&recs) != 0) {
		*why = "bytes after the last record";
		return KERR_CORRUPT_MESSAGE;
	}
	return 0;
}

void batch_set_base(uint8_t *p, int64_t base, int32_t leader_epoch)
{
	sl_store_be64(p, (uint64_t)base);
	sl_store_be32(p + 12, (uint32_t)leader_epoch);
}

void batch_set_log_append_time(uint8_t *p, size_t len, int64_t now_ms)
{
	uint32_t attr = (uint32_t)p[21] << 8 | p[22];

	attr |= BATCH_ATTR_LOG_APPEND_TIME;
	p[21] = (uint8_t)(attr >> 8);
	p[22] = (uint8_t)attr;
	sl_store_be64(p + 35, (uint64_t)now_ms);
	sl_store_be32(p + 17, crc32c(0, p + 21, len - 21));
}

/*
 * Scan an uncompressed batch for the first record whose timestamp satisfies
 * the predicate: want_max selects the record equal to the batch max.
 */
static int scan(const uint8_t *p, size_t n, int64_t base, int64_t ts, int want_max,
		int64_t *off, int64_t *found_ts)
{
	struct batch_info bi;
	const char *why;

	if (n < BATCH_HEADER)
		return -1;
	int64_t base_ts = (int64_t)sl_load_be64(p + 27);
	int64_t max_ts = (int64_t)sl_load_be64(p + 35);
	int attr = p[22];
	if ((attr & BATCH_ATTR_COMPRESSION) || (attr & BATCH_ATTR_LOG_APPEND_TIME)) {
		/* Without decompressing (or with one shared time) the batch is the answer. */
		if (max_ts < ts && !want_max)
			return -1;
		*off = base;
		*found_ts = max_ts;
		return 0;
	}
	if (batch_parse(p, n, &bi, &why) != 0)
		return -1;
	struct sl_rd recs;
	rd_init(&recs, p + BATCH_HEADER, bi.len - BATCH_HEADER);
	for (int32_t i = 0; i < bi.count; i++) {
		int64_t tsd;
		int32_t od;
		if (record_parse(&recs, &tsd, &od) != 0)
			return -1;
		int64_t t = base_ts + tsd;
		if (want_max ? t == max_ts : t >= ts) {
			*off = base + od;
			*found_ts = t;
			return 0;
		}
	}
	return -1;
}

int batch_find_ts(const uint8_t *p, size_t n, int64_t base, int64_t ts,
		  int64_t *off, int64_t *found_ts)
{
	return scan(p, n, base, ts, 0, off, found_ts);
}

int batch_find_max_ts(const uint8_t *p, size_t n, int64_t base, int64_t *off, int64_t *ts)
{
	return scan(p, n, base, 0, 1, off, ts);
}
