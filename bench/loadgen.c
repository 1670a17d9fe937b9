/*
 * loadgen.c - produce and consume load against a Kafka-compatible broker, or
 * against librdkafka's in-process mock cluster as a baseline, and print one
 * machine-readable line per phase.
 *
 *   loadgen produce --bootstrap HOST:PORT --topic T --records N [options]
 *   loadgen consume --bootstrap HOST:PORT --topic T --records N [--partitions P]
 *   loadgen mock    --topic T --records N [options]
 *
 *   options: --size BYTES (1024)  --acks all|1|0 (all)  --partitions P (1)
 *            --linger-ms MS (5)  --compression none|gzip|snappy|lz4|zstd (none)
 *            --timeout S (120: seconds without progress before giving up)
 *            --rate R (0: as fast as librdkafka accepts; else R records per second)
 *            --payload text|random (text)
 *
 * This program is built with the system compiler against the system
 * librdkafka, not with the broker's musl toolchain: it is a client, and the
 * point is to measure the broker through a real, widely used Kafka client.
 *
 * Produce phase.  The topic is created with the Admin API (an existing topic
 * is accepted if its partition count matches), then we wait until metadata
 * shows every partition with a leader, so connection setup and topic creation
 * are outside the timed interval.  The clock starts just before the first
 * rd_kafka_produce() and stops at the last delivery report.  Each message's
 * opaque is its number; its send time sits in sent_ns[number], and the
 * delivery report turns that into one latency sample.  A latency therefore
 * covers the time in librdkafka's local queue, the linger, the network round
 * trip and the broker's durable write: it is what an application calling
 * produce() sees under full load.  Payloads are one shared buffer handed to
 * librdkafka without copying (it lives until every report is in).
 * Idempotence is off so every client speaks the same plain Produce request.
 *
 * Rate (--rate R): record i is handed over no earlier than i / R seconds
 * after the clock starts; while ahead of that schedule we serve delivery
 * reports and sleep (at most 1 ms at a time).  A rate the broker sustains
 * keeps librdkafka's queue short, so the latencies are a record's round trip
 * (linger included) rather than its wait behind the queue; a rate it does not
 * sustain falls behind the schedule and degrades into the unlimited case.
 *
 * Payload (--payload): "text" repeats the alphabet, which any compressor
 * shrinks to almost nothing; "random" gives every record different bytes
 * (a window into PAYLOAD_POOL bytes of xorshift64 output, moving by the
 * record size), so a block compressor storing up to a few MiB at a time finds
 * nothing to remove, as with data a producer compressed already.  Both are
 * made before the clock starts.
 *
 * Consume phase.  No consumer group: partitions 0..P-1 are assigned
 * explicitly at RD_KAFKA_OFFSET_BEGINNING.  librdkafka 2.0 still insists on a
 * group.id for a consumer handle, so one is set, with offset commits off and
 * no subscribe().  Topic metadata is fetched first (that also connects); the
 * clock starts at assign(), so it includes the offset lookup and the first
 * fetch, and stops when the N-th record arrives.  fetch.wait.max.ms is 10 so
 * that a fetch at the end of a partition returns quickly; against a broker
 * holding all N records it does not come into play.
 *
 * Mock mode.  A throwaway producer handle hosts rd_kafka_mock_cluster_new()
 * with one broker; the topic is made with rd_kafka_mock_topic_create() (the
 * mock does not answer CreateTopics), and the same two phases run against its
 * localhost listener.  The mock keeps records in memory and writes nothing
 * durably; it runs inside this process, so it shares our CPUs.  It also keeps
 * only the newest 5 MiB of each partition, so its consume phase may have to
 * go back to the start (run_consume()).
 *
 * Termination.  Every wait is bounded: if no delivery report (produce) or no
 * record (consume) arrives for --timeout seconds, the run fails.
 *
 * Output (stdout, one line per phase; "mock " prefixes the lines in mock mode):
 *   produce records=N bytes=B seconds=S mb_per_s=X records_per_s=Y p50_ms=A p99_ms=B max_ms=C errors=E
 *   consume records=N bytes=B seconds=S mb_per_s=X records_per_s=Y errors=E
 * and in mock mode the consume line ends with rereads=K (see run_consume()).
 * MB is 2^20 bytes, as Kafka's own performance tools count.  Bytes are payload
 * bytes.  Produce errors are failed deliveries; consume errors are errors
 * librdkafka reported while fetching (the run still needs N records).
 *
 * Exit status: 0 success, 1 failure (any delivery error, a stall, a librdkafka
 * call that failed), 2 bad usage.  Diagnostics go to stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL
#define MIB       (1024.0 * 1024.0)
/* Consume errors printed to stderr before we only count them. */
#define MAX_PRINTED_ERRORS 5
/*
 * --payload random: bytes of pseudo-random data the records are windows into.
 * A window comes back every PAYLOAD_POOL bytes produced, so every
 * PAYLOAD_POOL / P bytes of one of P partitions: above the broker's 1 MiB
 * object blocks up to 32 partitions, so no block holds a record twice.
 */
#define PAYLOAD_POOL (32L * 1024 * 1024)

struct opts {
	const char *mode;
	const char *bootstrap;
	const char *topic;
	long records;
	long size;
	const char *acks;
	int partitions;
	int linger_ms;
	const char *compression;
	int timeout_s;
	long rate;		/* records per second, 0 unlimited */
	int random_payload;
};

/* Shared between the produce loop and on_delivery(); both run on the main
 * thread, because delivery reports are served only inside rd_kafka_poll(). */
struct produce_state {
	long records;
	int64_t *sent_ns;	/* [records]: when message i was handed to librdkafka */
	int64_t *lat_ns;	/* [records]: latencies of successful deliveries */
	long n_lat;
	long n_reports;		/* delivery reports seen, failed or not */
	long n_errors;
	int64_t last_report_ns;
	char first_error[256];
};

struct phase_result {
	long records;
	uint64_t bytes;
	double seconds;
	double p50_ms;
	double p99_ms;
	double max_ms;
	long errors;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer; a failure
	 * here would make every figure meaningless, so stop. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1) {
		perror("loadgen: clock_gettime");
		exit(1);
	}
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * NS_PER_MS };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen produce --bootstrap HOST:PORT --topic T --records N [--size B]\n"
		"                       [--acks all|1|0] [--partitions P] [--linger-ms MS]\n"
		"                       [--compression none|gzip|snappy|lz4|zstd] [--timeout S]\n"
		"                       [--rate RECORDS_PER_S] [--payload text|random]\n"
		"       loadgen consume --bootstrap HOST:PORT --topic T --records N [--partitions P]\n"
		"                       [--timeout S]\n"
		"       loadgen mock --topic T --records N [produce options]\n");
}

/* Parse a decimal in [min, max]; returns 0 or -1 with a message printed. */
static int parse_long(const char *name, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "loadgen: %s wants a number in [%ld, %ld], got '%s'\n",
			name, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	long v;
	int i;

	o->mode = argv[1];
	o->bootstrap = NULL;
	o->topic = NULL;
	o->records = -1;
	o->size = 1024;
	o->acks = "all";
	o->partitions = 1;
	o->linger_ms = 5;
	o->compression = "none";
	o->timeout_s = 120;
	o->rate = 0;
	o->random_payload = 0;

	for (i = 2; i < argc; i += 2) {
		const char *k = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (val == NULL) {
			fprintf(stderr, "loadgen: %s needs a value\n", k);
			return -1;
		}
		if (strcmp(k, "--bootstrap") == 0) {
			o->bootstrap = val;
		} else if (strcmp(k, "--topic") == 0) {
			o->topic = val;
		} else if (strcmp(k, "--records") == 0) {
			if (parse_long(k, val, 1, 1000000000L, &o->records) != 0)
				return -1;
		} else if (strcmp(k, "--size") == 0) {
			if (parse_long(k, val, 0, 64L * 1024 * 1024, &o->size) != 0)
				return -1;
		} else if (strcmp(k, "--acks") == 0) {
			if (strcmp(val, "all") != 0 && strcmp(val, "-1") != 0 &&
			    strcmp(val, "1") != 0 && strcmp(val, "0") != 0) {
				fprintf(stderr, "loadgen: --acks wants all, 1 or 0\n");
				return -1;
			}
			o->acks = val;
		} else if (strcmp(k, "--partitions") == 0) {
			if (parse_long(k, val, 1, 100000, &v) != 0)
				return -1;
			o->partitions = (int)v;
		} else if (strcmp(k, "--linger-ms") == 0) {
			if (parse_long(k, val, 0, 900000, &v) != 0)
				return -1;
			o->linger_ms = (int)v;
		} else if (strcmp(k, "--compression") == 0) {
			o->compression = val;
		} else if (strcmp(k, "--timeout") == 0) {
			if (parse_long(k, val, 1, 86400, &v) != 0)
				return -1;
			o->timeout_s = (int)v;
		} else if (strcmp(k, "--rate") == 0) {
			if (parse_long(k, val, 0, 100000000L, &o->rate) != 0)
				return -1;
		} else if (strcmp(k, "--payload") == 0) {
			if (strcmp(val, "text") != 0 && strcmp(val, "random") != 0) {
				fprintf(stderr, "loadgen: --payload wants text or random\n");
				return -1;
			}
			o->random_payload = strcmp(val, "random") == 0;
		} else {
			fprintf(stderr, "loadgen: unknown option %s\n", k);
			return -1;
		}
	}
	if (o->topic == NULL || o->records < 0) {
		fprintf(stderr, "loadgen: --topic and --records are required\n");
		return -1;
	}
	if (strcmp(o->mode, "mock") != 0 && o->bootstrap == NULL) {
		fprintf(stderr, "loadgen: --bootstrap is required\n");
		return -1;
	}
	return 0;
}

/* Set one property; rd_kafka_conf_set() validates name and value. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "loadgen: config %s=%s: %s\n", name, value, errstr);
		return -1;
	}
	return 0;
}

static int conf_set_int(rd_kafka_conf_t *conf, const char *name, long value)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%ld", value);
	return conf_set(conf, name, buf);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n-1], in milliseconds. */
static double percentile_ms(const int64_t *v, long n, int pct)
{
	long rank;

	if (n == 0)
		return 0.0;
	rank = (long)(((int64_t)n * pct + 99) / 100);	/* ceil(n * pct / 100) */
	if (rank < 1)
		rank = 1;
	return (double)v[rank - 1] / NS_PER_MS;
}

/* rereads < 0: not a mock consume, leave the field out. */
static void print_result(const char *label, const char *phase, const struct phase_result *r,
			 int with_latency, long rereads)
{
	double s = r->seconds > 0 ? r->seconds : 1e-9;

	printf("%s%s records=%ld bytes=%" PRIu64 " seconds=%.3f mb_per_s=%.2f records_per_s=%.0f",
	       label, phase, r->records, r->bytes, r->seconds, (double)r->bytes / MIB / s,
	       (double)r->records / s);
	if (with_latency)
		printf(" p50_ms=%.3f p99_ms=%.3f max_ms=%.3f", r->p50_ms, r->p99_ms, r->max_ms);
	printf(" errors=%ld", r->errors);
	if (rereads >= 0)
		printf(" rereads=%ld", rereads);
	printf("\n");
	fflush(stdout);
}

/* ---- produce ---- */

/*
 * The payload buffer: o->size bytes of the alphabet, or for --payload random
 * PAYLOAD_POOL + o->size bytes of xorshift64 output (record_payload() picks
 * each record's window).  NULL when out of memory.
 */
static char *make_payload(const struct opts *o)
{
	size_t n = (size_t)o->size + (o->random_payload ? (size_t)PAYLOAD_POOL : 0);
	char *p = malloc(n + 8);
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i;

	if (p == NULL)
		return NULL;
	if (!o->random_payload) {
		for (i = 0; i < n; i++)
			p[i] = (char)('a' + i % 26);
		return p;
	}
	for (i = 0; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	return p;
}

static char *record_payload(const struct opts *o, char *payload, long i)
{
	if (!o->random_payload)
		return payload;
	return payload + (size_t)(((uint64_t)i * (uint64_t)o->size) % (uint64_t)PAYLOAD_POOL);
}

/* --rate: serve delivery reports until the clock reaches due (ns). */
static void pace(rd_kafka_t *rk, int64_t due)
{
	int64_t left;

	while ((left = due - now_ns()) > 0) {
		struct timespec ts;

		rd_kafka_poll(rk, 0);
		left = due - now_ns();
		if (left <= 0)
			break;
		if (left > NS_PER_MS)
			left = NS_PER_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct produce_state *ps = opaque;
	uintptr_t i = (uintptr_t)m->_private;
	int64_t t = now_ns();

	(void)rk;
	ps->n_reports++;
	ps->last_report_ns = t;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR || i >= (uintptr_t)ps->records) {
		if (ps->n_errors++ == 0)
			snprintf(ps->first_error, sizeof ps->first_error, "%s",
				 m->err ? rd_kafka_err2str(m->err) : "report for an unknown message");
		return;
	}
	ps->lat_ns[ps->n_lat++] = t - ps->sent_ns[i];
}

/*
 * Create the topic through the Admin API.  TOPIC_ALREADY_EXISTS is fine; the
 * partition count is checked afterwards by await_topic().
 */
static int create_topic(rd_kafka_t *rk, const struct opts *o)
{
	char errstr[512];
	rd_kafka_NewTopic_t *nt = NULL;
	rd_kafka_AdminOptions_t *ao = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **tr;
	size_t cnt, i;
	int timeout_ms = o->timeout_s * 1000;
	int rc = -1;

	nt = rd_kafka_NewTopic_new(o->topic, o->partitions, 1, errstr, sizeof errstr);
	if (nt == NULL) {
		fprintf(stderr, "loadgen: NewTopic %s: %s\n", o->topic, errstr);
		goto out;
	}
	ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	if (ao == NULL) {
		fprintf(stderr, "loadgen: AdminOptions_new failed\n");
		goto out;
	}
	if (rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, errstr, sizeof errstr) ||
	    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, errstr, sizeof errstr)) {
		fprintf(stderr, "loadgen: admin timeout: %s\n", errstr);
		goto out;
	}
	q = rd_kafka_queue_new(rk);
	if (q == NULL) {
		fprintf(stderr, "loadgen: queue_new failed\n");
		goto out;
	}
	rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
	ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
	if (ev == NULL) {
		fprintf(stderr, "loadgen: CreateTopics %s: no answer in %d s\n", o->topic, o->timeout_s);
		goto out;
	}
	if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "loadgen: CreateTopics %s: %s\n", o->topic,
			rd_kafka_event_error_string(ev));
		goto out;
	}
	res = rd_kafka_event_CreateTopics_result(ev);
	if (res == NULL) {
		fprintf(stderr, "loadgen: CreateTopics: unexpected event %s\n", rd_kafka_event_name(ev));
		goto out;
	}
	tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
	for (i = 0; i < cnt; i++) {
		rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);

		if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			const char *msg = rd_kafka_topic_result_error_string(tr[i]);

			fprintf(stderr, "loadgen: CreateTopics %s: %s (%s)\n",
				rd_kafka_topic_result_name(tr[i]), rd_kafka_err2str(err),
				msg ? msg : "no message");
			goto out;
		}
	}
	rc = 0;
out:
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	if (q != NULL)
		rd_kafka_queue_destroy(q);
	if (ao != NULL)
		rd_kafka_AdminOptions_destroy(ao);
	if (nt != NULL)
		rd_kafka_NewTopic_destroy(nt);
	return rc;
}

/*
 * Wait until metadata shows the topic with the expected number of
 * partitions, each with a leader.  A broker may take a moment after
 * CreateTopics; a different partition count is an error, since the consume
 * phase reads exactly 0..P-1.
 */
static int await_topic(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct opts *o)
{
	int64_t deadline = now_ns() + (int64_t)o->timeout_s * NS_PER_S;
	char last[256] = "no metadata yet";

	for (;;) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);

		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(last, sizeof last, "metadata: %s", rd_kafka_err2str(err));
		} else if (md->topic_cnt != 1) {
			snprintf(last, sizeof last, "metadata names %d topics", md->topic_cnt);
		} else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(last, sizeof last, "topic: %s", rd_kafka_err2str(md->topics[0].err));
		} else if (md->topics[0].partition_cnt != o->partitions) {
			fprintf(stderr, "loadgen: topic %s has %d partitions, --partitions says %d\n",
				o->topic, md->topics[0].partition_cnt, o->partitions);
			rd_kafka_metadata_destroy(md);
			return -1;
		} else {
			const struct rd_kafka_metadata_topic *t = &md->topics[0];
			int p, ready = 1;

			for (p = 0; p < t->partition_cnt; p++) {
				if (t->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
				    t->partitions[p].leader < 0) {
					snprintf(last, sizeof last, "partition %d: %s, leader %d",
						 (int)t->partitions[p].id,
						 rd_kafka_err2str(t->partitions[p].err),
						 (int)t->partitions[p].leader);
					ready = 0;
					break;
				}
			}
			if (ready) {
				rd_kafka_metadata_destroy(md);
				return 0;
			}
		}
		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		if (now_ns() > deadline) {
			fprintf(stderr, "loadgen: topic %s not ready after %d s (%s)\n",
				o->topic, o->timeout_s, last);
			return -1;
		}
		sleep_ms(100);
	}
}

static int run_produce(const struct opts *o, const char *bootstrap, int create,
		       const char *label)
{
	char errstr[512];
	struct produce_state ps;
	struct phase_result r;
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_t *rkt = NULL;
	char *payload = NULL;
	int64_t t0, stall_ns = (int64_t)o->timeout_s * NS_PER_S;
	long i;
	int rc = -1;

	memset(&ps, 0, sizeof ps);
	ps.records = o->records;
	ps.sent_ns = calloc((size_t)o->records, sizeof *ps.sent_ns);
	ps.lat_ns = calloc((size_t)o->records, sizeof *ps.lat_ns);
	payload = make_payload(o);
	if (ps.sent_ns == NULL || ps.lat_ns == NULL || payload == NULL) {
		fprintf(stderr, "loadgen: out of memory for %ld records\n", o->records);
		goto out;
	}

	conf = rd_kafka_conf_new();
	if (conf_set(conf, "bootstrap.servers", bootstrap) ||
	    conf_set(conf, "client.id", "sluice-loadgen") ||
	    conf_set(conf, "acks", o->acks) ||
	    conf_set(conf, "enable.idempotence", "false") ||
	    conf_set_int(conf, "linger.ms", o->linger_ms) ||
	    conf_set(conf, "compression.type", o->compression))
		goto out;
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, &ps);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (rk == NULL) {
		fprintf(stderr, "loadgen: producer: %s\n", errstr);
		goto out;
	}
	conf = NULL;	/* owned by rk now */

	if (create && create_topic(rk, o) != 0)
		goto out;
	rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	if (rkt == NULL) {
		fprintf(stderr, "loadgen: topic_new %s: %s\n", o->topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		goto out;
	}
	if (await_topic(rk, rkt, o) != 0)
		goto out;

	t0 = now_ns();
	ps.last_report_ns = t0;
	for (i = 0; i < o->records; i++) {
		if (o->rate > 0)
			pace(rk, t0 + (int64_t)((double)i * NS_PER_S / (double)o->rate));
		for (;;) {
			ps.sent_ns[i] = now_ns();
			if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, record_payload(o, payload, i),
					     (size_t)o->size, NULL, 0, (void *)(uintptr_t)i) == 0)
				break;
			if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "loadgen: produce: %s\n",
					rd_kafka_err2str(rd_kafka_last_error()));
				goto out;
			}
			/* Local queue full: serve reports to make room. */
			rd_kafka_poll(rk, 10);
			if (now_ns() - ps.last_report_ns > stall_ns) {
				fprintf(stderr, "loadgen: no delivery report for %d s (%ld of %ld)\n",
					o->timeout_s, ps.n_reports, o->records);
				goto out;
			}
		}
		rd_kafka_poll(rk, 0);	/* serve delivery reports as they come */
	}
	while (ps.n_reports < o->records) {
		rd_kafka_poll(rk, 100);
		if (now_ns() - ps.last_report_ns > stall_ns) {
			fprintf(stderr, "loadgen: no delivery report for %d s (%ld of %ld)\n",
				o->timeout_s, ps.n_reports, o->records);
			goto out;
		}
	}

	qsort(ps.lat_ns, (size_t)ps.n_lat, sizeof *ps.lat_ns, cmp_i64);
	r.records = ps.n_lat;
	r.bytes = (uint64_t)ps.n_lat * (uint64_t)o->size;
	r.seconds = (double)(ps.last_report_ns - t0) / NS_PER_S;
	r.p50_ms = percentile_ms(ps.lat_ns, ps.n_lat, 50);
	r.p99_ms = percentile_ms(ps.lat_ns, ps.n_lat, 99);
	r.max_ms = ps.n_lat > 0 ? (double)ps.lat_ns[ps.n_lat - 1] / NS_PER_MS : 0.0;
	r.errors = ps.n_errors;
	print_result(label, "produce", &r, 1, -1);
	if (ps.n_errors > 0) {
		fprintf(stderr, "loadgen: %ld delivery errors, the first: %s\n",
			ps.n_errors, ps.first_error);
		goto out;
	}
	rc = 0;
out:
	if (rk != NULL && rc != 0) {
		/* Give up on what is still queued, and serve the resulting
		 * reports so rd_kafka_destroy() does not wait for them. */
		rd_kafka_resp_err_t perr =
			rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);

		if (perr != RD_KAFKA_RESP_ERR_NO_ERROR)
			fprintf(stderr, "loadgen: purge: %s\n", rd_kafka_err2str(perr));
		if (rd_kafka_flush(rk, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
			fprintf(stderr, "loadgen: %d messages still queued after the purge\n",
				rd_kafka_outq_len(rk));
	}
	if (rkt != NULL)
		rd_kafka_topic_destroy(rkt);
	if (rk != NULL)
		rd_kafka_destroy(rk);	/* may still call on_delivery: ps lives until here */
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	free(payload);
	free(ps.lat_ns);
	free(ps.sent_ns);
	return rc;
}

/* ---- consume ---- */

/* Start every partition of the topic over at its first retained record. */
static int seek_to_beginning(rd_kafka_t *rk, const struct opts *o)
{
	rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(o->partitions);
	rd_kafka_error_t *error;
	int p, rc = 0;

	if (all == NULL) {
		fprintf(stderr, "loadgen: partition list: out of memory\n");
		return -1;
	}
	for (p = 0; p < o->partitions; p++)
		rd_kafka_topic_partition_list_add(all, o->topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	error = rd_kafka_seek_partitions(rk, all, o->timeout_s * 1000);
	if (error != NULL) {
		fprintf(stderr, "loadgen: seek %s: %s\n", o->topic, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		rc = -1;
	} else {
		for (p = 0; p < all->cnt; p++) {
			if (all->elems[p].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
				fprintf(stderr, "loadgen: seek %s [%d]: %s\n", o->topic,
					(int)all->elems[p].partition,
					rd_kafka_err2str(all->elems[p].err));
				rc = -1;
			}
		}
	}
	rd_kafka_topic_partition_list_destroy(all);
	return rc;
}

/*
 * Read N records from partitions 0..P-1, starting at the beginning.  With
 * reread set (mock mode only), once every partition has reached its end with
 * fewer than N records read, all of them are sought back to their beginning:
 * librdkafka 2.0.2's mock keeps only the newest 5 MiB of each partition (a
 * constant in its source), so a full-size run cannot be read in one pass
 * there.  A run that fits is read in one pass, as against a real broker.
 */
static int run_consume(const struct opts *o, const char *bootstrap, int reread,
		       const char *label)
{
	char errstr[512];
	struct phase_result r;
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_t *rkt = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t err;
	int64_t t0, t_last, stall_ns = (int64_t)o->timeout_s * NS_PER_S;
	long rereads = 0, eofs = 0;
	char *at_end = NULL;	/* [partitions]: reached the end since the last seek */
	int n_at_end = 0;
	int p, rc = -1;

	memset(&r, 0, sizeof r);
	at_end = calloc((size_t)o->partitions, 1);
	if (at_end == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		return -1;
	}
	conf = rd_kafka_conf_new();
	if (conf_set(conf, "bootstrap.servers", bootstrap) ||
	    conf_set(conf, "client.id", "sluice-loadgen") ||
	    conf_set(conf, "group.id", "sluice-loadgen") ||
	    conf_set(conf, "enable.auto.commit", "false") ||
	    conf_set(conf, "enable.auto.offset.store", "false") ||
	    conf_set(conf, "enable.partition.eof", "true") ||
	    conf_set(conf, "fetch.wait.max.ms", "10") ||
	    conf_set(conf, "auto.offset.reset", "earliest"))
		goto out;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	if (rk == NULL) {
		fprintf(stderr, "loadgen: consumer: %s\n", errstr);
		goto out;
	}
	conf = NULL;	/* owned by rk now */
	err = rd_kafka_poll_set_consumer(rk);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "loadgen: poll_set_consumer: %s\n", rd_kafka_err2str(err));
		goto out;
	}

	/* Learn the partition leaders before the clock starts; assigned
	 * without them, librdkafka waits for a retry timer (500 ms). */
	rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	if (rkt == NULL) {
		fprintf(stderr, "loadgen: topic_new %s: %s\n", o->topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		goto out;
	}
	if (await_topic(rk, rkt, o) != 0)
		goto out;

	parts = rd_kafka_topic_partition_list_new(o->partitions);
	if (parts == NULL) {
		fprintf(stderr, "loadgen: partition list: out of memory\n");
		goto out;
	}
	for (p = 0; p < o->partitions; p++)
		rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;

	t0 = now_ns();
	t_last = t0;
	err = rd_kafka_assign(rk, parts);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "loadgen: assign: %s\n", rd_kafka_err2str(err));
		goto out;
	}
	while (r.records < o->records) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		int64_t t = now_ns();

		if (m == NULL) {
			if (t - t_last > stall_ns) {
				fprintf(stderr, "loadgen: no record for %d s (%ld of %ld read, %ld "
					"end-of-partition events)\n", o->timeout_s, r.records,
					o->records, eofs);
				goto out;
			}
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			r.records++;
			r.bytes += m->len;
			t_last = t;
		} else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			eofs++;
			if (reread && m->partition >= 0 && m->partition < o->partitions &&
			    !at_end[m->partition]) {
				at_end[m->partition] = 1;
				n_at_end++;
			}
			if (reread && n_at_end == o->partitions) {
				if (seek_to_beginning(rk, o) != 0) {
					rd_kafka_message_destroy(m);
					goto out;
				}
				memset(at_end, 0, (size_t)o->partitions);
				n_at_end = 0;
				rereads++;
			}
		} else if (r.errors++ < MAX_PRINTED_ERRORS) {
			fprintf(stderr, "loadgen: consume: %s\n", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	r.seconds = (double)(t_last - t0) / NS_PER_S;
	print_result(label, "consume", &r, 0, reread ? rereads : -1);
	rc = 0;
out:
	if (parts != NULL)
		rd_kafka_topic_partition_list_destroy(parts);
	if (rkt != NULL)
		rd_kafka_topic_destroy(rkt);
	if (rk != NULL) {
		err = rd_kafka_consumer_close(rk);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "loadgen: consumer_close: %s\n", rd_kafka_err2str(err));
			rc = -1;
		}
		rd_kafka_destroy(rk);
	}
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	free(at_end);
	return rc;
}

/* ---- mock ---- */

static int run_mock(const struct opts *o)
{
	char errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *host;
	rd_kafka_mock_cluster_t *mc = NULL;
	rd_kafka_resp_err_t err;
	const char *bs;
	char *bootstrap = NULL;
	int rc = -1;

	/* The host handle only keeps the mock cluster alive; it never connects
	 * anywhere, so its warning about missing bootstrap servers is muted. */
	conf = rd_kafka_conf_new();
	if (conf_set(conf, "log_level", "3") != 0) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (host == NULL) {
		fprintf(stderr, "loadgen: mock host: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	mc = rd_kafka_mock_cluster_new(host, 1);
	if (mc == NULL) {
		fprintf(stderr, "loadgen: mock_cluster_new failed\n");
		goto out;
	}
	bs = rd_kafka_mock_cluster_bootstraps(mc);
	if (bs == NULL || (bootstrap = strdup(bs)) == NULL) {
		fprintf(stderr, "loadgen: mock cluster has no bootstrap address\n");
		goto out;
	}
	err = rd_kafka_mock_topic_create(mc, o->topic, o->partitions, 1);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "loadgen: mock_topic_create %s: %s\n", o->topic, rd_kafka_err2str(err));
		goto out;
	}
	if (run_produce(o, bootstrap, 0, "mock ") != 0)
		goto out;
	if (run_consume(o, bootstrap, 1, "mock ") != 0)
		goto out;
	rc = 0;
out:
	free(bootstrap);
	if (mc != NULL)
		rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(host);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (argc < 2 || parse_opts(argc, argv, &o) != 0) {
		usage();
		return 2;
	}
	if (strcmp(o.mode, "produce") == 0)
		return run_produce(&o, o.bootstrap, 1, "") == 0 ? 0 : 1;
	if (strcmp(o.mode, "consume") == 0)
		return run_consume(&o, o.bootstrap, 0, "") == 0 ? 0 : 1;
	if (strcmp(o.mode, "mock") == 0)
		return run_mock(&o) == 0 ? 0 : 1;
	fprintf(stderr, "loadgen: unknown mode %s\n", o.mode);
	usage();
	return 2;
}
