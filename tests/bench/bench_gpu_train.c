/* SPDX-License-Identifier: BSD-3-Clause */
/* GPU training-step throughput: the 784-256-256-10 ReLU MLP (softmax
 * cross-entropy, SGD momentum 0.9), batch 1024 by default, on one GPU
 * through tsr_model_to_gpu / tsr_optim_to_gpu: batch upload, forward,
 * backward, optimizer. The loss is queued on the device and read once per
 * timed run, as the training loop reads it only to show it and as the
 * PyTorch peer never calls .item(); --loss-every-step reads it back each
 * step (one host wait per step) to measure what that wait costs. The peer
 * is torch_mlp.py --device cuda on the same GPU, run alternately by
 * run_gpu_bench.sh.
 * --precision bf16|fp16 runs the model's mixed path (tsr_model_to_gpu_precision;
 * fp16 without loss scaling: the step's cost, not its numerics), against
 * torch_mlp.py --amp. Exits 77 without a CUDA device.
 * Usage: bench_gpu_train [--seconds S] [--reps N] [--batch B] [--device D] [--precision P] [--loss-every-step]
 *        [--json] */
#include "tessera/compute.h"
#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/rng.h"
#include "bench_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBATCHES 60

int main(int argc, char **argv)
{
    double seconds = 3.0, loss = 0;
    int reps = 5, json = 0, dev = 0, every = 0, prec = TSR_PRECISION_FP32;
    size_t batch = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            dev = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            i++;
            prec = !strcmp(argv[i], "bf16")   ? TSR_PRECISION_BF16
                   : !strcmp(argv[i], "fp16") ? TSR_PRECISION_FP16
                   : !strcmp(argv[i], "fp32") ? TSR_PRECISION_FP32
                                              : -1;
        } else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--loss-every-step"))
            every = 1;
        else {
            fprintf(
                stderr,
                "usage: bench_gpu_train [--seconds S] [--reps N] [--batch B] [--device D] [--precision fp32|bf16|fp16] "
                "[--loss-every-step] [--json]\n");
            return 2;
        }
    }
    if (!(seconds > 0) || reps < 1 || reps > 64 || batch < 1 || batch > 65536 || prec < 0) {
        fprintf(stderr, "bench_gpu_train: expected --seconds > 0, 1 <= --reps <= 64, 1 <= --batch <= 65536, "
                        "--precision fp32, bf16 or fp16\n");
        return 2;
    }
    if (tsr_gpu_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    tsr_gpu_t *g = NULL;
    tsr_model_t *m = NULL;
    tsr_optim_t *o = NULL;
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, (const size_t[]){784, 256, 256, 10}, 3, TSR_ACT_RELU, TSR_LOSS_XENT);
    tsr_optim_config_t oc =
        {.kind = TSR_OPTIM_SGD, .lr = 0.01, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (tsr_gpu_create(dev, &g) || tsr_model_create(&spec, batch, &m) ||
        tsr_optim_create(&oc, tsr_model_nparams(m), &o)) {
        fprintf(stderr, "bench_gpu_train: %s\n", tsr_last_error());
        return 1;
    }
    tsr_model_init(m, 1);
    if (tsr_model_to_gpu_precision(m, g, (tsr_precision_t)prec) || tsr_optim_to_gpu(o, g)) {
        fprintf(stderr, "bench_gpu_train: %s\n", tsr_last_error());
        return 1;
    }
    /* Batches and labels in page-locked memory, as the PyTorch peer pins
     * both: a copy from pageable memory makes the host wait. */
    float *x = NULL;
    int32_t *y = NULL;
    if (tsr_gpu_host_alloc(NBATCHES * batch * 784 * sizeof *x, (void **)&x) ||
        tsr_gpu_host_alloc(NBATCHES * batch * sizeof *y, (void **)&y)) {
        fprintf(stderr, "bench_gpu_train: out of memory\n");
        return 1;
    }
    tsr_rng_t r;
    tsr_rng_seed(&r, 1234, 0);
    for (size_t i = 0; i < NBATCHES * batch * 784; i++)
        x[i] = (float)tsr_rng_uniform(&r);
    for (size_t i = 0; i < NBATCHES * batch; i++)
        y[i] = (int32_t)tsr_rng_below(&r, 10);

    double v[64];
    size_t b = 0;
    for (int rep = -1; rep < reps; rep++) {
        long steps = 0;
        double t0 = bench_now(), el;
        do {
            tsr_model_forward(m, x + b * batch * 784, batch);
            if (every)
                loss += tsr_model_backward(m, y + b * batch, NULL, batch, 1.0f / (float)batch, NULL, NULL);
            else
                tsr_model_backward_queued(m, y + b * batch, NULL, batch, 1.0f / (float)batch, NULL, NULL);
            tsr_optim_step(o, tsr_model_work_params(m), tsr_model_work_grads(m), NULL);
            b = (b + 1) % NBATCHES;
            steps++;
            el = bench_now() - t0;
        } while (el < (rep < 0 ? 1.0 : seconds));
        double queued = 0;
        if (tsr_model_take_loss(m, &queued) || tsr_gpu_sync(g) || tsr_model_status(m)) {
            fprintf(stderr, "bench_gpu_train: %s\n", tsr_last_error());
            return 1;
        }
        loss += queued;
        if (rep >= 0)
            v[rep] = (bench_now() - t0) / (double)steps;
    }
    double t = bench_median(v, reps), sps = (double)batch / t;
    if (json)
        printf(
            "{\"bench\":\"gpu_train\",\"gpu\":\"%s\",\"precision\":%d,\"batch\":%zu,\"reps\":%d,\"seconds\":%g,\"samples_per_s\":%.1f,"
            "\"step_ms\":%.4f,\"loss\":\"%s\",\"loss_checksum\":%.6g}\n",
            tsr_gpu_name(g), prec, batch, reps, seconds, sps, 1e3 * t, every ? "every step" : "queued", loss);
    else
        printf("tessera GPU training step on %s, MLP 784-256-256-10 relu, batch %zu: %.3f ms, %.0f samples/s "
               "(median of %d runs of %.1f s)\n",
               tsr_gpu_name(g), batch, 1e3 * t, sps, reps, seconds);
    tsr_gpu_host_free(x);
    tsr_gpu_host_free(y);
    tsr_optim_destroy(o);
    tsr_model_destroy(m);
    tsr_gpu_destroy(g);
    return 0;
}
