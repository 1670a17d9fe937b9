/*
 * worker.h - one background thread for CPU-heavy work the loop must not
 * wait for: packing and compressing data objects (the upload pipeline),
 * decoding and re-packing them (compaction).
 *
 * A job's run() executes on the thread; its done() then runs on the loop,
 * in submission order.  run() must touch only what the job owns: nothing
 * the loop may change meanwhile.
 *
 *   submit --> TODO --thread: run()--> DONE --eventfd--> loop: done()
 *
 * Ownership: the job is the caller's and must stay valid until done()
 * starts.  worker_free() waits for the job running, if any, and calls no
 * more done(): jobs still queued or finished are dropped (the owner frees
 * them; it knows which it submitted).
 */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include "../kernel/err.h"
#include "../kernel/loop.h"

struct worker_job {
	void (*run)(struct worker_job *j);
	void (*done)(struct worker_job *j);
	struct worker_job *next;	/* the worker's */
};

struct worker;

/* A started worker, or NULL (*err says why).  at_exit (may be NULL) runs on the thread as it ends. */
struct worker *worker_new(struct loop *l, void (*at_exit)(void), int *err);
void worker_submit(struct worker *w, struct worker_job *j);
void worker_free(struct worker *w);

#endif
