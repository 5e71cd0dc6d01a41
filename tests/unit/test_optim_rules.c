/* SPDX-License-Identifier: BSD-3-Clause */
/* The new optimizers' updates against steps computed by hand from each
 * reference's rule (torch.optim 1.13, the Lion paper, apex FusedLAMB,
 * torchlars). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "tessera/error.h"
#include "tessera/optim.h"

static tsr_optim_config_t base(tsr_optim_kind_t kind)
{
    tsr_optim_config_t c = {.kind = kind,
                            .lr = 0.1,
                            .beta1 = 0.9,
                            .beta2 = 0.999,
                            .eps = 1e-8,
                            .alpha = 0.99,
                            .trust_coef = 0.001,
                            .schedule = TSR_SCHED_CONSTANT};
    return c;
}

static tsr_optim_t *make(const tsr_optim_config_t *c, size_t n)
{
    tsr_optim_t *o = NULL;
    assert_int_equal(tsr_optim_create(c, n, &o), TSR_OK);
    return o;
}

static void test_lion(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_OPTIM_LION);
    c.beta2 = 0.99;
    c.weight_decay = 0.1;
    tsr_optim_t *o = make(&c, 3);
    float p[3] = {1, -1, 2}, g[3] = {0.5f, -2, 0};
    size_t ns;
    tsr_optim_step(o, p, g, NULL); /* m = 0: sign(0.1 g); p (1 - 0.01) - 0.1 sign */
    assert_float_equal(p[0], 0.89f, 1e-6);
    assert_float_equal(p[1], -0.89f, 1e-6);
    assert_float_equal(p[2], 1.98f, 1e-6); /* sign(0) = 0: decay only */
    float *m = tsr_optim_state(o, &ns);
    assert_int_equal(ns, 3);
    assert_float_equal(m[0], 0.005f, 1e-7);
    assert_float_equal(m[1], -0.02f, 1e-7);
    g[0] = -0.01f, g[1] = 0, g[2] = 0;
    tsr_optim_step(o, p, g, NULL); /* c = 0.0045 - 0.001 > 0; c = -0.018 < 0 */
    assert_float_equal(p[0], 0.89f * 0.99f - 0.1f, 1e-6);
    assert_float_equal(p[1], -0.89f * 0.99f + 0.1f, 1e-6);
    assert_float_equal(m[0], 0.99f * 0.005f - 0.0001f, 1e-7);
    tsr_optim_destroy(o);
}

static void test_adam_coupled(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_OPTIM_ADAM);
    c.weight_decay = 0.5;
    tsr_optim_t *o = make(&c, 1);
    float p[1] = {2}, g[1] = {1};
    /* g' = 1 + 0.5 * 2 = 2; m^ = 2, v^ = 4: p -= 0.1 * 2 / 2 */
    tsr_optim_step(o, p, g, NULL);
    assert_float_equal(p[0], 1.9f, 1e-6);
    size_t ns;
    float *st = tsr_optim_state(o, &ns);
    assert_int_equal(ns, 2);
    assert_float_equal(st[0], 0.2f, 1e-7);
    assert_float_equal(st[1], 0.004f, 1e-7);
    tsr_optim_destroy(o);
}

static void test_rmsprop(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_OPTIM_RMSPROP);
    c.lr = 0.01;
    float p[1] = {1}, g[1] = {2};
    size_t ns;
    tsr_optim_t *o = make(&c, 1); /* a = 0.04, p -= 0.01 * 2 / 0.2 */
    tsr_optim_step(o, p, g, NULL);
    assert_float_equal(p[0], 0.9f, 1e-6);
    tsr_optim_state(o, &ns);
    assert_int_equal(ns, 1);
    tsr_optim_destroy(o);
    c.centered = 1; /* mean = 0.02: sqrt(0.04 - 0.0004) */
    o = make(&c, 1);
    p[0] = 1;
    tsr_optim_step(o, p, g, NULL);
    assert_float_equal(p[0], 1 - 0.01 * 2 / (sqrt(0.0396) + 1e-8), 1e-6);
    tsr_optim_state(o, &ns);
    assert_int_equal(ns, 2);
    tsr_optim_destroy(o);
    c.centered = 0;
    c.momentum = 0.9;
    c.lr = 0.01;
    o = make(&c, 1);
    p[0] = 1;
    tsr_optim_step(o, p, g, NULL); /* buf = 10 */
    assert_float_equal(p[0], 0.9f, 1e-6);
    tsr_optim_step(o, p, g, NULL); /* a = 0.0796, buf = 9 + 2 / sqrt(a) */
    assert_float_equal(p[0], 0.9 - 0.01 * (9 + 2 / (sqrt(0.0796) + 1e-8)), 1e-5);
    tsr_optim_state(o, &ns);
    assert_int_equal(ns, 2);
    tsr_optim_destroy(o);
}

/* Two tensors: weights [3, 4] and an excluded bias [1]. */
static const tsr_optim_segment_t two[2] = {{2, 1, 1}, {0, 2, 0}};

static void test_lars(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_OPTIM_LARS);
    c.lr = 1;
    c.momentum = 0.9;
    c.weight_decay = 0.1;
    tsr_optim_t *o = make(&c, 3);
    assert_int_equal(tsr_optim_set_segments(o, two, 2), TSR_OK);
    float p[3] = {3, 4, 1}, g[3] = {0.6f, 0.8f, 0.5f};
    /* trust = 0.001 * 5 / (1 + 0.1 * 5); d = (g + 0.1 p) trust = [0.003, 0.004] */
    tsr_optim_step(o, p, g, NULL);
    assert_float_equal(p[0], 2.997f, 1e-6);
    assert_float_equal(p[1], 3.996f, 1e-6);
    assert_float_equal(p[2], 0.5f, 1e-6); /* excluded: plain SGD, no decay */
    double pn = hypot(2.997, 3.996), tr = 0.001 * pn / (1 + 0.1 * pn);
    tsr_optim_step(o, p, g, NULL); /* buf = 0.9 buf + d */
    assert_float_equal(p[0], 2.997 - (0.9 * 0.003 + (0.6 + 0.1 * 2.997) * tr), 1e-6);
    assert_float_equal(p[1], 3.996 - (0.9 * 0.004 + (0.8 + 0.1 * 3.996) * tr), 1e-6);
    assert_float_equal(p[2], 0.5 - (0.9 * 0.5 + 0.5), 1e-6);
    tsr_optim_destroy(o);
}

static void test_lamb(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_OPTIM_LAMB);
    c.weight_decay = 0.1;
    c.eps = 1e-6;
    tsr_optim_t *o = make(&c, 3);
    assert_int_equal(tsr_optim_set_segments(o, two, 2), TSR_OK);
    float p[3] = {3, 4, 1}, g[3] = {1, 1, 2};
    /* Step 1: m^/(sqrt(v^) + eps) = sign(g); u = [1.3, 1.4]; ratio 5 / ||u|| */
    tsr_optim_step(o, p, g, NULL);
    double r = 5 / sqrt(1.3 * 1.3 + 1.4 * 1.4);
    assert_float_equal(p[0], 3 - 0.1 * r * 1.3, 1e-5);
    assert_float_equal(p[1], 4 - 0.1 * r * 1.4, 1e-5);
    assert_float_equal(p[2], 0.9f, 1e-6); /* excluded: ratio 1, no decay */
    size_t ns;
    tsr_optim_state(o, &ns);
    assert_int_equal(ns, 6);
    tsr_optim_destroy(o);
}

static void test_segments_must_tile(void **state)
{
    (void)state;
    tsr_optim_config_t c = base(TSR_OPTIM_LARS);
    tsr_optim_t *o = make(&c, 4);
    tsr_optim_segment_t gap[2] = {{0, 1, 0}, {2, 2, 0}}, over[2] = {{0, 3, 0}, {2, 2, 0}}, short1[1] = {{0, 3, 0}};
    assert_int_equal(tsr_optim_set_segments(o, gap, 2), TSR_EINVAL);
    assert_int_equal(tsr_optim_set_segments(o, over, 2), TSR_EINVAL);
    assert_int_equal(tsr_optim_set_segments(o, short1, 1), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "3 of 4"));
    tsr_optim_destroy(o);
}

/* Every new rule notes NaN gradients through the exponent-bit check. */
static void test_nonfinite_noted(void **state)
{
    (void)state;
    tsr_optim_kind_t kinds[] = {TSR_OPTIM_ADAM, TSR_OPTIM_LION, TSR_OPTIM_LAMB, TSR_OPTIM_LARS, TSR_OPTIM_RMSPROP};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        tsr_optim_config_t c = base(kinds[k]);
        c.momentum = 0.9;
        tsr_optim_t *o = make(&c, 3);
        float p[3] = {1, 2, 3}, g[3] = {0.1f, 0.2f, 0.3f};
        tsr_optim_step(o, p, g, NULL);
        assert_int_equal(tsr_optim_nonfinite_step(o), 0);
        g[1] = NAN;
        tsr_optim_step(o, p, g, NULL);
        assert_int_equal(tsr_optim_nonfinite_step(o), 2);
        tsr_optim_destroy(o);
    }
}

/* The check folds one word per lane of 16 and the scalar tail: a bad
 * value in any lane, block or the tail is noted, by every rule, and
 * on_nonfinite = skip finds it there too (leaving the weights alone). */
static void test_nonfinite_every_lane(void **state)
{
    (void)state;
    enum { N = 37 };
    const size_t at[] = {0, 5, 15, 16, 27, 31, 32, 36};
    tsr_optim_kind_t kinds[] = {TSR_OPTIM_SGD,  TSR_OPTIM_ADAMW, TSR_OPTIM_ADAM,   TSR_OPTIM_LION,
                                TSR_OPTIM_LAMB, TSR_OPTIM_LARS,  TSR_OPTIM_RMSPROP};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (size_t a = 0; a < sizeof at / sizeof *at; a++)
            for (int skip = 0; skip < 2; skip++) {
                tsr_optim_config_t c = base(kinds[k]);
                c.momentum = kinds[k] == TSR_OPTIM_SGD && a % 2 ? 0.0 : 0.9;
                c.on_nonfinite = skip ? TSR_NONFINITE_SKIP : c.on_nonfinite;
                tsr_optim_t *o = make(&c, N);
                float p[N], g[N], was[N];
                for (int i = 0; i < N; i++)
                    p[i] = 1.0f + 0.01f * (float)i, g[i] = 0.1f - 0.003f * (float)i;
                assert_int_equal(tsr_optim_step(o, p, g, NULL), TSR_OK);
                assert_int_equal(tsr_optim_nonfinite_step(o), 0);
                g[at[a]] = a % 2 ? INFINITY : NAN;
                memcpy(was, p, sizeof p);
                assert_int_equal(tsr_optim_step(o, p, g, NULL), TSR_OK);
                if (skip) {
                    assert_int_equal(tsr_optim_skipped_steps(o), 1);
                    assert_memory_equal(p, was, sizeof p);
                } else if (tsr_optim_nonfinite_step(o) != 2) {
                    fail_msg("%s: a %s gradient at %zu of %d not noted", tsr_optim_kind_name(kinds[k]),
                             a % 2 ? "infinite" : "NaN", at[a], N);
                }
                tsr_optim_destroy(o);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lion),
        cmocka_unit_test(test_adam_coupled),
        cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_lars),
        cmocka_unit_test(test_lamb),
        cmocka_unit_test(test_segments_must_tile),
        cmocka_unit_test(test_nonfinite_noted),
        cmocka_unit_test(test_nonfinite_every_lane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
