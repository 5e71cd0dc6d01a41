/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process tasks across ranks. Rank 0 keeps the whole graph; ready
 * tasks go to the other ranks in batches (each rank holds up to a credit
 * of tasks: about 2 ms of work per thread by the durations seen, at least
 * one per thread), which run them on their own threads as local tasks and
 * send back each result; retries, dependencies and callbacks stay on rank
 * 0. Only the thread that created the farm calls MPI: rank 0 inside
 * wait, wait_all and poll, the others inside tsr_tasks_work.
 *
 *   TAG_CRUN  0 -> r: u32 idx, u32 fn, u16 attempt, u32 arglen, arg   (repeated)
 *   TAG_CDONE r -> 0: u32 idx, i32 rc, f64 seconds, u32 reslen, result (repeated)
 *   TAG_CEXIT 0 -> r: nothing: return from tsr_tasks_work */
#include "tasks/buf.h"
#include "tasks/capi.h"
#include "tasks/msgq.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_CRUN = 7201, TAG_CDONE = 7202, TAG_CEXIT = 7203, CREDIT_MAX = 4096, BATCH = 1024 };

struct cremote {
    MPI_Comm comm;
    msgq_t mq;
    int *threads; /* per rank */
    int *out;     /* rank 0: tasks each rank holds */
    double ewma;  /* rank 0: seconds per remote task per thread */
    /* ranks > 0 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tbuf_t done;   /* results to send, filled by the threads */
    uint32_t *rid; /* rank 0's index of each local task (chunked) */
    uint32_t **ridchunk;
};

/* Rank 0: results from the other ranks. */
static int take_results(tsr_tasks_t *t, cremote_t *r)
{
    int moved = 0, src, tag;
    while (msgq_recv(&r->mq, MPI_ANY_SOURCE, &src, &tag)) {
        if (tag != TAG_CDONE)
            continue;
        tcur_t c;
        tcur_init(&c, r->mq.in.p, r->mq.in.len);
        while (c.ok && c.p < c.end) {
            uint32_t idx = tcur_u32(&c);
            int rc = (int)tcur_u32(&c);
            double dur = tcur_f64(&c);
            uint32_t len = tcur_u32(&c);
            const void *res = tcur_bytes(&c, len);
            if (!c.ok || idx >= atomic_load(&t->next_id))
                break;
            ctask_t *task = capi_task(t, idx);
            capi_store_result(task, res, len);
            atomic_fetch_and(&task->flags, (uint8_t)~F_REMOTE);
            r->out[src]--;
            atomic_fetch_add(&t->remote_done, 1);
            r->ewma = r->ewma > 0 ? 0.95 * r->ewma + 0.05 * dur : dur;
            capi_after_run(t, idx, rc);
            moved++;
        }
    }
    return moved;
}

int remote_progress(tsr_tasks_t *t)
{
    cremote_t *r = t->remote;
    int moved = take_results(t, r);
    uint32_t ids[BATCH];
    for (int k = 1; k < t->size; k++) {
        /* About 2 ms of work per thread: enough to hide the round trip,
         * little enough that nothing waits long on a busy rank. */
        double per = r->ewma > 0 ? 2e-3 / r->ewma : 16;
        per = per < 2            ? 2
              : per > CREDIT_MAX ? CREDIT_MAX
                                 : per; /* one waiting behind each running: no idle round trip */
        int credit = (int)(r->threads[k] * per);
        if (r->out[k] >= credit)
            continue;
        size_t want = (size_t)(credit - r->out[k]) < BATCH ? (size_t)(credit - r->out[k]) : BATCH;
        /* Beyond a task per thread, only a fair share of what is left:
         * near the end a rank must not sit on tasks others could run. */
        size_t fair = atomic_load_explicit(&t->qn, memory_order_relaxed) / (size_t)t->size;
        if (r->out[k] >= r->threads[k] && want > fair)
            want = fair;
        if (!want)
            continue;
        size_t n = pool_take(t, ids, want);
        if (!n)
            break;
        tbuf_t b = {0};
        for (size_t i = 0; i < n; i++) {
            ctask_t *c = capi_task(t, ids[i]);
            uint8_t st = TSR_TASK_READY;
            if (!atomic_compare_exchange_strong(&c->state, &st, TSR_TASK_RUNNING))
                continue;
            c->attempts++;
            atomic_fetch_or(&c->flags, F_REMOTE);
            tbuf_u32(&b, ids[i]);
            tbuf_u32(&b, c->fn);
            tbuf_u16(&b, c->attempts);
            tbuf_u32(&b, c->arglen);
            tbuf_put(&b, atomic_load(&c->flags) & F_ARG_HEAP ? c->arg.p : c->arg.in, c->arglen);
            r->out[k]++;
            moved++;
        }
        if (b.len)
            msgq_send(&r->mq, k, TAG_CRUN, &b);
        tbuf_free(&b);
    }
    msgq_reap(&r->mq, 0);
    return moved;
}

/* Ranks > 0: a local task ended; its result goes to rank 0. */
static void local_end(tsr_tasks_t *t, uint32_t idx)
{
    cremote_t *r = t->remote;
    ctask_t *c = capi_task(t, idx);
    pthread_mutex_lock(&r->mu);
    tbuf_u32(&r->done, r->ridchunk[idx >> CHUNK_BITS][idx & (CHUNK - 1)]);
    tbuf_u32(&r->done, (uint32_t)c->rc);
    tbuf_f64(&r->done, c->dur);
    tbuf_u32(&r->done, c->reslen);
    tbuf_put(&r->done, atomic_load(&c->flags) & F_RES_HEAP ? c->res.p : c->res.in, c->reslen);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    capi_free_payload(c);
}

static tsr_task_id_t remote_id(tsr_tasks_t *t, uint32_t idx)
{
    return (tsr_task_id_t)t->remote->ridchunk[idx >> CHUNK_BITS][idx & (CHUNK - 1)] + 1;
}

/* Ranks > 0: tasks from rank 0 become local tasks. */
static int take_tasks(tsr_tasks_t *t, cremote_t *r, int *exit)
{
    int n = 0, src, tag;
    while (msgq_recv(&r->mq, 0, &src, &tag)) {
        if (tag == TAG_CEXIT) {
            *exit = 1;
            continue;
        }
        tcur_t c;
        tcur_init(&c, r->mq.in.p, r->mq.in.len);
        while (c.ok && c.p < c.end) {
            uint32_t ridx = tcur_u32(&c), fn = tcur_u32(&c), attempt = tcur_u16(&c), len = tcur_u32(&c), idx;
            const void *arg = tcur_bytes(&c, len);
            ctask_t *task = c.ok && fn < (uint32_t)atomic_load(&t->nfns) ? capi_new(t, &idx) : NULL;
            if (!task)
                break; /* rank 0 sent garbage or memory ran out: its wait would hang; nothing better to do */
            uint32_t **slot = &r->ridchunk[idx >> CHUNK_BITS];
            if (!*slot && !(*slot = malloc(CHUNK * sizeof **slot)))
                break;
            (*slot)[idx & (CHUNK - 1)] = ridx;
            task->fn = fn;
            task->attempts = (uint16_t)(attempt ? attempt - 1 : 0); /* the run makes it rank 0's count */
            task->arglen = len;
            if (len > INLINE && (task->arg.p = malloc(len))) {
                memcpy(task->arg.p, arg, len);
                atomic_store(&task->flags, F_ARG_HEAP);
            } else if (len <= INLINE && len) {
                memcpy(task->arg.in, arg, len);
            }
            atomic_store(&task->state, TSR_TASK_READY);
            atomic_fetch_add(&t->submitted, 1);
            pool_push(t, idx);
            n++;
        }
    }
    return n;
}

int tsr_tasks_work(tsr_tasks_t *t)
{
    cremote_t *r = t->remote;
    if (!r || t->rank == 0)
        return tsr_error_set(TSR_EINVAL,
                             "tasks: tsr_tasks_work is for ranks other than 0 of a farm over several ranks");
    int exit = 0;
    double quantum = 5e-5;
    for (;;) {
        int n = take_tasks(t, r, &exit);
        pthread_mutex_lock(&r->mu);
        tbuf_t out = r->done;
        memset(&r->done, 0, sizeof r->done);
        pthread_mutex_unlock(&r->mu);
        if (out.len)
            msgq_send(&r->mq, 0, TAG_CDONE, &out);
        tbuf_free(&out);
        msgq_reap(&r->mq, 0);
        if (exit && atomic_load(&t->finished) == atomic_load(&t->submitted)) {
            pthread_mutex_lock(&r->mu);
            int empty = r->done.len == 0;
            pthread_mutex_unlock(&r->mu);
            if (empty)
                break;
            continue;
        }
        quantum = n || out.len ? 5e-5 : (quantum * 2 < 2e-3 ? quantum * 2 : 2e-3);
        pthread_mutex_lock(&r->mu);
        if (!r->done.len) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(quantum * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
        pthread_mutex_unlock(&r->mu);
    }
    msgq_reap(&r->mq, 1);
    return TSR_OK;
}

int remote_create(tsr_tasks_t *t)
{
    cremote_t *r = calloc(1, sizeof *r);
    if (!r)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
    t->remote = r;
    r->comm = MPI_COMM_NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->threads = calloc((size_t)t->size, sizeof *r->threads);
    r->out = calloc((size_t)t->size, sizeof *r->out);
    r->ridchunk = t->rank ? calloc(MAX_CHUNKS, sizeof *r->ridchunk) : NULL;
    int ok = r->threads && r->out && (t->rank == 0 || r->ridchunk), all = 0;
    if (MPI_Comm_dup(t->cfg.comm, &r->comm) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "tasks: MPI_Comm_dup failed");
    msgq_init(&r->mq, r->comm);
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, r->comm);
    if (!all)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory on some rank");
    MPI_Allgather(&t->nthreads, 1, MPI_INT, r->threads, 1, MPI_INT, r->comm);
    if (t->rank) {
        t->on_local_end = local_end;
        t->id_of = remote_id;
    }
    return TSR_OK;
}

void remote_destroy(tsr_tasks_t *t)
{
    cremote_t *r = t->remote;
    if (!r)
        return;
    if (t->rank == 0 && r->comm != MPI_COMM_NULL) {
        for (int k = 1; k < t->size; k++) {
            tbuf_t b = {0};
            tbuf_u8(&b, 0);
            msgq_send(&r->mq, k, TAG_CEXIT, &b);
        }
    }
    if (r->comm != MPI_COMM_NULL) {
        msgq_free(&r->mq);
        MPI_Comm_free(&r->comm);
    }
    for (int i = 0; r->ridchunk && i < MAX_CHUNKS; i++)
        free(r->ridchunk[i]);
    free(r->ridchunk);
    free(r->threads);
    free(r->out);
    tbuf_free(&r->done);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    t->remote = NULL;
}
