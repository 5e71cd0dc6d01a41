/* SPDX-License-Identifier: BSD-3-Clause */
/* The training run's timeline and bottleneck report: the per-rank trace
 * ([monitor] trace), its clock aligned to rank 0's at start, its file
 * written at checkpoints and at the end; the phase sums gathered into the
 * report that rank 0 logs at the end. A trace that cannot be written is a
 * warning: training goes on without it. */
#include "common/fileutil.h"
#include "train/setup.h"
#include "tessera/error.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PINGS = 8, TAG_CLOCK = 0x7e5 };

/* Rank r's offset to rank 0's clock: the reply of the ping-pong with the
 * shortest round trip, read at its midpoint (NTP's estimate). Collective. */
static int align_clock(tsr_train_ctx_t *ctx, double *offset)
{
    MPI_Comm w = tsr_runtime_world(ctx->rt);
    MPI_Request req;
    *offset = 0;
    for (int r = 1; r < ctx->world; r++) {
        double best = 1e30;
        for (int k = 0; k < PINGS; k++) {
            double t0 = 0, theirs = 0;
            int rc;
            if (ctx->rank == 0) {
                char ping;
                MPI_Irecv(&ping, 1, MPI_CHAR, r, TAG_CLOCK, w, &req);
                if ((rc = tsr_runtime_wait(ctx->rt, &req, "the trace's clock alignment", -1)))
                    return rc;
                double now = tsr_time_now();
                MPI_Isend(&now, 1, MPI_DOUBLE, r, TAG_CLOCK, w, &req);
                if ((rc = tsr_runtime_wait(ctx->rt, &req, "the trace's clock alignment", -1)))
                    return rc;
            } else if (ctx->rank == r) {
                char ping = 1;
                t0 = tsr_time_now();
                MPI_Isend(&ping, 1, MPI_CHAR, 0, TAG_CLOCK, w, &req);
                if ((rc = tsr_runtime_wait(ctx->rt, &req, "the trace's clock alignment", -1)))
                    return rc;
                MPI_Irecv(&theirs, 1, MPI_DOUBLE, 0, TAG_CLOCK, w, &req);
                if ((rc = tsr_runtime_wait(ctx->rt, &req, "the trace's clock alignment", -1)))
                    return rc;
                double t1 = tsr_time_now();
                if (t1 - t0 < best) {
                    best = t1 - t0;
                    *offset = theirs - (t0 + t1) / 2;
                }
            }
        }
    }
    return TSR_OK;
}

int tsr_train_trace_setup(tsr_train_ctx_t *ctx)
{
    const tsr_monitor_options_t *m = &ctx->opt->monitor;
    ctx->phases.cur = TSR_TRACE_NONE;
    if (!m->trace || !m->trace[0])
        return TSR_OK;
    char path[4096];
    double offset = 0;
    tsr_trace_t *t = NULL;
    int rc = tsr_trace_path(m->trace, ctx->rank, path, sizeof path);
    /* Never one of the run's inputs or its model file. */
    const char *inputs[4] = {ctx->data.path, ctx->data.test_path,
                             ctx->opt->config ? tsr_config_file(ctx->opt->config) : NULL, ctx->opt->train.output};
    if (!rc && (rc = tsr_file_check_output(path, inputs, 4)))
        tsr_error_prefix(rc, "[monitor] trace: ");
    if (!rc)
        rc = tsr_trace_create(path, ctx->rank, m->trace_buffer, 8, &t);
    /* An empty timeline now: an unwritable path is known before training
     * (and the time its fsync takes is spent before the clocks align,
     * which every rank leaves together, not in the first step). */
    if (!rc)
        rc = tsr_trace_write(t);
    if (rc) {
        tsr_log(TSR_LOG_WARN, "rank %d: no timeline: %s; training goes on without it ([monitor] trace)", ctx->rank,
                tsr_last_error());
        tsr_trace_destroy(t);
        t = NULL;
    }
    /* Every rank has the same configuration: all align, or none. */
    if ((rc = align_clock(ctx, &offset))) {
        tsr_trace_destroy(t);
        return rc;
    }
    if (!t)
        return TSR_OK;
    tsr_trace_set_offset(t, offset);
    if (ctx->rank == 0)
        tsr_log(TSR_LOG_INFO, "timeline: each rank writes %s with its rank in the name (%s on rank 0)", m->trace, path);
    ctx->phases.trace = t;
    tsr_trace_set_current(t);
    return TSR_OK;
}

void tsr_train_trace_save(tsr_train_ctx_t *ctx)
{
    tsr_trace_t *t = ctx->phases.trace;
    if (t && tsr_trace_write(t))
        tsr_log(TSR_LOG_WARN, "rank %d: timeline: %s; training goes on", ctx->rank, tsr_last_error());
}

void tsr_train_trace_free(tsr_train_ctx_t *ctx)
{
    if (!ctx->phases.trace)
        return;
    tsr_trace_set_current(NULL);
    tsr_trace_destroy(ctx->phases.trace);
    ctx->phases.trace = NULL;
}

void tsr_train_trace_hints(const tsr_train_ctx_t *ctx, tsr_trace_hints_t *h)
{
    cpu_set_t set;
    memset(h, 0, sizeof *h);
    h->prefetch = ctx->opt->data.prefetch;
    h->streamed = ctx->data.train && tsr_dataset_is_streaming(ctx->data.train);
    h->bucket_kb = ctx->opt->runtime.bucket_bytes >> 10;
    h->blas_threads = ctx->sched.blas_threads;
    h->ckpt_async = ctx->opt->checkpoint.engine.async;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        h->cores_per_rank = CPU_COUNT(&set);
}

/* This rank's run-long sums, for the gather. */
static void mine(const tsr_train_ctx_t *ctx, tsr_trace_rank_sums_t *s)
{
    const tsr_train_phases_t *p = &ctx->phases;
    memset(s, 0, sizeof *s);
    memcpy(s->phase, p->sum, sizeof s->phase);
    s->step_s = p->step_s;
    s->steps = p->steps;
    s->exposed_s = ctx->comm.exposed;
    s->hidden_s = ctx->comm.hidden;
}

int tsr_train_trace_report(tsr_train_ctx_t *ctx)
{
    enum { N = TSR_TRACE_NPHASES + 4 };
    tsr_trace_rank_sums_t me;
    double v[N], *all = NULL;
    mine(ctx, &me);
    memcpy(v, me.phase, sizeof me.phase);
    v[TSR_TRACE_NPHASES] = me.step_s;
    v[TSR_TRACE_NPHASES + 1] = (double)me.steps;
    v[TSR_TRACE_NPHASES + 2] = me.exposed_s;
    v[TSR_TRACE_NPHASES + 3] = me.hidden_s;
    if (ctx->rank == 0 && !(all = malloc((size_t)ctx->world * N * sizeof *all)))
        return tsr_error_set(TSR_ENOMEM, "out of memory for the bottleneck report");
    int rc = tsr_runtime_gather(ctx->rt, v, N, MPI_DOUBLE, all, 0, "the bottleneck report's figures", -1);
    tsr_trace_rank_sums_t *r = NULL;
    tsr_trace_report_t *rep = NULL;
    if (rc || ctx->rank != 0 || me.steps == 0)
        goto out;
    r = calloc((size_t)ctx->world, sizeof *r);
    rep = malloc(sizeof *rep);
    if (!r || !rep) {
        rc = tsr_error_set(TSR_ENOMEM, "out of memory for the bottleneck report");
        goto out;
    }
    for (int k = 0; k < ctx->world; k++) {
        const double *x = all + (size_t)k * N;
        memcpy(r[k].phase, x, sizeof r[k].phase);
        r[k].step_s = x[TSR_TRACE_NPHASES];
        r[k].steps = (long)x[TSR_TRACE_NPHASES + 1];
        r[k].exposed_s = x[TSR_TRACE_NPHASES + 2];
        r[k].hidden_s = x[TSR_TRACE_NPHASES + 3];
    }
    tsr_trace_hints_t h;
    tsr_train_trace_hints(ctx, &h);
    if (tsr_trace_report(r, ctx->world, &h, rep) == TSR_OK) {
        /* One log line per report line, so every line carries the prefix. */
        char *save = NULL;
        for (char *ln = strtok_r(rep->text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
            tsr_log(TSR_LOG_INFO, "%s", ln);
        double phases = 0;
        for (int k = 0; k < TSR_TRACE_NPHASES; k++)
            phases += r[0].phase[k];
        tsr_log(TSR_LOG_INFO, "  phase timers: their sum is %.2f%% of the step time on rank 0",
                r[0].step_s > 0 ? 100 * phases / r[0].step_s : 0);
    }
out:
    free(all);
    free(r);
    free(rep);
    return rc;
}
