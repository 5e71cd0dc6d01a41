/* SPDX-License-Identifier: BSD-3-Clause */
/* The layer-wise rules, a trust ratio per tensor (segment):
 * LAMB (You et al. 2020, Algorithm 2, as NVIDIA apex's FusedLAMB with
 * bias correction and grad averaging): u = m^/(sqrt(v^) + eps) + wd p,
 * p -= lr (||p|| / ||u||) u, the ratio 1 where either norm is 0.
 * LARS (You et al. 2017, as torchlars over torch.optim.SGD):
 * d = (g + wd p) eta ||p|| / (||g|| + wd ||p|| + eps), the ratio 1 where
 * either norm is 0, then SGD's momentum on d. Excluded tensors (biases and
 * norm weights by default) get ratio 1 and no weight decay. */
#include "optim/optim_internal.h"
#include "common/vec.h"

#include <math.h>

/* pass 0 returns ||u||^2 and leaves p; pass 1 applies p -= f u. m and v are
 * updated in pass 0 only; both passes compute u with the same operations. */
static double lamb_pass(const tsr_optim_t *o, float *restrict p, const float *restrict g, float *restrict m,
                        float *restrict v, size_t len, float wd, float f, int pass, uint32_t *nf)
{
    const tsr_optim_config_t *c = &o->cfg;
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2s = (float)sqrt(1.0 - pow(c->beta2, t));
    double s = 0;
    if (pass == 0) {
        for (size_t i = 0; i < len; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            float u = (m[i] / bc1) / (sqrtf(v[i]) / bc2s + eps) + wd * p[i];
            s += (double)u * u;
        }
        return s;
    }
    for (size_t i = 0; i < len; i++) {
        float u = (m[i] / bc1) / (sqrtf(v[i]) / bc2s + eps) + wd * p[i];
        p[i] -= f * u;
        NF_ACC(*nf, p[i]);
    }
    return 0;
}

static uint32_t lamb(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr)
{
    uint32_t nf = 0;
    for (int k = 0; k < o->nseg; k++) {
        size_t a = o->seg[k].offset, len = o->seg[k].size;
        int ex = o->seg[k].exclude;
        float wd = ex ? 0.0f : (float)o->cfg.weight_decay;
        float *m = o->state + a, *v = o->state + o->n + a;
        double pn = ex ? 0 : tsr_optim_norm(p + a, len);
        double un = sqrt(lamb_pass(o, p + a, g + a, m, v, len, wd, 0, 0, &nf));
        double ratio = pn > 0 && un > 0 ? pn / un : 1.0;
        lamb_pass(o, p + a, g + a, m, v, len, wd, (float)(lr * ratio), 1, &nf);
    }
    return nf;
}

static uint32_t lars(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr)
{
    const tsr_optim_config_t *c = &o->cfg;
    uint32_t nf = 0;
    float mu = (float)c->momentum;
    int first = o->step == 0; /* PyTorch starts the buffer at the first d */
    for (int k = 0; k < o->nseg; k++) {
        size_t a = o->seg[k].offset, len = o->seg[k].size;
        int ex = o->seg[k].exclude;
        float wd = ex ? 0.0f : (float)c->weight_decay;
        double trust = 1.0;
        if (!ex) {
            double pn = tsr_optim_norm(p + a, len), gn = tsr_optim_norm(g + a, len);
            if (pn > 0 && gn > 0)
                trust = c->trust_coef * pn / (gn + c->weight_decay * pn + c->eps);
        }
        float tr = (float)trust;
        float *restrict pp = p + a;
        const float *restrict gg = g + a;
        if (!o->nopt) {
            NF_EACH16(i, len, nf, {
                pp[i] -= lr * ((gg[i] + wd * pp[i]) * tr);
                NF_LANE(pp[i]);
            });
            continue;
        }
        float *restrict v = o->state + a;
        NF_EACH16(i, len, nf, {
            float d = (gg[i] + wd * pp[i]) * tr;
            v[i] = first ? d : mu * v[i] + d;
            pp[i] -= lr * v[i];
            NF_LANE(pp[i]);
        });
    }
    return nf;
}

uint32_t tsr_optim_update_layerwise(tsr_optim_t *o, float *restrict p, const float *restrict g, float lr)
{
    return o->cfg.kind == TSR_OPTIM_LAMB ? lamb(o, p, g, lr) : lars(o, p, g, lr);
}
