/* SPDX-License-Identifier: BSD-3-Clause */
/* The "mpi" back-end: a deterministic allreduce of each bucket, as
 * schedules of nonblocking point-to-point rounds (ring, rabenseifner,
 * tree) or, by name, the original MPI_Ialltoallv/MPI_Iallgatherv pair
 * (alltoall). alg_select.c describes the algorithms, their summation
 * orders and what "auto" picks; mpi_internal.h the state.
 *
 * Pieces. Each bucket is cut into k pieces of equal size (piece i =
 * [i*len/k, (i+1)*len/k) of the bucket; tsr_alg_pieces gives k: up to 16,
 * of 128 KiB and more, for the ring up to 4 or on small worlds up to 16),
 * alltoall buckets into one. A piece is
 * the unit of work: pieces start in order, bucket by bucket, as the engine
 * starts buckets, at most WINDOW of them in flight; the rest wait and
 * start, still in order, as earlier ones finish. Several pieces in flight
 * overlap one piece's sums with another's transfers, and the window bounds
 * memory and the number of requests each poll tests.
 *
 * Progress. Multi-round schedules advance only when polled: start and
 * progress (the engine's ready_from, called as backward produces layers)
 * test every piece in flight and run each one whose round has completed
 * into its next round; wait blocks in MPI_Waitsome on all of their
 * requests and does the same until every piece is done. Round boundaries
 * thus depend on timing, but which data each round adds, and in what
 * order, never does.
 *
 * Messages of piece p carry tag p % TAG_MOD on one duplicate of the
 * caller's communicator: between two ranks, a piece's messages are sent and
 * received in the same order (its schedule), so MPI's in-order matching
 * pairs them right across rounds and steps. alltoall also uses a second
 * duplicate for its allgather (see alg_alltoall.c).
 *
 * Scratch (all allocated at create): per window slot, the largest scratch
 * any piece's algorithm needs (alg_select.c) and, for alltoall, its count
 * and displacement arrays; two requests per slot. */
#include "comm/mpi_internal.h"
#include "tessera/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TSR_SIMGRID
#include <smpi/smpi.h>
#endif

int tsr_mpi_fail(const mpi_state_t *s, int err, const char *call, size_t piece)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error code %d", err);
    if (piece < s->npieces && s->pc) {
        const mpiece_t *p = &s->pc[piece];
        return tsr_error_set(TSR_EMPI, "comm: %s failed for bucket %zu (%zu floats, %s): %s", call, p->bucket, p->len,
                             tsr_alg_name(p->alg), text);
    }
    return tsr_error_set(TSR_EMPI, "comm: %s failed: %s", call, text);
}

void tsr_mpi_charge(const mpi_state_t *s, size_t floats)
{
#ifdef TSR_SIMGRID
    if (s->sum_seconds_per_byte > 0 && floats > 0)
        smpi_execute((double)floats * sizeof(float) * s->sum_seconds_per_byte);
#else
    (void)s;
    (void)floats;
#endif
}

/* Blocks of 16 with a fixed inner count, so -O2 vectorizes them (GCC's
 * cheap model leaves a loop of unknown count scalar); each element is
 * still one addition, in the same operand order. */
enum { VEC = 16 };

static void add_t_first(float *restrict x, const float *restrict t, size_t n)
{
    size_t i = 0;
    for (; i + VEC <= n; i += VEC)
        for (size_t j = 0; j < VEC; j++)
            x[i + j] = t[i + j] + x[i + j];
    for (; i < n; i++)
        x[i] = t[i] + x[i];
}

static void add_x_first(float *restrict x, const float *restrict t, size_t n)
{
    size_t i = 0;
    for (; i + VEC <= n; i += VEC)
        for (size_t j = 0; j < VEC; j++)
            x[i + j] = x[i + j] + t[i + j];
    for (; i < n; i++)
        x[i] = x[i] + t[i];
}

void tsr_mpi_sum_into(const mpi_state_t *s, float *x, const float *t, size_t n, int t_first)
{
    if (s->sums_charged_only) {
        tsr_mpi_charge(s, n);
        return;
    }
    if (t_first)
        add_t_first(x, t, n);
    else
        add_x_first(x, t, n);
    tsr_mpi_charge(s, n);
}

/* Usable on host buffers; "auto" prefers "shm" (20) where ranks share a node. */
static int mpi_available(MPI_Comm comm, int on_gpu)
{
    (void)comm;
    return on_gpu ? 0 : 10;
}

static void mpi_destroy(void *state)
{
    mpi_state_t *s = state;
    if (!s)
        return;
    if (s->comm1 != MPI_COMM_NULL)
        MPI_Comm_free(&s->comm1);
    if (s->comm2 != MPI_COMM_NULL)
        MPI_Comm_free(&s->comm2);
    free(s->pc);
    free(s->first);
    free(s->done);
    free(s->scratch);
    free(s->ints);
    free(s->reqs);
    free(s->indices);
    free(s->runs);
    tsr_topo_destroy(&s->topo);
    free(s);
}

static int bucket_alg(const mpi_state_t *s, size_t len)
{
    return s->alg != TSR_ALG_AUTO ? s->alg : tsr_alg_choose(s->size, len);
}

/* Cuts the buckets into pieces and picks each bucket's algorithm. */
static int plan(mpi_state_t *s, const comm_setup_t *setup, size_t piece_env)
{
    size_t nb = setup->nbuckets, np = 0;
    for (size_t b = 0; b < nb; b++)
        np += tsr_alg_pieces(setup->buckets[b].len, piece_env, bucket_alg(s, setup->buckets[b].len), s->size);
    s->npieces = np;
    s->pc = calloc(np ? np : 1, sizeof *s->pc);
    s->first = calloc(nb + 1, sizeof *s->first);
    s->done = calloc(np ? np : 1, 1);
    if (!s->pc || !s->first || !s->done)
        return tsr_error_set(TSR_ENOMEM, "comm: out of memory for %zu pieces of %zu buckets", np, nb);
    size_t p = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t len = setup->buckets[b].len;
        int alg = bucket_alg(s, len);
        size_t k = tsr_alg_pieces(len, piece_env, alg, s->size);
        s->first[b] = p;
        for (size_t i = 0; i < k; i++, p++) {
            size_t lo = i * len / k, hi = (i + 1) * len / k;
            s->pc[p].base = setup->buf + setup->buckets[b].start + lo;
            s->pc[p].len = hi - lo;
            s->pc[p].bucket = b;
            s->pc[p].alg = alg;
            size_t need = tsr_alg_scratch(s->pc[p].alg, hi - lo, s->size);
            if (need > s->slot_floats)
                s->slot_floats = need;
        }
    }
    s->first[nb] = p;
    return TSR_OK;
}

/* Every rank must cut the same pieces: TSR_COMM_PIECE_KB must agree. */
static int agree_piece(const mpi_state_t *s, size_t piece_bytes)
{
    unsigned long long mine[2] = {piece_bytes, ~(unsigned long long)piece_bytes}, most[2];
    int err = MPI_Allreduce(mine, most, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, s->comm1);
    if (err != MPI_SUCCESS)
        return tsr_mpi_fail(s, err, "MPI_Allreduce", SIZE_MAX);
    if (most[0] != ~most[1])
        return tsr_error_set(TSR_EINVAL, "comm: TSR_COMM_PIECE_KB differs between ranks");
    return TSR_OK;
}

static int mpi_create(const comm_setup_t *setup, void **state)
{
    size_t P = (size_t)setup->size, nb = setup->nbuckets;
    int rc = TSR_OK;
    *state = NULL;
    /* Counts and displacements are ints: every bucket must fit. Checked
     * before anything collective so all ranks fail alike. */
    for (size_t b = 0; b < nb; b++) {
        if (setup->buckets[b].len > (size_t)INT_MAX)
            return tsr_error_set(TSR_EINVAL,
                                 "comm: bucket %zu holds %zu floats, more than MPI's int counts allow (%d); "
                                 "use a smaller bucket size",
                                 b, setup->buckets[b].len, INT_MAX);
    }
    if (setup->algorithm < 0 || setup->algorithm >= TSR_ALG_COUNT)
        return tsr_error_set(TSR_EINVAL, "comm: unknown allreduce algorithm %d", setup->algorithm);
    mpi_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return tsr_error_set(TSR_ENOMEM, "comm: out of memory");
    s->comm1 = s->comm2 = MPI_COMM_NULL;
    s->rank = setup->rank;
    s->size = setup->size;
    s->alg = tsr_alg_resolve(setup->algorithm, setup->size);
    s->idle = setup->idle;
    s->nbuckets = nb;
    if (P == 1) { /* the buffer already holds the sum */
        *state = s;
        return TSR_OK;
    }
#ifdef TSR_SIMGRID
    /* The modelled sum rate, GB/s of sums written (run_scale_bench.sh
     * measures it); the code's real time is not simulated. */
    const char *bw = getenv("TSR_SIM_REDUCE_GBPS");
    double gbps = bw && *bw ? strtod(bw, NULL) : 10.0;
    s->sum_seconds_per_byte = gbps > 0 ? 1e-9 / gbps : 0;
    /* TSR_SIM_SKIP_SUMS=1 (run_scale_bench.sh, whose buffers are SMPI's
     * shared garbage): the sums are charged but not done. The simulated
     * time is the same (the real adds are never timed), and the host no
     * longer pages in and adds P x the buffer, most of a 256-rank
     * simulation's CPU time. */
    const char *skip = getenv("TSR_SIM_SKIP_SUMS");
    s->sums_charged_only = skip && strcmp(skip, "1") == 0;
#endif

    int err = MPI_Comm_dup(setup->comm, &s->comm1);
    if (err != MPI_SUCCESS) {
        s->comm1 = MPI_COMM_NULL;
        rc = tsr_mpi_fail(s, err, "MPI_Comm_dup", SIZE_MAX);
        goto fail;
    }
    MPI_Comm_set_errhandler(s->comm1, MPI_ERRORS_RETURN);
    /* The switches, for hier (collective: every rank gets the same groups
     * or the same error). auto never picks hier (alg_select.c). */
    if (s->alg == TSR_ALG_HIER && (rc = tsr_topo_create(s->comm1, setup->topology, &s->topo)))
        goto fail;
    if (s->alg == TSR_ALG_HIER && s->topo.G == 0) {
        rc = tsr_error_set(TSR_EINVAL,
                           "comm: allreduce algorithm hier needs ranks grouped by leaf switch or node, and "
                           "runtime.topology = %s gives none usable: %s",
                           setup->topology ? setup->topology : "auto", s->topo.why);
        goto fail;
    }
    if (s->alg == TSR_ALG_ALLTOALL) {
        err = MPI_Comm_dup(setup->comm, &s->comm2);
        if (err != MPI_SUCCESS) {
            s->comm2 = MPI_COMM_NULL;
            rc = tsr_mpi_fail(s, err, "MPI_Comm_dup", SIZE_MAX);
            goto fail;
        }
        MPI_Comm_set_errhandler(s->comm2, MPI_ERRORS_RETURN);
    }
    size_t piece_env = tsr_alg_piece_env();
    if ((rc = agree_piece(s, piece_env)) || (rc = plan(s, setup, piece_env)))
        goto fail;
    s->nslots = s->npieces < WINDOW ? s->npieces : WINDOW;
    size_t ns = s->nslots ? s->nslots : 1;
    size_t nints = s->alg == TSR_ALG_ALLTOALL ? ns * 5 * P : 1;
    s->scratch = malloc((s->slot_floats ? ns * s->slot_floats : 1) * sizeof *s->scratch);
    s->ints = calloc(nints, sizeof *s->ints);
    s->reqs = malloc(2 * ns * sizeof *s->reqs);
    s->indices = malloc(2 * ns * sizeof *s->indices);
    s->runs = calloc(ns, sizeof *s->runs);
    if (!s->scratch || !s->ints || !s->reqs || !s->indices || !s->runs) {
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory for %zu pieces in flight (%zu scratch floats each)", ns,
                           s->slot_floats);
        goto fail;
    }
    for (size_t i = 0; i < ns; i++) {
        s->runs[i].piece = SIZE_MAX;
        s->runs[i].req = s->reqs + 2 * i;
        s->runs[i].req[0] = s->runs[i].req[1] = MPI_REQUEST_NULL;
        s->runs[i].tmp = s->scratch + i * s->slot_floats;
        s->runs[i].ints = s->alg == TSR_ALG_ALLTOALL ? s->ints + i * 5 * P : NULL;
    }
    *state = s;
    return TSR_OK;
fail:
    mpi_destroy(s);
    return rc;
}

static int step_of(mpi_state_t *s, mrun_t *run)
{
    switch (s->pc[run->piece].alg) {
    case TSR_ALG_RING: return tsr_alg_ring_step(s, run);
    case TSR_ALG_RABENSEIFNER: return tsr_alg_rhd_step(s, run);
    case TSR_ALG_TREE: return tsr_alg_tree_step(s, run);
    case TSR_ALG_HIER: return tsr_alg_hier_step(s, run);
    default: return tsr_alg_alltoall_step(s, run);
    }
}

/* Runs a piece's schedule forward while its rounds have completed. */
static int try_advance(mpi_state_t *s, mrun_t *run, int *moved)
{
    for (;;) {
        int flag = 0;
        int err = MPI_Testall(2, run->req, &flag, MPI_STATUSES_IGNORE);
        if (err != MPI_SUCCESS)
            return tsr_mpi_fail(s, err, "MPI_Testall", run->piece);
        if (!flag)
            return TSR_OK;
        int st = step_of(s, run);
        if (st < 0)
            return st;
        if (st == STEP_BLOCKED)
            return TSR_OK;
        *moved = 1;
        if (st == STEP_DONE) {
            s->done[run->piece] = 1;
            run->piece = SIZE_MAX;
            return TSR_OK;
        }
    }
}

/* Starts ready pieces, in order, while the window has room. */
static int launch(mpi_state_t *s, int *moved)
{
    size_t upto = s->first[s->ready];
    while (s->launched < upto && s->launched - s->finished < s->nslots) {
        mrun_t *run = &s->runs[s->launched % s->nslots];
        run->piece = s->launched++;
        run->step = 0;
        int rc = try_advance(s, run, moved);
        if (rc)
            return rc;
    }
    return TSR_OK;
}

/* One nonblocking pass over every piece in flight, then the window refilled. */
static int advance_all(mpi_state_t *s, int *moved)
{
    for (size_t p = s->finished; p < s->launched; p++) {
        if (s->done[p])
            continue;
        int rc = try_advance(s, &s->runs[p % s->nslots], moved);
        if (rc)
            return rc;
    }
    while (s->finished < s->launched && s->done[s->finished])
        s->finished++;
    while (s->bdone < s->ready && s->first[s->bdone + 1] <= s->finished)
        s->bdone++;
    return launch(s, moved);
}

static int mpi_start(void *state, size_t b)
{
    mpi_state_t *s = state;
    s->ready = b + 1;
    if (s->size == 1)
        return TSR_OK;
    int moved = 0;
    return launch(s, &moved);
}

static int mpi_progress(void *state)
{
    mpi_state_t *s = state;
    int moved = 0;
    return s->size == 1 ? TSR_OK : advance_all(s, &moved);
}

/* MPI_Waitsome on every request in flight; with an idle hook (the
 * engine's owner watching the wait: tsr_comm_set_idle) polled by
 * MPI_Testsome instead, the hook called between polls, so a rank that
 * stalls inside any schedule's round is still reported. */
static int wait_some(mpi_state_t *s, int *outcount)
{
    int n = (int)(2 * s->nslots);
    if (!s->idle || !s->idle->fn)
        return MPI_Waitsome(n, s->reqs, outcount, s->indices, MPI_STATUSES_IGNORE);
    for (;;) {
        int err = MPI_Testsome(n, s->reqs, outcount, s->indices, MPI_STATUSES_IGNORE);
        if (err != MPI_SUCCESS || *outcount != 0) /* some done, or MPI_UNDEFINED: none active */
            return err;
        comm_idle(s->idle);
    }
}

static int mpi_wait(void *state)
{
    mpi_state_t *s = state;
    if (s->size == 1) {
        s->ready = 0;
        return TSR_OK;
    }
    size_t want = s->first[s->ready];
    for (;;) {
        int moved = 1, rc = TSR_OK;
        while (moved && !rc) {
            moved = 0;
            rc = advance_all(s, &moved);
        }
        if (rc)
            return rc;
        if (s->finished == want)
            break;
        /* While we block here, every piece's transfers progress inside MPI. */
        int outcount = 0;
        int err = wait_some(s, &outcount);
        if (err != MPI_SUCCESS)
            return tsr_mpi_fail(s, err, "MPI_Waitsome", s->finished);
        if (outcount == MPI_UNDEFINED)
            return tsr_error_set(TSR_EINTERNAL, "comm: pieces %zu..%zu wait for nothing", s->finished, s->launched);
    }
    memset(s->done, 0, s->npieces);
    s->ready = s->launched = s->finished = s->a2a_next = s->bdone = 0;
    return TSR_OK;
}

/* Buckets whose every piece is done, in order. */
static size_t mpi_finished(void *state)
{
    const mpi_state_t *s = state;
    return s->size == 1 ? s->ready : s->bdone;
}

static const char *mpi_algorithm(void *state, size_t b)
{
    const mpi_state_t *s = state;
    if (!s || s->size == 1 || b >= s->nbuckets)
        return NULL;
    return tsr_alg_name(s->pc[s->first[b]].alg);
}

const comm_backend_t tsr_comm_mpi_component = {
    .name = "mpi",
    .available = mpi_available,
    .create = mpi_create,
    .destroy = mpi_destroy,
    .start = mpi_start,
    .progress = mpi_progress,
    .wait = mpi_wait,
    .finished = mpi_finished,
    .algorithm = mpi_algorithm,
};
