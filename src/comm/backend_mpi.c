/* The "mpi" back-end: a deterministic allreduce built from nonblocking
 * collectives.
 *
 * A bucket of m floats is cut into P slices, slice j = [j*m/P, (j+1)*m/P)
 * (sizes differ by at most one; some are empty when m < P). Rank r owns
 * slice r.
 *   Phase 1, MPI_Ialltoallv: rank r sends its copy of slice j to rank j and
 *   receives every other rank's copy of slice r into a staging area.
 *   Local sum: slice r = s_0 + s_1 + ... + s_{P-1}, accumulated in float in
 *   exactly that order, whatever order the data arrived in.
 *   Phase 2, MPI_Iallgatherv in place: every rank gets every summed slice.
 * Every element is therefore the same rank-ordered float sum on every rank
 * and in every run.
 *
 * MPI requires collectives on one communicator to be called in the same
 * order on every rank. Buckets start phase 1 in bucket order, but a rank
 * would start phase 2 whenever its phase 1 happened to finish, interleaving
 * differently on different ranks. So phase 1 runs on one duplicate of the
 * caller's communicator and phase 2 on another, and phase 2 is started in
 * bucket order too (bucket b waits for b-1 to start phase 2 first).
 *
 * At most WINDOW buckets are in flight per rank; buckets the engine starts
 * beyond that are queued and launched, still in bucket order, as earlier
 * ones finish. This bounds memory and, above all, the cost of MPI's
 * progress engine, which walks every pending nonblocking collective on each
 * poll (thousands of tiny buckets in flight made a step quadratic).
 *
 * Scratch (all allocated at create): a ring of min(nbuckets, WINDOW)
 * staging slots of (P-1) * ceil(m/P) floats each (this rank's own copy is
 * read in place, never sent to itself); two requests per bucket; count and
 * displacement arrays per distinct bucket length (at most two: the full
 * size and the shorter last bucket). */
#include "comm/backend.h"
#include "tessera/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Count and displacement arrays for one bucket length m, P entries each. */
typedef struct layout {
    size_t m;
    int *gcount, *gdispl; /* slice j: size and start (allgatherv; alltoallv send displs) */
    int *scount;          /* alltoallv send counts: gcount, but 0 to this rank */
    int *rcount, *rdispl; /* alltoallv receive: slice r from each other rank */
} layout_t;

typedef struct mbucket {
    float *base;           /* buf + start */
    size_t start, len;
    const layout_t *lay;
} mbucket_t;

enum { WINDOW = 16 };

typedef struct mpi_state {
    MPI_Comm comm1, comm2; /* phase 1 and phase 2 */
    int rank, size;
    size_t nbuckets;
    mbucket_t *b;
    layout_t lay[2];
    int *ints;             /* backing store of the layouts' arrays */
    float *staging;        /* nslots slots of slot_floats: bucket b uses slot b % nslots */
    size_t nslots, slot_floats;
    MPI_Request *req1, *req2;
    int indices[WINDOW];   /* for MPI_Testsome */
    size_t ready;          /* buckets [0, ready) were started by the engine */
    size_t started;        /* buckets [0, started) have begun phase 1 */
    size_t next2;          /* buckets [0, next2) have begun phase 2 */
    size_t done2;          /* buckets [0, done2) are finished */
    const comm_idle_t *idle;
} mpi_state_t;

/* MPI_Wait, polled so that the engine's owner can watch the wait. */
static int wait_req(mpi_state_t *s, MPI_Request *req)
{
    if (!s->idle || !s->idle->fn)
        return MPI_Wait(req, MPI_STATUS_IGNORE);
    for (;;) {
        int flag = 0, err = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (err != MPI_SUCCESS || flag)
            return err;
        comm_idle(s->idle);
    }
}

static int mpi_fail(int err, const char *call, const mpi_state_t *s, size_t b)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error code %d", err);
    if (b < s->nbuckets && s->b)
        return tsr_error_set(TSR_EMPI, "comm: %s failed for bucket %zu (buf[%zu..%zu)): %s", call, b, s->b[b].start,
                             s->b[b].start + s->b[b].len, text);
    return tsr_error_set(TSR_EMPI, "comm: %s failed: %s", call, text);
}

/* Usable on host buffers; "auto" prefers "shm" (20) where ranks share a node. */
static int mpi_available(MPI_Comm comm, int on_gpu)
{
    (void)comm;
    return on_gpu ? 0 : 10;
}

static void layout_fill(layout_t *l, size_t m, int rank, int size, int *ints)
{
    size_t P = (size_t)size;
    l->m = m;
    l->gcount = ints;
    l->gdispl = ints + P;
    l->scount = ints + 2 * P;
    l->rcount = ints + 3 * P;
    l->rdispl = ints + 4 * P;
    size_t own = ((size_t)rank + 1) * m / P - (size_t)rank * m / P;
    for (size_t j = 0; j < P; j++) {
        size_t lo = j * m / P, hi = (j + 1) * m / P;
        size_t slot = j < (size_t)rank ? j : j - 1;
        l->gcount[j] = (int)(hi - lo);
        l->gdispl[j] = (int)lo;
        l->scount[j] = j == (size_t)rank ? 0 : (int)(hi - lo);
        l->rcount[j] = j == (size_t)rank ? 0 : (int)own;
        l->rdispl[j] = j == (size_t)rank ? 0 : (int)(slot * own);
    }
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
    free(s->b);
    free(s->ints);
    free(s->staging);
    free(s->req1);
    free(s->req2);
    free(s);
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
    mpi_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return tsr_error_set(TSR_ENOMEM, "comm: out of memory");
    s->comm1 = s->comm2 = MPI_COMM_NULL;
    s->rank = setup->rank;
    s->size = setup->size;
    s->idle = setup->idle;
    s->nbuckets = nb;
    if (P == 1) { /* the buffer already holds the sum */
        *state = s;
        return TSR_OK;
    }

    int err = MPI_Comm_dup(setup->comm, &s->comm1);
    if (err != MPI_SUCCESS) {
        s->comm1 = MPI_COMM_NULL;
        rc = mpi_fail(err, "MPI_Comm_dup", s, SIZE_MAX);
        goto fail;
    }
    err = MPI_Comm_dup(setup->comm, &s->comm2);
    if (err != MPI_SUCCESS) {
        s->comm2 = MPI_COMM_NULL;
        rc = mpi_fail(err, "MPI_Comm_dup", s, SIZE_MAX);
        goto fail;
    }
    MPI_Comm_set_errhandler(s->comm1, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(s->comm2, MPI_ERRORS_RETURN);

    /* Bucket 0 is the longest (only the last may be shorter). */
    s->nslots = nb < WINDOW ? nb : WINDOW;
    s->slot_floats = nb ? (P - 1) * ((setup->buckets[0].len + P - 1) / P) : 0;
    size_t stage_total = s->nslots * s->slot_floats;
    s->b = calloc(nb ? nb : 1, sizeof *s->b);
    s->ints = calloc(10 * P, sizeof *s->ints);
    s->staging = malloc((stage_total ? stage_total : 1) * sizeof *s->staging);
    s->req1 = malloc((nb ? nb : 1) * sizeof *s->req1);
    s->req2 = malloc((nb ? nb : 1) * sizeof *s->req2);
    if (!s->b || !s->ints || !s->staging || !s->req1 || !s->req2) {
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory for %zu buckets (%zu staging floats)", nb,
                           stage_total);
        goto fail;
    }
    /* Bucket 0 has the full length; only the last one (the start of the
     * buffer) may be shorter. */
    int nlay = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t m = setup->buckets[b].len;
        const layout_t *lay = NULL;
        for (int k = 0; k < nlay; k++)
            if (s->lay[k].m == m)
                lay = &s->lay[k];
        if (!lay) {
            if (nlay == 2) {
                rc = tsr_error_set(TSR_EINTERNAL, "comm: more than two bucket lengths");
                goto fail;
            }
            layout_fill(&s->lay[nlay], m, s->rank, s->size, s->ints + 5 * P * (size_t)nlay);
            lay = &s->lay[nlay++];
        }
        s->b[b].base = setup->buf + setup->buckets[b].start;
        s->b[b].start = setup->buckets[b].start;
        s->b[b].len = m;
        s->b[b].lay = lay;
        s->req1[b] = s->req2[b] = MPI_REQUEST_NULL;
    }
    *state = s;
    return TSR_OK;
fail:
    mpi_destroy(s);
    return rc;
}

static float *stage_of(const mpi_state_t *s, size_t b)
{
    return s->staging + (b % s->nslots) * s->slot_floats;
}

enum { SUM_CHUNK = 1024 };

/* Slice r of bucket b = s_0 + s_1 + ... + s_{P-1}, left to right in float.
 * Processed in cache-sized chunks; the accumulation order per element is
 * the same as a scalar loop. */
static void local_sum(const mpi_state_t *s, size_t b)
{
    const mbucket_t *k = &s->b[b];
    const float *stage = stage_of(s, b);
    const layout_t *l = k->lay;
    int r = s->rank, P = s->size;
    size_t own = (size_t)l->gcount[r];
    float *mine = k->base + l->gdispl[r];
    float acc[SUM_CHUNK];
    for (size_t i0 = 0; i0 < own; i0 += SUM_CHUNK) {
        size_t c = own - i0 < SUM_CHUNK ? own - i0 : SUM_CHUNK;
        for (int j = 0; j < P; j++) {
            const float *src = j == r ? mine + i0 : stage + (size_t)l->rdispl[j] + i0;
            if (j == 0)
                memcpy(acc, src, c * sizeof *acc);
            else
                for (size_t i = 0; i < c; i++)
                    acc[i] += src[i];
        }
        memcpy(mine + i0, acc, c * sizeof *acc);
    }
}

static int begin_phase2(mpi_state_t *s, size_t b)
{
    const mbucket_t *k = &s->b[b];
    local_sum(s, b);
    int err = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, k->base, k->lay->gcount, k->lay->gdispl,
                              MPI_FLOAT, s->comm2, &s->req2[b]);
    if (err != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Iallgatherv", s, b);
    return TSR_OK;
}

/* Launches phase 1 of ready buckets, in order, while the window has room. */
static int launch(mpi_state_t *s)
{
    while (s->started < s->ready && s->started - s->done2 < s->nslots) {
        size_t b = s->started;
        const mbucket_t *k = &s->b[b];
        const layout_t *l = k->lay;
        int err = MPI_Ialltoallv(k->base, l->scount, l->gdispl, MPI_FLOAT, stage_of(s, b), l->rcount, l->rdispl,
                                 MPI_FLOAT, s->comm1, &s->req1[b]);
        if (err != MPI_SUCCESS)
            return mpi_fail(err, "MPI_Ialltoallv", s, b);
        s->started++;
    }
    return TSR_OK;
}

/* Without blocking: moves buckets whose phase 1 is done to phase 2 (in
 * bucket order) and retires buckets whose phase 2 is done. */
static int advance(mpi_state_t *s)
{
    while (s->next2 < s->started) {
        int flag = 0;
        int err = MPI_Test(&s->req1[s->next2], &flag, MPI_STATUS_IGNORE);
        if (err != MPI_SUCCESS)
            return mpi_fail(err, "MPI_Test (MPI_Ialltoallv)", s, s->next2);
        if (!flag)
            break;
        int rc = begin_phase2(s, s->next2);
        if (rc)
            return rc;
        s->next2++;
    }
    if (s->done2 < s->next2) {
        int outcount = 0;
        int err = MPI_Testsome((int)(s->next2 - s->done2), &s->req2[s->done2], &outcount, s->indices,
                               MPI_STATUSES_IGNORE);
        if (err != MPI_SUCCESS)
            return mpi_fail(err, "MPI_Testsome (MPI_Iallgatherv)", s, s->done2);
        while (s->done2 < s->next2 && s->req2[s->done2] == MPI_REQUEST_NULL)
            s->done2++;
    }
    return TSR_OK;
}

static int mpi_start(void *state, size_t b)
{
    mpi_state_t *s = state;
    s->ready = b + 1;
    if (s->size == 1)
        return TSR_OK;
    return launch(s);
}

static int mpi_progress(void *state)
{
    mpi_state_t *s = state;
    if (s->size == 1)
        return TSR_OK;
    int rc = advance(s);
    if (!rc && s->started < s->ready)
        rc = launch(s);
    return rc;
}

static int mpi_wait(void *state)
{
    mpi_state_t *s = state;
    if (s->size == 1) {
        s->ready = 0;
        return TSR_OK;
    }
    for (;;) {
        /* Retire what has finished so queued buckets can launch. */
        while (s->done2 < s->next2) {
            int flag = 0;
            int err = MPI_Test(&s->req2[s->done2], &flag, MPI_STATUS_IGNORE);
            if (err != MPI_SUCCESS)
                return mpi_fail(err, "MPI_Test (MPI_Iallgatherv)", s, s->done2);
            if (!flag)
                break;
            s->done2++;
        }
        int rc = launch(s);
        if (rc)
            return rc;
        if (s->next2 < s->started) {
            /* While we block here, earlier buckets' phase 2 and later
             * buckets' phase 1 progress inside MPI. */
            int err = wait_req(s, &s->req1[s->next2]);
            if (err != MPI_SUCCESS)
                return mpi_fail(err, "MPI_Wait (MPI_Ialltoallv)", s, s->next2);
            rc = begin_phase2(s, s->next2);
            if (rc)
                return rc;
            s->next2++;
        } else if (s->done2 < s->next2) {
            int err = wait_req(s, &s->req2[s->done2]);
            if (err != MPI_SUCCESS)
                return mpi_fail(err, "MPI_Wait (MPI_Iallgatherv)", s, s->done2);
            s->done2++;
        } else {
            break;
        }
    }
    if (s->started != s->ready)
        return tsr_error_set(TSR_EINTERNAL, "comm: %zu of %zu buckets never started", s->ready - s->started,
                             s->ready);
    s->ready = s->started = s->next2 = s->done2 = 0;
    return TSR_OK;
}

static size_t mpi_finished(void *state)
{
    const mpi_state_t *s = state;
    return s->size == 1 ? s->ready : s->done2;
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
};
