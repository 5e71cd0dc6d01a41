/* SPDX-License-Identifier: BSD-3-Clause */
/* The model's state, shared by the graph (model.c), losses (loss.c), files
 * (model_file.c) and the GPU code (model_gpu.c). Internal to src/model. */
#ifndef TSR_MODEL_INTERNAL_H
#define TSR_MODEL_INTERNAL_H
#include "tessera/model.h"

/* Device copies while the model lives on a GPU (tsr_model_to_gpu). */
typedef struct model_gpu {
    tsr_gpu_t *gpu;
    float *params, *grads;
    float *act[TSR_MODEL_MAX_LAYERS + 1]; /* act[0]: the uploaded input batch */
    float *delta[2];
    float *targets; /* MSE targets of the batch */
    int32_t *labels;
    double *loss;                /* loss of one step or evaluation */
    double *loss_total;          /* tsr_model_backward_queued's running total */
    unsigned long long *correct; /* evaluation's correct count */
    int status;                  /* the first GPU error (sticky) */
    /* Mixed precision (prec bf16 or fp16): params stay the fp32 master
     * copy, wh its half cast (made at each forward), acth[i] the input of
     * dense layer i stored half, dh the half cast of a layer's delta; act[0]
     * is then fp32 scratch for one layer's output and act[L] the fp32
     * logits; act[1..L-1] are not allocated. */
    tsr_precision_t prec;
    void *wh, *dh, *acth[TSR_MODEL_MAX_LAYERS];
    /* The layer graph (any graph but the dense fast path; model_gpu_graph.c):
     * act[i] is then allocated where the CPU owns a buffer (own[i]), cur[i]
     * the tensor layer i reads in the last forward (aliases included). */
    int graph;
    struct layer_gpu_view *view; /* [nl]: the layers with device pointers */
    float *cur[TSR_MODEL_MAX_LAYERS + 1];
    float *skip[TSR_MODEL_MAX_LAYERS];
    float *state, *ws;
} model_gpu_t;

/* How the executor treats a layer. */
enum {
    ROLE_NORMAL = 0, /* y in a buffer of its own */
    ROLE_ALIAS,      /* y is x (flatten, the start of a residual block) */
    ROLE_RES_END,    /* y = x + the block's input */
    ROLE_INPLACE,    /* an activation run on x itself */
    ROLE_FUSED,      /* an activation the layer before applies in its own pass */
};

struct tsr_model {
    tsr_model_spec_t spec;
    int nl;
    tsr_layer_t layer[TSR_MODEL_MAX_LAYERS];
    int role[TSR_MODEL_MAX_LAYERS];
    int block[TSR_MODEL_MAX_LAYERS];    /* res / res_end: the res layer's index */
    int needs_dx[TSR_MODEL_MAX_LAYERS]; /* some layer before has parameters */
    unsigned char
        pooled[TSR_MODEL_MAX_LAYERS]; /* a maxpool the conv or batch norm before pools into (tsr_layer_t.pool) */
    size_t max_batch, nparams, nbuffers, widest;
    size_t off[TSR_MODEL_MAX_LAYERS + 1];  /* parameter offsets; off[nl] = nparams */
    size_t boff[TSR_MODEL_MAX_LAYERS + 1]; /* buffer offsets */
    float *params, *grads, *buffers;       /* on a GPU: host mirrors */
    float *act[TSR_MODEL_MAX_LAYERS + 1];  /* act[0]: the input (the caller's, or xin) */
    unsigned char own[TSR_MODEL_MAX_LAYERS + 1];
    float *skip[TSR_MODEL_MAX_LAYERS]; /* res layers: the gradient of the kept input */
    float *delta[2];                   /* backward scratch, ping-pong */
    float *xin;                        /* channels-last copy of image inputs */
    float *ws;                         /* workspace shared by all layers */
    float *state;                      /* the layers' private state */
    size_t rows;                       /* rows of the last forward */
    double loss_total;                 /* CPU: tsr_model_backward_queued's running total */
    uint64_t seed, step;
    int rank;
    int defer_stats; /* tsr_model_defer_stats */
    int accumulate;  /* tsr_model_set_accumulate */
    float *acc_ws;   /* its scratch for kinds that overwrite their gradients */
    int (*allreduce)(double *buf, int n, void *arg);
    void *allreduce_arg;
    int cpu_rc;       /* the last training forward's or backward's error */
    int gpu_ok;       /* the graph is dense layers and activations the GPU has */
    model_gpu_t *dev; /* NULL: the model runs on the CPU */
};

/* Shapes and counts of every layer of m->spec (m->nl, max_batch set). */
int model_build_layers(tsr_model_t *m);
/* Forward in training (train = 1) or evaluation mode. */
int model_forward(tsr_model_t *m, const float *x, size_t rows, int train);
/* The loss of the last forward's output out (host) into delta (dLoss/dOutput * scale); returns the sum. */
double model_loss_delta(tsr_model_t *m, const float *out, const int32_t *labels, const float *targets, float scale,
                        float *delta);
/* What a layer's forward and backward get besides tensors (ws: the host's). */
tsr_layer_run_t model_run_of(const tsr_model_t *m, int train);
/* The batch channels last (image inputs arrive channels first): x, or m->xin. */
const float *model_to_nhwc(tsr_model_t *m, const float *x, size_t rows);
/* Whether a spec's loss turns outputs into probabilities for predict. */
void model_output_transform(const tsr_model_t *m, const float *z, float *p, size_t rows);

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
/* The layer graph on a GPU (model_gpu_graph.c). check: whether every layer
 * has a GPU version in precision prec (error naming the first that does
 * not); alloc: its buffers; free: them. */
int model_gpu_graph_check(const tsr_model_t *m, tsr_precision_t prec);
int model_gpu_graph_alloc(tsr_model_t *m);
void model_gpu_graph_free(tsr_model_t *m);
int model_gpu_graph_forward(tsr_model_t *m, const float *x, size_t rows, int train);
double model_gpu_graph_backward(tsr_model_t *m, const int32_t *labels, const float *targets, float scale,
                                tsr_grad_ready_fn ready, void *arg, int queued);
/* The last forward's output downloaded into host memory (m->delta[0]). */
const float *model_gpu_graph_output(tsr_model_t *m, int *rc);
/* The plain cross-entropy or MSE of the output dout on the device
 * (model_gpu.c): delta, and the loss sum added to *dsum (cleared first when reset). */
int model_gpu_loss_delta(tsr_model_t *m, const float *dout, size_t k, const int32_t *labels, const float *targets,
                         float scale, float *delta, double *dsum, int reset);
/* The output of an evaluation-mode forward of n rows, on the host: the
 * CPU's act, or the GPU graph's download. */
const float *model_eval_forward(tsr_model_t *m, const float *x, size_t n, int *rc);

#endif
