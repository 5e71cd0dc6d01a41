/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera apply FUNCTION --input FILE[:/DATASET] ...`: a function over a
 * dataset's rows on every rank (src/apply, tessera/apply.h). */
#include "cli/commands.h"
#include "tessera/apply.h"
#include "tessera/layer.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: mpirun -n N tessera apply FUNCTION --input FILE[:/DATASET] [--output OUT.h5] [-o RESULT.json]\n"
    "                                 [--partition-rows R] [--columns I,J,...] [--bins B] [--registry DIR] [--quiet]\n"
    "                                 [--save-every SECONDS]\n"
    "\n"
    "Runs FUNCTION over the rows of DATASET (default /X; 2-D [rows, columns] or 1-D, any numeric type;\n"
    "integer data with a \"scale\" attribute is scaled) on every rank. The rows are cut into partitions\n"
    "of R rows (default 65536) handed out dynamically; each rank reads only its partitions.\n"
    "FUNCTION:\n"
    "  stats            per column: count, mean, var (population), min, max, quantiles, histogram;\n"
    "                   a table on stdout, JSON with -o; the same bytes for any number of ranks\n"
    "  predict MODEL    a model file or registry id (in --registry, default ./registry): OUT gets\n"
    "                   /pred [rows, outputs] as /predict answers and, for classifiers, /label [rows]\n"
    "  normalize        OUT gets DATASET standardised ((x - mean) / std), /mean, /std and /y copied\n"
    "  PLUGIN.so        a user function (tessera/apply.h): rows to OUT's /out, or a reduction\n"
    "                   printed and written with -o as {\"result\": [...]}\n"
    "OUT is written with parallel HDF5 under a temporary name and renamed when complete. A run that\n"
    "is killed leaves the temporary and a journal of the partitions written: rerunning the same\n"
    "command continues from there. stats and reductions with -o save each rank's progress beside\n"
    "RESULT.json every --save-every seconds (default 10; 0: after every partition), so a rerun of a\n"
    "killed one continues too, with the same bytes as an uninterrupted run, on any number of ranks.\n"
    "  --columns I,J    only these columns (0-based)\n"
    "  --bins B         stats histogram bins (default 20)\n"
    "  --quiet          no table or result on stdout\n"
    "  --plugins LIST   layer plugins (.so, comma-separated) a predict MODEL needs\n";

/* A comma-separated list of column indexes. */
static int parse_columns(const char *s, int **out, int *n)
{
    int cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    int *v = malloc((size_t)cap * sizeof *v);
    if (!v)
        return tsr_error_set(TSR_ENOMEM, "apply: out of memory");
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long c = strtol(p, &end, 10);
        if (end == p || errno || c < 0 || c > 1 << 30 || (*end && *end != ',')) {
            free(v);
            return tsr_error_set(TSR_EINVAL,
                                 "apply: --columns %s: expected column numbers (0, 1, ...) separated by commas", s);
        }
        v[(*n)++] = (int)c;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        free(v);
        return tsr_error_set(TSR_EINVAL, "apply: --columns is empty");
    }
    *out = v;
    return TSR_OK;
}

static int parse(int argc, char **argv, tsr_apply_opts_t *o, char **input, int **cols, const char **plugins)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--input") == 0 && has) {
            free(*input);
            *input = strdup(argv[++i]);
            if (!*input)
                return tsr_error_set(TSR_ENOMEM, "apply: out of memory");
        } else if (strcmp(a, "--output") == 0 && has) {
            o->output = argv[++i];
        } else if (strcmp(a, "-o") == 0 && has) {
            o->stats_json = argv[++i];
        } else if (strcmp(a, "--registry") == 0 && has) {
            o->registry = argv[++i];
        } else if (strcmp(a, "--plugins") == 0 && has) {
            *plugins = argv[++i];
        } else if ((strcmp(a, "--partition-rows") == 0 || strcmp(a, "--bins") == 0) && has) {
            char *end;
            errno = 0;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || v <= 0 || (a[2] == 'b' && v > 100000))
                return tsr_error_set(TSR_EINVAL, "apply: %s %s: expected a positive number%s", a, argv[i],
                                     a[2] == 'b' ? " (at most 100000)" : " of rows");
            if (a[2] == 'b')
                o->bins = (int)v;
            else
                o->partition_rows = (size_t)v;
        } else if (strcmp(a, "--save-every") == 0 && has) {
            char *end;
            errno = 0;
            double v = strtod(argv[++i], &end);
            if (*end || end == argv[i] || errno || !(v >= 0 && v <= 1e6))
                return tsr_error_set(TSR_EINVAL, "apply: --save-every %s: expected seconds from 0 to 1000000", argv[i]);
            o->save_seconds = v > 0 ? v : -1;
        } else if (strcmp(a, "--columns") == 0 && has) {
            free(*cols);
            *cols = NULL;
            int rc = parse_columns(argv[++i], cols, &o->ncolumns);
            if (rc)
                return rc;
            o->columns = *cols;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            static const char *const valued[] = {"--input",          "--output",  "-o",     "--registry",
                                                 "--partition-rows", "--columns", "--bins", "--save-every",
                                                 "--plugins",        NULL};
            return tsr_cli_bad_option("apply", a, valued);
        } else if (!o->function) {
            o->function = a;
        } else if (strcmp(o->function, "predict") == 0 && !o->model) {
            o->model = a;
        } else {
            return tsr_error_set(TSR_EINVAL, "apply: unexpected argument '%s' (see tessera apply --help)", a);
        }
    }
    if (!o->function)
        return tsr_error_set(TSR_EINVAL, "apply: no FUNCTION given (see tessera apply --help)");
    if (!*input)
        return tsr_error_set(TSR_EINVAL, "apply: give --input FILE.h5[:/DATASET]");
    /* FILE:/DATASET — the last ":/" splits them (a file name may hold ':'). */
    char *sep = strstr(*input, ":/"), *next;
    while (sep && (next = strstr(sep + 1, ":/")))
        sep = next;
    if (sep) {
        *sep = '\0';
        o->dataset = sep + 1;
    }
    o->input = *input;
    return TSR_OK;
}

int tsr_cmd_apply(tsr_runtime_t *rt, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (tsr_runtime_rank(rt) == 0)
                fputs(usage, stdout);
            return TSR_OK;
        }
    tsr_apply_opts_t o = {0};
    char *input = NULL;
    int *cols = NULL;
    const char *plugins = NULL;
    int rc = parse(argc, argv, &o, &input, &cols, &plugins);
    if (rc == TSR_OK && plugins && (rc = tsr_layer_load_plugins(plugins, NULL)) != TSR_OK)
        tsr_error_prefix(rc, "apply: --plugins: "); /* every rank loads them alike */
    if (rc == TSR_OK)
        rc = tsr_apply_run(rt, &o);
    else if (tsr_runtime_rank(rt) != 0)
        tsr_error_clear(); /* every rank parsed the same arguments: rank 0 says what is wrong */
    if (rc && tsr_last_error()[0])
        fprintf(stderr, "tessera: error: %s\n", tsr_last_error());
    free(input);
    free(cols);
    return rc;
}
