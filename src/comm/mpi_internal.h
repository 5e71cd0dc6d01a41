/* SPDX-License-Identifier: BSD-3-Clause */
/* The "mpi" back-end's state and its allreduce algorithms (internal).
 *
 * backend_mpi.c cuts each engine bucket into pieces, launches them in order
 * (at most WINDOW in flight) and drives each piece's schedule; a schedule is
 * a state machine of rounds (alg_ring.c, alg_rhd.c, alg_alltoall.c): each
 * call of its step function finds the previous round's requests complete,
 * does that round's local work and posts the next round's nonblocking
 * sends and receives. Which data is added to which, and in what order, is
 * fixed by the schedule, never by timing, so every algorithm is
 * bit-reproducible for a given world size (alg_select.c has the orders). */
#ifndef TSR_COMM_MPI_INTERNAL_H
#define TSR_COMM_MPI_INTERNAL_H
#include "comm/backend.h"
#include "comm/topology.h"

#include <mpi.h>
#include <stddef.h>

enum {
    WINDOW = 16,           /* pieces in flight per rank */
    TAG_MOD = 16384,       /* tags are piece % TAG_MOD (MPI guarantees 32767) */
    AUTO_ALLTOALL_MAX = 4, /* "auto" is alltoall up to this many ranks */
};

/* TSR_ALG_* (backend.h) names: "auto", "ring", "rabenseifner", "tree", "alltoall", "hier". */
const char *tsr_alg_name(int alg);
/* What a configured algorithm runs as on `size` ranks: "auto" is
 * alltoall on small worlds (alg_select.c), else unchanged. */
int tsr_alg_resolve(int alg, int size);
/* TSR_ALG_* for a name, or -1. NULL is "auto". */
int tsr_alg_parse(const char *name);
/* The algorithm "auto" runs for a bucket of bucket_floats on `size` ranks
 * (all its pieces): the cheapest by the cost model in alg_select.c. */
int tsr_alg_choose(int size, size_t bucket_floats);
/* TSR_COMM_PIECE_KB in bytes (a test and tuning hook), 0 when unset. */
size_t tsr_alg_piece_env(void);
/* How many pieces a bucket of len floats is cut into under alg on size
 * ranks (alltoall: always 1; ring: 4, or up to 16 on small worlds while
 * its slices stay 16 KiB; alg_select.c); piece_env: tsr_alg_piece_env() (when set,
 * pieces of at most that size, for every algorithm but alltoall). */
size_t tsr_alg_pieces(size_t len, size_t piece_env, int alg, int size);
/* Scratch floats one piece of m floats needs under alg. */
size_t tsr_alg_scratch(int alg, size_t m, int size);

/* One piece: buf[start, start + len) of bucket `bucket`, run by alg. */
typedef struct mpiece {
    float *base;
    size_t len;
    size_t bucket;
    int alg;
} mpiece_t;

/* A piece in flight: its schedule's position and requests. */
typedef struct mrun {
    size_t piece;
    int step;         /* the schedule's next round */
    MPI_Request *req; /* 2, in the state's request array */
    float *tmp;       /* this slot's scratch */
    int *ints;        /* this slot's alltoall counts (5 * size) */
} mrun_t;

/* A ring of n ranks over x[0, m): this rank is number `me` in it, left and
 * right are its neighbours' ranks in comm1 (alg_ring.c). */
typedef struct ring {
    float *x;
    size_t m;
    int n, me, left, right;
} ring_t;

typedef struct mpi_state {
    MPI_Comm comm1, comm2; /* p2p and alltoall phase 1; alltoall phase 2 */
    int rank, size;
    int alg; /* the configured TSR_ALG_* (may be auto) */
    size_t nbuckets, npieces;
    mpiece_t *pc;
    size_t *first;       /* bucket b's pieces are [first[b], first[b+1]) */
    unsigned char *done; /* per piece, this step */
    size_t nslots, slot_floats;
    float *scratch;              /* nslots * slot_floats */
    int *ints;                   /* nslots * 5 * size (alltoall counts) */
    MPI_Request *reqs;           /* 2 * nslots */
    int *indices;                /* 2 * nslots, for MPI_Waitsome */
    mrun_t *runs;                /* nslots: piece p runs in slot p % nslots */
    size_t ready;                /* buckets [0, ready) were started by the engine */
    size_t launched;             /* pieces [0, launched) have begun */
    size_t finished;             /* pieces [0, finished) are done */
    size_t bdone;                /* buckets [0, bdone) are done */
    size_t a2a_next;             /* alltoall pieces start phase 2 in piece order */
    double sum_seconds_per_byte; /* SimGrid: modelled cost of a sum, per output byte */
    int sums_charged_only;       /* SimGrid, TSR_SIM_SKIP_SUMS=1: charge sums, do not add */
    const comm_idle_t *idle;     /* called while wait polls (backend.h) */
    tsr_topo_t topo;             /* groups of ranks by switch or node (topology.h); G = 0: none */
} mpi_state_t;

/* What a step function reports. */
enum { STEP_POSTED, STEP_BLOCKED, STEP_DONE };

int tsr_alg_ring_step(mpi_state_t *s, mrun_t *run);
int tsr_alg_rhd_step(mpi_state_t *s, mrun_t *run);  /* rabenseifner */
int tsr_alg_tree_step(mpi_state_t *s, mrun_t *run); /* recursive doubling */
int tsr_alg_alltoall_step(mpi_state_t *s, mrun_t *run);
int tsr_alg_hier_step(mpi_state_t *s, mrun_t *run); /* ring within groups, across, within */

/* Slice j of m floats cut into P: its first float. */
size_t tsr_ring_slice_lo(size_t m, int P, int j);
/* Ring round k: its sum, once its transfers are done (reduce-scatter
 * rounds k < n-1; others add nothing), and posting its transfers. */
void tsr_ring_finish(const mpi_state_t *s, const mrun_t *run, const ring_t *g, int k);
int tsr_ring_post(const mpi_state_t *s, mrun_t *run, const ring_t *g, int k);

/* A failed MPI call of piece p as a TSR_EMPI message. */
int tsr_mpi_fail(const mpi_state_t *s, int err, const char *call, size_t piece);

/* x[i] = t[i] + x[i] (t_first) or x[i] + t[i], i < n; in a SimGrid build
 * the simulated host is charged the modelled time of the sum (and with
 * TSR_SIM_SKIP_SUMS=1 only charged: see backend_mpi.c). */
void tsr_mpi_sum_into(const mpi_state_t *s, float *x, const float *t, size_t n, int t_first);
/* Charges the modelled time of summing `floats` outputs (SimGrid only). */
void tsr_mpi_charge(const mpi_state_t *s, size_t floats);

#endif
