/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera apply predict MODEL`: the model's outputs for every row, through
 * tsr_model_predict, the forward path `tessera serve` answers /predict with
 * (softmax probabilities for classifiers, sigmoid for binary
 * cross-entropy, values for regression), into /pred [rows, outputs]; for
 * cross-entropy models also /label [rows], the index of the largest output
 * (the first of equals). MODEL is a model file, or an id in the registry. */
#include "apply/internal.h"

#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define PREDICT_BATCH 8192

typedef struct predict_ctx {
    tsr_model_t *m;
    size_t k;
    int labels;
} predict_ctx_t;

static int predict_map(void *ctx, const float *x, size_t rows, size_t first_row, void *const *out)
{
    (void)first_row;
    predict_ctx_t *p = ctx;
    float *pred = out[0];
    int rc = tsr_model_predict(p->m, x, rows, pred);
    if (rc || !p->labels)
        return rc;
    int32_t *label = out[1];
    for (size_t r = 0; r < rows; r++) {
        const float *row = pred + r * p->k;
        size_t best = 0;
        for (size_t j = 1; j < p->k; j++)
            if (row[j] > row[best])
                best = j;
        label[r] = (int32_t)best;
    }
    return TSR_OK;
}

/* The model file MODEL names: a file, else a registry id. */
static int model_path(const tsr_apply_opts_t *o, char *buf, size_t len)
{
    struct stat sb;
    if (stat(o->model, &sb) == 0 || !tsr_registry_id_valid(o->model)) {
        snprintf(buf, len, "%s", o->model);
        return TSR_OK;
    }
    const char *dir = o->registry ? o->registry : "registry";
    tsr_registry_t *reg = NULL;
    int rc = tsr_registry_create(dir, &reg);
    if (rc == TSR_OK && !tsr_registry_exists(reg, o->model))
        rc = tsr_error_set(TSR_EDATA, "predict: %s is neither a model file nor a model in the registry %s", o->model,
                           dir);
    if (rc == TSR_OK)
        rc = tsr_registry_model_path(reg, o->model, buf, len);
    tsr_registry_destroy(reg);
    return rc;
}

int apply_predict(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, uint32_t fingerprint)
{
    char path[4096];
    predict_ctx_t p = {0};
    size_t batch = o->partition_rows < PREDICT_BATCH ? o->partition_rows : PREDICT_BATCH;
    int rc = model_path(o, path, sizeof path);
    if (rc == TSR_OK)
        rc = tsr_model_load(path, batch, &p.m);
    if (rc == TSR_OK && tsr_model_input_size(p.m) != in->ncols)
        rc = tsr_error_set(TSR_EDATA, "predict: the model %s takes %zu values per row, but %s:%s gives %zu", path,
                           tsr_model_input_size(p.m), in->path, in->dset, in->ncols);
    rc = apply_agree(comm, rc);
    if (rc) {
        tsr_model_destroy(p.m);
        return rc;
    }
    p.k = tsr_model_output_size(p.m);
    p.labels = tsr_model_spec(p.m)->loss == TSR_LOSS_XENT;
    const char *inputs[] = {in->path, path};
    apply_rows_fn_t fn = {.nout = p.labels ? 2 : 1,
                          .out = {{"/pred", H5T_NATIVE_FLOAT, p.k}, {"/label", H5T_NATIVE_INT32, 0}},
                          .map = predict_map,
                          .ctx = &p,
                          .inputs = inputs,
                          .ninputs = 2};
    rc = apply_rows_run(comm, in, o->partition_rows, o->output, fingerprint, &fn);
    tsr_model_destroy(p.m);
    return rc;
}
