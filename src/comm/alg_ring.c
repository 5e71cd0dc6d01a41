/* SPDX-License-Identifier: BSD-3-Clause */
/* Ring allreduce of one piece (order in alg_select.c), and the ring's
 * rounds over any ring of ranks (tsr_ring_*), which the hierarchical
 * algorithm runs within and across switches (alg_hier.c).
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

size_t tsr_ring_slice_lo(size_t m, int P, int j) { return (size_t)j * m / (size_t)P; }

static int mod(int a, int P) { return ((a % P) + P) % P; }

void tsr_ring_finish(const mpi_state_t *s, const mrun_t *run, const ring_t *g, int k)
{
    if (k < 0 || k >= g->n - 1) /* only reduce-scatter rounds sum */
        return;
    int j = mod(g->me - k - 2, g->n);
    size_t lo = tsr_ring_slice_lo(g->m, g->n, j);
    tsr_mpi_sum_into(s, g->x + lo, run->tmp, tsr_ring_slice_lo(g->m, g->n, j + 1) - lo, 1);
}

int tsr_ring_post(const mpi_state_t *s, mrun_t *run, const ring_t *g, int k)
{
    const int n = g->n, me = g->me;
    int send_j, recv_j;
    float *recv_to;
    if (k < n - 1) {
        send_j = mod(me - k - 1, n);
        recv_j = mod(me - k - 2, n);
        recv_to = run->tmp;
    } else {
        int a = k - (n - 1);
        send_j = mod(me - a, n);
        recv_j = mod(me - a - 1, n);
        recv_to = g->x + tsr_ring_slice_lo(g->m, n, recv_j);
    }
    size_t slo = tsr_ring_slice_lo(g->m, n, send_j), rlo = tsr_ring_slice_lo(g->m, n, recv_j);
    int tag = (int)(run->piece % TAG_MOD);
    int err = MPI_Irecv(recv_to, (int)(tsr_ring_slice_lo(g->m, n, recv_j + 1) - rlo), MPI_FLOAT, g->left, tag, s->comm1,
                        &run->req[0]);
    if (err != MPI_SUCCESS)
        return tsr_mpi_fail(s, err, "MPI_Irecv (ring)", run->piece);
    err = MPI_Isend(g->x + slo, (int)(tsr_ring_slice_lo(g->m, n, send_j + 1) - slo), MPI_FLOAT, g->right, tag, s->comm1,
                    &run->req[1]);
    if (err != MPI_SUCCESS)
        return tsr_mpi_fail(s, err, "MPI_Isend (ring)", run->piece);
    return TSR_OK;
}

int tsr_alg_ring_step(mpi_state_t *s, mrun_t *run)
{
    const mpiece_t *pc = &s->pc[run->piece];
    const int P = s->size, r = s->rank, k = run->step;
    const ring_t g = {pc->base, pc->len, P, r, mod(r - 1, P), mod(r + 1, P)};
    if (k > 0)
        tsr_ring_finish(s, run, &g, k - 1);
    if (k == 2 * (P - 1))
        return STEP_DONE;
    int rc = tsr_ring_post(s, run, &g, k);
    if (rc)
        return rc;
    run->step++;
    return STEP_POSTED;
}
