/* SPDX-License-Identifier: BSD-3-Clause */
/* Partitions handed out dynamically: a 64-bit counter in an MPI window on
 * rank 0, taken with MPI_Fetch_and_op (passive target, no message to
 * answer), so rank 0 works on partitions like every other rank and a rank
 * that is slow simply asks less often. */
#include "apply/internal.h"

#include "tessera/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int apply_sched_create(MPI_Comm comm, size_t nparts, const uint8_t *done, apply_sched_t *s)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    s->nparts = nparts;
    s->done = done;
    s->counter = NULL;
    s->ahead = SIZE_MAX;
    MPI_Aint size = rank == 0 ? (MPI_Aint)sizeof(int64_t) : 0;
    if (MPI_Win_allocate(size, sizeof(int64_t), MPI_INFO_NULL, comm, &s->counter, &s->win) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "apply: MPI_Win_allocate for the partition counter failed");
    if (rank == 0)
        *s->counter = 0;
    MPI_Barrier(comm); /* the counter is zero before anyone takes from it */
    MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    return TSR_OK;
}

size_t apply_sched_next(apply_sched_t *s)
{
    for (;;) {
        int64_t one = 1, got = 0;
        MPI_Fetch_and_op(&one, &got, MPI_INT64_T, 0, 0, MPI_SUM, s->win);
        MPI_Win_flush(0, s->win);
        if (got < 0 || (size_t)got >= s->nparts)
            return s->nparts;
        if (!s->done || !s->done[got])
            return (size_t)got;
    }
}

size_t apply_sched_next_ahead(apply_sched_t *s, apply_input_t *in, size_t part_rows)
{
    size_t now = s->ahead == SIZE_MAX ? apply_sched_next(s) : s->ahead;
    s->ahead = now < s->nparts ? apply_sched_next(s) : s->nparts;
    if (s->ahead < s->nparts) {
        size_t first = s->ahead * part_rows;
        apply_input_prefetch(in, first, first + part_rows > in->n ? in->n - first : part_rows);
    }
    return now;
}

void apply_sched_destroy(apply_sched_t *s)
{
    if (s->win == MPI_WIN_NULL)
        return;
    MPI_Win_unlock_all(s->win);
    MPI_Win_free(&s->win);
    s->win = MPI_WIN_NULL;
}

void apply_sched_abort(apply_sched_t *s)
{
    int64_t jump = (int64_t)1 << 60, got;
    MPI_Fetch_and_op(&jump, &got, MPI_INT64_T, 0, 0, MPI_SUM, s->win);
    MPI_Win_flush(0, s->win);
}

int apply_agree(MPI_Comm comm, int rc)
{
    int rank, mine, low;
    MPI_Comm_rank(comm, &rank);
    mine = rc ? rank : 1 << 30;
    MPI_Allreduce(&mine, &low, 1, MPI_INT, MPI_MIN, comm);
    if (low == 1 << 30)
        return TSR_OK;
    int code = rc;
    MPI_Bcast(&code, 1, MPI_INT, low, comm);
    if (rank != low)
        tsr_error_clear(); /* the lowest failing rank says what went wrong */
    return code;
}

int apply_gather_parts(MPI_Comm comm, size_t nparts, const uint8_t *mine, size_t bytes, void *data, int all)
{
    int rank, size, rc = TSR_OK;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    size_t rec = sizeof(uint64_t) + bytes, n = 0;
    for (size_t p = 0; p < nparts; p++)
        n += mine[p];
    char *send = malloc(n * rec + 1), *recv = NULL;
    int *counts = calloc((size_t)size, sizeof(int)), *displs = calloc((size_t)size, sizeof(int));
    int bad = !send || !counts || !displs || n * rec > INT32_MAX, total = 0, any;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    if (any) {
        rc = tsr_error_set(bad ? TSR_ENOMEM : TSR_EINTERNAL,
                           "apply: cannot gather %zu partials of %zu bytes; give a "
                           "larger --partition-rows",
                           nparts, bytes);
        goto done;
    }
    char *w = send;
    for (uint64_t p = 0; p < nparts; p++)
        if (mine[p]) {
            memcpy(w, &p, sizeof p);
            memcpy(w + sizeof p, (char *)data + p * bytes, bytes);
            w += rec;
        }
    int mybytes = (int)(n * rec);
    MPI_Allgather(&mybytes, 1, MPI_INT, counts, 1, MPI_INT, comm);
    for (int r = 0; r < size; r++) {
        displs[r] = total;
        total += counts[r];
    }
    if (all || rank == 0)
        recv = malloc((size_t)total + 1);
    bad = (all || rank == 0) && !recv;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    if (any) {
        rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory gathering the partials");
        goto done;
    }
    if (all)
        MPI_Allgatherv(send, mybytes, MPI_BYTE, recv, counts, displs, MPI_BYTE, comm);
    else
        MPI_Gatherv(send, mybytes, MPI_BYTE, recv, counts, displs, MPI_BYTE, 0, comm);
    for (size_t off = 0; recv && off + rec <= (size_t)total; off += rec) {
        uint64_t p;
        memcpy(&p, recv + off, sizeof p);
        if (p < nparts)
            memcpy((char *)data + p * bytes, recv + off + sizeof p, bytes);
    }
done:
    free(send);
    free(recv);
    free(counts);
    free(displs);
    return rc;
}
