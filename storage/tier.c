/*
 * tier.c - shared storage: the upload pipeline, the manifest's writer, WAL
 * trimming, the collector and cold reads (contract in tier.h).
 *
 * One upload at a time, as a cycle:
 *
 *   IDLE --tick or kick, data waiting--> cut --> PUT --ok--> edits --> COMMIT --ok--> trim, IDLE
 *     |                                          |fail: retry same object    |fail: retry same version
 *     \--tick, only edits waiting-----------------------------------------> COMMIT
 *
 * A tick comes every sluice.upload.interval.ms; a kick when the durable
 * bytes not yet taken reach sluice.upload.bytes (the store's upload hook),
 * and again right after a commit while that much is still waiting, so a
 * backlog (after an outage) drains object after object.
 *
 * Cut: every stream with durable batches at or above its cut mark, in id
 * order (the object format wants it), adding batches until the object
 * reaches sluice.upload.bytes.  A stream's range starts at its cut mark,
 * which is the manifest partition's end (ranges stay contiguous even when
 * DeleteRecords freed batches that were never uploaded).  A stream whose
 * partition is not in the manifest is left for a later cut: data is never
 * taken unless the manifest can name it.
 *
 * Trim position after a commit: the smallest of
 *   - the WAL position the store had completed when the version's first
 *     attempt began (every metadata record below it had told us its edit,
 *     so the version holds them all), and
 *   - for every stream, where the record of its first batch not yet in a
 *     committed version starts.
 * An edit that failed (out of memory, an inconsistency) stops trimming for
 * good: the WAL then keeps everything and a restart replays it.
 *
 * The tail: after a commit the uploaded batches may leave memory.  Objects
 * are remembered in commit order with their bytes; while more than
 * sluice.tail.bytes are remembered, the oldest object's batches are
 * evicted from their streams.  Reads below a stream's memory go to the
 * block cache (rcache.h) through the manifest's ranges.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "tier.h"
#include "rcache.h"
#include "worker.h"
#include "../kernel/log.h"

#define TAG "tier"
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define PREFETCH_BYTES ((size_t)8 << 20)	/* how far reads from objects look ahead */

struct up_range {
	struct stream_id id;
	int64_t first, last, max_ts;
};

/* One batch copied for the build: its range (stream) and where its bytes are in the stage. */
struct staged {
	uint32_t range;
	uint32_t count;
	int64_t base, max_ts;
	size_t off, len;
};

/*
 * The build of one data object on the worker: the batches the cut took,
 * copied (the streams may free theirs meanwhile), packed and compressed off
 * the loop.  Owned by the tier; reused from cut to cut.
 */
struct build {
	struct worker_job job;
	struct tier *t;
	uint8_t *stage;
	size_t used, cap;
	struct staged *b;
	size_t nb, capb;
	/* out */
	uint8_t *obj;
	size_t objlen;
	int err;
};

struct tier;

struct tail_obj {
	struct tail_obj *next;
	struct up_range *r;
	size_t nr;
	uint64_t bytes;
};

enum phase { P_IDLE, P_BUILD, P_PUT, P_COMMIT };

struct tier_fetch {
	struct tier *t;
	struct rcache_pin *pin;
	tier_fetch_fn fn;
	void *arg;
};

struct tier {
	struct loop *l;
	struct store *st;
	struct wal *w;
	struct objstore *os;
	struct tier_options o;
	char cluster[MF_CLUSTER_MAX + 1];
	struct manifest *m;
	struct rcache *rc;

	/* loading */
	struct manifest_load *lh;
	tier_ready_fn ready_fn;
	void *ready_arg;
	struct loop_timer load_timer;
	uint32_t load_failures;

	/* writing */
	int started, edit_failed;
	uint64_t epoch, seq;
	enum phase phase;
	struct loop_timer tick;
	struct loop_task kick;
	struct loop_timer retry;
	uint32_t failures;
	uint64_t commit_pos;		/* store position when this version's first attempt began */
	uint64_t last_trim_ms;
	int commit_pos_set;

	/* the upload under way */
	struct worker *wk;
	struct build *bd;
	int building;			/* the worker has the build */
	uint8_t *obj;
	size_t objlen;
	char key[OBJ_KEY_LEN + 1];
	struct obj_meta meta;
	struct up_range *r;
	size_t nr, capr;
	struct sl_wr *rstate;		/* capr of them: each range's state bytes, from its cut */
	uint64_t raw;
	struct objstore_op *op;

	/* the layer above's state (tier_set_state_hooks) */
	struct tier_state_hooks hooks;
	int global_dirty;

	/* the memory tail */
	struct tail_obj *tail_head, *tail_last;
	uint64_t tail_used;

	/* compaction */
	struct loop_timer compact_timer;
	struct compaction *cp;

	/* the collector */
	struct loop_timer gc_timer;
	struct objstore_op *gc_op;
	struct manifest_gc gc;
	int gc_have_plan;

	struct tier_stats stats;
};

static void cycle(struct tier *t);

static uint64_t backoff(uint32_t failures)
{
	uint64_t ms = BACKOFF_MIN_MS;

	for (uint32_t i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static const char *result_text(const struct objstore_result *r, char *buf, size_t len)
{
	if (r->err == SL_E_REMOTE)
		snprintf(buf, len, "HTTP %d %s: %s", r->status, r->code, r->message);
	else
		snprintf(buf, len, "%s", sl_strerror(r->err));
	return buf;
}

/* ---- edits from the layer above ---- */

static void edit_failed(struct tier *t, const char *what, int err)
{
	log_error(TAG, "manifest edit failed (%s): %s; the WAL is no longer trimmed, so nothing is lost, "
		  "but it will fill", what, sl_strerror(err));
	t->edit_failed = 1;
}

void tier_topic_put(struct tier *t, const uint8_t id[16], const char *name, int32_t npartitions,
		    const struct mf_config *configs, uint32_t nconfigs)
{
	if (!t || !t->m)
		return;
	int rc = manifest_topic_put(t->m, id, name, npartitions, configs, nconfigs);
	if (rc != 0)
		edit_failed(t, "topic", rc);
}

void tier_topic_delete(struct tier *t, const uint8_t id[16])
{
	if (!t || !t->m)
		return;
	const struct mf_topic *mt = manifest_topic(t->m, id);
	if (!mt)
		return;
	/* Its committed offsets go with it, as the group coordinator forgets them. */
	char *name = strdup(mt->name);
	if (!name) {
		edit_failed(t, "topic delete", SL_E_NOMEM);
		return;
	}
	for (size_t i = 0; i < t->m->noffsets;) {
		const struct mf_offset *o = &t->m->offsets[i];
		if (strcmp(o->topic, name) != 0) {
			i++;
			continue;
		}
		char *group = strdup(o->group);
		int rc = group ? manifest_offset_delete(t->m, group, name, -1) : SL_E_NOMEM;
		free(group);
		if (rc != 0) {
			edit_failed(t, "offsets of a deleted topic", rc);
			break;
		}
		/* The deletion removed entries at i: look at i again. */
	}
	free(name);
	int rc = manifest_topic_delete(t->m, id, loop_wall_ms());
	if (rc != 0 && rc != SL_E_NOTFOUND)
		edit_failed(t, "topic delete", rc);
}

void tier_log_start(struct tier *t, const uint8_t id[16], int32_t partition, int64_t offset)
{
	if (!t || !t->m)
		return;
	const struct mf_partition *p = manifest_partition(t->m, id, partition);
	if (!p || offset <= p->log_start)
		return;
	int rc = manifest_log_start(t->m, id, partition, offset, loop_wall_ms());
	if (rc != 0)
		edit_failed(t, "log start", rc);
}

void tier_offset_commit(struct tier *t, const struct mf_offset *o)
{
	if (!t || !t->m)
		return;
	int rc = manifest_offset_commit(t->m, o);
	if (rc != 0)
		edit_failed(t, "committed offset", rc);
}

void tier_offset_delete(struct tier *t, const char *group, const char *topic, int32_t partition)
{
	if (!t || !t->m)
		return;
	int rc = manifest_offset_delete(t->m, group, topic, partition);
	if (rc != 0)
		edit_failed(t, "offset delete", rc);
}

void tier_group_delete(struct tier *t, const char *group)
{
	if (!t || !t->m)
		return;
	int rc = manifest_group_delete(t->m, group);
	if (rc != 0)
		edit_failed(t, "group delete", rc);
}

/* ---- life ---- */

static void on_tick(struct loop *l, void *arg);
static void on_kick(struct loop *l, void *arg);
static void on_retry(struct loop *l, void *arg);
static void on_gc_timer(struct loop *l, void *arg);
static void on_load_timer(struct loop *l, void *arg);
static void on_compact_timer(struct loop *l, void *arg);
struct compaction;
static void compaction_free(struct compaction *c);
static void compaction_cancel(struct tier *t);

struct tier *tier_new(struct loop *l, struct store *st, struct wal *w, struct objstore *os,
		      const struct tier_options *o)
{
	struct tier *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->l = l;
	t->st = st;
	t->w = w;
	t->os = os;
	t->o = *o;
	if (!t->o.upload_bytes)
		t->o.upload_bytes = 16u << 20;
	if (!t->o.upload_interval_ms)
		t->o.upload_interval_ms = 1000;
	if (t->o.gc_grace_ms <= 0)
		t->o.gc_grace_ms = 600000;
	if (t->o.gc_interval_ms <= 0)
		t->o.gc_interval_ms = 60000;
	if (t->o.trim_interval_ms <= 0)
		t->o.trim_interval_ms = 10000;
	snprintf(t->cluster, sizeof(t->cluster), "%s", o->cluster ? o->cluster : "");
	t->o.cluster = t->cluster;
	struct rcache_options ro = { .cap = o->cache_bytes };
	int err;
	t->rc = rcache_new(l, os, &ro);
	t->bd = calloc(1, sizeof(*t->bd));
	t->wk = t->rc && t->bd ? worker_new(l, obj_thread_cleanup, &err) : NULL;
	if (!t->wk) {
		rcache_free(t->rc);
		free(t->bd);
		free(t);
		return NULL;
	}
	t->bd->t = t;
	loop_timer_init(&t->tick, on_tick, t);
	loop_task_init(&t->kick, on_kick, t);
	loop_timer_init(&t->retry, on_retry, t);
	loop_timer_init(&t->gc_timer, on_gc_timer, t);
	loop_timer_init(&t->load_timer, on_load_timer, t);
	loop_timer_init(&t->compact_timer, on_compact_timer, t);
	return t;
}

static void tail_free(struct tail_obj *o)
{
	free(o->r);
	free(o);
}

void tier_free(struct tier *t)
{
	if (!t)
		return;
	store_set_upload_hook(t->st, 0, NULL);
	loop_timer_cancel(t->l, &t->tick);
	loop_task_cancel(t->l, &t->kick);
	loop_timer_cancel(t->l, &t->retry);
	loop_timer_cancel(t->l, &t->gc_timer);
	loop_timer_cancel(t->l, &t->load_timer);
	if (t->lh)
		manifest_load_cancel(t->lh);
	if (t->op)
		objstore_cancel(t->os, t->op);
	if (t->gc_op)
		objstore_cancel(t->os, t->gc_op);
	if (t->gc_have_plan)
		manifest_gc_free(&t->gc);
	loop_timer_cancel(t->l, &t->compact_timer);
	compaction_cancel(t);
	worker_free(t->wk);	/* waits for a build under way; its done() is not called */
	compaction_free(t->cp);
	free(t->bd->stage);
	free(t->bd->b);
	free(t->bd->obj);
	free(t->bd);
	manifest_free(t->m);
	rcache_free(t->rc);
	while (t->tail_head) {
		struct tail_obj *o = t->tail_head;
		t->tail_head = o->next;
		tail_free(o);
	}
	free(t->obj);
	for (size_t i = 0; i < t->capr; i++)
		wr_free(&t->rstate[i]);
	free(t->rstate);
	free(t->r);
	free(t);
}

void tier_set_state_hooks(struct tier *t, const struct tier_state_hooks *h)
{
	if (t)
		t->hooks = *h;
}

void tier_global_dirty(struct tier *t)
{
	if (t)
		t->global_dirty = 1;
}

const struct manifest *tier_manifest(const struct tier *t)
{
	return t ? t->m : NULL;
}

static int start_load(struct tier *t);

static void on_loaded(void *arg, int err, struct manifest *m)
{
	struct tier *t = arg;

	t->lh = NULL;
	if (err) {
		uint64_t ms = backoff(++t->load_failures);
		log_warn(TAG, "cannot read the manifest from %s: %s; trying again in %" PRIu64 " ms "
			 "(attempt %u)", objstore_name(t->os), sl_strerror(err), ms, t->load_failures);
		loop_timer_set(t->l, &t->load_timer, ms);
		return;
	}
	if (!m->cluster[0]) {
		int rc = manifest_set_cluster(m, t->cluster);
		if (rc != 0) {
			log_error(TAG, "cannot set cluster id '%s' in a new manifest: %s", t->cluster,
				  sl_strerror(rc));
			manifest_free(m);
			t->ready_fn(t->ready_arg, rc);
			return;
		}
		log_info(TAG, "%s holds no manifest: starting a new one for cluster %s",
			 objstore_name(t->os), t->cluster);
	} else if (strcmp(m->cluster, t->cluster) != 0) {
		log_error(TAG, "%s belongs to cluster '%s', but this broker's WAL is for cluster '%s'; "
			  "refusing to use it", objstore_name(t->os), m->cluster, t->cluster);
		manifest_free(m);
		t->ready_fn(t->ready_arg, SL_E_INVALID);
		return;
	} else {
		log_info(TAG, "loaded manifest version %" PRIu64 " from %s: %zu topics, %zu objects, "
			 "%zu committed offsets", m->version, objstore_name(t->os), m->ntopics,
			 m->nobjects, m->noffsets);
	}
	t->m = m;
	t->ready_fn(t->ready_arg, 0);
}

static int start_load(struct tier *t)
{
	return manifest_load(t->os, on_loaded, t, &t->lh);
}

static void on_load_timer(struct loop *l, void *arg)
{
	struct tier *t = arg;
	int rc = start_load(t);

	if (rc != 0) {
		log_warn(TAG, "cannot start reading the manifest: %s", sl_strerror(rc));
		loop_timer_set(l, &t->load_timer, backoff(++t->load_failures));
	}
}

int tier_load(struct tier *t, tier_ready_fn fn, void *arg)
{
	t->ready_fn = fn;
	t->ready_arg = arg;
	return start_load(t);
}

void tier_start(struct tier *t)
{
	int rc = manifest_writer_start(t->m, t->o.node, NULL);

	if (rc != 0) {
		log_error(TAG, "cannot become the manifest's writer: %s; nothing will be uploaded",
			  sl_strerror(rc));
		return;
	}
	t->epoch = t->m->w.epoch;
	t->started = 1;
	store_set_upload_hook(t->st, t->o.upload_bytes, &t->kick);
	loop_timer_set(t->l, &t->tick, t->o.upload_interval_ms);
	loop_timer_set(t->l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
	if (t->o.compaction_interval_ms > 0)
		loop_timer_set(t->l, &t->compact_timer, (uint64_t)t->o.compaction_interval_ms);
	cycle(t);
}

/* ---- the upload cycle ---- */

struct gather {
	struct tier *t;
	struct stream **s;
	size_t n, cap;
	int missing;		/* streams with data but no manifest partition */
};

static int has_uncut(void *arg, const struct stream_batch *b)
{
	*(int *)arg = 1;
	return 1;
}

static int gather_one(void *arg, struct stream *s)
{
	struct gather *g = arg;
	int any = 0;

	if (stream_hw(s) <= stream_cut(s))
		return 0;
	stream_foreach(s, stream_cut(s), has_uncut, &any);
	if (!any)
		return 0;
	const struct stream_id *id = stream_id_of(s);
	if (!manifest_partition(g->t->m, id->ns, id->index)) {
		g->missing++;
		return 0;
	}
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 64;
		struct stream **ns = realloc(g->s, nc * sizeof(*ns));
		if (!ns)
			return 1;
		g->s = ns;
		g->cap = nc;
	}
	g->s[g->n++] = s;
	return 0;
}

static int cmp_id(const struct stream_id *x, const struct stream_id *y)
{
	int c = memcmp(x->ns, y->ns, 16);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_stream(const void *a, const void *b)
{
	return cmp_id(stream_id_of(*(struct stream *const *)a), stream_id_of(*(struct stream *const *)b));
}

struct adder {
	struct tier *t;
	struct build *bd;
	uint32_t range;
	struct up_range *r;
	int full;
	int err;
};

static int stage_batch(struct build *bd, uint32_t range, const struct stream_batch *b)
{
	if (bd->nb == bd->capb) {
		size_t nc = bd->capb ? bd->capb * 2 : 1024;
		struct staged *nb = realloc(bd->b, nc * sizeof(*nb));
		if (!nb)
			return SL_E_NOMEM;
		bd->b = nb;
		bd->capb = nc;
	}
	if (bd->cap - bd->used < b->bytes.len) {
		size_t nc = bd->cap ? bd->cap : (size_t)1 << 20;
		while (nc - bd->used < b->bytes.len)
			nc *= 2;
		uint8_t *ns = realloc(bd->stage, nc);
		if (!ns)
			return SL_E_NOMEM;
		bd->stage = ns;
		bd->cap = nc;
	}
	memcpy(bd->stage + bd->used, b->bytes.p, b->bytes.len);
	bd->b[bd->nb++] = (struct staged){ range, b->count, b->base, b->max_ts, bd->used, b->bytes.len };
	bd->used += b->bytes.len;
	return 0;
}

static int add_batch(void *arg, const struct stream_batch *b)
{
	struct adder *a = arg;
	struct tier *t = a->t;

	if (t->raw > 0 && t->raw + b->bytes.len > t->o.upload_bytes) {
		a->full = 1;
		return 1;
	}
	int rc = stage_batch(a->bd, a->range, b);
	if (rc != 0) {
		a->err = rc;
		return 1;
	}
	a->r->last = b->base + b->count - 1;
	if (b->max_ts > a->r->max_ts)
		a->r->max_ts = b->max_ts;
	t->raw += b->bytes.len;
	return 0;
}

/* On the worker: the staged batches into object bytes. */
static void build_run(struct worker_job *j)
{
	struct build *bd = (struct build *)j;
	struct tier *t = bd->t;
	struct obj_writer w;
	struct obj_writer_opts wo = { .comp = t->o.comp };
	int rc = obj_writer_init(&w, &wo);

	for (size_t i = 0; rc == 0 && i < bd->nb; i++) {
		const struct staged *b = &bd->b[i];
		rc = obj_writer_add(&w, &t->r[b->range].id, b->base, b->count, b->max_ts,
				    bd->stage + b->off, b->len);
	}
	if (rc == 0)
		rc = obj_writer_finish(&w, &t->meta, &bd->obj, &bd->objlen);
	obj_writer_free(&w);
	bd->err = rc;
}

static void put(struct tier *t);

static void build_done(struct worker_job *j)
{
	struct build *bd = (struct build *)j;
	struct tier *t = bd->t;

	t->building = 0;
	if (bd->err) {
		log_error(TAG, "cannot build data object %s: %s; trying again", t->key, sl_strerror(bd->err));
		t->failures++;
		loop_timer_set(t->l, &t->retry, backoff(t->failures));
		return;
	}
	t->obj = bd->obj;
	t->objlen = bd->objlen;
	bd->obj = NULL;
	bd->used = 0;
	bd->nb = 0;
	put(t);
}

static void build_start(struct tier *t)
{
	t->phase = P_BUILD;
	t->building = 1;
	t->bd->job.run = build_run;
	t->bd->job.done = build_done;
	worker_submit(t->wk, &t->bd->job);
}

/* Take what is waiting into the build; 1 if there is an object to make, 0 if none, <0 on error. */
static int cut(struct tier *t)
{
	struct gather g = { .t = t };
	int rc = 0, full = 0;

	t->nr = 0;
	t->raw = 0;
	t->bd->used = 0;
	t->bd->nb = 0;
	store_foreach_stream(t->st, gather_one, &g);
	if (g.missing)
		log_warn(TAG, "%d streams have data but no partition in the manifest; left in the WAL",
			 g.missing);
	if (g.n == 0) {
		free(g.s);
		if (!g.missing)
			store_set_uncut(t->st, 0);
		return 0;
	}
	qsort(g.s, g.n, sizeof(*g.s), cmp_stream);
	if (g.n > t->capr) {
		struct up_range *nr = realloc(t->r, g.n * sizeof(*nr));
		struct sl_wr *ns = nr ? realloc(t->rstate, g.n * sizeof(*ns)) : NULL;
		if (nr)
			t->r = nr;
		if (!ns) {
			free(g.s);
			return SL_E_NOMEM;
		}
		for (size_t i = t->capr; i < g.n; i++)
			wr_init(&ns[i], 0);
		t->rstate = ns;
		t->capr = g.n;
	}
	for (size_t i = 0; i < g.n && !full; i++) {
		struct stream *s = g.s[i];
		struct up_range *r = &t->r[t->nr];
		struct adder a = { t, t->bd, (uint32_t)t->nr, r, 0, 0 };

		r->id = *stream_id_of(s);
		r->first = stream_cut(s);
		r->last = r->first - 1;
		r->max_ts = -1;
		stream_foreach(s, stream_cut(s), add_batch, &a);
		if (a.err) {
			rc = a.err;
			break;
		}
		full = a.full;
		if (r->last < r->first)
			continue;
		/* The layer above's state as of this range's end, taken with the batches. */
		struct sl_wr *sw = &t->rstate[t->nr];
		sw->len = 0;
		sw->err = 0;
		if (t->hooks.partition &&
		    (rc = t->hooks.partition(t->hooks.arg, &r->id, r->last + 1, sw)) == 0)
			rc = sw->err;
		if (rc != 0)
			break;
		t->nr++;
	}
	free(g.s);
	if (rc == 0 && t->nr == 0)
		rc = SL_E_INVALID;
	if (rc != 0) {
		log_error(TAG, "cannot take batches for a data object: %s", sl_strerror(rc));
		t->nr = 0;
		t->raw = 0;
		return rc;
	}
	t->meta.node = t->o.node;
	t->meta.epoch = t->epoch;
	t->meta.seq = t->seq++;
	if (getrandom(&t->meta.nonce, sizeof(t->meta.nonce), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->meta.nonce))
		t->meta.nonce ^= (uint64_t)loop_now_ms(t->l) * 0x9e3779b97f4a7c15ULL + t->meta.seq;
	t->meta.created_ms = loop_wall_ms();
	if (obj_key(t->key, sizeof(t->key), &t->meta) < 0)
		return SL_E_INVALID;
	/* The batches are taken: later cuts start after them. */
	for (size_t i = 0; i < t->nr; i++) {
		struct stream *s = store_stream(t->st, &t->r[i].id, 0);
		if (s)
			stream_set_cut(s, t->r[i].last + 1);
	}
	uint64_t uncut = store_uncut(t->st);
	store_set_uncut(t->st, full && uncut > t->raw ? uncut - t->raw : 0);
	return 1;
}

static void on_put(void *arg, struct objstore_result *res);
static void commit(struct tier *t);

static void put(struct tier *t)
{
	t->phase = P_PUT;
	int rc = objstore_put(t->os, t->key, t->obj, t->objlen, on_put, t, &t->op);
	if (rc != 0) {
		log_warn(TAG, "cannot start uploading %s: %s", t->key, sl_strerror(rc));
		t->op = NULL;
		t->failures++;
		loop_timer_set(t->l, &t->retry, backoff(t->failures));
	}
}

/* Name the uploaded object and its ranges in the manifest. */
static void record_object(struct tier *t)
{
	uint64_t oid;
	int64_t now = loop_wall_ms();
	int rc = manifest_object_add(t->m, t->key, t->objlen, t->meta.created_ms, &oid);

	if (rc != 0) {
		edit_failed(t, "object", rc);
		return;
	}
	struct obj_footer f;
	struct obj_index ix = { 0 };
	int have_ix = obj_parse(t->obj, t->objlen, &f, &ix) == 0;
	for (size_t i = 0; i < t->nr; i++) {
		const struct up_range *u = &t->r[i];
		struct mf_range mr = { oid, u->first, u->last, u->max_ts, 0, 0 };
		if (!manifest_partition(t->m, u->id.ns, u->id.index))
			continue;	/* its topic was deleted meanwhile */
		if (have_ix) {
			int si = obj_find_stream(&ix, &u->id);
			if (si >= 0) {
				const struct obj_stream *os = &ix.streams[si];
				const struct obj_block *b0 = &ix.blocks[os->block0];
				const struct obj_block *bn = &ix.blocks[os->block0 + os->nblocks - 1];
				mr.pos = b0->pos;
				mr.len = bn->pos + bn->stored - b0->pos;
			}
		}
		rc = manifest_range_append(t->m, u->id.ns, u->id.index, &mr, now);
		if (rc != 0) {
			edit_failed(t, "range", rc);
			break;
		}
		if (t->hooks.partition) {
			rc = manifest_partition_state(t->m, u->id.ns, u->id.index, t->rstate[i].p,
						      t->rstate[i].len);
			if (rc != 0) {
				edit_failed(t, "partition state", rc);
				break;
			}
		}
	}
	if (have_ix)
		obj_index_free(&ix);
}

static void on_put(void *arg, struct objstore_result *res)
{
	struct tier *t = arg;
	char why[256];

	t->op = NULL;
	if (res->err) {
		t->stats.put_failures++;
		t->failures++;
		uint64_t ms = backoff(t->failures);
		if (t->failures == 1 || t->failures % 10 == 0)
			log_warn(TAG, "uploading %s (%zu bytes) failed: %s; retrying in %" PRIu64 " ms "
				 "(failure %u; produce continues into the WAL)", t->key, t->objlen,
				 result_text(res, why, sizeof(why)), ms, t->failures);
		loop_timer_set(t->l, &t->retry, ms);
		return;
	}
	if (t->failures)
		log_info(TAG, "uploaded %s after %u failures", t->key, t->failures);
	t->failures = 0;
	t->stats.puts++;
	t->stats.objects++;
	t->stats.object_bytes += t->objlen;
	record_object(t);
	free(t->obj);
	t->obj = NULL;
	commit(t);
}

static void on_commit(void *arg, int err, uint64_t version);

/* The broker-wide state, as of commit_pos: every metadata record below it is reflected. */
static void take_global(struct tier *t)
{
	struct sl_wr w;
	uint16_t version = 0;

	t->global_dirty = 0;
	wr_init(&w, 0);
	int rc = t->hooks.global(t->hooks.arg, &w, &version);
	if (rc == 0)
		rc = w.err;
	if (rc == 0)
		rc = manifest_producers_set(t->m, version, w.p, w.len);
	wr_free(&w);
	if (rc != 0)
		edit_failed(t, "producer state", rc);
}

static void commit(struct tier *t)
{
	t->phase = P_COMMIT;
	if (!t->commit_pos_set) {
		t->commit_pos = store_done_pos(t->st);
		t->commit_pos_set = 1;
		if (t->global_dirty && t->hooks.global)
			take_global(t);
	}
	int rc = manifest_commit(t->m, t->os, loop_wall_ms(), on_commit, t);
	if (rc == SL_E_EXISTS) {
		on_commit(t, rc, 0);
	} else if (rc != 0) {
		log_warn(TAG, "cannot commit the manifest: %s", sl_strerror(rc));
		t->failures++;
		loop_timer_set(t->l, &t->retry, backoff(t->failures));
	}
}

struct low {
	uint64_t pos;
};

static int lowest_pos(void *arg, struct stream *s)
{
	struct low *lw = arg;
	uint64_t p = stream_wal_pos(s, stream_up(s));

	if (p < lw->pos)
		lw->pos = p;
	return 0;
}

static void trim(struct tier *t)
{
	struct low lw = { t->commit_pos };

	struct wal_stats ws;

	if (t->edit_failed)
		return;
	/*
	 * A trim writes and flushes a superblock on the loop: do it when the
	 * space matters (a quarter of the ring in use) or every
	 * trim_interval_ms (10 s), not after every commit.
	 */
	wal_stats(t->w, &ws);
	if (ws.head - ws.trim < ws.capacity / 4 &&
	    loop_now_ms(t->l) - t->last_trim_ms < (uint64_t)t->o.trim_interval_ms)
		return;
	t->last_trim_ms = loop_now_ms(t->l);
	store_foreach_stream(t->st, lowest_pos, &lw);
	int rc = wal_trim(t->w, lw.pos);
	if (rc != 0) {
		log_error(TAG, "cannot trim the WAL to %" PRIu64 ": %s", lw.pos, sl_strerror(rc));
		return;
	}
	if (lw.pos > t->stats.trimmed)
		t->stats.trimmed = lw.pos;
}

/* Remember the committed object's batches; evict the oldest beyond the tail budget. */
static void tail_push(struct tier *t)
{
	struct tail_obj *o = calloc(1, sizeof(*o));

	if (o && t->nr && !(o->r = malloc(t->nr * sizeof(*o->r)))) {
		free(o);
		o = NULL;
	}
	if (o) {
		memcpy(o->r, t->r, t->nr * sizeof(*o->r));
		o->nr = t->nr;
		o->bytes = t->raw;
		if (t->tail_last)
			t->tail_last->next = o;
		else
			t->tail_head = o;
		t->tail_last = o;
		t->tail_used += o->bytes;
	}
	while (t->tail_head && (t->tail_used > t->o.tail_bytes || !o)) {
		struct tail_obj *h = t->tail_head;
		for (size_t i = 0; i < h->nr; i++) {
			struct stream *s = store_stream(t->st, &h->r[i].id, 0);
			if (s)
				stream_evict(s, h->r[i].last + 1);
		}
		t->tail_used -= h->bytes;
		t->tail_head = h->next;
		if (!t->tail_head)
			t->tail_last = NULL;
		tail_free(h);
		if (!o)
			break;
	}
}

static void on_commit(void *arg, int err, uint64_t version)
{
	struct tier *t = arg;

	if (err == SL_E_EXISTS) {
		t->stats.fenced = 1;
		t->phase = P_IDLE;
		log_error(TAG, "another writer committed manifest version %" PRIu64 " first: this broker "
			  "is fenced and uploads nothing more; its WAL keeps what it holds and produce "
			  "fails once it is full", t->m->version + 1);
		return;
	}
	if (err) {
		t->stats.commit_failures++;
		t->failures++;
		uint64_t ms = backoff(t->failures);
		if (t->failures == 1 || t->failures % 10 == 0)
			log_warn(TAG, "committing manifest version %" PRIu64 " failed: %s; retrying in "
				 "%" PRIu64 " ms", t->m->version + 1, sl_strerror(err), ms);
		loop_timer_set(t->l, &t->retry, ms);
		return;
	}
	t->failures = 0;
	t->stats.commits++;
	t->commit_pos_set = 0;
	for (size_t i = 0; i < t->nr; i++) {
		struct stream *s = store_stream(t->st, &t->r[i].id, 0);
		if (s && t->r[i].last + 1 > stream_up(s))
			stream_set_up(s, t->r[i].last + 1);
	}
	trim(t);
	if (t->nr)
		tail_push(t);
	t->nr = 0;
	t->raw = 0;
	t->phase = P_IDLE;
	if (store_uncut(t->st) >= t->o.upload_bytes)
		loop_defer(t->l, &t->kick);
}

static void cycle(struct tier *t)
{
	if (!t->started || t->stats.fenced || t->phase != P_IDLE || loop_timer_armed(&t->retry))
		return;
	int rc = cut(t);
	if (rc > 0) {
		build_start(t);
		return;
	}
	if (rc < 0) {
		t->failures++;
		loop_timer_set(t->l, &t->retry, backoff(t->failures));
		return;
	}
	if (manifest_pending(t->m) > 0 || t->m->w.obj || t->m->version == 0 ||
	    t->m->epoch < t->epoch || (t->global_dirty && t->hooks.global))
		commit(t);
}

static void on_retry(struct loop *l, void *arg)
{
	struct tier *t = arg;

	switch (t->phase) {
	case P_BUILD:
		build_start(t);
		break;
	case P_PUT:
		put(t);
		break;
	case P_COMMIT:
		commit(t);
		break;
	case P_IDLE:
		cycle(t);
		break;
	}
}

static void on_tick(struct loop *l, void *arg)
{
	struct tier *t = arg;

	loop_timer_set(l, &t->tick, t->o.upload_interval_ms);
	cycle(t);
}

static void on_kick(struct loop *l, void *arg)
{
	cycle(arg);
}

/* ---- the collector ---- */

static void on_gc_deleted(void *arg, struct objstore_result *res)
{
	struct tier *t = arg;

	t->gc_op = NULL;
	if (res->err)
		log_warn(TAG, "collector: deleting %zu keys failed: %s", t->gc.ndelete, sl_strerror(res->err));
	else
		t->stats.gc_deleted += res->ndeleted;
	for (size_t i = 0; i < res->nkey_errors; i++)
		log_warn(TAG, "collector: cannot delete %s: %s %s", res->key_errors[i].key,
			 res->key_errors[i].code, res->key_errors[i].message);
	manifest_gc_free(&t->gc);
	t->gc_have_plan = 0;
	loop_timer_set(t->l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
}

static void on_gc_list(void *arg, struct objstore_result *res)
{
	struct tier *t = arg;
	char why[256];

	t->gc_op = NULL;
	if (res->err) {
		log_warn(TAG, "collector: cannot list %s: %s", objstore_name(t->os),
			 result_text(res, why, sizeof(why)));
		loop_timer_set(t->l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
		return;
	}
	int rc = manifest_gc_plan(t->m, res->entries, res->nentries, "data/", loop_wall_ms(),
				  t->o.gc_grace_ms, &t->gc);
	if (rc != 0) {
		loop_timer_set(t->l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
		return;
	}
	t->gc_have_plan = 1;
	for (size_t i = 0; i < t->gc.nforget; i++) {
		rc = manifest_forget(t->m, t->gc.forget_keys[i]);
		if (rc != 0 && rc != SL_E_NOTFOUND)
			edit_failed(t, "forget", rc);
	}
	if (t->gc.ndelete == 0) {
		manifest_gc_free(&t->gc);
		t->gc_have_plan = 0;
		loop_timer_set(t->l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
		return;
	}
	log_info(TAG, "collector: deleting %zu keys from %s", t->gc.ndelete, objstore_name(t->os));
	rc = objstore_delete_many(t->os, (const char *const *)t->gc.delete_keys, t->gc.ndelete,
				  on_gc_deleted, t, &t->gc_op);
	if (rc != 0) {
		t->gc_op = NULL;
		manifest_gc_free(&t->gc);
		t->gc_have_plan = 0;
		loop_timer_set(t->l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
	}
}

static void on_gc_timer(struct loop *l, void *arg)
{
	struct tier *t = arg;

	if (t->stats.fenced)
		return;
	if (objstore_list(t->os, NULL, on_gc_list, t, &t->gc_op) != 0) {
		t->gc_op = NULL;
		loop_timer_set(l, &t->gc_timer, (uint64_t)t->o.gc_interval_ms);
	}
}

/* ---- compaction ---- */

/* One input object of a merge. */
struct cobj {
	uint64_t id;
	char *key;
	uint64_t size;
	int64_t created;
	uint8_t *body;
	size_t len;
};

/* One partition's part of a merge: the ranges [first, last] it replaces, as (object, from, to). */
struct cpart {
	struct stream_id id;
	int64_t first, last, max_ts;
	uint32_t piece0, npieces;
	uint64_t pos, len;		/* in the merged object */
};

struct cpiece {
	uint32_t obj;			/* index into cobj */
	int64_t first, last;
};

struct compaction {
	struct worker_job job;
	struct tier *t;
	struct cobj *o;
	size_t no;
	struct cpart *p;
	size_t np;
	struct cpiece *pc;
	size_t npc;
	size_t next_get;
	struct objstore_op *op;
	struct obj_meta meta;
	char key[OBJ_KEY_LEN + 1];
	uint8_t *obj;
	size_t objlen;
	int err;
	int in_worker;
};

static void compact_arm(struct tier *t, uint64_t ms)
{
	if (t->o.compaction_interval_ms > 0 && !t->stats.fenced)
		loop_timer_set(t->l, &t->compact_timer, ms);
}

static void compaction_free(struct compaction *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->no; i++) {
		free(c->o[i].key);
		free(c->o[i].body);
	}
	free(c->o);
	free(c->p);
	free(c->pc);
	free(c->obj);
	free(c);
}

/* Bytes moved by c: what it read and wrote, for the rate limit. */
static uint64_t compaction_bytes(const struct compaction *c)
{
	uint64_t b = c->objlen;

	for (size_t i = 0; i < c->no; i++)
		b += c->o[i].size;
	return b;
}

static void compaction_end(struct tier *t, int ok)
{
	struct compaction *c = t->cp;
	uint64_t moved = compaction_bytes(c);
	uint64_t wait = t->o.compaction_rate ? moved * 1000 / t->o.compaction_rate : 0;

	if (!ok)
		t->stats.compaction_aborts++;
	t->cp = NULL;
	compaction_free(c);
	compact_arm(t, wait > (uint64_t)t->o.compaction_interval_ms ? wait
			: (uint64_t)t->o.compaction_interval_ms);
}

static int cmp_created(const void *a, const void *b)
{
	const struct mf_object *x = *(const struct mf_object *const *)a;
	const struct mf_object *y = *(const struct mf_object *const *)b;

	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_part(const void *a, const void *b)
{
	return cmp_id(&((const struct cpart *)a)->id, &((const struct cpart *)b)->id);
}

static int in_set(const struct compaction *c, uint64_t id)
{
	for (size_t i = 0; i < c->no; i++)
		if (c->o[i].id == id)
			return (int)i;
	return -1;
}

/*
 * Choose what to merge: the oldest run of small objects, and for each
 * partition with ranges in them the run of its ranges they hold, which
 * must be contiguous for one REPLACE to swap it.  0 and a plan in c, or
 * SL_E_NOTFOUND when there is nothing worth merging.
 */
static int compaction_plan(struct tier *t, struct compaction *c)
{
	const struct manifest *m = t->m;
	const struct mf_object **all;
	size_t small = t->o.upload_bytes / 2, start = 0, n = 0;
	uint64_t total = 0;

	if (m->nobjects < 2)
		return SL_E_NOTFOUND;
	if (!(all = malloc(m->nobjects * sizeof(*all))))
		return SL_E_NOMEM;
	for (size_t i = 0; i < m->nobjects; i++)
		all[i] = &m->objects[i];
	qsort(all, m->nobjects, sizeof(*all), cmp_created);
	for (size_t i = 0; i < m->nobjects; i++) {
		if (all[i]->size >= small || total + all[i]->size > t->o.upload_bytes || n == 64) {
			if (n >= 2)
				break;
			start = i + 1;
			n = 0;
			total = 0;
			if (all[i]->size >= small)
				continue;
			start = i;
		}
		n++;
		total += all[i]->size;
	}
	if (n < 2) {
		free(all);
		return SL_E_NOTFOUND;
	}
	c->o = calloc(n, sizeof(*c->o));
	if (!c->o) {
		free(all);
		return SL_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mf_object *o = all[start + i];
		c->o[i] = (struct cobj){ o->id, strdup(o->key), o->size, o->created_ms, NULL, 0 };
		c->no++;
		if (!c->o[i].key) {
			free(all);
			return SL_E_NOMEM;
		}
	}
	free(all);
	/* Per partition: the ranges in the set, which must be one contiguous run. */
	size_t capp = 0, cappc = 0;
	for (size_t ti = 0; ti < m->ntopics; ti++) {
		const struct mf_topic *mt = &m->topics[ti];
		for (int32_t pi = 0; pi < mt->npartitions; pi++) {
			const struct mf_partition *mp = &mt->parts[pi];
			size_t first = SIZE_MAX, last = 0;
			for (size_t r = 0; r < mp->nranges; r++) {
				if (in_set(c, mp->ranges[r].object) < 0)
					continue;
				if (first == SIZE_MAX)
					first = r;
				else if (r != last + 1)
					return SL_E_NOTFOUND;	/* not contiguous: not this run */
				last = r;
			}
			if (first == SIZE_MAX)
				continue;
			if (c->np == capp) {
				capp = capp ? capp * 2 : 16;
				struct cpart *np = realloc(c->p, capp * sizeof(*np));
				if (!np)
					return SL_E_NOMEM;
				c->p = np;
			}
			struct cpart *cp = &c->p[c->np++];
			memcpy(cp->id.ns, mt->id, 16);
			cp->id.index = pi;
			cp->first = mp->ranges[first].first;
			cp->last = mp->ranges[last].last;
			cp->max_ts = -1;
			cp->piece0 = (uint32_t)c->npc;
			cp->npieces = (uint32_t)(last - first + 1);
			for (size_t r = first; r <= last; r++) {
				if (c->npc == cappc) {
					cappc = cappc ? cappc * 2 : 64;
					struct cpiece *np = realloc(c->pc, cappc * sizeof(*np));
					if (!np)
						return SL_E_NOMEM;
					c->pc = np;
				}
				c->pc[c->npc++] = (struct cpiece){ (uint32_t)in_set(c, mp->ranges[r].object),
								    mp->ranges[r].first, mp->ranges[r].last };
				if (mp->ranges[r].max_ts > cp->max_ts)
					cp->max_ts = mp->ranges[r].max_ts;
			}
		}
	}
	if (c->np == 0)
		return SL_E_NOTFOUND;
	qsort(c->p, c->np, sizeof(*c->p), cmp_part);
	return 0;
}

/* On the worker: decode the pieces' batches from the inputs and pack them into one object. */
static void compaction_run(struct worker_job *j)
{
	struct compaction *c = (struct compaction *)j;
	struct obj_footer *f = calloc(c->no, sizeof(*f));
	struct obj_index *ix = calloc(c->no, sizeof(*ix));
	struct obj_writer w;
	struct obj_writer_opts wo = { .comp = c->t->o.comp };
	int rc = f && ix ? obj_writer_init(&w, &wo) : SL_E_NOMEM;
	size_t parsed = 0;

	if (rc != 0) {
		free(f);
		free(ix);
		c->err = rc;
		return;
	}
	for (; rc == 0 && parsed < c->no; parsed++)
		rc = obj_parse(c->o[parsed].body, c->o[parsed].len, &f[parsed], &ix[parsed]);
	if (rc != 0)
		parsed--;
	for (size_t pi = 0; rc == 0 && pi < c->np; pi++) {
		const struct cpart *cp = &c->p[pi];
		for (uint32_t k = 0; rc == 0 && k < cp->npieces; k++) {
			const struct cpiece *pc = &c->pc[cp->piece0 + k];
			const struct obj_index *x = &ix[pc->obj];
			int si = obj_find_stream(x, &cp->id);
			if (si < 0)
				continue;	/* a range over a gap: no batches */
			const struct obj_stream *os = &x->streams[si];
			for (uint32_t b = os->block0; rc == 0 && b < os->block0 + os->nblocks; b++) {
				const struct obj_block *bl = &x->blocks[b];
				struct obj_block_data d;
				struct sl_rd it;
				struct obj_batch bt;
				rc = obj_block_decode(bl, c->o[pc->obj].body + bl->pos, bl->stored,
						      OBJ_BLOCK_MAX, &d);
				if (rc != 0)
					break;
				obj_batch_iter(&it, &d);
				while (rc == 0 && obj_batch_next(&it, &bt) == 1) {
					if (bt.base + bt.count - 1 < pc->first || bt.base > pc->last)
						continue;
					rc = obj_writer_add(&w, &cp->id, bt.base, bt.count, bt.max_ts,
							    bt.bytes.p, bt.bytes.len);
				}
				obj_block_data_free(&d);
			}
		}
	}
	if (rc == 0)
		rc = obj_writer_finish(&w, &c->meta, &c->obj, &c->objlen);
	obj_writer_free(&w);
	/* Where each partition landed, for the ranges' position and length. */
	struct obj_footer nf;
	struct obj_index nix;
	if (rc == 0 && obj_parse(c->obj, c->objlen, &nf, &nix) == 0) {
		for (size_t pi = 0; pi < c->np; pi++) {
			int si = obj_find_stream(&nix, &c->p[pi].id);
			if (si < 0)
				continue;
			const struct obj_stream *os = &nix.streams[si];
			const struct obj_block *b0 = &nix.blocks[os->block0];
			const struct obj_block *bn = &nix.blocks[os->block0 + os->nblocks - 1];
			c->p[pi].pos = b0->pos;
			c->p[pi].len = bn->pos + bn->stored - b0->pos;
		}
		obj_index_free(&nix);
	}
	for (size_t i = 0; i < parsed; i++)
		obj_index_free(&ix[i]);
	free(f);
	free(ix);
	c->err = rc;
}

/* The plan still holds: each partition's ranges [first, last] are still those of the inputs. */
static int compaction_valid(struct tier *t, const struct compaction *c)
{
	for (size_t i = 0; i < c->np; i++) {
		const struct cpart *cp = &c->p[i];
		const struct mf_partition *mp = manifest_partition(t->m, cp->id.ns, cp->id.index);
		const struct mf_range *r = mp ? manifest_range_find(mp, cp->first) : NULL;
		if (!r || r->first != cp->first)
			return 0;
		size_t at = (size_t)(r - mp->ranges);
		for (uint32_t k = 0; k < cp->npieces; k++, at++) {
			const struct cpiece *pc = &c->pc[cp->piece0 + k];
			if (at >= mp->nranges || mp->ranges[at].first != pc->first ||
			    mp->ranges[at].last != pc->last ||
			    mp->ranges[at].object != c->o[pc->obj].id)
				return 0;
		}
	}
	return 1;
}

static void compaction_put_done(void *arg, struct objstore_result *res)
{
	struct tier *t = arg;
	struct compaction *c = t->cp;
	int64_t now = loop_wall_ms();
	uint64_t oid;
	char why[256];

	c->op = NULL;
	if (res->err) {
		log_warn(TAG, "compaction: uploading %s failed: %s; dropped", c->key,
			 result_text(res, why, sizeof(why)));
		compaction_end(t, 0);
		return;
	}
	if (t->stats.fenced || !compaction_valid(t, c)) {
		log_info(TAG, "compaction: the manifest moved on (retention, a deleted topic); %s is "
			 "left for the collector", c->key);
		compaction_end(t, 0);
		return;
	}
	int rc = manifest_object_add(t->m, c->key, c->objlen, c->meta.created_ms, &oid);
	for (size_t i = 0; rc == 0 && i < c->np; i++) {
		const struct cpart *cp = &c->p[i];
		struct mf_range r = { oid, cp->first, cp->last, cp->max_ts, cp->pos, cp->len };
		rc = manifest_range_replace(t->m, cp->id.ns, cp->id.index, &r, now);
	}
	if (rc != 0) {
		edit_failed(t, "compaction", rc);
		compaction_end(t, 0);
		return;
	}
	t->stats.compactions++;
	t->stats.compacted_objects += c->no;
	log_info(TAG, "compaction: %zu objects (%" PRIu64 " bytes) merged into %s (%zu bytes)", c->no,
		 compaction_bytes(c) - c->objlen, c->key, c->objlen);
	compaction_end(t, 1);
	cycle(t);	/* commit the swap soon */
}

static void compaction_built(struct worker_job *j)
{
	struct compaction *c = (struct compaction *)j;
	struct tier *t = c->t;

	c->in_worker = 0;
	if (c->err) {
		log_warn(TAG, "compaction: cannot merge %zu objects: %s; dropped", c->no, sl_strerror(c->err));
		compaction_end(t, 0);
		return;
	}
	for (size_t i = 0; i < c->no; i++) {
		free(c->o[i].body);
		c->o[i].body = NULL;
	}
	if (objstore_put(t->os, c->key, c->obj, c->objlen, compaction_put_done, t, &c->op) != 0) {
		c->op = NULL;
		compaction_end(t, 0);
	}
}

static void compaction_get(struct tier *t);

static void compaction_got(void *arg, struct objstore_result *res)
{
	struct tier *t = arg;
	struct compaction *c = t->cp;
	char why[256];

	c->op = NULL;
	if (res->err) {
		log_warn(TAG, "compaction: reading %s failed: %s; dropped", c->o[c->next_get].key,
			 result_text(res, why, sizeof(why)));
		compaction_end(t, 0);
		return;
	}
	c->o[c->next_get].body = objstore_result_take_body(res, &c->o[c->next_get].len);
	c->next_get++;
	compaction_get(t);
}

static void compaction_get(struct tier *t)
{
	struct compaction *c = t->cp;

	if (c->next_get < c->no) {
		if (objstore_get(t->os, c->o[c->next_get].key, NULL, compaction_got, t, &c->op) != 0) {
			c->op = NULL;
			compaction_end(t, 0);
		}
		return;
	}
	c->meta.node = t->o.node;
	c->meta.epoch = t->epoch;
	c->meta.seq = t->seq++;
	if (getrandom(&c->meta.nonce, sizeof(c->meta.nonce), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->meta.nonce))
		c->meta.nonce = (uint64_t)loop_now_ms(t->l) * 0x9e3779b97f4a7c15ULL ^ c->meta.seq;
	/* The merged data is as old as its oldest input: keep creation order meaningful. */
	c->meta.created_ms = c->o[0].created;
	for (size_t i = 1; i < c->no; i++)
		if (c->o[i].created < c->meta.created_ms)
			c->meta.created_ms = c->o[i].created;
	if (obj_key(c->key, sizeof(c->key), &c->meta) < 0) {
		compaction_end(t, 0);
		return;
	}
	c->job.run = compaction_run;
	c->job.done = compaction_built;
	c->in_worker = 1;
	worker_submit(t->wk, &c->job);
}

static void compaction_cancel(struct tier *t)
{
	if (t->cp && t->cp->op) {
		objstore_cancel(t->os, t->cp->op);
		t->cp->op = NULL;
	}
}

static void on_compact_timer(struct loop *l, void *arg)
{
	struct tier *t = arg;
	struct compaction *c;

	if (!t->started || t->stats.fenced || t->cp)
		return;
	if (!(c = calloc(1, sizeof(*c)))) {
		compact_arm(t, (uint64_t)t->o.compaction_interval_ms);
		return;
	}
	c->t = t;
	int rc = compaction_plan(t, c);
	if (rc != 0) {
		if (rc != SL_E_NOTFOUND)
			log_warn(TAG, "compaction: cannot plan: %s", sl_strerror(rc));
		compaction_free(c);
		compact_arm(t, (uint64_t)t->o.compaction_interval_ms);
		return;
	}
	t->cp = c;
	compaction_get(t);
}

/* ---- reads ---- */

/* Where offset of s is: the object and its range, or NULL. */
static const struct mf_range *locate(struct tier *t, struct stream *s, int64_t offset,
				     struct rcache_where *w)
{
	const struct stream_id *id = stream_id_of(s);
	const struct mf_partition *p;
	const struct mf_range *r;
	const struct mf_object *o;

	if (!t || !t->m || !(p = manifest_partition(t->m, id->ns, id->index)) ||
	    !(r = manifest_range_find(p, offset)) || !(o = manifest_object(t->m, r->object)))
		return NULL;
	w->key = o->key;
	w->size = o->size;
	w->id = *id;
	w->offset = offset;
	return r;
}

int tier_read(struct tier *t, struct stream *s, int64_t offset, size_t max_bytes, int min_one,
	      struct span *spans, int maxspans, size_t *total)
{
	struct rcache_where w;
	const struct mf_range *r = locate(t, s, offset, &w);
	int64_t next;

	*total = 0;
	if (!r)
		return SL_E_NOTFOUND;
	int n = rcache_read(t->rc, &w, max_bytes, min_one, spans, maxspans, total, &next);
	if (n > 0) {
		/*
		 * A consumer reading on: have what follows on the way (a
		 * prefetch never evicts, so the spans above stay valid).
		 */
		struct rcache_where nw;
		const struct mf_range *nr = next > r->last ? locate(t, s, r->last + 1, &nw)
							  : locate(t, s, next, &nw);
		if (nr)
			rcache_prefetch(t->rc, &nw, PREFETCH_BYTES);
	}
	return n;
}

static void on_fetched(void *arg, int err)
{
	struct tier_fetch *f = arg;

	f->fn(f->arg, err);
}

int tier_fetch(struct tier *t, struct stream *s, int64_t offset, size_t want_bytes,
	       tier_fetch_fn fn, void *arg, struct tier_fetch **h)
{
	struct rcache_where w;

	if (!locate(t, s, offset, &w))
		return SL_E_NOTFOUND;
	struct tier_fetch *f = calloc(1, sizeof(*f));
	if (!f)
		return SL_E_NOMEM;
	f->t = t;
	f->fn = fn;
	f->arg = arg;
	const struct mf_range *r = locate(t, s, offset, &w);
	int rc = rcache_load(t->rc, &w, want_bytes, on_fetched, f, &f->pin);
	if (rc != 0) {
		free(f);
		return rc;
	}
	*h = f;
	/* A consumer reading on will want the next object's first blocks. */
	struct rcache_where nw;
	if (r && locate(t, s, r->last + 1, &nw))
		rcache_prefetch(t->rc, &nw, want_bytes);
	return 0;
}

void tier_fetch_done(struct tier *t, struct tier_fetch *h)
{
	if (!h)
		return;
	rcache_unpin(t->rc, h->pin);
	free(h);
}

/* ---- what a partition holds ---- */

struct chunk_walk {
	tier_chunk_fn fn;
	void *arg;
	int stop;
};

static int chunk_of_batch(void *arg, const struct stream_batch *b)
{
	struct chunk_walk *cw = arg;
	struct tier_chunk c = { b->base, b->base + b->count - 1, b->max_ts, b->bytes.len };

	cw->stop = cw->fn(cw->arg, &c);
	return cw->stop;
}

void tier_chunks(struct tier *t, struct stream *s, tier_chunk_fn fn, void *arg)
{
	struct chunk_walk cw = { fn, arg, 0 };
	int64_t from = stream_start(s);
	const struct stream_id *id = stream_id_of(s);
	const struct mf_partition *p = t && t->m ? manifest_partition(t->m, id->ns, id->index) : NULL;

	if (p) {
		for (size_t i = 0; i < p->nranges; i++) {
			const struct mf_range *r = &p->ranges[i];
			const struct mf_object *o = manifest_object(t->m, r->object);
			if (r->last < from)
				continue;
			struct tier_chunk c = { r->first, r->last, r->max_ts,
						r->len ? r->len : o ? o->size : 0 };
			if (fn(arg, &c))
				return;
		}
		if (p->end > from)
			from = p->end;
	}
	stream_foreach(s, from, chunk_of_batch, &cw);
}

struct rcache *tier_rcache(struct tier *t)
{
	return t ? t->rc : NULL;
}

void tier_stats(const struct tier *t, struct tier_stats *st)
{
	*st = t->stats;
}
