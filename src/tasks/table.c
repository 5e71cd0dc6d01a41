/* SPDX-License-Identifier: BSD-3-Clause */
/* The task table of table.h. */
#include "tasks/table.h"
#include "common/grow.h"

#include <stdlib.h>
#include <string.h>

const char *task_how_name(int how)
{
    static const char *const names[] = {"",      "exited",    "signaled",    "timeout",
                                        "spawn", "cancelled", "interrupted", "lost"};
    return how >= 0 && how <= HOW_LOST ? names[how] : "?";
}

static const char *key(void *ctx, uint32_t idx) { return ((ttable_t *)ctx)->t[idx].id; }

void ttable_init(ttable_t *tt)
{
    memset(tt, 0, sizeof *tt);
    idmap_init(&tt->ids, key, tt);
}

static void free_task(task_t *t)
{
    free(t->where);
    free(t->tail);
    if (t->ext) {
        free(t->ext->env);
        free(t->ext->tags);
        free(t->ext);
    }
}

void ttable_free(ttable_t *tt)
{
    for (uint32_t i = 0; i < tt->n; i++)
        free_task(&tt->t[i]);
    free(tt->t);
    free(tt->deps);
    free(tt->edges);
    tarena_free(&tt->arena);
    idmap_free(&tt->ids);
    memset(tt, 0, sizeof *tt);
}

int ttable_reserve(ttable_t *tt, size_t n)
{
    if (tt->n + n > (1u << 30))
        return -1;
    if (tt->n + n > tt->cap) {
        task_t *t = tbig_alloc((tt->n + n) * sizeof *t); /* ttable_add clears each */
        if (!t)
            return -1;
        if (tt->n)
            memcpy(t, tt->t, tt->n * sizeof *t);
        free(tt->t);
        tt->t = t;
        tt->cap = (uint32_t)(tt->n + n);
    }
    return idmap_reserve(&tt->ids, tt->n + n);
}

task_t *ttable_add(ttable_t *tt, uint32_t *idx)
{
    if (tt->n == tt->cap) {
        if (tt->cap >= (1u << 30))
            return NULL;
        uint32_t cap = tt->cap ? 2 * tt->cap : 1024;
        task_t *t = realloc(tt->t, (size_t)cap * sizeof *t);
        if (!t)
            return NULL;
        tt->t = t;
        tt->cap = cap;
    }
    task_t *t = &tt->t[tt->n];
    memset(t, 0, sizeof *t);
    t->cores = 1;
    t->backoff_factor = 2;
    t->out_head = TASK_NONE;
    t->cause = TASK_NONE;
    t->rank = -1;
    t->dep_off = (uint32_t)tt->ndeps;
    *idx = tt->n++;
    return t;
}

void ttable_truncate(ttable_t *tt, uint32_t n)
{
    if (n >= tt->n)
        return;
    /* Drop the edges the removed tasks added to older tasks' lists: they
     * were pushed last, so they sit at the heads. */
    for (uint32_t i = tt->n; i-- > n;) {
        task_t *t = &tt->t[i];
        for (uint32_t k = t->ndeps; k-- > 0;) {
            task_t *d = &tt->t[tt->deps[t->dep_off + k]];
            if (d->out_head != TASK_NONE && tt->edges[d->out_head].to == i)
                d->out_head = tt->edges[d->out_head].next;
        }
        free_task(t);
    }
    for (uint32_t i = n; i < tt->n; i++)
        if (tt->t[i].ndeps && tt->t[i].dep_off < tt->ndeps)
            tt->ndeps = tt->t[i].dep_off;
    while (tt->nedges && tt->edges[tt->nedges - 1].to >= n)
        tt->nedges--;
    /* The map: rebuild from what is left (rare: a refused submission). */
    idmap_free(&tt->ids);
    idmap_init(&tt->ids, key, tt);
    tt->n = n;
    for (uint32_t i = 0; i < n; i++)
        idmap_add(&tt->ids, i, NULL);
}

uint32_t ttable_find(const ttable_t *tt, const char *id) { return idmap_find(&tt->ids, id, strlen(id)); }

int ttable_add_dep(ttable_t *tt, uint32_t task, uint32_t dep)
{
    uint32_t *d = tsr_grow(tt->deps, &tt->capdeps, tt->ndeps + 1, sizeof *d, 1024);
    if (!d)
        return -1;
    tt->deps = d;
    task_edge_t *e = tsr_grow(tt->edges, &tt->capedges, tt->nedges + 1, sizeof *e, 1024);
    if (!e)
        return -1;
    tt->edges = e;
    /* A task's dependencies are added one after another: its slice starts at the first. */
    if (tt->t[task].ndeps == 0)
        tt->t[task].dep_off = (uint32_t)tt->ndeps;
    tt->deps[tt->ndeps++] = dep;
    tt->t[task].ndeps++;
    tt->edges[tt->nedges] = (task_edge_t){task, tt->t[dep].out_head};
    tt->t[dep].out_head = (uint32_t)tt->nedges++;
    return 0;
}
