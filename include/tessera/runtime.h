/* MPI start-up and shutdown, world and node-local ranks, logging. */
#ifndef TESSERA_RUNTIME_H
#define TESSERA_RUNTIME_H
#include <mpi.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_runtime tsr_runtime_t;

/* Initialises MPI (MPI_THREAD_FUNNELED at least) unless it already is, and
 * learns world and node-local ranks. In a SimGrid build (TSR_SIMGRID)
 * SMPI's MPI_THREAD_SINGLE is accepted and helper threads are off. */
int tsr_runtime_create(int *argc, char ***argv, tsr_runtime_t **out);
/* 1 when helper threads (prefetch, asynchronous checkpoints, watchdogs)
 * may run beside the MPI thread; 0 under SimGrid's SMPI, which simulates
 * every rank in one process and offers MPI_THREAD_SINGLE only. */
int tsr_runtime_helper_threads(const tsr_runtime_t *rt);
/* Finalises MPI if tsr_runtime_create initialised it. Accepts NULL. */
void tsr_runtime_destroy(tsr_runtime_t *rt);

int tsr_runtime_rank(const tsr_runtime_t *rt);
int tsr_runtime_size(const tsr_runtime_t *rt);
int tsr_runtime_local_rank(const tsr_runtime_t *rt);
int tsr_runtime_local_size(const tsr_runtime_t *rt);
int tsr_runtime_node_id(const tsr_runtime_t *rt);   /* 0..node_count-1 */
int tsr_runtime_node_count(const tsr_runtime_t *rt);
const char *tsr_runtime_hostname(const tsr_runtime_t *rt);
MPI_Comm tsr_runtime_world(const tsr_runtime_t *rt);
MPI_Comm tsr_runtime_node(const tsr_runtime_t *rt); /* ranks on this node */

/* Collective over the world: every rank passes its own result code and all
 * get back the code of the lowest failing rank (TSR_OK if none failed);
 * *failed_rank (may be NULL) is that rank, or -1. This is how ranks agree to
 * stop together instead of one exiting while the others hang. */
int tsr_runtime_agree(tsr_runtime_t *rt, int rc, int *failed_rank);

/* Logging. Lines from rank 0 read "tessera: msg"; others "tessera[rank N]: msg".
 * info goes to stdout from rank 0 only (or every rank if verbose);
 * warn and error go to stderr from whichever rank calls them. */
enum { TSR_LOG_ERROR = 0, TSR_LOG_WARN = 1, TSR_LOG_INFO = 2, TSR_LOG_DEBUG = 3 };
void tsr_log_set_rank(int rank, int size);
void tsr_log_set_level(int level);
void tsr_log_set_all_ranks(int on);
void tsr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tsr_vlog(int level, const char *fmt, va_list ap);

/* Signals: SIGTERM, SIGUSR1 and SIGINT record a stop request (the first
 * signal's number) that the training loop checks at step boundaries; a
 * second SIGINT exits at once with status 130. Returns 0 or -1. */
int tsr_runtime_install_signals(void);
/* The signal that asked to stop, or 0. */
int tsr_runtime_stop_signal(void);
/* Records a stop request as if sig had arrived (walltime margins, tests). */
void tsr_runtime_request_stop(int sig);

/* SLURM: what the job knows about itself, read from the environment when
 * the runtime starts (all zero/empty outside SLURM). */
typedef struct tsr_slurm_facts {
    int in_slurm;          /* SLURM_JOB_ID is set */
    long job_id;           /* SLURM_JOB_ID, or -1 */
    long step_id;          /* SLURM_STEP_ID, or -1 outside a step (the batch script) */
    int restart_count;     /* SLURM_RESTART_COUNT: times the job was requeued */
    int tasks_per_node;    /* this node's entry of SLURM_TASKS_PER_NODE ("2(x3)" -> 2), or 0 */
    int local_id;          /* SLURM_LOCALID, or -1 */
    int node_count;        /* SLURM_JOB_NUM_NODES, or 0 */
    char nodelist[1024];   /* SLURM_JOB_NODELIST, as SLURM writes it ("n[01-04]") */
    char partition[128];   /* SLURM_JOB_PARTITION */
    double env_end_time;   /* SLURM_JOB_END_TIME (Unix time; newer SLURMs), or 0 */
} tsr_slurm_facts_t;

/* Reads the facts from the environment (no MPI, no libslurm). */
void tsr_slurm_facts_read(tsr_slurm_facts_t *f);
const tsr_slurm_facts_t *tsr_runtime_slurm(const tsr_runtime_t *rt);
/* 1 if this build talks to slurmctld through libslurm (TESSERA_WITH_SLURM). */
int tsr_slurm_linked(void);

/* Seconds of walltime the job has left, or a negative value if unknown (not
 * under SLURM, or the end time cannot be learnt). Cheap enough for every
 * step: the end time is cached and asked of slurmctld (libslurm) at most
 * every 30 s; otherwise it costs a clock read. */
double tsr_runtime_walltime_left(tsr_runtime_t *rt);
/* The job's whole time limit in seconds (libslurm), or a negative value. */
double tsr_runtime_walltime_limit(tsr_runtime_t *rt);

/* Submitting batch jobs through libslurm (tessera submit, tessera jobs).
 * A scheduler that refuses a request, or cannot be reached, gives
 * TSR_ESCHED with SLURM's own reason in tsr_last_error(). */
/* (TSR_ESCHED is in error.h: the CLI exits with 5.) */

typedef struct tsr_slurm_job {
    const char *name;          /* job name */
    const char *script;        /* the batch script ("#!/bin/bash\n...") */
    const char *workdir;       /* absolute working directory */
    const char *output;        /* stdout and stderr file ("tessera-%j.out"); NULL: SLURM's default */
    const char *partition;     /* NULL or "": the default partition */
    const char *account;       /* NULL or "": the user's default */
    long nodes, ntasks_per_node, cpus_per_task, gpus_per_task; /* 0: unset */
    long time_minutes;         /* 0: the partition's default */
    int requeue;               /* may be requeued */
    int warn_seconds;          /* SIGUSR1 to the tasks this long before the end (0: none) */
} tsr_slurm_job_t;

/* Submits; *job_id gets the new job's id. */
int tsr_slurm_submit(const tsr_slurm_job_t *job, unsigned long *job_id);

typedef struct tsr_slurm_job_info {
    unsigned long job_id;
    char name[128];
    char state[32];            /* PENDING, RUNNING, COMPLETED, ... ("UNKNOWN" once purged) */
    char reason[64];           /* why pending, or "None" */
    char nodes[256];
    int restarts;              /* requeues so far */
    int exit_code, exit_signal;
    double submit_time, start_time, end_time; /* Unix times, 0 if unset */
} tsr_slurm_job_info_t;

/* Asks slurmctld about one job. A job the controller no longer knows gives
 * TSR_OK with state "UNKNOWN". */
int tsr_slurm_job_query(unsigned long job_id, tsr_slurm_job_info_t *info);

/* "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS" (SLURM's --time
 * forms) to minutes, rounded up; -1 if malformed. */
long tsr_slurm_parse_time(const char *s);

/* Wall-clock seconds from a monotonic clock. */
double tsr_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
