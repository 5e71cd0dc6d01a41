/* Model files in HDF5: /model/layer_<i>/{weight,bias} and root attributes. */
#include "tessera/model.h"
#include "tessera/error.h"
#include "common/fileutil.h"
#include "common/h5attr.h"
#include "common/h5lock.h"
#include "common/h5mem.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Reads the dims of a 1-D or 2-D float dataset; returns its id or -1. */
static hid_t open_f32(hid_t loc, const char *name, int rank, hsize_t *dims)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
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

int tsr_model_load(const char *path, size_t max_batch, tsr_model_t **out)
{
    char buf[64], name[64];
    tsr_model_spec_t spec = {0};
    tsr_model_t *m = NULL;
    hid_t f = -1, wd[TSR_MODEL_MAX_LAYERS] = {0}, bd[TSR_MODEL_MAX_LAYERS] = {0};
    int rc = tsr_file_check_input(path, "a tessera model file (HDF5)");
    if (rc)
        return rc;

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
    spec.act = TSR_ACT_NONE;
    for (int i = 0; i < TSR_MODEL_MAX_LAYERS; i++) {
        hsize_t w[2], b[1];
        char act[32] = "none";
        snprintf(name, sizeof name, "model/layer_%d", i);
        if (H5Lexists(f, "model", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0)
            break;
        hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
        wd[i] = open_f32(g, "weight", 2, w);
        bd[i] = open_f32(g, "bias", 1, b);
        tsr_h5_attr_get_str(g, "activation", act, sizeof act);
        H5Gclose(g);
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
    }
    if (spec.nlayers == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: no /model/layer_0; expected a tessera model file", path);
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
    if (rc)
        goto out;
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
