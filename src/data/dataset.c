/* SPDX-License-Identifier: BSD-3-Clause */
/* Datasets in tessera's HDF5 format: open and check one split, read it
 * into memory by hyperslab or keep it open to stream rows per batch,
 * validate every value. Every HDF5 call runs under tsr_h5_lock(). */
#include "data/dataset_internal.h"
#include "tessera/data.h"

#include "common/fileutil.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "tessera/error.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- small helpers (callers hold the lock where HDF5 is involved) ---- */

static void type_name(hid_t t, char *buf, size_t len)
{
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    switch (c) {
    case H5T_INTEGER: snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", sz * 8); break;
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

static int is_float32(hid_t t) { return H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4; }

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
static int open_set(const tsr_dataset_t *ds, hid_t file, const char *name, const char *expect, hid_t *set, hid_t *type,
                    int *rank, hsize_t dims[2])
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

/* The per-row shape /X declares: an integer attribute "shape" of 1 to 3
 * values (c, h, w), or the IDX converter's image_rows and image_cols
 * (1 x rows x cols); nothing when absent or when it does not multiply out
 * to the row length. Caller holds the lock. */
static long long int_attr(hid_t obj, const char *name, long long *v, int max)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && n >= 1 && n <= max && H5Aread(a, H5T_NATIVE_LLONG, v) >= 0;
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    return ok ? n : 0;
}

static void read_shape(tsr_dataset_t *ds)
{
    long long v[3] = {1, 1, 1}, r = 0, c = 0;
    int n = (int)int_attr(ds->xset, "shape", v, 3);
    if (n == 0 && int_attr(ds->xset, "image_rows", &r, 1) && int_attr(ds->xset, "image_cols", &c, 1))
        v[0] = 1, v[1] = r, v[2] = c, n = 3;
    if (n == 0 || v[0] < 1 || v[1] < 1 || v[2] < 1 || (size_t)(v[0] * v[1] * v[2]) != ds->d)
        return;
    for (int i = 0; i < 3; i++)
        ds->shape[i] = (int)v[i];
}

/* Reads rows [start, start+count) of /X (as float, uint8 scaled) and /y
 * into the given buffers (any may be NULL). Lock held. */
int tsr_dataset_read_rows_locked(tsr_dataset_t *ds, size_t start, size_t count, float *x, int32_t *labels,
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
            H5Dread(ds->xset, ds->x_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, mspace, ds->xspace, H5P_DEFAULT, dst) <
                0) {
            rc = tsr_error_set(TSR_EDATA, "%s: cannot read rows %zu..%zu of %s (truncated or damaged file)", ds->path,
                               start, start + count - 1, ds->xname);
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
            rc = tsr_error_set(TSR_EDATA, "%s: cannot read rows %zu..%zu of %s (truncated or damaged file)", ds->path,
                               start, start + count - 1, ds->yname);
    }
done:
    if (mspace >= 0)
        H5Sclose(mspace);
    return rc;
}

size_t tsr_dataset_chunk_rows(const tsr_dataset_t *ds)
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
        return tsr_error_set(TSR_ENOMEM,
                             "%s: cannot allocate %.1f MiB to hold %s in memory; set a memory limit "
                             "to stream it instead",
                             ds->path, (double)(nx + ny) * 4 / 1048576.0, ds->xname);
    size_t step = tsr_dataset_chunk_rows(ds);
    for (size_t r = 0; r < ds->n; r += step) {
        size_t c = ds->n - r < step ? ds->n - r : step;
        int rc = tsr_dataset_read_rows_locked(ds, r, c, ds->x + r * ds->d, ds->labels ? ds->labels + r : NULL,
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

/* Opens the file read-only; lock held. */
static int open_file(const char *path, hid_t *file)
{
    *file = H5I_INVALID_HID;
    htri_t h5 = H5Fis_hdf5(path);
    if (h5 < 0)
        return tsr_error_set(TSR_EDATA, "%s: cannot read the file (truncated or damaged)", path);
    if (h5 == 0)
        return tsr_error_set(TSR_EDATA,
                             "%s: not an HDF5 file; expected a tessera dataset with /X and /y "
                             "(convert CSV or IDX files with `tessera data convert`)",
                             path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0)
        return tsr_error_set(TSR_EDATA,
                             "%s: HDF5 cannot open it (truncated or damaged); expected a tessera "
                             "dataset with /X and /y",
                             path);
    return TSR_OK;
}

/* Checks /X and /y (or the test pair); fills ds's shape fields and keeps
 * the datasets open. Lock held. */
static int check_sets(tsr_dataset_t *ds)
{
    const char *xexp = "a 2-D float32 or uint8 dataset [N, D]";
    const char *yexp = "1-D int32 labels [N] or 2-D float32 targets [N, K]";
    hid_t xtype = H5I_INVALID_HID, ytype = H5I_INVALID_HID;
    hsize_t xd[2], yd[2];
    int xr = 0, yr = 0;
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
            rc = tsr_error_set(TSR_EDATA,
                               "%s: %s is uint8 but has no attribute \"scale\"; expected a float "
                               "attribute \"scale\" (e.g. 1/255) that maps it to float",
                               ds->path, ds->xname);
            goto done;
        }
        float sc = 0;
        if (tsr_h5_attr_get_f32(ds->xset, "scale", &sc)) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: attribute \"scale\" of %s is not a single float; expected a float "
                               "attribute \"scale\" (e.g. 1/255)",
                               ds->path, ds->xname);
            goto done;
        }
        if (!isfinite(sc)) {
            rc = tsr_error_set(TSR_EDATA, "%s: attribute \"scale\" of %s is not a finite number", ds->path, ds->xname);
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
    read_shape(ds);
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
            rc = tsr_error_set(TSR_EDATA, "%s: %s has 0 columns; expected float32 targets [N, K] with K >= 1", ds->path,
                               ds->yname);
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
    int rc = tsr_file_check_input(path, "an HDF5 dataset with /X and /y");
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
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
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

size_t tsr_dataset_rows(const tsr_dataset_t *ds) { return ds ? ds->n : 0; }

size_t tsr_dataset_dim(const tsr_dataset_t *ds) { return ds ? ds->d : 0; }

int tsr_dataset_is_labels(const tsr_dataset_t *ds) { return ds ? ds->is_labels : 0; }

size_t tsr_dataset_target_dim(const tsr_dataset_t *ds) { return ds ? ds->k : 0; }

int tsr_dataset_classes(const tsr_dataset_t *ds) { return ds && ds->is_labels ? ds->classes : 0; }

int tsr_dataset_is_streaming(const tsr_dataset_t *ds) { return ds ? ds->streaming : 0; }

const char *tsr_dataset_dtype(const tsr_dataset_t *ds) { return ds && ds->x_u8 ? "uint8" : "float32"; }

int tsr_dataset_shape(const tsr_dataset_t *ds, int shape[3])
{
    if (!ds->shape[0])
        return 0;
    memcpy(shape, ds->shape, sizeof ds->shape);
    return 1;
}

float tsr_dataset_scale(const tsr_dataset_t *ds) { return ds ? ds->scale : 1.0f; }

const char *tsr_dataset_path(const tsr_dataset_t *ds) { return ds ? ds->path : ""; }
