/* SPDX-License-Identifier: BSD-3-Clause */
/* Text from outside (files, paths, requests) made safe to show. */
#ifndef TSR_COMMON_TEXT_H
#define TSR_COMMON_TEXT_H
#include <stddef.h>

/* Copies in to out (len bytes, always terminated, cut short if need be)
 * with every control byte (C0, DEL, C1) and every byte that is not part of
 * valid UTF-8 written as \n, \r, \t or \xHH, so a terminal shows it as text
 * and a line stays one line. Escapes are printable: applying it twice gives
 * the same text. Returns the length written. */
size_t tsr_text_printable(const char *in, char *out, size_t len);

/* Levenshtein distance ignoring ASCII case, for "did you mean"
 * suggestions; 99 for strings over 63 bytes. */
int tsr_text_distance(const char *a, const char *b);

#endif
