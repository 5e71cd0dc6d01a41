/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC-32 (zlib's) by folding with carry-less multiplication: four 128-bit
 * lanes fold 64 bytes per round, then Barrett reduction to 32 bits, after
 * Gopal et al., "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ Instruction" (Intel, 2009), in the bit-reflected domain of
 * zlib's polynomial 0xEDB88320. Lengths under 64 bytes and the tail that is
 * not a multiple of 16 go to zlib. */
#include "common/crc32.h"

#include <pthread.h>
#include <zlib.h>

/* zlib takes uInt lengths. */
static uint32_t crc_zlib(uint32_t crc, const unsigned char *b, size_t n)
{
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? 1u << 30 : (uInt)n;
        crc = (uint32_t)crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_FOLD 1

/* Takes and returns the CRC register (not inverted); n >= 64, n % 16 == 0. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t fold(uint32_t crc, const unsigned char *b, size_t n)
{
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
    const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 0x00));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(const void *)(b + 0x10));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(const void *)(b + 0x20));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(const void *)(b + 0x30));
    __m128i x5, x6, x7, x8, k = k1k2;
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    b += 64;
    n -= 64;
    while (n >= 64) {
        x5 = _mm_clmulepi64_si128(x1, k, 0x00);
        x6 = _mm_clmulepi64_si128(x2, k, 0x00);
        x7 = _mm_clmulepi64_si128(x3, k, 0x00);
        x8 = _mm_clmulepi64_si128(x4, k, 0x00);
        x1 = _mm_clmulepi64_si128(x1, k, 0x11);
        x2 = _mm_clmulepi64_si128(x2, k, 0x11);
        x3 = _mm_clmulepi64_si128(x3, k, 0x11);
        x4 = _mm_clmulepi64_si128(x4, k, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), _mm_loadu_si128((const __m128i *)(const void *)(b + 0x00)));
        x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), _mm_loadu_si128((const __m128i *)(const void *)(b + 0x10)));
        x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), _mm_loadu_si128((const __m128i *)(const void *)(b + 0x20)));
        x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), _mm_loadu_si128((const __m128i *)(const void *)(b + 0x30)));
        b += 64;
        n -= 64;
    }
    /* Four lanes into one. */
    k = k3k4;
    x5 = _mm_clmulepi64_si128(x1, k, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k, 0x11), x2), x5);
    x5 = _mm_clmulepi64_si128(x1, k, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k, 0x11), x3), x5);
    x5 = _mm_clmulepi64_si128(x1, k, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k, 0x11), x4), x5);
    while (n >= 16) {
        x2 = _mm_loadu_si128((const __m128i *)(const void *)b);
        x5 = _mm_clmulepi64_si128(x1, k, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k, 0x11), x2), x5);
        b += 16;
        n -= 16;
    }
    /* 128 bits to 64, then Barrett reduction to 32. */
    x2 = _mm_clmulepi64_si128(x1, k, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5k0, 0x00), x2);
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
    x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), poly, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int use_fold;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    __builtin_cpu_init();
    use_fold = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}
#endif

int tsr_crc32_accelerated(void)
{
#ifdef HAVE_FOLD
    pthread_once(&probe_once, probe);
    return use_fold;
#else
    return 0;
#endif
}

uint32_t tsr_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
#ifdef HAVE_FOLD
    if (n >= 64 && tsr_crc32_accelerated()) {
        size_t whole = n & ~(size_t)15;
        crc = ~fold(~crc, b, whole);
        b += whole;
        n -= whole;
    }
#endif
    return crc_zlib(crc, b, n);
}
