/* SPDX-License-Identifier: BSD-3-Clause */
/* The bottleneck report: from per-rank phase sums to where the step time
 * goes, the slowest rank, the stalls and one or two suggestions, each
 * ranked by the share of the step it could win back. */
#include "tessera/error.h"
#include "tessera/trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A cause worth a suggestion: the share of the step at stake and the words. */
typedef struct cause {
    double share;
    char text[TSR_TRACE_SUGGEST_LEN];
} cause_t;

static void add(cause_t *c, int *n, double share, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(cause_t *c, int *n, double share, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c[*n].share = share;
    vsnprintf(c[*n].text, sizeof c[*n].text, fmt, ap);
    va_end(ap);
    (*n)++;
}

static void line(tsr_trace_report_t *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(tsr_trace_report_t *rep, const char *fmt, ...)
{
    size_t used = strlen(rep->text);
    if (used + 2 >= sizeof rep->text)
        return;
    if (used)
        rep->text[used++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->text + used, sizeof rep->text - used, fmt, ap);
    va_end(ap);
}

static double compute_of(const tsr_trace_rank_sums_t *r)
{
    return r->phase[TSR_TRACE_FORWARD] + r->phase[TSR_TRACE_BACKWARD] + r->phase[TSR_TRACE_OPTIM];
}

/* The causes above 3% of the step, and the always-true blas one. */
static int causes(const tsr_trace_report_t *rep, const tsr_trace_hints_t *h, cause_t *c)
{
    int n = 0;
    double step = rep->step_ms > 0 ? rep->step_ms : 1e-9;
    double lost = (rep->compute_ms[0] - rep->compute_ms[1]) / step;
    if (rep->world > 1 && rep->imbalance > 1.25)
        add(c, &n, lost,
            "rank %d computes %.1fx as long as the others (%.2f ms against %.2f ms per step) and they wait for it: "
            "look at what else runs on its node%s",
            rep->slowest, rep->compute_ms[1] > 0 ? rep->compute_ms[0] / rep->compute_ms[1] : 0, rep->compute_ms[0],
            rep->compute_ms[1],
            h->blas_threads > 1 ? "; fewer runtime.blas_threads leaves room for it" : " or move it (runtime.bind)");
    if (rep->data_stall > 0.03)
        add(c, &n, rep->data_stall,
            !h->prefetch  ? "the loader stalls %.1f%% of the step: set data.prefetch = true to read the next batch "
                            "while this one trains"
            : h->streamed ? "the loader stalls %.1f%% of the step even with prefetch: raise data.memory_limit_mb so "
                            "the split is read into memory, or run fewer ranks per node"
                          : "handing out batches takes %.1f%% of the step with the data in memory: a larger "
                            "train.batch_size spreads that cost over more samples",
            100 * rep->data_stall);
    double exposed = rep->exposed_ms / step;
    if (rep->world > 1 && exposed > 0.05) {
        if (rep->hidden_share < 0.3 && h->bucket_kb > 256)
            add(c, &n, exposed,
                "the reduction is %.1f%% of the step and only %.0f%% of it hides behind backward: lower "
                "runtime.bucket_kb (now %zu) to %zu so buckets start earlier",
                100 * exposed, 100 * rep->hidden_share, h->bucket_kb, h->bucket_kb / 4);
        else
            add(c, &n, exposed,
                "the reduction costs %.1f%% of the step (%.0f%% hides behind backward): raise "
                "runtime.bucket_kb (now %zu) to %zu for fewer, larger reductions",
                100 * exposed, 100 * rep->hidden_share, h->bucket_kb, h->bucket_kb * 4);
    }
    if (rep->ckpt_stall > 0.03)
        add(c, &n, rep->ckpt_stall,
            h->ckpt_async ? "checkpoints take %.1f%% of the step: write them less often (checkpoint.every_steps, "
                            "checkpoint.every_seconds)"
                          : "checkpoints take %.1f%% of the step: set checkpoint.async = true to write them on a "
                            "helper thread",
            100 * rep->ckpt_stall);
    if (h->cores_per_rank > 0 && h->blas_threads > h->cores_per_rank)
        add(c, &n, 0.03,
            "%d BLAS threads share %d cores per rank: set runtime.blas_threads = %d (fewer BLAS threads per rank)",
            h->blas_threads, h->cores_per_rank, h->cores_per_rank);
    return n;
}

static void suggest(tsr_trace_report_t *rep, const tsr_trace_hints_t *h)
{
    cause_t c[5];
    int n = causes(rep, h, c);
    for (int k = 0; k < 2 && n > 0; k++) {
        int best = 0;
        for (int i = 1; i < n; i++)
            best = c[i].share > c[best].share ? i : best;
        snprintf(rep->suggest[rep->nsuggest++], TSR_TRACE_SUGGEST_LEN, "%s", c[best].text);
        c[best] = c[--n];
    }
    if (!rep->nsuggest)
        snprintf(rep->suggest[rep->nsuggest++], TSR_TRACE_SUGGEST_LEN,
                 "no bottleneck stands out: compute is %.0f%% of the step; a larger batch or model per rank is "
                 "what would use the ranks better",
                 100 * (rep->share[TSR_TRACE_FORWARD] + rep->share[TSR_TRACE_BACKWARD] + rep->share[TSR_TRACE_OPTIM]));
}

int tsr_trace_report(const tsr_trace_rank_sums_t *ranks, int world, const tsr_trace_hints_t *hints,
                     tsr_trace_report_t *rep)
{
    tsr_trace_hints_t none = {0};
    const tsr_trace_hints_t *h = hints ? hints : &none;
    memset(rep, 0, sizeof *rep);
    rep->world = world;
    double step = 0, phase[TSR_TRACE_NPHASES] = {0}, exposed = 0, hidden = 0, csum = 0, cmax = -1;
    int active = 0;
    for (int r = 0; r < world; r++) {
        const tsr_trace_rank_sums_t *x = &ranks[r];
        if (x->steps <= 0)
            continue;
        double n = (double)x->steps, c = compute_of(x) / n;
        active++;
        step += x->step_s / n;
        for (int k = 0; k < TSR_TRACE_NPHASES; k++)
            phase[k] += x->phase[k] / n;
        exposed += x->exposed_s / n;
        hidden += x->hidden_s / n;
        csum += c;
        if (c > cmax) {
            cmax = c;
            rep->slowest = r;
        }
    }
    if (!active)
        return tsr_error_set(TSR_EINVAL, "trace: no rank took a step, so there is nothing to report");
    double a = (double)active;
    rep->step_ms = 1e3 * step / a;
    for (int k = 0; k < TSR_TRACE_NPHASES; k++)
        rep->share[k] = step > 0 ? phase[k] / step : 0;
    rep->compute_ms[0] = 1e3 * cmax;
    rep->compute_ms[1] = active > 1 ? 1e3 * (csum - cmax) / (a - 1) : 1e3 * cmax;
    rep->imbalance = csum > 0 ? cmax / (csum / a) : 1;
    rep->data_stall = rep->share[TSR_TRACE_DATA];
    rep->ckpt_stall = rep->share[TSR_TRACE_CKPT];
    rep->exposed_ms = 1e3 * exposed / a;
    rep->hidden_share = hidden + exposed > 0 ? hidden / (hidden + exposed) : 0;
    const tsr_trace_rank_sums_t *s = &ranks[rep->slowest];
    double s_wait = s->phase[TSR_TRACE_DATA] + s->phase[TSR_TRACE_REDUCE], s_comp = compute_of(s);
    rep->slowest_waits = s_wait > s_comp;

    line(rep, "bottleneck report (%d rank%s, %ld steps on rank 0, mean step %.4g ms):", world, world == 1 ? "" : "s",
         ranks[0].steps, rep->step_ms);
    char buf[256] = "";
    size_t used = 0;
    for (int k = 0; k < TSR_TRACE_NPHASES && used < sizeof buf; k++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s %.1f%%", k ? ", " : "", tsr_trace_kind_name(k),
                                 100 * rep->share[k]);
    line(rep, "  step time: %s", buf);
    if (world > 1)
        line(rep,
             "  slowest rank: %d, compute %.3f ms per step against %.3f ms for the others (imbalance %.2fx); it %s "
             "(%.0f%% of its step computing)",
             rep->slowest, rep->compute_ms[0], rep->compute_ms[1], rep->imbalance,
             rep->slowest_waits ? "mostly waits" : "computes while the others wait for it",
             s->step_s > 0 ? 100 * s_comp / s->step_s : 0);
    line(rep, "  data loader: %.1f%% of the step waiting for batches", 100 * rep->data_stall);
    if (world > 1)
        line(rep, "  reduction: %.3f ms per step exposed, %.0f%% hidden behind backward", rep->exposed_ms,
             100 * rep->hidden_share);
    line(rep, "  checkpoints: %.1f%% of the step", 100 * rep->ckpt_stall);
    suggest(rep, h);
    for (int i = 0; i < rep->nsuggest; i++)
        line(rep, "  suggestion: %s", rep->suggest[i]);
    return TSR_OK;
}
