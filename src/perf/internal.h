/* SPDX-License-Identifier: BSD-3-Clause */
/* src/perf's shared pieces (internal). */
#ifndef TSR_PERF_INTERNAL_H
#define TSR_PERF_INTERNAL_H
#include "tessera/perf.h"

#include <stddef.h>

enum { PERF_NAME_LEN = 128, PERF_NOTE_LEN = 2048 };

/* The events resolved from a papi_events list. */
typedef struct perf_events {
    int n;
    char name[TSR_PERF_MAX_EVENTS][PERF_NAME_LEN];
    int code[TSR_PERF_MAX_EVENTS];
    const char *ptr[TSR_PERF_MAX_EVENTS]; /* name[i], for tsr_perf_events */
} perf_events_t;

#ifdef TSR_HAVE_PAPI
/* Initialises PAPI once per process; TSR_OK or TSR_ENOTSUP with a message. */
int perf_papi_init(void);
/* Splits list, checks every name (TSR_EINVAL for unknown names and
 * components, with close names), and keeps in ev those this machine can
 * count; note gets one line for the rest (empty when none). */
int perf_resolve(const char *list, perf_events_t *ev, char *note, size_t len);
#endif

/* Appends a formatted text to buf (len bytes), cut short if need be. */
void perf_append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
