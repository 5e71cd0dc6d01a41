/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera export`: a model file (or a registry id) to ONNX or HDF5, the
 * same files GET /models/{id}/export serves. */
#include "cli/commands.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage[] =
    "usage: tessera export MODEL [--format onnx|hdf5] -o OUT [--registry DIR] [--max-params N] [--plugins LIST]\n"
    "\n"
    "Writes MODEL (an HDF5 model file, or with --registry a model id in that registry) to OUT,\n"
    "whole or not at all; -o - writes to standard output (give --format). OUT may not be MODEL\n"
    "itself, nor an existing FIFO, device or directory. --format defaults to OUT's extension\n"
    "(.onnx or .h5/.hdf5).\n"
    "ONNX files use opset 13 standard operators only, so any ONNX runtime loads them: input\n"
    "\"input\" float [N, inputs] (the flat rows /predict takes, image rows channels first),\n"
    "output \"output\" [N, outputs] (what /predict answers: softmax probabilities for\n"
    "classifiers). Every built-in layer exports; a plugin's layer only if its plugin (named\n"
    "with --plugins, comma-separated) gives an ONNX form (exit 2 otherwise). A model declaring\n"
    "more than --max-params parameters (default 134217728, as serve.max_model_params) is refused.\n";

int tsr_cmd_export(int argc, char **argv)
{
    const char *model = NULL, *format = NULL, *out = NULL, *registry = NULL, *plugins = NULL;
    unsigned long long max_params = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return TSR_OK;
        } else if (strcmp(a, "--format") == 0 && has) {
            format = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has) {
            out = argv[++i];
        } else if (strcmp(a, "--plugins") == 0 && has) {
            plugins = argv[++i];
        } else if (strcmp(a, "--registry") == 0 && has) {
            registry = argv[++i];
        } else if (strcmp(a, "--max-params") == 0 && has) {
            char *end;
            max_params = strtoull(argv[++i], &end, 10);
            if (*end || max_params == 0 || argv[i][0] == '-')
                return tsr_cli_fail(
                    tsr_error_set(TSR_EINVAL, "export: --max-params %s: expected a positive integer", argv[i]));
        } else if (a[0] == '-' && a[1]) {
            static const char *const valued[] = {"--format",     "-o",        "--output", "--registry",
                                                 "--max-params", "--plugins", NULL};
            return tsr_cli_fail(tsr_cli_bad_option("export", a, valued));
        } else if (model) {
            return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                              "export: unexpected argument '%s' besides MODEL %s (see "
                                              "tessera export --help)",
                                              a, model));
        } else {
            model = a;
        }
    }
    if (!model || !out)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "export: expected MODEL and -o OUT (see tessera export --help)"));
    if (!format)
        format = tsr_cli_ends_with(out, ".onnx")                                      ? "onnx"
                 : (tsr_cli_ends_with(out, ".h5") || tsr_cli_ends_with(out, ".hdf5")) ? "hdf5"
                                                                                      : NULL;
    int fmt = tsr_export_format_parse(format);
    if (fmt < 0)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "export: --format %s: expected onnx or hdf5",
                                          format ? format : "(none, and OUT has no .onnx or .h5 extension)"));
    if (plugins) {
        int rc = tsr_layer_load_plugins(plugins, NULL);
        if (rc)
            return tsr_cli_fail(tsr_error_prefix(rc, "export: --plugins: "));
    }
    char path[4096];
    if (registry) {
        tsr_registry_t *reg = NULL;
        int rc = tsr_registry_create(registry, &reg);
        if (rc == TSR_OK && !tsr_registry_id_valid(model))
            rc = tsr_error_set(TSR_EINVAL, "export: '%s' is not a model id", model);
        if (rc == TSR_OK)
            rc = tsr_registry_model_path(reg, model, path, sizeof path);
        tsr_registry_destroy(reg);
        if (rc)
            return tsr_cli_fail(rc);
        model = path;
    }
    int rc = tsr_export_file_max(model, (tsr_export_format_t)fmt, out, (size_t)max_params);
    if (rc)
        return tsr_cli_fail(rc);
    /* Standard output carries the model itself then. */
    fprintf(strcmp(out, "-") == 0 ? stderr : stdout, "tessera: wrote %s (%s)\n",
            strcmp(out, "-") == 0 ? "standard output" : out, tsr_export_format_name((tsr_export_format_t)fmt));
    return TSR_OK;
}
