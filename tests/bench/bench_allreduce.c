/* Allreduce bandwidth, nccl-tests style: the tessera comm engine against
 * plain MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM) on the same buffer,
 * and against single-core memcpy of the same number of bytes, all in the
 * same run:
 *   "mpi 1 bkt", "mpi 25 MiB": the "mpi" back-end, one bucket / 25 MiB ones;
 *   "shm 25 MiB": the "shm" back-end (shared-memory window, counter sync);
 *   "shm barrier": the same with TSR_COMM_SHM_SYNC=barrier (chunks in lock
 *       step between MPI_Barrier calls on the node communicator);
 *   "MPI_Allreduce";
 *   "memcpy": rank 0 alone copies the buffer into another one (the other
 *       ranks wait in MPI_Barrier), bandwidth = bytes / time; one copy is
 *       timed right after each timed shm reduction, so each shm variant's
 *       ratio to memcpy pairs samples taken under the same machine load (the
 *       column shows the copies paired with "shm 25 MiB").
 *
 *   mpiexec -n 2 bench_allreduce [--min-bytes N] [--max-bytes N] [--iters-scale F] [--gpu]
 *
 * --gpu (one CUDA device per rank, local rank = device): the "nccl"
 * back-end on device buffers, one bucket and 25 MiB buckets, each call
 * waited for (the engine's wait syncs its stream), beside MPI_Allreduce of
 * the same bytes in host memory and, on 2+ ranks, the device buffer staged
 * through host memory by "shm" (or "mpi" when no node holds two ranks),
 * which is how a build without NCCL sums GPU gradients; the same
 * algbw/busbw columns.
 *
 * Sizes go from --min-bytes (4 KiB) to --max-bytes (64 MiB; 256M works) by
 * factors of 4; N takes K, M, G suffixes (powers of 1024). Time is the
 * median, over timed iterations after a warm-up, of the slowest rank's time;
 * algbw = bytes / time, busbw = algbw * 2(P-1)/P (the traffic a ring
 * allreduce puts on each link), in GB/s (1e9 bytes/s); at 2 ranks busbw =
 * algbw. The last columns are shm's busbw over MPI_Allreduce's and over the
 * memcpy bandwidth. "wrong" counts elements of a check reduction (inputs
 * rank+1) that differ from P(P+1)/2, over all tessera methods and
 * MPI_Allreduce. */
#include "tessera/comm.h"
#include "tessera/error.h"
#include "bench_util.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { M_MPI1, M_MPI25, M_SHM, M_SHMBAR, M_ALLREDUCE, METHODS };
static const char *const method_name[METHODS] = {"mpi 1 bkt", "mpi 25 MiB", "shm 25 MiB", "shm barrier",
                                                  "MPI_Allreduce"};
static const size_t default_bucket_bytes = 25u << 20;

static int rank, size;

static int parse_bytes(const char *s, size_t *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return -1;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i')
        end++;
    if (*end == 'B')
        end++;
    if (*end)
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_allreduce[rank %d]: %s: %s\n", rank, what, tsr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* One reduction of buf[0..n) by method m; c is the engine for tessera. */
static void reduce_once(int m, tsr_comm_t *c, float *buf, size_t n)
{
    if (m == M_ALLREDUCE) {
        if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            die("MPI_Allreduce");
    } else if (tsr_comm_allreduce(c) != TSR_OK) {
        die("tsr_comm_allreduce");
    }
}

/* Elements that differ from the exact sum of rank+1 over all ranks. */
static long check(int m, tsr_comm_t *c, float *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(rank + 1);
    reduce_once(m, c, buf, n);
    float want = (float)size * (float)(size + 1) / 2.0f;
    long wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += buf[i] != want;
    long all = 0;
    MPI_Allreduce(&wrong, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return all;
}

/* Median over iterations of the slowest rank's time. t and tmax hold iters
 * slots. With copy (rank 0) and tcopy non-NULL, every timed reduction is
 * followed by one timed memcpy of the buffer on rank 0 alone (the others
 * wait in the next MPI_Barrier), so the two are measured under the same
 * load; *tcopy gets the median memcpy time, on every rank. */
static double time_method(int m, tsr_comm_t *c, float *buf, size_t n, int warmup, int iters, double *t,
                          double *tmax, float *copy, double *tcopy)
{
    size_t bytes = n * sizeof *buf;
    memset(buf, 0, bytes); /* sums of zeros stay finite */
    for (int i = 0; i < warmup; i++)
        reduce_once(m, c, buf, n);
    if (tcopy && rank == 0)
        memcpy(copy, buf, bytes); /* fault the destination in */
    for (int i = 0; i < iters; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        reduce_once(m, c, buf, n);
        t[i] = MPI_Wtime() - t0;
        if (tcopy && rank == 0) {
            t0 = MPI_Wtime();
            memcpy(copy, buf, bytes);
            tmax[i] = MPI_Wtime() - t0;
        }
    }
    if (tcopy) {
        *tcopy = rank == 0 ? bench_median(tmax, iters) : 0.0;
        if (rank == 0 && n > 0 && ((volatile const float *)copy)[n / 2] != buf[n / 2])
            fprintf(stderr, "bench_allreduce: memcpy check failed\n");
        MPI_Bcast(tcopy, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    }
    MPI_Allreduce(t, tmax, iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return bench_median(tmax, iters);
}

/* --gpu: nccl-tests-style rows for the nccl back-end, and on 2+ ranks for
 * the host back-end that GPU buffers are staged through without NCCL (see
 * the header). */
static void run_gpu(size_t min_bytes, size_t max_bytes, double iters_scale, float *host, double *t, double *tmax)
{
    MPI_Comm node;
    int lrank = 0, lsize = 1, most = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &lrank);
    MPI_Comm_size(node, &lsize);
    MPI_Comm_free(&node);
    MPI_Allreduce(&lsize, &most, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    /* What "auto" would stage through in a build without NCCL. */
    const char *staged = most > 1 ? "shm" : "mpi";
    int nm = size > 1 ? 4 : 3; /* one rank: staging has nothing to do */
    tsr_gpu_t *g = NULL;
    float *d = NULL;
    if (tsr_gpu_count() <= lrank || tsr_gpu_create(lrank, &g) || tsr_gpu_alloc(g, max_bytes, (void **)&d)) {
        if (rank == 0)
            printf("SKIP: --gpu needs one CUDA device per rank (%d here): %s\n", tsr_gpu_count(), tsr_last_error());
        tsr_gpu_destroy(g);
        return;
    }
    if (rank == 0) {
        printf("# bench_allreduce --gpu: %d ranks, %s; nccl engine on device memory vs MPI_Allreduce on host memory"
               "%s%s%s\n", size, tsr_gpu_name(g), nm > 3 ? "; then device memory staged through host memory by " : "",
               nm > 3 ? staged : "", nm > 3 ? " (the path without NCCL)" : "");
        printf("#%10s %5s | %-17s | %-17s | %-17s", "", "", "nccl 1 bkt", "nccl 25 MiB", "MPI_Allreduce host");
        if (nm > 3)
            printf(" | staged %-10s", staged);
        printf("\n#%10s %5s", "size(B)", "iters");
        for (int m = 0; m < nm; m++)
            printf(" | %9s %7s", "time(us)", "busbw");
        printf("\n");
    }
    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        size_t n = bytes / sizeof(float);
        double want = iters_scale * (double)(64u << 20) / (double)bytes;
        int iters = want < 10 ? 10 : want > 1000 ? 1000 : (int)want;
        double sec[4];
        for (int m = 0; m < nm; m++) {
            tsr_comm_t *c = NULL;
            const char *be = m < 2 ? "nccl" : staged;
            if (m != 2 && tsr_comm_create_gpu(MPI_COMM_WORLD, be, g, d, n, m == 1 ? default_bucket_bytes : 0, &c))
                die("tsr_comm_create_gpu");
            for (int i = -3; i < iters; i++) {
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                if (m != 2 ? tsr_comm_allreduce(c) != TSR_OK
                           : MPI_Allreduce(MPI_IN_PLACE, host, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
                    die("allreduce");
                if (i >= 0)
                    t[i] = MPI_Wtime() - t0;
            }
            MPI_Allreduce(t, tmax, iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            sec[m] = bench_median(tmax, iters);
            tsr_comm_destroy(c);
        }
        if (rank == 0) {
            printf(" %10zu %5d", bytes, iters);
            for (int m = 0; m < nm; m++)
                printf(" | %9.1f %7.2f", sec[m] * 1e6, (double)bytes / sec[m] / 1e9 * 2.0 * (size - 1) / size);
            printf("\n");
            fflush(stdout);
        }
        if (bytes > SIZE_MAX / 4)
            break;
    }
    tsr_gpu_free(g, d);
    tsr_gpu_destroy(g);
}

static tsr_comm_t *make_engine(const char *backend, float *buf, size_t n, size_t bucket_bytes, int barrier)
{
    tsr_comm_t *c = NULL;
    if (barrier)
        setenv("TSR_COMM_SHM_SYNC", "barrier", 1);
    int rc = tsr_comm_create(MPI_COMM_WORLD, backend, buf, n, bucket_bytes, &c);
    if (barrier)
        unsetenv("TSR_COMM_SHM_SYNC");
    if (rc != TSR_OK)
        die("tsr_comm_create");
    return c;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    size_t min_bytes = 4u << 10, max_bytes = 64u << 20;
    double iters_scale = 1.0;
    int gpu = 0;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        if (strcmp(argv[i], "--gpu") == 0)
            gpu = 1;
        else if (strcmp(argv[i], "--min-bytes") == 0 && i + 1 < argc)
            bad = parse_bytes(argv[++i], &min_bytes);
        else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
            bad = parse_bytes(argv[++i], &max_bytes);
        else if (strcmp(argv[i], "--iters-scale") == 0 && i + 1 < argc)
            iters_scale = strtod(argv[++i], NULL);
        else
            bad = 1;
        if (bad || iters_scale <= 0 || min_bytes < sizeof(float) || max_bytes / sizeof(float) > INT_MAX) {
            if (rank == 0)
                fprintf(stderr, "usage: bench_allreduce [--min-bytes N] [--max-bytes N] [--iters-scale F] [--gpu]\n"
                                "  N in bytes, with K, M or G for powers of 1024 (defaults 4K and 64M)\n");
            MPI_Finalize();
            return 2;
        }
    }

    float *buf = malloc(max_bytes > 0 ? max_bytes : 1);
    float *copy = rank == 0 ? malloc(max_bytes > 0 ? max_bytes : 1) : NULL;
    double *t = malloc(1000 * sizeof *t), *tmax = malloc(1000 * sizeof *tmax);
    if (!buf || (rank == 0 && !copy) || !t || !tmax) {
        fprintf(stderr, "bench_allreduce[rank %d]: out of memory for %zu bytes\n", rank, max_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    if (gpu) {
        run_gpu(min_bytes, max_bytes, iters_scale, buf, t, tmax);
        free(buf), free(copy), free(t), free(tmax);
        MPI_Finalize();
        return 0;
    }
    if (rank == 0) {
        char host[256] = "?", lib[MPI_MAX_LIBRARY_VERSION_STRING] = "?";
        int len = 0;
        gethostname(host, sizeof host - 1);
        MPI_Get_library_version(lib, &len);
        char *nl = strchr(lib, '\n');
        if (nl)
            *nl = '\0';
        char *comma = strchr(lib, ',');
        if (comma)
            *comma = '\0';
        printf("# bench_allreduce: %d ranks, host %s, %s\n", size, host, lib);
        printf("# float32 sum in place; time: median of the slowest rank over timed iterations after warm-up\n");
        printf("# algbw = bytes/time, busbw = algbw*2(P-1)/P, GB/s; memcpy: rank 0 alone, bytes/time, GB/s, timed "
               "between the shm iterations\n");
        printf("# shm/MPI = shm busbw / MPI_Allreduce busbw; shm/cpy = shm busbw / memcpy bandwidth\n");
        printf("#%10s %9s %5s", "", "", "");
        for (int m = 0; m < METHODS; m++)
            printf(" | %-17s", method_name[m]);
        printf(" | %-17s | %-13s | %-13s |\n", "memcpy", "shm 25 MiB", "shm barrier");
        printf("#%10s %9s %5s", "size(B)", "count", "iters");
        for (int m = 0; m < METHODS; m++)
            printf(" | %9s %7s", "time(us)", "busbw");
        printf(" | %9s %7s | %6s %6s | %6s %6s | %5s\n", "time(us)", "GB/s", "shm/MPI", "/cpy", "shm/MPI", "/cpy",
               "wrong");
    }

    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        size_t n = bytes / sizeof(float);
        /* ~64 MiB of traffic per method and size, 10..1000 iterations. */
        double want = iters_scale * (double)(64u << 20) / (double)bytes;
        int iters = want < 10 ? 10 : want > 1000 ? 1000 : (int)want;
        int warmup = iters / 10 > 2 ? iters / 10 : 2;
        tsr_comm_t *engine[METHODS] = {
            make_engine("mpi", buf, n, 0, 0),
            make_engine("mpi", buf, n, default_bucket_bytes, 0),
            make_engine("shm", buf, n, default_bucket_bytes, 0),
            make_engine("shm", buf, n, default_bucket_bytes, 1),
            NULL,
        };
        double sec[METHODS], busbw[METHODS], cpy[METHODS] = {0};
        long wrong = 0;
        for (int m = 0; m < METHODS; m++) {
            wrong += check(m, engine[m], buf, n);
            int paired = m == M_SHM || m == M_SHMBAR;
            sec[m] = time_method(m, engine[m], buf, n, warmup, iters, t, tmax, copy, paired ? &cpy[m] : NULL);
            busbw[m] = (double)bytes / sec[m] / 1e9 * 2.0 * (size - 1) / size;
        }
        double cpybw[METHODS];
        for (int m = 0; m < METHODS; m++)
            cpybw[m] = cpy[m] > 0 ? (double)bytes / cpy[m] / 1e9 : 0.0;
        for (int m = 0; m < METHODS; m++)
            tsr_comm_destroy(engine[m]);
        if (rank == 0) {
            printf(" %10zu %9zu %5d", bytes, n, iters);
            for (int m = 0; m < METHODS; m++)
                printf(" | %9.1f %7.2f", sec[m] * 1e6, busbw[m]);
            printf(" | %9.1f %7.2f", cpy[M_SHM] * 1e6, cpybw[M_SHM]);
            if (size > 1)
                printf(" | %6.2f %6.2f | %6.2f %6.2f", busbw[M_SHM] / busbw[M_ALLREDUCE],
                       busbw[M_SHM] / cpybw[M_SHM], busbw[M_SHMBAR] / busbw[M_ALLREDUCE],
                       busbw[M_SHMBAR] / cpybw[M_SHMBAR]);
            else
                printf(" | %6s %6s | %6s %6s", "-", "-", "-", "-");
            printf(" | %5ld\n", wrong);
            fflush(stdout);
        }
        if (bytes > SIZE_MAX / 4)
            break;
    }
    free(buf);
    free(copy);
    free(t);
    free(tmax);
    MPI_Finalize();
    return 0;
}
