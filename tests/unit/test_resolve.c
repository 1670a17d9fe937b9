/*
 * test_resolve.c - names resolved off the loop: numeric addresses at once
 * without the thread; a lookup shared by the queries waiting on it; answers
 * cached; a stale answer served while one refresh runs; failures
 * remembered for neg_ttl; cancel; a lookup that blocks does not block the
 * loop (a timer fires meanwhile); resolver_free returns while a lookup is
 * still blocked; and the real getaddrinfo on "localhost".
 *
 * The fake lookup runs on the worker thread; it counts calls and may block
 * until the test opens a gate.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/log.h"
#include "../../net/resolve.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int gate_open = 1;	/* lookups block while 0 */
static int lookups;		/* calls of the fake lookup */
static int fail_with;		/* the fake lookup's error, 0 for success */
static uint32_t answer_ip = 0x0a010203;	/* 10.1.2.3 */

static int fake_lookup(const char *host, struct resolve_addrs *out, void *arg)
{
	struct sockaddr_in *s = (struct sockaddr_in *)&out->addr[0];
	int err;

	pthread_mutex_lock(&mu);
	lookups++;
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	err = fail_with;
	s->sin_family = AF_INET;
	s->sin_addr.s_addr = htonl(answer_ip);
	pthread_mutex_unlock(&mu);
	if (err)
		return err;
	out->len[0] = sizeof(*s);
	out->n = 1;
	return 0;
}

static void set_gate(int open)
{
	pthread_mutex_lock(&mu);
	gate_open = open;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static int get_lookups(void)
{
	int n;

	pthread_mutex_lock(&mu);
	n = lookups;
	pthread_mutex_unlock(&mu);
	return n;
}

struct answer {
	int calls;
	int err;
	uint32_t ip;
	uint16_t port;
};

static struct loop *L;
static int waiting;

static void on_answer(void *arg, int err, const struct resolve_addrs *a)
{
	struct answer *ans = arg;

	ans->calls++;
	ans->err = err;
	if (!err && a->n > 0 && a->addr[0].ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&a->addr[0];

		ans->ip = ntohl(s->sin_addr.s_addr);
		ans->port = ntohs(s->sin_port);
	}
	if (--waiting == 0)
		loop_stop(L);
}

static void stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* Run until every waited-for answer came, or 5 s. */
static void run(void)
{
	struct loop_timer guard;

	loop_timer_init(&guard, stop_loop, NULL);
	loop_timer_set(L, &guard, 5000);
	if (waiting > 0)
		T_EQ(loop_run(L), 0);
	loop_timer_cancel(L, &guard);
	T_EQ(waiting, 0);
}

static struct resolver *fresh(uint64_t ttl, uint64_t stale, uint64_t neg)
{
	struct resolve_config cfg = { ttl, stale, neg, fake_lookup, NULL };

	L = loop_new();
	lookups = 0;
	fail_with = 0;
	waiting = 0;
	set_gate(1);
	return resolver_new(L, &cfg);
}

static void done(struct resolver *r)
{
	resolver_free(r);
	loop_destroy(L);
	L = NULL;
}

static void test_numeric(void)
{
	struct resolver *r = fresh(0, 0, 0);
	struct resolve_query q = { 0 };
	struct resolve_addrs a;
	struct answer ans = { 0 };

	T_EQ(resolve_start(r, &q, "192.0.2.7", 9000, on_answer, &ans, &a), 1);
	T_EQ(a.n, 1);
	T_EQ(a.addr[0].ss_family, AF_INET);
	T_EQ(ntohs(((struct sockaddr_in *)&a.addr[0])->sin_port), 9000);
	T_EQ(resolve_start(r, &q, "::1", 80, on_answer, &ans, &a), 1);
	T_EQ(a.addr[0].ss_family, AF_INET6);
	T_EQ(resolve_start(r, &q, "[2001:db8::1]", 443, on_answer, &ans, &a), 1);
	T_EQ(a.addr[0].ss_family, AF_INET6);
	T_EQ(ntohs(((struct sockaddr_in6 *)&a.addr[0])->sin6_port), 443);
	T_EQ(resolve_numeric("s3.amazonaws.com", 1, &a), 0);
	T_EQ(resolve_numeric("1.2.3", 1, &a), 0);
	T_EQ(resolve_start(r, &q, "", 80, on_answer, &ans, &a), SL_E_INVALID);
	T_EQ(get_lookups(), 0);
	T_EQ(ans.calls, 0);
	done(r);
}

static void test_shared_and_cached(void)
{
	struct resolver *r = fresh(60000, 0, 0);
	struct resolve_query q1 = { 0 }, q2 = { 0 }, q3 = { 0 };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
	struct resolve_addrs a;

	T_EQ(resolve_start(r, &q1, "s3.example", 80, on_answer, &a1, &a), 0);
	T_EQ(resolve_start(r, &q2, "S3.EXAMPLE", 443, on_answer, &a2, &a), 0);
	waiting = 2;
	run();
	T_EQ(get_lookups(), 1);
	T_EQ(a1.calls, 1);
	T_EQ(a1.err, 0);
	T_EQ(a1.ip, 0x0a010203);
	T_EQ(a1.port, 80);
	T_EQ(a2.port, 443);
	/* Now from the cache, at once. */
	T_EQ(resolve_start(r, &q3, "s3.example", 8080, on_answer, &a3, &a), 1);
	T_EQ(ntohs(((struct sockaddr_in *)&a.addr[0])->sin_port), 8080);
	T_EQ(get_lookups(), 1);
	T_EQ(a3.calls, 0);
	done(r);
}

static struct loop_timer wait_t;

static void test_stale_served_while_refreshing(void)
{
	struct resolver *r = fresh(1, 600000, 0);
	struct resolve_query q = { 0 };
	struct answer ans = { 0 };
	struct resolve_addrs a;

	T_EQ(resolve_start(r, &q, "bucket.s3", 80, on_answer, &ans, &a), 0);
	waiting = 1;
	run();
	T_EQ(ans.ip, 0x0a010203);
	/* Let the 1 ms ttl pass, then ask with DNS now answering differently and slowly. */
	loop_timer_init(&wait_t, stop_loop, NULL);
	loop_timer_set(L, &wait_t, 20);
	T_EQ(loop_run(L), 0);
	set_gate(0);
	answer_ip = 0x0a040506;
	T_EQ(resolve_start(r, &q, "bucket.s3", 80, on_answer, &ans, &a), 1);
	T_EQ(ntohl(((struct sockaddr_in *)&a.addr[0])->sin_addr.s_addr), 0x0a010203);
	/* One refresh only, however many ask. */
	T_EQ(resolve_start(r, &q, "bucket.s3", 80, on_answer, &ans, &a), 1);
	set_gate(1);
	/* Wait for the refresh to land, then the new address is served. */
	for (int i = 0; i < 500 && get_lookups() < 2; i++) {
		loop_timer_set(L, &wait_t, 2);
		T_EQ(loop_run(L), 0);
	}
	T_EQ(get_lookups(), 2);
	for (int i = 0; i < 100; i++) {
		loop_timer_set(L, &wait_t, 2);
		T_EQ(loop_run(L), 0);
		T_EQ(resolve_start(r, &q, "bucket.s3", 80, on_answer, &ans, &a), 1);
		if (ntohl(((struct sockaddr_in *)&a.addr[0])->sin_addr.s_addr) == 0x0a040506)
			break;
	}
	T_EQ(ntohl(((struct sockaddr_in *)&a.addr[0])->sin_addr.s_addr), 0x0a040506);
	T_EQ(ans.calls, 1);
	answer_ip = 0x0a010203;
	done(r);
}

static void test_failure_remembered(void)
{
	struct resolver *r = fresh(0, 0, 600000);
	struct resolve_query q = { 0 };
	struct answer ans = { 0 };
	struct resolve_addrs a;

	fail_with = SL_E_NOTFOUND;
	T_EQ(resolve_start(r, &q, "nope.example", 80, on_answer, &ans, &a), 0);
	waiting = 1;
	run();
	T_EQ(ans.calls, 1);
	T_EQ(ans.err, SL_E_NOTFOUND);
	T_EQ(resolve_start(r, &q, "nope.example", 80, on_answer, &ans, &a), SL_E_NOTFOUND);
	T_EQ(get_lookups(), 1);
	done(r);
}

static int ticks;
static struct resolve_query slow_q;
static struct answer slow_ans;

static void tick(struct loop *l, void *arg)
{
	/* The loop turns while the lookup blocks; then the test lets it finish. */
	if (++ticks == 3)
		set_gate(1);
	else
		loop_timer_set(l, &wait_t, 5);
}

static void test_slow_lookup_does_not_block(void)
{
	struct resolver *r = fresh(0, 0, 0);
	struct resolve_addrs a;

	set_gate(0);
	ticks = 0;
	memset(&slow_ans, 0, sizeof(slow_ans));
	memset(&slow_q, 0, sizeof(slow_q));
	T_EQ(resolve_start(r, &slow_q, "slow.example", 80, on_answer, &slow_ans, &a), 0);
	waiting = 1;
	loop_timer_init(&wait_t, tick, NULL);
	loop_timer_set(L, &wait_t, 5);
	run();
	T_EQ(ticks, 3);
	T_EQ(slow_ans.calls, 1);
	T_EQ(slow_ans.err, 0);
	done(r);
}

static void test_cancel(void)
{
	struct resolver *r = fresh(0, 0, 0);
	struct resolve_query q1 = { 0 }, q2 = { 0 };
	struct answer a1 = { 0 }, a2 = { 0 };
	struct resolve_addrs a;

	T_EQ(resolve_start(r, &q1, "c.example", 80, on_answer, &a1, &a), 0);
	T_EQ(resolve_start(r, &q2, "c.example", 80, on_answer, &a2, &a), 0);
	resolve_cancel(r, &q1);
	resolve_cancel(r, &q1);	/* twice is harmless */
	waiting = 1;
	run();
	T_EQ(a1.calls, 0);
	T_EQ(a2.calls, 1);
	done(r);
}

static void test_free_while_blocked(void)
{
	struct resolver *r = fresh(0, 0, 0);
	struct resolve_query q = { 0 };
	struct answer ans = { 0 };
	struct resolve_addrs a;

	set_gate(0);
	T_EQ(resolve_start(r, &q, "stuck.example", 80, on_answer, &ans, &a), 0);
	/* Wait until the worker is inside the lookup. */
	for (int i = 0; i < 1000 && get_lookups() == 0; i++)
		usleep(1000);
	T_EQ(get_lookups(), 1);
	done(r);		/* must return with the lookup still blocked */
	T_EQ(ans.calls, 0);
	set_gate(1);		/* the worker finishes, sees quit, cleans up */
	usleep(20000);
}

static void test_getaddrinfo_localhost(void)
{
	struct resolver *r;
	struct resolve_query q = { 0 };
	struct answer ans = { 0 };
	struct resolve_addrs a;

	L = loop_new();
	waiting = 0;
	r = resolver_new(L, NULL);
	T_EQ(resolve_start(r, &q, "localhost", 1234, on_answer, &ans, &a), 0);
	waiting = 1;
	run();
	T_EQ(ans.calls, 1);
	T_EQ(ans.err, 0);
	done(r);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	T_RUN(test_numeric);
	T_RUN(test_shared_and_cached);
	T_RUN(test_stale_served_while_refreshing);
	T_RUN(test_failure_remembered);
	T_RUN(test_slow_lookup_does_not_block);
	T_RUN(test_cancel);
	T_RUN(test_free_while_blocked);
	T_RUN(test_getaddrinfo_localhost);
	return t_done();
}
