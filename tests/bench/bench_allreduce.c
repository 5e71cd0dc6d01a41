/* SPDX-License-Identifier: BSD-3-Clause */
/* Allreduce bandwidth, nccl-tests style: the tessera comm engine against
 * plain MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM) on the same buffer,
 * and against single-core memcpy of the same number of bytes, all in the
 * same run. Methods (--methods, comma-separated; the default list below):
 *   mpi:ALG:BUCKET    the "mpi" back-end with allreduce algorithm ALG (auto,
 *                     ring, rabenseifner, tree, alltoall, hier) and BUCKET-byte
 *                     buckets (0: one bucket; K, M, G suffixes);
 *   shm:ALG:BUCKET    the "shm" back-end (ALG: between node leaders, which
 *                     on one machine means TSR_COMM_FAKE_NODES is set);
 *   shmbar:ALG:BUCKET the same with TSR_COMM_SHM_SYNC=barrier (chunks in
 *                     lock step between MPI_Barrier calls);
 *   allreduce         MPI_Allreduce with MPI_SUM;
 *   allreduce-op      MPI_Allreduce with a user-defined commutative float sum
 *                     (in the SimGrid build it charges the simulated host the
 *                     same modelled time per byte as tessera's sums, which
 *                     SMPI's own MPI_SUM does not).
 * Default: mpi:auto:0, mpi:auto:25M, mpi:alltoall:25M (the back-end's
 * schedule before the p2p algorithms, kept to measure against),
 * shm:auto:25M, shmbar:auto:25M, allreduce; the ratio columns are
 * "mpi:auto:25M over mpi:alltoall:25M" (new/old), shm over MPI_Allreduce
 * and shm over memcpy.
 *   memcpy: rank 0 alone copies the buffer into another one (the other
 *       ranks wait in MPI_Barrier), bandwidth = bytes / time; one copy is
 *       timed right after each timed iteration of the first shm method, so
 *       its ratio to memcpy pairs samples taken under the same machine load.
 * Methods are timed interleaved (iteration i of each, then i+1), so the
 * ratios between them compare samples taken under the same load.
 *
 *   mpiexec -n 2 bench_allreduce [--min-bytes N] [--max-bytes N] [--iters-scale F] [--gpu]
 *                                [--methods LIST] [--iters N] [--warmup N] [--no-check] [--tsv]
 *                                [--stat median|min] [--topology SPEC]
 *
 * --topology: the engines' runtime.topology (auto, none, node or a SLURM
 * topology.conf), which hier needs and auto consults.
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
 * algbw. --stat min takes the fastest iteration instead of the median (on
 * a loaded machine the best case is the steadier figure of what the code
 * can do). --iters/--warmup fix the iteration counts (SimGrid's simulated
 * time needs one). "wrong" counts elements of a check reduction (inputs
 * rank+1) that differ from P(P+1)/2, over all methods; --no-check skips it
 * (under SMPI's shared malloc every rank's buffer is the same memory).
 * --tsv prints one tab-separated line per size and method instead of the
 * table: size, method, ranks, iterations, seconds, algbw, busbw, wrong and
 * the algorithm the engine's first bucket ran ("-" for MPI_Allreduce). */
#include "tessera/comm.h"
#include "tessera/error.h"
#include "bench_util.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef TSR_SIMGRID
#include <smpi/smpi.h>
#endif

enum { K_ENGINE, K_ALLREDUCE, K_ALLREDUCE_OP };
enum { MAX_METHODS = 16 };

typedef struct method {
    char spec[48];
    int kind;
    char backend[8];
    char alg[16];
    size_t bucket;
    int barrier;
} method_t;

static const char *const default_methods =
    "mpi:auto:0,mpi:auto:25M,mpi:alltoall:25M,shm:auto:25M,shmbar:auto:25M,allreduce";
static const size_t default_bucket_bytes = 25u << 20;

static int rank, size;
/* SimGrid, TSR_SIM_SKIP_SUMS=1 with --no-check: sums are charged, never
 * done, and buffers are not cleared (no value is read; see backend_mpi.c). */
static int sums_charged_only;
#ifdef TSR_SIMGRID
static double op_seconds_per_byte; /* allreduce-op: the modelled sum time */
#endif

static int parse_bytes(const char *s, size_t *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return -1;
    double mult = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mult = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mult = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        end++;
        break;
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

static int parse_method(const char *tok, method_t *m)
{
    memset(m, 0, sizeof *m);
    if (strlen(tok) >= sizeof m->spec)
        return -1;
    strcpy(m->spec, tok);
    if (strcmp(tok, "allreduce") == 0 || strcmp(tok, "allreduce-op") == 0) {
        m->kind = tok[9] ? K_ALLREDUCE_OP : K_ALLREDUCE;
        return 0;
    }
    char be[8] = "", alg[16] = "", bucket[24] = "";
    if (sscanf(tok, "%7[a-z]:%15[a-z]:%23s", be, alg, bucket) != 3)
        return -1;
    m->kind = K_ENGINE;
    m->barrier = strcmp(be, "shmbar") == 0;
    if (strcmp(be, "mpi") != 0 && strcmp(be, "shm") != 0 && !m->barrier)
        return -1;
    strcpy(m->backend, m->barrier ? "shm" : be);
    strcpy(m->alg, alg);
    if (strcmp(bucket, "0") == 0)
        m->bucket = 0;
    else if (parse_bytes(bucket, &m->bucket))
        return -1;
    return 0;
}

/* The float sum of allreduce-op; under SimGrid it charges the modelled time. */
static void sum_op(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    (void)dt;
    const float *a = in;
    float *b = inout;
    if (!sums_charged_only)
        for (int i = 0; i < *len; i++)
            b[i] = a[i] + b[i];
#ifdef TSR_SIMGRID
    if (op_seconds_per_byte > 0)
        smpi_execute((double)*len * sizeof(float) * op_seconds_per_byte);
#endif
}

static MPI_Op user_sum = MPI_OP_NULL;

/* One reduction of buf[0..n) by method m; c is the engine for tessera. */
static void reduce_once(const method_t *m, tsr_comm_t *c, float *buf, size_t n)
{
    if (m->kind != K_ENGINE) {
        if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, m->kind == K_ALLREDUCE ? MPI_SUM : user_sum,
                          MPI_COMM_WORLD) != MPI_SUCCESS)
            die("MPI_Allreduce");
    } else if (tsr_comm_allreduce(c) != TSR_OK) {
        die("tsr_comm_allreduce");
    }
}

/* Elements that differ from the exact sum of rank+1 over all ranks. */
static long check(const method_t *m, tsr_comm_t *c, float *buf, size_t n)
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

/* Times every method at one size, interleaved: iteration i of every method
 * in list order, then iteration i+1, so load drifts on a shared machine
 * hit all methods alike. sec[m] = median over iterations of the slowest
 * rank's time. t and tmax hold nm * iters slots. With copy (rank 0) and
 * paired >= 0, each timed iteration of method `paired` is followed by one
 * timed memcpy of the buffer on rank 0 alone (the others wait in the next
 * MPI_Barrier); *tcopy gets the median memcpy time, on every rank. */
static int use_min; /* --stat min */

static double stat_of(double *v, int n)
{
    if (!use_min)
        return bench_median(v, n);
    double lo = v[0];
    for (int i = 1; i < n; i++)
        lo = v[i] < lo ? v[i] : lo;
    return lo;
}

static void time_all(const method_t *ms, int nm, tsr_comm_t **c, float *buf, size_t n, int warmup, int iters, double *t,
                     double *tmax, float *copy, int paired, double *sec, double *tcopy)
{
    size_t bytes = n * sizeof *buf;
    if (!sums_charged_only)
        memset(buf, 0, bytes); /* sums of zeros stay finite */
    for (int i = 0; i < warmup; i++)
        for (int m = 0; m < nm; m++)
            reduce_once(&ms[m], c[m], buf, n);
    if (paired >= 0 && rank == 0)
        memcpy(copy, buf, bytes); /* fault the destination in */
    double cpy[1000];
    for (int i = 0; i < iters; i++) {
        for (int m = 0; m < nm; m++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            reduce_once(&ms[m], c[m], buf, n);
            t[(size_t)m * iters + i] = MPI_Wtime() - t0;
            if (m == paired && rank == 0) {
                t0 = MPI_Wtime();
                memcpy(copy, buf, bytes);
                cpy[i] = MPI_Wtime() - t0;
            }
        }
    }
    if (paired >= 0) {
        *tcopy = rank == 0 ? stat_of(cpy, iters) : 0.0;
        if (rank == 0 && n > 0 && ((volatile const float *)copy)[n / 2] != buf[n / 2])
            fprintf(stderr, "bench_allreduce: memcpy check failed\n");
        MPI_Bcast(tcopy, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    }
    MPI_Allreduce(t, tmax, nm * iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int m = 0; m < nm; m++)
        sec[m] = stat_of(tmax + (size_t)m * iters, iters);
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
               "%s%s%s\n",
               size, tsr_gpu_name(g), nm > 3 ? "; then device memory staged through host memory by " : "",
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
                if (m != 2
                        ? tsr_comm_allreduce(c) != TSR_OK
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

static const char *topology; /* --topology */

static tsr_comm_t *make_engine(const method_t *m, float *buf, size_t n)
{
    if (m->kind != K_ENGINE)
        return NULL;
    tsr_comm_t *c = NULL;
    if (m->barrier)
        setenv("TSR_COMM_SHM_SYNC", "barrier", 1);
    tsr_comm_options_t o = {.backend = m->backend,
                            .algorithm = m->alg,
                            .bucket_bytes = m->bucket,
                            .topology = topology};
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    if (m->barrier)
        unsetenv("TSR_COMM_SHM_SYNC");
    if (rc != TSR_OK)
        die(m->spec);
    return c;
}

static int find(const method_t *ms, int nm, const char *spec)
{
    for (int i = 0; i < nm; i++)
        if (strcmp(ms[i].spec, spec) == 0)
            return i;
    return -1;
}

static void print_header(const method_t *ms, int nm, int shm, int peer, int newm, int oldm)
{
    char host[256] = "?", lib[MPI_MAX_LIBRARY_VERSION_STRING] = "?";
    int len = 0;
    gethostname(host, sizeof host - 1);
    MPI_Get_library_version(lib, &len);
    char *cut = strpbrk(lib, "\n,");
    if (cut)
        *cut = '\0';
    printf("# bench_allreduce: %d ranks, host %s, %s\n", size, host, lib);
    printf("# float32 sum in place; time: median of the slowest rank over timed iterations after warm-up\n");
    printf("# algbw = bytes/time, busbw = algbw*2(P-1)/P, GB/s; memcpy: rank 0 alone, bytes/time, GB/s, timed "
           "between the iterations of %s\n",
           shm >= 0 ? ms[shm].spec : "(no shm method: not timed)");
    if (newm >= 0 && oldm >= 0)
        printf("# new/old = %s busbw / %s busbw\n", ms[newm].spec, ms[oldm].spec);
    if (shm >= 0 && peer >= 0)
        printf("# shm/MPI = %s busbw / %s busbw; shm/cpy = the same over memcpy bandwidth\n", ms[shm].spec,
               ms[peer].spec);
    printf("#%10s %9s %5s", "", "", "");
    for (int m = 0; m < nm; m++)
        printf(" | %-17s", ms[m].spec);
    printf(" | %-17s | %7s | %-13s | %5s\n", "memcpy", "new/old", "shm", "");
    printf("#%10s %9s %5s", "size(B)", "count", "iters");
    for (int m = 0; m < nm; m++)
        printf(" | %9s %7s", "time(us)", "busbw");
    printf(" | %9s %7s | %7s | %6s %6s | %5s\n", "time(us)", "GB/s", "", "/MPI", "/cpy", "wrong");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    size_t min_bytes = 4u << 10, max_bytes = 64u << 20;
    double iters_scale = 1.0;
    int gpu = 0, fixed_iters = 0, fixed_warmup = -1, no_check = 0, tsv = 0;
    const char *methods = default_methods;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        if (strcmp(argv[i], "--gpu") == 0)
            gpu = 1;
        else if (strcmp(argv[i], "--no-check") == 0)
            no_check = 1;
        else if (strcmp(argv[i], "--tsv") == 0)
            tsv = 1;
        else if (strcmp(argv[i], "--stat") == 0 && i + 1 < argc)
            bad = !(use_min = strcmp(argv[++i], "min") == 0) && strcmp(argv[i], "median") != 0;
        else if (strcmp(argv[i], "--min-bytes") == 0 && i + 1 < argc)
            bad = parse_bytes(argv[++i], &min_bytes);
        else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
            bad = parse_bytes(argv[++i], &max_bytes);
        else if (strcmp(argv[i], "--iters-scale") == 0 && i + 1 < argc)
            iters_scale = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            bad = (fixed_iters = atoi(argv[++i])) < 1 || fixed_iters > 1000;
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            bad = (fixed_warmup = atoi(argv[++i])) < 0;
        else if (strcmp(argv[i], "--methods") == 0 && i + 1 < argc)
            methods = argv[++i];
        else if (strcmp(argv[i], "--topology") == 0 && i + 1 < argc)
            topology = argv[++i];
        else
            bad = 1;
        if (bad || iters_scale <= 0 || min_bytes < sizeof(float) || max_bytes / sizeof(float) > INT_MAX) {
            if (rank == 0)
                fprintf(stderr,
                        "usage: bench_allreduce [--min-bytes N] [--max-bytes N] [--iters-scale F] [--gpu]\n"
                        "                       [--methods LIST] [--iters N] [--warmup N] [--no-check] [--tsv]\n"
                        "                       [--stat median|min] [--topology SPEC]\n"
                        "  N in bytes, with K, M or G for powers of 1024 (defaults 4K and 64M)\n"
                        "  LIST: comma-separated mpi:ALG:BUCKET, shm:ALG:BUCKET, shmbar:ALG:BUCKET,\n"
                        "        allreduce, allreduce-op (default %s)\n",
                        default_methods);
            MPI_Finalize();
            return 2;
        }
    }
    method_t ms[MAX_METHODS];
    int nm = 0;
    char list[512];
    snprintf(list, sizeof list, "%s", methods);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nm == MAX_METHODS || parse_method(tok, &ms[nm])) {
            if (rank == 0)
                fprintf(stderr, "bench_allreduce: bad method '%s' (or more than %d)\n", tok, MAX_METHODS);
            MPI_Finalize();
            return 2;
        }
        nm++;
    }
#ifdef TSR_SIMGRID
    const char *gbps = getenv("TSR_SIM_REDUCE_GBPS");
    double g = gbps && *gbps ? strtod(gbps, NULL) : 10.0;
    op_seconds_per_byte = g > 0 ? 1e-9 / g : 0;
    const char *skip = getenv("TSR_SIM_SKIP_SUMS");
    sums_charged_only = skip && strcmp(skip, "1") == 0;
    if (sums_charged_only && !no_check) {
        if (rank == 0)
            fprintf(stderr, "bench_allreduce: TSR_SIM_SKIP_SUMS=1 needs --no-check (no sum is done)\n");
        MPI_Finalize();
        return 2;
    }
#endif
    MPI_Op_create(sum_op, 1, &user_sum);

    float *buf = malloc(max_bytes > 0 ? max_bytes : 1);
    float *copy = rank == 0 ? malloc(max_bytes > 0 ? max_bytes : 1) : NULL;
    double *t = malloc(MAX_METHODS * 1000 * sizeof *t), *tmax = malloc(MAX_METHODS * 1000 * sizeof *tmax);
    if (!buf || (rank == 0 && !copy) || !t || !tmax) {
        fprintf(stderr, "bench_allreduce[rank %d]: out of memory for %zu bytes\n", rank, max_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    if (gpu) {
        run_gpu(min_bytes, max_bytes, iters_scale, buf, t, tmax);
        free(buf), free(copy), free(t), free(tmax);
        MPI_Op_free(&user_sum);
        MPI_Finalize();
        return 0;
    }
    int shm = -1, peer = -1;
    for (int m = 0; m < nm; m++) {
        if (shm < 0 && ms[m].kind == K_ENGINE && strcmp(ms[m].backend, "shm") == 0)
            shm = m;
        if (peer < 0 && ms[m].kind != K_ENGINE)
            peer = m;
    }
    int newm = find(ms, nm, "mpi:auto:25M"), oldm = find(ms, nm, "mpi:alltoall:25M");
    if (rank == 0 && tsv)
        printf("#size\tmethod\tranks\titers\tseconds\talgbw\tbusbw\twrong\talgorithm\n");
    else if (rank == 0)
        print_header(ms, nm, shm, peer, newm, oldm);

    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        size_t n = bytes / sizeof(float);
        /* ~64 MiB of traffic per method and size, 10..1000 iterations. */
        double want = iters_scale * (double)(64u << 20) / (double)bytes;
        int iters = fixed_iters ? fixed_iters : want < 10 ? 10 : want > 1000 ? 1000 : (int)want;
        int warmup = fixed_warmup >= 0 ? fixed_warmup : iters / 10 > 2 ? iters / 10 : 2;
        double sec[MAX_METHODS], busbw[MAX_METHODS], cpy = 0;
        long wrong[MAX_METHODS] = {0}, wrong_all = 0;
        tsr_comm_t *c[MAX_METHODS];
        for (int m = 0; m < nm; m++) {
            c[m] = make_engine(&ms[m], buf, n);
            if (!no_check)
                wrong_all += wrong[m] = check(&ms[m], c[m], buf, n);
        }
        time_all(ms, nm, c, buf, n, warmup, iters, t, tmax, copy, shm, sec, &cpy);
        for (int m = 0; m < nm; m++) {
            busbw[m] = (double)bytes / sec[m] / 1e9 * 2.0 * (size - 1) / size;
            const char *alg = c[m] ? tsr_comm_algorithm(c[m], 0) : NULL;
            if (rank == 0 && tsv) {
                printf("%zu\t%s\t%d\t%d\t%.9g\t%.6g\t%.6g\t%ld\t%s\n", bytes, ms[m].spec, size, iters, sec[m],
                       (double)bytes / sec[m] / 1e9, busbw[m], no_check ? -1L : wrong[m], alg ? alg : "-");
                fflush(stdout);
            }
            tsr_comm_destroy(c[m]);
        }
        if (rank == 0 && !tsv) {
            double cpybw = cpy > 0 ? (double)bytes / cpy / 1e9 : 0.0;
            printf(" %10zu %9zu %5d", bytes, n, iters);
            for (int m = 0; m < nm; m++)
                printf(" | %9.1f %7.2f", sec[m] * 1e6, busbw[m]);
            printf(" | %9.1f %7.2f", cpy * 1e6, cpybw);
            if (size > 1 && newm >= 0 && oldm >= 0)
                printf(" | %7.2f", busbw[newm] / busbw[oldm]);
            else
                printf(" | %7s", "-");
            if (size > 1 && shm >= 0 && peer >= 0)
                printf(" | %6.2f %6.2f", busbw[shm] / busbw[peer], cpybw > 0 ? busbw[shm] / cpybw : 0.0);
            else
                printf(" | %6s %6s", "-", "-");
            printf(" | %5ld\n", no_check ? -1L : wrong_all);
            fflush(stdout);
        }
        if (bytes > SIZE_MAX / 4)
            break;
    }
    free(buf);
    free(copy);
    free(t);
    free(tmax);
    MPI_Op_free(&user_sum);
    MPI_Finalize();
    return 0;
}
