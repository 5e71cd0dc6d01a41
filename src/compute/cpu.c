/* CPU kernels: GEMM through OpenBLAS's CBLAS, element-wise loops the
 * compiler vectorises. */
#include "tessera/compute.h"
#include "common/vec.h"

#include <cblas.h>
#include <math.h>
#include <string.h>


void tsr_compute_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                      const float *b, float beta, float *c)
{
    int lda = trans_a ? (int)m : (int)k;
    int ldb = trans_b ? (int)k : (int)n;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
                (int)n, (int)k, alpha, a, lda, b, ldb, beta, c, (int)n);
}

void tsr_compute_add_bias(float *restrict y, const float *restrict bias, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = y + r * n;
        EACH8(j, n, row[j] += bias[j]);
    }
}

void tsr_compute_bias_grad(const float *restrict dy, size_t rows, size_t n, float *restrict db)
{
    memset(db, 0, n * sizeof *db);
    for (size_t r = 0; r < rows; r++) {
        const float *restrict row = dy + r * n;
        EACH8(j, n, db[j] += row[j]);
    }
}

void tsr_compute_act(tsr_act_t act, float *y, size_t len)
{
    switch (act) {
    case TSR_ACT_RELU:
        EACH8(i, len, y[i] = y[i] > 0.0f ? y[i] : 0.0f);
        break;
    case TSR_ACT_TANH:
        for (size_t i = 0; i < len; i++)
            y[i] = tanhf(y[i]);
        break;
    case TSR_ACT_SIGMOID:
        for (size_t i = 0; i < len; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case TSR_ACT_NONE:
        break;
    }
}

void tsr_compute_act_backward(tsr_act_t act, const float *restrict y, float *restrict dy, size_t len)
{
    switch (act) {
    case TSR_ACT_RELU:
        EACH8(i, len, dy[i] = y[i] > 0.0f ? dy[i] : 0.0f);
        break;
    case TSR_ACT_TANH:
        EACH8(i, len, dy[i] *= 1.0f - y[i] * y[i]);
        break;
    case TSR_ACT_SIGMOID:
        EACH8(i, len, dy[i] *= y[i] * (1.0f - y[i]));
        break;
    case TSR_ACT_NONE:
        break;
    }
}

void tsr_compute_softmax(const float *z, float *p, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++) {
        const float *zr = z + r * n;
        float *pr = p + r * n;
        float mx = zr[0];
        for (size_t j = 1; j < n; j++)
            mx = zr[j] > mx ? zr[j] : mx;
        float s = 0.0f;
        for (size_t j = 0; j < n; j++) {
            pr[j] = expf(zr[j] - mx);
            s += pr[j];
        }
        float inv = 1.0f / s;
        for (size_t j = 0; j < n; j++)
            pr[j] *= inv;
    }
}

const char *tsr_act_name(tsr_act_t act)
{
    static const char *const names[] = {"none", "relu", "tanh", "sigmoid"};
    return (unsigned)act < 4 ? names[act] : "unknown";
}

int tsr_act_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, tsr_act_name((tsr_act_t)i)) == 0)
            return i;
    return -1;
}
