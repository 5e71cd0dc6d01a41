/* SPDX-License-Identifier: BSD-3-Clause */
/* A rank's side of the shell farm: the tasks the dispatcher gave it, its
 * cores and GPUs, starting tasks as resources free up, timeouts, kills,
 * and the events it reports (internal). */
#ifndef TSR_TASKS_WORKER_H
#define TSR_TASKS_WORKER_H
#include "tasks/buf.h"

#include <hwloc.h>
#include <poll.h>

typedef struct worker worker_t;

typedef struct worker_res {
    hwloc_topology_t topo;       /* owned by the caller; outlives the worker */
    hwloc_const_bitmap_t cpuset; /* the rank's cores */
    int reserve_core;            /* keep one core for the dispatcher */
    char **gpus;                 /* CUDA_VISIBLE_DEVICES names of this rank's GPUs */
    int ngpus;
    int hide_gpus; /* tasks without GPUs get CUDA_VISIBLE_DEVICES="" */
    double kill_grace_s;
    int rank;
} worker_res_t;

int worker_create(const worker_res_t *res, worker_t **out);
void worker_destroy(worker_t *w);
int worker_ncores(const worker_t *w);
int worker_ngpus(const worker_t *w);
/* "cpus 0-3" of the rank's cores, for the rank table. */
const char *worker_place(const worker_t *w);

/* Messages from the dispatcher (proto.h). */
void worker_run(worker_t *w, const void *p, size_t n);
void worker_ctl(worker_t *w, const void *p, size_t n);
/* Reaps, enforces timeouts and kills, starts what fits. Returns the
 * monotonic time by which it wants to be called again (0: no timer). */
double worker_step(worker_t *w, double now);
/* The pidfds of running tasks; returns how many (at most max). A task
 * without a pidfd makes *poll_fast 1 (reap by polling). */
int worker_pollfds(worker_t *w, struct pollfd *fds, int max, int *poll_fast);
/* Events waiting to go to the dispatcher; the caller empties it. */
tbuf_t *worker_events(worker_t *w);
/* Tasks assigned and not yet reported done. */
int worker_busy(const worker_t *w);
/* CTL_EXIT received: the code every rank returns; else 1 (not yet). */
int worker_exited(const worker_t *w, int *code);
/* A stop signal reached this rank: say so once. */
void worker_stop_request(worker_t *w, int sig);

#endif
