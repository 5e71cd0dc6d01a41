/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera apply stats` results: a table on standard output and, with -o,
 * a JSON file written whole or not at all. Numbers are printed with 17
 * significant digits, so equal results are equal bytes; NaN and infinities
 * (a column of only NaN, an infinite value) are JSON null. */
#include "apply/internal.h"

#include "common/fileutil.h"
#include "tessera/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const double quantiles[] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};
enum { NQ = sizeof quantiles / sizeof quantiles[0] };

static double var_of(const apply_col_t *t) { return t->n > 0 ? t->m2 / t->n : NAN; }

void apply_stats_print(const apply_stats_t *st, const int *cols)
{
    printf("%-8s %12s %14s %14s %14s %14s %14s %14s %14s\n", "column", "count", "mean", "std", "min", "p25", "p50",
           "p75", "max");
    for (size_t c = 0; c < st->d; c++) {
        const apply_col_t *t = &st->total[c];
        printf("%-8d %12.0f %14.6g %14.6g %14.6g %14.6g %14.6g %14.6g %14.6g\n", cols ? cols[c] : (int)c, t->n, t->mean,
               sqrt(var_of(t)), (double)t->min, apply_stats_quantile(st, c, 0.25), apply_stats_quantile(st, c, 0.5),
               apply_stats_quantile(st, c, 0.75), (double)t->max);
    }
    fflush(stdout);
}

static void num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

int apply_stats_json(const apply_stats_t *st, int bins, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    uint64_t *counts = malloc((size_t)bins * sizeof *counts);
    FILE *f = counts ? open_memstream(&buf, &len) : NULL;
    if (!f) {
        free(counts);
        return tsr_error_set(TSR_ENOMEM, "apply stats: out of memory writing %s", path);
    }
    fputs("{\"columns\": [", f);
    for (size_t c = 0; c < st->d; c++) {
        const apply_col_t *t = &st->total[c];
        fprintf(f, "%s\n  {\"count\": %.0f, \"nans\": %.0f, \"mean\": ", c ? "," : "", t->n, t->nans);
        num(f, t->n > 0 ? t->mean : NAN);
        fputs(", \"var\": ", f);
        num(f, var_of(t));
        fputs(", \"min\": ", f);
        num(f, t->n > 0 ? t->min : NAN);
        fputs(", \"max\": ", f);
        num(f, t->n > 0 ? t->max : NAN);
        fputs(", \"quantiles\": {", f);
        for (int q = 0; q < NQ; q++) {
            fprintf(f, "%s\"%g\": ", q ? ", " : "", quantiles[q]);
            num(f, apply_stats_quantile(st, c, quantiles[q]));
        }
        fputs("}, \"histogram\": {\"edges\": [", f);
        double w = ((double)t->max - t->min) / bins;
        for (int b = 0; b <= bins; b++) {
            fputs(b ? ", " : "", f);
            num(f, t->n > 0 ? (b == bins ? (double)t->max : t->min + w * b) : NAN);
        }
        fputs("], \"counts\": [", f);
        apply_stats_histogram(st, c, bins, counts);
        for (int b = 0; b < bins; b++)
            fprintf(f, "%s%llu", b ? ", " : "", (unsigned long long)counts[b]);
        fputs("]}}", f);
    }
    fputs("\n]}\n", f);
    int bad = ferror(f);
    fclose(f);
    free(counts);
    int rc =
        bad ? tsr_error_set(TSR_ENOMEM, "apply stats: cannot format %s", path) : tsr_file_write_atomic(path, buf, len);
    free(buf);
    return rc;
}
