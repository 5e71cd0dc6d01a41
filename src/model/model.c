/* SPDX-License-Identifier: BSD-3-Clause */
/* The model graph: layers in sequence (residual blocks spanning some of
 * them) over one flat parameter, gradient and buffer array each. Create
 * works out the shapes, which activations run in place or fuse into the
 * layer before, and allocates every buffer once, so forward and backward
 * allocate nothing. */
#include "tessera/model.h"
#include "model/internal.h"
#include "model/layers/layers.h"
#include "common/bigbuf.h"
#include "common/vec.h"
#include "tessera/error.h"
#include "tessera/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES ((size_t)1 << 28) /* per sample, per layer */

/* Zeroed, page-aligned (tsr_bigbuf_alloc): the optimizer streams the
 * weights and gradients beside its state, the layers their activations. */
static float *falloc(size_t n) { return tsr_bigbuf_alloc(n * sizeof(float), 1); }

static int is_kind(const tsr_layer_t *l, const tsr_layer_kind_t *k) { return l->kind == k; }

/* Shapes and counts of every layer; residual blocks matched. */
int model_build_layers(tsr_model_t *m)
{
    const tsr_model_spec_t *s = &m->spec;
    int open[TSR_MODEL_MAX_LAYERS], nopen = 0;
    char a[48], b[48];
    tsr_shape_t cur = s->input;
    for (int i = 0; i < s->nlayers; i++) {
        tsr_layer_t *l = &m->layer[i];
        const tsr_layer_kind_t *k = tsr_layer_find(s->layer[i].kind);
        if (!k)
            return tsr_error_set(TSR_EINVAL, "model: layer %d: unknown kind \"%s\"", i, s->layer[i].kind);
        l->kind = k;
        l->index = i;
        memcpy(l->arg, s->layer[i].arg, sizeof l->arg);
        l->in = cur;
        l->max_batch = m->max_batch;
        l->sync = s->sync_bn;
        if (k == &tsr_kind_res) {
            open[nopen++] = i;
        } else if (k == &tsr_kind_res_end) {
            if (nopen == 0)
                return tsr_error_set(TSR_EINVAL, "model: layer %d: a residual block closes that was never opened", i);
            int j = open[--nopen];
            m->block[i] = j;
            m->block[j] = i;
            tsr_shape_t kept = m->layer[j].in;
            if (kept.c != cur.c || kept.h != cur.h || kept.w != cur.w)
                return tsr_error_set(TSR_EINVAL,
                                     "model: the residual block of layers %d-%d gives %s but its input "
                                     "is %s: res{...} adds them, so the shapes must agree (layer %d, %s, gives %s)",
                                     j, i, layer_shape_text(cur, a, sizeof a), layer_shape_text(kept, b, sizeof b),
                                     i - 1, i ? m->layer[i - 1].kind->name : "input",
                                     layer_shape_text(cur, a, sizeof a));
        }
        int rc = k->shape(l);
        if (rc) {
            tsr_layer_spec_text(&s->layer[i], a, sizeof a);
            return tsr_error_prefix(rc, "model: layer %d (%s) on input %s: ", i, a,
                                    layer_shape_text(l->in, b, sizeof b));
        }
        if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1 || shape_size(l->out) > MAX_VALUES ||
            l->nparams > ((size_t)1 << 34))
            return tsr_error_set(TSR_EINVAL,
                                 "model: layer %d (%s) gives the shape %dx%dx%d; expected 1 to %zu "
                                 "values",
                                 i, k->name, l->out.c, l->out.h, l->out.w, MAX_VALUES);
        cur = l->out;
    }
    if (nopen)
        return tsr_error_set(TSR_EINVAL, "model: the residual block opened at layer %d is never closed with }",
                             open[nopen - 1]);
    return TSR_OK;
}

/* Which layers alias, run in place or fuse; which buffers are new. */
static void plan_roles(tsr_model_t *m, int *fresh)
{
    int bufid[TSR_MODEL_MAX_LAYERS + 1], writer[TSR_MODEL_MAX_LAYERS + 2], nbuf = 1, needs_y[TSR_MODEL_MAX_LAYERS];
    int open[TSR_MODEL_MAX_LAYERS], nopen = 0, params_before = 0;
    bufid[0] = 0;
    writer[0] = -1; /* the input is the caller's */
    for (int i = 0; i < m->nl; i++) {
        tsr_layer_t *l = &m->layer[i];
        int flags = l->kind->flags;
        needs_y[i] = (flags & TSR_LAYER_NEEDS_Y) != 0;
        m->needs_dx[i] = params_before;
        params_before |= l->nparams > 0;
        fresh[i] = 0;
        if (is_kind(l, &tsr_kind_res)) {
            m->role[i] = ROLE_ALIAS;
            open[nopen++] = i;
        } else if (is_kind(l, &tsr_kind_res_end)) {
            m->role[i] = ROLE_RES_END;
            nopen--;
        } else if (flags & TSR_LAYER_ALIAS) {
            m->role[i] = ROLE_ALIAS;
        } else {
            m->role[i] = ROLE_NORMAL;
            tsr_act_t act = layer_act_of(l->kind);
            int w = writer[bufid[i]], pinned = 0;
            for (int j = 0; j < nopen; j++)
                pinned |= bufid[open[j]] == bufid[i];
            if (needs_y[i] && act != TSR_ACT_NONE && w >= 0 && !needs_y[w] && !pinned) {
                m->role[i] = ROLE_INPLACE;
                if (w == i - 1 && (is_kind(&m->layer[w], &tsr_kind_dense) || is_kind(&m->layer[w], &tsr_kind_conv) ||
                                   (is_kind(&m->layer[w], &tsr_kind_bn) && act == TSR_ACT_RELU))) {
                    m->role[i] = ROLE_FUSED;
                    m->layer[w].fused_act = act;
                    needs_y[w] = 1;
                }
            }
        }
        if (m->role[i] == ROLE_NORMAL || m->role[i] == ROLE_RES_END) {
            bufid[i + 1] = nbuf++;
            fresh[i] = 1;
        } else {
            bufid[i + 1] = bufid[i];
        }
        if (m->role[i] != ROLE_ALIAS)
            writer[bufid[i + 1]] = m->role[i] == ROLE_FUSED ? i - 1 : i;
    }
    /* A conv or batch norm with its ReLU fused, then a maxpool, the only
     * reader of their output (no residual block opens between them): the
     * maxpool applies the ReLU's mask in its backward and the layer skips
     * it (layer.h). */
    for (int i = 2; i < m->nl; i++)
        if (is_kind(&m->layer[i], &tsr_kind_maxpool) && m->role[i] == ROLE_NORMAL && m->role[i - 1] == ROLE_FUSED &&
            (is_kind(&m->layer[i - 2], &tsr_kind_conv) || is_kind(&m->layer[i - 2], &tsr_kind_bn)) &&
            m->layer[i - 2].fused_act == TSR_ACT_RELU) {
            m->layer[i - 2].grad_masked = 1;
            m->layer[i].mask_relu = 1;
            /* The first conv of an image net pools as it goes, and a batch
             * norm whose pool tiles its output pools as it normalises and
             * reads the pooled gradient itself (CPU): neither's full-size
             * output and gradient are written. */
            tsr_layer_t *f = &m->layer[i - 2], *p = &m->layer[i];
            if (is_kind(f, &tsr_kind_conv) ? layer_conv_can_pool(f, p, m->needs_dx[i - 2])
                                           : layer_pool_tiles(p) && f->in.c <= TSR_BN_POOLED_MAX_C) {
                f->pool = p;
                m->pooled[i] = 1;
            }
        }
}

/* Only dense layers with relu, tanh or sigmoid fused into them run on a GPU (model_gpu.c). */
static int gpu_capable(const tsr_model_t *m)
{
    if (m->spec.loss != TSR_LOSS_XENT && m->spec.loss != TSR_LOSS_MSE)
        return 0;
    if (m->spec.label_smoothing != 0 || m->spec.nclass_weights)
        return 0;
    for (int i = 0; i < m->nl; i++) {
        const tsr_layer_t *l = &m->layer[i];
        if (is_kind(l, &tsr_kind_dense) && (l->in.h != 1 || l->in.w != 1))
            return 0;
        if (!is_kind(l, &tsr_kind_dense) && m->role[i] != ROLE_FUSED)
            return 0;
    }
    return is_kind(&m->layer[m->nl - 1], &tsr_kind_dense);
}

int tsr_model_create(const tsr_model_spec_t *spec, size_t max_batch, tsr_model_t **out)
{
    const tsr_shape_t in = spec->input;
    if (spec->nlayers < 1 || spec->nlayers > TSR_MODEL_MAX_LAYERS)
        return tsr_error_set(TSR_EINVAL, "model: %d layers; expected 1 to %d", spec->nlayers, TSR_MODEL_MAX_LAYERS);
    if (in.c < 1 || in.h < 1 || in.w < 1 || (size_t)in.c * (size_t)in.h * (size_t)in.w > MAX_VALUES)
        return tsr_error_set(TSR_EINVAL, "model: input shape %dx%dx%d; expected positive sizes", in.c, in.h, in.w);
    if (max_batch == 0)
        return tsr_error_set(TSR_EINVAL, "model: batch size 0");
    tsr_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return tsr_error_set(TSR_ENOMEM, "model: out of memory");
    m->spec = *spec;
    m->nl = spec->nlayers;
    m->max_batch = max_batch;
    int rc = model_build_layers(m), fresh[TSR_MODEL_MAX_LAYERS];
    if (rc) {
        free(m);
        return rc;
    }
    size_t K = shape_size(m->layer[m->nl - 1].out);
    if (spec->loss == TSR_LOSS_XENT && K < 2) {
        free(m);
        return tsr_error_set(TSR_EINVAL, "model: cross-entropy needs at least 2 outputs, the last layer gives %zu", K);
    }
    plan_roles(m, fresh);
    size_t nstate = 0, ws = 0;
    m->widest = shape_size(in);
    for (int i = 0; i < m->nl; i++) {
        tsr_layer_t *l = &m->layer[i];
        m->off[i] = m->nparams;
        m->boff[i] = m->nbuffers;
        m->nparams += l->nparams;
        m->nbuffers += l->nbuffers;
        nstate += (l->state_floats + 15) & ~(size_t)15;
        ws = l->ws_floats > ws ? l->ws_floats : ws;
        m->widest = shape_size(l->out) > m->widest ? shape_size(l->out) : m->widest;
    }
    m->off[m->nl] = m->nparams;
    m->boff[m->nl] = m->nbuffers;
    m->params = falloc(m->nparams);
    m->grads = falloc(m->nparams);
    m->buffers = falloc(m->nbuffers);
    m->state = falloc(nstate);
    m->ws = falloc(ws + 16);
    if (!m->params || !m->grads || !m->buffers || !m->state || !m->ws)
        goto nomem;
    for (int k = 0; k < 2; k++)
        if (!(m->delta[k] = falloc(max_batch * m->widest)))
            goto nomem;
    if (in.c > 1 && (in.h > 1 || in.w > 1) && !(m->xin = falloc(max_batch * shape_size(in))))
        goto nomem;
    size_t soff = 0;
    for (int i = 0; i < m->nl; i++) {
        tsr_layer_t *l = &m->layer[i];
        l->params = m->params + m->off[i];
        l->grads = m->grads + m->off[i];
        l->buffers = m->buffers + m->boff[i];
        l->state = m->state + soff;
        soff += (l->state_floats + 15) & ~(size_t)15;
        if (fresh[i]) {
            m->own[i + 1] = 1;
            if (!(m->act[i + 1] = falloc(max_batch * shape_size(l->out))))
                goto nomem;
        }
        if (is_kind(l, &tsr_kind_res) && m->needs_dx[i] && !(m->skip[i] = falloc(max_batch * shape_size(l->in))))
            goto nomem;
    }
    m->gpu_ok = gpu_capable(m);
    *out = m;
    return TSR_OK;
nomem:
    tsr_model_destroy(m);
    return tsr_error_set(TSR_ENOMEM, "model: out of memory for %zu parameters and batch %zu", m->nparams, max_batch);
}

void tsr_model_destroy(tsr_model_t *m)
{
    if (!m)
        return;
    model_gpu_free(m);
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->state);
    free(m->ws);
    free(m->acc_ws);
    free(m->xin);
    for (int i = 0; i <= m->nl; i++)
        if (m->own[i])
            free(m->act[i]);
    for (int i = 0; i < m->nl; i++)
        free(m->skip[i]);
    free(m->delta[0]);
    free(m->delta[1]);
    free(m);
}

const tsr_model_spec_t *tsr_model_spec(const tsr_model_t *m) { return &m->spec; }
size_t tsr_model_nparams(const tsr_model_t *m) { return m->nparams; }
float *tsr_model_params(tsr_model_t *m) { return m->params; }
float *tsr_model_grads(tsr_model_t *m) { return m->grads; }
int tsr_model_nlayers(const tsr_model_t *m) { return m->nl; }
const tsr_layer_t *tsr_model_layer(const tsr_model_t *m, int i) { return &m->layer[i]; }
size_t tsr_model_input_size(const tsr_model_t *m) { return shape_size(m->spec.input); }
size_t tsr_model_output_size(const tsr_model_t *m) { return shape_size(m->layer[m->nl - 1].out); }

float *tsr_model_buffers(tsr_model_t *m, size_t *n)
{
    if (n)
        *n = m->nbuffers;
    return m->buffers;
}

size_t tsr_model_layer_offset(const tsr_model_t *m, int layer) { return m->off[layer]; }

double tsr_model_flops_per_sample(const tsr_model_t *m)
{
    double f = 0;
    for (int i = 0; i < m->nl; i++) {
        const tsr_layer_t *l = &m->layer[i];
        double fw = l->kind->flops ? l->kind->flops(l) : 0;
        f += fw * (1.0 + (l->nparams > 0) + (m->needs_dx[i] != 0));
    }
    return f;
}

void tsr_model_init(tsr_model_t *m, uint64_t seed)
{
    for (int i = 0; i < m->nl; i++) {
        tsr_layer_t *l = &m->layer[i];
        tsr_rng_t r;
        tsr_rng_seed(&r, seed, 0x1000 + (uint64_t)i);
        if (l->kind->init)
            l->kind->init(l, &r);
    }
}

void tsr_model_set_rng(tsr_model_t *m, uint64_t seed, int rank)
{
    m->seed = seed;
    m->rank = rank;
}

void tsr_model_set_step(tsr_model_t *m, uint64_t step) { m->step = step; }

void tsr_model_set_allreduce(tsr_model_t *m, int (*fn)(double *buf, int n, void *arg), void *arg)
{
    m->allreduce = fn;
    m->allreduce_arg = arg;
}

tsr_layer_run_t model_run_of(const tsr_model_t *m, int train)
{
    return (tsr_layer_run_t){.train = train,
                             .seed = m->seed,
                             .step = m->step,
                             .rank = m->rank,
                             .ws = m->ws,
                             .allreduce = m->allreduce,
                             .allreduce_arg = m->allreduce_arg,
                             .defer_stats = m->defer_stats};
}

/* Image rows arrive channels first (c, h, w), as PyTorch and the IDX
 * converter lay them out; layers work channels last. */
const float *model_to_nhwc(tsr_model_t *m, const float *x, size_t rows)
{
    if (!m->xin)
        return x;
    size_t C = (size_t)m->spec.input.c, hw = (size_t)m->spec.input.h * (size_t)m->spec.input.w;
    for (size_t s = 0; s < rows; s++) {
        const float *xs = x + s * C * hw;
        float *o = m->xin + s * C * hw;
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < hw; p++)
                o[p * C + c] = xs[c * hw + p];
    }
    return m->xin;
}

int model_forward(tsr_model_t *m, const float *x, size_t rows, int train)
{
    tsr_layer_run_t run = model_run_of(m, train);
    m->act[0] = (float *)model_to_nhwc(m, x, rows);
    m->rows = rows;
    for (int i = 0; i < m->nl; i++) {
        tsr_layer_t *l = &m->layer[i];
        float *xi = m->act[i];
        int rc = TSR_OK;
        switch (m->role[i]) {
        case ROLE_NORMAL: /* a pooled maxpool's output is the conv's or batch norm's (plan_roles) */
            if (!m->pooled[i])
                rc = layer_forward(l, &run, xi, m->act[(l->pool ? l->pool->index : i) + 1], rows);
            break;
        case ROLE_INPLACE:
            m->act[i + 1] = xi;
            rc = layer_forward(l, &run, xi, xi, rows);
            break;
        case ROLE_RES_END: {
            const float *kept = m->act[m->block[i]];
            float *y = m->act[i + 1];
            EACH8(j, rows * shape_size(l->out), y[j] = xi[j] + kept[j]);
            break;
        }
        default: /* ROLE_ALIAS, ROLE_FUSED */ m->act[i + 1] = xi; break;
        }
        if (rc) {
            char s[48];
            tsr_layer_spec_text(&m->spec.layer[i], s, sizeof s);
            return tsr_error_prefix(rc, "model: layer %d (%s), forward: ", i, s);
        }
    }
    if (train)
        m->step++;
    return TSR_OK;
}

int tsr_model_forward(tsr_model_t *m, const float *x, size_t rows)
{
    if (rows == 0 || rows > m->max_batch)
        return tsr_error_set(TSR_EINVAL, "model: batch of %zu rows; expected 1 to %zu", rows, m->max_batch);
    if (m->dev)
        return model_gpu_forward(m, x, rows);
    /* Kept for backward, which the training loop checks (forward's own
     * return value is not looked at there). */
    return m->cpu_rc = model_forward(m, x, rows, 1);
}

const float *tsr_model_output(const tsr_model_t *m)
{
    /* On a GPU the host buffer is a cache of the device's output (the
     * graph's: the download buffer, act[nl] may be an unallocated alias). */
    if (m->dev && m->dev->graph) {
        int rc;
        const float *out = model_gpu_graph_output((tsr_model_t *)m, &rc);
        return rc ? NULL : out;
    }
    if (m->dev && model_gpu_output((tsr_model_t *)m) != TSR_OK)
        return NULL;
    return m->act[m->nl];
}

/* A step whose forward or backward failed still joins the gradient
 * reduction, with zeros, so no rank waits for this one; the error
 * (tsr_model_backward_queued's return) then stops every rank. */
static double failed_step(tsr_model_t *m, tsr_grad_ready_fn ready, void *arg)
{
    memset(m->grads, 0, m->nparams * sizeof *m->grads);
    if (ready)
        ready(0, arg);
    return NAN;
}

int tsr_model_set_accumulate(tsr_model_t *m, int on)
{
    if (m->dev)
        return tsr_error_set(TSR_EINVAL, "model: adding into the gradients is for CPU models (a GPU model sums "
                                         "micro-batches in the training loop)");
    if (on && !m->acc_ws) {
        size_t most = 0;
        for (int i = 0; i < m->nl; i++)
            if (!(m->layer[i].kind->flags & TSR_LAYER_ACCUMULATES) && m->layer[i].nparams > most)
                most = m->layer[i].nparams;
        if (most && !(m->acc_ws = malloc(most * sizeof *m->acc_ws)))
            return tsr_error_set(TSR_ENOMEM, "model: out of memory for %zu floats of gradient scratch", most);
    }
    m->accumulate = on != 0;
    return TSR_OK;
}

int tsr_model_set_grads_target(tsr_model_t *m, float *buf)
{
    if (m->dev)
        return tsr_error_set(TSR_EINVAL, "model: a gradient target is for CPU models");
    for (int i = 0; i < m->nl; i++)
        m->layer[i].grads = (buf ? buf : m->grads) + m->off[i];
    return TSR_OK;
}

/* layer_backward, adding into l->grads when run->accumulate: kinds that
 * cannot (TSR_LAYER_ACCUMULATES unset) overwrite a scratch copy, added
 * after. */
static int backward_of(tsr_model_t *m, tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y,
                       float *dy, float *dx, size_t n)
{
    if (!run->accumulate || !l->nparams || (l->kind->flags & TSR_LAYER_ACCUMULATES))
        return layer_backward(l, run, x, y, dy, dx, n);
    tsr_layer_run_t once = *run;
    once.accumulate = 0;
    float *g = l->grads;
    l->grads = m->acc_ws;
    int rc = layer_backward(l, &once, x, y, dy, dx, n);
    l->grads = g;
    if (!rc) {
        const float *s = m->acc_ws;
        EACH8(j, l->nparams, g[j] += s[j]);
    }
    return rc;
}

double tsr_model_backward(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows, float scale,
                          tsr_grad_ready_fn ready, void *arg)
{
    (void)rows; /* the forward's row count is authoritative */
    if (m->dev)
        return model_gpu_backward(m, labels, targets, scale, ready, arg, 0);
    /* The masks of dropout are those of the forward just run. */
    tsr_layer_run_t run = model_run_of(m, 1);
    run.step = m->step - 1;
    run.accumulate = m->accumulate;
    size_t n = m->rows;
    if (m->cpu_rc)
        return failed_step(m, ready, arg);
    int cur = 0;
    double loss = model_loss_delta(m, m->act[m->nl], labels, targets, scale, m->delta[cur]);
    for (int i = m->nl - 1; i >= 0; i--) {
        tsr_layer_t *l = &m->layer[i];
        float *dy = m->delta[cur];
        int rc = TSR_OK;
        switch (m->role[i]) {
        case ROLE_NORMAL: /* a pooled maxpool's gradient goes to the conv (batch norm) as it is */
            if ((!l->nparams && !m->needs_dx[i]) || m->pooled[i])
                break;
            rc = backward_of(m, l, &run, m->act[i], m->act[i + 1], dy, m->needs_dx[i] ? m->delta[cur ^ 1] : NULL, n);
            if (m->needs_dx[i])
                cur ^= 1;
            break;
        case ROLE_INPLACE:
            if (m->needs_dx[i])
                rc = backward_of(m, l, &run, m->act[i], m->act[i + 1], dy, dy, n);
            break;
        case ROLE_RES_END:
            if (m->skip[m->block[i]])
                memcpy(m->skip[m->block[i]], dy, n * shape_size(l->out) * sizeof *dy);
            break;
        case ROLE_ALIAS:
            if (m->skip[i]) {
                const float *sk = m->skip[i];
                EACH8(j, n * shape_size(l->out), dy[j] += sk[j]);
            }
            break;
        default: break;
        }
        if (rc) {
            char t[48];
            tsr_layer_spec_text(&m->spec.layer[i], t, sizeof t);
            m->cpu_rc = tsr_error_prefix(rc, "model: layer %d (%s), backward: ", i, t);
            return failed_step(m, ready, arg);
        }
        if (l->nparams && ready)
            ready(m->off[i], arg);
    }
    return loss;
}

int tsr_model_backward_queued(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows, float scale,
                              tsr_grad_ready_fn ready, void *arg)
{
    if (m->dev) {
        model_gpu_backward(m, labels, targets, scale, ready, arg, 1);
        return tsr_model_status(m);
    }
    m->loss_total += tsr_model_backward(m, labels, targets, rows, scale, ready, arg);
    int rc = m->cpu_rc;
    m->cpu_rc = TSR_OK;
    return rc;
}

int tsr_model_take_loss(tsr_model_t *m, double *sum)
{
    if (m->dev)
        return model_gpu_take_loss(m, sum);
    *sum = m->loss_total;
    m->loss_total = 0;
    return TSR_OK;
}

int tsr_model_predict(tsr_model_t *m, const float *x, size_t rows, float *out)
{
    if (m->dev && !m->dev->graph)
        return model_gpu_predict(m, x, rows, out);
    size_t k = tsr_model_output_size(m), d = tsr_model_input_size(m);
    for (size_t start = 0; start < rows; start += m->max_batch) {
        size_t n = rows - start < m->max_batch ? rows - start : m->max_batch;
        int rc;
        const float *z = model_eval_forward(m, x + start * d, n, &rc);
        if (rc)
            return rc;
        model_output_transform(m, z, out + start * k, n);
    }
    return TSR_OK;
}
