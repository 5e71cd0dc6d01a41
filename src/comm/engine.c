/* SPDX-License-Identifier: BSD-3-Clause */
/* The gradient reduction engine: bucket layout, which buckets have started
 * this step, timing, and the choice of back-end (see backend.h). */
#include "tessera/comm.h"
#include "comm/backend.h"
#include "comm/mpi_internal.h"
#include "tessera/error.h"
#include "tessera/perf.h"
#include "tessera/log.h"
#include "tessera/trace.h"

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
 * stay selectable by name.
 *
 * GPU buffers with no back-end that takes them (a CUDA build without
 * NCCL, or "mpi"/"shm" by name) are staged: a host back-end sums a pinned
 * host copy. Each range is downloaded when it is marked ready (which waits
 * for the GPU's stream) and the sums are uploaded at wait, so nothing
 * overlaps, but training works wherever MPI does. On a single rank there
 * is nothing to sum: a staged engine copies nothing, and "auto" stages
 * rather than set up NCCL (whose per-step wait would stall the host for
 * nothing); "nccl" by name still runs it, as a sanity check. */
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
    size_t next;   /* buckets [0, next) have started this step */
    int failed;    /* the TSR_* code of the first failed back-end call: the engine is unusable */
    char why[512]; /* and its message */
    double wait_seconds;
    /* Time on the caller's thread inside ready_from this step (work the
     * back-end does inline, e.g. shm's copy-in), and for the last step. */
    double inline_seconds, last_inline_seconds;
    double ref_seconds; /* a blocking allreduce of the buffer (calibrate) */
    /* Staged GPU buffer: the device buffer, its host copy (which the
     * back-end works on) and the GPU; alone: one rank, so no work. */
    tsr_gpu_t *gpu;
    float *dbuf, *host;
    int staged, alone;
    comm_idle_t idle; /* the back-ends' waits call it (tsr_comm_set_idle) */
};

/* The highest-priority back-end for on_gpu buffers, or 0. Collective. */
static int best_backend(MPI_Comm comm, int on_gpu, const comm_backend_t **out)
{
    /* available() is collective: every rank asks every back-end. */
    int best = 0;
    for (size_t i = 0; i < NCOMPONENTS; i++) {
        int prio = components[i]->available(comm, on_gpu);
        if (prio > best) {
            best = prio;
            *out = components[i];
        }
    }
    return best;
}

/* *staged: GPU buffers go through a host copy (the back-end takes host
 * buffers only). available() returns the same on every rank, so every
 * rank takes the same path through these collective calls. */
static int select_backend(MPI_Comm comm, const char *name, int on_gpu, const comm_backend_t **out, int *staged)
{
    *staged = 0;
    int size = 1;
    MPI_Comm_size(comm, &size);
    if (!name || strcmp(name, "auto") == 0) {
        if (!(on_gpu && size == 1) && best_backend(comm, on_gpu, out) > 0)
            return TSR_OK;
        if (on_gpu && best_backend(comm, 0, out) > 0) {
            *staged = 1;
            return TSR_OK;
        }
        return tsr_error_set(TSR_ENOTSUP, "comm: no back-end is available for %s buffers", on_gpu ? "GPU" : "host");
    }
    for (size_t i = 0; i < NCOMPONENTS; i++) {
        if (strcmp(name, components[i]->name) != 0)
            continue;
        if (!components[i]->available(comm, on_gpu)) {
            if (!on_gpu || !components[i]->available(comm, 0))
                return tsr_error_set(TSR_ENOTSUP, "comm: backend '%s' is not available here for %s buffers%s", name,
                                     on_gpu ? "GPU" : "host",
                                     strcmp(name, "nccl") == 0 ? " (this build has no NCCL)" : "");
            *staged = 1;
        }
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

/* tsr_comm_options_t.fixed_tree: what can sum in the tree. */
static int fixed_tree_check(int size, const char **backend, int *alg)
{
    if (size & (size - 1))
        return tsr_error_set(TSR_EINVAL, "comm: a fixed summation tree needs a power-of-two number of ranks, not %d",
                             size);
    if (*alg == TSR_ALG_AUTO)
        *alg = TSR_ALG_RABENSEIFNER;
    if (*alg != TSR_ALG_RABENSEIFNER && *alg != TSR_ALG_TREE)
        return tsr_error_set(TSR_EINVAL, "comm: a fixed summation tree needs the rabenseifner or tree algorithm");
    if (!*backend)
        *backend = "auto";
    if (!strcmp(*backend, "nccl"))
        return tsr_error_set(TSR_EINVAL, "comm: nccl cannot sum in a fixed tree; use mpi, shm or auto");
    return TSR_OK;
}

int tsr_comm_create(MPI_Comm comm, const char *backend, float *buf, size_t n, size_t bucket_bytes, tsr_comm_t **out)
{
    tsr_comm_options_t o = {.backend = backend, .bucket_bytes = bucket_bytes};
    return tsr_comm_create_opts(comm, &o, buf, n, out);
}

int tsr_comm_create_gpu(MPI_Comm comm, const char *backend, tsr_gpu_t *gpu, float *buf, size_t n, size_t bucket_bytes,
                        tsr_comm_t **out)
{
    tsr_comm_options_t o = {.backend = backend, .bucket_bytes = bucket_bytes, .gpu = gpu};
    return tsr_comm_create_opts(comm, &o, buf, n, out);
}

int tsr_comm_create_opts(MPI_Comm comm, const tsr_comm_options_t *opts, float *buf, size_t n, tsr_comm_t **out)
{
    tsr_comm_t *c = NULL;
    int rc = TSR_OK;
    if (!out)
        return tsr_error_set(TSR_EINVAL, "comm: out is NULL");
    *out = NULL;
    if (!opts)
        return tsr_error_set(TSR_EINVAL, "comm: options are NULL");
    if (comm == MPI_COMM_NULL)
        return tsr_error_set(TSR_EINVAL, "comm: communicator is MPI_COMM_NULL");
    if (!buf && n > 0)
        return tsr_error_set(TSR_EINVAL, "comm: buffer is NULL but holds %zu floats", n);
    const char *backend = opts->backend;
    tsr_gpu_t *gpu = opts->gpu;
    size_t bucket_bytes = opts->bucket_bytes;
    int alg = tsr_alg_parse(opts->algorithm);
    if (alg < 0)
        return tsr_error_set(TSR_EINVAL,
                             "comm: unknown allreduce algorithm '%s'; expected auto, ring, rabenseifner, tree, "
                             "alltoall or hier",
                             opts->algorithm);
    int rank = 0, size = 1;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "comm: MPI_Comm_rank/MPI_Comm_size failed");
    const comm_backend_t *be = NULL;
    int staged = 0, tree = opts->fixed_tree;
    if (tree && (rc = fixed_tree_check(size, &backend, &alg)))
        return rc;
    rc = select_backend(comm, backend, gpu != NULL && !(tree && !strcmp(backend, "auto")), &be, &staged);
    if (rc)
        return rc;
    staged |= tree && gpu != NULL; /* never NCCL: its order is its own */

    c = calloc(1, sizeof *c);
    if (!c)
        return tsr_error_set(TSR_ENOMEM, "comm: out of memory");
    c->be = be;
    c->buf = buf;
    c->n = n;
    c->staged = staged;
    c->alone = staged && size == 1;
    if (staged && !c->alone) {
        c->gpu = gpu;
        c->dbuf = buf;
        rc = tsr_gpu_host_alloc((n ? n : 1) * sizeof(float), (void **)&c->host);
        if (rc)
            tsr_error_prefix(rc, "comm: rank %d: host copy of %zu gradients for '%s' on GPUs: ", rank, n, be->name);
        /* The back-end's create is collective: nobody goes on alone. */
        int ok = rc == TSR_OK, all = 0;
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
        if (!all) {
            if (ok)
                rc = tsr_error_set(TSR_ENOMEM,
                                   "comm: rank %d: another rank could not allocate its host copy of the "
                                   "gradients",
                                   rank);
            goto fail;
        }
        buf = c->host;
        gpu = NULL;
    }
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
        .half = gpu ? opts->half : TSR_PRECISION_FP32,
        .algorithm = alg,
        .fixed_tree = tree,
        .topology = opts->topology,
        .idle = &c->idle,
    };
    if (!c->alone && (rc = be->create(&setup, &c->state)) == TSR_ENOTSUP && tree && !strcmp(backend, "auto") &&
        strcmp(be->name, "mpi")) {
        /* shm cannot keep the tree on this layout (said collectively): mpi can */
        c->be = be = &tsr_comm_mpi_component;
        rc = be->create(&setup, &c->state);
    }
    if (!c->alone && rc)
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
    tsr_gpu_host_free(c->host);
    free(c->buckets);
    free(c);
}

const char *tsr_comm_backend(const tsr_comm_t *c) { return c ? c->be->name : NULL; }

int tsr_comm_staged(const tsr_comm_t *c) { return c ? c->staged && !c->alone : 0; }

void tsr_comm_set_idle(tsr_comm_t *c, void (*fn)(void *arg), void *arg)
{
    if (!c)
        return;
    c->idle.fn = fn;
    c->idle.arg = arg;
}

size_t tsr_comm_nbuckets(const tsr_comm_t *c) { return c ? c->nbuckets : 0; }

const char *tsr_comm_algorithm(const tsr_comm_t *c, size_t bucket)
{
    if (!c || !c->state || !c->be->algorithm || bucket >= c->nbuckets)
        return NULL;
    return c->be->algorithm(c->state, bucket);
}

/* Records the first failure (sticky, with its message) and returns rc. */
static int fail(tsr_comm_t *c, int rc)
{
    if (!c->failed) {
        c->failed = rc;
        snprintf(c->why, sizeof c->why, "%s", tsr_last_error());
    }
    return rc;
}

int tsr_comm_status(const tsr_comm_t *c)
{
    if (!c || !c->failed)
        return TSR_OK;
    return tsr_error_set(c->failed, "%s", c->why);
}

static int check_usable(const tsr_comm_t *c)
{
    if (!c)
        return tsr_error_set(TSR_EINVAL, "comm: engine is NULL");
    if (c->failed)
        return tsr_error_set(c->failed, "comm: engine unusable after an earlier failure: %s", c->why);
    return TSR_OK;
}

/* Starts buckets in order while they lie wholly in buf[offset..n); staged,
 * their range is copied to the host first, in one download. */
static int start_from(tsr_comm_t *c, size_t offset)
{
    size_t last = c->next;
    while (last < c->nbuckets && c->buckets[last].start >= offset)
        last++;
    if (last == c->next || c->alone) {
        c->next = last;
        return TSR_OK;
    }
    if (c->staged) {
        size_t lo = c->buckets[last - 1].start, hi = c->buckets[c->next].start + c->buckets[c->next].len;
        int rc = tsr_gpu_download(c->gpu, c->host + lo, c->dbuf + lo, (hi - lo) * sizeof(float));
        if (rc)
            return fail(c, tsr_error_prefix(rc, "comm: copying gradients to the host for '%s': ", c->be->name));
    }
    for (; c->next < last; c->next++) {
        tsr_trace_mark(TSR_TRACE_BUCKET, 'b', (int64_t)c->next); /* trace: an async span per bucket */
        int rc = c->be->start(c->state, c->next);
        if (rc)
            return fail(c, rc);
    }
    return TSR_OK;
}

int tsr_comm_ready_from(tsr_comm_t *c, size_t offset)
{
    int rc = check_usable(c);
    if (rc)
        return rc;
    if (offset > c->n)
        return tsr_error_set(TSR_EINVAL, "comm: ready_from offset %zu is beyond the buffer's %zu floats", offset, c->n);
    double t0 = MPI_Wtime();
    rc = start_from(c, offset);
    if (!rc && !c->alone) {
        rc = c->be->progress(c->state);
        if (rc)
            fail(c, rc);
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
    if (!rc && !c->alone) {
        rc = c->be->wait(c->state);
        /* Queued on the GPU's stream, so the kernels that read the sums
         * (the optimizer) run after it; the host copy is not written
         * again before the next step's download, which waits for it. */
        if (!rc && c->staged && c->n && (rc = tsr_gpu_upload(c->gpu, c->dbuf, c->host, c->n * sizeof(float))))
            tsr_error_prefix(rc, "comm: copying the sums back to the GPU for '%s': ", c->be->name);
        if (rc)
            fail(c, rc);
    }
    if (!rc && !c->alone) /* PAPI sde:::tessera::reduced_bytes_<back-end> */
        tsr_counter_add(!strcmp(c->be->name, "shm")    ? TSR_COUNTER_REDUCED_BYTES_SHM
                        : !strcmp(c->be->name, "nccl") ? TSR_COUNTER_REDUCED_BYTES_NCCL
                                                       : TSR_COUNTER_REDUCED_BYTES_MPI,
                        (int64_t)(c->n * sizeof(float)));
    /* trace: the back-ends say when all buckets are done, not each: every
     * bucket's span ends here. */
    tsr_trace_t *tr = tsr_trace_current();
    if (tr && !c->alone) {
        double now = tsr_time_now();
        for (size_t b = 0; b < c->nbuckets; b++)
            tsr_trace_event_at(tr, TSR_TRACE_BUCKET, 'e', (int64_t)b, now);
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

double tsr_comm_last_wait_seconds(const tsr_comm_t *c) { return c ? c->wait_seconds : 0.0; }

double tsr_comm_last_exposed_seconds(const tsr_comm_t *c) { return c ? c->wait_seconds + c->last_inline_seconds : 0.0; }

double tsr_comm_reference_seconds(const tsr_comm_t *c) { return c ? c->ref_seconds : 0.0; }

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
