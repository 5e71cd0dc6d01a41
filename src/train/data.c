/* SPDX-License-Identifier: BSD-3-Clause */
/* The run's data (setup): the output checked against its inputs, the
 * splits opened, this rank's slice of the test split read once. */
#include "train/setup.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Finding out after hours of training that the model cannot be written, or
 * that writing it replaces one of the run's own inputs, is too late: check
 * the output up front (the writer checks again when it renames). */
static int check_output(const tsr_train_ctx_t *ctx)
{
    const tsr_config_t *cfg = ctx->opt->config;
    const tsr_train_data_t *d = &ctx->data;
    char dir[4096];
    const char *out = ctx->opt->train.output, *origin = tsr_config_origin(cfg, "train", "output");
    const char *resume = ctx->opt->checkpoint.resume;
    const char *ckdir = ctx->opt->checkpoint.engine.dir;
    if (!out[0])
        return tsr_error_set(TSR_EINVAL, "[train] output is empty; expected a model file path");
    const char *inputs[4] = {d->path, d->test_path, tsr_config_file(cfg),
                             strcmp(resume, "none") && strcmp(resume, "auto") ? resume : NULL};
    int rc = tsr_file_check_output(out, inputs, 4);
    if (rc)
        return tsr_error_prefix(rc, "[train] output (%s): ", origin);
    /* Checkpoints replace ckpt-<step>.h5 files there and retention deletes
     * old ones: neither the model nor an input may carry such a name. */
    const char *const owned[4] = {out, d->path, d->test_path, tsr_config_file(cfg)};
    const char *const role[4] = {"[train] output", "[data] path", "[data] test_path", "the config file"};
    for (int i = 0; i < 4; i++)
        if (owned[i][0] && tsr_ckpt_dir_owns(ckdir, owned[i]))
            return tsr_error_set(TSR_EINVAL,
                                 "%s %s is named like a checkpoint in [checkpoint] dir = %s, where "
                                 "checkpoints are replaced and old ones deleted; use another name or directory",
                                 role[i], owned[i], ckdir);
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0)
        return tsr_error_set(TSR_EIO, "[train] output = %s (%s): directory %s is not writable: %s", out, origin, dir,
                             strerror(errno));
    return TSR_OK;
}

int tsr_train_data_open(tsr_train_ctx_t *ctx)
{
    const tsr_config_t *cfg = ctx->opt->config;
    tsr_train_data_t *d = &ctx->data;
    const char *p = ctx->opt->data.path, *tp = ctx->opt->data.test_path;
    size_t limit = ctx->opt->data.memory_limit;
    int rc;
    if (!p[0])
        return tsr_error_set(TSR_EINVAL, "[data] path is not set; expected the HDF5 dataset to train on");
    if ((rc = tsr_path_join(tsr_config_dir(cfg), p, d->path, sizeof d->path)))
        return rc;
    if (tp[0] && (rc = tsr_path_join(tsr_config_dir(cfg), tp, d->test_path, sizeof d->test_path)))
        return rc;
    if ((rc = check_output(ctx)))
        return rc;
    if ((rc = tsr_dataset_open(d->path, TSR_SPLIT_TRAIN, limit, &d->train)))
        return rc;
    if (tp[0]) {
        rc = tsr_dataset_open(d->test_path, tsr_dataset_has_test(d->test_path) ? TSR_SPLIT_TEST : TSR_SPLIT_TRAIN,
                              limit, &d->test);
    } else if (tsr_dataset_has_test(d->path)) {
        snprintf(d->test_path, sizeof d->test_path, "%s", d->path);
        rc = tsr_dataset_open(d->path, TSR_SPLIT_TEST, limit, &d->test);
    }
    if (rc)
        return rc;
    if (d->test && (tsr_dataset_dim(d->test) != tsr_dataset_dim(d->train) ||
                    tsr_dataset_is_labels(d->test) != tsr_dataset_is_labels(d->train) ||
                    tsr_dataset_target_dim(d->test) != tsr_dataset_target_dim(d->train)))
        return tsr_error_set(TSR_EDATA,
                             "%s: the test split has %zu features and %s; expected %zu and %s like the "
                             "training split",
                             d->test_path, tsr_dataset_dim(d->test),
                             tsr_dataset_is_labels(d->test) ? "labels" : "targets", tsr_dataset_dim(d->train),
                             tsr_dataset_is_labels(d->train) ? "labels" : "targets");
    return TSR_OK;
}

int tsr_train_data_test_slice(tsr_train_ctx_t *ctx)
{
    tsr_train_data_t *d = &ctx->data;
    if (!d->test || !ctx->opt->train.eval)
        return TSR_OK;
    size_t t = tsr_dataset_rows(d->test), dim = tsr_dataset_dim(d->test), k = tsr_dataset_target_dim(d->test);
    size_t lo = t * (size_t)ctx->rank / (size_t)ctx->world, hi = t * (size_t)(ctx->rank + 1) / (size_t)ctx->world;
    d->test_total = t;
    d->test_rows = hi - lo;
    if (d->test_rows == 0)
        return TSR_OK;
    d->test_x = malloc(d->test_rows * dim * sizeof(float));
    if (tsr_dataset_is_labels(d->test))
        d->test_y = malloc(d->test_rows * sizeof(int32_t));
    else
        d->test_t = malloc(d->test_rows * k * sizeof(float));
    if (!d->test_x || (!d->test_y && !d->test_t))
        return tsr_error_set(TSR_ENOMEM, "out of memory for %zu test rows", d->test_rows);
    return tsr_dataset_read(d->test, lo, d->test_rows, d->test_x, d->test_y, d->test_t);
}

void tsr_train_data_close(tsr_train_ctx_t *ctx)
{
    tsr_train_data_t *d = &ctx->data;
    tsr_loader_destroy(d->loader);
    tsr_dataset_destroy(d->test);
    tsr_dataset_destroy(d->train);
    free(d->test_x);
    free(d->test_y);
    free(d->test_t);
    memset(d, 0, sizeof *d);
}
