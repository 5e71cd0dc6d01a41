/* SPDX-License-Identifier: BSD-3-Clause */
/* Writes what the PyTorch comparison (compare_optim.py) replays: for
 *   optim_trace OUT steps section.key=value...
 * the optimizer from those keys (read by the options module, as training
 * reads them) trains a small MLP on fixed synthetic data for that many
 * steps, writing OUT/init.f32 (the weights), OUT/grads.f32 and
 * OUT/weights.f32 (each step's gradient and the weights after the update),
 * OUT/lr.f64 and OUT/segments.txt (offset size ndims per tensor); for
 *   optim_trace --lr OUT steps keys...
 * only the schedule: OUT/lr.f64 and, for plateau, OUT/metrics.f64 (the
 * value observed after each step). */
#include "tessera/config.h"
#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 8, HID = 16, OUTS = 4, ROWS = 128, BATCH = 32 };

static int put(const char *dir, const char *name, const void *p, size_t size, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, size, n, f) != n || fclose(f)) {
        fprintf(stderr, "optim_trace: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* A value that falls, stalls and wiggles: reduce-on-plateau has cuts to make. */
static double metric_at(long i) { return 1.0 - 0.05 * (double)(i < 8 ? i : 8) + 0.001 * (double)((i * 7) % 5); }

static int schedule_only(const tsr_optim_config_t *oc, const char *out, long steps)
{
    tsr_optim_t *o = NULL;
    double *lr = malloc((size_t)steps * sizeof *lr), *met = malloc((size_t)steps * sizeof *met);
    int rc = !lr || !met || tsr_optim_create(oc, 1, &o);
    for (long i = 0; !rc && i < steps; i++) {
        lr[i] = tsr_optim_lr(o, i);
        met[i] = metric_at(i);
        tsr_optim_observe(o, met[i]);
    }
    if (!rc)
        rc = put(out, "lr.f64", lr, sizeof *lr, (size_t)steps) ||
             put(out, "metrics.f64", met, sizeof *met, (size_t)steps);
    tsr_optim_destroy(o);
    free(lr);
    free(met);
    return rc;
}

static int train(const tsr_optim_config_t *oc, const char *out, long steps)
{
    tsr_model_spec_t spec;
    tsr_model_t *m = NULL;
    tsr_optim_t *o = NULL;
    static float x[ROWS * IN];
    static int32_t y[ROWS];
    uint64_t s = 12345;
    for (size_t i = 0; i < ROWS * IN; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    for (int r = 0; r < ROWS; r++)
        y[r] = (x[r * IN] > 0) + 2 * (x[r * IN + 1] > 0);
    tsr_model_spec_mlp(&spec, (const size_t[]){IN, HID, OUTS}, 2, TSR_ACT_TANH, TSR_LOSS_XENT);
    if (tsr_model_create(&spec, BATCH, &m) || tsr_optim_create(oc, tsr_model_nparams(m), &o))
        return 1;
    tsr_model_init(m, 7);
    size_t n = tsr_model_nparams(m);
    float *p = tsr_model_params(m), *g = tsr_model_grads(m);
    float *gs = malloc((size_t)steps * n * sizeof *gs), *ws = malloc((size_t)steps * n * sizeof *ws);
    double *lr = malloc((size_t)steps * sizeof *lr);
    char segtext[1024] = "";
    tsr_optim_segment_t seg[16];
    int nseg = 0, rc = !gs || !ws || !lr;
    for (int l = 0; l < tsr_model_nlayers(m); l++) {
        tsr_model_tensor_t t[TSR_MODEL_MAX_TENSORS];
        int nt = tsr_model_tensors(m, l, t);
        for (int k = 0; k < nt; k++) {
            size_t size = 1;
            for (int d = 0; d < t[k].ndims; d++)
                size *= t[k].dims[d];
            seg[nseg] = (tsr_optim_segment_t){(size_t)(t[k].data - p), size, oc->exclude_bias_norm && t[k].ndims == 1};
            snprintf(segtext + strlen(segtext), sizeof segtext - strlen(segtext), "%zu %zu %d\n", seg[nseg].offset,
                     size, t[k].ndims);
            nseg++;
        }
    }
    rc = rc || tsr_optim_set_segments(o, seg, nseg) || put(out, "init.f32", p, sizeof *p, n) ||
         put(out, "segments.txt", segtext, 1, strlen(segtext));
    for (long i = 0; !rc && i < steps; i++) {
        size_t r0 = (size_t)(i % (ROWS / BATCH)) * BATCH;
        rc = tsr_model_forward(m, x + r0 * IN, BATCH);
        tsr_model_backward(m, y + r0, NULL, BATCH, 1.0f / BATCH, NULL, NULL);
        memcpy(gs + (size_t)i * n, g, n * sizeof *g);
        lr[i] = tsr_optim_lr(o, i);
        rc = rc || tsr_optim_step(o, p, g, NULL);
        memcpy(ws + (size_t)i * n, p, n * sizeof *p);
    }
    rc = rc || put(out, "grads.f32", gs, sizeof *gs, (size_t)steps * n) ||
         put(out, "weights.f32", ws, sizeof *ws, (size_t)steps * n) ||
         put(out, "lr.f64", lr, sizeof *lr, (size_t)steps);
    free(gs);
    free(ws);
    free(lr);
    tsr_optim_destroy(o);
    tsr_model_destroy(m);
    return rc;
}

int main(int argc, char **argv)
{
    int only_lr = argc > 1 && strcmp(argv[1], "--lr") == 0, a = 1 + only_lr;
    if (argc < a + 2) {
        fprintf(stderr, "usage: optim_trace [--lr] OUT STEPS section.key=value...\n");
        return 2;
    }
    tsr_config_t *cfg = NULL;
    tsr_train_options_t opt;
    int rc = tsr_config_create(&cfg);
    for (int i = a + 2; !rc && i < argc; i++)
        rc = tsr_config_set(cfg, argv[i]);
    if (!rc)
        rc = tsr_options_train(cfg, &opt);
    long steps = atol(argv[a + 1]);
    if (!rc) {
        opt.optim.total_steps = steps;
        rc = only_lr ? schedule_only(&opt.optim, argv[a], steps) : train(&opt.optim, argv[a], steps);
    }
    if (rc)
        fprintf(stderr, "optim_trace: %s\n", tsr_last_error());
    tsr_config_destroy(cfg);
    return rc ? 1 : 0;
}
