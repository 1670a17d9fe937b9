/*
 * inflate.c - gzip members (RFC 1952) around DEFLATE streams (RFC 1951),
 * decoded from the two RFCs.
 *
 * gzip member: 1f 8b, method 8, flags, mtime u32, xfl, os; then, as the
 * flags say, an extra field (u16 length), a zero-terminated name, a
 * zero-terminated comment, a header CRC u16; the DEFLATE stream; then the
 * CRC-32 of the decoded bytes and their count mod 2^32 (both little-endian).
 * Members may follow one another; their outputs are concatenated.  Both
 * trailer fields are checked, so a stream that decodes to the wrong bytes is
 * refused even if the DEFLATE data happened to parse.
 *
 * DEFLATE: blocks, each with a final bit and a type: stored (byte-aligned
 * LEN, ~LEN, bytes), fixed Huffman codes, or dynamic codes sent as code
 * lengths, themselves Huffman coded.  Literal/length symbols 0..255 are
 * bytes, 256 ends the block, 257..285 start a match whose distance symbol
 * follows; extra bits refine both.  Bits are read least significant first;
 * Huffman codes are packed starting from their most significant bit.
 *
 * Decoding a Huffman code: a table indexed by the next FAST_BITS bits of
 * input gives the symbol and code length of every code that short (with the
 * code's bits reversed, as they arrive).  Longer codes, which are rare since
 * they are given to rare symbols, are decoded one bit at a time from the
 * counts of codes of each length, as RFC 1951's canonical codes allow.
 *
 * Bit reader invariants:
 *   1. buf holds cnt valid bits, the next ones of the stream, at its bottom;
 *      bits above cnt are zero or the stream's bits that follow.
 *   2. Past the end of input, zero bytes are fed in and counted in pad.
 *      Reading them is an error, found at the next refill or at the end of
 *      the stream: cnt < 8 * pad means a padding bit was consumed.
 *   3. A refill leaves at least 56 bits in buf, and at most 48 are needed
 *      between refills (a length code and its extra bits, a distance code
 *      and its extra bits: 15 + 5 + 15 + 13), so bits are taken unchecked.
 *
 * Output invariants: matches reach back only into the output of the current
 * member (a DEFLATE stream starts with no history), and never past max.
 */
#include "decompress.h"
#include "../kernel/buf.h"

#define FAST_BITS 10
#define MAX_BITS 15
#define NLITLEN 288
#define NDIST 32

struct huff {
	/* sym << 4 | length, by the next FAST_BITS bits; 0: a longer code (or none) */
	uint16_t fast[1 << FAST_BITS];
	uint16_t count[MAX_BITS + 1];	/* codes of each length */
	uint16_t sym[NLITLEN];		/* symbols in code order */
};

struct bits {
	const uint8_t *in;
	size_t n, pos;		/* next byte of input to load */
	uint64_t buf;
	unsigned cnt;
	size_t pad;		/* zero bytes loaded past the end */
};

/* Match lengths and distances: base values and extra bits, RFC 1951 3.2.5. */
static const uint16_t len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258
};
static const uint8_t len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0
};
static const uint16_t dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577
};
static const uint8_t dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13
};
/* The order code length code lengths are sent in, RFC 1951 3.2.7. */
static const uint8_t clen_order[19] = {
	16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15
};

/* ---- CRC-32 (the gzip one: reflected, polynomial 0xEDB88320), slice by 8 ---- */

static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_setup(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc_tab[k][i] = (crc_tab[k - 1][i] >> 8) ^ crc_tab[0][crc_tab[k - 1][i] & 0xff];
	crc_ready = 1;
}

/* The tables are built before main, before any thread exists. */
__attribute__((constructor)) static void crc_ctor(void)
{
	if (!crc_ready)
		crc_setup();
}

static uint32_t crc32_gzip(const uint8_t *b, size_t n)
{
	uint32_t c = 0xffffffffu;

	if (!crc_ready)
		crc_setup();
	while (n >= 8) {
		uint32_t lo = c ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 |
				   (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][b[4]] ^ crc_tab[2][b[5]] ^ crc_tab[1][b[6]] ^ crc_tab[0][b[7]];
		b += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *b++) & 0xff];
	return ~c;
}

/* ---- bits ---- */

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Top buf up to at least 56 bits; SL_E_CORRUPT once padding was consumed. */
static inline int refill(struct bits *b)
{
	if (b->cnt > 56)
		return 0;
	if (b->n - b->pos >= 8) {
		/* Load eight bytes, keep the whole ones that fit (invariant 1). */
		b->buf |= load_le64(b->in + b->pos) << b->cnt;
		b->pos += (63 - b->cnt) >> 3;
		b->cnt |= 56;
		return 0;
	}
	while (b->cnt <= 56) {
		if (b->pos < b->n)
			b->buf |= (uint64_t)b->in[b->pos++] << b->cnt;
		else
			b->pad++;
		b->cnt += 8;
	}
	return b->cnt < 8 * b->pad ? SL_E_CORRUPT : 0;
}

static inline void drop(struct bits *b, unsigned k)
{
	b->buf >>= k;
	b->cnt -= k;
}

/* The next k <= 32 bits as a number; at least k bits must be in buf. */
static inline uint32_t take(struct bits *b, unsigned k)
{
	uint32_t v = (uint32_t)(b->buf & ((1ull << k) - 1));

	drop(b, k);
	return v;
}

/* ---- Huffman codes ---- */

/*
 * Build h from the code lengths of n symbols.  Over-subscribed lengths are
 * corrupt; incomplete ones are allowed (RFC 1951 permits a single distance
 * code) and the missing codes fail when met.
 */
static int huff_build(struct huff *h, const uint8_t *lens, unsigned n)
{
	uint16_t next[MAX_BITS + 2];
	int left = 1;

	memset(h->count, 0, sizeof(h->count));
	memset(h->fast, 0, sizeof(h->fast));
	for (unsigned s = 0; s < n; s++)
		h->count[lens[s]]++;
	h->count[0] = 0;
	for (int len = 1; len <= MAX_BITS; len++) {
		left = 2 * left - h->count[len];
		if (left < 0)
			return SL_E_CORRUPT;
	}
	/* Symbols sorted by code length, then by value: the canonical order. */
	next[1] = 0;
	for (int len = 1; len <= MAX_BITS; len++)
		next[len + 1] = (uint16_t)(next[len] + h->count[len]);
	for (unsigned s = 0; s < n; s++)
		if (lens[s])
			h->sym[next[lens[s]]++] = (uint16_t)s;

	/* Codes of each length count up from the last code of the length
	 * before, shifted; fill the fast table with the short ones reversed. */
	unsigned code = 0, k = 0;
	for (unsigned len = 1; len <= FAST_BITS; len++) {
		for (unsigned i = 0; i < h->count[len]; i++, k++, code++) {
			unsigned rev = 0;
			for (unsigned bit = 0; bit < len; bit++)
				rev |= ((code >> bit) & 1) << (len - 1 - bit);
			uint16_t e = (uint16_t)(h->sym[k] << 4 | len);
			for (unsigned at = rev; at < (1u << FAST_BITS); at += 1u << len)
				h->fast[at] = e;
		}
		code <<= 1;
	}
	return 0;
}

/* The next symbol of h; refilled bits must be present (invariant 3). */
static inline int huff_decode(struct bits *b, const struct huff *h)
{
	uint16_t e = h->fast[b->buf & ((1u << FAST_BITS) - 1)];

	if (e) {
		drop(b, e & 15);
		return e >> 4;
	}
	/* A long code, or none: walk the canonical code a bit at a time. */
	int code = 0, first = 0, index = 0;
	uint64_t buf = b->buf;
	for (unsigned len = 1; len <= MAX_BITS; len++) {
		code |= (int)(buf & 1);
		buf >>= 1;
		int count = h->count[len];
		if (code - first < count) {
			drop(b, len);
			return h->sym[index + (code - first)];
		}
		index += count;
		first = (first + count) << 1;
		code <<= 1;
	}
	return -1;
}

/* ---- blocks ---- */

struct inflate {
	struct bits b;
	struct dc_out *o;
	size_t start;		/* output offset of this stream's first byte */
	struct huff lit, dist;
};

static void fixed_codes(struct inflate *z)
{
	uint8_t lens[NLITLEN];
	int s;

	for (s = 0; s < 144; s++)
		lens[s] = 8;
	for (; s < 256; s++)
		lens[s] = 9;
	for (; s < 280; s++)
		lens[s] = 7;
	for (; s < NLITLEN; s++)
		lens[s] = 8;
	(void)huff_build(&z->lit, lens, NLITLEN);
	for (s = 0; s < 30; s++)
		lens[s] = 5;
	(void)huff_build(&z->dist, lens, 30);
}

static int dynamic_codes(struct inflate *z)
{
	struct bits *b = &z->b;
	uint8_t lens[NLITLEN + NDIST];
	struct huff clen;
	unsigned nlit, ndist, nclen, i;
	int err;

	if ((err = refill(b)) != 0)
		return err;
	nlit = take(b, 5) + 257;
	ndist = take(b, 5) + 1;
	nclen = take(b, 4) + 4;
	if (nlit > 286 || ndist > 30)
		return SL_E_CORRUPT;
	memset(lens, 0, 19);
	for (i = 0; i < nclen; i++) {
		if ((err = refill(b)) != 0)
			return err;
		lens[clen_order[i]] = (uint8_t)take(b, 3);
	}
	if ((err = huff_build(&clen, lens, 19)) != 0)
		return err;
	for (i = 0; i < nlit + ndist;) {
		unsigned rep;
		uint8_t val;

		if ((err = refill(b)) != 0)
			return err;
		int sym = huff_decode(b, &clen);
		if (sym < 0)
			return SL_E_CORRUPT;
		if (sym < 16) {
			lens[i++] = (uint8_t)sym;
			continue;
		}
		if (sym == 16) {
			if (i == 0)
				return SL_E_CORRUPT;
			val = lens[i - 1];
			rep = 3 + take(b, 2);
		} else if (sym == 17) {
			val = 0;
			rep = 3 + take(b, 3);
		} else {
			val = 0;
			rep = 11 + take(b, 7);
		}
		if (rep > nlit + ndist - i)
			return SL_E_CORRUPT;
		memset(lens + i, val, rep);
		i += rep;
	}
	if (lens[256] == 0)	/* a block that could never end */
		return SL_E_CORRUPT;
	if ((err = huff_build(&z->lit, lens, nlit)) != 0 ||
	    (err = huff_build(&z->dist, lens + nlit, ndist)) != 0)
		return err;
	return 0;
}

static int stored(struct inflate *z)
{
	struct bits *b = &z->b;
	struct sl_rd r;
	uint8_t hdr[4];
	uint16_t len, nlen;
	const uint8_t *data;
	int err;

	/* Back to whole bytes: give the unread ones in buf back to the input. */
	drop(b, b->cnt & 7);
	if (b->cnt / 8 < b->pad)
		return SL_E_CORRUPT;
	b->pos -= b->cnt / 8 - b->pad;
	b->buf = 0;
	b->cnt = 0;
	b->pad = 0;
	rd_init(&r, b->in + b->pos, b->n - b->pos);
	if (rd_copy(&r, hdr, 4) != 0)
		return SL_E_CORRUPT;
	len = (uint16_t)(hdr[0] | hdr[1] << 8);
	nlen = (uint16_t)(hdr[2] | hdr[3] << 8);
	if ((len ^ nlen) != 0xffff || rd_bytes(&r, len, &data) != 0)
		return SL_E_CORRUPT;
	if ((err = dc_reserve(z->o, len)) != 0)
		return err;
	memcpy(z->o->p + z->o->len, data, len);
	z->o->len += len;
	b->pos += r.off;
	return 0;
}

/*
 * Decode the symbols of a Huffman block up to its end code.  The bit reader
 * and the output position live in locals for the loop, so the compiler can
 * keep them in registers; they are written back on every way out.
 */
static int codes(struct inflate *z)
{
	struct bits b = z->b;
	struct dc_out *o = z->o;
	uint8_t *out = o->p;
	size_t olen = o->len, cap = o->cap;
	int err;

	for (;;) {
		if ((err = refill(&b)) != 0)
			break;
		int sym = huff_decode(&b, &z->lit);
		if (sym < 256) {
			if (sym < 0) {
				err = SL_E_CORRUPT;
				break;
			}
			if (olen == cap) {
				o->len = olen;
				if ((err = dc_reserve(o, 1)) != 0)
					break;
				out = o->p;
				cap = o->cap;
			}
			out[olen++] = (uint8_t)sym;
			continue;
		}
		if (sym == 256)
			break;
		sym -= 257;
		if (sym >= 29) {
			err = SL_E_CORRUPT;
			break;
		}
		size_t len = len_base[sym] + take(&b, len_extra[sym]);
		int ds = huff_decode(&b, &z->dist);
		if (ds < 0 || ds >= 30) {
			err = SL_E_CORRUPT;
			break;
		}
		size_t dist = dist_base[ds] + take(&b, dist_extra[ds]);
		if (dist > olen - z->start) {
			err = SL_E_CORRUPT;
			break;
		}
		if (len > cap - olen) {
			o->len = olen;
			if ((err = dc_reserve(o, len)) != 0)
				break;
			out = o->p;
			cap = o->cap;
		}
		dc_match(out + olen, dist, len);
		olen += len;
	}
	o->len = olen;
	z->b = b;
	return err;
}

/* One DEFLATE stream from in[*pos]; *pos moves to the byte after it. */
static int inflate_stream(const uint8_t *in, size_t n, size_t *pos, struct dc_out *o)
{
	struct inflate zs, *z = &zs;	/* about 5 KB of code tables */
	int err = 0, final = 0, have_fixed = 0;

	z->b = (struct bits){ in, n, *pos, 0, 0, 0 };
	z->o = o;
	z->start = o->len;
	while (!final && err == 0) {
		if ((err = refill(&z->b)) != 0)
			break;
		final = (int)take(&z->b, 1);
		switch (take(&z->b, 2)) {
		case 0:
			err = stored(z);
			break;
		case 1:
			if (have_fixed != 1) {
				fixed_codes(z);
				have_fixed = 1;
			}
			err = codes(z);
			break;
		case 2:
			have_fixed = 0;
			if ((err = dynamic_codes(z)) == 0)
				err = codes(z);
			break;
		default:
			err = SL_E_CORRUPT;
			break;
		}
	}
	if (err == 0) {
		/* The stream ends at a byte boundary; unread whole bytes go back. */
		struct bits *b = &z->b;
		drop(b, b->cnt & 7);
		if (b->cnt / 8 < b->pad)
			err = SL_E_CORRUPT;
		else
			*pos = b->pos - (b->cnt / 8 - b->pad);
	}
	return err;
}

/* ---- gzip ---- */

#define GZ_FHCRC 0x02
#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_FCOMMENT 0x10
#define GZ_RESERVED 0xe0

static int skip_zstring(struct sl_rd *r)
{
	uint8_t c;

	do {
		if (rd_u8(r, &c) != 0)
			return SL_E_CORRUPT;
	} while (c);
	return 0;
}

static int member(struct sl_rd *r, struct dc_out *o)
{
	uint8_t id1, id2, cm, flg;
	uint8_t xlen[2];
	uint32_t crc, isize;
	size_t start = o->len, pos;
	int err;

	if (rd_u8(r, &id1) || rd_u8(r, &id2) || rd_u8(r, &cm) || rd_u8(r, &flg) ||
	    rd_skip(r, 6))	/* mtime, xfl, os */
		return SL_E_CORRUPT;
	if (id1 != 0x1f || id2 != 0x8b || cm != 8 || (flg & GZ_RESERVED))
		return SL_E_CORRUPT;
	if ((flg & GZ_FEXTRA) && (rd_copy(r, xlen, 2) || rd_skip(r, (size_t)(xlen[0] | xlen[1] << 8))))
		return SL_E_CORRUPT;
	if ((flg & GZ_FNAME) && skip_zstring(r))
		return SL_E_CORRUPT;
	if ((flg & GZ_FCOMMENT) && skip_zstring(r))
		return SL_E_CORRUPT;
	if ((flg & GZ_FHCRC) && rd_skip(r, 2))
		return SL_E_CORRUPT;
	pos = r->off;
	if ((err = inflate_stream(r->p, r->len, &pos, o)) != 0)
		return err;
	if (rd_skip(r, pos - r->off) || rd_u32le(r, &crc) || rd_u32le(r, &isize))
		return SL_E_CORRUPT;
	if (crc != crc32_gzip(o->p + start, o->len - start) || isize != (uint32_t)(o->len - start))
		return SL_E_CORRUPT;
	return 0;
}

int dc_gzip(const uint8_t *in, size_t n, struct dc_out *o)
{
	struct sl_rd r;
	int err;

	rd_init(&r, in, n);
	do {
		if ((err = member(&r, o)) != 0)
			return err;
	} while (rd_left(&r) > 0);
	return 0;
}
