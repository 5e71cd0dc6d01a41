/* The runtime's state, shared by the files of src/runtime (internal). */
#ifndef TSR_RUNTIME_INTERNAL_H
#define TSR_RUNTIME_INTERNAL_H
#include "tessera/runtime.h"

struct tsr_runtime {
    int rank, size;
    int local_rank, local_size;
    int node_id, node_count;
    int we_initialised;
    int helper_threads;     /* 0 where MPI gives only MPI_THREAD_SINGLE (SimGrid) */
    MPI_Comm world, node;
    char host[256];
    /* SLURM: facts from the environment, and the job's end time as learnt
     * from libslurm (cached; asked again at most every TSR_WALLTIME_REFRESH s). */
    tsr_slurm_facts_t slurm;
    int slurm_inited;       /* slurm_init() was called */
    double end_time;        /* Unix time the job ends, 0 if unknown */
    double time_limit;      /* the job's time limit in seconds, 0 if unknown */
    double next_query;      /* monotonic time of the next libslurm query */
};

enum { TSR_WALLTIME_REFRESH = 30 };

/* Releases what libslurm holds (slurm_fini) if it was started. */
void tsr_runtime_slurm_close(tsr_runtime_t *rt);

#endif
