/* SPDX-License-Identifier: BSD-3-Clause */
/* The threads that run in-process tasks. A task that becomes ready is
 * pushed onto a lock-free inbox; a thread that needs work moves the inbox
 * into one priority queue (in push order) and takes a batch from it into
 * its own deque (about a millisecond of work by its recent task times, at
 * most 64, no more than its share of what is queued), runs them in order,
 * and when it has nothing left steals half of another thread's deque,
 * spins a little, and sleeps. */
#include "tasks/buf.h"
#include "tasks/capi.h"
#include "tasks/count.h"
#include "tessera/trace.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BATCH_MAX = 64, RUN_MAX = 1, SPIN = 2000 }; /* one at a time: what waits in a deque can be stolen */

static _Thread_local cthread_t *self; /* the pool thread running this code, if any */

/* Up to RUN_MAX tasks off the front of d under one lock. */
static size_t dq_pop_some(cdeque_t *d, uint32_t *out)
{
    pthread_mutex_lock(&d->mu);
    size_t k = d->n < RUN_MAX ? d->n : RUN_MAX;
    for (size_t i = 0; i < k; i++)
        out[i] = d->buf[(d->head + i) % d->cap];
    d->head = (d->head + k) % d->cap;
    d->n -= k;
    pthread_mutex_unlock(&d->mu);
    return k;
}

/* Half of victim's deque, from its back, into me. */
static size_t dq_steal(cdeque_t *victim, cdeque_t *me)
{
    uint32_t got[BATCH_MAX];
    size_t k = 0;
    if (pthread_mutex_trylock(&victim->mu) != 0)
        return 0;
    size_t half = (victim->n + 1) / 2; /* the last one too: its owner may be stuck on a long task */
    for (; k < half && k < BATCH_MAX; k++)
        got[k] = victim->buf[(victim->head + victim->n - 1 - k) % victim->cap];
    victim->n -= k;
    pthread_mutex_unlock(&victim->mu);
    pthread_mutex_lock(&me->mu);
    for (size_t i = k; i-- > 0;)
        me->buf[(me->head + me->n++) % me->cap] = got[i];
    pthread_mutex_unlock(&me->mu);
    return k;
}

static void heap_fix(cdelay_t *h, size_t n, size_t c)
{
    for (;;) {
        size_t l = 2 * c + 1, r = l + 1, m = c;
        if (l < n && h[l].at < h[m].at)
            m = l;
        if (r < n && h[r].at < h[m].at)
            m = r;
        if (m == c)
            return;
        cdelay_t x = h[c];
        h[c] = h[m];
        h[m] = x;
        c = m;
    }
}

/* Under qmu: the inbox into the queue, oldest push first. */
static void drain(tsr_tasks_t *t)
{
    uint32_t h = atomic_exchange(&t->inbox, 0), rev = 0;
    while (h) { /* reverse the stack */
        ctask_t *c = capi_task(t, h - 1);
        uint32_t next = c->qnext;
        c->qnext = rev;
        rev = h;
        h = next;
    }
    for (; rev; rev = capi_task(t, rev - 1)->qnext) {
        ctask_t *c = capi_task(t, rev - 1);
        if (prioq_push(&t->q, c->prio, rev - 1))
            t->qoom = 1;
    }
    atomic_store_explicit(&t->qn, prioq_size(&t->q), memory_order_relaxed);
}

/* Under qmu: delayed tasks whose time has come join the queue. Returns the
 * time of the next one, or 0. */
static double due(tsr_tasks_t *t, double now)
{
    while (t->ndelayed) {
        if (t->delayed[0].at > now)
            return t->delayed[0].at;
        uint32_t idx = t->delayed[0].idx;
        t->delayed[0] = t->delayed[--t->ndelayed];
        heap_fix(t->delayed, t->ndelayed, 0);
        ctask_t *c = capi_task(t, idx);
        uint8_t st = TSR_TASK_DELAYED;
        if (atomic_compare_exchange_strong(&c->state, &st, TSR_TASK_READY) && prioq_push(&t->q, c->prio, idx))
            t->qoom = 1;
    }
    return 0;
}

void pool_delay(tsr_tasks_t *t, uint32_t idx, double at)
{
    pthread_mutex_lock(&t->qmu);
    if (t->ndelayed == t->capdelayed) {
        size_t cap = t->capdelayed ? 2 * t->capdelayed : 64;
        cdelay_t *d = realloc(t->delayed, cap * sizeof *d);
        if (!d) {
            t->qoom = 1;
            pthread_mutex_unlock(&t->qmu);
            return;
        }
        t->delayed = d;
        t->capdelayed = cap;
    }
    size_t c = t->ndelayed++;
    t->delayed[c] = (cdelay_t){at, idx};
    while (c && t->delayed[c].at < t->delayed[(c - 1) / 2].at) {
        cdelay_t x = t->delayed[c];
        t->delayed[c] = t->delayed[(c - 1) / 2];
        t->delayed[(c - 1) / 2] = x;
        c = (c - 1) / 2;
    }
    pthread_cond_signal(&t->qcv); /* a sleeper recomputes its timeout */
    pthread_mutex_unlock(&t->qmu);
}

void pool_push(tsr_tasks_t *t, uint32_t idx)
{
    ctask_t *c = capi_task(t, idx);
    uint32_t h = atomic_load(&t->inbox);
    do
        c->qnext = h;
    while (!atomic_compare_exchange_weak(&t->inbox, &h, idx + 1));
    /* A sleeper raises nsleeping before it looks at the inbox a last time,
     * so either it sees this push or this sees it (both seq_cst). */
    if (atomic_load(&t->nsleeping)) {
        pthread_mutex_lock(&t->qmu);
        pthread_cond_signal(&t->qcv);
        pthread_mutex_unlock(&t->qmu);
    }
}

size_t pool_take(tsr_tasks_t *t, uint32_t *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&t->qmu);
    drain(t);
    due(t, tnow());
    while (k < max && prioq_pop(&t->q, &out[k]))
        k++;
    atomic_store_explicit(&t->qn, prioq_size(&t->q), memory_order_relaxed);
    pthread_mutex_unlock(&t->qmu);
    return k;
}

/* A batch from the global queue into me's deque; 0 when there is none. */
static size_t take_batch(tsr_tasks_t *t, cthread_t *me, double *next)
{
    uint32_t got[BATCH_MAX];
    size_t want = me->ewma > 0 ? (size_t)(1e-3 / me->ewma) : 1;
    pthread_mutex_lock(&t->qmu);
    drain(t);
    *next = due(t, tnow());
    size_t share = prioq_size(&t->q) / (size_t)(2 * t->nthreads);
    if (want > share)
        want = share;
    if (want < 1)
        want = 1;
    if (want > BATCH_MAX)
        want = BATCH_MAX;
    size_t k = 0;
    while (k < want && prioq_pop(&t->q, &got[k]))
        k++;
    atomic_store_explicit(&t->qn, prioq_size(&t->q), memory_order_relaxed);
    pthread_mutex_unlock(&t->qmu);
    if (k) {
        pthread_mutex_lock(&me->dq.mu);
        for (size_t i = 0; i < k; i++)
            me->dq.buf[(me->dq.head + me->dq.n++) % me->dq.cap] = got[i];
        pthread_mutex_unlock(&me->dq.mu);
    }
    return k;
}

/* Work appeared (without taking qmu). */
static int work_waiting(tsr_tasks_t *t)
{
    return atomic_load_explicit(&t->inbox, memory_order_relaxed) || atomic_load_explicit(&t->qn, memory_order_relaxed);
}

static void *thread_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-task"); /* top -H, gdb and traces name it */
    cthread_t *me = arg;
    tsr_tasks_t *t = me->farm;
    self = me;
    for (;;) {
        uint32_t run[RUN_MAX];
        double next = 0;
        size_t n = dq_pop_some(&me->dq, run);
        if (!n && take_batch(t, me, &next))
            n = dq_pop_some(&me->dq, run);
        if (n) {
            for (size_t i = 0; i < n; i++)
                pool_run(t, run[i], t->rank);
            continue;
        }
        int stole = 0;
        for (int k = 1; k < t->nthreads && !stole; k++)
            stole = dq_steal(&t->th[(me->index + k) % t->nthreads].dq, &me->dq) > 0;
        if (stole) {
            atomic_fetch_add_explicit(&t->steals, 1, memory_order_relaxed);
            continue;
        }
        /* Spin a little before sleeping: a futex round trip per task is the
         * cost to avoid when tasks arrive one by one. */
        int spins = 0;
        while (spins++ < SPIN && !work_waiting(t) && !t->quit)
            if (spins % 64 == 0)
                sched_yield();
            else
                __builtin_ia32_pause();
        if (work_waiting(t))
            continue;
        pthread_mutex_lock(&t->qmu);
        drain(t);
        if (t->quit && !prioq_size(&t->q) && !t->ndelayed) {
            pthread_mutex_unlock(&t->qmu);
            break;
        }
        atomic_fetch_add(&t->nsleeping, 1);
        if (!prioq_size(&t->q) && !atomic_load(&t->inbox)) {
            if (next > 0 || t->ndelayed) {
                double at = t->ndelayed ? t->delayed[0].at : next;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                double s = at - tnow();
                s = s < 0 ? 0 : s > 1 ? 1 : s;
                long ns = ts.tv_nsec + (long)(s * 1e9);
                ts.tv_sec += ns / 1000000000L;
                ts.tv_nsec = ns % 1000000000L;
                pthread_cond_timedwait(&t->qcv, &t->qmu, &ts);
            } else {
                pthread_cond_wait(&t->qcv, &t->qmu);
            }
        }
        atomic_fetch_sub(&t->nsleeping, 1);
        pthread_mutex_unlock(&t->qmu);
    }
    return NULL;
}

void pool_run(tsr_tasks_t *t, uint32_t idx, int rank)
{
    ctask_t *c = capi_task(t, idx);
    uint8_t st = TSR_TASK_READY;
    if (!atomic_compare_exchange_strong(&c->state, &st, TSR_TASK_RUNNING))
        return; /* cancelled or skipped while queued */
    tasks_count_state(TSR_TASK_RUNNING, 1);
    c->attempts++;
    tsr_task_ctx_t ctx = {t, idx, c->attempts, rank, t->id_of ? t->id_of(t, idx) : (tsr_task_id_t)idx + 1};
    const void *arg = atomic_load_explicit(&c->flags, memory_order_relaxed) & F_ARG_HEAP ? c->arg.p : c->arg.in;
    double t0 = tnow();
    tsr_trace_mark(TSR_TRACE_TASK, 'B', (int64_t)idx); /* trace: a C task on its thread's track */
    int rc = t->fns[c->fn](&ctx, arg, c->arglen);
    tsr_trace_mark(TSR_TRACE_TASK, 'E', 0);
    double dt = tnow() - t0;
    c->dur = (float)dt;
    if (self)
        self->ewma = self->ewma > 0 ? 0.9 * self->ewma + 0.1 * dt : dt;
    capi_after_run(t, idx, rc);
}

int pool_start(tsr_tasks_t *t)
{
    if (!t->nthreads)
        return TSR_OK;
    t->th = calloc((size_t)t->nthreads, sizeof *t->th);
    if (!t->th)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory for %d threads", t->nthreads);
    for (int i = 0; i < t->nthreads; i++) {
        cthread_t *h = &t->th[i];
        h->farm = t;
        h->index = i;
        h->dq.cap = 2 * BATCH_MAX;
        h->dq.buf = malloc(h->dq.cap * sizeof *h->dq.buf);
        pthread_mutex_init(&h->dq.mu, NULL);
        if (!h->dq.buf)
            return tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
    }
    for (int i = 0; i < t->nthreads; i++)
        if (pthread_create(&t->th[i].th, NULL, thread_main, &t->th[i]) != 0) {
            int n = i;
            pthread_mutex_lock(&t->qmu);
            t->quit = 1;
            pthread_cond_broadcast(&t->qcv);
            pthread_mutex_unlock(&t->qmu);
            for (int k = 0; k < n; k++)
                pthread_join(t->th[k].th, NULL);
            t->nthreads = 0;
            return tsr_error_set(TSR_ESYS, "tasks: cannot start thread %d: %s", i, strerror(errno));
        }
    return TSR_OK;
}

void pool_stop(tsr_tasks_t *t)
{
    pthread_mutex_lock(&t->qmu);
    t->quit = 1;
    pthread_cond_broadcast(&t->qcv);
    pthread_mutex_unlock(&t->qmu);
    for (int i = 0; i < t->nthreads; i++)
        pthread_join(t->th[i].th, NULL);
    for (int i = 0; t->th && i < t->nthreads; i++) {
        pthread_mutex_destroy(&t->th[i].dq.mu);
        free(t->th[i].dq.buf);
    }
    free(t->th);
    t->th = NULL;
}
