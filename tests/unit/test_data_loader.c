/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the data module's loader: every rank's slice of each
 * epoch's permutation, determinism with and without prefetch and
 * streaming, seek, and the errors and destroy paths. */
#include "data_test_util.h"

/* Rows the loader gave: x[i*d] is the row index (make_float). */
static void batch_rows(const tsr_batch_t *b, size_t d, uint32_t *rows)
{
    for (size_t i = 0; i < b->rows; i++) {
        rows[i] = (uint32_t)lrintf(b->x[i * d]);
        assert_float_equal(b->x[i * d + 1], (float)rows[i] + 0.01f, 1e-4);
    }
}

static void test_loader_slices(void **state)
{
    (void)state;
    const char *p = tpath("loader.h5");
    enum { N = 103, D = 2, B = 5, W = 3 };
    make_float(p, N, D, 7);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 64 : 0, &ds), TSR_OK);
        tsr_loader_t *ld[W];
        for (int r = 0; r < W; r++)
            assert_int_equal(tsr_loader_create(ds, r, W, B, 42, r == 1, &ld[r]), TSR_OK);
        size_t steps = tsr_loader_steps_per_epoch(ld[0]);
        assert_int_equal(steps, N / (B * W));
        uint32_t perm[N];
        uint32_t first_epoch[N];
        for (uint64_t e = 0; e < 3; e++) {
            expected_perm(perm, N, 42, e);
            if (e == 0)
                memcpy(first_epoch, perm, sizeof perm);
            char seen[N] = {0};
            for (size_t s = 0; s < steps; s++) {
                for (int r = 0; r < W; r++) {
                    tsr_batch_t b;
                    assert_int_equal(tsr_loader_next(ld[r], &b), TSR_OK);
                    assert_int_equal(b.rows, B);
                    assert_int_equal(b.epoch, e);
                    assert_int_equal(b.step, s);
                    assert_non_null(b.labels);
                    assert_null(b.targets);
                    uint32_t rows[B];
                    batch_rows(&b, D, rows);
                    for (int i = 0; i < B; i++) {
                        /* Exactly the header's slice of the permutation. */
                        assert_int_equal(rows[i], perm[s * B * W + (size_t)r * B + (size_t)i]);
                        assert_int_equal(b.labels[i], (int32_t)(rows[i] % 7));
                        /* Disjoint across ranks and steps within an epoch. */
                        assert_int_equal(seen[rows[i]], 0);
                        seen[rows[i]] = 1;
                    }
                }
            }
            size_t covered = 0;
            for (int i = 0; i < N; i++)
                covered += (size_t)seen[i];
            assert_int_equal(covered, steps * B * W);
        }
        expected_perm(perm, N, 42, 1);
        assert_memory_not_equal(perm, first_epoch, sizeof perm);
        for (int r = 0; r < W; r++)
            tsr_loader_destroy(ld[r]);
        tsr_dataset_destroy(ds);
    }
}

/* Two loaders give the same batches: same seed (and prefetch or not). */
static void compare_loaders(tsr_loader_t *a, tsr_loader_t *b, size_t n, size_t d)
{
    for (size_t k = 0; k < n; k++) {
        tsr_batch_t ba, bb;
        assert_int_equal(tsr_loader_next(a, &ba), TSR_OK);
        assert_int_equal(tsr_loader_next(b, &bb), TSR_OK);
        assert_int_equal(ba.rows, bb.rows);
        assert_int_equal(ba.epoch, bb.epoch);
        assert_int_equal(ba.step, bb.step);
        assert_memory_equal(ba.x, bb.x, ba.rows * d * sizeof(float));
        assert_memory_equal(ba.labels, bb.labels, ba.rows * sizeof(int32_t));
    }
}

static void test_loader_determinism_prefetch(void **state)
{
    (void)state;
    const char *p = tpath("det.h5");
    make_float(p, 200, 4, 10);
    tsr_dataset_t *mem = NULL, *str = NULL;
    assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, 0, &mem), TSR_OK);
    assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, 100, &str), TSR_OK);
    assert_int_equal(tsr_dataset_is_streaming(str), 1);
    for (int pa = 0; pa < 2; pa++) {
        for (int pb = 0; pb < 2; pb++) {
            tsr_loader_t *a = NULL, *b = NULL;
            assert_int_equal(tsr_loader_create(mem, 1, 2, 16, 7, pa, &a), TSR_OK);
            assert_int_equal(tsr_loader_create(str, 1, 2, 16, 7, pb, &b), TSR_OK);
            compare_loaders(a, b, 3 * tsr_loader_steps_per_epoch(a) + 2, 4);
            tsr_loader_destroy(a);
            tsr_loader_destroy(b);
        }
    }
    /* Batches bigger than one streamed read group (several unions). */
    {
        tsr_loader_t *a = NULL, *b = NULL;
        assert_int_equal(tsr_loader_create(mem, 0, 1, 150, 11, 0, &a), TSR_OK);
        assert_int_equal(tsr_loader_create(str, 0, 1, 150, 11, 1, &b), TSR_OK);
        compare_loaders(a, b, 4, 4);
        tsr_loader_destroy(a);
        tsr_loader_destroy(b);
    }
    /* A different seed gives different batches. */
    tsr_loader_t *a = NULL, *b = NULL;
    assert_int_equal(tsr_loader_create(mem, 0, 1, 16, 7, 1, &a), TSR_OK);
    assert_int_equal(tsr_loader_create(mem, 0, 1, 16, 8, 1, &b), TSR_OK);
    tsr_batch_t ba, bb;
    assert_int_equal(tsr_loader_next(a, &ba), TSR_OK);
    assert_int_equal(tsr_loader_next(b, &bb), TSR_OK);
    assert_memory_not_equal(ba.labels, bb.labels, 16 * sizeof(int32_t));
    tsr_loader_destroy(a);
    tsr_loader_destroy(b);
    tsr_dataset_destroy(mem);
    tsr_dataset_destroy(str);
}

static void test_loader_seek(void **state)
{
    (void)state;
    const char *p = tpath("seek.h5");
    make_float(p, 60, 2, 5);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    for (int pf = 0; pf < 2; pf++) {
        tsr_loader_t *ref = NULL, *ld = NULL;
        assert_int_equal(tsr_loader_create(ds, 0, 2, 4, 3, 0, &ref), TSR_OK);
        assert_int_equal(tsr_loader_create(ds, 0, 2, 4, 3, pf, &ld), TSR_OK);
        size_t steps = tsr_loader_steps_per_epoch(ref);
        assert_int_equal(steps, 7);
        /* Reference: batches of epochs 0..2 in order. */
        enum { TOTAL = 21 };
        uint32_t want[TOTAL][4];
        for (int k = 0; k < TOTAL; k++) {
            tsr_batch_t b;
            assert_int_equal(tsr_loader_next(ref, &b), TSR_OK);
            batch_rows(&b, 2, want[k]);
        }
        /* Consume a few, then jump about. */
        tsr_batch_t b;
        uint32_t got[4];
        for (int k = 0; k < 3; k++)
            assert_int_equal(tsr_loader_next(ld, &b), TSR_OK);
        const uint64_t targets[][2] = {{2, 3}, {0, 0}, {1, 6}, {1, 6}, {0, 5}};
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            assert_int_equal(tsr_loader_seek(ld, targets[t][0], targets[t][1]), TSR_OK);
            for (int k = 0; k < 3; k++) {
                size_t at = (size_t)(targets[t][0] * steps + targets[t][1]) + (size_t)k;
                if (at >= TOTAL)
                    break;
                assert_int_equal(tsr_loader_next(ld, &b), TSR_OK);
                assert_int_equal(b.epoch, at / steps);
                assert_int_equal(b.step, at % steps);
                batch_rows(&b, 2, got);
                assert_memory_equal(got, want[at], sizeof got);
            }
        }
        assert_int_equal(tsr_loader_seek(ld, 0, steps), TSR_EINVAL);
        tsr_loader_destroy(ref);
        tsr_loader_destroy(ld);
    }
    tsr_dataset_destroy(ds);
}

static void test_loader_errors_and_destroy(void **state)
{
    (void)state;
    const char *p = tpath("small.h5");
    make_float(p, 10, 2, 2);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    tsr_loader_t *ld = (tsr_loader_t *)(uintptr_t)1;
    assert_int_equal(tsr_loader_create(ds, 0, 3, 4, 0, 1, &ld), TSR_EINVAL);
    assert_null(ld);
    assert_msg_has("batch size 4");
    assert_msg_has("world size 3");
    assert_msg_has("10 rows");
    assert_int_equal(tsr_loader_create(ds, 3, 3, 1, 0, 1, &ld), TSR_EINVAL);
    assert_int_equal(tsr_loader_create(ds, 0, 1, 0, 0, 1, &ld), TSR_EINVAL);
    assert_int_equal(tsr_loader_create(NULL, 0, 1, 1, 0, 1, &ld), TSR_EINVAL);
    /* Exactly all rows in one global batch is fine. */
    assert_int_equal(tsr_loader_create(ds, 1, 2, 5, 0, 1, &ld), TSR_OK);
    assert_int_equal(tsr_loader_steps_per_epoch(ld), 1);
    tsr_loader_destroy(ld);
    /* Destroy right after create, and mid-epoch, with the thread busy. */
    for (int k = 0; k < 20; k++) {
        assert_int_equal(tsr_loader_create(ds, 0, 1, 2, (uint64_t)k, 1, &ld), TSR_OK);
        tsr_batch_t b;
        for (int j = 0; j < k % 4; j++)
            assert_int_equal(tsr_loader_next(ld, &b), TSR_OK);
        tsr_loader_destroy(ld);
    }
    tsr_loader_destroy(NULL);
    tsr_dataset_destroy(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_slices),
        cmocka_unit_test(test_loader_determinism_prefetch),
        cmocka_unit_test(test_loader_seek),
        cmocka_unit_test(test_loader_errors_and_destroy),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
