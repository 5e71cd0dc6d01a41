/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera's HDF5 files: attributes and datasets (h5io.h). */
#include "common/h5io.h"

#include "common/fileutil.h"
#include "common/h5lock.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writes one scalar attribute; caller holds the lock. */
static int write_attr(hid_t loc, const char *obj, const char *name, hid_t ftype, hid_t mtype, const void *value)
{
    int rc = TSR_OK;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5I_INVALID_HID;
    if (space < 0) {
        rc = tsr_error_set(TSR_EIO, "attribute %s: cannot create its dataspace", name);
        goto done;
    }
    if (H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0)
        H5Adelete_by_name(loc, obj, name, H5P_DEFAULT);
    attr = H5Acreate_by_name(loc, obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, mtype, value) < 0)
        rc = tsr_error_set(TSR_EIO, "cannot write attribute %s on %s", name, obj);
done:
    if (attr >= 0)
        H5Aclose(attr);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

int tsr_h5_attr_get_str(hid_t obj, const char *name, char *buf, size_t len)
{
    tsr_h5_lock();
    if (len == 0 || H5Aexists(obj, name) <= 0) {
        tsr_h5_unlock();
        return -1;
    }
    memset(buf, 0, len); /* a NUL-padded string of exactly len bytes stays terminated */
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0 && H5Tget_size(t) <= len &&
             H5Aread(a, t, buf) >= 0;
    buf[ok ? len - 1 : 0] = '\0';
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    tsr_h5_unlock();
    return ok ? 0 : -1;
}

/* Opens attribute name of obj and its type; -1 when missing. Lock held. */
static hid_t open_attr(hid_t obj, const char *name, hid_t *type)
{
    *type = -1;
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a >= 0)
        *type = H5Aget_type(a);
    return a;
}

static void close_attr(hid_t a, hid_t t)
{
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
}

int tsr_h5_attr_get_str_alloc(hid_t obj, const char *name, char **out)
{
    *out = NULL;
    tsr_h5_lock();
    hid_t t, a = open_attr(obj, name, &t);
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING;
    hid_t mt = ok ? H5Tcopy(H5T_C_S1) : -1;
    ok = ok && mt >= 0 && H5Tset_cset(mt, H5Tget_cset(t)) >= 0; /* HDF5 does not convert between csets */
    if (ok && H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        ok = H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &s) >= 0 && s;
        if (ok && !(*out = strdup(s)))
            ok = 0;
        if (s)
            H5free_memory(s);
    } else if (ok) {
        size_t n = H5Tget_size(t);
        ok = (*out = calloc(1, n + 1)) != NULL && H5Tset_size(mt, n + 1) >= 0 && H5Aread(a, mt, *out) >= 0;
    }
    if (mt >= 0)
        H5Tclose(mt);
    close_attr(a, t);
    tsr_h5_unlock();
    if (!ok) {
        free(*out);
        *out = NULL;
    }
    return ok ? 0 : -1;
}

int tsr_h5_attr_get_i64(hid_t obj, const char *name, long long *v)
{
    long long x;
    tsr_h5_lock();
    hid_t t, a = open_attr(obj, name, &t);
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_LLONG, &x) >= 0;
    close_attr(a, t);
    tsr_h5_unlock();
    if (ok)
        *v = x;
    return ok ? 0 : -1;
}

int tsr_h5_attr_get_f32(hid_t obj, const char *name, float *v)
{
    float x;
    tsr_h5_lock();
    hid_t t, a = open_attr(obj, name, &t);
    hid_t s = a >= 0 ? H5Aget_space(a) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_FLOAT && s >= 0 && H5Sget_simple_extent_npoints(s) == 1 &&
             H5Aread(a, H5T_NATIVE_FLOAT, &x) >= 0;
    if (s >= 0)
        H5Sclose(s);
    close_attr(a, t);
    tsr_h5_unlock();
    if (ok)
        *v = x;
    return ok ? 0 : -1;
}

/* Chunks of about this many bytes when compressing: small enough that a
 * streamed random row costs little to decompress, big enough to compress. */
#define CHUNK_BYTES ((size_t)64 * 1024)

int tsr_h5w_create_tmp(const char *out_path, char *tmp, size_t len, hid_t *out)
{
    *out = H5I_INVALID_HID;
    int fd = tsr_file_create_tmp(out_path, tmp, len);
    if (fd < 0)
        return fd;
    close(fd);
    const char *path = tmp;
    tsr_h5_lock();
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = H5I_INVALID_HID;
    if (fcpl >= 0 && fapl >= 0) {
        /* Track creation order so tools list datasets as written. */
        H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
        /* Files readable by HDF5 1.8 and later (h5py everywhere). */
        H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
        f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    }
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    tsr_h5_unlock();
    if (f < 0)
        return tsr_error_set(TSR_EIO, "%s: cannot create HDF5 file", path);
    *out = f;
    return TSR_OK;
}

int tsr_h5w_close(hid_t file)
{
    if (file < 0)
        return TSR_OK;
    tsr_h5_lock();
    herr_t fl = H5Fflush(file, H5F_SCOPE_LOCAL);
    herr_t cl = H5Fclose(file);
    tsr_h5_unlock();
    if (fl < 0 || cl < 0)
        return tsr_error_set(TSR_EIO, "cannot flush and close the HDF5 file");
    return TSR_OK;
}

int tsr_h5w_dataset(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims, hid_t mtype,
                    const void *data, int compress)
{
    if (rank < 1 || rank > 8)
        return tsr_error_set(TSR_EINVAL, "dataset %s: rank %d not supported", name, rank);
    int rc = TSR_OK;
    tsr_h5_lock();
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = H5I_INVALID_HID;
    if (space < 0 || dcpl < 0) {
        rc = tsr_error_set(TSR_EIO, "dataset %s: cannot create its dataspace", name);
        goto done;
    }
    size_t elem = H5Tget_size(ftype);
    size_t row_elems = 1;
    for (int i = 1; i < rank; i++)
        row_elems *= (size_t)dims[i];
    size_t row_bytes = row_elems * elem;
    if (compress && dims[0] > 0 && row_bytes > 0 && row_bytes <= CHUNK_BYTES * 64 &&
        H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        hsize_t chunk[8];
        size_t rows = CHUNK_BYTES / row_bytes;
        if (rows < 1)
            rows = 1;
        if (rows > dims[0])
            rows = (size_t)dims[0];
        chunk[0] = rows;
        for (int i = 1; i < rank; i++)
            chunk[i] = dims[i];
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 ||
            (elem > 1 && H5Zfilter_avail(H5Z_FILTER_SHUFFLE) > 0 && H5Pset_shuffle(dcpl) < 0) ||
            H5Pset_deflate(dcpl, 4) < 0) {
            rc = tsr_error_set(TSR_EIO, "dataset %s: cannot set up chunking and compression", name);
            goto done;
        }
    }
    dset = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dset < 0) {
        rc = tsr_error_set(TSR_EIO, "cannot create dataset %s", name);
        goto done;
    }
    if (dims[0] > 0 && data && H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = tsr_error_set(TSR_EIO, "cannot write dataset %s", name);
done:
    if (dset >= 0)
        H5Dclose(dset);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    tsr_h5_unlock();
    return rc;
}

/* A fixed-length, NUL-terminated string type of value's length in cset. */
static int put_string(hid_t loc, const char *obj, const char *name, const char *value, H5T_cset_t cset)
{
    tsr_h5_lock();
    int rc;
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0 || H5Tset_size(type, strlen(value) + 1) < 0 || H5Tset_strpad(type, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(type, cset) < 0)
        rc = tsr_error_set(TSR_EIO, "attribute %s: cannot make its string type", name);
    else
        rc = write_attr(loc, obj, name, type, type, value);
    if (type >= 0)
        H5Tclose(type);
    tsr_h5_unlock();
    return rc;
}

static int put_number(hid_t loc, const char *obj, const char *name, hid_t ftype, hid_t mtype, const void *value)
{
    tsr_h5_lock();
    int rc = write_attr(loc, obj, name, ftype, mtype, value);
    tsr_h5_unlock();
    return rc;
}

int tsr_h5_attr_put_str(hid_t obj, const char *name, const char *value)
{
    return put_string(obj, ".", name, value, H5T_CSET_ASCII) ? -1 : 0;
}

int tsr_h5_attr_put_i64(hid_t obj, const char *name, long long value)
{
    int64_t v = value;
    return put_number(obj, ".", name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v) ? -1 : 0;
}

int tsr_h5w_attr_str(hid_t loc, const char *obj, const char *name, const char *value)
{
    return put_string(loc, obj, name, value, H5T_CSET_UTF8);
}

int tsr_h5w_attr_float(hid_t loc, const char *obj, const char *name, float value)
{
    return put_number(loc, obj, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &value);
}

int tsr_h5w_attr_double(hid_t loc, const char *obj, const char *name, double value)
{
    return put_number(loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int tsr_h5w_attr_int64(hid_t loc, const char *obj, const char *name, int64_t value)
{
    return put_number(loc, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void tsr_h5w_iso8601_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "unknown");
}

int tsr_h5w_root_attrs(hid_t file, const char *format, const char *source)
{
    char now[64];
    tsr_h5w_iso8601_now(now, sizeof now);
    int rc = tsr_h5w_attr_str(file, "/", "format", format);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_str(file, "/", "source", source ? source : "");
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_str(file, "/", "created", now);
    return rc;
}

int tsr_h5w_commit(hid_t f, char *tmp, const char *out)
{
    int rc = tsr_h5w_close(f);
    if (rc) {
        tsr_file_discard(tmp);
        tmp[0] = '\0';
        return tsr_error_prefix(rc, "%s: ", out);
    }
    rc = tsr_file_commit(tmp, out); /* removes the temporary on failure */
    tmp[0] = '\0';
    return rc;
}

void tsr_h5w_abandon(hid_t f, const char *tmp)
{
    if (f >= 0) {
        char keep[1024]; /* closing must not replace the message that says what failed */
        snprintf(keep, sizeof keep, "%s", tsr_last_error());
        tsr_h5w_close(f);
        tsr_error_set(TSR_EIO, "%s", keep); /* the caller keeps its code */
    }
    tsr_file_discard(tmp);
}

int tsr_h5w_finish(hid_t f, char *tmp, const char *out, int rc)
{
    if (rc == TSR_OK)
        return tsr_h5w_commit(f, tmp, out);
    tsr_error_prefix(rc, "%s: ", out);
    tsr_h5w_abandon(f, tmp);
    return rc;
}
