/* SPDX-License-Identifier: BSD-3-Clause */
/* Model files of format version 1 (tessera before layer graphs): dense
 * layers only, /model/layer_<i>/{weight [out, in], bias [out]} with the
 * hidden activation as an attribute. They load into the equivalent graph
 * (dense and activation layers), whose parameters lie in the same order. */
#include "model/internal.h"
#include "model/model_h5.h"
#include "tessera/error.h"
#include "common/h5io.h"
#include "common/h5lock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXD 32 /* the limit of tessera before graphs */

/* The parameters dense layers sizes[0..n] declare, or SIZE_MAX when they overflow. */
static size_t declared_params(const size_t *sizes, int nl)
{
    size_t n = 0;
    for (int i = 0; i < nl; i++) {
        size_t in = sizes[i], out = sizes[i + 1];
        if (in && out > (SIZE_MAX - n) / (in + 1))
            return SIZE_MAX;
        n += out * (in + 1);
    }
    return n;
}

/* Reads a version-1 file already open as f (under the HDF5 lock). */
int model_load_v1(hid_t f, const char *path, size_t max_batch, size_t max_params, tsr_model_t **out)
{
    char name[64];
    size_t sizes[MAXD + 1] = {0};
    int nl = 0;
    tsr_act_t act = TSR_ACT_NONE;
    tsr_model_spec_t *spec = NULL;
    tsr_model_t *m = NULL;
    hid_t wd[MAXD] = {0}, bd[MAXD] = {0};
    hsize_t raw = 0, fsize = 0;
    int rc = TSR_OK;
    int has_model = model_h5_hard_link(f, "model");
    if (has_model < 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: /model is a soft or external link; expected a group in the file", path);
        goto out;
    }
    for (int i = 0; i <= MAXD; i++) {
        hsize_t w[2], b[1];
        char a[32] = "none";
        snprintf(name, sizeof name, "model/layer_%d", i);
        int link = has_model ? model_h5_hard_link(f, name) : 0;
        if (link == 0)
            break;
        if (i == MAXD) {
            rc = tsr_error_set(TSR_EDATA, "%s: more than %d layers", path, MAXD);
            goto out;
        }
        hid_t g = link == 1 ? H5Gopen2(f, name, H5P_DEFAULT) : -1;
        if (link < 0 || (g >= 0 && (model_h5_hard_link(g, "weight") < 0 || model_h5_hard_link(g, "bias") < 0))) {
            if (g >= 0)
                H5Gclose(g);
            rc = tsr_error_set(TSR_EDATA,
                               "%s: /%s: a soft or external link; a model's layers must be stored in "
                               "the file itself",
                               path, name);
            goto out;
        }
        wd[i] = g >= 0 ? model_h5_open_f32(g, "weight", 2, w) : -1;
        bd[i] = g >= 0 ? model_h5_open_f32(g, "bias", 1, b) : -1;
        if (g >= 0) {
            tsr_h5_attr_get_str(g, "activation", a, sizeof a);
            H5Gclose(g);
        }
        if (wd[i] < 0 || bd[i] < 0 || b[0] != w[0] || (i > 0 && w[1] != sizes[i])) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: /%s: expected float weight [out, in] and bias [out] matching the "
                               "previous layer",
                               path, name);
            goto out;
        }
        if (i == 0)
            sizes[0] = w[1];
        sizes[i + 1] = w[0];
        nl = i + 1;
        if (i == 0 && tsr_act_parse(a) > 0)
            act = (tsr_act_t)tsr_act_parse(a);
        if (w[0] > SIZE_MAX / 2 || w[1] > SIZE_MAX / 2 || declared_params(sizes, nl) > max_params) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: /%s: the layers up to here declare more than %zu parameters, the "
                               "limit (serve.max_model_params, export --max-params)",
                               path, name, max_params);
            goto out;
        }
        if (model_h5_check_stored(wd[i], w[0] * w[1], &raw) || model_h5_check_stored(bd[i], b[0], &raw)) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: /%s: declares %llu x %llu weights that are not all stored in the "
                               "file (missing, external or virtual data)",
                               path, name, (unsigned long long)w[0], (unsigned long long)w[1]);
            goto out;
        }
    }
    if (nl == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: no /model/layer_0; expected a tessera model file", path);
        goto out;
    }
    if (H5Fget_filesize(f, &fsize) < 0 || raw > fsize) {
        rc = tsr_error_set(TSR_EDATA, "%s: the datasets claim %llu bytes, more than the file's %llu", path,
                           (unsigned long long)raw, (unsigned long long)fsize);
        goto out;
    }
    {
        /* The loss is not stored per layer; the spec JSON names it. */
        char json[8192] = "";
        tsr_h5_attr_get_str(f, "model", json, sizeof json);
        spec = calloc(1, sizeof *spec);
        if (!spec) {
            rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        tsr_model_spec_mlp(spec, sizes, nl, act, strstr(json, "\"loss\":\"mse\"") ? TSR_LOSS_MSE : TSR_LOSS_XENT);
    }
    tsr_h5_unlock();
    rc = tsr_model_create(spec, max_batch, &m);
    tsr_h5_lock();
    if (rc) {
        /* A spec the file declares is bad data, not bad configuration. */
        if (rc == TSR_EINVAL)
            rc = tsr_error_prefix(TSR_EDATA, "%s: ", path);
        goto out;
    }
    for (int i = 0, li = 0; i < nl; i++, li++) {
        while (tsr_model_layer(m, li)->nparams == 0)
            li++;
        float *w = tsr_model_params(m) + tsr_model_layer_offset(m, li);
        if (H5Dread(wd[i], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) < 0 ||
            H5Dread(bd[i], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w + sizes[i] * sizes[i + 1]) < 0) {
            rc = tsr_error_set(TSR_EDATA, "%s: reading /model/layer_%d failed (truncated or damaged file)", path, i);
            goto out;
        }
    }
out:
    for (int i = 0; i < MAXD; i++) {
        if (wd[i] > 0)
            H5Dclose(wd[i]);
        if (bd[i] > 0)
            H5Dclose(bd[i]);
    }
    free(spec);
    if (rc) {
        tsr_model_destroy(m);
        return rc;
    }
    *out = m;
    return TSR_OK;
}
