/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera trace merge -o OUT FILE...: per-rank timelines into one file. */
#include "cli/commands.h"
#include "tessera/error.h"
#include "tessera/trace.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tessera trace merge -o OUT FILE...\n"
    "Joins the per-rank timelines a run wrote with [monitor] trace (trace.rank0.json, trace.rank1.json, ...)\n"
    "into one Chrome trace / Perfetto JSON file, one process track per rank (clocks were aligned to rank 0's\n"
    "at start). Open it in https://ui.perfetto.dev or chrome://tracing.\n"
    "  -o OUT   the merged file (written whole or not at all; never one of the inputs)\n"
    "Exit codes: 0 merged, 2 bad usage, 3 an input is not a tessera trace or repeats a rank, 4 file I/O.\n";

int tsr_cmd_trace(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return TSR_OK;
        }
    if (argc < 2 || strcmp(argv[1], "merge") != 0)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                          "trace: %s%s%s; expected merge -o OUT FILE... (see tessera "
                                          "trace --help)",
                                          argc < 2 ? "no action" : "unknown action '", argc < 2 ? "" : argv[1],
                                          argc < 2 ? "" : "'"));
    const char *inputs[4096];
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc)
                return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "trace merge: %s needs a file name", argv[i]));
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tsr_cli_fail(
                tsr_error_set(TSR_EINVAL, "trace merge: unknown option '%s' (see tessera trace --help)", argv[i]));
        } else if (n == (int)(sizeof inputs / sizeof *inputs)) {
            return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "trace merge: more than %d input files", n));
        } else {
            inputs[n++] = argv[i];
        }
    }
    if (!out || !*out)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "trace merge: expected -o OUT (the merged file)"));
    if (n == 0)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "trace merge: expected one or more per-rank trace files"));
    int rc = tsr_trace_merge(inputs, n, out);
    if (rc)
        return tsr_cli_fail(rc);
    printf("merged %d file%s into %s\n", n, n == 1 ? "" : "s", out);
    return TSR_OK;
}
