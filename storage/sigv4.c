/*
 * sigv4.c - AWS Signature Version 4 for S3 (see sigv4.h for the rules).
 *
 * Owns: the canonical request, the string to sign, the signing key cache and
 * the Authorization value.  SHA-256 and HMAC come from BearSSL.
 *
 * Invariants:
 *   1. Every string that reaches the canonical request has been checked
 *      first: the path is in encoded form, header names are tokens, values
 *      and the session token hold no control bytes.  So no input can add a
 *      line to the canonical request, nor a header to what is sent.
 *   2. The cached key is valid exactly for (key_date, key_region,
 *      key_service) under the secret held; sigv4_signer_init and _free clear
 *      it, so a credential change can never sign with a stale key.
 *   3. Every buffer that held a secret, a derived key or the session token is
 *      wiped before it is freed or goes out of scope.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <bearssl.h>
#include "sigv4.h"

#define ALGO "AWS4-HMAC-SHA256"

static const char hexdig[] = "0123456789abcdef";
static const char HEXDIG[] = "0123456789ABCDEF";

static void wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

/* Free a writer that may have held the session token. */
static void wr_wipe_free(struct sl_wr *w)
{
	wipe(w->p, w->cap);
	wr_free(w);
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdig[p[i] >> 4];
		out[2 * i + 1] = hexdig[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	br_sha256_context c;

	br_sha256_init(&c);
	br_sha256_update(&c, p, n);
	br_sha256_out(&c, out);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
	br_hmac_key_context kc;
	br_hmac_context hc;

	br_hmac_key_init(&kc, &br_sha256_vtable, key, klen);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, msg, mlen);
	br_hmac_out(&hc, out);
	wipe(&kc, sizeof(kc));
	wipe(&hc, sizeof(hc));
}

void sigv4_payload_hash(const void *body, size_t len, char out[SIGV4_HEX_LEN + 1])
{
	uint8_t h[32];

	sha256(body, len, h);
	to_hex(h, sizeof(h), out);
}

int sigv4_amz_date(int64_t now, char out[SIGV4_DATE_LEN + 1])
{
	struct tm tm;
	time_t t;

	/* 253402300799 is 9999-12-31T23:59:59Z; later years need five digits. */
	if (now < 0 || now > 253402300799LL)
		return SL_E_INVALID;
	t = (time_t)now;
	if (!gmtime_r(&t, &tm))
		return SL_E_INVALID;
	if (strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
		return SL_E_INVALID;
	return 0;
}

static int unreserved(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int sigv4_uri_encode(struct sl_wr *w, const void *p, size_t n, int keep_slash)
{
	struct sl_rd r;
	uint8_t c;
	char esc[3];

	rd_init(&r, p, n);
	while (rd_u8(&r, &c) == 0) {
		if (unreserved(c) || (keep_slash && c == '/')) {
			wr_u8(w, c);
		} else {
			esc[0] = '%';
			esc[1] = HEXDIG[c >> 4];
			esc[2] = HEXDIG[c & 15];
			wr_bytes(w, esc, 3);
		}
	}
	return w->err;
}

/* ---- checks on what is signed (invariant 1) ---- */

/* The value of an upper-case hex digit, or -1. */
static int hexup(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The path must be exactly what sigv4_uri_encode(keep_slash) produces. */
static int check_path(const char *path)
{
	struct sl_rd r;
	uint8_t c, h[2];
	size_t n;

	if (!path || path[0] != '/')
		return SL_E_INVALID;
	n = strlen(path);
	if (n > SIGV4_PATH_MAX)
		return SL_E_TOOBIG;
	rd_init(&r, path, n);
	while (rd_u8(&r, &c) == 0) {
		if (unreserved(c) || c == '/')
			continue;
		if (c != '%' || rd_copy(&r, h, 2) != 0 || hexup(h[0]) < 0 || hexup(h[1]) < 0)
			return SL_E_INVALID;
		/* An escaped unreserved byte or '/' is not what the encoder makes. */
		c = (uint8_t)(hexup(h[0]) << 4 | hexup(h[1]));
		if (unreserved(c) || c == '/')
			return SL_E_INVALID;
	}
	return 0;
}

/* RFC 9110 token characters. */
static int is_tchar(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int check_token(const char *s, size_t max)
{
	size_t i;

	if (!s || !s[0])
		return SL_E_INVALID;
	for (i = 0; s[i]; i++) {
		if (i >= max)
			return SL_E_TOOBIG;
		if (!is_tchar((uint8_t)s[i]))
			return SL_E_INVALID;
	}
	return 0;
}

/* A header value: no control bytes but tab (no CR or LF above all). */
static int check_value(const char *s, size_t max)
{
	size_t i;
	uint8_t c;

	if (!s)
		return SL_E_INVALID;
	for (i = 0; s[i]; i++) {
		if (i >= max)
			return SL_E_TOOBIG;
		c = (uint8_t)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SL_E_INVALID;
	}
	return 0;
}

/* Region and service: lower-case letters, digits and '-'. */
static int check_scope_part(const char *s, size_t max)
{
	size_t i;
	char c;

	if (!s || !s[0])
		return SL_E_INVALID;
	for (i = 0; s[i]; i++) {
		if (i >= max)
			return SL_E_TOOBIG;
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return SL_E_INVALID;
	}
	return 0;
}

static int check_payload_hash(const char *h)
{
	size_t i;

	if (!h)
		return SL_E_INVALID;
	if (strcmp(h, SIGV4_UNSIGNED_PAYLOAD) == 0)
		return 0;
	for (i = 0; i < SIGV4_HEX_LEN; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return SL_E_INVALID;
	return h[i] == '\0' ? 0 : SL_E_INVALID;
}

/* A credential string: printable ASCII, none of the separators of the
 * Authorization value, at most max bytes. */
static int check_cred(const char *s, size_t max, int allow_sep)
{
	size_t i;
	uint8_t c;

	if (!s || !s[0])
		return SL_E_INVALID;
	for (i = 0; s[i]; i++) {
		if (i >= max)
			return SL_E_TOOBIG;
		c = (uint8_t)s[i];
		if (c <= 0x20 || c >= 0x7f)
			return SL_E_INVALID;
		if (!allow_sep && (c == '/' || c == ',' || c == '='))
			return SL_E_INVALID;
	}
	return 0;
}

/* ---- the signer ---- */

static void free_secret(char **p)
{
	if (*p) {
		wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void sigv4_signer_free(struct sigv4_signer *s)
{
	free_secret(&s->access_key);
	free_secret(&s->secret_key);
	free_secret(&s->session_token);
	wipe(s, sizeof(*s));
}

int sigv4_signer_init(struct sigv4_signer *s, const char *access_key,
		      const char *secret_key, const char *session_token)
{
	int err;

	memset(s, 0, sizeof(*s));
	if ((err = check_cred(access_key, SIGV4_KEYID_MAX, 0)) != 0 ||
	    (err = check_cred(secret_key, SIGV4_SECRET_MAX, 1)) != 0)
		return err;
	if (session_token && session_token[0] &&
	    (err = check_cred(session_token, SIGV4_TOKEN_MAX, 1)) != 0)
		return err;
	s->access_key = strdup(access_key);
	s->secret_key = strdup(secret_key);
	if (session_token && session_token[0])
		s->session_token = strdup(session_token);
	if (!s->access_key || !s->secret_key ||
	    (session_token && session_token[0] && !s->session_token)) {
		sigv4_signer_free(s);
		return SL_E_NOMEM;
	}
	return 0;
}

/* The signing key for (date, region, service): from the cache or derived. */
static void signing_key(struct sigv4_signer *s, const char *date8, const char *region,
			const char *service, uint8_t key[32])
{
	char k0[4 + SIGV4_SECRET_MAX];
	uint8_t a[32], b[32];
	size_t slen;

	if (s->key_valid && strcmp(s->key_date, date8) == 0 &&
	    strcmp(s->key_region, region) == 0 && strcmp(s->key_service, service) == 0) {
		memcpy(key, s->key, 32);
		return;
	}
	slen = strlen(s->secret_key);	/* <= SIGV4_SECRET_MAX, checked at init */
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, s->secret_key, slen);
	hmac(k0, 4 + slen, date8, 8, a);
	hmac(a, 32, region, strlen(region), b);
	hmac(b, 32, service, strlen(service), a);
	hmac(a, 32, "aws4_request", 12, s->key);
	wipe(k0, sizeof(k0));
	wipe(a, sizeof(a));
	wipe(b, sizeof(b));
	memcpy(s->key_date, date8, 9);
	strcpy(s->key_region, region);		/* lengths checked by check_request */
	strcpy(s->key_service, service);
	s->key_valid = 1;
	s->key_derivations++;
	memcpy(key, s->key, 32);
}

/* ---- canonical query ---- */

struct qent {
	size_t noff, nlen, voff, vlen;	/* encoded name and value in the scratch writer */
};

static int span_cmp(const uint8_t *base, size_t ao, size_t al, size_t bo, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(base + ao, base + bo, n) : 0;

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static int qent_cmp(const uint8_t *base, const struct qent *a, const struct qent *b)
{
	int c = span_cmp(base, a->noff, a->nlen, b->noff, b->nlen);

	return c ? c : span_cmp(base, a->voff, a->vlen, b->voff, b->vlen);
}

int sigv4_canonical_query(const struct sigv4_kv *q, size_t n, struct sl_wr *out)
{
	struct qent ent[SIGV4_MAX_PARAMS], t;
	struct sl_wr tmp;
	size_t i, j, vl;
	const char *v;
	int err = 0;

	if (n > SIGV4_MAX_PARAMS)
		return SL_E_TOOBIG;
	wr_init(&tmp, 0);
	for (i = 0; i < n; i++) {
		if (!q[i].name || !q[i].name[0]) {
			err = SL_E_INVALID;
			goto out;
		}
		v = q[i].value ? q[i].value : "";
		vl = strlen(v);
		if (strlen(q[i].name) > SIGV4_VALUE_MAX || vl > SIGV4_VALUE_MAX) {
			err = SL_E_TOOBIG;
			goto out;
		}
		ent[i].noff = tmp.len;
		sigv4_uri_encode(&tmp, q[i].name, strlen(q[i].name), 0);
		ent[i].nlen = tmp.len - ent[i].noff;
		ent[i].voff = tmp.len;
		sigv4_uri_encode(&tmp, v, vl, 0);
		ent[i].vlen = tmp.len - ent[i].voff;
	}
	if ((err = tmp.err) != 0)
		goto out;
	/* Insertion sort: at most SIGV4_MAX_PARAMS entries. */
	for (i = 1; i < n; i++) {
		t = ent[i];
		for (j = i; j > 0 && qent_cmp(tmp.p, &ent[j - 1], &t) > 0; j--)
			ent[j] = ent[j - 1];
		ent[j] = t;
	}
	for (i = 0; i < n; i++) {
		if (i)
			wr_u8(out, '&');
		wr_bytes(out, tmp.p + ent[i].noff, ent[i].nlen);
		wr_u8(out, '=');
		wr_bytes(out, tmp.p + ent[i].voff, ent[i].vlen);
	}
	err = out->err;
out:
	wr_free(&tmp);
	return err;
}

/* ---- canonical headers ---- */

struct hent {
	char name[SIGV4_NAME_MAX + 1];	/* lower-cased */
	const char *value;
	size_t order;			/* position given, to keep repeated values in order */
};

/* Headers the signer adds itself, which the caller may not pass. */
static const char *const added[] = {
	"x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization",
};

static int hent_cmp(const struct hent *a, const struct hent *b)
{
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Append a value trimmed, with inner runs of spaces and tabs made one space. */
static void put_trimmed(struct sl_wr *w, const char *v)
{
	struct sl_rd r;
	uint8_t c;
	int pending = 0, started = 0;

	rd_init(&r, v, strlen(v));
	while (rd_u8(&r, &c) == 0) {
		if (c == ' ' || c == '\t') {
			pending = started;
			continue;
		}
		if (pending)
			wr_u8(w, ' ');
		pending = 0;
		started = 1;
		wr_u8(w, c);
	}
}

/*
 * Collect, check and sort the headers to sign: the caller's and the ones the
 * signer adds.  *n gets the count.
 */
static int collect_headers(const struct sigv4_signer *s, const struct sigv4_request *r,
			   const char *amz_date, struct hent *h, size_t *n)
{
	size_t i, j, k, count = 0;
	int err, host = 0;
	struct hent t;

	if (r->nheaders > SIGV4_MAX_HEADERS)
		return SL_E_TOOBIG;
	if (r->nheaders && !r->headers)
		return SL_E_INVALID;
	for (i = 0; i < r->nheaders; i++) {
		if ((err = check_token(r->headers[i].name, SIGV4_NAME_MAX)) != 0 ||
		    (err = check_value(r->headers[i].value, SIGV4_VALUE_MAX)) != 0)
			return err;
		for (j = 0; r->headers[i].name[j]; j++) {
			char c = r->headers[i].name[j];

			h[count].name[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		h[count].name[j] = '\0';
		for (k = 0; k < sizeof(added) / sizeof(added[0]); k++)
			if (strcmp(h[count].name, added[k]) == 0)
				return SL_E_INVALID;
		if (strcmp(h[count].name, "host") == 0)
			host = 1;
		h[count].value = r->headers[i].value;
		h[count].order = count;
		count++;
	}
	if (!host)
		return SL_E_INVALID;
	strcpy(h[count].name, "x-amz-date");
	h[count].value = amz_date;
	h[count].order = count;
	count++;
	if (!(r->flags & SIGV4_NO_CONTENT_HEADER)) {
		strcpy(h[count].name, "x-amz-content-sha256");
		h[count].value = r->payload_hash;
		h[count].order = count;
		count++;
	}
	if (s->session_token) {
		strcpy(h[count].name, "x-amz-security-token");
		h[count].value = s->session_token;
		h[count].order = count;
		count++;
	}
	for (i = 1; i < count; i++) {
		t = h[i];
		for (j = i; j > 0 && hent_cmp(&h[j - 1], &t) > 0; j--)
			h[j] = h[j - 1];
		h[j] = t;
	}
	*n = count;
	return 0;
}

/* Append the signed header names, ';'-separated, each once. */
static void put_signed_headers(struct sl_wr *w, const struct hent *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i && strcmp(h[i].name, h[i - 1].name) == 0)
			continue;
		if (i)
			wr_u8(w, ';');
		wr_bytes(w, h[i].name, strlen(h[i].name));
	}
}

static int check_request(const struct sigv4_request *r)
{
	int err;

	if (!r->method || check_token(r->method, 16) != 0)
		return SL_E_INVALID;
	if ((err = check_path(r->path)) != 0 ||
	    (err = check_payload_hash(r->payload_hash)) != 0 ||
	    (err = check_scope_part(r->region, SIGV4_REGION_MAX)) != 0 ||
	    (err = check_scope_part(r->service, SIGV4_SERVICE_MAX)) != 0)
		return err;
	if (r->nquery && !r->query)
		return SL_E_INVALID;
	return 0;
}

/*
 * The canonical request into cr, the signed header list into sh (may be
 * NULL) and the amz date into amz_date.
 */
static int build_canonical(const struct sigv4_signer *s, const struct sigv4_request *r,
			   char amz_date[SIGV4_DATE_LEN + 1], struct sl_wr *cr, struct sl_wr *sh)
{
	struct hent h[SIGV4_MAX_HEADERS + 3];
	size_t i, n;
	int err;

	if ((err = check_request(r)) != 0 || (err = sigv4_amz_date(r->now, amz_date)) != 0 ||
	    (err = collect_headers(s, r, amz_date, h, &n)) != 0)
		return err;
	wr_bytes(cr, r->method, strlen(r->method));
	wr_u8(cr, '\n');
	wr_bytes(cr, r->path, strlen(r->path));
	wr_u8(cr, '\n');
	if ((err = sigv4_canonical_query(r->query, r->nquery, cr)) != 0)
		return err;
	wr_u8(cr, '\n');
	for (i = 0; i < n; i++) {
		if (i && strcmp(h[i].name, h[i - 1].name) == 0) {
			/* A repeated name: one line, values joined by ','. */
			if (!cr->err)
				cr->len--;	/* the '\n' just written */
			wr_u8(cr, ',');
		} else {
			wr_bytes(cr, h[i].name, strlen(h[i].name));
			wr_u8(cr, ':');
		}
		put_trimmed(cr, h[i].value);
		wr_u8(cr, '\n');
	}
	wr_u8(cr, '\n');
	put_signed_headers(cr, h, n);
	wr_u8(cr, '\n');
	wr_bytes(cr, r->payload_hash, strlen(r->payload_hash));
	if (sh)
		put_signed_headers(sh, h, n);
	if (cr->err)
		return cr->err;
	return sh ? sh->err : 0;
}

/* Scope without the access key: "YYYYMMDD/region/service/aws4_request". */
static void put_scope(struct sl_wr *w, const char *amz_date, const struct sigv4_request *r)
{
	wr_bytes(w, amz_date, 8);
	wr_u8(w, '/');
	wr_bytes(w, r->region, strlen(r->region));
	wr_u8(w, '/');
	wr_bytes(w, r->service, strlen(r->service));
	wr_bytes(w, "/aws4_request", 13);
}

static void put_sts(struct sl_wr *w, const char *amz_date, const struct sigv4_request *r,
		    const struct sl_wr *cr)
{
	uint8_t h[32];
	char hex[SIGV4_HEX_LEN + 1];

	sha256(cr->p, cr->len, h);
	to_hex(h, sizeof(h), hex);
	wr_bytes(w, ALGO "\n", sizeof(ALGO));
	wr_bytes(w, amz_date, SIGV4_DATE_LEN);
	wr_u8(w, '\n');
	put_scope(w, amz_date, r);
	wr_u8(w, '\n');
	wr_bytes(w, hex, SIGV4_HEX_LEN);
}

int sigv4_canonical_request(const struct sigv4_signer *s, const struct sigv4_request *r,
			    struct sl_wr *out)
{
	char amz_date[SIGV4_DATE_LEN + 1];

	return build_canonical(s, r, amz_date, out, NULL);
}

int sigv4_string_to_sign(const struct sigv4_signer *s, const struct sigv4_request *r,
			 struct sl_wr *out)
{
	char amz_date[SIGV4_DATE_LEN + 1];
	struct sl_wr cr;
	int err;

	wr_init(&cr, 0);
	if ((err = build_canonical(s, r, amz_date, &cr, NULL)) == 0) {
		put_sts(out, amz_date, r, &cr);
		err = out->err;
	}
	wr_wipe_free(&cr);
	return err;
}

int sigv4_sign(struct sigv4_signer *s, const struct sigv4_request *r, struct sigv4_signed *out)
{
	struct sl_wr cr, sh, sts, auth;
	uint8_t key[32], sig[32];
	char date8[9], hex[SIGV4_HEX_LEN + 1];
	int err;

	memset(out, 0, sizeof(*out));
	if (!s->access_key || !s->secret_key)
		return SL_E_INVALID;
	wr_init(&cr, 0);
	wr_init(&sh, 0);
	wr_init(&sts, 0);
	wr_init(&auth, SIGV4_AUTH_MAX - 1);
	if ((err = build_canonical(s, r, out->amz_date, &cr, &sh)) != 0)
		goto out;
	put_sts(&sts, out->amz_date, r, &cr);
	if ((err = sts.err) != 0)
		goto out;
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';
	signing_key(s, date8, r->region, r->service, key);
	hmac(key, sizeof(key), sts.p, sts.len, sig);
	to_hex(sig, sizeof(sig), hex);

	wr_bytes(&auth, ALGO " Credential=", sizeof(ALGO) + 11);
	wr_bytes(&auth, s->access_key, strlen(s->access_key));
	wr_u8(&auth, '/');
	put_scope(&auth, out->amz_date, r);
	wr_bytes(&auth, ", SignedHeaders=", 16);
	wr_bytes(&auth, sh.p, sh.len);
	wr_bytes(&auth, ", Signature=", 12);
	wr_bytes(&auth, hex, SIGV4_HEX_LEN);
	if ((err = auth.err) != 0)
		goto out;
	memcpy(out->authorization, auth.p, auth.len);
	out->authorization[auth.len] = '\0';
	out->security_token = s->session_token;
out:
	wipe(key, sizeof(key));
	wr_wipe_free(&cr);
	wr_free(&sh);
	wr_free(&sts);
	wr_free(&auth);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}
