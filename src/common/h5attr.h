/* Scalar HDF5 attributes as tessera's files use them: fixed-length,
 * NUL-terminated strings and 64-bit integers. Callers hold tsr_h5_lock().
 * Each returns 0, or -1 when the attribute is missing, of another kind or
 * HDF5 fails; the caller names the file in its message. */
#ifndef TSR_COMMON_H5ATTR_H
#define TSR_COMMON_H5ATTR_H
#include <hdf5.h>
#include <stddef.h>

int tsr_h5_attr_put_str(hid_t obj, const char *name, const char *value);
int tsr_h5_attr_put_i64(hid_t obj, const char *name, long long value);
/* Reads a fixed-length string attribute into buf (at most len bytes with
 * the NUL); a longer or variable-length one is refused. */
int tsr_h5_attr_get_str(hid_t obj, const char *name, char *buf, size_t len);

#endif
