/*
 * fuzz_decompress.c - the batch codecs on hostile payloads.  The first byte
 * is the codec as in the batch attributes (1 gzip, 2 snappy, 3 lz4, 4 zstd;
 * anything else must be refused as invalid), the rest is the payload, and
 * output is capped at 1 MiB.
 *
 * Besides "never crash", it checks what the contract promises: only the
 * listed errors; output within the cap; and that the cap is exact - a
 * payload that decodes to L bytes decodes to the same bytes with a cap of L
 * and fails with SL_E_TOOBIG with a cap of L - 1.
 *
 * The payload is copied to a buffer of exactly its size, so AddressSanitizer
 * catches a read even one byte past it.
 */
#include <stdlib.h>
#include <string.h>
#include "kafka/decompress.h"
#include "kernel/err.h"

#define MAX_OUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *in, *out, *again;
	size_t n, len, len2;
	int codec, rc;

	if (size < 1)
		return 0;
	codec = data[0];
	n = size - 1;
	if (!(in = malloc(n ? n : 1)))
		abort();
	memcpy(in, data + 1, n);
	rc = batch_decompress(codec, in, n, MAX_OUT, &out, &len);
	if (codec < DC_GZIP || codec > DC_ZSTD) {
		if (rc != SL_E_INVALID)
			abort();
		free(in);
		return 0;
	}
	if (rc != 0) {
		if (rc != SL_E_CORRUPT && rc != SL_E_TOOBIG)
			abort();
		free(in);
		return 0;
	}
	if (!out || len > MAX_OUT)
		abort();
	if (batch_decompress(codec, in, n, len, &again, &len2) != 0 || len2 != len ||
	    (len && memcmp(out, again, len) != 0))
		abort();
	free(again);
	if (len > 0 && batch_decompress(codec, in, n, len - 1, &again, &len2) != SL_E_TOOBIG)
		abort();
	free(out);
	free(in);
	return 0;
}
