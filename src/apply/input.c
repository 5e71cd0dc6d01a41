/* SPDX-License-Identifier: BSD-3-Clause */
/* The input of `tessera apply`: one numeric dataset, read by row hyperslabs.
 * Every rank opens the file on its own (read-only, HDF5's default driver):
 * partitions are handed out dynamically, so the reads are independent and
 * need no collective open. */
#include "apply/internal.h"

#include "common/fileutil.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "tessera/error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail_close(apply_input_t *in, int rc)
{
    apply_input_close(in);
    return rc;
}

int apply_input_open(apply_input_t *in, const char *path, const char *dset, const int *cols, int ncols)
{
    memset(in, 0, sizeof *in);
    in->file = in->set = in->space = H5I_INVALID_HID;
    in->fd = -1;
    in->scale = 1.0f;
    snprintf(in->path, sizeof in->path, "%s", path);
    snprintf(in->dset, sizeof in->dset, "%s", dset && *dset ? dset : "/X");
    int rc = tsr_file_check_input(path, "an HDF5 file");
    if (rc)
        return rc;
    tsr_h5_lock();
    H5E_BEGIN_TRY
    {
        in->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (in->file >= 0 && H5Lexists(in->file, in->dset, H5P_DEFAULT) > 0)
            in->set = H5Dopen2(in->file, in->dset, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (in->file < 0) {
        tsr_h5_unlock();
        return fail_close(in, tsr_error_set(TSR_EDATA, "%s: not an HDF5 file HDF5 can open", path));
    }
    if (in->set < 0) {
        tsr_h5_unlock();
        return fail_close(in, tsr_error_set(TSR_EDATA, "%s: no dataset %s in the file", path, in->dset));
    }
    in->space = H5Dget_space(in->set);
    hsize_t dims[2] = {0, 1};
    int nd = in->space >= 0 ? H5Sget_simple_extent_ndims(in->space) : -1;
    hid_t t = H5Dget_type(in->set);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0)
        H5Tclose(t);
    if (nd == 1 || nd == 2)
        H5Sget_simple_extent_dims(in->space, dims, NULL);
    /* A contiguous dataset's bytes lie at one offset: prefetching them is a
     * posix_fadvise on a descriptor of our own (chunked ones are not). */
    haddr_t off = H5Dget_offset(in->set);
    hid_t ft = H5Dget_type(in->set);
    in->elem = ft >= 0 ? H5Tget_size(ft) : 0;
    if (ft >= 0)
        H5Tclose(ft);
    if (off != HADDR_UNDEF && in->elem) {
        in->offset = (long long)off;
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (cls == H5T_INTEGER) {
        float s;
        if (tsr_h5_attr_get_f32(in->set, "scale", &s) == 0)
            in->scale = s;
    }
    tsr_h5_unlock();
    if (nd != 1 && nd != 2)
        return fail_close(in, tsr_error_set(TSR_EDATA,
                                            "%s:%s: a dataset of %d dimensions; apply needs rows of "
                                            "columns (1 or 2 dimensions)",
                                            path, in->dset, nd));
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        return fail_close(
            in, tsr_error_set(TSR_EDATA, "%s:%s: not numeric (apply reads integers and floats)", path, in->dset));
    in->n = dims[0];
    in->d = nd == 2 ? dims[1] : 1;
    if (in->n == 0 || in->d == 0)
        return fail_close(
            in, tsr_error_set(TSR_EDATA, "%s:%s: empty (%zu rows, %zu columns)", path, in->dset, in->n, in->d));
    in->ncols = in->d;
    if (ncols > 0) {
        in->cols = malloc((size_t)ncols * sizeof *in->cols);
        if (!in->cols)
            return fail_close(in, tsr_error_set(TSR_ENOMEM, "apply: out of memory"));
        for (int i = 0; i < ncols; i++) {
            if (cols[i] < 0 || (size_t)cols[i] >= in->d)
                return fail_close(in, tsr_error_set(TSR_EINVAL,
                                                    "--columns: column %d does not exist: %s:%s has %zu "
                                                    "columns (0 to %zu)",
                                                    cols[i], path, in->dset, in->d, in->d - 1));
            in->cols[i] = cols[i];
        }
        in->ncols = (size_t)ncols;
    }
    return TSR_OK;
}

/* Reads rows of every column into x as mtype (lock held). */
static int read_rows(apply_input_t *in, size_t start, size_t count, hid_t mtype, void *x)
{
    hsize_t off[2] = {start, 0}, cnt[2] = {count, in->d};
    int nd = H5Sget_simple_extent_ndims(in->space);
    hid_t mem = H5Screate_simple(nd, cnt, NULL);
    herr_t e = mem < 0 ? -1 : H5Sselect_hyperslab(in->space, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0)
        e = H5Dread(in->set, mtype, mem, in->space, H5P_DEFAULT, x);
    if (mem >= 0)
        H5Sclose(mem);
    if (e < 0)
        return tsr_error_set(TSR_EIO, "%s:%s: cannot read rows %zu to %zu", in->path, in->dset, start,
                             start + count - 1);
    return TSR_OK;
}

int apply_input_read(apply_input_t *in, size_t start, size_t count, float *x)
{
    float *dst = x;
    if (in->cols) {
        if (in->full_n < count) {
            float *p = realloc(in->full, count * in->d * sizeof *p);
            if (!p)
                return tsr_error_set(TSR_ENOMEM, "apply: out of memory for %zu rows of %zu columns", count, in->d);
            in->full = p;
            in->full_n = count;
        }
        dst = in->full;
    }
    tsr_h5_lock();
    int rc = read_rows(in, start, count, H5T_NATIVE_FLOAT, dst);
    tsr_h5_unlock();
    if (rc)
        return rc;
    if (in->cols)
        for (size_t r = 0; r < count; r++)
            for (size_t c = 0; c < in->ncols; c++)
                x[r * in->ncols + c] = dst[r * in->d + (size_t)in->cols[c]];
    if (in->scale != 1.0f)
        for (size_t i = 0; i < count * in->ncols; i++)
            x[i] *= in->scale;
    return TSR_OK;
}

void apply_input_prefetch(apply_input_t *in, size_t start, size_t count)
{
    if (in->fd < 0 || count == 0)
        return;
    size_t row = in->d * in->elem;
    posix_fadvise(in->fd, (off_t)(in->offset + (long long)(start * row)), (off_t)(count * row), POSIX_FADV_WILLNEED);
}

int apply_input_read_as(apply_input_t *in, size_t start, size_t count, hid_t mtype, void *x)
{
    tsr_h5_lock();
    int rc = read_rows(in, start, count, mtype, x);
    tsr_h5_unlock();
    return rc;
}

int apply_input_is_integer(apply_input_t *in)
{
    tsr_h5_lock();
    hid_t t = H5Dget_type(in->set);
    int yes = t >= 0 && H5Tget_class(t) == H5T_INTEGER;
    if (t >= 0)
        H5Tclose(t);
    tsr_h5_unlock();
    return yes;
}

int apply_input_has_rows(apply_input_t *in, const char *name, size_t n)
{
    int yes = 0;
    tsr_h5_lock();
    H5E_BEGIN_TRY
    {
        if (H5Lexists(in->file, name, H5P_DEFAULT) > 0) {
            hid_t s = H5Dopen2(in->file, name, H5P_DEFAULT), sp = s >= 0 ? H5Dget_space(s) : -1;
            hsize_t dims[2] = {0, 0};
            if (sp >= 0 && H5Sget_simple_extent_ndims(sp) >= 1 && H5Sget_simple_extent_ndims(sp) <= 2) {
                H5Sget_simple_extent_dims(sp, dims, NULL);
                yes = dims[0] == n;
            }
            if (sp >= 0)
                H5Sclose(sp);
            if (s >= 0)
                H5Dclose(s);
        }
    }
    H5E_END_TRY;
    tsr_h5_unlock();
    return yes;
}

void apply_input_close(apply_input_t *in)
{
    tsr_h5_lock();
    if (in->space >= 0)
        H5Sclose(in->space);
    if (in->set >= 0)
        H5Dclose(in->set);
    if (in->file >= 0)
        H5Fclose(in->file);
    tsr_h5_unlock();
    in->file = in->set = in->space = H5I_INVALID_HID;
    if (in->fd >= 0)
        close(in->fd);
    in->fd = -1;
    free(in->cols);
    free(in->full);
    in->cols = NULL;
    in->full = NULL;
    in->full_n = 0;
}
