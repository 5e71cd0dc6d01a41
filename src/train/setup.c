/* Training set-up: data, placement, model, optimizer, loader, engine. */
#include "train/setup.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/place.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* The gradient engine's waits are watched like every other collective. */
static void watch_poll(void *rt)
{
    tsr_runtime_watch_poll(rt);
}

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

/* Finding out after hours of training that the model cannot be written, or
 * that writing it replaces one of the run's own inputs, is too late: check
 * the output up front (the writer checks again when it renames). */
static int check_output(const tsr_train_ctx_t *ctx)
{
    const tsr_config_t *cfg = ctx->cfg;
    char dir[4096];
    const char *out = tsr_config_get(cfg, "train", "output"), *origin = tsr_config_origin(cfg, "train", "output");
    const char *resume = tsr_config_get(cfg, "checkpoint", "resume");
    const char *ckdir = tsr_config_get(cfg, "checkpoint", "dir");
    if (!out[0])
        return tsr_error_set(TSR_EINVAL, "[train] output is empty; expected a model file path");
    const char *inputs[4] = {ctx->data_path, ctx->test_path, tsr_config_file(cfg),
                             strcmp(resume, "none") && strcmp(resume, "auto") ? resume : NULL};
    int rc = tsr_file_check_output(out, inputs, 4);
    if (rc)
        return tsr_error_prefix(rc, "[train] output (%s): ", origin);
    /* Checkpoints replace ckpt-<step>.h5 files there and retention deletes
     * old ones: neither the model nor an input may carry such a name. */
    const char *const owned[4] = {out, ctx->data_path, ctx->test_path, tsr_config_file(cfg)};
    const char *const role[4] = {"[train] output", "[data] path", "[data] test_path", "the config file"};
    for (int i = 0; i < 4; i++)
        if (owned[i][0] && tsr_ckpt_dir_owns(ckdir, owned[i]))
            return tsr_error_set(TSR_EINVAL, "%s %s is named like a checkpoint in [checkpoint] dir = %s, where "
                                 "checkpoints are replaced and old ones deleted; use another name or directory",
                                 role[i], owned[i], ckdir);
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0)
        return tsr_error_set(TSR_EIO, "[train] output = %s (%s): directory %s is not writable: %s", out, origin, dir,
                             strerror(errno));
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
    if ((rc = tsr_path_join(tsr_config_dir(cfg), p, ctx->data_path, sizeof ctx->data_path)))
        return rc;
    if (tp[0] && (rc = tsr_path_join(tsr_config_dir(cfg), tp, ctx->test_path, sizeof ctx->test_path)))
        return rc;
    if ((rc = check_output(ctx)))
        return rc;
    if ((rc = tsr_dataset_open(ctx->data_path, TSR_SPLIT_TRAIN, limit, &ctx->train)))
        return rc;
    if (tp[0]) {
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

/* The model's shape from [model] and the data; validates labels against
 * it. *outputs: what the last layer must give. */
static int build_spec(tsr_train_ctx_t *ctx, tsr_model_spec_t *spec, size_t *outputs_out)
{
    const tsr_config_t *cfg = ctx->cfg;
    int labels = tsr_dataset_is_labels(ctx->train);
    const char *lname = tsr_config_get(cfg, "model", "loss");
    long outputs = tsr_config_get_long(cfg, "model", "outputs");
    int rc;
    tsr_loss_t loss = strcmp(lname, "auto") == 0 ? (labels ? TSR_LOSS_XENT : TSR_LOSS_MSE)
                                                 : (tsr_loss_t)tsr_loss_parse(lname);
    size_t k_out;
    if (loss == TSR_LOSS_XENT && !labels)
        return tsr_error_set(TSR_EDATA, "%s: /y holds float targets but [model] loss = cross_entropy (%s) needs "
                             "int32 class labels", ctx->data_path, tsr_config_origin(cfg, "model", "loss"));
    if ((loss == TSR_LOSS_MSE || loss == TSR_LOSS_HUBER) && labels)
        return tsr_error_set(TSR_EDATA, "%s: /y holds class labels but [model] loss = %s (%s) needs float "
                             "targets", ctx->data_path, lname, tsr_config_origin(cfg, "model", "loss"));
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
        if (loss == TSR_LOSS_BCE && classes != 2)
            return tsr_error_set(TSR_EDATA, "%s: /y has %d classes but [model] loss = bce (%s) on labels needs 0 "
                                 "and 1 (or float targets)", ctx->data_path, classes,
                                 tsr_config_origin(cfg, "model", "loss"));
        k_out = loss == TSR_LOSS_BCE ? 1 : (size_t)classes;
    } else {
        size_t k = tsr_dataset_target_dim(ctx->train);
        if (outputs && (size_t)outputs != k)
            return tsr_error_set(TSR_EINVAL, "[model] outputs = %ld (%s) but %s has %zu targets per row", outputs,
                                 tsr_config_origin(cfg, "model", "outputs"), ctx->data_path, k);
        if (tsr_config_get_bool(cfg, "data", "validate") &&
            ((rc = tsr_dataset_validate(ctx->train, 0)) || (ctx->test && (rc = tsr_dataset_validate(ctx->test, 0)))))
            return rc;
        k_out = k;
    }
    *outputs_out = k_out;
    return tsr_train_model_spec(ctx, k_out, loss, spec);
}

/* The model's sums over ranks (synchronised batch norm), watched. */
static int model_allreduce(double *buf, int n, void *rt)
{
    return tsr_runtime_allreduce(rt, MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, "the batch-norm statistics", -1);
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
        .on_nonfinite = strcmp(tsr_config_get(cfg, "train", "on_nonfinite"), "skip_step") == 0 ? TSR_NONFINITE_SKIP
                                                                                               : TSR_NONFINITE_STOP,
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
    tsr_model_spec_t *spec = calloc(1, sizeof *spec);
    size_t outputs = 0;
    int rc;
    memset(ctx, 0, sizeof *ctx);
    if (!spec)
        return tsr_error_set(TSR_ENOMEM, "out of memory");
    ctx->rt = rt;
    ctx->cfg = cfg;
    ctx->rank = tsr_runtime_rank(rt);
    ctx->world = tsr_runtime_size(rt);
    ctx->batch = (size_t)tsr_config_get_long(cfg, "train", "batch_size");
    ctx->epochs = tsr_config_get_long(cfg, "train", "epochs");
    tsr_faults_read(&ctx->faults);
    /* From here every collective is watched: a rank that never comes is named. */
    if ((rc = tsr_runtime_watchdog_start(rt, tsr_config_get_double(cfg, "runtime", "watchdog_seconds"))))
        return rc;

    rc = open_data(ctx);
    if (!rc)
        rc = build_spec(ctx, spec, &outputs);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank))) {
        free(spec);
        return rc;
    }

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
        rc = tsr_model_create(spec, ctx->batch, &ctx->model);
        if (rc == TSR_EINVAL && tsr_config_get(cfg, "model", "layers")[0])
            tsr_error_prefix(rc, "[model] layers (%s): ", tsr_config_origin(cfg, "model", "layers"));
        if (!rc)
            rc = tsr_train_check_outputs(ctx, ctx->model, outputs);
    }
    free(spec);
    if (!rc) {
        uint64_t seed = (uint64_t)tsr_config_get_long(cfg, "train", "seed");
        tsr_model_init(ctx->model, seed);
        tsr_model_set_rng(ctx->model, seed, ctx->rank);
        if (ctx->world > 1)
            tsr_model_set_allreduce(ctx->model, model_allreduce, rt);
        rc = build_optim(ctx);
    }
    if (!rc)
        rc = read_test_slice(ctx);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        return rc;
    tsr_fault_point(&ctx->faults, ctx->rank, "setup");
    /* Communicators, windows and NCCL are made by blocking calls nobody can
     * watch: arrive first (watched), so a missing rank is named here. */
    tsr_runtime_phase(rt, "set-up of the GPU and the gradient engine (MPI/NCCL communicators)");
    if ((rc = tsr_runtime_barrier(rt, "the start of the GPU and gradient engine set-up")))
        return rc;
    if ((rc = tsr_train_device_setup(ctx, failed_rank)))
        return rc;
    rc = tsr_comm_create_gpu(tsr_runtime_world(rt), tsr_config_get(cfg, "runtime", "comm"), ctx->gpu,
                             tsr_model_work_grads(ctx->model), tsr_model_nparams(ctx->model),
                             (size_t)tsr_config_get_long(cfg, "runtime", "bucket_kb") << 10, &ctx->comm);
    if (rc == TSR_ENOTSUP || rc == TSR_EINVAL)
        tsr_error_prefix(rc, "[runtime] comm = %s (%s): ", tsr_config_get(cfg, "runtime", "comm"),
                         tsr_config_origin(cfg, "runtime", "comm"));
    if (!rc)
        tsr_comm_set_idle(ctx->comm, watch_poll, rt);
    tsr_runtime_phase(rt, NULL);
    /* What a step's reduction costs with nothing to hide it behind, for
     * the hidden-time figures (the gradients are still zero here). */
    if (!rc) {
        tsr_runtime_watch_begin(rt, "the gradient engine's calibration", -1);
        rc = tsr_comm_calibrate(ctx->comm, 5);
        tsr_runtime_watch_end(rt);
    }
    return tsr_runtime_agree(rt, rc, failed_rank);
}

void tsr_train_teardown(tsr_train_ctx_t *ctx)
{
    tsr_train_monitor_destroy(ctx);
    tsr_ckpt_destroy(ctx->ckpt);
    free(ctx->config_text);
    /* Freeing windows and communicators waits for every rank. */
    if (ctx->rt && ctx->comm)
        tsr_runtime_phase(ctx->rt, "the end of training (freeing the gradient engine)");
    tsr_comm_destroy(ctx->comm);
    if (ctx->rt)
        tsr_runtime_phase(ctx->rt, NULL);
    tsr_loader_destroy(ctx->loader);
    tsr_optim_destroy(ctx->optim);
    tsr_model_destroy(ctx->model);
    tsr_gpu_destroy(ctx->gpu);
    tsr_dataset_destroy(ctx->test);
    tsr_dataset_destroy(ctx->train);
    free(ctx->test_x);
    free(ctx->test_y);
    free(ctx->test_t);
    memset(ctx, 0, sizeof *ctx);
}
