/* SPDX-License-Identifier: BSD-3-Clause */
/* LRU cache: a chained hash table for lookup and a doubly linked list for
 * recency, one mutex around both. Each entry is one allocation holding its
 * key and value, so the byte budget charges what is really used. */
#include "tessera/cache.h"
#include "tessera/log.h"
#include "tessera/error.h"
#include "tessera/perf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list, head = most recently used */
    uint64_t hash;
    double expires; /* 0: never */
    size_t klen, vlen;
    unsigned char data[]; /* key bytes, then value bytes */
} entry_t;

struct tsr_cache {
    pthread_mutex_t mu;
    tsr_cache_config_t cfg;
    entry_t **buckets;
    size_t nbuckets; /* a power of two */
    entry_t *head, *tail;
    uint64_t seed; /* keys come from clients: a secret seed keeps them from choosing collisions */
    tsr_cache_stats_t st;
};

enum { MIN_BUCKETS = 64 };

static double mono_now(void *arg)
{
    (void)arg;
    return tsr_time_now();
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Word-at-a-time multiply-rotate hash: input rows are a few hundred bytes,
 * where byte-wise hashes like FNV cost more than the lookup itself. */
static uint64_t hash_bytes(uint64_t seed, const unsigned char *p, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w + 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
        h = (h << 27) | (h >> 37);
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, p, n);
    return mix64(h ^ w ^ ((uint64_t)n << 56));
}

size_t tsr_cache_entry_overhead(void)
{
    return sizeof(entry_t) + sizeof(entry_t *); /* the entry header and its share of the bucket array */
}

static size_t charge(const entry_t *e) { return tsr_cache_entry_overhead() + e->klen + e->vlen; }

int tsr_cache_create(const tsr_cache_config_t *cfg, tsr_cache_t **out)
{
    if (!cfg || !out || cfg->ttl_s < 0)
        return tsr_error_set(TSR_EINVAL, "cache: bad configuration (negative TTL or NULL argument)");
    tsr_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return tsr_error_set(TSR_ENOMEM, "cache: out of memory");
    c->cfg = *cfg;
    if (!c->cfg.clock)
        c->cfg.clock = mono_now;
    c->nbuckets = MIN_BUCKETS;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return tsr_error_set(TSR_ENOMEM, "cache: out of memory");
    }
    if (getrandom(&c->seed, sizeof c->seed, GRND_NONBLOCK) != (ssize_t)sizeof c->seed)
        c->seed = mix64((uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL));
    c->st.max_bytes = cfg->max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return TSR_OK;
}

static void lru_unlink(tsr_cache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(tsr_cache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static entry_t **find_slot(tsr_cache_t *c, uint64_t h, const void *key, size_t klen)
{
    entry_t **pp = &c->buckets[h & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->hash == h && (*pp)->klen == klen && (klen == 0 || memcmp((*pp)->data, key, klen) == 0))
            return pp;
    return pp;
}

/* Unlinks e (found at *pp in its chain) and frees it. */
static void drop(tsr_cache_t *c, entry_t **pp)
{
    entry_t *e = *pp;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->st.bytes -= charge(e);
    c->st.entries--;
    free(e);
}

static void drop_entry(tsr_cache_t *c, entry_t *e)
{
    entry_t **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    drop(c, pp);
}

static void grow(tsr_cache_t *c)
{
    size_t n = c->nbuckets * 2;
    entry_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry_t *e = c->buckets[i];
        while (e) {
            entry_t *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

int tsr_cache_put(tsr_cache_t *c, const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t need = tsr_cache_entry_overhead() + klen + vlen;
    if (need < klen || need < vlen)
        return tsr_error_set(TSR_EINVAL, "cache: entry size overflows");
    uint64_t h = hash_bytes(c->seed, key, klen);
    pthread_mutex_lock(&c->mu);
    double now = c->cfg.clock(c->cfg.clock_arg);
    entry_t **pp = find_slot(c, h, key, klen);
    if (*pp)
        drop(c, pp);
    if (need > c->cfg.max_bytes) {
        c->st.rejected++;
        pthread_mutex_unlock(&c->mu);
        return TSR_OK;
    }
    while (c->tail && c->st.bytes + need > c->cfg.max_bytes) {
        entry_t *t = c->tail;
        if (t->expires > 0 && t->expires <= now)
            c->st.expirations++;
        else
            c->st.evictions++;
        drop_entry(c, t);
    }
    entry_t *e = malloc(sizeof *e + klen + vlen);
    if (!e) {
        pthread_mutex_unlock(&c->mu);
        return tsr_error_set(TSR_ENOMEM, "cache: out of memory for a %zu-byte entry", need);
    }
    e->hash = h;
    e->klen = klen;
    e->vlen = vlen;
    e->expires = c->cfg.ttl_s > 0 ? now + c->cfg.ttl_s : 0;
    if (klen)
        memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    if (c->st.entries + 1 > c->nbuckets)
        grow(c);
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->hnext = *pp;
    *pp = e;
    lru_push_front(c, e);
    c->st.entries++;
    c->st.bytes += need;
    c->st.inserts++;
    pthread_mutex_unlock(&c->mu);
    return TSR_OK;
}

int tsr_cache_get(tsr_cache_t *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    uint64_t h = hash_bytes(c->seed, key, klen);
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    entry_t **pp = find_slot(c, h, key, klen);
    entry_t *e = *pp;
    if (e && e->expires > 0 && e->expires <= c->cfg.clock(c->cfg.clock_arg)) {
        c->st.expirations++;
        drop(c, pp);
        e = NULL;
    }
    if (e) {
        hit = 1;
        c->st.hits++;
        tsr_counter_add(TSR_COUNTER_CACHE_HITS, 1);
        if (c->head != e) {
            lru_unlink(c, e);
            lru_push_front(c, e);
        }
        if (vlen)
            *vlen = e->vlen;
        if (e->vlen <= cap && e->vlen)
            memcpy(buf, e->data + e->klen, e->vlen);
    } else {
        c->st.misses++;
        tsr_counter_add(TSR_COUNTER_CACHE_MISSES, 1);
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

int tsr_cache_remove(tsr_cache_t *c, const void *key, size_t klen)
{
    uint64_t h = hash_bytes(c->seed, key, klen);
    pthread_mutex_lock(&c->mu);
    entry_t **pp = find_slot(c, h, key, klen);
    int found = *pp != NULL;
    if (found)
        drop(c, pp);
    pthread_mutex_unlock(&c->mu);
    return found;
}

void tsr_cache_clear(tsr_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    entry_t *e = c->head;
    while (e) {
        entry_t *next = e->next;
        free(e);
        e = next;
    }
    memset(c->buckets, 0, c->nbuckets * sizeof *c->buckets);
    c->head = c->tail = NULL;
    c->st.entries = 0;
    c->st.bytes = 0;
    pthread_mutex_unlock(&c->mu);
}

void tsr_cache_stats(tsr_cache_t *c, tsr_cache_stats_t *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->st;
    pthread_mutex_unlock(&c->mu);
}

void tsr_cache_destroy(tsr_cache_t *c)
{
    if (!c)
        return;
    tsr_cache_clear(c);
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}
