/* SPDX-License-Identifier: BSD-3-Clause */
/* The dynamic batcher: one thread owns the serving model and runs it on
 * batches gathered from the queue, as Triton's dynamic batcher does — a
 * batch starts once max_batch rows wait or the oldest request has waited
 * max_delay_us. Published weights are staged under a mutex and copied into
 * the working model between batches, so a publish never waits on a batch. */
#include "serve/internal.h"
#include "tessera/error.h"
#include "tessera/trace.h"
#include "common/thread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct serve_batcher {
    tsr_serve_t *s;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    serve_job_t *head, *tail;
    size_t queued_rows, max_queue_rows;
    int stop;
    int clear_cache; /* set by publish: the batcher thread frees the old answers */
    /* Weights: staged by publish, copied into work by the thread. */
    pthread_mutex_t model_mu;
    tsr_model_t *staged, *work;
    uint64_t staged_version, work_version;
    size_t max_batch;
    double max_delay;
    float *bx, *by;
    size_t bx_cap, by_cap;
    /* Statistics. */
    _Atomic uint64_t batches, rows, bucket[SERVE_BATCH_BUCKETS + 1];
};

static int same_spec(const tsr_model_spec_t *a, const tsr_model_spec_t *b)
{
    char why[256];
    return !tsr_model_spec_diff(a, b, why, sizeof why);
}

/* A copy of m's spec and weights into *slot (reused when the spec matches). */
static int copy_model(tsr_model_t **slot, const tsr_model_t *m, size_t max_batch)
{
    tsr_model_t *src = (tsr_model_t *)m; /* read only */
    if (*slot && !same_spec(tsr_model_spec(*slot), tsr_model_spec(src))) {
        tsr_model_destroy(*slot);
        *slot = NULL;
    }
    if (!*slot) {
        int rc = tsr_model_create(tsr_model_spec(src), max_batch, slot);
        if (rc)
            return rc;
    }
    size_t nb;
    float *b = tsr_model_buffers(src, &nb);
    memcpy(tsr_model_params(*slot), tsr_model_params(src), tsr_model_nparams(src) * sizeof(float));
    memcpy(tsr_model_buffers(*slot, NULL), b, nb * sizeof(float));
    return TSR_OK;
}

int serve_batcher_publish(serve_batcher_t *b, const tsr_model_t *m, uint64_t version)
{
    pthread_mutex_lock(&b->model_mu);
    int rc = copy_model(&b->staged, m, 1);
    if (rc == TSR_OK)
        b->staged_version = version;
    pthread_mutex_unlock(&b->model_mu);
    if (rc == TSR_OK && b->s->cache) {
        /* Old answers are already unreachable (keys carry the version);
         * freeing a full cache takes milliseconds, which the training
         * thread should not spend, so the batcher does it. */
        pthread_mutex_lock(&b->mu);
        b->clear_cache = 1;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
    return rc;
}

static void finish(serve_job_t *j, int status, const char *error)
{
    j->status = status;
    j->error = error;
    j->done(j);
}

static int grow(float **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    float *q = realloc(*p, n * sizeof *q);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Runs the model on a list of jobs and completes each one. */
static void run_batch(serve_batcher_t *b, serve_job_t *list)
{
    pthread_mutex_lock(&b->model_mu);
    int rc = TSR_OK;
    if (b->staged && b->work_version != b->staged_version) {
        rc = copy_model(&b->work, b->staged, b->max_batch);
        b->work_version = rc ? 0 : b->staged_version;
    }
    pthread_mutex_unlock(&b->model_mu);
    size_t in_w = b->work ? tsr_model_input_size(b->work) : 0, out_w = b->work ? tsr_model_output_size(b->work) : 0;
    int sp = b->work != NULL;
    size_t rows = 0, n = 0;
    serve_job_t *j, *next;
    for (j = list; j; j = j->next)
        if (sp && j->width == in_w && j->outputs == out_w) {
            rows += j->rows;
            n++;
        }
    tsr_trace_mark(TSR_TRACE_HTTP_BATCH, 'B', (int64_t)rows); /* trace: the batch, on the timeline */
    if (n == 1) {                                             /* one request: straight from its input to its output */
        for (j = list; j; j = j->next)
            if (sp && j->width == in_w && j->outputs == out_w)
                rc = tsr_model_predict(b->work, j->x, j->rows, j->y);
    } else if (n > 1) {
        size_t w = in_w, k = out_w, off = 0;
        if (grow(&b->bx, &b->bx_cap, rows * w) || grow(&b->by, &b->by_cap, rows * k)) {
            rc = TSR_ENOMEM;
        } else {
            for (j = list; j; j = j->next)
                if (j->width == w && j->outputs == k) {
                    memcpy(b->bx + off * w, j->x, j->rows * w * sizeof(float));
                    off += j->rows;
                }
            rc = tsr_model_predict(b->work, b->bx, rows, b->by);
            off = 0;
            for (j = list; rc == TSR_OK && j; j = j->next)
                if (j->width == w && j->outputs == k) {
                    memcpy(j->y, b->by + off * k, j->rows * k * sizeof(float));
                    off += j->rows;
                }
        }
    }
    tsr_trace_mark(TSR_TRACE_HTTP_BATCH, 'E', 0);
    if (rows) {
        int bk = 0;
        while (bk < SERVE_BATCH_BUCKETS && (double)rows > serve_batch_bounds[bk])
            bk++;
        atomic_fetch_add_explicit(&b->bucket[bk], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->rows, rows, memory_order_relaxed);
    }
    for (j = list; j; j = next) {
        next = j->next; /* done() may free j */
        j->version = b->work_version;
        if (!sp || j->width != in_w || j->outputs != out_w)
            finish(j, 409, "the model changed shape while this request waited; retry");
        else if (rc)
            finish(j, 500, "the model failed on this batch");
        else
            finish(j, 0, NULL);
    }
}

static void deadline_ts(double t, struct timespec *ts)
{
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *loop(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-batcher"); /* top -H, gdb and traces name it */
    serve_batcher_t *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stop && !b->clear_cache)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        if (b->clear_cache) {
            b->clear_cache = 0;
            pthread_mutex_unlock(&b->mu);
            tsr_cache_clear(b->s->cache);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        double deadline = b->head->t_queued + b->max_delay;
        while (!b->stop && b->queued_rows < b->max_batch && tsr_time_now() < deadline) {
            struct timespec ts;
            deadline_ts(deadline, &ts);
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        }
        if (b->stop)
            break;
        /* Take whole requests up to max_batch rows (always at least one). */
        serve_job_t *list = b->head, *last = b->head;
        size_t rows = last->rows;
        while (last->next && rows + last->next->rows <= b->max_batch) {
            last = last->next;
            rows += last->rows;
        }
        b->head = last->next;
        if (!b->head)
            b->tail = NULL;
        last->next = NULL;
        b->queued_rows -= rows;
        pthread_mutex_unlock(&b->mu);
        run_batch(b, list);
        pthread_mutex_lock(&b->mu);
    }
    /* Stopping: nothing will run these any more. */
    serve_job_t *j = b->head;
    b->head = b->tail = NULL;
    b->queued_rows = 0;
    pthread_mutex_unlock(&b->mu);
    while (j) {
        serve_job_t *next = j->next;
        finish(j, 503, "the coordinator is shutting down");
        j = next;
    }
    return NULL;
}

int serve_batcher_create(tsr_serve_t *s, serve_batcher_t **out)
{
    serve_batcher_t *b = calloc(1, sizeof *b);
    if (!b)
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory");
    b->s = s;
    b->max_batch = (size_t)s->cfg.max_batch;
    b->max_delay = s->cfg.max_delay_us * 1e-6;
    /* Bounded memory under overload: past this many waiting rows, 503. */
    b->max_queue_rows = b->max_batch * 256 > 65536 ? b->max_batch * 256 : 65536;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->model_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* tsr_time_now() is monotonic */
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&b->thread, NULL, loop, b) != 0) {
        serve_batcher_destroy(b);
        return tsr_error_set(TSR_ESYS, "serve: cannot start the batcher thread");
    }
    b->started = 1;
    *out = b;
    return TSR_OK;
}

int serve_batcher_submit(serve_batcher_t *b, serve_job_t *j)
{
    pthread_mutex_lock(&b->mu);
    if (b->stop || b->queued_rows + j->rows > b->max_queue_rows) {
        pthread_mutex_unlock(&b->mu);
        return 503;
    }
    /* Suspending here, under the lock, means the batcher cannot complete
     * (and resume) the request before it is suspended. */
    if (j->on_queue)
        j->on_queue(j);
    j->next = NULL;
    j->status = 0;
    int was_empty = !b->head;
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    b->queued_rows += j->rows;
    if (was_empty || b->queued_rows >= b->max_batch)
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void serve_batcher_stop(serve_batcher_t *b)
{
    if (!b || !b->started)
        return;
    tsr_thread_stop(b->thread, &b->mu, &b->cv, &b->stop);
    b->started = 0;
}

void serve_batcher_destroy(serve_batcher_t *b)
{
    if (!b)
        return;
    serve_batcher_stop(b);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->model_mu);
    tsr_model_destroy(b->staged);
    tsr_model_destroy(b->work);
    free(b->bx);
    free(b->by);
    free(b);
}

void serve_batcher_stats(serve_batcher_t *b, uint64_t *batches, uint64_t *rows, size_t *queued,
                         uint64_t bucket[SERVE_BATCH_BUCKETS + 1])
{
    *batches = atomic_load(&b->batches);
    *rows = atomic_load(&b->rows);
    pthread_mutex_lock(&b->mu);
    *queued = b->queued_rows;
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i <= SERVE_BATCH_BUCKETS; i++)
        bucket[i] = atomic_load(&b->bucket[i]);
}
