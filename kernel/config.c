/*
 * config.c - the broker's configuration (see config.h).
 *
 * Owns: the table of every key (cfg_keys below) and the parsing of
 * properties text, --set arguments and listener strings.
 *
 * The table is the single place a key exists: its name, type, where it lives
 * in struct config, its default (as text, parsed by the same code as a file,
 * so a default can never be a value the parser would refuse), its bounds and
 * an optional extra check.  Adding a key is adding a row and a field.
 *
 * Invariants:
 *   1. After config_init() succeeds every string field is a heap string
 *      owned by the struct (possibly ""), never NULL, until config_free().
 *   2. Text is never assumed NUL-terminated: lines and values are cut with
 *      the struct sl_rd cursor, and every scan is bounded by the slice length.
 *   3. A value is parsed completely before the field is touched, so a bad
 *      value leaves the previous one in place.
 *   4. Error messages quote at most CFG_QUOTE_MAX bytes of input, with
 *      unprintable bytes shown as '?', so hostile input cannot flood or
 *      corrupt the console.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buf.h"
#include "config.h"
#include "log.h"
/* The one check that needs a layer above: the URL's grammar lives with the S3 client. */

#define CFG_QUOTE_MAX 64
/* A properties file is a few kilobytes; anything huge is a mistake. */
#define CFG_FILE_MAX (1024 * 1024)

enum cfg_type { CFG_I32, CFG_I64, CFG_BOOL, CFG_STR };

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def;
	int64_t min, max;	/* integers only */
	/* Extra check for strings; returns a description of what was expected or NULL. */
	const char *(*check)(const char *v);
	int secret;		/* masked by config_dump */
};

static const char *check_log_level(const char *v)
{
	enum log_level lvl;

	return log_parse_level(v, &lvl) == 0 ? NULL : "one of debug, info, warn, error";
}

/* The WAL's write path; storage/wal.c's wal_set_io() takes the same words. */
static const char *check_wal_io(const char *v)
{
	return strcmp(v, "auto") == 0 || strcmp(v, "uring") == 0 || strcmp(v, "pwrite") == 0 ?
		NULL : "one of auto, uring, pwrite";
}

/* Data blocks of objects; storage/object.h's OBJ_COMP_* take the same words. */
static const char *check_objects_compression(const char *v)
{
	return strcmp(v, "zstd") == 0 || strcmp(v, "none") == 0 ? NULL : "one of zstd, none";
}

#define OFF(f) offsetof(struct config, f)
#define I32MAX INT32_MAX
#define I64MAX INT64_MAX

static const struct cfg_key cfg_keys[] = {
	{ "node.id", CFG_I32, OFF(node_id), "0", 0, I32MAX, NULL, 0 },
	{ "listeners", CFG_STR, OFF(listeners), "PLAINTEXT://127.0.0.1:9092", 0, 0, NULL, 0 },
	{ "advertised.listeners", CFG_STR, OFF(advertised_listeners), "", 0, 0, NULL, 0 },
	{ "num.partitions", CFG_I32, OFF(num_partitions), "1", 1, 1000000, NULL, 0 },
	{ "auto.create.topics.enable", CFG_BOOL, OFF(auto_create_topics), "true", 0, 0, NULL, 0 },
	/* -1 means unlimited, as in Kafka */
	{ "log.retention.ms", CFG_I64, OFF(log_retention_ms), "604800000", -1, I64MAX, NULL, 0 },
	{ "log.retention.bytes", CFG_I64, OFF(log_retention_bytes), "-1", -1, I64MAX, NULL, 0 },
	{ "log.retention.check.interval.ms", CFG_I64, OFF(log_retention_check_ms), "300000", 1, I64MAX,
	  NULL, 0 },
	{ "message.max.bytes", CFG_I32, OFF(message_max_bytes), "1048588", 0, I32MAX, NULL, 0 },
	{ "socket.request.max.bytes", CFG_I32, OFF(socket_request_max_bytes), "104857600", 1, I32MAX, NULL, 0 },
	{ "max.connections", CFG_I32, OFF(max_connections), "1000", 1, I32MAX, NULL, 0 },
	{ "request.timeout.ms", CFG_I32, OFF(request_timeout_ms), "30000", 0, I32MAX, NULL, 0 },
	{ "group.initial.rebalance.delay.ms", CFG_I32, OFF(group_initial_delay_ms), "3000", 0, I32MAX, NULL, 0 },
	{ "group.min.session.timeout.ms", CFG_I32, OFF(group_min_session_ms), "6000", 0, I32MAX, NULL, 0 },
	{ "group.max.session.timeout.ms", CFG_I32, OFF(group_max_session_ms), "1800000", 0, I32MAX, NULL, 0 },
	{ "group.max.size", CFG_I32, OFF(group_max_size), "2147483647", 1, I32MAX, NULL, 0 },
	{ "offsets.retention.minutes", CFG_I32, OFF(offsets_retention_minutes), "10080", 1, I32MAX, NULL, 0 },
	{ "offsets.retention.check.interval.ms", CFG_I64, OFF(offsets_retention_check_ms), "600000", 1, I64MAX, NULL, 0 },
	{ "offset.metadata.max.bytes", CFG_I32, OFF(offset_metadata_max_bytes), "4096", 0, I32MAX, NULL, 0 },
	{ "producer.id.expiration.ms", CFG_I64, OFF(producer_id_expiration_ms), "86400000", 1, I64MAX, NULL, 0 },
	{ "producer.id.expiration.check.interval.ms", CFG_I64, OFF(producer_id_expiration_check_ms), "600000", 1, I64MAX, NULL, 0 },
	{ "default.replication.factor", CFG_I32, OFF(default_replication_factor), "1", 1, INT16_MAX, NULL, 0 },
	{ "sluice.log.level", CFG_STR, OFF(log_level), "info", 0, 0, check_log_level, 0 },
	{ "sluice.cluster.id", CFG_STR, OFF(cluster_id), "sluice-local", 0, 0, NULL, 0 },
	{ "sluice.connection.max.unsent.bytes", CFG_I64, OFF(conn_max_unsent_bytes), "67108864", 1, I64MAX, NULL, 0 },
	{ "sluice.connection.max.inflight.requests", CFG_I32, OFF(conn_max_inflight), "1000", 1, I32MAX, NULL, 0 },
	{ "sluice.wal.device", CFG_STR, OFF(wal_device), "", 0, 0, NULL, 0 },
	{ "sluice.wal.volume", CFG_STR, OFF(wal_volume), "", 0, 0, NULL, 0 },
	{ "sluice.wal.capacity.bytes", CFG_I64, OFF(wal_capacity_bytes), "1073741824", 1, I64MAX, NULL, 0 },
	{ "sluice.wal.io", CFG_STR, OFF(wal_io), "auto", 0, 0, check_wal_io, 0 },
	{ "sluice.wal.format.if.blank", CFG_BOOL, OFF(wal_format_if_blank), "false", 0, 0, NULL, 0 },
	{ "sluice.objects.url", CFG_STR, OFF(objects_url), "", 0, 0, NULL, 0 },
	{ "sluice.objects.compression", CFG_STR, OFF(objects_compression), "zstd", 0, 0,
	  check_objects_compression, 0 },
	{ "sluice.upload.bytes", CFG_I64, OFF(upload_bytes), "16777216", 1, I64MAX, NULL, 0 },
	{ "sluice.upload.interval.ms", CFG_I64, OFF(upload_interval_ms), "1000", 1, I64MAX, NULL, 0 },
	{ "sluice.cache.bytes", CFG_I64, OFF(cache_bytes), "268435456", 0, I64MAX, NULL, 0 },
	{ "sluice.tail.bytes", CFG_I64, OFF(tail_bytes), "268435456", 0, I64MAX, NULL, 0 },
	{ "sluice.objects.gc.grace.ms", CFG_I64, OFF(gc_grace_ms), "600000", 1, I64MAX, NULL, 0 },
	{ "sluice.objects.gc.interval.ms", CFG_I64, OFF(gc_interval_ms), "60000", 1, I64MAX, NULL, 0 },
	{ "sluice.compaction.interval.ms", CFG_I64, OFF(compaction_interval_ms), "30000", 0, I64MAX,
	  NULL, 0 },
	{ "sluice.compaction.bytes.per.sec", CFG_I64, OFF(compaction_rate), "33554432", 1, I64MAX,
	  NULL, 0 },
	{ "sluice.s3.access.key", CFG_STR, OFF(s3_access_key), "", 0, 0, NULL, 0 },
	{ "sluice.s3.secret.key", CFG_STR, OFF(s3_secret_key), "", 0, 0, NULL, 1 },
	{ "sluice.s3.ca.file", CFG_STR, OFF(s3_ca_file), "", 0, 0, NULL, 0 },
	{ "sluice.s3.tls.insecure", CFG_BOOL, OFF(s3_tls_insecure), "false", 0, 0, NULL, 0 },
};

#define NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

/* ---- error messages ---- */

/* Copy at most CFG_QUOTE_MAX bytes of s into out, making them printable. */
static void quote(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i, k = 0, lim = n < CFG_QUOTE_MAX ? n : CFG_QUOTE_MAX;

	if (!outlen)
		return;
	for (i = 0; i < lim && k + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (n > lim && k + 4 < outlen) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

/* "SOURCE:LINE: message", or "SOURCE: message" when line is 0. */
static int cfg_err(char *errbuf, size_t errlen, const char *source, unsigned line,
		   int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int cfg_err(char *errbuf, size_t errlen, const char *source, unsigned line,
		   int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errbuf || !errlen)
		return code;
	if (!source)
		source = "config";
	if (line)
		n = snprintf(errbuf, errlen, "%s:%u: ", source, line);
	else
		n = snprintf(errbuf, errlen, "%s: ", source);
	if (n < 0)
		n = 0;
	if ((size_t)n >= errlen)
		return code;
	va_start(ap, fmt);
	vsnprintf(errbuf + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- values ---- */

static int is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim a slice in place: *p and *n are adjusted to drop surrounding blanks. */
static void trim(const char **p, size_t *n)
{
	while (*n && is_space((uint8_t)(*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n && is_space((uint8_t)(*p)[*n - 1]))
		(*n)--;
}

/*
 * Decimal with an optional '-', nothing else.  The magnitude is accumulated
 * as unsigned with a check before each step, so no input can overflow.
 */
static int parse_int(const char *s, size_t n, int64_t *out)
{
	struct sl_rd r;
	uint64_t mag = 0, lim;
	int neg = 0, digits = 0;
	uint8_t c;

	rd_init(&r, s, n);
	if (rd_left(&r) && s[0] == '-') {
		neg = 1;
		if (rd_skip(&r, 1))
			return SL_E_INVALID;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	while (rd_u8(&r, &c) == 0) {
		if (c < '0' || c > '9')
			return SL_E_INVALID;
		if (mag > (lim - (uint64_t)(c - '0')) / 10)
			return SL_E_TOOBIG;
		mag = mag * 10 + (uint64_t)(c - '0');
		digits++;
	}
	if (!digits)
		return SL_E_INVALID;
	if (neg)
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	else
		*out = (int64_t)mag;
	return 0;
}

static int parse_bool(const char *s, size_t n, int *out)
{
	/* Kafka's own parser ignores case; so do we, but only these two words. */
	if (n == 4 && strncasecmp(s, "true", 4) == 0) {
		*out = 1;
		return 0;
	}
	if (n == 5 && strncasecmp(s, "false", 5) == 0) {
		*out = 0;
		return 0;
	}
	return SL_E_INVALID;
}

static const struct cfg_key *find_key(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strlen(cfg_keys[i].name) == n && memcmp(cfg_keys[i].name, name, n) == 0)
			return &cfg_keys[i];
	return NULL;
}

/* Store value (v, n) into the field of k; errors name source and line. */
static int set_value(struct config *cfg, const struct cfg_key *k, const char *v, size_t n,
		     const char *source, unsigned line, char *errbuf, size_t errlen)
{
	char *field = (char *)cfg + k->off;
	char q[CFG_QUOTE_MAX + 8];
	int64_t iv;
	int bv, err;
	size_t i;

	quote(q, sizeof(q), v, n);
	switch (k->type) {
	case CFG_I32:
	case CFG_I64:
		err = parse_int(v, n, &iv);
		if (err || iv < k->min || iv > k->max)
			return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG,
				       "bad value '%s' for %s: expected an integer between %" PRId64
				       " and %" PRId64, q, k->name, k->min, k->max);
		if (k->type == CFG_I32)
			*(int32_t *)(void *)field = (int32_t)iv;
		else
			*(int64_t *)(void *)field = iv;
		return 0;
	case CFG_BOOL:
		if (parse_bool(v, n, &bv))
			return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG,
				       "bad value '%s' for %s: expected true or false", q, k->name);
		*(int *)(void *)field = bv;
		return 0;
	case CFG_STR: {
		char **sp = (char **)(void *)field;
		const char *why;
		char *s;

		/* Paths, URLs and keys never hold control bytes; a NUL would cut the value short. */
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)v[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG,
					       "bad value '%s' for %s: contains a control character",
					       q, k->name);
		}
		s = strndup(v, n);
		if (!s)
			return cfg_err(errbuf, errlen, source, line, SL_E_NOMEM, "out of memory");
		if (k->check && (why = k->check(s)) != NULL) {
			free(s);
			return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG,
				       "bad value '%s' for %s: expected %s", q, k->name, why);
		}
		free(*sp);
		*sp = s;
		return 0;
	}
	}
	return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG, "internal: bad key type");
}

/*
 * One "key=value" or "key: value" (Java properties allow both); the first
 * '=' or ':' separates, so a value may itself contain either.
 */
static int apply_kv(struct config *cfg, const char *s, size_t n, const char *source,
		    unsigned line, char *errbuf, size_t errlen)
{
	const struct cfg_key *k;
	const char *key, *val;
	size_t i, klen, vlen;
	char q[CFG_QUOTE_MAX + 8];

	for (i = 0; i < n; i++)
		if (s[i] == '=' || s[i] == ':')
			break;
	if (i == n) {
		quote(q, sizeof(q), s, n);
		return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG,
			       "expected key=value, got '%s'", q);
	}
	key = s;
	klen = i;
	val = s + i + 1;
	vlen = n - i - 1;
	trim(&key, &klen);
	trim(&val, &vlen);
	if (!klen)
		return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG, "missing key before '%c'", s[i]);
	k = find_key(key, klen);
	if (!k) {
		quote(q, sizeof(q), key, klen);
		return cfg_err(errbuf, errlen, source, line, SL_E_CONFIG, "unknown key '%s'", q);
	}
	return set_value(cfg, k, val, vlen, source, line, errbuf, errlen);
}

/* ---- public ---- */

int config_init(struct config *cfg)
{
	size_t i;
	int err;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		err = set_value(cfg, k, k->def, strlen(k->def), "default", 0, NULL, 0);
		if (err)
			goto fail;
	}
	return 0;
fail:
	config_free(cfg);
	return err;
}

void config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (cfg_keys[i].type == CFG_STR) {
			char **sp = (char **)(void *)((char *)cfg + cfg_keys[i].off);

			free(*sp);
			*sp = NULL;
		}
	}
}

int config_set(struct config *cfg, const char *kv, const char *source, char *errbuf, size_t errlen)
{
	const char *s = kv ? kv : "";
	size_t n = strlen(s);

	return apply_kv(cfg, s, n, source, 0, errbuf, errlen);
}

int config_parse(struct config *cfg, const char *text, size_t len, const char *source,
		 char *errbuf, size_t errlen)
{
	struct sl_rd r;
	unsigned line = 0;
	int err;

	rd_init(&r, text, len);
	while (rd_left(&r)) {
		const uint8_t *start = r.p + r.off;
		size_t n = 0, left = rd_left(&r);
		const char *p;
		const uint8_t *lp;

		while (n < left && start[n] != '\n')
			n++;
		if (rd_bytes(&r, n, &lp))
			return SL_E_SHORT;	/* cannot happen: n <= left */
		if (rd_left(&r) && rd_skip(&r, 1))	/* the '\n' */
			return SL_E_SHORT;
		line++;
		p = (const char *)lp;
		trim(&p, &n);
		if (!n || p[0] == '#' || p[0] == '!')
			continue;
		err = apply_kv(cfg, p, n, source, line, errbuf, errlen);
		if (err)
			return err;
	}
	return 0;
}

int config_load_file(struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t got;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return cfg_err(errbuf, errlen, path, 0, SL_E_CONFIG, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) == -1) {
		err = cfg_err(errbuf, errlen, path, 0, SL_E_CONFIG, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (st.st_size > CFG_FILE_MAX) {
		err = cfg_err(errbuf, errlen, path, 0, SL_E_CONFIG,
			      "larger than %d bytes", CFG_FILE_MAX);
		goto fail;
	}
	/* Read to EOF rather than trusting st_size: /proc and pipes report 0. */
	text = malloc(CFG_FILE_MAX);
	if (!text) {
		err = cfg_err(errbuf, errlen, path, 0, SL_E_NOMEM, "out of memory");
		goto fail;
	}
	for (;;) {
		got = read(fd, text + len, CFG_FILE_MAX - len);
		if (got == -1) {
			if (errno == EINTR)
				continue;
			err = cfg_err(errbuf, errlen, path, 0, SL_E_CONFIG, "cannot read: %s",
				      strerror(errno));
			goto fail;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len == CFG_FILE_MAX) {
			err = cfg_err(errbuf, errlen, path, 0, SL_E_CONFIG,
				      "larger than %d bytes", CFG_FILE_MAX);
			goto fail;
		}
	}
	err = config_parse(cfg, text, len, path, errbuf, errlen);
fail:
	free(text);
	close(fd);
	return err;
}

/* Letters, digits, '-', '_' in dot-separated labels of 1..63 bytes. */
static int valid_hostname(const char *h, size_t n)
{
	size_t i, label = 0;

	if (n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && h[n - 1] != '-';
}

static int all_digits_and_dots(const char *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
			return 0;
	return 1;
}

int config_parse_listener(const char *s, struct listener_addr *out)
{
	static const char scheme[] = "PLAINTEXT";
	struct sl_rd r;
	const uint8_t *p;
	const char *host;
	size_t n, i, hlen, plen;
	int64_t port;
	int bracket = 0;

	if (!s || !out)
		return SL_E_INVALID;
	memset(out, 0, sizeof(*out));
	n = strlen(s);
	/* Only the first of a comma-separated list is used. */
	for (i = 0; i < n && s[i] != ','; i++)
		;
	rd_init(&r, s, i);

	if (rd_bytes(&r, sizeof(scheme) - 1, &p) ||
	    strncasecmp((const char *)p, scheme, sizeof(scheme) - 1) != 0)
		return SL_E_INVALID;
	memcpy(out->name, scheme, sizeof(scheme));
	if (rd_bytes(&r, 3, &p) || memcmp(p, "://", 3) != 0)
		return SL_E_INVALID;

	/* host runs to the last ':' (an IPv6 literal is bracketed and has its own) */
	host = (const char *)r.p + r.off;
	n = rd_left(&r);
	if (n && host[0] == '[') {
		for (i = 1; i < n && host[i] != ']'; i++)
			;
		if (i == n || i + 1 >= n || host[i + 1] != ':')
			return SL_E_INVALID;
		bracket = 1;
		hlen = i + 1;
	} else {
		for (hlen = n; hlen > 0 && host[hlen - 1] != ':'; hlen--)
			;
		if (hlen == 0)
			return SL_E_INVALID;	/* no port */
		hlen--;
	}
	if (rd_skip(&r, hlen + 1))
		return SL_E_INVALID;
	plen = rd_left(&r);
	if (!plen || rd_bytes(&r, plen, &p))
		return SL_E_INVALID;
	for (i = 0; i < plen; i++)
		if (p[i] < '0' || p[i] > '9')
			return SL_E_INVALID;
	if (parse_int((const char *)p, plen, &port) || port < 1 || port > 65535)
		return SL_E_INVALID;

	if (bracket) {
		char v6[INET6_ADDRSTRLEN];
		unsigned char a[16];

		host++;
		hlen -= 2;
		if (hlen == 0 || hlen >= sizeof(v6))
			return SL_E_INVALID;
		memcpy(v6, host, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, a) != 1)
			return SL_E_INVALID;
	} else if (hlen) {
		if (!valid_hostname(host, hlen))
			return SL_E_INVALID;
		if (all_digits_and_dots(host, hlen)) {
			char v4[INET_ADDRSTRLEN];
			unsigned char a[4];

			if (hlen >= sizeof(v4))
				return SL_E_INVALID;
			memcpy(v4, host, hlen);
			v4[hlen] = '\0';
			if (inet_pton(AF_INET, v4, a) != 1)
				return SL_E_INVALID;
		}
	}
	if (hlen >= sizeof(out->host))
		return SL_E_INVALID;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	out->port = (uint16_t)port;
	return 0;
}

int (*config_objects_url_check)(const char *url, char *why, size_t len);

int config_validate(const struct config *cfg, char *errbuf, size_t errlen)
{
	struct listener_addr la;
	char q[CFG_QUOTE_MAX + 8];

	if (config_parse_listener(cfg->listeners, &la)) {
		quote(q, sizeof(q), cfg->listeners, strlen(cfg->listeners));
		return cfg_err(errbuf, errlen, "listeners", 0, SL_E_CONFIG,
			       "bad value '%s': expected PLAINTEXT://host:port with port 1-65535", q);
	}
	if (cfg->advertised_listeners[0]) {
		if (config_parse_listener(cfg->advertised_listeners, &la)) {
			quote(q, sizeof(q), cfg->advertised_listeners,
			      strlen(cfg->advertised_listeners));
			return cfg_err(errbuf, errlen, "advertised.listeners", 0, SL_E_CONFIG,
				       "bad value '%s': expected PLAINTEXT://host:port with port 1-65535", q);
		}
		/* Clients cannot connect to the wildcard address; Kafka refuses it too. */
		if (strcmp(la.host, "0.0.0.0") == 0 || strcmp(la.host, "::") == 0)
			return cfg_err(errbuf, errlen, "advertised.listeners", 0, SL_E_CONFIG,
				       "host %s is not an address clients can reach", la.host);
	}
	if (cfg->group_min_session_ms > cfg->group_max_session_ms)
		return cfg_err(errbuf, errlen, "group.min.session.timeout.ms", 0, SL_E_CONFIG,
			       "%d is above group.max.session.timeout.ms (%d)",
			       cfg->group_min_session_ms, cfg->group_max_session_ms);
	/* A key pair, or neither: half a pair would silently fall back to other credentials. */
	if (!cfg->s3_access_key[0] != !cfg->s3_secret_key[0])
		return cfg_err(errbuf, errlen,
			       cfg->s3_access_key[0] ? "sluice.s3.access.key" : "sluice.s3.secret.key",
			       0, SL_E_CONFIG, "set without %s: set both or neither",
			       cfg->s3_access_key[0] ? "sluice.s3.secret.key" : "sluice.s3.access.key");
	/* The URL's grammar belongs to the object store; main.c lends its check. */
	if (cfg->objects_url[0] && config_objects_url_check) {
		char why[256];

		if (config_objects_url_check(cfg->objects_url, why, sizeof(why)) != 0)
			return cfg_err(errbuf, errlen, "sluice.objects.url", 0, SL_E_CONFIG, "%s", why);
	}
	/* Every start, not only when the TLS context is made: an operator must see it. */
	if (cfg->s3_tls_insecure)
		log_warn("config", "sluice.s3.tls.insecure=true: certificates of S3 servers are not "
			 "checked; anyone on the path can read and change what is stored");
	return 0;
}

void config_dump(const struct config *cfg, void (*line)(const char *s, void *arg), void *arg)
{
	char b[1024];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *field = (const char *)cfg + k->off;

		switch (k->type) {
		case CFG_I32:
			snprintf(b, sizeof(b), "%s=%" PRId32, k->name,
				 *(const int32_t *)(const void *)field);
			break;
		case CFG_I64:
			snprintf(b, sizeof(b), "%s=%" PRId64, k->name,
				 *(const int64_t *)(const void *)field);
			break;
		case CFG_BOOL:
			snprintf(b, sizeof(b), "%s=%s", k->name,
				 *(const int *)(const void *)field ? "true" : "false");
			break;
		case CFG_STR: {
			const char *s = *(char *const *)(const void *)field;

			if (!s)
				s = "";
			if (k->secret && s[0])
				s = "****";
			snprintf(b, sizeof(b), "%s=%s", k->name, s);
			break;
		}
		}
		line(b, arg);
	}
}
