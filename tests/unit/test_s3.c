/*
 * test_s3.c - the S3 client against a fake S3 on loopback, driven by the
 * same loop, with a static credentials provider of the test's own.
 *
 * The fake keeps objects and multipart uploads in memory and speaks enough
 * S3 for the client: PUT, GET (with Range), HEAD, DELETE, ListObjectsV2
 * with continuation tokens, DeleteObjects (checking Content-MD5), and the
 * multipart calls.  It checks that every request carries x-amz-date,
 * Authorization and an x-amz-content-sha256 that matches the body.  A
 * script of faults, consumed in order by the requests of a kind, makes it
 * answer 503, 500, 403, a 200 holding an <Error>, stall, or close.
 *
 * Covered: round trips and key prefixes; retries on 503 then success;
 * giving up after max_attempts, and within max_total_ms; 4xx surfacing
 * Code and Message without a retry; multipart with parts in parallel up to
 * the limit, abort when a part fails for good, a 200-with-Error Complete
 * retried; DeleteObjects in batches of 1000 with Content-MD5 and per-key
 * errors; listing across pages and page by page; range reads; waiting for
 * credentials; session tokens; virtual-hosted addressing through a fake
 * resolver; cancellation; s3_free with operations running.  ASan (the
 * sanitizer build) checks for leaks at exit.
 *
 * Every test runs the loop under a 20 s guard timer.  The one bound on time
 * checked is that a request gives up within max_total_ms (with a second of
 * slack for a loaded machine).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bearssl_hash.h>
#include "t.h"
#include "../../kernel/log.h"
#include "../../net/resolve.h"
#include "../../storage/s3.h"
#include "../../storage/sigv4.h"

#define BUCKET "bkt"
#define MAX_OBJ 4096

/* ---- the fake S3 ---- */

struct obj {
	char *key;			/* full key */
	uint8_t *data;
	size_t len;
};

struct upload {
	char id[32];
	char key[256];
	uint8_t *part[64];
	size_t plen[64];
	int aborted, completed;
};

struct sconn {
	int fd;
	int closed;
	uint8_t *in;
	size_t len, cap;
	uint8_t *out;			/* a held answer */
	size_t outlen;
	int held_part;			/* the held answer ends a part upload */
	int stalled;
	struct loop_timer t;
	struct sconn *next;
};

struct fake {
	struct loop *l;
	int lfd;
	uint16_t port;
	struct sconn *conns;
	struct obj objs[MAX_OBJ];
	int nobjs;
	struct upload ups[8];
	int nups;
	/* fault script: kind ("PUT", "GET", "PART", ...; "*" any) and action */
	char script[32][2][16];
	int nscript;
	char def_action[16];		/* when the script has nothing for a request */
	int fail_part;			/* this part number always gets 500 */
	uint64_t part_delay_ms;		/* parts are answered this late */
	/* what it saw */
	int requests;
	int by_kind[16];
	int parts_now, parts_max;
	int bad_sig;			/* requests without the signing headers or a wrong hash */
	int md5_ok, md5_bad;
	int delete_batches, delete_keys_max;
	int tokens_seen;		/* requests carrying x-amz-security-token */
	int lose;			/* do the work, then close instead of answering */
	int range_mode;			/* 1: ignore Range (200, all); 2: 206 with all, as s3rver */
	char last_host[128];
	char last_path[512];
	char last_complete[4096];
};

static struct fake F;

enum { K_PUT, K_GET, K_HEAD, K_DELETE, K_CREATE, K_PART, K_COMPLETE, K_ABORT, K_DELMANY, K_LIST,
       K_OTHER };
static const char *kind_names[] = { "PUT", "GET", "HEAD", "DELETE", "CREATE", "PART", "COMPLETE",
				    "ABORT", "DELMANY", "LIST", "OTHER" };

static void c_send(struct sconn *sc, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(sc->fd, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);	/* test server: a big GET may fill the socket */
			continue;
		}
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

static void c_close(struct sconn *sc)
{
	if (sc->closed)
		return;
	loop_del(F.l, sc->fd);
	close(sc->fd);
	loop_timer_cancel(F.l, &sc->t);
	sc->closed = 1;
	if (sc->held_part) {
		F.parts_now--;
		sc->held_part = 0;
	}
	free(sc->out);
	sc->out = NULL;
}

static void c_release(struct loop *l, void *arg)
{
	struct sconn *sc = arg;

	if (sc->closed || !sc->out)
		return;
	c_send(sc, sc->out, sc->outlen);
	free(sc->out);
	sc->out = NULL;
	if (sc->held_part) {
		F.parts_now--;
		sc->held_part = 0;
	}
}

/* Answer now, or after delay_ms (held). */
static void reply(struct sconn *sc, int status, const char *extra, const void *body, size_t blen,
		  uint64_t delay_ms)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
			 status, blen, extra ? extra : "");
	uint8_t *all;

	if (F.lose) {
		F.lose = 0;
		c_close(sc);
		return;
	}
	all = malloc((size_t)n + blen + 1);
	memcpy(all, head, (size_t)n);
	if (blen)
		memcpy(all + n, body, blen);
	if (delay_ms == 0) {
		c_send(sc, all, (size_t)n + blen);
		free(all);
		return;
	}
	sc->out = all;
	sc->outlen = (size_t)n + blen;
	loop_timer_set(F.l, &sc->t, delay_ms);
}

static void reply_xml(struct sconn *sc, int status, const char *xml)
{
	reply(sc, status, "Content-Type: application/xml\r\n", xml, strlen(xml), 0);
}

static void reply_error(struct sconn *sc, int status, const char *code, const char *msg)
{
	char b[512];

	snprintf(b, sizeof(b), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
		 "<Message>%s</Message><RequestId>r1</RequestId></Error>", code, msg);
	reply_xml(sc, status, b);
}

/* The value of header name in a head (a NUL-terminated copy in out), or NULL. */
static const char *hdr(const char *head, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;
	size_t n;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	p = strcasestr(head, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	e = strstr(p, "\r\n");
	n = e ? (size_t)(e - p) : strlen(p);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static void pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, k = 0;

	for (i = 0; i < n && k + 1 < cap; i++) {
		if (s[i] == '%' && i + 2 < n) {
			char h[3] = { s[i + 1], s[i + 2], 0 };

			out[k++] = (char)strtol(h, NULL, 16);
			i += 2;
		} else {
			out[k++] = s[i];
		}
	}
	out[k] = '\0';
}

/* The decoded value of query parameter name, or NULL. */
static const char *qparam(const char *query, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);

		if ((size_t)(end - p) >= nl && strncmp(p, name, nl) == 0 &&
		    (p[nl] == '=' || p + nl == end)) {
			const char *v = p[nl] == '=' ? p + nl + 1 : end;

			pct_decode(v, (size_t)(end - v), out, cap);
			return out;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static struct obj *find(const char *key)
{
	int i;

	for (i = 0; i < F.nobjs; i++)
		if (strcmp(F.objs[i].key, key) == 0)
			return &F.objs[i];
	return NULL;
}

static void store(const char *key, const uint8_t *p, size_t n)
{
	struct obj *o = find(key);

	if (!o) {
		o = &F.objs[F.nobjs++];
		o->key = strdup(key);
	} else {
		free(o->data);
	}
	o->data = malloc(n ? n : 1);
	if (n)
		memcpy(o->data, p, n);
	o->len = n;
}

static void drop(const char *key)
{
	struct obj *o = find(key);

	if (!o)
		return;
	free(o->key);
	free(o->data);
	*o = F.objs[--F.nobjs];
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->key, ((const struct obj *)b)->key);
}

static const char *next_action(int kind)
{
	int i;

	for (i = 0; i < F.nscript; i++) {
		if (strcmp(F.script[i][0], "*") == 0 || strcmp(F.script[i][0], kind_names[kind]) == 0) {
			static char a[16];

			snprintf(a, sizeof(a), "%s", F.script[i][1]);
			memmove(F.script[i], F.script[i + 1], sizeof(F.script[0]) * (size_t)(F.nscript - i - 1));
			F.nscript--;
			return a;
		}
	}
	return F.def_action;
}

static void push_fault(const char *kind, const char *action, int times)
{
	while (times-- > 0) {
		snprintf(F.script[F.nscript][0], 16, "%s", kind);
		snprintf(F.script[F.nscript][1], 16, "%s", action);
		F.nscript++;
	}
}

static void b64(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, k = 0;

	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);

		out[k++] = a[v >> 18];
		out[k++] = a[(v >> 12) & 63];
		out[k++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
		out[k++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[k] = '\0';
}

static void handle_list(struct sconn *sc, const char *query)
{
	char prefix[256] = "", tok[64] = "", mk[16] = "";
	size_t plen, cap = 1 << 20, n = 0;
	int max = 1000, start = 0, i, count = 0, last = -1;
	char *b = malloc(cap);

	qparam(query, "prefix", prefix, sizeof(prefix));
	if (qparam(query, "max-keys", mk, sizeof(mk)))
		max = atoi(mk);
	if (qparam(query, "continuation-token", tok, sizeof(tok)))
		start = atoi(tok + 4);	/* "tok-N" */
	plen = strlen(prefix);
	qsort(F.objs, (size_t)F.nobjs, sizeof(F.objs[0]), cmp_obj);
	n += (size_t)snprintf(b + n, cap - n, "<?xml version=\"1.0\"?>\n<ListBucketResult>"
			      "<Name>" BUCKET "</Name><Prefix>%s</Prefix>", prefix);
	for (i = start; i < F.nobjs; i++) {
		if (strncmp(F.objs[i].key, prefix, plen) != 0)
			continue;
		if (count == max)
			break;
		n += (size_t)snprintf(b + n, cap - n, "<Contents><Key>%s</Key><Size>%zu</Size>"
				      "<ETag>\"e\"</ETag><LastModified>2024-01-02T03:04:05.000Z"
				      "</LastModified></Contents>", F.objs[i].key, F.objs[i].len);
		count++;
		last = i;
	}
	for (; i < F.nobjs && strncmp(F.objs[i].key, prefix, plen) != 0; i++)
		;
	if (i < F.nobjs)
		n += (size_t)snprintf(b + n, cap - n, "<IsTruncated>true</IsTruncated>"
				      "<NextContinuationToken>tok-%d</NextContinuationToken>", last + 1);
	else
		n += (size_t)snprintf(b + n, cap - n, "<IsTruncated>false</IsTruncated>");
	n += (size_t)snprintf(b + n, cap - n, "<KeyCount>%d</KeyCount></ListBucketResult>", count);
	reply(sc, 200, NULL, b, n, 0);
	free(b);
}

static void handle_delete_many(struct sconn *sc, const char *head, const uint8_t *body, size_t blen)
{
	char md5h[64], want[64], key[1100];
	br_md5_context c;
	uint8_t sum[16];
	const char *p, *e;
	size_t n = 0, cap = 1 << 20;
	char *b;
	int keys = 0;

	br_md5_init(&c);
	br_md5_update(&c, body, blen);
	br_md5_out(&c, sum);
	b64(sum, 16, want);
	if (!hdr(head, "content-md5", md5h, sizeof(md5h)) || strcmp(md5h, want) != 0) {
		F.md5_bad++;
		reply_error(sc, 400, "BadDigest", "The Content-MD5 you specified did not match");
		return;
	}
	F.md5_ok++;
	F.delete_batches++;
	b = malloc(cap);
	n += (size_t)snprintf(b, cap, "<?xml version=\"1.0\"?>\n<DeleteResult>");
	char *text = strndup((const char *)body, blen);

	for (p = text; (p = strstr(p, "<Key>")) != NULL; p = e) {
		p += 5;
		e = strstr(p, "</Key>");
		snprintf(key, sizeof(key), "%.*s", (int)(e - p), p);
		keys++;
		if (strstr(key, "bad"))
			n += (size_t)snprintf(b + n, cap - n, "<Error><Key>%s</Key><Code>AccessDenied"
					      "</Code><Message>Access Denied</Message></Error>", key);
		else
			drop(key);
	}
	free(text);
	if (keys > F.delete_keys_max)
		F.delete_keys_max = keys;
	n += (size_t)snprintf(b + n, cap - n, "</DeleteResult>");
	reply(sc, 200, NULL, b, n, 0);
	free(b);
}

static struct upload *find_upload(const char *id)
{
	int i;

	for (i = 0; i < F.nups; i++)
		if (strcmp(F.ups[i].id, id) == 0)
			return &F.ups[i];
	return NULL;
}

static void handle_complete(struct sconn *sc, struct upload *u, const uint8_t *body, size_t blen)
{
	size_t total = 0, off = 0;
	uint8_t *all;
	int i, nparts = 0;
	char *text = strndup((const char *)body, blen);
	const char *p;

	snprintf(F.last_complete, sizeof(F.last_complete), "%s", text);
	for (p = text; (p = strstr(p, "<PartNumber>")) != NULL; p++) {
		if (atoi(p + 12) != nparts + 1) {
			free(text);
			reply_error(sc, 400, "InvalidPartOrder", "parts out of order");
			return;
		}
		nparts++;
	}
	free(text);
	for (i = 0; i < nparts; i++) {
		if (!u->part[i]) {
			reply_error(sc, 400, "InvalidPart", "a part is missing");
			return;
		}
		total += u->plen[i];
	}
	all = malloc(total + 1);
	for (i = 0; i < nparts; i++) {
		memcpy(all + off, u->part[i], u->plen[i]);
		off += u->plen[i];
	}
	store(u->key, all, total);
	free(all);
	u->completed = 1;
	reply_xml(sc, 200, "<?xml version=\"1.0\"?>\n<CompleteMultipartUploadResult><Bucket>bkt"
		  "</Bucket><Key>k</Key><ETag>\"final-3\"</ETag></CompleteMultipartUploadResult>");
}

static void handle(struct sconn *sc, char *head, const uint8_t *body, size_t blen)
{
	char method[16] = "", target[2048] = "", path[1024], key[1024], v[4200], hash[70];
	char *q;
	const char *action;
	struct obj *o;
	int kind;

	F.requests++;
	sscanf(head, "%15s %2047s", method, target);
	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	snprintf(F.last_path, sizeof(F.last_path), "%s", target);
	hdr(head, "host", F.last_host, sizeof(F.last_host));
	pct_decode(target, strlen(target), path, sizeof(path));
	/* path-style "/bkt/KEY" or virtual-hosted "/KEY" */
	if (strncmp(path, "/" BUCKET "/", 5) == 0)
		snprintf(key, sizeof(key), "%s", path + 5);
	else if (strcmp(path, "/" BUCKET) == 0 || strcmp(path, "/") == 0)
		key[0] = '\0';
	else
		snprintf(key, sizeof(key), "%s", path + 1);

	if (strcmp(method, "PUT") == 0)
		kind = q && strstr(q, "partNumber=") ? K_PART : K_PUT;
	else if (strcmp(method, "GET") == 0)
		kind = key[0] ? K_GET : K_LIST;
	else if (strcmp(method, "HEAD") == 0)
		kind = K_HEAD;
	else if (strcmp(method, "DELETE") == 0)
		kind = q && strstr(q, "uploadId=") ? K_ABORT : K_DELETE;
	else if (strcmp(method, "POST") == 0 && q && strncmp(q, "uploads", 7) == 0)
		kind = K_CREATE;
	else if (strcmp(method, "POST") == 0 && q && strstr(q, "uploadId="))
		kind = K_COMPLETE;
	else if (strcmp(method, "POST") == 0 && q && strncmp(q, "delete", 6) == 0)
		kind = K_DELMANY;
	else
		kind = K_OTHER;
	F.by_kind[kind]++;

	if (!hdr(head, "authorization", v, sizeof(v)) || strncmp(v, "AWS4-HMAC-SHA256 ", 17) != 0 ||
	    !hdr(head, "x-amz-date", v, sizeof(v)) ||
	    !hdr(head, "x-amz-content-sha256", hash, sizeof(hash))) {
		F.bad_sig++;
	} else {
		char want[SIGV4_HEX_LEN + 1];

		sigv4_payload_hash(body, blen, want);
		if (strcmp(want, hash) != 0)
			F.bad_sig++;
	}
	if (hdr(head, "x-amz-security-token", v, sizeof(v))) {
		char auth[4200];

		hdr(head, "authorization", auth, sizeof(auth));
		if (strstr(auth, "x-amz-security-token"))
			F.tokens_seen++;
	}

	action = next_action(kind);
	if (kind == K_PART) {
		char pn[16];

		qparam(q, "partNumber", pn, sizeof(pn));
		if (F.fail_part && atoi(pn) == F.fail_part)
			action = "500";
	}
	if (strcmp(action, "503") == 0) {
		reply_error(sc, 503, "SlowDown", "Please reduce your request rate.");
		return;
	}
	if (strcmp(action, "500") == 0) {
		reply_error(sc, 500, "InternalError", "We encountered an internal error.");
		return;
	}
	if (strcmp(action, "403") == 0) {
		reply_error(sc, 403, "AccessDenied", "Access Denied");
		return;
	}
	if (strcmp(action, "200err") == 0) {
		reply_error(sc, 200, "InternalError", "We encountered an internal error.");
		return;
	}
	if (strcmp(action, "stall") == 0) {
		sc->stalled = 1;
		return;
	}
	if (strcmp(action, "close") == 0) {
		c_close(sc);
		return;
	}
	if (strcmp(action, "lost") == 0)
		F.lose = 1;

	switch (kind) {
	case K_PUT:
		store(key, body, blen);
		reply(sc, 200, "ETag: \"etag-put\"\r\n", NULL, 0, 0);
		break;
	case K_GET: {
		char range[64];
		unsigned long long a, b;

		o = find(key);
		if (!o) {
			reply_error(sc, 404, "NoSuchKey", "The specified key does not exist.");
		} else if (F.range_mode == 2 && hdr(head, "range", range, sizeof(range))) {
			char cr[96];

			snprintf(cr, sizeof(cr), "Content-Range: bytes 0-%zu/%zu\r\n", o->len - 1, o->len);
			reply(sc, 206, cr, o->data, o->len, 0);
		} else if (F.range_mode == 0 && hdr(head, "range", range, sizeof(range)) &&
			   sscanf(range, "bytes=%llu-%llu", &a, &b) == 2) {
			if (a >= o->len) {
				reply_error(sc, 416, "InvalidRange", "The requested range is not satisfiable");
				break;
			}
			if (b >= o->len)
				b = o->len - 1;
			reply(sc, 206, "ETag: \"e\"\r\n", o->data + a, (size_t)(b - a + 1), 0);
		} else {
			reply(sc, 200, "ETag: \"e\"\r\n", o->data, o->len, 0);
		}
		break;
	}
	case K_HEAD:
		o = find(key);
		if (!o) {
			const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

			c_send(sc, nf, strlen(nf));
		} else {
			char h[128];
			int n = snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
					 "ETag: \"h\"\r\n\r\n", o->len);

			c_send(sc, h, (size_t)n);
		}
		break;
	case K_DELETE:
		drop(key);
		reply(sc, 204, NULL, NULL, 0, 0);
		break;
	case K_LIST:
		handle_list(sc, q ? q : "");
		break;
	case K_DELMANY:
		handle_delete_many(sc, head, body, blen);
		break;
	case K_CREATE: {
		struct upload *u = &F.ups[F.nups];
		char b[512];

		memset(u, 0, sizeof(*u));
		snprintf(u->id, sizeof(u->id), "up-%d", F.nups + 1);
		snprintf(u->key, sizeof(u->key), "%s", key);
		F.nups++;
		snprintf(b, sizeof(b), "<?xml version=\"1.0\"?>\n<InitiateMultipartUploadResult>"
			 "<Bucket>bkt</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
			 "</InitiateMultipartUploadResult>", key, u->id);
		reply_xml(sc, 200, b);
		break;
	}
	case K_PART: {
		char id[32], pn[16], et[64];
		struct upload *u;
		int n;

		qparam(q, "uploadId", id, sizeof(id));
		qparam(q, "partNumber", pn, sizeof(pn));
		u = find_upload(id);
		n = atoi(pn);
		if (!u || n < 1 || n > 64) {
			reply_error(sc, 404, "NoSuchUpload", "no such upload");
			break;
		}
		free(u->part[n - 1]);
		u->part[n - 1] = malloc(blen ? blen : 1);
		memcpy(u->part[n - 1], body, blen);
		u->plen[n - 1] = blen;
		snprintf(et, sizeof(et), "ETag: \"part-%d\"\r\n", n);
		F.parts_now++;
		if (F.parts_now > F.parts_max)
			F.parts_max = F.parts_now;
		sc->held_part = 1;
		reply(sc, 200, et, NULL, 0, F.part_delay_ms ? F.part_delay_ms : 1);
		break;
	}
	case K_COMPLETE: {
		char id[32];
		struct upload *u;

		qparam(q, "uploadId", id, sizeof(id));
		u = find_upload(id);
		if (!u || u->aborted || u->completed)
			reply_error(sc, 404, "NoSuchUpload", "The specified upload does not exist.");
		else
			handle_complete(sc, u, body, blen);
		break;
	}
	case K_ABORT: {
		char id[32];
		struct upload *u;

		qparam(q, "uploadId", id, sizeof(id));
		u = find_upload(id);
		if (u)
			u->aborted = 1;
		reply(sc, 204, NULL, NULL, 0, 0);
		break;
	}
	default:
		reply_error(sc, 400, "InvalidRequest", "what is this");
	}
}

static void c_process(struct sconn *sc)
{
	while (!sc->closed && !sc->out && !sc->stalled) {
		uint8_t *end = sc->len ? memmem(sc->in, sc->len, "\r\n\r\n", 4) : NULL;
		size_t headlen, blen = 0, total;
		char cl[32];
		char *head;

		if (!end)
			return;
		headlen = (size_t)(end - sc->in) + 4;
		head = strndup((const char *)sc->in, headlen);
		if (hdr(head, "content-length", cl, sizeof(cl)))
			blen = strtoul(cl, NULL, 10);
		total = headlen + blen;
		if (sc->len < total) {
			free(head);
			return;
		}
		handle(sc, head, sc->in + headlen, blen);
		free(head);
		if (sc->closed)
			return;
		memmove(sc->in, sc->in + total, sc->len - total);
		sc->len -= total;
	}
}

static void c_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct sconn *sc = arg;
	ssize_t n;

	if (sc->closed)
		return;
	if (sc->cap - sc->len < 65536) {
		sc->cap = sc->cap * 2 + 65536;
		sc->in = realloc(sc->in, sc->cap);
	}
	n = recv(fd, sc->in + sc->len, sc->cap - sc->len, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		c_close(sc);
		return;
	}
	if (n < 0)
		return;
	sc->len += (size_t)n;
	c_process(sc);
}

static void c_after_release(struct loop *l, void *arg)
{
	struct sconn *sc = arg;

	c_release(l, arg);
	c_process(sc);
}

static void s_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct sconn *sc;

	if (cfd == -1)
		return;
	sc = calloc(1, sizeof(*sc));
	sc->fd = cfd;
	loop_timer_init(&sc->t, c_after_release, sc);
	sc->next = F.conns;
	F.conns = sc;
	T_EQ(loop_add(l, cfd, LOOP_READ, c_io, sc), 0);
}

static void fake_start(struct loop *l)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(&F, 0, sizeof(F));
	F.l = l;
	F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(F.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	T_EQ(listen(F.lfd, 64), 0);
	getsockname(F.lfd, (struct sockaddr *)&a, &alen);
	F.port = ntohs(a.sin_port);
	T_EQ(loop_add(l, F.lfd, LOOP_READ, s_accept, NULL), 0);
}

static void fake_stop(void)
{
	int i, j;

	while (F.conns) {
		struct sconn *sc = F.conns;

		F.conns = sc->next;
		c_close(sc);
		free(sc->in);
		free(sc);
	}
	loop_del(F.l, F.lfd);
	close(F.lfd);
	for (i = 0; i < F.nobjs; i++) {
		free(F.objs[i].key);
		free(F.objs[i].data);
	}
	for (i = 0; i < F.nups; i++)
		for (j = 0; j < 64; j++)
			free(F.ups[i].part[j]);
}

/* ---- credentials: a static provider of the test's own ---- */

struct tcred {
	struct s3_creds c;
	int have;
	int gets;
	struct s3cred_waiter *waiters;
	struct loop_timer arrive;
};

static struct tcred TC;

static const struct s3_creds *tc_get(void *p, int64_t now)
{
	struct tcred *t = p;

	t->gets++;
	return t->have ? &t->c : NULL;
}

static void tc_wait(void *p, struct s3cred_waiter *w)
{
	struct tcred *t = p;

	w->next = t->waiters;
	t->waiters = w;
}

static void tc_unwait(void *p, struct s3cred_waiter *w)
{
	struct tcred *t = p;
	struct s3cred_waiter **pp;

	for (pp = &t->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return;
		}
	}
}

static void tc_arrive(struct loop *l, void *arg)
{
	struct tcred *t = arg;

	t->have = 1;
	while (t->waiters) {
		struct s3cred_waiter *w = t->waiters;

		t->waiters = w->next;
		w->fn(w, 0);
	}
}

static const struct s3_cred_ops tc_ops = { tc_get, tc_wait, tc_unwait };

static void tc_init(int have, const char *token)
{
	memset(&TC, 0, sizeof(TC));
	TC.c.access_key = "AKIDEXAMPLE";
	TC.c.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	TC.c.token = (char *)token;
	TC.c.expires_ms = -1;
	TC.c.source = "test";
	TC.have = have;
	loop_timer_init(&TC.arrive, tc_arrive, &TC);
}

/* ---- the harness ---- */

struct call {
	int done;
	int err, status, attempts;
	char code[S3_CODE_MAX], message[S3_MESSAGE_MAX], etag[S3_ETAG_MAX];
	uint8_t *body;
	size_t body_len;
	uint64_t size;
	size_t nobjects, nprefixes, ndeleted, nkey_errors;
	char first_key[256], last_key[256], first_err_key[256];
	int pages, truncated, parts;
	char token[128];
	uint64_t at_ms;
	int sorted;
};

static struct loop *L;
static struct s3 *S3;
static int outstanding, guard_fired;
static struct loop_timer guard;

static void on_guard(struct loop *l, void *arg)
{
	guard_fired = 1;
	loop_stop(l);
}

static void on_done(void *arg, struct s3_result *r)
{
	struct call *c = arg;
	size_t i;

	c->done++;
	c->err = r->err;
	c->status = r->status;
	c->attempts = r->attempts;
	snprintf(c->code, sizeof(c->code), "%s", r->code);
	snprintf(c->message, sizeof(c->message), "%s", r->message);
	snprintf(c->etag, sizeof(c->etag), "%s", r->etag ? r->etag : "");
	c->body = s3_result_take_body(r, &c->body_len);
	c->size = r->size;
	c->nobjects = r->nobjects;
	c->nprefixes = r->nprefixes;
	c->pages = r->pages;
	c->truncated = r->truncated;
	c->parts = r->parts;
	snprintf(c->token, sizeof(c->token), "%s", r->next_token ? r->next_token : "");
	if (r->nobjects) {
		snprintf(c->first_key, sizeof(c->first_key), "%s", r->objects[0].key);
		snprintf(c->last_key, sizeof(c->last_key), "%s", r->objects[r->nobjects - 1].key);
	}
	c->sorted = 1;
	for (i = 1; i < r->nobjects; i++)
		if (strcmp(r->objects[i - 1].key, r->objects[i].key) >= 0)
			c->sorted = 0;
	c->ndeleted = r->ndeleted;
	c->nkey_errors = r->nkey_errors;
	if (r->nkey_errors)
		snprintf(c->first_err_key, sizeof(c->first_err_key), "%s %s", r->key_errors[0].key,
			 r->key_errors[0].code);
	c->at_ms = loop_now_ms(L);
	if (--outstanding == 0)
		loop_stop(L);
}

static struct s3_options opts(void)
{
	struct s3_options o;

	memset(&o, 0, sizeof(o));
	o.request_timeout_ms = 2000;
	o.max_total_ms = 10000;
	o.backoff_base_ms = 5;
	o.backoff_cap_ms = 20;
	o.cred_ops = &tc_ops;
	return o;
}

/* A client for s3://bkt/PREFIX at the fake; url_extra is appended to the query. */
static void setup_url(const struct s3_options *o, const char *prefix, const char *endpoint_host,
		      const char *url_extra)
{
	char url[512], errbuf[256];
	struct s3url u;

	L = loop_new();
	fake_start(L);
	snprintf(url, sizeof(url), "s3://" BUCKET "%s%s?endpoint=http://%s:%u%s", prefix ? "/" : "",
		 prefix ? prefix : "", endpoint_host, F.port, url_extra ? url_extra : "");
	T_EQ(s3url_parse(url, &u, errbuf, sizeof(errbuf)), 0);
	T_EQ(s3_new(L, &u, (struct s3cred *)&TC, o, &S3), 0);
	outstanding = 0;
	guard_fired = 0;
	loop_timer_init(&guard, on_guard, NULL);
	loop_timer_set(L, &guard, 20000);
}

static void setup(const struct s3_options *o)
{
	setup_url(o, "pfx", "127.0.0.1", NULL);
}

static void teardown(void)
{
	s3_free(S3);
	S3 = NULL;
	loop_timer_cancel(L, &TC.arrive);
	fake_stop();
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
}

static void run(void)
{
	if (outstanding > 0)
		T_EQ(loop_run(L), 0);
	T_EQ(guard_fired, 0);
}

static void put(const char *key, const void *p, size_t n, struct call *c)
{
	T_EQ(s3_put(S3, key, p, n, on_done, c, NULL), 0);
	outstanding++;
}

static void get(const char *key, const struct s3_range *rg, struct call *c)
{
	T_EQ(s3_get(S3, key, rg, on_done, c, NULL), 0);
	outstanding++;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 31 + seed + (i >> 8)) & 0xff);
	return p;
}

static void call_free(struct call *c)
{
	free(c->body);
	c->body = NULL;
}

/* ---- tests ---- */

static void test_roundtrip(void)
{
	struct s3_options o = opts();
	struct call c[6];
	static const char data[] = "hello, object";

	memset(c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	put("dir/a b+c", data, sizeof(data) - 1, &c[0]);
	put("empty", NULL, 0, &c[1]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].status, 200);
	T_STR_EQ(c[0].etag, "\"etag-put\"");
	T_EQ(c[0].size, sizeof(data) - 1);
	T_EQ(c[1].err, 0);
	T_CHECK(find("pfx/dir/a b+c") != NULL);
	T_CHECK(find("pfx/empty") != NULL && find("pfx/empty")->len == 0);

	get("dir/a b+c", NULL, &c[2]);
	T_EQ(s3_head(S3, "dir/a b+c", on_done, &c[3], NULL), 0);
	outstanding++;
	get("empty", NULL, &c[4]);
	run();
	T_EQ(c[2].err, 0);
	T_EQ(c[2].body_len, sizeof(data) - 1);
	T_CHECK(c[2].body && memcmp(c[2].body, data, sizeof(data) - 1) == 0);
	T_EQ(c[3].err, 0);
	T_EQ(c[3].size, sizeof(data) - 1);
	T_STR_EQ(c[3].etag, "\"h\"");
	T_EQ(c[4].err, 0);
	T_EQ(c[4].body_len, 0);
	T_CHECK(c[4].body == NULL);

	memset(&c[5], 0, sizeof(c[5]));
	T_EQ(s3_delete(S3, "dir/a b+c", on_done, &c[5], NULL), 0);
	outstanding++;
	run();
	T_EQ(c[5].err, 0);
	T_EQ(c[5].status, 204);
	T_CHECK(find("pfx/dir/a b+c") == NULL);

	/* Gone: GET is 404 NoSuchKey, HEAD is a bare 404. */
	call_free(&c[2]);
	memset(&c[2], 0, sizeof(c[2]));
	memset(&c[3], 0, sizeof(c[3]));
	get("dir/a b+c", NULL, &c[2]);
	T_EQ(s3_head(S3, "dir/a b+c", on_done, &c[3], NULL), 0);
	outstanding++;
	run();
	T_EQ(c[2].err, SL_E_REMOTE);
	T_EQ(c[2].status, 404);
	T_STR_EQ(c[2].code, "NoSuchKey");
	T_STR_EQ(c[2].message, "The specified key does not exist.");
	T_EQ(c[2].attempts, 1);
	T_EQ(c[3].err, SL_E_REMOTE);
	T_EQ(c[3].status, 404);
	T_STR_EQ(c[3].code, "");
	T_EQ(F.bad_sig, 0);
	T_EQ(F.tokens_seen, 0);
	/* Bad arguments fail at once, with no callback. */
	T_EQ(s3_put(S3, "", "x", 1, on_done, &c[0], NULL), SL_E_INVALID);
	T_EQ(s3_put(S3, "/abs", "x", 1, on_done, &c[0], NULL), SL_E_INVALID);
	T_EQ(s3_get(S3, "k\n", NULL, on_done, &c[0], NULL), SL_E_INVALID);
	for (int i = 0; i < 6; i++)
		call_free(&c[i]);
	teardown();
}

static void test_host_header(void)
{
	struct s3_options o = opts();
	struct call c;
	char want[64];

	memset(&c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	put("k", "v", 1, &c);
	run();
	T_EQ(c.err, 0);
	snprintf(want, sizeof(want), "127.0.0.1:%u", F.port);
	T_STR_EQ(F.last_host, want);
	T_STR_EQ(F.last_path, "/bkt/pfx/k");
	teardown();
}

static void test_retry_503_then_success(void)
{
	struct s3_options o = opts();
	struct s3_stats st;
	struct call c;

	memset(&c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	push_fault("PUT", "503", 2);
	put("k", "value", 5, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.status, 200);
	T_EQ(c.attempts, 3);
	T_EQ(F.by_kind[K_PUT], 3);
	T_CHECK(find("pfx/k") != NULL);
	s3_get_stats(S3, &st);
	T_EQ(st.retries, 2);
	T_EQ(st.giveups, 0);
	T_EQ(st.attempts, 3);
	/* Every attempt asked the provider and was signed again. */
	T_EQ(TC.gets, 3);
	T_EQ(F.bad_sig, 0);
	/* A connection closed before the answer is retried too. */
	memset(&c, 0, sizeof(c));
	push_fault("GET", "close", 2);
	push_fault("GET", "500", 1);
	get("k", NULL, &c);
	run();
	T_EQ(c.err, 0);
	T_CHECK(c.attempts >= 3);
	T_EQ(c.body_len, 5);
	call_free(&c);
	teardown();
}

static void test_giveup_attempts(void)
{
	struct s3_options o = opts();
	struct s3_stats st;
	struct call c;

	memset(&c, 0, sizeof(c));
	o.max_attempts = 4;
	tc_init(1, NULL);
	setup(&o);
	snprintf(F.def_action, sizeof(F.def_action), "500");
	get("k", NULL, &c);
	run();
	T_EQ(c.done, 1);
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 500);
	T_STR_EQ(c.code, "InternalError");
	T_STR_EQ(c.message, "We encountered an internal error.");
	T_EQ(c.attempts, 4);
	T_EQ(F.by_kind[K_GET], 4);
	s3_get_stats(S3, &st);
	T_EQ(st.giveups, 1);
	T_EQ(st.retries, 3);
	teardown();
}

static void test_giveup_total_time(void)
{
	struct s3_options o = opts();
	struct call c[2];
	uint64_t t0;

	memset(c, 0, sizeof(c));
	o.max_attempts = 1000;
	o.max_total_ms = 300;
	o.backoff_base_ms = 10;
	o.backoff_cap_ms = 40;
	tc_init(1, NULL);
	setup(&o);
	snprintf(F.def_action, sizeof(F.def_action), "503");
	t0 = loop_now_ms(L);
	get("k", NULL, &c[0]);
	run();
	T_EQ(c[0].err, SL_E_REMOTE);
	T_EQ(c[0].status, 503);
	T_STR_EQ(c[0].code, "SlowDown");
	T_CHECK(c[0].attempts > 1 && c[0].attempts < 1000);
	T_CHECK(c[0].at_ms - t0 <= 300 + 1000);

	/* A server that never answers: each attempt times out; the total still holds. */
	snprintf(F.def_action, sizeof(F.def_action), "stall");
	t0 = loop_now_ms(L);
	get("k", NULL, &c[1]);
	run();
	T_EQ(c[1].err, SL_E_TIMEOUT);
	T_CHECK(c[1].at_ms - t0 <= 300 + 1000);
	teardown();
}

static void test_stall_then_retry(void)
{
	struct s3_options o = opts();
	struct call c;

	memset(&c, 0, sizeof(c));
	o.request_timeout_ms = 100;
	tc_init(1, NULL);
	setup(&o);
	store("pfx/k", (const uint8_t *)"abc", 3);
	push_fault("GET", "stall", 1);
	get("k", NULL, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.attempts, 2);
	T_CHECK(c.body && c.body_len == 3 && memcmp(c.body, "abc", 3) == 0);
	call_free(&c);
	teardown();
}

static void test_4xx_no_retry(void)
{
	struct s3_options o = opts();
	struct call c;

	memset(&c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	push_fault("PUT", "403", 1);
	put("k", "v", 1, &c);
	run();
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 403);
	T_STR_EQ(c.code, "AccessDenied");
	T_STR_EQ(c.message, "Access Denied");
	T_EQ(c.attempts, 1);
	T_EQ(F.by_kind[K_PUT], 1);
	T_CHECK(find("pfx/k") == NULL);
	teardown();
}

static void test_multipart_parallel(void)
{
	struct s3_options o = opts();
	size_t n = 10 * 65536 + 1;
	uint8_t *data = pattern(n, 7);
	struct s3_stats st;
	struct obj *ob;
	struct call c;

	memset(&c, 0, sizeof(c));
	o.part_size = 65536;
	o.multipart_threshold = 65536;
	o.parts_in_flight = 3;
	tc_init(1, NULL);
	setup(&o);
	F.part_delay_ms = 30;
	push_fault("PART", "503", 1);	/* one part retried */
	put("big", data, n, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.parts, 11);
	T_STR_EQ(c.etag, "\"final-3\"");
	T_EQ(c.size, n);
	T_EQ(F.by_kind[K_CREATE], 1);
	T_EQ(F.by_kind[K_PART], 12);
	T_EQ(F.by_kind[K_COMPLETE], 1);
	T_EQ(F.by_kind[K_ABORT], 0);
	T_EQ(F.parts_max, 3);
	ob = find("pfx/big");
	T_CHECK(ob != NULL);
	if (ob) {
		T_EQ(ob->len, n);
		T_CHECK(ob->len == n && memcmp(ob->data, data, n) == 0);
	}
	T_CHECK(strstr(F.last_complete, "<Part><PartNumber>1</PartNumber><ETag>&quot;part-1&quot;"
				     "</ETag></Part>") != NULL ||
		strstr(F.last_complete, "<PartNumber>1</PartNumber><ETag>\"part-1\"</ETag>") != NULL);
	T_CHECK(strstr(F.last_complete, "<PartNumber>11</PartNumber>") != NULL);
	T_EQ(F.bad_sig, 0);
	s3_get_stats(S3, &st);
	T_EQ(st.hashed_bytes, 0);	/* 64 KiB parts are hashed inline */
	free(data);
	teardown();
}

static void test_multipart_abort(void)
{
	struct s3_options o = opts();
	size_t n = 8 * 65536;
	uint8_t *data = pattern(n, 3);
	struct s3_stats st;
	struct call c;

	memset(&c, 0, sizeof(c));
	o.part_size = 65536;
	o.multipart_threshold = 65536;
	o.parts_in_flight = 2;
	o.max_attempts = 3;
	tc_init(1, NULL);
	setup(&o);
	F.fail_part = 4;
	put("big", data, n, &c);
	run();
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 500);
	T_STR_EQ(c.code, "InternalError");
	T_EQ(F.by_kind[K_ABORT], 1);
	T_EQ(F.by_kind[K_COMPLETE], 0);
	T_CHECK(F.nups == 1 && F.ups[0].aborted);
	T_CHECK(find("pfx/big") == NULL);
	/* Each part at most once, but part 4 three times; none after the abort. */
	T_CHECK(F.by_kind[K_PART] <= 8 + 2);
	s3_get_stats(S3, &st);
	T_EQ(st.aborts, 1);
	T_EQ(st.running, 0);

	/* A part refused with a 4xx: no retry, aborted too. */
	memset(&c, 0, sizeof(c));
	F.fail_part = 0;
	push_fault("PART", "403", 1);
	put("big2", data, n, &c);
	run();
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 403);
	T_EQ(F.by_kind[K_ABORT], 2);
	T_CHECK(find("pfx/big2") == NULL);
	free(data);
	teardown();
}

static void test_multipart_complete_200_error(void)
{
	struct s3_options o = opts();
	size_t n = 3 * 65536;
	uint8_t *data = pattern(n, 5);
	struct call c;

	memset(&c, 0, sizeof(c));
	o.part_size = 65536;
	o.multipart_threshold = 65536;
	tc_init(1, NULL);
	setup(&o);
	push_fault("COMPLETE", "200err", 1);
	push_fault("CREATE", "503", 1);
	put("big", data, n, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(F.by_kind[K_CREATE], 2);
	T_EQ(F.by_kind[K_COMPLETE], 2);
	T_CHECK(find("pfx/big") != NULL);

	/* Complete retried after its answer was lost: the upload is gone, HEAD confirms. */
	memset(&c, 0, sizeof(c));
	teardown();
	setup(&o);
	push_fault("COMPLETE", "lost", 1);
	put("big", data, n, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.size, n);
	T_EQ(F.by_kind[K_COMPLETE], 2);
	T_EQ(F.by_kind[K_HEAD], 1);
	T_EQ(F.by_kind[K_ABORT], 0);
	T_CHECK(find("pfx/big") != NULL);

	/* The same, but the object is not what was uploaded: the 404 stands. */
	memset(&c, 0, sizeof(c));
	teardown();
	setup(&o);
	push_fault("COMPLETE", "lost", 1);
	push_fault("HEAD", "403", 1);
	put("big", data, n, &c);
	run();
	T_EQ(c.err, SL_E_REMOTE);
	T_EQ(c.status, 404);
	T_STR_EQ(c.code, "NoSuchUpload");
	free(data);
	teardown();
}

static void test_hashing_in_steps(void)
{
	struct s3_options o = opts();
	size_t n = 3 * 1024 * 1024 + 5;
	uint8_t *data = pattern(n, 11);
	struct s3_stats st;
	struct call c;

	memset(&c, 0, sizeof(c));
	o.multipart_threshold = 4 << 20;
	tc_init(1, NULL);
	setup(&o);
	put("h", data, n, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(F.bad_sig, 0);
	s3_get_stats(S3, &st);
	T_EQ(st.hashed_bytes, n);
	T_CHECK(find("pfx/h") && find("pfx/h")->len == n);
	free(data);
	teardown();
}

static void test_range(void)
{
	struct s3_options o = opts();
	struct s3_range rg = { 5, 9 }, past = { 10, 1000 }, bad = { 100, 200 };
	struct call c[3];

	memset(c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	store("pfx/r", (const uint8_t *)"0123456789abcdef", 16);
	get("r", &rg, &c[0]);
	get("r", &past, &c[1]);
	get("r", &bad, &c[2]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].status, 206);
	T_CHECK(c[0].body_len == 5 && memcmp(c[0].body, "56789", 5) == 0);
	T_EQ(c[1].err, 0);
	T_CHECK(c[1].body_len == 6 && memcmp(c[1].body, "abcdef", 6) == 0);
	T_EQ(c[2].err, SL_E_REMOTE);
	T_EQ(c[2].status, 416);
	T_STR_EQ(c[2].code, "InvalidRange");
	T_EQ(s3_get(S3, "r", &(struct s3_range){ 9, 5 }, on_done, &c[0], NULL), SL_E_INVALID);
	for (int i = 0; i < 3; i++)
		call_free(&c[i]);

	/* Servers that send more than the range: only the range comes back. */
	for (int mode = 1; mode <= 2; mode++) {
		memset(c, 0, sizeof(c));
		F.range_mode = mode;
		get("r", &rg, &c[0]);
		get("r", &past, &c[1]);
		run();
		T_EQ(c[0].err, 0);
		T_EQ(c[0].status, mode == 1 ? 200 : 206);
		T_CHECK(c[0].body_len == 5 && memcmp(c[0].body, "56789", 5) == 0);
		T_EQ(c[1].err, 0);
		T_CHECK(c[1].body_len == 6 && memcmp(c[1].body, "abcdef", 6) == 0);
		for (int i = 0; i < 2; i++)
			call_free(&c[i]);
	}
	teardown();
}

static void test_delete_many(void)
{
	struct s3_options o = opts();
	const char **keys = calloc(2500, sizeof(*keys));
	char name[32];
	struct call c;
	int i;

	memset(&c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	for (i = 0; i < 2500; i++) {
		snprintf(name, sizeof(name), "%s%04d", i % 1000 == 7 ? "bad" : "d", i);
		keys[i] = strdup(name);
		snprintf(name, sizeof(name), "pfx/%s", keys[i]);
		store(name, (const uint8_t *)"x", 1);
	}
	push_fault("DELMANY", "503", 1);
	T_EQ(s3_delete_many(S3, keys, 2500, on_done, &c, NULL), 0);
	outstanding++;
	run();
	T_EQ(c.err, 0);
	T_EQ(F.delete_batches, 3);
	T_EQ(F.delete_keys_max, 1000);
	T_EQ(F.md5_ok, 3);
	T_EQ(F.md5_bad, 0);
	T_EQ(F.by_kind[K_DELMANY], 4);	/* one retried */
	T_EQ(c.nkey_errors, 3);
	T_EQ(c.ndeleted, 2497);
	T_STR_EQ(c.first_err_key, "bad0007 AccessDenied");
	T_EQ(F.nobjs, 3);
	T_EQ(s3_delete_many(S3, keys, 0, on_done, &c, NULL), SL_E_INVALID);
	for (i = 0; i < 2500; i++)
		free((char *)keys[i]);
	free(keys);
	teardown();
}

static void test_list(void)
{
	struct s3_options o = opts();
	struct s3_list_args a;
	char name[32];
	struct call c[3];
	int i;

	memset(c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	for (i = 0; i < 2500; i++) {
		snprintf(name, sizeof(name), "pfx/obj/%05d", i);
		store(name, (const uint8_t *)"xy", 2);
	}
	store("pfx/other", (const uint8_t *)"z", 1);
	store("elsewhere", (const uint8_t *)"z", 1);
	memset(&a, 0, sizeof(a));
	a.prefix = "obj/";
	T_EQ(s3_list(S3, &a, on_done, &c[0], NULL), 0);
	outstanding++;
	a.one_page = 1;
	a.page_keys = 700;
	T_EQ(s3_list(S3, &a, on_done, &c[1], NULL), 0);
	outstanding++;
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].nobjects, 2500);
	T_EQ(c[0].pages, 3);
	T_EQ(c[0].truncated, 0);
	T_EQ(c[0].sorted, 1);
	T_STR_EQ(c[0].first_key, "obj/00000");
	T_STR_EQ(c[0].last_key, "obj/02499");
	T_EQ(c[1].err, 0);
	T_EQ(c[1].nobjects, 700);
	T_EQ(c[1].pages, 1);
	T_EQ(c[1].truncated, 1);
	T_CHECK(c[1].token[0] != '\0');
	/* The next page from the token. */
	a.token = c[1].token;
	T_EQ(s3_list(S3, &a, on_done, &c[2], NULL), 0);
	outstanding++;
	run();
	T_EQ(c[2].err, 0);
	T_EQ(c[2].nobjects, 700);
	T_STR_EQ(c[2].first_key, "obj/00700");
	/* Everything under the URL's prefix, and a cap. */
	memset(&c[0], 0, sizeof(c[0]));
	memset(&a, 0, sizeof(a));
	a.max_objects = 1500;
	T_EQ(s3_list(S3, &a, on_done, &c[0], NULL), 0);
	outstanding++;
	run();
	T_EQ(c[0].err, SL_E_TOOBIG);
	memset(&c[0], 0, sizeof(c[0]));
	a.max_objects = 0;
	T_EQ(s3_list(S3, &a, on_done, &c[0], NULL), 0);
	outstanding++;
	run();
	T_EQ(c[0].nobjects, 2501);
	T_STR_EQ(c[0].last_key, "other");
	teardown();
}

static void test_creds_wait(void)
{
	struct s3_options o = opts();
	struct call c[2];

	memset(c, 0, sizeof(c));
	tc_init(0, NULL);
	setup(&o);
	loop_timer_set(L, &TC.arrive, 50);
	put("k", "v", 1, &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(F.by_kind[K_PUT], 1);
	T_CHECK(TC.waiters == NULL);
	teardown();

	/* None ever: the request ends at max_total_ms, and leaves no waiter behind. */
	o.max_total_ms = 100;
	tc_init(0, NULL);
	setup(&o);
	put("k", "v", 1, &c[1]);
	run();
	T_EQ(c[1].err, SL_E_TIMEOUT);
	T_EQ(F.requests, 0);
	T_CHECK(TC.waiters == NULL);
	teardown();
}

static void test_session_token(void)
{
	struct s3_options o = opts();
	struct call c;

	memset(&c, 0, sizeof(c));
	tc_init(1, "FQoGZXIvYXdzEXAMPLETOKEN");
	setup(&o);
	put("k", "v", 1, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(F.tokens_seen, 1);
	teardown();
}

static int fake_lookup(const char *host, struct resolve_addrs *out, void *arg)
{
	struct sockaddr_in *a = (struct sockaddr_in *)&out->addr[0];

	memset(out, 0, sizeof(*out));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	out->len[0] = sizeof(*a);
	out->n = 1;
	(*(int *)arg)++;
	return 0;
}

static void test_virtual_hosted(void)
{
	struct s3_options o = opts();
	struct resolve_config rc;
	struct resolver *res;
	int lookups = 0;
	char want[64];
	struct call c;

	memset(&c, 0, sizeof(c));
	memset(&rc, 0, sizeof(rc));
	rc.lookup = fake_lookup;
	rc.lookup_arg = &lookups;
	tc_init(1, NULL);
	L = NULL;
	/* The resolver needs the loop setup_url makes: make the client by hand here. */
	{
		char url[256], errbuf[256];
		struct s3url u;

		L = loop_new();
		fake_start(L);
		res = resolver_new(L, &rc);
		o.resolver = res;
		snprintf(url, sizeof(url), "s3://" BUCKET "/pfx?endpoint=http://s3.test:%u"
			 "&path_style=false", F.port);
		T_EQ(s3url_parse(url, &u, errbuf, sizeof(errbuf)), 0);
		T_EQ(s3_new(L, &u, (struct s3cred *)&TC, &o, &S3), 0);
		outstanding = 0;
		guard_fired = 0;
		loop_timer_init(&guard, on_guard, NULL);
		loop_timer_set(L, &guard, 20000);
	}
	put("k", "v", 1, &c);
	run();
	T_EQ(c.err, 0);
	snprintf(want, sizeof(want), BUCKET ".s3.test:%u", F.port);
	T_STR_EQ(F.last_host, want);
	T_STR_EQ(F.last_path, "/pfx/k");
	T_EQ(lookups, 1);
	s3_free(S3);
	S3 = NULL;
	resolver_free(res);
	fake_stop();
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
}

static struct s3_op *to_cancel;
static struct loop_timer cancel_timer;
static int puts_at_cancel;
static int cancel_after_part;	/* wait until a part reached the server */

static void do_cancel(struct loop *l, void *arg)
{
	if (cancel_after_part && F.by_kind[K_PART] == 0) {
		loop_timer_set(l, &cancel_timer, 10);
		return;
	}
	cancel_after_part = 0;
	if (to_cancel) {
		s3_cancel(S3, to_cancel);
		puts_at_cancel = F.by_kind[K_PUT];
	}
	if (--outstanding == 0)
		loop_stop(l);
}

static void test_cancel(void)
{
	struct s3_options o = opts();
	size_t n = 6 * 65536;
	uint8_t *data = pattern(n, 9);
	struct s3_stats st;
	struct call c[3];
	int i;

	memset(c, 0, sizeof(c));
	o.part_size = 65536;
	o.multipart_threshold = 65536;
	o.backoff_base_ms = 1000;
	o.backoff_cap_ms = 1000;
	tc_init(1, NULL);
	setup(&o);

	/* On the wire (the server stalls), then cancelled: no callback. */
	push_fault("GET", "stall", 1);
	T_EQ(s3_get(S3, "x", NULL, on_done, &c[0], &to_cancel), 0);
	loop_timer_init(&cancel_timer, do_cancel, NULL);
	loop_timer_set(L, &cancel_timer, 50);
	outstanding = 1;
	run();
	T_EQ(c[0].done, 0);
	T_EQ(F.by_kind[K_GET], 1);

	/* Retrying 503s (waiting in backoff, or on the wire), then cancelled: no more attempts. */
	push_fault("PUT", "503", 20);
	T_EQ(s3_put(S3, "y", "v", 1, on_done, &c[1], &to_cancel), 0);
	loop_timer_set(L, &cancel_timer, 100);
	outstanding = 1;
	run();
	T_CHECK(puts_at_cancel >= 1);
	to_cancel = NULL;
	loop_timer_set(L, &cancel_timer, 1200);	/* longer than any backoff here */
	outstanding = 1;
	run();
	T_EQ(c[1].done, 0);
	T_EQ(F.by_kind[K_PUT], puts_at_cancel);
	F.nscript = 0;

	/* A multipart upload with parts on the wire: aborted in the background. */
	F.part_delay_ms = 200;
	T_EQ(s3_put(S3, "z", data, n, on_done, &c[2], &to_cancel), 0);
	cancel_after_part = 1;
	loop_timer_set(L, &cancel_timer, 10);
	outstanding = 1;
	run();
	/* Cancelled before anything was sent: cancel at once. */
	{
		struct s3_op *op;

		T_EQ(s3_head(S3, "w", on_done, &c[0], &op), 0);
		s3_cancel(S3, op);
	}
	for (i = 0; i < 50 && F.by_kind[K_ABORT] == 0; i++) {
		loop_timer_set(L, &cancel_timer, 20);
		to_cancel = NULL;
		outstanding = 1;
		run();
	}
	T_EQ(c[2].done, 0);
	T_EQ(F.by_kind[K_ABORT], 1);
	T_CHECK(F.nups == 1 && F.ups[0].aborted);
	T_EQ(F.by_kind[K_HEAD], 0);
	s3_get_stats(S3, &st);
	T_EQ(st.running, 0);
	T_EQ(c[0].done, 0);
	free(data);
	teardown();
}

static void test_free_running(void)
{
	struct s3_options o = opts();
	struct call c[2];

	memset(c, 0, sizeof(c));
	tc_init(1, NULL);
	setup(&o);
	snprintf(F.def_action, sizeof(F.def_action), "stall");
	T_EQ(s3_get(S3, "a", NULL, on_done, &c[0], NULL), 0);
	T_EQ(s3_put(S3, "b", "v", 1, on_done, &c[1], NULL), 0);
	outstanding = 2;
	s3_free(S3);
	S3 = NULL;
	T_EQ(c[0].done, 1);
	T_EQ(c[0].err, SL_E_CLOSED);
	T_EQ(c[1].done, 1);
	T_EQ(c[1].err, SL_E_CLOSED);
	teardown();
}

int main(void)
{
	log_set_level(getenv("S3_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	T_RUN(test_roundtrip);
	T_RUN(test_host_header);
	T_RUN(test_retry_503_then_success);
	T_RUN(test_giveup_attempts);
	T_RUN(test_giveup_total_time);
	T_RUN(test_stall_then_retry);
	T_RUN(test_4xx_no_retry);
	T_RUN(test_multipart_parallel);
	T_RUN(test_multipart_abort);
	T_RUN(test_multipart_complete_200_error);
	T_RUN(test_hashing_in_steps);
	T_RUN(test_range);
	T_RUN(test_delete_many);
	T_RUN(test_list);
	T_RUN(test_creds_wait);
	T_RUN(test_session_token);
	T_RUN(test_virtual_hosted);
	T_RUN(test_cancel);
	T_RUN(test_free_running);
	return t_done();
}
