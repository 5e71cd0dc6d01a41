/* Unit tests of the data module: opening and checking dataset files,
 * validation, the loader (determinism, rank slices, prefetch, seek), and
 * the CSV and IDX converters. Files are written with the HDF5 API into
 * $TSR_TEST_TMP/data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/h5lock.h"
#include "tessera/data.h"
#include "tessera/error.h"
#include "tessera/rng.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[1024];

static void expected_perm(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch);

static const char *tpath(const char *name)
{
    /* A ring of buffers, so a few paths can be live at once in one call. */
    static char bufs[64][1200];
    static int next;
    char *b = bufs[next++ % 64];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static int setup_dir(void **state)
{
    (void)state;
    const char *base = getenv("TSR_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(tmpdir, sizeof tmpdir, "%s/data.%ld", base, (long)getpid());
    if (mkdir(tmpdir, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                char p[2400];
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* ---- writing test files with the raw HDF5 API, under the lock ---- */

static hid_t h5_new(const char *path)
{
    tsr_h5_lock();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    tsr_h5_unlock();
    assert_true(f >= 0);
    return f;
}

static void h5_put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank, hsize_t d0, hsize_t d1,
                   const void *data)
{
    hsize_t dims[2] = {d0, d1};
    tsr_h5_lock();
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = d0 > 0 && data ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
    H5Dclose(d);
    H5Sclose(s);
    tsr_h5_unlock();
    assert_true(s >= 0 && d >= 0 && w >= 0);
}

static void h5_attr_float(hid_t f, const char *obj, const char *name, float v)
{
    tsr_h5_lock();
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(f, obj, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = H5Awrite(a, H5T_NATIVE_FLOAT, &v);
    H5Aclose(a);
    H5Sclose(s);
    tsr_h5_unlock();
    assert_true(a >= 0 && w >= 0);
}

static void h5_done(hid_t f)
{
    tsr_h5_lock();
    H5Fclose(f);
    tsr_h5_unlock();
}

/* A float dataset: X[i][j] = i + j/100, y[i] = i % classes. */
static void make_float(const char *path, size_t n, size_t d, int classes)
{
    float *x = malloc(n * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)i + (float)j / 100.0f;
        y[i] = (int32_t)(i % (size_t)classes);
    }
    hid_t f = h5_new(path);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, n, d, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n, 0, y);
    h5_done(f);
    free(x);
    free(y);
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

#define assert_msg_has(s)                                                                                            \
    do {                                                                                                             \
        if (!contains(tsr_last_error(), (s)))                                                                        \
            fail_msg("message \"%s\" lacks \"%s\"", tsr_last_error(), (s));                                          \
    } while (0)

/* ---- opening ---- */

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

/* Opens p and expects code with a message naming p and each of what[]. */
static void expect_open_fail(const char *p, tsr_split_t split, int code, const char *what1, const char *what2)
{
    tsr_dataset_t *ds = (tsr_dataset_t *)(uintptr_t)1;
    tsr_error_clear();
    int rc = tsr_dataset_open(p, split, 0, &ds);
    if (rc != code)
        fail_msg("%s: expected code %d, got %d (%s)", p, code, rc, tsr_last_error());
    assert_null(ds);
    assert_msg_has(p);
    if (what1)
        assert_msg_has(what1);
    if (what2)
        assert_msg_has(what2);
}

static void test_open_errors(void **state)
{
    (void)state;
    float x[20] = {0};
    double xd[20] = {0};
    int32_t y[10] = {0};
    int32_t xi[20] = {0};
    uint8_t xu[20] = {0};

    expect_open_fail(tpath("missing.h5"), TSR_SPLIT_TRAIN, TSR_EDATA, "no such file", NULL);

    const char *p = tpath("text.h5");
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("this is not hdf5\n", fp);
    fclose(fp);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "not an HDF5 file", NULL);

    p = tpath("nox.h5");
    hid_t f = h5_new(p);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X", "expected");

    p = tpath("noy.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 2, x);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/y", "expected");
    expect_open_fail(p, TSR_SPLIT_TEST, TSR_EDATA, "/X_test", "no test split");
    assert_int_equal(tsr_dataset_has_test(p), 0);

    p = tpath("xrank1.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, 10, 0, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X has rank 1", "2-D");

    p = tpath("xint.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, 10, 2, xi);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X has type int32", "float32 or uint8");

    p = tpath("xf64.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, 10, 2, xd);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X has type float64", NULL);

    p = tpath("noscale.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, 10, 2, xu);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X", "\"scale\"");

    p = tpath("y2dint.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 2, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, 10, 1, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/y is int32 with rank 2", "expected");

    p = tpath("y1dfloat.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 2, x);
    h5_put(f, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, 10, 0, x);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/y is float32 with rank 1", NULL);

    p = tpath("ymismatch.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 2, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 9, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/y has 9 rows but /X has 10; expected the same number", NULL);

    p = tpath("zero.h5");
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 0, 2, NULL);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 0, 0, NULL);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X has 0 rows", NULL);

    /* A group where a dataset should be. */
    p = tpath("group.h5");
    f = h5_new(p);
    tsr_h5_lock();
    hid_t g = H5Gcreate2(f, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    tsr_h5_unlock();
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    expect_open_fail(p, TSR_SPLIT_TRAIN, TSR_EDATA, "/X", NULL);

    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(NULL, TSR_SPLIT_TRAIN, 0, &ds), TSR_EINVAL);
    assert_int_equal(tsr_dataset_open(tpath("float.h5"), TSR_SPLIT_TRAIN, 0, NULL), TSR_EINVAL);
}

static void test_validate(void **state)
{
    (void)state;
    const char *p = tpath("nan.h5");
    float x[10 * 3];
    int32_t y[10];
    for (int i = 0; i < 30; i++)
        x[i] = (float)i;
    for (int i = 0; i < 10; i++)
        y[i] = i % 3;
    x[7 * 3 + 2] = NAN;
    hid_t f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 3, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 1 : 0, &ds), TSR_OK);
        assert_int_equal(tsr_dataset_validate(ds, 0), TSR_EDATA);
        assert_msg_has(p);
        assert_msg_has("/X row 7, column 2 is NaN");
        tsr_dataset_destroy(ds);
    }

    /* Inf in float targets. */
    p = tpath("inf.h5");
    x[7 * 3 + 2] = 1;
    float t[10 * 2] = {0};
    t[4 * 2 + 1] = -INFINITY;
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 3, x);
    h5_put(f, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 2, t);
    h5_done(f);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 1 : 0, &ds), TSR_OK);
        assert_int_equal(tsr_dataset_validate(ds, 0), TSR_EDATA);
        assert_msg_has(p);
        assert_msg_has("/y row 4, column 1 is -Inf");
        tsr_dataset_destroy(ds);
    }

    /* Labels out of range. */
    p = tpath("labels.h5");
    y[6] = 5;
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 3, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    for (int mode = 0; mode < 2; mode++) {
        tsr_dataset_t *ds = NULL;
        assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, mode ? 1 : 0, &ds), TSR_OK);
        assert_int_equal(tsr_dataset_validate(ds, 3), TSR_EDATA);
        assert_msg_has(p);
        assert_msg_has("/y row 6");
        assert_msg_has("label 5");
        assert_msg_has("0..2");
        assert_int_equal(tsr_dataset_validate(ds, 0), TSR_OK);
        assert_int_equal(tsr_dataset_classes(ds), 6);
        tsr_dataset_destroy(ds);
    }
    p = tpath("neg.h5");
    y[6] = 0;
    y[8] = -1;
    f = h5_new(p);
    h5_put(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 10, 3, x);
    h5_put(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 10, 0, y);
    h5_done(f);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(p, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_validate(ds, 0), TSR_EDATA);
    assert_msg_has("/y row 8");
    assert_msg_has("label -1");
    tsr_dataset_destroy(ds);
}

/* ---- the loader ---- */

/* Rows the loader gave: x[i*d] is the row index (make_float). */
static void batch_rows(const tsr_batch_t *b, size_t d, uint32_t *rows)
{
    for (size_t i = 0; i < b->rows; i++) {
        rows[i] = (uint32_t)lrintf(b->x[i * d]);
        assert_float_equal(b->x[i * d + 1], (float)rows[i] + 0.01f, 1e-4);
    }
}

static void expected_perm(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    tsr_rng_t r;
    tsr_rng_seed(&r, seed, epoch);
    tsr_rng_shuffle(&r, perm, n);
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

/* ---- converters ---- */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

static void write_bin(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

/* No output and no temporary file left in the directory. */
static void assert_no_output(const char *out)
{
    assert_int_not_equal(access(out, F_OK), 0);
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            fail_msg("temporary file %s left behind", e->d_name);
    closedir(d);
}

static void test_csv(void **state)
{
    (void)state;
    const char *csv = tpath("small.csv");
    const char *out = tpath("small_csv.h5");
    write_text(csv, "f1, f2, label\n"
                    "1.5,2,0\n"
                    "\n"
                    "3,-4e-1,2\r\n"
                    "5,6,1\n"
                    "7,8,1"); /* no final newline */
    assert_int_equal(tsr_data_convert_csv(csv, out, -1, 0, 0), TSR_OK);
    assert_int_equal(tsr_dataset_has_test(out), 0);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), 4);
    assert_int_equal(tsr_dataset_dim(ds), 2);
    assert_int_equal(tsr_dataset_validate(ds, 0), TSR_OK);
    assert_int_equal(tsr_dataset_classes(ds), 3);
    float x[8];
    int32_t y[4];
    assert_int_equal(tsr_dataset_read(ds, 0, 4, x, y, NULL), TSR_OK);
    const float wx[8] = {1.5f, 2, 3, -0.4f, 5, 6, 7, 8};
    const int32_t wy[4] = {0, 2, 1, 1};
    for (int i = 0; i < 8; i++)
        assert_float_equal(x[i], wx[i], 1e-6);
    assert_memory_equal(y, wy, sizeof wy);
    tsr_dataset_destroy(ds);

    /* Label in column 0, scaled features, no header, gzip input. */
    const char *gz = tpath("lab0.csv.gz");
    const char *text = "1,2,4\n0,6,8\n1,10,12\n";
    write_gz(gz, text, strlen(text));
    assert_int_equal(tsr_data_convert_csv_scaled(gz, out, 0, 0, 0, 0.5), TSR_OK);
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), 3);
    assert_int_equal(tsr_dataset_read(ds, 0, 3, x, y, NULL), TSR_OK);
    assert_float_equal(x[0], 1, 1e-6);
    assert_float_equal(x[5], 6, 1e-6);
    assert_int_equal(y[1], 0);
    tsr_dataset_destroy(ds);
    assert_no_output(tpath("nothing.h5"));
}

static void test_csv_split(void **state)
{
    (void)state;
    const char *csv = tpath("split.csv");
    const char *out = tpath("split.h5");
    const char *out2 = tpath("split2.h5");
    char text[4096] = "a,b,c\n";
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        char line[64];
        snprintf(line, sizeof line, "%d,%d,%d\n", i, 100 + i, i % 4);
        strcat(text, line);
    }
    write_text(csv, text);
    assert_int_equal(tsr_data_convert_csv(csv, out, -1, 0.25, 9), TSR_OK);
    assert_int_equal(tsr_data_convert_csv(csv, out2, -1, 0.25, 9), TSR_OK);
    assert_int_equal(tsr_dataset_has_test(out), 1);
    tsr_dataset_t *tr = NULL, *te = NULL, *tr2 = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &tr), TSR_OK);
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TEST, 0, &te), TSR_OK);
    assert_int_equal(tsr_dataset_open(out2, TSR_SPLIT_TRAIN, 0, &tr2), TSR_OK);
    assert_int_equal(tsr_dataset_rows(tr), 15);
    assert_int_equal(tsr_dataset_rows(te), 5);
    float x[N * 2], x2[N * 2];
    int32_t y[N];
    char seen[N] = {0};
    assert_int_equal(tsr_dataset_read(tr, 0, 15, x, y, NULL), TSR_OK);
    assert_int_equal(tsr_dataset_read(te, 0, 5, x + 30, y + 15, NULL), TSR_OK);
    int in_order = 1;
    for (int i = 0; i < N; i++) {
        int r = (int)x[i * 2];
        assert_true(r >= 0 && r < N);
        assert_float_equal(x[i * 2 + 1], (float)(100 + r), 1e-6);
        assert_int_equal(y[i], r % 4);
        assert_int_equal(seen[r], 0);
        seen[r] = 1;
        in_order &= r == i;
    }
    assert_false(in_order); /* shuffled */
    /* Same seed, same split. */
    assert_int_equal(tsr_dataset_read(tr2, 0, 15, x2, NULL, NULL), TSR_OK);
    assert_memory_equal(x, x2, 15 * 2 * sizeof(float));
    tsr_dataset_destroy(tr);
    tsr_dataset_destroy(te);
    tsr_dataset_destroy(tr2);

    assert_int_equal(tsr_data_convert_csv(csv, tpath("bad.h5"), -1, 1.0, 0), TSR_EINVAL);
    assert_int_equal(tsr_data_convert_csv(csv, tpath("bad.h5"), 3, 0, 0), TSR_EINVAL);
    assert_msg_has("label column 3");
    /* The output must not be the input. */
    assert_int_equal(tsr_data_convert_csv(csv, csv, -1, 0, 0), TSR_EINVAL);
    assert_no_output(tpath("bad.h5"));
}

static void expect_csv_fail(const char *name, const char *text, int code, const char *what1, const char *what2)
{
    const char *csv = tpath(name);
    const char *out = tpath("fail_csv.h5");
    write_text(csv, text);
    int rc = tsr_data_convert_csv(csv, out, -1, 0.2, 1);
    if (rc != code)
        fail_msg("%s: expected %d, got %d (%s)", name, code, rc, tsr_last_error());
    assert_msg_has(csv);
    if (what1)
        assert_msg_has(what1);
    if (what2)
        assert_msg_has(what2);
    assert_no_output(out);
}

static void test_csv_errors(void **state)
{
    (void)state;
    expect_csv_fail("badcell.csv", "x,y,l\n1,2,0\n3,4,1\n5,abc,1\n", TSR_EDATA, "line 4, column 2", "\"abc\"");
    expect_csv_fail("badlabel.csv", "1,2,0\n3,4,1.5\n", TSR_EDATA, "line 2, column 3", "label");
    expect_csv_fail("neglabel.csv", "1,2,0\n3,4,-1\n", TSR_EDATA, "line 2", "non-negative integer");
    expect_csv_fail("ragged.csv", "1,2,0\n3,4,1\n3,1\n", TSR_EDATA, "line 3 has 2 columns", "expected 3");
    expect_csv_fail("long.csv", "1,2,0\n3,4,1,7\n", TSR_EDATA, "line 2 has 4 columns", NULL);
    expect_csv_fail("empty.csv", "a,b,c\n\n", TSR_EDATA, "no data rows", NULL);
    expect_csv_fail("emptycell.csv", "1,2,0\n3,,1\n", TSR_EDATA, "line 2, column 2", "empty");
    expect_csv_fail("nan.csv", "1,2,0\n3,nan,1\n", TSR_EDATA, "line 2, column 2", NULL);
    expect_csv_fail("onecol.csv", "1\n2\n", TSR_EDATA, "line 1", NULL);
    /* A first line with one bad cell among numbers is data, not a header. */
    expect_csv_fail("firstbad.csv", "1,x,0,4\n1,2,0,4\n", TSR_EDATA, "line 1, column 2", NULL);
    /* Too few rows for a test split. */
    expect_csv_fail("tiny.csv", "1,2,0\n", TSR_EDATA, "too few", NULL);
    const char *out = tpath("fail_csv.h5");
    assert_int_equal(tsr_data_convert_csv(tpath("nope.csv"), out, -1, 0, 0), TSR_EDATA);
    assert_msg_has("nope.csv");
    assert_no_output(out);
    /* A truncated gzip stream is an error, not a short file. */
    const char *gz = tpath("cut.csv.gz");
    char text[8192];
    size_t len = 0;
    for (int i = 0; i < 500; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,%d\n", i, i * 7 % 13, i % 3);
    write_gz(gz, text, len);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    assert_int_equal(truncate(gz, st.st_size / 2), 0);
    assert_int_equal(tsr_data_convert_csv(gz, out, -1, 0, 0), TSR_EDATA);
    assert_msg_has("cut.csv.gz");
    assert_no_output(out);
}

/* IDX bytes: images (n of r x c, pixel k = k*7 mod 256) and labels. */
static size_t idx_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t r, uint32_t c)
{
    uint32_t h[4] = {magic, n, r, c};
    for (int i = 0; i < 4; i++) {
        buf[i * 4] = (unsigned char)(h[i] >> 24);
        buf[i * 4 + 1] = (unsigned char)(h[i] >> 16);
        buf[i * 4 + 2] = (unsigned char)(h[i] >> 8);
        buf[i * 4 + 3] = (unsigned char)h[i];
    }
    size_t px = (size_t)n * r * c;
    for (size_t k = 0; k < px; k++)
        buf[16 + k] = (unsigned char)(k * 7 % 256);
    return 16 + px;
}

static size_t idx_labels(unsigned char *buf, uint32_t magic, uint32_t n)
{
    uint32_t h[2] = {magic, n};
    for (int i = 0; i < 2; i++) {
        buf[i * 4] = (unsigned char)(h[i] >> 24);
        buf[i * 4 + 1] = (unsigned char)(h[i] >> 16);
        buf[i * 4 + 2] = (unsigned char)(h[i] >> 8);
        buf[i * 4 + 3] = (unsigned char)h[i];
    }
    for (uint32_t k = 0; k < n; k++)
        buf[8 + k] = (unsigned char)(k % 10);
    return 8 + n;
}

static void check_idx_output(const char *out, uint32_t n, int with_test)
{
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), n);
    assert_int_equal(tsr_dataset_dim(ds), 6);
    assert_string_equal(tsr_dataset_dtype(ds), "uint8");
    assert_float_equal(tsr_dataset_scale(ds), 1.0 / 255, 1e-9);
    float x[64 * 6];
    int32_t y[64];
    assert_int_equal(tsr_dataset_read(ds, 0, n, x, y, NULL), TSR_OK);
    for (size_t k = 0; k < (size_t)n * 6; k++)
        assert_float_equal(x[k], (float)(k * 7 % 256) / 255.0f, 1e-6);
    for (uint32_t k = 0; k < n; k++)
        assert_int_equal(y[k], (int32_t)(k % 10));
    assert_int_equal(tsr_dataset_validate(ds, 10), TSR_OK);
    tsr_dataset_destroy(ds);
    assert_int_equal(tsr_dataset_has_test(out), with_test);
    /* Stored as uint8 with a float "scale" attribute. */
    tsr_h5_lock();
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "X", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    int u8 = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    int fmt = H5Aexists(f, "format") > 0 && H5Aexists(f, "source") > 0 && H5Aexists(f, "created") > 0;
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    tsr_h5_unlock();
    assert_true(u8);
    assert_true(fmt);
}

static void test_idx(void **state)
{
    (void)state;
    unsigned char img[16 + 64 * 6], lab[8 + 64], timg[16 + 64 * 6], tlab[8 + 64];
    size_t ni = idx_images(img, 0x803, 5, 2, 3), nl = idx_labels(lab, 0x801, 5);
    size_t nti = idx_images(timg, 0x803, 3, 2, 3), ntl = idx_labels(tlab, 0x801, 3);
    const char *out = tpath("idx.h5");

    /* Plain files. */
    write_bin(tpath("img.idx"), img, ni);
    write_bin(tpath("lab.idx"), lab, nl);
    assert_int_equal(tsr_data_convert_idx(tpath("img.idx"), tpath("lab.idx"), NULL, NULL, out), TSR_OK);
    check_idx_output(out, 5, 0);

    /* Gzipped, with a test split. */
    write_gz(tpath("img.idx.gz"), img, ni);
    write_gz(tpath("lab.idx.gz"), lab, nl);
    write_gz(tpath("timg.idx.gz"), timg, nti);
    write_gz(tpath("tlab.idx.gz"), tlab, ntl);
    assert_int_equal(tsr_data_convert_idx(tpath("img.idx.gz"), tpath("lab.idx.gz"), tpath("timg.idx.gz"),
                                          tpath("tlab.idx.gz"), out),
                     TSR_OK);
    check_idx_output(out, 5, 1);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TEST, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), 3);
    tsr_dataset_destroy(ds);
    unlink(out);
}

static void expect_idx_fail(const char *img, const char *lab, int code, const char *what1, const char *what2)
{
    const char *out = tpath("fail_idx.h5");
    int rc = tsr_data_convert_idx(img, lab, NULL, NULL, out);
    if (rc != code)
        fail_msg("expected %d, got %d (%s)", code, rc, tsr_last_error());
    if (what1)
        assert_msg_has(what1);
    if (what2)
        assert_msg_has(what2);
    assert_no_output(out);
}

static void test_idx_errors(void **state)
{
    (void)state;
    unsigned char img[16 + 64 * 6], lab[8 + 64];
    size_t ni = idx_images(img, 0x803, 5, 2, 3), nl = idx_labels(lab, 0x801, 5);
    write_bin(tpath("e_img.idx"), img, ni);
    write_bin(tpath("e_lab.idx"), lab, nl);
    char gi[1200], gl[1200];
    snprintf(gi, sizeof gi, "%s", tpath("e_img.idx"));
    snprintf(gl, sizeof gl, "%s", tpath("e_lab.idx"));

    /* Swapped files: wrong magic, named with the offset. */
    expect_idx_fail(gl, gi, TSR_EDATA, "bad magic number 0x00000801 at offset 0", "labels file");
    assert_msg_has(gl);
    /* Truncated pixel data (plain and gzip). */
    write_bin(tpath("t_img.idx"), img, ni - 4);
    expect_idx_fail(tpath("t_img.idx"), gl, TSR_EDATA, "truncated", "t_img.idx");
    write_gz(tpath("t_img.idx.gz"), img, ni - 4);
    expect_idx_fail(tpath("t_img.idx.gz"), gl, TSR_EDATA, "truncated", "t_img.idx.gz");
    /* Truncated header. */
    write_bin(tpath("h_img.idx"), img, 10);
    expect_idx_fail(tpath("h_img.idx"), gl, TSR_EDATA, "truncated at offset", "h_img.idx");
    /* Trailing data. */
    unsigned char longer[sizeof img + 1];
    memcpy(longer, img, ni);
    longer[ni] = 1;
    write_bin(tpath("l_img.idx"), longer, ni + 1);
    expect_idx_fail(tpath("l_img.idx"), gl, TSR_EDATA, "l_img.idx", "should end");
    /* Count mismatch. */
    nl = idx_labels(lab, 0x801, 4);
    write_bin(tpath("c_lab.idx"), lab, nl);
    expect_idx_fail(gi, tpath("c_lab.idx"), TSR_EDATA, "5 images", "4 labels");
    /* Missing file; test images without labels. */
    expect_idx_fail(tpath("none.idx"), gl, TSR_EDATA, "none.idx", NULL);
    assert_int_equal(tsr_data_convert_idx(gi, gl, gi, NULL, tpath("fail_idx.h5")), TSR_EINVAL);
    /* A corrupt gzip stream. */
    unsigned char junk[40] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_bin(tpath("j_img.idx.gz"), junk, sizeof junk);
    expect_idx_fail(tpath("j_img.idx.gz"), gl, TSR_EDATA, "j_img.idx.gz", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_float),
        cmocka_unit_test(test_open_uint8),
        cmocka_unit_test(test_float_targets),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_loader_slices),
        cmocka_unit_test(test_loader_determinism_prefetch),
        cmocka_unit_test(test_loader_seek),
        cmocka_unit_test(test_loader_errors_and_destroy),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_csv_split),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_idx),
        cmocka_unit_test(test_idx_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
