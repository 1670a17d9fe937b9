/*
 * worker.c - the background thread of worker.h.
 *
 * Two lists under one mutex: todo (submitted, not yet run) and done (run,
 * done() not yet called).  The thread sleeps on a condition variable while
 * todo is empty; after each run() it appends the job to done and writes
 * the eventfd, which wakes the loop to call the done() callbacks in order.
 * Stopping sets a flag, wakes the thread and joins it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "worker.h"

struct worker {
	struct loop *l;
	int efd;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct worker_job *todo, *todo_tail, *done, *done_tail;
	int stop;
	void (*at_exit)(void);
};

static void append(struct worker_job **head, struct worker_job **tail, struct worker_job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->todo && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		struct worker_job *j = w->todo;
		w->todo = j->next;
		if (!w->todo)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->mu);
		j->run(j);
		pthread_mutex_lock(&w->mu);
		append(&w->done, &w->done_tail, j);
		uint64_t one = 1;
		ssize_t n = write(w->efd, &one, sizeof(one));
		(void)n;	/* the counter cannot overflow here; a failed wake would show in tests */
	}
	pthread_mutex_unlock(&w->mu);
	if (w->at_exit)
		w->at_exit();
	return NULL;
}

static void on_wake(struct loop *l, int fd, unsigned events, void *arg)
{
	struct worker *w = arg;
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
	pthread_mutex_lock(&w->mu);
	struct worker_job *j = w->done;
	w->done = w->done_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	while (j) {
		struct worker_job *nx = j->next;
		j->done(j);
		j = nx;
	}
}

struct worker *worker_new(struct loop *l, void (*at_exit)(void), int *err)
{
	struct worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int rc;

	if (!w) {
		*err = SL_E_NOMEM;
		return NULL;
	}
	w->l = l;
	w->at_exit = at_exit;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd == -1) {
		*err = -errno;
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	rc = loop_add(l, w->efd, LOOP_READ, on_wake, w);
	if (rc == 0) {
		/* Signals stay the main thread's. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = -pthread_create(&w->thr, NULL, thread_main, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
			loop_del(l, w->efd);
	}
	if (rc != 0) {
		close(w->efd);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		*err = rc;
		return NULL;
	}
	return w;
}

void worker_submit(struct worker *w, struct worker_job *j)
{
	pthread_mutex_lock(&w->mu);
	append(&w->todo, &w->todo_tail, j);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thr, NULL);
	loop_del(w->l, w->efd);
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
