/* SPDX-License-Identifier: BSD-3-Clause */
/* A stand-in for a training run's rank 0, for tests/e2e/test_dashboard.sh:
 * it starts the coordinator through the public API, exactly as the train
 * loop does, and publishes a status (and new weights) every 50 ms with a
 * falling loss and a rising accuracy, until SIGTERM or the time is up.
 * Built by the test script against libtessera. Usage: serve_driver RUN_DIR SECONDS */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tessera/error.h"
#include "tessera/serve.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: serve_driver RUN_DIR SECONDS\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    tsr_serve_config_t cfg;
    tsr_serve_config_default(&cfg);
    cfg.run_dir = argv[1];
    cfg.registry = NULL;
    tsr_serve_t *s = NULL;
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, (const size_t[]){4, 8, 3}, 2, TSR_ACT_RELU, TSR_LOSS_XENT);
    tsr_model_t *m = NULL;
    if (tsr_serve_create(&cfg, &s) || tsr_model_create(&spec, 1, &m)) {
        fprintf(stderr, "serve_driver: %s\n", tsr_last_error());
        return 1;
    }
    const char *placement[2] = {"localhost cores 0", "localhost cores 1"};
    double smin[2] = {0.001, 0.0012}, smean[2] = {0.0015, 0.0016}, smax[2] = {0.002, 0.0025};
    double cmin[2] = {0.0001, 0.0001}, cmean[2] = {0.0002, 0.0002}, cmax[2] = {0.0004, 0.0005};
    /* Phase-major seconds per step (tessera/trace.h): rank 1 computes 3x as long. */
    double phases[12] = {0.0001, 0.0001, 0.0004, 0.0012, 0.0008, 0.0024, 0.0016, 0.0002, 0.0002, 0.0006, 0, 0};
    const char *sugg[1] = {"rank 1 computes 3.0x as long as the others: look at what else runs on its node"};
    int ticks = (int)(atof(argv[2]) * 20);
    for (int t = 0; t < ticks && !stop; t++) {
        tsr_model_init(m, (uint64_t)t);
        tsr_serve_publish_model(s, m);
        tsr_serve_status_t st = {.state = "training",
                                 .step = 10 * (t + 1),
                                 .total_steps = 10 * ticks,
                                 .epoch = t / 20 + 1,
                                 .epochs = ticks / 20 + 1,
                                 .samples_seen = 320 * (t + 1),
                                 .loss = 2.3 * exp(-0.05 * t),
                                 .test_loss = 2.4 * exp(-0.05 * t),
                                 .accuracy = 1 - 0.9 * exp(-0.05 * t),
                                 .samples_per_s = 20000 - 4000 * exp(-0.1 * t),
                                 .elapsed_s = 0.1 * t,
                                 .world_size = 2,
                                 .placement = placement,
                                 .step_time_min = smin,
                                 .step_time_mean = smean,
                                 .step_time_max = smax,
                                 .comm_time_min = cmin,
                                 .comm_time_mean = cmean,
                                 .comm_time_max = cmax,
                                 .checkpoint = t > 20 ? "saved step 200" : "none",
                                 .phase_mean = phases,
                                 .bottleneck = "bottleneck report (2 ranks): slowest rank 1",
                                 .suggestions = sugg,
                                 .nsuggestions = 1,
                                 .slowest_rank = 1};
        tsr_serve_publish_status(s, &st);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    tsr_model_destroy(m);
    tsr_serve_destroy(s);
    return 0;
}
