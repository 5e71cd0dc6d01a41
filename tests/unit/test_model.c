/* SPDX-License-Identifier: BSD-3-Clause */
/* Model: finite-difference gradient checks for every activation and loss,
 * shapes, save/load round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/rng.h"

enum { ROWS = 5 };

static tsr_model_t *make(tsr_act_t act, tsr_loss_t loss, size_t out)
{
    tsr_model_spec_t s;
    tsr_model_spec_mlp(&s, (const size_t[]){4, 6, 5, out}, 3, act, loss);
    tsr_model_t *m = NULL;
    assert_int_equal(tsr_model_create(&s, ROWS, &m), TSR_OK);
    tsr_model_init(m, 7);
    return m;
}

/* Loss sum over the batch at the current parameters, in double via forward. */
static double loss_at(tsr_model_t *m, const float *x, const int32_t *y, const float *t)
{
    tsr_model_forward(m, x, ROWS);
    return tsr_model_backward(m, y, t, ROWS, 1.0f, NULL, NULL);
}

static void gradcheck(tsr_act_t act, tsr_loss_t loss)
{
    size_t k = 3;
    tsr_model_t *m = make(act, loss, k);
    float x[ROWS * 4], t[ROWS * 3];
    int32_t y[ROWS];
    tsr_rng_t r;
    tsr_rng_seed(&r, 3, 0);
    for (size_t i = 0; i < ROWS * 4; i++)
        x[i] = (float)(2 * tsr_rng_uniform(&r) - 1);
    for (size_t i = 0; i < ROWS * k; i++)
        t[i] = (float)(2 * tsr_rng_uniform(&r) - 1);
    for (size_t i = 0; i < ROWS; i++)
        y[i] = (int32_t)(i % k);
    size_t n = tsr_model_nparams(m);
    float *p = tsr_model_params(m);
    float *g = malloc(n * sizeof *g);
    loss_at(m, x, y, t);
    memcpy(g, tsr_model_grads(m), n * sizeof *g);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        float save = p[i];
        const float h = 1e-2f;
        p[i] = save + h;
        double lp = loss_at(m, x, y, t);
        p[i] = save - h;
        double lm = loss_at(m, x, y, t);
        p[i] = save;
        double fd = (lp - lm) / (2 * h);
        /* relu's kink can sit inside the step; skip those rare points. */
        double tol = 2e-2 * fmax(1.0, fabs(fd));
        if (fabs(fd - g[i]) > tol && act == TSR_ACT_RELU)
            continue;
        if (fabs(fd - g[i]) > tol)
            fail_msg("%s/%s: param %zu analytic %g finite-difference %g", tsr_act_name(act), tsr_loss_name(loss), i,
                     (double)g[i], fd);
        checked++;
    }
    assert_true(checked > (int)n * 9 / 10);
    free(g);
    tsr_model_destroy(m);
}

static void test_grad_relu_xent(void **s)
{
    (void)s;
    gradcheck(TSR_ACT_RELU, TSR_LOSS_XENT);
}
static void test_grad_tanh_xent(void **s)
{
    (void)s;
    gradcheck(TSR_ACT_TANH, TSR_LOSS_XENT);
}
static void test_grad_sigmoid_xent(void **s)
{
    (void)s;
    gradcheck(TSR_ACT_SIGMOID, TSR_LOSS_XENT);
}
static void test_grad_relu_mse(void **s)
{
    (void)s;
    gradcheck(TSR_ACT_RELU, TSR_LOSS_MSE);
}
static void test_grad_tanh_mse(void **s)
{
    (void)s;
    gradcheck(TSR_ACT_TANH, TSR_LOSS_MSE);
}
static void test_grad_sigmoid_mse(void **s)
{
    (void)s;
    gradcheck(TSR_ACT_SIGMOID, TSR_LOSS_MSE);
}

static void test_layout_and_ready_order(void **state)
{
    (void)state;
    tsr_model_t *m = make(TSR_ACT_RELU, TSR_LOSS_XENT, 3);
    /* 4*6+6, 6*5+5, 5*3+3 */
    assert_int_equal(tsr_model_nparams(m), 30 + 35 + 18);
    assert_int_equal(tsr_model_layer_offset(m, 2), 30);
    assert_int_equal(tsr_model_layer_offset(m, 4), 65);
    float x[ROWS * 4] = {0};
    int32_t y[ROWS] = {0, 1, 2, 0, 1};
    assert_int_equal(tsr_model_forward(m, x, ROWS), TSR_OK);
    tsr_model_backward(m, y, NULL, ROWS, 1.0f, NULL, NULL);
    /* Batch too large is refused with a message. */
    assert_int_equal(tsr_model_forward(m, x, ROWS + 1), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "batch"));
    tsr_model_destroy(m);
}

static size_t order[8];
static int norder;
static void record(size_t off, void *arg)
{
    (void)arg;
    order[norder++] = off;
}

static void test_ready_callback_last_layer_first(void **state)
{
    (void)state;
    tsr_model_t *m = make(TSR_ACT_TANH, TSR_LOSS_XENT, 3);
    float x[ROWS * 4] = {0.5f};
    int32_t y[ROWS] = {0, 1, 2, 0, 1};
    norder = 0;
    tsr_model_forward(m, x, ROWS);
    tsr_model_backward(m, y, NULL, ROWS, 1.0f, record, NULL);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 65);
    assert_int_equal(order[1], 30);
    assert_int_equal(order[2], 0);
    tsr_model_destroy(m);
}

static void test_bad_spec(void **state)
{
    (void)state;
    tsr_model_spec_t s = {.nlayers = 0};
    tsr_model_t *m = NULL;
    assert_int_equal(tsr_model_create(&s, 4, &m), TSR_EINVAL);
    tsr_model_spec_t s2;
    tsr_model_spec_mlp(&s2, (const size_t[]){4, 1}, 1, TSR_ACT_NONE, TSR_LOSS_XENT);
    assert_int_equal(tsr_model_create(&s2, 4, &m), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "cross-entropy"));
    tsr_model_destroy(NULL);
}

static void test_save_load_roundtrip(void **state)
{
    (void)state;
    char path[512], cmd[600];
    const char *tmp = getenv("TSR_TEST_TMP");
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp ? tmp : "/tmp");
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/model_roundtrip.h5", tmp ? tmp : "/tmp");
    tsr_model_t *m = make(TSR_ACT_SIGMOID, TSR_LOSS_MSE, 2), *back = NULL;
    const char *attrs[] = {"note", "unit test"};
    assert_int_equal(tsr_model_save(m, path, attrs, 1), TSR_OK);
    assert_int_equal(tsr_model_load(path, 3, &back), TSR_OK);
    assert_int_equal(tsr_model_nparams(back), tsr_model_nparams(m));
    assert_memory_equal(tsr_model_params(back), tsr_model_params(m), tsr_model_nparams(m) * sizeof(float));
    assert_string_equal(tsr_model_spec(back)->layer[1].kind, "sigmoid");
    assert_int_equal(tsr_model_spec(back)->loss, TSR_LOSS_MSE);
    tsr_model_destroy(back);
    /* The parameter budget: refused one below the model, read at it. */
    back = NULL;
    assert_int_equal(tsr_model_load_max(path, 3, tsr_model_nparams(m) - 1, &back), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "max_model_params"));
    assert_null(back);
    assert_int_equal(tsr_model_load_max(path, 3, tsr_model_nparams(m), &back), TSR_OK);
    tsr_model_destroy(back);
    /* A non-HDF5 file is refused with its name. */
    FILE *f = fopen(path, "w");
    fputs("not hdf5", f);
    fclose(f);
    assert_int_equal(tsr_model_load(path, 3, &back), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), path));
    /* Saving into a missing directory fails cleanly. */
    assert_int_equal(tsr_model_save(m, "/nonexistent-dir/x.h5", NULL, 0), TSR_EIO);
    tsr_model_destroy(m);
}

static void test_spec_json(void **state)
{
    (void)state;
    tsr_model_spec_t s, back;
    tsr_model_spec_mlp(&s, (const size_t[]){64, 32, 10}, 2, TSR_ACT_RELU, TSR_LOSS_XENT);
    char buf[2048], why[256];
    assert_true(tsr_model_spec_json(&s, buf, sizeof buf) > 0);
    assert_string_equal(buf, "{\"graph\":2,\"input\":[64,1,1],\"loss\":\"cross_entropy\",\"layers\":["
                             "{\"kind\":\"dense\",\"text\":\"dense(32)\",\"args\":{\"out\":32},\"out\":[32,1,1],"
                             "\"params\":2080},{\"kind\":\"relu\",\"text\":\"relu\",\"args\":{},\"out\":[32,1,1],"
                             "\"params\":0},{\"kind\":\"dense\",\"text\":\"dense(10)\",\"args\":{\"out\":10},"
                             "\"out\":[10,1,1],\"params\":330}]}");
    assert_int_equal(tsr_model_spec_from_json(buf, &back), TSR_OK);
    assert_int_equal(tsr_model_spec_diff(&s, &back, why, sizeof why), 0);
    assert_int_equal(tsr_model_spec_json(&s, buf, 10), TSR_EINVAL);
    /* The JSON of model files before graphs still reads. */
    assert_int_equal(tsr_model_spec_from_json("{\"layers\":[{\"type\":\"dense\",\"in\":64,\"out\":32,"
                                              "\"activation\":\"relu\"},{\"type\":\"dense\",\"in\":32,"
                                              "\"out\":10,\"activation\":\"none\"}],\"loss\":\"cross_entropy\"}",
                                              &back),
                     TSR_OK);
    assert_int_equal(tsr_model_spec_diff(&s, &back, why, sizeof why), 0);
}

/* The queued loss total equals the sum of what tsr_model_backward returns,
 * bit for bit, and a take clears it. */
static void test_queued_loss(void **state)
{
    (void)state;
    tsr_model_t *a = make(TSR_ACT_RELU, TSR_LOSS_XENT, 3), *b = make(TSR_ACT_RELU, TSR_LOSS_XENT, 3);
    float x[ROWS * 4];
    int32_t y[ROWS];
    tsr_rng_t r;
    tsr_rng_seed(&r, 5, 0);
    double want = 0, got = -1;
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < ROWS * 4; i++)
            x[i] = (float)(2 * tsr_rng_uniform(&r) - 1);
        for (size_t i = 0; i < ROWS; i++)
            y[i] = (int32_t)((i + (size_t)step) % 3);
        tsr_model_forward(a, x, ROWS);
        want += tsr_model_backward(a, y, NULL, ROWS, 1.0f, NULL, NULL);
        tsr_model_forward(b, x, ROWS);
        assert_int_equal(tsr_model_backward_queued(b, y, NULL, ROWS, 1.0f, NULL, NULL), TSR_OK);
    }
    assert_int_equal(tsr_model_take_loss(b, &got), TSR_OK);
    assert_true(want > 0 && got == want);
    assert_int_equal(tsr_model_take_loss(b, &got), TSR_OK);
    assert_true(got == 0.0);
    assert_memory_equal(tsr_model_grads(a), tsr_model_grads(b), tsr_model_nparams(a) * sizeof(float));
    tsr_model_destroy(a);
    tsr_model_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_relu_xent),
        cmocka_unit_test(test_grad_tanh_xent),
        cmocka_unit_test(test_grad_sigmoid_xent),
        cmocka_unit_test(test_grad_relu_mse),
        cmocka_unit_test(test_grad_tanh_mse),
        cmocka_unit_test(test_grad_sigmoid_mse),
        cmocka_unit_test(test_layout_and_ready_order),
        cmocka_unit_test(test_ready_callback_last_layer_first),
        cmocka_unit_test(test_bad_spec),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_spec_json),
        cmocka_unit_test(test_queued_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
