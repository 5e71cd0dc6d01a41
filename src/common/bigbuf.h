/* SPDX-License-Identifier: BSD-3-Clause */
/* Large buffers that hot loops stream side by side (parameters, gradients,
 * optimizer state, accumulated sums, the task farm's tables). */
#ifndef TSR_COMMON_BIGBUF_H
#define TSR_COMMON_BIGBUF_H
#include <stddef.h>

/* bytes rounded up to whole pages, page-aligned, so element i of every
 * such buffer has the same address bits below 4 KiB: a store to one never
 * looks, to the CPU, like the next elements' loads from another (4K
 * aliasing: an SGD update over 16-byte-aligned calloc'd momentum beside
 * 64-byte-aligned weights ran 4-5x slower on a Zen 3 core). From 2 MiB
 * on, 2 MiB-aligned and advised for transparent huge pages. Zeroed when
 * zero != 0; released with free(); NULL when out of memory. */
void *tsr_bigbuf_alloc(size_t bytes, int zero);

#endif
