/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera train CONFIG [--set section.key=value ...] */
#include "cli/commands.h"
#include "tessera/config.h"
#include "tessera/error.h"
#include "tessera/options.h"
#include "tessera/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tessera train CONFIG [--set section.key=value ...]\n"
    "Trains the model that CONFIG (an INI file) describes on every rank of the job.\n"
    "  --set section.key=value   override one configuration value (repeatable)\n"
    "  --resume auto|FILE        continue from the newest checkpoint that verifies, or from FILE\n"
    "  --print-config            print the effective configuration and exit\n"
    "SIGTERM, SIGUSR1 or SIGINT: checkpoint at the next step and exit 75 (requeue me); a second SIGINT\n"
    "stops at once.\n"
    "Exit codes: 0 done, 2 bad usage or configuration, 3 bad input data, 4 file I/O failure,\n"
    "6 training diverged (NaN or Inf weights; nothing written), 75 stopped by a signal after a checkpoint,\n"
    "76 a rank stalled (watchdog), 1 other.\n";

int tsr_cmd_train(tsr_runtime_t *rt, int argc, char **argv)
{
    tsr_config_t *cfg = NULL;
    const char *path = NULL;
    int print_config = 0, rc, failed = 0;
    int rank = tsr_runtime_rank(rt);
    tsr_train_result_t res;

    /* Again after MPI_Init (main installed them before it), in case the MPI
     * library replaced them: a signal during start-up still ends in a
     * checkpoint at step 1. */
    tsr_runtime_install_signals();
    rc = tsr_config_create(&cfg);
    for (int i = 1; rc == TSR_OK && i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (rank == 0)
                fputs(usage, stdout);
            tsr_config_destroy(cfg);
            return TSR_OK;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            i++; /* applied after the file, below */
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            /* ditto */
        } else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) {
            i++;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            print_config = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            static const char *const valued[] = {"--set", "--resume", NULL};
            rc = tsr_cli_bad_option("train", argv[i], valued);
        } else if (path) {
            rc = tsr_error_set(TSR_EINVAL, "train: unexpected argument '%s' after CONFIG %s; see tessera train --help",
                               argv[i], path);
        } else {
            path = argv[i];
        }
    }
    if (!rc && !path)
        rc = tsr_error_set(TSR_EINVAL, "train: no CONFIG file given; see tessera train --help");
    if (!rc)
        rc = tsr_config_load(cfg, path);
    /* Overrides win over the file whatever their position. */
    for (int i = 1; rc == TSR_OK && i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
            rc = tsr_config_set(cfg, argv[++i]);
        else if (strncmp(argv[i], "--set=", 6) == 0)
            rc = tsr_config_set(cfg, argv[i] + 6);
        else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) {
            char kv[4200];
            snprintf(kv, sizeof kv, "checkpoint.resume=%s", argv[++i]);
            rc = tsr_config_set(cfg, kv);
        }
    }
    /* Every rank parsed the same input, so every rank agrees; rank 0 reports. */
    if ((rc = tsr_runtime_agree(rt, rc, &failed)))
        goto fail;
    if (tsr_config_get_bool(cfg, "runtime", "verbose"))
        tsr_log_set_all_ranks(1);
    if (print_config) {
        char *text = tsr_config_dump(cfg);
        if (rank == 0 && text)
            fputs(text, stdout);
        free(text);
        tsr_config_destroy(cfg);
        return TSR_OK;
    }
    tsr_train_options_t opt;
    if ((rc = tsr_options_train(cfg, &opt))) {
        failed = 0; /* every rank read the same keys: rank 0 says which one */
        goto fail;
    }
    /* Outside SLURM, say once which SLURM settings are ignored. */
    if (!tsr_runtime_slurm(rt)->in_slurm) {
        char keys[512], more[128];
        int n = tsr_config_changed(cfg, "submit", NULL, keys, sizeof keys);
        if (tsr_config_changed(cfg, "runtime", "walltime_margin_seconds", more, sizeof more))
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", n ? ", " : "", more), n++;
        if (n)
            tsr_log(TSR_LOG_INFO, "not running under SLURM (no SLURM_JOB_ID): ignoring %s", keys);
    }
    rc = tsr_train_run(rt, &opt, &res, &failed);
    if (rc)
        goto fail;
    if (res.skipped_steps > 0)
        tsr_log(TSR_LOG_WARN,
                "skipped %ld of %ld updates whose gradients were NaN or Inf (train.on_nonfinite = "
                "skip_step)",
                res.skipped_steps, res.steps);
    if (res.loss_scale > 0)
        tsr_log(TSR_LOG_INFO,
                "fp16 loss scaling: skipped %ld of %ld updates whose scaled gradients overflowed; loss scale "
                "at the end %g",
                res.scaler_skipped, res.steps, res.loss_scale);
    if (res.already_done)
        tsr_log(TSR_LOG_INFO, "done: nothing to train (resumed at step %ld, the end of the run); model %s unchanged",
                res.steps, tsr_config_get(cfg, "train", "output"));
    else if (isnan(res.test_accuracy))
        tsr_log(TSR_LOG_INFO,
                "done: %s%.4f | %ld epochs, %ld steps, %d ranks | wall %.2f s | %.0f samples/s | "
                "model %s",
                isnan(res.test_loss) ? "train loss " : "test loss ",
                isnan(res.test_loss) ? res.train_loss : res.test_loss, res.epochs, res.steps, tsr_runtime_size(rt),
                res.wall_seconds, res.samples_per_second, tsr_config_get(cfg, "train", "output"));
    else
        tsr_log(TSR_LOG_INFO,
                "done: test accuracy %.2f%% loss %.4f | %ld epochs, %ld steps, %d ranks | wall %.2f s "
                "| %.0f samples/s | model %s",
                100 * res.test_accuracy, res.test_loss, res.epochs, res.steps, tsr_runtime_size(rt), res.wall_seconds,
                res.samples_per_second, tsr_config_get(cfg, "train", "output"));
    tsr_config_destroy(cfg);
    return TSR_OK;
fail:
    if (rc != TSR_ESTOPPED && rank == failed)
        tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
    tsr_config_destroy(cfg);
    return rc;
}
