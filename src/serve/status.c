/* SPDX-License-Identifier: BSD-3-Clause */
/* The training snapshot: copied in by tsr_serve_publish_status, read out
 * by /status, /metrics and the dashboard. The plot's history keeps at most
 * HIST_MAX points; when full, every other point goes, so a long run still
 * shows its whole curve at half the resolution. */
#include "serve/internal.h"
#include "tessera/error.h"
#include "tessera/trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per rank: step min/mean/max, comm min/mean/max, hidden mean, then
 * seconds per step per phase (trace.h). */
enum { HIST_MAX = 4096, RANK_BASE = 7, RANK_STATS = RANK_BASE + TSR_TRACE_NPHASES };

struct serve_status {
    pthread_mutex_t mu;
    int have;
    tsr_serve_status_t cur; /* scalars; its pointers are not used */
    char state[32], checkpoint[512], source[1024];
    char bottleneck[TSR_TRACE_REPORT_LEN], suggest[2][TSR_TRACE_SUGGEST_LEN];
    int nsuggest;
    int nranks;
    char **placement;
    double *stats; /* RANK_STATS * nranks: step min/mean/max, comm min/mean/max, hidden mean */
    tsr_serve_point_t *hist;
    size_t nhist;
};

int serve_status_create(serve_status_t **out)
{
    serve_status_t *st = calloc(1, sizeof *st);
    if (!st || !(st->hist = malloc(HIST_MAX * sizeof *st->hist))) {
        free(st);
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory");
    }
    pthread_mutex_init(&st->mu, NULL);
    snprintf(st->state, sizeof st->state, "serving");
    *out = st;
    return TSR_OK;
}

static void free_ranks(serve_status_t *st)
{
    for (int i = 0; i < st->nranks && st->placement; i++)
        free(st->placement[i]);
    free(st->placement);
    free(st->stats);
    st->placement = NULL;
    st->stats = NULL;
    st->nranks = 0;
}

void serve_status_destroy(serve_status_t *st)
{
    if (!st)
        return;
    free_ranks(st);
    free(st->hist);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void serve_status_source(serve_status_t *st, const char *source)
{
    pthread_mutex_lock(&st->mu);
    snprintf(st->source, sizeof st->source, "%s", source ? source : "");
    pthread_mutex_unlock(&st->mu);
}

static void append(serve_status_t *st, const tsr_serve_point_t *p)
{
    if (st->nhist && p->step <= st->hist[st->nhist - 1].step)
        return; /* the plot only moves forward */
    if (st->nhist == HIST_MAX) {
        size_t k = 0;
        for (size_t i = 0; i < st->nhist; i += 2)
            st->hist[k++] = st->hist[i];
        st->nhist = k;
    }
    st->hist[st->nhist++] = *p;
}

int serve_status_publish(serve_status_t *st, const tsr_serve_status_t *in)
{
    int n = in->world_size > 0 && in->world_size <= (1 << 20) ? in->world_size : 0;
    char **pl = NULL;
    double *stats = NULL;
    /* Allocate outside the lock; readers only wait for the copy. */
    if (n) {
        pl = calloc((size_t)n, sizeof *pl);
        stats = malloc((size_t)n * RANK_STATS * sizeof *stats);
        if (!pl || !stats) {
            free(pl);
            free(stats);
            return tsr_error_set(TSR_ENOMEM, "serve: out of memory for %d ranks", n);
        }
        const double *src[RANK_BASE] = {in->step_time_min,  in->step_time_mean, in->step_time_max,   in->comm_time_min,
                                        in->comm_time_mean, in->comm_time_max,  in->comm_hidden_mean};
        for (int r = 0; r < n; r++) {
            pl[r] = in->placement && in->placement[r] ? strdup(in->placement[r]) : NULL;
            for (int k = 0; k < RANK_BASE; k++)
                stats[r * RANK_STATS + k] = src[k] ? src[k][r] : NAN;
            for (int k = 0; k < TSR_TRACE_NPHASES; k++)
                stats[r * RANK_STATS + RANK_BASE + k] = in->phase_mean ? in->phase_mean[k * n + r] : NAN;
        }
    }
    pthread_mutex_lock(&st->mu);
    free_ranks(st);
    st->placement = pl;
    st->stats = stats;
    st->nranks = n;
    st->cur = *in;
    st->have = 1;
    snprintf(st->state, sizeof st->state, "%s", in->state ? in->state : "training");
    snprintf(st->checkpoint, sizeof st->checkpoint, "%s", in->checkpoint ? in->checkpoint : "none");
    snprintf(st->bottleneck, sizeof st->bottleneck, "%s", in->bottleneck ? in->bottleneck : "");
    st->nsuggest = 0;
    for (int i = 0; i < in->nsuggestions && i < 2 && in->suggestions; i++)
        if (in->suggestions[i])
            snprintf(st->suggest[st->nsuggest++], TSR_TRACE_SUGGEST_LEN, "%s", in->suggestions[i]);
    if (in->history) {
        for (size_t i = 0; i < in->nhistory; i++)
            append(st, &in->history[i]);
    } else {
        tsr_serve_point_t p = {in->step, in->loss, in->accuracy, in->test_loss, in->samples_per_s};
        append(st, &p);
    }
    pthread_mutex_unlock(&st->mu);
    return TSR_OK;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *summary(const double *v)
{
    return json_pack("{s:o,s:o,s:o}", "min", num(v[0]), "mean", num(v[1]), "max", num(v[2]));
}

/* The report: its text, its suggestions, the slowest rank (null: none). */
static json_t *bottleneck_json(const serve_status_t *st)
{
    if (!st->bottleneck[0])
        return json_null();
    json_t *s = json_array();
    for (int i = 0; i < st->nsuggest; i++)
        json_array_append_new(s, json_string(st->suggest[i]));
    const int slow = st->cur.slowest_rank;
    return json_pack("{s:o,s:s,s:o}", "slowest_rank", slow >= 0 ? json_integer(slow) : json_null(), "report",
                     st->bottleneck, "suggestions", s);
}

json_t *serve_status_json(tsr_serve_t *s, long long since)
{
    serve_status_t *st = s->status;
    json_t *o = json_object(), *model = json_object();
    pthread_mutex_lock(&st->mu);
    const tsr_serve_status_t *c = &st->cur;
    json_object_set_new(o, "state", json_string(st->state));
    json_object_set_new(o, "training", json_boolean(st->have));
    json_object_set_new(o, "uptime_s", json_real(tsr_time_now() - s->t_start));
    if (st->have) {
        json_object_set_new(o, "step", json_integer(c->step));
        json_object_set_new(o, "total_steps", c->total_steps ? json_integer(c->total_steps) : json_null());
        json_object_set_new(o, "epoch", json_integer(c->epoch));
        json_object_set_new(o, "epochs", json_integer(c->epochs));
        json_object_set_new(o, "samples_seen", json_integer(c->samples_seen));
        json_object_set_new(o, "loss", num(c->loss));
        json_object_set_new(o, "test_loss", num(c->test_loss));
        json_object_set_new(o, "accuracy", num(c->accuracy));
        json_object_set_new(o, "samples_per_s", num(c->samples_per_s));
        json_object_set_new(o, "elapsed_s", num(c->elapsed_s));
        json_object_set_new(o, "world_size", json_integer(c->world_size));
        json_t *ranks = json_array();
        for (int r = 0; r < st->nranks; r++) {
            const double *v = st->stats + r * RANK_STATS;
            json_t *ph = json_object();
            for (int k = 0; k < TSR_TRACE_NPHASES; k++)
                json_object_set_new(ph, tsr_trace_kind_name(k), num(v[RANK_BASE + k]));
            json_array_append_new(ranks, json_pack("{s:i,s:o,s:o,s:o,s:o,s:o}", "rank", r, "placement",
                                                   st->placement[r] ? json_string(st->placement[r]) : json_null(),
                                                   "step_time_s", summary(v), "comm_time_s", summary(v + 3),
                                                   "comm_hidden_s", num(v[6]), "phase_s", ph));
        }
        json_object_set_new(o, "ranks", ranks);
        json_object_set_new(o, "comm_reference_s",
                            c->comm_reference_s > 0 ? json_real(c->comm_reference_s) : json_null());
        json_object_set_new(o, "checkpoint", json_string(st->checkpoint));
        json_object_set_new(o, "bottleneck", bottleneck_json(st));
    }
    json_object_set_new(model, "source", st->source[0] ? json_string(st->source) : json_null());
    if (since >= -1) {
        json_t *h = json_array();
        for (size_t i = 0; i < st->nhist; i++)
            if (st->hist[i].step > since)
                json_array_append_new(h, json_pack("[I,o,o,o,o]", (json_int_t)st->hist[i].step, num(st->hist[i].loss),
                                                   num(st->hist[i].accuracy), num(st->hist[i].test_loss),
                                                   num(st->hist[i].samples_per_s)));
        json_object_set_new(o, "history", h);
    }
    pthread_mutex_unlock(&st->mu);
    uint64_t v = atomic_load(&s->version);
    json_object_set_new(model, "version", json_integer((json_int_t)v));
    json_object_set_new(model, "inputs", v ? json_integer((json_int_t)atomic_load(&s->in_width)) : json_null());
    json_object_set_new(model, "outputs", v ? json_integer((json_int_t)atomic_load(&s->out_width)) : json_null());
    json_object_set_new(o, "model", model);
    json_object_set_new(o, "perf", serve_perf_json(s));
    return o;
}

void serve_route_status(serve_req_t *r)
{
    const char *since;
    long long from = -2;
    if (serve_query(r, "since", &since))
        return;
    if (since) {
        char *end;
        from = strtoll(since, &end, 10);
        if (end == since || *end || from < -1) {
            serve_error(r, 400, "since=%.32s: expected a step number (-1 for the whole history)", since);
            return;
        }
    }
    serve_json(r, 200, serve_status_json(r->s, from));
}

/* Prometheus spells non-finite values NaN, +Inf, -Inf. */
static void metric(serve_buf_t *b, const char *name, const char *labels, double v)
{
    if (isnan(v))
        serve_buf_printf(b, "%s%s NaN\n", name, labels);
    else if (isinf(v))
        serve_buf_printf(b, "%s%s %sInf\n", name, labels, v > 0 ? "+" : "-");
    else {
        /* The shortest of 15 or 17 digits that reads back as v. */
        char num[32];
        snprintf(num, sizeof num, "%.15g", v);
        if (strtod(num, NULL) != v)
            snprintf(num, sizeof num, "%.17g", v);
        serve_buf_printf(b, "%s%s %s\n", name, labels, num);
    }
}

void serve_metric_value(serve_buf_t *b, const char *name, const char *labels, double v) { metric(b, name, labels, v); }

static void gauge(serve_buf_t *b, const char *name, const char *help, double v)
{
    serve_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    metric(b, name, "", v);
}

void serve_status_metrics(serve_status_t *st, serve_buf_t *b)
{
    pthread_mutex_lock(&st->mu);
    if (!st->have) {
        pthread_mutex_unlock(&st->mu);
        return;
    }
    const tsr_serve_status_t *c = &st->cur;
    serve_buf_printf(b,
                     "# HELP tessera_train_steps_total Optimizer steps taken.\n"
                     "# TYPE tessera_train_steps_total counter\ntessera_train_steps_total %lld\n",
                     (long long)c->step);
    serve_buf_printf(b,
                     "# HELP tessera_train_samples_total Training samples seen.\n"
                     "# TYPE tessera_train_samples_total counter\ntessera_train_samples_total %lld\n",
                     (long long)c->samples_seen);
    gauge(b, "tessera_train_epoch", "Current epoch.", c->epoch);
    gauge(b, "tessera_train_loss", "Training loss (mean over the last interval).", c->loss);
    gauge(b, "tessera_train_test_loss", "Loss on the test split.", c->test_loss);
    gauge(b, "tessera_train_accuracy_ratio", "Accuracy on the test split (0 to 1).", c->accuracy);
    gauge(b, "tessera_train_samples_per_second", "Global training throughput.", c->samples_per_s);
    gauge(b, "tessera_world_size", "MPI ranks training.", c->world_size);
    static const char *const names[2] = {"tessera_rank_step_seconds", "tessera_rank_comm_seconds"};
    static const char *const helps[2] = {"Per-rank step time summary over the last interval.",
                                         "Per-rank gradient communication time summary over the last interval."};
    static const char *const stat[3] = {"min", "mean", "max"};
    for (int k = 0; k < 2; k++) {
        serve_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", names[k], helps[k], names[k]);
        for (int r = 0; r < st->nranks; r++)
            for (int q = 0; q < 3; q++) {
                char labels[64];
                snprintf(labels, sizeof labels, "{rank=\"%d\",stat=\"%s\"}", r, stat[q]);
                metric(b, names[k], labels, st->stats[r * RANK_STATS + 3 * k + q]);
            }
    }
    const char *hn = "tessera_rank_comm_hidden_seconds";
    serve_buf_printf(b,
                     "# HELP %s Per-rank gradient reduction time per step hidden behind compute (mean over the "
                     "last interval).\n# TYPE %s gauge\n",
                     hn, hn);
    for (int r = 0; r < st->nranks; r++) {
        char labels[32];
        snprintf(labels, sizeof labels, "{rank=\"%d\"}", r);
        metric(b, hn, labels, st->stats[r * RANK_STATS + 6]);
    }
    const char *pn = "tessera_rank_phase_seconds";
    serve_buf_printf(b,
                     "# HELP %s Per-rank seconds per step in each phase (data, forward, backward, reduce_wait, "
                     "optimizer, checkpoint; mean over the last interval).\n# TYPE %s gauge\n",
                     pn, pn);
    for (int r = 0; r < st->nranks; r++)
        for (int k = 0; k < TSR_TRACE_NPHASES; k++) {
            char labels[64];
            snprintf(labels, sizeof labels, "{rank=\"%d\",phase=\"%s\"}", r, tsr_trace_kind_name(k));
            metric(b, pn, labels, st->stats[r * RANK_STATS + RANK_BASE + k]);
        }
    if (c->slowest_rank >= 0 && st->bottleneck[0])
        gauge(b, "tessera_slowest_rank", "The rank the bottleneck report names slowest (most compute per step).",
              c->slowest_rank);
    if (c->comm_reference_s > 0)
        gauge(b, "tessera_comm_reference_seconds", "A blocking allreduce of the whole gradient, measured at start.",
              c->comm_reference_s);
    pthread_mutex_unlock(&st->mu);
}
