/*
 * lz4.c - LZ4 frames and blocks, written from the LZ4 frame and block
 * format descriptions.
 *
 * Frame (all integers little-endian):
 *   magic 0x184D2204 | FLG | BD | [content size u64] | [dictionary id u32] |
 *   header checksum u8 | blocks... | end mark u32 0 | [content checksum u32]
 *   FLG: version (bits 7-6, must be 01), blocks independent (5), block
 *   checksums (4), content size present (3), content checksum (2), reserved
 *   (1, zero), dictionary id present (0).  BD: bits 6-4 the largest decoded
 *   block, 4..7 for 64 KiB, 256 KiB, 1 MiB, 4 MiB; the other bits zero.
 *   Each block: u32 size, whose high bit means "stored uncompressed", the
 *   data, then a u32 checksum when FLG asks for block checksums.
 * Skippable frames (magic 0x184D2A50..5F, u32 size, data) may come between
 * frames and are skipped; frames follow one another to the end of input.
 *
 * Block: sequences of a token (high nibble literal length, low nibble match
 * length - 4; 15 means more length follows in bytes, each added, until one
 * is not 255), the literals, a 2-byte offset and the match.  The last
 * sequence has literals only: the block ends right after them.
 *
 * The xxHash-32 checksums (header, blocks, content) are parsed and skipped,
 * not verified: the record batch's CRC-32C already covers every byte of the
 * compressed payload.  Dictionaries are refused: Kafka never uses them and
 * we have none to decode against.
 *
 * Invariants:
 *   1. Every read of input is checked against what is left of the block.
 *   2. A match may reach back only to output of the same block (independent
 *      blocks) or of the same frame (linked blocks); offset 0 is corrupt.
 *   3. A block decodes into a bounded window [pos, lim) of the output; the
 *      window never exceeds the block maximum of BD, the output max, or the
 *      most the block's size could expand to.  The output grows to fit the
 *      block without reserving the block maximum up front (4 MiB for a few
 *      bytes would be wasteful on the produce path): a block that overruns a
 *      smaller window is decoded again after the output has doubled.
 *   4. Copies that run past their end do so only into allocated slack.
 */
#include "decompress.h"
#include "../kernel/buf.h"

#define LZ4_MAGIC 0x184D2204u
#define LZ4_SKIP_MAGIC 0x184D2A50u	/* low four bits free */
#define FLG_INDEPENDENT 0x20
#define FLG_BLOCK_SUM 0x10
#define FLG_SIZE 0x08
#define FLG_CONTENT_SUM 0x04
#define FLG_RESERVED 0x02
#define FLG_DICT 0x01
#define BLOCK_STORED 0x80000000u

/*
 * The most a block of n bytes can decode to: each extra length byte adds at
 * most 255 bytes of match, so a byte of input never yields more than 255.
 */
#define LZ4_MAX_RATIO 255

/* A bounded window of output and how far back matches may reach. */
struct win {
	uint8_t *base;		/* first byte a match may copy from */
	uint8_t *d;		/* next byte to write */
	uint8_t *end;		/* one past the last byte that may be written */
};

/*
 * Decode one compressed block into w.  0 on success with w->d past the
 * output, SL_E_CORRUPT, or SL_E_FULL when the window is too small.
 */
static int block(const uint8_t *in, size_t n, struct win *w)
{
	uint8_t *d = w->d;
	size_t i = 0;

	for (;;) {
		size_t lit, ml, off;
		uint8_t tok, b;

		if (i >= n)
			return SL_E_CORRUPT;
		tok = in[i++];
		lit = tok >> 4;
		if (lit == 15) {
			do {
				if (i >= n)
					return SL_E_CORRUPT;
				b = in[i++];
				lit += b;
			} while (b == 255 && lit <= n);
		}
		if (lit > n - i)
			return SL_E_CORRUPT;
		if (lit > (size_t)(w->end - d))
			return SL_E_FULL;
		if (lit <= 16 && n - i >= 16)
			memcpy(d, in + i, 16);
		else
			memcpy(d, in + i, lit);
		d += lit;
		i += lit;
		if (i == n)
			break;	/* the last sequence: literals only */

		if (n - i < 2)
			return SL_E_CORRUPT;
		off = (size_t)in[i] | (size_t)in[i + 1] << 8;
		i += 2;
		if (off == 0 || off > (size_t)(d - w->base))
			return SL_E_CORRUPT;
		ml = (size_t)(tok & 15);
		if (ml == 15) {
			size_t room = (size_t)(w->end - d);
			do {
				if (i >= n)
					return SL_E_CORRUPT;
				b = in[i++];
				ml += b;
			} while (b == 255 && ml <= room);
		}
		ml += 4;
		if (ml > (size_t)(w->end - d))
			return SL_E_FULL;
		dc_match(d, off, ml);
		d += ml;
		/* A block never ends on a match: the literals-only sequence follows. */
		if (i == n)
			return SL_E_CORRUPT;
	}
	w->d = d;
	return 0;
}

/*
 * Decode the compressed block in[0..n) of a frame whose blocks decode to at
 * most bmax bytes; matches may reach back to output offset from.
 */
static int frame_block(const uint8_t *in, size_t n, struct dc_out *o, size_t from, size_t bmax)
{
	size_t bound, avail;
	int over = SL_E_CORRUPT, err;

	bound = n <= bmax / LZ4_MAX_RATIO ? n * LZ4_MAX_RATIO : bmax;
	if (bound > o->max - o->len) {
		bound = o->max - o->len;
		over = SL_E_TOOBIG;
	}
	/* Start from what is free, or a guess of four times the input. */
	avail = o->cap - o->len;
	if (avail < bound && avail / 4 < n) {
		size_t guess = n <= bound / 4 ? 4 * n : bound;
		if ((err = dc_reserve(o, guess)) != 0)
			return err;
		avail = o->cap - o->len;
	}
	for (;;) {
		if (avail > bound)
			avail = bound;
		struct win w = { o->p + from, o->p + o->len, o->p + o->len + avail };
		err = block(in, n, &w);
		if (err == 0) {
			o->len = (size_t)(w.d - o->p);
			return 0;
		}
		if (err != SL_E_FULL)
			return err;
		if (avail >= bound)
			return over;
		if ((err = dc_reserve(o, avail <= bound / 2 ? 2 * avail : bound)) != 0)
			return err;
		avail = o->cap - o->len;
	}
}

static int frame(struct sl_rd *r, struct dc_out *o)
{
	uint8_t flg, bd, hc;
	uint64_t csize = 0;
	size_t start = o->len, bmax;
	int err;

	if (rd_u8(r, &flg) != 0 || rd_u8(r, &bd) != 0)
		return SL_E_CORRUPT;
	if ((flg >> 6) != 1 || (flg & (FLG_RESERVED | FLG_DICT)) || (bd & 0x8f) || (bd >> 4) < 4)
		return SL_E_CORRUPT;
	bmax = (size_t)1 << (8 + 2 * (bd >> 4));	/* 4 -> 64 KiB ... 7 -> 4 MiB */
	if ((flg & FLG_SIZE) && rd_u64le(r, &csize) != 0)
		return SL_E_CORRUPT;
	if (rd_u8(r, &hc) != 0)
		return SL_E_CORRUPT;
	if (flg & FLG_SIZE) {
		if (csize > o->max - o->len)
			return SL_E_TOOBIG;
		/* Trust a stated size for the allocation only if it is plausible. */
		if (csize / LZ4_MAX_RATIO <= rd_left(r) && (err = dc_reserve(o, (size_t)csize)) != 0)
			return err;
	}
	for (;;) {
		uint32_t bs;
		const uint8_t *data;

		if (rd_u32le(r, &bs) != 0)
			return SL_E_CORRUPT;
		if (bs == 0)
			break;	/* end mark */
		size_t len = bs & ~BLOCK_STORED;
		if (len > bmax || rd_bytes(r, len, &data) != 0)
			return SL_E_CORRUPT;
		if ((flg & FLG_BLOCK_SUM) && rd_skip(r, 4) != 0)
			return SL_E_CORRUPT;
		if (bs & BLOCK_STORED) {
			if ((err = dc_reserve(o, len)) != 0)
				return err;
			memcpy(o->p + o->len, data, len);
			o->len += len;
		} else {
			size_t from = (flg & FLG_INDEPENDENT) ? o->len : start;
			if ((err = frame_block(data, len, o, from, bmax)) != 0)
				return err;
		}
	}
	if ((flg & FLG_CONTENT_SUM) && rd_skip(r, 4) != 0)
		return SL_E_CORRUPT;
	if ((flg & FLG_SIZE) && o->len - start != csize)
		return SL_E_CORRUPT;
	return 0;
}

int dc_lz4(const uint8_t *in, size_t n, struct dc_out *o)
{
	struct sl_rd r;
	int frames = 0, err;

	rd_init(&r, in, n);
	while (rd_left(&r) > 0) {
		uint32_t magic, skip;

		if (rd_u32le(&r, &magic) != 0)
			return SL_E_CORRUPT;
		if ((magic & ~0xfu) == LZ4_SKIP_MAGIC) {
			if (rd_u32le(&r, &skip) != 0 || rd_skip(&r, skip) != 0)
				return SL_E_CORRUPT;
			continue;
		}
		if (magic != LZ4_MAGIC)
			return SL_E_CORRUPT;
		if ((err = frame(&r, o)) != 0)
			return err;
		frames++;
	}
	return frames > 0 ? 0 : SL_E_CORRUPT;
}
