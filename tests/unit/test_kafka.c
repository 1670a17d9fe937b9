/*
 * test_kafka.c - the broker in one process, driven over loopback with
 * requests built by the codec: a device error under a Produce reaches the
 * client as KAFKA_STORAGE_ERROR, the failed batch is never served, later
 * produces are refused the same way, and what was acknowledged before stays
 * readable.
 *
 * The WAL runs on its pwrite path, where faults come in through wal_sys.
 */
#include <errno.h>
#include "tbroker.h"
#include "../../kernel/crc32c.h"

static int fail_writes;

static ssize_t eio_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fail_writes) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

/* One uncompressed batch of one record whose value is v. */
static uint8_t *batch(const char *v, size_t *len)
{
	struct sl_wr w, r;
	size_t at_len, at_crc;
	size_t vl = strlen(v);

	wr_init(&r, 0);
	wr_i8(&r, 0);
	wr_varlong(&r, 0);
	wr_varint(&r, 0);
	wr_varint(&r, -1);		/* null key */
	wr_varint(&r, (int32_t)vl);
	wr_bytes(&r, v, vl);
	wr_varint(&r, 0);		/* no headers */
	wr_init(&w, 0);
	wr_i64(&w, 0);
	(void)wr_reserve(&w, 4, &at_len);
	wr_i32(&w, -1);
	wr_i8(&w, 2);
	(void)wr_reserve(&w, 4, &at_crc);
	wr_i16(&w, 0);
	wr_i32(&w, 0);
	wr_i64(&w, 1700000000000);
	wr_i64(&w, 1700000000000);
	wr_i64(&w, -1);
	wr_i16(&w, -1);
	wr_i32(&w, -1);
	wr_i32(&w, 1);
	wr_varint(&w, (int32_t)r.len);
	wr_bytes(&w, r.p, r.len);
	wr_free(&r);
	wr_patch_i32(&w, at_len, (int32_t)(w.len - 12));
	wr_patch_u32(&w, at_crc, crc32c(0, w.p + 21, w.len - 21));
	return wr_take(&w, len);
}

/* Produce v7 of one batch to topic t partition 0; the partition's error code and base offset. */
static int16_t produce(int fd, const char *t, const char *value, int64_t *base)
{
	struct arena a;
	struct produce_req_partition_produce_data pd = { 0 };
	struct produce_req_topic_produce_data td = { 0 };
	struct produce_req rq;
	struct produce_resp rs;
	size_t len;
	uint8_t *b = batch(value, &len);
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_produce_req, &rq);
	rq.transactional_id = KC_NULL_STR;
	rq.acks = -1;
	rq.timeout_ms = 5000;
	pd.index = 0;
	pd.records.p = b;
	pd.records.len = (int32_t)len;
	td.name = kc_str_of(t, (int32_t)strlen(t));
	td.partition_data = &pd;
	td.partition_data_n = 1;
	rq.topic_data = &td;
	rq.topic_data_n = 1;
	if (roundtrip(fd, 0, 7, &rq, &rs, &a) == 0 && rs.responses_n == 1 &&
	    rs.responses[0].partition_responses_n == 1) {
		err = rs.responses[0].partition_responses[0].error_code;
		*base = rs.responses[0].partition_responses[0].base_offset;
	}
	arena_free(&a);
	free(b);
	return err;
}

/* ListOffsets v1 latest: the high watermark of t-0, or -100 on a protocol failure. */
static int64_t high_watermark(int fd, const char *t)
{
	struct arena a;
	struct list_offsets_req_list_offsets_partition qp = { 0 };
	struct list_offsets_req_list_offsets_topic qt = { 0 };
	struct list_offsets_req rq;
	struct list_offsets_resp rs;
	int64_t hw = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_list_offsets_req, &rq);
	kc_defaults(&kc_list_offsets_req_list_offsets_partition, &qp);
	rq.replica_id = -1;
	qp.partition_index = 0;
	qp.timestamp = -1;
	qt.name = kc_str_of(t, (int32_t)strlen(t));
	qt.partitions = &qp;
	qt.partitions_n = 1;
	rq.topics = &qt;
	rq.topics_n = 1;
	if (roundtrip(fd, 2, 1, &rq, &rs, &a) == 0 && rs.topics_n == 1 && rs.topics[0].partitions_n == 1 &&
	    rs.topics[0].partitions[0].error_code == 0)
		hw = rs.topics[0].partitions[0].offset;
	arena_free(&a);
	return hw;
}

static void test_device_error_reaches_the_client(void)
{
	const char *path = "build/test-kafka-wal";
	struct tbroker b;
	int64_t base = -1;

	T_EQ(tb_start(&b, path, 1, NULL), 0);
	if (b.fd < 0) {
		tb_stop(&b);
		return;
	}
	int fd = b.fd;

	T_EQ(create_topic(fd, "faults"), KERR_NONE);
	T_EQ(produce(fd, "faults", "first", &base), KERR_NONE);
	T_EQ(base, 0);
	T_EQ(high_watermark(fd, "faults"), 1);

	/* The device fails under the next produce: the client hears it, nothing is served. */
	fail_writes = 1;
	wal_sys.pwrite = eio_pwrite;
	T_EQ(produce(fd, "faults", "second", &base), KERR_KAFKA_STORAGE_ERROR);
	T_EQ(high_watermark(fd, "faults"), 1);
	/* The device works again, but the WAL stays read-only: nothing more is acknowledged. */
	fail_writes = 0;
	wal_sys_reset();
	T_EQ(produce(fd, "faults", "third", &base), KERR_KAFKA_STORAGE_ERROR);
	T_EQ(high_watermark(fd, "faults"), 1);

	tb_stop(&b);
	unlink(path);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	L = loop_new();
	T_RUN(test_device_error_reaches_the_client);
	loop_destroy(L);
	return t_done();
}
