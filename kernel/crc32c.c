/*
 * crc32c.c - CRC-32C, in hardware where the CPU allows (see crc32c.h).
 *
 * Two implementations of the same function:
 *   - crc32c_sse42: the SSE4.2 crc32 instruction, eight bytes per step once
 *     the pointer is aligned.  It is compiled for SSE4.2 by a target
 *     attribute rather than relying on the build flags, and only ever called
 *     after cpuid said the instruction exists.  The instruction takes three
 *     cycles but can start one per cycle, so long buffers are cut into three
 *     streams of STRIPE bytes computed side by side and joined after: the
 *     CRC register is linear, so crc(A || B) = advance(crc(A), |B|) ^ crc0(B),
 *     where advance() feeds zero bytes.  Advancing by exactly STRIPE bytes
 *     is one fixed linear map on 32 bits, kept as four byte tables.
 *   - crc32c_sw: slice-by-8 over tables built once at start-up.
 *
 * Invariants: both compute the reflected CRC with polynomial 0x1EDC6F41
 * (0x82F63B78 reflected), and both take and return the finished (inverted)
 * value, so either may continue the other's result.  The tables and the CPU
 * check are set up by a constructor, before main and before any thread
 * exists; the ready flag also covers calls made from other constructors.
 */
#include <cpuid.h>
#include <string.h>
#include <nmmintrin.h>
#include "crc32c.h"

#define CRC32C_POLY 0x82F63B78u

#define STRIPE 4096

static uint32_t crc_tab[8][256];
static uint32_t stripe_tab[4][256];	/* advance by STRIPE zero bytes, per input byte */
static int crc_ready;
static int crc_use_hw;

/* m applied to the vector v: the XOR of the columns of m selected by v's bits. */
static uint32_t gf2_apply(const uint32_t m[32], uint32_t v)
{
	uint32_t r = 0;

	for (int j = 0; v; j++, v >>= 1)
		if (v & 1)
			r ^= m[j];
	return r;
}

static uint32_t advance_stripe(uint32_t c)
{
	return stripe_tab[0][c & 0xff] ^ stripe_tab[1][(c >> 8) & 0xff] ^
	       stripe_tab[2][(c >> 16) & 0xff] ^ stripe_tab[3][c >> 24];
}

static void crc32c_setup(void)
{
	unsigned a, b, c, d;
	uint32_t i, k, crc;

	for (i = 0; i < 256; i++) {
		crc = i;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (CRC32C_POLY & (0u - (crc & 1)));
		crc_tab[0][i] = crc;
	}
	/* crc_tab[k][i]: the effect of byte i followed by k zero bytes */
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			crc_tab[k][i] = (crc_tab[k - 1][i] >> 8) ^ crc_tab[0][crc_tab[k - 1][i] & 0xff];

	/*
	 * The map "advance the register by one zero bit" as a 32x32 matrix over
	 * GF(2) (column j = image of bit j), squared up to STRIPE * 8 bits.
	 */
	uint32_t m[32], sq[32];
	m[0] = CRC32C_POLY;
	for (k = 1; k < 32; k++)
		m[k] = 1u << (k - 1);
	for (uint32_t bits = 1; bits < STRIPE * 8; bits *= 2) {
		for (k = 0; k < 32; k++)
			sq[k] = gf2_apply(m, m[k]);
		memcpy(m, sq, sizeof(m));
	}
	for (k = 0; k < 4; k++)
		for (i = 0; i < 256; i++)
			stripe_tab[k][i] = gf2_apply(m, i << (8 * k));

	/* CPUID leaf 1, ECX bit 20: SSE4.2.  Works the same under musl static. */
	crc_use_hw = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
	crc_ready = 1;
}

__attribute__((constructor)) static void crc32c_ctor(void)
{
	if (!crc_ready)
		crc32c_setup();
}

uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = ~crc;

	if (!crc_ready)
		crc32c_setup();
	while (n && ((uintptr_t)b & 7)) {
		c = (c >> 8) ^ crc_tab[0][(c ^ *b++) & 0xff];
		n--;
	}
	while (n >= 8) {
		/* bytes in memory order, independent of host endianness */
		uint32_t lo = c ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 |
				   (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);

		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][b[4]] ^ crc_tab[2][b[5]] ^
		    crc_tab[1][b[6]] ^ crc_tab[0][b[7]];
		b += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *b++) & 0xff];
	return ~c;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t c = ~crc;

	while (n && ((uintptr_t)b & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *b++);
		n--;
	}
	while (n >= 3 * STRIPE) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < STRIPE; i += 8) {
			uint64_t w0, w1, w2;

			memcpy(&w0, b + i, 8);
			memcpy(&w1, b + STRIPE + i, 8);
			memcpy(&w2, b + 2 * STRIPE + i, 8);
			c = _mm_crc32_u64(c, w0);
			c1 = _mm_crc32_u64(c1, w1);
			c2 = _mm_crc32_u64(c2, w2);
		}
		c = advance_stripe((uint32_t)c) ^ (uint32_t)c1;
		c = advance_stripe((uint32_t)c) ^ (uint32_t)c2;
		b += 3 * STRIPE;
		n -= 3 * STRIPE;
	}
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, b, 8);
		c = _mm_crc32_u64(c, w);
		b += 8;
		n -= 8;
	}
	while (n--)
		c = _mm_crc32_u8((uint32_t)c, *b++);
	return ~(uint32_t)c;
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
	if (!crc_ready)
		crc32c_setup();
	if (crc_use_hw)
		return crc32c_sse42(crc, p, n);
	return crc32c_sw(crc, p, n);
}

int crc32c_hw(void)
{
	if (!crc_ready)
		crc32c_setup();
	return crc_use_hw;
}
