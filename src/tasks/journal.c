/* SPDX-License-Identifier: BSD-3-Clause */
/* The journal of journal.h: lock, replay, and the group-commit writer. */
#include "tasks/journal.h"
#include "common/crc32.h"
#include "common/fileutil.h"
#include "common/thread.h"
#include "tessera/error.h"
#include "tessera/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { REC_MAX = 64 << 20, WAKE_BYTES = 1 << 20 };

struct journal {
    int fd;
    char path[4096];
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t wake, synced;
    tbuf_t active, spare;
    size_t rec_start;        /* offset of the open record in active */
    uint64_t appended, done; /* records appended; records on disk */
    int quit, syncreq, idle;
    double fsync_s;
    off_t size; /* bytes of whole records on disk */
    int err;
    char errmsg[4400];
    uint64_t fsyncs, bytes;
};

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int journal_scan(const char *path, const unsigned char *p, size_t n, journal_fn fn, void *ctx, size_t *good, int *torn)
{
    size_t off = 0;
    uint64_t number = 0;
    *torn = 0;
    while (off < n) {
        size_t left = n - off;
        if (left < JOURNAL_HEADER || all_zero(p + off, left)) { /* a cut header, or the zeros a crash can leave */
            *torn = 1;
            break;
        }
        uint32_t len = le32(p + off), check = le32(p + off + 4), crc = le32(p + off + 8);
        if (check != (len ^ 0xa5a5a5a5u) || len == 0 || len > REC_MAX) {
            if (off == 0)
                return tsr_error_set(TSR_EDATA,
                                     "journal %s: not a tessera tasks journal (its first record does not "
                                     "read)",
                                     path);
            return tsr_error_set(TSR_EDATA,
                                 "journal %s: record %llu at byte %zu is damaged (its length field); the "
                                 "records after it cannot be trusted: move the journal aside to start afresh",
                                 path, (unsigned long long)number + 1, off);
        }
        if (len > left - JOURNAL_HEADER) {
            *torn = 1;
            break;
        }
        if (tsr_crc32(0, p + off + JOURNAL_HEADER, len) != crc) {
            if (off + JOURNAL_HEADER + len == n) {
                *torn = 1;
                break;
            }
            return tsr_error_set(TSR_EDATA,
                                 "journal %s: record %llu at byte %zu is damaged (checksum mismatch) and "
                                 "%zu bytes follow it: refusing to replay; move the journal aside to start afresh",
                                 path, (unsigned long long)number + 1, off, n - off - JOURNAL_HEADER - len);
        }
        number++;
        tcur_t c;
        tcur_init(&c, p + off + JOURNAL_HEADER, len);
        unsigned type = tcur_u8(&c);
        if (number == 1) {
            size_t ml;
            const char *magic = tcur_str(&c, &ml);
            uint32_t version = tcur_u32(&c);
            if (type != J_HEADER || !magic || ml != strlen(JOURNAL_MAGIC) || memcmp(magic, JOURNAL_MAGIC, ml) != 0)
                return tsr_error_set(TSR_EDATA, "journal %s: not a tessera tasks journal", path);
            if (version != JOURNAL_VERSION)
                return tsr_error_set(TSR_EDATA, "journal %s: version %u; this tessera reads version %d", path, version,
                                     JOURNAL_VERSION);
        } else if (fn) {
            int rc = fn(ctx, type, &c, number);
            if (rc)
                return rc;
        }
        off += JOURNAL_HEADER + len;
    }
    *good = off;
    return TSR_OK;
}

/* The journal's bytes: mapped (no copy) or, where mapping fails, read. */
typedef struct jbytes {
    unsigned char *p;
    size_t n;
    int mapped;
} jbytes_t;

static void jbytes_free(jbytes_t *b)
{
    if (b->mapped && b->n)
        munmap(b->p, b->n);
    else
        free(b->p);
    memset(b, 0, sizeof *b);
}

static int read_all(int fd, const char *path, jbytes_t *b)
{
    struct stat st;
    memset(b, 0, sizeof *b);
    if (fstat(fd, &st) != 0)
        return tsr_error_set(TSR_EIO, "journal %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return tsr_error_set(TSR_EDATA, "journal %s: not a regular file", path);
    size_t size = (size_t)st.st_size;
    if (size == 0)
        return TSR_OK;
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m != MAP_FAILED) {
        b->p = m;
        b->n = size;
        b->mapped = 1;
        return TSR_OK;
    }
    unsigned char *p = malloc(size);
    if (!p)
        return tsr_error_set(TSR_ENOMEM, "journal %s: out of memory for %zu bytes", path, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, p + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    b->p = p;
    b->n = got;
    return TSR_OK;
}

int journal_read(const char *dir, journal_fn fn, void *ctx)
{
    char path[4096];
    if (tsr_path_join(dir, "journal", path, sizeof path))
        return tsr_error_set(TSR_EINVAL, "journal directory %s: path too long", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tsr_error_set(TSR_EDATA, "journal %s: %s", path, strerror(errno));
    jbytes_t b;
    size_t good;
    int torn;
    int rc = read_all(fd, path, &b);
    close(fd);
    if (rc == TSR_OK)
        rc = journal_scan(path, b.p, b.n, fn, ctx, &good, &torn);
    jbytes_free(&b);
    return rc;
}

static void seal(journal_t *j)
{
    tbuf_t *b = &j->active;
    uint32_t len = (uint32_t)(b->len - j->rec_start - JOURNAL_HEADER);
    uint32_t crc = tsr_crc32(0, b->p + j->rec_start + JOURNAL_HEADER, len), check = len ^ 0xa5a5a5a5u;
    unsigned char *h = b->p + j->rec_start;
    for (int i = 0; i < 4; i++) {
        h[i] = (unsigned char)(len >> (8 * i));
        h[4 + i] = (unsigned char)(check >> (8 * i));
        h[8 + i] = (unsigned char)(crc >> (8 * i));
    }
}

tbuf_t *journal_begin(journal_t *j, unsigned type)
{
    pthread_mutex_lock(&j->mu);
    j->rec_start = j->active.len;
    tbuf_put(&j->active, "\0\0\0\0\0\0\0\0\0\0\0", JOURNAL_HEADER); /* filled by end */
    tbuf_u8(&j->active, type);
    return &j->active;
}

void journal_end(journal_t *j)
{
    if (j->active.oom) {
        j->active.oom = 0;
        j->active.len = j->rec_start; /* dropped: replay treats it as never written */
        if (!j->err) {
            j->err = TSR_ENOMEM;
            snprintf(j->errmsg, sizeof j->errmsg, "journal %s: out of memory for a record", j->path);
        }
    } else {
        seal(j);
        j->appended++;
    }
    if ((j->idle && j->appended > j->done) || j->active.len >= WAKE_BYTES)
        pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
}

/* Writes b; on failure cuts the file back to its last whole record. */
static int write_buf(journal_t *j, const tbuf_t *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = pwrite(j->fd, b->p + off, b->len - off, j->size + (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (ftruncate(j->fd, j->size) == 0)
                fsync(j->fd);
            snprintf(j->errmsg, sizeof j->errmsg,
                     "journal %s: write failed: %s (the journal holds every record "
                     "before this one)",
                     j->path, strerror(e));
            return TSR_EIO;
        }
        off += (size_t)w;
    }
    if (fdatasync(j->fd) != 0) {
        int e = errno;
        if (ftruncate(j->fd, j->size) == 0)
            fsync(j->fd);
        snprintf(j->errmsg, sizeof j->errmsg, "journal %s: fsync failed: %s", j->path, strerror(e));
        return TSR_EIO;
    }
    j->size += (off_t)b->len;
    return TSR_OK;
}

static double deadline(struct timespec *ts, double s)
{
    clock_gettime(CLOCK_REALTIME, ts);
    double t = (double)ts->tv_sec + 1e-9 * (double)ts->tv_nsec + s;
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
    return t;
}

static void *writer(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-journal"); /* top -H, gdb and traces name it */
    journal_t *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (j->appended == j->done && !j->quit && !j->syncreq) {
            j->idle = 1;
            pthread_cond_wait(&j->wake, &j->mu);
            j->idle = 0;
        }
        if (j->appended == j->done && j->quit)
            break;
        /* Group commit: gather what arrives in the next fsync_ms. */
        if (!j->syncreq && !j->quit && j->active.len < WAKE_BYTES && j->fsync_s > 0) {
            struct timespec ts;
            deadline(&ts, j->fsync_s);
            pthread_cond_timedwait(&j->wake, &j->mu, &ts);
        }
        tbuf_t b = j->active;
        j->active = j->spare;
        j->active.len = 0;
        uint64_t upto = j->appended;
        j->syncreq = 0;
        int failed = j->err != 0;
        pthread_mutex_unlock(&j->mu);
        int rc = failed || !b.len ? TSR_OK : write_buf(j, &b);
        pthread_mutex_lock(&j->mu);
        if (rc && !j->err)
            j->err = rc;
        if (!failed && !rc && b.len) {
            j->fsyncs++;
            j->bytes += b.len;
        }
        b.len = 0;
        j->spare = b;
        j->done = upto;
        pthread_cond_broadcast(&j->synced);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int journal_sync(journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    uint64_t target = j->appended;
    j->syncreq = 1;
    pthread_cond_signal(&j->wake);
    while (j->done < target && !j->err)
        pthread_cond_wait(&j->synced, &j->mu);
    int err = j->err;
    pthread_mutex_unlock(&j->mu);
    return err;
}

int journal_error(journal_t *j, const char **msg)
{
    pthread_mutex_lock(&j->mu);
    int err = j->err;
    pthread_mutex_unlock(&j->mu);
    if (msg)
        *msg = j->errmsg;
    return err;
}

const char *journal_path(const journal_t *j) { return j->path; }

void journal_counters(journal_t *j, uint64_t *records, uint64_t *fsyncs, uint64_t *bytes)
{
    pthread_mutex_lock(&j->mu);
    *records = j->appended;
    *fsyncs = j->fsyncs;
    *bytes = j->bytes;
    pthread_mutex_unlock(&j->mu);
}

/* Who holds the lock, for the refusal message. */
static void owner(const char *dir, char *buf, size_t len)
{
    char path[4096];
    snprintf(buf, len, "another farm");
    if (tsr_path_join(dir, "owner", path, sizeof path))
        return;
    FILE *f = fopen(path, "re");
    char line[256];
    if (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(buf, len, "the farm of %s", line);
    }
    if (f)
        fclose(f);
}

static int lock_and_own(journal_t *j, const char *dir)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(j->fd, F_OFD_SETLK, &fl) != 0) {
        char who[300];
        if (errno != EAGAIN && errno != EACCES)
            return tsr_error_set(TSR_EIO, "journal %s: cannot lock it: %s", j->path, strerror(errno));
        owner(dir, who, sizeof who);
        return tsr_error_set(TSR_EINVAL,
                             "journal %s is in use by %s; two farms cannot share a journal (wait for "
                             "it to end, or give another --journal)",
                             j->path, who);
    }
    char path[4096], line[320], host[256] = "?";
    gethostname(host, sizeof host - 1);
    int n = snprintf(line, sizeof line, "%s pid %d\n", host, (int)getpid());
    if (tsr_path_join(dir, "owner", path, sizeof path) == 0)
        tsr_file_write_atomic(path, line, (size_t)n); /* informational: a failure changes nothing */
    return TSR_OK;
}

int journal_open(const char *dir, double fsync_ms, journal_fn fn, void *ctx, journal_t **out)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return tsr_error_set(TSR_ENOMEM, "journal: out of memory");
    j->fd = -1;
    j->fsync_s = fsync_ms > 0 ? fsync_ms * 1e-3 : 0;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->wake, NULL);
    pthread_cond_init(&j->synced, NULL);
    jbytes_t b = {0};
    size_t good = 0;
    int torn = 0, rc;
    if (tsr_path_join(dir, "journal", j->path, sizeof j->path)) {
        rc = tsr_error_set(TSR_EINVAL, "journal directory %s: path too long", dir);
        goto fail;
    }
    if ((rc = tsr_mkdir_p(dir))) {
        tsr_error_prefix(TSR_EIO, "journal directory: ");
        rc = TSR_EIO;
        goto fail;
    }
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        rc = tsr_error_set(TSR_EIO, "journal %s: cannot open it for writing: %s", j->path, strerror(errno));
        goto fail;
    }
    if ((rc = lock_and_own(j, dir)) || (rc = read_all(j->fd, j->path, &b)) ||
        (rc = journal_scan(j->path, b.p, b.n, fn, ctx, &good, &torn)))
        goto fail;
    size_t n = b.n;
    jbytes_free(&b); /* before the file may be cut */
    if (torn) {
        tsr_log(TSR_LOG_WARN,
                "journal %s: the last record is incomplete (%zu bytes from byte %zu, written as the "
                "farm died): ignored",
                j->path, n - good, good);
        if (ftruncate(j->fd, (off_t)good) != 0 || fsync(j->fd) != 0) {
            rc = tsr_error_set(TSR_EIO, "journal %s: cannot cut off the incomplete record: %s", j->path,
                               strerror(errno));
            goto fail;
        }
    }
    j->size = (off_t)good;
    if (good == 0) {
        tbuf_t *hdr = journal_begin(j, J_HEADER);
        tbuf_str(hdr, JOURNAL_MAGIC);
        tbuf_u32(hdr, JOURNAL_VERSION);
        journal_end(j);
        tbuf_t hb = j->active;
        if (write_buf(j, &hb) != TSR_OK) {
            rc = tsr_error_set(TSR_EIO, "%s", j->errmsg);
            goto fail;
        }
        j->active.len = 0;
        j->done = j->appended;
    }
    if (pthread_create(&j->thread, NULL, writer, j) != 0) {
        rc = tsr_error_set(TSR_ESYS, "journal: cannot start its writer thread");
        goto fail;
    }
    j->started = 1;
    *out = j;
    return TSR_OK;
fail:
    jbytes_free(&b);
    journal_close(j);
    return rc;
}

void journal_close(journal_t *j)
{
    if (!j)
        return;
    if (j->started) {
        tsr_thread_stop(j->thread, &j->mu, &j->wake, &j->quit);
    }
    if (j->fd >= 0)
        close(j->fd); /* releases the OFD lock */
    tbuf_free(&j->active);
    tbuf_free(&j->spare);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->synced);
    free(j);
}
