/* SPDX-License-Identifier: BSD-3-Clause */
/* String id -> task index, open addressing. The map keeps only indices
 * and hashes; the strings live with the tasks and are fetched through key()
 * to compare (internal). */
#ifndef TSR_TASKS_IDMAP_H
#define TSR_TASKS_IDMAP_H
#include <stddef.h>
#include <stdint.h>

#define IDMAP_NONE UINT32_MAX

typedef struct idmap {
    uint64_t *slot; /* (hash32 << 32) | (index + 1); 0 is empty */
    size_t cap, n;
    const char *(*key)(void *ctx, uint32_t idx);
    void *ctx;
} idmap_t;

uint32_t idmap_hash(const char *s, size_t n);
void idmap_init(idmap_t *m, const char *(*key)(void *, uint32_t), void *ctx);
void idmap_free(idmap_t *m);
/* Room for n entries without growing; -1 when out of memory. */
int idmap_reserve(idmap_t *m, size_t n);
/* Returns the index of id (n bytes), or IDMAP_NONE. */
uint32_t idmap_find(const idmap_t *m, const char *id, size_t n);
/* Adds id -> idx; returns 0, 1 when id is already present (*old gets its
 * index), -1 when out of memory. */
int idmap_add(idmap_t *m, uint32_t idx, uint32_t *old);

#endif
