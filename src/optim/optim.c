/* SPDX-License-Identifier: BSD-3-Clause */
/* The optimizer's life: creation and state, clipping and the non-finite
 * policy around the update (rules.c, layerwise.c), the GPU path. */
#include "optim/optim_internal.h"
#include "tessera/error.h"
#include "common/bigbuf.h"
#include "common/vec.h"
#include "compute/gpu_train.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int any_nonfinite(const float *x, size_t n)
{
    uint32_t acc = 0;
    NF_EACH16(i, n, acc, NF_LANE(x[i]));
    return NF_BAD(acc);
}

static const char *const kind_names[] = {"sgd", "adamw", "adam", "lion", "lamb", "lars", "rmsprop"};

const char *tsr_optim_kind_name(tsr_optim_kind_t kind)
{
    return (unsigned)kind < sizeof kind_names / sizeof *kind_names ? kind_names[kind] : "unknown";
}

/* The optimizer's arrays, in units of n (tsr_optim_state's layout). */
static size_t arrays(const tsr_optim_config_t *c)
{
    switch (c->kind) {
    case TSR_OPTIM_ADAMW:
    case TSR_OPTIM_ADAM:
    case TSR_OPTIM_LAMB: return 2;
    case TSR_OPTIM_LION: return 1;
    case TSR_OPTIM_RMSPROP: return 1 + (c->centered != 0) + (c->momentum > 0);
    default: return c->momentum > 0;
    }
}

static int check(const tsr_optim_config_t *c)
{
    if ((unsigned)c->kind >= sizeof kind_names / sizeof *kind_names)
        return tsr_error_set(TSR_EINVAL, "optim: unknown optimizer %d", (int)c->kind);
    if (!(c->lr >= 0) || c->momentum < 0 || c->momentum >= 1 || c->beta1 < 0 || c->beta1 >= 1 || c->beta2 < 0 ||
        c->beta2 >= 1 || c->eps <= 0)
        return tsr_error_set(TSR_EINVAL, "optim: expected lr >= 0, 0 <= momentum, beta1, beta2 < 1 and eps > 0");
    if (c->kind == TSR_OPTIM_RMSPROP && !(c->alpha >= 0 && c->alpha < 1))
        return tsr_error_set(TSR_EINVAL, "optim.alpha = %g: expected 0 <= alpha < 1", c->alpha);
    if (c->kind == TSR_OPTIM_LARS && !(c->trust_coef > 0))
        return tsr_error_set(TSR_EINVAL, "optim.trust_coef = %g: expected a value above 0", c->trust_coef);
    return tsr_optim_sched_check(c);
}

int tsr_optim_create(const tsr_optim_config_t *cfg, size_t n, tsr_optim_t **out)
{
    int rc = check(cfg);
    if (rc)
        return rc;
    tsr_optim_t *o = calloc(1, sizeof *o);
    if (!o)
        return tsr_error_set(TSR_ENOMEM, "optim: out of memory");
    o->cfg = *cfg;
    o->n = n;
    o->nopt = arrays(cfg) * n;
    o->nstate = o->nopt + (cfg->schedule == TSR_SCHED_PLATEAU ? PL_N : 0);
    o->seg = malloc(sizeof *o->seg);
    if (o->nstate)
        o->state = tsr_bigbuf_alloc(o->nstate * sizeof(float), 1);
    if (!o->seg || (o->nstate && !o->state)) {
        size_t ns = o->nstate;
        tsr_optim_destroy(o);
        return tsr_error_set(TSR_ENOMEM, "optim: out of memory for %zu state values", ns);
    }
    o->seg[0] = (tsr_optim_segment_t){0, n, 0};
    o->nseg = 1;
    if (cfg->schedule == TSR_SCHED_PLATEAU) {
        o->state[o->nopt + PL_BEST] = INFINITY;
        o->state[o->nopt + PL_LR] = (float)cfg->lr;
    }
    *out = o;
    return TSR_OK;
}

static int by_offset(const void *a, const void *b)
{
    size_t x = ((const tsr_optim_segment_t *)a)->offset, y = ((const tsr_optim_segment_t *)b)->offset;
    return (x > y) - (x < y);
}

int tsr_optim_set_segments(tsr_optim_t *o, const tsr_optim_segment_t *seg, int nseg)
{
    if (nseg < 1 || o->gpu)
        return tsr_error_set(TSR_EINVAL, "optim: expected at least one segment, set before tsr_optim_to_gpu");
    tsr_optim_segment_t *s = malloc((size_t)nseg * sizeof *s);
    if (!s)
        return tsr_error_set(TSR_ENOMEM, "optim: out of memory for %d segments", nseg);
    memcpy(s, seg, (size_t)nseg * sizeof *s);
    qsort(s, (size_t)nseg, sizeof *s, by_offset);
    size_t end = 0;
    for (int i = 0; i < nseg; i++) {
        if (s[i].offset != end || s[i].size == 0) {
            free(s);
            return tsr_error_set(TSR_EINVAL,
                                 "optim: segment at %zu (%zu values) leaves a gap or overlaps at %zu; "
                                 "segments must tile the %zu parameters",
                                 seg[i].offset, seg[i].size, end, o->n);
        }
        end += s[i].size;
    }
    if (end != o->n) {
        free(s);
        return tsr_error_set(TSR_EINVAL, "optim: segments cover %zu of %zu parameters", end, o->n);
    }
    free(o->seg);
    o->seg = s;
    o->nseg = nseg;
    return TSR_OK;
}

void tsr_optim_destroy(tsr_optim_t *o)
{
    if (!o)
        return;
    tsr_optim_gpu_free(o);
    free(o->state);
    free(o->seg);
    free(o);
}

double tsr_optim_norm(const float *g, size_t n)
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

int tsr_optim_step(tsr_optim_t *o, float *restrict p, float *restrict g, double *grad_norm)
{
    const tsr_optim_config_t *c = &o->cfg;
    size_t n = o->n;
    float lr = (float)tsr_optim_lr(o, o->step);
    if (o->gpu) {
        int rc = tsr_optim_step_gpu(o, p, g, grad_norm, lr);
        if (!rc)
            o->step++; /* a skip is counted on the device */
        return rc;
    }
    double norm = -1;
    if (c->clip_norm > 0 || grad_norm) {
        norm = tsr_optim_norm(g, n);
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
    if (NF_BAD(tsr_optim_update_elementwise(o, p, g, lr)) && !o->nonfinite)
        o->nonfinite = o->step + 1;
    o->step++;
    return TSR_OK;
}

int tsr_optim_splittable(const tsr_optim_t *o)
{
    const tsr_optim_config_t *c = &o->cfg;
    return !o->gpu && tsr_optim_is_elementwise(c->kind) && !(c->clip_norm > 0) && c->on_nonfinite != TSR_NONFINITE_SKIP;
}

void tsr_optim_step_part(tsr_optim_t *o, float *params, const float *grads, size_t offset, size_t count)
{
    if (offset >= o->n)
        return;
    count = count < o->n - offset ? count : o->n - offset;
    float lr = (float)tsr_optim_lr(o, o->step);
    if (NF_BAD(tsr_optim_update_span(o, params, grads, lr, offset, count)) && !o->nonfinite)
        o->nonfinite = o->step + 1;
}

void tsr_optim_step_close(tsr_optim_t *o) { o->step++; }

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

long tsr_optim_steps_taken(const tsr_optim_t *o) { return o->step; }

float *tsr_optim_state(tsr_optim_t *o, size_t *nstate)
{
    *nstate = o->nstate;
    return o->state;
}

void tsr_optim_set_steps_taken(tsr_optim_t *o, long steps) { o->step = steps; }

int tsr_optim_download(tsr_optim_t *o)
{
    if (!o->gpu || !o->nopt)
        return TSR_OK;
    return tsr_gpu_download(o->gpu, o->state, o->dstate, o->nopt * sizeof(float));
}

int tsr_optim_upload(tsr_optim_t *o)
{
    if (!o->gpu || !o->nopt)
        return TSR_OK;
    int rc = tsr_gpu_upload(o->gpu, o->dstate, o->state, o->nopt * sizeof(float));
    return rc ? rc : tsr_gpu_sync(o->gpu);
}
