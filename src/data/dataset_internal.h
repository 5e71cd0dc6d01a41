/* SPDX-License-Identifier: BSD-3-Clause */
/* The dataset object, shared by dataset.c (open, check, load) and
 * dataset_read.c (validate, read, gather). Internal to the data module. */
#ifndef TSR_DATA_DATASET_INTERNAL_H
#define TSR_DATA_DATASET_INTERNAL_H
#include "tessera/data.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Rows are read into memory (and validated when streamed) this many bytes
 * of float at a time. */
#define READ_CHUNK_BYTES ((size_t)64 << 20)

/* A streamed gather reads this many sorted rows per H5Dread: HDF5 1.10
 * builds a union of hyperslabs in time quadratic in its parts, so a big
 * batch is read as several small unions. */
#ifndef GATHER_GROUP
#define GATHER_GROUP 64
#endif

struct tsr_dataset {
    char *path;
    const char *xname; /* "/X" or "/X_test" */
    const char *yname;
    size_t n, d, k;
    int is_labels;
    int x_u8;
    float scale;  /* uint8 -> float factor; 1 for float32 */
    int classes;  /* max label + 1; 0 until known */
    int shape[3]; /* c, h, w of a row when /X declares it; 0 otherwise */
    int streaming;
    /* In memory. */
    float *x;
    int32_t *labels;
    float *targets;
    /* Streaming: kept open, used under the lock. */
    hid_t file, xset, yset, xspace, yspace;
};

/* Rows [start, start+count) into x and labels/targets; caller holds the lock. */
int tsr_dataset_read_rows_locked(tsr_dataset_t *ds, size_t start, size_t count, float *x, int32_t *labels,
                                 float *targets);
/* Rows per READ_CHUNK_BYTES of float. */
size_t tsr_dataset_chunk_rows(const tsr_dataset_t *ds);

#endif
