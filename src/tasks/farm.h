/* SPDX-License-Identifier: BSD-3-Clause */
/* The shell farm's parts and the state they share (internal):
 *   farm.c      set-up (resources of every rank), the event loop, the end
 *   dispatch.c  rank 0: handing tasks to ranks, their events, cancel, stop
 *   replay.c    the journal's records applied to the task table; reports
 *   requests.c  the coordinator's submissions and cancels, queued for the loop
 *   status.c    the coordinator's views (GET /tasks, /tasks/{id}, /metrics)
 *   summary.c   progress lines and the closing table
 */
#ifndef TSR_TASKS_FARM_H
#define TSR_TASKS_FARM_H
#include "tasks/journal.h"
#include "tasks/sched.h"
#include "tasks/worker.h"
#include "tessera/perf.h"
#include "tessera/serve.h"
#include "tessera/tasks.h"

#include <pthread.h>

typedef struct rankinfo {
    int cores, gpus;           /* what the rank runs tasks on */
    int used_cores, used_gpus; /* handed out and not yet done */
    int assigned, started;
    int revoking; /* asked to hand back its queue */
    int bye;
    uint64_t finished; /* attempts that ended */
    double busy_s;     /* core-seconds of attempts it finished */
    char host[64], place[160];
} rankinfo_t;

typedef struct treq treq_t; /* a coordinator request (requests.c) */

typedef struct disp {
    tsr_runtime_t *rt;
    const tsr_tasks_run_opts_t *o;
    int world;
    ttable_t tt;
    sched_t s;
    journal_t *j;
    rankinfo_t *ranks;
    tbuf_t *out; /* per rank: RUN records to send */
    tbuf_t *ctl; /* per rank: control messages to send (one message each: see flush) */
    int max_cores, max_gpus;
    double ewma;   /* recent task durations, seconds */
    int lookahead; /* ranks may hold a task per core beyond what runs */
    int stopping, stop_sig, ended, result;
    double stop_started;
    char stop_reason[512];
    uint64_t dispatched, attempts_done, submissions;
    double t0, rate, rate_t;
    uint64_t rate_n;
    char outdir[4096], cwd[4096], taskfile[4096];
    /* The coordinator: HTTP threads read the table under mu, which the
     * loop holds except while it waits; requests queue under qmu. */
    tsr_serve_t *serve;
    pthread_mutex_t mu, qmu;
    treq_t *qhead, *qtail;
    int efd; /* eventfd: a request is waiting */
    /* journal replay */
    uint32_t run_no;
    uint64_t unknown_records;
} disp_t;

/* dispatch.c */
int disp_init(disp_t *d, tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o, const rankinfo_t *ranks);
void disp_free(disp_t *d);
/* Hands ready tasks to ranks with room; returns how many. */
int disp_dispatch(disp_t *d);
void disp_events(disp_t *d, int rank, const void *p, size_t n);
/* Asks every rank to stop (signal, walltime, journal error). */
void disp_stop(disp_t *d, int sig, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Cancels tasks by id or tag; returns how many. */
long disp_cancel(disp_t *d, const char *id, const char *tag);
/* Every task final, nothing out, and not asked to stay. */
int disp_finished(const disp_t *d);
int disp_outstanding(const disp_t *d); /* tasks handed out, not done */
/* The output file of t's last attempt on rank (pat: the task's pattern or NULL). */
void disp_out_path(const disp_t *d, const task_t *t, const char *pat, const char *ext, int rank, char *buf, size_t len);
/* Journal records (no-ops without a journal). */
void disp_journal_submit(disp_t *d, const char *origin, const char *text, size_t len);
void disp_journal_end(disp_t *d, int stop);

/* replay.c */
/* Loads the task file and, with a journal, replays it; appends a RUN record. */
int replay_load(disp_t *d);

/* requests.c */
int requests_init(disp_t *d);
void requests_free(disp_t *d);
/* The loop, under mu: answers queued submissions and cancels. */
void requests_drain(disp_t *d);
/* The serve ops for this farm. */
void requests_ops(disp_t *d, tsr_serve_tasks_t *ops);

/* status.c: JSON and Prometheus views, called on HTTP threads */
char *status_list_json(disp_t *d, const char *state, const char *tag, long offset, long limit, int *http);
char *status_task_json(disp_t *d, const char *id, int *http);
char *status_metrics(disp_t *d);

/* summary.c */
void summary_progress(disp_t *d, double now);
void summary_print(disp_t *d);

/* farm_perf.c: this rank's seconds tending tasks (TSR_PHASE_TASK of p),
 * its resource use and, on rank 0, the tasks by state; logged (rank 0 at
 * info, others at debug level). Not collective. */
void farm_perf_report(int rank, tsr_perf_t *p);

#endif
