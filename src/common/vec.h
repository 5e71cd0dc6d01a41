/* SPDX-License-Identifier: BSD-3-Clause */
/* A loop shape GCC vectorises at -O2 (internal). */
#ifndef TSR_COMMON_VEC_H
#define TSR_COMMON_VEC_H
#include <stddef.h>

/* Runs body for i = 0 .. n-1, in blocks of 8 then the remainder. At -O2 GCC's
 * "very cheap" vectoriser skips loops that would need a scalar epilogue, so a
 * plain loop stays scalar (and, for the ReLU, branches on every element's
 * sign); the fixed-length inner loop is vectorised. Every element sees the
 * same operations in the same order, so results are unchanged. */
#define EACH8(i, n, body)                                                                                              \
    do {                                                                                                               \
        size_t i##_blk = 0, i##_n = (n);                                                                               \
        for (; i##_blk + 8 <= i##_n; i##_blk += 8)                                                                     \
            for (size_t i = i##_blk; i < i##_blk + 8; i++) {                                                           \
                body;                                                                                                  \
            }                                                                                                          \
        for (size_t i = i##_blk; i < i##_n; i++) {                                                                     \
            body;                                                                                                      \
        }                                                                                                              \
    } while (0)

/* Hot element-wise kernels: compiled three times, for AVX-512, AVX2 and the
 * baseline, the loader picking one by the CPU (ifunc), so a portable build
 * still runs 16- or 8-wide where it can. Results are the same: no FMA
 * contraction (-ffp-contract=off for the library, src/CMakeLists.txt). */
/* TSR_HOT_I64: the same for kernels built on 64-bit integer multiplies
 * (the counter-based RNG): AVX-512F alone has no 64-bit vector multiply
 * and GCC makes each of three; x86-64-v4 (AVX-512DQ) has one: dropout's
 * mask 2.5x faster on Zen 5. Past a v4 CPU, the AVX2 clone. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_ADDRESS__)
#define TSR_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#define TSR_HOT_I64 __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define TSR_HOT
#define TSR_HOT_I64
#endif

#endif
