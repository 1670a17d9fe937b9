/*
 * topic.c - the topic registry: names, ids, partitions, config overrides.
 *
 * Topics are few (thousands at most) next to records, so the registry is a
 * list in creation order (what Metadata returns) plus a hash by name for the
 * produce and fetch paths.  Ids are looked up by a linear scan: only
 * Metadata v10+ and DeleteTopics v6 address topics by id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "topic.h"
#include "pstate.h"
#include "../kernel/log.h"

#define NBUCKETS 1024

struct hnode {
	struct topic *t;
	struct hnode *next;
};

struct registry {
	struct store *st;
	struct topic *head, *tail;
	int32_t count;
	struct hnode *buckets[NBUCKETS];
};

static size_t name_hash(const char *s, size_t n)
{
	size_t h = 5381;
	for (size_t i = 0; i < n; i++)
		h = h * 33 + (unsigned char)s[i];
	return h % NBUCKETS;
}

struct registry *registry_new(struct store *st)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (r)
		r->st = st;
	return r;
}

static void topic_free(struct topic *t)
{
	for (int32_t i = 0; i < t->nconfigs; i++) {
		free(t->configs[i].key);
		free(t->configs[i].value);
	}
	free(t->configs);
	if (t->producers)
		for (int32_t i = 0; i < t->npart; i++)
			pst_table_free(t->producers[i]);
	free(t->producers);
	free(t->parts);
	free(t);
}

struct pst_table *topic_producers(struct topic *t, int32_t p, int create)
{
	if (p < 0 || p >= t->npart)
		return NULL;
	if (!t->producers) {
		if (!create || !(t->producers = calloc((size_t)t->npart, sizeof(*t->producers))))
			return NULL;
	}
	if (!t->producers[p] && create)
		t->producers[p] = pst_table_new();
	return t->producers[p];
}

void registry_destroy(struct registry *r)
{
	if (!r)
		return;
	for (size_t b = 0; b < NBUCKETS; b++) {
		struct hnode *h = r->buckets[b], *nx;
		for (; h; h = nx) {
			nx = h->next;
			free(h);
		}
	}
	struct topic *t = r->head, *nx;
	for (; t; t = nx) {
		nx = t->next;
		topic_free(t);
	}
	free(r);
}

int topic_name_check(const char *name, size_t len, const char **why)
{
	if (len == 0) {
		*why = "topic name is empty";
		return SL_E_INVALID;
	}
	if (len > TOPIC_NAME_MAX) {
		*why = "topic name is longer than 249 characters";
		return SL_E_INVALID;
	}
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
		*why = "topic name cannot be '.' or '..'";
		return SL_E_INVALID;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			*why = "topic name may contain only ASCII letters, digits, '.', '_' and '-'";
			return SL_E_INVALID;
		}
	}
	return 0;
}

static int parse_long(const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	if (!*s)
		return -1;
	v = strtoll(s, &end, 10);
	return *end || v < lo || v > hi ? -1 : 0;
}

/*
 * The topic-level keys accepted, with the kind of value each takes.  Keys
 * that only matter to later layers (retention, segment sizes) are accepted
 * and stored now so topics created by existing tooling keep their settings.
 */
static const struct {
	const char *key;
	char kind;		/* 'l' long >= -1, 'p' long >= 0, 'b' bool, 's' choice, 'f' float */
	const char *choices;	/* for 's': '|'-separated */
} topic_keys[] = {
	{ "cleanup.policy", 's', "delete|compact|compact,delete|delete,compact" },
	{ "compression.type", 's', "producer|uncompressed|gzip|snappy|lz4|zstd" },
	{ "delete.retention.ms", 'p', NULL },
	{ "file.delete.delay.ms", 'p', NULL },
	{ "flush.messages", 'p', NULL },
	{ "flush.ms", 'p', NULL },
	{ "index.interval.bytes", 'p', NULL },
	{ "max.compaction.lag.ms", 'p', NULL },
	{ "max.message.bytes", 'p', NULL },
	{ "message.downconversion.enable", 'b', NULL },
	{ "message.timestamp.difference.max.ms", 'p', NULL },
	{ "message.timestamp.type", 's', "CreateTime|LogAppendTime" },
	{ "min.cleanable.dirty.ratio", 'f', NULL },
	{ "min.compaction.lag.ms", 'p', NULL },
	{ "min.insync.replicas", 'p', NULL },
	{ "preallocate", 'b', NULL },
	{ "retention.bytes", 'l', NULL },
	{ "retention.ms", 'l', NULL },
	{ "segment.bytes", 'p', NULL },
	{ "segment.index.bytes", 'p', NULL },
	{ "segment.jitter.ms", 'p', NULL },
	{ "segment.ms", 'p', NULL },
	{ "unclean.leader.election.enable", 'b', NULL },
};

int topic_config_check(const char *key, const char *value, const char **why)
{
	for (size_t i = 0; i < sizeof(topic_keys) / sizeof(topic_keys[0]); i++) {
		if (strcmp(key, topic_keys[i].key) != 0)
			continue;
		if (!value) {
			*why = "topic config value is null";
			return SL_E_INVALID;
		}
		switch (topic_keys[i].kind) {
		case 'l':
			if (parse_long(value, -1, INT64_MAX) == 0)
				return 0;
			*why = "expected an integer >= -1";
			return SL_E_INVALID;
		case 'p':
			if (parse_long(value, 0, INT64_MAX) == 0)
				return 0;
			*why = "expected a non-negative integer";
			return SL_E_INVALID;
		case 'b':
			if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
				return 0;
			*why = "expected true or false";
			return SL_E_INVALID;
		case 'f': {
			char *end;
			double d = strtod(value, &end);
			if (*value && !*end && d >= 0 && d <= 1)
				return 0;
			*why = "expected a number between 0 and 1";
			return SL_E_INVALID;
		}
		case 's': {
			size_t vl = strlen(value);
			const char *c = topic_keys[i].choices;
			while (*c) {
				const char *bar = strchr(c, '|');
				size_t cl = bar ? (size_t)(bar - c) : strlen(c);
				if (cl == vl && strncmp(c, value, vl) == 0)
					return 0;
				c += cl + (bar ? 1 : 0);
			}
			*why = "value is not one of the accepted choices";
			return SL_E_INVALID;
		}
		}
	}
	*why = "unknown topic config";
	return SL_E_NOTFOUND;
}

struct topic *topic_find(struct registry *r, const char *name, size_t len)
{
	if (len > TOPIC_NAME_MAX)
		return NULL;
	for (struct hnode *h = r->buckets[name_hash(name, len)]; h; h = h->next)
		if (strlen(h->t->name) == len && memcmp(h->t->name, name, len) == 0)
			return h->t;
	return NULL;
}

struct topic *topic_find_id(struct registry *r, const uint8_t id[16])
{
	for (struct topic *t = r->head; t; t = t->next)
		if (memcmp(t->id, id, 16) == 0)
			return t;
	return NULL;
}

struct topic *topic_collides(struct registry *r, const char *name, size_t len)
{
	for (struct topic *t = r->head; t; t = t->next) {
		if (strlen(t->name) != len)
			continue;
		size_t i;
		for (i = 0; i < len; i++) {
			char a = t->name[i] == '.' ? '_' : t->name[i];
			char b = name[i] == '.' ? '_' : name[i];
			if (a != b)
				break;
		}
		if (i == len && memcmp(t->name, name, len) != 0)
			return t;
	}
	return NULL;
}

static void new_topic_id(struct registry *r, uint8_t id[16])
{
	static const uint8_t zero[16];

	do {
		if (getrandom(id, 16, 0) != 16) {
			/* The pool is initialised long before topics exist; fall back to a counter. */
			static uint64_t n;
			n++;
			memset(id, 0, 16);
			memcpy(id, &n, sizeof(n));
		}
		id[6] = (id[6] & 0x0f) | 0x40;	/* version 4 */
		id[8] = (id[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	} while (memcmp(id, zero, 16) == 0 || topic_find_id(r, id));
}

int topic_create(struct registry *r, const char *name, size_t len, int32_t npart,
		 const struct topic_config *configs, int32_t nconfigs,
		 int32_t default_max_bytes, const uint8_t *id, struct topic **out)
{
	const char *why;
	struct topic *t;
	struct hnode *h;

	if (topic_name_check(name, len, &why) != 0 || npart < 1 || npart > TOPIC_PARTITIONS_MAX)
		return SL_E_INVALID;
	if (topic_find(r, name, len))
		return SL_E_EXISTS;
	t = calloc(1, sizeof(*t));
	h = calloc(1, sizeof(*h));
	if (!t || !h)
		goto nomem;
	memcpy(t->name, name, len);
	t->name[len] = 0;
	t->npart = npart;
	t->max_message_bytes = default_max_bytes;
	if (id)
		memcpy(t->id, id, 16);
	else
		new_topic_id(r, t->id);
	t->parts = calloc((size_t)npart, sizeof(*t->parts));
	t->configs = nconfigs ? calloc((size_t)nconfigs, sizeof(*t->configs)) : NULL;
	if (!t->parts || (nconfigs && !t->configs))
		goto nomem;
	for (int32_t i = 0; i < nconfigs; i++) {
		t->configs[i].key = strdup(configs[i].key);
		t->configs[i].value = strdup(configs[i].value);
		t->nconfigs++;
		if (!t->configs[i].key || !t->configs[i].value)
			goto nomem;
		if (strcmp(configs[i].key, "message.timestamp.type") == 0)
			t->log_append_time = strcmp(configs[i].value, "LogAppendTime") == 0;
		if (strcmp(configs[i].key, "max.message.bytes") == 0) {
			long long v = strtoll(configs[i].value, NULL, 10);
			t->max_message_bytes = v > INT32_MAX ? INT32_MAX : (int32_t)v;
		}
	}
	for (int32_t i = 0; i < npart; i++) {
		struct stream_id sid;
		memcpy(sid.ns, t->id, 16);
		sid.index = i;
		t->parts[i] = store_stream(r->st, &sid, 1);
		if (!t->parts[i]) {
			for (int32_t j = 0; j < i; j++)
				stream_delete(t->parts[j]);
			goto nomem;
		}
	}
	size_t b = name_hash(name, len);
	h->t = t;
	h->next = r->buckets[b];
	r->buckets[b] = h;
	if (r->tail)
		r->tail->next = t;
	else
		r->head = t;
	r->tail = t;
	r->count++;
	*out = t;
	return 0;
nomem:
	free(h);
	if (t)
		topic_free(t);
	return SL_E_NOMEM;
}

void topic_delete(struct registry *r, struct topic *t)
{
	struct hnode **hp = &r->buckets[name_hash(t->name, strlen(t->name))];

	while (*hp && (*hp)->t != t)
		hp = &(*hp)->next;
	if (*hp) {
		struct hnode *h = *hp;
		*hp = h->next;
		free(h);
	}
	struct topic **tp = &r->head, *prev = NULL;
	while (*tp != t) {
		prev = *tp;
		tp = &(*tp)->next;
	}
	*tp = t->next;
	if (r->tail == t)
		r->tail = prev;
	r->count--;
	/* Streams go last: deleting one wakes long polls, which look topics up again. */
	for (int32_t i = 0; i < t->npart; i++)
		stream_delete(t->parts[i]);
	topic_free(t);
}

struct topic *topic_first(struct registry *r)
{
	return r->head;
}

int32_t registry_count(const struct registry *r)
{
	return r->count;
}

enum { JOURNAL_CREATE = 1, JOURNAL_DELETE = 2 };

static void put_str16(struct sl_wr *w, const char *s)
{
	size_t n = strlen(s);
	wr_u16(w, (uint16_t)n);
	wr_bytes(w, s, n);
}

int topic_journal_create(const struct topic *t, struct sl_wr *w)
{
	wr_u8(w, 1);
	wr_u8(w, JOURNAL_CREATE);
	wr_bytes(w, t->id, 16);
	put_str16(w, t->name);
	wr_i32(w, t->npart);
	wr_i32(w, t->nconfigs);
	for (int32_t i = 0; i < t->nconfigs; i++) {
		put_str16(w, t->configs[i].key);
		if (t->configs[i].value) {
			wr_i16(w, (int16_t)strlen(t->configs[i].value));
			wr_bytes(w, t->configs[i].value, strlen(t->configs[i].value));
		} else {
			wr_i16(w, -1);
		}
	}
	return w->err;
}

int topic_journal_delete(const struct topic *t, struct sl_wr *w)
{
	wr_u8(w, 1);
	wr_u8(w, JOURNAL_DELETE);
	wr_bytes(w, t->id, 16);
	return w->err;
}

/* A u16-prefixed string copied into a NUL-terminated buffer of cap bytes. */
static int get_str16(struct sl_rd *r, char *out, size_t cap)
{
	uint16_t n;
	if (rd_u16(r, &n) || n >= cap || rd_copy(r, out, n))
		return -1;
	out[n] = 0;
	return 0;
}

void topic_replay(struct registry *r, const uint8_t *p, size_t n, int32_t default_max_bytes)
{
	struct sl_rd rd;
	uint8_t version, op, id[16];
	char name[TOPIC_NAME_MAX + 1];
	int32_t npart, ncfg;
	struct topic_config *cfg = NULL;
	struct topic *t;
	const char *why = "truncated";

	rd_init(&rd, p, n);
	if (rd_u8(&rd, &version) || rd_u8(&rd, &op) || rd_copy(&rd, id, 16))
		goto bad;
	if (version != 1) {
		why = "unknown version";
		goto bad;
	}
	if (op == JOURNAL_DELETE) {
		t = topic_find_id(r, id);
		if (t)
			topic_delete(r, t);
		return;
	}
	if (op != JOURNAL_CREATE) {
		why = "unknown operation";
		goto bad;
	}
	if (get_str16(&rd, name, sizeof(name)) || rd_i32(&rd, &npart) || rd_i32(&rd, &ncfg))
		goto bad;
	/* Every config takes at least 4 bytes: cap the count before allocating. */
	if (ncfg < 0 || (size_t)ncfg > rd_left(&rd) / 4) {
		why = "bad config count";
		goto bad;
	}
	cfg = calloc((size_t)ncfg + 1, sizeof(*cfg));
	if (!cfg) {
		why = "out of memory";
		goto bad;
	}
	for (int32_t i = 0; i < ncfg; i++) {
		uint16_t kl;
		int16_t vl;
		const uint8_t *k, *v;
		if (rd_u16(&rd, &kl) || rd_bytes(&rd, kl, &k) || rd_i16(&rd, &vl) || vl < -1 ||
		    (vl > 0 && rd_bytes(&rd, (size_t)vl, &v)))
			goto bad;
		cfg[i].key = strndup((const char *)k, kl);
		cfg[i].value = vl < 0 ? NULL : vl == 0 ? strdup("") : strndup((const char *)v, (size_t)vl);
		if (!cfg[i].key || (vl >= 0 && !cfg[i].value)) {
			why = "out of memory";
			goto bad;
		}
	}
	/* Restored from the manifest before the WAL was replayed over it. */
	if (topic_find_id(r, id))
		goto out;
	int rc = topic_create(r, name, strlen(name), npart, cfg, ncfg, default_max_bytes, id, &t);
	if (rc != 0)
		log_error("topic", "cannot re-create topic %s from the journal: %s", name, sl_strerror(rc));
	goto out;
bad:
	log_error("topic", "malformed topic record in the journal (%s); skipped", why);
out:
	for (int32_t i = 0; cfg && i < ncfg; i++) {
		free(cfg[i].key);
		free(cfg[i].value);
	}
	free(cfg);
}
