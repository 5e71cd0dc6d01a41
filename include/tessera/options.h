/* SPDX-License-Identifier: BSD-3-Clause */
/* The configuration parsed once into the typed options each module takes
 * (DESIGN.md): the CLI (and anything that builds runs from a configuration,
 * such as a sweep) maps a tsr_config_t onto these structs; the modules
 * never look keys up by string. Strings point into the configuration,
 * which must outlive the options. */
#ifndef TESSERA_OPTIONS_H
#define TESSERA_OPTIONS_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/ckpt.h"
#include "tessera/compute.h"
#include "tessera/config.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/serve.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TSR_PROGRESS_AUTO = 0, TSR_PROGRESS_BAR, TSR_PROGRESS_LINES, TSR_PROGRESS_NONE } tsr_progress_mode_t;
typedef enum { TSR_DEVICE_CPU = 0, TSR_DEVICE_CUDA, TSR_DEVICE_AUTO } tsr_device_choice_t;
/* [model] loss: by the kind of labels, or one of tsr_loss_t. */
enum { TSR_LOSS_AUTO = -1 };

typedef struct tsr_data_options {
    const char *path;      /* as given: relative to the config file's directory */
    const char *test_path; /* "": /X_test in path, if any */
    size_t memory_limit;   /* bytes: read a split into memory below this */
    int prefetch, validate;
} tsr_data_options_t;

typedef struct tsr_model_options {
    const char *layers; /* the layer graph, or dense widths "784,256,10"; "": hidden */
    const char *input;  /* a row's shape CxHxW; "": /X's shape attribute, else flat */
    long hidden[TSR_MODEL_MAX_LAYERS / 2];
    int nhidden;
    tsr_act_t activation;
    int loss;     /* TSR_LOSS_AUTO or a tsr_loss_t */
    long outputs; /* 0: from the data */
    double label_smoothing, huber_delta;
    const char *class_weights; /* comma-separated, one per class; "": all 1 */
    int sync_bn;
    const char *plugins;     /* layer plugins (.so), comma-separated, relative to plugins_dir */
    const char *plugins_dir; /* the config file's directory */
} tsr_model_options_t;

typedef struct tsr_loop_options {
    long epochs, log_every, max_steps;
    size_t batch_size;      /* samples per rank per forward and backward (a micro-batch) */
    long accumulate_steps;  /* micro-batches per optimizer step */
    long global_batch;      /* samples per optimizer step over all ranks; 0: from the two above */
    int reproducible_world; /* train.reproducible = world: gradients summed in a tree fixed by the global batch */
    uint64_t seed;
    const char *output; /* the model file, relative to the working directory */
    int eval, register_model;
    long eval_every;          /* steps between evaluations besides epoch ends; 0: none */
    long early_stop_patience; /* evaluations without improvement before stopping; 0: never */
    double early_stop_min_delta;
    int early_stop_accuracy; /* the metric: 1 test accuracy (higher is better), 0 test loss */
    int keep_best;
    tsr_nonfinite_t on_nonfinite;
    tsr_precision_t precision; /* GPU compute type (runtime.device = cuda) */
    double loss_scale;         /* fp16: the initial loss scale */
    long loss_scale_interval;  /* fp16: finite steps before the scale grows */
} tsr_loop_options_t;

typedef struct tsr_runtime_options {
    tsr_device_choice_t device;
    const char *comm;                /* back-end name or "auto" */
    const char *allreduce_algorithm; /* between ranks or node leaders: "auto" or a name (comm.h) */
    const char *topology;            /* runtime.topology: auto, none, node or a topology.conf (comm.h) */
    size_t bucket_bytes;
    int comm_fp32; /* runtime.comm_precision = fp32: half-precision runs reduce fp32 gradients */
    int bind, blas_threads, verbose;
    tsr_gemm_t gemm; /* the CPU's GEMM library (compute.h) */
    tsr_progress_mode_t progress;
    double watchdog_seconds, walltime_margin_seconds;
} tsr_runtime_options_t;

typedef struct tsr_ckpt_options {
    tsr_ckpt_config_t engine; /* dir, cadence, keep, async */
    int stop_on_error, final;
    const char *resume; /* "none", "auto" or a file */
} tsr_ckpt_options_t;

/* [monitor] perf and papi_events (src/perf). */
typedef struct tsr_perf_options {
    int on;                  /* phase timers and resource use */
    const char *papi_events; /* "" or NULL: none */
} tsr_perf_options_t;
/* [monitor]: the timeline (src/trace). */
typedef struct tsr_monitor_options {
    const char *trace;   /* per-rank Chrome trace files ("" or NULL: none), from the working directory */
    size_t trace_buffer; /* events kept per thread; the oldest are dropped past it */
} tsr_monitor_options_t;
/* Callbacks for a program that runs trainings (a sweep); not configuration
 * keys. Each may be NULL; they are called on every rank of the run. step:
 * after each optimizer step, between the run's collectives (it must not
 * make collectives on the run's ranks). epoch: after each epoch's end and
 * evaluation (test_loss and test_accuracy NaN without evaluation). */
typedef struct tsr_train_hooks {
    void (*step)(void *arg, long step);
    void (*epoch)(void *arg, long epoch, double train_loss, double test_loss, double test_accuracy);
    void *arg;
} tsr_train_hooks_t;

typedef struct tsr_train_options {
    tsr_data_options_t data;
    tsr_model_options_t model;
    tsr_loop_options_t train;
    tsr_optim_config_t optim; /* total_steps is set by training, from the data */
    tsr_runtime_options_t runtime;
    tsr_ckpt_options_t checkpoint;
    tsr_perf_options_t perf;
    int serve_enabled;
    tsr_serve_config_t serve;
    tsr_monitor_options_t monitor;
    /* The source: its text goes into model files and checkpoints, and
     * tsr_config_origin() says where a value came from in messages. */
    const tsr_config_t *config;
    /* Set by a sweep, never from the configuration (tsr_options_train leaves
     * them 0): stop after this epoch as a run of train.epochs would have
     * been there (the schedule keeps train.epochs; the final checkpoint and
     * the model file are written), so a later run with a later until_epoch
     * resumes from that checkpoint exactly. 0: train.epochs. */
    long until_epoch;
    tsr_train_hooks_t hooks;
} tsr_train_options_t;

/* Fills o from every section training reads. Values were checked when set;
 * this fails only on a value no module can take (TSR_EINVAL, naming it). */
TSR_API int tsr_options_train(const tsr_config_t *cfg, tsr_train_options_t *o);
/* The [serve] section. */
TSR_API int tsr_options_serve(const tsr_config_t *cfg, tsr_serve_config_t *o);

#ifdef __cplusplus
}
#endif
#endif
