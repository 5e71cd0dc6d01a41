/* SPDX-License-Identifier: BSD-3-Clause */
/* The shell farm's scheduler (rank 0, one thread): ready queues by
 * resource shape (cores, gpus), each ordered by priority then submission;
 * dependencies released or skipped as tasks end; retries with backoff;
 * cancel (internal). */
#ifndef TSR_TASKS_SCHED_H
#define TSR_TASKS_SCHED_H
#include "tasks/prioq.h"
#include "tasks/table.h"

typedef struct sched_shape {
    uint16_t cores, gpus;
    prioq_t q;
} sched_shape_t;

typedef struct sched {
    ttable_t *tt;
    sched_shape_t *shape;
    int nshape, capshape;
    uint32_t *delayed; /* min-heap on not_before */
    size_t ndelayed, capdelayed;
    uint64_t count[TSR_TASK_NSTATES];
    int oom;
} sched_t;

void sched_init(sched_t *s, ttable_t *tt);
void sched_free(sched_t *s);
/* Takes tasks from index from on (new, or replayed from the journal):
 * counts them, skips those whose dependencies failed, queues the ready. */
void sched_settle(sched_t *s, uint32_t from);
/* Moves a task to a state, keeping the counts. */
void sched_set(sched_t *s, uint32_t i, int state);
/* Delayed tasks whose backoff is over become ready; returns the monotonic
 * time of the next one, or 0. */
double sched_tick(sched_t *s, double now);
/* The best ready task of shape k (priority, then age), or TASK_NONE. */
uint32_t sched_head(sched_t *s, int k);
void sched_take(sched_t *s, int k); /* removes the head of shape k */
/* A task handed back unstarted: ready again, first of its priority. */
void sched_requeue(sched_t *s, uint32_t i);
/* An attempt ended. Returns the task's new state: SUCCEEDED, FAILED (final),
 * DELAYED or READY (another attempt), PENDING never. */
int sched_finish(sched_t *s, uint32_t i, int how, int code);
/* Cancels a task not running; dependents are skipped. */
void sched_cancel(sched_t *s, uint32_t i);
/* Final tasks, and all tasks. */
uint64_t sched_final(const sched_t *s);
static inline uint64_t sched_total(const sched_t *s) { return s->tt->n; }
/* Ready and delayed tasks. */
uint64_t sched_waiting(const sched_t *s);

#endif
