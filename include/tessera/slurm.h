/* SPDX-License-Identifier: BSD-3-Clause */
/* SLURM: the facts a job reads from its environment, and batch jobs
 * submitted and queried through libslurm (no MPI). */
#ifndef TESSERA_SLURM_H
#define TESSERA_SLURM_H
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SLURM: what the job knows about itself, read from the environment when
 * the runtime starts (all zero/empty outside SLURM). */
typedef struct tsr_slurm_facts {
    int in_slurm;        /* SLURM_JOB_ID is set */
    long job_id;         /* SLURM_JOB_ID, or -1 */
    long step_id;        /* SLURM_STEP_ID, or -1 outside a step (the batch script) */
    int restart_count;   /* SLURM_RESTART_COUNT: times the job was requeued */
    int tasks_per_node;  /* this node's entry of SLURM_TASKS_PER_NODE ("2(x3)" -> 2), or 0 */
    int local_id;        /* SLURM_LOCALID, or -1 */
    int node_count;      /* SLURM_JOB_NUM_NODES, or 0 */
    char nodelist[1024]; /* SLURM_JOB_NODELIST, as SLURM writes it ("n[01-04]") */
    char partition[128]; /* SLURM_JOB_PARTITION */
    double env_end_time; /* SLURM_JOB_END_TIME (Unix time; newer SLURMs), or 0 */
} tsr_slurm_facts_t;

/* Reads the facts from the environment (no MPI, no libslurm). */
TSR_API void tsr_slurm_facts_read(tsr_slurm_facts_t *f);
/* 1 if this build talks to slurmctld through libslurm (TESSERA_WITH_SLURM). */
TSR_API int tsr_slurm_linked(void);

/* Submitting batch jobs through libslurm (tessera submit, tessera jobs).
 * A scheduler that refuses a request, or cannot be reached, gives
 * TSR_ESCHED with SLURM's own reason in tsr_last_error(). */
/* (TSR_ESCHED is in error.h: the CLI exits with 5.) */

typedef struct tsr_slurm_job {
    const char *name;      /* job name */
    const char *script;    /* the batch script ("#!/bin/bash\n...") */
    const char *workdir;   /* absolute working directory */
    const char *output;    /* stdout and stderr file ("tessera-%j.out"); NULL: SLURM's default */
    const char *partition; /* NULL or "": the default partition */
    const char *account;   /* NULL or "": the user's default */
    long nodes, ntasks_per_node, cpus_per_task, gpus_per_task; /* 0: unset */
    long time_minutes; /* 0: the partition's default; TSR_SLURM_TIME_UNLIMITED: none */
    int requeue;       /* may be requeued */
    int warn_seconds;  /* SIGUSR1 to the tasks this long before the end (0: none) */
} tsr_slurm_job_t;

/* Submits; *job_id gets the new job's id. */
TSR_API int tsr_slurm_submit(const tsr_slurm_job_t *job, unsigned long *job_id);

typedef struct tsr_slurm_job_info {
    unsigned long job_id;
    char name[128];
    char state[32];  /* PENDING, RUNNING, COMPLETED, ... ("UNKNOWN" once purged) */
    char reason[64]; /* why pending, or "None" */
    char nodes[256];
    int restarts; /* requeues so far */
    int exit_code, exit_signal;
    double submit_time, start_time, end_time; /* Unix times, 0 if unset */
} tsr_slurm_job_info_t;

/* Asks slurmctld about one job. A job the controller no longer knows gives
 * TSR_OK with state "UNKNOWN". */
TSR_API int tsr_slurm_job_query(unsigned long job_id, tsr_slurm_job_info_t *info);

/* No time limit: what tsr_slurm_parse_time gives for UNLIMITED or INFINITE
 * (SLURM's words), and a tsr_slurm_job_t's time_minutes that asks for it. */
#define TSR_SLURM_TIME_UNLIMITED (-2L)

/* "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS" (SLURM's --time
 * forms) to minutes, rounded up; "UNLIMITED" or "INFINITE" (any case) to
 * TSR_SLURM_TIME_UNLIMITED; -1 if malformed or above INT_MAX minutes. */
TSR_API long tsr_slurm_parse_time(const char *s);

#ifdef __cplusplus
}
#endif
#endif
