/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera topo`: shows the binding plan every rank would use, so users can
 * check placement under srun/mpirun before a long job. */
#include "commands.h"
#include "tessera/error.h"
#include "tessera/place.h"
#include "tessera/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed-size lines make the gather a single MPI_Gather; longer ones are cut. */
#define LINE 512

static const char usage[] = "usage: tessera topo [--bind] [--help]\n"
                            "Prints one line per rank, in world-rank order: host, world rank, node-local\n"
                            "rank, cores owned, cpuset (PU list) and NUMA node (\"-\" if several).\n"
                            "  --bind   bind each rank to its cpuset first and add a \"bound\" column with\n"
                            "           the binding the operating system actually reports\n"
                            "  --help   print this text\n";

/* This rank's table line; with bind, binds first (a failure only warns). */
static int describe(tsr_runtime_t *rt, int bind, char *line)
{
    hwloc_topology_t topo = NULL;
    tsr_place_plan_t *plan = NULL;
    hwloc_bitmap_t bound = NULL;
    char *planned = NULL, *got = NULL;
    int lr = tsr_runtime_local_rank(rt), rc;

    if (hwloc_topology_init(&topo) != 0) {
        topo = NULL;
        rc = tsr_error_set(TSR_ESYS, "topo: hwloc_topology_init failed");
        goto fail;
    }
    if (hwloc_topology_load(topo) != 0) {
        rc = tsr_error_set(TSR_ESYS, "topo: cannot load this node's hardware topology");
        goto fail;
    }
    if ((rc = tsr_place_plan_create(topo, tsr_runtime_local_size(rt), &plan)) != TSR_OK)
        goto fail;
    if (hwloc_bitmap_list_asprintf(&planned, tsr_place_plan_cpuset(plan, lr)) < 0)
        goto nomem;
    if (bind) {
        if (tsr_place_bind(topo, plan, lr) != TSR_OK)
            tsr_log(TSR_LOG_WARN, "%s", tsr_last_error());
        if (!(bound = hwloc_bitmap_alloc()))
            goto nomem;
        if (hwloc_get_cpubind(topo, bound, HWLOC_CPUBIND_PROCESS) != 0)
            got = strdup("?");
        else if (hwloc_bitmap_list_asprintf(&got, bound) < 0)
            got = NULL;
        if (!got)
            goto nomem;
    }
    int numa = tsr_place_plan_numa(plan, lr);
    char numa_s[16] = "-";
    if (numa >= 0)
        snprintf(numa_s, sizeof numa_s, "%d", numa);
    snprintf(line, LINE, "%s  %d  %d  %d  %s  %s%s%s", tsr_runtime_hostname(rt), tsr_runtime_rank(rt), lr,
             tsr_place_plan_ncores(plan, lr), planned, numa_s, bind ? "  " : "", bind ? got : "");
    rc = TSR_OK;
    goto out;

nomem:
    rc = tsr_error_set(TSR_ENOMEM, "topo: out of memory");
fail:
out:
    free(planned);
    free(got);
    hwloc_bitmap_free(bound);
    tsr_place_plan_destroy(plan);
    if (topo)
        hwloc_topology_destroy(topo);
    return rc;
}

int tsr_cmd_topo(tsr_runtime_t *rt, int argc, char **argv)
{
    int rank = tsr_runtime_rank(rt), size = tsr_runtime_size(rt);
    int bind = 0, rc, failed = -1;
    char line[LINE] = "";
    char *all = NULL;

    /* Every rank sees the same argv, so all decide alike without talking. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bind") == 0) {
            bind = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (rank == 0)
                fputs(usage, stdout);
            return TSR_OK;
        } else {
            rc = tsr_error_set(TSR_EINVAL, "topo: unknown option '%s' (see tessera topo --help)", argv[i]);
            if (rank == 0)
                tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
            return rc;
        }
    }

    rc = describe(rt, bind, line);
    if (rc != TSR_OK)
        tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
    /* Stop together: a rank that failed must not leave the others in the gather. */
    rc = tsr_runtime_agree(rt, rc, &failed);
    if (rc != TSR_OK) {
        if (failed < 0) /* the agreement itself failed */
            tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
        return rc;
    }

    if (rank == 0 && !(all = malloc((size_t)size * LINE)))
        rc = tsr_error_set(TSR_ENOMEM, "topo: out of memory for %d lines", size);
    if ((rc = tsr_runtime_agree(rt, rc, &failed)) != TSR_OK) {
        if (rank == 0)
            tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
        return rc;
    }
    if (MPI_Gather(line, LINE, MPI_CHAR, all, LINE, MPI_CHAR, 0, tsr_runtime_world(rt)) != MPI_SUCCESS) {
        rc = tsr_error_set(TSR_EMPI, "topo: rank %d: MPI_Gather of the table failed", rank);
        tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
        free(all);
        return rc;
    }
    if (rank == 0) {
        printf("host  rank  local  cores  cpuset  numa%s\n", bind ? "  bound" : "");
        for (int r = 0; r < size; r++)
            printf("%.*s\n", LINE, all + (size_t)r * LINE);
        fflush(stdout);
    }
    free(all);
    return TSR_OK;
}
