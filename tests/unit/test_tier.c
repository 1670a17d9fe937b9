/*
 * test_tier.c - shared storage in one process: the broker with a WAL and a
 * file:// object store, driven over loopback.
 *
 *   - produced batches are uploaded, named by a committed manifest version,
 *     trimmed from the WAL and (with sluice.tail.bytes=0) dropped from
 *     memory, and fetches from offset 0 read them back from the objects;
 *   - a broker started on a blank WAL with the same store serves every
 *     topic, offset and committed group offset (a stateless restart);
 *   - when manifest commits fail after the object PUT (a crash between the
 *     two), the WAL keeps everything and a restart serves each record once;
 *     the orphaned object is collected after its grace period.
 */
#include <dirent.h>
#include <errno.h>
#include "tbroker.h"
#include "../../kafka/kreq.h"

#define OBJDIR "build/test-tier-objs"
#define WALP "build/test-tier-wal"

static const char *const sets[] = {
	"sluice.upload.interval.ms=20",
	"sluice.tail.bytes=0",
	"sluice.objects.gc.grace.ms=1",
	"sluice.objects.gc.interval.ms=30",
	NULL,
};

static const char *const *tier_sets(void)
{
	return tb_file_tier_sets(OBJDIR, sets);
}

/* Files under OBJDIR/sub (recursively), not counting temporary ones. */
static int count_files(const char *sub)
{
	char cmd[512];
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find " OBJDIR "/%s -type f ! -name '.tmp-*' 2>/dev/null | wc -l", sub);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/* Pump until the tier has made `commits` commits (or 3 s pass). */
static void wait_commits(struct tbroker *b, uint64_t commits)
{
	struct tier_stats ts;

	for (int i = 0; i < 3000; i++) {
		tier_stats(b->tier, &ts);
		if (ts.commits >= commits)
			return;
		pump(-1, 1);
	}
}

static uint64_t commits(struct tbroker *b)
{
	struct tier_stats ts;

	tier_stats(b->tier, &ts);
	return ts.commits;
}

/*
 * Fetch v4 from offset until the high watermark; the values of the
 * one-record batches made by batch(), in order, into vals ("" when a
 * batch was not one).  Returns the number read, -1 on an error code.
 */
static int fetch_values(int fd, const char *t, int64_t offset, char (*vals)[16], int max)
{
	int n = 0;

	while (n < max) {
		struct arena a;
		struct fetch_req_fetch_partition fp;
		struct fetch_req_fetch_topic ft = { 0 };
		struct fetch_req rq;
		struct fetch_resp rs;

		arena_init(&a, 0);
		kc_defaults(&kc_fetch_req, &rq);
		kc_defaults(&kc_fetch_req_fetch_partition, &fp);
		fp.partition = 0;
		fp.fetch_offset = offset;
		fp.partition_max_bytes = 300;	/* a few batches per request */
		ft.topic = kc_str_of(t, (int32_t)strlen(t));
		ft.partitions = &fp;
		ft.partitions_n = 1;
		rq.max_wait_ms = 0;
		rq.topics = &ft;
		rq.topics_n = 1;
		if (roundtrip(fd, 1, 4, &rq, &rs, &a) != 0 || rs.responses_n != 1 ||
		    rs.responses[0].partitions_n != 1 || rs.responses[0].partitions[0].error_code) {
			arena_free(&a);
			return -1;
		}
		struct fetch_resp_partition_data *pd = &rs.responses[0].partitions[0];
		const uint8_t *p = pd->records.p;
		int32_t left = pd->records.len;
		int got = 0;
		while (left >= 61 && n < max) {
			int64_t base = (int64_t)sl_load_be64(p);
			int32_t blen = (int32_t)sl_load_be32(p + 8);
			if (blen + 12 > left)
				break;
			if (base + 1 > offset) {
				/* batch(): record at 61: len, attr, ts, off, key -1, vlen, value */
				int vl = p[66] / 2;
				snprintf(vals[n], 16, "%.*s", vl < 15 ? vl : 15, (const char *)p + 67);
				n++;
				offset = base + 1;
			}
			got++;
			p += blen + 12;
			left -= blen + 12;
		}
		int64_t hw = pd->high_watermark;
		arena_free(&a);
		if (offset >= hw)
			break;
		if (!got)
			return -1;
	}
	return n;
}

static int check_values(char (*vals)[16], int n, int from, int to)
{
	if (n != to - from)
		return 0;
	for (int i = 0; i < n; i++) {
		char want[16];
		snprintf(want, sizeof(want), "v%d", from + i);
		if (strcmp(vals[i], want) != 0)
			return 0;
	}
	return 1;
}

static struct stream *stream_of(struct tbroker *b, const char *name)
{
	struct topic *t = topic_find(b->k->reg, name, strlen(name));

	return t ? t->parts[0] : NULL;
}

static void test_upload_trim_read_restart(void)
{
	struct tbroker b;
	char vals[200][16];
	int64_t base;
	struct wal_stats ws;

	rm_rf(OBJDIR);
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(create_topic(b.fd, "t"), KERR_NONE);
	for (int i = 0; i < 100; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		T_EQ(produce(b.fd, "t", v, &base), KERR_NONE);
		T_EQ(base, i);
	}
	wait_commits(&b, commits(&b) + 2);
	struct stream *s = stream_of(&b, "t");
	T_EQ(stream_up(s), 100);
	T_EQ(stream_mem_start(s), 100);		/* tail 0: all evicted after commit */
	wal_stats(b.w, &ws);
	T_CHECK(ws.trim > 0);
	T_CHECK(count_files("data") >= 1);
	T_CHECK(count_files("manifest") >= 2);
	const struct mf_partition *mp = manifest_partition(tier_manifest(b.tier), s ? stream_id_of(s)->ns : NULL, 0);
	T_CHECK(mp != NULL);
	if (mp)
		T_EQ(mp->end, 100);

	/* Everything from offset 0 comes from the objects now. */
	T_CHECK(check_values(vals, fetch_values(b.fd, "t", 0, vals, 200), 0, 100));
	T_CHECK(check_values(vals, fetch_values(b.fd, "t", 57, vals, 200), 57, 100));

	/* A committed group offset goes into the manifest too. */
	struct arena a;
	struct offset_commit_req_offset_commit_request_partition cp;
	struct offset_commit_req_offset_commit_request_topic ct = { 0 };
	struct offset_commit_req crq;
	struct offset_commit_resp crs;
	arena_init(&a, 0);
	kc_defaults(&kc_offset_commit_req, &crq);
	kc_defaults(&kc_offset_commit_req_offset_commit_request_partition, &cp);
	crq.group_id = kc_str_of("g", 1);
	crq.member_id = kc_str_of("", 0);
	crq.group_instance_id = KC_NULL_STR;
	cp.partition_index = 0;
	cp.committed_offset = 42;
	cp.committed_metadata = kc_str_of("m", 1);
	ct.name = kc_str_of("t", 1);
	ct.partitions = &cp;
	ct.partitions_n = 1;
	crq.topics = &ct;
	crq.topics_n = 1;
	T_EQ(roundtrip(b.fd, 8, 8, &crq, &crs, &a), 0);
	arena_free(&a);
	wait_commits(&b, commits(&b) + 2);
	T_CHECK(manifest_offset(tier_manifest(b.tier), "g", "t", 0) != NULL);
	tb_stop(&b);

	/* Stateless restart: a blank WAL, the same store. */
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(high_watermark(b.fd, "t"), 100);
	T_CHECK(check_values(vals, fetch_values(b.fd, "t", 0, vals, 200), 0, 100));
	const struct mf_offset *mo = manifest_offset(tier_manifest(b.tier), "g", "t", 0);
	T_CHECK(mo && mo->offset == 42);
	const struct group *g = grp_find(b.k->gc, "g");
	T_CHECK(g != NULL);
	T_EQ(produce(b.fd, "t", "v100", &base), KERR_NONE);
	T_EQ(base, 100);
	wait_commits(&b, commits(&b) + 2);
	T_CHECK(check_values(vals, fetch_values(b.fd, "t", 0, vals, 200), 0, 101));
	tb_stop(&b);
}

/* ---- a crash between the object PUT and the manifest commit ---- */

static int fail_manifest;

static int failing_link(const char *from, const char *to)
{
	if (fail_manifest && strstr(to, "/manifest/")) {
		errno = EIO;
		return -1;
	}
	return link(from, to);
}

static void test_commit_failure_keeps_the_wal(void)
{
	struct tbroker b;
	char vals[200][16];
	int64_t base;
	struct tier_stats ts;

	rm_rf(OBJDIR);
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(create_topic(b.fd, "c"), KERR_NONE);
	for (int i = 0; i < 30; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		T_EQ(produce(b.fd, "c", v, &base), KERR_NONE);
	}
	wait_commits(&b, commits(&b) + 2);
	int data_before = count_files("data");

	objstore_file_sys.link = failing_link;
	fail_manifest = 1;
	for (int i = 30; i < 60; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		T_EQ(produce(b.fd, "c", v, &base), KERR_NONE);
	}
	for (int i = 0; i < 300; i++)
		pump(-1, 1);
	tier_stats(b.tier, &ts);
	T_CHECK(ts.commit_failures > 0);
	T_CHECK(count_files("data") > data_before);	/* the object is there, unnamed */
	struct stream *s = stream_of(&b, "c");
	T_EQ(stream_up(s), 30);
	T_EQ(stream_mem_start(s), 30);			/* not committed: still in memory */
	T_CHECK(check_values(vals, fetch_values(b.fd, "c", 0, vals, 200), 0, 60));
	tb_stop(&b);				/* as a crash: nothing more reaches the store */
	fail_manifest = 0;
	objstore_file_sys_reset();

	/* The old WAL replays the 30 records the manifest does not name, once. */
	T_EQ(tb_start(&b, WALP, 0, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(high_watermark(b.fd, "c"), 60);
	T_CHECK(check_values(vals, fetch_values(b.fd, "c", 0, vals, 200), 0, 60));
	wait_commits(&b, commits(&b) + 2);
	T_EQ(stream_up(stream_of(&b, "c")), 60);
	T_CHECK(check_values(vals, fetch_values(b.fd, "c", 0, vals, 200), 0, 60));

	/* The orphan goes once its grace has passed: objects on disk are those the manifest names. */
	for (int i = 0; i < 400 && count_files("data") != (int)tier_manifest(b.tier)->nobjects; i++)
		pump(-1, 1);
	T_EQ(count_files("data"), (int)tier_manifest(b.tier)->nobjects);
	tier_stats(b.tier, &ts);
	T_CHECK(ts.gc_deleted >= 1);
	tb_stop(&b);
}

/* ---- compaction ---- */

static const char *const *compact_sets(void)
{
	static const char *const compact[] = {
		"sluice.upload.interval.ms=20",
		"sluice.tail.bytes=0",
		"sluice.objects.gc.grace.ms=1",
		"sluice.objects.gc.interval.ms=30",
		"sluice.upload.bytes=100000",
		"sluice.compaction.interval.ms=30",
		NULL,
	};

	return tb_file_tier_sets(OBJDIR, compact);
}

static uint64_t compactions(struct tbroker *b)
{
	struct tier_stats ts;

	tier_stats(b->tier, &ts);
	return ts.compactions;
}

/* Ten records a cycle, eight cycles: eight small objects. */
static void produce_in_cycles(struct tbroker *b, const char *topic, int from)
{
	int64_t base;

	for (int c = 0; c < 8; c++) {
		uint64_t before = commits(b);
		for (int i = 0; i < 10; i++) {
			char v[16];
			snprintf(v, sizeof(v), "v%d", from + c * 10 + i);
			T_EQ(produce(b->fd, topic, v, &base), KERR_NONE);
		}
		wait_commits(b, before + 1);
	}
}

static void test_compaction(void)
{
	struct tbroker b;
	char vals[200][16];

	rm_rf(OBJDIR);
	T_EQ(tb_start(&b, WALP, 1, compact_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(create_topic(b.fd, "k"), KERR_NONE);
	produce_in_cycles(&b, "k", 0);
	for (int i = 0; i < 2000 && compactions(&b) == 0; i++)
		pump(-1, 1);
	T_CHECK(compactions(&b) >= 1);
	wait_commits(&b, commits(&b) + 2);
	const struct mf_partition *mp = manifest_partition(tier_manifest(b.tier),
							   stream_id_of(stream_of(&b, "k"))->ns, 0);
	T_CHECK(mp && mp->nranges < 8);
	T_CHECK(tier_manifest(b.tier)->nobjects < 8);
	T_CHECK(check_values(vals, fetch_values(b.fd, "k", 0, vals, 200), 0, 80));
	/* The merged inputs go after their grace; the bucket holds what the manifest names. */
	for (int i = 0; i < 1000 && count_files("data") != (int)tier_manifest(b.tier)->nobjects; i++)
		pump(-1, 1);
	T_EQ(count_files("data"), (int)tier_manifest(b.tier)->nobjects);
	tb_stop(&b);

	/* A blank WAL reads the merged objects. */
	T_EQ(tb_start(&b, WALP, 1, compact_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_CHECK(check_values(vals, fetch_values(b.fd, "k", 0, vals, 200), 0, 80));

	/* Stopped right after a merge, before the manifest swap is committed: the old objects serve. */
	uint64_t before = compactions(&b);
	produce_in_cycles(&b, "k", 80);
	for (int i = 0; i < 2000 && compactions(&b) == before; i++)
		pump(-1, 1);
	T_CHECK(compactions(&b) > before);
	tb_stop(&b);
	T_EQ(tb_start(&b, WALP, 0, compact_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(high_watermark(b.fd, "k"), 160);
	T_CHECK(check_values(vals, fetch_values(b.fd, "k", 0, vals, 200), 0, 160));
	tb_stop(&b);
}

/* DeleteRecords moves the log start; objects wholly below it leave the manifest and the bucket. */
static void test_delete_records_collects_objects(void)
{
	struct tbroker b;
	char vals[200][16];
	int64_t low;

	rm_rf(OBJDIR);
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(create_topic(b.fd, "r"), KERR_NONE);
	produce_in_cycles(&b, "r", 0);
	const struct manifest *m = tier_manifest(b.tier);
	size_t before = m->nobjects;
	T_CHECK(before >= 6);
	T_EQ(delete_records(b.fd, 2, "r", 0, 60, &low), KERR_NONE);
	T_EQ(low, 60);
	wait_commits(&b, commits(&b) + 2);
	const struct mf_partition *mp = manifest_partition(m, stream_id_of(stream_of(&b, "r"))->ns, 0);
	T_CHECK(mp && mp->log_start == 60);
	T_CHECK(m->nobjects < before);
	for (int i = 0; i < 1000 && count_files("data") != (int)m->nobjects; i++)
		pump(-1, 1);
	T_EQ(count_files("data"), (int)m->nobjects);
	T_EQ(fetch_values(b.fd, "r", 0, vals, 200), -1);	/* OFFSET_OUT_OF_RANGE */
	T_CHECK(check_values(vals, fetch_values(b.fd, "r", 60, vals, 200), 60, 80));
	tb_stop(&b);

	/* From the bucket alone, the start holds. */
	T_EQ(tb_start(&b, WALP, 1, tier_sets()), 0);
	if (b.fd < 0 || !b.tier) {
		tb_stop(&b);
		return;
	}
	T_EQ(fetch_values(b.fd, "r", 0, vals, 200), -1);
	T_CHECK(check_values(vals, fetch_values(b.fd, "r", 60, vals, 200), 60, 80));
	tb_stop(&b);
}

int main(void)
{
	log_set_level(getenv("T_LOG") ? LOG_INFO : LOG_WARN);
	L = loop_new();
	T_RUN(test_upload_trim_read_restart);
	T_RUN(test_commit_failure_keeps_the_wal);
	T_RUN(test_compaction);
	T_RUN(test_delete_records_collects_objects);
	loop_destroy(L);
	rm_rf(OBJDIR);
	unlink(WALP);
	return t_done();
}
