/* SPDX-License-Identifier: BSD-3-Clause */
/* Gradient accumulation's tree (train/accum.c) against the tree written
 * out: k micro-batches' gradients summed as ((g0 + g1) + (g2 + g3)) + ...,
 * bit for bit, whether the earlier ones are held flat (all k - 1 apart,
 * summed block by block in the last backward) or as a binary counter
 * (k > 18), fed by copies or by backward writing into the slots, and
 * finished in pieces from the end as backward hands layers over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tessera/error.h"
#include "train/accum.h"

#include <stdlib.h>
#include <string.h>

#define N 5000 /* not a multiple of the flat sum's block */

/* Values of very different sizes, so that any other order rounds differently. */
static float **leaves(size_t k)
{
    float **g = malloc(k * sizeof *g);
    unsigned s = 12345;
    for (size_t j = 0; j < k; j++) {
        g[j] = malloc(N * sizeof(float));
        for (size_t i = 0; i < N; i++) {
            s = s * 1103515245u + 12345u;
            float v = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
            g[j][i] = v * ((s >> 4) % 3 == 0 ? 1e7f : (s >> 4) % 3 == 1 ? 1.0f : 1e-5f);
        }
    }
    return g;
}

static void free_leaves(float **g, size_t k)
{
    for (size_t j = 0; j < k; j++)
        free(g[j]);
    free(g);
}

/* The tree of the binary counter over g[lo, hi), element i. */
static float tree(float **g, size_t lo, size_t hi, size_t i)
{
    if (hi - lo == 1)
        return g[lo][i];
    size_t half = 1;
    while (half * 2 < hi - lo)
        half *= 2;
    return tree(g, lo, lo + half, i) + tree(g, lo + half, hi, i);
}

/* Accumulate k leaves through tsr_accum; slots: backward writes into the
 * slot where there is one. The result lands in a copy of the last leaf. */
static void run(float **g, size_t k, int slots, float *out)
{
    tsr_accum_t a;
    assert_int_equal(tsr_accum_init(&a, NULL, N, k, 1, 0), TSR_OK);
    assert_int_equal(a.flat, k - 1 <= TSR_ACCUM_LEVELS);
    for (int step = 0; step < 2; step++) { /* the buffers are reused step after step */
        tsr_accum_begin(&a);
        for (size_t j = 0; j + 1 < k; j++) {
            float *slot = slots ? tsr_accum_slot(&a) : NULL;
            if (slot) {
                memcpy(slot, g[j], N * sizeof(float));
                tsr_accum_push_slot(&a);
            } else {
                assert_int_equal(tsr_accum_push(&a, g[j]), TSR_OK);
            }
        }
        memcpy(out, g[k - 1], N * sizeof(float));
        /* Backward's layers from the last: the pieces above each offset. */
        size_t offs[] = {N - 10, N - 10, N - 3000, 1500, 0};
        for (size_t o = 0; o < sizeof offs / sizeof *offs; o++)
            assert_int_equal(tsr_accum_finish_from(&a, out, offs[o]), TSR_OK);
    }
    tsr_accum_free(&a);
}

static void check(size_t k)
{
    float **g = leaves(k);
    float *want = malloc(N * sizeof(float)), *got = malloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++)
        want[i] = tree(g, 0, k, i);
    for (int slots = 0; slots < 2; slots++) {
        run(g, k, slots, got);
        assert_memory_equal(got, want, N * sizeof(float));
    }
    free(want);
    free(got);
    free_leaves(g, k);
}

static void test_tree_k2(void **state) { (void)state, check(2); }
static void test_tree_k3(void **state) { (void)state, check(3); }
static void test_tree_k4(void **state) { (void)state, check(4); }
static void test_tree_k6(void **state) { (void)state, check(6); }
static void test_tree_k8(void **state) { (void)state, check(8); }
static void test_tree_k16(void **state) { (void)state, check(16); }
static void test_tree_k32_counter(void **state) { (void)state, check(32); }

/* The data tells orders apart: left to right is not the tree. */
static void test_order_matters(void **state)
{
    (void)state;
    float **g = leaves(4);
    int differ = 0;
    for (size_t i = 0; i < N; i++)
        differ += ((g[0][i] + g[1][i]) + g[2][i]) + g[3][i] != tree(g, 0, 4, i);
    assert_true(differ > 0);
    free_leaves(g, 4);
}

/* Sequential accumulation: g0 + g1 + ... left to right. */
static void test_sequential(void **state)
{
    (void)state;
    float **g = leaves(4);
    float out[N];
    tsr_accum_t a;
    assert_int_equal(tsr_accum_init(&a, NULL, N, 4, 0, 0), TSR_OK);
    assert_int_equal(a.flat, 0);
    assert_null(tsr_accum_slot(&a));
    tsr_accum_begin(&a);
    for (int j = 0; j < 3; j++)
        assert_int_equal(tsr_accum_push(&a, g[j]), TSR_OK);
    memcpy(out, g[3], sizeof out);
    assert_int_equal(tsr_accum_finish_from(&a, out, 0), TSR_OK);
    for (size_t i = 0; i < N; i++)
        assert_true(out[i] == g[3][i] + ((g[0][i] + g[1][i]) + g[2][i]));
    tsr_accum_free(&a);
    free_leaves(g, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_k2),          cmocka_unit_test(test_tree_k3),
        cmocka_unit_test(test_tree_k4),          cmocka_unit_test(test_tree_k6),
        cmocka_unit_test(test_tree_k8),          cmocka_unit_test(test_tree_k16),
        cmocka_unit_test(test_tree_k32_counter), cmocka_unit_test(test_order_matters),
        cmocka_unit_test(test_sequential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
