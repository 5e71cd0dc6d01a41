/* SPDX-License-Identifier: BSD-3-Clause */
/* Error codes and the thread-local "what went wrong" message. */
#ifndef TESSERA_ERROR_H
#define TESSERA_ERROR_H
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library functions return TSR_OK or one of these; the CLI maps each class
 * to a documented exit code (see tsr_error_exit_code()). */
enum {
    TSR_OK = 0,
    TSR_EINVAL = -1,     /* bad argument, usage or configuration      -> exit 2 */
    TSR_EDATA = -2,      /* input data is missing, malformed, invalid -> exit 3 */
    TSR_EIO = -3,        /* reading or writing a file failed          -> exit 4 */
    TSR_ENOMEM = -4,     /* out of memory                             -> exit 1 */
    TSR_EMPI = -5,       /* an MPI call failed                        -> exit 1 */
    TSR_ESYS = -6,       /* a system call failed                      -> exit 1 */
    TSR_ENOTSUP = -7,    /* asked for something this build lacks      -> exit 2 */
    TSR_EINTERNAL = -8,  /* a bug                                    -> exit 1 */
    TSR_ESTOPPED = -9,   /* stopped by a signal after a checkpoint    -> exit 75 */
    TSR_ETIMEOUT = -10,  /* a collective or checkpoint stalled        -> exit 76 */
    TSR_ESCHED = -11,    /* the batch scheduler refused or is unreachable -> exit 5 */
    TSR_EDIVERGED = -12, /* training diverged: NaN or Inf loss or weights -> exit 6 */
    TSR_ETASKS = -13     /* tessera tasks: some tasks failed, were skipped or cancelled -> exit 7 */
};

/* The message set by the last failing call on this thread ("" if none). */
TSR_API const char *tsr_last_error(void);

/* Sets the message (printf-style) and returns code, so callers can write
 * `return tsr_error_set(TSR_EINVAL, "...")`. */
TSR_API int tsr_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with more context ("file.h5: " + old). */
TSR_API int tsr_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

TSR_API void tsr_error_clear(void);

/* A short name for a code ("invalid argument", ...). */
TSR_API const char *tsr_strerror(int code);

/* The documented process exit code for an error code. */
TSR_API int tsr_error_exit_code(int code);

#ifdef __cplusplus
}
#endif
#endif
