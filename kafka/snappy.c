/*
 * snappy.c - snappy blocks, raw or in snappy-java's "xerial" framing,
 * written from the snappy format description.
 *
 * A raw block is a little-endian base-128 varint giving the decoded length,
 * then elements, each starting with a tag byte whose low two bits say:
 *   00 literal: the upper six bits are length - 1, or 60..63 meaning that
 *      length - 1 follows in 1..4 little-endian bytes; then the bytes
 *   01 copy, length 4..11 (three bits), offset 0..2047 (three bits above
 *      them and one more byte)
 *   10 copy, length 1..64 (six bits), 2-byte little-endian offset
 *   11 copy, length 1..64, 4-byte little-endian offset
 * A copy repeats bytes `offset` back in the block's own output, and may
 * overlap what it writes.
 *
 * Kafka's Java client wraps blocks in snappy-java's stream: the 8 bytes
 * 0x82 "SNAPPY" 0x00, a big-endian version and compatible-version int32,
 * then any number of [big-endian int32 length][raw block].  librdkafka sends
 * a raw block.  The magic cannot begin a valid raw block (its varint would
 * be followed by a tag 'N', a copy with nothing before it to copy), so
 * looking at the first eight bytes tells them apart.
 *
 * Invariants:
 *   1. The decoded length is known before decoding starts (the sum of the
 *      blocks' preambles), checked against max, and the whole output is
 *      reserved once; decoding must produce exactly that many bytes.
 *   2. Every element is checked against the input left and the output left
 *      before it is copied; every copy offset is checked against the bytes
 *      the current block has produced (blocks are independent).
 *   3. Fast paths copy 16 bytes where fewer are due only when 16 bytes of
 *      input exist and the output slack covers the overrun.
 */
#include "decompress.h"
#include "../kernel/buf.h"

static const uint8_t xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };

/*
 * The largest ratio a snappy block can reach is a 3-byte copy of 64 bytes;
 * a preamble promising more than this is a lie, refused before reserving.
 */
#define SNAPPY_MAX_RATIO 22

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The preamble of the raw block in[0..n): its decoded length and size. */
static int preamble(const uint8_t *in, size_t n, uint32_t *len, size_t *used)
{
	struct sl_rd r;

	rd_init(&r, in, n);
	if (rd_uvarint(&r, len) != 0)
		return SL_E_CORRUPT;
	if (*len / SNAPPY_MAX_RATIO > n)
		return SL_E_CORRUPT;
	*used = r.off;
	return 0;
}

/*
 * Decode the elements of one raw block, in[0..n) after its preamble, into
 * exactly want bytes at o->p + o->len (already reserved).
 */
static int block(const uint8_t *in, size_t n, struct dc_out *o, size_t want)
{
	uint8_t *const start = o->p + o->len;
	uint8_t *const end = start + want;
	uint8_t *d = start;
	size_t i = 0;

	while (i < n) {
		uint8_t tag = in[i++];
		size_t len, off;

		switch (tag & 3) {
		case 0:
			len = (size_t)(tag >> 2) + 1;
			if (len > 60) {
				size_t nb = len - 60;	/* 1..4 length bytes */
				if (n - i < nb)
					return SL_E_CORRUPT;
				uint32_t v = 0;
				for (size_t k = 0; k < nb; k++)
					v |= (uint32_t)in[i + k] << (8 * k);
				i += nb;
				len = (size_t)v + 1;
				if (len == 0)	/* wrapped: 32-bit size_t */
					return SL_E_CORRUPT;
			}
			if (len > n - i || len > (size_t)(end - d))
				return SL_E_CORRUPT;
			if (len <= 16 && n - i >= 16)
				memcpy(d, in + i, 16);
			else
				memcpy(d, in + i, len);
			d += len;
			i += len;
			continue;
		case 1:
			if (n - i < 1)
				return SL_E_CORRUPT;
			len = 4 + ((tag >> 2) & 7);
			off = (size_t)(tag >> 5) << 8 | in[i];
			i += 1;
			break;
		case 2:
			if (n - i < 2)
				return SL_E_CORRUPT;
			len = 1 + (size_t)(tag >> 2);
			off = (size_t)in[i] | (size_t)in[i + 1] << 8;
			i += 2;
			break;
		default:
			if (n - i < 4)
				return SL_E_CORRUPT;
			len = 1 + (size_t)(tag >> 2);
			off = le32(in + i);
			i += 4;
			break;
		}
		if (off == 0 || off > (size_t)(d - start) || len > (size_t)(end - d))
			return SL_E_CORRUPT;
		dc_match(d, off, len);
		d += len;
	}
	if (d != end)
		return SL_E_CORRUPT;
	o->len += want;
	return 0;
}

static int raw(const uint8_t *in, size_t n, struct dc_out *o)
{
	uint32_t want;
	size_t used;
	int err;

	if ((err = preamble(in, n, &want, &used)) != 0)
		return err;
	if ((err = dc_reserve(o, want)) != 0)
		return err;
	return block(in + used, n - used, o, want);
}

/* The next [length][raw block] of a xerial stream. */
static int xerial_next(struct sl_rd *r, const uint8_t **blk, size_t *len)
{
	uint32_t bl;

	if (rd_u32(r, &bl) != 0 || rd_bytes(r, bl, blk) != 0)
		return SL_E_CORRUPT;
	*len = bl;
	return 0;
}

static int xerial(const uint8_t *in, size_t n, struct dc_out *o)
{
	struct sl_rd r;
	const uint8_t *blk;
	size_t bl, used, total = 0;
	uint32_t want;
	int err;

	/* Pass 1: every block is framed correctly; the total fits in max. */
	rd_init(&r, in, n);
	if (rd_skip(&r, 16) != 0)	/* magic, version, compatible version */
		return SL_E_CORRUPT;
	while (rd_left(&r) > 0) {
		if ((err = xerial_next(&r, &blk, &bl)) != 0 ||
		    (err = preamble(blk, bl, &want, &used)) != 0)
			return err;
		if (want > o->max - o->len - total)
			return SL_E_TOOBIG;
		total += want;
	}
	if ((err = dc_reserve(o, total)) != 0)
		return err;
	/* Pass 2: decode; the framing is known good. */
	rd_init(&r, in, n);
	if (rd_skip(&r, 16) != 0)
		return SL_E_CORRUPT;
	while (rd_left(&r) > 0) {
		if ((err = xerial_next(&r, &blk, &bl)) != 0 ||
		    (err = preamble(blk, bl, &want, &used)) != 0 ||
		    (err = block(blk + used, bl - used, o, want)) != 0)
			return err;
	}
	return 0;
}

int dc_snappy(const uint8_t *in, size_t n, struct dc_out *o)
{
	if (n >= sizeof(xerial_magic) && memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0)
		return xerial(in, n, o);
	return raw(in, n, o);
}
