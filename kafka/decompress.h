/*
 * decompress.h - decoding the payload of compressed record batches.
 *
 * Kafka compresses the records section of a v2 batch with one of four
 * codecs, named by the low three bits of the batch attributes:
 *   1 gzip    RFC 1952 members around RFC 1951 DEFLATE (inflate.c)
 *   2 snappy  a raw snappy block, or snappy-java's "xerial" framing of
 *             several blocks, which Kafka's Java client sends (snappy.c)
 *   3 lz4     LZ4 frames of LZ4 blocks (lz4.c)
 *   4 zstd    zstd frames, decoded by libzstd (decompress.c)
 * The gzip, snappy and lz4 decoders are our own, written from the format
 * descriptions; zstd is the one codec linked from outside.
 *
 * Every byte arriving here came from a producer and is hostile: the decoders
 * read input only after checking it is there, check every back-reference
 * against what has been produced, and never produce more than the caller's
 * max_out (a small batch can claim, or really expand to, gigabytes).
 *
 * Output lives in a struct dc_out, whose buffer always has DC_SLACK bytes
 * allocated beyond cap: the lz4 and snappy inner loops copy literals and
 * matches in 16-byte pieces that may run past the end of what they produce,
 * which is much faster than exact-length copies of a few bytes.  Bytes past
 * len are scratch and never part of the result.
 */
#ifndef SL_KAFKA_DECOMPRESS_H
#define SL_KAFKA_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DC_GZIP 1
#define DC_SNAPPY 2
#define DC_LZ4 3
#define DC_ZSTD 4

/*
 * Decode n bytes of codec's format.  On success returns 0 and sets *out to a
 * malloc'd buffer of *out_len bytes (never NULL, even when empty) that the
 * caller free()s.  Fails with SL_E_CORRUPT (not valid data of the codec,
 * truncated, or trailing bytes), SL_E_TOOBIG (the output would exceed
 * max_out bytes), SL_E_NOMEM, or SL_E_INVALID (codec is not 1..4); *out is
 * untouched then.  in is only read, and only during the call.
 */
int batch_decompress(int codec, const uint8_t *in, size_t n, size_t max_out,
		     uint8_t **out, size_t *out_len);

/* A static name for codec ("gzip", ..., "none" for 0, "unknown" otherwise). */
const char *batch_codec_name(int codec);

/* ---- shared by the codec files; not for other callers ---- */

#define DC_SLACK 32

struct dc_out {
	uint8_t *p;	/* owned; cap + DC_SLACK bytes allocated, never NULL */
	size_t len;	/* bytes produced */
	size_t cap;	/* bytes that may be produced before growing */
	size_t max;	/* the most that may ever be produced */
};

/*
 * Make room for n more bytes: afterwards cap - len >= n.  Grows at least
 * geometrically, never beyond max.  0, SL_E_TOOBIG if len + n > max, or
 * SL_E_NOMEM.  p may move: callers re-derive their pointers.
 */
int dc_reserve(struct dc_out *o, size_t n);

/*
 * Append the decoded bytes of in[0..n) to o, whose buffer the caller set up
 * (p allocated with cap + DC_SLACK bytes, len <= cap <= max) and may keep
 * between calls; on failure o->len is undefined but o stays valid to free
 * or reuse.  Results as batch_decompress.
 */
int dc_decode(int codec, const uint8_t *in, size_t n, struct dc_out *o);

/* Each appends the decoded bytes of in[0..n) to o. */
int dc_gzip(const uint8_t *in, size_t n, struct dc_out *o);
int dc_snappy(const uint8_t *in, size_t n, struct dc_out *o);
int dc_lz4(const uint8_t *in, size_t n, struct dc_out *o);

/*
 * Copy a match of len bytes from dist bytes back to d, LZ77 style: when
 * dist < len the copy repeats its own output.  The caller has checked that
 * dist >= 1, that d - dist is inside the output produced so far and that d +
 * len is within cap; the copy may write up to 15 bytes past d + len, into
 * the slack.
 */
static inline void dc_match(uint8_t *d, size_t dist, size_t len)
{
	uint8_t *end = d + len;
	const uint8_t *s;

	if (dist < 16) {
		/*
		 * The bytes from d - dist on repeat with period dist, so once
		 * enough of them exist a source a multiple of dist back, at
		 * least 16 back, gives the same bytes without overlapping a
		 * 16-byte piece.  Write the few bytes needed for that one by one.
		 */
		size_t far = dist * ((16 + dist - 1) / dist);
		size_t first = far - dist;

		s = d - dist;
		if (first >= len) {
			while (d < end)
				*d++ = *s++;
			return;
		}
		for (size_t i = 0; i < first; i++)
			d[i] = s[i];
		d += first;
		dist = far;
	}
	s = d - dist;
	while (d < end) {
		memcpy(d, s, 16);
		d += 16;
		s += 16;
	}
}

#endif
