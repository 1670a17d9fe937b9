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
 *   - each record parses, its offsetDelta is its index and nothing follows
 *     the last, so what a consumer decodes is what offsets were assigned to.
 *     A compressed batch is decompressed first (as Kafka does on produce),
 *     to at most BATCH_MAX_INFLATED bytes; its records then get the same
 *     walk as uncompressed ones.
 *
 * Decompression writes into one scratch buffer per thread, kept between
 * calls: produce decompresses every compressed batch, and touching freshly
 * mapped pages costs more than decoding into them (a new 10 MB buffer per
 * call halves lz4's speed).  Up to SCRATCH_KEEP bytes stay allocated; a
 * buffer grown beyond that is freed once the call is done with it.  No
 * pointer into the scratch buffer outlives the call that filled it.
 *
 * One walk (walk_records) serves validation and timestamp lookups: a lookup
 * is a validation that also notes the first record matching what it seeks,
 * so a batch that would not be accepted answers no lookup either.  Record
 * timestamps are baseTimestamp + timestampDelta computed with wrap-around,
 * since a hostile delta must not be undefined behaviour.
 */
#include <stdlib.h>
#include <string.h>
#include "batch.h"
#include "decompress.h"
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

int batch_header(const uint8_t *p, size_t n, struct batch_info *bi, const char **why)
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
	if ((bi->attributes & BATCH_ATTR_COMPRESSION) > DC_ZSTD) {
		*why = "unknown compression codec";
		return KERR_CORRUPT_MESSAGE;
	}
	return 0;
}

#define SCRATCH_KEEP ((size_t)4 << 20)

static _Thread_local struct dc_out scratch;

/* Done with what records_of() returned: let go of an oversized scratch. */
static void records_done(void)
{
	if (scratch.cap > SCRATCH_KEEP) {
		free(scratch.p);
		scratch = (struct dc_out){ NULL, 0, 0, 0 };
	}
}

/* The messages below name the cap. */
_Static_assert(BATCH_MAX_INFLATED == (size_t)64 << 20, "update the \"64 MiB\" messages");

/*
 * The records section of a batch batch_header accepted: in place, or
 * decompressed into the scratch buffer, valid until records_done().
 */
static int records_of(const uint8_t *p, const struct batch_info *bi,
		      const uint8_t **recs, size_t *len, const char **why)
{
	static const char *const corrupt[] = {
		NULL, "gzip payload is corrupt", "snappy payload is corrupt",
		"lz4 payload is corrupt", "zstd payload is corrupt"
	};
	static const char *const too_big[] = {
		NULL, "gzip payload inflates beyond 64 MiB", "snappy payload inflates beyond 64 MiB",
		"lz4 payload inflates beyond 64 MiB", "zstd payload inflates beyond 64 MiB"
	};
	int codec = bi->attributes & BATCH_ATTR_COMPRESSION, err;

	if (codec == 0) {
		*recs = p + BATCH_HEADER;
		*len = bi->len - BATCH_HEADER;
		return 0;
	}
	if (!scratch.p && !(scratch.p = malloc(DC_SLACK)))
		err = SL_E_NOMEM;
	else {
		scratch.len = 0;
		scratch.max = BATCH_MAX_INFLATED;
		err = dc_decode(codec, p + BATCH_HEADER, bi->len - BATCH_HEADER, &scratch);
	}
	if (err != 0)
		records_done();
	switch (err) {
	case 0:
		*recs = scratch.p;
		*len = scratch.len;
		return 0;
	case SL_E_TOOBIG:
		*why = too_big[codec];
		return KERR_MESSAGE_TOO_LARGE;
	case SL_E_NOMEM:
		*why = "out of memory decompressing the records";
		return KERR_UNKNOWN_SERVER_ERROR;
	default:
		*why = corrupt[codec];
		return KERR_CORRUPT_MESSAGE;
	}
}

/* What a lookup seeks while the records are walked; see scan(). */
struct seek {
	int64_t base_ts;	/* the batch's baseTimestamp */
	int64_t ts;		/* the first record at or after ts, */
	int want_max;		/* or, if set, the first with the largest time */
	int32_t min_delta;	/* among records with offset delta >= this */
	int found;
	int32_t off_delta;	/* the record found */
	int64_t found_ts;
};

/*
 * Walk a records section: exactly count well-formed records with offset
 * deltas 0..count-1 and nothing after them.  With sk, also note the first
 * record it seeks.  0, or a Kafka error code with *why.
 */
static int walk_records(const uint8_t *p, size_t n, int32_t count, struct seek *sk,
			const char **why)
{
	struct sl_rd recs;

	rd_init(&recs, p, n);
	for (int32_t i = 0; i < count; i++) {
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
		if (sk && od >= sk->min_delta && (!sk->found || sk->want_max)) {
			int64_t t = (int64_t)((uint64_t)sk->base_ts + (uint64_t)tsd);
			if (sk->want_max ? !sk->found || t > sk->found_ts : t >= sk->ts) {
				sk->found = 1;
				sk->off_delta = od;
				sk->found_ts = t;
			}
		}
	}
	if (rd_left(&recs) != 0) {
		*why = "bytes after the last record";
		return KERR_CORRUPT_MESSAGE;
	}
	return 0;
}

int batch_parse(const uint8_t *p, size_t n, struct batch_info *bi, const char **why)
{
	const uint8_t *recs;
	size_t len;
	int code;

	if ((code = batch_header(p, n, bi, why)) != 0 ||
	    (code = records_of(p, bi, &recs, &len, why)) != 0)
		return code;
	code = walk_records(recs, len, bi->count, NULL, why);
	records_done();
	return code;
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
 * Find the first record of a batch, at offset from or after, whose
 * timestamp is at or after ts, or (want_max) the largest of those records'.
 */
static int scan(const uint8_t *p, size_t n, int64_t base, int64_t from, int64_t ts, int want_max,
		int64_t *off, int64_t *found_ts)
{
	struct batch_info bi;
	const char *why;
	const uint8_t *recs;
	size_t len;
	int32_t min_delta = 0;

	if (batch_header(p, n, &bi, &why) != 0)
		return -1;
	if (from > base) {
		if (from - base >= bi.count)
			return -1;
		min_delta = (int32_t)(from - base);
	}
	if (bi.attributes & BATCH_ATTR_LOG_APPEND_TIME) {
		/* All records share the batch's time: the first one answers. */
		if (bi.max_ts < ts && !want_max)
			return -1;
		*off = base + min_delta;
		*found_ts = bi.max_ts;
		return 0;
	}
	if (records_of(p, &bi, &recs, &len, &why) != 0)
		return -1;
	struct seek sk = { bi.base_ts, ts, want_max, min_delta, 0, 0, 0 };
	int code = walk_records(recs, len, bi.count, &sk, &why);
	records_done();
	if (code != 0 || !sk.found)
		return -1;
	*off = base + sk.off_delta;
	*found_ts = sk.found_ts;
	return 0;
}

int batch_find_ts(const uint8_t *p, size_t n, int64_t base, int64_t ts,
		  int64_t *off, int64_t *found_ts)
{
	return scan(p, n, base, base, ts, 0, off, found_ts);
}

int batch_find_max_ts(const uint8_t *p, size_t n, int64_t base, int64_t *off, int64_t *ts)
{
	return scan(p, n, base, base, 0, 1, off, ts);
}

int batch_find_ts_from(const uint8_t *p, size_t n, int64_t base, int64_t from, int64_t ts,
		       int64_t *off, int64_t *found_ts)
{
	return scan(p, n, base, from, ts, 0, off, found_ts);
}

int batch_find_max_ts_from(const uint8_t *p, size_t n, int64_t base, int64_t from,
			   int64_t *off, int64_t *ts)
{
	return scan(p, n, base, from, 0, 1, off, ts);
}

int batch_marker(struct sl_wr *w, int64_t producer_id, int16_t epoch, int type,
		 int32_t coordinator_epoch, int64_t ts)
{
	struct sl_wr rec;
	size_t start = w->len, at_len, at_crc;

	wr_init(&rec, 32);
	wr_i8(&rec, 0);			/* record attributes */
	wr_varlong(&rec, 0);		/* timestamp delta */
	wr_varint(&rec, 0);		/* offset delta */
	wr_varint(&rec, 4);		/* key: version, type */
	wr_i16(&rec, 0);
	wr_i16(&rec, (int16_t)type);
	wr_varint(&rec, 6);		/* value: version, coordinator epoch */
	wr_i16(&rec, 0);
	wr_i32(&rec, coordinator_epoch);
	wr_varint(&rec, 0);		/* no headers */
	wr_i64(w, 0);			/* base offset */
	(void)wr_reserve(w, 4, &at_len);
	wr_i32(w, 0);			/* partition leader epoch */
	wr_i8(w, 2);
	(void)wr_reserve(w, 4, &at_crc);
	wr_i16(w, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
	wr_i32(w, 0);			/* last offset delta */
	wr_i64(w, ts);
	wr_i64(w, ts);
	wr_i64(w, producer_id);
	wr_i16(w, epoch);
	wr_i32(w, -1);			/* base sequence */
	wr_i32(w, 1);
	wr_varint(w, (int32_t)rec.len);
	wr_bytes(w, rec.p, rec.len);
	int err = rec.err;
	wr_free(&rec);
	if (err || w->err)
		return err ? err : w->err;
	wr_patch_i32(w, at_len, (int32_t)(w->len - start - 12));
	wr_patch_u32(w, at_crc, crc32c(0, w->p + start + 21, w->len - start - 21));
	return w->err;
}

int batch_marker_type(const uint8_t *p, size_t n)
{
	struct batch_info bi;
	const char *why;
	struct sl_rd r, rec;
	int32_t len, off_delta, klen;
	int64_t ts_delta;
	int16_t version, type;
	int8_t attr;
	const uint8_t *body;

	if (batch_header(p, n, &bi, &why) != 0 || !(bi.attributes & BATCH_ATTR_CONTROL) ||
	    (bi.attributes & BATCH_ATTR_COMPRESSION) || bi.count < 1)
		return -1;
	rd_init(&r, p + BATCH_HEADER, bi.len - BATCH_HEADER);
	if (rd_varint(&r, &len) || len < 0 || rd_bytes(&r, (size_t)len, &body))
		return -1;
	rd_init(&rec, body, (size_t)len);
	if (rd_i8(&rec, &attr) || rd_varlong(&rec, &ts_delta) || rd_varint(&rec, &off_delta) ||
	    rd_varint(&rec, &klen) || klen < 4 || rd_i16(&rec, &version) || rd_i16(&rec, &type))
		return -1;
	if (version != 0 || (type != BATCH_MARKER_ABORT && type != BATCH_MARKER_COMMIT))
		return -1;
	return type;
}
