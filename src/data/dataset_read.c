/* SPDX-License-Identifier: BSD-3-Clause */
/* Datasets: validating every value, reading rows in order, and gathering
 * rows in any order (the loader's path). Every HDF5 call holds the lock. */
#include "data/dataset_internal.h"

#include "common/h5lock.h"
#include "tessera/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ---- */

static const char *bad_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

/* Checks count*cols floats of rows starting at row0 for NaN/Inf. */
static int check_finite(const tsr_dataset_t *ds, const char *set, const float *v, size_t row0, size_t count,
                        size_t cols)
{
    size_t total = count * cols;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(v[i]))
            return tsr_error_set(TSR_EDATA,
                                 "%s: %s row %zu, column %zu is %s (rows and columns count from 0); "
                                 "expected finite numbers",
                                 ds->path, set, row0 + i / cols, i % cols, bad_name(v[i]));
    }
    return TSR_OK;
}

static int check_labels(const tsr_dataset_t *ds, const int32_t *y, size_t row0, size_t count, int classes, int32_t *mx)
{
    for (size_t i = 0; i < count; i++) {
        int32_t v = y[i];
        if (v < 0 || (classes > 0 && v >= classes)) {
            if (classes > 0)
                return tsr_error_set(TSR_EDATA,
                                     "%s: %s row %zu (counting from 0) has label %d; valid labels are "
                                     "0..%d for %d classes",
                                     ds->path, ds->yname, row0 + i, (int)v, classes - 1, classes);
            return tsr_error_set(TSR_EDATA, "%s: %s row %zu (counting from 0) has label %d; labels must be >= 0",
                                 ds->path, ds->yname, row0 + i, (int)v);
        }
        /* Left alone it would surface as a layer width (the class count
         * is the largest label + 1): name the label instead. */
        if (classes <= 0 && v >= TSR_DATA_MAX_CLASSES)
            return tsr_error_set(TSR_EDATA,
                                 "%s: %s row %zu (counting from 0) has label %d, which needs %lld outputs "
                                 "(one per class up to the largest label); at most %d are supported; fix the label "
                                 "or set [model] outputs",
                                 ds->path, ds->yname, row0 + i, (int)v, (long long)v + 1, TSR_DATA_MAX_CLASSES);
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
        size_t step = tsr_dataset_chunk_rows(ds);
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
            rc = tsr_dataset_read_rows_locked(ds, r, c, xb, lb, tb);
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
    rc = tsr_dataset_read_rows_locked(ds, start, count, x, lp, tp);
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
static herr_t read_sorted(hid_t set, hid_t space, hid_t mtype, size_t cols, int rank, size_t elem, const uint64_t *keys,
                          size_t count, void *stage)
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
        rc = tsr_error_set(TSR_EDATA, "%s: cannot read %zu rows of %s (truncated or damaged file)", ds->path, count,
                           ds->xname);
    if (rc == TSR_OK && ybuf &&
        read_sorted(ds->yset, ds->yspace, ds->is_labels ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, ds->k,
                    ds->is_labels ? 1 : 2, sizeof(float), keys, count, sy) < 0)
        rc = tsr_error_set(TSR_EDATA, "%s: cannot read %zu rows of %s (truncated or damaged file)", ds->path, count,
                           ds->yname);
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

int tsr_dataset_gather(tsr_dataset_t *ds, const uint32_t *rows, size_t count, float *x, int32_t *labels, float *targets,
                       void *work)
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
