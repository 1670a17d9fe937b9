/*
 * test_decompress.c - the four batch codecs against data compressed by
 * independent compressors (python's zlib and gzip, python-snappy, gzip(1),
 * lz4(1), zstd(1); tests/unit/data/make-vectors.sh lists which file comes
 * from where): every vector decodes to its plain file; every truncation
 * fails or, where the format is a sequence of independent units, yields a
 * prefix; random bit flips never crash (the sanitizer build is the real
 * check); bombs stop at max_out; hand-made streams exercise the corners the
 * compressors never produce (bad offsets, reserved bits, overlapping copies).
 */
#include <stdlib.h>
#include "t.h"
#include "../../kafka/decompress.h"
#include "../../kernel/err.h"

#define DATA "tests/unit/data/"

static uint8_t *slurp(const char *name, size_t *n)
{
	char path[256];
	FILE *f;
	uint8_t *p = NULL;
	long len;

	snprintf(path, sizeof(path), DATA "%s", name);
	if (!(f = fopen(path, "rb"))) {
		fprintf(stderr, "  cannot open %s\n", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)len + 1)) && fread(p, 1, (size_t)len, f) == (size_t)len) {
		*n = (size_t)len;
	} else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

struct vec {
	const char *file;
	int codec;
	const char *plain;
	int units;	/* several independent units: a prefix may decode */
};

static const struct vec vecs[] = {
#define PLAIN(stem, ext) \
	{ stem ".gz", DC_GZIP, stem ext, 0 }, \
	{ stem ".1.gz", DC_GZIP, stem ext, 0 }, \
	{ stem ".cli.gz", DC_GZIP, stem ext, 0 }, \
	{ stem ".snappy", DC_SNAPPY, stem ext, 0 }, \
	{ stem ".xsnappy", DC_SNAPPY, stem ext, 1 }, \
	{ stem ".lz4", DC_LZ4, stem ext, 0 }, \
	{ stem ".B4D.lz4", DC_LZ4, stem ext, 0 }, \
	{ stem ".zst", DC_ZSTD, stem ext, 0 }, \
	{ stem ".stream.zst", DC_ZSTD, stem ext, 0 }
	PLAIN("text", ".txt"),
	PLAIN("short", ".txt"),
	PLAIN("random", ".bin"),
	PLAIN("repeat", ".bin"),
	PLAIN("empty", ".bin"),
#undef PLAIN
	{ "text.0.gz", DC_GZIP, "text.txt", 0 },
	{ "short.0.gz", DC_GZIP, "short.txt", 0 },
	{ "random.0.gz", DC_GZIP, "random.bin", 0 },
	{ "empty.0.gz", DC_GZIP, "empty.bin", 0 },
	{ "text.hdr.gz", DC_GZIP, "text.txt", 0 },
	{ "text.2.gz", DC_GZIP, "text.txt", 1 },
	{ "text.2.zst", DC_ZSTD, "text.txt", 1 },
	{ "text.2.lz4", DC_LZ4, "text.txt", 1 },
	{ "records.gz", DC_GZIP, "records.bin", 0 },
	{ "records.xsnappy", DC_SNAPPY, "records.bin", 1 },
	{ "records.lz4", DC_LZ4, "records.bin", 0 },
	{ "records.zst", DC_ZSTD, "records.bin", 0 },
};
#define NVECS (sizeof(vecs) / sizeof(vecs[0]))

static void test_vectors_decode(void)
{
	for (size_t i = 0; i < NVECS; i++) {
		size_t n, pn, len = 0;
		uint8_t *in = slurp(vecs[i].file, &n), *plain = slurp(vecs[i].plain, &pn), *out = NULL;

		T_CHECK(in && plain);
		if (!in || !plain) {
			free(in);
			free(plain);
			continue;
		}
		int rc = batch_decompress(vecs[i].codec, in, n, 1 << 20, &out, &len);
		if (rc != 0 || len != pn || memcmp(out, plain, pn) != 0)
			fprintf(stderr, "  %s: rc %d, %zu bytes, want %zu\n", vecs[i].file, rc, len, pn);
		T_EQ(rc, 0);
		T_EQ(len, pn);
		if (rc == 0) {
			T_CHECK(out != NULL);
			if (len == pn)
				T_MEMEQ(out, plain, pn);
			/* Exactly enough room is enough. */
			free(out);
			T_EQ(batch_decompress(vecs[i].codec, in, n, pn, &out, &len), 0);
			free(out);
			if (pn > 0)
				T_EQ(batch_decompress(vecs[i].codec, in, n, pn - 1, &out, &len), SL_E_TOOBIG);
		}
		free(in);
		free(plain);
	}
}

static void test_truncations_fail(void)
{
	for (size_t i = 0; i < NVECS; i++) {
		size_t n, pn, len;
		uint8_t *in = slurp(vecs[i].file, &n), *plain = slurp(vecs[i].plain, &pn), *out;
		int bad = 0;

		if (!in || !plain) {
			T_CHECK(0);
			free(in);
			free(plain);
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			/* A copy of exactly k bytes, so ASan sees any read past it. */
			uint8_t *cut = malloc(k ? k : 1);
			memcpy(cut, in, k);
			int rc = batch_decompress(vecs[i].codec, cut, k, 1 << 20, &out, &len);
			if (rc == 0) {
				/* Only a whole number of units, giving a prefix. */
				if (!vecs[i].units || len >= pn || memcmp(out, plain, len) != 0)
					bad++;
				free(out);
			} else if (rc != SL_E_CORRUPT) {
				bad++;
			}
			free(cut);
		}
		if (bad)
			fprintf(stderr, "  %s: %d truncations misbehaved\n", vecs[i].file, bad);
		T_EQ(bad, 0);
		free(in);
		free(plain);
	}
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_bit_flips_never_crash(void)
{
	size_t runs = 0, refused = 0;

	for (size_t i = 0; i < NVECS; i++) {
		size_t n, len;
		uint8_t *in = slurp(vecs[i].file, &n), *out;

		if (!in || n == 0) {
			free(in);
			continue;
		}
		/* Every byte once with one bit flipped, then random pairs of flips. */
		for (size_t k = 0; k < n + 200; k++) {
			size_t a = k < n ? k : next_rand() % n, b = next_rand() % n;
			uint8_t ma = (uint8_t)(1u << (next_rand() % 8)), mb = (uint8_t)(1u << (next_rand() % 8));
			in[a] ^= ma;
			if (k >= n)
				in[b] ^= mb;
			int rc = batch_decompress(vecs[i].codec, in, n, 1 << 20, &out, &len);
			if (rc == 0)
				free(out);
			else
				refused++;
			T_CHECK(rc == 0 || rc == SL_E_CORRUPT || rc == SL_E_TOOBIG);
			in[a] ^= ma;
			if (k >= n)
				in[b] ^= mb;
			runs++;
		}
		free(in);
	}
	/* Most flips must be noticed: checksums, lengths, code structure. */
	T_CHECK(refused > runs / 2);
}

static void test_bombs_stop_at_max(void)
{
	static const struct { const char *file; int codec; size_t plain; } bombs[] = {
		{ "zeros-1m.gz", DC_GZIP, 1 << 20 },
		{ "zeros-1m.lz4", DC_LZ4, 1 << 20 },
		{ "zeros-1m.zst", DC_ZSTD, 1 << 20 },
		{ "zeros-256k.snappy", DC_SNAPPY, 256 << 10 },
	};

	for (size_t i = 0; i < sizeof(bombs) / sizeof(bombs[0]); i++) {
		size_t n, len;
		uint8_t *in = slurp(bombs[i].file, &n), *out;

		T_CHECK(in != NULL);
		if (!in)
			continue;
		T_EQ(batch_decompress(bombs[i].codec, in, n, 64 << 10, &out, &len), SL_E_TOOBIG);
		T_EQ(batch_decompress(bombs[i].codec, in, n, bombs[i].plain - 1, &out, &len), SL_E_TOOBIG);
		T_EQ(batch_decompress(bombs[i].codec, in, n, bombs[i].plain, &out, &len), 0);
		T_EQ(len, bombs[i].plain);
		size_t nonzero = 0;
		for (size_t k = 0; k < len; k++)
			nonzero += out[k] != 0;
		T_EQ(nonzero, 0);
		free(out);
		free(in);
	}
}

static void test_bad_codec_and_empty_input(void)
{
	uint8_t *out;
	size_t len;
	uint8_t b = 0;

	T_EQ(batch_decompress(0, &b, 1, 100, &out, &len), SL_E_INVALID);
	T_EQ(batch_decompress(5, &b, 1, 100, &out, &len), SL_E_INVALID);
	for (int c = DC_GZIP; c <= DC_ZSTD; c++)
		T_EQ(batch_decompress(c, &b, 0, 100, &out, &len), SL_E_CORRUPT);
	T_CHECK(strcmp(batch_codec_name(DC_LZ4), "lz4") == 0);
	T_CHECK(strcmp(batch_codec_name(9), "unknown") == 0);
}

/* Decode a hand-made stream of n bytes: the result code, and the output. */
static int try_decode(int codec, const uint8_t *in, size_t n, uint8_t *want, size_t wn)
{
	uint8_t *copy = malloc(n ? n : 1), *out;
	size_t len;

	memcpy(copy, in, n);
	int rc = batch_decompress(codec, copy, n, 1 << 16, &out, &len);
	free(copy);
	if (rc == 0) {
		if (want && (len != wn || memcmp(out, want, wn) != 0))
			rc = 1;	/* decoded to the wrong bytes */
		free(out);
	}
	return rc;
}

static void test_snappy_corners(void)
{
	/* 20 bytes: literal "ab", then a copy of 18 bytes at offset 2 (overlap). */
	uint8_t ok[] = { 20, 1 << 2, 'a', 'b', (17 << 2) | 2, 2, 0 };
	uint8_t want[20];
	for (int i = 0; i < 20; i++)
		want[i] = i % 2 ? 'b' : 'a';
	T_EQ(try_decode(DC_SNAPPY, ok, sizeof(ok), want, 20), 0);
	/* The same with a 1-byte-offset copy (length 4 + 7 = 11) and a 4-byte one. */
	uint8_t ok1[] = { 13, 1 << 2, 'a', 'b', (7 << 2) | 1, 2 };
	T_EQ(try_decode(DC_SNAPPY, ok1, sizeof(ok1), want, 13), 0);
	uint8_t ok4[] = { 20, 1 << 2, 'a', 'b', (17 << 2) | 3, 2, 0, 0, 0 };
	T_EQ(try_decode(DC_SNAPPY, ok4, sizeof(ok4), want, 20), 0);
	/* A literal with its length in the following byte (tag 60). */
	uint8_t lit[3 + 70] = { 70, 60 << 2, 69 };
	memset(lit + 3, 'x', 70);
	T_EQ(try_decode(DC_SNAPPY, lit, sizeof(lit), lit + 3, 70), 0);

	uint8_t off0[] = { 20, 1 << 2, 'a', 'b', (17 << 2) | 2, 0, 0 };
	T_EQ(try_decode(DC_SNAPPY, off0, sizeof(off0), NULL, 0), SL_E_CORRUPT);
	uint8_t far[] = { 20, 1 << 2, 'a', 'b', (17 << 2) | 2, 3, 0 };
	T_EQ(try_decode(DC_SNAPPY, far, sizeof(far), NULL, 0), SL_E_CORRUPT);
	uint8_t over[] = { 19, 1 << 2, 'a', 'b', (17 << 2) | 2, 2, 0 };	/* 20 > 19 */
	T_EQ(try_decode(DC_SNAPPY, over, sizeof(over), NULL, 0), SL_E_CORRUPT);
	uint8_t under[] = { 21, 1 << 2, 'a', 'b', (17 << 2) | 2, 2, 0 };
	T_EQ(try_decode(DC_SNAPPY, under, sizeof(under), NULL, 0), SL_E_CORRUPT);
	/* A preamble promising far more than the input could ever give. */
	uint8_t liar[] = { 0xff, 0xff, 0xff, 0x7f, 0 };
	T_EQ(try_decode(DC_SNAPPY, liar, sizeof(liar), NULL, 0), SL_E_CORRUPT);
	/* Xerial: header only is empty; a block length past the end is corrupt. */
	uint8_t xh[24] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1 };
	T_EQ(try_decode(DC_SNAPPY, xh, 16, (uint8_t *)"", 0), 0);
	xh[19] = 9;
	T_EQ(try_decode(DC_SNAPPY, xh, 20, NULL, 0), SL_E_CORRUPT);
	/* Two xerial blocks: the second may not copy from the first. */
	uint8_t x2[] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
			 0, 0, 0, 4, 2, 1 << 2, 'a', 'b', 0, 0, 0, 3, 4, (3 << 2) | 2, 2 };
	T_EQ(try_decode(DC_SNAPPY, x2, sizeof(x2) - 1, NULL, 0), SL_E_CORRUPT);
}

static void test_lz4_corners(void)
{
	/* Frame header: magic, FLG 0x60 (v1, independent), BD 0x40 (64 KiB), HC. */
	uint8_t f[64] = { 0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82 };
	uint8_t want[40];
	for (int i = 0; i < 40; i++)
		want[i] = "xyz"[i % 3];
	/* Block: literals "xyz", match offset 3 length 4 + 15 + 13 = 32, then 5 literals. */
	uint8_t blk[] = { 0x3f, 'x', 'y', 'z', 3, 0, 13, 0x50, 'z', 'x', 'y', 'z', 'x' };
	size_t n = 7;
	f[n++] = sizeof(blk);
	f[n++] = 0, f[n++] = 0, f[n++] = 0;
	memcpy(f + n, blk, sizeof(blk));
	n += sizeof(blk);
	f[n++] = 0, f[n++] = 0, f[n++] = 0, f[n++] = 0;	/* end mark */
	T_EQ(try_decode(DC_LZ4, f, n, want, 40), 0);

	uint8_t g[64];
	memcpy(g, f, n);
	g[11 + 4] = 0;	/* offset 0 */
	T_EQ(try_decode(DC_LZ4, g, n, NULL, 0), SL_E_CORRUPT);
	memcpy(g, f, n);
	g[11 + 4] = 4;	/* offset before the block */
	T_EQ(try_decode(DC_LZ4, g, n, NULL, 0), SL_E_CORRUPT);
	memcpy(g, f, n);
	g[4] = 0xa0;	/* version 2 */
	T_EQ(try_decode(DC_LZ4, g, n, NULL, 0), SL_E_CORRUPT);
	memcpy(g, f, n);
	g[4] |= 0x01;	/* needs a dictionary */
	T_EQ(try_decode(DC_LZ4, g, n, NULL, 0), SL_E_CORRUPT);
	memcpy(g, f, n);
	g[5] = 0x30;	/* block maximum 3: reserved */
	T_EQ(try_decode(DC_LZ4, g, n, NULL, 0), SL_E_CORRUPT);
	memcpy(g, f, n);
	T_EQ(try_decode(DC_LZ4, g, n - 4, NULL, 0), SL_E_CORRUPT);	/* no end mark */
	/* Ends on a match, without the last literals. */
	uint8_t h[64] = { 0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 7, 0, 0, 0,
			  0x3f, 'x', 'y', 'z', 3, 0, 13, 0, 0, 0, 0 };
	T_EQ(try_decode(DC_LZ4, h, 22, NULL, 0), SL_E_CORRUPT);
	/* A stored block, then a linked block copying from it (FLG 0x40). */
	uint8_t s[] = { 0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0x82,
			3, 0, 0, 0x80, 'x', 'y', 'z',
			10, 0, 0, 0, 0x0f, 3, 0, 13, 0x50, 'z', 'x', 'y', 'z', 'x',
			0, 0, 0, 0 };
	T_EQ(try_decode(DC_LZ4, s, sizeof(s), want, 40), 0);
	s[4] = 0x60;	/* independent: the copy reaches outside its block */
	T_EQ(try_decode(DC_LZ4, s, sizeof(s), NULL, 0), SL_E_CORRUPT);
	/* A content size that disagrees with the content. */
	uint8_t c[64] = { 0x04, 0x22, 0x4d, 0x18, 0x68, 0x40, 41, 0, 0, 0, 0, 0, 0, 0, 0x82 };
	memcpy(c + 15, f + 7, n - 7);
	T_EQ(try_decode(DC_LZ4, c, n + 8, NULL, 0), SL_E_CORRUPT);
	c[6] = 40;
	T_EQ(try_decode(DC_LZ4, c, n + 8, want, 40), 0);
}

/* A raw DEFLATE block writer, for streams no compressor would make. */
struct bw {
	uint8_t b[64];
	size_t n;
	unsigned bit;
};

static void put(struct bw *w, uint32_t v, unsigned k)
{
	for (unsigned i = 0; i < k; i++, w->bit++) {
		if (w->bit == 8) {
			w->bit = 0;
			w->n++;
		}
		if (w->bit == 0)
			w->b[w->n] = 0;
		w->b[w->n] |= (uint8_t)(((v >> i) & 1) << w->bit);
	}
}

/* A Huffman code is sent most significant bit first. */
static void put_code(struct bw *w, uint32_t code, unsigned k)
{
	for (unsigned i = k; i-- > 0;)
		put(w, (code >> i) & 1, 1);
}

/* gzip member around w's DEFLATE data, with the trailer of plain. */
static size_t gz_wrap(struct bw *w, const uint8_t *plain, size_t pn, uint32_t crc, uint8_t *out)
{
	static const uint8_t hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
	size_t n = 0, dn = w->n + (w->bit > 0);

	(void)plain;
	memcpy(out, hdr, 10);
	n = 10;
	memcpy(out + n, w->b, dn);
	n += dn;
	for (int i = 0; i < 4; i++)
		out[n++] = (uint8_t)(crc >> (8 * i));
	for (int i = 0; i < 4; i++)
		out[n++] = (uint8_t)(pn >> (8 * i));
	return n;
}

/* Fixed-Huffman code of literal/length symbol s (RFC 1951 3.2.6). */
static void put_fixed(struct bw *w, unsigned s)
{
	if (s < 144)
		put_code(w, 0x30 + s, 8);
	else if (s < 256)
		put_code(w, 0x190 + s - 144, 9);
	else if (s < 280)
		put_code(w, s - 256, 7);
	else
		put_code(w, 0xc0 + s - 280, 8);
}

static void test_deflate_corners(void)
{
	uint8_t gz[128];
	struct bw w;
	size_t n;
	/* "aaaaaaaaaa": CRC-32 0x4C11CDF0 (from python's zlib.crc32). */
	const uint8_t *ten = (const uint8_t *)"aaaaaaaaaa";

	/* Fixed block: literal 'a', then a match of 9 at distance 1. */
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 1, 2);
	put_fixed(&w, 'a');
	put_fixed(&w, 263);		/* length 9 */
	put_code(&w, 0, 5);		/* distance code 0: 1 */
	put_fixed(&w, 256);
	n = gz_wrap(&w, ten, 10, 0x4C11CDF0u, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, (uint8_t *)ten, 10), 0);
	/* The same with a wrong CRC, and with a wrong size. */
	gz[n - 8] ^= 1;
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);
	gz[n - 8] ^= 1;
	gz[n - 4] ^= 1;
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);
	gz[n - 4] ^= 1;
	/* Trailing garbage after the member. */
	gz[n] = 0;
	T_EQ(try_decode(DC_GZIP, gz, n + 1, NULL, 0), SL_E_CORRUPT);

	/* A match before the start of the stream: distance 2 after one byte. */
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 1, 2);
	put_fixed(&w, 'a');
	put_fixed(&w, 263);
	put_code(&w, 1, 5);		/* distance 2 */
	put_fixed(&w, 256);
	n = gz_wrap(&w, ten, 10, 0x4C11CDF0u, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);

	/* Distance codes 30 and 31 and length symbols 286, 287 do not exist. */
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 1, 2);
	put_fixed(&w, 'a');
	put_fixed(&w, 257);
	put_code(&w, 30, 5);
	put_fixed(&w, 256);
	n = gz_wrap(&w, ten, 10, 0, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 1, 2);
	put_fixed(&w, 'a');
	put_fixed(&w, 286);
	n = gz_wrap(&w, ten, 10, 0, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);

	/* Block type 3 is reserved. */
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 3, 2);
	n = gz_wrap(&w, ten, 0, 0, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);

	/* Stored block: LEN and NLEN must agree. */
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 0, 2);
	put(&w, 0, 5);			/* to the byte boundary */
	put(&w, 10, 16);
	put(&w, 0xffff ^ 10, 16);
	for (int i = 0; i < 10; i++)
		put(&w, 'a', 8);
	n = gz_wrap(&w, ten, 10, 0x4C11CDF0u, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, (uint8_t *)ten, 10), 0);
	gz[10 + 3] ^= 1;		/* NLEN */
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);

	/* A block that is never final runs out of input. */
	memset(&w, 0, sizeof(w));
	put(&w, 0, 1);
	put(&w, 1, 2);
	put_fixed(&w, 256);
	n = gz_wrap(&w, ten, 0, 0, gz);
	T_EQ(try_decode(DC_GZIP, gz, n - 8, NULL, 0), SL_E_CORRUPT);

	/* Reserved header flags, and a method other than 8. */
	memset(&w, 0, sizeof(w));
	put(&w, 1, 1);
	put(&w, 1, 2);
	put_fixed(&w, 256);
	n = gz_wrap(&w, ten, 0, 0, gz);
	T_EQ(try_decode(DC_GZIP, gz, n, (uint8_t *)"", 0), 0);
	gz[3] = 0x20;
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);
	gz[3] = 0;
	gz[2] = 7;
	T_EQ(try_decode(DC_GZIP, gz, n, NULL, 0), SL_E_CORRUPT);
}

static void test_match_copy(void)
{
	uint8_t a[256 + DC_SLACK], b[256 + DC_SLACK];

	for (size_t dist = 1; dist <= 40; dist++) {
		for (size_t len = 1; len <= 150; len++) {
			for (size_t i = 0; i < 50; i++)
				a[i] = b[i] = (uint8_t)(i * 7 + 1);
			dc_match(a + 50, dist, len);
			for (size_t i = 0; i < len; i++)
				b[50 + i] = b[50 + i - dist];
			if (memcmp(a, b, 50 + len) != 0) {
				fprintf(stderr, "  dc_match dist %zu len %zu\n", dist, len);
				T_CHECK(0);
				return;
			}
		}
	}
}

int main(void)
{
	T_RUN(test_vectors_decode);
	T_RUN(test_truncations_fail);
	T_RUN(test_bit_flips_never_crash);
	T_RUN(test_bombs_stop_at_max);
	T_RUN(test_bad_codec_and_empty_input);
	T_RUN(test_snappy_corners);
	T_RUN(test_lz4_corners);
	T_RUN(test_deflate_corners);
	T_RUN(test_match_copy);
	return t_done();
}
