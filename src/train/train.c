/* The step loop: batch -> forward -> backward (buckets reduced as layers
 * finish) -> optimizer; evaluation each epoch; the model file at the end. */
#include "tessera/train.h"
#include "config/schema.h"
#include "tessera/error.h"
#include "train/progress.h"
#include "train/setup.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* This rank stops only because another failed: the agreement at the end
 * then reports the rank that failed, with its own message and code. */
static int peer_failed(tsr_train_ctx_t *ctx)
{
    ctx->peer_failed = 1;
    return tsr_error_set(TSR_EIO, "rank %d: stopping because another rank failed", ctx->rank);
}

/* Backward tells the engine how much of the gradient buffer is final. */
static void grads_ready(size_t offset, void *arg)
{
    tsr_comm_ready_from(arg, offset);
}

/* Mean test loss and accuracy over all ranks' slices. A rank whose
 * evaluation fails still joins the sum (with a flag), so nobody waits. */
static int evaluate(tsr_train_ctx_t *ctx, double *loss, double *acc, long step)
{
    double part[3] = {0, 0, 0}, sum[3];
    size_t correct = 0;
    /* Every rank evaluates with rank 0's batch-norm statistics. */
    int rc = tsr_train_sync_buffers(ctx);
    if (rc)
        return rc;
    tsr_fault_point(&ctx->faults, ctx->rank, "eval");
    if (ctx->test_rows) {
        rc = tsr_model_evaluate(ctx->model, ctx->test_x, ctx->test_y, ctx->test_t, ctx->test_rows, &part[0],
                                &correct);
        part[1] = (double)correct;
        part[2] = rc != TSR_OK;
    }
    int arc = tsr_runtime_allreduce(ctx->rt, part, sum, 3, MPI_DOUBLE, MPI_SUM, "the evaluation", step);
    if (rc || arc)
        return rc ? rc : arc;
    if (sum[2] > 0)
        return tsr_error_set(TSR_EIO, "rank %d: stopping because another rank's evaluation failed", ctx->rank);
    *loss = sum[0] / (double)ctx->test_total;
    *acc = ctx->test_y ? sum[1] / (double)ctx->test_total : NAN;
    return TSR_OK;
}

/* Adds the training loss queued since the last call to both sums. Only a
 * GPU fails here, and then its error is sticky: the next step's agreement
 * stops everyone, as for any failed step (*rc keeps the first error). */
static void take_loss(tsr_train_ctx_t *ctx, double *epoch_loss, double *window_loss, int *rc)
{
    double l = 0;
    int lrc = tsr_model_take_loss(ctx->model, &l);
    if (lrc) {
        lrc = tsr_error_prefix(lrc, "rank %d: reading the training loss: ", ctx->rank);
        *rc = *rc ? *rc : lrc;
        ctx->pending_status |= TSR_STEP_ERROR;
        return;
    }
    *epoch_loss += l;
    *window_loss += l;
}

/* Global mean of a per-rank loss sum over n local samples. */
static double global_mean(tsr_train_ctx_t *ctx, double local_sum, double local_n, long step)
{
    double in[2] = {local_sum, local_n}, out[2] = {0, 0};
    if (tsr_runtime_allreduce(ctx->rt, in, out, 2, MPI_DOUBLE, MPI_SUM, "the training loss average", step))
        return NAN;
    return out[1] > 0 ? out[0] / out[1] : NAN;
}

static int save_model(tsr_train_ctx_t *ctx, const tsr_train_result_t *res)
{
    char acc[32], loss[32], steps[32], world[16];
    char *conf = tsr_config_dump(ctx->cfg);
    if (!conf)
        return tsr_error_set(TSR_ENOMEM, "out of memory for the configuration text");
    snprintf(acc, sizeof acc, "%.6f", res->test_accuracy);
    snprintf(loss, sizeof loss, "%.6f", res->test_loss);
    snprintf(steps, sizeof steps, "%ld", res->steps);
    snprintf(world, sizeof world, "%d", ctx->world);
    const char *attrs[] = {"config", conf, "test_accuracy", acc, "test_loss", loss,
                           "steps", steps, "world_size", world, "dataset", ctx->data_path};
    int rc = tsr_model_download(ctx->model);
    if (!rc)
        rc = tsr_model_save(ctx->model, tsr_config_get(ctx->cfg, "train", "output"), attrs, 6);
    free(conf);
    return rc;
}

/* NaN or Inf weights: the error that stops the run, or TSR_OK. Free on the
 * CPU (the optimizer checks as it updates); on a GPU it reads the device's
 * note, so the loop asks only where the host waits anyway. Every rank
 * holds the same weights, so every rank finds the same. */
static int check_finite(tsr_train_ctx_t *ctx, long now)
{
    long bad = tsr_optim_nonfinite_step(ctx->optim);
    if (bad == 0)
        return TSR_OK;
    if (bad < 0)
        return tsr_error_prefix(TSR_EIO, "rank %d: reading the optimizer's notes from the GPU: ", ctx->rank);
    char seen[64] = "", kept[4300] = "";
    if (now > bad)
        snprintf(seen, sizeof seen, " (noticed at step %ld)", now);
    if (ctx->ckpt && tsr_ckpt_last_step(ctx->ckpt) >= 0)
        snprintf(kept, sizeof kept, "; the newest good checkpoint, %s, is kept", tsr_ckpt_last_path(ctx->ckpt));
    return tsr_error_set(TSR_EDIVERGED, "training diverged at step %ld%s: the weights became NaN or Inf (NaN or "
                         "Inf gradients, or an update that overflowed); likely causes: a learning rate too high for "
                         "this model (optim.lr = %g), inputs that are not scaled, or a loss that overflowed; no model "
                         "file was written or registered%s (train.on_nonfinite = skip_step skips updates whose "
                         "gradients are NaN or Inf)", bad, seen, tsr_config_get_double(ctx->cfg, "optim", "lr"),
                         kept);
}

/* Walltime (rank 0): the margin in seconds, or -1 when there is nothing to
 * watch. Outside SLURM, says once that SLURM settings the user gave are ignored. */
static double walltime_margin(tsr_train_ctx_t *ctx)
{
    if (ctx->rank != 0)
        return -1;
    const tsr_slurm_facts_t *f = tsr_runtime_slurm(ctx->rt);
    if (f->in_slurm) {
        double margin = tsr_config_get_double(ctx->cfg, "runtime", "walltime_margin_seconds");
        double left = tsr_runtime_walltime_left(ctx->rt);
        char lefts[64] = "unknown";
        if (left >= 0)
            snprintf(lefts, sizeof lefts, "%.0f s", left);
        tsr_log(TSR_LOG_INFO, "SLURM job %ld step %ld (run %d) on %s, %d task%s on this node; walltime left %s, "
                "margin %.0f s", f->job_id, f->step_id, f->restart_count + 1, f->nodelist, f->tasks_per_node,
                f->tasks_per_node == 1 ? "" : "s", lefts, margin);
        double limit = tsr_runtime_walltime_limit(ctx->rt);
        if (limit > 0 && margin >= limit) {
            /* Every run would stop at its first step and requeue, forever. */
            tsr_log(TSR_LOG_WARN, "walltime: the margin of %.0f s is not less than the job's time limit of %.0f s: "
                    "the margin is off (lower runtime.walltime_margin_seconds or ask for more time)", margin, limit);
            return -1;
        }
        if (limit > 0 && margin > limit / 2)
            tsr_log(TSR_LOG_WARN, "walltime: the margin of %.0f s is more than half the job's time limit of %.0f s; "
                    "each run trains for less than the margin", margin, limit);
        return margin;
    }
    char keys[512] = "";
    size_t n = 0;
    for (const tsr_key_t *k = tsr_schema; k->section; k++)
        if ((strcmp(k->section, "submit") == 0 || strcmp(k->key, "walltime_margin_seconds") == 0) &&
            strcmp(tsr_config_origin(ctx->cfg, k->section, k->key), "default") != 0 && n < sizeof keys - 80)
            n += (size_t)snprintf(keys + n, sizeof keys - n, "%s%s.%s", n ? ", " : "", k->section, k->key);
    if (n)
        tsr_log(TSR_LOG_INFO, "not running under SLURM (no SLURM_JOB_ID): ignoring %s", keys);
    return -1;
}

/* Rank 0, every step: under the margin, ask everyone to checkpoint and stop. */
static void walltime_check(tsr_train_ctx_t *ctx, double margin)
{
    if (margin < 0 || tsr_runtime_stop_signal())
        return;
    double left = tsr_runtime_walltime_left(ctx->rt);
    if (left < 0 || left >= margin)
        return;
    tsr_log(TSR_LOG_INFO, "walltime: %.0f s left, under the margin of %.0f s: checkpointing and stopping", left,
            margin);
    tsr_runtime_request_stop(SIGUSR1);
}

static int run_loop(tsr_train_ctx_t *ctx, const tsr_train_pos_t *start, tsr_train_result_t *res)
{
    MPI_Comm world = tsr_runtime_world(ctx->rt);
    tsr_progress_t prog;
    long log_every = tsr_config_get_long(ctx->cfg, "train", "log_every");
    int eval = ctx->test && tsr_config_get_bool(ctx->cfg, "train", "eval");
    float scale = 1.0f / (float)(ctx->batch * (size_t)ctx->world);
    /* Device memory on a GPU: the loop itself never reads them. */
    float *params = tsr_model_work_params(ctx->model), *grads = tsr_model_work_grads(ctx->model);
    long step = start->step;
    tsr_train_pos_t next = *start;
    double loop_seconds = 0, samples = 0;
    double margin = walltime_margin(ctx);
    int rc = TSR_OK;

    tsr_progress_init(&prog, ctx->rank == 0 ? tsr_config_get(ctx->cfg, "runtime", "progress") : "none");
    res->test_loss = res->test_accuracy = NAN;
    res->steps = step;
    for (long epoch = start->epoch; epoch < ctx->epochs && step < ctx->total_steps; epoch++) {
        double epoch_loss = 0, window_loss = 0, t0 = tsr_time_now();
        size_t epoch_n = 0, window_n = 0;
        size_t s = epoch == start->epoch ? start->cursor : 0;
        for (; s < ctx->steps_per_epoch && step < ctx->total_steps; s++) {
            double ts = tsr_time_now();
            tsr_batch_t b;
            int status = ctx->pending_status, agreed = 0;
            MPI_Request req;
            /* A rank whose batch failed still joins the reduction (with zero
             * gradients) so nobody hangs, and the flag stops everyone. */
            /* Backward hands buckets to the engine, which may wait for
             * peers (a full ring): watched like every other wait. */
            tsr_runtime_watch_begin(ctx->rt, "the gradient exchange during backward", step + 1);
            if (tsr_loader_next(ctx->loader, &b) != TSR_OK) {
                status = TSR_STEP_ERROR;
                rc = TSR_EIO;
                tsr_model_zero_grads(ctx->model);
                tsr_comm_ready_from(ctx->comm, 0);
            } else {
                tsr_model_forward(ctx->model, b.x, b.rows);
                /* The loss is fetched only when shown (below): on a GPU the
                 * host then need not wait for every step's kernels. */
                int grc = tsr_model_backward_queued(ctx->model, b.labels, b.targets, b.rows, scale, grads_ready,
                                                    ctx->comm);
                /* A GPU error is sticky in the model; stop everyone with it. */
                if (grc) {
                    rc = tsr_error_prefix(grc, "rank %d, step %ld: ", ctx->rank, step + 1);
                    status = TSR_STEP_ERROR;
                }
            }
            tsr_runtime_watch_end(ctx->rt);
            /* The engine fails inside backward's callbacks, which cannot
             * return an error: its sticky status tells. */
            int ccr = tsr_comm_status(ctx->comm);
            if (ccr) {
                if (!rc)
                    rc = tsr_error_prefix(ccr, "rank %d, step %ld: ", ctx->rank, step + 1);
                status |= TSR_STEP_ERROR | TSR_STEP_COMM;
            }
            walltime_check(ctx, margin);
            if (tsr_runtime_stop_signal())
                status |= TSR_STEP_STOP;
            MPI_Iallreduce(&status, &agreed, 1, MPI_INT, MPI_BOR, world, &req);
            /* Arrival first: a rank that never comes is caught by the watchdog. */
            int wrc = tsr_runtime_wait(ctx->rt, &req, "the step agreement", step + 1);
            if (wrc)
                return wrc;
            /* On GPUs a failed rank's NCCL work may never run, and a rank
             * whose engine failed sends nothing, so the others would wait
             * for it forever: stop first (teardown aborts NCCL). */
            if ((agreed & TSR_STEP_ERROR) && (ctx->gpu || (agreed & TSR_STEP_COMM)))
                return rc ? rc : peer_failed(ctx);
            /* Everyone arrived, but a peer's GPU work may still hang NCCL. */
            tsr_runtime_watch_begin(ctx->rt, "the gradient sums", step + 1);
            int crc = tsr_comm_wait(ctx->comm);
            tsr_runtime_watch_end(ctx->rt);
            if (crc)
                return crc;
            if (agreed & TSR_STEP_ERROR)
                return rc ? rc : peer_failed(ctx);
            int orc = tsr_optim_step(ctx->optim, params, grads, NULL);
            if (orc) {
                /* Only a GPU fails here; everyone stops at the next agreement. */
                rc = tsr_error_prefix(orc, "rank %d, step %ld: optimizer: ", ctx->rank, step + 1);
                ctx->pending_status |= TSR_STEP_ERROR;
            }
            /* Every rank updated the same weights from the same sums, so all
             * stop here together, before this step's checkpoint. */
            if (!ctx->gpu && (orc = check_finite(ctx, step + 1)))
                return orc;
            tsr_train_monitor_step(ctx, tsr_time_now() - ts, tsr_comm_last_exposed_seconds(ctx->comm),
                                   tsr_comm_last_hidden_seconds(ctx->comm));
            ctx->comm_exposed += tsr_comm_last_exposed_seconds(ctx->comm);
            ctx->comm_hidden += tsr_comm_last_hidden_seconds(ctx->comm);
            ctx->comm_steps++;
            step++;
            res->steps = step;
            next = (tsr_train_pos_t){step, epoch, s + 1};
            if (next.cursor == ctx->steps_per_epoch)
                next.epoch++, next.cursor = 0;
            if (agreed & TSR_STEP_STOP) {
                /* Everyone saw the request at the same step; rank 0 writes. */
                wrc = TSR_OK;
                if (ctx->rank == 0) {
                    tsr_progress_clear(&prog);
                    if (tsr_runtime_stop_signal())
                        tsr_log(TSR_LOG_INFO, "stop requested by signal %d at step %ld: writing a checkpoint",
                                tsr_runtime_stop_signal(), step);
                    else
                        tsr_log(TSR_LOG_INFO, "stop requested by a signal to another rank at step %ld: writing "
                                "a checkpoint", step);
                    wrc = ctx->ckpt ? tsr_train_ckpt_write(ctx, step, &next, 1) : TSR_OK;
                    if (!wrc)
                        tsr_log(TSR_LOG_INFO, "checkpoint %s written; exiting with status 75 so the job can be "
                                "requeued", tsr_ckpt_last_path(ctx->ckpt));
                }
                return wrc ? wrc : TSR_ESTOPPED;
            }
            /* A failed checkpoint stops everyone at the next step's agreement. */
            int krc = tsr_train_ckpt_step(ctx, step, &next);
            if (krc) {
                ctx->pending_status |= TSR_STEP_ERROR;
                rc = rc ? rc : krc;
            }
            tsr_fault_step(&ctx->faults, ctx->rank, step);
            epoch_n += b.rows;
            window_n += b.rows;
            int log_now = log_every > 0 && step % log_every == 0;
            if (log_now || tsr_progress_due(&prog, (long)s, (long)ctx->steps_per_epoch))
                take_loss(ctx, &epoch_loss, &window_loss, &rc);
            double el = tsr_time_now() - t0;
            tsr_progress_bar(&prog, epoch, ctx->epochs, (long)s, (long)ctx->steps_per_epoch, window_loss / window_n,
                             (double)epoch_n * ctx->world / (el > 0 ? el : 1e-9));
            if (log_now) {
                /* A log point: every rank is here, and on a GPU the loss read waited already. */
                if (ctx->gpu && (wrc = check_finite(ctx, step)))
                    return wrc;
                double gl = global_mean(ctx, window_loss, (double)window_n, step);
                tsr_train_snapshot_t snap = {"training", step, epoch, gl, res->test_loss, res->test_accuracy,
                                             (double)epoch_n * ctx->world / (el > 0 ? el : 1e-9)};
                tsr_train_monitor_publish(ctx, &snap);
                if (prog.mode == 2)
                    tsr_progress_line(&prog, "epoch %ld step %zu/%zu loss %.4f lr %.4g %.0f samples/s", epoch + 1,
                                      s + 1, ctx->steps_per_epoch, gl, tsr_optim_lr(ctx->optim, step - 1),
                                      (double)epoch_n * ctx->world / (el > 0 ? el : 1e-9));
                window_loss = 0;
                window_n = 0;
            }
        }
        take_loss(ctx, &epoch_loss, &window_loss, &rc);
        int frc = check_finite(ctx, step);
        if (frc)
            return frc;
        double el = tsr_time_now() - t0;
        loop_seconds += el;
        samples += (double)epoch_n * ctx->world;
        res->train_loss = global_mean(ctx, epoch_loss, (double)epoch_n, step);
        res->epochs = epoch + 1;
        if (eval && (rc = evaluate(ctx, &res->test_loss, &res->test_accuracy, step)))
            return rc;
        /* Finite weights can still give a NaN or Inf loss (they overflow in
         * forward; with skip_step every later update is then skipped). The
         * sums are global, so every rank decides the same. */
        if (!isfinite(res->train_loss) || (eval && !isfinite(res->test_loss)))
            return tsr_error_set(TSR_EDIVERGED, "training diverged: after epoch %ld (step %ld) the %s loss is %g; "
                                 "likely causes: a learning rate too high for this model (optim.lr = %g) or inputs "
                                 "that are not scaled; no model file was written or registered", epoch + 1, step,
                                 isfinite(res->train_loss) ? "test" : "training",
                                 isfinite(res->train_loss) ? res->test_loss : res->train_loss,
                                 tsr_config_get_double(ctx->cfg, "optim", "lr"));
        tsr_train_snapshot_t snap = {"training", step, epoch + 1, res->train_loss, res->test_loss,
                                     res->test_accuracy, (double)epoch_n * ctx->world / el};
        tsr_train_monitor_publish(ctx, &snap);
        if (eval && ctx->test_y)
            tsr_progress_line(&prog, "epoch %ld/%ld train loss %.4f test loss %.4f accuracy %.2f%% %.0f samples/s",
                              epoch + 1, ctx->epochs, res->train_loss, res->test_loss, 100 * res->test_accuracy,
                              (double)epoch_n * ctx->world / el);
        else
            tsr_progress_line(&prog, "epoch %ld/%ld train loss %.4f %.0f samples/s", epoch + 1, ctx->epochs,
                              res->train_loss, (double)epoch_n * ctx->world / el);
    }
    if (ctx->pending_status & TSR_STEP_ERROR)
        return rc ? rc : TSR_EIO;
    /* A final checkpoint makes a requeue of a finished job a no-op; every
     * write's result is collected before the run may end well. */
    if (ctx->rank == 0 && ctx->ckpt && (rc = tsr_train_ckpt_end(ctx, step, &next, step > start->step)))
        return rc;
    res->samples_per_second = loop_seconds > 0 ? samples / loop_seconds : 0;
    return rc;
}

/* How much of the gradient reduction backward hid, mean over ranks. */
static void report_comm(tsr_train_ctx_t *ctx)
{
    double in[2] = {ctx->comm_exposed, ctx->comm_hidden}, sum[2] = {0, 0};
    if (tsr_runtime_allreduce(ctx->rt, in, sum, 2, MPI_DOUBLE, MPI_SUM, "the reduction statistics", -1))
        return;
    double ref = tsr_comm_reference_seconds(ctx->comm), n = (double)ctx->comm_steps * ctx->world;
    if (ctx->rank != 0 || ctx->comm_steps == 0 || ref <= 0)
        return;
    tsr_log(TSR_LOG_INFO, "comm %s: a blocking allreduce of the gradients takes %.3f ms; per step the reduction "
            "cost %.3f ms on the critical path and %.3f ms (%.0f%%) was hidden behind backward (mean of %d ranks)",
            tsr_comm_backend(ctx->comm), 1e3 * ref, 1e3 * sum[0] / n, 1e3 * sum[1] / n, 100 * sum[1] / n / ref,
            ctx->world);
}

/* Resumed at the end of training. With the model file there, nothing is
 * trained, written or registered (already_done); without it, the model is
 * evaluated and written as the first run would have. Collective. */
static int finished_already(tsr_train_ctx_t *ctx, const tsr_train_pos_t *start, tsr_train_result_t *res)
{
    const char *out = tsr_config_get(ctx->cfg, "train", "output");
    int present = ctx->rank == 0 && access(out, F_OK) == 0;
    int rc = tsr_runtime_bcast(ctx->rt, &present, 1, MPI_INT, 0, "the check for a finished run");
    if (rc)
        return rc;
    if (present) {
        res->steps = start->step;
        res->epochs = ctx->epochs;
        res->test_loss = res->test_accuracy = res->train_loss = NAN;
        tsr_log(TSR_LOG_INFO, "resume: the checkpoint is at step %ld, the end of this run (%ld epochs, %ld steps): "
                "training had finished; the model file %s and the registry are left as they are", start->step,
                ctx->epochs, ctx->total_steps, out);
        res->already_done = 1;
        return TSR_OK;
    }
    tsr_log(TSR_LOG_INFO, "resume: the checkpoint is at step %ld, the end of this run, but %s is missing: "
            "evaluating and writing it", start->step, out);
    return TSR_OK;
}

int tsr_train_run(tsr_runtime_t *rt, const tsr_config_t *cfg, tsr_train_result_t *res, int *failed_rank)
{
    tsr_train_ctx_t ctx;
    double t0 = tsr_time_now();
    memset(res, 0, sizeof *res);
    int rc = tsr_train_setup(&ctx, rt, cfg, failed_rank);
    if (rc)
        goto out;
    res->nparams = tsr_model_nparams(ctx.model);
    tsr_log(TSR_LOG_INFO, "training %s: %zu samples x %zu features, model %zu parameters, %d ranks x batch %zu, "
            "%zu steps/epoch, comm %s (%zu buckets%s), %d BLAS thread%s per rank",
            ctx.data_path, tsr_dataset_rows(ctx.train), tsr_dataset_dim(ctx.train), res->nparams, ctx.world,
            ctx.batch, ctx.steps_per_epoch, tsr_comm_backend(ctx.comm), tsr_comm_nbuckets(ctx.comm),
            tsr_comm_staged(ctx.comm) ? ", GPU gradients staged through host memory" : "",
            ctx.blas_threads, ctx.blas_threads == 1 ? "" : "s");
    tsr_log(TSR_LOG_DEBUG, "%s: %s", tsr_runtime_hostname(rt), ctx.placement);
    tsr_train_pos_t start;
    rc = tsr_train_ckpt_setup(&ctx);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        goto out;
    if ((rc = tsr_train_ckpt_resume(&ctx, &start, failed_rank)))
        goto out;
    if ((rc = tsr_train_monitor_setup(&ctx, failed_rank)))
        goto out;
    if (start.step >= ctx.total_steps || start.epoch >= ctx.epochs) {
        /* A requeue of a job that had finished: its model file stays. */
        if ((rc = finished_already(&ctx, &start, res)) || res->already_done)
            goto out;
    }
    rc = run_loop(&ctx, &start, res);
    if (!rc && res->steps == start.step && ctx.test && tsr_config_get_bool(cfg, "train", "eval"))
        rc = evaluate(&ctx, &res->test_loss, &res->test_accuracy, start.step); /* nothing trained */
    tsr_fault_point(&ctx.faults, ctx.rank, "end");
    if ((rc = tsr_runtime_agree(rt, ctx.peer_failed ? TSR_OK : rc, failed_rank)))
        goto out;
    report_comm(&ctx);
    /* Every rank holds the same weights; rank 0 writes them. */
    res->skipped_steps = tsr_optim_skipped_steps(ctx.optim);
    if (ctx.rank == 0 && ctx.ckpt) {
        res->ckpt_written = tsr_ckpt_written(ctx.ckpt);
        res->ckpt_failed = tsr_ckpt_failed(ctx.ckpt);
    }
    if (ctx.rank == 0)
        rc = save_model(&ctx, res);
    rc = tsr_runtime_agree(rt, rc, failed_rank);
    res->wall_seconds = tsr_time_now() - t0;
    if (!rc) {
        tsr_train_snapshot_t done = {"done", res->steps, res->epochs, res->train_loss, res->test_loss,
                                     res->test_accuracy, res->samples_per_second};
        tsr_train_monitor_publish(&ctx, &done);
        tsr_train_monitor_finish(&ctx, tsr_config_get(cfg, "train", "output"), 1);
    }
out:
    tsr_train_teardown(&ctx);
    return rc;
}
