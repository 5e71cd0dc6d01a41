/* SPDX-License-Identifier: BSD-3-Clause */
/* A user-defined layer for tessera: swish with a learned slope,
 * y = x * sigmoid(beta * x), one parameter beta (starting at 1) shared by
 * the whole layer. Built as a plugin (a shared object) and named in a
 * config: [model] plugins = path/to/libtessera_swish.so, then
 * layers = dense(64) swish dense(10) (or swish(beta0=2) for another start).
 *
 * A plugin exports tessera_plugin_abi and tessera_plugin_kinds; each kind
 * is a struct of function pointers (tessera/layer.h). Tensors are float32,
 * one sample after another, channels last. */
#include <math.h>
#include <tessera/error.h>
#include <tessera/export.h>
#include <tessera/layer.h>

static size_t values(tsr_shape_t s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

/* The output has the input's shape; one trained parameter. */
static int swish_shape(tsr_layer_t *l)
{
    if (!(l->arg[0] > 0))
        return tsr_error_set(TSR_EINVAL, "swish(beta0=%g): expected a starting slope above 0", l->arg[0]);
    l->out = l->in;
    l->nparams = 1;
    return TSR_OK;
}

static void swish_init(tsr_layer_t *l, tsr_rng_t *r)
{
    (void)r;
    l->params[0] = (float)l->arg[0];
}

static int swish_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    float beta = l->params[0];
    for (size_t i = 0; i < n * values(l->in); i++)
        y[i] = x[i] / (1.0f + expf(-beta * x[i]));
    return TSR_OK;
}

/* dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s), s = sigmoid(beta x). */
static int swish_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                          float *dx, size_t n)
{
    (void)run, (void)y;
    float beta = l->params[0];
    double gbeta = 0;
    for (size_t i = 0; i < n * values(l->in); i++) {
        float s = 1.0f / (1.0f + expf(-beta * x[i])), d = s * (1.0f - s);
        gbeta += (double)dy[i] * x[i] * x[i] * d;
        if (dx)
            dx[i] = dy[i] * (s + beta * x[i] * d);
    }
    l->grads[0] = (float)gbeta;
    return TSR_OK;
}

static double swish_flops(const tsr_layer_t *l) { return 4.0 * (double)values(l->in); }

/* Optional: the layer as ONNX nodes for `tessera export --plugins`, from
 * the value named in to the one named out: x * Sigmoid(beta * x). */
static int swish_onnx(const tsr_layer_t *l, void *builder, const char *in, const char *out)
{
    tsr_onnx_t *b = builder;
    const int64_t one[1] = {1};
    const char *beta = tsr_onnx_floats(b, "beta", l->params, one, 1);
    const char *bx = tsr_onnx_value(b, "beta_x"), *s = tsr_onnx_value(b, "sigmoid");
    const char *mul[2] = {beta, in}, *gate[2] = {in, s};
    tsr_onnx_node(b, "Mul", mul, 2, bx);
    tsr_onnx_node(b, "Sigmoid", &bx, 1, s);
    return tsr_onnx_node(b, "Mul", gate, 2, out);
}

static const tsr_layer_kind_t swish = {
    .abi = TSR_LAYER_ABI,
    .name = "swish",
    .args = "beta0=1",
    .flags = TSR_LAYER_NEEDS_X,
    .shape = swish_shape,
    .init = swish_init,
    .forward = swish_forward,
    .backward = swish_backward,
    .flops = swish_flops,
    .onnx = swish_onnx,
};

const int tessera_plugin_abi = TSR_LAYER_ABI;

const tsr_layer_kind_t *const *tessera_plugin_kinds(int *count)
{
    static const tsr_layer_kind_t *const kinds[] = {&swish};
    *count = 1;
    return kinds;
}
