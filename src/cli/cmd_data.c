/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera data`: convert CSV and IDX files into tessera's HDF5 dataset
 * format, and describe a dataset file. */
#include "cli/commands.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "tessera/data.h"
#include "tessera/error.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char data_usage[] =
    "usage: tessera data convert --csv FILE [--label-col N] [--test-fraction F] [--seed S] [--scale F] -o OUT\n"
    "       tessera data convert FILE.csv[.gz] [options as above] -o OUT\n"
    "       tessera data convert --idx-images F --idx-labels F [--idx-test-images F --idx-test-labels F] -o OUT\n"
    "       tessera data info FILE\n"
    "\n"
    "convert writes OUT (HDF5: /X, /y and optionally /X_test, /y_test) whole or not at all.\n"
    "  --csv FILE           comma-separated numbers, plain or gzip; a header line is detected and skipped\n"
    "  --label-col N        column of the integer class label, counting from 0; -1 (default): the last\n"
    "  --test-fraction F    fraction of rows in [0, 1) moved to /X_test, /y_test after a seeded shuffle\n"
    "                       (default 0: no test split)\n"
    "  --seed S             seed of that shuffle (default 0)\n"
    "  --scale F            multiply every feature by F (default 1), e.g. 0.0625 for values 0..16\n"
    "  --idx-images F       MNIST-style IDX image file (plain or .gz) -> uint8 /X with scale 1/255\n"
    "  --idx-labels F       the matching IDX label file -> int32 /y\n"
    "  --idx-test-images F, --idx-test-labels F   the test split, both or neither\n"
    "  -o, --output OUT     the HDF5 file to write\n"
    "info prints rows, features, storage type, classes and the test split, after checking every value.\n";

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return tsr_error_set(TSR_EINVAL, "data convert: %s expects an integer in [%ld, %ld], not '%s'", opt, lo, hi, v);
    *out = x;
    return TSR_OK;
}

static int parse_u64(const char *opt, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-')
        return tsr_error_set(TSR_EINVAL, "data convert: %s expects a non-negative integer, not '%s'", opt, v);
    *out = (uint64_t)x;
    return TSR_OK;
}

static int parse_double(const char *opt, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x))
        return tsr_error_set(TSR_EINVAL, "data convert: %s expects a number, not '%s'", opt, v);
    *out = x;
    return TSR_OK;
}

/* Matches "--name value" or "--name=value" at argv[*i]; 1 if matched (and
 * *val set, *i advanced past a separate value), 0 if not, <0 if the value
 * is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return tsr_error_set(TSR_EINVAL, "data convert: %s needs a value", name);
    *val = argv[++*i];
    return 1;
}

static int cmd_convert(int argc, char **argv)
{
    const char *csv = NULL, *out = NULL, *positional = NULL;
    const char *img = NULL, *lab = NULL, *timg = NULL, *tlab = NULL;
    long label_col = -1;
    double test_fraction = 0, scale = 1;
    uint64_t seed = 0;
    int csv_opts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m, rc = TSR_OK;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(data_usage, stdout);
            return TSR_OK;
        }
#define OPT(name, action)                                                                                              \
    if ((m = opt_value(argc, argv, &i, name, &v)) != 0) {                                                              \
        if (m < 0)                                                                                                     \
            return tsr_cli_fail(m);                                                                                    \
        action;                                                                                                        \
        if (rc)                                                                                                        \
            return tsr_cli_fail(rc);                                                                                   \
        continue;                                                                                                      \
    }
        OPT("--csv", csv = v)
        OPT("--label-col", (rc = parse_long("--label-col", v, -1, 1L << 30, &label_col), csv_opts = 1))
        OPT("--test-fraction", (rc = parse_double("--test-fraction", v, &test_fraction), csv_opts = 1))
        OPT("--seed", (rc = parse_u64("--seed", v, &seed), csv_opts = 1))
        OPT("--scale", (rc = parse_double("--scale", v, &scale), csv_opts = 1))
        OPT("--idx-images", img = v)
        OPT("--idx-labels", lab = v)
        OPT("--idx-test-images", timg = v)
        OPT("--idx-test-labels", tlab = v)
        OPT("--output", out = v)
        OPT("-o", out = v)
#undef OPT
        if (a[0] == '-' && a[1] != '\0')
            return tsr_cli_fail(
                tsr_error_set(TSR_EINVAL, "data convert: unknown option '%s' (see tessera data --help)", a));
        if (positional)
            return tsr_cli_fail(tsr_error_set(
                TSR_EINVAL, "data convert: more than one input file given ('%s' and '%s')", positional, a));
        positional = a;
    }
    if (argc < 2)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                          "data convert: expected an input (--csv FILE, FILE.csv or "
                                          "--idx-images F --idx-labels F) and -o OUT (see tessera data --help)"));
    if (!out)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "data convert: no output file; add -o OUT.h5"));
    int idx = img || lab || timg || tlab;
    if (positional) {
        if (csv || idx)
            return tsr_cli_fail(tsr_error_set(
                TSR_EINVAL, "data convert: input '%s' given besides --csv or --idx-* options", positional));
        if (!tsr_cli_ends_with(positional, ".csv") && !tsr_cli_ends_with(positional, ".csv.gz"))
            return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                              "data convert: cannot tell the format of '%s' from its name; use "
                                              "--csv FILE or --idx-images F --idx-labels F",
                                              positional));
        csv = positional;
    }
    if (csv && idx)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "data convert: give either a CSV file or IDX files, not both"));
    int rc;
    if (csv) {
        rc = tsr_data_convert_csv_scaled(csv, out, (int)label_col, test_fraction, seed, scale);
    } else if (idx) {
        if (csv_opts)
            return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                              "data convert: --label-col, --test-fraction, --seed and --scale "
                                              "apply to CSV input only"));
        if (!img || !lab)
            return tsr_cli_fail(
                tsr_error_set(TSR_EINVAL, "data convert: IDX input needs both --idx-images and --idx-labels"));
        rc = tsr_data_convert_idx(img, lab, timg, tlab, out);
    } else {
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                          "data convert: no input; give --csv FILE, FILE.csv or --idx-images F "
                                          "--idx-labels F (see tessera data --help)"));
    }
    if (rc)
        return tsr_cli_fail(rc);
    return TSR_OK;
}

/* Reads a string attribute of the file's root into buf ("" if absent). */
static void root_attr(const char *path, const char *name, char *buf, size_t len)
{
    char *s = NULL;
    buf[0] = '\0';
    tsr_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0 && tsr_h5_attr_get_str_alloc(f, name, &s) == 0)
        snprintf(buf, len, "%s", s);
    if (f >= 0)
        H5Fclose(f);
    tsr_h5_unlock();
    free(s);
}

static int describe(const char *path, tsr_split_t split, const char *name)
{
    tsr_dataset_t *ds = NULL;
    /* Big files are streamed while checking, not loaded whole. */
    int rc = tsr_dataset_open(path, split, (size_t)256 << 20, &ds);
    if (rc)
        return rc;
    rc = tsr_dataset_validate(ds, 0);
    if (rc) {
        tsr_dataset_destroy(ds);
        return rc;
    }
    printf("%s:\n", name);
    printf("  rows:     %zu\n", tsr_dataset_rows(ds));
    printf("  dim:      %zu\n", tsr_dataset_dim(ds));
    if (strcmp(tsr_dataset_dtype(ds), "uint8") == 0)
        printf("  dtype:    uint8 (scale %g)\n", (double)tsr_dataset_scale(ds));
    else
        printf("  dtype:    float32\n");
    if (tsr_dataset_is_labels(ds)) {
        printf("  targets:  int32 class labels\n");
        printf("  classes:  %d\n", tsr_dataset_classes(ds));
    } else {
        printf("  targets:  float32, %zu per row\n", tsr_dataset_target_dim(ds));
    }
    tsr_dataset_destroy(ds);
    return TSR_OK;
}

static int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(data_usage, stdout);
            return TSR_OK;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return tsr_cli_fail(
                tsr_error_set(TSR_EINVAL, "data info: unknown option '%s' (see tessera data --help)", argv[i]));
        if (path)
            return tsr_cli_fail(
                tsr_error_set(TSR_EINVAL, "data info: give one file, not '%s' and '%s'", path, argv[i]));
        path = argv[i];
    }
    if (!path)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "data info: no file; usage: tessera data info FILE"));
    /* Open first, so a bad file gives its own error before anything prints. */
    tsr_dataset_t *ds = NULL;
    int rc = tsr_dataset_open(path, TSR_SPLIT_TRAIN, 1, &ds);
    tsr_dataset_destroy(ds);
    if (rc)
        return tsr_cli_fail(rc);
    char buf[1024];
    printf("file:       %s\n", path);
    root_attr(path, "format", buf, sizeof buf);
    if (buf[0])
        printf("format:     %s\n", buf);
    root_attr(path, "source", buf, sizeof buf);
    if (buf[0])
        printf("source:     %s\n", buf);
    root_attr(path, "created", buf, sizeof buf);
    if (buf[0])
        printf("created:    %s\n", buf);
    rc = describe(path, TSR_SPLIT_TRAIN, "train (/X, /y)");
    if (rc)
        return tsr_cli_fail(rc);
    if (tsr_dataset_has_test(path)) {
        rc = describe(path, TSR_SPLIT_TEST, "test (/X_test, /y_test)");
        if (rc)
            return tsr_cli_fail(rc);
    } else {
        printf("test:       none\n");
    }
    return TSR_OK;
}

int tsr_cmd_data(int argc, char **argv)
{
    if (argc < 2)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "data: expected a subcommand, convert or info (see tessera data "
                                                      "--help)"));
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(data_usage, stdout);
        return TSR_OK;
    }
    if (strcmp(sub, "convert") == 0)
        return cmd_convert(argc - 1, argv + 1);
    if (strcmp(sub, "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "data: unknown %s '%s'; expected convert or info",
                                      sub[0] == '-' ? "option" : "subcommand", sub));
}
