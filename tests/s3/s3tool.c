/*
 * s3tool.c - a small command-line client over storage/s3.h, for the
 * integration tests (tests/integration/test_s3_client.py) and for poking at
 * an S3 server by hand.
 *
 *   s3tool [OPTIONS] put KEY FILE            FILE "-" is stdin
 *   s3tool [OPTIONS] put-many PREFIX COUNT   COUNT small objects PREFIX00000...
 *   s3tool [OPTIONS] get KEY [FIRST LAST]    the object (or bytes FIRST..LAST) to stdout
 *   s3tool [OPTIONS] head KEY
 *   s3tool [OPTIONS] delete KEY...
 *   s3tool [OPTIONS] delete-many KEY...      DeleteObjects; "@FILE" reads keys, one a line
 *   s3tool [OPTIONS] list [PREFIX]           "KEY SIZE" lines, then "# objects=N pages=P"
 *   s3tool [OPTIONS] loopcheck COMMAND ...   any command above while a loop timer ticks
 *                                            every 10 ms; reports the largest gap
 *
 * The bucket comes from --url or S3_OBJECTS_URL (the sluice.objects.url
 * form); --endpoint URL builds s3://$S3_BUCKET?region=$S3_REGION&endpoint=URL
 * &path_style=true instead (the fault server, the proxies with bad
 * certificates).  Credentials come through the broker's own provider
 * (storage/s3cred.c) from the AWS_* environment variables, which the tool
 * fills from S3_ACCESS_KEY, S3_SECRET_KEY and S3_SESSION_TOKEN when they are
 * not set (the instance role is not asked: AWS_EC2_METADATA_DISABLED); the
 * extra CA from --ca or S3_CA_FILE.
 *
 * Output: results on stdout; one line "s3tool: ok ..." or "s3tool: FAILED
 * ..." per operation on stderr, with the error, the HTTP status, S3's Code
 * and Message, the attempts and the time taken.  Exit status 0 when every
 * operation succeeded, 1 when one failed, 2 for bad usage or setup.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dirent.h>
#include "../../kernel/config.h"
#include "../../kernel/log.h"
#include "../../kernel/loop.h"
#include "../../net/httpc.h"
#include "../../net/resolve.h"
#include "../../storage/s3.h"
#include "../../storage/s3cred.h"

static struct loop *L;
static struct s3 *S3;
static int pending;
static int failures;
static const char *cmd_name;

/* ---- every host name to one address (--connect-to) ---- */

static struct sockaddr_storage connect_to;
static socklen_t connect_to_len;

static int lookup_fixed(const char *host, struct resolve_addrs *out, void *arg)
{
	memset(out, 0, sizeof(*out));
	memcpy(&out->addr[0], &connect_to, connect_to_len);
	out->len[0] = connect_to_len;
	out->n = 1;
	return 0;
}

/* ---- helpers ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: s3tool [--url URL | --endpoint URL] [--ca FILE] [--insecure]\n"
		"              [--timeout-ms N] [--total-ms N] [--attempts N] [--backoff-ms N]\n"
		"              [--backoff-cap-ms N] [--part-size N] [--threshold N] [--parallel N]\n"
		"              [--connect-to ADDR] [--page-keys N] [-v] COMMAND ARGS...\n"
		"commands: put KEY FILE | put-many PREFIX COUNT | get KEY [FIRST LAST] | head KEY |\n"
		"          delete KEY... | delete-many KEY...|@FILE | list [PREFIX] |\n"
		"          loopcheck COMMAND ARGS...\n");
}

/* What an operation was, for its report line. */
struct job {
	char what[160];
	uint64_t start_ms;
	uint8_t *buf;			/* put: the data, freed at the end */
	int quiet;			/* put-many: report failures only */
};

static struct job *job_new(const char *fmt, const char *a)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		fprintf(stderr, "s3tool: out of memory\n");
		exit(2);
	}
	snprintf(j->what, sizeof(j->what), fmt, a);
	j->start_ms = mono_ms();
	pending++;
	return j;
}

static void job_end(struct job *j)
{
	free(j->buf);
	free(j);
	if (--pending == 0)
		loop_stop(L);
}

/* One report line; returns 0 when r succeeded. */
static int report(struct job *j, const struct s3_result *r, const char *extra)
{
	uint64_t ms = mono_ms() - j->start_ms;

	if (r->err == 0) {
		if (!j->quiet)
			fprintf(stderr, "s3tool: ok %s%s%s attempts=%d ms=%" PRIu64 "\n", j->what,
				extra ? " " : "", extra ? extra : "", r->attempts, ms);
		return 0;
	}
	failures++;
	fprintf(stderr, "s3tool: FAILED %s: %s", j->what, sl_strerror(r->err));
	if (r->status)
		fprintf(stderr, " (HTTP %d%s%s%s%s)", r->status, r->code[0] ? " " : "", r->code,
			r->message[0] ? ": " : "", r->message);
	fprintf(stderr, " attempts=%d ms=%" PRIu64 "\n", r->attempts, ms);
	return -1;
}

static void check_start(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "s3tool: cannot start %s: %s\n", what, sl_strerror(err));
		exit(2);
	}
}

/* ---- commands ---- */

static void on_put(void *arg, struct s3_result *r)
{
	struct job *j = arg;
	char extra[200];

	snprintf(extra, sizeof(extra), "size=%" PRIu64 " parts=%d etag=%s", r->size, r->parts,
		 r->etag);
	report(j, r, extra);
	job_end(j);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 20, n = 0;
	uint8_t *b;

	if (fd == -1) {
		fprintf(stderr, "s3tool: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	b = malloc(cap);
	for (;;) {
		ssize_t got;

		if (!b) {
			fprintf(stderr, "s3tool: out of memory\n");
			exit(2);
		}
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap);
			continue;
		}
		got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "s3tool: %s: %s\n", path, strerror(errno));
			exit(2);
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (fd != 0)
		close(fd);
	*len = n;
	return b;
}

static void cmd_put(const char *key, const char *path)
{
	struct job *j = job_new("put %s", key);
	size_t len;

	j->buf = read_file(path, &len);
	check_start(s3_put(S3, key, j->buf, len, on_put, j, NULL), "put");
}

/* put-many: COUNT objects, at most 16 at a time. */
static const char *pm_prefix;
static int pm_count, pm_next;

static void pm_more(void);

static void on_pm(void *arg, struct s3_result *r)
{
	struct job *j = arg;

	report(j, r, NULL);
	job_end(j);
	pm_more();
}

static void pm_more(void)
{
	while (pm_next < pm_count && pending < 16) {
		char key[256];
		struct job *j;

		snprintf(key, sizeof(key), "%s%05d", pm_prefix, pm_next++);
		j = job_new("put %s", key);
		j->quiet = 1;
		j->buf = (uint8_t *)strdup(key);
		check_start(s3_put(S3, key, j->buf, strlen(key), on_pm, j, NULL), "put");
	}
}

static void cmd_put_many(const char *prefix, const char *count)
{
	pm_prefix = prefix;
	pm_count = atoi(count);
	pm_more();
}

/*
 * What get fetched, written to stdout after the loop has stopped: a write
 * to a slow pipe inside the callback would stall the loop that loopcheck
 * watches, and blame the client for it.
 */
static uint8_t *out_buf;
static size_t out_len;

static void on_get(void *arg, struct s3_result *r)
{
	struct job *j = arg;
	char extra[64];

	snprintf(extra, sizeof(extra), "size=%zu", r->body_len);
	if (report(j, r, extra) == 0 && r->body_len) {
		if (out_buf) {
			fprintf(stderr, "s3tool: one get at a time\n");
			failures++;
		} else {
			out_buf = s3_result_take_body(r, &out_len);
		}
	}
	job_end(j);
}

static void write_out(void)
{
	size_t off = 0;

	while (off < out_len) {
		ssize_t w = write(1, out_buf + off, out_len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "s3tool: writing stdout: %s\n", strerror(errno));
			failures++;
			break;
		}
		off += (size_t)w;
	}
	free(out_buf);
	out_buf = NULL;
}

static void cmd_get(const char *key, const char *first, const char *last)
{
	struct job *j = job_new("get %s", key);
	struct s3_range rg;

	if (first) {
		rg.first = strtoull(first, NULL, 10);
		rg.last = strtoull(last, NULL, 10);
	}
	check_start(s3_get(S3, key, first ? &rg : NULL, on_get, j, NULL), "get");
}

static void on_head(void *arg, struct s3_result *r)
{
	struct job *j = arg;

	if (report(j, r, NULL) == 0)
		printf("size=%" PRIu64 " etag=%s\n", r->size, r->etag);
	job_end(j);
}

static void on_simple(void *arg, struct s3_result *r)
{
	struct job *j = arg;

	report(j, r, NULL);
	job_end(j);
}

static void on_delete_many(void *arg, struct s3_result *r)
{
	struct job *j = arg;
	char extra[64];
	size_t i;

	snprintf(extra, sizeof(extra), "deleted=%zu errors=%zu", r->ndeleted, r->nkey_errors);
	report(j, r, extra);
	for (i = 0; i < r->nkey_errors; i++) {
		printf("error %s %s %s\n", r->key_errors[i].key, r->key_errors[i].code,
		       r->key_errors[i].message);
		failures++;
	}
	job_end(j);
}

static void cmd_delete_many(int argc, char **argv)
{
	char **keys = NULL;
	size_t n = 0, cap = 0;
	struct job *j;
	int i;

	for (i = 0; i < argc; i++) {
		if (argv[i][0] == '@') {
			size_t len, off = 0;
			char *text = (char *)read_file(argv[i] + 1, &len);

			while (off < len) {
				size_t e = off;

				while (e < len && text[e] != '\n')
					e++;
				if (e > off) {
					if (n == cap)
						keys = realloc(keys, (cap = cap ? cap * 2 : 1024) * sizeof(*keys));
					keys[n++] = strndup(text + off, e - off);
				}
				off = e + 1;
			}
			free(text);
		} else {
			if (n == cap)
				keys = realloc(keys, (cap = cap ? cap * 2 : 1024) * sizeof(*keys));
			keys[n++] = strdup(argv[i]);
		}
	}
	if (n == 0) {
		fprintf(stderr, "s3tool: delete-many: no keys\n");
		exit(2);
	}
	j = job_new("delete-many %s", n == 1 ? keys[0] : "(keys)");
	check_start(s3_delete_many(S3, (const char *const *)keys, n, on_delete_many, j, NULL),
		    "delete-many");
	for (size_t k = 0; k < n; k++)
		free(keys[k]);
	free(keys);
}

static uint32_t page_keys;

static void on_list(void *arg, struct s3_result *r)
{
	struct job *j = arg;
	char extra[64];
	size_t i;

	snprintf(extra, sizeof(extra), "objects=%zu pages=%d", r->nobjects, r->pages);
	if (report(j, r, extra) == 0) {
		for (i = 0; i < r->nobjects; i++)
			printf("%s %" PRIu64 "\n", r->objects[i].key, r->objects[i].size);
		printf("# objects=%zu pages=%d\n", r->nobjects, r->pages);
	}
	job_end(j);
}

static void cmd_list(const char *prefix)
{
	struct job *j = job_new("list %s", prefix ? prefix : "");
	struct s3_list_args a;

	memset(&a, 0, sizeof(a));
	a.prefix = prefix;
	a.page_keys = page_keys;
	check_start(s3_list(S3, &a, on_list, j, NULL), "list");
}

/* ---- loopcheck: a 10 ms ticker measuring how late it runs ---- */

static struct loop_timer tick;
static uint64_t last_tick, max_gap, ticks;

static void on_tick(struct loop *l, void *arg)
{
	uint64_t now = mono_ms();

	if (last_tick && now - last_tick > max_gap)
		max_gap = now - last_tick;
	last_tick = now;
	ticks++;
	loop_timer_set(l, &tick, 10);
}

static int run_command(int argc, char **argv)
{
	const char *c = argv[0];

	cmd_name = c;
	if (strcmp(c, "put") == 0 && argc == 3)
		cmd_put(argv[1], argv[2]);
	else if (strcmp(c, "put-many") == 0 && argc == 3)
		cmd_put_many(argv[1], argv[2]);
	else if (strcmp(c, "get") == 0 && (argc == 2 || argc == 4))
		cmd_get(argv[1], argc == 4 ? argv[2] : NULL, argc == 4 ? argv[3] : NULL);
	else if (strcmp(c, "head") == 0 && argc == 2)
		check_start(s3_head(S3, argv[1], on_head, job_new("head %s", argv[1]), NULL), "head");
	else if (strcmp(c, "delete") == 0 && argc >= 2)
		for (int i = 1; i < argc; i++)
			check_start(s3_delete(S3, argv[i], on_simple, job_new("delete %s", argv[i]),
					      NULL), "delete");
	else if (strcmp(c, "delete-many") == 0 && argc >= 2)
		cmd_delete_many(argc - 1, argv + 1);
	else if (strcmp(c, "list") == 0 && argc <= 2)
		cmd_list(argc == 2 ? argv[1] : NULL);
	else
		return -1;
	return 0;
}

/* Descriptors open now, beyond stdin, stdout and stderr (connections left behind). */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && atoi(e->d_name) > 2 && atoi(e->d_name) != dirfd(d))
			n++;
	closedir(d);
	return n;
}

/* ---- main ---- */

static char *url_encode(const char *s)
{
	char *o = malloc(strlen(s) * 3 + 1), *p = o;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c))
			*p++ = (char)c;
		else
			p += sprintf(p, "%%%02X", c);
	}
	*p = '\0';
	return o;
}

int main(int argc, char **argv)
{
	struct s3_options o;
	struct resolver *res = NULL;
	struct resolve_config rc;
	char urlbuf[1024], errbuf[256];
	const char *url = getenv("S3_OBJECTS_URL"), *endpoint = NULL;
	int loopcheck = 0, i, rc_run, fds_before = open_fds(), fds_after;
	struct s3url u;

	memset(&o, 0, sizeof(o));
	o.ca_file = getenv("S3_CA_FILE");
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-v") == 0) {
			log_set_level(LOG_DEBUG);
			continue;
		}
		if (strcmp(a, "--insecure") == 0) {
			o.insecure = 1;
			continue;
		}
		if (!v) {
			usage();
			return 2;
		}
		i++;
		if (strcmp(a, "--url") == 0)
			url = v;
		else if (strcmp(a, "--endpoint") == 0)
			endpoint = v;
		else if (strcmp(a, "--ca") == 0)
			o.ca_file = v;
		else if (strcmp(a, "--timeout-ms") == 0)
			o.request_timeout_ms = strtoull(v, NULL, 10);
		else if (strcmp(a, "--total-ms") == 0)
			o.max_total_ms = strtoull(v, NULL, 10);
		else if (strcmp(a, "--attempts") == 0)
			o.max_attempts = atoi(v);
		else if (strcmp(a, "--backoff-ms") == 0)
			o.backoff_base_ms = strtoull(v, NULL, 10);
		else if (strcmp(a, "--backoff-cap-ms") == 0)
			o.backoff_cap_ms = strtoull(v, NULL, 10);
		else if (strcmp(a, "--part-size") == 0)
			o.part_size = strtoull(v, NULL, 10);
		else if (strcmp(a, "--threshold") == 0)
			o.multipart_threshold = strtoull(v, NULL, 10);
		else if (strcmp(a, "--parallel") == 0)
			o.parts_in_flight = atoi(v);
		else if (strcmp(a, "--page-keys") == 0)
			page_keys = (uint32_t)atoi(v);
		else if (strcmp(a, "--connect-to") == 0) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&connect_to;

			if (inet_pton(AF_INET, v, &sin->sin_addr) != 1) {
				fprintf(stderr, "s3tool: --connect-to wants an IPv4 address\n");
				return 2;
			}
			sin->sin_family = AF_INET;
			connect_to_len = sizeof(*sin);
		} else {
			usage();
			return 2;
		}
	}
	if (i < argc && strcmp(argv[i], "loopcheck") == 0) {
		loopcheck = 1;
		i++;
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	if (endpoint) {
		char *e = url_encode(endpoint);

		snprintf(urlbuf, sizeof(urlbuf), "s3://%s?region=%s&endpoint=%s&path_style=true",
			 getenv("S3_BUCKET") ? getenv("S3_BUCKET") : "sluice-test",
			 getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1", e);
		free(e);
		url = urlbuf;
	}
	if (!url || !url[0]) {
		fprintf(stderr, "s3tool: no bucket: set S3_OBJECTS_URL or pass --url\n");
		return 2;
	}
	if (s3url_parse(url, &u, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "s3tool: %s\n", errbuf);
		return 2;
	}
	/* The provider reads AWS's variables; the test environment names them S3_*. */
	static const char *const vars[][2] = {
		{ "AWS_ACCESS_KEY_ID", "S3_ACCESS_KEY" },
		{ "AWS_SECRET_ACCESS_KEY", "S3_SECRET_KEY" },
		{ "AWS_SESSION_TOKEN", "S3_SESSION_TOKEN" },
	};
	for (size_t k = 0; k < sizeof(vars) / sizeof(vars[0]); k++)
		if (!getenv(vars[k][0]) && getenv(vars[k][1]) && getenv(vars[k][1])[0])
			setenv(vars[k][0], getenv(vars[k][1]), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 0);
	if (!getenv("AWS_ACCESS_KEY_ID") || !getenv("AWS_SECRET_ACCESS_KEY")) {
		fprintf(stderr, "s3tool: set S3_ACCESS_KEY and S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and "
			"AWS_SECRET_ACCESS_KEY)\n");
		return 2;
	}
	struct config cfg;
	if (config_init(&cfg) != 0)
		return 2;

	L = loop_new();
	if (!L) {
		fprintf(stderr, "s3tool: cannot make a loop\n");
		return 2;
	}
	if (connect_to_len) {
		memset(&rc, 0, sizeof(rc));
		rc.lookup = lookup_fixed;
		res = resolver_new(L, &rc);
		o.resolver = res;
	}
	struct httpc_config hc = { .resolver = res };
	struct httpc *http = httpc_new(L, &hc);
	struct s3cred *cred = http ? s3cred_new(L, &cfg, http) : NULL;
	rc_run = cred ? s3_new(L, &u, cred, &o, &S3) : SL_E_NOMEM;
	if (rc_run != 0) {
		fprintf(stderr, "s3tool: cannot set up the client: %s\n", sl_strerror(rc_run));
		s3cred_free(cred);
		if (http)
			httpc_free(http);
		resolver_free(res);
		loop_destroy(L);
		config_free(&cfg);
		return 2;
	}
	if (run_command(argc - i, argv + i) != 0) {
		usage();
		s3_free(S3);
		s3cred_free(cred);
		httpc_free(http);
		resolver_free(res);
		config_free(&cfg);
		loop_destroy(L);
		return 2;
	}
	if (loopcheck) {
		loop_timer_init(&tick, on_tick, NULL);
		loop_timer_set(L, &tick, 10);
		last_tick = mono_ms();
	}
	if (pending > 0 && loop_run(L) != 0)
		failures++;
	if (loopcheck) {
		/* The gap to the end counts too: a stall just before it finished. */
		uint64_t now = mono_ms();

		if (now - last_tick > max_gap)
			max_gap = now - last_tick;
		loop_timer_cancel(L, &tick);
		fprintf(stderr, "s3tool: loopcheck max_gap_ms=%" PRIu64 " ticks=%" PRIu64 "\n",
			max_gap, ticks);
	}
	write_out();
	s3_free(S3);
	s3cred_free(cred);
	httpc_free(http);
	resolver_free(res);
	config_free(&cfg);
	loop_destroy(L);
	fds_after = open_fds();
	if (fds_after > fds_before) {
		fprintf(stderr, "s3tool: FAILED leak check: %d descriptors open at exit, %d at start\n",
			fds_after, fds_before);
		failures++;
	}
	return failures ? 1 : 0;
}
