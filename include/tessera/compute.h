/* Dense kernels on the CPU (CBLAS) used by the model module. Row-major. */
#ifndef TESSERA_COMPUTE_H
#define TESSERA_COMPUTE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TSR_ACT_NONE = 0, TSR_ACT_RELU, TSR_ACT_TANH, TSR_ACT_SIGMOID } tsr_act_t;

/* C[M,N] = alpha * op(A) * op(B) + beta * C, op = transpose when trans != 0. */
void tsr_compute_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                      const float *b, float beta, float *c);
/* y[rows, n] += bias[n] broadcast over rows. */
void tsr_compute_add_bias(float *y, const float *bias, size_t rows, size_t n);
/* db[n] = sum over rows of dy[rows, n] (overwrites db). */
void tsr_compute_bias_grad(const float *dy, size_t rows, size_t n, float *db);
/* In-place activation of y[len]. */
void tsr_compute_act(tsr_act_t act, float *y, size_t len);
/* dy[len] *= act'(.) given the activation's output y. */
void tsr_compute_act_backward(tsr_act_t act, const float *y, float *dy, size_t len);
/* Row-wise softmax of z[rows, n] into p (may alias z). */
void tsr_compute_softmax(const float *z, float *p, size_t rows, size_t n);

const char *tsr_act_name(tsr_act_t act);
/* Returns -1 for an unknown name. */
int tsr_act_parse(const char *name);

#ifdef __cplusplus
}
#endif
#endif
