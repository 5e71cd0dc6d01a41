/* SPDX-License-Identifier: BSD-3-Clause */
/* Which ranks share a leaf switch or a node (internal): the groups the
 * hierarchical allreduce runs within (alg_hier.c).
 *
 * Sources (runtime.topology, tsr_comm_options_t.topology):
 *   auto (or NULL)  SLURM_TOPOLOGY_ADDR, which slurmd sets under the
 *                   topology/tree plugin ("top.leaf.node": the leaf is all
 *                   but the last name); unset or a bare node name: none.
 *   none            no groups.
 *   node            ranks grouped by host (MPI_Get_processor_name).
 *   a path          a SLURM topology.conf: the leaf switches are its lines
 *                   with Nodes=, a rank's host found in their hostlists.
 * The groups must be usable by the schedule: at least 2, all of the same
 * size, at least 2 ranks each; otherwise there are none (G = 0, why says
 * which rule failed). */
#ifndef TSR_COMM_TOPOLOGY_H
#define TSR_COMM_TOPOLOGY_H
#include <mpi.h>
#include <stddef.h>

typedef struct tsr_topo {
    int G, L;      /* groups and ranks in each; G = 0: none usable */
    int gi, li;    /* this rank's group and its number in it */
    int *members;  /* G * L ranks of the communicator: group by group (in
                   * the order of their lowest ranks), ascending in each */
    char why[256]; /* G = 0: why (for the log and error lines) */
} tsr_topo_t;

/* Collective over comm; every rank gets the same groups or the same error
 * (TSR_EINVAL, TSR_EDATA or TSR_EIO, naming the rank, host, file and line). */
int tsr_topo_create(MPI_Comm comm, const char *spec, tsr_topo_t *t);
void tsr_topo_destroy(tsr_topo_t *t); /* accepts a zeroed struct */

/* 1 when host is in the SLURM hostlist expr ("n[0-15,20],gpu[01-04],login"),
 * 0 when not, TSR_EINVAL (message set) when expr is malformed. */
int tsr_topo_hostlist_match(const char *expr, const char *host);
/* The leaf switch (a line with Nodes=) of host in the topology.conf at
 * path, copied to leaf (len bytes). TSR_OK; TSR_EDATA when it is missing
 * or not a regular file (a FIFO, a device, a directory: checked before it
 * is opened); TSR_EIO when it cannot be read; TSR_EINVAL (file:line named) when malformed, when host is in two
 * leaves or in none. A host not found as given is looked up again without
 * its domain (the part from the first '.'). */
int tsr_topo_file_leaf(const char *path, const char *host, char *leaf, size_t len);

#endif
