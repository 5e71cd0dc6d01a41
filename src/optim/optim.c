/* SGD with momentum and AdamW, PyTorch's update rules, so runs compare. */
#include "tessera/optim.h"
#include "tessera/error.h"
#include "common/vec.h"
#include "compute/gpu_train.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


struct tsr_optim {
    tsr_optim_config_t cfg;
    size_t n;
    long step;
    long nonfinite;  /* the first update (1-based) that left a weight NaN or Inf; 0: none */
    long skipped;    /* updates skipped for non-finite gradients (on_nonfinite = skip) */
    float *state; /* SGD: velocity [n]; AdamW: m [n] then v [n] */
    size_t nstate;
    /* On a GPU (tsr_optim_to_gpu): the state lives there, state mirrors it. */
    tsr_gpu_t *gpu;
    float *dstate;
    double *dsumsq;
    long long *dnote; /* GPU: [0] the first bad update, [1] skipped updates */
};

/* Non-finite check by bits, OR-reduced so loops stay vectorised: a float
 * is NaN or Inf exactly when its exponent bits are all ones, and adding
 * one to that exponent then carries into bit 31. */
#define NF_ACC(acc, x)                                                                                         \
    do {                                                                                                       \
        uint32_t u_;                                                                                           \
        memcpy(&u_, &(x), sizeof u_);                                                                          \
        (acc) |= (u_ & 0x7f800000u) + 0x00800000u;                                                             \
    } while (0)
#define NF_BAD(acc) (((acc) & 0x80000000u) != 0)

static int any_nonfinite(const float *x, size_t n)
{
    uint32_t acc = 0;
    EACH8(i, n, NF_ACC(acc, x[i]));
    return NF_BAD(acc);
}

int tsr_optim_create(const tsr_optim_config_t *cfg, size_t n, tsr_optim_t **out)
{
    if (!(cfg->lr >= 0) || cfg->momentum < 0 || cfg->momentum >= 1 || cfg->beta1 < 0 || cfg->beta1 >= 1 ||
        cfg->beta2 < 0 || cfg->beta2 >= 1 || cfg->eps <= 0)
        return tsr_error_set(TSR_EINVAL, "optim: expected lr >= 0, 0 <= momentum, beta1, beta2 < 1 and eps > 0");
    tsr_optim_t *o = calloc(1, sizeof *o);
    if (!o)
        return tsr_error_set(TSR_ENOMEM, "optim: out of memory");
    o->cfg = *cfg;
    o->n = n;
    o->nstate = cfg->kind == TSR_OPTIM_ADAMW ? 2 * n : (cfg->momentum > 0 ? n : 0);
    if (o->nstate) {
        o->state = calloc(o->nstate, sizeof(float));
        if (!o->state) {
            size_t ns = o->nstate;
            free(o);
            return tsr_error_set(TSR_ENOMEM, "optim: out of memory for %zu state values", ns);
        }
    }
    *out = o;
    return TSR_OK;
}

void tsr_optim_destroy(tsr_optim_t *o)
{
    if (!o)
        return;
    if (o->gpu) {
        tsr_gpu_free(o->gpu, o->dstate);
        tsr_gpu_free(o->gpu, o->dsumsq);
        tsr_gpu_free(o->gpu, o->dnote);
    }
    free(o->state);
    free(o);
}

double tsr_optim_lr(const tsr_optim_t *o, long step)
{
    const tsr_optim_config_t *c = &o->cfg;
    if (c->warmup_steps > 0 && step < c->warmup_steps)
        return c->lr * (double)(step + 1) / (double)c->warmup_steps;
    if (c->schedule == TSR_SCHED_CONSTANT || c->total_steps <= c->warmup_steps)
        return c->lr;
    double t = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
    if (t > 1.0)
        t = 1.0;
    return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1.0 + cos(M_PI * t));
}

static double global_norm(const float *g, size_t n)
{
    /* Four partial sums in double keep it accurate and vectorisable. */
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++)
        s[0] += (double)g[i] * g[i];
    return sqrt(s[0] + s[1] + s[2] + s[3]);
}

/* The same rules as tsr_optim_step with the tsr_gpu_* kernels. The kernels
 * note a non-finite weight in dnote[0] themselves; skipping reads the
 * gradients' sum of squares on the device, so the host never waits. */
static int step_gpu(tsr_optim_t *o, float *p, float *g, double *grad_norm, float lr)
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
    tsr_gpu_guard_t guard = {skip ? o->dsumsq : NULL, o->dnote, o->step + 1};
    if (c->kind == TSR_OPTIM_SGD)
        return tsr_gpu_sgd(o->gpu, p, g, o->nstate ? o->dstate : NULL, n, lr, (float)c->weight_decay,
                           (float)c->momentum, c->nesterov, o->step == 0 && !c->nesterov, &guard);
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t));
    float bc2s = (float)sqrt(1.0 - pow(c->beta2, t));
    return tsr_gpu_adamw(o->gpu, p, g, o->dstate, o->dstate + n, n, lr / bc1, 1.0f - lr * (float)c->weight_decay,
                         (float)c->beta1, (float)c->beta2, (float)c->eps, bc2s, &guard);
}

/* The update proper; returns the OR-reduced non-finite bits of the new weights. */
static uint32_t update_cpu(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr)
{
    const tsr_optim_config_t *c = &o->cfg;
    size_t n = o->n;
    uint32_t nf = 0;
    if (c->kind == TSR_OPTIM_SGD) {
        float wd = (float)c->weight_decay, mu = (float)c->momentum;
        float *restrict v = o->state;
        if (!v) {
            EACH8(i, n, {
                p[i] -= lr * (g[i] + wd * p[i]);
                NF_ACC(nf, p[i]);
            });
        } else if (c->nesterov) {
            EACH8(i, n, {
                float gi = g[i] + wd * p[i];
                v[i] = mu * v[i] + gi;
                p[i] -= lr * (gi + mu * v[i]);
                NF_ACC(nf, p[i]);
            });
        } else if (o->step == 0) {
            /* PyTorch starts the buffer at the first gradient. */
            EACH8(i, n, {
                float gi = g[i] + wd * p[i];
                v[i] = gi;
                p[i] -= lr * gi;
                NF_ACC(nf, p[i]);
            });
        } else {
            EACH8(i, n, {
                float gi = g[i] + wd * p[i];
                v[i] = mu * v[i] + gi;
                p[i] -= lr * v[i];
                NF_ACC(nf, p[i]);
            });
        }
        return nf;
    }
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t));
    float bc2s = (float)sqrt(1.0 - pow(c->beta2, t));
    float step = lr / bc1, decay = 1.0f - lr * (float)c->weight_decay;
    float *restrict m = o->state, *restrict v = o->state + n;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) / bc2s + eps);
        NF_ACC(nf, p[i]);
    }
    return nf;
}

int tsr_optim_step(tsr_optim_t *o, float *restrict p, float *restrict g, double *grad_norm)
{
    const tsr_optim_config_t *c = &o->cfg;
    size_t n = o->n;
    float lr = (float)tsr_optim_lr(o, o->step);
    if (o->gpu) {
        int rc = step_gpu(o, p, g, grad_norm, lr);
        if (!rc)
            o->step++; /* a skip is counted on the device */
        return rc;
    }
    double norm = -1;
    if (c->clip_norm > 0 || grad_norm) {
        norm = global_norm(g, n);
        if (grad_norm)
            *grad_norm = norm;
    }
    /* NaN or Inf gradients: skip the update, leaving weights and state as
     * they were (as PyTorch's GradScaler does), though the step still counts
     * for the schedule, as on a GPU, where the host does not learn of the
     * skip. The norm, if computed, already says; else one read of the
     * gradients. */
    if (c->on_nonfinite == TSR_NONFINITE_SKIP && (norm >= 0 ? !isfinite(norm) : any_nonfinite(g, n))) {
        o->skipped++;
        o->step++;
        return TSR_OK;
    }
    if (c->clip_norm > 0 && norm > c->clip_norm) {
        float f = (float)(c->clip_norm / (norm + 1e-6));
        EACH8(i, n, g[i] *= f);
    }
    /* Checking the new weights costs nothing (they are in registers) and
     * catches NaN or Inf gradients as well as an update that overflowed. */
    if (NF_BAD(update_cpu(o, p, g, lr)) && !o->nonfinite)
        o->nonfinite = o->step + 1;
    o->step++;
    return TSR_OK;
}

/* On a GPU the device keeps the notes: [0] first bad update, [1] skips. */
static int read_notes(tsr_optim_t *o)
{
    long long note[2] = {0, 0};
    if (!o->gpu)
        return TSR_OK;
    int rc = tsr_gpu_download(o->gpu, note, o->dnote, sizeof note);
    if (rc)
        return rc;
    o->nonfinite = (long)note[0];
    o->skipped = (long)note[1];
    return TSR_OK;
}

long tsr_optim_nonfinite_step(tsr_optim_t *o)
{
    if (read_notes(o))
        return -1;
    return o->nonfinite;
}

long tsr_optim_skipped_steps(tsr_optim_t *o)
{
    read_notes(o);
    return o->skipped;
}

long tsr_optim_steps_taken(const tsr_optim_t *o)
{
    return o->step;
}

float *tsr_optim_state(tsr_optim_t *o, size_t *nstate)
{
    *nstate = o->nstate;
    return o->state;
}

void tsr_optim_set_steps_taken(tsr_optim_t *o, long steps)
{
    o->step = steps;
}

int tsr_optim_to_gpu(tsr_optim_t *o, tsr_gpu_t *gpu)
{
    int rc;
    if (o->gpu)
        return tsr_error_set(TSR_EINVAL, "optim: already on a GPU");
    o->gpu = gpu;
    if ((rc = tsr_gpu_alloc(gpu, sizeof(double), (void **)&o->dsumsq)) ||
        (rc = tsr_gpu_alloc(gpu, 2 * sizeof(long long), (void **)&o->dnote)))
        goto fail;
    if (o->nstate && ((rc = tsr_gpu_alloc(gpu, o->nstate * sizeof(float), (void **)&o->dstate)) ||
                      (rc = tsr_optim_upload(o))))
        goto fail;
    return TSR_OK;
fail:
    tsr_error_prefix(rc, "optim: moving %zu state values to the GPU: ", o->nstate);
    tsr_gpu_free(gpu, o->dstate);
    tsr_gpu_free(gpu, o->dsumsq);
    tsr_gpu_free(gpu, o->dnote);
    o->dstate = NULL;
    o->dsumsq = NULL;
    o->dnote = NULL;
    o->gpu = NULL;
    return rc;
}

int tsr_optim_download(tsr_optim_t *o)
{
    if (!o->gpu || !o->nstate)
        return TSR_OK;
    return tsr_gpu_download(o->gpu, o->state, o->dstate, o->nstate * sizeof(float));
}

int tsr_optim_upload(tsr_optim_t *o)
{
    if (!o->gpu || !o->nstate)
        return TSR_OK;
    int rc = tsr_gpu_upload(o->gpu, o->dstate, o->state, o->nstate * sizeof(float));
    return rc ? rc : tsr_gpu_sync(o->gpu);
}
