/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the CPU losses (src/model/loss.c) against their formulas
 * in double precision, on a model whose output is its input (flatten), so
 * the loss sees chosen logits: cross-entropy (plain, label smoothing, class
 * weights, large logits), MSE, Huber (both sides of delta) and binary
 * cross-entropy on logits; the value tsr_model_backward returns is the sum
 * over rows, each row's regression loss the mean over its outputs.
 * Gradients are checked against finite differences in test_layers.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tessera/error.h"
#include "tessera/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 3, K = 4 };

static const float logits[ROWS][K] = {{0.5f, -1.25f, 2.0f, 0.0f}, {3.0f, 3.0f, -2.5f, 1.0f}, {80, -80, 40, 79.5f}};
static const int32_t labels[ROWS] = {2, 0, 3};
static const float targets[ROWS][K] = {{0.5f, 0.0f, 1.0f, 0.25f}, {1.0f, 0.0f, 0.0f, 1.0f}, {0.0f, 1.0f, 0.5f, 1.0f}};

/* The loss tsr_model_backward returns (scale 1) for a flatten-only model. */
static double model_loss(tsr_model_spec_t *s)
{
    s->input = (tsr_shape_t){K, 1, 1};
    if (tsr_model_parse("flatten", s) != TSR_OK)
        fail_msg("parse: %s", tsr_last_error());
    tsr_model_t *m = NULL;
    if (tsr_model_create(s, ROWS, &m) != TSR_OK)
        fail_msg("create: %s", tsr_last_error());
    assert_int_equal(tsr_model_forward(m, &logits[0][0], ROWS), TSR_OK);
    int xent = s->loss == TSR_LOSS_XENT;
    double loss = tsr_model_backward(m, xent ? labels : NULL, xent ? NULL : &targets[0][0], ROWS, 1.0f, NULL, NULL);
    tsr_model_destroy(m);
    return loss;
}

static void check(const char *what, double got, double want)
{
    if (!(fabs(got - want) <= 1e-5 * fmax(1.0, fabs(want))))
        fail_msg("%s: loss %.9g, want %.9g", what, got, want);
}

/* -sum_j w_j q_j log softmax(z)_j, q = (1 - eps) onehot + eps / K. */
static double ref_xent(double eps, const float *w)
{
    double total = 0;
    for (int r = 0; r < ROWS; r++) {
        double mx = logits[r][0], s = 0;
        for (int j = 1; j < K; j++)
            mx = fmax(mx, logits[r][j]);
        for (int j = 0; j < K; j++)
            s += exp(logits[r][j] - mx);
        for (int j = 0; j < K; j++) {
            double q = eps / K + (j == labels[r] ? 1 - eps : 0);
            total -= (w ? w[j] : 1.0) * q * (logits[r][j] - mx - log(s));
        }
    }
    return total;
}

static void test_cross_entropy(void **state)
{
    (void)state;
    tsr_model_spec_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->loss = TSR_LOSS_XENT;
    check("cross-entropy", model_loss(s), ref_xent(0, NULL));
    memset(s, 0, sizeof *s);
    s->loss = TSR_LOSS_XENT;
    s->label_smoothing = 0.1f;
    check("cross-entropy, label smoothing 0.1", model_loss(s), ref_xent(0.1f, NULL));
    static const float w[K] = {1.0f, 2.5f, 0.5f, 3.0f};
    memset(s, 0, sizeof *s);
    s->loss = TSR_LOSS_XENT;
    s->label_smoothing = 0.2f;
    s->nclass_weights = K;
    memcpy(s->class_weight, w, sizeof w);
    check("cross-entropy, smoothing 0.2 and class weights", model_loss(s), ref_xent(0.2f, w));
    free(s);
}

/* Per row: the mean over K of f(out - target) (bce: of the logit form). */
static double ref_regression(tsr_loss_t loss, double delta)
{
    double total = 0;
    for (int r = 0; r < ROWS; r++) {
        double row = 0;
        for (int j = 0; j < K; j++) {
            double z = logits[r][j], t = targets[r][j], e = z - t;
            if (loss == TSR_LOSS_MSE)
                row += e * e;
            else if (loss == TSR_LOSS_HUBER)
                row += fabs(e) <= delta ? 0.5 * e * e : delta * (fabs(e) - 0.5 * delta);
            else /* bce: -t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)), stable form */
                row += fmax(z, 0) - z * t + log1p(exp(-fabs(z)));
        }
        total += row / K;
    }
    return total;
}

static void test_regression(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        tsr_loss_t loss;
        float delta; /* Huber; 0: the default 1.0 */
    } cases[] = {
        {"mse", TSR_LOSS_MSE, 0},
        {"huber", TSR_LOSS_HUBER, 0},
        {"huber delta 0.5", TSR_LOSS_HUBER, 0.5f},
        {"huber delta 100", TSR_LOSS_HUBER, 100},
        {"bce", TSR_LOSS_BCE, 0},
    };
    tsr_model_spec_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(s, 0, sizeof *s);
        s->loss = cases[i].loss;
        s->huber_delta = cases[i].delta;
        check(cases[i].what, model_loss(s), ref_regression(cases[i].loss, cases[i].delta > 0 ? cases[i].delta : 1.0));
    }
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_regression),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
