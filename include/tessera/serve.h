/* SPDX-License-Identifier: BSD-3-Clause */
/* The rank-0 coordinator: an HTTP server (libmicrohttpd) on its own threads
 * that answers status, Prometheus metrics, predictions (dynamically batched,
 * cached), the cache and the model registry. The training loop publishes
 * snapshots to it; it never calls MPI and never blocks the caller on HTTP
 * traffic. Routes and their JSON are documented in README.md. */
#ifndef TESSERA_SERVE_H
#define TESSERA_SERVE_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/model.h"
#include "tessera/perf.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_serve tsr_serve_t;

typedef struct tsr_serve_config {
    const char *bind;           /* address to listen on; NULL: "127.0.0.1" */
    int port;                   /* 0: any free port (see the address file) */
    const char *token_file;     /* bearer token file (not world-readable); required unless bind is loopback */
    const char *run_dir;        /* where "coordinator.addr" (host:port) is written; NULL: "." */
    const char *registry;       /* model registry directory; NULL or "": the /models routes answer 404 */
    int max_batch;              /* rows per model call (>= 1) */
    int max_delay_us;           /* how long the first queued request waits for the batch to fill */
    size_t cache_mb;            /* prediction cache budget; 0: no cache */
    double cache_ttl_s;         /* prediction cache TTL; 0: entries never expire */
    size_t max_body_kb;         /* request body limit (uploads to POST /models: max_upload_mb) */
    size_t max_upload_mb;       /* model upload limit */
    int threads;                /* HTTP threads; 0: one per core this process may run on */
    int max_connections;        /* open connections in all (more wait in the kernel's backlog) */
    int max_connections_per_ip; /* open connections from one client address */
    int header_timeout_s;       /* a request's headers (or an idle keep-alive connection's next ones) within this */
    size_t max_model_params;    /* parameters a model file may declare (serve, uploads, registry, export route) */
} tsr_serve_config_t;

/* Defaults: 127.0.0.1, port 0, run_dir ".", registry "registry", max_batch
 * 64, max_delay_us 500, cache 64 MB / 300 s, body 1024 KB, uploads 512 MB,
 * 2048 connections, 512 per client address, headers within 10 s, models of
 * up to TSR_MODEL_MAX_PARAMS_DEFAULT parameters. */
TSR_API void tsr_serve_config_default(tsr_serve_config_t *cfg);
/* (tsr_options_serve in options.h fills it from a configuration's [serve].) */

/* One point of the dashboard's plots; NaN: unknown. */
typedef struct tsr_serve_point {
    int64_t step;
    double loss, accuracy;
    double test_loss, samples_per_s;
} tsr_serve_point_t;

/* A training snapshot. Every pointer may be NULL; arrays have world_size
 * elements; the coordinator copies what it needs before returning. NaN
 * marks an unknown number (it is shown as null). */
typedef struct tsr_serve_status {
    const char *state;         /* "training", "evaluating", "checkpointing", "done", "failed"; NULL: "training" */
    int64_t step, total_steps; /* total_steps 0: unknown */
    int epoch, epochs;
    int64_t samples_seen;
    double loss, test_loss, accuracy, samples_per_s, elapsed_s;
    int world_size;
    const char *const *placement;                                 /* per rank, e.g. "node03 cores 0-7 numa 0" */
    const double *step_time_min, *step_time_mean, *step_time_max; /* per rank, seconds */
    const double *comm_time_min, *comm_time_mean, *comm_time_max; /* per rank, seconds: exposed reduction time */
    const double *comm_hidden_mean; /* per rank, seconds per step of reduction hidden behind compute */
    double comm_reference_s;        /* a blocking allreduce of the gradients, seconds (0: unknown) */
    const char *checkpoint;         /* e.g. "saved step 400 (ckpt/step-400.h5)"; NULL: "none" */
    /* Where the step time goes: seconds per step of each phase of
     * tessera/trace.h (TSR_TRACE_NPHASES arrays of world_size, phase-major:
     * [phase * world_size + rank]); NULL: unknown. The bottleneck report's
     * text and suggestions, and the rank it names slowest (-1: none). */
    const double *phase_mean;
    const char *bottleneck;
    const char *const *suggestions;
    int nsuggestions, slowest_rank;
    /* Points to append to the plot's history. When NULL, a publish with a
     * new step appends (step, loss, accuracy) by itself. */
    const tsr_serve_point_t *history;
    size_t nhistory;
} tsr_serve_status_t;

/* Starts the server on its own threads and writes "<host>:<port>\n" to
 * <run_dir>/coordinator.addr atomically. Refuses a non-loopback bind without
 * a token file, and a token file that others can read. cfg and its strings
 * need to live only during the call. */
TSR_API int tsr_serve_create(const tsr_serve_config_t *cfg, tsr_serve_t **out);
/* Stops the server, answers queued predictions with 503, removes the
 * address file. Accepts NULL. */
TSR_API void tsr_serve_destroy(tsr_serve_t *s);

/* The port actually bound (useful with port 0). */
TSR_API int tsr_serve_port(const tsr_serve_t *s);

/* Copies m's weights for /predict (a new architecture is fine too) and
 * invalidates the prediction cache. Takes a mutex only for the copy. */
TSR_API int tsr_serve_publish_model(tsr_serve_t *s, const tsr_model_t *m);
/* Names the published model in /status (e.g. its file); may be NULL. */
TSR_API int tsr_serve_set_model_source(tsr_serve_t *s, const char *source);
/* Replaces the training snapshot shown by /status, /metrics and the dashboard. */
TSR_API int tsr_serve_publish_status(tsr_serve_t *s, const tsr_serve_status_t *st);
/* The ranks' counters and resource use (src/perf), shown in /status
 * ("perf") and /metrics with rank and host labels; arrays have world_size
 * elements (counters: world_size x TSR_COUNTER_COUNT). Copied. Until one is
 * published, the coordinator reports its own process instead. */
typedef struct tsr_serve_perf {
    int world_size;
    int nevents;
    const char *const *events; /* the PAPI events of totals' counts */
    const char *note;          /* what was not counted and why; may be NULL */
    const char *const *hosts;
    const tsr_perf_totals_t *totals;
    const tsr_resource_t *resources;
    const double *counters;
} tsr_serve_perf_t;
TSR_API int tsr_serve_publish_perf(tsr_serve_t *s, const tsr_serve_perf_t *p);
/* Adds a model file to the coordinator's registry as name (NULL: from the
 * file name); the new id is written to id (may be NULL) of idlen bytes. */
TSR_API int tsr_serve_register_model(tsr_serve_t *s, const char *model_path, const char *name, char *id, size_t idlen);

/* A sweep's table (the JSON of DIR/trials.json), answered by GET /sweep
 * and plotted by the dashboard; copied. Without one /sweep answers 404. */
TSR_API int tsr_serve_publish_sweep(tsr_serve_t *s, const char *json);

/* Task farm routes: GET /tasks[?state=S&tag=T&offset=N&limit=N], GET
 * /tasks/{id}, POST /tasks (task-file lines), POST /tasks/{id}/cancel and
 * POST /tasks/cancel?tag=T. The farm answers them: the functions run on
 * HTTP threads, return a malloc'd JSON body (NULL: out of memory) and set
 * *status; they never call MPI. metrics returns Prometheus text appended to
 * /metrics (may be NULL). Without a farm the routes answer 404. */
typedef struct tsr_serve_tasks {
    void *ctx;
    char *(*list)(void *ctx, const char *state, const char *tag, long offset, long limit, int *status);
    char *(*get)(void *ctx, const char *id, int *status);
    char *(*submit)(void *ctx, const char *body, size_t len, int *status);
    char *(*cancel)(void *ctx, const char *id, const char *tag, int *status);
    char *(*metrics)(void *ctx);
} tsr_serve_tasks_t;

/* Installs a farm's routes (copied), or removes them (NULL), waiting for
 * calls in progress to return. */
TSR_API int tsr_serve_set_tasks(tsr_serve_t *s, const tsr_serve_tasks_t *ops);

#ifdef __cplusplus
}
#endif
#endif
