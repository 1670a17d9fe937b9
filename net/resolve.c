/*
 * resolve.c - name resolution off the loop thread (see resolve.h).
 *
 * Two sides:
 *
 *   loop thread   struct resolver: the cache (struct rs_entry, one per
 *                 name), the queries waiting on each entry, the eventfd's
 *                 registration.  Only the loop thread touches these.
 *   worker        struct rs_shared, under its mutex: the queue of jobs to
 *                 run, the queue of jobs done, the quit flag, a reference
 *                 count, the eventfd.  A job carries its own copy of the name
 *                 and its result, so the worker never sees the cache.
 *
 *   resolve_start --job--> todo --worker: lookup()--> done --eventfd-->
 *     on_wake (loop) --> entry updated --> waiting queries called
 *
 * An entry's life:
 *
 *   new --job--> inflight --ok--> fresh --ttl--> stale --stale_ms--> expired
 *                    \--fail--> failed (neg_ttl)        \--refresh--/
 *
 * Invariants:
 *   1. An entry has at most one job in flight (e->inflight), so a name is
 *      looked up once however many queries wait on it.
 *   2. q->entry != NULL exactly while q is on that entry's waiter list.
 *   3. An entry with a job in flight, with waiters, or whose waiters are
 *      being called (e->delivering) is never evicted.
 *   4. rs_shared is freed by whichever side drops the last reference: the
 *      loop side at resolver_free(), the worker when it exits.  The worker
 *      exits at quit; if it is inside a lookup then, resolver_free() does not
 *      wait for it (it detaches the thread) and the finished job is dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "resolve.h"
#include "../kernel/log.h"

#define DEFAULT_TTL_MS 30000
#define DEFAULT_STALE_MS 300000
#define DEFAULT_NEG_TTL_MS 2000
#define WORKER_STACK (1024 * 1024)

struct rs_job {
	struct rs_job *next;
	int err;
	struct resolve_addrs addrs;
	char host[RESOLVE_MAX_NAME + 1];
};

struct rs_shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rs_job *todo, *todo_tail;
	struct rs_job *done, *done_tail;
	int quit;
	int busy;		/* the worker is inside a lookup */
	int refs;
	int efd;
	resolve_lookup_fn lookup;
	void *lookup_arg;
};

struct rs_entry {
	struct rs_entry *next;
	char host[RESOLVE_MAX_NAME + 1];
	int have;			/* addrs hold a good answer */
	struct resolve_addrs addrs;
	uint64_t fresh_until, stale_until;
	int err;			/* the last lookup's failure, 0 if it succeeded */
	uint64_t err_until;		/* failure remembered until */
	int inflight;
	int delivering;
	struct resolve_query *waiters;
};

struct resolver {
	struct loop *l;
	struct resolve_config cfg;
	struct rs_shared *sh;
	pthread_t thr;
	int started;
	struct rs_entry *cache;
	size_t ncache;
};

/* ---- addresses ---- */

static void set_port(struct resolve_addrs *a, uint16_t port)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (a->addr[i].ss_family == AF_INET)
			((struct sockaddr_in *)&a->addr[i])->sin_port = htons(port);
		else if (a->addr[i].ss_family == AF_INET6)
			((struct sockaddr_in6 *)&a->addr[i])->sin6_port = htons(port);
	}
}

int resolve_numeric(const char *host, uint16_t port, struct resolve_addrs *out)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr[0];
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr[0];

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(buf))
			return 0;
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		out->len[0] = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		out->len[0] = sizeof(*s6);
	} else {
		return 0;
	}
	out->n = 1;
	set_port(out, port);
	return 1;
}

static int gai_to_err(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_FAMILY:
		return SL_E_NOTFOUND;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EIO;
	}
}

static int gai_lookup(const char *host, struct resolve_addrs *out, void *arg)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		return gai_to_err(rc);
	out->n = 0;
	for (ai = res; ai && out->n < RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(out->addr[0]))
			continue;
		memset(&out->addr[out->n], 0, sizeof(out->addr[0]));
		memcpy(&out->addr[out->n], ai->ai_addr, ai->ai_addrlen);
		out->len[out->n] = ai->ai_addrlen;
		out->n++;
	}
	freeaddrinfo(res);
	return out->n ? 0 : SL_E_NOTFOUND;
}

/* ---- the worker ---- */

static void free_jobs(struct rs_job *j)
{
	while (j) {
		struct rs_job *next = j->next;

		free(j);
		j = next;
	}
}

static void shared_put(struct rs_shared *sh)
{
	int last;

	pthread_mutex_lock(&sh->mu);
	last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->mu);
	if (!last)
		return;
	free_jobs(sh->todo);
	free_jobs(sh->done);
	if (sh->efd != -1)
		close(sh->efd);
	pthread_cond_destroy(&sh->cv);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

static void *worker(void *arg)
{
	struct rs_shared *sh = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&sh->mu);
	for (;;) {
		struct rs_job *job;

		while (!sh->quit && !sh->todo)
			pthread_cond_wait(&sh->cv, &sh->mu);
		if (sh->quit)
			break;
		job = sh->todo;
		sh->todo = job->next;
		if (!sh->todo)
			sh->todo_tail = NULL;
		job->next = NULL;
		sh->busy = 1;
		pthread_mutex_unlock(&sh->mu);

		memset(&job->addrs, 0, sizeof(job->addrs));
		job->err = sh->lookup(job->host, &job->addrs, sh->lookup_arg);

		pthread_mutex_lock(&sh->mu);
		sh->busy = 0;
		if (sh->quit) {
			free(job);
			break;
		}
		if (sh->done_tail)
			sh->done_tail->next = job;
		else
			sh->done = job;
		sh->done_tail = job;
		if (write(sh->efd, &one, sizeof(one)) == -1) {
			/* EAGAIN: the counter is saturated, so the loop is awake anyway. */
		}
	}
	pthread_mutex_unlock(&sh->mu);
	shared_put(sh);
	return NULL;
}

static void on_wake(struct loop *l, int fd, unsigned events, void *arg);

static int start_worker(struct resolver *r)
{
	struct rs_shared *sh = r->sh;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	sh->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->efd == -1)
		return -errno;
	rc = loop_add(r->l, sh->efd, LOOP_READ, on_wake, r);
	if (rc != 0)
		goto fail_efd;
	rc = pthread_attr_init(&attr);
	if (rc != 0) {
		rc = -rc;
		goto fail_loop;
	}
	(void)pthread_attr_setstacksize(&attr, WORKER_STACK);
	/* Signals are the main thread's business (PID 1 reaps and powers off). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	sh->refs++;
	rc = pthread_create(&r->thr, &attr, worker, sh);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		sh->refs--;
		rc = -rc;
		goto fail_loop;
	}
	r->started = 1;
	return 0;

fail_loop:
	loop_del(r->l, sh->efd);
fail_efd:
	close(sh->efd);
	sh->efd = -1;
	return rc;
}

static int start_job(struct resolver *r, struct rs_entry *e)
{
	struct rs_shared *sh = r->sh;
	struct rs_job *job;
	int rc;

	if (!r->started) {
		rc = start_worker(r);
		if (rc != 0)
			return rc;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	memcpy(job->host, e->host, sizeof(job->host));
	pthread_mutex_lock(&sh->mu);
	if (sh->todo_tail)
		sh->todo_tail->next = job;
	else
		sh->todo = job;
	sh->todo_tail = job;
	pthread_cond_signal(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	e->inflight = 1;
	return 0;
}

/* ---- the cache (loop thread) ---- */

struct resolver *resolver_new(struct loop *l, const struct resolve_config *cfg)
{
	struct resolver *r = calloc(1, sizeof(*r));
	struct rs_shared *sh = calloc(1, sizeof(*sh));

	if (!r || !sh) {
		free(r);
		free(sh);
		errno = ENOMEM;
		return NULL;
	}
	if (cfg)
		r->cfg = *cfg;
	if (!r->cfg.ttl_ms)
		r->cfg.ttl_ms = DEFAULT_TTL_MS;
	if (!r->cfg.stale_ms)
		r->cfg.stale_ms = DEFAULT_STALE_MS;
	if (!r->cfg.neg_ttl_ms)
		r->cfg.neg_ttl_ms = DEFAULT_NEG_TTL_MS;
	if (!r->cfg.lookup)
		r->cfg.lookup = gai_lookup;
	pthread_mutex_init(&sh->mu, NULL);
	pthread_cond_init(&sh->cv, NULL);
	sh->efd = -1;
	sh->refs = 1;
	sh->lookup = r->cfg.lookup;
	sh->lookup_arg = r->cfg.lookup_arg;
	r->l = l;
	r->sh = sh;
	return r;
}

void resolver_free(struct resolver *r)
{
	struct rs_shared *sh;
	struct rs_entry *e, *next;
	int busy;

	if (!r)
		return;
	sh = r->sh;
	for (e = r->cache; e; e = next) {
		next = e->next;
		while (e->waiters) {
			struct resolve_query *q = e->waiters;

			e->waiters = q->next;
			q->entry = NULL;
			q->prev = q->next = NULL;
		}
		free(e);
	}
	if (r->started) {
		loop_del(r->l, sh->efd);
		pthread_mutex_lock(&sh->mu);
		sh->quit = 1;
		busy = sh->busy;
		pthread_cond_signal(&sh->cv);
		pthread_mutex_unlock(&sh->mu);
		/* An idle worker exits at once; a busy one may sit in DNS for seconds. */
		if (busy)
			pthread_detach(r->thr);
		else
			pthread_join(r->thr, NULL);
	}
	shared_put(sh);
	free(r);
}

static struct rs_entry *find_entry(struct resolver *r, const char *host)
{
	struct rs_entry *e;

	for (e = r->cache; e; e = e->next)
		if (strcasecmp(e->host, host) == 0)
			return e;
	return NULL;
}

static uint64_t useful_until(const struct rs_entry *e)
{
	return e->have ? e->stale_until : e->err_until;
}

static int evict_one(struct resolver *r)
{
	struct rs_entry **pp, **victim = NULL;

	for (pp = &r->cache; *pp; pp = &(*pp)->next) {
		struct rs_entry *e = *pp;

		if (e->inflight || e->waiters || e->delivering)
			continue;
		if (!victim || useful_until(e) < useful_until(*victim))
			victim = pp;
	}
	if (!victim)
		return SL_E_FULL;
	struct rs_entry *e = *victim;
	*victim = e->next;
	free(e);
	r->ncache--;
	return 0;
}

static int new_entry(struct resolver *r, const char *host, struct rs_entry **out)
{
	struct rs_entry *e;
	int rc;

	if (r->ncache >= RESOLVE_MAX_NAMES) {
		rc = evict_one(r);
		if (rc != 0)
			return rc;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	memcpy(e->host, host, strlen(host) + 1);
	e->next = r->cache;
	r->cache = e;
	r->ncache++;
	*out = e;
	return 0;
}

static void answer(const struct rs_entry *e, uint16_t port, struct resolve_addrs *out)
{
	*out = e->addrs;
	set_port(out, port);
}

int resolve_start(struct resolver *r, struct resolve_query *q, const char *host,
		  uint16_t port, resolve_fn fn, void *arg, struct resolve_addrs *out)
{
	struct rs_entry *e;
	uint64_t now = loop_now_ms(r->l);
	size_t n;
	int rc;

	SL_ASSERT(q->entry == NULL);
	if (!host)
		return SL_E_INVALID;
	if (resolve_numeric(host, port, out))
		return 1;
	n = strlen(host);
	if (n == 0 || n > RESOLVE_MAX_NAME)
		return SL_E_INVALID;
	e = find_entry(r, host);
	if (e) {
		if (e->have && now < e->fresh_until) {
			answer(e, port, out);
			return 1;
		}
		if (e->have && now < e->stale_until) {
			/* Serve the old answer; refresh once, not more often than neg_ttl after a failure. */
			if (!e->inflight && (!e->err || now >= e->err_until))
				(void)start_job(r, e);
			answer(e, port, out);
			return 1;
		}
		if (e->err && now < e->err_until)
			return e->err;
	} else {
		rc = new_entry(r, host, &e);
		if (rc != 0)
			return rc;
	}
	if (!e->inflight) {
		rc = start_job(r, e);
		if (rc != 0)
			return rc;
	}
	q->fn = fn;
	q->arg = arg;
	q->port = port;
	q->entry = e;
	q->prev = NULL;
	q->next = e->waiters;
	if (e->waiters)
		e->waiters->prev = q;
	e->waiters = q;
	return 0;
}

void resolve_cancel(struct resolver *r, struct resolve_query *q)
{
	struct rs_entry *e = q->entry;

	if (!e)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		e->waiters = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->entry = NULL;
	q->prev = q->next = NULL;
}

static void deliver(struct resolver *r, struct rs_job *job)
{
	struct rs_entry *e = find_entry(r, job->host);
	uint64_t now = loop_now_ms(r->l);
	struct resolve_addrs a;

	if (!e)
		return;
	e->inflight = 0;
	if (job->err == 0) {
		e->have = 1;
		e->addrs = job->addrs;
		e->fresh_until = now + r->cfg.ttl_ms;
		e->stale_until = e->fresh_until + r->cfg.stale_ms;
		e->err = 0;
	} else {
		log_warn("resolve", "cannot resolve %s: %s%s", e->host, sl_strerror(job->err),
			 e->have && now < e->stale_until ? " (using the previous addresses)" : "");
		e->err = job->err;
		e->err_until = now + r->cfg.neg_ttl_ms;
		if (now >= e->stale_until)
			e->have = 0;
	}
	/* Callbacks may start or cancel queries, this entry's included. */
	e->delivering = 1;
	while (e->waiters) {
		struct resolve_query *q = e->waiters;

		resolve_cancel(r, q);
		if (e->have) {
			answer(e, q->port, &a);
			q->fn(q->arg, 0, &a);
		} else {
			q->fn(q->arg, e->err, NULL);
		}
	}
	e->delivering = 0;
}

static void on_wake(struct loop *l, int fd, unsigned events, void *arg)
{
	struct resolver *r = arg;
	struct rs_shared *sh = r->sh;
	struct rs_job *done;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) == -1) {
		/* EAGAIN: woken by an earlier write already drained. */
	}
	pthread_mutex_lock(&sh->mu);
	done = sh->done;
	sh->done = sh->done_tail = NULL;
	pthread_mutex_unlock(&sh->mu);
	while (done) {
		struct rs_job *next = done->next;

		deliver(r, done);
		free(done);
		done = next;
	}
}
