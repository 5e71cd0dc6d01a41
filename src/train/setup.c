/* Training set-up: data, placement, model, optimizer, loader, engine. */
#include "train/setup.h"
#include "train/deadline.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/place.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* Binds this rank per the hwloc plan; failure is a warning, not an error. */
static void place_rank(tsr_train_ctx_t *ctx)
{
    hwloc_topology_t topo = NULL;
    tsr_place_plan_t *plan = NULL;
    int lr = tsr_runtime_local_rank(ctx->rt), ls = tsr_runtime_local_size(ctx->rt);
    int want = (int)tsr_config_get_long(ctx->cfg, "runtime", "blas_threads");
    ctx->blas_threads = want > 0 ? want : 1;
    snprintf(ctx->placement, sizeof ctx->placement, "unbound");
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0 ||
        tsr_place_plan_create(topo, ls, &plan) != TSR_OK) {
        tsr_log(TSR_LOG_WARN, "placement: cannot plan bindings (%s); running unbound", tsr_last_error());
        goto out;
    }
    if (want <= 0)
        ctx->blas_threads = tsr_place_plan_ncores(plan, lr) > 0 ? tsr_place_plan_ncores(plan, lr) : 1;
    if (tsr_config_get_bool(ctx->cfg, "runtime", "bind")) {
        char set[96];
        tsr_place_plan_cpuset_string(plan, lr, set, sizeof set);
        if (tsr_place_bind(topo, plan, lr) != TSR_OK)
            tsr_log(TSR_LOG_WARN, "placement: %s; running unbound", tsr_last_error());
        else
            snprintf(ctx->placement, sizeof ctx->placement, "cores %s numa %d", set, tsr_place_plan_numa(plan, lr));
    }
out:
    tsr_place_set_blas_threads(ctx->blas_threads);
    tsr_place_plan_destroy(plan);
    if (topo)
        hwloc_topology_destroy(topo);
}

/* Finding out after hours of training that the model cannot be written is
 * too late: check the output directory up front. */
static int check_output(const tsr_config_t *cfg)
{
    char dir[4096];
    const char *out = tsr_config_get(cfg, "train", "output");
    if (!out[0])
        return tsr_error_set(TSR_EINVAL, "[train] output is empty; expected a model file path");
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0)
        return tsr_error_set(TSR_EIO, "[train] output = %s (%s): directory %s is not writable: %s", out,
                             tsr_config_origin(cfg, "train", "output"), dir, strerror(errno));
    return TSR_OK;
}

static int open_data(tsr_train_ctx_t *ctx)
{
    const tsr_config_t *cfg = ctx->cfg;
    const char *p = tsr_config_get(cfg, "data", "path"), *tp = tsr_config_get(cfg, "data", "test_path");
    size_t limit = (size_t)tsr_config_get_long(cfg, "data", "memory_limit_mb") << 20;
    int rc;
    if (!p[0])
        return tsr_error_set(TSR_EINVAL, "[data] path is not set; expected the HDF5 dataset to train on");
    if ((rc = check_output(cfg)))
        return rc;
    if ((rc = tsr_path_join(tsr_config_dir(cfg), p, ctx->data_path, sizeof ctx->data_path)))
        return rc;
    if ((rc = tsr_dataset_open(ctx->data_path, TSR_SPLIT_TRAIN, limit, &ctx->train)))
        return rc;
    if (tp[0]) {
        if ((rc = tsr_path_join(tsr_config_dir(cfg), tp, ctx->test_path, sizeof ctx->test_path)))
            return rc;
        rc = tsr_dataset_open(ctx->test_path, tsr_dataset_has_test(ctx->test_path) ? TSR_SPLIT_TEST : TSR_SPLIT_TRAIN,
                              limit, &ctx->test);
    } else if (tsr_dataset_has_test(ctx->data_path)) {
        snprintf(ctx->test_path, sizeof ctx->test_path, "%s", ctx->data_path);
        rc = tsr_dataset_open(ctx->data_path, TSR_SPLIT_TEST, limit, &ctx->test);
    }
    if (rc)
        return rc;
    if (ctx->test && (tsr_dataset_dim(ctx->test) != tsr_dataset_dim(ctx->train) ||
                      tsr_dataset_is_labels(ctx->test) != tsr_dataset_is_labels(ctx->train) ||
                      tsr_dataset_target_dim(ctx->test) != tsr_dataset_target_dim(ctx->train)))
        return tsr_error_set(TSR_EDATA, "%s: the test split has %zu features and %s; expected %zu and %s like the "
                             "training split", ctx->test_path, tsr_dataset_dim(ctx->test),
                             tsr_dataset_is_labels(ctx->test) ? "labels" : "targets", tsr_dataset_dim(ctx->train),
                             tsr_dataset_is_labels(ctx->train) ? "labels" : "targets");
    return TSR_OK;
}

/* The model's shape from [model] and the data; validates labels against it. */
static int build_spec(tsr_train_ctx_t *ctx, tsr_model_spec_t *spec)
{
    const tsr_config_t *cfg = ctx->cfg;
    long hidden[TSR_MODEL_MAX_LAYERS];
    int nh = tsr_config_get_ints(cfg, "model", "hidden", hidden, TSR_MODEL_MAX_LAYERS - 1);
    int labels = tsr_dataset_is_labels(ctx->train);
    const char *loss = tsr_config_get(cfg, "model", "loss");
    long outputs = tsr_config_get_long(cfg, "model", "outputs");
    int rc;
    memset(spec, 0, sizeof *spec);
    spec->nlayers = nh + 1;
    spec->sizes[0] = tsr_dataset_dim(ctx->train);
    for (int i = 0; i < nh; i++)
        spec->sizes[i + 1] = (size_t)hidden[i];
    spec->act = (tsr_act_t)tsr_act_parse(tsr_config_get(cfg, "model", "activation"));
    spec->loss = strcmp(loss, "auto") == 0 ? (labels ? TSR_LOSS_XENT : TSR_LOSS_MSE)
                 : strcmp(loss, "mse") == 0 ? TSR_LOSS_MSE : TSR_LOSS_XENT;
    if (spec->loss == TSR_LOSS_XENT && !labels)
        return tsr_error_set(TSR_EDATA, "%s: /y holds float targets but [model] loss = cross_entropy (%s) needs "
                             "int32 class labels", ctx->data_path, tsr_config_origin(cfg, "model", "loss"));
    if (spec->loss == TSR_LOSS_MSE && labels)
        return tsr_error_set(TSR_EDATA, "%s: /y holds class labels but [model] loss = mse (%s) needs float "
                             "targets", ctx->data_path, tsr_config_origin(cfg, "model", "loss"));
    if (labels) {
        /* Validation learns the class count; --set model.outputs fixes it. */
        if (tsr_config_get_bool(cfg, "data", "validate") || outputs == 0) {
            if ((rc = tsr_dataset_validate(ctx->train, (int)outputs)))
                return rc;
        }
        int classes = outputs ? (int)outputs : tsr_dataset_classes(ctx->train);
        if (ctx->test && (rc = tsr_dataset_validate(ctx->test, classes)))
            return rc;
        if (classes < 2)
            return tsr_error_set(TSR_EDATA, "%s: /y has only %d class; expected at least 2", ctx->data_path,
                                 classes);
        spec->sizes[spec->nlayers] = (size_t)classes;
    } else {
        size_t k = tsr_dataset_target_dim(ctx->train);
        if (outputs && (size_t)outputs != k)
            return tsr_error_set(TSR_EINVAL, "[model] outputs = %ld (%s) but %s has %zu targets per row", outputs,
                                 tsr_config_origin(cfg, "model", "outputs"), ctx->data_path, k);
        if (tsr_config_get_bool(cfg, "data", "validate") &&
            ((rc = tsr_dataset_validate(ctx->train, 0)) || (ctx->test && (rc = tsr_dataset_validate(ctx->test, 0)))))
            return rc;
        spec->sizes[spec->nlayers] = k;
    }
    return TSR_OK;
}

static int read_test_slice(tsr_train_ctx_t *ctx)
{
    if (!ctx->test || !tsr_config_get_bool(ctx->cfg, "train", "eval"))
        return TSR_OK;
    size_t t = tsr_dataset_rows(ctx->test), d = tsr_dataset_dim(ctx->test), k = tsr_dataset_target_dim(ctx->test);
    size_t lo = t * (size_t)ctx->rank / (size_t)ctx->world, hi = t * (size_t)(ctx->rank + 1) / (size_t)ctx->world;
    ctx->test_total = t;
    ctx->test_rows = hi - lo;
    if (ctx->test_rows == 0)
        return TSR_OK;
    ctx->test_x = malloc(ctx->test_rows * d * sizeof(float));
    if (tsr_dataset_is_labels(ctx->test))
        ctx->test_y = malloc(ctx->test_rows * sizeof(int32_t));
    else
        ctx->test_t = malloc(ctx->test_rows * k * sizeof(float));
    if (!ctx->test_x || (!ctx->test_y && !ctx->test_t))
        return tsr_error_set(TSR_ENOMEM, "out of memory for %zu test rows", ctx->test_rows);
    return tsr_dataset_read(ctx->test, lo, ctx->test_rows, ctx->test_x, ctx->test_y, ctx->test_t);
}

static int build_optim(tsr_train_ctx_t *ctx)
{
    const tsr_config_t *cfg = ctx->cfg;
    tsr_optim_config_t oc = {
        .kind = strcmp(tsr_config_get(cfg, "optim", "name"), "adamw") == 0 ? TSR_OPTIM_ADAMW : TSR_OPTIM_SGD,
        .lr = tsr_config_get_double(cfg, "optim", "lr"),
        .momentum = tsr_config_get_double(cfg, "optim", "momentum"),
        .weight_decay = tsr_config_get_double(cfg, "optim", "weight_decay"),
        .nesterov = tsr_config_get_bool(cfg, "optim", "nesterov"),
        .beta1 = tsr_config_get_double(cfg, "optim", "beta1"),
        .beta2 = tsr_config_get_double(cfg, "optim", "beta2"),
        .eps = tsr_config_get_double(cfg, "optim", "eps"),
        .schedule = strcmp(tsr_config_get(cfg, "optim", "schedule"), "cosine") == 0 ? TSR_SCHED_COSINE
                                                                                   : TSR_SCHED_CONSTANT,
        .warmup_steps = tsr_config_get_long(cfg, "optim", "warmup_steps"),
        .total_steps = ctx->total_steps,
        .min_lr = tsr_config_get_double(cfg, "optim", "min_lr"),
        .clip_norm = tsr_config_get_double(cfg, "optim", "clip_norm"),
    };
    if (oc.kind == TSR_OPTIM_SGD && oc.momentum >= 1)
        return tsr_error_set(TSR_EINVAL, "[optim] momentum = %g (%s): expected a value below 1", oc.momentum,
                             tsr_config_origin(cfg, "optim", "momentum"));
    if (oc.kind == TSR_OPTIM_ADAMW && (oc.beta1 >= 1 || oc.beta2 >= 1 || oc.eps <= 0))
        return tsr_error_set(TSR_EINVAL, "[optim] beta1 = %g, beta2 = %g, eps = %g: expected betas below 1 and eps "
                             "above 0", oc.beta1, oc.beta2, oc.eps);
    return tsr_optim_create(&oc, tsr_model_nparams(ctx->model), &ctx->optim);
}

int tsr_train_setup(tsr_train_ctx_t *ctx, tsr_runtime_t *rt, const tsr_config_t *cfg, int *failed_rank)
{
    tsr_model_spec_t spec;
    int rc;
    memset(ctx, 0, sizeof *ctx);
    ctx->rt = rt;
    ctx->cfg = cfg;
    ctx->rank = tsr_runtime_rank(rt);
    ctx->world = tsr_runtime_size(rt);
    ctx->batch = (size_t)tsr_config_get_long(cfg, "train", "batch_size");
    ctx->epochs = tsr_config_get_long(cfg, "train", "epochs");
    ctx->fault_rank = ctx->stall_rank = -1;
    const char *fault = getenv("TSR_FAULT_KILL");
    if (fault && sscanf(fault, "%d:%ld", &ctx->fault_rank, &ctx->fault_step) != 2)
        ctx->fault_rank = -1;
    fault = getenv("TSR_FAULT_STALL");
    if (fault && sscanf(fault, "%d:%ld", &ctx->stall_rank, &ctx->stall_step) != 2)
        ctx->stall_rank = -1;
    ctx->watchdog = tsr_config_get_double(cfg, "runtime", "watchdog_seconds");
    /* Every collective of set-up waits forever for a rank that never comes. */
    if ((rc = tsr_deadline_create(ctx->watchdog, ctx->rank, &ctx->deadline)))
        return rc;
    tsr_deadline_arm(ctx->deadline, "set-up (data, model, placement)");
    ctx->wd_comm = MPI_COMM_NULL;
    if (MPI_Comm_dup(tsr_runtime_world(rt), &ctx->wd_comm) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "rank %d: MPI_Comm_dup for the watchdog failed", ctx->rank);

    rc = open_data(ctx);
    if (!rc)
        rc = build_spec(ctx, &spec);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        return rc;

    place_rank(ctx);
    rc = tsr_loader_create(ctx->train, ctx->rank, ctx->world, ctx->batch,
                           (uint64_t)tsr_config_get_long(cfg, "train", "seed"),
                           tsr_config_get_bool(cfg, "data", "prefetch"), &ctx->loader);
    if (rc == TSR_EINVAL)
        tsr_error_prefix(rc, "[train] batch_size = %zu (%s) with %d ranks: ", ctx->batch,
                         tsr_config_origin(cfg, "train", "batch_size"), ctx->world);
    if (!rc) {
        long max_steps = tsr_config_get_long(cfg, "train", "max_steps");
        ctx->steps_per_epoch = tsr_loader_steps_per_epoch(ctx->loader);
        ctx->total_steps = ctx->epochs * (long)ctx->steps_per_epoch;
        if (max_steps > 0 && max_steps < ctx->total_steps)
            ctx->total_steps = max_steps;
        rc = tsr_model_create(&spec, ctx->batch, &ctx->model);
    }
    if (!rc) {
        tsr_model_init(ctx->model, (uint64_t)tsr_config_get_long(cfg, "train", "seed"));
        rc = build_optim(ctx);
    }
    if (!rc)
        rc = read_test_slice(ctx);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        return rc;
    while (ctx->stall_step == 0 && ctx->rank == ctx->stall_rank)
        pause();
    tsr_deadline_arm(ctx->deadline, "set-up of the GPU and the gradient engine (MPI/NCCL communicators)");
    if ((rc = tsr_train_device_setup(ctx, failed_rank)))
        return rc;
    tsr_comm_options_t co = {
        .backend = tsr_config_get(cfg, "runtime", "comm"),
        .algorithm = tsr_config_get(cfg, "runtime", "allreduce_algorithm"),
        .bucket_bytes = (size_t)tsr_config_get_long(cfg, "runtime", "bucket_kb") << 10,
        .gpu = ctx->gpu,
    };
    rc = tsr_comm_create_opts(tsr_runtime_world(rt), &co, tsr_model_work_grads(ctx->model),
                              tsr_model_nparams(ctx->model), &ctx->comm);
    if (rc == TSR_ENOTSUP || rc == TSR_EINVAL)
        tsr_error_prefix(rc, "[runtime] comm = %s (%s): ", tsr_config_get(cfg, "runtime", "comm"),
                         tsr_config_origin(cfg, "runtime", "comm"));
    /* What a step's reduction costs with nothing to hide it behind, for
     * the hidden-time figures (the gradients are still zero here). */
    if (!rc)
        rc = tsr_comm_calibrate(ctx->comm, 5);
    return tsr_runtime_agree(rt, rc, failed_rank);
}

void tsr_train_teardown(tsr_train_ctx_t *ctx)
{
    tsr_train_monitor_destroy(ctx);
    if (ctx->wd_comm != MPI_COMM_NULL)
        MPI_Comm_free(&ctx->wd_comm);
    tsr_ckpt_destroy(ctx->ckpt);
    free(ctx->config_text);
    tsr_comm_destroy(ctx->comm);
    tsr_loader_destroy(ctx->loader);
    tsr_optim_destroy(ctx->optim);
    tsr_model_destroy(ctx->model);
    tsr_gpu_destroy(ctx->gpu);
    tsr_deadline_destroy(ctx->deadline);
    tsr_dataset_destroy(ctx->test);
    tsr_dataset_destroy(ctx->train);
    free(ctx->test_x);
    free(ctx->test_y);
    free(ctx->test_t);
    memset(ctx, 0, sizeof *ctx);
}
