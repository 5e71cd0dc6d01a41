/* SPDX-License-Identifier: BSD-3-Clause */
/* The id map of idmap.h: FNV-1a hashes, linear probing, load <= 1/2. */
#include "tasks/idmap.h"
#include "tasks/buf.h"

#include <stdlib.h>
#include <string.h>

uint32_t idmap_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void idmap_init(idmap_t *m, const char *(*key)(void *, uint32_t), void *ctx)
{
    memset(m, 0, sizeof *m);
    m->key = key;
    m->ctx = ctx;
}

void idmap_free(idmap_t *m)
{
    free(m->slot);
    m->slot = NULL;
    m->cap = m->n = 0;
}

static int same(const idmap_t *m, uint64_t e, const char *id, size_t n)
{
    const char *k = m->key(m->ctx, (uint32_t)(e & 0xffffffffu) - 1);
    return strncmp(k, id, n) == 0 && k[n] == '\0';
}

uint32_t idmap_find(const idmap_t *m, const char *id, size_t n)
{
    if (!m->cap)
        return IDMAP_NONE;
    uint32_t h = idmap_hash(id, n);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint64_t e = m->slot[i];
        if (!e)
            return IDMAP_NONE;
        if ((uint32_t)(e >> 32) == h && same(m, e, id, n))
            return (uint32_t)(e & 0xffffffffu) - 1;
    }
}

static void insert(uint64_t *slot, size_t cap, uint64_t e)
{
    size_t i = (uint32_t)(e >> 32) & (cap - 1);
    while (slot[i])
        i = (i + 1) & (cap - 1);
    slot[i] = e;
}

static int resize(idmap_t *m, size_t cap)
{
    uint64_t *s = tbig_zalloc(cap * sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i])
            insert(s, cap, m->slot[i]);
    free(m->slot);
    m->slot = s;
    m->cap = cap;
    return 0;
}

int idmap_reserve(idmap_t *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 1024;
    while (cap < 2 * (n + 1))
        cap *= 2;
    return cap > m->cap ? resize(m, cap) : 0;
}

int idmap_add(idmap_t *m, uint32_t idx, uint32_t *old)
{
    if (2 * (m->n + 1) > m->cap && resize(m, m->cap ? 2 * m->cap : 1024))
        return -1;
    const char *k = m->key(m->ctx, idx);
    size_t n = strlen(k);
    uint32_t h = idmap_hash(k, n);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint64_t e = m->slot[i];
        if (!e) {
            m->slot[i] = ((uint64_t)h << 32) | ((uint64_t)idx + 1);
            m->n++;
            return 0;
        }
        if ((uint32_t)(e >> 32) == h && same(m, e, k, n)) {
            if (old)
                *old = (uint32_t)(e & 0xffffffffu) - 1;
            return 1;
        }
    }
}
