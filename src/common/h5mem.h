/* SPDX-License-Identifier: BSD-3-Clause */
/* HDF5 files built in memory (core driver, no backing store) and written
 * to disk by tessera itself: HDF5 never sees a failing write (which can
 * leave its library state broken), and a full or read-only disk becomes one
 * clean error with nothing left behind.
 *
 * The image lives in a caller-owned buffer that persists across files
 * (HDF5's file image callbacks point the core driver at it), so repeated
 * checkpoints reuse warm memory instead of faulting in fresh pages and
 * copying the image out. Call create/finish with tsr_h5_lock() held; the
 * finished image may be written out after the lock is released. */
#ifndef TSR_COMMON_H5MEM_H
#define TSR_COMMON_H5MEM_H
#include <hdf5.h>
#include <stddef.h>

typedef struct tsr_h5_image {
    unsigned char *buf;
    size_t cap; /* bytes allocated */
    size_t len; /* bytes of the finished file */
    size_t mem; /* bytes the core driver holds: buf[0..mem) is what HDF5 wrote, zeros elsewhere */
} tsr_h5_image_t;

/* A new empty in-memory file whose image grows in img, or -1. */
hid_t tsr_h5_mem_create(tsr_h5_image_t *img, size_t expected_bytes);
/* Flushes and closes f; img->buf[0..img->len) is then the whole file. */
int tsr_h5_mem_finish(hid_t f, const char *path, tsr_h5_image_t *img);
void tsr_h5_image_free(tsr_h5_image_t *img);

/* For files whose big datasets tessera writes itself (space allocated by
 * HDF5, bytes never written into the image): create grows the image in
 * steps of increment and gives metadata blocks of meta_block bytes (so
 * metadata created before the big datasets lies before their data); close
 * closes f without extending the image over the datasets' space and sets
 * img->len to the file's size (the end of file the superblock records,
 * which covers the datasets). The image then holds everything but those
 * datasets' bytes: buf[0..mem) is the file's start, later bytes that are
 * not a dataset's are zero. */
hid_t tsr_h5_mem_create_sparse(tsr_h5_image_t *img, size_t increment, size_t meta_block);
int tsr_h5_mem_close_sparse(hid_t f, const char *path, tsr_h5_image_t *img);

#endif
