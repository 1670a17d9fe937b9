/*
 * crcbench.c - CRC-32C throughput of the function every produced batch and
 * every WAL record goes through, beside the portable table version measured
 * in the same run: `build/bench/crcbench [BUFFER_BYTES] [ROUNDS]`.
 *
 * Prints one line per implementation: buffer size, MB/s (2^20 bytes), and
 * the final CRC, which must be equal for both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "../kernel/crc32c.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(const char *name, uint32_t (*fn)(uint32_t, const void *, size_t),
		const unsigned char *buf, size_t n, int rounds)
{
	uint32_t crc = 0;
	double t0 = now();

	for (int r = 0; r < rounds; r++)
		crc = fn(crc, buf, n);
	double s = now() - t0;
	printf("crc32c %-28s %8zu bytes  %9.0f MB/s  crc %08x\n", name, n,
	       (double)n * rounds / s / (1 << 20), crc);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : (size_t)1 << 20;
	int rounds = argc > 2 ? atoi(argv[2]) : 1000;
	unsigned char *buf = malloc(n ? n : 1);

	if (!buf || rounds <= 0) {
		fprintf(stderr, "usage: crcbench [BUFFER_BYTES] [ROUNDS]\n");
		return 2;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	run(crc32c_hw() ? "(SSE4.2, 3 stripes)" : "(no SSE4.2: table)", crc32c, buf, n, rounds);
	run("table (slice-by-8, baseline)", crc32c_sw, buf, n, rounds);
	free(buf);
	return 0;
}
