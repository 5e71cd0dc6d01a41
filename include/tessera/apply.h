/* SPDX-License-Identifier: BSD-3-Clause */
/* Distributed apply (`tessera apply`): a function run over the rows of an
 * HDF5 dataset on every rank. The rows are cut into partitions of a fixed
 * size, handed out dynamically (an MPI fetch-and-add on a counter that rank
 * 0 holds, so rank 0 works too and a slow rank takes fewer); each rank
 * reads only its partitions' hyperslabs. Built-in functions: stats,
 * predict, normalize; user functions come from plugins (below).
 *
 * A user function is a shared object that exports
 *     const int tessera_apply_abi = TSR_APPLY_ABI;
 *     const tsr_apply_plugin_t *tessera_apply_plugin(void);
 * It either maps rows (map: a partition's rows to out_cols values per row,
 * written as /out [rows, out_cols] of the output file) or reduces them
 * (partial: a partition to partial_len doubles; merge: two partials into
 * one, called in partition order on rank 0, so the result does not depend
 * on the number of ranks). Calls are guarded: a crash (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL) fails the partition, naming the signal, and the run ends
 * with an error and no output. See examples/apply/. */
#ifndef TESSERA_APPLY_H
#define TESSERA_APPLY_H
#include <stddef.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_APPLY_ABI 1

typedef struct tsr_apply_plugin {
    int abi;          /* TSR_APPLY_ABI */
    const char *name; /* for messages */
    /* Called once per rank with the input's width (columns): sets exactly
     * one of *out_cols (a row function) or *partial_len (a reduction) to a
     * positive count. Returns 0, or nonzero to refuse the input (it may
     * call tsr_error_set to say why). */
    int (*setup)(size_t cols, size_t *out_cols, size_t *partial_len);
    /* A row function: x [rows, cols] to out [rows, out_cols]. */
    int (*map)(const float *x, size_t rows, size_t cols, float *out);
    /* A reduction: x [rows, cols] to partial (partial_len doubles, zeroed
     * before the call). first_row is the partition's first row. */
    int (*partial)(const float *x, size_t rows, size_t cols, size_t first_row, double *partial);
    /* Merges b into a (both partial_len doubles); a holds the earlier rows. */
    void (*merge)(double *a, const double *b, size_t partial_len);
} tsr_apply_plugin_t;

typedef struct tsr_runtime tsr_runtime_t;

typedef struct tsr_apply_opts {
    const char *function;   /* "stats", "predict", "normalize" or a plugin path (.so) */
    const char *model;      /* predict: a model file or a registry id */
    const char *registry;   /* the registry directory for ids (NULL: "registry") */
    const char *input;      /* the HDF5 file */
    const char *dataset;    /* within it (NULL: "/X") */
    const char *output;     /* rows functions: the HDF5 file written (required) */
    const char *stats_json; /* stats, reductions: the JSON written (may be NULL) */
    size_t partition_rows;  /* 0: 65536 */
    const int *columns;     /* NULL: every column */
    int ncolumns;
    int bins;  /* stats histogram bins (0: 20) */
    int quiet; /* no table on standard output */
    /* stats and reductions with a result file: seconds between saves of
     * each rank's progress beside it, so a killed run resumes (0: 10 s;
     * negative: after every partition) */
    double save_seconds;
} tsr_apply_opts_t;

/* Runs o->function over the input on every rank of rt's world (collective).
 * Output files are written whole or not at all: a temporary beside the
 * output, renamed on success; a journal beside it records the partitions
 * written, so a rerun with the same arguments after a kill continues.
 * Errors: TSR_EINVAL (usage, plugin), TSR_EDATA (input), TSR_EIO (files). */
TSR_API int tsr_apply_run(tsr_runtime_t *rt, const tsr_apply_opts_t *o);

#ifdef __cplusplus
}
#endif
#endif
