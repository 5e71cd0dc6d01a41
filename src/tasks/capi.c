/* SPDX-License-Identifier: BSD-3-Clause */
/* The C API's tasks: records, dependencies, the end of a task, waiting,
 * results (capi.h explains the lock-free parts). */
#include "tasks/buf.h"
#include "tasks/capi.h"
#include "tasks/count.h"
#include "tessera/error.h"

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *grow(tsr_tasks_t *t, void *_Atomic *slot, size_t bytes)
{
    void *p = atomic_load_explicit(slot, memory_order_acquire);
    if (p)
        return p;
    pthread_mutex_lock(&t->grow_mu);
    if (!(p = atomic_load_explicit(slot, memory_order_relaxed)) && (p = tbig_zalloc(bytes)))
        atomic_store_explicit(slot, p, memory_order_release);
    pthread_mutex_unlock(&t->grow_mu);
    return p;
}

ctask_t *capi_task(tsr_tasks_t *t, uint32_t idx)
{
    return atomic_load_explicit(&t->chunk[idx >> CHUNK_BITS], memory_order_acquire) + (idx & (CHUNK - 1));
}

static cedge_t *edge(tsr_tasks_t *t, uint32_t e)
{
    return atomic_load_explicit(&t->echunk[e >> CHUNK_BITS], memory_order_acquire) + (e & (CHUNK - 1));
}

ctask_t *capi_new(tsr_tasks_t *t, uint32_t *idx)
{
    uint64_t i = atomic_fetch_add(&t->next_id, 1);
    if (i >= (uint64_t)MAX_CHUNKS * CHUNK - 1)
        return NULL;
    ctask_t *chunk = grow(t, (void *_Atomic *)&t->chunk[i >> CHUNK_BITS], CHUNK * sizeof(ctask_t));
    if (!chunk)
        return NULL;
    *idx = (uint32_t)i;
    ctask_t *c = chunk + (i & (CHUNK - 1));
    atomic_store_explicit(&c->dep_head, EDGE_NONE, memory_order_relaxed);
    return c;
}

static uint32_t new_edge(tsr_tasks_t *t, uint32_t to)
{
    uint64_t e = atomic_fetch_add(&t->next_edge, 1);
    if (e >= EDGE_CLOSED || !grow(t, (void *_Atomic *)&t->echunk[e >> CHUNK_BITS], CHUNK * sizeof(cedge_t)))
        return EDGE_NONE;
    edge(t, (uint32_t)e)->to = to;
    return (uint32_t)e;
}

static ccb_t *callback(tsr_tasks_t *t, uint32_t idx, int make)
{
    ccb_t *cb = atomic_load_explicit(&t->cbchunk[idx >> CHUNK_BITS], memory_order_acquire);
    if (!cb && make)
        cb = grow(t, (void *_Atomic *)&t->cbchunk[idx >> CHUNK_BITS], CHUNK * sizeof(ccb_t));
    return cb ? cb + (idx & (CHUNK - 1)) : NULL;
}

int capi_fn_index(tsr_tasks_t *t, tsr_task_fn_t fn)
{
    int n = atomic_load(&t->nfns);
    for (int i = 0; i < n; i++)
        if (t->fns[i] == fn)
            return i;
    if (t->size > 1)
        return -1;
    return tsr_tasks_register(t, fn) == TSR_OK ? capi_fn_index(t, fn) : -1;
}

int tsr_tasks_register(tsr_tasks_t *t, tsr_task_fn_t fn)
{
    if (!fn)
        return tsr_error_set(TSR_EINVAL, "tasks: register: the function is NULL");
    pthread_mutex_lock(&t->grow_mu);
    int n = atomic_load(&t->nfns), rc = TSR_OK;
    for (int i = 0; i < n; i++)
        if (t->fns[i] == fn)
            n = -1;
    if (n >= MAX_FNS)
        rc = tsr_error_set(TSR_EINVAL, "tasks: more than %d functions registered", MAX_FNS);
    else if (n >= 0) {
        t->fns[n] = fn;
        atomic_store(&t->nfns, n + 1);
    }
    pthread_mutex_unlock(&t->grow_mu);
    return rc;
}

void capi_free_payload(ctask_t *c)
{
    uint8_t f = atomic_fetch_and(&c->flags, (uint8_t) ~(F_ARG_HEAP | F_RES_HEAP));
    if (f & F_ARG_HEAP)
        free(c->arg.p);
    if (f & F_RES_HEAP)
        free(c->res.p);
    c->arglen = c->reslen = 0;
}

static int is_final(int st) { return st >= TSR_TASK_SUCCEEDED; }

static void wake(tsr_tasks_t *t, uint64_t n, int waited)
{
    if (atomic_load(&t->waiters) && (waited || n >= atomic_load(&t->wake_at))) {
        pthread_mutex_lock(&t->done_mu);
        pthread_cond_broadcast(&t->done_cv);
        pthread_mutex_unlock(&t->done_mu);
    }
}

/* The dependents of a task that ended: released, or skipped (and theirs). */
static void close_deps(tsr_tasks_t *t, uint32_t idx, int ok)
{
    uint32_t e = atomic_exchange(&capi_task(t, idx)->dep_head, EDGE_CLOSED);
    for (; e != EDGE_NONE && e != EDGE_CLOSED; e = edge(t, e)->next) {
        uint32_t to = edge(t, e)->to;
        ctask_t *d = capi_task(t, to);
        uint8_t st = TSR_TASK_PENDING;
        if (ok) {
            if (atomic_fetch_sub(&d->nwait, 1) == 1 && atomic_compare_exchange_strong(&d->state, &st, TSR_TASK_READY))
                pool_push(t, to);
        } else if (atomic_compare_exchange_strong(&d->state, &st, TSR_TASK_SKIPPED)) {
            capi_finish(t, to, TSR_TASK_SKIPPED);
        }
    }
}

void capi_finish(tsr_tasks_t *t, uint32_t idx, int state)
{
    ctask_t *c = capi_task(t, idx);
    atomic_store(&c->state, (uint8_t)state);
    atomic_fetch_add_explicit(&t->count[state], 1, memory_order_relaxed);
    tasks_count_state(state, 1);
    if (t->on_local_end)
        t->on_local_end(t, idx);
    close_deps(t, idx, state == TSR_TASK_SUCCEEDED);
    uint8_t f = atomic_load(&c->flags);
    if (f & F_CALLBACK) {
        ccb_t *cb = callback(t, idx, 0);
        if (cb && cb->fn)
            cb->fn(t, (tsr_task_id_t)idx + 1, (tsr_task_state_t)state, cb->user);
    }
    uint64_t n = atomic_fetch_add(&t->finished, 1) + 1;
    wake(t, n, f & F_WAITED);
}

void capi_after_run(tsr_tasks_t *t, uint32_t idx, int rc)
{
    ctask_t *c = capi_task(t, idx);
    c->rc = rc;
    if (atomic_load(&c->flags) & F_CANCEL) {
        capi_finish(t, idx, TSR_TASK_CANCELLED);
    } else if (rc == 0) {
        capi_finish(t, idx, TSR_TASK_SUCCEEDED);
    } else if (c->attempts <= c->retries) {
        double wait = c->backoff_s > 0 ? c->backoff_s * pow(c->backoff_factor, c->attempts - 1) : 0;
        atomic_store(&c->state, (uint8_t)(wait > 0 ? TSR_TASK_DELAYED : TSR_TASK_READY));
        if (wait > 0)
            pool_delay(t, idx, tnow() + wait);
        else
            pool_push(t, idx);
    } else {
        capi_finish(t, idx, TSR_TASK_FAILED);
    }
}

/* Adds dependency d (an index) to new task idx; returns 0 when d already
 * ended badly (idx is to be skipped). */
static int add_dep(tsr_tasks_t *t, uint32_t idx, uint32_t d, int *oom)
{
    ctask_t *dep = capi_task(t, d), *c = capi_task(t, idx);
    uint32_t e = EDGE_NONE;
    for (;;) {
        uint32_t h = atomic_load(&dep->dep_head);
        if (h == EDGE_CLOSED) {
            if (atomic_load(&dep->state) != TSR_TASK_SUCCEEDED)
                return 0;
            atomic_fetch_sub(&c->nwait, 1);
            return 1;
        }
        if (e == EDGE_NONE && (e = new_edge(t, idx)) == EDGE_NONE) {
            *oom = 1;
            return 0;
        }
        edge(t, e)->next = h;
        if (atomic_compare_exchange_weak(&dep->dep_head, &h, e))
            return 1;
    }
}

int tsr_tasks_submit(tsr_tasks_t *t, tsr_task_fn_t fn, const void *arg, size_t len, const tsr_task_opts_t *o,
                     tsr_task_id_t *id)
{
    static const tsr_task_opts_t none = {.backoff_factor = 2};
    if (!o)
        o = &none;
    if (t->size > 1 && t->rank != 0)
        return tsr_error_set(TSR_EINVAL, "tasks: submit on rank %d; tasks are submitted on rank 0", t->rank);
    int fi = fn ? capi_fn_index(t, fn) : -1;
    if (fi < 0)
        return tsr_error_set(TSR_EINVAL, "tasks: submit: %s",
                             fn ? "the function is not registered "
                                  "(tsr_tasks_register on every rank, in the same order)"
                                : "the function is NULL");
    if (o->retries < 0 || o->retries > 65535 || o->backoff_s < 0 || (o->backoff_s > 0 && o->backoff_factor < 1) ||
        len > UINT32_MAX || (len && !arg))
        return tsr_error_set(TSR_EINVAL, "tasks: submit: retries 0..65535, backoff >= 0 with factor >= 1, and an "
                                         "argument of len bytes (under 4 GiB) are expected");
    uint64_t known = atomic_load(&t->next_id);
    for (size_t i = 0; i < o->nafter; i++)
        if (o->after[i] == 0 || o->after[i] > known)
            return tsr_error_set(TSR_EINVAL, "tasks: submit: 'after' names task %llu, which does not exist",
                                 (unsigned long long)o->after[i]);
    uint32_t idx;
    ctask_t *c = capi_new(t, &idx);
    if (!c)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory for a task");
    c->fn = (uint32_t)fi;
    c->prio = o->priority;
    c->retries = (uint16_t)o->retries;
    c->backoff_s = (float)o->backoff_s;
    c->backoff_factor = (float)(o->backoff_factor >= 1 ? o->backoff_factor : 2);
    c->arglen = (uint32_t)len;
    uint8_t flags = 0;
    if (len > INLINE) {
        if (!(c->arg.p = malloc(len))) {
            atomic_store(&c->state, TSR_TASK_FAILED); /* the id is spent; never queued */
            return tsr_error_set(TSR_ENOMEM, "tasks: out of memory for a %zu-byte argument", len);
        }
        memcpy(c->arg.p, arg, len);
        flags |= F_ARG_HEAP;
    } else if (len) {
        memcpy(c->arg.in, arg, len);
    }
    if (o->on_done) {
        ccb_t *cb = callback(t, idx, 1);
        if (cb) {
            cb->fn = o->on_done;
            cb->user = o->user;
            flags |= F_CALLBACK;
        }
    }
    atomic_store(&c->flags, flags);
    atomic_store(&c->nwait, (uint32_t)o->nafter + 1);
    atomic_store(&c->state, TSR_TASK_PENDING);
    atomic_fetch_add(&t->submitted, 1);
    tasks_count_state(-1, 1);
    int ok = 1, oom = 0;
    for (size_t i = 0; i < o->nafter && ok; i++)
        ok = add_dep(t, idx, (uint32_t)(o->after[i] - 1), &oom);
    uint8_t st = TSR_TASK_PENDING;
    if (!ok) {
        if (atomic_compare_exchange_strong(&c->state, &st, TSR_TASK_SKIPPED))
            capi_finish(t, idx, oom ? TSR_TASK_FAILED : TSR_TASK_SKIPPED);
    } else if (atomic_fetch_sub(&c->nwait, 1) == 1 && atomic_compare_exchange_strong(&c->state, &st, TSR_TASK_READY)) {
        pool_push(t, idx);
    }
    if (id)
        *id = (tsr_task_id_t)idx + 1;
    /* Rank 0 feeds the other ranks while it submits, not only once it waits. */
    if (t->remote && (idx & 63) == 63 && pthread_equal(pthread_self(), t->creator))
        remote_progress(t);
    return oom ? tsr_error_set(TSR_ENOMEM, "tasks: out of memory for a dependency") : TSR_OK;
}

static ctask_t *lookup(tsr_tasks_t *t, tsr_task_id_t id)
{
    if (id == 0 || id > atomic_load(&t->next_id)) {
        tsr_error_set(TSR_EINVAL, "tasks: no task %llu", (unsigned long long)id);
        return NULL;
    }
    return capi_task(t, (uint32_t)(id - 1));
}

tsr_task_state_t tsr_tasks_state(tsr_tasks_t *t, tsr_task_id_t id)
{
    ctask_t *c = lookup(t, id);
    return c ? (tsr_task_state_t)atomic_load(&c->state) : TSR_TASK_NSTATES;
}

int tsr_tasks_cancel(tsr_tasks_t *t, tsr_task_id_t id)
{
    ctask_t *c = lookup(t, id);
    if (!c)
        return TSR_EINVAL;
    for (;;) {
        uint8_t st = atomic_load(&c->state);
        if (is_final(st))
            return TSR_OK;
        if (st == TSR_TASK_RUNNING) {
            atomic_fetch_or(&c->flags, F_CANCEL);
            /* It may have ended meanwhile: then the flag is harmless. */
            return TSR_OK;
        }
        if (atomic_compare_exchange_strong(&c->state, &st, TSR_TASK_CANCELLED)) {
            capi_finish(t, (uint32_t)(id - 1), TSR_TASK_CANCELLED);
            return TSR_OK;
        }
    }
}

/* Until done() holds: sleeping on the done condition, or, on rank 0 of a
 * farm over several ranks, moving tasks between ranks meanwhile. */
static void wait_until(tsr_tasks_t *t, int (*done)(tsr_tasks_t *, const void *), const void *arg)
{
    atomic_fetch_add(&t->waiters, 1);
    pthread_mutex_lock(&t->done_mu);
    while (!done(t, arg)) {
        if (t->remote) {
            pthread_mutex_unlock(&t->done_mu);
            int moved = remote_progress(t);
            pthread_mutex_lock(&t->done_mu);
            if (done(t, arg))
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += moved ? 20000 : 200000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&t->done_cv, &t->done_mu, &ts);
        } else {
            pthread_cond_wait(&t->done_cv, &t->done_mu);
        }
    }
    pthread_mutex_unlock(&t->done_mu);
    atomic_fetch_sub(&t->waiters, 1);
}

static int task_done(tsr_tasks_t *t, const void *arg)
{
    (void)t;
    return is_final(atomic_load(&((const ctask_t *)arg)->state));
}

static int all_done(tsr_tasks_t *t, const void *arg) { return atomic_load(&t->finished) >= *(const uint64_t *)arg; }

int tsr_tasks_wait(tsr_tasks_t *t, tsr_task_id_t id, tsr_task_state_t *state)
{
    ctask_t *c = lookup(t, id);
    if (!c)
        return TSR_EINVAL;
    if (!is_final(atomic_load(&c->state))) {
        atomic_fetch_or(&c->flags, F_WAITED);
        wait_until(t, task_done, c);
    }
    if (state)
        *state = (tsr_task_state_t)atomic_load(&c->state);
    return TSR_OK;
}

int tsr_tasks_wait_all(tsr_tasks_t *t)
{
    uint64_t target = atomic_load(&t->submitted);
    uint64_t w = atomic_load(&t->wake_at);
    while (target < w && !atomic_compare_exchange_weak(&t->wake_at, &w, target))
        ;
    wait_until(t, all_done, &target);
    uint64_t bad = atomic_load(&t->count[TSR_TASK_FAILED]) + atomic_load(&t->count[TSR_TASK_SKIPPED]) +
                   atomic_load(&t->count[TSR_TASK_CANCELLED]);
    return bad ? TSR_ETASKS : TSR_OK;
}

int tsr_tasks_result(tsr_tasks_t *t, tsr_task_id_t id, const void **data, size_t *len, int *rc, int *attempts)
{
    ctask_t *c = lookup(t, id);
    if (!c)
        return TSR_EINVAL;
    if (!is_final(atomic_load(&c->state)))
        return tsr_error_set(TSR_EINVAL, "tasks: task %llu has not finished", (unsigned long long)id);
    if (data)
        *data = atomic_load(&c->flags) & F_RES_HEAP ? c->res.p : c->res.in;
    if (len)
        *len = c->reslen;
    if (rc)
        *rc = c->rc;
    if (attempts)
        *attempts = c->attempts;
    return TSR_OK;
}

int tsr_tasks_release(tsr_tasks_t *t, tsr_task_id_t id)
{
    ctask_t *c = lookup(t, id);
    if (!c)
        return TSR_EINVAL;
    if (!is_final(atomic_load(&c->state)))
        return tsr_error_set(TSR_EINVAL, "tasks: task %llu has not finished", (unsigned long long)id);
    capi_free_payload(c);
    return TSR_OK;
}

/* Stores a result in task c (inline when small). */
int capi_store_result(ctask_t *c, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        return tsr_error_set(TSR_EINVAL, "tasks: a result of %zu bytes is too large", len);
    if (atomic_fetch_and(&c->flags, (uint8_t)~F_RES_HEAP) & F_RES_HEAP)
        free(c->res.p);
    c->reslen = 0;
    if (len > INLINE) {
        void *p = malloc(len);
        if (!p)
            return tsr_error_set(TSR_ENOMEM, "tasks: out of memory for a %zu-byte result", len);
        memcpy(p, data, len);
        c->res.p = p;
        atomic_fetch_or(&c->flags, F_RES_HEAP);
    } else if (len) {
        memcpy(c->res.in, data, len);
    }
    c->reslen = (uint32_t)len;
    return TSR_OK;
}

int tsr_task_set_result(tsr_task_ctx_t *ctx, const void *data, size_t len)
{
    if (len && !data)
        return tsr_error_set(TSR_EINVAL, "tasks: set_result: data is NULL");
    return capi_store_result(capi_task(ctx->farm, ctx->idx), data, len);
}

tsr_task_id_t tsr_task_id(const tsr_task_ctx_t *ctx) { return ctx->id; }
int tsr_task_attempt(const tsr_task_ctx_t *ctx) { return ctx->attempt; }
int tsr_task_rank(const tsr_task_ctx_t *ctx) { return ctx->rank; }
tsr_tasks_t *tsr_task_farm(const tsr_task_ctx_t *ctx) { return ctx->farm; }

int tsr_task_cancelled(const tsr_task_ctx_t *ctx)
{
    return (atomic_load(&capi_task(ctx->farm, ctx->idx)->flags) & F_CANCEL) != 0;
}
