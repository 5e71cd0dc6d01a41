/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process tasks (the C API of tessera/tasks.h), internal:
 *   capi.c      tasks, dependencies, states, results, waiting
 *   pool.c      the threads: a global priority queue, per-thread deques
 *               filled in batches, stealing between threads, retry backoff
 *   capi_mpi.c  across ranks: rank 0 hands batches to the others
 *
 * Tasks live in chunks that never move (ids index them), so any thread
 * reads a task without a lock. A task's dependents hang off it as a
 * lock-free list of edges that its end closes (Treiber stack + CLOSED
 * mark): a dependency added after the end sees CLOSED and reads the final
 * state instead. States change by compare-and-swap, so a task released by
 * its last dependency and skipped or cancelled at once ends one way only. */
#ifndef TSR_TASKS_CAPI_H
#define TSR_TASKS_CAPI_H
#include "tasks/prioq.h"
#include "tessera/tasks.h"

#include <pthread.h>
#include <stdatomic.h>

enum { CHUNK_BITS = 16, CHUNK = 1 << CHUNK_BITS, MAX_CHUNKS = 1 << 16, MAX_FNS = 1024, INLINE = 16 };
#define EDGE_NONE 0xffffffffu
#define EDGE_CLOSED 0xfffffffeu

typedef struct ctask {
    _Atomic uint8_t state;
    _Atomic uint8_t flags; /* F_* */
    uint16_t attempts, retries;
    int32_t prio;
    uint32_t fn;
    _Atomic uint32_t nwait;    /* dependencies not yet succeeded, +1 while being submitted */
    _Atomic uint32_t dep_head; /* first edge to a dependent, EDGE_NONE or EDGE_CLOSED */
    int32_t rc;
    uint32_t arglen, reslen;
    float backoff_s, backoff_factor;
    float dur;      /* seconds the last attempt ran */
    uint32_t qnext; /* link in the farm's inbox (index + 1, 0 ends it) */
    union {
        unsigned char in[INLINE];
        void *p;
    } arg, res;
} ctask_t;

enum { F_ARG_HEAP = 1, F_RES_HEAP = 2, F_WAITED = 4, F_CANCEL = 8, F_CALLBACK = 16, F_REMOTE = 32 };

typedef struct cedge {
    uint32_t to, next;
} cedge_t;

typedef struct ccb {
    tsr_task_done_fn_t fn;
    void *user;
} ccb_t;

typedef struct cdeque {
    pthread_mutex_t mu;
    uint32_t *buf;
    size_t head, n, cap;
} cdeque_t;

typedef struct cthread {
    tsr_tasks_t *farm;
    int index;
    pthread_t th;
    cdeque_t dq;
    double ewma; /* seconds per task on this thread */
} cthread_t;

typedef struct cdelay {
    double at;
    uint32_t idx;
} cdelay_t;

typedef struct cremote cremote_t; /* capi_mpi.c */

struct tsr_task_ctx {
    tsr_tasks_t *farm;
    uint32_t idx;
    int attempt, rank;
    tsr_task_id_t id; /* as rank 0 numbers it */
};

struct tsr_tasks {
    tsr_tasks_config_t cfg;
    int rank, size, nthreads;
    _Atomic(ctask_t *) chunk[MAX_CHUNKS];
    _Atomic(cedge_t *) echunk[MAX_CHUNKS];
    _Atomic(ccb_t *) cbchunk[MAX_CHUNKS];
    pthread_mutex_t grow_mu;
    _Atomic uint64_t next_id, next_edge;
    _Atomic uint64_t submitted, finished, steals, remote_done;
    _Atomic uint64_t count[TSR_TASK_NSTATES];
    tsr_task_fn_t fns[MAX_FNS];
    _Atomic int nfns;
    /* ready tasks: pushed to a lock-free inbox (a stack of index + 1),
     * moved into the priority queue under qmu by whoever takes work */
    _Atomic uint32_t inbox;
    _Atomic size_t qn; /* prioq_size(&q), readable without qmu */
    _Atomic int nsleeping;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    prioq_t q;
    cdelay_t *delayed;
    size_t ndelayed, capdelayed;
    _Atomic int quit;
    int qoom;
    cthread_t *th;
    /* waiting */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    _Atomic uint64_t wake_at;
    _Atomic int waiters;
    /* across ranks */
    cremote_t *remote;
    pthread_t creator; /* the one thread that may call MPI */
    /* on ranks > 0: a finished local task goes back to rank 0 instead, and
     * a task's id is rank 0's */
    void (*on_local_end)(tsr_tasks_t *t, uint32_t idx);
    tsr_task_id_t (*id_of)(tsr_tasks_t *t, uint32_t idx);
};

/* capi.c */
ctask_t *capi_task(tsr_tasks_t *t, uint32_t idx);
/* A new task record (zeroed but for its fields), or NULL. */
ctask_t *capi_new(tsr_tasks_t *t, uint32_t *idx);
/* After an attempt: rc from the function; decides success, retry, failure. */
void capi_after_run(tsr_tasks_t *t, uint32_t idx, int rc);
/* Ends a task in a final state (dependents released or skipped, callback,
 * waiters woken). Only one caller may end a task: the CAS winner. */
void capi_finish(tsr_tasks_t *t, uint32_t idx, int state);
void capi_free_payload(ctask_t *c);
int capi_store_result(ctask_t *c, const void *data, size_t len);
int capi_fn_index(tsr_tasks_t *t, tsr_task_fn_t fn);

/* pool.c */
int pool_start(tsr_tasks_t *t);
void pool_stop(tsr_tasks_t *t);
/* Queues a ready task (its state already READY). */
void pool_push(tsr_tasks_t *t, uint32_t idx);
/* Queues a failed task to run again at monotonic time at. */
void pool_delay(tsr_tasks_t *t, uint32_t idx, double at);
/* Takes up to max ready tasks off the global queue (for other ranks). */
size_t pool_take(tsr_tasks_t *t, uint32_t *out, size_t max);
/* Runs one attempt on the calling thread. */
void pool_run(tsr_tasks_t *t, uint32_t idx, int rank);

/* capi_mpi.c */
int remote_create(tsr_tasks_t *t);
void remote_destroy(tsr_tasks_t *t);
/* Rank 0: moves tasks and results; returns how many moved. */
int remote_progress(tsr_tasks_t *t);

#endif
