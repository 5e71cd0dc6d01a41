/* SPDX-License-Identifier: BSD-3-Clause */
/* The state of a training run and the functions of src/train that share it
 * (internal). The context is grouped by concern; each group is owned by the
 * file named beside it. */
#ifndef TSR_TRAIN_SETUP_H
#define TSR_TRAIN_SETUP_H
#include "tessera/ckpt.h"
#include "tessera/comm.h"
#include "tessera/data.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/options.h"
#include "tessera/runtime.h"
#include "tessera/train.h"
#include "train/fault.h"
#include "train/phase.h"

/* The data (setup.c): splits, the loader, this rank's slice of the test split. */
typedef struct tsr_train_data {
    char path[4096], test_path[4096]; /* resolved from the options */
    tsr_dataset_t *train, *test;
    tsr_loader_t *loader;
    float *test_x, *test_t;
    int32_t *test_y;
    size_t test_rows, test_total;
} tsr_train_data_t;

/* The model and its optimizer (setup.c, device.c); gpu NULL: on the CPU. */
typedef struct tsr_train_net {
    tsr_model_t *model;
    tsr_optim_t *optim;
    tsr_gpu_t *gpu;
} tsr_train_net_t;

/* The gradient engine and what it cost (setup.c, loop.c). */
typedef struct tsr_train_comm {
    tsr_comm_t *engine;
    double exposed, hidden; /* sums over this run's steps */
    long steps;
} tsr_train_comm_t;

/* Checkpoints (checkpoint.c). The engine lives on rank 0 only (every rank
 * holds the same weights); the counters are registered as 1-element datasets. */
typedef struct tsr_train_ckpt {
    tsr_ckpt_t *engine;
    int64_t steps, epoch, cursor, seed, global_batch;
    char *config_text;
    char model_json[65536];
} tsr_train_ckpt_t;

/* The shape of the run (setup.c) and where it stands (loop.c). */
typedef struct tsr_train_sched {
    size_t batch;           /* this rank's samples per optimizer step: micro x accum */
    size_t micro, accum;    /* a forward and backward's rows; micro-batches per step */
    int world_repro;        /* train.reproducible = world (setup.c checks what it needs) */
    size_t steps_per_epoch; /* optimizer steps */
    long epochs, total_steps;
    long stop_epoch;    /* the run ends after this epoch: epochs, or the options' until_epoch */
    int pending_status; /* TSR_STEP_* bits to share at the next step */
    int peer_failed;    /* stopped only because another rank failed */
    int blas_threads;
    char placement[128];
} tsr_train_sched_t;

/* Early stopping and the best model (early.c). The metric is global (an
 * allreduce), so every rank keeps the same counters; only rank 0, which
 * writes the model, keeps the best weights. */
typedef struct tsr_train_early {
    int on;      /* patience or keep_best: the counters are checkpointed */
    double best; /* the best metric so far; NAN: none yet */
    double best_loss, best_accuracy;
    int64_t best_step, bad, stopped;
    int64_t eval_step;  /* the step of the last evaluation noted */
    float *best_params; /* rank 0 with keep_best: parameters then buffers at best_step */
    size_t nparams, nbuffers;
} tsr_train_early_t;

/* Mixed precision (amp.c): train.precision and, for fp16, the loss scaler
 * (its fields are registered with the checkpoint engine) and a device
 * double for the unscaled gradients' sum of squares. */
typedef struct tsr_train_amp {
    tsr_precision_t prec;
    int scaling; /* fp16: dynamic loss scaling */
    tsr_loss_scaler_t scaler;
    double *dsumsq;
} tsr_train_amp_t;

typedef struct tsr_train_ctx {
    tsr_runtime_t *rt;
    const tsr_train_options_t *opt;
    int rank, world;
    tsr_train_data_t data;
    tsr_train_net_t net;
    tsr_train_comm_t comm;
    tsr_train_ckpt_t ckpt;
    tsr_train_sched_t sched;
    tsr_train_early_t early;
    tsr_train_amp_t amp;
    struct tsr_train_monitor *mon; /* coordinator link and per-rank timings (monitor.c) */
    struct tsr_perf *perf;         /* phase timers and PAPI counters (perf.c); NULL: [monitor] perf off */
    void *perf_all;                /* rank 0: every rank's counters, gathered (perf.c) */
    double perf_last;              /* rank 0: when they were last published */
    char gpu_busid[32];            /* this rank's GPU for NVML (perf.c); "": none */
    tsr_faults_t faults;           /* fault injection for tests (fault.h) */
    tsr_train_phases_t phases;     /* phase timers and the timeline (phase.h, tracing.c) */
} tsr_train_ctx_t;

/* Each step agrees on the ranks' status with one small allreduce; these are its bits. */
/* TSR_STEP_COMM: a rank's gradient engine failed, so no rank can finish the
 * reduction and none waits for it. */
enum { TSR_STEP_ERROR = 1, TSR_STEP_STOP = 2, TSR_STEP_COMM = 4 };

/* Where training starts: global step, epoch, step within the epoch. */
typedef struct tsr_train_pos {
    long step, epoch;
    size_t cursor;
} tsr_train_pos_t;

/* setup.c: opens data, binds, builds model, optimizer, loader and engine;
 * collective, agreeing after every phase that can fail on some ranks only. */
int tsr_train_setup(tsr_train_ctx_t *ctx, tsr_runtime_t *rt, const tsr_train_options_t *opt, int *failed_rank);
void tsr_train_teardown(tsr_train_ctx_t *ctx);

/* data.c: resolves the data paths, checks the output against the run's
 * inputs, opens the splits; the test slice; frees all of it. */
int tsr_train_data_open(tsr_train_ctx_t *ctx);
int tsr_train_data_test_slice(tsr_train_ctx_t *ctx);
void tsr_train_data_close(tsr_train_ctx_t *ctx);
/* spec.c: the model's spec from [model] and the data (labels validated);
 * *outputs: what the last layer must give. */
int tsr_train_model_spec(const tsr_train_ctx_t *ctx, tsr_model_spec_t *spec, size_t *outputs);
/* model_config.c: [model] -> the layer graph (the layers grammar, a list of
 * dense widths, or hidden), the input shape, the loss's options; loads the
 * plugins it names. outputs: the last layer's width. */
int tsr_train_model_graph(const tsr_train_ctx_t *ctx, size_t outputs, tsr_loss_t loss, tsr_model_spec_t *spec);
/* The built model's output width against the data's. */
int tsr_train_check_outputs(const tsr_train_ctx_t *ctx, const tsr_model_t *m, size_t outputs);
/* checkpoint.c: batch-norm running statistics (model buffers) from rank 0
 * to every rank, as PyTorch's DDP does, so evaluation and resumes agree.
 * Collective. */
int tsr_train_sync_buffers(tsr_train_ctx_t *ctx);

/* tracing.c: the timeline ([monitor] trace: clocks aligned to rank 0's,
 * collective; an unwritable path is a warning), written at checkpoints and
 * at the end; the bottleneck report from every rank's phase sums, logged by
 * rank 0 (collective); what its suggestions may name. */
int tsr_train_trace_setup(tsr_train_ctx_t *ctx);
void tsr_train_trace_save(tsr_train_ctx_t *ctx);
void tsr_train_trace_free(tsr_train_ctx_t *ctx);
int tsr_train_trace_report(tsr_train_ctx_t *ctx);
void tsr_train_trace_hints(const tsr_train_ctx_t *ctx, tsr_trace_hints_t *h);

/* metrics.c: the final report's top-5, per-class accuracy and confusion
 * matrix, logged by rank 0. Collective. */
int tsr_train_report_metrics(tsr_train_ctx_t *ctx);

/* device.c: runtime.device; on cuda, creates net.gpu (one GPU per rank,
 * nearest by hwloc) and moves the model and optimizer there. Collective. */
int tsr_train_device_setup(tsr_train_ctx_t *ctx, int *failed_rank);

/* loop.c: the epochs from start; fills res (losses, accuracy, steps, rate). */
int tsr_train_loop(tsr_train_ctx_t *ctx, const tsr_train_pos_t *start, tsr_train_result_t *res);
/* Mean test loss and accuracy over all ranks' slices; collective. */
int tsr_train_evaluate(tsr_train_ctx_t *ctx, double *loss, double *acc, long step);
/* NaN or Inf weights: the error that stops the run (TSR_EDIVERGED), or
 * TSR_OK. Free on the CPU; on a GPU it waits for the device. */
int tsr_train_check_finite(tsr_train_ctx_t *ctx, long now);

/* early.c: checks the options and sizes the best-model copy; registers
 * the counters (and best weights) with the checkpoint engine; after an
 * evaluation, notes it and sets *stop once patience runs out (every rank
 * alike); broadcasts the restored counters; before the model is written,
 * puts the best weights in (rank 0) and says so; frees. */
int tsr_train_early_setup(tsr_train_ctx_t *ctx);
int tsr_train_early_register(tsr_train_ctx_t *ctx);
int tsr_train_early_observe(tsr_train_ctx_t *ctx, long step, double loss, double accuracy, int *stop);
int tsr_train_early_resumed(tsr_train_ctx_t *ctx);
int tsr_train_early_finish(tsr_train_ctx_t *ctx, tsr_train_result_t *res);
void tsr_train_early_free(tsr_train_ctx_t *ctx);

/* amp.c: after the device set-up, the scaler (fp16) and its device
 * buffer; the scaler's fields registered with the checkpoint engine (rank
 * 0) and broadcast after a resume; the factor backward multiplies the
 * loss by (1 when not scaling); after the gradient sums, unscale: divides
 * them by the scale and checks them (*apply 0: skip this step's update,
 * the scale backs off); frees. */
int tsr_train_amp_setup(tsr_train_ctx_t *ctx);
int tsr_train_amp_register(tsr_train_ctx_t *ctx);
int tsr_train_amp_resumed(tsr_train_ctx_t *ctx);
float tsr_train_amp_loss_scale(const tsr_train_ctx_t *ctx);
int tsr_train_amp_unscale(tsr_train_ctx_t *ctx, float *grads, size_t n, int *apply);
void tsr_train_amp_free(tsr_train_ctx_t *ctx);

/* walltime.c (rank 0): the margin in seconds, or -1 when there is nothing
 * to watch; and, every step, a stop request once under the margin. */
double tsr_train_walltime_margin(tsr_train_ctx_t *ctx);
void tsr_train_walltime_check(tsr_train_ctx_t *ctx, double margin);

/* monitor.c: the coordinator link. Setup is collective: rank 0 starts the
 * coordinator if [serve] enabled. Step records one step's timings; publish
 * is collective (gathers per-rank timings) and hands rank 0's snapshot to
 * the coordinator; finish registers the model file. */
int tsr_train_monitor_setup(tsr_train_ctx_t *ctx, int *failed_rank);
/* comm: the reduction's exposed time this step; hidden: the part of the
 * reduction hidden behind compute (tsr_comm_last_hidden_seconds). */
void tsr_train_monitor_step(tsr_train_ctx_t *ctx, double step_seconds, double comm_seconds, double hidden_seconds);
typedef struct tsr_train_snapshot {
    const char *state;
    long step, epoch;
    double loss, test_loss, accuracy, samples_per_s;
} tsr_train_snapshot_t;
void tsr_train_monitor_publish(tsr_train_ctx_t *ctx, const tsr_train_snapshot_t *snap);
void tsr_train_monitor_finish(tsr_train_ctx_t *ctx, const char *model_path, int ok);
void tsr_train_monitor_destroy(tsr_train_ctx_t *ctx);

/* perf.c: [monitor] perf and papi_events. Setup is collective (a bad event
 * list stops every rank) and warns once (rank 0) of events this machine
 * cannot count; publish gathers every rank's counters and resource use for
 * the coordinator (collective; serve: rank 0's, else NULL); report logs
 * them at the end (collective; rank 0 logs). */
int tsr_train_perf_setup(tsr_train_ctx_t *ctx, int *failed_rank);
/* Rank 0: whether this publish should carry the counters (at most one a
 * second, as a resource sample costs tens of microseconds in some VMs;
 * always when force: the final snapshot). */
int tsr_train_perf_due(tsr_train_ctx_t *ctx, int force);
void tsr_train_perf_publish(tsr_train_ctx_t *ctx, struct tsr_serve *serve, long step);
void tsr_train_perf_report(tsr_train_ctx_t *ctx);
void tsr_train_perf_destroy(tsr_train_ctx_t *ctx);

/* checkpoint.c: creates the engine on rank 0 and registers the state. */
int tsr_train_ckpt_setup(tsr_train_ctx_t *ctx);
/* Restores per checkpoint.resume (none, auto or a path) on rank 0 and
 * broadcasts the state; collective. pos gets the position to start from. */
int tsr_train_ckpt_resume(tsr_train_ctx_t *ctx, tsr_train_pos_t *pos, int *failed_rank);
/* Rank 0: writes a checkpoint of the state after global step `step`, where
 * next is the position of the following batch. */
int tsr_train_ckpt_write(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next, int sync);
/* Rank 0, every step: a checkpoint if one is due, and every earlier write
 * that failed: with [checkpoint] on_error = stop its error (the message
 * names the step and the cause), with continue a warning each and TSR_OK. */
int tsr_train_ckpt_step(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next);
/* Every rank, when the agreed status says stop: rank 0 writes the
 * checkpoint (synchronously) and says so; TSR_ESTOPPED or the write's error. */
int tsr_train_ckpt_stop(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next);
/* Rank 0, at the end: waits for the write in flight, writes the final
 * checkpoint (if [checkpoint] final and trained is set) and collects every
 * failure as tsr_train_ckpt_step does. */
int tsr_train_ckpt_end(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next, int trained);

#endif
