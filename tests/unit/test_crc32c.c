/*
 * test_crc32c.c - known CRC-32C vectors (RFC 3720 appendix B.4 and the
 * usual check value), hardware and table versions agreeing on many lengths
 * and alignments, and chaining.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kernel/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f)
{
	uint8_t b[32];
	int i;

	T_EQ(f(0, "123456789", 9), 0xE3069283u);
	T_EQ(f(0, "", 0), 0);
	T_EQ(f(0, NULL, 0), 0);
	T_EQ(f(0x12345678, "", 0), 0x12345678u);
	memset(b, 0, sizeof(b));
	T_EQ(f(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, sizeof(b));
	T_EQ(f(0, b, 32), 0x62A8AB43u);
	for (i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	T_EQ(f(0, b, 32), 0x46DD794Eu);
	for (i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	T_EQ(f(0, b, 32), 0x113FDB5Cu);
	T_EQ(f(0, "a", 1), 0xC1D04330u);
}

static void test_vectors_default(void)
{
	printf("# crc32c uses %s\n", crc32c_hw() ? "the SSE4.2 instruction" : "tables");
	check_vectors(crc32c);
}

static void test_vectors_sw(void)
{
	check_vectors(crc32c_sw);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void test_hw_matches_sw(void)
{
	size_t cap = 100000, len, off, i;
	uint8_t *buf = malloc(cap + 16);
	int mismatches = 0;

	T_CHECK(buf != NULL);
	if (!buf)
		return;
	for (i = 0; i < cap + 16; i++)
		buf[i] = (uint8_t)next_rand();
	for (off = 0; off < 16; off++) {
		for (len = 0; len < 300; len++)
			if (crc32c(0, buf + off, len) != crc32c_sw(0, buf + off, len))
				mismatches++;
		for (i = 0; i < 40; i++) {
			uint32_t seed = next_rand();

			len = next_rand() % cap;
			if (crc32c(seed, buf + off, len) != crc32c_sw(seed, buf + off, len))
				mismatches++;
		}
	}
	/* Around the striped path's edges: 3 stripes of 4 KiB, and multiples. */
	for (off = 0; off < 16; off += 5)
		for (len = 3 * 4096 - 9; len < 3 * 4096 + 9; len++)
			for (i = 1; i <= 4; i++)
				if (crc32c(7, buf + off, len * i) != crc32c_sw(7, buf + off, len * i))
					mismatches++;
	T_EQ(mismatches, 0);
	free(buf);
}

static void test_chaining(void)
{
	uint8_t buf[1000];
	size_t i, split;
	int bad = 0;
	uint32_t whole, whole_sw;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)next_rand();
	whole = crc32c(0, buf, sizeof(buf));
	whole_sw = crc32c_sw(0, buf, sizeof(buf));
	T_EQ(whole, whole_sw);
	for (split = 0; split <= sizeof(buf); split += 7) {
		if (crc32c(crc32c(0, buf, split), buf + split, sizeof(buf) - split) != whole)
			bad++;
		/* the two implementations continue each other's results */
		if (crc32c_sw(crc32c(0, buf, split), buf + split, sizeof(buf) - split) != whole)
			bad++;
		if (crc32c(crc32c_sw(0, buf, split), buf + split, sizeof(buf) - split) != whole)
			bad++;
	}
	T_EQ(bad, 0);
	/* byte at a time */
	{
		uint32_t c = 0;

		for (i = 0; i < sizeof(buf); i++)
			c = crc32c(c, buf + i, 1);
		T_EQ(c, whole);
	}
}

int main(void)
{
	T_RUN(test_vectors_default);
	T_RUN(test_vectors_sw);
	T_RUN(test_hw_matches_sw);
	T_RUN(test_chaining);
	return t_done();
}
