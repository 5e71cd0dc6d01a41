/* SPDX-License-Identifier: BSD-3-Clause */
/* MPI start-up: world, node-local communicator, node ids. */
#include "runtime/internal.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ranks, the node-local communicator and node ids of rt->world. */
int tsr_runtime_learn(tsr_runtime_t *rt)
{
    MPI_Comm_set_errhandler(rt->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(rt->world, &rt->rank);
    MPI_Comm_size(rt->world, &rt->size);
    if (MPI_Comm_split_type(rt->world, MPI_COMM_TYPE_SHARED, rt->rank, MPI_INFO_NULL, &rt->node) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed");
    MPI_Comm_rank(rt->node, &rt->local_rank);
    MPI_Comm_size(rt->node, &rt->local_size);
    /* Node ids: number the node leaders in world-rank order. */
    int leader = rt->local_rank == 0;
    int before = 0;
    MPI_Exscan(&leader, &before, 1, MPI_INT, MPI_SUM, rt->world);
    if (rt->rank == 0)
        before = 0;
    rt->node_id = leader ? before : 0;
    MPI_Bcast(&rt->node_id, 1, MPI_INT, 0, rt->node);
    MPI_Allreduce(&leader, &rt->node_count, 1, MPI_INT, MPI_SUM, rt->world);
    if (gethostname(rt->host, sizeof rt->host - 1) != 0)
        strcpy(rt->host, "unknown");
    return TSR_OK;
}

int tsr_runtime_create(int *argc, char ***argv, tsr_runtime_t **out)
{
    tsr_runtime_t *rt = calloc(1, sizeof *rt);
    int inited = 0, provided = 0;
    if (!rt)
        return tsr_error_set(TSR_ENOMEM, "runtime: out of memory");
    rt->world = rt->node = rt->wd_comm = MPI_COMM_NULL;
    rt->wd_step = -1;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(rt);
            return tsr_error_set(TSR_EMPI, "MPI_Init_thread failed");
        }
        rt->we_initialised = 1;
    } else if (MPI_Query_thread(&provided) != MPI_SUCCESS) {
        provided = MPI_THREAD_SINGLE;
    }
    rt->helper_threads = 1;
    if (provided < MPI_THREAD_FUNNELED) {
#ifdef TSR_SIMGRID
        /* SMPI runs every simulated rank in one process: threads beside
         * them would run outside the simulation, so there are none. */
        rt->helper_threads = 0;
#else
        if (rt->we_initialised) {
            tsr_error_set(TSR_EMPI, "MPI provides thread level %d, tessera needs MPI_THREAD_FUNNELED", provided);
            goto fail;
        }
        rt->helper_threads = 0; /* the caller initialised MPI: no threads beside it */
#endif
    }
    /* Errors come back as codes so we can report them and stop together. */
    if (MPI_Comm_dup(MPI_COMM_WORLD, &rt->world) != MPI_SUCCESS) {
        tsr_error_set(TSR_EMPI, "MPI_Comm_dup failed");
        goto fail;
    }
    if (tsr_runtime_learn(rt))
        goto fail;
    tsr_log_set_rank(rt->rank, rt->size);
    tsr_slurm_facts_read(&rt->slurm);
    *out = rt;
    return TSR_OK;
fail:
    tsr_runtime_destroy(rt);
    return TSR_EMPI;
}

void tsr_runtime_destroy(tsr_runtime_t *rt)
{
    if (!rt)
        return;
    tsr_runtime_slurm_close(rt);
    /* MPI_Finalize waits for every rank: the deadline times it. */
    tsr_runtime_watchdog_finalizing(rt);
    if (rt->wd_comm != MPI_COMM_NULL)
        MPI_Comm_free(&rt->wd_comm);
    if (rt->node != MPI_COMM_NULL)
        MPI_Comm_free(&rt->node);
    if (rt->world != MPI_COMM_NULL)
        MPI_Comm_free(&rt->world);
    if (rt->we_initialised) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin)
            MPI_Finalize();
    }
    tsr_runtime_watchdog_close(rt);
    free(rt);
}

int tsr_runtime_rank(const tsr_runtime_t *rt) { return rt->rank; }
int tsr_runtime_helper_threads(const tsr_runtime_t *rt) { return rt->helper_threads; }
int tsr_runtime_size(const tsr_runtime_t *rt) { return rt->size; }
int tsr_runtime_local_rank(const tsr_runtime_t *rt) { return rt->local_rank; }
int tsr_runtime_local_size(const tsr_runtime_t *rt) { return rt->local_size; }
int tsr_runtime_node_id(const tsr_runtime_t *rt) { return rt->node_id; }
int tsr_runtime_node_count(const tsr_runtime_t *rt) { return rt->node_count; }
const char *tsr_runtime_hostname(const tsr_runtime_t *rt) { return rt->host; }
MPI_Comm tsr_runtime_world(const tsr_runtime_t *rt) { return rt->world; }
MPI_Comm tsr_runtime_node(const tsr_runtime_t *rt) { return rt->node; }

int tsr_runtime_agree(tsr_runtime_t *rt, int rc, int *failed_rank)
{
    /* First find the lowest failing rank, then take its code. */
    int mine = rc != TSR_OK ? rt->rank : rt->size;
    int first = rt->size;
    if (tsr_runtime_allreduce(rt, &mine, &first, 1, MPI_INT, MPI_MIN, "the agreement on errors", -1))
        return tsr_error_set(TSR_EMPI, "rank %d: MPI_Allreduce failed while agreeing on an error", rt->rank);
    if (failed_rank)
        *failed_rank = first < rt->size ? first : -1;
    if (first == rt->size)
        return TSR_OK;
    int code = rc;
    if (tsr_runtime_bcast(rt, &code, 1, MPI_INT, first, "the agreement on errors"))
        return tsr_error_set(TSR_EMPI, "rank %d: MPI_Bcast failed while agreeing on an error", rt->rank);
    return code;
}
