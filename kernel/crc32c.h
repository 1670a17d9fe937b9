/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of Kafka record batches and
 * of Sluice's WAL records and objects.
 *
 * The usual pre- and post-inversion happen inside, so results chain:
 * crc32c(crc32c(0, a, na), b, nb) == crc32c(0, ab, na + nb).  Start with 0.
 * crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef SL_CRC32C_H
#define SL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The SSE4.2 crc32 instruction when the CPU has it, else the table version. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
/* The table version, always (tests compare the two). */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n);
/* 1 if crc32c() uses the CPU instruction, 0 if the table version. */
int crc32c_hw(void);

#endif
