/* SPDX-License-Identifier: BSD-3-Clause */
/* What each rank runs shell tasks on: its cores by the placement plan
 * (the node's cores split among its ranks, as training binds them) and its
 * GPUs: --gpus-per-rank, else CUDA_VISIBLE_DEVICES (split among the node's
 * ranks when they all see the same list, as under mpirun; kept whole when
 * each rank has its own, as under srun --gpus-per-task), else the node's
 * NVIDIA PCI devices that hwloc sees, split the same way. */
#include "tasks/res.h"
#include "tessera/error.h"
#include "tessera/place.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIST_MAX = 1024 };

void res_free(farm_res_t *r)
{
    for (int i = 0; i < r->ngpus; i++)
        free(r->gpus[i]);
    free(r->gpus);
    hwloc_bitmap_free(r->cpuset);
    if (r->topo)
        hwloc_topology_destroy(r->topo);
    memset(r, 0, sizeof *r);
}

static int add_gpu(farm_res_t *r, const char *name, size_t n)
{
    char **g = realloc(r->gpus, (size_t)(r->ngpus + 1) * sizeof *g);
    if (!g)
        return -1;
    r->gpus = g;
    if (!(g[r->ngpus] = strndup(name, n)))
        return -1;
    r->ngpus++;
    return 0;
}

static int nvidia_count(hwloc_topology_t topo)
{
    int n = 0;
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(topo, o));)
        if (o->attr->pcidev.vendor_id == 0x10de && (o->attr->pcidev.class_id >> 8) == 0x03)
            n++;
    return n;
}

/* The node's list (all ranks' the same) split in contiguous chunks. */
static int split(farm_res_t *r, const char *const *all, int n, int lr, int ls)
{
    int per = n / ls, extra = n % ls;
    int from = lr * per + (lr < extra ? lr : extra), count = per + (lr < extra);
    for (int i = from; i < from + count; i++)
        if (add_gpu(r, all[i], strlen(all[i])))
            return -1;
    return 0;
}

static int gpus(tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o, farm_res_t *r)
{
    int lr = tsr_runtime_local_rank(rt), ls = tsr_runtime_local_size(rt);
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    char mine[LIST_MAX] = "", *lists = NULL;
    const char *names[256];
    char store[256][16];
    int n = 0, rc = 0;
    if (o->gpus_per_rank >= 0) {
        for (int i = 0; i < o->gpus_per_rank && i < 256; i++) {
            snprintf(store[i], sizeof store[i], "%d", lr * o->gpus_per_rank + i);
            if (add_gpu(r, store[i], strlen(store[i])))
                return -1;
        }
        r->hide_gpus = o->gpus_per_rank > 0;
        return 0;
    }
    if (cvd && strcmp(cvd, "NoDevFiles") != 0)
        snprintf(mine, sizeof mine, "%s", cvd);
    /* Every local rank's list, to tell mpirun (same lists) from srun (own lists). */
    if (!(lists = calloc((size_t)ls, LIST_MAX)))
        return -1;
    MPI_Allgather(mine, LIST_MAX, MPI_CHAR, lists, LIST_MAX, MPI_CHAR, tsr_runtime_node(rt));
    int same = 1;
    for (int i = 1; i < ls; i++)
        same &= strcmp(lists, lists + (size_t)i * LIST_MAX) == 0;
    if (cvd) {
        char *save, *copy = strdup(mine);
        for (char *g = copy ? strtok_r(copy, ",", &save) : NULL; g && n < 256; g = strtok_r(NULL, ",", &save)) {
            snprintf(store[n], sizeof store[n], "%s", g);
            names[n] = store[n];
            n++;
        }
        free(copy);
        r->hide_gpus = 1;
        rc = same ? split(r, names, n, lr, ls) : split(r, names, n, 0, 1);
    } else {
        n = nvidia_count(r->topo);
        for (int i = 0; i < n && i < 256; i++) {
            snprintf(store[i], sizeof store[i], "%d", i);
            names[i] = store[i];
        }
        r->hide_gpus = n > 0;
        rc = split(r, names, n < 256 ? n : 256, lr, ls);
    }
    free(lists);
    return rc;
}

int res_detect(tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o, farm_res_t *r)
{
    memset(r, 0, sizeof *r);
    tsr_place_plan_t *plan = NULL;
    int lr = tsr_runtime_local_rank(rt), rc = TSR_OK;
    if (hwloc_topology_init(&r->topo) != 0) {
        r->topo = NULL;
        return tsr_error_set(TSR_ESYS, "tasks: hwloc cannot start");
    }
    hwloc_topology_set_io_types_filter(r->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(r->topo) != 0) {
        rc = tsr_error_set(TSR_ESYS, "tasks: hwloc cannot read this node's topology");
        goto done;
    }
    if ((rc = tsr_place_plan_create(r->topo, tsr_runtime_local_size(rt), &plan)))
        goto done;
    r->cpuset = hwloc_bitmap_dup(tsr_place_plan_cpuset(plan, lr));
    if (!r->cpuset || gpus(rt, o, r) != 0)
        rc = tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
done:
    tsr_place_plan_destroy(plan);
    return rc;
}
