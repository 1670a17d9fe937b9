/*
 * tbroker.h - the broker in one process for unit tests: a WAL file, the
 * store, the Kafka front end and a listener on a loopback port, and a client
 * socket that speaks requests built with the codec.
 *
 * tb_start() formats the WAL when asked, else recovers what it holds, so a
 * test can stop and start a broker on the same file as a restart would.
 * Everything here is static: include it from one test file.
 */
#ifndef SL_TESTS_TBROKER_H
#define SL_TESTS_TBROKER_H

#include <arpa/inet.h>
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
#include "../../storage/objstore.h"
#include "../../storage/tier.h"
#include "../../storage/wal.h"

static struct loop *L;

struct tbroker {
	struct config cfg;
	struct wal *w;
	struct store *st;
	struct kafka *k;
	struct server *srv;
	struct objstore *os;	/* with sluice.objects.url set */
	struct tier *tier;
	int fd;			/* the client's connection */
};

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
static int __attribute__((unused)) roundtrip(int fd, int16_t key, int16_t ver, const void *req, void *resp, struct arena *a)
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

static int16_t __attribute__((unused)) create_topic(int fd, const char *t)
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

struct tb_ready {
	int done, err;
};

static void tb_tier_ready(void *arg, int err)
{
	struct tb_ready *r = arg;

	r->done = 1;
	r->err = err;
}

/* With sluice.objects.url: the object store and the tier, the manifest loaded and restored. */
static int tb_tier(struct tbroker *b)
{
	struct objstore_options oo = { .create_dir = 1 };
	struct tier_options to = {
		.node = b->cfg.node_id,
		.cluster = "sluice-local",
		.upload_bytes = (uint64_t)b->cfg.upload_bytes,
		.upload_interval_ms = (uint64_t)b->cfg.upload_interval_ms,
		.comp = strcmp(b->cfg.objects_compression, "none") ? OBJ_COMP_ZSTD : OBJ_COMP_NONE,
		.cache_bytes = (size_t)b->cfg.cache_bytes,
		.tail_bytes = (size_t)b->cfg.tail_bytes,
		.gc_grace_ms = b->cfg.gc_grace_ms,
		.gc_interval_ms = b->cfg.gc_interval_ms,
		.compaction_interval_ms = b->cfg.compaction_interval_ms,
		.compaction_rate = (uint64_t)b->cfg.compaction_rate,
		.trim_interval_ms = 1,
	};
	struct tb_ready r = { 0 };
	char why[256];

	if (objstore_open(L, b->cfg.objects_url, &oo, &b->os, why, sizeof(why)) != 0)
		return -1;
	b->tier = tier_new(L, b->st, b->w, b->os, &to);
	if (!b->tier)
		return -1;
	kafka_set_tier(b->k, b->tier);
	if (tier_load(b->tier, tb_tier_ready, &r) != 0)
		return -1;
	for (int i = 0; i < 5000 && !r.done; i++)
		pump(-1, 1);
	if (!r.done || r.err)
		return -1;
	return kafka_restore_tier(b->k);
}

/*
 * One uncompressed batch of one record whose value is v and timestamp ts,
 * from producer pid (-1: none) at epoch with base sequence seq, with the
 * given attributes (0x10 transactional).
 */
static __attribute__((unused)) uint8_t *batch_from(const char *v, int64_t ts, int64_t pid, int16_t epoch,
						   int32_t seq, int16_t attr, size_t *len)
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
	wr_i16(&w, attr);
	wr_i32(&w, 0);
	wr_i64(&w, ts);			/* base timestamp */
	wr_i64(&w, ts);			/* max timestamp */
	wr_i64(&w, pid);
	wr_i16(&w, epoch);
	wr_i32(&w, seq);
	wr_i32(&w, 1);
	wr_varint(&w, (int32_t)r.len);
	wr_bytes(&w, r.p, r.len);
	wr_free(&r);
	wr_patch_i32(&w, at_len, (int32_t)(w.len - 12));
	wr_patch_u32(&w, at_crc, crc32c(0, w.p + 21, w.len - 21));
	return wr_take(&w, len);
}

static __attribute__((unused)) uint8_t *batch_at(const char *v, int64_t ts, size_t *len)
{
	return batch_from(v, ts, -1, -1, -1, 0, len);
}

static __attribute__((unused)) uint8_t *batch(const char *v, size_t *len)
{
	return batch_at(v, 1700000000000, len);
}

/* Produce v7 of the batch bytes b to t-part; the partition's error code (-100: no answer) and base offset. */
static int16_t __attribute__((unused)) produce_bytes(int fd, const char *t, int32_t part, const uint8_t *b,
						     size_t len, int64_t *base)
{
	struct arena a;
	struct produce_req_partition_produce_data pd = { 0 };
	struct produce_req_topic_produce_data td = { 0 };
	struct produce_req rq;
	struct produce_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_produce_req, &rq);
	rq.transactional_id = KC_NULL_STR;
	rq.acks = -1;
	rq.timeout_ms = 5000;
	pd.index = part;
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
	return err;
}

/* Produce v7 of one batch to t-part; the partition's error code (-100: no answer) and base offset. */
static int16_t __attribute__((unused)) produce_to(int fd, const char *t, int32_t part, const char *value,
						  int64_t ts, int64_t *base)
{
	size_t len;
	uint8_t *b = batch_at(value, ts, &len);
	int16_t err = b ? produce_bytes(fd, t, part, b, len, base) : -100;

	free(b);
	return err;
}

/*
 * The settings sets (NULL-ended) with "sluice.objects.url=file://<cwd>/dir"
 * put first: a tier over a directory below the working directory.  The
 * array is static, overwritten by the next call; NULL if cwd is too long.
 */
static __attribute__((unused)) const char *const *tb_file_tier_sets(const char *dir, const char *const *sets)
{
	static char url[600];
	static const char *s[32];
	char cwd[400];
	int i;

	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	snprintf(url, sizeof(url), "sluice.objects.url=file://%s/%s", cwd, dir);
	s[0] = url;
	for (i = 0; sets[i] && i + 2 < (int)(sizeof(s) / sizeof(s[0])); i++)
		s[i + 1] = sets[i];
	s[i + 1] = NULL;
	return s;
}

/* produce_to partition 0 with the fixed timestamp of batch(). */
static int16_t __attribute__((unused)) produce(int fd, const char *t, const char *value, int64_t *base)
{
	return produce_to(fd, t, 0, value, 1700000000000, base);
}

/* DeleteRecords at ver for one partition: the error code (-100 on failure) and low watermark. */
static int16_t __attribute__((unused)) delete_records(int fd, int16_t ver, const char *t, int32_t part, int64_t off, int64_t *low)
{
	struct arena a;
	struct delete_records_req_delete_records_partition qp = { part, off };
	struct delete_records_req_delete_records_topic qt = { kc_str_of(t, (int32_t)strlen(t)), &qp, 1 };
	struct delete_records_req rq;
	struct delete_records_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_delete_records_req, &rq);
	rq.topics = &qt;
	rq.topics_n = 1;
	rq.timeout_ms = 30000;
	*low = -100;
	if (roundtrip(fd, 21, ver, &rq, &rs, &a) == 0 && rs.topics_n == 1 &&
	    kc_str_eq(rs.topics[0].name, t) && rs.topics[0].partitions_n == 1 &&
	    rs.topics[0].partitions[0].partition_index == part) {
		err = rs.topics[0].partitions[0].error_code;
		*low = rs.topics[0].partitions[0].low_watermark;
	}
	arena_free(&a);
	return err;
}

/* ListOffsets v1 latest: the high watermark of t-0, or -100 on a protocol failure. */
static int64_t __attribute__((unused)) high_watermark(int fd, const char *t)
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

/*
 * Start a broker on the WAL at path (formatted first when format is set),
 * with the --set style overrides in sets (NULL-terminated), and connect to
 * it.  0 on success.
 */
static int __attribute__((unused)) tb_start(struct tbroker *b, const char *path, int format,
					   const char *const *sets)
{
	struct wal_ident ident = { "sluice-local", 0 };
	char why[256];
	int err;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	mkdir("build", 0755);
	if (config_init(&b->cfg) != 0)
		return -1;
	for (; sets && *sets; sets++)
		if (config_set(&b->cfg, *sets, "test", why, sizeof(why)) != 0)
			return -1;
	if (format) {
		unlink(path);
		if (wal_format(path, 8 << 20, &ident, 0, why, sizeof(why)) != 0)
			return -1;
	}
	b->w = wal_open(L, path, &ident, &err, why, sizeof(why));
	if (!b->w)
		return -1;
	b->st = store_new(L);
	store_set_wal(b->st, b->w);
	b->k = kafka_new(L, &b->cfg, b->st);
	if (!b->k || (b->cfg.objects_url[0] && tb_tier(b) != 0))
		return -1;
	struct wal_recovery rec;
	if (store_recover(b->st, &rec) != 0 || kafka_recovered(b->k) != 0)
		return -1;
	if (b->tier)
		tier_start(b->tier);
	struct net_limits lim = { 1 << 20, 10, 100, 1 << 20 };
	struct net_ops ops = { .on_request = kafka_on_request };
	b->srv = server_listen(L, "127.0.0.1", 0, &lim, &ops, b->k);
	if (!b->srv)
		return -1;
	kafka_set_port(b->k, server_port(b->srv));
	b->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(server_port(b->srv)) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect(b->fd, (struct sockaddr *)&sa, sizeof(sa));
}

/* Stop everything tb_start made (in any state it left). */
static void __attribute__((unused)) tb_stop(struct tbroker *b)
{
	if (b->fd >= 0)
		close(b->fd);
	pump(-1, 5);	/* let the server see the close */
	if (b->srv)
		server_destroy(b->srv);
	pump(-1, 2);	/* closed connections are freed by a deferred task */
	if (b->w)
		wal_close(b->w);
	kafka_destroy(b->k);
	tier_free(b->tier);
	if (b->os)
		objstore_free(b->os);
	if (b->st)
		store_destroy(b->st);
	config_free(&b->cfg);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

static void __attribute__((unused)) rm_rf(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

/* Pump until the manifest holds every edit made so far (or 5 s pass): a blank WAL loses the rest. */
static int __attribute__((unused)) wait_committed(struct tbroker *b)
{
	struct tier_stats ts;
	uint64_t before;

	tier_stats(b->tier, &ts);
	before = ts.commits;
	for (int i = 0; i < 5000; i++) {
		tier_stats(b->tier, &ts);
		if (ts.commits > before && manifest_pending(tier_manifest(b->tier)) == 0)
			return 1;
		pump(-1, 1);
	}
	return 0;
}

#endif
