/* SPDX-License-Identifier: BSD-3-Clause */
/* Layer kinds: the extension point of tessera's model graph.
 *
 * A model is a sequence of layers (with residual blocks) over one flat
 * parameter buffer and one flat gradient buffer. Every layer, built-in or
 * user-defined, is an instance of a kind: a struct of function pointers that
 * says what shape the layer gives for a given input, how many parameters and
 * buffers it owns, how they start, and how to run forward and backward.
 *
 * Tensors are float32, one sample after another. A sample of shape (c, h, w)
 * is stored channels last: element (c', h', w') at (h' * w + w') * c + c'
 * (NHWC), so a flat vector of d features is the shape (d, 1, 1).
 *
 * User-defined kinds come from plugins: a shared object named in
 * `[model] plugins = path/to/libmine.so` that exports
 *     const int tessera_plugin_abi = TSR_LAYER_ABI;
 *     const tsr_layer_kind_t *const *tessera_plugin_kinds(int *count);
 * tessera dlopens it on every rank, refuses a different ABI version, and adds
 * the kinds by name (a plugin may not replace a built-in kind). See
 * examples/plugin/ for a complete one built with find_package(tessera). */
#ifndef TESSERA_LAYER_H
#define TESSERA_LAYER_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/rng.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever tsr_layer_t or tsr_layer_kind_t change layout. */
#define TSR_LAYER_ABI 1
#define TSR_LAYER_MAX_ARGS 8

typedef struct tsr_shape {
    int c, h, w;
} tsr_shape_t;

typedef struct tsr_layer_kind tsr_layer_kind_t;

/* One layer of a model. The kind's shape function fills out, nparams,
 * nbuffers, state_floats and ws_floats; the model then points params,
 * grads, buffers and state at memory it owns. */
typedef struct tsr_layer {
    const tsr_layer_kind_t *kind;
    int index;                      /* position in the model's layer list */
    double arg[TSR_LAYER_MAX_ARGS]; /* arguments in the order of kind->args */
    tsr_shape_t in, out;            /* per sample */
    size_t max_batch;
    size_t nparams;      /* trained parameters (in the flat buffers) */
    size_t nbuffers;     /* saved but not trained (e.g. running statistics) */
    size_t state_floats; /* private scratch kept from forward to backward */
    size_t ws_floats;    /* workspace used during one call only (shared) */
    float *params, *grads, *buffers, *state;
    /* Set by the model for built-in kinds: an activation applied in the same
     * pass as the bias, or (batch norm: ReLU only) as the normalisation
     * (0: none; the values of tsr_act_t). */
    int fused_act;
    int sync; /* batch norm: statistics over all ranks */
    /* Set by the model for a conv or batch norm with a fused ReLU whose
     * output only a maxpool reads (CPU kernels; the GPU's ignore both): the
     * maxpool passes no gradient where its maximum was not positive
     * (mask_relu), so the layer's backward skips the ReLU's mask
     * (grad_masked). Appended: older plugins never read them. */
    int grad_masked, mask_relu;
    /* Set by the model (CPU) for such a conv whose input gradient is not
     * wanted, when its kernels can pool as they go, and for such a batch
     * norm whose maxpool's windows tile its output: the maxpool layer whose
     * output (the y the layer's forward is then given) and argmax (its
     * state) the layer writes itself; the maxpool's forward and backward
     * are skipped and the layer's backward gets the pooled gradient (a
     * batch norm reads each position's gradient from it and the argmax as
     * it goes, so no full-size output or gradient is written). Appended. */
    struct tsr_layer *pool;
} tsr_layer_t;

/* What a forward or backward call may use besides its tensors. */
typedef struct tsr_layer_run {
    int train;           /* 1: training (batch statistics, dropout); 0: evaluation */
    uint64_t seed, step; /* dropout's counter-based RNG is keyed by seed, rank, step, layer */
    int rank;
    float *ws; /* ws_floats floats of workspace */
    /* Sums n doubles over every rank in place (NULL on one rank); returns 0 or an error code. */
    int (*allreduce)(double *buf, int n, void *arg);
    void *allreduce_arg;
    /* Batch norm: leave the running statistics alone; the model applies
     * every micro-batch's later, in the global batch's order
     * (train.reproducible = world). Appended: older plugins never read it. */
    int defer_stats;
    /* Gradient accumulation: backward adds its parameter gradients into
     * l->grads instead of overwriting them. Read only by kinds with
     * TSR_LAYER_ACCUMULATES; for the others the model runs backward into
     * scratch and adds. Appended: older plugins never read it. */
    int accumulate;
} tsr_layer_run_t;

enum {
    TSR_LAYER_NEEDS_Y = 1,     /* backward reads its own output y */
    TSR_LAYER_ALIAS = 2,       /* forward leaves the data as it is: y is x (flatten) */
    TSR_LAYER_NEEDS_X = 4,     /* backward reads its input x (most layers) */
    TSR_LAYER_ACCUMULATES = 8, /* backward honours run->accumulate (CPU) */
};

struct tsr_layer_kind {
    int abi;          /* TSR_LAYER_ABI */
    const char *name; /* as written in [model] layers, lower case */
    /* Argument names in order, required first, defaults after '=':
     * "out k stride=1 pad=0 dilation=1 groups=1". NULL: no arguments. */
    const char *args;
    int flags; /* TSR_LAYER_* */
    /* Checks the arguments against l->in; sets l->out and the counts.
     * Returns 0, or an error with tsr_error_set naming what does not fit. */
    int (*shape)(tsr_layer_t *l);
    /* Initial parameters and buffers (may be NULL: zeros). */
    void (*init)(tsr_layer_t *l, tsr_rng_t *r);
    /* y[n, out] from x[n, in]. */
    int (*forward)(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n);
    /* From dy[n, out]: writes the parameter gradients into l->grads
     * (overwriting) and, unless dx is NULL, dx[n, in]. dy may be modified. */
    int (*backward)(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy, float *dx,
                    size_t n);
    /* Forward FLOPs per sample (multiply and add count 2), for the summary. */
    double (*flops)(const tsr_layer_t *l);
    /* Optional GPU versions (NULL: the kind runs on the CPU only, and a
     * model with it is refused on a GPU). gpu is the tsr_gpu_t of
     * tessera/compute.h, whose tsr_gpu_* calls the functions may queue
     * work with; x, y, dy, dx, l->params, l->grads, l->state and run->ws
     * (ws_floats floats) are device memory; l->buffers stays in host
     * memory. Work is queued on the handle's stream; the model waits. */
    int (*gpu_forward)(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n);
    int (*gpu_backward)(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                        float *dy, float *dx, size_t n);
    /* Optional ONNX export: adds nodes from input name in to output name
     * out through the exporter's builder (tessera/export.h); NULL: a model
     * with this kind cannot be exported. */
    int (*onnx)(const tsr_layer_t *l, void *builder, const char *in, const char *out);
};

/* Registers a kind for this process (what plugin loading does). Fails for
 * a name already taken or another ABI version. */
TSR_API int tsr_layer_register(const tsr_layer_kind_t *kind);
/* The kind of that name, or NULL. */
TSR_API const tsr_layer_kind_t *tsr_layer_find(const char *name);
/* Loads a plugin (dlopen), checks its ABI and registers its kinds. Loading
 * the same path twice is a no-op. Errors name the file and what is wrong. */
TSR_API int tsr_layer_load_plugin(const char *path);

/* Loads each plugin of a comma-separated list, relative paths taken from
 * dir (NULL: the working directory). */
TSR_API int tsr_layer_load_plugins(const char *list, const char *dir);
/* "CxHxW", "HxW" (one channel) or "D" (a flat row) into *s. */
TSR_API int tsr_shape_parse(const char *text, tsr_shape_t *s);

#ifdef __cplusplus
}
#endif
#endif
