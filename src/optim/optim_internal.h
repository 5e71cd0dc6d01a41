/* SPDX-License-Identifier: BSD-3-Clause */
/* The optimizer's state and the pieces its files share. */
#ifndef TSR_OPTIM_INTERNAL_H
#define TSR_OPTIM_INTERNAL_H
#include "tessera/optim.h"

#include <stdint.h>
#include <string.h>

struct tsr_optim {
    tsr_optim_config_t cfg;
    size_t n;
    long step;
    long nonfinite; /* the first update (1-based) that left a weight NaN or Inf; 0: none */
    long skipped;   /* updates skipped for non-finite gradients (on_nonfinite = skip) */
    float *state;   /* the optimizer's arrays (nopt), then the plateau's floats */
    size_t nstate, nopt;
    tsr_optim_segment_t *seg; /* sorted by offset; one [0, n) if none were set */
    int nseg;
    /* On a GPU (tsr_optim_to_gpu): the arrays live there, state mirrors them. */
    tsr_gpu_t *gpu;
    float *dstate;
    double *dsumsq;
    long long *dnote; /* GPU: [0] the first bad update, [1] skipped updates */
    double *dnorm;    /* LARS, LAMB: |p|^2 and |g|^2 (LAMB: |u|^2) per segment */
    float *du;        /* LAMB: the update direction u */
};

/* The plateau's floats after the arrays (tsr_optim_state). */
enum { PL_BEST, PL_BAD, PL_COOL, PL_LR, PL_N };

/* Non-finite check by bits, OR-reduced so loops stay vectorised: a float
 * is NaN or Inf exactly when its exponent bits are all ones, and adding
 * one to that exponent then carries into bit 31. */
#define NF_ACC(acc, x)                                                                                                 \
    do {                                                                                                               \
        uint32_t u_;                                                                                                   \
        memcpy(&u_, &(x), sizeof u_);                                                                                  \
        (acc) |= (u_ & 0x7f800000u) + 0x00800000u;                                                                     \
    } while (0)
#define NF_BAD(acc) (((acc)&0x80000000u) != 0)

/* EACH8's loop (common/vec.h) for the updates, 16 wide, whose body checks
 * with NF_LANE(x): each lane ORs into its own word, and the words fold
 * into nf once, after the loop. One scalar accumulator made GCC fold the
 * vector to a scalar every block (6 shuffles per 8 floats): two thirds of
 * SGD's time, in cache or not (0.22 against 0.07 ns a weight). */
#define NF_EACH16(i, n, nf, body)                                                                                      \
    do {                                                                                                               \
        uint32_t nf_l_[16] = {0};                                                                                      \
        size_t i##_blk = 0, i##_n = (n);                                                                               \
        for (; i##_blk + 16 <= i##_n; i##_blk += 16)                                                                   \
            for (size_t nf_j_ = 0; nf_j_ < 16; nf_j_++) {                                                              \
                size_t i = i##_blk + nf_j_;                                                                            \
                body;                                                                                                  \
            }                                                                                                          \
        for (size_t i = i##_blk; i < i##_n; i++) {                                                                     \
            size_t nf_j_ = 0;                                                                                          \
            body;                                                                                                      \
        }                                                                                                              \
        for (int nf_k_ = 0; nf_k_ < 16; nf_k_++)                                                                       \
            (nf) |= nf_l_[nf_k_];                                                                                      \
    } while (0)
#define NF_LANE(x) NF_ACC(nf_l_[nf_j_], x)

/* rules.c: the element-wise updates (SGD, AdamW, Adam, Lion, RMSprop);
 * layerwise.c: LAMB and LARS over the segments. Each returns the
 * OR-reduced non-finite bits of the new weights. */
uint32_t tsr_optim_update_elementwise(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr);
/* The element-wise rule over p[off, off + n), g[off, off + n) and the
 * state's same elements; 0 for LARS/LAMB, which are not element-wise. */
uint32_t tsr_optim_update_span(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr, size_t off,
                               size_t n);
int tsr_optim_is_elementwise(tsr_optim_kind_t kind);
uint32_t tsr_optim_update_layerwise(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr);
/* gpu.c: tsr_optim_step's update with the GPU kernels. */
int tsr_optim_step_gpu(tsr_optim_t *o, float *p, float *g, double *grad_norm, float lr);
int tsr_optim_gpu_alloc(tsr_optim_t *o, tsr_gpu_t *gpu);
void tsr_optim_gpu_free(tsr_optim_t *o);
/* sched.c: the schedule's checks against the run (create). */
int tsr_optim_sched_check(const tsr_optim_config_t *c);
/* L2 norm of x[0..n) in double (four partial sums: accurate, vectorised). */
double tsr_optim_norm(const float *x, size_t n);
#endif
