/* SPDX-License-Identifier: BSD-3-Clause */
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
 * rendezvous handshakes). On bigger worlds, per bucket of M bytes cut into
 * k pieces of s bytes (all in flight together):
 *   tree, when Hockney's model with a per-byte sum cost says it beats
 *     rabenseifner (a few KiB): L (a + s b) + L s g against
 *     2L a + 2(P'-1)/P' s b + (P'-1)/P' s g (L = log2 P', P' the largest
 *     power of two <= P, plus a fold's two rounds of s when P is not one);
 *   ring, when its slices (a piece over P, the ring's pieces being at
 *     most RING_PIECES) are RING_SLICE or more (a quarter of that when P is
 *     not a power of two, where rabenseifner's fold moves whole pieces
 *     twice more): then the transfers fill the link and hide the ring's
 *     2(P-1) round latencies, and each round sums only a slice, so little
 *     of the sums shows at the end; on a tapered fat-tree with block
 *     placement the ring also sends one flow per leaf boundary, where
 *     rabenseifner's long-distance rounds send every rank of a leaf across
 *     its uplinks at once;
 *   rabenseifner otherwise: latency-bound slices.
 * auto judges the ring with at most RING_PIECES pieces: it pipelines a
 * piece by its slices already, and four in flight hide its sums while the
 * link stays busy (a sum per byte costs a third of a 25 Gb/s link's time);
 * more pieces multiply its messages, 2(P-1) per piece and rank, which made
 * 256-rank rings impossible to simulate (the simulator's cost grows with
 * messages times flows in flight: 16 pieces cost 6x the CPU of 4 at 16
 * ranks). On worlds of up to 64 ranks, where messages stay few, the ring
 * then runs up to 16 (32 ranks or fewer) or 8 pieces while its slices stay
 * RING_SLICE or more: less of the last piece's sums shows at the end.
 * The thresholds come from SimGrid simulations on 16 to 256 ranks
 * (docs/SCALING.md): at 8 KiB slices rabenseifner was up to 8% faster, at
 * 16 KiB and more the ring was 0.3-1% faster on a flat network and up to
 * 19% on a 4:1 tapered fat-tree. */
#include "comm/mpi_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[TSR_ALG_COUNT] = {"auto", "ring", "rabenseifner", "tree", "alltoall", "hier"};

const char *tsr_alg_name(int alg) { return alg >= 0 && alg < TSR_ALG_COUNT ? names[alg] : "?"; }

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

/* Up to MAX_PIECES (the window) pieces of at least MIN_PIECE bytes: in
 * flight together, one piece's sums overlap the others' transfers, so a
 * bucket costs its transfers plus about one piece's sums. Smaller pieces
 * would add rounds whose latency no longer hides. */
enum { MIN_PIECE = 128 << 10, MAX_PIECES = WINDOW, RING_PIECES = 4 };

/* Pieces of at least MIN_PIECE bytes, at most `most`; with piece_env set,
 * pieces of at most piece_env bytes instead. */
static size_t cut(size_t bytes, size_t piece_env, size_t most)
{
    if (piece_env)
        return bytes <= piece_env ? 1 : (bytes + piece_env - 1) / piece_env;
    size_t k = bytes / MIN_PIECE;
    return k < 1 ? 1 : k > most ? most : k;
}

/* Hockney's constants for tree against rabenseifner: per round (s), per
 * byte moved (s), per byte summed (s): a 100 Gb/s interconnect. */
static const double ALPHA = 2e-6, BETA = 1.0 / 12.5e9, GAMMA = 1.0 / 10e9;
enum { RING_SLICE = 16 << 10 };

int tsr_alg_choose(int size, size_t bucket_floats)
{
    size_t env = tsr_alg_piece_env();
    double m = (double)bucket_floats * sizeof(float);
    double s = m / (double)tsr_alg_pieces(bucket_floats, env, TSR_ALG_RABENSEIFNER, size);
    int L = 0;
    while ((2 << L) <= size)
        L++;
    double P2 = (double)(1 << L), f = (1 << L) != size;
    double tree = (L + 2 * f) * (ALPHA + s * BETA) + (L + f) * s * GAMMA;
    double rab = 2 * (L + f) * ALPHA + (2 * (P2 - 1) / P2 + 2 * f) * s * BETA + ((P2 - 1) / P2 + f) * s * GAMMA;
    if (tree < rab)
        return TSR_ALG_TREE;
    double slice = m / (double)cut(bucket_floats * sizeof(float), env, RING_PIECES) / size; /* as auto judges it */
    if (slice >= RING_SLICE || (f && slice >= RING_SLICE / 4))
        return TSR_ALG_RING;
    return TSR_ALG_RABENSEIFNER;
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

size_t tsr_alg_pieces(size_t len, size_t piece_env, int alg, int size)
{
    size_t bytes = len * sizeof(float);
    if (alg == TSR_ALG_ALLTOALL)
        return 1;
    if (alg == TSR_ALG_RING) {
        /* Small worlds run more pieces, while slices stay RING_SLICE or
         * more: the last piece's sums are what shows at the end, and a
         * smaller piece shows less (16 ranks x 16 MiB: 0.9970 of the link
         * with 4 pieces, 0.9987 with 16, simulated), for messages that are
         * still few there. */
        size_t k = cut(bytes, piece_env, RING_PIECES);
        size_t most = size <= 32 ? 16 : size <= 64 ? 8 : RING_PIECES;
        size_t by_slice = size > 0 ? bytes / ((size_t)size * RING_SLICE) : 0;
        size_t more = by_slice < most ? by_slice : most;
        return piece_env || more <= k ? k : more;
    }
    return cut(bytes, piece_env, MAX_PIECES);
}

size_t tsr_alg_scratch(int alg, size_t m, int size)
{
    size_t P = (size_t)size;
    int pow2 = (size & (size - 1)) == 0;
    switch (alg) {
    case TSR_ALG_RING: return (m + P - 1) / P;
    case TSR_ALG_RABENSEIFNER: return pow2 ? (m + 1) / 2 : m; /* a folding rank receives the whole piece */
    case TSR_ALG_TREE: return m;
    case TSR_ALG_ALLTOALL: return (P - 1) * ((m + P - 1) / P);
    case TSR_ALG_HIER: return m / 2 + 1; /* a slice of the group's ring (groups of 2 or more) */
    default: return 0;
    }
}
