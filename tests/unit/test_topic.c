/*
 * test_topic.c - the topic registry: Kafka's name rules, '.'/'_' collisions,
 * topic config checks, creation, ids, lookup, deletion.
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/topic.h"
#include "../../kernel/log.h"

static int name_ok(const char *n)
{
	const char *why;
	return topic_name_check(n, strlen(n), &why) == 0;
}

static void test_names(void)
{
	char long_name[251];

	T_CHECK(name_ok("orders"));
	T_CHECK(name_ok("a.b_c-D9"));
	T_CHECK(!name_ok(""));
	T_CHECK(!name_ok("."));
	T_CHECK(!name_ok(".."));
	T_CHECK(name_ok("..."));
	T_CHECK(!name_ok("has space"));
	T_CHECK(!name_ok("slash/"));
	T_CHECK(!name_ok("caf\xc3\xa9"));
	memset(long_name, 'x', 249);
	long_name[249] = 0;
	T_CHECK(name_ok(long_name));
	long_name[249] = 'x';
	long_name[250] = 0;
	T_CHECK(!name_ok(long_name));
}

static void test_configs(void)
{
	const char *why;

	T_EQ(topic_config_check("retention.ms", "-1", &why), 0);
	T_EQ(topic_config_check("retention.ms", "-2", &why), SL_E_INVALID);
	T_EQ(topic_config_check("retention.ms", "12x", &why), SL_E_INVALID);
	T_EQ(topic_config_check("cleanup.policy", "compact", &why), 0);
	T_EQ(topic_config_check("cleanup.policy", "compac", &why), SL_E_INVALID);
	T_EQ(topic_config_check("message.timestamp.type", "LogAppendTime", &why), 0);
	T_EQ(topic_config_check("min.cleanable.dirty.ratio", "0.5", &why), 0);
	T_EQ(topic_config_check("min.cleanable.dirty.ratio", "2", &why), SL_E_INVALID);
	T_EQ(topic_config_check("preallocate", "yes", &why), SL_E_INVALID);
	T_EQ(topic_config_check("no.such.key", "1", &why), SL_E_NOTFOUND);
	T_EQ(topic_config_check("retention.ms", NULL, &why), SL_E_INVALID);
}

static void test_create_find_delete(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);
	struct registry *r = registry_new(st);
	struct topic *a, *b, *c;
	struct topic_config cfg[] = { { "message.timestamp.type", "LogAppendTime" },
				      { "max.message.bytes", "2048" } };

	T_EQ(topic_create(r, "a.b", 3, 3, NULL, 0, 1000, NULL, &a), 0);
	T_EQ(a->npart, 3);
	T_EQ(a->max_message_bytes, 1000);
	T_EQ(a->id[6] >> 4, 4);		/* UUID version 4 */
	T_EQ(topic_create(r, "a.b", 3, 1, NULL, 0, 1000, NULL, &b), SL_E_EXISTS);
	T_EQ(topic_create(r, "bad name", 8, 1, NULL, 0, 1000, NULL, &b), SL_E_INVALID);
	T_EQ(topic_create(r, "zero", 4, 0, NULL, 0, 1000, NULL, &b), SL_E_INVALID);
	T_CHECK(topic_collides(r, "a_b", 3) == a);
	T_CHECK(topic_collides(r, "a.b", 3) == NULL);
	T_EQ(topic_create(r, "logs", 4, 2, cfg, 2, 1000, NULL, &b), 0);
	T_EQ(b->log_append_time, 1);
	T_EQ(b->max_message_bytes, 2048);
	T_EQ(b->nconfigs, 2);
	T_CHECK(memcmp(a->id, b->id, 16) != 0);
	T_CHECK(topic_find(r, "logs", 4) == b);
	T_CHECK(topic_find(r, "log", 3) == NULL);
	T_CHECK(topic_find_id(r, b->id) == b);
	T_EQ(registry_count(r), 2);
	T_CHECK(topic_first(r) == a && a->next == b);

	/* Partitions are streams named by (topic id, index). */
	struct stream_id sid;
	memcpy(sid.ns, b->id, 16);
	sid.index = 1;
	T_CHECK(store_stream(st, &sid, 0) == b->parts[1]);
	topic_delete(r, a);
	T_EQ(registry_count(r), 1);
	T_CHECK(topic_find(r, "a.b", 3) == NULL);
	T_CHECK(topic_first(r) == b);
	/* Re-created under the same name: a new id and empty streams. */
	T_EQ(topic_create(r, "a.b", 3, 1, NULL, 0, 1000, NULL, &c), 0);
	T_EQ(stream_next(c->parts[0]), 0);
	topic_delete(r, b);
	T_CHECK(topic_first(r) == c && c->next == NULL);
	registry_destroy(r);
	store_destroy(st);
	loop_destroy(l);
}

/* Topic changes journaled and replayed into a fresh registry come back the same. */
static void test_journal_replay(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l), *st2 = store_new(l);
	struct registry *r = registry_new(st), *r2 = registry_new(st2);
	struct topic_config cfg[] = { { "retention.ms", "1000" }, { "cleanup.policy", "compact" } };
	struct topic *a, *b;
	struct sl_wr w[3];

	T_EQ(topic_create(r, "alpha", 5, 4, cfg, 2, 1000, NULL, &a), 0);
	T_EQ(topic_create(r, "beta", 4, 1, NULL, 0, 1000, NULL, &b), 0);
	for (int i = 0; i < 3; i++)
		wr_init(&w[i], 0);
	T_EQ(topic_journal_create(a, &w[0]), 0);
	T_EQ(topic_journal_create(b, &w[1]), 0);
	T_EQ(topic_journal_delete(b, &w[2]), 0);
	for (int i = 0; i < 3; i++)
		topic_replay(r2, w[i].p, w[i].len, 1000);
	struct topic *a2 = topic_find(r2, "alpha", 5);
	T_CHECK(a2 != NULL);
	T_CHECK(topic_find(r2, "beta", 4) == NULL);
	T_EQ(registry_count(r2), 1);
	if (a2) {
		T_MEMEQ(a2->id, a->id, 16);
		T_EQ(a2->npart, 4);
		T_EQ(a2->nconfigs, 2);
		T_CHECK(strcmp(a2->configs[1].value, "compact") == 0);
	}
	/* Every truncation of a record is refused without effect or crash. */
	for (size_t n = 0; n < w[0].len; n++)
		topic_replay(r2, w[0].p, n, 1000);
	T_EQ(registry_count(r2), 1);
	for (int i = 0; i < 3; i++)
		wr_free(&w[i]);
	registry_destroy(r);
	registry_destroy(r2);
	store_destroy(st);
	store_destroy(st2);
	loop_destroy(l);
}

int main(void)
{
	log_set_level(LOG_ERROR + 1);
	T_RUN(test_names);
	T_RUN(test_configs);
	T_RUN(test_create_find_delete);
	T_RUN(test_journal_replay);
	return t_done();
}
