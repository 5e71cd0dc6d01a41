/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC-32 with zlib's polynomial and conventions: tsr_crc32(crc, p, n) gives
 * the same value as zlib's crc32(crc, p, n) (start from 0), so files keep
 * checksums that h5py's zlib.crc32 reproduces. Uses carry-less multiply
 * folding (PCLMULQDQ) where the CPU has it, checked once at run time, and
 * zlib otherwise. */
#ifndef TSR_COMMON_CRC32_H
#define TSR_COMMON_CRC32_H
#include <stddef.h>
#include <stdint.h>

uint32_t tsr_crc32(uint32_t crc, const void *p, size_t n);
/* 1 if tsr_crc32 uses the folding code on this CPU. */
int tsr_crc32_accelerated(void);

#endif
