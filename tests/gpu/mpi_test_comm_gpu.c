/* SPDX-License-Identifier: BSD-3-Clause */
/* Gradient sums of GPU buffers on 1 or more ranks with one GPU each:
 * "nccl" (in a build with NCCL) and "mpi"/"shm" staged through host
 * memory. Sums equal the reference for odd sizes, sizes below the rank
 * count and an empty buffer, with one bucket and with many; "auto" picks
 * nccl where it is built, else a staged host back-end (on one rank a host
 * back-end that copies nothing); two runs on the same input are
 * bit-identical. On 1 rank with NCCL this is the single-GPU NCCL
 * sanity run. Exits 77 (every rank) without enough GPUs. */
#include "tessera/comm.h"
#include "tessera/compute.h"
#include "tessera/error.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL rank %d %s:%d: ", rank, __FILE__, __LINE__);                                         \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, " (%s)\n", tsr_last_error());                                                              \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                                              \
        }                                                                                                              \
    } while (0)

/* Exact in float: small integers. */
static float value(int r, size_t i) { return (float)((int)((i * 7 + (size_t)r * 13) % 101) - 50); }

#ifdef TSR_HAVE_NCCL
#define AUTO_PICKS "nccl"
#else
#define AUTO_PICKS NULL /* whichever host back-end auto takes for host buffers */
#endif

static void check_sum(tsr_gpu_t *g, const char *backend, size_t n, size_t bucket_bytes)
{
    float *h = malloc((n ? n : 1) * sizeof *h), *d = NULL;
    tsr_comm_t *c = NULL;
    CHECK(tsr_gpu_alloc(g, (n ? n : 1) * sizeof(float), (void **)&d) == TSR_OK, "alloc");
    for (size_t i = 0; i < n; i++)
        h[i] = value(rank, i);
    CHECK(tsr_gpu_upload(g, d, h, n * sizeof(float)) == TSR_OK, "upload");
    CHECK(tsr_comm_create_gpu(MPI_COMM_WORLD, backend, g, d, n, bucket_bytes, &c) == TSR_OK, "create %s n=%zu", backend,
          n);
    /* On one rank "auto" needs no NCCL: a host back-end with nothing to do. */
    const char *expect = strcmp(backend, "auto") ? backend : size > 1 ? AUTO_PICKS : NULL;
    CHECK(!expect || strcmp(tsr_comm_backend(c), expect) == 0, "%s picked %s", backend, tsr_comm_backend(c));
    CHECK(size > 1 || strcmp(backend, "auto") || strcmp(tsr_comm_backend(c), "nccl"), "auto took nccl on 1 rank");
    CHECK(tsr_comm_staged(c) == (strcmp(tsr_comm_backend(c), "nccl") != 0 && size > 1), "%s: staged is %d", backend,
          tsr_comm_staged(c));
    /* Half the buffer "ready" early, as backward would mark it. */
    CHECK(tsr_comm_ready_from(c, n / 2) == TSR_OK, "ready_from");
    CHECK(tsr_comm_wait(c) == TSR_OK, "wait");
    CHECK(tsr_gpu_download(g, h, d, n * sizeof(float)) == TSR_OK, "download");
    for (size_t i = 0; i < n; i++) {
        float want = 0;
        for (int r = 0; r < size; r++)
            want += value(r, i);
        CHECK(h[i] == want, "n=%zu bucket=%zu: element %zu is %g, expected %g", n, bucket_bytes, i, h[i], want);
    }
    tsr_comm_destroy(c);
    tsr_gpu_free(g, d);
    free(h);
}

/* A staged copy that fails (here: from a buffer freed under the engine,
 * which the emulator checks every copy against) makes the engine's status
 * sticky with the message, and every later call fails alike on its own:
 * no rank is left in a collective. */
static void check_staged_failure(tsr_gpu_t *g)
{
    float *d = NULL;
    tsr_comm_t *c = NULL;
    CHECK(tsr_gpu_alloc(g, 1000 * sizeof(float), (void **)&d) == TSR_OK, "alloc");
    CHECK(tsr_comm_create_gpu(MPI_COMM_WORLD, "mpi", g, d, 1000, 0, &c) == TSR_OK && tsr_comm_staged(c), "create");
    tsr_gpu_free(g, d);
    CHECK(tsr_comm_status(c) == TSR_OK, "status before the failure");
    CHECK(tsr_comm_ready_from(c, 0) != TSR_OK, "a copy from a freed buffer succeeded");
    int st = tsr_comm_status(c);
    CHECK(st != TSR_OK && strstr(tsr_last_error(), "copying gradients to the host for 'mpi'"), "status %d: %s", st,
          tsr_last_error());
    CHECK(tsr_comm_wait(c) == st && strstr(tsr_last_error(), "copying gradients to the host"), "wait: %s",
          tsr_last_error());
    tsr_comm_destroy(c);
}

static void check_repeatable(tsr_gpu_t *g, const char *backend, size_t n)
{
    float *h = malloc(n * sizeof *h), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *d = NULL;
    tsr_comm_t *c = NULL;
    unsigned s = 12345u + (unsigned)rank;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        h[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    CHECK(tsr_gpu_alloc(g, n * sizeof(float), (void **)&d) == TSR_OK, "alloc");
    CHECK(tsr_comm_create_gpu(MPI_COMM_WORLD, backend, g, d, n, 256 << 10, &c) == TSR_OK, "create %s", backend);
    for (int k = 0; k < 2; k++) {
        CHECK(tsr_gpu_upload(g, d, h, n * sizeof(float)) == TSR_OK, "upload");
        CHECK(tsr_comm_allreduce(c) == TSR_OK, "allreduce");
        CHECK(tsr_gpu_download(g, k ? b : a, d, n * sizeof(float)) == TSR_OK, "download");
    }
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%s: two runs of the same sum differ", backend);
    CHECK(tsr_comm_calibrate(c, 3) == TSR_OK && tsr_comm_reference_seconds(c) > 0, "calibrate");
    tsr_comm_destroy(c);
    tsr_gpu_free(g, d);
    free(h), free(a), free(b);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    int lrank = 0, lsize = 1, count = tsr_gpu_count(), enough, all;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &lrank);
    MPI_Comm_size(node, &lsize);
    MPI_Comm_free(&node);
    enough = count >= lsize;
    MPI_Allreduce(&enough, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) {
        if (rank == 0)
            printf("SKIP: %d CUDA device%s for %d rank%s on this node; the test needs one per rank\n", count,
                   count == 1 ? "" : "s", lsize, lsize == 1 ? "" : "s");
        MPI_Finalize();
        return 77;
    }
    tsr_gpu_t *g = NULL;
    CHECK(tsr_gpu_create(lrank, &g) == TSR_OK, "gpu %d", lrank);
    const char *backends[] = {
#ifdef TSR_HAVE_NCCL
        "nccl",
#endif
        "mpi", "shm"};
    size_t sizes[] = {0, 1, (size_t)(size > 1 ? size - 1 : 1), 1000003, 4 << 20};
    size_t buckets[] = {0, 4096, 1 << 20};
    for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
            for (size_t j = 0; j < sizeof buckets / sizeof *buckets; j++)
                check_sum(g, j ? backends[b] : "auto", sizes[i], buckets[j]);
        check_repeatable(g, backends[b], 3u << 20);
        if (rank == 0)
            printf("ok: %s allreduce of GPU buffers on %d rank%s (%s)\n", backends[b], size, size == 1 ? "" : "s",
                   tsr_gpu_name(g));
    }
    if (size > 1 && strstr(tsr_gpu_name(g), "emulator")) {
        check_staged_failure(g);
        if (rank == 0)
            printf("ok: a failed staged copy is sticky and fails every later call\n");
    }
    /* A host buffer is refused by nccl. */
    float hb[4] = {0};
    tsr_comm_t *c = NULL;
#ifdef TSR_HAVE_NCCL
    CHECK(tsr_comm_create(MPI_COMM_WORLD, "nccl", hb, 4, 0, &c) == TSR_ENOTSUP, "nccl took host memory");
#else
    CHECK(tsr_comm_create_gpu(MPI_COMM_WORLD, "nccl", g, hb, 4, 0, &c) == TSR_ENOTSUP, "nccl without NCCL");
#endif
    tsr_gpu_destroy(g);
    MPI_Finalize();
    return 0;
}
