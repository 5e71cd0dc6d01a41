/* SPDX-License-Identifier: BSD-3-Clause */
/* Training-step throughput of a 784-256-256-10 ReLU MLP (softmax
 * cross-entropy, batch 128, SGD momentum 0.9, one BLAS thread), timed the
 * way the framework's step loop runs it: forward, backward, optimizer step.
 * Against two peers measured in the same run on the same BLAS:
 *   - the step's GEMMs alone, at the exact shapes a step uses (the rate the
 *     step would reach if everything but SGEMM were free: the SGEMM bound);
 *   - a square 1024^3 SGEMM (the machine's single-thread peak).
 * Usage: bench_train [--seconds S] [--reps N] [--batch B] [--json] */
#include "tessera/compute.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/place.h"
#include "tessera/rng.h"
#include "bench_gemm.h"
#include "bench_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NLAYERS 3
#define NBATCHES 60
static const size_t sizes[NLAYERS + 1] = {784, 256, 256, 10};

static float *falloc(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench_train: out of memory\n");
        exit(1);
    }
    return p;
}

static void fill(float *p, size_t n, tsr_rng_t *r, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)tsr_rng_uniform(r);
}

/* Runs fn(arg) repeatedly for at least `seconds`; returns seconds per call. */
typedef void (*work_fn)(void *arg);
static double time_per_call(work_fn fn, void *arg, double seconds)
{
    long calls = 0;
    double t0 = bench_now(), el;
    do {
        fn(arg);
        calls++;
        el = bench_now() - t0;
    } while (el < seconds);
    return el / (double)calls;
}

/* ---- the training step ---- */
typedef struct {
    tsr_model_t *model;
    tsr_optim_t *optim;
    float *x;   /* NBATCHES batches of inputs */
    int32_t *y; /* and their labels */
    size_t batch, next;
    double loss;
} step_ctx_t;

static void train_step(void *arg)
{
    step_ctx_t *s = arg;
    size_t b = s->next;
    s->next = (s->next + 1) % NBATCHES;
    const float *x = s->x + b * s->batch * sizes[0];
    const int32_t *y = s->y + b * s->batch;
    tsr_model_forward(s->model, x, s->batch);
    s->loss += tsr_model_backward(s->model, y, NULL, s->batch, 1.0f / (float)s->batch, NULL, NULL);
    tsr_optim_step(s->optim, tsr_model_params(s->model), tsr_model_grads(s->model), NULL);
}

/* ---- the step's GEMMs alone, same shapes, same transposes as model.c ---- */
typedef struct {
    size_t batch, next;
    const float *x; /* the step's input batches, read in the same rotation */
    float *w[NLAYERS], *gw[NLAYERS], *act[NLAYERS + 1], *delta[NLAYERS + 1];
} gemm_ctx_t;

static void step_gemms(void *arg)
{
    gemm_ctx_t *g = arg;
    size_t rows = g->batch;
    g->act[0] = (float *)g->x + g->next * rows * sizes[0];
    g->next = (g->next + 1) % NBATCHES;
    for (int i = 0; i < NLAYERS; i++) /* Y = X W^T */
        tsr_compute_gemm(0, 1, rows, sizes[i + 1], sizes[i], 1.0f, g->act[i], g->w[i], 0.0f, g->act[i + 1]);
    for (int i = NLAYERS - 1; i >= 0; i--) {
        /* dW = delta^T X */
        tsr_compute_gemm(1, 0, sizes[i + 1], sizes[i], rows, 1.0f, g->delta[i + 1], g->act[i], 0.0f, g->gw[i]);
        if (i > 0) /* dX = delta W */
            tsr_compute_gemm(0, 0, rows, sizes[i], sizes[i + 1], 1.0f, g->delta[i + 1], g->w[i], 0.0f, g->delta[i]);
    }
}

/* FLOPs the step's GEMMs execute per sample (no dX for the input layer). */
static double gemm_flops_per_sample(void)
{
    double f = 0;
    for (int i = 0; i < NLAYERS; i++)
        f += (i > 0 ? 6.0 : 4.0) * (double)sizes[i] * (double)sizes[i + 1];
    return f;
}

/* ---- square SGEMM ---- */
typedef struct {
    size_t n;
    float *a, *b, *c;
} square_ctx_t;

static void square_gemm(void *arg)
{
    square_ctx_t *s = arg;
    tsr_compute_gemm(0, 0, s->n, s->n, s->n, 1.0f, s->a, s->b, 0.0f, s->c);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_train [--seconds S] [--reps N] [--batch B] [--gemm onednn|openblas] [--json]\n"
               "  Times the MLP 784-256-256-10 training step (median of N runs of S seconds)\n"
               "  against the same step's SGEMMs alone and a 1024^3 SGEMM, one BLAS thread.\n");
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    int reps = 5, json = 0;
    size_t batch = 128;
    const char *gemm_name = "auto"; /* as tessera train runs */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--gemm") && i + 1 < argc)
            gemm_name = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!(seconds > 0) || reps < 1 || reps > 64 || batch < 1 || batch > 65536) {
        fprintf(stderr, "bench_train: expected --seconds > 0, 1 <= --reps <= 64, 1 <= --batch <= 65536\n");
        return 2;
    }
    double warm = seconds < 1.0 ? seconds : 1.0;
    tsr_place_set_blas_threads(1);
    if (bench_set_gemm("bench_train", gemm_name))
        return 2;

    tsr_rng_t rng;
    tsr_rng_seed(&rng, 1234, 0);

    /* Model, optimizer and synthetic data. */
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, sizes, NLAYERS, TSR_ACT_RELU, TSR_LOSS_XENT);
    step_ctx_t st = {0};
    st.batch = batch;
    if (tsr_model_create(&spec, batch, &st.model)) {
        fprintf(stderr, "bench_train: cannot create the model\n");
        return 1;
    }
    tsr_model_init(st.model, 1);
    tsr_optim_config_t oc;
    memset(&oc, 0, sizeof oc);
    oc.kind = TSR_OPTIM_SGD;
    oc.lr = 0.01;
    oc.momentum = 0.9;
    oc.beta1 = 0.9;
    oc.beta2 = 0.999;
    oc.eps = 1e-8;
    oc.schedule = TSR_SCHED_CONSTANT;
    if (tsr_optim_create(&oc, tsr_model_nparams(st.model), &st.optim)) {
        fprintf(stderr, "bench_train: cannot create the optimizer\n");
        return 1;
    }
    st.x = falloc(NBATCHES * batch * sizes[0]);
    fill(st.x, NBATCHES * batch * sizes[0], &rng, 0.0f, 1.0f);
    st.y = malloc(NBATCHES * batch * sizeof *st.y);
    if (!st.y)
        return 1;
    for (size_t i = 0; i < NBATCHES * batch; i++)
        st.y[i] = (int32_t)tsr_rng_below(&rng, sizes[NLAYERS]);

    /* GEMM-only peer: its own buffers of the step's shapes. */
    gemm_ctx_t gc = {0};
    gc.batch = batch;
    gc.x = st.x;
    for (int i = 1; i <= NLAYERS; i++) {
        gc.act[i] = falloc(batch * sizes[i]);
        gc.delta[i] = falloc(batch * sizes[i]);
        fill(gc.act[i], batch * sizes[i], &rng, 0.0f, 1.0f);
        fill(gc.delta[i], batch * sizes[i], &rng, -0.01f, 0.01f);
    }
    gc.delta[0] = NULL; /* no dX for the input layer */
    for (int i = 0; i < NLAYERS; i++) {
        gc.w[i] = falloc(sizes[i] * sizes[i + 1]);
        gc.gw[i] = falloc(sizes[i] * sizes[i + 1]);
        fill(gc.w[i], sizes[i] * sizes[i + 1], &rng, -0.05f, 0.05f);
    }

    square_ctx_t sq = {.n = 1024};
    sq.a = falloc(sq.n * sq.n);
    sq.b = falloc(sq.n * sq.n);
    sq.c = falloc(sq.n * sq.n);
    fill(sq.a, sq.n * sq.n, &rng, -1.0f, 1.0f);
    fill(sq.b, sq.n * sq.n, &rng, -1.0f, 1.0f);

    /* Each run alternates blocks of BLOCK training steps with BLOCK passes of
     * the step's GEMMs alone, and one square GEMM every fourth block, until
     * `seconds` of training steps are timed. Load on a shared machine or a
     * change of clock speed then hits the step and its peers alike; the
     * fractions are medians of each run's ratio. */
    enum { BLOCK = 16 };
    double v_step[64], v_gemm[64], v_sq[64], v_fg[64], v_fp[64];
    double gfps = gemm_flops_per_sample(); /* what the GEMMs execute */
    time_per_call(train_step, &st, warm);
    time_per_call(step_gemms, &gc, warm * 0.5);
    time_per_call(square_gemm, &sq, warm * 0.25);
    for (int r = 0; r < reps; r++) {
        double ts = 0, tg = 0, tq = 0;
        long ns = 0, ng = 0, nq = 0;
        for (long blk = 0; ts < seconds; blk++) {
            double t0 = bench_now();
            for (int i = 0; i < BLOCK; i++)
                train_step(&st);
            double t1 = bench_now();
            for (int i = 0; i < BLOCK; i++)
                step_gemms(&gc);
            double t2 = bench_now();
            ts += t1 - t0;
            tg += t2 - t1;
            ns += BLOCK;
            ng += BLOCK;
            if (blk % 4 == 0) {
                square_gemm(&sq);
                tq += bench_now() - t2;
                nq++;
            }
        }
        v_step[r] = ts / (double)ns;
        v_gemm[r] = tg / (double)ng;
        v_sq[r] = tq / (double)nq;
        v_fg[r] = v_gemm[r] / v_step[r];
        v_fp[r] = gfps * (double)batch / v_step[r] / (2.0 * (double)sq.n * sq.n * sq.n / v_sq[r]);
    }
    double t_step = bench_median(v_step, reps), t_gemm = bench_median(v_gemm, reps), t_sq = bench_median(v_sq, reps);

    double fps = tsr_model_flops_per_sample(st.model); /* nominal: 6*in*out per layer */
    double sps = (double)batch / t_step;
    double sps_gemm = (double)batch / t_gemm;
    double gflops_nominal = fps * sps * 1e-9;
    double gflops_exec = gfps * sps * 1e-9;
    double gflops_gemm = gfps * sps_gemm * 1e-9;
    double gflops_sq = 2.0 * (double)sq.n * sq.n * sq.n / t_sq * 1e-9;
    double frac_gemm = bench_median(v_fg, reps); /* achieved / SGEMM-at-step-shapes (time ratio) */
    double frac_peak = bench_median(v_fp, reps); /* executed FLOP rate / square peak */

    char gemm[96];
    tsr_compute_gemm_describe(gemm, sizeof gemm);
    if (json) {
        printf(
            "{\"bench\":\"train\",\"gemm\":\"%s\",\"model\":\"784-256-256-10 relu\",\"batch\":%zu,\"reps\":%d,\"seconds\":%g,"
            "\"samples_per_s\":%.1f,\"step_ms\":%.4f,\"flops_per_sample\":%.0f,\"gemm_flops_per_sample\":%.0f,"
            "\"gflops\":%.3f,\"gflops_executed\":%.3f,\"gemm_step_ms\":%.4f,\"gemm_samples_per_s\":%.1f,"
            "\"gemm_gflops\":%.3f,\"square_gflops\":%.3f,\"frac_sgemm_bound\":%.4f,\"frac_square_peak\":%.4f,"
            "\"loss_checksum\":%.6g}\n",
            gemm, batch, reps, seconds, sps, 1e3 * t_step, fps, gfps, gflops_nominal, gflops_exec, 1e3 * t_gemm,
            sps_gemm, gflops_gemm, gflops_sq, frac_gemm, frac_peak, st.loss);
    } else {
        printf("tessera training step, MLP 784-256-256-10 relu, batch %zu, SGD momentum, 1 BLAS thread, %s\n", batch,
               gemm);
        printf("  median of %d runs of %.1f s\n", reps, seconds);
        printf("  step                       %8.3f ms   %10.0f samples/s\n", 1e3 * t_step, sps);
        printf("  model FLOPs/sample         %10.0f (nominal 6*in*out per layer; GEMMs execute %.0f)\n", fps, gfps);
        printf("  achieved                   %8.2f GFLOP/s nominal, %.2f GFLOP/s executed\n", gflops_nominal,
               gflops_exec);
        printf("  SGEMM at step shapes       %8.3f ms   %10.0f samples/s  %8.2f GFLOP/s\n", 1e3 * t_gemm, sps_gemm,
               gflops_gemm);
        printf("  SGEMM 1024^3 (peak)                              %8.2f GFLOP/s\n", gflops_sq);
        printf("  achieved / SGEMM-bound     %8.3f\n", frac_gemm);
        printf("  achieved / square peak     %8.3f\n", frac_peak);
    }

    tsr_model_destroy(st.model);
    tsr_optim_destroy(st.optim);
    free(st.x);
    free(st.y);
    for (int i = 1; i <= NLAYERS; i++) {
        free(gc.act[i]);
        free(gc.delta[i]);
    }
    for (int i = 0; i < NLAYERS; i++) {
        free(gc.w[i]);
        free(gc.gw[i]);
    }
    free(sq.a);
    free(sq.b);
    free(sq.c);
    return 0;
}
