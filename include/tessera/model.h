/* SPDX-License-Identifier: BSD-3-Clause */
/* A model: a sequence of layers, with residual blocks, over one flat
 * parameter buffer and one flat gradient buffer (tessera/layer.h). Layer i's
 * parameters follow layer i-1's, so backward, which runs last layer first,
 * finishes the buffers from their end. Dense layers own W [out, in]
 * (row-major, as PyTorch's Linear) followed by b [out]. */
#ifndef TESSERA_MODEL_H
#define TESSERA_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/compute.h"
#include "tessera/layer.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_MODEL_MAX_LAYERS 96
#define TSR_MODEL_MAX_CLASS_WEIGHTS 256
/* The most parameters a model file may declare unless told otherwise
 * (serve.max_model_params): 512 MiB of float32, what the default upload
 * limit carries uncompressed. */
#define TSR_MODEL_MAX_PARAMS_DEFAULT ((size_t)1 << 27)

typedef enum { TSR_LOSS_XENT = 0, TSR_LOSS_MSE = 1, TSR_LOSS_HUBER = 2, TSR_LOSS_BCE = 3 } tsr_loss_t;

/* One layer as written: a kind's name and its arguments (in the order of
 * the kind's args; tsr_model_parse binds names and defaults). Residual
 * blocks are the kinds "res" (opens a block: its input is kept) and
 * "res_end" (closes it: adds the kept input to its input). */
typedef struct tsr_layer_spec {
    char kind[32];
    double arg[TSR_LAYER_MAX_ARGS];
} tsr_layer_spec_t;

typedef struct tsr_model_spec {
    int nlayers;
    tsr_layer_spec_t layer[TSR_MODEL_MAX_LAYERS];
    tsr_shape_t input;     /* per sample; a flat row of d values is (d, 1, 1) */
    tsr_loss_t loss;       /* on the last layer's output */
    float label_smoothing; /* cross-entropy */
    float huber_delta;     /* Huber (0: 1.0) */
    int nclass_weights;    /* cross-entropy: 0, or one weight per class */
    float class_weight[TSR_MODEL_MAX_CLASS_WEIGHTS];
    int sync_bn; /* batch norm statistics over all ranks */
} tsr_model_spec_t;

/* An MLP: dense layers sizes[0] -> ... -> sizes[n], act after each but the last. */
TSR_API void tsr_model_spec_mlp(tsr_model_spec_t *s, const size_t *sizes, int n, tsr_act_t act, tsr_loss_t loss);
/* Parses the [model] layers grammar into s->layer (see README: "conv(32,3,pad=1)
 * bn relu maxpool(2) res{...} gap flatten dense(10)"). Keeps s's other
 * fields. Errors name the position and, for an unknown kind or argument,
 * the nearest known one. */
TSR_API int tsr_model_parse(const char *text, tsr_model_spec_t *s);
/* One layer as text ("conv(32,3,stride=1,pad=1)"), written as parsed. */
TSR_API void tsr_layer_spec_text(const tsr_layer_spec_t *l, char *buf, size_t len);
/* The graph as JSON: input, loss and its options, each layer's kind,
 * arguments and output shape. Returns bytes written or <0. */
TSR_API int tsr_model_spec_json(const tsr_model_spec_t *spec, char *buf, size_t len);
/* The spec back from tsr_model_spec_json's text (model files, checkpoints). */
TSR_API int tsr_model_spec_from_json(const char *json, tsr_model_spec_t *s);
/* Compares two graphs: 0 when the same, else 1 with why (e.g. "layer 3:
 * conv(64,3,pad=1) here, conv(32,3,pad=1) there"). */
TSR_API int tsr_model_spec_diff(const tsr_model_spec_t *a, const tsr_model_spec_t *b, char *why, size_t len);
TSR_API const char *tsr_loss_name(tsr_loss_t loss);
/* Returns -1 for an unknown name. */
TSR_API int tsr_loss_parse(const char *name);

typedef struct tsr_model tsr_model_t;

/* Called by backward when grads[offset..nparams) are final. */
typedef void (*tsr_grad_ready_fn)(size_t offset, void *arg);

/* Allocates buffers for batches of up to max_batch rows. */
TSR_API int tsr_model_create(const tsr_model_spec_t *spec, size_t max_batch, tsr_model_t **out);
TSR_API void tsr_model_destroy(tsr_model_t *m);

TSR_API const tsr_model_spec_t *tsr_model_spec(const tsr_model_t *m);
TSR_API size_t tsr_model_nparams(const tsr_model_t *m);
TSR_API float *tsr_model_params(tsr_model_t *m);
TSR_API float *tsr_model_grads(tsr_model_t *m);
/* Offset of layer i's parameters in the flat buffers. */
TSR_API size_t tsr_model_layer_offset(const tsr_model_t *m, int layer);
/* FLOPs of one sample's forward+backward: each layer's forward FLOPs three
 * times (forward, weight gradient, input gradient), less the input gradient
 * of the first layer with parameters and everything before it. */
TSR_API double tsr_model_flops_per_sample(const tsr_model_t *m);
/* The layers (with shapes, counts and pointers into the flat buffers). */
TSR_API int tsr_model_nlayers(const tsr_model_t *m);
TSR_API const tsr_layer_t *tsr_model_layer(const tsr_model_t *m, int i);
/* Values per input row and per output row. */
TSR_API size_t tsr_model_input_size(const tsr_model_t *m);
TSR_API size_t tsr_model_output_size(const tsr_model_t *m);
/* Saved but untrained values (batch-norm running statistics), one flat
 * buffer in layer order; n may be NULL. */
TSR_API float *tsr_model_buffers(tsr_model_t *m, size_t *n);

/* A layer's named parameters and buffers as stored in model files and
 * checkpoints (/model/layer_<i>/<name>): dense weight [out, in] and bias;
 * conv weight [out, k, k, in/groups] and bias; bn weight, bias,
 * running_mean, running_var; ln weight and bias [features, channels last];
 * embed weight [vocab, dim]; a plugin's kinds: params and buffers, flat. */
typedef struct tsr_model_tensor {
    const char *name;
    float *data;
    int ndims;
    size_t dims[4];
} tsr_model_tensor_t;
#define TSR_MODEL_MAX_TENSORS 4
/* Fills t (TSR_MODEL_MAX_TENSORS entries) for layer i; returns how many. */
TSR_API int tsr_model_tensors(tsr_model_t *m, int layer, tsr_model_tensor_t *t);

/* Parameters as PyTorch initialises them, from (seed, layer). */
TSR_API void tsr_model_init(tsr_model_t *m, uint64_t seed);
/* Dropout's masks are keyed by (seed, rank, step, layer, element): the
 * step counts training forwards and is set on resume, so a resumed run
 * draws the same masks as an uninterrupted one. */
TSR_API void tsr_model_set_rng(tsr_model_t *m, uint64_t seed, int rank);
TSR_API void tsr_model_set_step(tsr_model_t *m, uint64_t step);
/* Batch norm's running statistics in a fixed order (train.reproducible =
 * world): with deferral on, a training forward leaves them alone; the
 * caller takes each micro-batch's statistics (stats_floats of them: mean
 * and unbiased variance of every bn layer) after its forward, gathers them
 * from every rank, and applies them in the global batch's order, which
 * gives what one rank running every micro-batch in turn would hold. */
TSR_API void tsr_model_defer_stats(tsr_model_t *m, int on);
TSR_API size_t tsr_model_stats_floats(const tsr_model_t *m);
TSR_API void tsr_model_stats_take(const tsr_model_t *m, float *dst);
TSR_API void tsr_model_stats_apply(tsr_model_t *m, const float *stats, size_t count);
/* Sums n doubles over every rank (synchronised batch norm); NULL: one rank. */
TSR_API void tsr_model_set_allreduce(tsr_model_t *m, int (*fn)(double *buf, int n, void *arg), void *arg);

/* on = 1: the following backward calls add their parameter gradients into
 * the gradient buffer instead of overwriting it (the micro-batches of
 * gradient accumulation after the first: no separate sum of the whole
 * buffer per micro-batch); on = 0: overwrite again. CPU models only:
 * TSR_EINVAL on a GPU model, TSR_ENOMEM if the scratch for kinds without
 * TSR_LAYER_ACCUMULATES cannot be had. */
TSR_API int tsr_model_set_accumulate(tsr_model_t *m, int on);
/* The following backward calls write their parameter gradients into buf
 * (nparams floats, tsr_model_grads' layout) instead of the model's own
 * buffer; NULL: the model's own again. A loop that keeps micro-batches'
 * gradients apart (train.reproducible = world) has them written where it
 * sums them, without a copy. CPU models only (TSR_EINVAL on a GPU model). */
TSR_API int tsr_model_set_grads_target(tsr_model_t *m, float *buf);
/* Forward pass of rows <= max_batch samples; keeps activations for backward. */
TSR_API int tsr_model_forward(tsr_model_t *m, const float *x, size_t rows);
/* Output of the last forward: logits (cross-entropy) or predictions (MSE). */
TSR_API const float *tsr_model_output(const tsr_model_t *m);
/* Loss and gradient of the last forward. grads = scale * d(sum of per-sample
 * losses)/d(params); returns that sum, unscaled. ready (may be NULL) is told
 * as each layer's gradients are done, last layer first. labels for
 * cross-entropy, targets [rows, outputs] for MSE. */
TSR_API double tsr_model_backward(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows, float scale,
                                  tsr_grad_ready_fn ready, void *arg);
/* The same, but the loss sum is added to a running total instead of being
 * returned, so on a GPU the host does not wait for the step's kernels.
 * tsr_model_take_loss returns the total since the last take and clears it
 * (on a GPU it waits for the work queued so far). Both sums are formed in
 * double in the same order: the total equals the sum of what
 * tsr_model_backward would have returned, bit for bit. Returns TSR_OK or
 * the model's GPU error. */
TSR_API int tsr_model_backward_queued(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows,
                                      float scale, tsr_grad_ready_fn ready, void *arg);
TSR_API int tsr_model_take_loss(tsr_model_t *m, double *sum);
/* Loss sum and correct count (labels only; 0 for MSE) over rows, in chunks
 * of max_batch, in evaluation mode (running statistics, no dropout). */
TSR_API int tsr_model_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                               double *loss_sum, size_t *correct);
/* Classification metrics beyond top-1: counts added to what *e holds. */
typedef struct tsr_eval {
    double loss;
    size_t rows, top1, top5;
    size_t classes;      /* confusion has classes*classes counts (may be NULL) */
    uint64_t *confusion; /* [true][predicted] */
} tsr_eval_t;
TSR_API int tsr_model_evaluate_full(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets,
                                    size_t rows, tsr_eval_t *e);
/* Softmax probabilities (cross-entropy), sigmoid probabilities (binary
 * cross-entropy) or predictions (MSE, Huber) for rows inputs into out. */
TSR_API int tsr_model_predict(tsr_model_t *m, const float *x, size_t rows, float *out);

/* ---- GPU ----
 * Moves the model onto a GPU: device copies of the parameters and
 * gradients, device activations; forward, backward, evaluate and predict
 * then run there (inputs, labels and outputs stay host memory: batches are
 * uploaded, results downloaded). tsr_model_params/grads remain host
 * mirrors: tsr_model_download brings the parameters up to date (waits),
 * tsr_model_upload pushes host parameters (after a restore). Backward's
 * ready callback is told when a layer's gradient kernels are queued on the
 * GPU's stream, not when they have run. */
TSR_API int tsr_model_to_gpu(tsr_model_t *m, tsr_gpu_t *gpu);
/* The same in mixed precision (bf16 or fp16; FP32 is tsr_model_to_gpu):
 * GEMMs on half inputs with fp32 accumulation, the activations between
 * layers stored half, the loss, deltas and gradients fp32; the parameters
 * stay fp32 (the master copy the optimizer updates), cast to half at
 * each forward. */
TSR_API int tsr_model_to_gpu_precision(tsr_model_t *m, tsr_gpu_t *gpu, tsr_precision_t prec);
/* NULL when the model runs on the CPU. */
TSR_API tsr_gpu_t *tsr_model_gpu(const tsr_model_t *m);
/* The buffers backward and the optimizer work on: device memory on a
 * GPU, else the same as tsr_model_params/grads. */
TSR_API float *tsr_model_work_params(tsr_model_t *m);
TSR_API float *tsr_model_work_grads(tsr_model_t *m);
TSR_API int tsr_model_download(tsr_model_t *m);
TSR_API int tsr_model_upload(tsr_model_t *m);
/* Zeroes the gradients wherever they live. */
TSR_API int tsr_model_zero_grads(tsr_model_t *m);
/* TSR_OK, or the first error the GPU hit (sticky: backward returns NaN then). */
TSR_API int tsr_model_status(const tsr_model_t *m);

/* "tessera model summary": one line per layer (kind, output shape,
 * parameters, forward FLOPs per sample) and the totals; returns the text
 * (malloc'd) or NULL. */
TSR_API char *tsr_model_summary(const tsr_model_t *m);

/* Model file (HDF5): /model/layer_<i>/{weight,bias,...}, root attributes format
 * "tessera-model", version, model (spec JSON), created, plus the given text
 * attributes (pairs of key, value; may be NULL). Written atomically. */
TSR_API int tsr_model_save(tsr_model_t *m, const char *path, const char *const *attrs, int nattrs);
/* Reads a model file back (max_batch as in tsr_model_create), checking what
 * it declares before allocating anything: every weight stored in the file
 * itself (no external or virtual data, no links out of it, nothing missing)
 * and at most max_params parameters (0: TSR_MODEL_MAX_PARAMS_DEFAULT).
 * Anything else is TSR_EDATA naming the file and the layer. */
TSR_API int tsr_model_load_max(const char *path, size_t max_batch, size_t max_params, tsr_model_t **out);
/* tsr_model_load_max with the default budget. */
TSR_API int tsr_model_load(const char *path, size_t max_batch, tsr_model_t **out);

#ifdef __cplusplus
}
#endif
#endif
