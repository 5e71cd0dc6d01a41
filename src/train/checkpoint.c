/* SPDX-License-Identifier: BSD-3-Clause */
/* Training state <-> checkpoints: what is registered, how resume picks a
 * file, and how the restored state reaches every rank. */
#include "train/setup.h"
#include "tessera/error.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reg1(tsr_ckpt_t *c, const char *path, int64_t *v)
{
    size_t one = 1;
    return tsr_ckpt_register(c, path, v, TSR_CKPT_INT64, 1, &one);
}

int tsr_train_ckpt_setup(tsr_train_ctx_t *ctx)
{
    const tsr_model_spec_t *spec = tsr_model_spec(ctx->net.model);
    size_t nstate;
    float *state = tsr_optim_state(ctx->net.optim, &nstate);
    int rc;
    ctx->ckpt.config_text = tsr_config_dump(ctx->opt->config);
    if (!ctx->ckpt.config_text)
        return tsr_error_set(TSR_ENOMEM, "out of memory for the configuration text");
    if (tsr_model_spec_json(spec, ctx->ckpt.model_json, sizeof ctx->ckpt.model_json) < 0)
        return TSR_EINVAL;
    ctx->ckpt.seed = (int64_t)ctx->opt->train.seed;
    ctx->ckpt.global_batch = (int64_t)(ctx->sched.batch * (size_t)ctx->world);
    if (ctx->rank != 0)
        return TSR_OK;
    tsr_ckpt_config_t cc = ctx->opt->checkpoint.engine;
    if ((rc = tsr_ckpt_create(&cc, &ctx->ckpt.engine)))
        return tsr_error_prefix(rc, "[checkpoint] dir = %s: ", cc.dir);
    int stale = tsr_ckpt_clean_stale(cc.dir);
    if (stale > 0)
        tsr_log(TSR_LOG_WARN, "removed %d temporary file%s left in %s by a writer that was killed", stale,
                stale == 1 ? "" : "s", cc.dir);
    /* Every layer's parameters and buffers (batch-norm running statistics). */
    for (int i = 0; i < tsr_model_nlayers(ctx->net.model) && !rc; i++) {
        tsr_model_tensor_t t[TSR_MODEL_MAX_TENSORS];
        int nt = tsr_model_tensors(ctx->net.model, i, t);
        for (int k = 0; k < nt && !rc; k++) {
            char name[96];
            snprintf(name, sizeof name, "/model/layer_%d/%s", i, t[k].name);
            rc = tsr_ckpt_register(ctx->ckpt.engine, name, t[k].data, TSR_CKPT_FLOAT32, t[k].ndims, t[k].dims);
        }
    }
    if (!rc && nstate)
        rc = tsr_ckpt_register(ctx->ckpt.engine, "/optimizer/state", state, TSR_CKPT_FLOAT32, 1, &nstate);
    if (!rc)
        rc = reg1(ctx->ckpt.engine, "/optimizer/steps", &ctx->ckpt.steps);
    if (!rc)
        rc = reg1(ctx->ckpt.engine, "/data/epoch", &ctx->ckpt.epoch);
    if (!rc)
        rc = reg1(ctx->ckpt.engine, "/data/cursor", &ctx->ckpt.cursor);
    if (!rc)
        rc = reg1(ctx->ckpt.engine, "/data/global_batch", &ctx->ckpt.global_batch);
    if (!rc)
        rc = reg1(ctx->ckpt.engine, "/rng/seed", &ctx->ckpt.seed);
    if (!rc)
        rc = tsr_train_early_register(ctx);
    if (!rc)
        rc = tsr_train_amp_register(ctx);
    return rc;
}

int tsr_train_ckpt_write(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next, int sync)
{
    /* Never a checkpoint of NaN weights: the newest good one must stay
     * newest. (On a GPU this waits, as the download below does anyway.) */
    long bad = tsr_optim_nonfinite_step(ctx->net.optim);
    if (bad)
        return tsr_error_set(bad < 0 ? TSR_EIO : TSR_EDIVERGED,
                             "training diverged at step %ld: the weights became "
                             "NaN or Inf; not writing the checkpoint of step %ld (the newest good one, %s, is kept)",
                             bad, step,
                             tsr_ckpt_last_step(ctx->ckpt.engine) >= 0 ? tsr_ckpt_last_path(ctx->ckpt.engine) : "none");
    /* On a GPU the registered host buffers are mirrors: refresh them first. */
    int rc = tsr_model_download(ctx->net.model);
    if (!rc)
        rc = tsr_optim_download(ctx->net.optim);
    if (rc)
        return tsr_error_prefix(rc, "checkpoint of step %ld: copying the GPU's state to the host: ", step);
    ctx->ckpt.steps = tsr_optim_steps_taken(ctx->net.optim);
    ctx->ckpt.epoch = next->epoch;
    ctx->ckpt.cursor = (int64_t)next->cursor;
    ctx->ckpt.global_batch = (int64_t)(ctx->sched.batch * (size_t)ctx->world);
    tsr_ckpt_meta_t meta = {
        .step = step,
        .epoch = next->epoch,
        .samples_seen = step * (long)ctx->sched.batch * ctx->world,
        .seed = ctx->ckpt.seed,
        .world_size = ctx->world,
        .config = ctx->ckpt.config_text,
        .model = ctx->ckpt.model_json,
    };
    return tsr_ckpt_write(ctx->ckpt.engine, &meta, sync);
}

static int stop_on_error(const tsr_train_ctx_t *ctx) { return ctx->opt->checkpoint.stop_on_error; }

/* One failed write: the error that stops the run, or a warning. */
static int failed(tsr_train_ctx_t *ctx, int rc, long step)
{
    char at[48] = "";
    if (step >= 0)
        snprintf(at, sizeof at, " of step %ld", step);
    if (stop_on_error(ctx))
        return tsr_error_prefix(rc, "checkpoint%s failed and [checkpoint] on_error = stop: ", at);
    tsr_log(TSR_LOG_WARN, "checkpoint%s failed: %s; training goes on ([checkpoint] on_error = continue)", at,
            tsr_last_error());
    return TSR_OK;
}

/* Hands out every failure not yet reported. */
static int collect(tsr_train_ctx_t *ctx)
{
    long step;
    int rc;
    while ((rc = tsr_ckpt_take_failure(ctx->ckpt.engine, &step)))
        if ((rc = failed(ctx, rc, step)))
            return rc;
    return TSR_OK;
}

int tsr_train_ckpt_step(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next)
{
    /* trace: the timelines are written with the checkpoints (every rank
     * with those of every_steps, rank 0 with any). */
    long every = ctx->opt->checkpoint.engine.every_steps;
    if (ctx->rank != 0 && ctx->phases.trace && every > 0 && step % every == 0)
        tsr_train_trace_save(ctx);
    if (ctx->rank != 0 || !ctx->ckpt.engine)
        return TSR_OK;
    if (tsr_ckpt_due(ctx->ckpt.engine, step)) {
        /* Waits for the write before it, whose failure collect() then sees. */
        int rc = tsr_train_ckpt_write(ctx, step, next, 0);
        if (rc && (rc == TSR_EDIVERGED || (rc = failed(ctx, rc, step))))
            return rc;
        tsr_train_trace_save(ctx);
    }
    return collect(ctx);
}

int tsr_train_ckpt_stop(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next)
{
    /* Everyone saw the request at the same step; rank 0 writes. */
    tsr_train_trace_save(ctx); /* trace: a requeued run keeps its timeline so far */
    if (ctx->rank != 0)
        return TSR_ESTOPPED;
    if (tsr_runtime_stop_signal())
        tsr_log(TSR_LOG_INFO, "stop requested by signal %d at step %ld: writing a checkpoint",
                tsr_runtime_stop_signal(), step);
    else
        tsr_log(TSR_LOG_INFO, "stop requested by a signal to another rank at step %ld: writing a checkpoint", step);
    int rc = ctx->ckpt.engine ? tsr_train_ckpt_write(ctx, step, next, 1) : TSR_OK;
    if (rc)
        return rc;
    tsr_log(TSR_LOG_INFO, "checkpoint %s written; exiting with status 75 so the job can be requeued",
            tsr_ckpt_last_path(ctx->ckpt.engine));
    return TSR_ESTOPPED;
}

int tsr_train_ckpt_end(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next, int trained)
{
    if (ctx->rank != 0 || !ctx->ckpt.engine)
        return TSR_OK;
    /* After any write in flight, which may be of this very step. */
    tsr_ckpt_wait(ctx->ckpt.engine);
    int rc = TSR_OK;
    if (trained && ctx->opt->checkpoint.final && tsr_ckpt_last_step(ctx->ckpt.engine) != step) {
        rc = tsr_train_ckpt_write(ctx, step, next, 1);
        if (rc && rc != TSR_EDIVERGED && !stop_on_error(ctx)) {
            tsr_log(TSR_LOG_WARN, "final checkpoint of step %ld failed: %s; the model file is still written", step,
                    tsr_last_error());
            rc = TSR_OK;
        } else if (rc && rc != TSR_EDIVERGED) {
            rc = failed(ctx, rc, step);
        }
    }
    if (!rc)
        rc = collect(ctx);
    long nfail = tsr_ckpt_failed(ctx->ckpt.engine);
    if (nfail > 0) {
        char list[1200] = "";
        size_t n = 0;
        const char *why = NULL;
        for (int i = 0; i < 8 && n < sizeof list - 64; i++) {
            long s = tsr_ckpt_failure(ctx->ckpt.engine, i, &why);
            if (s < 0)
                break;
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%ld", i ? ", " : "", s);
        }
        tsr_log(TSR_LOG_WARN, "checkpoints: %ld written, %ld failed (step%s %s%s; the last cause: %s)",
                tsr_ckpt_written(ctx->ckpt.engine), nfail, nfail == 1 ? "" : "s", list, nfail > 8 ? ", ..." : "",
                why ? why : "unknown");
    }
    return rc;
}

typedef struct {
    tsr_train_ctx_t *ctx;
    char path[4096];
    int skipped;
} pick_t;

/* Accepts the newest checkpoint that verifies and fits this run. */
/* 1 when a checkpoint's model JSON is not this run's graph; why names
 * the first layer that differs ("here" is this run, "there" the checkpoint). */
static int other_model(const tsr_train_ctx_t *ctx, const char *json, char *why, size_t len)
{
    if (json && strcmp(json, ctx->ckpt.model_json) == 0)
        return 0;
    tsr_model_spec_t *theirs = calloc(1, sizeof *theirs);
    if (!theirs)
        snprintf(why, len, "out of memory comparing the models");
    else if (!json || tsr_model_spec_from_json(json, theirs) != TSR_OK)
        snprintf(why, len, "its model description cannot be read (%s)", json ? tsr_last_error() : "none");
    else if (!tsr_model_spec_diff(tsr_model_spec(ctx->net.model), theirs, why, len))
        snprintf(why, len,
                 "its model description differs from this run's in form only; written by another "
                 "version of tessera");
    free(theirs);
    return 1;
}

static int pick(const char *path, int rc, const tsr_ckpt_info_t *info, void *arg)
{
    pick_t *pk = arg;
    if (rc) {
        tsr_log(TSR_LOG_WARN, "skipping %s", tsr_last_error());
        pk->skipped++;
        return 0;
    }
    char why[512];
    if (other_model(pk->ctx, info->model, why, sizeof why)) {
        tsr_log(TSR_LOG_WARN, "skipping %s: a checkpoint of another model: %s", path, why);
        pk->skipped++;
        return 0;
    }
    snprintf(pk->path, sizeof pk->path, "%s", path);
    return 1;
}

/* Rank 0: restores from the chosen file; fills pos. */
static int restore_rank0(tsr_train_ctx_t *ctx, const char *how, tsr_train_pos_t *pos, int *found)
{
    pick_t pk = {.ctx = ctx};
    tsr_ckpt_info_t info;
    const char *dir = ctx->opt->checkpoint.engine.dir;
    int rc;
    *found = 0;
    if (strcmp(how, "auto") == 0) {
        rc = tsr_ckpt_scan(dir, pick, &pk);
        if (rc < 0)
            return rc;
        if (!pk.path[0]) {
            tsr_log(TSR_LOG_INFO, "resume: no usable checkpoint in %s%s; starting from the beginning", dir,
                    pk.skipped ? " (see the warnings above)" : "");
            return TSR_OK;
        }
    } else {
        snprintf(pk.path, sizeof pk.path, "%s", how);
    }
    /* The architecture first: restoring would only say a shape differs. */
    if ((rc = tsr_ckpt_verify(pk.path, &info)))
        return rc;
    char why[512];
    if (other_model(ctx, info.model, why, sizeof why)) {
        tsr_ckpt_info_free(&info);
        return tsr_error_set(TSR_EDATA,
                             "%s: a checkpoint of another model (\"here\" is this run's [model], "
                             "\"there\" the checkpoint's): %s",
                             pk.path, why);
    }
    tsr_ckpt_info_free(&info);
    if ((rc = tsr_ckpt_restore(ctx->ckpt.engine, pk.path, &info)))
        return rc;
    if (ctx->ckpt.seed != (int64_t)ctx->opt->train.seed)
        tsr_log(TSR_LOG_WARN, "resume: %s was written with seed %lld, this run uses %ld; the data order differs",
                pk.path, (long long)ctx->ckpt.seed, (long)ctx->opt->train.seed);
    pos->step = info.step;
    pos->epoch = (long)ctx->ckpt.epoch;
    pos->cursor = (size_t)ctx->ckpt.cursor;
    int64_t gb = (int64_t)(ctx->sched.batch * (size_t)ctx->world);
    if (ctx->sched.world_repro && ctx->ckpt.global_batch == gb && info.world_size != ctx->world)
        /* The same global batch summed in the same tree: nothing depends on the rank count. */
        tsr_log(TSR_LOG_INFO,
                "resume: %s was written by %ld ranks; with train.reproducible = world this run of %d "
                "continues as the uninterrupted run would",
                pk.path, info.world_size, ctx->world);
    else if (info.world_size != ctx->world || ctx->ckpt.global_batch != gb) {
        /* Data-parallel state carries over; the position is kept in samples. */
        int64_t seen = ctx->ckpt.cursor * ctx->ckpt.global_batch;
        pos->cursor = (size_t)(seen / gb);
        tsr_log(TSR_LOG_WARN,
                "resume: %s was written by %ld ranks with global batch %lld; this run has %d ranks "
                "and global batch %lld, so it continues at step %zu of epoch %ld and is not bit-identical to an "
                "uninterrupted run",
                pk.path, info.world_size, (long long)ctx->ckpt.global_batch, ctx->world, (long long)gb, pos->cursor,
                pos->epoch + 1);
    }
    if (pos->cursor >= ctx->sched.steps_per_epoch) {
        pos->epoch++;
        pos->cursor = 0;
    }
    tsr_log(TSR_LOG_INFO, "resumed from %s: step %ld, epoch %ld, step %zu of the epoch", pk.path, pos->step,
            pos->epoch + 1, pos->cursor);
    tsr_ckpt_info_free(&info);
    *found = 1;
    return TSR_OK;
}

int tsr_train_ckpt_resume(tsr_train_ctx_t *ctx, tsr_train_pos_t *pos, int *failed_rank)
{
    const char *how = ctx->opt->checkpoint.resume;
    int rc = TSR_OK, found = 0;
    memset(pos, 0, sizeof *pos);
    if (strcmp(how, "none") == 0 || !how[0])
        return TSR_OK;
    if (ctx->rank == 0)
        rc = restore_rank0(ctx, how, pos, &found);
    if ((rc = tsr_runtime_agree(ctx->rt, rc, failed_rank)))
        return rc;
    tsr_runtime_t *rt = ctx->rt;
    tsr_fault_point(&ctx->faults, ctx->rank, "resume");
    if ((rc = tsr_runtime_bcast(rt, &found, 1, MPI_INT, 0, "the checkpoint broadcast")))
        return rc;
    if (!found)
        return TSR_OK;
    /* Everyone gets rank 0's state, so checkpoints may live on rank 0's node only. */
    long hdr[3] = {pos->step, pos->epoch, (long)pos->cursor};
    size_t nstate;
    float *state = tsr_optim_state(ctx->net.optim, &nstate);
    if ((rc = tsr_runtime_bcast(rt, hdr, 3, MPI_LONG, 0, "the checkpoint broadcast")) ||
        (rc = tsr_runtime_bcast(rt, &ctx->ckpt.steps, 1, MPI_INT64_T, 0, "the checkpoint broadcast")) ||
        (rc = tsr_runtime_bcast(rt, tsr_model_params(ctx->net.model), (int)tsr_model_nparams(ctx->net.model), MPI_FLOAT,
                                0, "the checkpoint broadcast")) ||
        (nstate && (rc = tsr_runtime_bcast(rt, state, (int)nstate, MPI_FLOAT, 0, "the checkpoint broadcast"))))
        return tsr_error_prefix(rc, "broadcasting the restored state: ");
    pos->step = hdr[0];
    pos->epoch = hdr[1];
    pos->cursor = (size_t)hdr[2];
    if ((rc = tsr_train_sync_buffers(ctx)) || (rc = tsr_train_early_resumed(ctx)) || (rc = tsr_train_amp_resumed(ctx)))
        return rc;
    /* Dropout's masks continue where the checkpointed run left off (the
     * model counts forward passes: micro-batches). */
    tsr_model_set_step(ctx->net.model, (uint64_t)pos->step * ctx->sched.accum);
    tsr_optim_set_steps_taken(ctx->net.optim, (long)ctx->ckpt.steps);
    if ((rc = tsr_model_upload(ctx->net.model)) || (rc = tsr_optim_upload(ctx->net.optim)))
        return tsr_error_prefix(rc, "rank %d: copying the restored state to the GPU: ", ctx->rank);
    return tsr_loader_seek(ctx->data.loader, (uint64_t)pos->epoch, (uint64_t)pos->cursor);
}

int tsr_train_sync_buffers(tsr_train_ctx_t *ctx)
{
    size_t n;
    float *b = tsr_model_buffers(ctx->net.model, &n);
    if (n == 0 || ctx->world == 1 || tsr_model_spec(ctx->net.model)->sync_bn)
        return TSR_OK;
    return tsr_runtime_bcast(ctx->rt, b, (int)n, MPI_FLOAT, 0, "the batch-norm statistics");
}
