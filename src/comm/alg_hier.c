/* SPDX-License-Identifier: BSD-3-Clause */
/* Hierarchical allreduce of one piece (order in alg_select.c): the ranks
 * form G groups of L (leaf switches or nodes, topology.c), each group's
 * ranks ascending and numbered 0..L-1 in it.
 *
 * Rounds 0..L-2: a ring reduce-scatter within the group (alg_ring.c), so
 *   member i holds its group's sum of slice i (of L).
 * Then 2(G-1) rounds: a ring allreduce of slice i among the G members
 *   numbered i, one per group, through the groups in order.
 * Then L-1 rounds: the ring's allgather within the group.
 * A rank moves 2(P-1)/P of the piece each way, as in the flat ring, but in
 * 2(L-1) + 2(G-1) rounds instead of 2(P-1), and only the middle rounds
 * leave the switch: a 1/L share of the piece per rank, which the L ranks
 * of a leaf send at once. */
#include "comm/mpi_internal.h"

static int mod(int a, int P) { return ((a % P) + P) % P; }

static ring_t within(const mpi_state_t *s, const mpiece_t *pc)
{
    const tsr_topo_t *t = &s->topo;
    const int *g = t->members + (size_t)t->gi * (size_t)t->L;
    return (ring_t){pc->base, pc->len, t->L, t->li, g[mod(t->li - 1, t->L)], g[mod(t->li + 1, t->L)]};
}

static ring_t across(const mpi_state_t *s, const mpiece_t *pc)
{
    const tsr_topo_t *t = &s->topo;
    size_t lo = tsr_ring_slice_lo(pc->len, t->L, t->li), hi = tsr_ring_slice_lo(pc->len, t->L, t->li + 1);
    return (ring_t){pc->base + lo,
                    hi - lo,
                    t->G,
                    t->gi,
                    t->members[(size_t)mod(t->gi - 1, t->G) * (size_t)t->L + (size_t)t->li],
                    t->members[(size_t)mod(t->gi + 1, t->G) * (size_t)t->L + (size_t)t->li]};
}

int tsr_alg_hier_step(mpi_state_t *s, mrun_t *run)
{
    const mpiece_t *pc = &s->pc[run->piece];
    const int L = s->topo.L, G = s->topo.G, k = run->step;
    const int a_end = L - 1, b_end = a_end + 2 * (G - 1), c_end = b_end + L - 1;
    const ring_t in = within(s, pc);
    int rc;
    if (k <= a_end) { /* reduce-scatter within the group */
        if (k > 0)
            tsr_ring_finish(s, run, &in, k - 1);
        if (k < a_end) {
            rc = tsr_ring_post(s, run, &in, k);
            goto posted;
        }
    }
    if (k <= b_end) { /* allreduce of this member's slice across groups */
        const ring_t out = across(s, pc);
        int kb = k - a_end;
        if (kb > 0)
            tsr_ring_finish(s, run, &out, kb - 1);
        if (k < b_end) {
            rc = tsr_ring_post(s, run, &out, kb);
            goto posted;
        }
    }
    if (k == c_end)
        return STEP_DONE;
    rc = tsr_ring_post(s, run, &in, a_end + (k - b_end)); /* the allgather within the group */
posted:
    if (rc)
        return rc;
    run->step++;
    return STEP_POSTED;
}
