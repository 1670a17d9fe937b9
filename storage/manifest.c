/*
 * manifest.c - the manifest: the model, its encoding, the commit protocol
 * on the object store, the loader and the collector (see manifest.h; the
 * bytes are in docs/FORMAT.md, "The manifest").
 *
 * Owns: the state of one manifest, the writer's pending operations and the
 * version being put, and a loader's progress.
 *
 * ONE DECODER.  A version object is a header and a list of operations.  A
 * checkpoint is the list that rebuilds the whole state from nothing; a
 * delta is the list that turns version N-1's state into N's.  The same
 * function (apply_op) applies an operation whether it came from the store
 * or from an edit: an edit is encoded first and the encoded bytes are
 * applied, so what a writer commits is exactly what it applied, and every
 * edit path is also a decode path the fuzzer reaches.  apply_op checks
 * everything before it changes anything, so an operation either applies
 * whole or not at all.
 *
 * INVARIANTS of the state (manifest_check tests them all):
 *   1. Topic ids and names are unique; topics are sorted by id.
 *   2. A partition's ranges are contiguous and in order (range i+1 starts
 *      at range i's last + 1); with ranges, the last one ends at end - 1 and
 *      the first holds the log start; without, log start >= end.
 *   3. Every range names an object of the table; an object's refs is the
 *      number of ranges naming it; after a whole version (or a commit) no
 *      object has refs 0: the operation that drops an object's last
 *      reference is followed, in the same version, by one retiring it.
 *   4. Object keys are unique among objects and retired keys together: a
 *      key the manifest knows is refused (SL_E_EXISTS).  Once a retired key
 *      is forgotten the manifest cannot tell, so the uploader's names must
 *      never repeat (put the object id, node and epoch in them).  Object ids
 *      only grow (next_object_id).
 *   5. Versions follow each other: delta N has N-1's CRC, the same
 *      checkpoint, and a writer epoch not lower than N-1's.
 *
 * THE COMMIT PROTOCOL, and why a crash leaves the old or the new state:
 *
 *   1. Data first.  A data object is uploaded (PUT, complete or absent,
 *      never half visible) before any version names it.  A crash before the
 *      version leaves an object nobody references: garbage for the
 *      collector, never a reference to nothing.
 *   2. One object per version.  Version N is one object created whole by
 *      put-if-absent: a reader sees all of N's operations or none.  Readers
 *      take the highest version listed, so a crash before N exists leaves
 *      N-1 in force, and after, N.
 *   3. Then the WAL.  The WAL (DESIGN.md, Durability) is trimmed up to what
 *      version N covers only after N's commit callback reports success.  A
 *      crash in between replays the WAL over N: batches already in N's
 *      ranges are below the partitions' end and are dropped by replay.
 *   4. Deletion last.  An object leaves the store only after it has left
 *      the manifest (retired by a committed version) and a grace period
 *      has passed, so a reader still holding an older version, or an upload
 *      whose version is still being committed, finds what it needs.
 *   5. One writer per version.  put-if-absent lets exactly one writer create
 *      version N+1.  A writer only writes the version after one it loaded
 *      or wrote itself, so its operations always apply to the state they
 *      were made on; a writer that loses (SL_E_EXISTS) is fenced and must
 *      reload.  A new writer claims the manifest by committing a version
 *      with a higher epoch; an older writer's next version number is then
 *      taken, so it is fenced at its next commit.  A commit whose answer was
 *      lost is sent again with the same bytes, and put-if-absent counts the
 *      same bytes as success (objstore.h), so a writer is never fenced by
 *      its own version; the writer's node, epoch and commit time in every
 *      header keep two writers' versions from ever being the same bytes.
 *
 * The commit states of the writer:
 *
 *   IDLE --commit: encode pending (or checkpoint)--> PUTTING
 *   PUTTING --0--> IDLE (version committed, pending cleared)
 *           --SL_E_EXISTS--> FENCED (edits and commits refused)
 *           --other--> RETRY (the encoded version is kept)
 *   RETRY --commit--> PUTTING (the same bytes, the same version)
 *
 * The loader:
 *
 *   LIST manifest/ --none--> done (empty manifest)
 *     `--newest N--> GET N --checkpoint--> apply N, done
 *                      `--delta (names C)--> GET C, apply, GET C+1, apply, ...,
 *                                            apply N, done
 *   A version missing on the way (the collector removed it after a newer
 *   checkpoint): start again, at most 3 times.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "manifest.h"
#include "../kernel/crc32c.h"
#include "../kernel/log.h"

#define TAG "manifest"

static const char magic[8] = { 'S', 'L', 'U', 'I', 'C', 'E', 'M', 'F' };

enum {
	OP_CLUSTER = 1,
	OP_TOPIC,
	OP_TOPIC_DELETE,
	OP_PARTITION,
	OP_OBJECT,
	OP_APPEND,
	OP_REPLACE,
	OP_LOG_START,
	OP_RETIRE,
	OP_RETIRED,
	OP_FORGET,
	OP_OFFSET,
	OP_OFFSET_DELETE,
	OP_GROUP_DELETE,
	OP_PRODUCERS,
	OP_STATE,
	OP_END
};

#define BIT(op) (1u << (op))
static const uint32_t allowed[3] = {
	0,
	/* checkpoint */
	BIT(OP_CLUSTER) | BIT(OP_TOPIC) | BIT(OP_PARTITION) | BIT(OP_OBJECT) | BIT(OP_RETIRED) |
		BIT(OP_OFFSET) | BIT(OP_PRODUCERS) | BIT(OP_STATE),
	/* delta */
	BIT(OP_TOPIC) | BIT(OP_TOPIC_DELETE) | BIT(OP_OBJECT) | BIT(OP_APPEND) | BIT(OP_REPLACE) |
		BIT(OP_LOG_START) | BIT(OP_RETIRE) | BIT(OP_FORGET) | BIT(OP_OFFSET) |
		BIT(OP_OFFSET_DELETE) | BIT(OP_GROUP_DELETE) | BIT(OP_PRODUCERS) | BIT(OP_STATE),
};

#define RANGE_LEN	48	/* encoded mf_range */
#define OP_HEAD		5	/* type, length */
#define DEF_EVERY	64
#define DEF_MIN_BYTES	(1u << 20)
#define LOAD_TRIES	3

/* ---- a set of strings: open addressing, FNV-1a, tombstones ---- */

static const char tomb_mark;
#define TOMB (&tomb_mark)

static uint64_t fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* The slot holding s, or (size_t)-1. */
static size_t ss_find(const struct mf_strset *ss, const char *s)
{
	size_t i, mask;

	if (!ss->cap)
		return (size_t)-1;
	mask = ss->cap - 1;
	for (i = fnv(s) & mask; ss->k[i]; i = (i + 1) & mask)
		if (ss->k[i] != TOMB && strcmp(ss->k[i], s) == 0)
			return i;
	return (size_t)-1;
}

static int ss_get(const struct mf_strset *ss, const char *s)
{
	size_t i = ss_find(ss, s);

	return i == (size_t)-1 ? 0 : ss->v[i];
}

/* Room for one more key: the only step that can fail. */
static int ss_reserve(struct mf_strset *ss)
{
	size_t cap = 16, i, j, mask;
	const char **k;
	uint8_t *v;

	if ((ss->used + 1) * 4 <= ss->cap * 3)
		return 0;
	while (cap < (ss->n + 1) * 2)
		cap *= 2;
	k = calloc(cap, sizeof(*k));
	v = calloc(cap, 1);
	if (!k || !v) {
		free(k);
		free(v);
		return SL_E_NOMEM;
	}
	mask = cap - 1;
	for (i = 0; i < ss->cap; i++) {
		if (!ss->k[i] || ss->k[i] == TOMB)
			continue;
		for (j = fnv(ss->k[i]) & mask; k[j]; j = (j + 1) & mask)
			;
		k[j] = ss->k[i];
		v[j] = ss->v[i];
	}
	free(ss->k);
	free(ss->v);
	ss->k = k;
	ss->v = v;
	ss->cap = cap;
	ss->used = ss->n;
	return 0;
}

/* Add s (not present; borrowed: the caller keeps it alive) after ss_reserve. */
static void ss_add(struct mf_strset *ss, const char *s, uint8_t val)
{
	size_t mask = ss->cap - 1, i;

	for (i = fnv(s) & mask; ss->k[i] && ss->k[i] != TOMB; i = (i + 1) & mask)
		;
	if (!ss->k[i])
		ss->used++;
	ss->k[i] = s;
	ss->v[i] = val;
	ss->n++;
}

static void ss_del(struct mf_strset *ss, const char *s)
{
	size_t i = ss_find(ss, s);

	if (i == (size_t)-1)
		return;
	ss->k[i] = TOMB;
	ss->n--;
}

static void ss_set(struct mf_strset *ss, const char *s, uint8_t val)
{
	size_t i = ss_find(ss, s);

	if (i != (size_t)-1)
		ss->v[i] = val;
}

static void ss_free(struct mf_strset *ss)
{
	free(ss->k);
	free(ss->v);
	memset(ss, 0, sizeof(*ss));
}

/* ---- small helpers ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (!p)
		return SL_E_NOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

/* A string with a u16 length of min..max bytes, no NUL; *out is malloc()ed. */
static int rd_str(struct sl_rd *r, size_t min, size_t max, char **out)
{
	const uint8_t *p;
	uint16_t n;

	*out = NULL;
	if (rd_u16(r, &n) != 0 || n < min || n > max || rd_bytes(r, n, &p) != 0 ||
	    memchr(p, 0, n))
		return SL_E_INVALID;
	*out = malloc((size_t)n + 1);
	if (!*out)
		return SL_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	return 0;
}

/* A nullable string with an i32 length (-1: null) of at most max bytes. */
static int rd_nstr(struct sl_rd *r, size_t max, char **out)
{
	const uint8_t *p;
	int32_t n;

	*out = NULL;
	if (rd_i32(r, &n) != 0)
		return SL_E_INVALID;
	if (n == -1)
		return 0;
	if (n < 0 || (size_t)n > max || rd_bytes(r, (size_t)n, &p) != 0 || memchr(p, 0, (size_t)n))
		return SL_E_INVALID;
	*out = malloc((size_t)n + 1);
	if (!*out)
		return SL_E_NOMEM;
	memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	return 0;
}

static void wr_str(struct sl_wr *w, const char *s)
{
	size_t n = strlen(s);

	if (n > UINT16_MAX) {
		if (!w->err)
			w->err = SL_E_TOOBIG;
		return;
	}
	wr_u16(w, (uint16_t)n);
	wr_bytes(w, s, n);
}

static void wr_nstr(struct sl_wr *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (s && n > MF_VALUE_MAX) {
		if (!w->err)
			w->err = SL_E_TOOBIG;
		return;
	}
	wr_i32(w, s ? (int32_t)n : -1);
	if (s)
		wr_bytes(w, s, n);
}

static int rd_range(struct sl_rd *r, struct mf_range *g)
{
	if (rd_u64(r, &g->object) != 0 || rd_i64(r, &g->first) != 0 || rd_i64(r, &g->last) != 0 ||
	    rd_i64(r, &g->max_ts) != 0 || rd_u64(r, &g->pos) != 0 || rd_u64(r, &g->len) != 0)
		return SL_E_INVALID;
	return 0;
}

static int range_ok(const struct mf_range *g)
{
	return g->first >= 0 && g->first <= g->last && g->last < INT64_MAX && g->max_ts >= -1 &&
	       g->len <= UINT64_MAX - g->pos;
}

static void wr_range(struct sl_wr *w, const struct mf_range *g)
{
	wr_u64(w, g->object);
	wr_i64(w, g->first);
	wr_i64(w, g->last);
	wr_i64(w, g->max_ts);
	wr_u64(w, g->pos);
	wr_u64(w, g->len);
}

/* Start an operation: its type and a length patched by op_end. */
static size_t op_begin(struct sl_wr *w, uint8_t type)
{
	size_t at = 0;

	wr_u8(w, type);
	wr_reserve(w, 4, &at);
	return at;
}

static void op_end(struct sl_wr *w, size_t at)
{
	if (!w->err)
		wr_patch_u32(w, at, (uint32_t)(w->len - at - 4));
}

/* ---- lookups ---- */

static struct mf_topic *topic_find(const struct manifest *m, const uint8_t id[16], size_t *at)
{
	size_t lo = 0, hi = m->ntopics;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(m->topics[mid].id, id, 16);

		if (c == 0) {
			if (at)
				*at = mid;
			return &m->topics[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return NULL;
}

static struct mf_object *object_find(const struct manifest *m, uint64_t id, size_t *at)
{
	size_t lo = 0, hi = m->nobjects;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->objects[mid].id == id) {
			if (at)
				*at = mid;
			return &m->objects[mid];
		}
		if (m->objects[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return NULL;
}

/* Index of key in retired, or where it would go (*found 0). */
static size_t retired_find(const struct manifest *m, const char *key, int *found)
{
	size_t lo = 0, hi = m->nretired;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->retired[mid].key, key);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int offset_cmp(const struct mf_offset *o, const char *g, const char *t, int32_t p)
{
	int c = strcmp(o->group, g);

	if (c == 0)
		c = strcmp(o->topic, t);
	if (c == 0)
		c = o->partition < p ? -1 : o->partition > p;
	return c;
}

/* First index whose (group, topic, partition) is not below the key. */
static size_t offset_lower(const struct manifest *m, const char *g, const char *t, int32_t p)
{
	size_t lo = 0, hi = m->noffsets;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (offset_cmp(&m->offsets[mid], g, t, p) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct mf_partition *part_find(const struct manifest *m, const uint8_t id[16], int32_t p)
{
	struct mf_topic *t = topic_find(m, id, NULL);

	if (!t || p < 0 || p >= t->npartitions)
		return NULL;
	return &t->parts[p];
}

/* ---- references ---- */

static void obj_ref(struct manifest *m, uint64_t id)
{
	struct mf_object *o = object_find(m, id, NULL);

	SL_ASSERT(o != NULL);
	o->refs++;
}

static void obj_unref(struct manifest *m, uint64_t id)
{
	struct mf_object *o = object_find(m, id, NULL);

	SL_ASSERT(o != NULL && o->refs > 0);
	if (--o->refs > 0)
		return;
	/* Best effort: a commit retires whatever is left unreferenced anyway. */
	if (grow((void **)&m->zeroed, &m->capzeroed, m->nzeroed + 1, sizeof(*m->zeroed)) == 0)
		m->zeroed[m->nzeroed++] = id;
}

/* Drop the ranges wholly below offset x. */
static void part_drop_below(struct manifest *m, struct mf_partition *p, int64_t x)
{
	size_t k = 0;

	while (k < p->nranges && p->ranges[k].last < x)
		obj_unref(m, p->ranges[k++].object);
	if (k) {
		memmove(p->ranges, p->ranges + k, (p->nranges - k) * sizeof(*p->ranges));
		p->nranges -= k;
	}
}

static void part_clear(struct manifest *m, struct mf_partition *p)
{
	size_t k;

	for (k = 0; k < p->nranges; k++)
		obj_unref(m, p->ranges[k].object);
	free(p->ranges);
	free(p->state);
	memset(p, 0, sizeof(*p));
}

static void configs_free(struct mf_config *c, uint32_t n)
{
	uint32_t i;

	for (i = 0; c && i < n; i++) {
		free(c[i].key);
		free(c[i].value);
	}
	free(c);
}

static void offset_free(struct mf_offset *o)
{
	free(o->group);
	free(o->topic);
	free(o->metadata);
}

/* ---- applying one operation (checks first, then changes) ---- */

/* The version the operation goes into: retired keys remember it. */
struct actx {
	enum manifest_kind kind;
	uint64_t version;
};

static int ap_cluster(struct manifest *m, struct sl_rd *r)
{
	char *c = NULL;
	uint64_t next;
	int err = rd_str(r, 1, MF_CLUSTER_MAX, &c);

	if (!err && (rd_u64(r, &next) != 0 || rd_left(r) != 0))
		err = SL_E_INVALID;
	if (!err && m->cluster[0] && strcmp(m->cluster, c) != 0)
		err = SL_E_INVALID;
	if (!err) {
		memcpy(m->cluster, c, strlen(c) + 1);
		m->next_object_id = next;
	}
	free(c);
	return err;
}

static int ap_topic(struct manifest *m, struct sl_rd *r)
{
	uint8_t id[16];
	char *name = NULL;
	int32_t np;
	uint32_t nc = 0, i, j;
	struct mf_config *cf = NULL;
	struct mf_topic *t;
	struct mf_partition *parts;
	size_t at, total;
	int err;

	if (rd_copy(r, id, 16) != 0)
		return SL_E_INVALID;
	err = rd_str(r, 1, MF_TOPIC_MAX, &name);
	if (!err && (rd_i32(r, &np) != 0 || np < 1 || (uint32_t)np > MF_PARTITIONS_MAX ||
		     rd_u32(r, &nc) != 0 || nc > MF_CONFIGS_MAX || nc > rd_left(r) / 7))
		err = SL_E_INVALID;
	if (!err && nc && !(cf = calloc(nc, sizeof(*cf))))
		err = SL_E_NOMEM;
	for (i = 0; !err && i < nc; i++) {
		err = rd_str(r, 1, MF_CONFIG_KEY_MAX, &cf[i].key);
		if (!err)
			err = rd_nstr(r, MF_VALUE_MAX, &cf[i].value);
		for (j = 0; !err && j < i; j++)
			if (strcmp(cf[j].key, cf[i].key) == 0)
				err = SL_E_INVALID;	/* a key twice */
	}
	if (!err && rd_left(r) != 0)
		err = SL_E_INVALID;
	if (err)
		goto fail;
	t = topic_find(m, id, &at);
	if (t) {
		if (strcmp(t->name, name) != 0 || np < t->npartitions) {
			err = SL_E_INVALID;	/* renamed, or partitions shrinking */
			goto fail;
		}
		total = m->total_partitions - (size_t)t->npartitions + (size_t)np;
		if (total > MF_PARTITIONS_MAX) {
			err = SL_E_TOOBIG;
			goto fail;
		}
		if (np > t->npartitions) {
			parts = realloc(t->parts, (size_t)np * sizeof(*parts));
			if (!parts) {
				err = SL_E_NOMEM;
				goto fail;
			}
			memset(parts + t->npartitions, 0,
			       (size_t)(np - t->npartitions) * sizeof(*parts));
			t->parts = parts;
		}
		t->npartitions = np;
		m->total_partitions = total;
		configs_free(t->configs, t->nconfigs);
		t->configs = cf;
		t->nconfigs = nc;
		free(name);
		return 0;
	}
	if (ss_get(&m->names, name)) {
		err = SL_E_EXISTS;
		goto fail;
	}
	if (m->total_partitions + (size_t)np > MF_PARTITIONS_MAX) {
		err = SL_E_TOOBIG;
		goto fail;
	}
	parts = calloc((size_t)np, sizeof(*parts));
	if (!parts || ss_reserve(&m->names) != 0 ||
	    grow((void **)&m->topics, &m->captopics, m->ntopics + 1, sizeof(*m->topics)) != 0) {
		free(parts);
		err = SL_E_NOMEM;
		goto fail;
	}
	memmove(m->topics + at + 1, m->topics + at, (m->ntopics - at) * sizeof(*m->topics));
	t = &m->topics[at];
	memset(t, 0, sizeof(*t));
	memcpy(t->id, id, 16);
	t->name = name;
	t->npartitions = np;
	t->parts = parts;
	t->configs = cf;
	t->nconfigs = nc;
	m->ntopics++;
	m->total_partitions += (size_t)np;
	ss_add(&m->names, name, 1);
	return 0;
fail:
	free(name);
	configs_free(cf, nc);
	return err;
}

static int ap_topic_delete(struct manifest *m, struct sl_rd *r)
{
	uint8_t id[16];
	struct mf_topic *t;
	size_t at;
	int32_t p;

	if (rd_copy(r, id, 16) != 0 || rd_left(r) != 0)
		return SL_E_INVALID;
	t = topic_find(m, id, &at);
	if (!t)
		return SL_E_NOTFOUND;
	for (p = 0; p < t->npartitions; p++)
		part_clear(m, &t->parts[p]);
	ss_del(&m->names, t->name);
	free(t->name);
	free(t->parts);
	configs_free(t->configs, t->nconfigs);
	m->total_partitions -= (size_t)t->npartitions;
	memmove(m->topics + at, m->topics + at + 1, (m->ntopics - at - 1) * sizeof(*m->topics));
	m->ntopics--;
	return 0;
}

/* Invariant 2 for a whole partition. */
static int part_ok(const struct manifest *m, int64_t ls, int64_t end, const struct mf_range *g,
		   size_t n)
{
	size_t k;

	if (ls < 0 || end < 0)
		return 0;
	for (k = 0; k < n; k++) {
		if (!range_ok(&g[k]) || !object_find(m, g[k].object, NULL))
			return 0;
		if (k > 0 && g[k].first != g[k - 1].last + 1)
			return 0;
	}
	if (n == 0)
		return ls >= end;
	return g[n - 1].last + 1 == end && g[0].first <= ls && ls <= g[0].last;
}

static int ap_partition(struct manifest *m, struct sl_rd *r)
{
	uint8_t id[16];
	int32_t pi;
	int64_t ls, end;
	uint32_t n, k;
	struct mf_range *g = NULL;
	struct mf_partition *p;

	if (rd_copy(r, id, 16) != 0 || rd_i32(r, &pi) != 0 || rd_i64(r, &ls) != 0 ||
	    rd_i64(r, &end) != 0 || rd_u32(r, &n) != 0 || n > rd_left(r) / RANGE_LEN)
		return SL_E_INVALID;
	if (n && !(g = malloc((size_t)n * sizeof(*g))))
		return SL_E_NOMEM;
	for (k = 0; k < n; k++) {
		if (rd_range(r, &g[k]) != 0)
			goto bad;
	}
	if (rd_left(r) != 0)
		goto bad;
	p = part_find(m, id, pi);
	/* Each partition is set once, from its pristine state. */
	if (!p || p->nranges || p->log_start || p->end || !part_ok(m, ls, end, g, n))
		goto bad;
	for (k = 0; k < n; k++)
		obj_ref(m, g[k].object);
	p->log_start = ls;
	p->end = end;
	p->ranges = g;
	p->nranges = p->cap = n;
	return 0;
bad:
	free(g);
	return SL_E_INVALID;
}

static int ap_object(struct manifest *m, struct sl_rd *r, const struct actx *cx)
{
	uint64_t id, size;
	int64_t created;
	char *key = NULL;
	int err = 0;

	if (rd_u64(r, &id) != 0)
		return SL_E_INVALID;
	err = rd_str(r, 1, OBJSTORE_KEY_MAX, &key);
	if (!err && (rd_u64(r, &size) != 0 || rd_i64(r, &created) != 0 || rd_left(r) != 0 ||
		     objstore_key_check(key) != 0 || id == UINT64_MAX))
		err = SL_E_INVALID;
	if (!err && cx->kind == MANIFEST_CHECKPOINT &&
	    (id >= m->next_object_id || (m->nobjects && id <= m->objects[m->nobjects - 1].id)))
		err = SL_E_INVALID;
	if (!err && cx->kind == MANIFEST_DELTA && id < m->next_object_id)
		err = SL_E_INVALID;
	if (!err && ss_get(&m->keys, key))
		err = SL_E_EXISTS;
	if (!err && (ss_reserve(&m->keys) != 0 ||
		     grow((void **)&m->objects, &m->capobjects, m->nobjects + 1,
			  sizeof(*m->objects)) != 0))
		err = SL_E_NOMEM;
	if (err) {
		free(key);
		return err;
	}
	m->objects[m->nobjects].id = id;
	m->objects[m->nobjects].key = key;
	m->objects[m->nobjects].size = size;
	m->objects[m->nobjects].created_ms = created;
	m->objects[m->nobjects].refs = 0;
	m->nobjects++;
	ss_add(&m->keys, key, 1);
	if (cx->kind == MANIFEST_DELTA)
		m->next_object_id = id + 1;
	return 0;
}

static int rd_part_range(struct manifest *m, struct sl_rd *r, struct mf_partition **p,
			 struct mf_range *g)
{
	uint8_t id[16];
	int32_t pi;

	if (rd_copy(r, id, 16) != 0 || rd_i32(r, &pi) != 0 || rd_range(r, g) != 0 ||
	    rd_left(r) != 0 || !range_ok(g))
		return SL_E_INVALID;
	*p = part_find(m, id, pi);
	if (!*p || !object_find(m, g->object, NULL))
		return SL_E_NOTFOUND;
	return 0;
}

static int ap_append(struct manifest *m, struct sl_rd *r)
{
	struct mf_partition *p;
	struct mf_range g;
	int err = rd_part_range(m, r, &p, &g);

	if (err)
		return err;
	if (g.first != p->end)
		return SL_E_INVALID;
	if (grow((void **)&p->ranges, &p->cap, p->nranges + 1, sizeof(*p->ranges)) != 0)
		return SL_E_NOMEM;
	p->ranges[p->nranges++] = g;
	obj_ref(m, g.object);
	p->end = g.last + 1;
	part_drop_below(m, p, p->log_start);
	return 0;
}

static int ap_replace(struct manifest *m, struct sl_rd *r)
{
	struct mf_partition *p;
	struct mf_range g;
	size_t i, j, k, lo, hi;
	int err = rd_part_range(m, r, &p, &g);

	if (err)
		return err;
	/* i: the range starting at g.first; j: the one ending at g.last. */
	for (lo = 0, hi = p->nranges; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->ranges[mid].first < g.first)
			lo = mid + 1;
		else
			hi = mid;
	}
	i = lo;
	if (i == p->nranges || p->ranges[i].first != g.first)
		return SL_E_INVALID;
	for (j = i; j < p->nranges && p->ranges[j].last < g.last; j++)
		;
	if (j == p->nranges || p->ranges[j].last != g.last)
		return SL_E_INVALID;
	obj_ref(m, g.object);	/* first: g may name an object it replaces */
	for (k = i; k <= j; k++)
		obj_unref(m, p->ranges[k].object);
	p->ranges[i] = g;
	memmove(p->ranges + i + 1, p->ranges + j + 1, (p->nranges - j - 1) * sizeof(*p->ranges));
	p->nranges -= j - i;
	return 0;
}

static int ap_log_start(struct manifest *m, struct sl_rd *r)
{
	uint8_t id[16];
	int32_t pi;
	int64_t x;
	struct mf_partition *p;

	if (rd_copy(r, id, 16) != 0 || rd_i32(r, &pi) != 0 || rd_i64(r, &x) != 0 ||
	    rd_left(r) != 0)
		return SL_E_INVALID;
	p = part_find(m, id, pi);
	if (!p)
		return SL_E_NOTFOUND;
	if (x < p->log_start)
		return SL_E_INVALID;
	p->log_start = x;
	part_drop_below(m, p, x);
	return 0;
}

static int ap_retire(struct manifest *m, struct sl_rd *r, const struct actx *cx)
{
	uint64_t id;
	int64_t t;
	struct mf_object *o;
	size_t at, ri;
	int found;

	if (rd_u64(r, &id) != 0 || rd_i64(r, &t) != 0 || rd_left(r) != 0)
		return SL_E_INVALID;
	o = object_find(m, id, &at);
	if (!o)
		return SL_E_NOTFOUND;
	if (o->refs)
		return SL_E_INVALID;
	ri = retired_find(m, o->key, &found);
	SL_ASSERT(!found);	/* invariant 4 */
	if (grow((void **)&m->retired, &m->capretired, m->nretired + 1, sizeof(*m->retired)) != 0)
		return SL_E_NOMEM;
	memmove(m->retired + ri + 1, m->retired + ri, (m->nretired - ri) * sizeof(*m->retired));
	m->retired[ri].key = o->key;	/* the same string moves over */
	m->retired[ri].retired_ms = t;
	m->retired[ri].version = cx->version;
	m->nretired++;
	ss_set(&m->keys, o->key, 2);
	memmove(m->objects + at, m->objects + at + 1, (m->nobjects - at - 1) * sizeof(*m->objects));
	m->nobjects--;
	return 0;
}

static int ap_retired(struct manifest *m, struct sl_rd *r, const struct actx *cx)
{
	char *key = NULL;
	int64_t t;
	size_t ri;
	int found, err = rd_str(r, 1, OBJSTORE_KEY_MAX, &key);

	if (!err && (rd_i64(r, &t) != 0 || rd_left(r) != 0 || objstore_key_check(key) != 0))
		err = SL_E_INVALID;
	if (!err && ss_get(&m->keys, key))
		err = SL_E_EXISTS;
	if (!err && (ss_reserve(&m->keys) != 0 ||
		     grow((void **)&m->retired, &m->capretired, m->nretired + 1,
			  sizeof(*m->retired)) != 0))
		err = SL_E_NOMEM;
	if (err) {
		free(key);
		return err;
	}
	ri = retired_find(m, key, &found);
	memmove(m->retired + ri + 1, m->retired + ri, (m->nretired - ri) * sizeof(*m->retired));
	m->retired[ri].key = key;
	m->retired[ri].retired_ms = t;
	m->retired[ri].version = cx->version;
	m->nretired++;
	ss_add(&m->keys, key, 2);
	return 0;
}

static int ap_forget(struct manifest *m, struct sl_rd *r)
{
	char *key = NULL;
	size_t ri;
	int found, err = rd_str(r, 1, OBJSTORE_KEY_MAX, &key);

	if (!err && rd_left(r) != 0)
		err = SL_E_INVALID;
	if (!err && ss_get(&m->keys, key) != 2)
		err = SL_E_NOTFOUND;
	if (err) {
		free(key);
		return err;
	}
	ri = retired_find(m, key, &found);
	SL_ASSERT(found);
	ss_del(&m->keys, key);
	free(m->retired[ri].key);
	memmove(m->retired + ri, m->retired + ri + 1, (m->nretired - ri - 1) * sizeof(*m->retired));
	m->nretired--;
	free(key);
	return 0;
}

static int ap_offset(struct manifest *m, struct sl_rd *r)
{
	struct mf_offset o;
	size_t at;
	int err;

	memset(&o, 0, sizeof(o));
	err = rd_str(r, 0, MF_GROUP_MAX, &o.group);
	if (!err)
		err = rd_str(r, 1, MF_TOPIC_MAX, &o.topic);
	if (!err && (rd_i32(r, &o.partition) != 0 || o.partition < 0 ||
		     rd_i64(r, &o.offset) != 0 || rd_i32(r, &o.leader_epoch) != 0))
		err = SL_E_INVALID;
	if (!err)
		err = rd_nstr(r, MF_VALUE_MAX, &o.metadata);
	if (!err && (rd_i64(r, &o.commit_ms) != 0 || rd_i64(r, &o.expire_ms) != 0 ||
		     rd_left(r) != 0))
		err = SL_E_INVALID;
	if (err)
		goto fail;
	at = offset_lower(m, o.group, o.topic, o.partition);
	if (at < m->noffsets && offset_cmp(&m->offsets[at], o.group, o.topic, o.partition) == 0) {
		offset_free(&m->offsets[at]);
		m->offsets[at] = o;
		return 0;
	}
	if (grow((void **)&m->offsets, &m->capoffsets, m->noffsets + 1, sizeof(*m->offsets)) != 0) {
		err = SL_E_NOMEM;
		goto fail;
	}
	memmove(m->offsets + at + 1, m->offsets + at, (m->noffsets - at) * sizeof(*m->offsets));
	m->offsets[at] = o;
	m->noffsets++;
	return 0;
fail:
	offset_free(&o);
	return err;
}

/* Remove offsets [a, b). */
static void offsets_remove(struct manifest *m, size_t a, size_t b)
{
	size_t k;

	for (k = a; k < b; k++)
		offset_free(&m->offsets[k]);
	memmove(m->offsets + a, m->offsets + b, (m->noffsets - b) * sizeof(*m->offsets));
	m->noffsets -= b - a;
}

static int ap_offset_delete(struct manifest *m, struct sl_rd *r)
{
	char *g = NULL, *t = NULL;
	int32_t p;
	size_t a, b;
	int err = rd_str(r, 0, MF_GROUP_MAX, &g);

	if (!err)
		err = rd_str(r, 1, MF_TOPIC_MAX, &t);
	if (!err && (rd_i32(r, &p) != 0 || p < -1 || rd_left(r) != 0))
		err = SL_E_INVALID;
	if (!err) {
		a = offset_lower(m, g, t, p < 0 ? INT32_MIN : p);
		for (b = a; b < m->noffsets && strcmp(m->offsets[b].group, g) == 0 &&
			    strcmp(m->offsets[b].topic, t) == 0 &&
			    (p < 0 || m->offsets[b].partition == p); b++)
			;
		offsets_remove(m, a, b);
	}
	free(g);
	free(t);
	return err;
}

static int ap_group_delete(struct manifest *m, struct sl_rd *r)
{
	char *g = NULL;
	size_t a, b;
	int err = rd_str(r, 0, MF_GROUP_MAX, &g);

	if (!err && rd_left(r) != 0)
		err = SL_E_INVALID;
	if (!err) {
		a = offset_lower(m, g, "", INT32_MIN);
		for (b = a; b < m->noffsets && strcmp(m->offsets[b].group, g) == 0; b++)
			;
		offsets_remove(m, a, b);
	}
	free(g);
	return err;
}

static int ap_producers(struct manifest *m, struct sl_rd *r)
{
	uint16_t ver;
	uint32_t n;
	const uint8_t *p;
	uint8_t *copy = NULL;

	if (rd_u16(r, &ver) != 0 || rd_u32(r, &n) != 0 || n > MF_PRODUCERS_MAX ||
	    rd_bytes(r, n, &p) != 0 || rd_left(r) != 0)
		return SL_E_INVALID;
	if (n && !(copy = malloc(n)))
		return SL_E_NOMEM;
	if (n)
		memcpy(copy, p, n);
	free(m->producers);
	m->producers = copy;
	m->producers_len = n;
	m->producers_version = ver;
	return 0;
}

static int ap_state(struct manifest *m, struct sl_rd *r)
{
	uint8_t id[16];
	int32_t pi;
	uint32_t n;
	const uint8_t *b;
	uint8_t *copy = NULL;
	struct mf_partition *p;

	if (rd_copy(r, id, 16) != 0 || rd_i32(r, &pi) != 0 || rd_u32(r, &n) != 0 ||
	    n > MF_STATE_MAX || rd_bytes(r, n, &b) != 0 || rd_left(r) != 0)
		return SL_E_INVALID;
	p = part_find(m, id, pi);
	if (!p)
		return SL_E_NOTFOUND;
	if (n && !(copy = malloc(n)))
		return SL_E_NOMEM;
	if (n)
		memcpy(copy, b, n);
	free(p->state);
	p->state = copy;
	p->state_len = n;
	return 0;
}

/*
 * Apply the operation at the front of body (type, length, bytes) and step
 * over it.  *type receives its type.  Errors: SL_E_INVALID for bytes out of
 * place, SL_E_NOTFOUND/SL_E_EXISTS/SL_E_TOOBIG when the state refuses it,
 * SL_E_NOMEM.  m->zeroed lists the objects whose last reference it dropped.
 */
static int apply_op(struct manifest *m, struct sl_rd *body, const struct actx *cx, uint8_t *type)
{
	const uint8_t *p;
	struct sl_rd r;
	uint32_t len;
	uint8_t t;

	m->nzeroed = 0;
	if (rd_u8(body, &t) != 0 || rd_u32(body, &len) != 0 || rd_bytes(body, len, &p) != 0)
		return SL_E_INVALID;
	*type = t;
	if (t == 0 || t >= OP_END || !(allowed[cx->kind] & BIT(t)))
		return SL_E_INVALID;
	rd_init(&r, p, len);
	switch (t) {
	case OP_CLUSTER:
		return ap_cluster(m, &r);
	case OP_TOPIC:
		return ap_topic(m, &r);
	case OP_TOPIC_DELETE:
		return ap_topic_delete(m, &r);
	case OP_PARTITION:
		return ap_partition(m, &r);
	case OP_OBJECT:
		return ap_object(m, &r, cx);
	case OP_APPEND:
		return ap_append(m, &r);
	case OP_REPLACE:
		return ap_replace(m, &r);
	case OP_LOG_START:
		return ap_log_start(m, &r);
	case OP_RETIRE:
		return ap_retire(m, &r, cx);
	case OP_RETIRED:
		return ap_retired(m, &r, cx);
	case OP_FORGET:
		return ap_forget(m, &r);
	case OP_OFFSET:
		return ap_offset(m, &r);
	case OP_OFFSET_DELETE:
		return ap_offset_delete(m, &r);
	case OP_GROUP_DELETE:
		return ap_group_delete(m, &r);
	case OP_PRODUCERS:
		return ap_producers(m, &r);
	case OP_STATE:
		return ap_state(m, &r);
	}
	return SL_E_INVALID;
}

/* ---- the model ---- */

struct manifest *manifest_new(void)
{
	struct manifest *m = calloc(1, sizeof(*m));

	if (m)
		wr_init(&m->w.pending, 0);
	return m;
}

void manifest_free(struct manifest *m)
{
	size_t i;
	int32_t p;

	if (!m)
		return;
	if (m->w.op)
		objstore_cancel(m->w.os, m->w.op);
	for (i = 0; i < m->ntopics; i++) {
		struct mf_topic *t = &m->topics[i];

		for (p = 0; p < t->npartitions; p++) {
			free(t->parts[p].ranges);
			free(t->parts[p].state);
		}
		free(t->parts);
		free(t->name);
		configs_free(t->configs, t->nconfigs);
	}
	free(m->topics);
	for (i = 0; i < m->nobjects; i++)
		free(m->objects[i].key);
	free(m->objects);
	for (i = 0; i < m->nretired; i++)
		free(m->retired[i].key);
	free(m->retired);
	for (i = 0; i < m->noffsets; i++)
		offset_free(&m->offsets[i]);
	free(m->offsets);
	free(m->producers);
	free(m->zeroed);
	ss_free(&m->keys);
	ss_free(&m->names);
	wr_free(&m->w.pending);
	free(m->w.obj);
	free(m);
}

const struct mf_topic *manifest_topic(const struct manifest *m, const uint8_t id[16])
{
	return topic_find(m, id, NULL);
}

const struct mf_topic *manifest_topic_by_name(const struct manifest *m, const char *name)
{
	size_t i;

	if (!ss_get(&m->names, name))
		return NULL;
	for (i = 0; i < m->ntopics; i++)
		if (strcmp(m->topics[i].name, name) == 0)
			return &m->topics[i];
	return NULL;
}

const struct mf_partition *manifest_partition(const struct manifest *m, const uint8_t id[16],
					      int32_t partition)
{
	return part_find(m, id, partition);
}

size_t manifest_range_index(const struct mf_partition *p, int64_t offset)
{
	size_t lo = 0, hi = p->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->ranges[mid].last < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct mf_range *manifest_range_find(const struct mf_partition *p, int64_t offset)
{
	size_t i;

	if (!p || offset < p->log_start || offset >= p->end)
		return NULL;
	i = manifest_range_index(p, offset);
	return i < p->nranges && p->ranges[i].first <= offset ? &p->ranges[i] : NULL;
}

const struct mf_object *manifest_object(const struct manifest *m, uint64_t id)
{
	return object_find(m, id, NULL);
}

const struct mf_offset *manifest_offset(const struct manifest *m, const char *group,
					const char *topic, int32_t partition)
{
	size_t at = offset_lower(m, group, topic, partition);

	if (at < m->noffsets && offset_cmp(&m->offsets[at], group, topic, partition) == 0)
		return &m->offsets[at];
	return NULL;
}

int manifest_key_state(const struct manifest *m, const char *key)
{
	return ss_get(&m->keys, key);
}

uint32_t manifest_pending(const struct manifest *m)
{
	return m->w.npending + (m->w.obj ? m->w.objnops : 0);
}

int manifest_check(const struct manifest *m)
{
	size_t i, k, nparts = 0, nranges_of = 0;
	int32_t p;
	int found;

	for (i = 0; i < m->ntopics; i++) {
		const struct mf_topic *t = &m->topics[i];

		if (i && memcmp(m->topics[i - 1].id, t->id, 16) >= 0)
			return SL_E_CORRUPT;
		if (manifest_topic_by_name(m, t->name) != t || t->npartitions < 1)
			return SL_E_CORRUPT;
		nparts += (size_t)t->npartitions;
		for (p = 0; p < t->npartitions; p++) {
			const struct mf_partition *pp = &t->parts[p];

			if (!part_ok(m, pp->log_start, pp->end, pp->ranges, pp->nranges))
				return SL_E_CORRUPT;
			nranges_of += pp->nranges;
		}
	}
	if (nparts != m->total_partitions || m->names.n != m->ntopics)
		return SL_E_CORRUPT;
	/* refs: every range counted once, and no object without one */
	for (i = 0, k = 0; i < m->nobjects; i++) {
		const struct mf_object *o = &m->objects[i];

		if ((i && m->objects[i - 1].id >= o->id) || o->id >= m->next_object_id ||
		    ss_get(&m->keys, o->key) != 1 || o->refs == 0)
			return SL_E_CORRUPT;
		k += o->refs;
	}
	if (k != nranges_of)
		return SL_E_CORRUPT;
	for (i = 0; i < m->nretired; i++) {
		if ((i && strcmp(m->retired[i - 1].key, m->retired[i].key) >= 0) ||
		    ss_get(&m->keys, m->retired[i].key) != 2)
			return SL_E_CORRUPT;
		(void)retired_find(m, m->retired[i].key, &found);
		if (!found)
			return SL_E_CORRUPT;
	}
	if (m->keys.n != m->nobjects + m->nretired)
		return SL_E_CORRUPT;
	for (i = 1; i < m->noffsets; i++)
		if (offset_cmp(&m->offsets[i - 1], m->offsets[i].group, m->offsets[i].topic,
			       m->offsets[i].partition) >= 0)
			return SL_E_CORRUPT;
	return 0;
}

/* ---- encoding operations ---- */

static void enc_topic(struct sl_wr *w, const uint8_t id[16], const char *name, int32_t np,
		      const struct mf_config *cf, uint32_t nc)
{
	size_t at = op_begin(w, OP_TOPIC);
	uint32_t i;

	wr_bytes(w, id, 16);
	wr_str(w, name);
	wr_i32(w, np);
	wr_u32(w, nc);
	for (i = 0; i < nc; i++) {
		wr_str(w, cf[i].key);
		wr_nstr(w, cf[i].value);
	}
	op_end(w, at);
}

static void enc_part_range(struct sl_wr *w, uint8_t type, const uint8_t id[16], int32_t p,
			   const struct mf_range *g)
{
	size_t at = op_begin(w, type);

	wr_bytes(w, id, 16);
	wr_i32(w, p);
	wr_range(w, g);
	op_end(w, at);
}

static void enc_object(struct sl_wr *w, uint64_t id, const char *key, uint64_t size,
		       int64_t created)
{
	size_t at = op_begin(w, OP_OBJECT);

	wr_u64(w, id);
	wr_str(w, key);
	wr_u64(w, size);
	wr_i64(w, created);
	op_end(w, at);
}

static void enc_offset(struct sl_wr *w, const struct mf_offset *o)
{
	size_t at = op_begin(w, OP_OFFSET);

	wr_str(w, o->group);
	wr_str(w, o->topic);
	wr_i32(w, o->partition);
	wr_i64(w, o->offset);
	wr_i32(w, o->leader_epoch);
	wr_nstr(w, o->metadata);
	wr_i64(w, o->commit_ms);
	wr_i64(w, o->expire_ms);
	op_end(w, at);
}

static void enc_producers(struct sl_wr *w, uint16_t ver, const void *p, size_t n)
{
	size_t at = op_begin(w, OP_PRODUCERS);

	wr_u16(w, ver);
	wr_u32(w, (uint32_t)n);
	wr_bytes(w, p, n);
	op_end(w, at);
}

static void enc_state_op(struct sl_wr *w, const uint8_t id[16], int32_t p, const void *b, size_t n)
{
	size_t at = op_begin(w, OP_STATE);
	wr_bytes(w, id, 16);
	wr_i32(w, p);
	wr_u32(w, (uint32_t)n);
	wr_bytes(w, b, n);
	op_end(w, at);
}

static void enc_key_op(struct sl_wr *w, uint8_t type, const char *key)
{
	size_t at = op_begin(w, type);

	wr_str(w, key);
	op_end(w, at);
}

/* The state as checkpoint operations; *nops counts them. */
static void enc_state(const struct manifest *m, struct sl_wr *w, uint32_t *nops)
{
	size_t i, at;
	int32_t p;
	uint32_t n = 0;

	at = op_begin(w, OP_CLUSTER);
	wr_str(w, m->cluster);
	wr_u64(w, m->next_object_id);
	op_end(w, at);
	n++;
	for (i = 0; i < m->nobjects; i++, n++)
		enc_object(w, m->objects[i].id, m->objects[i].key, m->objects[i].size,
			   m->objects[i].created_ms);
	for (i = 0; i < m->ntopics; i++) {
		const struct mf_topic *t = &m->topics[i];

		enc_topic(w, t->id, t->name, t->npartitions, t->configs, t->nconfigs);
		n++;
		for (p = 0; p < t->npartitions; p++) {
			const struct mf_partition *pp = &t->parts[p];
			size_t k;

			if (pp->state_len) {
				enc_state_op(w, t->id, p, pp->state, pp->state_len);
				n++;
			}
			if (!pp->nranges && !pp->log_start && !pp->end)
				continue;	/* pristine: as TOPIC leaves it */
			at = op_begin(w, OP_PARTITION);
			wr_bytes(w, t->id, 16);
			wr_i32(w, p);
			wr_i64(w, pp->log_start);
			wr_i64(w, pp->end);
			wr_u32(w, (uint32_t)pp->nranges);
			for (k = 0; k < pp->nranges; k++)
				wr_range(w, &pp->ranges[k]);
			op_end(w, at);
			n++;
		}
	}
	for (i = 0; i < m->nretired; i++, n++) {
		at = op_begin(w, OP_RETIRED);
		wr_str(w, m->retired[i].key);
		wr_i64(w, m->retired[i].retired_ms);
		op_end(w, at);
	}
	for (i = 0; i < m->noffsets; i++, n++)
		enc_offset(w, &m->offsets[i]);
	if (m->producers_len || m->producers_version) {
		enc_producers(w, m->producers_version, m->producers, m->producers_len);
		n++;
	}
	*nops = n;
}

/* ---- version objects ---- */

void manifest_key(uint64_t version, char *buf)
{
	snprintf(buf, MANIFEST_KEY_LEN + 1, MANIFEST_PREFIX "%020" PRIu64, version);
}

uint64_t manifest_key_version(const char *key)
{
	uint64_t v = 0;
	size_t i;

	if (strlen(key) != MANIFEST_KEY_LEN || strncmp(key, MANIFEST_PREFIX, 9) != 0)
		return 0;
	for (i = 9; i < MANIFEST_KEY_LEN; i++) {
		unsigned d = (unsigned char)key[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

int manifest_peek(const uint8_t *p, size_t len, struct manifest_header *h)
{
	struct sl_rd r;
	const uint8_t *mg;
	uint16_t format;
	uint8_t kind, flags;
	uint32_t reserved, crc;

	memset(h, 0, sizeof(*h));
	if (len < MANIFEST_HEADER_LEN + 4 || len > MANIFEST_MAX_BYTES)
		return SL_E_CORRUPT;
	rd_init(&r, p, len);
	if (rd_bytes(&r, 8, &mg) != 0 || memcmp(mg, magic, 8) != 0 || rd_u16(&r, &format) != 0 ||
	    rd_u8(&r, &kind) != 0 || rd_u8(&r, &flags) != 0 || rd_i32(&r, &h->node) != 0 ||
	    rd_u64(&r, &h->version) != 0 || rd_u64(&r, &h->checkpoint) != 0 ||
	    rd_u64(&r, &h->epoch) != 0 || rd_i64(&r, &h->time_ms) != 0 ||
	    rd_u32(&r, &h->prev_crc) != 0 || rd_u32(&r, &h->nops) != 0 ||
	    rd_u32(&r, &h->body_len) != 0 || rd_u32(&r, &reserved) != 0)
		return SL_E_CORRUPT;
	if (format != MANIFEST_FORMAT || (kind != MANIFEST_CHECKPOINT && kind != MANIFEST_DELTA) ||
	    flags != 0 || reserved != 0 || h->body_len != len - MANIFEST_HEADER_LEN - 4)
		return SL_E_CORRUPT;
	crc = sl_load_be32(p + len - 4);
	if (crc32c(0, p, len - 4) != crc)
		return SL_E_CORRUPT;
	h->kind = kind;
	h->crc = crc;
	if (h->version == 0 || h->epoch == 0 || h->checkpoint == 0 || h->checkpoint > h->version ||
	    (kind == MANIFEST_CHECKPOINT) != (h->checkpoint == h->version) ||
	    (h->version == 1 && h->prev_crc != 0) || h->nops > h->body_len / OP_HEAD)
		return SL_E_CORRUPT;
	return 0;
}

static int is_empty(const struct manifest *m)
{
	return m->version == 0 && !m->cluster[0] && !m->ntopics && !m->nobjects && !m->nretired &&
	       !m->noffsets && !m->producers_len && !m->producers_version && !m->next_object_id;
}

int manifest_apply(struct manifest *m, const uint8_t *p, size_t len)
{
	struct manifest_header h;
	struct actx cx;
	struct sl_rd body;
	uint32_t i;
	uint8_t type;
	int err = manifest_peek(p, len, &h);

	if (err)
		return err;
	if (h.kind == MANIFEST_CHECKPOINT) {
		if (!is_empty(m))
			return SL_E_CORRUPT;
	} else if (m->version == 0 || h.version != m->version + 1 || h.prev_crc != m->crc ||
		   h.checkpoint != m->checkpoint || h.epoch < m->epoch) {
		return SL_E_CORRUPT;
	}
	cx.kind = h.kind;
	cx.version = h.version;
	rd_init(&body, p + MANIFEST_HEADER_LEN, h.body_len);
	for (i = 0; i < h.nops; i++) {
		err = apply_op(m, &body, &cx, &type);
		/* A checkpoint opens with its one CLUSTER. */
		if (!err && h.kind == MANIFEST_CHECKPOINT && (i == 0) != (type == OP_CLUSTER))
			err = SL_E_INVALID;
		if (err)
			return err == SL_E_NOMEM ? err : SL_E_CORRUPT;
	}
	if (rd_left(&body) != 0 || (h.kind == MANIFEST_CHECKPOINT && h.nops == 0))
		return SL_E_CORRUPT;
	for (i = 0; i < m->nobjects; i++)
		if (m->objects[i].refs == 0)
			return SL_E_CORRUPT;	/* invariant 3 */
	m->nzeroed = 0;
	m->version = h.version;
	m->checkpoint = h.checkpoint;
	m->crc = h.crc;
	m->epoch = h.epoch;
	m->node = h.node;
	m->time_ms = h.time_ms;
	return 0;
}

/* Header, then ops (a delta's, or the state's when ops is NULL), then the CRC. */
static int encode_version(const struct manifest *m, enum manifest_kind kind, uint64_t version,
			  uint32_t prev_crc, int32_t node, uint64_t epoch, int64_t time_ms,
			  const uint8_t *ops, size_t opslen, uint32_t nops, uint8_t **out,
			  size_t *outlen, uint32_t *crcp)
{
	struct sl_wr w;
	size_t at_nops = 0, at_len = 0, body;
	uint32_t crc;

	wr_init(&w, MANIFEST_MAX_BYTES);
	wr_bytes(&w, magic, 8);
	wr_u16(&w, MANIFEST_FORMAT);
	wr_u8(&w, (uint8_t)kind);
	wr_u8(&w, 0);
	wr_i32(&w, node);
	wr_u64(&w, version);
	wr_u64(&w, kind == MANIFEST_CHECKPOINT ? version : m->checkpoint);
	wr_u64(&w, epoch);
	wr_i64(&w, time_ms);
	wr_u32(&w, prev_crc);
	wr_reserve(&w, 4, &at_nops);
	wr_reserve(&w, 4, &at_len);
	wr_u32(&w, 0);
	if (ops)
		wr_bytes(&w, ops, opslen);
	else
		enc_state(m, &w, &nops);
	if (w.err) {
		int err = w.err == SL_E_FULL ? SL_E_TOOBIG : w.err;

		wr_free(&w);
		return err;
	}
	body = w.len - MANIFEST_HEADER_LEN;
	wr_patch_u32(&w, at_nops, nops);
	wr_patch_u32(&w, at_len, (uint32_t)body);
	crc = crc32c(0, w.p, w.len);
	wr_u32(&w, crc);
	if (w.err) {
		int err = w.err == SL_E_FULL ? SL_E_TOOBIG : w.err;

		wr_free(&w);
		return err;
	}
	*out = wr_take(&w, outlen);
	if (crcp)
		*crcp = crc;
	return 0;
}

int manifest_snapshot(const struct manifest *m, uint8_t **out, size_t *len)
{
	size_t i;

	if (m->version == 0 || m->epoch == 0 || !m->cluster[0])
		return SL_E_INVALID;
	for (i = 0; i < m->nobjects; i++)
		if (m->objects[i].refs == 0)
			return SL_E_INVALID;
	return encode_version(m, MANIFEST_CHECKPOINT, m->version, 0, m->node, m->epoch, m->time_ms,
			      NULL, 0, 0, out, len, NULL);
}

/* ---- edits ---- */

/* Retire the objects in ids that still have no reference; best effort. */
static void retire_ids(struct manifest *m, const uint64_t *ids, size_t n, int64_t now_ms);

/* Apply the encoded operation in op and keep it pending (op is freed). */
static int edit(struct manifest *m, struct sl_wr *op, int64_t now_ms)
{
	/* Pending edits go into the version after the one being put, if any. */
	struct actx cx = { MANIFEST_DELTA, (m->w.obj ? m->w.objversion : m->version) + 1 };
	struct sl_rd r;
	uint64_t *ids = NULL;
	size_t nids = 0;
	uint8_t type;
	int err = op->err;

	if (!err && m->w.fenced)
		err = SL_E_EXISTS;
	/* Room first: an operation applied must also be kept. */
	if (!err && wr_ensure(&m->w.pending, op->len) != 0)
		err = SL_E_NOMEM;
	if (!err) {
		rd_init(&r, op->p, op->len);
		err = apply_op(m, &r, &cx, &type);
	}
	if (!err) {
		wr_bytes(&m->w.pending, op->p, op->len);
		m->w.npending++;
		if (m->nzeroed && (ids = malloc(m->nzeroed * sizeof(*ids))) != NULL) {
			nids = m->nzeroed;
			memcpy(ids, m->zeroed, nids * sizeof(*ids));
		}
	}
	m->nzeroed = 0;
	wr_free(op);
	if (nids)
		retire_ids(m, ids, nids, now_ms);
	free(ids);
	return err;
}

static void retire_ids(struct manifest *m, const uint64_t *ids, size_t n, int64_t now_ms)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct mf_object *o = object_find(m, ids[i], NULL);
		struct sl_wr w;
		size_t at;

		if (!o || o->refs)
			continue;
		wr_init(&w, 0);
		at = op_begin(&w, OP_RETIRE);
		wr_u64(&w, ids[i]);
		wr_i64(&w, now_ms);
		op_end(&w, at);
		if (edit(m, &w, now_ms) != 0)
			log_warn(TAG, "cannot retire object %" PRIu64 " yet; the next commit will",
				 ids[i]);
	}
}

int manifest_set_cluster(struct manifest *m, const char *cluster)
{
	size_t n = cluster ? strlen(cluster) : 0;

	if (n == 0 || n > MF_CLUSTER_MAX)
		return SL_E_INVALID;
	if (m->cluster[0])
		return strcmp(m->cluster, cluster) == 0 ? 0 : SL_E_INVALID;
	memcpy(m->cluster, cluster, n + 1);
	return 0;
}

int manifest_topic_put(struct manifest *m, const uint8_t id[16], const char *name,
		       int32_t npartitions, const struct mf_config *configs, uint32_t nconfigs)
{
	struct sl_wr w;
	uint32_t i;

	if (!id || !name || (nconfigs && !configs))
		return SL_E_INVALID;
	for (i = 0; i < nconfigs; i++)
		if (!configs[i].key)
			return SL_E_INVALID;
	wr_init(&w, 0);
	enc_topic(&w, id, name, npartitions, configs, nconfigs);
	return edit(m, &w, 0);
}

int manifest_topic_delete(struct manifest *m, const uint8_t id[16], int64_t now_ms)
{
	struct sl_wr w;
	size_t at;

	wr_init(&w, 0);
	at = op_begin(&w, OP_TOPIC_DELETE);
	wr_bytes(&w, id, 16);
	op_end(&w, at);
	return edit(m, &w, now_ms);
}

int manifest_object_add(struct manifest *m, const char *key, uint64_t size, int64_t created_ms,
			uint64_t *id)
{
	struct sl_wr w;
	uint64_t oid = m->next_object_id;
	int err;

	if (!key || objstore_key_check(key) != 0)
		return SL_E_INVALID;
	wr_init(&w, 0);
	enc_object(&w, oid, key, size, created_ms);
	err = edit(m, &w, created_ms);
	if (err == 0 && id)
		*id = oid;
	return err;
}

int manifest_range_append(struct manifest *m, const uint8_t id[16], int32_t partition,
			  const struct mf_range *r, int64_t now_ms)
{
	struct sl_wr w;

	wr_init(&w, 0);
	enc_part_range(&w, OP_APPEND, id, partition, r);
	return edit(m, &w, now_ms);
}

int manifest_range_replace(struct manifest *m, const uint8_t id[16], int32_t partition,
			   const struct mf_range *r, int64_t now_ms)
{
	struct sl_wr w;

	wr_init(&w, 0);
	enc_part_range(&w, OP_REPLACE, id, partition, r);
	return edit(m, &w, now_ms);
}

int manifest_log_start(struct manifest *m, const uint8_t id[16], int32_t partition,
		       int64_t offset, int64_t now_ms)
{
	struct sl_wr w;
	size_t at;

	wr_init(&w, 0);
	at = op_begin(&w, OP_LOG_START);
	wr_bytes(&w, id, 16);
	wr_i32(&w, partition);
	wr_i64(&w, offset);
	op_end(&w, at);
	return edit(m, &w, now_ms);
}

int manifest_offset_commit(struct manifest *m, const struct mf_offset *o)
{
	struct sl_wr w;

	if (!o || !o->group || !o->topic)
		return SL_E_INVALID;
	wr_init(&w, 0);
	enc_offset(&w, o);
	return edit(m, &w, 0);
}

int manifest_offset_delete(struct manifest *m, const char *group, const char *topic,
			   int32_t partition)
{
	struct sl_wr w;
	size_t at;

	if (!group || !topic)
		return SL_E_INVALID;
	wr_init(&w, 0);
	at = op_begin(&w, OP_OFFSET_DELETE);
	wr_str(&w, group);
	wr_str(&w, topic);
	wr_i32(&w, partition);
	op_end(&w, at);
	return edit(m, &w, 0);
}

int manifest_group_delete(struct manifest *m, const char *group)
{
	struct sl_wr w;

	if (!group)
		return SL_E_INVALID;
	wr_init(&w, 0);
	enc_key_op(&w, OP_GROUP_DELETE, group);
	return edit(m, &w, 0);
}

int manifest_producers_set(struct manifest *m, uint16_t version, const void *blob, size_t len)
{
	struct sl_wr w;

	if ((len && !blob) || len > MF_PRODUCERS_MAX)
		return SL_E_INVALID;
	wr_init(&w, 0);
	enc_producers(&w, version, blob, len);
	return edit(m, &w, 0);
}

int manifest_partition_state(struct manifest *m, const uint8_t id[16], int32_t partition,
			     const void *blob, size_t len)
{
	const struct mf_partition *p = manifest_partition(m, id, partition);
	struct sl_wr w;

	if ((len && !blob))
		return SL_E_INVALID;
	if (len > MF_STATE_MAX)
		return SL_E_TOOBIG;
	if (!p)
		return SL_E_NOTFOUND;
	if (p->state_len == len && (!len || memcmp(p->state, blob, len) == 0))
		return 0;
	wr_init(&w, 0);
	enc_state_op(&w, id, partition, blob, len);
	return edit(m, &w, 0);
}

int manifest_forget(struct manifest *m, const char *key)
{
	struct sl_wr w;

	if (!key)
		return SL_E_INVALID;
	wr_init(&w, 0);
	enc_key_op(&w, OP_FORGET, key);
	return edit(m, &w, 0);
}

/* ---- the writer ---- */

int manifest_writer_start(struct manifest *m, int32_t node, const struct manifest_policy *policy)
{
	if (!m->cluster[0] || m->w.fenced || m->w.op)
		return SL_E_INVALID;
	m->w.active = 1;
	m->w.node = node;
	m->w.epoch = m->epoch + 1;
	memset(&m->w.policy, 0, sizeof(m->w.policy));
	if (policy)
		m->w.policy = *policy;
	if (!m->w.policy.checkpoint_every)
		m->w.policy.checkpoint_every = DEF_EVERY;
	if (!m->w.policy.checkpoint_min_bytes)
		m->w.policy.checkpoint_min_bytes = DEF_MIN_BYTES;
	log_info(TAG, "node %d writes the manifest from version %" PRIu64 " with epoch %" PRIu64,
		 node, m->version + 1, m->w.epoch);
	return 0;
}

static void on_commit(void *arg, struct objstore_result *res)
{
	struct manifest *m = arg;
	manifest_commit_fn fn = m->w.fn;
	void *fnarg = m->w.arg;
	uint64_t v = m->w.objversion;
	int err = res->err;

	m->w.op = NULL;
	if (err == 0) {
		m->version = v;
		m->crc = m->w.objcrc;
		m->epoch = m->w.epoch;
		m->node = m->w.node;
		m->time_ms = m->w.objtime;
		if (m->w.objkind == MANIFEST_CHECKPOINT) {
			m->checkpoint = v;
			m->w.deltas = 0;
			m->w.delta_bytes = 0;
			m->w.checkpoint_bytes = m->w.objlen;
		} else {
			m->w.deltas++;
			m->w.delta_bytes += m->w.objlen;
		}
		free(m->w.obj);
		m->w.obj = NULL;
		log_debug(TAG, "committed version %" PRIu64 " (%s, %zu bytes)", v,
			  m->w.objkind == MANIFEST_CHECKPOINT ? "checkpoint" : "delta", m->w.objlen);
	} else if (err == SL_E_EXISTS) {
		m->w.fenced = 1;
		free(m->w.obj);
		m->w.obj = NULL;
		log_warn(TAG, "version %" PRIu64 " was made by another writer: node %d (epoch %"
			 PRIu64 ") is fenced and stops writing the manifest", v, m->w.node,
			 m->w.epoch);
	} else {
		log_warn(TAG, "committing version %" PRIu64 " failed (%s%s%s); it is sent again "
			 "at the next commit", v, sl_strerror(err), res->code[0] ? ": " : "",
			 res->code);
	}
	if (fn)
		fn(fnarg, err, v);
}

/* Retire every object left without references (before a version is cut). */
static void sweep(struct manifest *m, int64_t now_ms)
{
	uint64_t *ids = NULL;
	size_t i, n = 0;

	for (i = 0; i < m->nobjects; i++)
		n += m->objects[i].refs == 0;
	if (!n || !(ids = malloc(n * sizeof(*ids))))
		return;
	for (i = 0, n = 0; i < m->nobjects; i++)
		if (m->objects[i].refs == 0)
			ids[n++] = m->objects[i].id;
	retire_ids(m, ids, n, now_ms);
	free(ids);
}

int manifest_commit(struct manifest *m, struct objstore *os, int64_t now_ms,
		    manifest_commit_fn fn, void *arg)
{
	char key[MANIFEST_KEY_LEN + 1];
	enum manifest_kind kind;
	uint64_t limit;
	size_t i;
	int err;

	if (!m->w.active || !os)
		return SL_E_INVALID;
	if (m->w.fenced)
		return SL_E_EXISTS;
	if (m->w.op)
		return SL_E_FULL;
	if (!m->w.obj) {
		sweep(m, now_ms);
		for (i = 0; i < m->nobjects; i++)
			if (m->objects[i].refs == 0)
				return SL_E_NOMEM;	/* the sweep could not retire it */
		limit = m->w.policy.checkpoint_min_bytes;
		if (m->w.checkpoint_bytes > limit)
			limit = m->w.checkpoint_bytes;
		kind = m->version == 0 || m->w.deltas + 1 >= m->w.policy.checkpoint_every ||
				       m->w.delta_bytes + m->w.pending.len >= limit
			       ? MANIFEST_CHECKPOINT : MANIFEST_DELTA;
		if (kind == MANIFEST_CHECKPOINT)
			err = encode_version(m, kind, m->version + 1, m->crc, m->w.node, m->w.epoch,
					     now_ms, NULL, 0, 0, &m->w.obj, &m->w.objlen,
					     &m->w.objcrc);
		else
			err = encode_version(m, kind, m->version + 1, m->crc, m->w.node, m->w.epoch,
					     now_ms, m->w.pending.p ? m->w.pending.p : (uint8_t *)"",
					     m->w.pending.len, m->w.npending, &m->w.obj,
					     &m->w.objlen, &m->w.objcrc);
		if (err)
			return err;
		m->w.objversion = m->version + 1;
		m->w.objkind = kind;
		m->w.objtime = now_ms;
		m->w.objnops = m->w.npending;
		/* The pending edits are in the version now (a checkpoint holds their effect). */
		wr_free(&m->w.pending);
		wr_init(&m->w.pending, 0);
		m->w.npending = 0;
	}
	manifest_key(m->w.objversion, key);
	m->w.os = os;
	m->w.fn = fn;
	m->w.arg = arg;
	err = objstore_put_if_absent(os, key, m->w.obj, m->w.objlen, on_commit, m, &m->w.op);
	if (err)
		m->w.op = NULL;
	return err;
}

/* ---- the loader ---- */

struct manifest_load {
	struct objstore *os;
	manifest_load_fn fn;
	void *arg;
	struct objstore_op *op;
	struct manifest *m;
	uint64_t newest, next;
	uint8_t *newest_buf;
	size_t newest_len;
	uint64_t delta_bytes;
	int tries;
};

static void load_list(struct manifest_load *ld);

static void load_end(struct manifest_load *ld, int err)
{
	struct manifest *m = ld->m;

	ld->m = NULL;
	if (err) {
		manifest_free(m);
		m = NULL;
	}
	ld->fn(ld->arg, err, m);
	free(ld->newest_buf);
	free(ld);
}

/* A version the listing showed is gone: a collector ran; start over. */
static void load_again(struct manifest_load *ld, uint64_t version)
{
	manifest_free(ld->m);
	ld->m = NULL;
	free(ld->newest_buf);
	ld->newest_buf = NULL;
	ld->delta_bytes = 0;
	if (++ld->tries >= LOAD_TRIES) {
		log_warn(TAG, "version %" PRIu64 " vanished while loading, %d times", version,
			 ld->tries);
		load_end(ld, SL_E_NOTFOUND);
		return;
	}
	load_list(ld);
}

static int load_apply(struct manifest_load *ld, const uint8_t *p, size_t len, uint64_t version)
{
	int err = manifest_apply(ld->m, p, len);

	if (err == 0 && ld->m->version != version)
		err = SL_E_CORRUPT;
	if (err)
		log_error(TAG, "version %" PRIu64 " cannot be applied: %s", version,
			  sl_strerror(err));
	return err;
}

static void on_load_part(void *arg, struct objstore_result *r);

static void load_get(struct manifest_load *ld, uint64_t version, objstore_fn fn)
{
	char key[MANIFEST_KEY_LEN + 1];
	int err;

	manifest_key(version, key);
	err = objstore_get(ld->os, key, NULL, fn, ld, &ld->op);
	if (err) {
		ld->op = NULL;
		load_end(ld, err);
	}
}

static void on_load_part(void *arg, struct objstore_result *r)
{
	struct manifest_load *ld = arg;
	int err;

	ld->op = NULL;
	if (r->err == SL_E_NOTFOUND) {
		load_again(ld, ld->next);
		return;
	}
	if (r->err) {
		load_end(ld, r->err);
		return;
	}
	err = load_apply(ld, r->body, r->body_len, ld->next);
	if (err) {
		load_end(ld, err);
		return;
	}
	if (ld->next == ld->m->checkpoint)
		ld->m->w.checkpoint_bytes = r->body_len;
	else
		ld->delta_bytes += r->body_len;
	if (++ld->next < ld->newest) {
		load_get(ld, ld->next, on_load_part);
		return;
	}
	err = load_apply(ld, ld->newest_buf, ld->newest_len, ld->newest);
	if (err == 0) {
		ld->m->w.deltas = (uint32_t)(ld->newest - ld->m->checkpoint);
		ld->m->w.delta_bytes = ld->delta_bytes + ld->newest_len;
	}
	load_end(ld, err);
}

static void on_load_newest(void *arg, struct objstore_result *r)
{
	struct manifest_load *ld = arg;
	struct manifest_header h;
	int err;

	ld->op = NULL;
	if (r->err == SL_E_NOTFOUND) {
		load_again(ld, ld->newest);
		return;
	}
	if (r->err) {
		load_end(ld, r->err);
		return;
	}
	err = manifest_peek(r->body, r->body_len, &h);
	if (err || h.version != ld->newest) {
		log_error(TAG, "version %" PRIu64 " is damaged or misnamed", ld->newest);
		load_end(ld, SL_E_CORRUPT);
		return;
	}
	ld->m = manifest_new();
	if (!ld->m) {
		load_end(ld, SL_E_NOMEM);
		return;
	}
	if (h.kind == MANIFEST_CHECKPOINT) {
		err = load_apply(ld, r->body, r->body_len, ld->newest);
		if (err == 0)
			ld->m->w.checkpoint_bytes = r->body_len;
		load_end(ld, err);
		return;
	}
	ld->newest_buf = objstore_result_take_body(r, &ld->newest_len);
	ld->next = h.checkpoint;
	log_info(TAG, "loading version %" PRIu64 ": checkpoint %" PRIu64 " and %" PRIu64
		 " deltas", ld->newest, h.checkpoint, ld->newest - h.checkpoint);
	load_get(ld, ld->next, on_load_part);
}

static void on_load_list(void *arg, struct objstore_result *r)
{
	struct manifest_load *ld = arg;
	size_t i;

	ld->op = NULL;
	if (r->err) {
		load_end(ld, r->err);
		return;
	}
	ld->newest = 0;
	for (i = 0; i < r->nentries; i++) {
		uint64_t v = manifest_key_version(r->entries[i].key);

		if (v > ld->newest)
			ld->newest = v;
	}
	if (ld->newest == 0) {
		ld->m = manifest_new();
		load_end(ld, ld->m ? 0 : SL_E_NOMEM);
		return;
	}
	load_get(ld, ld->newest, on_load_newest);
}

static void load_list(struct manifest_load *ld)
{
	int err = objstore_list(ld->os, MANIFEST_PREFIX, on_load_list, ld, &ld->op);

	if (err) {
		ld->op = NULL;
		load_end(ld, err);
	}
}

int manifest_load(struct objstore *os, manifest_load_fn fn, void *arg, struct manifest_load **h)
{
	struct manifest_load *ld;
	int err;

	if (!os || !fn)
		return SL_E_INVALID;
	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return SL_E_NOMEM;
	ld->os = os;
	ld->fn = fn;
	ld->arg = arg;
	/* The first step's failure is returned, not called back. */
	err = objstore_list(os, MANIFEST_PREFIX, on_load_list, ld, &ld->op);
	if (err) {
		free(ld);
		return err;
	}
	if (h)
		*h = ld;
	return 0;
}

void manifest_load_cancel(struct manifest_load *ld)
{
	if (!ld)
		return;
	if (ld->op)
		objstore_cancel(ld->os, ld->op);
	manifest_free(ld->m);
	free(ld->newest_buf);
	free(ld);
}

/* ---- the collector ---- */

static int push_key(char ***arr, size_t *n, size_t *cap, const char *key)
{
	char *copy;

	if (grow((void **)arr, cap, *n + 1, sizeof(**arr)) != 0 || !(copy = strdup(key)))
		return SL_E_NOMEM;
	(*arr)[(*n)++] = copy;
	return 0;
}

int manifest_gc_plan(const struct manifest *m, const struct objstore_entry *entries, size_t n,
		     const char *data_prefix, int64_t now_ms, int64_t grace_ms,
		     struct manifest_gc *out)
{
	size_t plen = data_prefix ? strlen(data_prefix) : 0, i, capd = 0, capf = 0;
	int64_t cp_mtime = -1;
	struct mf_strset listed;
	int err = 0;

	memset(out, 0, sizeof(*out));
	memset(&listed, 0, sizeof(listed));
	/* An empty prefix would make every key of the store a data object. */
	if (plen == 0 || strncmp(data_prefix, MANIFEST_PREFIX, plen) == 0 ||
	    strncmp(data_prefix, MANIFEST_PREFIX, strlen(MANIFEST_PREFIX)) == 0 || grace_ms < 0)
		return SL_E_INVALID;
	for (i = 0; i < n; i++)
		if (m->checkpoint && manifest_key_version(entries[i].key) == m->checkpoint)
			cp_mtime = entries[i].mtime_ms;
	for (i = 0; i < n && !err; i++) {
		const struct objstore_entry *e = &entries[i];
		uint64_t v;
		int found, st;
		size_t ri;

		if (strncmp(e->key, MANIFEST_PREFIX, strlen(MANIFEST_PREFIX)) == 0) {
			v = manifest_key_version(e->key);
			/* Superseded by a checkpoint that every reader has had grace to find. */
			if (v && v < m->checkpoint && cp_mtime >= 0 && cp_mtime <= now_ms - grace_ms)
				err = push_key(&out->delete_keys, &out->ndelete, &capd, e->key);
			continue;
		}
		if (strncmp(e->key, data_prefix, plen) != 0)
			continue;
		if (ss_reserve(&listed) != 0) {
			err = SL_E_NOMEM;
			break;
		}
		ss_add(&listed, e->key, 1);
		st = ss_get(&m->keys, e->key);
		if (st == 1)
			continue;		/* referenced */
		if (st == 2) {
			ri = retired_find(m, e->key, &found);
			/* Only a retirement that is committed, and old enough. */
			if (found && m->retired[ri].version <= m->version &&
			    m->retired[ri].retired_ms <= now_ms - grace_ms)
				err = push_key(&out->delete_keys, &out->ndelete, &capd, e->key);
			continue;
		}
		/* Never named by a committed version: an upload whose commit never came. */
		if (e->mtime_ms >= 0 && e->mtime_ms <= now_ms - grace_ms)
			err = push_key(&out->delete_keys, &out->ndelete, &capd, e->key);
	}
	for (i = 0; i < m->nretired && !err; i++) {
		const struct mf_retired *rt = &m->retired[i];

		if (strncmp(rt->key, data_prefix, plen) == 0 && rt->version <= m->version &&
		    rt->retired_ms <= now_ms - grace_ms && !ss_get(&listed, rt->key))
			err = push_key(&out->forget_keys, &out->nforget, &capf, rt->key);
	}
	ss_free(&listed);
	if (err)
		manifest_gc_free(out);
	return err;
}

void manifest_gc_free(struct manifest_gc *g)
{
	size_t i;

	for (i = 0; i < g->ndelete; i++)
		free(g->delete_keys[i]);
	free(g->delete_keys);
	for (i = 0; i < g->nforget; i++)
		free(g->forget_keys[i]);
	free(g->forget_keys);
	memset(g, 0, sizeof(*g));
}
