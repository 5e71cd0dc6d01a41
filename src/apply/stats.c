/* SPDX-License-Identifier: BSD-3-Clause */
/* Column statistics that do not depend on the number of ranks.
 *
 * Count, mean and the sum of squared deviations are formed per partition
 * (two passes over each block of it in cache, the blocks merged in order)
 * and merged with Chan et al.'s formula in partition order on rank 0, whichever rank did which
 * partition, so the result is the same bytes for any N.
 *
 * Quantiles and the histogram come from a fixed-bucket sketch: each value
 * counts in the bucket named by the top `bits` bits of its order-preserving
 * integer key (sign, exponent, the first mantissa bits: 16 bits give a
 * relative bucket width of 2^-7). Counts are integers, so their sum is
 * exact in any order and the sketch merges by MPI_SUM. A quantile is read
 * off the cumulative counts and placed inside its bucket by rank, clamped
 * to the column's min and max. */
#include "apply/internal.h"

#include "common/vec.h"
#include "tessera/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The histogram of every column together stays under this many bytes. */
#define HIST_BUDGET ((size_t)128 << 20)
/* Values per block of apply_stats_add: 64 KiB of them and as many indices. */
#define BLOCK_ELEMS ((size_t)1 << 14)

static inline uint32_t okey(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);
}

static float key_value(uint32_t k)
{
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int apply_stats_create(apply_stats_t *st, size_t d, size_t nparts, int histogram)
{
    memset(st, 0, sizeof *st);
    st->d = d;
    st->nparts = nparts;
    if (histogram)
        for (st->bits = 16; st->bits > 8 && (d << st->bits) * sizeof(uint64_t) > HIST_BUDGET; st->bits -= 2)
            ;
    st->part = calloc(nparts * d, sizeof *st->part);
    st->mine = calloc(nparts, 1);
    st->total = calloc(d, sizeof *st->total);
    st->hist = st->bits ? calloc((d << st->bits) + 1, sizeof *st->hist) : NULL;
    st->hot = st->bits ? calloc((d << st->bits) + 1, sizeof *st->hot) : NULL;
    st->scratch = malloc(d * (6 * sizeof(double) + 2 * sizeof(float)));
    st->block_elems = BLOCK_ELEMS > d ? BLOCK_ELEMS / d * d : d;
    st->idx = st->bits ? malloc(st->block_elems * sizeof *st->idx) : NULL;
    st->base = st->bits ? malloc(d * sizeof *st->base) : NULL;
    if (!st->part || !st->mine || !st->total || (st->bits && (!st->hist || !st->hot || !st->idx || !st->base)) ||
        !st->scratch) {
        apply_stats_destroy(st);
        return tsr_error_set(TSR_ENOMEM, "apply stats: out of memory for %zu columns and %zu partitions", d, nparts);
    }
    for (size_t c = 0; st->base && c < d; c++)
        st->base[c] = (uint32_t)(c << st->bits);
    return TSR_OK;
}

void apply_stats_destroy(apply_stats_t *st)
{
    free(st->part);
    free(st->mine);
    free(st->total);
    free(st->hist);
    free(st->hot);
    free(st->scratch);
    free(st->idx);
    free(st->base);
    memset(st, 0, sizeof *st);
}

/* The 32-bit counts into the 64-bit ones: half the bytes stay hot in the
 * cache while partitions are added. */
static void apply_stats_flush(apply_stats_t *st)
{
    size_t len = st->d << st->bits;
    for (size_t i = 0; st->hot && i < len; i++)
        st->hist[i] += st->hot[i];
    if (st->hot)
        memset(st->hot, 0, (len + 1) * sizeof *st->hot);
    st->hot_rows = 0;
}

/* A block's sums, NaN counts and extremes, every column of a row in
 * registers (branch-free, so it vectorises across the columns). */
static TSR_HOT void block_sums(const float *restrict x, size_t rows, size_t d, double *restrict sum,
                               double *restrict nan, float *restrict mn, float *restrict mx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *restrict row = x + r * d;
        for (size_t c = 0; c < d; c++) {
            float v = row[c];
            int ok = v == v;
            sum[c] += ok ? v : 0.0f;
            nan[c] += !ok;
            mn[c] = v < mn[c] ? v : mn[c];
            mx[c] = v > mx[c] ? v : mx[c];
        }
    }
}

/* The bucket of each value (NaNs: the spare slot past the end), computed
 * vector-wide into idx; the scatter that follows is then a load and an
 * increment per value. */
static TSR_HOT void block_keys(const float *restrict x, size_t n, size_t d, const uint32_t *restrict base, int shift,
                               uint32_t junk, uint32_t *restrict idx)
{
    for (size_t i = 0; i < n; i += d)
        for (size_t c = 0; c < d; c++) {
            float v = x[i + c];
            uint32_t k = okey(v) >> shift;
            idx[i + c] = v == v ? base[c] | k : junk;
        }
}

static TSR_HOT void block_squares(const float *restrict x, size_t rows, size_t d, const double *restrict mean,
                                  double *restrict m2)
{
    for (size_t r = 0; r < rows; r++) {
        const float *restrict row = x + r * d;
        for (size_t c = 0; c < d; c++) {
            double dv = (double)row[c] - mean[c];
            m2[c] += dv == dv ? dv * dv : 0.0;
        }
    }
}

/* Chan et al.: (n, mean, m2) of b's rows after a's. */
static void chan(double *an, double *amean, double *am2, double bn, double bmean, double bm2)
{
    if (bn <= 0)
        return;
    double n = *an + bn, delta = bmean - *amean;
    *amean = *an > 0 ? *amean + delta * (bn / n) : bmean;
    *am2 = *am2 + bm2 + delta * delta * (*an * bn / n);
    *an = n;
}

/* Per partition, block by block (a block's values and bucket indices stay
 * in L2 across its three passes): the sums, extremes and NaN counts, the
 * histogram, then the squared deviations from the block's own mean; the
 * blocks' moments are merged in row order. The blocks are fixed by the
 * partition, so the result still does not depend on the number of ranks. */
void apply_stats_add(apply_stats_t *st, size_t part, const float *x, size_t rows)
{
    size_t d = st->d, brows = st->block_elems / d ? st->block_elems / d : 1;
    apply_col_t *pc = st->part + part * d;
    double *sum = st->scratch, *m2 = sum + d, *nan = m2 + d, *pn = nan + d, *pmean = pn + d, *pm2 = pmean + d;
    float *mn = (float *)(pm2 + d), *mx = mn + d;
    for (size_t c = 0; c < d; c++) {
        pn[c] = pmean[c] = pm2[c] = 0;
        pc[c].nans = 0;
        mn[c] = INFINITY;
        mx[c] = -INFINITY;
    }
    if (st->hist && st->hot_rows + rows > UINT32_MAX)
        apply_stats_flush(st);
    st->hot_rows += rows;
    for (size_t r0 = 0; r0 < rows; r0 += brows) {
        size_t br = rows - r0 < brows ? rows - r0 : brows;
        const float *b = x + r0 * d;
        for (size_t c = 0; c < d; c++)
            sum[c] = m2[c] = nan[c] = 0;
        block_sums(b, br, d, sum, nan, mn, mx);
        if (st->hist) {
            uint32_t *h = st->hot, *idx = st->idx;
            block_keys(b, br * d, d, st->base, 32 - st->bits, (uint32_t)(d << st->bits), idx);
            for (size_t i = 0; i < br * d; i++)
                h[idx[i]]++;
        }
        for (size_t c = 0; c < d; c++) {
            double n = (double)br - nan[c];
            pc[c].nans += nan[c];
            nan[c] = n;
            sum[c] = n > 0 ? sum[c] / n : 0; /* the block's mean, for the deviations */
        }
        block_squares(b, br, d, sum, m2);
        for (size_t c = 0; c < d; c++)
            chan(&pn[c], &pmean[c], &pm2[c], nan[c], sum[c], m2[c]);
    }
    for (size_t c = 0; c < d; c++) {
        pc[c].n = pn[c];
        pc[c].mean = pmean[c];
        pc[c].m2 = pm2[c];
        pc[c].min = mn[c];
        pc[c].max = mx[c];
    }
    st->mine[part] = 1;
}

/* b's rows after a's. */
static void merge(apply_col_t *a, const apply_col_t *b)
{
    if (b->n > 0) {
        chan(&a->n, &a->mean, &a->m2, b->n, b->mean, b->m2);
        a->min = b->min < a->min ? b->min : a->min;
        a->max = b->max > a->max ? b->max : a->max;
    }
    a->nans += b->nans;
}

int apply_stats_reduce(apply_stats_t *st, MPI_Comm comm, int all)
{
    int rank, rc;
    MPI_Comm_rank(comm, &rank);
    size_t d = st->d;
    rc = apply_gather_parts(comm, st->nparts, st->mine, d * sizeof(apply_col_t), st->part, all);
    if (rc == TSR_OK && (all || rank == 0))
        for (size_t c = 0; c < d; c++) {
            st->total[c] = (apply_col_t){.min = INFINITY, .max = -INFINITY};
            for (size_t p = 0; p < st->nparts; p++)
                merge(&st->total[c], &st->part[p * d + c]);
        }
    apply_stats_flush(st);
    if (rc == TSR_OK && st->hist) {
        size_t len = d << st->bits;
        void *in = rank == 0 ? MPI_IN_PLACE : (void *)st->hist;
        if (MPI_Reduce(in, st->hist, (int)len, MPI_UINT64_T, MPI_SUM, 0, comm) != MPI_SUCCESS)
            rc = tsr_error_set(TSR_EMPI, "apply stats: MPI_Reduce of the histograms failed");
    }
    return rc;
}

/* Bucket b of column c as [lo, hi], clamped to the column's range. */
static void bucket_range(const apply_stats_t *st, size_t c, size_t b, double *lo, double *hi)
{
    int shift = 32 - st->bits;
    uint32_t k0 = (uint32_t)(b << shift), k1 = (uint32_t)(((uint64_t)(b + 1) << shift) - 1);
    *lo = key_value(k0);
    *hi = key_value(k1);
    if (*lo < st->total[c].min)
        *lo = st->total[c].min;
    if (*hi > st->total[c].max)
        *hi = st->total[c].max;
}

double apply_stats_quantile(const apply_stats_t *st, size_t c, double q)
{
    const apply_col_t *t = &st->total[c];
    if (t->n <= 0 || !st->hist)
        return NAN;
    if (q <= 0)
        return t->min;
    if (q >= 1)
        return t->max;
    double h = q * (t->n - 1), cum = 0;
    const uint64_t *hc = st->hist + (c << st->bits);
    size_t nb = (size_t)1 << st->bits;
    for (size_t b = 0; b < nb; b++) {
        if (!hc[b])
            continue;
        if (cum + (double)hc[b] > h) {
            double lo, hi;
            bucket_range(st, c, b, &lo, &hi);
            double frac = (h - cum + 0.5) / (double)hc[b];
            return lo + (hi - lo) * (frac > 1 ? 1 : frac);
        }
        cum += (double)hc[b];
    }
    return t->max;
}

void apply_stats_histogram(const apply_stats_t *st, size_t c, int bins, uint64_t *counts)
{
    memset(counts, 0, (size_t)bins * sizeof *counts);
    const apply_col_t *t = &st->total[c];
    if (!st->hist || t->n <= 0)
        return;
    const uint64_t *hc = st->hist + (c << st->bits);
    size_t nb = (size_t)1 << st->bits;
    double width = ((double)t->max - t->min) / bins;
    for (size_t b = 0; b < nb; b++) {
        if (!hc[b])
            continue;
        double lo, hi;
        bucket_range(st, c, b, &lo, &hi);
        double mid = 0.5 * (lo + hi);
        long i = width > 0 ? (long)floor((mid - t->min) / width) : 0;
        i = i < 0 ? 0 : i >= bins ? bins - 1 : i;
        counts[i] += hc[b];
    }
}
