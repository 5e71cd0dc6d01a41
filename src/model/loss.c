/* SPDX-License-Identifier: BSD-3-Clause */
/* Losses on the last layer's output, their gradients, and the metrics of
 * evaluation. Per-sample losses are summed; the caller's scale (1/global
 * batch in training) turns the sum into a mean.
 *   cross_entropy: softmax, optional label smoothing e (target (1-e) on
 *     the label plus e/K everywhere) and class weights w (-sum_j w_j q_j
 *     log p_j per sample);
 *   mse: mean over the K outputs of (out - target)^2;
 *   huber: mean over K of 0.5 e^2 (|e| <= d), d (|e| - d/2) otherwise;
 *   bce: binary cross-entropy on logits, mean over K, against float
 *     targets in [0, 1] (or 0/1 labels with one output). */
#include "model/internal.h"
#include "tessera/error.h"

#include <math.h>
#include <string.h>

static float class_w(const tsr_model_spec_t *s, size_t j) { return s->nclass_weights ? s->class_weight[j] : 1.0f; }

/* One row's cross-entropy; writes scale * dL/dz into d unless d is NULL. */
static double xent_row(const tsr_model_spec_t *s, const float *z, size_t k, int32_t y, float scale, float *d)
{
    float mx = z[0];
    for (size_t j = 1; j < k; j++)
        mx = z[j] > mx ? z[j] : mx;
    /* Each exponential once, in float (the gradient's precision), kept in
     * d for the gradient; summed in double for the loss. */
    double sum = 0;
    if (d) {
        for (size_t j = 0; j < k; j++)
            sum += d[j] = expf(z[j] - mx);
    } else {
        for (size_t j = 0; j < k; j++)
            sum += expf(z[j] - mx);
    }
    double lse = log(sum);
    double eps = s->label_smoothing, loss = 0, wq = 0;
    int simple = eps == 0 && !s->nclass_weights;
    if (simple) {
        loss = lse - (double)(z[y] - mx);
    } else {
        for (size_t j = 0; j < k; j++) {
            double q = eps / (double)k + ((int32_t)j == y ? 1.0 - eps : 0.0), w = class_w(s, j);
            loss -= w * q * ((double)(z[j] - mx) - lse);
            wq += w * q;
        }
    }
    if (d) {
        float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < k; j++) {
            float p = d[j] * inv;
            if (simple) {
                d[j] = (p - ((int32_t)j == y ? 1.0f : 0.0f)) * scale;
            } else {
                double q = eps / (double)k + ((int32_t)j == y ? 1.0 - eps : 0.0);
                d[j] = (float)(((double)p * wq - class_w(s, j) * q) * scale);
            }
        }
    }
    return loss;
}

/* Regression losses over a row of k outputs against targets t. */
static double reg_row(const tsr_model_spec_t *s, const float *o, const float *t, size_t k, float scale, float *d)
{
    double loss = 0;
    float hd = s->huber_delta > 0 ? s->huber_delta : 1.0f;
    for (size_t j = 0; j < k; j++) {
        float e = o[j] - t[j], g;
        switch (s->loss) {
        case TSR_LOSS_HUBER:
            if (fabsf(e) <= hd) {
                loss += 0.5 * (double)e * e;
                g = e;
            } else {
                loss += (double)hd * (fabs((double)e) - 0.5 * hd);
                g = e > 0 ? hd : -hd;
            }
            break;
        case TSR_LOSS_BCE: {
            double z = o[j], tt = t[j];
            loss += (z > 0 ? z : 0) - z * tt + log1p(exp(-fabs(z)));
            g = 1.0f / (1.0f + expf(-o[j])) - t[j];
            break;
        }
        default: /* mse */
            loss += (double)e * e;
            g = 2.0f * e;
            break;
        }
        if (d)
            d[j] = g / (float)k * scale;
    }
    return loss / (double)k;
}

/* The targets of row r: the float targets, or a 0/1 label for bce. */
static const float *row_targets(const int32_t *labels, const float *targets, size_t r, size_t k, float *one)
{
    if (targets)
        return targets + r * k;
    *one = (float)labels[r];
    return one;
}

double model_loss_delta(tsr_model_t *m, const float *out, const int32_t *labels, const float *targets, float scale,
                        float *delta)
{
    size_t rows = m->rows, k = tsr_model_output_size(m);
    double sum = 0.0;
    float one;
    for (size_t r = 0; r < rows; r++) {
        if (m->spec.loss == TSR_LOSS_XENT)
            sum += xent_row(&m->spec, out + r * k, k, labels[r], scale, delta + r * k);
        else
            sum += reg_row(&m->spec, out + r * k, row_targets(labels, targets, r, k, &one), k, scale, delta + r * k);
    }
    return sum;
}

void model_output_transform(const tsr_model_t *m, const float *z, float *p, size_t rows)
{
    size_t k = tsr_model_output_size(m);
    if (m->spec.loss == TSR_LOSS_XENT)
        tsr_compute_softmax(z, p, rows, k);
    else if (m->spec.loss == TSR_LOSS_BCE)
        for (size_t i = 0; i < rows * k; i++)
            p[i] = 1.0f / (1.0f + expf(-z[i]));
    else
        memcpy(p, z, rows * k * sizeof *p);
}

const float *model_eval_forward(tsr_model_t *m, const float *x, size_t n, int *rc)
{
    if (m->dev) {
        *rc = model_gpu_graph_forward(m, x, n, 0);
        return *rc ? NULL : model_gpu_graph_output(m, rc);
    }
    *rc = model_forward(m, x, n, 0);
    return m->act[m->nl];
}

int tsr_model_evaluate_full(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                            tsr_eval_t *e)
{
    /* The dense fast path sums on the device; the graph downloads each
     * batch's outputs and scores them here (top-5, confusion too). */
    if (m->dev && !m->dev->graph) {
        size_t correct = 0;
        double loss = 0;
        int rc = model_gpu_evaluate(m, x, labels, targets, rows, &loss, &correct);
        e->loss += loss;
        e->top1 += correct;
        e->rows += rows;
        return rc;
    }
    size_t k = tsr_model_output_size(m), d = tsr_model_input_size(m);
    float one;
    for (size_t start = 0; start < rows; start += m->max_batch) {
        size_t n = rows - start < m->max_batch ? rows - start : m->max_batch;
        int rc;
        const float *out = model_eval_forward(m, x + start * d, n, &rc);
        if (rc)
            return rc;
        for (size_t r = 0; r < n; r++) {
            const float *o = out + r * k;
            size_t row = start + r;
            if (m->spec.loss != TSR_LOSS_XENT) {
                e->loss += reg_row(&m->spec, o, row_targets(labels, targets, row, k, &one), k, 1.0f, NULL);
                if (m->spec.loss == TSR_LOSS_BCE && labels && k == 1)
                    e->top1 += (o[0] > 0) == (labels[row] != 0);
                continue;
            }
            int32_t y = labels[row];
            e->loss += xent_row(&m->spec, o, k, y, 1.0f, NULL);
            size_t best = 0, above = 0;
            for (size_t j = 1; j < k; j++)
                if (o[j] > o[best])
                    best = j;
            for (size_t j = 0; j < k; j++) /* ties count for the earlier class, as argmax does */
                above += o[j] > o[y] || (o[j] == o[y] && j < (size_t)y);
            e->top1 += best == (size_t)y;
            e->top5 += above < 5;
            if (e->confusion && (size_t)y < e->classes && best < e->classes)
                e->confusion[(size_t)y * e->classes + best]++;
        }
    }
    e->rows += rows;
    return TSR_OK;
}

int tsr_model_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                       double *loss_sum, size_t *correct)
{
    tsr_eval_t e = {0};
    int rc = tsr_model_evaluate_full(m, x, labels, targets, rows, &e);
    *loss_sum = e.loss;
    *correct = e.top1;
    return rc;
}

const char *tsr_loss_name(tsr_loss_t loss)
{
    static const char *const names[] = {"cross_entropy", "mse", "huber", "bce"};
    return (unsigned)loss < 4 ? names[loss] : "unknown";
}

int tsr_loss_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, tsr_loss_name((tsr_loss_t)i)) == 0)
            return i;
    return -1;
}
