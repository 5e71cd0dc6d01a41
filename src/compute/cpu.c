/* SPDX-License-Identifier: BSD-3-Clause */
/* CPU kernels: element-wise loops the compiler vectorises (GEMM: gemm.c). */
#include "tessera/compute.h"
#include "common/vec.h"
#include "tessera/rng.h"

#include <math.h>
#include <string.h>

TSR_HOT void tsr_compute_add_bias(float *restrict y, const float *restrict bias, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = y + r * n;
        for (size_t j = 0; j < n; j++) {
            row[j] += bias[j];
        }
    }
}

TSR_HOT void tsr_compute_bias_grad(const float *restrict dy, size_t rows, size_t n, float *restrict db)
{
    memset(db, 0, n * sizeof *db);
    for (size_t r = 0; r < rows; r++) {
        const float *restrict row = dy + r * n;
        for (size_t j = 0; j < n; j++) {
            db[j] += row[j];
        }
    }
}

TSR_HOT void tsr_compute_act(tsr_act_t act, float *y, size_t len)
{
    switch (act) {
    case TSR_ACT_RELU:
        for (size_t i = 0; i < len; i++) {
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        }
        break;
    case TSR_ACT_TANH:
        for (size_t i = 0; i < len; i++)
            y[i] = tanhf(y[i]);
        break;
    case TSR_ACT_SIGMOID:
        for (size_t i = 0; i < len; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case TSR_ACT_GELU:
        for (size_t i = 0; i < len; i++)
            y[i] = 0.5f * y[i] * (1.0f + erff(y[i] * 0.70710678118654752f));
        break;
    case TSR_ACT_SILU:
        for (size_t i = 0; i < len; i++)
            y[i] = y[i] / (1.0f + expf(-y[i]));
        break;
    case TSR_ACT_NONE: break;
    }
}

TSR_HOT void tsr_compute_act_backward(tsr_act_t act, const float *restrict y, float *restrict dy, size_t len)
{
    switch (act) {
    /* A plain loop that reads dy unconditionally: a select GCC vectorises
     * (a conditional read compiled to a branch per element, mispredicted on
     * every sign; at -O3 EACH8's 8-loop is unrolled first and stays scalar). */
    case TSR_ACT_RELU:
        for (size_t i = 0; i < len; i++) {
            float d = dy[i];
            dy[i] = y[i] > 0.0f ? d : 0.0f;
        }
        break;
    case TSR_ACT_TANH:
        for (size_t i = 0; i < len; i++) {
            dy[i] *= 1.0f - y[i] * y[i];
        }
        break;
    case TSR_ACT_SIGMOID:
        for (size_t i = 0; i < len; i++) {
            dy[i] *= y[i] * (1.0f - y[i]);
        }
        break;
    default: /* gelu and silu take their derivative from x: tsr_compute_act_x_backward */ break;
    }
}

TSR_HOT void tsr_compute_bias_act(float *restrict y, const float *restrict bias, size_t rows, size_t n, tsr_act_t act)
{
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = y + r * n;
        if (bias) {
            switch (act) {
            case TSR_ACT_RELU: {
                for (size_t j = 0; j < n; j++) {
                    float v = row[j] + bias[j];
                    row[j] = v > 0.0f ? v : 0.0f;
                }
                break;
            }
            case TSR_ACT_NONE:
                for (size_t j = 0; j < n; j++) {
                    row[j] += bias[j];
                }
                break;
            default:
                for (size_t j = 0; j < n; j++) {
                    row[j] += bias[j];
                }
                tsr_compute_act(act, row, n);
                break;
            }
        } else if (act != TSR_ACT_NONE) {
            tsr_compute_act(act, row, n);
        }
    }
}

/* Inlined into both callers' clones, so each is 8-wide where it can be. */
static inline void act_bias_grad(tsr_act_t act, const float *restrict y, float *restrict dy, size_t rows, size_t n,
                                 float *restrict db)
{
    for (size_t r = 0; r < rows; r++) {
        float *restrict d = dy + r * n;
        const float *restrict yr = y + r * n;
        if (act == TSR_ACT_RELU && db) { /* the mask and the column sum in one pass, the same sums */
            for (size_t j = 0; j < n; j++) {
                float v = d[j];
                float g = yr[j] > 0.0f ? v : 0.0f;
                d[j] = g;
                db[j] += g;
            }
            continue;
        }
        tsr_compute_act_backward(act, yr, d, n);
        if (db)
            for (size_t j = 0; j < n; j++)
                db[j] += d[j];
    }
}

TSR_HOT void tsr_compute_act_bias_grad(tsr_act_t act, const float *restrict y, float *restrict dy, size_t rows,
                                       size_t n, float *restrict db)
{
    if (db)
        memset(db, 0, n * sizeof *db);
    act_bias_grad(act, y, dy, rows, n, db);
}

TSR_HOT void tsr_compute_act_bias_grad_add(tsr_act_t act, const float *restrict y, float *restrict dy, size_t rows,
                                           size_t n, float *restrict db)
{
    act_bias_grad(act, y, dy, rows, n, db);
}

TSR_HOT_I64 void tsr_compute_dropout(uint64_t key, uint32_t thr, float scale, const float *restrict in,
                                     float *restrict out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint32_t keep = -(uint32_t)((uint32_t)(tsr_rng_counter(key, i) >> 32) >= thr);
        float v = in[i] * scale;
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        u &= keep; /* dropped: +0, whatever in[i] was (NaN too) */
        memcpy(&out[i], &u, sizeof u);
    }
}

void tsr_compute_act_x(tsr_act_t act, const float *restrict x, float *restrict y, size_t len)
{
    switch (act) {
    case TSR_ACT_GELU:
        for (size_t i = 0; i < len; i++)
            y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case TSR_ACT_SILU:
        for (size_t i = 0; i < len; i++)
            y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    default:
        memcpy(y, x, len * sizeof *y);
        tsr_compute_act(act, y, len);
        break;
    }
}

void tsr_compute_act_x_backward(tsr_act_t act, const float *restrict x, const float *restrict dy, float *restrict dx,
                                size_t len)
{
    switch (act) {
    case TSR_ACT_GELU:
        for (size_t i = 0; i < len; i++) {
            float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
            dx[i] = dy[i] * (cdf + x[i] * pdf);
        }
        break;
    case TSR_ACT_SILU:
        for (size_t i = 0; i < len; i++) {
            float s = 1.0f / (1.0f + expf(-x[i]));
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case TSR_ACT_RELU:
        for (size_t i = 0; i < len; i++) {
            dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        }
        break;
    case TSR_ACT_TANH:
        for (size_t i = 0; i < len; i++) {
            float t = tanhf(x[i]);
            dx[i] = dy[i] * (1.0f - t * t);
        }
        break;
    case TSR_ACT_SIGMOID:
        for (size_t i = 0; i < len; i++) {
            float s = 1.0f / (1.0f + expf(-x[i]));
            dx[i] = dy[i] * s * (1.0f - s);
        }
        break;
    case TSR_ACT_NONE: memcpy(dx, dy, len * sizeof *dx); break;
    }
}

void tsr_compute_softmax(const float *z, float *p, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++) {
        const float *zr = z + r * n;
        float *pr = p + r * n;
        float mx = zr[0];
        for (size_t j = 1; j < n; j++)
            mx = zr[j] > mx ? zr[j] : mx;
        float s = 0.0f;
        for (size_t j = 0; j < n; j++) {
            pr[j] = expf(zr[j] - mx);
            s += pr[j];
        }
        float inv = 1.0f / s;
        for (size_t j = 0; j < n; j++)
            pr[j] *= inv;
    }
}

const char *tsr_act_name(tsr_act_t act)
{
    static const char *const names[] = {"none", "relu", "tanh", "sigmoid", "gelu", "silu"};
    return (unsigned)act < TSR_ACT_COUNT ? names[act] : "unknown";
}

int tsr_act_parse(const char *name)
{
    for (int i = 0; i < TSR_ACT_COUNT; i++)
        if (strcmp(name, tsr_act_name((tsr_act_t)i)) == 0)
            return i;
    return -1;
}
