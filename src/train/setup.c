/* SPDX-License-Identifier: BSD-3-Clause */
/* Training set-up: data, placement, model, optimizer, loader, engine. */
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/place.h"
#include "common/fileutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The gradient engine's waits are watched like every other collective. */
static void watch_poll(void *rt) { tsr_runtime_watch_poll(rt); }

/* Binds this rank per the hwloc plan; failure is a warning, not an error. */
static void place_rank(tsr_train_ctx_t *ctx)
{
    hwloc_topology_t topo = NULL;
    tsr_place_plan_t *plan = NULL;
    int lr = tsr_runtime_local_rank(ctx->rt), ls = tsr_runtime_local_size(ctx->rt);
    tsr_train_sched_t *sc = &ctx->sched;
    int want = ctx->opt->runtime.blas_threads;
    sc->blas_threads = want > 0 ? want : 1;
    snprintf(sc->placement, sizeof sc->placement, "unbound");
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0 ||
        tsr_place_plan_create(topo, ls, &plan) != TSR_OK) {
        tsr_log(TSR_LOG_WARN, "placement: cannot plan bindings (%s); running unbound", tsr_last_error());
        goto out;
    }
    /* OpenBLAS's sums change with its thread count: reproducible = world
     * keeps one per rank unless runtime.blas_threads says otherwise. */
    if (want <= 0 && !sc->world_repro)
        sc->blas_threads = tsr_place_plan_ncores(plan, lr) > 0 ? tsr_place_plan_ncores(plan, lr) : 1;
    if (ctx->opt->runtime.bind) {
        char set[96];
        tsr_place_plan_cpuset_string(plan, lr, set, sizeof set);
        if (tsr_place_bind(topo, plan, lr) != TSR_OK)
            tsr_log(TSR_LOG_WARN, "placement: %s; running unbound", tsr_last_error());
        else
            snprintf(sc->placement, sizeof sc->placement, "cores %s numa %d", set, tsr_place_plan_numa(plan, lr));
    }
out:
    tsr_place_set_blas_threads(sc->blas_threads);
    tsr_place_plan_destroy(plan);
    if (topo)
        hwloc_topology_destroy(topo);
}

/* runtime.gemm: a library this build lacks is an error on every rank
 * alike (the builds are one). */
static int select_gemm(tsr_train_ctx_t *ctx)
{
    int rc = tsr_compute_set_gemm(ctx->opt->runtime.gemm);
    if (rc)
        return tsr_error_prefix(rc, "[runtime] gemm (%s): ", tsr_config_origin(ctx->opt->config, "runtime", "gemm"));
    return TSR_OK;
}

/* The model's tensors as the optimizer's segments (LAMB and LARS adapt per
 * tensor); 1-d ones (biases, norm weights) excluded if so configured. */
static int set_optim_segments(tsr_train_ctx_t *ctx, int exclude_1d)
{
    tsr_model_t *m = ctx->net.model;
    const float *base = tsr_model_params(m);
    size_t n = tsr_model_nparams(m);
    int nseg = 0, cap = 4 * tsr_model_nlayers(m) + 1, rc;
    tsr_optim_segment_t *seg = malloc((size_t)cap * sizeof *seg);
    if (!seg)
        return tsr_error_set(TSR_ENOMEM, "out of memory for the optimizer's segments");
    for (int i = 0; i < tsr_model_nlayers(m); i++) {
        tsr_model_tensor_t t[TSR_MODEL_MAX_TENSORS];
        int nt = tsr_model_tensors(m, i, t);
        for (int k = 0; k < nt && nseg < cap; k++) {
            if (t[k].data < base || t[k].data >= base + n) /* buffers (running statistics) */
                continue;
            size_t size = 1;
            for (int d = 0; d < t[k].ndims; d++)
                size *= t[k].dims[d];
            seg[nseg++] = (tsr_optim_segment_t){(size_t)(t[k].data - base), size, exclude_1d && t[k].ndims == 1};
        }
    }
    rc = nseg ? tsr_optim_set_segments(ctx->net.optim, seg, nseg) : TSR_OK;
    free(seg);
    return rc;
}

static int build_optim(tsr_train_ctx_t *ctx)
{
    const tsr_config_t *cfg = ctx->opt->config;
    tsr_optim_config_t oc = ctx->opt->optim;
    oc.total_steps = ctx->sched.total_steps;
    oc.planned_steps = ctx->sched.epochs * (long)ctx->sched.steps_per_epoch;
    int momentum = oc.kind == TSR_OPTIM_SGD || oc.kind == TSR_OPTIM_LARS || oc.kind == TSR_OPTIM_RMSPROP;
    if (momentum && oc.momentum >= 1)
        return tsr_error_set(TSR_EINVAL, "[optim] momentum = %g (%s): expected a value below 1", oc.momentum,
                             tsr_config_origin(cfg, "optim", "momentum"));
    if (!momentum && (oc.beta1 >= 1 || oc.beta2 >= 1 || oc.eps <= 0))
        return tsr_error_set(TSR_EINVAL,
                             "[optim] beta1 = %g, beta2 = %g, eps = %g: expected betas below 1 and eps "
                             "above 0",
                             oc.beta1, oc.beta2, oc.eps);
    /* A schedule past the run is refused there, naming the key. */
    int rc = tsr_optim_create(&oc, tsr_model_nparams(ctx->net.model), &ctx->net.optim);
    return rc ? rc : set_optim_segments(ctx, oc.exclude_bias_norm);
}

static int is_pow2(size_t v) { return v && !(v & (v - 1)); }

/* train.reproducible = world: each optimizer step's gradient is the sum of
 * the global batch's micro-batches (fixed-size groups of samples, in the
 * global batch's order) over a perfect binary tree; a rank holds a whole
 * subtree (its k groups, summed by accum.c) and the recursive
 * halving/doubling allreduce adds the subtrees up the same tree. So the
 * weights cannot depend on the rank count. */
static int world_repro_check(tsr_train_ctx_t *ctx)
{
    const tsr_train_options_t *o = ctx->opt;
    const tsr_config_t *cfg = o->config;
    const char *rk = tsr_config_origin(cfg, "train", "reproducible");
    size_t groups = (size_t)o->train.global_batch / ctx->sched.micro;
    if (o->train.global_batch <= 0)
        return tsr_error_set(TSR_EINVAL,
                             "[train] reproducible = world (%s) needs [train] global_batch: with a per-rank batch "
                             "the step itself changes with the rank count",
                             rk);
    if (!is_pow2(groups) || !is_pow2((size_t)ctx->world))
        return tsr_error_set(TSR_EINVAL,
                             "[train] reproducible = world (%s): global_batch / batch_size = %zu micro-batches and %d "
                             "ranks; both must be powers of two (the fixed summation tree is a perfect binary tree)",
                             rk, groups, ctx->world);
    if (o->model.sync_bn)
        return tsr_error_set(TSR_EINVAL,
                             "[train] reproducible = world (%s) and [model] sync_bn = true (%s): synchronised "
                             "batch norm sums statistics over the ranks, so its result depends on their number",
                             rk, tsr_config_origin(cfg, "model", "sync_bn"));
    const char *comm = o->runtime.comm, *alg = o->runtime.allreduce_algorithm;
    if (!strcmp(comm, "nccl"))
        return tsr_error_set(TSR_EINVAL,
                             "[train] reproducible = world (%s) and [runtime] comm = %s (%s): NCCL sums in an order "
                             "of its own; set comm = auto, mpi or shm",
                             rk, comm, tsr_config_origin(cfg, "runtime", "comm"));
    if (strcmp(alg, "auto") && strcmp(alg, "rabenseifner") && strcmp(alg, "tree"))
        return tsr_error_set(TSR_EINVAL,
                             "[train] reproducible = world (%s) and [runtime] allreduce_algorithm = %s (%s): only "
                             "rabenseifner and tree sum in the fixed tree",
                             rk, alg, tsr_config_origin(cfg, "runtime", "allreduce_algorithm"));
    ctx->sched.world_repro = 1;
    return TSR_OK;
}

/* The batch shape: micro-batches of batch_size rows, accumulate_steps of
 * them per optimizer step, or as many as train.global_batch asks of this
 * world size, so one configuration trains the same on any number of ranks. */
static int batch_shape(tsr_train_ctx_t *ctx)
{
    const tsr_loop_options_t *t = &ctx->opt->train;
    const tsr_config_t *cfg = ctx->opt->config;
    tsr_train_sched_t *sc = &ctx->sched;
    size_t micro = t->batch_size, k = (size_t)t->accumulate_steps;
    if (t->global_batch > 0) {
        size_t unit = micro * (size_t)ctx->world, g = (size_t)t->global_batch;
        if (k != 1)
            return tsr_error_set(TSR_EINVAL,
                                 "[train] global_batch = %ld (%s) and accumulate_steps = %ld (%s): set one "
                                 "of them; global_batch derives the accumulation from the world size",
                                 t->global_batch, tsr_config_origin(cfg, "train", "global_batch"), t->accumulate_steps,
                                 tsr_config_origin(cfg, "train", "accumulate_steps"));
        if (g % unit) {
            size_t lo = g / unit * unit;
            char near[96];
            if (lo)
                snprintf(near, sizeof near, "%zu or %zu", lo, lo + unit);
            else
                snprintf(near, sizeof near, "%zu", unit);
            return tsr_error_set(TSR_EINVAL,
                                 "[train] global_batch = %zu (%s) is not a multiple of %d ranks x "
                                 "batch_size %zu = %zu; the nearest valid global batches are %s (or change "
                                 "batch_size)",
                                 g, tsr_config_origin(cfg, "train", "global_batch"), ctx->world, micro, unit, near);
        }
        k = g / unit;
        if (k > (1u << 16))
            return tsr_error_set(TSR_EINVAL,
                                 "[train] global_batch = %zu (%s) needs %zu micro-batches of %zu per rank; "
                                 "at most 65536: raise batch_size",
                                 g, tsr_config_origin(cfg, "train", "global_batch"), k, micro);
    }
    sc->micro = micro;
    sc->accum = k;
    sc->batch = micro * k;
    return t->reproducible_world ? world_repro_check(ctx) : TSR_OK;
}

/* The model's sums over ranks (synchronised batch norm), watched. */
static int model_allreduce(double *buf, int n, void *rt)
{
    return tsr_runtime_allreduce(rt, MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, "the batch-norm statistics", -1);
}

/* Loader, step counts, model, optimizer and the test slice. */
static int build(tsr_train_ctx_t *ctx, const tsr_model_spec_t *spec, size_t outputs)
{
    const tsr_train_options_t *o = ctx->opt;
    tsr_train_sched_t *sc = &ctx->sched;
    int rc = tsr_loader_create(ctx->data.train, ctx->rank, ctx->world, sc->batch, o->train.seed, o->data.prefetch,
                               &ctx->data.loader);
    if (rc == TSR_EINVAL)
        return tsr_error_prefix(rc, "[train] batch_size = %zu (%s)%s with %d ranks: ", sc->micro,
                                tsr_config_origin(o->config, "train", "batch_size"),
                                sc->accum > 1 ? " x its accumulation" : "", ctx->world);
    if (rc)
        return rc;
    sc->steps_per_epoch = tsr_loader_steps_per_epoch(ctx->data.loader);
    sc->total_steps = sc->epochs * (long)sc->steps_per_epoch;
    if (o->train.max_steps > 0 && o->train.max_steps < sc->total_steps)
        sc->total_steps = o->train.max_steps;
    /* The model holds one micro-batch's activations. */
    rc = tsr_model_create(spec, sc->micro, &ctx->net.model);
    if (rc == TSR_EINVAL && o->model.layers[0])
        tsr_error_prefix(rc, "[model] layers (%s): ", tsr_config_origin(o->config, "model", "layers"));
    if (!rc)
        rc = tsr_train_check_outputs(ctx, ctx->net.model, outputs);
    if (rc)
        return rc;
    tsr_model_init(ctx->net.model, o->train.seed);
    tsr_model_set_rng(ctx->net.model, o->train.seed, ctx->rank);
    if (ctx->world > 1)
        tsr_model_set_allreduce(ctx->net.model, model_allreduce, ctx->rt);
    if ((rc = build_optim(ctx)) || (rc = tsr_train_data_test_slice(ctx)))
        return rc;
    return tsr_train_early_setup(ctx);
}

/* The gradient engine over the model's gradients, watched while it waits. */
static int build_engine(tsr_train_ctx_t *ctx)
{
    const tsr_runtime_options_t *ro = &ctx->opt->runtime;
    const char *topo = ro->topology;
    char topo_path[4096];
    /* runtime.topology: a name, or a topology.conf relative to the config file */
    if (topo && strcmp(topo, "auto") && strcmp(topo, "none") && strcmp(topo, "node")) {
        int rc = tsr_path_join(tsr_config_dir(ctx->opt->config), topo, topo_path, sizeof topo_path);
        if (rc)
            return tsr_error_prefix(rc, "[runtime] topology = %s (%s): ", topo,
                                    tsr_config_origin(ctx->opt->config, "runtime", "topology"));
        topo = topo_path;
    }
    tsr_comm_options_t co = {
        .backend = ro->comm,
        .algorithm = ro->allreduce_algorithm,
        .topology = topo,
        .fixed_tree = ctx->sched.world_repro,
        .bucket_bytes = ro->bucket_bytes,
        .gpu = ctx->net.gpu,
        .half = ro->comm_fp32 || !ctx->net.gpu ? TSR_PRECISION_FP32 : ctx->opt->train.precision,
    };
    int rc = tsr_comm_create_opts(tsr_runtime_world(ctx->rt), &co, tsr_model_work_grads(ctx->net.model),
                                  tsr_model_nparams(ctx->net.model), &ctx->comm.engine);
    if (rc && strstr(tsr_last_error(), "runtime.topology"))
        return tsr_error_prefix(
            rc, "[runtime] topology (%s): ", tsr_config_origin(ctx->opt->config, "runtime", "topology"));
    if (rc == TSR_ENOTSUP || rc == TSR_EINVAL)
        return tsr_error_prefix(rc, "[runtime] comm = %s (%s): ", ro->comm,
                                tsr_config_origin(ctx->opt->config, "runtime", "comm"));
    if (!rc)
        tsr_comm_set_idle(ctx->comm.engine, watch_poll, ctx->rt);
    if (!rc && co.half != TSR_PRECISION_FP32 && tsr_comm_staged(ctx->comm.engine) && ctx->rank == 0)
        tsr_log(TSR_LOG_INFO,
                "runtime.comm_precision = compute: the %s back-end sums the GPU's gradients through "
                "host memory in fp32 (only nccl sums them in the compute precision)",
                tsr_comm_backend(ctx->comm.engine));
    return rc;
}

int tsr_train_setup(tsr_train_ctx_t *ctx, tsr_runtime_t *rt, const tsr_train_options_t *opt, int *failed_rank)
{
    tsr_model_spec_t *spec = calloc(1, sizeof *spec); /* a graph's spec is large */
    size_t outputs = 0;
    int rc;
    memset(ctx, 0, sizeof *ctx);
    if (!spec)
        return tsr_error_set(TSR_ENOMEM, "out of memory");
    ctx->rt = rt;
    ctx->opt = opt;
    ctx->rank = tsr_runtime_rank(rt);
    ctx->world = tsr_runtime_size(rt);
    ctx->sched.epochs = opt->train.epochs;
    ctx->sched.stop_epoch =
        opt->until_epoch > 0 && opt->until_epoch < opt->train.epochs ? opt->until_epoch : opt->train.epochs;
    tsr_faults_read(&ctx->faults);
    ctx->phases.cur = TSR_TRACE_NONE;
    /* From here every collective is watched: a rank that never comes is named. */
    if ((rc = tsr_runtime_watchdog_start(rt, opt->runtime.watchdog_seconds)))
        goto out;
    rc = batch_shape(ctx);
    if (!rc)
        rc = tsr_train_data_open(ctx);
    if (!rc)
        rc = tsr_train_model_spec(ctx, spec, &outputs);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        goto out;
    place_rank(ctx);
    rc = select_gemm(ctx);
    if (!rc)
        rc = build(ctx, spec, outputs);
    rc = tsr_runtime_agree(rt, rc, failed_rank);
out:
    free(spec);
    if (rc)
        return rc;
    tsr_fault_point(&ctx->faults, ctx->rank, "setup");
    /* Communicators, windows and NCCL are made by blocking calls nobody can
     * watch: arrive first (watched), so a missing rank is named here. */
    tsr_runtime_phase(rt, "set-up of the GPU and the gradient engine (MPI/NCCL communicators)");
    if ((rc = tsr_runtime_barrier(rt, "the start of the GPU and gradient engine set-up")))
        return rc;
    if ((rc = tsr_train_device_setup(ctx, failed_rank)))
        return rc;
    if ((rc = tsr_runtime_agree(rt, tsr_train_amp_setup(ctx), failed_rank)))
        return rc;
    rc = build_engine(ctx);
    tsr_runtime_phase(rt, NULL);
    /* What a step's reduction costs with nothing to hide it behind, for
     * the hidden-time figures (the gradients are still zero here). */
    if (!rc) {
        tsr_runtime_watch_begin(rt, "the gradient engine's calibration", -1);
        rc = tsr_comm_calibrate(ctx->comm.engine, 5);
        tsr_runtime_watch_end(rt);
    }
    return tsr_runtime_agree(rt, rc, failed_rank);
}

void tsr_train_teardown(tsr_train_ctx_t *ctx)
{
    tsr_train_monitor_destroy(ctx);
    tsr_train_perf_destroy(ctx);
    tsr_train_early_free(ctx);
    tsr_ckpt_destroy(ctx->ckpt.engine);
    free(ctx->ckpt.config_text);
    /* Freeing windows and communicators waits for every rank. */
    if (ctx->rt && ctx->comm.engine)
        tsr_runtime_phase(ctx->rt, "the end of training (freeing the gradient engine)");
    tsr_comm_destroy(ctx->comm.engine);
    if (ctx->rt)
        tsr_runtime_phase(ctx->rt, NULL);
    tsr_optim_destroy(ctx->net.optim);
    tsr_model_destroy(ctx->net.model);
    tsr_train_amp_free(ctx);
    tsr_gpu_destroy(ctx->net.gpu);
    tsr_train_data_close(ctx);
    memset(ctx, 0, sizeof *ctx);
}
