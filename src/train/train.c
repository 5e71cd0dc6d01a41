/* The step loop: batch -> forward -> backward (buckets reduced as layers
 * finish) -> optimizer; evaluation each epoch; the model file at the end. */
#include "tessera/train.h"
#include "config/schema.h"
#include "tessera/error.h"
#include "train/progress.h"
#include "train/setup.h"
#include "train/deadline.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Backward tells the engine how much of the gradient buffer is final. */
static void grads_ready(size_t offset, void *arg)
{
    tsr_comm_ready_from(arg, offset);
}

/* Mean test loss and accuracy over all ranks' slices. */
static int evaluate(tsr_train_ctx_t *ctx, double *loss, double *acc)
{
    double part[2] = {0, 0}, sum[2];
    size_t correct = 0;
    if (ctx->test_rows) {
        int rc = tsr_model_evaluate(ctx->model, ctx->test_x, ctx->test_y, ctx->test_t, ctx->test_rows, &part[0],
                                    &correct);
        if (rc)
            return rc;
        part[1] = (double)correct;
    }
    if (MPI_Allreduce(part, sum, 2, MPI_DOUBLE, MPI_SUM, tsr_runtime_world(ctx->rt)) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "rank %d: MPI_Allreduce of evaluation results failed", ctx->rank);
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
static double global_mean(tsr_train_ctx_t *ctx, double local_sum, double local_n)
{
    double in[2] = {local_sum, local_n}, out[2] = {0, 0};
    MPI_Allreduce(in, out, 2, MPI_DOUBLE, MPI_SUM, tsr_runtime_world(ctx->rt));
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

/* Rank 0, every step: periodic checkpoints and the result of the last
 * asynchronous write. Returns TSR_STEP_* bits to share with the others. */
static int checkpoint_step(tsr_train_ctx_t *ctx, long step, const tsr_train_pos_t *next)
{
    if (ctx->rank != 0 || !ctx->ckpt)
        return 0;
    int stop_on_error = strcmp(tsr_config_get(ctx->cfg, "checkpoint", "on_error"), "stop") == 0;
    int rc = TSR_OK;
    if (!tsr_ckpt_busy(ctx->ckpt))
        rc = tsr_ckpt_wait(ctx->ckpt);
    if (!rc && tsr_ckpt_due(ctx->ckpt, step))
        rc = tsr_train_ckpt_write(ctx, step, next, 0);
    if (!rc)
        return 0;
    if (stop_on_error) {
        tsr_error_prefix(rc, "checkpoint failed and [checkpoint] on_error = stop: ");
        return TSR_STEP_ERROR;
    }
    if (!ctx->ckpt_failed_warned++)
        tsr_log(TSR_LOG_WARN, "%s; training goes on ([checkpoint] on_error = continue)", tsr_last_error());
    /* A failed write must not block the next one. */
    tsr_ckpt_wait(ctx->ckpt);
    return 0;
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
            int wrc = tsr_train_wait_arrival(ctx, &req, step + 1);
            if (wrc)
                return wrc;
            /* On GPUs a failed rank's NCCL work may never run, and a rank
             * whose engine failed sends nothing, so the others would wait
             * for it forever: stop first (teardown aborts NCCL). */
            if ((agreed & TSR_STEP_ERROR) && (ctx->gpu || (agreed & TSR_STEP_COMM)))
                return rc ? rc : tsr_error_set(TSR_EIO, "rank %d: stopping because another rank failed", ctx->rank);
            /* Everyone arrived, but a peer's GPU work may still hang NCCL. */
            tsr_deadline_arm(ctx->deadline, "the wait for a step's gradient sums");
            int crc = tsr_comm_wait(ctx->comm);
            tsr_deadline_disarm(ctx->deadline);
            if (crc)
                return crc;
            if (agreed & TSR_STEP_ERROR)
                return rc ? rc : tsr_error_set(TSR_EIO, "rank %d: stopping because another rank failed", ctx->rank);
            int orc = tsr_optim_step(ctx->optim, params, grads, NULL);
            if (orc) {
                /* Only a GPU fails here; everyone stops at the next agreement. */
                rc = tsr_error_prefix(orc, "rank %d, step %ld: optimizer: ", ctx->rank, step + 1);
                ctx->pending_status |= TSR_STEP_ERROR;
            }
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
            ctx->pending_status |= checkpoint_step(ctx, step, &next);
            if ((ctx->pending_status & TSR_STEP_ERROR) && !rc)
                rc = TSR_EIO;
            if (step == ctx->fault_step && ctx->rank == ctx->fault_rank)
                raise(SIGKILL);
            while (step == ctx->stall_step && ctx->rank == ctx->stall_rank)
                pause();
            epoch_n += b.rows;
            window_n += b.rows;
            int log_now = log_every > 0 && step % log_every == 0;
            if (log_now || tsr_progress_due(&prog, (long)s, (long)ctx->steps_per_epoch))
                take_loss(ctx, &epoch_loss, &window_loss, &rc);
            double el = tsr_time_now() - t0;
            tsr_progress_bar(&prog, epoch, ctx->epochs, (long)s, (long)ctx->steps_per_epoch, window_loss / window_n,
                             (double)epoch_n * ctx->world / (el > 0 ? el : 1e-9));
            if (log_now) {
                double gl = global_mean(ctx, window_loss, (double)window_n);
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
        double el = tsr_time_now() - t0;
        loop_seconds += el;
        samples += (double)epoch_n * ctx->world;
        res->train_loss = global_mean(ctx, epoch_loss, (double)epoch_n);
        res->epochs = epoch + 1;
        if (eval && (rc = evaluate(ctx, &res->test_loss, &res->test_accuracy)))
            return rc;
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
        return TSR_EIO;
    /* A final checkpoint makes a requeue of a finished job a no-op (after
     * any write in flight, which may be of this very step). */
    if (ctx->rank == 0 && ctx->ckpt)
        tsr_ckpt_wait(ctx->ckpt);
    if (ctx->rank == 0 && ctx->ckpt && tsr_config_get_bool(ctx->cfg, "checkpoint", "final") &&
        tsr_ckpt_last_step(ctx->ckpt) != step) {
        rc = tsr_train_ckpt_write(ctx, step, &next, 1);
        if (rc && strcmp(tsr_config_get(ctx->cfg, "checkpoint", "on_error"), "stop") != 0) {
            tsr_log(TSR_LOG_WARN, "%s; the model file is still written", tsr_last_error());
            rc = TSR_OK;
        }
    } else if (ctx->rank == 0 && ctx->ckpt) {
        tsr_ckpt_wait(ctx->ckpt);
    }
    res->samples_per_second = loop_seconds > 0 ? samples / loop_seconds : 0;
    return rc;
}

/* How much of the gradient reduction backward hid, mean over ranks. */
static void report_comm(tsr_train_ctx_t *ctx)
{
    double in[2] = {ctx->comm_exposed, ctx->comm_hidden}, sum[2] = {0, 0};
    MPI_Allreduce(in, sum, 2, MPI_DOUBLE, MPI_SUM, tsr_runtime_world(ctx->rt));
    double ref = tsr_comm_reference_seconds(ctx->comm), n = (double)ctx->comm_steps * ctx->world;
    if (ctx->rank != 0 || ctx->comm_steps == 0 || ref <= 0)
        return;
    tsr_log(TSR_LOG_INFO, "comm %s: a blocking allreduce of the gradients takes %.3f ms; per step the reduction "
            "cost %.3f ms on the critical path and %.3f ms (%.0f%%) was hidden behind backward (mean of %d ranks)",
            tsr_comm_backend(ctx->comm), 1e3 * ref, 1e3 * sum[0] / n, 1e3 * sum[1] / n, 100 * sum[1] / n / ref,
            ctx->world);
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
    tsr_deadline_arm(ctx.deadline, "set-up of checkpoints, resume and the coordinator");
    rc = tsr_train_ckpt_setup(&ctx);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        goto out;
    if ((rc = tsr_train_ckpt_resume(&ctx, &start, failed_rank)))
        goto out;
    if ((rc = tsr_train_monitor_setup(&ctx, failed_rank)))
        goto out;
    tsr_deadline_disarm(ctx.deadline); /* the steps have the step watchdog */
    rc = run_loop(&ctx, &start, res);
    tsr_deadline_arm(ctx.deadline, "the end of training (agreement, model file)");
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        goto out;
    report_comm(&ctx);
    /* Every rank holds the same weights; rank 0 writes them. */
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
