/* SPDX-License-Identifier: BSD-3-Clause */
/* The "shm" back-end's state, shared by backend_shm.c (the per-step
 * phases) and backend_shm_setup.c (create and destroy). Internal. */
#ifndef TSR_COMM_SHM_INTERNAL_H
#define TSR_COMM_SHM_INTERNAL_H
#include "comm/backend.h"

#include <mpi.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    SLOTS = 4,         /* ring depth, in chunks */
    ALIGN_FLOATS = 16, /* slice boundaries: one 64-byte line */
    CTRL_BYTES = 256,  /* counters + padding at each segment's start */
    SPIN_LIMIT = 256,  /* rounds of 8 pauses (~30 us) before yielding */
    YIELD_LIMIT = 64,  /* then sched_yield calls before sleeping */
    SUM_BLOCK = 1024,  /* floats per block of the L > 2 sum */
};
/* 128 KiB: the ring (4 slots) is 512 KiB a rank, within a 1 MiB L2. On a
 * 2-core EPYC VM, 64 KiB..512 KiB chunks (and 2..8 slots) all ran 64 MiB
 * within ~10% of each other; below 64 KiB the per-chunk handshakes show. */
#define SHM_DEFAULT_CHUNK_BYTES ((size_t)128 << 10)

/* One local rank's published progress, in chunks (global sequence). Only
 * its owner writes it. */
typedef struct shm_ctrl {
    _Atomic uint64_t copied;  /* copied into its ring A segment */
    _Atomic uint64_t reduced; /* its slice summed into its segment */
    _Atomic uint64_t freed;   /* no longer read by it from ring A */
    _Atomic uint64_t final;   /* leader: final sums published in ring B */
    _Atomic uint64_t freed_b; /* copied out of the leader's ring B */
} shm_ctrl_t;

typedef struct shm_state {
    int rank, size;
    MPI_Comm node;    /* ranks of this (possibly fake) node */
    MPI_Comm leaders; /* local rank 0 of every node; hierarchical only */
    int lrank, lsize, nnodes;
    int hier; /* nnodes > 1 */
    int tree; /* local ranks summed pairwise, a perfect binary tree (comm_setup_t.fixed_tree) */
    int barrier_mode;
    int oversub; /* the real node's ranks outnumber its cores */
    MPI_Win win;
    int locked;
    float *buf;
    size_t n;
    const comm_bucket_t *buckets; /* the engine's, valid until destroy */
    size_t chunk;                 /* floats per chunk, a multiple of ALIGN_FLOATS */
    size_t nch;                   /* chunks in buf */
    size_t slots;                 /* ring depth in chunks: min(nch, SLOTS), 2 in barrier mode */
    comm_bucket_t *chunks;        /* chunk k, from the end of buf */
    shm_ctrl_t **ctrl;            /* [lsize] */
    float **ring;                 /* [lsize]: ring A segment of each local rank */
    float *ring_b;                /* the leader's ring B (hierarchical, lsize > 1) */
    const comm_backend_t *inner_be;
    void *inner;             /* "mpi" back-end over leaders (leader only) */
    uint64_t base;           /* chunks of all earlier steps */
    size_t ready_lo;         /* buf[ready_lo..n) may be read this step */
    size_t kin, kred, kout;  /* chunks [0, k) copied in, reduced, copied out */
    size_t kstart;           /* leader: chunks started on the inner back-end */
    size_t kfin;             /* hierarchical: chunks final in buf */
    const comm_idle_t *idle; /* called while waiting (the engine's) */
} shm_state_t;

/* Helpers in backend_shm.c that set-up needs too. */
long tsr_shm_env_long(const char *name, long max);
int tsr_shm_env_sync(void);
int tsr_shm_node_split(MPI_Comm comm, int rank, int size, long fake, MPI_Comm *node, int *real_size);
int tsr_shm_fail(int err, const char *call);
int tsr_shm_oversubscribed(int ranks);

void tsr_shm_destroy(void *state);
int tsr_shm_create(const comm_setup_t *setup, void **state);

#endif
