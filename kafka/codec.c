/*
 * codec.c - the one Kafka encoder and decoder, driven by the descriptors of
 * msgs.c.  No I/O: bytes in through struct sl_rd, bytes out through struct
 * sl_wr.
 *
 * Wire rules (KIP-482 for the flexible ones):
 *
 *                     non-flexible            flexible
 *   STRING            int16 len, -1 null      uvarint len+1, 0 null
 *   BYTES, RECORDS    int32 len, -1 null      uvarint len+1, 0 null
 *   ARRAY*            int32 count, -1 null    uvarint count+1, 0 null
 *   end of struct     -                       tagged fields: uvarint n, then
 *                                             n x (uvarint tag, uvarint size,
 *                                             size bytes), tags ascending
 *
 * A field with a tag number is tagged in flexible versions and exists in no
 * other encoding (in every message we carry, taggedVersions equals versions
 * and starts at or after the first flexible version).
 *
 * Invariants of decoding, which reads hostile bytes:
 *  1. Every count and length is checked against the bytes left before it is
 *     used; an array is allocated only after count x (smallest element on the
 *     wire) has been found to fit, and the arena's cap bounds the total.
 *  2. Recursion follows the static descriptors only, so its depth is that of
 *     the deepest message (four), whatever the input.
 *  3. A tagged field is decoded from a reader limited to its stated size, so
 *     it cannot consume its neighbours; bytes it leaves are skipped.
 *  4. On error nothing is promised about *out except that every pointer in it
 *     points into the frame or the arena.
 */
#include <string.h>
#include "codec.h"
#include "msgs.h"

static int present(const struct kc_field *f, int ver)
{
	return ver >= f->vmin && ver <= f->vmax;
}

static int nullable(const struct kc_field *f, int ver)
{
	return ver >= f->null_from;
}

static int is_array(uint8_t t)
{
	return t == KC_ARRAY || t == KC_ARRAY_INT32 || t == KC_ARRAY_INT64 ||
	       t == KC_ARRAY_STRING;
}

void kc_defaults(const struct kc_struct *s, void *in)
{
	uint8_t *base = in;

	memset(in, 0, s->size);
	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];
		void *m = base + f->off;

		switch (f->type) {
		case KC_BOOL:    *(int8_t *)m = f->dflt != 0; break;
		case KC_INT8:    *(int8_t *)m = (int8_t)f->dflt; break;
		case KC_INT16:   *(int16_t *)m = (int16_t)f->dflt; break;
		case KC_UINT16:  *(uint16_t *)m = (uint16_t)f->dflt; break;
		case KC_INT32:   *(int32_t *)m = (int32_t)f->dflt; break;
		case KC_INT64:   *(int64_t *)m = f->dflt; break;
		case KC_FLOAT64: *(double *)m = (double)f->dflt; break;
		case KC_STRING:  ((struct kc_str *)m)->len = -1; break;
		case KC_BYTES:   ((struct kc_bytes *)m)->len = -1; break;
		case KC_RECORDS: ((struct kc_records *)m)->len = -1; break;
		case KC_STRUCT:  kc_defaults(f->sub, m); break;
		default:         break;	/* UUID zero, arrays empty */
		}
	}
}

int kc_str_eq(struct kc_str k, const char *s)
{
	size_t n = strlen(s);

	return k.len >= 0 && (size_t)k.len == n && (n == 0 || memcmp(k.p, s, n) == 0);
}

/* ---- decoding ---- */

/*
 * A length or count prefix: -1 for null.  wide selects int32 over int16 in
 * the non-flexible encoding.  Anything below -1, or a compact length that
 * does not fit an int32, is malformed.
 */
static int rd_len(struct sl_rd *r, int flexible, int wide, int32_t *n)
{
	int err;

	if (flexible) {
		uint32_t u;

		if ((err = rd_uvarint(r, &u)))
			return err;
		if (u > (uint32_t)INT32_MAX + 1)
			return SL_E_INVALID;
		*n = (int32_t)(u - 1);
		return 0;
	}
	if (wide) {
		if ((err = rd_i32(r, n)))
			return err;
	} else {
		int16_t v;

		if ((err = rd_i16(r, &v)))
			return err;
		*n = v;
	}
	return *n < -1 ? SL_E_INVALID : 0;
}

/* A string, bytes or records body of n bytes (n -1: null). */
static int rd_span(struct sl_rd *r, int32_t n, const uint8_t **p)
{
	*p = NULL;
	if (n < 0)
		return 0;
	return rd_bytes(r, (size_t)n, p);
}

static int rd_str(struct sl_rd *r, int flexible, struct kc_str *k)
{
	const uint8_t *p;
	int err;

	if ((err = rd_len(r, flexible, 0, &k->len)) || (err = rd_span(r, k->len, &p)))
		return err;
	k->p = (const char *)p;
	return 0;
}

static int decode_struct(const struct kc_struct *s, int ver, int flexible,
			 struct sl_rd *r, struct arena *a, void *out);

static int decode_field(const struct kc_field *f, int ver, int flexible,
			struct sl_rd *r, struct arena *a, uint8_t *base)
{
	void *m = base + f->off;
	int32_t n;
	int err;

	switch (f->type) {
	case KC_BOOL: {
		uint8_t v;

		if ((err = rd_u8(r, &v)))
			return err;
		*(int8_t *)m = v != 0;
		return 0;
	}
	case KC_INT8:    return rd_i8(r, m);
	case KC_INT16:   return rd_i16(r, m);
	case KC_UINT16:  return rd_u16(r, m);
	case KC_INT32:   return rd_i32(r, m);
	case KC_INT64:   return rd_i64(r, m);
	case KC_FLOAT64: {
		uint64_t v;

		if ((err = rd_u64(r, &v)))
			return err;
		memcpy(m, &v, sizeof(v));
		return 0;
	}
	case KC_UUID:    return rd_copy(r, m, 16);
	case KC_STRUCT:  return decode_struct(f->sub, ver, flexible, r, a, m);
	case KC_STRING:
		if ((err = rd_str(r, flexible, m)))
			return err;
		n = ((struct kc_str *)m)->len;
		break;
	case KC_BYTES: {
		struct kc_bytes *b = m;

		if ((err = rd_len(r, flexible, 1, &b->len)) || (err = rd_span(r, b->len, &b->p)))
			return err;
		n = b->len;
		break;
	}
	case KC_RECORDS: {
		struct kc_records *rec = m;

		if ((err = rd_len(r, flexible, 1, &rec->len)) ||
		    (err = rd_span(r, rec->len, &rec->p)))
			return err;
		n = rec->len;
		break;
	}
	default: {			/* the four array types */
		/* The fewest bytes one element can take on the wire. */
		size_t esz, min = f->type == KC_ARRAY_INT32 ? 4 :
				  f->type == KC_ARRAY_INT64 ? 8 :
				  f->type == KC_ARRAY_STRING ? (flexible ? 1 : 2) : 1;
		int32_t *np = (int32_t *)(base + f->n_off);
		uint8_t *elems;

		if ((err = rd_len(r, flexible, 1, &n)))
			return err;
		*np = n;
		if (n < 0)
			break;
		if ((size_t)n > rd_left(r) / min)
			return SL_E_SHORT;
		if (n == 0)
			return 0;
		esz = f->type == KC_ARRAY ? f->sub->size :
		      f->type == KC_ARRAY_INT32 ? sizeof(int32_t) :
		      f->type == KC_ARRAY_INT64 ? sizeof(int64_t) : sizeof(struct kc_str);
		if (!(elems = arena_calloc(a, (size_t)n, esz)))
			return SL_E_NOMEM;
		*(void **)m = elems;
		for (int32_t i = 0; i < n; i++) {
			void *e = elems + (size_t)i * esz;

			switch (f->type) {
			case KC_ARRAY:
				err = decode_struct(f->sub, ver, flexible, r, a, e);
				break;
			case KC_ARRAY_INT32:
				err = rd_i32(r, e);
				break;
			case KC_ARRAY_INT64:
				err = rd_i64(r, e);
				break;
			default:
				err = rd_str(r, flexible, e);
				if (!err && ((struct kc_str *)e)->len < 0)
					err = SL_E_INVALID;	/* elements are never null */
				break;
			}
			if (err)
				return err;
		}
		return 0;
	}
	}
	return n < 0 && !nullable(f, ver) ? SL_E_INVALID : 0;
}

/*
 * The tagged-field section ending a flexible struct.  Fields of s with a
 * matching tag are decoded; unknown tags, and all tags when s is NULL (a
 * request header), are skipped.  Tags must be strictly ascending.
 */
static int decode_tags(const struct kc_struct *s, int ver, struct sl_rd *r,
		       struct arena *a, void *out)
{
	uint32_t count, tag, size;
	int64_t prev = -1;
	int err;

	if ((err = rd_uvarint(r, &count)))
		return err;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *p;
		struct sl_rd sub;

		if ((err = rd_uvarint(r, &tag)) || (err = rd_uvarint(r, &size)))
			return err;
		if ((int64_t)tag <= prev)
			return SL_E_INVALID;
		prev = tag;
		if ((err = rd_bytes(r, size, &p)))
			return err;
		for (uint32_t j = 0; s && j < s->nfields; j++) {
			const struct kc_field *f = &s->fields[j];

			if (f->tag == (int64_t)tag && present(f, ver)) {
				rd_init(&sub, p, size);
				if ((err = decode_field(f, ver, 1, &sub, a, out)))
					return err;
				break;
			}
		}
	}
	return 0;
}

static int decode_struct(const struct kc_struct *s, int ver, int flexible,
			 struct sl_rd *r, struct arena *a, void *out)
{
	int err;

	kc_defaults(s, out);
	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];

		if (!present(f, ver) || f->tag != KV_NOTAG)
			continue;
		if ((err = decode_field(f, ver, flexible, r, a, out)))
			return err;
	}
	return flexible ? decode_tags(s, ver, r, a, out) : 0;
}

int kc_decode(const struct kc_struct *s, int16_t ver, int flexible,
	      struct sl_rd *r, struct arena *a, void *out)
{
	return decode_struct(s, ver, flexible, r, a, out);
}

/* ---- encoding ---- */

static void wr_fail(struct sl_wr *w, int err)
{
	if (!w->err)
		w->err = err;
}

static void wr_len(struct sl_wr *w, int flexible, int wide, int32_t n)
{
	if (flexible)
		wr_uvarint(w, (uint32_t)n + 1);		/* -1 becomes 0: null */
	else if (wide)
		wr_i32(w, n);
	else if (n > INT16_MAX)
		wr_fail(w, SL_E_TOOBIG);
	else
		wr_i16(w, (int16_t)n);
}

/*
 * A string, bytes or records value: null stays null only where the version
 * allows it, otherwise it goes out empty, as arrays do.
 */
static void wr_span(struct sl_wr *w, const struct kc_field *f, int ver, int flexible,
		    int wide, const void *p, int32_t n)
{
	if (n < 0) {
		wr_len(w, flexible, wide, nullable(f, ver) ? -1 : 0);
		return;
	}
	SL_ASSERT(p != NULL || n == 0);
	wr_len(w, flexible, wide, n);
	wr_bytes(w, p, (size_t)n);
}

static void encode_struct(const struct kc_struct *s, int ver, int flexible,
			  const uint8_t *base, struct sl_wr *w);

static void encode_field(const struct kc_field *f, int ver, int flexible,
			 const uint8_t *base, struct sl_wr *w)
{
	const void *m = base + f->off;

	switch (f->type) {
	case KC_BOOL:    wr_u8(w, *(const int8_t *)m != 0); return;
	case KC_INT8:    wr_i8(w, *(const int8_t *)m); return;
	case KC_INT16:   wr_i16(w, *(const int16_t *)m); return;
	case KC_UINT16:  wr_u16(w, *(const uint16_t *)m); return;
	case KC_INT32:   wr_i32(w, *(const int32_t *)m); return;
	case KC_INT64:   wr_i64(w, *(const int64_t *)m); return;
	case KC_FLOAT64: {
		uint64_t v;

		memcpy(&v, m, sizeof(v));
		wr_u64(w, v);
		return;
	}
	case KC_UUID:    wr_bytes(w, m, 16); return;
	case KC_STRUCT:  encode_struct(f->sub, ver, flexible, m, w); return;
	case KC_STRING: {
		const struct kc_str *k = m;

		wr_span(w, f, ver, flexible, 0, k->p, k->len);
		return;
	}
	case KC_BYTES: {
		const struct kc_bytes *b = m;

		wr_span(w, f, ver, flexible, 1, b->p, b->len);
		return;
	}
	case KC_RECORDS: {
		const struct kc_records *rec = m;
		size_t sum = 0;

		if (rec->len < 0 || rec->iovn <= 0) {
			wr_span(w, f, ver, flexible, 1, rec->p, rec->len);
			return;
		}
		wr_len(w, flexible, 1, rec->len);
		for (int32_t i = 0; i < rec->iovn; i++) {
			wr_bytes(w, rec->iov[i].p, rec->iov[i].len);
			sum += rec->iov[i].len;
		}
		SL_ASSERT(sum == (size_t)rec->len);
		return;
	}
	default: {			/* the four array types */
		int32_t n = *(const int32_t *)(base + f->n_off);
		const uint8_t *elems = *(const uint8_t *const *)m;

		if (n < 0) {
			wr_len(w, flexible, 1, nullable(f, ver) ? -1 : 0);
			return;
		}
		SL_ASSERT(elems != NULL || n == 0);
		wr_len(w, flexible, 1, n);
		for (int32_t i = 0; i < n && !w->err; i++) {
			switch (f->type) {
			case KC_ARRAY:
				encode_struct(f->sub, ver, flexible,
					      elems + (size_t)i * f->sub->size, w);
				break;
			case KC_ARRAY_INT32:
				wr_i32(w, ((const int32_t *)elems)[i]);
				break;
			case KC_ARRAY_INT64:
				wr_i64(w, ((const int64_t *)elems)[i]);
				break;
			default: {
				const struct kc_str *k = (const struct kc_str *)elems + i;

				/* Elements are never null on the wire. */
				SL_ASSERT(k->p != NULL || k->len <= 0);
				wr_len(w, flexible, 0, k->len < 0 ? 0 : k->len);
				if (k->len > 0)
					wr_bytes(w, k->p, (size_t)k->len);
				break;
			}
			}
		}
		return;
	}
	}
}

/* Whether a tagged field holds its default and so stays off the wire. */
static int is_default(const struct kc_field *f, int ver, const uint8_t *base)
{
	const void *m = base + f->off;
	static const struct kc_uuid zero;

	if (is_array(f->type))
		return *(const int32_t *)(base + f->n_off) <= 0;
	switch (f->type) {
	case KC_BOOL:    return (*(const int8_t *)m != 0) == (f->dflt != 0);
	case KC_INT8:    return *(const int8_t *)m == f->dflt;
	case KC_INT16:   return *(const int16_t *)m == f->dflt;
	case KC_UINT16:  return *(const uint16_t *)m == f->dflt;
	case KC_INT32:   return *(const int32_t *)m == f->dflt;
	case KC_INT64:   return *(const int64_t *)m == f->dflt;
	case KC_FLOAT64: return *(const double *)m == (double)f->dflt;
	case KC_UUID:    return memcmp(m, &zero, sizeof(zero)) == 0;
	case KC_STRING:  return ((const struct kc_str *)m)->len < 0;
	case KC_BYTES:   return ((const struct kc_bytes *)m)->len < 0;
	case KC_RECORDS: return ((const struct kc_records *)m)->len < 0;
	default:
		for (uint32_t i = 0; i < f->sub->nfields; i++)
			if (present(&f->sub->fields[i], ver) &&
			    !is_default(&f->sub->fields[i], ver, m))
				return 0;
		return 1;
	}
}

/*
 * Tagged fields: each is encoded into a scratch writer first, because its
 * size prefix is a varint whose width is unknown until the value is written.
 */
static void encode_tags(const struct kc_struct *s, int ver, const uint8_t *base,
			struct sl_wr *w)
{
	uint32_t count = 0;

	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];

		count += f->tag != KV_NOTAG && present(f, ver) && !is_default(f, ver, base);
	}
	wr_uvarint(w, count);
	for (uint32_t i = 0; count && i < s->nfields; i++) {
		const struct kc_field *f = &s->fields[i];
		struct sl_wr tw;

		if (f->tag == KV_NOTAG || !present(f, ver) || is_default(f, ver, base))
			continue;
		wr_init(&tw, w->max);
		encode_field(f, ver, 1, base, &tw);
		if (tw.err)
			wr_fail(w, tw.err);
		wr_uvarint(w, (uint32_t)f->tag);
		wr_uvarint(w, (uint32_t)tw.len);
		wr_bytes(w, tw.p, tw.len);
		wr_free(&tw);
	}
}

static void encode_struct(const struct kc_struct *s, int ver, int flexible,
			  const uint8_t *base, struct sl_wr *w)
{
	for (uint32_t i = 0; i < s->nfields && !w->err; i++) {
		const struct kc_field *f = &s->fields[i];

		if (present(f, ver) && f->tag == KV_NOTAG)
			encode_field(f, ver, flexible, base, w);
	}
	if (flexible)
		encode_tags(s, ver, base, w);
}

int kc_encode(const struct kc_struct *s, int16_t ver, int flexible,
	      const void *in, struct sl_wr *w)
{
	encode_struct(s, ver, flexible, in, w);
	return w->err;
}

/* ---- headers ---- */

int kc_decode_request_header(struct sl_rd *r, struct kc_req_hdr *h,
			     const struct kc_api **api)
{
	const struct kc_api *a;
	int err;

	memset(h, 0, sizeof(*h));
	h->client_id = KC_NULL_STR;
	*api = NULL;
	if ((err = rd_i16(r, &h->api_key)) || (err = rd_i16(r, &h->api_version)) ||
	    (err = rd_i32(r, &h->correlation_id)))
		return err;
	*api = a = kc_api_find(h->api_key);
	if (!a || h->api_version < a->vmin || h->api_version > a->vmax)
		return SL_E_NOTFOUND;
	/* client_id kept its int16 length when headers became flexible. */
	if ((err = rd_str(r, 0, &h->client_id)))
		return err;
	return h->api_version >= a->flex_min ? decode_tags(NULL, 0, r, NULL, NULL) : 0;
}

int kc_encode_response_header(struct sl_wr *w, const struct kc_api *api,
			      int16_t version, int32_t correlation_id)
{
	wr_i32(w, correlation_id);
	if (api && api->key != 18 && version >= api->flex_min)
		wr_u8(w, 0);
	return w->err;
}
