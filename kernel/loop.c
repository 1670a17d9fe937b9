/*
 * loop.c - the event loop (see loop.h).
 *
 * Owns: the epoll descriptor, one registration per watched fd, the timer
 * heap and the deferred-task queue.  It never owns the users' timers, tasks
 * or descriptors.
 *
 * A turn:
 *
 *     refresh clock -> epoll_wait(nearest timer) -> refresh clock
 *       -> dispatch ready fds -> fire due timers -> drain tasks
 *       -> free registrations removed this turn -> stop?
 *
 * Invariants:
 *   1. regs[fd] is the live registration of fd, or NULL.  epoll_event.data
 *      points at the registration, not the fd, so an event fetched for an
 *      fd that a callback then removed (and perhaps re-added, same number)
 *      is recognised as stale by reg->dead and dropped.  Removed
 *      registrations sit on the dead list until the end of the turn, when no
 *      fetched event can point at them any more.
 *   2. The heap holds exactly the armed timers; heap[i]->heap_idx == i; it
 *      is a min-heap on (when_ms, seq).  seq increases with every arm, so
 *      timers with equal deadlines fire in the order they were armed.
 *   3. A timer fires at most once per turn, and only if it was armed before
 *      the turn's timer phase began (seq below the phase's limit).  A
 *      callback re-arming its timer with delay 0 therefore runs again next
 *      turn rather than spinning this one forever.
 *   4. The task queue is a FIFO through loop_task.next; t->queued is set
 *      exactly while t is on it.  The drain pops before calling, so a task
 *      may re-queue itself; tasks queued during the drain run in it.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include "loop.h"

#define LOOP_MAX_EVENTS 256

struct loop_reg {
	int fd;
	loop_io_fn fn;
	void *arg;
	unsigned events;	/* LOOP_READ | LOOP_WRITE as last set */
	int dead;
	struct loop_reg *next_dead;
};

struct loop {
	int epfd;
	int stop;
	uint64_t now_ms;

	struct loop_reg **regs;	/* indexed by fd */
	size_t nregs;
	struct loop_reg *dead;

	struct loop_timer **heap;
	size_t nheap, capheap;
	uint64_t timer_seq;

	struct loop_task *task_head, *task_tail;

	struct epoll_event evs[LOOP_MAX_EVENTS];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now_ms(struct loop *l)
{
	return l->now_ms;
}

int64_t loop_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		int e = errno;

		free(l);
		errno = e;
		return NULL;
	}
	l->now_ms = mono_ms();
	return l;
}

static void reap_dead(struct loop *l)
{
	struct loop_reg *r = l->dead, *next;

	while (r) {
		next = r->next_dead;
		free(r);
		r = next;
	}
	l->dead = NULL;
}

void loop_destroy(struct loop *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->nregs; i++)
		free(l->regs[i]);
	free(l->regs);
	reap_dead(l);
	/* Timers and tasks belong to their owners; just forget them. */
	for (i = 0; i < l->nheap; i++)
		l->heap[i]->heap_idx = (size_t)-1;
	free(l->heap);
	while (l->task_head) {
		struct loop_task *t = l->task_head;

		l->task_head = t->next;
		t->next = NULL;
		t->queued = 0;
	}
	close(l->epfd);
	free(l);
}

/* ---- descriptors ---- */

static uint32_t to_epoll(unsigned events)
{
	uint32_t e = 0;

	if (events & LOOP_READ)
		e |= EPOLLIN;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

static unsigned from_epoll(uint32_t e)
{
	unsigned ev = 0;

	if (e & EPOLLIN)
		ev |= LOOP_READ;
	if (e & EPOLLOUT)
		ev |= LOOP_WRITE;
	if (e & (EPOLLERR | EPOLLHUP))
		ev |= LOOP_ERROR;
	return ev;
}

static struct loop_reg *reg_get(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nregs)
		return NULL;
	return l->regs[fd];
}

int loop_add(struct loop *l, int fd, unsigned events, loop_io_fn fn, void *arg)
{
	struct epoll_event ev;
	struct loop_reg *r;

	if (fd < 0 || !fn)
		return -EINVAL;
	if (reg_get(l, fd))
		return -EEXIST;
	if ((size_t)fd >= l->nregs) {
		size_t n = l->nregs ? l->nregs : 64;
		struct loop_reg **nr;

		while (n <= (size_t)fd)
			n *= 2;
		nr = realloc(l->regs, n * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		memset(nr + l->nregs, 0, (n - l->nregs) * sizeof(*nr));
		l->regs = nr;
		l->nregs = n;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = fd;
	r->fn = fn;
	r->arg = arg;
	r->events = events & (LOOP_READ | LOOP_WRITE);

	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(r->events);
	ev.data.ptr = r;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		int e = errno;

		free(r);
		return -e;
	}
	l->regs[fd] = r;
	return 0;
}

int loop_mod(struct loop *l, int fd, unsigned events)
{
	struct loop_reg *r = reg_get(l, fd);
	struct epoll_event ev;

	if (!r)
		return -ENOENT;
	events &= LOOP_READ | LOOP_WRITE;
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(events);
	ev.data.ptr = r;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
		return -errno;
	r->events = events;
	return 0;
}

void loop_del(struct loop *l, int fd)
{
	struct loop_reg *r = reg_get(l, fd);

	if (!r)
		return;
	/*
	 * Failure is ignored: if the caller closed fd first, epoll already
	 * dropped it (EBADF), and either way we stop dispatching it.
	 */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->regs[fd] = NULL;
	r->dead = 1;
	r->next_dead = l->dead;
	l->dead = r;
}

/* ---- timers ---- */

static int timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	if (a->when_ms != b->when_ms)
		return a->when_ms < b->when_ms;
	return a->seq < b->seq;
}

static void heap_place(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, l->heap[parent]))
			break;
		heap_place(l, i, l->heap[parent]);
		i = parent;
	}
	heap_place(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

static void heap_remove(struct loop *l, struct loop_timer *t)
{
	size_t i = t->heap_idx;
	struct loop_timer *last;

	SL_ASSERT(i < l->nheap && l->heap[i] == t);
	t->heap_idx = (size_t)-1;
	last = l->heap[--l->nheap];
	if (last == t)
		return;
	heap_place(l, i, last);
	heap_up(l, i);
	heap_down(l, last->heap_idx);
}

/*
 * The signature leaves no way to report failure, and a timer silently not
 * armed would hang whatever waits on it, so running out of memory for the
 * heap array (a few bytes per timer) aborts.
 */
void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t delay_ms)
{
	uint64_t when = l->now_ms + delay_ms;

	if (when < l->now_ms)
		when = UINT64_MAX;
	if (loop_timer_armed(t))
		heap_remove(l, t);
	if (l->nheap == l->capheap) {
		size_t n = l->capheap ? l->capheap * 2 : 64;
		struct loop_timer **nh = realloc(l->heap, n * sizeof(*nh));

		SL_ASSERT(nh != NULL);
		l->heap = nh;
		l->capheap = n;
	}
	t->when_ms = when;
	t->seq = ++l->timer_seq;
	heap_place(l, l->nheap++, t);
	heap_up(l, t->heap_idx);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (loop_timer_armed(t))
		heap_remove(l, t);
}

static void run_timers(struct loop *l)
{
	uint64_t limit = l->timer_seq;

	while (l->nheap) {
		struct loop_timer *t = l->heap[0];

		if (t->when_ms > l->now_ms || t->seq > limit)
			break;
		heap_remove(l, t);
		t->fn(l, t->arg);
	}
}

/* ---- deferred tasks ---- */

void loop_defer(struct loop *l, struct loop_task *t)
{
	if (t->queued)
		return;
	t->queued = 1;
	t->next = NULL;
	if (l->task_tail)
		l->task_tail->next = t;
	else
		l->task_head = t;
	l->task_tail = t;
}

void loop_task_cancel(struct loop *l, struct loop_task *t)
{
	struct loop_task **pp, *prev = NULL;

	if (!t->queued)
		return;
	for (pp = &l->task_head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != t)
			continue;
		*pp = t->next;
		if (l->task_tail == t)
			l->task_tail = prev;
		break;
	}
	t->next = NULL;
	t->queued = 0;
}

static void run_tasks(struct loop *l)
{
	struct loop_task *t;

	while ((t = l->task_head) != NULL) {
		l->task_head = t->next;
		if (!l->task_head)
			l->task_tail = NULL;
		t->next = NULL;
		t->queued = 0;
		t->fn(l, t->arg);
	}
}

/* ---- the turn ---- */

static int wait_timeout(struct loop *l)
{
	uint64_t when;

	if (l->stop || l->task_head)
		return 0;
	if (!l->nheap)
		return -1;
	when = l->heap[0]->when_ms;
	if (when <= l->now_ms)
		return 0;
	if (when - l->now_ms > INT_MAX)
		return INT_MAX;
	return (int)(when - l->now_ms);
}

static void dispatch(struct loop *l, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct loop_reg *r = l->evs[i].data.ptr;
		unsigned ev;

		if (r->dead)
			continue;
		/* A callback earlier in this batch may have narrowed the interest. */
		ev = from_epoll(l->evs[i].events) & (r->events | LOOP_ERROR);
		if (ev)
			r->fn(l, r->fd, ev, r->arg);
	}
}

int loop_run(struct loop *l)
{
	int err = 0;

	for (;;) {
		int n;

		l->now_ms = mono_ms();
		n = epoll_wait(l->epfd, l->evs, LOOP_MAX_EVENTS, wait_timeout(l));
		if (n == -1) {
			if (errno != EINTR) {
				err = -errno;
				break;
			}
			n = 0;
		}
		l->now_ms = mono_ms();
		dispatch(l, n);
		run_timers(l);
		run_tasks(l);
		reap_dead(l);
		if (l->stop)
			break;
	}
	reap_dead(l);
	l->stop = 0;
	return err;
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}
