/*
 * test_loop.c - timers fire in deadline order (FIFO on ties) and cancel,
 * deferred tasks run at the end of the turn, pipes wake the loop, and
 * loop_del is safe from inside callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include "tests/unit/t.h"
#include "kernel/loop.h"

static int order[64];
static int norder;

static void rec(int v)
{
	if (norder < 64)
		order[norder++] = v;
}

/* Every test arms this so a broken loop fails instead of hanging. */
static struct loop_timer watchdog;
static int watchdog_fired;

static void on_watchdog(struct loop *l, void *arg)
{
	watchdog_fired = 1;
	loop_stop(l);
}

static struct loop *setup(void)
{
	struct loop *l = loop_new();

	T_CHECK(l != NULL);
	if (!l)
		exit(1);
	norder = 0;
	watchdog_fired = 0;
	loop_timer_init(&watchdog, on_watchdog, NULL);
	loop_timer_set(l, &watchdog, 3000);
	return l;
}

static void teardown(struct loop *l)
{
	T_EQ(watchdog_fired, 0);
	loop_timer_cancel(l, &watchdog);
	loop_destroy(l);
}

static void on_rec(struct loop *l, void *arg)
{
	rec((int)(intptr_t)arg);
}

static void on_rec_stop(struct loop *l, void *arg)
{
	rec((int)(intptr_t)arg);
	loop_stop(l);
}

static void test_timer_order(void)
{
	struct loop *l = setup();
	struct loop_timer t[6];
	uint64_t start = loop_now_ms(l);

	loop_timer_init(&t[0], on_rec, (void *)30);
	loop_timer_init(&t[1], on_rec, (void *)10);
	loop_timer_init(&t[2], on_rec, (void *)20);
	loop_timer_init(&t[3], on_rec, (void *)11);	/* same deadline as 10, armed later */
	loop_timer_init(&t[4], on_rec, (void *)0);
	loop_timer_init(&t[5], on_rec_stop, (void *)40);
	loop_timer_set(l, &t[0], 30);
	loop_timer_set(l, &t[1], 10);
	loop_timer_set(l, &t[2], 20);
	loop_timer_set(l, &t[3], 10);
	loop_timer_set(l, &t[4], 0);
	loop_timer_set(l, &t[5], 40);
	T_CHECK(loop_timer_armed(&t[0]));
	T_EQ(loop_run(l), 0);
	T_EQ(norder, 6);
	T_EQ(order[0], 0);
	T_EQ(order[1], 10);
	T_EQ(order[2], 11);
	T_EQ(order[3], 20);
	T_EQ(order[4], 30);
	T_EQ(order[5], 40);
	T_CHECK(loop_now_ms(l) >= start + 40);
	T_CHECK(!loop_timer_armed(&t[0]));
	teardown(l);
}

static uint64_t many_last_when;
static int many_fired, many_bad;

static void on_many(struct loop *l, void *arg)
{
	struct loop_timer *t = arg;

	if (t->when_ms < many_last_when || t->when_ms > loop_now_ms(l))
		many_bad++;
	many_last_when = t->when_ms;
	many_fired++;
}

static void test_timer_many(void)
{
	struct loop *l = setup();
	static struct loop_timer t[500];
	struct loop_timer stop;
	int i, expect = 0;

	many_last_when = 0;
	many_fired = many_bad = 0;
	/* A spread of deadlines, some cancelled, some re-armed. */
	for (i = 0; i < 500; i++) {
		loop_timer_init(&t[i], on_many, &t[i]);
		loop_timer_set(l, &t[i], (uint64_t)((i * 37) % 50));
	}
	for (i = 0; i < 500; i += 3)
		loop_timer_cancel(l, &t[i]);
	for (i = 0; i < 500; i += 7)
		loop_timer_set(l, &t[i], (uint64_t)(i % 13));
	for (i = 0; i < 500; i++)
		expect += loop_timer_armed(&t[i]);
	loop_timer_init(&stop, on_rec_stop, (void *)1000);
	loop_timer_set(l, &stop, 60);
	T_EQ(loop_run(l), 0);
	T_EQ(many_fired, expect);
	T_EQ(many_bad, 0);
	for (i = 0; i < 500; i++)
		T_CHECK(!loop_timer_armed(&t[i]));
	teardown(l);
}

static struct loop_timer cancel_a, cancel_b, cancel_stop;

static void on_cancel_other(struct loop *l, void *arg)
{
	rec(1);
	loop_timer_cancel(l, &cancel_b);
}

static void test_timer_cancel(void)
{
	struct loop *l = setup();
	struct loop_timer never;

	loop_timer_init(&never, on_rec, (void *)99);
	loop_timer_set(l, &never, 5);
	loop_timer_cancel(l, &never);
	T_CHECK(!loop_timer_armed(&never));
	loop_timer_cancel(l, &never);	/* cancelling an idle timer is a no-op */

	/* a and b both due in the same turn; a cancels b before it fires */
	loop_timer_init(&cancel_a, on_cancel_other, NULL);
	loop_timer_init(&cancel_b, on_rec, (void *)2);
	loop_timer_init(&cancel_stop, on_rec_stop, (void *)3);
	loop_timer_set(l, &cancel_a, 10);
	loop_timer_set(l, &cancel_b, 10);
	loop_timer_set(l, &cancel_stop, 30);
	T_EQ(loop_run(l), 0);
	T_EQ(norder, 2);
	T_EQ(order[0], 1);
	T_EQ(order[1], 3);
	teardown(l);
}

static struct loop_timer rearm;
static int rearm_count, turns;

static void on_rearm(struct loop *l, void *arg)
{
	rearm_count++;
	rec(turns);
	if (rearm_count < 5)
		loop_timer_set(l, &rearm, 0);
	else
		loop_stop(l);
}

/* Registered on a pipe that stays readable: called once every turn. */
static void count_turn(struct loop *l, int fd, unsigned events, void *arg)
{
	turns++;
}

/* Re-arming with delay 0 from the callback runs once per turn, not a spin. */
static void test_timer_rearm_zero(void)
{
	struct loop *l = setup();
	int p[2], i;

	rearm_count = turns = 0;
	T_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	T_EQ(write(p[1], "x", 1), 1);
	T_EQ(loop_add(l, p[0], LOOP_READ, count_turn, NULL), 0);
	loop_timer_init(&rearm, on_rearm, NULL);
	loop_timer_set(l, &rearm, 0);
	T_EQ(loop_run(l), 0);
	T_EQ(rearm_count, 5);
	T_EQ(norder, 5);
	for (i = 1; i < norder; i++)
		T_EQ(order[i], order[i - 1] + 1);
	loop_del(l, p[0]);
	close(p[0]);
	close(p[1]);
	teardown(l);
}

static struct loop_task task_a, task_b, task_c, task_cancelled;
static int in_timer_cb;

static void on_task(struct loop *l, void *arg)
{
	int id = (int)(intptr_t)arg;

	T_EQ(in_timer_cb, 0);
	rec(id);
	if (id == 1) {
		/* queued during the drain: runs in this same drain */
		loop_defer(l, &task_c);
		/* queuing an already-queued task is a no-op */
		loop_defer(l, &task_b);
	}
	if (id == 3)
		loop_stop(l);
}

static void on_timer_defers(struct loop *l, void *arg)
{
	in_timer_cb = 1;
	loop_defer(l, &task_a);
	loop_defer(l, &task_cancelled);
	loop_defer(l, &task_b);
	loop_task_cancel(l, &task_cancelled);
	T_EQ(task_a.queued, 1);
	T_EQ(task_cancelled.queued, 0);
	rec(0);
	in_timer_cb = 0;
}

static void test_deferred(void)
{
	struct loop *l = setup();
	struct loop_timer t, after;

	loop_task_init(&task_a, on_task, (void *)1);
	loop_task_init(&task_b, on_task, (void *)2);
	loop_task_init(&task_c, on_task, (void *)3);
	loop_task_init(&task_cancelled, on_task, (void *)9);
	loop_timer_init(&t, on_timer_defers, NULL);
	loop_timer_init(&after, on_rec, (void *)7);
	loop_timer_set(l, &t, 1);
	loop_timer_set(l, &after, 200);	/* must not fire: c stops the loop first */
	T_EQ(loop_run(l), 0);
	T_EQ(norder, 4);
	T_EQ(order[0], 0);
	T_EQ(order[1], 1);
	T_EQ(order[2], 2);
	T_EQ(order[3], 3);
	T_EQ(task_a.queued, 0);
	T_EQ(task_c.queued, 0);
	loop_timer_cancel(l, &after);

	/* cancelling the tail keeps the queue usable */
	norder = 0;
	loop_defer(l, &task_a);
	loop_defer(l, &task_b);
	loop_task_cancel(l, &task_b);
	loop_defer(l, &task_c);
	T_EQ(loop_run(l), 0);	/* a runs (queues c, b), then c stops */
	T_EQ(norder, 3);
	T_EQ(order[0], 1);
	T_EQ(order[1], 3);
	T_EQ(order[2], 2);
	teardown(l);
}

struct pipe_ctx {
	int rfd, wfd;
	int reads;
	unsigned last_events;
	int del_self;
	int stop_after;
};

static void on_readable(struct loop *l, int fd, unsigned events, void *arg)
{
	struct pipe_ctx *c = arg;
	char b[16];

	c->last_events = events;
	if (events & LOOP_READ) {
		if (read(fd, b, sizeof(b)) > 0)
			c->reads++;
	}
	if (c->del_self)
		loop_del(l, fd);
	if (c->stop_after && c->reads >= c->stop_after)
		loop_stop(l);
}

static void make_pipe(struct pipe_ctx *c)
{
	int p[2];

	memset(c, 0, sizeof(*c));
	T_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	c->rfd = p[0];
	c->wfd = p[1];
}

static void close_pipe(struct pipe_ctx *c)
{
	if (c->rfd >= 0)
		close(c->rfd);
	if (c->wfd >= 0)
		close(c->wfd);
}

static void on_write_later(struct loop *l, void *arg)
{
	struct pipe_ctx *c = arg;

	T_EQ(write(c->wfd, "x", 1), 1);
}

static void test_fd_ready(void)
{
	struct loop *l = setup();
	struct pipe_ctx c;
	struct loop_timer t;

	make_pipe(&c);
	c.stop_after = 1;
	T_EQ(loop_add(l, c.rfd, LOOP_READ, on_readable, &c), 0);
	T_EQ(loop_add(l, c.rfd, LOOP_READ, on_readable, &c), -EEXIST);
	T_EQ(loop_mod(l, 1000, LOOP_READ), -ENOENT);
	T_EQ(loop_add(l, -1, LOOP_READ, on_readable, &c), -EINVAL);
	/* the pipe becomes readable from a timer, 20 ms in */
	loop_timer_init(&t, on_write_later, &c);
	loop_timer_set(l, &t, 20);
	T_EQ(loop_run(l), 0);
	T_EQ(c.reads, 1);
	T_EQ(c.last_events, LOOP_READ);

	/* writer closed: hang-up is reported */
	close(c.wfd);
	c.wfd = -1;
	c.stop_after = 0;
	c.del_self = 1;
	c.last_events = 0;
	{
		struct loop_timer s;

		loop_timer_init(&s, on_rec_stop, (void *)1);
		loop_timer_set(l, &s, 20);
		T_EQ(loop_run(l), 0);
	}
	T_CHECK(c.last_events & LOOP_ERROR);
	close_pipe(&c);
	teardown(l);
}

static void on_writable(struct loop *l, int fd, unsigned events, void *arg)
{
	int *n = arg;

	(*n)++;
	/* narrowing interest to read: no more write events */
	T_EQ(loop_mod(l, fd, LOOP_READ), 0);
}

static void test_fd_mod(void)
{
	struct loop *l = setup();
	struct pipe_ctx c;
	struct loop_timer s;
	int n = 0;

	make_pipe(&c);
	T_EQ(loop_add(l, c.wfd, LOOP_WRITE, on_writable, &n), 0);
	loop_timer_init(&s, on_rec_stop, (void *)1);
	loop_timer_set(l, &s, 30);
	T_EQ(loop_run(l), 0);
	T_EQ(n, 1);
	loop_del(l, c.wfd);
	loop_del(l, c.wfd);	/* twice is harmless */
	close_pipe(&c);
	teardown(l);
}

/* Two readable pipes in one batch: whichever runs first removes the other. */
static struct pipe_ctx dp1, dp2, dp3;
static int dcalls[4];

static void on_del_other(struct loop *l, int fd, unsigned events, void *arg)
{
	struct pipe_ctx *me = arg, *other = me == &dp1 ? &dp2 : &dp1;
	int p[2];

	dcalls[me == &dp1 ? 1 : 2]++;
	loop_del(l, other->rfd);
	/*
	 * Put a fresh, empty pipe on the other's descriptor number and watch it
	 * again: the stale event already fetched for the old one must not
	 * reach the new registration.
	 */
	T_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	T_CHECK(dup2(p[0], other->rfd) == other->rfd);
	close(p[0]);
	dp3.rfd = other->rfd;
	dp3.wfd = p[1];
	T_EQ(loop_add(l, other->rfd, LOOP_READ, on_readable, &dp3), 0);
	loop_del(l, fd);
}

static void test_del_in_callback(void)
{
	struct loop *l = setup();
	struct loop_timer s;

	make_pipe(&dp1);
	make_pipe(&dp2);
	memset(&dp3, 0, sizeof(dp3));
	memset(dcalls, 0, sizeof(dcalls));
	T_EQ(write(dp1.wfd, "a", 1), 1);
	T_EQ(write(dp2.wfd, "b", 1), 1);
	T_EQ(loop_add(l, dp1.rfd, LOOP_READ, on_del_other, &dp1), 0);
	T_EQ(loop_add(l, dp2.rfd, LOOP_READ, on_del_other, &dp2), 0);
	loop_timer_init(&s, on_rec_stop, (void *)1);
	loop_timer_set(l, &s, 30);
	T_EQ(loop_run(l), 0);
	T_EQ(dcalls[1] + dcalls[2], 1);
	T_EQ(dp3.reads, 0);
	T_EQ(dp3.last_events, 0);

	/* the re-added descriptor works */
	dp3.stop_after = 1;
	T_EQ(write(dp3.wfd, "c", 1), 1);
	loop_timer_set(l, &s, 1000);
	T_EQ(loop_run(l), 0);
	T_EQ(dp3.reads, 1);
	loop_timer_cancel(l, &s);
	loop_del(l, dp3.rfd);
	close_pipe(&dp1);
	close(dp2.wfd);
	close(dp3.rfd);
	close(dp3.wfd);
	teardown(l);
}

static void test_self_del(void)
{
	struct loop *l = setup();
	struct pipe_ctx c;
	struct loop_timer s;

	make_pipe(&c);
	c.del_self = 1;
	T_EQ(write(c.wfd, "aaaa", 4), 4);
	T_EQ(loop_add(l, c.rfd, LOOP_READ, on_readable, &c), 0);
	loop_timer_init(&s, on_rec_stop, (void *)1);
	loop_timer_set(l, &s, 30);
	T_EQ(loop_run(l), 0);
	/* still readable, but removed after the first call */
	T_EQ(c.reads, 1);
	/* and can be added again afterwards */
	T_EQ(loop_add(l, c.rfd, LOOP_READ, on_readable, &c), 0);
	loop_del(l, c.rfd);
	close_pipe(&c);
	teardown(l);
}

static void test_clocks(void)
{
	struct loop *l = setup();
	int64_t w = loop_wall_ms();

	/* after 2020-01-01 and before 2200 */
	T_CHECK(w > 1577836800000ll);
	T_CHECK(w < 7258118400000ll);
	T_CHECK(loop_now_ms(l) > 0);
	/* stop before run: one non-blocking turn */
	loop_stop(l);
	T_EQ(loop_run(l), 0);
	teardown(l);
	loop_destroy(NULL);
}

/* loop_destroy with armed timers and queued tasks leaves them idle. */
static void test_destroy_armed(void)
{
	struct loop *l = loop_new();
	struct loop_timer t;
	struct loop_task k;

	loop_timer_init(&t, on_rec, NULL);
	loop_task_init(&k, on_task, NULL);
	loop_timer_set(l, &t, 100);
	loop_defer(l, &k);
	loop_destroy(l);
	T_CHECK(!loop_timer_armed(&t));
	T_EQ(k.queued, 0);
}

int main(void)
{
	T_RUN(test_timer_order);
	T_RUN(test_timer_many);
	T_RUN(test_timer_cancel);
	T_RUN(test_timer_rearm_zero);
	T_RUN(test_deferred);
	T_RUN(test_fd_ready);
	T_RUN(test_fd_mod);
	T_RUN(test_del_in_callback);
	T_RUN(test_self_del);
	T_RUN(test_clocks);
	T_RUN(test_destroy_armed);
	return t_done();
}
