/* SPDX-License-Identifier: BSD-3-Clause */
/* The shell farm's task table (rank 0): every task by index, its strings
 * in an arena, dependencies as index slices and edges to dependents, ids
 * through an id map (internal). */
#ifndef TSR_TASKS_TABLE_H
#define TSR_TASKS_TABLE_H
#include "tasks/buf.h"
#include "tasks/idmap.h"
#include "tessera/tasks.h"

#define TASK_NONE UINT32_MAX

/* How an attempt ended. */
enum task_how {
    HOW_NONE = 0,
    HOW_EXITED,      /* code = exit status */
    HOW_SIGNALED,    /* code = signal number */
    HOW_TIMEOUT,     /* ran past its timeout and was killed */
    HOW_SPAWN,       /* could not be started (code 127: not found, 126: not executable) */
    HOW_CANCELLED,   /* cancelled while running */
    HOW_INTERRUPTED, /* stopped by the farm's stop (signal, walltime): runs again */
    HOW_LOST         /* running when the farm died (replay): runs again */
};
const char *task_how_name(int how);

/* What most tasks lack, kept apart so a plain-line task stays small. */
typedef struct task_ext {
    char *cwd;
    char **env; /* "KEY=VALUE" */
    char **tags;
    char *out, *err; /* output file patterns ({id}, {attempt}) */
    uint32_t nenv, ntags;
} task_ext_t;

typedef struct task {
    char *id, *cmd;
    task_ext_t *ext;
    char *where; /* placement of the last attempt: "cores 2,3 gpus 1" (malloc) */
    char *tail;  /* the end of stderr of the last failed attempt (malloc) */
    double timeout_s;
    double t_start, t_end; /* Unix times of the last attempt */
    double not_before;     /* monotonic: end of the retry backoff */
    float backoff_s, backoff_factor;
    int32_t prio;
    int32_t code;
    uint32_t nwait;          /* dependencies that have not succeeded yet */
    uint32_t dep_off, ndeps; /* tt->deps[dep_off ...]: what this task waits for */
    uint32_t out_head;       /* first edge to a task that waits for this one */
    uint32_t cause;          /* skipped: the dependency that did not succeed */
    uint32_t line;           /* line of the task file or of the submission */
    uint16_t cores, gpus, retries, attempts;
    int16_t rank; /* rank of the last attempt, -1 */
    uint8_t state, how;
    uint8_t dynamic; /* submitted while the farm ran (journaled in full) */
    uint8_t queued;  /* in a ready queue */
    uint8_t started; /* the current attempt has started (not just been handed out) */
    uint8_t cancel;  /* a cancel was asked for while it ran */
} task_t;

typedef struct task_edge {
    uint32_t to, next;
} task_edge_t;

typedef struct ttable {
    task_t *t;
    uint32_t n, cap;
    uint32_t *deps;
    size_t ndeps, capdeps;
    task_edge_t *edges;
    size_t nedges, capedges;
    tarena_t arena;
    idmap_t ids;
} ttable_t;

void ttable_init(ttable_t *tt);
void ttable_free(ttable_t *tt);
/* Room for n more tasks (and their ids) without growing. */
int ttable_reserve(ttable_t *tt, size_t n);
/* A new task with defaults (1 core, state pending); NULL when out of memory.
 * The pointer is valid until the next add. */
task_t *ttable_add(ttable_t *tt, uint32_t *idx);
/* Removes tasks from idx on (a submission that failed validation). */
void ttable_truncate(ttable_t *tt, uint32_t n);
uint32_t ttable_find(const ttable_t *tt, const char *id);
/* Adds dependency dep to the newest task: its deps slice and dep's edge list. */
int ttable_add_dep(ttable_t *tt, uint32_t task, uint32_t dep);
static inline int task_final(const task_t *t) { return t->state >= TSR_TASK_SUCCEEDED; }

#endif
