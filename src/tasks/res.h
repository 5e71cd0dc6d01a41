/* SPDX-License-Identifier: BSD-3-Clause */
/* A rank's resources for shell tasks: cores and GPUs (internal). */
#ifndef TSR_TASKS_RES_H
#define TSR_TASKS_RES_H
#include "tessera/tasks.h"

#include <hwloc.h>

typedef struct farm_res {
    hwloc_topology_t topo;
    hwloc_bitmap_t cpuset; /* the rank's cores */
    char **gpus;           /* CUDA_VISIBLE_DEVICES names */
    int ngpus;
    int hide_gpus; /* the node has GPUs: tasks without any see none */
} farm_res_t;

/* Collective over the node's ranks. */
int res_detect(tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o, farm_res_t *r);
void res_free(farm_res_t *r);

#endif
