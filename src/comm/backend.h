/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal interface between the comm engine (engine.c) and its back-ends,
 * in the style of Open MPI's components: each back-end is a constant struct
 * of function pointers; the engine picks one by name at create.
 *
 * The engine owns the bucket layout and decides when each bucket starts
 * (always in bucket order 0,1,2,... on every rank, bucket 0 being the end of
 * the buffer). A back-end owns everything else: its communicators, scratch
 * memory, requests and the phases a bucket goes through. It must allocate
 * all scratch in create; start/progress/wait allocate nothing. */
#ifndef TESSERA_COMM_BACKEND_H
#define TESSERA_COMM_BACKEND_H
#include <mpi.h>
#include <stddef.h>
#include "tessera/compute.h"

/* Bucket b covers buf[start, start + len). */
typedef struct comm_bucket {
    size_t start, len;
} comm_bucket_t;

/* Allreduce algorithms of the "mpi" back-end (and of "shm" between node
 * leaders); see mpi_internal.h and alg_select.c. */
enum { TSR_ALG_AUTO, TSR_ALG_RING, TSR_ALG_RABENSEIFNER, TSR_ALG_TREE, TSR_ALG_ALLTOALL, TSR_ALG_HIER, TSR_ALG_COUNT };

/* What a back-end calls in every loop that waits for other ranks (the
 * engine's owner watches the wait there: tsr_comm_set_idle). */
typedef struct comm_idle {
    void (*fn)(void *arg);
    void *arg;
} comm_idle_t;

static inline void comm_idle(const comm_idle_t *idle)
{
    if (idle && idle->fn)
        idle->fn(idle->arg);
}

/* What a back-end is bound to. Pointers stay valid until destroy. */
typedef struct comm_setup {
    MPI_Comm comm; /* the caller's communicator: duplicate it, never use it directly */
    int rank, size;
    float *buf;
    size_t n;
    const comm_bucket_t *buckets;
    size_t nbuckets;
    tsr_gpu_t *gpu;          /* non-NULL: buf is device memory on this GPU, and every
                     * bucket's data is final once the work queued on the
                     * GPU's stream before start() has run */
    tsr_precision_t half;    /* bf16/fp16: "nccl" sums a half copy (the staged host back-ends: fp32) */
    int algorithm;           /* TSR_ALG_*: the allreduce between ranks (or node leaders) */
    int fixed_tree;          /* sum as a perfect binary tree over ranks (tsr_comm_options_t) */
    const char *topology;    /* which ranks share a switch (tsr_comm_options_t, topology.h) */
    const comm_idle_t *idle; /* call comm_idle(idle) while waiting */
} comm_setup_t;

typedef struct comm_backend {
    const char *name;
    /* 0 when this back-end cannot run here, else its priority: "auto" picks
     * the highest (the first listed on ties). Collective over comm: the
     * engine calls it on every rank, for the same back-ends in the same
     * order, and it must return the same value on every rank. on_gpu: the
     * buffer is device memory. */
    int (*available)(MPI_Comm comm, int on_gpu);
    /* Collective over comm. Returns a TSR_* code and sets the message. */
    int (*create)(const comm_setup_t *setup, void **state);
    void (*destroy)(void *state); /* accepts NULL */
    /* Starts bucket b; the engine calls this with b = 0, 1, 2, ... in order. */
    int (*start)(void *state, size_t b);
    /* Drives buckets in flight forward without blocking. */
    int (*progress)(void *state);
    /* Called once every bucket has started: blocks until buf holds the sums
     * and resets for the next step. */
    int (*wait)(void *state);
    /* Optional (may be NULL; the engine does not use it): how many buckets,
     * 0..k-1, hold their final sums this step. Lets one back-end drive
     * another ("shm" runs "mpi" between node leaders, chunk by chunk). */
    size_t (*finished)(void *state);
    /* Optional: the name of the algorithm bucket b runs on this rank, or
     * NULL where the back-end runs none (one rank, one node). */
    const char *(*algorithm)(void *state, size_t b);
} comm_backend_t;

extern const comm_backend_t tsr_comm_mpi_component;
extern const comm_backend_t tsr_comm_shm_component;
extern const comm_backend_t tsr_comm_nccl_component;

#endif
