/* SPDX-License-Identifier: BSD-3-Clause */
/* The GPU kernels (tsr_gpu_*) against the CPU ones in compute.h and the
 * model's loss code written out, on random data with odd sizes; bias_grad
 * runs twice to check bit-identical results. Exits 77 (ctest: skipped)
 * where tsr_gpu_count() is 0. */
#include "gpu_test.h"

static void test_gemm(void)
{
    const size_t m = 37, n = 29, k = 45;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *a = hrand(m * k, -1, 1), *b = hrand(k * n, -1, 1), *c = hrand(m * n, -1, 1);
            float *da = dev(a, m * k * 4), *db = dev(b, k * n * 4), *dc = dev(c, m * n * 4);
            tsr_compute_gemm(ta, tb, m, n, k, 0.7f, a, b, 0.3f, c);
            CK(tsr_gpu_gemm(G, ta, tb, m, n, k, 0.7f, da, db, 0.3f, dc));
            char what[64];
            snprintf(what, sizeof what, "gemm trans_a=%d trans_b=%d %zux%zux%zu", ta, tb, m, n, k);
            cmp_dev(what, dc, c, m * n, 1e-5);
            tsr_gpu_free(G, da), tsr_gpu_free(G, db), tsr_gpu_free(G, dc);
            free(a), free(b), free(c);
        }
    CK(tsr_gpu_gemm(G, 0, 0, 0, 5, 5, 1.0f, NULL, NULL, 0.0f, NULL));
    check("gemm with m = 0 is a no-op", 1);
}

static void test_bias(void)
{
    size_t shapes[][2] = {{33, 300}, {70, 10}, {1000, 37}, {70000, 3}};
    for (int s = 0; s < 4; s++) {
        size_t rows = shapes[s][0], n = shapes[s][1];
        float *y = hrand(rows * n, -1, 1), *b = hrand(n, -1, 1), *db = malloc(n * 4);
        float *dy = dev(y, rows * n * 4), *dbias = dev(b, n * 4), *ddb = dev(NULL, n * 4);
        char what[80];
        tsr_compute_add_bias(y, b, rows, n);
        CK(tsr_gpu_add_bias(G, dy, dbias, rows, n));
        snprintf(what, sizeof what, "add_bias %zux%zu", rows, n);
        cmp_dev(what, dy, y, rows * n, 1e-6);
        tsr_compute_bias_grad(y, rows, n, db);
        CK(tsr_gpu_bias_grad(G, dy, rows, n, ddb));
        float *first = host(ddb, n * 4);
        /* Float sums in different orders: error relative to sum |dy|. */
        double abs_sum = 1.0;
        for (size_t j = 0; j < n; j++) {
            double a = 0.0;
            for (size_t r = 0; r < rows; r++)
                a += fabs(y[r * n + j]);
            abs_sum = a > abs_sum ? a : abs_sum;
        }
        snprintf(what, sizeof what, "bias_grad %zux%zu", rows, n);
        cmp_scaled(what, first, db, n, abs_sum, 1e-5);
        CK(tsr_gpu_bias_grad(G, dy, rows, n, ddb));
        float *again = host(ddb, n * 4);
        snprintf(what, sizeof what, "bias_grad %zux%zu bit-identical twice", rows, n);
        check(what, memcmp(first, again, n * 4) == 0);
        tsr_gpu_free(G, dy), tsr_gpu_free(G, dbias), tsr_gpu_free(G, ddb);
        free(y), free(b), free(db), free(first), free(again);
    }
    float *ddb = dev(NULL, 8 * 4), ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, zeros[8] = {0};
    CK(tsr_gpu_upload(G, ddb, ones, sizeof ones));
    CK(tsr_gpu_bias_grad(G, NULL, 0, 8, ddb));
    cmp_dev("bias_grad of 0 rows is zeros", ddb, zeros, 8, 0);
    tsr_gpu_free(G, ddb);
}

static void test_act(void)
{
    const size_t len = 10007;
    for (int a = TSR_ACT_NONE; a <= TSR_ACT_SIGMOID; a++) {
        float *x = hrand(len, -3, 3), *dy = hrand(len, -1, 1);
        float *dx = dev(x, len * 4), *ddy = dev(dy, len * 4);
        char what[64];
        tsr_compute_act((tsr_act_t)a, x, len);
        CK(tsr_gpu_act(G, (tsr_act_t)a, dx, len));
        snprintf(what, sizeof what, "act %s", tsr_act_name((tsr_act_t)a));
        cmp_dev(what, dx, x, len, 1e-6);
        /* backward from the CPU's outputs, so only the derivative differs */
        CK(tsr_gpu_upload(G, dx, x, len * 4));
        tsr_compute_act_backward((tsr_act_t)a, x, dy, len);
        CK(tsr_gpu_act_backward(G, (tsr_act_t)a, dx, ddy, len));
        snprintf(what, sizeof what, "act_backward %s", tsr_act_name((tsr_act_t)a));
        cmp_dev(what, ddy, dy, len, 1e-6);
        tsr_gpu_free(G, dx), tsr_gpu_free(G, ddy);
        free(x), free(dy);
    }
    check("unknown activation is EINVAL", tsr_gpu_act(G, (tsr_act_t)9, NULL, 1) == TSR_EINVAL);
}

static void test_softmax(void)
{
    /* 70001 rows: more than one row per warp (the grid holds 65536 warps). */
    size_t shapes[][2] = {{65, 10}, {9, 100}, {3, 1}, {70001, 3}};
    for (int s = 0; s < 4; s++) {
        size_t rows = shapes[s][0], n = shapes[s][1];
        float *z = hrand(rows * n, -8, 8), *p = malloc(rows * n * 4);
        float *dz = dev(z, rows * n * 4), *dp = dev(NULL, rows * n * 4);
        char what[64];
        tsr_compute_softmax(z, p, rows, n);
        CK(tsr_gpu_softmax(G, dz, dp, rows, n));
        snprintf(what, sizeof what, "softmax %zux%zu", rows, n);
        cmp_dev(what, dp, p, rows * n, 1e-6);
        CK(tsr_gpu_softmax(G, dz, dz, rows, n));
        snprintf(what, sizeof what, "softmax %zux%zu in place", rows, n);
        cmp_dev(what, dz, p, rows * n, 1e-6);
        tsr_gpu_free(G, dz), tsr_gpu_free(G, dp);
        free(z), free(p);
    }
}

/* model.c's loss_delta, written out. */
static double xent_ref(const float *z, const int32_t *y, size_t rows, size_t k, float scale, float *d)
{
    double sum = 0.0;
    tsr_compute_softmax(z, d, rows, k);
    for (size_t r = 0; r < rows; r++) {
        float *dr = d + r * k, p = dr[y[r]] > 1e-30f ? dr[y[r]] : 1e-30f;
        sum -= log((double)p);
        dr[y[r]] -= 1.0f;
        for (size_t j = 0; j < k; j++)
            dr[j] *= scale;
    }
    return sum;
}

static void test_losses(void)
{
    const size_t rows = 203, ks[] = {10, 77};
    for (int s = 0; s < 2; s++) {
        size_t k = ks[s];
        float *z = hrand(rows * k, -6, 6), *t = hrand(rows * k, -1, 1), *d = malloc(rows * k * 4);
        int32_t *y = malloc(rows * 4);
        for (size_t r = 0; r < rows; r++) {
            y[r] = (int32_t)(frand(0, 1) * (float)k) % (int32_t)k;
            if (r % 7 == 0) /* ties: the first maximum is the prediction */
                z[r * k + 1] = z[r * k + k - 1] = z[r * k + (size_t)y[r]] = 50.0f;
        }
        double loss0 = 0.25, hloss, eloss = 0.0;
        unsigned long long c0 = 3, hc;
        size_t correct = 0;
        float *dz = dev(z, rows * k * 4), *dt = dev(t, rows * k * 4), *dd = dev(NULL, rows * k * 4);
        int32_t *dy = dev(y, rows * 4);
        double *dl = dev(&loss0, 8);
        unsigned long long *dc = dev(&c0, 8);
        char what[80];

        double want = xent_ref(z, y, rows, k, 1.0f / (float)rows, d);
        CK(tsr_gpu_xent_delta(G, dz, dy, rows, k, 1.0f / (float)rows, dd, dl));
        snprintf(what, sizeof what, "xent_delta %zux%zu delta", rows, k);
        cmp_dev(what, dd, d, rows * k, 1e-6);
        CK(tsr_gpu_download(G, &hloss, dl, 8));
        snprintf(what, sizeof what, "xent_delta %zux%zu loss (added)", rows, k);
        cmp_scalar(what, hloss - loss0, want, 1e-5);

        want = 0.0;
        float c = 2.0f / (float)k, scale = 0.5f;
        for (size_t i = 0; i < rows * k; i++) {
            float e = z[i] - t[i];
            want += (double)e * e / (double)k;
            d[i] = c * e * scale;
        }
        CK(tsr_gpu_upload(G, dl, &loss0, 8));
        CK(tsr_gpu_mse_delta(G, dz, dt, rows, k, scale, dd, dl));
        snprintf(what, sizeof what, "mse_delta %zux%zu delta", rows, k);
        cmp_dev(what, dd, d, rows * k, 1e-6);
        CK(tsr_gpu_download(G, &hloss, dl, 8));
        snprintf(what, sizeof what, "mse_delta %zux%zu loss (added)", rows, k);
        cmp_scalar(what, hloss - loss0, want, 1e-9);

        /* tsr_model_evaluate's loops */
        for (size_t r = 0; r < rows; r++) {
            const float *o = z + r * k;
            size_t best = 0;
            float mx = o[0];
            for (size_t j = 1; j < k; j++)
                if (o[j] > mx)
                    mx = o[j], best = j;
            double sum = 0.0;
            for (size_t j = 0; j < k; j++)
                sum += exp((double)(o[j] - mx));
            eloss += log(sum) - (double)(o[y[r]] - mx);
            correct += best == (size_t)y[r];
        }
        CK(tsr_gpu_upload(G, dl, &loss0, 8));
        CK(tsr_gpu_xent_eval(G, dz, dy, rows, k, dl, dc));
        CK(tsr_gpu_download(G, &hloss, dl, 8));
        CK(tsr_gpu_download(G, &hc, dc, 8));
        snprintf(what, sizeof what, "xent_eval %zux%zu loss", rows, k);
        cmp_scalar(what, hloss - loss0, eloss, 1e-9);
        snprintf(what, sizeof what, "xent_eval %zux%zu correct %zu of %zu (ties: first maximum)", rows, k, correct,
                 rows);
        check(what, hc - c0 == correct);

        want = 0.0;
        for (size_t i = 0; i < rows * k; i++) {
            double e = (double)z[i] - (double)t[i];
            want += e * e / (double)k;
        }
        CK(tsr_gpu_upload(G, dl, &loss0, 8));
        CK(tsr_gpu_mse_eval(G, dz, dt, rows, k, dl));
        CK(tsr_gpu_download(G, &hloss, dl, 8));
        snprintf(what, sizeof what, "mse_eval %zux%zu loss", rows, k);
        cmp_scalar(what, hloss - loss0, want, 1e-9);

        tsr_gpu_free(G, dz), tsr_gpu_free(G, dt), tsr_gpu_free(G, dd), tsr_gpu_free(G, dy);
        tsr_gpu_free(G, dl), tsr_gpu_free(G, dc);
        free(z), free(t), free(d), free(y);
    }
}

#ifdef TSR_HAVE_CUDA
int tsr_cublas_load(void); /* src/compute/cuda/cublas_load.c */
#endif

int main(void)
{
#ifdef TSR_HAVE_CUDA
    /* cuBLAS is opened at run time, not linked: that must work wherever
     * the toolkit is, GPU or not, so this runs before the skip. */
    if (tsr_cublas_load() != TSR_OK) {
        fprintf(stderr, "FAIL: cuBLAS cannot be loaded: %s\n", tsr_last_error());
        return 1;
    }
    printf("ok: cuBLAS loads at run time\n");
#endif
    gpu_test_start();
    char bus[32];
    CK(tsr_gpu_pci_busid(0, bus, sizeof bus));
    check("PCI bus id looks like 0000:3b:00.0", strlen(bus) == 12 && bus[4] == ':' && bus[7] == ':' && bus[10] == '.');
    check("a device out of range is EINVAL", tsr_gpu_create(tsr_gpu_count(), &(tsr_gpu_t *){NULL}) == TSR_EINVAL);
    test_gemm();
    test_bias();
    test_act();
    test_softmax();
    test_losses();
    return gpu_test_end();
}
