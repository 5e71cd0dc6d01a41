/* The model's shape from [model] and the data, with the labels validated
 * against it (setup). */
#include "train/setup.h"
#include "tessera/error.h"

#include <string.h>

/* The model's shape from [model] and the data; validates labels against it. */
int tsr_train_model_spec(const tsr_train_ctx_t *ctx, tsr_model_spec_t *spec)
{
    const tsr_config_t *cfg = ctx->opt->config;
    const tsr_model_options_t *mo = &ctx->opt->model;
    const tsr_train_data_t *d = &ctx->data;
    int nh = mo->nhidden, labels = tsr_dataset_is_labels(d->train), validate = ctx->opt->data.validate;
    long outputs = mo->outputs;
    int rc;
    memset(spec, 0, sizeof *spec);
    spec->nlayers = nh + 1;
    spec->sizes[0] = tsr_dataset_dim(d->train);
    for (int i = 0; i < nh; i++)
        spec->sizes[i + 1] = (size_t)mo->hidden[i];
    spec->act = mo->activation;
    spec->loss = mo->loss == TSR_LOSS_AUTO ? (labels ? TSR_LOSS_XENT : TSR_LOSS_MSE) : (tsr_loss_t)mo->loss;
    if (spec->loss == TSR_LOSS_XENT && !labels)
        return tsr_error_set(TSR_EDATA, "%s: /y holds float targets but [model] loss = cross_entropy (%s) needs "
                             "int32 class labels", d->path, tsr_config_origin(cfg, "model", "loss"));
    if (spec->loss == TSR_LOSS_MSE && labels)
        return tsr_error_set(TSR_EDATA, "%s: /y holds class labels but [model] loss = mse (%s) needs float "
                             "targets", d->path, tsr_config_origin(cfg, "model", "loss"));
    if (labels) {
        /* Validation learns the class count; --set model.outputs fixes it. */
        if (validate || outputs == 0) {
            if ((rc = tsr_dataset_validate(d->train, (int)outputs)))
                return rc;
        }
        int classes = outputs ? (int)outputs : tsr_dataset_classes(d->train);
        if (d->test && (rc = tsr_dataset_validate(d->test, classes)))
            return rc;
        if (classes < 2)
            return tsr_error_set(TSR_EDATA, "%s: /y has only %d class; expected at least 2", d->path,
                                 classes);
        spec->sizes[spec->nlayers] = (size_t)classes;
    } else {
        size_t k = tsr_dataset_target_dim(d->train);
        if (outputs && (size_t)outputs != k)
            return tsr_error_set(TSR_EINVAL, "[model] outputs = %ld (%s) but %s has %zu targets per row", outputs,
                                 tsr_config_origin(cfg, "model", "outputs"), d->path, k);
        if (validate &&
            ((rc = tsr_dataset_validate(d->train, 0)) || (d->test && (rc = tsr_dataset_validate(d->test, 0)))))
            return rc;
        spec->sizes[spec->nlayers] = k;
    }
    return TSR_OK;
}

