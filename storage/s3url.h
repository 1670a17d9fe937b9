/*
 * s3url.h - where objects go: the value of sluice.objects.url.
 *
 *   file:///PATH
 *       a directory on a local file system (tests, single machines).
 *   s3://BUCKET[/PREFIX][?region=R&endpoint=URL&path_style=BOOL]
 *       Without endpoint: AWS S3 in region R (required), over HTTPS on port
 *       443, virtual-hosted: the host is BUCKET.s3.R.amazonaws.com
 *       (amazonaws.com.cn for cn- regions); path_style=true makes it
 *       s3.R.amazonaws.com with the bucket in the path.
 *       With endpoint=http(s)://HOST[:PORT] (an S3-compatible server such as
 *       MinIO, or a test server): path-style by default, region us-east-1
 *       unless given; path_style=false puts the bucket in front of HOST.
 *
 * Rules, so that a typo fails at start-up instead of writing elsewhere:
 *   - BUCKET: 3 to 63 of a-z 0-9 . -, starting and ending with a letter or
 *     digit, no "..", not an IPv4 address.  Virtual-hosted HTTPS refuses
 *     dots (the certificate *.s3.R.amazonaws.com cannot match them).
 *   - PREFIX: segments of A-Z a-z 0-9 ! - _ . * ' ( ) = separated by '/';
 *     leading and trailing '/' are dropped; empty, "." and ".." segments are
 *     refused.  Objects are stored under PREFIX/ (or at the top without one).
 *   - Query: only region, endpoint and path_style, each at most once, values
 *     percent-decoded; path_style is true or false.
 *   - endpoint: scheme http or https, a host name, IPv4 address or [IPv6]
 *     address, an optional port, at most a "/" after it; no user, path, query
 *     or fragment.
 *   - file: the path is absolute and taken literally (no host, no '%', no
 *     query); trailing '/' dropped.
 *
 * s3url_parse() writes a message naming the problem into errbuf ("bucket name
 * 'My_Bucket' is not valid: ..."); the caller puts the key and source in
 * front.  Input quoted in messages is cut short and made printable.
 */
#ifndef SL_S3URL_H
#define SL_S3URL_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"
#include "sigv4.h"

#define S3URL_URL_MAX		2048
#define S3URL_HOST_MAX		255
#define S3URL_BUCKET_MAX	63
#define S3URL_PREFIX_MAX	512
#define S3URL_PATH_MAX		1024
#define S3URL_KEY_MAX		1024	/* S3's limit on a whole key, prefix included */

enum s3url_kind {
	S3URL_FILE = 1,
	S3URL_S3 = 2,
};

struct s3url {
	enum s3url_kind kind;
	/* file: */
	char path[S3URL_PATH_MAX + 1];		/* absolute, no trailing '/' (except "/") */
	/* s3: */
	char bucket[S3URL_BUCKET_MAX + 1];
	char prefix[S3URL_PREFIX_MAX + 1];	/* "" or "a/b": no leading or trailing '/' */
	char region[SIGV4_REGION_MAX + 1];
	int aws;				/* no endpoint: AWS S3 itself */
	int tls;				/* https */
	int path_style;				/* bucket in the path, not the host */
	char host[S3URL_HOST_MAX + 1];		/* to connect to and verify the certificate
						 * against; an IPv6 address without brackets */
	uint16_t port;
	char host_header[S3URL_HOST_MAX + 9];	/* Host: host, [v6], ":port" unless the default */
};

/* Parse url into *out.  SL_E_CONFIG with errbuf filled when it is not valid. */
SL_MUST_CHECK int s3url_parse(const char *url, struct s3url *out, char *errbuf, size_t errlen);
/* 0 if url parses, else SL_E_CONFIG (or SL_E_NOMEM) with why filled: config_objects_url_check. */
int s3url_check(const char *url, char *why, size_t len);

/*
 * Append the request path of object key to w, URI-encoded as S3 signs it:
 * "/" [BUCKET "/" when path-style] [PREFIX "/"] KEY.  The key is raw (not
 * encoded): 1..1024 bytes with the prefix and its '/', no control
 * characters, not starting with '/'.  SL_E_INVALID for a bad key or a file:
 * URL.
 */
SL_MUST_CHECK int s3url_object_path(const struct s3url *u, const char *key, struct sl_wr *w);

/* Append the path of a bucket-level request (ListObjectsV2, DeleteObjects):
 * "/BUCKET" path-style, "/" virtual-hosted. */
SL_MUST_CHECK int s3url_bucket_path(const struct s3url *u, struct sl_wr *w);

/* Append the full (raw) key of key: [PREFIX "/"] KEY; with key "" the listing
 * prefix of everything Sluice stores ([PREFIX "/"]). */
SL_MUST_CHECK int s3url_full_key(const struct s3url *u, const char *key, struct sl_wr *w);

#endif
