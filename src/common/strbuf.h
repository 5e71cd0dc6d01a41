/* SPDX-License-Identifier: BSD-3-Clause */
/* A growing text buffer for printf-style output (Prometheus text, CSV):
 * appends never fail one at a time; out of memory is sticky and checked
 * once at the end. */
#ifndef TSR_COMMON_STRBUF_H
#define TSR_COMMON_STRBUF_H
#include <stddef.h>

typedef struct tsr_strbuf {
    char *p; /* NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
    int oom; /* an append ran out of memory: the text is incomplete */
} tsr_strbuf_t;

void tsr_strbuf_printf(tsr_strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
