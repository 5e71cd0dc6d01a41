/* A feed-forward model: dense layers over one flat parameter buffer and one
 * flat gradient buffer. Layer i owns W_i [out, in] (row-major, as PyTorch's
 * Linear) followed by b_i [out]; layers are laid out in order, so backward,
 * which runs last layer first, finishes the buffer from its end. */
#ifndef TESSERA_MODEL_H
#define TESSERA_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/compute.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_MODEL_MAX_LAYERS 32
/* The most parameters a model file may declare unless told otherwise
 * (serve.max_model_params): 512 MiB of float32, what the default upload
 * limit carries uncompressed. */
#define TSR_MODEL_MAX_PARAMS_DEFAULT ((size_t)1 << 27)

typedef enum { TSR_LOSS_XENT = 0, TSR_LOSS_MSE = 1 } tsr_loss_t;

typedef struct tsr_model_spec {
    int nlayers;                            /* dense layers */
    size_t sizes[TSR_MODEL_MAX_LAYERS + 1]; /* sizes[0] inputs ... sizes[nlayers] outputs */
    tsr_act_t act;                          /* activation after every layer but the last */
    tsr_loss_t loss;                        /* softmax cross-entropy on labels, or MSE */
} tsr_model_spec_t;

typedef struct tsr_model tsr_model_t;

/* Called by backward when grads[offset..nparams) are final. */
typedef void (*tsr_grad_ready_fn)(size_t offset, void *arg);

/* Allocates buffers for batches of up to max_batch rows. */
int tsr_model_create(const tsr_model_spec_t *spec, size_t max_batch, tsr_model_t **out);
void tsr_model_destroy(tsr_model_t *m);

const tsr_model_spec_t *tsr_model_spec(const tsr_model_t *m);
size_t tsr_model_nparams(const tsr_model_t *m);
float *tsr_model_params(tsr_model_t *m);
float *tsr_model_grads(tsr_model_t *m);
/* Offset of layer i's weights in the flat buffers. */
size_t tsr_model_layer_offset(const tsr_model_t *m, int layer);
/* FLOPs of one sample's forward+backward: 2*in*out per layer forward, the
 * same for each weight gradient and each input gradient but the first. */
double tsr_model_flops_per_sample(const tsr_model_t *m);

/* PyTorch's default Linear init, U(-1/sqrt(in), 1/sqrt(in)), from (seed, layer). */
void tsr_model_init(tsr_model_t *m, uint64_t seed);

/* Forward pass of rows <= max_batch samples; keeps activations for backward. */
int tsr_model_forward(tsr_model_t *m, const float *x, size_t rows);
/* Output of the last forward: logits (cross-entropy) or predictions (MSE). */
const float *tsr_model_output(const tsr_model_t *m);
/* Loss and gradient of the last forward. grads = scale * d(sum of per-sample
 * losses)/d(params); returns that sum, unscaled. ready (may be NULL) is told
 * as each layer's gradients are done, last layer first. labels for
 * cross-entropy, targets [rows, outputs] for MSE. */
double tsr_model_backward(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows, float scale,
                          tsr_grad_ready_fn ready, void *arg);
/* The same, but the loss sum is added to a running total instead of being
 * returned, so on a GPU the host does not wait for the step's kernels.
 * tsr_model_take_loss returns the total since the last take and clears it
 * (on a GPU it waits for the work queued so far). Both sums are formed in
 * double in the same order: the total equals the sum of what
 * tsr_model_backward would have returned, bit for bit. Returns TSR_OK or
 * the model's GPU error. */
int tsr_model_backward_queued(tsr_model_t *m, const int32_t *labels, const float *targets, size_t rows,
                              float scale, tsr_grad_ready_fn ready, void *arg);
int tsr_model_take_loss(tsr_model_t *m, double *sum);
/* Loss sum and correct count (labels only; 0 for MSE) over rows, in chunks of max_batch. */
int tsr_model_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                       double *loss_sum, size_t *correct);
/* Softmax probabilities (cross-entropy) or predictions (MSE) for rows inputs into out. */
int tsr_model_predict(tsr_model_t *m, const float *x, size_t rows, float *out);

/* ---- GPU ----
 * Moves the model onto a GPU: device copies of the parameters and
 * gradients, device activations; forward, backward, evaluate and predict
 * then run there (inputs, labels and outputs stay host memory: batches are
 * uploaded, results downloaded). tsr_model_params/grads remain host
 * mirrors: tsr_model_download brings the parameters up to date (waits),
 * tsr_model_upload pushes host parameters (after a restore). Backward's
 * ready callback is told when a layer's gradient kernels are queued on the
 * GPU's stream, not when they have run. */
int tsr_model_to_gpu(tsr_model_t *m, tsr_gpu_t *gpu);
/* NULL when the model runs on the CPU. */
tsr_gpu_t *tsr_model_gpu(const tsr_model_t *m);
/* The buffers backward and the optimizer work on: device memory on a
 * GPU, else the same as tsr_model_params/grads. */
float *tsr_model_work_params(tsr_model_t *m);
float *tsr_model_work_grads(tsr_model_t *m);
int tsr_model_download(tsr_model_t *m);
int tsr_model_upload(tsr_model_t *m);
/* Zeroes the gradients wherever they live. */
int tsr_model_zero_grads(tsr_model_t *m);
/* TSR_OK, or the first error the GPU hit (sticky: backward returns NaN then). */
int tsr_model_status(const tsr_model_t *m);

/* The spec as JSON ({"layers":[...],"loss":...}); returns bytes written or <0. */
int tsr_model_spec_json(const tsr_model_spec_t *spec, char *buf, size_t len);
const char *tsr_loss_name(tsr_loss_t loss);

/* Model file (HDF5): /model/layer_<i>/{weight,bias}, root attributes format
 * "tessera-model", version, model (spec JSON), created, plus the given text
 * attributes (pairs of key, value; may be NULL). Written atomically. */
int tsr_model_save(tsr_model_t *m, const char *path, const char *const *attrs, int nattrs);
/* Reads a model file back (max_batch as in tsr_model_create), checking what
 * it declares before allocating anything: every weight stored in the file
 * itself (no external or virtual data, no links out of it, nothing missing)
 * and at most max_params parameters (0: TSR_MODEL_MAX_PARAMS_DEFAULT).
 * Anything else is TSR_EDATA naming the file and the layer. */
int tsr_model_load_max(const char *path, size_t max_batch, size_t max_params, tsr_model_t **out);
/* tsr_model_load_max with the default budget. */
int tsr_model_load(const char *path, size_t max_batch, tsr_model_t **out);

#ifdef __cplusplus
}
#endif
#endif
