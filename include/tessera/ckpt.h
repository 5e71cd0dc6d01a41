/* SPDX-License-Identifier: BSD-3-Clause */
/* Checkpoints: named memory regions written to one HDF5 file, atomically
 * (temporary name, fsync, rename, fsync of the directory) and, if asked,
 * asynchronously (regions are copied into host snapshot buffers and a helper
 * thread writes them while the caller goes on). A checksum over every
 * dataset means a damaged file is refused, never loaded.
 *
 * The same API serves tessera's own training loop and users who bring their
 * own model (in the style of SCR and VeloC): register regions once, ask
 * whether a checkpoint is due, write, and on restart restore the newest
 * checkpoint that verifies.
 *
 * File layout (readable by h5py and h5dump): every region is a dataset at
 * its registered path ("/model/layer_0/weight"); root attributes
 *   format = "tessera-checkpoint", version, step, epoch, samples_seen,
 *   world_size, seed, created (ISO 8601), config, model,
 *   checksum = "crc32:XXXXXXXX" (zlib CRC-32 over the raw little-endian bytes
 *   of the datasets listed in checksum_datasets, in that order, then from
 *   version 2 on over the root attributes: for each of format, version,
 *   step, epoch, samples_seen, world_size, seed, created, config, model and
 *   checksum_datasets in this order, its name, a NUL, its value's length as
 *   8 little-endian bytes and its value as text, integers in decimal),
 *   checksum_datasets (their paths, one per line). */
#ifndef TESSERA_CKPT_H
#define TESSERA_CKPT_H
#include <stddef.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_CKPT_FORMAT "tessera-checkpoint"
#define TSR_CKPT_VERSION 2 /* 2: the checksum covers the root attributes too; 1 is still read */

typedef enum { TSR_CKPT_FLOAT32 = 0, TSR_CKPT_FLOAT64, TSR_CKPT_INT64, TSR_CKPT_UINT8 } tsr_ckpt_type_t;

typedef struct tsr_ckpt_config {
    const char *dir;      /* created on first write */
    long every_steps;     /* 0: not by steps */
    double every_seconds; /* 0: not by time */
    int keep;             /* newest files kept (>= 1) */
    int async;            /* write on a helper thread */
} tsr_ckpt_config_t;

/* What a checkpoint says about itself (root attributes). */
typedef struct tsr_ckpt_meta {
    long step, epoch, samples_seen, seed;
    int world_size;
    const char *config; /* text; NULL writes "" */
    const char *model;  /* text (layer spec JSON); NULL writes "" */
} tsr_ckpt_meta_t;

/* What verification found; text fields are owned by the info. */
typedef struct tsr_ckpt_info {
    long step, epoch, samples_seen, seed, world_size, version;
    char created[40];
    char *config, *model;
    size_t bytes; /* data bytes covered by the checksum */
    int ndatasets;
} tsr_ckpt_info_t;

typedef struct tsr_ckpt tsr_ckpt_t;

TSR_API int tsr_ckpt_create(const tsr_ckpt_config_t *cfg, tsr_ckpt_t **out);
/* Waits for a write in flight, then frees. Accepts NULL. */
TSR_API void tsr_ckpt_destroy(tsr_ckpt_t *c);

/* Registers ptr (ndims dims, row-major) as dataset path. The snapshot
 * buffer is allocated here, so writing allocates nothing. */
TSR_API int tsr_ckpt_register(tsr_ckpt_t *c, const char *path, void *ptr, tsr_ckpt_type_t type, int ndims,
                              const size_t *dims);

/* Whether a checkpoint is due after step (by every_steps or every_seconds
 * since the last write started). */
TSR_API int tsr_ckpt_due(const tsr_ckpt_t *c, long step);

/* Writes the file DIR/ckpt-<step>.h5; waits first for the previous write.
 * Asynchronous (async on and sync 0): copies every region into its
 * snapshot on the calling thread and returns at once; the writer thread
 * writes, and tsr_ckpt_wait gives the result. Sync: writes straight from
 * the regions (no snapshot) and returns when the file is committed
 * (fsync'd, renamed, directory fsync'd). Older files beyond keep are
 * removed after a successful commit, never before; with a writer thread
 * that removal runs there after a sync write returns (tsr_ckpt_wait, the
 * next write and destroy wait for it). */
TSR_API int tsr_ckpt_write(tsr_ckpt_t *c, const tsr_ckpt_meta_t *meta, int sync);
/* Waits for the write in flight (if any) and returns its result. */
TSR_API int tsr_ckpt_wait(tsr_ckpt_t *c);
/* No write's failure is lost: every failed write is recorded, and a
 * failure not returned to the caller by a synchronous write is handed out
 * once here, oldest first, without waiting: its code (the message names the
 * file and the cause) and *step (may be NULL) its checkpoint's step, or
 * TSR_OK when there is none (yet). Poll it, and after tsr_ckpt_wait. */
TSR_API int tsr_ckpt_take_failure(tsr_ckpt_t *c, long *step);
/* Writes committed and writes failed so far; the step and message (owned
 * by the engine) of failure i (the first 8 are kept), or -1. */
TSR_API long tsr_ckpt_written(const tsr_ckpt_t *c);
TSR_API long tsr_ckpt_failed(const tsr_ckpt_t *c);
TSR_API long tsr_ckpt_failure(const tsr_ckpt_t *c, int i, const char **why);
/* 1 while a write is in flight. */
TSR_API int tsr_ckpt_busy(tsr_ckpt_t *c);
/* Path and step of the last committed checkpoint ("" / -1 if none). */
TSR_API const char *tsr_ckpt_last_path(const tsr_ckpt_t *c);
TSR_API long tsr_ckpt_last_step(const tsr_ckpt_t *c);
/* Seconds the last write took on the writer (snapshot excluded) and its bytes. */
TSR_API double tsr_ckpt_last_write_seconds(const tsr_ckpt_t *c);
TSR_API size_t tsr_ckpt_bytes(const tsr_ckpt_t *c);

/* Verifies path, then reads every registered region from it (shapes and
 * types must match). Regions change only if everything read and verified.
 * info (may be NULL) gets the file's attributes. */
TSR_API int tsr_ckpt_restore(tsr_ckpt_t *c, const char *path, tsr_ckpt_info_t *info);

/* Checks format, version and checksum of a file. */
TSR_API int tsr_ckpt_verify(const char *path, tsr_ckpt_info_t *info);
TSR_API void tsr_ckpt_info_free(tsr_ckpt_info_t *info);

/* Called for each checkpoint file found in a directory, newest first.
 * rc is TSR_OK if it verified (info filled) or the error; return non-zero
 * to stop the walk. */
typedef int (*tsr_ckpt_visit_fn)(const char *path, int rc, const tsr_ckpt_info_t *info, void *arg);
/* Walks DIR's ckpt-*.h5 files newest (highest step) first. Returns the
 * number visited or a negative error (a missing directory is 0 files). */
TSR_API int tsr_ckpt_scan(const char *dir, tsr_ckpt_visit_fn fn, void *arg);

/* 1 if path (its links followed) is a file a checkpoint directory dir
 * manages: a ckpt-<step>.h5 name inside dir, which checkpoints replace and
 * retention deletes; 0 otherwise (also when dir does not exist). */
TSR_API int tsr_ckpt_dir_owns(const char *dir, const char *path);

/* Removes temporary files that writers killed mid-write left in dir
 * (".ckpt-*.tmp.<pid>" whose process no longer runs). Returns how many. */
TSR_API int tsr_ckpt_clean_stale(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
