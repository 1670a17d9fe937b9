/*
 * buf.c - the bounds-checked reader and the growable writer (see buf.h).
 *
 * Reader invariants:
 *   1. r->off <= r->len at all times.
 *   2. A call that fails leaves r->off unchanged: every function checks the
 *      whole item is present (and, for varints, well formed) before moving off.
 * Length checks compare n against rd_left() rather than computing off + n,
 * so a hostile n near SIZE_MAX cannot wrap.
 *
 * Writer invariants:
 *   1. len <= cap, and len <= max when max != 0.
 *   2. Once err is set it never changes and nothing more is written; the
 *      bytes already in p stay as they were.
 *   3. p is NULL exactly when cap is 0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "buf.h"

/* Below this the first allocation is not worth making smaller. */
#define WR_MIN_CAP 64

/* ---- reader ---- */

static int rd_need(const struct sl_rd *r, size_t n)
{
	return rd_left(r) >= n ? 0 : SL_E_SHORT;
}

int rd_u8(struct sl_rd *r, uint8_t *v)
{
	if (rd_need(r, 1))
		return SL_E_SHORT;
	*v = r->p[r->off++];
	return 0;
}

int rd_i8(struct sl_rd *r, int8_t *v)
{
	uint8_t u;
	int err = rd_u8(r, &u);

	if (err)
		return err;
	*v = (int8_t)u;
	return 0;
}

int rd_u16(struct sl_rd *r, uint16_t *v)
{
	if (rd_need(r, 2))
		return SL_E_SHORT;
	*v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return 0;
}

int rd_i16(struct sl_rd *r, int16_t *v)
{
	uint16_t u;
	int err = rd_u16(r, &u);

	if (err)
		return err;
	*v = (int16_t)u;
	return 0;
}

int rd_u32(struct sl_rd *r, uint32_t *v)
{
	if (rd_need(r, 4))
		return SL_E_SHORT;
	*v = sl_load_be32(r->p + r->off);
	r->off += 4;
	return 0;
}

int rd_i32(struct sl_rd *r, int32_t *v)
{
	uint32_t u;
	int err = rd_u32(r, &u);

	if (err)
		return err;
	*v = (int32_t)u;
	return 0;
}

int rd_u64(struct sl_rd *r, uint64_t *v)
{
	if (rd_need(r, 8))
		return SL_E_SHORT;
	*v = sl_load_be64(r->p + r->off);
	r->off += 8;
	return 0;
}

int rd_i64(struct sl_rd *r, int64_t *v)
{
	uint64_t u;
	int err = rd_u64(r, &u);

	if (err)
		return err;
	*v = (int64_t)u;
	return 0;
}

int rd_u32le(struct sl_rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (rd_need(r, 4))
		return SL_E_SHORT;
	p = r->p + r->off;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	     (uint32_t)p[3] << 24;
	r->off += 4;
	return 0;
}

int rd_u64le(struct sl_rd *r, uint64_t *v)
{
	const uint8_t *p;
	uint64_t x = 0;
	int i;

	if (rd_need(r, 8))
		return SL_E_SHORT;
	p = r->p + r->off;
	for (i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	*v = x;
	r->off += 8;
	return 0;
}

/*
 * Decode a base-128 varint of at most maxlen bytes whose value must fit in
 * bits bits.  The last permitted byte may carry only the bits that remain,
 * and no continuation flag: anything else is overlong or overflowing, which a
 * well-behaved encoder never produces, so it is SL_E_INVALID rather than a
 * silent truncation.  Input that ends mid-varint is SL_E_SHORT.
 */
static int rd_varbits(struct sl_rd *r, unsigned maxlen, unsigned bits, uint64_t *v)
{
	const uint8_t *p = r->p + r->off;
	size_t left = rd_left(r);
	uint64_t x = 0;
	unsigned i;

	for (i = 0; i < maxlen; i++) {
		uint8_t b;

		if (i >= left)
			return SL_E_SHORT;
		b = p[i];
		if (i == maxlen - 1) {
			/* bits - 7*i value bits remain for the final byte */
			if (b >> (bits - 7 * i))
				return SL_E_INVALID;
		}
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			r->off += i + 1;
			return 0;
		}
	}
	return SL_E_INVALID;	/* not reached: the last byte is checked above */
}

int rd_uvarint(struct sl_rd *r, uint32_t *v)
{
	uint64_t x;
	int err = rd_varbits(r, 5, 32, &x);

	if (err)
		return err;
	*v = (uint32_t)x;
	return 0;
}

int rd_uvarlong(struct sl_rd *r, uint64_t *v)
{
	return rd_varbits(r, 10, 64, v);
}

int rd_varint(struct sl_rd *r, int32_t *v)
{
	uint32_t u;
	int err = rd_uvarint(r, &u);

	if (err)
		return err;
	*v = (int32_t)((u >> 1) ^ (0u - (u & 1)));
	return 0;
}

int rd_varlong(struct sl_rd *r, int64_t *v)
{
	uint64_t u;
	int err = rd_uvarlong(r, &u);

	if (err)
		return err;
	*v = (int64_t)((u >> 1) ^ (0ull - (u & 1)));
	return 0;
}

int rd_bytes(struct sl_rd *r, size_t n, const uint8_t **p)
{
	if (rd_need(r, n))
		return SL_E_SHORT;
	*p = r->p + r->off;
	r->off += n;
	return 0;
}

int rd_skip(struct sl_rd *r, size_t n)
{
	if (rd_need(r, n))
		return SL_E_SHORT;
	r->off += n;
	return 0;
}

int rd_copy(struct sl_rd *r, void *dst, size_t n)
{
	if (rd_need(r, n))
		return SL_E_SHORT;
	if (n)
		memcpy(dst, r->p + r->off, n);
	r->off += n;
	return 0;
}

/* ---- writer ---- */

static int wr_poison(struct sl_wr *w, int err)
{
	if (!w->err)
		w->err = err;
	return w->err;
}

/* w->len + n into *need, unless the writer is poisoned or that passes its cap. */
static int wr_need(struct sl_wr *w, size_t n, size_t *need)
{
	if (w->err)
		return w->err;
	if (n > SIZE_MAX - w->len)
		return wr_poison(w, SL_E_TOOBIG);
	*need = w->len + n;
	if (w->max && *need > w->max)
		return wr_poison(w, SL_E_TOOBIG);
	return 0;
}

int wr_ensure(struct sl_wr *w, size_t n)
{
	size_t need, ncap;
	uint8_t *np;
	int err = wr_need(w, n, &need);

	if (err)
		return err;
	if (need <= w->cap)
		return 0;
	ncap = w->cap ? w->cap : WR_MIN_CAP;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	/* Doubling past the cap would only allocate bytes we may never use. */
	if (w->max && ncap > w->max)
		ncap = w->max;
	np = realloc(w->p, ncap);
	if (!np)
		return wr_poison(w, SL_E_NOMEM);
	w->p = np;
	w->cap = ncap;
	return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

int wr_prepare(struct sl_wr *w, size_t n)
{
	size_t need, old = w->cap;
	uint8_t *np;
	int err = wr_need(w, n, &need);

	if (err)
		return err;
	if (need <= w->cap)
		return 0;
	if (!(np = realloc(w->p, need)))
		return wr_poison(w, SL_E_NOMEM);
	w->p = np;
	w->cap = need;
	if (need - old >= WR_POPULATE_MIN) {
		uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
		uintptr_t a = ((uintptr_t)np + old + pg - 1) & ~(pg - 1);
		uintptr_t e = ((uintptr_t)np + need) & ~(pg - 1);

		/* Only a hint: an older kernel says EINVAL and the pages fault in as written. */
		if (e > a)
			(void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
	}
	return 0;
}

int wr_bytes(struct sl_wr *w, const void *p, size_t n)
{
	int err = wr_ensure(w, n);

	if (err)
		return err;
	if (n) {
		memcpy(w->p + w->len, p, n);
		w->len += n;
	}
	return 0;
}

int wr_zero(struct sl_wr *w, size_t n)
{
	int err = wr_ensure(w, n);

	if (err)
		return err;
	if (n) {
		memset(w->p + w->len, 0, n);
		w->len += n;
	}
	return 0;
}

int wr_reserve(struct sl_wr *w, size_t n, size_t *at)
{
	/* On failure *at points at the end so a later patch is a no-op. */
	*at = w->len;
	return wr_zero(w, n);
}

int wr_u8(struct sl_wr *w, uint8_t v)
{
	return wr_bytes(w, &v, 1);
}

int wr_i8(struct sl_wr *w, int8_t v)
{
	return wr_u8(w, (uint8_t)v);
}

int wr_u16(struct sl_wr *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return wr_bytes(w, b, 2);
}

int wr_i16(struct sl_wr *w, int16_t v)
{
	return wr_u16(w, (uint16_t)v);
}

int wr_u32(struct sl_wr *w, uint32_t v)
{
	uint8_t b[4];

	sl_store_be32(b, v);
	return wr_bytes(w, b, 4);
}

int wr_i32(struct sl_wr *w, int32_t v)
{
	return wr_u32(w, (uint32_t)v);
}

int wr_u64(struct sl_wr *w, uint64_t v)
{
	uint8_t b[8];

	sl_store_be64(b, v);
	return wr_bytes(w, b, 8);
}

int wr_i64(struct sl_wr *w, int64_t v)
{
	return wr_u64(w, (uint64_t)v);
}

int wr_u32le(struct sl_wr *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	return wr_bytes(w, b, 4);
}

int wr_u64le(struct sl_wr *w, uint64_t v)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return wr_bytes(w, b, 8);
}

int wr_uvarlong(struct sl_wr *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	return wr_bytes(w, b, n);
}

int wr_uvarint(struct sl_wr *w, uint32_t v)
{
	return wr_uvarlong(w, v);
}

int wr_varint(struct sl_wr *w, int32_t v)
{
	uint32_t u = (uint32_t)v;

	return wr_uvarint(w, (u << 1) ^ (0u - (u >> 31)));
}

int wr_varlong(struct sl_wr *w, int64_t v)
{
	uint64_t u = (uint64_t)v;

	return wr_uvarlong(w, (u << 1) ^ (0ull - (u >> 63)));
}

/*
 * A patch after a failed write is a no-op: serialisers check w->err once at
 * the end, so they may reach the patch with a reservation that never happened.
 * A patch outside len on a healthy writer is a caller bug that would scribble
 * on the heap, hence the assertion.
 */
static uint8_t *wr_patch_at(struct sl_wr *w, size_t at, size_t n)
{
	if (w->err)
		return NULL;
	SL_ASSERT(at <= w->len && w->len - at >= n);
	return w->p + at;
}

void wr_patch_u32(struct sl_wr *w, size_t at, uint32_t v)
{
	uint8_t *p = wr_patch_at(w, at, 4);

	if (p)
		sl_store_be32(p, v);
}

void wr_patch_i32(struct sl_wr *w, size_t at, int32_t v)
{
	wr_patch_u32(w, at, (uint32_t)v);
}

void wr_patch_i64(struct sl_wr *w, size_t at, int64_t v)
{
	uint8_t *p = wr_patch_at(w, at, 8);

	if (p)
		sl_store_be64(p, (uint64_t)v);
}

/*
 * The writer is left empty and reusable with the same max.  A poisoned
 * writer's bytes are incomplete, so they are freed and NULL is returned; an
 * empty healthy writer also returns NULL with *len 0.
 */
uint8_t *wr_take(struct sl_wr *w, size_t *len)
{
	uint8_t *p = w->p;

	if (w->err) {
		free(p);
		p = NULL;
		*len = 0;
	} else {
		*len = w->len;
	}
	wr_init(w, w->max);
	return p;
}

void wr_free(struct sl_wr *w)
{
	free(w->p);
	wr_init(w, w->max);
}
