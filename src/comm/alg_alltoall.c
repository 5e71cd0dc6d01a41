/* SPDX-License-Identifier: BSD-3-Clause */
/* The back-end's original schedule, kept selectable ("alltoall"), one
 * piece per bucket.
 *
 * A piece of m floats is cut into P slices, slice j = [j*m/P, (j+1)*m/P)
 * (sizes differ by at most one; some are empty when m < P). Rank r owns
 * slice r.
 *   Round 0, MPI_Ialltoallv: rank r sends its copy of slice j to rank j and
 *   receives every other rank's copy of slice r into scratch.
 *   Local sum: slice r = x_0 + x_1 + ... + x_{P-1}, accumulated in float in
 *   exactly that order, whatever order the data arrived in.
 *   Round 1, MPI_Iallgatherv in place: every rank gets every summed slice.
 *
 * MPI requires collectives on one communicator to be called in the same
 * order on every rank. Pieces start round 0 in piece order, but a rank
 * would start round 1 whenever its round 0 happened to finish, interleaving
 * differently on different ranks. So round 0 runs on one duplicate of the
 * caller's communicator and round 1 on another, and round 1 is started in
 * piece order too (piece p waits for p-1 to start round 1 first). */
#include "comm/mpi_internal.h"
#include "tessera/error.h"

#include <string.h>

/* Count and displacement arrays for this rank and m floats, P entries each:
 * gcount/gdispl: slice j's size and start (allgatherv; alltoallv send
 * displacements); scount: gcount, but 0 to this rank; rcount/rdispl: slice
 * r from each other rank into scratch (this rank's own copy is read in
 * place, never sent to itself). */
typedef struct layout {
    int *gcount, *gdispl, *scount, *rcount, *rdispl;
} layout_t;

static layout_t layout_of(const mpi_state_t *s, const mrun_t *run)
{
    size_t P = (size_t)s->size;
    layout_t l = {run->ints, run->ints + P, run->ints + 2 * P, run->ints + 3 * P, run->ints + 4 * P};
    return l;
}

static void layout_fill(const mpi_state_t *s, const mrun_t *run, size_t m)
{
    layout_t l = layout_of(s, run);
    size_t P = (size_t)s->size, rank = (size_t)s->rank;
    size_t own = (rank + 1) * m / P - rank * m / P;
    for (size_t j = 0; j < P; j++) {
        size_t lo = j * m / P, hi = (j + 1) * m / P;
        size_t slot = j < rank ? j : j - 1;
        l.gcount[j] = (int)(hi - lo);
        l.gdispl[j] = (int)lo;
        l.scount[j] = j == rank ? 0 : (int)(hi - lo);
        l.rcount[j] = j == rank ? 0 : (int)own;
        l.rdispl[j] = j == rank ? 0 : (int)(slot * own);
    }
}

enum { SUM_CHUNK = 1024 };

/* Slice r = x_0 + x_1 + ... + x_{P-1}, left to right in float, in
 * cache-sized chunks; the accumulation order per element is the same as a
 * scalar loop. */
static void local_sum(const mpi_state_t *s, const mrun_t *run)
{
    const mpiece_t *pc = &s->pc[run->piece];
    layout_t l = layout_of(s, run);
    int r = s->rank, P = s->size;
    size_t own = (size_t)l.gcount[r];
    float *mine = pc->base + l.gdispl[r];
    float acc[SUM_CHUNK];
    for (size_t i0 = 0; i0 < own; i0 += SUM_CHUNK) {
        size_t c = own - i0 < SUM_CHUNK ? own - i0 : SUM_CHUNK;
        for (int j = 0; j < P; j++) {
            const float *src = j == r ? mine + i0 : run->tmp + (size_t)l.rdispl[j] + i0;
            if (j == 0)
                memcpy(acc, src, c * sizeof *acc);
            else
                for (size_t i = 0; i < c; i++)
                    acc[i] += src[i];
        }
        memcpy(mine + i0, acc, c * sizeof *acc);
    }
    tsr_mpi_charge(s, own * (size_t)(P - 1));
}

int tsr_alg_alltoall_step(mpi_state_t *s, mrun_t *run)
{
    const mpiece_t *pc = &s->pc[run->piece];
    layout_t l = layout_of(s, run);
    int err;
    switch (run->step) {
    case 0:
        layout_fill(s, run, pc->len);
        err = MPI_Ialltoallv(pc->base, l.scount, l.gdispl, MPI_FLOAT, run->tmp, l.rcount, l.rdispl, MPI_FLOAT, s->comm1,
                             &run->req[0]);
        if (err != MPI_SUCCESS)
            return tsr_mpi_fail(s, err, "MPI_Ialltoallv", run->piece);
        run->step = 1;
        return STEP_POSTED;
    case 1:
        if (s->a2a_next != run->piece)
            return STEP_BLOCKED;
        local_sum(s, run);
        err = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, pc->base, l.gcount, l.gdispl, MPI_FLOAT, s->comm2,
                              &run->req[0]);
        if (err != MPI_SUCCESS)
            return tsr_mpi_fail(s, err, "MPI_Iallgatherv", run->piece);
        s->a2a_next++;
        run->step = 2;
        return STEP_POSTED;
    default: return STEP_DONE;
    }
}
