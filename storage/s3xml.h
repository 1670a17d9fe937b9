/*
 * s3xml.h - the XML that S3 speaks: a small strict reader, the response
 * documents Sluice uses, and the two request bodies it sends.
 *
 * The reader takes a whole response body (bytes in, no I/O) and builds a
 * tree of elements.  It accepts the XML S3 and S3-compatible servers send and
 * refuses the rest with an error value:
 *   - UTF-8 only (an optional BOM; an XML declaration at the very start),
 *     checked byte by byte; control characters other than tab, CR and LF
 *     are refused, as XML 1.0 refuses them.
 *   - No DTD: "<!DOCTYPE" is refused, so there are no entity declarations,
 *     external entities or entity expansion.  References are the five
 *     predefined entities (&lt; &gt; &amp; &quot; &apos;) and numeric
 *     character references (&#NNN; &#xHH;) naming an XML character; any
 *     other '&' is refused.
 *   - Comments are skipped; CDATA sections are text; processing
 *     instructions are skipped outside the root element and refused inside.
 *   - Attributes are checked and dropped (S3 sends only xmlns); element
 *     names are kept without their namespace prefix.
 *   - An element holds either text or child elements: whitespace between
 *     children is dropped, other text beside children is refused.
 *   - Caps (struct s3xml_limits): document bytes, nesting depth, elements.
 *     A cap is checked before the memory it bounds is allocated.
 *   - End-of-line handling as XML specifies: CR LF and a lone CR read as LF.
 *     Text is otherwise kept exactly (not trimmed): keys are data.
 *
 * Errors: SL_E_PROTO for anything malformed or not the expected document
 * (including a body cut short), SL_E_TOOBIG past a cap, SL_E_NOMEM, and
 * SL_E_REMOTE from the document parsers when the body is an <Error> document
 * instead (S3 can answer 200 OK with one, notably to CompleteMultipartUpload):
 * parse it with s3xml_parse_error().
 *
 * Ownership: each parse fills a caller-provided struct whose strings and
 * arrays it owns; its _free function releases them.  Strings are
 * NUL-terminated UTF-8; a decoded string never holds a NUL byte (&#0; is not
 * an XML character).  Optional fields that were absent are NULL.
 */
#ifndef SL_S3XML_H
#define SL_S3XML_H

#include <stddef.h>
#include <stdint.h>
#include "../kernel/buf.h"
#include "../kernel/err.h"

/* ---- caps ---- */

struct s3xml_limits {
	size_t max_bytes;	/* whole document */
	unsigned max_depth;	/* nesting of elements, root = 1; at most S3XML_DEPTH_HARD */
	size_t max_elements;
};

#define S3XML_DEPTH_HARD	64
/*
 * Defaults: a ListObjectsV2 page holds at most 1000 keys of at most 1024
 * bytes, each escaped at worst six-fold, plus as many common prefixes;
 * 16 MiB and 100,000 elements cover that with room to spare.
 */
#define S3XML_MAX_BYTES		(16u << 20)
#define S3XML_MAX_DEPTH		16
#define S3XML_MAX_ELEMENTS	100000

/* The defaults above; document parsers use them when given NULL limits. */
extern const struct s3xml_limits s3xml_default_limits;

/* ---- the generic reader ---- */

struct s3xml_node {
	const char *name;	/* local name (no prefix); owned by the doc */
	const char *text;	/* decoded text; "" for an element with children */
	size_t text_len;
	int32_t first_child;	/* indices into doc->nodes, -1 for none */
	int32_t next_sibling;
	uint32_t depth;		/* root = 1 */
};

struct s3xml_doc {
	struct s3xml_node *nodes;	/* nodes[0] is the root, in document order */
	size_t nnodes;
	char *strings;			/* every name and text */
};

/* Parse n bytes at p.  lim NULL = defaults.  On error *doc is empty. */
SL_MUST_CHECK int s3xml_parse(const void *p, size_t n, const struct s3xml_limits *lim,
			      struct s3xml_doc *doc);
void s3xml_doc_free(struct s3xml_doc *doc);

/* The first child of parent named name (any name if NULL), or NULL. */
const struct s3xml_node *s3xml_child(const struct s3xml_doc *d, const struct s3xml_node *parent,
				     const char *name);
/* The next sibling of node named name (any name if NULL), or NULL. */
const struct s3xml_node *s3xml_next(const struct s3xml_doc *d, const struct s3xml_node *node,
				    const char *name);

/* ---- S3 documents ---- */

/* <Error>: what S3 says when a request fails. */
struct s3xml_error {
	char *code;		/* "NoSuchKey", "SlowDown", ...; never NULL */
	char *message;		/* NULL if absent, as are the others */
	char *request_id;
	char *resource;
	char *mem_;
};
SL_MUST_CHECK int s3xml_parse_error(const void *p, size_t n, const struct s3xml_limits *lim,
				    struct s3xml_error *out);
void s3xml_error_free(struct s3xml_error *e);

/* One <Contents> of a ListBucketResult. */
struct s3xml_object {
	const char *key;		/* never NULL or "" */
	uint64_t size;
	const char *etag;		/* as sent, quotes included; NULL if absent */
	int64_t last_modified_ms;	/* ms since the epoch; -1 if absent */
};

/*
 * <ListBucketResult> of ListObjectsV2.  When is_truncated, next_token is the
 * continuation token of the next page (never NULL then: a truncated page
 * without one is refused, since paging would otherwise start over forever).
 */
struct s3xml_list {
	struct s3xml_object *objects;
	size_t nobjects;
	const char **prefixes;		/* CommonPrefixes/Prefix, in order */
	size_t nprefixes;
	int is_truncated;
	const char *next_token;		/* NextContinuationToken; NULL if absent */
	int64_t key_count;		/* KeyCount; -1 if absent */
	char *mem_;
};
SL_MUST_CHECK int s3xml_parse_list(const void *p, size_t n, const struct s3xml_limits *lim,
				   struct s3xml_list *out);
void s3xml_list_free(struct s3xml_list *l);

/* <InitiateMultipartUploadResult>: *upload_id gets a malloc'd copy of UploadId. */
SL_MUST_CHECK int s3xml_parse_initiate(const void *p, size_t n, const struct s3xml_limits *lim,
				       char **upload_id);
/* <CompleteMultipartUploadResult>: *etag gets a malloc'd copy of ETag (quotes kept). */
SL_MUST_CHECK int s3xml_parse_complete(const void *p, size_t n, const struct s3xml_limits *lim,
				       char **etag);

/* One <Error> of a DeleteResult: a key that was not deleted. */
struct s3xml_delete_error {
	const char *key;		/* never NULL */
	const char *code;		/* never NULL */
	const char *message;		/* NULL if absent */
};

/* <DeleteResult> of DeleteObjects (with Quiet, only the errors are listed). */
struct s3xml_delete_result {
	const char **deleted;		/* Deleted/Key */
	size_t ndeleted;
	struct s3xml_delete_error *errors;
	size_t nerrors;
	char *mem_;
};
SL_MUST_CHECK int s3xml_parse_delete(const void *p, size_t n, const struct s3xml_limits *lim,
				     struct s3xml_delete_result *out);
void s3xml_delete_result_free(struct s3xml_delete_result *d);

/* ---- writers ---- */

/*
 * Append s[0..n) escaped as XML text: & < > " ' as entities, tab, LF and CR
 * as character references (so no parser folds them).  SL_E_INVALID, and
 * nothing appended, for bytes XML 1.0 cannot carry (other control
 * characters) or for invalid UTF-8.
 */
SL_MUST_CHECK int s3xml_escape(struct sl_wr *w, const char *s, size_t n);

#define S3XML_MAX_PARTS		10000	/* S3's limit on parts of an upload */
#define S3XML_MAX_DELETE	1000	/* S3's limit on keys per DeleteObjects */
#define S3XML_KEY_MAX		1024	/* S3's limit on a key's bytes */

struct s3xml_part {
	uint32_t number;		/* 1..S3XML_MAX_PARTS */
	const char *etag;		/* as UploadPart returned it, quotes included */
};

/*
 * The CompleteMultipartUpload body for parts[0..n): 1 <= n <= 10000, part
 * numbers strictly ascending (S3 refuses other orders), ETags non-empty.
 * SL_E_INVALID otherwise.
 */
SL_MUST_CHECK int s3xml_write_complete(struct sl_wr *w, const struct s3xml_part *parts, size_t n);

/*
 * The DeleteObjects body for keys[0..n): 1 <= n <= 1000, each key 1..1024
 * bytes that s3xml_escape accepts.  quiet: S3 then lists only failures.
 * (S3 also wants a Content-MD5 or checksum header on this request.)
 */
SL_MUST_CHECK int s3xml_write_delete(struct sl_wr *w, const char *const *keys, size_t n, int quiet);

#endif
