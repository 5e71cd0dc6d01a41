/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera's HDF5 files, one layer for every module: scalar attributes read
 * and written, whole datasets written, new files created under a temporary
 * name. Every function takes the HDF5 lock itself (common/h5lock.h: one
 * recursive lock, since Debian's parallel HDF5 is not thread-safe), so it
 * may be called with the lock held or not. On failure the functions that
 * return a TSR_E* code set the message (without the file's name: callers
 * prefix it); the attribute readers return 0 or -1 (missing, of another
 * kind, or HDF5 failed) and the caller names the file.
 *
 * Typical use, for a file written whole or not at all:
 *   tsr_h5w_create_tmp(out, tmp, sizeof tmp, &f);
 *   tsr_h5w_dataset(f, "X", H5T_STD_U8LE, 2, dims, H5T_NATIVE_UINT8, data, 1);
 *   tsr_h5w_attr_float(f, "X", "scale", 1.0f / 255);
 *   tsr_h5w_root_attrs(f, "tessera-dataset", "train.idx");
 *   rc = tsr_h5w_commit(f, tmp, out);
 * and on any failure before it tsr_h5w_abandon(f, tmp); or, after calls
 * chained on rc, rc = tsr_h5w_finish(f, tmp, out, rc). */
#ifndef TSR_COMMON_H5IO_H
#define TSR_COMMON_H5IO_H
#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* ---- scalar attributes on an open object ------------------------------- */
/* Fixed-length, NUL-terminated strings (ASCII) and 64-bit integers. */
int tsr_h5_attr_put_str(hid_t obj, const char *name, const char *value);
int tsr_h5_attr_put_i64(hid_t obj, const char *name, long long value);
/* Reads a fixed-length string attribute into buf (at most len bytes with
 * the NUL); a longer or variable-length one is refused. */
int tsr_h5_attr_get_str(hid_t obj, const char *name, char *buf, size_t len);
/* Any string attribute, fixed or variable length, in either character set,
 * as a new string (*out; free it). */
int tsr_h5_attr_get_str_alloc(hid_t obj, const char *name, char **out);
/* An integer attribute as 64 bits; a single float one as float. */
int tsr_h5_attr_get_i64(hid_t obj, const char *name, long long *v);
int tsr_h5_attr_get_f32(hid_t obj, const char *name, float *v);

/* ---- new files ------------------------------------------------------------ */
/* Creates the temporary for out (tsr_file_create_tmp: a new file, never
 * one a link leads to) as an HDF5 file; tmp gets its name, *f its id. */
int tsr_h5w_create_tmp(const char *out, char *tmp, size_t len, hid_t *f);
/* Closes a file made by tsr_h5w_create_tmp (ignores ids < 0). Returns TSR_EIO
 * if HDF5 could not flush it. */
int tsr_h5w_close(hid_t file);

/* The end of a file made by tsr_h5w_create_tmp: closes f and renames tmp
 * to out (tmp is cleared); on failure nothing is left and the message
 * names out. */
int tsr_h5w_commit(hid_t f, char *tmp, const char *out);
/* The end after a failure: closes f (ignores ids < 0) and removes tmp,
 * keeping the message that said what failed. */
void tsr_h5w_abandon(hid_t f, const char *tmp);
/* The end, whatever the calls that wrote f returned (rc): tsr_h5w_commit
 * when rc is TSR_OK; otherwise the message is prefixed with out, the file
 * abandoned, and rc returned. */
int tsr_h5w_finish(hid_t f, char *tmp, const char *out, int rc);

/* Datasets up to this many bytes are worth compressing: they are read
 * whole. Bigger ones are best contiguous, since a streamed random row from
 * a compressed chunk costs a whole chunk's decompression (measured on
 * Fashion-MNIST: ~170 ms instead of ~2 ms per 256-row batch). */
#define TSR_H5W_COMPRESS_MAX_BYTES ((size_t)16 << 20)

/* Writes a whole dataset `name` (relative to loc) of file type ftype
 * (e.g. H5T_IEEE_F32LE) with the given rank and dims from data in memory
 * type mtype. compress: chunked with deflate (level 4) and shuffle where
 * the filters are available; else contiguous. Rows (dims[0]) of zero are
 * allowed. */
int tsr_h5w_dataset(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims, hid_t mtype,
                    const void *data, int compress);

/* Attributes on the object `obj` ("." or "/" for loc itself). Strings are
 * fixed-length, NUL-terminated UTF-8 (read them with a memory type of the
 * same cset: HDF5 does not convert between ASCII and UTF-8). */
int tsr_h5w_attr_str(hid_t loc, const char *obj, const char *name, const char *value);
int tsr_h5w_attr_float(hid_t loc, const char *obj, const char *name, float value);
int tsr_h5w_attr_double(hid_t loc, const char *obj, const char *name, double value);
int tsr_h5w_attr_int64(hid_t loc, const char *obj, const char *name, int64_t value);

/* Root attributes every tessera file carries: format, source, created
 * (ISO 8601, UTC, now). */
int tsr_h5w_root_attrs(hid_t file, const char *format, const char *source);

/* The current time as ISO 8601 UTC ("2024-05-01T12:00:00Z"). */
void tsr_h5w_iso8601_now(char *buf, size_t len);

#endif
