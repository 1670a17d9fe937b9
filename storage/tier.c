/*
 * tier.c - shared storage: the upload pipeline, the manifest's writer, WAL
 * trimming and cold reads (contract in tier.h).
 */
#include <stdlib.h>
#include <string.h>
#include "tier.h"
#include "../kernel/log.h"

struct tier {
	struct manifest *m;
};

void tier_topic_put(struct tier *t, const uint8_t id[16], const char *name, int32_t npartitions,
		    const struct mf_config *configs, uint32_t nconfigs)
{
	(void)id; (void)name; (void)npartitions; (void)configs; (void)nconfigs;
	if (!t)
		return;
}

void tier_topic_delete(struct tier *t, const uint8_t id[16])
{
	(void)id;
	if (!t)
		return;
}

void tier_log_start(struct tier *t, const uint8_t id[16], int32_t partition, int64_t offset)
{
	(void)id; (void)partition; (void)offset;
	if (!t)
		return;
}

void tier_offset_commit(struct tier *t, const struct mf_offset *o)
{
	(void)o;
	if (!t)
		return;
}

void tier_offset_delete(struct tier *t, const char *group, const char *topic, int32_t partition)
{
	(void)group; (void)topic; (void)partition;
	if (!t)
		return;
}

void tier_group_delete(struct tier *t, const char *group)
{
	(void)group;
	if (!t)
		return;
}

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

	(void)t;
	stream_foreach(s, from, chunk_of_batch, &cw);
}
