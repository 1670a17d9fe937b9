/*
 * decompress.c - the entry point of batch decompression, the output buffer
 * the codecs share, and zstd by way of libzstd.
 *
 * Output buffer (struct dc_out, see decompress.h):
 *   1. len <= cap <= max, and cap + DC_SLACK bytes are allocated, from the
 *      start (so p is never NULL, even for an empty result).
 *   2. Growth at least doubles cap, so n appends cost O(n) copying overall;
 *      it is clamped at max, and asking for more than max - len fails with
 *      SL_E_TOOBIG before anything is allocated.
 *
 * zstd: when the input is exactly one frame that states its content size,
 * that size is checked against max_out and the frame is decoded in one call
 * straight into a buffer of that size (libzstd then needs no window buffer
 * of its own).  Otherwise (several frames, or a streaming producer such as
 * Java's zstd-jni that does not know the size in advance) it is decoded as a
 * stream into a buffer grown on demand, up to max_out.  The decoding context
 * is kept between calls, one per thread: creating one costs about 100 KB of
 * allocations, which would dominate small batches.
 */
#include <stdlib.h>
#include <zstd.h>
#include "decompress.h"
#include "../kernel/err.h"

/* What the first allocation is at least: not worth making smaller. */
#define DC_MIN_CAP 256

/*
 * The most zstd can expand: a 4-byte RLE block regenerates a 128 KiB block.
 * A stated content size beyond this times the input is a lie, refused
 * before it is allocated.
 */
#define ZSTD_MAX_RATIO 32768

int dc_reserve(struct dc_out *o, size_t n)
{
	size_t want, cap;
	uint8_t *p;

	if (o->cap - o->len >= n)
		return 0;
	if (n > o->max - o->len)
		return SL_E_TOOBIG;
	want = o->len + n;
	cap = o->cap > o->max / 2 ? o->max : 2 * o->cap;
	if (cap < DC_MIN_CAP)
		cap = DC_MIN_CAP < o->max ? DC_MIN_CAP : o->max;
	if (cap < want)
		cap = want;
	p = realloc(o->p, cap + DC_SLACK);
	if (!p)
		return SL_E_NOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

static _Thread_local ZSTD_DCtx *zstd_ctx;

static int dc_zstd(const uint8_t *in, size_t n, struct dc_out *o)
{
	unsigned long long size;
	size_t r;
	int err;

	if (!zstd_ctx && !(zstd_ctx = ZSTD_createDCtx()))
		return SL_E_NOMEM;
	/* A context left mid-frame by an earlier failure must start afresh. */
	ZSTD_DCtx_reset(zstd_ctx, ZSTD_reset_session_only);

	size = ZSTD_getFrameContentSize(in, n);
	if (size == ZSTD_CONTENTSIZE_ERROR)
		return SL_E_CORRUPT;
	if (size != ZSTD_CONTENTSIZE_UNKNOWN && ZSTD_findFrameCompressedSize(in, n) == n) {
		if (size > o->max - o->len)
			return SL_E_TOOBIG;
		if (size / ZSTD_MAX_RATIO > n)
			return SL_E_CORRUPT;
		if ((err = dc_reserve(o, (size_t)size)) != 0)
			return err;
		r = ZSTD_decompressDCtx(zstd_ctx, o->p + o->len, (size_t)size, in, n);
		if (ZSTD_isError(r) || r != size)
			return SL_E_CORRUPT;
		o->len += r;
		return 0;
	}

	ZSTD_inBuffer ib = { in, n, 0 };
	for (;;) {
		int at_max = 0;

		if (o->cap == o->len && (err = dc_reserve(o, 1)) != 0) {
			if (err != SL_E_TOOBIG)
				return err;
			/* Output is at max: what follows may still be only a
			 * checksum or empty frames, which need no room. */
			at_max = 1;
		}
		ZSTD_outBuffer ob = { o->p + o->len, o->cap - o->len, 0 };
		size_t before = ib.pos;
		r = ZSTD_decompressStream(zstd_ctx, &ob, &ib);
		if (ZSTD_isError(r))
			return SL_E_CORRUPT;
		o->len += ob.pos;
		if (ib.pos == ib.size && r == 0)
			return 0;	/* the last frame ended with the input */
		if (at_max && ib.pos == before)
			return SL_E_TOOBIG;
		/*
		 * A full output buffer may be all that stops it; otherwise,
		 * with all input read and a frame unfinished, it is truncated.
		 */
		if (!at_max && ob.pos < ob.size && ib.pos == ib.size)
			return SL_E_CORRUPT;
	}
}

int dc_decode(int codec, const uint8_t *in, size_t n, struct dc_out *o)
{
	switch (codec) {
	case DC_GZIP:
		return dc_gzip(in, n, o);
	case DC_SNAPPY:
		return dc_snappy(in, n, o);
	case DC_LZ4:
		return dc_lz4(in, n, o);
	case DC_ZSTD:
		return dc_zstd(in, n, o);
	default:
		return SL_E_INVALID;
	}
}

int batch_decompress(int codec, const uint8_t *in, size_t n, size_t max_out,
		     uint8_t **out, size_t *out_len)
{
	struct dc_out o = { NULL, 0, 0, max_out };
	int err;

	if (codec < DC_GZIP || codec > DC_ZSTD)
		return SL_E_INVALID;
	if (!(o.p = malloc(DC_SLACK)))
		return SL_E_NOMEM;
	err = dc_decode(codec, in, n, &o);
	if (err != 0) {
		free(o.p);
		return err;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}

const char *batch_codec_name(int codec)
{
	static const char *const names[] = { "none", "gzip", "snappy", "lz4", "zstd" };

	return codec >= 0 && codec <= 4 ? names[codec] : "unknown";
}
