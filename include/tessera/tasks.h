/* SPDX-License-Identifier: BSD-3-Clause */
/* The task farm. Two faces over one scheduling model (priorities,
 * dependencies, retries with backoff, cancel):
 *
 *  - In-process tasks (the C API below): C functions submitted with an
 *    argument of bytes, run on a pool of threads per rank that take work
 *    from a priority queue and steal from each other, and, with a
 *    communicator of several ranks, on every rank: rank 0 submits and
 *    dispatches, the others run what it sends (tsr_tasks_work). Results
 *    come back as bytes.
 *
 *  - Shell tasks (tsr_tasks_run, `tessera tasks run TASKFILE`): commands
 *    from a task file, each run in its own process group, bound to the
 *    cores it asked for, with CUDA_VISIBLE_DEVICES set to its GPUs; a
 *    checksummed journal makes a restarted farm run only what is not done
 *    (at-least-once: a task that was running when the farm died runs again).
 *
 * Task file formats and the journal are documented in README.md. */
#ifndef TESSERA_TASKS_H
#define TESSERA_TASKS_H
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "tessera/runtime.h"
#include "tessera/serve.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Task states, shared by both faces. A task is final once SUCCEEDED,
 * FAILED, SKIPPED (a dependency did not succeed) or CANCELLED. */
typedef enum tsr_task_state {
    TSR_TASK_PENDING = 0, /* waiting for dependencies */
    TSR_TASK_READY,       /* queued to run */
    TSR_TASK_DELAYED,     /* failed, waiting out its retry backoff */
    TSR_TASK_RUNNING,     /* handed to a thread or rank */
    TSR_TASK_SUCCEEDED,
    TSR_TASK_FAILED,
    TSR_TASK_SKIPPED,
    TSR_TASK_CANCELLED,
    TSR_TASK_NSTATES
} tsr_task_state_t;

/* "pending", "ready", ... ; NULL for a value out of range. */
TSR_API const char *tsr_task_state_name(tsr_task_state_t s);
/* The state named s, or -1. */
TSR_API int tsr_task_state_parse(const char *s);

/* ---- In-process tasks ------------------------------------------------ */

typedef struct tsr_tasks tsr_tasks_t;
typedef uint64_t tsr_task_id_t; /* 1, 2, ... in submission order; 0 is never an id */
typedef struct tsr_task_ctx tsr_task_ctx_t;

/* A task: returns 0 for success, anything else for failure (retried if the
 * task has retries left). arg/len are the bytes given to submit. */
typedef int (*tsr_task_fn_t)(tsr_task_ctx_t *ctx, const void *arg, size_t len);

/* Inside a task: sets its result (copied; the last call wins). */
TSR_API int tsr_task_set_result(tsr_task_ctx_t *ctx, const void *data, size_t len);
/* Inside a task: its id, its attempt (1, 2, ...), the rank running it, and
 * whether a cancel was asked for (a running task is never interrupted: it
 * may poll this and return early). */
TSR_API tsr_task_id_t tsr_task_id(const tsr_task_ctx_t *ctx);
TSR_API int tsr_task_attempt(const tsr_task_ctx_t *ctx);
TSR_API int tsr_task_rank(const tsr_task_ctx_t *ctx);
TSR_API int tsr_task_cancelled(const tsr_task_ctx_t *ctx);
/* Inside a task: the farm, to submit more tasks from a task. */
TSR_API tsr_tasks_t *tsr_task_farm(const tsr_task_ctx_t *ctx);

typedef struct tsr_tasks_config {
    /* MPI_COMM_NULL (the default): this process only, no MPI calls. Else a
     * communicator: tsr_tasks_create and tsr_tasks_destroy are collective
     * over it, rank 0 submits, ranks > 0 call tsr_tasks_work. MPI is only
     * called from the thread that created the farm (MPI_THREAD_FUNNELED). */
    MPI_Comm comm;
    int threads;     /* worker threads on this rank; 0: one per core this process may run on */
    int run_on_root; /* rank 0's threads run tasks too (default 1) */
} tsr_tasks_config_t;

TSR_API void tsr_tasks_config_default(tsr_tasks_config_t *cfg);

typedef void (*tsr_task_done_fn_t)(tsr_tasks_t *farm, tsr_task_id_t id, tsr_task_state_t state, void *user);

typedef struct tsr_task_opts {
    int priority;               /* higher runs first among ready tasks (default 0) */
    const tsr_task_id_t *after; /* ids that must succeed first; a failed, */
    size_t nafter;              /* cancelled or skipped one skips this task */
    int retries;                /* extra attempts after a failure (default 0) */
    double backoff_s;           /* wait before retry k: backoff_s * backoff_factor^(k-1) */
    double backoff_factor;      /* (defaults 0 and 2) */
    tsr_task_done_fn_t on_done; /* called once when the task is final, on the */
    void *user;                 /* thread that finished it (rank 0 for remote tasks) */
} tsr_task_opts_t;

/* Creates a farm and starts its threads. Collective over cfg->comm. */
TSR_API int tsr_tasks_create(const tsr_tasks_config_t *cfg, tsr_tasks_t **out);
/* Rank 0 (or a farm without a communicator): waits for every submitted
 * task, then stops the threads; with a communicator also tells the other
 * ranks to return from tsr_tasks_work. Collective. Accepts NULL. */
TSR_API void tsr_tasks_destroy(tsr_tasks_t *t);

/* Functions by number, for farms over several ranks (a function pointer
 * means nothing in another process): every rank registers the same
 * functions in the same order before tasks are submitted. A farm on one
 * process registers functions on first submit by itself. */
TSR_API int tsr_tasks_register(tsr_tasks_t *t, tsr_task_fn_t fn);

/* Queues fn(arg) (arg is copied); opts may be NULL. Thread-safe; from
 * inside a task too. Rank 0 only on a farm over several ranks. */
TSR_API int tsr_tasks_submit(tsr_tasks_t *t, tsr_task_fn_t fn, const void *arg, size_t len, const tsr_task_opts_t *opts,
                             tsr_task_id_t *id);
/* Cancels a task that has not started (and skips its dependents); a
 * running one is asked to stop (tsr_task_cancelled) and ends CANCELLED. */
TSR_API int tsr_tasks_cancel(tsr_tasks_t *t, tsr_task_id_t id);
/* Waits until the task is final; *state (may be NULL) gets its state. */
TSR_API int tsr_tasks_wait(tsr_tasks_t *t, tsr_task_id_t id, tsr_task_state_t *state);
/* Waits until every task submitted so far is final; returns TSR_OK, or
 * TSR_ETASKS when any of them did not succeed. */
TSR_API int tsr_tasks_wait_all(tsr_tasks_t *t);
/* Without waiting: the task's state. */
TSR_API tsr_task_state_t tsr_tasks_state(tsr_tasks_t *t, tsr_task_id_t id);
/* A final task's result bytes (owned by the farm until tsr_tasks_release or
 * destroy), its function's return value and its attempts. Any may be NULL. */
TSR_API int tsr_tasks_result(tsr_tasks_t *t, tsr_task_id_t id, const void **data, size_t *len, int *rc, int *attempts);
/* Frees a final task's argument and result early (its state stays). */
TSR_API int tsr_tasks_release(tsr_tasks_t *t, tsr_task_id_t id);
/* Rank 0 of a farm over several ranks: moves tasks between ranks without
 * waiting (wait and wait_all do this themselves). */
TSR_API int tsr_tasks_poll(tsr_tasks_t *t);
/* Ranks > 0: runs what rank 0 sends until it destroys the farm. */
TSR_API int tsr_tasks_work(tsr_tasks_t *t);

typedef struct tsr_tasks_stats {
    uint64_t submitted, finished, succeeded, failed, skipped, cancelled;
    uint64_t steals;       /* batches a thread took from another thread */
    uint64_t remote;       /* tasks run on other ranks */
    size_t bytes_per_task; /* the farm's own memory per task record */
} tsr_tasks_stats_t;
TSR_API void tsr_tasks_stats(tsr_tasks_t *t, tsr_tasks_stats_t *st);

/* ---- Shell tasks (tessera tasks run) --------------------------------- */

typedef struct tsr_tasks_run_opts {
    const char *taskfile;            /* task file (plain lines or JSON Lines); read by rank 0 */
    const char *journal_dir;         /* journal directory (created); NULL: no journal */
    const char *output_dir;          /* task output files; NULL: JOURNAL/output, else tasks-output */
    int retry_failed;                /* on restart, run failed, skipped and cancelled tasks again */
    int keep_alive;                  /* keep running when every task is final (wait for submissions) */
    double drain_s;                  /* after a stop: running tasks may finish this long (default 60) */
    double kill_grace_s;             /* SIGTERM to SIGKILL, for timeouts, cancels, stops (default 5) */
    double walltime_margin_s;        /* under SLURM, stop this long before the end (default 120; <0 off) */
    int gpus_per_rank;               /* -1 (default): CUDA_VISIBLE_DEVICES or hwloc's NVIDIA devices */
    int reserve_core;                /* rank 0 keeps one core for the dispatcher */
    double fsync_ms;                 /* journal group commit: fsync at most this often (default 5) */
    double progress_s;               /* seconds between progress lines; 0: none (default 10) */
    const tsr_serve_config_t *serve; /* start the coordinator on rank 0; NULL: none */
} tsr_tasks_run_opts_t;

TSR_API void tsr_tasks_run_opts_default(tsr_tasks_run_opts_t *o);

/* Runs the farm; collective over the runtime's world. Returns TSR_OK when
 * every task succeeded, TSR_ETASKS when some failed, were skipped or
 * cancelled (a summary is printed), TSR_ESTOPPED after a signal or the
 * walltime margin (the journal holds what is left: run again), or an
 * error. Every rank returns the same code. */
TSR_API int tsr_tasks_run(tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o);

/* Prints a journal's counts by state and, with list, one line per task it
 * names (id, state, attempts, exit, rank, duration) matching state (NULL:
 * any). Reads only; a farm may be running on it. */
TSR_API int tsr_tasks_journal_report(const char *journal_dir, const char *state, int list, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
