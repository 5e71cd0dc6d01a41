/* SPDX-License-Identifier: BSD-3-Clause */
/* A sweep's trials: grid and random parameters parsed and checked against
 * the configuration schema and the training options before anything runs;
 * trial t takes grid point t mod the grid's size and its own random draws
 * (counter-based, so a trial's values depend only on the seed and t). */
#include "sweep/internal.h"
#include "tessera/error.h"
#include "tessera/rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { VAL_LEN = 64 };

/* Splits "section.key=rest" into key (checked against the schema with a
 * value the schema takes later) and rest. */
static int split_arg(const char *opt, const char *arg, char *key, size_t klen, const char **rest)
{
    const char *eq = strchr(arg, '=');
    const char *dot = strchr(arg, '.');
    if (!eq || !dot || dot > eq || eq == arg || (size_t)(eq - arg) >= klen)
        return tsr_error_set(TSR_EINVAL, "sweep: %s '%s': expected section.key=%s", opt, arg,
                             strcmp(opt, "--grid") == 0 ? "v1,v2,..." : "DIST:A:B");
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    *rest = eq + 1;
    if (sweep_key_reserved(key))
        return tsr_error_set(TSR_EINVAL, "sweep: %s %s: the sweep sets this key for each trial; it cannot be swept",
                             opt, key);
    return TSR_OK;
}

static int parse_num(const char *opt, const char *key, const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(*v))
        return tsr_error_set(TSR_EINVAL, "sweep: %s %s: '%s' is not a number", opt, key, s);
    return TSR_OK;
}

/* One random draw of dist ("uniform:A:B", "loguniform:A:B", "int:A:B",
 * "choice:a|b|c") from u in [0, 1) into out; with out NULL only checks. */
static int draw(const char *key, const char *dist, double u, char *out)
{
    const char *c1 = strchr(dist, ':');
    static const char opt[] = "--random";
    if (!c1)
        return tsr_error_set(TSR_EINVAL,
                             "sweep: --random %s=%s: expected uniform:A:B, loguniform:A:B, int:A:B or choice:a|b|...",
                             key, dist);
    size_t n = (size_t)(c1 - dist);
    if (n == 6 && strncmp(dist, "choice", 6) == 0) {
        const char *p = c1 + 1;
        long count = 1;
        for (const char *q = p; *q; q++)
            count += *q == '|';
        if (!*p || strstr(p, "||") || p[strlen(p) - 1] == '|')
            return tsr_error_set(TSR_EINVAL, "sweep: --random %s=%s: an empty choice", key, dist);
        long pick = (long)(u * (double)count);
        for (long i = 0; i < pick; i++)
            p = strchr(p, '|') + 1;
        size_t len = strcspn(p, "|");
        if (len >= VAL_LEN)
            return tsr_error_set(TSR_EINVAL, "sweep: --random %s: a choice longer than %d bytes", key, VAL_LEN - 1);
        if (out)
            memcpy(out, p, len), out[len] = '\0';
        return TSR_OK;
    }
    char a_s[VAL_LEN], b_s[VAL_LEN];
    const char *c2 = strchr(c1 + 1, ':');
    if (!c2 || (size_t)(c2 - c1 - 1) >= VAL_LEN || strlen(c2 + 1) >= VAL_LEN)
        return tsr_error_set(TSR_EINVAL, "sweep: --random %s=%s: expected %.*s:A:B", key, dist, (int)n, dist);
    memcpy(a_s, c1 + 1, (size_t)(c2 - c1 - 1));
    a_s[c2 - c1 - 1] = '\0';
    strcpy(b_s, c2 + 1);
    double a, b;
    int rc = parse_num(opt, key, a_s, &a);
    if (!rc)
        rc = parse_num(opt, key, b_s, &b);
    if (rc)
        return rc;
    if (!(a < b) && !(n == 3 && a <= b))
        return tsr_error_set(TSR_EINVAL, "sweep: --random %s=%s: expected A below B", key, dist);
    if (n == 7 && strncmp(dist, "uniform", 7) == 0) {
        if (out)
            snprintf(out, VAL_LEN, "%.6g", a + u * (b - a));
    } else if (n == 10 && strncmp(dist, "loguniform", 10) == 0) {
        if (a <= 0)
            return tsr_error_set(TSR_EINVAL, "sweep: --random %s=%s: loguniform needs A above 0", key, dist);
        if (out)
            snprintf(out, VAL_LEN, "%.6g", exp(log(a) + u * (log(b) - log(a))));
    } else if (n == 3 && strncmp(dist, "int", 3) == 0) {
        if (a != floor(a) || b != floor(b))
            return tsr_error_set(TSR_EINVAL, "sweep: --random %s=%s: int needs whole bounds", key, dist);
        if (out)
            snprintf(out, VAL_LEN, "%.0f", a + floor(u * (b - a + 1)));
    } else {
        return tsr_error_set(TSR_EINVAL,
                             "sweep: --random %s=%s: unknown distribution '%.*s'; expected uniform, loguniform, "
                             "int or choice",
                             key, dist, (int)n, dist);
    }
    return TSR_OK;
}

/* Counts the grid values of "v1,v2,..." (empty items refused). */
static int grid_count(const char *key, const char *vals, long *n)
{
    if (!*vals || strstr(vals, ",,") || vals[0] == ',' || vals[strlen(vals) - 1] == ',')
        return tsr_error_set(TSR_EINVAL, "sweep: --grid %s: an empty grid or an empty value in '%s'", key, vals);
    *n = 1;
    for (const char *q = vals; *q; q++)
        *n += *q == ',';
    return TSR_OK;
}

static int parse_asha(tsr_sweep_plan_t *p, const char *s)
{
    char *end;
    const char *q = s;
    p->keep = 1.0 / 3;
    while (*q && *q != ':') {
        errno = 0;
        long r = strtol(q, &end, 10);
        if (end == q || errno || r < 1 || (*end && *end != ',' && *end != ':'))
            return tsr_error_set(TSR_EINVAL, "sweep: --asha '%s': expected rungs in epochs R1,R2,...[:KEEP]", s);
        if (p->nrungs == SWEEP_MAX_RUNGS)
            return tsr_error_set(TSR_EINVAL, "sweep: --asha '%s': more than %d rungs", s, SWEEP_MAX_RUNGS);
        if (p->nrungs && r <= p->rungs[p->nrungs - 1])
            return tsr_error_set(TSR_EINVAL, "sweep: --asha '%s': rungs must grow", s);
        p->rungs[p->nrungs++] = r;
        q = *end == ',' ? end + 1 : end;
    }
    if (!p->nrungs)
        return tsr_error_set(TSR_EINVAL, "sweep: --asha '%s': no rungs", s);
    if (*q == ':') {
        errno = 0;
        p->keep = strtod(q + 1, &end);
        if (end == q + 1 || *end || errno || !(p->keep > 0 && p->keep < 1))
            return tsr_error_set(TSR_EINVAL, "sweep: --asha '%s': KEEP must be a fraction between 0 and 1", s);
    }
    if (p->rungs[p->nrungs - 1] >= p->epochs)
        return tsr_error_set(TSR_EINVAL, "sweep: --asha '%s': rung %ld is not before train.epochs = %ld", s,
                             p->rungs[p->nrungs - 1], p->epochs);
    return TSR_OK;
}

/* Fills the values of every trial. */
static int fill(tsr_sweep_plan_t *p, const tsr_sweep_options_t *o, const char *const *rest)
{
    for (long t = 0; t < p->trials; t++) {
        long g = t % p->grid_size;
        for (int k = 0; k < p->nkeys; k++) {
            char *v = p->values[t * p->nkeys + k] = calloc(1, VAL_LEN);
            if (!v)
                return tsr_error_set(TSR_ENOMEM, "sweep: out of memory for %ld trials", p->trials);
            if (k < p->ngrid) {
                long n;
                grid_count(p->keys[k], rest[k], &n);
                const char *s = rest[k];
                for (long i = 0; i < g % n; i++)
                    s = strchr(s, ',') + 1;
                g /= n;
                size_t len = strcspn(s, ",");
                if (len >= VAL_LEN)
                    return tsr_error_set(TSR_EINVAL, "sweep: --grid %s: a value longer than %d bytes", p->keys[k],
                                         VAL_LEN - 1);
                memcpy(v, s, len);
            } else {
                uint64_t key = tsr_rng_key(o->seed, (uint64_t)t, (uint64_t)k, 0x5337);
                double u = (double)(tsr_rng_counter(key, 0) >> 11) * 0x1.0p-53;
                int rc = draw(p->keys[k], rest[k], u, v);
                if (rc)
                    return rc;
            }
        }
    }
    return TSR_OK;
}

/* Every key known and every trial's configuration one training takes. */
static int check_trials(tsr_sweep_plan_t *p, const tsr_sweep_options_t *o)
{
    for (long t = 0; t < p->trials; t++) {
        tsr_config_t *cfg = NULL;
        tsr_train_options_t opt;
        int rc = sweep_trial_config(p, o, t, &cfg);
        if (!rc && (rc = tsr_options_train(cfg, &opt)) != TSR_OK)
            tsr_error_prefix(rc, "sweep: trial %ld: ", t);
        if (!rc && t == 0)
            p->epochs = opt.train.epochs;
        if (!rc && p->epochs != opt.train.epochs)
            rc = tsr_error_set(TSR_EINVAL, "sweep: train.epochs is swept; every trial must train as long with --asha");
        tsr_config_destroy(cfg);
        if (rc)
            return rc;
    }
    return TSR_OK;
}

int tsr_sweep_plan_create(const tsr_sweep_options_t *o, tsr_sweep_plan_t **out)
{
    tsr_sweep_plan_t *p = calloc(1, sizeof *p);
    int n = o->ngrid + o->nrandom, rc = TSR_OK;
    const char **rest = calloc((size_t)(n ? n : 1), sizeof *rest);
    *out = NULL;
    if (!p || !rest || !(p->keys = calloc((size_t)(n ? n : 1), sizeof *p->keys))) {
        rc = tsr_error_set(TSR_ENOMEM, "sweep: out of memory");
        goto fail;
    }
    if (n == 0) {
        rc = tsr_error_set(TSR_EINVAL, "sweep: nothing to sweep; give --grid or --random parameters");
        goto fail;
    }
    if (o->ranks_per_trial < 1) {
        rc = tsr_error_set(TSR_EINVAL, "sweep: --ranks-per-trial %d: expected 1 or more", o->ranks_per_trial);
        goto fail;
    }
    p->ngrid = o->ngrid;
    p->grid_size = 1;
    for (int k = 0; k < n; k++) {
        int g = k < o->ngrid;
        const char *arg = g ? o->grid[k] : o->random[k - o->ngrid];
        char key[128];
        if ((rc = split_arg(g ? "--grid" : "--random", arg, key, sizeof key, &rest[k])))
            goto fail;
        for (int j = 0; j < k; j++)
            if (strcmp(p->keys[j], key) == 0) {
                rc = tsr_error_set(TSR_EINVAL, "sweep: %s is swept twice", key);
                goto fail;
            }
        if (!(p->keys[k] = strdup(key))) {
            rc = tsr_error_set(TSR_ENOMEM, "sweep: out of memory");
            goto fail;
        }
        p->nkeys = k + 1;
        long count = 0;
        if (g && (rc = grid_count(key, rest[k], &count)))
            goto fail;
        if (!g && (rc = draw(key, rest[k], 0.5, NULL)))
            goto fail;
        if (g && p->grid_size > 1000000 / count) {
            rc = tsr_error_set(TSR_EINVAL, "sweep: the grid has more than a million points");
            goto fail;
        }
        p->grid_size *= g ? count : 1;
    }
    if (o->trials < 0 || (o->trials == 0 && o->nrandom > 0)) {
        rc = tsr_error_set(TSR_EINVAL, "sweep: --trials %ld: expected a count of 1 or more%s", o->trials,
                           o->trials == 0 ? " (random parameters need one)" : "");
        goto fail;
    }
    p->trials = o->trials ? o->trials : p->grid_size;
    if (!(p->values = calloc((size_t)p->trials * (size_t)n, sizeof *p->values))) {
        rc = tsr_error_set(TSR_ENOMEM, "sweep: out of memory for %ld trials", p->trials);
        goto fail;
    }
    if ((rc = fill(p, o, rest)) || (rc = check_trials(p, o)))
        goto fail;
    if (o->asha && (rc = parse_asha(p, o->asha)))
        goto fail;
    free(rest);
    *out = p;
    return TSR_OK;
fail:
    free(rest);
    tsr_sweep_plan_destroy(p);
    return rc;
}

void tsr_sweep_plan_destroy(tsr_sweep_plan_t *p)
{
    if (!p)
        return;
    for (long i = 0; p->values && i < p->trials * p->nkeys; i++)
        free(p->values[i]);
    for (int k = 0; p->keys && k < p->nkeys; k++)
        free(p->keys[k]);
    free(p->values);
    free(p->keys);
    free(p);
}

long tsr_sweep_plan_trials(const tsr_sweep_plan_t *p) { return p->trials; }
int tsr_sweep_plan_nkeys(const tsr_sweep_plan_t *p) { return p->nkeys; }
const char *tsr_sweep_plan_key(const tsr_sweep_plan_t *p, int k) { return p->keys[k]; }
const char *tsr_sweep_plan_value(const tsr_sweep_plan_t *p, long trial, int k)
{
    return p->values[trial * p->nkeys + k];
}
