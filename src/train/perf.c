/* SPDX-License-Identifier: BSD-3-Clause */
/* Counters and resource use of a training run (src/perf): the per-rank
 * phase timers and PAPI events, gathered with each rank's resource use and
 * tessera's own counters for the coordinator at every log point and for
 * the final report (rank 0 logs it). */
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/perf.h"
#include "tessera/serve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HOST = 64, MAX_RANK_LINES = 16 };
#define PUBLISH_EVERY_S 1.0

/* One rank's figures, gathered as bytes (every rank runs the same binary). */
typedef struct rank_rec {
    tsr_perf_totals_t tot;
    tsr_resource_t res;
    double cnt[TSR_COUNTER_COUNT];
    char host[HOST];
} rank_rec_t;

int tsr_train_perf_setup(tsr_train_ctx_t *ctx, int *failed_rank)
{
    const tsr_perf_options_t *o = &ctx->opt->perf;
    const char *ev = o->papi_events && *o->papi_events ? o->papi_events : NULL;
    int rc = TSR_OK;
    if (o->on || ev) {
        rc = tsr_perf_create(ev, &ctx->perf);
        if (rc)
            rc = tsr_error_prefix(rc, "rank %d: %s: ", ctx->rank,
                                  ev ? tsr_config_origin(ctx->opt->config, "monitor", "papi_events") : "monitor");
    }
    if (!rc && ctx->perf && ctx->rank == 0 && !(ctx->perf_all = calloc((size_t)ctx->world, sizeof(rank_rec_t))))
        rc = tsr_error_set(TSR_ENOMEM, "out of memory for %d ranks' counters", ctx->world);
    if (ctx->net.gpu && tsr_gpu_pci_busid(tsr_gpu_device(ctx->net.gpu), ctx->gpu_busid, sizeof ctx->gpu_busid))
        ctx->gpu_busid[0] = 0;
    if ((rc = tsr_runtime_agree(ctx->rt, rc, failed_rank)))
        return rc;
    ctx->phases.perf = ctx->perf; /* the step's phase hook feeds it (phase.h) */
    const char *note = tsr_perf_note(ctx->perf);
    if (ctx->rank == 0 && note)
        tsr_log(TSR_LOG_WARN, "monitor: %s; training goes on without them", note);
    return TSR_OK;
}

void tsr_train_perf_destroy(tsr_train_ctx_t *ctx)
{
    tsr_perf_destroy(ctx->perf);
    free(ctx->perf_all);
    ctx->perf = ctx->phases.perf = NULL;
    ctx->perf_all = NULL;
}

/* Gathers every rank's record into rank 0's buffer (made at setup, so one
 * gather is the whole cost); *all: the records on rank 0, NULL elsewhere. */
static int gather(tsr_train_ctx_t *ctx, long step, rank_rec_t **all)
{
    rank_rec_t mine;
    memset(&mine, 0, sizeof mine);
    *all = NULL;
    tsr_perf_totals(ctx->perf, &mine.tot);
    tsr_resource_sample(ctx->gpu_busid[0] ? ctx->gpu_busid : NULL, &mine.res);
    for (int k = 0; k < TSR_COUNTER_COUNT; k++)
        mine.cnt[k] = (double)tsr_counter_get((tsr_counter_t)k);
    snprintf(mine.host, sizeof mine.host, "%s", tsr_runtime_hostname(ctx->rt));
    int rc =
        tsr_runtime_gather(ctx->rt, &mine, (int)sizeof mine, MPI_BYTE, ctx->perf_all, 0, "the counters' gather", step);
    if (!rc && ctx->rank == 0)
        *all = ctx->perf_all;
    return rc;
}

int tsr_train_perf_due(tsr_train_ctx_t *ctx, int force)
{
    double now = tsr_time_now();
    if (!ctx->perf || (!force && ctx->perf_last > 0 && now - ctx->perf_last < PUBLISH_EVERY_S))
        return 0;
    ctx->perf_last = now;
    return 1;
}

void tsr_train_perf_publish(tsr_train_ctx_t *ctx, tsr_serve_t *serve, long step)
{
    rank_rec_t *all;
    if (!ctx->perf || gather(ctx, step, &all) || ctx->rank != 0)
        return;
    int w = ctx->world;
    const char **hosts = calloc((size_t)w, sizeof *hosts);
    tsr_perf_totals_t *tot = malloc((size_t)w * sizeof *tot);
    tsr_resource_t *res = malloc((size_t)w * sizeof *res);
    double *cnt = malloc((size_t)w * TSR_COUNTER_COUNT * sizeof *cnt);
    if (hosts && tot && res && cnt) {
        for (int r = 0; r < w; r++) {
            hosts[r] = all[r].host;
            tot[r] = all[r].tot;
            res[r] = all[r].res;
            memcpy(cnt + (size_t)r * TSR_COUNTER_COUNT, all[r].cnt, sizeof all[r].cnt);
        }
        tsr_serve_perf_t p = {
            w, tsr_perf_nevents(ctx->perf), tsr_perf_events(ctx->perf), tsr_perf_note(ctx->perf), hosts, tot, res, cnt};
        if (tsr_serve_publish_perf(serve, &p))
            tsr_log(TSR_LOG_DEBUG, "counters not published: %s", tsr_last_error());
    }
    free(hosts);
    free(tot);
    free(res);
    free(cnt);
}

/* Where a step's time goes, mean over ranks, and the slowest rank. */
static void report_phases(const tsr_train_ctx_t *ctx, const rank_rec_t *all)
{
    double mean[TSR_PHASE_COUNT] = {0}, total = 0, worst = -1;
    int slow = 0;
    double steps = all[0].cnt[TSR_COUNTER_STEPS];
    if (steps <= 0)
        return;
    for (int r = 0; r < ctx->world; r++) {
        double in_steps = 0;
        for (int k = 0; k < TSR_PHASE_COUNT; k++) {
            mean[k] += all[r].tot.seconds[k] / ctx->world;
            in_steps += k != TSR_PHASE_OTHER && k != TSR_PHASE_EVAL ? all[r].tot.seconds[k] : 0;
        }
        if (in_steps > worst)
            worst = in_steps, slow = r;
    }
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        total += mean[k];
    char line[1024] = "";
    size_t at = 0;
    for (int k = 1; k <= TSR_PHASE_COUNT && total > 0; k++) {
        int ph = k % TSR_PHASE_COUNT; /* "other" last */
        if (mean[ph] > 0 && at < sizeof line)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s%s %.3f ms (%.1f%%)", at ? ", " : "",
                                   tsr_phase_name((tsr_phase_t)ph), 1e3 * mean[ph] / steps, 100 * mean[ph] / total);
    }
    tsr_log(TSR_LOG_INFO,
            "perf: time per step by phase (mean of %d rank%s): %s; slowest rank %d (%s), %.3f ms/step in "
            "steps",
            ctx->world, ctx->world == 1 ? "" : "s", line, slow, all[slow].host, 1e3 * worst / steps);
}

/* PAPI events and their derived figures, per rank. */
static void report_events(const tsr_train_ctx_t *ctx, const rank_rec_t *all)
{
    int ne = tsr_perf_nevents(ctx->perf);
    const char *const *ev = tsr_perf_events(ctx->perf);
    for (int r = 0; r < ctx->world && r < MAX_RANK_LINES && ne; r++) {
        double steps = all[r].cnt[TSR_COUNTER_STEPS];
        char line[1024] = "";
        size_t at = 0;
        for (int i = 0; i < ne && at < sizeof line; i++) {
            double s = 0;
            for (int k = 0; k < TSR_PHASE_COUNT; k++)
                s += all[r].tot.counts[k][i];
            at += (size_t)snprintf(line + at, sizeof line - at, "%s%s %.4g", i ? ", " : "", ev[i],
                                   steps > 0 ? s / steps : s);
        }
        tsr_perf_derived_t d;
        tsr_perf_derive(ev, ne, &all[r].tot, -1, &d);
        char mem[32];
        tsr_bytes_format(steps > 0 ? d.mem_bytes / steps : NAN, mem, sizeof mem);
        if (!isnan(d.ipc) && at < sizeof line)
            at += (size_t)snprintf(line + at, sizeof line - at, "; IPC %.2f", d.ipc);
        if (!isnan(d.gflops) && at < sizeof line)
            at += (size_t)snprintf(line + at, sizeof line - at, "; %.3g GFLOP/s", d.gflops);
        if (!isnan(d.mem_bytes) && steps > 0 && at < sizeof line)
            snprintf(line + at, sizeof line - at, "; memory traffic ~%s per step", mem);
        tsr_log(TSR_LOG_INFO, "perf: rank %d PAPI per step: %s", r, line);
    }
}

static void report_resources(const tsr_train_ctx_t *ctx, const rank_rec_t *all)
{
    for (int r = 0; r < ctx->world && r < MAX_RANK_LINES; r++) {
        char line[512];
        tsr_resource_format(&all[r].res, line, sizeof line);
        tsr_log(TSR_LOG_INFO, "perf: rank %d on %s: %s", r, all[r].host, line);
    }
    if (ctx->world > MAX_RANK_LINES)
        tsr_log(TSR_LOG_INFO, "perf: %d more ranks in /status and /metrics", ctx->world - MAX_RANK_LINES);
}

/* tessera's own counters (rank 0's process), those that moved. */
static void report_counters(const rank_rec_t *all)
{
    char line[1024] = "";
    size_t at = 0;
    for (int k = 0; k < TSR_COUNTER_COUNT && at < sizeof line; k++)
        if (all[0].cnt[k] != 0)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s%s %.0f", at ? ", " : "",
                                   tsr_counter_name((tsr_counter_t)k), all[0].cnt[k]);
    tsr_log(TSR_LOG_INFO, "perf: rank 0's counters (PAPI sde:::tessera::<name>): %s", at ? line : "none moved");
}

void tsr_train_perf_report(tsr_train_ctx_t *ctx)
{
    rank_rec_t *all;
    if (!ctx->perf || gather(ctx, -1, &all) || ctx->rank != 0)
        return;
    report_phases(ctx, all);
    report_events(ctx, all);
    report_resources(ctx, all);
    report_counters(all);
}
