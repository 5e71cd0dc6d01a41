/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the data module: opening dataset files (float32, uint8
 * with a scale, float targets, a test split; in memory and streamed), the
 * files it refuses and the values validation refuses (tables). The loader
 * is tested in test_data_loader.c, the converters in test_data_convert.c. */
#include "data_test_util.h"

static void test_open_float(void **state)
{
    (void)state;
    const char *p = tpath("float.h5");
    make_float(p, 10, 3, 4);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 1 : 0, &ds), TSR_OK);
        assert_int_equal(tsr_dataset_is_streaming(ds), mode);
        assert_int_equal(tsr_dataset_rows(ds), 10);
        assert_int_equal(tsr_dataset_dim(ds), 3);
        assert_int_equal(tsr_dataset_is_labels(ds), 1);
        assert_int_equal(tsr_dataset_target_dim(ds), 1);
        assert_string_equal(tsr_dataset_dtype(ds), "float32");
        assert_int_equal(tsr_dataset_validate(ds, 0), TSR_OK);
        assert_int_equal(tsr_dataset_classes(ds), 4);
        assert_int_equal(tsr_dataset_validate(ds, 4), TSR_OK);
        float x[12];
        int32_t y[4];
        assert_int_equal(tsr_dataset_read(ds, 2, 4, x, y, NULL), TSR_OK);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(y[i], (2 + i) % 4);
            for (int j = 0; j < 3; j++)
                assert_float_equal(x[i * 3 + j], (float)(2 + i) + (float)j / 100.0f, 1e-6);
        }
        /* Gather in arbitrary order. */
        uint32_t rows[4] = {9, 0, 5, 4};
        assert_int_equal(tsr_dataset_gather(ds, rows, 4, x, y, NULL, NULL), TSR_OK);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(y[i], (int)rows[i] % 4);
            assert_float_equal(x[i * 3 + 1], (float)rows[i] + 0.01f, 1e-6);
        }
        assert_int_equal(tsr_dataset_read(ds, 8, 3, x, y, NULL), TSR_EINVAL);
        uint32_t bad[2] = {3, 10};
        assert_int_equal(tsr_dataset_gather(ds, bad, 2, x, y, NULL, NULL), TSR_EINVAL);
        tsr_dataset_destroy(ds);
    }
    tsr_dataset_destroy(NULL);
}

static void test_open_uint8(void **state)
{
    (void)state;
    const char *p = tpath("u8.h5");
    uint8_t x[6 * 4];
    int32_t y[6];
    for (int i = 0; i < 24; i++)
        x[i] = (uint8_t)(i * 10);
    for (int i = 0; i < 6; i++)
        y[i] = i % 2;
    hid_t f = h5_new(p);
    h5_put(f, "X", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, 6, 4, x);
    h5_attr_float(f, "X", "scale", 0.5f);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 6, 0, y);
    h5_put(f, "X_test", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, 2, 4, x);
    h5_attr_float(f, "X_test", "scale", 0.25f);
    h5_put(f, "y_test", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 2, 0, y);
    h5_done(f);
    assert_int_equal(tsr_dataset_has_test(p), 1);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 16 : 0, &ds), TSR_OK);
        assert_string_equal(tsr_dataset_dtype(ds), "uint8");
        assert_float_equal(tsr_dataset_scale(ds), 0.5, 1e-7);
        float xf[24];
        int32_t yy[6];
        assert_int_equal(tsr_dataset_read(ds, 0, 6, xf, yy, NULL), TSR_OK);
        for (int i = 0; i < 24; i++)
            assert_float_equal(xf[i], (float)(i * 10) * 0.5f, 1e-6);
        uint32_t rows[3] = {5, 1, 3};
        assert_int_equal(tsr_dataset_gather(ds, rows, 3, xf, yy, NULL, NULL), TSR_OK);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_float_equal(xf[i * 4 + j], (float)((rows[i] * 4 + (uint32_t)j) * 10) * 0.5f, 1e-6);
        assert_int_equal(tsr_dataset_validate(ds, 2), TSR_OK);
        /* The loader's streamed and in-memory batches agree for uint8. */
        tsr_loader_t *ld = NULL;
        assert_int_equal(tsr_loader_create(ds, 0, 1, 3, 5, mode, &ld), TSR_OK);
        tsr_batch_t b;
        assert_int_equal(tsr_loader_next(ld, &b), TSR_OK);
        uint32_t perm[6];
        expected_perm(perm, 6, 5, 0);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_float_equal(b.x[i * 4 + j], (float)((perm[i] * 4 + (uint32_t)j) * 10) * 0.5f, 1e-6);
        tsr_loader_destroy(ld);
        tsr_dataset_destroy(ds);

        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TEST, mode ? 16 : 0, &ds), TSR_OK);
        assert_int_equal(tsr_dataset_rows(ds), 2);
        assert_int_equal(tsr_dataset_read(ds, 1, 1, xf, NULL, NULL), TSR_OK);
        assert_float_equal(xf[0], 40 * 0.25f, 1e-6);
        tsr_dataset_destroy(ds);
    }
}

static void test_float_targets(void **state)
{
    (void)state;
    const char *p = tpath("targets.h5");
    float x[5 * 2], t[5 * 3];
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    for (int i = 0; i < 15; i++)
        t[i] = (float)i * 0.5f;
    hid_t f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 5, 2, x);
    h5_put(f, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 5, 3, t);
    h5_done(f);
    assert_int_equal(tsr_dataset_has_test(p), 0);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 1 : 0, &ds), TSR_OK);
        assert_int_equal(tsr_dataset_is_labels(ds), 0);
        assert_int_equal(tsr_dataset_target_dim(ds), 3);
        assert_int_equal(tsr_dataset_validate(ds, 0), TSR_OK);
        float tt[6];
        int32_t junk[2] = {-7, -7};
        assert_int_equal(tsr_dataset_read(ds, 3, 2, NULL, junk, tt), TSR_OK);
        assert_int_equal(junk[0], -7); /* labels ignored for targets */
        for (int i = 0; i < 6; i++)
            assert_float_equal(tt[i], (float)(9 + i) * 0.5f, 1e-6);
        uint32_t rows[2] = {4, 0};
        assert_int_equal(tsr_dataset_gather(ds, rows, 2, NULL, NULL, tt, NULL), TSR_OK);
        assert_float_equal(tt[0], 6.0f, 1e-6);
        assert_float_equal(tt[3], 0.0f, 1e-6);
        tsr_dataset_destroy(ds);
    }
}

/* ---- files the dataset refuses: tables ---- */

/* One dataset of a test file: its type, rank and dimensions (none: not
 * written; a group: a group where the dataset should be). */
typedef enum { NONE, F32, F64, I32, U8, GROUP } kind_t;
typedef struct {
    kind_t kind;
    int rank;
    hsize_t d0, d1;
} dset_t;

static void put_dset(hid_t f, const char *name, const dset_t *s)
{
    static const unsigned char zeros[8 * 32];
    switch (s->kind) {
    case NONE: break;
    case F32: h5_put(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, s->rank, s->d0, s->d1, zeros); break;
    case F64: h5_put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->rank, s->d0, s->d1, zeros); break;
    case I32: h5_put(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, s->rank, s->d0, s->d1, zeros); break;
    case U8: h5_put(f, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, s->rank, s->d0, s->d1, zeros); break;
    case GROUP:
        tsr_h5_lock();
        H5Gclose(H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        tsr_h5_unlock();
        break;
    }
}

/* Each file, opened for split, gives TSR_EDATA with a message naming the
 * file and each of what[]. */
static const struct open_case {
    const char *file;
    dset_t x, y;
    tsr_split_t split;
    const char *what[2];
} open_cases[] = {
    {"nox.h5", {NONE, 0, 0, 0}, {I32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/X", "expected"}},
    {"noy.h5", {F32, 2, 10, 2}, {NONE, 0, 0, 0}, TSR_SPLIT_TRAIN, {"/y", "expected"}},
    {"noy.h5", {F32, 2, 10, 2}, {NONE, 0, 0, 0}, TSR_SPLIT_TEST, {"/X_test", "no test split"}},
    {"xrank1.h5", {F32, 1, 10, 0}, {I32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/X has rank 1", "2-D"}},
    {"xint.h5", {I32, 2, 10, 2}, {I32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/X has type int32", "float32 or uint8"}},
    {"xf64.h5", {F64, 2, 10, 2}, {I32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/X has type float64"}},
    {"noscale.h5", {U8, 2, 10, 2}, {I32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/X", "\"scale\""}},
    {"y2dint.h5", {F32, 2, 10, 2}, {I32, 2, 10, 1}, TSR_SPLIT_TRAIN, {"/y is int32 with rank 2", "expected"}},
    {"y1dfloat.h5", {F32, 2, 10, 2}, {F32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/y is float32 with rank 1"}},
    {"ymismatch.h5",
     {F32, 2, 10, 2},
     {I32, 1, 9, 0},
     TSR_SPLIT_TRAIN,
     {"/y has 9 rows but /X has 10; expected the same number"}},
    {"zero.h5", {F32, 2, 0, 2}, {I32, 1, 0, 0}, TSR_SPLIT_TRAIN, {"/X has 0 rows"}},
    {"group.h5", {GROUP, 0, 0, 0}, {I32, 1, 10, 0}, TSR_SPLIT_TRAIN, {"/X"}},
};

/* Opens p and expects code with a message naming p and each of what[]. */
static void expect_open_fail(const char *p, tsr_split_t split, int code, const char *const what[2])
{
    tsr_dataset_t *ds = (tsr_dataset_t *)(uintptr_t)1;
    tsr_error_clear();
    int rc = tsr_dataset_open(p, split, 0, &ds);
    if (rc != code)
        fail_msg("%s: expected code %d, got %d (%s)", p, code, rc, tsr_last_error());
    assert_null(ds);
    assert_msg_has(p);
    for (int w = 0; w < 2 && what[w]; w++)
        assert_msg_has(what[w]);
}

static void test_open_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof open_cases / sizeof open_cases[0]; i++) {
        const struct open_case *c = &open_cases[i];
        const char *p = tpath(c->file);
        hid_t f = h5_new(p);
        put_dset(f, "X", &c->x);
        put_dset(f, "y", &c->y);
        h5_done(f);
        expect_open_fail(p, c->split, TSR_EDATA, c->what);
    }
    assert_int_equal(tsr_dataset_has_test(tpath("noy.h5")), 0);
    expect_open_fail(tpath("missing.h5"), TSR_SPLIT_TRAIN, TSR_EDATA, (const char *const[2]){"no such file"});
    const char *p = tpath("text.h5");
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("this is not hdf5\n", fp);
    fclose(fp);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, (const char *const[2]){"not an HDF5 file"});

    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(NULL, TSR_SPLIT_TRAIN, 0, &ds), TSR_EINVAL);
    assert_int_equal(tsr_dataset_open(tpath("float.h5"), TSR_SPLIT_TRAIN, 0, NULL), TSR_EINVAL);
}

/* Values validation refuses: X[10,3] = 0..29 with labels i % 3 or float
 * targets [10,2] of 0, one value made bad; validated (in memory and
 * streamed) against classes, the message names the file and what[]. With
 * classes_seen > 0, validating against 0 classes passes and counts them. */
static const struct bad_value {
    const char *file;
    int targets;        /* y is float targets, not labels */
    int in_x, row, col; /* where: X (in_x) or y */
    float value;
    int classes, classes_seen;
    const char *what[3];
} bad_values[] = {
    {"nan.h5", 0, 1, 7, 2, NAN, 0, 0, {"/X row 7, column 2 is NaN"}},
    {"inf.h5", 1, 0, 4, 1, -INFINITY, 0, 0, {"/y row 4, column 1 is -Inf"}},
    {"labels.h5", 0, 0, 6, 0, 5, 3, 6, {"/y row 6", "label 5", "0..2"}},
    {"neg.h5", 0, 0, 8, 0, -1, 0, 0, {"/y row 8", "label -1"}},
};

static void test_validate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        const struct bad_value *c = &bad_values[i];
        const char *p = tpath(c->file);
        float x[10 * 3], t[10 * 2] = {0};
        int32_t y[10];
        for (int k = 0; k < 30; k++)
            x[k] = (float)k;
        for (int k = 0; k < 10; k++)
            y[k] = k % 3;
        if (c->in_x)
            x[c->row * 3 + c->col] = c->value;
        else if (c->targets)
            t[c->row * 2 + c->col] = c->value;
        else
            y[c->row] = (int32_t)c->value;
        hid_t f = h5_new(p);
        h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 3, x);
        if (c->targets)
            h5_put(f, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 2, t);
        else
            h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
        h5_done(f);
        for (int mode = 0; mode < 2; mode++) {
            tsr_dataset_t *ds = NULL;
            assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 1 : 0, &ds), TSR_OK);
            assert_int_equal(tsr_dataset_validate(ds, c->classes), TSR_EDATA);
            assert_msg_has(p);
            for (int w = 0; w < 3 && c->what[w]; w++)
                assert_msg_has(c->what[w]);
            if (c->classes_seen) {
                assert_int_equal(tsr_dataset_validate(ds, 0), TSR_OK);
                assert_int_equal(tsr_dataset_classes(ds), c->classes_seen);
            }
            tsr_dataset_destroy(ds);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_float),  cmocka_unit_test(test_open_uint8), cmocka_unit_test(test_float_targets),
        cmocka_unit_test(test_open_errors), cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
