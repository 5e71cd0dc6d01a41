/* SPDX-License-Identifier: BSD-3-Clause */
/* An in-memory LRU cache with a time-to-live and a byte budget. Keys and
 * values are byte strings (the coordinator keys predictions by the raw
 * float bytes of an input row). Every call is thread-safe. */
#ifndef TESSERA_CACHE_H
#define TESSERA_CACHE_H
#include <stddef.h>
#include <stdint.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_cache tsr_cache_t;

/* Seconds on a monotonic clock; tests inject their own. */
typedef double (*tsr_cache_clock_fn)(void *arg);

typedef struct tsr_cache_config {
    size_t max_bytes;         /* budget for keys + values + tsr_cache_entry_overhead() each; 0 stores nothing */
    double ttl_s;             /* entries expire this long after insertion; 0: never */
    tsr_cache_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_arg;
} tsr_cache_config_t;

typedef struct tsr_cache_stats {
    uint64_t hits, misses;
    uint64_t inserts;     /* successful puts (replacements included) */
    uint64_t evictions;   /* entries dropped to stay under the byte budget */
    uint64_t expirations; /* entries dropped because their TTL passed */
    uint64_t rejected;    /* puts larger than the whole budget, not stored */
    size_t entries, bytes, max_bytes;
} tsr_cache_stats_t;

TSR_API int tsr_cache_create(const tsr_cache_config_t *cfg, tsr_cache_t **out);
TSR_API void tsr_cache_destroy(tsr_cache_t *c); /* accepts NULL */

/* Inserts key -> value (copies both), replacing an existing entry and
 * restarting its TTL; evicts least recently used entries to fit. An entry
 * larger than the whole budget is not stored (counted as rejected). */
TSR_API int tsr_cache_put(tsr_cache_t *c, const void *key, size_t klen, const void *val, size_t vlen);

/* Looks key up. Returns 1 on a hit, with *vlen set to the value's size and
 * the value copied into buf when it fits in cap (check *vlen <= cap; else
 * nothing is copied and the caller may retry with a larger buffer); 0 on a
 * miss. A hit makes the entry the most recently used. */
TSR_API int tsr_cache_get(tsr_cache_t *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);

/* Returns 1 if key was present (and is now gone), else 0. */
TSR_API int tsr_cache_remove(tsr_cache_t *c, const void *key, size_t klen);
/* Drops every entry; counters are kept. */
TSR_API void tsr_cache_clear(tsr_cache_t *c);
TSR_API void tsr_cache_stats(tsr_cache_t *c, tsr_cache_stats_t *st);
/* Bytes each entry costs beyond its key and value. */
TSR_API size_t tsr_cache_entry_overhead(void);

#ifdef __cplusplus
}
#endif
#endif
