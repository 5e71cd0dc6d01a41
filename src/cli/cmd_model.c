/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera model summary CONFIG|MODEL`: the layers of the model a
 * configuration describes (or a model file holds), with output shapes,
 * parameter counts and FLOPs per sample. */
#include "cli/commands.h"
#include "tessera/config.h"
#include "tessera/error.h"
#include "tessera/model.h"
#include "tessera/options.h"
#include "tessera/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "usage: tessera model summary CONFIG [--set section.key=value ...]\n"
                            "       tessera model summary MODEL.h5 [--plugins LIST]\n"
                            "\n"
                            "Prints the model's layers: kind, output shape (CxHxW, or a width), parameters\n"
                            "(trained and buffers such as batch-norm running statistics) and forward FLOPs per\n"
                            "sample, then the totals and the FLOPs of a training step's forward and backward.\n"
                            "With a CONFIG the input shape and classes come from its data (model.input, /X's\n"
                            "shape attribute); a MODEL.h5 is a model file that tessera wrote.\n";

int tsr_cmd_model(int argc, char **argv)
{
    const char *target = NULL, *plugins = NULL;
    tsr_config_t *cfg = NULL;
    int rc = TSR_OK;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? tsr_cli_fail(tsr_error_set(TSR_EINVAL, "model: expected summary (see tessera model "
                                                                 "--help)"))
                        : TSR_OK;
    }
    if (strcmp(argv[1], "summary") != 0)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "model: unknown %s '%s'; expected summary",
                                          argv[1][0] == '-' ? "option" : "subcommand", argv[1]));
    if ((rc = tsr_config_create(&cfg)))
        return tsr_cli_fail(rc);
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            tsr_config_destroy(cfg);
            return TSR_OK;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            rc = tsr_config_set(cfg, argv[++i]);
        } else if (strcmp(a, "--plugins") == 0 && i + 1 < argc) {
            plugins = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            static const char *const valued[] = {"--set", "--plugins", NULL};
            rc = tsr_cli_bad_option("model summary", a, valued);
        } else if (target) {
            rc = tsr_error_set(TSR_EINVAL, "model summary: unexpected argument '%s' besides %s", a, target);
        } else {
            target = a;
        }
    }
    if (!rc && !target)
        rc = tsr_error_set(TSR_EINVAL, "model summary: expected a CONFIG or MODEL file (see tessera model --help)");
    char *text = NULL;
    if (!rc && (tsr_cli_ends_with(target, ".h5") || tsr_cli_ends_with(target, ".hdf5"))) {
        tsr_model_t *m = NULL;
        rc = plugins ? tsr_layer_load_plugins(plugins, NULL) : TSR_OK;
        if (rc)
            rc = tsr_error_prefix(rc, "model summary: --plugins: ");
        if (!rc)
            rc = tsr_model_load(target, 1, &m);
        if (!rc && !(text = tsr_model_summary(m)))
            rc = tsr_error_set(TSR_ENOMEM, "out of memory");
        tsr_model_destroy(m);
    } else if (!rc) {
        /* --set values win over the file's, as for train. */
        tsr_config_t *file = NULL;
        rc = tsr_config_create(&file);
        if (!rc)
            rc = tsr_config_load(file, target);
        for (int i = 2; i < argc && !rc; i++)
            if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
                rc = tsr_config_set(file, argv[++i]);
        tsr_train_options_t opt;
        if (!rc)
            rc = tsr_options_train(file, &opt);
        if (!rc)
            rc = tsr_train_model_summary(&opt, &text);
        tsr_config_destroy(file);
    }
    tsr_config_destroy(cfg);
    if (rc)
        return tsr_cli_fail(rc);
    fputs(text, stdout);
    free(text);
    return TSR_OK;
}
