/* SPDX-License-Identifier: BSD-3-Clause */
/* The fp16 loss scaler against torch.cuda.amp.GradScaler's update rule
 * (_amp_update_scale_): the defaults, backoff and skip on an overflow,
 * growth after `interval` finite steps in a row (the count restarting at
 * an overflow and at each growth), and a scale that would overflow float
 * kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tessera/optim.h"

static void test_defaults(void **state)
{
    (void)state;
    tsr_loss_scaler_t s;
    tsr_loss_scaler_init(&s);
    assert_true(s.scale == 65536.0 && s.growth == 2.0 && s.backoff == 0.5);
    assert_int_equal(s.interval, 2000);
    assert_int_equal(s.good, 0);
    assert_int_equal(s.skipped, 0);
}

static void test_overflow_skips_and_backs_off(void **state)
{
    (void)state;
    tsr_loss_scaler_t s;
    tsr_loss_scaler_init(&s);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tsr_loss_scaler_update(&s, 1), 1);
    assert_int_equal(s.good, 5);
    assert_int_equal(tsr_loss_scaler_update(&s, 0), 0); /* skipped */
    assert_true(s.scale == 32768.0);
    assert_int_equal(s.good, 0);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(tsr_loss_scaler_update(&s, 0), 0); /* twice in a row: halves again */
    assert_true(s.scale == 16384.0);
    assert_int_equal(s.skipped, 2);
}

static void test_growth_after_interval(void **state)
{
    (void)state;
    tsr_loss_scaler_t s;
    tsr_loss_scaler_init(&s);
    for (int i = 0; i < 1999; i++)
        tsr_loss_scaler_update(&s, 1);
    assert_true(s.scale == 65536.0);
    assert_int_equal(s.good, 1999);
    tsr_loss_scaler_update(&s, 1); /* the 2000th */
    assert_true(s.scale == 131072.0);
    assert_int_equal(s.good, 0);
    /* An overflow restarts the count: 1999 good, one bad, 1999 good: no growth. */
    for (int i = 0; i < 1999; i++)
        tsr_loss_scaler_update(&s, 1);
    tsr_loss_scaler_update(&s, 0);
    for (int i = 0; i < 1999; i++)
        tsr_loss_scaler_update(&s, 1);
    assert_true(s.scale == 65536.0);
    tsr_loss_scaler_update(&s, 1);
    assert_true(s.scale == 131072.0);
    assert_int_equal(s.skipped, 1);
}

static void test_no_growth_to_infinity(void **state)
{
    (void)state;
    tsr_loss_scaler_t s;
    tsr_loss_scaler_init(&s);
    s.interval = 1;
    s.scale = 0x1p127;
    tsr_loss_scaler_update(&s, 1); /* 2^128 overflows float: kept, as PyTorch */
    assert_true(s.scale == 0x1p127);
    assert_int_equal(s.good, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_overflow_skips_and_backs_off),
        cmocka_unit_test(test_growth_after_interval),
        cmocka_unit_test(test_no_growth_to_infinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
