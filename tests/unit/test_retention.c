/*
 * test_retention.c - the retention engine (kafka/retention.c) on chunk
 * arrays and a fixed `now`: time, size, both, unknown timestamps, the high
 * watermark as a ceiling, a start inside the first chunk, empty partitions,
 * unlimited policies, and the incremental walk agreeing with the array form.
 */
#include "t.h"
#include "../../kafka/retention.h"

#define NOW 1700000000000LL
#define MIN 60000LL

/* Chunk i of n: offsets [10 i, 10 i + 9], bytes 100 each unless given. */
#define CH(i, ts) { 10 * (i), 10 * (i) + 9, (ts), 100 }

static int64_t run(const struct tier_chunk *c, size_t n, int64_t ms, int64_t bytes, int64_t start,
		   int64_t hw, int *why)
{
	struct ret_policy p = { ms, bytes };

	return ret_new_start(c, n, &p, NOW, start, hw, why);
}

static void test_time(void)
{
	struct tier_chunk c[4] = {
		CH(0, NOW - 30 * MIN), CH(1, NOW - 20 * MIN), CH(2, NOW - 5 * MIN), CH(3, NOW),
	};
	int why = -1;

	/* older than 10 minutes: the first two */
	T_EQ(run(c, 4, 10 * MIN, -1, 0, 40, &why), 20);
	T_EQ(why, RET_TIME);
	/* exactly at the limit is not expired: max_ts < now - ms */
	T_EQ(run(c, 4, 20 * MIN, -1, 0, 40, &why), 10);
	T_EQ(run(c, 4, 30 * MIN, -1, 0, 40, &why), 0);
	T_EQ(why, 0);
	/* retention.ms 0: everything older than now */
	T_EQ(run(c, 4, 0, -1, 0, 40, NULL), 30);
	/* unlimited */
	T_EQ(run(c, 4, -1, -1, 0, 40, &why), 0);
	T_EQ(why, 0);
	/* a prefix only: a young chunk stops the walk, older ones after it wait */
	struct tier_chunk d[3] = { CH(0, NOW - 30 * MIN), CH(1, NOW), CH(2, NOW - 30 * MIN) };
	T_EQ(run(d, 3, 10 * MIN, -1, 0, 30, NULL), 10);
	/* a huge retention.ms and a negative now do not overflow */
	struct ret_policy p = { INT64_MAX, -1 };
	T_EQ(ret_new_start(c, 4, &p, NOW, 0, 40, NULL), 0);
	T_EQ(ret_new_start(c, 4, &p, -NOW, 0, 40, NULL), 0);
}

static void test_unknown_timestamps(void)
{
	struct tier_chunk c[3] = { CH(0, -1), CH(1, NOW - 60 * MIN), CH(2, -1) };
	int why;

	/* -1 never expires by time, and it blocks the prefix */
	T_EQ(run(c, 3, MIN, -1, 0, 30, &why), 0);
	T_EQ(why, 0);
	/* by size it still goes, and then the old chunk after it by time */
	T_EQ(run(c, 3, MIN, 200, 0, 30, &why), 20);
	T_EQ(why, RET_TIME | RET_SIZE);
	T_EQ(run(c, 3, -1, 200, 0, 30, &why), 10);
	T_EQ(why, RET_SIZE);
	T_EQ(run(c + 1, 2, MIN, -1, 10, 30, &why), 20);
	T_EQ(why, RET_TIME);
}

static void test_size(void)
{
	struct tier_chunk c[5] = {
		CH(0, NOW), CH(1, NOW), CH(2, NOW), CH(3, NOW), CH(4, NOW),
	};
	int why;

	/* Kafka: drop the oldest while (total - its size) >= retention.bytes */
	T_EQ(run(c, 5, -1, 200, 0, 50, &why), 30);	/* 500 -> 200 */
	T_EQ(why, RET_SIZE);
	T_EQ(run(c, 5, -1, 201, 0, 50, NULL), 20);	/* 500 -> 300: 200 < 201 */
	T_EQ(run(c, 5, -1, 199, 0, 50, NULL), 30);
	T_EQ(run(c, 5, -1, 500, 0, 50, NULL), 0);	/* at the limit: nothing */
	T_EQ(run(c, 5, -1, 501, 0, 50, NULL), 0);
	T_EQ(run(c, 5, -1, 100, 0, 50, NULL), 40);	/* one chunk stays */
	/* 0 bytes: everything goes, up to the high watermark */
	T_EQ(run(c, 5, -1, 0, 0, 50, NULL), 50);
	/* uneven sizes */
	struct tier_chunk u[3] = { { 0, 0, NOW, 1000 }, { 1, 5, NOW, 10 }, { 6, 6, NOW, 10 } };
	T_EQ(run(u, 3, -1, 15, 0, 7, NULL), 1);		/* 1020 -> 20; 10 < 15 stops */
	T_EQ(run(u, 3, -1, 10, 0, 7, NULL), 6);
}

static void test_both(void)
{
	struct tier_chunk c[4] = {
		CH(0, NOW), CH(1, NOW - 60 * MIN), CH(2, NOW - 60 * MIN), CH(3, NOW),
	};
	int why;

	/* size drops the first (young) chunk, then time the next two */
	T_EQ(run(c, 4, 30 * MIN, 300, 0, 40, &why), 30);
	T_EQ(why, RET_TIME | RET_SIZE);
	/* neither applies to the first: nothing moves */
	T_EQ(run(c, 4, 30 * MIN, 400, 0, 40, &why), 0);
	T_EQ(why, 0);
	/* both reasons on one chunk */
	struct tier_chunk d[2] = { CH(0, NOW - 60 * MIN), CH(1, NOW) };
	T_EQ(run(d, 2, 30 * MIN, 100, 0, 20, &why), 10);
	T_EQ(why, RET_TIME | RET_SIZE);
}

static void test_bounds(void)
{
	struct tier_chunk c[3] = {
		CH(0, NOW - 60 * MIN), CH(1, NOW - 60 * MIN), CH(2, NOW - 60 * MIN),
	};
	int why;

	/* never past the high watermark, even if a chunk says otherwise */
	T_EQ(run(c, 3, MIN, -1, 0, 25, &why), 25);
	T_EQ(why, RET_TIME);
	/* a start inside the first chunk: its end, not before */
	T_EQ(run(c, 3, MIN, -1, 5, 30, NULL), 30);
	T_EQ(run(c, 1, MIN, -1, 5, 30, NULL), 10);
	/* never backwards: a start already past the expired chunks stays */
	T_EQ(run(c, 1, MIN, -1, 15, 30, &why), 15);
	T_EQ(why, 0);
	/* empty partitions */
	T_EQ(run(NULL, 0, MIN, 0, 0, 0, &why), 0);
	T_EQ(why, 0);
	T_EQ(run(NULL, 0, MIN, 0, 7, 7, NULL), 7);
	/* start == hw: nothing to walk, even with chunks offered */
	T_EQ(run(c, 3, MIN, 0, 30, 30, NULL), 30);
}

/* The incremental walk stops as soon as it can, and says so. */
static void test_walk(void)
{
	struct tier_chunk c[4] = {
		CH(0, NOW - 60 * MIN), CH(1, NOW), CH(2, NOW - 60 * MIN), CH(3, NOW - 60 * MIN),
	};
	struct ret_policy p = { 30 * MIN, -1 };
	struct ret_walk w;

	ret_begin(&w, &p, NOW, 0, 40, 0);
	T_EQ(ret_step(&w, &c[0]), 0);
	T_EQ(w.start, 10);
	T_EQ(ret_step(&w, &c[1]), 1);
	T_EQ(ret_step(&w, &c[2]), 1);		/* over: later chunks change nothing */
	T_EQ(w.start, 10);
	T_EQ(w.why, RET_TIME);
	/* reaching the high watermark ends it too */
	ret_begin(&w, &p, NOW, 20, 40, 0);
	T_EQ(ret_step(&w, &c[2]), 0);
	T_EQ(ret_step(&w, &c[3]), 1);
	T_EQ(w.start, 40);
	/* unlimited: over before it starts */
	struct ret_policy none = { -1, -1 };
	ret_begin(&w, &none, NOW, 0, 40, 400);
	T_EQ(w.done, 1);
	T_EQ(ret_step(&w, &c[0]), 1);
	T_EQ(w.start, 0);
}

int main(void)
{
	T_RUN(test_time);
	T_RUN(test_unknown_timestamps);
	T_RUN(test_size);
	T_RUN(test_both);
	T_RUN(test_bounds);
	T_RUN(test_walk);
	return t_done();
}
