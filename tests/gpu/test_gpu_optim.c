/* SPDX-License-Identifier: BSD-3-Clause */
/* The optimizer pieces on the GPU (sumsq, clip, SGD, AdamW) against
 * optim.c's rules written out on the host; sumsq runs twice to check
 * bit-identical results; streams and events. Exits 77 (ctest: skipped)
 * where tsr_gpu_count() is 0. */
#include "gpu_test.h"

static void test_sumsq_clip(void)
{
    const size_t n = 1000003;
    float *x = hrand(n, -1, 1);
    double want = 0.0, got, again, *ds = dev(NULL, 8);
    for (size_t i = 0; i < n; i++)
        want += (double)x[i] * x[i];
    float *dx = dev(x, n * 4);
    CK(tsr_gpu_sumsq(G, dx, n, ds));
    CK(tsr_gpu_download(G, &got, ds, 8));
    CK(tsr_gpu_sumsq(G, dx, n, ds));
    CK(tsr_gpu_download(G, &again, ds, 8));
    cmp_scalar("sumsq of 1000003", got, want, 1e-12);
    check("sumsq bit-identical twice", memcmp(&got, &again, 8) == 0);
    for (int on = 0; on < 2; on++) {
        float clip = (float)sqrt(got) * (on ? 0.5f : 2.0f), *h = dup_mem(x, n * 4);
        double norm = sqrt(got);
        if (norm > clip) {
            float f = (float)((double)clip / (norm + 1e-6));
            for (size_t i = 0; i < n; i++)
                h[i] *= f;
        }
        CK(tsr_gpu_upload(G, dx, x, n * 4));
        CK(tsr_gpu_clip(G, dx, n, ds, clip));
        cmp_dev(on ? "clip (norm above clip: scaled)" : "clip (norm below clip: unchanged)", dx, h, n, 1e-6);
        free(h);
    }
    CK(tsr_gpu_sumsq(G, NULL, 0, ds));
    CK(tsr_gpu_download(G, &got, ds, 8));
    check("sumsq of nothing is 0", got == 0.0);
    tsr_gpu_free(G, dx), tsr_gpu_free(G, ds);
    free(x);
}

static void test_sgd(void)
{
    const size_t n = 4099;
    const float lr = 0.05f, wd = 0.01f, mu = 0.9f;
    /* {momentum, nesterov, first} */
    int cases[][3] = {{0, 0, 0}, {1, 0, 1}, {1, 0, 0}, {1, 1, 1}, {1, 1, 0}};
    for (int c = 0; c < 5; c++) {
        float *p = hrand(n, -1, 1), *g = hrand(n, -1, 1), *v = hrand(n, -1, 1);
        float *dp = dev(p, n * 4), *dg = dev(g, n * 4), *dv = cases[c][0] ? dev(v, n * 4) : NULL;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            if (!cases[c][0]) {
                p[i] -= lr * gi;
                continue;
            }
            v[i] = cases[c][2] ? gi : mu * v[i] + gi;
            p[i] -= lr * (cases[c][1] ? gi + mu * v[i] : v[i]);
        }
        CK(tsr_gpu_sgd(G, dp, dg, dv, n, lr, wd, mu, cases[c][1], cases[c][2], NULL));
        char what[80];
        snprintf(what, sizeof what, "sgd momentum=%d nesterov=%d first=%d: params", cases[c][0], cases[c][1],
                 cases[c][2]);
        cmp_dev(what, dp, p, n, 1e-6);
        if (dv) {
            snprintf(what, sizeof what, "sgd momentum=1 nesterov=%d first=%d: velocity", cases[c][1], cases[c][2]);
            cmp_dev(what, dv, v, n, 1e-6);
        }
        tsr_gpu_free(G, dp), tsr_gpu_free(G, dg), tsr_gpu_free(G, dv);
        free(p), free(g), free(v);
    }
}

static void test_adamw(void)
{
    const size_t n = 4099;
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = 1e-3f;
    float bc1 = (float)(1.0 - pow(b1, 3)), bc2s = (float)sqrt(1.0 - pow(b2, 3));
    float step = lr / bc1, decay = 1.0f - lr * 0.01f;
    float *p = hrand(n, -1, 1), *g = hrand(n, -1, 1), *m = hrand(n, -0.1f, 0.1f), *v = hrand(n, 0, 0.01f);
    float *dp = dev(p, n * 4), *dg = dev(g, n * 4), *dm = dev(m, n * 4), *dv = dev(v, n * 4);
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) / bc2s + eps);
    }
    CK(tsr_gpu_adamw(G, dp, dg, dm, dv, n, step, decay, b1, b2, eps, bc2s, NULL));
    cmp_dev("adamw params", dp, p, n, 1e-6);
    cmp_dev("adamw first moment", dm, m, n, 1e-6);
    cmp_dev("adamw second moment", dv, v, n, 1e-6);
    tsr_gpu_free(G, dp), tsr_gpu_free(G, dg), tsr_gpu_free(G, dm), tsr_gpu_free(G, dv);
    free(p), free(g), free(m), free(v);
}

/* A second stream ordered after the compute stream through an event. */
static void test_streams(void)
{
    void *s = NULL, *e0 = NULL, *e1 = NULL;
    float ms = -1.0f, *dx = dev(NULL, 1 << 20);
    CK(tsr_gpu_stream_create(G, &s));
    CK(tsr_gpu_event_create(&e0));
    CK(tsr_gpu_event_create(&e1));
    CK(tsr_gpu_event_record(e0, tsr_gpu_stream(G)));
    CK(tsr_gpu_act(G, TSR_ACT_TANH, dx, (1 << 20) / 4));
    CK(tsr_gpu_event_record(e1, tsr_gpu_stream(G)));
    CK(tsr_gpu_stream_wait_event(s, e1));
    CK(tsr_gpu_stream_sync(s));
    CK(tsr_gpu_event_elapsed_ms(e0, e1, &ms));
    check("events: elapsed time >= 0 ms", ms >= 0.0f);
    tsr_gpu_event_destroy(e0), tsr_gpu_event_destroy(e1), tsr_gpu_stream_destroy(s);
    tsr_gpu_free(G, dx);
    void *hp = NULL;
    CK(tsr_gpu_host_alloc(4096, &hp));
    tsr_gpu_host_free(hp);
    CK(tsr_gpu_sync(G));
}

int main(void)
{
    gpu_test_start();
    test_sumsq_clip();
    test_sgd();
    test_adamw();
    test_streams();
    return gpu_test_end();
}
