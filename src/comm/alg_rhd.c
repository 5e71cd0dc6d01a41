/* SPDX-License-Identifier: BSD-3-Clause */
/* Recursive halving/doubling (rabenseifner) and recursive doubling (tree)
 * of one piece; their common order is in alg_select.c.
 *
 * P' = the largest power of two <= P, rem = P - P', L = log2 P'.
 * Round 0 (fold): of the first 2*rem ranks, each even rank sends its piece
 *   to the odd rank after it, which adds it (the even rank's first) and
 *   takes part below as virtual rank r/2; the others are virtual r - rem.
 * Rounds 1..L, partner w = v ^ 2^(k-1):
 *   tree: exchange the whole piece, add (lower virtual rank first);
 *   rabenseifner: the piece is cut into P' blocks, block i = [i*m/P',
 *   (i+1)*m/P'); each rank holds a range of blocks, halves it, sends the
 *   half it gives up and adds the partner's copy of the half it keeps
 *   (lower virtual rank first). Bit k-1 of v says which half it keeps, so
 *   after L rounds virtual rank v holds block bitreverse(v) summed.
 * Rounds L+1..2L (rabenseifner): the same partners in reverse, each rank
 *   sending its range and receiving the partner's in place.
 * Round 2L+1 (unfold): each folded odd rank sends the sums back. */
#include "comm/mpi_internal.h"
#include "tessera/error.h"

typedef struct shape {
    int P2, rem, L;
} shape_t;

static shape_t shape_of(int P)
{
    shape_t sh = {1, 0, 0};
    while (sh.P2 * 2 <= P) {
        sh.P2 *= 2;
        sh.L++;
    }
    sh.rem = P - sh.P2;
    return sh;
}

/* Virtual rank of r, or -1 for an even rank that folded. */
static int virt(shape_t sh, int r)
{
    if (r < 2 * sh.rem)
        return r % 2 ? r / 2 : -1;
    return r - sh.rem;
}

static int real_rank(shape_t sh, int w) { return w < sh.rem ? 2 * w + 1 : w + sh.rem; }

/* The blocks [*lo, *hi) virtual rank v holds after `halvings` rounds. */
static void range_after(shape_t sh, int v, int halvings, int *lo, int *hi)
{
    *lo = 0;
    *hi = sh.P2;
    for (int i = 0; i < halvings; i++) {
        int mid = (*lo + *hi) / 2;
        if ((v >> i) & 1)
            *lo = mid;
        else
            *hi = mid;
    }
}

static size_t blk(shape_t sh, size_t m, int i) { return (size_t)i * m / (size_t)sh.P2; }

/* A receive (rcount floats into rbuf, unless rbuf is NULL) and a send
 * (unless sbuf is NULL), both with peer. */
static int post(mpi_state_t *s, mrun_t *run, float *rbuf, size_t rcount, const float *sbuf, size_t scount, int peer,
                const char *what)
{
    int tag = (int)(run->piece % TAG_MOD), err = MPI_SUCCESS;
    if (rbuf)
        err = MPI_Irecv(rbuf, (int)rcount, MPI_FLOAT, peer, tag, s->comm1, &run->req[0]);
    if (err == MPI_SUCCESS && sbuf)
        err = MPI_Isend(sbuf, (int)scount, MPI_FLOAT, peer, tag, s->comm1, &run->req[1]);
    return err == MPI_SUCCESS ? TSR_OK : tsr_mpi_fail(s, err, what, run->piece);
}

/* The local work of round k, whose requests have completed. */
static void finish(mpi_state_t *s, mrun_t *run, shape_t sh, int v, int rab, int k)
{
    const mpiece_t *pc = &s->pc[run->piece];
    const int r = s->rank;
    float *x = pc->base;
    if (k == 0) {
        if (r < 2 * sh.rem && r % 2)
            tsr_mpi_sum_into(s, x, run->tmp, pc->len, 1);
        return;
    }
    if (k > sh.L || v < 0)
        return;
    int j = k - 1, w = v ^ (1 << j);
    if (!rab) {
        tsr_mpi_sum_into(s, x, run->tmp, pc->len, w < v);
        return;
    }
    int lo, hi;
    range_after(sh, v, j + 1, &lo, &hi); /* the half kept */
    size_t a = blk(sh, pc->len, lo);
    tsr_mpi_sum_into(s, x + a, run->tmp, blk(sh, pc->len, hi) - a, w < v);
}

/* Posts round k; *posted says whether it had anything to send. */
static int start(mpi_state_t *s, mrun_t *run, shape_t sh, int v, int rab, int k, int *posted)
{
    const mpiece_t *pc = &s->pc[run->piece];
    const int r = s->rank;
    const size_t m = pc->len;
    float *x = pc->base;
    *posted = 0;
    if (k == 0 || k == 2 * sh.L + 1) {
        if (r >= 2 * sh.rem)
            return TSR_OK;
        *posted = 1;
        int odd = r % 2;
        int peer = odd ? r - 1 : r + 1;
        if ((k == 0) == (odd == 1)) /* fold: odd receives; unfold: even receives */
            return post(s, run, k == 0 ? run->tmp : x, m, NULL, 0, peer, "MPI_Irecv (fold)");
        return post(s, run, NULL, 0, x, m, peer, "MPI_Isend (fold)");
    }
    if (v < 0 || (!rab && k > sh.L))
        return TSR_OK;
    *posted = 1;
    if (k <= sh.L) {
        int j = k - 1, peer = real_rank(sh, v ^ (1 << j));
        if (!rab)
            return post(s, run, run->tmp, m, x, m, peer, "MPI_Irecv/MPI_Isend (tree)");
        int lo, hi, plo, phi;
        range_after(sh, v, j + 1, &lo, &hi);              /* kept */
        range_after(sh, v ^ (1 << j), j + 1, &plo, &phi); /* given up */
        size_t a = blk(sh, m, lo), b = blk(sh, m, plo);
        return post(s, run, run->tmp, blk(sh, m, hi) - a, x + b, blk(sh, m, phi) - b, peer,
                    "MPI_Irecv/MPI_Isend (rabenseifner, halving)");
    }
    int j = 2 * sh.L - k, w = v ^ (1 << j);
    int lo, hi, plo, phi;
    range_after(sh, v, j + 1, &lo, &hi);
    range_after(sh, w, j + 1, &plo, &phi);
    size_t a = blk(sh, m, lo), b = blk(sh, m, plo);
    return post(s, run, x + b, blk(sh, m, phi) - b, x + a, blk(sh, m, hi) - a, real_rank(sh, w),
                "MPI_Irecv/MPI_Isend (rabenseifner, doubling)");
}

static int rhd_step(mpi_state_t *s, mrun_t *run, int rab)
{
    shape_t sh = shape_of(s->size);
    int v = virt(sh, s->rank);
    for (;;) {
        int k = run->step;
        if (k > 0)
            finish(s, run, sh, v, rab, k - 1);
        if (k == 2 * sh.L + 2)
            return STEP_DONE;
        int posted = 0;
        int rc = start(s, run, sh, v, rab, k, &posted);
        if (rc)
            return rc;
        run->step++;
        if (posted)
            return STEP_POSTED;
    }
}

int tsr_alg_rhd_step(mpi_state_t *s, mrun_t *run) { return rhd_step(s, run, 1); }

int tsr_alg_tree_step(mpi_state_t *s, mrun_t *run) { return rhd_step(s, run, 0); }
