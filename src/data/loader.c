/* SPDX-License-Identifier: BSD-3-Clause */
/* The data loader: a deterministic global shuffle per epoch, each rank's
 * slice of every global batch, and (optionally) a prefetch thread that
 * fills the next batch while the caller uses this one.
 *
 * Buffers: with prefetch there are 2 to LOADER_SLOTS batch slots, as many
 * as LOADER_BUDGET bytes hold; the producer (the helper thread, or the
 * caller itself without prefetch) owns the permutation and the gather work
 * area. Everything is allocated in tsr_loader_create; tsr_loader_next
 * allocates nothing.
 *
 * Waking the helper is a system call that costs the step tens of
 * microseconds on a virtual machine (28 us of a 1 ms MLP step measured,
 * an inter-processor interrupt to its idle core). With more than three
 * slots, the caller wakes it once every nslots - 2 batches, and it
 * refills every free slot per wake. */
#include "tessera/data.h"

#include "tessera/error.h"
#include "tessera/rng.h"
#include "common/thread.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY, SLOT_INUSE };

/* Up to 8 slots in 32 MiB: an MLP's 128 x 784 floats take 8 (3.2 MB);
 * a batch of 32 MiB or more, whose step outlasts a wake by far, takes 2. */
enum { LOADER_SLOTS = 8 };
#define LOADER_BUDGET ((size_t)32 << 20)

typedef struct slot {
    float *x;
    int32_t *labels;
    float *targets;
    uint64_t epoch, step, seq;
    int state;
    int rc;
    char msg[1024];
} slot_t;

struct tsr_loader {
    tsr_dataset_t *ds;
    int rank, world;
    size_t batch, n, steps;
    uint64_t seed;
    int prefetch;

    /* Producer-owned. */
    uint32_t *perm;
    uint64_t perm_epoch;
    int perm_valid;
    void *work;

    slot_t slots[LOADER_SLOTS];
    int nslots;

    /* Guarded by mu (with prefetch). */
    uint64_t epoch, step; /* position of the next batch to produce */
    uint64_t prod_seq;    /* sequence number of the next batch to produce */
    uint64_t cons_seq;    /* sequence number the caller takes next */
    uint64_t gen;         /* bumped by seek: batches begun before it are dropped */
    int inuse;            /* slot the caller holds, or -1 */
    int stop;

    pthread_mutex_t mu;
    pthread_cond_t cv_prod, cv_cons;
    pthread_t thread;
    int thread_started;
    int sync_init;
};

static void make_perm(tsr_loader_t *ld, uint64_t epoch)
{
    if (ld->perm_valid && ld->perm_epoch == epoch)
        return;
    for (size_t i = 0; i < ld->n; i++)
        ld->perm[i] = (uint32_t)i;
    tsr_rng_t r;
    tsr_rng_seed(&r, ld->seed, epoch);
    tsr_rng_shuffle(&r, ld->perm, ld->n);
    ld->perm_epoch = epoch;
    ld->perm_valid = 1;
}

/* Fills slot s with this rank's part of (epoch, step). Producer only. */
static void fill(tsr_loader_t *ld, slot_t *s, uint64_t epoch, uint64_t step)
{
    make_perm(ld, epoch);
    size_t base = (size_t)step * ld->batch * (size_t)ld->world + (size_t)ld->rank * ld->batch;
    s->epoch = epoch;
    s->step = step;
    s->rc = tsr_dataset_gather(ld->ds, ld->perm + base, ld->batch, s->x, s->labels, s->targets, ld->work);
    if (s->rc)
        snprintf(s->msg, sizeof s->msg, "%s", tsr_last_error());
    else
        s->msg[0] = '\0';
}

/* Advances the production cursor by one step; mu held. */
static void advance(tsr_loader_t *ld)
{
    if (++ld->step >= ld->steps) {
        ld->step = 0;
        ld->epoch++;
    }
}

static void *producer(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-loader"); /* top -H, gdb and traces name it */
    tsr_loader_t *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        slot_t *s = NULL;
        while (!ld->stop) {
            for (int i = 0; i < ld->nslots && !s; i++)
                if (ld->slots[i].state == SLOT_EMPTY)
                    s = &ld->slots[i];
            if (s)
                break;
            pthread_cond_wait(&ld->cv_prod, &ld->mu);
        }
        if (ld->stop)
            break;
        uint64_t epoch = ld->epoch, step = ld->step, seq = ld->prod_seq++, gen = ld->gen;
        advance(ld);
        s->state = SLOT_FILLING;
        pthread_mutex_unlock(&ld->mu);

        fill(ld, s, epoch, step);

        pthread_mutex_lock(&ld->mu);
        if (gen != ld->gen) {
            s->state = SLOT_EMPTY; /* a seek came while filling: drop it */
        } else {
            s->seq = seq;
            s->state = SLOT_READY;
            pthread_cond_broadcast(&ld->cv_cons);
        }
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void free_slots(tsr_loader_t *ld)
{
    for (int i = 0; i < LOADER_SLOTS; i++) {
        free(ld->slots[i].x);
        free(ld->slots[i].labels);
        free(ld->slots[i].targets);
    }
}

void tsr_loader_destroy(tsr_loader_t *ld)
{
    if (!ld)
        return;
    if (ld->thread_started) {
        tsr_thread_stop(ld->thread, &ld->mu, &ld->cv_prod, &ld->stop);
    }
    if (ld->sync_init) {
        pthread_cond_destroy(&ld->cv_prod);
        pthread_cond_destroy(&ld->cv_cons);
        pthread_mutex_destroy(&ld->mu);
    }
    free_slots(ld);
    free(ld->perm);
    free(ld->work);
    free(ld);
}

int tsr_loader_create(tsr_dataset_t *ds, int rank, int world, size_t batch, uint64_t seed, int prefetch,
                      tsr_loader_t **out)
{
    if (!out)
        return tsr_error_set(TSR_EINVAL, "tsr_loader_create: out is NULL");
    *out = NULL;
    if (!ds)
        return tsr_error_set(TSR_EINVAL, "tsr_loader_create: dataset is NULL");
    const char *path = tsr_dataset_path(ds);
    size_t n = tsr_dataset_rows(ds);
    if (world < 1 || rank < 0 || rank >= world)
        return tsr_error_set(TSR_EINVAL, "data loader: rank %d is not in a world of %d ranks", rank, world);
    if (batch < 1)
        return tsr_error_set(TSR_EINVAL, "data loader: batch size must be at least 1");
    if (batch > SIZE_MAX / (size_t)world || batch * (size_t)world > n)
        return tsr_error_set(TSR_EINVAL,
                             "%s: batch size %zu x world size %d = %.0f rows per global batch exceeds "
                             "the %zu rows of the dataset; use a smaller batch or fewer ranks",
                             path, batch, world, (double)batch * world, n);

    tsr_loader_t *ld = calloc(1, sizeof *ld);
    if (!ld)
        return tsr_error_set(TSR_ENOMEM, "data loader: out of memory");
    ld->ds = ds;
    ld->rank = rank;
    ld->world = world;
    ld->batch = batch;
    ld->n = n;
    ld->steps = n / (batch * (size_t)world);
    ld->seed = seed;
    ld->prefetch = prefetch != 0;
    ld->inuse = -1;
    size_t d = tsr_dataset_dim(ds), k = tsr_dataset_target_dim(ds);
    int labels = tsr_dataset_is_labels(ds);
    size_t slot_bytes = batch * (d * sizeof(float) + (labels ? sizeof(int32_t) : k * sizeof(float)));
    size_t fit = slot_bytes ? LOADER_BUDGET / slot_bytes : LOADER_SLOTS;
    ld->nslots = !ld->prefetch ? 1 : fit < 2 ? 2 : fit > LOADER_SLOTS ? LOADER_SLOTS : (int)fit;
    int ok = (ld->perm = malloc(n * sizeof(uint32_t))) != NULL;
    size_t wsz = tsr_dataset_gather_work_size(ds, batch);
    if (ok && wsz > 0)
        ok = (ld->work = malloc(wsz)) != NULL;
    for (int i = 0; ok && i < ld->nslots; i++) {
        slot_t *s = &ld->slots[i];
        s->x = malloc(batch * d * sizeof(float));
        if (labels)
            s->labels = malloc(batch * sizeof(int32_t));
        else
            s->targets = malloc(batch * k * sizeof(float));
        ok = s->x && (s->labels || s->targets);
    }
    if (!ok) {
        tsr_loader_destroy(ld);
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory for the data loader's buffers", path);
    }

    if (ld->prefetch) {
        if (pthread_mutex_init(&ld->mu, NULL) != 0) {
            tsr_loader_destroy(ld);
            return tsr_error_set(TSR_ESYS, "data loader: cannot create its mutex");
        }
        if (pthread_cond_init(&ld->cv_prod, NULL) != 0) {
            pthread_mutex_destroy(&ld->mu);
            tsr_loader_destroy(ld);
            return tsr_error_set(TSR_ESYS, "data loader: cannot create its condition variables");
        }
        if (pthread_cond_init(&ld->cv_cons, NULL) != 0) {
            pthread_cond_destroy(&ld->cv_prod);
            pthread_mutex_destroy(&ld->mu);
            tsr_loader_destroy(ld);
            return tsr_error_set(TSR_ESYS, "data loader: cannot create its condition variables");
        }
        ld->sync_init = 1;
        /* The helper takes no signals: they go to the threads that expect them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int e = pthread_create(&ld->thread, NULL, producer, ld);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e != 0) {
            tsr_loader_destroy(ld);
            return tsr_error_set(TSR_ESYS, "data loader: cannot start the prefetch thread: %s", strerror(e));
        }
        ld->thread_started = 1;
    }
    *out = ld;
    return TSR_OK;
}

size_t tsr_loader_steps_per_epoch(const tsr_loader_t *ld) { return ld ? ld->steps : 0; }

int tsr_loader_seek(tsr_loader_t *ld, uint64_t epoch, uint64_t step)
{
    if (!ld)
        return tsr_error_set(TSR_EINVAL, "tsr_loader_seek: loader is NULL");
    if (step >= ld->steps)
        return tsr_error_set(TSR_EINVAL, "data loader: step %llu is out of range; an epoch has %zu steps",
                             (unsigned long long)step, ld->steps);
    if (!ld->prefetch) {
        ld->epoch = epoch;
        ld->step = step;
        return TSR_OK;
    }
    pthread_mutex_lock(&ld->mu);
    ld->gen++;
    for (int i = 0; i < ld->nslots; i++)
        if (ld->slots[i].state == SLOT_READY)
            ld->slots[i].state = SLOT_EMPTY;
    ld->epoch = epoch;
    ld->step = step;
    ld->prod_seq = ld->cons_seq;
    pthread_cond_broadcast(&ld->cv_prod);
    pthread_mutex_unlock(&ld->mu);
    return TSR_OK;
}

static int hand_out(const slot_t *s, tsr_batch_t *b, size_t rows)
{
    if (s->rc) {
        memset(b, 0, sizeof *b);
        return tsr_error_set(s->rc, "%s", s->msg);
    }
    b->x = s->x;
    b->labels = s->labels;
    b->targets = s->targets;
    b->rows = rows;
    b->epoch = s->epoch;
    b->step = s->step;
    return TSR_OK;
}

int tsr_loader_next(tsr_loader_t *ld, tsr_batch_t *batch)
{
    if (!ld || !batch)
        return tsr_error_set(TSR_EINVAL, "tsr_loader_next: loader or batch is NULL");
    if (!ld->prefetch) {
        slot_t *s = &ld->slots[0];
        fill(ld, s, ld->epoch, ld->step);
        advance(ld);
        return hand_out(s, batch, ld->batch);
    }
    pthread_mutex_lock(&ld->mu);
    if (ld->inuse >= 0) {
        ld->slots[ld->inuse].state = SLOT_EMPTY;
        ld->inuse = -1;
    }
    slot_t *s = NULL;
    for (;;) {
        for (int i = 0; i < ld->nslots; i++)
            if (ld->slots[i].state == SLOT_READY && ld->slots[i].seq == ld->cons_seq) {
                s = &ld->slots[i];
                ld->inuse = i;
            }
        if (s)
            break;
        pthread_cond_broadcast(&ld->cv_prod); /* it may sleep on slots freed without a wake */
        pthread_cond_wait(&ld->cv_cons, &ld->mu);
    }
    s->state = SLOT_INUSE;
    ld->cons_seq++;
    int queued = 0, empty = 0;
    for (int i = 0; i < ld->nslots; i++) {
        queued += ld->slots[i].state == SLOT_READY || ld->slots[i].state == SLOT_FILLING;
        empty += ld->slots[i].state == SLOT_EMPTY;
    }
    /* Every nslots - 2 batches, by count, so that every rank's helper
     * refills in the same step: ranks that share cores with their helpers
     * then lose that time together, not each in a step of its own that
     * the others wait for at the next sum. */
    int wake = empty && (queued == 0 || ld->nslots <= 3 || ld->cons_seq % (uint64_t)(ld->nslots - 2) == 0);
    pthread_mutex_unlock(&ld->mu);
    /* After the unlock: woken under it, the producer would find the lock
     * held and sleep again, and its second wake would cost the step too. */
    if (wake)
        pthread_cond_broadcast(&ld->cv_prod);
    return hand_out(s, batch, ld->batch);
}
