/* SPDX-License-Identifier: BSD-3-Clause */
/* The "shm" back-end: creating the shared window, the node and leader
 * communicators and the inner "mpi" back-end; destroying them. The design
 * is described at the top of backend_shm.c. */
#include "comm/shm_internal.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- create / destroy ------------------------------------------------------- */

void tsr_shm_destroy(void *state)
{
    shm_state_t *s = state;
    if (!s)
        return;
    if (s->inner)
        s->inner_be->destroy(s->inner);
    if (s->locked)
        MPI_Win_unlock_all(s->win);
    if (s->win != MPI_WIN_NULL)
        MPI_Win_free(&s->win);
    if (s->leaders != MPI_COMM_NULL)
        MPI_Comm_free(&s->leaders);
    if (s->node != MPI_COMM_NULL)
        MPI_Comm_free(&s->node);
    free(s->chunks);
    free(s->ctrl);
    free(s->ring);
    free(s);
}

/* All ranks of comm learn whether every one of them succeeded; returns the
 * lowest (most negative) code so each fails alike. */
static int agree(MPI_Comm comm, int rc)
{
    int worst = rc;
    if (MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return rc ? rc : tsr_error_set(TSR_EMPI, "comm: shm: MPI_Allreduce failed at create");
    if (worst && !rc)
        tsr_error_set(worst, "comm: shm: create failed on another rank");
    return worst;
}

/* A fixed summation tree (comm_setup_t.fixed_tree) holds when every node has
 * the same power-of-two number of consecutive ranks, aligned: the local
 * sum is then a subtree and the leaders' rabenseifner/tree adds the
 * subtrees up the same tree. Otherwise TSR_ENOTSUP on every rank. */
static int tree_layout(shm_state_t *s, MPI_Comm comm)
{
    int first = s->rank, mine[3], all[3];
    if (MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, s->node) != MPI_SUCCESS)
        return tsr_shm_fail(MPI_ERR_OTHER, "MPI_Allreduce (tree layout)");
    int L = s->lsize, ok = !(L & (L - 1)) && first % L == 0 && s->rank == first + s->lrank;
    mine[0] = ok, mine[1] = L, mine[2] = -L;
    if (MPI_Allreduce(mine, all, 3, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return tsr_shm_fail(MPI_ERR_OTHER, "MPI_Allreduce (tree layout)");
    if (all[0] && all[1] == -all[2]) {
        s->tree = 1;
        return TSR_OK;
    }
    return tsr_error_set(TSR_ENOTSUP, "comm: shm: a fixed summation tree needs the same power-of-two number of "
                                      "consecutive ranks on every node");
}

int tsr_shm_create(const comm_setup_t *setup, void **state)
{
    int rc = TSR_OK, err;
    *state = NULL;
    MPI_Comm comm = setup->comm;
    size_t n = setup->n;

    /* The hooks must agree on every rank. */
    long fake = tsr_shm_env_long("TSR_COMM_FAKE_NODES", setup->size);
    long chunk_bytes = tsr_shm_env_long("TSR_COMM_SHM_CHUNK", 1L << 30);
    int sync = tsr_shm_env_sync();
    long mine[6] = {fake, -fake, chunk_bytes, -chunk_bytes, sync, -sync}, most[6];
    err = MPI_Allreduce(mine, most, 6, MPI_LONG, MPI_MAX, comm);
    if (err != MPI_SUCCESS)
        return tsr_shm_fail(err, "MPI_Allreduce");
    if (most[0] != -most[1] || most[2] != -most[3] || most[4] != -most[5])
        return tsr_error_set(TSR_EINVAL, "comm: shm: TSR_COMM_FAKE_NODES, TSR_COMM_SHM_CHUNK or "
                                         "TSR_COMM_SHM_SYNC differ between ranks");
    if (fake < 0)
        return tsr_error_set(TSR_EINVAL, "comm: shm: TSR_COMM_FAKE_NODES='%s' is not a positive integer",
                             getenv("TSR_COMM_FAKE_NODES"));
    if (chunk_bytes < 0)
        return tsr_error_set(TSR_EINVAL, "comm: shm: TSR_COMM_SHM_CHUNK='%s' is not a positive byte count",
                             getenv("TSR_COMM_SHM_CHUNK"));
    if (sync < 0)
        return tsr_error_set(TSR_EINVAL, "comm: shm: TSR_COMM_SHM_SYNC='%s': expected atomic or barrier",
                             getenv("TSR_COMM_SHM_SYNC"));

    shm_state_t *s = calloc(1, sizeof *s);
    if (!s)
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory");
    rc = agree(comm, rc);
    if (rc) {
        free(s);
        return rc;
    }
    s->node = s->leaders = MPI_COMM_NULL;
    s->win = MPI_WIN_NULL;
    s->rank = setup->rank;
    s->size = setup->size;
    s->buf = setup->buf;
    s->n = n;
    s->buckets = setup->buckets;
    s->idle = setup->idle;
    s->ready_lo = n;

    /* Chunk layout, from the end of the buffer. */
    size_t cf = (size_t)(chunk_bytes ? (size_t)chunk_bytes : SHM_DEFAULT_CHUNK_BYTES) / sizeof(float);
    cf &= ~(size_t)(ALIGN_FLOATS - 1);
    if (cf < ALIGN_FLOATS)
        cf = ALIGN_FLOATS;
    size_t nround = (n + ALIGN_FLOATS - 1) & ~(size_t)(ALIGN_FLOATS - 1);
    if (cf > nround)
        cf = nround > 0 ? nround : ALIGN_FLOATS;
    s->chunk = cf;
    s->nch = n == 0 ? 0 : (n + cf - 1) / cf;
    s->chunks = calloc(s->nch ? s->nch : 1, sizeof *s->chunks);
    if (!s->chunks)
        rc = tsr_error_set(TSR_ENOMEM, "comm: shm: out of memory for %zu chunks", s->nch);
    for (size_t k = 0; !rc && k < s->nch; k++) {
        size_t end = n - k * cf;
        s->chunks[k].start = end > cf ? end - cf : 0;
        s->chunks[k].len = end - s->chunks[k].start;
    }
    rc = agree(comm, rc);
    if (rc)
        goto fail;

    /* Nodes, and the leaders' communicator. */
    int real_size = 1;
    err = tsr_shm_node_split(comm, s->rank, s->size, fake, &s->node, &real_size);
    if (err != MPI_SUCCESS) {
        s->node = MPI_COMM_NULL;
        rc = tsr_shm_fail(err, "MPI_Comm_split_type");
        goto fail; /* an MPI error here is not survivable anyway */
    }
    MPI_Comm_set_errhandler(s->node, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->node, &s->lrank);
    MPI_Comm_size(s->node, &s->lsize);
    err = MPI_Comm_split(comm, s->lrank == 0 ? 0 : MPI_UNDEFINED, s->rank, &s->leaders);
    if (err != MPI_SUCCESS) {
        s->leaders = MPI_COMM_NULL;
        rc = tsr_shm_fail(err, "MPI_Comm_split (leaders)");
        goto fail;
    }
    s->nnodes = 1;
    if (s->leaders != MPI_COMM_NULL)
        MPI_Comm_size(s->leaders, &s->nnodes);
    err = MPI_Bcast(&s->nnodes, 1, MPI_INT, 0, s->node);
    if (err != MPI_SUCCESS) {
        rc = tsr_shm_fail(err, "MPI_Bcast");
        goto fail;
    }
    s->hier = s->nnodes > 1;
    if (setup->fixed_tree && (rc = tree_layout(s, comm)))
        goto fail;
    if (!s->hier && s->leaders != MPI_COMM_NULL)
        MPI_Comm_free(&s->leaders);
    s->barrier_mode = sync == 1 && !s->hier;
    s->oversub = tsr_shm_oversubscribed(real_size); /* the real node's ranks share its cores */

    /* The inner back-end: chunks are its buckets. Its create is collective
     * over the leaders; failures are agreed below. */
    if (s->hier && s->lrank == 0) {
        comm_setup_t in = {
            .comm = s->leaders,
            .buf = s->buf,
            .n = n,
            .buckets = s->chunks,
            .nbuckets = s->nch,
            .algorithm = setup->algorithm,
            .topology = setup->topology,
            .idle = s->idle,
        };
        MPI_Comm_rank(s->leaders, &in.rank);
        MPI_Comm_size(s->leaders, &in.size);
        s->inner_be = &tsr_comm_mpi_component;
        rc = s->inner_be->create(&in, &s->inner);
        if (rc)
            s->inner = NULL;
    }

    /* The window: the ring(s), after a cache line of counters. */
    size_t L = (size_t)s->lsize;
    /* Barrier mode reuses a slot one chunk after a barrier that only
     * orders the previous chunk's copy-out: it needs two. */
    size_t slots = s->nch < SLOTS ? s->nch : SLOTS;
    if (s->barrier_mode && slots < 2)
        slots = 2;
    if (slots < 1)
        slots = 1;
    s->slots = slots;
    size_t ring_floats = L > 1 ? slots * cf : 0;
    size_t ringb_floats = s->hier && s->lrank == 0 && L > 1 ? slots * cf : 0;
    MPI_Aint bytes = (MPI_Aint)(CTRL_BYTES + (ring_floats + ringb_floats) * sizeof(float) + 64);
    s->ctrl = calloc(L, sizeof *s->ctrl);
    s->ring = calloc(L, sizeof *s->ring);
    if (!rc && (!s->ctrl || !s->ring))
        rc = tsr_error_set(TSR_ENOMEM, "comm: shm: out of memory");
    rc = agree(comm, rc);
    if (rc)
        goto fail;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    void *base = NULL;
    err = MPI_Win_allocate_shared(bytes, 1, info, s->node, &base, &s->win);
    MPI_Info_free(&info);
    if (err != MPI_SUCCESS) {
        s->win = MPI_WIN_NULL;
        rc = tsr_shm_fail(err, "MPI_Win_allocate_shared");
    }
    rc = agree(comm, rc);
    if (rc)
        goto fail;
    for (int q = 0; q < s->lsize && !rc; q++) {
        MPI_Aint qbytes = 0;
        int disp = 0;
        void *qbase = NULL;
        err = MPI_Win_shared_query(s->win, q, &qbytes, &disp, &qbase);
        if (err != MPI_SUCCESS) {
            rc = tsr_shm_fail(err, "MPI_Win_shared_query");
            break;
        }
        /* Mappings are page-aligned, so rounding up lands on the same
         * memory in every process. */
        uintptr_t a = ((uintptr_t)qbase + 63) & ~(uintptr_t)63;
        s->ctrl[q] = (shm_ctrl_t *)a;
        s->ring[q] = (float *)(a + CTRL_BYTES);
        if (q == 0 && s->hier)
            s->ring_b = s->ring[0] + ring_floats;
    }
    if (!rc) {
        /* Touch our own segment here (first touch places it near us), and
         * start every counter at zero. */
        shm_ctrl_t *c = s->ctrl[s->lrank];
        atomic_init(&c->copied, 0);
        atomic_init(&c->reduced, 0);
        atomic_init(&c->freed, 0);
        atomic_init(&c->final, 0);
        atomic_init(&c->freed_b, 0);
        if (ring_floats + ringb_floats)
            memset(s->ring[s->lrank], 0, (ring_floats + ringb_floats) * sizeof(float));
        atomic_thread_fence(memory_order_seq_cst);
        err = MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
        if (err != MPI_SUCCESS)
            rc = tsr_shm_fail(err, "MPI_Win_lock_all");
        else
            s->locked = 1;
    }
    rc = agree(comm, rc);
    if (rc)
        goto fail;
    MPI_Win_sync(s->win);
    err = MPI_Barrier(s->node); /* everyone's counters are initialised */
    if (err != MPI_SUCCESS) {
        rc = tsr_shm_fail(err, "MPI_Barrier");
        goto fail;
    }
    MPI_Win_sync(s->win);
    *state = s;
    return TSR_OK;
fail:
    tsr_shm_destroy(s);
    return rc;
}
