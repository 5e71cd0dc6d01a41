/* SPDX-License-Identifier: BSD-3-Clause */
/* Mixed precision in training (train.precision, GPU only). bf16 needs no
 * more than the model's half path (device.c moves it there): its range is
 * fp32's. fp16 adds dynamic loss scaling with GradScaler's rules
 * (tsr_loss_scaler_t): backward starts from loss * scale, and after the
 * gradient sums the gradients are divided by scale and checked; a step
 * with NaN or Inf gradients skips its update (the optimizer's step count
 * still advances, so the learning-rate schedule follows the steps, as
 * tessera's on_nonfinite = skip_step does) and the scale backs off. The
 * check reads one double from the device per step. Every rank holds the
 * same sums, so every rank decides alike. */
#include "train/setup.h"
#include "compute/gpu_train.h"
#include "tessera/error.h"

#include <math.h>

int tsr_train_amp_setup(tsr_train_ctx_t *ctx)
{
    tsr_train_amp_t *a = &ctx->amp;
    a->prec = ctx->net.gpu ? ctx->opt->train.precision : TSR_PRECISION_FP32;
    a->scaling = a->prec == TSR_PRECISION_FP16;
    tsr_loss_scaler_init(&a->scaler);
    a->scaler.scale = ctx->opt->train.loss_scale;
    a->scaler.interval = ctx->opt->train.loss_scale_interval;
    if (!a->scaling)
        return TSR_OK;
    int rc = tsr_gpu_alloc(ctx->net.gpu, sizeof(double), (void **)&a->dsumsq);
    return rc ? tsr_error_prefix(rc, "rank %d: the loss scaler: ", ctx->rank) : TSR_OK;
}

int tsr_train_amp_register(tsr_train_ctx_t *ctx)
{
    tsr_train_amp_t *a = &ctx->amp;
    size_t one = 1;
    int rc = TSR_OK;
    if (!a->scaling)
        return TSR_OK;
    if ((rc = tsr_ckpt_register(ctx->ckpt.engine, "/amp/scale", &a->scaler.scale, TSR_CKPT_FLOAT64, 1, &one)) ||
        (rc = tsr_ckpt_register(ctx->ckpt.engine, "/amp/good_steps", &a->scaler.good, TSR_CKPT_INT64, 1, &one)))
        return rc;
    return tsr_ckpt_register(ctx->ckpt.engine, "/amp/skipped_steps", &a->scaler.skipped, TSR_CKPT_INT64, 1, &one);
}

int tsr_train_amp_resumed(tsr_train_ctx_t *ctx)
{
    tsr_loss_scaler_t *s = &ctx->amp.scaler;
    if (!ctx->amp.scaling)
        return TSR_OK;
    int64_t i[2] = {s->good, s->skipped};
    int rc = tsr_runtime_bcast(ctx->rt, &s->scale, 1, MPI_DOUBLE, 0, "the checkpoint broadcast");
    if (!rc)
        rc = tsr_runtime_bcast(ctx->rt, i, 2, MPI_INT64_T, 0, "the checkpoint broadcast");
    s->good = i[0], s->skipped = i[1];
    return rc;
}

float tsr_train_amp_loss_scale(const tsr_train_ctx_t *ctx)
{
    return ctx->amp.scaling ? (float)ctx->amp.scaler.scale : 1.0f;
}

int tsr_train_amp_unscale(tsr_train_ctx_t *ctx, float *grads, size_t n, int *apply)
{
    tsr_train_amp_t *a = &ctx->amp;
    *apply = 1;
    if (!a->scaling)
        return TSR_OK;
    double sumsq = 0;
    tsr_gpu_t *g = ctx->net.gpu;
    /* 1/scale is a power of two while scale is one (always, from 65536 by
     * factors 2 and 0.5): the unscale is exact. */
    int rc = tsr_gpu_scale(g, grads, n, (float)(1.0 / a->scaler.scale));
    if (!rc)
        rc = tsr_gpu_sumsq(g, grads, n, a->dsumsq);
    if (!rc)
        rc = tsr_gpu_download(g, &sumsq, a->dsumsq, sizeof sumsq);
    if (rc)
        return tsr_error_prefix(rc, "rank %d: unscaling the fp16 gradients: ", ctx->rank);
    *apply = tsr_loss_scaler_update(&a->scaler, isfinite(sumsq));
    if (!*apply)
        tsr_log(TSR_LOG_DEBUG, "fp16: NaN or Inf gradients; update skipped, loss scale now %g", a->scaler.scale);
    return TSR_OK;
}

void tsr_train_amp_free(tsr_train_ctx_t *ctx)
{
    if (ctx->amp.dsumsq)
        tsr_gpu_free(ctx->net.gpu, ctx->amp.dsumsq);
    ctx->amp.dsumsq = NULL;
}
