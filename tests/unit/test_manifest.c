/*
 * test_manifest.c - the manifest: its model, its bytes, its commit protocol
 * on a file object store in a temporary directory, and the collector.
 *
 * Covered: version key names; a state built by edits survives a checkpoint
 * (snapshot, apply, snapshot again: the same bytes) and a load from the
 * store; deltas applied over a checkpoint give the writer's own state at
 * every version, with checkpoints where the policy puts them; every edit
 * that is not valid is refused and changes nothing; objects retire when
 * their last range goes (retention, compaction, topic deletion); two writers
 * race for one version and exactly one wins, the other is fenced; a new
 * writer's claim fences the old one; a commit whose outcome was unknown is
 * sent again with the same bytes and is not taken for a fence; corrupt
 * versions are refused at every truncation and every flipped bit, and
 * stay safe when their CRC is made to match; versions that do not follow
 * are refused; the loader on an empty store, a damaged version and a
 * missing one; the collector's decisions on data objects and old versions.
 */
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/crc32c.h"
#include "../../kernel/log.h"
#include "../../storage/manifest.h"

static struct loop *L;
static struct objstore *OS;
static char dirpath[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	char url[300], errbuf[256];

	snprintf(dirpath, sizeof(dirpath), "/tmp/sluice-manifest-XXXXXX");
	T_CHECK(mkdtemp(dirpath) != NULL);
	L = loop_new();
	snprintf(url, sizeof(url), "file://%s", dirpath);
	T_EQ(objstore_open(L, url, NULL, &OS, errbuf, sizeof(errbuf)), 0);
}

static void teardown(void)
{
	objstore_file_sys_reset();
	objstore_free(OS);
	OS = NULL;
	loop_destroy(L);
	L = NULL;
	nftw(dirpath, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- running the protocol to completion ---- */

struct done {
	int n, err;
	uint64_t version;
	struct manifest *m;
};

static void on_commit(void *arg, int err, uint64_t v)
{
	struct done *d = arg;

	d->n++;
	d->err = err;
	d->version = v;
	loop_stop(L);
}

static void on_load(void *arg, int err, struct manifest *m)
{
	struct done *d = arg;

	d->n++;
	d->err = err;
	d->m = m;
	loop_stop(L);
}

/* Commit and wait; returns the callback's error (or the start's). */
static int commit(struct manifest *m, int64_t now, uint64_t *version)
{
	struct done d = { 0 };
	int err = manifest_commit(m, OS, now, on_commit, &d);

	if (err)
		return err;
	T_EQ(loop_run(L), 0);
	T_EQ(d.n, 1);
	if (version)
		*version = d.version;
	return d.err;
}

static struct manifest *load(int *errp)
{
	struct done d = { 0 };
	int err = manifest_load(OS, on_load, &d, NULL);

	if (err) {
		*errp = err;
		return NULL;
	}
	T_EQ(loop_run(L), 0);
	T_EQ(d.n, 1);
	*errp = d.err;
	return d.m;
}

/* ---- building states ---- */

static void tid(uint8_t id[16], int n)
{
	memset(id, 0, 16);
	id[0] = 0xab;
	id[15] = (uint8_t)n;
}

/* A fresh writer on an empty store: cluster "c1", node 3. */
static struct manifest *fresh_writer(const struct manifest_policy *pol)
{
	struct manifest *m = manifest_new();

	T_CHECK(m != NULL);
	T_EQ(manifest_set_cluster(m, "c1"), 0);
	T_EQ(manifest_writer_start(m, 3, pol), 0);
	return m;
}

/* Upload-and-append: a new object holding [first, last] of topic n, partition p. */
static uint64_t add_range(struct manifest *m, int n, int32_t p, int64_t first, int64_t last,
			  int64_t now)
{
	char key[64];
	uint8_t id[16];
	struct mf_range r;
	uint64_t oid = 0;

	snprintf(key, sizeof(key), "data/%d-%d-%lld", n, p, (long long)first);
	tid(id, n);
	T_EQ(manifest_object_add(m, key, 1000, now, &oid), 0);
	memset(&r, 0, sizeof(r));
	r.object = oid;
	r.first = first;
	r.last = last;
	r.max_ts = now;
	r.pos = 64;
	r.len = 900;
	T_EQ(manifest_range_append(m, id, p, &r, now), 0);
	return oid;
}

/* A state with some of everything in it. */
static void populate(struct manifest *m)
{
	static const struct mf_config cf[] = { { "retention.ms", "86400000" },
					       { "cleanup.policy", "delete" },
					       { "message.timestamp.type", NULL } };
	struct mf_offset o;
	uint8_t id[16];

	tid(id, 1);
	T_EQ(manifest_topic_put(m, id, "orders", 3, cf, 3), 0);
	tid(id, 2);
	T_EQ(manifest_topic_put(m, id, "logs", 1, NULL, 0), 0);
	add_range(m, 1, 0, 0, 9, 1000);
	add_range(m, 1, 0, 10, 24, 1001);
	add_range(m, 1, 2, 0, 4, 1002);
	add_range(m, 2, 0, 0, 99, 1003);
	memset(&o, 0, sizeof(o));
	o.group = "g1";
	o.topic = "orders";
	o.partition = 0;
	o.offset = 12;
	o.leader_epoch = 0;
	o.metadata = "meta";
	o.commit_ms = 5000;
	o.expire_ms = -1;
	T_EQ(manifest_offset_commit(m, &o), 0);
	o.partition = 2;
	o.offset = 5;
	o.metadata = NULL;
	o.leader_epoch = -1;
	T_EQ(manifest_offset_commit(m, &o), 0);
	o.group = "";
	o.topic = "logs";
	o.partition = 0;
	o.offset = 50;
	T_EQ(manifest_offset_commit(m, &o), 0);
	T_EQ(manifest_producers_set(m, 1, "\x01\x02\x03", 3), 0);
	/* Partition state: on a partition with ranges, and on a pristine one. */
	tid(id, 1);
	T_EQ(manifest_partition_state(m, id, 0, "p0-state", 8), 0);
	T_EQ(manifest_partition_state(m, id, 1, "p1", 2), 0);
}

static uint8_t *snap(const struct manifest *m, size_t *len)
{
	uint8_t *p = NULL;

	T_EQ(manifest_snapshot(m, &p, len), 0);
	return p;
}

/* 1 if a and b hold the same state (and version header). */
static int same_state(const struct manifest *a, const struct manifest *b)
{
	size_t la = 0, lb = 0;
	uint8_t *pa = snap(a, &la), *pb = snap(b, &lb);
	int same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;

	free(pa);
	free(pb);
	return same;
}

/* The bytes of version v in the store (malloc()ed), or NULL. */
static uint8_t *read_version(uint64_t v, size_t *len)
{
	char key[MANIFEST_KEY_LEN + 1], path[400];
	uint8_t *buf;
	FILE *f;
	long n;

	manifest_key(v, key);
	snprintf(path, sizeof(path), "%s/%s", dirpath, key);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

/* ---- tests ---- */

static void test_keys(void)
{
	char k[MANIFEST_KEY_LEN + 1];

	manifest_key(1, k);
	T_STR_EQ(k, "manifest/00000000000000000001");
	manifest_key(UINT64_MAX, k);
	T_STR_EQ(k, "manifest/18446744073709551615");
	T_EQ(manifest_key_version(k) == UINT64_MAX, 1);
	T_EQ(manifest_key_version("manifest/00000000000000000042"), 42);
	T_EQ(manifest_key_version("manifest/0000000000000000042"), 0);	/* 19 digits */
	T_EQ(manifest_key_version("manifest/000000000000000000420"), 0);
	T_EQ(manifest_key_version("manifest/0000000000000000004x"), 0);
	T_EQ(manifest_key_version("manifest/99999999999999999999"), 0);	/* > 2^64-1 */
	T_EQ(manifest_key_version("manifesto/0000000000000000001"), 0);
	T_EQ(manifest_key_version("manifest/00000000000000000000"), 0);
}

static void test_checkpoint_roundtrip(void)
{
	struct manifest *m, *back;
	const struct mf_topic *t;
	const struct mf_partition *p;
	const struct mf_offset *o;
	const struct mf_range *r;
	uint8_t id[16], *bytes, *again;
	size_t len, len2;
	uint64_t v;
	int err;

	setup();
	m = fresh_writer(NULL);
	populate(m);
	T_EQ(manifest_check(m), 0);
	T_EQ(manifest_pending(m) > 0, 1);
	T_EQ(commit(m, 7000, &v), 0);
	T_EQ(v, 1);
	T_EQ(m->version, 1);
	T_EQ(m->checkpoint, 1);
	T_EQ(m->epoch, 1);
	T_EQ(manifest_pending(m), 0);

	/* snapshot -> apply -> snapshot: the same bytes */
	bytes = snap(m, &len);
	back = manifest_new();
	T_EQ(manifest_apply(back, bytes, len), 0);
	T_EQ(manifest_check(back), 0);
	T_EQ(manifest_snapshot(back, &again, &len2), 0);
	T_EQ(len2, len);
	T_CHECK(len == len2 && memcmp(bytes, again, len) == 0);
	free(again);
	manifest_free(back);
	free(bytes);

	/* and from the store */
	back = load(&err);
	T_EQ(err, 0);
	T_CHECK(back != NULL);
	if (back) {
		T_CHECK(same_state(m, back));
		T_STR_EQ(back->cluster, "c1");
		T_EQ(back->version, 1);
		T_EQ(back->node, 3);
		T_EQ(back->time_ms, 7000);
		tid(id, 1);
		t = manifest_topic(back, id);
		T_CHECK(t && strcmp(t->name, "orders") == 0);
		T_CHECK(manifest_topic_by_name(back, "orders") == t);
		T_CHECK(manifest_topic_by_name(back, "nope") == NULL);
		if (t) {
			T_EQ(t->npartitions, 3);
			T_EQ(t->nconfigs, 3);
			T_STR_EQ(t->configs[0].key, "retention.ms");
			T_STR_EQ(t->configs[0].value, "86400000");
			T_CHECK(t->configs[2].value == NULL);
		}
		p = manifest_partition(back, id, 0);
		T_CHECK(p && p->nranges == 2 && p->end == 25 && p->log_start == 0);
		r = manifest_range_find(p, 17);
		T_CHECK(r && r->first == 10 && r->last == 24 && r->pos == 64 && r->len == 900);
		T_CHECK(r && manifest_object(back, r->object) &&
			strcmp(manifest_object(back, r->object)->key, "data/1-0-10") == 0);
		T_CHECK(manifest_range_find(p, 25) == NULL);
		T_CHECK(manifest_range_find(p, -1) == NULL);
		p = manifest_partition(back, id, 1);
		T_CHECK(p && p->nranges == 0 && p->end == 0);
		T_CHECK(manifest_partition(back, id, 3) == NULL);
		o = manifest_offset(back, "g1", "orders", 0);
		T_CHECK(o && o->offset == 12 && strcmp(o->metadata, "meta") == 0);
		o = manifest_offset(back, "g1", "orders", 2);
		T_CHECK(o && o->offset == 5 && o->metadata == NULL && o->leader_epoch == -1);
		o = manifest_offset(back, "", "logs", 0);
		T_CHECK(o && o->offset == 50);
		T_EQ(back->producers_version, 1);
		T_EQ(back->producers_len, 3);
		p = manifest_partition(back, id, 0);
		T_CHECK(p && p->state_len == 8 && memcmp(p->state, "p0-state", 8) == 0);
		p = manifest_partition(back, id, 1);
		T_CHECK(p && p->state_len == 2 && memcmp(p->state, "p1", 2) == 0);
		p = manifest_partition(back, id, 2);
		T_CHECK(p && p->state_len == 0 && p->state == NULL);
		T_EQ(back->nobjects, 4);
		T_EQ(back->next_object_id, 4);
		T_EQ(manifest_key_state(back, "data/1-0-0"), 1);
		T_EQ(manifest_key_state(back, "data/none"), 0);
		manifest_free(back);
	}
	manifest_free(m);
	teardown();
}

/* Partition state bytes: set, unchanged, cleared, refused, dropped with the topic, through deltas. */
static void test_partition_state(void)
{
	struct manifest *m, *back;
	const struct mf_partition *p;
	uint8_t id[16], other[16];
	uint64_t v;
	int err;

	setup();
	m = fresh_writer(NULL);
	tid(id, 1);
	tid(other, 9);
	T_EQ(manifest_topic_put(m, id, "t", 2, NULL, 0), 0);
	add_range(m, 1, 0, 0, 9, 1000);
	T_EQ(commit(m, 1000, &v), 0);
	T_EQ(manifest_pending(m), 0);
	T_EQ(manifest_partition_state(m, id, 0, "abc", 3), 0);
	T_EQ(manifest_pending(m), 1);
	/* The same bytes again: nothing more to write. */
	T_EQ(manifest_partition_state(m, id, 0, "abc", 3), 0);
	T_EQ(manifest_pending(m), 1);
	T_EQ(manifest_partition_state(m, id, 1, NULL, 0), 0);
	T_EQ(manifest_pending(m), 1);
	T_EQ(manifest_partition_state(m, id, 2, "x", 1), SL_E_NOTFOUND);
	T_EQ(manifest_partition_state(m, other, 0, "x", 1), SL_E_NOTFOUND);
	T_EQ(manifest_partition_state(m, id, 0, NULL, 4), SL_E_INVALID);
	T_EQ(manifest_partition_state(m, id, 0, "x", (size_t)MF_STATE_MAX + 1), SL_E_TOOBIG);
	T_EQ(manifest_pending(m), 1);
	T_EQ(commit(m, 2000, &v), 0);
	back = load(&err);
	T_EQ(err, 0);
	p = back ? manifest_partition(back, id, 0) : NULL;
	T_CHECK(p && p->state_len == 3 && memcmp(p->state, "abc", 3) == 0);
	T_CHECK(back && same_state(m, back));
	manifest_free(back);
	/* Replaced, then cleared, in deltas. */
	T_EQ(manifest_partition_state(m, id, 0, "defg", 4), 0);
	T_EQ(commit(m, 3000, &v), 0);
	T_EQ(manifest_partition_state(m, id, 0, NULL, 0), 0);
	T_EQ(manifest_pending(m), 1);
	T_EQ(commit(m, 4000, &v), 0);
	back = load(&err);
	p = back ? manifest_partition(back, id, 0) : NULL;
	T_CHECK(p && p->state_len == 0 && p->state == NULL);
	manifest_free(back);
	/* A deleted topic takes its states with it; re-created, it has none. */
	T_EQ(manifest_partition_state(m, id, 1, "zz", 2), 0);
	T_EQ(manifest_topic_delete(m, id, 5000), 0);
	T_EQ(manifest_topic_put(m, id, "t", 2, NULL, 0), 0);
	p = manifest_partition(m, id, 1);
	T_CHECK(p && p->state_len == 0);
	T_EQ(commit(m, 6000, &v), 0);
	back = load(&err);
	T_CHECK(back && same_state(m, back));
	manifest_free(back);
	T_EQ(manifest_check(m), 0);
	manifest_free(m);
	teardown();
}

static void test_deltas_over_checkpoint(void)
{
	struct manifest_policy pol = { 4, 0 };
	struct manifest *m, *back;
	struct mf_offset o;
	int64_t now = 10000;
	uint64_t v, k;
	uint8_t id[16];
	int err, i;

	setup();
	m = fresh_writer(&pol);
	populate(m);
	T_EQ(commit(m, now, &v), 0);
	tid(id, 1);
	memset(&o, 0, sizeof(o));
	o.group = "g2";
	o.topic = "orders";
	o.expire_ms = -1;
	for (i = 0; i < 9; i++) {
		now += 1000;
		add_range(m, 1, 1, i * 10, i * 10 + 9, now);
		o.offset = i;
		o.commit_ms = now;
		T_EQ(manifest_offset_commit(m, &o), 0);
		if (i == 3)
			T_EQ(manifest_log_start(m, id, 0, 12, now), 0);	/* retires data/1-0-0 */
		T_EQ(commit(m, now, &v), 0);
		T_EQ(v, (uint64_t)i + 2);
		/* The loaded state is the writer's at every version. */
		back = load(&err);
		T_EQ(err, 0);
		T_CHECK(back && same_state(m, back));
		T_EQ(back ? manifest_check(back) : -1, 0);
		manifest_free(back);
	}
	/* Versions 1, 5, 9 are checkpoints (every 4 versions), the rest deltas naming them. */
	for (k = 1; k <= 10; k++) {
		struct manifest_header h;
		size_t len = 0;
		uint8_t *b = read_version(k, &len);

		T_CHECK(b != NULL);
		T_EQ(b ? manifest_peek(b, len, &h) : -1, 0);
		T_EQ(h.version, k);
		T_EQ(h.kind, k == 1 || k == 5 || k == 9 ? MANIFEST_CHECKPOINT : MANIFEST_DELTA);
		T_EQ(h.checkpoint, k < 5 ? 1 : k < 9 ? 5 : 9);
		T_EQ(h.epoch, 1);
		free(b);
	}
	T_EQ(manifest_key_state(m, "data/1-0-0"), 2);
	T_EQ(m->nretired, 1);
	T_EQ(m->retired[0].retired_ms, 14000);
	manifest_free(m);
	teardown();
}

/* An edit that is refused leaves the state exactly as it was. */
static void test_edits_refused(void)
{
	struct manifest *m;
	struct mf_range r;
	uint8_t id[16], other[16], *before, *after;
	size_t lb, la;
	uint64_t oid;
	struct mf_config dup[2] = { { "a", "1" }, { "a", "2" } };
	char longname[300];

	setup();
	m = fresh_writer(NULL);
	populate(m);
	T_EQ(commit(m, 1, NULL), 0);
	before = snap(m, &lb);
	tid(id, 1);
	tid(other, 9);
	memset(&r, 0, sizeof(r));
	r.object = 0;
	r.max_ts = -1;
	/* ranges: not at the end, unknown object, unknown topic and partition, bad bounds */
	r.first = 24;
	r.last = 30;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_INVALID);
	r.first = 26;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_INVALID);
	r.first = 25;
	r.object = 99;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_NOTFOUND);
	r.object = 0;
	T_EQ(manifest_range_append(m, other, 0, &r, 1), SL_E_NOTFOUND);
	T_EQ(manifest_range_append(m, id, 3, &r, 1), SL_E_NOTFOUND);
	T_EQ(manifest_range_append(m, id, -1, &r, 1), SL_E_NOTFOUND);
	r.last = 24;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_INVALID);
	r.last = INT64_MAX;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_INVALID);
	r.last = 30;
	r.max_ts = -2;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_INVALID);
	r.max_ts = -1;
	r.pos = UINT64_MAX;
	r.len = 2;
	T_EQ(manifest_range_append(m, id, 0, &r, 1), SL_E_INVALID);
	r.pos = r.len = 0;
	/* replace: must cover whole ranges exactly */
	r.first = 0;
	r.last = 12;
	T_EQ(manifest_range_replace(m, id, 0, &r, 1), SL_E_INVALID);
	r.first = 1;
	r.last = 24;
	T_EQ(manifest_range_replace(m, id, 0, &r, 1), SL_E_INVALID);
	r.first = 0;
	r.last = 25;
	T_EQ(manifest_range_replace(m, id, 0, &r, 1), SL_E_INVALID);
	/* log start never goes back */
	T_EQ(manifest_log_start(m, id, 0, 5, 1), 0);
	free(before);
	T_EQ(commit(m, 2, NULL), 0);
	before = snap(m, &lb);
	T_EQ(manifest_log_start(m, id, 0, 4, 1), SL_E_INVALID);
	/* topics: rename, shrink, name taken, bad counts, a config key twice, long names */
	T_EQ(manifest_topic_put(m, id, "renamed", 3, NULL, 0), SL_E_INVALID);
	T_EQ(manifest_topic_put(m, id, "orders", 2, NULL, 0), SL_E_INVALID);
	T_EQ(manifest_topic_put(m, other, "orders", 1, NULL, 0), SL_E_EXISTS);
	T_EQ(manifest_topic_put(m, other, "new", 0, NULL, 0), SL_E_INVALID);
	T_EQ(manifest_topic_put(m, other, "new", MF_PARTITIONS_MAX, NULL, 0), SL_E_TOOBIG);
	T_EQ(manifest_topic_put(m, other, "new", 1, dup, 2), SL_E_INVALID);
	T_EQ(manifest_topic_put(m, other, "", 1, NULL, 0), SL_E_INVALID);
	memset(longname, 'n', sizeof(longname));
	longname[MF_TOPIC_MAX + 1] = '\0';
	T_EQ(manifest_topic_put(m, other, longname, 1, NULL, 0), SL_E_INVALID);
	T_EQ(manifest_topic_delete(m, other, 1), SL_E_NOTFOUND);
	/* objects: a key used before (referenced or retired) never comes back */
	T_EQ(manifest_object_add(m, "data/1-0-10", 1, 1, &oid), SL_E_EXISTS);
	T_EQ(manifest_object_add(m, "data/1-0-0", 1, 1, &oid), SL_E_EXISTS);
	T_EQ(manifest_object_add(m, "../x", 1, 1, &oid), SL_E_INVALID);
	T_EQ(manifest_forget(m, "data/1-0-10"), SL_E_NOTFOUND);
	T_EQ(manifest_forget(m, "data/none"), SL_E_NOTFOUND);
	T_EQ(manifest_set_cluster(m, "other"), SL_E_INVALID);
	T_EQ(manifest_set_cluster(m, "c1"), 0);
	T_EQ(manifest_producers_set(m, 1, NULL, 5), SL_E_INVALID);
	T_EQ(manifest_pending(m), 0);
	T_EQ(manifest_check(m), 0);
	after = snap(m, &la);
	T_EQ(la, lb);
	T_CHECK(la == lb && memcmp(before, after, la) == 0);
	free(before);
	free(after);
	manifest_free(m);
	teardown();
}

static void test_retire(void)
{
	struct manifest *m, *back;
	struct mf_range r;
	uint8_t id[16];
	uint64_t a, b, c, big;
	int err;

	setup();
	m = fresh_writer(NULL);
	populate(m);
	T_EQ(commit(m, 100, NULL), 0);
	tid(id, 1);
	/* partition 0 holds [0,9] in data/1-0-0 and [10,24] in data/1-0-10 */
	a = manifest_partition(m, id, 0)->ranges[0].object;
	b = manifest_partition(m, id, 0)->ranges[1].object;
	/* compaction: one object replaces both */
	T_EQ(manifest_object_add(m, "data/compacted-1", 5000, 200, &big), 0);
	memset(&r, 0, sizeof(r));
	r.object = big;
	r.first = 0;
	r.last = 24;
	r.max_ts = 1001;
	T_EQ(manifest_range_replace(m, id, 0, &r, 200), 0);
	T_CHECK(manifest_object(m, a) == NULL);
	T_CHECK(manifest_object(m, b) == NULL);
	T_EQ(manifest_key_state(m, "data/1-0-0"), 2);
	T_EQ(manifest_key_state(m, "data/1-0-10"), 2);
	T_EQ(manifest_partition(m, id, 0)->nranges, 1);
	T_EQ(manifest_check(m), 0);
	/* retention: the log start passes the end of every range */
	c = add_range(m, 1, 0, 25, 30, 300);
	T_EQ(manifest_log_start(m, id, 0, 26, 300), 0);
	T_EQ(manifest_key_state(m, "data/compacted-1"), 2);
	T_EQ(manifest_partition(m, id, 0)->nranges, 1);
	T_EQ(manifest_log_start(m, id, 0, 40, 300), 0);	/* past the end */
	T_EQ(manifest_partition(m, id, 0)->nranges, 0);
	T_EQ(manifest_object(m, c) == NULL, 1);
	/* a range that lands wholly below the log start retires at once */
	add_range(m, 1, 0, 31, 35, 310);
	T_EQ(manifest_key_state(m, "data/1-0-31"), 2);
	T_EQ(manifest_partition(m, id, 0)->end, 36);
	T_EQ(manifest_check(m), 0);
	/* topic deletion retires its objects */
	T_EQ(manifest_topic_delete(m, id, 400), 0);
	T_EQ(manifest_key_state(m, "data/1-2-0"), 2);
	T_CHECK(manifest_topic_by_name(m, "orders") == NULL);
	/* an object added but never referenced retires at the commit */
	T_EQ(manifest_object_add(m, "data/orphan", 1, 500, &a), 0);
	T_EQ(manifest_check(m), SL_E_CORRUPT);	/* refs 0 until the commit */
	T_EQ(commit(m, 600, NULL), 0);
	T_EQ(manifest_key_state(m, "data/orphan"), 2);
	T_EQ(manifest_check(m), 0);
	/* the name is free again for a new topic */
	T_EQ(manifest_topic_put(m, id, "orders", 1, NULL, 0), 0);
	T_EQ(commit(m, 700, NULL), 0);
	back = load(&err);
	T_EQ(err, 0);
	T_CHECK(back && same_state(m, back));
	manifest_free(back);
	/* forgetting a retired key */
	T_EQ(manifest_forget(m, "data/orphan"), 0);
	T_EQ(manifest_key_state(m, "data/orphan"), 0);
	T_EQ(commit(m, 800, NULL), 0);
	back = load(&err);
	T_CHECK(back && same_state(m, back));
	manifest_free(back);
	manifest_free(m);
	teardown();
}

/* Two writers load the same version and race for the next: one is fenced. */
static void test_two_writers(void)
{
	struct manifest *a, *b, *back;
	uint8_t id[16];
	uint64_t va = 0, vb = 0;
	int err;

	setup();
	a = fresh_writer(NULL);
	populate(a);
	T_EQ(commit(a, 10, NULL), 0);
	manifest_free(a);

	a = load(&err);
	b = load(&err);
	T_CHECK(a && b);
	T_EQ(manifest_writer_start(a, 1, NULL), 0);
	T_EQ(manifest_writer_start(b, 2, NULL), 0);
	tid(id, 5);
	T_EQ(manifest_topic_put(a, id, "from-a", 1, NULL, 0), 0);
	T_EQ(manifest_topic_put(b, id, "from-b", 1, NULL, 0), 0);
	T_EQ(commit(a, 20, &va), 0);
	T_EQ(va, 2);
	T_EQ(commit(b, 21, &vb), SL_E_EXISTS);
	T_EQ(vb, 2);
	/* The fenced writer refuses to go on. */
	T_EQ(manifest_topic_delete(b, id, 22), SL_E_EXISTS);
	T_EQ(manifest_commit(b, OS, 23, on_commit, NULL), SL_E_EXISTS);
	manifest_free(b);
	back = load(&err);
	T_CHECK(back && manifest_topic_by_name(back, "from-a") != NULL);
	T_CHECK(back && manifest_topic_by_name(back, "from-b") == NULL);
	T_EQ(back ? back->node : -1, 1);
	T_EQ(back ? back->epoch : 0, 2);

	/* A new writer claims with a higher epoch: the old one is fenced at its next commit. */
	T_EQ(manifest_writer_start(back, 7, NULL), 0);
	T_EQ(commit(back, 30, &vb), 0);
	T_EQ(vb, 3);
	T_EQ(back->epoch, 3);
	T_EQ(manifest_offset_delete(a, "g1", "orders", -1), 0);
	T_EQ(commit(a, 31, &va), SL_E_EXISTS);
	T_EQ(va, 3);
	manifest_free(a);
	a = load(&err);
	T_CHECK(a && same_state(a, back));
	T_CHECK(a && manifest_offset(a, "g1", "orders", 0) != NULL);
	manifest_free(a);
	manifest_free(back);
	teardown();
}

static int fail_dirsync;
static int t_fsync(int fd)
{
	struct stat st;

	if (fail_dirsync && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		fail_dirsync--;
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

/*
 * A commit that failed after the version was in place (the directory fsync)
 * is sent again with the same bytes, and counts as committed, not fenced;
 * edits made meanwhile wait for the next version.
 */
static void test_commit_retry(void)
{
	struct manifest *m, *back;
	uint8_t id[16], *first = NULL, *second = NULL;
	size_t l1 = 0, l2 = 0;
	uint64_t v = 0;
	int err;

	setup();
	m = fresh_writer(NULL);
	populate(m);
	T_EQ(commit(m, 10, NULL), 0);
	tid(id, 7);
	T_EQ(manifest_topic_put(m, id, "t7", 1, NULL, 0), 0);
	objstore_file_sys.fsync = t_fsync;
	fail_dirsync = 1;
	T_EQ(commit(m, 20, &v), -EIO);
	T_EQ(v, 2);
	T_EQ(m->version, 1);
	T_EQ(manifest_pending(m), 1);
	first = read_version(2, &l1);
	T_CHECK(first != NULL);		/* it is there: only the fsync failed */
	add_range(m, 7, 0, 0, 5, 25);	/* goes into version 3 */
	T_EQ(manifest_pending(m), 3);
	T_EQ(commit(m, 30, &v), 0);
	T_EQ(v, 2);
	T_EQ(m->version, 2);
	second = read_version(2, &l2);
	T_CHECK(first && second && l1 == l2 && memcmp(first, second, l1) == 0);
	T_EQ(manifest_pending(m), 2);
	T_EQ(commit(m, 40, &v), 0);
	T_EQ(v, 3);
	T_EQ(manifest_pending(m), 0);
	objstore_file_sys_reset();
	back = load(&err);
	T_CHECK(back && same_state(back, m));
	manifest_free(back);
	/* A commit while one is under way is refused. */
	{
		struct done d = { 0 };

		T_EQ(manifest_commit(m, OS, 50, on_commit, &d), 0);
		T_EQ(manifest_commit(m, OS, 51, on_commit, &d), SL_E_FULL);
		T_EQ(loop_run(L), 0);
		T_EQ(d.err, 0);
	}
	/* Freeing the manifest cancels a commit under way: no callback. */
	{
		struct done d = { 0 };

		T_EQ(manifest_commit(m, OS, 60, on_commit, &d), 0);
		manifest_free(m);
		T_EQ(d.n, 0);
	}
	free(first);
	free(second);
	teardown();
}

/* A checkpoint with some of everything, and the delta after it. */
static void make_versions(uint8_t **cp, size_t *cplen, uint8_t **dl, size_t *dllen)
{
	struct manifest *m;
	uint8_t id[16];
	struct mf_range r;
	uint64_t big;

	setup();
	m = fresh_writer(NULL);
	populate(m);
	T_EQ(commit(m, 10, NULL), 0);
	/* a delta with every kind of operation */
	tid(id, 1);
	add_range(m, 1, 1, 0, 3, 20);
	T_EQ(manifest_object_add(m, "data/c", 10, 20, &big), 0);
	memset(&r, 0, sizeof(r));
	r.object = big;
	r.first = 0;
	r.last = 24;
	r.max_ts = -1;
	T_EQ(manifest_range_replace(m, id, 0, &r, 20), 0);
	T_EQ(manifest_log_start(m, id, 2, 3, 20), 0);
	T_EQ(manifest_offset_delete(m, "g1", "orders", 2), 0);
	T_EQ(manifest_group_delete(m, ""), 0);
	T_EQ(manifest_producers_set(m, 2, "xyz", 3), 0);
	tid(id, 2);
	T_EQ(manifest_topic_delete(m, id, 20), 0);
	T_EQ(manifest_forget(m, "data/2-0-0"), 0);
	T_EQ(commit(m, 30, NULL), 0);
	*cp = read_version(1, cplen);
	*dl = read_version(2, dllen);
	T_CHECK(*cp && *dl);
	manifest_free(m);
	teardown();
}

static void test_corrupt(void)
{
	uint8_t *cp, *dl, *buf;
	size_t cplen, dllen, i;
	struct manifest *m;
	int bit, accepted = 0;

	make_versions(&cp, &cplen, &dl, &dllen);
	/* Both apply in order. */
	m = manifest_new();
	T_EQ(manifest_apply(m, cp, cplen), 0);
	T_EQ(manifest_apply(m, dl, dllen), 0);
	T_EQ(manifest_check(m), 0);
	T_EQ(m->version, 2);
	manifest_free(m);

	/* Every truncation is refused. */
	for (i = 0; i < cplen; i++) {
		m = manifest_new();
		T_EQ(manifest_apply(m, cp, i), SL_E_CORRUPT);
		manifest_free(m);
	}
	for (i = 0; i < dllen; i++) {
		m = manifest_new();
		T_EQ(manifest_apply(m, cp, cplen), 0);
		T_EQ(manifest_apply(m, dl, i), SL_E_CORRUPT);
		manifest_free(m);
	}
	/* Every flipped bit is refused (the CRC). */
	buf = malloc(cplen > dllen ? cplen : dllen);
	for (i = 0; i < cplen; i++) {
		for (bit = 0; bit < 8; bit += 3) {
			memcpy(buf, cp, cplen);
			buf[i] ^= (uint8_t)(1u << bit);
			m = manifest_new();
			T_EQ(manifest_apply(m, buf, cplen), SL_E_CORRUPT);
			manifest_free(m);
		}
	}
	for (i = 0; i < dllen; i++) {
		memcpy(buf, dl, dllen);
		buf[i] ^= 0x10;
		m = manifest_new();
		T_EQ(manifest_apply(m, cp, cplen), 0);
		T_EQ(manifest_apply(m, buf, dllen), SL_E_CORRUPT);
		manifest_free(m);
	}
	/*
	 * The same with the CRC made to match: the decoder itself must refuse,
	 * or accept a state that keeps every invariant (a changed timestamp or
	 * a letter of a name is still a valid manifest).
	 */
	for (i = 0; i + 4 < dllen; i++) {
		memcpy(buf, dl, dllen);
		buf[i] ^= 0x41;
		sl_store_be32(buf + dllen - 4, crc32c(0, buf, dllen - 4));
		m = manifest_new();
		T_EQ(manifest_apply(m, cp, cplen), 0);
		if (manifest_apply(m, buf, dllen) == 0) {
			accepted++;
			T_EQ(manifest_check(m), 0);
		}
		manifest_free(m);
	}
	T_CHECK(accepted > 0 && (size_t)accepted < dllen / 2);
	accepted = 0;
	for (i = 0; i + 4 < cplen; i++) {
		memcpy(buf, cp, cplen);
		buf[i] ^= 0x41;
		sl_store_be32(buf + cplen - 4, crc32c(0, buf, cplen - 4));
		m = manifest_new();
		if (manifest_apply(m, buf, cplen) == 0) {
			uint8_t *s = NULL, *s2 = NULL;
			size_t sl = 0, sl2 = 0;
			struct manifest *m2 = manifest_new();

			accepted++;
			T_EQ(manifest_check(m), 0);
			/* and it survives its own round trip */
			T_EQ(manifest_snapshot(m, &s, &sl), 0);
			T_EQ(manifest_apply(m2, s, sl), 0);
			T_EQ(manifest_snapshot(m2, &s2, &sl2), 0);
			T_CHECK(sl == sl2 && memcmp(s, s2, sl) == 0);
			free(s);
			free(s2);
			manifest_free(m2);
		}
		manifest_free(m);
	}
	T_CHECK(accepted > 0);
	/* Trailing bytes after the CRC, or the length off by one: refused. */
	{
		uint8_t *longer = malloc(cplen + 1);

		memcpy(longer, cp, cplen);
		longer[cplen] = 0;
		m = manifest_new();
		T_EQ(manifest_apply(m, longer, cplen + 1), SL_E_CORRUPT);
		manifest_free(m);
		free(longer);
	}
	free(buf);
	free(cp);
	free(dl);
}

/* Versions that do not follow each other are refused. */
static void test_chain(void)
{
	uint8_t *cp, *dl, *buf;
	size_t cplen, dllen;
	struct manifest *m;

	make_versions(&cp, &cplen, &dl, &dllen);
	/* a delta without its checkpoint */
	m = manifest_new();
	T_EQ(manifest_apply(m, dl, dllen), SL_E_CORRUPT);
	manifest_free(m);
	/* a checkpoint over a state */
	m = manifest_new();
	T_EQ(manifest_apply(m, cp, cplen), 0);
	T_EQ(manifest_apply(m, cp, cplen), SL_E_CORRUPT);
	/* the same delta twice */
	T_EQ(manifest_apply(m, dl, dllen), 0);
	T_EQ(manifest_apply(m, dl, dllen), SL_E_CORRUPT);
	manifest_free(m);
	buf = malloc(dllen);
	/* the delta with another prev CRC, version, checkpoint or a lower epoch */
	{
		static const struct { size_t off; unsigned size; uint64_t val; } bad[] = {
			{ 48, 4, 0x12345678 },	/* prev_crc */
			{ 16, 8, 3 },		/* version */
			{ 24, 8, 2 },		/* checkpoint: itself, for a delta */
			{ 32, 8, 0 },		/* epoch 0 */
		};
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			memcpy(buf, dl, dllen);
			if (bad[k].size == 4)
				sl_store_be32(buf + bad[k].off, (uint32_t)bad[k].val);
			else
				sl_store_be64(buf + bad[k].off, bad[k].val);
			sl_store_be32(buf + dllen - 4, crc32c(0, buf, dllen - 4));
			m = manifest_new();
			T_EQ(manifest_apply(m, cp, cplen), 0);
			T_EQ(manifest_apply(m, buf, dllen), SL_E_CORRUPT);
			manifest_free(m);
		}
	}
	/* A delta of epoch 1 after a checkpoint of epoch 2. */
	free(buf);
	buf = malloc(cplen);
	memcpy(buf, cp, cplen);
	sl_store_be64(buf + 32, 2);
	sl_store_be32(buf + cplen - 4, crc32c(0, buf, cplen - 4));
	m = manifest_new();
	T_EQ(manifest_apply(m, buf, cplen), 0);
	{
		uint8_t *d2 = malloc(dllen);

		memcpy(d2, dl, dllen);
		sl_store_be32(d2 + 48, m->crc);
		sl_store_be32(d2 + dllen - 4, crc32c(0, d2, dllen - 4));
		T_EQ(manifest_apply(m, d2, dllen), SL_E_CORRUPT);	/* epoch 1 < 2 */
		free(d2);
	}
	manifest_free(m);
	free(buf);
	free(cp);
	free(dl);
}

static void test_load(void)
{
	struct manifest *m, *back;
	char path[400];
	FILE *f;
	int err, i;

	setup();
	/* An empty store: version 0, nothing in it. */
	back = load(&err);
	T_EQ(err, 0);
	T_CHECK(back && back->version == 0 && back->ntopics == 0);
	manifest_free(back);
	/* Keys under manifest/ that are not versions are not ours. */
	snprintf(path, sizeof(path), "%s/manifest", dirpath);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/manifest/README", dirpath);
	f = fopen(path, "w");
	fputs("x", f);
	fclose(f);
	back = load(&err);
	T_EQ(err, 0);
	T_CHECK(back && back->version == 0);
	manifest_free(back);

	m = fresh_writer(NULL);
	populate(m);
	for (i = 0; i < 4; i++) {
		add_range(m, 2, 0, 100 + i, 100 + i, 10 + i);
		T_EQ(commit(m, 10 + i, NULL), 0);
	}
	/* A missing delta (4 of 1..4): the loader retries, then gives up. */
	snprintf(path, sizeof(path), "%s/manifest/00000000000000000003", dirpath);
	T_EQ(rename(path, "/tmp/sluice-manifest-hold"), 0);
	back = load(&err);
	T_EQ(err, SL_E_NOTFOUND);
	T_CHECK(back == NULL);
	T_EQ(rename("/tmp/sluice-manifest-hold", path), 0);
	/* A damaged delta: refused as corrupt. */
	f = fopen(path, "r+b");
	fseek(f, 70, SEEK_SET);
	fputc(0xff, f);
	fclose(f);
	back = load(&err);
	T_EQ(err, SL_E_CORRUPT);
	T_CHECK(back == NULL);
	/* A cancelled load calls nothing back. */
	{
		struct done d = { 0 };
		struct manifest_load *h = NULL;

		T_EQ(manifest_load(OS, on_load, &d, &h), 0);
		manifest_load_cancel(h);
		T_EQ(d.n, 0);
	}
	manifest_free(m);
	teardown();
}

static int has(char **keys, size_t n, const char *k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(keys[i], k) == 0)
			return 1;
	return 0;
}

static void test_gc(void)
{
	struct manifest_policy pol = { 2, 0 };
	struct manifest *m;
	struct manifest_gc g;
	struct objstore_entry e[16];
	uint8_t id[16];
	size_t n = 0;
	const int64_t grace = 60000, t0 = 1000000;

	setup();
	m = fresh_writer(&pol);
	populate(m);				/* data/1-0-0, 1-0-10, 1-2-0, 2-0-0 */
	T_EQ(commit(m, t0, NULL), 0);		/* v1 checkpoint */
	tid(id, 1);
	T_EQ(manifest_log_start(m, id, 0, 10, t0 + 10), 0);	/* retires data/1-0-0 */
	T_EQ(commit(m, t0 + 20, NULL), 0);	/* v2 */
	T_EQ(commit(m, t0 + 30, NULL), 0);	/* v3 checkpoint */
	T_EQ(m->checkpoint, 3);
	/* retired, but only in a pending edit: must not be deleted yet */
	T_EQ(manifest_log_start(m, id, 0, 25, t0 + 40), 0);	/* retires data/1-0-10 */
	T_EQ(manifest_key_state(m, "data/1-0-10"), 2);

#define ENT(k, mt) (e[n].key = (k), e[n].size = 1, e[n].mtime_ms = (mt), n++)
	ENT("data/1-0-0", t0);			/* retired at t0+10, committed */
	ENT("data/1-0-10", t0);			/* retired, not committed */
	ENT("data/1-2-0", t0);			/* referenced */
	ENT("data/orphan-old", t0);		/* never committed, old */
	ENT("data/orphan-new", t0 + 2 * grace);	/* never committed, young */
	ENT("data/unknown-time", -1);
	ENT("other/thing", t0);			/* not under the data prefix */
	ENT("manifest/00000000000000000001", t0);
	ENT("manifest/00000000000000000002", t0 + 20);
	ENT("manifest/00000000000000000003", t0 + 30);
	ENT("manifest/README", t0);

	/* Before the grace has passed: nothing. */
	T_EQ(manifest_gc_plan(m, e, n, "data/", t0 + grace - 1, grace, &g), 0);
	T_EQ(g.ndelete, 0);
	T_EQ(g.nforget, 0);
	manifest_gc_free(&g);

	/* Past the grace of both retirements, but the second is not committed. */
	T_EQ(manifest_gc_plan(m, e, n, "data/", t0 + 40 + grace, grace, &g), 0);
	T_EQ(g.ndelete, 4);
	T_CHECK(has(g.delete_keys, g.ndelete, "data/1-0-0"));
	T_CHECK(has(g.delete_keys, g.ndelete, "data/orphan-old"));
	T_CHECK(has(g.delete_keys, g.ndelete, "manifest/00000000000000000001"));
	T_CHECK(has(g.delete_keys, g.ndelete, "manifest/00000000000000000002"));
	T_CHECK(!has(g.delete_keys, g.ndelete, "data/1-0-10"));
	T_CHECK(!has(g.delete_keys, g.ndelete, "manifest/00000000000000000003"));
	T_EQ(g.nforget, 0);
	manifest_gc_free(&g);

	/* Once committed, the second retirement counts too. */
	T_EQ(commit(m, t0 + 50, NULL), 0);
	T_EQ(manifest_gc_plan(m, e, n, "data/", t0 + 50 + grace, grace, &g), 0);
	T_CHECK(has(g.delete_keys, g.ndelete, "data/1-0-10"));
	manifest_gc_free(&g);

	/* After the deletes, the listing no longer shows them: forget. */
	n = 0;
	ENT("data/1-2-0", t0);
	ENT("manifest/00000000000000000003", t0 + 30);
	ENT("manifest/00000000000000000004", t0 + 50);
	T_EQ(manifest_gc_plan(m, e, n, "data/", t0 + 50 + grace, grace, &g), 0);
	T_EQ(g.ndelete, 0);
	T_EQ(g.nforget, 2);
	T_CHECK(has(g.forget_keys, g.nforget, "data/1-0-0"));
	T_CHECK(has(g.forget_keys, g.nforget, "data/1-0-10"));
	manifest_gc_free(&g);
	T_EQ(manifest_forget(m, "data/1-0-0"), 0);
	T_EQ(manifest_forget(m, "data/1-0-10"), 0);
	T_EQ(commit(m, t0 + 60, NULL), 0);
	T_EQ(m->nretired, 0);

	/* A prefix that would take in the manifest, or everything, is refused. */
	T_EQ(manifest_gc_plan(m, e, n, "", t0, grace, &g), SL_E_INVALID);
	T_EQ(manifest_gc_plan(m, e, n, "man", t0, grace, &g), SL_E_INVALID);
	T_EQ(manifest_gc_plan(m, e, n, "manifest/x", t0, grace, &g), SL_E_INVALID);
#undef ENT
	manifest_free(m);
	teardown();
}

int main(void)
{
	log_set_level(getenv("MANIFEST_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	T_RUN(test_keys);
	T_RUN(test_checkpoint_roundtrip);
	T_RUN(test_partition_state);
	T_RUN(test_deltas_over_checkpoint);
	T_RUN(test_edits_refused);
	T_RUN(test_retire);
	T_RUN(test_two_writers);
	T_RUN(test_commit_retry);
	T_RUN(test_corrupt);
	T_RUN(test_chain);
	T_RUN(test_load);
	T_RUN(test_gc);
	return t_done();
}
