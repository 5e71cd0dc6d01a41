/* SPDX-License-Identifier: BSD-3-Clause */
/* The "shm" back-end: ranks on one node sum through an MPI-3 shared-memory
 * window; across nodes one leader per node runs the "mpi" back-end's
 * deterministic allreduce on its node's partial sums.
 *
 * Order of summation (bit-reproducible run to run, whatever the timing):
 * within a node, local ranks 0..L-1 in the order of their ranks in the
 * caller's communicator; then the node sums in the inner algorithm's order
 * over nodes (nodes numbered by their lowest rank; alg_select.c). With one
 * node this is plain rank order 0..P-1, the same bits as the "mpi"
 * back-end's alltoall.
 *
 * Chunks. The buffer is cut, from the end as buckets are, into chunks of
 * `chunk` floats (default 128 KiB; the last one, at the start of the buffer,
 * may be shorter). Chunks, not buckets, are the unit of work, so thousands
 * of tiny buckets cost no more than a few big ones, and a chunk is started
 * once every bucket it overlaps has started. Chunk k of every step has a
 * global sequence number g = step * nchunks + k and travels through slot
 * g % SLOTS of a small ring in the window (SLOTS = min(4, nchunks)); the
 * window holds only the ring (SLOTS chunks per local rank, plus one more
 * ring on a leader across nodes),
 * allocated at create, so memory stays bounded whatever the buffer size and
 * the data stays in cache between the phases below.
 *
 * Phases of chunk g on local rank p (slices of a chunk are cut at multiples
 * of 16 floats, slice q = [q*m/L, (q+1)*m/L) rounded down, so two ranks
 * never write one cache line):
 *   copy-in:  p copies the slices q != p of its buffer into its own segment
 *             of the slot (its own slice is read in place, never copied).
 *   reduce:   once every local rank has copied g in, p sums slice p over
 *             local ranks 0..L-1 (its own slice from its buffer, the others'
 *             from their segments) and writes the sum to its buffer and to
 *             slice p of its own segment (unused by copy-in).
 *   copy-out: once every local rank has reduced g, p copies slices q != p
 *             from segment q into its buffer; the slot is then free for
 *             chunk g + SLOTS once every local rank has copied out.
 * Each rank thus reads its buffer from memory once and writes it once (as
 * memcpy would); the rest, per chunk, is (L-1)/L of it copied into the ring
 * plus 1/L summed into it, and 2(L-1)/L read from the others' segments,
 * all in cache.
 *
 * Across nodes (more than one node): only the leader (local rank 0) copies
 * out the node's partial sums of chunk g; it then starts chunk g as a bucket
 * of an inner "mpi" back-end on a communicator of the leaders; when that
 * finishes, it copies the final sums into slot g % SLOTS of a second ring
 * in its segment, from which the other local ranks copy them out.
 *
 * Synchronisation. Each local rank publishes monotonic counters (chunks
 * copied in, reduced, released from ring A, published to / copied out of
 * ring B) in a cache line of its own segment, with C11 release stores; the
 * others read them with acquire loads. No barrier is needed at step
 * boundaries: the counters only grow, and a slot is reused only when every
 * rank has released it. A waiting rank spins briefly (~30 us) with a pause
 * instruction, then calls sched_yield a few times, then sleeps 20 us at a
 * time (so its core goes idle and a descheduled peer can run there); when
 * the real node holds more ranks than this process may run on cores
 * (oversubscription), it skips the spinning, which would only steal the
 * core of the rank it waits for.
 * The window is in a passive-target epoch (MPI_Win_lock_all) for its whole
 * life, as load/store access to shared windows requires.
 *
 * Overlap: tsr_comm_ready_from (the engine's progress call) does every
 * phase that can be done without waiting: it copies in the chunks just
 * declared ready (while they are hot in cache) and reduces and copies out
 * chunks the other local ranks have already provided. tsr_comm_wait does
 * the rest, blocking.
 *
 * Hooks read at create (every rank must see the same values; create
 * checks that they agree and fails on every rank if not):
 *   TSR_COMM_FAKE_NODES=K   test hook: split the ranks into K "nodes" by
 *       rank blocks, within the real nodes, so one machine can exercise the
 *       hierarchical path. Rank r of P is on fake node floor(((r+1)K-1)/P):
 *       the first nodes get the smaller blocks (3 ranks, K=2: {0}, {1,2}).
 *       K larger than P is taken as P; unset or empty: real nodes only.
 *   TSR_COMM_SHM_CHUNK=BYTES  chunk size (rounded down to 64 bytes; at
 *       least 64), for tuning and for tests that want many chunks.
 *   TSR_COMM_SHM_SYNC=barrier benchmarking: single-node steps run in
 *       tsr_comm_wait in lock step, chunk by chunk, separated by
 *       MPI_Win_sync + MPI_Barrier on the node communicator instead of the
 *       counters. ("atomic", the default, is the counter scheme above; the
 *       hierarchical path always uses it.) */
#include "comm/backend.h"
#include "comm/shm_internal.h"
#include "tessera/error.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- environment hooks ------------------------------------------------- */

/* -1: invalid; 0: unset; else the positive value. */
long tsr_shm_env_long(const char *name, long max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 1)
        return -1;
    return x > max ? max : x;
}

/* 0 atomic (default), 1 barrier, -1 invalid. */
int tsr_shm_env_sync(void)
{
    const char *v = getenv("TSR_COMM_SHM_SYNC");
    if (!v || !*v || strcmp(v, "atomic") == 0)
        return 0;
    if (strcmp(v, "barrier") == 0)
        return 1;
    return -1;
}

/* The node communicator: real shared-memory nodes, cut further into K
 * fake nodes by rank blocks when K > 0. */
int tsr_shm_node_split(MPI_Comm comm, int rank, int size, long fake, MPI_Comm *node, int *real_size)
{
    MPI_Comm real = MPI_COMM_NULL;
    *node = MPI_COMM_NULL;
    int err = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &real);
    if (err != MPI_SUCCESS)
        return err;
    MPI_Comm_size(real, real_size);
    if (fake <= 0) {
        *node = real;
        return MPI_SUCCESS;
    }
    long k = fake > size ? size : fake;
    int color = (int)((((long)rank + 1) * k - 1) / size);
    err = MPI_Comm_split(real, color, rank, node);
    MPI_Comm_free(&real);
    return err;
}

int tsr_shm_fail(int err, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error code %d", err);
    return tsr_error_set(TSR_EMPI, "comm: shm: %s failed: %s", call, text);
}

/* Collective over comm. Usable wherever MPI-3 shared windows are (every
 * MPI-3 library), so at least 1; preferred (20, above "mpi"'s 10) when some
 * node holds more than one rank of comm. Not under SimGrid's SMPI, whose
 * simulated ranks share no real memory model (no MPI_Win_sync, and spin
 * waits would turn into simulated time). */
static int shm_available(MPI_Comm comm, int on_gpu)
{
    int rank = 0, size = 1;
#ifdef TSR_SIMGRID
    (void)comm;
    (void)on_gpu;
    return 0;
#endif
    if (on_gpu)
        return 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    long fake = tsr_shm_env_long("TSR_COMM_FAKE_NODES", size);
    MPI_Comm node = MPI_COMM_NULL;
    int local = 1, most = 1;
    int real_size = 1;
    if (tsr_shm_node_split(comm, rank, size, fake < 0 ? 0 : fake, &node, &real_size) == MPI_SUCCESS &&
        node != MPI_COMM_NULL) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    if (MPI_Allreduce(&local, &most, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        most = 1;
    return most > 1 ? 20 : 1;
}

/* ---- waiting ------------------------------------------------------------ */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One step of backing off; *tries counts since the last progress. */
static void backoff(const shm_state_t *s, unsigned *tries)
{
    unsigned t = (*tries)++;
    comm_idle(s->idle);
    unsigned spin = s->oversub ? 0 : SPIN_LIMIT;
    if (t < spin) {
        for (int i = 0; i < 8; i++)
            cpu_relax();
    } else if (t < spin + YIELD_LIMIT) {
        sched_yield();
    } else {
        /* The peer is not running (another process holds its core): sleep,
         * so that this core is idle and the scheduler can run it here. */
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

/* Whether `ranks` processes on this machine outnumber the cores they can
 * run on: the online CPUs, or this process's affinity mask when it allows
 * several (a cpuset, or --bind-to none under a container's limit). A mask
 * of one core means ranks were bound one per core, which says nothing
 * about oversubscription. */
int tsr_shm_oversubscribed(int ranks)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && ranks > online)
        return 1;
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1)
        return ranks > CPU_COUNT(&set);
#endif
    return 0;
}

/* ---- arithmetic ----------------------------------------------------------- */

/* Start of slice q of a chunk of m floats split over L ranks. */
static inline size_t slice_lo(size_t q, size_t m, size_t L)
{
    return q >= L ? m : (q * m / L) & ~(size_t)(ALIGN_FLOATS - 1);
}

/* The sums run in blocks of VEC floats with a scalar tail: at -O2 gcc
 * only vectorises loops whose trip count is a known multiple of the vector
 * width. On x86-64 with gcc, the kernels are also cloned for AVX2 and
 * AVX-512 and picked at load time (the baseline is SSE2). Each element is
 * still one float addition per contribution in a fixed order: no
 * reassociation, no FMA, so every clone gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VEC_CLONES
#endif
enum { VEC = 16 };

/* acc[i] += src[i]. With two local ranks acc is this rank's slice in its
 * buffer and src the peer's copy: IEEE addition is commutative, so the sum
 * has the bits of "local rank 0's value + local rank 1's value" either way
 * (NaN payloads aside). */
VEC_CLONES static void add_into(float *restrict acc, const float *restrict src, size_t m)
{
    size_t i = 0;
    for (; i + VEC <= m; i += VEC)
        for (size_t j = i; j < i + VEC; j++)
            acc[j] += src[j];
    for (; i < m; i++)
        acc[i] += src[i];
}

/* ---- the phases of one chunk ------------------------------------------------ */

static inline size_t slot_of(const shm_state_t *s, size_t k) { return (size_t)((s->base + k) % s->slots); }

static inline float *seg(const shm_state_t *s, int q, size_t k) { return s->ring[q] + slot_of(s, k) * s->chunk; }

static void copy_in(shm_state_t *s, size_t k)
{
    size_t L = (size_t)s->lsize, p = (size_t)s->lrank, m = s->chunks[k].len;
    const float *src = s->buf + s->chunks[k].start;
    float *dst = seg(s, s->lrank, k);
    size_t lo = slice_lo(p, m, L), hi = slice_lo(p + 1, m, L);
    if (lo > 0)
        memcpy(dst, src, lo * sizeof *dst);
    if (hi < m)
        memcpy(dst + hi, src + hi, (m - hi) * sizeof *dst);
}

/* One block of the slice summed over the L (a power of two) local ranks as
 * a perfect binary tree: a binary counter of partial sums, equal-sized
 * neighbours merged as they complete. */
static void tree_block(shm_state_t *s, size_t k, size_t i0, size_t c, float *acc)
{
    enum { LEVELS = 12 }; /* 4096 local ranks */
    static _Thread_local float part[LEVELS][SUM_BLOCK];
    size_t size[LEVELS], L = (size_t)s->lsize;
    int top = 0;
    for (size_t q = 0; q < L; q++) {
        const float *src = q == (size_t)s->lrank ? s->buf + s->chunks[k].start + i0 : seg(s, (int)q, k) + i0;
        if (top > 0 && size[top - 1] == 1) {
            add_into(part[top - 1], src, c);
            size[top - 1] = 2;
            for (; top > 1 && size[top - 2] == size[top - 1]; top--) {
                add_into(part[top - 2], part[top - 1], c);
                size[top - 2] *= 2;
            }
        } else if (top < LEVELS) {
            memcpy(part[top], src, c * sizeof(float));
            size[top++] = 1;
        }
    }
    memcpy(acc, part[0], c * sizeof(float));
}

/* Sums slice p of chunk k over the local ranks into this rank's buffer,
 * then copies it to slice p of its own segment for the others. Summing in
 * place and then copying (rather than storing both in one loop) matters:
 * the segment's lines were last read by the other ranks, and ordinary
 * stores into them stall on the coherence traffic; memcpy's full-line
 * stores do not (2x faster on a 2-core EPYC VM). Across nodes the
 * buffer's copy is the node's partial sum and is overwritten by the final
 * one later. */
static void reduce(shm_state_t *s, size_t k)
{
    size_t L = (size_t)s->lsize, p = (size_t)s->lrank, m = s->chunks[k].len;
    size_t lo = slice_lo(p, m, L), hi = slice_lo(p + 1, m, L);
    if (hi <= lo)
        return;
    float *mine = s->buf + s->chunks[k].start + lo;
    float *out = seg(s, s->lrank, k) + lo;
    if (L == 2) {
        add_into(mine, seg(s, (int)(1 - p), k) + lo, hi - lo);
        memcpy(out, mine, (hi - lo) * sizeof *out);
        return;
    }
    /* Local rank order 0, 1, ..., L-1, a block at a time (the block stays in
     * L1; this rank's own values are read in place). */
    float acc[SUM_BLOCK];
    for (size_t i0 = lo; i0 < hi; i0 += SUM_BLOCK) {
        size_t c = hi - i0 < SUM_BLOCK ? hi - i0 : SUM_BLOCK;
        if (s->tree)
            tree_block(s, k, i0, c, acc);
        else
            for (size_t q = 0; q < L; q++) {
                const float *src = q == p ? s->buf + s->chunks[k].start + i0 : seg(s, (int)q, k) + i0;
                if (q == 0)
                    memcpy(acc, src, c * sizeof *acc);
                else
                    add_into(acc, src, c);
            }
        memcpy(mine + (i0 - lo), acc, c * sizeof *acc);
        memcpy(out + (i0 - lo), acc, c * sizeof *acc);
    }
}

static void copy_out(shm_state_t *s, size_t k)
{
    size_t L = (size_t)s->lsize, m = s->chunks[k].len;
    float *dst = s->buf + s->chunks[k].start;
    for (size_t q = 0; q < L; q++) {
        if (q == (size_t)s->lrank)
            continue;
        size_t lo = slice_lo(q, m, L), hi = slice_lo(q + 1, m, L);
        if (hi > lo)
            memcpy(dst + lo, seg(s, (int)q, k) + lo, (hi - lo) * sizeof *dst);
    }
}

static inline float *seg_b(const shm_state_t *s, size_t k) { return s->ring_b + slot_of(s, k) * s->chunk; }

/* Every local rank's counter at offset has reached target (self included). */
static int all_reached(const shm_state_t *s, size_t offset, uint64_t target)
{
    for (int q = 0; q < s->lsize; q++) {
        _Atomic uint64_t *f = (_Atomic uint64_t *)((char *)s->ctrl[q] + offset);
        if (atomic_load_explicit(f, memory_order_acquire) < target)
            return 0;
    }
    return 1;
}

static void publish(const shm_state_t *s, size_t offset, uint64_t value)
{
    _Atomic uint64_t *f = (_Atomic uint64_t *)((char *)s->ctrl[s->lrank] + offset);
    atomic_store_explicit(f, value, memory_order_release);
}

#define OFF(field) offsetof(shm_ctrl_t, field)

static int inner_fail(int rc) { return tsr_error_prefix(rc, "comm: shm: between nodes: "); }

/* Does every phase that needs no waiting, as long as any can be done.
 * Sets *moved when something was done. */
static int advance(shm_state_t *s, int *moved)
{
    const int L = s->lsize, p = s->lrank, leader = p == 0;
    const size_t nch = s->nch;
    *moved = 0;
    for (;;) {
        int any = 0;
        if (L > 1) {
            /* copy-out of ring A: every rank on one node, only the leader
             * (the node's partial sums) across nodes */
            if ((!s->hier || leader) && s->kout < s->kred && all_reached(s, OFF(reduced), s->base + s->kout + 1)) {
                copy_out(s, s->kout);
                s->kout++;
                publish(s, OFF(freed), s->base + s->kout);
                any = 1;
            }
            if (s->kred < s->kin && all_reached(s, OFF(copied), s->base + s->kred + 1)) {
                reduce(s, s->kred);
                s->kred++;
                publish(s, OFF(reduced), s->base + s->kred);
                if (s->hier && !leader) { /* never reads ring A for this chunk again */
                    s->kout = s->kred;
                    publish(s, OFF(freed), s->base + s->kout);
                }
                any = 1;
            }
            if (s->kin < nch && s->chunks[s->kin].start >= s->ready_lo &&
                (s->base + s->kin < s->slots || all_reached(s, OFF(freed), s->base + s->kin + 1 - s->slots))) {
                copy_in(s, s->kin);
                s->kin++;
                publish(s, OFF(copied), s->base + s->kin);
                any = 1;
            }
        } else {
            /* alone on the node: the buffer already holds the node's sums */
            while (s->kout < nch && s->chunks[s->kout].start >= s->ready_lo) {
                s->kout++;
                any = 1;
            }
            s->kin = s->kred = s->kout;
        }
        if (s->hier && leader) {
            while (s->kstart < s->kout) {
                int rc = s->inner_be->start(s->inner, s->kstart);
                if (rc)
                    return inner_fail(rc);
                s->kstart++;
                any = 1;
            }
            if (s->kfin < s->kstart) {
                int rc = s->inner_be->progress(s->inner);
                if (rc)
                    return inner_fail(rc);
                size_t done = s->inner_be->finished(s->inner);
                while (s->kfin < done) {
                    if (L > 1) {
                        uint64_t g = s->base + s->kfin;
                        if (g >= s->slots && !all_reached(s, OFF(freed_b), g + 1 - s->slots))
                            break;
                        memcpy(seg_b(s, s->kfin), s->buf + s->chunks[s->kfin].start,
                               s->chunks[s->kfin].len * sizeof(float));
                        publish(s, OFF(final), g + 1);
                        /* the leader never reads ring B: keep its freed_b
                         * current so all_reached above may include it */
                        publish(s, OFF(freed_b), g + 1);
                    }
                    s->kfin++;
                    any = 1;
                }
            }
        } else if (s->hier) {
            if (s->kfin < s->nch &&
                atomic_load_explicit(&s->ctrl[0]->final, memory_order_acquire) >= s->base + s->kfin + 1) {
                memcpy(s->buf + s->chunks[s->kfin].start, seg_b(s, s->kfin), s->chunks[s->kfin].len * sizeof(float));
                s->kfin++;
                publish(s, OFF(freed_b), s->base + s->kfin);
                any = 1;
            }
        }
        if (!any)
            return TSR_OK;
        *moved = 1;
    }
}

static int step_done(const shm_state_t *s)
{
    if (s->hier)
        return s->kfin == s->nch;
    return s->kout == s->nch;
}

/* ---- per step ------------------------------------------------------------------ */

/* The engine starts buckets in order and they are suffixes of the buffer
 * growing downwards: recording how far down the buffer is ready is all
 * start has to do (O(1), however many tiny buckets there are). */
static int shm_start(void *state, size_t b)
{
    shm_state_t *s = state;
    if (s->buckets[b].start < s->ready_lo)
        s->ready_lo = s->buckets[b].start;
    return TSR_OK;
}

static int shm_progress(void *state)
{
    shm_state_t *s = state;
    if (s->barrier_mode)
        return TSR_OK;
    int moved = 0;
    return advance(s, &moved);
}

static void reset_step(shm_state_t *s)
{
    s->base += s->nch;
    s->ready_lo = s->n;
    s->kin = s->kred = s->kout = s->kstart = s->kfin = 0;
}

/* MPI_Barrier on the node, polled so that the engine's owner can watch it. */
static int node_barrier(shm_state_t *s)
{
    if (!s->idle || !s->idle->fn)
        return MPI_Barrier(s->node);
    MPI_Request req;
    int err = MPI_Ibarrier(s->node, &req);
    for (int flag = 0; err == MPI_SUCCESS && !flag;) {
        err = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
        if (!flag)
            comm_idle(s->idle);
    }
    return err;
}

static int barrier_step(shm_state_t *s)
{
    for (size_t k = 0; k < s->nch; k++) {
        copy_in(s, k);
        MPI_Win_sync(s->win);
        int err = node_barrier(s);
        if (err != MPI_SUCCESS)
            return tsr_shm_fail(err, "MPI_Barrier");
        MPI_Win_sync(s->win);
        reduce(s, k);
        MPI_Win_sync(s->win);
        err = node_barrier(s);
        if (err != MPI_SUCCESS)
            return tsr_shm_fail(err, "MPI_Barrier");
        MPI_Win_sync(s->win);
        copy_out(s, k);
    }
    return TSR_OK;
}

static int shm_wait(void *state)
{
    shm_state_t *s = state;
    s->ready_lo = 0;
    int rc = TSR_OK;
    if (s->barrier_mode && s->lsize > 1) {
        rc = barrier_step(s);
    } else {
        unsigned tries = 0;
        for (;;) {
            int moved = 0;
            rc = advance(s, &moved);
            if (rc || step_done(s))
                break;
            if (moved)
                tries = 0;
            else if (s->inner && s->kfin < s->kstart && tries >= SPIN_LIMIT + YIELD_LIMIT) {
                comm_idle(s->idle);
                sched_yield(); /* MPI progresses only when polled: never sleep */
            } else
                backoff(s, &tries);
        }
        if (!rc && s->inner) {
            rc = s->inner_be->wait(s->inner); /* everything has finished: resets it */
            if (rc)
                rc = inner_fail(rc);
        }
    }
    reset_step(s);
    return rc;
}

/* The leaders' algorithm for the chunk holding bucket b's first float. */
static const char *shm_algorithm(void *state, size_t b)
{
    const shm_state_t *s = state;
    if (!s->inner || !s->inner_be->algorithm || s->n == 0)
        return NULL;
    return s->inner_be->algorithm(s->inner, (s->n - 1 - s->buckets[b].start) / s->chunk);
}

const comm_backend_t tsr_comm_shm_component = {
    .name = "shm",
    .available = shm_available,
    .create = tsr_shm_create,
    .destroy = tsr_shm_destroy,
    .start = shm_start,
    .progress = shm_progress,
    .wait = shm_wait,
    .finished = NULL,
    .algorithm = shm_algorithm,
};
