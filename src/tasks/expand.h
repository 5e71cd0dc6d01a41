/* SPDX-License-Identifier: BSD-3-Clause */
/* Parameter sweeps in task files (internal). A plain line is expanded as
 * bash expands braces outside quotes: {1..100}, {0..90..10}, {001..100}
 * (zero-padded), {a,b,c}; several groups give their product; ${...},
 * quoted text and \{ stay as written. A JSON task's "each" object gives
 * named dimensions ("i": "1..100" or ["a", "b", 3]) that {i} placeholders
 * in its strings take. */
#ifndef TSR_TASKS_EXPAND_H
#define TSR_TASKS_EXPAND_H
#include <stddef.h>
#include <stdint.h>

enum { EXPAND_MAX_DIMS = 16, EXPAND_VALUE_MAX = 32 };
#define EXPAND_MAX_TOTAL 100000000ull /* tasks from one line */

/* One dimension: an integer range or a list of strings. */
typedef struct edim {
    const char *name; /* JSON: the placeholder's name (not terminated: nlen bytes) */
    size_t nlen;
    long long a, step;
    uint64_t n;
    int width;          /* zero padding of a range; 0: none */
    const char **items; /* a list (not terminated: lens) */
    const size_t *lens;
} edim_t;

/* Parses "A..B" or "A..B..S" (n bytes) into d; 0, or -1 with a message. */
int edim_range(edim_t *d, const char *s, size_t n, char *err, size_t errlen);
/* Value k of d into buf (EXPAND_VALUE_MAX bytes for ranges); returns a
 * pointer to the value (buf or the list item) and its length. */
const char *edim_value(const edim_t *d, uint64_t k, char *buf, size_t *len);

/* The groups of a plain line: literal pieces and dimensions, alternating:
 * lit[0] dim[0] lit[1] ... dim[ndims-1] lit[ndims]. */
typedef struct eline {
    const char *lit[EXPAND_MAX_DIMS + 1];
    size_t litlen[EXPAND_MAX_DIMS + 1];
    edim_t dim[EXPAND_MAX_DIMS];
    const char **items; /* storage for list items of all dims */
    size_t *lens;
    int ndims;
    uint64_t total;
} eline_t;

/* Finds the brace groups of line (n bytes). 0, or -1 with a message. */
int eline_parse(eline_t *e, const char *line, size_t n, char *err, size_t errlen);
void eline_free(eline_t *e);
/* Expansion k (0 <= k < total) into a malloc'd-as-needed buffer *buf of
 * *cap bytes; returns its length, or -1 when out of memory. */
long eline_get(const eline_t *e, uint64_t k, char **buf, size_t *cap);
/* The indices of each dimension for expansion k (the last varies fastest). */
void expand_split(const edim_t *dims, int ndims, uint64_t k, uint64_t *idx);

#endif
