/* The model's state, shared by the CPU code (model.c) and the GPU code
 * (model_gpu.c). Internal to src/model. */
#ifndef TSR_MODEL_INTERNAL_H
#define TSR_MODEL_INTERNAL_H
#include "tessera/model.h"

/* Device copies while the model lives on a GPU (tsr_model_to_gpu). */
typedef struct model_gpu {
    tsr_gpu_t *gpu;
    float *params, *grads;
    float *act[TSR_MODEL_MAX_LAYERS + 1];  /* act[0]: the uploaded input batch */
    float *delta[2];
    float *targets;                        /* MSE targets of the batch */
    int32_t *labels;
    double *loss;                          /* loss of one step or evaluation */
    double *loss_total;                    /* tsr_model_backward_queued's running total */
    unsigned long long *correct;           /* evaluation's correct count */
    int status;                            /* the first GPU error (sticky) */
} model_gpu_t;

struct tsr_model {
    tsr_model_spec_t spec;
    size_t max_batch, nparams, widest;
    size_t off[TSR_MODEL_MAX_LAYERS + 1];  /* layer weight offsets; off[L] = nparams */
    float *params, *grads;                 /* on a GPU: host mirrors */
    float *act[TSR_MODEL_MAX_LAYERS + 1];  /* act[0] points at the caller's input */
    float *delta[2];                       /* backward scratch, ping-pong */
    size_t rows;                           /* rows of the last forward */
    double loss_total;                     /* CPU: tsr_model_backward_queued's running total */
    model_gpu_t *dev;                      /* NULL: the model runs on the CPU */
};

int model_gpu_forward(tsr_model_t *m, const float *x, size_t rows);
/* queued: the loss goes to the device's running total, and nothing is
 * read back (returns 0, or NaN after a GPU error). */
double model_gpu_backward(tsr_model_t *m, const int32_t *labels, const float *targets, float scale,
                          tsr_grad_ready_fn ready, void *arg, int queued);
int model_gpu_take_loss(tsr_model_t *m, double *sum);
int model_gpu_evaluate(tsr_model_t *m, const float *x, const int32_t *labels, const float *targets, size_t rows,
                       double *loss_sum, size_t *correct);
int model_gpu_predict(tsr_model_t *m, const float *x, size_t rows, float *out);
/* Copies the last forward's output into the host buffer act[L]. */
int model_gpu_output(tsr_model_t *m);
void model_gpu_free(tsr_model_t *m);

#endif
