/* SPDX-License-Identifier: BSD-3-Clause */
/* Model files in HDF5 (format version 2): root attributes format
 * "tessera-model", version, model (the graph as JSON, tsr_model_spec_json),
 * created and the caller's; /model/layer_<i>/<name> for each layer's
 * parameters and buffers (tsr_model_tensors), with the layer's kind as an
 * attribute. Version 1 files (dense layers only) still load
 * (model_file_v1.c). */
#include "tessera/model.h"
#include "model/internal.h"
#include "model/model_h5.h"
#include "tessera/error.h"
#include "common/fileutil.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "common/h5mem.h"

#include <errno.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MODEL_FORMAT "tessera-model"
#define MODEL_VERSION 2
#define JSON_MAX 65536

int model_load_v1(hid_t f, const char *path, size_t max_batch, size_t max_params, tsr_model_t **out);

static int write_f32(hid_t loc, const char *name, int rank, const hsize_t *dims, const float *data)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return ok ? 0 : -1;
}

int tsr_model_save(tsr_model_t *m, const char *path, const char *const *attrs, int nattrs)
{
    char name[64], when[32];
    char *json = malloc(JSON_MAX);
    int rc;
    if (!json)
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);
    if (tsr_model_spec_json(tsr_model_spec(m), json, JSON_MAX) < 0) {
        free(json);
        return TSR_EINVAL;
    }
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

    tsr_h5_lock();
    tsr_h5_image_t image = {0};
    hid_t f = tsr_h5_mem_create(&image, (m->nparams + m->nbuffers) * sizeof(float)), g = -1;
    int ok = f >= 0;
    ok = ok && tsr_h5_attr_put_str(f, "format", MODEL_FORMAT) == 0 &&
         tsr_h5_attr_put_i64(f, "version", MODEL_VERSION) == 0 && tsr_h5_attr_put_str(f, "model", json) == 0 &&
         tsr_h5_attr_put_str(f, "created", when) == 0;
    for (int i = 0; ok && i < nattrs; i++)
        ok = tsr_h5_attr_put_str(f, attrs[2 * i], attrs[2 * i + 1]) == 0;
    if (ok) {
        g = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ok = g >= 0;
    }
    for (int i = 0; ok && i < m->nl; i++) {
        tsr_model_tensor_t t[TSR_MODEL_MAX_TENSORS];
        int nt = tsr_model_tensors(m, i, t);
        if (nt == 0)
            continue;
        snprintf(name, sizeof name, "layer_%d", i);
        hid_t lg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ok = lg >= 0 && tsr_h5_attr_put_str(lg, "kind", m->layer[i].kind->name) == 0;
        for (int k = 0; ok && k < nt; k++) {
            hsize_t d[4] = {t[k].dims[0], t[k].dims[1], t[k].dims[2], t[k].dims[3]};
            ok = write_f32(lg, t[k].name, t[k].ndims, d, t[k].data) == 0;
        }
        if (lg >= 0)
            H5Gclose(lg);
    }
    if (g >= 0)
        H5Gclose(g);
    if (f >= 0 && tsr_h5_mem_finish(f, path, &image) != TSR_OK)
        ok = 0;
    tsr_h5_unlock();
    free(json);
    if (!ok) {
        tsr_h5_image_free(&image);
        return tsr_error_set(TSR_EIO, "%s: building the model file failed", path);
    }
    rc = tsr_file_write_atomic(path, image.buf, image.len);
    tsr_h5_image_free(&image);
    return rc;
}

/* 1: name is a hard link in loc; 0: there is no such link; -1: a soft or
 * external link, which could lead to another object or another file. */
int model_h5_hard_link(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return 0;
    H5L_info_t li;
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0 || li.type != H5L_TYPE_HARD)
        return -1;
    return 1;
}

/* Opens a 1-D or 2-D float dataset and reads its dims; returns its id or -1. */
hid_t model_h5_open_f32(hid_t loc, const char *name, int rank, hsize_t *dims)
{
    if (model_h5_hard_link(loc, name) != 1)
        return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    int ok = H5Sget_simple_extent_ndims(s) == rank && H5Tget_class(t) == H5T_FLOAT;
    if (ok)
        H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Tclose(t);
    if (!ok) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

/* A dataset's values must be in this file and all of them stored: no
 * external storage or virtual dataset (which would read other files of the
 * server), allocated in full, and without compression at least as many
 * bytes stored as declared. *raw sums the bytes of uncompressed datasets,
 * which the file must be large enough to hold. */
int model_h5_check_stored(hid_t d, hsize_t nelem, hsize_t *raw)
{
    hid_t dcpl = H5Dget_create_plist(d), t = H5Dget_type(d);
    size_t esize = H5Tget_size(t);
    H5D_space_status_t st = H5D_SPACE_STATUS_ERROR;
    int ok = dcpl >= 0 && H5Pget_layout(dcpl) != H5D_VIRTUAL && H5Pget_external_count(dcpl) == 0 &&
             H5Dget_space_status(d, &st) >= 0 && st == H5D_SPACE_STATUS_ALLOCATED;
    if (ok && H5Pget_nfilters(dcpl) == 0) {
        hsize_t stored = H5Dget_storage_size(d);
        ok = esize > 0 && nelem <= (hsize_t)-1 / esize && stored >= nelem * esize;
        *raw += stored;
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Tclose(t);
    return ok ? 0 : -1;
}

static long long attr_i64(hid_t f, const char *name)
{
    long long v = -1;
    if (H5Aexists(f, name) <= 0)
        return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t t = H5Aget_type(a);
    if (H5Tget_class(t) != H5T_INTEGER || H5Aread(a, H5T_NATIVE_LLONG, &v) < 0)
        v = -1;
    H5Tclose(t);
    H5Aclose(a);
    return v;
}

/* A version-2 file already open as f (under the HDF5 lock). */
static int load_v2(hid_t f, const char *path, size_t max_batch, size_t max_params, tsr_model_t **out)
{
    char name[96];
    char *json = malloc(JSON_MAX);
    tsr_model_t *tmp = calloc(1, sizeof *tmp), *m = NULL;
    hsize_t raw = 0, fsize = 0;
    int rc = TSR_OK;
    if (!json || !tmp) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (tsr_h5_attr_get_str(f, "model", json, JSON_MAX)) {
        rc = tsr_error_set(TSR_EDATA, "%s: no readable root attribute model (the graph as JSON)", path);
        goto out;
    }
    if ((rc = tsr_model_spec_from_json(json, &tmp->spec))) {
        rc = tsr_error_prefix(TSR_EDATA, "%s: ", path);
        goto out;
    }
    /* What the graph declares, checked before anything is allocated. */
    tmp->nl = tmp->spec.nlayers;
    tmp->max_batch = 1;
    if (model_build_layers(tmp)) {
        rc = tsr_error_prefix(TSR_EDATA, "%s: ", path);
        goto out;
    }
    size_t declared = 0;
    for (int i = 0; i < tmp->nl; i++) {
        tsr_model_tensor_t t[TSR_MODEL_MAX_TENSORS];
        int nt = tsr_model_tensors(tmp, i, t);
        declared += tmp->layer[i].nparams + tmp->layer[i].nbuffers;
        if (declared > max_params) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: layer %d: the layers up to here declare more than %zu parameters, the "
                               "limit (serve.max_model_params, export --max-params)",
                               path, i, max_params);
            goto out;
        }
        for (int k = 0; k < nt; k++) {
            hsize_t dims[4] = {0};
            snprintf(name, sizeof name, "model/layer_%d/%s", i, t[k].name);
            int link = model_h5_hard_link(f, "model") == 1 ? model_h5_hard_link(f, name) : 0;
            snprintf(name, sizeof name, "model/layer_%d", i);
            if (link == 1 && model_h5_hard_link(f, name) != 1)
                link = -1;
            hid_t d = -1;
            if (link == 1) {
                hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
                d = g >= 0 ? model_h5_open_f32(g, t[k].name, t[k].ndims, dims) : -1;
                if (g >= 0)
                    H5Gclose(g);
            }
            int same = d >= 0;
            size_t nelem = 1;
            for (int j = 0; same && j < t[k].ndims; j++) {
                same = dims[j] == t[k].dims[j];
                nelem *= t[k].dims[j];
            }
            int stored = same && model_h5_check_stored(d, nelem, &raw) == 0;
            if (d >= 0)
                H5Dclose(d);
            if (!stored) {
                rc = tsr_error_set(TSR_EDATA, "%s: /%s/%s: %s", path, name, t[k].name,
                                   link < 0 ? "a soft or external link; a model's layers must be stored in the file "
                                              "itself"
                                   : !same  ? "missing, or not float data of the shape the graph declares"
                                            : "not all stored in the file (missing, external or virtual data)");
                goto out;
            }
        }
    }
    if (H5Fget_filesize(f, &fsize) < 0 || raw > fsize) {
        rc = tsr_error_set(TSR_EDATA, "%s: the datasets claim %llu bytes, more than the file's %llu", path,
                           (unsigned long long)raw, (unsigned long long)fsize);
        goto out;
    }
    tsr_h5_unlock();
    rc = tsr_model_create(&tmp->spec, max_batch, &m);
    tsr_h5_lock();
    if (rc) {
        rc = tsr_error_prefix(rc == TSR_EINVAL ? TSR_EDATA : rc, "%s: ", path);
        goto out;
    }
    for (int i = 0; i < m->nl && !rc; i++) {
        tsr_model_tensor_t t[TSR_MODEL_MAX_TENSORS];
        int nt = tsr_model_tensors(m, i, t);
        for (int k = 0; k < nt && !rc; k++) {
            snprintf(name, sizeof name, "model/layer_%d/%s", i, t[k].name);
            hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
            if (d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t[k].data) < 0)
                rc = tsr_error_set(TSR_EDATA, "%s: reading /%s failed (truncated or damaged file)", path, name);
            if (d >= 0)
                H5Dclose(d);
        }
    }
out:
    free(json);
    free(tmp);
    if (rc) {
        tsr_model_destroy(m);
        return rc;
    }
    *out = m;
    return TSR_OK;
}

/* A FIFO would block the open below and a device would be read forever. */
int tsr_model_load(const char *path, size_t max_batch, tsr_model_t **out)
{
    return tsr_model_load_max(path, max_batch, 0, out);
}

int tsr_model_load_max(const char *path, size_t max_batch, size_t max_params, tsr_model_t **out)
{
    char buf[64];
    hid_t f = -1;
    int rc = tsr_file_check_input(path, "a tessera model file (HDF5)");
    if (rc)
        return rc;
    if (max_params == 0)
        max_params = TSR_MODEL_MAX_PARAMS_DEFAULT;
    tsr_h5_lock();
    if (H5Fis_hdf5(path) <= 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: not an HDF5 file (or not readable); expected a tessera model file", path);
        goto out;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: HDF5 cannot open it (truncated or damaged); expected a tessera model file",
                           path);
        goto out;
    }
    if (tsr_h5_attr_get_str(f, "format", buf, sizeof buf) || strcmp(buf, MODEL_FORMAT) != 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: root attribute format is not \"%s\"", path, MODEL_FORMAT);
        goto out;
    }
    long long version = attr_i64(f, "version");
    if (version == 1 || version < 0) /* files before version 2 may lack it */
        rc = model_load_v1(f, path, max_batch, max_params, out);
    else if (version == MODEL_VERSION)
        rc = load_v2(f, path, max_batch, max_params, out);
    else
        rc = tsr_error_set(TSR_EDATA,
                           "%s: model file format version %lld; this tessera reads versions 1 and %d "
                           "(a newer tessera wrote it)",
                           path, version, MODEL_VERSION);
out:
    if (f >= 0)
        H5Fclose(f);
    tsr_h5_unlock();
    return rc;
}
