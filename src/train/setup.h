/* What tsr_train_run builds before its first step (internal). */
#ifndef TSR_TRAIN_SETUP_H
#define TSR_TRAIN_SETUP_H
#include "tessera/comm.h"
#include "tessera/config.h"
#include "tessera/data.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/runtime.h"

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
    size_t batch, steps_per_epoch;
    long epochs, total_steps;
    /* This rank's slice of the test split, read once. */
    float *test_x, *test_t;
    int32_t *test_y;
    size_t test_rows, test_total;
    int blas_threads;
    char placement[128];
} tsr_train_ctx_t;

/* Each step agrees on the ranks' status with one small allreduce; these are its bits. */
enum { TSR_STEP_ERROR = 1 };

/* Opens data, binds, builds model, optimizer, loader and engine; collective,
 * agreeing after every phase that can fail on some ranks only. */
int tsr_train_setup(tsr_train_ctx_t *ctx, tsr_runtime_t *rt, const tsr_config_t *cfg, int *failed_rank);
void tsr_train_teardown(tsr_train_ctx_t *ctx);

#endif
