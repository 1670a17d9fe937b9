/*
 * s3url.c - parse sluice.objects.url and build request paths (see s3url.h).
 *
 * Owns: the URL grammar, the choice of host and addressing style, and the
 * mapping from an object key to the path that is sent and signed.
 *
 * The URL is cut with the struct sl_rd cursor: scheme, then the authority
 * (bucket) up to '/', '?' or the end, then the prefix up to '?', then the
 * query.  Each part is checked completely before the next is looked at, so
 * the first problem found is the one reported.
 *
 * Invariant: when s3url_parse() returns 0, every field is NUL-terminated and
 * within its array, host_header is what the signer must sign as Host, and
 * host/port/tls are where to connect; on error *out is zeroed.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "s3url.h"

#define QUOTE_MAX 64

/* Write a message to errbuf; any "%q" argument is quoted, cut and sanitised. */
static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return SL_E_CONFIG;
}

/* A printable, shortened copy of s[0..n) for messages. */
static const char *quote(char *buf, size_t size, const char *s, size_t n)
{
	size_t i, max = size - 4;	/* room for "..." and NUL */

	for (i = 0; i < n && i < max; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n > max) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static int is_lower_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* All digits and dots: an IPv4 address or something that looks like one. */
static int looks_ipv4(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return i > 0;
}

static int check_bucket(const char *b, size_t n, char *errbuf, size_t errlen)
{
	char q[QUOTE_MAX];
	size_t i;

	if (n < 3 || n > S3URL_BUCKET_MAX)
		goto bad;
	for (i = 0; i < n; i++)
		if (!(is_lower_digit(b[i]) || b[i] == '.' || b[i] == '-'))
			goto bad;
	if (!is_lower_digit(b[0]) || !is_lower_digit(b[n - 1]))
		goto bad;
	for (i = 1; i < n; i++)
		if (b[i] == '.' && b[i - 1] == '.')
			goto bad;
	return 0;
bad:
	return fail(errbuf, errlen, "bucket name '%s' is not valid: 3 to 63 of a-z, 0-9, '.' "
		    "and '-', starting and ending with a letter or digit", quote(q, sizeof(q), b, n));
}

static int prefix_char(char c)
{
	return (c >= 'A' && c <= 'Z') || is_lower_digit(c) || (c && strchr("!-_.*'()=", c));
}

/* PREFIX from p[0..n) into out, without leading and trailing '/'. */
static int parse_prefix(const char *p, size_t n, char *out, char *errbuf, size_t errlen)
{
	char q[QUOTE_MAX];
	size_t i, seg;

	while (n && p[0] == '/')
		p++, n--;
	while (n && p[n - 1] == '/')
		n--;
	out[0] = '\0';
	if (n == 0)
		return 0;
	if (n > S3URL_PREFIX_MAX)
		return fail(errbuf, errlen, "prefix '%s' is longer than %d bytes",
			    quote(q, sizeof(q), p, n), S3URL_PREFIX_MAX);
	for (i = 0, seg = 0; i <= n; i++) {
		if (i == n || p[i] == '/') {
			if ((i - seg == 0) || (i - seg == 1 && p[seg] == '.') ||
			    (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.'))
				return fail(errbuf, errlen, "prefix '%s' has an empty, '.' or '..' "
					    "segment", quote(q, sizeof(q), p, n));
			seg = i + 1;
		} else if (!prefix_char(p[i])) {
			return fail(errbuf, errlen, "prefix '%s' may hold only A-Z, a-z, 0-9, "
				    "!-_.*'()= and '/'", quote(q, sizeof(q), p, n));
		}
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode p[0..n) into out (size bytes with the NUL); -1 if bad or long. */
static int pct_decode(const char *p, size_t n, char *out, size_t size)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '%') {
			if (n - i < 3)
				return -1;
			hi = hexval(p[i + 1]);
			lo = hexval(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f || o + 1 >= size)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* Host names: letters, digits, '-' and '.', lower-cased into out. */
static int parse_hostname(const char *h, size_t n, char *out)
{
	size_t i;

	if (n == 0 || n > S3URL_HOST_MAX || h[0] == '.' || h[0] == '-')
		return -1;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!(is_lower_digit(c) || c == '-' || c == '.'))
			return -1;
		out[i] = c;
	}
	out[n] = '\0';
	return 0;
}

/*
 * endpoint=http(s)://HOST[:PORT][/] into u->host, port, tls; *ipliteral set
 * for an IPv6 or IPv4 address (no virtual hosting on those).
 */
static int parse_endpoint(const char *e, struct s3url *u, int *ipliteral, char *errbuf,
			  size_t errlen)
{
	char q[QUOTE_MAX];
	const char *h, *end, *colon = NULL;
	size_t n = strlen(e), i;
	unsigned long port = 0;
	int v6 = 0, show_port;

	if (strncmp(e, "https://", 8) == 0) {
		u->tls = 1;
		h = e + 8;
	} else if (strncmp(e, "http://", 7) == 0) {
		u->tls = 0;
		h = e + 7;
	} else {
		return fail(errbuf, errlen, "endpoint '%s' must start with http:// or https://",
			    quote(q, sizeof(q), e, n));
	}
	end = e + n;
	if (end > h && end[-1] == '/')
		end--;
	if (h[0] == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb || rb - h < 3)
			goto bad;
		for (i = 1; h + i < rb; i++)
			if (hexval(h[i]) < 0 && h[i] != ':' && h[i] != '.')
				goto bad;
		if ((size_t)(rb - h - 1) > S3URL_HOST_MAX - 2)
			goto bad;
		memcpy(u->host, h + 1, (size_t)(rb - h - 1));
		u->host[rb - h - 1] = '\0';
		v6 = 1;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				goto bad;
			colon = rb + 1;
		}
	} else {
		const char *p;

		for (p = h; p < end; p++) {
			if (*p == ':') {
				colon = p;
				break;
			}
		}
		if (parse_hostname(h, (size_t)((colon ? colon : end) - h), u->host) != 0)
			goto bad;
	}
	if (colon) {
		const char *p;

		if (colon + 1 == end || end - colon > 6)
			goto bad;
		for (p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9')
				goto bad;
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (port < 1 || port > 65535)
			goto bad;
		u->port = (uint16_t)port;
	} else {
		u->port = u->tls ? 443 : 80;
	}
	*ipliteral = v6 || looks_ipv4(u->host);
	/* The scheme's default port is left out of Host, as clients do. */
	show_port = u->port != (u->tls ? 443 : 80);
	if (v6 && show_port)
		snprintf(u->host_header, sizeof(u->host_header), "[%s]:%u", u->host, u->port);
	else if (v6)
		snprintf(u->host_header, sizeof(u->host_header), "[%s]", u->host);
	else if (show_port)
		snprintf(u->host_header, sizeof(u->host_header), "%s:%u", u->host, u->port);
	else
		snprintf(u->host_header, sizeof(u->host_header), "%s", u->host);
	return 0;
bad:
	return fail(errbuf, errlen, "endpoint '%s' is not http(s)://HOST[:PORT] (no user, path, "
		    "query or fragment)", quote(q, sizeof(q), e, n));
}

static int parse_file(const char *url, struct s3url *u, char *errbuf, size_t errlen)
{
	char q[QUOTE_MAX];
	const char *p = url + 7;	/* after "file://" */
	size_t n = strlen(p), i;

	if (p[0] != '/')
		return fail(errbuf, errlen, "'%s': a file URL is file:///ABSOLUTE/PATH (no host)",
			    quote(q, sizeof(q), url, strlen(url)));
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '%' || p[i] == '?' ||
		    p[i] == '#')
			return fail(errbuf, errlen, "'%s': a file URL takes the path literally, "
				    "without '%%', '?', '#' or control characters",
				    quote(q, sizeof(q), url, strlen(url)));
	while (n > 1 && p[n - 1] == '/')
		n--;
	if (n > S3URL_PATH_MAX)
		return fail(errbuf, errlen, "file path is longer than %d bytes", S3URL_PATH_MAX);
	u->kind = S3URL_FILE;
	memcpy(u->path, p, n);
	u->path[n] = '\0';
	return 0;
}

/* The value of one query parameter, decoded; a second one is an error. */
static int query_value(const char *name, const char *v, size_t n, char *out, size_t size,
		       int *seen, char *errbuf, size_t errlen)
{
	char q[QUOTE_MAX];

	if (*seen)
		return fail(errbuf, errlen, "'%s' is given twice", name);
	*seen = 1;
	if (n == 0)
		return fail(errbuf, errlen, "'%s' has no value", name);
	if (pct_decode(v, n, out, size) != 0)
		return fail(errbuf, errlen, "value '%s' of '%s' is not valid or too long",
			    quote(q, sizeof(q), v, n), name);
	return 0;
}

static int parse_s3(const char *url, struct s3url *u, char *errbuf, size_t errlen)
{
	char q[QUOTE_MAX], endpoint[S3URL_HOST_MAX + 32], ps[8];
	const char *p = url + 5, *qm, *slash;	/* after "s3://" */
	size_t blen;
	int err, seen_region = 0, seen_ep = 0, seen_ps = 0, ipliteral = 0, ps_set = 0;
	const char *dom;

	qm = strchr(p, '?');
	if (!qm)
		qm = p + strlen(p);
	slash = memchr(p, '/', (size_t)(qm - p));
	blen = (size_t)((slash ? slash : qm) - p);
	if ((err = check_bucket(p, blen, errbuf, errlen)) != 0)
		return err;
	memcpy(u->bucket, p, blen);
	u->bucket[blen] = '\0';
	if (slash && (err = parse_prefix(slash, (size_t)(qm - slash), u->prefix, errbuf, errlen)))
		return err;

	/* The query: name=value pairs joined by '&'. */
	endpoint[0] = '\0';
	if (*qm == '?') {
		const char *s = qm + 1;

		for (;;) {
			const char *amp = strchr(s, '&'), *eq;
			size_t len = amp ? (size_t)(amp - s) : strlen(s);

			eq = memchr(s, '=', len);
			if (!eq)
				return fail(errbuf, errlen, "query part '%s' is not NAME=VALUE",
					    quote(q, sizeof(q), s, len));
			if ((size_t)(eq - s) == 6 && memcmp(s, "region", 6) == 0)
				err = query_value("region", eq + 1, len - 7, u->region,
						  sizeof(u->region), &seen_region, errbuf, errlen);
			else if ((size_t)(eq - s) == 8 && memcmp(s, "endpoint", 8) == 0)
				err = query_value("endpoint", eq + 1, len - 9, endpoint,
						  sizeof(endpoint), &seen_ep, errbuf, errlen);
			else if ((size_t)(eq - s) == 10 && memcmp(s, "path_style", 10) == 0)
				err = query_value("path_style", eq + 1, len - 11, ps, sizeof(ps),
						  &seen_ps, errbuf, errlen);
			else
				err = fail(errbuf, errlen, "unknown parameter '%s' (expected region, "
					   "endpoint or path_style)",
					   quote(q, sizeof(q), s, (size_t)(eq - s)));
			if (err)
				return err;
			if (!amp)
				break;
			s = amp + 1;
		}
	}

	if (seen_region) {
		size_t i, n = strlen(u->region);

		for (i = 0; i < n; i++)
			if (!(is_lower_digit(u->region[i]) || u->region[i] == '-'))
				break;
		if (n == 0 || i < n || u->region[0] == '-')
			return fail(errbuf, errlen, "region '%s' is not valid (a-z, 0-9 and '-', "
				    "like eu-west-1)", quote(q, sizeof(q), u->region, n));
	}
	if (seen_ps) {
		if (strcmp(ps, "true") == 0)
			u->path_style = 1;
		else if (strcmp(ps, "false") == 0)
			u->path_style = 0;
		else
			return fail(errbuf, errlen, "path_style '%s' is not true or false",
				    quote(q, sizeof(q), ps, strlen(ps)));
		ps_set = 1;
	}

	if (seen_ep) {
		if ((err = parse_endpoint(endpoint, u, &ipliteral, errbuf, errlen)) != 0)
			return err;
		if (!seen_region)
			strcpy(u->region, "us-east-1");
		if (!ps_set)
			u->path_style = 1;
		if (!u->path_style) {
			if (ipliteral)
				return fail(errbuf, errlen, "path_style=false needs a host name in "
					    "endpoint, not an address");
			if (u->tls && strchr(u->bucket, '.'))
				goto dots;
			if (strlen(u->bucket) + 1 + strlen(u->host) > S3URL_HOST_MAX)
				return fail(errbuf, errlen, "bucket and endpoint host make a host "
					    "name longer than %d bytes", S3URL_HOST_MAX);
			/* host is at most S3URL_HOST_MAX bytes; the check above bounds both. */
			memmove(u->host + blen + 1, u->host, strlen(u->host) + 1);
			memcpy(u->host, u->bucket, blen);
			u->host[blen] = '.';
			if (u->port != (u->tls ? 443 : 80))
				snprintf(u->host_header, sizeof(u->host_header), "%s:%u", u->host,
					 (unsigned)u->port);
			else
				snprintf(u->host_header, sizeof(u->host_header), "%s", u->host);
		}
	} else {
		if (!seen_region)
			return fail(errbuf, errlen, "region is required for AWS S3: add "
				    "?region=REGION (or endpoint=URL for another S3 server)");
		u->aws = 1;
		u->tls = 1;
		u->port = 443;
		dom = strncmp(u->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
		if (u->path_style) {
			snprintf(u->host, sizeof(u->host), "s3.%s.%s", u->region, dom);
		} else {
			if (strchr(u->bucket, '.'))
				goto dots;
			snprintf(u->host, sizeof(u->host), "%s.s3.%s.%s", u->bucket, u->region, dom);
		}
		snprintf(u->host_header, sizeof(u->host_header), "%s", u->host);
	}
	u->kind = S3URL_S3;
	return 0;
dots:
	return fail(errbuf, errlen, "bucket '%s' has dots, which the TLS certificate of a "
		    "virtual-hosted bucket cannot match: add path_style=true", u->bucket);
}

int s3url_parse(const char *url, struct s3url *out, char *errbuf, size_t errlen)
{
	char q[QUOTE_MAX];
	size_t n;
	int err;

	memset(out, 0, sizeof(*out));
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!url || !url[0])
		return fail(errbuf, errlen, "no URL given (file:///PATH or s3://BUCKET[/PREFIX]"
			    "?region=REGION)");
	n = strlen(url);
	if (n > S3URL_URL_MAX)
		return fail(errbuf, errlen, "URL is longer than %d bytes", S3URL_URL_MAX);
	if (strchr(url, '#'))
		err = fail(errbuf, errlen, "'%s': URL has a fragment ('#')",
			   quote(q, sizeof(q), url, n));
	else if (strncmp(url, "file://", 7) == 0)
		err = parse_file(url, out, errbuf, errlen);
	else if (strncmp(url, "s3://", 5) == 0)
		err = parse_s3(url, out, errbuf, errlen);
	else
		err = fail(errbuf, errlen, "'%s' is neither file:///PATH nor s3://BUCKET[/PREFIX]",
			   quote(q, sizeof(q), url, n));
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

/* A raw key we can send: not starting with '/', no control characters. */
static int check_key(const char *key, size_t n)
{
	struct sl_rd r;
	uint8_t c;

	if (n == 0 || key[0] == '/')
		return SL_E_INVALID;
	rd_init(&r, key, n);
	while (rd_u8(&r, &c) == 0)
		if (c < 0x20 || c == 0x7f)
			return SL_E_INVALID;
	return 0;
}

int s3url_full_key(const struct s3url *u, const char *key, struct sl_wr *w)
{
	size_t n, plen;

	if (u->kind != S3URL_S3 || !key)
		return SL_E_INVALID;
	n = strlen(key);
	plen = strlen(u->prefix);
	if (n && check_key(key, n) != 0)
		return SL_E_INVALID;
	if (n + plen + (plen ? 1 : 0) > S3URL_KEY_MAX)
		return SL_E_INVALID;
	if (plen) {
		wr_bytes(w, u->prefix, plen);
		wr_u8(w, '/');
	}
	wr_bytes(w, key, n);
	return w->err;
}

int s3url_object_path(const struct s3url *u, const char *key, struct sl_wr *w)
{
	struct sl_wr full;
	int err;

	if (!key || !key[0])
		return SL_E_INVALID;
	wr_init(&full, S3URL_KEY_MAX);
	if ((err = s3url_full_key(u, key, &full)) == 0) {
		wr_u8(w, '/');
		if (u->path_style) {
			wr_bytes(w, u->bucket, strlen(u->bucket));
			wr_u8(w, '/');
		}
		err = sigv4_uri_encode(w, full.p, full.len, 1);
	}
	wr_free(&full);
	return err;
}

int s3url_bucket_path(const struct s3url *u, struct sl_wr *w)
{
	if (u->kind != S3URL_S3)
		return SL_E_INVALID;
	wr_u8(w, '/');
	if (u->path_style)
		wr_bytes(w, u->bucket, strlen(u->bucket));
	return w->err;
}

int s3url_check(const char *url, char *why, size_t len)
{
	struct s3url *u = malloc(sizeof(*u));	/* a few KiB: not on the stack */
	int err;

	if (!u) {
		snprintf(why, len, "out of memory");
		return SL_E_NOMEM;
	}
	err = s3url_parse(url, u, why, len);
	free(u);
	return err;
}
