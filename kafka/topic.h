/*
 * topic.h - the topic and partition registry.
 *
 * A topic has a name (Kafka's rules: 1-249 characters of [a-zA-Z0-9._-],
 * not "." or ".."), a random non-zero UUID, a fixed number of partitions and
 * its configuration overrides.  Each partition is one storage stream, named
 * (topic id, partition index), so a topic deleted and re-created under the
 * same name never sees the old data.
 *
 * Names that differ only by '.' versus '_' collide in Kafka's metrics names;
 * like Kafka, the registry refuses the second one.
 *
 * Ownership: the registry owns topics; a struct topic pointer is valid until
 * topic_delete() or registry_destroy().  Callers that wait across loop turns
 * keep the name, not the pointer, and look it up again.
 */
#ifndef SL_KAFKA_TOPIC_H
#define SL_KAFKA_TOPIC_H

#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "../storage/stream.h"

#define TOPIC_NAME_MAX 249
#define TOPIC_PARTITIONS_MAX 10000

struct topic_config {
	char *key;
	char *value;
};

struct topic {
	char name[TOPIC_NAME_MAX + 1];
	uint8_t id[16];
	int32_t npart;
	struct stream **parts;		/* npart streams */
	struct pst_table **producers;	/* npart producer states (kafka/pstate.h), NULL until used */
	struct topic_config *configs;	/* explicit overrides */
	int32_t nconfigs;
	int log_append_time;		/* message.timestamp.type=LogAppendTime */
	int32_t max_message_bytes;	/* max.message.bytes, or the broker default */
	struct topic *next;		/* registry's list, creation order */
};

struct registry;
struct pst_table;

struct registry *registry_new(struct store *st);
void registry_destroy(struct registry *r);

/* 0 if name obeys Kafka's rules; else SL_E_INVALID with a reason in why. */
int topic_name_check(const char *name, size_t len, const char **why);
/* The topic config keys Sluice accepts, and a check of one value. */
int topic_config_check(const char *key, const char *value, const char **why);

struct topic *topic_find(struct registry *r, const char *name, size_t len);
struct topic *topic_find_id(struct registry *r, const uint8_t id[16]);
/* Would creating name collide with an existing topic ('.' vs '_')? */
struct topic *topic_collides(struct registry *r, const char *name, size_t len);

/*
 * Create a topic with npart partitions and the given overrides (copied).
 * default_max_bytes is the broker's message.max.bytes.  id is the topic id
 * to use (replay) or NULL for a new random one.  Returns 0 and *out,
 * SL_E_EXISTS, SL_E_INVALID or SL_E_NOMEM.
 */
int topic_create(struct registry *r, const char *name, size_t len, int32_t npart,
		 const struct topic_config *configs, int32_t nconfigs,
		 int32_t default_max_bytes, const uint8_t *id, struct topic **out);

/*
 * Journal records for topic changes, written to the store's metadata log so
 * topics survive a restart (docs/FORMAT.md, "Topic records"):
 *   version u8 = 1 | op u8 (1 create, 2 delete) | topic id [16]
 *   create only: name len u16 | name | partitions i32 | configs i32 |
 *                per config: key len u16 | key | value len i16 (-1 null) | value
 * The encoders return 0 or the writer's error; topic_replay() applies one
 * record and logs (never crashes on) a malformed one.
 */
int topic_journal_create(const struct topic *t, struct sl_wr *w);
int topic_journal_delete(const struct topic *t, struct sl_wr *w);
void topic_replay(struct registry *r, const uint8_t *p, size_t n, int32_t default_max_bytes);
/*
 * Partition p's producer state (kafka/pstate.h), created empty when create
 * is set; NULL without memory or when absent and not created.  Freed with
 * the topic.
 */
struct pst_table *topic_producers(struct topic *t, int32_t p, int create);
/* Delete t and its streams; t is freed. */
void topic_delete(struct registry *r, struct topic *t);

/* Iterate in creation order: for (t = topic_first(r); t; t = t->next). */
struct topic *topic_first(struct registry *r);
int32_t registry_count(const struct registry *r);

#endif
