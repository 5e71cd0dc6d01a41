/* SPDX-License-Identifier: BSD-3-Clause */
/* A runtime over a sub-communicator (a sweep's group of ranks). */
#include "runtime/internal.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

int tsr_runtime_split(tsr_runtime_t *rt, int color, int key, tsr_runtime_t **out)
{
    tsr_runtime_t *c = calloc(1, sizeof *c);
    int rc = TSR_OK;
    *out = NULL;
    if (!c)
        rc = tsr_error_set(TSR_ENOMEM, "rank %d: out of memory for a group's runtime", rt->rank);
    /* Every rank calls the split, also one that failed to allocate. */
    MPI_Comm sub = MPI_COMM_NULL;
    if (MPI_Comm_split(rt->world, c ? color : MPI_UNDEFINED, key, &sub) != MPI_SUCCESS && !rc)
        rc = tsr_error_set(TSR_EMPI, "rank %d: MPI_Comm_split(color %d) failed", rt->rank, color);
    if (rc) {
        if (sub != MPI_COMM_NULL)
            MPI_Comm_free(&sub);
        free(c);
        return rc;
    }
    c->world = sub;
    c->node = c->wd_comm = MPI_COMM_NULL;
    c->wd_step = -1;
    c->helper_threads = rt->helper_threads;
    c->slurm = rt->slurm;
    if ((rc = tsr_runtime_learn(c))) {
        tsr_runtime_destroy(c);
        return rc;
    }
    *out = c;
    return TSR_OK;
}
