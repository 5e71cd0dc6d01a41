/* SPDX-License-Identifier: BSD-3-Clause */
/* The checkpoint engine: regions, snapshots, the writer thread. */
#include "ckpt/internal.h"
#include "common/fileutil.h"
#include "common/thread.h"
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REGIONS 256
#define MAX_FAILURES 8 /* the newest kept with their messages until handed out; all are counted */

typedef struct failure {
    long step;
    int code;
    char why[1024];
} failure_t;

struct tsr_ckpt {
    tsr_ckpt_config_t cfg;
    char dir[4096];
    tsr_ckpt_region_t *regions;
    int nregions;
    size_t bytes;
    long last_due_step;
    double last_due_time;
    /* writer thread */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, busy, stop;
    int committed; /* the write in flight has its result; retention may still run */
    int from_live; /* this write reads the regions themselves: the caller waits for it */
    tsr_ckpt_meta_t meta;
    char *config_copy, *model_copy;
    char path[4096], last_path[4096];
    long last_step;
    int result;
    char error[1024];
    double write_seconds;
    tsr_h5_image_t image; /* the writer's, reused by every write */
    /* Every write's result is collected: failures are counted, kept in a
     * ring until take_failure hands each out once (more than MAX_FAILURES
     * not taken are reported as a count), and the first steps noted for
     * the run's summary. */
    long written, nfailed; /* every write */
    long nring, taken;     /* failures the caller did not get back: ring entry i at i % MAX_FAILURES */
    failure_t failures[MAX_FAILURES];
    long first_steps[MAX_FAILURES];
    char last_why[1024];
    int returns_result; /* the write in flight is one the caller waits for (it gets the result) */
};

/* Under the lock (or on the only thread): records a failed write. */
static void note_failure(tsr_ckpt_t *c, long step, int code, const char *why)
{
    if (c->nfailed < MAX_FAILURES)
        c->first_steps[c->nfailed] = step;
    c->nfailed++;
    snprintf(c->last_why, sizeof c->last_why, "%s", why);
    if (c->returns_result)
        return;
    failure_t *f = &c->failures[c->nring % MAX_FAILURES];
    f->step = step;
    f->code = code;
    snprintf(f->why, sizeof f->why, "%s", why);
    c->nring++;
}

/* Runs one write: file, then retention. Called without the lock held. The
 * result is published (and a caller waiting for the commit woken) before
 * retention runs: removing an old file (tens of ms for a big one on ext4)
 * is no part of getting the new one on disk. */
static int do_write(tsr_ckpt_t *c)
{
    double t0 = tsr_time_now();
    tsr_trace_mark(TSR_TRACE_CKPT_WRITE, 'B', c->meta.step); /* trace: the write, on its thread's track */
    int rc = tsr_mkdir_p(c->dir);
    if (rc)
        tsr_error_prefix(rc, "checkpoint directory %s: ", c->dir);
    if (!rc)
        rc = tsr_ckpt_file_write(c->path, c->regions, c->nregions, c->from_live, &c->meta, &c->image);
    tsr_trace_mark(TSR_TRACE_CKPT_WRITE, 'E', 0);
    pthread_mutex_lock(&c->mu);
    c->write_seconds = tsr_time_now() - t0;
    c->result = rc;
    if (rc) {
        snprintf(c->error, sizeof c->error, "%s", tsr_last_error());
        note_failure(c, c->meta.step, rc, c->error);
    } else {
        snprintf(c->last_path, sizeof c->last_path, "%s", c->path);
        c->last_step = c->meta.step;
        c->written++;
    }
    c->committed = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!rc)
        tsr_ckpt_retain(c->dir, c->cfg.keep);
    return rc;
}

static void *writer(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-ckpt"); /* top -H, gdb and traces name it */
    tsr_ckpt_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->pending && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->pending && c->stop)
            break;
        c->pending = 0;
        pthread_mutex_unlock(&c->mu);
        do_write(c);
        pthread_mutex_lock(&c->mu);
        c->busy = 0;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int tsr_ckpt_create(const tsr_ckpt_config_t *cfg, tsr_ckpt_t **out)
{
    if (!cfg->dir || !cfg->dir[0])
        return tsr_error_set(TSR_EINVAL, "checkpoint: no directory given");
    if (cfg->keep < 1)
        return tsr_error_set(TSR_EINVAL, "checkpoint: keep = %d; expected at least 1", cfg->keep);
    tsr_ckpt_t *c = calloc(1, sizeof *c);
    if (!c)
        return tsr_error_set(TSR_ENOMEM, "checkpoint: out of memory");
    c->cfg = *cfg;
    snprintf(c->dir, sizeof c->dir, "%s", cfg->dir);
    c->cfg.dir = c->dir;
    c->regions = calloc(MAX_REGIONS, sizeof *c->regions);
    c->last_step = -1;
    c->last_due_step = 0;
    c->last_due_time = tsr_time_now();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (!c->regions) {
        tsr_ckpt_destroy(c);
        return tsr_error_set(TSR_ENOMEM, "checkpoint: out of memory");
    }
    if (cfg->async) {
        if (pthread_create(&c->thread, NULL, writer, c) != 0) {
            tsr_ckpt_destroy(c);
            return tsr_error_set(TSR_ESYS, "checkpoint: cannot start the writer thread");
        }
        c->thread_started = 1;
    }
    *out = c;
    return TSR_OK;
}

void tsr_ckpt_destroy(tsr_ckpt_t *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        tsr_thread_stop(c->thread, &c->mu, &c->cv, &c->stop);
    }
    for (int i = 0; c->regions && i < c->nregions; i++)
        free(c->regions[i].snap);
    free(c->regions);
    tsr_h5_image_free(&c->image);
    free(c->config_copy);
    free(c->model_copy);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

int tsr_ckpt_register(tsr_ckpt_t *c, const char *path, void *ptr, tsr_ckpt_type_t type, int ndims, const size_t *dims)
{
    if (c->nregions == MAX_REGIONS)
        return tsr_error_set(TSR_EINVAL, "checkpoint: more than %d regions", MAX_REGIONS);
    if (!path || path[0] != '/' || strlen(path) >= sizeof c->regions[0].path)
        return tsr_error_set(TSR_EINVAL, "checkpoint: region path '%s' must start with / and be under 256 bytes",
                             path ? path : "(null)");
    if (ndims < 1 || ndims > TSR_CKPT_MAX_DIMS || (unsigned)type > TSR_CKPT_UINT8)
        return tsr_error_set(TSR_EINVAL, "checkpoint: region %s: %d dimensions; expected 1 to %d", path, ndims,
                             TSR_CKPT_MAX_DIMS);
    for (int i = 0; i < c->nregions; i++)
        if (strcmp(c->regions[i].path, path) == 0)
            return tsr_error_set(TSR_EINVAL, "checkpoint: region %s registered twice", path);
    tsr_ckpt_region_t *r = &c->regions[c->nregions];
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->live = ptr;
    r->type = type;
    r->ndims = ndims;
    r->bytes = tsr_ckpt_type_size(type);
    for (int d = 0; d < ndims; d++) {
        r->dims[d] = dims[d];
        r->bytes *= dims[d];
    }
    if (r->bytes && !ptr)
        return tsr_error_set(TSR_EINVAL, "checkpoint: region %s has no memory", path);
    r->snap = malloc(r->bytes ? r->bytes : 1);
    if (!r->snap)
        return tsr_error_set(TSR_ENOMEM, "checkpoint: out of memory for the snapshot of %s (%zu bytes)", path,
                             r->bytes);
    c->nregions++;
    c->bytes += r->bytes;
    return TSR_OK;
}

int tsr_ckpt_due(const tsr_ckpt_t *c, long step)
{
    if (c->cfg.every_steps > 0 && step - c->last_due_step >= c->cfg.every_steps)
        return 1;
    if (c->cfg.every_seconds > 0 && tsr_time_now() - c->last_due_time >= c->cfg.every_seconds)
        return 1;
    return 0;
}

/* Waits until the write in flight has committed or failed (all_done: and
 * finished its retention too), and returns its result. */
static int wait_for(tsr_ckpt_t *c, int all_done)
{
    pthread_mutex_lock(&c->mu);
    while (c->busy && (all_done || !c->committed))
        pthread_cond_wait(&c->cv, &c->mu);
    int rc = c->result;
    if (rc)
        tsr_error_set(rc, "%s", c->error);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int tsr_ckpt_wait(tsr_ckpt_t *c) { return wait_for(c, 1); }

int tsr_ckpt_busy(tsr_ckpt_t *c)
{
    pthread_mutex_lock(&c->mu);
    int b = c->busy;
    pthread_mutex_unlock(&c->mu);
    return b;
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

int tsr_ckpt_write(tsr_ckpt_t *c, const tsr_ckpt_meta_t *meta, int sync)
{
    /* One write in flight at most: the previous one's result is reported
     * by tsr_ckpt_wait, so a failure is not lost. */
    int prev = tsr_ckpt_wait(c);
    (void)prev;
    int rc = tsr_ckpt_file_name(c->dir, meta->step, c->path, sizeof c->path);
    if (rc)
        return rc;
    /* A write the caller waits for reads the regions directly; only one
     * that runs on while the caller goes on needs the snapshot. */
    c->from_live = sync || !c->thread_started;
    for (int i = 0; i < c->nregions && !c->from_live; i++)
        if (c->regions[i].bytes) /* an empty region may have no memory */
            memcpy(c->regions[i].snap, c->regions[i].live, c->regions[i].bytes);
    free(c->config_copy);
    free(c->model_copy);
    c->config_copy = dup_or_empty(meta->config);
    c->model_copy = dup_or_empty(meta->model);
    if (!c->config_copy || !c->model_copy)
        return tsr_error_set(TSR_ENOMEM, "checkpoint: out of memory");
    c->meta = *meta;
    c->meta.config = c->config_copy;
    c->meta.model = c->model_copy;
    c->last_due_step = meta->step;
    c->last_due_time = tsr_time_now();
    c->returns_result = sync || !c->thread_started;
    if (!c->thread_started)
        return do_write(c);
    pthread_mutex_lock(&c->mu);
    c->busy = 1;
    c->pending = 1;
    c->committed = 0;
    c->result = TSR_OK;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    /* A synchronous write returns once its file is committed; the writer
     * then removes what retention says, and the next write (or wait, or
     * destroy) waits for that. Its result goes to the caller, so it counts
     * as taken. */
    if (!sync)
        return TSR_OK;
    return wait_for(c, 0);
}

int tsr_ckpt_take_failure(tsr_ckpt_t *c, long *step)
{
    int rc = TSR_OK;
    pthread_mutex_lock(&c->mu);
    if (c->nring - c->taken > MAX_FAILURES) {
        /* Overwritten before anyone asked: counted only. */
        long lost = c->nring - c->taken - MAX_FAILURES;
        rc = tsr_error_set(TSR_EIO, "checkpoint: %ld earlier writes failed (%ld in all)", lost, c->nfailed);
        c->taken += lost;
        if (step)
            *step = -1;
    } else if (c->taken < c->nring) {
        const failure_t *f = &c->failures[c->taken % MAX_FAILURES];
        rc = tsr_error_set(f->code, "%s", f->why);
        if (step)
            *step = f->step;
        c->taken++;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

long tsr_ckpt_written(const tsr_ckpt_t *c)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    long n = c->written;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return n;
}

long tsr_ckpt_failed(const tsr_ckpt_t *c)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    long n = c->nfailed;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return n;
}

long tsr_ckpt_failure(const tsr_ckpt_t *c, int i, const char **why)
{
    if (i < 0 || i >= MAX_FAILURES || i >= c->nfailed)
        return -1;
    if (why) /* the newest failure's message */
        *why = c->last_why;
    return c->first_steps[i];
}

/* The writer thread updates these, hence the lock. */
const char *tsr_ckpt_last_path(const tsr_ckpt_t *c)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    const char *p = c->last_path;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return p;
}

long tsr_ckpt_last_step(const tsr_ckpt_t *c)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    long s = c->last_step;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return s;
}
double tsr_ckpt_last_write_seconds(const tsr_ckpt_t *c) { return c->write_seconds; }
size_t tsr_ckpt_bytes(const tsr_ckpt_t *c) { return c->bytes; }

int tsr_ckpt_restore(tsr_ckpt_t *c, const char *path, tsr_ckpt_info_t *info)
{
    /* Snapshots double as the read buffers, so a failure leaves the live
     * regions untouched. */
    int rc = tsr_ckpt_wait(c);
    (void)rc;
    tsr_ckpt_info_t own;
    if (!info)
        info = &own;
    rc = tsr_ckpt_file_read(path, info, c->regions, c->nregions);
    if (rc)
        return rc;
    for (int i = 0; i < c->nregions; i++)
        if (c->regions[i].bytes)
            memcpy(c->regions[i].live, c->regions[i].snap, c->regions[i].bytes);
    /* The cadence continues from the restored step, not from now. */
    c->last_due_step = info->step;
    c->last_due_time = tsr_time_now();
    if (info == &own)
        tsr_ckpt_info_free(&own);
    return TSR_OK;
}

int tsr_ckpt_verify(const char *path, tsr_ckpt_info_t *info) { return tsr_ckpt_file_read(path, info, NULL, 0); }
