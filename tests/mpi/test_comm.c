/* Multi-rank test of the comm engine: sums must equal, bit for bit, a
 * reference sum taken locally in rank order 0..P-1 (every rank can
 * regenerate every other rank's inputs), for many buffer and bucket sizes,
 * whether buckets are started all at once or in stages as backward would,
 * and step after step on one engine. */
#define COMM_TEST_NAME "test_comm"
#include "comm_test.h"

#include <limits.h>

/* The sum every rank must get: float, rank order 0, 1, ..., P-1. */
static float rank_order_sum(uint64_t seed, size_t i, const void *arg)
{
    (void)arg;
    float acc = value(seed, 0, i);
    for (int r = 1; r < size; r++)
        acc += value(seed, r, i);
    return acc;
}

static size_t expected_buckets(size_t n, size_t bucket_bytes)
{
    if (n == 0)
        return 0;
    size_t be = bucket_bytes == 0 ? n : (bucket_bytes / 4 ? bucket_bytes / 4 : 1);
    return (n + be - 1) / be;
}

static void run_case(size_t n, size_t bucket_bytes)
{
    char tag[96];
    snprintf(tag, sizeof tag, "n=%zu bucket_bytes=%zu", n, bucket_bytes);
    float *mem = guarded_alloc(n);
    tsr_comm_t *c = NULL;
    /* The "mpi" back-end by name ("auto" picks "shm" when ranks share a
     * node; test_comm_shm.c covers that one and check_auto the choice). */
    int rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", mem + GUARD, n, bucket_bytes, &c);
    CHECK(rc == TSR_OK, "create (%s): %s", tag, tsr_last_error());
    if (!rc) {
        CHECK(strcmp(tsr_comm_backend(c), "mpi") == 0, "backend is '%s', want mpi", tsr_comm_backend(c));
        CHECK(tsr_comm_nbuckets(c) == expected_buckets(n, bucket_bytes), "%s: %zu buckets, want %zu", tag,
              tsr_comm_nbuckets(c), expected_buckets(n, bucket_bytes));
        run_steps(c, mem + GUARD, n, 1000003u * n + bucket_bytes, rank_order_sum, NULL, tag);
    }
    tsr_comm_destroy(c);
    free(mem);
}

/* The test only means something if addition order shows in the bits. */
static void check_order_matters(void)
{
    if (size < 3)
        return;
    size_t differ = 0;
    for (size_t i = 0; i < 10000; i++) {
        float fwd = value(7, 0, i), bwd = value(7, size - 1, i);
        for (int r = 1; r < size; r++)
            fwd += value(7, r, i);
        for (int r = size - 2; r >= 0; r--)
            bwd += value(7, r, i);
        differ += bits(fwd) != bits(bwd);
    }
    CHECK(differ > 100, "only %zu of 10000 sums depend on the order: inputs too tame", differ);
}

static void check_errors(void)
{
    float x[4] = {0};
    tsr_comm_t *c = (tsr_comm_t *)x; /* must be overwritten with NULL */
    int rc = tsr_comm_create(MPI_COMM_WORLD, "x", x, 4, 0, &c);
    CHECK(rc == TSR_EINVAL, "unknown backend: rc %d, want TSR_EINVAL", rc);
    CHECK(c == NULL, "unknown backend: *out not NULL");
    CHECK(strcmp(tsr_last_error(), "comm: unknown backend 'x'; expected mpi, shm, nccl or auto") == 0,
          "unknown backend message: '%s'", tsr_last_error());

    rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", NULL, 4, 0, &c);
    CHECK(rc == TSR_EINVAL, "NULL buffer: rc %d, want TSR_EINVAL", rc);

    /* A single bucket larger than MPI's int counts is refused up front,
     * before anything touches the (here imaginary) buffer. */
    rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", x, (size_t)INT_MAX + 5, 0, &c);
    CHECK(rc == TSR_EINVAL && c == NULL, "oversized bucket: rc %d, want TSR_EINVAL", rc);
    CHECK(strstr(tsr_last_error(), "bucket") != NULL, "oversized bucket message: '%s'", tsr_last_error());

    rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", x, 4, 8, &c);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    if (!rc) {
        rc = tsr_comm_ready_from(c, 5);
        CHECK(rc == TSR_EINVAL, "ready_from past the end: rc %d, want TSR_EINVAL", rc);
        CHECK(tsr_comm_allreduce(c) == TSR_OK, "allreduce after a refused call: %s", tsr_last_error());
    }
    tsr_comm_destroy(c);
    tsr_comm_destroy(NULL);
    CHECK(tsr_comm_nbuckets(NULL) == 0, "nbuckets(NULL)");

    /* nccl takes GPU buffers only; in a build without NCCL it never is available. */
    rc = tsr_comm_create(MPI_COMM_WORLD, "nccl", x, 4, 0, &c);
    CHECK(rc == TSR_ENOTSUP && c == NULL, "nccl on host memory: rc %d, want TSR_ENOTSUP", rc);
    CHECK(strstr(tsr_last_error(), "nccl") && strstr(tsr_last_error(), "host"), "nccl message: '%s'",
          tsr_last_error());

    /* Calibration: a positive reference time; the engine still sums right after. */
    float y[300];
    for (int i = 0; i < 300; i++)
        y[i] = 0;
    rc = tsr_comm_create(MPI_COMM_WORLD, NULL, y, 300, 64, &c);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    CHECK(tsr_comm_calibrate(c, 0) == TSR_EINVAL, "calibrate 0 accepted");
    CHECK(tsr_comm_calibrate(c, 3) == TSR_OK && tsr_comm_reference_seconds(c) > 0, "calibrate: %s",
          tsr_last_error());
    for (int i = 0; i < 300; i++)
        y[i] = (float)(rank + i);
    CHECK(tsr_comm_ready_from(c, 150) == TSR_OK && tsr_comm_wait(c) == TSR_OK, "step after calibrate");
    for (int i = 0; i < 300; i++)
        CHECK(y[i] == (float)(size * i + size * (size - 1) / 2), "after calibrate: y[%d] = %g", i, y[i]);
    CHECK(tsr_comm_last_exposed_seconds(c) >= tsr_comm_last_wait_seconds(c), "exposed < wait");
    CHECK(tsr_comm_last_hidden_seconds(c) >= 0 &&
              tsr_comm_last_hidden_seconds(c) <= tsr_comm_reference_seconds(c),
          "hidden %g outside [0, reference %g]", tsr_comm_last_hidden_seconds(c), tsr_comm_reference_seconds(c));
    tsr_comm_destroy(c);

    /* n == 0 is a valid, empty engine. */
    rc = tsr_comm_create(MPI_COMM_WORLD, NULL, NULL, 0, 64, &c);
    CHECK(rc == TSR_OK, "empty engine: %s", tsr_last_error());
    if (!rc) {
        CHECK(tsr_comm_nbuckets(c) == 0, "empty engine has %zu buckets", tsr_comm_nbuckets(c));
        CHECK(tsr_comm_ready_from(c, 0) == TSR_OK && tsr_comm_wait(c) == TSR_OK, "empty engine step: %s",
              tsr_last_error());
    }
    tsr_comm_destroy(c);
}

/* "auto" is "shm" when some node holds more than one rank, else "mpi". */
static void check_auto(void)
{
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int local = 1, most = 1;
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    MPI_Allreduce(&local, &most, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    float x[8] = {0};
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create(MPI_COMM_WORLD, "auto", x, 8, 0, &c);
    CHECK(rc == TSR_OK, "auto: %s", tsr_last_error());
    if (!rc) {
        const char *want = most > 1 ? "shm" : "mpi";
        CHECK(strcmp(tsr_comm_backend(c), want) == 0, "auto chose '%s', want %s (%d ranks on the fullest node)",
              tsr_comm_backend(c), want, most);
    }
    tsr_comm_destroy(c);
    c = NULL;
    rc = tsr_comm_create(MPI_COMM_WORLD, NULL, x, 8, 0, &c); /* NULL means auto */
    CHECK(rc == TSR_OK && c && strcmp(tsr_comm_backend(c), most > 1 ? "shm" : "mpi") == 0, "NULL backend: %s",
          rc ? tsr_last_error() : tsr_comm_backend(c));
    tsr_comm_destroy(c);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 1000, 1023, 4096 + 3, 100003};
    static const size_t buckets[] = {0, 4, 12, 1024, 64 * 1024};
    check_order_matters();
    check_errors();
    check_auto();
    check_subcomm("mpi", 1);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof buckets / sizeof buckets[0]; j++)
        {
            double t0 = MPI_Wtime();
            run_case(sizes[i], buckets[j]);
            if (getenv("TSR_TEST_VERBOSE") && rank == 0)
                printf("n=%zu bucket_bytes=%zu: %.3f s\n", sizes[i], buckets[j], MPI_Wtime() - t0);
        }

    int status = finish_checks();
    MPI_Finalize();
    return status;
}
