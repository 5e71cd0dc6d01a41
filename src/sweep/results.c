/* SPDX-License-Identifier: BSD-3-Clause */
/* The sweep's table as DIR/trials.csv (one row per trial, its parameters as
 * columns named by their keys) and DIR/trials.json (also each epoch's
 * metrics and the scores at each rung), and the JSON read back to resume. */
#include "sweep/internal.h"
#include "common/strbuf.h"
#include "tessera/error.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"pending", "running", "waiting", "done", "pruned", "failed", "skipped"};

const char *sweep_state_name(tsr_trial_state_t s) { return state_names[s]; }

typedef tsr_strbuf_t sbuf_t;
#define put tsr_strbuf_printf

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void field(sbuf_t *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        put(b, ",%s", s);
        return;
    }
    put(b, ",\"");
    for (; *s; s++)
        put(b, *s == '"' ? "\"\"" : "%c", *s);
    put(b, "\"");
}

static void num(sbuf_t *b, double v)
{
    if (isfinite(v))
        put(b, ",%.6g", v);
    else
        put(b, ",");
}

char *sweep_results_csv(const tsr_sweep_plan_t *p, const sweep_trial_t *t, size_t *len)
{
    sbuf_t b = {0};
    put(&b, "trial");
    for (int k = 0; k < p->nkeys; k++)
        field(&b, p->keys[k]);
    put(&b, ",status,epochs,test_accuracy,test_loss,train_loss,seconds,error\n");
    for (long i = 0; i < p->trials; i++) {
        put(&b, "%ld", i);
        for (int k = 0; k < p->nkeys; k++)
            field(&b, tsr_sweep_plan_value(p, i, k));
        put(&b, ",%s,%ld", sweep_state_name(t[i].state), t[i].epochs);
        num(&b, t[i].test_accuracy);
        num(&b, t[i].test_loss);
        num(&b, t[i].train_loss);
        num(&b, t[i].seconds);
        field(&b, t[i].error);
        put(&b, "\n");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *trial_json(const tsr_sweep_plan_t *p, const sweep_trial_t *t, long i)
{
    json_t *o = json_object(), *params = json_object(), *hist = json_array(), *score = json_array();
    for (int k = 0; k < p->nkeys; k++)
        json_object_set_new(params, p->keys[k], json_string(tsr_sweep_plan_value(p, i, k)));
    for (long e = 0; e < t->epochs && t->hist; e++)
        json_array_append_new(hist, json_pack("{s:I,s:o,s:o,s:o}", "epoch", (json_int_t)(e + 1), "train_loss",
                                              jnum(t->hist[e].train_loss), "test_loss", jnum(t->hist[e].test_loss),
                                              "test_accuracy", jnum(t->hist[e].test_accuracy)));
    for (int l = 0; l <= p->nrungs; l++)
        json_array_append_new(score, jnum(t->score[l]));
    json_object_set_new(o, "trial", json_integer(i));
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "status", json_string(sweep_state_name(t->state)));
    json_object_set_new(o, "level", json_integer(t->level));
    json_object_set_new(o, "epochs", json_integer(t->epochs));
    json_object_set_new(o, "test_accuracy", jnum(t->test_accuracy));
    json_object_set_new(o, "test_loss", jnum(t->test_loss));
    json_object_set_new(o, "train_loss", jnum(t->train_loss));
    json_object_set_new(o, "seconds", jnum(t->seconds));
    json_object_set_new(o, "finished_at", jnum(t->finished_at));
    json_object_set_new(o, "error", t->error[0] ? json_string(t->error) : json_null());
    json_object_set_new(o, "scores", score);
    json_object_set_new(o, "history", hist);
    return o;
}

char *sweep_results_json(const tsr_sweep_plan_t *p, const sweep_trial_t *t, const char *best_id, long best,
                         double elapsed)
{
    json_t *root = json_object(), *keys = json_array(), *trials = json_array(), *rungs = json_array();
    for (int k = 0; k < p->nkeys; k++)
        json_array_append_new(keys, json_string(p->keys[k]));
    for (int l = 0; l < p->nrungs; l++)
        json_array_append_new(rungs, json_integer(p->rungs[l]));
    for (long i = 0; i < p->trials; i++)
        json_array_append_new(trials, trial_json(p, &t[i], i));
    json_object_set_new(root, "format", json_string("tessera-sweep"));
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "keys", keys);
    json_object_set_new(root, "epochs", json_integer(p->epochs));
    json_object_set_new(root, "asha",
                        p->nrungs ? json_pack("{s:o,s:f}", "rungs", rungs, "keep", p->keep)
                                  : (json_decref(rungs), json_null()));
    json_object_set_new(root, "elapsed_seconds", jnum(elapsed));
    json_object_set_new(root, "best_trial", best >= 0 ? json_integer(best) : json_null());
    json_object_set_new(root, "registry_id", best_id && best_id[0] ? json_string(best_id) : json_null());
    json_object_set_new(root, "trials", trials);
    /* 17 digits: a resumed sweep reads these back, and with fewer a
     * finished trial's figures could print differently in trials.csv. */
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

static double dbl(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static int load_trial(const char *path, const tsr_sweep_plan_t *p, json_t *o, long i, sweep_trial_t *t)
{
    json_t *params = json_object_get(o, "params");
    for (int k = 0; k < p->nkeys; k++) {
        const char *v = json_string_value(json_object_get(params, p->keys[k]));
        if (!v || strcmp(v, tsr_sweep_plan_value(p, i, k)) != 0)
            return tsr_error_set(TSR_EINVAL,
                                 "sweep: %s holds another sweep (trial %ld has %s = %s there, %s here); give another "
                                 "-o DIR or remove it",
                                 path, i, p->keys[k], v ? v : "nothing", tsr_sweep_plan_value(p, i, k));
    }
    const char *st = json_string_value(json_object_get(o, "status"));
    for (int s = 0; st && s <= TR_SKIPPED; s++)
        if (strcmp(st, state_names[s]) == 0)
            t->state = (tsr_trial_state_t)s;
    t->level = (int)json_integer_value(json_object_get(o, "level"));
    /* One skipped by a budget or a stop may run now (a trial that was
     * running runs again from its checkpoint: coord.c). */
    if (t->state == TR_SKIPPED)
        t->state = TR_PENDING;
    t->epochs = (long)json_integer_value(json_object_get(o, "epochs"));
    t->test_accuracy = dbl(json_object_get(o, "test_accuracy"));
    t->test_loss = dbl(json_object_get(o, "test_loss"));
    t->train_loss = dbl(json_object_get(o, "train_loss"));
    t->seconds = dbl(json_object_get(o, "seconds"));
    t->finished_at = dbl(json_object_get(o, "finished_at"));
    const char *err = json_string_value(json_object_get(o, "error"));
    snprintf(t->error, sizeof t->error, "%s", err ? err : "");
    json_t *sc = json_object_get(o, "scores");
    for (int l = 0; l <= p->nrungs; l++)
        t->score[l] = dbl(json_array_get(sc, (size_t)l));
    json_t *h = json_object_get(o, "history");
    size_t n = json_array_size(h);
    if (n > 0 && (t->hist = calloc(n, sizeof *t->hist))) {
        for (size_t e = 0; e < n; e++) {
            json_t *pt = json_array_get(h, e);
            t->hist[e] = (sweep_point_t){dbl(json_object_get(pt, "train_loss")), dbl(json_object_get(pt, "test_loss")),
                                         dbl(json_object_get(pt, "test_accuracy"))};
        }
    }
    if (t->epochs > (long)n)
        t->epochs = (long)n;
    return TSR_OK;
}

int sweep_results_load(const char *path, const tsr_sweep_plan_t *p, sweep_trial_t *t, char *best_id, size_t idlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    int rc = TSR_OK;
    if (!root)
        return tsr_error_set(TSR_EDATA, "sweep: %s:%d: %s; remove it to start the sweep again", path, jerr.line,
                             jerr.text);
    json_t *trials = json_object_get(root, "trials"), *keys = json_object_get(root, "keys");
    if (json_array_size(trials) != (size_t)p->trials || json_array_size(keys) != (size_t)p->nkeys) {
        rc = tsr_error_set(TSR_EINVAL,
                           "sweep: %s holds another sweep (%zu trials of %zu parameters there, %ld of %d here); give "
                           "another -o DIR or remove it",
                           path, json_array_size(trials), json_array_size(keys), p->trials, p->nkeys);
        goto out;
    }
    for (long i = 0; !rc && i < p->trials; i++)
        rc = load_trial(path, p, json_array_get(trials, (size_t)i), i, &t[i]);
    const char *id = json_string_value(json_object_get(root, "registry_id"));
    snprintf(best_id, idlen, "%s", id ? id : "");
out:
    json_decref(root);
    return rc;
}
