/* SPDX-License-Identifier: BSD-3-Clause */
/* An in-process farm's life: creation (threads, and the link to the other
 * ranks), destruction (every task waited for, then the threads stopped and
 * the other ranks released), statistics. */
#include "tasks/capi.h"
#include "tessera/error.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

void tsr_tasks_config_default(tsr_tasks_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->comm = MPI_COMM_NULL;
    cfg->run_on_root = 1;
}

static int cores(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

static void free_farm(tsr_tasks_t *t)
{
    uint64_t n = atomic_load(&t->next_id);
    for (uint64_t i = 0; i < n && i < (uint64_t)MAX_CHUNKS * CHUNK; i++)
        if (atomic_load(&t->chunk[i >> CHUNK_BITS]))
            capi_free_payload(capi_task(t, (uint32_t)i));
    for (int c = 0; c < MAX_CHUNKS; c++) {
        free(atomic_load(&t->chunk[c]));
        free(atomic_load(&t->echunk[c]));
        free(atomic_load(&t->cbchunk[c]));
    }
    prioq_free(&t->q);
    free(t->delayed);
    pthread_mutex_destroy(&t->grow_mu);
    pthread_mutex_destroy(&t->qmu);
    pthread_cond_destroy(&t->qcv);
    pthread_mutex_destroy(&t->done_mu);
    pthread_cond_destroy(&t->done_cv);
    free(t);
}

int tsr_tasks_create(const tsr_tasks_config_t *cfg, tsr_tasks_t **out)
{
    tsr_tasks_config_t def;
    if (!cfg) {
        tsr_tasks_config_default(&def);
        cfg = &def;
    }
    if (cfg->threads < 0 || cfg->threads > 4096)
        return tsr_error_set(TSR_EINVAL, "tasks: threads = %d: expected 0 (one per core) to 4096", cfg->threads);
    tsr_tasks_t *t = calloc(1, sizeof *t);
    if (!t)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
    t->cfg = *cfg;
    t->size = 1;
    t->creator = pthread_self();
    pthread_mutex_init(&t->grow_mu, NULL);
    pthread_mutex_init(&t->qmu, NULL);
    pthread_cond_init(&t->qcv, NULL);
    pthread_mutex_init(&t->done_mu, NULL);
    pthread_cond_init(&t->done_cv, NULL);
    prioq_init(&t->q);
    atomic_store(&t->wake_at, UINT64_MAX);
    if (cfg->comm != MPI_COMM_NULL) {
        MPI_Comm_rank(cfg->comm, &t->rank);
        MPI_Comm_size(cfg->comm, &t->size);
    }
    t->nthreads = cfg->threads ? cfg->threads : cores();
    if (t->size > 1 && t->rank == 0 && !cfg->run_on_root)
        t->nthreads = 0;
    int rc = TSR_OK;
    if (t->size > 1)
        rc = remote_create(t);
    if (rc == TSR_OK)
        rc = pool_start(t);
    if (rc) {
        remote_destroy(t);
        free_farm(t);
        return rc;
    }
    *out = t;
    return TSR_OK;
}

void tsr_tasks_destroy(tsr_tasks_t *t)
{
    if (!t)
        return;
    if (t->rank == 0 && (t->nthreads || t->remote))
        tsr_tasks_wait_all(t);
    remote_destroy(t);
    pool_stop(t);
    free_farm(t);
}

int tsr_tasks_poll(tsr_tasks_t *t)
{
    if (t->remote && t->rank == 0)
        remote_progress(t);
    return TSR_OK;
}

void tsr_tasks_stats(tsr_tasks_t *t, tsr_tasks_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->submitted = atomic_load(&t->submitted);
    st->finished = atomic_load(&t->finished);
    st->succeeded = atomic_load(&t->count[TSR_TASK_SUCCEEDED]);
    st->failed = atomic_load(&t->count[TSR_TASK_FAILED]);
    st->skipped = atomic_load(&t->count[TSR_TASK_SKIPPED]);
    st->cancelled = atomic_load(&t->count[TSR_TASK_CANCELLED]);
    st->steals = atomic_load(&t->steals);
    st->remote = atomic_load(&t->remote_done);
    st->bytes_per_task = sizeof(ctask_t) + sizeof(uint32_t); /* the record and its place in the queue */
}
