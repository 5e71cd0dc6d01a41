/* SPDX-License-Identifier: BSD-3-Clause */
/* Training-step throughput of a layer graph (default: the Fashion-MNIST CNN
 * of issue 16), batch 128, SGD momentum 0.9, one BLAS thread, synthetic
 * 1x28x28 inputs, timed as the step loop runs it (forward, backward,
 * optimizer), in blocks alternating with a 1024^3 SGEMM: the SGEMM-bound
 * rate is that SGEMM's FLOP rate divided by the net's FLOPs per sample
 * (tsr_model_flops_per_sample: forward, weight and input gradients).
 * --gpu: the same steps on GPU 0 (the model and optimizer moved there; each
 * step reads its loss back, so the host waits once a step), for
 * run_gpu_bench.sh against torch_cnn.py --device cuda; the SGEMM fraction
 * is then not computed (0).
 * --cpu-time times with the process's CPU clock instead of the wall clock:
 * on a shared, oversubscribed machine that leaves out the time other
 * processes held the core (not their effect on the caches).
 * Usage: bench_cnn [--layers L] [--input CxHxW] [--seconds S] [--reps N] [--batch B] [--gpu] [--cpu-time] [--json] */
#include "tessera/compute.h"
#include "tessera/error.h"
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

#define NBATCHES 8
static int cpu_clock;

static double now(void)
{
    if (!cpu_clock)
        return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static const char *const default_layers = "conv(32,3,pad=1) relu maxpool(2) conv(64,3,pad=1) relu maxpool(2) "
                                          "flatten dense(128) relu dense(10)";

static float *falloc(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench_cnn: out of memory\n");
        exit(1);
    }
    return p;
}

typedef struct {
    tsr_model_t *model;
    tsr_optim_t *optim;
    float *x;
    int32_t *y;
    size_t batch, next, d;
    double loss;
} step_ctx_t;

static void train_step(step_ctx_t *s)
{
    size_t b = s->next;
    s->next = (s->next + 1) % NBATCHES;
    tsr_model_forward(s->model, s->x + b * s->batch * s->d, s->batch);
    s->loss += tsr_model_backward(s->model, s->y + b * s->batch, NULL, s->batch, 1.0f / (float)s->batch, NULL, NULL);
    tsr_optim_step(s->optim, tsr_model_work_params(s->model), tsr_model_work_grads(s->model), NULL);
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    int reps = 5, json = 0, gpu = 0;
    size_t batch = 128;
    const char *gemm_name = "auto"; /* as tessera train runs */
    const char *layers = default_layers, *input = "1x28x28";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--gemm") && i + 1 < argc)
            gemm_name = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            layers = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc)
            input = argv[++i];
        else if (!strcmp(argv[i], "--gpu"))
            gpu = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--cpu-time"))
            cpu_clock = 1;
        else {
            fprintf(stderr, "usage: bench_cnn [--layers L] [--input CxHxW] [--seconds S] [--reps N] [--batch B] "
                            "[--gemm onednn|openblas] [--gpu] [--cpu-time] [--json]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!(seconds > 0) || reps < 1 || reps > 64 || batch < 1 || batch > 65536)
        return 2;
    tsr_place_set_blas_threads(1);
    if (bench_set_gemm("bench_cnn", gemm_name))
        return 2;
    tsr_model_spec_t *spec = calloc(1, sizeof *spec);
    step_ctx_t st = {.batch = batch};
    if (!spec || tsr_shape_parse(input, &spec->input) || tsr_model_parse(layers, spec) ||
        tsr_model_create(spec, batch, &st.model)) {
        fprintf(stderr, "bench_cnn: %s\n", tsr_last_error());
        return 1;
    }
    tsr_model_init(st.model, 1);
    tsr_optim_config_t oc = {.kind = TSR_OPTIM_SGD,
                             .lr = 0.01,
                             .momentum = 0.9,
                             .beta1 = 0.9,
                             .beta2 = 0.999,
                             .eps = 1e-8,
                             .schedule = TSR_SCHED_CONSTANT};
    if (tsr_optim_create(&oc, tsr_model_nparams(st.model), &st.optim)) {
        fprintf(stderr, "bench_cnn: %s\n", tsr_last_error());
        return 1;
    }
    tsr_gpu_t *g = NULL;
    if (gpu && tsr_gpu_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (gpu && (tsr_gpu_create(0, &g) || tsr_model_to_gpu(st.model, g) || tsr_optim_to_gpu(st.optim, g))) {
        fprintf(stderr, "bench_cnn: %s\n", tsr_last_error());
        return 1;
    }
    st.d = tsr_model_input_size(st.model);
    size_t k = tsr_model_output_size(st.model);
    tsr_rng_t rng;
    tsr_rng_seed(&rng, 1234, 0);
    st.x = falloc(NBATCHES * batch * st.d);
    st.y = malloc(NBATCHES * batch * sizeof *st.y);
    for (size_t i = 0; i < NBATCHES * batch * st.d; i++)
        st.x[i] = (float)tsr_rng_uniform(&rng);
    for (size_t i = 0; i < NBATCHES * batch; i++)
        st.y[i] = (int32_t)tsr_rng_below(&rng, k);
    size_t n = 1024;
    float *a = falloc(n * n), *b = falloc(n * n), *c = falloc(n * n);
    for (size_t i = 0; i < n * n; i++)
        a[i] = (float)tsr_rng_uniform(&rng), b[i] = (float)tsr_rng_uniform(&rng);

    double v_step[64], v_sq[64], v_frac[64];
    double fps = tsr_model_flops_per_sample(st.model);
    for (int i = 0; i < 3; i++) /* warm */
        train_step(&st);
    tsr_compute_gemm(0, 0, n, n, n, 1.0f, a, b, 0.0f, c);
    for (int r = 0; r < reps; r++) {
        double ts = 0, tq = 0;
        long ns = 0, nq = 0;
        while (ts < seconds) {
            double t0 = now();
            for (int i = 0; i < 4; i++)
                train_step(&st);
            double t1 = now();
            tsr_compute_gemm(0, 0, n, n, n, 1.0f, a, b, 0.0f, c);
            tq += now() - t1;
            ts += t1 - t0;
            ns += 4;
            nq++;
        }
        v_step[r] = ts / (double)ns;
        v_sq[r] = tq / (double)nq;
        /* achieved FLOP rate over the square SGEMM's, in the same run */
        v_frac[r] = gpu ? 0 : fps * (double)batch / v_step[r] / (2.0 * (double)n * n * n / v_sq[r]);
    }
    double t_step = bench_median(v_step, reps), t_sq = bench_median(v_sq, reps);
    double frac = bench_median(v_frac, reps), sps = (double)batch / t_step;
    double sq_gflops = 2.0 * (double)n * n * n / t_sq * 1e-9;
    char gemm[96];
    tsr_compute_gemm_describe(gemm, sizeof gemm);
    if (json)
        printf(
            "{\"bench\":\"cnn\",\"gemm\":\"%s\",\"device\":\"%s\",\"clock\":\"%s\",\"batch\":%zu,\"reps\":%d,\"seconds\":%g,"
            "\"samples_per_s\":%.1f,\"step_ms\":%.3f,"
            "\"flops_per_sample\":%.0f,\"gflops\":%.3f,\"square_gflops\":%.3f,\"sgemm_bound_samples_per_s\":%.1f,"
            "\"frac_sgemm_bound\":%.4f,\"loss_checksum\":%.6g}\n",
            gemm, gpu ? "cuda" : "cpu", cpu_clock ? "cpu" : "wall", batch, reps, seconds, sps, 1e3 * t_step, fps,
            fps * sps * 1e-9, sq_gflops, sq_gflops * 1e9 / fps, frac, st.loss);
    else
        printf("%s over %s, batch %zu, %s: %.0f samples/s (%.2f ms/step), %.3g FLOPs/sample, %.2f "
               "GFLOP/s; SGEMM 1024^3 %.2f GFLOP/s = %.0f samples/s bound; fraction %.3f (%s)\n",
               layers, input, batch, gpu ? tsr_gpu_name(g) : "1 BLAS thread", sps, 1e3 * t_step, fps, fps * sps * 1e-9,
               sq_gflops, sq_gflops * 1e9 / fps, frac, gemm);
    tsr_model_destroy(st.model);
    tsr_optim_destroy(st.optim);
    tsr_gpu_destroy(g);
    free(spec);
    free(st.x);
    free(st.y);
    free(a);
    free(b);
    free(c);
    return 0;
}
