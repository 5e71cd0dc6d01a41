/* SPDX-License-Identifier: BSD-3-Clause */
/* The scheduler of sched.h. */
#include "tasks/count.h"
#include "tasks/sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sched_init(sched_t *s, ttable_t *tt)
{
    memset(s, 0, sizeof *s);
    s->tt = tt;
}

void sched_free(sched_t *s)
{
    for (int i = 0; i < s->nshape; i++)
        prioq_free(&s->shape[i].q);
    free(s->shape);
    free(s->delayed);
    memset(s, 0, sizeof *s);
}

void sched_set(sched_t *s, uint32_t i, int state)
{
    task_t *t = &s->tt->t[i];
    s->count[t->state]--;
    s->count[state]++;
    t->state = (uint8_t)state;
    tasks_count_state(state, 1);
}

static int shape_of(sched_t *s, const task_t *t)
{
    for (int k = 0; k < s->nshape; k++)
        if (s->shape[k].cores == t->cores && s->shape[k].gpus == t->gpus)
            return k;
    if (s->nshape == s->capshape) {
        int cap = s->capshape ? 2 * s->capshape : 4;
        sched_shape_t *sh = realloc(s->shape, (size_t)cap * sizeof *sh);
        if (!sh)
            return -1;
        s->shape = sh;
        s->capshape = cap;
    }
    sched_shape_t *sh = &s->shape[s->nshape];
    sh->cores = t->cores;
    sh->gpus = t->gpus;
    prioq_init(&sh->q);
    return s->nshape++;
}

static void make_ready(sched_t *s, uint32_t i, int front)
{
    task_t *t = &s->tt->t[i];
    sched_set(s, i, TSR_TASK_READY);
    int k = shape_of(s, t);
    if (k < 0 || (front ? prioq_push_front(&s->shape[k].q, t->prio, i) : prioq_push(&s->shape[k].q, t->prio, i))) {
        s->oom = 1;
        return;
    }
    t->queued = 1;
}

/* Skips every task that waits, directly or not, for i (which did not succeed). */
static void skip_dependents(sched_t *s, uint32_t i)
{
    ttable_t *tt = s->tt;
    size_t n = 0, cap = 64;
    uint32_t *work = malloc(cap * sizeof *work);
    if (!work) {
        s->oom = 1;
        return;
    }
    work[n++] = i;
    while (n) {
        uint32_t d = work[--n];
        for (uint32_t e = tt->t[d].out_head; e != TASK_NONE; e = tt->edges[e].next) {
            uint32_t j = tt->edges[e].to;
            task_t *t = &tt->t[j];
            if (task_final(t) || t->state == TSR_TASK_RUNNING)
                continue;
            sched_set(s, j, TSR_TASK_SKIPPED);
            t->cause = d;
            if (n == cap) {
                uint32_t *w = realloc(work, 2 * cap * sizeof *w);
                if (!w) {
                    s->oom = 1;
                    break;
                }
                work = w;
                cap *= 2;
            }
            work[n++] = j;
        }
    }
    free(work);
}

void sched_settle(sched_t *s, uint32_t from)
{
    ttable_t *tt = s->tt;
    for (uint32_t i = from; i < tt->n; i++)
        s->count[tt->t[i].state]++;
    if (tt->n > from)
        tasks_count_state(-1, tt->n - from);
    for (uint32_t i = from; i < tt->n; i++) {
        task_t *t = &tt->t[i];
        if (task_final(t) && t->state != TSR_TASK_SUCCEEDED)
            skip_dependents(s, i);
    }
    for (uint32_t i = from; i < tt->n; i++) {
        task_t *t = &tt->t[i];
        if (task_final(t))
            continue;
        t->nwait = 0;
        uint32_t bad = TASK_NONE;
        for (uint32_t k = 0; k < t->ndeps; k++) {
            const task_t *d = &tt->t[tt->deps[t->dep_off + k]];
            t->nwait += d->state != TSR_TASK_SUCCEEDED;
            if (bad == TASK_NONE && task_final(d) && d->state != TSR_TASK_SUCCEEDED)
                bad = tt->deps[t->dep_off + k];
        }
        if (bad != TASK_NONE) {
            sched_set(s, i, TSR_TASK_SKIPPED);
            t->cause = bad;
            skip_dependents(s, i);
        } else if (t->nwait == 0 && (t->state == TSR_TASK_PENDING || t->state == TSR_TASK_READY)) {
            sched_set(s, i, TSR_TASK_PENDING);
            make_ready(s, i, 0);
        }
    }
}

static int earlier(const ttable_t *tt, uint32_t a, uint32_t b) { return tt->t[a].not_before < tt->t[b].not_before; }

static void delay(sched_t *s, uint32_t i)
{
    if (s->ndelayed == s->capdelayed) {
        size_t cap = s->capdelayed ? 2 * s->capdelayed : 64;
        uint32_t *d = realloc(s->delayed, cap * sizeof *d);
        if (!d) {
            s->oom = 1;
            return;
        }
        s->delayed = d;
        s->capdelayed = cap;
    }
    sched_set(s, i, TSR_TASK_DELAYED);
    size_t c = s->ndelayed++;
    s->delayed[c] = i;
    while (c && earlier(s->tt, s->delayed[c], s->delayed[(c - 1) / 2])) {
        uint32_t t = s->delayed[c];
        s->delayed[c] = s->delayed[(c - 1) / 2];
        s->delayed[(c - 1) / 2] = t;
        c = (c - 1) / 2;
    }
}

static uint32_t undelay(sched_t *s)
{
    uint32_t top = s->delayed[0];
    s->delayed[0] = s->delayed[--s->ndelayed];
    for (size_t c = 0;;) {
        size_t l = 2 * c + 1, r = l + 1, m = c;
        if (l < s->ndelayed && earlier(s->tt, s->delayed[l], s->delayed[m]))
            m = l;
        if (r < s->ndelayed && earlier(s->tt, s->delayed[r], s->delayed[m]))
            m = r;
        if (m == c)
            break;
        uint32_t t = s->delayed[c];
        s->delayed[c] = s->delayed[m];
        s->delayed[m] = t;
        c = m;
    }
    return top;
}

double sched_tick(sched_t *s, double now)
{
    while (s->ndelayed) {
        uint32_t i = s->delayed[0];
        const task_t *t = &s->tt->t[i];
        if (t->state != TSR_TASK_DELAYED) { /* cancelled meanwhile */
            undelay(s);
            continue;
        }
        if (t->not_before > now)
            return t->not_before;
        undelay(s);
        make_ready(s, i, 0);
    }
    return 0;
}

uint32_t sched_head(sched_t *s, int k)
{
    prioq_t *q = &s->shape[k].q;
    uint32_t i;
    while (prioq_peek(q, &i, NULL)) {
        if (s->tt->t[i].state == TSR_TASK_READY && s->tt->t[i].queued)
            return i;
        prioq_pop(q, &i); /* cancelled while queued */
        s->tt->t[i].queued = 0;
    }
    return TASK_NONE;
}

void sched_take(sched_t *s, int k)
{
    uint32_t i;
    if (prioq_pop(&s->shape[k].q, &i))
        s->tt->t[i].queued = 0;
}

void sched_requeue(sched_t *s, uint32_t i) { make_ready(s, i, 1); }

static void release(sched_t *s, uint32_t i)
{
    ttable_t *tt = s->tt;
    for (uint32_t e = tt->t[i].out_head; e != TASK_NONE; e = tt->edges[e].next) {
        uint32_t j = tt->edges[e].to;
        task_t *t = &tt->t[j];
        if (t->state == TSR_TASK_PENDING && t->nwait && --t->nwait == 0)
            make_ready(s, j, 0);
    }
}

int sched_finish(sched_t *s, uint32_t i, int how, int code)
{
    task_t *t = &s->tt->t[i];
    t->how = (uint8_t)how;
    t->code = code;
    if (how == HOW_INTERRUPTED || how == HOW_LOST) {
        /* Not the task's fault: the attempt does not count. */
        if (t->attempts)
            t->attempts--;
        make_ready(s, i, 1);
        return TSR_TASK_READY;
    }
    if (how == HOW_CANCELLED) {
        sched_set(s, i, TSR_TASK_CANCELLED);
        skip_dependents(s, i);
        return TSR_TASK_CANCELLED;
    }
    if (how == HOW_EXITED && code == 0) {
        sched_set(s, i, TSR_TASK_SUCCEEDED);
        release(s, i);
        return TSR_TASK_SUCCEEDED;
    }
    if (t->attempts <= t->retries) {
        double wait = t->backoff_s > 0 ? t->backoff_s * pow(t->backoff_factor, t->attempts - 1) : 0;
        if (wait > 0) {
            t->not_before = tnow() + wait;
            delay(s, i);
            return TSR_TASK_DELAYED;
        }
        make_ready(s, i, 0);
        return TSR_TASK_READY;
    }
    sched_set(s, i, TSR_TASK_FAILED);
    skip_dependents(s, i);
    return TSR_TASK_FAILED;
}

void sched_cancel(sched_t *s, uint32_t i)
{
    task_t *t = &s->tt->t[i];
    if (task_final(t) || t->state == TSR_TASK_RUNNING)
        return;
    sched_set(s, i, TSR_TASK_CANCELLED);
    skip_dependents(s, i);
}

uint64_t sched_final(const sched_t *s)
{
    return s->count[TSR_TASK_SUCCEEDED] + s->count[TSR_TASK_FAILED] + s->count[TSR_TASK_SKIPPED] +
           s->count[TSR_TASK_CANCELLED];
}

uint64_t sched_waiting(const sched_t *s) { return s->count[TSR_TASK_READY] + s->count[TSR_TASK_DELAYED]; }
