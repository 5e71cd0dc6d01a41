/* SPDX-License-Identifier: BSD-3-Clause */
/* A small, fast, seedable and serialisable random generator (xoshiro256**).
 * Plain struct so its state can be copied into checkpoints. */
#ifndef TESSERA_RNG_H
#define TESSERA_RNG_H
#include <stdint.h>
#include <stddef.h>
#include "tessera/api.h"

typedef struct tsr_rng {
    uint64_t s[4];
} tsr_rng_t;

/* Seeds from (seed, stream): different streams give independent sequences. */
TSR_API void tsr_rng_seed(tsr_rng_t *r, uint64_t seed, uint64_t stream);
TSR_API uint64_t tsr_rng_next(tsr_rng_t *r);
/* Uniform in [0, 1). */
TSR_API double tsr_rng_uniform(tsr_rng_t *r);
/* Uniform integer in [0, n). */
TSR_API uint64_t tsr_rng_below(tsr_rng_t *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
TSR_API void tsr_rng_shuffle(tsr_rng_t *r, uint32_t *idx, size_t n);

/* Counter-based draws (stateless): a key from four words, then a 64-bit
 * value for each counter. The same (key, counter) gives the same value on
 * any thread, rank or device, so dropout masks need no stored state. */
/* Callable from CUDA kernels too (dropout's masks on the GPU). */
#ifdef __CUDACC__
#define TSR_RNG_HD __host__ __device__
#else
#define TSR_RNG_HD
#endif
static inline TSR_RNG_HD uint64_t tsr_rng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline TSR_RNG_HD uint64_t tsr_rng_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t k = tsr_rng_mix(a + 0x9e3779b97f4a7c15ULL);
    k = tsr_rng_mix(k ^ (b + 0x632be59bd9b4e019ULL));
    k = tsr_rng_mix(k ^ (c + 0x85157af5ULL));
    return tsr_rng_mix(k ^ (d + 0x2545f4914f6cdd1dULL));
}
static inline TSR_RNG_HD uint64_t tsr_rng_counter(uint64_t key, uint64_t ctr)
{
    return tsr_rng_mix(key + (ctr + 1) * 0x9e3779b97f4a7c15ULL);
}

#endif
