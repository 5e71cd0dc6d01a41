/* Writing tessera's HDF5 files: datasets and attributes, each call under
 * the HDF5 lock. */
#include "data/h5write.h"

#include "common/fileutil.h"
#include "common/h5lock.h"
#include "tessera/error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

int tsr_h5w_attr_str(hid_t loc, const char *obj, const char *name, const char *value)
{
    tsr_h5_lock();
    int rc = TSR_OK;
    hid_t type = H5Tcopy(H5T_C_S1);
    size_t len = strlen(value);
    /* Fixed length with room for the terminating NUL. */
    if (type < 0 || H5Tset_size(type, len + 1) < 0 || H5Tset_strpad(type, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(type, H5T_CSET_UTF8) < 0) {
        rc = tsr_error_set(TSR_EIO, "attribute %s: cannot make its string type", name);
    } else {
        rc = write_attr(loc, obj, name, type, type, value);
    }
    if (type >= 0)
        H5Tclose(type);
    tsr_h5_unlock();
    return rc;
}

int tsr_h5w_attr_float(hid_t loc, const char *obj, const char *name, float value)
{
    tsr_h5_lock();
    int rc = write_attr(loc, obj, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &value);
    tsr_h5_unlock();
    return rc;
}

int tsr_h5w_attr_double(hid_t loc, const char *obj, const char *name, double value)
{
    tsr_h5_lock();
    int rc = write_attr(loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
    tsr_h5_unlock();
    return rc;
}

int tsr_h5w_attr_int64(hid_t loc, const char *obj, const char *name, int64_t value)
{
    tsr_h5_lock();
    int rc = write_attr(loc, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
    tsr_h5_unlock();
    return rc;
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
