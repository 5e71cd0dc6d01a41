/* SPDX-License-Identifier: BSD-3-Clause */
/* One JSON task line: keys checked against the known ones (the nearest
 * named), types and ranges, then one task per point of "each". */
#include "tasks/expand.h"
#include "tasks/taskfile.h"
#include "common/text.h"
#include "tessera/error.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[] = {"id",   "cmd", "priority", "after", "retries", "backoff", "timeout", "cores",
                                   "gpus", "env", "cwd",      "tags",  "stdout",  "stderr",  "each",    NULL};

typedef struct jtask {
    const char *id, *cmd, *cwd, *out, *err;
    json_t *after, *env, *tags;
    long long prio, retries, cores, gpus;
    double timeout, backoff, factor;
    edim_t dims[EXPAND_MAX_DIMS];
    int ndims;
    uint64_t total;
} jtask_t;

static int unknown_key(tparse_t *p, const char *k)
{
    int best = 99;
    const char *near = NULL;
    for (int i = 0; keys[i]; i++) {
        int d = tsr_text_distance(k, keys[i]);
        if (d < best) {
            best = d;
            near = keys[i];
        }
    }
    char sh[80];
    snprintf(sh, sizeof sh, "%.60s", k);
    for (char *c = sh; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    if (best <= 3)
        return tparse_fail(p, "unknown key \"%s\" (did you mean \"%s\"?)", sh, near);
    return tparse_fail(p,
                       "unknown key \"%s\"; known keys: id, cmd, priority, after, retries, backoff, timeout, "
                       "cores, gpus, env, cwd, tags, stdout, stderr, each",
                       sh);
}

static int get_int(tparse_t *p, json_t *v, const char *k, long long lo, long long hi, long long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return tparse_fail(p, "\"%s\" must be an integer from %lld to %lld", k, lo, hi);
    *out = json_integer_value(v);
    return TSR_OK;
}

static int get_str(tparse_t *p, json_t *v, const char *k, const char **out)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
        return tparse_fail(p, "\"%s\" must be a non-empty string without NUL bytes", k);
    *out = json_string_value(v);
    return TSR_OK;
}

/* Seconds: a number, or a string "90", "90s", "5m", "2h". */
static int get_seconds(tparse_t *p, json_t *v, const char *k, double *out)
{
    double s = -1;
    if (json_is_number(v)) {
        s = json_number_value(v);
    } else if (json_is_string(v)) {
        char *end;
        s = strtod(json_string_value(v), &end);
        double mul = *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;
        if (end == json_string_value(v) || (*end && (strchr("smh", *end) == NULL || end[1])))
            s = -1;
        s *= mul;
    }
    if (!(s >= 0) || !isfinite(s) || s > 1e9)
        return tparse_fail(p, "\"%s\" must be seconds >= 0 (a number, or a string such as \"90s\", \"5m\", \"2h\")", k);
    *out = s;
    return TSR_OK;
}

static int get_backoff(tparse_t *p, json_t *v, jtask_t *t)
{
    json_t *base = v, *factor = NULL;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        base = NULL;
        json_object_foreach(v, k, x)
        {
            if (strcmp(k, "base") == 0)
                base = x;
            else if (strcmp(k, "factor") == 0)
                factor = x;
            else
                return tparse_fail(p, "\"backoff\" has an unknown key \"%.40s\" (expected base and factor)", k);
        }
    } else if (json_is_array(v)) {
        if (json_array_size(v) != 2)
            return tparse_fail(p, "\"backoff\" as an array must be [base, factor]");
        base = json_array_get(v, 0);
        factor = json_array_get(v, 1);
    }
    if (base && get_seconds(p, base, "backoff", &t->backoff))
        return TSR_EDATA;
    if (factor && (!json_is_number(factor) || !(json_number_value(factor) >= 1) || json_number_value(factor) > 100))
        return tparse_fail(p, "\"backoff\" factor must be a number from 1 to 100");
    if (factor)
        t->factor = json_number_value(factor);
    return TSR_OK;
}

/* A string or an array of strings. */
static int str_list(tparse_t *p, json_t *v, const char *k)
{
    if (json_is_string(v))
        return TSR_OK;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (!json_is_string(x) || json_string_length(x) == 0) return tparse_fail(
            p, "\"%s\" must be a string or an array of non-empty strings", k);
        return TSR_OK;
    }
    return tparse_fail(p, "\"%s\" must be a string or an array of strings", k);
}

static int get_each(tparse_t *p, json_t *v, jtask_t *t, const char **items, size_t *lens, char (*nums)[32])
{
    const char *k;
    json_t *x;
    char err[160];
    size_t used = 0;
    if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > EXPAND_MAX_DIMS)
        return tparse_fail(p, "\"each\" must be an object of 1 to %d names, each a range \"A..B\" or an array",
                           EXPAND_MAX_DIMS);
    json_object_foreach(v, k, x)
    {
        edim_t *d = &t->dims[t->ndims];
        if (json_is_string(x)) {
            if (edim_range(d, json_string_value(x), json_string_length(x), err, sizeof err) != 0)
                return tparse_fail(p, "\"each\".\"%.40s\": %s", k, err);
        } else if (json_is_array(x) && json_array_size(x) > 0) {
            memset(d, 0, sizeof *d);
            d->items = items + used;
            d->lens = lens + used;
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e)
            {
                if (json_is_string(e)) {
                    items[used] = json_string_value(e);
                    lens[used] = json_string_length(e);
                } else if (json_is_integer(e)) {
                    lens[used] = (size_t)snprintf(nums[used], 32, "%lld", (long long)json_integer_value(e));
                    items[used] = nums[used];
                } else if (json_is_real(e)) {
                    lens[used] = (size_t)snprintf(nums[used], 32, "%.17g", json_real_value(e));
                    items[used] = nums[used];
                } else {
                    return tparse_fail(p, "\"each\".\"%.40s\": array items must be strings or numbers", k);
                }
                used++;
            }
            d->n = json_array_size(x);
        } else {
            return tparse_fail(p, "\"each\".\"%.40s\" must be a range \"A..B\" or a non-empty array", k);
        }
        d->name = k;
        d->nlen = strlen(k);
        if (d->n > EXPAND_MAX_TOTAL / t->total)
            return tparse_fail(p, "\"each\" expands to more than %llu tasks", EXPAND_MAX_TOTAL);
        t->total *= d->n;
        t->ndims++;
    }
    return TSR_OK;
}

/* s with {name} replaced by the values of point idx; into p->buf. */
static const char *subst(tparse_t *p, const jtask_t *t, const uint64_t *idx, const char *s, size_t *len)
{
    size_t o = 0, n = strlen(s);
    for (size_t i = 0; i <= n; i++) {
        const char *v = s + i;
        size_t vl = 1;
        char num[EXPAND_VALUE_MAX];
        if (s[i] == '{') {
            for (int d = 0; d < t->ndims; d++)
                if (i + t->dims[d].nlen + 1 < n + 1 && strncmp(s + i + 1, t->dims[d].name, t->dims[d].nlen) == 0 &&
                    s[i + 1 + t->dims[d].nlen] == '}') {
                    v = edim_value(&t->dims[d], idx[d], num, &vl);
                    i += t->dims[d].nlen + 1;
                    break;
                }
        }
        if (o + vl + 1 > p->bufcap) {
            size_t cap = p->bufcap ? 2 * p->bufcap : 256;
            while (cap < o + vl + 1)
                cap *= 2;
            char *b = realloc(p->buf, cap);
            if (!b)
                return NULL;
            p->buf = b;
            p->bufcap = cap;
        }
        memcpy(p->buf + o, v, vl);
        o += vl;
    }
    *len = o - 1;
    return p->buf;
}

static char *subst_arena(tparse_t *p, tarena_t *a, const jtask_t *t, const uint64_t *idx, const char *s)
{
    size_t n;
    const char *v = subst(p, t, idx, s, &n);
    return v ? tarena_strndup(a, v, n) : NULL;
}

static int fill_ext(tparse_t *p, const jtask_t *j, const uint64_t *idx, task_t *t)
{
    tarena_t *a = &p->tt->arena;
    size_t nenv = j->env ? json_object_size(j->env) : 0;
    size_t ntags = json_is_array(j->tags) ? json_array_size(j->tags) : j->tags ? 1 : 0;
    if (!j->cwd && !j->out && !j->err && !nenv && !ntags)
        return TSR_OK;
    task_ext_t *x = calloc(1, sizeof *x);
    if (!x || (nenv && !(x->env = calloc(nenv, sizeof *x->env))) ||
        (ntags && !(x->tags = calloc(ntags, sizeof *x->tags)))) {
        if (x)
            free(x->env);
        free(x);
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
    }
    t->ext = x;
    int oom = 0;
    if (j->cwd)
        oom |= !(x->cwd = subst_arena(p, a, j, idx, j->cwd));
    if (j->out)
        oom |= !(x->out = subst_arena(p, a, j, idx, j->out));
    if (j->err)
        oom |= !(x->err = subst_arena(p, a, j, idx, j->err));
    const char *k;
    json_t *v;
    json_object_foreach(j->env, k, v)
    {
        size_t n;
        const char *s = subst(p, j, idx, json_string_value(v), &n);
        char *e = s ? malloc(strlen(k) + n + 2) : NULL;
        if (e)
            sprintf(e, "%s=%s", k, s);
        oom |= !e || !(x->env[x->nenv++] = tarena_strdup(a, e));
        free(e);
    }
    for (size_t i = 0; i < ntags; i++) {
        json_t *tg = json_is_array(j->tags) ? json_array_get(j->tags, i) : j->tags;
        oom |= !(x->tags[x->ntags++] = subst_arena(p, a, j, idx, json_string_value(tg)));
    }
    return oom ? tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin) : TSR_OK;
}

static int env_ok(tparse_t *p, json_t *env)
{
    const char *k;
    json_t *v;
    if (!json_is_object(env))
        return tparse_fail(p, "\"env\" must be an object of NAME: \"value\"");
    json_object_foreach(env, k, v)
    {
        int ok = (k[0] == '_' || (k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z'));
        for (const char *c = k; ok && *c; c++)
            ok = *c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
        if (!ok)
            return tparse_fail(p, "\"env\": \"%.40s\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", k);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return tparse_fail(p, "\"env\".\"%.40s\" must be a string without NUL bytes", k);
    }
    return TSR_OK;
}

static int fields(tparse_t *p, json_t *o, jtask_t *t, const char **items, size_t *lens, char (*nums)[32])
{
    const char *k;
    json_t *v;
    int rc = TSR_OK;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "id") == 0)
            rc = get_str(p, v, k, &t->id);
        else if (strcmp(k, "cmd") == 0)
            rc = get_str(p, v, k, &t->cmd);
        else if (strcmp(k, "cwd") == 0)
            rc = get_str(p, v, k, &t->cwd);
        else if (strcmp(k, "stdout") == 0)
            rc = get_str(p, v, k, &t->out);
        else if (strcmp(k, "stderr") == 0)
            rc = get_str(p, v, k, &t->err);
        else if (strcmp(k, "priority") == 0)
            rc = get_int(p, v, k, -1000000000, 1000000000, &t->prio);
        else if (strcmp(k, "retries") == 0)
            rc = get_int(p, v, k, 0, 1000, &t->retries);
        else if (strcmp(k, "cores") == 0)
            rc = get_int(p, v, k, 1, 4096, &t->cores);
        else if (strcmp(k, "gpus") == 0)
            rc = get_int(p, v, k, 0, 256, &t->gpus);
        else if (strcmp(k, "timeout") == 0)
            rc = get_seconds(p, v, k, &t->timeout);
        else if (strcmp(k, "backoff") == 0)
            rc = get_backoff(p, v, t);
        else if (strcmp(k, "after") == 0)
            rc = str_list(p, v, k), t->after = v;
        else if (strcmp(k, "tags") == 0)
            rc = str_list(p, v, k), t->tags = v;
        else if (strcmp(k, "env") == 0)
            rc = env_ok(p, v), t->env = v;
        else if (strcmp(k, "each") == 0)
            rc = get_each(p, v, t, items, lens, nums);
        else
            rc = unknown_key(p, k);
        if (rc)
            return rc;
    }
    if (!t->cmd)
        return tparse_fail(p, "the task has no \"cmd\"");
    return TSR_OK;
}

static int add_all(tparse_t *p, jtask_t *j)
{
    uint64_t idx[EXPAND_MAX_DIMS] = {0};
    for (uint64_t k = 0; k < j->total; k++) {
        expand_split(j->dims, j->ndims, k, idx);
        size_t cl, il = 0;
        const char *c = subst(p, j, idx, j->cmd, &cl);
        char *cmd = c ? tarena_strndup(&p->tmp, c, cl) : NULL;
        const char *id = cmd && j->id ? subst(p, j, idx, j->id, &il) : NULL;
        uint32_t ti;
        if (!cmd || (j->id && !id))
            return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
        task_t *t = tparse_task(p, id, il, cmd, cl, k, j->total, &ti);
        if (!t)
            return TSR_EDATA;
        t->prio = (int32_t)j->prio;
        t->retries = (uint16_t)j->retries;
        t->cores = (uint16_t)j->cores;
        t->gpus = (uint16_t)j->gpus;
        t->timeout_s = j->timeout;
        t->backoff_s = (float)j->backoff;
        t->backoff_factor = (float)j->factor;
        if (fill_ext(p, j, idx, &p->tt->t[ti]))
            return TSR_ENOMEM;
        size_t n = json_is_array(j->after) ? json_array_size(j->after) : j->after ? 1 : 0;
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_is_array(j->after) ? json_array_get(j->after, i) : j->after;
            size_t dl;
            const char *d = subst(p, j, idx, json_string_value(a), &dl);
            if (!d)
                return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
            if (tparse_after(p, ti, d, dl))
                return TSR_EDATA;
        }
    }
    return TSR_OK;
}

int tparse_json(tparse_t *p, const char *line, size_t n)
{
    json_error_t e;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &e);
    if (!o)
        return tparse_fail(p, "not valid JSON at column %d: %s", e.column, e.text);
    jtask_t t;
    memset(&t, 0, sizeof t);
    t.cores = 1;
    t.factor = 2;
    t.total = 1;
    /* list items of "each": at most one per array element */
    size_t nitems = 0;
    json_t *each = json_object_get(o, "each");
    const char *k;
    json_t *v;
    if (json_is_object(each))
        json_object_foreach(each, k, v) nitems += json_is_array(v) ? json_array_size(v) : 0;
    const char **items = malloc((nitems + 1) * sizeof *items);
    size_t *lens = malloc((nitems + 1) * sizeof *lens);
    char(*nums)[32] = malloc((nitems + 1) * sizeof *nums);
    int rc = items && lens && nums ? fields(p, o, &t, items, lens, nums)
                                   : tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
    if (rc == TSR_OK)
        rc = add_all(p, &t);
    free(items);
    free(lens);
    free(nums);
    json_decref(o);
    return rc;
}
