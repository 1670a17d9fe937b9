/*
 * buf.h - the one bounds-checked cursor for all parsing and serialising.
 *
 * Every read of peer bytes (Kafka frames, HTTP, XML, WAL records, user-data)
 * goes through struct sl_rd; every serialisation through struct sl_wr.  No
 * other code does pointer arithmetic on bytes that came from outside.
 *
 * Reader: borrows the bytes it reads; nothing is copied.  Each rd_* call
 * either consumes exactly what it reports and returns 0, or consumes nothing
 * and returns SL_E_SHORT (input ended) or SL_E_INVALID (bad encoding).
 * Integers are big-endian (network order) unless the name says otherwise.
 *
 * Writer: owns a heap buffer that grows up to w->max bytes (0 = no cap).  Once
 * a write fails the writer is poisoned: w->err holds the first error and every
 * later write is a no-op returning it, so a serialiser may check only at its
 * end.  Length prefixes are reserved with wr_reserve() and filled with
 * wr_patch_*() once the length is known.  The caller frees with wr_free() or
 * takes the bytes with wr_take().
 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

/* A borrowed run of bytes: what storage lends and the codec writes out. */
struct span {
	const uint8_t *p;
	size_t len;
};

struct sl_rd {
	const uint8_t *p;	/* borrowed; valid as long as the caller says */
	size_t len;
	size_t off;
};

static inline void rd_init(struct sl_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

static inline size_t rd_left(const struct sl_rd *r)
{
	return r->len - r->off;
}

SL_MUST_CHECK int rd_u8(struct sl_rd *r, uint8_t *v);
SL_MUST_CHECK int rd_i8(struct sl_rd *r, int8_t *v);
SL_MUST_CHECK int rd_i16(struct sl_rd *r, int16_t *v);
SL_MUST_CHECK int rd_u16(struct sl_rd *r, uint16_t *v);
SL_MUST_CHECK int rd_i32(struct sl_rd *r, int32_t *v);
SL_MUST_CHECK int rd_u32(struct sl_rd *r, uint32_t *v);
SL_MUST_CHECK int rd_i64(struct sl_rd *r, int64_t *v);
SL_MUST_CHECK int rd_u64(struct sl_rd *r, uint64_t *v);
SL_MUST_CHECK int rd_u32le(struct sl_rd *r, uint32_t *v);
SL_MUST_CHECK int rd_u64le(struct sl_rd *r, uint64_t *v);
/* Protobuf base-128 unsigned varint; at most 5 bytes for 32 bits, 10 for 64. */
SL_MUST_CHECK int rd_uvarint(struct sl_rd *r, uint32_t *v);
SL_MUST_CHECK int rd_uvarlong(struct sl_rd *r, uint64_t *v);
/* Zig-zag signed varints (Kafka's VARINT and VARLONG). */
SL_MUST_CHECK int rd_varint(struct sl_rd *r, int32_t *v);
SL_MUST_CHECK int rd_varlong(struct sl_rd *r, int64_t *v);
/* Borrow n bytes: *p points into the reader's buffer. */
SL_MUST_CHECK int rd_bytes(struct sl_rd *r, size_t n, const uint8_t **p);
SL_MUST_CHECK int rd_skip(struct sl_rd *r, size_t n);
/* Copy n bytes out. */
SL_MUST_CHECK int rd_copy(struct sl_rd *r, void *dst, size_t n);

struct sl_wr {
	uint8_t *p;		/* owned; NULL until the first write */
	size_t len;		/* bytes written */
	size_t cap;		/* bytes allocated */
	size_t max;		/* cap on len, 0 = none */
	int err;		/* first error, 0 if none */
};

static inline void wr_init(struct sl_wr *w, size_t max)
{
	w->p = NULL;
	w->len = w->cap = 0;
	w->max = max;
	w->err = 0;
}

/* Make room for n more bytes; 0 or the writer's error. */
SL_MUST_CHECK int wr_ensure(struct sl_wr *w, size_t n);
/*
 * Room for n more bytes, known to be written soon: allocated exactly (no
 * doubling), and when that adds WR_POPULATE_MIN bytes or more, the new
 * pages are mapped in one call rather than by one fault each as they are
 * first written (a fault per 4 KiB page is most of the cost of filling a
 * fresh multi-megabyte buffer).  Contents are unchanged; 0 or an error.
 */
#define WR_POPULATE_MIN ((size_t)256 << 10)
SL_MUST_CHECK int wr_prepare(struct sl_wr *w, size_t n);
int wr_u8(struct sl_wr *w, uint8_t v);
int wr_i8(struct sl_wr *w, int8_t v);
int wr_i16(struct sl_wr *w, int16_t v);
int wr_u16(struct sl_wr *w, uint16_t v);
int wr_i32(struct sl_wr *w, int32_t v);
int wr_u32(struct sl_wr *w, uint32_t v);
int wr_i64(struct sl_wr *w, int64_t v);
int wr_u64(struct sl_wr *w, uint64_t v);
int wr_u32le(struct sl_wr *w, uint32_t v);
int wr_u64le(struct sl_wr *w, uint64_t v);
int wr_uvarint(struct sl_wr *w, uint32_t v);
int wr_uvarlong(struct sl_wr *w, uint64_t v);
int wr_varint(struct sl_wr *w, int32_t v);
int wr_varlong(struct sl_wr *w, int64_t v);
int wr_bytes(struct sl_wr *w, const void *p, size_t n);
int wr_zero(struct sl_wr *w, size_t n);
/* Reserve n bytes at the current end; their offset goes to *at. */
int wr_reserve(struct sl_wr *w, size_t n, size_t *at);
/* Overwrite already-written bytes at offset at (must lie within len). */
void wr_patch_i32(struct sl_wr *w, size_t at, int32_t v);
void wr_patch_u32(struct sl_wr *w, size_t at, uint32_t v);
void wr_patch_i64(struct sl_wr *w, size_t at, int64_t v);
/* Give up ownership of the bytes; the caller free()s the result. */
uint8_t *wr_take(struct sl_wr *w, size_t *len);
void wr_free(struct sl_wr *w);

/* Big-endian loads and stores on memory the caller has bounds-checked. */
static inline uint32_t sl_load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void sl_store_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint64_t sl_load_be64(const uint8_t *p)
{
	return (uint64_t)sl_load_be32(p) << 32 | sl_load_be32(p + 4);
}

static inline void sl_store_be64(uint8_t *p, uint64_t v)
{
	sl_store_be32(p, v >> 32);
	sl_store_be32(p + 4, (uint32_t)v);
}

#endif
