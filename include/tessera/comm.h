/* SPDX-License-Identifier: BSD-3-Clause */
/* The gradient reduction engine. A flat float buffer is cut into buckets
 * (from the end, since backward produces the last layer first); each bucket
 * is summed across ranks as soon as it is marked ready, and tsr_comm_wait
 * finishes them all. The sum for every element is taken in an order fixed
 * by the algorithm, the world size and the element's place in its bucket,
 * whatever the timing, so results are bit-reproducible for a given world
 * size and algorithm (the algorithms differ in the order, so in the last
 * bits; "alltoall" keeps rank order 0..P-1).
 *
 * Back-ends (Open MPI component style, chosen by name at create):
 *   "mpi": an allreduce of each bucket by point-to-point schedules, picked
 *          per bucket size and world ("auto") or by name: "ring"
 *          (reduce-scatter and allgather around a ring, 2(P-1) rounds),
 *          "rabenseifner" (recursive halving, then doubling, 2 log2 P
 *          rounds), "tree" (recursive doubling, log2 P rounds), or
 *          "alltoall" (the original MPI_Ialltoallv reduce-scatter with a
 *          rank-ordered sum, then MPI_Iallgatherv). Each has a fixed
 *          summation order (src/comm/alg_select.c).
 *   "shm": ranks on a node sum through an MPI-3 shared-memory window, chunk
 *          by chunk, in local-rank order; one leader per node runs "mpi"
 *          across nodes (sum order: local ranks, then the leaders' algorithm). See
 *          src/comm/backend_shm.c.
 *   "nccl": GPU buffers: ncclAllReduce per bucket on a communication
 *          stream (src/comm/backend_nccl.c); needs a build with NCCL.
 *   "auto": "nccl" for GPU buffers; else "shm" when some node holds more
 *          than one rank, else "mpi".
 * GPU buffers with "mpi" or "shm" (by name, or "auto" in a build without
 * NCCL) are staged through a pinned host copy: correct everywhere, but
 * without overlap (see tsr_comm_staged). On a single rank "auto" does no
 * work for GPU buffers either (no NCCL set-up, no per-step wait). */
#ifndef TESSERA_COMM_H
#define TESSERA_COMM_H
#include "tessera/api.h"
#include <mpi.h>
#include <stddef.h>
#include "tessera/compute.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_comm tsr_comm_t;

/* Binds an engine to buf[0..n) on comm (which it duplicates). bucket_bytes
 * is rounded to whole floats; 0 means one bucket. All scratch memory is
 * allocated here: the per-step calls allocate nothing. Collective. */
TSR_API int tsr_comm_create(MPI_Comm comm, const char *backend, float *buf, size_t n, size_t bucket_bytes,
                            tsr_comm_t **out);
/* The same for a buffer in GPU memory. With "nccl" (or "auto" in a build
 * with NCCL) each bucket's reduction is queued on a communication stream
 * after the work already queued on the GPU's stream when it is marked
 * ready, so backward's kernels need not have finished. With "mpi" or
 * "shm", marking a range ready copies it to the host (waiting for the
 * stream) and tsr_comm_wait queues the upload of the sums on the GPU's
 * stream. Either way, work queued on that stream after tsr_comm_wait sees
 * the sums. */
TSR_API int tsr_comm_create_gpu(MPI_Comm comm, const char *backend, tsr_gpu_t *gpu, float *buf, size_t n,
                                size_t bucket_bytes, tsr_comm_t **out);
/* Everything create takes; zero-initialised fields mean the defaults. */
typedef struct tsr_comm_options {
    const char *backend;   /* NULL or "auto", "mpi", "shm", "nccl" */
    const char *algorithm; /* the allreduce between ranks ("mpi") or node
                            * leaders ("shm"): NULL or "auto", "ring",
                            * "rabenseifner", "tree", "alltoall", "hier"
                            * (ring within each switch's ranks, across
                            * switches, within again: needs a topology);
                            * "nccl" ignores it (NCCL picks its own) */
    const char *topology;  /* which ranks share a leaf switch, for "hier"
                            * (auto never picks it): NULL or "auto" (SLURM_TOPOLOGY_ADDR,
                            * set under SLURM's topology/tree plugin), "none",
                            * "node" (ranks grouped by host), or the path of
                            * a SLURM topology.conf */
    size_t bucket_bytes;   /* 0: one bucket */
    tsr_gpu_t *gpu;        /* non-NULL: buf is device memory on this GPU */
    int fixed_tree;        /* every element summed over ranks as a perfect binary
                            * tree in rank order (train.reproducible = world): a
                            * power-of-two communicator; algorithm rabenseifner or
                            * tree (auto: rabenseifner); shm only where each node
                            * holds the same power-of-two number of consecutive
                            * ranks (auto then takes mpi); never nccl */
    tsr_precision_t half;  /* bf16 / fp16: "nccl" sums a half copy of each bucket
                            * (runtime.comm_precision = compute); fp32 (0): buf as is */
} tsr_comm_options_t;
TSR_API int tsr_comm_create_opts(MPI_Comm comm, const tsr_comm_options_t *opts, float *buf, size_t n, tsr_comm_t **out);
TSR_API void tsr_comm_destroy(tsr_comm_t *c);

TSR_API const char *tsr_comm_backend(const tsr_comm_t *c);
/* TSR_OK, or the code of the first failed call of the engine, with its
 * message set again (sticky: a failure inside ready_from, e.g. from
 * backward's callback, shows here; every later call fails with it). */
TSR_API int tsr_comm_status(const tsr_comm_t *c);
/* 1 when a GPU buffer is summed through a host copy by a host back-end
 * (never on a single rank, where nothing is copied). */
TSR_API int tsr_comm_staged(const tsr_comm_t *c);
TSR_API size_t tsr_comm_nbuckets(const tsr_comm_t *c);
/* The algorithm bucket b runs between ranks on this rank ("ring", ...),
 * or NULL where none runs (one rank; "shm" on one node or off a leader;
 * "nccl"). */
TSR_API const char *tsr_comm_algorithm(const tsr_comm_t *c, size_t bucket);

/* Declares buf[offset..n) final for this step: every bucket lying wholly in
 * it that has not started yet starts now (buckets start in order from the
 * end of the buffer, on every rank). Also drives progress of buckets in
 * flight. Call with offset 0 (or call tsr_comm_wait) to start the rest. */
TSR_API int tsr_comm_ready_from(tsr_comm_t *c, size_t offset);
/* Starts whatever has not started and waits until buf holds the sums.
 * The engine is then ready for the next step. */
TSR_API int tsr_comm_wait(tsr_comm_t *c);
/* fn(arg) is called in every loop where the engine waits for other ranks
 * (a stall watchdog's poll; tsr_runtime_watch_poll); NULL: none. */
TSR_API void tsr_comm_set_idle(tsr_comm_t *c, void (*fn)(void *arg), void *arg);
/* tsr_comm_ready_from(c, 0) + tsr_comm_wait(c). */
TSR_API int tsr_comm_allreduce(tsr_comm_t *c);

/* Seconds spent inside tsr_comm_wait in the last step (the part of the
 * reduction that was not hidden behind compute). */
TSR_API double tsr_comm_last_wait_seconds(const tsr_comm_t *c);

/* How much of a step's reduction is hidden behind compute. calibrate
 * (collective; it sums the buffer in place reps times, so call it while
 * the buffer is zero or may be overwritten) times a blocking allreduce of
 * the whole buffer, outside any step: what the reduction costs when
 * nothing overlaps it (median of reps after an untimed round; buffers of
 * 16 MiB and more are timed once, from 256 MiB without the untimed round). Per step, exposed is what the
 * reduction cost the caller's thread: the wait plus the time inside
 * ready_from (work a back-end does inline); hidden is reference minus
 * exposed, at least 0. */
TSR_API int tsr_comm_calibrate(tsr_comm_t *c, int reps);
TSR_API double tsr_comm_reference_seconds(const tsr_comm_t *c);
TSR_API double tsr_comm_last_exposed_seconds(const tsr_comm_t *c);
TSR_API double tsr_comm_last_hidden_seconds(const tsr_comm_t *c);

#ifdef __cplusplus
}
#endif
#endif
