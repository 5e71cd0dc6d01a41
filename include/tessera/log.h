/* SPDX-License-Identifier: BSD-3-Clause */
/* Rank-prefixed log lines and the clock, for every module (no MPI). */
#ifndef TESSERA_LOG_H
#define TESSERA_LOG_H
#include <stdarg.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Logging. Lines from rank 0 read "tessera: msg"; others "tessera[rank N]: msg".
 * info goes to stdout from rank 0 only (or every rank if verbose);
 * warn and error go to stderr from whichever rank calls them. */
enum { TSR_LOG_ERROR = 0, TSR_LOG_WARN = 1, TSR_LOG_INFO = 2, TSR_LOG_DEBUG = 3 };
TSR_API void tsr_log_set_rank(int rank, int size);
TSR_API void tsr_log_set_level(int level);
TSR_API void tsr_log_set_all_ranks(int on);
TSR_API void tsr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
TSR_API void tsr_vlog(int level, const char *fmt, va_list ap);

/* Wall-clock seconds from a monotonic clock. */
TSR_API double tsr_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
