/* The model on a GPU: the same forward and backward as model.c with the
 * tsr_gpu_* kernels on device buffers. Batches arrive in host memory and
 * are uploaded on the GPU's stream; the host buffers of the model become
 * mirrors (tsr_model_download / tsr_model_upload). Without CUDA in the
 * build, tsr_model_to_gpu fails with the compute module's ENOTSUP. */
#include "model/internal.h"
#include "tessera/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A GPU error is sticky: backward returns a double, so it cannot return
 * the code; tsr_model_status reports it and every later call fails. */
static int failed(tsr_model_t *m, int rc)
{
    if (rc && m->dev && !m->dev->status)
        m->dev->status = rc;
    return rc;
}

int tsr_model_to_gpu(tsr_model_t *m, tsr_gpu_t *gpu)
{
    if (m->dev)
        return tsr_error_set(TSR_EINVAL, "model: already on a GPU");
    if (!gpu)
        return tsr_error_set(TSR_EINVAL, "model: no GPU handle");
    model_gpu_t *d = calloc(1, sizeof *d);
    if (!d)
        return tsr_error_set(TSR_ENOMEM, "model: out of memory");
    d->gpu = gpu;
    m->dev = d;
    int L = m->spec.nlayers, rc;
    size_t k = m->spec.sizes[L];
    size_t pbytes = m->nparams * sizeof(float);
    if ((rc = tsr_gpu_alloc(gpu, pbytes, (void **)&d->params)) || (rc = tsr_gpu_alloc(gpu, pbytes, (void **)&d->grads)))
        goto fail;
    for (int i = 0; i <= L; i++)
        if ((rc = tsr_gpu_alloc(gpu, m->max_batch * m->spec.sizes[i] * sizeof(float), (void **)&d->act[i])))
            goto fail;
    for (int i = 0; i < 2; i++)
        if ((rc = tsr_gpu_alloc(gpu, m->max_batch * m->widest * sizeof(float), (void **)&d->delta[i])))
            goto fail;
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
    tsr_gpu_free(d->gpu, d->params);
    tsr_gpu_free(d->gpu, d->grads);
    for (int i = 0; i <= m->spec.nlayers; i++)
        tsr_gpu_free(d->gpu, d->act[i]);
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

int model_gpu_forward(tsr_model_t *m, const float *x, size_t rows)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    int L = m->spec.nlayers;
    if (d->status)
        return tsr_error_set(d->status, "model: the GPU failed earlier; giving up");
    m->rows = rows;
    int rc = tsr_gpu_upload(g, d->act[0], x, rows * m->spec.sizes[0] * sizeof(float));
    for (int i = 0; !rc && i < L; i++) {
        size_t in = m->spec.sizes[i], outw = m->spec.sizes[i + 1];
        const float *w = d->params + m->off[i];
        /* Y = X W^T + b, as on the CPU */
        rc = tsr_gpu_gemm(g, 0, 1, rows, outw, in, 1.0f, d->act[i], w, 0.0f, d->act[i + 1]);
        if (!rc)
            rc = tsr_gpu_add_bias(g, d->act[i + 1], w + in * outw, rows, outw);
        if (!rc && i < L - 1)
            rc = tsr_gpu_act(g, m->spec.act, d->act[i + 1], rows * outw);
    }
    return failed(m, rc);
}

int model_gpu_output(tsr_model_t *m)
{
    size_t k = m->spec.sizes[m->spec.nlayers];
    return failed(m, tsr_gpu_download(m->dev->gpu, m->act[m->spec.nlayers], m->dev->act[m->spec.nlayers],
                                      m->rows * k * sizeof(float)));
}

/* The loss of the last forward into delta, its sum added to *dsum (on the
 * device; cleared first when reset). */
static int loss_delta(tsr_model_t *m, const int32_t *labels, const float *targets, float scale, float *delta,
                      double *dsum, int reset)
{
    model_gpu_t *d = m->dev;
    size_t rows = m->rows, k = m->spec.sizes[m->spec.nlayers];
    const float *out = d->act[m->spec.nlayers];
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

double model_gpu_backward(tsr_model_t *m, const int32_t *labels, const float *targets, float scale,
                          tsr_grad_ready_fn ready, void *arg, int queued)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    int L = m->spec.nlayers, cur = 0;
    double loss = NAN;
    if (d->status)
        return NAN;
    int rc = loss_delta(m, labels, targets, scale, d->delta[cur], queued ? d->loss_total : d->loss, !queued);
    for (int i = L - 1; !rc && i >= 0; i--) {
        size_t in = m->spec.sizes[i], outw = m->spec.sizes[i + 1];
        const float *w = d->params + m->off[i];
        float *gw = d->grads + m->off[i];
        float *dl = d->delta[cur];
        /* dW = delta^T X, db = column sums of delta */
        rc = tsr_gpu_gemm(g, 1, 0, outw, in, m->rows, 1.0f, dl, d->act[i], 0.0f, gw);
        if (!rc)
            rc = tsr_gpu_bias_grad(g, dl, m->rows, outw, gw + in * outw);
        /* Queued, not run: the NCCL back-end orders its stream after this. */
        if (!rc && ready)
            ready(m->off[i], arg);
        if (!rc && i > 0) {
            rc = tsr_gpu_gemm(g, 0, 0, m->rows, in, outw, 1.0f, dl, w, 0.0f, d->delta[cur ^ 1]);
            if (!rc)
                rc = tsr_gpu_act_backward(g, m->spec.act, d->act[i], d->delta[cur ^ 1], m->rows * in);
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
    return failed(m, rc);
}

int model_gpu_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                       double *loss_sum, size_t *correct)
{
    model_gpu_t *d = m->dev;
    size_t k = m->spec.sizes[m->spec.nlayers], dim = m->spec.sizes[0];
    const float *out = d->act[m->spec.nlayers];
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
    size_t k = m->spec.sizes[m->spec.nlayers], dim = m->spec.sizes[0];
    const float *y = d->act[m->spec.nlayers];
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
        y = d->act[m->spec.nlayers];
    }
    return failed(m, rc);
}
