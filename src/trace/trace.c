/* SPDX-License-Identifier: BSD-3-Clause */
/* The per-rank event rings and their Chrome trace JSON (see trace.h).
 * Each thread claims a ring once (an atomic counter; the claim is cached in
 * a thread-local keyed by the trace's id, so a later trace is claimed
 * afresh); a ring has one writer, which stores the event and then publishes
 * its new head with a release store. The writer of the file copies a ring
 * and keeps only the events no one can have overwritten meanwhile. */
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ev {
    uint64_t ns;
    int64_t arg;
    int32_t kind;
    char ph;
} ev_t;

typedef struct ring {
    _Atomic uint64_t head; /* events ever recorded here */
    ev_t *ev;
    char name[32];
} ring_t;

struct tsr_trace {
    char path[4096];
    int rank, nrings;
    size_t cap;
    uint64_t id;
    _Atomic int claimed;
    _Atomic uint64_t lost; /* events of threads beyond nrings */
    double offset;
    uint64_t said; /* drops already warned about */
    pthread_mutex_t write_mu;
    ring_t *rings;
};

static const char *const kind_names[TSR_TRACE_NKINDS] = {
    "data", "forward", "backward",   "reduce_wait", "optimizer",  "checkpoint",
    "step", "bucket",  "ckpt_write", "task",        "http_batch",
};

static _Atomic(tsr_trace_t *) current;
static _Atomic uint64_t next_id = 1;
static _Thread_local struct {
    uint64_t id;
    ring_t *ring;
} mine;

const char *tsr_trace_kind_name(int kind) { return kind >= 0 && kind < TSR_TRACE_NKINDS ? kind_names[kind] : NULL; }

int tsr_trace_create(const char *path, int rank, size_t events, int threads, tsr_trace_t **out)
{
    *out = NULL;
    if (!path || !*path || events < 2 || threads < 1)
        return tsr_error_set(TSR_EINVAL, "trace: a path, at least 2 events and 1 thread are needed");
    tsr_trace_t *t = calloc(1, sizeof *t);
    if (!t || !(t->rings = calloc((size_t)threads, sizeof *t->rings)))
        goto oom;
    t->nrings = threads;
    t->cap = events;
    /* One slot more than kept: the slot a writer may be filling while the
     * file is written is never one of those kept. malloc, not calloc: a
     * ring's pages are touched only when a thread claims it (claim). */
    for (int i = 0; i < threads; i++)
        if (!(t->rings[i].ev = malloc((events + 1) * sizeof(ev_t))))
            goto oom;
    if (snprintf(t->path, sizeof t->path, "%s", path) >= (int)sizeof t->path) {
        tsr_trace_destroy(t);
        return tsr_error_set(TSR_EINVAL, "trace: path too long: %.64s...", path);
    }
    t->rank = rank;
    t->id = atomic_fetch_add(&next_id, 1);
    pthread_mutex_init(&t->write_mu, NULL);
    *out = t;
    return TSR_OK;
oom:
    tsr_trace_destroy(t);
    return tsr_error_set(TSR_ENOMEM, "trace: out of memory for %d rings of %zu events", threads, events);
}

void tsr_trace_destroy(tsr_trace_t *t)
{
    if (!t)
        return;
    for (int i = 0; t->rings && i < t->nrings; i++)
        free(t->rings[i].ev);
    free(t->rings);
    if (t->id)
        pthread_mutex_destroy(&t->write_mu);
    free(t);
}

void tsr_trace_set_offset(tsr_trace_t *t, double offset_s)
{
    if (t)
        t->offset = offset_s;
}

static ring_t *claim(tsr_trace_t *t)
{
    if (mine.id == t->id)
        return mine.ring;
    int slot = atomic_fetch_add_explicit(&t->claimed, 1, memory_order_relaxed);
    ring_t *r = slot < t->nrings ? &t->rings[slot] : NULL;
    if (r && pthread_getname_np(pthread_self(), r->name, sizeof r->name) != 0)
        r->name[0] = '\0';
    /* The ring's pages now, at this thread's first event: left to be
     * touched as events land, a page faulted in every few steps, on the
     * step's path (in a VM a fault costs microseconds). */
    if (r)
        memset(r->ev, 0, (t->cap + 1) * sizeof *r->ev);
    mine.id = t->id;
    mine.ring = r;
    return r;
}

void tsr_trace_event_at(tsr_trace_t *t, int kind, char ph, int64_t arg, double now)
{
    if (!t)
        return;
    ring_t *r = claim(t);
    if (!r) {
        atomic_fetch_add_explicit(&t->lost, 1, memory_order_relaxed);
        return;
    }
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    ev_t *e = &r->ev[h % (t->cap + 1)];
    e->ns = (uint64_t)(now * 1e9);
    e->arg = arg;
    e->kind = kind;
    e->ph = ph;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tsr_trace_event(tsr_trace_t *t, int kind, char ph, int64_t arg)
{
    if (t)
        tsr_trace_event_at(t, kind, ph, arg, now_s());
}

void tsr_trace_set_current(tsr_trace_t *t) { atomic_store_explicit(&current, t, memory_order_release); }

tsr_trace_t *tsr_trace_current(void) { return atomic_load_explicit(&current, memory_order_acquire); }

void tsr_trace_mark(int kind, char ph, int64_t arg)
{
    tsr_trace_t *t = atomic_load_explicit(&current, memory_order_acquire);
    if (t)
        tsr_trace_event_at(t, kind, ph, arg, now_s());
}

uint64_t tsr_trace_recorded(const tsr_trace_t *t)
{
    uint64_t n = t ? atomic_load(&((tsr_trace_t *)t)->lost) : 0;
    for (int i = 0; t && i < t->nrings; i++)
        n += atomic_load(&t->rings[i].head);
    return n;
}

uint64_t tsr_trace_dropped(const tsr_trace_t *t)
{
    if (!t)
        return 0;
    uint64_t n = atomic_load(&((tsr_trace_t *)t)->lost);
    for (int i = 0; i < t->nrings; i++) {
        uint64_t h = atomic_load(&t->rings[i].head);
        n += h > t->cap ? h - t->cap : 0;
    }
    return n;
}

int tsr_trace_path(const char *path, int rank, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : path))
        dot = path + strlen(path);
    int n = snprintf(buf, len, "%.*s.rank%d%s", (int)(dot - path), path, rank, dot);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "trace: path too long: %.64s...", path);
    return TSR_OK;
}

/* One ring's events as JSON, leaving out an end whose begin was lost. */
static void write_ring(FILE *f, const tsr_trace_t *t, int tid, const ev_t *ev, uint64_t first, uint64_t last,
                       int *comma)
{
    int depth = 0;
    double off_us = t->offset * 1e6;
    for (uint64_t i = first; i < last; i++) {
        const ev_t *e = &ev[i % (t->cap + 1)];
        const char *name = tsr_trace_kind_name(e->kind);
        if (!name || !strchr("BEbe", e->ph) || !e->ph)
            continue;
        if (e->ph == 'b' || e->ph == 'e') { /* async spans (buckets) pair by id, not by nesting */
            fprintf(
                f, "%s\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"%c\",\"id\":%lld,\"pid\":%d,\"tid\":%d,\"ts\":%.3f}",
                *comma ? "," : "", name, name, e->ph, (long long)e->arg, t->rank, tid, (double)e->ns * 1e-3 + off_us);
            *comma = 1;
            continue;
        }
        if (e->ph == 'E' && depth == 0)
            continue;
        depth += e->ph == 'B' ? 1 : -1;
        fprintf(f, "%s\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"%c\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f",
                *comma ? "," : "", name, e->kind < TSR_TRACE_NPHASES || e->kind == TSR_TRACE_STEP ? "step" : "work",
                e->ph, t->rank, tid, (double)e->ns * 1e-3 + off_us);
        if (e->ph == 'B' && e->kind >= TSR_TRACE_STEP)
            fprintf(f, ",\"args\":{\"%s\":%lld}", e->kind == TSR_TRACE_HTTP_BATCH ? "rows" : "id", (long long)e->arg);
        fputc('}', f);
        *comma = 1;
    }
}

/* The JSON of every ring into f. */
static int write_json(tsr_trace_t *t, FILE *f, ev_t *copy)
{
    int comma = 0;
    fprintf(f,
            "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"tessera_rank\":%d,\"clock_offset_s\":%.9f,"
            "\"recorded\":%llu,\"dropped\":%llu},\n\"traceEvents\":[",
            t->rank, t->offset, (unsigned long long)tsr_trace_recorded(t), (unsigned long long)tsr_trace_dropped(t));
    fprintf(f, "\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"rank %d\"}}", t->rank,
            t->rank);
    fprintf(f, ",\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"sort_index\":%d}}", t->rank,
            t->rank);
    comma = 1;
    int used = atomic_load(&t->claimed);
    for (int i = 0; i < used && i < t->nrings; i++) {
        ring_t *r = &t->rings[i];
        uint64_t h1 = atomic_load_explicit(&r->head, memory_order_acquire);
        uint64_t lo = h1 > t->cap ? h1 - t->cap : 0;
        for (uint64_t k = lo; k < h1; k++)
            copy[k % (t->cap + 1)] = r->ev[k % (t->cap + 1)];
        atomic_thread_fence(memory_order_acquire);
        /* Events the writer overwrote while we copied are not trusted (the
         * one in flight, index h2, fills the slot of h2 - cap - 1). */
        uint64_t h2 = atomic_load_explicit(&r->head, memory_order_acquire);
        if (h2 > t->cap && h2 - t->cap > lo)
            lo = h2 - t->cap;
        fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"%s\"}}",
                t->rank, i,
                i == 0       ? "main"
                : r->name[0] ? r->name
                             : "helper");
        if (lo < h1)
            write_ring(f, t, i, copy, lo, h1, &comma);
    }
    fputs("\n]}\n", f);
    return ferror(f) ? TSR_EIO : TSR_OK;
}

int tsr_trace_write(tsr_trace_t *t)
{
    if (!t)
        return TSR_OK;
    char *buf = NULL;
    size_t len = 0;
    int rc = TSR_OK;
    pthread_mutex_lock(&t->write_mu);
    ev_t *copy = malloc((t->cap + 1) * sizeof *copy);
    FILE *f = copy ? open_memstream(&buf, &len) : NULL;
    if (!f) {
        rc = tsr_error_set(TSR_ENOMEM, "trace: out of memory to write %s", t->path);
        goto out;
    }
    rc = write_json(t, f, copy);
    if (fclose(f) || rc) {
        rc = tsr_error_set(TSR_ENOMEM, "trace: out of memory to write %s", t->path);
        goto out;
    }
    /* Its directory is made, as the checkpoints' is. */
    const char *slash = strrchr(t->path, '/');
    char dir[sizeof t->path];
    if (slash && slash > t->path) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - t->path), t->path);
        if ((rc = tsr_mkdir_p(dir))) {
            rc = tsr_error_prefix(rc, "trace directory %s: ", dir);
            goto out;
        }
    }
    if ((rc = tsr_file_write_atomic(t->path, buf, len)))
        rc = tsr_error_prefix(rc, "trace: ");
    uint64_t lost = tsr_trace_dropped(t);
    if (!rc && lost > t->said) {
        tsr_log(TSR_LOG_WARN,
                "trace: the oldest %llu of %llu events were dropped (rings of %zu events per thread were full; "
                "raise [monitor] trace_buffer); %s holds the newest",
                (unsigned long long)lost, (unsigned long long)tsr_trace_recorded(t), t->cap, t->path);
        t->said = lost;
    }
out:
    pthread_mutex_unlock(&t->write_mu);
    free(copy);
    free(buf);
    return rc;
}
