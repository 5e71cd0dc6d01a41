/* Model files in HDF5: /model/layer_<i>/{weight,bias} and root attributes. */
#include "tessera/model.h"
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
#define MODEL_VERSION 1

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
    char json[8192], name[64], when[32];
    const tsr_model_spec_t *s = tsr_model_spec(m);
    const float *p = tsr_model_params(m);
    int rc;
    if (tsr_model_spec_json(s, json, sizeof json) < 0)
        return TSR_EINVAL;
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

    tsr_h5_lock();
    tsr_h5_image_t image = {0};
    hid_t f = tsr_h5_mem_create(&image, tsr_model_nparams(m) * sizeof(float)), g = -1;
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
    for (int i = 0; ok && i < s->nlayers; i++) {
        size_t in = s->sizes[i], out = s->sizes[i + 1];
        const float *w = p + tsr_model_layer_offset(m, i);
        snprintf(name, sizeof name, "layer_%d", i);
        hid_t lg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t wd[2] = {out, in}, bd[1] = {out};
        ok = lg >= 0 && write_f32(lg, "weight", 2, wd, w) == 0 && write_f32(lg, "bias", 1, bd, w + in * out) == 0 &&
             tsr_h5_attr_put_str(lg, "type", "dense") == 0 &&
             tsr_h5_attr_put_str(lg, "activation", tsr_act_name(i < s->nlayers - 1 ? s->act : TSR_ACT_NONE)) == 0;
        if (lg >= 0)
            H5Gclose(lg);
    }
    if (g >= 0)
        H5Gclose(g);
    if (f >= 0 && tsr_h5_mem_finish(f, path, &image) != TSR_OK)
        ok = 0;
    tsr_h5_unlock();
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
static int hard_link(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return 0;
    H5L_info_t li;
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0 || li.type != H5L_TYPE_HARD)
        return -1;
    return 1;
}

/* Opens a 1-D or 2-D float dataset and reads its dims; returns its id or -1. */
static hid_t open_f32(hid_t loc, const char *name, int rank, hsize_t *dims)
{
    if (hard_link(loc, name) != 1)
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
static int check_stored(hid_t d, hsize_t nelem, hsize_t *raw)
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

/* The parameters a spec declares, or (size_t)-1 when they overflow. */
static size_t declared_params(const tsr_model_spec_t *s)
{
    size_t n = 0;
    for (int i = 0; i < s->nlayers; i++) {
        size_t in = s->sizes[i], out = s->sizes[i + 1];
        if (in && out > (SIZE_MAX - n) / (in + 1))
            return SIZE_MAX;
        n += out * (in + 1);
    }
    return n;
}

/* A FIFO would block the open below and a device would be read forever. */
int tsr_model_load(const char *path, size_t max_batch, tsr_model_t **out)
{
    return tsr_model_load_max(path, max_batch, 0, out);
}

int tsr_model_load_max(const char *path, size_t max_batch, size_t max_params, tsr_model_t **out)
{
    char buf[64], name[64];
    tsr_model_spec_t spec = {0};
    tsr_model_t *m = NULL;
    hid_t f = -1, wd[TSR_MODEL_MAX_LAYERS] = {0}, bd[TSR_MODEL_MAX_LAYERS] = {0};
    hsize_t raw = 0, fsize = 0;
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
    int has_model = hard_link(f, "model");
    if (has_model < 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: /model is a soft or external link; expected a group in the file", path);
        goto out;
    }
    spec.act = TSR_ACT_NONE;
    for (int i = 0; i <= TSR_MODEL_MAX_LAYERS; i++) {
        hsize_t w[2], b[1];
        char act[32] = "none";
        snprintf(name, sizeof name, "model/layer_%d", i);
        int link = has_model ? hard_link(f, name) : 0;
        if (link == 0)
            break;
        if (i == TSR_MODEL_MAX_LAYERS) {
            rc = tsr_error_set(TSR_EDATA, "%s: more than %d layers", path, TSR_MODEL_MAX_LAYERS);
            goto out;
        }
        hid_t g = link == 1 ? H5Gopen2(f, name, H5P_DEFAULT) : -1;
        if (link < 0 || (g >= 0 && (hard_link(g, "weight") < 0 || hard_link(g, "bias") < 0))) {
            if (g >= 0)
                H5Gclose(g);
            rc = tsr_error_set(TSR_EDATA, "%s: /%s: a soft or external link; a model's layers must be stored in "
                               "the file itself", path, name);
            goto out;
        }
        wd[i] = g >= 0 ? open_f32(g, "weight", 2, w) : -1;
        bd[i] = g >= 0 ? open_f32(g, "bias", 1, b) : -1;
        if (g >= 0) {
            tsr_h5_attr_get_str(g, "activation", act, sizeof act);
            H5Gclose(g);
        }
        if (wd[i] < 0 || bd[i] < 0 || b[0] != w[0] || (i > 0 && w[1] != spec.sizes[i])) {
            rc = tsr_error_set(TSR_EDATA, "%s: /%s: expected float weight [out, in] and bias [out] matching the "
                               "previous layer", path, name);
            goto out;
        }
        if (i == 0)
            spec.sizes[0] = w[1];
        spec.sizes[i + 1] = w[0];
        spec.nlayers = i + 1;
        if (i == 0 && tsr_act_parse(act) > 0)
            spec.act = (tsr_act_t)tsr_act_parse(act);
        if (w[0] > SIZE_MAX / 2 || w[1] > SIZE_MAX / 2 || declared_params(&spec) > max_params) {
            rc = tsr_error_set(TSR_EDATA, "%s: /%s: the layers up to here declare more than %zu parameters, the "
                               "limit (serve.max_model_params, export --max-params)", path, name, max_params);
            goto out;
        }
        if (check_stored(wd[i], w[0] * w[1], &raw) || check_stored(bd[i], b[0], &raw)) {
            rc = tsr_error_set(TSR_EDATA, "%s: /%s: declares %llu x %llu weights that are not all stored in the "
                               "file (missing, external or virtual data)", path, name, (unsigned long long)w[0],
                               (unsigned long long)w[1]);
            goto out;
        }
    }
    if (spec.nlayers == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: no /model/layer_0; expected a tessera model file", path);
        goto out;
    }
    if (H5Fget_filesize(f, &fsize) < 0 || raw > fsize) {
        rc = tsr_error_set(TSR_EDATA, "%s: the datasets claim %llu bytes, more than the file's %llu", path,
                           (unsigned long long)raw, (unsigned long long)fsize);
        goto out;
    }
    /* The loss is not stored per layer; the spec JSON names it. */
    {
        char json[8192] = "";
        tsr_h5_attr_get_str(f, "model", json, sizeof json);
        spec.loss = strstr(json, "\"loss\":\"mse\"") ? TSR_LOSS_MSE : TSR_LOSS_XENT;
    }
    tsr_h5_unlock();
    rc = tsr_model_create(&spec, max_batch, &m);
    tsr_h5_lock();
    if (rc) {
        /* A spec the file declares is bad data, not bad configuration. */
        if (rc == TSR_EINVAL)
            rc = tsr_error_prefix(TSR_EDATA, "%s: ", path);
        goto out;
    }
    for (int i = 0; i < spec.nlayers; i++) {
        float *w = tsr_model_params(m) + tsr_model_layer_offset(m, i);
        if (H5Dread(wd[i], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) < 0 ||
            H5Dread(bd[i], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w + spec.sizes[i] * spec.sizes[i + 1]) <
                0) {
            rc = tsr_error_set(TSR_EDATA, "%s: reading /model/layer_%d failed (truncated or damaged file)", path, i);
            goto out;
        }
    }
out:
    for (int i = 0; i < TSR_MODEL_MAX_LAYERS; i++) {
        if (wd[i] > 0)
            H5Dclose(wd[i]);
        if (bd[i] > 0)
            H5Dclose(bd[i]);
    }
    if (f >= 0)
        H5Fclose(f);
    tsr_h5_unlock();
    if (rc) {
        tsr_model_destroy(m);
        return rc;
    }
    *out = m;
    return TSR_OK;
}
