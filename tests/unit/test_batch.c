/*
 * test_batch.c - record batch validation and the broker's edits: a batch
 * built here record by record (as the v2 format describes it) must parse;
 * every single-byte corruption must be refused; truncations, bad magic,
 * inconsistent counts and bad records get their Kafka error codes; base
 * offset and LogAppendTime edits keep the CRC valid; time lookups.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/batch.h"
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
	/* Compressed: the batch answers for its records. */
	b[22] |= 1;
	T_EQ(batch_find_ts(b, len, 50, 1015, &off, &ts), 0);
	T_EQ(off, 50);
	free(b);
}

int main(void)
{
	T_RUN(test_valid);
	T_RUN(test_every_corruption_refused);
	T_RUN(test_truncated_and_bad_header);
	T_RUN(test_inconsistent_counts);
	T_RUN(test_edits_keep_crc);
	T_RUN(test_find_ts);
	return t_done();
}
