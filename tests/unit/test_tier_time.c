/*
 * test_tier_time.c - ListOffsets by time and by largest time (-3) over
 * shared storage: the broker in one process (tbroker.h) with a file://
 * object store, sluice.tail.bytes=0 (uploaded batches leave memory at
 * once) and sluice.cache.bytes=0 (the block cache keeps only what lookups
 * pin), so every answer below the memory tail comes from data objects.
 *
 * Topics are written from a model: batches of eight records of 8000 bytes
 * (so an object of sluice.upload.bytes holds two blocks or more), each
 * record with its own timestamp.  Timestamps mostly grow with offsets; one
 * batch is a spike far above its neighbours, one has them falling inside
 * it, one has eight equal ones.  Every answer is compared with the model's:
 * the first record at or after the log start whose timestamp is >= T, or
 * the first record with the largest timestamp at or after the log start.
 *
 * Covered: T before the first record, every record's timestamp exactly,
 * just after it (between records and batches), after the last (-1); many
 * lookups in one request (waiting together); a connection closed while
 * its lookups wait; the same after a stateless restart (a blank WAL, the
 * same store); DeleteRecords putting the log
 * start inside a batch (answers never below it, a batch whose match lay
 * below it passes the search on); -3 with its maximum in an object, and
 * with the log start inside the batch holding it.
 */
#include <errno.h>
#include "tbroker.h"
#include "../../kafka/kreq.h"
#include "../../storage/object.h"
#include "../../storage/rcache.h"

#define OBJDIR "build/test-tier-time-objs"
#define WALP "build/test-tier-time-wal"
#define NREC 8
#define VLEN 8000

static const char *const base_sets[] = {
	"sluice.upload.interval.ms=1000",	/* objects cut by size, but for the last */
	"sluice.upload.bytes=1200000",
	"sluice.tail.bytes=0",
	"sluice.cache.bytes=0",
	NULL,
};
static const char *const *tier_sets(void)
{
	return tb_file_tier_sets(OBJDIR, base_sets);
}

/* ---- the model ---- */

#define MAXB 64

struct model {
	int nb;
	int64_t ts[MAXB][NREC];		/* batch k's record r is offset NREC * k + r */
	int64_t start;			/* the log start */
};

static int64_t t0;

/* The first record at or after the log start with a timestamp >= T: offset and time, or -1. */
static int64_t want_time(const struct model *m, int64_t T, int64_t *ts)
{
	for (int64_t o = m->start; o < (int64_t)m->nb * NREC; o++) {
		if (m->ts[o / NREC][o % NREC] >= T) {
			*ts = m->ts[o / NREC][o % NREC];
			return o;
		}
	}
	*ts = -1;
	return -1;
}

static int64_t want_max(const struct model *m, int64_t *ts)
{
	int64_t best = -1, at = -1;

	for (int64_t o = m->start; o < (int64_t)m->nb * NREC; o++) {
		if (m->ts[o / NREC][o % NREC] > best) {
			best = m->ts[o / NREC][o % NREC];
			at = o;
		}
	}
	*ts = best;
	return at;
}

/* ---- requests ---- */

/* Batch k of the model, records NREC values of VLEN bytes; its base offset is set by the broker. */
static uint8_t *model_batch(const struct model *m, int k, size_t *len)
{
	struct sl_wr w, r;
	size_t at_len, at_crc;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	static uint8_t val[VLEN];

	for (int i = 0; i < NREC; i++) {
		lo = m->ts[k][i] < lo ? m->ts[k][i] : lo;
		hi = m->ts[k][i] > hi ? m->ts[k][i] : hi;
	}
	wr_init(&r, 0);
	for (int i = 0; i < NREC; i++) {
		struct sl_wr rec;
		wr_init(&rec, 0);
		wr_i8(&rec, 0);
		wr_varlong(&rec, m->ts[k][i] - lo);
		wr_varint(&rec, i);
		wr_varint(&rec, -1);		/* null key */
		memset(val, 'a' + (k + i) % 26, sizeof(val));
		snprintf((char *)val, 32, "b%d r%d", k, i);
		wr_varint(&rec, VLEN);
		wr_bytes(&rec, val, VLEN);
		wr_varint(&rec, 0);		/* no headers */
		wr_varint(&r, (int32_t)rec.len);
		wr_bytes(&r, rec.p, rec.len);
		wr_free(&rec);
	}
	wr_init(&w, 0);
	wr_i64(&w, 0);
	(void)wr_reserve(&w, 4, &at_len);
	wr_i32(&w, -1);
	wr_i8(&w, 2);
	(void)wr_reserve(&w, 4, &at_crc);
	wr_i16(&w, 0);
	wr_i32(&w, NREC - 1);
	wr_i64(&w, lo);
	wr_i64(&w, hi);
	wr_i64(&w, -1);
	wr_i16(&w, -1);
	wr_i32(&w, -1);
	wr_i32(&w, NREC);
	wr_bytes(&w, r.p, r.len);
	wr_free(&r);
	wr_patch_i32(&w, at_len, (int32_t)(w.len - 12));
	wr_patch_u32(&w, at_crc, crc32c(0, w.p + 21, w.len - 21));
	return wr_take(&w, len);
}

/* Produce v7 of batch k to t-0; its base offset, or -100 - error code. */
static int64_t produce_batch(int fd, const char *t, const struct model *m, int k)
{
	size_t len;
	uint8_t *b = model_batch(m, k, &len);
	int64_t base = -100;
	int16_t err = b ? produce_bytes(fd, t, 0, b, len, &base) : -100;

	free(b);
	return err == 0 ? base : err == -100 ? -100 : -100 - err;
}

#define MAXQ 64

/* A ListOffsets request for t-0 at the n timestamps tss, in rq, qt and qp. */
static void list_offsets_fill(struct list_offsets_req *rq, struct list_offsets_req_list_offsets_topic *qt,
			      struct list_offsets_req_list_offsets_partition *qp, const char *t,
			      const int64_t *tss, int n)
{
	kc_defaults(&kc_list_offsets_req, rq);
	for (int i = 0; i < n; i++) {
		kc_defaults(&kc_list_offsets_req_list_offsets_partition, &qp[i]);
		qp[i].partition_index = 0;
		qp[i].timestamp = tss[i];
	}
	rq->replica_id = -1;
	qt->name = kstr(t);
	qt->partitions = qp;
	qt->partitions_n = n;
	rq->topics = qt;
	rq->topics_n = 1;
}

/*
 * ListOffsets v7 for t-0 at n timestamps in one request: offsets and
 * timestamps out, each partition's error code in errs.  0, or -1 when the
 * exchange failed.
 */
static int list_offsets(int fd, const char *t, const int64_t *tss, int n, int64_t *off, int64_t *ts,
			int16_t *errs)
{
	struct arena a;
	struct list_offsets_req_list_offsets_partition qp[MAXQ];
	struct list_offsets_req_list_offsets_topic qt = { 0 };
	struct list_offsets_req rq;
	struct list_offsets_resp rs;
	int rc = -1;

	arena_init(&a, 0);
	list_offsets_fill(&rq, &qt, qp, t, tss, n);
	if (roundtrip(fd, 2, 7, &rq, &rs, &a) == 0 && rs.topics_n == 1 && rs.topics[0].partitions_n == n) {
		for (int i = 0; i < n; i++) {
			off[i] = rs.topics[0].partitions[i].offset;
			ts[i] = rs.topics[0].partitions[i].timestamp;
			errs[i] = rs.topics[0].partitions[i].error_code;
		}
		rc = 0;
	}
	arena_free(&a);
	return rc;
}

/* One lookup: the offset (-100 on a failure) and timestamp. */
static int64_t lookup(int fd, const char *t, int64_t T, int64_t *ts)
{
	int64_t off;
	int16_t err;

	if (list_offsets(fd, t, &T, 1, &off, ts, &err) != 0 || err != 0)
		return -100;
	return off;
}

/* Send ListOffsets v7 at n timestamps for t-0 on a new connection and close it unanswered. */
static void list_offsets_and_close(struct tbroker *b, const char *t, const int64_t *tss, int n)
{
	struct list_offsets_req_list_offsets_partition qp[MAXQ];
	struct list_offsets_req_list_offsets_topic qt = { 0 };
	struct list_offsets_req rq;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(server_port(b->srv)) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sl_wr w;
	size_t at;

	list_offsets_fill(&rq, &qt, qp, t, tss, n);
	wr_init(&w, 0);
	(void)wr_reserve(&w, 4, &at);
	wr_i16(&w, 2);
	wr_i16(&w, 7);
	wr_i32(&w, 1);
	wr_i16(&w, 4);
	wr_bytes(&w, "test", 4);
	wr_u8(&w, 0);		/* v7 is flexible: header tags */
	T_EQ(kc_encode(kc_api_find(2)->req, 7, 1, &rq, &w), 0);
	wr_patch_u32(&w, at, (uint32_t)(w.len - 4));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	T_EQ(write(fd, w.p, w.len), (ssize_t)w.len);
	wr_free(&w);
	pump(-1, 1);		/* the request is read and its lookups start */
	close(fd);
	pump(-1, 20);
}

/* ---- the broker ---- */

static struct stream *stream_of(struct tbroker *b, const char *name)
{
	struct topic *t = topic_find(b->k->reg, name, strlen(name));

	return t ? t->parts[0] : NULL;
}

/* Pump until every record of t is in a committed object and out of memory (or 5 s pass). */
static int wait_evicted(struct tbroker *b, const char *t)
{
	for (int i = 0; i < 5000; i++) {
		struct stream *s = stream_of(b, t);
		if (s && stream_mem_start(s) == stream_hw(s))
			return 1;
		pump(-1, 1);
	}
	return 0;
}

/* Data objects in the store and the blocks they hold. */
static int count_objects(int *blocks)
{
	FILE *f = popen("find " OBJDIR "/data -type f ! -name '.tmp-*' 2>/dev/null", "r");
	char path[1024];
	int n = 0;

	*blocks = 0;
	if (!f)
		return -1;
	while (fgets(path, sizeof(path), f)) {
		path[strcspn(path, "\n")] = 0;
		FILE *o = fopen(path, "rb");
		if (!o)
			continue;
		static uint8_t buf[16 << 20];
		size_t len = fread(buf, 1, sizeof(buf), o);
		fclose(o);
		struct obj_footer ft;
		struct obj_index ix;
		if (obj_parse(buf, len, &ft, &ix) == 0) {
			n++;
			*blocks += (int)ix.nblocks;
			obj_index_free(&ix);
		}
	}
	pclose(f);
	return n;
}

/* Every interesting T of the model against the broker; the number of wrong answers. */
static int check_times(int fd, const char *t, const struct model *m)
{
	int64_t tss[MAXQ], off[MAXQ], ts[MAXQ], wts;
	int16_t errs[MAXQ];
	int n = 0, bad = 0;

	/* Before the first, after the last, and each record's time and the next millisecond. */
	int64_t all[2 + 2 * MAXB * NREC];
	int na = 0;
	all[na++] = 0;
	all[na++] = t0 + 100000000;
	for (int k = 0; k < m->nb; k++)
		for (int r = 0; r < NREC; r++) {
			all[na++] = m->ts[k][r];
			all[na++] = m->ts[k][r] + 1;
		}
	for (int i = 0; i < na; i += n) {
		n = na - i < MAXQ ? na - i : MAXQ;
		memcpy(tss, all + i, (size_t)n * sizeof(*tss));
		if (list_offsets(fd, t, tss, n, off, ts, errs) != 0)
			return -1;
		for (int j = 0; j < n; j++) {
			int64_t w = want_time(m, tss[j], &wts);
			if (errs[j] != 0 || off[j] != w || ts[j] != wts) {
				if (bad++ < 10)
					fprintf(stderr, "  T=%lld: got %lld@%lld err %d, want %lld@%lld\n",
						(long long)(tss[j] - t0), (long long)off[j],
						(long long)(ts[j] - t0), errs[j], (long long)w,
						(long long)(wts - t0));
			}
		}
	}
	return bad;
}

static int check_max(int fd, const char *t, const struct model *m)
{
	int64_t ts, wts, w = want_max(m, &wts), off = lookup(fd, t, -3, &ts);

	if (off == w && ts == wts)
		return 1;
	fprintf(stderr, "  max: got %lld@%lld, want %lld@%lld\n", (long long)off, (long long)(ts - t0),
		(long long)w, (long long)(wts - t0));
	return 0;
}

/*
 * The by-time model: batch k's records at t0 + 1000 k + 10 r, except
 * batch 4, whose times fall inside it; batch 13, a spike above the next
 * seven batches; batch 30, eight equal times.
 */
static void model_times(struct model *m, int nb)
{
	memset(m, 0, sizeof(*m));
	m->nb = nb;
	for (int k = 0; k < nb; k++)
		for (int r = 0; r < NREC; r++)
			m->ts[k][r] = t0 + 1000 * k + 10 * r;
	for (int r = 0; r < NREC; r++) {
		m->ts[4][r] = t0 + 4000 + 10 * (NREC - 1 - r);
		m->ts[13][r] = t0 + 20500 + 10 * r;
		m->ts[30][r] = t0 + 30000;
	}
}

static void test_by_time(void)
{
	struct tbroker b;
	struct model m;
	int64_t low, ts;
	struct rcache_stats rst;
	int blocks, nobj;

	rm_rf(OBJDIR);
	t0 = loop_wall_ms() - 3600000;
	model_times(&m, 48);
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(create_topic(b.fd, "tt"), KERR_NONE);
	/* Empty: nothing to find, in memory or objects. */
	T_EQ(lookup(b.fd, "tt", 0, &ts), -1);
	T_EQ(lookup(b.fd, "tt", -3, &ts), -1);
	for (int k = 0; k < m.nb; k++)
		T_EQ(produce_batch(b.fd, "tt", &m, k), (int64_t)k * NREC);
	T_CHECK(wait_evicted(&b, "tt"));
	nobj = count_objects(&blocks);
	T_CHECK(nobj >= 3);
	T_CHECK(blocks > nobj);			/* some object holds several blocks */
	struct stream *s = stream_of(&b, "tt");
	const struct mf_partition *mp = s ? manifest_partition(tier_manifest(b.tier), stream_id_of(s)->ns, 0) : NULL;
	T_CHECK(mp && mp->nranges >= 3);

	T_EQ(check_times(b.fd, "tt", &m), 0);
	T_CHECK(check_max(b.fd, "tt", &m));
	rcache_stats(tier_rcache(b.tier), &rst);
	T_CHECK(rst.gets > 0);
	T_EQ(rst.pinned_bytes, 0);		/* every lookup let its blocks go */

	/* A stateless restart: a blank WAL, the same store. */
	tb_stop(&b);
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(high_watermark(b.fd, "tt"), (int64_t)m.nb * NREC);
	/* A connection that goes while its lookups read objects: they end, their pins go. */
	int64_t some[4] = { t0 + 20000, t0 + 47000, -3, 0 };
	list_offsets_and_close(&b, "tt", some, 4);
	rcache_stats(tier_rcache(b.tier), &rst);
	T_EQ(rst.pinned_bytes, 0);
	T_EQ(check_times(b.fd, "tt", &m), 0);
	T_CHECK(check_max(b.fd, "tt", &m));

	/*
	 * The log start inside batch 4, whose times fall: its record at
	 * 32 (t0 + 4070) is gone, so T = t0 + 4070 passes on to batch 5.
	 */
	T_EQ(delete_records(b.fd, 2, "tt", 0, 34, &low), KERR_NONE);
	T_EQ(low, 34);
	m.start = 34;
	T_EQ(lookup(b.fd, "tt", t0 + 4070, &ts), 40);
	T_EQ(ts, t0 + 5000);
	T_EQ(lookup(b.fd, "tt", 0, &ts), 34);
	T_EQ(ts, t0 + 4050);
	T_EQ(check_times(b.fd, "tt", &m), 0);
	/* Inside the spike: the rest of it answers. */
	T_EQ(delete_records(b.fd, 2, "tt", 0, 13 * NREC + 5, &low), KERR_NONE);
	m.start = 13 * NREC + 5;
	T_EQ(lookup(b.fd, "tt", t0 + 20500, &ts), 13 * NREC + 5);
	T_EQ(ts, t0 + 20550);
	T_EQ(check_times(b.fd, "tt", &m), 0);

	/* New batches in memory above the objects: both searched, objects first. */
	m.nb += 2;
	for (int k = m.nb - 2; k < m.nb; k++)
		for (int r = 0; r < NREC; r++)
			m.ts[k][r] = t0 + 1000 * k + 10 * r;
	T_EQ(produce_batch(b.fd, "tt", &m, m.nb - 2), (int64_t)(m.nb - 2) * NREC);
	T_EQ(produce_batch(b.fd, "tt", &m, m.nb - 1), (int64_t)(m.nb - 1) * NREC);
	T_EQ(check_times(b.fd, "tt", &m), 0);
	T_CHECK(check_max(b.fd, "tt", &m));
	tb_stop(&b);
}

/*
 * -3: the largest time is record 2 of batch 5, then record 6 of the same
 * batch, then record 3 of batch 17; the log start moved past each.
 */
static void test_max_time(void)
{
	struct tbroker b;
	struct model m;
	int64_t low;

	rm_rf(OBJDIR);
	t0 = loop_wall_ms() - 3600000;
	model_times(&m, 30);
	m.ts[5][2] = t0 + 10000000;
	m.ts[5][6] = t0 + 1000000;
	m.ts[17][3] = t0 + 5000000;
	m.ts[22][0] = t0 + 5000000;		/* equal to batch 17's: the first answers */
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(create_topic(b.fd, "mx"), KERR_NONE);
	for (int k = 0; k < m.nb; k++)
		T_EQ(produce_batch(b.fd, "mx", &m, k), (int64_t)k * NREC);
	T_CHECK(wait_evicted(&b, "mx"));
	T_CHECK(check_max(b.fd, "mx", &m));

	/* The start inside batch 5, before its maximum: still it. */
	T_EQ(delete_records(b.fd, 2, "mx", 0, 41, &low), KERR_NONE);
	m.start = 41;
	T_CHECK(check_max(b.fd, "mx", &m));
	/* Past it: batch 5's best left (t0 + 1e6) loses to batch 17's. */
	T_EQ(delete_records(b.fd, 2, "mx", 0, 43, &low), KERR_NONE);
	m.start = 43;
	T_CHECK(check_max(b.fd, "mx", &m));
	T_EQ(check_times(b.fd, "mx", &m), 0);
	/* Past batch 17's: batch 22's equal one. */
	T_EQ(delete_records(b.fd, 2, "mx", 0, 17 * NREC + 4, &low), KERR_NONE);
	m.start = 17 * NREC + 4;
	T_CHECK(check_max(b.fd, "mx", &m));
	/* Past it too: batch 22's rest loses to the last batch's last record. */
	T_EQ(delete_records(b.fd, 2, "mx", 0, 22 * NREC + 1, &low), KERR_NONE);
	m.start = 22 * NREC + 1;
	T_CHECK(check_max(b.fd, "mx", &m));
	T_EQ(check_times(b.fd, "mx", &m), 0);

	/* A stateless restart, once the log start is in the manifest. */
	T_CHECK(wait_committed(&b));
	tb_stop(&b);
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_CHECK(check_max(b.fd, "mx", &m));
	T_EQ(check_times(b.fd, "mx", &m), 0);
	tb_stop(&b);
}

int main(void)
{
	log_set_level(LOG_WARN);
	L = loop_new();
	T_RUN(test_by_time);
	T_RUN(test_max_time);
	loop_destroy(L);
	rm_rf(OBJDIR);
	unlink(WALP);
	return t_done();
}
