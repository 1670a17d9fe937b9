/*
 * test_kafka.c - the broker in one process, driven over loopback with
 * requests built by the codec: a device error under a Produce reaches the
 * client as KAFKA_STORAGE_ERROR, the failed batch is never served, later
 * produces are refused the same way, and what was acknowledged before stays
 * readable.
 *
 * The WAL runs on its pwrite path, where faults come in through wal_sys.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "t.h"
#include "../../kafka/kafka.h"
#include "../../kafka/kerr.h"
#include "../../kafka/msgs.h"
#include "../../kernel/crc32c.h"
#include "../../kernel/log.h"
#include "../../storage/wal.h"

static struct loop *L;
static int fail_writes;

static ssize_t eio_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fail_writes) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

static void stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* Run the loop a millisecond at a time until fd is readable or ms pass. */
static void pump(int fd, int ms)
{
	for (int i = 0; i < ms; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 0) == 1)
			return;
		struct loop_timer t;
		loop_timer_init(&t, stop_loop, NULL);
		loop_timer_set(L, &t, 1);
		(void)loop_run(L);
		loop_timer_cancel(L, &t);
	}
}

/*
 * Send one request (header v1, body encoded from req at version ver) and
 * decode the answer's body into resp with the arena.  0 on success.
 */
static int roundtrip(int fd, int16_t key, int16_t ver, const void *req, void *resp, struct arena *a)
{
	static int32_t corr = 100;
	const struct kc_api *api = kc_api_find(key);
	int flex = ver >= api->flex_min;
	struct sl_wr w;
	size_t at;
	uint8_t hdr[4];

	wr_init(&w, 0);
	(void)wr_reserve(&w, 4, &at);
	wr_i16(&w, key);
	wr_i16(&w, ver);
	wr_i32(&w, ++corr);
	wr_i16(&w, 4);
	wr_bytes(&w, "test", 4);
	if (flex)
		wr_u8(&w, 0);	/* header tags */
	if (kc_encode(api->req, ver, flex, req, &w) != 0)
		return -1;
	wr_patch_u32(&w, at, (uint32_t)(w.len - 4));
	if (write(fd, w.p, w.len) != (ssize_t)w.len)
		return -1;
	wr_free(&w);

	/* Read the size, then the body, pumping the broker's loop meanwhile. */
	size_t got = 0, need = 4;
	uint8_t *body = NULL;
	while (got < need) {
		pump(fd, 2000);
		uint8_t *dst = body ? body + got - 4 : hdr + got;
		ssize_t r = recv(fd, dst, need - got, MSG_DONTWAIT);
		if (r <= 0)
			continue;
		got += (size_t)r;
		if (!body && got == 4) {
			need = 4 + sl_load_be32(hdr);
			body = arena_alloc(a, need);
		}
	}
	struct sl_rd rd;
	int32_t c;
	rd_init(&rd, body, need - 4);
	if (rd_i32(&rd, &c) || c != corr)
		return -1;
	if (flex && key != 18) {
		uint8_t tags;
		if (rd_u8(&rd, &tags))
			return -1;
	}
	return kc_decode(api->resp, ver, flex, &rd, a, resp);
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

static int16_t create_topic(int fd, const char *t)
{
	struct arena a;
	struct create_topics_req_creatable_topic ct = { 0 };
	struct create_topics_req rq;
	struct create_topics_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_create_topics_req, &rq);
	ct.name = kc_str_of(t, (int32_t)strlen(t));
	ct.num_partitions = 1;
	ct.replication_factor = 1;
	rq.topics = &ct;
	rq.topics_n = 1;
	if (roundtrip(fd, 19, 4, &rq, &rs, &a) == 0 && rs.topics_n == 1)
		err = rs.topics[0].error_code;
	arena_free(&a);
	return err;
}

static void test_device_error_reaches_the_client(void)
{
	const char *path = "build/test-kafka-wal";
	struct wal_ident ident = { "sluice-local", 0 };
	struct config cfg;
	char why[256];
	int err;
	int64_t base = -1;

	mkdir("build", 0755);
	unlink(path);
	T_EQ(config_init(&cfg), 0);
	T_EQ(wal_format(path, 8 << 20, &ident, 0, why, sizeof(why)), 0);
	struct wal *w = wal_open(L, path, &ident, &err, why, sizeof(why));
	T_CHECK(w != NULL);
	if (!w)
		return;
	struct store *st = store_new(L);
	store_set_wal(st, w);
	struct kafka *k = kafka_new(L, &cfg, st);
	struct wal_recovery rec;
	T_EQ(store_recover(st, &rec), 0);
	struct net_limits lim = { 1 << 20, 10, 100, 1 << 20 };
	struct net_ops ops = { .on_request = kafka_on_request };
	struct server *srv = server_listen(L, "127.0.0.1", 0, &lim, &ops, k);
	T_CHECK(srv != NULL);
	if (!srv)
		return;
	kafka_set_port(k, server_port(srv));

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(server_port(srv)) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

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

	close(fd);
	server_destroy(srv);
	wal_close(w);
	kafka_destroy(k);
	store_destroy(st);
	config_free(&cfg);
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
