/* SPDX-License-Identifier: BSD-3-Clause */
/* The layer graph on a GPU: model.c's executor (the same roles, aliases,
 * residual adds and backward order) over device buffers, each layer run by
 * its kind's gpu_forward / gpu_backward on a view of it whose params,
 * grads, state and workspace are device memory (layers.h). Gradients land
 * in the device's flat buffer and each layer with parameters is announced
 * to the ready callback as soon as its backward is queued, so the nccl
 * back-end reduces buckets while backward goes on, as on the fast path.
 * Losses the device has (plain cross-entropy, MSE) stay on it; the others
 * (label smoothing, class weights, huber, bce) are computed on the host
 * from the downloaded outputs with loss.c's code. */
#include "model/internal.h"
#include "model/layers/layers.h"
#include "tessera/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int device_loss(const tsr_model_t *m)
{
    return (m->spec.loss == TSR_LOSS_XENT && m->spec.label_smoothing == 0 && !m->spec.nclass_weights) ||
           m->spec.loss == TSR_LOSS_MSE;
}

/* Layers the executor itself runs (aliases, residual ends, fused activations). */
static int executor_only(const tsr_model_t *m, int i)
{
    return m->role[i] == ROLE_ALIAS || m->role[i] == ROLE_FUSED || m->role[i] == ROLE_RES_END;
}

int model_gpu_graph_check(const tsr_model_t *m, tsr_precision_t prec)
{
    for (int i = 0; i < m->nl; i++) {
        const tsr_layer_kind_t *k = m->layer[i].kind;
        if (executor_only(m, i))
            continue;
        if (!k->gpu_forward || !k->gpu_backward)
            return tsr_error_set(TSR_ENOTSUP,
                                 "model: layer %d (%s, from %s) has no GPU functions (gpu_forward and "
                                 "gpu_backward); add them to the plugin or train with runtime.device = cpu",
                                 i, k->name, layer_kind_origin(k));
        if (prec != TSR_PRECISION_FP32 && strcmp(k->name, "dense"))
            return tsr_error_set(TSR_ENOTSUP,
                                 "model: layer %d (%s) has no %s GPU kernels (mixed precision runs graphs of dense "
                                 "layers); use train.precision = fp32 for this model",
                                 i, k->name, prec == TSR_PRECISION_BF16 ? "bf16" : "fp16");
    }
    if (prec != TSR_PRECISION_FP32)
        return tsr_error_set(TSR_ENOTSUP,
                             "model: the loss %s%s has no %s GPU kernels; use train.precision = fp32 for this model",
                             tsr_loss_name(m->spec.loss),
                             m->spec.label_smoothing != 0 || m->spec.nclass_weights ? " with label smoothing or "
                                                                                      "class weights"
                                                                                    : "",
                             prec == TSR_PRECISION_BF16 ? "bf16" : "fp16");
    return TSR_OK;
}

static size_t shape_n(tsr_shape_t s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

int model_gpu_graph_alloc(tsr_model_t *m)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    size_t nstate = 0, ws = 0, hws = 0;
    d->view = calloc((size_t)m->nl, sizeof *d->view);
    if (!d->view)
        return tsr_error_set(TSR_ENOMEM, "model: out of memory");
    for (int i = 0; i < m->nl; i++) {
        const tsr_layer_t *l = &m->layer[i];
        size_t w = layer_gpu_ws_floats(l);
        nstate += (l->state_floats + 15) & ~(size_t)15;
        ws = w > ws ? w : ws;
        hws = l->ws_floats > hws ? l->ws_floats : hws;
    }
    int rc = tsr_gpu_alloc(g, (nstate + 16) * sizeof(float), (void **)&d->state);
    if (!rc)
        rc = tsr_gpu_alloc(g, (ws + 16) * sizeof(float), (void **)&d->ws);
    if (!rc)
        rc = tsr_gpu_alloc(g, m->max_batch * tsr_model_input_size(m) * sizeof(float), (void **)&d->act[0]);
    size_t soff = 0;
    for (int i = 0; !rc && i < m->nl; i++) {
        tsr_layer_t *l = &m->layer[i];
        layer_gpu_view_t *v = &d->view[i];
        v->dev = *l;
        v->dev.params = d->params + m->off[i];
        v->dev.grads = d->grads + m->off[i];
        v->dev.state = d->state + soff;
        v->host = l;
        v->host_ws = m->ws; /* the host's workspace, at least ws_floats */
        soff += (l->state_floats + 15) & ~(size_t)15;
        if (m->own[i + 1])
            rc = tsr_gpu_alloc(g, m->max_batch * shape_n(l->out) * sizeof(float), (void **)&d->act[i + 1]);
        if (!rc && m->skip[i])
            rc = tsr_gpu_alloc(g, m->max_batch * shape_n(l->in) * sizeof(float), (void **)&d->skip[i]);
    }
    return rc;
}

void model_gpu_graph_free(tsr_model_t *m)
{
    model_gpu_t *d = m->dev;
    for (int i = 0; i < TSR_MODEL_MAX_LAYERS; i++)
        tsr_gpu_free(d->gpu, d->skip[i]);
    tsr_gpu_free(d->gpu, d->state);
    tsr_gpu_free(d->gpu, d->ws);
    free(d->view);
}

static int failed(tsr_model_t *m, int rc)
{
    if (rc && !m->dev->status)
        m->dev->status = rc;
    return rc;
}

/* A step whose forward or backward failed still joins the gradient
 * reduction, with zeros, so no rank waits for this one (as model.c's);
 * the sticky status then stops every rank. */
static double failed_step(tsr_model_t *m, tsr_grad_ready_fn ready, void *arg)
{
    (void)tsr_gpu_memset0(m->dev->gpu, m->dev->grads, m->nparams * sizeof(float));
    if (ready)
        ready(0, arg);
    return NAN;
}

static int layer_error(const tsr_model_t *m, int i, int rc, const char *pass)
{
    char s[48];
    tsr_layer_spec_text(&m->spec.layer[i], s, sizeof s);
    return tsr_error_prefix(rc, "model: layer %d (%s), GPU %s: ", i, s, pass);
}

int model_gpu_graph_forward(tsr_model_t *m, const float *x, size_t rows, int train)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    if (d->status)
        return tsr_error_set(d->status, "model: the GPU failed earlier; giving up");
    tsr_layer_run_t run = model_run_of(m, train);
    run.ws = d->ws;
    m->rows = rows;
    /* embed reads token ids: checked here, where the batch is still on the host. */
    int rc = m->layer[0].kind == &tsr_kind_embed ? layer_embed_check(&m->layer[0], x, rows) : TSR_OK;
    if (rc)
        return failed(m, layer_error(m, 0, rc, "forward"));
    const float *hx = model_to_nhwc(m, x, rows);
    if ((rc = tsr_gpu_upload(g, d->act[0], hx, rows * tsr_model_input_size(m) * sizeof(float))))
        return failed(m, rc);
    d->cur[0] = d->act[0];
    for (int i = 0; i < m->nl; i++) {
        tsr_layer_t *l = &d->view[i].dev;
        float *xi = d->cur[i];
        switch (m->role[i]) {
        case ROLE_NORMAL:
            d->cur[i + 1] = d->act[i + 1];
            rc = l->kind->gpu_forward(l, g, &run, xi, d->cur[i + 1], rows);
            break;
        case ROLE_INPLACE:
            d->cur[i + 1] = xi;
            rc = l->kind->gpu_forward(l, g, &run, xi, xi, rows);
            break;
        case ROLE_RES_END:
            d->cur[i + 1] = d->act[i + 1];
            rc = tsr_gpu_add(g, xi, d->cur[m->block[i]], d->cur[i + 1], rows * shape_n(l->out));
            break;
        default: /* ROLE_ALIAS, ROLE_FUSED */ d->cur[i + 1] = xi; break;
        }
        if (rc)
            return failed(m, layer_error(m, i, rc, "forward"));
    }
    if (train)
        m->step++;
    return TSR_OK;
}

const float *model_gpu_graph_output(tsr_model_t *m, int *rc)
{
    model_gpu_t *d = m->dev;
    *rc = failed(
        m, tsr_gpu_download(d->gpu, m->delta[0], d->cur[m->nl], m->rows * tsr_model_output_size(m) * sizeof(float)));
    return m->delta[0];
}

/* The loss's delta into d->delta[0]: on the device, or on the host. */
static int loss_delta(tsr_model_t *m, const int32_t *labels, const float *targets, float scale, int queued,
                      double *host_loss)
{
    model_gpu_t *d = m->dev;
    size_t k = tsr_model_output_size(m);
    *host_loss = 0;
    if (device_loss(m))
        return model_gpu_loss_delta(m, d->cur[m->nl], k, labels, targets, scale, d->delta[0],
                                    queued ? d->loss_total : d->loss, !queued);
    if (m->spec.loss == TSR_LOSS_XENT ? !labels : !labels && !targets)
        return tsr_error_set(TSR_EINVAL, "model: the loss %s needs %s", tsr_loss_name(m->spec.loss),
                             m->spec.loss == TSR_LOSS_XENT ? "labels" : "targets");
    int rc;
    const float *out = model_gpu_graph_output(m, &rc);
    if (rc)
        return rc;
    *host_loss = model_loss_delta(m, out, labels, targets, scale, m->delta[1]);
    return tsr_gpu_upload(d->gpu, d->delta[0], m->delta[1], m->rows * k * sizeof(float));
}

double model_gpu_graph_backward(tsr_model_t *m, const int32_t *labels, const float *targets, float scale,
                                tsr_grad_ready_fn ready, void *arg, int queued)
{
    model_gpu_t *d = m->dev;
    tsr_gpu_t *g = d->gpu;
    if (d->status)
        return failed_step(m, ready, arg);
    /* The masks of dropout are those of the forward just run. */
    tsr_layer_run_t run = model_run_of(m, 1);
    run.step = m->step - 1;
    run.ws = d->ws;
    size_t n = m->rows;
    double host_loss = 0, loss = NAN;
    int cur = 0, rc = loss_delta(m, labels, targets, scale, queued, &host_loss);
    for (int i = m->nl - 1; !rc && i >= 0; i--) {
        tsr_layer_t *l = &d->view[i].dev;
        float *dy = d->delta[cur];
        size_t len = n * shape_n(l->out);
        switch (m->role[i]) {
        case ROLE_NORMAL:
            if (!l->nparams && !m->needs_dx[i])
                break;
            rc = l->kind->gpu_backward(l, g, &run, d->cur[i], d->cur[i + 1], dy,
                                       m->needs_dx[i] ? d->delta[cur ^ 1] : NULL, n);
            if (m->needs_dx[i])
                cur ^= 1;
            break;
        case ROLE_INPLACE:
            if (m->needs_dx[i])
                rc = l->kind->gpu_backward(l, g, &run, d->cur[i], d->cur[i + 1], dy, dy, n);
            break;
        case ROLE_RES_END:
            if (d->skip[m->block[i]])
                rc = tsr_gpu_copy(g, d->skip[m->block[i]], dy, len * sizeof *dy);
            break;
        case ROLE_ALIAS:
            if (d->skip[i])
                rc = tsr_gpu_add(g, dy, d->skip[i], dy, len);
            break;
        default: break;
        }
        if (rc) {
            rc = layer_error(m, i, rc, "backward");
            break;
        }
        /* Queued, not run: the nccl back-end orders its stream after this. */
        if (l->nparams && ready)
            ready(m->off[i], arg);
    }
    if (!rc && !queued && device_loss(m))
        rc = tsr_gpu_download(g, &loss, d->loss, sizeof loss);
    if (failed(m, rc))
        return failed_step(m, ready, arg);
    if (queued) {
        m->loss_total += host_loss;
        return 0.0;
    }
    return device_loss(m) ? loss : host_loss;
}
