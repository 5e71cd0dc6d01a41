/* SPDX-License-Identifier: BSD-3-Clause */
/* The summation orders of the comm engine's allreduce algorithms, written
 * again from their description in src/comm/alg_select.c, so tests can
 * compute every sum the engine must produce, bit for bit. Which algorithm
 * "auto" runs on a piece and how big pieces are come from the library
 * (tsr_alg_choose, tsr_alg_pieces): the orders do not. */
#ifndef TSR_TEST_COMM_ORDER_H
#define TSR_TEST_COMM_ORDER_H
#include "comm/mpi_internal.h"

#include <stddef.h>

enum { ORDER_MAXP = 1024 };

/* The topology hier runs on (test_comm_topo.c): order_groups groups of
 * order_L ranks, order_member[g * order_L + i] the i-th rank of group g. */
static int order_groups, order_L, order_member[ORDER_MAXP];

/* The slice of a piece of m floats that offset off falls in (P slices,
 * slice j = [j*m/P, (j+1)*m/P)). */
static inline int order_slice(size_t off, size_t m, int P)
{
    size_t c = off * (size_t)P / (m ? m : 1);
    while (c > 0 && c * m / (size_t)P > off)
        c--;
    while ((c + 1) * m / (size_t)P <= off)
        c++;
    return (int)c;
}

static inline float order_pairwise(const float *leaf, int lo, int hi)
{
    if (hi - lo == 1)
        return leaf[lo];
    int mid = (lo + hi) / 2;
    return order_pairwise(leaf, lo, mid) + order_pairwise(leaf, mid, hi);
}

/* Slice c summed around the ring of a group's L ranks mem[], from its c+1st. */
static inline float order_group_sum(const float *v, const int *mem, int L, int c)
{
    float a = v[mem[(c + 1) % L]];
    for (int k = 2; k <= L; k++)
        a = a + v[mem[(c + k) % L]];
    return a;
}

/* v[0..P-1] summed as algorithm alg sums the element at offset off of a
 * piece of m floats. */
static inline float order_sum(int alg, const float *v, int P, size_t off, size_t m)
{
    if (alg == TSR_ALG_RING) {
        int c = order_slice(off, m, P);
        float acc = v[(c + 1) % P];
        for (int k = 2; k <= P; k++)
            acc = acc + v[(c + k) % P];
        return acc;
    }
    if (alg == TSR_ALG_RABENSEIFNER || alg == TSR_ALG_TREE) {
        float leaf[ORDER_MAXP];
        int P2 = 1;
        while (P2 * 2 <= P)
            P2 *= 2;
        int rem = P - P2;
        for (int w = 0; w < P2; w++)
            leaf[w] = w < rem ? v[2 * w] + v[2 * w + 1] : v[w + rem];
        return order_pairwise(leaf, 0, P2);
    }
    if (alg == TSR_ALG_HIER) { /* a ring within each group, then across them */
        const int L = order_L, G = order_groups;
        int c = order_slice(off, m, L);
        size_t lo = (size_t)c * m / (size_t)L, mc = (size_t)(c + 1) * m / (size_t)L - lo;
        int d = order_slice(off - lo, mc, G);
        float acc = order_group_sum(v, order_member + ((d + 1) % G) * L, L, c);
        for (int k = 2; k <= G; k++)
            acc = acc + order_group_sum(v, order_member + ((d + k) % G) * L, L, c);
        return acc;
    }
    float acc = v[0]; /* alltoall: rank order */
    for (int r = 1; r < P; r++)
        acc = acc + v[r];
    return acc;
}

/* Element i of a buffer of n floats cut from the end into units of `unit`
 * floats (the engine's buckets, or shm's chunks), each unit cut into the
 * library's number of equal pieces for the algorithm it runs on P ranks
 * under configured alg (tsr_alg_pieces; alltoall: not cut): its piece's
 * length *m, its offset *off in the piece and the length of its unit *ulen. */
static inline void order_piece_at(size_t n, size_t unit, int alg, int P, size_t i, size_t *off, size_t *m, size_t *ulen)
{
    size_t b = (n - 1 - i) / unit;
    size_t end = n - b * unit, start = end > unit ? end - unit : 0;
    size_t len = end - start;
    int ran = alg == TSR_ALG_AUTO ? tsr_alg_choose(P, len) : alg;
    size_t k = tsr_alg_pieces(len, tsr_alg_piece_env(), ran, P);
    size_t q = (i - start) * k / len;
    while (q > 0 && q * len / k > i - start)
        q--;
    while ((q + 1) * len / k <= i - start)
        q++;
    *off = i - start - q * len / k;
    *m = (q + 1) * len / k - q * len / k;
    *ulen = len;
}

/* The algorithm the pieces of a unit (bucket) of ulen floats run under
 * configured alg on P ranks. */
static inline int order_alg(int alg, int P, size_t ulen) { return alg == TSR_ALG_AUTO ? tsr_alg_choose(P, ulen) : alg; }

#endif
