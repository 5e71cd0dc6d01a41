/* SPDX-License-Identifier: BSD-3-Clause */
/* Thread-local error message behind tsr_last_error(). */
#include "tessera/error.h"
#include "common/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char msg[1024];

/* Messages are one line of text whatever the input held (a config file, a
 * path, a request): tsr_text_printable escapes control bytes and invalid
 * UTF-8, and escaping twice changes nothing. */
static void make_printable(void)
{
    char out[sizeof msg];
    tsr_text_printable(msg, out, sizeof out);
    memcpy(msg, out, sizeof msg);
}

const char *tsr_last_error(void) { return msg; }

int tsr_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    make_printable();
    return code;
}

int tsr_error_prefix(int code, const char *fmt, ...)
{
    char old[sizeof msg];
    memcpy(old, msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, "%s", old);
    make_printable();
    return code;
}

void tsr_error_clear(void) { msg[0] = '\0'; }

const char *tsr_strerror(int code)
{
    switch (code) {
    case TSR_OK: return "success";
    case TSR_EINVAL: return "invalid argument or configuration";
    case TSR_EDATA: return "invalid input data";
    case TSR_EIO: return "input/output error";
    case TSR_ENOMEM: return "out of memory";
    case TSR_EMPI: return "MPI error";
    case TSR_ESYS: return "system error";
    case TSR_ENOTSUP: return "not supported by this build";
    case TSR_EINTERNAL: return "internal error";
    case TSR_ESTOPPED: return "stopped by a signal after writing a checkpoint";
    case TSR_ETIMEOUT: return "stalled past the watchdog timeout";
    case TSR_ESCHED: return "the batch scheduler refused or cannot be reached";
    case TSR_EDIVERGED: return "training diverged: the weights became NaN or Inf";
    case TSR_ETASKS: return "some tasks did not succeed";
    default: return "unknown error";
    }
}

int tsr_error_exit_code(int code)
{
    switch (code) {
    case TSR_OK: return 0;
    case TSR_EINVAL:
    case TSR_ENOTSUP: return 2;
    case TSR_EDATA: return 3;
    case TSR_EIO: return 4;
    case TSR_ESCHED: return 5;    /* the scheduler refused the job */
    case TSR_EDIVERGED: return 6; /* NaN or Inf weights: nothing written, the last good checkpoint kept */
    case TSR_ETASKS: return 7;    /* tessera tasks: a task failed, was skipped or cancelled */
    case TSR_ESTOPPED: return 75; /* EX_TEMPFAIL: checkpointed, requeue me */
    case TSR_ETIMEOUT: return 76; /* a rank or the file system stalled: resume elsewhere */
    default: return 1;
    }
}
