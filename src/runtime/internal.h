/* SPDX-License-Identifier: BSD-3-Clause */
/* The runtime's state, shared by the files of src/runtime (internal). */
#ifndef TSR_RUNTIME_INTERNAL_H
#define TSR_RUNTIME_INTERNAL_H
#include "tessera/runtime.h"

struct tsr_runtime {
    int rank, size;
    int local_rank, local_size;
    int node_id, node_count;
    int we_initialised;
    int helper_threads; /* 0 where MPI gives only MPI_THREAD_SINGLE (SimGrid) */
    MPI_Comm world, node;
    char host[256];
    /* SLURM: facts from the environment, and the job's end time as learnt
     * from libslurm (cached; asked again at most every TSR_WALLTIME_REFRESH s). */
    tsr_slurm_facts_t slurm;
    int slurm_inited;  /* slurm_init() was called */
    double end_time;   /* Unix time the job ends, 0 if unknown */
    double time_limit; /* the job's time limit in seconds, 0 if unknown */
    double next_query; /* monotonic time of the next libslurm query */
    /* The watchdog over collectives (watchdog.c): limit in seconds (0:
     * off), a communicator of its own for the arrival notes, every rank's
     * host and pid (to name a hung one), the phase deadline's thread, and
     * the wait being watched now. */
    double wd_limit;
    MPI_Comm wd_comm;
    struct tsr_wd_peer *wd_peers;
    struct tsr_deadline *wd_deadline;
    const char *wd_phase; /* the phase the deadline times, while no wait is watched */
    const char *wd_what;
    long wd_step;
    double wd_t0, wd_last_poll;
    unsigned long wd_polls;
};

enum { TSR_WALLTIME_REFRESH = 30 };

/* Fills ranks, the node-local communicator, node ids and the host name
 * from rt->world (create and split). Collective over rt->world. */
int tsr_runtime_learn(tsr_runtime_t *rt);
/* Ends the watchdog's thread and frees its state (runtime_destroy). */
void tsr_runtime_watchdog_close(tsr_runtime_t *rt);
/* Arms the phase deadline around MPI_Finalize (runtime_destroy). */
void tsr_runtime_watchdog_finalizing(tsr_runtime_t *rt);

/* Releases what libslurm holds (slurm_fini) if it was started. */
void tsr_runtime_slurm_close(tsr_runtime_t *rt);

#endif
