/* SPDX-License-Identifier: BSD-3-Clause */
/* Where the time goes (src/perf): phase timers and PAPI hardware counters
 * charged to the phase of the step being left, tessera's own counters
 * (published as PAPI software-defined events, "sde:::tessera::<name>"),
 * and the process's resource use (CPU time, memory, I/O, context switches,
 * the GPU through NVML opened with dlopen). Builds without PAPI keep the
 * phase timers, the counters and the resource use. */
#ifndef TESSERA_PERF_H
#define TESSERA_PERF_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The phases of a training step. OTHER is everything outside them (logging,
 * publishing, set-up), so the phases' seconds add up to the wall time. */
typedef enum tsr_phase {
    TSR_PHASE_OTHER = 0,
    TSR_PHASE_DATA,       /* waiting for the loader's batch */
    TSR_PHASE_FORWARD,    /* forward and the loss */
    TSR_PHASE_BACKWARD,   /* backward (buckets start reducing as layers finish) */
    TSR_PHASE_REDUCE,     /* the step agreement and the wait for the gradient sums */
    TSR_PHASE_OPTIMIZER,  /* the update and its finiteness check */
    TSR_PHASE_CHECKPOINT, /* a checkpoint's snapshot and (synchronous) write */
    TSR_PHASE_EVAL,       /* evaluation on the test split */
    TSR_PHASE_TASK,       /* the task farm's loop: running and tending tasks */
    TSR_PHASE_COUNT
} tsr_phase_t;

/* "other", "data", "forward", ... (NULL for a value out of range). */
TSR_API const char *tsr_phase_name(tsr_phase_t ph);

enum { TSR_PERF_MAX_EVENTS = 8 };

typedef struct tsr_perf tsr_perf_t;

/* events: a comma-separated list of PAPI event names (presets such as
 * PAPI_TOT_INS, native names, "component:::event"); NULL or "": phase
 * timers only. Unknown names and components that do not exist fail with
 * TSR_EINVAL naming them and the close names PAPI knows. Events the
 * machine cannot count (no PMU in a VM, perf_event_paranoid, a disabled
 * component) or not at once (too many for the hardware) are left out and
 * said once by tsr_perf_note; that is not an error. A build without PAPI
 * refuses a non-empty list with TSR_ENOTSUP. */
TSR_API int tsr_perf_create(const char *events, tsr_perf_t **out);
TSR_API void tsr_perf_destroy(tsr_perf_t *p);

/* Ends the phase under way (its seconds and event counts are charged to
 * it) and begins next. No allocation, no lock, no system call beyond the
 * clock and the counters' read. Accepts NULL (does nothing). */
TSR_API void tsr_perf_phase(tsr_perf_t *p, tsr_phase_t next);
/* tsr_perf_phase at `now`, a tsr_time_now() the caller read already (one
 * clock read shared with its own timers: the training loop's phase hook).
 * The first call moves p from the TSC to that clock for good, so later
 * tsr_perf_phase calls read the same clock. */
TSR_API void tsr_perf_phase_at(tsr_perf_t *p, tsr_phase_t next, double now);
/* The phase under way. */
TSR_API tsr_phase_t tsr_perf_current(const tsr_perf_t *p);

/* What was left out and why (one line), or NULL when every event counts. */
TSR_API const char *tsr_perf_note(const tsr_perf_t *p);
/* Events counted (after dropping), and their names (an array of nevents). */
TSR_API int tsr_perf_nevents(const tsr_perf_t *p);
TSR_API const char *const *tsr_perf_events(const tsr_perf_t *p);

/* One rank's figures so far: plain doubles, so ranks can gather them as bytes. */
typedef struct tsr_perf_totals {
    double seconds[TSR_PHASE_COUNT]; /* time in each phase */
    double entries[TSR_PHASE_COUNT]; /* times each phase began */
    double counts[TSR_PHASE_COUNT][TSR_PERF_MAX_EVENTS];
} tsr_perf_totals_t;

/* Charges the phase under way up to now, then copies the totals. */
TSR_API void tsr_perf_totals(tsr_perf_t *p, tsr_perf_totals_t *out);

/* Figures derived from the events of one phase (or of all phases: ph < 0):
 * instructions per cycle (PAPI_TOT_INS / PAPI_TOT_CYC), GFLOP/s (PAPI_FP_OPS,
 * PAPI_SP_OPS or PAPI_DP_OPS per second), main-memory bytes (last-level cache
 * misses x 64). NaN where the events do not allow it. */
typedef struct tsr_perf_derived {
    double ipc, gflops, mem_bytes;
} tsr_perf_derived_t;
TSR_API void tsr_perf_derive(const char *const *events, int nevents, const tsr_perf_totals_t *t, int ph,
                             tsr_perf_derived_t *out);

/* tessera's own counters, process-wide, readable through PAPI as
 * "sde:::tessera::<name>" (tsr_counter_name) while the process runs. */
typedef enum tsr_counter {
    TSR_COUNTER_STEPS = 0,
    TSR_COUNTER_SAMPLES,
    TSR_COUNTER_REDUCED_BYTES_MPI, /* gradient bytes reduced by each back-end */
    TSR_COUNTER_REDUCED_BYTES_SHM,
    TSR_COUNTER_REDUCED_BYTES_NCCL,
    TSR_COUNTER_REDUCE_WAIT_NS, /* exposed reduction time */
    TSR_COUNTER_CKPT_BYTES,     /* checkpoint bytes written */
    TSR_COUNTER_CKPT_NS,        /* time spent writing them */
    TSR_COUNTER_CACHE_HITS,
    TSR_COUNTER_CACHE_MISSES,
    TSR_COUNTER_PREDICTIONS,     /* rows answered by /predict */
    TSR_COUNTER_TASKS_SUBMITTED, /* tasks by state: entered ... */
    TSR_COUNTER_TASKS_STARTED,
    TSR_COUNTER_TASKS_DONE,
    TSR_COUNTER_TASKS_FAILED,
    TSR_COUNTER_TASKS_CANCELLED,
    TSR_COUNTER_COUNT
} tsr_counter_t;

/* "steps", "samples", "reduced_bytes_mpi", ... */
TSR_API const char *tsr_counter_name(tsr_counter_t c);
/* One line saying what it counts. */
TSR_API const char *tsr_counter_help(tsr_counter_t c);
/* Atomic (relaxed) add; out-of-range counters are ignored. */
TSR_API void tsr_counter_add(tsr_counter_t c, int64_t v);
TSR_API int64_t tsr_counter_get(tsr_counter_t c);

/* The process's resource use now. GPU fields are NaN (gpu_found 0) where
 * NVML (libnvidia-ml.so.1) is absent or has no such device. */
typedef struct tsr_resource {
    double cpu_user_s, cpu_system_s;
    double rss_bytes, peak_rss_bytes, virtual_bytes;
    double read_bytes, write_bytes;        /* /proc/self/io: storage bytes; NaN where unreadable */
    double ctx_voluntary, ctx_involuntary; /* context switches */
    double children_cpu_s;                 /* user + system of reaped children (shell tasks) */
    double gpu_found, gpu_util_ratio, gpu_mem_used_bytes, gpu_mem_total_bytes, gpu_power_w;
} tsr_resource_t;

/* gpu_pci_busid: the GPU this process uses ("0000:3b:00.0"), or NULL for none. */
TSR_API int tsr_resource_sample(const char *gpu_pci_busid, tsr_resource_t *out);
/* One line: "CPU 1.20 s user + 0.10 s system, RSS 45.2 MB (peak 50.1 MB),
 * read 0 B, written 1.2 MB, context switches 120 voluntary + 30 involuntary"
 * (and children's CPU, the GPU, when there are). */
TSR_API void tsr_resource_format(const tsr_resource_t *r, char *out, size_t len);
/* 0 B, 1.2 kB, 3.4 MB, ...; "?" for NaN. */
TSR_API void tsr_bytes_format(double bytes, char *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif
