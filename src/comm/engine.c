/* The gradient reduction engine: bucket layout, which buckets have started
 * this step, timing, and the choice of back-end (see backend.h). */
#include "tessera/comm.h"
#include "comm/backend.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Known back-ends. "auto" asks each for its priority (available()) and
 * takes the highest, the first listed on ties:
 *   "shm" (20) when some node holds more than one rank of the communicator
 *         (all ranks on one node, or hierarchical across nodes), else 1;
 *   "mpi" (10) always;
 *   "nccl" (30) for device buffers in a build with NCCL; host buffers
 *         never, and "mpi"/"shm" never take device buffers.
 * So "auto" is "shm" when ranks share a node and "mpi" when every rank is
 * alone on its node (or there is a single rank), and "nccl" on GPUs. All
 * stay selectable by name. */
static const comm_backend_t *const components[] = {
    &tsr_comm_mpi_component,
    &tsr_comm_shm_component,
    &tsr_comm_nccl_component,
};
enum { NCOMPONENTS = sizeof components / sizeof components[0] };

struct tsr_comm {
    const comm_backend_t *be;
    void *state;
    float *buf;
    size_t n;
    size_t bucket_elems;
    size_t nbuckets;
    comm_bucket_t *buckets;
    size_t next;        /* buckets [0, next) have started this step */
    int failed;         /* a back-end call failed: the engine is unusable */
    double wait_seconds;
    /* Time on the caller's thread inside ready_from this step (work the
     * back-end does inline, e.g. shm's copy-in), and for the last step. */
    double inline_seconds, last_inline_seconds;
    double ref_seconds; /* a blocking allreduce of the buffer (calibrate) */
};

static int select_backend(MPI_Comm comm, const char *name, int on_gpu, const comm_backend_t **out)
{
    if (!name || strcmp(name, "auto") == 0) {
        /* available() is collective: every rank asks every back-end. */
        int best = 0;
        for (size_t i = 0; i < NCOMPONENTS; i++) {
            int prio = components[i]->available(comm, on_gpu);
            if (prio > best) {
                best = prio;
                *out = components[i];
            }
        }
        return best > 0 ? TSR_OK
                        : tsr_error_set(TSR_ENOTSUP, "comm: no back-end is available for %s buffers%s",
                                        on_gpu ? "GPU" : "host", on_gpu ? " (this build has no NCCL)" : "");
    }
    for (size_t i = 0; i < NCOMPONENTS; i++) {
        if (strcmp(name, components[i]->name) != 0)
            continue;
        if (!components[i]->available(comm, on_gpu))
            return tsr_error_set(TSR_ENOTSUP, "comm: backend '%s' is not available here for %s buffers", name,
                                 on_gpu ? "GPU" : "host");
        *out = components[i];
        return TSR_OK;
    }
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < NCOMPONENTS && used < sizeof list; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", components[i]->name);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return tsr_error_set(TSR_EINVAL, "comm: unknown backend '%s'; expected %s or auto", name, list);
}

int tsr_comm_create(MPI_Comm comm, const char *backend, float *buf, size_t n, size_t bucket_bytes,
                    tsr_comm_t **out)
{
    return tsr_comm_create_gpu(comm, backend, NULL, buf, n, bucket_bytes, out);
}

int tsr_comm_create_gpu(MPI_Comm comm, const char *backend, tsr_gpu_t *gpu, float *buf, size_t n,
                        size_t bucket_bytes, tsr_comm_t **out)
{
    tsr_comm_t *c = NULL;
    int rc = TSR_OK;
    if (!out)
        return tsr_error_set(TSR_EINVAL, "comm: out is NULL");
    *out = NULL;
    if (comm == MPI_COMM_NULL)
        return tsr_error_set(TSR_EINVAL, "comm: communicator is MPI_COMM_NULL");
    if (!buf && n > 0)
        return tsr_error_set(TSR_EINVAL, "comm: buffer is NULL but holds %zu floats", n);
    const comm_backend_t *be = NULL;
    rc = select_backend(comm, backend, gpu != NULL, &be);
    if (rc)
        return rc;

    int rank = 0, size = 1;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "comm: MPI_Comm_rank/MPI_Comm_size failed");

    c = calloc(1, sizeof *c);
    if (!c)
        return tsr_error_set(TSR_ENOMEM, "comm: out of memory");
    c->be = be;
    c->buf = buf;
    c->n = n;
    /* Whole floats, at least one; 0 means one bucket for everything. */
    if (bucket_bytes == 0)
        c->bucket_elems = n > 0 ? n : 1;
    else
        c->bucket_elems = bucket_bytes / sizeof(float) > 0 ? bucket_bytes / sizeof(float) : 1;
    c->nbuckets = n == 0 ? 0 : (n + c->bucket_elems - 1) / c->bucket_elems;
    c->buckets = calloc(c->nbuckets ? c->nbuckets : 1, sizeof *c->buckets);
    if (!c->buckets) {
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory for %zu buckets", c->nbuckets);
        goto fail;
    }
    /* Bucket 0 is the last bucket_elems floats, bucket 1 the ones before;
     * the first bucket of the buffer (the last one) may be shorter. */
    for (size_t b = 0; b < c->nbuckets; b++) {
        size_t end = n - b * c->bucket_elems;
        size_t start = end > c->bucket_elems ? end - c->bucket_elems : 0;
        c->buckets[b].start = start;
        c->buckets[b].len = end - start;
    }
    comm_setup_t setup = {
        .comm = comm,
        .rank = rank,
        .size = size,
        .buf = buf,
        .n = n,
        .buckets = c->buckets,
        .nbuckets = c->nbuckets,
        .gpu = gpu,
    };
    rc = be->create(&setup, &c->state);
    if (rc)
        goto fail;
    *out = c;
    return TSR_OK;
fail:
    tsr_comm_destroy(c);
    return rc;
}

void tsr_comm_destroy(tsr_comm_t *c)
{
    if (!c)
        return;
    if (c->be && c->state)
        c->be->destroy(c->state);
    free(c->buckets);
    free(c);
}

const char *tsr_comm_backend(const tsr_comm_t *c)
{
    return c ? c->be->name : NULL;
}

size_t tsr_comm_nbuckets(const tsr_comm_t *c)
{
    return c ? c->nbuckets : 0;
}

static int check_usable(const tsr_comm_t *c)
{
    if (!c)
        return tsr_error_set(TSR_EINVAL, "comm: engine is NULL");
    if (c->failed)
        return tsr_error_set(TSR_EINVAL, "comm: engine unusable after an earlier failure");
    return TSR_OK;
}

/* Starts buckets in order while they lie wholly in buf[offset..n). */
static int start_from(tsr_comm_t *c, size_t offset)
{
    while (c->next < c->nbuckets && c->buckets[c->next].start >= offset) {
        int rc = c->be->start(c->state, c->next);
        if (rc) {
            c->failed = 1;
            return rc;
        }
        c->next++;
    }
    return TSR_OK;
}

int tsr_comm_ready_from(tsr_comm_t *c, size_t offset)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (offset > c->n)
        return tsr_error_set(TSR_EINVAL, "comm: ready_from offset %zu is beyond the buffer's %zu floats", offset,
                             c->n);
    double t0 = MPI_Wtime();
    rc = start_from(c, offset);
    if (!rc) {
        rc = c->be->progress(c->state);
        if (rc)
            c->failed = 1;
    }
    c->inline_seconds += MPI_Wtime() - t0;
    return rc;
}

int tsr_comm_wait(tsr_comm_t *c)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    double t0 = MPI_Wtime();
    rc = start_from(c, 0);
    if (!rc) {
        rc = c->be->wait(c->state);
        if (rc)
            c->failed = 1;
    }
    c->next = 0;
    c->wait_seconds = MPI_Wtime() - t0;
    c->last_inline_seconds = c->inline_seconds;
    c->inline_seconds = 0;
    return rc;
}

int tsr_comm_allreduce(tsr_comm_t *c)
{
    int rc = tsr_comm_ready_from(c, 0);
    return rc ? rc : tsr_comm_wait(c);
}

double tsr_comm_last_wait_seconds(const tsr_comm_t *c)
{
    return c ? c->wait_seconds : 0.0;
}

double tsr_comm_last_exposed_seconds(const tsr_comm_t *c)
{
    return c ? c->wait_seconds + c->last_inline_seconds : 0.0;
}

double tsr_comm_reference_seconds(const tsr_comm_t *c)
{
    return c ? c->ref_seconds : 0.0;
}

double tsr_comm_last_hidden_seconds(const tsr_comm_t *c)
{
    double h = c ? c->ref_seconds - tsr_comm_last_exposed_seconds(c) : 0.0;
    return h > 0 ? h : 0.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int tsr_comm_calibrate(tsr_comm_t *c, int reps)
{
    enum { MAXREPS = 31 };
    double t[MAXREPS];
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (reps < 1 || reps > MAXREPS)
        return tsr_error_set(TSR_EINVAL, "comm: calibrate with %d repetitions; expected 1 to %d", reps, MAXREPS);
    /* Start-up must stay cheap for big models: from 16 MiB one timed round,
     * from 256 MiB not even the untimed one. Decided by the size, which
     * every rank shares, so all run the same number of collectives. */
    size_t bytes = c->n * sizeof(float);
    if (bytes >= ((size_t)16 << 20))
        reps = 1;
    int first = bytes >= ((size_t)256 << 20) ? 0 : -1;
    /* One untimed round first: the first call pays for lazy set-up. */
    for (int r = first; r < reps; r++) {
        double t0 = MPI_Wtime();
        if ((rc = tsr_comm_allreduce(c)))
            return rc;
        if (r >= 0)
            t[r] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    c->ref_seconds = t[reps / 2];
    c->last_inline_seconds = c->inline_seconds = c->wait_seconds = 0;
    return TSR_OK;
}
