/* SPDX-License-Identifier: BSD-3-Clause */
/* The element-wise updates, PyTorch's rules (torch.optim 1.13, the
 * single-tensor paths) so runs compare: SGD, AdamW, Adam, RMSprop; Lion
 * as the paper's (Chen et al. 2023, Algorithm 2). */
#include "optim/optim_internal.h"
#include "common/vec.h"

#include <math.h>

/* 8-wide where the CPU allows (TSR_HOT): the update streams every weight,
 * gradient and momentum once a step (5% of an MLP step at 4-wide). */
TSR_HOT static uint32_t sgd(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr, size_t off, size_t n)
{
    const tsr_optim_config_t *c = &o->cfg;
    uint32_t nf = 0;
    float wd = (float)c->weight_decay, mu = (float)c->momentum;
    float *restrict v = o->state + off;
    if (!o->nopt) {
        NF_EACH16(i, n, nf, {
            p[i] -= lr * (g[i] + wd * p[i]);
            NF_LANE(p[i]);
        });
    } else if (c->nesterov) {
        NF_EACH16(i, n, nf, {
            float gi = g[i] + wd * p[i];
            v[i] = mu * v[i] + gi;
            p[i] -= lr * (gi + mu * v[i]);
            NF_LANE(p[i]);
        });
    } else if (o->step == 0) {
        /* PyTorch starts the buffer at the first gradient. */
        NF_EACH16(i, n, nf, {
            float gi = g[i] + wd * p[i];
            v[i] = gi;
            p[i] -= lr * gi;
            NF_LANE(p[i]);
        });
    } else {
        NF_EACH16(i, n, nf, {
            float gi = g[i] + wd * p[i];
            v[i] = mu * v[i] + gi;
            p[i] -= lr * v[i];
            NF_LANE(p[i]);
        });
    }
    return nf;
}

/* Adam's arrays as parameters: GCC trusts restrict there, and on two
 * locals from one buffer would check their overlap at run time, which
 * -O2's vectoriser declines to do. */
struct adam_k {
    float b1, b2, eps, bc2s, step, decay, l2;
};

TSR_HOT static uint32_t adam_span(const struct adam_k *k, float *restrict p, const float *restrict g, float *restrict m,
                                  float *restrict v, size_t n)
{
    uint32_t nf = 0;
    float b1 = k->b1, b2 = k->b2, eps = k->eps, bc2s = k->bc2s, step = k->step, decay = k->decay, l2 = k->l2;
    NF_EACH16(i, n, nf, {
        float gi = g[i] + l2 * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) / bc2s + eps);
        NF_LANE(p[i]);
    });
    return nf;
}

/* AdamW decays the weights (decoupled); Adam adds wd * p to the gradient. */
static uint32_t adam(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr, int coupled, size_t off,
                     size_t n)
{
    const tsr_optim_config_t *c = &o->cfg;
    float wd = (float)c->weight_decay;
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t));
    struct adam_k k = {.b1 = (float)c->beta1,
                       .b2 = (float)c->beta2,
                       .eps = (float)c->eps,
                       .bc2s = (float)sqrt(1.0 - pow(c->beta2, t)),
                       .step = lr / bc1,
                       .decay = coupled ? 1.0f : 1.0f - lr * wd,
                       .l2 = coupled ? wd : 0.0f};
    return adam_span(&k, p, g, o->state + off, o->state + o->n + off, n);
}

/* c = b1 m + (1 - b1) g; p = p (1 - lr wd) - lr sign(c); m = b2 m + (1 - b2) g.
 * sign(0) = 0 as torch.sign; a NaN c stays NaN so the check sees it, and
 * an infinite gradient, whose sign is finite, is seen in m. */
TSR_HOT static uint32_t lion(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr, size_t off, size_t n)
{
    const tsr_optim_config_t *c = &o->cfg;
    uint32_t nf = 0;
    float b1 = (float)c->beta1, b2 = (float)c->beta2, decay = 1.0f - lr * (float)c->weight_decay;
    float *restrict m = o->state + off;
    NF_EACH16(i, n, nf, {
        float u = b1 * m[i] + (1.0f - b1) * g[i];
        float s = u > 0.0f ? 1.0f : u < 0.0f ? -1.0f : u;
        p[i] = p[i] * decay - lr * s;
        m[i] = b2 * m[i] + (1.0f - b2) * g[i];
        NF_LANE(p[i]);
        NF_LANE(m[i]);
    });
    return nf;
}

/* torch.optim.RMSprop: g += wd p; a = alpha a + (1 - alpha) g^2; centered:
 * mean = alpha mean + (1 - alpha) g, a - mean^2 under the root; then
 * d = g / (sqrt(.) + eps), through a momentum buffer if momentum > 0. */
static uint32_t rmsprop(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr, size_t off, size_t n)
{
    const tsr_optim_config_t *c = &o->cfg;
    size_t all = o->n;
    uint32_t nf = 0;
    float al = (float)c->alpha, eps = (float)c->eps, wd = (float)c->weight_decay, mu = (float)c->momentum;
    float *restrict sq = o->state + off, *restrict mean = c->centered ? o->state + all + off : NULL;
    float *restrict buf = mu > 0 ? o->state + (c->centered ? 2 : 1) * all + off : NULL;
    NF_EACH16(i, n, nf, {
        float gi = g[i] + wd * p[i];
        sq[i] = al * sq[i] + (1.0f - al) * gi * gi;
        float avg;
        if (mean) {
            mean[i] = al * mean[i] + (1.0f - al) * gi;
            avg = sqrtf(sq[i] - mean[i] * mean[i]) + eps;
        } else {
            avg = sqrtf(sq[i]) + eps;
        }
        if (buf) {
            buf[i] = mu * buf[i] + gi / avg;
            p[i] -= lr * buf[i];
        } else {
            p[i] -= lr * (gi / avg);
        }
        NF_LANE(p[i]);
    });
    return nf;
}

int tsr_optim_is_elementwise(tsr_optim_kind_t kind) { return kind != TSR_OPTIM_LAMB && kind != TSR_OPTIM_LARS; }

uint32_t tsr_optim_update_span(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr, size_t off,
                               size_t n)
{
    p += off, g += off;
    switch (o->cfg.kind) {
    case TSR_OPTIM_SGD: return sgd(o, p, g, lr, off, n);
    case TSR_OPTIM_ADAMW: return adam(o, p, g, lr, 0, off, n);
    case TSR_OPTIM_ADAM: return adam(o, p, g, lr, 1, off, n);
    case TSR_OPTIM_LION: return lion(o, p, g, lr, off, n);
    case TSR_OPTIM_RMSPROP: return rmsprop(o, p, g, lr, off, n);
    default: return 0;
    }
}

uint32_t tsr_optim_update_elementwise(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr)
{
    if (!tsr_optim_is_elementwise(o->cfg.kind))
        return tsr_optim_update_layerwise(o, p, g, lr);
    return tsr_optim_update_span(o, p, g, lr, 0, o->n);
}
