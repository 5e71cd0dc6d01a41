/* SPDX-License-Identifier: BSD-3-Clause */
/* A reduction's progress (stats, a plugin's partials), saved beside its
 * result so a killed run continues where it stopped.
 *
 * Each rank writes its own file, .<result>.tmp.apply.r<rank>, whole (a
 * temporary, fsync, rename) at most every `every` seconds between two
 * partitions: the records of the partitions it finished and its histogram
 * counts, which cover exactly those partitions. Records are the merge's
 * inputs bit for bit and counts are integers, so a resumed result is the
 * same bytes as an uninterrupted one, on any number of ranks.
 *
 * Files carry a generation. A resumed run's rank 0 takes the newest
 * generation's files (every earlier rank's), makes their partitions its
 * own, writes them as the next generation before any rank starts and then
 * removes the older files; a kill at any point leaves one consistent
 * newest generation. Layout (native byte order, like the run's records):
 *     "TSRAPRD1" u32 fingerprint, u32 generation, u64 nparts, rec_bytes,
 *     nrec, hist_len, nnz; nrec x (u64 partition, rec_bytes);
 *     nnz x (u64 index, u64 count); u32 CRC-32 of all before it. */
#include "apply/internal.h"

#include "common/crc32.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/runtime.h"

#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "TSRAPRD1"

typedef struct head {
    char magic[8];
    uint32_t fp, gen;
    uint64_t nparts, rec_bytes, nrec, hist_len, nnz;
} head_t;

static void rank_path(const apply_saved_t *s, int rank, char *out, size_t n)
{
    snprintf(out, n, "%s%d", s->prefix, rank);
}

static uint64_t count_at(const apply_saved_t *s, size_t i) { return s->hist[i] + (s->hot ? s->hot[i] : 0); }

/* This rank's file: every partition of mine[] and the counts. */
static int save(apply_saved_t *s)
{
    head_t h = {.fp = s->fp, .gen = s->gen, .nparts = s->nparts, .rec_bytes = s->rec_bytes, .hist_len = s->hist_len};
    memcpy(h.magic, MAGIC, 8);
    for (size_t p = 0; p < s->nparts; p++)
        h.nrec += s->mine[p];
    for (size_t i = 0; i < s->hist_len; i++)
        h.nnz += count_at(s, i) != 0;
    size_t len = sizeof h + h.nrec * (8 + s->rec_bytes) + h.nnz * 16 + 4;
    char *buf = malloc(len), *w = buf;
    if (!buf)
        return tsr_error_set(TSR_ENOMEM, "apply: out of memory saving the progress (%zu bytes)", len);
    memcpy(w, &h, sizeof h);
    w += sizeof h;
    for (uint64_t p = 0; p < s->nparts; p++)
        if (s->mine[p]) {
            memcpy(w, &p, 8);
            memcpy(w + 8, (const char *)s->recs + p * s->rec_bytes, s->rec_bytes);
            w += 8 + s->rec_bytes;
        }
    for (uint64_t i = 0; i < s->hist_len; i++) {
        uint64_t c = count_at(s, i);
        if (c) {
            memcpy(w, &i, 8);
            memcpy(w + 8, &c, 8);
            w += 16;
        }
    }
    uint32_t crc = tsr_crc32(0, buf, (size_t)(w - buf));
    memcpy(w, &crc, 4);
    char path[sizeof s->prefix + 16];
    rank_path(s, s->rank, path, sizeof path);
    int rc = tsr_file_write_atomic(path, buf, len);
    free(buf);
    s->last = tsr_time_now();
    return rc ? tsr_error_prefix(rc, "apply: saving the progress: ") : TSR_OK;
}

/* The whole of a saved file (NULL if it cannot be read). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

/* One saved file into the run's arrays (rank 0); 0 if it is not of this
 * run or damaged (its partitions are then done again). */
static int absorb(apply_saved_t *s, const char *path, uint32_t gen, uint8_t *done, size_t *nres)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    if (!buf)
        return 0;
    head_t h;
    uint32_t crc;
    int ok = len >= sizeof h + 4;
    if (ok) {
        memcpy(&h, buf, sizeof h);
        memcpy(&crc, buf + len - 4, 4);
        ok = memcmp(h.magic, MAGIC, 8) == 0 && h.fp == s->fp && h.gen == gen && h.nparts == s->nparts &&
             h.rec_bytes == s->rec_bytes && h.hist_len == s->hist_len && h.nrec <= s->nparts && h.nnz <= s->hist_len &&
             len == sizeof h + h.nrec * (8 + h.rec_bytes) + h.nnz * 16 + 4 && crc == tsr_crc32(0, buf, len - 4);
    }
    const char *r = buf + sizeof h;
    for (uint64_t k = 0; ok && k < h.nrec; k++, r += 8 + h.rec_bytes) {
        uint64_t p;
        memcpy(&p, r, 8);
        if (p >= s->nparts || done[p])
            continue; /* a partition twice is a damaged file: its first copy counts */
        memcpy((char *)s->recs + p * s->rec_bytes, r + 8, s->rec_bytes);
        done[p] = s->mine[p] = 1;
        (*nres)++;
    }
    for (uint64_t k = 0; ok && k < h.nnz; k++, r += 16) {
        uint64_t i, c;
        memcpy(&i, r, 8);
        memcpy(&c, r + 8, 8);
        if (i < s->hist_len)
            s->hist[i] += c;
    }
    free(buf);
    return ok;
}

/* The generation of a file of this run, or 0 (none, not ours, damaged). */
static uint32_t gen_of(const apply_saved_t *s, const char *path)
{
    head_t h;
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0; /* a FIFO would block the open, a link is not ours */
    FILE *f = fopen(path, "rb");
    int ok = f && fread(&h, sizeof h, 1, f) == 1 && memcmp(h.magic, MAGIC, 8) == 0 && h.fp == s->fp;
    if (f)
        fclose(f);
    return ok ? h.gen : 0;
}

/* The glob pattern of every rank's file: the prefix with glob's special
 * characters escaped (a result named "r[1].json" must match only itself). */
static void rank_glob(const apply_saved_t *s, char *out, size_t n)
{
    size_t k = 0;
    for (const char *c = s->prefix; *c && k + 3 < n; c++) {
        if (strchr("*?[\\", *c))
            out[k++] = '\\';
        out[k++] = *c;
    }
    out[k++] = '*';
    out[k] = '\0';
}

/* Rank 0: loads the newest generation, then removes what it replaced. */
static int resume0(apply_saved_t *s, const char *result, uint8_t *done)
{
    char pattern[2 * sizeof s->prefix + 2];
    rank_glob(s, pattern, sizeof pattern);
    glob_t g;
    int grc = glob(pattern, GLOB_NOSORT, NULL, &g);
    size_t plen = strlen(s->prefix), nres = 0;
    uint32_t newest = 0;
    for (size_t i = 0; grc == 0 && i < g.gl_pathc; i++) {
        const char *tail = g.gl_pathv[i] + plen;
        if (tail[0] && strspn(tail, "0123456789") == strlen(tail)) {
            uint32_t v = gen_of(s, g.gl_pathv[i]);
            newest = v > newest ? v : newest;
        }
    }
    for (size_t i = 0; newest && i < g.gl_pathc; i++)
        if (gen_of(s, g.gl_pathv[i]) == newest)
            absorb(s, g.gl_pathv[i], newest, done, &nres);
    s->gen = newest + 1;
    int rc = TSR_OK;
    if (nres) {
        fprintf(stderr, "tessera: apply: resuming %s: %zu of %zu partitions were reduced before\n", result, nres,
                s->nparts);
        rc = save(s); /* the next generation holds all of them ... */
    }
    for (size_t i = 0; rc == TSR_OK && grc == 0 && i < g.gl_pathc; i++) {
        char mine[sizeof s->prefix + 16];
        rank_path(s, 0, mine, sizeof mine);
        struct stat sb;
        if ((!nres || strcmp(g.gl_pathv[i], mine) != 0) && lstat(g.gl_pathv[i], &sb) == 0 && S_ISREG(sb.st_mode))
            unlink(g.gl_pathv[i]); /* ... before the older ones go */
    }
    if (grc == 0)
        globfree(&g);
    return rc;
}

int apply_saved_resume(apply_saved_t *s, MPI_Comm comm, const char *result, const apply_saved_spec_t *spec,
                       uint8_t *done)
{
    memset(s, 0, sizeof *s);
    s->nparts = spec->nparts;
    s->rec_bytes = spec->rec_bytes;
    s->recs = spec->recs;
    s->mine = spec->mine;
    s->hist = spec->hist;
    s->hot = spec->hot;
    s->hist_len = spec->hist ? spec->hist_len : 0;
    s->every = spec->every;
    s->fp = spec->fingerprint;
    MPI_Comm_rank(comm, &s->rank);
    if (!result)
        return TSR_OK; /* no result file: nothing to keep progress beside */
    char dir[4096];
    const char *slash = strrchr(result, '/');
    size_t dlen = slash ? (size_t)(slash - result) + 1 : 0;
    if (dlen >= sizeof dir || strlen(result) + 32 >= sizeof s->prefix)
        return tsr_error_set(TSR_EINVAL, "apply: %s: path too long", result);
    memcpy(dir, result, dlen);
    dir[dlen] = 0;
    snprintf(s->prefix, sizeof s->prefix, "%s.%s.tmp.apply.r", dir, result + dlen);
    int rc = s->rank == 0 ? resume0(s, result, done) : TSR_OK;
    if ((rc = apply_agree(comm, rc)) != TSR_OK)
        return rc;
    uint32_t gen = s->gen;
    MPI_Bcast(&gen, 1, MPI_UINT32_T, 0, comm);
    MPI_Bcast(done, (int)s->nparts, MPI_UINT8_T, 0, comm);
    s->gen = gen;
    s->on = 1;
    s->last = tsr_time_now();
    return TSR_OK;
}

int apply_saved_tick(apply_saved_t *s)
{
    if (!s->on || tsr_time_now() - s->last < s->every)
        return TSR_OK;
    return save(s);
}

void apply_saved_finish(apply_saved_t *s, MPI_Comm comm)
{
    if (!s->on)
        return;
    MPI_Barrier(comm); /* nobody saves any more */
    if (s->rank == 0) {
        char pattern[2 * sizeof s->prefix + 2];
        rank_glob(s, pattern, sizeof pattern);
        glob_t g;
        if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0) {
            struct stat sb;
            for (size_t i = 0; i < g.gl_pathc; i++)
                if (lstat(g.gl_pathv[i], &sb) == 0 && S_ISREG(sb.st_mode))
                    unlink(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    s->on = 0;
}

void apply_fault_tick(MPI_Comm comm, size_t *count)
{
    const char *v = getenv("TSR_FAULT_KILL");
    int rank, want;
    unsigned long n;
    if (!v || sscanf(v, "%d:%lu", &want, &n) != 2)
        return;
    MPI_Comm_rank(comm, &rank);
    if ((want < 0 || rank == want) && ++*count >= n)
        raise(SIGKILL);
}
