/* SPDX-License-Identifier: BSD-3-Clause */
/* Schedules against values computed by hand from torch.optim.lr_scheduler's
 * rules; reduce-on-plateau's decisions and their state; the checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "tessera/error.h"
#include "tessera/optim.h"

static tsr_optim_config_t base(tsr_sched_t s)
{
    tsr_optim_config_t c = {.kind = TSR_OPTIM_SGD,
                            .lr = 0.1,
                            .beta1 = 0.9,
                            .beta2 = 0.999,
                            .eps = 1e-8,
                            .schedule = s,
                            .total_steps = 100,
                            .gamma = 0.1,
                            .power = 1,
                            .pct_start = 0.3,
                            .div_factor = 25,
                            .final_div_factor = 1e4,
                            .plateau_factor = 0.1,
                            .plateau_threshold = 1e-4,
                            .plateau_patience = 10};
    return c;
}

static tsr_optim_t *make(const tsr_optim_config_t *c)
{
    tsr_optim_t *o = NULL;
    assert_int_equal(tsr_optim_create(c, 1, &o), TSR_OK);
    return o;
}

static void test_step_and_warmup(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_SCHED_STEP);
    c.step_size = 3;
    c.gamma = 0.5;
    tsr_optim_t *o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 2), 0.1, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 3), 0.05, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 6), 0.025, 1e-12);
    tsr_optim_destroy(o);
    c.warmup_steps = 4; /* the ramp reaches the schedule's first lr; then its clock starts */
    o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 0), 0.025, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 3), 0.1, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 6), 0.1, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 7), 0.05, 1e-12);
    tsr_optim_destroy(o);
}

static void test_multistep_exponential_polynomial(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_SCHED_MULTISTEP);
    c.nmilestones = 2, c.milestones[0] = 2, c.milestones[1] = 5;
    tsr_optim_t *o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 1), 0.1, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 2), 0.01, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 4), 0.01, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 5), 0.001, 1e-12);
    tsr_optim_destroy(o);
    c = base(TSR_SCHED_EXPONENTIAL);
    c.gamma = 0.9;
    o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 2), 0.081, 1e-12);
    tsr_optim_destroy(o);
    c = base(TSR_SCHED_POLYNOMIAL);
    c.power = 2, c.total_steps = 10;
    o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 5), 0.025, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 10), 0.0, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 50), 0.0, 1e-12);
    tsr_optim_destroy(o);
}

static void test_onecycle(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_SCHED_ONECYCLE);
    c.lr = 1, c.total_steps = 10; /* rise over steps 0..2, fall over 2..9 */
    tsr_optim_t *o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 0), 0.04, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 1), 0.52, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 2), 1.0, 1e-12);
    assert_float_equal(tsr_optim_lr(o, 9), 4e-6, 1e-15);
    assert_float_equal(tsr_optim_lr(o, 20), 4e-6, 1e-15);
    tsr_optim_destroy(o);
    c.max_lr = 2; /* max_lr wins over lr */
    o = make(&c);
    assert_float_equal(tsr_optim_lr(o, 2), 2.0, 1e-12);
    tsr_optim_destroy(o);
    c.max_lr = 0;
    o = make(&c);
    assert_true(fabs(tsr_optim_lr(o, 5) - (4e-6 + (1 - 4e-6) / 2 * (cos(M_PI * 3 / 7) + 1))) < 1e-12);
    tsr_optim_destroy(o);
}

static void test_plateau(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_SCHED_PLATEAU);
    c.plateau_patience = 1, c.plateau_factor = 0.5, c.plateau_threshold = 0, c.plateau_cooldown = 1;
    c.min_lr = 0.02;
    tsr_optim_t *o = make(&c);
    size_t ns;
    float *s = tsr_optim_state(o, &ns);
    assert_int_equal(ns, 4); /* no momentum array; best, bad, cooldown, lr */
    double seen[] = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6};
    double want[] = {0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02};
    for (int i = 0; i < 12; i++) {
        tsr_optim_observe(o, seen[i]);
        assert_float_equal(tsr_optim_lr(o, i), want[i], 1e-8);
        if (i == 6) {
            /* A resumed run: the state alone continues the decisions. */
            tsr_optim_t *r = make(&c);
            size_t nr;
            memcpy(tsr_optim_state(r, &nr), s, ns * sizeof *s);
            for (int j = 7; j < 12; j++)
                tsr_optim_observe(r, seen[j]);
            assert_float_equal(tsr_optim_lr(r, 11), 0.02, 1e-8);
            tsr_optim_destroy(r);
        }
    }
    assert_float_equal(s[0], 0.5f, 0);
    tsr_optim_destroy(o);
}

static void test_checks_name_the_key(void **state)
{
    (void)state;
    tsr_optim_t *o = NULL;
    tsr_optim_config_t c = base(TSR_SCHED_MULTISTEP);
    c.nmilestones = 2, c.milestones[0] = 50, c.milestones[1] = 150;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "optim.milestones: 150 is past the run"));
    c.milestones[1] = 40;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "increasing"));
    c = base(TSR_SCHED_COSINE);
    c.warmup_steps = 101;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "optim.warmup_steps = 101 is longer than the run (100 steps)"));
    c = base(TSR_SCHED_STEP);
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "optim.step_size"));
    c.step_size = 200;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    c = base(TSR_SCHED_ONECYCLE);
    c.pct_start = 0.005;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "optim.pct_start"));
    c = base(TSR_SCHED_PLATEAU);
    c.plateau_factor = 1;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    c = base(TSR_SCHED_EXPONENTIAL);
    c.gamma = 0;
    assert_int_equal(tsr_optim_create(&c, 1, &o), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "optim.gamma"));
    assert_null(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_and_warmup),
        cmocka_unit_test(test_multistep_exponential_polynomial),
        cmocka_unit_test(test_onecycle),
        cmocka_unit_test(test_plateau),
        cmocka_unit_test(test_checks_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
