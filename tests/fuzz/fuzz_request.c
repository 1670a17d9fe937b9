/*
 * fuzz_request.c - one request frame, as the broker receives it after the
 * 4-byte size: the header, then the body decoded as the request (and, for
 * more coverage of the response descriptors, as the response) of that API
 * and version.
 *
 * Besides "never crash", it checks that decoding is canonical once through
 * the codec: whatever decodes, encodes; and that encoding decodes back and
 * re-encodes to the same bytes.  The arena is capped as the broker caps it,
 * relative to the frame, so hostile counts must fail cleanly.
 */
#include <stdlib.h>
#include <string.h>
#include "kafka/codec.h"
#include "kafka/msgs.h"

static void check(const struct kc_struct *s, int16_t ver, int flex,
		  const uint8_t *p, size_t n)
{
	struct arena a, b;
	struct sl_rd r;
	struct sl_wr w1, w2;
	void *body, *again;

	arena_init(&a, 16 * n + 65536);
	body = arena_alloc(&a, s->size);
	again = arena_alloc(&a, s->size);
	if (!body || !again)
		abort();
	rd_init(&r, p, n);
	if (kc_decode(s, ver, flex, &r, &a, body) != 0) {
		arena_free(&a);
		return;
	}
	wr_init(&w1, 0);
	wr_init(&w2, 0);
	if (kc_encode(s, ver, flex, body, &w1) != 0)
		abort();
	/* A second arena: the first may be nearly used up by a legal frame. */
	arena_init(&b, 0);
	rd_init(&r, w1.p, w1.len);
	if (kc_decode(s, ver, flex, &r, &b, again) != 0 || rd_left(&r) != 0)
		abort();
	if (kc_encode(s, ver, flex, again, &w2) != 0 || w1.len != w2.len ||
	    (w1.len && memcmp(w1.p, w2.p, w1.len) != 0))
		abort();
	wr_free(&w1);
	wr_free(&w2);
	arena_free(&b);
	arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_req_hdr h;
	const struct kc_api *api;
	struct sl_rd r;
	const uint8_t *body;
	size_t n;
	int flex;

	rd_init(&r, data, size);
	if (kc_decode_request_header(&r, &h, &api) != 0)
		return 0;
	flex = h.api_version >= api->flex_min;
	n = rd_left(&r);
	if (rd_bytes(&r, n, &body) != 0)
		abort();
	check(api->req, h.api_version, flex, body, n);
	check(api->resp, h.api_version, flex, body, n);
	return 0;
}
