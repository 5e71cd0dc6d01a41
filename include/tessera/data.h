/* SPDX-License-Identifier: BSD-3-Clause */
/* Datasets in tessera's HDF5 format (shared/DESIGN.md):
 *   /X  float32 or uint8 [N, D]   (uint8 carries attribute "scale", float)
 *   /y  int32 [N] class labels, or float32 [N, K] regression targets
 *   optional /X_test, /y_test of the same kinds.
 * A loader gives each rank its slice of a global, deterministic shuffle. */
#ifndef TESSERA_DATA_H
#define TESSERA_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_dataset tsr_dataset_t;

typedef enum { TSR_SPLIT_TRAIN = 0, TSR_SPLIT_TEST = 1 } tsr_split_t;

/* Opens one split of a dataset file and checks its shapes and types. For
 * TSR_SPLIT_TEST a file without /X_test gives TSR_EDATA. Errors name the
 * file and the dataset. Rows are read into memory by hyperslab when they fit
 * in memory_limit bytes (0: no limit), else streamed per batch. */
TSR_API int tsr_dataset_open(const char *path, tsr_split_t split, size_t memory_limit, tsr_dataset_t **out);
TSR_API void tsr_dataset_destroy(tsr_dataset_t *ds);
/* Whether the file has a test split (/X_test and /y_test). */
TSR_API int tsr_dataset_has_test(const char *path);

TSR_API size_t tsr_dataset_rows(const tsr_dataset_t *ds);
TSR_API size_t tsr_dataset_dim(const tsr_dataset_t *ds);
/* 1 if /y holds int32 class labels, 0 if float32 targets. */
TSR_API int tsr_dataset_is_labels(const tsr_dataset_t *ds);
/* Targets per row for float targets (K); 1 for labels. */
TSR_API size_t tsr_dataset_target_dim(const tsr_dataset_t *ds);
/* For labels: max label + 1 (computed while validating). */
TSR_API int tsr_dataset_classes(const tsr_dataset_t *ds);

/* The most classes a dataset may have: a model has one output per class,
 * and no layer is wider (tsr_model_create). */
#define TSR_DATA_MAX_CLASSES (1 << 24)

/* Checks every value: NaN/Inf in X or float targets, labels < 0 or >=
 * classes (classes <= 0: labels < 0 or >= TSR_DATA_MAX_CLASSES). Names
 * file, dataset, row, label and the outputs it would need. */
TSR_API int tsr_dataset_validate(tsr_dataset_t *ds, int classes);

/* Reads rows [start, start+count) in order: x gets count*D floats (uint8
 * scaled to float); labels (count) or targets (count*K) as the kind says;
 * the other pointer may be NULL. */
TSR_API int tsr_dataset_read(tsr_dataset_t *ds, size_t start, size_t count, float *x, int32_t *labels, float *targets);

/* Additions beyond the core API above. */

/* 1 if the split is streamed from the file per batch, 0 if held in memory. */
TSR_API int tsr_dataset_is_streaming(const tsr_dataset_t *ds);
/* How /X is stored in the file: "float32" or "uint8". */
TSR_API const char *tsr_dataset_dtype(const tsr_dataset_t *ds);
/* The shape (c, h, w) of a row, when /X declares one (an integer attribute
 * "shape" of up to 3 values, or image_rows and image_cols as the IDX
 * converter writes): returns 1 and fills shape, else 0. */
TSR_API int tsr_dataset_shape(const tsr_dataset_t *ds, int shape[3]);
/* The scale applied to uint8 /X (1 for float32). */
TSR_API float tsr_dataset_scale(const tsr_dataset_t *ds);
/* The path the dataset was opened from. */
TSR_API const char *tsr_dataset_path(const tsr_dataset_t *ds);

/* Reads the rows listed in rows[0..count) (any order, no repeats) into x,
 * labels or targets in that same order (as tsr_dataset_read). work is
 * scratch memory of tsr_dataset_gather_work_size(ds, count) bytes, so the
 * call allocates nothing; NULL makes it allocate its own. Streamed splits
 * read the rows with one union of hyperslabs (rows sorted first). */
TSR_API size_t tsr_dataset_gather_work_size(const tsr_dataset_t *ds, size_t count);
TSR_API int tsr_dataset_gather(tsr_dataset_t *ds, const uint32_t *rows, size_t count, float *x, int32_t *labels,
                               float *targets, void *work);

/* A batch as the loader hands it out; the memory belongs to the loader and
 * stays valid until the next tsr_loader_next. */
typedef struct tsr_batch {
    const float *x;        /* rows * dim */
    const int32_t *labels; /* rows, or NULL */
    const float *targets;  /* rows * target_dim, or NULL */
    size_t rows;
    uint64_t epoch; /* epoch of this batch */
    uint64_t step;  /* step within the epoch */
} tsr_batch_t;

typedef struct tsr_loader tsr_loader_t;

/* Every epoch e the N rows are permuted by a shuffle seeded with (seed, e)
 * (the same permutation on every rank). Step s of the epoch covers global
 * positions [s*B*world, (s+1)*B*world) of it, and rank r takes
 * [s*B*world + r*B, +B). The last incomplete global batch is dropped.
 * With prefetch, a helper thread fills the next batches (up to 8, in 32 MiB)
 * while this one is used.
 * Fails (TSR_EINVAL) if batch*world exceeds the rows, naming both. */
TSR_API int tsr_loader_create(tsr_dataset_t *ds, int rank, int world, size_t batch, uint64_t seed, int prefetch,
                              tsr_loader_t **out);
TSR_API void tsr_loader_destroy(tsr_loader_t *ld);
TSR_API size_t tsr_loader_steps_per_epoch(const tsr_loader_t *ld);
/* Positions the loader at (epoch, step) (for resume); the next call to
 * tsr_loader_next returns that batch. */
TSR_API int tsr_loader_seek(tsr_loader_t *ld, uint64_t epoch, uint64_t step);
TSR_API int tsr_loader_next(tsr_loader_t *ld, tsr_batch_t *batch);

/* Converters for `tessera data convert`. Each writes OUT atomically (temp
 * name, fsync, rename) and never leaves a partial file.
 * CSV: numeric columns, the label in column label_col (-1: last); a header
 * row is detected and skipped. test_fraction of rows (taken from the end
 * after a seeded shuffle) go to /X_test, /y_test.
 * IDX: image and label files (gzip or plain) -> uint8 /X with scale 1/255;
 * test_images/test_labels may be NULL. */
TSR_API int tsr_data_convert_csv(const char *csv, const char *out, int label_col, double test_fraction, uint64_t seed);
/* As tsr_data_convert_csv, with every feature multiplied by scale (1: as
 * read), e.g. 0.0625 for pixel values 0..16. */
TSR_API int tsr_data_convert_csv_scaled(const char *csv, const char *out, int label_col, double test_fraction,
                                        uint64_t seed, double scale);
TSR_API int tsr_data_convert_idx(const char *images, const char *labels, const char *test_images,
                                 const char *test_labels, const char *out);

#ifdef __cplusplus
}
#endif
#endif
