/* SPDX-License-Identifier: BSD-3-Clause */
/* Room in a growable array: the doubling that every append loop needs. */
#ifndef TSR_COMMON_GROW_H
#define TSR_COMMON_GROW_H
#include <stdlib.h>

/* Returns p (reallocated when *cap < need) with room for need elements of
 * elem bytes, the capacity doubling from first; *cap is updated. NULL when
 * out of memory, with p and *cap as they were. */
static inline void *tsr_grow(void *p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    void *np = realloc(p, c * elem);
    if (np)
        *cap = c;
    return np;
}

#endif
