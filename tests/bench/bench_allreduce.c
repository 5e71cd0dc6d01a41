/* Allreduce bandwidth, nccl-tests style: the tessera comm engine ("mpi"
 * back-end, one bucket and the default 25 MiB buckets) against plain
 * MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM) on the same buffer, in
 * the same run.
 *
 *   mpiexec -n 2 bench_allreduce [--min-bytes N] [--max-bytes N] [--iters-scale F]
 *
 * Sizes go from --min-bytes (4 KiB) to --max-bytes (64 MiB) by factors of
 * 4; N takes K, M, G suffixes (powers of 1024). Time is the median, over
 * timed iterations after a warm-up, of the slowest rank's time; algbw =
 * bytes / time, busbw = algbw * 2(P-1)/P (the traffic a ring allreduce
 * puts on each link), in GB/s (1e9 bytes/s). "speed" is MPI time / tessera
 * time: above 1 tessera is faster. "wrong" counts elements of a check
 * reduction (inputs rank+1) that differ from P(P+1)/2. */
#include "tessera/comm.h"
#include "tessera/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { METHODS = 3 };
static const char *const method_name[METHODS] = {"tessera 1 bucket", "tessera 25 MiB", "MPI_Allreduce"};
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_allreduce[rank %d]: %s: %s\n", rank, what, tsr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* One reduction of buf[0..n) by method m; c is the engine for tessera. */
static void reduce_once(int m, tsr_comm_t *c, float *buf, size_t n)
{
    if (m == 2) {
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

/* Median over iterations of the slowest rank's time. t holds iters slots. */
static double time_method(int m, tsr_comm_t *c, float *buf, size_t n, int warmup, int iters, double *t,
                          double *tmax)
{
    memset(buf, 0, n * sizeof *buf); /* sums of zeros stay finite */
    for (int i = 0; i < warmup; i++)
        reduce_once(m, c, buf, n);
    for (int i = 0; i < iters; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        reduce_once(m, c, buf, n);
        t[i] = MPI_Wtime() - t0;
    }
    MPI_Allreduce(t, tmax, iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    qsort(tmax, (size_t)iters, sizeof *tmax, cmp_double);
    return iters % 2 ? tmax[iters / 2] : 0.5 * (tmax[iters / 2 - 1] + tmax[iters / 2]);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    size_t min_bytes = 4u << 10, max_bytes = 64u << 20;
    double iters_scale = 1.0;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        if (strcmp(argv[i], "--min-bytes") == 0 && i + 1 < argc)
            bad = parse_bytes(argv[++i], &min_bytes);
        else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
            bad = parse_bytes(argv[++i], &max_bytes);
        else if (strcmp(argv[i], "--iters-scale") == 0 && i + 1 < argc)
            iters_scale = strtod(argv[++i], NULL);
        else
            bad = 1;
        if (bad || iters_scale <= 0 || min_bytes < sizeof(float) || max_bytes / sizeof(float) > INT_MAX) {
            if (rank == 0)
                fprintf(stderr, "usage: bench_allreduce [--min-bytes N] [--max-bytes N] [--iters-scale F]\n"
                                "  N in bytes, with K, M or G for powers of 1024 (defaults 4K and 64M)\n");
            MPI_Finalize();
            return 2;
        }
    }

    float *buf = malloc(max_bytes > 0 ? max_bytes : 1);
    double *t = malloc(1000 * sizeof *t), *tmax = malloc(1000 * sizeof *tmax);
    if (!buf || !t || !tmax) {
        fprintf(stderr, "bench_allreduce[rank %d]: out of memory for %zu bytes\n", rank, max_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
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
        printf("# algbw = bytes/time, busbw = algbw*2(P-1)/P, GB/s; speed = MPI time / tessera time (>1: tessera "
               "faster)\n");
        printf("#%11s %10s %5s", "", "", "");
        for (int m = 0; m < METHODS; m++)
            printf(" | %-25s", method_name[m]);
        printf(" | %-13s |\n", "speed vs MPI");
        printf("#%11s %10s %5s", "size(B)", "count", "iters");
        for (int m = 0; m < METHODS; m++)
            printf(" | %9s %7s %7s", "time(us)", "algbw", "busbw");
        printf(" | %6s %6s | %5s\n", "1 bkt", "25 MiB", "wrong");
    }

    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        size_t n = bytes / sizeof(float);
        /* ~64 MiB of traffic per method and size, 10..1000 iterations. */
        double want = iters_scale * (double)(64u << 20) / (double)bytes;
        int iters = want < 10 ? 10 : want > 1000 ? 1000 : (int)want;
        int warmup = iters / 10 > 2 ? iters / 10 : 2;
        tsr_comm_t *one = NULL, *bucketed = NULL;
        if (tsr_comm_create(MPI_COMM_WORLD, "mpi", buf, n, 0, &one) != TSR_OK ||
            tsr_comm_create(MPI_COMM_WORLD, "mpi", buf, n, default_bucket_bytes, &bucketed) != TSR_OK)
            die("tsr_comm_create");
        tsr_comm_t *engine[METHODS] = {one, bucketed, NULL};
        double sec[METHODS];
        long wrong = 0;
        for (int m = 0; m < METHODS; m++) {
            wrong += check(m, engine[m], buf, n);
            sec[m] = time_method(m, engine[m], buf, n, warmup, iters, t, tmax);
        }
        tsr_comm_destroy(one);
        tsr_comm_destroy(bucketed);
        if (rank == 0) {
            printf(" %11zu %10zu %5d", bytes, n, iters);
            for (int m = 0; m < METHODS; m++) {
                double algbw = (double)bytes / sec[m] / 1e9;
                double busbw = algbw * 2.0 * (size - 1) / size;
                printf(" | %9.1f %7.2f %7.2f", sec[m] * 1e6, algbw, busbw);
            }
            printf(" | %6.2f %6.2f | %5ld\n", sec[2] / sec[0], sec[2] / sec[1], wrong);
            fflush(stdout);
        }
        if (bytes > SIZE_MAX / 4)
            break;
    }
    free(buf);
    free(t);
    free(tmax);
    MPI_Finalize();
    return 0;
}
