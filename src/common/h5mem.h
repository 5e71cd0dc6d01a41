/* HDF5 files built in memory (core driver, no backing store) and written
 * to disk by tessera itself: HDF5 never sees a failing write (which can
 * leave its library state broken), and a full or read-only disk becomes one
 * clean error with nothing left behind. Call with tsr_h5_lock() held. */
#ifndef TSR_COMMON_H5MEM_H
#define TSR_COMMON_H5MEM_H
#include <hdf5.h>
#include <stddef.h>

/* A new empty in-memory file, or -1. */
hid_t tsr_h5_mem_create(size_t expected_bytes);
/* Flushes and closes f, handing back its bytes (malloc'd) in *buf. */
int tsr_h5_mem_finish(hid_t f, const char *path, void **buf, size_t *len);

#endif
