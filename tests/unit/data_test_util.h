/* SPDX-License-Identifier: BSD-3-Clause */
/* What the data module's unit tests share (test_data.c: opening and
 * validation; test_data_loader.c; test_data_convert.c: the CSV and IDX
 * converters): a private directory under $TSR_TEST_TMP, test files written
 * with the raw HDF5 API under the lock, message checks, the loader's
 * expected permutation and the converters' input and output helpers. */
#ifndef TSR_TEST_DATA_UTIL_H
#define TSR_TEST_DATA_UTIL_H
#define TSR_UNUSED __attribute__((unused))
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

static TSR_UNUSED const char *tpath(const char *name)
{
    /* A ring of buffers, so a few paths can be live at once in one call. */
    static char bufs[64][1200];
    static int next;
    char *b = bufs[next++ % 64];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static TSR_UNUSED int setup_dir(void **state)
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

static TSR_UNUSED int teardown_dir(void **state)
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

static TSR_UNUSED hid_t h5_new(const char *path)
{
    tsr_h5_lock();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    tsr_h5_unlock();
    assert_true(f >= 0);
    return f;
}

static TSR_UNUSED void h5_put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank, hsize_t d0, hsize_t d1,
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

static TSR_UNUSED void h5_attr_float(hid_t f, const char *obj, const char *name, float v)
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

static TSR_UNUSED void h5_done(hid_t f)
{
    tsr_h5_lock();
    H5Fclose(f);
    tsr_h5_unlock();
}

/* A float dataset: X[i][j] = i + j/100, y[i] = i % classes. */
static TSR_UNUSED void make_float(const char *path, size_t n, size_t d, int classes)
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

static TSR_UNUSED int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

#define assert_msg_has(s)                                                                                              \
    do {                                                                                                               \
        if (!contains(tsr_last_error(), (s)))                                                                          \
            fail_msg("message \"%s\" lacks \"%s\"", tsr_last_error(), (s));                                            \
    } while (0)

/* The loader's permutation of n rows in an epoch. */
static TSR_UNUSED void expected_perm(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    tsr_rng_t r;
    tsr_rng_seed(&r, seed, epoch);
    tsr_rng_shuffle(&r, perm, n);
}

/* ---- converters' inputs and outputs ---- */

static TSR_UNUSED void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static TSR_UNUSED void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

static TSR_UNUSED void write_bin(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

/* No output and no temporary file left in the directory. */
static TSR_UNUSED void assert_no_output(const char *out)
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

#endif
