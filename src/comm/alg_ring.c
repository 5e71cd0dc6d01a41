/* SPDX-License-Identifier: BSD-3-Clause */
/* Ring allreduce of one piece (order in alg_select.c).
 *
 * The piece's m floats are cut into P slices, slice j = [j*m/P, (j+1)*m/P).
 * Rounds k = 0..P-2 (reduce-scatter): rank r sends slice r-k-1 to r+1 and
 * receives slice r-k-2 from r-1 into scratch, then adds its own copy after
 * it; after round P-2 rank r holds the sum of slice r. Rounds P-1..2P-3
 * (allgather): rank r sends the last slice it completed to r+1 and receives
 * the next one from r-1 in place. Slices indices are mod P. Each round is
 * one send and one receive of m/P, so a rank moves 2(P-1)/P m each way. */
#include "comm/mpi_internal.h"
#include "tessera/error.h"

static size_t slice_lo(size_t m, int P, int j) { return (size_t)j * m / (size_t)P; }

static int mod(int a, int P) { return ((a % P) + P) % P; }

int tsr_alg_ring_step(mpi_state_t *s, mrun_t *run)
{
    const mpiece_t *pc = &s->pc[run->piece];
    const int P = s->size, r = s->rank, k = run->step;
    const int right = mod(r + 1, P), left = mod(r - 1, P);
    float *x = pc->base;
    const size_t m = pc->len;
    if (k > 0 && k - 1 < P - 1) { /* finish reduce-scatter round k-1 */
        int j = mod(r - (k - 1) - 2, P);
        size_t lo = slice_lo(m, P, j);
        tsr_mpi_sum_into(s, x + lo, run->tmp, slice_lo(m, P, j + 1) - lo, 1);
    }
    if (k == 2 * (P - 1))
        return STEP_DONE;
    int send_j, recv_j;
    float *recv_to;
    if (k < P - 1) {
        send_j = mod(r - k - 1, P);
        recv_j = mod(r - k - 2, P);
        recv_to = run->tmp;
    } else {
        int a = k - (P - 1);
        send_j = mod(r - a, P);
        recv_j = mod(r - a - 1, P);
        recv_to = x + slice_lo(m, P, recv_j);
    }
    size_t slo = slice_lo(m, P, send_j), rlo = slice_lo(m, P, recv_j);
    int tag = (int)(run->piece % TAG_MOD);
    int err = MPI_Irecv(recv_to, (int)(slice_lo(m, P, recv_j + 1) - rlo), MPI_FLOAT, left, tag, s->comm1, &run->req[0]);
    if (err != MPI_SUCCESS)
        return tsr_mpi_fail(s, err, "MPI_Irecv (ring)", run->piece);
    err = MPI_Isend(x + slo, (int)(slice_lo(m, P, send_j + 1) - slo), MPI_FLOAT, right, tag, s->comm1, &run->req[1]);
    if (err != MPI_SUCCESS)
        return tsr_mpi_fail(s, err, "MPI_Isend (ring)", run->piece);
    run->step++;
    return STEP_POSTED;
}
