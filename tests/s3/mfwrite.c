/*
 * mfwrite.c - a bucket written by the C engines (storage/manifest.c,
 * storage/object.c, the file object store), for
 * tests/integration/test_bucket_reader.py to read with the independent
 * reader tests/s3/bucket.py and compare.
 *
 *   mfwrite write DIR   writes the scenario below into DIR (made if missing;
 *                       it must hold no manifest yet), loads DIR again with
 *                       the engine and prints one JSON object:
 *                         "state"        the loaded state, in the shape of
 *                                        bucket.py's State.to_json();
 *                         "batches"      {"TOPIC/P": [[base, count, max_ts,
 *                                        bytes, crc32c], ...]}: the batches
 *                                        each live partition must yield, from
 *                                        its first range's first offset up;
 *                         "checkpoints"  versions that are checkpoints (by
 *                                        manifest_peek of every version);
 *                         "versions"     the newest version;
 *                         "deleted"      data objects removed from DIR (after
 *                                        being retired, as a collector would).
 *   mfwrite load DIR    loads DIR with the engine and prints {"state": ...}
 *                       (exit 0) or {"error": "..."} (exit 1): the test's
 *                       damaged and hand-made versions go through both
 *                       readers this way.
 *
 * The scenario: node 1, checkpoint_every 3, so checkpoints fall among the
 * deltas; the topics "alpha" (3 partitions, grown to 4), "beta" (2) and
 * "gamma" (1); data objects of real Kafka record batches (magic 2, CRC-32C
 * set, keys and values derived from the offsets), zstd blocks cut at a small
 * target so that streams span several blocks; then every operation of the
 * format: TOPIC (create and update), OBJECT, APPEND, LOG_START (inside a
 * range, at a partition's end, beyond it), REPLACE (a compaction), RETIRE
 * (by the commit), TOPIC_DELETE, OFFSET, OFFSET_DELETE, GROUP_DELETE,
 * PRODUCERS, FORGET; a restart of the writer between versions (a new epoch)
 * and an APPEND under a log start beyond the end (dropped at once).
 * Commits go on until the newest version is a delta over a second
 * checkpoint.
 *
 * Errors: any engine or store error ends the program with exit status 1 and
 * a line on stderr naming the step.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../../kernel/buf.h"
#include "../../kernel/crc32c.h"
#include "../../kernel/err.h"
#include "../../kernel/log.h"
#include "../../kernel/loop.h"
#include "../../storage/manifest.h"
#include "../../storage/object.h"
#include "../../storage/objstore.h"

#define NODE		1
#define NTOPICS		3
#define MAXPARTS	4
#define T0		1700000000000LL

static struct loop *L;
static struct objstore *OS;
static const char *DIRPATH;
static char deleted_key[OBJ_KEY_LEN + 1];	/* the object the scenario's collector removed */

static void die(const char *what, int err)
{
	fprintf(stderr, "mfwrite: %s: %s (%d)\n", what, sl_strerror(err), err);
	exit(1);
}

#define CHECK(what, expr) do { int e_ = (expr); if (e_ != 0) die(what, e_); } while (0)

/* ---- running one asynchronous operation to its end ---- */

struct wait {
	int done, err;
	uint64_t version;
	struct manifest *m;
};

static void on_store(void *arg, struct objstore_result *r)
{
	struct wait *w = arg;

	w->done = 1;
	w->err = r->err;
	loop_stop(L);
}

static void on_commit(void *arg, int err, uint64_t version)
{
	struct wait *w = arg;

	w->done = 1;
	w->err = err;
	w->version = version;
	loop_stop(L);
}

static void on_load(void *arg, int err, struct manifest *m)
{
	struct wait *w = arg;

	w->done = 1;
	w->err = err;
	w->m = m;
	loop_stop(L);
}

static int finish(struct wait *w)
{
	while (!w->done) {
		int err = loop_run(L);

		if (err)
			return err;
	}
	return w->err;
}

static int store_put(const char *key, const uint8_t *p, size_t n)
{
	struct wait w = { 0 };
	int err = objstore_put(OS, key, p, n, on_store, &w, NULL);

	return err ? err : finish(&w);
}

static int store_delete(const char *key)
{
	struct wait w = { 0 };
	int err = objstore_delete(OS, key, on_store, &w, NULL);

	return err ? err : finish(&w);
}

static uint64_t commit(struct manifest *m, int64_t now)
{
	struct wait w = { 0 };
	int err = manifest_commit(m, OS, now, on_commit, &w);

	if (!err)
		err = finish(&w);
	if (err)
		die("manifest_commit", err);
	return w.version;
}

static int load(struct manifest **m)
{
	struct wait w = { 0 };
	int err = manifest_load(OS, on_load, &w, NULL);

	if (!err)
		err = finish(&w);
	*m = w.m;
	return err;
}

/* ---- what the scenario wrote, to say what a reader must find ---- */

struct bt {			/* one batch of one partition */
	int64_t base;
	uint32_t count;
	int64_t max_ts;
	size_t len;
	uint32_t crc;		/* CRC-32C of its bytes */
};

struct ptrack {
	int64_t next;		/* the partition's next offset */
	struct bt *b;		/* in offset order */
	size_t n, cap;
};

struct topic {
	const char *name;
	uint8_t id[16];
	int npart;
	struct ptrack parts[MAXPARTS];
};

static struct topic topics[NTOPICS] = {
	{ .name = "alpha" },
	{ .name = "beta" },
	{ .name = "gamma" },
};

static void track_add(struct ptrack *pt, const struct bt *b)
{
	if (pt->n == pt->cap) {
		pt->cap = pt->cap ? 2 * pt->cap : 16;
		pt->b = realloc(pt->b, pt->cap * sizeof(*pt->b));
		if (!pt->b)
			die("realloc", SL_E_NOMEM);
	}
	pt->b[pt->n++] = *b;
}

/* Drop tracked batches with bases in [first, last] (a compaction replaces them). */
static void track_drop(struct ptrack *pt, int64_t first, int64_t last)
{
	size_t k = 0;

	for (size_t i = 0; i < pt->n; i++)
		if (pt->b[i].base < first || pt->b[i].base > last)
			pt->b[k++] = pt->b[i];
	pt->n = k;
}

/* ---- Kafka record batches (magic 2) ---- */

/* The value of a record: text derived from its place, so zstd has something to do. */
static int record_value(char *buf, size_t cap, int t, int p, int64_t off, int compacted)
{
	return snprintf(buf, cap, "%s value of %s/%d offset %" PRId64 " %.*s", compacted ? "compacted" : "plain",
			topics[t].name, p, off, (int)(off % 40), "........................................");
}

/*
 * A batch of count records at offsets base..base+count-1, timestamps
 * T0 + 10 * offset; the bytes go to *out (malloc'd).
 */
static void make_batch(int t, int p, int64_t base, uint32_t count, int compacted, uint8_t **out,
		       size_t *len, int64_t *max_ts)
{
	struct sl_wr w;
	size_t at_len, at_crc;
	int64_t ts0 = T0 + 10 * base;

	wr_init(&w, 0);
	wr_i64(&w, base);
	wr_reserve(&w, 4, &at_len);		/* batchLength */
	wr_i32(&w, 0);				/* partitionLeaderEpoch */
	wr_i8(&w, 2);				/* magic */
	wr_reserve(&w, 4, &at_crc);
	wr_i16(&w, 0);				/* attributes */
	wr_i32(&w, (int32_t)count - 1);		/* lastOffsetDelta */
	wr_i64(&w, ts0);
	wr_i64(&w, ts0 + 10 * (int64_t)(count - 1));
	wr_i64(&w, -1);				/* producerId */
	wr_i16(&w, -1);
	wr_i32(&w, -1);
	wr_i32(&w, (int32_t)count);
	for (uint32_t i = 0; i < count; i++) {
		char key[64], val[256];
		int kl = snprintf(key, sizeof(key), "%s-%d-%" PRId64, topics[t].name, p, base + i);
		int vl = record_value(val, sizeof(val), t, p, base + i, compacted);
		struct sl_wr r;
		size_t rlen;

		wr_init(&r, 0);
		wr_i8(&r, 0);				/* attributes */
		wr_varlong(&r, 10 * (int64_t)i);	/* timestampDelta */
		wr_varint(&r, (int32_t)i);		/* offsetDelta */
		wr_varint(&r, kl);
		wr_bytes(&r, key, (size_t)kl);
		wr_varint(&r, vl);
		wr_bytes(&r, val, (size_t)vl);
		wr_varint(&r, 0);			/* headers */
		if (r.err)
			die("record", r.err);
		rlen = r.len;
		wr_varint(&w, (int32_t)rlen);
		wr_bytes(&w, r.p, rlen);
		wr_free(&r);
	}
	if (w.err)
		die("batch", w.err);
	wr_patch_i32(&w, at_len, (int32_t)(w.len - 12));
	wr_patch_u32(&w, at_crc, crc32c(0, w.p + 21, w.len - 21));
	*max_ts = ts0 + 10 * (int64_t)(count - 1);
	*out = wr_take(&w, len);
}

/* ---- data objects ---- */

/* One partition's share of an object. */
struct piece {
	int t, p;
	int nbatches;
	uint32_t per_batch;	/* records per batch */
	int replace;		/* 1: a compaction of [first, last], one batch, REPLACE */
	int64_t first, last;	/* replace only */
	int no_len;		/* 1: leave the range's position and length unrecorded */
};

struct epoch_state {
	uint64_t epoch;
	uint64_t seq;
};

static struct epoch_state ES;
static uint64_t nonce_state = 0x9e3779b97f4a7c15ULL;

static uint64_t next_nonce(void)
{
	nonce_state ^= nonce_state << 13;
	nonce_state ^= nonce_state >> 7;
	nonce_state ^= nonce_state << 17;
	return nonce_state;
}

static int stream_cmp(const struct piece *a, const struct piece *b)
{
	int c = memcmp(topics[a->t].id, topics[b->t].id, 16);

	return c ? c : (a->p > b->p) - (a->p < b->p);
}

/*
 * Build an object of the pieces (in stream id order), put it, name it in
 * the manifest and append (or replace) a range per piece.  Returns its id;
 * its key goes to key.
 */
static uint64_t upload(struct manifest *m, const struct piece *pcs, int n, int64_t now, char *key)
{
	struct obj_writer_opts o = { .comp = OBJ_COMP_ZSTD, .target = 300 };
	struct obj_writer w;
	struct obj_meta meta = { .node = NODE, .epoch = ES.epoch, .seq = ES.seq++, .nonce = next_nonce(),
				 .created_ms = now };
	struct bt *made[16];
	int nmade[16];
	uint8_t *obj;
	size_t len;
	struct obj_footer f;
	struct obj_index ix;
	uint64_t oid;

	CHECK("obj_writer_init", obj_writer_init(&w, &o));
	for (int i = 0; i < n; i++) {
		const struct piece *pc = &pcs[i];
		struct ptrack *pt = &topics[pc->t].parts[pc->p];
		struct stream_id sid;
		int64_t base = pc->replace ? pc->first : pt->next;
		int nb = pc->replace ? 1 : pc->nbatches;

		if (i > 0 && stream_cmp(&pcs[i - 1], pc) >= 0)
			die("pieces out of stream order", SL_E_INVALID);
		memcpy(sid.ns, topics[pc->t].id, 16);
		sid.index = pc->p;
		made[i] = calloc((size_t)nb, sizeof(struct bt));
		if (!made[i])
			die("calloc", SL_E_NOMEM);
		nmade[i] = nb;
		for (int k = 0; k < nb; k++) {
			uint32_t count = pc->replace ? (uint32_t)(pc->last - pc->first + 1) : pc->per_batch;
			uint8_t *b;
			size_t bl;
			int64_t mts;

			make_batch(pc->t, pc->p, base, count, pc->replace, &b, &bl, &mts);
			CHECK("obj_writer_add", obj_writer_add(&w, &sid, base, count, mts, b, bl));
			made[i][k] = (struct bt){ base, count, mts, bl, crc32c(0, b, bl) };
			free(b);
			base += count;
		}
	}
	CHECK("obj_writer_finish", obj_writer_finish(&w, &meta, &obj, &len));
	obj_writer_free(&w);
	if (obj_key(key, OBJ_KEY_LEN + 1, &meta) != OBJ_KEY_LEN)
		die("obj_key", SL_E_INVALID);
	CHECK("put data object", store_put(key, obj, len));
	CHECK("obj_parse", obj_parse(obj, len, &f, &ix));
	CHECK("manifest_object_add", manifest_object_add(m, key, len, now, &oid));
	for (int i = 0; i < n; i++) {
		const struct piece *pc = &pcs[i];
		struct ptrack *pt = &topics[pc->t].parts[pc->p];
		struct stream_id sid;
		struct mf_range r = { .object = oid };
		int s;

		memcpy(sid.ns, topics[pc->t].id, 16);
		sid.index = pc->p;
		s = obj_find_stream(&ix, &sid);
		if (s < 0)
			die("obj_find_stream", s);
		r.first = ix.streams[s].first;
		r.last = ix.streams[s].last;
		r.max_ts = ix.streams[s].max_ts;
		if (!pc->no_len) {
			const struct obj_block *b0 = &ix.blocks[ix.streams[s].block0];
			const struct obj_block *bn = b0 + ix.streams[s].nblocks - 1;

			r.pos = b0->pos;
			r.len = bn->pos + bn->stored - b0->pos;
		}
		if (pc->replace) {
			CHECK("manifest_range_replace", manifest_range_replace(m, topics[pc->t].id, pc->p, &r, now));
			track_drop(pt, pc->first, pc->last);
			track_add(pt, &made[i][0]);
			/* keep the batches in offset order */
			for (size_t k = pt->n - 1; k > 0 && pt->b[k].base < pt->b[k - 1].base; k--) {
				struct bt tmp = pt->b[k];

				pt->b[k] = pt->b[k - 1];
				pt->b[k - 1] = tmp;
			}
		} else {
			CHECK("manifest_range_append", manifest_range_append(m, topics[pc->t].id, pc->p, &r, now));
			for (int k = 0; k < nmade[i]; k++)
				track_add(pt, &made[i][k]);
			pt->next = r.last + 1;
		}
		free(made[i]);
	}
	obj_index_free(&ix);
	free(obj);
	return oid;
}

/* ---- JSON ---- */

static void json_str(const char *s)
{
	if (!s) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

static void json_hex(const uint8_t *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('"');
}

static void json_state(const struct manifest *m)
{
	printf("{\"cluster\": ");
	json_str(m->cluster[0] ? m->cluster : NULL);
	printf(", \"next_object_id\": %" PRIu64 ", \"topics\": [", m->next_object_id);
	for (size_t i = 0; i < m->ntopics; i++) {
		const struct mf_topic *t = &m->topics[i];

		printf("%s{\"id\": ", i ? ", " : "");
		json_hex(t->id, 16);
		printf(", \"name\": ");
		json_str(t->name);
		printf(", \"configs\": {");
		for (uint32_t c = 0; c < t->nconfigs; c++) {
			printf("%s", c ? ", " : "");
			json_str(t->configs[c].key);
			printf(": ");
			json_str(t->configs[c].value);
		}
		printf("}, \"partitions\": [");
		for (int32_t p = 0; p < t->npartitions; p++) {
			const struct mf_partition *pa = &t->parts[p];

			printf("%s{\"log_start\": %" PRId64 ", \"end\": %" PRId64 ", \"ranges\": [", p ? ", " : "",
			       pa->log_start, pa->end);
			for (size_t r = 0; r < pa->nranges; r++) {
				const struct mf_range *rg = &pa->ranges[r];

				printf("%s[%" PRIu64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRIu64 ", %" PRIu64 "]",
				       r ? ", " : "", rg->object, rg->first, rg->last, rg->max_ts, rg->pos, rg->len);
			}
			printf("], \"state\": \"");
			for (size_t b = 0; b < pa->state_len; b++)
				printf("%02x", pa->state[b]);
			printf("\"}");
		}
		printf("]}");
	}
	printf("], \"objects\": [");
	for (size_t i = 0; i < m->nobjects; i++) {
		const struct mf_object *o = &m->objects[i];

		printf("%s{\"id\": %" PRIu64 ", \"key\": ", i ? ", " : "", o->id);
		json_str(o->key);
		printf(", \"size\": %" PRIu64 ", \"created\": %" PRId64 ", \"refs\": %" PRIu64 "}", o->size,
		       o->created_ms, o->refs);
	}
	printf("], \"retired\": [");
	for (size_t i = 0; i < m->nretired; i++) {
		printf("%s[", i ? ", " : "");
		json_str(m->retired[i].key);
		printf(", %" PRId64 "]", m->retired[i].retired_ms);
	}
	printf("], \"offsets\": [");
	for (size_t i = 0; i < m->noffsets; i++) {
		const struct mf_offset *o = &m->offsets[i];

		printf("%s{\"group\": ", i ? ", " : "");
		json_str(o->group);
		printf(", \"topic\": ");
		json_str(o->topic);
		printf(", \"partition\": %" PRId32 ", \"offset\": %" PRId64 ", \"leader_epoch\": %" PRId32
		       ", \"metadata\": ", o->partition, o->offset, o->leader_epoch);
		json_str(o->metadata);
		printf(", \"commit_time\": %" PRId64 ", \"expire_time\": %" PRId64 "}", o->commit_ms, o->expire_ms);
	}
	printf("], \"producers\": {\"version\": %u, \"data\": ", m->producers_version);
	json_hex(m->producers, m->producers_len);
	printf("}}");
}

/* ---- the scenario ---- */

static void offset(struct manifest *m, const char *group, const char *topic, int32_t p, int64_t off,
		   int32_t leader_epoch, const char *meta, int64_t now)
{
	struct mf_offset o = { .group = (char *)group, .topic = (char *)topic, .partition = p, .offset = off,
			       .leader_epoch = leader_epoch, .metadata = (char *)meta, .commit_ms = now,
			       .expire_ms = -1 };

	CHECK("manifest_offset_commit", manifest_offset_commit(m, &o));
}

static struct manifest *writer(struct manifest *m)
{
	struct manifest_policy pol = { .checkpoint_every = 3 };

	CHECK("manifest_writer_start", manifest_writer_start(m, NODE, &pol));
	ES.epoch = m->epoch + 1;
	ES.seq = 0;
	return m;
}

/*
 * The versions in DIR/manifest, read with manifest_peek: returns the newest,
 * sets *newest_cp to whether it is a checkpoint, and with print writes the
 * checkpoints as a JSON list.
 */
static uint64_t versions(int print, int *newest_cp)
{
	char path[4200];
	uint64_t newest = 0;
	int first = 1;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/manifest", DIRPATH);
	d = opendir(path);
	if (!d)
		die("opendir manifest", -errno);
	while ((e = readdir(d)) != NULL) {
		char key[sizeof(e->d_name) + 16];
		uint64_t v;

		snprintf(key, sizeof(key), "manifest/%s", e->d_name);
		v = manifest_key_version(key);
		if (v > newest)
			newest = v;
	}
	closedir(d);
	if (print)
		printf("[");
	*newest_cp = 0;
	for (uint64_t v = 1; v <= newest; v++) {
		char key[MANIFEST_KEY_LEN + 1];
		uint8_t *buf;
		size_t len;
		struct manifest_header h;
		FILE *f;

		manifest_key(v, key);
		snprintf(path, sizeof(path), "%s/%s", DIRPATH, key);
		f = fopen(path, "rb");
		if (!f)
			continue;		/* collected */
		buf = malloc(MANIFEST_MAX_BYTES);
		if (!buf)
			die("malloc", SL_E_NOMEM);
		len = fread(buf, 1, MANIFEST_MAX_BYTES, f);
		fclose(f);
		CHECK("manifest_peek", manifest_peek(buf, len, &h));
		free(buf);
		if (h.kind == MANIFEST_CHECKPOINT) {
			if (print)
				printf("%s%" PRIu64, first ? "" : ", ", v);
			first = 0;
			*newest_cp = v == newest;
		}
	}
	if (print)
		printf("]");
	return newest;
}

static void scenario(void)
{
	static const struct mf_config alpha_cf[] = { { "cleanup.policy", "compact" },
						     { "retention.ms", "86400000" } };
	static const struct mf_config alpha_cf2[] = { { "cleanup.policy", "compact,delete" },
						      { "max.message.bytes", "2000000" },
						      { "message.timestamp.type", NULL } };
	static const struct mf_config gamma_cf[] = { { "segment.ms", NULL } };
	struct manifest *m = manifest_new();
	int64_t now = T0 + 1000000;
	char key[OBJ_KEY_LEN + 1];
	int err;

	if (!m)
		die("manifest_new", SL_E_NOMEM);
	for (int t = 0; t < NTOPICS; t++) {
		memset(topics[t].id, 0, 16);
		topics[t].id[0] = (uint8_t)(0x30 - 0x10 * t);	/* gamma sorts first, alpha last */
		topics[t].id[15] = (uint8_t)(t + 1);
	}
	topics[0].npart = 3;
	topics[1].npart = 2;
	topics[2].npart = 1;
	CHECK("manifest_set_cluster", manifest_set_cluster(m, "mfwrite-cluster"));
	writer(m);

	/* 1: the topics. */
	CHECK("topic alpha", manifest_topic_put(m, topics[0].id, "alpha", 3, alpha_cf, 2));
	CHECK("topic beta", manifest_topic_put(m, topics[1].id, "beta", 2, NULL, 0));
	CHECK("topic gamma", manifest_topic_put(m, topics[2].id, "gamma", 1, gamma_cf, 1));
	commit(m, now += 1000);

	/* 2: an object for alpha/0, alpha/1, beta/0; committed offsets. */
	{
		struct piece p[] = {
			{ .t = 1, .p = 0, .nbatches = 4, .per_batch = 5 },	/* beta sorts before alpha */
			{ .t = 0, .p = 0, .nbatches = 3, .per_batch = 4 },
			{ .t = 0, .p = 1, .nbatches = 2, .per_batch = 3 },
		};
		upload(m, p, 3, now += 1000, deleted_key);
	}
	offset(m, "g1", "alpha", 0, 5, 3, "meta-1", now);
	offset(m, "g1", "alpha", 1, 3, -1, NULL, now);
	offset(m, "g2", "beta", 0, 10, -1, "", now);
	offset(m, "g2", "beta", 1, 0, 0, NULL, now);
	offset(m, "", "beta", 0, 7, -1, NULL, now);
	commit(m, now += 1000);

	/* 3: a second object; alpha grows to 4 partitions with new configs. */
	{
		struct piece p[] = {
			{ .t = 2, .p = 0, .nbatches = 2, .per_batch = 5 },
			{ .t = 0, .p = 0, .nbatches = 5, .per_batch = 4 },
			{ .t = 0, .p = 2, .nbatches = 2, .per_batch = 2 },
		};
		upload(m, p, 3, now += 1000, key);
	}
	topics[0].npart = 4;
	CHECK("topic alpha update", manifest_topic_put(m, topics[0].id, "alpha", 4, alpha_cf2, 3));
	offset(m, "g3", "alpha", 2, 1, 2, "x", now);
	offset(m, "g3", "gamma", 0, 4, -1, NULL, now);
	commit(m, now += 1000);

	/* 4: log starts: inside alpha/0's second range (its first range goes), at beta/0's end. */
	CHECK("log start alpha/0", manifest_log_start(m, topics[0].id, 0, 14, now));
	CHECK("log start beta/0", manifest_log_start(m, topics[1].id, 0, 20, now));
	commit(m, now += 1000);

	/* 5: gamma deleted; offsets deleted; alpha/1 compacted: the first object retires. */
	CHECK("topic_delete gamma", manifest_topic_delete(m, topics[2].id, now));
	topics[2].npart = 0;
	CHECK("offset_delete g2 beta", manifest_offset_delete(m, "g2", "beta", -1));
	CHECK("offset_delete nothing", manifest_offset_delete(m, "nobody", "beta", 0));
	CHECK("offset_delete g3 gamma", manifest_offset_delete(m, "g3", "gamma", 0));
	CHECK("group_delete g3", manifest_group_delete(m, "g3"));
	{
		struct piece p[] = { { .t = 0, .p = 1, .replace = 1, .first = 0, .last = 5 } };

		upload(m, p, 1, now += 1000, key);
	}
	commit(m, now += 1000);

	/* The writer restarts: a fresh load, a new epoch. */
	manifest_free(m);
	err = load(&m);
	if (err)
		die("reload", err);
	writer(m);

	/* 6: more data under the new epoch, one range without position and length; producers. */
	{
		struct piece p[] = {
			{ .t = 1, .p = 1, .nbatches = 3, .per_batch = 2, .no_len = 1 },
			{ .t = 0, .p = 0, .nbatches = 2, .per_batch = 6 },
			{ .t = 0, .p = 3, .nbatches = 2, .per_batch = 3 },
		};
		upload(m, p, 3, now += 1000, key);
	}
	CHECK("producers", manifest_producers_set(m, 7, "\x01\x02\x03\x00\xff", 5));
	CHECK("partition state", manifest_partition_state(m, topics[0].id, 0, "\x00st\xfe", 4));
	CHECK("partition state", manifest_partition_state(m, topics[1].id, 0, "b", 1));
	commit(m, now += 1000);

	/* 7: the collector deletes the retired object, then forgets it. */
	CHECK("delete retired object", store_delete(deleted_key));
	CHECK("manifest_forget", manifest_forget(m, deleted_key));
	offset(m, "g1", "alpha", 0, 20, 4, "meta-2", now);
	commit(m, now += 1000);

	/* 8: alpha/3's log start beyond its end; a range appended under it is dropped at once. */
	CHECK("log start alpha/3", manifest_log_start(m, topics[0].id, 3, 100, now));
	{
		struct piece p[] = {
			{ .t = 0, .p = 0, .nbatches = 2, .per_batch = 5 },
			{ .t = 0, .p = 2, .nbatches = 1, .per_batch = 3 },
		};
		upload(m, p, 2, now += 1000, key);
	}
	commit(m, now += 1000);
	{
		struct piece p[] = { { .t = 0, .p = 3, .nbatches = 2, .per_batch = 4 } };

		upload(m, p, 1, now += 1000, key);
	}
	commit(m, now += 1000);

	/* Small deltas until the newest version is a delta over a second checkpoint. */
	for (int i = 0; i < 8; i++) {
		int newest_cp;

		versions(0, &newest_cp);
		if (!newest_cp && m->checkpoint > 1)
			break;
		offset(m, "g4", "beta", 1, 100 + i, -1, NULL, now);
		commit(m, now += 1000);
	}
	manifest_free(m);
}

static void print_batches(const struct manifest *m)
{
	int first = 1;

	printf("{");
	for (int t = 0; t < NTOPICS; t++) {
		const struct mf_topic *mt = manifest_topic(m, topics[t].id);

		if (!mt)
			continue;
		for (int p = 0; p < mt->npartitions; p++) {
			const struct mf_partition *pa = &mt->parts[p];
			const struct ptrack *pt = &topics[t].parts[p];
			int firstb = 1;

			printf("%s\"%s/%d\": [", first ? "" : ", ", mt->name, p);
			first = 0;
			for (size_t i = 0; pa->nranges && i < pt->n; i++) {
				const struct bt *b = &pt->b[i];

				if (b->base < pa->ranges[0].first || b->base >= pa->end)
					continue;
				printf("%s[%" PRId64 ", %u, %" PRId64 ", %zu, %u]", firstb ? "" : ", ", b->base,
				       b->count, b->max_ts, b->len, b->crc);
				firstb = 0;
			}
			printf("]");
		}
	}
	printf("}");
}

static int open_store(const char *dir, int create)
{
	char url[4200], errbuf[256];

	if (create && mkdir(dir, 0777) != 0 && errno != EEXIST)
		die("mkdir", -errno);
	snprintf(url, sizeof(url), "file://%s", dir);
	if (objstore_open(L, url, NULL, &OS, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "mfwrite: %s: %s\n", url, errbuf);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct manifest *m = NULL;
	int err;

	if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "load"))) {
		fprintf(stderr, "usage: mfwrite write DIR | mfwrite load DIR\n");
		return 2;
	}
	log_set_level(LOG_ERROR);
	DIRPATH = argv[2];
	L = loop_new();
	if (!L)
		die("loop_new", -errno);
	if (open_store(DIRPATH, !strcmp(argv[1], "write")))
		return 1;
	if (!strcmp(argv[1], "write"))
		scenario();
	err = load(&m);
	if (err) {
		printf("{\"error\": \"%s\"}\n", sl_strerror(err));
		objstore_free(OS);
		loop_destroy(L);
		return 1;
	}
	if (manifest_check(m) != 0)
		die("manifest_check after load", SL_E_CORRUPT);
	printf("{\"state\": ");
	json_state(m);
	if (!strcmp(argv[1], "write")) {
		printf(", \"batches\": ");
		print_batches(m);
		int newest_cp;

		printf(", \"checkpoints\": ");
		versions(1, &newest_cp);
		printf(", \"versions\": %" PRIu64 ", \"deleted\": [", m->version);
		json_str(deleted_key);
		printf("]");
	}
	printf("}\n");
	manifest_free(m);
	objstore_free(OS);
	loop_destroy(L);
	for (int t = 0; t < NTOPICS; t++)
		for (int p = 0; p < MAXPARTS; p++)
			free(topics[t].parts[p].b);
	return 0;
}
