/*
 * test_stream.c - in-memory streams: offsets, asynchronous durability,
 * reads with byte budgets, time lookup, start offset, waiters, deletion.
 */
#include <stdlib.h>
#include "t.h"
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../kernel/log.h"
#include "../../storage/stream.h"

struct done { int calls; int err; int64_t base; };

static void on_done(void *arg, int err, int64_t base)
{
	struct done *d = arg;
	d->calls++;
	d->err = err;
	d->base = base;
}

static struct loop_task stop_task;
static void stop_fn(struct loop *l, void *arg) { loop_stop(l); }

/* Run one loop turn: deferred tasks (completions) run at its end. */
static void turn(struct loop *l)
{
	loop_task_init(&stop_task, stop_fn, NULL);
	loop_defer(l, &stop_task);
	T_EQ(loop_run(l), 0);
}

static struct stream_id sid(int ns, int idx)
{
	struct stream_id id = { { 0 }, idx };
	id.ns[0] = (uint8_t)ns;
	return id;
}

static void test_append_offsets_and_durability(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);
	struct stream_id id = sid(1, 0);
	struct stream *s = store_stream(st, &id, 1);
	struct stream_op op1 = { .fn = on_done }, op2 = { .fn = on_done };
	struct done d1 = { 0 }, d2 = { 0 };
	uint8_t a[100], b[50];

	op1.arg = &d1;
	op2.arg = &d2;
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	T_CHECK(store_stream(st, &id, 0) == s);
	T_EQ(stream_append(s, a, sizeof(a), 3, 1000, &op1), 0);
	T_EQ(stream_append(s, b, sizeof(b), 2, 2000, &op2), 3);
	T_EQ(stream_next(s), 5);
	/* Not durable yet: not readable, callbacks not run. */
	T_EQ(stream_hw(s), 0);
	T_EQ(d1.calls, 0);
	struct span sp[4];
	size_t total;
	T_EQ(stream_read(s, 0, 1000, 1, sp, 4, &total), 0);
	turn(l);
	T_EQ(d1.calls, 1);
	T_EQ(d1.base, 0);
	T_EQ(d2.calls, 1);
	T_EQ(d2.base, 3);
	T_EQ(stream_hw(s), 5);
	T_EQ(store_bytes(st), 150);
	store_destroy(st);
	loop_destroy(l);
}

static void test_read_budget(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);
	struct stream_id id = sid(2, 0);
	struct stream *s = store_stream(st, &id, 1);
	struct stream_op ops[10];
	struct done d = { 0 };
	uint8_t buf[100] = { 0 };

	for (int i = 0; i < 10; i++) {
		ops[i].fn = on_done;
		ops[i].arg = &d;
		T_EQ(stream_append(s, buf, 100, 10, i * 10, &ops[i]), i * 10);
	}
	turn(l);
	T_EQ(d.calls, 10);
	struct span sp[16];
	size_t total;
	/* Inside a batch: the whole batch containing the offset comes back. */
	T_EQ(stream_read(s, 55, 250, 1, sp, 16, &total), 2);
	T_EQ(total, 200);
	T_CHECK(sp[0].p != NULL);
	/* Budget smaller than one batch: min_one decides. */
	T_EQ(stream_read(s, 0, 10, 1, sp, 16, &total), 1);
	T_EQ(total, 100);
	T_EQ(stream_read(s, 0, 10, 0, sp, 16, &total), 0);
	/* Span cap. */
	T_EQ(stream_read(s, 0, 100000, 1, sp, 3, &total), 3);
	/* At hw: nothing; past hw or before start: not found. */
	T_EQ(stream_read(s, 100, 1000, 1, sp, 16, &total), 0);
	T_EQ(stream_read(s, 101, 1000, 1, sp, 16, &total), SL_E_NOTFOUND);
	T_EQ(stream_read(s, -1, 1000, 1, sp, 16, &total), SL_E_NOTFOUND);
	/* Start offset: whole batches below it are released. */
	T_EQ(stream_set_start(s, 25), 0);
	T_EQ(stream_start(s), 25);
	T_EQ(store_bytes(st), 800);
	T_EQ(stream_read(s, 24, 1000, 1, sp, 16, &total), SL_E_NOTFOUND);
	T_EQ(stream_read(s, 25, 100, 1, sp, 16, &total), 1);
	T_EQ(stream_set_start(s, 10), SL_E_INVALID);
	T_EQ(stream_set_start(s, 101), SL_E_INVALID);
	store_destroy(st);
	loop_destroy(l);
}

static void test_find_time(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);
	struct stream_id id = sid(3, 0);
	struct stream *s = store_stream(st, &id, 1);
	struct stream_op ops[3];
	struct done d = { 0 };
	uint8_t buf[10] = { 0 };
	int64_t ts[3] = { 100, 300, 200 };

	for (int i = 0; i < 3; i++) {
		ops[i].fn = on_done;
		ops[i].arg = &d;
		T_CHECK(stream_append(s, buf, 10, 5, ts[i], &ops[i]) >= 0);
	}
	struct span b;
	int64_t base;
	uint32_t count;
	T_EQ(stream_find_time(s, 0, &b, &base, &count), SL_E_NOTFOUND);	/* not durable */
	turn(l);
	T_EQ(stream_find_time(s, 150, &b, &base, &count), 0);
	T_EQ(base, 5);
	T_EQ(count, 5);
	T_EQ(stream_find_time(s, 301, &b, &base, &count), SL_E_NOTFOUND);
	T_EQ(stream_max_time(s, &base), 300);
	T_EQ(base, 5);
	store_destroy(st);
	loop_destroy(l);
}

struct wake { int calls; struct stream *s; struct stream_waiter *rearm; };

static void on_wake(struct loop *l, void *arg)
{
	struct wake *w = arg;
	w->calls++;
	if (w->rearm && w->s)
		stream_wait(w->s, w->rearm);	/* re-arming must not loop forever */
}

static void test_waiters_and_delete(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);
	struct stream_id id = sid(4, 0), id2 = sid(4, 1);
	struct stream *s = store_stream(st, &id, 1);
	struct stream *s2 = store_stream(st, &id2, 1);
	struct stream_waiter w1, w2;
	struct wake k1 = { 0 }, k2 = { 0 };
	struct stream_op op = { .fn = on_done }, op2 = { .fn = on_done };
	struct done d = { 0 }, d2 = { 0 };
	uint8_t buf[10] = { 0 };

	op.arg = &d;
	op2.arg = &d2;
	k1.s = s;
	k1.rearm = &w1;
	stream_waiter_init(&w1, on_wake, &k1);
	stream_waiter_init(&w2, on_wake, &k2);
	stream_wait(s, &w1);
	stream_wait(s2, &w2);
	T_CHECK(stream_append(s, buf, 10, 1, 0, &op) == 0);
	turn(l);
	T_EQ(k1.calls, 1);	/* woken once, re-armed */
	T_EQ(k2.calls, 0);	/* other stream untouched */
	/* An append pending when its stream is deleted fails with SL_E_CLOSED. */
	T_CHECK(stream_append(s2, buf, 10, 1, 0, &op2) == 0);
	k1.s = NULL;
	stream_delete(s);
	T_EQ(k1.calls, 2);	/* deletion wakes */
	stream_unwait(&w1);
	stream_delete(s2);
	T_EQ(k2.calls, 1);
	turn(l);
	T_EQ(d2.calls, 1);
	T_EQ(d2.err, SL_E_CLOSED);
	T_CHECK(store_stream(st, &id, 0) == NULL);
	store_destroy(st);
	loop_destroy(l);
}

static void test_many_streams(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);

	/* Enough streams to force the hash table to grow several times. */
	for (int i = 0; i < 3000; i++) {
		struct stream_id id = sid(i & 0xff, i);
		T_CHECK(store_stream(st, &id, 1) != NULL);
	}
	int found = 0;
	for (int i = 0; i < 3000; i++) {
		struct stream_id id = sid(i & 0xff, i);
		found += store_stream(st, &id, 0) != NULL;
	}
	T_EQ(found, 3000);
	store_destroy(st);
	loop_destroy(l);
}

/* Batches of mixed sizes across many segments: contents intact, released segments not read. */
static void test_segments(void)
{
	struct loop *l = loop_new();
	struct store *st = store_new(l);
	struct stream_id id = sid(5, 0);
	struct stream *s = store_stream(st, &id, 1);
	enum { N = 60 };
	struct stream_op ops[N];
	struct done d = { 0 };
	size_t sizes[N];
	uint8_t *buf = malloc(3 << 20);

	for (int i = 0; i < N; i++) {
		sizes[i] = (size_t)((i * 7919) % (3 << 20)) + 1;	/* 1 byte .. 3 MiB */
		memset(buf, i, sizes[i]);
		ops[i].fn = on_done;
		ops[i].arg = &d;
		T_EQ(stream_append(s, buf, sizes[i], 1, i, &ops[i]), i);
		if (i == N / 2) {
			turn(l);
			T_EQ(stream_set_start(s, 20), 0);	/* release while appending */
		}
	}
	turn(l);
	int bad = 0;
	for (int i = 20; i < N; i++) {
		struct span sp;
		size_t total;
		if (stream_read(s, i, 1, 1, &sp, 1, &total) != 1 || sp.len != sizes[i]) {
			bad++;
			continue;
		}
		for (size_t k = 0; k < sp.len; k += 4093)
			bad += sp.p[k] != (uint8_t)i;
		bad += sp.p[sp.len - 1] != (uint8_t)i;
	}
	T_EQ(bad, 0);
	T_EQ(stream_set_start(s, N), 0);
	T_EQ(store_bytes(st), 0);
	free(buf);
	store_destroy(st);
	loop_destroy(l);
}

static int fail_writes;
static ssize_t eio_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fail_writes) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

/* Through a WAL: durable appends replay after reopening; a failed write is never acknowledged. */
static void test_wal_durability_and_eio(void)
{
	const char *path = "build/test-stream-wal";
	struct wal_ident ident = { "test", 1 };
	char why[256];
	int err;
	uint8_t buf[3000];
	struct stream_id id = sid(9, 0);

	mkdir("build", 0755);
	unlink(path);
	T_EQ(wal_format(path, 4 << 20, &ident, 0, why, sizeof(why)), 0);
	struct loop *l = loop_new();
	struct wal *w = wal_open(l, path, &ident, &err, why, sizeof(why));
	T_CHECK(w != NULL);
	if (!w)
		return;
	struct store *st = store_new(l);
	store_set_wal(st, w);
	struct wal_recovery rec;
	T_EQ(store_recover(st, &rec), 0);
	struct stream *s = store_stream(st, &id, 1);
	struct stream_op ops[3];
	struct done d[3] = { { 0 } };
	for (int i = 0; i < 3; i++) {
		ops[i].fn = on_done;
		ops[i].arg = &d[i];
	}
	memset(buf, 7, sizeof(buf));
	T_EQ(stream_append(s, buf, sizeof(buf), 2, 10, &ops[0]), 0);
	turn(l);
	T_EQ(d[0].calls, 1);
	T_EQ(d[0].err, 0);
	T_EQ(stream_hw(s), 2);

	/* The device fails: the append completes with the error, hw stays, readers see nothing new. */
	fail_writes = 1;
	wal_sys.pwrite = eio_pwrite;
	T_EQ(stream_append(s, buf, sizeof(buf), 3, 20, &ops[1]), 2);
	turn(l);
	T_EQ(d[1].calls, 1);
	T_EQ(d[1].err, -EIO);
	T_EQ(stream_hw(s), 2);
	struct span sp[4];
	size_t total;
	T_EQ(stream_read(s, 2, 100000, 1, sp, 4, &total), 0);
	/* And the WAL refuses everything after: nothing can be acknowledged falsely. */
	T_EQ(stream_append(s, buf, sizeof(buf), 1, 30, &ops[2]), SL_E_CLOSED);
	wal_sys_reset();
	fail_writes = 0;
	wal_close(w);
	store_destroy(st);

	/* Reopened: the stream comes back with exactly the acknowledged batch. */
	w = wal_open(l, path, &ident, &err, why, sizeof(why));
	T_CHECK(w != NULL);
	if (w) {
		st = store_new(l);
		store_set_wal(st, w);
		s = store_stream(st, &id, 1);	/* the layer above re-creates streams first */
		T_EQ(store_recover(st, &rec), 0);
		T_EQ(stream_hw(s), 2);
		T_EQ(stream_next(s), 2);
		T_EQ(stream_read(s, 0, 100000, 1, sp, 4, &total), 1);
		T_EQ(total, sizeof(buf));
		wal_close(w);
		store_destroy(st);
	}
	loop_destroy(l);
	unlink(path);
}

int main(void)
{
	log_set_level(LOG_ERROR + 1);
	T_RUN(test_append_offsets_and_durability);
	T_RUN(test_read_budget);
	T_RUN(test_find_time);
	T_RUN(test_waiters_and_delete);
	T_RUN(test_many_streams);
	T_RUN(test_segments);
	T_RUN(test_wal_durability_and_eio);
	return t_done();
}
