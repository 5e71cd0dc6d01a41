/* SPDX-License-Identifier: BSD-3-Clause */
/* A growable byte buffer with little-endian put/get helpers: the task
 * farm's wire format (MPI messages) and journal records (internal). */
#ifndef TSR_TASKS_BUF_H
#define TSR_TASKS_BUF_H
#include <stddef.h>
#include <stdint.h>

typedef struct tbuf {
    unsigned char *p;
    size_t len, cap;
    int oom; /* an allocation failed: the contents are incomplete */
} tbuf_t;

void tbuf_free(tbuf_t *b);
/* Makes room for n more bytes; returns the write position or NULL. */
unsigned char *tbuf_room(tbuf_t *b, size_t n);
void tbuf_put(tbuf_t *b, const void *p, size_t n);
void tbuf_u8(tbuf_t *b, unsigned v);
void tbuf_u16(tbuf_t *b, unsigned v);
void tbuf_u32(tbuf_t *b, uint32_t v);
void tbuf_u64(tbuf_t *b, uint64_t v);
void tbuf_f64(tbuf_t *b, double v);
/* A string as u32 length + bytes (NULL is written as length 0xffffffff). */
void tbuf_str(tbuf_t *b, const char *s);

/* Reading: a cursor that fails (ok = 0) instead of running past the end. */
typedef struct tcur {
    const unsigned char *p, *end;
    int ok;
} tcur_t;

void tcur_init(tcur_t *c, const void *p, size_t n);
unsigned tcur_u8(tcur_t *c);
unsigned tcur_u16(tcur_t *c);
uint32_t tcur_u32(tcur_t *c);
uint64_t tcur_u64(tcur_t *c);
double tcur_f64(tcur_t *c);
/* Points into the buffer (not terminated): *len bytes; NULL for a NULL string. */
const char *tcur_str(tcur_t *c, size_t *len);
/* A malloc'd, terminated copy; NULL for a NULL string or on failure (check ok). */
char *tcur_strdup(tcur_t *c);
const void *tcur_bytes(tcur_t *c, size_t n);

/* Zeroed memory; from 2 MiB up in transparent huge pages where the kernel
 * allows them (madvise mode): a few page faults instead of hundreds per
 * megabyte, which for tables of a million tasks is most of their cost.
 * Free with free(). */
void *tbig_zalloc(size_t bytes);
/* The same, not zeroed (for arrays every element of which is written). */
void *tbig_alloc(size_t bytes);

/* Clocks: monotonic seconds, and Unix time in seconds. */
double tnow(void);
double tunix(void);

/* Strings that live as long as the farm: carved from 64 KiB blocks. */
typedef struct tarena {
    char **blocks;
    size_t nblocks, capblocks;
    size_t used, size; /* in the newest block */
} tarena_t;

void tarena_free(tarena_t *a);
/* A terminated copy of n bytes of s; NULL when out of memory. */
char *tarena_strndup(tarena_t *a, const char *s, size_t n);
char *tarena_strdup(tarena_t *a, const char *s);

#endif
