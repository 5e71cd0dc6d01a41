/* SPDX-License-Identifier: BSD-3-Clause */
/* The byte buffer and cursor of buf.h. */
#include "tasks/buf.h"
#include "common/bigbuf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

void tbuf_free(tbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

unsigned char *tbuf_room(tbuf_t *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

void tbuf_put(tbuf_t *b, const void *p, size_t n)
{
    unsigned char *w = tbuf_room(b, n);
    if (w) {
        if (n)
            memcpy(w, p, n);
        b->len += n;
    }
}

static void put_le(tbuf_t *b, uint64_t v, int n)
{
    unsigned char *w = tbuf_room(b, (size_t)n);
    if (!w)
        return;
    for (int i = 0; i < n; i++)
        w[i] = (unsigned char)(v >> (8 * i));
    b->len += (size_t)n;
}

void tbuf_u8(tbuf_t *b, unsigned v) { put_le(b, v, 1); }
void tbuf_u16(tbuf_t *b, unsigned v) { put_le(b, v, 2); }
void tbuf_u32(tbuf_t *b, uint32_t v) { put_le(b, v, 4); }
void tbuf_u64(tbuf_t *b, uint64_t v) { put_le(b, v, 8); }

void tbuf_f64(tbuf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_le(b, u, 8);
}

void tbuf_str(tbuf_t *b, const char *s)
{
    if (!s) {
        tbuf_u32(b, 0xffffffffu);
        return;
    }
    size_t n = strlen(s);
    tbuf_u32(b, (uint32_t)n);
    tbuf_put(b, s, n);
}

void tcur_init(tcur_t *c, const void *p, size_t n)
{
    c->p = p;
    c->end = c->p + n;
    c->ok = 1;
}

static uint64_t get_le(tcur_t *c, int n)
{
    if (!c->ok || c->end - c->p < n) {
        c->ok = 0;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += n;
    return v;
}

unsigned tcur_u8(tcur_t *c) { return (unsigned)get_le(c, 1); }
unsigned tcur_u16(tcur_t *c) { return (unsigned)get_le(c, 2); }
uint32_t tcur_u32(tcur_t *c) { return (uint32_t)get_le(c, 4); }
uint64_t tcur_u64(tcur_t *c) { return get_le(c, 8); }

double tcur_f64(tcur_t *c)
{
    uint64_t u = get_le(c, 8);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

const void *tcur_bytes(tcur_t *c, size_t n)
{
    if (!c->ok || (size_t)(c->end - c->p) < n) {
        c->ok = 0;
        return NULL;
    }
    const void *p = c->p;
    c->p += n;
    return p;
}

const char *tcur_str(tcur_t *c, size_t *len)
{
    uint32_t n = tcur_u32(c);
    *len = 0;
    if (!c->ok || n == 0xffffffffu)
        return NULL;
    const char *p = tcur_bytes(c, n);
    if (p)
        *len = n;
    return p;
}

char *tcur_strdup(tcur_t *c)
{
    size_t n;
    const char *p = tcur_str(c, &n);
    if (!p)
        return NULL;
    char *s = malloc(n + 1);
    if (!s) {
        c->ok = 0;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void *big(size_t bytes, int zero)
{
    if (bytes < ((size_t)2 << 20))
        return zero ? calloc(1, bytes ? bytes : 1) : malloc(bytes ? bytes : 1);
    return tsr_bigbuf_alloc(bytes, zero);
}

void *tbig_zalloc(size_t bytes) { return big(bytes, 1); }
void *tbig_alloc(size_t bytes) { return big(bytes, 0); }

double tnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tunix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tarena_free(tarena_t *a)
{
    for (size_t i = 0; i < a->nblocks; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

char *tarena_strndup(tarena_t *a, const char *s, size_t n)
{
    enum { BLOCK = 64 << 10 };
    if (!a->nblocks || a->used + n + 1 > a->size) {
        size_t size = n + 1 > BLOCK ? n + 1 : BLOCK;
        if (a->nblocks == a->capblocks) {
            size_t cap = a->capblocks ? 2 * a->capblocks : 16;
            char **b = realloc(a->blocks, cap * sizeof *b);
            if (!b)
                return NULL;
            a->blocks = b;
            a->capblocks = cap;
        }
        char *blk = malloc(size);
        if (!blk)
            return NULL;
        a->blocks[a->nblocks++] = blk;
        a->used = 0;
        a->size = size;
    }
    char *d = a->blocks[a->nblocks - 1] + a->used;
    memcpy(d, s, n);
    d[n] = '\0';
    a->used += n + 1;
    return d;
}

char *tarena_strdup(tarena_t *a, const char *s) { return tarena_strndup(a, s, strlen(s)); }
