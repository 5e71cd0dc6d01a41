/* SPDX-License-Identifier: BSD-3-Clause */
/* Every built-in layer on the GPU against the CPU: small graphs, each with
 * the layer under test after a layer with parameters (so its backward's dx
 * is checked through that layer's gradients), run forward and backward on
 * the CPU and on the GPU from the same weights. Outputs, losses, every
 * gradient, batch norm's running statistics and an evaluation-mode predict
 * agree to float tolerance; the ready callback hears of every layer with
 * parameters, last first. Prints each graph's largest relative error.
 * Exits 77 (skip) without a GPU. */
#include "gpu_test.h"
#include "tessera/compute.h"
#include "tessera/layer.h"
#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, " (%s)\n", tsr_last_error());                                                              \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

enum { ROWS = 6, STEPS = 2 };
#define TOL 1e-4

static size_t last_offset;
static int ready_calls, ready_order_ok;

static void ready(size_t offset, void *arg)
{
    (void)arg;
    if (ready_calls++ && offset >= last_offset)
        ready_order_ok = 0;
    last_offset = offset;
}

/* Largest difference relative to the array's largest magnitude. */
static double rel(const float *a, const float *b, size_t n)
{
    double top = 1e-6, worst = 0;
    for (size_t i = 0; i < n; i++)
        top = fabs((double)a[i]) > top ? fabs((double)a[i]) : top;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / top;
        worst = d > worst || isnan(d) ? d : worst;
    }
    return worst;
}

typedef struct {
    const char *layers, *input;
    tsr_loss_t loss;
    float smoothing, huber;
    int weights, tokens;
} gcase_t;

static double worst_all;

/* A user kind with GPU functions, written against the public API alone as
 * a plugin would be: y = relu(x) * a, one trained parameter a. */
static int urelu_shape(tsr_layer_t *l)
{
    l->out = l->in;
    l->nparams = 1;
    return TSR_OK;
}
static void urelu_init(tsr_layer_t *l, tsr_rng_t *r)
{
    (void)r;
    l->params[0] = 1.5f;
}
static size_t len_of(const tsr_layer_t *l, size_t n) { return n * (size_t)l->in.c * (size_t)l->in.h * (size_t)l->in.w; }
static int urelu_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    for (size_t i = 0; i < len_of(l, n); i++)
        y[i] = (x[i] > 0 ? x[i] : 0.0f) * l->params[0];
    return TSR_OK;
}
static int urelu_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                          float *dx, size_t n)
{
    (void)run, (void)x;
    double ga = 0;
    for (size_t i = 0; i < len_of(l, n); i++) {
        ga += (double)dy[i] * y[i] / l->params[0];
        if (dx)
            dx[i] = y[i] > 0 ? dy[i] * l->params[0] : 0.0f;
    }
    l->grads[0] = (float)ga;
    return TSR_OK;
}
/* On the device: y = relu(x) a as a GEMM with a 1x1 matrix; da = sum of
 * dy * relu(x) (a GEMM of the two as vectors), dx = relu'(y) dy a. */
static int urelu_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t len = len_of(l, n);
    int rc = tsr_gpu_copy(gpu, y, x, len * sizeof *y);
    if (!rc)
        rc = tsr_gpu_act(gpu, TSR_ACT_RELU, y, len);
    return rc ? rc : tsr_gpu_gemm(gpu, 0, 0, len, 1, 1, 1.0f, y, l->params, 0.0f, y);
}
static int urelu_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                              float *dy, float *dx, size_t n)
{
    (void)run;
    size_t len = len_of(l, n);
    float *r = run->ws; /* relu(x) */
    int rc = tsr_gpu_copy(gpu, r, x, len * sizeof *r);
    if (!rc)
        rc = tsr_gpu_act(gpu, TSR_ACT_RELU, r, len);
    if (!rc)
        rc = tsr_gpu_gemm(gpu, 1, 0, 1, 1, len, 1.0f, dy, r, 0.0f, l->grads);
    if (!rc && dx) {
        rc = tsr_gpu_gemm(gpu, 0, 0, len, 1, 1, 1.0f, dy, l->params, 0.0f, dx);
        if (!rc)
            rc = tsr_gpu_act_backward(gpu, TSR_ACT_RELU, y, dx, len);
    }
    return rc;
}
static int urelu_ws_shape(tsr_layer_t *l)
{
    urelu_shape(l);
    l->ws_floats = l->max_batch * (size_t)l->in.c * (size_t)l->in.h * (size_t)l->in.w;
    return TSR_OK;
}
static const tsr_layer_kind_t urelu = {.abi = TSR_LAYER_ABI,
                                       .name = "urelu",
                                       .flags = TSR_LAYER_NEEDS_X | TSR_LAYER_NEEDS_Y,
                                       .shape = urelu_ws_shape,
                                       .init = urelu_init,
                                       .forward = urelu_forward,
                                       .backward = urelu_backward,
                                       .gpu_forward = urelu_gpu_forward,
                                       .gpu_backward = urelu_gpu_backward};
/* The same without GPU functions: refused on a GPU, naming the layer. */
static const tsr_layer_kind_t ucpu = {.abi = TSR_LAYER_ABI,
                                      .name = "ucpu",
                                      .flags = TSR_LAYER_NEEDS_X | TSR_LAYER_NEEDS_Y,
                                      .shape = urelu_shape,
                                      .init = urelu_init,
                                      .forward = urelu_forward,
                                      .backward = urelu_backward};

static void run(tsr_gpu_t *g, const gcase_t *c)
{
    tsr_model_spec_t spec;
    memset(&spec, 0, sizeof spec);
    CHECK(tsr_shape_parse(c->input, &spec.input) == TSR_OK, "input %s", c->input);
    CHECK(tsr_model_parse(c->layers, &spec) == TSR_OK, "parse %s", c->layers);
    spec.loss = c->loss;
    spec.label_smoothing = c->smoothing;
    spec.huber_delta = c->huber;
    tsr_model_t *cpu = NULL, *gpu = NULL;
    CHECK(tsr_model_create(&spec, ROWS, &cpu) == TSR_OK && tsr_model_create(&spec, ROWS, &gpu) == TSR_OK, "create %s",
          c->layers);
    size_t k = tsr_model_output_size(cpu), d = tsr_model_input_size(cpu), n = tsr_model_nparams(cpu), nb = 0;
    if (c->weights) {
        spec.nclass_weights = (int)k;
        for (size_t j = 0; j < k; j++)
            spec.class_weight[j] = 0.5f + (float)j / (float)k;
        tsr_model_destroy(cpu), tsr_model_destroy(gpu);
        CHECK(tsr_model_create(&spec, ROWS, &cpu) == TSR_OK && tsr_model_create(&spec, ROWS, &gpu) == TSR_OK, "create");
    }
    tsr_model_init(cpu, 5);
    tsr_model_init(gpu, 5);
    tsr_model_set_rng(cpu, 9, 0);
    tsr_model_set_rng(gpu, 9, 0);
    CHECK(tsr_model_to_gpu(gpu, g) == TSR_OK, "%s to the GPU", c->layers);
    float *x = malloc(ROWS * d * sizeof *x), *t = malloc(ROWS * k * sizeof *t), *gg = malloc(n * sizeof *gg);
    float *pc = malloc(ROWS * k * sizeof *pc), *pg = malloc(ROWS * k * sizeof *pg);
    int32_t *y = malloc(ROWS * sizeof *y);
    tsr_rng_t r;
    tsr_rng_seed(&r, 4, 0);
    double worst = 0;
    int nparam_layers = 0;
    for (int i = 0; i < tsr_model_nlayers(cpu); i++)
        nparam_layers += tsr_model_layer(cpu, i)->nparams > 0;
    for (int step = 0; step < STEPS; step++) {
        for (size_t i = 0; i < ROWS * d; i++)
            x[i] = c->tokens ? (float)tsr_rng_below(&r, (uint64_t)c->tokens) : (float)(2 * tsr_rng_uniform(&r) - 1);
        for (size_t i = 0; i < ROWS; i++)
            y[i] = (int32_t)tsr_rng_below(&r, k);
        for (size_t i = 0; i < ROWS * k; i++)
            t[i] =
                c->loss == TSR_LOSS_BCE ? (float)(tsr_rng_uniform(&r) > 0.5) : (float)(3 * tsr_rng_uniform(&r) - 1.5);
        tsr_model_set_step(cpu, (uint64_t)step);
        tsr_model_set_step(gpu, (uint64_t)step);
        CHECK(tsr_model_forward(cpu, x, ROWS) == TSR_OK && tsr_model_forward(gpu, x, ROWS) == TSR_OK, "forward %s",
              c->layers);
        double e = rel(tsr_model_output(cpu), tsr_model_output(gpu), ROWS * k);
        worst = e > worst ? e : worst;
        double lc = tsr_model_backward(cpu, y, t, ROWS, 1.0f / ROWS, NULL, NULL);
        ready_calls = 0, ready_order_ok = 1;
        double lg = tsr_model_backward(gpu, y, t, ROWS, 1.0f / ROWS, ready, NULL);
        CHECK(tsr_model_status(gpu) == TSR_OK, "GPU status after backward of %s", c->layers);
        CHECK(ready_calls == nparam_layers && ready_order_ok, "%s: ready heard %d of %d layers, order %d", c->layers,
              ready_calls, nparam_layers, ready_order_ok);
        CHECK(fabs(lc - lg) <= TOL * fabs(lc) + 1e-6, "%s: loss cpu %.8g gpu %.8g", c->layers, lc, lg);
        CHECK(tsr_gpu_download(g, gg, tsr_model_work_grads(gpu), n * sizeof *gg) == TSR_OK, "grads");
        /* Each layer's gradients against its own scale. */
        for (int i = 0; i < tsr_model_nlayers(cpu); i++) {
            const tsr_layer_t *l = tsr_model_layer(cpu, i);
            size_t off = tsr_model_layer_offset(cpu, i);
            double eg = rel(tsr_model_grads(cpu) + off, gg + off, l->nparams);
            CHECK(eg <= TOL, "%s: layer %d (%s) gradients differ by %.3g", c->layers, i, l->kind->name, eg);
            worst = eg > worst ? eg : worst;
        }
        float *bc = tsr_model_buffers(cpu, &nb), *bg = tsr_model_buffers(gpu, NULL);
        double eb = nb ? rel(bc, bg, nb) : 0;
        CHECK(eb <= TOL, "%s: running statistics differ by %.3g", c->layers, eb);
        worst = eb > worst ? eb : worst;
        /* The same update on both, so the next step starts from the same weights. */
        float *wc = tsr_model_params(cpu);
        for (size_t i = 0; i < n; i++)
            wc[i] -= 0.1f * tsr_model_grads(cpu)[i];
        memcpy(tsr_model_params(gpu), wc, n * sizeof *wc);
        CHECK(tsr_model_upload(gpu) == TSR_OK, "upload");
    }
    /* Evaluation mode (running statistics, no dropout). */
    CHECK(tsr_model_predict(cpu, x, ROWS, pc) == TSR_OK && tsr_model_predict(gpu, x, ROWS, pg) == TSR_OK, "predict");
    double ep = rel(pc, pg, ROWS * k);
    CHECK(ep <= TOL, "%s: predictions differ by %.3g", c->layers, ep);
    worst = ep > worst ? ep : worst;
    double lc, lgl;
    size_t cc, cg;
    CHECK(tsr_model_evaluate(cpu, x, y, t, ROWS, &lc, &cc) == TSR_OK &&
              tsr_model_evaluate(gpu, x, y, t, ROWS, &lgl, &cg) == TSR_OK,
          "evaluate");
    CHECK(fabs(lc - lgl) <= TOL * fabs(lc) + 1e-6 && cc == cg, "%s: evaluate %g/%zu against %g/%zu", c->layers, lc, cc,
          lgl, cg);
    printf("ok: %-58s loss %s%s%s: max relative error %.2g\n", c->layers, tsr_loss_name(c->loss),
           c->smoothing ? " (label smoothing)" : "", c->weights ? " (class weights)" : "", worst);
    worst_all = worst > worst_all ? worst : worst_all;
    free(x), free(t), free(gg), free(pc), free(pg), free(y);
    tsr_model_destroy(cpu);
    tsr_model_destroy(gpu);
}

int main(void)
{
    gpu_test_start(); /* G on device 0, or exit 77 */
    tsr_gpu_t *g = G;
    const tsr_loss_t X = TSR_LOSS_XENT;
    const gcase_t cases[] = {
        {"conv(4,3,pad=1) relu flatten dense(5)", "2x6x6", X, 0, 0, 0, 0},
        {"conv(4,3,stride=2,pad=1,dilation=2) tanh flatten dense(5)", "2x7x7", X, 0, 0, 0, 0},
        {"conv(4,3,pad=1,groups=2) sigmoid flatten dense(5)", "2x5x5", X, 0, 0, 0, 0},
        {"conv(4,3,pad=1) conv(4,3,groups=4) flatten dense(5)", "3x6x6", X, 0, 0, 0, 0},
        {"conv(4,3) conv(6,1) flatten dense(5)", "2x5x5", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) maxpool(2) flatten dense(5)", "2x6x6", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) maxpool(3,stride=2) flatten dense(5)", "2x7x7", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) avgpool(2) flatten dense(5)", "2x6x6", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) avgpool(3,stride=1) flatten dense(5)", "2x5x5", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) gap dense(5)", "2x5x5", X, 0, 0, 0, 0},
        {"conv(4,3,pad=1) bn relu flatten dense(5)", "2x5x5", X, 0, 0, 0, 0},
        /* the CPU masks batch norm's fused ReLU in the maxpool, the GPU in bn */
        {"conv(4,3,pad=1) bn relu maxpool(2) flatten dense(5)", "2x6x6", X, 0, 0, 0, 0},
        {"dense(8) bn(momentum=0.2) dense(5)", "7", X, 0, 0, 0, 0},
        {"dense(8) ln dense(5)", "7", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) ln flatten dense(5)", "2x4x4", X, 0, 0, 0, 0},
        {"dense(8) dropout(0.3) dense(5)", "7", X, 0, 0, 0, 0},
        {"embed(11,4) flatten dense(5)", "6", X, 0, 0, 0, 11},
        {"embed(11,4) gap dense(5)", "6", X, 0, 0, 0, 11},
        {"conv(4,3,pad=1) res{conv(4,3,pad=1) bn relu conv(4,3,pad=1)} relu gap dense(5)", "2x5x5", X, 0, 0, 0, 0},
        {"dense(8) gelu dense(6) silu dense(5)", "7", X, 0, 0, 0, 0},
        {"dense(8) relu dense(6) tanh dense(7) sigmoid dense(5)", "7", TSR_LOSS_MSE, 0, 0, 0, 0},
        {"dense(8) ln relu dense(6) bn sigmoid dense(7) dropout(0.5) tanh dense(5)", "7", TSR_LOSS_MSE, 0, 0, 0, 0},
        {"dense(8) bn relu dense(5)", "7", X, 0.1f, 0, 1, 0},
        {"dense(8) tanh dense(5)", "7", TSR_LOSS_HUBER, 0, 0.5f, 0, 0},
        {"dense(8) tanh dense(5)", "7", TSR_LOSS_BCE, 0, 0, 0, 0},
        {"dense(8) tanh dense(5)", "7", X, 0.2f, 0, 0, 0},
        {"conv(3,3,pad=1) urelu flatten dense(5)", "2x4x4", X, 0, 0, 0, 0},
        {"conv(3,3,pad=1) gap flatten", "2x4x4", TSR_LOSS_MSE, 0, 0, 0, 0},
    };
    CHECK(tsr_layer_register(&urelu) == TSR_OK && tsr_layer_register(&ucpu) == TSR_OK, "register");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run(g, &cases[i]);
    /* A user kind without GPU functions: one error naming the layer. */
    tsr_model_spec_t spec = {.input = {7, 1, 1}};
    tsr_model_t *m = NULL;
    CHECK(tsr_model_parse("dense(6) ucpu dense(5)", &spec) == TSR_OK && tsr_model_create(&spec, ROWS, &m) == TSR_OK,
          "create");
    CHECK(tsr_model_to_gpu(m, g) == TSR_ENOTSUP && strstr(tsr_last_error(), "layer 1 (ucpu, from ") &&
              strstr(tsr_last_error(), "has no GPU functions"),
          "a kind without GPU functions: %s", tsr_last_error());
    printf("ok: refused: %s\n", tsr_last_error());
    tsr_model_destroy(m);
    printf("ok: %zu graphs, CPU against GPU: largest relative error %.2g (tolerance %.0e)\n",
           sizeof cases / sizeof cases[0], worst_all, TOL);
    tsr_gpu_destroy(g);
    return 0;
}
