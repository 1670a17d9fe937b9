/*
 * sigv4.h - AWS Signature Version 4 for S3 requests, without I/O.
 *
 * The signer turns a description of one HTTP request (method, path, query
 * parameters, headers, payload hash, region, service and the time) into the
 * headers S3 wants: x-amz-date, x-amz-content-sha256, x-amz-security-token
 * (session credentials only) and Authorization.  It reads no clock: the time
 * is a parameter, so tests sign AWS's published examples exactly.
 *
 * The steps, as AWS names them:
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n PayloadHash
 *   StringToSign     = "AWS4-HMAC-SHA256" \n AmzDate \n Scope \n
 *                      hex(SHA256(CanonicalRequest))
 *   Scope            = YYYYMMDD/region/service/aws4_request
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, YYYYMMDD),
 *                      region), service), "aws4_request")
 *   Signature        = hex(HMAC(SigningKey, StringToSign))
 *
 * What each part takes (S3's rules, which differ from other services'):
 *   - path: the path exactly as it goes on the request line, already
 *     URI-encoded once (sigv4_uri_encode with keep_slash, as s3url.c does
 *     for object keys).  The signer checks that it is in that form (only
 *     unreserved bytes, '/' and %XX with upper-case hex) and signs it
 *     verbatim: what is signed is what is sent.  S3 does not normalise
 *     paths, so neither does the signer ("//" and "." stay).
 *   - query: raw (unencoded) name/value pairs.  The canonical query encodes
 *     both (RFC 3986: only A-Z a-z 0-9 - . _ ~ kept), sorts by encoded name
 *     then encoded value, and writes "name=value" joined by '&' ("name=" for
 *     an empty or NULL value).  sigv4_canonical_query() gives the same string
 *     for the request line.
 *   - headers: the request's own headers (Host is required).  Names are
 *     lower-cased; values are trimmed and inner runs of spaces and tabs become
 *     one space; a name given several times becomes one line with the values
 *     joined by ',' in the order given; lines are sorted by name.  Every
 *     header given is signed.  The signer adds x-amz-date,
 *     x-amz-content-sha256 (unless SIGV4_NO_CONTENT_HEADER) and
 *     x-amz-security-token itself, so passing any of those, or Authorization,
 *     is refused.
 *   - payload_hash: sigv4_payload_hash() of the body, or
 *     SIGV4_UNSIGNED_PAYLOAD.
 *
 * The signing key depends only on the secret, the day, the region and the
 * service, so the signer keeps the last one it derived and reuses it until
 * one of those changes (four HMACs saved per request).
 *
 * Secrets: the signer copies the credentials it is given and wipes its
 * copies, the derived key and its scratch buffers when done with them.
 * Nothing here logs.  The canonical request holds the session token when
 * there is one, so it must not be logged either.
 *
 * Errors: SL_E_INVALID for a request the signer will not sign (a bad path,
 * a header it adds itself, a control byte in a value, no Host, a bad payload
 * hash, a time before 1970 or after 9999), SL_E_TOOBIG past a cap below,
 * SL_E_NOMEM.
 */
#ifndef SL_SIGV4_H
#define SL_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"

#define SIGV4_UNSIGNED_PAYLOAD	"UNSIGNED-PAYLOAD"
/* hex(SHA256("")): the payload hash of a request without a body. */
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define SIGV4_DATE_LEN		16	/* "20130524T000000Z" */
#define SIGV4_HEX_LEN		64	/* a SHA-256 in hex */
/* Caps on what a request may carry; S3 requests use a handful of each. */
#define SIGV4_MAX_HEADERS	32	/* headers given by the caller */
#define SIGV4_MAX_PARAMS	32	/* query parameters */
#define SIGV4_NAME_MAX		64	/* bytes in a header name */
#define SIGV4_VALUE_MAX		4096	/* bytes in a header value or a raw query part */
#define SIGV4_PATH_MAX		8192	/* bytes in the encoded path */
#define SIGV4_REGION_MAX	32
#define SIGV4_SERVICE_MAX	32
#define SIGV4_KEYID_MAX		128	/* access key id */
#define SIGV4_SECRET_MAX	128
#define SIGV4_TOKEN_MAX		8192	/* session token */
/*
 * Room for the Authorization value with every cap reached:
 * 28 + 128 + 1 + 8+1+32+1+32+13 + 16 + (32 + 3) * 65 + 12 + 64 < 2900.
 */
#define SIGV4_AUTH_MAX		2944

/* Flags of struct sigv4_request. */
/* Sign the payload hash without an x-amz-content-sha256 header (services
 * other than S3; AWS's generic test suite). */
#define SIGV4_NO_CONTENT_HEADER	0x1u

/* A name and a value, both borrowed NUL-terminated strings. */
struct sigv4_kv {
	const char *name;
	const char *value;
};

/* One request to sign.  Every pointer is borrowed for the call only. */
struct sigv4_request {
	const char *method;		/* "GET", "PUT", ... */
	const char *path;		/* encoded once, as sent: "/test%24file.text" */
	const struct sigv4_kv *query;	/* raw names and values; value NULL = "" */
	size_t nquery;
	const struct sigv4_kv *headers;	/* must include Host */
	size_t nheaders;
	const char *payload_hash;	/* 64 lower-case hex or SIGV4_UNSIGNED_PAYLOAD */
	const char *region;		/* "us-east-1" */
	const char *service;		/* "s3" */
	int64_t now;			/* seconds since the Unix epoch, UTC */
	unsigned flags;			/* SIGV4_* flags */
};

/*
 * What to add to the request.  Send x-amz-date: amz_date,
 * x-amz-content-sha256: the request's payload_hash (unless
 * SIGV4_NO_CONTENT_HEADER), x-amz-security-token: security_token when not
 * NULL, and Authorization: authorization.
 */
struct sigv4_signed {
	char amz_date[SIGV4_DATE_LEN + 1];
	const char *security_token;	/* borrowed from the signer; NULL if none */
	char authorization[SIGV4_AUTH_MAX];
};

/* Credentials and the cached signing key.  Fields are private. */
struct sigv4_signer {
	char *access_key;		/* owned copies */
	char *secret_key;
	char *session_token;		/* NULL without session credentials */
	/* The last signing key and what it was derived for. */
	int key_valid;
	char key_date[9];
	char key_region[SIGV4_REGION_MAX + 1];
	char key_service[SIGV4_SERVICE_MAX + 1];
	uint8_t key[32];
	unsigned long key_derivations;	/* how many keys were derived (tests) */
};

/*
 * Copy the credentials into s.  session_token NULL or "" means long-term
 * credentials.  On error s is left empty (sigv4_signer_free is still safe).
 */
SL_MUST_CHECK int sigv4_signer_init(struct sigv4_signer *s, const char *access_key,
				    const char *secret_key, const char *session_token);
/* Wipe and free the copies and the cached key.  s may be re-initialised. */
void sigv4_signer_free(struct sigv4_signer *s);

/* Sign r with s's credentials; fills *out.  May refresh s's cached key. */
SL_MUST_CHECK int sigv4_sign(struct sigv4_signer *s, const struct sigv4_request *r,
			     struct sigv4_signed *out);

/*
 * The intermediate strings, appended to out (no NUL), for tests and for
 * debugging a SignatureDoesNotMatch (S3 returns its own canonical request in
 * the error).  The canonical request holds the session token: do not log it.
 */
SL_MUST_CHECK int sigv4_canonical_request(const struct sigv4_signer *s,
					  const struct sigv4_request *r, struct sl_wr *out);
SL_MUST_CHECK int sigv4_string_to_sign(const struct sigv4_signer *s,
				       const struct sigv4_request *r, struct sl_wr *out);

/* hex(SHA256(body)) and a NUL into out. */
void sigv4_payload_hash(const void *body, size_t len, char out[SIGV4_HEX_LEN + 1]);

/* "YYYYMMDDTHHMMSSZ" and a NUL for now (seconds, UTC); SL_E_INVALID out of range. */
SL_MUST_CHECK int sigv4_amz_date(int64_t now, char out[SIGV4_DATE_LEN + 1]);

/*
 * Append p[0..n) URI-encoded as SigV4 wants: A-Z a-z 0-9 - . _ ~ kept, every
 * other byte as %XX with upper-case hex; '/' kept when keep_slash (object key
 * paths), encoded otherwise (query names and values).  Never fails on
 * content; returns the writer's error.
 */
int sigv4_uri_encode(struct sl_wr *w, const void *p, size_t n, int keep_slash);

/* Append the canonical query string of q[0..n) (see above); "" when n == 0. */
SL_MUST_CHECK int sigv4_canonical_query(const struct sigv4_kv *q, size_t n, struct sl_wr *out);

#endif
