/* SPDX-License-Identifier: BSD-3-Clause */
/* [model] -> the model spec: the layer graph (the layers grammar, a list of
 * dense widths, or hidden), the input shape, the loss's options and the
 * plugins whose kinds the graph may use. */
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/options.h"
#include "common/fileutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "784,256,256,10": the dense widths, input first. */
static int is_width_list(const char *t)
{
    int digits = 0;
    for (; *t; t++) {
        if (isdigit((unsigned char)*t))
            digits = 1;
        else if (*t != ',' && *t != ' ')
            return 0;
    }
    return digits;
}

static int widths(const tsr_train_options_t *o, const char *text, size_t in, size_t outputs, tsr_model_spec_t *spec,
                  tsr_loss_t loss)
{
    const tsr_config_t *cfg = o->config;
    size_t sizes[TSR_MODEL_MAX_LAYERS / 2 + 1];
    int n = 0;
    for (const char *p = text; *p;) {
        char *end;
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        long v = strtol(p, &end, 10);
        if (v < 1 || v > (1L << 24) || n == TSR_MODEL_MAX_LAYERS / 2 + 1)
            return tsr_error_set(TSR_EINVAL, "[model] layers = %s (%s): expected 2 to %d widths of 1 to %ld", text,
                                 tsr_config_origin(cfg, "model", "layers"), TSR_MODEL_MAX_LAYERS / 2, 1L << 24);
        sizes[n++] = (size_t)v;
        p = end;
    }
    if (n < 2)
        return tsr_error_set(TSR_EINVAL,
                             "[model] layers = %s (%s): expected the input width, hidden widths and the "
                             "output width, e.g. 784,256,10",
                             text, tsr_config_origin(cfg, "model", "layers"));
    if (sizes[0] != in || sizes[n - 1] != outputs)
        return tsr_error_set(TSR_EINVAL,
                             "[model] layers = %s (%s): starts at %zu inputs and ends at %zu outputs, "
                             "but the data has %zu features and %zu %s",
                             text, tsr_config_origin(cfg, "model", "layers"), sizes[0], sizes[n - 1], in, outputs,
                             loss == TSR_LOSS_XENT ? "classes" : "outputs");
    tsr_model_spec_mlp(spec, sizes, n - 1, o->model.activation, loss);
    return TSR_OK;
}

/* The per-row shape: model.input, else /X's shape attribute, else flat. */
static int input_shape(const tsr_train_ctx_t *ctx, tsr_shape_t *s)
{
    const tsr_config_t *cfg = ctx->opt->config;
    const char *t = ctx->opt->model.input;
    size_t d = tsr_dataset_dim(ctx->data.train);
    int sh[3];
    *s = (tsr_shape_t){(int)d, 1, 1};
    if (t[0]) {
        int rc = tsr_shape_parse(t, s);
        if (rc)
            return tsr_error_prefix(rc, "[model] input (%s): ", tsr_config_origin(cfg, "model", "input"));
        size_t n = (size_t)s->c * (size_t)s->h * (size_t)s->w;
        if (n != d)
            return tsr_error_set(TSR_EINVAL, "[model] input = %s (%s) has %zu values but the rows of %s have %zu", t,
                                 tsr_config_origin(cfg, "model", "input"), n, ctx->data.path, d);
    } else if (tsr_dataset_shape(ctx->data.train, sh)) {
        *s = (tsr_shape_t){sh[0], sh[1], sh[2]};
    }
    return TSR_OK;
}

static int loss_options(const tsr_train_options_t *o, size_t outputs, tsr_model_spec_t *spec)
{
    const tsr_config_t *cfg = o->config;
    double ls = o->model.label_smoothing;
    if (!(ls >= 0 && ls < 1))
        return tsr_error_set(TSR_EINVAL, "[model] label_smoothing = %g (%s): expected a value in [0, 1)", ls,
                             tsr_config_origin(cfg, "model", "label_smoothing"));
    spec->label_smoothing = (float)ls;
    spec->huber_delta = (float)o->model.huber_delta;
    if (!(spec->huber_delta > 0))
        return tsr_error_set(TSR_EINVAL, "[model] huber_delta = %g (%s): expected a value above 0",
                             (double)spec->huber_delta, tsr_config_origin(cfg, "model", "huber_delta"));
    spec->sync_bn = o->model.sync_bn;
    const char *cw = o->model.class_weights;
    if (!cw[0])
        return TSR_OK;
    for (const char *p = cw; *p;) {
        char *end;
        double w = strtod(p, &end);
        if (end == p || !(w >= 0) || spec->nclass_weights == TSR_MODEL_MAX_CLASS_WEIGHTS)
            return tsr_error_set(TSR_EINVAL,
                                 "[model] class_weights (%s): expected up to %d weights >= 0, "
                                 "comma-separated",
                                 tsr_config_origin(cfg, "model", "class_weights"), TSR_MODEL_MAX_CLASS_WEIGHTS);
        spec->class_weight[spec->nclass_weights++] = (float)w;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if ((size_t)spec->nclass_weights != outputs || spec->loss != TSR_LOSS_XENT)
        return tsr_error_set(TSR_EINVAL,
                             "[model] class_weights (%s) has %d weights; expected one per class (%zu) "
                             "with the cross_entropy loss",
                             tsr_config_origin(cfg, "model", "class_weights"), spec->nclass_weights, outputs);
    return TSR_OK;
}

int tsr_train_model_graph(const tsr_train_ctx_t *ctx, size_t outputs, tsr_loss_t loss, tsr_model_spec_t *spec)
{
    const tsr_train_options_t *o = ctx->opt;
    const tsr_model_options_t *mo = &o->model;
    const char *layers = mo->layers;
    size_t in = tsr_dataset_dim(ctx->data.train);
    int rc = tsr_layer_load_plugins(mo->plugins, mo->plugins_dir);
    if (rc)
        return tsr_error_prefix(rc, "[model] plugins: ");
    memset(spec, 0, sizeof *spec);
    if (!layers[0]) {
        size_t sizes[TSR_MODEL_MAX_LAYERS / 2 + 2];
        int nh = mo->nhidden;
        sizes[0] = in;
        for (int i = 0; i < nh; i++)
            sizes[i + 1] = (size_t)mo->hidden[i];
        sizes[nh + 1] = outputs;
        tsr_model_spec_mlp(spec, sizes, nh + 1, mo->activation, loss);
    } else if (is_width_list(layers)) {
        rc = widths(o, layers, in, outputs, spec, loss);
    } else {
        spec->loss = loss;
        rc = input_shape(ctx, &spec->input);
        if (!rc && (rc = tsr_model_parse(layers, spec)))
            rc = tsr_error_prefix(rc, "%s: ", tsr_config_origin(o->config, "model", "layers"));
    }
    return rc ? rc : loss_options(o, outputs, spec);
}

int tsr_train_check_outputs(const tsr_train_ctx_t *ctx, const tsr_model_t *m, size_t outputs)
{
    size_t k = tsr_model_output_size(m);
    int last = tsr_model_nlayers(m) - 1;
    char text[96];
    if (k == outputs)
        return TSR_OK;
    tsr_layer_spec_text(&tsr_model_spec(m)->layer[last], text, sizeof text);
    return tsr_error_set(TSR_EINVAL,
                         "[model] layers (%s): the last layer, %s (layer %d), gives %zu outputs but %s "
                         "has %zu %s",
                         tsr_config_origin(ctx->opt->config, "model", "layers"), text, last, k, ctx->data.path, outputs,
                         tsr_dataset_is_labels(ctx->data.train) ? "classes" : "targets per row");
}

int tsr_train_model_summary(const tsr_train_options_t *opt, char **text)
{
    tsr_train_ctx_t *ctx = calloc(1, sizeof *ctx);
    tsr_model_spec_t *spec = calloc(1, sizeof *spec);
    tsr_model_t *m = NULL;
    const char *p = opt->data.path;
    int rc = ctx && spec ? TSR_OK : tsr_error_set(TSR_ENOMEM, "out of memory");
    *text = NULL;
    if (!rc && !p[0])
        rc = tsr_error_set(TSR_EINVAL, "[data] path is not set; the summary takes the input shape and classes from "
                                       "the data");
    if (!rc) {
        ctx->opt = opt;
        rc = tsr_path_join(tsr_config_dir(opt->config), p, ctx->data.path, sizeof ctx->data.path);
    }
    /* A memory limit of one byte: streamed, so nothing but shapes is read up front. */
    if (!rc)
        rc = tsr_dataset_open(ctx->data.path, TSR_SPLIT_TRAIN, 1, &ctx->data.train);
    size_t outputs = 0;
    tsr_loss_t loss = TSR_LOSS_MSE;
    if (!rc) {
        long want = opt->model.outputs;
        int labels = tsr_dataset_is_labels(ctx->data.train);
        loss = opt->model.loss == TSR_LOSS_AUTO ? (labels ? TSR_LOSS_XENT : TSR_LOSS_MSE) : (tsr_loss_t)opt->model.loss;
        if (labels && want == 0 && !(rc = tsr_dataset_validate(ctx->data.train, 0)))
            want = tsr_dataset_classes(ctx->data.train);
        outputs = !labels ? tsr_dataset_target_dim(ctx->data.train) : loss == TSR_LOSS_BCE ? 1 : (size_t)want;
    }
    if (!rc)
        rc = tsr_train_model_graph(ctx, outputs, loss, spec);
    if (!rc)
        rc = tsr_model_create(spec, 1, &m);
    if (!rc)
        rc = tsr_train_check_outputs(ctx, m, outputs);
    if (!rc && !(*text = tsr_model_summary(m)))
        rc = tsr_error_set(TSR_ENOMEM, "out of memory");
    tsr_model_destroy(m);
    if (ctx)
        tsr_dataset_destroy(ctx->data.train);
    free(ctx);
    free(spec);
    return rc;
}
