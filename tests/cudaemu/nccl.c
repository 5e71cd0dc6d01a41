/* SPDX-License-Identifier: BSD-3-Clause */
/* NCCL for the CUDA emulator (tests/cudaemu): what the "nccl" back-end
 * calls, over MPI, so that back-end's own code (set-up, agreement, events,
 * the per-bucket queueing, abort) runs in CI and multi-rank GPU training
 * runs somewhere, single-GPU device machines being all there is.
 *
 * ncclCommInitRank splits MPI_COMM_WORLD by the unique id, so every world
 * rank must take part, as in tessera's use (the training world, the
 * tests). ncclAllReduce is MPI_Allreduce of floats, complete when it
 * returns, which the emulator's streams (every call complete on return)
 * match. Only float sums: anything else is ncclInvalidArgument, as tessera
 * asks for nothing else. */
#include <cudaemu_half.h>
#include <nccl.h>

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ncclComm {
    MPI_Comm comm;
    int rank, nranks;
};

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    }
    return "unknown result code";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    static unsigned counter;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "tessera-cudaemu-nccl %ld %u", (long)getpid(), counter++);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    *comm = NULL;
    uint32_t h = 2166136261u; /* FNV-1a of the id: the split's color */
    for (size_t i = 0; i < sizeof id.internal; i++)
        h = (h ^ (unsigned char)id.internal[i]) * 16777619u;
    struct ncclComm *c = calloc(1, sizeof *c);
    if (!c)
        return ncclSystemError;
    if (MPI_Comm_split(MPI_COMM_WORLD, (int)(h & 0x7fffffff), rank, &c->comm) != MPI_SUCCESS) {
        free(c);
        return ncclSystemError;
    }
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->nranks);
    if (c->nranks != nranks || c->rank != rank) {
        MPI_Comm_free(&c->comm);
        free(c);
        return ncclInvalidArgument;
    }
    *comm = c;
    return ncclSuccess;
}

static ncclResult_t release(ncclComm_t comm)
{
    if (!comm)
        return ncclInvalidArgument;
    MPI_Comm_free(&comm->comm);
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return release(comm); }

ncclResult_t ncclCommDestroy(ncclComm_t comm) { return release(comm); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async)
{
    if (!comm || !async)
        return ncclInvalidArgument;
    *async = ncclSuccess;
    return ncclSuccess;
}

/* bf16 / fp16 sums: widened to float, summed, rounded once (NCCL rounds
 * each hop's partial sum; the emulator checks the plumbing, not that). */
static ncclResult_t half_sum(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t t, ncclComm_t comm)
{
    float *f = calloc(count ? count : 1, sizeof *f);
    if (!f)
        return ncclSystemError;
    for (size_t i = 0; i < count; i++)
        f[i] = t == ncclBfloat16 ? __bfloat162float(((const __nv_bfloat16 *)sendbuff)[i])
                                 : __half2float(((const __half *)sendbuff)[i]);
    ncclResult_t r = ncclAllReduce(f, f, count, ncclFloat, ncclSum, comm, NULL);
    for (size_t i = 0; r == ncclSuccess && i < count; i++) {
        if (t == ncclBfloat16)
            ((__nv_bfloat16 *)recvbuff)[i] = __float2bfloat16(f[i]);
        else
            ((__half *)recvbuff)[i] = __float2half(f[i]);
    }
    free(f);
    return r;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream)
{
    (void)stream;
    if (comm && (datatype == ncclBfloat16 || datatype == ncclHalf) && op == ncclSum &&
        (!count || (sendbuff && recvbuff)))
        return half_sum(sendbuff, recvbuff, count, datatype, comm);
    if (!comm || datatype != ncclFloat || op != ncclSum || (count && (!sendbuff || !recvbuff)))
        return ncclInvalidArgument;
    float *out = recvbuff;
    const float *in = sendbuff;
    for (size_t done = 0; done < count;) {
        int n = count - done > INT_MAX ? INT_MAX : (int)(count - done);
        const void *src = in == out ? MPI_IN_PLACE : (const void *)(in + done);
        if (MPI_Allreduce(src, out + done, n, MPI_FLOAT, MPI_SUM, comm->comm) != MPI_SUCCESS)
            return ncclSystemError;
        done += (size_t)n;
    }
    return ncclSuccess;
}
