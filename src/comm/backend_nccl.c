/* SPDX-License-Identifier: BSD-3-Clause */
/* The "nccl" back-end: gradients in GPU memory summed by ncclAllReduce.
 *
 * Overlap with backward without host waits: when bucket b is started, an
 * event is recorded on the GPU's compute stream (after the kernels that
 * produce the bucket's gradients were queued), the communication stream
 * waits for that event, and ncclAllReduce of the bucket is queued on the
 * communication stream. Backward goes on queueing earlier layers on the
 * compute stream while NCCL reduces later ones. wait() blocks the host on
 * the communication stream, then asks NCCL for asynchronous errors (a
 * peer that died shows up there, not as a failed call).
 *
 * Reproducibility: NCCL sums in a fixed order for a given communicator
 * (rank count, topology, algorithm and protocol), so repeated runs on the
 * same allocation give bit-identical sums; a different GPU count or
 * interconnect can change the order. NCCL_ALGO / NCCL_PROTO pin it.
 *
 * Mixed precision (setup->half, runtime.comm_precision = compute): each
 * bucket is cast to bf16/fp16 on the communication stream, summed as
 * ncclBfloat16/ncclHalf (half the bytes on the wire, each rank's partial
 * sums rounded to the half type, as PyTorch DDP with a half gradient
 * bucket) and cast back into the fp32 buffer.
 *
 * The unique id travels by MPI_Bcast; ncclCommInitRank needs the calling
 * thread's device set, which tsr_gpu_create did. */
#include "comm/backend.h"
#include "compute/gpu_train.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

#ifdef TSR_HAVE_NCCL
#include <nccl.h>

typedef struct nccl_state {
    ncclComm_t nc;
    MPI_Comm comm;
    tsr_gpu_t *gpu;
    void *stream; /* communication stream */
    void **ready; /* one event per bucket, on the compute stream */
    float *buf;
    tsr_precision_t half;
    void *hbuf; /* half: the half copy of buf */
    const comm_bucket_t *buckets;
    size_t nbuckets;
    int rank;
    const comm_idle_t *idle;
} nccl_state_t;

static int nccl_fail(ncclResult_t r, const char *what, int rank)
{
    return tsr_error_set(TSR_EINTERNAL, "comm nccl: rank %d: %s failed: %s", rank, what, ncclGetErrorString(r));
}

/* Only device buffers; every rank must have one (the caller agrees). */
static int nccl_available(MPI_Comm comm, int on_gpu)
{
    (void)comm;
    return on_gpu ? 30 : 0;
}

static void nccl_destroy(void *state)
{
    nccl_state_t *s = state;
    if (!s)
        return;
    /* Abort, not destroy: destroy waits for pending work, which never ends
     * when a peer failed mid-step; with nothing pending they are alike. */
    if (s->nc)
        ncclCommAbort(s->nc);
    for (size_t b = 0; s->ready && b < s->nbuckets; b++)
        tsr_gpu_event_destroy(s->ready[b]);
    free(s->ready);
    tsr_gpu_stream_destroy(s->stream);
    tsr_gpu_free(s->gpu, s->hbuf);
    if (s->comm != MPI_COMM_NULL)
        MPI_Comm_free(&s->comm);
    free(s);
}

static int nccl_create(const comm_setup_t *setup, void **state)
{
    int rc = TSR_OK;
    nccl_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return tsr_error_set(TSR_ENOMEM, "comm nccl: out of memory");
    s->comm = MPI_COMM_NULL;
    s->gpu = setup->gpu;
    s->buf = setup->buf;
    s->buckets = setup->buckets;
    s->nbuckets = setup->nbuckets;
    s->rank = setup->rank;
    s->idle = setup->idle;
    s->half = setup->half;
    if (!s->gpu) {
        /* The same on every rank (the engine's caller agrees on the device). */
        rc = tsr_error_set(TSR_EINVAL, "comm nccl: the buffer must be GPU memory (tsr_comm_create_gpu)");
        goto fail;
    }
    if (MPI_Comm_dup(setup->comm, &s->comm) != MPI_SUCCESS) {
        rc = tsr_error_set(TSR_EMPI, "comm nccl: rank %d: MPI_Comm_dup failed", setup->rank);
        goto fail;
    }
    /* Local failures are only noted: every rank must reach the agreement
     * below, or the others would wait for it forever. */
    rc = tsr_gpu_stream_create(s->gpu, &s->stream);
    if (!rc && s->half != TSR_PRECISION_FP32)
        rc = tsr_gpu_alloc(s->gpu, setup->n * 2, &s->hbuf); /* bf16 and fp16: 2 bytes */
    if (!rc && !(s->ready = calloc(s->nbuckets ? s->nbuckets : 1, sizeof *s->ready)))
        rc = tsr_error_set(TSR_ENOMEM, "comm nccl: out of memory for %zu events", s->nbuckets);
    for (size_t b = 0; !rc && b < s->nbuckets; b++)
        rc = tsr_gpu_event_create(&s->ready[b]);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t r = ncclSuccess;
    if (!rc && setup->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess)
        rc = nccl_fail(r, "ncclGetUniqueId", 0);
    int ok = rc == TSR_OK, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, s->comm);
    if (!all) {
        if (ok)
            rc = tsr_error_set(TSR_EINTERNAL,
                               "comm nccl: rank %d: another rank could not set up its stream, "
                               "events or NCCL id",
                               setup->rank);
        goto fail;
    }
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, s->comm);
    /* Blocking init: a rank that fails inside it may leave the others
     * waiting in it; the stall watchdog does not cover set-up. */
    r = ncclCommInitRank(&s->nc, setup->size, id, setup->rank);
    ok = r == ncclSuccess;
    if (!ok) {
        s->nc = NULL;
        rc = nccl_fail(r, "ncclCommInitRank", setup->rank);
    }
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, s->comm);
    if (!all) {
        if (ok)
            rc = tsr_error_set(TSR_EINTERNAL,
                               "comm nccl: rank %d: another rank could not join the NCCL "
                               "communicator",
                               setup->rank);
        goto fail;
    }
    *state = s;
    return TSR_OK;
fail:
    nccl_destroy(s);
    return rc;
}

static int nccl_start(void *state, size_t b)
{
    nccl_state_t *s = state;
    const comm_bucket_t *bk = &s->buckets[b];
    int rc = tsr_gpu_event_record(s->ready[b], tsr_gpu_stream(s->gpu));
    if (!rc)
        rc = tsr_gpu_stream_wait_event(s->stream, s->ready[b]);
    if (rc)
        return rc;
    float *p = s->buf + bk->start;
    if (s->half == TSR_PRECISION_FP32) {
        ncclResult_t r = ncclAllReduce(p, p, bk->len, ncclFloat, ncclSum, s->nc, (cudaStream_t)s->stream);
        return r == ncclSuccess ? TSR_OK : nccl_fail(r, "ncclAllReduce", s->rank);
    }
    void *h = (char *)s->hbuf + 2 * bk->start;
    ncclDataType_t t = s->half == TSR_PRECISION_BF16 ? ncclBfloat16 : ncclHalf;
    if ((rc = tsr_gpu_to_half(s->gpu, s->half, p, h, bk->len, s->stream)))
        return rc;
    ncclResult_t r = ncclAllReduce(h, h, bk->len, t, ncclSum, s->nc, (cudaStream_t)s->stream);
    if (r != ncclSuccess)
        return nccl_fail(r, "ncclAllReduce", s->rank);
    return tsr_gpu_from_half(s->gpu, s->half, h, p, bk->len, s->stream);
}

static int nccl_progress(void *state)
{
    (void)state; /* the GPU and NCCL's own threads make progress */
    return TSR_OK;
}

/* Polls rather than cudaStreamSynchronize: a peer that died leaves NCCL's
 * kernels waiting forever, and only the async error says so. */
static int nccl_wait(void *state)
{
    nccl_state_t *s = state;
    for (;;) {
        int done = tsr_gpu_stream_done(s->stream);
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(s->nc, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress) {
            int rc = nccl_fail(async, "an asynchronous NCCL operation", s->rank);
            ncclCommAbort(s->nc);
            s->nc = NULL;
            return rc;
        }
        if (done)
            return done < 0 ? done : TSR_OK;
        comm_idle(s->idle);
    }
}

const comm_backend_t tsr_comm_nccl_component = {
    .name = "nccl",
    .available = nccl_available,
    .create = nccl_create,
    .destroy = nccl_destroy,
    .start = nccl_start,
    .progress = nccl_progress,
    .wait = nccl_wait,
    .finished = NULL,
};

#else /* a build without NCCL: named, never available */

static int none_available(MPI_Comm comm, int on_gpu)
{
    (void)comm;
    (void)on_gpu;
    return 0;
}

static int none_create(const comm_setup_t *setup, void **state)
{
    (void)setup;
    (void)state;
    return tsr_error_set(TSR_ENOTSUP, "comm: this build has no NCCL (configure with TESSERA_WITH_NCCL=ON)");
}

static void none_destroy(void *state) { (void)state; }
static int none_start(void *state, size_t b)
{
    (void)state;
    (void)b;
    return TSR_ENOTSUP;
}
static int none_progress(void *state)
{
    (void)state;
    return TSR_ENOTSUP;
}
static int none_wait(void *state)
{
    (void)state;
    return TSR_ENOTSUP;
}

const comm_backend_t tsr_comm_nccl_component = {
    .name = "nccl",
    .available = none_available,
    .create = none_create,
    .destroy = none_destroy,
    .start = none_start,
    .progress = none_progress,
    .wait = none_wait,
    .finished = NULL,
};
#endif
