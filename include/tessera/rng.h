/* A small, fast, seedable and serialisable random generator (xoshiro256**).
 * Plain struct so its state can be copied into checkpoints. */
#ifndef TESSERA_RNG_H
#define TESSERA_RNG_H
#include <stdint.h>
#include <stddef.h>

typedef struct tsr_rng {
    uint64_t s[4];
} tsr_rng_t;

/* Seeds from (seed, stream): different streams give independent sequences. */
void tsr_rng_seed(tsr_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t tsr_rng_next(tsr_rng_t *r);
/* Uniform in [0, 1). */
double tsr_rng_uniform(tsr_rng_t *r);
/* Uniform integer in [0, n). */
uint64_t tsr_rng_below(tsr_rng_t *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void tsr_rng_shuffle(tsr_rng_t *r, uint32_t *idx, size_t n);

#endif
