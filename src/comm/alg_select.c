/* The "mpi" back-end's algorithms: names, what "auto" picks, piece sizes.
 *
 * Algorithms and their summation orders (x_r is rank r's input; every
 * rank ends with the same bits, run after run):
 *   alltoall      reduce-scatter by MPI_Ialltoallv, allgather by
 *                 MPI_Iallgatherv (the back-end's original schedule, O(P^2)
 *                 messages a bucket): ((x_0 + x_1) + x_2) + ... + x_{P-1}.
 *   ring          P slices; slice c is accumulated around the ring starting
 *                 at rank c+1: ((x_{c+1} + x_{c+2}) + ...) + x_c (indices mod
 *                 P), then passed round again: 2(P-1) rounds of m/P.
 *   rabenseifner  recursive halving (reduce-scatter), then recursive
 *                 doubling (allgather), partners at distance 1, 2, 4, ...
 *                 (the largest exchanges between neighbouring ranks, which
 *                 block placement puts under one switch): 2 log2 P rounds.
 *   tree          recursive doubling of the whole vector: log2 P rounds.
 * rabenseifner and tree add in the same order: with P' the largest power
 * of two <= P and rem = P - P', the leaves are L_v = x_{2v} + x_{2v+1} for
 * v < rem and x_{v+rem} after, and the sum is the pairwise tree over
 * L_0..L_{P'-1} ((L_0 + L_1) + (L_2 + L_3)) + ..., lower half first. For a
 * world that is not a power of two the first 2*rem ranks fold in pairs
 * before (and unfold after): one more whole-vector exchange each way.
 *
 * "auto" runs alltoall on worlds of up to 4 ranks: every rank meets every
 * other once, in 2 rounds, and P^2 messages are still few (on 2 and 3
 * ranks sharing a node it beat the p2p schedules, whose extra rounds cost
 * rendezvous handshakes). On bigger worlds it takes, per bucket, the
 * cheapest of ring, rabenseifner and tree by
 * a latency-bandwidth-reduction model (Hockney's, with a per-byte sum cost)
 * of a bucket of M bytes cut into k pieces of s = M/k bytes in flight
 * together, whose rounds overlap, so latency counts once per piece's
 * schedule and only the sums the last piece does alone show:
 *   tree  (L + 2f)(a + M b) + (L + f) s g
 *   rab   2(L + f) a + (2(P'-1)/P' + 2f) M b + (1/2 + f) s g
 *   ring  2(P-1) a + 2(P-1)/P M b + 2/P s g
 * (rab's first halving sums half a piece, the ring's last rounds a slice
 * each), with L = log2 P', f = 1 when P is not a power of two, and a, b, g
 * the constants below (a fast interconnect). So: tree for a few KiB,
 * rabenseifner up to a few MiB (and on big worlds, where the ring's
 * 2(P-1) rounds cost most), the ring for big buckets on small and
 * mid-sized worlds. tests/bench/scale_model.py fits a model of the same
 * terms to SimGrid simulations (docs/SCALING.md). Ties go to the first
 * listed (rabenseifner, ring, tree). */
#include "comm/mpi_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[TSR_ALG_COUNT] = {"auto", "ring", "rabenseifner", "tree", "alltoall"};

const char *tsr_alg_name(int alg)
{
    return alg >= 0 && alg < TSR_ALG_COUNT ? names[alg] : "?";
}

int tsr_alg_resolve(int alg, int size)
{
    return alg == TSR_ALG_AUTO && size <= AUTO_ALLTOALL_MAX ? TSR_ALG_ALLTOALL : alg;
}

int tsr_alg_parse(const char *name)
{
    if (!name)
        return TSR_ALG_AUTO;
    for (int a = 0; a < TSR_ALG_COUNT; a++)
        if (strcmp(name, names[a]) == 0)
            return a;
    return -1;
}

/* The model's constants: per round (s), per byte moved (s), per byte summed (s). */
static const double ALPHA = 1.5e-6, BETA = 1.0 / 12.5e9, GAMMA = 1.0 / 8e9;

static double model(int alg, int P, double m, double k)
{
    int L = 0;
    while ((2 << L) <= P)
        L++;
    double P2 = (double)(1 << L), f = (1 << L) != P, s = m / k;
    switch (alg) {
    case TSR_ALG_TREE:
        return (L + 2 * f) * (ALPHA + m * BETA) + (L + f) * s * GAMMA;
    case TSR_ALG_RABENSEIFNER:
        return 2 * (L + f) * ALPHA + (2 * (P2 - 1) / P2 + 2 * f) * m * BETA + (0.5 + f) * s * GAMMA;
    default: /* ring */
        return 2.0 * (P - 1) * ALPHA + 2.0 * (P - 1) / P * m * BETA + 2.0 / P * s * GAMMA;
    }
}

int tsr_alg_choose(int size, size_t bucket_floats)
{
    static const int order[] = {TSR_ALG_RABENSEIFNER, TSR_ALG_RING, TSR_ALG_TREE};
    double m = (double)bucket_floats * sizeof(float);
    double k = (double)tsr_alg_pieces(bucket_floats, tsr_alg_piece_env());
    int best = order[0];
    double cost = model(best, size, m, k);
    for (size_t i = 1; i < sizeof order / sizeof order[0]; i++) {
        double c = model(order[i], size, m, k);
        if (c < cost) {
            cost = c;
            best = order[i];
        }
    }
    return best;
}

size_t tsr_alg_piece_env(void)
{
    const char *v = getenv("TSR_COMM_PIECE_KB");
    if (v && *v) {
        char *end = NULL;
        errno = 0;
        long kb = strtol(v, &end, 10);
        if (!errno && end != v && !*end && kb > 0 && kb <= (long)(INT_MAX / 1024))
            return (size_t)kb << 10;
    }
    return 0;
}

/* Up to MAX_PIECES (the window) pieces of at least MIN_PIECE bytes: in
 * flight together, one piece's sums overlap the others' transfers, so a
 * bucket costs its transfers plus about one piece's sums. Smaller pieces
 * would add rounds whose latency no longer hides. */
enum { MIN_PIECE = 128 << 10, MAX_PIECES = WINDOW };

size_t tsr_alg_pieces(size_t len, size_t piece_env)
{
    size_t bytes = len * sizeof(float);
    if (piece_env)
        return bytes <= piece_env ? 1 : (bytes + piece_env - 1) / piece_env;
    size_t k = bytes / MIN_PIECE;
    return k < 1 ? 1 : k > MAX_PIECES ? MAX_PIECES : k;
}

size_t tsr_alg_scratch(int alg, size_t m, int size)
{
    size_t P = (size_t)size;
    int pow2 = (size & (size - 1)) == 0;
    switch (alg) {
    case TSR_ALG_RING:
        return (m + P - 1) / P;
    case TSR_ALG_RABENSEIFNER:
        return pow2 ? (m + 1) / 2 : m; /* a folding rank receives the whole piece */
    case TSR_ALG_TREE:
        return m;
    case TSR_ALG_ALLTOALL:
        return (P - 1) * ((m + P - 1) / P);
    default:
        return 0;
    }
}
