/* SPDX-License-Identifier: BSD-3-Clause */
/* A priority queue of task indices: one FIFO per priority value and a
 * binary heap of the priorities that have tasks queued, so pushing and
 * popping cost O(1) while few priorities are in use (the common case) and
 * O(log P) over P distinct priorities. Equal priorities run in the order
 * they were queued (internal; not thread-safe). */
#ifndef TSR_TASKS_PRIOQ_H
#define TSR_TASKS_PRIOQ_H
#include <stddef.h>
#include <stdint.h>

typedef struct prioq_bucket {
    int32_t prio;
    uint32_t *ring;
    size_t head, count, cap;
    int in_heap;
} prioq_bucket_t;

typedef struct prioq {
    prioq_bucket_t *b;
    size_t nb, capb;
    uint32_t *heap; /* bucket numbers, highest priority on top */
    size_t nheap;
    uint32_t *hash; /* priority -> bucket + 1, open addressing */
    size_t caph;
    size_t n; /* items queued */
} prioq_t;

void prioq_init(prioq_t *q);
void prioq_free(prioq_t *q);
/* Returns 0, or -1 when out of memory. */
int prioq_push(prioq_t *q, int32_t prio, uint32_t item);
/* Pushes to the front of its priority's FIFO (a task handed back). */
int prioq_push_front(prioq_t *q, int32_t prio, uint32_t item);
/* Highest priority, oldest first; returns 0 when empty. */
int prioq_peek(const prioq_t *q, uint32_t *item, int32_t *prio);
int prioq_pop(prioq_t *q, uint32_t *item);
static inline size_t prioq_size(const prioq_t *q) { return q->n; }

#endif
