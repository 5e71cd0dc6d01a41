/* SPDX-License-Identifier: BSD-3-Clause */
/* The timeline and the bottleneck report. A trace records begin/end events
 * per thread into rings preallocated at creation (no allocation and no lock
 * when recording: each thread owns one ring, claimed once with an atomic),
 * and writes them as Chrome trace / Perfetto JSON, one process track per
 * rank. When a ring is full the oldest events are overwritten and counted.
 * tsr_trace_report turns per-rank phase sums into the bottleneck report.
 * This module calls no MPI: src/train gathers and aligns clocks. */
#ifndef TESSERA_TRACE_H
#define TESSERA_TRACE_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an event is. The phases of a training step come first, in step
 * order; each step's time is split among them. */
typedef enum tsr_trace_kind {
    TSR_TRACE_DATA,     /* waiting for the loader's batch */
    TSR_TRACE_FORWARD,  /* forward passes */
    TSR_TRACE_BACKWARD, /* backward passes (buckets handed to the engine) */
    TSR_TRACE_REDUCE,   /* the step agreement and the wait for the gradient sums */
    TSR_TRACE_OPTIM,    /* the optimizer update */
    TSR_TRACE_CKPT,     /* the step's checkpoint (snapshot, or the whole write when synchronous) */
    TSR_TRACE_NPHASES,
    TSR_TRACE_STEP = TSR_TRACE_NPHASES, /* a whole step */
    TSR_TRACE_BUCKET,                   /* one bucket's reduction (arg: bucket index) */
    TSR_TRACE_CKPT_WRITE,               /* a checkpoint file written (writer thread; arg: step) */
    TSR_TRACE_TASK,                     /* a task run (arg: its index) */
    TSR_TRACE_HTTP_BATCH,               /* one batched model call of the coordinator (arg: rows) */
    TSR_TRACE_NKINDS,
    TSR_TRACE_NONE = -1 /* tsr_train_phase: no phase */
} tsr_trace_kind_t;

/* "data", "forward", ..., "http_batch"; NULL for an unknown kind. */
TSR_API const char *tsr_trace_kind_name(int kind);

typedef struct tsr_trace tsr_trace_t;

/* A trace for this rank, written to path (per-rank files: see tsr_trace_path)
 * with room for `events` events in each of up to `threads` threads' rings.
 * Nothing is written until tsr_trace_write. */
TSR_API int tsr_trace_create(const char *path, int rank, size_t events, int threads, tsr_trace_t **out);
/* Accepts NULL. The trace must not be the current one (tsr_trace_set_current). */
TSR_API void tsr_trace_destroy(tsr_trace_t *t);
/* Seconds to add to this process's monotonic clock to get rank 0's. */
TSR_API void tsr_trace_set_offset(tsr_trace_t *t, double offset_s);
/* Records an event now (ph 'B' begin, 'E' end) from the calling thread;
 * t NULL: nothing. Wait-free; never allocates. */
TSR_API void tsr_trace_event(tsr_trace_t *t, int kind, char ph, int64_t arg);
/* The same at a time already read (tsr_time_now's seconds). */
TSR_API void tsr_trace_event_at(tsr_trace_t *t, int kind, char ph, int64_t arg, double now);
/* Writes everything recorded so far (whole or not at all; its directory is
 * made if missing); may be called
 * again later (a checkpoint, then the end). Events whose B was overwritten
 * are left out of the file, so every track nests. */
TSR_API int tsr_trace_write(tsr_trace_t *t);
/* Events recorded (kept or not), and events lost (overwritten, or from
 * threads beyond the trace's count). */
TSR_API uint64_t tsr_trace_recorded(const tsr_trace_t *t);
TSR_API uint64_t tsr_trace_dropped(const tsr_trace_t *t);

/* The process's current trace, which modules without a handle (the
 * gradient engine, the checkpoint writer, tasks, the coordinator's batcher)
 * record into through tsr_trace_mark; NULL: none (one load, no clock). */
TSR_API void tsr_trace_set_current(tsr_trace_t *t);
TSR_API tsr_trace_t *tsr_trace_current(void);
TSR_API void tsr_trace_mark(int kind, char ph, int64_t arg);

/* The file of rank `rank` of a trace configured as path: "trace.json" ->
 * "trace.rank3.json" (before the last extension, or at the end). */
TSR_API int tsr_trace_path(const char *path, int rank, char *buf, size_t len);

/* Joins per-rank trace files into one (each input's ranks keep their own
 * process track; two inputs with the same rank are refused), written whole
 * or not at all. TSR_EDATA naming the file for an input that is not a
 * tessera trace. */
TSR_API int tsr_trace_merge(const char *const *inputs, int n, const char *output);

/* The bottleneck report. Per rank: seconds per phase summed over `steps`
 * steps, the step time those steps took in all, and the reduction's
 * exposed and hidden seconds (src/comm's figures). */
typedef struct tsr_trace_rank_sums {
    double phase[TSR_TRACE_NPHASES];
    double step_s, exposed_s, hidden_s;
    long steps;
} tsr_trace_rank_sums_t;

/* What the suggestions may name. */
typedef struct tsr_trace_hints {
    int prefetch;       /* data.prefetch */
    int streamed;       /* the training split is read from the file per batch (not held in memory) */
    size_t bucket_kb;   /* runtime.bucket_kb */
    int blas_threads;   /* the BLAS threads each rank uses */
    int cores_per_rank; /* cores each rank may run on (0: unknown) */
    int ckpt_async;     /* checkpoint.async */
} tsr_trace_hints_t;

enum { TSR_TRACE_REPORT_LEN = 4096, TSR_TRACE_SUGGEST_LEN = 512 };

typedef struct tsr_trace_report {
    int world;
    int slowest;                     /* the rank with the most compute per step */
    int slowest_waits;               /* 1: even the slowest rank spends most of its step waiting */
    double step_ms;                  /* mean step time over ranks */
    double share[TSR_TRACE_NPHASES]; /* mean share of the step per phase, 0..1 */
    double compute_ms[2];            /* per step: the slowest rank's compute, and the mean of the others */
    double imbalance;                /* max compute / mean compute over ranks (1: balanced) */
    double data_stall;               /* share of the step spent waiting for data (mean over ranks) */
    double ckpt_stall;               /* share of the step in checkpoints */
    double exposed_ms, hidden_share; /* reduction on the critical path per step; hidden / (hidden + exposed) */
    int nsuggest;
    char suggest[2][TSR_TRACE_SUGGEST_LEN];
    char text[TSR_TRACE_REPORT_LEN]; /* the report as lines (no trailing newline) */
} tsr_trace_report_t;

/* Fills rep from world ranks' sums. TSR_EINVAL when no rank took a step. */
TSR_API int tsr_trace_report(const tsr_trace_rank_sums_t *ranks, int world, const tsr_trace_hints_t *hints,
                             tsr_trace_report_t *rep);

#ifdef __cplusplus
}
#endif
#endif
