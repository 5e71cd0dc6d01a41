/* SPDX-License-Identifier: BSD-3-Clause */
#include "common/bigbuf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *tsr_bigbuf_alloc(size_t bytes, int zero)
{
    enum { PAGE = 4096, HUGE = 2 << 20 };
    size_t align = bytes >= HUGE ? HUGE : PAGE;
    size_t size = bytes ? (bytes + align - 1) / align * align : PAGE;
    if (size < bytes)
        return NULL;
    void *p = aligned_alloc(align, size);
    if (!p)
        return NULL;
    if (align == HUGE)
        madvise(p, size, MADV_HUGEPAGE); /* advice only: a kernel without THP ignores it */
    if (zero)
        memset(p, 0, size);
    return p;
}
