/* SPDX-License-Identifier: BSD-3-Clause */
/* Mixed precision's GPU pieces (train.precision = bf16 / fp16): the casts
 * (round to nearest even, ties, fp16's overflow to Inf and subnormals,
 * NaN), the half-input GEMM against a double reference on the rounded
 * inputs (fp32 accumulation: float rounding) and on the fp32 inputs (the
 * half type's tolerance), the backward of a half-stored activation and the
 * loss scaler's unscale; a model's forward and backward in bf16 and fp16
 * against the fp32 model (logits, loss and gradients within the half
 * type's tolerance; the ready callback still told, last layer first). Exits 77 (ctest: skipped) where tsr_gpu_count() is 0. */
#include "gpu_test.h"
#include "tessera/model.h"

#include <stdint.h>

/* Round trip through the device: x -> half -> float. */
static void round_trip(tsr_precision_t p, const float *x, float *y, size_t n)
{
    float *dx = dev(x, n * 4), *dy = dev(NULL, n * 4);
    void *dh = dev(NULL, n * 2);
    CK(tsr_gpu_to_half(G, p, dx, dh, n, NULL));
    CK(tsr_gpu_from_half(G, p, dh, dy, n, NULL));
    CK(tsr_gpu_download(G, y, dy, n * 4));
    tsr_gpu_free(G, dx), tsr_gpu_free(G, dy), tsr_gpu_free(G, dh);
}

static void test_casts(void)
{
    /* bf16: 8 significant bits (ulp 2^-7 at 1); fp16: 11 (ulp 2^-10 at 1). */
    const float one = 1.0f;
    float bx[] = {one, one + 0x1p-8f, one + 3 * 0x1p-8f, -2.5f, 1e30f, 0.0f, NAN};
    float bw[] = {one, one, one + 0x1p-6f, -2.5f, 0, 0.0f, NAN};
    float by[7];
    round_trip(TSR_PRECISION_BF16, bx, by, 7);
    bw[4] = by[4]; /* 1e30 keeps 8 bits: checked below */
    int same = 1;
    for (int i = 0; i < 6; i++)
        same &= by[i] == bw[i];
    check("bf16 casts: exact values kept, ties to even (1+2^-8 -> 1, 1+3*2^-8 -> 1+2^-6)", same);
    check("bf16 cast of 1e30 within half an ulp (2^-9)", fabs(by[4] - 1e30) / 1e30 <= 0x1p-9);
    check("bf16 cast keeps NaN", isnan(by[6]));
    float hx[] = {one + 0x1p-11f, one + 3 * 0x1p-11f, 65504.0f, 65519.0f, 65520.0f, -1e6f, 1e-7f, 0x1p-24f, NAN};
    float hy[9];
    round_trip(TSR_PRECISION_FP16, hx, hy, 9);
    check("fp16 casts: ties to even (1+2^-11 -> 1, 1+3*2^-11 -> 1+2^-9)", hy[0] == one && hy[1] == one + 0x1p-9f);
    check("fp16 casts: 65504 and 65519 -> 65504 (the largest), 65520 -> Inf, -1e6 -> -Inf",
          hy[2] == 65504.0f && hy[3] == 65504.0f && isinf(hy[4]) && hy[4] > 0 && isinf(hy[5]) && hy[5] < 0);
    check("fp16 casts: subnormals (1e-7 -> 2 * 2^-24, 2^-24 kept)", hy[6] == 2 * 0x1p-24f && hy[7] == 0x1p-24f);
    check("fp16 cast keeps NaN", isnan(hy[8]));
    /* Random values: relative error at most half an ulp. */
    const size_t n = 100003;
    float *x = hrand(n, -100, 100), *y = malloc(n * 4);
    double worst[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
        round_trip(t ? TSR_PRECISION_FP16 : TSR_PRECISION_BF16, x, y, n);
        for (size_t i = 0; i < n; i++)
            if (fabsf(x[i]) > 1e-3f) {
                double e = fabs((double)y[i] - x[i]) / fabs(x[i]);
                worst[t] = e > worst[t] ? e : worst[t];
            }
    }
    report("bf16 cast of 100003 values in [-100, 100]: relative error", worst[0], 0x1p-8);
    report("fp16 cast of 100003 values in [-100, 100]: relative error", worst[1], 0x1p-11);
    free(x), free(y);
}

/* C = op(A) op(B) in double on the host, row-major. */
static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, const float *a, const float *b, float *c)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t l = 0; l < k; l++)
                s += (double)(ta ? a[l * m + i] : a[i * k + l]) * (tb ? b[j * k + l] : b[l * n + j]);
            c[i * n + j] = (float)s;
        }
}

static void test_gemm(void)
{
    const size_t m = 37, n = 29, k = 131;
    const char *names[] = {"", "bf16", "fp16"};
    for (int p = TSR_PRECISION_BF16; p <= TSR_PRECISION_FP16; p++)
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1;
            float *a = hrand(m * k, -1, 1), *b = hrand(k * n, -1, 1), *ar = malloc(m * k * 4), *br = malloc(k * n * 4);
            float *want = malloc(m * n * 4), *exact = malloc(m * n * 4);
            round_trip((tsr_precision_t)p, a, ar, m * k);
            round_trip((tsr_precision_t)p, b, br, k * n);
            ref_gemm(ta, tb, m, n, k, ar, br, want);
            ref_gemm(ta, tb, m, n, k, a, b, exact);
            float *da = dev(a, m * k * 4), *db = dev(b, k * n * 4), *dc = dev(NULL, m * n * 4);
            void *ha = dev(NULL, m * k * 2), *hb = dev(NULL, k * n * 2);
            CK(tsr_gpu_to_half(G, (tsr_precision_t)p, da, ha, m * k, NULL));
            CK(tsr_gpu_to_half(G, (tsr_precision_t)p, db, hb, k * n, NULL));
            CK(tsr_gpu_gemm_half(G, (tsr_precision_t)p, ta, tb, m, n, k, 1.0f, ha, hb, 0.0f, dc));
            char what[160];
            snprintf(what, sizeof what, "%s GEMM %zux%zux%zu trans %d,%d: fp32 accumulation of the rounded inputs",
                     names[p], m, n, k, ta, tb);
            cmp_dev(what, dc, want, m * n, 1e-5);
            /* Against fp32 inputs: about sqrt(k) half-ulps of the inputs. */
            snprintf(what, sizeof what, "%s GEMM trans %d,%d against the fp32 product", names[p], ta, tb);
            cmp_dev(what, dc, exact, m * n, p == TSR_PRECISION_BF16 ? 2e-2 : 3e-3);
            tsr_gpu_free(G, da), tsr_gpu_free(G, db), tsr_gpu_free(G, dc), tsr_gpu_free(G, ha), tsr_gpu_free(G, hb);
            free(a), free(b), free(ar), free(br), free(want), free(exact);
        }
    check("a precision that is not a half type is refused",
          tsr_gpu_gemm_half(G, TSR_PRECISION_FP32, 0, 0, 1, 1, 1, 1.0f, G, G, 0.0f, (float *)G) == TSR_EINVAL);
}

static void test_act_backward_and_scale(void)
{
    const size_t n = 5003;
    for (int p = TSR_PRECISION_BF16; p <= TSR_PRECISION_FP16; p++)
        for (int act = TSR_ACT_RELU; act <= TSR_ACT_SIGMOID; act++) {
            float *y = hrand(n, -1, 1), *yr = malloc(n * 4), *dy = hrand(n, -1, 1), *want = dup_mem(dy, n * 4);
            round_trip((tsr_precision_t)p, y, yr, n);
            tsr_compute_act_backward((tsr_act_t)act, yr, want, n);
            float *dyf = dev(y, n * 4), *ddy = dev(dy, n * 4);
            void *dh = dev(NULL, n * 2);
            CK(tsr_gpu_to_half(G, (tsr_precision_t)p, dyf, dh, n, NULL));
            CK(tsr_gpu_act_backward_half(G, (tsr_precision_t)p, (tsr_act_t)act, dh, ddy, n));
            char what[96];
            snprintf(what, sizeof what, "%s act_backward (activation %d) from the half-stored output",
                     p == TSR_PRECISION_BF16 ? "bf16" : "fp16", act);
            cmp_dev(what, ddy, want, n, 1e-6);
            tsr_gpu_free(G, dyf), tsr_gpu_free(G, ddy), tsr_gpu_free(G, dh);
            free(y), free(yr), free(dy), free(want);
        }
    float *x = hrand(n, -1000, 1000), *want = dup_mem(x, n * 4), *dx = dev(x, n * 4);
    for (size_t i = 0; i < n; i++)
        want[i] *= 1.0f / 65536.0f;
    CK(tsr_gpu_scale(G, dx, n, 1.0f / 65536.0f));
    float *got = host(dx, n * 4);
    check("scale by 1/65536 is exact", memcmp(got, want, n * 4) == 0);
    tsr_gpu_free(G, dx);
    free(x), free(want), free(got);
}

static int nready;
static void count_ready(size_t offset, void *arg)
{
    (void)offset, (void)arg;
    nready++;
}

/* The same MLP, weights and batch in fp32 and in p on the GPU. */
static void test_model(tsr_precision_t p, double tol)
{
    enum { ROWS = 40 };
    tsr_model_spec_t spec;
    for (int act = TSR_ACT_RELU; act <= TSR_ACT_SIGMOID; act++) {
        tsr_model_spec_mlp(&spec, (const size_t[]){64, 48, 32, 10}, 3, (tsr_act_t)act, TSR_LOSS_XENT);
        tsr_model_t *m32 = NULL, *mh = NULL;
        CK(tsr_model_create(&spec, ROWS, &m32));
        CK(tsr_model_create(&spec, ROWS, &mh));
        tsr_model_init(m32, 5);
        tsr_model_init(mh, 5);
        CK(tsr_model_to_gpu(m32, G));
        CK(tsr_model_to_gpu_precision(mh, G, p));
        size_t n = tsr_model_nparams(m32);
        float *x = hrand(ROWS * 64, -1, 1), *o32 = malloc(ROWS * 10 * 4), *oh = malloc(ROWS * 10 * 4);
        int32_t y[ROWS];
        for (int i = 0; i < ROWS; i++)
            y[i] = (int32_t)(frand(0, 10)) % 10;
        CK(tsr_model_forward(m32, x, ROWS));
        CK(tsr_model_predict(m32, x, ROWS, o32));
        CK(tsr_model_forward(mh, x, ROWS));
        CK(tsr_model_predict(mh, x, ROWS, oh));
        CK(tsr_model_forward(m32, x, ROWS));
        double l32 = tsr_model_backward(m32, y, NULL, ROWS, 1.0f / ROWS, NULL, NULL);
        nready = 0;
        CK(tsr_model_forward(mh, x, ROWS));
        double lh = tsr_model_backward(mh, y, NULL, ROWS, 1.0f / ROWS, count_ready, NULL);
        CK(tsr_model_status(mh));
        float *g32 = host(tsr_model_work_grads(m32), n * 4), *gh = host(tsr_model_work_grads(mh), n * 4);
        const char *pn = p == TSR_PRECISION_BF16 ? "bf16" : "fp16";
        char what[128];
        snprintf(what, sizeof what, "%s model (activation %d): probabilities against fp32", pn, act);
        cmp(what, oh, o32, ROWS * 10, tol);
        snprintf(what, sizeof what, "%s model (activation %d): loss against fp32", pn, act);
        cmp_scalar(what, lh, l32, tol);
        /* Relative to the largest gradient (they are far below 1), and not
         * equal to fp32's: the half path ran. */
        double big = 0, diff = 0;
        for (size_t i = 0; i < n; i++) {
            big = fabs(g32[i]) > big ? fabs(g32[i]) : big;
            diff = fabs((double)gh[i] - g32[i]) > diff ? fabs((double)gh[i] - g32[i]) : diff;
        }
        snprintf(what, sizeof what, "%s model (activation %d): gradients against fp32", pn, act);
        cmp_scaled(what, gh, g32, n, big, 2 * tol);
        check("the half model's gradients differ from fp32's (its GEMMs ran on rounded inputs)", diff > 0);
        check("backward told the ready callback once per dense layer", nready == 3);
        free(x), free(o32), free(oh), free(g32), free(gh);
        tsr_model_destroy(m32);
        tsr_model_destroy(mh);
    }
}

int main(void)
{
    gpu_test_start();
    test_casts();
    test_gemm();
    test_act_backward_and_scale();
    test_model(TSR_PRECISION_BF16, 1e-2);
    test_model(TSR_PRECISION_FP16, 2e-3);
    return gpu_test_end();
}
