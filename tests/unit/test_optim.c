/* SPDX-License-Identifier: BSD-3-Clause */
/* Optimizers and schedules against hand-computed PyTorch-rule values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "tessera/error.h"
#include "tessera/optim.h"

static tsr_optim_config_t base(void)
{
    tsr_optim_config_t c = {.kind = TSR_OPTIM_SGD,
                            .lr = 0.1,
                            .momentum = 0.9,
                            .beta1 = 0.9,
                            .beta2 = 0.999,
                            .eps = 1e-8,
                            .schedule = TSR_SCHED_CONSTANT};
    return c;
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    tsr_optim_config_t c = base();
    tsr_optim_t *o = NULL;
    float p[2] = {1.0f, -1.0f}, g[2];
    assert_int_equal(tsr_optim_create(&c, 2, &o), TSR_OK);
    g[0] = 1.0f, g[1] = 2.0f;
    tsr_optim_step(o, p, g, NULL); /* v = g; p -= 0.1 g */
    assert_float_equal(p[0], 0.9f, 1e-6);
    assert_float_equal(p[1], -1.2f, 1e-6);
    g[0] = 1.0f, g[1] = 2.0f;
    tsr_optim_step(o, p, g, NULL); /* v = 0.9 v + g = 1.9 g */
    assert_float_equal(p[0], 0.9f - 0.19f, 1e-6);
    assert_float_equal(p[1], -1.2f - 0.38f, 1e-6);
    assert_int_equal(tsr_optim_steps_taken(o), 2);
    tsr_optim_destroy(o);
}

static void test_sgd_plain_weight_decay(void **state)
{
    (void)state;
    tsr_optim_config_t c = base();
    c.momentum = 0;
    c.weight_decay = 0.5;
    tsr_optim_t *o = NULL;
    float p[1] = {2.0f}, g[1] = {1.0f};
    size_t ns;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_OK);
    assert_null(tsr_optim_state(o, &ns));
    assert_int_equal(ns, 0);
    tsr_optim_step(o, p, g, NULL); /* p -= 0.1 (1 + 0.5*2) */
    assert_float_equal(p[0], 1.8f, 1e-6);
    tsr_optim_destroy(o);
}

static void test_adamw(void **state)
{
    (void)state;
    tsr_optim_config_t c = base();
    c.kind = TSR_OPTIM_ADAMW;
    c.lr = 0.01;
    c.weight_decay = 0.1;
    tsr_optim_t *o = NULL;
    float p[1] = {1.0f}, g[1] = {0.5f};
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_OK);
    /* Step 1: m_hat = g, v_hat = g^2, update = lr * g/|g| = lr; decay first. */
    tsr_optim_step(o, p, g, NULL);
    assert_float_equal(p[0], 1.0f * (1 - 0.001f) - 0.01f, 1e-6);
    size_t ns;
    float *st = tsr_optim_state(o, &ns);
    assert_int_equal(ns, 2);
    assert_float_equal(st[0], 0.05f, 1e-7);
    assert_float_equal(st[1], 0.001f * 0.25f, 1e-7);
    tsr_optim_destroy(o);
}

static void test_schedule(void **state)
{
    (void)state;
    tsr_optim_config_t c = base();
    c.schedule = TSR_SCHED_COSINE;
    c.warmup_steps = 10;
    c.total_steps = 110;
    c.min_lr = 0.0;
    tsr_optim_t *o = NULL;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_OK);
    assert_float_equal(tsr_optim_lr(o, 0), 0.01, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 9), 0.1, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 10), 0.1, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 60), 0.05, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 110), 0.0, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 500), 0.0, 1e-12);
    tsr_optim_destroy(o);
}

static void test_clipping(void **state)
{
    (void)state;
    tsr_optim_config_t c = base();
    c.momentum = 0;
    c.lr = 1.0;
    c.clip_norm = 1.0;
    tsr_optim_t *o = NULL;
    float p[2] = {0, 0}, g[2] = {3.0f, 4.0f};
    double norm;
    assert_int_equal(tsr_optim_create(&c, 2, &o), TSR_OK);
    tsr_optim_step(o, p, g, &norm);
    assert_float_equal(norm, 5.0, 1e-9);
    assert_float_equal(p[0], -0.6f, 1e-5);
    assert_float_equal(p[1], -0.8f, 1e-5);
    tsr_optim_destroy(o);
}

static void test_bad_config(void **state)
{
    (void)state;
    tsr_optim_config_t c = base();
    tsr_optim_t *o = NULL;
    c.momentum = 1.5;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "momentum"));
    tsr_optim_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum), cmocka_unit_test(test_sgd_plain_weight_decay),
        cmocka_unit_test(test_adamw),        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_clipping),     cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
