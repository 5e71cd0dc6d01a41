/* SPDX-License-Identifier: BSD-3-Clause */
/* Checks shared by the model file readers (model_file.c, model_file_v1.c).
 * Callers hold tsr_h5_lock(). Internal to src/model. */
#ifndef TSR_MODEL_H5_H
#define TSR_MODEL_H5_H
#include <hdf5.h>

/* 1: name is a hard link in loc; 0: there is no such link; -1: a soft or
 * external link, which could lead to another object or another file. */
int model_h5_hard_link(hid_t loc, const char *name);
/* Opens a float dataset of rank dimensions and reads its dims; returns
 * its id or -1. */
hid_t model_h5_open_f32(hid_t loc, const char *name, int rank, hsize_t *dims);
/* 0 when every one of nelem values is stored in this file (no external
 * or virtual data, allocated in full); adds the uncompressed bytes to *raw. */
int model_h5_check_stored(hid_t d, hsize_t nelem, hsize_t *raw);

#endif
