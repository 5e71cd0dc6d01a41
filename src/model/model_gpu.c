/* SPDX-License-Identifier: BSD-3-Clause */
/* The model on a GPU: the same forward and backward as model.c with the
 * tsr_gpu_* kernels on device buffers. Batches arrive in host memory and
 * are uploaded on the GPU's stream; the host buffers of the model become
 * mirrors (tsr_model_download / tsr_model_upload). Without CUDA in the
 * build, tsr_model_to_gpu fails with the compute module's ENOTSUP. */
#include "model/internal.h"
#include "compute/gpu_train.h"
#include "tessera/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The dense layers of a graph that runs on a GPU (gpu_capable in model.c:
 * dense layers, each maybe with relu, tanh or sigmoid fused): their
 * indices, widths (w[0] the input, w[j+1] dense j's output) and activations. */
typedef struct {
    int n, idx[TSR_MODEL_MAX_LAYERS];
    size_t w[TSR_MODEL_MAX_LAYERS + 1];
    tsr_act_t act[TSR_MODEL_MAX_LAYERS];
} dense_t;

static void dense_list(const tsr_model_t *m, dense_t *d)
{
    d->n = 0;
    d->w[0] = tsr_model_input_size(m);
    for (int i = 0; i < m->nl; i++)
        if (m->layer[i].nparams) {
            d->idx[d->n] = i;
            d->act[d->n] = (tsr_act_t)m->layer[i].fused_act;
            d->w[d->n + 1] = (size_t)m->layer[i].out.c;
            d->n++;
        }
}

/* A GPU error is sticky: backward returns a double, so it cannot return
 * the code; tsr_model_status reports it and every later call fails. */
static int failed(tsr_model_t *m, int rc)
{
    if (rc && m->dev && !m->dev->status)
        m->dev->status = rc;
    return rc;
}

int tsr_model_to_gpu(tsr_model_t *m, tsr_gpu_t *gpu) { return tsr_model_to_gpu_precision(m, gpu, TSR_PRECISION_FP32); }

/* The fp32 buffers of an fp32 model, or a mixed model's half ones. */
static int alloc_acts(tsr_model_t *m, model_gpu_t *d, const dense_t *dl)
{
    int L = dl->n, rc = TSR_OK;
    if (d->prec == TSR_PRECISION_FP32) {
        for (int i = 0; !rc && i <= L; i++)
            rc = tsr_gpu_alloc(d->gpu, m->max_batch * dl->w[i] * sizeof(float), (void **)&d->act[i]);
        return rc;
    }
    size_t wide = 0, half = 2; /* bf16 and fp16 are 2 bytes */
    for (int i = 0; i <= L; i++)
        wide = dl->w[i] > wide ? dl->w[i] : wide;
    if ((rc = tsr_gpu_alloc(d->gpu, m->max_batch * wide * sizeof(float), (void **)&d->act[0])) ||
        (rc = tsr_gpu_alloc(d->gpu, m->max_batch * dl->w[L] * sizeof(float), (void **)&d->act[L])) ||
        (rc = tsr_gpu_alloc(d->gpu, m->nparams * half, &d->wh)) ||
        (rc = tsr_gpu_alloc(d->gpu, m->max_batch * wide * half, &d->dh)))
        return rc;
    for (int i = 0; !rc && i < L; i++)
        rc = tsr_gpu_alloc(d->gpu, m->max_batch * dl->w[i] * half, &d->acth[i]);
    return rc;
}

int tsr_model_to_gpu_precision(tsr_model_t *m, tsr_gpu_t *gpu, tsr_precision_t prec)
{
    if ((unsigned)prec > (unsigned)TSR_PRECISION_FP16)
        return tsr_error_set(TSR_EINVAL, "model: unknown precision %d", (int)prec);
    if (m->dev)
        return tsr_error_set(TSR_EINVAL, "model: already on a GPU");
    if (!gpu)
        return tsr_error_set(TSR_EINVAL, "model: no GPU handle");
    /* Dense layers with fused activations and a plain loss take the fast
     * path below; any other graph runs layer by layer (model_gpu_graph.c). */
    int rc;
    if (!m->gpu_ok && (rc = model_gpu_graph_check(m, prec)))
        return rc;
    dense_t dl;
    dense_list(m, &dl);
    model_gpu_t *d = calloc(1, sizeof *d);
    if (!d)
        return tsr_error_set(TSR_ENOMEM, "model: out of memory");
    d->gpu = gpu;
    d->prec = prec;
    d->graph = !m->gpu_ok;
    m->dev = d;
    int L = dl.n;
    size_t k = tsr_model_output_size(m);
    size_t pbytes = m->nparams * sizeof(float);
    if ((rc = tsr_gpu_alloc(gpu, pbytes, (void **)&d->params)) || (rc = tsr_gpu_alloc(gpu, pbytes, (void **)&d->grads)))
        goto fail;
    if ((rc = d->graph ? model_gpu_graph_alloc(m) : alloc_acts(m, d, &dl)))
        goto fail;
    for (int i = 0; i < 2; i++)
        if ((rc = tsr_gpu_alloc(gpu, m->max_batch * m->widest * sizeof(float), (void **)&d->delta[i])))
            goto fail;
    (void)L;
    if (m->spec.loss == TSR_LOSS_XENT)
        rc = tsr_gpu_alloc(gpu, m->max_batch * sizeof(int32_t), (void **)&d->labels);
    else
        rc = tsr_gpu_alloc(gpu, m->max_batch * k * sizeof(float), (void **)&d->targets);
    /* loss and loss_total share one allocation (zeroed). */
    if (rc || (rc = tsr_gpu_alloc(gpu, 2 * sizeof(double), (void **)&d->loss)) ||
        (rc = tsr_gpu_alloc(gpu, sizeof(unsigned long long), (void **)&d->correct)))
        goto fail;
    d->loss_total = d->loss + 1;
    if ((rc = tsr_gpu_upload(gpu, d->params, m->params, pbytes)) || (rc = tsr_gpu_sync(gpu)))
        goto fail;
    return TSR_OK;
fail:
    tsr_error_prefix(rc, "model: moving %zu parameters (batch %zu) to GPU %d: ", m->nparams, m->max_batch,
                     tsr_gpu_device(gpu));
    model_gpu_free(m);
    return rc;
}

void model_gpu_free(tsr_model_t *m)
{
    model_gpu_t *d = m->dev;
    if (!d)
        return;
    model_gpu_graph_free(m);
    tsr_gpu_free(d->gpu, d->params);
    tsr_gpu_free(d->gpu, d->grads);
    for (int i = 0; i <= TSR_MODEL_MAX_LAYERS; i++)
        tsr_gpu_free(d->gpu, d->act[i]);
    for (int i = 0; i < TSR_MODEL_MAX_LAYERS; i++)
        tsr_gpu_free(d->gpu, d->acth[i]);
    tsr_gpu_free(d->gpu, d->wh);
    tsr_gpu_free(d->gpu, d->dh);
    tsr_gpu_free(d->gpu, d->delta[0]);
    tsr_gpu_free(d->gpu, d->delta[1]);
    tsr_gpu_free(d->gpu, d->labels);
    tsr_gpu_free(d->gpu, d->targets);
    tsr_gpu_free(d->gpu, d->loss);
    tsr_gpu_free(d->gpu, d->correct);
    free(d);
    m->dev = NULL;
}

tsr_gpu_t *tsr_model_gpu(const tsr_model_t *m) { return m->dev ? m->dev->gpu : NULL; }
float *tsr_model_work_params(tsr_model_t *m) { return m->dev ? m->dev->params : m->params; }
float *tsr_model_work_grads(tsr_model_t *m) { return m->dev ? m->dev->grads : m->grads; }
int tsr_model_status(const tsr_model_t *m) { return m->dev ? m->dev->status : TSR_OK; }

int tsr_model_download(tsr_model_t *m)
{
    if (!m->dev)
        return TSR_OK;
    return failed(m, tsr_gpu_download(m->dev->gpu, m->params, m->dev->params, m->nparams * sizeof(float)));
}

int tsr_model_upload(tsr_model_t *m)
{
    if (!m->dev)
        return TSR_OK;
    int rc = tsr_gpu_upload(m->dev->gpu, m->dev->params, m->params, m->nparams * sizeof(float));
    return failed(m, rc ? rc : tsr_gpu_sync(m->dev->gpu));
}

int tsr_model_zero_grads(tsr_model_t *m)
{
    if (!m->dev) {
        memset(m->grads, 0, m->nparams * sizeof(float));
        return TSR_OK;
    }
    return failed(m, tsr_gpu_memset0(m->dev->gpu, m->dev->grads, m->nparams * sizeof(float)));
}

/* Mixed forward from the fp32 input in act[0]: the weights and each
 * layer's input cast to half, the GEMM accumulating fp32 into act[0] (the
 * last layer: act[L]), bias and activation fp32, the result cast half for
 * the next layer. */
static int half_forward(tsr_model_t *m, const dense_t *dl)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    size_t rows = m->rows;
    int L = dl->n;
    int rc = tsr_gpu_to_half(g, d->prec, d->params, d->wh, m->nparams, NULL);
    if (!rc)
        rc = tsr_gpu_to_half(g, d->prec, d->act[0], d->acth[0], rows * dl->w[0], NULL);
    for (int i = 0; !rc && i < L; i++) {
        size_t in = dl->w[i], outw = dl->w[i + 1], off = m->off[dl->idx[i]];
        float *y = i + 1 == L ? d->act[L] : d->act[0];
        rc = tsr_gpu_gemm_half(g, d->prec, 0, 1, rows, outw, in, 1.0f, d->acth[i], (char *)d->wh + 2 * off, 0.0f, y);
        if (!rc)
            rc = tsr_gpu_add_bias(g, y, d->params + off + in * outw, rows, outw);
        if (!rc && dl->act[i] != TSR_ACT_NONE)
            rc = tsr_gpu_act(g, dl->act[i], y, rows * outw);
        if (!rc && i + 1 < L)
            rc = tsr_gpu_to_half(g, d->prec, y, d->acth[i + 1], rows * outw, NULL);
    }
    return rc;
}

int model_gpu_forward(tsr_model_t *m, const float *x, size_t rows)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    if (d->graph)
        return model_gpu_graph_forward(m, x, rows, 1);
    dense_t dl;
    dense_list(m, &dl);
    int L = dl.n;
    if (d->status)
        return tsr_error_set(d->status, "model: the GPU failed earlier; giving up");
    m->rows = rows;
    int rc = tsr_gpu_upload(g, d->act[0], x, rows * dl.w[0] * sizeof(float));
    if (d->prec != TSR_PRECISION_FP32)
        return failed(m, rc ? rc : half_forward(m, &dl));
    for (int i = 0; !rc && i < L; i++) {
        size_t in = dl.w[i], outw = dl.w[i + 1];
        const float *w = d->params + m->off[dl.idx[i]];
        /* Y = X W^T + b, as on the CPU */
        rc = tsr_gpu_gemm(g, 0, 1, rows, outw, in, 1.0f, d->act[i], w, 0.0f, d->act[i + 1]);
        if (!rc)
            rc = tsr_gpu_add_bias(g, d->act[i + 1], w + in * outw, rows, outw);
        if (!rc && dl.act[i] != TSR_ACT_NONE)
            rc = tsr_gpu_act(g, dl.act[i], d->act[i + 1], rows * outw);
    }
    return failed(m, rc);
}

int model_gpu_output(tsr_model_t *m)
{
    dense_t dl;
    dense_list(m, &dl);
    size_t k = dl.w[dl.n];
    return failed(m, tsr_gpu_download(m->dev->gpu, m->act[m->nl], m->dev->act[dl.n], m->rows * k * sizeof(float)));
}

int model_gpu_loss_delta(tsr_model_t *m, const float *out, size_t k, const int32_t *labels, const float *targets,
                         float scale, float *delta, double *dsum, int reset)
{
    model_gpu_t *d = m->dev;
    size_t rows = m->rows;
    int rc = reset ? tsr_gpu_memset0(d->gpu, dsum, sizeof(double)) : TSR_OK;
    if (rc)
        return rc;
    if (m->spec.loss == TSR_LOSS_XENT) {
        if (!labels)
            return tsr_error_set(TSR_EINVAL, "model: cross-entropy needs labels");
        rc = tsr_gpu_upload(d->gpu, d->labels, labels, rows * sizeof(int32_t));
        return rc ? rc : tsr_gpu_xent_delta(d->gpu, out, d->labels, rows, k, scale, delta, dsum);
    }
    if (!targets)
        return tsr_error_set(TSR_EINVAL, "model: MSE needs targets");
    rc = tsr_gpu_upload(d->gpu, d->targets, targets, rows * k * sizeof(float));
    return rc ? rc : tsr_gpu_mse_delta(d->gpu, out, d->targets, rows, k, scale, delta, dsum);
}

/* Mixed backward of dense layer i: its fp32 delta cast half for the two
 * GEMMs (fp32 results: dW and the previous layer's delta), the bias
 * gradient from the fp32 delta, the activation's derivative from its
 * half-stored output. */
static int half_layer_backward(tsr_model_t *m, const dense_t *dl, int i, const float *dlt, float *prev,
                               tsr_grad_ready_fn ready, void *arg)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    size_t in = dl->w[i], outw = dl->w[i + 1], off = m->off[dl->idx[i]], rows = m->rows;
    float *gw = d->grads + off;
    int rc = tsr_gpu_to_half(g, d->prec, dlt, d->dh, rows * outw, NULL);
    if (!rc)
        rc = tsr_gpu_gemm_half(g, d->prec, 1, 0, outw, in, rows, 1.0f, d->dh, d->acth[i], 0.0f, gw);
    if (!rc)
        rc = tsr_gpu_bias_grad(g, dlt, rows, outw, gw + in * outw);
    if (!rc && ready)
        ready(off, arg);
    if (!rc && i > 0) {
        rc = tsr_gpu_gemm_half(g, d->prec, 0, 0, rows, in, outw, 1.0f, d->dh, (char *)d->wh + 2 * off, 0.0f, prev);
        if (!rc && dl->act[i - 1] != TSR_ACT_NONE)
            rc = tsr_gpu_act_backward_half(g, d->prec, dl->act[i - 1], d->acth[i], prev, rows * in);
    }
    return rc;
}

double model_gpu_backward(tsr_model_t *m, const int32_t *labels, const float *targets, float scale,
                          tsr_grad_ready_fn ready, void *arg, int queued)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    if (d->graph)
        return model_gpu_graph_backward(m, labels, targets, scale, ready, arg, queued);
    dense_t dl;
    dense_list(m, &dl);
    int L = dl.n, cur = 0;
    double loss = NAN;
    if (d->status)
        return NAN;
    int rc = model_gpu_loss_delta(m, d->act[L], dl.w[L], labels, targets, scale, d->delta[cur],
                                  queued ? d->loss_total : d->loss, !queued);
    for (int i = L - 1; !rc && i >= 0; i--) {
        size_t in = dl.w[i], outw = dl.w[i + 1], off = m->off[dl.idx[i]];
        const float *w = d->params + off;
        float *gw = d->grads + off;
        float *dlt = d->delta[cur];
        if (d->prec != TSR_PRECISION_FP32) {
            rc = half_layer_backward(m, &dl, i, dlt, d->delta[cur ^ 1], ready, arg);
            cur ^= 1;
            continue;
        }
        /* dW = delta^T X, db = column sums of delta */
        rc = tsr_gpu_gemm(g, 1, 0, outw, in, m->rows, 1.0f, dlt, d->act[i], 0.0f, gw);
        if (!rc)
            rc = tsr_gpu_bias_grad(g, dlt, m->rows, outw, gw + in * outw);
        /* Queued, not run: the NCCL back-end orders its stream after this. */
        if (!rc && ready)
            ready(off, arg);
        if (!rc && i > 0) {
            rc = tsr_gpu_gemm(g, 0, 0, m->rows, in, outw, 1.0f, dlt, w, 0.0f, d->delta[cur ^ 1]);
            if (!rc && dl.act[i - 1] != TSR_ACT_NONE)
                rc = tsr_gpu_act_backward(g, dl.act[i - 1], d->act[i], d->delta[cur ^ 1], m->rows * in);
            cur ^= 1;
        }
    }
    /* Read last, so the host waits once, after the whole backward is queued. */
    if (!rc && !queued)
        rc = tsr_gpu_download(g, &loss, d->loss, sizeof loss);
    if (failed(m, rc))
        return NAN;
    return queued ? 0.0 : loss;
}

int model_gpu_take_loss(tsr_model_t *m, double *sum)
{
    model_gpu_t *d = m->dev;
    *sum = NAN;
    if (d->status)
        return tsr_error_set(d->status, "model: the GPU failed earlier; giving up");
    int rc = tsr_gpu_download(d->gpu, sum, d->loss_total, sizeof *sum);
    if (!rc)
        rc = tsr_gpu_memset0(d->gpu, d->loss_total, sizeof(double));
    /* The graph's host-side losses (label smoothing, class weights, huber, bce). */
    *sum += m->loss_total;
    m->loss_total = 0;
    return failed(m, rc);
}

int model_gpu_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                       double *loss_sum, size_t *correct)
{
    model_gpu_t *d = m->dev;
    dense_t dl;
    dense_list(m, &dl);
    size_t k = dl.w[dl.n], dim = dl.w[0];
    const float *out = d->act[dl.n];
    unsigned long long ok = 0;
    int rc = tsr_gpu_memset0(d->gpu, d->loss, sizeof(double));
    if (!rc)
        rc = tsr_gpu_memset0(d->gpu, d->correct, sizeof ok);
    for (size_t start = 0; !rc && start < rows; start += m->max_batch) {
        size_t n = rows - start < m->max_batch ? rows - start : m->max_batch;
        if ((rc = model_gpu_forward(m, x + start * dim, n)))
            break;
        if (m->spec.loss == TSR_LOSS_XENT) {
            rc = tsr_gpu_upload(d->gpu, d->labels, labels + start, n * sizeof(int32_t));
            if (!rc)
                rc = tsr_gpu_xent_eval(d->gpu, out, d->labels, n, k, d->loss, d->correct);
        } else {
            rc = tsr_gpu_upload(d->gpu, d->targets, targets + start * k, n * k * sizeof(float));
            if (!rc)
                rc = tsr_gpu_mse_eval(d->gpu, out, d->targets, n, k, d->loss);
        }
    }
    if (!rc)
        rc = tsr_gpu_download(d->gpu, loss_sum, d->loss, sizeof(double));
    if (!rc)
        rc = tsr_gpu_download(d->gpu, &ok, d->correct, sizeof ok);
    *correct = (size_t)ok;
    return failed(m, rc);
}

int model_gpu_predict(tsr_model_t *m, const float *x, size_t rows, float *out)
{
    model_gpu_t *d = m->dev;
    dense_t dl;
    dense_list(m, &dl);
    size_t k = dl.w[dl.n], dim = dl.w[0];
    const float *y = d->act[dl.n];
    int rc = TSR_OK;
    for (size_t start = 0; !rc && start < rows; start += m->max_batch) {
        size_t n = rows - start < m->max_batch ? rows - start : m->max_batch;
        if ((rc = model_gpu_forward(m, x + start * dim, n)))
            break;
        if (m->spec.loss == TSR_LOSS_XENT) {
            rc = tsr_gpu_softmax(d->gpu, y, d->delta[0], n, k);
            y = d->delta[0];
        }
        if (!rc)
            rc = tsr_gpu_download(d->gpu, out + start * k, y, n * k * sizeof(float));
        y = d->act[dl.n];
    }
    return failed(m, rc);
}
