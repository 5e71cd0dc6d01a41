/* SPDX-License-Identifier: BSD-3-Clause */
/* Checkpoint benchmarks, each against a peer measured in the same run.
 *
 * (a) Write bandwidth. One float32 region of S MiB (random data) written by
 *     tsr_ckpt_write(sync = 1) on an engine with a writer thread and keep = 1,
 *     timed end to end until the call returns: HDF5 metadata image, the data
 *     written from the region, CRC-32, fsync, rename, fsync of the
 *     directory. The call returns at the commit; removing the previous
 *     checkpoint (retention), which the writer thread does after it, is timed
 *     on its own by a tsr_ckpt_wait right after, outside the figure, as dd's
 *     removal of its previous file is outside dd's. Peer:
 *     `dd if=/dev/zero of=FILE bs=1M count=S conv=fsync` into the same
 *     directory, timed around system(). Before each timed write the file
 *     system is settled (syncfs), so neither pays for journal commits or
 *     discards the other's deletions left pending. The two alternate (dd first
 *     on even repetitions, tessera first on odd ones), REPS times each, after
 *     one untimed warm-up of each; medians. Sizes 16, 64 and 256 MiB by default.
 *     Also printed, to explain the ratio: the retention time, the time an
 *     asynchronous write takes to return (the snapshot copy), the same
 *     process's memcpy, zlib crc32 and tessera's CRC-32 (tsr_crc32) rates over
 *     the buffer, the rate of touching fresh memory (malloc + memset + free
 *     of S MiB: page faults), a plain write() + fsync() of the buffer from C
 *     (the bound for writing this memory to this disk), and "HDF5 direct":
 *     snapshot copy, zlib crc32, then HDF5 writing the whole file itself
 *     (sec2 driver), fsync, rename, fsync of the directory (the pipeline
 *     tessera does not use: HDF5 must not see a failing disk).
 *
 * (b) Asynchronous checkpoint overhead on training. The 784-256-256-10 ReLU
 *     MLP, batch 128, SGD momentum 0.9, one BLAS thread, synthetic data (as
 *     bench_train), STEPS steps per run, with parameters and optimizer state
 *     checkpointed every EVERY steps the way the training loop does it
 *     (collect the previous result when the writer is idle, write when due),
 *     asynchronously, synchronously, or not at all. The three kinds of run
 *     rotate order each round, ROUNDS rounds; the figure is the median over
 *     rounds of that round's ratio to its own no-checkpoint run (and the
 *     ratio of medians is printed too).
 *
 * Usage: bench_ckpt [--dir D] [--sizes 16,64,256] [--reps 5] [--steps 3000]
 *                   [--every 100] [--rounds 5] [--only bw|train] [--json]
 * Files go to a fresh directory D/bench_ckpt.<pid> that is removed after. */
#include "common/crc32.h"
#include "common/h5lock.h"
#include "tessera/ckpt.h"
#include "tessera/error.h"
#include "bench_ckpt.h"
#include "tessera/rng.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

char workdir[4096];

/* ---- (a) write bandwidth ---- */

typedef struct {
    double mib;
    double tsr_s, dd_s, ratio;               /* medians; ratio = median of per-rep dd_s / tsr_s */
    double retain_s;                         /* the wait for retention after a timed write */
    double async_return_s;                   /* tsr_ckpt_write(sync = 0) until it returns: the snapshot */
    double memcpy_s, crc_s, tcrc_s, plain_s; /* diagnostics */
    double fault_s, direct_s;
} bw_t;

/* Lets the file system finish what earlier steps left pending (journal
 * commits, discards of deleted files) before a timed write, so that neither
 * peer pays for the other's deletions. */
static void settle(void)
{
    int fd = open(workdir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static double time_dd(const char *file, long mib)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s' bs=1M count=%ld conv=fsync status=none", file, mib);
    unlink(file);
    settle();
    double t0 = now();
    int rc = system(cmd);
    double t = now() - t0;
    if (rc != 0) {
        fprintf(stderr, "bench_ckpt: '%s' failed (status %d)\n", cmd, rc);
        exit(1);
    }
    unlink(file);
    return t;
}

/* Times tsr_ckpt_write until it returns, then (untimed there) waits for
 * the rest of the write and the retention after it; *rest gets that wait. */
static double time_tsr(tsr_ckpt_t *c, long step, int sync, double *rest)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/ckpt/ckpt-%010ld.h5", workdir, step);
    unlink(path); /* a fresh file, as dd writes one */
    settle();
    tsr_ckpt_meta_t m = {.step = step, .world_size = 1};
    double t0 = now();
    int rc = tsr_ckpt_write(c, &m, sync);
    double t1 = now();
    if (rc)
        die("checkpoint write", rc);
    if ((rc = tsr_ckpt_wait(c)))
        die("checkpoint write", rc);
    if (rest)
        *rest = now() - t1;
    return t1 - t0;
}

/* write() + fsync() + close of buf to a fresh file: what writing this
 * memory to this directory costs with no format at all. */
static double time_plain(const void *buf, size_t len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/plain.bin", workdir);
    unlink(path);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    const char *p = buf;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror(path);
            exit(1);
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        perror(path);
        exit(1);
    }
    double t = now() - t0;
    unlink(path);
    return t;
}

/* malloc + memset + free: the price of memory the process has not touched
 * (page faults), which an in-memory file image pays on every write. */
static double time_fresh(size_t len)
{
    double t0 = now();
    char *p = malloc(len);
    if (!p) {
        fprintf(stderr, "bench_ckpt: out of memory\n");
        exit(1);
    }
    memset(p, 0x5A, len); /* not 0: malloc + memset(0) may become calloc */
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
    return now() - t0;
}

static void fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0 || fsync(fd) != 0) {
        perror(path);
        exit(1);
    }
    close(fd);
}

/* Tessera's pipeline with HDF5 writing the file itself: snapshot copy,
 * crc32, H5Fcreate/H5Dwrite/H5Fclose on the temporary name (sec2 driver),
 * fsync, rename, fsync of the directory. */
static double time_direct(const float *buf, float *snap, size_t n)
{
    char tmp[8192], path[8192];
    size_t bytes = n * sizeof *buf;
    snprintf(tmp, sizeof tmp, "%s/.direct.h5.tmp", workdir);
    snprintf(path, sizeof path, "%s/direct.h5", workdir);
    unlink(path);
    double t0 = now();
    memcpy(snap, buf, bytes);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < bytes; off += 1u << 30)
        crc = crc32(crc, (const Bytef *)snap + off, (uInt)(bytes - off < (1u << 30) ? bytes - off : 1u << 30));
    tsr_h5_lock();
    hsize_t dims[1] = {n};
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = f >= 0 ? H5Dcreate2(f, "/data", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, snap) >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    if (f >= 0 && H5Fclose(f) < 0)
        ok = 0;
    tsr_h5_unlock();
    if (!ok || crc == 0x12345678) {
        fprintf(stderr, "bench_ckpt: writing %s with HDF5 failed\n", tmp);
        exit(1);
    }
    fsync_path(tmp, O_RDONLY);
    if (rename(tmp, path) != 0) {
        perror(path);
        exit(1);
    }
    fsync_path(workdir, O_RDONLY | O_DIRECTORY);
    double t = now() - t0;
    unlink(path);
    return t;
}

static void bench_bw(long mib, int reps, bw_t *out)
{
    size_t bytes = (size_t)mib << 20, n = bytes / sizeof(float);
    float *buf = malloc(bytes), *copy = malloc(bytes);
    if (!buf || !copy) {
        fprintf(stderr, "bench_ckpt: out of memory for %ld MiB\n", mib);
        exit(1);
    }
    tsr_rng_t rng;
    tsr_rng_seed(&rng, (uint64_t)mib, 7);
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(tsr_rng_uniform(&rng) * 2.0 - 1.0);

    char dir[8192], ddfile[8192];
    snprintf(dir, sizeof dir, "%s/ckpt", workdir);
    snprintf(ddfile, sizeof ddfile, "%s/dd.bin", workdir);
    tsr_ckpt_config_t cfg = {.dir = dir, .keep = 1, .async = 1};
    tsr_ckpt_t *c;
    int rc = tsr_ckpt_create(&cfg, &c);
    if (rc || (rc = tsr_ckpt_register(c, "/data", buf, TSR_CKPT_FLOAT32, 1, &n)))
        die("checkpoint set-up", rc);

    /* Warm-up: first touch of the snapshot, the directory, dd's binary. */
    time_tsr(c, 0, 1, NULL);
    time_dd(ddfile, mib);

    double t_tsr[MAX_REPS], t_dd[MAX_REPS], ratio[MAX_REPS], t_async[MAX_REPS], t_retain[MAX_REPS];
    double t_cpy[MAX_REPS], t_crc[MAX_REPS], t_tcrc[MAX_REPS], t_plain[MAX_REPS], t_fresh[MAX_REPS];
    double t_direct[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        if (r % 2 == 0) {
            t_dd[r] = time_dd(ddfile, mib);
            t_tsr[r] = time_tsr(c, r + 1, 1, &t_retain[r]);
        } else {
            t_tsr[r] = time_tsr(c, r + 1, 1, &t_retain[r]);
            t_dd[r] = time_dd(ddfile, mib);
        }
        ratio[r] = t_dd[r] / t_tsr[r];
        fprintf(stderr, "  rep %d: dd %.1f ms, tessera %.1f ms (ratio %.3f), retention %.1f ms\n", r + 1, 1e3 * t_dd[r],
                1e3 * t_tsr[r], ratio[r], 1e3 * t_retain[r]);
        t_async[r] = time_tsr(c, 1000 + r, 0, NULL);
        double t0 = now();
        memcpy(copy, buf, bytes);
        double t1 = now();
        uLong crc = crc32(0L, Z_NULL, 0);
        for (size_t off = 0; off < bytes; off += 1u << 30)
            crc = crc32(crc, (const Bytef *)buf + off, (uInt)(bytes - off < (1u << 30) ? bytes - off : 1u << 30));
        double t2 = now();
        uint32_t tcrc = tsr_crc32(0, buf, bytes);
        double t3 = now();
        t_cpy[r] = t1 - t0;
        t_crc[r] = t2 - t1 + (crc == 0x12345678 ? 1e-12 : 0.0); /* keep crc alive */
        t_tcrc[r] = t3 - t2;
        if (tcrc != (uint32_t)crc) {
            fprintf(stderr, "bench_ckpt: tsr_crc32 %08x != zlib crc32 %08lx\n", tcrc, crc);
            exit(1);
        }
        t_plain[r] = time_plain(buf, bytes);
        t_fresh[r] = time_fresh(bytes);
        t_direct[r] = time_direct(buf, copy, n);
    }
    out->mib = (double)mib;
    out->tsr_s = median(t_tsr, reps);
    out->dd_s = median(t_dd, reps);
    out->ratio = median(ratio, reps);
    out->async_return_s = median(t_async, reps);
    out->retain_s = median(t_retain, reps);
    out->memcpy_s = median(t_cpy, reps);
    out->crc_s = median(t_crc, reps);
    out->tcrc_s = median(t_tcrc, reps);
    out->plain_s = median(t_plain, reps);
    out->fault_s = median(t_fresh, reps);
    out->direct_s = median(t_direct, reps);
    tsr_ckpt_destroy(c);
    free(buf);
    free(copy);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_ckpt [--dir D] [--sizes 16,64,256] [--reps 5] [--steps 3000] [--every 100]\n"
               "                  [--rounds 5] [--only bw|train] [--json]\n"
               "  (a) checkpoint write bandwidth vs dd conv=fsync to the same directory;\n"
               "  (b) step-time overhead of async (and sync) checkpoints on MLP training.\n");
}

int main(int argc, char **argv)
{
    const char *dir = ".", *only = NULL;
    char sizes_arg[256] = "16,64,256";
    int reps = 5, rounds = 5, json = 0;
    long steps = 3000, every = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--dir"))
            dir = v;
        else if (!strcmp(a, "--sizes"))
            snprintf(sizes_arg, sizeof sizes_arg, "%s", v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--steps"))
            steps = atol(v);
        else if (!strcmp(a, "--every"))
            every = atol(v);
        else if (!strcmp(a, "--rounds"))
            rounds = atoi(v);
        else if (!strcmp(a, "--only"))
            only = v;
        else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    long mibs[MAX_SIZES];
    int nsizes = 0;
    for (char *save = NULL, *tok = strtok_r(sizes_arg, ",", &save); tok && nsizes < MAX_SIZES;
         tok = strtok_r(NULL, ",", &save))
        mibs[nsizes++] = atol(tok);
    int do_bw = !only || !strcmp(only, "bw"), do_train = !only || !strcmp(only, "train");
    if (reps < 1 || reps > MAX_REPS || rounds < 1 || rounds > MAX_REPS || steps < 1 || every < 1 ||
        (only && !do_bw && !do_train)) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < nsizes; i++)
        if (mibs[i] < 1) {
            usage(stderr);
            return 2;
        }
    snprintf(workdir, sizeof workdir, "%s/bench_ckpt.%ld", dir, (long)getpid());
    if (mkdir(workdir, 0755) != 0) {
        fprintf(stderr, "bench_ckpt: cannot create %s: %s\n", workdir, strerror(errno));
        return 1;
    }

    bw_t bw[MAX_SIZES] = {0};
    if (do_bw)
        for (int i = 0; i < nsizes; i++) {
            fprintf(stderr, "bench_ckpt: write bandwidth, %ld MiB x %d\n", mibs[i], reps);
            bench_bw(mibs[i], reps, &bw[i]);
        }
    train_res_t tr = {0};
    if (do_train) {
        fprintf(stderr, "bench_ckpt: training %ld steps, checkpoint every %ld, %d rounds\n", steps, every, rounds);
        bench_train(steps, every, rounds, &tr);
    }
    nftw(workdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

#define MBS(mib, s) ((double)(mib)*1048576.0 / (s) / 1e6)
    if (json) {
        printf("{\"bench\":\"ckpt\",\"dir\":\"%s\"", dir);
        if (do_bw) {
            printf(",\"reps\":%d,\"bandwidth\":[", reps);
            for (int i = 0; i < nsizes; i++)
                printf("%s{\"mib\":%ld,\"tessera_mb_s\":%.1f,\"dd_mb_s\":%.1f,\"ratio\":%.4f,\"retention_ms\":%.3f,"
                       "\"async_return_ms\":%.3f,\"memcpy_mb_s\":%.1f,\"crc32_mb_s\":%.1f,\"tsr_crc32_mb_s\":%.1f,"
                       "\"plain_write_mb_s\":%.1f,\"fresh_memory_mb_s\":%.1f,\"hdf5_direct_mb_s\":%.1f}",
                       i ? "," : "", mibs[i], MBS(mibs[i], bw[i].tsr_s), MBS(mibs[i], bw[i].dd_s), bw[i].ratio,
                       1e3 * bw[i].retain_s, 1e3 * bw[i].async_return_s, MBS(mibs[i], bw[i].memcpy_s),
                       MBS(mibs[i], bw[i].crc_s), MBS(mibs[i], bw[i].tcrc_s), MBS(mibs[i], bw[i].plain_s),
                       MBS(mibs[i], bw[i].fault_s), MBS(mibs[i], bw[i].direct_s));
            printf("]");
        }
        if (do_train)
            printf(",\"train\":{\"steps\":%ld,\"every\":%ld,\"rounds\":%d,\"ckpt_bytes\":%zu,\"writes_per_run\":%d,"
                   "\"step_ms_none\":%.4f,\"step_ms_async\":%.4f,\"step_ms_sync\":%.4f,"
                   "\"overhead_async_pct\":%.3f,\"overhead_sync_pct\":%.3f,"
                   "\"overhead_async_pct_of_medians\":%.3f,\"overhead_sync_pct_of_medians\":%.3f,"
                   "\"overhead_async_pct_best\":%.3f,\"overhead_sync_pct_best\":%.3f,"
                   "\"thread_cpu_overhead_async_pct\":%.3f,\"extra_cpu_ms_per_ckpt_async\":%.3f,"
                   "\"caller_ms_per_ckpt_async\":%.3f,\"caller_ms_per_ckpt_sync\":%.3f,\"writer_ms_async\":%.3f}",
                   steps, every, rounds, tr.bytes, tr.writes, 1e3 * tr.step_s[MODE_NONE], 1e3 * tr.step_s[MODE_ASYNC],
                   1e3 * tr.step_s[MODE_SYNC], 100 * tr.overhead[MODE_ASYNC], 100 * tr.overhead[MODE_SYNC],
                   100 * tr.overhead_of_medians[MODE_ASYNC], 100 * tr.overhead_of_medians[MODE_SYNC],
                   100 * tr.overhead_best[MODE_ASYNC], 100 * tr.overhead_best[MODE_SYNC],
                   100 * tr.thread_cpu_overhead[MODE_ASYNC], 1e3 * tr.extra_cpu_per_ckpt_s[MODE_ASYNC],
                   1e3 * tr.caller_s[MODE_ASYNC], 1e3 * tr.caller_s[MODE_SYNC], 1e3 * tr.writer_s[MODE_ASYNC]);
        printf("}\n");
        return 0;
    }
    if (do_bw) {
        printf("(a) checkpoint write bandwidth in %s, median of %d alternating runs each\n", dir, reps);
        printf("    %6s %13s %13s %8s\n", "MiB", "tessera MB/s", "dd MB/s", "ratio");
        for (int i = 0; i < nsizes; i++)
            printf("    %6ld %13.1f %13.1f %8.3f\n", mibs[i], MBS(mibs[i], bw[i].tsr_s), MBS(mibs[i], bw[i].dd_s),
                   bw[i].ratio);
        printf("    ratio = median over repetitions of dd time / tessera time (target >= 0.80); tessera:\n"
               "    tsr_ckpt_write(sync=1) until it returns (at the commit); dd: dd bs=1M conv=fsync, process\n"
               "    start included. Neither includes removing its previous file.\n");
        printf("    diagnostics (same process, same buffer, medians):\n");
        printf("    %6s %9s %9s %9s %9s %9s %10s %11s %9s\n", "MiB", "retain", "async", "memcpy", "zlib crc", "tsr crc",
               "fresh-mem", "write+fsync", "HDF5");
        printf("    %6s %9s %9s %9s %9s %9s %10s %11s %9s\n", "", "ms", "ret ms", "MB/s", "MB/s", "MB/s", "MB/s",
               "MB/s", "direct");
        for (int i = 0; i < nsizes; i++)
            printf("    %6ld %9.2f %9.2f %9.0f %9.0f %9.0f %10.0f %11.1f %9.1f\n", mibs[i], 1e3 * bw[i].retain_s,
                   1e3 * bw[i].async_return_s, MBS(mibs[i], bw[i].memcpy_s), MBS(mibs[i], bw[i].crc_s),
                   MBS(mibs[i], bw[i].tcrc_s), MBS(mibs[i], bw[i].fault_s), MBS(mibs[i], bw[i].plain_s),
                   MBS(mibs[i], bw[i].direct_s));
        printf("    retain: removing the previous checkpoint, on the writer thread after the commit (waited for\n"
               "    outside the timing); async ret: tsr_ckpt_write(sync=0) until it returns (the snapshot copy);\n"
               "    zlib crc / tsr crc: zlib's crc32 and tessera's (the same values; %s here);\n"
               "    fresh-mem: malloc + memset + free (page faults); write+fsync: plain write() of the buffer;\n"
               "    HDF5 direct: copy, zlib crc32, HDF5 writing the file itself (sec2), fsync, rename, fsync of\n"
               "    the directory.\n",
               tsr_crc32_accelerated() ? "PCLMULQDQ folding" : "zlib's code");
    }
    if (do_train) {
        printf("(b) checkpoints during training: MLP 784-256-256-10 relu, batch 128, SGD momentum, 1 BLAS thread\n");
        printf("    %ld steps per run, params + optimizer state (%.2f MB) every %ld steps (%d per run), %d rounds\n",
               steps, (double)tr.bytes / 1e6, every, tr.writes, rounds);
        printf("    %-6s %9s %10s %10s %10s | %10s %10s | %9s %10s\n", "ckpt", "ms/step", "overhead", "(medians)",
               "(best)", "thread CPU", "overhead", "caller ms", "extra CPU");
        printf("    %-6s %9s %10s %10s %10s | %10s %10s | %9s %10s\n", "", "median", "", "", "", "ms/step", "",
               "per ckpt", "ms/ckpt");
        for (int m = 0; m < NMODES; m++)
            printf("    %-6s %9.4f %9.2f%% %9.2f%% %9.2f%% | %10.4f %9.2f%% | %9.3f %10.3f\n", mode_name[m],
                   1e3 * tr.step_s[m], 100 * tr.overhead[m], 100 * tr.overhead_of_medians[m], 100 * tr.overhead_best[m],
                   1e3 * tr.thread_cpu_s[m], 100 * tr.thread_cpu_overhead[m], 1e3 * tr.caller_s[m],
                   1e3 * tr.extra_cpu_per_ckpt_s[m]);
        printf("    overhead: median over rounds of (run / same round's no-checkpoint run - 1), async target <= 2%%;\n"
               "    (medians): ratio of the median step times; (best): fastest run against fastest run.\n"
               "    thread CPU: the training thread's own CPU time per step (what it costs the training thread,\n"
               "    whatever else runs on the machine); caller ms: time inside tsr_ckpt_* calls on the training\n"
               "    thread per checkpoint; extra CPU: process CPU time beyond the no-checkpoint run per\n"
               "    checkpoint (the writer thread's work: it needs a spare core to be free). Writer thread:\n"
               "    %.3f ms wall for the last async checkpoint.\n",
               1e3 * tr.writer_s[MODE_ASYNC]);
    }
    return 0;
}
