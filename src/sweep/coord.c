/* SPDX-License-Identifier: BSD-3-Clause */
/* Rank 0's table of trials: what a group runs next (a trial to resume, an
 * ASHA promotion, a new trial, or wait), what it reported, the results
 * files after every change, and the best trial registered at the end.
 * Asynchronous successive halving (Li et al., ASHA): a trial that finished
 * level l goes on to level l+1 as soon as its score is in the top KEEP
 * fraction of every score seen at level l, so no group waits for a rung
 * to fill. */
#include "sweep/internal.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/registry.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sweep_coord {
    const tsr_sweep_plan_t *p;
    const tsr_sweep_options_t *o;
    sweep_trial_t *t;
    char *active; /* a group runs the trial now */
    long started, finished, best;
    double t0;
    int stopping;
    char best_id[TSR_REGISTRY_ID_MAX];
    char json_path[4200], csv_path[4200];
    void (*on_change)(void *arg, const char *json);
    void *arg;
};

static long level_epochs(const tsr_sweep_plan_t *p, int level)
{
    return level < p->nrungs ? p->rungs[level] : p->epochs;
}

int sweep_coord_create(const tsr_sweep_plan_t *p, const tsr_sweep_options_t *o, int groups, sweep_coord_t **out)
{
    sweep_coord_t *c = calloc(1, sizeof *c);
    (void)groups;
    *out = NULL;
    if (!c || !(c->t = calloc((size_t)p->trials, sizeof *c->t)) || !(c->active = calloc((size_t)p->trials, 1))) {
        sweep_coord_destroy(c);
        return tsr_error_set(TSR_ENOMEM, "sweep: out of memory for %ld trials", p->trials);
    }
    c->p = p;
    c->o = o;
    c->best = -1;
    c->t0 = tsr_time_now();
    for (long i = 0; i < p->trials; i++) {
        c->t[i].level = -1;
        c->t[i].train_loss = c->t[i].test_loss = c->t[i].test_accuracy = c->t[i].seconds = NAN;
        c->t[i].finished_at = NAN;
        for (int l = 0; l <= SWEEP_MAX_RUNGS; l++)
            c->t[i].score[l] = NAN;
    }
    snprintf(c->json_path, sizeof c->json_path, "%s/trials.json", o->dir);
    snprintf(c->csv_path, sizeof c->csv_path, "%s/trials.csv", o->dir);
    int rc = tsr_mkdir_p(o->dir);
    if (!rc && access(c->json_path, F_OK) == 0) {
        rc = sweep_results_load(c->json_path, p, c->t, c->best_id, sizeof c->best_id);
        long left = 0;
        for (long i = 0; !rc && i < p->trials; i++) {
            c->started += c->t[i].level >= 0;
            c->finished += c->t[i].state >= TR_DONE;
            left += c->t[i].state < TR_DONE;
        }
        if (!rc)
            tsr_log(TSR_LOG_INFO, "sweep: resuming from %s: %ld of %ld trials finished, %ld to go", c->json_path,
                    c->finished, p->trials, left);
    }
    if (rc) {
        sweep_coord_destroy(c);
        return rc;
    }
    *out = c;
    return TSR_OK;
}

void sweep_coord_destroy(sweep_coord_t *c)
{
    if (!c)
        return;
    for (long i = 0; c->t && i < c->p->trials; i++)
        free(c->t[i].hist);
    free(c->t);
    free(c->active);
    free(c);
}

void sweep_coord_on_change(sweep_coord_t *c, void (*fn)(void *, const char *), void *arg)
{
    c->on_change = fn;
    c->arg = arg;
}

void sweep_coord_stop(sweep_coord_t *c) { c->stopping = 1; }
int sweep_coord_stopped(const sweep_coord_t *c) { return c->stopping; }

static void assign(sweep_coord_t *c, sweep_assign_t *a, long i, int level)
{
    c->t[i].state = TR_RUNNING;
    c->t[i].level = level;
    c->active[i] = 1;
    *a = (sweep_assign_t){SWEEP_RUN, level, i, level_epochs(c->p, level)};
    /* Shown live, but not written: a job killed before the trial's report
     * finds it pending or waiting in DIR and runs it again from its own
     * checkpoints (checkpoint.resume = auto), so the files need not know. */
    if (c->on_change) {
        char *json = sweep_coord_json(c);
        if (json)
            c->on_change(c->arg, json);
        free(json);
    }
}

/* A waiting trial at level l in the top keep fraction of level l's scores. */
static long promotable(const sweep_coord_t *c, int l)
{
    const tsr_sweep_plan_t *p = c->p;
    long n = 0;
    for (long i = 0; i < p->trials; i++)
        n += isfinite(c->t[i].score[l]);
    long k = (long)floor((double)n * p->keep);
    for (long i = 0; i < p->trials; i++) {
        const sweep_trial_t *t = &c->t[i];
        if (t->state != TR_WAITING || t->level != l || t->promoted[l])
            continue;
        long better = 0; /* ties go to the lower trial number */
        for (long j = 0; j < p->trials; j++)
            better += isfinite(c->t[j].score[l]) &&
                      (c->t[j].score[l] > t->score[l] || (c->t[j].score[l] == t->score[l] && j < i));
        if (better < k)
            return i;
    }
    return -1;
}

void sweep_coord_next(sweep_coord_t *c, sweep_assign_t *a)
{
    const tsr_sweep_plan_t *p = c->p;
    const tsr_sweep_options_t *o = c->o;
    int any_active = 0;
    for (long i = 0; i < p->trials; i++)
        any_active |= c->active[i];
    int over = o->budget_seconds > 0 && tsr_time_now() - c->t0 >= o->budget_seconds;
    *a = (sweep_assign_t){any_active ? SWEEP_WAIT : SWEEP_END, 0, -1, 0};
    if (c->stopping || over)
        return;
    for (long i = 0; i < p->trials; i++) /* under way when the last job stopped */
        if (c->t[i].state == TR_RUNNING && !c->active[i]) {
            assign(c, a, i, c->t[i].level);
            return;
        }
    for (int l = p->nrungs - 1; l >= 0; l--) {
        long i = promotable(c, l);
        if (i >= 0) {
            c->t[i].promoted[l] = 1;
            assign(c, a, i, l + 1);
            return;
        }
    }
    if (o->budget_trials > 0 && c->started >= o->budget_trials)
        return;
    for (long i = 0; i < p->trials; i++)
        if (c->t[i].state == TR_PENDING) {
            c->started++;
            assign(c, a, i, 0);
            return;
        }
}

static double score_of(const sweep_report_t *r)
{
    if (isfinite(r->test_accuracy))
        return r->test_accuracy;
    return isfinite(r->test_loss) ? -r->test_loss : -r->train_loss;
}

static void params_text(const sweep_coord_t *c, long i, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < c->p->nkeys && n < len; k++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s=%s", k ? " " : "", c->p->keys[k],
                              tsr_sweep_plan_value(c->p, i, k));
}

static void say(const sweep_coord_t *c, const sweep_report_t *r)
{
    const sweep_trial_t *t = &c->t[r->trial];
    char params[512], rung[48] = "";
    params_text(c, r->trial, params, sizeof params);
    if (t->state == TR_WAITING)
        snprintf(rung, sizeof rung, " (rung %d of %d)", r->level + 1, c->p->nrungs);
    if (r->rc == TSR_ESTOPPED)
        tsr_log(TSR_LOG_INFO, "sweep: trial %ld [%s] stopped with a checkpoint; it resumes when the sweep runs again",
                r->trial, params);
    else if (r->rc)
        tsr_log(TSR_LOG_WARN, "sweep: trial %ld [%s] failed: %s", r->trial, params, r->error);
    else
        tsr_log(TSR_LOG_INFO,
                "sweep: trial %ld [%s] epoch %ld%s: test accuracy %.2f%% loss %.4f, %.1f s; %ld of %ld trials "
                "finished",
                r->trial, params, t->epochs, rung, 100 * r->test_accuracy, r->test_loss, r->seconds, c->finished,
                c->p->trials);
}

void sweep_coord_report(sweep_coord_t *c, const sweep_report_t *r)
{
    sweep_trial_t *t = &c->t[r->trial];
    c->active[r->trial] = 0;
    if (r->nhist > t->epochs && r->nhist <= SWEEP_MAX_EPOCHS) {
        sweep_point_t *h = realloc(t->hist, (size_t)r->nhist * sizeof *h);
        if (h) {
            for (long e = t->epochs; e < r->nhist; e++)
                h[e] = (sweep_point_t){NAN, NAN, NAN};
            t->hist = h;
        }
    }
    for (int e = 0; t->hist && e < r->nhist; e++)
        if (isfinite(r->hist[e].train_loss))
            t->hist[e] = r->hist[e];
    if (t->hist && r->nhist > t->epochs)
        t->epochs = r->nhist;
    if (r->rc == TSR_ESTOPPED) {
        c->stopping = 1; /* stays running: it resumes from its checkpoint */
    } else if (r->rc) {
        t->state = TR_FAILED;
        snprintf(t->error, sizeof t->error, "%s", r->error);
        c->finished++;
    } else {
        t->train_loss = r->train_loss;
        t->test_loss = r->test_loss;
        t->test_accuracy = r->test_accuracy;
        t->seconds = (isfinite(t->seconds) ? t->seconds : 0) + r->seconds;
        t->finished_at = tsr_time_now() - c->t0;
        t->epochs = level_epochs(c->p, r->level) < t->epochs ? t->epochs : level_epochs(c->p, r->level);
        t->score[r->level] = score_of(r);
        t->state = r->level == c->p->nrungs ? TR_DONE : TR_WAITING;
        c->finished += t->state == TR_DONE;
    }
    say(c, r);
    if (sweep_coord_write(c))
        tsr_log(TSR_LOG_WARN, "sweep: %s", tsr_last_error());
}

char *sweep_coord_json(sweep_coord_t *c)
{
    return sweep_results_json(c->p, c->t, c->best_id, c->best, tsr_time_now() - c->t0);
}

int sweep_coord_write(sweep_coord_t *c)
{
    size_t len = 0;
    char *csv = sweep_results_csv(c->p, c->t, &len), *json = sweep_coord_json(c);
    int rc = csv && json ? TSR_OK : tsr_error_set(TSR_ENOMEM, "out of memory for the results table");
    if (!rc)
        rc = tsr_file_write_atomic(c->json_path, json, strlen(json));
    if (!rc)
        rc = tsr_file_write_atomic(c->csv_path, csv, len);
    if (json && c->on_change)
        c->on_change(c->arg, json);
    free(csv);
    free(json);
    return rc;
}

/* The best done trial's model into the registry, its parameters as metadata. */
static int register_best(sweep_coord_t *c, const char *registry, size_t max_params)
{
    tsr_registry_t *reg = NULL;
    char dir[4096], model[4200];
    int rc = sweep_trial_dir(c->o, c->best, dir, sizeof dir);
    snprintf(model, sizeof model, "%s/model.h5", dir);
    if (!rc)
        rc = tsr_registry_create(registry, &reg);
    if (!rc) {
        tsr_registry_set_max_params(reg, max_params);
        rc = tsr_registry_add(reg, model, "sweep", c->best_id, sizeof c->best_id);
    }
    if (!rc) {
        const sweep_trial_t *t = &c->t[c->best];
        json_t *meta = json_object();
        for (int k = 0; k < c->p->nkeys; k++)
            json_object_set_new(meta, c->p->keys[k], json_string(tsr_sweep_plan_value(c->p, c->best, k)));
        json_object_set_new(meta, "sweep_trial", json_integer(c->best));
        json_object_set_new(meta, "sweep_dir", json_string(c->o->dir));
        if (isfinite(t->test_accuracy))
            json_object_set_new(meta, "test_accuracy", json_real(t->test_accuracy));
        if (isfinite(t->test_loss))
            json_object_set_new(meta, "test_loss", json_real(t->test_loss));
        json_t *patch = json_pack("{s:o}", "metadata", meta);
        char *text = json_dumps(patch, JSON_COMPACT);
        rc = text ? tsr_registry_update(reg, c->best_id, text, strlen(text)) : TSR_ENOMEM;
        free(text);
        json_decref(patch);
    }
    tsr_registry_destroy(reg);
    if (rc)
        c->best_id[0] = '\0';
    return rc;
}

/* A higher final score, or the same with a lower test loss. */
static int better_than(const sweep_trial_t *a, const sweep_trial_t *b, int level)
{
    if (!b || a->score[level] > b->score[level])
        return 1;
    return a->score[level] == b->score[level] && a->test_loss < b->test_loss;
}

int sweep_coord_finish(sweep_coord_t *c, const char *registry, size_t max_params, tsr_sweep_result_t *res)
{
    const tsr_sweep_plan_t *p = c->p;
    int rc = TSR_OK;
    memset(res, 0, sizeof *res);
    res->trials = p->trials;
    res->best = -1;
    res->best_accuracy = res->best_loss = NAN;
    for (long i = 0; i < p->trials; i++) {
        sweep_trial_t *t = &c->t[i];
        if (!c->stopping && t->state == TR_PENDING)
            t->state = TR_SKIPPED;
        if (!c->stopping && t->state == TR_WAITING)
            t->state = TR_PRUNED;
        res->done += t->state == TR_DONE;
        res->pruned += t->state == TR_PRUNED;
        res->failed += t->state == TR_FAILED;
        res->skipped += t->state == TR_SKIPPED;
        if (t->state == TR_DONE && better_than(t, c->best < 0 ? NULL : &c->t[c->best], p->nrungs))
            c->best = i;
    }
    if (c->best >= 0 && !c->stopping && !c->best_id[0] && registry && registry[0]) {
        if ((rc = register_best(c, registry, max_params)))
            tsr_log(TSR_LOG_WARN, "sweep: the best trial's model was not registered: %s", tsr_last_error());
        rc = TSR_OK;
    }
    res->best = c->best;
    if (c->best >= 0) {
        res->best_accuracy = c->t[c->best].test_accuracy;
        res->best_loss = c->t[c->best].test_loss;
    }
    snprintf(res->best_id, sizeof res->best_id, "%s", c->best_id);
    res->wall_seconds = tsr_time_now() - c->t0;
    rc = sweep_coord_write(c);
    return rc;
}
