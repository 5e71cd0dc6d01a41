/* SPDX-License-Identifier: BSD-3-Clause */
/* The optimizer on a GPU: its arrays in device memory and the updates of
 * rules.c and layerwise.c as tsr_gpu_* kernels. The kernels note a
 * non-finite weight in dnote[0] themselves; skipping reads the gradients'
 * sum of squares on the device, and the per-tensor norms of LARS and LAMB
 * stay there too, so the host never waits. */
#include "optim/optim_internal.h"
#include "compute/gpu_train.h"
#include "tessera/error.h"

#include <math.h>

static int layerwise_gpu(tsr_optim_t *o, float *p, float *g, float lr, tsr_gpu_guard_t guard)
{
    const tsr_optim_config_t *c = &o->cfg;
    int rc = TSR_OK, lamb = c->kind == TSR_OPTIM_LAMB;
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2s = (float)sqrt(1.0 - pow(c->beta2, t));
    for (int k = 0; k < o->nseg && !rc; k++) {
        size_t a = o->seg[k].offset, len = o->seg[k].size;
        int ex = o->seg[k].exclude;
        double *dn = o->dnorm + 2 * k;
        double wd = ex ? 0.0 : c->weight_decay;
        guard.quiet = k > 0; /* a skip counts once */
        if (!ex)
            rc = tsr_gpu_sumsq(o->gpu, p + a, len, dn);
        if (lamb) {
            if (!rc)
                rc =
                    tsr_gpu_lamb_moments(o->gpu, p + a, g + a, o->dstate + a, o->dstate + o->n + a, o->du + a, len,
                                         (float)c->beta1, (float)c->beta2, (float)c->eps, bc1, bc2s, (float)wd, &guard);
            guard.quiet = 1;
            if (!rc && !ex)
                rc = tsr_gpu_sumsq(o->gpu, o->du + a, len, dn + 1);
            if (!rc)
                rc = tsr_gpu_lamb_apply(o->gpu, p + a, o->du + a, len, lr, ex ? NULL : dn, &guard);
        } else {
            if (!rc && !ex)
                rc = tsr_gpu_sumsq(o->gpu, g + a, len, dn + 1);
            if (!rc)
                rc = tsr_gpu_lars(o->gpu, p + a, g + a, o->nopt ? o->dstate + a : NULL, len, lr, wd, (float)c->momentum,
                                  o->step == 0, c->trust_coef, c->eps, ex ? NULL : dn, &guard);
        }
    }
    return rc;
}

int tsr_optim_step_gpu(tsr_optim_t *o, float *p, float *g, double *grad_norm, float lr)
{
    const tsr_optim_config_t *c = &o->cfg;
    size_t n = o->n;
    int rc = TSR_OK, skip = c->on_nonfinite == TSR_NONFINITE_SKIP;
    if (c->clip_norm > 0 || grad_norm || skip) {
        double sumsq = 0;
        rc = tsr_gpu_sumsq(o->gpu, g, n, o->dsumsq);
        /* Only a caller who asks for the norm makes the host wait. */
        if (!rc && grad_norm && !(rc = tsr_gpu_download(o->gpu, &sumsq, o->dsumsq, sizeof sumsq)))
            *grad_norm = sqrt(sumsq);
        if (!rc && c->clip_norm > 0)
            rc = tsr_gpu_clip(o->gpu, g, n, o->dsumsq, c->clip_norm); /* double, as the CPU compares */
    }
    if (rc)
        return rc;
    tsr_gpu_guard_t guard = {skip ? o->dsumsq : NULL, o->dnote, o->step + 1, 0};
    float *s = o->dstate, wd = (float)c->weight_decay;
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2s = (float)sqrt(1.0 - pow(c->beta2, t));
    switch (c->kind) {
    case TSR_OPTIM_SGD:
        return tsr_gpu_sgd(o->gpu, p, g, o->nopt ? s : NULL, n, lr, wd, (float)c->momentum, c->nesterov,
                           o->step == 0 && !c->nesterov, &guard);
    case TSR_OPTIM_ADAMW:
        return tsr_gpu_adamw(o->gpu, p, g, s, s + n, n, lr / bc1, 1.0f - lr * wd, (float)c->beta1, (float)c->beta2,
                             (float)c->eps, bc2s, &guard);
    case TSR_OPTIM_ADAM:
        return tsr_gpu_adam(o->gpu, p, g, s, s + n, n, lr / bc1, 1.0f, wd, (float)c->beta1, (float)c->beta2,
                            (float)c->eps, bc2s, &guard);
    case TSR_OPTIM_LION:
        return tsr_gpu_lion(o->gpu, p, g, s, n, lr, 1.0f - lr * wd, (float)c->beta1, (float)c->beta2, &guard);
    case TSR_OPTIM_RMSPROP: {
        float *mean = c->centered ? s + n : NULL, *buf = c->momentum > 0 ? s + (c->centered ? 2 : 1) * n : NULL;
        return tsr_gpu_rmsprop(o->gpu, p, g, s, mean, buf, n, lr, (float)c->alpha, (float)c->eps, wd,
                               (float)c->momentum, &guard);
    }
    default: return layerwise_gpu(o, p, g, lr, guard);
    }
}

void tsr_optim_gpu_free(tsr_optim_t *o)
{
    if (!o->gpu)
        return;
    tsr_gpu_free(o->gpu, o->dstate);
    tsr_gpu_free(o->gpu, o->dsumsq);
    tsr_gpu_free(o->gpu, o->dnote);
    tsr_gpu_free(o->gpu, o->dnorm);
    tsr_gpu_free(o->gpu, o->du);
    o->dstate = o->du = NULL;
    o->dsumsq = o->dnorm = NULL;
    o->dnote = NULL;
    o->gpu = NULL;
}

int tsr_optim_to_gpu(tsr_optim_t *o, tsr_gpu_t *gpu)
{
    int rc, layerwise = o->cfg.kind == TSR_OPTIM_LAMB || o->cfg.kind == TSR_OPTIM_LARS;
    if (o->gpu)
        return tsr_error_set(TSR_EINVAL, "optim: already on a GPU");
    o->gpu = gpu;
    if ((rc = tsr_gpu_alloc(gpu, sizeof(double), (void **)&o->dsumsq)) ||
        (rc = tsr_gpu_alloc(gpu, 2 * sizeof(long long), (void **)&o->dnote)) ||
        (layerwise && (rc = tsr_gpu_alloc(gpu, 2 * (size_t)o->nseg * sizeof(double), (void **)&o->dnorm))) ||
        (o->cfg.kind == TSR_OPTIM_LAMB && o->n && (rc = tsr_gpu_alloc(gpu, o->n * sizeof(float), (void **)&o->du))))
        goto fail;
    if (o->nopt &&
        ((rc = tsr_gpu_alloc(gpu, o->nopt * sizeof(float), (void **)&o->dstate)) || (rc = tsr_optim_upload(o))))
        goto fail;
    return TSR_OK;
fail:
    tsr_error_prefix(rc, "optim: moving %zu state values to the GPU: ", o->nopt);
    tsr_optim_gpu_free(o);
    return rc;
}
