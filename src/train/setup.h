/* What tsr_train_run builds before its first step (internal). */
#ifndef TSR_TRAIN_SETUP_H
#define TSR_TRAIN_SETUP_H
#include "tessera/ckpt.h"
#include "tessera/comm.h"
#include "tessera/config.h"
#include "tessera/data.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/runtime.h"
#include "train/fault.h"

typedef struct tsr_train_ctx {
    tsr_runtime_t *rt;
    const tsr_config_t *cfg;
    int rank, world;
    char data_path[4096], test_path[4096];
    tsr_dataset_t *train, *test;
    tsr_loader_t *loader;
    tsr_model_t *model;
    tsr_optim_t *optim;
    tsr_comm_t *comm;
    tsr_gpu_t *gpu;  /* NULL: training on the CPU */
    double comm_exposed, comm_hidden; /* sums over this run's steps */
    long comm_steps;
    size_t batch, steps_per_epoch;
    long epochs, total_steps;
    /* This rank's slice of the test split, read once. */
    float *test_x, *test_t;
    int32_t *test_y;
    size_t test_rows, test_total;
    int blas_threads;
    char placement[128];
    /* Checkpoints (the engine lives on rank 0 only: every rank holds the
     * same weights). Counters are registered as 1-element datasets. */
    tsr_ckpt_t *ckpt;
    int64_t ck_steps, ck_epoch, ck_cursor, ck_seed, ck_global_batch;
    char *config_text;
    char model_json[65536];
    int pending_status;  /* TSR_STEP_* bits to share at the next step */
    int peer_failed;     /* stopped only because another rank failed */
    tsr_faults_t faults; /* fault injection for tests (fault.h) */
    struct tsr_train_monitor *mon; /* coordinator link and per-rank timings */
} tsr_train_ctx_t;

/* Each step agrees on the ranks' status with one small allreduce; these are its bits. */
/* TSR_STEP_COMM: a rank's gradient engine failed, so no rank can finish the
 * reduction and none waits for it. */
enum { TSR_STEP_ERROR = 1, TSR_STEP_STOP = 2, TSR_STEP_COMM = 4 };

/* Opens data, binds, builds model, optimizer, loader and engine; collective,
 * agreeing after every phase that can fail on some ranks only. */
int tsr_train_setup(tsr_train_ctx_t *ctx, tsr_runtime_t *rt, const tsr_config_t *cfg, int *failed_rank);
void tsr_train_teardown(tsr_train_ctx_t *ctx);

/* [model] -> spec (model_config.c): the layer graph, input shape, loss
 * options; loads the plugins it names. outputs: the last layer's width. */
int tsr_train_model_spec(tsr_train_ctx_t *ctx, size_t outputs, tsr_loss_t loss, tsr_model_spec_t *spec);
/* The built model's output width against the data's. */
int tsr_train_check_outputs(const tsr_train_ctx_t *ctx, const tsr_model_t *m, size_t outputs);
/* Batch-norm running statistics (model buffers) from rank 0 to every rank,
 * as PyTorch's DDP does, so evaluation and resumes agree. Collective. */
int tsr_train_sync_buffers(tsr_train_ctx_t *ctx);

/* runtime.device: on cuda, creates ctx->gpu (one GPU per rank, nearest
 * by hwloc) and moves the model and optimizer there. Collective. */
int tsr_train_device_setup(tsr_train_ctx_t *ctx, int *failed_rank);

/* Where training starts: global step, epoch, step within the epoch. */
typedef struct tsr_train_pos {
    long step, epoch;
    size_t cursor;
} tsr_train_pos_t;

/* The coordinator link (src/train/monitor.c). Setup is collective: rank 0
 * starts the coordinator if [serve] enabled. Step records one step's
 * timings; publish is collective (gathers per-rank timings) and hands rank
 * 0's snapshot to the coordinator; finish registers the model file. */
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

/* Creates the checkpoint engine on rank 0 and registers the training state. */
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
/* Rank 0, at the end: waits for the write in flight, writes the final
 * checkpoint (if [checkpoint] final and trained is set) and collects every
 * failure as tsr_train_ckpt_step does. */
int tsr_train_ckpt_end(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next, int trained);

#endif
