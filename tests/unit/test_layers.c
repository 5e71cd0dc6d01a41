/* SPDX-License-Identifier: BSD-3-Clause */
/* Layer graphs: every built-in kind's backward against finite differences
 * (through the parameters of a layer before it, which checks its input
 * gradient too), the losses, dropout's counter-based masks, batch-norm
 * running statistics, the grammar's errors, model files of graphs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/compute.h"
#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/rng.h"

enum { ROWS = 4 };

static tsr_model_t *build(const char *layers, tsr_shape_t in, tsr_loss_t loss, size_t rows)
{
    tsr_model_spec_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->input = in;
    s->loss = loss;
    if (tsr_model_parse(layers, s) != TSR_OK)
        fail_msg("parse %s: %s", layers, tsr_last_error());
    tsr_model_t *m = NULL;
    if (tsr_model_create(s, rows, &m) != TSR_OK)
        fail_msg("create %s: %s", layers, tsr_last_error());
    free(s);
    tsr_model_init(m, 11);
    tsr_model_set_rng(m, 5, 0);
    return m;
}

typedef struct {
    float *x, *t;
    int32_t *y;
} batch_t;

static void make_batch(tsr_model_t *m, batch_t *b, int tokens)
{
    size_t d = tsr_model_input_size(m), k = tsr_model_output_size(m);
    tsr_rng_t r;
    tsr_rng_seed(&r, 3, 0);
    b->x = malloc(ROWS * d * sizeof(float));
    b->t = malloc(ROWS * k * sizeof(float));
    b->y = malloc(ROWS * sizeof(int32_t));
    for (size_t i = 0; i < ROWS * d; i++)
        b->x[i] = tokens ? (float)tsr_rng_below(&r, (uint64_t)tokens) : (float)(2 * tsr_rng_uniform(&r) - 1);
    for (size_t i = 0; i < ROWS * k; i++)
        b->t[i] = (float)tsr_rng_uniform(&r);
    for (size_t i = 0; i < ROWS; i++)
        b->y[i] = (int32_t)(i % (k > 1 ? k : 2));
}

static void free_batch(batch_t *b)
{
    free(b->x);
    free(b->t);
    free(b->y);
}

/* Loss at the current parameters; the step is fixed so dropout draws the same masks. */
static double loss_at(tsr_model_t *m, const batch_t *b)
{
    tsr_model_set_step(m, 7);
    assert_int_equal(tsr_model_forward(m, b->x, ROWS), TSR_OK);
    const tsr_model_spec_t *s = tsr_model_spec(m);
    int labels = s->loss == TSR_LOSS_XENT;
    return tsr_model_backward(m, labels ? b->y : NULL, labels ? NULL : b->t, ROWS, 1.0f, NULL, NULL);
}

/* Every parameter's gradient against central differences; kinks (relu,
 * max pooling) may put a few inside the step, so 97% must agree. */
static void gradcheck_tok(const char *layers, tsr_shape_t in, tsr_loss_t loss, int tokens)
{
    tsr_model_t *m = build(layers, in, loss, ROWS);
    batch_t b;
    make_batch(m, &b, tokens);
    size_t n = tsr_model_nparams(m);
    float *p = tsr_model_params(m), *g = malloc(n * sizeof *g);
    loss_at(m, &b);
    memcpy(g, tsr_model_grads(m), n * sizeof *g);
    size_t agree = 0, worst = 0;
    double worst_err = 0;
    for (size_t i = 0; i < n; i++) {
        float save = p[i];
        const float h = 1e-3f;
        p[i] = save + h;
        double lp = loss_at(m, &b);
        p[i] = save - h;
        double lm = loss_at(m, &b);
        p[i] = save;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g[i]) / fmax(1.0, fabs(fd));
        if (err <= 2e-2)
            agree++;
        else if (err > worst_err)
            worst_err = err, worst = i;
    }
    if (agree < n - n * 3 / 100)
        fail_msg("%s: %zu of %zu gradients agree; worst param %zu, relative error %g", layers, agree, n, worst,
                 worst_err);
    free(g);
    free_batch(&b);
    tsr_model_destroy(m);
}

static void gradcheck(const char *layers, tsr_shape_t in, tsr_loss_t loss) { gradcheck_tok(layers, in, loss, 0); }

static const tsr_shape_t IMG = {2, 6, 5}, FLAT = {7, 1, 1};

static void test_grad_dense_acts(void **s)
{
    (void)s;
    gradcheck("dense(6) gelu dense(5) silu dense(4) tanh dense(4) sigmoid dense(3)", FLAT, TSR_LOSS_XENT);
    gradcheck("dense(6) relu dense(5) relu relu dense(3)", FLAT, TSR_LOSS_XENT);
}

static void test_grad_conv(void **s)
{
    (void)s;
    gradcheck("conv(3,3,pad=1) relu flatten dense(3)", IMG, TSR_LOSS_XENT);
    gradcheck("conv(4,3,stride=2,pad=1) tanh conv(4,2,dilation=2) flatten dense(3)", IMG, TSR_LOSS_XENT);
    gradcheck("conv(4,3,pad=1,groups=2) conv(4,3,pad=1,groups=4) conv(2,1) flatten dense(3)", IMG, TSR_LOSS_XENT);
}

static void test_grad_pool(void **s)
{
    (void)s;
    gradcheck("conv(3,3,pad=1) maxpool(2) flatten dense(3)", IMG, TSR_LOSS_XENT);
    /* the first conv's ReLU and pool fused into it (tsr_layer_t.pool) */
    gradcheck("conv(3,3,pad=1) relu maxpool(2) flatten dense(3)", (tsr_shape_t){2, 6, 6}, TSR_LOSS_XENT);
    gradcheck("conv(3,3,pad=1) avgpool(2,stride=1) gap dense(3)", IMG, TSR_LOSS_XENT);
}

static void test_grad_norm(void **s)
{
    (void)s;
    gradcheck("conv(3,3,pad=1) bn tanh conv(3,3) bn flatten dense(3)", IMG, TSR_LOSS_XENT);
    gradcheck("dense(6) bn tanh dense(3)", FLAT, TSR_LOSS_XENT);
    gradcheck("conv(3,3,pad=1) bn relu flatten dense(3)", IMG, TSR_LOSS_XENT);
    gradcheck("conv(3,3,pad=1) ln flatten dense(5) ln dense(3)", IMG, TSR_LOSS_XENT);
    /* batch norm's fused ReLU masked by the maxpool after it (grad_masked) */
    gradcheck("conv(3,3,pad=1) bn relu maxpool(2) flatten dense(3)", (tsr_shape_t){2, 6, 6}, TSR_LOSS_XENT);
}

/* The convs on oneDNN's direct kernels (training's GEMM): with the ReLU as
 * a post-op and an input gradient, and strided without one. */
static void test_grad_onednn(void **s)
{
    (void)s;
    if (!tsr_compute_gemm_available(TSR_GEMM_ONEDNN))
        skip();
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_ONEDNN), TSR_OK);
    /* Those convs are oneDNN's, not declined to im2col. */
    tsr_conv_geom_t g1 = {3, 3, 16, 3, 1, 1, 1, 3, 3}, g2 = {6, 6, 8, 3, 1, 1, 1, 6, 6},
                    g3 = {6, 6, 8, 3, 2, 1, 1, 3, 3};
    float x[ROWS * 6 * 6 * 16], w[16 * 9 * 16], b[16], y[ROWS * 6 * 6 * 16];
    memset(x, 0, sizeof x), memset(w, 0, sizeof w), memset(b, 0, sizeof b);
    assert_int_equal(tsr_compute_conv_dnnl(x, ROWS, &g1, 1, 16, w, b, TSR_ACT_RELU, y), 0);
    assert_int_equal(tsr_compute_conv_dnnl(x, ROWS, &g2, 1, 8, w, b, TSR_ACT_NONE, y), 0);
    assert_int_equal(tsr_compute_conv_dnnl(x, ROWS, &g3, 1, 16, w, b, TSR_ACT_NONE, y), 0);
    gradcheck("conv(16,3,pad=1) bn relu maxpool(2) conv(16,3,pad=1) relu flatten dense(3)", (tsr_shape_t){2, 6, 6},
              TSR_LOSS_XENT);
    gradcheck("conv(8,3,pad=1) conv(16,3,stride=2,pad=1) bn flatten dense(3)", (tsr_shape_t){8, 6, 6}, TSR_LOSS_XENT);
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_OPENBLAS), TSR_OK);
}

static void test_grad_res_dropout(void **s)
{
    (void)s;
    gradcheck("conv(2,3,pad=1) res{conv(2,3,pad=1) relu res{conv(2,1) tanh}} relu gap dense(3)", IMG, TSR_LOSS_XENT);
    gradcheck("dense(8) res{dropout(0.3) dense(8) sigmoid} dropout(0.5) dense(3)", FLAT, TSR_LOSS_XENT);
}

static void test_grad_embed(void **s)
{
    (void)s;
    gradcheck_tok("embed(9,4) conv(3,1) gap dense(3)", (tsr_shape_t){5, 1, 1}, TSR_LOSS_XENT, 9);
    gradcheck_tok("embed(9,3) flatten dense(2)", (tsr_shape_t){4, 1, 1}, TSR_LOSS_MSE, 9);
}

static void test_grad_losses(void **s)
{
    (void)s;
    gradcheck("dense(5) tanh dense(3)", FLAT, TSR_LOSS_MSE);
    gradcheck("dense(5) tanh dense(3)", FLAT, TSR_LOSS_HUBER);
    gradcheck("dense(5) tanh dense(3)", FLAT, TSR_LOSS_BCE);
    /* Label smoothing and class weights. */
    tsr_model_spec_t *sp = calloc(1, sizeof *sp);
    sp->input = FLAT;
    sp->loss = TSR_LOSS_XENT;
    sp->label_smoothing = 0.2f;
    sp->nclass_weights = 3;
    sp->class_weight[0] = 1, sp->class_weight[1] = 2, sp->class_weight[2] = 0.5f;
    assert_int_equal(tsr_model_parse("dense(5) tanh dense(3)", sp), TSR_OK);
    tsr_model_t *m = NULL;
    assert_int_equal(tsr_model_create(sp, ROWS, &m), TSR_OK);
    tsr_model_init(m, 2);
    batch_t b;
    make_batch(m, &b, 0);
    size_t n = tsr_model_nparams(m);
    float *p = tsr_model_params(m), *g = malloc(n * sizeof *g);
    loss_at(m, &b);
    memcpy(g, tsr_model_grads(m), n * sizeof *g);
    for (size_t i = 0; i < n; i++) {
        float save = p[i];
        p[i] = save + 1e-2f;
        double lp = loss_at(m, &b);
        p[i] = save - 1e-2f;
        double lm = loss_at(m, &b);
        p[i] = save;
        double fd = (lp - lm) / 2e-2;
        if (fabs(fd - g[i]) > 2e-2 * fmax(1, fabs(fd)))
            fail_msg("smoothed weighted cross-entropy: param %zu analytic %g fd %g", i, (double)g[i], fd);
    }
    free(g);
    free(sp);
    free_batch(&b);
    tsr_model_destroy(m);
}

/* Masks depend on (seed, rank, step) only: the same step gives the same
 * output, another step another, and evaluation passes values unchanged. */
static void test_dropout_masks(void **s)
{
    (void)s;
    tsr_model_t *m = build("dropout(0.5)", (tsr_shape_t){64, 1, 1}, TSR_LOSS_MSE, 2);
    float x[128], a[128], b[128], p[128];
    for (int i = 0; i < 128; i++)
        x[i] = 1.0f + (float)i;
    tsr_model_set_step(m, 3);
    tsr_model_forward(m, x, 2);
    memcpy(a, tsr_model_output(m), sizeof a);
    tsr_model_set_step(m, 3);
    tsr_model_forward(m, x, 2);
    assert_memory_equal(a, tsr_model_output(m), sizeof a);
    tsr_model_forward(m, x, 2); /* step 4 now */
    memcpy(b, tsr_model_output(m), sizeof b);
    int dropped = 0, differ = 0;
    for (int i = 0; i < 128; i++) {
        dropped += a[i] == 0;
        differ += a[i] != b[i];
        assert_true(a[i] == 0 || a[i] == 2 * x[i]);
    }
    assert_true(dropped > 40 && dropped < 88);
    assert_true(differ > 20);
    tsr_model_set_rng(m, 5, 1); /* another rank, other masks */
    tsr_model_set_step(m, 3);
    tsr_model_forward(m, x, 2);
    assert_memory_not_equal(a, tsr_model_output(m), sizeof a);
    assert_int_equal(tsr_model_predict(m, x, 2, p), TSR_OK);
    assert_memory_equal(p, x, sizeof p);
    tsr_model_destroy(m);
}

/* Training updates the running statistics; evaluation uses them. */
static void test_bn_running_stats(void **s)
{
    (void)s;
    tsr_model_t *m = build("bn(momentum=0.5)", (tsr_shape_t){2, 1, 1}, TSR_LOSS_MSE, 4);
    float x[8] = {1, 10, 3, 10, 5, 10, 7, 10}, out[8];
    size_t nb;
    float *buf = tsr_model_buffers(m, &nb);
    assert_int_equal(nb, 4);
    tsr_model_forward(m, x, 4);
    /* mean 4 and 10; unbiased variance 20/3 and 0 */
    assert_true(fabsf(buf[0] - 2.0f) < 1e-5f && fabsf(buf[1] - 5.0f) < 1e-5f);
    assert_true(fabsf(buf[2] - (0.5f + 10.0f / 3)) < 1e-4f && fabsf(buf[3] - 0.5f) < 1e-5f);
    const float *y = tsr_model_output(m);
    assert_true(fabsf(y[0] + y[2] + y[4] + y[6]) < 1e-5f);
    assert_int_equal(tsr_model_predict(m, x, 4, out), TSR_OK);
    /* (1 - 2) / sqrt(0.5 + 10/3 + 1e-5) */
    assert_true(fabsf(out[0] - (float)(-1.0 / sqrt(0.5 + 10.0 / 3 + 1e-5))) < 1e-4f);
    tsr_model_destroy(m);
}

static void expect_error(const char *layers, tsr_shape_t in, const char *want1, const char *want2)
{
    tsr_model_spec_t *s = calloc(1, sizeof *s);
    s->input = in;
    s->loss = TSR_LOSS_XENT;
    tsr_model_t *m = NULL;
    int rc = tsr_model_parse(layers, s);
    if (!rc)
        rc = tsr_model_create(s, 2, &m);
    if (rc == TSR_OK)
        fail_msg("%s: accepted", layers);
    if (!strstr(tsr_last_error(), want1) || (want2 && !strstr(tsr_last_error(), want2)))
        fail_msg("%s: message \"%s\" lacks \"%s\" / \"%s\"", layers, tsr_last_error(), want1, want2 ? want2 : "");
    assert_null(m);
    free(s);
}

static void test_grammar_errors(void **s)
{
    (void)s;
    expect_error("conv(8,3) relux dense(2)", IMG, "unknown layer \"relux\"", "did you mean relu?");
    expect_error("conv(8,3,padd=1) dense(2)", IMG, "no argument \"padd\"", "did you mean pad?");
    expect_error("conv(8) dense(2)", IMG, "conv needs k", "conv(out, k, stride=1");
    expect_error("conv(8,3 dense(2)", IMG, "expected , or )", NULL);
    expect_error("res{dense(4) dense(2)", IMG, "not closed", NULL);
    expect_error("dense(4)} dense(2)", IMG, "} without", NULL);
    expect_error("conv(8,7) flatten dense(2)", IMG, "layer 0 (conv(8,7))", "larger than its input 2x6x5");
    expect_error("maxpool(7) flatten dense(2)", IMG, "window 7x7 is larger than its input 2x6x5", NULL);
    expect_error("res{conv(4,3,pad=1)} dense(2)", IMG, "gives 4x6x5 but its input is 2x6x5", "layers 0-2");
    expect_error("conv(3,3,groups=2) dense(2)", IMG, "groups = 2", NULL);
    expect_error("dense(4) embed(5,2) dense(2)", FLAT, "first layer", NULL);
    expect_error("dense(1)", FLAT, "at least 2 outputs", NULL);
}

static void test_text_and_diff(void **s)
{
    (void)s;
    tsr_model_spec_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    char t[96], why[256];
    assert_int_equal(tsr_model_parse("CONV(32, 3, pad=1) BN relu maxpool(2, stride=2) res{ gelu } gap", a), TSR_OK);
    assert_int_equal(a->nlayers, 8);
    tsr_layer_spec_text(&a->layer[0], t, sizeof t);
    assert_string_equal(t, "conv(32,3,pad=1)");
    tsr_layer_spec_text(&a->layer[1], t, sizeof t);
    assert_string_equal(t, "bn");
    tsr_layer_spec_text(&a->layer[3], t, sizeof t);
    assert_string_equal(t, "maxpool(2,stride=2)");
    assert_int_equal(tsr_model_parse("conv(32,3,pad=2) bn relu", b), TSR_OK);
    assert_int_equal(tsr_model_spec_diff(a, b, why, sizeof why), 1);
    assert_string_equal(why, "layer 0 is conv(32,3,pad=1) here and conv(32,3,pad=2) there");
    assert_int_equal(tsr_model_parse("conv(32,3,pad=1) bn relu", b), TSR_OK);
    assert_int_equal(tsr_model_spec_diff(a, b, why, sizeof why), 1);
    assert_non_null(strstr(why, "8 layers here and 3 there (layer 3, maxpool(2,stride=2), is only here)"));
    free(a);
    free(b);
}

/* A graph with every kind of stored tensor survives a model file, and its
 * predictions with it. */
static void test_graph_file_roundtrip(void **state)
{
    (void)state;
    char path[512];
    const char *tmp = getenv("TSR_TEST_TMP");
    snprintf(path, sizeof path, "%s/graph_roundtrip.h5", tmp ? tmp : "/tmp");
    tsr_model_t *m = build("conv(3,3,pad=1) bn relu maxpool(2) res{conv(3,3,pad=1) ln} flatten dropout(0.2) "
                           "dense(4)",
                           IMG, TSR_LOSS_XENT, ROWS),
                *back = NULL;
    batch_t b;
    make_batch(m, &b, 0);
    loss_at(m, &b); /* running statistics move off their start */
    float p1[ROWS * 4], p2[ROWS * 4];
    assert_int_equal(tsr_model_predict(m, b.x, ROWS, p1), TSR_OK);
    assert_int_equal(tsr_model_save(m, path, NULL, 0), TSR_OK);
    assert_int_equal(tsr_model_load(path, ROWS, &back), TSR_OK);
    assert_int_equal(tsr_model_nparams(back), tsr_model_nparams(m));
    size_t nb1, nb2;
    float *b1 = tsr_model_buffers(m, &nb1), *b2 = tsr_model_buffers(back, &nb2);
    assert_int_equal(nb1, nb2);
    assert_memory_equal(b1, b2, nb1 * sizeof(float));
    assert_int_equal(tsr_model_predict(back, b.x, ROWS, p2), TSR_OK);
    assert_memory_equal(p1, p2, sizeof p1);
    char *sum = tsr_model_summary(back);
    assert_non_null(sum);
    assert_non_null(strstr(sum, "conv(3,3,pad=1)"));
    assert_non_null(strstr(sum, "3x3x2")); /* maxpool's output */
    free(sum);
    free_batch(&b);
    tsr_model_destroy(back);
    tsr_model_destroy(m);
}

/* tsr_model_set_accumulate: backward of batch B added into the gradients
 * of batch A equals the two gradients summed apart, to rounding, through
 * dense (its GEMM's beta) and through kinds that overwrite (conv, batch
 * norm: the model's scratch); off again, backward overwrites. */
/* One forward and backward of batch b (scale 1). */
static void step(tsr_model_t *m, const batch_t *b)
{
    tsr_model_forward(m, b->x, ROWS);
    tsr_model_backward(m, b->y, NULL, ROWS, 1.0f, NULL, NULL);
}

static void test_accumulate_into_grads(void **state)
{
    (void)state;
    const char *layers = "conv(3,3,pad=1) bn relu flatten dense(6) relu dense(3)";
    tsr_model_t *m = build(layers, IMG, TSR_LOSS_XENT, ROWS);
    batch_t a, b;
    make_batch(m, &a, 0);
    make_batch(m, &b, 0);
    for (size_t i = 0; i < ROWS * tsr_model_input_size(m); i++)
        b.x[i] = 0.5f - b.x[i];
    size_t np = tsr_model_nparams(m);
    float *ga = malloc(np * sizeof *ga), *gb = malloc(np * sizeof *gb);
    assert_non_null(ga);
    assert_non_null(gb);
    step(m, &a);
    memcpy(ga, tsr_model_grads(m), np * sizeof *ga);
    step(m, &b);
    memcpy(gb, tsr_model_grads(m), np * sizeof *gb);
    step(m, &a);
    assert_int_equal(tsr_model_set_accumulate(m, 1), TSR_OK);
    step(m, &b);
    const float *g = tsr_model_grads(m);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < np; i++) {
        double d = fabs((double)g[i] - ((double)ga[i] + (double)gb[i]));
        worst = d > worst ? d : worst;
        scale = fabs((double)ga[i] + gb[i]) > scale ? fabs((double)ga[i] + gb[i]) : scale;
    }
    assert_true(scale > 0);
    if (worst > 1e-5 * scale)
        fail_msg("accumulated gradients differ from the sum by %g (largest %g)", worst, scale);
    assert_int_equal(tsr_model_set_accumulate(m, 0), TSR_OK);
    step(m, &b);
    assert_memory_equal(tsr_model_grads(m), gb, np * sizeof *gb);
    free(ga);
    free(gb);
    free_batch(&a);
    free_batch(&b);
    tsr_model_destroy(m);
}

/* tsr_model_set_grads_target: backward writes the same gradients into the
 * target and leaves the model's own buffer alone; NULL restores it. */
static void test_grads_target(void **state)
{
    (void)state;
    tsr_model_t *m = build("conv(3,3,pad=1) bn relu flatten dense(6) relu dense(3)", IMG, TSR_LOSS_XENT, ROWS);
    batch_t a;
    make_batch(m, &a, 0);
    size_t np = tsr_model_nparams(m);
    float *want = malloc(np * sizeof *want), *buf = malloc(np * sizeof *buf);
    assert_non_null(want);
    assert_non_null(buf);
    step(m, &a);
    memcpy(want, tsr_model_grads(m), np * sizeof *want);
    memset(tsr_model_grads(m), 0, np * sizeof(float));
    assert_int_equal(tsr_model_set_grads_target(m, buf), TSR_OK);
    step(m, &a);
    assert_memory_equal(buf, want, np * sizeof *buf);
    for (size_t i = 0; i < np; i++)
        assert_true(tsr_model_grads(m)[i] == 0.0f);
    assert_int_equal(tsr_model_set_grads_target(m, NULL), TSR_OK);
    step(m, &a);
    assert_memory_equal(tsr_model_grads(m), want, np * sizeof *want);
    free(want);
    free(buf);
    free_batch(&a);
    tsr_model_destroy(m);
}

/* b given a's parameters; then each of steps training steps on one batch
 * gives both the same loss and gradients, bit for bit. */
static void same_steps(tsr_model_t *a, tsr_model_t *b, const batch_t *x, int steps)
{
    size_t np = tsr_model_nparams(a);
    assert_int_equal(np, tsr_model_nparams(b));
    memcpy(tsr_model_params(b), tsr_model_params(a), np * sizeof(float));
    for (int step = 0; step < steps; step++) {
        tsr_model_forward(a, x->x, ROWS);
        tsr_model_forward(b, x->x, ROWS);
        double la = tsr_model_backward(a, x->y, NULL, ROWS, 1.0f, NULL, NULL);
        double lb = tsr_model_backward(b, x->y, NULL, ROWS, 1.0f, NULL, NULL);
        assert_true(la == lb);
        assert_memory_equal(tsr_model_grads(a), tsr_model_grads(b), np * sizeof(float));
    }
}

/* conv + ReLU + maxpool: the maxpool applies the ReLU's mask and the conv
 * skips it (layer.h); loss and gradients equal, bit for bit, those of the
 * same net with dropout(0) between, where nothing fuses across. Tiling and
 * overlapping windows. */
static void test_relu_mask_in_maxpool(void **state)
{
    (void)state;
    tsr_model_t *a = build("conv(4,3,pad=1) relu maxpool(2) conv(3,3,pad=1) relu maxpool(2,stride=1) flatten dense(3)",
                           IMG, TSR_LOSS_XENT, ROWS);
    tsr_model_t *b = build("conv(4,3,pad=1) relu dropout(0) maxpool(2) conv(3,3,pad=1) relu dropout(0) "
                           "maxpool(2,stride=1) flatten dense(3)",
                           IMG, TSR_LOSS_XENT, ROWS);
    assert_true(tsr_model_layer(a, 0)->grad_masked && tsr_model_layer(a, 2)->mask_relu);
    assert_true(tsr_model_layer(a, 3)->grad_masked && tsr_model_layer(a, 5)->mask_relu);
    assert_false(tsr_model_layer(b, 0)->grad_masked || tsr_model_layer(b, 3)->mask_relu);
    batch_t x;
    make_batch(a, &x, 0);
    same_steps(a, b, &x, 1);
    free_batch(&x);
    tsr_model_destroy(a);
    tsr_model_destroy(b);
}

/* Batch norm + ReLU + maxpool: the maxpool masks for the ReLU fused into
 * the batch norm (tiling and overlapping windows), and a tiling pool is
 * done by the batch norm forward and backward (pool); loss, gradients,
 * running statistics and predictions equal, bit for bit, those of the
 * same net with dropout(0) before each pool, where nothing fuses across. */
static void test_bn_relu_mask_in_maxpool(void **state)
{
    (void)state;
    const tsr_shape_t in = {2, 8, 8};
    tsr_model_t *a = build("conv(4,3,pad=1) bn relu maxpool(2) conv(3,3,pad=1) bn relu maxpool(2,stride=1) flatten "
                           "dense(3)",
                           in, TSR_LOSS_XENT, ROWS);
    tsr_model_t *b = build("conv(4,3,pad=1) bn relu dropout(0) maxpool(2) conv(3,3,pad=1) bn relu dropout(0) "
                           "maxpool(2,stride=1) flatten dense(3)",
                           in, TSR_LOSS_XENT, ROWS);
    assert_true(tsr_model_layer(a, 1)->grad_masked && tsr_model_layer(a, 3)->mask_relu);
    assert_true(tsr_model_layer(a, 5)->grad_masked && tsr_model_layer(a, 7)->mask_relu);
    assert_false(tsr_model_layer(b, 1)->grad_masked || tsr_model_layer(b, 3)->mask_relu);
    /* the tiling pool done by the batch norm itself, not the other */
    assert_true(tsr_model_layer(a, 1)->pool == tsr_model_layer(a, 3) && !tsr_model_layer(a, 5)->pool);
    size_t nb, nb2;
    batch_t x;
    make_batch(a, &x, 0);
    same_steps(a, b, &x, 2);
    float *ba = tsr_model_buffers(a, &nb), *bb = tsr_model_buffers(b, &nb2);
    assert_int_equal(nb, nb2);
    assert_memory_equal(ba, bb, nb * sizeof(float));
    float pa[ROWS * 3], pb[ROWS * 3]; /* evaluation: the running statistics */
    assert_int_equal(tsr_model_predict(a, x.x, ROWS, pa), TSR_OK);
    assert_int_equal(tsr_model_predict(b, x.x, ROWS, pb), TSR_OK);
    assert_memory_equal(pa, pb, sizeof pa);
    free_batch(&x);
    tsr_model_destroy(a);
    tsr_model_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_dense_acts),
        cmocka_unit_test(test_grad_conv),
        cmocka_unit_test(test_grad_pool),
        cmocka_unit_test(test_relu_mask_in_maxpool),
        cmocka_unit_test(test_bn_relu_mask_in_maxpool),
        cmocka_unit_test(test_grads_target),
        cmocka_unit_test(test_grad_norm),
        cmocka_unit_test(test_grad_onednn),
        cmocka_unit_test(test_grad_res_dropout),
        cmocka_unit_test(test_grad_embed),
        cmocka_unit_test(test_grad_losses),
        cmocka_unit_test(test_dropout_masks),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_grammar_errors),
        cmocka_unit_test(test_text_and_diff),
        cmocka_unit_test(test_graph_file_roundtrip),
        cmocka_unit_test(test_accumulate_into_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
