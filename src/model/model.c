/* Dense feed-forward model: forward, loss, backward on flat buffers. */
#include "tessera/model.h"
#include "model/internal.h"
#include "tessera/error.h"
#include "tessera/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int spec_check(const tsr_model_spec_t *s)
{
    if (s->nlayers < 1 || s->nlayers > TSR_MODEL_MAX_LAYERS)
        return tsr_error_set(TSR_EINVAL, "model: %d layers; expected 1 to %d", s->nlayers, TSR_MODEL_MAX_LAYERS);
    for (int i = 0; i <= s->nlayers; i++)
        if (s->sizes[i] == 0 || s->sizes[i] > (1u << 24))
            return tsr_error_set(TSR_EINVAL, "model: layer width %zu at position %d; expected 1 to %u", s->sizes[i],
                                 i, 1u << 24);
    if (s->loss == TSR_LOSS_XENT && s->sizes[s->nlayers] < 2)
        return tsr_error_set(TSR_EINVAL, "model: cross-entropy needs at least 2 outputs, got %zu",
                             s->sizes[s->nlayers]);
    return TSR_OK;
}

int tsr_model_create(const tsr_model_spec_t *spec, size_t max_batch, tsr_model_t **out)
{
    int rc = spec_check(spec);
    if (rc)
        return rc;
    if (max_batch == 0)
        return tsr_error_set(TSR_EINVAL, "model: batch size 0");
    tsr_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return tsr_error_set(TSR_ENOMEM, "model: out of memory");
    m->spec = *spec;
    m->max_batch = max_batch;
    int L = spec->nlayers;
    for (int i = 0; i < L; i++) {
        m->off[i] = m->nparams;
        m->nparams += spec->sizes[i] * spec->sizes[i + 1] + spec->sizes[i + 1];
    }
    m->off[L] = m->nparams;
    for (int i = 0; i <= L; i++)
        m->widest = spec->sizes[i] > m->widest ? spec->sizes[i] : m->widest;
    /* 64-byte alignment keeps BLAS and the vector loops on their fast paths. */
    size_t pbytes = (m->nparams * sizeof(float) + 63) & ~(size_t)63;
    m->params = aligned_alloc(64, pbytes);
    m->grads = aligned_alloc(64, pbytes);
    if (!m->params || !m->grads)
        goto nomem;
    memset(m->params, 0, pbytes);
    memset(m->grads, 0, pbytes);
    for (int i = 1; i <= L; i++) {
        m->act[i] = aligned_alloc(64, (max_batch * spec->sizes[i] * sizeof(float) + 63) & ~(size_t)63);
        if (!m->act[i])
            goto nomem;
    }
    for (int k = 0; k < 2; k++) {
        m->delta[k] = aligned_alloc(64, (max_batch * m->widest * sizeof(float) + 63) & ~(size_t)63);
        if (!m->delta[k])
            goto nomem;
    }
    *out = m;
    return TSR_OK;
nomem:
    tsr_model_destroy(m);
    return tsr_error_set(TSR_ENOMEM, "model: out of memory for %zu parameters and batch %zu", m->nparams,
                         max_batch);
}

void tsr_model_destroy(tsr_model_t *m)
{
    if (!m)
        return;
    model_gpu_free(m);
    free(m->params);
    free(m->grads);
    for (int i = 1; i <= m->spec.nlayers; i++)
        free(m->act[i]);
    free(m->delta[0]);
    free(m->delta[1]);
    free(m);
}

const tsr_model_spec_t *tsr_model_spec(const tsr_model_t *m) { return &m->spec; }
size_t tsr_model_nparams(const tsr_model_t *m) { return m->nparams; }
float *tsr_model_params(tsr_model_t *m) { return m->params; }
float *tsr_model_grads(tsr_model_t *m) { return m->grads; }

size_t tsr_model_layer_offset(const tsr_model_t *m, int layer)
{
    return m->off[layer];
}

double tsr_model_flops_per_sample(const tsr_model_t *m)
{
    /* Forward 2*in*out, weight gradient 2*in*out, input gradient 2*in*out
     * except for the first layer, whose input needs none. */
    double f = 0;
    for (int i = 0; i < m->spec.nlayers; i++)
        f += (i ? 6.0 : 4.0) * (double)m->spec.sizes[i] * (double)m->spec.sizes[i + 1];
    return f;
}

void tsr_model_init(tsr_model_t *m, uint64_t seed)
{
    for (int i = 0; i < m->spec.nlayers; i++) {
        tsr_rng_t r;
        tsr_rng_seed(&r, seed, 0x1000 + (uint64_t)i);
        size_t in = m->spec.sizes[i], outw = m->spec.sizes[i + 1];
        double bound = 1.0 / sqrt((double)in);
        float *w = m->params + m->off[i];
        for (size_t j = 0; j < in * outw + outw; j++)
            w[j] = (float)((2.0 * tsr_rng_uniform(&r) - 1.0) * bound);
    }
}

int tsr_model_forward(tsr_model_t *m, const float *x, size_t rows)
{
    if (rows == 0 || rows > m->max_batch)
        return tsr_error_set(TSR_EINVAL, "model: batch of %zu rows; expected 1 to %zu", rows, m->max_batch);
    if (m->dev)
        return model_gpu_forward(m, x, rows);
    m->act[0] = (float *)x;
    m->rows = rows;
    int L = m->spec.nlayers;
    for (int i = 0; i < L; i++) {
        size_t in = m->spec.sizes[i], outw = m->spec.sizes[i + 1];
        const float *w = m->params + m->off[i];
        const float *b = w + in * outw;
        /* Y = X W^T + b */
        tsr_compute_gemm(0, 1, rows, outw, in, 1.0f, m->act[i], w, 0.0f, m->act[i + 1]);
        tsr_compute_add_bias(m->act[i + 1], b, rows, outw);
        if (i < L - 1)
            tsr_compute_act(m->spec.act, m->act[i + 1], rows * outw);
    }
    return TSR_OK;
}

const float *tsr_model_output(const tsr_model_t *m)
{
    /* On a GPU the host buffer is a cache of the device's output. */
    if (m->dev && model_gpu_output((tsr_model_t *)m) != TSR_OK)
        return NULL;
    return m->act[m->spec.nlayers];
}

/* Loss of the last forward into delta (dLoss/dOutput * scale); returns the sum. */
static double loss_delta(tsr_model_t *m, const int32_t *labels, const float *targets, float scale, float *delta)
{
    size_t rows = m->rows, k = m->spec.sizes[m->spec.nlayers];
    const float *out = tsr_model_output(m);
    double sum = 0.0;
    if (m->spec.loss == TSR_LOSS_XENT) {
        tsr_compute_softmax(out, delta, rows, k);
        for (size_t r = 0; r < rows; r++) {
            float *d = delta + r * k;
            int32_t y = labels[r];
            float p = d[y] > 1e-30f ? d[y] : 1e-30f;
            sum -= log((double)p);
            d[y] -= 1.0f;
            for (size_t j = 0; j < k; j++)
                d[j] *= scale;
        }
    } else {
        float c = 2.0f / (float)k;
        for (size_t i = 0; i < rows * k; i++) {
            float e = out[i] - targets[i];
            sum += (double)e * e / (double)k;
            delta[i] = c * e * scale;
        }
    }
    return sum;
}

double tsr_model_backward(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows, float scale,
                          tsr_grad_ready_fn ready, void *arg)
{
    (void)rows; /* the forward's row count is authoritative */
    if (m->dev)
        return model_gpu_backward(m, labels, targets, scale, ready, arg, 0);
    int L = m->spec.nlayers;
    int cur = 0;
    double loss = loss_delta(m, labels, targets, scale, m->delta[cur]);
    for (int i = L - 1; i >= 0; i--) {
        size_t in = m->spec.sizes[i], outw = m->spec.sizes[i + 1];
        const float *w = m->params + m->off[i];
        float *gw = m->grads + m->off[i];
        float *d = m->delta[cur];
        /* dW = delta^T X, db = column sums of delta */
        tsr_compute_gemm(1, 0, outw, in, m->rows, 1.0f, d, m->act[i], 0.0f, gw);
        tsr_compute_bias_grad(d, m->rows, outw, gw + in * outw);
        if (ready)
            ready(m->off[i], arg);
        if (i > 0) {
            float *dprev = m->delta[cur ^ 1];
            tsr_compute_gemm(0, 0, m->rows, in, outw, 1.0f, d, w, 0.0f, dprev);
            tsr_compute_act_backward(m->spec.act, m->act[i], dprev, m->rows * in);
            cur ^= 1;
        }
    }
    return loss;
}

int tsr_model_backward_queued(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows,
                              float scale, tsr_grad_ready_fn ready, void *arg)
{
    if (m->dev) {
        model_gpu_backward(m, labels, targets, scale, ready, arg, 1);
        return tsr_model_status(m);
    }
    m->loss_total += tsr_model_backward(m, labels, targets, rows, scale, ready, arg);
    return TSR_OK;
}

int tsr_model_take_loss(tsr_model_t *m, double *sum)
{
    if (m->dev)
        return model_gpu_take_loss(m, sum);
    *sum = m->loss_total;
    m->loss_total = 0;
    return TSR_OK;
}

int tsr_model_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                       double *loss_sum, size_t *correct)
{
    if (m->dev)
        return model_gpu_evaluate(m, x, labels, targets, rows, loss_sum, correct);
    size_t k = m->spec.sizes[m->spec.nlayers], d = m->spec.sizes[0];
    double loss = 0.0;
    size_t ok = 0;
    for (size_t start = 0; start < rows; start += m->max_batch) {
        size_t n = rows - start < m->max_batch ? rows - start : m->max_batch;
        int rc = tsr_model_forward(m, x + start * d, n);
        if (rc)
            return rc;
        const float *out = tsr_model_output(m);
        if (m->spec.loss == TSR_LOSS_XENT) {
            for (size_t r = 0; r < n; r++) {
                const float *o = out + r * k;
                size_t best = 0;
                float mx = o[0];
                for (size_t j = 1; j < k; j++)
                    if (o[j] > mx)
                        mx = o[j], best = j;
                double s = 0.0;
                for (size_t j = 0; j < k; j++)
                    s += exp((double)(o[j] - mx));
                loss += log(s) - (double)(o[labels[start + r]] - mx);
                ok += best == (size_t)labels[start + r];
            }
        } else {
            const float *t = targets + start * k;
            for (size_t i = 0; i < n * k; i++) {
                double e = (double)out[i] - (double)t[i];
                loss += e * e / (double)k;
            }
        }
    }
    *loss_sum = loss;
    *correct = ok;
    return TSR_OK;
}

int tsr_model_predict(tsr_model_t *m, const float *x, size_t rows, float *out)
{
    if (m->dev)
        return model_gpu_predict(m, x, rows, out);
    size_t k = m->spec.sizes[m->spec.nlayers], d = m->spec.sizes[0];
    for (size_t start = 0; start < rows; start += m->max_batch) {
        size_t n = rows - start < m->max_batch ? rows - start : m->max_batch;
        int rc = tsr_model_forward(m, x + start * d, n);
        if (rc)
            return rc;
        if (m->spec.loss == TSR_LOSS_XENT)
            tsr_compute_softmax(tsr_model_output(m), out + start * k, n, k);
        else
            memcpy(out + start * k, tsr_model_output(m), n * k * sizeof(float));
    }
    return TSR_OK;
}

const char *tsr_loss_name(tsr_loss_t loss)
{
    return loss == TSR_LOSS_XENT ? "cross_entropy" : "mse";
}

int tsr_model_spec_json(const tsr_model_spec_t *s, char *buf, size_t len)
{
    size_t n = 0;
#define PUT(...) n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__)
    PUT("{\"layers\":[");
    for (int i = 0; i < s->nlayers; i++)
        PUT("%s{\"type\":\"dense\",\"in\":%zu,\"out\":%zu,\"activation\":\"%s\"}", i ? "," : "", s->sizes[i],
            s->sizes[i + 1], tsr_act_name(i < s->nlayers - 1 ? s->act : TSR_ACT_NONE));
    PUT("],\"loss\":\"%s\"}", tsr_loss_name(s->loss));
#undef PUT
    if (n >= len)
        return tsr_error_set(TSR_EINVAL, "model: spec JSON longer than %zu bytes", len);
    return (int)n;
}
