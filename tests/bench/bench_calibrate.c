/* SPDX-License-Identifier: BSD-3-Clause */
/* What a SimGrid platform needs to stand for this machine
 * (run_scale_bench.sh --validate): on 2 ranks,
 *   latency:   half the round trip of an 8-byte ping-pong, seconds;
 *   exchange:  bytes per second each way when both ranks send BYTES to
 *              each other at once (MPI_Sendrecv), the pattern of every
 *              round of tessera's schedules;
 *   iexchange: the same posted as the schedules post it (MPI_Irecv,
 *              MPI_Isend, MPI_Waitall), both buffers written by their
 *              rank just before, as a schedule sends sums it has just
 *              made (the figure run_scale_bench.sh --validate uses);
 *   pingpong:  bytes per second of a one-way BYTES message (ping-pong);
 *   memcpy:    rank 0 alone copying BYTES;
 *   reduce:    rank 0 alone computing x[i] = t[i] + x[i] over BYTES of
 *              floats (the engine's sum), bytes of x per second;
 * each the median of --reps repetitions, printed as "key value" lines.
 *
 *   mpiexec -n 2 bench_calibrate [--bytes N] [--reps N] */
#include "bench_util.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAXREPS = 101 };

/* As the engine sums (src/comm/backend_mpi.c): blocks of 16 that -O2 vectorizes. */
static void add_into(float *restrict x, const float *restrict t, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t j = 0; j < 16; j++)
            x[i + j] = t[i + j] + x[i + j];
    for (; i < n; i++)
        x[i] = t[i] + x[i];
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t bytes = (size_t)16 << 20;
    int reps = 21;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
            bytes = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            reps = 0;
    }
    if (size != 2 || reps < 1 || reps > MAXREPS || bytes < 64 || bytes > ((size_t)1 << 30)) {
        if (rank == 0)
            fprintf(stderr, "usage: mpiexec -n 2 bench_calibrate [--bytes N (64..1G)] [--reps N (1..%d)]\n", MAXREPS);
        MPI_Finalize();
        return 2;
    }
    size_t n = bytes / sizeof(float);
    float *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b);
    double t[MAXREPS];
    if (!a || !b) {
        fprintf(stderr, "bench_calibrate: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* Written once so every page is real memory: calloc's untouched pages
     * all read the one zero page, which made a large "exchange" or "memcpy"
     * read from cache and come out up to twice the machine's rate. */
    memset(a, 0, bytes);
    memset(b, 0, bytes);
    int peer = 1 - rank;
    /* latency */
    for (int r = -2; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int k = 0; k < 100; k++) {
            if (rank == 0) {
                MPI_Send(a, 2, MPI_FLOAT, peer, 0, MPI_COMM_WORLD);
                MPI_Recv(b, 2, MPI_FLOAT, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else {
                MPI_Recv(b, 2, MPI_FLOAT, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(a, 2, MPI_FLOAT, peer, 0, MPI_COMM_WORLD);
            }
        }
        if (r >= 0)
            t[r] = (MPI_Wtime() - t0) / 200;
    }
    double latency = bench_median(t, reps);
    /* one-way bandwidth */
    for (int r = -2; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (rank == 0) {
            MPI_Send(a, (int)n, MPI_FLOAT, peer, 1, MPI_COMM_WORLD);
            MPI_Recv(b, 1, MPI_FLOAT, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(b, (int)n, MPI_FLOAT, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(a, 1, MPI_FLOAT, peer, 1, MPI_COMM_WORLD);
        }
        if (r >= 0)
            t[r] = MPI_Wtime() - t0 - 2 * latency;
    }
    double pingpong = (double)bytes / bench_median(t, reps);
    /* both ways at once */
    for (int r = -2; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Sendrecv(a, (int)n, MPI_FLOAT, peer, 2, b, (int)n, MPI_FLOAT, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        double dt = MPI_Wtime() - t0, worst = dt;
        MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0)
            t[r] = worst - latency;
    }
    double exchange = (double)bytes / bench_median(t, reps);
    /* both ways at once, nonblocking as tessera's schedules post them, from
     * and into buffers this rank has just written, as a schedule sends the
     * sums it has just made: a peer's copy of dirty lines from another
     * core's cache ran at half the rate of clean ones here (128 KiB-8 MiB). */
    for (int r = -2; r < reps; r++) {
        MPI_Request rq[2];
        for (size_t i = 0; i < n; i++) {
            a[i] += 1.0f;
            b[i] += 1.0f;
        }
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Irecv(b, (int)n, MPI_FLOAT, peer, 3, MPI_COMM_WORLD, &rq[0]);
        MPI_Isend(a, (int)n, MPI_FLOAT, peer, 3, MPI_COMM_WORLD, &rq[1]);
        MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
        double dt = MPI_Wtime() - t0, worst = dt;
        MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0)
            t[r] = worst - latency;
    }
    double iexchange = (double)bytes / bench_median(t, reps);
    memset(a, 0, bytes); /* the sum's check below expects zeros */
    memset(b, 0, bytes);
    /* memcpy and the sum, rank 0 alone */
    double memcpy_bw = 0, reduce_bw = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = -2; r < reps; r++) {
            double t0 = MPI_Wtime();
            memcpy(b, a, bytes);
            if (r >= 0)
                t[r] = MPI_Wtime() - t0;
        }
        memcpy_bw = (double)bytes / bench_median(t, reps);
        for (int r = -2; r < reps; r++) {
            double t0 = MPI_Wtime();
            add_into(a, b, n);
            if (r >= 0)
                t[r] = MPI_Wtime() - t0;
        }
        reduce_bw = (double)bytes / bench_median(t, reps);
        if (((volatile float *)a)[n / 2] != 0.0f)
            fprintf(stderr, "bench_calibrate: sum check failed\n");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        printf("bytes %zu\nlatency %.9g\npingpong %.6g\nexchange %.6g\niexchange %.6g\nmemcpy %.6g\nreduce %.6g\n",
               bytes, latency, pingpong, exchange, iexchange, memcpy_bw, reduce_bw);
    free(a);
    free(b);
    MPI_Finalize();
    return 0;
}
