/*
 * loop.h - the event loop: epoll for file descriptors, a binary heap of
 * timers, and deferred tasks that run once at the end of the current turn.
 *
 * One loop, one thread.  A turn is: wait in epoll_wait (no longer than the
 * nearest timer), dispatch ready descriptors, run expired timers, then run the
 * deferred tasks queued during the turn (group commit and durability
 * callbacks hang off these).  Callbacks may add, modify or remove any
 * descriptor, timer or task, including their own.
 *
 * Ownership: the loop never allocates on behalf of its users and never frees
 * their structures.  struct loop_timer and struct loop_task are embedded in
 * the caller's objects and must stay valid while armed or queued.
 */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include <stdint.h>
#include <stddef.h>
#include "err.h"

struct loop;

/* events: LOOP_READ and/or LOOP_WRITE, plus LOOP_ERROR on hang-up/error. */
enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_ERROR = 4 };

typedef void (*loop_io_fn)(struct loop *l, int fd, unsigned events, void *arg);
typedef void (*loop_fn)(struct loop *l, void *arg);

struct loop_timer {
	uint64_t when_ms;	/* monotonic deadline */
	loop_fn fn;
	void *arg;
	size_t heap_idx;	/* position in the heap; (size_t)-1 when idle */
	uint64_t seq;		/* arm order: ties between equal deadlines fire FIFO */
};

struct loop_task {
	loop_fn fn;
	void *arg;
	struct loop_task *next;
	int queued;
};

/* Create a loop; NULL and errno set on failure. */
struct loop *loop_new(void);
void loop_destroy(struct loop *l);

/* Watch fd for events (edge-triggered is not used: level-triggered). */
SL_MUST_CHECK int loop_add(struct loop *l, int fd, unsigned events, loop_io_fn fn, void *arg);
SL_MUST_CHECK int loop_mod(struct loop *l, int fd, unsigned events);
/* Stop watching; safe to call from inside fd's own callback. */
void loop_del(struct loop *l, int fd);

static inline void loop_timer_init(struct loop_timer *t, loop_fn fn, void *arg)
{
	t->when_ms = 0;
	t->fn = fn;
	t->arg = arg;
	t->heap_idx = (size_t)-1;
	t->seq = 0;
}
/* Arm (or re-arm) t to fire once, delay_ms from now. */
void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t delay_ms);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_idx != (size_t)-1;
}

static inline void loop_task_init(struct loop_task *t, loop_fn fn, void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	t->queued = 0;
}
/* Queue t to run at the end of this turn; queuing a queued task is a no-op. */
void loop_defer(struct loop *l, struct loop_task *t);
void loop_task_cancel(struct loop *l, struct loop_task *t);

/* Monotonic milliseconds, sampled once per turn (cheap to call). */
uint64_t loop_now_ms(struct loop *l);
/* Wall-clock milliseconds since the epoch (Kafka timestamps). */
int64_t loop_wall_ms(void);

/* Run until loop_stop(); returns 0 or a negative error from epoll. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
