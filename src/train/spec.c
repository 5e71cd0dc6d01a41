/* SPDX-License-Identifier: BSD-3-Clause */
/* The model's spec from [model] and the data, with the labels validated
 * against it (setup): the loss by the kind of labels, the output width by
 * the classes or targets; model_config.c builds the layer graph. */
#include "train/setup.h"
#include "tessera/error.h"

#include <string.h>

int tsr_train_model_spec(const tsr_train_ctx_t *ctx, tsr_model_spec_t *spec, size_t *outputs_out)
{
    const tsr_config_t *cfg = ctx->opt->config;
    const tsr_model_options_t *mo = &ctx->opt->model;
    const tsr_train_data_t *d = &ctx->data;
    int labels = tsr_dataset_is_labels(d->train), validate = ctx->opt->data.validate;
    long outputs = mo->outputs;
    const char *lname = tsr_config_get(cfg, "model", "loss");
    tsr_loss_t loss = mo->loss == TSR_LOSS_AUTO ? (labels ? TSR_LOSS_XENT : TSR_LOSS_MSE) : (tsr_loss_t)mo->loss;
    size_t k_out;
    int rc;
    if (loss == TSR_LOSS_XENT && !labels)
        return tsr_error_set(TSR_EDATA,
                             "%s: /y holds float targets but [model] loss = cross_entropy (%s) needs "
                             "int32 class labels",
                             d->path, tsr_config_origin(cfg, "model", "loss"));
    if ((loss == TSR_LOSS_MSE || loss == TSR_LOSS_HUBER) && labels)
        return tsr_error_set(TSR_EDATA,
                             "%s: /y holds class labels but [model] loss = %s (%s) needs float "
                             "targets",
                             d->path, lname, tsr_config_origin(cfg, "model", "loss"));
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
            return tsr_error_set(TSR_EDATA, "%s: /y has only %d class; expected at least 2", d->path, classes);
        if (loss == TSR_LOSS_BCE && classes != 2)
            return tsr_error_set(TSR_EDATA,
                                 "%s: /y has %d classes but [model] loss = bce (%s) on labels needs 0 "
                                 "and 1 (or float targets)",
                                 d->path, classes, tsr_config_origin(cfg, "model", "loss"));
        k_out = loss == TSR_LOSS_BCE ? 1 : (size_t)classes;
    } else {
        size_t k = tsr_dataset_target_dim(d->train);
        if (outputs && (size_t)outputs != k)
            return tsr_error_set(TSR_EINVAL, "[model] outputs = %ld (%s) but %s has %zu targets per row", outputs,
                                 tsr_config_origin(cfg, "model", "outputs"), d->path, k);
        if (validate &&
            ((rc = tsr_dataset_validate(d->train, 0)) || (d->test && (rc = tsr_dataset_validate(d->test, 0)))))
            return rc;
        k_out = k;
    }
    *outputs_out = k_out;
    return tsr_train_model_graph(ctx, k_out, loss, spec);
}
