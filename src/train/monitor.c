/* SPDX-License-Identifier: BSD-3-Clause */
/* What the training loop tells the rank-0 coordinator: snapshots of the
 * weights and status, per-rank step and communication times gathered over
 * MPI here (the coordinator itself never calls MPI), and the finished model
 * for the registry. */
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/registry.h"
#include "tessera/serve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per rank: step min/mean/max, comm min/mean/max, hidden mean, then the
 * seconds per step of each phase (phase.h) over the same window. */
enum { NBASE = 7, NSTAT = NBASE + TSR_TRACE_NPHASES, PLACE_LEN = 160 };

struct tsr_train_monitor {
    tsr_serve_t *serve; /* rank 0 with [serve] enabled */
    double t0;
    /* this rank's timings since the last publish */
    double step_sum, step_min, step_max, comm_sum, comm_min, comm_max, hidden_sum;
    long n;
    double last[NSTAT]; /* what this rank sent last time */
    /* rank 0: everyone's, gathered */
    double *all;         /* world * NSTAT */
    double *cols[NSTAT]; /* per-statistic arrays for the status */
    char *place_buf;     /* world * PLACE_LEN */
    const char **place;
};

static void reset(struct tsr_train_monitor *m)
{
    m->step_sum = m->comm_sum = m->hidden_sum = 0;
    m->step_min = m->comm_min = INFINITY;
    m->step_max = m->comm_max = 0;
    m->n = 0;
}

int tsr_train_monitor_setup(tsr_train_ctx_t *ctx, int *failed_rank)
{
    struct tsr_train_monitor *m = calloc(1, sizeof *m);
    char mine[PLACE_LEN];
    int rc = TSR_OK;
    if (!m)
        return tsr_error_set(TSR_ENOMEM, "out of memory");
    ctx->mon = m;
    m->t0 = tsr_time_now();
    reset(m);
    snprintf(mine, sizeof mine, "%s %s", tsr_runtime_hostname(ctx->rt), ctx->sched.placement);
    if (ctx->rank == 0) {
        size_t w = (size_t)ctx->world;
        m->all = calloc(w * NSTAT * 2, sizeof *m->all);
        m->place_buf = calloc(w, PLACE_LEN);
        m->place = calloc(w, sizeof *m->place);
        if (!m->all || !m->place_buf || !m->place)
            rc = tsr_error_set(TSR_ENOMEM, "out of memory for %d ranks' statistics", ctx->world);
        for (int k = 0; !rc && k < NSTAT; k++)
            m->cols[k] = m->all + w * NSTAT + w * (size_t)k;
        for (size_t r = 0; !rc && r < w; r++)
            m->place[r] = m->place_buf + r * PLACE_LEN;
        if (!rc && ctx->opt->serve_enabled) {
            rc = tsr_serve_create(&ctx->opt->serve, &m->serve);
            if (!rc)
                tsr_serve_set_model_source(m->serve, "training");
        }
    }
    if ((rc = tsr_runtime_agree(ctx->rt, rc, failed_rank)))
        return rc;
    return tsr_runtime_gather(ctx->rt, mine, PLACE_LEN, MPI_CHAR, m->place_buf, 0, "the gather of placements", -1);
}

void tsr_train_monitor_step(tsr_train_ctx_t *ctx, double step_s, double comm_s, double hidden_s)
{
    struct tsr_train_monitor *m = ctx->mon;
    m->hidden_sum += hidden_s;
    m->step_sum += step_s;
    m->comm_sum += comm_s;
    m->step_min = step_s < m->step_min ? step_s : m->step_min;
    m->step_max = step_s > m->step_max ? step_s : m->step_max;
    m->comm_min = comm_s < m->comm_min ? comm_s : m->comm_min;
    m->comm_max = comm_s > m->comm_max ? comm_s : m->comm_max;
    m->n++;
}

/* The live bottleneck report from the window's per-rank means (rank 0;
 * NULL when no rank has stepped yet or out of memory). */
static tsr_trace_report_t *bottleneck(tsr_train_ctx_t *ctx, const struct tsr_train_monitor *m)
{
    tsr_trace_rank_sums_t *r = calloc((size_t)ctx->world, sizeof *r);
    tsr_trace_report_t *rep = malloc(sizeof *rep);
    tsr_trace_hints_t h;
    tsr_train_trace_hints(ctx, &h);
    for (int k = 0; r && k < ctx->world; k++) {
        for (int p = 0; p < TSR_TRACE_NPHASES; p++) {
            r[k].phase[p] = m->cols[NBASE + p][k];
            r[k].step_s += r[k].phase[p];
        }
        r[k].exposed_s = m->cols[4][k];
        r[k].hidden_s = m->cols[6][k];
        r[k].steps = r[k].step_s > 0;
    }
    if (!r || !rep || tsr_trace_report(r, ctx->world, &h, rep)) {
        free(rep);
        rep = NULL;
    }
    free(r);
    return rep;
}

void tsr_train_monitor_publish(tsr_train_ctx_t *ctx, const tsr_train_snapshot_t *snap)
{
    struct tsr_train_monitor *m = ctx->mon;
    /* No step since the last publish (an epoch end right after a log
     * point): repeat the last figures rather than report zeros. */
    if (m->n) {
        double n = (double)m->n;
        double now[NSTAT] = {m->step_min,     m->step_sum / n, m->step_max,      m->comm_min,
                             m->comm_sum / n, m->comm_max,     m->hidden_sum / n};
        tsr_train_phases_t *p = &ctx->phases;
        for (int k = 0; k < TSR_TRACE_NPHASES && p->win_steps; k++)
            now[NBASE + k] = p->win[k] / (double)p->win_steps;
        memset(p->win, 0, sizeof p->win);
        p->win_step_s = 0;
        p->win_steps = 0;
        memcpy(m->last, now, sizeof now);
    }
    double mine[NSTAT];
    memcpy(mine, m->last, sizeof mine);
    /* Only the coordinator needs the numbers; without one, skip the gather. */
    /* Bit 2: the counters too (perf.c decides how often, on rank 0). */
    int want = ctx->rank == 0 && m->serve != NULL
                   ? 1 | (tsr_train_perf_due(ctx, strcmp(snap->state, "training") != 0) ? 2 : 0)
                   : 0;
    if (tsr_runtime_bcast(ctx->rt, &want, 1, MPI_INT, 0, "the per-rank statistics") || !want) {
        reset(m);
        return;
    }
    int rc = tsr_runtime_gather(ctx->rt, mine, NSTAT, MPI_DOUBLE, m->all, 0, "the per-rank statistics", snap->step);
    if (!rc && (want & 2))
        tsr_train_perf_publish(ctx, m->serve, snap->step); /* perf.c: counters and resource use */
    reset(m);
    if (rc || ctx->rank != 0)
        return;
    for (int r = 0; r < ctx->world; r++)
        for (int k = 0; k < NSTAT; k++)
            m->cols[k][r] = m->all[r * NSTAT + k];
    tsr_trace_report_t *rep = bottleneck(ctx, m);
    const char *sugg[2] = {rep ? rep->suggest[0] : NULL, rep ? rep->suggest[1] : NULL};
    char ck[4200] = "none";
    if (ctx->ckpt.engine && tsr_ckpt_last_step(ctx->ckpt.engine) >= 0)
        snprintf(ck, sizeof ck, "saved step %ld (%s)%s", tsr_ckpt_last_step(ctx->ckpt.engine),
                 tsr_ckpt_last_path(ctx->ckpt.engine), tsr_ckpt_busy(ctx->ckpt.engine) ? ", writing the next" : "");
    tsr_serve_status_t st = {
        .state = snap->state,
        .step = snap->step,
        .total_steps = ctx->sched.total_steps,
        .epoch = (int)snap->epoch,
        .epochs = (int)ctx->sched.epochs,
        .samples_seen = (int64_t)snap->step * (int64_t)ctx->sched.batch * ctx->world,
        .loss = snap->loss,
        .test_loss = snap->test_loss,
        .accuracy = snap->accuracy,
        .samples_per_s = snap->samples_per_s,
        .elapsed_s = tsr_time_now() - m->t0,
        .world_size = ctx->world,
        .placement = m->place,
        .step_time_min = m->cols[0],
        .step_time_mean = m->cols[1],
        .step_time_max = m->cols[2],
        .comm_time_min = m->cols[3],
        .comm_time_mean = m->cols[4],
        .comm_time_max = m->cols[5],
        .comm_hidden_mean = m->cols[6],
        .comm_reference_s = tsr_comm_reference_seconds(ctx->comm.engine),
        .checkpoint = ck,
        .phase_mean = m->all + (size_t)ctx->world * NSTAT + (size_t)ctx->world * NBASE,
        .slowest_rank = rep ? rep->slowest : -1,
        .bottleneck = rep ? rep->text : NULL,
        .suggestions = sugg,
        .nsuggestions = rep ? rep->nsuggest : 0,
    };
    /* On a GPU the host copy of the weights is refreshed only for this. */
    if (tsr_model_download(ctx->net.model) == TSR_OK)
        tsr_serve_publish_model(m->serve, ctx->net.model);
    tsr_serve_publish_status(m->serve, &st);
    free(rep);
}

void tsr_train_monitor_finish(tsr_train_ctx_t *ctx, const char *model_path, int ok)
{
    struct tsr_train_monitor *m = ctx->mon;
    char id[256] = "";
    int rc = TSR_OK;
    if (!m || ctx->rank != 0 || !ok || !ctx->opt->train.register_model)
        return;
    if (m->serve) {
        rc = tsr_serve_register_model(m->serve, model_path, NULL, id, sizeof id);
    } else {
        tsr_registry_t *reg = NULL;
        rc = tsr_registry_create(ctx->opt->serve.registry, &reg);
        if (!rc) {
            tsr_registry_set_max_params(reg, ctx->opt->serve.max_model_params);
            rc = tsr_registry_add(reg, model_path, NULL, id, sizeof id);
        }
        tsr_registry_destroy(reg);
    }
    if (rc)
        tsr_log(TSR_LOG_WARN, "the model was written to %s but not registered: %s", model_path, tsr_last_error());
    else
        tsr_log(TSR_LOG_INFO, "registered %s as %s in %s", model_path, id, ctx->opt->serve.registry);
}

void tsr_train_monitor_destroy(tsr_train_ctx_t *ctx)
{
    struct tsr_train_monitor *m = ctx->mon;
    if (!m)
        return;
    tsr_serve_destroy(m->serve);
    free(m->all);
    free(m->place_buf);
    free(m->place);
    free(m);
    ctx->mon = NULL;
}
