/* SPDX-License-Identifier: BSD-3-Clause */
/* Each built-in layer kind as opset-13 ONNX nodes, and plugin kinds
 * through their onnx hook. tessera works channels last and keeps flat rows
 * and (c, 1, 1) shapes alike; the graph works channels first, so a value is
 * either [N, C, H, W] or [N, D] (onnx_val_t.rank4) and is moved between
 * the two only where a layer needs it: a flat [N, D] whose shape has
 * h * w > 1 is always in tessera's order (h, w, c), which is what makes
 * dense after flatten, ln and res agree with tessera's own arithmetic. */
#include "export/onnx_layers.h"

#include <math.h>
#include <string.h>

/* To [N, C, H, W]: a flat value here always has h = w = 1 (or is the input row,
 * channels first), so a Reshape is the whole move. */
static void to4(tsr_onnx_t *b, onnx_val_t *v, tsr_shape_t s)
{
    if (v->rank4)
        return;
    int64_t dims[4] = {-1, s.c, s.h, s.w};
    v->name = onnx_op2(b, "Reshape", v->name, onnx_int64s(b, "shape4", dims, 4));
    v->rank4 = 1;
}

/* To [N, D] in tessera's order (h, w, c). */
void onnx_to_flat(tsr_onnx_t *b, onnx_val_t *v, tsr_shape_t s)
{
    if (!v->rank4)
        return;
    if (s.h * s.w > 1) {
        v->name = onnx_op1(b, "Transpose", v->name);
        tsr_onnx_attr_ints(b, "perm", (const int64_t[]){0, 2, 3, 1}, 4);
    }
    v->name = onnx_op1(b, "Flatten", v->name);
    tsr_onnx_attr_int(b, "axis", 1);
    v->rank4 = 0;
}

/* Per-sample values stored channels last, as the current value's layout:
 * [C, H, W] for a 4-D value, [D] for a flat one. */
static const char *per_sample(tsr_onnx_t *b, const char *what, const float *p, tsr_shape_t s, int rank4, float *tmp)
{
    size_t C = (size_t)s.c, hw = (size_t)s.h * (size_t)s.w;
    if (!rank4)
        return tsr_onnx_floats(b, what, p, (const int64_t[]){(int64_t)(C * hw)}, 1);
    for (size_t c = 0; c < C; c++)
        for (size_t q = 0; q < hw; q++)
            tmp[c * hw + q] = p[q * C + c];
    return tsr_onnx_floats(b, what, tmp, (const int64_t[]){s.c, s.h, s.w}, 3);
}

static void dense(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out)
{
    int64_t in = (int64_t)l->in.c * l->in.h * l->in.w, o = l->out.c;
    onnx_to_flat(b, v, l->in);
    const char *w = tsr_onnx_floats(b, "weight", l->params, (const int64_t[]){o, in}, 2);
    const char *bias = tsr_onnx_floats(b, "bias", l->params + o * in, (const int64_t[]){o}, 1);
    const char *ins[3] = {v->name, w, bias};
    tsr_onnx_node(b, "Gemm", ins, 3, out);
    tsr_onnx_attr_int(b, "transB", 1); /* W is [out, in], ONNX's B^T */
}

/* Weights [out, k, k, in/groups] (channels last) to ONNX's [out, in/groups, k, k]. */
static void conv(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out, float *tmp)
{
    int64_t O = l->out.c, k = (int64_t)l->arg[1], st = (int64_t)l->arg[2], pad = (int64_t)l->arg[3];
    int64_t dil = (int64_t)l->arg[4], g = (int64_t)l->arg[5], cg = l->in.c / g;
    to4(b, v, l->in);
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < cg; i++)
            for (int64_t q = 0; q < k * k; q++)
                tmp[(o * cg + i) * k * k + q] = l->params[(o * k * k + q) * cg + i];
    const char *w = tsr_onnx_floats(b, "weight", tmp, (const int64_t[]){O, cg, k, k}, 4);
    const char *bias = tsr_onnx_floats(b, "bias", l->params + O * cg * k * k, (const int64_t[]){O}, 1);
    const char *ins[3] = {v->name, w, bias};
    tsr_onnx_node(b, "Conv", ins, 3, out);
    tsr_onnx_attr_ints(b, "kernel_shape", (const int64_t[]){k, k}, 2);
    tsr_onnx_attr_ints(b, "strides", (const int64_t[]){st, st}, 2);
    tsr_onnx_attr_ints(b, "pads", (const int64_t[]){pad, pad, pad, pad}, 4);
    tsr_onnx_attr_ints(b, "dilations", (const int64_t[]){dil, dil}, 2);
    tsr_onnx_attr_int(b, "group", g);
}

/* tessera pools without padding and rounds the output size down, and its
 * average always divides by k * k: ONNX's defaults (pads 0, ceil_mode 0). */
static void pool(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out, const char *op)
{
    int64_t k = (int64_t)l->arg[0], st = l->arg[1] > 0 ? (int64_t)l->arg[1] : k;
    to4(b, v, l->in);
    tsr_onnx_node(b, op, &v->name, 1, out);
    tsr_onnx_attr_ints(b, "kernel_shape", (const int64_t[]){k, k}, 2);
    tsr_onnx_attr_ints(b, "strides", (const int64_t[]){st, st}, 2);
    tsr_onnx_attr_ints(b, "pads", (const int64_t[]){0, 0, 0, 0}, 4);
    tsr_onnx_attr_int(b, "ceil_mode", 0);
}

/* Evaluation form: (x - running_mean) / sqrt(running_var + eps) * gamma + beta,
 * per channel (axis 1 in both layouts). */
static void bn(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out)
{
    int64_t C[1] = {l->in.c};
    const char *ins[5] = {v->name, tsr_onnx_floats(b, "weight", l->params, C, 1),
                          tsr_onnx_floats(b, "bias", l->params + C[0], C, 1),
                          tsr_onnx_floats(b, "running_mean", l->buffers, C, 1),
                          tsr_onnx_floats(b, "running_var", l->buffers + C[0], C, 1)};
    tsr_onnx_node(b, "BatchNormalization", ins, 5, out);
    tsr_onnx_attr_float(b, "epsilon", (float)l->arg[1]);
}

/* LayerNormalization is opset 17: its arithmetic over every value of the
 * sample, with gamma and beta laid out as the value is. */
static void ln(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out, float *tmp)
{
    size_t f = (size_t)l->in.c * (size_t)l->in.h * (size_t)l->in.w;
    const int64_t axes[3] = {1, 2, 3};
    int nax = v->rank4 ? 3 : 1;
    const char *mean = onnx_op1(b, "ReduceMean", v->name);
    tsr_onnx_attr_ints(b, "axes", axes, nax);
    tsr_onnx_attr_int(b, "keepdims", 1);
    const char *d = onnx_op2(b, "Sub", v->name, mean);
    const char *var = onnx_op1(b, "ReduceMean", onnx_op2(b, "Mul", d, d));
    tsr_onnx_attr_ints(b, "axes", axes, nax);
    tsr_onnx_attr_int(b, "keepdims", 1);
    const char *sd = onnx_op1(b, "Sqrt", onnx_op2(b, "Add", var, onnx_scalar(b, "eps", (float)l->arg[0])));
    const char *gamma = per_sample(b, "weight", l->params, l->in, v->rank4, tmp);
    const char *beta = per_sample(b, "bias", l->params + f, l->in, v->rank4, tmp);
    const char *ins[2] = {onnx_op2(b, "Mul", onnx_op2(b, "Div", d, sd), gamma), beta};
    tsr_onnx_node(b, "Add", ins, 2, out);
}

/* Token ids (floats in the input row) to vectors: Cast, Gather, and the
 * [N, t, dim] result laid out as the shape (dim, 1, t) channels first. */
static void embed(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out)
{
    int64_t vocab = (int64_t)l->arg[0], dim = (int64_t)l->arg[1], t = l->in.c;
    const char *ids = onnx_op1(b, "Cast", v->name);
    tsr_onnx_attr_int(b, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    const char *w = tsr_onnx_floats(b, "weight", l->params, (const int64_t[]){vocab, dim}, 2);
    const char *rows = onnx_op2(b, "Gather", w, ids);
    tsr_onnx_attr_int(b, "axis", 0);
    const char *nhwc = onnx_op2(b, "Reshape", rows, onnx_int64s(b, "shape4", (const int64_t[]){-1, 1, t, dim}, 4));
    tsr_onnx_node(b, "Transpose", &nhwc, 1, out);
    tsr_onnx_attr_ints(b, "perm", (const int64_t[]){0, 3, 1, 2}, 4);
    v->rank4 = 1;
}

/* gelu as tessera computes it (erf form): 0.5 x (1 + erf(x / sqrt 2)). */
static void gelu(tsr_onnx_t *b, onnx_val_t *v, const char *out)
{
    const char *e = onnx_op1(b, "Erf", onnx_op2(b, "Mul", v->name, onnx_scalar(b, "rsqrt2", 0.70710678118654752f)));
    const char *h =
        onnx_op2(b, "Mul", onnx_op2(b, "Add", e, onnx_scalar(b, "one", 1.0f)), onnx_scalar(b, "half", 0.5f));
    const char *ins[2] = {v->name, h};
    tsr_onnx_node(b, "Mul", ins, 2, out);
}

int onnx_layer(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out, float *tmp)
{
    const char *k = l->kind->name;
    static const char *const unary[][2] = {{"relu", "Relu"}, {"tanh", "Tanh"}, {"sigmoid", "Sigmoid"}};
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        if (strcmp(k, unary[i][0]) == 0) {
            tsr_onnx_node(b, unary[i][1], &v->name, 1, out);
            v->name = out;
            return b->rc;
        }
    if (strcmp(k, "dropout") == 0) /* identity in evaluation */
        return b->rc;
    if (strcmp(k, "flatten") == 0) {
        onnx_to_flat(b, v, l->in);
        return b->rc;
    }
    if (strcmp(k, "dense") == 0) {
        dense(b, l, v, out);
    } else if (strcmp(k, "conv") == 0) {
        conv(b, l, v, out, tmp);
    } else if (strcmp(k, "maxpool") == 0 || strcmp(k, "avgpool") == 0) {
        pool(b, l, v, out, k[0] == 'm' ? "MaxPool" : "AveragePool");
    } else if (strcmp(k, "gap") == 0) {
        to4(b, v, l->in);
        tsr_onnx_node(b, "GlobalAveragePool", &v->name, 1, out);
    } else if (strcmp(k, "bn") == 0) {
        bn(b, l, v, out);
    } else if (strcmp(k, "ln") == 0) {
        ln(b, l, v, out, tmp);
    } else if (strcmp(k, "embed") == 0) {
        embed(b, l, v, out);
    } else if (strcmp(k, "gelu") == 0) {
        gelu(b, v, out);
    } else if (strcmp(k, "silu") == 0) { /* x * sigmoid(x) */
        const char *ins[2] = {v->name, onnx_op1(b, "Sigmoid", v->name)};
        tsr_onnx_node(b, "Mul", ins, 2, out);
    } else if (l->kind->onnx) {
        if (l->in.h * l->in.w > 1)
            to4(b, v, l->in);
        else
            onnx_to_flat(b, v, l->in);
        int rc = b->rc ? b->rc : l->kind->onnx(l, b, v->name, out);
        if (rc && !b->rc)
            b->rc = tsr_error_prefix(rc, "export: layer %d (%s), the plugin's onnx hook: ", l->index, k);
        v->rank4 = l->out.h * l->out.w > 1;
    } else if (!b->rc) {
        b->rc = tsr_error_set(TSR_ENOTSUP,
                              "export: layer %d (%s) is a plugin kind without an ONNX form (its "
                              "kind's onnx hook is NULL)",
                              l->index, k);
    }
    v->name = out;
    return b->rc;
}
