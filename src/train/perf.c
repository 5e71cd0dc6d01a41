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
    if (ctx->net.gpu && tsr_gpu_pci_busid(tsr_gpu_device(ctx->net.gpu), ctx->gpu_busid, sizeof ctx->gpu_busid))
        ctx->gpu_busid[0] = 0;
    if ((rc = tsr_runtime_agree(ctx->rt, rc, failed_rank)))
        return rc;
    const char *note = tsr_perf_note(ctx->perf);
    if (ctx->rank == 0 && note)
        tsr_log(TSR_LOG_WARN, "monitor: %s; training goes on without them", note);
    return TSR_OK;
}

void tsr_train_perf_destroy(tsr_train_ctx_t *ctx)
{
    tsr_perf_destroy(ctx->perf);
    ctx->perf = NULL;
}

/* Gathers every rank's record on rank 0 (*all, world records; NULL elsewhere). */
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
    rank_rec_t *buf = ctx->rank == 0 ? calloc((size_t)ctx->world, sizeof *buf) : NULL;
    int bad = ctx->rank == 0 && !buf, any = 0;
    /* Every rank learns whether rank 0 can take them, so none waits alone. */
    if (tsr_runtime_allreduce(ctx->rt, &bad, &any, 1, MPI_INT, MPI_MAX, "the counters' gather", step) || any) {
        free(buf);
        return TSR_ENOMEM;
    }
    int rc = tsr_runtime_gather(ctx->rt, &mine, (int)sizeof mine, MPI_BYTE, buf, 0, "the counters' gather", step);
    if (rc)
        free(buf);
    else
        *all = buf;
    return rc;
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
    free(all);
}

/* 1.2 kB, 3.4 MB, ... */
static void bytes(double b, char *out, size_t len)
{
    static const char *const u[] = {"B", "kB", "MB", "GB", "TB"};
    int k = 0;
    for (; fabs(b) >= 1000 && k < 4; k++)
        b /= 1000;
    if (isnan(b))
        snprintf(out, len, "?");
    else
        snprintf(out, len, k ? "%.1f %s" : "%.0f %s", b, u[k]);
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
        bytes(steps > 0 ? d.mem_bytes / steps : NAN, mem, sizeof mem);
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
        const tsr_resource_t *x = &all[r].res;
        char rss[32], peak[32], rd[32], wr[32], gpu[160] = "";
        bytes(x->rss_bytes, rss, sizeof rss);
        bytes(x->peak_rss_bytes, peak, sizeof peak);
        bytes(x->read_bytes, rd, sizeof rd);
        bytes(x->write_bytes, wr, sizeof wr);
        if (x->gpu_found > 0) {
            char used[32], tot[32];
            bytes(x->gpu_mem_used_bytes, used, sizeof used);
            bytes(x->gpu_mem_total_bytes, tot, sizeof tot);
            snprintf(gpu, sizeof gpu, "; GPU %.0f%% busy, %s of %s, %.0f W", 100 * x->gpu_util_ratio, used, tot,
                     x->gpu_power_w);
        }
        tsr_log(TSR_LOG_INFO,
                "perf: rank %d on %s: CPU %.2f s user + %.2f s system, RSS %s (peak %s), read %s, written %s, "
                "context switches %.0f voluntary + %.0f involuntary%s",
                r, all[r].host, x->cpu_user_s, x->cpu_system_s, rss, peak, rd, wr, x->ctx_voluntary, x->ctx_involuntary,
                gpu);
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
    free(all);
}
