/*
 * test_batch.c - record batch validation and the broker's edits: a batch
 * built here record by record (as the v2 format describes it) must parse;
 * every single-byte corruption must be refused; truncations, bad magic,
 * inconsistent counts and bad records get their Kafka error codes; base
 * offset and LogAppendTime edits keep the CRC valid; time lookups.
 * Compressed batches: the records of tests/unit/data/records.bin compressed
 * by real compressors (as Java clients frame them) and wrapped here in a batch
 * header, and whole batches librdkafka produced (rdkafka-CODEC.batch; see
 * tests/unit/data/make-vectors.sh): they parse, their records are walked
 * with the same checks, and time lookups find the exact record inside.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/batch.h"
#include "../../kafka/decompress.h"
#include "../../kafka/kerr.h"
#include "../../kernel/buf.h"
#include "../../kernel/crc32c.h"

/* An uncompressed batch of n records, timestamps base_ts + 10*i. */
static uint8_t *make_batch(int n, int64_t base_ts, int16_t attr, size_t *len)
{
	struct sl_wr w;
	size_t at_len, at_crc;

	wr_init(&w, 0);
	wr_i64(&w, 0);				/* baseOffset */
	wr_reserve(&w, 4, &at_len);		/* batchLength */
	wr_i32(&w, -1);				/* partitionLeaderEpoch */
	wr_i8(&w, 2);				/* magic */
	wr_reserve(&w, 4, &at_crc);
	wr_i16(&w, attr);
	wr_i32(&w, n - 1);			/* lastOffsetDelta */
	wr_i64(&w, base_ts);
	wr_i64(&w, base_ts + 10 * (n - 1));	/* maxTimestamp */
	wr_i64(&w, -1);				/* producerId */
	wr_i16(&w, -1);
	wr_i32(&w, -1);
	wr_i32(&w, n);
	for (int i = 0; i < n; i++) {
		struct sl_wr r;
		wr_init(&r, 0);
		wr_i8(&r, 0);
		wr_varlong(&r, 10 * i);		/* timestampDelta */
		wr_varint(&r, i);		/* offsetDelta */
		if (i % 3 == 0) {
			wr_varint(&r, -1);	/* null key */
		} else {
			wr_varint(&r, 3);
			wr_bytes(&r, "key", 3);
		}
		wr_varint(&r, 5);
		wr_bytes(&r, "value", 5);
		wr_varint(&r, 1);		/* one header */
		wr_varint(&r, 1);
		wr_bytes(&r, "h", 1);
		wr_varint(&r, -1);		/* null header value */
		wr_varint(&w, (int32_t)r.len);
		wr_bytes(&w, r.p, r.len);
		wr_free(&r);
	}
	T_EQ(w.err, 0);
	wr_patch_i32(&w, at_len, (int32_t)(w.len - 12));
	wr_patch_u32(&w, at_crc, crc32c(0, w.p + 21, w.len - 21));
	return wr_take(&w, len);
}

static void test_valid(void)
{
	size_t len;
	uint8_t *b = make_batch(5, 1000, 0, &len);
	struct batch_info bi;
	const char *why = NULL;

	T_EQ(batch_parse(b, len, &bi, &why), 0);
	T_EQ(bi.len, len);
	T_EQ(bi.count, 5);
	T_EQ(bi.max_ts, 1040);
	T_EQ(bi.producer_id, -1);
	/* Trailing bytes after the batch belong to the next one, not this. */
	uint8_t *two = malloc(2 * len);
	memcpy(two, b, len);
	memcpy(two + len, b, len);
	T_EQ(batch_parse(two, 2 * len, &bi, &why), 0);
	T_EQ(bi.len, len);
	free(two);
	free(b);
}

static void test_every_corruption_refused(void)
{
	size_t len;
	uint8_t *b = make_batch(4, 5000, 0, &len);
	struct batch_info bi;
	const char *why;
	int accepted = 0;

	/* Bytes 0..11 (base offset, length) and 12..16 are outside the CRC but
	 * checked otherwise or owned by the broker; from 17 on, any flip must fail. */
	for (size_t i = 17; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			b[i] ^= (uint8_t)(1 << bit);
			if (batch_parse(b, len, &bi, &why) == 0)
				accepted++;
			b[i] ^= (uint8_t)(1 << bit);
		}
	}
	T_EQ(accepted, 0);
	free(b);
}

static void test_truncated_and_bad_header(void)
{
	size_t len;
	uint8_t *b = make_batch(3, 0, 0, &len);
	struct batch_info bi;
	const char *why;

	for (size_t n = 0; n < len; n++)
		T_CHECK(batch_parse(b, n, &bi, &why) != 0);
	b[16] = 1;	/* magic 1 */
	T_EQ(batch_parse(b, len, &bi, &why), KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
	b[16] = 2;
	sl_store_be32(b + 8, 0x7fffffff);	/* length beyond the input */
	T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
	sl_store_be32(b + 8, 10);		/* length shorter than a header */
	T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
	free(b);
}

static void test_inconsistent_counts(void)
{
	size_t len;
	uint8_t *b = make_batch(3, 0, 0, &len);
	struct batch_info bi;
	const char *why;

	sl_store_be32(b + 57, 4);	/* recordsCount 4, lastOffsetDelta 2 */
	sl_store_be32(b + 17, crc32c(0, b + 21, len - 21));
	T_EQ(batch_parse(b, len, &bi, &why), KERR_INVALID_RECORD);
	sl_store_be32(b + 23, 3);	/* now consistent, but only 3 records present */
	sl_store_be32(b + 17, crc32c(0, b + 21, len - 21));
	T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
	free(b);
}

static void test_edits_keep_crc(void)
{
	size_t len;
	uint8_t *b = make_batch(2, 100, 0, &len);
	struct batch_info bi;
	const char *why;

	batch_set_base(b, 4242, 0);
	T_EQ((int64_t)sl_load_be64(b), 4242);
	T_EQ(batch_parse(b, len, &bi, &why), 0);
	batch_set_log_append_time(b, len, 777);
	T_EQ(batch_parse(b, len, &bi, &why), 0);
	T_EQ(bi.max_ts, 777);
	T_CHECK(bi.attributes & BATCH_ATTR_LOG_APPEND_TIME);
	free(b);
}

static void test_find_ts(void)
{
	size_t len;
	uint8_t *b = make_batch(5, 1000, 0, &len);
	int64_t off, ts;

	T_EQ(batch_find_ts(b, len, 50, 1015, &off, &ts), 0);
	T_EQ(off, 52);
	T_EQ(ts, 1020);
	T_EQ(batch_find_ts(b, len, 50, 0, &off, &ts), 0);
	T_EQ(off, 50);
	T_EQ(batch_find_ts(b, len, 50, 2000, &off, &ts), -1);
	T_EQ(batch_find_max_ts(b, len, 50, &off, &ts), 0);
	T_EQ(off, 54);
	T_EQ(ts, 1040);
	/* From a log start inside the batch: records below it never answer. */
	T_EQ(batch_find_ts_from(b, len, 50, 0, 1015, &off, &ts), 0);
	T_EQ(off, 52);
	T_EQ(batch_find_ts_from(b, len, 50, 53, 1015, &off, &ts), 0);
	T_EQ(off, 53);
	T_EQ(ts, 1030);
	T_EQ(batch_find_ts_from(b, len, 50, 54, 0, &off, &ts), 0);
	T_EQ(off, 54);
	T_EQ(ts, 1040);
	T_EQ(batch_find_ts_from(b, len, 50, 55, 0, &off, &ts), -1);
	T_EQ(batch_find_max_ts_from(b, len, 50, 53, &off, &ts), 0);
	T_EQ(off, 54);
	T_EQ(ts, 1040);
	T_EQ(batch_find_max_ts_from(b, len, 50, 55, &off, &ts), -1);
	/* LogAppendTime: every record has the batch's time; the first answers. */
	batch_set_log_append_time(b, len, 5000);
	T_EQ(batch_find_ts(b, len, 50, 4000, &off, &ts), 0);
	T_EQ(off, 50);
	T_EQ(ts, 5000);
	T_EQ(batch_find_ts(b, len, 50, 5001, &off, &ts), -1);
	T_EQ(batch_find_max_ts(b, len, 50, &off, &ts), 0);
	T_EQ(off, 50);
	T_EQ(batch_find_ts_from(b, len, 50, 52, 4000, &off, &ts), 0);
	T_EQ(off, 52);
	T_EQ(ts, 5000);
	T_EQ(batch_find_max_ts_from(b, len, 50, 53, &off, &ts), 0);
	T_EQ(off, 53);
	free(b);
	/* Claiming a codec its records are not compressed with: no answer. */
	b = make_batch(5, 1000, 1, &len);
	T_EQ(batch_find_ts(b, len, 50, 1015, &off, &ts), -1);
	free(b);
}

static uint8_t *slurp(const char *name, size_t *n)
{
	char path[256];
	FILE *f;
	uint8_t *p = NULL;
	long len;

	snprintf(path, sizeof(path), "tests/unit/data/%s", name);
	if (!(f = fopen(path, "rb"))) {
		fprintf(stderr, "  cannot open %s\n", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)len + 1)) && fread(p, 1, (size_t)len, f) == (size_t)len) {
		*n = (size_t)len;
	} else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

/* A batch of count records whose records section is payload, as given. */
static uint8_t *wrap(int16_t attr, const uint8_t *payload, size_t pn, int count,
		     int64_t base_ts, int64_t max_ts, size_t *len)
{
	struct sl_wr w;
	size_t at_len, at_crc;

	wr_init(&w, 0);
	wr_i64(&w, 0);
	wr_reserve(&w, 4, &at_len);
	wr_i32(&w, -1);
	wr_i8(&w, 2);
	wr_reserve(&w, 4, &at_crc);
	wr_i16(&w, attr);
	wr_i32(&w, count - 1);
	wr_i64(&w, base_ts);
	wr_i64(&w, max_ts);
	wr_i64(&w, -1);
	wr_i16(&w, -1);
	wr_i32(&w, -1);
	wr_i32(&w, count);
	wr_bytes(&w, payload, pn);
	T_EQ(w.err, 0);
	wr_patch_i32(&w, at_len, (int32_t)(w.len - 12));
	wr_patch_u32(&w, at_crc, crc32c(0, w.p + 21, w.len - 21));
	return wr_take(&w, len);
}

/* records.bin: 20 records, timestamp deltas 10*i. */
static const struct {
	const char *file;
	int codec;
} java_framed[] = {
	{ "records.gz", DC_GZIP },
	{ "records.xsnappy", DC_SNAPPY },
	{ "records.lz4", DC_LZ4 },
	{ "records.zst", DC_ZSTD },
};

static void test_compressed_records(void)
{
	for (size_t i = 0; i < sizeof(java_framed) / sizeof(java_framed[0]); i++) {
		size_t pn, len;
		uint8_t *payload = slurp(java_framed[i].file, &pn);
		struct batch_info bi;
		const char *why = NULL;
		int64_t off, ts;
		int16_t codec = (int16_t)java_framed[i].codec;

		T_CHECK(payload != NULL);
		if (!payload)
			continue;
		uint8_t *b = wrap(codec, payload, pn, 20, 1000, 1190, &len);
		T_EQ(batch_parse(b, len, &bi, &why), 0);
		T_EQ(bi.count, 20);
		T_EQ(bi.len, len);
		T_EQ(batch_find_ts(b, len, 100, 1015, &off, &ts), 0);
		T_EQ(off, 102);
		T_EQ(ts, 1020);
		T_EQ(batch_find_ts(b, len, 100, 1190, &off, &ts), 0);
		T_EQ(off, 119);
		T_EQ(batch_find_ts(b, len, 100, 0, &off, &ts), 0);
		T_EQ(off, 100);
		T_EQ(batch_find_ts(b, len, 100, 1191, &off, &ts), -1);
		T_EQ(batch_find_max_ts(b, len, 100, &off, &ts), 0);
		T_EQ(off, 119);
		T_EQ(ts, 1190);
		free(b);

		/* One record more claimed than there are, and one fewer. */
		b = wrap(codec, payload, pn, 21, 1000, 1190, &len);
		T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
		T_CHECK(why && strcmp(why, "malformed record") == 0);
		free(b);
		b = wrap(codec, payload, pn, 19, 1000, 1190, &len);
		T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
		T_CHECK(why && strcmp(why, "bytes after the last record") == 0);
		free(b);

		/* The payload cut short, with a valid CRC: the codec is named. */
		char want[64];
		snprintf(want, sizeof(want), "%s payload is corrupt", batch_codec_name(codec));
		b = wrap(codec, payload, pn - 3, 20, 1000, 1190, &len);
		why = NULL;
		T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
		T_CHECK(why && strcmp(why, want) == 0);
		T_EQ(batch_find_ts(b, len, 100, 1015, &off, &ts), -1);
		free(b);
		/* The wrong codec for the payload. */
		b = wrap((int16_t)(codec % 4 + 1), payload, pn, 20, 1000, 1190, &len);
		T_EQ(batch_parse(b, len, &bi, &why), KERR_CORRUPT_MESSAGE);
		free(b);
		/* LogAppendTime on a compressed batch: the first record answers. */
		b = wrap(codec, payload, pn, 20, 1000, 1190, &len);
		batch_set_log_append_time(b, len, 9000);
		T_EQ(batch_parse(b, len, &bi, &why), 0);
		T_EQ(batch_find_ts(b, len, 100, 1015, &off, &ts), 0);
		T_EQ(off, 100);
		T_EQ(ts, 9000);
		free(b);
		free(payload);
	}
}

static void test_librdkafka_batches(void)
{
	static const char *const files[] = {
		"rdkafka-gzip.batch", "rdkafka-snappy.batch", "rdkafka-lz4.batch", "rdkafka-zstd.batch"
	};
	const int64_t t0 = 1700000000000;

	for (int i = 0; i < 4; i++) {
		size_t len;
		uint8_t *b = slurp(files[i], &len);
		struct batch_info bi;
		const char *why = "";
		int64_t off, ts;

		T_CHECK(b != NULL);
		if (!b)
			continue;
		int rc = batch_parse(b, len, &bi, &why);
		if (rc != 0)
			fprintf(stderr, "  %s: %s\n", files[i], why);
		T_EQ(rc, 0);
		T_EQ(bi.len, len);
		T_EQ(bi.attributes & BATCH_ATTR_COMPRESSION, i + 1);
		T_EQ(bi.count, 50);
		T_EQ(bi.max_ts, t0 + 490);
		T_EQ(batch_find_ts(b, len, 1000, t0 + 15, &off, &ts), 0);
		T_EQ(off, 1002);
		T_EQ(ts, t0 + 20);
		T_EQ(batch_find_ts(b, len, 1000, t0 + 333, &off, &ts), 0);
		T_EQ(off, 1034);
		T_EQ(ts, t0 + 340);
		T_EQ(batch_find_max_ts(b, len, 1000, &off, &ts), 0);
		T_EQ(off, 1049);
		T_EQ(batch_find_ts(b, len, 1000, t0 + 491, &off, &ts), -1);
		/* The broker's edits keep it valid. */
		batch_set_base(b, 77, 3);
		T_EQ(batch_parse(b, len, &bi, &why), 0);
		free(b);
	}
}

static void test_inflation_cap(void)
{
	size_t pn, len;
	uint8_t *payload = slurp("zeros-64m.zst", &pn);
	struct batch_info bi;
	const char *why = NULL;

	T_CHECK(payload != NULL);
	if (!payload)
		return;
	/* 64 MiB + 1 byte of zeros, streamed without a content size. */
	uint8_t *b = wrap(DC_ZSTD, payload, pn, 1, 0, 0, &len);
	T_EQ(batch_parse(b, len, &bi, &why), KERR_MESSAGE_TOO_LARGE);
	T_CHECK(why && strcmp(why, "zstd payload inflates beyond 64 MiB") == 0);
	free(b);
	free(payload);
}

/* Transaction markers: a valid control batch whose record is the marker Kafka writes. */
static void test_markers(void)
{
	/* The record after the header, by hand: length 16, attributes 0, deltas 0,
	 * key length 4 (version 0, type), value length 6 (version 0, epoch 7), no headers. */
	static const uint8_t rec_commit[] = { 0x20, 0, 0, 0, 0x08, 0, 0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 7, 0 };
	for (int type = 0; type <= 1; type++) {
		struct sl_wr w;
		struct batch_info bi;
		const char *why;

		wr_init(&w, 0);
		wr_u8(&w, 0xee);	/* something before: the marker is written after it */
		T_EQ(batch_marker(&w, 4242, 3, type, 7, 1700000000123), 0);
		const uint8_t *b = w.p + 1;
		size_t n = w.len - 1;
		T_EQ(batch_parse(b, n, &bi, &why), 0);
		T_EQ(bi.len, n);
		T_EQ(bi.attributes, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
		T_EQ(bi.producer_id, 4242);
		T_EQ(bi.producer_epoch, 3);
		T_EQ(bi.base_sequence, -1);
		T_EQ(bi.count, 1);
		T_EQ(bi.last_offset_delta, 0);
		T_EQ(bi.max_ts, 1700000000123);
		T_EQ(n, BATCH_HEADER + sizeof(rec_commit));
		uint8_t want[sizeof(rec_commit)];
		memcpy(want, rec_commit, sizeof(want));
		want[8] = (uint8_t)type;
		T_MEMEQ(b + BATCH_HEADER, want, sizeof(want));
		T_EQ(batch_marker_type(b, n), type);
		/* A marker moved to its offset stays valid. */
		batch_set_base(w.p + 1, 99, 0);
		T_EQ(batch_parse(b, n, &bi, &why), 0);
		T_EQ(batch_marker_type(b, n), type);
		wr_free(&w);
	}
	/* A data batch is no marker. */
	size_t len;
	uint8_t *d = make_batch(2, 1000, 0, &len);
	T_EQ(batch_marker_type(d, len), -1);
	free(d);
	/* A control batch whose key names another type is not one Kafka writes. */
	struct sl_wr w;
	wr_init(&w, 0);
	T_EQ(batch_marker(&w, 1, 0, 5, 0, 0), 0);
	T_EQ(batch_marker_type(w.p, w.len), -1);
	wr_free(&w);
}

int main(void)
{
	T_RUN(test_markers);
	T_RUN(test_valid);
	T_RUN(test_every_corruption_refused);
	T_RUN(test_truncated_and_bad_header);
	T_RUN(test_inconsistent_counts);
	T_RUN(test_edits_keep_crc);
	T_RUN(test_find_ts);
	T_RUN(test_compressed_records);
	T_RUN(test_librdkafka_batches);
	T_RUN(test_inflation_cap);
	return t_done();
}
