/*
 * codec.h - Kafka messages described once, as data.
 *
 * Each request and response body is described by X-macro field lists in
 * kafka/msgs.h, one list per struct, with the columns
 *
 *     X(TYPE, name, vmin, vmax, null_from, tag, dflt, sub)
 *
 *   TYPE       BOOL INT8 INT16 UINT16 INT32 INT64 FLOAT64 UUID STRING BYTES
 *              RECORDS STRUCT ARRAY ARRAY_INT32 ARRAY_INT64 ARRAY_STRING
 *   name       the Kafka JSON field name in snake_case (TopicData -> topic_data)
 *   vmin,vmax  versions the field exists in (KV_MAX for "and later")
 *   null_from  first version where it is nullable, KV_NONULL if never
 *   tag        tagged-field number in flexible versions, or KV_NOTAG
 *   dflt       value when absent from the version or the tags (integers/bools)
 *   sub        for STRUCT and ARRAY: the element struct's name, else `_`
 *
 * The same list generates the C struct (msgs.h) and the descriptor table
 * (msgs.c) that kc_decode() and kc_encode() walk.  No code path is written
 * per version: versions only select which fields are on the wire and whether
 * the flexible (compact, tagged) encoding is used.
 *
 * C representation of each TYPE, as a struct member called `name`:
 *   BOOL          int8_t (0 or 1)
 *   INTn/UINT16   the matching <stdint.h> type; FLOAT64 double
 *   UUID          struct kc_uuid
 *   STRING        struct kc_str        (len -1 = null)
 *   BYTES         struct kc_bytes      (len -1 = null)
 *   RECORDS       struct kc_records    (len -1 = null)
 *   STRUCT        struct sub name;
 *   ARRAY         struct sub *name; int32_t name_n;   (name_n -1 = null)
 *   ARRAY_INT32   int32_t *name;    int32_t name_n;
 *   ARRAY_INT64   int64_t *name;    int32_t name_n;
 *   ARRAY_STRING  struct kc_str *name; int32_t name_n;
 *
 * Decoding borrows: kc_str, kc_bytes and kc_records point into the request
 * frame, which must outlive the decoded struct.  Arrays are allocated from
 * the caller's arena; a count read from the wire is checked against the
 * bytes left in the frame before anything is allocated (every element takes
 * at least one byte), and the arena's cap bounds the total.  Fields absent
 * from the version take dflt (integers), null (strings, bytes, records) or an
 * empty array (n = 0).  Unknown tagged fields are skipped.
 *
 * Encoding writes the fields present in the version; in flexible versions a
 * tagged field is written only when it differs from its default, in
 * ascending tag order, and every struct ends with its tagged-field section.
 */
#ifndef SL_KAFKA_CODEC_H
#define SL_KAFKA_CODEC_H

#include <stdint.h>
#include <stddef.h>
#include "../kernel/buf.h"
#include "../kernel/arena.h"

#define KV_MAX    127
#define KV_NONULL 127
#define KV_NOTAG  (-1)

struct kc_uuid { uint8_t b[16]; };
struct kc_str { const char *p; int32_t len; };		/* not NUL-terminated */
struct kc_bytes { const uint8_t *p; int32_t len; };
/*
 * Records: either one contiguous span (p, len) or, when encoding a response
 * assembled from stored batches, a list of spans (iov, iovn) whose lengths sum
 * to len.  The encoder copies the spans; it never keeps them.
 */
struct kc_records {
	const uint8_t *p;
	int32_t len;
	const struct span *iov;
	int32_t iovn;
};

enum kc_type {
	KC_BOOL, KC_INT8, KC_INT16, KC_UINT16, KC_INT32, KC_INT64, KC_FLOAT64,
	KC_UUID, KC_STRING, KC_BYTES, KC_RECORDS, KC_STRUCT, KC_ARRAY,
	KC_ARRAY_INT32, KC_ARRAY_INT64, KC_ARRAY_STRING
};

struct kc_struct;

struct kc_field {
	const char *name;
	uint8_t type;			/* enum kc_type */
	int8_t vmin, vmax;
	int8_t null_from;
	int16_t tag;			/* KV_NOTAG or the tag number */
	int64_t dflt;
	uint32_t off;			/* offsetof the member */
	uint32_t n_off;			/* offsetof name_n for arrays */
	const struct kc_struct *sub;	/* STRUCT and ARRAY elements */
};

struct kc_struct {
	const char *name;
	const struct kc_field *fields;
	uint32_t nfields;
	uint32_t size;			/* sizeof the C struct */
};

/*
 * Decode one body of struct s at version ver into out (s->size bytes, which
 * this zeroes first).  flexible selects the compact/tagged encoding.
 * Returns 0, SL_E_SHORT, SL_E_INVALID, SL_E_TOOBIG or SL_E_NOMEM (arena cap).
 * On error *out is partially filled and must not be used.
 */
SL_MUST_CHECK int kc_decode(const struct kc_struct *s, int16_t ver, int flexible,
			    struct sl_rd *r, struct arena *a, void *out);

/* Encode in as struct s at version ver; returns 0 or w->err. */
SL_MUST_CHECK int kc_encode(const struct kc_struct *s, int16_t ver, int flexible,
			    const void *in, struct sl_wr *w);

/* Set every field of in (s->size bytes) to its default, recursively for STRUCT. */
void kc_defaults(const struct kc_struct *s, void *in);

/* Helpers for handlers. */
static inline struct kc_str kc_str_of(const char *s, int32_t len)
{
	struct kc_str k = { s, len };
	return k;
}
#define KC_NULL_STR ((struct kc_str){ NULL, -1 })
/* 1 if k equals the NUL-terminated s (null equals nothing). */
int kc_str_eq(struct kc_str k, const char *s);

/*
 * Request and response headers.  The API table (struct kc_api, kc_apis[],
 * kc_api_find) lives in msgs.h.
 */
struct kc_api;

struct kc_req_hdr {
	int16_t api_key, api_version;
	int32_t correlation_id;
	struct kc_str client_id;	/* borrowed from the frame; len -1 = null */
};

/*
 * Decode the header of one request frame (the bytes after the 4-byte size).
 * api_key, api_version and correlation_id are read first; if the key is one
 * of kc_apis[] and the version in its range, client_id follows (a nullable
 * int16-length string, never compact, even in header v2) and, for flexible
 * versions, the header's tagged fields, which are skipped.
 *
 * Returns 0 with *api set and r positioned at the body.  Returns SL_E_NOTFOUND
 * when the key is unknown or the version out of range: the three leading
 * fields are filled so the caller can still answer, and *api is the key's row
 * if the key is known (NULL if not), r positioned after correlation_id.
 * SL_E_SHORT or SL_E_INVALID for a malformed header.
 */
SL_MUST_CHECK int kc_decode_request_header(struct sl_rd *r, struct kc_req_hdr *h,
					   const struct kc_api **api);

/*
 * Response header: the correlation id, then an empty tagged-field section if
 * the response is flexible, except for ApiVersions, whose responses always use
 * header v0 so a client can read them before it knows our versions.
 * Returns 0 or w->err.
 */
SL_MUST_CHECK int kc_encode_response_header(struct sl_wr *w, const struct kc_api *api,
					    int16_t version, int32_t correlation_id);

#endif
