/*
 * manifest.h - the manifest: what the object store holds, as a sequence of
 * immutable, numbered version objects.  docs/FORMAT.md ("The manifest") has
 * the bytes; storage/manifest.c the design and the crash-safety argument.
 *
 * The state (struct manifest):
 *   - the cluster id, and the next data object id to hand out;
 *   - topics: id (16 bytes), name, partition count, configs;
 *   - per partition: the log start offset, the end offset (one past the
 *     last offset stored in objects), and the object ranges in offset
 *     order, contiguous: range i+1 starts where range i ends;
 *   - the data objects those ranges are in (id, key, size, time), each
 *     counting its references; objects no longer referenced are "retired"
 *     with the time, waiting for the collector;
 *   - committed group offsets (group, topic, partition, offset, leader
 *     epoch, metadata, commit and expiry times);
 *   - per partition, opaque state bytes of the layer above (the producer
 *     state of the offsets the partition's ranges hold);
 *   - producer state: an opaque blob with a version of its own.
 *
 * Versions: "manifest/<version, 20 digits>", version 1 upwards, each
 * created with put-if-absent, each either a checkpoint (the whole state)
 * or a delta (operations on the previous version's state).  Version 1 is a
 * checkpoint; every delta names the checkpoint it builds on.  A reader
 * lists manifest/, takes the highest version N, reads the checkpoint C that
 * N names, and applies C+1..N.  A writer that loses the race for version
 * N+1 (SL_E_EXISTS) has been fenced: another writer owns the manifest.
 *
 * Using it (the broker, once wired):
 *
 *   manifest_load(os, ...)            -> m (empty for a new bucket)
 *   manifest_set_cluster(m, id)          (a new bucket only)
 *   manifest_writer_start(m, node, policy)   takes epoch = m->epoch + 1
 *   manifest_commit(m, os, now, ...)     version 1 or N+1: claims the manifest
 *   loop:
 *     upload a data object; manifest_object_add; manifest_range_append ...
 *     manifest_commit -> 0: trim the WAL up to what it covers
 *                     -> SL_E_EXISTS: fenced, stop writing, free m
 *                     -> other: keep going, commit again later (the same
 *                        version bytes are sent again first)
 *   now and then: list, manifest_gc_plan, delete, manifest_forget, commit
 *
 * Edits (manifest_topic_put ... manifest_forget) apply to m at once and are
 * kept as pending operations for the next commit; an edit that is not
 * valid on the current state changes nothing and returns an error
 * (SL_E_INVALID, SL_E_NOTFOUND, SL_E_EXISTS).  Readers of m see the pending
 * edits: only what a commit callback reports is durable.
 *
 * Ownership: struct manifest owns everything it points to.  The read-only
 * fields below may be read at any time between calls; pointers into them
 * (topics, ranges, strings) are valid until the next edit, apply or free.
 * Callbacks run from the loop.  manifest_free() cancels a commit under way
 * (no callback).
 */
#ifndef SL_MANIFEST_H
#define SL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "objstore.h"

#define MANIFEST_PREFIX		"manifest/"
#define MANIFEST_KEY_LEN	29		/* "manifest/" + 20 digits */
#define MANIFEST_FORMAT		1
#define MANIFEST_HEADER_LEN	64
#define MANIFEST_MAX_BYTES	((size_t)256 << 20)	/* one version object */

/* Caps on what one version may hold (docs/FORMAT.md lists them too). */
#define MF_CLUSTER_MAX		64
#define MF_TOPIC_MAX		249		/* a topic name's bytes */
#define MF_GROUP_MAX		32767
#define MF_CONFIG_KEY_MAX	255
#define MF_CONFIGS_MAX		1024		/* configs per topic */
#define MF_VALUE_MAX		(1u << 20)	/* a config value, offset metadata */
#define MF_PARTITIONS_MAX	(1u << 20)	/* partitions of all topics together */
#define MF_PRODUCERS_MAX	(64u << 20)	/* the producer state blob */
#define MF_STATE_MAX		(16u << 20)	/* one partition's state bytes */

enum manifest_kind {
	MANIFEST_CHECKPOINT = 1,
	MANIFEST_DELTA = 2,
};

/* The fixed header of a version object. */
struct manifest_header {
	enum manifest_kind kind;
	int32_t node;			/* the writer's broker id */
	uint64_t version;
	uint64_t checkpoint;		/* newest checkpoint <= version (itself for one) */
	uint64_t epoch;			/* the writer's epoch */
	int64_t time_ms;		/* the writer's wall clock at commit */
	uint32_t prev_crc;		/* CRC of version - 1 (0 for version 1) */
	uint32_t nops;
	uint32_t body_len;
	uint32_t crc;			/* the trailing CRC-32C */
};

struct mf_config {
	char *key;
	char *value;			/* NULL: null */
};

/* One partition's offsets [first, last] stored in one data object. */
struct mf_range {
	uint64_t object;		/* the object's id */
	int64_t first, last;		/* offsets, inclusive */
	int64_t max_ts;			/* largest record timestamp, -1 unknown */
	uint64_t pos, len;		/* where the partition's bytes are in the object;
					   len 0: not recorded (read the object's index) */
};

struct mf_partition {
	int64_t log_start;		/* first offset still readable */
	int64_t end;			/* one past the last offset in objects */
	struct mf_range *ranges;	/* contiguous, in offset order */
	size_t nranges, cap;
	uint8_t *state;			/* the layer above's opaque bytes (producer state), or NULL */
	size_t state_len;
};

struct mf_topic {
	uint8_t id[16];
	char *name;
	int32_t npartitions;
	struct mf_partition *parts;	/* npartitions of them */
	struct mf_config *configs;
	uint32_t nconfigs;
};

struct mf_object {
	uint64_t id;
	char *key;			/* the object store key */
	uint64_t size;
	int64_t created_ms;
	uint64_t refs;			/* ranges naming it (not stored) */
};

struct mf_retired {
	char *key;
	int64_t retired_ms;		/* when its last reference went */
	uint64_t version;		/* the version that retired it (not stored: from a
					   checkpoint, the checkpoint's); above m->version
					   while that version is not committed */
};

struct mf_offset {
	char *group;
	char *topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;		/* -1: none */
	char *metadata;			/* NULL: null */
	int64_t commit_ms;
	int64_t expire_ms;		/* -1: none */
};

/* When the writer writes a checkpoint instead of a delta. */
struct manifest_policy {
	uint32_t checkpoint_every;	/* versions; 0: 64 */
	uint64_t checkpoint_min_bytes;	/* deltas since the checkpoint above
					   max(this, the checkpoint's size); 0: 1 MiB */
};

struct mf_strset {				/* a set of strings (manifest.c) */
	const char **k;
	uint8_t *v;
	size_t cap, n, used;
};

struct manifest;
struct manifest_load;
typedef void (*manifest_commit_fn)(void *arg, int err, uint64_t version);
typedef void (*manifest_load_fn)(void *arg, int err, struct manifest *m);

struct manifest {
	/* Read-only outside manifest.c. */
	uint64_t version;		/* last version applied or committed; 0: none */
	uint64_t checkpoint;		/* newest checkpoint <= version */
	uint32_t crc;			/* that version's CRC */
	uint64_t epoch;			/* that version's writer epoch */
	int32_t node;			/* that version's writer */
	int64_t time_ms;		/* that version's commit time */
	char cluster[MF_CLUSTER_MAX + 1];
	uint64_t next_object_id;
	struct mf_topic *topics;	/* by id */
	size_t ntopics;
	struct mf_object *objects;	/* by id */
	size_t nobjects;
	struct mf_retired *retired;	/* by key */
	size_t nretired;
	struct mf_offset *offsets;	/* by group, topic, partition */
	size_t noffsets;
	uint16_t producers_version;
	uint8_t *producers;
	size_t producers_len;
	size_t total_partitions;

	/* Private. */
	size_t captopics, capobjects, capretired, capoffsets;
	struct mf_strset keys;		/* object keys (1) and retired keys (2) */
	struct mf_strset names;		/* topic names */
	uint64_t *zeroed;		/* objects whose last reference the last op dropped */
	size_t nzeroed, capzeroed;
	struct {
		int active, fenced;
		int32_t node;
		uint64_t epoch;
		struct manifest_policy policy;
		struct sl_wr pending;	/* encoded ops not yet in a commit */
		uint32_t npending;
		uint8_t *obj;		/* the version being put (kept until it is known) */
		size_t objlen;
		uint64_t objversion;
		uint32_t objnops;
		enum manifest_kind objkind;
		uint32_t objcrc;
		int64_t objtime;
		struct objstore *os;
		struct objstore_op *op;
		manifest_commit_fn fn;
		void *arg;
		uint32_t deltas;	/* since the checkpoint */
		uint64_t delta_bytes;
		uint64_t checkpoint_bytes;
	} w;
};

/* ---- the model ---- */

/* An empty manifest (version 0).  NULL if out of memory. */
struct manifest *manifest_new(void);
void manifest_free(struct manifest *m);

const struct mf_topic *manifest_topic(const struct manifest *m, const uint8_t id[16]);
const struct mf_topic *manifest_topic_by_name(const struct manifest *m, const char *name);
/* NULL when the topic or partition does not exist. */
const struct mf_partition *manifest_partition(const struct manifest *m, const uint8_t id[16],
					      int32_t partition);
/* The index of p's first range whose offsets end at or after offset; p->nranges if none. */
size_t manifest_range_index(const struct mf_partition *p, int64_t offset);
/* The range holding offset, or NULL (below log start, at or past end). */
const struct mf_range *manifest_range_find(const struct mf_partition *p, int64_t offset);
const struct mf_object *manifest_object(const struct manifest *m, uint64_t id);
const struct mf_offset *manifest_offset(const struct manifest *m, const char *group,
					const char *topic, int32_t partition);
/* 1 if key is a referenced object's, 2 if a retired one's, 0 if neither. */
int manifest_key_state(const struct manifest *m, const char *key);
/* Edits not yet in a commit (those of a failed commit included). */
uint32_t manifest_pending(const struct manifest *m);
/* Check every invariant of the state (the tests and the fuzzer); 0 or SL_E_CORRUPT. */
int manifest_check(const struct manifest *m);

/* ---- edits ---- */

/* The cluster id of a manifest that has none (a new bucket). */
SL_MUST_CHECK int manifest_set_cluster(struct manifest *m, const char *cluster);
/*
 * Create a topic, or update one: the name must stay, partitions may only
 * grow (new ones start empty at offset 0), configs are replaced whole.
 * SL_E_EXISTS: another topic has the name.
 */
SL_MUST_CHECK int manifest_topic_put(struct manifest *m, const uint8_t id[16], const char *name,
				     int32_t npartitions, const struct mf_config *configs,
				     uint32_t nconfigs);
/* Drop a topic and its ranges (objects left without references retire at now_ms). */
SL_MUST_CHECK int manifest_topic_delete(struct manifest *m, const uint8_t id[16], int64_t now_ms);
/* Name a new data object; *id receives its id.  SL_E_EXISTS: the key was used before. */
SL_MUST_CHECK int manifest_object_add(struct manifest *m, const char *key, uint64_t size,
				      int64_t created_ms, uint64_t *id);
/* Add r after the partition's end: r->first must be the partition's end. */
SL_MUST_CHECK int manifest_range_append(struct manifest *m, const uint8_t id[16], int32_t partition,
					const struct mf_range *r, int64_t now_ms);
/* Compaction: r replaces the ranges that cover exactly [r->first, r->last]. */
SL_MUST_CHECK int manifest_range_replace(struct manifest *m, const uint8_t id[16], int32_t partition,
					 const struct mf_range *r, int64_t now_ms);
/* Move the log start up (retention, DeleteRecords); ranges wholly below go. */
SL_MUST_CHECK int manifest_log_start(struct manifest *m, const uint8_t id[16], int32_t partition,
				     int64_t offset, int64_t now_ms);
/* Set (or replace) a committed offset; o's strings are copied. */
SL_MUST_CHECK int manifest_offset_commit(struct manifest *m, const struct mf_offset *o);
/* partition -1: every partition of the topic.  Deleting nothing is not an error. */
SL_MUST_CHECK int manifest_offset_delete(struct manifest *m, const char *group, const char *topic,
					 int32_t partition);
SL_MUST_CHECK int manifest_group_delete(struct manifest *m, const char *group);
SL_MUST_CHECK int manifest_producers_set(struct manifest *m, uint16_t version, const void *blob,
					 size_t len);
/*
 * Set (len > 0) or clear (len 0) a partition's state bytes.  Bytes equal to
 * what is there already change nothing and add no operation.  SL_E_NOTFOUND
 * for an unknown partition, SL_E_TOOBIG above MF_STATE_MAX.
 */
SL_MUST_CHECK int manifest_partition_state(struct manifest *m, const uint8_t id[16], int32_t partition,
					   const void *blob, size_t len);
/* Drop a retired key the collector has deleted. */
SL_MUST_CHECK int manifest_forget(struct manifest *m, const char *key);

/* ---- versions: bytes ---- */

/* "manifest/" and version as 20 digits into buf (at least MANIFEST_KEY_LEN + 1 bytes). */
void manifest_key(uint64_t version, char *buf);
/* The version a key names, or 0 if it is not a version's key. */
uint64_t manifest_key_version(const char *key);
/* Check a version object's frame (magic, format, lengths, CRC) and read its header. */
SL_MUST_CHECK int manifest_peek(const uint8_t *p, size_t len, struct manifest_header *h);
/*
 * Apply one version object: a checkpoint to an empty manifest, or the delta
 * that follows m's version (version + 1, its prev_crc = m's crc, the same
 * checkpoint, an epoch not lower).  SL_E_CORRUPT for anything else or any
 * bytes out of place; SL_E_NOMEM.  After an error m is only fit for
 * manifest_free().
 */
SL_MUST_CHECK int manifest_apply(struct manifest *m, const uint8_t *p, size_t len);
/*
 * The state as a checkpoint of m's own version (prev_crc 0): what the
 * writer's checkpoints hold.  The caller free()s *out.  SL_E_INVALID while
 * an object has no reference (a commit retires those first).
 */
SL_MUST_CHECK int manifest_snapshot(const struct manifest *m, uint8_t **out, size_t *len);

/* ---- versions: the object store ---- */

/*
 * Load the newest state from os: list manifest/, read the newest version,
 * the checkpoint it names and the deltas between, and apply them.  fn gets
 * the manifest (which it then owns), or an error and NULL: SL_E_CORRUPT
 * (a version that does not decode or does not follow), SL_E_NOTFOUND (a
 * version the listing showed is gone: the load was tried 3 times), or the
 * store's error.  An empty store gives an empty manifest (version 0).
 */
SL_MUST_CHECK int manifest_load(struct objstore *os, manifest_load_fn fn, void *arg,
				struct manifest_load **h);
void manifest_load_cancel(struct manifest_load *h);

/*
 * Become the writer: later commits carry node and epoch m->epoch + 1, so
 * the first commit also fences any writer of a lower epoch.  The manifest
 * needs a cluster id.  policy NULL: defaults.
 */
SL_MUST_CHECK int manifest_writer_start(struct manifest *m, int32_t node,
					const struct manifest_policy *policy);
/*
 * Write the pending edits as version m->version + 1 (a checkpoint when the
 * policy says so, or for version 1), with put-if-absent; a commit also
 * retires objects left without references.  When an earlier commit failed
 * short of an answer, its exact bytes are sent again first, for the same
 * version (the edits since then wait for the next commit).
 * fn(arg, err, version) from the loop:
 *   0            version is committed and m->version is it;
 *   SL_E_EXISTS  another writer made that version: this writer is fenced;
 *                m refuses edits and commits from now on; reload;
 *   other        not known to be committed; edits stay pending.
 * Returns at once SL_E_INVALID (not a writer), SL_E_EXISTS (fenced),
 * SL_E_FULL (a commit is under way), SL_E_TOOBIG (the version would pass
 * MANIFEST_MAX_BYTES), SL_E_NOMEM or the store's error.
 */
SL_MUST_CHECK int manifest_commit(struct manifest *m, struct objstore *os, int64_t now_ms,
				  manifest_commit_fn fn, void *arg);

/* ---- the collector ---- */

struct manifest_gc {
	char **delete_keys;		/* delete these (data objects, old versions) */
	size_t ndelete;
	char **forget_keys;		/* retired keys gone from the store: manifest_forget */
	size_t nforget;
};

/*
 * Decide what to delete, given m (the newest state, as its writer holds it)
 * and a listing of the store under data_prefix and manifest/ (both complete;
 * other keys are ignored):
 *   - a data object (under data_prefix) that m does not reference, once
 *     grace_ms has passed since it was retired, or, if m never knew it
 *     (an upload that was never committed), since it was last modified;
 *   - a version below m's newest checkpoint, once grace_ms has passed
 *     since that checkpoint was written (readers that started from an
 *     older one have had that long to finish).
 * Retired keys under data_prefix that the listing no longer shows, and
 * whose grace has passed, are to be forgotten.  grace_ms must exceed the
 * time from an upload to the commit that names it, and the longest read of
 * an object.  Returns 0 or SL_E_NOMEM; the caller frees out with
 * manifest_gc_free().
 */
SL_MUST_CHECK int manifest_gc_plan(const struct manifest *m, const struct objstore_entry *entries,
				   size_t n, const char *data_prefix, int64_t now_ms, int64_t grace_ms,
				   struct manifest_gc *out);
void manifest_gc_free(struct manifest_gc *g);

#endif
