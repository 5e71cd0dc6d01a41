/* SPDX-License-Identifier: BSD-3-Clause */
/* The bucketed priority queue of prioq.h. */
#include "tasks/prioq.h"

#include <stdlib.h>
#include <string.h>

void prioq_init(prioq_t *q) { memset(q, 0, sizeof *q); }

void prioq_free(prioq_t *q)
{
    for (size_t i = 0; i < q->nb; i++)
        free(q->b[i].ring);
    free(q->b);
    free(q->heap);
    free(q->hash);
    memset(q, 0, sizeof *q);
}

static size_t hslot(int32_t prio, size_t cap) { return ((uint32_t)prio * 2654435761u) & (cap - 1); }

static int rehash(prioq_t *q, size_t cap)
{
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h)
        return -1;
    for (size_t i = 0; i < q->nb; i++) {
        size_t s = hslot(q->b[i].prio, cap);
        while (h[s])
            s = (s + 1) & (cap - 1);
        h[s] = (uint32_t)i + 1;
    }
    free(q->hash);
    q->hash = h;
    q->caph = cap;
    return 0;
}

/* The bucket of prio, made if needed; NULL when out of memory. */
static prioq_bucket_t *bucket(prioq_t *q, int32_t prio, uint32_t *num)
{
    if (q->caph) {
        for (size_t s = hslot(prio, q->caph); q->hash[s]; s = (s + 1) & (q->caph - 1))
            if (q->b[q->hash[s] - 1].prio == prio) {
                *num = q->hash[s] - 1;
                return &q->b[*num];
            }
    }
    if (q->nb == q->capb) {
        size_t cap = q->capb ? 2 * q->capb : 4;
        prioq_bucket_t *b = realloc(q->b, cap * sizeof *b);
        uint32_t *heap = realloc(q->heap, cap * sizeof *heap);
        if (b)
            q->b = b;
        if (heap)
            q->heap = heap;
        if (!b || !heap)
            return NULL;
        q->capb = cap;
    }
    memset(&q->b[q->nb], 0, sizeof q->b[q->nb]);
    q->b[q->nb].prio = prio;
    q->nb++;
    if (2 * q->nb > q->caph && rehash(q, q->caph ? 2 * q->caph : 16) != 0) {
        q->nb--;
        return NULL;
    }
    /* rehash covered the new bucket when it grew; otherwise insert it. */
    size_t s = hslot(prio, q->caph);
    while (q->hash[s] && q->hash[s] != q->nb)
        s = (s + 1) & (q->caph - 1);
    q->hash[s] = (uint32_t)q->nb;
    *num = (uint32_t)q->nb - 1;
    return &q->b[*num];
}

static int above(const prioq_t *q, uint32_t a, uint32_t b) { return q->b[a].prio > q->b[b].prio; }

static void heap_up(prioq_t *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!above(q, q->heap[i], q->heap[p]))
            break;
        uint32_t t = q->heap[i];
        q->heap[i] = q->heap[p];
        q->heap[p] = t;
        i = p;
    }
}

static void heap_down(prioq_t *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->nheap && above(q, q->heap[l], q->heap[m]))
            m = l;
        if (r < q->nheap && above(q, q->heap[r], q->heap[m]))
            m = r;
        if (m == i)
            return;
        uint32_t t = q->heap[i];
        q->heap[i] = q->heap[m];
        q->heap[m] = t;
        i = m;
    }
}

static int push(prioq_t *q, int32_t prio, uint32_t item, int front)
{
    uint32_t num;
    prioq_bucket_t *b = bucket(q, prio, &num);
    if (!b)
        return -1;
    if (b->count == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        uint32_t *r = malloc(cap * sizeof *r);
        if (!r)
            return -1;
        for (size_t i = 0; i < b->count; i++)
            r[i] = b->ring[(b->head + i) & (b->cap - 1)];
        free(b->ring);
        b->ring = r;
        b->head = 0;
        b->cap = cap;
    }
    if (front) {
        b->head = (b->head + b->cap - 1) & (b->cap - 1);
        b->ring[b->head] = item;
    } else {
        b->ring[(b->head + b->count) & (b->cap - 1)] = item;
    }
    b->count++;
    q->n++;
    if (!b->in_heap) {
        b->in_heap = 1;
        q->heap[q->nheap++] = num;
        heap_up(q, q->nheap - 1);
    }
    return 0;
}

int prioq_push(prioq_t *q, int32_t prio, uint32_t item) { return push(q, prio, item, 0); }
int prioq_push_front(prioq_t *q, int32_t prio, uint32_t item) { return push(q, prio, item, 1); }

int prioq_peek(const prioq_t *q, uint32_t *item, int32_t *prio)
{
    if (!q->nheap)
        return 0;
    const prioq_bucket_t *b = &q->b[q->heap[0]];
    *item = b->ring[b->head];
    if (prio)
        *prio = b->prio;
    return 1;
}

int prioq_pop(prioq_t *q, uint32_t *item)
{
    if (!q->nheap)
        return 0;
    prioq_bucket_t *b = &q->b[q->heap[0]];
    *item = b->ring[b->head];
    b->head = (b->head + 1) & (b->cap - 1);
    b->count--;
    q->n--;
    if (!b->count) {
        b->in_heap = 0;
        q->heap[0] = q->heap[--q->nheap];
        heap_down(q, 0);
    }
    return 1;
}
