/* SPDX-License-Identifier: BSD-3-Clause */
/* The apply module's parts: the input (input.c), the partition counter
 * (sched.c), column statistics (stats.c, stats_out.c), the output file and
 * its journal (output.c, journal.c), row functions (rows.c, predict.c,
 * plugin.c) and the run (apply.c). Internal to src/apply. */
#ifndef TSR_APPLY_INTERNAL_H
#define TSR_APPLY_INTERNAL_H
#include "tessera/apply.h"

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define APPLY_DEFAULT_ROWS 65536

/* ---- input.c: one 2-D (or 1-D: one column) numeric dataset ------------- */
typedef struct apply_input {
    char path[4096];
    char dset[1024];
    hid_t file, set, space;
    size_t n, d;      /* rows and columns in the file */
    float scale;      /* an integer dataset's "scale" attribute (1 if none) */
    int *cols;        /* the selected columns, NULL: all */
    size_t ncols;     /* columns handed out per row */
    float *full;      /* a partition's full rows when columns are selected */
    size_t full_n;    /* rows full holds */
    int fd;           /* for prefetching a contiguous dataset; -1: none */
    long long offset; /* its data's offset in the file */
    size_t elem;      /* bytes per value in the file */
} apply_input_t;

/* Opens path:dset read-only (every rank, independently) and checks it; the
 * errors name the file and the dataset (TSR_EDATA) or column (TSR_EINVAL). */
int apply_input_open(apply_input_t *in, const char *path, const char *dset, const int *cols, int ncols);
/* Rows [start, start+count) of the selected columns into x [count, ncols]. */
int apply_input_read(apply_input_t *in, size_t start, size_t count, float *x);
void apply_input_close(apply_input_t *in);
/* Asks the kernel to read rows [start, start+count) ahead (no wait). */
void apply_input_prefetch(apply_input_t *in, size_t start, size_t count);
/* Rows of every column as mtype, the file's values unscaled (/y copied). */
int apply_input_read_as(apply_input_t *in, size_t start, size_t count, hid_t mtype, void *x);
int apply_input_is_integer(apply_input_t *in);
/* 1 if the file holds dataset name with n rows (for /y beside /X). */
int apply_input_has_rows(apply_input_t *in, const char *name, size_t n);

/* ---- sched.c: partitions handed out by fetch-and-add on rank 0's counter */
typedef struct apply_sched {
    MPI_Win win;
    int64_t *counter;
    size_t nparts;
    const uint8_t *done; /* partitions a resumed run skips (may be NULL) */
    size_t ahead;        /* apply_sched_next_ahead's next; SIZE_MAX: none taken */
} apply_sched_t;
int apply_sched_create(MPI_Comm comm, size_t nparts, const uint8_t *done, apply_sched_t *s);
/* The next partition to work on, or nparts when none is left. */
size_t apply_sched_next(apply_sched_t *s);
/* The same, one partition ahead: returns the partition to work on now and
 * takes the next one, whose rows in (part_rows each) are prefetched. */
size_t apply_sched_next_ahead(apply_sched_t *s, apply_input_t *in, size_t part_rows);
void apply_sched_destroy(apply_sched_t *s);
/* After a failure: every rank's next partition is "none left". */
void apply_sched_abort(apply_sched_t *s);
/* Collective: the lowest failing rank's code (TSR_OK if none); only that
 * rank keeps its message, so one line says what went wrong. */
int apply_agree(MPI_Comm comm, int rc);
/* Collective: record p of data (bytes each) from the rank whose mine[p] is
 * set, to rank 0 (all: to every rank); the ranks agree on failures. */
int apply_gather_parts(MPI_Comm comm, size_t nparts, const uint8_t *mine, size_t bytes, void *data, int all);

/* ---- stats.c: per-column statistics, merged in partition order ---------- */
typedef struct apply_col {
    double n, mean, m2; /* Chan's parallel form: count, mean, sum of squared deviations */
    double nans;
    float min, max;
} apply_col_t;

typedef struct apply_stats {
    size_t d, nparts;
    int bits;           /* histogram key bits per column (0: no histogram) */
    uint64_t *hist;     /* [d << bits] counts by the top bits of a value's ordered key */
    uint32_t *hot;      /* the same, counted since the last flush into hist */
    size_t hot_rows;    /* rows counted in hot */
    apply_col_t *part;  /* [nparts * d]: each partition's own (only this rank's filled) */
    uint8_t *mine;      /* [nparts]: which partitions this rank did */
    apply_col_t *total; /* [d] after apply_stats_reduce (rank 0, or every rank with all) */
    double *scratch;    /* a block's and a partition's sums, squares, NaN counts and extremes */
    size_t block_elems; /* values per block (whole rows) */
    uint32_t *idx;      /* [block_elems]: a block's bucket indices */
    uint32_t *base;     /* [d]: column c's first bucket, c << bits */
} apply_stats_t;

int apply_stats_create(apply_stats_t *st, size_t d, size_t nparts, int histogram);
void apply_stats_destroy(apply_stats_t *st);
/* Adds partition part's rows x [rows, d]. */
void apply_stats_add(apply_stats_t *st, size_t part, const float *x, size_t rows);
/* Merges every rank's partitions in partition order into st->total (on
 * rank 0; on every rank when all is set) and the histograms (rank 0). */
int apply_stats_reduce(apply_stats_t *st, MPI_Comm comm, int all);
/* The value at quantile q of column c, from the histogram and min/max. */
double apply_stats_quantile(const apply_stats_t *st, size_t c, double q);
/* Counts of bins equal-width bins over [min, max] of column c. */
void apply_stats_histogram(const apply_stats_t *st, size_t c, int bins, uint64_t *counts);

/* ---- saved.c: a reduction's progress beside its result ----------------- */
typedef struct apply_saved_spec {
    uint32_t fingerprint;
    double every; /* seconds between saves (0: after every partition) */
    size_t nparts, rec_bytes;
    void *recs;          /* [nparts * rec_bytes]: each partition's record */
    uint8_t *mine;       /* [nparts]: this rank's partitions */
    uint64_t *hist;      /* [hist_len] counts over mine's partitions (NULL: none) */
    const uint32_t *hot; /* counts not yet added to hist (may be NULL) */
    size_t hist_len;
} apply_saved_spec_t;

typedef struct apply_saved {
    char prefix[4400]; /* the rank files' path, less the rank */
    int on, rank;
    uint32_t fp, gen;
    double every, last;
    size_t nparts, rec_bytes, hist_len;
    void *recs;
    uint8_t *mine;
    uint64_t *hist;
    const uint32_t *hot;
} apply_saved_t;

/* Collective. With a result path (NULL: nothing is saved): rank 0 takes
 * what an earlier run with the same fingerprint saved beside it (records
 * into spec's recs and mine, counts added to hist) and every rank gets
 * done[] (the partitions to skip). */
int apply_saved_resume(apply_saved_t *s, MPI_Comm comm, const char *result, const apply_saved_spec_t *spec,
                       uint8_t *done);
/* Between partitions: saves this rank's progress if `every` has passed. */
int apply_saved_tick(apply_saved_t *s);
/* Collective, after the result was written: removes the saved files. */
void apply_saved_finish(apply_saved_t *s, MPI_Comm comm);
/* TSR_FAULT_KILL="RANK:N" (tests): that rank SIGKILLs itself once it has
 * finished (and saved) N partitions; RANK -1: any rank that gets there (on
 * P ranks, more than P (N - 1) partitions make sure one does). */
void apply_fault_tick(MPI_Comm comm, size_t *count);

/* What makes a reduction resumable: its result's path (NULL: not
 * resumable), the run's fingerprint, seconds between saves; the caller
 * calls apply_saved_finish(&keep->saved) once the result is written. */
typedef struct apply_keep {
    const char *result;
    uint32_t fingerprint;
    double every;
    apply_saved_t saved;
} apply_keep_t;

/* apply.c: the stats pass over every partition (histogram or not), merged
 * on rank 0 (all: on every rank); resumable through keep (may be NULL). */
int apply_stats_pass(MPI_Comm comm, apply_input_t *in, size_t part_rows, int histogram, int all, apply_stats_t *st,
                     apply_keep_t *keep);

/* stats_out.c: the table on stdout and the JSON (written atomically). */
void apply_stats_print(const apply_stats_t *st, const int *cols);
int apply_stats_json(const apply_stats_t *st, int bins, const char *path);

/* ---- output.c: the rows output, a parallel HDF5 file ------------------- */
#define APPLY_MAX_OUT 3
typedef struct apply_out_spec {
    const char *name; /* "/pred" */
    hid_t type;       /* H5T_NATIVE_FLOAT or H5T_NATIVE_INT32 */
    size_t width;     /* values per row; 0: a 1-D dataset [rows] */
} apply_out_spec_t;

typedef struct apply_out {
    MPI_Comm comm;
    int rank;
    char path[4096], tmp[4200], journal[4220];
    hid_t file;
    int nsets;
    apply_out_spec_t spec[APPLY_MAX_OUT];
    hid_t set[APPLY_MAX_OUT];
    size_t rows, part_rows, nparts;
    uint8_t *done; /* [nparts] written partitions (resumed from the journal) */
    int resumed;
} apply_out_t;

/* Creates (or, when its journal matches fingerprint, reopens) the
 * temporary for path with the datasets of spec, collectively. */
int apply_out_open(apply_out_t *o, MPI_Comm comm, const char *path, const apply_out_spec_t *spec, int nsets,
                   size_t rows, size_t part_rows, uint32_t fingerprint);
/* Collective: writes this rank's partitions parts[0..n) (ascending), whose
 * values lie in buf[set] in that order, flushes, then records partitions
 * [round_first, +round_count) in the journal (every rank's are written). */
int apply_out_write(apply_out_t *o, const size_t *parts, size_t n, void *const *buf, size_t round_first,
                    size_t round_count);
/* Collective: a small dataset name [n] of floats that rank 0 writes. */
int apply_out_small(apply_out_t *o, const char *name, const float *v, size_t n);
/* Collective: closes, then rank 0 renames the temporary to path (ok;
 * refused if path is one of the inputs) or removes it and the journal
 * (!ok); the agreed result. */
int apply_out_close(apply_out_t *o, int ok, const char *const *inputs, int ninputs);

/* journal.c: "done FIRST COUNT" lines after a header with the fingerprint. */
int apply_journal_load(const char *path, uint32_t fingerprint, uint8_t *done, size_t nparts);
int apply_journal_start(const char *path, uint32_t fingerprint);
int apply_journal_add(const char *path, const size_t *parts, size_t n);

/* ---- rows functions (rows.c, predict.c, plugin.c) ----------------------- */
typedef struct apply_rows_fn {
    int nout;
    apply_out_spec_t out[APPLY_MAX_OUT];
    /* x [rows, d] of partition part to each output's buffer (rows values of its width). */
    int (*map)(void *ctx, const float *x, size_t rows, size_t first_row, void *const *out);
    void *ctx;
    /* After the output is opened (collective; may be NULL): small datasets. */
    int (*setup)(void *ctx, apply_out_t *o);
    const char *const *inputs; /* files the output may not be */
    int ninputs;
} apply_rows_fn_t;

/* Runs fn over every partition, writing the output file (collective). */
int apply_rows_run(MPI_Comm comm, apply_input_t *in, size_t part_rows, const char *output, uint32_t fingerprint,
                   const apply_rows_fn_t *fn);
/* normalize: stats first (every rank gets the means), then the copy. */
int apply_normalize(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, uint32_t fingerprint);

/* predict.c */
int apply_predict(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, uint32_t fingerprint);
/* plugin.c */
typedef struct apply_plugin {
    const tsr_apply_plugin_t *fn;
    char path[4096];
    size_t out_cols, partial_len;
} apply_plugin_t;
int apply_plugin_load(const char *path, size_t cols, apply_plugin_t *p);
int apply_plugin_map(const apply_plugin_t *p, const float *x, size_t rows, size_t cols, float *out);
int apply_plugin_partial(const apply_plugin_t *p, const float *x, size_t rows, size_t cols, size_t first,
                         double *partial);
int apply_plugin_merge(const apply_plugin_t *p, double *a, const double *b);

#endif
