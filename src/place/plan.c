/* SPDX-License-Identifier: BSD-3-Clause */
/* The binding plan: a node's cores split into contiguous, balanced runs,
 * one per local rank. Cores are taken in hwloc's depth-first order, so when
 * the count divides evenly each run is whole packages or NUMA domains. */
#include "tessera/place.h"
#include "tessera/error.h"

#include <stdlib.h>

struct tsr_place_plan {
    int nranks;
    hwloc_bitmap_t *cpuset; /* [nranks] */
    int *ncores;            /* [nranks] */
    int *numa;              /* [nranks], OS index or -1 */
};

/* The first NUMA node whose cpuset holds all of set (memory-only nodes have
 * empty cpusets and never match; where HBM and DDR share a cpuset the first,
 * usually DDR, wins). -1 if set spans several nodes. */
static int numa_of(hwloc_topology_t topo, hwloc_const_bitmap_t set)
{
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    for (int i = 0; i < n; i++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
        if (node && node->cpuset && !hwloc_bitmap_iszero(node->cpuset) && hwloc_bitmap_isincluded(set, node->cpuset))
            return (int)node->os_index;
    }
    return -1;
}

static int check_rank(const tsr_place_plan_t *plan, int local_rank)
{
    if (!plan)
        return tsr_error_set(TSR_EINVAL, "place: plan is NULL");
    if (local_rank < 0 || local_rank >= plan->nranks)
        return tsr_error_set(TSR_EINVAL, "place: local rank %d out of range [0, %d)", local_rank, plan->nranks);
    return TSR_OK;
}

int tsr_place_plan_create(hwloc_topology_t topo, int nlocal, tsr_place_plan_t **out)
{
    tsr_place_plan_t *plan = NULL;
    int rc = TSR_ENOMEM;
    if (!out)
        return tsr_error_set(TSR_EINVAL, "place: out is NULL");
    *out = NULL;
    if (!topo)
        return tsr_error_set(TSR_EINVAL, "place: topology is NULL");
    if (nlocal <= 0)
        return tsr_error_set(TSR_EINVAL, "place: number of local ranks must be positive, got %d", nlocal);

    /* Some VMs report PUs without cores; then each PU stands for a core. */
    hwloc_obj_type_t unit = HWLOC_OBJ_CORE;
    int nunits = hwloc_get_nbobjs_by_type(topo, unit);
    if (nunits <= 0) {
        unit = HWLOC_OBJ_PU;
        nunits = hwloc_get_nbobjs_by_type(topo, unit);
    }
    if (nunits <= 0)
        return tsr_error_set(TSR_EDATA, "place: topology has no cores or PUs");

    plan = calloc(1, sizeof *plan);
    if (!plan)
        goto nomem;
    plan->nranks = nlocal;
    plan->cpuset = calloc((size_t)nlocal, sizeof *plan->cpuset);
    plan->ncores = calloc((size_t)nlocal, sizeof *plan->ncores);
    plan->numa = calloc((size_t)nlocal, sizeof *plan->numa);
    if (!plan->cpuset || !plan->ncores || !plan->numa)
        goto nomem;

    for (int r = 0; r < nlocal; r++) {
        /* Rank r owns units [first, last): balanced to within one. With more
         * ranks than units, rank r shares unit r % nunits. */
        long first, last;
        if (nlocal <= nunits) {
            first = (long)r * nunits / nlocal;
            last = (long)(r + 1) * nunits / nlocal;
        } else {
            first = r % nunits;
            last = first + 1;
        }
        if (!(plan->cpuset[r] = hwloc_bitmap_alloc()))
            goto nomem;
        for (long u = first; u < last; u++) {
            hwloc_obj_t obj = hwloc_get_obj_by_type(topo, unit, (unsigned)u);
            if (!obj || !obj->cpuset) {
                rc =
                    tsr_error_set(TSR_EINTERNAL, "place: %s %ld missing from topology", hwloc_obj_type_string(unit), u);
                goto fail;
            }
            if (hwloc_bitmap_or(plan->cpuset[r], plan->cpuset[r], obj->cpuset) < 0)
                goto nomem;
        }
        plan->ncores[r] = (int)(last - first);
        plan->numa[r] = numa_of(topo, plan->cpuset[r]);
    }
    *out = plan;
    return TSR_OK;

nomem:
    rc = tsr_error_set(TSR_ENOMEM, "place: out of memory building a plan for %d ranks", nlocal);
fail:
    tsr_place_plan_destroy(plan);
    return rc;
}

void tsr_place_plan_destroy(tsr_place_plan_t *plan)
{
    if (!plan)
        return;
    if (plan->cpuset)
        for (int r = 0; r < plan->nranks; r++)
            hwloc_bitmap_free(plan->cpuset[r]);
    free(plan->cpuset);
    free(plan->ncores);
    free(plan->numa);
    free(plan);
}

int tsr_place_plan_nranks(const tsr_place_plan_t *plan) { return plan ? plan->nranks : 0; }

/* NULL for a bad rank. */
hwloc_const_bitmap_t tsr_place_plan_cpuset(const tsr_place_plan_t *plan, int local_rank)
{
    return check_rank(plan, local_rank) == TSR_OK ? plan->cpuset[local_rank] : NULL;
}

/* TSR_EINVAL for a bad rank. */
int tsr_place_plan_ncores(const tsr_place_plan_t *plan, int local_rank)
{
    int rc = check_rank(plan, local_rank);
    return rc == TSR_OK ? plan->ncores[local_rank] : rc;
}

/* -1 for a bad rank too (with the error message set). */
int tsr_place_plan_numa(const tsr_place_plan_t *plan, int local_rank)
{
    return check_rank(plan, local_rank) == TSR_OK ? plan->numa[local_rank] : -1;
}

/* TSR_EINVAL, and buf holds a truncated string, if len is too small. */
int tsr_place_plan_cpuset_string(const tsr_place_plan_t *plan, int local_rank, char *buf, size_t len)
{
    int rc = check_rank(plan, local_rank);
    if (rc != TSR_OK)
        return rc;
    if (!buf || len == 0)
        return tsr_error_set(TSR_EINVAL, "place: no buffer for the cpuset string");
    int need = hwloc_bitmap_list_snprintf(buf, len, plan->cpuset[local_rank]);
    if (need < 0)
        return tsr_error_set(TSR_EINTERNAL, "place: cannot format cpuset of local rank %d", local_rank);
    if ((size_t)need >= len)
        return tsr_error_set(TSR_EINVAL, "place: cpuset string of local rank %d needs %d bytes, buffer has %zu",
                             local_rank, need + 1, len);
    return TSR_OK;
}
