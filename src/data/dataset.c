/* Datasets in tessera's HDF5 format: open and check one split, read it
 * into memory by hyperslab or keep it open to stream rows per batch,
 * validate every value. Every HDF5 call runs under tsr_h5_lock(). */
#include "tessera/data.h"

#include "common/h5lock.h"
#include "tessera/error.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Rows are read into memory (and validated when streamed) this many bytes
 * of float at a time. */
#define READ_CHUNK_BYTES ((size_t)64 << 20)

/* A streamed gather reads this many sorted rows per H5Dread: HDF5 1.10
 * builds a union of hyperslabs in time quadratic in its parts, so a big
 * batch is read as several small unions. */
#ifndef GATHER_GROUP
#define GATHER_GROUP 64
#endif

struct tsr_dataset {
    char *path;
    const char *xname; /* "/X" or "/X_test" */
    const char *yname;
    size_t n, d, k;
    int is_labels;
    int x_u8;
    float scale; /* uint8 -> float factor; 1 for float32 */
    int classes; /* max label + 1; 0 until known */
    int streaming;
    /* In memory. */
    float *x;
    int32_t *labels;
    float *targets;
    /* Streaming: kept open, used under the lock. */
    hid_t file, xset, yset, xspace, yspace;
};

/* ---- small helpers (callers hold the lock where HDF5 is involved) ---- */

static void type_name(hid_t t, char *buf, size_t len)
{
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    switch (c) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", sz * 8);
        break;
    case H5T_FLOAT: snprintf(buf, len, "float%zu", sz * 8); break;
    case H5T_STRING: snprintf(buf, len, "string"); break;
    case H5T_COMPOUND: snprintf(buf, len, "compound"); break;
    case H5T_ENUM: snprintf(buf, len, "enum"); break;
    case H5T_ARRAY: snprintf(buf, len, "array"); break;
    case H5T_VLEN: snprintf(buf, len, "variable-length"); break;
    case H5T_OPAQUE: snprintf(buf, len, "opaque"); break;
    case H5T_BITFIELD: snprintf(buf, len, "bitfield"); break;
    case H5T_REFERENCE: snprintf(buf, len, "reference"); break;
    default: snprintf(buf, len, "unknown"); break;
    }
}

static int is_float32(hid_t t)
{
    return H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4;
}

static int is_uint8(hid_t t)
{
    return H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
}

static int is_int32(hid_t t)
{
    return H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 4 && H5Tget_sign(t) == H5T_SGN_2;
}

/* Does the file hold a dataset at name ("/X")? Lock held. (Opening it,
 * rather than H5Oget_info, whose signature differs across HDF5 1.10-1.14.) */
static int has_dataset(hid_t file, const char *name)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return 0;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return 0;
    H5Dclose(d);
    return 1;
}

/* Opens dataset name, gets its type, rank and dims (up to 2). Lock held. */
static int open_set(const tsr_dataset_t *ds, hid_t file, const char *name, const char *expect, hid_t *set,
                    hid_t *type, int *rank, hsize_t dims[2])
{
    *set = H5I_INVALID_HID;
    *type = H5I_INVALID_HID;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        if (strstr(name, "_test"))
            return tsr_error_set(TSR_EDATA, "%s: no dataset %s (the file has no test split); expected %s", ds->path,
                                 name, expect);
        return tsr_error_set(TSR_EDATA, "%s: no dataset %s; expected %s", ds->path, name, expect);
    }
    *set = H5Dopen2(file, name, H5P_DEFAULT);
    if (*set < 0)
        return tsr_error_set(TSR_EDATA, "%s: %s is not a readable dataset; expected %s", ds->path, name, expect);
    *type = H5Dget_type(*set);
    hid_t space = H5Dget_space(*set);
    int r = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (*type < 0 || r < 0) {
        if (space >= 0)
            H5Sclose(space);
        return tsr_error_set(TSR_EDATA, "%s: cannot read the type and shape of %s", ds->path, name);
    }
    *rank = r;
    dims[0] = dims[1] = 0;
    if (r >= 1 && r <= 2)
        H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    return TSR_OK;
}

static void free_data(tsr_dataset_t *ds)
{
    free(ds->x);
    free(ds->labels);
    free(ds->targets);
    ds->x = NULL;
    ds->labels = NULL;
    ds->targets = NULL;
}

/* Closes HDF5 handles; lock held. */
static void close_handles(tsr_dataset_t *ds)
{
    if (ds->xspace >= 0)
        H5Sclose(ds->xspace);
    if (ds->yspace >= 0)
        H5Sclose(ds->yspace);
    if (ds->xset >= 0)
        H5Dclose(ds->xset);
    if (ds->yset >= 0)
        H5Dclose(ds->yset);
    if (ds->file >= 0)
        H5Fclose(ds->file);
    ds->xspace = ds->yspace = ds->xset = ds->yset = ds->file = H5I_INVALID_HID;
}

/* uint8 pixels in the last n bytes of the n-float buffer x become floats
 * times scale, in place: float i is written after byte i is read, and it
 * only overwrites bytes already read. (HDF5's own uint8->float conversion
 * is several times slower.) */
static void u8_to_float_inplace(float *x, size_t n, float scale)
{
    const uint8_t *u = (const uint8_t *)x + 3 * n;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = u[i];
        x[i] = (float)v * scale;
    }
}

/* Reads rows [start, start+count) of /X (as float, uint8 scaled) and /y
 * into the given buffers (any may be NULL). Lock held. */
static int read_rows_locked(tsr_dataset_t *ds, size_t start, size_t count, float *x, int32_t *labels,
                            float *targets)
{
    int rc = TSR_OK;
    hid_t mspace = H5I_INVALID_HID;
    if (x) {
        hsize_t off[2] = {start, 0}, cnt[2] = {count, ds->d};
        mspace = H5Screate_simple(2, cnt, NULL);
        /* uint8 goes into the buffer's last quarter, then becomes float. */
        void *dst = ds->x_u8 ? (void *)((uint8_t *)x + 3 * count * ds->d) : (void *)x;
        if (mspace < 0 || H5Sselect_hyperslab(ds->xspace, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
            H5Dread(ds->xset, ds->x_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, mspace, ds->xspace, H5P_DEFAULT,
                    dst) < 0) {
            rc = tsr_error_set(TSR_EIO, "%s: cannot read rows %zu..%zu of %s", ds->path, start, start + count - 1,
                               ds->xname);
            goto done;
        }
        H5Sclose(mspace);
        mspace = H5I_INVALID_HID;
        if (ds->x_u8)
            u8_to_float_inplace(x, count * ds->d, ds->scale);
    }
    void *ybuf = ds->is_labels ? (void *)labels : (void *)targets;
    if (ybuf) {
        hsize_t off[2] = {start, 0}, cnt[2] = {count, ds->k};
        int rank = ds->is_labels ? 1 : 2;
        mspace = H5Screate_simple(rank, cnt, NULL);
        if (mspace < 0 || H5Sselect_hyperslab(ds->yspace, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
            H5Dread(ds->yset, ds->is_labels ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, mspace, ds->yspace, H5P_DEFAULT,
                    ybuf) < 0)
            rc = tsr_error_set(TSR_EIO, "%s: cannot read rows %zu..%zu of %s", ds->path, start, start + count - 1,
                               ds->yname);
    }
done:
    if (mspace >= 0)
        H5Sclose(mspace);
    return rc;
}

static size_t chunk_rows(const tsr_dataset_t *ds)
{
    size_t row = (ds->d > ds->k ? ds->d : ds->k) * sizeof(float);
    size_t r = READ_CHUNK_BYTES / row;
    return r < 1 ? 1 : r;
}

/* Reads the whole split into memory, chunk by chunk. Lock held. */
static int load_all(tsr_dataset_t *ds)
{
    size_t nx = ds->n * ds->d, ny = ds->n * ds->k;
    ds->x = malloc(nx * sizeof(float));
    if (ds->is_labels)
        ds->labels = malloc(ds->n * sizeof(int32_t));
    else
        ds->targets = malloc(ny * sizeof(float));
    if (!ds->x || (!ds->labels && !ds->targets))
        return tsr_error_set(TSR_ENOMEM, "%s: cannot allocate %.1f MiB to hold %s in memory; set a memory limit "
                             "to stream it instead", ds->path, (double)(nx + ny) * 4 / 1048576.0, ds->xname);
    size_t step = chunk_rows(ds);
    for (size_t r = 0; r < ds->n; r += step) {
        size_t c = ds->n - r < step ? ds->n - r : step;
        int rc = read_rows_locked(ds, r, c, ds->x + r * ds->d, ds->labels ? ds->labels + r : NULL,
                                  ds->targets ? ds->targets + r * ds->k : NULL);
        if (rc)
            return rc;
    }
    if (ds->is_labels) {
        int32_t mx = -1;
        for (size_t i = 0; i < ds->n; i++)
            if (ds->labels[i] > mx)
                mx = ds->labels[i];
        ds->classes = mx < INT32_MAX ? mx + 1 : INT32_MAX;
    }
    return TSR_OK;
}

static int check_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return tsr_error_set(TSR_EDATA, "%s: no such file (expected an HDF5 dataset with /X and /y)", path);
        return tsr_error_set(TSR_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return tsr_error_set(TSR_EDATA, "%s: is a directory; expected an HDF5 dataset file with /X and /y", path);
    return TSR_OK;
}

/* Opens the file read-only; lock held. */
static int open_file(const char *path, hid_t *file)
{
    *file = H5I_INVALID_HID;
    htri_t h5 = H5Fis_hdf5(path);
    if (h5 < 0)
        return tsr_error_set(TSR_EIO, "%s: cannot read the file", path);
    if (h5 == 0)
        return tsr_error_set(TSR_EDATA, "%s: not an HDF5 file; expected a tessera dataset with /X and /y "
                             "(convert CSV or IDX files with `tessera data convert`)", path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0)
        return tsr_error_set(TSR_EIO, "%s: cannot open the HDF5 file", path);
    return TSR_OK;
}

/* Checks /X and /y (or the test pair); fills ds's shape fields and keeps
 * the datasets open. Lock held. */
static int check_sets(tsr_dataset_t *ds)
{
    const char *xexp = "a 2-D float32 or uint8 dataset [N, D]";
    const char *yexp = "1-D int32 labels [N] or 2-D float32 targets [N, K]";
    hid_t xtype = H5I_INVALID_HID, ytype = H5I_INVALID_HID, attr = H5I_INVALID_HID, atype = H5I_INVALID_HID;
    hsize_t xd[2], yd[2];
    int xr, yr;
    char tn[32];
    int rc = open_set(ds, ds->file, ds->xname, xexp, &ds->xset, &xtype, &xr, xd);
    if (rc)
        goto done;
    if (xr != 2) {
        rc = tsr_error_set(TSR_EDATA, "%s: %s has rank %d; expected %s", ds->path, ds->xname, xr, xexp);
        goto done;
    }
    if (is_float32(xtype)) {
        ds->x_u8 = 0;
        ds->scale = 1.0f;
    } else if (is_uint8(xtype)) {
        ds->x_u8 = 1;
        if (H5Aexists(ds->xset, "scale") <= 0) {
            rc = tsr_error_set(TSR_EDATA, "%s: %s is uint8 but has no attribute \"scale\"; expected a float "
                               "attribute \"scale\" (e.g. 1/255) that maps it to float", ds->path, ds->xname);
            goto done;
        }
        attr = H5Aopen(ds->xset, "scale", H5P_DEFAULT);
        atype = attr >= 0 ? H5Aget_type(attr) : H5I_INVALID_HID;
        hid_t aspace = attr >= 0 ? H5Aget_space(attr) : H5I_INVALID_HID;
        hssize_t npts = aspace >= 0 ? H5Sget_simple_extent_npoints(aspace) : -1;
        if (aspace >= 0)
            H5Sclose(aspace);
        if (atype < 0 || H5Tget_class(atype) != H5T_FLOAT || npts != 1) {
            rc = tsr_error_set(TSR_EDATA, "%s: attribute \"scale\" of %s is not a single float; expected a float "
                               "attribute \"scale\" (e.g. 1/255)", ds->path, ds->xname);
            goto done;
        }
        float sc = 0;
        if (H5Aread(attr, H5T_NATIVE_FLOAT, &sc) < 0 || !isfinite(sc)) {
            rc = tsr_error_set(TSR_EDATA, "%s: attribute \"scale\" of %s is not a finite number", ds->path,
                               ds->xname);
            goto done;
        }
        ds->scale = sc;
    } else {
        type_name(xtype, tn, sizeof tn);
        rc = tsr_error_set(TSR_EDATA, "%s: %s has type %s; expected %s", ds->path, ds->xname, tn, xexp);
        goto done;
    }
    ds->n = (size_t)xd[0];
    ds->d = (size_t)xd[1];
    if (ds->n == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: %s has 0 rows; expected at least one", ds->path, ds->xname);
        goto done;
    }
    if (ds->d == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: %s has 0 columns; expected at least one feature", ds->path, ds->xname);
        goto done;
    }
    if (xd[0] > UINT32_MAX) {
        rc = tsr_error_set(TSR_EDATA, "%s: %s has %llu rows; at most %lu are supported", ds->path, ds->xname,
                           (unsigned long long)xd[0], (unsigned long)UINT32_MAX);
        goto done;
    }

    rc = open_set(ds, ds->file, ds->yname, yexp, &ds->yset, &ytype, &yr, yd);
    if (rc)
        goto done;
    if (yr == 1 && is_int32(ytype)) {
        ds->is_labels = 1;
        ds->k = 1;
    } else if (yr == 2 && is_float32(ytype)) {
        ds->is_labels = 0;
        ds->k = (size_t)yd[1];
        if (ds->k == 0) {
            rc = tsr_error_set(TSR_EDATA, "%s: %s has 0 columns; expected float32 targets [N, K] with K >= 1",
                               ds->path, ds->yname);
            goto done;
        }
    } else {
        type_name(ytype, tn, sizeof tn);
        rc = tsr_error_set(TSR_EDATA, "%s: %s is %s with rank %d; expected %s", ds->path, ds->yname, tn, yr, yexp);
        goto done;
    }
    if (yd[0] != xd[0]) {
        rc = tsr_error_set(TSR_EDATA, "%s: %s has %llu rows but %s has %llu; expected the same number", ds->path,
                           ds->yname, (unsigned long long)yd[0], ds->xname, (unsigned long long)xd[0]);
        goto done;
    }
    ds->xspace = H5Dget_space(ds->xset);
    ds->yspace = H5Dget_space(ds->yset);
    if (ds->xspace < 0 || ds->yspace < 0)
        rc = tsr_error_set(TSR_EIO, "%s: cannot get the dataspaces of %s and %s", ds->path, ds->xname, ds->yname);
done:
    if (atype >= 0)
        H5Tclose(atype);
    if (attr >= 0)
        H5Aclose(attr);
    if (xtype >= 0)
        H5Tclose(xtype);
    if (ytype >= 0)
        H5Tclose(ytype);
    return rc;
}

int tsr_dataset_open(const char *path, tsr_split_t split, size_t memory_limit, tsr_dataset_t **out)
{
    if (!out)
        return tsr_error_set(TSR_EINVAL, "tsr_dataset_open: out is NULL");
    *out = NULL;
    if (!path || !path[0])
        return tsr_error_set(TSR_EINVAL, "dataset path is empty");
    if (split != TSR_SPLIT_TRAIN && split != TSR_SPLIT_TEST)
        return tsr_error_set(TSR_EINVAL, "%s: unknown split %d", path, (int)split);
    int rc = check_file(path);
    if (rc)
        return rc;
    tsr_dataset_t *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);
    }
    ds->xname = split == TSR_SPLIT_TEST ? "/X_test" : "/X";
    ds->yname = split == TSR_SPLIT_TEST ? "/y_test" : "/y";
    ds->file = ds->xset = ds->yset = ds->xspace = ds->yspace = H5I_INVALID_HID;

    tsr_h5_lock();
    rc = open_file(path, &ds->file);
    if (rc == TSR_OK)
        rc = check_sets(ds);
    if (rc == TSR_OK) {
        /* N*D*4 bytes, saturating (a product that overflows never fits). */
        size_t bytes = SIZE_MAX;
        if (ds->d <= SIZE_MAX / sizeof(float) / ds->n && ds->k <= SIZE_MAX / sizeof(float) / ds->n)
            bytes = ds->n * ds->d * sizeof(float);
        ds->streaming = memory_limit != 0 && bytes > memory_limit;
        if (!ds->streaming) {
            if (bytes == SIZE_MAX)
                rc = tsr_error_set(TSR_ENOMEM, "%s: %s is too large to hold in memory", path, ds->xname);
            else
                rc = load_all(ds);
            close_handles(ds);
        }
    }
    if (rc != TSR_OK)
        close_handles(ds);
    tsr_h5_unlock();
    if (rc != TSR_OK) {
        tsr_dataset_destroy(ds);
        return rc;
    }
    *out = ds;
    return TSR_OK;
}

void tsr_dataset_destroy(tsr_dataset_t *ds)
{
    if (!ds)
        return;
    if (ds->file >= 0 || ds->xset >= 0 || ds->yset >= 0) {
        tsr_h5_lock();
        close_handles(ds);
        tsr_h5_unlock();
    }
    free_data(ds);
    free(ds->path);
    free(ds);
}

int tsr_dataset_has_test(const char *path)
{
    if (!path)
        return 0;
    struct stat st;
    if (stat(path, &st) != 0 || S_ISDIR(st.st_mode))
        return 0;
    int has = 0;
    tsr_h5_lock();
    if (H5Fis_hdf5(path) > 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            has = has_dataset(f, "/X_test") && has_dataset(f, "/y_test");
            H5Fclose(f);
        }
    }
    tsr_h5_unlock();
    return has;
}

size_t tsr_dataset_rows(const tsr_dataset_t *ds)
{
    return ds ? ds->n : 0;
}

size_t tsr_dataset_dim(const tsr_dataset_t *ds)
{
    return ds ? ds->d : 0;
}

int tsr_dataset_is_labels(const tsr_dataset_t *ds)
{
    return ds ? ds->is_labels : 0;
}

size_t tsr_dataset_target_dim(const tsr_dataset_t *ds)
{
    return ds ? ds->k : 0;
}

int tsr_dataset_classes(const tsr_dataset_t *ds)
{
    return ds && ds->is_labels ? ds->classes : 0;
}

int tsr_dataset_is_streaming(const tsr_dataset_t *ds)
{
    return ds ? ds->streaming : 0;
}

const char *tsr_dataset_dtype(const tsr_dataset_t *ds)
{
    return ds && ds->x_u8 ? "uint8" : "float32";
}

float tsr_dataset_scale(const tsr_dataset_t *ds)
{
    return ds ? ds->scale : 1.0f;
}

const char *tsr_dataset_path(const tsr_dataset_t *ds)
{
    return ds ? ds->path : "";
}

/* ---- validation ---- */

static const char *bad_name(float v)
{
    return isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/* Checks count*cols floats of rows starting at row0 for NaN/Inf. */
static int check_finite(const tsr_dataset_t *ds, const char *set, const float *v, size_t row0, size_t count,
                        size_t cols)
{
    size_t total = count * cols;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(v[i]))
            return tsr_error_set(TSR_EDATA, "%s: %s row %zu, column %zu is %s (rows and columns count from 0); "
                                 "expected finite numbers", ds->path, set, row0 + i / cols, i % cols,
                                 bad_name(v[i]));
    }
    return TSR_OK;
}

static int check_labels(const tsr_dataset_t *ds, const int32_t *y, size_t row0, size_t count, int classes,
                        int32_t *mx)
{
    for (size_t i = 0; i < count; i++) {
        int32_t v = y[i];
        if (v < 0 || (classes > 0 && v >= classes)) {
            if (classes > 0)
                return tsr_error_set(TSR_EDATA, "%s: %s row %zu (counting from 0) has label %d; valid labels are "
                                     "0..%d for %d classes", ds->path, ds->yname, row0 + i, (int)v, classes - 1,
                                     classes);
            return tsr_error_set(TSR_EDATA, "%s: %s row %zu (counting from 0) has label %d; labels must be >= 0",
                                 ds->path, ds->yname, row0 + i, (int)v);
        }
        if (v > *mx)
            *mx = v;
    }
    return TSR_OK;
}

int tsr_dataset_validate(tsr_dataset_t *ds, int classes)
{
    if (!ds)
        return tsr_error_set(TSR_EINVAL, "tsr_dataset_validate: dataset is NULL");
    int32_t mx = -1;
    int rc = TSR_OK;
    if (!ds->streaming) {
        if (!ds->x_u8)
            rc = check_finite(ds, ds->xname, ds->x, 0, ds->n, ds->d);
        if (rc == TSR_OK && !ds->is_labels)
            rc = check_finite(ds, ds->yname, ds->targets, 0, ds->n, ds->k);
        if (rc == TSR_OK && ds->is_labels)
            rc = check_labels(ds, ds->labels, 0, ds->n, classes, &mx);
    } else {
        /* Streamed: scan in chunks. uint8 features are finite by type. */
        size_t step = chunk_rows(ds);
        if (step > ds->n)
            step = ds->n;
        float *xb = ds->x_u8 ? NULL : malloc(step * ds->d * sizeof(float));
        int32_t *lb = ds->is_labels ? malloc(step * sizeof(int32_t)) : NULL;
        float *tb = ds->is_labels ? NULL : malloc(step * ds->k * sizeof(float));
        if ((!ds->x_u8 && !xb) || (ds->is_labels && !lb) || (!ds->is_labels && !tb))
            rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory while validating", ds->path);
        for (size_t r = 0; rc == TSR_OK && r < ds->n; r += step) {
            size_t c = ds->n - r < step ? ds->n - r : step;
            tsr_h5_lock();
            rc = read_rows_locked(ds, r, c, xb, lb, tb);
            tsr_h5_unlock();
            if (rc == TSR_OK && xb)
                rc = check_finite(ds, ds->xname, xb, r, c, ds->d);
            if (rc == TSR_OK && tb)
                rc = check_finite(ds, ds->yname, tb, r, c, ds->k);
            if (rc == TSR_OK && lb)
                rc = check_labels(ds, lb, r, c, classes, &mx);
        }
        free(xb);
        free(lb);
        free(tb);
    }
    if (rc == TSR_OK && ds->is_labels)
        ds->classes = mx < INT32_MAX ? mx + 1 : INT32_MAX;
    return rc;
}

/* ---- reading ---- */

static int check_range(const tsr_dataset_t *ds, size_t start, size_t count)
{
    if (start > ds->n || count > ds->n - start)
        return tsr_error_set(TSR_EINVAL, "%s: rows [%zu, %zu) are out of range; %s has %zu rows", ds->path, start,
                             start + count, ds->xname, ds->n);
    return TSR_OK;
}

int tsr_dataset_read(tsr_dataset_t *ds, size_t start, size_t count, float *x, int32_t *labels, float *targets)
{
    if (!ds)
        return tsr_error_set(TSR_EINVAL, "tsr_dataset_read: dataset is NULL");
    int rc = check_range(ds, start, count);
    if (rc || count == 0)
        return rc;
    int32_t *lp = ds->is_labels ? labels : NULL;
    float *tp = ds->is_labels ? NULL : targets;
    if (!ds->streaming) {
        if (x)
            memcpy(x, ds->x + start * ds->d, count * ds->d * sizeof(float));
        if (lp)
            memcpy(lp, ds->labels + start, count * sizeof(int32_t));
        if (tp)
            memcpy(tp, ds->targets + start * ds->k, count * ds->k * sizeof(float));
        return TSR_OK;
    }
    tsr_h5_lock();
    rc = read_rows_locked(ds, start, count, x, lp, tp);
    tsr_h5_unlock();
    return rc;
}

/* Work area layout for a streamed gather of count rows: keys (uint64),
 * then staged x (count*d floats), then staged y (count*k floats or count
 * int32). */
size_t tsr_dataset_gather_work_size(const tsr_dataset_t *ds, size_t count)
{
    if (!ds || !ds->streaming)
        return 0;
    return count * sizeof(uint64_t) + count * ds->d * sizeof(float) + count * ds->k * sizeof(float);
}

/* In-place heapsort of keys; allocates nothing. */
static void sift_down(uint64_t *a, size_t root, size_t n)
{
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[root] >= a[c])
            return;
        uint64_t t = a[root];
        a[root] = a[c];
        a[c] = t;
        root = c;
    }
}

static void heapsort_u64(uint64_t *a, size_t n)
{
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        uint64_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

/* Selects the sorted rows of keys[0..count) in space (rank 1, or rank 2
 * and cols wide) as a union of hyperslabs, one per run of consecutive
 * rows. HDF5 reads only the first rank entries of each array. */
static herr_t select_rows(hid_t space, size_t cols, const uint64_t *keys, size_t count)
{
    size_t i = 0;
    int first = 1;
    while (i < count) {
        uint64_t r0 = keys[i] >> 32;
        size_t j = i + 1;
        while (j < count && (keys[j] >> 32) == r0 + (j - i))
            j++;
        hsize_t off[2] = {r0, 0}, cnt[2] = {1, 1}, blk[2] = {j - i, cols};
        if (H5Sselect_hyperslab(space, first ? H5S_SELECT_SET : H5S_SELECT_OR, off, NULL, cnt, blk) < 0)
            return -1;
        first = 0;
        i = j;
    }
    return 0;
}

/* Reads the sorted rows keys[0..count) of one dataset into stage (rows
 * back to back), GATHER_GROUP rows per H5Dread. Lock held. */
static herr_t read_sorted(hid_t set, hid_t space, hid_t mtype, size_t cols, int rank, size_t elem,
                          const uint64_t *keys, size_t count, void *stage)
{
    for (size_t g = 0; g < count; g += GATHER_GROUP) {
        size_t gn = count - g < GATHER_GROUP ? count - g : GATHER_GROUP;
        hsize_t md[2] = {gn, cols};
        hid_t ms = H5Screate_simple(rank, md, NULL);
        herr_t e = ms < 0 ? -1 : select_rows(space, cols, keys + g, gn);
        if (e >= 0)
            e = H5Dread(set, mtype, ms, space, H5P_DEFAULT, (char *)stage + g * cols * elem);
        if (ms >= 0)
            H5Sclose(ms);
        if (e < 0)
            return -1;
    }
    return 0;
}

static int gather_stream(tsr_dataset_t *ds, const uint32_t *rows, size_t count, float *x, int32_t *labels,
                         float *targets, void *work)
{
    uint64_t *keys = work;
    float *sx = (float *)(keys + count); /* uint8 rows use its first count*d bytes */
    float *sy = sx + count * ds->d;      /* int32 labels share this space */
    for (size_t i = 0; i < count; i++)
        keys[i] = ((uint64_t)rows[i] << 32) | (uint64_t)i;
    heapsort_u64(keys, count);
    for (size_t i = 1; i < count; i++)
        if ((keys[i] >> 32) == (keys[i - 1] >> 32))
            return tsr_error_set(TSR_EINVAL, "%s: row %llu requested twice in one read", ds->path,
                                 (unsigned long long)(keys[i] >> 32));
    void *ybuf = ds->is_labels ? (void *)labels : (void *)targets;
    int rc = TSR_OK;
    tsr_h5_lock();
    if (x && read_sorted(ds->xset, ds->xspace, ds->x_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, ds->d, 2,
                         ds->x_u8 ? 1 : sizeof(float), keys, count, sx) < 0)
        rc = tsr_error_set(TSR_EIO, "%s: cannot read %zu rows of %s", ds->path, count, ds->xname);
    if (rc == TSR_OK && ybuf &&
        read_sorted(ds->yset, ds->yspace, ds->is_labels ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, ds->k,
                    ds->is_labels ? 1 : 2, sizeof(float), keys, count, sy) < 0)
        rc = tsr_error_set(TSR_EIO, "%s: cannot read %zu rows of %s", ds->path, count, ds->yname);
    tsr_h5_unlock();
    if (rc)
        return rc;
    /* Scatter from sorted order back to the order asked for. */
    const uint8_t *ux = (const uint8_t *)sx;
    for (size_t s = 0; s < count; s++) {
        size_t pos = (size_t)(keys[s] & 0xffffffffu);
        if (x) {
            float *dst = x + pos * ds->d;
            if (ds->x_u8) {
                const uint8_t *src = ux + s * ds->d;
                for (size_t j = 0; j < ds->d; j++)
                    dst[j] = (float)src[j] * ds->scale;
            } else {
                memcpy(dst, sx + s * ds->d, ds->d * sizeof(float));
            }
        }
        if (ybuf && ds->is_labels)
            labels[pos] = ((const int32_t *)sy)[s];
        else if (ybuf)
            memcpy(targets + pos * ds->k, sy + s * ds->k, ds->k * sizeof(float));
    }
    return TSR_OK;
}

int tsr_dataset_gather(tsr_dataset_t *ds, const uint32_t *rows, size_t count, float *x, int32_t *labels,
                       float *targets, void *work)
{
    if (!ds || (!rows && count > 0))
        return tsr_error_set(TSR_EINVAL, "tsr_dataset_gather: dataset or rows is NULL");
    if (count > UINT32_MAX)
        return tsr_error_set(TSR_EINVAL, "%s: too many rows (%zu) in one read", ds->path, count);
    for (size_t i = 0; i < count; i++)
        if (rows[i] >= ds->n)
            return tsr_error_set(TSR_EINVAL, "%s: row %lu is out of range; %s has %zu rows", ds->path,
                                 (unsigned long)rows[i], ds->xname, ds->n);
    if (count == 0)
        return TSR_OK;
    int32_t *lp = ds->is_labels ? labels : NULL;
    float *tp = ds->is_labels ? NULL : targets;
    if (!ds->streaming) {
        size_t d = ds->d, k = ds->k;
        for (size_t i = 0; i < count; i++) {
            size_t r = rows[i];
            if (x)
                memcpy(x + i * d, ds->x + r * d, d * sizeof(float));
            if (lp)
                lp[i] = ds->labels[r];
            if (tp)
                memcpy(tp + i * k, ds->targets + r * k, k * sizeof(float));
        }
        return TSR_OK;
    }
    void *own = NULL;
    if (!work) {
        own = malloc(tsr_dataset_gather_work_size(ds, count));
        if (!own)
            return tsr_error_set(TSR_ENOMEM, "%s: out of memory reading %zu rows", ds->path, count);
        work = own;
    }
    int rc = gather_stream(ds, rows, count, x, lp, tp, work);
    free(own);
    return rc;
}
