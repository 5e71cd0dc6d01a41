/* SPDX-License-Identifier: BSD-3-Clause */
/* The phase deadline: see deadline.h. arm/disarm are two atomic stores, so
 * the per-step use around the gradient wait costs nothing measurable; the
 * thread looks every quarter of the limit (at most once a second). */
#include "runtime/deadline.h"
#include "tessera/error.h"
#include "tessera/runtime.h"
#include "common/thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct tsr_deadline {
    double limit;
    int rank;
    _Atomic(const char *) phase; /* NULL: disarmed */
    _Atomic double since;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
};

static void *watch(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-watchdog"); /* top -H, gdb and traces name it */
    tsr_deadline_t *d = arg;
    double step = d->limit / 4 < 1 ? d->limit / 4 : 1;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + step;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        int w = pthread_cond_timedwait(&d->cond, &d->lock, &ts);
        if (d->stop || (w && w != ETIMEDOUT))
            continue;
        const char *phase = atomic_load(&d->phase);
        double waited = tsr_time_now() - atomic_load(&d->since);
        if (phase && waited > d->limit) {
            /* A blocking collective that hangs holds every rank: rank 0 says
             * so, the others give its line a moment to be the only one. */
            if (d->rank != 0) {
                pthread_mutex_unlock(&d->lock);
                sleep(2);
                pthread_mutex_lock(&d->lock);
            }
            tsr_log(TSR_LOG_ERROR,
                    "rank %d: %s has not finished after %.0f s (runtime.watchdog_seconds = %g): "
                    "a rank may have hung or failed, or MPI or NCCL cannot reach a peer; ending the job with exit "
                    "code 76",
                    d->rank, phase, tsr_time_now() - atomic_load(&d->since), d->limit);
            _exit(76);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int tsr_deadline_create(double limit, int rank, tsr_deadline_t **out)
{
    *out = NULL;
    if (limit <= 0)
        return TSR_OK;
    tsr_deadline_t *d = calloc(1, sizeof *d);
    if (!d)
        return tsr_error_set(TSR_ENOMEM, "rank %d: out of memory for the set-up deadline", rank);
    d->limit = limit;
    d->rank = rank;
    atomic_init(&d->phase, NULL);
    atomic_init(&d->since, 0.0);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    /* The thread takes no signals: SIGUSR1/SIGTERM (the walltime and stop
     * requests) go to the threads that expect them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&d->thread, NULL, watch, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return tsr_error_set(TSR_ESYS, "rank %d: cannot start the set-up deadline thread (error %d)", rank, e);
    }
    *out = d;
    return TSR_OK;
}

void tsr_deadline_arm(tsr_deadline_t *d, const char *phase)
{
    if (!d)
        return;
    atomic_store(&d->since, tsr_time_now());
    atomic_store(&d->phase, phase);
}

void tsr_deadline_disarm(tsr_deadline_t *d)
{
    if (d)
        atomic_store(&d->phase, NULL);
}

void tsr_deadline_destroy(tsr_deadline_t *d)
{
    if (!d)
        return;
    tsr_thread_stop(d->thread, &d->lock, &d->cond, &d->stop);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
