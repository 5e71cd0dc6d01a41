/* SPDX-License-Identifier: BSD-3-Clause */
/* The step loop: batch -> forward -> backward (buckets reduced as layers
 * finish) -> agreement -> wait -> optimizer; log points and epoch ends
 * (losses averaged over ranks, evaluation, the coordinator's snapshot). */
#include "train/accum.h"
#include "train/progress.h"
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/perf.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The loop's state between steps. */
typedef struct loop {
    tsr_train_ctx_t *ctx;
    tsr_train_result_t *res;
    tsr_progress_t prog;
    float *params, *grads; /* device memory on a GPU: the loop never reads them */
    float scale;           /* 1 / global batch */
    /* Gradient accumulation (sched.accum > 1): the sums of the step's earlier
     * micro-batches, added into the last one's gradients as backward
     * finishes each layer. */
    tsr_accum_t acc;
    /* Sequential accumulation on the CPU: the micro-batches after the
     * first add into the gradients inside backward (dense layers by their
     * GEMM's beta), so no pass over the whole buffer per micro-batch. */
    int add;
    /* One rank on the CPU with an optimizer whose step splits (tsr_optim_
     * splittable): backward updates each layer's weights as it hands them
     * over, while they and their gradients are in cache; [0, fuse_hi) is
     * what this step has not updated yet. */
    int fuse;
    size_t fuse_hi;
    size_t nparams;
    /* reproducible = world with batch norm: every micro-batch's statistics
     * of the step, at its place in the global batch (stats_n floats each). */
    float *stats;
    size_t stats_n;
    double margin; /* walltime margin (rank 0), -1: none */
    int eval;
    int stop_early;       /* early stopping: patience ran out at the last evaluation */
    int rc;               /* this rank's first error, shared at the next agreement */
    long step;            /* global steps done */
    tsr_train_pos_t next; /* where the following batch comes from */
    /* the epoch under way */
    long epoch;
    double t0, epoch_loss, window_loss;
    size_t epoch_n, window_n;
    /* the whole loop */
    double seconds, samples;
} loop_t;

/* Backward tells the engine how much of the gradient buffer is final. */
static void grads_ready(size_t offset, void *arg) { tsr_comm_ready_from(arg, offset); }

/* The last micro-batch's backward: its gradients plus the earlier
 * micro-batches' sums, handed to the engine layer by layer as before. */
static void acc_ready(size_t offset, void *arg)
{
    loop_t *l = arg;
    if (tsr_accum_finish_from(&l->acc, l->grads, offset) && !l->rc)
        l->rc = tsr_error_prefix(TSR_EIO, "rank %d: summing accumulated gradients on the GPU: ", l->ctx->rank);
    tsr_comm_ready_from(l->ctx->comm.engine, offset);
}

/* The fused update (loop_t.fuse) of what backward just finished, after
 * the accumulated sums were added (summed) and the engine told. */
static void fused_ready(size_t offset, void *arg)
{
    loop_t *l = arg;
    if (l->acc.depth && !l->add)
        acc_ready(offset, l);
    else
        tsr_comm_ready_from(l->ctx->comm.engine, offset);
    if (offset < l->fuse_hi) {
        tsr_optim_step_part(l->ctx->net.optim, l->params, l->grads, offset, l->fuse_hi - offset);
        l->fuse_hi = offset;
    }
}

int tsr_train_evaluate(tsr_train_ctx_t *ctx, double *loss, double *acc, long step)
{
    /* A rank whose evaluation fails still joins the sum (with a flag), so nobody waits. */
    const tsr_train_data_t *d = &ctx->data;
    double part[3] = {0, 0, 0}, sum[3];
    size_t correct = 0;
    /* Every rank evaluates with rank 0's batch-norm statistics. */
    int rc = tsr_train_sync_buffers(ctx);
    if (rc)
        return rc;
    tsr_fault_point(&ctx->faults, ctx->rank, "eval");
    tsr_phase_t was = tsr_perf_current(ctx->perf);
    tsr_perf_phase(ctx->perf, TSR_PHASE_EVAL);
    if (d->test_rows) {
        rc = tsr_model_evaluate(ctx->net.model, d->test_x, d->test_y, d->test_t, d->test_rows, &part[0], &correct);
        part[1] = (double)correct;
        part[2] = rc != TSR_OK;
    }
    int arc = tsr_runtime_allreduce(ctx->rt, part, sum, 3, MPI_DOUBLE, MPI_SUM, "the evaluation", step);
    tsr_perf_phase(ctx->perf, was);
    if (rc || arc)
        return rc ? rc : arc;
    if (sum[2] > 0)
        return tsr_error_set(TSR_EIO, "rank %d: stopping because another rank's evaluation failed", ctx->rank);
    *loss = sum[0] / (double)d->test_total;
    *acc = d->test_y ? sum[1] / (double)d->test_total : NAN;
    return TSR_OK;
}

int tsr_train_check_finite(tsr_train_ctx_t *ctx, long now)
{
    /* Free on the CPU (the optimizer checks as it updates); on a GPU it reads
     * the device's note. Every rank holds the same weights: all find the same. */
    long bad = tsr_optim_nonfinite_step(ctx->net.optim);
    if (bad == 0)
        return TSR_OK;
    if (bad < 0)
        return tsr_error_prefix(TSR_EIO, "rank %d: reading the optimizer's notes from the GPU: ", ctx->rank);
    char seen[64] = "", kept[4300] = "";
    if (now > bad)
        snprintf(seen, sizeof seen, " (noticed at step %ld)", now);
    if (ctx->ckpt.engine && tsr_ckpt_last_step(ctx->ckpt.engine) >= 0)
        snprintf(kept, sizeof kept, "; the newest good checkpoint, %s, is kept", tsr_ckpt_last_path(ctx->ckpt.engine));
    return tsr_error_set(TSR_EDIVERGED,
                         "training diverged at step %ld%s: the weights became NaN or Inf (NaN or "
                         "Inf gradients, or an update that overflowed); likely causes: a learning rate too high for "
                         "this model (optim.lr = %g), inputs that are not scaled, or a loss that overflowed; no model "
                         "file was written or registered%s (train.on_nonfinite = skip_step skips updates whose "
                         "gradients are NaN or Inf)",
                         bad, seen, ctx->opt->optim.lr, kept);
}

/* Adds the training loss queued since the last take to both sums. Only a
 * GPU fails here, and then its error is sticky: the next step's agreement
 * stops everyone, as for any failed step. */
static void take_loss(loop_t *l)
{
    double v = 0;
    int rc = tsr_model_take_loss(l->ctx->net.model, &v);
    if (rc) {
        rc = tsr_error_prefix(rc, "rank %d: reading the training loss: ", l->ctx->rank);
        l->rc = l->rc ? l->rc : rc;
        l->ctx->sched.pending_status |= TSR_STEP_ERROR;
        return;
    }
    l->epoch_loss += v;
    l->window_loss += v;
}

/* Global mean of a per-rank loss sum over n local samples. */
static double global_mean(tsr_train_ctx_t *ctx, double local_sum, double local_n, long step)
{
    double in[2] = {local_sum, local_n}, out[2] = {0, 0};
    if (tsr_runtime_allreduce(ctx->rt, in, out, 2, MPI_DOUBLE, MPI_SUM, "the training loss average", step))
        return NAN;
    return out[1] > 0 ? out[0] / out[1] : NAN;
}

/* This rank stops only because another failed: the agreement at the end
 * then reports the rank that failed, with its own message and code. */
static int another_failed(tsr_train_ctx_t *ctx)
{
    ctx->sched.peer_failed = 1;
    return tsr_error_set(TSR_EIO, "rank %d: stopping because another rank failed", ctx->rank);
}

/* Forward and backward of this rank's batch (zero gradients if it could
 * not be read, so that it still joins the reduction); *status gets the
 * TSR_STEP_* bits to share. */
static void compute(loop_t *l, size_t *rows, int *status)
{
    tsr_train_ctx_t *ctx = l->ctx;
    tsr_batch_t b;
    /* Backward hands buckets to the engine, which may wait for peers (a
     * full ring): watched like every other wait. */
    tsr_runtime_watch_begin(ctx->rt, "the gradient exchange during backward", l->step + 1);
    *rows = 0;
    if (tsr_loader_next(ctx->data.loader, &b) != TSR_OK) {
        *status |= TSR_STEP_ERROR;
        l->rc = l->rc ? l->rc : TSR_EIO;
        tsr_model_zero_grads(ctx->net.model);
        tsr_comm_ready_from(ctx->comm.engine, 0);
    } else {
        /* The loader's batch is this rank's share of the global batch: with
         * accumulation its micro-batches run one after another, and only the
         * last one's backward feeds the engine (with the others' sum added). */
        size_t k = ctx->sched.accum, m = b.rows / k, d = tsr_dataset_dim(ctx->data.train);
        size_t kt = b.targets ? tsr_dataset_target_dim(ctx->data.train) : 0;
        *rows = b.rows;
        tsr_accum_begin(&l->acc);
        l->fuse_hi = l->nparams;
        for (size_t i = 0; i < k; i++) {
            int last = i + 1 == k;
            if (ctx->sched.world_repro) {
                /* Dropout's masks keyed by the micro-batch's place in the global batch. */
                tsr_model_set_rng(ctx->net.model, ctx->opt->train.seed, (int)((size_t)ctx->rank * k + i));
                tsr_model_set_step(ctx->net.model, (uint64_t)l->step);
            }
            double tc = tsr_time_now();                              /* TSR_FAULT_SLOW stretches this rank's compute */
            tsr_train_phase_at(&ctx->phases, TSR_PHASE_FORWARD, tc); /* phase: forward */
            tsr_model_forward(ctx->net.model, b.x + i * m * d, m);
            if (l->stats)
                tsr_model_stats_take(ctx->net.model, l->stats + ((size_t)ctx->rank * k + i) * l->stats_n);
            tsr_train_phase(&ctx->phases, TSR_PHASE_BACKWARD); /* phase: backward */
            /* The loss is fetched only when shown: on a GPU the host then need
             * not wait for every step's kernels. A GPU error is sticky. */
            int summed = k > 1 && !l->add; /* the micro-batches' sums kept apart (tsr_accum) */
            tsr_grad_ready_fn ready = !last ? NULL : l->fuse ? fused_ready : summed ? acc_ready : grads_ready;
            void *arg = !last ? NULL : summed || l->fuse ? (void *)l : (void *)ctx->comm.engine;
            int rc = l->add ? tsr_model_set_accumulate(ctx->net.model, i > 0) : TSR_OK;
            /* A host tree: an earlier micro-batch's gradients go straight to its free buffer. */
            float *slot = !last && summed ? tsr_accum_slot(&l->acc) : NULL;
            if (!rc && slot)
                rc = tsr_model_set_grads_target(ctx->net.model, slot);
            if (!rc)
                rc = tsr_model_backward_queued(ctx->net.model, b.labels ? b.labels + i * m : NULL,
                                               b.targets ? b.targets + i * m * kt : NULL, m,
                                               l->scale * tsr_train_amp_loss_scale(ctx), ready, arg);
            if (slot)
                tsr_model_set_grads_target(ctx->net.model, NULL);
            if (!rc && slot)
                tsr_accum_push_slot(&l->acc);
            if (ctx->faults.slow_rank == ctx->rank)
                tsr_fault_slow(&ctx->faults, ctx->rank, tsr_time_now() - tc);
            if (!rc && !last && summed && !slot && tsr_accum_push(&l->acc, l->grads))
                rc = tsr_error_prefix(TSR_EIO, "summing accumulated gradients on the GPU: ");
            if (!rc && last && l->rc && summed) /* acc_ready could not add on the GPU */
                rc = l->rc;
            if (rc) {
                l->rc = l->rc ? l->rc : tsr_error_prefix(rc, "rank %d, step %ld: ", ctx->rank, l->step + 1);
                *status |= TSR_STEP_ERROR;
                if (!last) { /* the reduction still runs, on zeros */
                    tsr_model_zero_grads(ctx->net.model);
                    tsr_comm_ready_from(ctx->comm.engine, 0);
                }
                break;
            }
        }
    }
    tsr_runtime_watch_end(ctx->rt);
    tsr_train_phase(&ctx->phases, TSR_PHASE_REDUCE); /* phase: the agreement and the gradient sums */
    /* The engine fails inside backward's callbacks, which cannot return an
     * error: its sticky status tells. */
    int rc = tsr_comm_status(ctx->comm.engine);
    if (rc) {
        if (!l->rc)
            l->rc = tsr_error_prefix(rc, "rank %d, step %ld: ", ctx->rank, l->step + 1);
        *status |= TSR_STEP_ERROR | TSR_STEP_COMM;
    }
}

/* Batch norm's running statistics in the global batch's order: each rank
 * filled only its micro-batches' records, the others are zero bits, so a
 * bitwise OR gathers them exactly. */
static int apply_stats(loop_t *l)
{
    tsr_train_ctx_t *ctx = l->ctx;
    size_t count = (size_t)ctx->world * ctx->sched.accum, n = count * l->stats_n;
    int rc = tsr_runtime_allreduce(ctx->rt, MPI_IN_PLACE, l->stats, (int)n, MPI_INT, MPI_BOR,
                                   "the batch-norm statistics of the step", l->step + 1);
    if (rc)
        return rc;
    tsr_model_stats_apply(ctx->net.model, l->stats, count);
    memset(l->stats, 0, n * sizeof *l->stats);
    return TSR_OK;
}

/* One step, up to the updated weights. *agreed gets every rank's bits. */
static int step(loop_t *l, size_t *rows, int *agreed)
{
    tsr_train_ctx_t *ctx = l->ctx;
    int status = ctx->sched.pending_status;
    MPI_Request req;
    compute(l, rows, &status);
    tsr_train_walltime_check(ctx, l->margin);
    if (tsr_runtime_stop_signal())
        status |= TSR_STEP_STOP;
    MPI_Iallreduce(&status, agreed, 1, MPI_INT, MPI_BOR, tsr_runtime_world(ctx->rt), &req);
    /* Arrival first: a rank that never comes is caught by the watchdog. */
    int rc = tsr_runtime_wait(ctx->rt, &req, "the step agreement", l->step + 1);
    if (rc)
        return rc;
    /* On GPUs a failed rank's NCCL work may never run, and a rank whose
     * engine failed sends nothing: stop first (teardown aborts NCCL). */
    if ((*agreed & TSR_STEP_ERROR) && (ctx->net.gpu || (*agreed & TSR_STEP_COMM)))
        return l->rc ? l->rc : another_failed(ctx);
    tsr_fault_point(&ctx->faults, ctx->rank, "sums");
    tsr_runtime_watch_begin(ctx->rt, "the gradient sums", l->step + 1);
    rc = tsr_comm_wait(ctx->comm.engine);
    tsr_runtime_watch_end(ctx->rt);
    if (rc)
        return rc;
    if (*agreed & TSR_STEP_ERROR)
        return l->rc ? l->rc : another_failed(ctx);
    if (l->stats && (rc = apply_stats(l)))
        return rc;
    tsr_train_phase(&ctx->phases, TSR_PHASE_OPTIMIZER); /* phase: optimizer */
    int apply = 1;
    rc = tsr_train_amp_unscale(ctx, l->grads, l->nparams, &apply);
    if (!rc && apply && l->fuse) { /* backward updated [fuse_hi, n) */
        tsr_optim_step_part(ctx->net.optim, l->params, l->grads, 0, l->fuse_hi);
        tsr_optim_step_close(ctx->net.optim);
    } else if (!rc && apply) {
        rc = tsr_optim_step(ctx->net.optim, l->params, l->grads, NULL);
    } else if (!rc) /* fp16 overflow: no update, but the step counts (the schedule goes on) */
        tsr_optim_set_steps_taken(ctx->net.optim, tsr_optim_steps_taken(ctx->net.optim) + 1);
    if (rc) { /* only a GPU fails here; everyone stops at the next agreement */
        l->rc = tsr_error_prefix(rc, "rank %d, step %ld: optimizer: ", ctx->rank, l->step + 1);
        ctx->sched.pending_status |= TSR_STEP_ERROR;
    }
    /* Every rank updated the same weights from the same sums, so all stop
     * here together, before this step's checkpoint. */
    if (!ctx->net.gpu && (rc = tsr_train_check_finite(ctx, l->step + 1)))
        return rc;
    tsr_comm_t *c = ctx->comm.engine;
    ctx->comm.exposed += tsr_comm_last_exposed_seconds(c);
    ctx->comm.hidden += tsr_comm_last_hidden_seconds(c);
    ctx->comm.steps++;
    tsr_counter_add(TSR_COUNTER_REDUCE_WAIT_NS, (int64_t)(1e9 * tsr_comm_last_exposed_seconds(c)));
    return TSR_OK;
}

/* Samples per second of the epoch so far, over every rank. */
static double rate(const loop_t *l)
{
    double el = tsr_time_now() - l->t0;
    return (double)l->epoch_n * l->ctx->world / (el > 0 ? el : 1e-9);
}

/* A log point: every rank is here (log_every is the same everywhere). */
static int log_point(loop_t *l, size_t s)
{
    tsr_train_ctx_t *ctx = l->ctx;
    int rc;
    /* On a GPU the loss read waited already. */
    if (ctx->net.gpu && (rc = tsr_train_check_finite(ctx, l->step)))
        return rc;
    double gl = global_mean(ctx, l->window_loss, (double)l->window_n, l->step);
    tsr_train_snapshot_t snap = {"training", l->step, l->epoch, gl, l->res->test_loss, l->res->test_accuracy, rate(l)};
    tsr_train_monitor_publish(ctx, &snap);
    if (l->prog.mode == TSR_PROGRESS_LINES)
        tsr_progress_line(&l->prog, "epoch %ld step %zu/%zu loss %.4f lr %.4g %.0f samples/s", l->epoch + 1, s + 1,
                          ctx->sched.steps_per_epoch, gl, tsr_optim_lr(ctx->net.optim, l->step - 1), rate(l));
    l->window_loss = 0;
    l->window_n = 0;
    return TSR_OK;
}

/* After a step: progress, and a log point every log_every steps. */
static int report_step(loop_t *l, size_t s, size_t rows)
{
    tsr_train_ctx_t *ctx = l->ctx;
    long log_every = ctx->opt->train.log_every, steps = (long)ctx->sched.steps_per_epoch;
    l->epoch_n += rows;
    l->window_n += rows;
    int log_now = log_every > 0 && l->step % log_every == 0;
    if (log_now || tsr_progress_due(&l->prog, (long)s, steps))
        take_loss(l);
    tsr_progress_bar(&l->prog, l->epoch, ctx->sched.epochs, (long)s, steps,
                     l->window_n ? l->window_loss / (double)l->window_n : 0, rate(l));
    return log_now ? log_point(l, s) : TSR_OK;
}

/* The epoch's end: its loss over every rank, the evaluation, a line. */
static int epoch_end(loop_t *l)
{
    tsr_train_ctx_t *ctx = l->ctx;
    tsr_train_result_t *res = l->res;
    take_loss(l);
    int rc = tsr_train_check_finite(ctx, l->step);
    if (rc)
        return rc;
    double el = tsr_time_now() - l->t0, r = (double)l->epoch_n * ctx->world / el;
    l->seconds += el;
    l->samples += (double)l->epoch_n * ctx->world;
    res->train_loss = global_mean(ctx, l->epoch_loss, (double)l->epoch_n, l->step);
    res->epochs = l->epoch + 1;
    if (l->eval && (rc = tsr_train_evaluate(ctx, &res->test_loss, &res->test_accuracy, l->step)))
        return rc;
    /* Finite weights can still give a NaN or Inf loss (they overflow in
     * forward; with skip_step every later update is then skipped). The sums
     * are global, so every rank decides the same. */
    if (!isfinite(res->train_loss) || (l->eval && !isfinite(res->test_loss)))
        return tsr_error_set(TSR_EDIVERGED,
                             "training diverged: after epoch %ld (step %ld) the %s loss is %g; "
                             "likely causes: a learning rate too high for this model (optim.lr = %g) or inputs "
                             "that are not scaled; no model file was written or registered",
                             l->epoch + 1, l->step, isfinite(res->train_loss) ? "test" : "training",
                             isfinite(res->train_loss) ? res->test_loss : res->train_loss, ctx->opt->optim.lr);
    if (l->eval && (rc = tsr_train_early_observe(ctx, l->step, res->test_loss, res->test_accuracy, &l->stop_early)))
        return rc;
    if (ctx->opt->hooks.epoch)
        ctx->opt->hooks.epoch(ctx->opt->hooks.arg, l->epoch + 1, res->train_loss, l->eval ? res->test_loss : NAN,
                              l->eval ? res->test_accuracy : NAN);
    tsr_train_snapshot_t snap = {"training",         l->step, l->epoch + 1, res->train_loss, res->test_loss,
                                 res->test_accuracy, r};
    tsr_train_monitor_publish(ctx, &snap);
    if (l->eval && ctx->data.test_y)
        tsr_progress_line(&l->prog, "epoch %ld/%ld train loss %.4f test loss %.4f accuracy %.2f%% %.0f samples/s",
                          l->epoch + 1, ctx->sched.epochs, res->train_loss, res->test_loss, 100 * res->test_accuracy,
                          r);
    else
        tsr_progress_line(&l->prog, "epoch %ld/%ld train loss %.4f %.0f samples/s", l->epoch + 1, ctx->sched.epochs,
                          res->train_loss, r);
    return TSR_OK;
}

/* An evaluation between epoch ends (train.eval_every), or the one a resumed
 * run owes: its checkpoint was written before the evaluation of its step. */
static int eval_point(loop_t *l)
{
    tsr_train_ctx_t *ctx = l->ctx;
    tsr_train_result_t *res = l->res;
    int rc = tsr_train_evaluate(ctx, &res->test_loss, &res->test_accuracy, l->step);
    if (rc)
        return rc;
    if (!isfinite(res->test_loss))
        return tsr_error_set(TSR_EDIVERGED,
                             "training diverged: at step %ld the test loss is %g; no model file was "
                             "written or registered",
                             l->step, res->test_loss);
    if (ctx->data.test_y)
        tsr_progress_line(&l->prog, "step %ld test loss %.4f accuracy %.2f%%", l->step, res->test_loss,
                          100 * res->test_accuracy);
    else
        tsr_progress_line(&l->prog, "step %ld test loss %.4f", l->step, res->test_loss);
    return tsr_train_early_observe(ctx, l->step, res->test_loss, res->test_accuracy, &l->stop_early);
}

/* Is step (after it, at next) one where the uninterrupted run evaluates? */
static int evaluates_at(const loop_t *l, long step, const tsr_train_pos_t *next)
{
    long every = l->ctx->opt->train.eval_every;
    return l->eval && step > 0 && (next->cursor == 0 || (every > 0 && step % every == 0));
}

static int run(loop_t *lp, const tsr_train_pos_t *start)
{
    loop_t l = *lp; /* the same state; acc is freed by the caller */
    tsr_train_ctx_t *ctx = l.ctx;
    tsr_train_sched_t *sc = &ctx->sched;
    tsr_train_result_t *res = l.res;
    int rc;
    tsr_progress_init(&l.prog, ctx->rank == 0 ? ctx->opt->runtime.progress : TSR_PROGRESS_NONE);
    res->test_loss = res->test_accuracy = NAN;
    res->steps = l.step;
    /* The counters of early stopping must see every evaluation the
     * uninterrupted run saw, the one after the checkpoint's step too. */
    if (ctx->early.on && ctx->early.eval_step < l.step && evaluates_at(&l, l.step, start) && (rc = eval_point(&l)))
        return rc;
    for (l.epoch = start->epoch; l.epoch < sc->stop_epoch && l.step < sc->total_steps && !l.stop_early; l.epoch++) {
        l.t0 = tsr_time_now();
        l.epoch_loss = l.window_loss = 0;
        l.epoch_n = l.window_n = 0;
        for (size_t s = l.epoch == start->epoch ? start->cursor : 0;
             s < sc->steps_per_epoch && l.step < sc->total_steps; s++) {
            double ts = tsr_time_now();
            size_t rows = 0;
            int agreed = 0;
            tsr_train_step_begin(&ctx->phases, l.step + 1); /* phase: data (a step begins) */
            rc = step(&l, &rows, &agreed);
            if (rc) {
                tsr_train_phase(&ctx->phases, TSR_PHASE_OTHER); /* phase: none (a failed step) */
                return rc;
            }
            tsr_counter_add(TSR_COUNTER_STEPS, 1);
            tsr_counter_add(TSR_COUNTER_SAMPLES, (int64_t)rows);
            tsr_train_monitor_step(ctx, tsr_time_now() - ts, tsr_comm_last_exposed_seconds(ctx->comm.engine),
                                   tsr_comm_last_hidden_seconds(ctx->comm.engine));
            res->steps = ++l.step;
            l.next = (tsr_train_pos_t){l.step, l.epoch, s + 1};
            if (l.next.cursor == sc->steps_per_epoch)
                l.next.epoch++, l.next.cursor = 0;
            if (agreed & TSR_STEP_STOP) {
                tsr_train_step_end(&ctx->phases); /* phase: none (the step ends) */
                tsr_progress_clear(&l.prog);
                tsr_perf_phase(ctx->perf, TSR_PHASE_CHECKPOINT);
                return tsr_train_ckpt_stop(ctx, l.step, &l.next);
            }
            /* A failed checkpoint stops everyone at the next step's agreement. */
            tsr_train_phase(&ctx->phases, TSR_PHASE_CHECKPOINT); /* phase: checkpoint */
            rc = tsr_train_ckpt_step(ctx, l.step, &l.next);
            tsr_train_step_end(&ctx->phases); /* phase: none (the step ends) */
            if (rc) {
                sc->pending_status |= TSR_STEP_ERROR;
                l.rc = l.rc ? l.rc : rc;
            }
            tsr_fault_step(&ctx->faults, ctx->rank, l.step);
            if (ctx->opt->hooks.step)
                ctx->opt->hooks.step(ctx->opt->hooks.arg, l.step);
            if ((rc = report_step(&l, s, rows)))
                return rc;
            /* Between epoch ends; an epoch's end evaluates anyway. */
            if (l.next.cursor != 0 && evaluates_at(&l, l.step, &l.next) && (rc = eval_point(&l)))
                return rc;
            if (l.stop_early)
                break;
        }
        if (l.stop_early && l.next.cursor != 0)
            break; /* stopped between epoch ends: this epoch is not complete */
        if ((rc = epoch_end(&l)))
            return rc;
    }
    if (sc->pending_status & TSR_STEP_ERROR)
        return l.rc ? l.rc : TSR_EIO;
    /* A final checkpoint makes a requeue of a finished job a no-op; every
     * write's result is collected before the run may end well. */
    tsr_perf_phase(ctx->perf, TSR_PHASE_CHECKPOINT);
    rc = tsr_train_ckpt_end(ctx, l.step, &l.next, l.step > start->step);
    tsr_perf_phase(ctx->perf, TSR_PHASE_OTHER);
    if (rc)
        return rc;
    res->samples_per_second = l.seconds > 0 ? l.samples / l.seconds : 0;
    return l.rc;
}

int tsr_train_loop(tsr_train_ctx_t *ctx, const tsr_train_pos_t *start, tsr_train_result_t *res)
{
    tsr_train_sched_t *sc = &ctx->sched;
    loop_t l = {
        .ctx = ctx,
        .res = res,
        .params = tsr_model_work_params(ctx->net.model),
        .grads = tsr_model_work_grads(ctx->net.model),
        .scale = 1.0f / (float)(sc->batch * (size_t)ctx->world),
        .nparams = tsr_model_nparams(ctx->net.model),
        .margin = tsr_train_walltime_margin(ctx),
        .eval = ctx->data.test && ctx->opt->train.eval,
        .step = start->step,
        .next = *start,
    };
    l.add = sc->accum > 1 && !sc->world_repro && !ctx->net.gpu;
    l.fuse = ctx->world == 1 && !ctx->net.gpu && tsr_optim_splittable(ctx->net.optim);
    int rc = tsr_accum_init(&l.acc, ctx->net.gpu, l.nparams, l.add ? 1 : sc->accum, sc->world_repro, ctx->rank);
    if (rc)
        return rc;
    l.stats_n = sc->world_repro ? tsr_model_stats_floats(ctx->net.model) : 0;
    size_t all = l.stats_n * sc->accum * (size_t)ctx->world;
    if (all > (size_t)INT_MAX)
        rc = tsr_error_set(TSR_EINVAL, "train.reproducible = world: %zu batch-norm statistics per step; at most %d",
                           all, INT_MAX);
    else if (all && !(l.stats = calloc(all, sizeof *l.stats)))
        rc = tsr_error_set(TSR_ENOMEM, "rank %d: out of memory for the batch-norm statistics", ctx->rank);
    tsr_model_defer_stats(ctx->net.model, l.stats != NULL);
    if (!rc)
        rc = run(&l, start);
    tsr_model_defer_stats(ctx->net.model, 0);
    if (l.add)
        tsr_model_set_accumulate(ctx->net.model, 0);
    free(l.stats);
    tsr_accum_free(&l.acc);
    return rc;
}
