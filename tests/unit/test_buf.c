/*
 * test_buf.c - the reader consumes nothing on failure, varints reject
 * overlong and overflowing encodings, the writer grows, caps and poisons.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kernel/buf.h"

/*
 * The out-of-memory test asks for more than can exist; under AddressSanitizer
 * that must come back as NULL rather than abort the run.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static void test_fixed_roundtrip(void)
{
	struct sl_wr w;
	struct sl_rd r;
	uint8_t u8; int8_t i8; uint16_t u16; int16_t i16;
	uint32_t u32, u32le; int32_t i32; uint64_t u64, u64le; int64_t i64;

	wr_init(&w, 0);
	wr_u8(&w, 0xab);
	wr_i8(&w, -2);
	wr_u16(&w, 0xbeef);
	wr_i16(&w, -300);
	wr_u32(&w, 0xdeadbeef);
	wr_i32(&w, INT32_MIN);
	wr_u64(&w, 0x0102030405060708ull);
	wr_i64(&w, -1234567890123ll);
	wr_u32le(&w, 0x11223344);
	wr_u64le(&w, 0x8877665544332211ull);
	T_EQ(w.err, 0);
	T_EQ(w.len, 1 + 1 + 2 + 2 + 4 + 4 + 8 + 8 + 4 + 8);
	T_EQ(w.p[2], 0xbe);
	T_EQ(w.p[3], 0xef);
	T_EQ(w.p[30], 0x44);	/* little-endian low byte first */
	T_EQ(w.p[34], 0x11);

	rd_init(&r, w.p, w.len);
	T_EQ(rd_u8(&r, &u8), 0); T_EQ(u8, 0xab);
	T_EQ(rd_i8(&r, &i8), 0); T_EQ(i8, -2);
	T_EQ(rd_u16(&r, &u16), 0); T_EQ(u16, 0xbeef);
	T_EQ(rd_i16(&r, &i16), 0); T_EQ(i16, -300);
	T_EQ(rd_u32(&r, &u32), 0); T_CHECK(u32 == 0xdeadbeef);
	T_EQ(rd_i32(&r, &i32), 0); T_EQ(i32, INT32_MIN);
	T_EQ(rd_u64(&r, &u64), 0); T_CHECK(u64 == 0x0102030405060708ull);
	T_EQ(rd_i64(&r, &i64), 0); T_EQ(i64, -1234567890123ll);
	T_EQ(rd_u32le(&r, &u32le), 0); T_CHECK(u32le == 0x11223344);
	T_EQ(rd_u64le(&r, &u64le), 0); T_CHECK(u64le == 0x8877665544332211ull);
	T_EQ(rd_left(&r), 0);
	T_EQ(rd_u8(&r, &u8), SL_E_SHORT);
	wr_free(&w);
	T_CHECK(w.p == NULL);
}

static void test_short_consumes_nothing(void)
{
	static const uint8_t b[7] = { 1, 2, 3, 4, 5, 6, 7 };
	struct sl_rd r;
	uint16_t u16; uint32_t u32; uint64_t u64; int64_t i64; int32_t i32;
	const uint8_t *p;
	uint8_t dst[8];

	rd_init(&r, b, sizeof(b));
	T_EQ(rd_u64(&r, &u64), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_i64(&r, &i64), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_u64le(&r, &u64), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_bytes(&r, 8, &p), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_skip(&r, 8), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_copy(&r, dst, 8), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_skip(&r, SIZE_MAX), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_skip(&r, 5), 0);
	T_EQ(rd_u32(&r, &u32), SL_E_SHORT); T_EQ(r.off, 5);
	T_EQ(rd_i32(&r, &i32), SL_E_SHORT); T_EQ(r.off, 5);
	T_EQ(rd_u32le(&r, &u32), SL_E_SHORT); T_EQ(r.off, 5);
	T_EQ(rd_bytes(&r, SIZE_MAX - 2, &p), SL_E_SHORT); T_EQ(r.off, 5);
	T_EQ(rd_u16(&r, &u16), 0); T_EQ(u16, 0x0607);
	T_EQ(rd_u16(&r, &u16), SL_E_SHORT); T_EQ(r.off, 7);
	/* zero-length reads succeed at the end */
	T_EQ(rd_bytes(&r, 0, &p), 0);
	T_EQ(rd_copy(&r, dst, 0), 0);
	T_EQ(rd_skip(&r, 0), 0);
}

static void test_bytes_borrow(void)
{
	static const uint8_t b[5] = { 9, 8, 7, 6, 5 };
	struct sl_rd r;
	const uint8_t *p;
	uint8_t dst[2];

	rd_init(&r, b, sizeof(b));
	T_EQ(rd_bytes(&r, 2, &p), 0);
	T_CHECK(p == b);
	T_EQ(rd_copy(&r, dst, 2), 0);
	T_EQ(dst[0], 7); T_EQ(dst[1], 6);
	T_EQ(rd_left(&r), 1);
}

/* Encoded length of an unsigned varint, computed independently. */
static size_t uvar_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 128) {
		v >>= 7;
		n++;
	}
	return n;
}

static void test_varint_roundtrip(void)
{
	static const int32_t vi[] = { 0, 1, -1, 63, -64, 64, -65, 8191, -8192,
		INT32_MAX, INT32_MIN, 300, -300, 1 << 20 };
	static const int64_t vl[] = { 0, 1, -1, INT64_MAX, INT64_MIN,
		(int64_t)1 << 40, -((int64_t)1 << 40), 1234567890123ll };
	static const uint32_t uv[] = { 0, 127, 128, 16383, 16384, UINT32_MAX, 0x0fffffff, 0x10000000 };
	static const uint64_t ul[] = { 0, 127, 128, UINT64_MAX, (uint64_t)1 << 63, UINT32_MAX + 1ull };
	struct sl_wr w;
	struct sl_rd r;
	size_t i;

	wr_init(&w, 0);
	for (i = 0; i < sizeof(vi) / sizeof(vi[0]); i++)
		wr_varint(&w, vi[i]);
	for (i = 0; i < sizeof(vl) / sizeof(vl[0]); i++)
		wr_varlong(&w, vl[i]);
	for (i = 0; i < sizeof(uv) / sizeof(uv[0]); i++)
		wr_uvarint(&w, uv[i]);
	for (i = 0; i < sizeof(ul) / sizeof(ul[0]); i++)
		wr_uvarlong(&w, ul[i]);
	T_EQ(w.err, 0);
	rd_init(&r, w.p, w.len);
	for (i = 0; i < sizeof(vi) / sizeof(vi[0]); i++) {
		int32_t v = 0;
		T_EQ(rd_varint(&r, &v), 0);
		T_EQ(v, vi[i]);
	}
	for (i = 0; i < sizeof(vl) / sizeof(vl[0]); i++) {
		int64_t v = 0;
		T_EQ(rd_varlong(&r, &v), 0);
		T_CHECK(v == vl[i]);
	}
	for (i = 0; i < sizeof(uv) / sizeof(uv[0]); i++) {
		uint32_t v = 0;
		size_t before = r.off;
		T_EQ(rd_uvarint(&r, &v), 0);
		T_CHECK(v == uv[i]);
		T_EQ(r.off - before, uvar_len(uv[i]));
	}
	for (i = 0; i < sizeof(ul) / sizeof(ul[0]); i++) {
		uint64_t v = 0;
		size_t before = r.off;
		T_EQ(rd_uvarlong(&r, &v), 0);
		T_CHECK(v == ul[i]);
		T_EQ(r.off - before, uvar_len(ul[i]));
	}
	T_EQ(rd_left(&r), 0);
	wr_free(&w);
}

static void test_varint_known_bytes(void)
{
	struct sl_wr w;

	/* Kafka/protobuf: zig-zag maps -1 -> 1, 1 -> 2, -64 -> 127, 64 -> 128 */
	wr_init(&w, 0);
	wr_varint(&w, -1);
	wr_varint(&w, 1);
	wr_varint(&w, -64);
	wr_varint(&w, 64);
	wr_uvarint(&w, 300);
	T_EQ(w.len, 1 + 1 + 1 + 2 + 2);
	T_EQ(w.p[0], 0x01);
	T_EQ(w.p[1], 0x02);
	T_EQ(w.p[2], 0x7f);
	T_EQ(w.p[3], 0x80); T_EQ(w.p[4], 0x01);
	T_EQ(w.p[5], 0xac); T_EQ(w.p[6], 0x02);
	wr_free(&w);
}

static void test_varint_bad(void)
{
	struct sl_rd r;
	uint32_t u;
	uint64_t ul;
	int32_t i;
	/* a sixth byte would be needed: overlong */
	static const uint8_t over5[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	/* five bytes but the last carries bits beyond 32 */
	static const uint8_t big5[] = { 0xff, 0xff, 0xff, 0xff, 0x1f };
	static const uint8_t max5[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	static const uint8_t short3[] = { 0x80, 0x80, 0x80 };
	static const uint8_t over10[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t big10[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0x02 };
	static const uint8_t max10[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0x01 };
	/* padded zero is not rejected by length: 0x80 0x00 is a valid 2-byte 0 */
	static const uint8_t pad[] = { 0x80, 0x00 };

	rd_init(&r, over5, sizeof(over5));
	T_EQ(rd_uvarint(&r, &u), SL_E_INVALID); T_EQ(r.off, 0);
	T_EQ(rd_varint(&r, &i), SL_E_INVALID); T_EQ(r.off, 0);
	rd_init(&r, big5, sizeof(big5));
	T_EQ(rd_uvarint(&r, &u), SL_E_INVALID); T_EQ(r.off, 0);
	rd_init(&r, max5, sizeof(max5));
	T_EQ(rd_uvarint(&r, &u), 0); T_CHECK(u == UINT32_MAX); T_EQ(r.off, 5);
	rd_init(&r, max5, 4);
	T_EQ(rd_uvarint(&r, &u), SL_E_SHORT); T_EQ(r.off, 0);
	rd_init(&r, short3, sizeof(short3));
	T_EQ(rd_uvarint(&r, &u), SL_E_SHORT); T_EQ(r.off, 0);
	T_EQ(rd_uvarlong(&r, &ul), SL_E_SHORT); T_EQ(r.off, 0);
	rd_init(&r, short3, 0);
	T_EQ(rd_uvarint(&r, &u), SL_E_SHORT);
	rd_init(&r, over10, sizeof(over10));
	T_EQ(rd_uvarlong(&r, &ul), SL_E_INVALID); T_EQ(r.off, 0);
	rd_init(&r, big10, sizeof(big10));
	T_EQ(rd_uvarlong(&r, &ul), SL_E_INVALID); T_EQ(r.off, 0);
	rd_init(&r, max10, sizeof(max10));
	T_EQ(rd_uvarlong(&r, &ul), 0); T_CHECK(ul == UINT64_MAX); T_EQ(r.off, 10);
	rd_init(&r, pad, sizeof(pad));
	T_EQ(rd_uvarint(&r, &u), 0); T_EQ(u, 0); T_EQ(r.off, 2);
}

static void test_writer_growth(void)
{
	struct sl_wr w;
	uint8_t big[1000];
	size_t i, cap_prev = 0;
	int grows = 0;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	wr_init(&w, 0);
	T_CHECK(w.p == NULL);
	T_EQ(wr_ensure(&w, 0), 0);
	for (i = 0; i < 200; i++) {
		T_EQ(wr_bytes(&w, big, sizeof(big)), 0);
		if (w.cap != cap_prev) {
			if (cap_prev)
				T_CHECK(w.cap >= 2 * cap_prev);
			cap_prev = w.cap;
			grows++;
		}
	}
	T_EQ(w.len, 200 * sizeof(big));
	T_CHECK(grows < 20);
	T_MEMEQ(w.p + 199 * sizeof(big), big, sizeof(big));
	wr_free(&w);
}

/* wr_prepare: exactly the room asked for, contents kept, the cap honoured. */
static void test_writer_prepare(void)
{
	struct sl_wr w;
	size_t n = WR_POPULATE_MIN * 3 + 17, i;

	wr_init(&w, 0);
	T_EQ(wr_bytes(&w, "head", 4), 0);
	T_EQ(wr_prepare(&w, n), 0);
	T_EQ(w.cap, 4 + n);
	T_EQ(w.len, 4);
	T_MEMEQ(w.p, "head", 4);
	for (i = 0; i < n; i++)
		T_EQ(wr_u8(&w, (uint8_t)i), 0);
	T_EQ(w.cap, 4 + n);		/* filling what was prepared never grows it */
	T_EQ(w.p[4 + n - 1], (uint8_t)(n - 1));
	T_EQ(wr_prepare(&w, 0), 0);
	T_EQ(wr_prepare(&w, 10), 0);	/* a small one: no populate, still exact */
	T_EQ(w.cap, 4 + n + 10);
	wr_free(&w);

	wr_init(&w, 100);
	T_EQ(wr_prepare(&w, 100), 0);
	T_EQ(wr_prepare(&w, 101), SL_E_TOOBIG);
	T_EQ(w.err, SL_E_TOOBIG);	/* poisoned like any write past the cap */
	wr_free(&w);
}

static void test_writer_cap_poison(void)
{
	struct sl_wr w;
	uint8_t b[10] = { 0 };
	size_t at;

	wr_init(&w, 16);
	T_EQ(wr_bytes(&w, b, 10), 0);
	T_EQ(wr_u32(&w, 7), 0);
	T_EQ(w.len, 14);
	T_EQ(wr_u32(&w, 8), SL_E_TOOBIG);
	T_EQ(w.len, 14);
	T_CHECK(w.cap <= 16);
	/* poisoned: later writes that would fit still fail, len stays */
	T_EQ(wr_u8(&w, 1), SL_E_TOOBIG);
	T_EQ(wr_ensure(&w, 0), SL_E_TOOBIG);
	T_EQ(wr_reserve(&w, 1, &at), SL_E_TOOBIG);
	T_EQ(w.len, 14);
	/* a patch after failure is a no-op, not a crash */
	wr_patch_i32(&w, at, 5);
	wr_patch_i64(&w, at, 5);
	T_EQ(w.err, SL_E_TOOBIG);
	{
		size_t n = 99;
		uint8_t *p = wr_take(&w, &n);
		T_CHECK(p == NULL);
		T_EQ(n, 0);
	}
	T_EQ(w.err, 0);
	T_EQ(w.max, 16);
	T_EQ(wr_ensure(&w, SIZE_MAX), SL_E_TOOBIG);
	wr_free(&w);

	wr_init(&w, 0);
	T_EQ(wr_u8(&w, 1), 0);
	T_EQ(wr_ensure(&w, SIZE_MAX), SL_E_TOOBIG);
	T_EQ(wr_u8(&w, 1), SL_E_TOOBIG);
	wr_free(&w);
}

static void test_writer_nomem(void)
{
	struct sl_wr w;

	/* No cap, but far more than any machine can allocate. */
	wr_init(&w, 0);
	T_EQ(wr_u8(&w, 1), 0);
	T_EQ(wr_ensure(&w, SIZE_MAX / 2), SL_E_NOMEM);
	T_EQ(w.err, SL_E_NOMEM);
	T_EQ(w.len, 1);
	T_EQ(w.p[0], 1);
	T_EQ(wr_u8(&w, 2), SL_E_NOMEM);
	wr_free(&w);
}

static void test_reserve_patch_take(void)
{
	struct sl_wr w;
	struct sl_rd r;
	size_t at32, at64, n;
	int32_t v32;
	int64_t v64;
	uint8_t *p;

	wr_init(&w, 0);
	T_EQ(wr_reserve(&w, 4, &at32), 0);
	T_EQ(wr_reserve(&w, 8, &at64), 0);
	T_EQ(at32, 0);
	T_EQ(at64, 4);
	wr_bytes(&w, "hello", 5);
	wr_zero(&w, 3);
	wr_patch_i32(&w, at32, (int32_t)(w.len - 4));
	wr_patch_i64(&w, at64, -42);
	T_EQ(w.err, 0);
	p = wr_take(&w, &n);
	T_CHECK(w.p == NULL && w.len == 0 && w.cap == 0);
	T_EQ(n, 4 + 8 + 5 + 3);
	rd_init(&r, p, n);
	T_EQ(rd_i32(&r, &v32), 0); T_EQ(v32, 16);
	T_EQ(rd_i64(&r, &v64), 0); T_EQ(v64, -42);
	T_MEMEQ(p + 12, "hello\0\0\0", 8);
	free(p);

	wr_init(&w, 0);
	wr_reserve(&w, 4, &at32);
	wr_patch_u32(&w, at32, 0xa1b2c3d4);
	T_EQ(w.p[0], 0xa1); T_EQ(w.p[3], 0xd4);
	p = wr_take(&w, &n);
	free(p);
	p = wr_take(&w, &n);
	T_CHECK(p == NULL);
	T_EQ(n, 0);
}

static void test_strerror(void)
{
	T_CHECK(strcmp(sl_strerror(0), "success") == 0);
	T_CHECK(strstr(sl_strerror(SL_E_SHORT), "ended") != NULL);
	T_CHECK(strstr(sl_strerror(SL_E_CORRUPT), "checksum") != NULL);
	T_CHECK(strcmp(sl_strerror(-2), strerror(2)) == 0);
	T_CHECK(sl_strerror(SL_E_END) != NULL);
	T_CHECK(sl_strerror(12345) != NULL);
	T_CHECK(sl_strerror(-5000) != NULL);
	T_CHECK(sl_strerror(SL_E_BASE - 1) != NULL);
}

int main(void)
{
	T_RUN(test_fixed_roundtrip);
	T_RUN(test_short_consumes_nothing);
	T_RUN(test_bytes_borrow);
	T_RUN(test_varint_roundtrip);
	T_RUN(test_varint_known_bytes);
	T_RUN(test_varint_bad);
	T_RUN(test_writer_growth);
	T_RUN(test_writer_cap_poison);
	T_RUN(test_writer_nomem);
	T_RUN(test_reserve_patch_take);
	T_RUN(test_writer_prepare);
	T_RUN(test_strerror);
	return t_done();
}
